/* classify_kernels.c: the SGD step of the text classifier (EmbeddingBag(mean) -> Linear -> softmax
 * cross-entropy) in two builds: portable loops (separate multiply and add, dot products summed in a
 * fixed 8-lane order, expf) and AVX2+FMA intrinsics chosen once with __builtin_cpu_supports (fused
 * multiply-adds, an 8-wide exp, the output layer's backward pass done in column panels so the
 * hidden-vector gradient stays in registers). Per example, with L labels and D = dim, the output
 * layer costs 3 L D multiply-adds (scores, gradient into the hidden vector, update of W): for the
 * cooking benchmark (L = 733, D = 100) that is nearly all of the arithmetic. */
#include <math.h>
#include <string.h>

#include "classify_kernels.h"
#include "internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CLS_HAVE_AVX2_PATH 1
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* ---- portable ---------------------------------------------------------------------------------- */

/* sum_i a[i] b[i] in 8 lanes (lane i mod 8), then ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)): a fixed order
 * that the compiler vectorises without reassociating.   a, b: (n) */
ALWAYS_INLINE float dot8(const float *restrict a, const float *restrict b, size_t n)
{
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t k = 0; k < 8; k++)
            acc[k] += a[i + k] * b[i + k];
    for (size_t k = 0; i < n; i++, k++)
        acc[k] += a[i] * b[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* out (nlabels) = softmax(W hidden + b); returns log(sum exp(z - max)) - (z_t - max) for target t, or
 * 0 when target is EMBT_NONE_ID.  W: (nlabels, dim)  b: (nlabels) or NULL  hidden: (dim) */
ALWAYS_INLINE float softmax_generic(float *restrict out, const float *restrict W,
                                    const float *restrict b, const float *restrict hidden,
                                    size_t dim, size_t nlabels, uint32_t target)
{
    float mx = -INFINITY;
    for (size_t j = 0; j < nlabels; j++) {
        float z = dot8(W + j * dim, hidden, dim) + (b ? b[j] : 0.0f);
        out[j] = z;
        mx = z > mx ? z : mx;
    }
    float zt = target == EMBT_NONE_ID ? 0.0f : out[target];
    float sum = 0;
    for (size_t j = 0; j < nlabels; j++) {
        out[j] = expf(out[j] - mx);
        sum += out[j];
    }
    for (size_t j = 0; j < nlabels; j++)
        out[j] /= sum;
    return target == EMBT_NONE_ID ? 0.0f : logf(sum) - (zt - mx);
}

void cls__softmax_forward(float *restrict out, const float *restrict W, const float *restrict b,
                          const float *restrict hidden, size_t dim, size_t nlabels)
{
    softmax_generic(out, W, b, hidden, dim, nlabels, EMBT_NONE_ID);
}

/* hidden (dim) = mean of the rows of E named by ids (n >= 1), summed in id order then divided by n
 * (PyTorch's EmbeddingBag mean). The compiler vectorises it; every build gives the same bits. */
ALWAYS_INLINE void bag_mean(float *restrict hidden, const float *restrict E, size_t dim,
                            const uint32_t *ids, size_t n)
{
    for (size_t d = 0; d < dim; d++)
        hidden[d] = 0;
    for (size_t i = 0; i < n; i++) {
        const float *restrict row = E + (size_t)ids[i] * dim;
        for (size_t d = 0; d < dim; d++)
            hidden[d] += row[d];
    }
    float cnt = (float)n;
    for (size_t d = 0; d < dim; d++)
        hidden[d] /= cnt;
}

/* E[ids_i] += grad for every id whose row is not frozen. */
ALWAYS_INLINE void bag_update(float *restrict E, size_t dim, const uint32_t *ids, size_t n,
                              const uint8_t *frozen, size_t n_frozen, const float *restrict grad)
{
    for (size_t i = 0; i < n; i++) {
        size_t r = ids[i];
        if (frozen && r < n_frozen && frozen[r])
            continue;
        float *restrict row = E + r * dim;
        for (size_t d = 0; d < dim; d++)
            row[d] += grad[d];
    }
}

static float step_generic(float *restrict E, float *restrict W, float *restrict b, size_t dim,
                          size_t nlabels, const uint32_t *ids, size_t n, uint32_t target, float lr,
                          const uint8_t *frozen, size_t n_frozen, float *restrict hidden,
                          float *restrict grad, float *restrict out)
{
    bag_mean(hidden, E, dim, ids, n);
    float loss = softmax_generic(out, W, b, hidden, dim, nlabels, target);
    for (size_t d = 0; d < dim; d++)
        grad[d] = 0;
    /* softmax loss backward: W_j is read before it is updated */
    for (size_t j = 0; j < nlabels; j++) {
        float alpha = lr * ((j == target ? 1.0f : 0.0f) - out[j]);
        float *restrict wj = W + j * dim;
        for (size_t d = 0; d < dim; d++) {
            float w = wj[d];
            grad[d] += alpha * w;
            wj[d] = w + alpha * hidden[d];
        }
        if (b)
            b[j] += alpha;
    }
    float cnt = (float)n;
    for (size_t d = 0; d < dim; d++)
        grad[d] /= cnt;
    bag_update(E, dim, ids, n, frozen, n_frozen, grad);
    return loss;
}

/* ---- AVX2 + FMA ------------------------------------------------------------------------------- */

#ifdef CLS_HAVE_AVX2_PATH
#define AVX2_FMA __attribute__((target("avx2,fma")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

/* exp(x) for x <= 0, 8 lanes: x = n ln2 + r with |r| <= ln2 / 2 (ln2 in two parts), e^r by a
 * degree-7 polynomial (the minimax coefficients of Cephes' expf), times 2^n built in the exponent
 * bits. Below ln(FLT_MIN) (including -inf) the result is 0; NaN gives NaN, as expf. Measured against
 * glibc's expf on every float in [-87.3, 0] whose exp is a normal float: at most 1 ulp apart. */
AVX2_INLINE __m256 exp_nonpos(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.33654f);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_setzero_ps(), _mm256_max_ps(lo, x)); /* NaN stays NaN (2nd operand) */
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    p = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    return _mm256_andnot_ps(under, p);
}

/* The four sums of the lanes of a, b, c, d. */
AVX2_INLINE __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d)
{
    __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

AVX2_INLINE float hsum(__m256 a)
{
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}

/* z (nlabels) = W hidden (+ b): four rows at a time, so each load of hidden serves four FMAs.
 * W: (nlabels, dim)  hidden: (dim) */
AVX2_INLINE void scores_avx2(float *restrict z, const float *restrict W, const float *restrict b,
                             const float *restrict hidden, size_t dim, size_t nlabels)
{
    size_t d8 = dim & ~(size_t)7, d4 = dim & ~(size_t)3, j = 0;
    for (; j + 4 <= nlabels; j += 4) {
        const float *w0 = W + j * dim, *w1 = w0 + dim, *w2 = w1 + dim, *w3 = w2 + dim;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t d = 0; d < d8; d += 8) {
            __m256 h = _mm256_loadu_ps(hidden + d);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + d), h, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + d), h, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + d), h, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + d), h, a3);
        }
        __m128 s = hsum4(a0, a1, a2, a3);
        if (d8 < d4) {
            __m128 h = _mm_loadu_ps(hidden + d8);
            __m128 t0 = _mm_mul_ps(_mm_loadu_ps(w0 + d8), h),
                   t1 = _mm_mul_ps(_mm_loadu_ps(w1 + d8), h);
            __m128 t2 = _mm_mul_ps(_mm_loadu_ps(w2 + d8), h),
                   t3 = _mm_mul_ps(_mm_loadu_ps(w3 + d8), h);
            s = _mm_add_ps(s, _mm_hadd_ps(_mm_hadd_ps(t0, t1), _mm_hadd_ps(t2, t3)));
        }
        float t[4];
        _mm_storeu_ps(t, s);
        for (size_t d = d4; d < dim; d++) {
            t[0] += w0[d] * hidden[d];
            t[1] += w1[d] * hidden[d];
            t[2] += w2[d] * hidden[d];
            t[3] += w3[d] * hidden[d];
        }
        for (size_t k = 0; k < 4; k++)
            z[j + k] = t[k] + (b ? b[j + k] : 0.0f);
    }
    for (; j < nlabels; j++) {
        const float *w = W + j * dim;
        __m256 a = _mm256_setzero_ps();
        for (size_t d = 0; d < d8; d += 8)
            a = _mm256_fmadd_ps(_mm256_loadu_ps(w + d), _mm256_loadu_ps(hidden + d), a);
        float t = hsum(a);
        for (size_t d = d8; d < dim; d++)
            t += w[d] * hidden[d];
        z[j] = t + (b ? b[j] : 0.0f);
    }
}

/* p = softmax(z) in place (nlabels >= 1); returns log(sum exp(z - max)) - (z_t - max). */
AVX2_INLINE float softmax_avx2(float *restrict z, size_t nlabels, uint32_t target)
{
    size_t n8 = nlabels & ~(size_t)7;
    __m256 vm = _mm256_set1_ps(-INFINITY);
    for (size_t j = 0; j < n8; j += 8)
        vm = _mm256_max_ps(_mm256_loadu_ps(z + j), vm); /* a NaN score is skipped, as z > mx does */
    float mv[8];
    _mm256_storeu_ps(mv, vm);
    float mx = mv[0];
    for (size_t k = 1; k < 8; k++)
        mx = mv[k] > mx ? mv[k] : mx;
    for (size_t j = n8; j < nlabels; j++)
        mx = z[j] > mx ? z[j] : mx;
    float zt = z[target];
    __m256 m = _mm256_set1_ps(mx), vs = _mm256_setzero_ps();
    for (size_t j = 0; j < n8; j += 8) {
        __m256 e = exp_nonpos(_mm256_sub_ps(_mm256_loadu_ps(z + j), m));
        _mm256_storeu_ps(z + j, e);
        vs = _mm256_add_ps(vs, e);
    }
    if (n8 < nlabels) { /* the last 1 to 7, padded with -inf (exp 0) */
        float t[8];
        for (size_t k = 0; k < 8; k++)
            t[k] = n8 + k < nlabels ? z[n8 + k] : -INFINITY;
        __m256 e = exp_nonpos(_mm256_sub_ps(_mm256_loadu_ps(t), m));
        _mm256_storeu_ps(t, e);
        vs = _mm256_add_ps(vs, e);
        for (size_t k = 0; n8 + k < nlabels; k++)
            z[n8 + k] = t[k];
    }
    float sum = hsum(vs);
    __m256 vsum = _mm256_set1_ps(sum);
    for (size_t j = 0; j < n8; j += 8)
        _mm256_storeu_ps(z + j, _mm256_div_ps(_mm256_loadu_ps(z + j), vsum));
    for (size_t j = n8; j < nlabels; j++)
        z[j] /= sum;
    return logf(sum) - (zt - mx);
}

/* bag_mean() with the sum of each 32-float column block kept in registers while the rows are added
 * in id order: the same additions in the same order, so the same bits as the portable loop. */
AVX2_INLINE void bag_mean_avx2(float *restrict hidden, const float *restrict E, size_t dim,
                               const uint32_t *ids, size_t n)
{
    size_t d8 = dim & ~(size_t)7, d = 0;
    __m256 cnt = _mm256_set1_ps((float)n);
    for (; d + 32 <= d8; d += 32) {
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (size_t i = 0; i < n; i++) {
            const float *row = E + (size_t)ids[i] * dim + d;
            s0 = _mm256_add_ps(s0, _mm256_loadu_ps(row));
            s1 = _mm256_add_ps(s1, _mm256_loadu_ps(row + 8));
            s2 = _mm256_add_ps(s2, _mm256_loadu_ps(row + 16));
            s3 = _mm256_add_ps(s3, _mm256_loadu_ps(row + 24));
        }
        _mm256_storeu_ps(hidden + d, _mm256_div_ps(s0, cnt));
        _mm256_storeu_ps(hidden + d + 8, _mm256_div_ps(s1, cnt));
        _mm256_storeu_ps(hidden + d + 16, _mm256_div_ps(s2, cnt));
        _mm256_storeu_ps(hidden + d + 24, _mm256_div_ps(s3, cnt));
    }
    for (; d < d8; d += 8) {
        __m256 s0 = _mm256_setzero_ps();
        for (size_t i = 0; i < n; i++)
            s0 = _mm256_add_ps(s0, _mm256_loadu_ps(E + (size_t)ids[i] * dim + d));
        _mm256_storeu_ps(hidden + d, _mm256_div_ps(s0, cnt));
    }
    for (; d < dim; d++) {
        float s = 0;
        for (size_t i = 0; i < n; i++)
            s += E[(size_t)ids[i] * dim + d];
        hidden[d] = s / (float)n;
    }
}

/* For NC (0 to 4) 8-float columns of W starting at d0, plus 4 more after them when T4, over every
 * label j:  grad[d] = sum_j alpha_j W_j[d] (W before the update);  W_j[d] += alpha_j hidden[d]
 * with the gradient and hidden columns held in registers (the 4-column part reads hidden from L1,
 * which keeps the widest panel from spilling): one load and one store of W per two FMAs.
 * W: (nlabels, dim)  alpha: (nlabels) */
AVX2_INLINE void backward_panel(float *restrict grad, float *restrict W,
                                const float *restrict alpha, const float *restrict hidden,
                                size_t dim, size_t nlabels, size_t d0, int nc, int t4)
{
    /* named registers, not arrays: GCC kept arrays of vectors in memory here */
    const float *hd = hidden + d0;
    __m256 g0 = _mm256_setzero_ps(), g1 = g0, g2 = g0, g3 = g0;
    __m256 h0 = nc > 0 ? _mm256_loadu_ps(hd) : g0, h1 = nc > 1 ? _mm256_loadu_ps(hd + 8) : g0;
    __m256 h2 = nc > 2 ? _mm256_loadu_ps(hd + 16) : g0, h3 = nc > 3 ? _mm256_loadu_ps(hd + 24) : g0;
    __m128 gt = _mm_setzero_ps();
    float *w = W + d0;
    for (size_t j = 0; j < nlabels; j++, w += dim) {
        __m256 a = _mm256_broadcast_ss(alpha + j), x;
        if (nc > 0) {
            x = _mm256_loadu_ps(w);
            g0 = _mm256_fmadd_ps(a, x, g0);
            _mm256_storeu_ps(w, _mm256_fmadd_ps(a, h0, x));
        }
        if (nc > 1) {
            x = _mm256_loadu_ps(w + 8);
            g1 = _mm256_fmadd_ps(a, x, g1);
            _mm256_storeu_ps(w + 8, _mm256_fmadd_ps(a, h1, x));
        }
        if (nc > 2) {
            x = _mm256_loadu_ps(w + 16);
            g2 = _mm256_fmadd_ps(a, x, g2);
            _mm256_storeu_ps(w + 16, _mm256_fmadd_ps(a, h2, x));
        }
        if (nc > 3) {
            x = _mm256_loadu_ps(w + 24);
            g3 = _mm256_fmadd_ps(a, x, g3);
            _mm256_storeu_ps(w + 24, _mm256_fmadd_ps(a, h3, x));
        }
        if (t4) {
            __m128 a4 = _mm256_castps256_ps128(a), x4 = _mm_loadu_ps(w + 8 * nc);
            gt = _mm_fmadd_ps(a4, x4, gt);
            _mm_storeu_ps(w + 8 * nc, _mm_fmadd_ps(a4, _mm_loadu_ps(hd + 8 * nc), x4));
        }
    }
    float *gd = grad + d0;
    if (nc > 0)
        _mm256_storeu_ps(gd, g0);
    if (nc > 1)
        _mm256_storeu_ps(gd + 8, g1);
    if (nc > 2)
        _mm256_storeu_ps(gd + 16, g2);
    if (nc > 3)
        _mm256_storeu_ps(gd + 24, g3);
    if (t4)
        _mm_storeu_ps(gd + 8 * nc, gt);
}

/* The output layer's backward pass over all columns: panels of 32, the last one taking the 4-column
 * rest (dim = 100: three passes over W), then any last 1 to 3 columns one at a time. */
AVX2_INLINE void backward_avx2(float *restrict grad, float *restrict W, const float *restrict alpha,
                               const float *restrict hidden, size_t dim, size_t nlabels)
{
    size_t c8 = dim / 8, d = 0;
    int t4 = dim % 8 >= 4;
    for (; c8 > 4; c8 -= 4, d += 32)
        backward_panel(grad, W, alpha, hidden, dim, nlabels, d, 4, 0);
    switch (c8 * 2 + (size_t)t4) {
    case 9: backward_panel(grad, W, alpha, hidden, dim, nlabels, d, 4, 1); break;
    case 8: backward_panel(grad, W, alpha, hidden, dim, nlabels, d, 4, 0); break;
    case 7: backward_panel(grad, W, alpha, hidden, dim, nlabels, d, 3, 1); break;
    case 6: backward_panel(grad, W, alpha, hidden, dim, nlabels, d, 3, 0); break;
    case 5: backward_panel(grad, W, alpha, hidden, dim, nlabels, d, 2, 1); break;
    case 4: backward_panel(grad, W, alpha, hidden, dim, nlabels, d, 2, 0); break;
    case 3: backward_panel(grad, W, alpha, hidden, dim, nlabels, d, 1, 1); break;
    case 2: backward_panel(grad, W, alpha, hidden, dim, nlabels, d, 1, 0); break;
    case 1: backward_panel(grad, W, alpha, hidden, dim, nlabels, d, 0, 1); break;
    default: break;
    }
    for (d = dim & ~(size_t)3; d < dim; d++) {
        float gs = 0, h = hidden[d];
        float *w = W + d;
        for (size_t j = 0; j < nlabels; j++, w += dim) {
            float x = *w;
            gs += alpha[j] * x;
            *w = x + alpha[j] * h;
        }
        grad[d] = gs;
    }
}

AVX2_FMA static float step_avx2(float *restrict E, float *restrict W, float *restrict b, size_t dim,
                                size_t nlabels, const uint32_t *ids, size_t n, uint32_t target,
                                float lr, const uint8_t *frozen, size_t n_frozen,
                                float *restrict hidden, float *restrict grad, float *restrict out)
{
    bag_mean_avx2(hidden, E, dim, ids, n);
    scores_avx2(out, W, b, hidden, dim, nlabels);
    float loss = softmax_avx2(out, nlabels, target);
    /* out becomes alpha_j = lr (y_j - p_j), the same rounding as the portable step */
    float pt = out[target];
    __m256 vlr = _mm256_set1_ps(lr);
    size_t n8 = nlabels & ~(size_t)7;
    for (size_t j = 0; j < n8; j += 8)
        _mm256_storeu_ps(out + j, _mm256_mul_ps(vlr, _mm256_sub_ps(_mm256_setzero_ps(),
                                                                   _mm256_loadu_ps(out + j))));
    for (size_t j = n8; j < nlabels; j++)
        out[j] = lr * (0.0f - out[j]);
    out[target] = lr * (1.0f - pt);
    if (b)
        for (size_t j = 0; j < nlabels; j++)
            b[j] += out[j];
    backward_avx2(grad, W, out, hidden, dim, nlabels);
    float cnt = (float)n;
    for (size_t k = 0; k < dim; k++)
        grad[k] /= cnt;
    bag_update(E, dim, ids, n, frozen, n_frozen, grad);
    return loss;
}
#endif

static const cls_kernels generic_kernels = {step_generic, "generic"};
#ifdef CLS_HAVE_AVX2_PATH
static const cls_kernels avx2_kernels = {step_avx2, "avx2-fma"};
#endif

const cls_kernels *cls__kernels_select(bool generic)
{
#ifdef CLS_HAVE_AVX2_PATH
    if (!generic) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            return &avx2_kernels;
    }
#else
    (void)generic;
#endif
    return &generic_kernels;
}
