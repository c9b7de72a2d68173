/* kernels.h: the internals of similarity search shared by similar.c, analogy.c and eval.c: the
 * search index, the dense float32 kernels (a portable path and an AVX2+FMA path picked once at
 * runtime), and the blocked multi-query scan engine. Never installed. */
#ifndef EMBT_KERNELS_H
#define EMBT_KERNELS_H

#include <stdbool.h>

#include "reader.h"

/* Rows per micro-block and query lanes per panel of the score kernels. */
#define EMBT__MR 6
#define EMBT__LANES 16

/* Scores of EMBT__MR rows against one panel of query lanes:
 * out: (EMBT__MR, EMBT__LANES), out[i][j] = sum_d rows[i][d] * panel[d][j]; only lanes [0, w) are
 * written, w = 16 for panel16 and 8 for panel8.
 * rows: EMBT__MR rows of `dim` floats, row i at rows + i * ld.   panel: (dim, w), lanes innermost. */
typedef void (*embt__panel_fn)(float *restrict out, const float *restrict rows, size_t ld,
                               const float *restrict panel, size_t dim);

/* Scores of EMBT__MR rows against n_lanes <= EMBT__ROWDOT_LANES query vectors kept row-major:
 * out: (EMBT__MR, EMBT__LANES), out[i][j] = sum_d rows[i][d] * lanes[j][d] for j < n_lanes.
 * lanes: (n_lanes, dim). Vectorised along d: for one to four queries this reads each row once with
 * about a sixth of the instructions of a panel kernel. */
#define EMBT__ROWDOT_LANES 4
typedef void (*embt__rowdot_fn)(float *restrict out, const float *restrict rows, size_t ld,
                                const float *restrict lanes, size_t n_lanes, size_t dim);

/* rowdot on binary16 rows converted in registers (F16C), without writing them out (the sums may
 * be added in another order than rowdot's). rows: EMBT__MR rows of `dim` binary16 values, row i at rows + i * ld.
 * NULL in the portable set (its callers convert a block first). */
typedef void (*embt__rowdot_f16_fn)(float *restrict out, const uint16_t *restrict rows, size_t ld,
                                    const float *restrict lanes, size_t n_lanes, size_t dim);

typedef struct embt__kernels {
    embt__panel_fn panel16;
    embt__panel_fn panel8;
    embt__rowdot_fn rowdot;
    embt__rowdot_f16_fn rowdot_f16;
    const char *name; /* "generic" or "avx2-fma" */
} embt__kernels;

/* The AVX2+FMA kernels when the CPU has them and `generic` is false, else the portable ones. */
const embt__kernels *embt__kernels_select(bool generic);

/* Sum of squares of x (n) in double, and the dot product of a and b (n) in double: the same result on
 * every path (no FMA), used for norms and for the scores reported to callers. */
double embt__sumsq(const float *x, size_t n);
double embt__dot_f64(const float *a, const float *b, size_t n);

struct embt_index {
    const embt_table *table;
    uint64_t rows;
    size_t dim;
    const float *norms; /* (rows): the table's ROW_NORMS or owned_norms */
    float *owned_norms; /* (rows) or NULL */
    float *inv_norms;   /* (rows): 1 / norm, 0 for rows of norm 0 */
    float *sq_norms;    /* (rows): norm^2, for L2 */
    unsigned threads;   /* >= 1 */
    const embt__kernels *kernels;
    bool generic; /* EMBT_INDEX_GENERIC: portable kernels and conversions only */
};

/* Reads row `id` of the index's table as float32 into dst (dim). */
void embt__index_row(float *dst, const embt_index *index, uint64_t id);

/* One blocked scan: n_queries top-k searches answered in a single pass over rows [0, rows).
 * Plain mode: lane q is query q, scored by `metric` (cosine: the lane must already be unit length or
 * zero). Cosmul mode: query q owns lanes [q * group, (q + 1) * group), unit vectors of which the
 * first n_pos are positive; score = 3CosMul (cosine based, metric ignored). */
typedef struct embt__scan {
    const embt_index *index;
    embt_metric metric;
    size_t n_queries;
    bool cosmul;        /* 3CosMul scores over each query's group of lanes */
    size_t group;       /* lanes per query: 1 unless cosmul, then 1 to 16 */
    size_t n_pos;       /* cosmul: positive lanes of each group (the first n_pos) */
    const float *lanes; /* (n_queries * group, dim) */
    uint64_t rows;      /* scan rows [0, rows) */
    size_t k;
    const uint32_t *exclude; /* shared, any order (n_exclude) */
    size_t n_exclude;
    const uint32_t *exclude_each; /* (n_queries, n_exclude_each) */
    size_t n_exclude_each;
    embt_hit *hits; /* out: (n_queries, k), best first */
    size_t *n_hits; /* out: (n_queries) or NULL */
} embt__scan;

/* Runs the scan, then recomputes the returned scores in double and re-sorts each list (score order,
 * ties by lower id; L2 ascending). Errors: EMBT_ENOMEM, EMBT_EIO (thread creation). */
embt_status embt__scan_run(const embt__scan *scan);

/* Scales v (dim) to unit length in float32 as gensim's matutils.unitvec does (norm in double, one
 * float32 multiplier); a zero vector stays zero. */
void embt__unitvec(float *v, size_t dim);

#endif
