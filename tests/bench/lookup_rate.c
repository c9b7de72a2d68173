/* lookup_rate.c: warm-cache rates of token -> id through the on-disk index (hits and misses) and of
 * random-row gathers, for the README's performance notes. Usage: lookup_rate FILE [TABLE]. */
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

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: lookup_rate FILE [TABLE]\n");
        return 2;
    }
    embt_file *file = NULL;
    const embt_vocab *vocab = NULL;
    const embt_table *table = NULL;
    if (embt_file_open(&file, argv[1], NULL) || embt_file_vocab(&vocab, file, NULL) ||
        embt_file_table(&table, file, argc == 3 ? argv[2] : "embedding")) {
        fprintf(stderr, "lookup_rate: %s\n", embt_error_last()->message);
        embt_file_close(file);
        return 1;
    }
    uint32_t n = embt_vocab_size(vocab);
    enum { LOOKUPS = 1000000, GATHER = 10000 };
    uint64_t seed = 0x9E3779B97F4A7C15ull, sink = 0;
    double t0 = now();
    for (int i = 0; i < LOOKUPS; i++) {
        size_t len;
        const char *tok = embt_vocab_token(vocab, (uint32_t)(next(&seed) % n), &len);
        uint32_t id;
        if (embt_vocab_find(&id, vocab, tok, len) == EMBT_OK)
            sink += id;
    }
    double t1 = now();
    char miss[32];
    for (int i = 0; i < LOOKUPS; i++) {
        int len = snprintf(miss, sizeof miss, "#absent-%llu", (unsigned long long)next(&seed));
        uint32_t id;
        sink += embt_vocab_find(&id, vocab, miss, (size_t)len) == EMBT_OK;
    }
    double t2 = now();
    size_t cols = (size_t)embt_table_cols(table);
    uint64_t *ids = malloc(GATHER * sizeof *ids);
    float *dst = malloc(GATHER * cols * sizeof *dst);
    for (int i = 0; i < GATHER; i++)
        ids[i] = next(&seed) % embt_table_rows(table);
    double best = 1e9;
    for (int rep = 0; rep < 20; rep++) {
        double g0 = now();
        if (embt_table_gather_f32(dst, table, ids, GATHER))
            return 1;
        double g1 = now();
        best = g1 - g0 < best ? g1 - g0 : best;
    }
    printf("tokens: %u\nfind_hits_per_s: %.0f\nfind_misses_per_s: %.0f\n"
           "gather_%d_rows_s: %.6f\ngather_rows_per_s: %.0f\ncheck: %llu\n",
           n, LOOKUPS / (t1 - t0), LOOKUPS / (t2 - t1), GATHER, best, GATHER / best,
           (unsigned long long)(sink + (uint64_t)dst[0]));
    free(ids);
    free(dst);
    embt_file_close(file);
    return 0;
}
