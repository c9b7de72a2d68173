/* gather.c: F.embedding: rows of a table (any dtype) or of a writable matrix gathered by int64 id into
 * float32, with PyTorch's padding_idx checks and max_norm renorm (in the output only for a read-only
 * table, in place for a matrix). Every id is checked before anything is read or written. f32 rows are
 * memcpy'd with the next rows prefetched; f16 rows convert with F16C when the CPU has it, else with a
 * branch-free portable kernel; large calls are split over a few threads. */
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "reader.h"

/* ---- CPU features and thread count, probed once ---- */

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static bool have_f16c;
static unsigned n_cpus = 1;

static void probe(void)
{
    __builtin_cpu_init();
    /* clang 14's __builtin_cpu_supports has no "f16c": read CPUID leaf 1, ECX bit 29 directly;
     * the avx2 check also covers the OS saving the ymm registers */
    unsigned eax, ebx, ecx = 0, edx;
    bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29));
    have_f16c = f16c && __builtin_cpu_supports("avx2");
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    n_cpus = n > 1 ? (unsigned)n : 1u;
}

/* ---- row kernels ---- */

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t f32_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* binary16 -> binary32 without branches, bit-identical to dtype.c (NaNs quieted), written so
 * the compiler vectorises it (integer ops, selects and one exact int -> float conversion):
 * normal:    exponent re-biased by 112, mantissa shifted by 13;
 * inf/NaN:   exponent forced to 255 (another 112);
 * subnormal: m * 2^-24, exact in float32 (m < 1024). */
static void f16_row_generic(float *restrict dst, const uint16_t *restrict src, size_t n)
{
    /* dst: (n)   src: (n) binary16 bits, little-endian host */
    for (size_t i = 0; i < n; i++) {
        uint32_t h = src[i];
        uint32_t em = h & 0x7FFFu;
        uint32_t bits = (em << 13) + (112u << 23);
        uint32_t is_special = 0u - (uint32_t)(em >= 0x7C00u); /* masks: no branches */
        uint32_t is_nan = 0u - (uint32_t)(em > 0x7C00u);
        uint32_t is_sub = 0u - (uint32_t)(em < 0x0400u);
        bits += is_special & (112u << 23);
        bits |= is_nan & 0x00400000u; /* signalling NaNs become quiet, as F16C makes them */
        uint32_t sub_bits = f32_to_bits((float)(int32_t)em * 0x1p-24f);
        dst[i] = f32_from_bits(((h & 0x8000u) << 16) | (sub_bits & is_sub) | (bits & ~is_sub));
    }
}

__attribute__((target("f16c,avx2"))) static void f16_rows_f16c(float *restrict dst,
                                                               const uint8_t *base,
                                                               size_t row_bytes, size_t cols,
                                                               const int64_t *ids, size_t n)
{
    /* dst: (n, cols)   base: (rows, cols) binary16 */
    for (size_t i = 0; i < n; i++) {
        const uint16_t *src = (const uint16_t *)(const void *)(base + (size_t)ids[i] * row_bytes);
        float *d = dst + i * cols;
        size_t j = 0;
        for (; j + 8 <= cols; j += 8)
            _mm256_storeu_ps(
                d + j, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + j))));
        for (; j < cols; j++)
            d[j] = _cvtsh_ss(src[j]);
    }
}

/* n consecutive binary16 rows (stride row_bytes) to float32, for scans that read a table in order. */
__attribute__((target("f16c,avx2"))) static void
f16_block_f16c(float *restrict dst, const uint8_t *src, size_t row_bytes, size_t cols, size_t n)
{
    /* dst: (n, cols) */
    for (size_t i = 0; i < n; i++) {
        const uint16_t *r = (const uint16_t *)(const void *)(src + i * row_bytes);
        float *d = dst + i * cols;
        size_t j = 0;
        for (; j + 8 <= cols; j += 8)
            _mm256_storeu_ps(
                d + j, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(r + j))));
        for (; j < cols; j++)
            d[j] = _cvtsh_ss(r[j]);
    }
}

void embt__f16_block_to_f32(float *dst, const uint8_t *src, size_t row_bytes, size_t cols, size_t n,
                            bool generic)
{
    pthread_once(&probe_once, probe);
    if (!generic && have_f16c) {
        f16_block_f16c(dst, src, row_bytes, cols, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        f16_row_generic(dst + i * cols, (const uint16_t *)(const void *)(src + i * row_bytes),
                        cols);
}

/* Prefetch the cache lines of a row some rows ahead: random rows miss in cache and the TLB, and the
 * hardware prefetcher cannot guess the next id. */
static inline void prefetch_row(const uint8_t *p, size_t row_bytes)
{
    for (size_t o = 0; o < row_bytes; o += 64)
        __builtin_prefetch(p + o);
    __builtin_prefetch(p + row_bytes - 1);
}

enum { AHEAD = 8 };

typedef struct gather_job {
    float *dst; /* (n, cols) */
    const embt_table *t;
    const int64_t *ids; /* (n), all checked */
    size_t n;
    double max_norm; /* 0: none */
    double norm_type;
    bool generic;
} gather_job;

static double row_norm(const float *restrict x, size_t n, double p);
static void renorm_row(float *restrict x, size_t n, double max_norm, double p);

static void run_job(const gather_job *j)
{
    const embt_table *t = j->t;
    const uint8_t *base = t->data;
    size_t rb = t->row_bytes, cols = (size_t)t->cols;
    switch (t->dtype) {
    case EMBT_DTYPE_F32:
        /* little-endian host (internal.h): the stored bytes are the floats */
        for (size_t i = 0; i < j->n; i++) {
            if (i + AHEAD < j->n)
                prefetch_row(base + (size_t)j->ids[i + AHEAD] * rb, rb);
            memcpy(j->dst + i * cols, base + (size_t)j->ids[i] * rb, rb);
        }
        break;
    case EMBT_DTYPE_F16:
        if (!j->generic && have_f16c) {
            for (size_t i = 0; i < j->n; i += AHEAD) {
                size_t m = j->n - i < AHEAD ? j->n - i : AHEAD;
                for (size_t k = i + AHEAD; k < j->n && k < i + 2 * AHEAD; k++)
                    prefetch_row(base + (size_t)j->ids[k] * rb, rb);
                f16_rows_f16c(j->dst + i * cols, base, rb, cols, j->ids + i, m);
            }
            break;
        }
        for (size_t i = 0; i < j->n; i++) {
            if (i + AHEAD < j->n)
                prefetch_row(base + (size_t)j->ids[i + AHEAD] * rb, rb);
            f16_row_generic(j->dst + i * cols,
                            (const uint16_t *)(const void *)(base + (size_t)j->ids[i] * rb), cols);
        }
        break;
    default:
        for (size_t i = 0; i < j->n; i++) {
            uint64_t row = (uint64_t)j->ids[i];
            float scale = 1.0f;
            if (t->scales)
                scale = t->scales[t->rank == 1 ? 0 : row];
            embt__to_f32(j->dst + i * cols, base + (size_t)row * rb, t->dtype, cols, scale);
        }
        break;
    }
    if (j->max_norm > 0)
        for (size_t i = 0; i < j->n; i++)
            renorm_row(j->dst + i * cols, cols, j->max_norm, j->norm_type);
}

static void *job_thread(void *arg)
{
    run_job(arg);
    return NULL;
}

/* 1 MiB of output per thread: a random-row gather is bound by the misses one core keeps in flight, so
 * a second thread pays for its start (tens of microseconds) from about 2,500 rows of 100 floats on. */
enum { MAX_THREADS = 4, MIN_BYTES_PER_THREAD = 1 << 20 };

/* Splits the rows over up to MAX_THREADS threads (the caller's included). Falls back to one thread if
 * a thread cannot be created: the result is the same either way. */
static void run_split(const gather_job *job, bool one_thread)
{
    size_t bytes = job->n * (size_t)job->t->cols * sizeof(float);
    unsigned n_threads = 1;
    if (!one_thread) {
        size_t by_size = bytes / MIN_BYTES_PER_THREAD;
        n_threads = n_cpus < MAX_THREADS ? n_cpus : MAX_THREADS;
        if (by_size < n_threads)
            n_threads = by_size ? (unsigned)by_size : 1u;
    }
    if (n_threads <= 1) {
        run_job(job);
        return;
    }
    gather_job parts[MAX_THREADS];
    pthread_t threads[MAX_THREADS];
    bool started[MAX_THREADS] = {false};
    size_t per = (job->n + n_threads - 1) / n_threads, cols = (size_t)job->t->cols;
    for (unsigned k = 0; k < n_threads; k++) {
        size_t from = k * per < job->n ? k * per : job->n;
        size_t to = from + per < job->n ? from + per : job->n;
        parts[k] = *job;
        parts[k].dst = job->dst + from * cols;
        parts[k].ids = job->ids + from;
        parts[k].n = to - from;
    }
    for (unsigned k = 1; k < n_threads; k++)
        started[k] = pthread_create(&threads[k], NULL, job_thread, &parts[k]) == 0;
    run_job(&parts[0]);
    for (unsigned k = 1; k < n_threads; k++) {
        if (started[k])
            pthread_join(threads[k], NULL);
        else
            run_job(&parts[k]);
    }
}

/* ---- norms (ANCHORS 3.1; aten embedding_renorm_cpu_) ---- */

/* ||x||_p as PyTorch's row.norm(p).item<double>(): a float32 value read out as a double. PyTorch sums
 * in float32 lanes; embt sums in double and rounds once, which is within an ulp or two of it. */
static double row_norm(const float *restrict x, size_t n, double p)
{
    /* x: (n) */
    double acc = 0.0;
    if (p == 2.0) {
        for (size_t i = 0; i < n; i++)
            acc += (double)x[i] * (double)x[i];
        acc = sqrt(acc);
    } else if (p == 1.0) {
        for (size_t i = 0; i < n; i++)
            acc += fabs((double)x[i]);
    } else if (isinf(p)) {
        for (size_t i = 0; i < n; i++)
            acc = fabs((double)x[i]) > acc ? fabs((double)x[i]) : acc;
    } else {
        for (size_t i = 0; i < n; i++)
            acc += pow(fabs((double)x[i]), p);
        acc = pow(acc, 1.0 / p);
    }
    return (double)(float)acc;
}

static void renorm_row(float *restrict x, size_t n, double max_norm, double p)
{
    /* x: (n); the scale is computed in double and applied as a float32 multiply, as `row *= scale`
     * on a float tensor with a double scalar does */
    double norm = row_norm(x, n, p);
    if (norm > max_norm) {
        float scale = (float)(max_norm / (norm + 1e-7));
        for (size_t i = 0; i < n; i++)
            x[i] *= scale;
    }
}

/* ---- argument checks ---- */

static embt_status check_ids(const int64_t *ids, size_t n, uint64_t rows)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (uint64_t)ids[i] >= rows)
            return embt__error(EMBT_EINVAL, i, NULL, 0,
                               "id %lld at position %zu out of range (%llu rows)",
                               (long long)ids[i], i, (unsigned long long)rows);
    return EMBT_OK;
}

static embt_status check_renorm(double max_norm, double norm_type)
{
    if (!(max_norm >= 0.0))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "max_norm %g is not >= 0",
                           max_norm);
    if (!(norm_type > 0.0))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "norm_type %g is not > 0",
                           norm_type);
    return EMBT_OK;
}

static embt_status check_padding(int64_t padding_idx, uint64_t rows)
{
    /* F.embedding: padding_idx in [-V, V) */
    if (padding_idx == EMBT_NO_PADDING)
        return EMBT_OK;
    if (padding_idx >= 0 ? (uint64_t)padding_idx >= rows
                         : (uint64_t)(-(padding_idx + 1)) + 1 > rows)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "padding_idx %lld out of range (%llu rows)", (long long)padding_idx,
                           (unsigned long long)rows);
    return EMBT_OK;
}

static embt_status check_gather_options(const embt_gather_options *o, uint64_t rows)
{
    if (o->version != EMBT_GATHER_OPTIONS_VERSION)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "unknown gather options version %u", o->version);
    embt_status st = check_padding(o->padding_idx, rows);
    if (st)
        return st;
    return check_renorm(o->max_norm, o->norm_type);
}

/* A float32 matrix seen as a table, so every kernel reads one kind of source. */
static void matrix_view(embt_table *t, const embt_matrix *m)
{
    memset(t, 0, sizeof *t);
    t->name = (char *)"matrix";
    t->dtype = EMBT_DTYPE_F32;
    t->rank = 2;
    t->rows = m->rows;
    t->cols = m->cols;
    t->row_bytes = (size_t)m->cols * sizeof(float);
    t->data = (const uint8_t *)m->data;
    t->scales_entry = SIZE_MAX;
}

/* ---- public ---- */

embt_status embt_gather(float *dst, const embt_table *table, const int64_t *ids, size_t n_ids,
                        const embt_gather_options *opts)
{
    EMBT_CHECK_ARG(table && (n_ids == 0 || (dst && ids)));
    embt_gather_options defaults = EMBT_GATHER_OPTIONS_INIT;
    const embt_gather_options *o = opts ? opts : &defaults;
    embt_status st = check_gather_options(o, table->rows);
    if (st)
        return st;
    if ((st = check_ids(ids, n_ids, table->rows)))
        return st;
    if (n_ids == 0 || table->cols == 0)
        return EMBT_OK;
    pthread_once(&probe_once, probe);
    gather_job job = {
        dst, table, ids, n_ids, o->max_norm, o->norm_type, (o->flags & EMBT_OPS_GENERIC) != 0};
    run_split(&job, (o->flags & EMBT_OPS_ONE_THREAD) != 0);
    return EMBT_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

embt_status embt_renorm(embt_matrix *weight, const int64_t *ids, size_t n_ids, double max_norm,
                        double norm_type)
{
    EMBT_CHECK_ARG(weight && (n_ids == 0 || ids) &&
                   (weight->data || weight->rows == 0 || weight->cols == 0));
    embt_status st = check_renorm(max_norm, norm_type);
    if (st)
        return st;
    if (!(max_norm > 0.0))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "max_norm must be > 0");
    if ((st = check_ids(ids, n_ids, weight->rows)))
        return st;
    if (n_ids == 0)
        return EMBT_OK;
    /* aten sorts the ids and skips repeats: each distinct row is renormalised once */
    int64_t *sorted = embt__malloc(n_ids * sizeof *sorted);
    if (!sorted)
        return embt__error_nomem();
    memcpy(sorted, ids, n_ids * sizeof *sorted);
    qsort(sorted, n_ids, sizeof *sorted, cmp_i64);
    size_t cols = (size_t)weight->cols;
    for (size_t i = 0; i < n_ids; i++)
        if (i == 0 || sorted[i] != sorted[i - 1])
            renorm_row(weight->data + (size_t)sorted[i] * cols, cols, max_norm, norm_type);
    embt__free(sorted);
    return EMBT_OK;
}

embt_status embt_matrix_gather(float *dst, embt_matrix *weight, const int64_t *ids, size_t n_ids,
                               const embt_gather_options *opts)
{
    EMBT_CHECK_ARG(weight && (n_ids == 0 || (dst && ids)));
    embt_gather_options o = EMBT_GATHER_OPTIONS_INIT;
    if (opts)
        o = *opts;
    embt_table view;
    matrix_view(&view, weight);
    embt_status st = check_gather_options(&o, weight->rows);
    if (st)
        return st;
    if ((st = check_ids(ids, n_ids, weight->rows)))
        return st;
    if (o.max_norm > 0 && (st = embt_renorm(weight, ids, n_ids, o.max_norm, o.norm_type)))
        return st;
    o.max_norm = 0.0; /* already applied to the weight */
    return embt_gather(dst, &view, ids, n_ids, &o);
}
