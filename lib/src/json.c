/* json.c: strict recursive-descent JSON parser (json.h). Values go to one array that grows by
 * doubling and is bounded by the caller's cap and by the text length (every value takes at least a
 * byte); decoded strings go to one arena of len + 1 bytes, which always suffices because a decoded
 * string plus its NUL is never longer than its quoted source. Failures record an absolute offset. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "json.h"

typedef struct parser {
    const uint8_t *text;
    size_t len;
    size_t pos;
    uint64_t base;
    uint32_t depth_max;
    size_t values_max;
    embt__json *doc;
    size_t cap;        /* allocated values */
    size_t arena_used; /* bytes of doc->strings in use */
} parser;

static embt_status fail(const parser *p, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static embt_status fail(const parser *p, size_t at, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return embt__error(EMBT_EPARSE, p->base + at, "header", 0, "%s", msg);
}

const char *embt__json_kind_name(embt__json_kind kind)
{
    switch (kind) {
    case EMBT__JSON_NULL: return "null";
    case EMBT__JSON_FALSE: return "false";
    case EMBT__JSON_TRUE: return "true";
    case EMBT__JSON_INT: return "integer";
    case EMBT__JSON_STRING: return "string";
    case EMBT__JSON_ARRAY: return "array";
    case EMBT__JSON_OBJECT: return "object";
    }
    return "value";
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        uint8_t c = p->text[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

/* Appends a value of `kind` at the current position; *index_out gets its index. */
static embt_status new_value(uint32_t *index_out, parser *p, embt__json_kind kind)
{
    embt__json *d = p->doc;
    if (d->n_values >= p->values_max)
        return embt__error(EMBT_ELIMIT, p->base + p->pos, "header", 0, "more than %zu json values",
                           p->values_max);
    if (d->n_values == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        if (cap > p->values_max)
            cap = p->values_max;
        embt__json_value *v = embt__realloc(d->values, cap * sizeof *v);
        if (!v)
            return embt__error_nomem();
        d->values = v;
        p->cap = cap;
    }
    embt__json_value *v = &d->values[d->n_values];
    memset(v, 0, sizeof *v);
    v->kind = kind;
    v->offset = p->base + p->pos;
    v->first_child = EMBT__JSON_NONE;
    v->next = EMBT__JSON_NONE;
    *index_out = (uint32_t)d->n_values++;
    return EMBT_OK;
}

static int hex_digit(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits after "\u" at p->pos (which points at the backslash). */
static embt_status read_u_escape(uint32_t *out, parser *p)
{
    size_t at = p->pos;
    if (p->len - p->pos < 6)
        return fail(p, at, "truncated \\u escape");
    uint32_t cp = 0;
    for (size_t i = 2; i < 6; i++) {
        int h = hex_digit(p->text[p->pos + i]);
        if (h < 0)
            return fail(p, at, "bad \\u escape (non-hex digit)");
        cp = cp * 16 + (uint32_t)h;
    }
    p->pos += 6;
    *out = cp;
    return EMBT_OK;
}

static size_t put_utf8(char *dst, uint32_t cp)
{
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xC0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xE0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        dst[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    dst[0] = (char)(0xF0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    dst[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the string whose opening quote is at p->pos into the arena. */
static embt_status parse_string(const char **str_out, size_t *len_out, parser *p)
{
    size_t open = p->pos;
    p->pos++;
    char *dst = p->doc->strings + p->arena_used;
    size_t n = 0;
    for (;;) {
        if (p->pos >= p->len)
            return fail(p, open, "unterminated string");
        uint8_t c = p->text[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20)
            return fail(p, p->pos, "control character 0x%02x in string", c);
        if (c != '\\') {
            dst[n++] = (char)c;
            p->pos++;
            continue;
        }
        size_t esc = p->pos;
        if (p->pos + 1 >= p->len)
            return fail(p, esc, "truncated escape");
        uint8_t e = p->text[p->pos + 1];
        char simple = 0;
        switch (e) {
        case '"': simple = '"'; break;
        case '\\': simple = '\\'; break;
        case '/': simple = '/'; break;
        case 'b': simple = '\b'; break;
        case 'f': simple = '\f'; break;
        case 'n': simple = '\n'; break;
        case 'r': simple = '\r'; break;
        case 't': simple = '\t'; break;
        case 'u': break;
        default: return fail(p, esc, "bad escape '\\%c'", e >= 0x20 && e < 0x7F ? (char)e : '?');
        }
        if (simple) {
            dst[n++] = simple;
            p->pos += 2;
            continue;
        }
        uint32_t cp;
        embt_status st = read_u_escape(&cp, p);
        if (st != EMBT_OK)
            return st;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return fail(p, esc, "lone low surrogate \\u%04X", (unsigned)cp);
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (p->len - p->pos < 2 || p->text[p->pos] != '\\' || p->text[p->pos + 1] != 'u')
                return fail(p, esc, "high surrogate \\u%04X not followed by a low one",
                            (unsigned)cp);
            uint32_t lo;
            st = read_u_escape(&lo, p);
            if (st != EMBT_OK)
                return st;
            if (lo < 0xDC00 || lo > 0xDFFF)
                return fail(p, esc, "high surrogate \\u%04X followed by \\u%04X", (unsigned)cp,
                            (unsigned)lo);
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        n += put_utf8(dst + n, cp);
    }
    dst[n] = '\0';
    p->arena_used += n + 1;
    *str_out = dst;
    *len_out = n;
    return EMBT_OK;
}

static embt_status parse_number(uint64_t *out, parser *p)
{
    size_t start = p->pos;
    if (p->text[p->pos] == '-')
        return fail(p, start, "negative number");
    uint64_t v = 0;
    size_t digits = 0;
    while (p->pos < p->len && p->text[p->pos] >= '0' && p->text[p->pos] <= '9') {
        unsigned d = (unsigned)(p->text[p->pos] - '0');
        if (!embt__mul_u64(&v, v, 10) || !embt__add_u64(&v, v, d))
            return fail(p, start, "integer exceeds 18446744073709551615");
        p->pos++;
        digits++;
    }
    if (digits > 1 && p->text[start] == '0')
        return fail(p, start, "number with a leading zero");
    if (p->pos < p->len &&
        (p->text[p->pos] == '.' || p->text[p->pos] == 'e' || p->text[p->pos] == 'E'))
        return fail(p, start, "number is not an integer");
    *out = v;
    return EMBT_OK;
}

static embt_status parse_value(uint32_t *index_out, parser *p, uint32_t depth);

/* Sorted view of an object's keys for the duplicate check. */
typedef struct key_ref {
    const char *key;
    size_t len;
    uint64_t offset;
} key_ref;

static int key_ref_cmp(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Duplicate keys are refused: parsers disagree on which one wins (Trail of Bits TOB-SFTN-7). */
static embt_status check_duplicates(parser *p, uint32_t object)
{
    const embt__json_value *o = &p->doc->values[object];
    if (o->n_children < 2)
        return EMBT_OK;
    key_ref *refs = embt__malloc(o->n_children * sizeof *refs);
    if (!refs)
        return embt__error_nomem();
    size_t n = 0;
    for (uint32_t c = o->first_child; c != EMBT__JSON_NONE; c = p->doc->values[c].next) {
        const embt__json_value *m = &p->doc->values[c];
        refs[n++] = (key_ref){m->key, m->key_len, m->key_offset};
    }
    qsort(refs, n, sizeof *refs, key_ref_cmp);
    const key_ref *dup = NULL, *first = NULL;
    for (size_t i = 1; i < n; i++) {
        if (refs[i].len == refs[i - 1].len &&
            memcmp(refs[i].key, refs[i - 1].key, refs[i].len) == 0 &&
            (!dup || refs[i].offset < dup->offset)) {
            dup = &refs[i];
            first = &refs[i - 1];
        }
    }
    embt_status st = EMBT_OK;
    if (dup)
        st = embt__error(EMBT_EPARSE, dup->offset, "header", 0,
                         "duplicate key \"%.64s\" (first at 0x%" PRIx64 ")", dup->key,
                         first->offset);
    embt__free(refs);
    return st;
}

static embt_status parse_container(uint32_t index, parser *p, uint32_t depth, bool object)
{
    size_t open = p->pos;
    if (depth >= p->depth_max)
        return embt__error(EMBT_ELIMIT, p->base + open, "header", 0, "json nested deeper than %u",
                           p->depth_max);
    p->pos++;
    skip_ws(p);
    char close = object ? '}' : ']';
    if (p->pos < p->len && p->text[p->pos] == close) {
        p->pos++;
        return EMBT_OK;
    }
    uint32_t last = EMBT__JSON_NONE;
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        uint64_t key_offset = 0;
        embt_status st;
        if (object) {
            if (p->pos >= p->len || p->text[p->pos] != '"')
                return fail(p, p->pos, "expected a string key");
            key_offset = p->base + p->pos;
            st = parse_string(&key, &key_len, p);
            if (st != EMBT_OK)
                return st;
            skip_ws(p);
            if (p->pos >= p->len || p->text[p->pos] != ':')
                return fail(p, p->pos, "expected ':' after a key");
            p->pos++;
            skip_ws(p);
        }
        uint32_t child;
        st = parse_value(&child, p, depth + 1);
        if (st != EMBT_OK)
            return st;
        embt__json_value *v = p->doc->values; /* may have moved */
        v[child].key = key;
        v[child].key_len = key_len;
        v[child].key_offset = key_offset;
        if (last == EMBT__JSON_NONE)
            v[index].first_child = child;
        else
            v[last].next = child;
        last = child;
        v[index].n_children++;
        skip_ws(p);
        if (p->pos >= p->len)
            return fail(p, open, "unterminated %s", object ? "object" : "array");
        uint8_t c = p->text[p->pos];
        if (c == ',') {
            p->pos++;
            skip_ws(p);
            continue;
        }
        if (c == (uint8_t)close) {
            p->pos++;
            return object ? check_duplicates(p, index) : EMBT_OK;
        }
        return fail(p, p->pos, "expected ',' or '%c'", close);
    }
}

static embt_status parse_literal(parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->text + p->pos, word, n) != 0)
        return fail(p, p->pos, "unexpected character");
    p->pos += n;
    return EMBT_OK;
}

static embt_status parse_value(uint32_t *index_out, parser *p, uint32_t depth)
{
    if (p->pos >= p->len)
        return fail(p, p->pos, "unexpected end of json");
    uint8_t c = p->text[p->pos];
    embt__json_kind kind;
    switch (c) {
    case '{': kind = EMBT__JSON_OBJECT; break;
    case '[': kind = EMBT__JSON_ARRAY; break;
    case '"': kind = EMBT__JSON_STRING; break;
    case 't': kind = EMBT__JSON_TRUE; break;
    case 'f': kind = EMBT__JSON_FALSE; break;
    case 'n': kind = EMBT__JSON_NULL; break;
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            kind = EMBT__JSON_INT;
            break;
        }
        return fail(p, p->pos, "unexpected character");
    }
    uint32_t index = 0;
    embt_status st = new_value(&index, p, kind);
    if (st != EMBT_OK)
        return st;
    *index_out = index;
    switch (kind) {
    case EMBT__JSON_OBJECT: return parse_container(index, p, depth, true);
    case EMBT__JSON_ARRAY: return parse_container(index, p, depth, false);
    case EMBT__JSON_STRING: {
        const char *s;
        size_t n;
        st = parse_string(&s, &n, p);
        if (st == EMBT_OK) {
            p->doc->values[index].str = s;
            p->doc->values[index].len = n;
        }
        return st;
    }
    case EMBT__JSON_INT: return parse_number(&p->doc->values[index].integer, p);
    case EMBT__JSON_TRUE: return parse_literal(p, "true");
    case EMBT__JSON_FALSE: return parse_literal(p, "false");
    case EMBT__JSON_NULL: return parse_literal(p, "null");
    }
    return EMBT_OK;
}

embt_status embt__json_parse(embt__json *out, const uint8_t *text, size_t len, uint64_t base,
                             uint32_t depth_max, size_t values_max)
{
    EMBT_CHECK_ARG(out != NULL);
    EMBT_CHECK_ARG(text != NULL || len == 0);
    memset(out, 0, sizeof *out);
    parser p = {text, len, 0, base, depth_max, values_max, out, 0, 0};
    embt_status st;
    size_t bad = 0;
    if (!embt__utf8_valid(text, len, &bad)) {
        st = embt__error(EMBT_EPARSE, base + bad, "header", 0, "invalid utf-8 (or nul) in json");
        goto done;
    }
    if (values_max > len)
        p.values_max = len; /* every value takes at least one byte */
    if (p.values_max > EMBT__JSON_NONE - 1)
        p.values_max = EMBT__JSON_NONE - 1;
    out->strings = embt__malloc(len + 1);
    if (!out->strings) {
        st = embt__error_nomem();
        goto done;
    }
    skip_ws(&p);
    uint32_t root;
    st = parse_value(&root, &p, 0);
    if (st != EMBT_OK)
        goto done;
    skip_ws(&p);
    if (p.pos != len)
        st = fail(&p, p.pos, "unexpected data after the json value");
done:
    if (st != EMBT_OK)
        embt__json_free(out);
    return st;
}

void embt__json_free(embt__json *doc)
{
    if (!doc)
        return;
    embt__free(doc->values);
    embt__free(doc->strings);
    memset(doc, 0, sizeof *doc);
}

const embt__json_value *embt__json_first(const embt__json *doc, const embt__json_value *v)
{
    if (!v || v->first_child == EMBT__JSON_NONE)
        return NULL;
    return &doc->values[v->first_child];
}

const embt__json_value *embt__json_next(const embt__json *doc, const embt__json_value *v)
{
    if (!v || v->next == EMBT__JSON_NONE)
        return NULL;
    return &doc->values[v->next];
}

const embt__json_value *embt__json_get(const embt__json *doc, const embt__json_value *object,
                                       const char *key)
{
    if (!object || object->kind != EMBT__JSON_OBJECT)
        return NULL;
    size_t n = strlen(key);
    for (const embt__json_value *m = embt__json_first(doc, object); m; m = embt__json_next(doc, m))
        if (m->key_len == n && memcmp(m->key, key, n) == 0)
            return m;
    return NULL;
}
