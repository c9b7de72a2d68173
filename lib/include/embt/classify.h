/* embt/classify.h: fastText-style supervised text classification: nn.EmbeddingBag(mode='mean') over
 * word and hashed word n-gram rows, then nn.Linear (weight and bias), then softmax cross-entropy,
 * trained by SGD with fastText's linear learning-rate decay and lock-free (hogwild) threads; loading
 * the resulting .embt model to predict labels of text and to compute fastText's `test` metrics.
 *
 * Input lines are `__label__a [__label__b ...] word word ...`: tokens are separated by ASCII
 * whitespace (space, \t, \n, \v, \f, \r); a token starting with the label prefix is a label, anything
 * else a word; every line ends with the word `</s>` (fastText's EOS). Features of a line, in order:
 * the ids of its known words (and `</s>`), then, for word_ngrams N > 1, one row per n-gram of 2..N
 * consecutive words (unknown words included): h = H(w_i); h = h * 116049371 + H(w_j) for j = i+1..,
 * in uint64 arithmetic over the sign-extended 32-bit hashes, row nwords + h mod bucket, where H is
 * fastText's FNV-1a 32 over bytes taken as signed chars.
 *
 * The model file (see embt_classify_train()): vocabulary `words` (with counts, `</s>` included),
 * vocabulary `labels` (with counts, prefix kept), table `embedding` (nwords, dim) tied to `words`,
 * stand-alone table `embedding.ngrams` (bucket, dim) when bucket > 0 (the extra rows of the same
 * EmbeddingBag: row nwords + b of the bag is row b of this table), `linear.weight` (nlabels, dim) and
 * `linear.bias` (rank 1, nlabels), both tied to `labels`, and the settings under `training:` in the
 * metadata.
 *
 * Thread safety: embt_classify_train() and embt_classify_sgd_step() use only their arguments; an
 * embt_classifier belongs to one thread at a time (it holds scratch buffers). */
#ifndef EMBT_CLASSIFY_H
#define EMBT_CLASSIFY_H
#include <signal.h>
#include <stdio.h>

#include "common.h"
#include "file.h"
#include "ops.h"
#ifdef __cplusplus
extern "C" {
#endif

/* ---- one SGD step (the kernel of training, exposed for checks against PyTorch) ---------------- */

/* One torch.optim.SGD(lr) step of CrossEntropyLoss(Linear(EmbeddingBag(mean)(ids))) on one bag:
 *   h = mean_i E[ids_i]                          E (rows, dim), ids (n_ids), n_ids >= 1
 *   z = W h + b; p = softmax(z)                  W (nlabels, dim), b (nlabels) or NULL (no bias)
 *   loss = -log p[target]
 *   g = sum_j lr (y_j - p_j) W_j (W before the step); W_j += lr (y_j - p_j) h; b_j += lr (y_j - p_j)
 *   E[ids_i] += g / n_ids for every occurrence whose row is not frozen
 * frozen: NULL or one byte per row of E (non-zero: no update). This is fastText's update (softmax
 * loss, gradient scaled by 1/#features) plus the bias. *loss_out may be NULL. Two builds of the
 * step: portable loops (separate multiply and add, dot products in a fixed 8-lane order, expf) and,
 * when the CPU has AVX2 and FMA, intrinsics with fused multiply-adds and an 8-wide exp (within
 * 1 ulp of expf); they agree to a few ulp, not bitwise, and both match PyTorch within
 * 2e-6 + 2e-6 |x| on the test fixture. EMBT_OPS_GENERIC in flags forces the portable one.
 * Errors: EMBT_EINVAL (shapes, an id or target out of range, n_ids 0), EMBT_ENOMEM. */
EMBT_API embt_status embt_classify_sgd_step(float *loss_out, embt_matrix *embedding,
                                            embt_matrix *weight, embt_matrix *bias,
                                            const int64_t *ids, size_t n_ids, uint32_t target,
                                            float lr, const uint8_t *frozen, unsigned flags);

/* ---- training -------------------------------------------------------------------------------- */

typedef struct embt_classify_progress {
    double progress;        /* processed tokens / (epoch * ntokens), in [0, 1] */
    double lr;              /* current learning rate */
    double loss;            /* mean loss of thread 0's updates so far */
    double tokens_per_sec;  /* per thread, since the start of this run's training */
    double seconds_elapsed; /* since the start of training */
} embt_classify_progress;

/* Called by thread 0 about every 10,000 tokens; returning non-zero stops training (EMBT_ECANCELED,
 * nothing written; to stop with a resumable file, use stop_flag instead). */
typedef int (*embt_classify_progress_fn)(void *user, const embt_classify_progress *progress);

typedef struct embt_classify_options {
    unsigned version;        /* EMBT_CLASSIFY_OPTIONS_VERSION */
    uint32_t dim;            /* 0: the pretrained table's cols, or 100 */
    double lr;               /* > 0; default 0.1 */
    uint32_t epoch;          /* >= 1; default 5 */
    uint32_t min_count;      /* words seen fewer times are unknown; default 1 */
    uint32_t word_ngrams;    /* >= 1; default 1 (no n-grams) */
    uint64_t bucket;         /* n-gram rows; default 2,000,000; forced to 0 when word_ngrams <= 1 */
    uint32_t threads;        /* >= 1; default 1 (results reproducible only with 1) */
    uint64_t seed;           /* initialisation and label choice; default 0 */
    uint32_t lr_update_rate; /* tokens between updates of the shared progress; default 100 */
    const char *label_prefix;      /* default "__label__" */
    const embt_table *pretrained;  /* NULL, or a table tied to a vocabulary (from_pretrained): as
                                   * fastText's -pretrainedVectors, its tokens missing from the
                                   * training words are appended to `words` (count 0) and every
                                   * row is copied (any dtype) */
    int freeze;                    /* with pretrained: rows copied from it are never updated */
    const embt_init_options *init; /* embedding rows not copied: NULL for fastText's U(+-1/dim)
                                    * seeded with `seed`, else this initialiser (its own seed) */
    const char *pretrained_name;   /* recorded in the metadata (e.g. the file name); may be NULL */
    int bias; /* train linear.bias (nn.Linear's bias); default 0: it stays 0, as
                                 * fastText has none (with lr 1 a trained bias costs about 0.02 P@1
                                 * on cooking) */
    embt_classify_progress_fn progress; /* may be NULL */
    void *progress_user;
    unsigned flags; /* EMBT_OPS_GENERIC: portable kernels only */
    /* version 2: */
    const char *resume;        /* NULL, or a file written by embt_classify_train() to continue:
                                * every setting above except progress and flags comes from it
                                * (pretrained, init and the others are ignored) */
    uint64_t stop_after_lines; /* 0, or stop once this many lines were trained in this run, as
                                * on a signal (tests) */
    volatile sig_atomic_t *stop_flag; /* NULL, or a flag a signal handler sets: each thread
                                       * finishes its current line and a resumable file is
                                       * written */
} embt_classify_options;
#define EMBT_CLASSIFY_OPTIONS_VERSION 2 /* version 1 (without resume, stop_*) is still accepted */
/* clang-format off */
#define EMBT_CLASSIFY_OPTIONS_INIT                                                             \
    { EMBT_CLASSIFY_OPTIONS_VERSION, 0, 0.1, 5, 1, 1, 2000000, 1, 0, 100, "__label__", NULL, 0, \
      NULL, NULL, 0, NULL, NULL, 0, NULL, 0, NULL }
/* clang-format on */

typedef struct embt_classify_report {
    uint64_t lines;   /* training lines used (with a label) */
    uint64_t ntokens; /* tokens of those lines, labels and `</s>` included (fastText's count) */
    uint32_t nwords;  /* word vocabulary, `</s>` included */
    uint32_t nlabels;
    uint64_t bucket;
    uint32_t dim;
    uint32_t pretrained_rows; /* rows copied from the pretrained table (all of its words) */
    double loss;              /* mean loss over every update */
    double train_seconds;     /* the SGD loop only */
    double total_seconds;     /* reading, initialising, training and writing */
    int completed;            /* 1: every epoch done; 0: stopped early, the output can be resumed */
} embt_classify_report;

/* Trains on the labelled text file `input` and writes the model to `output` (atomically, through
 * embt_writer). The file is read twice (vocabulary, then encoding); the encoded lines are held in
 * memory as uint32 feature ids (about 4 bytes per word and per n-gram) plus 20 bytes per line, so
 * the memory is the tables, the vocabularies and that array. Each epoch, thread t runs SGD over its
 * contiguous share of the lines, in order; lr = opts->lr * (1 - processed / (epoch * ntokens)) with
 * `processed` updated every lr_update_rate tokens, as fastText. One label of a multi-label line is
 * drawn uniformly for each update from the thread's embt_rng (seed + thread). Initial weights:
 * embedding as opts->init (or U(+-1/dim)), then pretrained rows; linear.weight and linear.bias 0
 * (fastText's output matrix starts at 0). With threads > 1 each thread trains a private copy of
 * linear.weight and linear.bias and adds its change to the shared one every 32 lines (the embedding
 * rows are shared, hogwild). Blank lines are skipped.
 * Stopping: once *stop_flag is non-zero (read between lines by the single thread, or every 10 ms by
 * the calling thread when threads > 1) or stop_after_lines lines were trained in this run, each
 * thread finishes its current line and the output is written with report->completed 0: the same
 * tables plus, with freeze, `embedding.frozen` (u8, rank 1, tied to `words`: 1 for a row never
 * updated), and metadata `training.state.*`: completed, processed (the shared token count of the
 * lr schedule) and per thread t `thread<t>.{epoch, line, rng, tokens, loss_sum, updates}` (epochs
 * finished, the next line's index among the used lines, the label generator's xoshiro state as 64
 * hex digits, tokens not yet added to `processed`, the loss sum and update count). A run given that
 * file as `resume` takes the settings, vocabularies and tables from it, reads and encodes `input`
 * again (it must give the same lines: training.lines, training.ntokens and training.input_crc32,
 * the CRC-32 of the lines each followed by LF), and continues every thread where it stopped. With
 * 1 thread, stopped then resumed runs write the same bytes as one uninterrupted run. The output may
 * name the resume file (atomic write).
 * Errors: EMBT_EPARSE (line and column set: invalid UTF-8 or NUL, a line with words but no label),
 * EMBT_ELIMIT (a line over 1 MiB, more than 2^32 - 2 words or features), EMBT_EINVAL (options;
 * no labelled line; pretrained dim differs; a resume file that is not a classifier's or whose
 * input differs), EMBT_ENOTFOUND (a key or table of the resume file is missing), EMBT_EIO,
 * EMBT_ENOMEM, EMBT_ECANCELED. `report` may be NULL. */
EMBT_API embt_status embt_classify_train(const char *input, const char *output,
                                         const embt_classify_options *opts,
                                         embt_classify_report *report);

/* ---- prediction ------------------------------------------------------------------------------ */

typedef struct embt_classifier embt_classifier;

/* Reads a model written by embt_classify_train() from an open file, which must outlive it: the
 * vocabularies and the embedding rows are read from the file, the linear layer is copied.
 * Errors: EMBT_ENOTFOUND (a vocabulary or table is missing), EMBT_EINVAL (shapes disagree, bad
 * metadata), EMBT_ENOMEM. On failure *out is NULL. */
EMBT_API embt_status embt_classifier_open(embt_classifier **out, const embt_file *file);
EMBT_API void embt_classifier_free(embt_classifier *classifier); /* NULL is fine */
EMBT_API uint32_t embt_classifier_nlabels(const embt_classifier *classifier);
/* The label's token with its prefix (borrowed from the file), *len_out bytes. */
EMBT_API const char *embt_classifier_label(const embt_classifier *classifier, uint32_t label,
                                           size_t *len_out);

typedef struct embt_label_prob {
    uint32_t label; /* id in the `labels` vocabulary */
    float prob;     /* softmax probability */
} embt_label_prob;

/* Predicts one line of text (`len` bytes, no newline needed; label tokens in it are ignored): the
 * best min(k, nlabels) labels with prob >= threshold into out (k entries), best first, ties by the
 * lower id; *n_out receives how many. A line with no feature (no known word, no n-gram) gives none.
 * Errors: EMBT_EPARSE (invalid UTF-8 or NUL; column set), EMBT_ENOMEM. */
EMBT_API embt_status embt_classifier_predict(embt_label_prob *out, size_t *n_out,
                                             embt_classifier *classifier, const char *text,
                                             size_t len, size_t k, float threshold);

typedef struct embt_classify_metrics {
    uint64_t examples;       /* lines with >= 1 known label and >= 1 feature */
    uint64_t gold;           /* sum of their known labels */
    uint64_t predicted;      /* sum of predictions (top k with prob >= threshold) */
    uint64_t predicted_gold; /* predictions that are gold labels */
    double precision;        /* predicted_gold / predicted (NaN when predicted = 0) */
    double recall;           /* predicted_gold / gold (NaN when gold = 0) */
    double loss;             /* mean over examples of the mean over gold labels of -log p */
} embt_classify_metrics;

/* fastText's `test`: reads labelled lines from `in` (labels unknown to the model are dropped; lines
 * left without label or feature are skipped) and sums as above.
 * Errors: EMBT_EPARSE (line and column set), EMBT_ELIMIT (a line over 1 MiB), EMBT_EIO, EMBT_ENOMEM. */
EMBT_API embt_status embt_classifier_test(embt_classify_metrics *out, embt_classifier *classifier,
                                          FILE *in, size_t k, float threshold);

#ifdef __cplusplus
}
#endif
#endif
