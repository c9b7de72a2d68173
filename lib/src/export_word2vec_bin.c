/* export_word2vec_bin.c: writes a table tied to a vocabulary as word2vec binary, as word2vec.c does:
 * the header "rows dim\n", then per row the token, a space, dim little-endian float32 and "\n" (a
 * table of another dtype is converted to float32). A token with a space, or starting with a line
 * feed, would not read back: EMBT_EINVAL naming the token. */
#include <stdio.h>

#include "convert.h"

#define PROGRESS_ROWS 65536u /* rows between progress calls */

embt_status embt__export_word2vec_bin(const embt_file *src, const embt_table *table,
                                      embt__output *out, const embt_convert_options *opts)
{
    EMBT_CHECK_ARG(table != NULL && out != NULL && opts != NULL);
    (void)src;
    embt_status rc = EMBT_OK;
    float *row = NULL; /* (cols) a row converted to f32 when the table is not f32 */
    const embt_vocab *vocab = embt_table_vocab(table);
    if (!vocab)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "table '%s' has no vocabulary: word2vec-bin needs a token per row",
                           embt_table_name(table));
    uint64_t rows = embt_table_rows(table);
    uint64_t cols = embt_table_cols(table);
    if (opts->limit && opts->limit < rows)
        rows = opts->limit;
    bool f32 = embt_table_dtype(table) == EMBT_DTYPE_F32;
    uint64_t row_bytes = cols * embt_dtype_size(embt_table_dtype(table)); /* progress: bytes */
    if (!f32) {
        row = embt__malloc((size_t)cols * sizeof(float) + 1);
        if (!row)
            return embt__error_nomem();
    }

    char header[48];
    int n = snprintf(header, sizeof header, "%llu %llu\n", (unsigned long long)rows,
                     (unsigned long long)cols);
    rc = embt__output_write(out, header, (size_t)n);
    if (rc != EMBT_OK)
        goto done;
    for (uint64_t r = 0; r < rows; r++) {
        size_t len;
        const char *tok = embt_vocab_token(vocab, (uint32_t)r, &len);
        if (!tok) {
            rc = embt_error_last()->code;
            goto done;
        }
        if (memchr(tok, ' ', len) || tok[0] == '\n') {
            rc = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                             "token %llu '%.*s' %s: word2vec-bin cannot represent it",
                             (unsigned long long)r, (int)(len < 64 ? len : 64), tok,
                             tok[0] == '\n' ? "starts with a line feed" : "holds a space");
            goto done;
        }
        const float *v = f32 ? embt_table_row_f32(table, r) : row;
        if (!f32)
            rc = embt_table_read_row_f32(row, table, r);
        if (!v || rc != EMBT_OK) {
            rc = embt_error_last()->code;
            goto done;
        }
        if ((rc = embt__output_write(out, tok, len)) != EMBT_OK ||
            (rc = embt__output_write(out, " ", 1)) != EMBT_OK ||
            (rc = embt__output_write(out, v, (size_t)cols * sizeof(float))) != EMBT_OK ||
            (rc = embt__output_write(out, "\n", 1)) != EMBT_OK)
            goto done;
        if ((r + 1) % PROGRESS_ROWS == 0 && opts->progress &&
            opts->progress((r + 1) * row_bytes, rows * row_bytes, opts->payload)) {
            rc = embt__error(EMBT_ECANCELED, EMBT_NO_OFFSET, NULL, 0, "canceled by the caller");
            goto done;
        }
    }

done:
    embt__free(row);
    return rc;
}
