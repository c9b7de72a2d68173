/* cli_train_classify.c: `embt train --task classify`: parses the classifier's options (fastText's
 * supervised settings as long options), opens the pretrained table, draws the progress line and
 * calls embt_classify_train(), which Ctrl-C stops with a resumable file (--resume continues it).
 * cmd_train.c forwards its argv here. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <embt/embt.h>

#include "cli_util.h"
#include "cli_train.h"

static const char usage[] =
    "usage: embt train --task classify --input FILE --output MODEL.embt [options]\n"
    "\n"
    "Trains a text classifier as fastText's supervised mode: nn.EmbeddingBag(mode='mean') over\n"
    "the words of a line (and </s>, and hashed word n-grams), nn.Linear, softmax cross-entropy, "
    "SGD\n"
    "with lr decaying linearly to 0. Input lines: __label__a [__label__b ...] words ...\n"
    "\n"
    "options:\n"
    "  --input FILE          labelled text (UTF-8), one example per line\n"
    "  --output FILE         the model: vocabularies words and labels, tables embedding,\n"
    "                        embedding.ngrams (with --word-ngrams > 1), linear.weight, "
    "linear.bias\n"
    "  --pretrained FILE     copy the rows of known words from FILE's table (from_pretrained)\n"
    "  --pretrained-table T  that table (default embedding)\n"
    "  --freeze              never update the rows copied from --pretrained\n"
    "  --init SPEC           other rows: fasttext (U(+-1/dim), default), uniform:A,B,\n"
    "                        normal:MEAN,STD or zeros\n"
    "  --dim N               embedding size (default 100, or the pretrained table's)\n"
    "  --lr X                learning rate (default 0.1)\n"
    "  --lr-update-rate N    tokens between learning-rate updates (default 100)\n"
    "  --epoch N             passes over the input (default 5)\n"
    "  --min-count N         words seen fewer times are dropped (default 1)\n"
    "  --word-ngrams N       word n-grams up to N (default 1: none)\n"
    "  --bucket N            n-gram rows (default 2000000; 0 without n-grams)\n"
    "  --threads N           lock-free parallel threads (default 1: reproducible)\n"
    "  --seed S              initialisation and label draws (default 0)\n"
    "  --label PREFIX        label prefix (default __label__)\n"
    "  --bias                train linear.bias too (default: it stays 0, as fastText has none)\n"
    "  --optimizer sgd       the only optimiser of this task\n"
    "  --resume FILE         continue a stopped run: settings, vocabularies, tables, line\n"
    "                        positions and generator states come from FILE (--input defaults\n"
    "                        to its input, which must hold the same lines); no setting options\n"
    "  --stop-after N        stop after N lines and write a resumable OUT (exit 0)\n"
    "  -q, --quiet           no progress line and no summary\n"
    "  -h, --help            show this help\n"
    "\n"
    "Ctrl-C finishes the current line, writes a resumable OUT and exits with status 130.\n"
    "Exit status: 0 written, 1 error (input line and column named), 2 usage, 130 interrupted.\n";

enum {
    OPT_TASK = 256,
    OPT_INPUT,
    OPT_OUTPUT,
    OPT_PRETRAINED,
    OPT_PRETRAINED_TABLE,
    OPT_FREEZE,
    OPT_INIT,
    OPT_DIM,
    OPT_LR,
    OPT_LR_UPDATE,
    OPT_EPOCH,
    OPT_MIN_COUNT,
    OPT_NGRAMS,
    OPT_BUCKET,
    OPT_THREADS,
    OPT_SEED,
    OPT_LABEL,
    OPT_OPTIMIZER,
    OPT_BIAS,
    OPT_RESUME,
    OPT_STOP_AFTER
};

static const struct option long_options[] = {
    {"task", required_argument, NULL, OPT_TASK},
    {"input", required_argument, NULL, OPT_INPUT},
    {"output", required_argument, NULL, OPT_OUTPUT},
    {"pretrained", required_argument, NULL, OPT_PRETRAINED},
    {"pretrained-table", required_argument, NULL, OPT_PRETRAINED_TABLE},
    {"freeze", no_argument, NULL, OPT_FREEZE},
    {"init", required_argument, NULL, OPT_INIT},
    {"dim", required_argument, NULL, OPT_DIM},
    {"lr", required_argument, NULL, OPT_LR},
    {"lr-update-rate", required_argument, NULL, OPT_LR_UPDATE},
    {"epoch", required_argument, NULL, OPT_EPOCH},
    {"min-count", required_argument, NULL, OPT_MIN_COUNT},
    {"word-ngrams", required_argument, NULL, OPT_NGRAMS},
    {"bucket", required_argument, NULL, OPT_BUCKET},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"label", required_argument, NULL, OPT_LABEL},
    {"optimizer", required_argument, NULL, OPT_OPTIMIZER},
    {"bias", no_argument, NULL, OPT_BIAS},
    {"resume", required_argument, NULL, OPT_RESUME},
    {"stop-after", required_argument, NULL, OPT_STOP_AFTER},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static bool parse_double(double *out, const char *s, char stop, const char **end_out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    if (errno || end == s || *end != stop || !isfinite(*out))
        return false;
    *end_out = end;
    return true;
}

static bool parse_init(embt_init_options *o, bool *fasttext, const char *spec)
{
    const char *end;
    *fasttext = false;
    if (strcmp(spec, "fasttext") == 0) {
        *fasttext = true;
        return true;
    }
    if (strcmp(spec, "zeros") == 0) {
        o->kind = EMBT_INIT_ZEROS;
        return true;
    }
    if (strncmp(spec, "uniform:", 8) == 0) {
        o->kind = EMBT_INIT_UNIFORM;
        return parse_double(&o->low, spec + 8, ',', &end) &&
               parse_double(&o->high, end + 1, '\0', &end) && o->low <= o->high;
    }
    if (strncmp(spec, "normal:", 7) == 0) {
        o->kind = EMBT_INIT_NORMAL;
        return parse_double(&o->mean, spec + 7, ',', &end) &&
               parse_double(&o->std, end + 1, '\0', &end) && o->std >= 0;
    }
    return false;
}

typedef struct progress_line {
    double last; /* seconds_elapsed of the last drawing */
    bool drawn;
} progress_line;

static int draw_progress(void *user, const embt_classify_progress *p)
{
    progress_line *pl = user;
    if (pl->drawn && p->seconds_elapsed - pl->last < 0.1)
        return 0;
    pl->last = p->seconds_elapsed;
    pl->drawn = true;
    double eta = p->progress > 0 ? p->seconds_elapsed * (1 - p->progress) / p->progress : 0;
    int e = (int)eta;
    fprintf(stderr, "\r%7.2f%%  %10.0f words/s/thread  loss %.4f  lr %.6f  ETA %d:%02d:%02d ",
            100 * p->progress, p->tokens_per_sec, p->loss, p->lr, e / 3600, e / 60 % 60, e % 60);
    fflush(stderr);
    return 0;
}

/* The long name of option value c. */
static const char *option_name(int c)
{
    for (const struct option *lo = long_options; lo->name; lo++)
        if (lo->val == c)
            return lo->name;
    return "?";
}

/* training.input of the stopped run at `path` (a copy: free it), or NULL with an error line
 * printed. */
static char *resume_input(const char *path)
{
    embt_file *f = NULL;
    embt_meta *m = NULL;
    char *input = NULL;
    const char *v;
    size_t len = 0;
    if (embt_file_open(&f, path, NULL) == EMBT_OK) {
        const char *text = embt_file_metadata(f, &len);
        if (embt_meta_parse(&m, text ? text : "", text ? len : 0) == EMBT_OK &&
            embt_meta_get(&v, &len, m, "training.input") == EMBT_OK)
            input = strndup(v, len);
    }
    if (!input)
        cli_error_record("train", path, embt_error_last());
    embt_meta_free(m);
    embt_file_close(f);
    return input;
}

int cli_train_classify(int argc, char **argv)
{
    static const char cmd[] = "train";
    int rc = CLI_EXIT_ERROR;
    const char *input = NULL, *output = NULL, *pretrained = NULL, *ptable = "embedding";
    const char *setting = NULL; /* a training setting given: --resume takes them from its file */
    char *saved_input = NULL;
    bool quiet = false, fasttext_init = true;
    embt_classify_options o = EMBT_CLASSIFY_OPTIONS_INIT;
    embt_init_options init = EMBT_INIT_OPTIONS_INIT;
    embt_file *pf = NULL;
    uint64_t v;
    double x;
    const char *end;

    optind = 0;
    for (;;) {
        int c = getopt_long(argc, argv, ":qh", long_options, NULL);
        if (c == -1)
            break;
        if (c >= OPT_PRETRAINED && c <= OPT_BIAS && c != OPT_OPTIMIZER)
            setting = option_name(c);
        switch (c) {
        case 'h': fputs(usage, stdout); return CLI_EXIT_OK;
        case 'q': quiet = true; break;
        case OPT_TASK:
            if (strcmp(optarg, "classify") != 0)
                return cli_usage_error(cmd, "this is --task classify, not '%s'", optarg);
            break;
        case OPT_INPUT: input = optarg; break;
        case OPT_OUTPUT: output = optarg; break;
        case OPT_RESUME: o.resume = optarg; break;
        case OPT_STOP_AFTER:
            if (!cli_parse_u64(&v, optarg, UINT64_MAX))
                return cli_usage_error(cmd, "bad --stop-after '%s'", optarg);
            o.stop_after_lines = v;
            break;
        case OPT_PRETRAINED: pretrained = optarg; break;
        case OPT_PRETRAINED_TABLE: ptable = optarg; break;
        case OPT_FREEZE: o.freeze = 1; break;
        case OPT_INIT:
            if (!parse_init(&init, &fasttext_init, optarg))
                return cli_usage_error(cmd, "bad --init '%s'", optarg);
            break;
        case OPT_DIM:
            if (!cli_parse_u64(&v, optarg, 65536) || v == 0)
                return cli_usage_error(cmd, "--dim must be in [1, 65536], not '%s'", optarg);
            o.dim = (uint32_t)v;
            break;
        case OPT_LR:
            if (!parse_double(&x, optarg, '\0', &end) || !(x > 0))
                return cli_usage_error(cmd, "--lr must be a number > 0, not '%s'", optarg);
            o.lr = x;
            break;
        case OPT_LR_UPDATE:
            if (!cli_parse_u64(&v, optarg, UINT32_MAX) || v == 0)
                return cli_usage_error(cmd, "bad --lr-update-rate '%s'", optarg);
            o.lr_update_rate = (uint32_t)v;
            break;
        case OPT_EPOCH:
            if (!cli_parse_u64(&v, optarg, UINT32_MAX) || v == 0)
                return cli_usage_error(cmd, "--epoch must be >= 1, not '%s'", optarg);
            o.epoch = (uint32_t)v;
            break;
        case OPT_MIN_COUNT:
            if (!cli_parse_u64(&v, optarg, UINT32_MAX))
                return cli_usage_error(cmd, "bad --min-count '%s'", optarg);
            o.min_count = (uint32_t)v;
            break;
        case OPT_NGRAMS:
            if (!cli_parse_u64(&v, optarg, 64) || v == 0)
                return cli_usage_error(cmd, "--word-ngrams must be in [1, 64], not '%s'", optarg);
            o.word_ngrams = (uint32_t)v;
            break;
        case OPT_BUCKET:
            if (!cli_parse_u64(&v, optarg, UINT32_MAX / 2))
                return cli_usage_error(cmd, "bad --bucket '%s'", optarg);
            o.bucket = v;
            break;
        case OPT_THREADS:
            if (!cli_parse_u64(&v, optarg, 1024) || v == 0)
                return cli_usage_error(cmd, "--threads must be in [1, 1024], not '%s'", optarg);
            o.threads = (uint32_t)v;
            break;
        case OPT_SEED:
            if (!cli_parse_u64(&v, optarg, UINT64_MAX))
                return cli_usage_error(cmd, "bad --seed '%s'", optarg);
            o.seed = v;
            break;
        case OPT_LABEL:
            if (!*optarg)
                return cli_usage_error(cmd, "--label must not be empty");
            o.label_prefix = optarg;
            break;
        case OPT_BIAS: o.bias = 1; break;
        case OPT_OPTIMIZER:
            if (strcmp(optarg, "sgd") != 0)
                return cli_usage_error(cmd, "--task classify trains with --optimizer sgd only");
            break;
        default: return cli_bad_option(cmd, c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (o.resume && setting)
        return cli_usage_error(cmd, "--resume takes the settings from its file: no --%s", setting);
    if (!output || (!input && !o.resume))
        return cli_usage_error(cmd, "--input and --output are required");
    if (o.freeze && !pretrained)
        return cli_usage_error(cmd, "--freeze needs --pretrained");
    if (!fasttext_init) {
        init.seed = o.seed;
        o.init = &init;
    }
    if (!input) {
        if (!(input = saved_input = resume_input(o.resume)))
            goto done;
    }
    if (cli_output_not_input(cmd, output, input, "input")) /* also the one a resume file names */
        goto done;

    if (pretrained) {
        embt_open_options verified = EMBT_OPEN_OPTIONS_INIT;
        verified.flags = EMBT_OPEN_VERIFY; /* every row is used: refuse damage, as convert does */
        embt_status st = embt_file_open(&pf, pretrained, &verified);
        if (st) {
            cli_error_record(cmd, pretrained, embt_error_last());
            goto done;
        }
        if (embt_file_table(&o.pretrained, pf, ptable) != EMBT_OK) {
            cli_errorf(cmd, pretrained, "no table '%s'", ptable);
            goto done;
        }
        const char *slash = strrchr(pretrained, '/');
        o.pretrained_name = slash ? slash + 1 : pretrained;
    }
    progress_line pl = {0, false};
    if (!quiet && isatty(STDERR_FILENO)) {
        o.progress = draw_progress;
        o.progress_user = &pl;
    }
    embt_classify_report rep;
    struct sigaction old;
    volatile sig_atomic_t *interrupted = cli_train_catch_sigint(&old);
    o.stop_flag = interrupted;
    embt_status st = embt_classify_train(input, output, &o, &rep);
    cli_train_release_sigint(&old);
    if (pl.drawn)
        fputc('\n', stderr);
    if (st) {
        embt_error err = *embt_error_last();
        const char *file = err.line ? input : NULL;
        if (strcmp(err.section, "output") == 0) {
            file = output;
            err.section[0] = '\0';
        }
        cli_error_record(cmd, file, &err);
        goto done;
    }
    if (!quiet)
        fprintf(stderr,
                "embt train: %llu lines, %llu tokens, %u words, %u labels, %llu buckets, dim %u, "
                "%u pretrained rows; mean loss %.6f; training %.2f s, total %.2f s%s\n",
                (unsigned long long)rep.lines, (unsigned long long)rep.ntokens, rep.nwords,
                rep.nlabels, (unsigned long long)rep.bucket, rep.dim, rep.pretrained_rows, rep.loss,
                rep.train_seconds, rep.total_seconds,
                rep.completed ? "" : " (stopped: resume with --resume)");
    rc = *interrupted && !rep.completed ? 130 : CLI_EXIT_OK;
done:
    free(saved_input);
    embt_file_close(pf);
    return rc;
}
