/* test_conformance.c: runs the conformance corpus of format/ through the reader. Every format/valid sample must
 * open, verify and decode exactly as its .yaml says (tokens, ids, f32 bit patterns, counts, norms, metadata);
 * every format/invalid sample must fail with exactly the status, rule and offset its .yaml gives. Truncated and
 * byte-flipped copies of small valid samples must fail cleanly. The samples are found at run time under
 * $EMBT_SOURCE_DIR/format; format/README.md describes the YAML schema. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include <zlib.h>

#include "embt/embt.h"

/* ---- files and directories ---- */

static char *corpus_path(const char *sub, const char *name)
{
    const char *src = getenv("EMBT_SOURCE_DIR");
    cr_assert(src != NULL, "EMBT_SOURCE_DIR is not set");
    size_t n = strlen(src) + strlen(sub) + (name ? strlen(name) : 0) + 16;
    char *p = malloc(n);
    cr_assert(p != NULL);
    snprintf(p, n, "%s/format/%s%s%s", src, sub, name ? "/" : "", name ? name : "");
    return p;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted stems of the *.embt files in format/<sub>; *n_out of them. */
static char **list_samples(const char *sub, size_t *n_out)
{
    char *dir = corpus_path(sub, NULL);
    DIR *d = opendir(dir);
    cr_assert(d != NULL, "cannot open %s", dir);
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".embt") == 0) {
            names = realloc(names, (n + 1) * sizeof *names);
            cr_assert(names != NULL);
            names[n] = strndup(e->d_name, len - 5);
            n++;
        }
    }
    closedir(d);
    free(dir);
    qsort(names, n, sizeof *names, cmp_names);
    *n_out = n;
    return names;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static unsigned char *read_all(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f != NULL, "cannot open %s", path);
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? 2 * cap : 65536;
            buf = realloc(buf, cap);
            cr_assert(buf != NULL);
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *len_out = len;
    return buf;
}

/* ---- the expected results: YAML through libyaml's document API ---- */

typedef struct expect {
    yaml_document_t doc;
    yaml_node_t *root;
} expect;

static void load_yaml(expect *x, const char *sub, const char *name)
{
    char file[512];
    snprintf(file, sizeof file, "%s.yaml", name);
    char *path = corpus_path(sub, file);
    size_t len;
    unsigned char *text = read_all(path, &len);
    yaml_parser_t p;
    cr_assert(yaml_parser_initialize(&p));
    yaml_parser_set_input_string(&p, text, len);
    cr_assert(yaml_parser_load(&p, &x->doc), "%s: YAML error %s at line %zu", path, p.problem,
              p.problem_mark.line + 1);
    yaml_parser_delete(&p);
    x->root = yaml_document_get_root_node(&x->doc);
    cr_assert(x->root && x->root->type == YAML_MAPPING_NODE, "%s: root is not a mapping", path);
    free(text);
    free(path);
}

static yaml_node_t *get(expect *x, yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&x->doc, p->key);
        if (k->type == YAML_SCALAR_NODE && strlen(key) == k->data.scalar.length &&
            memcmp(k->data.scalar.value, key, k->data.scalar.length) == 0)
            return yaml_document_get_node(&x->doc, p->value);
    }
    return NULL;
}

/* A plain `null` (or an absent key) is "no value"; quoted "null" is a string. */
static bool is_null(yaml_node_t *n)
{
    return n == NULL ||
           (n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
            strcmp((const char *)n->data.scalar.value, "null") == 0);
}

static const char *str(yaml_node_t *n, size_t *len_out)
{
    cr_assert(n && n->type == YAML_SCALAR_NODE);
    if (len_out)
        *len_out = n->data.scalar.length;
    return (const char *)n->data.scalar.value;
}

static uint64_t num(yaml_node_t *n)
{
    return strtoull(str(n, NULL), NULL, 0);
}

static size_t seq_len(yaml_node_t *n)
{
    cr_assert(n && n->type == YAML_SEQUENCE_NODE);
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static yaml_node_t *item(expect *x, yaml_node_t *seq, size_t i)
{
    return yaml_document_get_node(&x->doc, seq->data.sequence.items.start[i]);
}

static uint32_t id_or_none(yaml_node_t *n)
{
    return is_null(n) ? EMBT_NONE_ID : (uint32_t)num(n);
}

/* The expected f32 bit patterns of a table: rows of hex values flattened, or NULL when given as a CRC. */
static uint32_t *flat_bits(expect *x, yaml_node_t *rows, size_t *n_out)
{
    size_t n = 0, cap = 16;
    uint32_t *out = malloc(cap * sizeof *out);
    for (size_t r = 0; r < seq_len(rows); r++) {
        yaml_node_t *row = item(x, rows, r);
        for (size_t c = 0; c < seq_len(row); c++) {
            if (n == cap)
                out = realloc(out, (cap *= 2) * sizeof *out);
            out[n++] = (uint32_t)num(item(x, row, c));
        }
    }
    *n_out = n;
    return out;
}

static uint32_t f32_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

/* CRC-32 of f32 values as little-endian bytes (the YAML's *_crc32 fields). */
static uint32_t crc_f32(const float *v, size_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);
    for (size_t i = 0; i < n; i++) {
        uint32_t b = f32_bits(v[i]);
        unsigned char le[4] = {(unsigned char)b, (unsigned char)(b >> 8), (unsigned char)(b >> 16),
                               (unsigned char)(b >> 24)};
        c = crc32(c, le, 4);
    }
    return (uint32_t)c;
}

static void expect_f32s(const char *sample, const char *what, const float *got, size_t n_got,
                        expect *x, yaml_node_t *list, yaml_node_t *crc_node)
{
    if (crc_node) {
        cr_expect(got != NULL, "%s: %s missing", sample, what);
        if (got)
            cr_expect_eq(crc_f32(got, n_got), (uint32_t)num(crc_node), "%s: %s CRC differs", sample,
                         what);
        return;
    }
    if (is_null(list)) {
        cr_expect(got == NULL, "%s: %s present but not expected", sample, what);
        return;
    }
    cr_expect(got != NULL || seq_len(list) == 0, "%s: %s missing", sample, what);
    cr_expect_eq(seq_len(list), n_got, "%s: %s count %zu, expected %zu", sample, what, n_got,
                 seq_len(list));
    for (size_t i = 0; got && i < seq_len(list) && i < n_got; i++)
        cr_expect_eq(f32_bits(got[i]), (uint32_t)num(item(x, list, i)),
                     "%s: %s[%zu] is 0x%08x, expected %s", sample, what, i, f32_bits(got[i]),
                     str(item(x, list, i), NULL));
}

/* ---- valid samples ---- */

static void check_vocab(const char *sample, expect *x, yaml_node_t *ev, const embt_vocab *v)
{
    size_t len;
    const char *name = str(get(x, ev, "name"), &len);
    cr_expect(strlen(embt_vocab_name(v)) == len && memcmp(embt_vocab_name(v), name, len) == 0,
              "%s: vocab name %s, expected %s", sample, embt_vocab_name(v), name);
    uint32_t size = (uint32_t)num(get(x, ev, "size"));
    cr_expect_eq(embt_vocab_size(v), size, "%s: vocab %s size %u, expected %u", sample, name,
                 embt_vocab_size(v), size);
    cr_expect_eq(embt_vocab_unk_id(v), id_or_none(get(x, ev, "unk_id")), "%s: unk_id", sample);
    cr_expect_eq(embt_vocab_pad_id(v), id_or_none(get(x, ev, "pad_id")), "%s: pad_id", sample);
    cr_expect_eq(embt_vocab_bos_id(v), id_or_none(get(x, ev, "bos_id")), "%s: bos_id", sample);
    cr_expect_eq(embt_vocab_eos_id(v), id_or_none(get(x, ev, "eos_id")), "%s: eos_id", sample);
    yaml_node_t *counts = get(x, ev, "counts");
    if (is_null(counts)) {
        cr_expect(!embt_vocab_has_counts(v), "%s: vocab %s has counts, expected none", sample,
                  name);
    } else {
        cr_expect(embt_vocab_has_counts(v), "%s: vocab %s has no counts", sample, name);
        for (size_t i = 0; i < seq_len(counts) && embt_vocab_has_counts(v); i++) {
            uint64_t c = 0;
            cr_expect_eq(embt_vocab_count(&c, v, (uint32_t)i), EMBT_OK, "%s: count %zu", sample, i);
            cr_expect_eq(c, num(item(x, counts, i)), "%s: count of id %zu is %llu", sample, i,
                         (unsigned long long)c);
        }
    }
    yaml_node_t *tokens = get(x, ev, "tokens");
    cr_expect_eq(seq_len(tokens), size, "%s: YAML token count", sample);
    for (size_t i = 0; i < seq_len(tokens) && i < embt_vocab_size(v); i++) {
        size_t tlen, glen = 0;
        const char *tok = str(item(x, tokens, i), &tlen);
        const char *got = embt_vocab_token(v, (uint32_t)i, &glen);
        cr_expect(got != NULL && glen == tlen && memcmp(got, tok, tlen) == 0,
                  "%s: vocab %s token %zu differs (length %zu, expected %zu)", sample, name, i,
                  glen, tlen);
        uint32_t id = EMBT_NONE_ID;
        embt_status st = embt_vocab_find(&id, v, tok, tlen);
        cr_expect(st == EMBT_OK && id == i, "%s: vocab %s find(token %zu) gave %s, id %u", sample,
                  name, i, embt_status_name(st), id);
    }
    uint32_t id = 0;
    const char absent[] = "\x01embt conformance: absent token\x01";
    cr_expect_eq(embt_vocab_find(&id, v, absent, sizeof absent - 1), EMBT_ENOTFOUND,
                 "%s: vocab %s finds a token it does not hold", sample, name);
}

static void check_table(const char *sample, expect *x, yaml_node_t *et, const embt_table *t)
{
    size_t len;
    const char *name = str(get(x, et, "name"), &len);
    cr_expect(strlen(embt_table_name(t)) == len && memcmp(embt_table_name(t), name, len) == 0,
              "%s: table name %s, expected %s", sample, embt_table_name(t), name);
    const char *dtype = embt_dtype_name(embt_table_dtype(t));
    cr_expect(dtype && strcmp(dtype, str(get(x, et, "dtype"), NULL)) == 0, "%s: table %s dtype %s",
              sample, name, dtype ? dtype : "?");
    cr_expect_eq(embt_table_rank(t), num(get(x, et, "rank")), "%s: table %s rank", sample, name);
    uint64_t rows = num(get(x, et, "rows")), cols = num(get(x, et, "cols"));
    cr_expect_eq(embt_table_rows(t), rows, "%s: table %s rows", sample, name);
    cr_expect_eq(embt_table_cols(t), cols, "%s: table %s cols", sample, name);
    yaml_node_t *tv = get(x, et, "vocab");
    const embt_vocab *v = embt_table_vocab(t);
    if (is_null(tv))
        cr_expect(v == NULL, "%s: table %s is tied, expected stand-alone", sample, name);
    else
        cr_expect(v != NULL && strcmp(embt_vocab_name(v), str(tv, NULL)) == 0,
                  "%s: table %s tied to %s", sample, name, v ? embt_vocab_name(v) : "nothing");
    if (embt_table_rows(t) != rows || embt_table_cols(t) != cols)
        return;
    size_t n = (size_t)(rows * cols);
    float *got = malloc((n ? n : 1) * sizeof *got);
    for (uint64_t r = 0; r < rows; r++) {
        embt_status st = embt_table_read_row_f32(got + r * cols, t, r);
        cr_expect_eq(st, EMBT_OK, "%s: table %s read_row_f32(%llu): %s", sample, name,
                     (unsigned long long)r, embt_status_name(st));
    }
    yaml_node_t *vcrc = get(x, et, "values_crc32");
    if (vcrc) {
        cr_expect_eq(crc_f32(got, n), (uint32_t)num(vcrc), "%s: table %s values CRC differs",
                     sample, name);
    } else {
        size_t ne;
        uint32_t *exp = flat_bits(x, get(x, et, "values"), &ne);
        cr_expect_eq(ne, n, "%s: table %s: YAML has %zu values for %zu", sample, name, ne, n);
        for (size_t i = 0; i < ne && i < n; i++)
            cr_expect_eq(f32_bits(got[i]), exp[i],
                         "%s: table %s element %zu (row %zu) is 0x%08x, expected 0x%08x", sample,
                         name, i, (size_t)(i / cols), f32_bits(got[i]), exp[i]);
        free(exp);
    }
    free(got);
    yaml_node_t *scales = get(x, et, "scales");
    size_t n_scales = is_null(scales) ? 0 : seq_len(scales);
    expect_f32s(sample, "scales", embt_table_scales(t), n_scales, x, scales, NULL);
    yaml_node_t *norms = get(x, et, "norms"), *ncrc = get(x, et, "norms_crc32");
    size_t n_rows = embt_table_rank(t) == 2 ? (size_t)rows : 1;
    expect_f32s(sample, "norms", embt_table_norms(t),
                ncrc ? n_rows : (is_null(norms) ? 0 : seq_len(norms)), x, norms, ncrc);
}

static void check_valid(const char *sample)
{
    expect x;
    load_yaml(&x, "valid", sample);
    char file[512];
    snprintf(file, sizeof file, "%s.embt", sample);
    char *path = corpus_path("valid", file);
    embt_file *f = NULL;
    embt_status st = embt_file_open(&f, path, NULL);
    const embt_error *e = embt_error_last();
    cr_expect_eq(st, EMBT_OK, "%s: open gave %s (rule %u, offset %llu, %s: %s)", sample,
                 embt_status_name(st), e->rule, (unsigned long long)e->offset, e->section,
                 e->message);
    if (st == EMBT_OK) {
        st = embt_file_verify(f);
        cr_expect_eq(st, EMBT_OK, "%s: verify gave %s (rule %u, offset %llu, %s: %s)", sample,
                     embt_status_name(st), e->rule, (unsigned long long)e->offset, e->section,
                     e->message);
        unsigned major = 0, minor = 0;
        embt_file_version(f, &major, &minor);
        cr_expect_eq(major, num(get(&x, x.root, "version_major")), "%s: major", sample);
        cr_expect_eq(minor, num(get(&x, x.root, "version_minor")), "%s: minor", sample);
        cr_expect_eq(embt_file_alignment(f), num(get(&x, x.root, "alignment")), "%s: alignment",
                     sample);
        cr_expect_eq(embt_file_size(f), num(get(&x, x.root, "file_size")), "%s: size", sample);
        cr_expect_eq(embt_file_section_count(f), num(get(&x, x.root, "sections")), "%s: sections",
                     sample);
        yaml_node_t *vocabs = get(&x, x.root, "vocabs"), *tables = get(&x, x.root, "tables");
        cr_expect_eq(embt_file_vocab_count(f), seq_len(vocabs),
                     "%s: %zu vocabularies, expected %zu", sample, embt_file_vocab_count(f),
                     seq_len(vocabs));
        for (size_t i = 0; i < seq_len(vocabs) && i < embt_file_vocab_count(f); i++)
            check_vocab(sample, &x, item(&x, vocabs, i), embt_file_vocab_at(f, i));
        cr_expect_eq(embt_file_table_count(f), seq_len(tables), "%s: %zu tables, expected %zu",
                     sample, embt_file_table_count(f), seq_len(tables));
        for (size_t i = 0; i < seq_len(tables) && i < embt_file_table_count(f); i++)
            check_table(sample, &x, item(&x, tables, i), embt_file_table_at(f, i));
        size_t mlen = 0, elen = 0;
        const char *meta = embt_file_metadata(f, &mlen);
        yaml_node_t *em = get(&x, x.root, "metadata");
        if (is_null(em)) {
            cr_expect(meta == NULL && mlen == 0, "%s: metadata present, expected none", sample);
        } else {
            const char *etext = str(em, &elen);
            cr_expect(mlen == elen && (elen == 0 || (meta && memcmp(meta, etext, elen) == 0)),
                      "%s: metadata differs (%zu bytes, expected %zu)", sample, mlen, elen);
        }
    }
    embt_file_close(f);
    free(path);
    yaml_document_delete(&x.doc);
}

Test(conformance, every_valid_sample_decodes_as_its_yaml_says)
{
    size_t n;
    char **names = list_samples("valid", &n);
    cr_assert(n >= 20, "only %zu valid samples found", n);
    for (size_t i = 0; i < n; i++)
        check_valid(names[i]);
    free_names(names, n);
}

/* ---- invalid samples ---- */

/* Opens (and, if that succeeds, verifies) `size` bytes; the first failure's status. */
static embt_status open_verify(const unsigned char *data, size_t size)
{
    embt_file *f = NULL;
    embt_status st = embt_file_open_memory(&f, data, size, NULL);
    if (st == EMBT_OK)
        st = embt_file_verify(f);
    embt_file_close(f);
    return st;
}

static unsigned rules_seen[39];

static void check_invalid(const char *sample)
{
    expect x;
    load_yaml(&x, "invalid", sample);
    char file[512];
    snprintf(file, sizeof file, "%s.embt", sample);
    char *path = corpus_path("invalid", file);
    const char *want = str(get(&x, x.root, "status"), NULL);
    unsigned rule = (unsigned)num(get(&x, x.root, "rule"));
    if (rule < 39)
        rules_seen[rule]++;
    embt_file *f = NULL;
    embt_status st = embt_file_open(&f, path, NULL);
    if (st == EMBT_OK)
        st = embt_file_verify(f);
    const embt_error *e = embt_error_last();
    cr_expect(strcmp(embt_status_name(st), want) == 0 && e->rule == rule,
              "%s: got %s rule %u (offset 0x%llx, %s: %s), expected %s rule %u", sample,
              embt_status_name(st), e->rule, (unsigned long long)e->offset, e->section, e->message,
              want, rule);
    yaml_node_t *off = get(&x, x.root, "offset");
    if (off && strcmp(embt_status_name(st), want) == 0 && e->rule == rule)
        cr_expect_eq(e->offset, num(off), "%s: offset 0x%llx, expected %s (%s: %s)", sample,
                     (unsigned long long)e->offset, str(off, NULL), e->section, e->message);
    yaml_node_t *sec = get(&x, x.root, "section");
    if (sec && e->rule == rule)
        cr_expect(strcmp(e->section, str(sec, NULL)) == 0, "%s: section \"%s\", expected \"%s\"",
                  sample, e->section, str(sec, NULL));
    yaml_node_t *ent = get(&x, x.root, "entry");
    if (ent && e->rule == rule && strncmp(e->section, "entry ", 6) == 0)
        cr_expect_eq(strtoull(e->section + 6, NULL, 10), num(ent),
                     "%s: section \"%s\", expected entry %s", sample, e->section, str(ent, NULL));
    embt_file_close(f);
    free(path);
    yaml_document_delete(&x.doc);
}

Test(conformance, every_invalid_sample_fails_with_its_status_rule_and_offset)
{
    size_t n;
    char **names = list_samples("invalid", &n);
    cr_assert(n >= 38, "only %zu invalid samples found", n);
    for (size_t i = 0; i < n; i++)
        check_invalid(names[i]);
    for (unsigned r = 1; r <= 38; r++)
        cr_expect(rules_seen[r] > 0, "no invalid sample for rule %u", r);
    free_names(names, n);
}

/* ---- damaged copies of valid samples ---- */

static unsigned char *load_valid(const char *sample, size_t *len_out)
{
    char file[512];
    snprintf(file, sizeof file, "%s.embt", sample);
    char *path = corpus_path("valid", file);
    unsigned char *data = read_all(path, len_out);
    free(path);
    return data;
}

Test(conformance, every_prefix_of_small_valid_samples_fails_cleanly)
{
    const char *samples[] = {"minimal", "empty", "deflate-shuffle", "two-vocabs", "zero-rows"};
    for (size_t s = 0; s < sizeof samples / sizeof *samples; s++) {
        size_t len;
        unsigned char *data = load_valid(samples[s], &len);
        cr_assert_eq(open_verify(data, len), EMBT_OK, "%s does not open", samples[s]);
        for (size_t cut = 0; cut < len; cut++) {
            /* an exact-size copy, so reading past the prefix is an out-of-bounds read */
            unsigned char *copy = malloc(cut ? cut : 1);
            memcpy(copy, data, cut);
            embt_status st = open_verify(copy, cut);
            cr_expect(st == EMBT_EFORMAT || st == EMBT_ECORRUPT,
                      "%s cut to %zu bytes gave %s, expected EMBT_EFORMAT or EMBT_ECORRUPT",
                      samples[s], cut, embt_status_name(st));
            free(copy);
        }
        free(data);
    }
}

Test(conformance, every_single_byte_change_of_small_valid_samples_is_detected)
{
    /* Every byte is covered by a rule (header CRC, directory CRC, section CRCs, padding), so every change
     * must fail; the loop also proves no change makes the reader crash. */
    const char *samples[] = {"minimal", "deflate", "zero-rows"};
    const unsigned char flips[] = {0x01, 0x80, 0xff};
    for (size_t s = 0; s < sizeof samples / sizeof *samples; s++) {
        size_t len;
        unsigned char *data = load_valid(samples[s], &len);
        for (size_t i = 0; i < len; i++) {
            for (size_t k = 0; k < sizeof flips; k++) {
                data[i] ^= flips[k];
                embt_status st = open_verify(data, len);
                cr_expect(st == EMBT_EFORMAT || st == EMBT_EVERSION || st == EMBT_ECORRUPT ||
                              st == EMBT_ELIMIT,
                          "%s with byte 0x%zx ^ 0x%02x gave %s", samples[s], i, flips[k],
                          embt_status_name(st));
                data[i] ^= flips[k];
            }
        }
        free(data);
    }
}
