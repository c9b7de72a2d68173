/* test_cmd_predict.c: `embt predict` and `embt test` run in-process on a model written by hand (exact
 * output lines, fastText's format and metrics), bad input named by line and column (exit 1), usage
 * errors (exit 2), and `embt train --task classify` (cli_train_classify) end to end. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>

#include "cmd.h"
#include "hand_classifier.h"
#include "test_util.h"

int cli_train_classify(int argc, char **argv);

static void setup(void)
{
    tu_setup();
    cr_redirect_stdout();
    cr_redirect_stderr();
}

static int run(int (*fn)(int, char **), int argc, char **argv)
{
    int rc = fn(argc, argv);
    fflush(stdout);
    fflush(stderr);
    return rc;
}

static const char *hand_model(void)
{
    return tu_hand_classifier("hand.embt", false);
}

Test(predict, prints_label_probability_pairs_best_first, .init = setup, .fini = tu_teardown)
{
    const char *model = hand_model();
    FILE *in = cr_get_redirected_stdin();
    fputs("good\nbad\r\ngood bad\n\nzebra", in);
    fclose(in);
    char *argv[] = {"predict", "-k", "2", (char *)model, NULL};
    cr_assert_eq(run(cmd_predict, 4, argv), 0);
    cr_assert_stdout_eq_str("__label__x 0.731059 __label__y 0.268941\n"
                            "__label__y 0.731059 __label__x 0.268941\n"
                            "__label__x 0.5 __label__y 0.5\n"
                            "__label__x 0.5 __label__y 0.5\n"
                            "__label__x 0.5 __label__y 0.5\n");
    cr_assert_stderr_eq_str("");
}

Test(predict, threshold_can_leave_an_empty_line, .init = setup, .fini = tu_teardown)
{
    const char *model = hand_model();
    FILE *in = cr_get_redirected_stdin();
    fputs("good\ngood bad\n", in);
    fclose(in);
    char *argv[] = {"predict", (char *)model, "-", "--threshold", "0.6", "-k", "5", NULL};
    cr_assert_eq(run(cmd_predict, 7, argv), 0);
    cr_assert_stdout_eq_str("__label__x 0.731059\n\n");
}

Test(predict, bad_utf8_is_named_with_line_and_column_and_nothing_is_printed, .init = setup,
     .fini = tu_teardown)
{
    const char *model = hand_model();
    FILE *in = cr_get_redirected_stdin();
    fputs("good\nno\xc3\n", in);
    fclose(in);
    char *argv[] = {"predict", (char *)model, NULL};
    cr_assert_eq(run(cmd_predict, 2, argv), 1);
    cr_assert_stderr_eq_str("embt predict: <stdin>:2:3: invalid UTF-8\n");
    cr_assert_stdout_eq_str(""); /* line 1's prediction is not printed either */
}

Test(predict, usage_errors_exit_2, .init = setup, .fini = tu_teardown)
{
    char *a1[] = {"predict", NULL};
    cr_expect_eq(run(cmd_predict, 1, a1), 2);
    char *a2[] = {"predict", "-k", "0", "m.embt", NULL};
    cr_expect_eq(run(cmd_predict, 4, a2), 2);
    char *a3[] = {"test", "m.embt", NULL};
    cr_expect_eq(run(cmd_test, 2, a3), 2);
    char *a4[] = {"test", "--threshold", "x", "m.embt", "f", NULL};
    cr_expect_eq(run(cmd_test, 5, a4), 2);
}

Test(test, prints_n_precision_and_recall_as_fasttext, .init = setup, .fini = tu_teardown)
{
    const char *model = hand_model();
    const char *data = tu_path("t.txt");
    const char text[] = "__label__x good\n__label__y good\n__label__x __label__y bad\n"
                        "__label__z good\nno label\n";
    tu_write_file(data, text, strlen(text));
    char *argv[] = {"test", (char *)model, (char *)data, NULL};
    cr_assert_eq(run(cmd_test, 3, argv), 0);
    char *argv2[] = {"test", "-k", "2", (char *)model, (char *)data, NULL};
    cr_assert_eq(run(cmd_test, 5, argv2), 0);
    /* threshold above every probability: nothing predicted, P is 0/0 */
    char *argv3[] = {"test", "--threshold", "0.99", (char *)model, (char *)data, NULL};
    cr_assert_eq(run(cmd_test, 5, argv3), 0);
    cr_assert_stdout_eq_str("N\t3\nP@1\t0.667\nR@1\t0.5\n"
                            "N\t3\nP@2\t0.667\nR@2\t1\n"
                            "N\t3\nP@1\tnan\nR@1\t0\n");
}

Test(test, bad_input_line_is_named, .init = setup, .fini = tu_teardown)
{
    const char *model = hand_model();
    const char *data = tu_path("t.txt");
    const char text[] = "__label__x good\n__label__x \xff\n";
    tu_write_file(data, text, strlen(text));
    char *argv[] = {"test", (char *)model, (char *)data, NULL};
    cr_assert_eq(run(cmd_test, 3, argv), 1);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "embt test: %s:2:12: invalid UTF-8\n", data);
    cr_assert_stderr_eq_str(want);
}

Test(train_classify, trains_a_model_that_predict_and_test_read, .init = setup, .fini = tu_teardown)
{
    char in[PATH_MAX], model[PATH_MAX];
    snprintf(in, sizeof in, "%s", tu_fixture("classify", "train.txt"));
    snprintf(model, sizeof model, "%s", tu_path("m.embt"));
    char *argv[] = {"train",         "--task", "classify", "--input", in,     "--output", model,
                    "--dim",         "8",      "--epoch",  "20",      "--lr", "0.5",      "--quiet",
                    "--word-ngrams", "2",      "--bucket", "32",      NULL};
    cr_assert_eq(run(cli_train_classify, 18, argv), 0);
    char test_in[PATH_MAX];
    snprintf(test_in, sizeof test_in, "%s", in);
    char *targv[] = {"test", model, test_in, NULL};
    cr_assert_eq(run(cmd_test, 3, targv), 0);
    cr_assert_stdout_eq_str("N\t14\nP@1\t1\nR@1\t0.933\n");
    cr_assert_stderr_eq_str("");
}

Test(train_classify, usage_and_input_errors, .init = setup, .fini = tu_teardown)
{
    char *a1[] = {"train", "--input", "x.txt", NULL};
    cr_expect_eq(run(cli_train_classify, 3, a1), 2);
    char *a2[] = {"train", "--input", "x", "--output", "y", "--optimizer", "adam", NULL};
    cr_expect_eq(run(cli_train_classify, 7, a2), 2);
    char *a3[] = {"train", "--input", "x", "--output", "y", "--freeze", NULL};
    cr_expect_eq(run(cli_train_classify, 6, a3), 2);
}

Test(train_classify, a_line_without_label_is_named, .init = setup, .fini = tu_teardown)
{
    const char *bad = tu_path("bad.txt");
    tu_write_file(bad, "__label__a x\nno label\n", 22);
    char out[PATH_MAX];
    snprintf(out, sizeof out, "%s", tu_path("o.embt"));
    char *a4[] = {"train", "--input", (char *)bad, "--output", out, "--quiet", NULL};
    cr_expect_eq(run(cli_train_classify, 6, a4), 1);
    char want[PATH_MAX + 80];
    snprintf(want, sizeof want,
             "embt train: %s:2:1: line has no label (no token starts with '__label__')\n", bad);
    cr_expect_stderr_eq_str(want);
}
