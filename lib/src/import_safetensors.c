/* import_safetensors.c: safetensors -> .embt. Every check of the reference reader
 * (huggingface/safetensors tensor.rs) runs on the whole header before anything is written: size,
 * header length cap, JSON (json.c: strict, duplicate keys refused), str -> str metadata, tensors
 * contiguous in offset order with sizes equal to numel x bits / 8, no trailing bytes. Then every
 * tensor becomes a table of the same name, streamed in batches from the mapped input.
 *
 * Choices (the reference accepts these files; embt cannot hold them faithfully, so they are
 * EMBT_ELIMIT naming the tensor): dtypes BOOL, F4, F6_*, F8_*, I16, U16, U32, U64, C64; rank 0 and
 * rank > 2 (no flattening, so that an export gives back the same shapes); an empty name, a name
 * over 256 bytes or with NUL; a rank-2 tensor with 0 columns. I8 tensors become I8 tables with
 * every row scale 1.0, which is exact (export_safetensors.c gives them back as I8).
 * `__metadata__` becomes `source: {format: safetensors, metadata: {k: v, ...}}` in file order,
 * except the keys "embt.vocab" (tokens joined by '\n', written by export_safetensors.c: it
 * becomes the vocabulary when no --vocab file is given) and "embt.table" (the table it belongs to).
 * Non-finite values in float tensors are EMBT_EPARSE unless EMBT_CONVERT_ALLOW_NONFINITE. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <yaml.h>

#include "convert.h"
#include "json.h"

#define ST_HEADER_MAX UINT64_C(100000000)      /* reference reader's MAX_HEADER_SIZE */
#define ST_JSON_VALUES_MAX (UINT64_C(1) << 24) /* about 1.3 GiB of parsed values at most */
#define ST_NAME_MAX 256u                       /* spec/FORMAT.md 10: table names */
#define ST_BATCH_BYTES (1u << 20)              /* source bytes converted per batch */
#define ST_VOCAB_KEY "embt.vocab"
#define ST_TABLE_KEY "embt.table"

typedef struct st_dtype {
    const char *name;
    unsigned bits;
    embt_dtype dtype; /* 0: embt cannot store it */
} st_dtype;

/* Every dtype the reference knows, so that files with others still get their layout checked. */
static const st_dtype st_dtypes[] = {
    {"BOOL", 8, 0},
    {"F4", 4, 0},
    {"F6_E2M3", 6, 0},
    {"F6_E3M2", 6, 0},
    {"U8", 8, EMBT_DTYPE_U8},
    {"I8", 8, EMBT_DTYPE_I8},
    {"F8_E5M2", 8, 0},
    {"F8_E4M3", 8, 0},
    {"F8_E8M0", 8, 0},
    {"F8_E4M3FNUZ", 8, 0},
    {"F8_E5M2FNUZ", 8, 0},
    {"I16", 16, 0},
    {"U16", 16, 0},
    {"F16", 16, EMBT_DTYPE_F16},
    {"BF16", 16, EMBT_DTYPE_BF16},
    {"I32", 32, EMBT_DTYPE_I32},
    {"U32", 32, 0},
    {"F32", 32, EMBT_DTYPE_F32},
    {"C64", 64, 0},
    {"F64", 64, EMBT_DTYPE_F64},
    {"I64", 64, EMBT_DTYPE_I64},
    {"U64", 64, 0},
};

typedef struct st_tensor {
    const char *name; /* NUL-terminated (the JSON arena) */
    size_t name_len;
    uint64_t name_offset;    /* absolute offset of the key */
    uint64_t offsets_offset; /* absolute offset of the data_offsets array */
    uint64_t shape_offset;
    const embt__json_value *shape_v; /* the shape array */
    uint64_t dtype_offset;
    const st_dtype *dtype;
    unsigned rank;
    uint64_t shape[2];   /* first two dims; rank > 2 is refused after the layout checks */
    uint64_t begin, end; /* relative to the byte buffer */
    size_t order;        /* position in the header, the tie-breaker of the sort */
} st_tensor;

static bool is_float(embt_dtype d)
{
    return d == EMBT_DTYPE_F32 || d == EMBT_DTYPE_F16 || d == EMBT_DTYPE_BF16 ||
           d == EMBT_DTYPE_F64;
}

bool embt__sniff_safetensors(const uint8_t *data, size_t size)
{
    if (size < 10)
        return false;
    uint64_t n = embt__le64(data);
    if (n < 2 || n > ST_HEADER_MAX || n > size - 8)
        return false;
    for (uint64_t i = 0; i < n; i++) {
        uint8_t c = data[8 + i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            continue;
        return c == '{';
    }
    return false;
}

static int tensor_cmp(const void *a, const void *b)
{
    const st_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Reads one tensor entry {"dtype": str, "shape": [u64...], "data_offsets": [u64, u64]}. */
static embt_status read_entry(st_tensor *t, const embt__json *doc, const embt__json_value *e)
{
    t->name = e->key;
    t->name_len = e->key_len;
    t->name_offset = e->key_offset;
    if (e->kind != EMBT__JSON_OBJECT)
        return embt__error(EMBT_EPARSE, e->offset, "header", 0,
                           "tensor \"%.64s\" is a json %s, not an object", e->key,
                           embt__json_kind_name(e->kind));
    const embt__json_value *dt = NULL, *sh = NULL, *off = NULL;
    for (const embt__json_value *m = embt__json_first(doc, e); m; m = embt__json_next(doc, m)) {
        if (strcmp(m->key, "dtype") == 0 && m->key_len == 5)
            dt = m;
        else if (strcmp(m->key, "shape") == 0 && m->key_len == 5)
            sh = m;
        else if (strcmp(m->key, "data_offsets") == 0 && m->key_len == 12)
            off = m;
        else
            return embt__error(EMBT_EPARSE, m->key_offset, "header", 0,
                               "tensor \"%.64s\" has unknown key \"%.32s\"", e->key, m->key);
    }
    if (!dt || !sh || !off)
        return embt__error(EMBT_EPARSE, e->offset, "header", 0, "tensor \"%.64s\" has no %s",
                           e->key,
                           !dt   ? "dtype"
                           : !sh ? "shape"
                                 : "data_offsets");
    if (dt->kind != EMBT__JSON_STRING)
        return embt__error(EMBT_EPARSE, dt->offset, "header", 0,
                           "tensor \"%.64s\" dtype is a json %s, not a string", e->key,
                           embt__json_kind_name(dt->kind));
    t->dtype_offset = dt->offset;
    t->dtype = NULL;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(dt->str, st_dtypes[i].name) == 0 && dt->len == strlen(st_dtypes[i].name))
            t->dtype = &st_dtypes[i];
    if (!t->dtype)
        return embt__error(EMBT_EPARSE, dt->offset, "header", 0,
                           "tensor \"%.64s\" has unknown dtype \"%.32s\"", e->key, dt->str);
    if (sh->kind != EMBT__JSON_ARRAY)
        return embt__error(EMBT_EPARSE, sh->offset, "header", 0,
                           "tensor \"%.64s\" shape is a json %s, not an array", e->key,
                           embt__json_kind_name(sh->kind));
    t->shape_offset = sh->offset;
    t->shape_v = sh;
    t->rank = sh->n_children;
    unsigned i = 0;
    for (const embt__json_value *d = embt__json_first(doc, sh); d; d = embt__json_next(doc, d)) {
        if (d->kind != EMBT__JSON_INT)
            return embt__error(EMBT_EPARSE, d->offset, "header", 0,
                               "tensor \"%.64s\" shape holds a json %s, not an integer", e->key,
                               embt__json_kind_name(d->kind));
        if (i < 2)
            t->shape[i] = d->integer;
        i++;
    }
    if (off->kind != EMBT__JSON_ARRAY || off->n_children != 2 ||
        embt__json_first(doc, off)->kind != EMBT__JSON_INT ||
        embt__json_next(doc, embt__json_first(doc, off))->kind != EMBT__JSON_INT)
        return embt__error(EMBT_EPARSE, off->offset, "header", 0,
                           "tensor \"%.64s\" data_offsets is not [begin, end]", e->key);
    t->offsets_offset = off->offset;
    t->begin = embt__json_first(doc, off)->integer;
    t->end = embt__json_next(doc, embt__json_first(doc, off))->integer;
    return EMBT_OK;
}

/* The reference reader's validate(): sorted by offsets, each begins where the previous ended,
 * ends at or after its begin, and holds exactly numel x bits / 8 bytes. *end_out: the last end. */
static embt_status check_layout(uint64_t *end_out, const st_tensor *ts, size_t n,
                                const embt__json *doc)
{
    uint64_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const st_tensor *t = &ts[i];
        if (t->begin > start)
            return embt__error(EMBT_EPARSE, t->offsets_offset, "header", 0,
                               "tensor \"%.64s\" begins at %" PRIu64
                               " but the previous tensor ends at %" PRIu64 " (gap)",
                               t->name, t->begin, start);
        if (t->begin < start)
            return embt__error(EMBT_EPARSE, t->offsets_offset, "header", 0,
                               "tensor \"%.64s\" begins at %" PRIu64
                               " inside the previous tensor, which ends at %" PRIu64 " (overlap)",
                               t->name, t->begin, start);
        if (t->end < t->begin)
            return embt__error(EMBT_EPARSE, t->offsets_offset, "header", 0,
                               "tensor \"%.64s\" ends at %" PRIu64 " before its begin %" PRIu64,
                               t->name, t->end, t->begin);
        start = t->end;
        uint64_t numel = 1;
        for (const embt__json_value *d = embt__json_first(doc, t->shape_v); d;
             d = embt__json_next(doc, d))
            if (!embt__mul_u64(&numel, numel, d->integer))
                return embt__error(EMBT_EPARSE, t->shape_offset, "header", 0,
                                   "tensor \"%.64s\" shape overflows 64 bits", t->name);
        uint64_t bits;
        if (!embt__mul_u64(&bits, numel, t->dtype->bits))
            return embt__error(EMBT_EPARSE, t->shape_offset, "header", 0,
                               "tensor \"%.64s\" size in bits overflows 64 bits", t->name);
        if (bits % 8 != 0)
            return embt__error(EMBT_EPARSE, t->shape_offset, "header", 0,
                               "tensor \"%.64s\" of %" PRIu64 " %s elements does not end on a byte",
                               t->name, numel, t->dtype->name);
        if (t->end - t->begin != bits / 8)
            return embt__error(EMBT_EPARSE, t->offsets_offset, "header", 0,
                               "tensor \"%.64s\" spans %" PRIu64 " bytes but %" PRIu64
                               " elements of %s need %" PRIu64,
                               t->name, t->end - t->begin, numel, t->dtype->name, bits / 8);
    }
    *end_out = start;
    return EMBT_OK;
}

/* What embt can store; checked after the layout, so these are files the reference accepts. */
static embt_status check_supported(const st_tensor *t)
{
    if (!t->dtype->dtype)
        return embt__error(EMBT_ELIMIT, t->dtype_offset, "header", 0,
                           "tensor \"%.64s\" dtype %s is not supported (f32, f16, bf16, f64, i8, "
                           "u8, i32 and i64 are)",
                           t->name, t->dtype->name);
    if (t->rank == 0 || t->rank > 2)
        return embt__error(EMBT_ELIMIT, t->shape_offset, "header", 0,
                           "tensor \"%.64s\" has rank %u; tables have rank 1 or 2", t->name,
                           t->rank);
    if (t->rank == 2 && t->shape[1] == 0)
        return embt__error(EMBT_ELIMIT, t->shape_offset, "header", 0,
                           "tensor \"%.64s\" has 0 columns, which a table cannot have", t->name);
    if (t->name_len == 0 || t->name_len > ST_NAME_MAX || memchr(t->name, '\0', t->name_len))
        return embt__error(EMBT_ELIMIT, t->name_offset, "header", 0,
                           "tensor name \"%.64s\" of %zu bytes is not a table name (1 to %u bytes, "
                           "no nul)",
                           t->name, t->name_len, ST_NAME_MAX);
    return EMBT_OK;
}

/* ---- metadata ------------------------------------------------------------------------------- */

typedef struct text_buf {
    char *data;
    size_t len, cap;
    bool failed;
} text_buf;

static int buf_handler(void *payload, unsigned char *bytes, size_t size)
{
    text_buf *b = payload;
    if (b->len + size + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + size + 1)
            cap *= 2;
        char *p = embt__realloc(b->data, cap);
        if (!p) {
            b->failed = true;
            return 0;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, size);
    b->len += size;
    return 1;
}

static bool emit_str(yaml_emitter_t *em, const char *s, size_t n, bool quoted)
{
    yaml_event_t ev;
    if (n > INT32_MAX)
        return false;
    return yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)n, 1, 1,
                                        quoted ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                               : YAML_PLAIN_SCALAR_STYLE) &&
           yaml_emitter_emit(em, &ev);
}

static bool emit_map(yaml_emitter_t *em, bool start)
{
    yaml_event_t ev;
    if (start)
        return yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) &&
               yaml_emitter_emit(em, &ev);
    return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(em, &ev);
}

/* source: {format: safetensors, metadata: {k: v}} as YAML; user strings are double-quoted, so any
 * byte sequence (newlines, ": ", leading spaces) survives. */
static embt_status write_metadata(const embt__import *ctx, const embt__json *doc,
                                  const embt__json_value *meta)
{
    text_buf b = {NULL, 0, 0, false};
    yaml_emitter_t em;
    if (!yaml_emitter_initialize(&em))
        return embt__error_nomem();
    yaml_emitter_set_output(&em, buf_handler, &b);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    yaml_emitter_set_break(&em, YAML_LN_BREAK);
    yaml_event_t ev;
    bool ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
              yaml_emitter_emit(&em, &ev) &&
              yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
              yaml_emitter_emit(&em, &ev) && emit_map(&em, true) &&
              emit_str(&em, "source", 6, false) && emit_map(&em, true) &&
              emit_str(&em, "format", 6, false) && emit_str(&em, "safetensors", 11, false);
    size_t kept = 0;
    for (const embt__json_value *m = embt__json_first(doc, meta); ok && m;
         m = embt__json_next(doc, m)) {
        if (strcmp(m->key, ST_VOCAB_KEY) == 0 || strcmp(m->key, ST_TABLE_KEY) == 0)
            continue;
        if (kept++ == 0)
            ok = emit_str(&em, "metadata", 8, false) && emit_map(&em, true);
        ok = ok && emit_str(&em, m->key, m->key_len, true) && emit_str(&em, m->str, m->len, true);
    }
    if (kept)
        ok = ok && emit_map(&em, false);
    ok = ok && emit_map(&em, false) && emit_map(&em, false) &&
         yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&em, &ev) &&
         yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&em, &ev) &&
         yaml_emitter_flush(&em);
    embt_status st = EMBT_OK;
    if (!ok)
        st = b.failed || em.error == YAML_MEMORY_ERROR
                 ? embt__error_nomem()
                 : embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, "metadata", 0,
                               "metadata cannot be written as yaml: %s",
                               em.problem ? em.problem : "value too long");
    yaml_emitter_delete(&em);
    if (st == EMBT_OK)
        st = embt_writer_set_metadata(ctx->writer, b.data ? b.data : "", b.len);
    embt__free(b.data);
    return st;
}

/* ---- values ----------------------------------------------------------------------------------- */

typedef struct run {
    const embt__import *ctx;
    const st_tensor *t;
    uint64_t data_start; /* absolute offset of the byte buffer */
    embt_dtype from, to;
} run;

static embt_status nonfinite(const run *r, uint64_t elem, double value, bool overflow)
{
    uint64_t off = r->data_start + r->t->begin + elem * embt_dtype_size(r->from);
    if (overflow)
        return embt__error(EMBT_ELIMIT, off, "data", 0,
                           "tensor \"%.64s\" element %" PRIu64 " value %g overflows %s", r->t->name,
                           elem, value, embt_dtype_name(r->to));
    if (r->ctx->opts->flags & EMBT_CONVERT_ALLOW_NONFINITE) {
        r->ctx->report->nonfinite++;
        return EMBT_OK;
    }
    return embt__error(EMBT_EPARSE, off, "data", 0, "tensor \"%.64s\" element %" PRIu64 " is %s",
                       r->t->name, elem,
                       isnan(value) ? "nan"
                       : value > 0  ? "inf"
                                    : "-inf");
}

/* Converts n elements from src (r->from, little-endian, any alignment) to dst (r->to, or float32
 * for an i8 target, whose quantisation the writer does). `first` is the index of src[0]. */
static embt_status convert(uint8_t *dst, const uint8_t *src, size_t n, uint64_t first, const run *r)
{
    size_t es = embt_dtype_size(r->from);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = src + i * es;
        double d = 0.0;
        float f = 0.0f;
        switch (r->from) {
        case EMBT_DTYPE_F64: {
            uint64_t u = embt__le64(p);
            memcpy(&d, &u, sizeof d);
            break;
        }
        case EMBT_DTYPE_F32: {
            uint32_t u = embt__le32(p);
            memcpy(&f, &u, sizeof f);
            d = f;
            break;
        }
        case EMBT_DTYPE_F16: {
            uint16_t h = embt__le16(p);
            embt_f16_to_f32(&f, &h, 1);
            d = f;
            break;
        }
        default: {
            uint16_t h = embt__le16(p);
            embt_bf16_to_f32(&f, &h, 1);
            d = f;
            break;
        }
        }
        bool finite = isfinite(d);
        if (!finite) {
            embt_status st = nonfinite(r, first + i, d, false);
            if (st != EMBT_OK)
                return st;
        }
        if (r->to == EMBT_DTYPE_F64) {
            uint64_t u;
            memcpy(&u, &d, sizeof u);
            embt__put64(dst + i * 8, u);
            continue;
        }
        if (r->from == EMBT_DTYPE_F64)
            f = r->to == EMBT_DTYPE_F16 || r->to == EMBT_DTYPE_BF16 ? embt__f64_to_f32_odd(d)
                                                                    : (float)d;
        uint16_t h = 0;
        bool inf;
        if (r->to == EMBT_DTYPE_F16) {
            embt_f32_to_f16(&h, &f, 1);
            inf = (h & 0x7FFFu) == 0x7C00u;
        } else if (r->to == EMBT_DTYPE_BF16) {
            embt_f32_to_bf16(&h, &f, 1);
            inf = (h & 0x7FFFu) == 0x7F80u;
        } else {
            inf = isinf(f);
        }
        if (finite && inf)
            return nonfinite(r, first + i, d, true);
        if (r->to == EMBT_DTYPE_F16 || r->to == EMBT_DTYPE_BF16) {
            embt__put16(dst + i * 2, h);
        } else {
            uint32_t u;
            memcpy(&u, &f, sizeof u);
            embt__put32(dst + i * 4, u);
        }
    }
    return EMBT_OK;
}

/* Stored bytes pass through unchanged; float values are still checked for nan/inf. */
static embt_status check_finite(const uint8_t *src, size_t n, uint64_t first, const run *r)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = src + i * embt_dtype_size(r->from);
        bool bad;
        switch (r->from) {
        case EMBT_DTYPE_F64:
            bad = (embt__le64(p) & 0x7FF0000000000000ull) == 0x7FF0000000000000ull;
            break;
        case EMBT_DTYPE_F32: bad = (embt__le32(p) & 0x7F800000u) == 0x7F800000u; break;
        case EMBT_DTYPE_F16: bad = (embt__le16(p) & 0x7C00u) == 0x7C00u; break;
        case EMBT_DTYPE_BF16: bad = (embt__le16(p) & 0x7F80u) == 0x7F80u; break;
        default: bad = false; break;
        }
        if (bad) {
            float f = 0.0f;
            double d;
            if (r->from == EMBT_DTYPE_F64) {
                uint64_t u = embt__le64(p);
                memcpy(&d, &u, sizeof d);
            } else {
                uint32_t u =
                    r->from == EMBT_DTYPE_F32 ? embt__le32(p) : (uint32_t)embt__le16(p) << 16;
                if (r->from == EMBT_DTYPE_F16) {
                    uint16_t h = embt__le16(p);
                    embt_f16_to_f32(&f, &h, 1);
                } else {
                    memcpy(&f, &u, sizeof f);
                }
                d = f;
            }
            embt_status st = nonfinite(r, first + i, d, false);
            if (st != EMBT_OK)
                return st;
        }
    }
    return EMBT_OK;
}

static embt_status progress(const embt__import *ctx, uint64_t done, uint64_t total)
{
    const embt_convert_options *o = ctx->opts;
    if (o->progress && o->progress(done, total, o->payload) != 0)
        return embt__error(EMBT_ECANCELED, EMBT_NO_OFFSET, NULL, 0, "conversion canceled");
    return EMBT_OK;
}

/* Streams rows [0, rows) of tensor t into the writer's open table. */
static embt_status write_rows(const embt__import *ctx, const st_tensor *t, uint64_t data_start,
                              embt_dtype to, uint64_t rows, uint64_t cols)
{
    run r = {ctx, t, data_start, t->dtype->dtype, to};
    size_t es = embt_dtype_size(r.from);
    size_t row_bytes = (size_t)cols * es;
    size_t batch = embt__batch_rows(rows, row_bytes, ST_BATCH_BYTES);
    bool raw = r.from == to || !is_float(r.from);
    bool i8 = r.from == EMBT_DTYPE_I8;
    size_t out_es = to == EMBT_DTYPE_I8 ? 4 : embt_dtype_size(to);
    uint8_t *buf = NULL;
    float *scales = NULL;
    embt_status st = EMBT_OK;
    if (batch == 0)
        return EMBT_OK;
    if (!raw) {
        buf = embt__malloc(batch * (size_t)cols * out_es);
        if (!buf) {
            st = embt__error_nomem();
            goto done;
        }
    }
    if (i8) {
        scales = embt__malloc(batch * sizeof *scales);
        if (!scales) {
            st = embt__error_nomem();
            goto done;
        }
        for (size_t i = 0; i < batch; i++)
            scales[i] = 1.0f;
    }
    for (uint64_t row = 0; row < rows; row += batch) {
        size_t n = rows - row < batch ? (size_t)(rows - row) : batch;
        size_t elems = n * (size_t)cols;
        const uint8_t *src = ctx->in->data + data_start + t->begin + row * row_bytes;
        if (raw) {
            st = check_finite(src, elems, row * cols, &r);
            if (st == EMBT_OK)
                st = embt_writer_table_append_raw(ctx->writer, src, n, scales);
        } else {
            st = convert(buf, src, elems, row * cols, &r);
            if (st == EMBT_OK)
                st = to == EMBT_DTYPE_I8
                         ? embt_writer_table_append_f32(ctx->writer, (const float *)buf, n)
                         : embt_writer_table_append_raw(ctx->writer, buf, n, NULL);
        }
        if (st != EMBT_OK)
            goto done;
        size_t from = (size_t)(data_start + t->begin + row * row_bytes);
        embt__input_drop(ctx->in, from, from + elems * es);
        st = progress(ctx, from + elems * es, ctx->in->size);
        if (st != EMBT_OK)
            goto done;
    }
done:
    embt__free(buf);
    embt__free(scales);
    return st;
}

/* Vocabulary from the "embt.vocab" metadata value: `rows` tokens joined by '\n'. */
static embt_status vocab_from_metadata(const embt__import *ctx, const embt__json_value *v,
                                       uint64_t rows_in, uint64_t rows)
{
    uint64_t n = v->len == 0 ? 0 : 1;
    for (size_t i = 0; i < v->len; i++)
        n += v->str[i] == '\n';
    if (n != rows_in)
        return embt__error(EMBT_EPARSE, v->offset, "header", 0,
                           "%s holds %" PRIu64 " tokens but its table has %" PRIu64 " rows",
                           ST_VOCAB_KEY, n, rows_in);
    const char *s = v->str;
    for (uint64_t i = 0; i < rows; i++) {
        const char *nl = memchr(s, '\n', (size_t)(v->str + v->len - s));
        size_t len = nl ? (size_t)(nl - s) : (size_t)(v->str + v->len - s);
        uint32_t first = 0;
        embt_status st = embt_writer_vocab_add(ctx->writer, s, len, 0, &first);
        if (st == EMBT_EEXISTS)
            return embt__error(EMBT_EPARSE, v->offset, "header", 0,
                               "%s token %" PRIu64 " repeats token %u", ST_VOCAB_KEY, i, first);
        if (st == EMBT_EINVAL)
            return embt__error(EMBT_EPARSE, v->offset, "header", 0,
                               "%s token %" PRIu64 " of %zu bytes is not a valid token",
                               ST_VOCAB_KEY, i, len);
        if (st != EMBT_OK)
            return st;
        s += len + 1;
    }
    return EMBT_OK;
}

embt_status embt__import_safetensors(const embt__import *ctx)
{
    EMBT_CHECK_ARG(ctx != NULL && ctx->in != NULL && ctx->writer != NULL && ctx->opts != NULL);
    const uint8_t *data = ctx->in->data;
    size_t size = ctx->in->size;
    const embt_convert_options *o = ctx->opts;
    embt__json doc = {NULL, 0, NULL};
    st_tensor *ts = NULL;
    embt_status st = EMBT_OK;

    /* reference checks (1) to (3): the length prefix and the header inside the file */
    if (size < 8) {
        st = embt__error(EMBT_EFORMAT, 0, "header", 0,
                         "file of %zu bytes is shorter than the 8-byte header length", size);
        goto done;
    }
    uint64_t n = embt__le64(data);
    if (n > ST_HEADER_MAX) {
        st = embt__error(EMBT_EFORMAT, 0, "header", 0,
                         "header length %" PRIu64 " exceeds the limit of %" PRIu64, n,
                         ST_HEADER_MAX);
        goto done;
    }
    uint64_t data_start;
    if (!embt__add_u64(&data_start, n, 8) || data_start > size) {
        st = embt__error(EMBT_EFORMAT, 0, "header", 0,
                         "header length %" PRIu64 " runs past the end of the file (%zu bytes)", n,
                         size);
        goto done;
    }
    /* (4) UTF-8 JSON */
    st = embt__json_parse(&doc, data + 8, (size_t)n, 8, EMBT__JSON_DEPTH_MAX, ST_JSON_VALUES_MAX);
    if (st != EMBT_OK)
        goto done;
    const embt__json_value *root = &doc.values[0];
    if (root->kind != EMBT__JSON_OBJECT) {
        st = embt__error(EMBT_EPARSE, root->offset, "header", 0,
                         "header is a json %s, not an object", embt__json_kind_name(root->kind));
        goto done;
    }
    const embt__json_value *meta = NULL;
    size_t n_tensors = 0;
    ts = embt__calloc(root->n_children ? root->n_children : 1, sizeof *ts);
    if (!ts) {
        st = embt__error_nomem();
        goto done;
    }
    for (const embt__json_value *m = embt__json_first(&doc, root); m;
         m = embt__json_next(&doc, m)) {
        if (strcmp(m->key, "__metadata__") == 0 && m->key_len == 12) {
            if (m->kind != EMBT__JSON_OBJECT) {
                st = embt__error(EMBT_EPARSE, m->offset, "header", 0,
                                 "__metadata__ is a json %s, not an object",
                                 embt__json_kind_name(m->kind));
                goto done;
            }
            /* str -> str only; numbers are refused as the reference does (safetensors#278) */
            for (const embt__json_value *kv = embt__json_first(&doc, m); kv;
                 kv = embt__json_next(&doc, kv))
                if (kv->kind != EMBT__JSON_STRING) {
                    st = embt__error(EMBT_EPARSE, kv->offset, "header", 0,
                                     "__metadata__ value of \"%.64s\" is a json %s, not a string",
                                     kv->key, embt__json_kind_name(kv->kind));
                    goto done;
                }
            meta = m;
            continue;
        }
        st = read_entry(&ts[n_tensors], &doc, m);
        if (st != EMBT_OK)
            goto done;
        ts[n_tensors].order = n_tensors;
        n_tensors++;
    }
    /* (5), (6): contiguous in offset order, exact sizes */
    qsort(ts, n_tensors, sizeof *ts, tensor_cmp);
    uint64_t last_end = 0;
    st = check_layout(&last_end, ts, n_tensors, &doc);
    if (st != EMBT_OK)
        goto done;
    /* (7) the buffer ends exactly at the end of the file: no trailing bytes, no truncation */
    uint64_t file_end;
    if (!embt__add_u64(&file_end, data_start, last_end) || file_end > size) {
        st = embt__error(EMBT_EPARSE, n_tensors ? ts[n_tensors - 1].offsets_offset : 8, "header", 0,
                         "tensors end at buffer offset %" PRIu64
                         " but the file has only %zu bytes (truncated)",
                         last_end, size);
        goto done;
    }
    if (file_end < size) {
        st = embt__error(EMBT_EPARSE, file_end, "data", 0,
                         "%" PRIu64 " trailing bytes after the last tensor",
                         (uint64_t)size - file_end);
        goto done;
    }
    /* a header with no tensors is valid safetensors, but converting it would give a file with no
     * table, which no command can use */
    if (n_tensors == 0) {
        st = embt__error(EMBT_EFORMAT, root->offset, "header", 0,
                         "the header lists no tensors: nothing to import");
        goto done;
    }
    for (size_t i = 0; i < n_tensors; i++) {
        st = check_supported(&ts[i]);
        if (st != EMBT_OK)
            goto done;
    }

    /* the tensor tied to the vocabulary */
    const embt__json_value *vocab_value = embt__json_get(&doc, meta, ST_VOCAB_KEY);
    const embt__json_value *table_value = embt__json_get(&doc, meta, ST_TABLE_KEY);
    const char *tied_name = o->table_name;
    if (!tied_name && vocab_value && table_value && !o->vocab_path)
        tied_name = table_value->str;
    if (!tied_name)
        tied_name = ctx->table_name ? ctx->table_name : "embedding";
    const st_tensor *tied = NULL;
    for (size_t i = 0; i < n_tensors; i++)
        if (strcmp(ts[i].name, tied_name) == 0)
            tied = &ts[i];
    if (!tied && o->table_name) {
        st = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                         "no tensor named \"%.64s\" to tie the vocabulary to", o->table_name);
        goto done;
    }
    bool has_vocab = o->vocab_path != NULL || vocab_value != NULL;
    if (has_vocab && !tied) {
        st = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                         "no tensor named \"%.64s\" to tie the vocabulary to (choose one with the "
                         "table name option)",
                         tied_name);
        goto done;
    }
    uint64_t tied_rows = 0;
    if (tied) {
        tied_rows = tied->shape[0];
        if (o->limit && o->limit < tied_rows)
            tied_rows = o->limit;
    }

    if (has_vocab) {
        embt_vocab_spec vspec = EMBT_VOCAB_SPEC_INIT;
        vspec.name = ctx->vocab_name ? ctx->vocab_name : "words";
        vspec.flags = (o->flags & EMBT_CONVERT_COMPRESS) ? EMBT_VOCAB_COMPRESS : 0;
        st = embt_writer_vocab_begin(ctx->writer, &vspec);
        if (st != EMBT_OK)
            goto done;
        if (o->vocab_path) {
            uint64_t n_tokens = 0;
            st = embt__read_vocab_file(ctx, &n_tokens);
            if (st == EMBT_OK && n_tokens != tied_rows)
                st = embt__error(EMBT_EPARSE, EMBT_NO_OFFSET, "vocab", 0,
                                 "vocabulary file has %" PRIu64 " tokens but tensor \"%.64s\" "
                                 "has %" PRIu64 " rows",
                                 n_tokens, tied->name, tied_rows);
        } else {
            st = vocab_from_metadata(ctx, vocab_value, tied->shape[0], tied_rows);
        }
        if (st == EMBT_OK)
            st = embt_writer_vocab_end(ctx->writer);
        if (st != EMBT_OK)
            goto done;
    }

    uint64_t rows_total = 0;
    for (size_t i = 0; i < n_tensors; i++) {
        const st_tensor *t = &ts[i];
        embt_dtype from = t->dtype->dtype;
        embt_dtype to = o->dtype && is_float(from) ? o->dtype : from;
        embt_table_spec spec = EMBT_TABLE_SPEC_INIT;
        spec.name = t->name;
        spec.dtype = to;
        spec.rank = t->rank;
        spec.rows = t == tied ? tied_rows : t->shape[0];
        spec.cols = t->rank == 2 ? t->shape[1] : 1;
        spec.vocab = t == tied && has_vocab ? (ctx->vocab_name ? ctx->vocab_name : "words") : NULL;
        spec.flags = (o->flags & EMBT_CONVERT_COMPRESS) ? EMBT_TABLE_COMPRESS : 0;
        st = embt_writer_table_begin(ctx->writer, &spec);
        if (st == EMBT_OK)
            st = write_rows(ctx, t, data_start, to, spec.rows, spec.cols);
        if (st == EMBT_OK)
            st = embt_writer_table_end(ctx->writer);
        if (st != EMBT_OK) {
            char section[64];
            snprintf(section, sizeof section, "tensor %.48s", t->name);
            embt__error_set_section(section);
            goto done;
        }
        rows_total += spec.rows;
    }
    st = write_metadata(ctx, &doc, meta);
    if (st == EMBT_OK && ctx->report)
        ctx->report->rows = tied ? tied_rows : rows_total;
done:
    embt__free(ts);
    embt__json_free(&doc);
    return st;
}
