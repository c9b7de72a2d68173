/* fuzz_npz.c: libFuzzer target for the NumPy .npz importer (the zip reader, bounded inflate, CRC-32
 * checks and the .npy parser of each member). The input is the .npz file itself; for half of the
 * input lengths the harness first rewrites the CRC-32 of every member its central directory names
 * (stored ones directly, deflated ones after inflating at most 1 MiB), so that mutated members get
 * past the checksum into the .npy parser. The file is written to the scratch directory and
 * converted with embt_convert_file(); the other options come from the input's length (detection or
 * the explicit format, dtype, non-finite values, compression, a row limit, the tied array's name and
 * a --vocab file). A failure must be a parse/format/limit/argument error that leaves no output; a
 * success must verify, name every table after its member, and tie the vocabulary when one was given
 * to the named (or "embedding") array. */
#include <stdbool.h>
#include <zlib.h>

#include "fuzz_common.h"

#define FZ_INFLATE_MAX (1u << 20)

static uint32_t rd16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t rd32(const uint8_t *p)
{
    return rd16(p) | rd16(p + 2) << 16;
}

/* The CRC-32 of a raw deflate stream's output; false when it does not inflate within the cap. */
static bool inflated_crc(uLong *crc, const uint8_t *src, size_t n)
{
    static uint8_t buf[FZ_INFLATE_MAX];
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -15) != Z_OK)
        return false;
    zs.next_in = (Bytef *)(uintptr_t)src;
    zs.avail_in = (uInt)n;
    zs.next_out = buf;
    zs.avail_out = sizeof buf;
    int z = inflate(&zs, Z_FINISH);
    bool ok = z == Z_STREAM_END;
    if (ok)
        *crc = crc32(crc32(0, NULL, 0), buf, (uInt)zs.total_out);
    inflateEnd(&zs);
    return ok;
}

/* Rewrites the CRC-32 field of each central directory entry (signature PK 1 2 anywhere in the
 * input) whose member lies inside the input, without zip64. */
static void fix_crcs(uint8_t *d, size_t size)
{
    for (size_t p = 0; p + 46 <= size; p++) {
        if (rd32(d + p) != 0x02014b50u)
            continue;
        uint32_t method = rd16(d + p + 10), csize = rd32(d + p + 20), local = rd32(d + p + 42);
        if (local > size || size - local < 30 || rd32(d + local) != 0x04034b50u)
            continue;
        size_t data = (size_t)local + 30 + rd16(d + local + 26) + rd16(d + local + 28);
        if (data > size || size - data < csize)
            continue;
        uLong crc;
        if (method == 0)
            crc = crc32(crc32(0, NULL, 0), d + data, (uInt)csize);
        else if (method != 8 || !inflated_crc(&crc, d + data, csize))
            continue;
        for (int b = 0; b < 4; b++)
            d[p + 16 + b] = (uint8_t)(crc >> (8 * b));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = fz_path("in.npz"), *out = fz_path("out.embt"), *vocab = fz_path("vocab.txt");
    static const embt_dtype dtypes[] = {0, EMBT_DTYPE_F16, EMBT_DTYPE_BF16, EMBT_DTYPE_I8,
                                        EMBT_DTYPE_F64};
    static const char *const names[] = {NULL, NULL, "embedding", "a", "arr_0"};
    size_t k = size;
    bool fix = k % 2;
    k /= 2;
    uint8_t *copy = fz_copy(data, size);
    if (fix)
        fix_crcs(copy, size);
    fz_write_file(in, copy, size);
    free(copy);

    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    embt_convert_report report;
    memset(&report, 0xA5, sizeof report);
    o.from = k % 2 ? EMBT_FORMAT_NPZ : EMBT_FORMAT_AUTO;
    k /= 2;
    o.dtype = dtypes[k % 5];
    k /= 5;
    if (k % 2)
        o.flags |= EMBT_CONVERT_ALLOW_NONFINITE;
    k /= 2;
    o.limit = k % 3 == 2 ? 1 : 0;
    k /= 3;
    o.table_name = names[k % 5];
    k /= 5;
    unsigned vocab_lines = (unsigned)(k % 5); /* 0: no --vocab */
    k /= 5;
    if (vocab_lines) {
        char text[32];
        size_t n = 0;
        for (unsigned i = 0; i < vocab_lines; i++)
            n += (size_t)snprintf(text + n, sizeof text - n, "w%u\n", i);
        fz_write_file(vocab, (const uint8_t *)text, n);
        o.vocab_path = vocab;
    }
    if (k % 3 == 0)
        o.flags |= EMBT_CONVERT_COMPRESS;
    o.report = &report;
    size_t inputs = vocab_lines ? 2 : 1;

    embt_status st = embt_convert_file(in, out, &o);
    if (st != EMBT_OK) {
        fz_check_import_failure(st, fz_embt_magic(data, size));
        FZ_CHECK(fz_count_other_entries(NULL) == inputs,
                 "a failed conversion (%s) left output or a temporary file", embt_status_name(st));
    } else {
        embt_file *f = NULL;
        embt_open_options oo = EMBT_OPEN_OPTIONS_INIT;
        oo.flags = EMBT_OPEN_VERIFY;
        st = embt_file_open(&f, out, &oo);
        FZ_CHECK(st == EMBT_OK, "the converter wrote a file that does not verify");
        FZ_CHECK(fz_count_other_entries(NULL) == inputs + 1, "a conversion left a temporary file");
        size_t mlen = 0;
        const char *meta = embt_file_metadata(f, &mlen);
        bool npz = meta && mlen > 20 && memcmp(meta, "source: {format: npz", 20) == 0;
        if (npz) {
            FZ_CHECK(embt_file_table_count(f) >= 1, "an npz import without tables");
            FZ_CHECK(embt_file_vocab_count(f) == (o.vocab_path ? 1u : 0u), "%zu vocabularies",
                     embt_file_vocab_count(f));
            uint64_t total = 0;
            const embt_table *tied = NULL;
            for (size_t i = 0; i < embt_file_table_count(f); i++) {
                const embt_table *t = embt_file_table_at(f, i);
                total += embt_table_rows(t);
                if (embt_table_vocab(t)) {
                    FZ_CHECK(tied == NULL, "two tables tied to the vocabulary");
                    tied = t;
                }
                if (o.dtype)
                    FZ_CHECK(embt_table_dtype(t) == o.dtype, "dtype %s, asked %s",
                             embt_dtype_name(embt_table_dtype(t)), embt_dtype_name(o.dtype));
            }
            if (o.vocab_path) {
                const char *want = o.table_name ? o.table_name : "embedding";
                FZ_CHECK(tied && strcmp(embt_table_name(tied), want) == 0,
                         "the vocabulary is not tied to '%s'", want);
                FZ_CHECK(embt_table_rows(tied) == report.rows && report.rows <= vocab_lines,
                         "tied table of %llu rows, report %llu, %u lines",
                         (unsigned long long)embt_table_rows(tied), (unsigned long long)report.rows,
                         vocab_lines);
            } else {
                const embt_table *named = NULL;
                const char *want = o.table_name ? o.table_name : "embedding";
                if (embt_file_table(&named, f, want) == EMBT_OK)
                    FZ_CHECK(embt_table_rows(named) == report.rows, "report %llu rows",
                             (unsigned long long)report.rows);
                else
                    FZ_CHECK(!o.table_name && report.rows == total, "report %llu of %llu rows",
                             (unsigned long long)report.rows, (unsigned long long)total);
            }
        }
        embt_file_close(f);
        unlink(out);
    }
    unlink(in);
    if (vocab_lines)
        unlink(vocab);
    return 0;
}
