/* similar_rate.c: timings of the search index for the README and the speed targets: index
 * build (norms), one top-10 cosine query, a batch of 1,000 queries, and optionally the full analogy
 * evaluation. Usage: similar_rate FILE [QUESTIONS_FILE] [--generic] [--threads N]. */
#include <embt/embt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64: deterministic ids, no libc rand() */
static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int fail(const char *what)
{
    fprintf(stderr, "similar_rate: %s: %s\n", what, embt_error_last()->message);
    return 1;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *questions = NULL;
    embt_index_options io = EMBT_INDEX_OPTIONS_INIT;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--generic") == 0)
            io.flags |= EMBT_INDEX_GENERIC;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            io.threads = (unsigned)atoi(argv[++i]);
        else if (!path)
            path = argv[i];
        else
            questions = argv[i];
    }
    if (!path) {
        fprintf(stderr, "usage: similar_rate FILE [QUESTIONS_FILE] [--generic] [--threads N]\n");
        return 2;
    }
    embt_file *file = NULL;
    const embt_table *table = NULL;
    embt_index *index = NULL;
    if (embt_file_open(&file, path, NULL) || embt_file_table(&table, file, "embedding"))
        return fail(path);
    size_t dim = (size_t)embt_table_cols(table), rows = (size_t)embt_table_rows(table);
    double t0 = now();
    if (embt_index_new(&index, table, &io))
        return fail("index");
    double t_index = now() - t0;
    printf("table: %zu x %zu %s, kernels %s, threads %u\n", rows, dim,
           embt_dtype_name(embt_table_dtype(table)), embt_index_kernels(index),
           io.threads ? io.threads : 2);
    printf("index (norms): %.1f ms\n", t_index * 1e3);

    enum { SINGLE = 50, BATCH = 1000, K = 10 };
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    float *q = malloc(BATCH * dim * sizeof(float));
    embt_hit *hits = malloc(BATCH * K * sizeof(embt_hit));
    if (!q || !hits)
        return 1;
    uint64_t ids[BATCH];
    for (size_t i = 0; i < BATCH; i++)
        ids[i] = next(&seed) % rows;
    if (embt_table_gather_f32(q, table, ids, BATCH))
        return fail("gather");
    embt_query_options qo = EMBT_QUERY_OPTIONS_INIT;
    double best = 1e9, sum = 0;
    for (int i = 0; i < SINGLE; i++) {
        uint32_t ex = (uint32_t)ids[i];
        qo.exclude = &ex;
        qo.n_exclude = 1;
        double t = now();
        if (embt_similar(hits, NULL, index, q + (size_t)i * dim, 1, K, &qo))
            return fail("similar");
        t = now() - t;
        sum += t;
        best = t < best ? t : best;
    }
    printf("one top-%d query: %.2f ms mean, %.2f ms best (%d queries)\n", K, sum / SINGLE * 1e3,
           best * 1e3, SINGLE);
    qo.exclude = NULL;
    qo.n_exclude = 0;
    t0 = now();
    if (embt_similar(hits, NULL, index, q, BATCH, K, &qo))
        return fail("batch");
    double t_batch = now() - t0;
    printf("batch of %d top-%d queries: %.1f ms (%.3f ms/query, %.1f GFLOP/s)\n", BATCH, K,
           t_batch * 1e3, t_batch * 1e3 / BATCH, 2.0 * BATCH * rows * dim / t_batch / 1e9);
    if (questions) {
        embt_analogy_report *rep = NULL;
        t0 = now();
        if (embt_eval_analogies(&rep, index, questions, NULL))
            return fail(questions);
        double t_eval = now() - t0;
        printf("analogy evaluation: %.2f s, accuracy %.4f (%llu/%llu, %llu skipped)\n", t_eval,
               rep->accuracy, (unsigned long long)rep->correct, (unsigned long long)rep->total,
               (unsigned long long)rep->skipped);
        embt_analogy_report_free(rep);
    }
    free(q);
    free(hits);
    embt_index_free(index);
    embt_file_close(file);
    return 0;
}
