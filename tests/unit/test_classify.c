/* test_classify.c: the text classifier (embt/classify.h): one SGD step against PyTorch 1.13
 * (tests/fixtures/classify/torch_step.txt), frozen rows, fastText's hash and n-gram rows, training
 * that is deterministic with one thread and lowers the loss, the model file (verified, shapes,
 * metadata), malformed input lines with their line and column, prediction and test metrics on a
 * model written by hand, and training stopped (after N lines, by the flag) then resumed: the same
 * bytes as one run with one thread, frozen rows kept, another input refused. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify_data.h"
#include "alloc_hook.h"
#include "hand_classifier.h"
#include "test_util.h"

/* ---- the PyTorch reference ---- */

typedef struct ref_array {
    char name[16];
    size_t n;
    float f[64];
    int64_t i[64];
} ref_array;

static ref_array refs[32];
static size_t n_refs;

static void load_refs(void)
{
    const char *path = tu_fixture("classify", "torch_step.txt");
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    char line[4096];
    n_refs = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        ref_array *r = &refs[n_refs++];
        cr_assert_leq(n_refs, 32);
        char *p = line, *end;
        size_t k = strcspn(p, " ");
        cr_assert_lt(k, sizeof r->name);
        memcpy(r->name, p, k);
        r->name[k] = 0;
        p += k;
        r->n = strtoul(p, &end, 10);
        p = end;
        cr_assert_leq(r->n, 64);
        bool ints = !strncmp(r->name, "ids", 3) || !strncmp(r->name, "target", 6);
        for (size_t j = 0; j < r->n; j++) {
            unsigned long v = strtoul(p, &end, ints ? 10 : 16);
            cr_assert_neq(end, p, "short array %s", r->name);
            p = end;
            r->i[j] = (int64_t)v;
            uint32_t bits = (uint32_t)v;
            memcpy(&r->f[j], &bits, 4);
        }
    }
    fclose(f);
}

static const ref_array *ref(const char *name)
{
    for (size_t i = 0; i < n_refs; i++)
        if (!strcmp(refs[i].name, name))
            return &refs[i];
    cr_assert_fail("no reference array %s", name);
    return NULL;
}

/* |got - want| <= 2e-6 + 2e-6 |want|: PyTorch multiplies the mean's gradient by lr, embt folds lr
 * into the softmax error first (fastText's order), so the last bits may differ. */
static void expect_close(const float *got, const ref_array *want, const char *what)
{
    for (size_t i = 0; i < want->n; i++)
        cr_expect(fabsf(got[i] - want->f[i]) <= 2e-6f + 2e-6f * fabsf(want->f[i]),
                  "%s[%zu]: %.9g, PyTorch %.9g", what, i, (double)got[i], (double)want->f[i]);
}

static void run_reference(unsigned flags, float *E_out, float *W_out, float *b_out)
{
    load_refs();
    embt_matrix E = {0}, W = {0}, b = {0};
    TU_OK(embt_matrix_alloc(&E, 7, 5));
    TU_OK(embt_matrix_alloc(&W, 3, 5));
    TU_OK(embt_matrix_alloc(&b, 3, 1));
    memcpy(E.data, ref("E0")->f, 35 * 4);
    memcpy(W.data, ref("W0")->f, 15 * 4);
    memcpy(b.data, ref("b0")->f, 3 * 4);
    for (int s = 1; s <= 2; s++) {
        char name[16];
        snprintf(name, sizeof name, "ids%d", s);
        const ref_array *ids = ref(name);
        snprintf(name, sizeof name, "target%d", s);
        uint32_t target = (uint32_t)ref(name)->i[0];
        snprintf(name, sizeof name, "lr%d", s);
        float lr = ref(name)->f[0];
        float loss = 0;
        TU_OK(embt_classify_sgd_step(&loss, &E, &W, &b, ids->i, ids->n, target, lr, NULL, flags));
        snprintf(name, sizeof name, "loss%d", s);
        expect_close(&loss, ref(name), name);
        snprintf(name, sizeof name, "E%d", s);
        expect_close(E.data, ref(name), name);
        snprintf(name, sizeof name, "W%d", s);
        expect_close(W.data, ref(name), name);
        snprintf(name, sizeof name, "b%d", s);
        expect_close(b.data, ref(name), name);
    }
    memcpy(E_out, E.data, 35 * 4);
    memcpy(W_out, W.data, 15 * 4);
    memcpy(b_out, b.data, 3 * 4);
    embt_matrix_release(&E);
    embt_matrix_release(&W);
    embt_matrix_release(&b);
}

/* Both kernels are checked against PyTorch inside run_reference(). They no longer agree bitwise: the
 * AVX2+FMA step fuses multiply-adds, sums dot products in another order and has its own exp. */
Test(classify_step, two_sgd_steps_match_pytorch_with_both_kernels)
{
    float E1[35], W1[15], b1[3], E2[35], W2[15], b2[3];
    run_reference(0, E1, W1, b1);
    run_reference(EMBT_OPS_GENERIC, E2, W2, b2);
}

static float lcg_uniform(uint64_t *s)
{
    *s = *s * 6364136223846793005u + 1442695040888963407u;
    return (float)((double)(*s >> 40) / (double)(1u << 24)) - 0.5f;
}

/* |a - b| <= 1e-6 + 1e-5 |b| for every element: a few float32 ulp of the values involved (a rounding
 * difference in a 100-term dot product or in exp moves the results by about 1e-7 relative); a wrong
 * index, a skipped column or a missed update is orders of magnitude larger. */
static bool close_all(const float *a, const float *b, size_t n, size_t *at)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(a[i] - b[i]) <= 1e-6f + 1e-5f * fabsf(b[i]))) {
            *at = i;
            return false;
        }
    return true;
}

/* Every dim from 1 to 41 (each tail of the 32-, 8- and 4-column blocks) and label counts around the
 * 8-lane blocks, with a repeated id and a bias: three steps of the AVX2+FMA kernel and of the
 * portable one stay close. */
Test(classify_step, avx2_and_portable_kernels_agree_on_every_tail)
{
    static const size_t label_counts[] = {1, 3, 8, 9, 17, 733};
    for (size_t dim = 1; dim <= 41; dim++) {
        for (size_t li = 0; li < sizeof label_counts / sizeof *label_counts; li++) {
            size_t nl = label_counts[li], rows = 6;
            float *m[2][3];
            uint64_t seed = dim * 1000 + nl;
            for (int k = 0; k < 2; k++) {
                m[k][0] = malloc(rows * dim * sizeof(float));
                m[k][1] = malloc(nl * dim * sizeof(float));
                m[k][2] = malloc(nl * sizeof(float));
                cr_assert(m[k][0] && m[k][1] && m[k][2]);
            }
            for (size_t i = 0; i < rows * dim; i++)
                m[0][0][i] = m[1][0][i] = lcg_uniform(&seed);
            for (size_t i = 0; i < nl * dim; i++)
                m[0][1][i] = m[1][1][i] = 0.5f * lcg_uniform(&seed);
            for (size_t i = 0; i < nl; i++)
                m[0][2][i] = m[1][2][i] = 0.1f * lcg_uniform(&seed);
            for (int step = 0; step < 3; step++) {
                const int64_t ids[5] = {step, 5, 2, step, 4};
                uint32_t target = (uint32_t)((size_t)(step * 7) % nl);
                float loss[2];
                for (int k = 0; k < 2; k++) {
                    embt_matrix E = {m[k][0], rows, dim}, W = {m[k][1], nl, dim},
                                b = {m[k][2], nl, 1};
                    TU_OK(embt_classify_sgd_step(&loss[k], &E, &W, &b, ids, 5, target, 0.75f, NULL,
                                                 k ? EMBT_OPS_GENERIC : 0));
                }
                size_t at = 0;
                cr_expect(close_all(&loss[0], &loss[1], 1, &at), "dim %zu nl %zu: loss %.9g, %.9g",
                          dim, nl, (double)loss[0], (double)loss[1]);
                cr_expect(close_all(m[0][0], m[1][0], rows * dim, &at),
                          "dim %zu nl %zu step %d: E[%zu] %.9g, portable %.9g", dim, nl, step, at,
                          (double)m[0][0][at], (double)m[1][0][at]);
                cr_expect(close_all(m[0][1], m[1][1], nl * dim, &at),
                          "dim %zu nl %zu step %d: W[%zu] %.9g, portable %.9g", dim, nl, step, at,
                          (double)m[0][1][at], (double)m[1][1][at]);
                cr_expect(close_all(m[0][2], m[1][2], nl, &at),
                          "dim %zu nl %zu step %d: b[%zu] %.9g, portable %.9g", dim, nl, step, at,
                          (double)m[0][2][at], (double)m[1][2][at]);
            }
            for (int k = 0; k < 2; k++)
                for (int t = 0; t < 3; t++)
                    free(m[k][t]);
        }
    }
}

Test(classify_step, frozen_rows_stay_and_the_others_move_as_without_freeze)
{
    float Ea[12], Eb[12], E0[12];
    for (int k = 0; k < 12; k++)
        E0[k] = Ea[k] = Eb[k] = 0.1f * (float)(k % 5) - 0.2f;
    float Wa[6] = {0.5f, -0.5f, 0.25f, 0, 1, -1}, Wb[6];
    memcpy(Wb, Wa, sizeof Wa);
    embt_matrix A = {Ea, 4, 3}, B = {Eb, 4, 3}, WA = {Wa, 2, 3}, WB = {Wb, 2, 3};
    const int64_t ids[3] = {0, 2, 3};
    const uint8_t frozen[4] = {0, 0, 1, 0};
    TU_OK(embt_classify_sgd_step(NULL, &A, &WA, NULL, ids, 3, 1, 0.5f, NULL, 0));
    TU_OK(embt_classify_sgd_step(NULL, &B, &WB, NULL, ids, 3, 1, 0.5f, frozen, 0));
    for (int k = 0; k < 12; k++) {
        float orig = E0[k];
        if (k / 3 == 2)
            cr_expect_eq(Eb[k], orig, "frozen row 2 changed: [%d] %.9g, was %.9g", k, (double)Eb[k],
                         (double)orig);
        else
            cr_expect_eq(Eb[k], Ea[k]);
        if (k / 3 == 0 || k / 3 == 3)
            cr_expect_neq(Ea[k], orig, "row %d did not move", k / 3);
    }
    cr_expect(memcmp(Wa, Wb, sizeof Wa) == 0);
    TU_STATUS(embt_classify_sgd_step(NULL, &A, &WA, NULL, ids, 0, 1, 0.5f, NULL, 0), EMBT_EINVAL);
    TU_STATUS(embt_classify_sgd_step(NULL, &A, &WA, NULL, ids, 3, 2, 0.5f, NULL, 0), EMBT_EINVAL);
    const int64_t bad[1] = {4};
    TU_STATUS(embt_classify_sgd_step(NULL, &A, &WA, NULL, bad, 1, 0, 0.5f, NULL, 0), EMBT_EINVAL);
}

/* ---- fastText's hash and features ---- */

Test(classify_features, fasttext_hash_with_signed_bytes)
{
    /* values from fastText's Dictionary::hash (FNV-1a 32 over int8_t bytes), computed in Python */
    cr_expect_eq(cls__hash("</s>", 4), 3617362777u);
    cr_expect_eq(cls__hash("a", 1), 3826002220u);
    cr_expect_eq(cls__hash("good", 4), 4200608216u);
    cr_expect_eq(cls__hash("\xc3\xa9", 2), 1023043777u);
    cr_expect_eq(cls__hash("caf\xc3\xa9", 5), 1970454601u);
}

static uint32_t toy_words(const void *ctx, const char *s, size_t n)
{
    (void)ctx;
    static const char *w[] = {"</s>", "good", "bad"};
    for (uint32_t i = 0; i < 3; i++)
        if (strlen(w[i]) == n && !memcmp(w[i], s, n))
            return i;
    return EMBT_NONE_ID;
}

static uint32_t toy_labels(const void *ctx, const char *s, size_t n)
{
    (void)ctx;
    return n == 10 && !memcmp(s, "__label__x", 10) ? 0 : EMBT_NONE_ID;
}

Test(classify_features, words_eos_and_hashed_ngrams_as_fasttext)
{
    cls_featurizer fz = {"__label__", 9, toy_words, toy_labels, NULL, NULL, 3, 3, 1000, {0}};
    cls_vec feat = {0}, labels = {0};
    uint64_t ntok = 0, nw = 0;
    const char line[] = " good\t\xc3\xa9 __label__x __label__q bad \r";
    TU_OK(cls__features(&fz, line, strlen(line), &feat, &labels, &ntok, &nw));
    /* good, bad, </s>; then the 2- and 3-grams over good, é (unknown), bad, </s> (Python:
     * [716, 598, 254, 285, 548]) */
    const uint32_t want[] = {1, 2, 0, 716, 598, 254, 285, 548};
    cr_assert_eq(feat.n, 8);
    for (size_t i = 0; i < 8; i++)
        cr_expect_eq(feat.v[i], want[i], "feature %zu: %u, expected %u", i, feat.v[i], want[i]);
    cr_assert_eq(labels.n, 1);
    cr_expect_eq(labels.v[0], 0);
    cr_expect_eq(ntok, 6);
    cr_expect_eq(nw, 3);
    cls__vec_free(&feat);
    cls__vec_free(&labels);
    cls__vec_free(&fz.hashes);
}

/* ---- training ---- */

static embt_classify_options small_options(void)
{
    embt_classify_options o = EMBT_CLASSIFY_OPTIONS_INIT;
    o.dim = 8;
    o.lr = 0.5;
    o.epoch = 10;
    o.word_ngrams = 2;
    o.bucket = 64;
    o.seed = 7;
    return o;
}

static void train(const char *out, const embt_classify_options *o, embt_classify_report *rep)
{
    char in[PATH_MAX];
    snprintf(in, sizeof in, "%s", tu_fixture("classify", "train.txt"));
    TU_OK(embt_classify_train(in, out, o, rep));
}

static embt_classify_metrics evaluate(const char *model, const char *data, size_t k)
{
    embt_file *f = NULL;
    embt_classifier *c = NULL;
    TU_OK(embt_file_open(&f, model, NULL));
    TU_OK(embt_classifier_open(&c, f));
    FILE *in = fopen(data, "rb");
    cr_assert_not_null(in);
    embt_classify_metrics m;
    TU_OK(embt_classifier_test(&m, c, in, k, 0.0f));
    fclose(in);
    embt_classifier_free(c);
    embt_file_close(f);
    return m;
}

Test(classify_train, one_thread_is_deterministic_and_the_file_verifies, .init = tu_setup,
     .fini = tu_teardown)
{
    embt_classify_options o = small_options();
    embt_classify_report rep;
    const char *a = tu_path("a.embt");
    train(a, &o, &rep);
    char b[PATH_MAX];
    snprintf(b, sizeof b, "%s", tu_path("b.embt"));
    train(b, &o, NULL);
    size_t na, nb;
    void *da = tu_read_file(a, &na), *db = tu_read_file(b, &nb);
    cr_assert(na == nb && memcmp(da, db, na) == 0, "two runs gave different files");
    free(da);
    free(db);

    /* 14 labelled lines (the blank one skipped), labels by count: baking 6, eggs 5, knives 4 */
    cr_expect_eq(rep.lines, 14);
    cr_expect_eq(rep.nlabels, 3);
    cr_expect_eq(rep.bucket, 64);
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, a, NULL));
    TU_OK(embt_file_verify(f));
    const embt_vocab *words, *labels;
    TU_OK(embt_file_vocab(&words, f, "words"));
    TU_OK(embt_file_vocab(&labels, f, "labels"));
    size_t len;
    const char *tok = embt_vocab_token(labels, 0, &len);
    cr_expect(len == 15 && !memcmp(tok, "__label__baking", 15));
    uint64_t count;
    TU_OK(embt_vocab_count(&count, labels, 0));
    cr_expect_eq(count, 6);
    uint32_t eos;
    TU_OK(embt_vocab_find(&eos, words, "</s>", 4));
    cr_expect_eq(embt_vocab_eos_id(words), eos);
    TU_OK(embt_vocab_count(&count, words, eos));
    cr_expect_eq(count, 14);
    const embt_table *t;
    TU_OK(embt_file_table(&t, f, "embedding"));
    cr_expect(embt_table_vocab(t) == words && embt_table_cols(t) == 8);
    TU_OK(embt_file_table(&t, f, "embedding.ngrams"));
    cr_expect(embt_table_vocab(t) == NULL && embt_table_rows(t) == 64);
    TU_OK(embt_file_table(&t, f, "linear.weight"));
    cr_expect(embt_table_vocab(t) == labels && embt_table_rows(t) == 3 && embt_table_cols(t) == 8);
    TU_OK(embt_file_table(&t, f, "linear.bias"));
    cr_expect(embt_table_rank(t) == 1 && embt_table_rows(t) == 3);
    size_t ml;
    const char *meta = embt_file_metadata(f, &ml);
    cr_assert_not_null(meta);
    embt_meta *m = NULL;
    TU_OK(embt_meta_parse(&m, meta, ml));
    const char *v;
    TU_OK(embt_meta_get(&v, &ml, m, "training.word_ngrams"));
    cr_expect_str_eq(v, "2");
    TU_OK(embt_meta_get(&v, &ml, m, "training.task"));
    cr_expect_str_eq(v, "classify");
    embt_meta_free(m);
    embt_file_close(f);
}

Test(classify_train, loss_starts_at_log_labels_and_decreases_with_epochs, .init = tu_setup,
     .fini = tu_teardown)
{
    embt_classify_options o = small_options();
    const char *data = tu_fixture("classify", "train.txt");
    char data_copy[PATH_MAX];
    snprintf(data_copy, sizeof data_copy, "%s", data);
    /* a tiny lr: the output layer stays ~0, so every label has p = 1/3 */
    o.epoch = 1;
    o.lr = 1e-12;
    train(tu_path("m0.embt"), &o, NULL);
    embt_classify_metrics m0 = evaluate(tu_path("m0.embt"), data_copy, 1);
    cr_expect(fabs(m0.loss - log(3.0)) < 1e-6, "untrained loss %.9g", m0.loss);
    double prev = m0.loss;
    const uint32_t epochs[] = {1, 5, 20};
    o.lr = 0.5;
    for (int i = 0; i < 3; i++) {
        o.epoch = epochs[i];
        train(tu_path("m.embt"), &o, NULL);
        embt_classify_metrics m = evaluate(tu_path("m.embt"), data_copy, 1);
        cr_expect_lt(m.loss, prev, "epoch %u: loss %.9g not below %.9g", epochs[i], m.loss, prev);
        prev = m.loss;
        if (epochs[i] == 20)
            cr_expect_eq(m.predicted_gold, 14, "20 epochs should fit the 14 training lines");
    }
}

Test(classify_train, two_threads_train_a_usable_model, .init = tu_setup, .fini = tu_teardown)
{
    embt_classify_options o = small_options();
    o.threads = 2;
    o.epoch = 30;
    embt_classify_report rep;
    train(tu_path("t.embt"), &o, &rep);
    char data[PATH_MAX];
    snprintf(data, sizeof data, "%s", tu_fixture("classify", "train.txt"));
    embt_classify_metrics m = evaluate(tu_path("t.embt"), data, 1);
    cr_expect_eq(m.examples, 14);
    cr_expect_geq(m.predicted_gold, 12);
}

/* A pretrained table with "bread" (a training word) and "pastry" (not one), rows[k] = k - 7.5. */
static void write_pretrained(const char *pre, float rows[16])
{
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, pre, NULL));
    tu_add_vocab(w, "words", (const char *const[]){"bread", "pastry", NULL});
    for (int k = 0; k < 16; k++)
        rows[k] = (float)k - 7.5f;
    tu_add_table(w, "embedding", 2, 8, "words", rows);
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
}

Test(classify_train, pretrained_rows_are_copied_and_frozen, .init = tu_setup, .fini = tu_teardown)
{
    const char *pre = tu_path("pre.embt");
    float rows[16];
    write_pretrained(pre, rows);
    embt_file *pf = NULL;
    TU_OK(embt_file_open(&pf, pre, NULL));
    embt_classify_options o = small_options();
    TU_OK(embt_file_table(&o.pretrained, pf, "embedding"));
    o.dim = 0; /* taken from the table */
    o.freeze = 1;
    embt_classify_report rep;
    train(tu_path("p.embt"), &o, &rep);
    embt_file_close(pf);
    cr_expect_eq(rep.pretrained_rows, 2);
    cr_expect_eq(rep.dim, 8);
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, tu_path("p.embt"), NULL));
    const embt_vocab *words;
    const embt_table *t;
    TU_OK(embt_file_vocab(&words, f, "words"));
    TU_OK(embt_file_table(&t, f, "embedding"));
    uint32_t id;
    float got[8];
    TU_OK(embt_vocab_find(&id, words, "bread", 5));
    TU_OK(embt_table_read_row_f32(got, t, id));
    cr_expect(memcmp(got, rows, sizeof got) == 0, "frozen row changed");
    TU_OK(embt_vocab_find(&id, words, "pastry", 6));
    cr_expect_eq(id, embt_vocab_size(words) - 1, "a pretrained-only word comes last");
    TU_OK(embt_table_read_row_f32(got, t, id));
    cr_expect(memcmp(got, rows + 8, sizeof got) == 0);
    embt_file_close(f);
}

/* ---- malformed input ---- */

static void expect_parse_error(const char *text, uint32_t line, uint32_t column)
{
    const char *in = tu_path("bad.txt");
    tu_write_file(in, text, strlen(text));
    embt_classify_options o = small_options();
    TU_STATUS(embt_classify_train(in, tu_path("bad.embt"), &o, NULL), EMBT_EPARSE);
    cr_expect_eq(embt_error_last()->line, line);
    cr_expect_eq(embt_error_last()->column, column);
    cr_expect_eq(access(tu_path("bad.embt"), F_OK), -1, "no model may be written");
}

Test(classify_train, malformed_lines_are_named_by_line_and_column, .init = tu_setup,
     .fini = tu_teardown)
{
    expect_parse_error("__label__a fine\n\n__label__b ok\nno label here\n", 4, 1);
    expect_parse_error("__label__a fine\n__label__b caf\xc3 au lait\n", 2, 15);
    expect_parse_error("__label__a fine\n__label__b \xed\xa0\x80\n", 2, 12);
    TU_STATUS(embt_classify_train(tu_path("missing.txt"), tu_path("x.embt"), NULL, NULL), EMBT_EIO);
    tu_write_file(tu_path("empty.txt"), "\n\n", 2);
    TU_STATUS(embt_classify_train(tu_path("empty.txt"), tu_path("x.embt"), NULL, NULL),
              EMBT_EINVAL);
}

/* ---- prediction on a model written by hand ---- */

static const char *hand_model(void)
{
    return tu_hand_classifier("hand.embt", true);
}

Test(classify_predict, probabilities_order_ties_and_threshold, .init = tu_setup,
     .fini = tu_teardown)
{
    embt_file *f = NULL;
    embt_classifier *c = NULL;
    TU_OK(embt_file_open(&f, hand_model(), NULL));
    TU_OK(embt_classifier_open(&c, f));
    embt_label_prob res[2];
    size_t n;
    TU_OK(embt_classifier_predict(res, &n, c, "good", 4, 2, 0.0f));
    cr_assert_eq(n, 2);
    cr_expect(res[0].label == 0 && fabsf(res[0].prob - 0.7310586f) < 1e-6f);
    cr_expect(res[1].label == 1 && fabsf(res[1].prob - 0.2689414f) < 1e-6f);
    TU_OK(embt_classifier_predict(res, &n, c, "__label__y bad", 14, 2, 0.5f));
    cr_assert_eq(n, 1);
    cr_expect_eq(res[0].label, 1);
    /* equal scores: the lower id first; an unknown word leaves </s> alone (h = 0) */
    TU_OK(embt_classifier_predict(res, &n, c, "good bad", 8, 2, 0.0f));
    cr_assert_eq(n, 2);
    cr_expect(res[0].label == 0 && res[1].label == 1 && res[0].prob == 0.5f);
    TU_OK(embt_classifier_predict(res, &n, c, "zebra", 5, 1, 0.0f));
    cr_expect(n == 1 && res[0].prob == 0.5f && res[0].label == 0);
    TU_STATUS(embt_classifier_predict(res, &n, c, "go\xffod", 5, 1, 0.0f), EMBT_EPARSE);
    cr_expect_eq(embt_error_last()->column, 3);
    size_t len;
    const char *lab = embt_classifier_label(c, 1, &len);
    cr_expect(len == 10 && !memcmp(lab, "__label__y", 10));
    embt_classifier_free(c);
    embt_file_close(f);
}

Test(classify_predict, test_metrics_as_fasttext, .init = tu_setup, .fini = tu_teardown)
{
    const char *model = hand_model();
    const char *data = tu_path("t.txt");
    const char text[] = "__label__x good\n"           /* predicted x: right */
                        "__label__y good\n"           /* predicted x: wrong */
                        "__label__x __label__y bad\n" /* predicted y: right, 2 gold */
                        "__label__z good\n"           /* unknown label: skipped */
                        "no label at all\n"           /* skipped */
                        "\n";
    tu_write_file(data, text, strlen(text));
    embt_classify_metrics m = evaluate(model, data, 1);
    cr_expect_eq(m.examples, 3);
    cr_expect_eq(m.gold, 4);
    cr_expect_eq(m.predicted, 3);
    cr_expect_eq(m.predicted_gold, 2);
    cr_expect(fabs(m.precision - 2.0 / 3.0) < 1e-12 && fabs(m.recall - 0.5) < 1e-12);
    m = evaluate(model, data, 2);
    cr_expect_eq(m.predicted, 6);
    cr_expect_eq(m.predicted_gold, 4);
    cr_expect(fabs(m.recall - 1.0) < 1e-12);
}

Test(classify_predict, a_file_without_the_tables_is_not_a_classifier, .init = tu_setup,
     .fini = tu_teardown)
{
    const char *path = tu_path("plain.embt");
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, path, NULL));
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    TU_OK(embt_writer_vocab_begin(w, &vs));
    TU_OK(embt_writer_vocab_add(w, "a", 1, 0, NULL));
    TU_OK(embt_writer_vocab_end(w));
    const float row[2] = {1, 2};
    tu_add_table(w, "embedding", 1, 2, "words", row);
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    embt_file *f = NULL;
    embt_classifier *c = NULL;
    TU_OK(embt_file_open(&f, path, NULL));
    TU_STATUS(embt_classifier_open(&c, f), EMBT_ENOTFOUND);
    cr_expect_null(c);
    embt_file_close(f);
}

/* ---- stopping and resuming ---- */

/* The metadata value of `key` in the .embt at `path`, copied into buf. */
static const char *meta_value(const char *path, const char *key, char *buf, size_t cap)
{
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, NULL));
    size_t len;
    const char *text = embt_file_metadata(f, &len);
    embt_meta *m = NULL;
    TU_OK(embt_meta_parse(&m, text ? text : "", text ? len : 0));
    const char *v;
    TU_OK(embt_meta_get(&v, &len, m, key));
    snprintf(buf, cap, "%.*s", (int)len, v);
    embt_meta_free(m);
    embt_file_close(f);
    return buf;
}

static bool has_table(const char *path, const char *name)
{
    embt_file *f = NULL;
    const embt_table *t;
    TU_OK(embt_file_open(&f, path, NULL));
    bool found = embt_file_table(&t, f, name) == EMBT_OK;
    embt_file_close(f);
    return found;
}

/* Trains with `o` stopped after `stop` lines into `stopped` (checked: verifies, not completed),
 * then resumes it to the end into `out`. */
static void stop_and_resume(const char *stopped, const char *out, embt_classify_options o,
                            uint64_t stop)
{
    embt_classify_report rep;
    o.stop_after_lines = stop;
    train(stopped, &o, &rep);
    cr_assert_eq(rep.completed, 0, "stopped after %llu lines", (unsigned long long)stop);
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, stopped, NULL));
    TU_OK(embt_file_verify(f));
    embt_file_close(f);
    char buf[64];
    cr_expect_str_eq(meta_value(stopped, "training.state.completed", buf, sizeof buf), "false");
    embt_classify_options r = EMBT_CLASSIFY_OPTIONS_INIT;
    r.resume = stopped;
    r.dim = 3; /* ignored: every setting comes from the file */
    train(out, &r, &rep);
    cr_assert_eq(rep.completed, 1);
    cr_expect_eq(rep.dim, o.dim);
    cr_expect_str_eq(meta_value(out, "training.state.completed", buf, sizeof buf), "true");
}

/* 14 lines, 10 epochs: stops at the first line, at an epoch's end, mid-epoch (with tokens not yet
 * counted in the schedule: ~9 per line, --lr-update-rate 100) and before the last line. The
 * multi-label line draws from the generator, so its state must come back too. */
Test(classify_resume, stopped_and_resumed_with_one_thread_gives_the_uninterrupted_bytes,
     .init = tu_setup, .fini = tu_teardown)
{
    embt_classify_options o = small_options();
    char whole[PATH_MAX];
    snprintf(whole, sizeof whole, "%s", tu_path("whole.embt"));
    train(whole, &o, NULL);
    static const uint64_t stops[] = {1, 14, 23, 139};
    for (size_t i = 0; i < sizeof stops / sizeof *stops; i++) {
        char stopped[PATH_MAX], out[PATH_MAX], buf[64];
        snprintf(stopped, sizeof stopped, "%s", tu_path("stopped.embt"));
        snprintf(out, sizeof out, "%s", tu_path("resumed.embt"));
        stop_and_resume(stopped, out, o, stops[i]);
        uint64_t e = stops[i] / 14, l = stops[i] % 14;
        cr_expect_eq(strtoull(meta_value(stopped, "training.state.thread0.epoch", buf, sizeof buf),
                              NULL, 10),
                     e);
        cr_expect_eq(
            strtoull(meta_value(stopped, "training.state.thread0.line", buf, sizeof buf), NULL, 10),
            l);
        cr_expect_eq(
            strtoull(meta_value(stopped, "training.state.thread0.updates", buf, sizeof buf), NULL,
                     10),
            stops[i]);
        cr_expect(tu_same_file(whole, out), "stopped after %llu lines: not the uninterrupted file",
                  (unsigned long long)stops[i]);
    }
    /* two stops in a row, the output replacing the file it resumes */
    char a[PATH_MAX];
    snprintf(a, sizeof a, "%s", tu_path("a.embt"));
    embt_classify_report rep;
    embt_classify_options s = o;
    s.stop_after_lines = 30;
    train(a, &s, &rep);
    cr_assert_eq(rep.completed, 0);
    embt_classify_options r = EMBT_CLASSIFY_OPTIONS_INIT;
    r.resume = a;
    r.stop_after_lines = 50;
    train(a, &r, &rep);
    cr_assert_eq(rep.completed, 0);
    r.stop_after_lines = 0;
    train(a, &r, &rep);
    cr_assert_eq(rep.completed, 1);
    cr_expect(tu_same_file(whole, a), "stopped twice: not the uninterrupted file");
}

Test(classify_resume, a_stop_flag_set_before_training_saves_the_start, .init = tu_setup,
     .fini = tu_teardown)
{
    embt_classify_options o = small_options();
    char whole[PATH_MAX], stopped[PATH_MAX], buf[64];
    snprintf(whole, sizeof whole, "%s", tu_path("whole.embt"));
    snprintf(stopped, sizeof stopped, "%s", tu_path("stopped.embt"));
    train(whole, &o, NULL);
    volatile sig_atomic_t flag = 1;
    o.stop_flag = &flag;
    embt_classify_report rep;
    train(stopped, &o, &rep);
    cr_assert_eq(rep.completed, 0);
    cr_expect_str_eq(meta_value(stopped, "training.state.processed", buf, sizeof buf), "0");
    cr_expect_str_eq(meta_value(stopped, "training.state.thread0.updates", buf, sizeof buf), "0");
    embt_classify_options r = EMBT_CLASSIFY_OPTIONS_INIT;
    r.resume = stopped;
    train(stopped, &r, &rep);
    cr_assert_eq(rep.completed, 1);
    cr_expect(tu_same_file(whole, stopped));
}

Test(classify_resume, frozen_rows_stay_frozen_across_a_resume, .init = tu_setup,
     .fini = tu_teardown)
{
    char pre[PATH_MAX], whole[PATH_MAX], stopped[PATH_MAX], out[PATH_MAX], buf[64];
    snprintf(pre, sizeof pre, "%s", tu_path("pre.embt"));
    snprintf(whole, sizeof whole, "%s", tu_path("whole.embt"));
    snprintf(stopped, sizeof stopped, "%s", tu_path("stopped.embt"));
    snprintf(out, sizeof out, "%s", tu_path("out.embt"));
    float rows[16];
    write_pretrained(pre, rows);
    embt_file *pf = NULL;
    TU_OK(embt_file_open(&pf, pre, NULL));
    embt_classify_options o = small_options();
    TU_OK(embt_file_table(&o.pretrained, pf, "embedding"));
    o.freeze = 1;
    o.pretrained_name = "pre.embt";
    train(whole, &o, NULL);
    stop_and_resume(stopped, out, o, 40);
    embt_file_close(pf);
    cr_expect(has_table(stopped, "embedding.frozen"), "the stopped file has no frozen mask");
    cr_expect_not(has_table(out, "embedding.frozen"), "the finished file kept the mask");
    cr_expect_str_eq(meta_value(out, "training.pretrained", buf, sizeof buf), "pre.embt");
    cr_expect_str_eq(meta_value(out, "training.freeze", buf, sizeof buf), "true");
    cr_expect(tu_same_file(whole, out), "not the uninterrupted file");
}

Test(classify_resume, two_threads_stop_and_resume_to_a_usable_model, .init = tu_setup,
     .fini = tu_teardown)
{
    embt_classify_options o = small_options();
    o.threads = 2;
    o.epoch = 30;
    char stopped[PATH_MAX], out[PATH_MAX], data[PATH_MAX], buf[64];
    snprintf(stopped, sizeof stopped, "%s", tu_path("stopped.embt"));
    snprintf(out, sizeof out, "%s", tu_path("out.embt"));
    snprintf(data, sizeof data, "%s", tu_fixture("classify", "train.txt"));
    stop_and_resume(stopped, out, o, 100);
    cr_expect_str_eq(meta_value(out, "training.threads", buf, sizeof buf), "2");
    /* every line trained 30 times in all, whichever run did it */
    uint64_t updates = 0;
    for (int t = 0; t < 2; t++) {
        char key[64];
        snprintf(key, sizeof key, "training.state.thread%d.updates", t);
        updates += strtoull(meta_value(out, key, buf, sizeof buf), NULL, 10);
    }
    cr_expect_eq(updates, 14 * 30);
    embt_classify_metrics m = evaluate(out, data, 1);
    cr_expect_eq(m.examples, 14);
    cr_expect_geq(m.predicted_gold, 12);
}

Test(classify_resume, another_input_or_file_is_refused, .init = tu_setup, .fini = tu_teardown)
{
    embt_classify_options o = small_options();
    o.stop_after_lines = 5;
    char stopped[PATH_MAX], other[PATH_MAX];
    snprintf(stopped, sizeof stopped, "%s", tu_path("stopped.embt"));
    snprintf(other, sizeof other, "%s", tu_fixture("classify", "test.txt"));
    train(stopped, &o, NULL);
    embt_classify_options r = EMBT_CLASSIFY_OPTIONS_INIT;
    r.resume = stopped;
    TU_STATUS(embt_classify_train(other, tu_path("x.embt"), &r, NULL), EMBT_EINVAL);
    cr_expect(strstr(embt_error_last()->message, "differs"), "%s", embt_error_last()->message);
    /* the same lines with one word changed */
    size_t len;
    char *text = (char *)tu_read_file(tu_fixture("classify", "train.txt"), &len);
    char *p = strstr(text, "bread");
    cr_assert_not_null(p);
    p[0] = 'B';
    tu_write_file(tu_path("changed.txt"), text, len);
    free(text);
    TU_STATUS(embt_classify_train(tu_path("changed.txt"), tu_path("x.embt"), &r, NULL),
              EMBT_EINVAL);
    cr_expect_not(tu_exists(tu_path("x.embt")));
    /* a model without resume state (written by hand) */
    r.resume = hand_model();
    TU_STATUS(embt_classify_train(tu_fixture("classify", "train.txt"), tu_path("x.embt"), &r, NULL),
              EMBT_ENOTFOUND);
    cr_expect_not(tu_exists(tu_path("x.embt")));
}

/* A resume file whose training.bucket disagrees with its tables is refused before the embedding
 * is sized by it (4 x 10^9 bucket rows of dim 8 asked for 128 GB before the shapes were checked). */
Test(classify_resume, settings_that_disagree_with_the_tables_are_refused_before_allocating,
     .init = tu_setup, .fini = tu_teardown)
{
    embt_classify_options o = small_options();
    o.stop_after_lines = 5;
    char stopped[PATH_MAX];
    snprintf(stopped, sizeof stopped, "%s", tu_path("stopped.embt"));
    train(stopped, &o, NULL);
    static const char *const bad[][2] = {{"training.bucket", "4000000000"},
                                         {"training.dim", "65536"}};
    for (size_t i = 0; i < 2; i++) {
        tu_rewrite_metadata_key(stopped, tu_path("bad.embt"), bad[i][0], bad[i][1]);
        embt_classify_options r = EMBT_CLASSIFY_OPTIONS_INIT;
        r.resume = tu_path("bad.embt");
        TU_OK(embt_set_allocator(ah_malloc, ah_realloc, ah_free));
        ah_arm(0);
        embt_status st =
            embt_classify_train(tu_fixture("classify", "train.txt"), tu_path("x.embt"), &r, NULL);
        size_t largest = atomic_load(&ah_largest);
        embt_set_allocator(NULL, NULL, NULL);
        cr_assert(st == EMBT_EINVAL || st == EMBT_ELIMIT, "%s: %s", bad[i][0],
                  embt_status_name(st));
        cr_assert_lt(largest, (size_t)64 << 20, "%s %s: %zu bytes asked for", bad[i][0], bad[i][1],
                     largest);
        cr_assert_not(tu_exists(tu_path("x.embt")));
    }
}

Test(classify_resume, version_1_options_still_train, .init = tu_setup, .fini = tu_teardown)
{
    embt_classify_options o = small_options();
    char a[PATH_MAX];
    snprintf(a, sizeof a, "%s", tu_path("a.embt"));
    train(a, &o, NULL);
    o.version = 1;
    o.stop_after_lines = 3; /* not a field of version 1: ignored */
    embt_classify_report rep;
    train(tu_path("b.embt"), &o, &rep);
    cr_expect_eq(rep.completed, 1);
    cr_expect(tu_same_file(a, tu_path("b.embt")));
}
