/* fuzz_roundtrip.c: libFuzzer target for write -> read -> compare. The input is a recipe: a few
 * header bytes choose dtype, shape, flags and alignment, then come length-prefixed tokens, the raw
 * row bytes, I8 scales and a metadata text. The writer must accept exactly the tokens that are valid
 * (1 to 65,535 bytes of UTF-8 without NUL, not seen before), the file it commits must verify, and
 * every token, count, row byte, scale and the metadata must read back as given. Writing the same
 * recipe twice must give the same bytes (the writer is deterministic). */
#include <math.h>

#include "fuzz_common.h"

#define FZ_MAX_ROWS 64u
#define FZ_MAX_COLS 16u

typedef struct recipe {
    const uint8_t *p;
    size_t n;
} recipe;

static uint8_t take_byte(recipe *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

/* Up to `want` bytes (fewer when the recipe runs out). */
static const uint8_t *take(recipe *r, size_t want, size_t *got)
{
    *got = want < r->n ? want : r->n;
    const uint8_t *p = r->p;
    r->p += *got;
    r->n -= *got;
    return p;
}

/* RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF; NUL refused too. */
static int valid_token(const uint8_t *s, size_t n)
{
    if (n == 0 || n > 65535)
        return 0;
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF)
            len = 2, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            len = 3, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            len = 4, cp = c & 0x07;
        else
            return 0;
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        i += len;
    }
    return 1;
}

typedef struct plan {
    embt_dtype dtype;
    unsigned flags;
    uint64_t rows, cols;
    unsigned rank;
    uint32_t alignment;
    unsigned chunk; /* rows per append call */
    /* accepted tokens, concatenated */
    size_t n_tokens;
    uint8_t *tok_bytes;
    size_t tok_len[FZ_MAX_ROWS];
    size_t tok_off[FZ_MAX_ROWS];
    uint8_t *values; /* rows * cols * dtype size */
    float scales[FZ_MAX_ROWS];
    int scales_finite;
    const uint8_t *meta;
    size_t meta_len;
} plan;

#define P_VOCAB_COMPRESS 0x01u
#define P_COUNTS 0x02u
#define P_TABLE_COMPRESS 0x04u
#define P_NORMS 0x08u
#define P_TIED 0x10u
#define P_META 0x20u
#define P_RANK1 0x40u
#define P_SECOND 0x80u

/* Writes the plan to `path`. Returns the commit status, or the status of the first call that the
 * plan expects to fail (scales that are not finite); the tokens are checked on the way. */
static embt_status write_plan(plan *pl, const char *path)
{
    embt_writer_options wo = EMBT_WRITER_OPTIONS_INIT;
    wo.alignment = pl->alignment;
    embt_writer *w = NULL;
    embt_status st = embt_writer_open(&w, path, &wo);
    FZ_CHECK(st == EMBT_OK, "writer_open: %s", embt_status_name(st));
    if (pl->flags & P_TIED) {
        embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
        vs.flags = ((pl->flags & P_VOCAB_COMPRESS) ? EMBT_VOCAB_COMPRESS : 0) |
                   ((pl->flags & P_COUNTS) ? EMBT_VOCAB_COUNTS : 0);
        FZ_CHECK(embt_writer_vocab_begin(w, &vs) == EMBT_OK, "vocab_begin");
        for (size_t i = 0; i < pl->n_tokens; i++)
            FZ_CHECK(embt_writer_vocab_add(w, (const char *)pl->tok_bytes + pl->tok_off[i],
                                           pl->tok_len[i], 1000u - i, NULL) == EMBT_OK,
                     "re-adding accepted token %zu", i);
        if (pl->n_tokens > 2)
            FZ_CHECK(embt_writer_vocab_specials(w, 0, EMBT_NONE_ID, 1,
                                                (uint32_t)pl->n_tokens - 1) == EMBT_OK,
                     "specials");
        FZ_CHECK(embt_writer_vocab_end(w) == EMBT_OK, "vocab_end");
    }
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = "t";
    ts.dtype = pl->dtype;
    ts.rank = pl->rank;
    ts.rows = pl->rows;
    ts.cols = pl->cols;
    ts.vocab = (pl->flags & P_TIED) ? "words" : NULL;
    ts.flags = ((pl->flags & P_TABLE_COMPRESS) ? EMBT_TABLE_COMPRESS : 0) |
               ((pl->flags & P_NORMS) ? EMBT_TABLE_NORMS : 0);
    st = embt_writer_table_begin(w, &ts);
    FZ_CHECK(st == EMBT_OK, "table_begin (%llu x %llu %s): %s", (unsigned long long)pl->rows,
             (unsigned long long)pl->cols, embt_dtype_name(pl->dtype), embt_status_name(st));
    size_t row_bytes = (size_t)pl->cols * embt_dtype_size(pl->dtype);
    for (uint64_t r = 0; r < pl->rows;) {
        size_t n = pl->rank == 1 ? (size_t)pl->rows : pl->chunk;
        if (n > pl->rows - r)
            n = (size_t)(pl->rows - r);
        st = embt_writer_table_append_raw(w, pl->values + r * row_bytes, n, pl->scales + r);
        if (st != EMBT_OK) {
            FZ_CHECK(pl->dtype == EMBT_DTYPE_I8 && !pl->scales_finite && st == EMBT_EINVAL,
                     "append_raw rows %llu+%zu: %s", (unsigned long long)r, n,
                     embt_status_name(st));
            embt_writer_free(w);
            return st;
        }
        r += n;
    }
    FZ_CHECK(pl->dtype != EMBT_DTYPE_I8 || pl->scales_finite || pl->rows == 0,
             "non-finite I8 scales were accepted");
    FZ_CHECK(embt_writer_table_end(w) == EMBT_OK, "table_end");
    if (pl->flags & P_SECOND) {
        /* a stand-alone f32 vector through the converting path */
        float bias[3] = {1.5f, -0.0f, (float)pl->rows};
        embt_table_spec bs = EMBT_TABLE_SPEC_INIT;
        bs.name = "bias";
        bs.rank = 1;
        bs.rows = 3;
        bs.cols = 1;
        FZ_CHECK(embt_writer_add_table_f32(w, &bs, bias) == EMBT_OK, "bias");
    }
    if (pl->meta) {
        st = embt_writer_set_metadata(w, (const char *)pl->meta, pl->meta_len);
        FZ_CHECK(st == EMBT_OK || st == EMBT_EPARSE || st == EMBT_ELIMIT, "set_metadata: %s",
                 embt_status_name(st));
        if (st != EMBT_OK)
            pl->meta = NULL; /* the writer keeps no metadata then */
    }
    st = embt_writer_commit(w);
    embt_writer_free(w);
    return st;
}

static void check_file(const plan *pl, const char *path)
{
    embt_file *f = NULL;
    embt_open_options oo = EMBT_OPEN_OPTIONS_INIT;
    oo.flags = EMBT_OPEN_VERIFY;
    embt_status st = embt_file_open(&f, path, &oo);
    FZ_CHECK(st == EMBT_OK, "the written file does not open and verify: %s", embt_status_name(st));
    FZ_CHECK(embt_file_alignment(f) == pl->alignment, "alignment %u, asked %u",
             embt_file_alignment(f), pl->alignment);
    const embt_table *t = NULL;
    FZ_CHECK(embt_file_table(&t, f, "t") == EMBT_OK, "table t");
    FZ_CHECK(embt_table_dtype(t) == pl->dtype && embt_table_rank(t) == pl->rank &&
                 embt_table_rows(t) == pl->rows && embt_table_cols(t) == pl->cols,
             "shape or dtype changed");
    size_t bytes = (size_t)(pl->rows * pl->cols) * embt_dtype_size(pl->dtype);
    if (bytes)
        FZ_CHECK(memcmp(embt_table_data(t), pl->values, bytes) == 0, "row bytes changed");
    if (pl->dtype == EMBT_DTYPE_I8 && pl->rows) {
        const float *sc = embt_table_scales(t);
        FZ_CHECK(sc != NULL, "I8 table without scales");
        size_t ns = pl->rank == 1 ? 1 : (size_t)pl->rows;
        FZ_CHECK(memcmp(sc, pl->scales, ns * sizeof(float)) == 0, "scales changed");
    }
    if (pl->flags & P_NORMS) {
        const float *norms = embt_table_norms(t);
        FZ_CHECK(norms != NULL || pl->rows == 0, "norms asked for and missing");
        /* FORMAT.md rule 28: a rank-1 table has one norm, of the whole vector */
        for (uint64_t r = 0; norms && r < (pl->rank == 1 ? 1 : pl->rows); r++)
            FZ_CHECK(isnan(norms[r]) || norms[r] >= 0, "negative norm");
    } else {
        FZ_CHECK(embt_table_norms(t) == NULL, "norms not asked for");
    }
    const embt_vocab *v = embt_table_vocab(t);
    if (pl->flags & P_TIED) {
        FZ_CHECK(v != NULL && embt_vocab_size(v) == pl->n_tokens, "vocabulary size");
        FZ_CHECK(embt_vocab_has_counts(v) == !!(pl->flags & P_COUNTS), "counts presence");
        for (size_t i = 0; i < pl->n_tokens; i++) {
            size_t len = 0;
            const char *tok = embt_vocab_token(v, (uint32_t)i, &len);
            FZ_CHECK(tok && len == pl->tok_len[i] &&
                         memcmp(tok, pl->tok_bytes + pl->tok_off[i], len) == 0,
                     "token %zu changed", i);
            uint32_t id;
            FZ_CHECK(embt_vocab_find(&id, v, tok, len) == EMBT_OK && id == i, "find token %zu", i);
            uint64_t count;
            if (pl->flags & P_COUNTS)
                FZ_CHECK(embt_vocab_count(&count, v, (uint32_t)i) == EMBT_OK && count == 1000u - i,
                         "count %zu", i);
        }
        if (pl->n_tokens > 2)
            FZ_CHECK(embt_vocab_unk_id(v) == 0 && embt_vocab_pad_id(v) == EMBT_NONE_ID &&
                         embt_vocab_bos_id(v) == 1 &&
                         embt_vocab_eos_id(v) == (uint32_t)pl->n_tokens - 1,
                     "special ids");
    } else {
        FZ_CHECK(v == NULL && embt_file_vocab_count(f) == 0, "unexpected vocabulary");
    }
    const embt_table *b = NULL;
    st = embt_file_table(&b, f, "bias");
    FZ_CHECK((st == EMBT_OK) == !!(pl->flags & P_SECOND), "bias table presence");
    if (b) {
        float x[3];
        for (uint64_t r = 0; r < 3; r++)
            FZ_CHECK(embt_table_read_row_f32(x + r, b, r) == EMBT_OK, "bias row");
        FZ_CHECK(x[0] == 1.5f && x[1] == 0.0f && signbit(x[1]) && x[2] == (float)pl->rows,
                 "bias values");
    }
    size_t mlen = 0;
    const char *meta = embt_file_metadata(f, &mlen);
    if (pl->meta)
        FZ_CHECK(meta && mlen == pl->meta_len && memcmp(meta, pl->meta, mlen) == 0,
                 "metadata changed");
    else
        FZ_CHECK(meta == NULL, "metadata appeared");
    embt_file_close(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const embt_dtype dtypes[] = {EMBT_DTYPE_F32, EMBT_DTYPE_F16, EMBT_DTYPE_BF16,
                                        EMBT_DTYPE_F64, EMBT_DTYPE_I8,  EMBT_DTYPE_U8,
                                        EMBT_DTYPE_I32, EMBT_DTYPE_I64};
    recipe r = {data, size};
    plan pl;
    memset(&pl, 0, sizeof pl);
    pl.dtype = dtypes[take_byte(&r) % 8];
    pl.flags = take_byte(&r);
    uint8_t shape = take_byte(&r);
    pl.rank = (pl.flags & P_RANK1) ? 1 : 2;
    uint64_t want_rows = shape % FZ_MAX_ROWS;
    pl.cols = pl.rank == 1 ? 1 : 1 + (shape / FZ_MAX_ROWS) * 5 % FZ_MAX_COLS;
    uint8_t misc = take_byte(&r);
    pl.alignment = 64u << (misc % 7); /* 64 .. 4096 */
    pl.chunk = 1 + (misc >> 3) % 8;
    if (pl.rank == 1 && pl.dtype == EMBT_DTYPE_I8)
        pl.rank = 2; /* keep one scale per row: rank-1 I8 shares scales[0], covered by tests */

    const char *path = fz_path("a.embt"), *path2 = fz_path("b.embt");
    embt_writer *probe = NULL;

    /* tokens: a length byte then the bytes; the writer must agree with valid_token() */
    if (pl.flags & P_TIED) {
        pl.tok_bytes = malloc(FZ_MAX_ROWS * 32);
        FZ_CHECK(pl.tok_bytes != NULL, "out of memory");
        FZ_CHECK(embt_writer_open(&probe, path, NULL) == EMBT_OK, "probe writer");
        embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
        FZ_CHECK(embt_writer_vocab_begin(probe, &vs) == EMBT_OK, "probe vocab");
        size_t used = 0;
        for (uint64_t i = 0; i < want_rows && r.n; i++) {
            size_t len;
            const uint8_t *tok = take(&r, take_byte(&r) % 32, &len);
            uint32_t earlier = EMBT_NONE_ID;
            embt_status st = embt_writer_vocab_add(probe, (const char *)tok, len, 0, &earlier);
            int dup = 0;
            for (size_t k = 0; k < pl.n_tokens; k++)
                if (pl.tok_len[k] == len && memcmp(pl.tok_bytes + pl.tok_off[k], tok, len) == 0)
                    dup = 1;
            if (!valid_token(tok, len)) {
                FZ_CHECK(st == EMBT_EINVAL, "invalid token (%zu bytes) got %s", len,
                         embt_status_name(st));
            } else if (dup) {
                FZ_CHECK(st == EMBT_EEXISTS && earlier < pl.n_tokens, "duplicate token got %s",
                         embt_status_name(st));
            } else {
                FZ_CHECK(st == EMBT_OK, "valid new token (%zu bytes) got %s", len,
                         embt_status_name(st));
                memcpy(pl.tok_bytes + used, tok, len);
                pl.tok_off[pl.n_tokens] = used;
                pl.tok_len[pl.n_tokens++] = len;
                used += len;
            }
        }
        embt_writer_free(probe);
        FZ_CHECK(fz_count_other_entries(NULL) == 0, "an aborted writer left a file");
        pl.rows = pl.n_tokens;
    } else {
        pl.rows = want_rows;
    }

    size_t esize = embt_dtype_size(pl.dtype);
    size_t nbytes = (size_t)(pl.rows * pl.cols) * esize, got;
    pl.values = calloc(nbytes ? nbytes : 1, 1);
    FZ_CHECK(pl.values != NULL, "out of memory");
    const uint8_t *v = take(&r, nbytes, &got);
    memcpy(pl.values, v, got);
    pl.scales_finite = 1;
    if (pl.dtype == EMBT_DTYPE_I8) {
        for (uint64_t i = 0; i < pl.rows; i++) {
            const uint8_t *s = take(&r, 4, &got);
            uint32_t bits = 0x3C000000u; /* 1/128 when the recipe runs out */
            if (got == 4)
                memcpy(&bits, s, 4);
            memcpy(&pl.scales[i], &bits, 4);
            if (!isfinite(pl.scales[i]))
                pl.scales_finite = 0;
        }
    }
    if (pl.flags & P_META) {
        pl.meta = r.p;
        pl.meta_len = r.n;
    }

    embt_status st = write_plan(&pl, path);
    if (st == EMBT_OK) {
        check_file(&pl, path);
        plan again = pl;
        FZ_CHECK(write_plan(&again, path2) == EMBT_OK, "second write");
        FILE *fa = fopen(path, "rb"), *fb = fopen(path2, "rb");
        FZ_CHECK(fa && fb, "reopen");
        int ca, cb;
        do {
            ca = fgetc(fa);
            cb = fgetc(fb);
        } while (ca == cb && ca != EOF);
        FZ_CHECK(ca == cb, "the same recipe gave different bytes");
        fclose(fa);
        fclose(fb);
        unlink(path2);
    } else {
        FZ_CHECK(fz_count_other_entries(NULL) == 0, "a failed write (%s) left a file",
                 embt_status_name(st));
    }
    unlink(path);
    free(pl.values);
    free(pl.tok_bytes);
    return 0;
}
