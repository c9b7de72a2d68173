/* fuzz_json.c: libFuzzer target for the strict JSON parser of safetensors headers (lib/src/json.h)
 * alone. The input is the JSON text; the caps on nesting and value count come from its length, as
 * does the base offset. A failure must be EMBT_EPARSE or EMBT_ELIMIT with an offset inside the text.
 * A success must give a consistent tree (children lists as counted, offsets inside the text and
 * increasing in document order, strings NUL-terminated and valid UTF-8, keys unique and found by
 * embt__json_get), and re-serialising the tree and parsing that again must give the same tree. */
#include <stdbool.h>

#include "fuzz_common.h"
#include "json.h"

/* Valid UTF-8 allowing NUL (a \u0000 escape): embt__utf8_valid on each run between NULs. */
static bool utf8_ok(const char *s, size_t n)
{
    size_t start = 0, bad;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '\0')
            continue;
        if (!embt__utf8_valid((const uint8_t *)s + start, i - start, &bad))
            return false;
        start = i + 1;
    }
    return true;
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        FZ_CHECK(b->p != NULL, "out of memory");
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void put_string(sbuf *b, const char *s, size_t n)
{
    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\') {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(b, esc, 6);
        } else {
            put(b, s + i, 1);
        }
    }
    put(b, "\"", 1);
}

/* Writes v as compact JSON; checks the tree on the way. */
static void emit(sbuf *b, const embt__json *doc, const embt__json_value *v, uint64_t lo,
                 uint64_t hi, size_t depth)
{
    FZ_CHECK(depth <= EMBT__JSON_DEPTH_MAX + 1, "tree deeper than any cap");
    FZ_CHECK(v->offset >= lo && v->offset < hi, "value offset %llu outside [%llu, %llu)",
             (unsigned long long)v->offset, (unsigned long long)lo, (unsigned long long)hi);
    char num[32];
    switch (v->kind) {
    case EMBT__JSON_NULL: put(b, "null", 4); break;
    case EMBT__JSON_FALSE: put(b, "false", 5); break;
    case EMBT__JSON_TRUE: put(b, "true", 4); break;
    case EMBT__JSON_INT:
        put(b, num, (size_t)snprintf(num, sizeof num, "%llu", (unsigned long long)v->integer));
        break;
    case EMBT__JSON_STRING:
        FZ_CHECK(v->str != NULL && v->str[v->len] == '\0', "string not NUL-terminated");
        FZ_CHECK(utf8_ok(v->str, v->len), "decoded string is not UTF-8");
        put_string(b, v->str, v->len);
        break;
    case EMBT__JSON_ARRAY:
    case EMBT__JSON_OBJECT: {
        bool obj = v->kind == EMBT__JSON_OBJECT;
        put(b, obj ? "{" : "[", 1);
        uint32_t n = 0;
        uint64_t last = v->offset;
        for (const embt__json_value *c = embt__json_first(doc, v); c; c = embt__json_next(doc, c)) {
            FZ_CHECK(c->offset > last, "children out of document order");
            last = c->offset;
            if (n++)
                put(b, ",", 1);
            if (obj) {
                FZ_CHECK(c->key != NULL && c->key[c->key_len] == '\0', "key not NUL-terminated");
                FZ_CHECK(utf8_ok(c->key, c->key_len), "decoded key is not UTF-8");
                FZ_CHECK(c->key_offset > v->offset && c->key_offset < c->offset, "key offset %llu",
                         (unsigned long long)c->key_offset);
                for (const embt__json_value *e = embt__json_first(doc, v); e != c;
                     e = embt__json_next(doc, e))
                    FZ_CHECK(e->key_len != c->key_len || memcmp(e->key, c->key, c->key_len) != 0,
                             "duplicate key accepted");
                if (strlen(c->key) == c->key_len)
                    FZ_CHECK(embt__json_get(doc, v, c->key) == c, "get does not find its key");
                put_string(b, c->key, c->key_len);
                put(b, ":", 1);
            }
            emit(b, doc, c, v->offset + 1, hi, depth + 1);
            FZ_CHECK(n <= v->n_children, "more children than counted");
        }
        FZ_CHECK(n == v->n_children, "%u children, %u counted", n, v->n_children);
        put(b, obj ? "}" : "]", 1);
        break;
    }
    default: FZ_CHECK(0, "kind %d", (int)v->kind);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t depth = size % 3 == 0 ? 3 : EMBT__JSON_DEPTH_MAX;
    size_t values_max = size % 5 == 0 ? 8 : 1u << 20;
    uint64_t base = size % 2 ? 8 : 0;
    uint8_t *text = fz_copy(data, size);
    embt__json doc;
    memset(&doc, 0x5A, sizeof doc);
    embt_status st = embt__json_parse(&doc, text, size, base, depth, values_max);
    if (st != EMBT_OK) {
        FZ_CHECK(st == EMBT_EPARSE || st == EMBT_ELIMIT, "parse failed with %s",
                 embt_status_name(st));
        FZ_CHECK(st == embt_error_last()->code, "status and error record disagree");
        uint64_t at = embt_error_last()->offset;
        FZ_CHECK(at >= base && at <= base + size, "error offset %llu outside the text",
                 (unsigned long long)at);
        FZ_CHECK(doc.values == NULL && doc.n_values == 0 && doc.strings == NULL,
                 "a failed parse left a document");
        embt__json_free(&doc);
        free(text);
        return 0;
    }
    FZ_CHECK(doc.n_values >= 1 && doc.n_values <= values_max, "%zu values", doc.n_values);
    sbuf a = {NULL, 0, 0}, b = {NULL, 0, 0};
    emit(&a, &doc, &doc.values[0], base, base + size, 0);
    embt__json again;
    st = embt__json_parse(&again, (const uint8_t *)a.p, a.len, 0, EMBT__JSON_DEPTH_MAX, 1u << 20);
    FZ_CHECK(st == EMBT_OK, "the re-serialised document does not parse: %.200s", a.p);
    FZ_CHECK(again.n_values == doc.n_values, "%zu values, then %zu", doc.n_values, again.n_values);
    emit(&b, &again, &again.values[0], 0, a.len, 0);
    FZ_CHECK(a.len == b.len && memcmp(a.p, b.p, a.len) == 0, "re-serialising changed the tree");
    embt__json_free(&again);
    embt__json_free(&doc);
    embt__json_free(&doc); /* freeing twice is fine: the document is emptied */
    free(a.p);
    free(b.p);
    free(text);
    return 0;
}
