/* cmd_test.c: `embt test MODEL FILE`: fastText's `test` on a classifier of `embt train --task
 * classify`: the number of evaluated lines, precision and recall at k. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <embt/embt.h>

#include "cli_util.h"
#include "cmd.h"

static const char usage[] =
    "usage: embt test [options] MODEL FILE\n"
    "\n"
    "Evaluates MODEL on the labelled lines of FILE ('-': stdin) as fastText's test does: lines "
    "with\n"
    "at least one label known to the model and one feature count; the predictions of a line are "
    "its\n"
    "best k labels with probability >= the threshold. Prints\n"
    "  N<TAB>lines   P@k<TAB>sum|pred & gold| / sum|pred|   R@k<TAB>sum|pred & gold| / sum|gold|\n"
    "with 3 significant digits (nan when a denominator is 0).\n"
    "\n"
    "options:\n"
    "  -k N               labels predicted per line (default 1)\n"
    "  --threshold P      only labels with probability >= P (default 0)\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 success, 1 error (the line and column of bad input are named), 2 usage.\n";

static void print_metric(const char *name, unsigned long long k, double v)
{
    if (isnan(v))
        printf("%s%llu\tnan\n", name, k);
    else
        printf("%s%llu\t%.3g\n", name, k, v);
}

int cmd_test(int argc, char **argv)
{
    static const char cmd[] = "test";
    int rc = CLI_EXIT_ERROR;
    unsigned long long k = 1;
    double threshold = 0;

    int early = cli_parse_predict_options(cmd, usage, argc, argv, &k, &threshold);
    if (early >= 0)
        return early;
    if (argc - optind != 2)
        return cli_usage_error(cmd, "expected MODEL and FILE");
    const char *model = argv[optind], *input = argv[optind + 1];
    bool use_stdin = strcmp(input, "-") == 0;

    embt_file *file = NULL;
    embt_classifier *clf = NULL;
    FILE *in = NULL;
    if (embt_file_open(&file, model, NULL) || embt_classifier_open(&clf, file)) {
        cli_error_record(cmd, model, embt_error_last());
        goto done;
    }
    in = use_stdin ? stdin : fopen(input, "rb");
    if (!in) {
        cli_errorf(cmd, input, "%s", strerror(errno));
        goto done;
    }
    embt_classify_metrics m;
    if (embt_classifier_test(&m, clf, in, (size_t)k, (float)threshold)) {
        cli_error_record(cmd, use_stdin ? "<stdin>" : input, embt_error_last());
        goto done;
    }
    printf("N\t%llu\n", (unsigned long long)m.examples);
    print_metric("P@", k, m.precision);
    print_metric("R@", k, m.recall);
    if (fflush(stdout) != 0) {
        cli_errorf(cmd, NULL, "cannot write the output: %s", strerror(errno));
        goto done;
    }
    rc = CLI_EXIT_OK;
done:
    if (in && !use_stdin)
        fclose(in);
    embt_classifier_free(clf);
    embt_file_close(file);
    return rc;
}
