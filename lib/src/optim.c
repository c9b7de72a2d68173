/* optim.c: the gradient of F.embedding (padding_idx, scale_grad_by_freq) and torch.optim's SGD,
 * Adagrad and SparseAdam on the rows a step touched, float32 operation for operation, with their
 * state written to and restored from .embt files (embt/train.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

/* ---- F.embedding backward ---------------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Number of occurrences of `id` in the sorted array s (n). */
static size_t count_sorted(const int64_t *s, size_t n, int64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t c = 0;
    while (lo + c < n && s[lo + c] == id)
        c++;
    return c;
}

embt_status embt_embedding_backward(int64_t *ids_out, float *grad_out, size_t *n_out,
                                    const int64_t *ids, const float *grad_output, size_t n,
                                    uint64_t rows, uint64_t cols, int64_t padding_idx,
                                    int scale_grad_by_freq)
{
    EMBT_CHECK_ARG(n_out && (n == 0 || (ids && grad_output && ids_out && grad_out)));
    *n_out = 0;
    int64_t pad = -1;
    if (padding_idx != EMBT_NO_PADDING) {
        if (padding_idx < -(int64_t)rows || padding_idx >= (int64_t)rows)
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                               "padding_idx %lld outside [-%llu, %llu)", (long long)padding_idx,
                               (unsigned long long)rows, (unsigned long long)rows);
        pad = padding_idx < 0 ? (int64_t)rows + padding_idx : padding_idx;
    }
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (uint64_t)ids[i] >= rows)
            return embt__error(EMBT_EINVAL, i, NULL, 0, "id %lld at %zu outside [0, %llu)",
                               (long long)ids[i], i, (unsigned long long)rows);
    int64_t *sorted = NULL;
    if (scale_grad_by_freq && n > 0) {
        sorted = embt__malloc(n * sizeof *sorted);
        if (!sorted)
            return embt__error_nomem();
        memcpy(sorted, ids, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, cmp_i64);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == pad)
            continue;
        /* the dense backward: scalar_t scale = 1.0; scale /= counts[k] */
        float scale = 1.0f;
        if (sorted)
            scale /= (float)count_sorted(sorted, n, ids[i]);
        ids_out[k] = ids[i];
        const float *g = grad_output + i * cols; /* (cols) */
        float *o = grad_out + k * cols;          /* (cols) */
        if (sorted)
            for (uint64_t c = 0; c < cols; c++)
                o[c] = g[c] * scale;
        else
            memmove(o, g, cols * sizeof *o);
        k++;
    }
    embt__free(sorted);
    *n_out = k;
    return EMBT_OK;
}

/* ---- options ----------------------------------------------------------------------------------- */

void embt_optim_defaults(embt_optim_options *o, embt_optim_kind kind)
{
    memset(o, 0, sizeof *o);
    o->version = EMBT_OPTIM_OPTIONS_VERSION;
    o->kind = kind;
    o->lr = kind == EMBT_OPTIM_ADAGRAD ? 1e-2 : 1e-3;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = kind == EMBT_OPTIM_ADAGRAD ? 1e-10 : 1e-8;
}

static const char *const optim_names[] = {"sgd", "adagrad", "adam"};

const char *embt_optim_name(embt_optim_kind kind)
{
    return (unsigned)kind < 3 ? optim_names[kind] : NULL;
}

embt_status embt_optim_parse(embt_optim_kind *out, const char *name)
{
    for (unsigned k = 0; k < 3; k++)
        if (name && strcmp(name, optim_names[k]) == 0) {
            *out = (embt_optim_kind)k;
            return EMBT_OK;
        }
    return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                       "unknown optimizer '%s' (sgd, adagrad or adam)", name ? name : "");
}

static embt_status check_options(const embt_optim_options *o)
{
    if (!o || o->version != EMBT_OPTIM_OPTIONS_VERSION || (unsigned)o->kind > 2)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "bad optimizer options");
    if (!(o->lr >= 0) || !(o->eps >= 0) || !(o->lr_decay >= 0) ||
        !(o->initial_accumulator_value >= 0) || !(o->beta1 >= 0 && o->beta1 < 1) ||
        !(o->beta2 >= 0 && o->beta2 < 1))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "optimizer options out of range (lr, eps, lr_decay, "
                           "initial_accumulator_value >= 0; betas in [0, 1))");
    return EMBT_OK;
}

/* ---- state ------------------------------------------------------------------------------------- */

void embt_optim_release(embt_optim *o)
{
    if (!o)
        return;
    embt__free(o->sum);
    embt__free(o->m);
    embt__free(o->v);
    memset(o, 0, sizeof *o);
}

embt_status embt_optim_init(embt_optim *o, const embt_optim_options *opts, uint64_t rows,
                            uint64_t cols)
{
    EMBT_CHECK_ARG(o);
    memset(o, 0, sizeof *o);
    embt_status st = check_options(opts);
    if (st)
        return st;
    uint64_t n, bytes;
    if (!embt__mul_u64(&n, rows, cols) || !embt__mul_u64(&bytes, n, sizeof(float)) ||
        bytes > SIZE_MAX)
        return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0, "optimizer state too large");
    o->opts = *opts;
    o->rows = rows;
    o->cols = cols;
    size_t alloc = bytes ? (size_t)bytes : sizeof(float);
    if (opts->kind == EMBT_OPTIM_ADAGRAD) {
        o->sum = embt__malloc(alloc);
        if (!o->sum)
            goto nomem;
        float init = (float)opts->initial_accumulator_value;
        for (uint64_t i = 0; i < n; i++)
            o->sum[i] = init;
    } else if (opts->kind == EMBT_OPTIM_ADAM) {
        o->m = embt__calloc(1, alloc);
        o->v = embt__calloc(1, alloc);
        if (!o->m || !o->v)
            goto nomem;
    }
    return EMBT_OK;
nomem:
    embt_optim_release(o);
    return embt__error_nomem();
}

/* ---- kernels ----------------------------------------------------------------------------------- */

/* Adagrad on one row (torch/optim/adagrad.py, sparse branch).
 * w, s, g: (cols)   clr: lr / (1 + (t - 1) lr_decay)   eps: added to sqrt(S) */
static void adagrad_row(float *restrict w, float *restrict s, const float *restrict g, size_t cols,
                        float neg_clr, float eps)
{
    for (size_t c = 0; c < cols; c++) {
        s[c] += g[c] * g[c];
        w[c] += neg_clr * (g[c] / (sqrtf(s[c]) + eps));
    }
}

/* SparseAdam on one row (torch/optim/_functional.py sparse_adam), in its float32 operation order.
 * w, m, v, g: (cols)   neg_step: -(lr sqrt(1 - b2^t) / (1 - b1^t))   omb1, omb2: 1 - beta */
static void adam_row(float *restrict w, float *restrict m, float *restrict v,
                     const float *restrict g, size_t cols, float neg_step, float omb1, float omb2,
                     float eps)
{
    for (size_t c = 0; c < cols; c++) {
        float m_old = m[c], v_old = v[c];
        float u = (g[c] - m_old) * omb1;
        float q = (g[c] * g[c] - v_old) * omb2;
        m[c] = m_old + u;
        v[c] = v_old + q;
        float numer = u + m_old;
        float denom = sqrtf(q + v_old) + eps;
        w[c] += (numer / denom) * neg_step;
    }
}

static double adam_step_size(const embt_optim_options *o, double lr, uint64_t t)
{
    double bc1 = 1.0 - pow(o->beta1, (double)t);
    double bc2 = 1.0 - pow(o->beta2, (double)t);
    return lr * sqrt(bc2) / bc1;
}

void embt_optim_row(embt_optim *o, float *w, uint64_t row, const float *g, double lr, uint64_t t)
{
    size_t cols = (size_t)o->cols;
    switch (o->opts.kind) {
    case EMBT_OPTIM_SGD: {
        /* PyTorch's vectorised add kernel contracts w + a*g into one FMA on AVX2 hosts: fmaf
         * rounds once on every host */
        float a = (float)-lr;
        for (size_t c = 0; c < cols; c++)
            w[c] = fmaf(a, g[c], w[c]);
        break;
    }
    case EMBT_OPTIM_ADAGRAD: {
        double clr = lr / (1.0 + (double)(t - 1) * o->opts.lr_decay);
        adagrad_row(w, o->sum + row * cols, g, cols, (float)-clr, (float)o->opts.eps);
        break;
    }
    case EMBT_OPTIM_ADAM:
        adam_row(w, o->m + row * cols, o->v + row * cols, g, cols,
                 (float)-adam_step_size(&o->opts, lr, t), (float)(1.0 - o->opts.beta1),
                 (float)(1.0 - o->opts.beta2), (float)o->opts.eps);
        break;
    }
}

/* Orders occurrence indexes by id, then by position (a stable sort: coalescing sums in order). */
typedef struct occ {
    int64_t id;
    size_t pos;
} occ;

static int cmp_occ(const void *a, const void *b)
{
    const occ *x = a, *y = b;
    if (x->id != y->id)
        return (x->id > y->id) - (x->id < y->id);
    return (x->pos > y->pos) - (x->pos < y->pos);
}

embt_status embt_optim_step(embt_optim *o, embt_matrix *weight, const int64_t *ids,
                            const float *grad, size_t n)
{
    EMBT_CHECK_ARG(o && weight && (n == 0 || (ids && grad)));
    if (weight->rows != o->rows || weight->cols != o->cols)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "weight is %llu x %llu, the optimizer state %llu x %llu",
                           (unsigned long long)weight->rows, (unsigned long long)weight->cols,
                           (unsigned long long)o->rows, (unsigned long long)o->cols);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (uint64_t)ids[i] >= o->rows)
            return embt__error(EMBT_EINVAL, i, NULL, 0, "id %lld at %zu outside [0, %llu)",
                               (long long)ids[i], i, (unsigned long long)o->rows);
    size_t cols = (size_t)o->cols;
    o->step++;
    uint64_t t = o->step;
    if (n == 0)
        return EMBT_OK;
    occ *order = embt__malloc(n * sizeof *order);
    float *acc = embt__malloc(cols ? cols * sizeof *acc : sizeof *acc);
    if (!order || !acc) {
        embt__free(order);
        embt__free(acc);
        o->step--;
        return embt__error_nomem();
    }
    for (size_t i = 0; i < n; i++) {
        order[i].id = ids[i];
        order[i].pos = i;
    }
    qsort(order, n, sizeof *order, cmp_occ);
    for (size_t i = 0; i < n;) {
        /* coalesce: the sum of the id's rows in order of occurrence */
        size_t j = i;
        memcpy(acc, grad + order[i].pos * cols, cols * sizeof *acc);
        while (++j < n && order[j].id == order[i].id) {
            const float *g = grad + order[j].pos * cols;
            for (size_t c = 0; c < cols; c++)
                acc[c] += g[c];
        }
        uint64_t row = (uint64_t)order[i].id;
        embt_optim_row(o, weight->data + row * cols, row, acc, o->opts.lr, t);
        i = j;
    }
    embt__free(order);
    embt__free(acc);
    return EMBT_OK;
}

/* ---- saving and loading ------------------------------------------------------------------------ */

/* "<table><suffix>" into buf. */
static embt_status state_name(char *buf, size_t cap, const char *table, const char *suffix)
{
    int len = snprintf(buf, cap, "%s%s", table, suffix);
    if (len < 0 || (size_t)len >= cap)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "table name too long");
    return EMBT_OK;
}

static embt_status write_state(embt_writer *writer, const char *table, const char *suffix,
                               const char *vocab, const embt_optim *o, const float *data)
{
    char name[320];
    embt_status st = state_name(name, sizeof name, table, suffix);
    if (st)
        return st;
    embt_table_spec spec = EMBT_TABLE_SPEC_INIT;
    spec.name = name;
    spec.rows = o->rows;
    spec.cols = o->cols;
    spec.vocab = vocab;
    return embt_writer_add_table_f32(writer, &spec, data);
}

embt_status embt_optim_write(const embt_optim *o, embt_writer *writer, const char *table,
                             const char *vocab)
{
    EMBT_CHECK_ARG(o && writer && table);
    if (o->opts.kind == EMBT_OPTIM_ADAGRAD)
        return write_state(writer, table, ".adagrad.sum", vocab, o, o->sum);
    if (o->opts.kind == EMBT_OPTIM_ADAM) {
        embt_status st = write_state(writer, table, ".adam.m", vocab, o, o->m);
        return st ? st : write_state(writer, table, ".adam.v", vocab, o, o->v);
    }
    return EMBT_OK;
}

/* "optimizer.step.<table with '.' as '_'>" */
static embt_status step_key(char *buf, size_t cap, const char *table)
{
    embt_status st = state_name(buf, cap, "optimizer.step.", table);
    if (st)
        return st;
    for (char *p = buf + strlen("optimizer.step."); *p; p++)
        if (*p == '.')
            *p = '_';
    return EMBT_OK;
}

embt_status embt_optim_save_meta(const embt_optim *o, embt_meta *meta, const char *table)
{
    EMBT_CHECK_ARG(o && meta && table);
    char key[320];
    embt_status st = embt_meta_set(meta, "optimizer.kind", embt_optim_name(o->opts.kind));
    if (!st)
        st = embt__meta_set_f64(meta, "optimizer.lr", o->opts.lr);
    if (!st)
        st = embt__meta_set_f64(meta, "optimizer.lr_decay", o->opts.lr_decay);
    if (!st)
        st = embt__meta_set_f64(meta, "optimizer.initial_accumulator_value",
                                o->opts.initial_accumulator_value);
    if (!st)
        st = embt__meta_set_f64(meta, "optimizer.beta1", o->opts.beta1);
    if (!st)
        st = embt__meta_set_f64(meta, "optimizer.beta2", o->opts.beta2);
    if (!st)
        st = embt__meta_set_f64(meta, "optimizer.eps", o->opts.eps);
    if (!st)
        st = step_key(key, sizeof key, table);
    if (!st)
        st = embt__meta_set_u64(meta, key, o->step);
    return st;
}

static embt_status load_state(float *dst, const embt_file *file, const char *table,
                              const char *suffix, uint64_t rows, uint64_t cols)
{
    char name[320];
    const embt_table *t = NULL;
    embt_status st = state_name(name, sizeof name, table, suffix);
    if (!st)
        st = embt_file_table(&t, file, name);
    if (st)
        return embt__error(EMBT_ENOTFOUND, EMBT_NO_OFFSET, NULL, 0, "no table %s", name);
    return embt__table_read_f32(dst, t, rows, cols);
}

embt_status embt_optim_load(embt_optim *o, const embt_file *file, const embt_meta *meta,
                            const char *table, uint64_t rows, uint64_t cols)
{
    EMBT_CHECK_ARG(o && file && meta && table);
    memset(o, 0, sizeof *o);
    embt_optim_options opts;
    const char *s;
    size_t len;
    char key[320];
    embt_status st = embt_meta_get(&s, &len, meta, "optimizer.kind");
    if (st)
        return st;
    embt_optim_kind kind;
    if ((st = embt_optim_parse(&kind, s)))
        return st;
    embt_optim_defaults(&opts, kind);
    if ((st = embt__meta_get_f64(&opts.lr, meta, "optimizer.lr")) ||
        (st = embt__meta_get_f64(&opts.lr_decay, meta, "optimizer.lr_decay")) ||
        (st = embt__meta_get_f64(&opts.initial_accumulator_value, meta,
                                 "optimizer.initial_accumulator_value")) ||
        (st = embt__meta_get_f64(&opts.beta1, meta, "optimizer.beta1")) ||
        (st = embt__meta_get_f64(&opts.beta2, meta, "optimizer.beta2")) ||
        (st = embt__meta_get_f64(&opts.eps, meta, "optimizer.eps")) ||
        (st = step_key(key, sizeof key, table)))
        return st;
    uint64_t step;
    if ((st = embt__meta_get_u64(&step, meta, key, true)))
        return st;
    if ((st = embt_optim_init(o, &opts, rows, cols)))
        return st;
    o->step = step;
    if (kind == EMBT_OPTIM_ADAGRAD)
        st = load_state(o->sum, file, table, ".adagrad.sum", rows, cols);
    else if (kind == EMBT_OPTIM_ADAM) {
        st = load_state(o->m, file, table, ".adam.m", rows, cols);
        if (!st)
            st = load_state(o->v, file, table, ".adam.v", rows, cols);
    }
    if (st)
        embt_optim_release(o);
    return st;
}
