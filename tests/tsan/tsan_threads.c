/* tsan_threads.c: the library's concurrency claims, exercised in a program ThreadSanitizer can run
 * (Criterion cannot start under TSan: Snaipe/Criterion#274, "Could not initialize inheritable
 * arena"). (1) Eight threads share one open file (mapped, and read into memory) and at once find
 * tokens, read tokens, rows, counts, scales and norms, gather, hit errors (per-thread records) and
 * verify. (2) The text importer's parallel row parsing, on a good file and on one with an error
 * found by a worker, and two conversions running in parallel. Exit status 0 when every result is
 * right; TSan's exitcode option makes any race report fail the run. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embt/embt.h"

#define N_TOKENS 3000u
#define COLS 24u
#define N_THREADS 8

static char dir[256];
static atomic_int failures;

#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond);                             \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            atomic_fetch_add(&failures, 1);                                                        \
        }                                                                                          \
    } while (0)

static const char *path_in(const char *name)
{
    static char bufs[8][320];
    static atomic_uint next;
    char *b = bufs[atomic_fetch_add(&next, 1) % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

static size_t token(char *buf, size_t cap, uint32_t i)
{
    return (size_t)snprintf(buf, cap, i % 3 ? "w%u" : "\xc3\xa9t\xc3\xa9%u", i);
}

static float value(uint32_t r, uint32_t c)
{
    return (float)((int)((r * 31u + c * 7u) % 2001u) - 1000) / 256.0f;
}

static int write_sample(const char *path)
{
    embt_writer *w = NULL;
    if (embt_writer_open(&w, path, NULL))
        return -1;
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    vs.flags = EMBT_VOCAB_COUNTS;
    int rc = embt_writer_vocab_begin(w, &vs);
    for (uint32_t i = 0; rc == 0 && i < N_TOKENS; i++) {
        char t[32];
        rc = embt_writer_vocab_add(w, t, token(t, sizeof t, i), 100000u - i, NULL);
    }
    if (rc == 0)
        rc = embt_writer_vocab_end(w);
    float *rows = malloc(sizeof(float) * N_TOKENS * COLS);
    for (uint32_t r = 0; rows && r < N_TOKENS; r++)
        for (uint32_t c = 0; c < COLS; c++)
            rows[r * COLS + c] = value(r, c);
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = "embedding";
    ts.rows = N_TOKENS;
    ts.cols = COLS;
    ts.vocab = "words";
    ts.flags = EMBT_TABLE_NORMS;
    if (rc == 0)
        rc = rows ? embt_writer_add_table_f32(w, &ts, rows) : -1;
    ts.name = "quantised";
    ts.dtype = EMBT_DTYPE_I8;
    ts.vocab = NULL;
    ts.flags = EMBT_TABLE_COMPRESS;
    if (rc == 0)
        rc = embt_writer_add_table_f32(w, &ts, rows);
    if (rc == 0)
        rc = embt_writer_set_metadata(w, "model: tsan\n", 12);
    if (rc == 0)
        rc = embt_writer_commit(w);
    embt_writer_free(w);
    free(rows);
    return rc;
}

typedef struct reader_job {
    const embt_file *file;
    unsigned seed;
} reader_job;

static void *reader(void *arg)
{
    const reader_job *job = arg;
    const embt_vocab *v = NULL;
    const embt_table *t = NULL, *q = NULL;
    EXPECT(embt_file_vocab(&v, job->file, "words") == EMBT_OK, "vocab");
    EXPECT(embt_file_table(&t, job->file, "embedding") == EMBT_OK, "table");
    EXPECT(embt_file_table(&q, job->file, "quantised") == EMBT_OK, "quantised");
    if (!v || !t || !q)
        return NULL;
    float row[COLS], gathered[4 * COLS];
    for (uint32_t k = 0; k < N_TOKENS; k++) {
        uint32_t i = (k * 7919u + job->seed * 104729u) % N_TOKENS;
        char tok[32];
        size_t len = token(tok, sizeof tok, i);
        uint32_t id = EMBT_NONE_ID;
        EXPECT(embt_vocab_find(&id, v, tok, len) == EMBT_OK && id == i, "find %u", i);
        size_t got_len = 0;
        const char *got = embt_vocab_token(v, i, &got_len);
        EXPECT(got && got_len == len && !memcmp(got, tok, len), "token %u", i);
        uint64_t count = 0;
        EXPECT(embt_vocab_count(&count, v, i) == EMBT_OK && count == 100000u - i, "count %u", i);
        EXPECT(embt_table_read_row_f32(row, t, i) == EMBT_OK && row[1] == value(i, 1), "row %u", i);
        EXPECT(embt_table_read_row_f32(row, q, i) == EMBT_OK, "i8 row %u", i);
        EXPECT(embt_table_norms(t)[i] > 0, "norm %u", i);
        if (k % 16 == 0) {
            uint64_t ids[4] = {i, 0, N_TOKENS - 1, i};
            EXPECT(embt_table_gather_f32(gathered, t, ids, 4) == EMBT_OK, "gather");
            /* the failure's record belongs to this thread alone */
            ids[1] = N_TOKENS + job->seed;
            EXPECT(embt_table_gather_f32(gathered, t, ids, 4) == EMBT_EINVAL &&
                       embt_error_last()->code == EMBT_EINVAL && embt_error_last()->offset == 1,
                   "gather error record");
            uint32_t none;
            EXPECT(embt_vocab_find(&none, v, "absent", 6) == EMBT_ENOTFOUND, "absent");
        }
    }
    if (job->seed % 4 == 0)
        EXPECT(embt_file_verify(job->file) == EMBT_OK, "verify: %s", embt_error_last()->message);
    return NULL;
}

static void readers_share_one_file(unsigned open_flags)
{
    embt_open_options oo = EMBT_OPEN_OPTIONS_INIT;
    oo.flags = open_flags;
    embt_file *f = NULL;
    EXPECT(embt_file_open(&f, path_in("sample.embt"), &oo) == EMBT_OK, "open");
    if (!f)
        return;
    pthread_t th[N_THREADS];
    reader_job jobs[N_THREADS];
    for (unsigned i = 0; i < N_THREADS; i++) {
        jobs[i] = (reader_job){f, i};
        EXPECT(pthread_create(&th[i], NULL, reader, &jobs[i]) == 0, "pthread_create");
    }
    for (unsigned i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);
    embt_file_close(f);
}

/* A GloVe text file of `rows` rows; row `bad_row` (if < rows) has a value that is not a number. */
static void write_text(const char *path, uint32_t rows, uint32_t bad_row)
{
    FILE *fp = fopen(path, "w");
    EXPECT(fp != NULL, "create %s", path);
    if (!fp)
        return;
    for (uint32_t r = 0; r < rows; r++) {
        char tok[32];
        token(tok, sizeof tok, r);
        fprintf(fp, "%s", tok);
        for (uint32_t c = 0; c < 8; c++)
            if (r == bad_row && c == 5)
                fprintf(fp, " x");
            else
                fprintf(fp, " %.9g", (double)value(r, c));
        fprintf(fp, "\n");
    }
    fclose(fp);
}

typedef struct convert_job {
    const char *in, *out;
    embt_status want;
    uint32_t want_line;
} convert_job;

static void *convert(void *arg)
{
    const convert_job *job = arg;
    embt_status st = embt_convert_file(job->in, job->out, NULL);
    EXPECT(st == job->want, "convert %s: %s (%s)", job->in, embt_status_name(st),
           embt_error_last()->message);
    if (job->want_line)
        EXPECT(embt_error_last()->line == job->want_line, "error on line %u, expected %u",
               embt_error_last()->line, job->want_line);
    if (st == EMBT_OK) {
        embt_file *f = NULL;
        embt_open_options oo = EMBT_OPEN_OPTIONS_INIT;
        oo.flags = EMBT_OPEN_VERIFY;
        EXPECT(embt_file_open(&f, job->out, &oo) == EMBT_OK, "open %s", job->out);
        embt_file_close(f);
    }
    return NULL;
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/embt-tsan-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    EXPECT(write_sample(path_in("sample.embt")) == 0, "write sample: %s",
           embt_error_last()->message);
    readers_share_one_file(0);
    readers_share_one_file(EMBT_OPEN_NO_MMAP);

    /* rows enough for several parse parts per batch; the bad row lies in a worker's part */
    write_text(path_in("good.txt"), 6000, UINT32_MAX);
    write_text(path_in("bad.txt"), 6000, 5000);
    convert_job jobs[3] = {{path_in("good.txt"), path_in("good.embt"), EMBT_OK, 0},
                           {path_in("bad.txt"), path_in("bad.embt"), EMBT_EPARSE, 5001},
                           {path_in("good.txt"), path_in("good2.embt"), EMBT_OK, 0}};
    convert(&jobs[0]);
    convert(&jobs[1]);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        EXPECT(pthread_create(&th[i], NULL, convert, &jobs[i]) == 0, "pthread_create");
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    EXPECT(access(path_in("bad.embt"), F_OK) != 0, "a failed conversion left its output");

    const char *names[] = {"sample.embt", "good.txt", "bad.txt", "good.embt", "good2.embt"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        unlink(path_in(names[i]));
    rmdir(dir);
    int n = atomic_load(&failures);
    printf("tsan_threads: %s (%d failed checks)\n", n ? "FAILED" : "ok", n);
    return n ? 1 : 0;
}
