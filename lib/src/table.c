/* table.c: shape, dtype and rows of a table borrowed from an open file. Row pointers of F32 tables
 * point into the mapping (zero copy); other dtypes are converted row by row. */
#include "reader.h"

const char *embt_table_name(const embt_table *table)
{
    return table->name;
}

embt_dtype embt_table_dtype(const embt_table *table)
{
    return table->dtype;
}

unsigned embt_table_rank(const embt_table *table)
{
    return table->rank;
}

uint64_t embt_table_rows(const embt_table *table)
{
    return table->rows;
}

uint64_t embt_table_cols(const embt_table *table)
{
    return table->cols;
}

const embt_vocab *embt_table_vocab(const embt_table *table)
{
    return table->vocab;
}

const void *embt_table_data(const embt_table *table)
{
    return table->data;
}

const float *embt_table_scales(const embt_table *table)
{
    return table->scales;
}

const float *embt_table_norms(const embt_table *table)
{
    return table->norms;
}

const float *embt_table_row_f32(const embt_table *table, uint64_t row)
{
    if (table->dtype != EMBT_DTYPE_F32) {
        embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "table '%s' is %s, not f32", table->name,
                    embt_dtype_name(table->dtype));
        return NULL;
    }
    if (row >= table->rows) {
        embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "row %llu out of range (%llu rows)",
                    (unsigned long long)row, (unsigned long long)table->rows);
        return NULL;
    }
    /* sections start on the file's alignment (>= 64) and the map or copy is page/64-aligned */
    return (const float *)(const void *)(table->data + (size_t)row * table->row_bytes);
}

/* A rank-1 table reads as `rows` rows of one element; its single scale (spec rule 28) serves all. */
static void convert_row(float *dst, const embt_table *t, uint64_t row)
{
    float scale = 1.0f;
    if (t->scales)
        scale = t->scales[t->rank == 1 ? 0 : row];
    embt__to_f32(dst, t->data + (size_t)row * t->row_bytes, t->dtype, (size_t)t->cols, scale);
}

embt_status embt_table_read_row_f32(float *dst, const embt_table *table, uint64_t row)
{
    EMBT_CHECK_ARG(dst && table);
    if (row >= table->rows)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "row %llu out of range (%llu rows)", (unsigned long long)row,
                           (unsigned long long)table->rows);
    convert_row(dst, table, row);
    return EMBT_OK;
}

embt_status embt__table_check_shape(const embt_table *t, uint64_t rows, uint64_t cols)
{
    if (t->rows != rows || t->cols != cols)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "table %s is %llu x %llu, expected %llu x %llu", t->name,
                           (unsigned long long)t->rows, (unsigned long long)t->cols,
                           (unsigned long long)rows, (unsigned long long)cols);
    return EMBT_OK;
}

embt_status embt__table_read_f32(float *dst, const embt_table *t, uint64_t rows, uint64_t cols)
{
    embt_status st = embt__table_check_shape(t, rows, cols);
    if (st)
        return st;
    for (uint64_t r = 0; r < rows; r++)
        convert_row(dst + r * cols, t, r);
    return EMBT_OK;
}

embt_status embt_table_gather_f32(float *dst, const embt_table *table, const uint64_t *ids,
                                  size_t n)
{
    EMBT_CHECK_ARG(table && (n == 0 || (dst && ids)));
    uint64_t rows = table->rows;
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= rows)
            return embt__error(EMBT_EINVAL, i, NULL, 0,
                               "id %llu at position %zu out of range (%llu rows)",
                               (unsigned long long)ids[i], i, (unsigned long long)rows);
    /* every id is below rows <= 2^40, so it reads the same as int64_t (C11 6.5p7 allows the
     * signed view of an unsigned object); embt_gather() has the fast f32 and F16C paths */
    return embt_gather(dst, table, (const int64_t *)(const void *)ids, n, NULL);
}
