/* kernels.c: dense float32 kernels of similarity search: the panel score kernels (a block of rows
 * times a panel of query lanes, matrix-multiply style) in a portable version (GCC vector extensions,
 * 4-wide) and an AVX2+FMA version chosen once with __builtin_cpu_supports, plus double-precision
 * norms and dot products that give the same bits on every path. */
#include <string.h>

#include "kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define EMBT_HAVE_AVX2_PATH 1
#endif

/* 4-lane vectors for the portable path: plain element-wise C operators, no ISA intrinsics. */
typedef float embt_v4 __attribute__((vector_size(16)));

static embt_v4 load4(const float *p)
{
    embt_v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void store4(float *p, embt_v4 v)
{
    memcpy(p, &v, sizeof v);
}

/* Portable kernel over `w` lanes (8 or 16), handled 8 at a time: 6 rows x 2 vectors of accumulators.
 * Separate multiply and add (no FMA), summing over d in order. */
static void panel_generic(float *restrict out, const float *restrict rows, size_t ld,
                          const float *restrict panel, size_t dim, size_t w)
{
    for (size_t h = 0; h < w; h += 8) {
        embt_v4 acc[EMBT__MR][2];
        memset(acc, 0, sizeof acc);
        for (size_t d = 0; d < dim; d++) {
            const float *p = panel + d * w + h;
            embt_v4 p0 = load4(p), p1 = load4(p + 4);
            for (int i = 0; i < EMBT__MR; i++) {
                float x = rows[(size_t)i * ld + d];
                embt_v4 xv = {x, x, x, x};
                acc[i][0] += xv * p0;
                acc[i][1] += xv * p1;
            }
        }
        for (int i = 0; i < EMBT__MR; i++) {
            store4(out + i * EMBT__LANES + h, acc[i][0]);
            store4(out + i * EMBT__LANES + h + 4, acc[i][1]);
        }
    }
}

static void panel16_generic(float *restrict out, const float *restrict rows, size_t ld,
                            const float *restrict panel, size_t dim)
{
    panel_generic(out, rows, ld, panel, dim, 16);
}

static void panel8_generic(float *restrict out, const float *restrict rows, size_t ld,
                           const float *restrict panel, size_t dim)
{
    panel_generic(out, rows, ld, panel, dim, 8);
}

/* Four partial sums per (row, query), added in a fixed order. */
static void rowdot_generic(float *restrict out, const float *restrict rows, size_t ld,
                           const float *restrict lanes, size_t n_lanes, size_t dim)
{
    for (size_t i = 0; i < EMBT__MR; i++) {
        const float *r = rows + i * ld;
        for (size_t j = 0; j < n_lanes; j++) {
            const float *q = lanes + j * dim;
            float s[4] = {0, 0, 0, 0};
            size_t d = 0;
            for (; d + 4 <= dim; d += 4)
                for (int t = 0; t < 4; t++)
                    s[t] += r[d + t] * q[d + t];
            for (; d < dim; d++)
                s[0] += r[d] * q[d];
            out[i * EMBT__LANES + j] = (s[0] + s[1]) + (s[2] + s[3]);
        }
    }
}

#ifdef EMBT_HAVE_AVX2_PATH
/* One ymm accumulator per (row, query), a horizontal sum at the end; the rows' independent chains
 * overlap in the out-of-order core. */
__attribute__((target("avx2,fma"))) static void rowdot_avx2(float *restrict out,
                                                            const float *restrict rows, size_t ld,
                                                            const float *restrict lanes,
                                                            size_t n_lanes, size_t dim)
{
    size_t d8 = dim & ~(size_t)7;
    for (size_t i = 0; i < EMBT__MR; i++) {
        const float *r = rows + i * ld;
        for (size_t j = 0; j < n_lanes; j++) {
            const float *q = lanes + j * dim;
            __m256 acc = _mm256_setzero_ps();
            for (size_t d = 0; d < d8; d += 8)
                acc = _mm256_fmadd_ps(_mm256_loadu_ps(r + d), _mm256_loadu_ps(q + d), acc);
            __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
            h = _mm_add_ps(h, _mm_movehl_ps(h, h));
            h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
            float t = _mm_cvtss_f32(h);
            for (size_t d = d8; d < dim; d++)
                t += r[d] * q[d];
            out[i * EMBT__LANES + j] = t;
        }
    }
}

/* rowdot for binary16 rows, each group of 8 values widened by vcvtph2ps as it is loaded (exact). The
 * six rows of a micro-block are summed side by side in six ymm accumulators: with half the bytes to
 * stream, one accumulator per row in turn left the scan bound by the FMA latency chain instead. */
__attribute__((target("avx2,fma,f16c"))) static void
rowdot_f16_avx2(float *restrict out, const uint16_t *restrict rows, size_t ld,
                const float *restrict lanes, size_t n_lanes, size_t dim)
{
    size_t d8 = dim & ~(size_t)7;
    for (size_t j = 0; j < n_lanes; j++) {
        const float *q = lanes + j * dim;
        __m256 acc[EMBT__MR];
        for (size_t i = 0; i < EMBT__MR; i++)
            acc[i] = _mm256_setzero_ps();
        for (size_t d = 0; d < d8; d += 8) {
            __m256 qv = _mm256_loadu_ps(q + d);
            for (size_t i = 0; i < EMBT__MR; i++) {
                __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(rows + i * ld + d));
                acc[i] = _mm256_fmadd_ps(_mm256_cvtph_ps(h), qv, acc[i]);
            }
        }
        for (size_t i = 0; i < EMBT__MR; i++) {
            __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[i]), _mm256_extractf128_ps(acc[i], 1));
            h = _mm_add_ps(h, _mm_movehl_ps(h, h));
            h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
            float t = _mm_cvtss_f32(h);
            for (size_t d = d8; d < dim; d++)
                t += _cvtsh_ss(rows[i * ld + d]) * q[d];
            out[i * EMBT__LANES + j] = t;
        }
    }
}

/* 6 rows x 16 lanes = 12 ymm accumulators, one broadcast per row and step: the register tile of a
 * classic SGEMM micro-kernel. Intrinsics because plain loops left the tile in memory (3 GFLOP/s
 * against 40-75 GFLOP/s measured for this version on the 2-core test machine). */
__attribute__((target("avx2,fma"))) static void panel16_avx2(float *restrict out,
                                                             const float *restrict rows, size_t ld,
                                                             const float *restrict panel,
                                                             size_t dim)
{
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
    __m256 a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
    const float *r0 = rows, *r1 = rows + ld, *r2 = rows + 2 * ld;
    const float *r3 = rows + 3 * ld, *r4 = rows + 4 * ld, *r5 = rows + 5 * ld;
    for (size_t d = 0; d < dim; d++) {
        __m256 p0 = _mm256_loadu_ps(panel + d * 16), p1 = _mm256_loadu_ps(panel + d * 16 + 8);
        __m256 x = _mm256_broadcast_ss(r0 + d);
        a00 = _mm256_fmadd_ps(x, p0, a00);
        a01 = _mm256_fmadd_ps(x, p1, a01);
        x = _mm256_broadcast_ss(r1 + d);
        a10 = _mm256_fmadd_ps(x, p0, a10);
        a11 = _mm256_fmadd_ps(x, p1, a11);
        x = _mm256_broadcast_ss(r2 + d);
        a20 = _mm256_fmadd_ps(x, p0, a20);
        a21 = _mm256_fmadd_ps(x, p1, a21);
        x = _mm256_broadcast_ss(r3 + d);
        a30 = _mm256_fmadd_ps(x, p0, a30);
        a31 = _mm256_fmadd_ps(x, p1, a31);
        x = _mm256_broadcast_ss(r4 + d);
        a40 = _mm256_fmadd_ps(x, p0, a40);
        a41 = _mm256_fmadd_ps(x, p1, a41);
        x = _mm256_broadcast_ss(r5 + d);
        a50 = _mm256_fmadd_ps(x, p0, a50);
        a51 = _mm256_fmadd_ps(x, p1, a51);
    }
    _mm256_storeu_ps(out + 0 * 16, a00);
    _mm256_storeu_ps(out + 0 * 16 + 8, a01);
    _mm256_storeu_ps(out + 1 * 16, a10);
    _mm256_storeu_ps(out + 1 * 16 + 8, a11);
    _mm256_storeu_ps(out + 2 * 16, a20);
    _mm256_storeu_ps(out + 2 * 16 + 8, a21);
    _mm256_storeu_ps(out + 3 * 16, a30);
    _mm256_storeu_ps(out + 3 * 16 + 8, a31);
    _mm256_storeu_ps(out + 4 * 16, a40);
    _mm256_storeu_ps(out + 4 * 16 + 8, a41);
    _mm256_storeu_ps(out + 5 * 16, a50);
    _mm256_storeu_ps(out + 5 * 16 + 8, a51);
}

/* 6 rows x 8 lanes: for one to eight lanes (a single query), half the arithmetic of panel16. */
__attribute__((target("avx2,fma"))) static void panel8_avx2(float *restrict out,
                                                            const float *restrict rows, size_t ld,
                                                            const float *restrict panel, size_t dim)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
    const float *r0 = rows, *r1 = rows + ld, *r2 = rows + 2 * ld;
    const float *r3 = rows + 3 * ld, *r4 = rows + 4 * ld, *r5 = rows + 5 * ld;
    for (size_t d = 0; d < dim; d++) {
        __m256 p = _mm256_loadu_ps(panel + d * 8);
        a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(r0 + d), p, a0);
        a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(r1 + d), p, a1);
        a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(r2 + d), p, a2);
        a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(r3 + d), p, a3);
        a4 = _mm256_fmadd_ps(_mm256_broadcast_ss(r4 + d), p, a4);
        a5 = _mm256_fmadd_ps(_mm256_broadcast_ss(r5 + d), p, a5);
    }
    _mm256_storeu_ps(out + 0 * 16, a0);
    _mm256_storeu_ps(out + 1 * 16, a1);
    _mm256_storeu_ps(out + 2 * 16, a2);
    _mm256_storeu_ps(out + 3 * 16, a3);
    _mm256_storeu_ps(out + 4 * 16, a4);
    _mm256_storeu_ps(out + 5 * 16, a5);
}
#endif

static const embt__kernels generic_kernels = {panel16_generic, panel8_generic, rowdot_generic, NULL,
                                              "generic"};
#ifdef EMBT_HAVE_AVX2_PATH
static const embt__kernels avx2_kernels = {panel16_avx2, panel8_avx2, rowdot_avx2, rowdot_f16_avx2,
                                           "avx2-fma"};
static const embt__kernels avx2_kernels_no_f16c = {panel16_avx2, panel8_avx2, rowdot_avx2, NULL,
                                                   "avx2-fma"};
#endif

const embt__kernels *embt__kernels_select(bool generic)
{
#ifdef EMBT_HAVE_AVX2_PATH
    if (!generic && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        /* clang 14's __builtin_cpu_supports has no "f16c": CPUID leaf 1, ECX bit 29 */
        unsigned eax, ebx, ecx = 0, edx;
        bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29));
        return f16c ? &avx2_kernels : &avx2_kernels_no_f16c;
    }
#else
    (void)generic;
#endif
    return &generic_kernels;
}

/* Four independent partial sums so the additions pipeline; the order is fixed, so the result is the
 * same on every path and machine. */
double embt__sumsq(const float *x, size_t n)
{
    double s[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++)
            s[j] += (double)x[i + j] * (double)x[i + j];
    for (; i < n; i++)
        s[0] += (double)x[i] * (double)x[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

double embt__dot_f64(const float *a, const float *b, size_t n)
{
    double s[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++)
            s[j] += (double)a[i + j] * (double)b[i + j];
    for (; i < n; i++)
        s[0] += (double)a[i] * (double)b[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}
