/* hand_classifier.h: a classifier written by hand, shared by tests/unit/test_classify.c and
 * tests/cli/test_cmd_predict.c. Header-only like test_util.h.
 * words </s> good bad, dim 2: rows (0,0), (2,0), (0,2); labels __label__x, __label__y; W = I,
 * b = 0. "good" gives h = (1, 0): p = (e/(e+1), 1/(e+1)) = (0.7310586, 0.2689414). */
#ifndef EMBT_TESTS_HAND_CLASSIFIER_H
#define EMBT_TESTS_HAND_CLASSIFIER_H

#include "test_util.h"

/* Writes the model as `name` in the test directory (with the training metadata a trained model
 * has when `metadata` is true) and returns its path. */
static inline const char *tu_hand_classifier(const char *name, bool metadata)
{
    const char *path = tu_path(name);
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, path, NULL));
    tu_add_vocab(w, "words", (const char *const[]){"</s>", "good", "bad", NULL});
    tu_add_vocab(w, "labels", (const char *const[]){"__label__x", "__label__y", NULL});
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    const float E[6] = {0, 0, 2, 0, 0, 2}, W[4] = {1, 0, 0, 1}, b[2] = {0, 0};
    ts.name = "embedding";
    ts.rows = 3;
    ts.cols = 2;
    ts.vocab = "words";
    TU_OK(embt_writer_add_table_f32(w, &ts, E));
    ts.name = "linear.weight";
    ts.rows = 2;
    ts.vocab = "labels";
    TU_OK(embt_writer_add_table_f32(w, &ts, W));
    ts.name = "linear.bias";
    ts.rank = 1;
    ts.cols = 1;
    TU_OK(embt_writer_add_table_f32(w, &ts, b));
    if (metadata) {
        const char meta[] = "training:\n  task: classify\n  word_ngrams: 1\n";
        TU_OK(embt_writer_set_metadata(w, meta, strlen(meta)));
    }
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    return path;
}

#endif
