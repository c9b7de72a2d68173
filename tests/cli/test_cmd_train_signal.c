/* test_cmd_train_signal.c: `embt train` (the real binary) interrupted while it trains. Its stderr is
 * a pseudo-terminal, so it draws its progress line; the first line proves that training has begun,
 * and the signal is sent then. Skip-gram (spec/CLI.md, embt train): SIGINT finishes the sentence,
 * writes a resumable OUT that validates, and exits 130; --resume from it finishes the run. SIGKILL
 * leaves the --pretrained input (here also the output) byte for byte as it was, and no temporary
 * file. The classifier (embt train --task classify) likewise: SIGINT finishes the current line,
 * writes a resumable OUT that validates (not completed), exits 130, and --resume finishes a model
 * that `embt test` reads; --stop-after then --resume with one thread writes the bytes of one
 * uninterrupted run; SIGKILL leaves the --pretrained input intact and writes nothing.
 * The number of epochs comes from the speed a first run reports, so that the interrupted run and
 * its resumption take about 1.5 s in any build (Debug, sanitizers, Release). */
#define _XOPEN_SOURCE 700 /* posix_openpt, grantpt, unlockpt, ptsname */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "test_util.h"

/* The test directory, with the children's stdout file already there (so that entries count). */
static void setup(void)
{
    tu_setup();
    tu_write_file(tu_path("stdout"), "", 0);
}

TestSuite(train_signal, .init = setup, .fini = tu_teardown, .timeout = 120);

typedef struct child {
    pid_t pid;
    int master;     /* the pty that is the child's stderr */
    char err[8192]; /* what it wrote there (the tail, NUL-terminated) */
    size_t err_len;
} child;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Starts `embt ARGS...` (NULL-terminated) with stdin /dev/null, stdout to <dir>/stdout and stderr
 * on a new pseudo-terminal. */
static void spawn(child *c, const char *const *args)
{
    const char *bin = getenv("EMBT_BINARY");
    cr_assert_not_null(bin, "EMBT_BINARY is not set");
    memset(c, 0, sizeof *c);
    c->master = posix_openpt(O_RDWR | O_NOCTTY);
    cr_assert_geq(c->master, 0, "posix_openpt: %s", strerror(errno));
    cr_assert_eq(grantpt(c->master), 0);
    cr_assert_eq(unlockpt(c->master), 0);
    const char *slave = ptsname(c->master);
    cr_assert_not_null(slave);
    char *argv[40];
    size_t n = 0;
    argv[n++] = (char *)bin;
    for (; args[n - 1]; n++) {
        cr_assert_lt(n, 39);
        argv[n] = (char *)args[n - 1];
    }
    argv[n] = NULL;
    char out[PATH_MAX];
    snprintf(out, sizeof out, "%s", tu_path("stdout"));
    fflush(NULL);
    c->pid = fork();
    cr_assert_geq(c->pid, 0);
    if (c->pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int so = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int se = open(slave, O_RDWR | O_NOCTTY);
        if (in < 0 || so < 0 || se < 0 || dup2(in, 0) < 0 || dup2(so, 1) < 0 || dup2(se, 2) < 0)
            _exit(127);
        close(c->master);
        signal(SIGINT, SIG_DFL);
        execv(bin, argv);
        _exit(127);
    }
    fcntl(c->master, F_SETFL, fcntl(c->master, F_GETFL) | O_NONBLOCK);
}

/* Reads what the child wrote to its pty for up to `timeout` seconds; true as soon as the text
 * holds `want`. */
static bool read_until(child *c, const char *want, double timeout)
{
    double end = now_seconds() + timeout;
    for (;;) {
        if (strstr(c->err, want))
            return true;
        double left = end - now_seconds();
        if (left <= 0)
            return false;
        struct pollfd p = {c->master, POLLIN, 0};
        if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
            continue;
        if (c->err_len > sizeof c->err - 512) { /* keep the tail */
            memmove(c->err, c->err + c->err_len - 256, 256);
            c->err_len = 256;
        }
        ssize_t k = read(c->master, c->err + c->err_len, sizeof c->err - 1 - c->err_len);
        if (k <= 0) {
            if (k < 0 && errno == EAGAIN)
                continue;
            return strstr(c->err, want) != NULL; /* EIO: the child closed its side */
        }
        c->err_len += (size_t)k;
        c->err[c->err_len] = '\0';
    }
}

/* Waits for the child (draining its pty), at most `timeout` seconds; returns the wait status. */
static int reap(child *c, double timeout)
{
    double end = now_seconds() + timeout;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        cr_assert_geq(r, 0);
        if (r == c->pid)
            break;
        if (now_seconds() > end) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &status, 0);
            close(c->master);
            cr_assert_fail("the child did not end within %.0f s; stderr: %s", timeout, c->err);
        }
        read_until(c, "\x01never", 0.02);
    }
    read_until(c, "\x01never", 0.05);
    close(c->master);
    return status;
}

/* Runs `embt ARGS...` to its end with stdout and stderr discarded; returns the exit status. */
static int run(const char *const *args)
{
    child c;
    spawn(&c, args);
    int status = reap(&c, 60);
    cr_assert(WIFEXITED(status), "killed by signal %d; stderr: %s", WTERMSIG(status), c.err);
    return WEXITSTATUS(status);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* A corpus of `lines` lines of 10 words over 200 words (Zipf-like, so subsampling matters). */
static void write_corpus(const char *path, int lines, bool labels)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    uint64_t r = 17;
    for (int l = 0; l < lines; l++) {
        if (labels)
            fprintf(f, "__label__%u ", (unsigned)(tu_rand(&r) % 3));
        for (int w = 0; w < 10; w++) {
            uint64_t a = tu_rand(&r) % 200, b = tu_rand(&r) % 200;
            fprintf(f, "w%u ", (unsigned)(a < b ? a : b));
        }
        fputc('\n', f);
    }
    cr_assert_eq(fclose(f), 0);
}

/* The value of metadata key `key` of the .embt at `path`, in `buf`. */
static const char *meta_value(const char *path, const char *key, char *buf, size_t cap)
{
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, NULL));
    size_t len;
    const char *text = embt_file_metadata(f, &len);
    embt_meta *m = NULL;
    TU_OK(embt_meta_parse(&m, text ? text : "", len));
    const char *v;
    TU_OK(embt_meta_get(&v, &len, m, key));
    snprintf(buf, cap, "%.*s", (int)len, v);
    embt_meta_free(m);
    embt_file_close(f);
    return buf;
}

/* A pretrained file: 40 of the corpus words, 8 columns. */
static void write_pretrained(const char *path)
{
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, path, NULL));
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    TU_OK(embt_writer_vocab_begin(w, &vs));
    for (unsigned i = 0; i < 40; i++) {
        char tok[16];
        int len = snprintf(tok, sizeof tok, "w%u", i * 5);
        TU_OK(embt_writer_vocab_add(w, tok, (size_t)len, 0, NULL));
    }
    TU_OK(embt_writer_vocab_end(w));
    float rows[40 * 8];
    for (int i = 0; i < 40 * 8; i++)
        rows[i] = tu_value((uint64_t)i / 8, (uint64_t)i % 8);
    tu_add_table(w, "embedding", 40, 8, "words", rows);
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
}

/* The speed of the last progress line ("... 123456 words/s/thread ...": the mean of the run). */
static double progress_speed(const child *c)
{
    const char *p = NULL;
    for (const char *q = c->err; (q = strstr(q, " words/s/thread")); q++)
        p = q;
    cr_assert_not_null(p);
    while (p > c->err && p[-1] == ' ')
        p--;
    while (p > c->err && p[-1] >= '0' && p[-1] <= '9')
        p--;
    return strtod(p, NULL);
}

Test(train_signal, skipgram_sigkill_leaves_the_pretrained_input_intact)
{
    char corpus[PATH_MAX], pre[PATH_MAX];
    snprintf(corpus, sizeof corpus, "%s", tu_path("corpus.txt"));
    snprintf(pre, sizeof pre, "%s", tu_path("pre.embt"));
    write_corpus(corpus, 2000, false);
    write_pretrained(pre);
    size_t len;
    uint8_t *before = tu_read_file(pre, &len);
    size_t entries = tu_count_entries();
    /* --output names the pretrained input (allowed: the write is atomic) */
    const char *args[] = {"train", "--input", corpus,   "--pretrained", pre, "--output",
                          pre,     "--epoch", "100000", "--min-count",  "1", NULL};
    child c;
    spawn(&c, args);
    cr_assert(read_until(&c, "words/s/thread", 60), "no progress line; stderr: %s", c.err);
    cr_assert_eq(kill(c.pid, SIGKILL), 0);
    int status = reap(&c, 30);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    size_t len2;
    uint8_t *after = tu_read_file(pre, &len2);
    cr_assert(len == len2 && memcmp(before, after, len) == 0, "the pretrained input changed");
    free(before);
    free(after);
    cr_assert_eq(tu_count_entries(), entries, "a temporary file was left");
    cr_assert_eq(tu_count_temp(tu_dir, "pre.embt"), 0);
    const char *vargs[] = {"validate", pre, NULL};
    cr_assert_eq(run(vargs), 0);
}

Test(train_signal, skipgram_sigint_writes_a_resumable_file_and_exits_130)
{
    char corpus[PATH_MAX], out[PATH_MAX], done[PATH_MAX];
    snprintf(corpus, sizeof corpus, "%s", tu_path("corpus.txt"));
    snprintf(out, sizeof out, "%s", tu_path("out.embt"));
    snprintf(done, sizeof done, "%s", tu_path("done.embt"));
    const int lines = 1000; /* 10,000 words */
    write_corpus(corpus, lines, false);

    /* 1. how fast this build trains: the first progress line of an endless run */
    const char *probe[] = {"train",  "--input",     corpus, "--output",    out, "--epoch",
                           "100000", "--dim",       "16",   "--min-count", "1", "--threads",
                           "1",      "--optimizer", "adam", NULL};
    child c;
    spawn(&c, probe);
    cr_assert(read_until(&c, "words/s/thread", 60), "no progress line; stderr: %s", c.err);
    read_until(&c, "\x01never", 0.3); /* a few more lines: a steadier mean */
    double speed = progress_speed(&c);
    kill(c.pid, SIGKILL);
    reap(&c, 30);
    cr_assert_not(tu_exists(out));
    cr_assert_gt(speed, 0, "stderr: %s", c.err);
    /* about 1.5 s of training in all: SIGINT comes at the first progress line (0.1 s), with room
     * for a run faster than the probe on a busy machine */
    long epochs = (long)(speed * 1.5 / (lines * 10)) + 1;
    if (epochs < 2)
        epochs = 2;
    char ep[32];
    snprintf(ep, sizeof ep, "%ld", epochs);

    /* 2. SIGINT once training runs */
    const char *args[] = {"train", "--input",     corpus, "--output",    out, "--epoch",
                          ep,      "--dim",       "16",   "--min-count", "1", "--threads",
                          "1",     "--optimizer", "adam", NULL};
    double t0 = now_seconds();
    spawn(&c, args);
    cr_assert(read_until(&c, "words/s/thread", 60), "no progress line; stderr: %s", c.err);
    cr_assert_eq(kill(c.pid, SIGINT), 0);
    int status = reap(&c, 60);
    double t_int = now_seconds() - t0;
    cr_assert(WIFEXITED(status), "killed by signal %d; stderr: %s", WTERMSIG(status), c.err);
    cr_assert_eq(WEXITSTATUS(status), 130, "exit %d; stderr: %s", WEXITSTATUS(status), c.err);
    cr_assert(strstr(c.err, "resume with --resume"), "stderr: %s", c.err);
    cr_assert_eq(file_size(tu_path("stdout")), 0, "stdout is not empty");
    cr_assert(tu_exists(out), "no output after SIGINT");
    cr_assert_eq(tu_count_temp(tu_dir, "out.embt"), 0, "a temporary file was left");
    const char *vargs[] = {"validate", out, NULL};
    cr_assert_eq(run(vargs), 0, "the interrupted output does not validate");
    char buf[64];
    cr_assert_str_eq(meta_value(out, "training.state.completed", buf, sizeof buf), "false");
    unsigned long long words =
        strtoull(meta_value(out, "training.state.words_done", buf, sizeof buf), NULL, 10);
    cr_assert_gt(words, 0, "SIGINT came before any training");
    cr_assert_lt(words, (unsigned long long)epochs * lines * 10, "the run was not interrupted");

    /* 3. --resume continues (input and settings from the file) and finishes */
    double t1 = now_seconds();
    const char *rargs[] = {"train", "--resume", out, "--output", done, "-q", NULL};
    cr_assert_eq(run(rargs), 0);
    double t_res = now_seconds() - t1;
    const char *vdone[] = {"validate", done, NULL};
    cr_assert_eq(run(vdone), 0);
    cr_assert_str_eq(meta_value(done, "training.state.completed", buf, sizeof buf), "true");
    unsigned long long total =
        strtoull(meta_value(done, "training.state.words_done", buf, sizeof buf), NULL, 10);
    cr_assert_gt(total, words);
    cr_assert_str_eq(meta_value(done, "training.epoch", buf, sizeof buf), ep);
    cr_log_info("%.0f words/s/thread: %ld epochs; interrupted after %llu words (%.2f s), "
                "resumed to %llu words (%.2f s)",
                speed, epochs, words, t_int, total, t_res);
}

Test(train_signal, classifier_sigkill_leaves_the_pretrained_input_intact)
{
    char corpus[PATH_MAX], out[PATH_MAX], pre[PATH_MAX];
    snprintf(corpus, sizeof corpus, "%s", tu_path("train.txt"));
    snprintf(out, sizeof out, "%s", tu_path("model.embt"));
    snprintf(pre, sizeof pre, "%s", tu_path("pre.embt"));
    write_corpus(corpus, 2000, true);
    write_pretrained(pre);
    size_t len;
    uint8_t *before = tu_read_file(pre, &len);
    size_t entries = tu_count_entries();
    const char *args[] = {"train", "--task",       "classify", "--input", corpus,   "--output",
                          out,     "--pretrained", pre,        "--epoch", "100000", NULL};
    child c;
    spawn(&c, args);
    cr_assert(read_until(&c, "words/s/thread", 60), "no progress line; stderr: %s", c.err);
    cr_assert_eq(kill(c.pid, SIGKILL), 0);
    int status = reap(&c, 30);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    cr_assert_not(tu_exists(out), "an output was written");
    cr_assert_eq(tu_count_entries(), entries, "a file was left");
    size_t len2;
    uint8_t *after = tu_read_file(pre, &len2);
    cr_assert(len == len2 && memcmp(before, after, len) == 0, "the pretrained input changed");
    free(after);
    free(before);
}

/* The lines a classifier's file says its `threads` threads trained, over all runs. */
static unsigned long long updates(const char *path, const char *threads)
{
    unsigned long long n = 0;
    for (int t = 0; t < atoi(threads); t++) {
        char key[64], buf[64];
        snprintf(key, sizeof key, "training.state.thread%d.updates", t);
        n += strtoull(meta_value(path, key, buf, sizeof buf), NULL, 10);
    }
    return n;
}

/* SIGINT, with `threads` threads (1: the trainer reads the flag between lines; 2: the calling
 * thread watches it for the workers), then --resume. */
static void classifier_sigint_then_resume(const char *threads)
{
    char corpus[PATH_MAX], out[PATH_MAX], done[PATH_MAX], pre[PATH_MAX];
    snprintf(corpus, sizeof corpus, "%s", tu_path("train.txt"));
    snprintf(out, sizeof out, "%s", tu_path("model.embt"));
    snprintf(done, sizeof done, "%s", tu_path("done.embt"));
    snprintf(pre, sizeof pre, "%s", tu_path("pre.embt"));
    const int lines = 2000; /* 24,000 tokens: a label, 10 words and </s> each */
    write_corpus(corpus, lines, true);
    write_pretrained(pre);

    /* 1. how fast this build trains (tokens/s/thread): the first progress lines of an endless run */
    const char *probe[] = {"train",    "--task",    "classify",      "--input", corpus,
                           "--output", out,         "--epoch",       "100000",  "--pretrained",
                           pre,        "--freeze",  "--word-ngrams", "2",       "--bucket",
                           "1000",     "--threads", threads,         NULL};
    child c;
    spawn(&c, probe);
    cr_assert(read_until(&c, "words/s/thread", 60), "no progress line; stderr: %s", c.err);
    read_until(&c, "\x01never", 0.3);
    double speed = progress_speed(&c);
    kill(c.pid, SIGKILL);
    reap(&c, 30);
    cr_assert_not(tu_exists(out));
    cr_assert_gt(speed, 0, "stderr: %s", c.err);
    long epochs = (long)(speed * 1.5 / (lines * 12)) + 1;
    if (epochs < 2)
        epochs = 2;
    char ep[32];
    snprintf(ep, sizeof ep, "%ld", epochs);

    /* 2. SIGINT once training runs (frozen pretrained rows and n-grams: all the state is kept) */
    const char *args[] = {"train",    "--task",    "classify",      "--input", corpus,
                          "--output", out,         "--epoch",       ep,        "--pretrained",
                          pre,        "--freeze",  "--word-ngrams", "2",       "--bucket",
                          "1000",     "--threads", threads,         NULL};
    spawn(&c, args);
    cr_assert(read_until(&c, "words/s/thread", 60), "no progress line; stderr: %s", c.err);
    cr_assert_eq(kill(c.pid, SIGINT), 0);
    int status = reap(&c, 60);
    cr_assert(WIFEXITED(status), "killed by signal %d; stderr: %s", WTERMSIG(status), c.err);
    cr_assert_eq(WEXITSTATUS(status), 130, "exit %d; stderr: %s", WEXITSTATUS(status), c.err);
    cr_assert(strstr(c.err, "resume with --resume"), "stderr: %s", c.err);
    cr_assert_eq(file_size(tu_path("stdout")), 0, "stdout is not empty");
    cr_assert(tu_exists(out), "no output after SIGINT");
    cr_assert_eq(tu_count_temp(tu_dir, "model.embt"), 0, "a temporary file was left");
    const char *vargs[] = {"validate", out, NULL};
    cr_assert_eq(run(vargs), 0, "the interrupted output does not validate");
    char buf[128];
    cr_assert_str_eq(meta_value(out, "training.state.completed", buf, sizeof buf), "false");
    unsigned long long trained = updates(out, threads);
    cr_assert_gt(trained, 0, "SIGINT came before any training");
    cr_assert_lt(trained, (unsigned long long)epochs * lines, "the run was not interrupted");

    /* 3. --resume continues (input and settings from the file), finishes, and `embt test` reads
     * the model */
    const char *bad[] = {"train",    "--task", "classify", "--resume", out,
                         "--output", done,     "--epoch",  "3",        NULL};
    cr_assert_eq(run(bad), 2, "--resume with a setting must be a usage error");
    const char *rargs[] = {"train",    "--task", "classify", "--resume", out,
                           "--output", done,     "-q",       NULL};
    cr_assert_eq(run(rargs), 0);
    const char *vdone[] = {"validate", done, NULL};
    cr_assert_eq(run(vdone), 0);
    cr_assert_str_eq(meta_value(done, "training.state.completed", buf, sizeof buf), "true");
    cr_assert_str_eq(meta_value(done, "training.epoch", buf, sizeof buf), ep);
    cr_assert_str_eq(meta_value(done, "training.threads", buf, sizeof buf), threads);
    cr_assert_eq(updates(done, threads), (unsigned long long)epochs * lines,
                 "not every line was trained once per epoch");
    const char *targs[] = {"test", done, corpus, NULL};
    cr_assert_eq(run(targs), 0);
    size_t n;
    char *text = (char *)tu_read_file(tu_path("stdout"), &n);
    cr_assert(n >= 7 && memcmp(text, "N\t2000\n", 7) == 0, "embt test printed: %.*s", (int)n, text);
    free(text);
    cr_log_info("%s thread(s), %.0f tokens/s/thread: %ld epochs; interrupted after %llu lines",
                threads, speed, epochs, trained);
}

Test(train_signal, classifier_sigint_writes_a_resumable_file_and_exits_130)
{
    classifier_sigint_then_resume("1");
}

Test(train_signal, classifier_with_two_threads_sigint_writes_a_resumable_file_and_exits_130)
{
    classifier_sigint_then_resume("2");
}

/* --stop-after then --resume with one thread: the same bytes as one uninterrupted run. */
Test(train_signal, classifier_stop_after_then_resume_equals_one_run)
{
    char in[PATH_MAX], whole[PATH_MAX], stopped[PATH_MAX], resumed[PATH_MAX];
    snprintf(in, sizeof in, "%s", tu_fixture("classify", "train.txt"));
    snprintf(whole, sizeof whole, "%s", tu_path("whole.embt"));
    snprintf(stopped, sizeof stopped, "%s", tu_path("stopped.embt"));
    snprintf(resumed, sizeof resumed, "%s", tu_path("resumed.embt"));
    const char *args[] = {
        "train", "--task",   "classify", "--input",   in,    "--output", whole, "--dim",
        "8",     "--epoch",  "10",       "--lr",      "0.5", "--seed",   "7",   "--word-ngrams",
        "2",     "--bucket", "64",       "--threads", "1",   "-q",       NULL};
    cr_assert_eq(run(args), 0);
    const char *sargs[] = {"train",
                           "--task",
                           "classify",
                           "--input",
                           in,
                           "--output",
                           stopped,
                           "--dim",
                           "8",
                           "--epoch",
                           "10",
                           "--lr",
                           "0.5",
                           "--seed",
                           "7",
                           "--word-ngrams",
                           "2",
                           "--bucket",
                           "64",
                           "--threads",
                           "1",
                           "-q",
                           "--stop-after",
                           "23",
                           NULL};
    cr_assert_eq(run(sargs), 0);
    char buf[64];
    cr_assert_str_eq(meta_value(stopped, "training.state.completed", buf, sizeof buf), "false");
    /* no --task: the file says it is a classifier's; no --input: the file names it */
    const char *rargs[] = {"train", "--resume", stopped, "--output", resumed, "-q", NULL};
    cr_assert_eq(run(rargs), 0);
    cr_assert(tu_same_file(whole, resumed), "stopped and resumed: not the uninterrupted file");
}
