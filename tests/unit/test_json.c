/* test_json.c: the strict JSON parser of binary-format headers (lib/src/json.c): values, offsets,
 * escapes, integer range, and one rejection per error class with its status and byte offset. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>

#include "json.h"

static embt_status parse(embt__json *doc, const char *text)
{
    return embt__json_parse(doc, (const uint8_t *)text, strlen(text), 100, EMBT__JSON_DEPTH_MAX,
                            1000);
}

Test(json, parses_objects_arrays_and_records_absolute_offsets)
{
    embt__json doc;
    const char *text = " {\"a\": [1, 2, 18446744073709551615], \"b\": {\"c\": \"x\"}, \"t\": true, "
                       "\"f\": false, \"n\": null} ";
    cr_assert_eq(parse(&doc, text), EMBT_OK);
    const embt__json_value *root = &doc.values[0];
    cr_assert_eq(root->kind, EMBT__JSON_OBJECT);
    cr_assert_eq(root->offset, 101);
    cr_assert_eq(root->n_children, 5);
    const embt__json_value *a = embt__json_get(&doc, root, "a");
    cr_assert_not_null(a);
    cr_assert_eq(a->kind, EMBT__JSON_ARRAY);
    cr_assert_eq(a->key_offset, 100 + 2);
    cr_assert_eq(a->offset, (uint64_t)(100 + (strchr(text, '[') - text)));
    const embt__json_value *i = embt__json_first(&doc, a);
    cr_assert_eq(i->integer, 1);
    i = embt__json_next(&doc, embt__json_next(&doc, i));
    cr_assert_eq(i->integer, UINT64_MAX);
    cr_assert_null(embt__json_next(&doc, i));
    const embt__json_value *c = embt__json_get(&doc, embt__json_get(&doc, root, "b"), "c");
    cr_assert_eq(c->kind, EMBT__JSON_STRING);
    cr_assert_str_eq(c->str, "x");
    cr_assert_eq(embt__json_get(&doc, root, "t")->kind, EMBT__JSON_TRUE);
    cr_assert_eq(embt__json_get(&doc, root, "f")->kind, EMBT__JSON_FALSE);
    cr_assert_eq(embt__json_get(&doc, root, "n")->kind, EMBT__JSON_NULL);
    cr_assert_null(embt__json_get(&doc, root, "missing"));
    embt__json_free(&doc);
}

Test(json, decodes_every_escape_and_surrogate_pairs_to_utf8)
{
    embt__json doc;
    cr_assert_eq(parse(&doc, "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20AC\\ud83d\\ude00\\u0000z\""),
                 EMBT_OK);
    const char want[] = "\"\\/\b\f\n\r\t\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\0z";
    cr_assert_eq(doc.values[0].len, sizeof want - 1);
    cr_assert_eq(memcmp(doc.values[0].str, want, sizeof want - 1), 0);
    embt__json_free(&doc);
}

Test(json, keeps_raw_utf8_and_empty_containers)
{
    embt__json doc;
    cr_assert_eq(parse(&doc, "{\"\xC3\xBC\":[],\"o\":{}}"), EMBT_OK);
    cr_assert_not_null(embt__json_get(&doc, &doc.values[0], "\xC3\xBC"));
    cr_assert_eq(embt__json_get(&doc, &doc.values[0], "o")->n_children, 0);
    embt__json_free(&doc);
}

Test(json, accepts_64_levels_and_refuses_65_with_elimit)
{
    char text[200];
    memset(text, '[', 64);
    memset(text + 64, ']', 64);
    text[128] = '\0';
    embt__json doc;
    cr_assert_eq(parse(&doc, text), EMBT_OK);
    embt__json_free(&doc);
    memset(text, '[', 65);
    memset(text + 65, ']', 65);
    text[130] = '\0';
    cr_assert_eq(parse(&doc, text), EMBT_ELIMIT);
    cr_assert_eq(embt_error_last()->offset, 100 + 64);
    cr_assert_null(doc.values);
}

Test(json, refuses_more_values_than_the_cap)
{
    embt__json doc;
    const char *text = "[1,2,3,4]";
    cr_assert_eq(embt__json_parse(&doc, (const uint8_t *)text, strlen(text), 0, 8, 4), EMBT_ELIMIT);
    cr_assert_eq(embt__json_parse(&doc, (const uint8_t *)text, strlen(text), 0, 8, 5), EMBT_OK);
    embt__json_free(&doc);
}

typedef struct bad_json {
    char name[32];
    char text[40]; /* arrays, not pointers: Criterion may run the case in a fresh process */
    size_t at;     /* expected offset, relative to the text */
} bad_json;

static bad_json bad_cases[] = {
    {"empty", "", 0},
    {"only spaces", "   ", 3},
    {"fraction", "[1.5]", 1},
    {"exponent", "[1e3]", 1},
    {"negative", "[0, -1]", 4},
    {"leading zero", "[01]", 1},
    {"too big", "[18446744073709551616]", 1},
    {"bad escape", "[\"ab\\x\"]", 4},
    {"short unicode escape", "[\"\\u12\"]", 2},
    {"non-hex unicode escape", "[\"\\u12g4\"]", 2},
    {"lone high surrogate", "[\"\\ud83dz\"]", 2},
    {"high then non-low", "[\"\\ud83d\\u0041\"]", 2},
    {"lone low surrogate", "[\"a\\ude00\"]", 3},
    {"control character", "[\"a\tb\"]", 3},
    {"unterminated string", "[\"abc", 1},
    {"unterminated array", "[1, 2", 0},
    {"missing colon", "{\"a\" 1}", 5},
    {"non-string key", "{1: 2}", 1},
    {"trailing comma", "[1,]", 3},
    {"trailing garbage", "{} x", 3},
    {"two values", "1 2", 2},
    {"bad literal", "[tru]", 1},
    {"duplicate key", "{\"a\": 1, \"b\": 2, \"a\": 3}", 17},
    {"invalid utf-8", "[\"\xC3\x28\"]", 2},
    {"nul byte", "[\"a\"]", 5}, /* the NUL is appended by the test (length + 1) */
};

ParameterizedTestParameters(json, refuses_malformed_input_with_its_offset)
{
    return cr_make_param_array(bad_json, bad_cases, sizeof bad_cases / sizeof bad_cases[0]);
}

ParameterizedTest(bad_json *c, json, refuses_malformed_input_with_its_offset)
{
    embt__json doc;
    size_t len = strlen(c->text) + (strcmp(c->name, "nul byte") == 0);
    embt_status st =
        embt__json_parse(&doc, (const uint8_t *)c->text, len, 1000, EMBT__JSON_DEPTH_MAX, 1000);
    cr_assert_eq(st, EMBT_EPARSE, "%s: status %d", c->name, st);
    cr_assert_eq(embt_error_last()->offset, 1000 + c->at, "%s: offset %llu, want %zu", c->name,
                 (unsigned long long)embt_error_last()->offset, 1000 + c->at);
    cr_assert_null(doc.values);
    cr_assert_null(doc.strings);
}
