/* classify_state.h: where a classifier run stands (classify.c), kept in the metadata of its output
 * so that a stopped run can be resumed: the shared token count of the learning-rate schedule and
 * each thread's epoch, line, generator and loss (classify_state.c), plus a table reader for loading
 * such a file (its numbers are read with the strict embt__meta_get_u64() of internal.h). Never
 * installed. */
#ifndef EMBT_CLASSIFY_STATE_H
#define EMBT_CLASSIFY_STATE_H

#include "internal.h"

/* One training thread's place in the schedule. */
typedef struct cls_thread_state {
    uint32_t epoch;   /* epochs finished */
    uint64_t line;    /* index (among the used lines) of the next line to train in this epoch */
    embt_rng rng;     /* draws the label of a multi-label line */
    uint64_t tokens;  /* tokens trained but not yet added to the shared count */
    double loss_sum;  /* over every update of this thread, earlier runs included */
    uint64_t updates; /* lines trained by this thread, earlier runs included */
} cls_thread_state;

/* Records training.state.{completed, processed, thread<t>.{epoch, line, rng, tokens, loss_sum,
 * updates}} for th (threads): integers in decimal, the loss sum with %.17g (read back exactly), the
 * generator's four words as 64 hex digits. Errors: embt_meta_set()'s. */
embt_status cls__state_save(embt_meta *m, int completed, uint64_t processed,
                            const cls_thread_state *th, uint32_t threads);

/* Reads what cls__state_save() wrote into *processed_out and th (threads); *completed_out may be
 * NULL. Errors: EMBT_ENOTFOUND (a key missing), EMBT_EINVAL (a malformed value). */
embt_status cls__state_load(int *completed_out, uint64_t *processed_out, cls_thread_state *th,
                            uint32_t threads, const embt_meta *m);

/* The table `name` of f (into *out unless NULL) if it is (rows, cols); a resumed run checks the
 * shapes before it allocates by them. Errors: EMBT_ENOTFOUND, EMBT_EINVAL (shape). */
embt_status cls__check_table(const embt_table **out, const embt_file *f, const char *name,
                             uint64_t rows, uint64_t cols);

/* Copies the table `name` of f, which must be (rows, cols) (a rank-1 table reads as (rows, 1)),
 * into dst (rows, cols) as float32. Errors: EMBT_ENOTFOUND, EMBT_EINVAL (shape), the reader's. */
embt_status cls__read_table(float *dst, const embt_file *f, const char *name, uint64_t rows,
                            uint64_t cols);

#endif
