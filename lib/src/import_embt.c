/* import_embt.c: re-encodes an .embt input (embt -> embt): every vocabulary (counts and special
 * ids kept) and every table, in file order, with the options' dtype for float and i8 tables, the
 * compression flag for every section, --limit applied to each vocabulary and the tables tied to
 * it, and the metadata copied as it is. Nothing else is added. */
#include "convert.h"

#define CHUNK_ELEMS (1u << 18) /* elements converted per append (1 MiB of f32) */

static bool dtype_is_real(embt_dtype d)
{
    return d == EMBT_DTYPE_F32 || d == EMBT_DTYPE_F16 || d == EMBT_DTYPE_BF16 ||
           d == EMBT_DTYPE_F64 || d == EMBT_DTYPE_I8;
}

/* Marks a writer failure as concerning the output file (the CLI then names OUTPUT, not INPUT). */
static embt_status output_failure(embt_status rc)
{
    if (rc == EMBT_EIO)
        embt__error_set_section("output");
    return rc;
}

static uint32_t keep_id(uint32_t id, uint32_t size)
{
    return id < size ? id : EMBT_NONE_ID;
}

static embt_status copy_vocab(const embt__import *ctx, const embt_vocab *v, uint32_t size)
{
    unsigned flags = embt_vocab_has_counts(v) ? EMBT_VOCAB_COUNTS : 0;
    if (ctx->opts->flags & EMBT_CONVERT_COMPRESS)
        flags |= EMBT_VOCAB_COMPRESS;
    embt_vocab_spec spec = EMBT_VOCAB_SPEC_INIT;
    spec.name = embt_vocab_name(v);
    spec.flags = flags;
    embt_status rc = output_failure(embt_writer_vocab_begin(ctx->writer, &spec));
    for (uint32_t id = 0; rc == EMBT_OK && id < size; id++) {
        size_t len = 0;
        const char *tok = embt_vocab_token(v, id, &len);
        uint64_t count = 0;
        if (flags & EMBT_VOCAB_COUNTS)
            rc = embt_vocab_count(&count, v, id);
        if (rc == EMBT_OK)
            rc = output_failure(embt_writer_vocab_add(ctx->writer, tok, len, count, NULL));
    }
    if (rc == EMBT_OK)
        rc = output_failure(embt_writer_vocab_specials(
            ctx->writer, keep_id(embt_vocab_unk_id(v), size), keep_id(embt_vocab_pad_id(v), size),
            keep_id(embt_vocab_bos_id(v), size), keep_id(embt_vocab_eos_id(v), size)));
    if (rc == EMBT_OK)
        rc = output_failure(embt_writer_vocab_end(ctx->writer));
    return rc;
}

/* Copies `rows` rows of table t, converted to `dtype` (raw bytes when it is unchanged). */
static embt_status copy_table(const embt__import *ctx, const embt_table *t, uint64_t rows,
                              embt_dtype dtype, float *buf, uint64_t *done_bytes,
                              uint64_t total_bytes)
{
    const embt_convert_options *o = ctx->opts;
    embt_dtype src = embt_table_dtype(t);
    uint64_t cols = embt_table_cols(t);
    unsigned rank = embt_table_rank(t);
    size_t esize = embt_dtype_size(src);
    const embt_vocab *tied = embt_table_vocab(t);
    embt_table_spec spec = EMBT_TABLE_SPEC_INIT;
    spec.name = embt_table_name(t);
    spec.dtype = dtype;
    spec.rank = rank;
    spec.rows = rows;
    spec.cols = cols;
    spec.vocab = tied ? embt_vocab_name(tied) : NULL;
    spec.flags = (embt_table_norms(t) ? EMBT_TABLE_NORMS : 0) |
                 ((o->flags & EMBT_CONVERT_COMPRESS) ? EMBT_TABLE_COMPRESS : 0);
    embt_status rc = output_failure(embt_writer_table_begin(ctx->writer, &spec));
    if (rc != EMBT_OK)
        return rc;
    const uint8_t *data = embt_table_data(t);
    const float *scales = embt_table_scales(t);
    /* rows per chunk: at least one, CHUNK_ELEMS elements when rows are short */
    uint64_t per = cols ? CHUNK_ELEMS / cols : 1;
    if (per < 1)
        per = 1;
    float *row_buf = NULL;
    if (cols > CHUNK_ELEMS && rows > 0) { /* a row longer than the chunk buffer */
        row_buf = embt__malloc((size_t)cols * sizeof *row_buf);
        if (!row_buf)
            return embt__error_nomem();
        buf = row_buf;
    }
    for (uint64_t r = 0; rc == EMBT_OK && r < rows;) {
        size_t n = rows - r < per ? (size_t)(rows - r) : (size_t)per;
        const uint8_t *p = data + (size_t)(r * cols * esize);
        if (dtype == src) {
            const float *sc = NULL;
            if (scales)
                sc = rank == 1 ? scales : scales + r;
            rc = output_failure(embt_writer_table_append_raw(ctx->writer, p, n, sc));
        } else {
            for (size_t i = 0; i < n; i++) {
                float scale = 1.0f;
                if (scales)
                    scale = rank == 1 ? scales[0] : scales[r + i];
                embt__to_f32(buf + i * cols, p + i * cols * esize, src, (size_t)cols, scale);
            }
            rc = output_failure(embt_writer_table_append_f32(ctx->writer, buf, n));
        }
        r += n;
        *done_bytes += (uint64_t)n * cols * esize;
        if (rc == EMBT_OK && o->progress && o->progress(*done_bytes, total_bytes, o->payload) != 0)
            rc = embt__error(EMBT_ECANCELED, EMBT_NO_OFFSET, NULL, 0,
                             "conversion canceled in table %.64s", embt_table_name(t));
    }
    embt__free(row_buf);
    if (rc == EMBT_OK)
        rc = output_failure(embt_writer_table_end(ctx->writer));
    return rc;
}

embt_status embt__import_embt(const embt__import *ctx)
{
    EMBT_CHECK_ARG(ctx != NULL);
    const embt_convert_options *o = ctx->opts;
    embt_file *file = NULL;
    float *buf = NULL;
    embt_status rc;

    if (o->vocab_path) {
        rc = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                         "a vocabulary file only applies to array inputs");
        goto done;
    }
    rc = embt_file_open_memory(&file, ctx->in->data, ctx->in->size, &embt__open_verified);
    if (rc != EMBT_OK)
        goto done;
    buf = embt__malloc((size_t)CHUNK_ELEMS * sizeof *buf);
    if (!buf) {
        rc = embt__error_nomem();
        goto done;
    }
    for (size_t i = 0; i < embt_file_vocab_count(file); i++) {
        const embt_vocab *v = embt_file_vocab_at(file, i);
        uint32_t size = embt_vocab_size(v);
        if (o->limit && o->limit < size)
            size = (uint32_t)o->limit;
        rc = copy_vocab(ctx, v, size);
        if (rc != EMBT_OK)
            goto done;
        if (i == 0)
            ctx->report->rows = size;
    }
    uint64_t total = 0, done_bytes = 0;
    for (size_t i = 0; i < embt_file_table_count(file); i++) {
        const embt_table *t = embt_file_table_at(file, i);
        total += embt_table_rows(t) * embt_table_cols(t) * embt_dtype_size(embt_table_dtype(t));
    }
    for (size_t i = 0; i < embt_file_table_count(file); i++) {
        const embt_table *t = embt_file_table_at(file, i);
        uint64_t rows = embt_table_rows(t);
        if (embt_table_vocab(t) && o->limit && o->limit < rows)
            rows = o->limit;
        embt_dtype dtype = embt_table_dtype(t);
        if (o->dtype && dtype_is_real(dtype))
            dtype = o->dtype;
        rc = copy_table(ctx, t, rows, dtype, buf, &done_bytes, total);
        if (rc != EMBT_OK)
            goto done;
        if (embt_file_vocab_count(file) == 0 && i == 0)
            ctx->report->rows = rows;
    }
    size_t meta_len = 0;
    const char *meta = embt_file_metadata(file, &meta_len);
    if (meta) {
        rc = embt_writer_set_metadata(ctx->writer, meta, meta_len);
        if (rc == EMBT_EPARSE)
            embt__error_set_section("metadata");
    }
done:
    embt__free(buf);
    embt_file_close(file);
    return rc;
}
