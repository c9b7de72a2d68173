/* bag.c: nn.EmbeddingBag (aten EmbeddingBag.cpp, CPU): sum, mean and max over bags given by offsets
 * (with include_last_offset) or a fixed length, per_sample_weights in sum mode, padding entries left
 * out of the reduction and the mean's count, empty bags as zeros. Every argument is checked before dst
 * is written. Rows come through embt_gather() in small chunks, so every dtype works. */
#include "reader.h"

enum { CHUNK = 64 }; /* rows gathered at once: a bounded scratch buffer for any bag size */

static embt_status bag_error(const char *what, size_t at, long long value, long long limit)
{
    return embt__error(EMBT_EINVAL, at, NULL, 0, "%s: offsets[%zu] = %lld (limit %lld)", what, at,
                       value, limit);
}

embt_status embt_bag_count(size_t *out, size_t n_ids, const int64_t *offsets, size_t n_offsets,
                           const embt_bag_options *opts)
{
    EMBT_CHECK_ARG(out != NULL);
    embt_bag_options defaults = EMBT_BAG_OPTIONS_INIT;
    const embt_bag_options *o = opts ? opts : &defaults;
    *out = 0;
    if (offsets) {
        if (o->include_last_offset) {
            if (n_offsets == 0)
                return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                                   "include_last_offset needs at least one offset");
            *out = n_offsets - 1;
        } else {
            *out = n_offsets;
        }
        return EMBT_OK;
    }
    if (o->bag_size == 0 || n_ids % o->bag_size != 0)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "%zu ids do not split into bags of %zu (no offsets given)", n_ids,
                           o->bag_size);
    *out = n_ids / o->bag_size;
    return EMBT_OK;
}

/* Checks everything embt_bag() receives; *n_bags_out and *pad_out (the normalised padding row, or -1)
 * on success. */
static embt_status check_bag(size_t *n_bags_out, int64_t *pad_out, uint64_t rows,
                             const int64_t *ids, size_t n_ids, const int64_t *offsets,
                             size_t n_offsets, const float *psw, const embt_bag_options *o)
{
    if (o->version != EMBT_BAG_OPTIONS_VERSION)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "unknown bag options version %u",
                           o->version);
    if (o->mode != EMBT_BAG_SUM && o->mode != EMBT_BAG_MEAN && o->mode != EMBT_BAG_MAX)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "unknown bag mode %d",
                           (int)o->mode);
    if (psw && o->mode != EMBT_BAG_SUM)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "per_sample_weights are only supported for mode sum");
    embt_status st = embt_bag_count(n_bags_out, n_ids, offsets, n_offsets, o);
    if (st)
        return st;
    if (offsets && n_offsets > 0 && offsets[0] != 0)
        return bag_error("the first offset must be 0", 0, (long long)offsets[0], 0);
    for (size_t b = 0; offsets && b < n_offsets; b++) {
        if (offsets[b] < 0 || (uint64_t)offsets[b] > n_ids)
            return bag_error("offset beyond the ids", b, (long long)offsets[b], (long long)n_ids);
        if (b > 0 && offsets[b] < offsets[b - 1])
            return bag_error("offsets decrease", b, (long long)offsets[b],
                             (long long)offsets[b - 1]);
    }
    /* the ids and the options shared with gather are checked by a gather of no rows, then ids here */
    embt_gather_options g = EMBT_GATHER_OPTIONS_INIT;
    g.padding_idx = o->padding_idx;
    g.max_norm = o->max_norm;
    g.norm_type = o->norm_type;
    embt_table empty;
    memset(&empty, 0, sizeof empty);
    empty.rows = rows;
    empty.dtype = EMBT_DTYPE_F32;
    if ((st = embt_gather(NULL, &empty, NULL, 0, &g)))
        return st;
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || (uint64_t)ids[i] >= rows)
            return embt__error(EMBT_EINVAL, i, NULL, 0,
                               "id %lld at position %zu out of range (%llu rows)",
                               (long long)ids[i], i, (unsigned long long)rows);
    *pad_out = -1;
    if (o->padding_idx != EMBT_NO_PADDING)
        *pad_out = o->padding_idx < 0 ? (int64_t)rows + o->padding_idx : o->padding_idx;
    return EMBT_OK;
}

static embt_status bag_impl(float *dst, const embt_table *t, const int64_t *ids, size_t n_ids,
                            const int64_t *offsets, size_t n_offsets, const float *psw,
                            const embt_bag_options *o)
{
    size_t n_bags;
    int64_t pad;
    embt_status st = check_bag(&n_bags, &pad, t->rows, ids, n_ids, offsets, n_offsets, psw, o);
    if (st)
        return st;
    size_t cols = (size_t)t->cols;
    if (n_bags == 0 || cols == 0)
        return EMBT_OK;
    float *rows = embt__malloc(CHUNK * cols * sizeof *rows); /* (CHUNK, cols) */
    if (!rows)
        return embt__error_nomem();
    embt_gather_options g = EMBT_GATHER_OPTIONS_INIT;
    g.max_norm = o->max_norm;
    g.norm_type = o->norm_type;
    g.flags = o->flags | EMBT_OPS_ONE_THREAD;
    for (size_t b = 0; b < n_bags; b++) {
        size_t from, to;
        if (offsets) {
            from = (size_t)offsets[b];
            to = b + 1 < n_offsets ? (size_t)offsets[b + 1] : n_ids;
        } else {
            from = b * o->bag_size;
            to = from + o->bag_size;
        }
        float *acc = dst + b * cols; /* (cols) */
        memset(acc, 0, cols * sizeof *acc);
        size_t count = 0; /* non-padding entries so far */
        for (size_t i = from; i < to; i += CHUNK) {
            size_t m = to - i < CHUNK ? to - i : CHUNK;
            if ((st = embt_gather(rows, t, ids + i, m, &g)))
                goto done;
            for (size_t k = 0; k < m; k++) {
                if (ids[i + k] == pad)
                    continue;
                const float *restrict r = rows + k * cols;
                if (o->mode == EMBT_BAG_MAX) {
                    /* aten: the first entry sets, later ones replace only when strictly greater */
                    if (count == 0)
                        memcpy(acc, r, cols * sizeof *acc);
                    else
                        for (size_t d = 0; d < cols; d++)
                            acc[d] = r[d] > acc[d] ? r[d] : acc[d];
                } else if (psw) {
                    float w = psw[i + k];
                    for (size_t d = 0; d < cols; d++)
                        acc[d] += w * r[d];
                } else {
                    for (size_t d = 0; d < cols; d++)
                        acc[d] += r[d];
                }
                count++;
            }
        }
        if (o->mode == EMBT_BAG_MEAN && count > 0) {
            /* aten divides the sum by max(bag_size, 1) as a float tensor */
            float c = (float)count;
            for (size_t d = 0; d < cols; d++)
                acc[d] /= c;
        }
    }
done:
    embt__free(rows);
    return st;
}

embt_status embt_bag(float *dst, const embt_table *table, const int64_t *ids, size_t n_ids,
                     const int64_t *offsets, size_t n_offsets, const float *per_sample_weights,
                     const embt_bag_options *opts)
{
    EMBT_CHECK_ARG(table && (n_ids == 0 || ids));
    embt_bag_options defaults = EMBT_BAG_OPTIONS_INIT;
    const embt_bag_options *o = opts ? opts : &defaults;
    size_t n_bags;
    embt_status st = embt_bag_count(&n_bags, n_ids, offsets, n_offsets, o);
    if (st)
        return st;
    EMBT_CHECK_ARG(dst || n_bags == 0 || table->cols == 0);
    return bag_impl(dst, table, ids, n_ids, offsets, n_offsets, per_sample_weights, o);
}

embt_status embt_matrix_bag(float *dst, embt_matrix *weight, const int64_t *ids, size_t n_ids,
                            const int64_t *offsets, size_t n_offsets,
                            const float *per_sample_weights, const embt_bag_options *opts)
{
    EMBT_CHECK_ARG(weight && (n_ids == 0 || ids));
    embt_bag_options o = EMBT_BAG_OPTIONS_INIT;
    if (opts)
        o = *opts;
    size_t n_bags;
    int64_t pad;
    embt_status st = check_bag(&n_bags, &pad, weight->rows, ids, n_ids, offsets, n_offsets,
                               per_sample_weights, &o);
    if (st)
        return st;
    EMBT_CHECK_ARG(dst || n_bags == 0 || weight->cols == 0);
    /* F.embedding_bag renormalises the weight in place for every id of the input, then reduces */
    if (o.max_norm > 0 && (st = embt_renorm(weight, ids, n_ids, o.max_norm, o.norm_type)))
        return st;
    o.max_norm = 0.0;
    embt_table view;
    memset(&view, 0, sizeof view);
    view.dtype = EMBT_DTYPE_F32;
    view.rank = 2;
    view.rows = weight->rows;
    view.cols = weight->cols;
    view.row_bytes = (size_t)weight->cols * sizeof(float);
    view.data = (const uint8_t *)weight->data;
    view.scales_entry = SIZE_MAX;
    return bag_impl(dst, &view, ids, n_ids, offsets, n_offsets, per_sample_weights, &o);
}
