/* skipgram.c: skip-gram with negative sampling as word2vec.c trains it (hogwild threads, streamed
 * corpus, subsampling, count^0.75 negatives, linear learning-rate decay), from scratch or from a
 * pretrained .embt table, writing the vocabulary with counts, both tables, the optimiser state and
 * a resumable position (embt_sg_train() in embt/train.h). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "corpus.h"
#include "internal.h"

#define MAX_SENTENCE 1000
#define EXP_TABLE_SIZE 1000
#define MAX_EXP 6
#define NEG_TABLE_SIZE 10000000u

typedef struct sg sg;
typedef struct sg_block sg_block;
typedef uint64_t (*train_block_fn)(sg *s, const sg_block *blk, float *restrict neu1e,
                                   float *restrict grad, uint64_t step0, double *loss);

typedef struct sg_thread {
    sg *s;
    unsigned id;
    uint64_t start;  /* first byte of this thread's slice */
    uint64_t offset; /* where its reader continues */
    uint64_t rng;    /* word2vec.c's LCG state */
    uint64_t words;  /* words read in the current epoch */
    uint32_t epoch;  /* epochs finished */
    _Atomic double loss_sum;
    _Atomic uint64_t pairs;
    embt_status st;
    embt_error err;
    pthread_t tid;
} sg_thread;

struct sg {
    uint32_t dim, window, neg, epochs, threads;
    double sample, lr0;
    uint64_t vocab_size, train_words, n_frozen;
    const uint64_t *counts;                 /* (vocab_size) */
    float *syn0, *syn1;                     /* (vocab_size, dim) input and output vectors */
    uint32_t *neg_table;                    /* (NEG_TABLE_SIZE) */
    float exp_table[EXP_TABLE_SIZE + 1];    /* sigmoid over [-MAX_EXP, MAX_EXP] */
    float logsig_table[EXP_TABLE_SIZE + 1]; /* log sigmoid, same grid */
    embt__vocab vocab;
    int use_optim;
    embt_optim opt0, opt1; /* embedding, context */
    const char *input;
    uint64_t input_size;
    _Atomic uint64_t words_done;
    _Atomic uint64_t pairs_done;
    _Atomic int stop;
    _Atomic unsigned running;
    uint64_t words_at_start, stop_after;
    sg_thread *th;
    train_block_fn train_block; /* the portable or the AVX2 build of the same loops */
};

static inline uint64_t lcg(uint64_t r)
{
    return r * 25214903917ull + 11;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The dense float32 loops below are written once and compiled twice: for the baseline ISA and, on
 * x86, for AVX2 (8-wide, no FMA: every multiply and add is rounded as in the portable build, so both
 * give the same bits). ALWAYS_INLINE lets the AVX2 clone of the block trainer take them in. */
#define ALWAYS_INLINE inline __attribute__((always_inline))

/* Sum of a[i] b[i] in 8 lanes (lane j takes i = j mod 8), the lanes summed in order, then the tail.
 * a, b: (n) */
static ALWAYS_INLINE float dot(const float *restrict a, const float *restrict b, size_t n)
{
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t j = 0; j < 8; j++)
            acc[j] += a[i + j] * b[i + j];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* y += a x   x, y: (n) */
static ALWAYS_INLINE void axpy(float *restrict y, float a, const float *restrict x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

/* The two updates of one (input, output) pair in one pass, e += g out (old out), out += g in.
 * e, out, in: (n), disjoint */
static ALWAYS_INLINE void pair_update(float *restrict e, float *restrict out,
                                      const float *restrict in, float g, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float o = out[i];
        e[i] += g * o;
        out[i] = o + g * in[i];
    }
}

/* Asks for the cache lines of a row of n floats that is about to be read and written. */
static ALWAYS_INLINE void prefetch_row(const float *row, size_t n)
{
    const char *p = (const char *)row, *end = (const char *)(row + n);
    for (; p < end; p += 64)
        __builtin_prefetch(p, 1, 3);
    __builtin_prefetch(end - 1, 1, 3);
}

static double alpha_at(const sg *s, uint64_t done)
{
    double a = s->lr0 * (1.0 - (double)done / ((double)s->epochs * (double)s->train_words + 1.0));
    return a < s->lr0 * 1e-4 ? s->lr0 * 1e-4 : a;
}

/* Negative draws planned per block of a sentence: at least this many, and at least the most one
 * position can need (min(2 * window, MAX_SENTENCE - 1) contexts times neg). */
#define NEG_BLOCK 8192

/* Per-thread buffers of the trainer. */
typedef struct sg_scratch {
    float *neu1e;     /* (dim) gradient of the input row of the current pair */
    float *grad;      /* (dim) optimiser path: a row's gradient */
    uint32_t *shrink; /* (MAX_SENTENCE) window reduction b of each position of the block */
    uint32_t *negs;   /* (neg_cap) the block's negative draws: table slots, then word ids */
    size_t neg_cap;
} sg_scratch;

/* The contexts of position p with window reduction b: [*lo, *hi], p itself excluded by the caller;
 * word2vec.c's a = b .. 2 window - b, context p - window + a, clipped to the sentence. */
static inline void context_range(size_t *lo, size_t *hi, size_t p, size_t b, size_t window,
                                 size_t len)
{
    *lo = p + b >= window ? p + b - window : 0;
    *hi = p + window - b < len ? p + window - b : len - 1;
}

struct sg_block {
    const uint32_t *sen;    /* (len) the sentence */
    size_t len, first, end; /* train positions [first, end) */
    const uint32_t *shrink; /* (len) */
    const uint32_t *negs;   /* (n_negs) negative word ids, neg per pair in training order */
    size_t n_negs;
    float alpha;
};

/* Trains the pairs of the planned block; returns the pairs and adds their loss to *loss. */
static ALWAYS_INLINE uint64_t train_block_body(sg *s, const sg_block *blk, float *restrict neu1e,
                                               float *restrict grad, uint64_t step0, double *loss)
{
    size_t D = s->dim, W = s->window, neg = s->neg;
    const uint32_t *sen = blk->sen;
    float alpha = blk->alpha;
    uint64_t pairs = 0;
    double lsum = *loss; /* summed in pair order, whatever the blocks */
    size_t k = 0;        /* next negative */
    for (size_t p = blk->first; p < blk->end; p++) {
        uint32_t word = sen[p];
        float *pos_row = s->syn1 + (size_t)word * D; /* (D) */
        size_t lo, hi;
        context_range(&lo, &hi, p, blk->shrink[p], W, blk->len);
        if (p + 1 < blk->end)
            prefetch_row(s->syn1 + (size_t)sen[p + 1] * D, D);
        if (p + W + 1 < blk->len)
            prefetch_row(s->syn0 + (size_t)sen[p + W + 1] * D, D);
        for (size_t c = lo; c <= hi; c++) {
            if (c == p)
                continue;
            const uint32_t *nw = blk->negs + k; /* (neg) */
            k += neg;
            /* the next pair's output rows are fetched while this one trains */
            for (size_t q = k; q < k + neg && q < blk->n_negs; q++)
                prefetch_row(s->syn1 + (size_t)blk->negs[q] * D, D);
            uint32_t last = sen[c];
            float *l1 = s->syn0 + (size_t)last * D; /* (D) */
            memset(neu1e, 0, D * sizeof *neu1e);
            pairs++;
            for (size_t d = 0; d <= neg; d++) {
                uint32_t target;
                float label;
                if (d == 0) {
                    target = word;
                    label = 1;
                } else {
                    target = nw[d - 1];
                    if (target == word)
                        continue;
                    label = 0;
                }
                float *l2 = d == 0 ? pos_row : s->syn1 + (size_t)target * D; /* (D) */
                float f = dot(l1, l2, D);
                float gr; /* label - sigmoid(f) */
                float sf = label > 0 ? f : -f;
                /* word2vec.c's tests, ordered so that a NaN (weights that diverged, or read from
                 * a file) takes a bound and never becomes a table index */
                if (f > MAX_EXP)
                    gr = label - 1;
                else if (f >= -MAX_EXP)
                    gr =
                        label - s->exp_table[(int)((f + MAX_EXP) * (EXP_TABLE_SIZE / MAX_EXP / 2))];
                else
                    gr = label;
                if (sf > MAX_EXP)
                    sf = MAX_EXP;
                else if (!(sf >= -MAX_EXP))
                    sf = -MAX_EXP;
                lsum -= s->logsig_table[(int)((sf + MAX_EXP) * (EXP_TABLE_SIZE / MAX_EXP / 2))];
                if (!s->use_optim) {
                    pair_update(neu1e, l2, l1, gr * alpha, D);
                } else {
                    axpy(neu1e, gr, l2, D);
                    for (size_t i = 0; i < D; i++)
                        grad[i] = -gr * l1[i];
                    embt_optim_row(&s->opt1, l2, target, grad, alpha, step0 + pairs);
                }
            }
            if (last >= s->n_frozen) {
                if (!s->use_optim) {
                    axpy(l1, 1.0f, neu1e, D);
                } else {
                    for (size_t i = 0; i < D; i++)
                        grad[i] = -neu1e[i];
                    embt_optim_row(&s->opt0, l1, last, grad, alpha, step0 + pairs);
                }
            }
        }
    }
    *loss = lsum;
    return pairs;
}

static uint64_t train_block_generic(sg *s, const sg_block *blk, float *restrict neu1e,
                                    float *restrict grad, uint64_t step0, double *loss)
{
    return train_block_body(s, blk, neu1e, grad, step0, loss);
}

#if defined(__x86_64__) || defined(__i386__)
#define HAVE_AVX2_PATH 1
__attribute__((target("avx2"))) static uint64_t train_block_avx2(sg *s, const sg_block *blk,
                                                                 float *restrict neu1e,
                                                                 float *restrict grad,
                                                                 uint64_t step0, double *loss)
{
    return train_block_body(s, blk, neu1e, grad, step0, loss);
}
#endif

static train_block_fn pick_train_block(void)
{
#ifdef HAVE_AVX2_PATH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        return train_block_avx2;
#endif
    return train_block_generic;
}

/* Trains the pairs of one sentence. sen: (len) word ids.
 * Every random draw of a block of positions (the window reductions and the negatives' table slots,
 * in the order a pair-by-pair loop would make them: the draws never depend on the weights) is made
 * first; the slots are then looked up in one pass, whose independent cache misses overlap, and the
 * pairs train while the next pair's rows are prefetched. */
static void train_sentence(sg *s, sg_thread *t, const uint32_t *sen, size_t len, float alpha,
                           sg_scratch *sc)
{
    size_t W = s->window, neg = s->neg;
    uint64_t r = t->rng;
    double loss = 0;
    uint64_t pairs = 0,
             step0 = s->use_optim ? atomic_load_explicit(&s->pairs_done, memory_order_relaxed) : 0;
    sg_block blk = {sen, len, 0, 0, sc->shrink, sc->negs, 0, alpha};
    while (blk.first < len) {
        size_t n = 0, p = blk.first;
        for (; p < len; p++) {
            uint64_t r1 = lcg(r);
            size_t b = (size_t)(r1 % W), lo, hi;
            context_range(&lo, &hi, p, b, W, len);
            size_t draws = (hi - lo) * neg;
            if (p > blk.first && n + draws > sc->neg_cap)
                break;
            r = r1;
            sc->shrink[p] = (uint32_t)b;
            for (size_t i = 0; i < draws; i++) {
                r = lcg(r);
                sc->negs[n++] = (uint32_t)((r >> 16) % NEG_TABLE_SIZE);
            }
        }
        const uint32_t *table = s->neg_table;
        for (size_t i = 0; i < n; i++) {
            if (i + 16 < n)
                __builtin_prefetch(table + sc->negs[i + 16], 0, 0);
            sc->negs[i] = table[sc->negs[i]];
        }
        blk.end = p;
        blk.n_negs = n;
        pairs += s->train_block(s, &blk, sc->neu1e, sc->grad, step0 + pairs, &loss);
        blk.first = p;
    }
    t->rng = r;
    atomic_store_explicit(&t->loss_sum,
                          atomic_load_explicit(&t->loss_sum, memory_order_relaxed) + loss,
                          memory_order_relaxed);
    atomic_fetch_add_explicit(&t->pairs, pairs, memory_order_relaxed);
    if (s->use_optim)
        atomic_fetch_add_explicit(&s->pairs_done, pairs, memory_order_relaxed);
}

static void *worker(void *arg)
{
    sg_thread *t = arg;
    sg *s = t->s;
    size_t D = s->dim;
    uint32_t *sen = NULL;
    sg_scratch sc = {0};
    embt__reader rd;
    embt_status st = embt__reader_open(&rd, s->input, t->offset);
    if (st)
        goto done;
    /* neg <= EMBT_SG_NEG_MAX keeps this under 400 kB a thread */
    uint64_t contexts =
        2 * (uint64_t)s->window < MAX_SENTENCE - 1 ? 2 * (uint64_t)s->window : MAX_SENTENCE - 1;
    sc.neg_cap = (size_t)(contexts * s->neg);
    if (sc.neg_cap < NEG_BLOCK)
        sc.neg_cap = NEG_BLOCK;
    sen = embt__malloc(MAX_SENTENCE * sizeof *sen);
    sc.shrink = embt__malloc(MAX_SENTENCE * sizeof *sc.shrink);
    sc.negs = embt__malloc(sc.neg_cap * sizeof *sc.negs);
    sc.neu1e = embt__malloc(D * sizeof *sc.neu1e);
    sc.grad = embt__malloc(D * sizeof *sc.grad);
    if (!sen || !sc.shrink || !sc.negs || !sc.neu1e || !sc.grad) {
        st = embt__error_nomem();
        goto done;
    }
    uint64_t share = s->train_words / s->threads;
    double sT = s->sample * (double)s->train_words;
    bool whole_epoch = t->offset == t->start && t->words == 0; /* this epoch reads all the slice */
    while (t->epoch < s->epochs && !atomic_load_explicit(&s->stop, memory_order_relaxed)) {
        float alpha =
            (float)alpha_at(s, atomic_load_explicit(&s->words_done, memory_order_relaxed));
        size_t len = 0;
        uint64_t read = 0;
        bool eof = false;
        while (len < MAX_SENTENCE && t->words + read < share + 1) {
            embt__tok k = embt__reader_next(&rd, &st);
            if (st)
                goto done;
            if (k == EMBT__TOK_EOF) {
                eof = true;
                break;
            }
            if (k == EMBT__TOK_EOL) {
                if (len > 0)
                    break;
                continue;
            }
            if (k == EMBT__TOK_SKIP)
                continue;
            uint32_t id = embt__vocab_find(&s->vocab, rd.word, rd.word_len);
            if (id == EMBT_NONE_ID)
                continue;
            read++;
            if (s->sample > 0) {
                double cn = (double)s->counts[id];
                double ran = (sqrt(cn / sT) + 1) * sT / cn;
                t->rng = lcg(t->rng);
                if (ran < (double)(t->rng & 0xFFFF) / 65536.0)
                    continue;
            }
            sen[len++] = id;
        }
        train_sentence(s, t, sen, len, alpha, &sc);
        t->words += read;
        uint64_t total = atomic_fetch_add_explicit(&s->words_done, read, memory_order_relaxed);
        if (eof || t->words > share) {
            /* a whole epoch that met no vocabulary word: every later one reads the same slice,
             * meets none and draws nothing, so they are done at once (a resume file whose words
             * the corpus lacks would otherwise spin through all its epochs) */
            t->epoch = whole_epoch && t->words == 0 ? s->epochs : t->epoch + 1;
            t->words = 0;
            whole_epoch = true;
            if ((st = embt__reader_seek(&rd, t->start)))
                goto done;
        }
        t->offset = rd.offset;
        if (s->stop_after && total + read - s->words_at_start >= s->stop_after)
            atomic_store(&s->stop, 1);
    }
done:
    if (st) {
        t->st = st;
        t->err = *embt_error_last();
        atomic_store(&s->stop, 1);
    }
    embt__reader_close(&rd);
    embt__free(sen);
    embt__free(sc.shrink);
    embt__free(sc.negs);
    embt__free(sc.neu1e);
    embt__free(sc.grad);
    atomic_fetch_sub(&s->running, 1);
    return NULL;
}

/* ---- setup ---- */

void embt_sg_defaults(embt_sg_options *o)
{
    memset(o, 0, sizeof *o);
    o->version = EMBT_SG_OPTIONS_VERSION;
    o->dim = 100;
    o->lr = 0.025;
    o->epoch = 5;
    o->window = 5;
    o->neg = 5;
    o->sample = 1e-3;
    o->min_count = 5;
    o->threads = 1;
    o->seed = 1;
    embt_optim_defaults(&o->optimizer, EMBT_OPTIM_SGD);
    embt_init_options init = EMBT_INIT_OPTIONS_INIT;
    init.kind = EMBT_INIT_UNIFORM;
    init.low = init.high = 0;
    o->init = init;
}

/* neg_table[from, to) = word */
static EMBT_NO_COVERAGE void fill_slots(uint32_t *neg_table, uint64_t from, uint64_t to,
                                        uint32_t word)
{
    for (uint64_t slot = from; slot < to; slot++)
        neg_table[slot] = word;
}

static embt_status build_tables(sg *s)
{
    for (int i = 0; i <= EXP_TABLE_SIZE; i++) {
        double x = (i / (double)EXP_TABLE_SIZE * 2 - 1) * MAX_EXP;
        double e = exp(x);
        s->exp_table[i] = (float)(e / (e + 1));
        s->logsig_table[i] = (float)(-log1p(exp(-x)));
    }
    s->neg_table = embt__malloc(NEG_TABLE_SIZE * sizeof *s->neg_table);
    if (!s->neg_table)
        return embt__error_nomem();
    /* word i owns the slots [floor(P_{i-1} N), floor(P_i N)), P the cumulative count^0.75 share */
    double total = 0;
    for (uint64_t i = 0; i < s->vocab_size; i++)
        total += pow((double)s->counts[i], 0.75);
    if (!(total > 0))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, "corpus", 0,
                           "no word of the vocabulary occurs in it");
    double cum = 0;
    uint64_t slot = 0, last = 0;
    for (uint64_t i = 0; i < s->vocab_size; i++) {
        if (s->counts[i] == 0)
            continue;
        cum += pow((double)s->counts[i], 0.75);
        uint64_t end = (uint64_t)(cum / total * NEG_TABLE_SIZE);
        if (end > NEG_TABLE_SIZE)
            end = NEG_TABLE_SIZE;
        if (end > slot) {
            fill_slots(s->neg_table, slot, end, (uint32_t)i);
            slot = end;
        }
        last = i;
    }
    fill_slots(s->neg_table, slot, NEG_TABLE_SIZE, (uint32_t)last);
    return EMBT_OK;
}

/* Pass 1: adds every corpus word to v (counts). */
static embt_status count_corpus(embt__vocab *v, const char *path)
{
    embt__reader rd;
    embt_status st = embt__reader_open(&rd, path, 0);
    if (st)
        return st;
    for (;;) {
        embt__tok k = embt__reader_next(&rd, &st);
        if (st || k == EMBT__TOK_EOF)
            break;
        if (k == EMBT__TOK_WORD && (st = embt__vocab_add(v, rd.word, rd.word_len, 1, NULL)))
            break;
    }
    embt__reader_close(&rd);
    return st;
}

/* ---- metadata ---- */

static embt_status save_meta(embt_meta *m, const sg *s, const embt_sg_options *o,
                             const char *pretrained, int completed)
{
    char key[96];
    embt_status st = embt_meta_set(m, "training.task", "skipgram");
    if (!st)
        st = embt_meta_set(m, "training.input", s->input);
    if (!st && pretrained)
        st = embt_meta_set(m, "training.pretrained", pretrained);
    struct {
        const char *k;
        uint64_t v;
    } u[] = {{"training.dim", s->dim},
             {"training.epoch", s->epochs},
             {"training.window", s->window},
             {"training.neg", s->neg},
             {"training.min_count", o->min_count},
             {"training.threads", s->threads},
             {"training.seed", o->seed},
             {"training.frozen_rows", s->n_frozen},
             {"training.train_words", s->train_words},
             {"training.input_size", s->input_size}};
    for (size_t i = 0; !st && i < sizeof u / sizeof u[0]; i++)
        st = embt__meta_set_u64(m, u[i].k, u[i].v);
    if (!st)
        st = embt__meta_set_f64(m, "training.lr", s->lr0);
    if (!st)
        st = embt__meta_set_f64(m, "training.sample", s->sample);
    if (!st)
        st = embt_meta_set(m, "training.sigmoid", "table 1000 over [-6, 6]");
    if (!st)
        st = embt_meta_set(m, "training.state.completed", completed ? "true" : "false");
    if (!st)
        st = embt__meta_set_u64(m, "training.state.words_done", atomic_load(&s->words_done));
    if (!st)
        st = embt__meta_set_u64(m, "training.state.pairs_done", atomic_load(&s->pairs_done));
    for (unsigned i = 0; !st && i < s->threads; i++) {
        const sg_thread *t = &s->th[i];
        const char *f[4] = {"offset", "rng", "words", "epoch"};
        uint64_t v[4] = {t->offset, t->rng, t->words, t->epoch};
        for (int k = 0; !st && k < 4; k++) {
            snprintf(key, sizeof key, "training.state.thread%u.%s", i, f[k]);
            st = embt__meta_set_u64(m, key, v[k]);
        }
    }
    if (!st && s->use_optim) {
        st = embt_optim_save_meta(&s->opt0, m, "embedding");
        if (!st)
            st = embt_optim_save_meta(&s->opt1, m, "context");
    }
    return st;
}

static embt_status write_output(const sg *s, const embt_sg_options *o, const char *pretrained,
                                int completed)
{
    embt_writer *w = NULL;
    embt_meta *m = NULL;
    embt_status st = embt_writer_open(&w, o->output, NULL);
    if (st)
        goto done;
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    vs.name = "words";
    vs.flags = EMBT_VOCAB_COUNTS;
    if ((st = embt_writer_vocab_begin(w, &vs)))
        goto done;
    for (uint32_t i = 0; i < s->vocab.n; i++)
        if ((st = embt_writer_vocab_add(w, embt__vocab_token(&s->vocab, i), s->vocab.len[i],
                                        s->vocab.count[i], NULL)))
            goto done;
    if ((st = embt_writer_vocab_end(w)))
        goto done;
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.rows = s->vocab_size;
    ts.cols = s->dim;
    ts.vocab = "words";
    ts.name = "embedding";
    if ((st = embt_writer_add_table_f32(w, &ts, s->syn0)))
        goto done;
    ts.name = "context";
    if ((st = embt_writer_add_table_f32(w, &ts, s->syn1)))
        goto done;
    if (s->use_optim && ((st = embt_optim_write(&s->opt0, w, "embedding", "words")) ||
                         (st = embt_optim_write(&s->opt1, w, "context", "words"))))
        goto done;
    if ((st = embt_meta_new(&m)) || (st = save_meta(m, s, o, pretrained, completed)))
        goto done;
    const char *yaml;
    size_t len;
    if ((st = embt_meta_emit(&yaml, &len, m)) || (st = embt_writer_set_metadata(w, yaml, len)))
        goto done;
    st = embt_writer_commit(w);
done:
    if (st == EMBT_EIO)
        embt__error_set_section("output"); /* the CLI then names the output file */
    embt_meta_free(m);
    embt_writer_free(w);
    return st;
}

/* Copies the table's rows into dst (rows, dim). */
static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Loads a resume file into s: settings, vocabulary with counts, tables, optimiser and positions. */
static embt_status load_resume(sg *s, embt_sg_options *o, const embt_file *f, embt_meta *m)
{
    const char *task;
    size_t len;
    embt_status st = embt_meta_get(&task, &len, m, "training.task");
    if (st || strcmp(task, "skipgram") != 0)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "not a skip-gram training file (training.task)");
    uint64_t v[9];
    const char *keys[9] = {"training.dim",  "training.epoch",       "training.window",
                           "training.neg",  "training.min_count",   "training.threads",
                           "training.seed", "training.frozen_rows", "training.train_words"};
    for (int i = 0; i < 9; i++)
        if ((st = embt__meta_get_u64(&v[i], m, keys[i], true)))
            return st;
    if (v[0] == 0 || v[0] > EMBT_SG_DIM_MAX || v[1] > UINT32_MAX || v[2] == 0 ||
        v[2] > UINT32_MAX || v[3] > EMBT_SG_NEG_MAX || v[5] == 0 || v[5] > 1024)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "bad training settings in the resume file");
    s->dim = (uint32_t)v[0];
    s->epochs = (uint32_t)v[1];
    s->window = (uint32_t)v[2];
    s->neg = (uint32_t)v[3];
    o->min_count = v[4];
    s->threads = (uint32_t)v[5];
    o->seed = v[6];
    s->n_frozen = v[7];
    if ((st = embt__meta_get_f64(&s->lr0, m, "training.lr")) ||
        (st = embt__meta_get_f64(&s->sample, m, "training.sample")))
        return st;
    if (!(s->lr0 > 0) || isinf(s->lr0) || !(s->sample >= 0) || isinf(s->sample))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "bad training settings in the resume file");
    uint64_t wd, pd;
    if ((st = embt__meta_get_u64(&wd, m, "training.state.words_done", true)) ||
        (st = embt__meta_get_u64(&pd, m, "training.state.pairs_done", true)))
        return st;
    atomic_store(&s->words_done, wd);
    atomic_store(&s->pairs_done, pd);
    const embt_vocab *voc;
    const embt_table *t0, *t1;
    if ((st = embt_file_vocab(&voc, f, "words")) || (st = embt_file_table(&t0, f, "embedding")) ||
        (st = embt_file_table(&t1, f, "context")))
        return st;
    if ((st = embt__vocab_append_file(&s->vocab, voc, true)))
        return st;
    s->vocab_size = s->vocab.n;
    uint64_t train_words = 0;
    for (uint32_t i = 0; i < s->vocab.n; i++)
        train_words += s->vocab.count[i];
    if (train_words != v[8])
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "the vocabulary counts do not add up to training.train_words");
    s->train_words = train_words;
    if (s->n_frozen > s->vocab_size)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "training.frozen_rows %llu exceeds the %llu words",
                           (unsigned long long)s->n_frozen, (unsigned long long)s->vocab_size);
    /* the shapes before the buffers: training.dim alone could ask for any size */
    if ((st = embt__table_check_shape(t0, s->vocab_size, s->dim)) ||
        (st = embt__table_check_shape(t1, s->vocab_size, s->dim)))
        return st;
    size_t n = (size_t)s->vocab_size * s->dim;
    s->syn0 = embt__malloc(n * sizeof(float));
    s->syn1 = embt__malloc(n * sizeof(float));
    if (!s->syn0 || !s->syn1)
        return embt__error_nomem();
    if ((st = embt__table_read_f32(s->syn0, t0, s->vocab_size, s->dim)) ||
        (st = embt__table_read_f32(s->syn1, t1, s->vocab_size, s->dim)))
        return st;
    const char *kind;
    if (embt_meta_get(&kind, &len, m, "optimizer.kind") == EMBT_OK && strcmp(kind, "sgd") != 0) {
        s->use_optim = 1;
        if ((st = embt_optim_load(&s->opt0, f, m, "embedding", s->vocab_size, s->dim)) ||
            (st = embt_optim_load(&s->opt1, f, m, "context", s->vocab_size, s->dim)))
            return st;
        o->optimizer = s->opt0.opts;
    }
    s->th = embt__calloc(s->threads, sizeof *s->th);
    if (!s->th)
        return embt__error_nomem();
    for (unsigned i = 0; i < s->threads; i++) {
        char key[96];
        const char *f4[4] = {"offset", "rng", "words", "epoch"};
        uint64_t val[4];
        for (int k = 0; k < 4; k++) {
            snprintf(key, sizeof key, "training.state.thread%u.%s", i, f4[k]);
            if ((st = embt__meta_get_u64(&val[k], m, key, true)))
                return st;
        }
        s->th[i].offset = val[0];
        s->th[i].rng = val[1];
        s->th[i].words = val[2];
        s->th[i].epoch = (uint32_t)val[3];
    }
    return EMBT_OK;
}

embt_status embt_sg_train(const embt_sg_options *opts, embt_sg_report *report)
{
    EMBT_CHECK_ARG(opts && opts->version == EMBT_SG_OPTIONS_VERSION && report);
    memset(report, 0, sizeof *report);
    embt_sg_options o = *opts;
    sg *s = embt__calloc(1, sizeof *s);
    if (!s)
        return embt__error_nomem();
    embt__vocab_init(&s->vocab);
    embt_file *pf = NULL, *rf = NULL;
    embt_meta *rmeta = NULL;
    const char *pretrained_name = o.pretrained;
    embt_status st = EMBT_OK;
    if (!o.input || !o.output) {
        st = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "input and output are required");
        goto done;
    }
    s->input = o.input;
    uint64_t file_size = 0;
    {
        embt__reader probe;
        if ((st = embt__reader_open(&probe, o.input, 0)))
            goto done;
        file_size = probe.size;
        embt__reader_close(&probe);
    }
    if (o.resume) {
        /* a resumed run continues the same corpus: its size must not have changed */
        if ((st = embt_file_open(&rf, o.resume, &embt__open_verified)))
            goto done;
        size_t mlen;
        const char *mtext = embt_file_metadata(rf, &mlen);
        if ((st = embt_meta_parse(&rmeta, mtext ? mtext : "", mlen)) ||
            (st = load_resume(s, &o, rf, rmeta)))
            goto done;
        const char *pn;
        size_t pl;
        pretrained_name =
            embt_meta_get(&pn, &pl, rmeta, "training.pretrained") == EMBT_OK ? pn : NULL;
        uint64_t saved_size;
        if (embt__meta_get_u64(&saved_size, rmeta, "training.input_size", true) == EMBT_OK &&
            saved_size != file_size) {
            st = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, "corpus", 0,
                             "it has %llu bytes, the interrupted run read %llu",
                             (unsigned long long)file_size, (unsigned long long)saved_size);
            goto done;
        }
        /* a thread continues where it stopped: inside the corpus (found by fuzz_resume) */
        for (unsigned i = 0; i < s->threads; i++)
            if (s->th[i].offset > file_size) {
                st =
                    embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, "corpus", 0,
                                "training.state.thread%u.offset %llu is beyond its %llu bytes", i,
                                (unsigned long long)s->th[i].offset, (unsigned long long)file_size);
                goto done;
            }
    } else {
        if (o.dim == 0 || o.dim > EMBT_SG_DIM_MAX || o.window == 0 || o.threads == 0 ||
            o.threads > 1024 || o.neg > EMBT_SG_NEG_MAX || !(o.lr > 0) || isinf(o.lr) ||
            !(o.sample >= 0) || isinf(o.sample)) {
            st = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                             "bad settings: dim (<= %u), window and threads (<= 1024) must be "
                             "positive, neg <= %u, lr > 0 and sample >= 0 finite",
                             EMBT_SG_DIM_MAX, EMBT_SG_NEG_MAX);
            goto done;
        }
        s->epochs = o.epoch;
        s->window = o.window;
        s->neg = o.neg;
        s->sample = o.sample;
        s->lr0 = o.lr;
        s->threads = o.threads;
        const embt_table *pt = NULL;
        uint32_t n_pre = 0;
        if (o.pretrained) {
            const embt_vocab *pv;
            if ((st = embt_file_open(&pf, o.pretrained, &embt__open_verified)) ||
                (st = embt_file_vocab(&pv, pf, NULL)))
                goto done;
            if (embt_file_table(&pt, pf, "embedding") != EMBT_OK || embt_table_vocab(pt) != pv) {
                pt = NULL;
                for (size_t i = 0; i < embt_file_table_count(pf) && !pt; i++)
                    if (embt_table_vocab(embt_file_table_at(pf, i)) == pv &&
                        embt_table_rank(embt_file_table_at(pf, i)) == 2)
                        pt = embt_file_table_at(pf, i);
            }
            if (!pt) {
                st = embt__error(EMBT_ENOTFOUND, EMBT_NO_OFFSET, NULL, 0,
                                 "the pretrained file has no table tied to its first vocabulary");
                goto done;
            }
            n_pre = embt_vocab_size(pv);
            if (embt_table_cols(pt) == 0 || embt_table_cols(pt) > EMBT_SG_DIM_MAX) {
                st = embt__error(
                    EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                    "the pretrained table '%s' has %llu columns; skip-gram takes 1 to %u",
                    embt_table_name(pt), (unsigned long long)embt_table_cols(pt), EMBT_SG_DIM_MAX);
                goto done;
            }
            o.dim = (uint32_t)embt_table_cols(pt);
            if ((st = embt__vocab_append_file(&s->vocab, pv, false)))
                goto done;
            s->n_frozen = o.freeze ? n_pre : 0;
        }
        s->dim = o.dim;
        if ((st = count_corpus(&s->vocab, o.input)) ||
            (st = embt__vocab_finish(&s->vocab, n_pre, o.min_count ? o.min_count : 1)))
            goto done;
        s->vocab_size = s->vocab.n;
        for (uint32_t i = 0; i < s->vocab.n; i++)
            s->train_words += s->vocab.count[i];
        if (s->vocab_size == 0 || s->train_words == 0) {
            st = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, "corpus", 0,
                             "no word occurs min-count (%llu) times or more",
                             (unsigned long long)(o.min_count ? o.min_count : 1));
            goto done;
        }
        size_t n = (size_t)s->vocab_size * s->dim;
        s->syn0 = embt__malloc(n * sizeof(float));
        s->syn1 = embt__calloc(n, sizeof(float));
        if (!s->syn0 || !s->syn1) {
            st = embt__error_nomem();
            goto done;
        }
        if (pt) {
            if ((st = embt__table_read_f32(s->syn0, pt, n_pre, s->dim)))
                goto done;
            const embt_table *pc;
            if (embt_file_table(&pc, pf, "context") == EMBT_OK && embt_table_rows(pc) == n_pre &&
                embt_table_cols(pc) == s->dim &&
                (st = embt__table_read_f32(s->syn1, pc, n_pre, s->dim)))
                goto done;
        }
        embt_init_options init = o.init;
        if (init.kind == EMBT_INIT_UNIFORM && init.low == 0 && init.high == 0) {
            init.low = -0.5 / s->dim;
            init.high = 0.5 / s->dim;
        }
        init.seed = o.seed;
        init.fan_in = init.fan_in ? init.fan_in : s->dim;
        embt_matrix fresh = {s->syn0 + (size_t)n_pre * s->dim, s->vocab_size - n_pre, s->dim};
        report->new_words = s->vocab_size - n_pre;
        if (fresh.rows > 0 && (st = embt_init_matrix(&fresh, &init)))
            goto done;
        if (o.optimizer.kind != EMBT_OPTIM_SGD) {
            s->use_optim = 1;
            if ((st = embt_optim_init(&s->opt0, &o.optimizer, s->vocab_size, s->dim)) ||
                (st = embt_optim_init(&s->opt1, &o.optimizer, s->vocab_size, s->dim)))
                goto done;
        }
        s->th = embt__calloc(s->threads, sizeof *s->th);
        if (!s->th) {
            st = embt__error_nomem();
            goto done;
        }
        uint64_t sm = o.seed;
        for (unsigned i = 0; i < s->threads; i++) {
            s->th[i].rng = splitmix64(&sm);
            s->th[i].offset = file_size * i / s->threads;
        }
    }
    s->counts = s->vocab.count;
    for (unsigned i = 0; i < s->threads; i++) {
        s->th[i].s = s;
        s->th[i].id = i;
        s->th[i].start = file_size * i / s->threads;
    }
    s->input_size = file_size;
    if ((st = build_tables(s)))
        goto done;
    s->train_block = pick_train_block();
    report->vocab_size = s->vocab_size;
    report->train_words = s->train_words;
    s->words_at_start = atomic_load(&s->words_done);
    s->stop_after = o.stop_after_words;
    /* pass 2: train */
    double t0 = now_seconds(), last_t = t0, last_loss = 0;
    uint64_t last_pairs = 0;
    atomic_store(&s->running, s->threads);
    unsigned started = 0;
    for (; started < s->threads; started++)
        if (pthread_create(&s->th[started].tid, NULL, worker, &s->th[started]) != 0) {
            atomic_store(&s->stop, 1);
            atomic_fetch_sub(&s->running, s->threads - started);
            st = embt__error(EMBT_ERROR, EMBT_NO_OFFSET, NULL, 0, "cannot start a thread");
            break;
        }
    uint64_t total = (uint64_t)s->epochs * s->train_words;
    for (;;) {
        bool finished = atomic_load(&s->running) == 0;
        if (!finished) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (o.stop_flag && *o.stop_flag)
            atomic_store(&s->stop, 1);
        if (o.progress) {
            double now = now_seconds();
            double loss = 0;
            uint64_t pairs = 0;
            for (unsigned i = 0; i < started; i++) {
                loss += atomic_load_explicit(&s->th[i].loss_sum, memory_order_relaxed);
                pairs += atomic_load_explicit(&s->th[i].pairs, memory_order_relaxed);
            }
            uint64_t done_w = atomic_load(&s->words_done);
            embt_train_progress p;
            p.words_done = done_w;
            p.words_total = total;
            p.fraction = total ? (double)done_w / (double)total : 1;
            if (p.fraction > 1)
                p.fraction = 1;
            double el = now - t0;
            double run_words = (double)(done_w - s->words_at_start);
            p.words_per_sec_thread = el > 0 ? run_words / el / s->threads : 0;
            p.loss = pairs > last_pairs ? (loss - last_loss) / (double)(pairs - last_pairs) : 0;
            p.lr = alpha_at(s, done_w);
            p.eta_seconds = run_words > 0 ? el * ((double)total - done_w) / run_words : 0;
            if (p.eta_seconds < 0)
                p.eta_seconds = 0;
            o.progress(&p, o.progress_user);
            last_t = now;
            last_loss = loss;
            last_pairs = pairs;
        }
        if (finished)
            break;
    }
    (void)last_t;
    for (unsigned i = 0; i < started; i++)
        pthread_join(s->th[i].tid, NULL);
    double secs = now_seconds() - t0;
    for (unsigned i = 0; i < started && !st; i++)
        if (s->th[i].st) {
            *embt__error_record() = s->th[i].err;
            st = s->th[i].st;
        }
    if (st)
        goto done;
    int completed = 1;
    double loss = 0;
    uint64_t pairs = 0;
    for (unsigned i = 0; i < s->threads; i++) {
        completed &= s->th[i].epoch >= s->epochs;
        loss += atomic_load(&s->th[i].loss_sum);
        pairs += atomic_load(&s->th[i].pairs);
    }
    report->completed = completed;
    report->words_done = atomic_load(&s->words_done);
    report->seconds = secs;
    report->words_per_sec_thread =
        secs > 0 ? (double)(report->words_done - s->words_at_start) / secs / s->threads : 0;
    report->loss = pairs ? loss / (double)pairs : 0;
    st = write_output(s, &o, pretrained_name, completed);
done:
    embt_optim_release(&s->opt0);
    embt_optim_release(&s->opt1);
    embt__free(s->syn0);
    embt__free(s->syn1);
    embt__free(s->neg_table);
    embt__free(s->th);
    embt__vocab_release(&s->vocab);
    embt_meta_free(rmeta);
    embt_file_close(rf);
    embt_file_close(pf);
    embt__free(s);
    return st;
}
