/* test_util.h: helpers shared by the unit tests (header-only, everything static inline): a private
 * temporary directory per test, whole-file I/O, status assertions that print the error record, a
 * seeded RNG, and a builder for the deterministic sample files several test modules read. */
#ifndef EMBT_TEST_UTIL_H
#define EMBT_TEST_UTIL_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "embt/embt.h"

/* ---- status assertions: the message is printed for humans, never compared ---- */

#define TU_OK(expr)                                                                                \
    do {                                                                                           \
        embt_status tu_st_ = (expr);                                                               \
        cr_assert_eq(tu_st_, EMBT_OK, "%s returned %s (%s)", #expr, embt_status_name(tu_st_),      \
                     embt_error_last()->message);                                                  \
    } while (0)

#define TU_STATUS(expr, want)                                                                      \
    do {                                                                                           \
        embt_status tu_st_ = (expr);                                                               \
        cr_assert_eq(tu_st_, (want), "%s returned %s, expected %s (%s)", #expr,                    \
                     embt_status_name(tu_st_), embt_status_name(want),                             \
                     embt_error_last()->message);                                                  \
    } while (0)

/* ---- one temporary directory per test (Criterion forks each test, so a static is per test) ---- */

static char tu_dir[PATH_MAX];

/* Removes `path` and, for a directory, everything below it. */
static inline void tu_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            for (struct dirent *e; (e = readdir(d));) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                    continue;
                char sub[PATH_MAX];
                int n = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                if (n > 0 && (size_t)n < sizeof sub)
                    tu_remove_tree(sub);
            }
            closedir(d);
        }
        chmod(path, 0700);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* .init of every test that touches the file system. */
static inline void tu_setup(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tu_dir, sizeof tu_dir, "%s/embt-test-XXXXXX", base && *base ? base : "/tmp");
    cr_assert_not_null(mkdtemp(tu_dir), "mkdtemp: %s", strerror(errno));
}

/* .fini: removes the directory and everything in it. */
static inline void tu_teardown(void)
{
    if (tu_dir[0])
        tu_remove_tree(tu_dir);
    tu_dir[0] = '\0';
}

/* `name` inside the test's directory. Returns one of 8 rotating static buffers. */
static inline const char *tu_path(const char *name)
{
    static char bufs[8][PATH_MAX];
    static unsigned next;
    char *b = bufs[next++ % 8];
    int n = snprintf(b, PATH_MAX, "%s/%s", tu_dir, name);
    cr_assert(n > 0 && n < PATH_MAX, "path too long");
    return b;
}

/* `rel` inside the source tree ($EMBT_SOURCE_DIR, which CTest sets). One of 8 rotating buffers. */
static inline const char *tu_source(const char *rel)
{
    static char bufs[8][PATH_MAX];
    static unsigned next;
    const char *src = getenv("EMBT_SOURCE_DIR");
    cr_assert_not_null(src, "EMBT_SOURCE_DIR is not set");
    char *b = bufs[next++ % 8];
    int n = snprintf(b, PATH_MAX, "%s/%s", src, rel);
    cr_assert(n > 0 && n < PATH_MAX, "path too long");
    return b;
}

/* tests/fixtures/<dir>/<name> inside the source tree. One of tu_source's rotating buffers. */
static inline const char *tu_fixture(const char *dir, const char *name)
{
    char rel[PATH_MAX];
    int n = snprintf(rel, sizeof rel, "tests/fixtures/%s/%s", dir, name);
    cr_assert(n > 0 && (size_t)n < sizeof rel, "path too long");
    return tu_source(rel);
}

/* Writes vocabulary `name` (NULL: "words") of the NULL-terminated `tokens` to an open writer. */
static inline void tu_add_vocab(embt_writer *w, const char *name, const char *const tokens[])
{
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    if (name)
        vs.name = name;
    TU_OK(embt_writer_vocab_begin(w, &vs));
    for (size_t i = 0; tokens[i]; i++)
        TU_OK(embt_writer_vocab_add(w, tokens[i], strlen(tokens[i]), 0, NULL));
    TU_OK(embt_writer_vocab_end(w));
}

/* Writes the f32 table `name` of rows x cols, tied to vocabulary `vocab` (NULL: none), to an open
 * writer. */
static inline void tu_add_table(embt_writer *w, const char *name, uint64_t rows, uint64_t cols,
                                const char *vocab, const float *data)
{
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = name;
    ts.rows = rows;
    ts.cols = cols;
    ts.vocab = vocab;
    TU_OK(embt_writer_add_table_f32(w, &ts, data));
}

static inline bool tu_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* The whole file in a buffer for free() (at least 1 byte allocated); asserts on failure. */
static inline uint8_t *tu_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    cr_assert_geq(n, 0);
    rewind(f);
    /* 4096-aligned, so a buffer given to embt_file_open_memory() keeps the file's alignment */
    uint8_t *buf = aligned_alloc(4096, ((size_t)n / 4096 + 1) * 4096);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n, "short read of %s", path);
    fclose(f);
    *len_out = (size_t)n;
    return buf;
}

static inline void tu_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "create %s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

/* True when both files exist and hold the same bytes. */
static inline bool tu_same_file(const char *a, const char *b)
{
    size_t na, nb;
    uint8_t *pa = tu_read_file(a, &na), *pb = tu_read_file(b, &nb);
    bool same = na == nb && memcmp(pa, pb, na) == 0;
    free(pa);
    free(pb);
    return same;
}

/* Number of entries of directory `dir` whose name starts with `<base>.tmp.` (writer temp files). */
static inline size_t tu_count_temp(const char *dir, const char *base)
{
    char prefix[NAME_MAX + 8];
    int np = snprintf(prefix, sizeof prefix, "%s.tmp.", base);
    cr_assert(np > 0 && (size_t)np < sizeof prefix);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

/* Number of entries of the test directory, "." and ".." excluded. */
static inline size_t tu_count_entries(void)
{
    DIR *d = opendir(tu_dir);
    cr_assert_not_null(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

/* ---- deterministic pseudo-random numbers (splitmix64) ---- */

static inline uint64_t tu_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static inline float tu_randf(uint64_t *state, float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(tu_rand(state) >> 11) / 9007199254740992.0);
}

/* Copies the .embt `in` to `out` with metadata key `key` set to `value` (as `embt meta` does):
 * a resume file whose settings say something else than its tables. */
static inline void tu_rewrite_metadata_key(const char *in, const char *out, const char *key,
                                           const char *value)
{
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, in, NULL));
    size_t len = 0;
    const char *text = embt_file_metadata(f, &len);
    embt_meta *m = NULL;
    TU_OK(embt_meta_parse(&m, text ? text : "", text ? len : 0));
    TU_OK(embt_meta_set(m, key, value));
    const char *yaml = NULL;
    TU_OK(embt_meta_emit(&yaml, &len, m));
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, out, NULL));
    TU_OK(embt_writer_copy_sections(w, f, EMBT_COPY_SKIP_METADATA));
    TU_OK(embt_writer_set_metadata(w, yaml, len));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    embt_meta_free(m);
    embt_file_close(f);
}

/* A training corpus: `lines` lines of `words` tokens "w<k> " (k uniform below `vocab`, drawn with
 * tu_rand from `seed`), each line ended by LF. */
static inline void tu_write_corpus(const char *path, int lines, int words, unsigned vocab,
                                   uint64_t seed)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "create %s: %s", path, strerror(errno));
    for (int line = 0; line < lines; line++) {
        for (int w = 0; w < words; w++)
            fprintf(f, "w%u ", (unsigned)(tu_rand(&seed) % vocab));
        fputc('\n', f);
    }
    cr_assert_eq(fclose(f), 0);
}

static inline uint32_t tu_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float tu_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- the sample file: tokens, values and one builder shared by reader, threads and alloc tests ---- */

/* Token i, written into buf (NUL-terminated, returns the length). Mixes ASCII, two-, three- and
 * four-byte UTF-8, and tokens that look like numbers or markup; all distinct for distinct i. */
static inline size_t tu_token(char *buf, size_t cap, uint32_t i)
{
    static const char *const forms[] = {"w%u",
                                        "\xc3\xa9t\xc3\xa9%u",
                                        "\xe8\xaf\x8d%u",
                                        "-0.%u",
                                        "</s>%u",
                                        "\xf0\x9f\x98\x80%u",
                                        "%u,",
                                        "\"%u\""};
    int n = snprintf(buf, cap, forms[i % 8], i);
    return (size_t)n;
}

/* Value (r, c) of the sample table: finite, signs and magnitudes mixed, exact in f32. */
static inline float tu_value(uint64_t r, uint64_t c)
{
    uint64_t s = r * 1000003u + c * 7919u + 12345u;
    return tu_randf(&s, -4.0f, 4.0f);
}

typedef struct tu_sample {
    uint32_t n_tokens;    /* vocabulary "words" of this size, tokens tu_token(i) */
    uint32_t cols;        /* table "embedding", tied, (n_tokens, cols) */
    embt_dtype dtype;     /* its dtype */
    unsigned vocab_flags; /* EMBT_VOCAB_* (counts are n_tokens - i) */
    unsigned table_flags; /* EMBT_TABLE_* */
    const char *metadata; /* YAML or NULL */
} tu_sample;

/* Writes the sample to `path` with the writer; returns the first failing status (the writer is freed). */
static inline embt_status tu_write_sample(const char *path, const tu_sample *s)
{
    embt_writer *w = NULL;
    float *row = NULL;
    embt_status st = embt_writer_open(&w, path, NULL);
    if (st)
        goto done;
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    vs.flags = s->vocab_flags;
    if ((st = embt_writer_vocab_begin(w, &vs)))
        goto done;
    for (uint32_t i = 0; i < s->n_tokens; i++) {
        char tok[64];
        size_t len = tu_token(tok, sizeof tok, i);
        if ((st = embt_writer_vocab_add(w, tok, len, (uint64_t)s->n_tokens - i, NULL)))
            goto done;
    }
    if ((st = embt_writer_vocab_end(w)))
        goto done;
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = "embedding";
    ts.dtype = s->dtype;
    ts.rows = s->n_tokens;
    ts.cols = s->cols;
    ts.vocab = "words";
    ts.flags = s->table_flags;
    if ((st = embt_writer_table_begin(w, &ts)))
        goto done;
    row = malloc(sizeof(float) * s->cols);
    if (!row) {
        st = EMBT_ENOMEM;
        goto done;
    }
    for (uint32_t r = 0; r < s->n_tokens; r++) {
        for (uint32_t c = 0; c < s->cols; c++)
            row[c] = tu_value(r, c);
        if ((st = embt_writer_table_append_f32(w, row, 1)))
            goto done;
    }
    if ((st = embt_writer_table_end(w)))
        goto done;
    if (s->metadata && (st = embt_writer_set_metadata(w, s->metadata, strlen(s->metadata))))
        goto done;
    st = embt_writer_commit(w);
done:
    free(row);
    embt_writer_free(w);
    return st;
}

#endif
