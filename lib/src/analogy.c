/* analogy.c: gensim's most_similar() (3CosAdd) and most_similar_cosmul() (3CosMul) on row ids, one
 * query or a batch of analogy questions answered by one blocked scan. Vectors are built in float32 in
 * gensim's order of operations (keyedvectors.py get_mean_vector, matutils.unitvec) so the query is
 * the one gensim scores with. */
#include <math.h>

#include "kernels.h"

/* gensim get_vector(norm=True): row / norm in float32; a row of norm 0 gives 0 (gensim: NaN). */
static void unit_row(float *dst, const embt_index *x, uint32_t id)
{
    embt__index_row(dst, x, id);
    float n = x->norms[id];
    for (size_t d = 0; d < x->dim; d++)
        dst[d] = n > 0.0f ? dst[d] / n : 0.0f;
}

/* Checks the options, ids and counts shared by both entry points. */
static embt_status check(const embt_index *x, const embt_most_similar_options *opts, size_t k,
                         const uint32_t *ids, size_t n_ids)
{
    if (opts->version != EMBT_MOST_SIMILAR_OPTIONS_VERSION)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "unknown most_similar options version %u", opts->version);
    if (opts->method != 0 && opts->method != EMBT_ANALOGY_ADD && opts->method != EMBT_ANALOGY_MUL)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "unknown analogy method %d",
                           (int)opts->method);
    if (k == 0)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "k must be at least 1");
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] >= x->rows)
            return embt__error(EMBT_EINVAL, i, NULL, 0, "id %u out of range (%llu rows)", ids[i],
                               (unsigned long long)x->rows);
    return EMBT_OK;
}

static uint64_t scan_rows(const embt_index *x, const embt_most_similar_options *opts)
{
    return opts->restrict_rows && opts->restrict_rows < x->rows ? opts->restrict_rows : x->rows;
}

/* Fills lanes for one query: add: the unit mean (dim); mul: the unit inputs (n_pos + n_neg, dim). */
static void build_query(float *lanes, float *tmp, const embt_index *x, bool mul,
                        const uint32_t *pos, size_t n_pos, const uint32_t *neg, size_t n_neg)
{
    size_t dim = x->dim;
    if (mul) {
        for (size_t i = 0; i < n_pos; i++)
            unit_row(lanes + i * dim, x, pos[i]);
        for (size_t i = 0; i < n_neg; i++)
            unit_row(lanes + (n_pos + i) * dim, x, neg[i]);
        return;
    }
    /* get_mean_vector: float32 sum of +-unit vectors in argument order, divided by the total
     * weight, then unitvec */
    memset(lanes, 0, dim * sizeof(float));
    for (size_t i = 0; i < n_pos + n_neg; i++) {
        bool p = i < n_pos;
        unit_row(tmp, x, p ? pos[i] : neg[i - n_pos]);
        for (size_t d = 0; d < dim; d++)
            lanes[d] += p ? tmp[d] : -tmp[d];
    }
    float total = (float)(n_pos + n_neg);
    for (size_t d = 0; d < dim; d++)
        lanes[d] /= total;
    embt__unitvec(lanes, dim);
}

embt_status embt_most_similar(embt_hit *hits, size_t *n_hits_out, const embt_index *index,
                              const uint32_t *positive, size_t n_positive, const uint32_t *negative,
                              size_t n_negative, size_t k, const embt_most_similar_options *opts)
{
    EMBT_CHECK_ARG(hits && index);
    EMBT_CHECK_ARG((positive || !n_positive) && (negative || !n_negative));
    embt_most_similar_options defaults = EMBT_MOST_SIMILAR_OPTIONS_INIT;
    if (!opts)
        opts = &defaults;
    if (n_positive == 0)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "most_similar needs at least one positive id");
    if (n_positive + n_negative > EMBT__LANES)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "%zu inputs: most_similar takes at most %d", n_positive + n_negative,
                           EMBT__LANES);
    uint32_t ids[EMBT__LANES];
    memcpy(ids, positive, n_positive * sizeof *ids);
    if (n_negative)
        memcpy(ids + n_positive, negative, n_negative * sizeof *ids);
    size_t n_ids = n_positive + n_negative;
    embt_status st = check(index, opts, k, ids, n_ids);
    if (st)
        return st;
    bool mul = opts->method == EMBT_ANALOGY_MUL;
    size_t group = mul ? n_ids : 1;
    float *lanes = embt__malloc((group + 1) * index->dim * sizeof(float));
    if (!lanes)
        return embt__error_nomem();
    build_query(lanes, lanes + group * index->dim, index, mul, positive, n_positive, negative,
                n_negative);
    embt__scan sc = {.index = index,
                     .metric = EMBT_METRIC_COSINE,
                     .n_queries = 1,
                     .cosmul = mul,
                     .group = group,
                     .n_pos = n_positive,
                     .lanes = lanes,
                     .rows = scan_rows(index, opts),
                     .k = k,
                     .exclude = ids,
                     .n_exclude = n_ids,
                     .hits = hits,
                     .n_hits = n_hits_out};
    st = embt__scan_run(&sc);
    embt__free(lanes);
    return st;
}

embt_status embt_analogy(embt_hit *hits, size_t *n_hits_out, const embt_index *index,
                         const uint32_t *abc, size_t n_questions, size_t k,
                         const embt_most_similar_options *opts)
{
    EMBT_CHECK_ARG(index != NULL);
    EMBT_CHECK_ARG(n_questions == 0 || (hits && abc));
    embt_most_similar_options defaults = EMBT_MOST_SIMILAR_OPTIONS_INIT;
    if (!opts)
        opts = &defaults;
    embt_status st = check(index, opts, k, abc, n_questions * 3);
    if (st)
        return st;
    bool mul = opts->method == EMBT_ANALOGY_MUL;
    size_t group = mul ? 3 : 1, dim = index->dim;
    if (n_questions > SIZE_MAX / sizeof(float) / dim / 4)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "too many questions");
    float *lanes = embt__malloc((n_questions * group + 1) * dim * sizeof(float));
    if (!lanes)
        return embt__error_nomem();
    float *tmp = lanes + n_questions * group * dim;
    for (size_t q = 0; q < n_questions; q++) {
        const uint32_t *t = abc + 3 * q;
        uint32_t pos[2] = {t[1], t[2]}, neg[1] = {t[0]};
        build_query(lanes + q * group * dim, tmp, index, mul, pos, 2, neg, 1);
    }
    embt__scan sc = {.index = index,
                     .metric = EMBT_METRIC_COSINE,
                     .n_queries = n_questions,
                     .cosmul = mul,
                     .group = group,
                     .n_pos = 2,
                     .lanes = lanes,
                     .rows = scan_rows(index, opts),
                     .k = k,
                     .exclude_each = abc,
                     .n_exclude_each = 3,
                     .hits = hits,
                     .n_hits = n_hits_out};
    st = embt__scan_run(&sc);
    embt__free(lanes);
    return st;
}
