/* embt/table.h: weight tables borrowed from an open file: shape, dtype, rows.
 * Thread safety: all functions are read-only and may be called from any number of threads. */
#ifndef EMBT_TABLE_H
#define EMBT_TABLE_H

#include "file.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element types (spec/FORMAT.md 4.4). The values are the ones stored in the file. */
typedef enum embt_dtype {
    EMBT_DTYPE_F32 = 1,
    EMBT_DTYPE_F16 = 2,
    EMBT_DTYPE_BF16 = 3,
    EMBT_DTYPE_F64 = 4,
    EMBT_DTYPE_I8 = 5, /* with a per-row f32 scale: value = scale[row] * q */
    EMBT_DTYPE_U8 = 6,
    EMBT_DTYPE_I32 = 7,
    EMBT_DTYPE_I64 = 8
} embt_dtype;

/* Bytes per element, 0 for an unknown dtype. */
EMBT_API size_t embt_dtype_size(embt_dtype dtype);
/* "f32", "f16", "bf16", "f64", "i8", "u8", "i32", "i64"; NULL for an unknown dtype. Static string. */
EMBT_API const char *embt_dtype_name(embt_dtype dtype);
/* Parses a name of embt_dtype_name(). Errors: EMBT_EINVAL. */
EMBT_API embt_status embt_dtype_parse(embt_dtype *out, const char *name);

/* The table's name (borrowed, NUL-terminated, valid until the file is closed). */
EMBT_API const char *embt_table_name(const embt_table *table);
EMBT_API embt_dtype embt_table_dtype(const embt_table *table);
/* 1 (a vector such as a bias: rows is its length, cols is 1, and it reads as rows rows of one
 * element) or 2. */
EMBT_API unsigned embt_table_rank(const embt_table *table);
EMBT_API uint64_t embt_table_rows(const embt_table *table);
EMBT_API uint64_t embt_table_cols(const embt_table *table);
/* The vocabulary the table is tied to (row i is token i), or NULL for a stand-alone table. */
EMBT_API const embt_vocab *embt_table_vocab(const embt_table *table);

/* The raw row-major data, `rows * cols * embt_dtype_size(dtype)` bytes, aligned to at least 64 bytes,
 * borrowed from the mapping (or from the inflated copy of a compressed section). Never NULL for a table
 * with at least one element. The bytes are little-endian as stored. */
EMBT_API const void *embt_table_data(const embt_table *table);

/* Direct pointer to row `row` of an F32 table (the mapped bytes: zero copy). NULL when the dtype is not
 * F32 or row is out of range (error record set: EMBT_EINVAL). */
EMBT_API const float *embt_table_row_f32(const embt_table *table, uint64_t row);

/* Converts row `row` to float32 into dst[0 .. cols) for every dtype (F64 rounds to nearest; I8 is
 * scale * q). Errors: EMBT_EINVAL (row out of range). */
EMBT_API embt_status embt_table_read_row_f32(float *dst, const embt_table *table, uint64_t row);

/* Gathers rows ids[0 .. n) converted to float32 into dst (n, cols). Every id is checked first: an id
 * out of range gives EMBT_EINVAL (with the position in the record's offset field) and dst is untouched. */
EMBT_API embt_status embt_table_gather_f32(float *dst, const embt_table *table, const uint64_t *ids,
                                           size_t n);

/* The row scales of an I8 table (rows values; one for a rank-1 table; borrowed) or NULL for other
 * dtypes. */
EMBT_API const float *embt_table_scales(const embt_table *table);
/* The stored L2 norms (rows values; one for a rank-1 table; borrowed) or NULL when the file has no
 * ROW_NORMS for the table. */
EMBT_API const float *embt_table_norms(const embt_table *table);

/* Element conversions used above, exported for converters and tests. n elements each. */
/* f16 -> f32 is exact; NaN payloads are kept and signalling NaNs become quiet (as F16C does). */
EMBT_API void embt_f16_to_f32(float *dst, const uint16_t *src, size_t n);
EMBT_API void embt_f32_to_f16(uint16_t *dst, const float *src,
                              size_t n); /* round to nearest even */
EMBT_API void embt_bf16_to_f32(float *dst, const uint16_t *src, size_t n);
EMBT_API void embt_f32_to_bf16(uint16_t *dst, const float *src,
                               size_t n); /* round to nearest even */

#ifdef __cplusplus
}
#endif
#endif
