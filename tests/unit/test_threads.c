/* test_threads.c: one open file read by 2 to 8 threads at once (find, token, read_row, gather on a
 * mapped F32 table and an inflated F16 table) gives exactly the values computed single-threaded
 * beforehand; the per-thread error record stays per thread. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

enum { N_TOKENS = 5000, COLS = 24, OPS = 100000 };

struct shared {
    const embt_file *file;
    const embt_vocab *vocab;
    const embt_table *mapped;   /* F32, uncompressed: rows straight from the mapping */
    const embt_table *inflated; /* F16, compressed: rows from the inflated copy */
    float *expect_mapped;       /* (N_TOKENS, COLS), computed single-threaded */
    float *expect_inflated;     /* (N_TOKENS, COLS) */
};

struct worker {
    const struct shared *s;
    uint64_t seed;
    size_t mismatches;
    size_t ops;
    char first_error[160];
};

static void note(struct worker *w, const char *what, uint64_t i)
{
    if (w->mismatches++ == 0)
        snprintf(w->first_error, sizeof w->first_error, "%s at %llu", what, (unsigned long long)i);
}

static void *work(void *arg)
{
    struct worker *w = arg;
    const struct shared *s = w->s;
    float row[COLS], gathered[4 * COLS];
    for (int op = 0; op < OPS; op++) {
        uint32_t id = (uint32_t)(tu_rand(&w->seed) % N_TOKENS);
        char tok[64];
        size_t len = tu_token(tok, sizeof tok, id), got_len = 0;
        uint32_t found = EMBT_NONE_ID;
        switch (op % 5) {
        case 0:
            if (embt_vocab_find(&found, s->vocab, tok, len) != EMBT_OK || found != id)
                note(w, "find", id);
            break;
        case 1: {
            const char *t = embt_vocab_token(s->vocab, id, &got_len);
            if (!t || got_len != len || memcmp(t, tok, len) != 0)
                note(w, "token", id);
            /* an absent token: ENOTFOUND, and this thread's record is untouched */
            tok[0] = '#';
            if (embt_vocab_find(&found, s->vocab, tok, len) != EMBT_ENOTFOUND)
                note(w, "absent find", id);
            break;
        }
        case 2:
            if (embt_table_read_row_f32(row, s->mapped, id) != EMBT_OK ||
                memcmp(row, s->expect_mapped + (size_t)id * COLS, sizeof row) != 0)
                note(w, "read_row f32", id);
            break;
        case 3:
            if (embt_table_read_row_f32(row, s->inflated, id) != EMBT_OK ||
                memcmp(row, s->expect_inflated + (size_t)id * COLS, sizeof row) != 0)
                note(w, "read_row f16", id);
            break;
        default: {
            uint64_t ids[4];
            for (int k = 0; k < 4; k++)
                ids[k] = tu_rand(&w->seed) % N_TOKENS;
            const embt_table *t = op % 2 ? s->mapped : s->inflated;
            const float *expect = op % 2 ? s->expect_mapped : s->expect_inflated;
            if (embt_table_gather_f32(gathered, t, ids, 4) != EMBT_OK) {
                note(w, "gather status", ids[0]);
                break;
            }
            for (int k = 0; k < 4; k++)
                if (memcmp(gathered + k * COLS, expect + ids[k] * COLS, sizeof row) != 0)
                    note(w, "gather", ids[k]);
            /* an out-of-range id fails on this thread only */
            ids[2] = N_TOKENS;
            if (embt_table_gather_f32(gathered, t, ids, 4) != EMBT_EINVAL ||
                embt_error_last()->code != EMBT_EINVAL || embt_error_last()->offset != 2)
                note(w, "gather out of range", ids[0]);
            break;
        }
        }
        w->ops++;
    }
    return NULL;
}

static void write_file(const char *path)
{
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, path, NULL));
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    TU_OK(embt_writer_vocab_begin(w, &vs));
    for (uint32_t i = 0; i < N_TOKENS; i++) {
        char tok[64];
        size_t len = tu_token(tok, sizeof tok, i);
        TU_OK(embt_writer_vocab_add(w, tok, len, 0, NULL));
    }
    TU_OK(embt_writer_vocab_end(w));
    float *vals = malloc(sizeof(float) * N_TOKENS * COLS);
    cr_assert_not_null(vals);
    for (size_t i = 0; i < (size_t)N_TOKENS * COLS; i++)
        vals[i] = tu_value(i / COLS, i % COLS);
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = "mapped";
    ts.rows = N_TOKENS;
    ts.cols = COLS;
    ts.vocab = "words";
    TU_OK(embt_writer_add_table_f32(w, &ts, vals));
    ts.name = "inflated";
    ts.dtype = EMBT_DTYPE_F16;
    ts.flags = EMBT_TABLE_COMPRESS;
    TU_OK(embt_writer_add_table_f32(w, &ts, vals));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    free(vals);
}

struct thread_case {
    int threads;
    unsigned open_flags;
};

ParameterizedTestParameters(threads, concurrent_readers_see_the_single_threaded_values)
{
    static struct thread_case cases[] = {
        {2, 0}, {4, 0}, {8, 0}, {3, EMBT_OPEN_NO_MMAP}, {8, EMBT_OPEN_NO_MMAP}};
    return cr_make_param_array(struct thread_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct thread_case *k, threads, concurrent_readers_see_the_single_threaded_values,
                  .init = tu_setup, .fini = tu_teardown, .timeout = 60)
{
    const char *path = tu_path("shared.embt");
    write_file(path);
    embt_open_options oo = EMBT_OPEN_OPTIONS_INIT;
    oo.flags = k->open_flags;
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, &oo));
    struct shared s = {f, NULL, NULL, NULL, NULL, NULL};
    TU_OK(embt_file_vocab(&s.vocab, f, "words"));
    TU_OK(embt_file_table(&s.mapped, f, "mapped"));
    TU_OK(embt_file_table(&s.inflated, f, "inflated"));
    s.expect_mapped = malloc(sizeof(float) * N_TOKENS * COLS);
    s.expect_inflated = malloc(sizeof(float) * N_TOKENS * COLS);
    cr_assert(s.expect_mapped && s.expect_inflated);
    for (uint32_t r = 0; r < N_TOKENS; r++) {
        TU_OK(embt_table_read_row_f32(s.expect_mapped + (size_t)r * COLS, s.mapped, r));
        TU_OK(embt_table_read_row_f32(s.expect_inflated + (size_t)r * COLS, s.inflated, r));
        /* single-threaded sanity: the F32 rows are the inputs */
        cr_assert_eq(s.expect_mapped[(size_t)r * COLS + 1], tu_value(r, 1));
    }

    struct worker ws[8];
    pthread_t tids[8];
    for (int i = 0; i < k->threads; i++) {
        ws[i] = (struct worker){&s, (uint64_t)i * 7919 + 1, 0, 0, ""};
        cr_assert_eq(pthread_create(&tids[i], NULL, work, &ws[i]), 0);
    }
    /* the main thread verifies meanwhile: a full checksum pass is also a read */
    TU_OK(embt_file_verify(f));
    size_t total = 0;
    for (int i = 0; i < k->threads; i++) {
        cr_assert_eq(pthread_join(tids[i], NULL), 0);
        cr_assert_eq(ws[i].mismatches, 0, "thread %d: %zu mismatches, first: %s", i,
                     ws[i].mismatches, ws[i].first_error);
        total += ws[i].ops;
    }
    cr_assert_eq(total, (size_t)k->threads * OPS);
    free(s.expect_mapped);
    free(s.expect_inflated);
    embt_file_close(f);
}
