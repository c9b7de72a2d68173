/* export_npy.c: a table of an .embt file as a NumPy .npy array, byte for byte what np.save writes
 * for the same array (version 1.0, C order, little-endian, header padded to 64 bytes). */
#include "npy.h"

#define CHUNK_BYTES ((size_t)1 << 20) /* bytes handed to the sink at a time */
#define BATCH_ELEMS ((size_t)1 << 18) /* elements converted at a time */

static bool npy_dtype(embt_dtype t)
{
    return t == EMBT_DTYPE_F32 || t == EMBT_DTYPE_F16 || t == EMBT_DTYPE_F64;
}

embt_status embt__npy_export_dtype(embt_dtype *out, const embt_table *table,
                                   const embt_convert_options *opts)
{
    embt_dtype want = opts ? opts->dtype : 0;
    if (want != 0 && !npy_dtype(want))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "npy export cannot store dtype %s (f32, f16 or f64)",
                           embt_dtype_name(want) ? embt_dtype_name(want) : "unknown");
    embt_dtype have = embt_table_dtype(table);
    *out = want ? want : npy_dtype(have) ? have : EMBT_DTYPE_F32;
    return EMBT_OK;
}

embt_status embt__npy_emit(const embt_table *table, embt_dtype dtype, embt__npy_sink sink,
                           void *payload, uint64_t *size_out)
{
    embt_status rc;
    float *f32 = NULL;
    uint8_t *conv = NULL;
    uint8_t header[256];
    embt_dtype from = embt_table_dtype(table);
    uint64_t rows = embt_table_rows(table), cols = embt_table_cols(table);
    unsigned rank = embt_table_rank(table);
    const char *descr = dtype == EMBT_DTYPE_F16 ? "<f2" : dtype == EMBT_DTYPE_F64 ? "<f8" : "<f4";
    size_t osz = embt_dtype_size(dtype), isz = embt_dtype_size(from);

    size_t hlen = embt__npy_header_build(header, sizeof header, descr, rank, rows, cols);
    rc = sink(header, hlen, payload);
    if (rc != EMBT_OK)
        goto done;
    const uint8_t *data = embt_table_data(table);
    uint64_t bytes = rows * cols * osz; /* the table was checked against its file at open */
    if (from == dtype) {
        for (uint64_t at = 0; at < bytes;) {
            size_t n = bytes - at < CHUNK_BYTES ? (size_t)(bytes - at) : CHUNK_BYTES;
            rc = sink(data + at, n, payload);
            if (rc != EMBT_OK)
                goto done;
            at += n;
        }
    } else if (rows > 0) {
        bool float_src = from == EMBT_DTYPE_F16 || from == EMBT_DTYPE_BF16 ||
                         from == EMBT_DTYPE_F32 || from == EMBT_DTYPE_F64;
        size_t batch = BATCH_ELEMS / cols ? BATCH_ELEMS / (size_t)cols : 1;
        if (batch > rows)
            batch = (size_t)rows;
        size_t n_max = batch * (size_t)cols;
        conv = embt__malloc(n_max * osz);
        f32 = float_src ? NULL : embt__malloc(n_max * sizeof *f32);
        if (!conv || (!float_src && !f32)) {
            rc = embt__error_nomem();
            goto done;
        }
        for (uint64_t r0 = 0; r0 < rows;) {
            size_t nb = rows - r0 < batch ? (size_t)(rows - r0) : batch;
            size_t n = nb * (size_t)cols;
            if (float_src) {
                embt__npy_convert(conv, dtype, data + r0 * cols * isz, from, n);
            } else {
                for (size_t i = 0; i < nb; i++) {
                    rc = embt_table_read_row_f32(f32 + i * cols, table, r0 + i);
                    if (rc != EMBT_OK)
                        goto done;
                }
                embt__npy_convert(conv, dtype, f32, EMBT_DTYPE_F32, n);
            }
            rc = sink(conv, n * osz, payload);
            if (rc != EMBT_OK)
                goto done;
            r0 += nb;
        }
    }
    if (size_out)
        *size_out = hlen + bytes;
done:
    embt__free(f32);
    embt__free(conv);
    return rc;
}

static embt_status output_sink(const void *data, size_t n, void *payload)
{
    return embt__output_write(payload, data, n);
}

embt_status embt__export_npy(const embt_file *src, const embt_table *table, embt__output *out,
                             const embt_convert_options *opts)
{
    embt_dtype dtype = EMBT_DTYPE_F32;
    (void)src;
    EMBT_CHECK_ARG(table != NULL);
    EMBT_CHECK_ARG(out != NULL);
    embt_status rc = embt__npy_export_dtype(&dtype, table, opts);
    if (rc != EMBT_OK)
        return rc;
    return embt__npy_emit(table, dtype, output_sink, out, NULL);
}
