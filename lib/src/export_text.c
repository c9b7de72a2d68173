/* export_text.c: writes a table tied to a vocabulary as word2vec text (a "rows dim" header line)
 * or GloVe text (no header): "token v1 ... vD\n" per row, each value the shortest decimal that
 * reads back to the same float32 (embt_format_f32), so text -> embt -> text -> embt is lossless.
 * Rows are formatted in chunks split in two halves, one per core, and written in order. Tokens
 * holding a blank or a line break cannot be read back from text: EMBT_EINVAL naming the token. */
#include <pthread.h>
#include <stdio.h>

#include "convert.h"

#define VALUE_BYTES_MAX 17u    /* a separator and at most 16 bytes of embt_format_f32 */
#define HALF_BYTES (4u << 20)  /* text formatted per half chunk, roughly */
#define PARALLEL_ROWS_MIN 256u /* a chunk with fewer rows is formatted by the caller alone */

typedef struct half_job {
    const embt_table *table;
    const embt_vocab *vocab;
    uint64_t first, n; /* rows [first, first + n) */
    uint32_t dim;
    char *buf; /* (cap) the text of the rows */
    size_t cap, used;
    float *scratch; /* (dim) a row converted to f32 when the table is not f32 */
    embt_status rc;
    embt_error err;  /* the worker's error record (records are per thread) */
    uint64_t bad_id; /* the first token that cannot be written, when rc is EMBT_EINVAL */
} half_job;

static bool token_is_writable(const char *t, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = t[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            return false;
    }
    return true;
}

static void *format_half(void *arg)
{
    half_job *j = arg;
    j->used = 0;
    j->rc = EMBT_OK;
    for (uint64_t r = j->first; r < j->first + j->n; r++) {
        size_t len;
        const char *tok = embt_vocab_token(j->vocab, (uint32_t)r, &len);
        if (!tok) {
            j->rc = embt_error_last()->code;
            j->err = *embt_error_last();
            return NULL;
        }
        if (!token_is_writable(tok, len)) {
            j->rc = EMBT_EINVAL;
            j->bad_id = r;
            return NULL;
        }
        size_t need = j->used + len + (size_t)j->dim * VALUE_BYTES_MAX + 2;
        if (need > j->cap) {
            size_t cap = need > 2 * j->cap ? need : 2 * j->cap;
            char *grown = embt__realloc(j->buf, cap);
            if (!grown) {
                j->rc = EMBT_ENOMEM;
                return NULL;
            }
            j->buf = grown;
            j->cap = cap;
        }
        const float *v =
            embt_table_dtype(j->table) == EMBT_DTYPE_F32
                ? embt_table_row_f32(j->table, r)
                : (embt_table_read_row_f32(j->scratch, j->table, r) == EMBT_OK ? j->scratch : NULL);
        if (!v) {
            j->rc = embt_error_last()->code;
            j->err = *embt_error_last();
            return NULL;
        }
        char *p = j->buf + j->used;
        memcpy(p, tok, len);
        p += len;
        for (uint32_t c = 0; c < j->dim; c++) {
            *p++ = ' ';
            p += embt_format_f32(p, v[c]);
        }
        *p++ = '\n';
        j->used = (size_t)(p - j->buf);
    }
    return NULL;
}

/* Turns a failed job into the calling thread's error record. */
static embt_status job_error(const half_job *j)
{
    if (j->rc == EMBT_ENOMEM)
        return embt__error_nomem();
    if (j->rc == EMBT_EINVAL && j->bad_id != UINT64_MAX) {
        size_t len;
        const char *tok = embt_vocab_token(j->vocab, (uint32_t)j->bad_id, &len);
        return embt__error(
            EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
            "token %llu '%.*s' holds a blank or line break: text cannot represent it",
            (unsigned long long)j->bad_id, (int)(len < 64 ? len : 64), tok);
    }
    *embt__error_record() = j->err;
    return j->rc;
}

embt_status embt__export_text(const embt_file *src, const embt_table *table, embt__output *out,
                              embt_format format, const embt_convert_options *opts)
{
    EMBT_CHECK_ARG(table != NULL && out != NULL && opts != NULL);
    (void)src;
    embt_status rc = EMBT_OK;
    half_job jobs[2];
    memset(jobs, 0, sizeof jobs);
    const embt_vocab *vocab = embt_table_vocab(table);
    if (format != EMBT_FORMAT_WORD2VEC && format != EMBT_FORMAT_GLOVE)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "text export writes word2vec or glove, not format %d", (int)format);
    if (!vocab)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "table '%s' has no vocabulary: text formats need a token per row",
                           embt_table_name(table));
    uint64_t rows = embt_table_rows(table);
    uint64_t cols = embt_table_cols(table);
    if (opts->limit && opts->limit < rows)
        rows = opts->limit;
    if (format == EMBT_FORMAT_GLOVE) {
        /* GloVe has no header line, so what a reader cannot tell from "no rows" or from a byte order
         * mark at the start of the file must be refused here, or the round trip loses it */
        size_t len = 0;
        const char *first = rows ? embt_vocab_token(vocab, 0, &len) : NULL;
        if (rows == 0)
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                               "glove text cannot hold a table with no rows (it has no header)");
        if (first && len >= 3 && memcmp(first, "\xEF\xBB\xBF", 3) == 0)
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                               "token 0 starts with U+FEFF, which a glove reader takes for a byte "
                               "order mark: use --to word2vec");
    }

    if (format == EMBT_FORMAT_WORD2VEC) {
        char header[48];
        int n = snprintf(header, sizeof header, "%llu %llu\n", (unsigned long long)rows,
                         (unsigned long long)cols);
        rc = embt__output_write(out, header, (size_t)n);
        if (rc != EMBT_OK)
            goto done;
    }
    for (int i = 0; i < 2; i++) {
        jobs[i].table = table;
        jobs[i].vocab = vocab;
        jobs[i].dim = (uint32_t)cols;
        jobs[i].bad_id = UINT64_MAX;
        if (embt_table_dtype(table) != EMBT_DTYPE_F32) {
            jobs[i].scratch = embt__malloc((size_t)cols * sizeof(float) + 1);
            if (!jobs[i].scratch) {
                rc = embt__error_nomem();
                goto done;
            }
        }
    }
    uint64_t half_rows = HALF_BYTES / (cols * 10 + 16);
    if (half_rows == 0)
        half_rows = 1;
    uint64_t row_bytes = cols * embt_dtype_size(embt_table_dtype(table));
    for (uint64_t r = 0; r < rows;) {
        uint64_t n = rows - r < 2 * half_rows ? rows - r : 2 * half_rows;
        bool parallel = n >= PARALLEL_ROWS_MIN;
        jobs[0].first = r;
        jobs[0].n = parallel ? n / 2 : n;
        jobs[1].first = r + jobs[0].n;
        jobs[1].n = n - jobs[0].n;
        pthread_t th;
        bool threaded = parallel && pthread_create(&th, NULL, format_half, &jobs[1]) == 0;
        format_half(&jobs[0]);
        if (threaded)
            pthread_join(th, NULL);
        else if (jobs[1].n)
            format_half(&jobs[1]);
        for (int i = 0; i < 2; i++) {
            if (jobs[i].n == 0)
                continue;
            if (jobs[i].rc != EMBT_OK) {
                rc = job_error(&jobs[i]);
                goto done;
            }
            rc = embt__output_write(out, jobs[i].buf, jobs[i].used);
            if (rc != EMBT_OK)
                goto done;
        }
        r += n;
        if (opts->progress && opts->progress(r * row_bytes, rows * row_bytes, opts->payload)) {
            rc = embt__error(EMBT_ECANCELED, EMBT_NO_OFFSET, NULL, 0, "canceled by the caller");
            goto done;
        }
    }

done:
    for (int i = 0; i < 2; i++) {
        embt__free(jobs[i].buf);
        embt__free(jobs[i].scratch);
    }
    return rc;
}
