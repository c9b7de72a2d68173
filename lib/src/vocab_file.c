/* vocab_file.c: the --vocab FILE reader for array inputs: one token per line (UTF-8, LF or CRLF,
 * optional final newline, optional byte order mark), added to the writer's open vocabulary under
 * the duplicate and UTF-8 policies of the options, with line and column in every error. At most
 * opts->limit tokens are read when a limit is set. */
#include "vocab_file.h"

#define TOKEN_BYTES_MAX 65535u /* spec/FORMAT.md 10 */

embt_status embt__read_vocab_file_rows(const embt__import *ctx, uint64_t *n_out,
                                       uint32_t **source_out, uint64_t *lines_out)
{
    EMBT_CHECK_ARG(ctx != NULL);
    EMBT_CHECK_ARG(n_out != NULL);
    EMBT_CHECK_ARG(ctx->opts->vocab_path != NULL);
    const embt_convert_options *o = ctx->opts;
    embt_convert_report *rep = ctx->report;
    embt_status rc;
    embt__input in;
    uint8_t *repaired = NULL;
    uint32_t *source = NULL;
    size_t source_cap = 0;
    uint64_t n = 0;
    uint32_t line = 0;

    *n_out = 0;
    if (source_out)
        *source_out = NULL;
    rc = embt__input_load(&in, o->vocab_path);
    if (rc != EMBT_OK) {
        embt__error_set_section("vocab file");
        goto done;
    }
    repaired = embt__malloc((size_t)TOKEN_BYTES_MAX * 3);
    if (!repaired) {
        rc = embt__error_nomem();
        goto done;
    }
    const uint8_t *data = in.data;
    size_t size = in.size;
    size_t pos = 0;
    if (size >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF)
        pos = 3;
    while (pos < size && (o->limit == 0 || n < o->limit)) {
        line++;
        if (line == UINT32_MAX) {
            rc = embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, "vocab file", 0,
                             "vocabulary file has more than %u lines", UINT32_MAX - 1u);
            goto done;
        }
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - data) : size;
        size_t start = pos;
        pos = nl ? end + 1 : size;
        if (end > start && data[end - 1] == '\r')
            end--;
        const uint8_t *tok = data + start;
        size_t len = end - start;
        if (len == 0) {
            rc = embt__error_parse(line, 1, start, "empty token");
            goto done;
        }
        size_t bad_at = 0;
        if (!embt__utf8_valid(tok, len, &bad_at)) {
            if (o->on_bad_utf8 == EMBT_BAD_UTF8_ERROR) {
                rc = embt__error_parse(line, (uint32_t)(bad_at + 1), start + bad_at,
                                       "invalid utf-8 in token at byte %zu", bad_at + 1);
                goto done;
            }
            if (o->on_bad_utf8 == EMBT_BAD_UTF8_SKIP) {
                rep->utf8_skipped++;
                continue;
            }
            if (len > TOKEN_BYTES_MAX) {
                rc = embt__error_parse(line, 1, start, "token length %zu exceeds %u bytes", len,
                                       TOKEN_BYTES_MAX);
                goto done;
            }
            len = embt__utf8_repair(repaired, tok, len);
            tok = repaired;
            rep->utf8_replaced++;
        }
        if (len > TOKEN_BYTES_MAX) {
            rc = embt__error_parse(line, 1, start, "token length %zu exceeds %u bytes", len,
                                   TOKEN_BYTES_MAX);
            goto done;
        }
        uint32_t existing = EMBT_NONE_ID;
        rc = embt_writer_vocab_add(ctx->writer, (const char *)tok, len, 0, &existing);
        if (rc == EMBT_EEXISTS) {
            if (o->on_duplicate == EMBT_DUPLICATE_ERROR) {
                rc = embt__error_parse(line, 1, start, "duplicate token (first as token %u)",
                                       existing);
                goto done;
            }
            rep->duplicates_dropped++;
            if (o->on_duplicate == EMBT_DUPLICATE_LAST && source && existing < n)
                source[existing] = line - 1;
            rc = EMBT_OK;
            continue;
        }
        if (rc != EMBT_OK) {
            if (rc == EMBT_EINVAL) {
                char why[sizeof embt_error_last()->message];
                memcpy(why, embt_error_last()->message, sizeof why);
                rc = embt__error_parse(line, 1, start, "token refused: %s", why);
            }
            goto done;
        }
        if (source_out) {
            if (n == source_cap) {
                size_t cap = source_cap ? source_cap * 2 : 1024;
                uint32_t *grown = embt__realloc(source, cap * sizeof *source);
                if (!grown) {
                    rc = embt__error_nomem();
                    goto done;
                }
                source = grown;
                source_cap = cap;
            }
            source[n] = line - 1;
        }
        n++;
    }
    *n_out = n;
    if (lines_out)
        *lines_out = line;
    if (source_out) {
        *source_out = source;
        source = NULL;
    }
done:
    if (rc == EMBT_EPARSE)
        embt__error_set_section("vocab file");
    embt__free(source);
    embt__free(repaired);
    embt__input_release(&in);
    return rc;
}

embt_status embt__read_vocab_file(const embt__import *ctx, uint64_t *n_out)
{
    return embt__read_vocab_file_rows(ctx, n_out, NULL, NULL);
}
