/* test_word2vec_bin.c: word2vec binary import and export: gensim's file imports to exactly the
 * values gensim wrote, exports back byte for byte (with word2vec.c's newline per row), every
 * malformed class fails with its byte offset and leaves no output, the lenient policies count what
 * they did, and round trips keep every bit. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "test_util.h"

TestSuite(word2vec_bin, .init = tu_setup, .fini = tu_teardown);

#define DIM 7
#define ROWS 50

/* expected.txt: the tokens and the bit patterns gensim was given. */
typedef struct expected {
    char tokens[ROWS][128];
    uint32_t bits[ROWS][DIM];
} expected;

static void read_expected(expected *e)
{
    FILE *f = fopen(tu_fixture("gensim", "expected.txt"), "r");
    cr_assert_not_null(f);
    for (int r = 0; r < ROWS; r++) {
        cr_assert_eq(fscanf(f, "%127s", e->tokens[r]), 1);
        for (int c = 0; c < DIM; c++)
            cr_assert_eq(fscanf(f, "%x", &e->bits[r][c]), 1);
    }
    fclose(f);
}

/* Imports `size` bytes as word2vec binary into out_path. */
static embt_status import_bytes(const void *data, size_t size, const embt_convert_options *o,
                                embt_convert_report *rep, const char *out_path)
{
    embt__input in;
    memset(&in, 0, sizeof in);
    in.path = "input.bin";
    in.data = data;
    in.size = size;
    embt_convert_report local;
    memset(&local, 0, sizeof local);
    embt_writer *w = NULL;
    embt_status rc = embt_writer_open(&w, out_path, NULL);
    embt__import ctx = {&in, w, o, rep ? rep : &local, "embedding", "words"};
    if (rc == EMBT_OK)
        rc = embt__import_word2vec_bin(&ctx);
    if (rc == EMBT_OK)
        rc = embt_writer_commit(w);
    embt_writer_free(w);
    return rc;
}

static embt_status import_file(const char *path, const embt_convert_options *o,
                               const char *out_path)
{
    size_t n;
    uint8_t *data = tu_read_file(path, &n);
    embt_status rc = import_bytes(data, n, o, NULL, out_path);
    free(data);
    return rc;
}

static embt_status export_bin(const char *embt_path, const char *out_path)
{
    embt_file *f = NULL;
    embt__output *out = NULL;
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    const embt_table *t;
    embt_status rc = embt_file_open(&f, embt_path, NULL);
    if (rc == EMBT_OK)
        rc = embt_file_table(&t, f, "embedding");
    if (rc == EMBT_OK)
        rc = embt__output_open(&out, out_path);
    if (rc == EMBT_OK)
        rc = embt__export_word2vec_bin(f, t, out, &o);
    if (rc == EMBT_OK)
        rc = embt__output_commit(out);
    embt__output_free(out);
    embt_file_close(f);
    return rc;
}

static void check_against_expected(const char *embt_path, const expected *e)
{
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, embt_path, NULL));
    const embt_table *t;
    TU_OK(embt_file_table(&t, f, "embedding"));
    const embt_vocab *v = embt_table_vocab(t);
    cr_assert_not_null(v);
    cr_assert_eq(embt_vocab_size(v), ROWS);
    cr_assert_eq(embt_table_cols(t), DIM);
    for (uint32_t r = 0; r < ROWS; r++) {
        size_t len;
        const char *tok = embt_vocab_token(v, r, &len);
        cr_assert(len == strlen(e->tokens[r]) && memcmp(tok, e->tokens[r], len) == 0,
                  "token %u: '%.*s' != '%s'", r, (int)len, tok, e->tokens[r]);
        const float *row = embt_table_row_f32(t, r);
        for (int c = 0; c < DIM; c++)
            cr_assert_eq(tu_f32_bits(row[c]), e->bits[r][c], "row %u col %d", r, c);
    }
    size_t mlen;
    const char *meta = embt_file_metadata(f, &mlen);
    cr_assert(meta && strstr(meta, "source: {format: word2vec-bin, rows: 50, dim: 7}"), "%.*s",
              (int)mlen, meta ? meta : "");
    embt_file_close(f);
}

Test(word2vec_bin, gensim_binary_imports_to_exactly_the_values_gensim_wrote)
{
    expected e;
    read_expected(&e);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    TU_OK(import_file(tu_fixture("gensim", "vectors.bin"), &o, tu_path("a.embt")));
    check_against_expected(tu_path("a.embt"), &e);
}

/* gensim's bytes with "\n" after each row's values: what word2vec.c writes. */
static uint8_t *gensim_with_newlines(size_t *n_out)
{
    size_t n;
    uint8_t *g = tu_read_file(tu_fixture("gensim", "vectors.bin"), &n);
    uint8_t *w = malloc(n + ROWS);
    size_t p = (size_t)((uint8_t *)memchr(g, '\n', n) - g) + 1, q = p;
    memcpy(w, g, p);
    for (int r = 0; r < ROWS; r++) {
        size_t sp = (size_t)((uint8_t *)memchr(g + p, ' ', n - p) - g);
        size_t end = sp + 1 + 4 * DIM;
        memcpy(w + q, g + p, end - p);
        q += end - p;
        w[q++] = '\n';
        p = end;
    }
    cr_assert_eq(p, n);
    free(g);
    *n_out = q;
    return w;
}

Test(word2vec_bin, export_gives_gensims_bytes_with_a_newline_per_row)
{
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    TU_OK(import_file(tu_fixture("gensim", "vectors.bin"), &o, tu_path("a.embt")));
    TU_OK(export_bin(tu_path("a.embt"), tu_path("b.bin")));
    size_t nw, nb;
    uint8_t *want = gensim_with_newlines(&nw);
    uint8_t *got = tu_read_file(tu_path("b.bin"), &nb);
    cr_assert_eq(nb, nw);
    cr_assert_arr_eq(got, want, nw);
    free(want);
    free(got);
}

Test(word2vec_bin, round_trip_gives_identical_embt_bytes)
{
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    TU_OK(import_file(tu_fixture("gensim", "vectors.bin"), &o, tu_path("a.embt")));
    TU_OK(export_bin(tu_path("a.embt"), tu_path("b.bin")));
    TU_OK(import_file(tu_path("b.bin"), &o, tu_path("c.embt")));
    cr_assert(tu_same_file(tu_path("a.embt"), tu_path("c.embt")));
    TU_OK(export_bin(tu_path("c.embt"), tu_path("d.bin")));
    cr_assert(tu_same_file(tu_path("b.bin"), tu_path("d.bin")));
}

Test(word2vec_bin, sniffs_binary_but_not_text_or_other_bytes)
{
    size_t n;
    uint8_t *bin = tu_read_file(tu_fixture("gensim", "vectors.bin"), &n);
    cr_assert(embt__sniff_word2vec_bin(bin, n));
    cr_assert(embt__sniff_word2vec_bin(bin, 64)); /* a prefix is enough */
    free(bin);
    uint8_t *txt = tu_read_file(tu_fixture("gensim", "vectors.txt"), &n);
    cr_assert_not(embt__sniff_word2vec_bin(txt, n));
    free(txt);
    static const char *const no[] = {"",
                                     "50",
                                     "50 7",
                                     "50 7\n",
                                     "the 0.1 0.2\n",
                                     "\x93NUMPY",
                                     "1 x\nab \x01\x02\x03\x04",
                                     "1 2 3\na \x01\x02\x03\x04"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        cr_expect_not(embt__sniff_word2vec_bin((const uint8_t *)no[i], strlen(no[i])), "%zu", i);
    cr_assert(embt__sniff_word2vec_bin((const uint8_t *)"0 7\n", 4));
    cr_assert(embt__sniff_word2vec_bin((const uint8_t *)"1 1\nab \x00\x00\x80\x3f", 11));
}

/* ---- malformed inputs: status, byte offset, and no output file ---- */

typedef struct bad_case {
    const char *name;
    const char *bytes;
    size_t len; /* 0: strlen(bytes) */
    uint64_t offset;
} bad_case;

#define ONE "\x00\x00\x80\x3f" /* 1.0f */
#define NAN_BYTES "\x00\x00\xc0\x7f"
#define INF_BYTES "\x00\x00\x80\xff"

Test(word2vec_bin, every_malformed_class_fails_with_its_offset_and_leaves_no_file)
{
    static const bad_case cases[] = {
        {"header not a number", "x 2\n", 0, 0},
        {"header without dim", "2\n", 0, 1},
        {"header dim missing after blank", "2 \n", 0, 2},
        {"header dim zero", "1 0\n", 0, 0},
        {"header with a third number", "1 1 3\na " ONE, 0, 4},
        {"header without line end", "1 1", 0, 3},
        {"header count too long", "1234567890123456 1\n", 0, 0},
        {"truncated values", "1 2\nab " ONE "\x01", 12, 7},
        {"no space before the end", "1 2\nabc", 0, 4},
        {"empty token", "1 1\n " ONE, 9, 4},
        {"fewer rows than declared", "2 1\na " ONE "\n", 11, 11},
        {"fewer rows than declared, no newline", "2 1\na " ONE, 10, 10},
        {"data after the declared rows", "1 1\na " ONE "\nb " ONE, 16, 11},
        {"invalid utf-8 lead", "1 1\n\xff " ONE, 10, 4},
        {"invalid utf-8 truncated sequence", "1 1\nab\xc3 " ONE, 12, 6},
        {"nul byte in token", "1 1\na\x00 " ONE, 11, 5},
        {"duplicate token", "2 1\na " ONE "\na " ONE, 17, 11},
        {"nan value", "1 2\na " ONE NAN_BYTES, 14, 10},
        {"infinite value", "1 2\na " INF_BYTES ONE, 14, 6},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_case *c = &cases[i];
        size_t len = c->len ? c->len : strlen(c->bytes);
        embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
        embt_status rc = import_bytes(c->bytes, len, &o, NULL, tu_path("bad.embt"));
        cr_expect_eq(rc, EMBT_EPARSE, "%s: %s (%s)", c->name, embt_status_name(rc),
                     embt_error_last()->message);
        cr_expect_eq(embt_error_last()->offset, c->offset, "%s: offset %llu, expected %llu (%s)",
                     c->name, (unsigned long long)embt_error_last()->offset,
                     (unsigned long long)c->offset, embt_error_last()->message);
        cr_expect_eq(tu_count_entries(), 0, "%s left a file", c->name);
    }
}

Test(word2vec_bin, token_longer_than_65535_bytes_fails_at_its_start)
{
    size_t len = 4 + 65536 + 1 + 4;
    char *b = malloc(len);
    memcpy(b, "1 1\n", 4);
    memset(b + 4, 'a', 65536);
    memcpy(b + 4 + 65536, " " ONE, 5);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    TU_STATUS(import_bytes(b, len, &o, NULL, tu_path("bad.embt")), EMBT_EPARSE);
    cr_assert_eq(embt_error_last()->offset, 4);
    /* 65535 bytes is fine */
    char *ok = malloc(len);
    memcpy(ok, "1 1\n", 4);
    memset(ok + 4, 'a', 65535);
    memcpy(ok + 4 + 65535, " " ONE, 5);
    TU_OK(import_bytes(ok, len - 1, &o, NULL, tu_path("ok.embt")));
    free(b);
    free(ok);
}

Test(word2vec_bin, every_truncation_of_the_gensim_file_fails_cleanly)
{
    size_t n;
    uint8_t *bin = tu_read_file(tu_fixture("gensim", "vectors.bin"), &n);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    for (size_t len = 0; len < n; len++) {
        embt_status rc = import_bytes(bin, len, &o, NULL, tu_path("t.embt"));
        cr_assert_eq(rc, EMBT_EPARSE, "prefix %zu: %s", len, embt_status_name(rc));
        cr_assert_leq(embt_error_last()->offset, len, "prefix %zu", len);
    }
    cr_assert_eq(tu_count_entries(), 0);
    TU_OK(import_bytes(bin, n, &o, NULL, tu_path("t.embt")));
    free(bin);
}

/* ---- lenient policies ---- */

static float value_of(const char *embt_path, uint32_t row, uint32_t col, uint32_t *rows_out)
{
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, embt_path, NULL));
    const embt_table *t;
    TU_OK(embt_file_table(&t, f, "embedding"));
    float row_values[4];
    TU_OK(embt_table_read_row_f32(row_values, t, row));
    *rows_out = (uint32_t)embt_table_rows(t);
    embt_file_close(f);
    return row_values[col];
}

#define TWO "\x00\x00\x00\x40"   /* 2.0f */
#define THREE "\x00\x00\x40\x40" /* 3.0f */

Test(word2vec_bin, duplicates_keep_first_or_last_and_are_counted)
{
    static const char in[] = "3 1\na " ONE "\nb " TWO "\na " THREE "\n";
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    embt_convert_report rep;
    uint32_t rows;
    o.on_duplicate = EMBT_DUPLICATE_FIRST;
    memset(&rep, 0, sizeof rep);
    TU_OK(import_bytes(in, sizeof in - 1, &o, &rep, tu_path("first.embt")));
    cr_assert_eq(rep.duplicates_dropped, 1);
    cr_assert_eq(rep.rows, 2);
    cr_assert_eq(value_of(tu_path("first.embt"), 0, 0, &rows), 1.0f);
    cr_assert_eq(rows, 2);
    o.on_duplicate = EMBT_DUPLICATE_LAST;
    memset(&rep, 0, sizeof rep);
    TU_OK(import_bytes(in, sizeof in - 1, &o, &rep, tu_path("last.embt")));
    cr_assert_eq(rep.duplicates_dropped, 1);
    cr_assert_eq(value_of(tu_path("last.embt"), 0, 0, &rows), 3.0f);
    cr_assert_eq(value_of(tu_path("last.embt"), 1, 0, &rows), 2.0f);
}

Test(word2vec_bin, bad_utf8_is_replaced_or_skipped_and_counted)
{
    static const char in[] = "2 1\nz\xe9n " ONE "\nok " TWO;
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    embt_convert_report rep;
    uint32_t rows;
    o.on_bad_utf8 = EMBT_BAD_UTF8_REPLACE;
    memset(&rep, 0, sizeof rep);
    TU_OK(import_bytes(in, sizeof in - 1, &o, &rep, tu_path("rep.embt")));
    cr_assert_eq(rep.utf8_replaced, 1);
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, tu_path("rep.embt"), NULL));
    const embt_vocab *v;
    TU_OK(embt_file_vocab(&v, f, "words"));
    uint32_t id;
    TU_OK(embt_vocab_find(&id, v, "z\xef\xbf\xbdn", 5));
    cr_assert_eq(id, 0);
    embt_file_close(f);
    o.on_bad_utf8 = EMBT_BAD_UTF8_SKIP;
    memset(&rep, 0, sizeof rep);
    TU_OK(import_bytes(in, sizeof in - 1, &o, &rep, tu_path("skip.embt")));
    cr_assert_eq(rep.utf8_skipped, 1);
    cr_assert_eq(value_of(tu_path("skip.embt"), 0, 0, &rows), 2.0f);
    cr_assert_eq(rows, 1);
}

Test(word2vec_bin, nonfinite_values_pass_when_allowed_and_are_counted)
{
    static const char in[] = "1 3\na " NAN_BYTES INF_BYTES ONE;
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    embt_convert_report rep;
    memset(&rep, 0, sizeof rep);
    o.flags = EMBT_CONVERT_ALLOW_NONFINITE;
    TU_OK(import_bytes(in, sizeof in - 1, &o, &rep, tu_path("nf.embt")));
    cr_assert_eq(rep.nonfinite, 2);
    uint32_t rows;
    cr_assert(isnan(value_of(tu_path("nf.embt"), 0, 0, &rows)));
    cr_assert(isinf(value_of(tu_path("nf.embt"), 0, 1, &rows)));
    /* an integer dtype cannot hold them: still an error */
    o.dtype = EMBT_DTYPE_I8;
    TU_STATUS(import_bytes(in, sizeof in - 1, &o, &rep, tu_path("nf8.embt")), EMBT_EPARSE);
    cr_assert_eq(embt_error_last()->offset, 6);
}

Test(word2vec_bin, limit_reads_the_first_rows_and_ignores_the_rest)
{
    static const char in[] = "3 1\na " ONE "\nb " TWO "\n\xff\xff garbage";
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    embt_convert_report rep;
    memset(&rep, 0, sizeof rep);
    o.limit = 2;
    TU_OK(import_bytes(in, sizeof in - 1, &o, &rep, tu_path("lim.embt")));
    cr_assert_eq(rep.rows, 2);
    uint32_t rows;
    cr_assert_eq(value_of(tu_path("lim.embt"), 1, 0, &rows), 2.0f);
    cr_assert_eq(rows, 2);
}

Test(word2vec_bin, dtype_and_compression_options_apply)
{
    expected e;
    read_expected(&e);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.dtype = EMBT_DTYPE_F16;
    o.flags = EMBT_CONVERT_COMPRESS;
    TU_OK(import_file(tu_fixture("gensim", "vectors.bin"), &o, tu_path("h.embt")));
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, tu_path("h.embt"), NULL));
    const embt_table *t;
    TU_OK(embt_file_table(&t, f, "embedding"));
    cr_assert_eq(embt_table_dtype(t), EMBT_DTYPE_F16);
    for (uint32_t r = 0; r < ROWS; r++) {
        float row[DIM], want[DIM];
        uint16_t h[DIM];
        TU_OK(embt_table_read_row_f32(row, t, r));
        for (int c = 0; c < DIM; c++)
            want[c] = tu_bits_f32(e.bits[r][c]);
        embt_f32_to_f16(h, want, DIM);
        embt_f16_to_f32(want, h, DIM);
        for (int c = 0; c < DIM; c++)
            cr_assert_eq(tu_f32_bits(row[c]), tu_f32_bits(want[c]), "row %u col %d", r, c);
    }
    bool compressed = false;
    for (size_t i = 0; i < embt_file_section_count(f); i++) {
        embt_section_info info;
        TU_OK(embt_file_section(&info, f, i));
        compressed = compressed || info.codec != 0;
    }
    cr_assert(compressed);
    /* the f16 table exports as f32 values; 3.4e38 became infinity in f16 */
    TU_OK(export_bin(tu_path("h.embt"), tu_path("h.bin")));
    embt_convert_options back = EMBT_CONVERT_OPTIONS_INIT;
    TU_STATUS(import_file(tu_path("h.bin"), &back, tu_path("h2.embt")), EMBT_EPARSE);
    back.flags = EMBT_CONVERT_ALLOW_NONFINITE;
    back.dtype = EMBT_DTYPE_F16;
    back.flags |= EMBT_CONVERT_COMPRESS;
    TU_OK(import_file(tu_path("h.bin"), &back, tu_path("h2.embt")));
    embt_file *f2 = NULL;
    TU_OK(embt_file_open(&f2, tu_path("h2.embt"), NULL));
    const embt_table *t2;
    TU_OK(embt_file_table(&t2, f2, "embedding"));
    cr_assert_arr_eq(embt_table_data(t2), embt_table_data(t), ROWS * DIM * 2);
    embt_file_close(f2);
    embt_file_close(f);
}

/* ---- export refusals ---- */

static void write_small(const char *path, const char *const *tokens, size_t n, bool tie)
{
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, path, NULL));
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    TU_OK(embt_writer_vocab_begin(w, &vs));
    for (size_t i = 0; i < n; i++)
        TU_OK(embt_writer_vocab_add(w, tokens[i], strlen(tokens[i]), 0, NULL));
    TU_OK(embt_writer_vocab_end(w));
    float data[16] = {0};
    tu_add_table(w, "embedding", n, 2, tie ? "words" : NULL, data);
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
}

Test(word2vec_bin, export_refuses_tokens_it_cannot_represent_and_untied_tables)
{
    static const char *const spaced[] = {"ok", "a b"};
    write_small(tu_path("s.embt"), spaced, 2, true);
    TU_STATUS(export_bin(tu_path("s.embt"), tu_path("s.bin")), EMBT_EINVAL);
    cr_assert_not(tu_exists(tu_path("s.bin")));
    static const char *const newline[] = {"\nx"};
    write_small(tu_path("n.embt"), newline, 1, true);
    TU_STATUS(export_bin(tu_path("n.embt"), tu_path("n.bin")), EMBT_EINVAL);
    static const char *const fine[] = {"tab\there", "line\nbreak"};
    write_small(tu_path("f.embt"), fine, 2, true);
    TU_OK(export_bin(tu_path("f.embt"), tu_path("f.bin")));
    write_small(tu_path("u.embt"), fine, 2, false);
    TU_STATUS(export_bin(tu_path("u.embt"), tu_path("u.bin")), EMBT_EINVAL);
}
