/* test_safetensors.c: safetensors import (exact values of the fixtures written by
 * tests/fixtures/safetensors/make_fixtures.py, correct rounding, every reference-reader check with
 * its status and byte offset, no output on failure) and export (byte-exact against the fixture
 * writer, round trips). The importer and exporter are called directly with a hand-made context. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert.h"
#include "fixtures/safetensors/expected.h"
#include "test_util.h"

TestSuite(safetensors, .init = tu_setup, .fini = tu_teardown);

static uint8_t *fixture(const char *name, size_t *size_out)
{
    return tu_read_file(tu_fixture("safetensors", name), size_out);
}

/* The largest allocation made by the last embt__import_safetensors() call when the counting
 * allocator below is installed. */
static size_t largest_allocation;

/* Imports `size` bytes into out_path; on failure nothing may appear there. */
static embt_status import_bytes(const uint8_t *data, size_t size, const embt_convert_options *o,
                                const char *out_path)
{
    embt_convert_options defaults = EMBT_CONVERT_OPTIONS_INIT;
    if (!o)
        o = &defaults;
    embt_convert_report report = {0};
    embt__input in = {.path = "input.safetensors", .data = data, .size = size};
    embt_writer *w = NULL;
    cr_assert_eq(embt_writer_open(&w, out_path, NULL), EMBT_OK);
    embt__import ctx = {&in,
                        w,
                        o,
                        &report,
                        o->table_name ? o->table_name : "embedding",
                        o->vocab_name ? o->vocab_name : "words"};
    largest_allocation = 0;
    embt_status st = embt__import_safetensors(&ctx);
    size_t largest = largest_allocation;
    if (st == EMBT_OK)
        st = embt_writer_commit(w);
    embt_writer_free(w);
    if (st != EMBT_OK)
        cr_assert(!tu_exists(out_path), "a failed import left %s", out_path);
    largest_allocation = largest;
    return st;
}

static embt_file *open_embt(const char *path)
{
    embt_file *f = NULL;
    embt_open_options oo = EMBT_OPEN_OPTIONS_INIT;
    oo.flags = EMBT_OPEN_VERIFY;
    cr_assert_eq(embt_file_open(&f, path, &oo), EMBT_OK, "%s", embt_error_last()->message);
    return f;
}

static const embt_table *table(const embt_file *f, const char *name, embt_dtype dtype,
                               unsigned rank, uint64_t rows, uint64_t cols)
{
    const embt_table *t = NULL;
    cr_assert_eq(embt_file_table(&t, f, name), EMBT_OK, "no table %s", name);
    cr_assert_eq(embt_table_dtype(t), dtype, "%s dtype", name);
    cr_assert_eq(embt_table_rank(t), rank, "%s rank", name);
    cr_assert_eq(embt_table_rows(t), rows, "%s rows", name);
    cr_assert_eq(embt_table_cols(t), cols, "%s cols", name);
    return t;
}

static void check_bits(const embt_table *t, const void *want, size_t bytes)
{
    cr_assert_eq(memcmp(embt_table_data(t), want, bytes), 0, "%s values differ",
                 embt_table_name(t));
}

static embt_status export_file(const char *embt_path, const char *out_path,
                               const embt_convert_options *o)
{
    embt_file *f = open_embt(embt_path);
    embt__output *out = NULL;
    cr_assert_eq(embt__output_open(&out, out_path), EMBT_OK);
    embt_status st = embt__export_safetensors(f, out, o);
    if (st == EMBT_OK)
        st = embt__output_commit(out);
    embt__output_free(out);
    embt_file_close(f);
    return st;
}

/* ---- import: exact values ---------------------------------------------------------------------- */

Test(safetensors, imports_every_tensor_of_the_reference_layout_exactly)
{
    size_t size;
    uint8_t *data = fixture("basic.safetensors", &size);
    const char *out = tu_path("basic.embt");
    cr_assert_eq(import_bytes(data, size, NULL, out), EMBT_OK, "%s", embt_error_last()->message);
    embt_file *f = open_embt(out);
    cr_assert_eq(embt_file_table_count(f), 6);
    cr_assert_eq(embt_file_vocab_count(f), 0);
    check_bits(table(f, "embedding", EMBT_DTYPE_F32, 2, 4, 3), basic_embedding,
               sizeof basic_embedding);
    check_bits(table(f, "bias", EMBT_DTYPE_F32, 1, 4, 1), basic_bias, sizeof basic_bias);
    check_bits(table(f, "half", EMBT_DTYPE_F16, 2, 2, 3), basic_half, sizeof basic_half);
    check_bits(table(f, "brain", EMBT_DTYPE_BF16, 2, 2, 2), basic_brain, sizeof basic_brain);
    check_bits(table(f, "dbl", EMBT_DTYPE_F64, 2, 3, 2), basic_dbl, sizeof basic_dbl);
    table(f, "empty", EMBT_DTYPE_F32, 2, 0, 4);
    /* file order = offset order: F64, F32..., BF16, F16 as the reference writer sorted them */
    cr_assert_str_eq(embt_table_name(embt_file_table_at(f, 0)), "dbl");
    cr_assert_str_eq(embt_table_name(embt_file_table_at(f, 5)), "half");

    size_t len;
    const char *yaml = embt_file_metadata(f, &len);
    embt_meta *m = NULL;
    cr_assert_eq(embt_meta_parse(&m, yaml, len), EMBT_OK);
    const char *v;
    size_t vlen;
    cr_assert_eq(embt_meta_get(&v, &vlen, m, "source.format"), EMBT_OK);
    cr_assert_str_eq(v, "safetensors");
    cr_assert_eq(embt_meta_get(&v, &vlen, m, "source.metadata.format"), EMBT_OK);
    cr_assert_str_eq(v, "pt");
    cr_assert_eq(embt_meta_get(&v, &vlen, m, "source.metadata.note"), EMBT_OK);
    const char note[] = "h\xC3\xA9llo \"q\"\nline\ttab \x01 \xF0\x9F\x98\x80";
    cr_assert_eq(vlen, sizeof note - 1);
    cr_assert_eq(memcmp(v, note, vlen), 0);
    cr_assert_eq(embt_meta_get(&v, &vlen, m, "source.metadata.a: b"), EMBT_OK);
    cr_assert_str_eq(v, " lead");
    embt_meta_free(m);
    embt_file_close(f);
    free(data);
}

Test(safetensors, imports_unaligned_offsets_and_integer_dtypes)
{
    size_t size;
    uint8_t *data = fixture("unaligned.safetensors", &size);
    const char *out = tu_path("u.embt");
    cr_assert_eq(import_bytes(data, size, NULL, out), EMBT_OK, "%s", embt_error_last()->message);
    cr_assert_eq(embt__le64(data) % 8 != 0, true, "the fixture's header must be unpadded");
    embt_file *f = open_embt(out);
    const uint8_t bytes[] = {0, 7, 255};
    check_bits(table(f, "bytes", EMBT_DTYPE_U8, 1, 3, 1), bytes, 3);
    check_bits(table(f, "vec", EMBT_DTYPE_F32, 2, 2, 2), unaligned_vec, sizeof unaligned_vec);
    const uint16_t h[] = {0x3E00, 0xB400, 0x7BFF};
    check_bits(table(f, "h", EMBT_DTYPE_F16, 1, 3, 1), h, sizeof h);
    const int8_t i8[] = {-128, -1, 0, 127};
    const embt_table *t = table(f, "i", EMBT_DTYPE_I8, 2, 2, 2);
    check_bits(t, i8, 4);
    cr_assert_eq(embt_table_scales(t)[0], 1.0f);
    cr_assert_eq(embt_table_scales(t)[1], 1.0f);
    const int64_t big[] = {-(INT64_C(1) << 40), (INT64_C(1) << 62) + 3};
    check_bits(table(f, "big", EMBT_DTYPE_I64, 1, 2, 1), big, sizeof big);
    const int32_t ints[] = {-7, 0, INT32_MAX};
    check_bits(table(f, "ints", EMBT_DTYPE_I32, 1, 3, 1), ints, sizeof ints);
    embt_file_close(f);
    free(data);
}

static void import_rounding(embt_dtype dtype, const void *want_f32, const void *want_f64,
                            size_t elem)
{
    size_t size;
    uint8_t *data = fixture("rounding.safetensors", &size);
    const char *out = tu_path("r.embt");
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.dtype = dtype;
    cr_assert_eq(import_bytes(data, size, &o, out), EMBT_OK, "%s", embt_error_last()->message);
    embt_file *f = open_embt(out);
    size_t n32 = sizeof rounding_f32 / sizeof rounding_f32[0];
    size_t n64 = sizeof rounding_f64_f16 / sizeof rounding_f64_f16[0];
    if (want_f32)
        check_bits(table(f, "f32", dtype, 1, n32, 1), want_f32, n32 * elem);
    check_bits(table(f, "f64", dtype, 1, n64, 1), want_f64, n64 * elem);
    embt_file_close(f);
    free(data);
}

Test(safetensors, converts_f32_and_f64_to_bf16_with_one_correct_rounding)
{
    import_rounding(EMBT_DTYPE_BF16, rounding_f32_bf16, rounding_f64_bf16, 2);
}

Test(safetensors, converts_f32_and_f64_to_f16_with_one_correct_rounding)
{
    import_rounding(EMBT_DTYPE_F16, rounding_f32_f16, rounding_f64_f16, 2);
}

Test(safetensors, converts_f64_to_f32_by_rounding_to_nearest)
{
    import_rounding(EMBT_DTYPE_F32, rounding_f32, rounding_f64_f32, 4);
}

/* ---- export -------------------------------------------------------------------------------------- */

/* The tables of export_expected.safetensors (make_fixtures.py), k = flat index. */
static void write_export_source(const char *path)
{
    embt_writer *w = NULL;
    cr_assert_eq(embt_writer_open(&w, path, NULL), EMBT_OK);
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    cr_assert_eq(embt_writer_vocab_begin(w, &vs), EMBT_OK);
    const char *tokens[] = {"the", "de", "\xC3\xBC\x62\x65\x72" /* "über" */, "</s>"};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(embt_writer_vocab_add(w, tokens[i], strlen(tokens[i]), 0, NULL), EMBT_OK);
    cr_assert_eq(embt_writer_vocab_end(w), EMBT_OK);
    float v[12];
    embt_table_spec s = EMBT_TABLE_SPEC_INIT;
#define ADD_F32(NAME, DTYPE, RANK, ROWS, COLS, EXPR)                                               \
    do {                                                                                           \
        for (int k = 0; k < (ROWS) * (COLS); k++)                                                  \
            v[k] = (float)(EXPR);                                                                  \
        s.name = NAME;                                                                             \
        s.dtype = DTYPE;                                                                           \
        s.rank = RANK;                                                                             \
        s.rows = ROWS;                                                                             \
        s.cols = COLS;                                                                             \
        s.vocab = strcmp(NAME, "embedding") == 0 ? "words" : NULL;                                 \
        cr_assert_eq(embt_writer_add_table_f32(w, &s, v), EMBT_OK, "%s", NAME);                    \
    } while (0)
    ADD_F32("embedding", EMBT_DTYPE_F32, 2, 4, 3, k * 0.5 - 1.25);
    ADD_F32("bias", EMBT_DTYPE_F32, 1, 4, 1, k * 0.25);
    ADD_F32("half", EMBT_DTYPE_F16, 2, 2, 3, k - 2.5);
    ADD_F32("brain", EMBT_DTYPE_BF16, 2, 2, 2, k * 1.5);
    ADD_F32("ints", EMBT_DTYPE_I32, 2, 2, 2, k * 1000 - 1500);
    ADD_F32("u", EMBT_DTYPE_U8, 1, 3, 1, k * 100);
#undef ADD_F32
    s.vocab = NULL;
    double d[6];
    for (int k = 0; k < 6; k++)
        d[k] = k * 0.1;
    s.name = "dbl", s.dtype = EMBT_DTYPE_F64, s.rank = 2, s.rows = 3, s.cols = 2;
    cr_assert_eq(embt_writer_table_begin(w, &s), EMBT_OK);
    cr_assert_eq(embt_writer_table_append_raw(w, d, 3, NULL), EMBT_OK);
    cr_assert_eq(embt_writer_table_end(w), EMBT_OK);
    const int8_t q[4] = {-2, -1, 0, 1};
    const float ones[2] = {1.0f, 1.0f}, halves[2] = {0.5f, 0.5f};
    s.name = "q", s.dtype = EMBT_DTYPE_I8, s.rank = 2, s.rows = 2, s.cols = 2;
    cr_assert_eq(embt_writer_table_begin(w, &s), EMBT_OK);
    cr_assert_eq(embt_writer_table_append_raw(w, q, 2, ones), EMBT_OK);
    cr_assert_eq(embt_writer_table_end(w), EMBT_OK);
    s.name = "q2";
    cr_assert_eq(embt_writer_table_begin(w, &s), EMBT_OK);
    cr_assert_eq(embt_writer_table_append_raw(w, q, 2, halves), EMBT_OK);
    cr_assert_eq(embt_writer_table_end(w), EMBT_OK);
    const int64_t big[2] = {-(INT64_C(1) << 40), (INT64_C(1) << 40) + 1};
    s.name = "big", s.dtype = EMBT_DTYPE_I64, s.rank = 1, s.rows = 2, s.cols = 1;
    cr_assert_eq(embt_writer_table_begin(w, &s), EMBT_OK);
    cr_assert_eq(embt_writer_table_append_raw(w, big, 2, NULL), EMBT_OK);
    cr_assert_eq(embt_writer_table_end(w), EMBT_OK);
    cr_assert_eq(embt_writer_set_metadata(w, "name: test\n", 11), EMBT_OK);
    cr_assert_eq(embt_writer_commit(w), EMBT_OK);
    embt_writer_free(w);
}

Test(safetensors, export_is_byte_identical_to_the_reference_layout)
{
    const char *src = tu_path("src.embt"), *out = tu_path("out.safetensors");
    write_export_source(src);
    cr_assert_eq(export_file(src, out, NULL), EMBT_OK, "%s", embt_error_last()->message);
    size_t n_got, n_want;
    uint8_t *got = tu_read_file(out, &n_got),
            *want = fixture("export_expected.safetensors", &n_want);
    cr_assert_eq(n_got, n_want, "size %zu, want %zu", n_got, n_want);
    for (size_t i = 0; i < n_got; i++)
        cr_assert_eq(got[i], want[i], "byte %zu: 0x%02x, want 0x%02x", i, got[i], want[i]);
    free(got);
    free(want);
}

static void assert_same_tables(const char *a_path, const char *b_path)
{
    embt_file *a = open_embt(a_path), *b = open_embt(b_path);
    cr_assert_eq(embt_file_table_count(a), embt_file_table_count(b));
    for (size_t i = 0; i < embt_file_table_count(a); i++) {
        const embt_table *ta = embt_file_table_at(a, i), *tb = NULL;
        cr_assert_eq(embt_file_table(&tb, b, embt_table_name(ta)), EMBT_OK);
        table(b, embt_table_name(ta), embt_table_dtype(ta), embt_table_rank(ta),
              embt_table_rows(ta), embt_table_cols(ta));
        check_bits(tb, embt_table_data(ta),
                   embt_table_rows(ta) * embt_table_cols(ta) *
                       embt_dtype_size(embt_table_dtype(ta)));
    }
    embt_file_close(a);
    embt_file_close(b);
}

Test(safetensors, round_trip_embt_safetensors_embt_keeps_tables_and_vocabulary)
{
    size_t size;
    uint8_t *data = fixture("basic.safetensors", &size);
    const char *a = tu_path("a.embt"), *st = tu_path("a.safetensors"), *b = tu_path("b.embt");
    cr_assert_eq(import_bytes(data, size, NULL, a), EMBT_OK);
    cr_assert_eq(export_file(a, st, NULL), EMBT_OK, "%s", embt_error_last()->message);
    free(data);
    data = tu_read_file(st, &size);
    cr_assert_eq(import_bytes(data, size, NULL, b), EMBT_OK, "%s", embt_error_last()->message);
    assert_same_tables(a, b);
    free(data);

    /* with a vocabulary (carried by embt.vocab) and i8 tables */
    const char *src = tu_path("src.embt"), *st2 = tu_path("src.safetensors"),
               *back = tu_path("back.embt");
    write_export_source(src);
    cr_assert_eq(export_file(src, st2, NULL), EMBT_OK);
    data = tu_read_file(st2, &size);
    cr_assert_eq(import_bytes(data, size, NULL, back), EMBT_OK, "%s", embt_error_last()->message);
    free(data);
    embt_file *f = open_embt(back);
    const embt_table *t = table(f, "embedding", EMBT_DTYPE_F32, 2, 4, 3);
    const embt_vocab *v = embt_table_vocab(t);
    cr_assert_not_null(v);
    cr_assert_eq(embt_vocab_size(v), 4);
    size_t len;
    cr_assert_eq(memcmp(embt_vocab_token(v, 2, &len),
                        "\xC3\xBC"
                        "ber",
                        5),
                 0);
    cr_assert_eq(len, 5);
    table(f, "q", EMBT_DTYPE_I8, 2, 2, 2);
    const float q2[4] = {-1.0f, -0.5f, 0.0f, 0.5f};
    check_bits(table(f, "q2", EMBT_DTYPE_F32, 2, 2, 2), q2, sizeof q2);
    embt_file_close(f);
}

Test(safetensors, limit_keeps_the_first_rows_of_the_tied_table_and_its_tokens)
{
    size_t size;
    uint8_t *data = fixture("export_expected.safetensors", &size);
    const char *out = tu_path("l.embt");
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.limit = 2;
    embt_convert_report report = {0};
    o.report = &report;
    cr_assert_eq(import_bytes(data, size, &o, out), EMBT_OK, "%s", embt_error_last()->message);
    embt_file *f = open_embt(out);
    const embt_table *t = table(f, "embedding", EMBT_DTYPE_F32, 2, 2, 3);
    cr_assert_eq(embt_vocab_size(embt_table_vocab(t)), 2);
    table(f, "bias", EMBT_DTYPE_F32, 1, 4, 1);
    embt_file_close(f);
    free(data);
}

Test(safetensors, table_option_must_name_a_tensor)
{
    size_t size;
    uint8_t *data = fixture("basic.safetensors", &size);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.table_name = "nope";
    cr_assert_eq(import_bytes(data, size, &o, tu_path("t.embt")), EMBT_EINVAL);
    free(data);
}

Test(safetensors, export_refuses_i8_and_newline_tokens)
{
    const char *src = tu_path("src.embt");
    write_export_source(src);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.dtype = EMBT_DTYPE_I8;
    cr_assert_eq(export_file(src, tu_path("x.safetensors"), &o), EMBT_EINVAL);
    cr_assert(!tu_exists(tu_path("x.safetensors")));

    embt_writer *w = NULL;
    const char *nl = tu_path("nl.embt");
    cr_assert_eq(embt_writer_open(&w, nl, NULL), EMBT_OK);
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    cr_assert_eq(embt_writer_vocab_begin(w, &vs), EMBT_OK);
    cr_assert_eq(embt_writer_vocab_add(w, "a\nb", 3, 0, NULL), EMBT_OK);
    cr_assert_eq(embt_writer_vocab_end(w), EMBT_OK);
    embt_table_spec s = EMBT_TABLE_SPEC_INIT;
    s.name = "embedding", s.rows = 1, s.cols = 1, s.vocab = "words";
    const float one = 1.0f;
    cr_assert_eq(embt_writer_add_table_f32(w, &s, &one), EMBT_OK);
    cr_assert_eq(embt_writer_commit(w), EMBT_OK);
    embt_writer_free(w);
    cr_assert_eq(export_file(nl, tu_path("y.safetensors"), NULL), EMBT_EINVAL);
}

Test(safetensors, export_converts_with_dtype_option)
{
    const char *src = tu_path("src.embt"), *st = tu_path("h.safetensors"),
               *back = tu_path("h.embt");
    write_export_source(src);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.dtype = EMBT_DTYPE_F16;
    cr_assert_eq(export_file(src, st, &o), EMBT_OK, "%s", embt_error_last()->message);
    size_t size;
    uint8_t *data = tu_read_file(st, &size);
    cr_assert_eq(import_bytes(data, size, NULL, back), EMBT_OK, "%s", embt_error_last()->message);
    free(data);
    embt_file *f = open_embt(back);
    table(f, "embedding", EMBT_DTYPE_F16, 2, 4, 3);
    table(f, "q2", EMBT_DTYPE_F16, 2, 2, 2);
    table(f, "ints", EMBT_DTYPE_I32, 2, 2, 2);
    const uint16_t dbl[6] = {0x0000, 0x2E66, 0x3266, 0x34CD, 0x3666, 0x3800};
    check_bits(table(f, "dbl", EMBT_DTYPE_F16, 2, 3, 2), dbl, sizeof dbl);
    embt_file_close(f);
}

/* A table may be named "__metadata__" in an .embt, but as a tensor its name would repeat the
 * header's metadata key, a file every reader (embt's too) refuses (found by review). */
Test(safetensors, export_refuses_a_table_named_like_the_metadata_key)
{
    const char *src = tu_path("meta-named.embt"), *out = tu_path("m.safetensors");
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, src, NULL));
    const float v[2] = {1, 2};
    tu_add_table(w, "__metadata__", 1, 2, NULL, v);
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    TU_STATUS(export_file(src, out, NULL), EMBT_EINVAL);
    cr_assert_not(tu_exists(out));
}

/* ---- malformed input ------------------------------------------------------------------------- */

typedef struct bad_case {
    char name[40];
    char header[200]; /* the JSON text */
    uint8_t data[16]; /* buffer bytes */
    size_t data_len;  /* bytes of data after the header (zeros past data[16]) */
    embt_status status;
    char mark[24]; /* expected offset: 8 + position of mark (nth occurrence) in the header */
    int nth;
    int64_t delta; /* ... plus delta; with no mark: 8 + N + delta */
    embt_dtype dtype;
} bad_case;

#define T1(DT, SHAPE, OFFS)                                                                        \
    "{\"a\":{\"dtype\":\"" DT "\",\"shape\":" SHAPE ",\"data_offsets\":" OFFS "}}"
#define NAN_F32                                                                                    \
    {                                                                                              \
        0x00, 0x00, 0xC0, 0x7F                                                                     \
    }

static bad_case bad_cases[] = {
    {"bad json", "{\"a\":", {0}, 0, EMBT_EPARSE, "", 0, 5, 0},
    {"bad escape", "{\"__metadata__\":{\"k\":\"\\q\"}}", {0}, 0, EMBT_EPARSE, "\\q", 0, 0, 0},
    {"duplicate tensor", "{\"a\":{},\"a\":{}}", {0}, 0, EMBT_EPARSE, "\"a\"", 1, 0, 0},
    {"deep nesting",
     "{\"__metadata__\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
     "[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
     "]]]]]]]]]]]]]]]]]}",
     {0},
     0,
     EMBT_ELIMIT,
     "[",
     63,
     0,
     0},
    {"metadata number", "{\"__metadata__\":{\"k\":1}}", {0}, 0, EMBT_EPARSE, "1", 0, 0, 0},
    {"metadata not object", "{\"__metadata__\":\"x\"}", {0}, 0, EMBT_EPARSE, "\"x\"", 0, 0, 0},
    {"header not object", "[]", {0}, 0, EMBT_EPARSE, "[", 0, 0, 0},
    {"no tensors", " {  } ", {0}, 0, EMBT_EFORMAT, "{", 0, 0, 0},
    {"metadata only", "{\"__metadata__\":{\"k\":\"v\"}}", {0}, 0, EMBT_EFORMAT, "{", 0, 0, 0},
    {"tensor not object", "{\"a\":3}", {0}, 0, EMBT_EPARSE, "3", 0, 0, 0},
    {"missing shape",
     "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,0]}}",
     {0},
     0,
     EMBT_EPARSE,
     "{\"d",
     0,
     0,
     0},
    {"unknown key",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4],\"x\":1}}",
     {0},
     4,
     EMBT_EPARSE,
     "\"x\"",
     0,
     0,
     0},
    {"negative offset", T1("F32", "[1]", "[-1,4]"), {0}, 4, EMBT_EPARSE, "-1", 0, 0, 0},
    {"float shape", T1("F32", "[1.0]", "[0,4]"), {0}, 4, EMBT_EPARSE, "1.0", 0, 0, 0},
    {"offsets not a pair", T1("F32", "[1]", "[0,4,8]"), {0}, 4, EMBT_EPARSE, "[0,", 0, 0, 0},
    {"unknown dtype", T1("F128", "[1]", "[0,16]"), {0}, 16, EMBT_EPARSE, "\"F128", 0, 0, 0},
    {"gap",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
     {0},
     12,
     EMBT_EPARSE,
     "[8,",
     0,
     0,
     0},
    {"first gap", T1("F32", "[1]", "[4,8]"), {0}, 8, EMBT_EPARSE, "[4,", 0, 0, 0},
    {"overlap",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
     {0},
     12,
     EMBT_EPARSE,
     "[4,",
     0,
     0,
     0},
    {"end before begin",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"c\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,2]}}",
     {0},
     4,
     EMBT_EPARSE,
     "[4,",
     0,
     0,
     0},
    {"size mismatch", T1("F32", "[3]", "[0,8]"), {0}, 8, EMBT_EPARSE, "[0,", 0, 0, 0},
    {"numel overflow",
     T1("F32", "[4294967296,4294967296,2]", "[0,8]"),
     {0},
     8,
     EMBT_EPARSE,
     "[4294967296,",
     0,
     0,
     0},
    {"bits overflow",
     T1("F64", "[4294967296,1073741824]", "[0,8]"),
     {0},
     8,
     EMBT_EPARSE,
     "[4294967296,",
     0,
     0,
     0},
    {"sub-byte end", T1("F4", "[3]", "[0,2]"), {0}, 2, EMBT_EPARSE, "[3]", 0, 0, 0},
    {"trailing bytes", T1("F32", "[1]", "[0,4]"), {0}, 6, EMBT_EPARSE, "", -1, 4, 0},
    {"truncated data", T1("F32", "[2]", "[0,8]"), {0}, 4, EMBT_EPARSE, "[0,", 0, 0, 0},
    {"unsupported dtype", T1("BOOL", "[2]", "[0,2]"), {0}, 2, EMBT_ELIMIT, "\"BOOL", 0, 0, 0},
    {"unsupported u16", T1("U16", "[2]", "[0,4]"), {0}, 4, EMBT_ELIMIT, "\"U16", 0, 0, 0},
    {"rank 0", T1("F32", "[]", "[0,4]"), {0}, 4, EMBT_ELIMIT, "[]", 0, 0, 0},
    {"rank 3", T1("F32", "[1,1,1]", "[0,4]"), {0}, 4, EMBT_ELIMIT, "[1,1,1]", 0, 0, 0},
    {"zero columns", T1("F32", "[2,0]", "[0,0]"), {0}, 0, EMBT_ELIMIT, "[2,0]", 0, 0, 0},
    {"empty name",
     "{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
     {0},
     4,
     EMBT_ELIMIT,
     "\"\"",
     0,
     0,
     0},
    {"nan",
     T1("F32", "[2]", "[0,8]"),
     {0, 0, 0x80, 0x3F, 0x00, 0x00, 0xC0, 0x7F},
     8,
     EMBT_EPARSE,
     "",
     -1,
     4,
     0},
    {"nan converted",
     T1("F32", "[2]", "[0,8]"),
     {0, 0, 0x80, 0x3F, 0x00, 0x00, 0xC0, 0x7F},
     8,
     EMBT_EPARSE,
     "",
     -1,
     4,
     EMBT_DTYPE_F16},
    {"f64 overflows f32",
     T1("F64", "[1]", "[0,8]"),
     {0, 0, 0, 0, 0, 0, 0xF0, 0x7E},
     8,
     EMBT_ELIMIT,
     "",
     -1,
     0,
     EMBT_DTYPE_F32},
    {"f32 overflows f16",
     T1("F32", "[1]", "[0,4]"),
     {0, 0, 0x80, 0x47},
     4,
     EMBT_ELIMIT,
     "",
     -1,
     0,
     EMBT_DTYPE_F16},
};

ParameterizedTestParameters(safetensors, refuses_malformed_files_with_status_and_offset)
{
    return cr_make_param_array(bad_case, bad_cases, sizeof bad_cases / sizeof bad_cases[0]);
}

ParameterizedTest(bad_case *c, safetensors, refuses_malformed_files_with_status_and_offset)
{
    size_t n = strlen(c->header);
    size_t size = 8 + n + c->data_len;
    uint8_t *buf = calloc(1, size);
    embt__put64(buf, n);
    memcpy(buf + 8, c->header, n);
    memcpy(buf + 8 + n, c->data, c->data_len < 16 ? c->data_len : 16);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.dtype = c->dtype;
    const char *out = tu_path("bad.embt");
    embt_status st = import_bytes(buf, size, &o, out);
    cr_assert_eq(st, c->status, "%s: status %s (%s)", c->name, embt_status_name(st),
                 embt_error_last()->message);
    uint64_t want;
    if (c->nth >= 0) {
        const char *p = c->header;
        for (int i = 0; i <= c->nth; i++) {
            p = strstr(i ? p + 1 : p, c->mark);
            cr_assert_not_null(p, "%s: mark", c->name);
        }
        want = 8 + (uint64_t)(p - c->header) + (uint64_t)c->delta;
    } else {
        want = 8 + n + (uint64_t)c->delta;
    }
    cr_assert_eq(embt_error_last()->offset, want, "%s: offset %llu, want %llu (%s)", c->name,
                 (unsigned long long)embt_error_last()->offset, (unsigned long long)want,
                 embt_error_last()->message);
    cr_assert(!tu_exists(out));
    free(buf);
}

Test(safetensors, duplicate_keys_are_refused_even_when_the_file_is_otherwise_valid)
{
    const char *h = "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}";
    size_t n = strlen(h);
    uint8_t buf[128] = {0};
    embt__put64(buf, n);
    memcpy(buf + 8, h, n);
    cr_assert_eq(import_bytes(buf, 8 + n, NULL, tu_path("d.embt")), EMBT_EPARSE);
    cr_assert_eq(embt_error_last()->offset, 8 + (uint64_t)(strstr(h, "\"k\":\"2") - h));
}

Test(safetensors, allow_nonfinite_keeps_nan_and_counts_it)
{
    const char *h = T1("F32", "[2]", "[0,8]");
    size_t n = strlen(h);
    uint8_t buf[256] = {0};
    embt__put64(buf, n);
    memcpy(buf + 8, h, n);
    const uint8_t vals[8] = {0, 0, 0x80, 0x3F, 0x00, 0x00, 0xC0, 0x7F};
    memcpy(buf + 8 + n, vals, 8);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.flags = EMBT_CONVERT_ALLOW_NONFINITE;
    const char *out = tu_path("nan.embt");
    cr_assert_eq(import_bytes(buf, 8 + n + 8, &o, out), EMBT_OK);
    embt_file *f = open_embt(out);
    check_bits(table(f, "a", EMBT_DTYPE_F32, 1, 2, 1), vals, 8);
    embt_file_close(f);
}

/* Header lengths that cannot fit: refused from the 8-byte prefix alone, before any allocation. */
static void *count_malloc(size_t n)
{
    if (n > largest_allocation)
        largest_allocation = n;
    return malloc(n);
}
static void *count_realloc(void *p, size_t n)
{
    if (n > largest_allocation)
        largest_allocation = n;
    return realloc(p, n);
}

Test(safetensors, huge_header_lengths_in_tiny_files_fail_without_allocating)
{
    cr_assert_eq(embt_set_allocator(count_malloc, count_realloc, free), EMBT_OK);
    const char *out = tu_path("huge.embt");
    uint8_t buf[16] = {0};
    memcpy(buf + 8, "{}      ", 8);
    const uint64_t lengths[] = {99999999, 100000000, 100000001, UINT64_MAX, UINT64_MAX - 7, 9};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        embt__put64(buf, lengths[i]);
        embt_status st = import_bytes(buf, sizeof buf, NULL, out);
        cr_assert_eq(st, EMBT_EFORMAT, "length %llu: %s", (unsigned long long)lengths[i],
                     embt_error_last()->message);
        cr_assert_eq(embt_error_last()->offset, 0);
        cr_assert_lt(largest_allocation, 4096, "length %llu allocated %zu",
                     (unsigned long long)lengths[i], largest_allocation);
    }
    cr_assert_eq(import_bytes(buf, 7, NULL, out), EMBT_EFORMAT);
    cr_assert_eq(import_bytes(buf, 0, NULL, out), EMBT_EFORMAT);
}

Test(safetensors, sniffs_a_header_that_opens_an_object)
{
    size_t size;
    uint8_t *data = fixture("basic.safetensors", &size);
    cr_assert(embt__sniff_safetensors(data, size));
    cr_assert_not(embt__sniff_safetensors(data, 9));
    data[8] = '[';
    cr_assert_not(embt__sniff_safetensors(data, size));
    cr_assert_not(embt__sniff_safetensors((const uint8_t *)"3 2\nthe 1 2\n", 12));
    free(data);
}
