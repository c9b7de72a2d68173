/* test_skipgram.c: embt_sg_train on a small generated corpus: the output's vocabulary (counts,
 * min-count, order), tables and metadata; one thread gives identical files; a run stopped half-way
 * and resumed equals an uninterrupted run bit for bit (SGD and Adam); fine-tuning keeps frozen rows
 * and the pretrained order; training pulls co-occurring words together; bad inputs fail cleanly. */
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
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = "embedding";
    ts.rows = 3;
    ts.cols = 16;
    ts.vocab = "words";
    TU_OK(embt_writer_add_table_f32(w, &ts, rows));
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
    o.resume = in; /* not a .embt */
    TU_STATUS(embt_sg_train(&o, &rep), EMBT_EFORMAT);
    cr_assert(!tu_exists(out));
}
