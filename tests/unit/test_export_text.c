/* test_export_text.c: word2vec and GloVe text export: gensim's values print exactly as gensim
 * printed them, every printed value reads back (strtof) to the same bits, text -> embt -> text ->
 * embt is lossless, tables of other dtypes print their f32 values, tokens with blanks and tables
 * without a vocabulary are refused. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "test_util.h"

TestSuite(export_text, .init = tu_setup, .fini = tu_teardown);

/* Imports gensim's binary fixture (the word2vec-bin importer) into out_path. */
static void import_gensim_bin(const char *out_path)
{
    size_t n;
    uint8_t *data = tu_read_file(tu_fixture("gensim", "vectors.bin"), &n);
    embt__input in;
    memset(&in, 0, sizeof in);
    in.path = "vectors.bin";
    in.data = data;
    in.size = n;
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    embt_convert_report rep;
    memset(&rep, 0, sizeof rep);
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, out_path, NULL));
    embt__import ctx = {&in, w, &o, &rep, "embedding", "words"};
    TU_OK(embt__import_word2vec_bin(&ctx));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    free(data);
}

static embt_status export_text(const char *embt_path, const char *out_path, embt_format format,
                               uint64_t limit)
{
    embt_file *f = NULL;
    embt__output *out = NULL;
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.limit = limit;
    const embt_table *t;
    embt_status rc = embt_file_open(&f, embt_path, NULL);
    if (rc == EMBT_OK)
        rc = embt_file_table(&t, f, "embedding");
    if (rc == EMBT_OK)
        rc = embt__output_open(&out, out_path);
    if (rc == EMBT_OK)
        rc = embt__export_text(f, t, out, format, &o);
    if (rc == EMBT_OK)
        rc = embt__output_commit(out);
    embt__output_free(out);
    embt_file_close(f);
    return rc;
}

static embt_status import_text(const char *in_path, const char *out_path, embt_format format)
{
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.from = format;
    o.to = EMBT_FORMAT_EMBT;
    return embt_convert_file(in_path, out_path, &o);
}

Test(export_text, word2vec_text_of_gensims_values_is_gensims_text_byte_for_byte)
{
    import_gensim_bin(tu_path("a.embt"));
    TU_OK(export_text(tu_path("a.embt"), tu_path("a.txt"), EMBT_FORMAT_WORD2VEC, 0));
    cr_assert(tu_same_file(tu_path("a.txt"), tu_fixture("gensim", "vectors.txt")));
}

Test(export_text, glove_text_is_the_same_without_the_header)
{
    import_gensim_bin(tu_path("a.embt"));
    TU_OK(export_text(tu_path("a.embt"), tu_path("a.glove"), EMBT_FORMAT_GLOVE, 0));
    size_t ng, nw;
    uint8_t *g = tu_read_file(tu_path("a.glove"), &ng);
    uint8_t *w = tu_read_file(tu_fixture("gensim", "vectors.txt"), &nw);
    size_t header = (size_t)((uint8_t *)memchr(w, '\n', nw) - w) + 1;
    cr_assert_eq(ng, nw - header);
    cr_assert_arr_eq(g, w + header, ng);
    free(g);
    free(w);
}

Test(export_text, text_embt_text_embt_is_lossless_and_byte_identical)
{
    TU_OK(
        import_text(tu_fixture("gensim", "vectors.txt"), tu_path("a.embt"), EMBT_FORMAT_WORD2VEC));
    TU_OK(export_text(tu_path("a.embt"), tu_path("b.txt"), EMBT_FORMAT_WORD2VEC, 0));
    TU_OK(import_text(tu_path("b.txt"), tu_path("b.embt"), EMBT_FORMAT_WORD2VEC));
    cr_assert(tu_same_file(tu_path("a.embt"), tu_path("b.embt")));
    cr_assert(tu_same_file(tu_path("b.txt"), tu_fixture("gensim", "vectors.txt")));
    TU_OK(export_text(tu_path("b.embt"), tu_path("c.glove"), EMBT_FORMAT_GLOVE, 0));
    TU_OK(import_text(tu_path("c.glove"), tu_path("c.embt"), EMBT_FORMAT_GLOVE));
    TU_OK(export_text(tu_path("c.embt"), tu_path("d.glove"), EMBT_FORMAT_GLOVE, 0));
    cr_assert(tu_same_file(tu_path("c.glove"), tu_path("d.glove")));
}

/* A table of `rows` x `dim` random finite bit patterns (every exponent, subnormals, -0) with
 * non-ASCII tokens; returns the values for comparison (rows * dim, malloc). */
static uint32_t *write_random(const char *path, uint32_t rows, uint32_t dim, embt_dtype dtype)
{
    uint64_t rng = 99;
    uint32_t *bits = malloc((size_t)rows * dim * sizeof *bits);
    for (size_t i = 0; i < (size_t)rows * dim; i++) {
        uint32_t b;
        do {
            b = (uint32_t)tu_rand(&rng);
        } while (((b >> 23) & 0xFF) == 0xFF);
        bits[i] = i % 97 == 5 ? 0x80000000u : b;
    }
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, path, NULL));
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    TU_OK(embt_writer_vocab_begin(w, &vs));
    for (uint32_t r = 0; r < rows; r++) {
        char tok[32];
        int n = snprintf(tok, sizeof tok, "w\xc3\xa9%u", r);
        TU_OK(embt_writer_vocab_add(w, tok, (size_t)n, 0, NULL));
    }
    TU_OK(embt_writer_vocab_end(w));
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = "embedding";
    ts.rows = rows;
    ts.cols = dim;
    ts.vocab = "words";
    ts.dtype = dtype;
    TU_OK(embt_writer_add_table_f32(w, &ts, (const float *)bits));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    return bits;
}

/* Parses the text export and checks each token and value against `want` (rows x dim f32). */
static void check_text(const char *path, bool header, uint32_t rows, uint32_t dim,
                       const float *want)
{
    size_t n;
    char *text = (char *)tu_read_file(path, &n);
    text[n] = '\0';
    char *p = text;
    if (header) {
        char expect[64];
        int hn = snprintf(expect, sizeof expect, "%u %u\n", rows, dim);
        cr_assert_eq(strncmp(p, expect, (size_t)hn), 0);
        p += hn;
    }
    for (uint32_t r = 0; r < rows; r++) {
        char tok[32];
        int tn = snprintf(tok, sizeof tok, "w\xc3\xa9%u ", r);
        cr_assert_eq(strncmp(p, tok, (size_t)tn), 0, "row %u", r);
        p += tn;
        for (uint32_t c = 0; c < dim; c++) {
            char *end;
            float v = strtof(p, &end);
            cr_assert_eq(tu_f32_bits(v), tu_f32_bits(want[(size_t)r * dim + c]), "row %u col %u", r,
                         c);
            cr_assert_eq(*end, c + 1 < dim ? ' ' : '\n', "row %u col %u", r, c);
            p = end + 1;
        }
    }
    cr_assert_eq((size_t)(p - text), n);
    free(text);
}

Test(export_text, a_large_table_prints_every_value_so_it_reads_back_bit_exactly)
{
    /* 40,000 rows of 20: several chunks, each split over two threads */
    uint32_t rows = 40000, dim = 20;
    uint32_t *bits = write_random(tu_path("r.embt"), rows, dim, EMBT_DTYPE_F32);
    TU_OK(export_text(tu_path("r.embt"), tu_path("r.txt"), EMBT_FORMAT_WORD2VEC, 0));
    check_text(tu_path("r.txt"), true, rows, dim, (const float *)bits);
    TU_OK(export_text(tu_path("r.embt"), tu_path("r.glove"), EMBT_FORMAT_GLOVE, 0));
    check_text(tu_path("r.glove"), false, rows, dim, (const float *)bits);
    TU_OK(import_text(tu_path("r.txt"), tu_path("r2.embt"), EMBT_FORMAT_WORD2VEC));
    TU_OK(export_text(tu_path("r2.embt"), tu_path("r2.txt"), EMBT_FORMAT_WORD2VEC, 0));
    cr_assert(tu_same_file(tu_path("r.txt"), tu_path("r2.txt")));
    TU_OK(export_text(tu_path("r.embt"), tu_path("lim.txt"), EMBT_FORMAT_WORD2VEC, 300));
    check_text(tu_path("lim.txt"), true, 300, dim, (const float *)bits);
    free(bits);
}

Test(export_text, tables_of_other_dtypes_print_their_f32_values)
{
    uint32_t rows = 600, dim = 5;
    uint32_t *bits = write_random(tu_path("h.embt"), rows, dim, EMBT_DTYPE_F16);
    float *want = malloc((size_t)rows * dim * sizeof *want);
    uint16_t *h = malloc((size_t)rows * dim * sizeof *h);
    embt_f32_to_f16(h, (const float *)bits, (size_t)rows * dim);
    embt_f16_to_f32(want, h, (size_t)rows * dim);
    TU_OK(export_text(tu_path("h.embt"), tu_path("h.txt"), EMBT_FORMAT_WORD2VEC, 0));
    check_text(tu_path("h.txt"), true, rows, dim, want);
    free(bits);
    free(want);
    free(h);
}

Test(export_text, nan_and_infinities_print_by_name)
{
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, tu_path("n.embt"), NULL));
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    TU_OK(embt_writer_vocab_begin(w, &vs));
    TU_OK(embt_writer_vocab_add(w, "x", 1, 0, NULL));
    TU_OK(embt_writer_vocab_end(w));
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = "embedding";
    ts.rows = 1;
    ts.cols = 4;
    ts.vocab = "words";
    float v[4] = {NAN, INFINITY, -INFINITY, -0.0f};
    TU_OK(embt_writer_add_table_f32(w, &ts, v));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    TU_OK(export_text(tu_path("n.embt"), tu_path("n.txt"), EMBT_FORMAT_WORD2VEC, 0));
    size_t n;
    char *text = (char *)tu_read_file(tu_path("n.txt"), &n);
    static const char want[] = "1 4\nx nan inf -inf -0.0\n";
    cr_assert_eq(n, sizeof want - 1);
    cr_assert_arr_eq(text, want, n);
    free(text);
}

static void write_tokens(const char *path, const char *const *tokens, size_t n, bool tie)
{
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, path, NULL));
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    TU_OK(embt_writer_vocab_begin(w, &vs));
    for (size_t i = 0; i < n; i++)
        TU_OK(embt_writer_vocab_add(w, tokens[i], strlen(tokens[i]), 0, NULL));
    TU_OK(embt_writer_vocab_end(w));
    float data[8] = {0};
    tu_add_table(w, "embedding", n, 1, tie ? "words" : NULL, data);
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
}

Test(export_text, tokens_with_blanks_or_line_breaks_are_refused_and_leave_no_file)
{
    static const char *const bad[] = {"a b", "a\tb", "a\nb", "a\rb"};
    for (size_t i = 0; i < 4; i++) {
        const char *tokens[3] = {"ok", "fine", bad[i]};
        write_tokens(tu_path("b.embt"), tokens, 3, true);
        TU_STATUS(export_text(tu_path("b.embt"), tu_path("b.txt"), EMBT_FORMAT_WORD2VEC, 0),
                  EMBT_EINVAL);
        cr_assert_not(tu_exists(tu_path("b.txt")), "token %zu", i);
        cr_assert_eq(tu_count_entries(), 1); /* b.embt only: no temporary file is left */
    }
    /* the bad token is beyond the limit: fine */
    const char *tokens[3] = {"ok", "fine", "a b"};
    write_tokens(tu_path("b.embt"), tokens, 3, true);
    TU_OK(export_text(tu_path("b.embt"), tu_path("b.txt"), EMBT_FORMAT_GLOVE, 2));
}

Test(export_text, a_table_without_vocabulary_is_refused)
{
    const char *tokens[1] = {"ok"};
    write_tokens(tu_path("u.embt"), tokens, 1, false);
    TU_STATUS(export_text(tu_path("u.embt"), tu_path("u.txt"), EMBT_FORMAT_WORD2VEC, 0),
              EMBT_EINVAL);
    cr_assert_not(tu_exists(tu_path("u.txt")));
}

Test(export_text, glove_refuses_what_a_headerless_reader_would_lose)
{
    /* a first token starting with U+FEFF reads back as a byte order mark */
    const char *tokens[2] = {"\xEF\xBB\xBF\x62om", "ok"};
    write_tokens(tu_path("f.embt"), tokens, 2, true);
    TU_STATUS(export_text(tu_path("f.embt"), tu_path("f.txt"), EMBT_FORMAT_GLOVE, 0), EMBT_EINVAL);
    cr_assert_not(tu_exists(tu_path("f.txt")));
    /* word2vec text has a header line first, so the same token is fine there */
    TU_OK(export_text(tu_path("f.embt"), tu_path("f.vec"), EMBT_FORMAT_WORD2VEC, 0));
    /* a table of no rows would be an empty glove file, which is no vectors file at all */
    write_tokens(tu_path("e.embt"), tokens, 0, true);
    TU_STATUS(export_text(tu_path("e.embt"), tu_path("e.txt"), EMBT_FORMAT_GLOVE, 0), EMBT_EINVAL);
    cr_assert_not(tu_exists(tu_path("e.txt")));
}
