/* gather_rate.c: rate of embt_gather() on random ids against memcpy of the same bytes, for f32 and f16
 * tables (default 341,479 x 100, GloVe 6B 100d's shape; 10,000 ids per call, fresh ids each call).
 * Usage: gather_rate [ROWS DIM [N_IDS]]. Builds its tables in $TMPDIR (or /tmp) and removes them. */
#include <embt/embt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t next(uint64_t *s) /* xorshift64 */
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum { REPS = 41 };

static int build(const char *path, embt_dtype dtype, uint64_t rows, uint64_t dim)
{
    embt_writer *w = NULL;
    embt_table_spec spec = EMBT_TABLE_SPEC_INIT;
    spec.name = "t";
    spec.dtype = dtype;
    spec.rows = rows;
    spec.cols = dim;
    embt_init_options init = EMBT_INIT_OPTIONS_INIT;
    init.seed = 1;
    int bad = embt_writer_open(&w, path, NULL) || embt_init_write(w, &spec, &init) ||
              embt_writer_commit(w);
    embt_writer_free(w);
    return bad;
}

int main(int argc, char **argv)
{
    uint64_t rows = argc > 2 ? strtoull(argv[1], NULL, 10) : 341479;
    uint64_t dim = argc > 2 ? strtoull(argv[2], NULL, 10) : 100;
    size_t n = argc > 3 ? strtoull(argv[3], NULL, 10) : 10000;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[2][512];
    embt_dtype dtypes[2] = {EMBT_DTYPE_F32, EMBT_DTYPE_F16};
    embt_file *files[2] = {NULL, NULL};
    const embt_table *tables[2];
    for (int k = 0; k < 2; k++) {
        snprintf(path[k], sizeof path[k], "%s/gather_rate.%ld.%d.embt", tmp, (long)getpid(), k);
        if (build(path[k], dtypes[k], rows, dim) || embt_file_open(&files[k], path[k], NULL) ||
            embt_file_table(&tables[k], files[k], "t")) {
            fprintf(stderr, "gather_rate: %s\n", embt_error_last()->message);
            return 1;
        }
    }
    int64_t *ids = malloc(n * sizeof *ids);
    uint64_t *uids = malloc(n * sizeof *uids);
    float *dst = malloc(n * dim * sizeof *dst);
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    /* page everything in once so each measurement sees a mapped (if uncached) table */
    for (int k = 0; k < 2; k++) {
        volatile const uint8_t *p = embt_table_data(tables[k]);
        size_t bytes = (size_t)rows * dim * embt_dtype_size(dtypes[k]);
        for (size_t o = 0; o < bytes; o += 4096)
            (void)p[o];
    }
    struct {
        const char *name;
        int table;
        unsigned flags;
        int old_api;
    } runs[] = {
        {"memcpy_f32", 0, 0, -1},
        {"gather_f32", 0, 0, 0},
        {"gather_f32_one_thread", 0, EMBT_OPS_ONE_THREAD, 0},
        {"table_gather_f32_api", 0, 0, 1},
        {"memcpy_f16", 1, 0, -1},
        {"gather_f16", 1, 0, 0},
        {"gather_f16_one_thread", 1, EMBT_OPS_ONE_THREAD, 0},
        {"gather_f16_generic_one_thread", 1, EMBT_OPS_ONE_THREAD | EMBT_OPS_GENERIC, 0},
        {"table_gather_f16_api", 1, 0, 1},
    };
    printf("rows: %llu\ndim: %llu\nids_per_call: %zu\n", (unsigned long long)rows,
           (unsigned long long)dim, n);
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        const embt_table *t = tables[runs[r].table];
        size_t row_bytes = (size_t)dim * embt_dtype_size(embt_table_dtype(t));
        const uint8_t *base = embt_table_data(t);
        double times[REPS];
        for (int rep = 0; rep < REPS; rep++) {
            for (size_t i = 0; i < n; i++)
                uids[i] = (uint64_t)(ids[i] = (int64_t)(next(&seed) % rows));
            size_t start = (size_t)(next(&seed) % (rows - n)) * row_bytes;
            embt_gather_options o = EMBT_GATHER_OPTIONS_INIT;
            o.flags = runs[r].flags;
            double t0 = now();
            if (runs[r].old_api < 0)
                memcpy(dst, base + start, n * row_bytes); /* the same bytes, contiguous */
            else if (runs[r].old_api)
                embt_table_gather_f32(dst, t, uids, n);
            else if (embt_gather(dst, t, ids, n, &o))
                return 1;
            times[rep] = now() - t0;
        }
        qsort(times, REPS, sizeof times[0], cmp_double);
        double med = times[REPS / 2];
        printf("%s: {median_us: %.1f, rows_per_s: %.3g, stored_GB_per_s: %.2f}\n", runs[r].name,
               med * 1e6, (double)n / med, (double)n * (double)row_bytes / med / 1e9);
    }
    free(ids);
    free(uids);
    free(dst);
    for (int k = 0; k < 2; k++) {
        embt_file_close(files[k]);
        unlink(path[k]);
    }
    return 0;
}
