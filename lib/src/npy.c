/* npy.c: the .npy format shared by the npy and npz converters: a strict literal parser of the header
 * dict, the header numpy writes, float conversions rounding once, and the loop that streams an array
 * (C or Fortran order, either byte order) into a table of the writer. */
#include <math.h>
#include <stdio.h>

#include "npy.h"
#include "vocab_file.h"

static const uint8_t npy_magic[EMBT__NPY_MAGIC_LEN] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

#define ROWS_MAX (UINT64_C(1) << 40)  /* spec/FORMAT.md 10 */
#define COLS_MAX UINT64_C(2147483647) /* spec/FORMAT.md 10 */
#define BATCH_ELEMS ((size_t)1 << 18) /* elements converted per batch (2 MiB of f64) */
#define GROWTH_AXIS_MAX_DIGITS 21     /* numpy leaves room to grow axis 0 in place */
#define ARRAY_ALIGN 64                /* numpy aligns the data to 64 bytes */

uint64_t embt__npy_offset(const embt__npy_src *src, uint64_t pos)
{
    return src->inflated ? src->base : src->base + pos;
}

/* ---- the header dict: a Python literal with three known keys ---------------------------------- */

typedef struct lexer {
    const embt__npy_src *src;
    const uint8_t *s;
    size_t pos, end;  /* positions in src->data */
    bool long_suffix; /* 3L allowed (versions 1 and 2: Python 2 writers) */
} lexer;

static embt_status lex_fail(const lexer *lx, size_t pos, const char *what)
{
    return embt__error(EMBT_EPARSE, embt__npy_offset(lx->src, pos), lx->src->section, 0,
                       "npy header: %s", what);
}

static void skip_ws(lexer *lx)
{
    while (lx->pos < lx->end) {
        uint8_t c = lx->s[lx->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v')
            break;
        lx->pos++;
    }
}

static bool peek(const lexer *lx, uint8_t c)
{
    return lx->pos < lx->end && lx->s[lx->pos] == c;
}

/* A quoted string without escapes; start and len give its contents. */
static embt_status lex_string(lexer *lx, size_t *start, size_t *len)
{
    if (lx->pos >= lx->end || (lx->s[lx->pos] != '\'' && lx->s[lx->pos] != '"'))
        return lex_fail(lx, lx->pos, "expected a quoted string");
    uint8_t q = lx->s[lx->pos];
    size_t a = ++lx->pos;
    while (lx->pos < lx->end && lx->s[lx->pos] != q) {
        uint8_t c = lx->s[lx->pos];
        if (c == '\\')
            return lex_fail(lx, lx->pos, "escape sequences are not supported");
        if (c == '\n')
            return lex_fail(lx, a - 1, "unterminated string");
        lx->pos++;
    }
    if (lx->pos >= lx->end)
        return lex_fail(lx, a - 1, "unterminated string");
    *start = a;
    *len = lx->pos - a;
    lx->pos++;
    return EMBT_OK;
}

static bool is_ident(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static embt_status lex_bool(lexer *lx, bool *out)
{
    static const char t[] = "True", f[] = "False";
    size_t rest = lx->end - lx->pos;
    const char *w = NULL;
    if (rest >= 4 && memcmp(lx->s + lx->pos, t, 4) == 0)
        w = t;
    else if (rest >= 5 && memcmp(lx->s + lx->pos, f, 5) == 0)
        w = f;
    size_t n = w ? strlen(w) : 0;
    if (!w || (lx->pos + n < lx->end && is_ident(lx->s[lx->pos + n])))
        return lex_fail(lx, lx->pos, "expected True or False");
    *out = w == t;
    lx->pos += n;
    return EMBT_OK;
}

static embt_status lex_int(lexer *lx, uint64_t *out)
{
    size_t a = lx->pos;
    uint64_t v = 0;
    while (lx->pos < lx->end && lx->s[lx->pos] >= '0' && lx->s[lx->pos] <= '9') {
        if (!embt__mul_u64(&v, v, 10) || !embt__add_u64(&v, v, lx->s[lx->pos] - '0'))
            return lex_fail(lx, a, "shape dimension does not fit in 64 bits");
        lx->pos++;
    }
    if (lx->pos == a)
        return lex_fail(lx, a, "expected a non-negative integer");
    if (lx->long_suffix && (peek(lx, 'L') || peek(lx, 'l')))
        lx->pos++;
    if (lx->pos < lx->end && is_ident(lx->s[lx->pos]))
        return lex_fail(lx, lx->pos, "unexpected character after an integer");
    *out = v;
    return EMBT_OK;
}

/* (), (n,), (a, b), (a, b,) ... : a tuple of at most EMBT__NPY_DIMS_MAX integers. */
static embt_status lex_shape(lexer *lx, uint64_t *dims, unsigned *rank)
{
    embt_status rc;
    if (!peek(lx, '('))
        return lex_fail(lx, lx->pos, "shape is not a tuple");
    lx->pos++;
    unsigned n = 0;
    bool comma = false;
    for (;;) {
        skip_ws(lx);
        if (peek(lx, ')'))
            break;
        if (n == EMBT__NPY_DIMS_MAX)
            return lex_fail(lx, lx->pos, "shape has more than 32 dimensions");
        if ((rc = lex_int(lx, &dims[n])) != EMBT_OK)
            return rc;
        n++;
        skip_ws(lx);
        comma = peek(lx, ',');
        if (comma) {
            lx->pos++;
            continue;
        }
        if (!peek(lx, ')'))
            return lex_fail(lx, lx->pos, "expected ',' or ')' in the shape");
        break;
    }
    if (n == 1 && !comma)
        return lex_fail(lx, lx->pos, "a one-element shape needs a trailing comma, as in (n,)");
    lx->pos++;
    *rank = n;
    return EMBT_OK;
}

/* Recognises descr: kind 'f' with size 2, 4 or 8 and an order character. */
static embt_status classify_descr(embt__npy *out, const lexer *lx, size_t at, const uint8_t *d,
                                  size_t n)
{
    if (n >= sizeof out->descr)
        return embt__error(EMBT_ELIMIT, embt__npy_offset(lx->src, at), lx->src->section, 0,
                           "npy descr of %zu characters is not a supported dtype", n);
    memcpy(out->descr, d, n);
    out->descr[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (d[i] < 0x20 || d[i] > 0x7e)
            return embt__error(EMBT_ELIMIT, embt__npy_offset(lx->src, at), lx->src->section, 0,
                               "npy descr holds byte 0x%02x: not a supported dtype", d[i]);
    }
    const char *s = out->descr;
    if (n == 3 && strchr("<>|=", s[0]) && s[1] == 'f' && strchr("248", s[2])) {
        out->big_endian = s[0] == '>';
        out->itemsize = (size_t)(s[2] - '0');
        out->dtype = s[2] == '2' ? EMBT_DTYPE_F16 : s[2] == '4' ? EMBT_DTYPE_F32 : EMBT_DTYPE_F64;
        return EMBT_OK;
    }
    const char *why = "is not a supported dtype (f2, f4 or f8, either byte order)";
    const char *kind = n >= 2 && strchr("<>|=", s[0]) ? s + 1 : s;
    if (kind[0] == 'O')
        why = "is an object array (pickle): never loaded";
    else if (kind[0] == 'V')
        why = "is an untyped void (bfloat16 saved through ml_dtypes loses its type: save float32)";
    else if (strchr("iubc", kind[0]))
        why = "is not a floating-point dtype (f2, f4 or f8)";
    return embt__error(EMBT_ELIMIT, embt__npy_offset(lx->src, at), lx->src->section, 0,
                       "npy descr '%s' %s", s, why);
}

static embt_status parse_dict(embt__npy *out, lexer *lx, uint64_t *dims, unsigned *rank)
{
    embt_status rc;
    bool have_descr = false, have_order = false, have_shape = false;
    skip_ws(lx);
    if (!peek(lx, '{'))
        return lex_fail(lx, lx->pos, "expected '{'");
    lx->pos++;
    for (;;) {
        skip_ws(lx);
        if (peek(lx, '}'))
            break;
        size_t ka, kn, key_at = lx->pos;
        if ((rc = lex_string(lx, &ka, &kn)) != EMBT_OK)
            return rc;
        skip_ws(lx);
        if (!peek(lx, ':'))
            return lex_fail(lx, lx->pos, "expected ':' after a key");
        lx->pos++;
        skip_ws(lx);
        const uint8_t *k = lx->s + ka;
        bool *seen;
        if (kn == 5 && memcmp(k, "descr", 5) == 0) {
            seen = &have_descr;
            if (*seen)
                return lex_fail(lx, key_at, "duplicate key 'descr'");
            if (peek(lx, '['))
                return embt__error(EMBT_ELIMIT, embt__npy_offset(lx->src, lx->pos),
                                   lx->src->section, 0,
                                   "npy descr is a list of fields: structured arrays are not "
                                   "supported");
            size_t da, dn, at = lx->pos;
            if ((rc = lex_string(lx, &da, &dn)) != EMBT_OK)
                return rc;
            if ((rc = classify_descr(out, lx, at, lx->s + da, dn)) != EMBT_OK)
                return rc;
        } else if (kn == 13 && memcmp(k, "fortran_order", 13) == 0) {
            seen = &have_order;
            if (*seen)
                return lex_fail(lx, key_at, "duplicate key 'fortran_order'");
            if ((rc = lex_bool(lx, &out->fortran)) != EMBT_OK)
                return rc;
        } else if (kn == 5 && memcmp(k, "shape", 5) == 0) {
            seen = &have_shape;
            if (*seen)
                return lex_fail(lx, key_at, "duplicate key 'shape'");
            if ((rc = lex_shape(lx, dims, rank)) != EMBT_OK)
                return rc;
        } else {
            return lex_fail(lx, key_at, "unexpected key (expected descr, fortran_order, shape)");
        }
        *seen = true;
        skip_ws(lx);
        if (peek(lx, ',')) {
            lx->pos++;
            continue;
        }
        if (!peek(lx, '}'))
            return lex_fail(lx, lx->pos, "expected ',' or '}'");
        break;
    }
    size_t close = lx->pos;
    lx->pos++;
    skip_ws(lx);
    if (lx->pos != lx->end)
        return lex_fail(lx, lx->pos, "unexpected text after the dict");
    if (!have_descr || !have_order || !have_shape)
        return lex_fail(lx, close,
                        !have_descr   ? "key 'descr' is missing"
                        : !have_order ? "key 'fortran_order' is missing"
                                      : "key 'shape' is missing");
    return EMBT_OK;
}

embt_status embt__npy_parse(embt__npy *out, const embt__npy_src *src)
{
    const uint8_t *d = src->data;
    size_t size = src->size;
    memset(out, 0, sizeof *out);

    size_t m = size < EMBT__NPY_MAGIC_LEN ? size : EMBT__NPY_MAGIC_LEN;
    if (size == 0 || memcmp(d, npy_magic, m) != 0)
        return embt__error(EMBT_EFORMAT, embt__npy_offset(src, 0), src->section, 0,
                           "not a .npy array: the magic \\x93NUMPY is missing");
    if (size < 10)
        return embt__error(EMBT_EPARSE, embt__npy_offset(src, size), src->section, 0,
                           "npy truncated at %zu bytes inside the preamble", size);
    out->major = d[6];
    out->minor = d[7];
    if (out->major < 1 || out->major > 3 || out->minor != 0)
        return embt__error(EMBT_ELIMIT, embt__npy_offset(src, 6), src->section, 0,
                           "npy version %u.%u is not supported (1.0, 2.0 or 3.0)", out->major,
                           out->minor);
    size_t pre = out->major == 1 ? 10 : 12;
    if (size < pre)
        return embt__error(EMBT_EPARSE, embt__npy_offset(src, size), src->section, 0,
                           "npy truncated at %zu bytes inside the preamble", size);
    uint64_t hlen = out->major == 1 ? embt__le16(d + 8) : embt__le32(d + 8);
    if (hlen > EMBT__NPY_HEADER_MAX)
        return embt__error(EMBT_ELIMIT, embt__npy_offset(src, 8), src->section, 0,
                           "npy header length %llu exceeds %u bytes", (unsigned long long)hlen,
                           EMBT__NPY_HEADER_MAX);
    if (hlen > size - pre)
        return embt__error(EMBT_EPARSE, embt__npy_offset(src, 8), src->section, 0,
                           "npy header length %llu runs past the end of the %zu bytes",
                           (unsigned long long)hlen, size);
    size_t bad;
    if (out->major == 3 && !embt__utf8_valid(d + pre, (size_t)hlen, &bad))
        return embt__error(EMBT_EPARSE, embt__npy_offset(src, pre + bad), src->section, 0,
                           "npy 3.0 header is not valid UTF-8 at header byte %zu", pre + bad);

    lexer lx = {src, d, pre, pre + (size_t)hlen, out->major < 3};
    uint64_t dims[EMBT__NPY_DIMS_MAX];
    unsigned rank = 0;
    embt_status rc = parse_dict(out, &lx, dims, &rank);
    if (rc != EMBT_OK)
        return rc;
    out->data_offset = pre + hlen;

    if (rank == 0 || rank > 2)
        return embt__error(EMBT_ELIMIT, embt__npy_offset(src, pre), src->section, 0,
                           "npy array of rank %u: only rank 1 (a vector) and 2 (a matrix) "
                           "become tables",
                           rank);
    /* the data must be exactly what the shape declares: checked before anything is allocated */
    uint64_t elems = 1, bytes;
    for (unsigned i = 0; i < rank; i++) {
        if (!embt__mul_u64(&elems, elems, dims[i])) {
            elems = UINT64_MAX;
            break;
        }
    }
    uint64_t have = size - out->data_offset;
    if (elems == UINT64_MAX || !embt__mul_u64(&bytes, elems, out->itemsize))
        return embt__error(EMBT_EPARSE, embt__npy_offset(src, out->data_offset), src->section, 0,
                           "npy shape declares more than 2^64 data bytes, the input holds %llu",
                           (unsigned long long)have);
    if (bytes != have)
        return embt__error(EMBT_EPARSE, embt__npy_offset(src, out->data_offset), src->section, 0,
                           "npy shape declares %llu data bytes, the input holds %llu",
                           (unsigned long long)bytes, (unsigned long long)have);
    out->rank = rank;
    out->rows = dims[0];
    out->cols = rank == 2 ? dims[1] : 1;
    if (out->rows > ROWS_MAX)
        return embt__error(EMBT_ELIMIT, embt__npy_offset(src, pre), src->section, 0,
                           "npy array of %llu rows exceeds the limit of %llu",
                           (unsigned long long)out->rows, (unsigned long long)ROWS_MAX);
    if (out->cols == 0 || out->cols > COLS_MAX)
        return embt__error(EMBT_ELIMIT, embt__npy_offset(src, pre), src->section, 0,
                           "npy array of %llu columns is outside [1, %llu]",
                           (unsigned long long)out->cols, (unsigned long long)COLS_MAX);
    if (rank == 1)
        out->fortran = false; /* the same bytes either way */
    return EMBT_OK;
}

/* ---- float conversions --------------------------------------------------------------------------
 * f64 to a narrower binary format with `mbits` fraction bits and `ebits` exponent bits, rounding the
 * 53-bit significand once to nearest even (going through f32 first would round twice). */
static uint32_t f64_narrow(double d, unsigned mbits, unsigned ebits)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    uint32_t sign = (uint32_t)(b >> 63) << (mbits + ebits);
    uint64_t a = b & ~(UINT64_C(1) << 63);
    int bias = (1 << (ebits - 1)) - 1;
    uint32_t inf = (uint32_t)((1u << ebits) - 1) << mbits;
    if (a >= UINT64_C(0x7ff0000000000000)) {
        if (a == UINT64_C(0x7ff0000000000000))
            return sign | inf;
        /* NaN: quiet, keeping the top payload bits */
        uint32_t payload = (uint32_t)((a >> (52 - mbits)) & ((1u << mbits) - 1));
        return sign | inf | (1u << (mbits - 1)) | payload;
    }
    int e = (int)(a >> 52) - 1023; /* subnormal doubles are far below every target's range */
    int emin = 1 - bias;
    if (e > bias)
        return sign | inf;
    if (e < emin - (int)mbits - 1)
        return sign; /* below half the smallest subnormal */
    uint64_t sig = (a & ((UINT64_C(1) << 52) - 1)) | (UINT64_C(1) << 52);
    int shift = 52 - (int)mbits + (e < emin ? emin - e : 0);
    uint64_t q = sig >> shift;
    uint64_t rem = sig & ((UINT64_C(1) << shift) - 1), half = UINT64_C(1) << (shift - 1);
    if (rem > half || (rem == half && (q & 1)))
        q++;
    if (e < emin)
        return sign | (uint32_t)q; /* subnormal (a carry makes it the smallest normal) */
    /* q holds the implicit bit at bit mbits: adding it to (e + bias - 1) << mbits gives the biased
     * exponent, and a rounding carry moves into the exponent (up to infinity) */
    return sign | (uint32_t)(((uint64_t)(e + bias - 1) << mbits) + q);
}

uint16_t embt__f64_to_f16(double d)
{
    return (uint16_t)f64_narrow(d, 10, 5);
}

uint16_t embt__f64_to_bf16(double d)
{
    return (uint16_t)f64_narrow(d, 7, 8);
}

static void to_f32(float *dst, const void *src, embt_dtype from, size_t n)
{
    switch (from) {
    case EMBT_DTYPE_F16: embt_f16_to_f32(dst, src, n); break;
    case EMBT_DTYPE_BF16: embt_bf16_to_f32(dst, src, n); break;
    case EMBT_DTYPE_F64:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)((const double *)src)[i];
        break;
    default: memcpy(dst, src, n * sizeof *dst); break;
    }
}

void embt__npy_convert(void *dst, embt_dtype to, const void *src, embt_dtype from, size_t n)
{
    if (to == from) {
        memcpy(dst, src, n * embt_dtype_size(to));
        return;
    }
    switch (to) {
    case EMBT_DTYPE_F32: to_f32(dst, src, from, n); return;
    case EMBT_DTYPE_F64: {
        double *o = dst;
        if (from == EMBT_DTYPE_F32) {
            for (size_t i = 0; i < n; i++)
                o[i] = ((const float *)src)[i];
            return;
        }
        /* f16 and bf16 are exact in f32 */
        for (size_t i = 0; i < n; i++) {
            float v;
            to_f32(&v, (const uint16_t *)src + i, from, 1);
            o[i] = v;
        }
        return;
    }
    case EMBT_DTYPE_F16:
    case EMBT_DTYPE_BF16: {
        uint16_t *o = dst;
        bool f16 = to == EMBT_DTYPE_F16;
        if (from == EMBT_DTYPE_F64) {
            for (size_t i = 0; i < n; i++)
                o[i] = f16 ? embt__f64_to_f16(((const double *)src)[i])
                           : embt__f64_to_bf16(((const double *)src)[i]);
            return;
        }
        if (from == EMBT_DTYPE_F32) {
            if (f16)
                embt_f32_to_f16(o, src, n);
            else
                embt_f32_to_bf16(o, src, n);
            return;
        }
        /* the other 16-bit type (exact in f32), one element at a time */
        for (size_t i = 0; i < n; i++) {
            float v;
            to_f32(&v, (const uint16_t *)src + i, from, 1);
            if (f16)
                embt_f32_to_f16(o + i, &v, 1);
            else
                embt_f32_to_bf16(o + i, &v, 1);
        }
        return;
    }
    default: return;
    }
}

/* ---- streaming an array into a table ----------------------------------------------------------- */

static bool is_float(embt_dtype t)
{
    return t == EMBT_DTYPE_F16 || t == EMBT_DTYPE_BF16 || t == EMBT_DTYPE_F32 ||
           t == EMBT_DTYPE_F64;
}

/* Finiteness of the element of dtype t (F16, BF16, F32, F64) at p, which may be unaligned. */
static bool load_finite(const uint8_t *p, embt_dtype t)
{
    switch (t) {
    case EMBT_DTYPE_F64: {
        double v;
        memcpy(&v, p, sizeof v);
        return isfinite(v);
    }
    case EMBT_DTYPE_F32: {
        float v;
        memcpy(&v, p, sizeof v);
        return isfinite(v);
    }
    default: {
        uint16_t h;
        memcpy(&h, p, sizeof h);
        return t == EMBT_DTYPE_F16 ? (h & 0x7c00) != 0x7c00 : (h & 0x7f80) != 0x7f80;
    }
    }
}

static void byteswap(uint8_t *p, size_t n_elems, size_t size)
{
    for (size_t k = 0; k < n_elems; k++, p += size) {
        for (size_t i = 0; i < size / 2; i++) {
            uint8_t t = p[i];
            p[i] = p[size - 1 - i];
            p[size - 1 - i] = t;
        }
    }
}

embt_status embt__npy_write_table(const embt__import *ctx, const embt__npy_src *src,
                                  const embt__npy *npy, const embt_table_spec *spec, uint64_t rows,
                                  const uint32_t *row_map, uint64_t done_base, uint64_t total)
{
    embt_status rc;
    uint8_t *raw = NULL, *conv = NULL;
    embt_table_spec ts = *spec;
    const embt_convert_options *o = ctx->opts;
    embt_writer *w = ctx->writer;

    if (ts.dtype == 0)
        ts.dtype = npy->dtype;
    ts.rank = npy->rank;
    ts.rows = rows;
    ts.cols = npy->cols;
    embt_dtype to = ts.dtype;
    /* conversions go through the output dtype when it is a float type, else through f32 (which the
     * writer then quantises) */
    embt_dtype mid = is_float(to) ? to : EMBT_DTYPE_F32;
    bool allow = (o->flags & EMBT_CONVERT_ALLOW_NONFINITE) && is_float(to);
    size_t isz = npy->itemsize, osz = embt_dtype_size(mid), cols = (size_t)npy->cols;

    rc = embt_writer_table_begin(w, &ts);
    if (rc != EMBT_OK)
        goto done;
    /* cols <= 2^31 - 1 and batch * cols <= max(BATCH_ELEMS, cols): no overflow below */
    size_t batch = embt__batch_rows(rows, cols, BATCH_ELEMS);
    size_t n_max = batch * cols;
    raw = n_max ? embt__malloc(n_max * 8) : NULL;
    conv = n_max ? embt__malloc(n_max * 8) : NULL;
    if (n_max && (!raw || !conv)) {
        rc = embt__error_nomem();
        goto done;
    }
    const uint8_t *data = src->data + npy->data_offset;
    /* rows are used in place only when they are aligned for their type: stored npz members may
     * start at any offset */
    bool direct = !row_map && !npy->fortran && !npy->big_endian && mid == npy->dtype &&
                  (uintptr_t)data % embt_dtype_size(npy->dtype) == 0;
    for (uint64_t r0 = 0; r0 < rows;) {
        size_t nb = rows - r0 < batch ? (size_t)(rows - r0) : batch;
        size_t n = nb * cols;
        const uint8_t *in; /* n elements of npy->dtype, little-endian, row-major */
        if (row_map) {
            for (size_t i = 0; i < nb; i++) {
                uint64_t sr = row_map[r0 + i];
                if (!npy->fortran) {
                    memcpy(raw + i * cols * isz, data + sr * cols * isz, cols * isz);
                    continue;
                }
                for (size_t j = 0; j < cols; j++)
                    memcpy(raw + (i * cols + j) * isz, data + ((uint64_t)j * npy->rows + sr) * isz,
                           isz);
            }
            in = raw;
        } else if (!npy->fortran) {
            const uint8_t *p = data + r0 * cols * isz;
            if (direct) {
                in = p;
            } else {
                memcpy(raw, p, n * isz);
                in = raw;
            }
        } else {
            for (size_t j = 0; j < cols; j++) {
                const uint8_t *col = data + ((uint64_t)j * npy->rows + r0) * isz;
                for (size_t i = 0; i < nb; i++)
                    memcpy(raw + (i * cols + j) * isz, col + i * isz, isz);
            }
            in = raw;
        }
        if (npy->big_endian)
            byteswap(raw, n, isz);
        const void *out = in;
        if (!direct) {
            embt__npy_convert(conv, mid, in, npy->dtype, n);
            out = conv;
        }
        /* non-finite inputs, and finite inputs that overflow the output dtype */
        for (size_t k = 0; k < n; k++) {
            bool in_ok = load_finite(in + k * isz, npy->dtype);
            bool out_ok = direct || load_finite((const uint8_t *)out + k * osz, mid);
            if (in_ok && out_ok)
                continue;
            uint64_t row = r0 + k / cols, col = k % cols;
            if (row_map)
                row = row_map[row];
            uint64_t el = npy->fortran ? col * npy->rows + row : row * npy->cols + col;
            uint64_t at = embt__npy_offset(src, npy->data_offset + el * isz);
            if (allow) {
                ctx->report->nonfinite++;
                continue;
            }
            rc = embt__error(EMBT_EPARSE, at, src->section, 0,
                             in_ok ? "row %llu column %llu overflows %s"
                                   : "row %llu column %llu is not finite%s",
                             (unsigned long long)row, (unsigned long long)col,
                             in_ok ? embt_dtype_name(to) : "");
            goto done;
        }
        if (is_float(to))
            rc = embt_writer_table_append_raw(w, out, nb, NULL);
        else
            rc = embt_writer_table_append_f32(w, out, nb);
        if (rc != EMBT_OK)
            goto done;
        r0 += nb;
        if (!row_map && !npy->fortran && !src->inflated && ctx->in && src->data >= ctx->in->data &&
            src->data < ctx->in->data + ctx->in->size) {
            size_t at = (size_t)(src->data - ctx->in->data) + (size_t)npy->data_offset;
            embt__input_drop(ctx->in, at + (size_t)((r0 - nb) * cols * isz),
                             at + (size_t)(r0 * cols * isz));
        }
        if (o->progress) {
            /* an inflated member's positions are not input offsets: it counts when done */
            uint64_t pos = src->inflated ? 0 : npy->data_offset + r0 * cols * isz;
            uint64_t done_bytes = done_base + pos > total ? total : done_base + pos;
            if (o->progress(done_bytes, total, o->payload) != 0) {
                rc = embt__error(EMBT_ECANCELED, EMBT_NO_OFFSET, src->section, 0,
                                 "conversion canceled at row %llu", (unsigned long long)r0);
                goto done;
            }
        }
    }
    rc = embt_writer_table_end(w);
done:
    embt__free(conv);
    embt__free(raw);
    return rc;
}

embt_status embt__npy_read_vocab(const embt__import *ctx, uint64_t array_rows, const char *array,
                                 uint64_t *rows_out, uint32_t **row_map_out)
{
    const embt_convert_options *o = ctx->opts;
    uint32_t *map = NULL;
    uint64_t n = 0, lines = 0;
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    vs.name = ctx->vocab_name;
    vs.flags = (o->flags & EMBT_CONVERT_COMPRESS) ? EMBT_VOCAB_COMPRESS : 0;
    *row_map_out = NULL;
    embt_status rc = embt_writer_vocab_begin(ctx->writer, &vs);
    if (rc == EMBT_OK)
        rc = embt__read_vocab_file_rows(ctx, &n, &map, &lines);
    if (rc == EMBT_OK)
        rc = embt_writer_vocab_end(ctx->writer);
    if (rc != EMBT_OK)
        goto done;
    /* line i names row i; the reader stops early only when it reached the limit */
    bool stopped = o->limit != 0 && n == o->limit;
    if (lines > array_rows || (!stopped && lines != array_rows)) {
        rc = embt__error(EMBT_EPARSE, EMBT_NO_OFFSET, "vocab file", 0,
                         "vocabulary file has %llu lines, array '%.64s' has %llu rows",
                         (unsigned long long)lines, array, (unsigned long long)array_rows);
        goto done;
    }
    bool identity = true;
    for (uint64_t i = 0; identity && i < n; i++)
        identity = map[i] == i;
    *rows_out = n;
    if (!identity) {
        *row_map_out = map;
        map = NULL;
    }
done:
    embt__free(map);
    return rc;
}

/* ---- metadata ------------------------------------------------------------------------------------ */

int embt__npy_meta(char *buf, size_t cap, const embt__npy *npy)
{
    char shape[64];
    if (npy->rank == 1)
        snprintf(shape, sizeof shape, "[%llu]", (unsigned long long)npy->rows);
    else
        snprintf(shape, sizeof shape, "[%llu, %llu]", (unsigned long long)npy->rows,
                 (unsigned long long)npy->cols);
    /* descr passed classify_descr: printable ASCII of a known form, no quote */
    return snprintf(buf, cap, "version: '%u.%u', descr: '%s', shape: %s, fortran_order: %s",
                    npy->major, npy->minor, npy->descr, shape, npy->fortran ? "true" : "false");
}

embt_status embt__buf_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (n > SIZE_MAX / 2 - *len)
        return embt__error_nomem();
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n + 1)
            c *= 2;
        char *g = embt__realloc(*buf, c);
        if (!g)
            return embt__error_nomem();
        *buf = g;
        *cap = c;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return EMBT_OK;
}

embt_status embt__yaml_quote(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    embt_status rc = embt__buf_append(buf, len, cap, "\"", 1);
    const uint8_t *p = (const uint8_t *)s;
    for (size_t i = 0; rc == EMBT_OK && i < n;) {
        char esc[16];
        uint8_t c = p[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            rc = embt__buf_append(buf, len, cap, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            rc = embt__buf_append(buf, len, cap, esc, 4);
            i++;
        } else if (c < 0x80) {
            rc = embt__buf_append(buf, len, cap, s + i, 1);
            i++;
        } else {
            /* valid UTF-8 (checked by the caller): escape what YAML does not allow as printable */
            size_t k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            if (k > n - i)
                k = n - i;
            uint32_t cp = k == 2   ? (uint32_t)(c & 0x1f) << 6 | (p[i + 1] & 0x3f)
                          : k == 3 ? (uint32_t)(c & 0x0f) << 12 | (uint32_t)(p[i + 1] & 0x3f) << 6 |
                                         (p[i + 2] & 0x3f)
                                   : 0x10000;
            if ((cp >= 0x80 && cp <= 0x9f && cp != 0x85) || cp == 0xfffe || cp == 0xffff) {
                snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
                rc = embt__buf_append(buf, len, cap, esc, 6);
            } else {
                rc = embt__buf_append(buf, len, cap, s + i, k);
            }
            i += k;
        }
    }
    if (rc == EMBT_OK)
        rc = embt__buf_append(buf, len, cap, "\"", 1);
    return rc;
}

/* ---- the header numpy writes ------------------------------------------------------------------- */

size_t embt__npy_header_build(uint8_t *buf, size_t cap, const char *descr, unsigned rank,
                              uint64_t rows, uint64_t cols)
{
    char dict[192], shape[64], first[32];
    if (rank == 1)
        snprintf(shape, sizeof shape, "(%llu,)", (unsigned long long)rows);
    else
        snprintf(shape, sizeof shape, "(%llu, %llu)", (unsigned long long)rows,
                 (unsigned long long)cols);
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     descr, shape);
    int digits = snprintf(first, sizeof first, "%llu", (unsigned long long)rows);
    if (n < 0 || (size_t)n >= sizeof dict || digits < 0)
        return 0;
    size_t spare = digits < GROWTH_AXIS_MAX_DIGITS ? (size_t)(GROWTH_AXIS_MAX_DIGITS - digits) : 0;
    size_t hlen = (size_t)n + spare + 1; /* the dict, the spare spaces, the final newline */
    unsigned major = 1;
    size_t pre = 10;
    size_t pad = ARRAY_ALIGN - (pre + hlen) % ARRAY_ALIGN;
    if (hlen + pad > 65535) {
        major = 2;
        pre = 12;
        pad = ARRAY_ALIGN - (pre + hlen) % ARRAY_ALIGN;
    }
    size_t total = pre + hlen + pad;
    if (total > cap)
        return 0;
    memcpy(buf, npy_magic, EMBT__NPY_MAGIC_LEN);
    buf[6] = (uint8_t)major;
    buf[7] = 0;
    if (major == 1)
        embt__put16(buf + 8, (uint16_t)(hlen + pad));
    else
        embt__put32(buf + 8, (uint32_t)(hlen + pad));
    memcpy(buf + pre, dict, (size_t)n);
    memset(buf + pre + n, ' ', spare + pad);
    buf[total - 1] = '\n';
    return total;
}
