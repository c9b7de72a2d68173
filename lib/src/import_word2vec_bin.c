/* import_word2vec_bin.c: the word2vec binary importer and its content sniffer. Input: a header line
 * "rows dim", then per row the token bytes, a space, dim little-endian float32 and an optional
 * newline (gensim writes none; word2vec.c writes one; as gensim, newlines before a token are
 * dropped). Two passes over the input in memory: the first checks every row strictly (byte offsets
 * in errors) and writes the vocabulary with the duplicate and UTF-8 policies applied; the second
 * streams the kept rows into the tied table, bit for bit. */
#include <math.h>
#include <stdio.h>

#include "convert.h"

#define TOKEN_BYTES_MAX 65535u            /* spec/FORMAT.md 10 */
#define HEADER_NUMBER_DIGITS_MAX 15       /* a count of at most 10^15 */
#define DIM_MAX ((UINT32_C(1) << 31) - 1) /* spec/FORMAT.md 10: cols */
#define BATCH_BYTES (1u << 20)            /* floats handed to the writer per call */
#define PROGRESS_BYTES (16u << 20)        /* input bytes between progress calls */
#define SNIFF_VALUE_BYTES 64u             /* value bytes the sniffer looks at */

/* Parses a decimal number of 1 to HEADER_NUMBER_DIGITS_MAX digits at data[*pos]. */
static bool parse_count(uint64_t *out, const uint8_t *data, size_t size, size_t *pos)
{
    size_t p = *pos;
    uint64_t v = 0;
    while (p < size && data[p] >= '0' && data[p] <= '9' && p - *pos < HEADER_NUMBER_DIGITS_MAX)
        v = v * 10 + (uint64_t)(data[p++] - '0');
    if (p == *pos || (p < size && data[p] >= '0' && data[p] <= '9'))
        return false;
    *out = v;
    *pos = p;
    return true;
}

/* Header "rows dim" (blanks between, blanks and a CR allowed before the LF). On success *body is
 * the offset of the first row. */
static embt_status parse_header(uint64_t *rows, uint32_t *dim, size_t *body, const uint8_t *data,
                                size_t size)
{
    size_t p = 0;
    uint64_t d;
    if (!parse_count(rows, data, size, &p))
        return embt__error(EMBT_EPARSE, p, NULL, 0,
                           "header: expected a row count of 1 to %d digits",
                           HEADER_NUMBER_DIGITS_MAX);
    if (p >= size || (data[p] != ' ' && data[p] != '\t'))
        return embt__error(EMBT_EPARSE, p, NULL, 0, "header: expected a blank after the row count");
    while (p < size && (data[p] == ' ' || data[p] == '\t'))
        p++;
    if (!parse_count(&d, data, size, &p))
        return embt__error(EMBT_EPARSE, p, NULL, 0,
                           "header: expected a dimension of 1 to %d digits",
                           HEADER_NUMBER_DIGITS_MAX);
    while (p < size && (data[p] == ' ' || data[p] == '\t'))
        p++;
    if (p < size && data[p] == '\r')
        p++;
    if (p >= size || data[p] != '\n')
        return embt__error(EMBT_EPARSE, p, NULL, 0, "header: expected the end of the line");
    if (d < 1 || d > DIM_MAX)
        return embt__error(EMBT_EPARSE, 0, NULL, 0, "header: dimension %llu outside [1, %lu]",
                           (unsigned long long)d, (unsigned long)DIM_MAX);
    *dim = (uint32_t)d;
    *body = p + 1;
    return EMBT_OK;
}

bool embt__sniff_word2vec_bin(const uint8_t *data, size_t size)
{
    uint64_t rows;
    uint32_t dim;
    size_t p;
    embt_error saved = *embt__error_record(); /* sniffing leaves the error record alone */
    embt_status rc = parse_header(&rows, &dim, &p, data, size);
    *embt__error_record() = saved;
    if (rc != EMBT_OK)
        return false;
    if (rows == 0) /* a header and nothing else: binary only when nothing follows */
        return p == size;
    while (p < size && data[p] == '\n')
        p++;
    const uint8_t *sp =
        memchr(data + p, ' ', size - p < TOKEN_BYTES_MAX ? size - p : TOKEN_BYTES_MAX);
    if (!sp || sp == data + p)
        return false;
    /* text (word2vec, .vec, even with a token holding a space) continues with printable UTF-8;
     * float32 bytes almost never are: a control byte or a broken UTF-8 sequence means binary */
    size_t v = (size_t)(sp - data) + 1;
    size_t n = (uint64_t)dim * 4 < SNIFF_VALUE_BYTES ? (size_t)dim * 4 : SNIFF_VALUE_BYTES;
    if (size - v < n)
        n = size - v;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = data[v + i];
        if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7F)
            return true;
    }
    size_t bad;
    return !embt__utf8_valid(data + v, n, &bad) && bad + 4 <= n; /* not a sequence cut short */
}

static bool dtype_is_float(embt_dtype dtype)
{
    return dtype == EMBT_DTYPE_F32 || dtype == EMBT_DTYPE_F16 || dtype == EMBT_DTYPE_BF16 ||
           dtype == EMBT_DTYPE_F64;
}

static embt_status report_progress(const embt_convert_options *o, uint64_t done, uint64_t total)
{
    if (o->progress && o->progress(done, total, o->payload) != 0)
        return embt__error(EMBT_ECANCELED, EMBT_NO_OFFSET, NULL, 0, "canceled by the caller");
    return EMBT_OK;
}

embt_status embt__import_word2vec_bin(const embt__import *ctx)
{
    EMBT_CHECK_ARG(ctx != NULL && ctx->in != NULL && ctx->writer != NULL);
    const embt_convert_options *o = ctx->opts;
    embt_convert_report *rep = ctx->report;
    const uint8_t *data = ctx->in->data;
    size_t size = ctx->in->size;
    embt_writer *w = ctx->writer;
    embt_dtype dtype = o->dtype ? o->dtype : EMBT_DTYPE_F32;
    bool allow_nonfinite = (o->flags & EMBT_CONVERT_ALLOW_NONFINITE) && dtype_is_float(dtype);
    bool compress = (o->flags & EMBT_CONVERT_COMPRESS) != 0;
    embt_status rc;
    uint64_t *src = NULL;  /* (kept rows): input offset of each kept row's values */
    uint8_t *fixed = NULL; /* (3 * TOKEN_BYTES_MAX): a repaired token */
    float *batch = NULL;   /* (batch_rows, dim) */
    uint64_t kept = 0, declared;
    uint32_t dim;
    size_t p;

    rc = parse_header(&declared, &dim, &p, data, size);
    if (rc != EMBT_OK)
        goto done;
    uint64_t wanted = o->limit && o->limit < declared ? o->limit : declared;
    size_t row_bytes = (size_t)dim * 4;
    /* every row takes at least a token byte, a space and its values: bound the allocation by the
     * input (STYLE.md 2.6) */
    uint64_t fit = (size - p) / (row_bytes + 2) + 1;
    uint64_t cap = wanted < fit ? wanted : fit;
    src = embt__malloc((size_t)(cap ? cap : 1) * sizeof *src);
    fixed = embt__malloc(3 * (size_t)TOKEN_BYTES_MAX);
    if (!src || !fixed) {
        rc = embt__error_nomem();
        goto done;
    }

    /* ---- pass 1: check every row, write the vocabulary ---- */
    embt_vocab_spec vspec = EMBT_VOCAB_SPEC_INIT;
    vspec.name = ctx->vocab_name;
    vspec.flags = compress ? EMBT_VOCAB_COMPRESS : 0;
    rc = embt_writer_vocab_begin(w, &vspec);
    if (rc != EMBT_OK)
        goto done;
    uint64_t next_progress = PROGRESS_BYTES;
    for (uint64_t row = 1; row <= wanted; row++) {
        while (p < size && data[p] == '\n')
            p++;
        if (p == size) {
            rc = embt__error(EMBT_EPARSE, p, NULL, 0,
                             "header declares %llu rows, the input ends after %llu",
                             (unsigned long long)declared, (unsigned long long)(row - 1));
            goto done;
        }
        size_t tok = p, span = size - p;
        if (span > (size_t)TOKEN_BYTES_MAX + 1)
            span = (size_t)TOKEN_BYTES_MAX + 1;
        const uint8_t *sp = memchr(data + tok, ' ', span);
        if (!sp) {
            if (tok + span == size)
                rc = embt__error(EMBT_EPARSE, tok, NULL, 0,
                                 "row %llu: no space after the token before the end of the input",
                                 (unsigned long long)row);
            else
                rc = embt__error(EMBT_EPARSE, tok, NULL, 0,
                                 "row %llu: no space within %u bytes: token longer than %u bytes",
                                 (unsigned long long)row, TOKEN_BYTES_MAX + 1, TOKEN_BYTES_MAX);
            goto done;
        }
        size_t len = (size_t)(sp - data) - tok;
        size_t values = tok + len + 1;
        if (len == 0) {
            rc = embt__error(EMBT_EPARSE, tok, NULL, 0, "row %llu: empty token",
                             (unsigned long long)row);
            goto done;
        }
        if (size - values < row_bytes) {
            rc = embt__error(EMBT_EPARSE, values, NULL, 0,
                             "row %llu: truncated: %u values need %zu bytes, %zu remain",
                             (unsigned long long)row, dim, row_bytes, size - values);
            goto done;
        }
        for (size_t i = 0; i < row_bytes; i += 4) {
            if ((embt__le32(data + values + i) & 0x7F800000u) == 0x7F800000u && !allow_nonfinite) {
                bool nan = (embt__le32(data + values + i) & 0x7FFFFFu) != 0;
                rc = embt__error(EMBT_EPARSE, values + i, NULL, 0, "row %llu value %zu is %s%s",
                                 (unsigned long long)row, i / 4 + 1, nan ? "nan" : "infinite",
                                 dtype_is_float(dtype) ? "" : " (integer output dtype)");
                goto done;
            }
        }
        p = values + row_bytes;

        const uint8_t *t = data + tok;
        size_t bad_at;
        if (!embt__utf8_valid(t, len, &bad_at)) {
            if (o->on_bad_utf8 == EMBT_BAD_UTF8_SKIP) {
                rep->utf8_skipped++;
                continue;
            }
            if (o->on_bad_utf8 != EMBT_BAD_UTF8_REPLACE) {
                rc = embt__error(EMBT_EPARSE, tok + bad_at, NULL, 0,
                                 "row %llu: token is not valid UTF-8 (byte 0x%02x at token byte "
                                 "%zu)",
                                 (unsigned long long)row, t[bad_at], bad_at);
                goto done;
            }
            len = embt__utf8_repair(fixed, t, len);
            t = fixed;
            rep->utf8_replaced++;
            if (len > TOKEN_BYTES_MAX) {
                rc = embt__error(EMBT_EPARSE, tok, NULL, 0,
                                 "row %llu: repaired token of %zu bytes exceeds %u",
                                 (unsigned long long)row, len, TOKEN_BYTES_MAX);
                goto done;
            }
        }
        uint32_t first;
        rc = embt_writer_vocab_add(w, (const char *)t, len, 0, &first);
        if (rc == EMBT_EEXISTS) {
            if (o->on_duplicate == EMBT_DUPLICATE_FIRST || o->on_duplicate == EMBT_DUPLICATE_LAST) {
                if (o->on_duplicate == EMBT_DUPLICATE_LAST)
                    src[first] = tok;
                rep->duplicates_dropped++;
                rc = EMBT_OK;
                continue;
            }
            rc = embt__error(EMBT_EPARSE, tok, NULL, 0,
                             "row %llu: duplicate token '%.*s' (first at offset %llu)",
                             (unsigned long long)row, (int)(len < 64 ? len : 64), (const char *)t,
                             (unsigned long long)src[first]);
            goto done;
        }
        if (rc != EMBT_OK)
            goto done;
        src[kept++] = tok;
        if (p >= next_progress) {
            rc = report_progress(o, p / 2, size);
            if (rc != EMBT_OK)
                goto done;
            next_progress = p + PROGRESS_BYTES;
        }
    }
    if (!o->limit || o->limit >= declared) {
        /* the optional newline after the last row, then nothing (gensim ignores more; we refuse) */
        while (p < size && data[p] == '\n')
            p++;
        if (p < size) {
            rc = embt__error(EMBT_EPARSE, p, NULL, 0,
                             "%zu bytes of data after the %llu rows the header declares", size - p,
                             (unsigned long long)declared);
            goto done;
        }
    }
    rc = embt_writer_vocab_end(w);
    if (rc != EMBT_OK)
        goto done;

    /* ---- pass 2: the table, in vocabulary order ---- */
    embt_table_spec tspec = EMBT_TABLE_SPEC_INIT;
    tspec.name = ctx->table_name;
    tspec.dtype = dtype;
    tspec.rows = kept;
    tspec.cols = dim;
    tspec.vocab = ctx->vocab_name;
    tspec.flags = compress ? EMBT_TABLE_COMPRESS : 0;
    rc = embt_writer_table_begin(w, &tspec);
    if (rc != EMBT_OK)
        goto done;
    size_t batch_rows = embt__batch_rows(kept, row_bytes, BATCH_BYTES);
    batch = kept ? embt__malloc(batch_rows * row_bytes) : NULL;
    if (kept && !batch) {
        rc = embt__error_nomem();
        goto done;
    }
    /* without "keep last" the sources increase, so the pages behind can be given back */
    bool sequential = o->on_duplicate != EMBT_DUPLICATE_LAST;
    size_t dropped = 0;
    for (uint64_t r = 0; r < kept;) {
        size_t n = kept - r < batch_rows ? (size_t)(kept - r) : batch_rows;
        for (size_t i = 0; i < n; i++) {
            /* pass 1 proved the space and the values are there */
            const uint8_t *sp = memchr(data + src[r + i], ' ', size - (size_t)src[r + i]);
            memcpy(batch + i * dim, sp + 1, row_bytes); /* little-endian host */
        }
        if (allow_nonfinite) {
            for (size_t i = 0; i < n * dim; i++)
                rep->nonfinite += !isfinite(batch[i]);
        }
        rc = embt_writer_table_append_f32(w, batch, n);
        if (rc != EMBT_OK)
            goto done;
        r += n;
        size_t at = (size_t)src[r - 1];
        if (sequential && at - dropped >= PROGRESS_BYTES) {
            embt__input_drop(ctx->in, dropped, at);
            dropped = at;
        }
        rc = report_progress(o, size / 2 + at / 2, size);
        if (rc != EMBT_OK)
            goto done;
    }
    rc = embt_writer_table_end(w);
    if (rc != EMBT_OK)
        goto done;

    char meta[128];
    int meta_len =
        snprintf(meta, sizeof meta, "source: {format: word2vec-bin, rows: %llu, dim: %u}\n",
                 (unsigned long long)kept, dim);
    rc = embt_writer_set_metadata(w, meta, (size_t)meta_len);
    if (rc != EMBT_OK)
        goto done;
    rep->rows = kept;

done:
    embt__free(src);
    embt__free(fixed);
    embt__free(batch);
    return rc;
}
