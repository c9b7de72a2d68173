/* npy.h: the NumPy .npy pieces shared by the npy and npz importers and exporters: the header parser,
 * the header writer (byte for byte as numpy writes it), the element conversions, and the loop that
 * streams one array into an open table of the writer. Never installed. */
#ifndef EMBT_NPY_H
#define EMBT_NPY_H

#include "convert.h"

#define EMBT__NPY_MAGIC_LEN 6
#define EMBT__NPY_HEADER_MAX (1u << 20) /* v2/v3 header length cap (v1 is at most 65,535) */
#define EMBT__NPY_DIMS_MAX 32           /* numpy's own maximum number of dimensions */

/* Where the bytes of one .npy array come from, for error offsets: a stored member or a plain file
 * gives base + position; an inflated member gives base (its local header) whatever the position. */
typedef struct embt__npy_src {
    const uint8_t *data; /* the .npy bytes */
    size_t size;
    uint64_t base;       /* offset of data[0] in the input (or of the member when inflated) */
    bool inflated;       /* positions inside data are not input offsets */
    const char *section; /* for the error record: "npy", "member embedding.npy" */
} embt__npy_src;

/* A parsed .npy header. */
typedef struct embt__npy {
    unsigned major, minor;
    char descr[32];       /* as written, for the metadata */
    embt_dtype dtype;     /* F16, BF16, F32 or F64 */
    size_t itemsize;      /* 2, 4 or 8 */
    bool big_endian;      /* elements must be byte-swapped */
    bool fortran;         /* column-major: element (i, j) at j * rows + i */
    unsigned rank;        /* 1 or 2 */
    uint64_t rows, cols;  /* rank 1: rows = length, cols = 1 */
    uint64_t data_offset; /* from data[0] of the source */
} embt__npy;

/* Offset in the input of position `pos` of src, for error records. */
uint64_t embt__npy_offset(const embt__npy_src *src, uint64_t pos);

/* Parses and checks the magic, version and header dict of src, and checks that exactly
 * rows * cols * itemsize data bytes follow (before anything is allocated). Accepted: versions 1.0,
 * 2.0, 3.0; descr <f2 >f2 |f2 <f4 >f4 <f8 >f8 (and = for native order); rank 1 and 2; C and
 * Fortran order. Errors: EMBT_EFORMAT (no magic), EMBT_EPARSE (truncated, bad dict, size mismatch),
 * EMBT_ELIMIT (version, descr, rank or shape beyond what embt supports); offsets set. */
embt_status embt__npy_parse(embt__npy *out, const embt__npy_src *src);

/* Streams `rows` rows of the parsed array into the writer as table `spec->name` (spec->dtype 0:
 * keep the array's dtype): the first ones, or row_map[i] for row i when row_map is not NULL (the
 * caller checked every entry is below npy->rows). Non-finite values fail with EMBT_EPARSE and the byte
 * offset unless the options allow them (then they are counted in the report). Calls the progress
 * callback with done_base + bytes done out of total. */
embt_status embt__npy_write_table(const embt__import *ctx, const embt__npy_src *src,
                                  const embt__npy *npy, const embt_table_spec *spec, uint64_t rows,
                                  const uint32_t *row_map, uint64_t done_base, uint64_t total);

/* Reads --vocab FILE into a new vocabulary ctx->vocab_name whose line i names row i of an array of
 * `array_rows` rows; *rows_out gets the table's row count and *row_map_out (NULL when row i is
 * line i for every row, else owned by the caller) the array row of each token, after the duplicate
 * and UTF-8 policies dropped or moved lines. Errors: those of the vocabulary reader, EMBT_EPARSE
 * (the file's lines and the array's rows disagree). */
embt_status embt__npy_read_vocab(const embt__import *ctx, uint64_t array_rows, const char *array,
                                 uint64_t *rows_out, uint32_t **row_map_out);

/* The entries of a YAML flow mapping describing the array, for the metadata:
 * `version: '1.0', descr: '<f4', shape: [r, c], fortran_order: false` (snprintf semantics). */
int embt__npy_meta(char *buf, size_t cap, const embt__npy *npy);

/* Appends `s` (n bytes of UTF-8) as a YAML double-quoted scalar to buf (grown with embt__realloc).
 * Errors: EMBT_ENOMEM. */
embt_status embt__yaml_quote(char **buf, size_t *len, size_t *cap, const char *s, size_t n);
/* Appends n bytes to a growable buffer. Errors: EMBT_ENOMEM. */
embt_status embt__buf_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n);

/* Writes the .npy header numpy's `np.save` writes for a C-order array of `descr`, rank 1 or 2,
 * shape (rows[, cols]): version 1.0 (2.0 if longer than 65,535 bytes), padded with spaces and a
 * newline so that the data starts at a multiple of 64. Returns the header's length (<= cap). */
size_t embt__npy_header_build(uint8_t *buf, size_t cap, const char *descr, unsigned rank,
                              uint64_t rows, uint64_t cols);

/* ---- element conversions (round to nearest even; NaN stays NaN, keeping the sign) ---- */
uint16_t embt__f64_to_f16(double d);
uint16_t embt__f64_to_bf16(double d);
/* Converts n elements between the float dtypes F16, BF16, F32 and F64 (from and to), each rounding
 * once to nearest even; src and dst are aligned, little-endian, and do not overlap. */
void embt__npy_convert(void *dst, embt_dtype to, const void *src, embt_dtype from, size_t n);

/* ---- export: one table as .npy bytes, produced in chunks ---- */
typedef embt_status (*embt__npy_sink)(const void *data, size_t n, void *payload);

/* The descr and dtype a table is exported as: F32/F16/F64 stay, everything else becomes F32 (BF16
 * exactly, I8 as scale * q, U8/I32/I64 rounded), unless opts->dtype asks for F32, F16 or F64.
 * Errors: EMBT_EINVAL (opts->dtype not representable in .npy). */
embt_status embt__npy_export_dtype(embt_dtype *out, const embt_table *table,
                                   const embt_convert_options *opts);
/* Emits the whole .npy file of `table` stored as `dtype` to sink; *size_out (if not NULL) gets
 * its length. Errors: those of the sink, EMBT_ENOMEM. */
embt_status embt__npy_emit(const embt_table *table, embt_dtype dtype, embt__npy_sink sink,
                           void *payload, uint64_t *size_out);
/* Emits a whole .npz of every table of src (file order, member NAME.npy each) to sink: stored
 * members laid out as numpy's np.savez does (zip64 local extra, fixed 1980-01-01 timestamps), or
 * deflated ones with data descriptors when opts->flags has EMBT_CONVERT_COMPRESS.
 * Errors: those of the sink and of embt__npy_export_dtype, EMBT_ENOMEM. */
embt_status embt__npz_write(const embt_file *src, embt__npy_sink sink, void *payload,
                            const embt_convert_options *opts);

#endif
