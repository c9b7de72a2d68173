/* export_safetensors.c: .embt -> safetensors, laid out as the reference writer (safetensors
 * tensor.rs prepare()) lays it out: tensors ordered by dtype descending in the reference's Dtype
 * order (I64, F64, F32, I32, BF16, F16, I8, U8 for ours), then by name bytewise; compact JSON with
 * keys in the order __metadata__, then per tensor "dtype", "shape", "data_offsets"; strings escaped
 * as serde_json does; the header padded with spaces to a multiple of 8; data little-endian.
 *
 * What goes where (the format holds tensors and str -> str metadata only):
 * - every table becomes a tensor of its name: rank 1 -> [rows], rank 2 -> [rows, cols];
 * - an i8 table whose row scales are all exactly 1.0 stays I8 (exact); any other i8 table is
 *   written as F32 scale * q (dequantised, as embt_table_read_row_f32 computes it);
 * - opts->dtype (f32, f16, bf16, f64) converts float and i8 tables with correct rounding; integer
 *   tables keep theirs; i8 is EMBT_EINVAL (safetensors has no row scales);
 * - __metadata__ holds, sorted by key: "embt.metadata" (the METADATA YAML text, when not empty),
 *   "embt.table" and "embt.vocab" (the tied table's name and its vocabulary, tokens joined by '\n';
 *   a token containing '\n' is EMBT_EINVAL), and "format": "embt". import_safetensors.c reads
 *   embt.vocab back as the vocabulary;
 * - opts->limit keeps the first rows of the tied table (and its tokens).
 * The tied table is opts->table_name, else "embedding" if tied, else the first tied table. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "convert.h"

#define ST_HEADER_MAX UINT64_C(100000000) /* what the reference reader accepts */
#define ST_CHUNK_BYTES (1u << 20)

typedef struct ex_table {
    const embt_table *t;
    const char *name;
    embt_dtype from, to;
    uint64_t rows, cols;
    unsigned rank;
    uint64_t bytes; /* rows * cols * size of `to` */
} ex_table;

/* Position in the reference's Dtype enum, whose order the writer sorts by (descending). */
static int st_order(embt_dtype d)
{
    switch (d) {
    case EMBT_DTYPE_U8: return 4;
    case EMBT_DTYPE_I8: return 5;
    case EMBT_DTYPE_F16: return 11;
    case EMBT_DTYPE_BF16: return 12;
    case EMBT_DTYPE_I32: return 13;
    case EMBT_DTYPE_F32: return 15;
    case EMBT_DTYPE_F64: return 17;
    case EMBT_DTYPE_I64: return 18;
    }
    return 0;
}

static const char *st_name(embt_dtype d)
{
    switch (d) {
    case EMBT_DTYPE_U8: return "U8";
    case EMBT_DTYPE_I8: return "I8";
    case EMBT_DTYPE_F16: return "F16";
    case EMBT_DTYPE_BF16: return "BF16";
    case EMBT_DTYPE_I32: return "I32";
    case EMBT_DTYPE_F32: return "F32";
    case EMBT_DTYPE_F64: return "F64";
    case EMBT_DTYPE_I64: return "I64";
    }
    return "?";
}

static int ex_cmp(const void *a, const void *b)
{
    const ex_table *x = a, *y = b;
    int ox = st_order(x->to), oy = st_order(y->to);
    if (ox != oy)
        return oy - ox;
    return strcmp(x->name, y->name); /* bytewise, as Rust's String order */
}

/* ---- the header text ---------------------------------------------------------------------- */

typedef struct sbuf {
    char *data;
    size_t len, cap;
    bool nomem;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->nomem)
        return;
    if (b->len + n + 8 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 8)
            cap *= 2;
        char *p = embt__realloc(b->data, cap);
        if (!p) {
            b->nomem = true;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void puts_(sbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_u64(sbuf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
    put(b, tmp, (size_t)n);
}

/* A JSON string as serde_json writes it: '"' and '\\' escaped, \b \t \n \f \r short, other
 * control bytes as \u00xx (lowercase hex), everything else (DEL, UTF-8) as is. */
static void put_json_string(sbuf *b, const char *s, size_t n)
{
    put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char tmp[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\t': esc = "\\t"; break;
        case '\n': esc = "\\n"; break;
        case '\f': esc = "\\f"; break;
        case '\r': esc = "\\r"; break;
        default:
            if (c < 0x20) {
                snprintf(tmp, sizeof tmp, "\\u%04x", c);
                esc = tmp;
            }
        }
        if (!esc)
            continue;
        put(b, s + run, i - run);
        puts_(b, esc);
        run = i + 1;
    }
    put(b, s + run, n - run);
    put(b, "\"", 1);
}

static void put_pair(sbuf *b, const char *key, const char *value, size_t len, bool comma)
{
    if (comma)
        put(b, ",", 1);
    put_json_string(b, key, strlen(key));
    put(b, ":", 1);
    put_json_string(b, value, len);
}

/* ---- values --------------------------------------------------------------------------------- */

/* Converts rows [row, row + n) of e->t to e->to into dst. */
static embt_status convert_rows(uint8_t *dst, float *tmp, const ex_table *e, uint64_t row, size_t n)
{
    size_t cols = (size_t)e->cols;
    const uint8_t *src = (const uint8_t *)embt_table_data(e->t);
    size_t es = embt_dtype_size(e->from), os = embt_dtype_size(e->to);
    for (size_t r = 0; r < n; r++) {
        if (e->from != EMBT_DTYPE_F64) {
            /* f32, f16, bf16 are exact in float32; i8 is scale * q as the reader computes it */
            embt_status st = embt_table_read_row_f32(tmp, e->t, row + r);
            if (st != EMBT_OK)
                return st;
        }
        for (size_t c = 0; c < cols; c++) {
            size_t i = r * cols + c;
            double d;
            if (e->from == EMBT_DTYPE_F64) {
                uint64_t u = embt__le64(src + ((row + r) * cols + c) * es);
                memcpy(&d, &u, sizeof d);
            } else {
                d = tmp[c];
            }
            float f =
                e->from == EMBT_DTYPE_F64 && (e->to == EMBT_DTYPE_F16 || e->to == EMBT_DTYPE_BF16)
                    ? embt__f64_to_f32_odd(d)
                    : (float)d;
            if (isfinite(d) && isinf(f))
                return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                                   "table \"%.64s\" row %" PRIu64 " value %g overflows %s", e->name,
                                   row + r, d, embt_dtype_name(e->to));
            uint16_t h;
            uint32_t u32;
            uint64_t u64;
            switch (e->to) {
            case EMBT_DTYPE_F64:
                memcpy(&u64, &d, sizeof u64);
                embt__put64(dst + i * os, u64);
                break;
            case EMBT_DTYPE_F32:
                memcpy(&u32, &f, sizeof u32);
                embt__put32(dst + i * os, u32);
                break;
            case EMBT_DTYPE_F16:
                embt_f32_to_f16(&h, &f, 1);
                if (isfinite(d) && (h & 0x7FFFu) == 0x7C00u)
                    return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                                       "table \"%.64s\" row %" PRIu64 " value %g overflows f16",
                                       e->name, row + r, d);
                embt__put16(dst + i * os, h);
                break;
            default:
                embt_f32_to_bf16(&h, &f, 1);
                if (isfinite(d) && (h & 0x7FFFu) == 0x7F80u)
                    return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                                       "table \"%.64s\" row %" PRIu64 " value %g overflows bf16",
                                       e->name, row + r, d);
                embt__put16(dst + i * os, h);
                break;
            }
        }
    }
    return EMBT_OK;
}

static embt_status progress(const embt_convert_options *o, uint64_t done, uint64_t total)
{
    if (o && o->progress && o->progress(done, total, o->payload) != 0)
        return embt__error(EMBT_ECANCELED, EMBT_NO_OFFSET, NULL, 0, "conversion canceled");
    return EMBT_OK;
}

static bool scales_are_one(const embt_table *t)
{
    const float *s = embt_table_scales(t);
    uint64_t n = embt_table_rank(t) == 1 ? (embt_table_rows(t) ? 1 : 0) : embt_table_rows(t);
    for (uint64_t i = 0; i < n; i++)
        if (s[i] != 1.0f)
            return false;
    return true;
}

embt_status embt__export_safetensors(const embt_file *src, embt__output *out,
                                     const embt_convert_options *opts)
{
    EMBT_CHECK_ARG(src != NULL && out != NULL);
    embt_dtype want = opts ? opts->dtype : 0;
    uint64_t limit = opts ? opts->limit : 0;
    size_t n = embt_file_table_count(src);
    ex_table *ts = NULL;
    sbuf b = {NULL, 0, 0, false};
    uint8_t *chunk = NULL;
    float *tmp = NULL;
    embt_status st = EMBT_OK;

    if (want == EMBT_DTYPE_I8 || (want && !embt_dtype_name(want))) {
        st = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                         "safetensors export cannot store dtype %s (no row scales); use f32, f16, "
                         "bf16 or f64",
                         embt_dtype_name(want) ? embt_dtype_name(want) : "unknown");
        goto done;
    }
    const embt_table *tied = NULL;
    if (opts && opts->table_name) {
        if (embt_file_table(&tied, src, opts->table_name) != EMBT_OK) {
            st = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "no table named \"%.64s\"",
                             opts->table_name);
            goto done;
        }
    } else if (embt_file_table(&tied, src, "embedding") != EMBT_OK || !embt_table_vocab(tied)) {
        tied = NULL;
        for (size_t i = 0; i < n && !tied; i++)
            if (embt_table_vocab(embt_file_table_at(src, i)))
                tied = embt_file_table_at(src, i);
    }
    const embt_vocab *vocab = tied ? embt_table_vocab(tied) : NULL;

    ts = embt__calloc(n ? n : 1, sizeof *ts);
    if (!ts) {
        st = embt__error_nomem();
        goto done;
    }
    size_t widest = 1; /* elements of the longest row */
    for (size_t i = 0; i < n; i++) {
        ex_table *e = &ts[i];
        e->t = embt_file_table_at(src, i);
        e->name = embt_table_name(e->t);
        if (strcmp(e->name, "__metadata__") == 0) { /* the header's own key: a duplicate */
            st = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                             "table '__metadata__' cannot be a safetensors tensor: the name is "
                             "the header's metadata key");
            goto done;
        }
        e->from = embt_table_dtype(e->t);
        e->rank = embt_table_rank(e->t);
        e->rows = embt_table_rows(e->t);
        e->cols = embt_table_cols(e->t);
        if (e->t == tied && limit && limit < e->rows)
            e->rows = limit;
        bool floating = e->from == EMBT_DTYPE_F32 || e->from == EMBT_DTYPE_F16 ||
                        e->from == EMBT_DTYPE_BF16 || e->from == EMBT_DTYPE_F64;
        if (e->from == EMBT_DTYPE_I8)
            e->to = want ? want : scales_are_one(e->t) ? EMBT_DTYPE_I8 : EMBT_DTYPE_F32;
        else
            e->to = floating && want ? want : e->from;
        e->bytes = e->rows * e->cols * embt_dtype_size(e->to); /* the reader checked the size */
        if (e->rows > 0 && e->cols > widest) /* rows of 0 elements take no buffer */
            widest = (size_t)e->cols;
    }
    qsort(ts, n, sizeof *ts, ex_cmp);

    /* header: {"__metadata__":{...},"name":{"dtype":..,"shape":[..],"data_offsets":[b,e]},...} */
    puts_(&b, "{\"__metadata__\":{");
    size_t meta_len = 0;
    const char *meta = embt_file_metadata(src, &meta_len);
    bool comma = false;
    if (meta && meta_len) {
        put_pair(&b, "embt.metadata", meta, meta_len, false);
        comma = true;
    }
    if (vocab) {
        put_pair(&b, "embt.table", embt_table_name(tied), strlen(embt_table_name(tied)), comma);
        puts_(&b, ",\"embt.vocab\":\"");
        uint64_t n_tokens = embt_vocab_size(vocab);
        if (limit && limit < n_tokens)
            n_tokens = limit;
        for (uint64_t id = 0; id < n_tokens; id++) {
            size_t len = 0;
            const char *tok = embt_vocab_token(vocab, (uint32_t)id, &len);
            if (!tok) {
                st = embt_error_last()->code;
                goto done;
            }
            if (memchr(tok, '\n', len)) {
                st = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                                 "token %" PRIu64 " contains a newline, which embt.vocab cannot "
                                 "hold",
                                 id);
                goto done;
            }
            if (id)
                put(&b, "\\n", 2);
            /* the quotes of the escaped token are dropped: it continues one string */
            size_t before = b.len;
            put_json_string(&b, tok, len);
            if (!b.nomem) {
                memmove(b.data + before, b.data + before + 1, b.len - before - 2);
                b.len -= 2;
            }
        }
        put(&b, "\"", 1);
        comma = true;
    }
    put_pair(&b, "format", "embt", 4, comma);
    put(&b, "}", 1);
    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        const ex_table *e = &ts[i];
        put(&b, ",", 1);
        put_json_string(&b, e->name, strlen(e->name));
        puts_(&b, ":{\"dtype\":\"");
        puts_(&b, st_name(e->to));
        puts_(&b, "\",\"shape\":[");
        put_u64(&b, e->rows);
        if (e->rank == 2) {
            put(&b, ",", 1);
            put_u64(&b, e->cols);
        }
        puts_(&b, "],\"data_offsets\":[");
        put_u64(&b, offset);
        put(&b, ",", 1);
        offset += e->bytes;
        put_u64(&b, offset);
        puts_(&b, "]}");
    }
    put(&b, "}", 1);
    while (!b.nomem && b.len % 8 != 0)
        put(&b, " ", 1);
    if (b.nomem) {
        st = embt__error_nomem();
        goto done;
    }
    if (b.len > ST_HEADER_MAX) {
        st = embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                         "safetensors header of %zu bytes exceeds the limit of %" PRIu64
                         " (a large vocabulary?)",
                         b.len, ST_HEADER_MAX);
        goto done;
    }
    uint8_t len_le[8];
    embt__put64(len_le, (uint64_t)b.len);
    st = embt__output_write(out, len_le, 8);
    if (st == EMBT_OK)
        st = embt__output_write(out, b.data, b.len);
    if (st != EMBT_OK)
        goto done;

    /* data, in header order */
    tmp = embt__malloc(widest * sizeof *tmp);
    if (!tmp) {
        st = embt__error_nomem();
        goto done;
    }
    uint64_t done_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const ex_table *e = &ts[i];
        if (e->bytes == 0)
            continue;
        if (e->to == e->from) {
            const uint8_t *p = embt_table_data(e->t);
            for (uint64_t at = 0; at < e->bytes && st == EMBT_OK;) {
                size_t k =
                    e->bytes - at < ST_CHUNK_BYTES ? (size_t)(e->bytes - at) : ST_CHUNK_BYTES;
                st = embt__output_write(out, p + at, k);
                at += k;
                done_bytes += k;
                if (st == EMBT_OK)
                    st = progress(opts, done_bytes, offset);
            }
            if (st != EMBT_OK)
                goto done;
            continue;
        }
        size_t row_bytes = (size_t)e->cols * embt_dtype_size(e->to);
        size_t batch = row_bytes >= ST_CHUNK_BYTES ? 1 : ST_CHUNK_BYTES / row_bytes;
        embt__free(chunk);
        chunk = embt__malloc(batch * row_bytes);
        if (!chunk) {
            st = embt__error_nomem();
            goto done;
        }
        for (uint64_t row = 0; row < e->rows; row += batch) {
            size_t k = e->rows - row < batch ? (size_t)(e->rows - row) : batch;
            st = convert_rows(chunk, tmp, e, row, k);
            if (st == EMBT_OK)
                st = embt__output_write(out, chunk, k * row_bytes);
            done_bytes += k * row_bytes;
            if (st == EMBT_OK)
                st = progress(opts, done_bytes, offset);
            if (st != EMBT_OK)
                goto done;
        }
    }
done:
    embt__free(ts);
    embt__free(b.data);
    embt__free(chunk);
    embt__free(tmp);
    return st;
}
