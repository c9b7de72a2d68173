/* fuzz_embt.c: libFuzzer target for the container reader. The input is a whole .embt file: open it
 * from memory, use every read function before verification (lookups must be memory-safe on an
 * unverified file, FORMAT.md 7.5), then verify, and on a verified file check that every token is
 * found at its own id, that metadata parses, and that opening through a real file agrees. */
#include <math.h>

#include "fuzz_common.h"

/* Rows and tokens visited per table or vocabulary: a file of n bytes may declare 2^40 rows of zero
 * columns (cheap to declare, slow to walk), and the bound keeps each execution fast. */
#define FZ_MAX_WALK 4096u

static void walk_vocab(const embt_vocab *v, int verified)
{
    FZ_CHECK(embt_vocab_name(v) != NULL, "vocab without a name");
    uint32_t n = embt_vocab_size(v);
    int has_counts = embt_vocab_has_counts(v);
    for (uint32_t id = 0; id < n && id < FZ_MAX_WALK; id++) {
        size_t len = 0;
        const char *t = embt_vocab_token(v, id, &len);
        if (verified)
            FZ_CHECK(t != NULL && len > 0, "token %u of a verified vocabulary unreadable", id);
        if (t) {
            uint32_t found = EMBT_NONE_ID;
            embt_status st = embt_vocab_find(&found, v, t, len);
            if (verified)
                FZ_CHECK(st == EMBT_OK && found == id, "token %u found as %u (%s)", id, found,
                         embt_status_name(st));
            else
                FZ_CHECK(st == EMBT_OK || st == EMBT_ENOTFOUND || st == EMBT_ECORRUPT,
                         "find returned %s", embt_status_name(st));
            if (st == EMBT_OK)
                FZ_CHECK(found < n, "find gave id %u of %u", found, n);
        }
        uint64_t count;
        embt_status st = embt_vocab_count(&count, v, id);
        FZ_CHECK(has_counts ? st == EMBT_OK : st == EMBT_ENOTFOUND, "count %u: %s", id,
                 embt_status_name(st));
    }
    size_t len = 0;
    FZ_CHECK(embt_vocab_token(v, n, &len) == NULL, "token id %u past the end was returned", n);
    uint32_t found;
    embt_status st = embt_vocab_find(&found, v, "\xff not a token", 14);
    FZ_CHECK(st == EMBT_ENOTFOUND || (!verified && st == EMBT_ECORRUPT), "invalid UTF-8 found: %s",
             embt_status_name(st));
    uint32_t special[4] = {embt_vocab_unk_id(v), embt_vocab_pad_id(v), embt_vocab_bos_id(v),
                           embt_vocab_eos_id(v)};
    for (int i = 0; i < 4; i++)
        FZ_CHECK(special[i] == EMBT_NONE_ID || special[i] < n, "special id %u of %u", special[i],
                 n);
}

static void walk_table(const embt_table *t, const embt_file *f)
{
    FZ_CHECK(embt_table_name(t) != NULL, "table without a name");
    embt_dtype dtype = embt_table_dtype(t);
    size_t esize = embt_dtype_size(dtype);
    FZ_CHECK(esize != 0, "table with unknown dtype %d was accepted", (int)dtype);
    unsigned rank = embt_table_rank(t);
    uint64_t rows = embt_table_rows(t), cols = embt_table_cols(t);
    FZ_CHECK(rank == 1 || rank == 2, "rank %u", rank);
    FZ_CHECK(rank == 2 || cols == 1, "rank 1 with %llu cols", (unsigned long long)cols);
    const embt_vocab *v = embt_table_vocab(t);
    if (v)
        FZ_CHECK(embt_vocab_size(v) == rows, "tied table of %llu rows, vocabulary of %u",
                 (unsigned long long)rows, embt_vocab_size(v));
    const uint8_t *data = embt_table_data(t);
    if (rows && cols) {
        FZ_CHECK(data != NULL, "table with elements has no data");
        FZ_CHECK((uintptr_t)data % 8 == 0, "table data misaligned");
        /* touch the first and the last byte: the whole extent must be readable */
        uint64_t bytes = rows * cols * esize;
        volatile uint8_t sink = data[0] ^ data[bytes - 1];
        (void)sink;
        FZ_CHECK(bytes <= embt_file_size(f) * 1033u + 64u,
                 "table of %llu bytes in a %llu-byte file", (unsigned long long)bytes,
                 (unsigned long long)embt_file_size(f));
    }
    const float *scales = embt_table_scales(t), *norms = embt_table_norms(t);
    FZ_CHECK((dtype == EMBT_DTYPE_I8) == (scales != NULL), "scales present for dtype %s: %d",
             embt_dtype_name(dtype), scales != NULL);
    if (cols > (1u << 16))
        return; /* a row buffer of up to 2^31 floats: not worth it for the fuzzer */
    /* [two gathered rows][row 0 read alone] */
    float *row = malloc(sizeof(float) * (size_t)(cols ? cols : 1) * 3);
    FZ_CHECK(row != NULL, "out of memory");
    uint64_t walk = rows < FZ_MAX_WALK ? rows : FZ_MAX_WALK;
    volatile float acc = 0;
    for (uint64_t r = 0; r < walk; r++) {
        FZ_CHECK(embt_table_read_row_f32(row, t, r) == EMBT_OK, "row %llu", (unsigned long long)r);
        const float *direct = embt_table_row_f32(t, r);
        FZ_CHECK((direct != NULL) == (dtype == EMBT_DTYPE_F32), "row_f32 for %s",
                 embt_dtype_name(dtype));
        if (direct && cols)
            FZ_CHECK(memcmp(direct, row, sizeof(float) * (size_t)cols) == 0,
                     "read_row_f32 and row_f32 differ at row %llu", (unsigned long long)r);
        /* FORMAT.md rule 28: a rank-1 table has one scale and one norm */
        if (norms)
            acc += norms[rank == 1 ? 0 : r];
        if (scales)
            acc += scales[rank == 1 ? 0 : r];
    }
    (void)acc;
    FZ_CHECK(embt_table_read_row_f32(row, t, rows) == EMBT_EINVAL, "row past the end was read");
    if (rows) {
        uint64_t ids[2] = {rows - 1, 0};
        FZ_CHECK(embt_table_gather_f32(row, t, ids, 2) == EMBT_OK, "gather");
        FZ_CHECK(embt_table_read_row_f32(row + 2 * cols, t, 0) == EMBT_OK, "row 0");
        FZ_CHECK(memcmp(row + cols, row + 2 * cols, sizeof(float) * (size_t)cols) == 0,
                 "gather and read_row_f32 differ on row 0");
        ids[1] = rows;
        FZ_CHECK(embt_table_gather_f32(row, t, ids, 2) == EMBT_EINVAL, "gather past the end");
    }
    free(row);
}

static void walk_file(const embt_file *f, int verified)
{
    unsigned major = 0, minor = 0;
    embt_file_version(f, &major, &minor);
    FZ_CHECK(major == EMBT_FORMAT_VERSION_MAJOR, "opened a file of major version %u", major);
    uint32_t align = embt_file_alignment(f);
    FZ_CHECK(align >= 64 && (align & (align - 1)) == 0, "alignment %u", align);
    size_t ns = embt_file_section_count(f);
    for (size_t i = 0; i < ns; i++) {
        embt_section_info si;
        FZ_CHECK(embt_file_section(&si, f, i) == EMBT_OK, "section %zu", i);
        FZ_CHECK(si.offset <= embt_file_size(f) &&
                     si.stored_length <= embt_file_size(f) - si.offset,
                 "section %zu [%llu + %llu) outside the %llu-byte file", i,
                 (unsigned long long)si.offset, (unsigned long long)si.stored_length,
                 (unsigned long long)embt_file_size(f));
        FZ_CHECK(si.name_length <= 256, "section name of %zu bytes", si.name_length);
        FZ_CHECK(embt_section_type_name(si.type) != NULL, "type name");
        volatile uint8_t sink = si.params[0] ^ si.params[47];
        (void)sink;
        if (si.name_length) {
            volatile char c = si.name[0] ^ si.name[si.name_length - 1];
            (void)c;
        }
    }
    embt_section_info si;
    FZ_CHECK(embt_file_section(&si, f, ns) == EMBT_EINVAL, "section past the end");
    for (size_t i = 0; i < embt_file_vocab_count(f); i++) {
        const embt_vocab *v = embt_file_vocab_at(f, i);
        const embt_vocab *byname = NULL;
        FZ_CHECK(embt_file_vocab(&byname, f, embt_vocab_name(v)) == EMBT_OK, "vocab by name");
        walk_vocab(v, verified);
    }
    for (size_t i = 0; i < embt_file_table_count(f); i++) {
        const embt_table *t = embt_file_table_at(f, i);
        const embt_table *byname = NULL;
        FZ_CHECK(embt_file_table(&byname, f, embt_table_name(t)) == EMBT_OK && byname == t,
                 "table '%s' by name", embt_table_name(t));
        walk_table(t, f);
    }
    size_t mlen = 0;
    const char *meta = embt_file_metadata(f, &mlen);
    if (meta) {
        embt_meta *m = NULL;
        embt_status st = embt_meta_parse(&m, meta, mlen);
        if (verified)
            FZ_CHECK(st == EMBT_OK, "metadata of a verified file does not parse");
        embt_meta_free(m);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = fz_copy(data, size);
    embt_file *f = NULL;
    embt_status st = embt_file_open_memory(&f, buf, size, NULL);
    if (st != EMBT_OK) {
        FZ_CHECK(f == NULL, "a failed open left *out set");
        FZ_CHECK(st == embt_error_last()->code, "status %s, record %s", embt_status_name(st),
                 embt_status_name(embt_error_last()->code));
        FZ_CHECK(st == EMBT_EFORMAT || st == EMBT_EVERSION || st == EMBT_ECORRUPT ||
                     st == EMBT_ELIMIT,
                 "open failed with %s", embt_status_name(st));
        free(buf);
        return 0;
    }
    FZ_CHECK(embt_file_size(f) == size, "size");
    walk_file(f, 0);
    st = embt_file_verify(f);
    FZ_CHECK(st == EMBT_OK || st == EMBT_ECORRUPT, "verify returned %s", embt_status_name(st));
    if (st == EMBT_OK) {
        walk_file(f, 1);
        /* the mapped and read-into-memory paths must accept the same verified file */
        const char *path = fz_path("in.embt");
        fz_write_file(path, buf, size);
        embt_open_options oo = EMBT_OPEN_OPTIONS_INIT;
        oo.flags = EMBT_OPEN_VERIFY | EMBT_OPEN_NO_MMAP;
        embt_file *g = NULL;
        FZ_CHECK(embt_file_open(&g, path, &oo) == EMBT_OK, "a verified file failed to reopen");
        FZ_CHECK(embt_file_table_count(g) == embt_file_table_count(f) &&
                     embt_file_vocab_count(g) == embt_file_vocab_count(f),
                 "reopened file differs");
        embt_file_close(g);
        unlink(path);
    }
    embt_file_close(f);
    free(buf);
    return 0;
}
