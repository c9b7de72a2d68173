/* test_linear.c: embt_linear / embt_matrix_linear against PyTorch 1.13's nn.Linear
 * (tests/fixtures/torch/ops.txt) within 1e-6 relative, and the seed's point: a gather of ids equals a
 * Linear with W = E^T applied to one-hot rows, bit for bit. */
#include "test_util.h"
#include "fixtures/torch/fixture.h"

TestSuite(linear, .init = tu_setup, .fini = tu_teardown);

/* Writes tables "w" (out, in) and, if b is not NULL, "b" (rank 1, out) and opens the file. */
static embt_file *linear_file(const fx_array *w, const fx_array *b)
{
    embt_writer *wr = NULL;
    TU_OK(embt_writer_open(&wr, tu_path("lin.embt"), NULL));
    embt_table_spec spec = EMBT_TABLE_SPEC_INIT;
    spec.name = "w";
    spec.rows = w->shape[0];
    spec.cols = w->shape[1];
    TU_OK(embt_writer_add_table_f32(wr, &spec, w->f));
    if (b) {
        spec.name = "b";
        spec.rank = 1;
        spec.rows = b->n;
        spec.cols = 1;
        TU_OK(embt_writer_add_table_f32(wr, &spec, b->f));
    }
    TU_OK(embt_writer_commit(wr));
    embt_writer_free(wr);
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, tu_path("lin.embt"), NULL));
    return f;
}

Test(linear, forward_matches_pytorch_with_and_without_bias)
{
    fx_array w = fx_load("linear_weight"), b = fx_load("linear_bias"), x = fx_load("linear_x");
    fx_array y = fx_load("linear_y"), y0 = fx_load("linear_y_nobias");
    embt_file *f = linear_file(&w, &b);
    const embt_table *tw, *tb;
    TU_OK(embt_file_table(&tw, f, "w"));
    TU_OK(embt_file_table(&tb, f, "b"));
    size_t n = x.shape[0];
    float got[12];
    /* tolerance: 1e-6 relative, floor 1e-6 (outputs are O(1)); PyTorch's sgemm sums in float32 */
    TU_OK(embt_linear(got, x.f, n, tw, tb));
    fx_assert_close(got, y.f, y.n, 1e-6, 1e-6, "with bias");
    TU_OK(embt_linear(got, x.f, n, tw, NULL));
    fx_assert_close(got, y0.f, y0.n, 1e-6, 1e-6, "without bias");
    embt_matrix mw = {w.f, w.shape[0], w.shape[1]}, mb = {b.f, 1, b.n};
    TU_OK(embt_matrix_linear(got, x.f, n, &mw, &mb));
    fx_assert_close(got, y.f, y.n, 1e-6, 1e-6, "matrices");
    embt_matrix mb_col = {b.f, b.n, 1};
    TU_OK(embt_matrix_linear(got, x.f, n, &mw, &mb_col));
    fx_assert_close(got, y.f, y.n, 1e-6, 1e-6, "bias as a column");
    embt_matrix bad = {b.f, 1, 2};
    TU_STATUS(embt_matrix_linear(got, x.f, n, &mw, &bad), EMBT_EINVAL);
    embt_matrix bad2 = {x.f, 3, 3};
    TU_STATUS(embt_matrix_linear(got, x.f, n, &mw, &bad2), EMBT_EINVAL);
    embt_file_close(f);
    fx_free(&w);
    fx_free(&b);
    fx_free(&x);
    fx_free(&y);
    fx_free(&y0);
}

/* nn.Embedding(V, D) and nn.Linear(V, D, bias=False) with weight = E^T compute the same function on
 * one-hot inputs (ANCHORS 3.1): every product but one is an exact zero, so equality is exact. */
Test(linear, gather_of_ids_equals_linear_on_one_hot_rows)
{
    fx_array e = fx_load("weight"), ids = fx_load("ids");
    size_t v = e.shape[0], d = e.shape[1], n = ids.n;
    float *et = malloc(sizeof(float) * v * d); /* (d, v) = E^T */
    for (size_t r = 0; r < v; r++)
        for (size_t c = 0; c < d; c++)
            et[c * v + r] = e.f[r * d + c];
    float *x = calloc(n * v, sizeof(float)); /* (n, v) one-hot */
    for (size_t i = 0; i < n; i++)
        x[i * v + (size_t)ids.i[i]] = 1.0f;
    float *y = malloc(sizeof(float) * n * d), *g = malloc(sizeof(float) * n * d);
    embt_matrix w = {et, d, v}, emb = {e.f, v, d};
    TU_OK(embt_matrix_linear(y, x, n, &w, NULL));
    TU_OK(embt_matrix_gather(g, &emb, ids.i, n, NULL));
    fx_assert_bits(y, g, n * d, "linear(one-hot) vs gather");
    free(et);
    free(x);
    free(y);
    free(g);
    fx_free(&e);
    fx_free(&ids);
}

Test(linear, f16_weights_read_as_their_float32_values)
{
    fx_array w = fx_load("linear_weight"), x = fx_load("linear_x");
    /* store W as f16, then compare with a float32 Linear on the rounded weights */
    embt_writer *wr = NULL;
    TU_OK(embt_writer_open(&wr, tu_path("h.embt"), NULL));
    embt_table_spec spec = EMBT_TABLE_SPEC_INIT;
    spec.name = "w";
    spec.dtype = EMBT_DTYPE_F16;
    spec.rows = w.shape[0];
    spec.cols = w.shape[1];
    TU_OK(embt_writer_add_table_f32(wr, &spec, w.f));
    TU_OK(embt_writer_commit(wr));
    embt_writer_free(wr);
    embt_file *f = NULL;
    const embt_table *t;
    TU_OK(embt_file_open(&f, tu_path("h.embt"), NULL));
    TU_OK(embt_file_table(&t, f, "w"));
    embt_matrix m;
    TU_OK(embt_matrix_from_table(&m, t));
    float a[12], b[12];
    TU_OK(embt_linear(a, x.f, 4, t, NULL));
    TU_OK(embt_matrix_linear(b, x.f, 4, &m, NULL));
    fx_assert_bits(a, b, 12, "f16 table vs its f32 copy");
    embt_matrix_release(&m);
    embt_file_close(f);
    fx_free(&w);
    fx_free(&x);
}
