/* test_skipgram.c: embt_sg_train on a small generated corpus: the output's vocabulary (counts,
 * min-count, order), tables and metadata; one thread gives identical files; a run stopped half-way
 * and resumed equals an uninterrupted run bit for bit (SGD and Adam); fine-tuning keeps frozen rows
 * and the pretrained order; training pulls co-occurring words together; bad inputs fail cleanly. */
#include "alloc_hook.h"
#include "test_util.h"

TestSuite(skipgram, .init = tu_setup, .fini = tu_teardown);

/* Two topics that never share a line: words a0..a9 and b0..b9, plus "rare" once. */
static const char *make_corpus(void)
{
    const char *path = tu_path("corpus.txt");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    uint64_t r = 7;
    for (int line = 0; line < 600; line++) {
        char topic = line % 2 ? 'b' : 'a';
        for (int w = 0; w < 12; w++)
            fprintf(f, "%c%u ", topic, (unsigned)(tu_rand(&r) % 10));
        fputc('\n', f);
    }
    fputs("rare\n", f);
    fclose(f);
    return path;
}

static embt_sg_options small_options(const char *in, const char *out)
{
    embt_sg_options o;
    embt_sg_defaults(&o);
    o.input = in;
    o.output = out;
    o.dim = 16;
    o.epoch = 3;
    o.window = 3;
    o.neg = 3;
    o.sample = 0;
    o.min_count = 2;
    o.lr = 0.05;
    return o;
}

static float cosine(const float *a, const float *b, size_t n)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return (float)(ab / sqrt(aa * bb));
}

static const float *row_of(const embt_file *f, const char *table, const char *tok)
{
    const embt_vocab *v;
    const embt_table *t;
    uint32_t id;
    TU_OK(embt_file_vocab(&v, f, "words"));
    TU_OK(embt_file_table(&t, f, table));
    TU_OK(embt_vocab_find(&id, v, tok, strlen(tok)));
    return embt_table_row_f32(t, id);
}

Test(skipgram, writes_vocabulary_with_counts_tables_and_settings)
{
    const char *in = make_corpus(), *out = tu_path("sg.embt");
    embt_sg_options o = small_options(in, out);
    embt_sg_report rep;
    TU_OK(embt_sg_train(&o, &rep));
    cr_assert(rep.completed);
    cr_assert_eq(rep.vocab_size, 20); /* "rare" is under min-count */
    cr_assert_eq(rep.train_words, 600 * 12);
    cr_assert_eq(rep.words_done, 3 * 600 * 12);
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, out,
                         &(embt_open_options){EMBT_OPEN_OPTIONS_VERSION, EMBT_OPEN_VERIFY, 0}));
    const embt_vocab *v;
    TU_OK(embt_file_vocab(&v, f, "words"));
    cr_assert_eq(embt_vocab_size(v), 20);
    uint64_t prev = UINT64_MAX, total = 0;
    for (uint32_t i = 0; i < 20; i++) {
        uint64_t c;
        TU_OK(embt_vocab_count(&c, v, i));
        cr_assert_leq(c, prev, "counts must not increase");
        prev = c;
        total += c;
    }
    cr_assert_eq(total, 7200);
    const embt_table *t;
    TU_OK(embt_file_table(&t, f, "embedding"));
    cr_assert_eq(embt_table_cols(t), 16);
    TU_OK(embt_file_table(&t, f, "context"));
    cr_assert_eq(embt_table_rows(t), 20);
    size_t len;
    const char *meta = embt_file_metadata(f, &len);
    embt_meta *m = NULL;
    TU_OK(embt_meta_parse(&m, meta, len));
    const char *val;
    TU_OK(embt_meta_get(&val, &len, m, "training.window"));
    cr_assert_str_eq(val, "3");
    TU_OK(embt_meta_get(&val, &len, m, "training.state.completed"));
    cr_assert_str_eq(val, "true");
    embt_meta_free(m);
    /* words of one topic end up closer to each other than to the other topic */
    double same = 0, cross = 0;
    char a[8], b[8];
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 10; j++) {
            if (i == j)
                continue;
            snprintf(a, sizeof a, "a%d", i);
            snprintf(b, sizeof b, "a%d", j);
            same += cosine(row_of(f, "embedding", a), row_of(f, "embedding", b), 16);
            snprintf(b, sizeof b, "b%d", j);
            cross += cosine(row_of(f, "embedding", a), row_of(f, "embedding", b), 16);
        }
    cr_assert_gt(same / 90, cross / 90 + 0.2, "same topic %.3f, other topic %.3f", same / 90,
                 cross / 90);
    embt_file_close(f);
}

Test(skipgram, one_thread_gives_identical_files)
{
    const char *in = make_corpus();
    embt_sg_options o = small_options(in, tu_path("a.embt"));
    embt_sg_report rep;
    TU_OK(embt_sg_train(&o, &rep));
    o.output = tu_path("b.embt");
    TU_OK(embt_sg_train(&o, &rep));
    cr_assert(tu_same_file(tu_path("a.embt"), tu_path("b.embt")));
    o.output = tu_path("c.embt");
    o.seed = 2;
    TU_OK(embt_sg_train(&o, &rep));
    cr_assert(!tu_same_file(tu_path("a.embt"), tu_path("c.embt")));
}

/* Stopping after 5000 words and resuming gives the bytes of the uninterrupted run, except the
 * metadata's record of the run, so the tables are compared. */
static void check_resume(embt_optim_kind kind, double sample)
{
    const char *in = make_corpus();
    embt_sg_options o = small_options(in, tu_path("full.embt"));
    o.sample = sample;
    embt_optim_defaults(&o.optimizer, kind);
    embt_sg_report rep;
    TU_OK(embt_sg_train(&o, &rep));
    o.output = tu_path("half.embt");
    o.stop_after_words = 5000;
    TU_OK(embt_sg_train(&o, &rep));
    cr_assert(!rep.completed);
    cr_assert_lt(rep.words_done, 3 * 7200);
    embt_sg_options r;
    embt_sg_defaults(&r);
    r.input = in;
    r.output = tu_path("resumed.embt");
    r.resume = tu_path("half.embt");
    TU_OK(embt_sg_train(&r, &rep));
    cr_assert(rep.completed);
    cr_assert_eq(rep.words_done, 3 * 7200);
    embt_file *a = NULL, *b = NULL;
    TU_OK(embt_file_open(&a, tu_path("full.embt"), NULL));
    TU_OK(embt_file_open(&b, tu_path("resumed.embt"), NULL));
    const char *names[] = {"embedding", "context", "embedding.adam.m", "context.adam.v"};
    for (int k = 0; k < (kind == EMBT_OPTIM_ADAM ? 4 : 2); k++) {
        const embt_table *ta, *tb;
        TU_OK(embt_file_table(&ta, a, names[k]));
        TU_OK(embt_file_table(&tb, b, names[k]));
        cr_assert_eq(memcmp(embt_table_data(ta), embt_table_data(tb), 20 * 16 * 4), 0,
                     "%s differs after resuming", names[k]);
    }
    embt_file_close(a);
    embt_file_close(b);
}

/* A resume file whose settings disagree with its tables is refused before anything is sized by
 * the settings: training.dim of 10^9 asked for two 4 GB buffers before the shapes were checked. */
Test(skipgram, resume_settings_that_disagree_with_the_tables_are_refused_before_allocating)
{
    char in[PATH_MAX]; /* tu_path's buffers rotate */
    snprintf(in, sizeof in, "%s", make_corpus());
    embt_sg_options o = small_options(in, tu_path("half.embt"));
    o.stop_after_words = 5000;
    embt_sg_report rep;
    TU_OK(embt_sg_train(&o, &rep));
    static const char *const bad[][2] = {{"training.dim", "1000000000"},
                                         {"training.frozen_rows", "21"},
                                         {"training.neg", "1000000"},
                                         {"training.lr", "inf"},
                                         {"training.state.thread0.offset", "99999999"}};
    for (size_t i = 0; i < 5; i++) {
        tu_rewrite_metadata_key(tu_path("half.embt"), tu_path("bad.embt"), bad[i][0], bad[i][1]);
        embt_sg_options r;
        embt_sg_defaults(&r);
        r.input = in;
        r.output = tu_path("resumed.embt");
        r.resume = tu_path("bad.embt");
        TU_OK(embt_set_allocator(ah_malloc, ah_realloc, ah_free));
        ah_arm(0);
        TU_STATUS(embt_sg_train(&r, &rep), EMBT_EINVAL);
        size_t largest = atomic_load(&ah_largest);
        embt_set_allocator(NULL, NULL, NULL);
        cr_assert_lt(largest, (size_t)64 << 20, "%s %s: %zu bytes asked for", bad[i][0], bad[i][1],
                     largest);
        cr_assert_not(tu_exists(tu_path("resumed.embt")));
    }
}

Test(skipgram, stopped_and_resumed_run_equals_an_uninterrupted_one)
{
    check_resume(EMBT_OPTIM_SGD, 0);
}

Test(skipgram, resume_is_exact_with_subsampling_and_adam)
{
    check_resume(EMBT_OPTIM_ADAM, 1e-2);
}

Test(skipgram, fine_tuning_keeps_pretrained_order_and_frozen_rows)
{
    const char *in = make_corpus(), *pre = tu_path("pre.embt");
    /* pretrained: "zz" (absent from the corpus), "a3", "b5", dim 16 */
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, pre, NULL));
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    TU_OK(embt_writer_vocab_begin(w, &vs));
    const char *toks[3] = {"zz", "a3", "b5"};
    for (int i = 0; i < 3; i++)
        TU_OK(embt_writer_vocab_add(w, toks[i], strlen(toks[i]), 0, NULL));
    TU_OK(embt_writer_vocab_end(w));
    float rows[3 * 16];
    for (int i = 0; i < 48; i++)
        rows[i] = (float)(i % 7) * 0.1f - 0.3f;
    tu_add_table(w, "embedding", 3, 16, "words", rows);
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    size_t pre_len;
    uint8_t *pre_bytes = tu_read_file(pre, &pre_len);
    embt_sg_options o = small_options(in, tu_path("ft.embt"));
    o.dim = 99; /* ignored: the pretrained table's */
    o.pretrained = pre;
    o.freeze = 1;
    embt_sg_report rep;
    TU_OK(embt_sg_train(&o, &rep));
    cr_assert_eq(rep.vocab_size, 21);
    cr_assert_eq(rep.new_words, 18);
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, tu_path("ft.embt"), NULL));
    const embt_vocab *v;
    TU_OK(embt_file_vocab(&v, f, "words"));
    for (uint32_t i = 0; i < 3; i++) {
        size_t len;
        const char *tok = embt_vocab_token(v, i, &len);
        cr_assert(len == strlen(toks[i]) && memcmp(tok, toks[i], len) == 0);
    }
    uint64_t c;
    TU_OK(embt_vocab_count(&c, v, 0));
    cr_assert_eq(c, 0);
    const embt_table *t;
    TU_OK(embt_file_table(&t, f, "embedding"));
    cr_assert_eq(embt_table_cols(t), 16);
    cr_assert_eq(memcmp(embt_table_data(t), rows, sizeof rows), 0, "frozen rows changed");
    /* a new word's row moved away from its initial range */
    const float *r = embt_table_row_f32(t, 5);
    double norm = 0;
    for (int i = 0; i < 16; i++)
        norm += r[i] * r[i];
    cr_assert_gt(norm, 16 * (0.5 / 16) * (0.5 / 16));
    embt_file_close(f);
    /* the input file is untouched */
    size_t after_len;
    uint8_t *after = tu_read_file(pre, &after_len);
    cr_assert(after_len == pre_len && memcmp(after, pre_bytes, pre_len) == 0);
    free(after);
    free(pre_bytes);
}

Test(skipgram, bad_inputs_fail_and_write_nothing)
{
    const char *in = make_corpus(), *out = tu_path("out.embt");
    embt_sg_options o = small_options(tu_path("missing.txt"), out);
    embt_sg_report rep;
    TU_STATUS(embt_sg_train(&o, &rep), EMBT_EIO);
    o = small_options(in, out);
    o.min_count = 100000;
    TU_STATUS(embt_sg_train(&o, &rep), EMBT_EINVAL);
    o = small_options(in, out);
    o.window = 0;
    TU_STATUS(embt_sg_train(&o, &rep), EMBT_EINVAL);
    o = small_options(in, out);
    o.neg = EMBT_SG_NEG_MAX + 1; /* would ask each thread for 999 * neg sample slots */
    TU_STATUS(embt_sg_train(&o, &rep), EMBT_EINVAL);
    o = small_options(in, out);
    o.lr = INFINITY; /* every weight would be NaN */
    TU_STATUS(embt_sg_train(&o, &rep), EMBT_EINVAL);
    o = small_options(in, out);
    o.dim = EMBT_SG_DIM_MAX + 1;
    TU_STATUS(embt_sg_train(&o, &rep), EMBT_EINVAL);
    o = small_options(in, out);
    o.resume = in; /* not a .embt */
    TU_STATUS(embt_sg_train(&o, &rep), EMBT_EFORMAT);
    cr_assert(!tu_exists(out));
}

/* A pretrained vocabulary with a repeated token (possible in a file opened without verification):
 * merging it made the vocabulary shorter than the table, whose rows were then read past the end
 * of the buffer (heap overflow, found by review). It is refused as corrupt. */
Test(skipgram, a_pretrained_vocabulary_with_a_repeated_token_is_ecorrupt)
{
    const char *in = make_corpus(), *pre = tu_path("dup.embt"), *out = tu_path("out.embt");
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, pre, NULL));
    tu_add_vocab(w, "words", (const char *const[]){"a1", "a2", "qq", "qr", NULL});
    float rows[4 * 8] = {0};
    tu_add_table(w, "embedding", 4, 8, "words", rows);
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    size_t n;
    uint8_t *bytes = tu_read_file(pre, &n);
    size_t at = 0;
    while (at + 8 <= n && memcmp(bytes + at, "a1a2qqqr", 8) != 0)
        at++;
    cr_assert_leq(at + 8, n, "the vocabulary blob is not stored as written");
    bytes[at + 3] = '1'; /* "a2" becomes "a1" */
    tu_write_file(pre, bytes, n);
    free(bytes);
    embt_sg_options o = small_options(in, out);
    o.pretrained = pre;
    embt_sg_report rep;
    TU_STATUS(embt_sg_train(&o, &rep), EMBT_ECORRUPT);
    cr_assert(strstr(embt_error_last()->message, "token 1 repeats token 0"), "%s",
              embt_error_last()->message);
    cr_assert(!tu_exists(out));
}

/* A valid pretrained file of a few hundred bytes whose table has no rows and 2^31 - 1 columns: the
 * columns became dim, and the corpus's words times dim floats were asked for (240 GB for 30 words,
 * found by review). Pretrained columns are bounded as --dim is. */
Test(skipgram, pretrained_columns_beyond_the_dim_limit_are_refused_before_allocating)
{
    const char *in = make_corpus(), *pre = tu_path("wide.embt"), *out = tu_path("out.embt");
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, pre, NULL));
    tu_add_vocab(w, "words", (const char *const[]){NULL});
    float none = 0;
    tu_add_table(w, "embedding", 0, EMBT_SG_DIM_MAX + 1u, "words", &none);
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    embt_sg_options o = small_options(in, out);
    o.pretrained = pre;
    embt_sg_report rep;
    TU_OK(embt_set_allocator(ah_malloc, ah_realloc, ah_free));
    ah_arm(0);
    embt_status st = embt_sg_train(&o, &rep);
    size_t largest = atomic_load(&ah_largest);
    embt_set_allocator(NULL, NULL, NULL);
    cr_assert_eq(st, EMBT_EINVAL, "%s", embt_status_name(st));
    cr_assert_lt(largest, (size_t)64 << 20, "%zu bytes asked for", largest);
    cr_assert(!tu_exists(out));
}

/* Resuming on a corpus that holds none of the file's words: each epoch meets no word, so the
 * remaining ones are skipped at once instead of reading the corpus 10^8 more times. */
Test(skipgram, resuming_on_a_corpus_without_the_vocabulary_ends_at_once, .timeout = 60)
{
    const char *in = make_corpus();
    embt_sg_options o = small_options(in, tu_path("half.embt"));
    o.epoch = 100000000;
    o.stop_after_words = 3000;
    embt_sg_report rep;
    TU_OK(embt_sg_train(&o, &rep));
    cr_assert(!rep.completed);
    /* the same size (training.input_size), other words: a -> c, b -> d */
    size_t n;
    char *text = (char *)tu_read_file(in, &n);
    for (size_t i = 0; i < n; i++)
        if (text[i] == 'a' || text[i] == 'b')
            text[i] = (char)(text[i] + 2);
    tu_write_file(tu_path("other.txt"), text, n);
    free(text);
    embt_sg_options r;
    embt_sg_defaults(&r);
    r.input = tu_path("other.txt");
    r.output = tu_path("resumed.embt");
    r.resume = tu_path("half.embt");
    TU_OK(embt_sg_train(&r, &rep));
    cr_assert(rep.completed);
}

/* A rate so large that the weights overflow to inf and then NaN: the sigmoid lookup must take a
 * bound for a NaN dot product, not read its table at index (int)NaN (out of bounds before the
 * fix; ASan + UBSan in CI flag it). The run completes and reports the loss it computed. */
Test(skipgram, a_diverging_rate_gives_nan_weights_not_a_crash)
{
    const char *in = make_corpus(), *out = tu_path("diverged.embt");
    embt_sg_options o = small_options(in, out);
    o.lr = 1e30;
    embt_sg_report rep;
    TU_OK(embt_sg_train(&o, &rep));
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, out, NULL));
    const embt_table *t;
    TU_OK(embt_file_table(&t, f, "embedding"));
    size_t non_finite = 0;
    for (uint64_t r = 0; r < embt_table_rows(t); r++)
        for (uint64_t c = 0; c < embt_table_cols(t); c++)
            non_finite += !isfinite(embt_table_row_f32(t, r)[c]);
    embt_file_close(f);
    cr_assert_gt(non_finite, 0, "lr 1e30 did not diverge: the test no longer reaches NaN");
}

/* ---- the trainer against a pair-by-pair reference of the algorithm of embt/train.h ---- */

#define REF_EXP_SIZE 1000
#define REF_MAX_EXP 6
#define REF_NEG_SLOTS 10000000u
#define REF_MAX_SENTENCE 1000

/* The trainer's dot product: 8 lanes, summed in order, then the tail. */
static float ref_dot(const float *a, const float *b, size_t n)
{
    float acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t j = 0; j < 8; j++)
            acc[j] += a[i + j] * b[i + j];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* One thread, no subsampling, SGD: trains syn0 and syn1 (rows, dim) as embt_sg_train() documents,
 * one pair at a time with each random draw made where the pair needs it. `ids` is the corpus as
 * vocabulary ids, -1 for an unknown word and -2 for a line end. */
static void ref_train(float *syn0, float *syn1, const uint64_t *counts, size_t rows, size_t dim,
                      const int64_t *ids, size_t n_ids, const embt_sg_options *o)
{
    float exp_table[REF_EXP_SIZE + 1];
    for (int i = 0; i <= REF_EXP_SIZE; i++) {
        double x = (i / (double)REF_EXP_SIZE * 2 - 1) * REF_MAX_EXP;
        exp_table[i] = (float)(exp(x) / (exp(x) + 1));
    }
    uint32_t *table = malloc(REF_NEG_SLOTS * sizeof *table);
    cr_assert_not_null(table);
    double total = 0, cum = 0;
    uint64_t train_words = 0;
    for (size_t i = 0; i < rows; i++) {
        total += pow((double)counts[i], 0.75);
        train_words += counts[i];
    }
    size_t slot = 0;
    for (size_t i = 0; i < rows; i++) {
        cum += pow((double)counts[i], 0.75);
        size_t end = (size_t)(cum / total * REF_NEG_SLOTS);
        for (; slot < end && slot < REF_NEG_SLOTS; slot++)
            table[slot] = (uint32_t)i;
    }
    for (; slot < REF_NEG_SLOTS; slot++)
        table[slot] = (uint32_t)(rows - 1);
    uint64_t sm = o->seed + 0x9E3779B97F4A7C15ull; /* splitmix64, first output */
    sm = (sm ^ (sm >> 30)) * 0xBF58476D1CE4E5B9ull;
    sm = (sm ^ (sm >> 27)) * 0x94D049BB133111EBull;
    uint64_t r = sm ^ (sm >> 31);
    size_t W = o->window;
    uint64_t done = 0;
    float *neu1e = malloc(dim * sizeof *neu1e);
    uint32_t sen[REF_MAX_SENTENCE];
    for (uint32_t epoch = 0; epoch < o->epoch; epoch++) {
        size_t pos = 0;
        while (pos < n_ids) {
            double a0 = o->lr * (1.0 - (double)done / ((double)o->epoch * train_words + 1.0));
            float alpha = (float)(a0 < o->lr * 1e-4 ? o->lr * 1e-4 : a0);
            size_t len = 0;
            for (; pos < n_ids && len < REF_MAX_SENTENCE; pos++) {
                if (ids[pos] == -2 && len > 0) {
                    pos++;
                    break;
                }
                if (ids[pos] >= 0)
                    sen[len++] = (uint32_t)ids[pos];
            }
            for (size_t sp = 0; sp < len; sp++) {
                r = r * 25214903917ull + 11;
                size_t b = r % W;
                for (size_t a = b; a < 2 * W + 1 - b; a++) {
                    ptrdiff_t c = (ptrdiff_t)sp - (ptrdiff_t)W + (ptrdiff_t)a;
                    if (a == W || c < 0 || c >= (ptrdiff_t)len)
                        continue;
                    float *l1 = syn0 + sen[c] * dim;
                    memset(neu1e, 0, dim * sizeof *neu1e);
                    for (uint32_t d = 0; d <= o->neg; d++) {
                        uint32_t target = sen[sp];
                        float label = 1;
                        if (d > 0) {
                            r = r * 25214903917ull + 11;
                            target = table[(r >> 16) % REF_NEG_SLOTS];
                            if (target == sen[sp])
                                continue;
                            label = 0;
                        }
                        float *l2 = syn1 + target * dim;
                        float f = ref_dot(l1, l2, dim), g;
                        if (f > REF_MAX_EXP)
                            g = label - 1;
                        else if (f < -REF_MAX_EXP)
                            g = label;
                        else
                            g = label - exp_table[(int)((f + REF_MAX_EXP) *
                                                        (REF_EXP_SIZE / REF_MAX_EXP / 2))];
                        g *= alpha;
                        for (size_t k = 0; k < dim; k++)
                            neu1e[k] += g * l2[k];
                        for (size_t k = 0; k < dim; k++)
                            l2[k] += g * l1[k];
                    }
                    for (size_t k = 0; k < dim; k++)
                        l1[k] += neu1e[k];
                }
            }
            done += len;
        }
    }
    free(neu1e);
    free(table);
}

/* Lines of 1 to 1,500 words (long lines are cut into sentences of 1,000) over 60 words of skewed
 * frequencies plus words under min-count: blocks of planned draws split long sentences. */
static const char *make_long_corpus(void)
{
    const char *path = tu_path("long.txt");
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    uint64_t r = 11;
    for (int line = 0; line < 40; line++) {
        unsigned n = line % 7 == 0 ? 1500 : line % 5 == 0 ? 1 : (unsigned)(tu_rand(&r) % 60 + 2);
        for (unsigned w = 0; w < n; w++) {
            unsigned k = (unsigned)(tu_rand(&r) % 60);
            if (tu_rand(&r) % 50 == 0)
                fprintf(f, "once%u ", (unsigned)(tu_rand(&r) % 100000));
            else
                fprintf(f, "w%u ", k * k / 60); /* low ids far more frequent */
        }
        fputc('\n', f);
    }
    fclose(f);
    return path;
}

static void check_against_reference(const char *in, embt_sg_options o)
{
    embt_sg_report rep;
    TU_OK(embt_sg_train(&o, &rep));
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, o.output, NULL));
    const embt_vocab *v;
    const embt_table *t0, *t1;
    TU_OK(embt_file_vocab(&v, f, "words"));
    TU_OK(embt_file_table(&t0, f, "embedding"));
    TU_OK(embt_file_table(&t1, f, "context"));
    size_t rows = embt_vocab_size(v), dim = o.dim;
    uint64_t *counts = malloc(rows * sizeof *counts);
    for (size_t i = 0; i < rows; i++)
        TU_OK(embt_vocab_count(&counts[i], v, (uint32_t)i));
    /* the corpus as ids */
    size_t len;
    char *text = (char *)tu_read_file(in, &len);
    int64_t *ids = malloc((len + 1) * sizeof *ids);
    size_t n_ids = 0;
    for (size_t i = 0; i < len;) {
        if (text[i] == '\n') {
            ids[n_ids++] = -2;
            i++;
        } else if (text[i] == ' ') {
            i++;
        } else {
            size_t j = i;
            while (j < len && text[j] != ' ' && text[j] != '\n')
                j++;
            uint32_t id;
            ids[n_ids++] = embt_vocab_find(&id, v, text + i, j - i) == EMBT_OK ? (int64_t)id : -1;
            i = j;
        }
    }
    float *syn0 = malloc(rows * dim * sizeof *syn0), *syn1 = calloc(rows * dim, sizeof *syn1);
    embt_matrix m = {syn0, rows, dim};
    embt_init_options init = EMBT_INIT_OPTIONS_INIT;
    init.kind = EMBT_INIT_UNIFORM;
    init.low = -0.5 / (double)dim;
    init.high = 0.5 / (double)dim;
    init.seed = o.seed;
    init.fan_in = dim;
    TU_OK(embt_init_matrix(&m, &init));
    ref_train(syn0, syn1, counts, rows, dim, ids, n_ids, &o);
    cr_assert_eq(memcmp(embt_table_data(t0), syn0, rows * dim * sizeof *syn0), 0,
                 "embedding differs from the reference");
    cr_assert_eq(memcmp(embt_table_data(t1), syn1, rows * dim * sizeof *syn1), 0,
                 "context differs from the reference");
    embt_file_close(f);
    free(counts);
    free(text);
    free(ids);
    free(syn0);
    free(syn1);
}

Test(skipgram, one_thread_equals_a_pair_by_pair_reference_bit_for_bit)
{
    const char *in = make_corpus();
    check_against_reference(in, small_options(in, tu_path("ref.embt")));
    in = make_long_corpus();
    embt_sg_options o = small_options(in, tu_path("ref-long.embt"));
    o.dim = 20; /* 8-lane blocks and a tail */
    o.window = 6;
    o.neg = 4;
    o.min_count = 3;
    o.seed = 5;
    check_against_reference(in, o);
    o.dim = 3; /* the tail only */
    o.window = 1;
    o.neg = 0;
    check_against_reference(in, o);
}
