/* test_bag.c: embt_bag / embt_matrix_bag against PyTorch 1.13's F.embedding_bag
 * (tests/fixtures/torch/ops.txt): every mode with offsets, include_last_offset, fixed-length bags,
 * per_sample_weights, padding_idx (positive and negative), max_norm and empty bags, within 1e-6
 * relative; then the checks of offsets, ids and options. */
#include "test_util.h"
#include "fixtures/torch/fixture.h"

TestSuite(bag, .init = tu_setup, .fini = tu_teardown);

static embt_file *weight_file(const embt_table **table_out, fx_array *w)
{
    *w = fx_load("weight");
    embt_writer *wr = NULL;
    TU_OK(embt_writer_open(&wr, tu_path("w.embt"), NULL));
    tu_add_table(wr, "t", w->shape[0], w->shape[1], NULL, w->f);
    TU_OK(embt_writer_commit(wr));
    embt_writer_free(wr);
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, tu_path("w.embt"), NULL));
    TU_OK(embt_file_table(table_out, f, "t"));
    return f;
}

/* Runs one case on the table and on a matrix copy and compares both with fixture `name`.
 * Tolerance: 1e-6 relative with a floor of 1e-6 (sums may cancel; values are O(1)). */
static void check_case(const embt_table *t, const char *name, const fx_array *ids,
                       const fx_array *offsets, const float *psw, const embt_bag_options *o)
{
    fx_array want = fx_load(name);
    float got[64];
    for (int i = 0; i < 64; i++)
        got[i] = 99.0f;
    const int64_t *off = offsets ? offsets->i : NULL;
    size_t n_off = offsets ? offsets->n : 0;
    size_t n_bags;
    TU_OK(embt_bag_count(&n_bags, ids->n, off, n_off, o));
    cr_assert_eq(n_bags * 5, want.n, "%s: %zu bags", name, n_bags);
    TU_OK(embt_bag(got, t, ids->i, ids->n, off, n_off, psw, o));
    fx_assert_close(got, want.f, want.n, 1e-6, 1e-6, name);
    cr_assert_eq(got[want.n], 99.0f, "%s: nothing written past B rows", name);
    embt_matrix m;
    TU_OK(embt_matrix_from_table(&m, t));
    memset(got, 0, sizeof got);
    TU_OK(embt_matrix_bag(got, &m, ids->i, ids->n, off, n_off, psw, o));
    fx_assert_close(got, want.f, want.n, 1e-6, 1e-6, name);
    embt_matrix_release(&m);
    fx_free(&want);
}

Test(bag, every_mode_and_option_matches_pytorch)
{
    fx_array w;
    const embt_table *t;
    embt_file *f = weight_file(&t, &w);
    fx_array ids = fx_load("bag_ids"), off = fx_load("bag_offsets");
    fx_array off_last = fx_load("bag_offsets_last"), ids2 = fx_load("bag2d_ids");
    const char *modes[] = {"sum", "mean", "max"};
    for (int k = 0; k < 3; k++) {
        embt_bag_options o = EMBT_BAG_OPTIONS_INIT;
        o.mode = (embt_bag_mode)k;
        char name[64];
        snprintf(name, sizeof name, "bag_%s", modes[k]);
        check_case(t, name, &ids, &off, NULL, &o);

        embt_bag_options ol = o;
        ol.include_last_offset = 1;
        snprintf(name, sizeof name, "bag_%s_last", modes[k]);
        check_case(t, name, &ids, &off_last, NULL, &ol);

        embt_bag_options op = o;
        op.padding_idx = 4;
        snprintf(name, sizeof name, "bag_%s_pad4", modes[k]);
        check_case(t, name, &ids, &off, NULL, &op);
        op.padding_idx = -3;
        snprintf(name, sizeof name, "bag_%s_padneg3", modes[k]);
        check_case(t, name, &ids, &off, NULL, &op);

        embt_bag_options om = o;
        om.max_norm = 2.5;
        snprintf(name, sizeof name, "bag_%s_maxnorm", modes[k]);
        check_case(t, name, &ids, &off, NULL, &om);

        embt_bag_options of = o;
        of.bag_size = ids2.shape[1];
        snprintf(name, sizeof name, "bag2d_%s", modes[k]);
        check_case(t, name, &ids2, NULL, NULL, &of);
    }
    fx_array psw = fx_load("bag_psw");
    embt_bag_options o = EMBT_BAG_OPTIONS_INIT;
    o.mode = EMBT_BAG_SUM;
    check_case(t, "bag_sum_psw", &ids, &off, psw.f, &o);
    o.padding_idx = 4;
    check_case(t, "bag_sum_psw_pad4", &ids, &off, psw.f, &o);
    embt_file_close(f);
    fx_free(&w);
    fx_free(&ids);
    fx_free(&off);
    fx_free(&off_last);
    fx_free(&ids2);
    fx_free(&psw);
}

Test(bag, max_norm_on_a_matrix_rewrites_the_looked_up_rows)
{
    fx_array w;
    const embt_table *t;
    embt_file *f = weight_file(&t, &w);
    embt_matrix m;
    TU_OK(embt_matrix_from_table(&m, t));
    int64_t ids[] = {0, 2, 2};
    int64_t offsets[] = {0};
    embt_bag_options o = EMBT_BAG_OPTIONS_INIT;
    o.max_norm = 0.5;
    float out[5];
    TU_OK(embt_matrix_bag(out, &m, ids, 3, offsets, 1, NULL, &o));
    for (int r = 0; r < 7; r++) {
        double n2 = 0;
        for (int c = 0; c < 5; c++)
            n2 += (double)m.data[r * 5 + c] * m.data[r * 5 + c];
        if (r == 0 || r == 2)
            cr_assert(sqrt(n2) <= 0.5, "row %d renormalised (norm %g)", r, sqrt(n2));
        else
            fx_assert_bits(m.data + r * 5, w.f + r * 5, 5, "untouched row");
    }
    embt_matrix_release(&m);
    embt_file_close(f);
    fx_free(&w);
}

Test(bag, bad_offsets_ids_and_options_are_einval_and_leave_dst_untouched)
{
    fx_array w;
    const embt_table *t;
    embt_file *f = weight_file(&t, &w);
    int64_t ids[] = {1, 2, 3, 4};
    float psw[] = {1, 1, 1, 1};
    struct {
        const char *what;
        int64_t offsets[3];
        size_t n_offsets;
        int64_t bad_id;
        int mode;
        int last;
        size_t bag_size;
        bool psw;
        int64_t pad;
    } cases[] = {
        {"first offset not 0", {1, 2, 3}, 3, 1, 1, 0, 0, false, EMBT_NO_PADDING},
        {"decreasing offsets", {0, 3, 2}, 3, 1, 1, 0, 0, false, EMBT_NO_PADDING},
        {"offset beyond the ids", {0, 2, 5}, 3, 1, 1, 0, 0, false, EMBT_NO_PADDING},
        {"negative offset", {0, -1, 2}, 3, 1, 1, 0, 0, false, EMBT_NO_PADDING},
        {"id out of range", {0, 2, 3}, 3, 7, 1, 0, 0, false, EMBT_NO_PADDING},
        {"negative id", {0, 2, 3}, 3, -1, 1, 0, 0, false, EMBT_NO_PADDING},
        {"weights with mean", {0, 2, 3}, 3, 1, 1, 0, 0, true, EMBT_NO_PADDING},
        {"weights with max", {0, 2, 3}, 3, 1, 2, 0, 0, true, EMBT_NO_PADDING},
        {"unknown mode", {0, 2, 3}, 3, 1, 3, 0, 0, false, EMBT_NO_PADDING},
        {"last offset with none", {0}, 0, 1, 1, 1, 0, false, EMBT_NO_PADDING},
        {"fixed size not dividing", {0}, 0, 1, 1, 0, 3, false, EMBT_NO_PADDING},
        {"no offsets, no size", {0}, 0, 1, 1, 0, 0, false, EMBT_NO_PADDING},
        {"padding out of range", {0, 2, 3}, 3, 1, 1, 0, 0, false, 7},
        {"padding below -rows", {0, 2, 3}, 3, 1, 1, 0, 0, false, -8},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int64_t my_ids[4];
        memcpy(my_ids, ids, sizeof ids);
        my_ids[3] = cases[k].bad_id == 1 ? 4 : cases[k].bad_id;
        embt_bag_options o = EMBT_BAG_OPTIONS_INIT;
        o.mode = (embt_bag_mode)cases[k].mode;
        o.include_last_offset = cases[k].last;
        o.bag_size = cases[k].bag_size;
        o.padding_idx = cases[k].pad;
        float dst[20];
        for (int i = 0; i < 20; i++)
            dst[i] = 7.0f;
        const int64_t *off = cases[k].n_offsets || cases[k].last ? cases[k].offsets : NULL;
        embt_status st =
            embt_bag(dst, t, my_ids, 4, off, cases[k].n_offsets, cases[k].psw ? psw : NULL, &o);
        cr_assert_eq(st, EMBT_EINVAL, "%s: %s", cases[k].what, embt_status_name(st));
        for (int i = 0; i < 20; i++)
            cr_assert_eq(dst[i], 7.0f, "%s: dst untouched", cases[k].what);
    }
    embt_file_close(f);
    fx_free(&w);
}

Test(bag, empty_input_and_all_padding_bags_give_zeros)
{
    fx_array w;
    const embt_table *t;
    embt_file *f = weight_file(&t, &w);
    int64_t offsets[] = {0, 0, 0};
    float dst[15];
    for (int mode = 0; mode < 3; mode++) {
        embt_bag_options o = EMBT_BAG_OPTIONS_INIT;
        o.mode = (embt_bag_mode)mode;
        for (int i = 0; i < 15; i++)
            dst[i] = 5.0f;
        TU_OK(embt_bag(dst, t, NULL, 0, offsets, 3, NULL, &o));
        for (int i = 0; i < 15; i++)
            cr_assert_eq(dst[i], 0.0f, "mode %d: empty bags are zeros", mode);
        int64_t pads[] = {3, 3};
        int64_t two[] = {0};
        o.padding_idx = 3;
        TU_OK(embt_bag(dst, t, pads, 2, two, 1, NULL, &o));
        for (int i = 0; i < 5; i++)
            cr_assert_eq(dst[i], 0.0f, "mode %d: an all-padding bag is zeros", mode);
    }
    embt_file_close(f);
    fx_free(&w);
}
