/* classify_data.c: reading labelled text lines for the classifier: lines checked for UTF-8,
 * fastText's whitespace tokens and FNV-1a hash, and the feature ids of one line (known words, `</s>`, hashed word n-grams). */
#include "classify_data.h"

#include <errno.h>
#include <stdlib.h>

embt_status cls__vec_push(cls_vec *vec, uint32_t x)
{
    if (vec->n == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 64;
        uint32_t *v = embt__realloc(vec->v, cap * sizeof *v);
        if (!v)
            return embt__error_nomem();
        vec->v = v;
        vec->cap = cap;
    }
    vec->v[vec->n++] = x;
    return EMBT_OK;
}

void cls__vec_free(cls_vec *vec)
{
    embt__free(vec->v);
    memset(vec, 0, sizeof *vec);
}

/* ---- lines ---- */

embt_status cls__reader_init(cls_reader *r, FILE *f)
{
    memset(r, 0, sizeof *r);
    r->f = f;
    r->buf = embt__malloc(CLS_MAX_LINE + 1);
    return r->buf ? EMBT_OK : embt__error_nomem();
}

void cls__reader_free(cls_reader *r)
{
    embt__free(r->buf);
    r->buf = NULL;
}

embt_status cls__reader_next(cls_reader *r, const char **line, size_t *len, bool *got)
{
    size_t n = 0;
    int c = EOF;
    *got = false;
    while ((c = getc_unlocked(r->f)) != EOF && c != '\n') {
        if (n == CLS_MAX_LINE) {
            embt_status st = embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                                         "line longer than %zu bytes", CLS_MAX_LINE);
            embt__error_record()->line = (uint32_t)(r->line_no + 1);
            embt__error_record()->column = (uint32_t)CLS_MAX_LINE + 1;
            return st;
        }
        r->buf[n++] = (char)c;
    }
    if (c == EOF) {
        if (ferror(r->f))
            return embt__error_sys(errno, "cannot read the input");
        if (n == 0)
            return EMBT_OK;
    }
    r->line_no++;
    size_t bad = 0;
    if (!embt__utf8_valid((const uint8_t *)r->buf, n, &bad))
        return embt__error_parse((uint32_t)r->line_no, (uint32_t)bad + 1, EMBT_NO_OFFSET,
                                 r->buf[bad] == 0 ? "NUL byte" : "invalid UTF-8");
    r->buf[n] = 0;
    *line = r->buf;
    *len = n;
    *got = true;
    return EMBT_OK;
}

/* ---- tokens ---- */

uint32_t cls__hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint32_t)(int32_t)(int8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' || c == 0;
}

bool cls__next_token(const char *s, size_t n, size_t *pos, size_t *start, size_t *len)
{
    size_t i = *pos;
    while (i < n && is_space(s[i]))
        i++;
    if (i == n) {
        *pos = n;
        return false;
    }
    size_t b = i;
    while (i < n && !is_space(s[i]))
        i++;
    *start = b;
    *len = i - b;
    *pos = i;
    return true;
}

/* ---- features of a line ---- */

embt_status cls__features(cls_featurizer *fz, const char *s, size_t n, cls_vec *feat,
                          cls_vec *labels, uint64_t *ntokens, uint64_t *n_words)
{
    embt_status st = EMBT_OK;
    size_t pos = 0, b = 0, len = 0;
    uint64_t nt = 0, nw = 0;
    feat->n = 0;
    labels->n = 0;
    fz->hashes.n = 0;
    for (int eos = 0; eos < 2; eos++) {
        while (eos ? (b = 0, len = 0, true) : cls__next_token(s, n, &pos, &b, &len)) {
            const char *tok = eos ? CLS_EOS : s + b;
            size_t tl = eos ? strlen(CLS_EOS) : len;
            nt++;
            if (!eos && tl >= fz->prefix_len && memcmp(tok, fz->prefix, fz->prefix_len) == 0) {
                uint32_t id = fz->label(fz->label_ctx, tok, tl);
                if (id != EMBT_NONE_ID && (st = cls__vec_push(labels, id)))
                    return st;
                continue;
            }
            nw += !eos;
            uint32_t id = fz->word(fz->word_ctx, tok, tl);
            if (id != EMBT_NONE_ID && (st = cls__vec_push(feat, id)))
                return st;
            if ((st = cls__vec_push(&fz->hashes, cls__hash(tok, tl))))
                return st;
            if (eos)
                break;
        }
    }
    /* Dictionary::addWordNgrams: the hashes are int32 in fastText, widened with sign to uint64 */
    if (fz->word_ngrams > 1 && fz->bucket > 0) {
        const uint32_t *hs = fz->hashes.v;
        size_t nh = fz->hashes.n;
        for (size_t i = 0; i < nh; i++) {
            uint64_t h = (uint64_t)(int64_t)(int32_t)hs[i];
            for (size_t j = i + 1; j < nh && j < i + fz->word_ngrams; j++) {
                h = h * 116049371u + (uint64_t)(int64_t)(int32_t)hs[j];
                if ((st = cls__vec_push(feat, fz->nwords + (uint32_t)(h % fz->bucket))))
                    return st;
            }
        }
    }
    *ntokens = nt;
    if (n_words)
        *n_words = nw;
    return EMBT_OK;
}
