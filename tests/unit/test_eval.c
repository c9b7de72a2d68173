/* test_eval.c: embt_eval_analogies() and embt_eval_pairs(): gensim 4's figures on the bundled GloVe
 * sample (tests/fixtures/gensim_eval, made by make_fixtures.py) to 4 decimals and exact counts, and
 * gensim's conventions on small hand-made files: upper-case folding with the earliest row winning
 * (Python's full mapping, e.g. U+00DF to "SS"), restrict, OOV skipped and counted, invalid lines,
 * the candidate rule, CRLF and comments, average-tied ranks, and the errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "test_util.h"

TestSuite(eval, .init = tu_setup, .fini = tu_teardown);

typedef struct fixture {
    embt_file *file;
    const embt_table *table;
    embt_index *index;
} fixture;

static void open_path(fixture *f, const char *path)
{
    TU_OK(embt_file_open(&f->file, path, NULL));
    TU_OK(embt_file_table(&f->table, f->file, "embedding"));
    TU_OK(embt_index_new(&f->index, f->table, NULL));
}

static void close_fixture(fixture *f)
{
    embt_index_free(f->index);
    embt_file_close(f->file);
}

/* A table of rows given as text "token v1 v2 ...\n" lines, through the GloVe importer. */
static void open_text(fixture *f, const char *text)
{
    const char *txt = tu_path("v.txt"), *path = tu_path("v.embt");
    tu_write_file(txt, text, strlen(text));
    embt_convert_options co = EMBT_CONVERT_OPTIONS_INIT;
    co.from = EMBT_FORMAT_GLOVE;
    TU_OK(embt_convert_file(txt, path, &co));
    open_path(f, path);
}

Test(eval, gensim_analogy_accuracy_on_the_glove_sample, .timeout = 600)
{
    fixture f;
    const char *src = tu_source("data/sample/glove.6B.100d.20k.txt.gz");
    const char *path = tu_path("sample.embt");
    TU_OK(embt_convert_file(src, path, NULL));
    open_path(&f, path);
    embt_eval_options eo = EMBT_EVAL_OPTIONS_INIT;
    eo.restrict_rows = 20000;
    embt_analogy_report *r = NULL;
    TU_OK(embt_eval_analogies(&r, f.index, tu_fixture("gensim_eval", "questions-words.txt"), &eo));
    FILE *in = fopen(tu_fixture("gensim_eval", "analogies.tsv"), "r");
    cr_assert_not_null(in);
    char line[256];
    size_t i = 0;
    uint64_t skipped = 0;
    while (fgets(line, sizeof line, in)) {
        char *name = strtok(line, "\t"), *a = strtok(NULL, "\t"), *b = strtok(NULL, "\n");
        if (strcmp(name, "oov_ratio") == 0) {
            /* gensim logs the ratio with one decimal */
            cr_assert(fabs(r->oov_ratio - strtod(a, NULL)) < 0.05, "oov %.4f vs %s", r->oov_ratio,
                      a);
            continue;
        }
        uint64_t correct = strtoull(a, NULL, 10), total = strtoull(b, NULL, 10);
        if (strcmp(name, "Total accuracy") == 0) {
            cr_assert_eq(i, r->n_sections);
            cr_assert_eq(r->correct, correct);
            cr_assert_eq(r->total, total);
            cr_assert(fabs(r->accuracy - (double)correct / (double)total) < 1e-12);
            continue;
        }
        cr_assert_lt(i, r->n_sections);
        const embt_analogy_section *s = &r->sections[i++];
        cr_assert_str_eq(s->name, name);
        cr_assert_eq(s->correct, correct, "%s: %llu correct, gensim %llu", name,
                     (unsigned long long)s->correct, (unsigned long long)correct);
        cr_assert_eq(s->total, total, "%s: %llu total, gensim %llu", name,
                     (unsigned long long)s->total, (unsigned long long)total);
        skipped += s->skipped;
    }
    fclose(in);
    cr_assert_eq(i, 14);
    /* questions-words.txt has 19,544 questions: every one is either evaluated or skipped */
    cr_assert_eq(r->total + r->skipped, 19544);
    cr_assert_eq(skipped, r->skipped);
    cr_assert_eq(r->invalid_lines, 0);
    embt_analogy_report_free(r);

    in = fopen(tu_fixture("gensim_eval", "pairs.tsv"), "r");
    cr_assert_not_null(in);
    size_t n = 0;
    while (fgets(line, sizeof line, in)) {
        char *name = strtok(line, "\t"), *p = strtok(NULL, "\t"), *s = strtok(NULL, "\t"),
             *o = strtok(NULL, "\n");
        embt_pairs_report pr;
        TU_OK(embt_eval_pairs(&pr, f.index, tu_fixture("gensim_eval", name), &eo));
        cr_assert(fabs(pr.pearson - strtod(p, NULL)) < 5e-5, "%s pearson %.6f vs %s", name,
                  pr.pearson, p);
        cr_assert(fabs(pr.spearman - strtod(s, NULL)) < 5e-5, "%s spearman %.6f vs %s", name,
                  pr.spearman, s);
        cr_assert(fabs(pr.oov_ratio - strtod(o, NULL)) < 1e-9, "%s oov %.6f vs %s", name,
                  pr.oov_ratio, o);
        n++;
    }
    fclose(in);
    cr_assert_eq(n, 2);
    close_fixture(&f);
}

/* 2-d vectors: the analogy man:king :: woman:queen holds by vector offset. "Queen" (row 1)
 * precedes "queen", so folding makes row 1 the known QUEEN; "straße" folds to STRASSE. */
static const char vectors[] = "man 1 0\n"
                              "Queen 0.2 1.1\n"
                              "king 1 1\n"
                              "woman 0.1 0.05\n"
                              "queen 0.1 1\n"
                              "stra\xc3\x9f"
                              "e 0.5 0.5\n"
                              "zero 0 0\n"
                              "rare 0.3 -1\n";

Test(eval, analogies_follow_gensims_folding_oov_and_line_rules)
{
    fixture f;
    open_text(&f, vectors);
    const char *q = tu_path("q.txt");
    const char qs[] = ": first\n"
                      "man king woman queen\n"   /* correct: QUEEN is row 1 */
                      "MAN KING WOMAN Queen\n"   /* same question, any case */
                      "man king woman unknown\n" /* OOV: skipped */
                      "man king\n"               /* not 4 words: invalid, uncounted */
                      "\n"                       /* empty: invalid */
                      ":  second  \r\n"          /* name stripped */
                      "man king woman STRASSE\n" /* incorrect */
                      "man king woman rare\n";   /* rare is row 7, outside restrict 7 */
    tu_write_file(q, qs, sizeof qs - 1);
    embt_eval_options eo = EMBT_EVAL_OPTIONS_INIT;
    eo.restrict_rows = 7;
    embt_analogy_report *r = NULL;
    TU_OK(embt_eval_analogies(&r, f.index, q, &eo));
    cr_assert_eq(r->n_sections, 2);
    cr_assert_str_eq(r->sections[0].name, "first");
    cr_assert_str_eq(r->sections[1].name, "second");
    cr_assert_eq(r->sections[0].correct, 2);
    cr_assert_eq(r->sections[0].total, 2);
    cr_assert_eq(r->sections[0].skipped, 1);
    cr_assert_eq(r->sections[1].correct, 0);
    cr_assert_eq(r->sections[1].total, 1);
    cr_assert_eq(r->sections[1].skipped, 1);
    cr_assert_eq(r->correct, 2);
    cr_assert_eq(r->total, 3);
    cr_assert_eq(r->skipped, 2);
    cr_assert_eq(r->invalid_lines, 2);
    cr_assert_float_eq(r->accuracy, 2.0 / 3.0, 1e-12);
    cr_assert_float_eq(r->oov_ratio, 40.0, 1e-12);
    embt_analogy_report_free(r);

    /* case-sensitive: "Queen" is row 1 and "queen" row 4, different words; MAN is unknown */
    eo.flags = EMBT_EVAL_CASE_SENSITIVE;
    eo.restrict_rows = 0;
    TU_OK(embt_eval_analogies(&r, f.index, q, &eo));
    cr_assert_eq(r->sections[0].total, 1);
    cr_assert_eq(r->sections[0].skipped, 2);
    cr_assert_eq(r->sections[1].total, 1);
    embt_analogy_report_free(r);
    close_fixture(&f);
}

Test(eval, a_question_before_any_section_is_a_parse_error)
{
    fixture f;
    open_text(&f, vectors);
    const char *q = tu_path("q.txt");
    tu_write_file(q, "\n\nman king woman queen\n", strlen("\n\nman king woman queen\n"));
    embt_analogy_report *r = NULL;
    /* gensim raises on the first line that is not a section header, even an empty one */
    TU_STATUS(embt_eval_analogies(&r, f.index, q, NULL), EMBT_EPARSE);
    cr_assert_null(r);
    cr_assert_eq(embt_error_last()->line, 1);
    tu_write_file(q, ": s\nman king \xff woman\n", strlen(": s\nman king \xff woman\n"));
    TU_STATUS(embt_eval_analogies(&r, f.index, q, NULL), EMBT_EPARSE);
    cr_assert_eq(embt_error_last()->line, 2);
    TU_STATUS(embt_eval_analogies(&r, f.index, tu_path("absent.txt"), NULL), EMBT_EIO);
    close_fixture(&f);
}

Test(eval, pairs_follow_gensims_rules_and_average_tied_ranks)
{
    fixture f;
    open_text(&f, vectors);
    const char *p = tu_path("p.txt");
    const char ps[] = "# comment\r\n"
                      "man\tking\t1\r\n"
                      "KING\tqueen\t3.5\r\n"
                      "woman\tSTRASSE\t 2 \r\n"
                      "man\tzero\t1_0\n"  /* zero row: cosine 0 */
                      "man\tunknown\t4\n" /* OOV */
                      "man\tking\n"       /* 2 fields: invalid */
                      "man\tking\tx\n"    /* not a number: invalid */
                      "man\tking\t0x10\n" /* Python's float() rejects hex */
                      "queen\tman\t1";    /* last line without newline */
    tu_write_file(p, ps, sizeof ps - 1);
    embt_pairs_report r;
    TU_OK(embt_eval_pairs(&r, f.index, p, NULL));
    cr_assert_eq(r.pairs, 5);
    cr_assert_eq(r.oov, 1);
    cr_assert_eq(r.invalid_lines, 3);
    cr_assert_float_eq(r.oov_ratio, 100.0 / 6.0, 1e-12);
    /* gold 1, 3.5, 2, 10, 1; cosines: man.king 0.7071, king.Queen (row 1), woman.straße,
     * man.zero 0, Queen.man (row 1, folded) */
    double rn = sqrt(0.04 + 1.21);
    double model[5] = {1 / sqrt(2.0), (0.2 + 1.1) / (sqrt(2.0) * rn),
                       (0.05 + 0.025) / (sqrt(0.0125) * sqrt(0.5)), 0.0, 0.2 / rn};
    double gold[5] = {1, 3.5, 2, 10, 1};
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < 5; i++)
        mx += gold[i] / 5, my += model[i] / 5;
    for (int i = 0; i < 5; i++) {
        sxy += (gold[i] - mx) * (model[i] - my);
        sxx += (gold[i] - mx) * (gold[i] - mx);
        syy += (model[i] - my) * (model[i] - my);
    }
    cr_assert_float_eq(r.pearson, sxy / sqrt(sxx * syy), 1e-6);
    /* ranks: gold 1.5, 4, 3, 5, 1.5 (tie averaged); model: 0 < 0.1789 < 0.7071 < 0.7593 <
     * 0.8222, so 5, 4, 3, 1, 2 */
    double rg[5] = {1.5, 4, 3, 5, 1.5}, rm[5];
    double order[5] = {model[0], model[1], model[2], model[3], model[4]};
    for (int i = 0; i < 5; i++) {
        int below = 0;
        for (int j = 0; j < 5; j++)
            below += order[j] < order[i];
        rm[i] = below + 1;
    }
    mx = my = sxy = sxx = syy = 0;
    for (int i = 0; i < 5; i++)
        mx += rg[i] / 5, my += rm[i] / 5;
    for (int i = 0; i < 5; i++) {
        sxy += (rg[i] - mx) * (rm[i] - my);
        sxx += (rg[i] - mx) * (rg[i] - mx);
        syy += (rm[i] - my) * (rm[i] - my);
    }
    cr_assert_float_eq(r.spearman, sxy / sqrt(sxx * syy), 1e-12);

    /* nothing usable */
    tu_write_file(p, "a\tb\tc\nman\tnobody\t1\n", strlen("a\tb\tc\nman\tnobody\t1\n"));
    TU_STATUS(embt_eval_pairs(&r, f.index, p, NULL), EMBT_EINVAL);
    cr_assert_eq(r.oov, 1);
    cr_assert_eq(r.invalid_lines, 1);
    close_fixture(&f);
}

Test(eval, a_table_without_vocabulary_cannot_be_evaluated)
{
    const char *path = tu_path("t.embt");
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, path, NULL));
    float v[4] = {1, 0, 0, 1};
    tu_add_table(w, "embedding", 2, 2, NULL, v);
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    fixture f;
    open_path(&f, path);
    embt_pairs_report r;
    TU_STATUS(embt_eval_pairs(&r, f.index, path, NULL), EMBT_EINVAL);
    close_fixture(&f);
}

/* /dev/zero was read until memory ran out, and a FIFO without a writer blocked the open. */
Test(eval, an_evaluation_file_that_is_not_a_regular_file_is_einval, .timeout = 30)
{
    fixture f;
    open_text(&f, "a 1 0\nb 0 1\n");
    char fifo[PATH_MAX];
    snprintf(fifo, sizeof fifo, "%s", tu_path("fifo.txt"));
    cr_assert_eq(mkfifo(fifo, 0644), 0);
    const char *paths[] = {"/dev/zero", fifo};
    for (int i = 0; i < 2; i++) {
        embt_pairs_report r;
        TU_STATUS(embt_eval_pairs(&r, f.index, paths[i], NULL), EMBT_EINVAL);
        embt_analogy_report *a = NULL;
        TU_STATUS(embt_eval_analogies(&a, f.index, paths[i], NULL), EMBT_EINVAL);
        cr_assert_null(a);
    }
    close_fixture(&f);
}
