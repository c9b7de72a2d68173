/* test_reader.c: the reader on damaged and unusual input: every truncation and every single-byte
 * change of a valid file is refused cleanly (open or verify), lookups outside the vocabulary or the
 * table fail with the documented status and touch nothing, non-regular files are refused, and
 * open + one find touch a number of pages that does not grow with the vocabulary (O(1) open). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "test_util.h"

static bool is_clean_failure(embt_status st)
{
    return st == EMBT_EFORMAT || st == EMBT_ECORRUPT || st == EMBT_EVERSION || st == EMBT_ELIMIT;
}

/* A small file with every section type: vocab + index + counts, an F16 table with norms, an I8
 * table (scales), metadata; compressed or not. */
static uint8_t *small_file(size_t *len, bool compress)
{
    const char *path = tu_path(compress ? "small-z.embt" : "small.embt");
    tu_sample s = {12,
                   3,
                   EMBT_DTYPE_F16,
                   EMBT_VOCAB_COUNTS | (compress ? EMBT_VOCAB_COMPRESS : 0),
                   EMBT_TABLE_NORMS | (compress ? EMBT_TABLE_COMPRESS : 0),
                   "k: v\nn:\n  m: 1\n"};
    embt_writer *w = NULL;
    TU_OK(tu_write_sample(path, &s));
    /* add an I8 table by copying and appending */
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, NULL));
    const char *path2 = tu_path(compress ? "small2-z.embt" : "small2.embt");
    TU_OK(embt_writer_open(&w, path2, NULL));
    TU_OK(embt_writer_copy_sections(w, f, 0));
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = "q";
    ts.dtype = EMBT_DTYPE_I8;
    ts.rows = 4;
    ts.cols = 5;
    ts.flags = compress ? EMBT_TABLE_COMPRESS : 0;
    float vals[20];
    for (int i = 0; i < 20; i++)
        vals[i] = (float)(i - 7) * 0.3f;
    TU_OK(embt_writer_add_table_f32(w, &ts, vals));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    embt_file_close(f);
    return tu_read_file(path2, len);
}

/* Opens `len` bytes from a buffer of exactly that size (so overreads are caught by sanitizers),
 * then verifies; returns the first failure or EMBT_OK. Closes everything. */
static embt_status open_verify_memory(const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    cr_assert_not_null(copy);
    memcpy(copy, data, len);
    embt_file *f = (embt_file *)1;
    embt_status st = embt_file_open_memory(&f, copy, len, NULL);
    if (st == EMBT_OK) {
        st = embt_file_verify(f);
        embt_file_close(f);
    } else {
        cr_assert_null(f, "failed open left *out set");
    }
    free(copy);
    return st;
}

Test(reader, the_sample_files_are_valid, .init = tu_setup, .fini = tu_teardown)
{
    for (int z = 0; z < 2; z++) {
        size_t len;
        uint8_t *b = small_file(&len, z);
        TU_OK(open_verify_memory(b, len));
        free(b);
    }
}

Test(reader, every_truncation_fails_cleanly_with_eformat_or_ecorrupt, .init = tu_setup,
     .fini = tu_teardown)
{
    for (int z = 0; z < 2; z++) {
        size_t len;
        uint8_t *b = small_file(&len, z);
        const char *path = tu_path("cut.embt");
        for (size_t n = 0; n < len; n++) {
            embt_status st = open_verify_memory(b, n);
            cr_assert(st == EMBT_EFORMAT || st == EMBT_ECORRUPT, "prefix %zu of %zu: %s", n, len,
                      embt_status_name(st));
            if (n < 128)
                cr_assert_eq(st, EMBT_EFORMAT, "prefix %zu: rule 1 is EFORMAT", n);
            /* the same through the file system, mapped and read */
            if (n % 7 == 0 || n < 140 || n + 8 > len) {
                tu_write_file(path, b, n);
                embt_file *f = (embt_file *)1;
                embt_status st2 = embt_file_open(&f, path, NULL);
                cr_assert_eq(st2, st, "prefix %zu: file open %s, memory open %s", n,
                             embt_status_name(st2), embt_status_name(st));
                cr_assert_null(f);
                embt_open_options oo = EMBT_OPEN_OPTIONS_INIT;
                oo.flags = EMBT_OPEN_NO_MMAP;
                cr_assert_eq(embt_file_open(&f, path, &oo), st, "prefix %zu, no mmap", n);
            }
        }
        free(b);
    }
}

/* Each byte gets 0xFF xor-ed in, and each of its 8 bits flipped alone: 9 variants per byte.
 * Every section, the header and the directory carry a CRC-32 and padding must be zero, so no
 * change may go unnoticed by open + verify. */
static void flip_every_byte(bool compress)
{
    size_t len;
    uint8_t *b = small_file(&len, compress);
    uint8_t *m = malloc(len);
    cr_assert_not_null(m);
    size_t undetected = 0, tried = 0;
    for (size_t i = 0; i < len; i++) {
        for (int v = 0; v < 9; v++) {
            uint8_t mask = v == 8 ? 0xFF : (uint8_t)(1u << v);
            memcpy(m, b, len);
            m[i] ^= mask;
            embt_status st = open_verify_memory(m, len);
            tried++;
            if (st == EMBT_OK) {
                if (undetected < 20)
                    cr_log_error("byte %zu xor 0x%02x: not detected", i, mask);
                undetected++;
            } else {
                cr_assert(is_clean_failure(st), "byte %zu xor 0x%02x: %s", i, mask,
                          embt_status_name(st));
                const embt_error *e = embt_error_last();
                cr_assert_eq(e->code, st);
                cr_assert(e->offset == EMBT_NO_OFFSET || e->offset < len,
                          "byte %zu: error offset %llu beyond the file", i,
                          (unsigned long long)e->offset);
            }
        }
    }
    cr_log_info("%s file, %zu bytes: %zu changes tried, %zu undetected",
                compress ? "compressed" : "plain", len, tried, undetected);
    cr_assert_eq(undetected, 0, "%zu of %zu single-byte changes went undetected", undetected,
                 tried);
    free(m);
    free(b);
}

Test(reader, every_changed_byte_of_a_plain_file_is_detected, .init = tu_setup, .fini = tu_teardown)
{
    flip_every_byte(false);
}

Test(reader, every_changed_byte_of_a_compressed_file_is_detected, .init = tu_setup,
     .fini = tu_teardown)
{
    flip_every_byte(true);
}

/* ---- lookups out of range ---- */

struct opened {
    embt_file *file;
    const embt_vocab *vocab;
    const embt_table *table;
};

static struct opened open_sample(uint32_t n_tokens)
{
    struct opened o = {0};
    const char *path = tu_path("lookup.embt");
    tu_sample s = {n_tokens, 4, EMBT_DTYPE_F32, 0, 0, NULL};
    TU_OK(tu_write_sample(path, &s));
    TU_OK(embt_file_open(&o.file, path, NULL));
    TU_OK(embt_file_vocab(&o.vocab, o.file, "words"));
    TU_OK(embt_file_table(&o.table, o.file, "embedding"));
    return o;
}

Test(reader, find_returns_enotfound_for_absent_tokens_without_touching_the_error_record,
     .init = tu_setup, .fini = tu_teardown)
{
    struct opened o = open_sample(1000);
    static const char *const absent[] = {
        "", "w", "w1000", "w00", "-0.50", "</s>", "x", "\xc3\xa9t\xc3\xa9", "w1 ", " w1", "W1"};
    /* a known failure first: find must leave this record alone */
    embt_dtype d;
    TU_STATUS(embt_dtype_parse(&d, "nope"), EMBT_EINVAL);
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
        uint32_t id = 77;
        TU_STATUS(embt_vocab_find(&id, o.vocab, absent[i], strlen(absent[i])), EMBT_ENOTFOUND);
        cr_assert_eq(embt_error_last()->code, EMBT_EINVAL, "find(\"%s\") touched the record",
                     absent[i]);
    }
    /* "w992" exists: neither a longer query nor a prefix of it matches */
    uint32_t id = 0;
    TU_OK(embt_vocab_find(&id, o.vocab, "w9920", 4));
    cr_assert_eq(id, 992);
    TU_STATUS(embt_vocab_find(&id, o.vocab, "w9920", 5), EMBT_ENOTFOUND);
    TU_STATUS(embt_vocab_find(&id, o.vocab, "w9920", 3), EMBT_ENOTFOUND);
    embt_file_close(o.file);
}

Test(reader, token_out_of_range_returns_null, .init = tu_setup, .fini = tu_teardown)
{
    struct opened o = open_sample(10);
    size_t len = 5;
    cr_assert_not_null(embt_vocab_token(o.vocab, 9, &len));
    cr_assert_null(embt_vocab_token(o.vocab, 10, &len));
    cr_assert_null(embt_vocab_token(o.vocab, EMBT_NONE_ID, &len));
    uint64_t count;
    TU_STATUS(embt_vocab_count(&count, o.vocab, 0), EMBT_ENOTFOUND);
    embt_file_close(o.file);
}

Test(reader, gather_with_an_out_of_range_id_is_einval_and_leaves_dst_untouched, .init = tu_setup,
     .fini = tu_teardown)
{
    struct opened o = open_sample(10);
    float dst[4 * 4];
    for (int i = 0; i < 16; i++)
        dst[i] = -123.0f;
    uint64_t ids[4] = {0, 3, 10, 1};
    TU_STATUS(embt_table_gather_f32(dst, o.table, ids, 4), EMBT_EINVAL);
    cr_assert_eq(embt_error_last()->offset, 2, "the record's offset holds the bad position");
    for (int i = 0; i < 16; i++)
        cr_assert_eq(dst[i], -123.0f, "dst[%d] was written", i);
    uint64_t huge[1] = {UINT64_MAX};
    TU_STATUS(embt_table_gather_f32(dst, o.table, huge, 1), EMBT_EINVAL);
    TU_STATUS(embt_table_read_row_f32(dst, o.table, 10), EMBT_EINVAL);
    cr_assert_null(embt_table_row_f32(o.table, 10));
    for (int i = 0; i < 16; i++)
        cr_assert_eq(dst[i], -123.0f);
    TU_OK(embt_table_gather_f32(dst, o.table, ids, 2));
    cr_assert_eq(dst[0], tu_value(0, 0));
    cr_assert_eq(dst[4 + 3], tu_value(3, 3));
    embt_file_close(o.file);
}

Test(reader, section_index_out_of_range_is_einval, .init = tu_setup, .fini = tu_teardown)
{
    struct opened o = open_sample(3);
    embt_section_info si;
    size_t n = embt_file_section_count(o.file);
    cr_assert_geq(n, 3, "vocab, index and table");
    TU_OK(embt_file_section(&si, o.file, n - 1));
    TU_STATUS(embt_file_section(&si, o.file, n), EMBT_EINVAL);
    embt_file_close(o.file);
}

/* ---- what is not a regular .embt file ---- */

struct odd_path {
    char path[32];
};

ParameterizedTestParameters(reader, a_non_regular_or_missing_file_is_refused_cleanly)
{
    static struct odd_path cases[] = {{"/dev/null"}, {"/"},        {"/proc/self/status"},
                                      {"@dir"},      {"@missing"}, {"@fifo"}};
    return cr_make_param_array(struct odd_path, cases, sizeof cases / sizeof cases[0]);
}

/* A FIFO without a writer blocked open() for ever before fstat could refuse it: hence the timeout. */
ParameterizedTest(struct odd_path *k, reader, a_non_regular_or_missing_file_is_refused_cleanly,
                  .init = tu_setup, .fini = tu_teardown, .timeout = 30)
{
    const char *path = k->path;
    if (strcmp(path, "@dir") == 0)
        path = tu_dir;
    else if (strcmp(path, "@missing") == 0)
        path = tu_path("missing.embt");
    else if (strcmp(path, "@fifo") == 0 && mkfifo((path = tu_path("fifo.embt")), 0644) != 0)
        cr_assert_fail("mkfifo: %s", strerror(errno));
    for (int mode = 0; mode < 2; mode++) {
        embt_open_options oo = EMBT_OPEN_OPTIONS_INIT;
        oo.flags = mode ? EMBT_OPEN_NO_MMAP : 0;
        embt_file *f = (embt_file *)1;
        embt_status st = embt_file_open(&f, path, &oo);
        cr_assert(st == EMBT_EIO || st == EMBT_EFORMAT, "%s: %s", path, embt_status_name(st));
        cr_assert_null(f);
    }
}

Test(reader, files_that_are_not_embt_are_eformat, .init = tu_setup, .fini = tu_teardown)
{
    char text[300];
    memset(text, 'a', sizeof text);
    TU_STATUS(open_verify_memory((const uint8_t *)text, sizeof text), EMBT_EFORMAT);
    uint8_t zeros[256] = {0};
    TU_STATUS(open_verify_memory(zeros, sizeof zeros), EMBT_EFORMAT);
    /* a PNG's signature differs from ours only in the name */
    uint8_t png[200] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    TU_STATUS(open_verify_memory(png, sizeof png), EMBT_EFORMAT);
}

/* ---- O(1) open ---- */

/* Writes a vocabulary of n tokens and a tiny tied table (uncompressed: the mapped path). */
static void write_vocab_file(const char *path, uint32_t n)
{
    tu_sample s = {n, 1, EMBT_DTYPE_U8, 0, 0, NULL};
    TU_OK(tu_write_sample(path, &s));
}

struct touch {
    size_t pages, total_pages;
    long faults;
};

/* Drops the file from the page cache, opens it, finds one token (the last one) and reads its token
 * back; counts the file's resident pages (mincore on a separate mapping) and the process's page
 * faults during open + find. */
static struct touch measure_open(const char *path, uint32_t n)
{
    struct touch t = {0};
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    size_t size = (size_t)st.st_size, page = (size_t)sysconf(_SC_PAGESIZE);
    cr_assert_eq(fdatasync(fd), 0);
    cr_assert_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    void *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    cr_assert_neq(map, MAP_FAILED);
    t.total_pages = (size + page - 1) / page;
    unsigned char *vec = malloc(t.total_pages);
    cr_assert_not_null(vec);

    char tok[64];
    size_t len = tu_token(tok, sizeof tok, n - 1);
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, NULL));
    const embt_vocab *v = NULL;
    TU_OK(embt_file_vocab(&v, f, NULL));
    uint32_t id = 0;
    TU_OK(embt_vocab_find(&id, v, tok, len));
    getrusage(RUSAGE_SELF, &r1);
    cr_assert_eq(id, n - 1);

    cr_assert_eq(mincore(map, size, vec), 0);
    for (size_t i = 0; i < t.total_pages; i++)
        t.pages += vec[i] & 1;
    t.faults = (r1.ru_minflt - r0.ru_minflt) + (r1.ru_majflt - r0.ru_majflt);
    embt_file_close(f);
    munmap(map, size);
    free(vec);
    close(fd);
    return t;
}

Test(reader, open_and_one_find_touch_as_many_pages_for_300000_tokens_as_for_10, .init = tu_setup,
     .fini = tu_teardown, .timeout = 60)
{
    const char *small = tu_path("v10.embt"), *big = tu_path("v300k.embt");
    write_vocab_file(small, 10);
    write_vocab_file(big, 300000);
    /* warm up the library's own code and allocator first */
    struct touch a = measure_open(small, 10);
    a = measure_open(small, 10);
    struct touch b = measure_open(big, 300000);
    cr_log_info("10 tokens: %zu of %zu pages resident, %ld faults; 300000 tokens: %zu of %zu pages "
                "resident, %ld faults",
                a.pages, a.total_pages, a.faults, b.pages, b.total_pages, b.faults);
    /* mincore also counts the kernel's read-ahead, which on a device with a large read_ahead_kb
     * pulls megabytes around one touched page, so it is only reported. Page faults count what the
     * process touched (fault-around maps up to 16 pages per fault): a reader that scanned the
     * offsets, the tokens or the index of the big file would fault well over 100 times. */
    cr_assert_gt(b.total_pages, 2000);
    cr_assert_lt(b.faults, a.faults + 32, "open + find faulted %ld times (10 tokens: %ld)",
                 b.faults, a.faults);
    /* control: the instrument sees a scan of the same file */
    int fd = open(big, O_RDONLY);
    cr_assert_geq(fd, 0);
    size_t size = b.total_pages * (size_t)sysconf(_SC_PAGESIZE);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    const volatile uint8_t *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    cr_assert_neq((void *)map, MAP_FAILED);
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    unsigned sum = 0;
    for (size_t off = 0; off < (size_t)st.st_size; off += (size_t)sysconf(_SC_PAGESIZE))
        sum += map[off];
    getrusage(RUSAGE_SELF, &r1);
    long scan = (r1.ru_minflt - r0.ru_minflt) + (r1.ru_majflt - r0.ru_majflt);
    cr_log_info("control: reading every page faulted %ld times (checksum %u, %zu bytes)", scan, sum,
                size);
    cr_assert_gt(scan, 64, "page faults do not measure touched pages here");
    munmap((void *)map, (size_t)st.st_size);
    close(fd);
}
