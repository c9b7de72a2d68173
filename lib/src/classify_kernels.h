/* classify_kernels.h: the kernels of the text classifier (classify.c): one SGD step of
 * EmbeddingBag(mean) -> Linear -> softmax cross-entropy, in a portable build and an AVX2+FMA build
 * picked once at run time, and the forward pass used for prediction. Never installed. */
#ifndef EMBT_CLASSIFY_KERNELS_H
#define EMBT_CLASSIFY_KERNELS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One SGD step on one bag (the update of embt_classify_sgd_step(), documented in embt/classify.h):
 *   E: (rows, dim)   W: (nlabels, dim)   b: (nlabels) or NULL (no bias)   ids: (n), n >= 1
 *   frozen: NULL or (n_frozen) flags; rows at or above n_frozen always train
 *   hidden, grad: (dim) scratch   out: (nlabels) scratch, the softmax on return
 * Returns -log p[target] computed as log(sum exp(z - max)) - (z_target - max). */
typedef float (*cls_step_fn)(float *restrict E, float *restrict W, float *restrict b, size_t dim,
                             size_t nlabels, const uint32_t *ids, size_t n, uint32_t target,
                             float lr, const uint8_t *frozen, size_t n_frozen,
                             float *restrict hidden, float *restrict grad, float *restrict out);

typedef struct cls_kernels {
    cls_step_fn step;
    const char *name; /* "generic" or "avx2-fma" */
} cls_kernels;

/* The AVX2+FMA kernels when the CPU has both and `generic` is false, else the portable ones.
 * The portable step rounds every product and sum separately and sums dot products in a fixed
 * 8-lane order; the AVX2+FMA step fuses multiply-adds and computes exp with its own polynomial
 * (within 1 ulp of expf), so the two agree to a few ulp, not bitwise. */
const cls_kernels *cls__kernels_select(bool generic);

/* out (nlabels) = softmax(W hidden + b) with the portable step's arithmetic (prediction).
 * W: (nlabels, dim)   b: (nlabels)   hidden: (dim) */
void cls__softmax_forward(float *restrict out, const float *restrict W, const float *restrict b,
                          const float *restrict hidden, size_t dim, size_t nlabels);

#endif
