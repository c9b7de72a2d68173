/* classify.c: the text classifier of embt/classify.h: the SGD step entry point (the kernels are
 * in classify_kernels.c), hogwild training over the encoded lines of classify_data.c, stopping and
 * resuming (the state keys are classify_state.c's), the model file, and prediction and fastText's
 * test metrics. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "classify_data.h"
#include "classify_kernels.h"
#include "classify_state.h"
#include "corpus.h"
#include "embt/classify.h"
#include "sysio.h"

embt_status embt_classify_sgd_step(float *loss_out, embt_matrix *embedding, embt_matrix *weight,
                                   embt_matrix *bias, const int64_t *ids, size_t n_ids,
                                   uint32_t target, float lr, const uint8_t *frozen, unsigned flags)
{
    EMBT_CHECK_ARG(embedding && weight && (ids || n_ids == 0));
    if (n_ids == 0 || embedding->cols == 0 || weight->cols != embedding->cols ||
        weight->rows == 0 || target >= weight->rows || embedding->rows > UINT32_MAX ||
        (bias && bias->rows * bias->cols != weight->rows))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "sgd step: bad shapes, target or empty bag");
    size_t dim = (size_t)embedding->cols, nl = (size_t)weight->rows;
    uint32_t *ids32 = embt__malloc(n_ids * sizeof *ids32);
    float *scratch = embt__malloc((2 * dim + nl) * sizeof *scratch);
    embt_status st = EMBT_OK;
    if (!ids32 || !scratch) {
        st = embt__error_nomem();
        goto done;
    }
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || (uint64_t)ids[i] >= embedding->rows) {
            st = embt__error(EMBT_EINVAL, i, NULL, 0, "id %lld out of range", (long long)ids[i]);
            goto done;
        }
        ids32[i] = (uint32_t)ids[i];
    }
    float loss = cls__kernels_select(flags & EMBT_OPS_GENERIC)
                     ->step(embedding->data, weight->data, bias ? bias->data : NULL, dim, nl, ids32,
                            n_ids, target, lr, frozen, (size_t)embedding->rows, scratch,
                            scratch + dim, scratch + 2 * dim);
    if (loss_out)
        *loss_out = loss;
done:
    embt__free(ids32);
    embt__free(scratch);
    return st;
}

/* ---- encoded training lines ------------------------------------------------------------------- */

typedef struct cls_data {
    cls_vec feat;   /* all lines' feature ids */
    cls_vec labels; /* all lines' label ids */
    uint64_t *foff; /* (n_lines + 1): line i's features are feat[foff[i] .. foff[i + 1]) */
    uint64_t *loff; /* (n_lines + 1) likewise for labels */
    uint32_t *ntok; /* (n_lines) fastText's token count of the line */
    size_t n_lines, cap;
    uint64_t ntokens;
    uint32_t crc; /* CRC-32 of every input line followed by LF: the input a resume must match */
} cls_data;

static void data_free(cls_data *d)
{
    cls__vec_free(&d->feat);
    cls__vec_free(&d->labels);
    embt__free(d->foff);
    embt__free(d->loff);
    embt__free(d->ntok);
    memset(d, 0, sizeof *d);
}

static embt_status data_add_line(cls_data *d, const cls_vec *feat, const cls_vec *labels,
                                 uint64_t ntok)
{
    embt_status st;
    if (d->n_lines + 1 >= d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 1024;
        uint64_t *fo = embt__realloc(d->foff, (cap + 1) * sizeof *fo);
        if (fo)
            d->foff = fo;
        uint64_t *lo = embt__realloc(d->loff, (cap + 1) * sizeof *lo);
        if (lo)
            d->loff = lo;
        uint32_t *nt = embt__realloc(d->ntok, cap * sizeof *nt);
        if (nt)
            d->ntok = nt;
        if (!fo || !lo || !nt)
            return embt__error_nomem();
        if (d->cap == 0)
            d->foff[0] = d->loff[0] = 0;
        d->cap = cap;
    }
    for (size_t i = 0; i < feat->n; i++)
        if ((st = cls__vec_push(&d->feat, feat->v[i])))
            return st;
    for (size_t i = 0; i < labels->n; i++)
        if ((st = cls__vec_push(&d->labels, labels->v[i])))
            return st;
    d->ntok[d->n_lines] = ntok > UINT32_MAX ? UINT32_MAX : (uint32_t)ntok;
    d->n_lines++;
    d->foff[d->n_lines] = d->feat.n;
    d->loff[d->n_lines] = d->labels.n;
    d->ntokens += ntok;
    return EMBT_OK;
}

static uint32_t dict_lookup(const void *ctx, const char *s, size_t n)
{
    return embt__vocab_find(ctx, s, n);
}

/* Pass 1: counts words (and `</s>` once per non-blank line) and labels; a line with words and no
 * label is an error. */
static embt_status count_pass(cls_reader *r, embt__vocab *words, embt__vocab *labels,
                              const char *prefix)
{
    size_t plen = strlen(prefix);
    for (;;) {
        const char *line;
        size_t len, pos = 0, b, tl;
        bool got;
        embt_status st = cls__reader_next(r, &line, &len, &got);
        if (st || !got)
            return st;
        size_t n_labels = 0, n_words = 0;
        while (cls__next_token(line, len, &pos, &b, &tl)) {
            bool is_label = tl >= plen && memcmp(line + b, prefix, plen) == 0;
            st = embt__vocab_add(is_label ? labels : words, line + b, tl, 1, NULL);
            if (st)
                return st;
            n_labels += is_label;
            n_words += !is_label;
        }
        if (n_labels == 0 && n_words > 0)
            return embt__error_parse((uint32_t)r->line_no, 1, EMBT_NO_OFFSET,
                                     "line has no label (no token starts with '%s')", prefix);
        if (n_labels + n_words > 0 &&
            (st = embt__vocab_add(words, CLS_EOS, strlen(CLS_EOS), 1, NULL)))
            return st;
    }
}

/* Pass 2: the features of every labelled line. */
static embt_status encode_pass(cls_reader *r, cls_featurizer *fz, cls_data *data)
{
    cls_vec feat = {0}, labels = {0};
    embt_status st = EMBT_OK;
    for (;;) {
        const char *line;
        size_t len;
        bool got;
        uint64_t ntok;
        if ((st = cls__reader_next(r, &line, &len, &got)) || !got)
            break;
        data->crc = embt__crc32(embt__crc32(data->crc, line, len), "\n", 1);
        if ((st = cls__features(fz, line, len, &feat, &labels, &ntok, NULL)))
            break;
        if (labels.n == 0 || feat.n == 0)
            continue; /* blank, or nothing known (min_count above every word and `</s>`) */
        if ((st = data_add_line(data, &feat, &labels, ntok)))
            break;
    }
    cls__vec_free(&feat);
    cls__vec_free(&labels);
    return st;
}

/* ---- hogwild training ------------------------------------------------------------------------- */

typedef struct train_shared {
    float *E, *W, *b;
    size_t dim, nlabels;
    const uint8_t *frozen;
    size_t n_frozen;
    const cls_data *data;
    cls_step_fn step;
    double lr0;
    int train_bias;
    uint32_t epoch, threads, lr_update_rate;
    uint64_t total;       /* epoch * ntokens */
    pthread_mutex_t sync; /* guards E-independent merges into W and b (threads > 1) */
    uint64_t processed;   /* shared, __atomic: tokens of the lr schedule, earlier runs included */
    uint64_t processed_at_start;
    int stop;                         /* shared, __atomic */
    uint64_t lines_run;               /* shared, __atomic: lines trained in this run */
    uint64_t stop_after;              /* 0, or stop once lines_run reaches it */
    volatile sig_atomic_t *stop_flag; /* the caller's; read by the calling thread only */
    unsigned running;                 /* shared, __atomic: threads still training */
    struct timespec t0;
    embt_classify_progress_fn progress;
    void *progress_user;
} train_shared;

typedef struct train_thread {
    train_shared *sh;
    uint32_t id;
    pthread_t th;
    cls_thread_state *s; /* where it stands: read at the start, saved in the output */
    embt_status st;
} train_thread;

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

/* Thread t's contiguous share [*lo, *hi) of the n lines. */
static void thread_share(size_t *lo, size_t *hi, size_t n, uint32_t t, uint32_t threads)
{
    *lo = n * t / threads;
    *hi = n * (t + 1) / threads;
}

#define SYNC_LINES 32

/* shared += local - snap; local = snap = shared. The copies hold W then b: (nlabels * dim + nlabels). */
static void merge_part(float *restrict shared, float *restrict local, float *restrict snap,
                       size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v = shared[i] + (local[i] - snap[i]);
        shared[i] = v;
        local[i] = v;
        snap[i] = v;
    }
}

static void merge_linear(train_shared *sh, float *local, float *snap)
{
    size_t nwd = sh->nlabels * sh->dim;
    pthread_mutex_lock(&sh->sync);
    merge_part(sh->W, local, snap, nwd);
    merge_part(sh->b, local + nwd, snap + nwd, sh->nlabels);
    pthread_mutex_unlock(&sh->sync);
}

/* Asks for the rows of the next line while the current one runs through the output layer (tens of
 * microseconds): the n-gram rows are scattered over the whole matrix and mostly out of cache. */
static void prefetch_rows(const float *E, size_t dim, const uint32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *row = (const char *)(E + (size_t)ids[i] * dim);
        for (size_t off = 0; off < dim * sizeof(float); off += 64)
            __builtin_prefetch(row + off, 1, 3);
    }
}

/* Trains from where tt->s stands to the last epoch, or until asked to stop; a stop is only seen
 * between lines, so tt->s then names the next line and the resumed run repeats nothing. */
static void *train_main(void *arg)
{
    train_thread *tt = arg;
    train_shared *sh = tt->sh;
    cls_thread_state *s = tt->s;
    const cls_data *data = sh->data;
    size_t nw = sh->nlabels * sh->dim + sh->nlabels; /* W then b */
    bool local_copy = sh->threads > 1;
    /* one thread runs on the caller's: it may read the caller's flag itself */
    bool poll = sh->stop_flag && sh->threads == 1;
    float *scratch =
        embt__malloc((2 * sh->dim + sh->nlabels + (local_copy ? 2 * nw : 0)) * sizeof *scratch);
    if (!scratch) {
        tt->st = EMBT_ENOMEM;
        __atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
        __atomic_fetch_sub(&sh->running, 1, __ATOMIC_RELEASE);
        return NULL;
    }
    /* threads > 1: the dense linear layer is trained on a private copy (Wl, bl) whose change since
     * the last merge (Wl - Ws) is added to the shared one every SYNC_LINES lines; sharing it
     * directly would move all of W between the cores' caches at every step. */
    float *Wl = sh->W, *bl = sh->b, *Ws = NULL;
    if (local_copy) {
        Wl = scratch + 2 * sh->dim + sh->nlabels;
        Ws = Wl + nw;
        bl = Wl + sh->nlabels * sh->dim;
        pthread_mutex_lock(&sh->sync);
        memcpy(Wl, sh->W, sh->nlabels * sh->dim * sizeof *Wl);
        memcpy(bl, sh->b, sh->nlabels * sizeof *bl);
        pthread_mutex_unlock(&sh->sync);
        memcpy(Ws, Wl, nw * sizeof *Ws);
    }
    uint32_t since_sync = 0;
    size_t lo, hi;
    thread_share(&lo, &hi, data->n_lines, tt->id, sh->threads);
    uint64_t since_report = 0;
    while (s->epoch < sh->epoch) {
        for (; s->line < hi; s->line++) {
            size_t i = (size_t)s->line;
            if (__atomic_load_n(&sh->stop, __ATOMIC_RELAXED) || (poll && *sh->stop_flag))
                goto out;
            uint64_t processed = __atomic_load_n(&sh->processed, __ATOMIC_RELAXED);
            double progress = (double)processed / (double)sh->total;
            float lr = (float)(sh->lr0 * (1.0 - progress));
            const uint32_t *labels = data->labels.v + data->loff[i];
            size_t nl = (size_t)(data->loff[i + 1] - data->loff[i]);
            uint32_t target = labels[0];
            if (nl > 1)
                target = labels[(size_t)(embt_rng_double(&s->rng) * (double)nl)];
            const uint32_t *feat = data->feat.v + data->foff[i];
            size_t nf = (size_t)(data->foff[i + 1] - data->foff[i]);
            size_t next = i + 1 < hi ? i + 1 : lo;
            prefetch_rows(sh->E, sh->dim, data->feat.v + data->foff[next],
                          (size_t)(data->foff[next + 1] - data->foff[next]));
            if (local_copy && ++since_sync == SYNC_LINES) {
                merge_linear(sh, Wl, Ws);
                since_sync = 0;
            }
            s->loss_sum += sh->step(sh->E, Wl, sh->train_bias ? bl : NULL, sh->dim, sh->nlabels,
                                    feat, nf, target, lr, sh->frozen, sh->n_frozen, scratch,
                                    scratch + sh->dim, scratch + 2 * sh->dim);
            s->updates++;
            s->tokens += data->ntok[i];
            if (s->tokens > sh->lr_update_rate) {
                __atomic_fetch_add(&sh->processed, s->tokens, __ATOMIC_RELAXED);
                since_report += s->tokens;
                s->tokens = 0;
                if (tt->id == 0 && sh->progress && since_report >= 10000) {
                    since_report = 0;
                    double secs = seconds_since(&sh->t0);
                    embt_classify_progress p = {
                        progress, lr, s->loss_sum / (double)s->updates,
                        secs > 0 ? (double)(processed - sh->processed_at_start) / secs / sh->threads
                                 : 0.0,
                        secs};
                    if (sh->progress(sh->progress_user, &p)) {
                        tt->st = EMBT_ECANCELED;
                        __atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
                    }
                }
            }
            if (sh->stop_after &&
                __atomic_add_fetch(&sh->lines_run, 1, __ATOMIC_RELAXED) >= sh->stop_after)
                __atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
        }
        s->epoch++;
        s->line = lo;
    }
    /* finished: the count then reaches epoch * ntokens, whatever the thread's last tokens were */
    __atomic_fetch_add(&sh->processed, s->tokens, __ATOMIC_RELAXED);
    s->tokens = 0;
out:
    if (local_copy)
        merge_linear(sh, Wl, Ws);
    embt__free(scratch);
    __atomic_fetch_sub(&sh->running, 1, __ATOMIC_RELEASE);
    return NULL;
}

static embt_status run_threads(train_shared *sh, train_thread *tt)
{
    embt_status st = EMBT_OK;
    uint32_t started = 0;
    pthread_mutex_init(&sh->sync, NULL);
    clock_gettime(CLOCK_MONOTONIC, &sh->t0);
    __atomic_store_n(&sh->running, sh->threads, __ATOMIC_RELAXED);
    if (sh->threads == 1) {
        tt[0].sh = sh;
        train_main(&tt[0]);
        started = 1;
    } else {
        for (; started < sh->threads; started++) {
            tt[started].sh = sh;
            int e = pthread_create(&tt[started].th, NULL, train_main, &tt[started]);
            if (e) {
                __atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
                __atomic_fetch_sub(&sh->running, sh->threads - started, __ATOMIC_RELEASE);
                st = embt__error_sys(e, "cannot start a training thread");
                break;
            }
        }
        /* the stop flag is set by a signal handler: only this thread reads it, and passes it on */
        while (sh->stop_flag && __atomic_load_n(&sh->running, __ATOMIC_ACQUIRE) > 0) {
            if (*sh->stop_flag)
                __atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        for (uint32_t t = 0; t < started; t++)
            pthread_join(tt[t].th, NULL);
    }
    for (uint32_t t = 0; t < started; t++) {
        if (!st && tt[t].st == EMBT_ENOMEM)
            st = embt__error_nomem();
        else if (!st && tt[t].st)
            st = embt__error(tt[t].st, EMBT_NO_OFFSET, NULL, 0, "training stopped by the caller");
    }
    pthread_mutex_destroy(&sh->sync);
    return st;
}

/* ---- the model file --------------------------------------------------------------------------- */

static embt_status meta_setf(embt_meta *m, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static embt_status meta_setf(embt_meta *m, const char *key, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return embt_meta_set(m, key, buf);
}

static embt_status write_vocab(embt_writer *w, const char *name, const embt__vocab *d, uint32_t eos)
{
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    vs.name = name;
    vs.flags = EMBT_VOCAB_COUNTS;
    embt_status st = embt_writer_vocab_begin(w, &vs);
    for (uint32_t i = 0; !st && i < d->n; i++)
        st = embt_writer_vocab_add(w, embt__vocab_token(d, i), d->len[i], d->count[i], NULL);
    if (!st && eos != EMBT_NONE_ID)
        st = embt_writer_vocab_specials(w, EMBT_NONE_ID, EMBT_NONE_ID, EMBT_NONE_ID, eos);
    return st ? st : embt_writer_vocab_end(w);
}

static embt_status write_table(embt_writer *w, const char *name, const char *vocab, unsigned rank,
                               uint64_t rows, uint64_t cols, const float *data)
{
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = name;
    ts.rank = rank;
    ts.rows = rows;
    ts.cols = cols;
    ts.vocab = vocab;
    return embt_writer_add_table_f32(w, &ts, data);
}

/* The frozen-row mask (nwords) of a stopped run: u8, rank 1, tied to `words`. */
static embt_status write_mask(embt_writer *w, const uint8_t *mask, uint32_t nwords)
{
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = "embedding.frozen";
    ts.dtype = EMBT_DTYPE_U8;
    ts.rank = 1;
    ts.rows = nwords;
    ts.cols = 1;
    ts.vocab = "words";
    embt_status st = embt_writer_table_begin(w, &ts);
    if (!st)
        st = embt_writer_table_append_raw(w, mask, nwords, NULL);
    return st ? st : embt_writer_table_end(w);
}

typedef struct model_out {
    const embt__vocab *words, *labels;
    const float *E, *W, *b;
    const uint8_t *frozen; /* (nwords) or NULL: written only to resume a stopped run */
    uint64_t bucket;
    uint32_t dim;
    const char *yaml;
    size_t yaml_len;
} model_out;

static embt_status write_model(const char *path, const model_out *m)
{
    embt_writer *w = NULL;
    embt_status st = embt_writer_open(&w, path, NULL);
    uint32_t eos = embt__vocab_find(m->words, CLS_EOS, strlen(CLS_EOS));
    uint32_t nwords = m->words->n, nlabels = m->labels->n;
    if (!st)
        st = write_vocab(w, "words", m->words, eos);
    if (!st)
        st = write_vocab(w, "labels", m->labels, EMBT_NONE_ID);
    if (!st)
        st = write_table(w, "embedding", "words", 2, nwords, m->dim, m->E);
    if (!st && m->bucket > 0)
        st = write_table(w, "embedding.ngrams", NULL, 2, m->bucket, m->dim,
                         m->E + (size_t)nwords * m->dim);
    if (!st)
        st = write_table(w, "linear.weight", "labels", 2, nlabels, m->dim, m->W);
    if (!st)
        st = write_table(w, "linear.bias", "labels", 1, nlabels, 1, m->b);
    if (!st && m->frozen)
        st = write_mask(w, m->frozen, nwords);
    if (!st)
        st = embt_writer_set_metadata(w, m->yaml, m->yaml_len);
    if (!st)
        st = embt_writer_commit(w);
    embt_writer_free(w);
    return st;
}

/* What the metadata records besides the options: what they do not say (or no longer say, on a
 * resumed run) and where the run stands. */
typedef struct run_record {
    const char *input;
    const char *pretrained; /* "none", the pretrained file's name, or "yes" */
    const char *init;       /* "fasttext_uniform_1_over_dim" or "initializer" */
    int freeze;
    uint64_t pretrained_rows;
    uint64_t lines, ntokens, crc; /* of the encoded input */
    double loss;                  /* mean over every update */
    int completed;
    uint64_t processed;
    const cls_thread_state *th; /* (threads) */
} run_record;

static const char INIT_FASTTEXT[] = "fasttext_uniform_1_over_dim";

static embt_status build_meta(embt_meta **out, const embt_classify_options *o, const run_record *r)
{
    embt_meta *m = NULL;
    embt_status st = embt_meta_new(&m);
    if (!st)
        st = embt_meta_set(m, "training.task", "classify");
    if (!st)
        st = embt_meta_set(m, "training.model", "embedding_bag_mean_linear");
    if (!st)
        st = embt_meta_set(m, "training.loss", "softmax");
    if (!st)
        st = embt_meta_set(m, "training.optimizer", "sgd");
    if (!st)
        st = meta_setf(m, "training.dim", "%u", o->dim);
    if (!st)
        st = meta_setf(m, "training.lr", "%.17g", o->lr);
    if (!st)
        st = meta_setf(m, "training.lr_update_rate", "%u", o->lr_update_rate);
    if (!st)
        st = meta_setf(m, "training.epoch", "%u", o->epoch);
    if (!st)
        st = meta_setf(m, "training.min_count", "%u", o->min_count);
    if (!st)
        st = meta_setf(m, "training.word_ngrams", "%u", o->word_ngrams);
    if (!st)
        st = meta_setf(m, "training.bucket", "%llu", (unsigned long long)o->bucket);
    if (!st)
        st = meta_setf(m, "training.threads", "%u", o->threads);
    if (!st)
        st = meta_setf(m, "training.seed", "%llu", (unsigned long long)o->seed);
    if (!st)
        st = embt_meta_set(m, "training.label_prefix", o->label_prefix);
    if (!st)
        st = embt_meta_set(m, "training.eos", CLS_EOS);
    if (!st)
        st = embt_meta_set(m, "training.ngram_hash", "fasttext");
    if (!st)
        st = embt_meta_set(m, "training.init", r->init);
    if (!st)
        st = embt_meta_set(m, "training.pretrained", r->pretrained);
    if (!st)
        st = embt_meta_set(m, "training.freeze", r->freeze ? "true" : "false");
    if (!st)
        st = embt_meta_set(m, "training.bias", o->bias ? "true" : "false");
    if (!st)
        st = meta_setf(m, "training.lines", "%llu", (unsigned long long)r->lines);
    if (!st)
        st = meta_setf(m, "training.ntokens", "%llu", (unsigned long long)r->ntokens);
    if (!st)
        st = meta_setf(m, "training.mean_loss", "%.9g", r->loss);
    if (!st)
        st = embt_meta_set(m, "training.input", r->input);
    if (!st)
        st = meta_setf(m, "training.input_crc32", "%llu", (unsigned long long)r->crc);
    if (!st)
        st = meta_setf(m, "training.pretrained_rows", "%llu",
                       (unsigned long long)r->pretrained_rows);
    if (!st)
        st = cls__state_save(m, r->completed, r->processed, r->th, o->threads);
    if (st) {
        embt_meta_free(m);
        m = NULL;
    }
    *out = m;
    return st;
}

/* The embedding matrix (rows, dim), left uninitialised for embt_init_matrix(), which writes every
 * element: with the bucket rows it is about a gigabyte, and embt_matrix_alloc() would zero it first
 * (one more pass over all of it). Transparent huge pages were tried (madvise) and dropped: on the
 * 2-core test VM they cost 2.5 to 3.5 s of kernel time (2 MB page clearing) for 0.3 s of training
 * time saved. */
static embt_status alloc_embedding(embt_matrix *E, uint64_t rows, size_t dim)
{
    size_t bytes;
    memset(E, 0, sizeof *E);
    if (rows > SIZE_MAX || __builtin_mul_overflow((size_t)rows, dim * sizeof(float), &bytes))
        return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0, "the embedding is too large");
    if (!(E->data = embt__malloc(bytes)))
        return embt__error_nomem();
    E->rows = rows;
    E->cols = dim;
    return EMBT_OK;
}

/* ---- resuming a stopped run ------------------------------------------------------------------- */

/* The settings build_meta() recorded, into o (resume, progress, flags and stop_* kept) and r.
 * Strings point into m. */
static embt_status load_settings(embt_classify_options *o, run_record *r, const embt_meta *m)
{
    const char *v;
    size_t len;
    embt_status st = embt_meta_get(&v, &len, m, "training.task");
    if (st || strcmp(v, "classify") != 0)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "not a classifier's training file (training.task)");
    enum { DIM, EPOCH, MIN_COUNT, NGRAMS, BUCKET, THREADS, SEED, RATE, LINES, NTOKENS, CRC, ROWS };
    static const char *const keys[] = {
        "training.dim",    "training.epoch",   "training.min_count",   "training.word_ngrams",
        "training.bucket", "training.threads", "training.seed",        "training.lr_update_rate",
        "training.lines",  "training.ntokens", "training.input_crc32", "training.pretrained_rows"};
    uint64_t u[sizeof keys / sizeof keys[0]];
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if ((st = embt__meta_get_u64(&u[k], m, keys[k], true)))
            return st;
    if ((st = embt__meta_get_f64(&o->lr, m, "training.lr")))
        return st;
    if (u[DIM] > 65536 || u[EPOCH] > UINT32_MAX || u[MIN_COUNT] > UINT32_MAX ||
        u[NGRAMS] > UINT32_MAX || u[THREADS] > 1024 || u[RATE] > UINT32_MAX ||
        u[BUCKET] >= UINT32_MAX)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "bad training settings in the resume file");
    o->dim = (uint32_t)u[DIM];
    o->epoch = (uint32_t)u[EPOCH];
    o->min_count = (uint32_t)u[MIN_COUNT];
    o->word_ngrams = (uint32_t)u[NGRAMS];
    o->bucket = u[BUCKET];
    o->threads = (uint32_t)u[THREADS];
    o->seed = u[SEED];
    o->lr_update_rate = (uint32_t)u[RATE];
    r->lines = u[LINES];
    r->ntokens = u[NTOKENS];
    r->crc = u[CRC];
    r->pretrained_rows = u[ROWS];
    const char *flags[2];
    const char *const fkeys[2] = {"training.freeze", "training.bias"};
    for (int k = 0; k < 2; k++)
        if ((st = embt_meta_get(&flags[k], &len, m, fkeys[k])))
            return st;
    r->freeze = strcmp(flags[0], "true") == 0;
    o->bias = strcmp(flags[1], "true") == 0;
    if ((st = embt_meta_get(&o->label_prefix, &len, m, "training.label_prefix")) ||
        (st = embt_meta_get(&r->init, &len, m, "training.init")) ||
        (st = embt_meta_get(&r->pretrained, &len, m, "training.pretrained")))
        return st;
    o->pretrained = NULL; /* its rows are in the tables now */
    o->init = NULL;
    o->freeze = r->freeze;
    o->pretrained_name = NULL;
    return EMBT_OK;
}

/* Vocabulary `name` of f with its counts, in its order, into the empty d. */
static embt_status load_vocab(embt__vocab *d, const embt_file *f, const char *name)
{
    const embt_vocab *v;
    if (embt_file_vocab(&v, f, name) != EMBT_OK)
        return embt__error(EMBT_ENOTFOUND, EMBT_NO_OFFSET, NULL, 0, "no vocabulary '%s'", name);
    return embt__vocab_append_file(d, v, true);
}

/* The parameters and the frozen mask of a stopped run: E (nwords + bucket, dim), W, b as
 * allocated, *frozen_out (nwords) when r->freeze. */
static embt_status load_params(embt_matrix *E, embt_matrix *W, embt_matrix *b, uint8_t **frozen_out,
                               const embt_file *f, const run_record *r, uint32_t nwords,
                               uint64_t bucket)
{
    size_t dim = (size_t)E->cols;
    embt_status st = cls__read_table(E->data, f, "embedding", nwords, dim);
    if (!st && bucket > 0)
        st = cls__read_table(E->data + (size_t)nwords * dim, f, "embedding.ngrams", bucket, dim);
    if (!st)
        st = cls__read_table(W->data, f, "linear.weight", W->rows, dim);
    if (!st)
        st = cls__read_table(b->data, f, "linear.bias", b->rows, 1);
    if (st || !r->freeze)
        return st;
    const embt_table *t;
    if (embt_file_table(&t, f, "embedding.frozen") != EMBT_OK)
        return embt__error(EMBT_ENOTFOUND, EMBT_NO_OFFSET, NULL, 0,
                           "frozen rows: no table 'embedding.frozen'");
    if (embt_table_dtype(t) != EMBT_DTYPE_U8 || embt_table_rows(t) != nwords ||
        embt_table_cols(t) != 1)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "table embedding.frozen is not u8 with one value per word");
    if (!(*frozen_out = embt__malloc(nwords ? nwords : 1)))
        return embt__error_nomem();
    if (nwords)
        memcpy(*frozen_out, embt_table_data(t), nwords);
    return EMBT_OK;
}

/* The threads' places of a stopped run, checked against the lines now encoded. */
static embt_status load_positions(uint64_t *processed_out, cls_thread_state *th, const embt_meta *m,
                                  const embt_classify_options *o, const cls_data *data)
{
    embt_status st = cls__state_load(NULL, processed_out, th, o->threads, m);
    if (st)
        return st;
    if (*processed_out > (uint64_t)o->epoch * data->ntokens)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "training.state.processed exceeds epoch * ntokens");
    for (uint32_t t = 0; t < o->threads; t++) {
        size_t lo, hi;
        thread_share(&lo, &hi, data->n_lines, t, o->threads);
        if (th[t].epoch > o->epoch ||
            (th[t].epoch < o->epoch && (th[t].line < lo || th[t].line > hi)))
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                               "training.state.thread%u: epoch %u line %llu outside its share", t,
                               th[t].epoch, (unsigned long long)th[t].line);
    }
    return EMBT_OK;
}

/* ---- training entry point --------------------------------------------------------------------- */

static embt_status check_options(embt_classify_options *o)
{
    if (o->version != EMBT_CLASSIFY_OPTIONS_VERSION)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "unknown options version %u",
                           o->version);
    if (!(o->lr > 0) || !isfinite(o->lr))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "lr must be a number > 0");
    if (o->epoch < 1 || o->threads < 1 || o->threads > 1024 || o->word_ngrams < 1 ||
        o->lr_update_rate < 1)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "epoch, word_ngrams and lr_update_rate must be >= 1, threads in "
                           "[1, 1024]");
    if (!o->label_prefix || !*o->label_prefix)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "empty label prefix");
    if (o->word_ngrams <= 1)
        o->bucket = 0;
    if (o->pretrained) {
        if (!embt_table_vocab(o->pretrained) || embt_table_rank(o->pretrained) != 2)
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                               "the pretrained table must be a matrix tied to a vocabulary");
        uint64_t cols = embt_table_cols(o->pretrained);
        if (o->dim == 0 && cols <= 65536)
            o->dim = (uint32_t)cols;
        if (o->dim != cols)
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                               "dim %u differs from the pretrained table's %llu", o->dim,
                               (unsigned long long)cols);
    }
    if (o->dim == 0)
        o->dim = 100;
    if (o->dim > 65536)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "dim must be in [1, 65536]");
    return EMBT_OK;
}

/* Pass 1 of a new run: the vocabularies (training words by count, then the pretrained table's
 * other words). */
static embt_status build_vocabs(cls_reader *rd, embt__vocab *words, embt__vocab *labels,
                                const embt_classify_options *o)
{
    embt_status st = count_pass(rd, words, labels, o->label_prefix);
    if (st || (st = embt__vocab_finish(words, 0, o->min_count)) ||
        (st = embt__vocab_finish(labels, 0, 1)))
        return st;
    if (labels->n == 0)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "no labelled line in the input");
    if (!o->pretrained)
        return EMBT_OK;
    /* as fastText's -pretrainedVectors: every pretrained word joins the vocabulary (after the
     * training words, in the pretrained order, count 0), so words never seen in training still
     * have their pretrained row at prediction time */
    const embt_vocab *pv = embt_table_vocab(o->pretrained);
    size_t plen = strlen(o->label_prefix);
    for (uint32_t pid = 0, np = embt_vocab_size(pv); pid < np; pid++) {
        size_t len;
        const char *tok = embt_vocab_token(pv, pid, &len);
        if (!tok)
            return embt_error_last()->code;
        if ((len >= plen && memcmp(tok, o->label_prefix, plen) == 0) ||
            embt__vocab_find(words, tok, len) != EMBT_NONE_ID)
            continue;
        if ((st = embt__vocab_add(words, tok, len, 0, NULL)))
            return st;
    }
    return EMBT_OK;
}

/* The parameters of a new run: fastText's initialisation (input U(+-1/dim), output 0), then the
 * pretrained rows; *frozen_out (nwords) with freeze. */
static embt_status init_params(embt_matrix *E, uint8_t **frozen_out, uint64_t *copied_out,
                               const embt__vocab *words, const embt_classify_options *o)
{
    size_t dim = o->dim;
    embt_init_options io = EMBT_INIT_OPTIONS_INIT;
    if (o->init) {
        io = *o->init;
    } else {
        io.kind = EMBT_INIT_UNIFORM;
        io.low = -1.0 / (double)dim;
        io.high = 1.0 / (double)dim;
        io.seed = o->seed;
    }
    embt_status st = embt_init_matrix(E, &io);
    if (st || !o->pretrained)
        return st;
    const embt_vocab *pv = embt_table_vocab(o->pretrained);
    uint8_t *frozen = NULL;
    if (o->freeze && !(*frozen_out = frozen = embt__calloc(words->n ? words->n : 1, 1)))
        return embt__error_nomem();
    for (uint32_t pid = 0, np = embt_vocab_size(pv); pid < np; pid++) {
        size_t len;
        const char *tok = embt_vocab_token(pv, pid, &len);
        uint32_t i = tok ? embt__vocab_find(words, tok, len) : EMBT_NONE_ID;
        if (i == EMBT_NONE_ID)
            continue;
        if ((st = embt_table_read_row_f32(E->data + (size_t)i * dim, o->pretrained, pid)))
            return st;
        if (frozen)
            frozen[i] = 1;
        (*copied_out)++;
    }
    return EMBT_OK;
}

embt_status embt_classify_train(const char *input, const char *output,
                                const embt_classify_options *opts, embt_classify_report *report)
{
    EMBT_CHECK_ARG(input && output);
    struct timespec t_start;
    clock_gettime(CLOCK_MONOTONIC, &t_start);
    embt_classify_options o = EMBT_CLASSIFY_OPTIONS_INIT;
    if (opts && opts->version == 1) {
        /* a version-1 struct ends before `resume` */
        memcpy(&o, opts, offsetof(embt_classify_options, resume));
        o.version = EMBT_CLASSIFY_OPTIONS_VERSION;
    } else if (opts) {
        o = *opts;
    }
    embt_status st = EMBT_OK;
    FILE *f = NULL;
    cls_reader rd = {0};
    embt__vocab words, labels;
    embt__vocab_init(&words);
    embt__vocab_init(&labels);
    cls_featurizer fz = {0};
    cls_data data = {0};
    embt_matrix E = {0}, W = {0}, b = {0};
    uint8_t *frozen = NULL;
    embt_meta *meta = NULL, *rmeta = NULL;
    embt_file *rf = NULL;
    cls_thread_state *states = NULL;
    train_thread *tt = NULL;
    run_record rec = {0};
    double train_secs = 0;
    rec.input = input;
    rec.init = INIT_FASTTEXT;
    rec.pretrained = "none";

    if (o.resume) {
        /* settings, vocabularies, tables and positions all come from the stopped run */
        size_t mlen = 0;
        if ((st = embt_file_open(&rf, o.resume, &embt__open_verified)))
            goto done;
        const char *mtext = embt_file_metadata(rf, &mlen);
        if ((st = embt_meta_parse(&rmeta, mtext ? mtext : "", mtext ? mlen : 0)) ||
            (st = load_settings(&o, &rec, rmeta)) || (st = load_vocab(&words, rf, "words")) ||
            (st = load_vocab(&labels, rf, "labels")))
            goto done;
        if (labels.n == 0) {
            st = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "the resume file has no label");
            goto done;
        }
        /* the tables must hold what the settings declare before anything is sized by them */
        if ((st = cls__check_table(NULL, rf, "embedding", words.n, o.dim)) ||
            (o.bucket && (st = cls__check_table(NULL, rf, "embedding.ngrams", o.bucket, o.dim))))
            goto done;
    } else {
        if (o.init)
            rec.init = "initializer";
        if (o.pretrained)
            rec.pretrained = o.pretrained_name ? o.pretrained_name : "yes";
        rec.freeze = o.pretrained && o.freeze;
    }
    if ((st = check_options(&o)))
        goto done;

    bool not_regular;
    f = embt__fopen_regular(input, &not_regular); /* read twice: vocabulary, then training */
    if (!f) {
        st = not_regular ? embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                                       "the input %s is not a regular file", input)
                         : embt__error_sys(errno, "cannot open the input %s", input);
        goto done;
    }
    if ((st = cls__reader_init(&rd, f)))
        goto done;
    if (!o.resume) {
        if ((st = build_vocabs(&rd, &words, &labels, &o)))
            goto done;
        if (fseek(f, 0, SEEK_SET) != 0) {
            st = embt__error_sys(errno, "cannot rewind the input %s (it must be a regular file)",
                                 input);
            goto done;
        }
        rd.line_no = 0;
    }
    uint32_t nwords = words.n, nlabels = labels.n;
    if ((uint64_t)nwords + o.bucket >= UINT32_MAX) {
        st = embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0, "words + bucket exceed 2^32 - 2");
        goto done;
    }
    fz = (cls_featurizer){
        o.label_prefix, strlen(o.label_prefix), dict_lookup, dict_lookup, &words, &labels,
        nwords,         o.word_ngrams,          o.bucket,    {0}};
    if ((st = encode_pass(&rd, &fz, &data)))
        goto done;
    fclose(f);
    f = NULL;
    if (data.n_lines == 0) {
        st = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "no line with a known word");
        goto done;
    }
    if (o.resume &&
        (data.n_lines != rec.lines || data.ntokens != rec.ntokens || data.crc != rec.crc)) {
        /* the saved positions are line numbers: they mean nothing for other lines */
        st = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                         "the input differs from the stopped run's (%zu lines, %llu tokens, "
                         "crc32 %llu; it had %llu, %llu, %llu)",
                         data.n_lines, (unsigned long long)data.ntokens,
                         (unsigned long long)data.crc, (unsigned long long)rec.lines,
                         (unsigned long long)rec.ntokens, (unsigned long long)rec.crc);
        goto done;
    }
    rec.lines = data.n_lines;
    rec.ntokens = data.ntokens;
    rec.crc = data.crc;

    if ((st = alloc_embedding(&E, (uint64_t)nwords + o.bucket, o.dim)) ||
        (st = embt_matrix_alloc(&W, nlabels, o.dim)) || (st = embt_matrix_alloc(&b, nlabels, 1)))
        goto done;
    states = embt__calloc(o.threads, sizeof *states);
    tt = embt__calloc(o.threads, sizeof *tt);
    if (!states || !tt) {
        st = embt__error_nomem();
        goto done;
    }
    if (o.resume) {
        if ((st = load_params(&E, &W, &b, &frozen, rf, &rec, nwords, o.bucket)) ||
            (st = load_positions(&rec.processed, states, rmeta, &o, &data)))
            goto done;
    } else {
        if ((st = init_params(&E, &frozen, &rec.pretrained_rows, &words, &o)))
            goto done;
        for (uint32_t t = 0; t < o.threads; t++) {
            size_t lo, hi;
            thread_share(&lo, &hi, data.n_lines, t, o.threads);
            states[t].line = lo;
            embt_rng_seed(&states[t].rng, o.seed + t);
        }
    }

    train_shared sh = {0};
    sh.E = E.data;
    sh.W = W.data;
    sh.b = b.data;
    sh.dim = o.dim;
    sh.nlabels = nlabels;
    sh.frozen = frozen;
    sh.n_frozen = frozen ? nwords : 0;
    sh.data = &data;
    sh.step = cls__kernels_select(o.flags & EMBT_OPS_GENERIC)->step;
    sh.lr0 = o.lr;
    sh.train_bias = o.bias;
    sh.epoch = o.epoch;
    sh.threads = o.threads;
    sh.lr_update_rate = o.lr_update_rate;
    sh.total = (uint64_t)o.epoch * data.ntokens;
    sh.processed = sh.processed_at_start = rec.processed;
    sh.stop_after = o.stop_after_lines;
    sh.stop_flag = o.stop_flag;
    sh.progress = o.progress;
    sh.progress_user = o.progress_user;
    for (uint32_t t = 0; t < o.threads; t++) {
        tt[t].id = t;
        tt[t].s = &states[t];
    }
    if ((st = run_threads(&sh, tt)))
        goto done;
    train_secs = seconds_since(&sh.t0);

    double loss_sum = 0;
    uint64_t updates = 0;
    rec.completed = 1;
    for (uint32_t t = 0; t < o.threads; t++) {
        loss_sum += states[t].loss_sum;
        updates += states[t].updates;
        rec.completed &= states[t].epoch >= o.epoch;
    }
    rec.loss = updates ? loss_sum / (double)updates : 0.0;
    rec.processed = __atomic_load_n(&sh.processed, __ATOMIC_RELAXED);
    rec.th = states;
    const char *yaml;
    size_t yaml_len;
    if ((st = build_meta(&meta, &o, &rec)) || (st = embt_meta_emit(&yaml, &yaml_len, meta)))
        goto done;
    model_out mo = {&words,   &labels, E.data, W.data,  b.data, rec.completed ? NULL : frozen,
                    o.bucket, o.dim,   yaml,   yaml_len};
    if ((st = write_model(output, &mo)))
        goto done;
    if (report) {
        report->lines = data.n_lines;
        report->ntokens = data.ntokens;
        report->nwords = nwords;
        report->nlabels = nlabels;
        report->bucket = o.bucket;
        report->dim = o.dim;
        report->pretrained_rows = (uint32_t)rec.pretrained_rows;
        report->loss = rec.loss;
        report->train_seconds = train_secs;
        report->total_seconds = seconds_since(&t_start);
        report->completed = rec.completed;
    }
done:
    if (f)
        fclose(f);
    cls__reader_free(&rd);
    embt__vocab_release(&words);
    embt__vocab_release(&labels);
    cls__vec_free(&fz.hashes);
    data_free(&data);
    embt_matrix_release(&E);
    embt_matrix_release(&W);
    embt_matrix_release(&b);
    embt__free(frozen);
    embt__free(states);
    embt__free(tt);
    embt_meta_free(meta);
    embt_meta_free(rmeta);
    embt_file_close(rf);
    return st;
}

/* ---- prediction ------------------------------------------------------------------------------- */

struct embt_classifier {
    const embt_vocab *words, *labels;
    const embt_table *emb, *ngrams;
    uint32_t nwords, nlabels;
    size_t dim;
    float *W, *b;              /* (nlabels, dim), (nlabels) */
    float *hidden, *row, *out; /* (dim), (dim), (nlabels) */
    char *prefix;
    cls_featurizer fz;
    cls_vec feat, lab;
};

static uint32_t vocab_lookup(const void *ctx, const char *s, size_t n)
{
    uint32_t id;
    return embt_vocab_find(&id, ctx, s, n) == EMBT_OK ? id : EMBT_NONE_ID;
}

static embt_status need_table(const embt_table **out, const embt_file *file, const char *name)
{
    embt_status st = embt_file_table(out, file, name);
    if (st)
        return embt__error(EMBT_ENOTFOUND, EMBT_NO_OFFSET, NULL, 0,
                           "not a classifier: no table '%s'", name);
    return EMBT_OK;
}

/* training.word_ngrams of a model: 1 when absent (a model written by hand), else a positive
 * integer; a value that is not one is refused rather than read as something else. */
static embt_status model_word_ngrams(uint64_t *out, const embt_meta *m)
{
    *out = 1;
    const char *v;
    size_t len;
    if (!m || embt_meta_get(&v, &len, m, "training.word_ngrams") != EMBT_OK)
        return EMBT_OK;
    return embt__meta_get_u64(out, m, "training.word_ngrams", true) ? embt_error_last()->code
           : *out == 0 ? embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                                     "metadata training.word_ngrams: 0 (expected 1 or more)")
                       : EMBT_OK;
}

embt_status embt_classifier_open(embt_classifier **out, const embt_file *file)
{
    EMBT_CHECK_ARG(out && file);
    *out = NULL;
    embt_meta *meta = NULL;
    embt_status st = EMBT_OK;
    embt_classifier *c = embt__calloc(1, sizeof *c);
    if (!c)
        return embt__error_nomem();
    const embt_table *wt = NULL, *bt = NULL;
    if (embt_file_vocab(&c->words, file, "words") || embt_file_vocab(&c->labels, file, "labels")) {
        st = embt__error(EMBT_ENOTFOUND, EMBT_NO_OFFSET, NULL, 0,
                         "not a classifier: no vocabulary 'words' and 'labels'");
        goto done;
    }
    if ((st = need_table(&c->emb, file, "embedding")) ||
        (st = need_table(&wt, file, "linear.weight")) ||
        (st = need_table(&bt, file, "linear.bias")))
        goto done;
    if (embt_file_table(&c->ngrams, file, "embedding.ngrams") != EMBT_OK)
        c->ngrams = NULL;
    c->nwords = embt_vocab_size(c->words);
    c->nlabels = embt_vocab_size(c->labels);
    uint64_t dim = embt_table_cols(c->emb);
    if (embt_table_rows(c->emb) != c->nwords || embt_table_rows(wt) != c->nlabels ||
        embt_table_cols(wt) != dim || embt_table_rows(bt) * embt_table_cols(bt) != c->nlabels ||
        (c->ngrams && embt_table_cols(c->ngrams) != dim) || c->nlabels == 0 || dim > 65536 ||
        (c->ngrams && embt_table_rows(c->ngrams) + c->nwords >= UINT32_MAX)) {
        st = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                         "not a classifier: the table shapes disagree");
        goto done;
    }
    c->dim = (size_t)dim;
    size_t len = 0;
    const char *yaml = embt_file_metadata(file, &len);
    if (yaml && len && (st = embt_meta_parse(&meta, yaml, len)))
        goto done;
    const char *prefix = "__label__";
    size_t plen = strlen(prefix);
    if (meta && embt_meta_get(&prefix, &plen, meta, "training.label_prefix") != EMBT_OK) {
        prefix = "__label__";
        plen = strlen(prefix);
    }
    c->prefix = embt__strndup(prefix, plen);
    c->W = embt__malloc(c->nlabels * c->dim * sizeof *c->W);
    c->b = embt__malloc(c->nlabels * sizeof *c->b);
    c->hidden = embt__malloc(c->dim * sizeof *c->hidden);
    c->row = embt__malloc(c->dim * sizeof *c->row);
    c->out = embt__malloc(c->nlabels * sizeof *c->out);
    if (!c->prefix || !c->W || !c->b || !c->hidden || !c->row || !c->out) {
        st = embt__error_nomem();
        goto done;
    }
    for (uint32_t j = 0; j < c->nlabels; j++)
        if ((st = embt_table_read_row_f32(c->W + j * c->dim, wt, j)))
            goto done;
    /* rank 1 reads as nlabels rows of one element, as (nlabels, 1) does */
    for (uint32_t j = 0; j < c->nlabels; j++)
        if ((st = embt_table_read_row_f32(c->b + j, bt, j)))
            goto done;
    uint64_t ngrams;
    if ((st = model_word_ngrams(&ngrams, meta)))
        goto done;
    c->fz = (cls_featurizer){c->prefix,
                             plen,
                             vocab_lookup,
                             vocab_lookup,
                             c->words,
                             c->labels,
                             c->nwords,
                             ngrams > 64 ? 64 : (uint32_t)ngrams,
                             c->ngrams ? embt_table_rows(c->ngrams) : 0,
                             {0}};
    *out = c;
    c = NULL;
done:
    embt_meta_free(meta);
    embt_classifier_free(c);
    return st;
}

void embt_classifier_free(embt_classifier *c)
{
    if (!c)
        return;
    embt__free(c->W);
    embt__free(c->b);
    embt__free(c->hidden);
    embt__free(c->row);
    embt__free(c->out);
    embt__free(c->prefix);
    cls__vec_free(&c->fz.hashes);
    cls__vec_free(&c->feat);
    cls__vec_free(&c->lab);
    embt__free(c);
}

uint32_t embt_classifier_nlabels(const embt_classifier *c)
{
    return c ? c->nlabels : 0;
}

const char *embt_classifier_label(const embt_classifier *c, uint32_t label, size_t *len_out)
{
    return embt_vocab_token(c->labels, label, len_out);
}

/* out (nlabels) = softmax of the model on c->feat (n >= 1). */
static embt_status classifier_forward(embt_classifier *c)
{
    size_t dim = c->dim, n = c->feat.n;
    for (size_t d = 0; d < dim; d++)
        c->hidden[d] = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = c->feat.v[i];
        embt_status st = id < c->nwords
                             ? embt_table_read_row_f32(c->row, c->emb, id)
                             : embt_table_read_row_f32(c->row, c->ngrams, id - c->nwords);
        if (st)
            return st;
        for (size_t d = 0; d < dim; d++)
            c->hidden[d] += c->row[d];
    }
    for (size_t d = 0; d < dim; d++)
        c->hidden[d] /= (float)n;
    cls__softmax_forward(c->out, c->W, c->b, c->hidden, dim, c->nlabels);
    return EMBT_OK;
}

/* The best k of out with p >= threshold, best first, ties by the lower id. */
static size_t top_k(embt_label_prob *res, const float *p, uint32_t nlabels, size_t k,
                    float threshold)
{
    size_t n = 0;
    for (uint32_t j = 0; j < nlabels && k > 0; j++) {
        if (!(p[j] >= threshold))
            continue;
        if (n == k && !(p[j] > res[n - 1].prob))
            continue;
        size_t i = n < k ? n++ : n - 1;
        while (i > 0 && p[j] > res[i - 1].prob) {
            res[i] = res[i - 1];
            i--;
        }
        res[i] = (embt_label_prob){j, p[j]};
    }
    return n;
}

embt_status embt_classifier_predict(embt_label_prob *out, size_t *n_out, embt_classifier *c,
                                    const char *text, size_t len, size_t k, float threshold)
{
    EMBT_CHECK_ARG(c && n_out && (out || k == 0) && (text || len == 0));
    *n_out = 0;
    size_t bad = 0;
    if (!embt__utf8_valid((const uint8_t *)text, len, &bad))
        return embt__error_parse(1, (uint32_t)bad + 1, EMBT_NO_OFFSET,
                                 text[bad] == 0 ? "NUL byte" : "invalid UTF-8");
    uint64_t ntok;
    embt_status st = cls__features(&c->fz, text, len, &c->feat, &c->lab, &ntok, NULL);
    if (st || c->feat.n == 0)
        return st;
    if ((st = classifier_forward(c)))
        return st;
    *n_out = top_k(out, c->out, c->nlabels, k, threshold);
    return EMBT_OK;
}

embt_status embt_classifier_test(embt_classify_metrics *out, embt_classifier *c, FILE *in, size_t k,
                                 float threshold)
{
    EMBT_CHECK_ARG(out && c && in);
    memset(out, 0, sizeof *out);
    cls_reader rd = {0};
    embt_label_prob *res = embt__malloc((k ? k : 1) * sizeof *res);
    embt_status st = res ? cls__reader_init(&rd, in) : embt__error_nomem();
    double loss = 0;
    while (!st) {
        const char *line;
        size_t len;
        bool got;
        uint64_t ntok;
        if ((st = cls__reader_next(&rd, &line, &len, &got)) || !got)
            break;
        if ((st = cls__features(&c->fz, line, len, &c->feat, &c->lab, &ntok, NULL)))
            break;
        if (c->lab.n == 0 || c->feat.n == 0)
            continue;
        if ((st = classifier_forward(c)))
            break;
        size_t n = top_k(res, c->out, c->nlabels, k, threshold);
        out->examples++;
        out->gold += c->lab.n;
        out->predicted += n;
        for (size_t i = 0; i < n; i++)
            for (size_t g = 0; g < c->lab.n; g++)
                if (c->lab.v[g] == res[i].label) {
                    out->predicted_gold++;
                    break;
                }
        double l = 0;
        for (size_t g = 0; g < c->lab.n; g++)
            l -= log((double)c->out[c->lab.v[g]]);
        loss += l / (double)c->lab.n;
    }
    out->precision = out->predicted ? (double)out->predicted_gold / (double)out->predicted : NAN;
    out->recall = out->gold ? (double)out->predicted_gold / (double)out->gold : NAN;
    out->loss = out->examples ? loss / (double)out->examples : NAN;
    cls__reader_free(&rd);
    embt__free(res);
    return st;
}
