/* import_fasttext_bin.c: fastText .bin models (FastText::saveModel of fastText 0.9.2, format
 * versions 11 and 12) to a vocabulary with counts, the word vectors fastText computes for it, and
 * the raw input and output matrices. The whole model is checked through a bounded cursor before
 * anything is written; every failure records the byte offset in the input.
 *
 * Sections written, in this order:
 *   vocabulary ctx->vocab_name  the words (labels excluded) with their counts; eos_id = "</s>"
 *   table ctx->table_name       tied to it: per word, fastText's getWordVector (the float sum of the
 *                               word's row and its character n-gram rows, in computeSubwords order,
 *                               times (float)(1.0 / count)), so it matches print-word-vectors bit
 *                               for bit
 *   vocabulary "labels"         when the model has labels: the label strings and counts
 *   table "input"               the raw input matrix, (nwords + bucket) x dim, always whole
 *   table "output"              the raw output matrix, always whole; tied to "labels" for supervised
 *                               models (one row per label), stand-alone otherwise (one per word)
 *   table "pruneidx"            pruned models only: i32 (bucket, row) pairs sorted by bucket
 *   metadata source: {...}      the arguments and the subword settings a later reader needs to
 *                               compute vectors of words outside the vocabulary
 * opts->limit keeps the first N words of the dictionary (vocabulary and tied table only); the
 * UTF-8 and duplicate policies apply to words; labels stay strict, since "output" rows follow them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "convert.h"
#include "subword.h"

#define FT_MAGIC 0x2F4F16BAu   /* 793712314, bytes BA 16 4F 2F */
#define FT_VERSION_MIN 11      /* the magic and this layout appeared with version 11 */
#define FT_VERSION_MAX 12      /* fastText 0.9.2 writes 12 */
#define FT_MAXN_MAX 64         /* n-grams per word grow with maxn; real models use 6 or less */
#define FT_ENTRY_BYTES_MIN 11u /* one byte of word, its NUL, an i64 count and an i8 type */
#define BATCH_FLOATS 65536u    /* floats per call to the writer (256 KiB) */

enum { LOSS_HS = 1, LOSS_NS, LOSS_SOFTMAX, LOSS_OVA };
enum { MODEL_CBOW = 1, MODEL_SG, MODEL_SUP };

static const char *const loss_names[] = {NULL, "hs", "ns", "softmax", "ova"};
static const char *const model_names[] = {NULL, "cbow", "skipgram", "supervised"};

/* ---- bounded cursor over the input: the only place that touches file bytes by offset ---- */

typedef struct cursor {
    const uint8_t *data;
    uint64_t pos, end; /* absolute offsets, pos <= end = input size */
    const char *section;
} cursor;

static embt_status truncated(const cursor *c, uint64_t need, const char *what)
{
    return embt__error(EMBT_EPARSE, c->pos, c->section, 0,
                       "%s needs %llu bytes at offset %llu, the file ends at %llu", what,
                       (unsigned long long)need, (unsigned long long)c->pos,
                       (unsigned long long)c->end);
}

static embt_status cur_take(const uint8_t **out, cursor *c, uint64_t n, const char *what)
{
    *out = NULL;
    if (c->end - c->pos < n)
        return truncated(c, n, what);
    *out = c->data + c->pos;
    c->pos += n;
    return EMBT_OK;
}

static embt_status cur_u8(uint8_t *out, cursor *c, const char *what)
{
    const uint8_t *p;
    embt_status rc = cur_take(&p, c, 1, what);
    if (rc == EMBT_OK)
        *out = p[0];
    return rc;
}

static embt_status cur_i32(int32_t *out, cursor *c, const char *what)
{
    const uint8_t *p;
    embt_status rc = cur_take(&p, c, 4, what);
    if (rc == EMBT_OK)
        *out = (int32_t)embt__le32(p);
    return rc;
}

static embt_status cur_i64(int64_t *out, cursor *c, const char *what)
{
    const uint8_t *p;
    embt_status rc = cur_take(&p, c, 8, what);
    if (rc == EMBT_OK)
        *out = (int64_t)embt__le64(p);
    return rc;
}

static embt_status cur_f64(double *out, cursor *c, const char *what)
{
    const uint8_t *p;
    embt_status rc = cur_take(&p, c, 8, what);
    if (rc == EMBT_OK) {
        uint64_t bits = embt__le64(p);
        memcpy(out, &bits, sizeof *out);
    }
    return rc;
}

/* Float k of the (proven in-bounds) matrix that starts at `offset`. */
static inline float matrix_f32(const uint8_t *data, uint64_t offset, uint64_t k)
{
    uint32_t bits = embt__le32(data + offset + 4 * k);
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* ---- the parsed model ---- */

typedef struct ft_word {
    uint64_t offset; /* of the word's first byte */
    uint32_t len;
    uint64_t count;
} ft_word;

typedef struct ft_pair {
    int32_t bucket; /* hashed n-gram bucket, in [0, bucket) */
    int32_t row;    /* its row after nwords in the input matrix, in [0, pruneidx_size) */
    uint32_t index; /* position in the file, for messages */
} ft_pair;

typedef struct ft_matrix {
    uint64_t offset; /* of the first float */
    uint64_t rows;
    uint64_t cols;
} ft_matrix;

typedef struct ft_model {
    int32_t version;
    int32_t dim, ws, epoch, min_count, neg, word_ngrams, loss, model, bucket, minn, maxn,
        lr_update_rate;
    double t;
    int32_t size, nwords, nlabels;
    int64_t ntokens, pruneidx_size; /* -1: not pruned */
    ft_word *words;                 /* (size): words first, then labels */
    ft_pair *prune;                 /* (pruneidx_size) sorted by bucket, or NULL */
    uint64_t prune_offset;
    ft_matrix input, output;
} ft_model;

static void model_free(ft_model *m)
{
    embt__free(m->words);
    embt__free(m->prune);
}

static int pair_cmp(const void *a, const void *b)
{
    const ft_pair *x = a, *y = b;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static embt_status parse_args(ft_model *m, cursor *c)
{
    int32_t *const fields[] = {&m->dim,    &m->ws,          &m->epoch, &m->min_count,
                               &m->neg,    &m->word_ngrams, &m->loss,  &m->model,
                               &m->bucket, &m->minn,        &m->maxn,  &m->lr_update_rate};
    static const char *const names[] = {"dim",    "ws",         "epoch", "minCount",
                                        "neg",    "wordNgrams", "loss",  "model",
                                        "bucket", "minn",       "maxn",  "lrUpdateRate"};
    uint64_t at[12];
    embt_status rc;
    c->section = "fasttext args";
    for (size_t i = 0; i < 12; i++) {
        at[i] = c->pos;
        if ((rc = cur_i32(fields[i], c, names[i])))
            return rc;
    }
    if ((rc = cur_f64(&m->t, c, "t")))
        return rc;
    if (m->dim < 1)
        return embt__error(EMBT_EPARSE, at[0], c->section, 0, "dim %d is not positive", m->dim);
    if (m->loss < LOSS_HS || m->loss > LOSS_OVA)
        return embt__error(EMBT_EPARSE, at[6], c->section, 0, "loss %d outside [1, 4]", m->loss);
    if (m->model < MODEL_CBOW || m->model > MODEL_SUP)
        return embt__error(EMBT_EPARSE, at[7], c->section, 0, "model %d outside [1, 3]", m->model);
    if (m->bucket < 0)
        return embt__error(EMBT_EPARSE, at[8], c->section, 0, "bucket %d is negative", m->bucket);
    if (m->minn < 0)
        return embt__error(EMBT_EPARSE, at[9], c->section, 0, "minn %d is negative", m->minn);
    if (m->maxn < 0)
        return embt__error(EMBT_EPARSE, at[10], c->section, 0, "maxn %d is negative", m->maxn);
    /* fastText's loader ignores the char n-grams of version 11 supervised models */
    if (m->version == 11 && m->model == MODEL_SUP)
        m->maxn = 0;
    if (m->maxn > FT_MAXN_MAX)
        return embt__error(EMBT_ELIMIT, at[10], c->section, 0, "maxn %d exceeds %d", m->maxn,
                           FT_MAXN_MAX);
    if (m->maxn > 0 && m->bucket == 0)
        return embt__error(EMBT_EPARSE, at[8], c->section, 0,
                           "bucket 0 with maxn %d: n-grams would have no rows", m->maxn);
    return EMBT_OK;
}

static embt_status parse_dictionary(ft_model *m, cursor *c)
{
    embt_status rc;
    uint64_t at_size, at_nwords, at_prune;
    c->section = "fasttext dictionary";
    at_size = c->pos;
    if ((rc = cur_i32(&m->size, c, "dictionary size")))
        return rc;
    at_nwords = c->pos;
    if ((rc = cur_i32(&m->nwords, c, "nwords")) || (rc = cur_i32(&m->nlabels, c, "nlabels")) ||
        (rc = cur_i64(&m->ntokens, c, "ntokens")))
        return rc;
    at_prune = c->pos;
    if ((rc = cur_i64(&m->pruneidx_size, c, "pruneidx_size")))
        return rc;
    if (m->size < 0)
        return embt__error(EMBT_EPARSE, at_size, c->section, 0, "dictionary size %d is negative",
                           m->size);
    if (m->pruneidx_size < -1)
        return embt__error(EMBT_EPARSE, at_prune, c->section, 0, "pruneidx_size %lld is below -1",
                           (long long)m->pruneidx_size);
    uint64_t need;
    if (!embt__mul_u64(&need, (uint64_t)m->size, FT_ENTRY_BYTES_MIN) || need > c->end - c->pos)
        return embt__error(EMBT_EPARSE, at_size, c->section, 0,
                           "dictionary size %d needs at least %llu bytes, %llu remain", m->size,
                           (unsigned long long)m->size * FT_ENTRY_BYTES_MIN,
                           (unsigned long long)(c->end - c->pos));
    if (m->nwords < 0 || m->nlabels < 0 || (int64_t)m->nwords + m->nlabels != m->size)
        return embt__error(EMBT_EPARSE, at_nwords, c->section, 0,
                           "nwords %d + nlabels %d differ from the dictionary size %d", m->nwords,
                           m->nlabels, m->size);
    m->words = embt__malloc((size_t)(m->size ? m->size : 1) * sizeof *m->words);
    if (!m->words)
        return embt__error_nomem();
    for (int32_t i = 0; i < m->size; i++) {
        ft_word *w = &m->words[i];
        w->offset = c->pos;
        const uint8_t *nul = memchr(c->data + c->pos, 0, (size_t)(c->end - c->pos));
        if (!nul)
            return embt__error(EMBT_EPARSE, w->offset, c->section, 0,
                               "entry %d has no terminating NUL before the end of the file", i);
        uint64_t len = (uint64_t)(nul - (c->data + c->pos));
        if (len == 0)
            return embt__error(EMBT_EPARSE, w->offset, c->section, 0, "entry %d is empty", i);
        if (len > EMBT__TOKEN_LEN_MAX)
            return embt__error(EMBT_ELIMIT, w->offset, c->section, 0,
                               "entry %d length %llu exceeds %u bytes", i, (unsigned long long)len,
                               EMBT__TOKEN_LEN_MAX);
        w->len = (uint32_t)len;
        c->pos += len + 1;
        uint64_t at_count = c->pos;
        int64_t count;
        if ((rc = cur_i64(&count, c, "entry count")))
            return rc;
        if (count < 0)
            return embt__error(EMBT_EPARSE, at_count, c->section, 0,
                               "entry %d count %lld is negative", i, (long long)count);
        w->count = (uint64_t)count;
        uint64_t at_type = c->pos;
        uint8_t type;
        if ((rc = cur_u8(&type, c, "entry type")))
            return rc;
        /* fastText sorts the dictionary by type: words (0) first, then labels (1) */
        uint8_t want = i < m->nwords ? 0 : 1;
        if (type != want)
            return embt__error(EMBT_EPARSE, at_type, c->section, 0,
                               "entry %d has type %u, expected %u (%d words, then labels)", i, type,
                               want, m->nwords);
    }
    if (m->pruneidx_size > 0) {
        c->section = "fasttext pruneidx";
        m->prune_offset = c->pos;
        if ((uint64_t)m->pruneidx_size > (c->end - c->pos) / 8)
            return embt__error(
                EMBT_EPARSE, at_prune, c->section, 0,
                "pruneidx_size %lld needs %llu bytes, %llu remain", (long long)m->pruneidx_size,
                (unsigned long long)m->pruneidx_size * 8, (unsigned long long)(c->end - c->pos));
        m->prune = embt__malloc((size_t)m->pruneidx_size * sizeof *m->prune);
        if (!m->prune)
            return embt__error_nomem();
        for (int64_t i = 0; i < m->pruneidx_size; i++) {
            ft_pair *p = &m->prune[i];
            uint64_t at = c->pos;
            if ((rc = cur_i32(&p->bucket, c, "pruneidx pair")) ||
                (rc = cur_i32(&p->row, c, "pruneidx pair")))
                return rc;
            p->index = (uint32_t)i;
            if (p->bucket < 0 || p->bucket >= m->bucket)
                return embt__error(EMBT_EPARSE, at, c->section, 0,
                                   "pruneidx pair %lld bucket %d outside [0, %d)", (long long)i,
                                   p->bucket, m->bucket);
            if (p->row < 0 || p->row >= m->pruneidx_size)
                return embt__error(EMBT_EPARSE, at + 4, c->section, 0,
                                   "pruneidx pair %lld row %d outside [0, %lld)", (long long)i,
                                   p->row, (long long)m->pruneidx_size);
        }
        qsort(m->prune, (size_t)m->pruneidx_size, sizeof *m->prune, pair_cmp);
        for (int64_t i = 1; i < m->pruneidx_size; i++)
            if (m->prune[i].bucket == m->prune[i - 1].bucket)
                return embt__error(EMBT_EPARSE, m->prune_offset + 8 * (uint64_t)m->prune[i].index,
                                   c->section, 0, "pruneidx pair %u repeats bucket %d",
                                   m->prune[i].index, m->prune[i].bucket);
    }
    return EMBT_OK;
}

/* The quantization flag and the shape of one dense matrix; leaves the cursor after its floats. */
static embt_status parse_matrix(ft_matrix *mat, cursor *c, const char *section, const char *which,
                                uint64_t want_rows, const char *rows_rule, int32_t dim)
{
    embt_status rc;
    uint8_t quant;
    uint64_t at = c->pos;
    c->section = section;
    if ((rc = cur_u8(&quant, c, "quantization flag")))
        return rc;
    if (quant == 1)
        return embt__error(EMBT_ELIMIT, at, section, 0,
                           ".ftz quantized models are not supported (quantized %s matrix)", which);
    if (quant != 0)
        return embt__error(EMBT_EPARSE, at, section, 0, "quantization flag %u is neither 0 nor 1",
                           quant);
    int64_t rows, cols;
    uint64_t at_rows = c->pos;
    if ((rc = cur_i64(&rows, c, "matrix rows")) || (rc = cur_i64(&cols, c, "matrix columns")))
        return rc;
    if (rows < 0 || (uint64_t)rows != want_rows)
        return embt__error(EMBT_EPARSE, at_rows, section, 0, "%lld rows, expected %s = %llu",
                           (long long)rows, rows_rule, (unsigned long long)want_rows);
    if (cols != dim)
        return embt__error(EMBT_EPARSE, at_rows + 8, section, 0, "%lld columns, expected dim %d",
                           (long long)cols, dim);
    uint64_t bytes;
    if (!embt__mul_u64(&bytes, (uint64_t)rows, (uint64_t)cols * 4) || bytes > c->end - c->pos)
        return embt__error(EMBT_EPARSE, at_rows, section, 0,
                           "%lld x %lld floats need more than the %llu bytes that remain",
                           (long long)rows, (long long)cols, (unsigned long long)(c->end - c->pos));
    mat->offset = c->pos;
    mat->rows = (uint64_t)rows;
    mat->cols = (uint64_t)cols;
    c->pos += bytes;
    return EMBT_OK;
}

static embt_status parse_model(ft_model *m, const uint8_t *data, size_t size)
{
    embt_status rc;
    cursor c = {data, 0, size, "fasttext header"};
    if (size < 4)
        return embt__error(EMBT_EFORMAT, 0, c.section, 0,
                           "%zu bytes are too few for a fastText model", size);
    uint32_t magic = embt__le32(data);
    if (magic != FT_MAGIC)
        return embt__error(EMBT_EFORMAT, 0, c.section, 0,
                           "magic 0x%08x is not fastText's 0x%08x (files from before 2017 have no "
                           "magic and are not supported)",
                           magic, FT_MAGIC);
    c.pos = 4;
    if ((rc = cur_i32(&m->version, &c, "version")))
        return rc;
    if (m->version < FT_VERSION_MIN || m->version > FT_VERSION_MAX)
        return embt__error(EMBT_EVERSION, 4, c.section, 0, "fastText version %d outside [%d, %d]",
                           m->version, FT_VERSION_MIN, FT_VERSION_MAX);
    if ((rc = parse_args(m, &c)) || (rc = parse_dictionary(m, &c)))
        return rc;
    bool pruned = m->pruneidx_size >= 0;
    uint64_t n_ngram_rows = pruned ? (uint64_t)m->pruneidx_size : (uint64_t)m->bucket;
    rc = parse_matrix(&m->input, &c, "fasttext input matrix", "input",
                      (uint64_t)m->nwords + n_ngram_rows,
                      pruned ? "nwords + pruneidx_size" : "nwords + bucket", m->dim);
    if (rc)
        return rc;
    bool sup = m->model == MODEL_SUP;
    rc = parse_matrix(&m->output, &c, "fasttext output matrix", "output",
                      (uint64_t)(sup ? m->nlabels : m->nwords), sup ? "nlabels" : "nwords", m->dim);
    if (rc)
        return rc;
    if (c.pos != c.end)
        return embt__error(EMBT_EPARSE, c.pos, c.section, 0, "%llu bytes follow the output matrix",
                           (unsigned long long)(c.end - c.pos));
    return EMBT_OK;
}

bool embt__sniff_fasttext_bin(const uint8_t *data, size_t size)
{
    /* the magic and a plausible version; the importer names a version it cannot read */
    return size >= 8 && embt__le32(data) == FT_MAGIC && embt__le32(data + 4) <= 0xFFFFu;
}

/* ---- writing ---- */

typedef struct progress {
    const embt__import *ctx;
    uint64_t done, total; /* bytes of matrix rows read (or computed) */
} progress;

static embt_status progress_add(progress *p, uint64_t bytes)
{
    p->done += bytes;
    const embt_convert_options *o = p->ctx->opts;
    if (o->progress && o->progress(p->done, p->total, o->payload) != 0)
        return embt__error(EMBT_ECANCELED, EMBT_NO_OFFSET, NULL, 0, "conversion canceled");
    return EMBT_OK;
}

/* Writes the words vocabulary under the UTF-8 and duplicate policies; source[id] receives the
 * dictionary index whose vector token `id` gets. */
static embt_status write_words(const embt__import *ctx, const ft_model *m, uint32_t *source,
                               uint32_t *n_out)
{
    const embt_convert_options *o = ctx->opts;
    const uint8_t *data = ctx->in->data;
    uint8_t *repaired = NULL;
    uint32_t n = 0, eos = EMBT_NONE_ID;
    uint64_t limit = (uint64_t)m->nwords;
    if (o->limit != 0 && o->limit < limit)
        limit = o->limit;
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    vs.name = ctx->vocab_name;
    vs.flags = EMBT_VOCAB_COUNTS | (o->flags & EMBT_CONVERT_COMPRESS ? EMBT_VOCAB_COMPRESS : 0);
    embt_status rc = embt_writer_vocab_begin(ctx->writer, &vs);
    if (rc)
        goto done;
    repaired = embt__malloc(3 * EMBT__TOKEN_LEN_MAX);
    if (!repaired) {
        rc = embt__error_nomem();
        goto done;
    }
    for (uint32_t i = 0; i < limit; i++) {
        const ft_word *w = &m->words[i];
        const uint8_t *tok = data + w->offset;
        size_t len = w->len, bad;
        if (!embt__utf8_valid(tok, len, &bad)) {
            if (o->on_bad_utf8 == EMBT_BAD_UTF8_SKIP) {
                ctx->report->utf8_skipped++;
                continue;
            }
            if (o->on_bad_utf8 != EMBT_BAD_UTF8_REPLACE) {
                rc = embt__error(EMBT_EPARSE, w->offset + bad, "fasttext dictionary", 0,
                                 "word %u is not valid utf-8 at byte %zu", i, bad);
                goto done;
            }
            len = embt__utf8_repair(repaired, tok, len);
            tok = repaired;
            if (len > EMBT__TOKEN_LEN_MAX) {
                rc = embt__error(EMBT_ELIMIT, w->offset, "fasttext dictionary", 0,
                                 "word %u length %zu after repair exceeds %u bytes", i, len,
                                 EMBT__TOKEN_LEN_MAX);
                goto done;
            }
            ctx->report->utf8_replaced++;
        }
        uint32_t earlier = EMBT_NONE_ID;
        rc = embt_writer_vocab_add(ctx->writer, (const char *)tok, len, w->count, &earlier);
        if (rc == EMBT_EEXISTS && earlier != EMBT_NONE_ID) {
            if (o->on_duplicate == EMBT_DUPLICATE_ERROR) {
                rc = embt__error(EMBT_EPARSE, w->offset, "fasttext dictionary", 0,
                                 "word %u repeats token %u (word %u)", i, earlier, source[earlier]);
                goto done;
            }
            /* _LAST keeps the first position with the later word's vector */
            if (o->on_duplicate == EMBT_DUPLICATE_LAST)
                source[earlier] = i;
            ctx->report->duplicates_dropped++;
            rc = EMBT_OK;
            continue;
        }
        if (rc)
            goto done;
        if (len == 4 && memcmp(tok, "</s>", 4) == 0)
            eos = n;
        source[n++] = i;
    }
    if ((rc = embt_writer_vocab_specials(ctx->writer, EMBT_NONE_ID, EMBT_NONE_ID, EMBT_NONE_ID,
                                         eos)) ||
        (rc = embt_writer_vocab_end(ctx->writer)))
        goto done;
    *n_out = n;
done:
    embt__free(repaired);
    return rc;
}

/* Input row of n-gram bucket h: nwords + h, or through pruneidx (-1: pruned away). */
static int64_t ngram_row(const ft_model *m, uint32_t h)
{
    if (m->pruneidx_size < 0)
        return (int64_t)m->nwords + h;
    size_t lo = 0, hi = (size_t)m->pruneidx_size;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uint32_t)m->prune[mid].bucket < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < (size_t)m->pruneidx_size && (uint32_t)m->prune[lo].bucket == h)
        return (int64_t)m->nwords + m->prune[lo].row;
    return -1;
}

/* Explains a non-finite value of a word vector: a non-finite input value it sums, or an overflow. */
static embt_status nonfinite_word(const ft_model *m, const uint8_t *data, uint32_t word,
                                  const int64_t *rows, size_t n_rows, uint32_t col)
{
    for (size_t r = 0; r < n_rows; r++) {
        uint64_t k = (uint64_t)rows[r] * m->input.cols + col;
        if (!isfinite(matrix_f32(data, m->input.offset, k)))
            return embt__error(EMBT_EPARSE, m->input.offset + 4 * k, "fasttext input matrix", 0,
                               "value at row %lld column %u is not finite (word %u sums it)",
                               (long long)rows[r], col, word);
    }
    return embt__error(EMBT_EPARSE, m->words[word].offset, "fasttext input matrix", 0,
                       "the vector of word %u overflows at column %u", word, col);
}

/* The tied table: each kept word's vector, computed as FastText::getWordVector does. */
static embt_status write_word_vectors(const embt__import *ctx, const ft_model *m,
                                      const uint32_t *source, uint32_t n, embt_dtype dtype,
                                      progress *prog)
{
    const embt_convert_options *o = ctx->opts;
    const uint8_t *data = ctx->in->data;
    size_t dim = (size_t)m->dim;
    float *batch = NULL;
    uint32_t *buckets = NULL;
    int64_t *rows = NULL;
    embt_status rc;
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = ctx->table_name;
    ts.dtype = dtype;
    ts.rows = n;
    ts.cols = dim;
    ts.vocab = ctx->vocab_name;
    ts.flags = o->flags & EMBT_CONVERT_COMPRESS ? EMBT_TABLE_COMPRESS : 0;
    if ((rc = embt_writer_table_begin(ctx->writer, &ts)))
        return rc;
    size_t longest = 0;
    for (uint32_t k = 0; k < n; k++)
        if (m->words[source[k]].len > longest)
            longest = m->words[source[k]].len;
    size_t cap = embt__subword_max(longest, (uint32_t)m->minn, (uint32_t)m->maxn);
    size_t per_batch = BATCH_FLOATS / dim ? BATCH_FLOATS / dim : 1;
    batch = embt__malloc(per_batch * dim * sizeof *batch);
    buckets = embt__malloc((cap ? cap : 1) * sizeof *buckets);
    rows = embt__malloc((cap + 1) * sizeof *rows);
    if (!batch || !buckets || !rows) {
        rc = embt__error_nomem();
        goto done;
    }
    bool allow_nonfinite = o->flags & EMBT_CONVERT_ALLOW_NONFINITE;
    for (uint32_t k0 = 0; k0 < n; k0 += (uint32_t)per_batch) {
        size_t in_batch = n - k0 < per_batch ? n - k0 : per_batch;
        for (size_t b = 0; b < in_batch; b++) {
            uint32_t word = source[k0 + b];
            const ft_word *w = &m->words[word];
            size_t n_buckets =
                embt__subword_buckets(buckets, cap, data + w->offset, w->len, (uint32_t)m->minn,
                                      (uint32_t)m->maxn, (uint32_t)m->bucket);
            size_t n_rows = 0;
            rows[n_rows++] = word;
            for (size_t j = 0; j < n_buckets; j++) {
                int64_t r = ngram_row(m, buckets[j]);
                if (r >= 0)
                    rows[n_rows++] = r;
            }
            /* fastText: vec.zero(); vec.addRow(input, id) per subword id; vec.mul(1.0 / size),
             * where mul takes a float: float sums in this order, then one float product */
            float *acc = batch + b * dim;
            for (size_t j = 0; j < dim; j++)
                acc[j] = 0.0f;
            for (size_t r = 0; r < n_rows; r++) {
                uint64_t base = (uint64_t)rows[r] * dim;
                for (size_t j = 0; j < dim; j++)
                    acc[j] += matrix_f32(data, m->input.offset, base + j);
            }
            float scale = (float)(1.0 / (double)n_rows);
            for (size_t j = 0; j < dim; j++)
                acc[j] *= scale;
            for (size_t j = 0; j < dim; j++) {
                if (isfinite(acc[j]))
                    continue;
                if (!allow_nonfinite) {
                    rc = nonfinite_word(m, data, word, rows, n_rows, (uint32_t)j);
                    goto done;
                }
                ctx->report->nonfinite++;
            }
        }
        if ((rc = embt_writer_table_append_f32(ctx->writer, batch, in_batch)) ||
            (rc = progress_add(prog, (uint64_t)in_batch * dim * 4)))
            goto done;
    }
    rc = embt_writer_table_end(ctx->writer);
done:
    embt__free(rows);
    embt__free(buckets);
    embt__free(batch);
    return rc;
}

/* The labels vocabulary: strict, since the output rows of supervised models follow it. */
static embt_status write_labels(const embt__import *ctx, const ft_model *m)
{
    const uint8_t *data = ctx->in->data;
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    vs.name = "labels";
    vs.flags =
        EMBT_VOCAB_COUNTS | (ctx->opts->flags & EMBT_CONVERT_COMPRESS ? EMBT_VOCAB_COMPRESS : 0);
    embt_status rc = embt_writer_vocab_begin(ctx->writer, &vs);
    if (rc)
        return rc;
    for (int32_t i = m->nwords; i < m->size; i++) {
        const ft_word *w = &m->words[i];
        size_t bad;
        if (!embt__utf8_valid(data + w->offset, w->len, &bad))
            return embt__error(EMBT_EPARSE, w->offset + bad, "fasttext dictionary", 0,
                               "label %d is not valid utf-8 at byte %zu", i - m->nwords, bad);
        uint32_t earlier = EMBT_NONE_ID;
        rc = embt_writer_vocab_add(ctx->writer, (const char *)data + w->offset, w->len, w->count,
                                   &earlier);
        if (rc == EMBT_EEXISTS)
            return embt__error(EMBT_EPARSE, w->offset, "fasttext dictionary", 0,
                               "label %d repeats label %u", i - m->nwords, earlier);
        if (rc)
            return rc;
    }
    return embt_writer_vocab_end(ctx->writer);
}

/* A raw matrix of the model as a table, streamed in batches. */
static embt_status write_matrix(const embt__import *ctx, const ft_matrix *mat, const char *name,
                                const char *section, const char *vocab, embt_dtype dtype,
                                progress *prog)
{
    const uint8_t *data = ctx->in->data;
    size_t dim = (size_t)mat->cols;
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = name;
    ts.dtype = dtype;
    ts.rows = mat->rows;
    ts.cols = dim;
    ts.vocab = vocab;
    ts.flags = ctx->opts->flags & EMBT_CONVERT_COMPRESS ? EMBT_TABLE_COMPRESS : 0;
    embt_status rc = embt_writer_table_begin(ctx->writer, &ts);
    if (rc)
        return rc;
    size_t per_batch = BATCH_FLOATS / dim ? BATCH_FLOATS / dim : 1;
    /* the floats sit at any alignment after the dictionary's strings: copy them out */
    float *batch = embt__malloc(per_batch * dim * sizeof *batch);
    if (!batch)
        return embt__error_nomem();
    bool allow_nonfinite = ctx->opts->flags & EMBT_CONVERT_ALLOW_NONFINITE;
    for (uint64_t r0 = 0; r0 < mat->rows; r0 += per_batch) {
        size_t in_batch = mat->rows - r0 < per_batch ? (size_t)(mat->rows - r0) : per_batch;
        size_t n_values = in_batch * dim;
        uint64_t first = r0 * dim;
        for (size_t k = 0; k < n_values; k++) {
            float v = matrix_f32(data, mat->offset, first + k);
            batch[k] = v;
            if (isfinite(v))
                continue;
            if (!allow_nonfinite) {
                uint64_t at = first + k;
                rc = embt__error(EMBT_EPARSE, mat->offset + 4 * at, section, 0,
                                 "value at row %llu column %llu is not finite",
                                 (unsigned long long)(at / dim), (unsigned long long)(at % dim));
                goto done;
            }
            ctx->report->nonfinite++;
        }
        if ((rc = embt_writer_table_append_f32(ctx->writer, batch, in_batch)) ||
            (rc = progress_add(prog, (uint64_t)n_values * 4)))
            goto done;
    }
    rc = embt_writer_table_end(ctx->writer);
done:
    embt__free(batch);
    return rc;
}

/* Pruned models: the (bucket, row) pairs, so n-grams of unknown words can be remapped later. */
static embt_status write_pruneidx(const embt__import *ctx, const ft_model *m)
{
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = "pruneidx";
    ts.dtype = EMBT_DTYPE_I32;
    ts.rows = (uint64_t)m->pruneidx_size;
    ts.cols = 2;
    embt_status rc = embt_writer_table_begin(ctx->writer, &ts);
    for (int64_t i = 0; rc == EMBT_OK && i < m->pruneidx_size; i++) {
        uint8_t pair[8];
        embt__put32(pair, (uint32_t)m->prune[i].bucket);
        embt__put32(pair + 4, (uint32_t)m->prune[i].row);
        rc = embt_writer_table_append_raw(ctx->writer, pair, 1, NULL);
    }
    return rc ? rc : embt_writer_table_end(ctx->writer);
}

/* Shortest %.*g text of v that reads back to v. */
static void format_f64(char *buf, size_t cap, double v)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static embt_status write_metadata(const embt__import *ctx, const ft_model *m, uint32_t n_words)
{
    char t[32], yaml[1536];
    format_f64(t, sizeof t, m->t);
    int len = snprintf(yaml, sizeof yaml,
                       "source:\n"
                       "  format: fasttext-bin\n"
                       "  version: %d\n"
                       "  model: %s\n"
                       "  loss: %s\n"
                       "  dim: %d\n"
                       "  ws: %d\n"
                       "  epoch: %d\n"
                       "  min_count: %d\n"
                       "  neg: %d\n"
                       "  word_ngrams: %d\n"
                       "  bucket: %d\n"
                       "  minn: %d\n"
                       "  maxn: %d\n"
                       "  lr_update_rate: %d\n"
                       "  t: %s\n"
                       "  nwords: %d\n"
                       "  nlabels: %d\n"
                       "  ntokens: %lld\n"
                       "  pruneidx_size: %lld\n"
                       "  rows: %u\n"
                       "  subwords:\n"
                       "    table: input\n"
                       "    word_rows: %d\n"
                       "    bucket_row: \"word_rows + (hash %% bucket)%s\"\n"
                       "    hash: fnv1a32-signed-char\n"
                       "    bow: \"<\"\n"
                       "    eow: \">\"\n"
                       "    no_subwords: \"</s>\"\n"
                       "    word_vector: \"float sum of the word row and its n-gram rows, times "
                       "(float)(1/count)\"\n",
                       m->version, model_names[m->model], loss_names[m->loss], m->dim, m->ws,
                       m->epoch, m->min_count, m->neg, m->word_ngrams, m->bucket, m->minn, m->maxn,
                       m->lr_update_rate, t, m->nwords, m->nlabels, (long long)m->ntokens,
                       (long long)m->pruneidx_size, n_words, m->nwords,
                       m->pruneidx_size >= 0 ? ", remapped through table pruneidx" : "");
    if (len < 0 || (size_t)len >= sizeof yaml)
        return embt__error(EMBT_ERROR, EMBT_NO_OFFSET, NULL, 0, "metadata longer than %zu bytes",
                           sizeof yaml);
    return embt_writer_set_metadata(ctx->writer, yaml, (size_t)len);
}

embt_status embt__import_fasttext_bin(const embt__import *ctx)
{
    EMBT_CHECK_ARG(ctx != NULL && ctx->in != NULL && ctx->writer != NULL);
    const embt_convert_options *o = ctx->opts;
    ft_model m;
    uint32_t *source = NULL;
    memset(&m, 0, sizeof m);
    embt_status rc = parse_model(&m, ctx->in->data, ctx->in->size);
    if (rc)
        goto done;
    embt_dtype dtype = o->dtype ? o->dtype : EMBT_DTYPE_F32;
    source = embt__malloc((size_t)(m.nwords ? m.nwords : 1) * sizeof *source);
    if (!source) {
        rc = embt__error_nomem();
        goto done;
    }
    uint32_t n_words = 0;
    if ((rc = write_words(ctx, &m, source, &n_words)))
        goto done;
    progress prog = {ctx, 0, 0};
    prog.total = ((uint64_t)n_words + m.input.rows + m.output.rows) * (uint64_t)m.dim * 4;
    if ((rc = write_word_vectors(ctx, &m, source, n_words, dtype, &prog)))
        goto done;
    bool labels = m.nlabels > 0;
    if (labels && (rc = write_labels(ctx, &m)))
        goto done;
    if ((rc = write_matrix(ctx, &m.input, "input", "fasttext input matrix", NULL, dtype, &prog)))
        goto done;
    const char *output_vocab = labels && m.model == MODEL_SUP ? "labels" : NULL;
    if ((rc = write_matrix(ctx, &m.output, "output", "fasttext output matrix", output_vocab, dtype,
                           &prog)))
        goto done;
    if (m.pruneidx_size >= 0 && (rc = write_pruneidx(ctx, &m)))
        goto done;
    if ((rc = write_metadata(ctx, &m, n_words)))
        goto done;
    ctx->report->rows = n_words;
done:
    embt__free(source);
    model_free(&m);
    return rc;
}
