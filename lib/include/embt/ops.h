/* embt/ops.h: embedding operations with PyTorch 1.13's semantics: gather (F.embedding) with
 * padding_idx and max_norm, bags (nn.EmbeddingBag), Linear (y = x W^T + b), writable float32 matrices,
 * initialisers (nn.Embedding, nn.Linear and nn.init defaults) and the seeded random generator behind
 * them, so the same seed gives the same table on every machine.
 *
 * Tables come from an open file (read-only, any dtype, converted to float32 on the fly) or are an
 * embt_matrix (float32, writable). Ids are int64, as PyTorch's LongTensor; an id outside [0, rows) is
 * EMBT_EINVAL (the error record's offset field holds its position in `ids`) and nothing is read out of
 * bounds nor written to `dst`.
 *
 * Thread safety: functions taking a const table or matrix may run in parallel on the same table. A
 * function that writes a matrix (the in-place renorm, init, bags and gathers on an embt_matrix with
 * max_norm) needs exclusive access to it. An embt_rng belongs to one thread at a time. */
#ifndef EMBT_OPS_H
#define EMBT_OPS_H

#include "common.h"
#include "table.h"
#include "writer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* padding_idx "None". Other negative values count from the end, as in PyTorch: -1 is rows - 1. */
#define EMBT_NO_PADDING INT64_MIN

/* Flags of the option structs below. */
#define EMBT_OPS_GENERIC 0x1u    /* use the portable kernels only (no F16C/AVX2), for tests */
#define EMBT_OPS_ONE_THREAD 0x2u /* never split a large call over several threads */

/* ---- writable float32 matrices ------------------------------------------------------------------- */

/* A (rows, cols) row-major float32 matrix: the writable weight table of training and in-place renorm.
 * The struct is open: a caller may point `data` at memory it owns (a borrowed matrix, never passed to
 * embt_matrix_release()), or get an owned one from embt_matrix_alloc() / embt_matrix_from_table(). */
typedef struct embt_matrix {
    float *data; /* (rows, cols); NULL only when rows * cols == 0 */
    uint64_t rows;
    uint64_t cols;
} embt_matrix;

/* Allocates a zero-filled (rows, cols) matrix into *out (owned: free with embt_matrix_release()).
 * Errors: EMBT_ENOMEM, EMBT_ELIMIT (rows * cols * 4 overflows size_t). On failure *out is empty. */
EMBT_API embt_status embt_matrix_alloc(embt_matrix *out, uint64_t rows, uint64_t cols);

/* Frees the data of an owned matrix and empties *m. NULL and empty matrices are fine. */
EMBT_API void embt_matrix_release(embt_matrix *m);

/* nn.Embedding.from_pretrained, as a copy: *out (owned) receives the rows of `table` converted to
 * float32 (any dtype; I8 rows times their scale). Unlike PyTorch, which shares the tensor, the file's
 * mapping stays read-only. The padding row is not zeroed (as in PyTorch).
 * Errors: EMBT_ENOMEM, EMBT_ELIMIT. */
EMBT_API embt_status embt_matrix_from_table(embt_matrix *out, const embt_table *table);

/* ---- gather: F.embedding ------------------------------------------------------------------------- */

typedef struct embt_gather_options {
    unsigned version;    /* EMBT_GATHER_OPTIONS_VERSION */
    int64_t padding_idx; /* EMBT_NO_PADDING, or in [-rows, rows): checked and normalised only, since
                          * F.embedding's forward returns the padding row's current value */
    double max_norm;     /* > 0: renormalise (see embt_renorm()); 0: off */
    double norm_type;    /* p of the p-norm: > 0, or INFINITY; default 2 */
    unsigned flags;      /* EMBT_OPS_* */
} embt_gather_options;
#define EMBT_GATHER_OPTIONS_VERSION 1
/* clang-format off */
#define EMBT_GATHER_OPTIONS_INIT { EMBT_GATHER_OPTIONS_VERSION, EMBT_NO_PADDING, 0.0, 2.0, 0 }
/* clang-format on */

/* F.embedding on a read-only table: dst (n_ids, cols) = table[ids] converted to float32. With max_norm,
 * each output row whose p-norm exceeds max_norm is scaled as embt_renorm() would scale the table's
 * row, but only in dst: the file is never written, so unlike PyTorch later calls see the original
 * rows again. f32 rows are copied bit for bit; f16 uses F16C when the CPU has it (identical results,
 * except that signalling NaNs come back quiet); calls of at least 8 MiB of output use up to 4
 * threads unless EMBT_OPS_ONE_THREAD. `opts` may be NULL.
 * Errors: EMBT_EINVAL (an id out of range, a bad option). */
EMBT_API embt_status embt_gather(float *dst, const embt_table *table, const int64_t *ids,
                                 size_t n_ids, const embt_gather_options *opts);

/* F.embedding on a writable matrix, exactly as PyTorch: with max_norm, embt_renorm() first rewrites
 * the rows of the distinct ids in `weight`, then dst (n_ids, cols) = weight[ids].
 * Errors: EMBT_EINVAL, EMBT_ENOMEM (the renorm sorts a copy of the ids). */
EMBT_API embt_status embt_matrix_gather(float *dst, embt_matrix *weight, const int64_t *ids,
                                        size_t n_ids, const embt_gather_options *opts);

/* torch.embedding_renorm_ (aten/src/ATen/native/Embedding.cpp), in place, once per distinct id:
 *   norm = ||W[k]||_p  (a float32 value, as PyTorch's row.norm(p); embt sums in double and rounds)
 *   if norm > max_norm:  W[k] *= (float)(max_norm / ((double)norm + 1e-7))   (scale in double)
 * Rows not named are untouched. max_norm > 0; norm_type > 0 or INFINITY (max |x|).
 * Errors: EMBT_EINVAL (an id out of range: nothing is written), EMBT_ENOMEM. */
EMBT_API embt_status embt_renorm(embt_matrix *weight, const int64_t *ids, size_t n_ids,
                                 double max_norm, double norm_type);

/* ---- bags: nn.EmbeddingBag / F.embedding_bag --------------------------------------------------- */

typedef enum embt_bag_mode {
    EMBT_BAG_SUM = 0,  /* sum of w_i * W[ids_i] (w_i = 1 without per_sample_weights) */
    EMBT_BAG_MEAN = 1, /* sum / max(count, 1), the count leaving out padding entries */
    EMBT_BAG_MAX = 2   /* per-dimension max (a NaN is kept only when it comes first, as PyTorch) */
} embt_bag_mode;

typedef struct embt_bag_options {
    unsigned version;        /* EMBT_BAG_OPTIONS_VERSION */
    embt_bag_mode mode;      /* default EMBT_BAG_MEAN, as nn.EmbeddingBag */
    int64_t padding_idx;     /* EMBT_NO_PADDING or in [-rows, rows): such entries are left out of
                               * the reduction and of the mean's count */
    double max_norm;         /* > 0: renormalise the rows first (as embt_gather()); 0: off */
    double norm_type;        /* default 2 */
    int include_last_offset; /* offsets has B + 1 entries, the last ending the last bag */
    size_t bag_size;         /* offsets NULL: fixed-length bags of this many ids (>= 1), the 2-D
                               * (B, bag_size) input of PyTorch */
    unsigned flags;          /* EMBT_OPS_* */
} embt_bag_options;
#define EMBT_BAG_OPTIONS_VERSION 1
/* clang-format off */
#define EMBT_BAG_OPTIONS_INIT \
    { EMBT_BAG_OPTIONS_VERSION, EMBT_BAG_MEAN, EMBT_NO_PADDING, 0.0, 2.0, 0, 0, 0 }
/* clang-format on */

/* The number of bags B that embt_bag() writes for these arguments: n_offsets (n_offsets - 1 with
 * include_last_offset), or n_ids / bag_size without offsets. Errors: EMBT_EINVAL (no offsets and
 * bag_size 0 or not dividing n_ids, include_last_offset with no offsets). */
EMBT_API embt_status embt_bag_count(size_t *out, size_t n_ids, const int64_t *offsets,
                                    size_t n_offsets, const embt_bag_options *opts);

/* F.embedding_bag on a read-only table: dst (B, cols), bag b reducing ids[offsets[b] .. end_b) with
 * end_b = offsets[b + 1], or n_ids for the last bag (include_last_offset: offsets[B], ids after it are
 * ignored). offsets must start at 0, never decrease and not exceed n_ids. per_sample_weights (n_ids)
 * is only for EMBT_BAG_SUM. An empty or all-padding bag gives zeros. Sums accumulate in float32 in id
 * order and the mean divides the sum by the count, as PyTorch's CPU kernel. With max_norm the rows are
 * renormalised in the output only, as embt_gather(). `opts` may be NULL (mean, fixed bags need it).
 * Errors: EMBT_EINVAL (an id out of range, bad offsets, per_sample_weights with another mode, bad
 * options; dst untouched), EMBT_ENOMEM. */
EMBT_API embt_status embt_bag(float *dst, const embt_table *table, const int64_t *ids, size_t n_ids,
                              const int64_t *offsets, size_t n_offsets,
                              const float *per_sample_weights, const embt_bag_options *opts);

/* As embt_bag() on a writable matrix; with max_norm the rows are renormalised in `weight` first
 * (embt_renorm()), as PyTorch does. Errors: as embt_bag(). */
EMBT_API embt_status embt_matrix_bag(float *dst, embt_matrix *weight, const int64_t *ids,
                                     size_t n_ids, const int64_t *offsets, size_t n_offsets,
                                     const float *per_sample_weights, const embt_bag_options *opts);

/* ---- Linear: y = x W^T + b -------------------------------------------------------------------- */

/* nn.Linear's forward: y (n, out) = x (n, in) W^T + b, with W a table of shape (out, in) (any dtype,
 * read row by row) and b NULL or a table of out values (rank 1, or rank 2 with one column). Each y
 * value is a float32 dot product accumulated in double, rounded once, then b added in float32, so
 * results match PyTorch's sgemm within rounding (its summation order differs).
 * An embedding table E (V, D) is the transpose of nn.Linear(V, D).weight: a gather of id k equals
 * Linear on the one-hot row e_k with W = E^T. Errors: EMBT_EINVAL (bias shape), EMBT_ENOMEM. */
EMBT_API embt_status embt_linear(float *y, const float *x, size_t n, const embt_table *weight,
                                 const embt_table *bias);

/* As embt_linear() with W (out, in) and b (1, out) or (out, 1) or NULL given as matrices. */
EMBT_API embt_status embt_matrix_linear(float *y, const float *x, size_t n,
                                        const embt_matrix *weight, const embt_matrix *bias);

/* ---- the seeded random generator ---------------------------------------------------------------- */

/* xoshiro256** 1.0 (Blackman & Vigna, 2018, https://prng.di.unimi.it/xoshiro256starstar.c), its four
 * state words set by SplitMix64 from the 64-bit seed (s[i] = the i-th splitmix64 output, state starting
 * at `seed`). Every conversion below uses only IEEE-754 double +, -, *, / and sqrt (correctly rounded
 * everywhere) and a fixed-term logarithm, so a seed gives bit-identical floats on every machine.
 * Copy the struct to save or restore a stream. */
typedef struct embt_rng {
    uint64_t s[4];
    double spare; /* the second normal of the last polar pair */
    int has_spare;
} embt_rng;

EMBT_API void embt_rng_seed(embt_rng *rng, uint64_t seed);
/* The next 64-bit output. */
EMBT_API uint64_t embt_rng_u64(embt_rng *rng);
/* (next >> 11) * 2^-53: uniform in [0, 1) on a 2^-53 grid. */
EMBT_API double embt_rng_double(embt_rng *rng);
/* Standard normal by Marsaglia's polar method: draw u = 2 d1 - 1, v = 2 d2 - 1 (d from
 * embt_rng_double) until 0 < s = u^2 + v^2 < 1; f = sqrt(-2 ln(s) / s); return u f and keep v f for the
 * next call. ln is embt's own (frexp split, then 2 atanh((m - 1) / (m + 1)) summed over 30 terms). */
EMBT_API double embt_rng_normal(embt_rng *rng);

/* ---- initialisers ------------------------------------------------------------------------------ */

typedef enum embt_init_kind {
    EMBT_INIT_NORMAL = 0,  /* N(mean, std): nn.Embedding's default N(0, 1) */
    EMBT_INIT_UNIFORM = 1, /* U(low, high): the seed's weight.data.uniform_(-1, 1) */
    EMBT_INIT_KAIMING_UNIFORM =
        2, /* nn.init.kaiming_uniform_(a = slope), leaky_relu gain: nn.Linear's
                                    * default with slope sqrt(5), U(+-1/sqrt(fan_in)) */
    EMBT_INIT_XAVIER_UNIFORM = 3, /* nn.init.xavier_uniform_(gain) */
    EMBT_INIT_ZEROS = 4,          /* all zeros */
    EMBT_INIT_VALUES = 5          /* copy `values` (rows, cols): assigning an nn.Parameter */
} embt_init_kind;

typedef struct embt_init_options {
    unsigned version;    /* EMBT_INIT_OPTIONS_VERSION */
    embt_init_kind kind; /* default EMBT_INIT_NORMAL */
    double low, high;    /* EMBT_INIT_UNIFORM; default -1, 1 */
    double mean, std;    /* EMBT_INIT_NORMAL; default 0, 1 */
    double slope;        /* EMBT_INIT_KAIMING_UNIFORM's a; default sqrt(5) */
    double gain;         /* EMBT_INIT_XAVIER_UNIFORM; default 1 */
    uint64_t fan_in;     /* 0: cols, the table read as a Linear weight (out = rows, in = cols) */
    uint64_t fan_out;    /* 0: rows */
    uint64_t seed;       /* the embt_rng seed; default 0 */
    int64_t padding_idx; /* EMBT_NO_PADDING, or a row (negative from the end) zeroed after init */
    const float *values; /* EMBT_INIT_VALUES: (rows, cols), borrowed for the call */
} embt_init_options;
#define EMBT_INIT_OPTIONS_VERSION 1
/* clang-format off */
#define EMBT_INIT_OPTIONS_INIT                                                                  \
    { EMBT_INIT_OPTIONS_VERSION, EMBT_INIT_NORMAL, -1.0, 1.0, 0.0, 1.0, 2.2360679774997898,   \
      1.0, 0, 0, 0, EMBT_NO_PADDING, NULL }
/* clang-format on */

/* Fills the (rows, cols) matrix m. The values are a function of (kind, parameters, seed, rows, cols)
 * only: one embt_rng seeded with `seed` draws the elements in row-major order,
 *   uniform:  (float)(low + (high - low) * d)                       d = embt_rng_double()
 *   normal:   (float)(mean + std * z)                               z = embt_rng_normal()
 *   kaiming:  bound = sqrt(3) * (sqrt(2 / (1 + slope^2)) / sqrt(fan_in)), uniform(-bound, bound)
 *   xavier:   bound = sqrt(3) * (gain * sqrt(2 / (fan_in + fan_out))),     uniform(-bound, bound)
 * (bounds computed in double as torch.nn.init does). Then the padding row, if any, is zeroed.
 * Errors: EMBT_EINVAL (bad kind or parameters: high < low, std < 0, fan_in 0, padding out of range,
 * values NULL for EMBT_INIT_VALUES). */
EMBT_API embt_status embt_init_matrix(embt_matrix *m, const embt_init_options *opts);

/* Writes a new table straight to an open writer: embt_writer_table_begin(spec), then spec->rows rows
 * with exactly the values embt_init_matrix() would give for (spec->rows, spec->cols), in chunks (the
 * table is never whole in memory), then embt_writer_table_end(). Errors: as embt_init_matrix() and
 * the writer's. */
EMBT_API embt_status embt_init_write(embt_writer *writer, const embt_table_spec *spec,
                                     const embt_init_options *opts);

#ifdef __cplusplus
}
#endif
#endif
