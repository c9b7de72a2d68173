/* test_cmd_train.c: `embt train` run in-process for skip-gram: flags and CONFIG.yaml give the same
 * file; unknown config keys are reported with their line; --stop-after then --resume completes the
 * run; usage errors exit 2 and write nothing. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>

#include "cmd.h"
#include "test_util.h"

static void setup(void)
{
    tu_setup();
    cr_redirect_stdout();
    cr_redirect_stderr();
}

static int run(int argc, char **argv)
{
    int rc = cmd_train(argc, argv);
    fflush(stdout);
    fflush(stderr);
    return rc;
}

static const char *corpus(void)
{
    const char *path = tu_path("c.txt");
    tu_write_corpus(path, 300, 10, 30, 3);
    return path;
}

Test(train_cmd, config_file_and_flags_give_the_same_file, .init = setup, .fini = tu_teardown)
{
    const char *in = corpus();
    char *argv[] = {"train",
                    "--task",
                    "skipgram",
                    "--input",
                    (char *)in,
                    "--output",
                    (char *)tu_path("a.embt"),
                    "--dim",
                    "8",
                    "--epoch",
                    "2",
                    "--min-count",
                    "1",
                    "--sample",
                    "0",
                    "--seed",
                    "4",
                    "--optimizer",
                    "adagrad",
                    "--lr",
                    "0.1",
                    "--quiet"};
    cr_assert_eq(run(sizeof argv / sizeof argv[0], argv), 0);
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "task: skipgram\ninput: %s\noutput: %s\ndim: 8\nepoch: 2\nmin_count: 1\n"
             "sample: 0\nseed: 4\noptimizer: adagrad\nlr: 0.1\nquiet: true\nfreeze: false\n",
             in, tu_path("b.embt"));
    tu_write_file(tu_path("c.yaml"), yaml, strlen(yaml));
    char *cargv[] = {"train", (char *)tu_path("c.yaml")};
    cr_assert_eq(run(2, cargv), 0);
    cr_assert(tu_same_file(tu_path("a.embt"), tu_path("b.embt")));
    embt_file *f = NULL;
    const embt_table *t;
    TU_OK(embt_file_open(&f, tu_path("a.embt"), NULL));
    TU_OK(embt_file_table(&t, f, "embedding.adagrad.sum"));
    TU_OK(embt_file_table(&t, f, "context.adagrad.sum"));
    embt_file_close(f);
}

Test(train_cmd, unknown_config_key_is_named_with_its_line, .init = setup, .fini = tu_teardown)
{
    const char *yaml = "task: skipgram\ndim: 8\nwindw: 3\n";
    tu_write_file(tu_path("c.yaml"), yaml, strlen(yaml));
    char *argv[] = {"train", (char *)tu_path("c.yaml")};
    cr_assert_eq(run(2, argv), 2);
    FILE *err = cr_get_redirected_stderr();
    char buf[512] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, err);
    buf[n] = '\0';
    cr_assert(strstr(buf, "c.yaml:3:1: unknown key 'windw'"), "stderr: %s", buf);
}

/* Writes `yaml` as `name` in the test directory and runs `embt train name`; returns the exit code. */
static int run_config(const char *name, const char *yaml)
{
    tu_write_file(tu_path(name), yaml, strlen(yaml));
    char *argv[] = {"train", (char *)tu_path(name)};
    return run(2, argv);
}

/* a bad value in a config is reported at its line and column, by the same check as the flag */
Test(train_cmd, bad_config_value_is_named_with_its_line_and_column, .init = setup,
     .fini = tu_teardown)
{
    static const struct {
        const char *name, *yaml, *message;
    } cases[] = {
        {"c.yaml", "task: skipgram\ninput: c.txt\nepoch:   abc\n",
         "c.yaml:3:10: --epoch: expected a non-negative integer, got 'abc'"},
        {"k.yaml", "task: classify\ninput: c.txt\noutput: m.embt\ndim: 0\n",
         "k.yaml:4:6: --dim must be in [1, 65536], not '0'"},
        {"t.yaml", "input: c.txt\ntask: sgns\n",
         "t.yaml:2:7: --task: skipgram or classify, not 'sgns'"},
        {"w.yaml", "task: classify\ninput: c.txt\noutput: m.embt\nwindow: 3\n",
         "w.yaml:4:1: unknown option '--window'"},
        {"g.yaml", "task: skipgram\ninput: c.txt\nbucket:   100\n",
         "g.yaml:3:1: --bucket is an option of --task classify"},
        {"n.yaml", "epoch: \"3\\0x\"\n", "n.yaml:1:8: a NUL character is not allowed"},
        {"m.yaml", "task: skipgram\ninput: c.txt\nneg: 101\n",
         "m.yaml:3:6: --neg: expected an integer in [0, 100], got '101'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(run_config(cases[i].name, cases[i].yaml), 2, "%s", cases[i].name);
    /* errors that are not about a value from a file carry no position */
    char *flags[] = {"train", "--input", "c.txt", "--epoch", "x"};
    cr_assert_eq(run(5, flags), 2);
    FILE *err = cr_get_redirected_stderr();
    char buf[2048] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, err);
    buf[n] = '\0';
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert(strstr(buf, cases[i].message), "no '%s' in stderr: %s", cases[i].message, buf);
    cr_assert(strstr(buf, "embt train: --epoch: expected a non-negative integer, got 'x'"),
              "stderr: %s", buf);
}

/* corpus-wide errors name the corpus */
Test(train_cmd, min_count_error_names_the_corpus, .init = setup, .fini = tu_teardown)
{
    tu_write_file(tu_path("small.txt"), "the a b\n", 8);
    char *argv[] = {"train", "--input", (char *)tu_path("small.txt"), "--output",
                    (char *)tu_path("o.embt")};
    cr_assert_eq(run(5, argv), 1);
    FILE *err = cr_get_redirected_stderr();
    char buf[1024] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, err);
    buf[n] = '\0';
    cr_assert(strstr(buf, "small.txt: corpus: no word occurs min-count (5) times or more"),
              "stderr: %s", buf);
    cr_assert_not(tu_exists(tu_path("o.embt")));
}

Test(train_cmd, stop_after_then_resume_completes_the_run, .init = setup, .fini = tu_teardown)
{
    const char *in = corpus();
    char *argv[] = {"train",
                    "--input",
                    (char *)in,
                    "--output",
                    (char *)tu_path("h.embt"),
                    "--dim",
                    "8",
                    "--min-count",
                    "1",
                    "--epoch",
                    "2",
                    "--stop-after",
                    "1000",
                    "-q"};
    cr_assert_eq(run(sizeof argv / sizeof argv[0], argv), 0);
    char *rargv[] = {
        "train", "--resume", (char *)tu_path("h.embt"), "--output", (char *)tu_path("h.embt"),
        "-q"};
    cr_assert_eq(run(sizeof rargv / sizeof rargv[0], rargv), 0);
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, tu_path("h.embt"), NULL));
    size_t len;
    const char *text = embt_file_metadata(f, &len);
    embt_meta *m = NULL;
    TU_OK(embt_meta_parse(&m, text, len));
    const char *v;
    TU_OK(embt_meta_get(&v, &len, m, "training.state.completed"));
    cr_assert_str_eq(v, "true");
    TU_OK(embt_meta_get(&v, &len, m, "training.state.words_done"));
    cr_assert_str_eq(v, "6000");
    embt_meta_free(m);
    embt_file_close(f);
}

Test(train_cmd, usage_errors_exit_2_and_write_nothing, .init = setup, .fini = tu_teardown)
{
    const char *in = corpus(), *out = tu_path("o.embt");
    char *a1[] = {"train", "--task", "cbow", "--input", (char *)in, "--output", (char *)out};
    cr_assert_eq(run(7, a1), 2);
    char *a2[] = {"train", "--input", (char *)in, "--output", (char *)out, "--word-ngrams", "2"};
    cr_assert_eq(run(7, a2), 2);
    char *a3[] = {"train",     "--input",     (char *)in, "--output",
                  (char *)out, "--optimizer", "rmsprop"};
    cr_assert_eq(run(7, a3), 2);
    char *a4[] = {"train", "--input", (char *)in};
    cr_assert_eq(run(3, a4), 2);
    char *a5[] = {"train", "--input", (char *)in, "--output", (char *)out, "--freeze"};
    cr_assert_eq(run(6, a5), 2);
    char *a6[] = {"train", "--input", (char *)tu_path("none.txt"), "--output", (char *)out, "-q"};
    cr_assert_eq(run(6, a6), 1);
    cr_assert(!tu_exists(out));
    char *a7[] = {"train", "--help"};
    cr_assert_eq(run(2, a7), 0);
}
