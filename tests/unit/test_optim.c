/* test_optim.c: embt_embedding_backward and embt_optim_step against PyTorch 1.13 (tests/fixtures/
 * torch_optim/optim.txt): SGD, Adagrad (lr_decay, initial accumulator) and SparseAdam, one and three
 * steps, plain and with padding_idx, max_norm, scale_grad_by_freq and all three; lazy rows; state
 * saved to a .embt and resumed bit for bit; argument errors leave everything unchanged. */
#include "test_util.h"
#include "fixtures/torch/fixture.h"

TestSuite(optim, .init = tu_setup, .fini = tu_teardown);

/* Loads array `name` from tests/fixtures/torch_optim/optim.txt (the layout of fixture.h's files). */
static fx_array ox_load(const char *name)
{
    return fx_load_from(tu_fixture("torch_optim", "optim.txt"), name);
}

typedef struct rule {
    const char *name;
    int64_t padding_idx;
    double max_norm;
    int freq;
} rule;

static const rule rules[] = {
    {"plain", EMBT_NO_PADDING, 0, 0}, {"pad", 2, 0, 0},   {"maxnorm", EMBT_NO_PADDING, 1.5, 0},
    {"freq", EMBT_NO_PADDING, 0, 1},  {"all", 2, 1.5, 1},
};

static embt_optim_options torch_options(embt_optim_kind kind)
{
    embt_optim_options o;
    embt_optim_defaults(&o, kind);
    if (kind == EMBT_OPTIM_SGD) {
        o.lr = 0.1;
    } else if (kind == EMBT_OPTIM_ADAGRAD) {
        o.lr = 0.1;
        o.lr_decay = 0.05;
        o.initial_accumulator_value = 0.1;
    } else {
        o.lr = 0.05;
    }
    return o;
}

/* One training step of make_fixtures.py: forward (renorm with max_norm), loss = sum(emb * C[s]),
 * backward, optimiser step. */
static void train_step(embt_optim *o, embt_matrix *w, const fx_array *ids, const fx_array *coef,
                       size_t s, const rule *r)
{
    size_t n = ids->shape[1], d = (size_t)w->cols;
    const int64_t *batch = ids->i + s * n;
    float out[6 * 4];
    cr_assert(n * d <= sizeof out / sizeof out[0]);
    embt_gather_options g = EMBT_GATHER_OPTIONS_INIT;
    g.padding_idx = r->padding_idx;
    g.max_norm = r->max_norm;
    TU_OK(embt_matrix_gather(out, w, batch, n, &g));
    /* d loss / d out = C[s] */
    int64_t gid[6];
    float grad[6 * 4];
    size_t m = 0;
    TU_OK(embt_embedding_backward(gid, grad, &m, batch, coef->f + s * n * d, n, w->rows, d,
                                  r->padding_idx, r->freq));
    TU_OK(embt_optim_step(o, w, gid, grad, m));
}

static void check_case(embt_optim_kind kind, const rule *r, double rel)
{
    const char *kname = embt_optim_name(kind);
    fx_array w0 = ox_load("weight"), ids = ox_load("ids"), coef = ox_load("coef");
    embt_matrix w;
    TU_OK(embt_matrix_alloc(&w, w0.shape[0], w0.shape[1]));
    memcpy(w.data, w0.f, w0.n * sizeof(float));
    embt_optim_options oo = torch_options(kind);
    embt_optim o;
    TU_OK(embt_optim_init(&o, &oo, w.rows, w.cols));
    char name[64];
    for (size_t s = 0; s < 3; s++) {
        train_step(&o, &w, &ids, &coef, s, r);
        if (s == 0 || s == 2) {
            snprintf(name, sizeof name, "%s_%s_w%zu", kname, r->name, s + 1);
            fx_array want = ox_load(name);
            fx_assert_close(w.data, want.f, want.n, rel, 1e-3, name);
            fx_free(&want);
        }
    }
    cr_assert_eq(o.step, 3);
    const char *suffix[2] = {NULL, NULL};
    const float *state[2] = {NULL, NULL};
    if (kind == EMBT_OPTIM_ADAGRAD) {
        suffix[0] = "sum";
        state[0] = o.sum;
    } else if (kind == EMBT_OPTIM_ADAM) {
        suffix[0] = "m";
        state[0] = o.m;
        suffix[1] = "v";
        state[1] = o.v;
    }
    for (int k = 0; k < 2 && suffix[k]; k++) {
        snprintf(name, sizeof name, "%s_%s_%s", kname, r->name, suffix[k]);
        fx_array want = ox_load(name);
        fx_assert_close(state[k], want.f, want.n, rel, 1e-3, name);
        fx_free(&want);
    }
    embt_optim_release(&o);
    embt_matrix_release(&w);
    fx_free(&w0);
    fx_free(&ids);
    fx_free(&coef);
}

/* Tolerance 2e-7 relative (floor 1e-3): the kernels do PyTorch's float32 operations in its order;
 * the only freedom is where its vectorised loops contract a*b+c into an FMA and the max_norm scale
 * (PyTorch sums the norm in float lanes, embt in double). */
Test(optim, sgd_matches_pytorch_for_every_gradient_rule)
{
    for (size_t k = 0; k < sizeof rules / sizeof rules[0]; k++)
        check_case(EMBT_OPTIM_SGD, &rules[k], 2e-7);
}

Test(optim, adagrad_matches_pytorch_for_every_gradient_rule)
{
    for (size_t k = 0; k < sizeof rules / sizeof rules[0]; k++)
        check_case(EMBT_OPTIM_ADAGRAD, &rules[k], 2e-7);
}

Test(optim, sparse_adam_matches_pytorch_for_every_gradient_rule)
{
    for (size_t k = 0; k < sizeof rules / sizeof rules[0]; k++)
        check_case(EMBT_OPTIM_ADAM, &rules[k], 2e-7);
}

/* Rows a step does not touch keep their weights and moments bit for bit (SparseAdam is lazy). */
Test(optim, adam_leaves_untouched_rows_and_their_moments_alone)
{
    fx_array w0 = ox_load("weight"), ids = ox_load("ids"), coef = ox_load("coef");
    embt_matrix w;
    TU_OK(embt_matrix_alloc(&w, w0.shape[0], w0.shape[1]));
    memcpy(w.data, w0.f, w0.n * sizeof(float));
    embt_optim_options oo = torch_options(EMBT_OPTIM_ADAM);
    embt_optim o;
    TU_OK(embt_optim_init(&o, &oo, w.rows, w.cols));
    train_step(&o, &w, &ids, &coef, 0, &rules[0]); /* ids 1 3 5 0 2 */
    float m4[4], v4[4], w4[4];
    memcpy(m4, o.m + 4 * 4, sizeof m4);
    memcpy(v4, o.v + 4 * 4, sizeof v4);
    for (int r = 4; r < 8; r += 2) /* rows 4 and 6: untouched */
        for (int c = 0; c < 4; c++) {
            cr_assert_eq(tu_f32_bits(w.data[r * 4 + c]), tu_f32_bits(w0.f[r * 4 + c]));
            cr_assert_eq(o.m[r * 4 + c], 0.0f);
        }
    cr_assert_neq(tu_f32_bits(w.data[1 * 4]), tu_f32_bits(w0.f[1 * 4]));
    memcpy(w4, w.data + 7 * 4, sizeof w4);
    train_step(&o, &w, &ids, &coef, 1, &rules[0]); /* ids 2 6 1 4: row 7 untouched again */
    for (int c = 0; c < 4; c++) {
        cr_assert_eq(tu_f32_bits(w.data[7 * 4 + c]), tu_f32_bits(w4[c]));
        cr_assert_eq(o.v[7 * 4 + c], 0.0f);
    }
    embt_optim_release(&o);
    embt_matrix_release(&w);
    fx_free(&w0);
    fx_free(&ids);
    fx_free(&coef);
}

/* Saving after step 2 and loading into a fresh optimiser gives, after step 3, the same bits as an
 * uninterrupted run, for each optimiser. */
Test(optim, state_saved_in_a_file_resumes_bit_for_bit)
{
    fx_array w0 = ox_load("weight"), ids = ox_load("ids"), coef = ox_load("coef");
    for (int kind = 0; kind < 3; kind++) {
        embt_optim_options oo = torch_options((embt_optim_kind)kind);
        embt_matrix a, b;
        TU_OK(embt_matrix_alloc(&a, 8, 4));
        memcpy(a.data, w0.f, sizeof(float) * 32);
        embt_optim oa;
        TU_OK(embt_optim_init(&oa, &oo, 8, 4));
        for (size_t s = 0; s < 2; s++)
            train_step(&oa, &a, &ids, &coef, s, &rules[4]);
        /* save */
        const char *path = tu_path("state.embt");
        embt_writer *wr = NULL;
        TU_OK(embt_writer_open(&wr, path, NULL));
        tu_add_table(wr, "linear.weight", 8, 4, NULL, a.data);
        TU_OK(embt_optim_write(&oa, wr, "linear.weight", NULL));
        embt_meta *meta = NULL;
        TU_OK(embt_meta_new(&meta));
        TU_OK(embt_optim_save_meta(&oa, meta, "linear.weight"));
        const char *yaml;
        size_t len;
        TU_OK(embt_meta_emit(&yaml, &len, meta));
        TU_OK(embt_writer_set_metadata(wr, yaml, len));
        TU_OK(embt_writer_commit(wr));
        embt_writer_free(wr);
        embt_meta_free(meta);
        /* the uninterrupted run */
        train_step(&oa, &a, &ids, &coef, 2, &rules[4]);
        /* load and continue */
        embt_file *f = NULL;
        TU_OK(embt_file_open(&f, path, NULL));
        const embt_table *t;
        TU_OK(embt_file_table(&t, f, "linear.weight"));
        TU_OK(embt_matrix_from_table(&b, t));
        size_t mlen;
        const char *mtext = embt_file_metadata(f, &mlen);
        TU_OK(embt_meta_parse(&meta, mtext, mlen));
        embt_optim ob;
        TU_OK(embt_optim_load(&ob, f, meta, "linear.weight", 8, 4));
        cr_assert_eq(ob.step, 2);
        cr_assert_eq((int)ob.opts.kind, kind);
        cr_assert_eq(ob.opts.lr_decay, oo.lr_decay);
        train_step(&ob, &b, &ids, &coef, 2, &rules[4]);
        fx_assert_bits(b.data, a.data, 32, "resumed weight");
        if (kind == EMBT_OPTIM_ADAGRAD)
            fx_assert_bits(ob.sum, oa.sum, 32, "resumed sum");
        if (kind == EMBT_OPTIM_ADAM) {
            fx_assert_bits(ob.m, oa.m, 32, "resumed m");
            fx_assert_bits(ob.v, oa.v, 32, "resumed v");
        }
        embt_meta_free(meta);
        embt_file_close(f);
        embt_optim_release(&oa);
        embt_optim_release(&ob);
        embt_matrix_release(&a);
        embt_matrix_release(&b);
    }
    fx_free(&w0);
    fx_free(&ids);
    fx_free(&coef);
}

Test(optim, backward_drops_padding_and_scales_by_batch_frequency)
{
    int64_t ids[5] = {3, 1, 3, 2, 3};
    float go[5 * 2] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    int64_t out_ids[5];
    float out[10];
    size_t n = 99;
    TU_OK(embt_embedding_backward(out_ids, out, &n, ids, go, 5, 4, 2, -3, 1)); /* pad -3 = 1 */
    cr_assert_eq(n, 4);
    int64_t want_ids[4] = {3, 3, 2, 3};
    float third = 1.0f / 3.0f;
    float want[8] = {1 * third, 2 * third, 5 * third, 6 * third, 7, 8, 9 * third, 10 * third};
    for (size_t k = 0; k < 4; k++)
        cr_assert_eq(out_ids[k], want_ids[k]);
    fx_assert_bits(out, want, 8, "scaled gradient");
    TU_STATUS(embt_embedding_backward(out_ids, out, &n, ids, go, 5, 3, 2, EMBT_NO_PADDING, 0),
              EMBT_EINVAL); /* id 3 >= rows 3 */
    cr_assert_eq(n, 0);
    TU_STATUS(embt_embedding_backward(out_ids, out, &n, ids, go, 5, 4, 2, 4, 0), EMBT_EINVAL);
}

Test(optim, bad_ids_and_options_change_nothing)
{
    embt_optim_options oo = torch_options(EMBT_OPTIM_ADAM);
    embt_optim o;
    embt_matrix w;
    TU_OK(embt_matrix_alloc(&w, 3, 2));
    TU_OK(embt_optim_init(&o, &oo, 3, 2));
    int64_t ids[2] = {0, 3};
    float g[4] = {1, 1, 1, 1};
    TU_STATUS(embt_optim_step(&o, &w, ids, g, 2), EMBT_EINVAL);
    cr_assert_eq(o.step, 0);
    for (int k = 0; k < 6; k++)
        cr_assert_eq(w.data[k], 0.0f);
    /* an empty gradient (a batch of padding only) still counts the step, as in PyTorch */
    TU_OK(embt_optim_step(&o, &w, NULL, NULL, 0));
    cr_assert_eq(o.step, 1);
    embt_optim_release(&o);
    embt_matrix_release(&w);
    embt_optim bad;
    oo.beta1 = 1.0;
    TU_STATUS(embt_optim_init(&bad, &oo, 3, 2), EMBT_EINVAL);
    embt_optim_kind kind;
    TU_STATUS(embt_optim_parse(&kind, "adamw"), EMBT_EINVAL);
    TU_OK(embt_optim_parse(&kind, "adagrad"));
    cr_assert_eq(kind, EMBT_OPTIM_ADAGRAD);
}
