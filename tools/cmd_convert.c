/* cmd_convert.c: `embt convert`: any supported embedding format (plain or .gz) to any other, with
 * the strictness policies as options and every lenient choice counted on stderr at the end. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <embt/embt.h>

#include "cli_util.h"
#include "cmd.h"

static const char usage[] =
    "usage: embt convert [options] INPUT OUTPUT\n"
    "Converts between embedding formats: embt, word2vec (text with a \"rows dim\" header), glove\n"
    "(text without one), word2vec-bin, fasttext-bin (input only), npy, npz and safetensors. INPUT\n"
    "may be gzip-compressed; its format is detected from the content, OUTPUT's from --to or its\n"
    "extension (.embt, .txt/.vec, .bin, .npy, .npz, .safetensors).\n"
    "\n"
    "  --from FORMAT        input format (default: detected)\n"
    "  --to FORMAT          output format (default: from OUTPUT's extension)\n"
    "  --dtype TYPE         stored type: f32, f16, bf16, f64 or i8 (default: the input's)\n"
    "  --limit N            convert only the first N rows\n"
    "  --compress           deflate the sections of an .embt output\n"
    "  --allow-nonfinite    accept nan and inf values instead of failing\n"
    "  --table NAME         name of the table tied to the vocabulary (default: embedding)\n"
    "  --vocab FILE         tokens for an array input, one per line\n"
    "  --vocab-name NAME    name of the vocabulary (default: words)\n"
    "  --on-duplicate P     error (default), first or last: which row of a repeated token stays\n"
    "  --on-bad-utf8 P      error (default), replace (with U+FFFD) or skip (drop the row)\n"
    "  -q, --quiet          no progress bar\n"
    "  -h, --help           show this help\n"
    "\n"
    "Exit status: 0 converted, 1 the conversion failed (OUTPUT is untouched), 2 usage error.\n";

enum {
    OPT_FROM = 256,
    OPT_TO,
    OPT_DTYPE,
    OPT_LIMIT,
    OPT_COMPRESS,
    OPT_NONFINITE,
    OPT_TABLE,
    OPT_VOCAB_FILE,
    OPT_VOCAB,
    OPT_DUPLICATE,
    OPT_UTF8
};

static const struct option long_options[] = {
    {"from", required_argument, NULL, OPT_FROM},
    {"to", required_argument, NULL, OPT_TO},
    {"dtype", required_argument, NULL, OPT_DTYPE},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"compress", no_argument, NULL, OPT_COMPRESS},
    {"allow-nonfinite", no_argument, NULL, OPT_NONFINITE},
    {"table", required_argument, NULL, OPT_TABLE},
    {"vocab", required_argument, NULL, OPT_VOCAB_FILE},
    {"vocab-name", required_argument, NULL, OPT_VOCAB},
    {"on-duplicate", required_argument, NULL, OPT_DUPLICATE},
    {"on-bad-utf8", required_argument, NULL, OPT_UTF8},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Progress bar state: redrawn on stderr at most ten times a second. */
typedef struct progress_bar {
    double last_draw; /* seconds, monotonic */
    int last_percent;
    int drawn; /* a line is on screen without its newline */
} progress_bar;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int draw_progress(uint64_t done, uint64_t total, void *payload)
{
    progress_bar *bar = payload;
    int percent = total ? (int)(done * 100 / total) : 0;
    double t = now_seconds();
    if (percent == bar->last_percent || (percent < 100 && t - bar->last_draw < 0.1))
        return 0;
    enum { WIDTH = 40 };
    char cells[WIDTH + 1];
    int filled = percent * WIDTH / 100;
    for (int i = 0; i < WIDTH; i++)
        cells[i] = i < filled ? '#' : '.';
    cells[WIDTH] = '\0';
    fprintf(stderr, "\rconverting [%s] %3d%% %llu/%llu MB", cells, percent,
            (unsigned long long)(done >> 20), (unsigned long long)(total >> 20));
    fflush(stderr);
    bar->last_draw = t;
    bar->last_percent = percent;
    bar->drawn = 1;
    return 0;
}

/* Prints the thread's error record as one line naming the file it concerns: the input, unless the
 * library marked the failure as the output's. */
static void print_failure(const char *in_path, const char *out_path, const char *vocab_path)
{
    embt_error e = *embt_error_last();
    const char *file = in_path;
    if (vocab_path && strcmp(e.section, "vocab file") == 0) {
        file = vocab_path;
        e.section[0] = '\0';
    } else if (strcmp(e.section, "output") == 0) {
        file = out_path;
        e.section[0] = '\0';
    } else if (strcmp(e.section, "input") == 0) {
        e.section[0] = '\0';
    }
    cli_error_record("convert", file, &e);
}

/* Every lenient choice the library made, one line each on stderr (nothing when strict). */
static void print_report(const embt_convert_report *r, const embt_convert_options *o)
{
    if (r->duplicates_dropped)
        fprintf(stderr, "embt convert: %llu duplicate%s kept %s\n",
                (unsigned long long)r->duplicates_dropped, r->duplicates_dropped == 1 ? "" : "s",
                o->on_duplicate == EMBT_DUPLICATE_LAST ? "last" : "first");
    if (r->utf8_replaced)
        fprintf(stderr, "embt convert: %llu token%s with bad utf-8 replaced\n",
                (unsigned long long)r->utf8_replaced, r->utf8_replaced == 1 ? "" : "s");
    if (r->utf8_skipped)
        fprintf(stderr, "embt convert: %llu row%s with bad utf-8 skipped\n",
                (unsigned long long)r->utf8_skipped, r->utf8_skipped == 1 ? "" : "s");
    if (r->nonfinite)
        fprintf(stderr, "embt convert: %llu non-finite value%s kept\n",
                (unsigned long long)r->nonfinite, r->nonfinite == 1 ? "" : "s");
}

int cmd_convert(int argc, char **argv)
{
    int status = CLI_EXIT_ERROR;
    int quiet = 0;
    progress_bar bar = {0.0, -1, 0};
    embt_convert_options opts = EMBT_CONVERT_OPTIONS_INIT;

    optind = 0; /* glibc: restart scanning so the command can run twice in one process */
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, ":qh", long_options, NULL);
        if (c == -1)
            break;
        switch (c) {
        case OPT_FROM:
        case OPT_TO: {
            embt_format f;
            if (embt_format_parse(&f, optarg) != EMBT_OK ||
                (c == OPT_TO && f == EMBT_FORMAT_FASTTEXT_BIN))
                return cli_usage_error("convert",
                                       "unknown %s '%s' (expected embt, word2vec, glove, "
                                       "word2vec-bin,%s npy, npz or safetensors)",
                                       c == OPT_FROM ? "--from" : "--to", optarg,
                                       c == OPT_FROM ? " fasttext-bin," : "");
            if (c == OPT_FROM)
                opts.from = f;
            else
                opts.to = f;
            break;
        }
        case OPT_DTYPE:
            if (strcmp(optarg, "f32") == 0)
                opts.dtype = EMBT_DTYPE_F32;
            else if (strcmp(optarg, "f16") == 0)
                opts.dtype = EMBT_DTYPE_F16;
            else if (strcmp(optarg, "bf16") == 0)
                opts.dtype = EMBT_DTYPE_BF16;
            else if (strcmp(optarg, "f64") == 0)
                opts.dtype = EMBT_DTYPE_F64;
            else if (strcmp(optarg, "i8") == 0)
                opts.dtype = EMBT_DTYPE_I8;
            else
                return cli_usage_error(
                    "convert", "unknown --dtype '%s' (expected f32, f16, bf16, f64 or i8)", optarg);
            break;
        case OPT_LIMIT: {
            char *end = NULL;
            errno = 0;
            unsigned long long n = strtoull(optarg, &end, 10);
            if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' || errno != 0 || n == 0)
                return cli_usage_error("convert", "--limit '%s' is not a positive integer", optarg);
            opts.limit = n;
            break;
        }
        case OPT_COMPRESS: opts.flags |= EMBT_CONVERT_COMPRESS; break;
        case OPT_NONFINITE: opts.flags |= EMBT_CONVERT_ALLOW_NONFINITE; break;
        case OPT_TABLE: opts.table_name = optarg; break;
        case OPT_VOCAB: opts.vocab_name = optarg; break;
        case OPT_VOCAB_FILE: opts.vocab_path = optarg; break;
        case OPT_DUPLICATE:
            if (strcmp(optarg, "error") == 0)
                opts.on_duplicate = EMBT_DUPLICATE_ERROR;
            else if (strcmp(optarg, "first") == 0)
                opts.on_duplicate = EMBT_DUPLICATE_FIRST;
            else if (strcmp(optarg, "last") == 0)
                opts.on_duplicate = EMBT_DUPLICATE_LAST;
            else
                return cli_usage_error(
                    "convert", "unknown --on-duplicate '%s' (expected error, first or last)",
                    optarg);
            break;
        case OPT_UTF8:
            if (strcmp(optarg, "error") == 0)
                opts.on_bad_utf8 = EMBT_BAD_UTF8_ERROR;
            else if (strcmp(optarg, "replace") == 0)
                opts.on_bad_utf8 = EMBT_BAD_UTF8_REPLACE;
            else if (strcmp(optarg, "skip") == 0)
                opts.on_bad_utf8 = EMBT_BAD_UTF8_SKIP;
            else
                return cli_usage_error(
                    "convert", "unknown --on-bad-utf8 '%s' (expected error, replace or skip)",
                    optarg);
            break;
        case 'q': quiet = 1; break;
        case 'h': fputs(usage, stdout); return CLI_EXIT_OK;
        default: return cli_bad_option("convert", c, argv);
        }
    }
    if (argc - optind != 2)
        return cli_usage_error("convert", "expected INPUT and OUTPUT, got %d arguments",
                               argc - optind);
    const char *in_path = argv[optind];
    const char *out_path = argv[optind + 1];
    if (!quiet && isatty(STDERR_FILENO)) {
        opts.progress = draw_progress;
        opts.payload = &bar;
    }

    embt_convert_report report = {0, 0, 0, 0, 0};
    opts.report = &report;
    cli_temps_catch();
    embt_status rc = embt_convert_file(in_path, out_path, &opts);
    cli_temps_release();
    if (bar.drawn)
        fputc('\n', stderr);
    if (rc != EMBT_OK) {
        print_failure(in_path, out_path, opts.vocab_path);
        goto done;
    }
    print_report(&report, &opts);
    status = CLI_EXIT_OK;
done:
    return status;
}
