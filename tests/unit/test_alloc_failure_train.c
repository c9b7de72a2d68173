/* test_alloc_failure_train.c: out-of-memory paths of training. An allocator installed with
 * embt_set_allocator() fails the n-th allocation; embt_sg_train() (from scratch with Adam, from a
 * pretrained file, resumed) and embt_classify_train() (word n-grams, one and two threads,
 * pretrained rows, resumed) must fail with EMBT_ENOMEM, free everything and leave no output and no
 * temporary file, and the inputs stay byte for byte as they were. The classifier is tried at every
 * n. Skip-gram is tried at every n up to the start of training; after that each failure costs the
 * trainer's 0.1 s monitoring tick and its 40 MB negative table, so the allocations of the output
 * (about 200 to 280) are sampled. Counters are atomic (worker threads). */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_hook.h"
#include "test_util.h"

TestSuite(alloc_failure_train, .init = ah_install, .fini = ah_uninstall, .timeout = 120);

/* 60 lines of 8 words over a 20-word vocabulary. */
static void write_corpus(const char *path)
{
    tu_write_corpus(path, 60, 8, 20, 11);
}

typedef embt_status (*train_fn)(const void *opts);

static embt_status run_sg(const void *opts)
{
    embt_sg_report rep;
    return embt_sg_train(opts, &rep);
}

static embt_status run_classify(const void *opts)
{
    const embt_classify_options *o = opts;
    char in[PATH_MAX], out[PATH_MAX];
    snprintf(in, sizeof in, "%s", tu_fixture("classify", "train.txt"));
    snprintf(out, sizeof out, "%s", tu_path("out.embt"));
    embt_classify_report rep;
    return embt_classify_train(in, out, o, &rep);
}

/* Skip-gram: allocations before its threads start fail at once; a failure after that waits for
 * the trainer's 0.1 s monitoring tick (and the 40 MB negative table is built first), so those (the
 * output's, mostly) are sampled. The first progress call comes from the monitoring loop once the
 * threads run: the allocations made before it are all tried. */
static atomic_size_t calls_at_start;

static void note_start(const embt_train_progress *p, void *user)
{
    (void)p;
    (void)user;
    size_t zero = 0;
    atomic_compare_exchange_strong(&calls_at_start, &zero, atomic_load(&ah_n_calls));
}

typedef struct sweep {
    size_t total;  /* allocations of a successful run */
    size_t dense;  /* every n in 1..dense was tried */
    size_t sparse; /* then this many n in (dense, total] */
} sweep;

/* Runs `fn` with the n-th allocation failing; `out` must not appear and `keep` (an input in the
 * test directory, or NULL) must not change. Every n up to the first progress call (every n when
 * there is none, or when `samples` is 0), then `samples` evenly spaced n ending with the last
 * allocation, then none. */
static sweep train_at_allocations(train_fn fn, const void *opts, const char *out, const char *keep,
                                  size_t samples)
{
    size_t keep_len = 0;
    uint8_t *keep_bytes = keep ? tu_read_file(keep, &keep_len) : NULL;
    atomic_store(&calls_at_start, 0);
    ah_arm(0);
    TU_OK(fn(opts));
    sweep sw = {atomic_load(&ah_n_calls), atomic_load(&calls_at_start), 0};
    cr_assert_gt(sw.total, 0, "training made no allocation through the hook");
    cr_assert_eq(unlink(out), 0);
    if (samples == 0 || sw.dense == 0 || sw.dense > sw.total)
        sw.dense = sw.total;
    size_t step = sw.total > sw.dense ? (sw.total - sw.dense + samples - 1) / samples : 1;
    size_t entries = tu_count_entries();
    for (size_t n = 1;;) {
        ah_arm(n <= sw.total ? n : 0);
        embt_status st = fn(opts);
        long leaked = atomic_load(&ah_live);
        cr_assert_eq(leaked, 0, "n=%zu: %ld allocations leaked (status %s: %s)", n, leaked,
                     embt_status_name(st), embt_error_last()->message);
        if (n > sw.total) {
            TU_OK(st);
            break;
        }
        cr_assert_eq(atomic_load(&ah_n_failed), 1, "n=%zu of %zu: the allocations changed", n,
                     sw.total);
        cr_assert_eq(st, EMBT_ENOMEM, "n=%zu: got %s (%s)", n, embt_status_name(st),
                     embt_error_last()->message);
        cr_assert_not(tu_exists(out), "n=%zu: a failed run created the output", n);
        cr_assert_eq(tu_count_entries(), entries, "n=%zu: a failed run left a file", n);
        if (keep) {
            size_t len;
            uint8_t *now = tu_read_file(keep, &len);
            cr_assert(len == keep_len && memcmp(now, keep_bytes, len) == 0,
                      "n=%zu: an input changed", n);
            free(now);
        }
        if (n > sw.dense)
            sw.sparse++;
        if (n < sw.dense || n == sw.total)
            n++;
        else
            n = n + step < sw.total ? n + step : sw.total; /* the last allocation is tried */
    }
    free(keep_bytes);
    ah_verify_file(out);
    return sw;
}

static size_t train_at_every_allocation(train_fn fn, const void *opts, const char *out,
                                        const char *keep)
{
    return train_at_allocations(fn, opts, out, keep, 0).total;
}

static void log_sweep(const char *what, sweep sw)
{
    cr_log_info("%s: %zu allocations; n = 1..%zu each, then %zu of the %zu after training began",
                what, sw.total, sw.dense, sw.sparse, sw.total - sw.dense);
}

/* Writes the corpus to corpus.txt and sets `o` to train on it into `out_name`; `in` and `out`
 * (PATH_MAX bytes each) receive the two paths, as tu_path() rotates its buffers. */
static void sg_setup(embt_sg_options *o, char *in, char *out, const char *out_name)
{
    snprintf(in, PATH_MAX, "%s", tu_path("corpus.txt"));
    snprintf(out, PATH_MAX, "%s", tu_path(out_name));
    write_corpus(in);
    embt_sg_defaults(o);
    o->input = in;
    o->output = out;
    o->dim = 4;
    o->epoch = 1;
    o->min_count = 1;
    o->window = 2;
    o->neg = 2;
}

Test(alloc_failure_train, skipgram_with_adam_fails_cleanly_at_every_allocation)
{
    char in[PATH_MAX], out[PATH_MAX];
    embt_sg_options o;
    sg_setup(&o, in, out, "out.embt");
    embt_optim_defaults(&o.optimizer, EMBT_OPTIM_ADAM);
    o.progress = note_start;
    log_sweep("skip-gram, Adam, from scratch", train_at_allocations(run_sg, &o, out, in, 6));
}

Test(alloc_failure_train, skipgram_from_pretrained_fails_cleanly_at_every_allocation)
{
    char in[PATH_MAX], out[PATH_MAX], pre[PATH_MAX];
    embt_sg_options o;
    sg_setup(&o, in, out, "out.embt");
    snprintf(pre, sizeof pre, "%s", tu_path("pre.embt"));
    /* the pretrained file: 10 of the corpus words and others, compressed */
    ah_arm(0);
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, pre, NULL));
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    vs.flags = EMBT_VOCAB_COMPRESS;
    TU_OK(embt_writer_vocab_begin(w, &vs));
    for (unsigned i = 0; i < 16; i++) {
        char tok[16];
        int len = snprintf(tok, sizeof tok, i < 10 ? "w%u" : "x%u", i);
        TU_OK(embt_writer_vocab_add(w, tok, (size_t)len, 0, NULL));
    }
    TU_OK(embt_writer_vocab_end(w));
    float rows[16 * 4];
    for (int i = 0; i < 16 * 4; i++)
        rows[i] = tu_value((uint64_t)i / 4, (uint64_t)i % 4);
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = "embedding";
    ts.rows = 16;
    ts.cols = 4;
    ts.vocab = "words";
    ts.flags = EMBT_TABLE_COMPRESS;
    TU_OK(embt_writer_add_table_f32(w, &ts, rows));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);

    o.pretrained = pre;
    o.freeze = 1;
    o.progress = note_start;
    log_sweep("skip-gram from a pretrained file", train_at_allocations(run_sg, &o, out, pre, 2));
}

Test(alloc_failure_train, resumed_skipgram_fails_cleanly_at_every_allocation)
{
    char in[PATH_MAX], out[PATH_MAX], stopped[PATH_MAX];
    embt_sg_options o;
    sg_setup(&o, in, stopped, "stopped.embt");
    snprintf(out, sizeof out, "%s", tu_path("out.embt"));
    o.epoch = 2;
    embt_optim_defaults(&o.optimizer, EMBT_OPTIM_ADAGRAD);
    o.stop_after_words = 200;
    embt_sg_report rep;
    ah_arm(0);
    TU_OK(embt_sg_train(&o, &rep));
    cr_assert_eq(rep.completed, 0);
    embt_sg_options r;
    embt_sg_defaults(&r);
    r.input = in;
    r.output = out;
    r.resume = stopped;
    r.progress = note_start;
    log_sweep("resumed skip-gram (Adagrad)", train_at_allocations(run_sg, &r, out, stopped, 2));
}

Test(alloc_failure_train, classifier_fails_cleanly_at_every_allocation)
{
    char out[PATH_MAX];
    snprintf(out, sizeof out, "%s", tu_path("out.embt"));
    embt_classify_options o = EMBT_CLASSIFY_OPTIONS_INIT;
    o.dim = 4;
    o.epoch = 2;
    o.word_ngrams = 2;
    o.bucket = 64;
    o.bias = 1;
    size_t n = train_at_every_allocation(run_classify, &o, out, NULL);
    cr_log_info("classifier, bigrams, 1 thread: %zu allocations", n);
    cr_assert_eq(unlink(out), 0);
    o.threads = 2;
    n = train_at_every_allocation(run_classify, &o, out, NULL);
    cr_log_info("classifier, bigrams, 2 threads: %zu allocations", n);
}

Test(alloc_failure_train, classifier_from_pretrained_fails_cleanly_at_every_allocation)
{
    char out[PATH_MAX], pre[PATH_MAX];
    snprintf(out, sizeof out, "%s", tu_path("out.embt"));
    snprintf(pre, sizeof pre, "%s", tu_path("pre.embt"));
    ah_arm(0);
    tu_sample s = {12, 4, EMBT_DTYPE_F16, 0, 0, NULL};
    TU_OK(tu_write_sample(pre, &s));
    embt_file *pf = NULL; /* opened once: its allocations are not the trainer's */
    TU_OK(embt_file_open(&pf, pre, NULL));
    embt_classify_options o = EMBT_CLASSIFY_OPTIONS_INIT;
    TU_OK(embt_file_table(&o.pretrained, pf, "embedding"));
    o.freeze = 1;
    o.epoch = 1;
    o.pretrained_name = "pre.embt";
    size_t n = train_at_every_allocation(run_classify, &o, out, pre);
    cr_log_info("classifier from pretrained rows (frozen): %zu allocations", n);
    embt_file_close(pf);
}

Test(alloc_failure_train, resumed_classifier_fails_cleanly_at_every_allocation)
{
    char in[PATH_MAX], out[PATH_MAX], pre[PATH_MAX], stopped[PATH_MAX];
    snprintf(in, sizeof in, "%s", tu_fixture("classify", "train.txt"));
    snprintf(out, sizeof out, "%s", tu_path("out.embt"));
    snprintf(pre, sizeof pre, "%s", tu_path("pre.embt"));
    snprintf(stopped, sizeof stopped, "%s", tu_path("stopped.embt"));
    ah_arm(0);
    tu_sample s = {12, 4, EMBT_DTYPE_F16, 0, 0, NULL};
    TU_OK(tu_write_sample(pre, &s));
    embt_file *pf = NULL;
    TU_OK(embt_file_open(&pf, pre, NULL));
    /* a stopped run with every part of the resume state: n-gram rows, the frozen-row mask */
    embt_classify_options o = EMBT_CLASSIFY_OPTIONS_INIT;
    TU_OK(embt_file_table(&o.pretrained, pf, "embedding"));
    o.freeze = 1;
    o.epoch = 2;
    o.word_ngrams = 2;
    o.bucket = 64;
    o.stop_after_lines = 9;
    embt_classify_report rep;
    TU_OK(embt_classify_train(in, stopped, &o, &rep));
    embt_file_close(pf);
    cr_assert_eq(rep.completed, 0);
    embt_classify_options r = EMBT_CLASSIFY_OPTIONS_INIT;
    r.resume = stopped;
    size_t n = train_at_every_allocation(run_classify, &r, out, stopped);
    cr_log_info("resumed classifier (frozen rows, bigrams): %zu allocations", n);
}
