/* cmd_predict.c: `embt predict MODEL [FILE]`: the best labels of each text line (stdin or FILE) with
 * their probabilities, in fastText's predict-prob format, from a model of `embt train --task
 * classify`. */
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
    "usage: embt predict [options] MODEL [FILE]\n"
    "\n"
    "Reads text lines from FILE (default, or '-': stdin) and prints for each line the best labels\n"
    "with their softmax probabilities, best first, as fastText's predict-prob:\n"
    "  __label__a 0.71 __label__b 0.12\n"
    "An empty line is printed when no label qualifies. Label tokens in the input are ignored.\n"
    "\n"
    "options:\n"
    "  -k N               labels per line (default 1)\n"
    "  --threshold P      only labels with probability >= P (default 0)\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 success, 1 error (the line and column of bad input are named), 2 usage.\n";

#define MAX_LINE ((size_t)1 << 20)

int cmd_predict(int argc, char **argv)
{
    static const char cmd[] = "predict";
    int rc = CLI_EXIT_ERROR;
    unsigned long long k = 1;
    double threshold = 0;

    int early = cli_parse_predict_options(cmd, usage, argc, argv, &k, &threshold);
    if (early >= 0)
        return early;
    if (argc - optind < 1 || argc - optind > 2)
        return cli_usage_error(cmd, "expected MODEL and at most one FILE");
    const char *model = argv[optind];
    const char *input = argc - optind == 2 ? argv[optind + 1] : "-";
    bool use_stdin = strcmp(input, "-") == 0;
    const char *name = use_stdin ? "<stdin>" : input;

    embt_file *file = NULL;
    embt_classifier *clf = NULL;
    embt_label_prob *res = NULL;
    FILE *in = NULL, *mem = NULL;
    char *line = NULL, *text = NULL;
    size_t cap = 0, text_len = 0;
    if (embt_file_open(&file, model, NULL) || embt_classifier_open(&clf, file)) {
        cli_error_record(cmd, model, embt_error_last());
        goto done;
    }
    uint32_t nl = embt_classifier_nlabels(clf);
    if (k > nl)
        k = nl;
    res = malloc((size_t)k * sizeof *res);
    if (!res) {
        cli_errorf(cmd, NULL, "out of memory");
        goto done;
    }
    in = use_stdin ? stdin : fopen(input, "rb");
    if (!in) {
        cli_errorf(cmd, input, "%s", strerror(errno));
        goto done;
    }
    /* the predictions are kept until the last line is read: a failing command prints nothing */
    if (!(mem = open_memstream(&text, &text_len))) {
        cli_errorf(cmd, NULL, "out of memory");
        goto done;
    }
    unsigned long line_no = 0;
    ssize_t got;
    while ((got = cli_getline_max(&line, &cap, in, MAX_LINE)) >= 0 || got == -2) {
        line_no++;
        if (got == -2) {
            cli_errorf(cmd, NULL, "%s:%lu: longer than %zu bytes", name, line_no, MAX_LINE);
            goto done;
        }
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n')
            len--;
        size_t n = 0;
        if (embt_classifier_predict(res, &n, clf, line, len, (size_t)k, (float)threshold)) {
            embt_error err = *embt_error_last();
            err.line = (uint32_t)line_no;
            cli_error_record(cmd, name, &err);
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            size_t tl;
            const char *tok = embt_classifier_label(clf, res[i].label, &tl);
            fprintf(mem, "%s%.*s %g", i ? " " : "", (int)tl, tok, (double)res[i].prob);
        }
        fputc('\n', mem);
    }
    if (got == -3) {
        cli_errorf(cmd, NULL, "out of memory");
        goto done;
    }
    if (ferror(in)) {
        cli_errorf(cmd, name, "read error: %s", strerror(errno));
        goto done;
    }
    rc = cli_memstream_to_stdout(cmd, NULL, &mem, &text, &text_len);
done:
    if (mem)
        fclose(mem);
    free(text);
    if (in && !use_stdin)
        fclose(in);
    free(line);
    free(res);
    embt_classifier_free(clf);
    embt_file_close(file);
    return rc;
}
