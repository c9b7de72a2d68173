/* embt/train.h: training on writable tables: the gradient of F.embedding (padding_idx,
 * scale_grad_by_freq), torch.optim's SGD, Adagrad and SparseAdam applied lazily to the rows a step
 * touched, with their state saved in a .embt file so training resumes exactly, and skip-gram with
 * negative sampling (word2vec.c's algorithm) on a text corpus streamed from disk.
 *
 * Thread safety: an embt_optim belongs to one thread at a time, except embt_optim_row(), which
 * hogwild trainers call from several threads on the same state without locks (as word2vec.c updates
 * its tables). embt_sg_train() runs its own threads and may be called from any thread. */
#ifndef EMBT_TRAIN_H
#define EMBT_TRAIN_H

#include <signal.h>

#include "common.h"
#include "file.h"
#include "meta.h"
#include "ops.h"
#include "writer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the gradient of F.embedding ------------------------------------------------------------- */

/* Backward of F.embedding as PyTorch 1.13's sparse backward (aten/src/ATen/native/Embedding.cpp):
 * occurrence i of ids (n) with output gradient grad_output[i] (n, cols) gives one row of the sparse
 * gradient, in order, duplicates not summed (torch's uncoalesced COO tensor), except that
 *   - occurrences of padding_idx (EMBT_NO_PADDING, or in [-rows, rows)) are dropped;
 *   - with scale_grad_by_freq, the row is multiplied by (float)(1.0f / count(id in ids)) (the dense
 *     backward's rule; PyTorch refuses it for sparse gradients, embt gives the same rows sparsely).
 * max_norm belongs to the forward pass: embt_matrix_gather() renormalises the table in place.
 * ids_out (n) and grad_out (n, cols) receive *n_out <= n rows. Errors: EMBT_EINVAL (an id or
 * padding_idx out of range; nothing written), EMBT_ENOMEM. */
EMBT_API embt_status embt_embedding_backward(int64_t *ids_out, float *grad_out, size_t *n_out,
                                             const int64_t *ids, const float *grad_output, size_t n,
                                             uint64_t rows, uint64_t cols, int64_t padding_idx,
                                             int scale_grad_by_freq);

/* ---- optimisers ----------------------------------------------------------------------------- */

typedef enum embt_optim_kind {
    EMBT_OPTIM_SGD = 0,     /* torch.optim.SGD (no momentum, no weight decay) */
    EMBT_OPTIM_ADAGRAD = 1, /* torch.optim.Adagrad (no weight decay: refused with sparse grads) */
    EMBT_OPTIM_ADAM = 2     /* torch.optim.SparseAdam */
} embt_optim_kind;

typedef struct embt_optim_options {
    unsigned version;                 /* EMBT_OPTIM_OPTIONS_VERSION */
    embt_optim_kind kind;             /* default EMBT_OPTIM_SGD */
    double lr;                        /* see embt_optim_defaults() */
    double lr_decay;                  /* Adagrad: clr = lr / (1 + (t - 1) lr_decay); default 0 */
    double initial_accumulator_value; /* Adagrad: the sums start here; default 0 */
    double beta1, beta2;              /* Adam: default 0.9, 0.999 */
    double eps;                       /* Adagrad 1e-10, Adam 1e-8 */
} embt_optim_options;
#define EMBT_OPTIM_OPTIONS_VERSION 1

/* Fills *o with torch.optim's defaults for `kind`: SGD lr 1e-3 (torch has no default: embt picks
 * Adam's), Adagrad lr 1e-2, lr_decay 0, initial_accumulator_value 0, eps 1e-10, SparseAdam lr 1e-3,
 * betas (0.9, 0.999), eps 1e-8. */
EMBT_API void embt_optim_defaults(embt_optim_options *o, embt_optim_kind kind);
/* "sgd", "adagrad", "adam"; NULL for another value. Static string. */
EMBT_API const char *embt_optim_name(embt_optim_kind kind);
/* Parses a name of embt_optim_name(). Errors: EMBT_EINVAL. */
EMBT_API embt_status embt_optim_parse(embt_optim_kind *out, const char *name);

/* The optimiser of one (rows, cols) table. Open struct: tests and trainers read the state.
 * Untouched rows keep their state and weights unchanged (no decay of m and v: SparseAdam's lazy
 * semantics, unlike dense Adam, which moves zero-gradient rows through momentum). */
typedef struct embt_optim {
    embt_optim_options opts;
    uint64_t rows, cols;
    float *sum;    /* Adagrad: (rows, cols) sums of squared gradients; NULL otherwise */
    float *m, *v;  /* Adam: (rows, cols) first and second moments; NULL otherwise */
    uint64_t step; /* steps taken on this table (t of the formulas after the next step: step + 1) */
} embt_optim;

/* Allocates the state for a (rows, cols) table: Adagrad sums = initial_accumulator_value, Adam m and
 * v = 0, step 0. *o is owned: free with embt_optim_release(). Errors: EMBT_EINVAL (bad options:
 * lr < 0, eps < 0, betas outside [0, 1)), EMBT_ENOMEM, EMBT_ELIMIT. On failure *o is empty. */
EMBT_API embt_status embt_optim_init(embt_optim *o, const embt_optim_options *opts, uint64_t rows,
                                     uint64_t cols);
/* Frees the state and empties *o. NULL and empty are fine. */
EMBT_API void embt_optim_release(embt_optim *o);

/* One optimiser step on `weight` (rows, cols) with the sparse gradient given as ids (n) and grad
 * (n, cols), duplicates allowed (embt_embedding_backward()'s output). step += 1, then, with t = step:
 *   SGD:      for each occurrence in order, W[k] += (float)(-lr) * g         (duplicates accumulate)
 *   Adagrad:  coalesce (sum duplicates in order); S[k] += g*g;
 *             W[k] += (float)(-clr) * (g / (sqrt(S[k]) + (float)eps)), clr = lr / (1 + (t-1) lr_decay)
 *   Adam:     coalesce; u = (g - m) * (1 - b1); m += u; w = (g*g - v) * (1 - b2); v += w;
 *             W[k] += (float)(-lr sqrt(1 - b2^t) / (1 - b1^t)) * ((u + m_old) / (sqrt(w + v_old) + eps))
 * exactly the float32 operations of torch/optim/_functional.py (sparse_adam) and adagrad.py (sparse
 * branch); eps is added to sqrt(v), not to sqrt(v-hat). An empty gradient (n = 0, e.g. only padding)
 * still counts the step, as PyTorch does. Errors: EMBT_EINVAL (an id out of range, shape mismatch;
 * nothing changed), EMBT_ENOMEM. */
EMBT_API embt_status embt_optim_step(embt_optim *o, embt_matrix *weight, const int64_t *ids,
                                     const float *grad, size_t n);

/* The update of one row for trainers that apply gradients row by row (skip-gram): w (cols), the
 * table's row `row`, gradient g (cols), learning rate lr (overriding opts.lr: trainers decay it) and
 * step t >= 1, with the formulas of embt_optim_step() for a single occurrence. Lock-free: callers
 * may race on the same row (hogwild). No argument checks (hot loop). */
EMBT_API void embt_optim_row(embt_optim *o, float *w, uint64_t row, const float *g, double lr,
                             uint64_t t);

/* Saving and resuming. embt_optim_write() adds the state tables of `table` to an open writer:
 * Adagrad "<table>.adagrad.sum", Adam "<table>.adam.m" and "<table>.adam.v" (f32, (rows, cols),
 * tied to `vocab` when not NULL); SGD has none. embt_optim_save_meta() records in `meta` the keys
 * optimizer.kind, optimizer.lr, optimizer.lr_decay, optimizer.initial_accumulator_value,
 * optimizer.beta1, optimizer.beta2, optimizer.eps (%.17g: exact) and optimizer.step.<table> (dots of
 * the table name replaced by '_'). embt_optim_load() restores *o from such a file: options from the
 * metadata, the step, and the state tables (checked to be (rows, cols)).
 * Errors: the writer's; EMBT_ENOTFOUND (a key or table missing), EMBT_EINVAL (bad values or shape),
 * EMBT_ENOMEM. */
EMBT_API embt_status embt_optim_write(const embt_optim *o, embt_writer *writer, const char *table,
                                      const char *vocab);
EMBT_API embt_status embt_optim_save_meta(const embt_optim *o, embt_meta *meta, const char *table);
EMBT_API embt_status embt_optim_load(embt_optim *o, const embt_file *file, const embt_meta *meta,
                                     const char *table, uint64_t rows, uint64_t cols);

/* ---- skip-gram with negative sampling ------------------------------------------------------- */

/* Negatives per pair at most (the usual values are 5 to 20): each thread holds the draws of one
 * sentence position, up to min(2 window, 999) contexts times neg ids, at most 400 kB a thread at
 * this limit. Options or a resume file asking for more are refused. */
#define EMBT_SG_NEG_MAX 100u

/* Vector size at most: `--dim`, a resume file's training.dim and a pretrained table's columns. A
 * pretrained table with no rows has columns that no byte of its file backs, so without this bound
 * a tiny file could ask for vocabulary x 2^31 floats. */
#define EMBT_SG_DIM_MAX (1u << 20)

/* What the progress callback receives (from the thread that called embt_sg_train(), ~10 times a
 * second, and once at the end). */
typedef struct embt_train_progress {
    double fraction;             /* of all epochs, in [0, 1] */
    double words_per_sec_thread; /* corpus words read per second per thread, this run */
    double loss;                 /* mean negative-sampling loss per (center, context) pair since
                                    * the previous call */
    double lr;                   /* current learning rate */
    double eta_seconds;          /* estimated time left */
    uint64_t words_done, words_total;
} embt_train_progress;

typedef void (*embt_train_progress_fn)(const embt_train_progress *progress, void *user);

typedef struct embt_sg_options {
    unsigned version;             /* EMBT_SG_OPTIONS_VERSION */
    const char *input;            /* the corpus: UTF-8 text, words split on space, tab, CR, LF, VT,
                                   * FF; a line is a sentence (cut every 1000 words) */
    const char *output;           /* the .embt written (atomically) */
    const char *pretrained;       /* NULL, or a .embt whose first vocabulary and its table
                                   * "embedding" (else its first table tied to it) start training */
    int freeze;                   /* keep the pretrained rows of `embedding` fixed */
    const char *resume;           /* NULL, or a file written by embt_sg_train() to continue: every
                                   * setting except input/output/threads/progress comes from it */
    uint32_t dim;                 /* default 100 (ignored with pretrained: the table's) */
    double lr;                    /* starting alpha, default 0.025 (word2vec.c's skip-gram) */
    uint32_t epoch;               /* default 5 */
    uint32_t window;              /* default 5 */
    uint32_t neg;                 /* default 5; at most EMBT_SG_NEG_MAX */
    double sample;                /* default 1e-3; 0 turns subsampling off */
    uint64_t min_count;           /* default 5 (new words only, when fine-tuning) */
    uint32_t threads;             /* default 1 */
    uint64_t seed;                /* default 1 */
    embt_optim_options optimizer; /* kind SGD by default; lr is ignored (alpha above is used) */
    embt_init_options init;       /* rows of new words; default uniform(-0.5/dim, 0.5/dim) with the
                                   * seed: word2vec.c's range (low = high = 0 asks for it) */
    uint64_t stop_after_words;    /* 0, or stop once this many words were read in this run, as on
                                   * a signal (tests) */
    volatile sig_atomic_t *stop_flag; /* NULL, or a flag a signal handler sets: threads finish
                                       * their current sentence and a resumable file is written */
    embt_train_progress_fn progress;
    void *progress_user;
} embt_sg_options;
#define EMBT_SG_OPTIONS_VERSION 1

/* Fills *o with the defaults above. */
EMBT_API void embt_sg_defaults(embt_sg_options *o);

typedef struct embt_sg_report {
    int completed;        /* 1: all epochs done; 0: stopped early, the output can be resumed */
    uint64_t vocab_size;  /* rows of the tables */
    uint64_t new_words;   /* rows added to the pretrained vocabulary (all rows from scratch) */
    uint64_t train_words; /* corpus words in the vocabulary, per epoch */
    uint64_t words_done;  /* words read over all epochs, including earlier runs */
    double seconds;       /* of this run's training (without the counting pass and the write) */
    double words_per_sec_thread;
    double loss; /* mean loss per pair over this run */
} embt_sg_report;

/* Trains skip-gram with negative sampling, word2vec.c's algorithm (Mikolov et al. 2013):
 * pass 1 counts the corpus (or takes the counts of `resume`); the vocabulary is the pretrained one in
 * its order then the new words with count >= min_count by decreasing count (ties: first seen), or the
 * words with count >= min_count by decreasing count. Pass 2 trains with `threads` threads (hogwild),
 * each reading its slice of the file (thread i starts at byte size * i / threads, after the word it
 * lands in) for train_words / threads words per epoch, word2vec.c's split. Per thread a 64-bit LCG
 * r = r * 25214903917 + 11 (word2vec.c's; seeded from seed and thread by splitmix64) draws:
 * subsampling (keep when (sqrt(c / (s T)) + 1) (s T) / c >= (r & 0xFFFF) / 65536), the window
 * b = r % window, negatives table[(r >> 16) % size] from a 10^7-slot table of count^0.75 (redrawn
 * never; a negative equal to the center is skipped). For each context word c of center w the input
 * row of c is trained to predict w: g = (label - sigmoid(f)) * alpha, sigmoid by word2vec.c's
 * 1000-entry table over [-6, 6] (f beyond it saturates). alpha = lr (1 - done / (epochs T + 1)),
 * floored at lr 1e-4, updated per sentence. Dot products sum 8 lanes then the lanes in order
 * (deterministic; one thread gives bit-identical runs). Adagrad and Adam apply each pair's row
 * gradients through embt_optim_row() with t = pairs trained so far.
 * The output has vocabulary "words" with counts, tables "embedding" and "context" (f32, tied),
 * the optimiser's state tables, and metadata `training.*` (settings and resume state).
 * Errors: EMBT_EIO (corpus or files), EMBT_EINVAL (options, a resume file of another kind, an empty
 * vocabulary), EMBT_ENOMEM, the reader's and writer's. The input files are never written. */
EMBT_API embt_status embt_sg_train(const embt_sg_options *opts, embt_sg_report *report);

#ifdef __cplusplus
}
#endif
#endif
