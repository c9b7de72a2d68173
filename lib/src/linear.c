/* linear.c: nn.Linear's forward, y = x W^T + b, with W (out, in) and b (out) read from tables of any
 * dtype or from float32 matrices. W is read once, row by row; each dot product accumulates in double
 * and is rounded once, so results are within rounding of PyTorch's sgemm whatever its order. */
#include "reader.h"

static embt_status linear_impl(float *y, const float *x, size_t n, const embt_table *w,
                               const embt_table *b)
{
    size_t out = (size_t)w->rows, in = (size_t)w->cols;
    if (b) {
        uint64_t len = b->rows * b->cols;
        if (len != w->rows || (b->cols != 1 && b->rows != 1))
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                               "bias of shape (%llu, %llu) does not fit %zu outputs",
                               (unsigned long long)b->rows, (unsigned long long)b->cols, out);
    }
    if (n == 0 || out == 0)
        return EMBT_OK;
    float *bias = NULL, *row = NULL; /* bias: (out)   row: (in) */
    embt_status st = EMBT_OK;
    if (!(bias = embt__calloc(out, sizeof *bias)) || !(row = embt__malloc((in ? in : 1) * 4))) {
        st = embt__error_nomem();
        goto done;
    }
    if (b) {
        /* (out, 1) or (1, out): out elements in row-major order either way */
        for (uint64_t r = 0; r < b->rows; r++)
            if ((st = embt_table_read_row_f32(bias + r * (size_t)b->cols, b, r)))
                goto done;
    }
    for (size_t o = 0; o < out; o++) {
        if ((st = embt_table_read_row_f32(row, w, o)))
            goto done;
        const float *restrict wr = row; /* (in) */
        for (size_t i = 0; i < n; i++) {
            const float *restrict xi = x + i * in; /* (in) */
            double s = 0.0;
            for (size_t k = 0; k < in; k++)
                s += (double)xi[k] * (double)wr[k];
            y[i * out + o] = b ? (float)s + bias[o] : (float)s;
        }
    }
done:
    embt__free(bias);
    embt__free(row);
    return st;
}

embt_status embt_linear(float *y, const float *x, size_t n, const embt_table *weight,
                        const embt_table *bias)
{
    EMBT_CHECK_ARG(weight && (n == 0 || (y && x)));
    return linear_impl(y, x, n, weight, bias);
}

static void matrix_view(embt_table *t, const embt_matrix *m)
{
    memset(t, 0, sizeof *t);
    t->dtype = EMBT_DTYPE_F32;
    t->rank = 2;
    t->rows = m->rows;
    t->cols = m->cols;
    t->row_bytes = (size_t)m->cols * sizeof(float);
    t->data = (const uint8_t *)m->data;
    t->scales_entry = SIZE_MAX;
}

embt_status embt_matrix_linear(float *y, const float *x, size_t n, const embt_matrix *weight,
                               const embt_matrix *bias)
{
    EMBT_CHECK_ARG(weight && (n == 0 || (y && x)));
    embt_table w, b;
    matrix_view(&w, weight);
    if (bias)
        matrix_view(&b, bias);
    return linear_impl(y, x, n, &w, bias ? &b : NULL);
}
