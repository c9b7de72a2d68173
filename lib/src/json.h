/* json.h: a small strict JSON parser (RFC 8259) for the headers of binary inputs (safetensors).
 * It accepts objects, arrays, strings (every escape, \u surrogate pairs decoded to UTF-8), true,
 * false, null and non-negative integers up to 2^64 - 1; it rejects fractions, exponents, negative
 * numbers, duplicate keys, invalid UTF-8 and anything after the value but whitespace. Every value
 * records the absolute byte offset of its first byte, so callers can report where a problem is.
 * Never installed. */
#ifndef EMBT_JSON_H
#define EMBT_JSON_H

#include "internal.h"

typedef enum embt__json_kind {
    EMBT__JSON_NULL = 0,
    EMBT__JSON_FALSE,
    EMBT__JSON_TRUE,
    EMBT__JSON_INT,
    EMBT__JSON_STRING,
    EMBT__JSON_ARRAY,
    EMBT__JSON_OBJECT
} embt__json_kind;

#define EMBT__JSON_NONE UINT32_MAX

/* One value. Children of an array or object are a list: first_child, then next. */
typedef struct embt__json_value {
    uint64_t offset;     /* absolute offset of the value's first byte */
    uint64_t key_offset; /* object members: absolute offset of the key's opening quote */
    uint64_t integer;    /* EMBT__JSON_INT */
    const char *str;     /* EMBT__JSON_STRING: decoded bytes, NUL-terminated (may hold NUL) */
    size_t len;          /* bytes at str */
    const char *key;     /* object members: decoded key, NUL-terminated (may hold NUL) */
    size_t key_len;
    uint32_t n_children;  /* arrays and objects */
    uint32_t first_child; /* index or EMBT__JSON_NONE */
    uint32_t next;        /* next sibling or EMBT__JSON_NONE */
    embt__json_kind kind;
} embt__json_value;

/* A parsed document: values[0] is the root. Owns every string it points to. */
typedef struct embt__json {
    embt__json_value *values;
    size_t n_values;
    char *strings; /* arena of decoded strings */
} embt__json;

#define EMBT__JSON_DEPTH_MAX 64u

/* Parses `len` bytes at `text` whose first byte is at absolute offset `base` of the input (the
 * offsets in values and errors include it). At most `depth_max` nested arrays/objects and
 * `values_max` values. Errors (record: offset, section "header"): EMBT_EPARSE (not such JSON),
 * EMBT_ELIMIT (nesting or value count over the caps), EMBT_ENOMEM. On failure *out is empty. */
embt_status embt__json_parse(embt__json *out, const uint8_t *text, size_t len, uint64_t base,
                             uint32_t depth_max, size_t values_max);
/* Frees what embt__json_parse() allocated; an empty or failed document is fine. */
void embt__json_free(embt__json *doc);

/* The first child of an array or object, the next sibling, or NULL. */
const embt__json_value *embt__json_first(const embt__json *doc, const embt__json_value *v);
const embt__json_value *embt__json_next(const embt__json *doc, const embt__json_value *v);
/* The member of `object` whose key is the NUL-terminated `key`, or NULL. */
const embt__json_value *embt__json_get(const embt__json *doc, const embt__json_value *object,
                                       const char *key);
/* "null", "false", "true", "integer", "string", "array" or "object". Static string. */
const char *embt__json_kind_name(embt__json_kind kind);

#endif
