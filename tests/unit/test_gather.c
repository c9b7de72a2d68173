/* test_gather.c: embt_gather / embt_matrix_gather / embt_renorm against PyTorch 1.13's F.embedding
 * (tests/fixtures/torch/ops.txt): f32 and f16 bit for bit, max_norm within 1e-6 relative; the portable
 * and F16C f16 kernels over all 65,536 inputs; ids and options checked before any read; threads. */
#include "test_util.h"
#include "fixtures/torch/fixture.h"

TestSuite(gather, .init = tu_setup, .fini = tu_teardown);

/* Writes a stand-alone table "t" of (rows, cols) float32 values stored as `dtype` and opens it. */
static embt_file *table_file(const char *name, embt_dtype dtype, uint64_t rows, uint64_t cols,
                             const float *data, const embt_table **table_out)
{
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, tu_path(name), NULL));
    embt_table_spec spec = EMBT_TABLE_SPEC_INIT;
    spec.name = "t";
    spec.dtype = dtype;
    spec.rows = rows;
    spec.cols = cols;
    TU_OK(embt_writer_add_table_f32(w, &spec, data));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, tu_path(name), NULL));
    TU_OK(embt_file_table(table_out, f, "t"));
    return f;
}

Test(gather, f32_rows_and_padding_idx_match_pytorch_bit_for_bit)
{
    fx_array w = fx_load("weight"), ids = fx_load("ids");
    const embt_table *t;
    embt_file *f = table_file("w.embt", EMBT_DTYPE_F32, w.shape[0], w.shape[1], w.f, &t);
    const char *names[] = {"emb_plain", "emb_pad2", "emb_pad_neg1"};
    int64_t pads[] = {EMBT_NO_PADDING, 2, -1};
    for (int k = 0; k < 3; k++) {
        fx_array want = fx_load(names[k]);
        float got[60];
        embt_gather_options o = EMBT_GATHER_OPTIONS_INIT;
        o.padding_idx = pads[k];
        TU_OK(embt_gather(got, t, ids.i, ids.n, &o));
        fx_assert_bits(got, want.f, want.n, names[k]);
        /* the same through a writable matrix */
        embt_matrix m;
        TU_OK(embt_matrix_from_table(&m, t));
        memset(got, 0, sizeof got);
        TU_OK(embt_matrix_gather(got, &m, ids.i, ids.n, &o));
        fx_assert_bits(got, want.f, want.n, names[k]);
        embt_matrix_release(&m);
        fx_free(&want);
    }
    embt_file_close(f);
    fx_free(&w);
    fx_free(&ids);
}

/* max_norm: PyTorch renormalises in place; embt_gather only in its output, embt_matrix_gather in the
 * matrix too. Tolerance 1e-6 relative: PyTorch sums the norm in float32 lanes, embt in double. */
Test(gather, max_norm_matches_pytorch_for_p_1_2_3_in_output_and_in_place)
{
    fx_array w = fx_load("weight"), ids = fx_load("ids");
    const embt_table *t;
    embt_file *f = table_file("w.embt", EMBT_DTYPE_F32, w.shape[0], w.shape[1], w.f, &t);
    size_t n_ids = 8; /* the first two rows of ids, as make_fixtures.py */
    for (int p = 1; p <= 3; p++) {
        char name[64];
        snprintf(name, sizeof name, "emb_maxnorm_p%d", p);
        fx_array want = fx_load(name);
        snprintf(name, sizeof name, "weight_after_p%d", p);
        fx_array after = fx_load(name);
        embt_gather_options o = EMBT_GATHER_OPTIONS_INIT;
        o.max_norm = 2.5;
        o.norm_type = p;
        float got[40];
        TU_OK(embt_gather(got, t, ids.i, n_ids, &o));
        fx_assert_close(got, want.f, want.n, 1e-6, 0.0, "gather output");
        embt_matrix m;
        TU_OK(embt_matrix_from_table(&m, t));
        memset(got, 0, sizeof got);
        TU_OK(embt_matrix_gather(got, &m, ids.i, n_ids, &o));
        fx_assert_close(got, want.f, want.n, 1e-6, 0.0, "matrix gather output");
        fx_assert_close(m.data, after.f, after.n, 1e-6, 0.0, "weight after");
        /* row 6 is not looked up: untouched, bit for bit */
        fx_assert_bits(m.data + 6 * 5, w.f + 6 * 5, 5, "row 6");
        embt_matrix_release(&m);
        fx_free(&want);
        fx_free(&after);
    }
    embt_file_close(f);
    fx_free(&w);
    fx_free(&ids);
}

Test(gather, renorm_scales_each_distinct_row_once)
{
    /* one row of norm 10 (p = 2) named three times: scaled once by 2 / (10 + 1e-7) */
    float data[4] = {6, 8, 0.5f, 0.5f};
    embt_matrix m = {data, 2, 2};
    int64_t ids[] = {0, 0, 1, 0};
    TU_OK(embt_renorm(&m, ids, 4, 2.0, 2.0));
    float s = (float)(2.0 / (10.0 + 1e-7));
    cr_assert_eq(tu_f32_bits(data[0]), tu_f32_bits(6 * s));
    cr_assert_eq(tu_f32_bits(data[1]), tu_f32_bits(8 * s));
    cr_assert_eq(data[2], 0.5f, "a row under max_norm is untouched");
    /* infinity norm: max |x| */
    float inf_data[3] = {-4, 1, 2};
    embt_matrix mi = {inf_data, 1, 3};
    TU_OK(embt_renorm(&mi, ids, 1, 1.0, INFINITY));
    cr_assert_eq(tu_f32_bits(inf_data[0]), tu_f32_bits(-4 * (float)(1.0 / (4.0 + 1e-7))));
}

Test(gather, f16_rows_match_pytorch_bit_for_bit_on_both_kernels)
{
    fx_array w = fx_load("weight_f16_as_f32"), ids = fx_load("ids"), want = fx_load("emb_f16");
    const embt_table *t;
    embt_file *f = table_file("h.embt", EMBT_DTYPE_F16, w.shape[0], w.shape[1], w.f, &t);
    for (unsigned flags = 0; flags <= EMBT_OPS_GENERIC; flags++) {
        embt_gather_options o = EMBT_GATHER_OPTIONS_INIT;
        o.flags = flags;
        float got[60];
        TU_OK(embt_gather(got, t, ids.i, ids.n, &o));
        fx_assert_bits(got, want.f, want.n, flags ? "generic" : "default");
    }
    embt_file_close(f);
    fx_free(&w);
    fx_free(&ids);
    fx_free(&want);
}

static bool is_snan16(uint16_t h)
{
    return (h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0 && (h & 0x200u) == 0;
}

/* Every binary16 pattern, laid out (rows, cols) with cols 8 (vector body) and 13 (body and tail):
 * the portable kernel equals dtype.c's converter bit for bit; the F16C kernel too, except that a
 * signalling NaN comes back as a NaN (quietened by the instruction). */
Test(gather, f16_kernels_agree_with_the_reference_converter_on_every_pattern)
{
    size_t widths[] = {8, 13};
    for (int k = 0; k < 2; k++) {
        size_t cols = widths[k], rows = (65536 + cols - 1) / cols, n = rows * cols;
        uint16_t *bits = calloc(n, 2);
        float *want = calloc(n, 4), *got = calloc(n, 4);
        int64_t *ids = calloc(rows, 8);
        for (size_t i = 0; i < n; i++)
            bits[i] = (uint16_t)(i * 40503u); /* a permutation of 0..65535 (40503 is odd) */
        embt_f16_to_f32(want, bits, n);
        embt_writer *wr = NULL;
        TU_OK(embt_writer_open(&wr, tu_path("all.embt"), NULL));
        embt_table_spec spec = EMBT_TABLE_SPEC_INIT;
        spec.name = "t";
        spec.dtype = EMBT_DTYPE_F16;
        spec.rows = rows;
        spec.cols = cols;
        TU_OK(embt_writer_table_begin(wr, &spec));
        TU_OK(embt_writer_table_append_raw(wr, bits, rows, NULL));
        TU_OK(embt_writer_table_end(wr));
        TU_OK(embt_writer_commit(wr));
        embt_writer_free(wr);
        embt_file *f = NULL;
        const embt_table *t;
        TU_OK(embt_file_open(&f, tu_path("all.embt"), NULL));
        TU_OK(embt_file_table(&t, f, "t"));
        for (size_t r = 0; r < rows; r++)
            ids[r] = (int64_t)(rows - 1 - r); /* reversed: dst row r is table row rows-1-r */
        embt_gather_options o = EMBT_GATHER_OPTIONS_INIT;
        o.flags = EMBT_OPS_GENERIC | EMBT_OPS_ONE_THREAD;
        TU_OK(embt_gather(got, t, ids, rows, &o));
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < cols; c++) {
                size_t g = r * cols + c, s = (rows - 1 - r) * cols + c;
                cr_assert_eq(tu_f32_bits(got[g]), tu_f32_bits(want[s]), "generic: f16 %04x",
                             bits[s]);
            }
        o.flags = 0;
        TU_OK(embt_gather(got, t, ids, rows, &o));
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < cols; c++) {
                size_t g = r * cols + c, s = (rows - 1 - r) * cols + c;
                if (is_snan16(bits[s]))
                    cr_assert(isnan(got[g]), "default: f16 %04x", bits[s]);
                else
                    cr_assert_eq(tu_f32_bits(got[g]), tu_f32_bits(want[s]), "default: f16 %04x",
                                 bits[s]);
            }
        embt_file_close(f);
        free(bits);
        free(want);
        free(got);
        free(ids);
    }
}

Test(gather, every_dtype_gives_the_rows_of_read_row_f32)
{
    enum { R = 9, C = 6 };
    float data[R * C];
    for (int i = 0; i < R * C; i++)
        data[i] = tu_value((uint64_t)i / C, (uint64_t)i % C) * 3.0f;
    embt_dtype dtypes[] = {EMBT_DTYPE_F32, EMBT_DTYPE_F16, EMBT_DTYPE_BF16, EMBT_DTYPE_F64,
                           EMBT_DTYPE_I8,  EMBT_DTYPE_I32, EMBT_DTYPE_U8};
    int64_t ids[] = {8, 0, 3, 3, 7};
    for (size_t k = 0; k < sizeof dtypes / sizeof dtypes[0]; k++) {
        float pos[R * C]; /* u8 stores no negatives */
        for (int i = 0; i < R * C; i++)
            pos[i] = dtypes[k] == EMBT_DTYPE_U8 ? fabsf(data[i]) : data[i];
        const embt_table *t;
        embt_file *f = table_file("d.embt", dtypes[k], R, C, pos, &t);
        float got[5 * C], want[C];
        TU_OK(embt_gather(got, t, ids, 5, NULL));
        for (int i = 0; i < 5; i++) {
            TU_OK(embt_table_read_row_f32(want, t, (uint64_t)ids[i]));
            fx_assert_bits(got + i * C, want, C, embt_dtype_name(dtypes[k]));
        }
        embt_file_close(f);
    }
}

Test(gather, ids_out_of_range_fail_before_anything_is_written)
{
    float data[12] = {0};
    const embt_table *t;
    embt_file *f = table_file("w.embt", EMBT_DTYPE_F32, 4, 3, data, &t);
    int64_t bad[][3] = {{0, 4, 1}, {0, 1, -1}, {INT64_MAX, 0, 0}};
    uint64_t at[] = {1, 2, 0};
    for (int k = 0; k < 3; k++) {
        float dst[9];
        for (int i = 0; i < 9; i++)
            dst[i] = 42.0f;
        TU_STATUS(embt_gather(dst, t, bad[k], 3, NULL), EMBT_EINVAL);
        cr_assert_eq(embt_error_last()->offset, at[k], "the offset is the id's position");
        for (int i = 0; i < 9; i++)
            cr_assert_eq(dst[i], 42.0f, "dst untouched");
        embt_matrix m = {data, 4, 3};
        TU_STATUS(embt_matrix_gather(dst, &m, bad[k], 3, NULL), EMBT_EINVAL);
        TU_STATUS(embt_renorm(&m, bad[k], 3, 1.0, 2.0), EMBT_EINVAL);
    }
    embt_file_close(f);
}

Test(gather, bad_options_are_einval)
{
    float data[12] = {0}, dst[3];
    const embt_table *t;
    embt_file *f = table_file("w.embt", EMBT_DTYPE_F32, 4, 3, data, &t);
    int64_t id = 1;
    struct {
        int64_t pad;
        double max_norm, norm_type;
        unsigned version;
        embt_status want;
    } cases[] = {
        {4, 0, 2, EMBT_GATHER_OPTIONS_VERSION, EMBT_EINVAL},
        {-5, 0, 2, EMBT_GATHER_OPTIONS_VERSION, EMBT_EINVAL},
        {-4, 0, 2, EMBT_GATHER_OPTIONS_VERSION, EMBT_OK},
        {3, 0, 2, EMBT_GATHER_OPTIONS_VERSION, EMBT_OK},
        {EMBT_NO_PADDING, -1, 2, EMBT_GATHER_OPTIONS_VERSION, EMBT_EINVAL},
        {EMBT_NO_PADDING, NAN, 2, EMBT_GATHER_OPTIONS_VERSION, EMBT_EINVAL},
        {EMBT_NO_PADDING, 1, 0, EMBT_GATHER_OPTIONS_VERSION, EMBT_EINVAL},
        {EMBT_NO_PADDING, 1, -2, EMBT_GATHER_OPTIONS_VERSION, EMBT_EINVAL},
        {EMBT_NO_PADDING, 0, 2, 99, EMBT_EINVAL},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        embt_gather_options o = EMBT_GATHER_OPTIONS_INIT;
        o.padding_idx = cases[k].pad;
        o.max_norm = cases[k].max_norm;
        o.norm_type = cases[k].norm_type;
        o.version = cases[k].version;
        embt_status st = embt_gather(dst, t, &id, 1, &o);
        cr_assert_eq(st, cases[k].want, "case %zu: %s", k, embt_status_name(st));
    }
    embt_file_close(f);
}

/* Large calls run on several threads; the result is the single-threaded one, bit for bit. */
Test(gather, threaded_gather_equals_single_threaded)
{
    enum { R = 1000, C = 64, N = 40000 }; /* 10 MiB of output: split over threads */
    float *data = malloc(sizeof(float) * R * C);
    for (int i = 0; i < R * C; i++)
        data[i] = tu_value((uint64_t)i, 1);
    embt_dtype dtypes[] = {EMBT_DTYPE_F32, EMBT_DTYPE_F16, EMBT_DTYPE_BF16};
    int64_t *ids = malloc(sizeof(int64_t) * N);
    uint64_t s = 5;
    for (int i = 0; i < N; i++)
        ids[i] = (int64_t)(tu_rand(&s) % R);
    float *a = malloc(sizeof(float) * N * C), *b = malloc(sizeof(float) * N * C);
    for (int k = 0; k < 3; k++) {
        const embt_table *t;
        embt_file *f = table_file("big.embt", dtypes[k], R, C, data, &t);
        embt_gather_options o = EMBT_GATHER_OPTIONS_INIT;
        o.max_norm = 3.0;
        TU_OK(embt_gather(a, t, ids, N, &o));
        o.flags = EMBT_OPS_ONE_THREAD;
        TU_OK(embt_gather(b, t, ids, N, &o));
        cr_assert_eq(memcmp(a, b, sizeof(float) * N * C), 0);
        embt_file_close(f);
    }
    free(data);
    free(ids);
    free(a);
    free(b);
}
