/* meta.c: the METADATA YAML document as a small tree (mappings, sequences, scalars kept as text),
 * parsed from libyaml events and emitted through libyaml's emitter. Invariants: the root is NULL (an
 * empty document) or a mapping; keys are unique byte strings within a mapping; nesting is at most
 * META_DEPTH_MAX deep, so the recursive free and emit below are bounded; no anchors or aliases. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <yaml.h>

#include "internal.h"

/* Nesting cap: keeps the recursion of free/emit bounded on hostile input (spec/FORMAT.md 4.5 does
 * not need deep documents: groups are one or two levels). */
#define META_DEPTH_MAX 64

typedef enum node_kind { NODE_SCALAR, NODE_MAP, NODE_SEQ } node_kind;

typedef struct node node;

typedef struct pair {
    char *key; /* NUL-terminated, key_len bytes (may hold NUL from a "\0" escape) */
    size_t key_len;
    node *value;   /* NULL only while the parser waits for the value */
    uint32_t line; /* 1-based position of the key, for the duplicate-key error */
    uint32_t column;
} pair;

struct node {
    node_kind kind;
    yaml_scalar_style_t style; /* scalars: the source style, kept so quoting survives a rewrite */
    char *text;                /* scalars: NUL-terminated, len bytes */
    size_t len;
    pair *pairs;  /* mappings */
    node **items; /* sequences */
    size_t n;     /* pairs or items in use */
    size_t cap;
};

struct embt_meta {
    node *root;    /* NULL: empty document */
    char *emitted; /* cache of embt_meta_emit(), dropped on every change */
    size_t emitted_len;
    size_t emitted_cap;
    bool emitted_valid;
};

static void node_free(node *nd)
{
    if (!nd)
        return;
    embt__free(nd->text);
    for (size_t i = 0; i < nd->n; i++) {
        if (nd->kind == NODE_MAP) {
            embt__free(nd->pairs[i].key);
            node_free(nd->pairs[i].value);
        } else if (nd->kind == NODE_SEQ) {
            node_free(nd->items[i]);
        }
    }
    embt__free(nd->pairs);
    embt__free(nd->items);
    embt__free(nd);
}

static node *node_new(node_kind kind)
{
    node *nd = embt__calloc(1, sizeof *nd);
    if (nd)
        nd->kind = kind;
    return nd;
}

/* Makes room for one more pair or item. */
static embt_status node_reserve(node *nd)
{
    if (nd->n < nd->cap)
        return EMBT_OK;
    size_t cap = nd->cap ? nd->cap * 2 : 4;
    if (nd->kind == NODE_MAP) {
        pair *p = embt__realloc(nd->pairs, cap * sizeof *p);
        if (!p)
            return embt__error_nomem();
        nd->pairs = p;
    } else {
        node **p = embt__realloc(nd->items, cap * sizeof *p);
        if (!p)
            return embt__error_nomem();
        nd->items = p;
    }
    nd->cap = cap;
    return EMBT_OK;
}

static void drop_emitted(embt_meta *meta)
{
    meta->emitted_valid = false;
}

embt_status embt_meta_new(embt_meta **out)
{
    EMBT_CHECK_ARG(out);
    *out = embt__calloc(1, sizeof **out);
    if (!*out)
        return embt__error_nomem();
    return EMBT_OK;
}

void embt_meta_free(embt_meta *meta)
{
    if (!meta)
        return;
    node_free(meta->root);
    embt__free(meta->emitted);
    embt__free(meta);
}

/* ---- parsing ------------------------------------------------------------------------------------ */

typedef struct key_ref {
    const char *key;
    size_t len;
    size_t index;
} key_ref;

static int key_ref_cmp(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index ? 1 : 0);
}

/* Duplicate keys, found by sorting (a linear scan per key would be quadratic on a 16 MiB mapping).
 * Reports the duplicate that comes first in the document. */
static embt_status check_duplicates(const node *map)
{
    if (map->n < 2)
        return EMBT_OK;
    key_ref *refs = embt__malloc(map->n * sizeof *refs);
    if (!refs)
        return embt__error_nomem();
    for (size_t i = 0; i < map->n; i++)
        refs[i] = (key_ref){map->pairs[i].key, map->pairs[i].key_len, i};
    qsort(refs, map->n, sizeof *refs, key_ref_cmp);
    size_t dup = SIZE_MAX;
    for (size_t i = 1; i < map->n; i++)
        if (refs[i].len == refs[i - 1].len &&
            memcmp(refs[i].key, refs[i - 1].key, refs[i].len) == 0 && refs[i].index < dup)
            dup = refs[i].index;
    embt__free(refs);
    if (dup == SIZE_MAX)
        return EMBT_OK;
    const pair *p = &map->pairs[dup];
    return embt__error_parse(p->line, p->column, EMBT_NO_OFFSET, "duplicate key %.64s", p->key);
}

/* Line and column (1-based, in characters) of byte `offset`: libyaml's reader errors give only the
 * byte offset. */
static void position_of(uint32_t *line_out, uint32_t *column_out, const char *yaml, size_t len,
                        size_t offset)
{
    uint32_t line = 1, column = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (yaml[i] == '\n') {
            line++;
            column = 1;
        } else if (((unsigned char)yaml[i] & 0xC0) != 0x80) {
            column++;
        }
    }
    *line_out = line;
    *column_out = column;
}

static embt_status parser_failure(const yaml_parser_t *parser, const char *yaml, size_t len)
{
    if (parser->error == YAML_MEMORY_ERROR)
        return embt__error_nomem();
    const char *problem = parser->problem ? parser->problem : "invalid yaml";
    if (parser->error == YAML_READER_ERROR) {
        uint32_t line, column;
        position_of(&line, &column, yaml, len, parser->problem_offset);
        return embt__error_parse(line, column, parser->problem_offset, "%s", problem);
    }
    /* libyaml marks are 0-based */
    uint32_t line = (uint32_t)parser->problem_mark.line + 1;
    uint32_t column = (uint32_t)parser->problem_mark.column + 1;
    if (parser->context)
        return embt__error_parse(line, column, EMBT_NO_OFFSET, "%s %s", problem, parser->context);
    return embt__error_parse(line, column, EMBT_NO_OFFSET, "%s", problem);
}

static embt_status mark_error(const yaml_mark_t *mark, const char *message)
{
    return embt__error_parse((uint32_t)mark->line + 1, (uint32_t)mark->column + 1, EMBT_NO_OFFSET,
                             "%s", message);
}

/* Builder state: the open collections, innermost last. */
typedef struct builder {
    node *stack[META_DEPTH_MAX];
    size_t depth;
    node *root;
    bool root_done; /* a root node has been seen */
    bool doc_seen;  /* a document has started */
} builder;

/* Attaches a scalar (text) or a new collection (kind) to the innermost open collection. */
static embt_status add_node(builder *b, const yaml_event_t *ev)
{
    const yaml_mark_t *mark = &ev->start_mark;
    bool is_scalar = ev->type == YAML_SCALAR_EVENT;
    node_kind kind =
        is_scalar ? NODE_SCALAR : (ev->type == YAML_MAPPING_START_EVENT ? NODE_MAP : NODE_SEQ);
    const yaml_char_t *anchor = is_scalar          ? ev->data.scalar.anchor
                                : kind == NODE_MAP ? ev->data.mapping_start.anchor
                                                   : ev->data.sequence_start.anchor;
    if (anchor)
        return mark_error(mark, "anchors are not allowed");

    if (b->depth == 0) {
        if (b->root_done)
            return mark_error(mark, "more than one root node");
        b->root_done = true;
        if (is_scalar) {
            /* "---" alone (an empty plain scalar) is an empty document */
            if (ev->data.scalar.length == 0 && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
                return EMBT_OK;
            return mark_error(mark, "root is a scalar, expected a mapping");
        }
        if (kind == NODE_SEQ)
            return mark_error(mark, "root is a sequence, expected a mapping");
    }

    node *parent = b->depth ? b->stack[b->depth - 1] : NULL;
    bool is_key = parent && parent->kind == NODE_MAP &&
                  (parent->n == 0 || parent->pairs[parent->n - 1].value != NULL);
    if (is_key) {
        if (!is_scalar)
            return mark_error(mark, "mapping key is not a scalar");
        embt_status st = node_reserve(parent);
        if (st)
            return st;
        char *key = embt__strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
        if (!key)
            return embt__error_nomem();
        parent->pairs[parent->n++] = (pair){key, ev->data.scalar.length, NULL,
                                            (uint32_t)mark->line + 1, (uint32_t)mark->column + 1};
        return EMBT_OK;
    }

    if (!is_scalar && b->depth >= META_DEPTH_MAX) {
        embt__error_parse((uint32_t)mark->line + 1, (uint32_t)mark->column + 1, EMBT_NO_OFFSET,
                          "nesting depth exceeds %d", META_DEPTH_MAX);
        embt__error_record()->code = EMBT_ELIMIT;
        return EMBT_ELIMIT;
    }
    if (parent && parent->kind == NODE_SEQ) {
        embt_status st = node_reserve(parent);
        if (st)
            return st;
    }
    node *nd = node_new(kind);
    if (!nd)
        return embt__error_nomem();
    if (is_scalar) {
        nd->style = ev->data.scalar.style;
        nd->len = ev->data.scalar.length;
        nd->text = embt__strndup((const char *)ev->data.scalar.value, nd->len);
        if (!nd->text) {
            embt__free(nd);
            return embt__error_nomem();
        }
    }
    /* attach at once, so freeing the root frees everything on any later failure */
    if (!parent)
        b->root = nd;
    else if (parent->kind == NODE_SEQ)
        parent->items[parent->n++] = nd;
    else
        parent->pairs[parent->n - 1].value = nd;
    if (!is_scalar)
        b->stack[b->depth++] = nd;
    return EMBT_OK;
}

static embt_status handle_event(builder *b, const yaml_event_t *ev, bool *done)
{
    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_NO_EVENT: return EMBT_OK;
    case YAML_STREAM_END_EVENT: *done = true; return EMBT_OK;
    case YAML_DOCUMENT_START_EVENT:
        if (b->doc_seen)
            return mark_error(&ev->start_mark, "more than one document");
        b->doc_seen = true;
        return EMBT_OK;
    case YAML_ALIAS_EVENT: return mark_error(&ev->start_mark, "aliases are not allowed");
    case YAML_SCALAR_EVENT:
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT: return add_node(b, ev);
    case YAML_MAPPING_END_EVENT: {
        node *map = b->stack[--b->depth];
        return check_duplicates(map);
    }
    case YAML_SEQUENCE_END_EVENT: b->depth--; return EMBT_OK;
    }
    return EMBT_OK;
}

embt_status embt_meta_parse(embt_meta **out, const char *yaml, size_t len)
{
    EMBT_CHECK_ARG(out);
    *out = NULL;
    EMBT_CHECK_ARG(yaml || len == 0);
    if (len > EMBT__METADATA_MAX)
        return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0, "metadata length %zu exceeds %u",
                           len, (unsigned)EMBT__METADATA_MAX);
    /* spec/FORMAT.md 4.5: UTF-8 without BOM (libyaml would skip one silently) */
    if (len >= 3 && memcmp(yaml, "\xEF\xBB\xBF", 3) == 0)
        return embt__error_parse(1, 1, 0, "byte order mark is not allowed");

    embt_meta *meta = NULL;
    builder b = {0};
    yaml_parser_t parser;
    bool parser_ready = false;
    embt_status st = EMBT_OK;

    if (!yaml_parser_initialize(&parser)) {
        st = embt__error_nomem();
        goto done;
    }
    parser_ready = true;
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    yaml_parser_set_input_string(&parser, (const unsigned char *)(yaml ? yaml : ""), len);

    for (bool finished = false; !finished;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            st = parser_failure(&parser, yaml, len);
            goto done;
        }
        st = handle_event(&b, &ev, &finished);
        yaml_event_delete(&ev);
        if (st)
            goto done;
    }

    st = embt_meta_new(&meta);
    if (st)
        goto done;
    meta->root = b.root;
    b.root = NULL;
    *out = meta;

done:
    if (parser_ready)
        yaml_parser_delete(&parser);
    node_free(b.root);
    return st;
}

/* ---- paths -------------------------------------------------------------------------------------- */

static pair *map_find(const node *map, const char *key, size_t len)
{
    for (size_t i = 0; i < map->n; i++)
        if (map->pairs[i].key_len == len && memcmp(map->pairs[i].key, key, len) == 0)
            return &map->pairs[i];
    return NULL;
}

/* The next segment of a dotted path starting at *p; advances *p past it and its dot. */
static size_t next_segment(const char **p)
{
    const char *s = *p;
    const char *dot = strchr(s, '.');
    size_t n = dot ? (size_t)(dot - s) : strlen(s);
    *p = dot ? dot + 1 : s + n;
    return n;
}

/* A dotted path: non-empty segments, at most META_DEPTH_MAX of them. */
static bool path_well_formed(const char *path)
{
    if (!path || !*path || *path == '.' || path[strlen(path) - 1] == '.' || strstr(path, ".."))
        return false;
    size_t segments = 1;
    for (const char *s = path; *s; s++)
        segments += *s == '.';
    return segments <= META_DEPTH_MAX;
}

static embt_status bad_path(const char *key_path)
{
    return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                       "key path %.64s is empty, has an empty segment or more than %d segments",
                       key_path ? key_path : "", META_DEPTH_MAX);
}

embt_status embt_meta_get(const char **value_out, size_t *len_out, const embt_meta *meta,
                          const char *key_path)
{
    EMBT_CHECK_ARG(value_out);
    *value_out = NULL;
    if (len_out)
        *len_out = 0;
    EMBT_CHECK_ARG(meta);
    if (!path_well_formed(key_path))
        return bad_path(key_path);
    const node *cur = meta->root;
    for (const char *s = key_path;;) {
        const char *seg = s;
        size_t n = next_segment(&s);
        const pair *p = cur && cur->kind == NODE_MAP ? map_find(cur, seg, n) : NULL;
        if (!p)
            return embt__error(EMBT_ENOTFOUND, EMBT_NO_OFFSET, NULL, 0, "key %.128s not found",
                               key_path);
        cur = p->value;
        if (seg[n] == '\0')
            break;
    }
    if (cur->kind != NODE_SCALAR)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "key %.128s is a %s, not a scalar",
                           key_path, cur->kind == NODE_MAP ? "mapping" : "sequence");
    *value_out = cur->text;
    if (len_out)
        *len_out = cur->len;
    return EMBT_OK;
}

/* The value node for the segments `rest` (NULL or "" when none): new nested mappings, one per
 * segment, with the scalar `value` at the bottom. Built bottom-up; nothing is attached on failure. */
static embt_status build_chain(node **out, const char *rest, const char *value)
{
    *out = NULL;
    node *child = node_new(NODE_SCALAR);
    if (!child)
        return embt__error_nomem();
    child->style = YAML_ANY_SCALAR_STYLE;
    child->len = strlen(value);
    child->text = embt__strndup(value, child->len);
    if (!child->text) {
        node_free(child);
        return embt__error_nomem();
    }
    const char *end = rest ? rest + strlen(rest) : NULL;
    while (rest && end > rest) {
        const char *start = end;
        while (start > rest && start[-1] != '.')
            start--;
        node *map = node_new(NODE_MAP);
        char *key = map ? embt__strndup(start, (size_t)(end - start)) : NULL;
        if (!key || node_reserve(map) != EMBT_OK) {
            embt__free(key);
            node_free(map);
            node_free(child);
            return embt__error_nomem();
        }
        map->pairs[map->n++] = (pair){key, (size_t)(end - start), child, 0, 0};
        child = map;
        end = start > rest ? start - 1 : start;
    }
    *out = child;
    return EMBT_OK;
}

embt_status embt_meta_set(embt_meta *meta, const char *key_path, const char *value)
{
    EMBT_CHECK_ARG(meta);
    EMBT_CHECK_ARG(value);
    if (!path_well_formed(key_path))
        return bad_path(key_path);
    if (!embt__utf8_valid((const uint8_t *)key_path, strlen(key_path), NULL))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "key path is not valid utf-8");
    if (!embt__utf8_valid((const uint8_t *)value, strlen(value), NULL))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "value is not valid utf-8");

    embt_status st = EMBT_OK;
    node *new_root = NULL;
    if (!meta->root) {
        new_root = node_new(NODE_MAP);
        if (!new_root)
            return embt__error_nomem();
    }
    node *cur = meta->root ? meta->root : new_root;
    const char *s = key_path;
    for (;;) {
        const char *seg = s;
        size_t n = next_segment(&s);
        bool last = seg[n] == '\0';
        pair *p = map_find(cur, seg, n);
        if (p && last) {
            if (p->value->kind != NODE_SCALAR) {
                st = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "key %.128s is a %s",
                                 key_path, p->value->kind == NODE_MAP ? "mapping" : "sequence");
                goto done;
            }
            size_t len = strlen(value);
            char *text = embt__strndup(value, len);
            if (!text) {
                st = embt__error_nomem();
                goto done;
            }
            embt__free(p->value->text);
            p->value->text = text;
            p->value->len = len;
            p->value->style = YAML_ANY_SCALAR_STYLE;
            break;
        }
        if (p) {
            if (p->value->kind != NODE_MAP) {
                st = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "key %.*s in %.128s is a %s",
                                 (int)(n > 64 ? 64 : n), seg, key_path,
                                 p->value->kind == NODE_SCALAR ? "scalar" : "sequence");
                goto done;
            }
            cur = p->value;
            continue;
        }
        /* absent: build the rest of the path, then insert it with a single append */
        node *chain = NULL;
        char *key = NULL;
        st = node_reserve(cur);
        if (!st)
            st = build_chain(&chain, last ? NULL : s, value);
        if (!st && !(key = embt__strndup(seg, n)))
            st = embt__error_nomem();
        if (st) {
            node_free(chain);
            goto done;
        }
        cur->pairs[cur->n++] = (pair){key, n, chain, 0, 0};
        break;
    }
    if (new_root) {
        meta->root = new_root;
        new_root = NULL;
    }
    drop_emitted(meta);

done:
    node_free(new_root);
    return st;
}

/* ---- emitting ----------------------------------------------------------------------------------- */

static int write_handler(void *data, unsigned char *buffer, size_t size)
{
    embt_meta *meta = data;
    size_t need = meta->emitted_len + size + 1;
    if (need > meta->emitted_cap) {
        size_t cap = meta->emitted_cap ? meta->emitted_cap : 256;
        while (cap < need)
            cap *= 2;
        char *p = embt__realloc(meta->emitted, cap);
        if (!p)
            return 0;
        meta->emitted = p;
        meta->emitted_cap = cap;
    }
    memcpy(meta->emitted + meta->emitted_len, buffer, size);
    meta->emitted_len += size;
    meta->emitted[meta->emitted_len] = '\0';
    return 1;
}

static bool emit_scalar(yaml_emitter_t *em, const char *text, size_t len, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)len, 1, 1, style))
        return false;
    return yaml_emitter_emit(em, &ev) != 0;
}

static bool emit_node(yaml_emitter_t *em, const node *nd)
{
    yaml_event_t ev;
    if (nd->kind == NODE_SCALAR)
        return emit_scalar(em, nd->text, nd->len, nd->style);
    if (nd->kind == NODE_MAP) {
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
            !yaml_emitter_emit(em, &ev))
            return false;
        for (size_t i = 0; i < nd->n; i++)
            if (!emit_scalar(em, nd->pairs[i].key, nd->pairs[i].key_len, YAML_ANY_SCALAR_STYLE) ||
                !emit_node(em, nd->pairs[i].value))
                return false;
        return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(em, &ev);
    }
    if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
        !yaml_emitter_emit(em, &ev))
        return false;
    for (size_t i = 0; i < nd->n; i++)
        if (!emit_node(em, nd->items[i]))
            return false;
    return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(em, &ev);
}

embt_status embt_meta_emit(const char **text_out, size_t *len_out, embt_meta *meta)
{
    EMBT_CHECK_ARG(text_out);
    *text_out = NULL;
    if (len_out)
        *len_out = 0;
    EMBT_CHECK_ARG(meta);
    if (meta->emitted_valid)
        goto out;

    meta->emitted_len = 0;
    if (meta->emitted)
        meta->emitted[0] = '\0';
    if (!meta->root) {
        meta->emitted_valid = true;
        goto out;
    }

    yaml_emitter_t em;
    if (!yaml_emitter_initialize(&em))
        return embt__error_nomem();
    yaml_emitter_set_output(&em, write_handler, meta);
    yaml_emitter_set_encoding(&em, YAML_UTF8_ENCODING);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1); /* never fold long values */
    yaml_emitter_set_indent(&em, 2);
    yaml_emitter_set_break(&em, YAML_LN_BREAK);

    yaml_event_t ev;
    bool ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
              yaml_emitter_emit(&em, &ev) &&
              yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
              yaml_emitter_emit(&em, &ev) && emit_node(&em, meta->root) &&
              yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&em, &ev) &&
              yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&em, &ev) &&
              yaml_emitter_flush(&em);
    embt_status st = EMBT_OK;
    if (!ok) {
        if (em.error == YAML_MEMORY_ERROR || em.error == YAML_WRITER_ERROR ||
            em.error == YAML_NO_ERROR)
            st = embt__error_nomem();
        else
            st = embt__error(EMBT_ERROR, EMBT_NO_OFFSET, NULL, 0, "yaml emitter: %s",
                             em.problem ? em.problem : "unknown problem");
    }
    yaml_emitter_delete(&em);
    if (st) {
        meta->emitted_len = 0;
        return st;
    }
    meta->emitted_valid = true;

out:
    *text_out = meta->emitted ? meta->emitted : "";
    if (len_out)
        *len_out = meta->emitted_len;
    return EMBT_OK;
}

/* ---- numbers (internal.h) ---- */

embt_status embt__meta_set_u64(embt_meta *meta, const char *key, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return embt_meta_set(meta, key, buf);
}

embt_status embt__meta_set_f64(embt_meta *meta, const char *key, double v)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", v);
    return embt_meta_set(meta, key, buf);
}

embt_status embt__meta_get_u64(uint64_t *out, const embt_meta *meta, const char *key, bool strict)
{
    const char *s;
    embt_status st = embt_meta_get(&s, NULL, meta, key);
    if (st)
        return st;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || (strict && (errno || s[0] < '0' || s[0] > '9'))) /* " -1" too */
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "metadata %s: not an integer",
                           key);
    *out = (uint64_t)v;
    return EMBT_OK;
}

embt_status embt__meta_get_f64(double *out, const embt_meta *meta, const char *key)
{
    const char *s;
    embt_status st = embt_meta_get(&s, NULL, meta, key);
    if (st)
        return st;
    char *end;
    *out = strtod(s, &end);
    if (end == s || *end)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "metadata %s: not a number", key);
    return EMBT_OK;
}
