/* test_meta.c: the metadata YAML document (meta.h): parse errors with line/column, duplicate keys,
 * anchors and aliases refused, size and depth caps, dotted get/set, deterministic block emission
 * that round-trips every value, and clean failure when allocations fail. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embt/embt.h"

static embt_meta *parse_ok(const char *yaml)
{
    embt_meta *m = NULL;
    embt_status st = embt_meta_parse(&m, yaml, strlen(yaml));
    cr_assert_eq(st, EMBT_OK, "parse of <%s>: %s (%s)", yaml, embt_status_name(st),
                 embt_error_last()->message);
    cr_assert_not_null(m);
    return m;
}

static void assert_emits(embt_meta *m, const char *want)
{
    const char *text = NULL;
    size_t len = 0;
    cr_assert_eq(embt_meta_emit(&text, &len, m), EMBT_OK);
    cr_assert_eq(len, strlen(text));
    cr_assert_str_eq(text, want);
}

static void assert_get(const embt_meta *m, const char *key, const char *want)
{
    const char *v = NULL;
    size_t len = 0;
    embt_status st = embt_meta_get(&v, &len, m, key);
    cr_assert_eq(st, EMBT_OK, "get %s: %s", key, embt_status_name(st));
    cr_assert_eq(len, strlen(want));
    cr_assert_str_eq(v, want);
}

/* ---- parse errors: status, line and column ---- */

/* Inline text, not pointers: Criterion may run each case in a re-executed process where the
 * parent's pointers mean nothing. */
typedef struct bad_case {
    char yaml[48];
    embt_status code;
    uint32_t line, column;
} bad_case;

ParameterizedTestParameters(meta, parse_rejects_bad_documents_with_position)
{
    static bad_case cases[] = {
        {"a: 1\nb: 2\na: 3\n", EMBT_EPARSE, 3, 1},           /* duplicate key */
        {"t:\n  x: 1\n  y: 2\n  x: 3\n", EMBT_EPARSE, 4, 3}, /* nested duplicate */
        {"a: 1\n'a': 2\n", EMBT_EPARSE, 2, 1},               /* same text, other style */
        {"a: &x 1\n", EMBT_EPARSE, 1, 4},                    /* anchor */
        {"a: 1\nb: *x\n", EMBT_EPARSE, 2, 4},                /* alias */
        {"just a scalar\n", EMBT_EPARSE, 1, 1},              /* root scalar */
        {"- a\n- b\n", EMBT_EPARSE, 1, 1},                   /* root sequence */
        {"a: 1\n---\nb: 2\n", EMBT_EPARSE, 2, 1},            /* two documents */
        {"? [a]\n: b\n", EMBT_EPARSE, 1, 3},                 /* non-scalar key */
        {"a: [1, 2\n", EMBT_EPARSE, 2, 1},                   /* unclosed flow sequence */
        {"a: b\n c: d\n", EMBT_EPARSE, 2, 3},                /* bad indentation */
        {"a: \"x\n", EMBT_EPARSE, 2, 1},                     /* unclosed quote */
        {"a: 1\nb: \xff\n", EMBT_EPARSE, 2, 4},              /* invalid UTF-8 */
        {"\xef\xbb\xbf"
         "a: 1\n",
         EMBT_EPARSE, 1, 1}, /* BOM */
    };
    return cr_make_param_array(bad_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(bad_case *c, meta, parse_rejects_bad_documents_with_position)
{
    embt_meta *m = (embt_meta *)1;
    embt_status st = embt_meta_parse(&m, c->yaml, strlen(c->yaml));
    const embt_error *e = embt_error_last();
    cr_assert_eq(st, c->code, "<%s>: %s (%s)", c->yaml, embt_status_name(st), e->message);
    cr_assert_null(m);
    cr_assert_eq(e->code, c->code);
    cr_assert_eq(e->line, c->line, "<%s>: line %u, expected %u (%s)", c->yaml, e->line, c->line,
                 e->message);
    cr_assert_eq(e->column, c->column, "<%s>: column %u, expected %u (%s)", c->yaml, e->column,
                 c->column, e->message);
}

Test(meta, parse_refuses_text_over_16_mib_with_elimit)
{
    size_t len = (16u << 20) + 1;
    char *big = malloc(len);
    cr_assert_not_null(big);
    memset(big, ' ', len);
    embt_meta *m = NULL;
    cr_assert_eq(embt_meta_parse(&m, big, len), EMBT_ELIMIT);
    cr_assert_null(m);
    free(big);
}

Test(meta, parse_refuses_nesting_deeper_than_64_with_elimit)
{
    char yaml[512] = "a: ";
    for (int i = 0; i < 100; i++)
        strcat(yaml, "[");
    embt_meta *m = NULL;
    cr_assert_eq(embt_meta_parse(&m, yaml, strlen(yaml)), EMBT_ELIMIT);
    cr_assert_eq(embt_error_last()->line, 1);
    cr_assert_null(m);
}

Test(meta, parse_accepts_nesting_of_64_levels)
{
    char yaml[512] = "a: ";
    for (int i = 0; i < 63; i++)
        strcat(yaml, "[");
    for (int i = 0; i < 63; i++)
        strcat(yaml, "]");
    embt_meta_free(parse_ok(yaml));
}

/* ---- empty documents ---- */

Test(meta, empty_text_comments_and_bare_marker_are_empty_documents)
{
    const char *empties[] = {"", "# only a comment\n", "---\n", "--- \n...\n", "\n\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        embt_meta *m = parse_ok(empties[i]);
        assert_emits(m, "");
        embt_meta_free(m);
    }
}

Test(meta, new_document_emits_nothing_and_has_no_keys)
{
    embt_meta *m = NULL;
    cr_assert_eq(embt_meta_new(&m), EMBT_OK);
    assert_emits(m, "");
    const char *v = NULL;
    cr_assert_eq(embt_meta_get(&v, NULL, m, "a"), EMBT_ENOTFOUND);
    cr_assert_null(v);
    embt_meta_free(m);
}

Test(meta, free_accepts_null)
{
    embt_meta_free(NULL);
}

/* ---- get ---- */

Test(meta, get_follows_dotted_paths_through_nested_mappings)
{
    embt_meta *m = parse_ok("source: word2vec\ntraining:\n  lr: 0.025\n  window: '5'\n"
                            "  opt: {name: adam, beta1: 0.9}\n");
    assert_get(m, "source", "word2vec");
    assert_get(m, "training.lr", "0.025");
    assert_get(m, "training.window", "5");
    assert_get(m, "training.opt.beta1", "0.9");
    embt_meta_free(m);
}

Test(meta, get_returns_enotfound_for_absent_keys)
{
    embt_meta *m = parse_ok("a: 1\nb:\n  c: 2\n");
    const char *v = NULL;
    cr_assert_eq(embt_meta_get(&v, NULL, m, "z"), EMBT_ENOTFOUND);
    cr_assert_eq(embt_error_last()->code, EMBT_ENOTFOUND);
    cr_assert_eq(embt_meta_get(&v, NULL, m, "b.z"), EMBT_ENOTFOUND);
    cr_assert_eq(embt_meta_get(&v, NULL, m, "a.c"), EMBT_ENOTFOUND); /* a is a scalar */
    embt_meta_free(m);
}

Test(meta, get_returns_einval_for_collections_and_malformed_paths)
{
    embt_meta *m = parse_ok("a:\n  b: 1\nlist:\n- x\n");
    const char *v = NULL;
    cr_assert_eq(embt_meta_get(&v, NULL, m, "a"), EMBT_EINVAL);
    cr_assert_eq(embt_meta_get(&v, NULL, m, "list"), EMBT_EINVAL);
    const char *bad[] = {"", ".", "a.", ".a", "a..b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(embt_meta_get(&v, NULL, m, bad[i]), EMBT_EINVAL, "path <%s>", bad[i]);
    embt_meta_free(m);
}

Test(meta, get_returns_scalars_holding_nul_with_their_length)
{
    embt_meta *m = parse_ok("a: \"x\\0y\"\n");
    const char *v = NULL;
    size_t len = 0;
    cr_assert_eq(embt_meta_get(&v, &len, m, "a"), EMBT_OK);
    cr_assert_eq(len, 3);
    cr_assert_eq(memcmp(v, "x\0y", 3), 0);
    embt_meta_free(m);
}

/* ---- set and emit ---- */

Test(meta, set_creates_nested_mappings_in_an_empty_document)
{
    embt_meta *m = NULL;
    cr_assert_eq(embt_meta_new(&m), EMBT_OK);
    cr_assert_eq(embt_meta_set(m, "training.optimizer.lr", "0.025"), EMBT_OK);
    cr_assert_eq(embt_meta_set(m, "source", "glove"), EMBT_OK);
    cr_assert_eq(embt_meta_set(m, "training.epochs", "5"), EMBT_OK);
    assert_emits(m, "training:\n  optimizer:\n    lr: 0.025\n  epochs: 5\nsource: glove\n");
    assert_get(m, "training.optimizer.lr", "0.025");
    embt_meta_free(m);
}

Test(meta, set_keeps_the_place_of_an_existing_key)
{
    embt_meta *m = parse_ok("a: 1\nb: 2\nc:\n  d: 3\n  e: 4\n");
    cr_assert_eq(embt_meta_set(m, "b", "20"), EMBT_OK);
    cr_assert_eq(embt_meta_set(m, "c.d", "30"), EMBT_OK);
    cr_assert_eq(embt_meta_set(m, "c.f", "5"), EMBT_OK);
    assert_emits(m, "a: 1\nb: 20\nc:\n  d: 30\n  e: 4\n  f: 5\n");
    embt_meta_free(m);
}

Test(meta, set_refuses_to_descend_into_scalars_or_replace_collections)
{
    embt_meta *m = parse_ok("a: 1\nb:\n  c: 2\nl:\n- x\n");
    cr_assert_eq(embt_meta_set(m, "a.x", "1"), EMBT_EINVAL);
    cr_assert_eq(embt_meta_set(m, "b", "1"), EMBT_EINVAL);
    cr_assert_eq(embt_meta_set(m, "l.x", "1"), EMBT_EINVAL);
    cr_assert_eq(embt_meta_set(m, "", "1"), EMBT_EINVAL);
    cr_assert_eq(embt_meta_set(m, "x..y", "1"), EMBT_EINVAL);
    cr_assert_eq(embt_meta_set(m, "k", "\xff"), EMBT_EINVAL);
    /* nothing changed */
    assert_emits(m, "a: 1\nb:\n  c: 2\nl:\n- x\n");
    embt_meta_free(m);
}

Test(meta, set_invalidates_the_previous_emission)
{
    embt_meta *m = parse_ok("a: 1\n");
    assert_emits(m, "a: 1\n");
    cr_assert_eq(embt_meta_set(m, "a", "2"), EMBT_OK);
    assert_emits(m, "a: 2\n");
    embt_meta_free(m);
}

Test(meta, emit_keeps_source_quoting_and_block_style)
{
    embt_meta *m = parse_ok("a: '123'\nb: \"yes\"\nc: {x: 1, y: [p, q]}\nd: plain text\n");
    assert_emits(m, "a: '123'\nb: \"yes\"\nc:\n  x: 1\n  y:\n  - p\n  - q\nd: plain text\n");
    embt_meta_free(m);
}

Test(meta, emit_quotes_values_that_plain_style_cannot_carry)
{
    embt_meta *m = NULL;
    cr_assert_eq(embt_meta_new(&m), EMBT_OK);
    cr_assert_eq(embt_meta_set(m, "a", "x: y"), EMBT_OK);
    cr_assert_eq(embt_meta_set(m, "b", "#c"), EMBT_OK);
    cr_assert_eq(embt_meta_set(m, "c", " lead"), EMBT_OK);
    assert_emits(m, "a: 'x: y'\nb: '#c'\nc: ' lead'\n");
    embt_meta_free(m);
}

Test(meta, emit_is_deterministic_and_reparses_to_the_same_text)
{
    embt_meta *m = parse_ok("z: 1\na:\n  - {k: v}\n  - [1, 2]\n  - s\nm: |\n  two\n  lines\n");
    const char *t1 = NULL;
    size_t n1 = 0;
    cr_assert_eq(embt_meta_emit(&t1, &n1, m), EMBT_OK);
    char *copy = strndup(t1, n1);
    embt_meta *m2 = parse_ok(copy);
    assert_emits(m2, copy);
    assert_get(m2, "m", "two\nlines\n");
    free(copy);
    embt_meta_free(m2);
    embt_meta_free(m);
}

/* Values that stress the emitter's quoting: each must come back byte for byte. */
typedef struct value_case {
    char text[32];
} value_case;

ParameterizedTestParameters(meta, set_values_round_trip_through_emit_and_parse)
{
    static const char *values[] = {"",
                                   " ",
                                   "a: b",
                                   "#x",
                                   "- x",
                                   "[x]",
                                   "{x}",
                                   "@x",
                                   "`x",
                                   "%x",
                                   "!x",
                                   "&x",
                                   "*x",
                                   "|",
                                   ">",
                                   "null",
                                   "~",
                                   "yes",
                                   "0.025",
                                   "1e3",
                                   "'q'",
                                   "\"d\"",
                                   "two\nlines",
                                   "trail ",
                                   "\xc3\xbc"
                                   "n\xc3\xaf"
                                   "c\xc3\xb6"
                                   "de",
                                   "tab\there",
                                   "x\\y",
                                   "---",
                                   "...",
                                   "? k",
                                   "a #b",
                                   "http://x/y"};
    static value_case cases[sizeof values / sizeof values[0]];
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        snprintf(cases[i].text, sizeof cases[i].text, "%s", values[i]);
    return cr_make_param_array(value_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(value_case *c, meta, set_values_round_trip_through_emit_and_parse)
{
    const char *value = c->text;
    embt_meta *m = NULL;
    cr_assert_eq(embt_meta_new(&m), EMBT_OK);
    cr_assert_eq(embt_meta_set(m, "outer.key", value), EMBT_OK);
    cr_assert_eq(embt_meta_set(m, "k", value), EMBT_OK);
    const char *text = NULL;
    size_t len = 0;
    cr_assert_eq(embt_meta_emit(&text, &len, m), EMBT_OK);
    embt_meta *back = NULL;
    embt_status st = embt_meta_parse(&back, text, len);
    cr_assert_eq(st, EMBT_OK, "value <%s> emitted as <%s>: %s", value, text,
                 embt_error_last()->message);
    assert_get(back, "outer.key", value);
    assert_get(back, "k", value);
    embt_meta_free(back);
    embt_meta_free(m);
}

Test(meta, keys_needing_quotes_round_trip)
{
    embt_meta *m = NULL;
    cr_assert_eq(embt_meta_new(&m), EMBT_OK);
    cr_assert_eq(embt_meta_set(m, "a: b", "1"), EMBT_OK);
    cr_assert_eq(embt_meta_set(m, "#k", "2"), EMBT_OK);
    const char *text = NULL;
    size_t len = 0;
    cr_assert_eq(embt_meta_emit(&text, &len, m), EMBT_OK);
    embt_meta *back = NULL;
    cr_assert_eq(embt_meta_parse(&back, text, len), EMBT_OK, "<%s>", text);
    assert_get(back, "a: b", "1");
    assert_get(back, "#k", "2");
    embt_meta_free(back);
    embt_meta_free(m);
}

Test(meta, a_large_mapping_with_a_late_duplicate_is_rejected)
{
    size_t n = 20000;
    char *yaml = malloc(n * 16 + 32);
    cr_assert_not_null(yaml);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(yaml + len, "k%zu: %zu\n", i, i);
    len += (size_t)sprintf(yaml + len, "k17: dup\n");
    embt_meta *m = NULL;
    cr_assert_eq(embt_meta_parse(&m, yaml, len), EMBT_EPARSE);
    cr_assert_eq(embt_error_last()->line, n + 1);
    cr_assert_eq(embt_error_last()->column, 1);
    free(yaml);
}

/* ---- allocation failures: every path fails cleanly ---- */

static long fail_at;
static long n_calls;

static void *failing_malloc(size_t size)
{
    return ++n_calls == fail_at ? NULL : malloc(size);
}

static void *failing_realloc(void *p, size_t size)
{
    return ++n_calls == fail_at ? NULL : realloc(p, size);
}

Test(meta, every_failed_allocation_gives_enomem_and_leaves_no_half_state)
{
    const char *yaml = "a: 1\nb:\n  c: [x, y, {z: w}]\n  d: 'q'\n";
    for (fail_at = 1;; fail_at++) {
        n_calls = 0;
        cr_assert_eq(embt_set_allocator(failing_malloc, failing_realloc, free), EMBT_OK);
        embt_meta *m = NULL;
        embt_status st = embt_meta_parse(&m, yaml, strlen(yaml));
        if (st == EMBT_OK)
            st = embt_meta_set(m, "b.e.f", "new");
        const char *text = NULL;
        if (st == EMBT_OK)
            st = embt_meta_emit(&text, NULL, m);
        embt_meta_free(m);
        embt_set_allocator(NULL, NULL, NULL);
        if (st == EMBT_OK) {
            cr_assert_geq(fail_at, 2);
            break;
        }
        cr_assert_eq(st, EMBT_ENOMEM, "allocation %ld: %s", fail_at, embt_status_name(st));
        cr_assert_lt(fail_at, 1000);
    }
}
