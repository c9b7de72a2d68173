/* cmd_train.c: `embt train`: dispatches --task classify to cli_train_classify(), reads CONFIG.yaml
 * into flags (cli_train_config.c), and runs skip-gram training (embt_sg_train()) with a progress
 * line on a terminal and a resumable file on Ctrl-C. */
#include <errno.h>
#include <math.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <embt/embt.h>

#include "cli_train.h"
#include "cli_util.h"
#include "cmd.h"

static const char usage[] =
    "usage: embt train --task skipgram --input CORPUS.txt --output OUT.embt [options]\n"
    "       embt train --task classify ...   (see embt train --task classify --help)\n"
    "       embt train CONFIG.yaml           (keys are the long options below, e.g. min-count: 5)\n"
    "\n"
    "Skip-gram with negative sampling (word2vec.c's algorithm), from scratch or from a table:\n"
    "  --input FILE        corpus: UTF-8 text, words split on white space, a line is a sentence\n"
    "  --output FILE       .embt written atomically: vocabulary with counts, embedding, context\n"
    "  --pretrained FILE   start from FILE's first vocabulary and its table (embedding); corpus\n"
    "                      words it lacks are added with --min-count and initialised by --init\n"
    "  --freeze            keep the pretrained rows of the embedding fixed\n"
    "  --dim N             vector size (default 100; the pretrained table's with --pretrained)\n"
    "  --lr X              starting learning rate, decayed linearly to 1e-4 of it (default 0.025)\n"
    "  --epoch N           passes over the corpus (default 5)\n"
    "  --window N          maximum context window (default 5)\n"
    "  --neg N             negative samples per pair (default 5, at most 100)\n"
    "  --sample X          subsampling threshold, 0 for none (default 1e-3)\n"
    "  --min-count N       minimum count of a (new) word (default 5)\n"
    "  --threads N         hogwild threads (default 1; one thread gives reproducible files)\n"
    "  --seed N            seed of the initialiser and the per-thread generators (default 1)\n"
    "  --optimizer NAME    sgd (default: word2vec's update), adagrad or adam (SparseAdam), with\n"
    "                      their state saved in OUT\n"
    "  --init SPEC         rows of new words: uniform:A,B (default +-0.5/dim), normal:M,S, zeros\n"
    "  --resume FILE       continue an interrupted run: settings, counts, position and generator\n"
    "                      states come from FILE (--input defaults to its corpus)\n"
    "  --stop-after N      stop after N words and write a resumable OUT (exit 0)\n"
    "  --word-ngrams N, --bucket N   classify only\n"
    "  -q, --quiet         no progress line or summary on stderr\n"
    "  -h, --help          show this help\n"
    "\n"
    "Ctrl-C finishes the current sentence, writes a resumable OUT and exits with status 130.\n"
    "Exit status: 0 trained, 1 error, 2 usage, 130 interrupted (OUT resumable).\n";

enum {
    OPT_TASK = 256,
    OPT_INPUT,
    OPT_OUTPUT,
    OPT_PRETRAINED,
    OPT_FREEZE,
    OPT_DIM,
    OPT_LR,
    OPT_EPOCH,
    OPT_WINDOW,
    OPT_NEG,
    OPT_SAMPLE,
    OPT_MIN_COUNT,
    OPT_WORD_NGRAMS,
    OPT_BUCKET,
    OPT_THREADS,
    OPT_SEED,
    OPT_OPTIMIZER,
    OPT_RESUME,
    OPT_INIT,
    OPT_STOP_AFTER
};

static const struct option long_options[] = {
    {"task", required_argument, NULL, OPT_TASK},
    {"input", required_argument, NULL, OPT_INPUT},
    {"output", required_argument, NULL, OPT_OUTPUT},
    {"pretrained", required_argument, NULL, OPT_PRETRAINED},
    {"freeze", no_argument, NULL, OPT_FREEZE},
    {"dim", required_argument, NULL, OPT_DIM},
    {"lr", required_argument, NULL, OPT_LR},
    {"epoch", required_argument, NULL, OPT_EPOCH},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"neg", required_argument, NULL, OPT_NEG},
    {"sample", required_argument, NULL, OPT_SAMPLE},
    {"min-count", required_argument, NULL, OPT_MIN_COUNT},
    {"word-ngrams", required_argument, NULL, OPT_WORD_NGRAMS},
    {"bucket", required_argument, NULL, OPT_BUCKET},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"optimizer", required_argument, NULL, OPT_OPTIMIZER},
    {"resume", required_argument, NULL, OPT_RESUME},
    {"init", required_argument, NULL, OPT_INIT},
    {"stop-after", required_argument, NULL, OPT_STOP_AFTER},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

volatile sig_atomic_t *cli_train_catch_sigint(struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, old);
    return &interrupted;
}

void cli_train_release_sigint(const struct sigaction *old)
{
    sigaction(SIGINT, old, NULL);
}

static bool parse_f64(double *out, const char *s)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return end != s && *end == '\0' && errno == 0;
}

static bool parse_init(embt_init_options *o, const char *spec)
{
    char *end;
    if (strncmp(spec, "uniform:", 8) == 0) {
        o->kind = EMBT_INIT_UNIFORM;
        o->low = strtod(spec + 8, &end);
        if (*end != ',')
            return false;
        o->high = strtod(end + 1, &end);
        return *end == '\0' && o->high >= o->low;
    }
    if (strncmp(spec, "normal:", 7) == 0) {
        o->kind = EMBT_INIT_NORMAL;
        o->mean = strtod(spec + 7, &end);
        if (*end != ',')
            return false;
        o->std = strtod(end + 1, &end);
        return *end == '\0' && o->std >= 0;
    }
    if (strcmp(spec, "zeros") == 0) {
        o->kind = EMBT_INIT_ZEROS;
        return true;
    }
    return false;
}

static void progress(const embt_train_progress *p, void *user)
{
    (void)user;
    unsigned eta = (unsigned)(p->eta_seconds + 0.5);
    fprintf(stderr, "\r%6.2f%%  %9.0f words/s/thread  loss %.4f  lr %.6f  ETA %u:%02u:%02u ",
            100 * p->fraction, p->words_per_sec_thread, p->loss, p->lr, eta / 3600, eta / 60 % 60,
            eta % 60);
    fflush(stderr);
}

/* True when the .embt at `path` was written by the classifier (training.task). */
static bool trained_by_classifier(const char *path)
{
    embt_file *f = NULL;
    embt_meta *m = NULL;
    const char *v;
    size_t len = 0;
    bool yes = false;
    if (embt_file_open(&f, path, NULL) == EMBT_OK) {
        const char *text = embt_file_metadata(f, &len);
        yes = embt_meta_parse(&m, text ? text : "", text ? len : 0) == EMBT_OK &&
              embt_meta_get(&v, &len, m, "training.task") == EMBT_OK && strcmp(v, "classify") == 0;
    }
    embt_meta_free(m);
    embt_file_close(f);
    return yes;
}

/* The task named by --task in argv, found without consuming options; without --task, the task of
 * the --resume file (so that resuming needs no more than the file), else skipgram. */
static const char *find_task(int argc, char **argv)
{
    const char *task = NULL, *resume = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--task") == 0 && i + 1 < argc)
            task = argv[++i];
        else if (strncmp(argv[i], "--task=", 7) == 0)
            task = argv[i] + 7;
        else if (strcmp(argv[i], "--resume") == 0 && i + 1 < argc)
            resume = argv[++i];
        else if (strncmp(argv[i], "--resume=", 9) == 0)
            resume = argv[i] + 9;
    }
    if (task)
        return task;
    return resume && trained_by_classifier(resume) ? "classify" : "skipgram";
}

static int train_skipgram(int argc, char **argv)
{
    embt_sg_options o;
    embt_sg_defaults(&o);
    bool quiet = false, have_dim = false;
    uint64_t u;
    double d;
    const char *resume_input = NULL;
    embt_file *rf = NULL;
    embt_meta *rmeta = NULL;
    int rc = CLI_EXIT_OK;
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":qh", long_options, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(usage, stdout); return CLI_EXIT_OK;
        case 'q': quiet = true; break;
        case OPT_TASK: break;
        case OPT_INPUT: o.input = optarg; break;
        case OPT_OUTPUT: o.output = optarg; break;
        case OPT_PRETRAINED: o.pretrained = optarg; break;
        case OPT_FREEZE: o.freeze = 1; break;
        case OPT_RESUME: o.resume = optarg; break;
        case OPT_DIM:
            if (!cli_parse_u64(&u, optarg, EMBT_SG_DIM_MAX) || u == 0)
                return cli_usage_error("train", "--dim: expected an integer in [1, %u], got '%s'",
                                       EMBT_SG_DIM_MAX, optarg);
            o.dim = (uint32_t)u;
            have_dim = true;
            break;
        case OPT_EPOCH:
        case OPT_WINDOW:
        case OPT_NEG:
        case OPT_THREADS:
            if (c == OPT_NEG && !cli_parse_u64(&u, optarg, EMBT_SG_NEG_MAX))
                return cli_usage_error("train", "--neg: expected an integer in [0, %u], got '%s'",
                                       EMBT_SG_NEG_MAX, optarg);
            if (!cli_parse_u64(&u, optarg, c == OPT_THREADS ? 1024 : 1u << 20) ||
                (u == 0 && c != OPT_NEG && c != OPT_EPOCH))
                return cli_usage_error("train", "--%s: expected a%s integer, got '%s'",
                                       c == OPT_EPOCH    ? "epoch"
                                       : c == OPT_WINDOW ? "window"
                                                         : "threads (1 to 1024)",
                                       c == OPT_EPOCH ? " non-negative" : " positive", optarg);
            if (c == OPT_EPOCH)
                o.epoch = (uint32_t)u;
            else if (c == OPT_WINDOW)
                o.window = (uint32_t)u;
            else if (c == OPT_NEG)
                o.neg = (uint32_t)u;
            else
                o.threads = (uint32_t)u;
            break;
        case OPT_MIN_COUNT:
        case OPT_SEED:
        case OPT_STOP_AFTER:
            if (!cli_parse_u64(&u, optarg, UINT64_MAX))
                return cli_usage_error("train", "expected a non-negative integer, got '%s'",
                                       optarg);
            if (c == OPT_MIN_COUNT)
                o.min_count = u;
            else if (c == OPT_SEED)
                o.seed = u;
            else
                o.stop_after_words = u;
            break;
        case OPT_LR:
            if (!parse_f64(&d, optarg) || !(d > 0) || isinf(d))
                return cli_usage_error("train", "--lr: expected a positive number, got '%s'",
                                       optarg);
            o.lr = d;
            break;
        case OPT_SAMPLE:
            if (!parse_f64(&d, optarg) || !(d >= 0) || isinf(d))
                return cli_usage_error("train", "--sample: expected a number >= 0, got '%s'",
                                       optarg);
            o.sample = d;
            break;
        case OPT_OPTIMIZER: {
            embt_optim_kind k;
            if (embt_optim_parse(&k, optarg) != EMBT_OK)
                return cli_usage_error("train", "--optimizer: sgd, adagrad or adam, not '%s'",
                                       optarg);
            embt_optim_defaults(&o.optimizer, k);
            break;
        }
        case OPT_INIT:
            if (!parse_init(&o.init, optarg))
                return cli_usage_error("train",
                                       "--init: uniform:A,B, normal:M,S or zeros, "
                                       "not '%s'",
                                       optarg);
            break;
        case OPT_WORD_NGRAMS:
        case OPT_BUCKET: {
            /* name the option itself, not its value: a config file error points at the key */
            const char *opt =
                optind >= 2 && argv[optind - 1] == optarg ? argv[optind - 2] : argv[optind - 1];
            return cli_arg_error("train", opt, "%s is an option of --task classify",
                                 c == OPT_BUCKET ? "--bucket" : "--word-ngrams");
        }
        default: return cli_bad_option("train", c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
    if (o.resume && (o.pretrained || have_dim))
        return cli_usage_error("train", "--resume takes its settings from the file: no "
                                        "--pretrained or --dim");
    if (o.freeze && !o.pretrained)
        return cli_usage_error("train", "--freeze needs --pretrained");
    if (!o.output)
        return cli_usage_error("train", "--output is required");
    /* the training-state files are opened here first, so that an error opening them names them;
     * the library opens them again and verifies them (its errors name them too, below) */
    if (o.pretrained) {
        embt_file *pf = NULL;
        if (embt_file_open(&pf, o.pretrained, NULL) != EMBT_OK) {
            cli_error_record("train", o.pretrained, embt_error_last());
            rc = CLI_EXIT_ERROR;
            goto done;
        }
        embt_file_close(pf);
    }
    if (o.resume && embt_file_open(&rf, o.resume, NULL) != EMBT_OK) {
        cli_error_record("train", o.resume, embt_error_last());
        rc = CLI_EXIT_ERROR;
        goto done;
    }
    if (!o.input && o.resume) {
        size_t len = 0;
        const char *in;
        const char *text = embt_file_metadata(rf, &len);
        if (embt_meta_parse(&rmeta, text ? text : "", len) != EMBT_OK ||
            embt_meta_get(&in, &len, rmeta, "training.input") != EMBT_OK) {
            cli_error_record("train", o.resume, embt_error_last());
            rc = CLI_EXIT_ERROR;
            goto done;
        }
        resume_input = in;
        o.input = resume_input;
    }
    if (!o.input) {
        rc = cli_usage_error("train", "--input is required");
        goto done;
    }
    if ((rc = cli_output_not_input("train", o.output, o.input, "input corpus")))
        goto done;
    bool tty = isatty(STDERR_FILENO) && !quiet;
    if (tty)
        o.progress = progress;
    struct sigaction old;
    o.stop_flag = cli_train_catch_sigint(&old);
    embt_sg_report rep;
    embt_status st = embt_sg_train(&o, &rep);
    cli_train_release_sigint(&old);
    if (tty)
        fputc('\n', stderr);
    if (st != EMBT_OK) {
        /* a line and column can only be in the corpus, and so can errors of section "corpus";
         * section "output" is the output; any other file error is the one training-state file
         * (--resume and --pretrained exclude each other) */
        embt_error err = *embt_error_last();
        const char *file = o.resume ? o.resume : o.pretrained;
        if (err.line || strcmp(err.section, "corpus") == 0) {
            file = o.input;
        } else if (strcmp(err.section, "output") == 0) {
            file = o.output;
            err.section[0] = '\0';
        } else if (err.code == EMBT_ENOMEM || err.code == EMBT_EIO) {
            file = NULL; /* memory, or a system call on a file the message names */
        }
        cli_error_record("train", file, &err);
        rc = CLI_EXIT_ERROR;
        goto done;
    }
    if (!quiet)
        fprintf(stderr,
                "embt train: %s: %llu words, vocabulary %llu (%llu new), %.0f words/s/thread, "
                "loss %.4f, %.1f s%s\n",
                o.output, (unsigned long long)rep.words_done, (unsigned long long)rep.vocab_size,
                (unsigned long long)rep.new_words, rep.words_per_sec_thread, rep.loss, rep.seconds,
                rep.completed ? "" : " (stopped: resume with --resume)");
    if (interrupted && !rep.completed)
        rc = 130;
done:
    embt_meta_free(rmeta);
    embt_file_close(rf);
    return rc;
}

int cmd_train(int argc, char **argv)
{
    if (argc >= 2 && argv[1][0] != '-') {
        if (argc > 2)
            return cli_usage_error("train", "a CONFIG.yaml takes no other arguments");
        cli_config_args config;
        int rc = cli_train_config(argv[1], &config);
        if (rc != CLI_EXIT_OK)
            return rc;
        cli_set_arg_origins(argv[1], config.argv, config.line, config.col, config.argc);
        rc = cmd_train(config.argc, config.argv);
        cli_set_arg_origins(NULL, NULL, NULL, NULL, 0);
        cli_train_config_free(&config);
        return rc;
    }
    const char *task = find_task(argc, argv);
    if (strcmp(task, "classify") == 0)
        return cli_train_classify(argc, argv);
    if (strcmp(task, "skipgram") != 0)
        return cli_arg_error("train", task, "--task: skipgram or classify, not '%s'", task);
    return train_skipgram(argc, argv);
}
