/* fuzz_model.c: libFuzzer target for loading a classifier from a `.embt` a stranger wrote
 * (`embt predict` / `embt test`): embt_file_open_memory, then (for half of the lengths)
 * embt_file_verify, then embt_classifier_open, whose shapes, metadata (label prefix, word n-grams)
 * and tables all come from the file. A failure must be one of the documented statuses and return
 * no classifier. On success: every label reads back; predictions of a few lines (the model's own
 * first words and labels, n-grams, unknown words, an empty line) and of invalid UTF-8 behave as
 * documented: at most min(k, nlabels) hits, ids below nlabels, and when every probability is finite
 * they lie in [0, 1], sorted best first, summing to at most 1; and embt_classifier_test runs over a
 * few labelled lines. */
#include <math.h>
#include <stdbool.h>

#include "fuzz_common.h"

#define K_MAX 8

static void check_hits(const embt_label_prob *hits, size_t n, size_t k, uint32_t nlabels)
{
    FZ_CHECK(n <= k && n <= nlabels, "%zu hits for k %zu and %u labels", n, k, nlabels);
    bool finite = true;
    for (size_t i = 0; i < n; i++) {
        FZ_CHECK(hits[i].label < nlabels, "label %u of %u", hits[i].label, nlabels);
        finite = finite && isfinite(hits[i].prob);
    }
    if (!finite)
        return; /* NaN or infinite weights in the file: no order to check */
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        FZ_CHECK(hits[i].prob >= 0 && hits[i].prob <= 1.0f + 1e-5f, "probability %g",
                 (double)hits[i].prob);
        FZ_CHECK(i == 0 || hits[i].prob <= hits[i - 1].prob, "hits not sorted");
        sum += hits[i].prob;
    }
    FZ_CHECK(sum <= 1.0 + 1e-4, "probabilities sum to %g", sum);
}

/* A line made of the model's first words and its first label (so features exist). */
static size_t own_line(char *buf, size_t cap, const embt_file *f, const embt_classifier *c)
{
    size_t n = 0;
    const embt_vocab *words = NULL;
    if (embt_file_vocab(&words, f, "words") == EMBT_OK) {
        for (uint32_t i = 0; i < 6 && i < embt_vocab_size(words); i++) {
            size_t len = 0;
            const char *tok = embt_vocab_token(words, i, &len);
            if (tok && n + len + 2 < cap) {
                /* a token may hold a line break (any UTF-8 but NUL): the line stays one line */
                for (size_t j = 0; j < len; j++)
                    buf[n + j] = tok[j] == '\n' || tok[j] == '\r' ? ' ' : tok[j];
                n += len;
                buf[n++] = ' ';
            }
        }
    }
    size_t len = 0;
    const char *label = embt_classifier_label(c, 0, &len);
    if (label && n + len + 1 < cap) {
        for (size_t j = 0; j < len; j++)
            buf[n + j] = label[j] == '\n' || label[j] == '\r' ? ' ' : label[j];
        n += len;
    }
    buf[n] = '\0';
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = fz_copy(data, size);
    embt_file *f = NULL;
    embt_status st = embt_file_open_memory(&f, copy, size, NULL);
    bool verify = size % 2;
    if (st != EMBT_OK || (verify && embt_file_verify(f) != EMBT_OK)) {
        embt_file_close(f);
        free(copy);
        return 0;
    }
    embt_classifier *c = (embt_classifier *)1;
    st = embt_classifier_open(&c, f);
    if (st != EMBT_OK) {
        FZ_CHECK(st == EMBT_ENOTFOUND || st == EMBT_EINVAL || st == EMBT_EPARSE ||
                     st == EMBT_ELIMIT || st == EMBT_ECORRUPT,
                 "classifier_open failed with %s", embt_status_name(st));
        FZ_CHECK(c == NULL, "a failed open returned a classifier");
        embt_file_close(f);
        free(copy);
        return 0;
    }
    uint32_t nlabels = embt_classifier_nlabels(c);
    FZ_CHECK(nlabels >= 1, "a classifier with no label");
    for (uint32_t j = 0; j < nlabels && j < 64; j++) {
        /* an unverified file's tokens are checked as they are read */
        size_t len = 0;
        const char *label = embt_classifier_label(c, j, &len);
        FZ_CHECK(label != NULL || (!verify && embt_error_last()->code == EMBT_ECORRUPT),
                 "label %u does not read back", j);
    }

    char own[1024];
    size_t own_len = own_line(own, sizeof own, f, c);
    const char *lines[] = {own, "the of and a to in is", "zzqx unknown words only", "", " \t "};
    size_t lens[] = {own_len, 0, 0, 0, 0};
    embt_label_prob hits[K_MAX];
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        size_t len = i ? strlen(lines[i]) : lens[0];
        for (size_t k = 1; k <= K_MAX; k *= 2) {
            size_t n = K_MAX + 1;
            st = embt_classifier_predict(hits, &n, c, lines[i], len, k, 0.0f);
            /* the model's own tokens are only checked for UTF-8 by verification */
            FZ_CHECK(st == EMBT_OK || st == EMBT_ECORRUPT || (i == 0 && st == EMBT_EPARSE),
                     "predict '%s': %s", lines[i], embt_status_name(st));
            if (st == EMBT_OK)
                check_hits(hits, n, k, nlabels);
        }
    }
    size_t n = 0;
    st = embt_classifier_predict(hits, &n, c, "ok \xff bad", 8, 2, 0.0f);
    FZ_CHECK(st == EMBT_EPARSE, "invalid UTF-8 gave %s", embt_status_name(st));

    char test_text[2 * sizeof own + 64];
    int tl = snprintf(test_text, sizeof test_text, "%s\n__label__x the of\n\n%s zzqx\n", own, own);
    FZ_CHECK(tl > 0 && (size_t)tl < sizeof test_text, "test text of %d bytes", tl);
    FILE *in = fmemopen(test_text, (size_t)tl, "r");
    FZ_CHECK(in != NULL, "fmemopen");
    embt_classify_metrics m;
    st = embt_classifier_test(&m, c, in, 1 + size % 3, 0.0f);
    fclose(in);
    FZ_CHECK(st == EMBT_OK || st == EMBT_ECORRUPT || st == EMBT_EPARSE, "test: %s",
             embt_status_name(st));
    if (st == EMBT_OK)
        FZ_CHECK(m.predicted_gold <= m.predicted && m.predicted_gold <= m.gold && m.examples <= 3,
                 "metrics: %llu of %llu predicted, %llu gold, %llu examples",
                 (unsigned long long)m.predicted_gold, (unsigned long long)m.predicted,
                 (unsigned long long)m.gold, (unsigned long long)m.examples);

    embt_classifier_free(c);
    embt_file_close(f);
    free(copy);
    return 0;
}
