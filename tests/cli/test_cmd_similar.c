/* test_cmd_similar.c: `embt similar`, `embt analogy` and `embt eval` run in-process: exact text,
 * JSON and YAML output on small files, gensim's top-10 of "king" on the bundled GloVe sample, exit
 * codes 0/1/2, and nothing on stdout when a command fails. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <math.h>
#include <stdio.h>

#include "cmd.h"
#include "test_util.h"

static void setup(void)
{
    tu_setup();
    cr_redirect_stdout();
    cr_redirect_stderr();
}

TestSuite(similar, .init = setup, .fini = tu_teardown);

/* 2-d vectors; cosines with "a" (1, 0): b 0.8, c 0.6, d 0 (zero row), e -1. */
static const char vectors[] = "a 1 0\n"
                              "b 0.8 0.6\n"
                              "c 0.6 0.8\n"
                              "d 0 0\n"
                              "e -2 0\n";

static const char *make_file(void)
{
    const char *txt = tu_path("v.txt"), *path = tu_path("v.embt");
    tu_write_file(txt, vectors, strlen(vectors));
    embt_convert_options co = EMBT_CONVERT_OPTIONS_INIT;
    co.from = EMBT_FORMAT_GLOVE;
    TU_OK(embt_convert_file(txt, path, &co));
    return path;
}

static int run(int (*fn)(int, char **), int argc, char **argv)
{
    int rc = fn(argc, argv);
    fflush(stdout);
    fflush(stderr);
    return rc;
}

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))
#define RUN(fn, ...) run(fn, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

Test(similar, prints_neighbours_best_first_without_the_query)
{
    char *path = (char *)make_file();
    cr_assert_eq(RUN(cmd_similar, "similar", path, "a", "-k", "4"), 0);
    cr_assert_stdout_eq_str("b\t0.800000012\nc\t0.600000024\nd\t0\ne\t-1\n");
}

Test(similar, json_lines_and_other_metrics)
{
    char *path = (char *)make_file();
    cr_assert_eq(RUN(cmd_similar, "similar", "--json", "--metric", "l2", "-k", "2", path, "a"), 0);
    /* distances from (1, 0): b sqrt(0.4), c sqrt(0.8), d 1, e 3 */
    cr_assert_stdout_eq_str("{\"rank\":1,\"token\":\"b\",\"id\":1,\"score\":0.632455528}\n"
                            "{\"rank\":2,\"token\":\"c\",\"id\":2,\"score\":0.89442718}\n");
}

Test(similar, dot_and_restrict)
{
    char *path = (char *)make_file();
    cr_assert_eq(RUN(cmd_similar, "similar", "--metric=dot", "--restrict", "3", path, "e"), 0);
    /* rows a, b, c only: e.c -1.2, e.b -1.6, e.a -2 */
    cr_assert_stdout_eq_str("c\t-1.20000005\nb\t-1.60000002\na\t-2\n");
}

/* A dot product beyond the float range is stored as inf: JSON has no such number, so null. */
Test(similar, a_score_beyond_the_float_range_is_json_null)
{
    const char *txt = tu_path("big.txt"), *path = tu_path("big.embt");
    static const char big[] = "x 3e38 3e38\ny 1 1\n";
    tu_write_file(txt, big, strlen(big));
    embt_convert_options co = EMBT_CONVERT_OPTIONS_INIT;
    co.from = EMBT_FORMAT_GLOVE;
    TU_OK(embt_convert_file(txt, path, &co));
    cr_assert_eq(RUN(cmd_similar, "similar", "--json", "--metric", "dot", (char *)path, "y"), 0);
    cr_assert_stdout_eq_str("{\"rank\":1,\"token\":\"x\",\"id\":0,\"score\":null}\n");
}

Test(similar, unknown_token_is_exit_1_with_clean_stdout)
{
    char *path = (char *)make_file();
    cr_assert_eq(RUN(cmd_similar, "similar", path, "zzz"), 1);
    cr_assert_stdout_eq_str("");
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "embt similar: %s: token 'zzz' not found\n", path);
    cr_assert_stderr_eq_str(want);
}

Test(similar, usage_errors_are_exit_2)
{
    char *path = (char *)make_file();
    cr_assert_eq(RUN(cmd_similar, "similar", path), 2);
    cr_assert_eq(RUN(cmd_similar, "similar", "--metric", "manhattan", path, "a"), 2);
    cr_assert_eq(RUN(cmd_similar, "similar", "-k", "0", path, "a"), 2);
    cr_assert_eq(RUN(cmd_analogy, "analogy", "--method", "div", path, "a", "b", "c"), 2);
    cr_assert_eq(RUN(cmd_eval, "eval", path), 2);
    cr_assert_stdout_eq_str("");
}

Test(similar, help_is_exit_0)
{
    cr_assert_eq(RUN(cmd_eval, "eval", "--help"), 0);
    fflush(stdout);
}

Test(similar, analogy_excludes_its_inputs)
{
    char *path = (char *)make_file();
    /* b - a + c = (0.4, 1.4): d (zero row) scores 0, e -0.4 / sqrt(2.12) */
    cr_assert_eq(RUN(cmd_analogy, "analogy", path, "a", "b", "c", "-k", "2"), 0);
    cr_assert_stdout_eq_str("d\t0\ne\t-0.274721175\n");
}

Test(similar, analogy_mul_json)
{
    char *path = (char *)make_file();
    cr_assert_eq(
        RUN(cmd_analogy, "analogy", "--method", "mul", "--json", "-k", "1", path, "a", "b", "c"),
        0);
    /* e is opposite a: (0.1 * 0.2) / (0 + 1e-6), the 1e-6 of gensim's formula showing */
    cr_assert_stdout_eq_str("{\"rank\":1,\"token\":\"e\",\"id\":4,\"score\":19999.998}\n");
}

Test(similar, eval_prints_yaml_per_file)
{
    char *path = (char *)make_file();
    const char *q = tu_path("q.txt"), *p = tu_path("p.txt");
    tu_write_file(q, ": s\na b a b\nA B C X\n", strlen(": s\na b a b\nA B C X\n"));
    tu_write_file(p, "a\tb\t3\na\tc\t2\nb\tc\t4\nx\ty\t1\n",
                  strlen("a\tb\t3\na\tc\t2\nb\tc\t4\nx\ty\t1\n"));
    char *qa = (char *)q, *pa = (char *)p;
    cr_assert_eq(RUN(cmd_eval, "eval", path, "--analogies", qa, "--pairs", pa), 0);
    char want[2048];
    /* a b a b: a and b are excluded, c comes first and is not b; A B C X: X unknown. Pairs:
     * gold 3, 2, 4 against cosines 0.8, 0.6, 0.96 */
    snprintf(want, sizeof want,
             "file: \"%s\"\ntable: \"embedding\"\nrestrict: 300000\ncase_sensitive: false\n"
             "analogies:\n- file: \"%s\"\n  accuracy: 0\n  correct: 0\n  total: 1\n  skipped: 1\n"
             "  oov_ratio: 50\n  invalid_lines: 0\n  sections:\n  - name: \"s\"\n    accuracy: 0\n"
             "    correct: 0\n    total: 1\n    skipped: 1\npairs:\n- file: \"%s\"\n"
             "  pearson: 0.997948721\n  spearman: 1\n  pairs: 3\n  oov: 1\n  oov_ratio: 25\n"
             "  invalid_lines: 0\n",
             path, q, p);
    cr_assert_stdout_eq_str(want);
}

Test(similar, gensim_top10_of_king_on_the_glove_sample, .timeout = 300)
{
    const char *src = tu_source("data/sample/glove.6B.100d.20k.txt.gz");
    char *path = (char *)tu_path("sample.embt");
    TU_OK(embt_convert_file(src, path, NULL));
    cr_assert_eq(RUN(cmd_similar, "similar", path, "king"), 0);
    /* gensim 4: tests/fixtures/gensim_eval/neighbours.tsv */
    static const char *const words[] = {"prince", "queen",   "son",    "brother", "monarch",
                                        "throne", "kingdom", "father", "emperor", "ii"};
    static const double scores[] = {0.7682329416275024, 0.7507691383361816, 0.7020889520645142,
                                    0.6985775828361511, 0.6977890133857727, 0.6919989585876465,
                                    0.6811408400535583, 0.6802030205726624, 0.6712856888771057,
                                    0.6676074266433716};
    char got[4096];
    FILE *f = cr_get_redirected_stdout();
    size_t n = fread(got, 1, sizeof got - 1, f);
    got[n] = '\0';
    char *save = NULL, *line = strtok_r(got, "\n", &save);
    for (int i = 0; i < 10; i++, line = strtok_r(NULL, "\n", &save)) {
        cr_assert_not_null(line, "line %d missing", i);
        char *tab = strchr(line, '\t');
        cr_assert_not_null(tab);
        *tab = '\0';
        cr_assert_str_eq(line, words[i]);
        cr_assert(fabs(strtod(tab + 1, NULL) - scores[i]) < 1e-5, "%s: %s", words[i], tab + 1);
    }
    cr_assert_null(line);
}
