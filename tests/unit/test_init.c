/* test_init.c: the seeded generator (committed first outputs, computed independently from the
 * published SplitMix64 and xoshiro256** algorithms), its portable log, the initialisers' bounds and
 * moments, padding rows, streamed tables equal to in-memory ones, from_pretrained copies, and checks. */
#include "alloc_hook.h"
#include "test_util.h"
#include "rng.h"
#include "fixtures/torch/fixture.h"

TestSuite(init, .init = tu_setup, .fini = tu_teardown);

Test(init, rng_first_outputs_are_the_committed_values)
{
    /* from a separate Python implementation of prng.di.unimi.it's splitmix64.c and
     * xoshiro256starstar.c */
    static const uint64_t seed0[] = {0x99ec5f36cb75f2b4ull, 0xbf6e1f784956452aull,
                                     0x1a5f849d4933e6e0ull, 0x6aa594f1262d2d2cull};
    static const uint64_t seed42[] = {0x15780b2e0c2ec716ull, 0x6104d9866d113a7eull,
                                      0xae17533239e499a1ull, 0xecb8ad4703b360a1ull};
    embt_rng r;
    embt_rng_seed(&r, 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(embt_rng_u64(&r), seed0[i], "seed 0, output %d", i);
    embt_rng_seed(&r, 42);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(embt_rng_u64(&r), seed42[i], "seed 42, output %d", i);
}

Test(init, normal_and_uniform_tables_start_with_the_committed_values)
{
    /* seed 42: the polar method's first six normals and the first four U(-1, 1), as float32 bits;
     * the same values follow from the documented algorithm with any correctly rounded log */
    static const uint32_t normal[] = {0xbf39e97f, 0xbe584401, 0x3e62f110,
                                      0x3f05d45e, 0x3eeda8a6, 0x3f3db0cb};
    static const uint32_t uniform[] = {0xbf550fea, 0xbe77d934, 0x3eb85d4d, 0x3f59715b};
    float data[6];
    embt_matrix m = {data, 2, 3};
    embt_init_options o = EMBT_INIT_OPTIONS_INIT;
    o.seed = 42;
    TU_OK(embt_init_matrix(&m, &o));
    for (int i = 0; i < 6; i++)
        cr_assert_eq(tu_f32_bits(data[i]), normal[i], "normal %d: %.9g", i, data[i]);
    o.kind = EMBT_INIT_UNIFORM;
    embt_matrix m4 = {data, 1, 4};
    TU_OK(embt_init_matrix(&m4, &o));
    for (int i = 0; i < 4; i++)
        cr_assert_eq(tu_f32_bits(data[i]), uniform[i], "uniform %d: %.9g", i, data[i]);
}

Test(init, portable_log_is_within_two_ulp_of_libm)
{
    uint64_t s = 1;
    for (int i = 0; i < 200000; i++) {
        double x = ldexp((double)(tu_rand(&s) >> 11) * 0x1.0p-53 + 0x1.0p-60, -(int)(i % 70));
        double got = embt__rng_log(x), want = log(x);
        double ulp = nextafter(fabs(want), INFINITY) - fabs(want);
        cr_assert(fabs(got - want) <= 2 * ulp, "log(%a) = %a, libm %a", x, got, want);
    }
    cr_assert_eq(embt__rng_log(1.0), 0.0);
}

static void moments(const float *x, size_t n, double *mean, double *sd, double *lo, double *hi)
{
    double s = 0, s2 = 0;
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        s += x[i];
        s2 += (double)x[i] * x[i];
        *lo = x[i] < *lo ? x[i] : *lo;
        *hi = x[i] > *hi ? x[i] : *hi;
    }
    *mean = s / (double)n;
    *sd = sqrt(s2 / (double)n - *mean * *mean);
}

/* 200,000 draws: the mean's standard error is about 0.0022 std, so 0.01 std is over 4 sigma */
Test(init, distributions_have_the_documented_bounds_and_moments)
{
    enum { R = 400, C = 500 };
    embt_matrix m;
    TU_OK(embt_matrix_alloc(&m, R, C));
    double mean, sd, lo, hi;
    embt_init_options o = EMBT_INIT_OPTIONS_INIT;
    o.seed = 7;
    TU_OK(embt_init_matrix(&m, &o)); /* default: N(0, 1) as nn.Embedding */
    moments(m.data, R * C, &mean, &sd, &lo, &hi);
    cr_assert(fabs(mean) < 0.01 && fabs(sd - 1) < 0.01, "normal: mean %g sd %g", mean, sd);
    o.mean = 3;
    o.std = 0.5;
    TU_OK(embt_init_matrix(&m, &o));
    moments(m.data, R * C, &mean, &sd, &lo, &hi);
    cr_assert(fabs(mean - 3) < 0.005 && fabs(sd - 0.5) < 0.005, "mean %g sd %g", mean, sd);

    o.kind = EMBT_INIT_UNIFORM; /* default U(-1, 1): sd 1/sqrt(3) */
    TU_OK(embt_init_matrix(&m, &o));
    moments(m.data, R * C, &mean, &sd, &lo, &hi);
    cr_assert(lo >= -1 && hi <= 1 && lo < -0.999 && hi > 0.999, "range [%g, %g]", lo, hi);
    cr_assert(fabs(mean) < 0.01 && fabs(sd - 1 / sqrt(3.0)) < 0.01, "mean %g sd %g", mean, sd);

    o.kind = EMBT_INIT_KAIMING_UNIFORM; /* nn.Linear(500, 400).weight: U(+-1/sqrt(500)) */
    TU_OK(embt_init_matrix(&m, &o));
    moments(m.data, R * C, &mean, &sd, &lo, &hi);
    double b = 1 / sqrt(500.0);
    cr_assert(lo >= -b * (1 + 1e-7) && hi <= b * (1 + 1e-7) && hi > 0.999 * b, "[%g, %g]", lo, hi);
    o.fan_in = 7; /* a table read as the transpose: fan_in given */
    TU_OK(embt_init_matrix(&m, &o));
    moments(m.data, R * C, &mean, &sd, &lo, &hi);
    cr_assert(hi <= (1 + 1e-7) / sqrt(7.0) && hi > 0.999 / sqrt(7.0), "max %g", hi);
    o.fan_in = 0;

    o.kind = EMBT_INIT_XAVIER_UNIFORM; /* sqrt(6 / (fan_in + fan_out)) */
    o.gain = 2.0;
    TU_OK(embt_init_matrix(&m, &o));
    moments(m.data, R * C, &mean, &sd, &lo, &hi);
    b = 2.0 * sqrt(6.0 / (R + C));
    cr_assert(lo >= -b * (1 + 1e-7) && hi <= b * (1 + 1e-7) && hi > 0.999 * b, "[%g, %g]", lo, hi);

    o.kind = EMBT_INIT_ZEROS;
    TU_OK(embt_init_matrix(&m, &o));
    moments(m.data, R * C, &mean, &sd, &lo, &hi);
    cr_assert(lo == 0 && hi == 0);
    embt_matrix_release(&m);
    cr_assert_null(m.data);
}

Test(init, same_seed_same_table_other_seed_other_table)
{
    float a[64], b[64];
    embt_matrix ma = {a, 8, 8}, mb = {b, 8, 8};
    embt_init_options o = EMBT_INIT_OPTIONS_INIT;
    for (int kind = 0; kind < 4; kind++) {
        o.kind = (embt_init_kind)kind;
        o.seed = 123;
        TU_OK(embt_init_matrix(&ma, &o));
        TU_OK(embt_init_matrix(&mb, &o));
        cr_assert_eq(memcmp(a, b, sizeof a), 0, "kind %d is deterministic", kind);
        o.seed = 124;
        TU_OK(embt_init_matrix(&mb, &o));
        cr_assert_neq(memcmp(a, b, sizeof a), 0, "kind %d depends on the seed", kind);
    }
}

Test(init, padding_row_is_zeroed_as_nn_embedding_bag_does)
{
    /* nn.EmbeddingBag(7, 5, padding_idx=1): only row 1 is zero */
    fx_array ref = fx_load("module_bag_weight");
    float data[35];
    embt_matrix m = {data, 7, 5};
    int64_t pads[] = {1, -6};
    for (int k = 0; k < 2; k++) {
        embt_init_options o = EMBT_INIT_OPTIONS_INIT;
        o.padding_idx = pads[k];
        TU_OK(embt_init_matrix(&m, &o));
        for (int r = 0; r < 7; r++) {
            bool zero = true, ref_zero = true;
            for (int c = 0; c < 5; c++) {
                zero = zero && data[r * 5 + c] == 0;
                ref_zero = ref_zero && ref.f[r * 5 + c] == 0;
            }
            cr_assert_eq(zero, ref_zero, "padding %lld, row %d", (long long)pads[k], r);
        }
    }
    fx_free(&ref);
}

/* embt_init_write streams the same values as embt_init_matrix, whatever the chunking */
Test(init, streamed_table_equals_the_matrix_and_from_table_copies_it)
{
    enum { R = 3001, C = 37 }; /* several write chunks, odd sizes */
    embt_matrix m;
    TU_OK(embt_matrix_alloc(&m, R, C));
    embt_init_options o = EMBT_INIT_OPTIONS_INIT;
    o.seed = 99;
    o.padding_idx = 2000;
    TU_OK(embt_init_matrix(&m, &o));
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, tu_path("i.embt"), NULL));
    embt_table_spec spec = EMBT_TABLE_SPEC_INIT;
    spec.name = "e";
    spec.rows = R;
    spec.cols = C;
    TU_OK(embt_init_write(w, &spec, &o));
    o.kind = EMBT_INIT_VALUES;
    o.values = m.data;
    spec.name = "v";
    TU_OK(embt_init_write(w, &spec, &o));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    embt_file *f = NULL;
    const embt_table *t, *tv;
    TU_OK(embt_file_open(&f, tu_path("i.embt"), NULL));
    TU_OK(embt_file_table(&t, f, "e"));
    TU_OK(embt_file_table(&tv, f, "v"));
    embt_matrix copy, copy_v;
    TU_OK(embt_matrix_from_table(&copy, t));
    TU_OK(embt_matrix_from_table(&copy_v, tv));
    cr_assert_eq(memcmp(copy.data, m.data, sizeof(float) * R * C), 0);
    cr_assert_eq(memcmp(copy_v.data, m.data, sizeof(float) * R * C), 0);
    for (int c = 0; c < C; c++)
        cr_assert_eq(copy.data[2000 * C + c], 0.0f);
    embt_matrix_release(&copy);
    embt_matrix_release(&copy_v);
    embt_matrix_release(&m);
    embt_file_close(f);
}

Test(init, bad_options_are_einval)
{
    float data[6];
    embt_matrix m = {data, 2, 3};
    embt_init_options o = EMBT_INIT_OPTIONS_INIT;
    o.kind = EMBT_INIT_UNIFORM;
    o.low = 1;
    o.high = 0;
    TU_STATUS(embt_init_matrix(&m, &o), EMBT_EINVAL);
    o.low = -INFINITY;
    TU_STATUS(embt_init_matrix(&m, &o), EMBT_EINVAL);
    o = (embt_init_options)EMBT_INIT_OPTIONS_INIT;
    o.std = -1;
    TU_STATUS(embt_init_matrix(&m, &o), EMBT_EINVAL);
    o.std = NAN;
    TU_STATUS(embt_init_matrix(&m, &o), EMBT_EINVAL);
    o = (embt_init_options)EMBT_INIT_OPTIONS_INIT;
    o.padding_idx = 2;
    TU_STATUS(embt_init_matrix(&m, &o), EMBT_EINVAL);
    o.padding_idx = -3;
    TU_STATUS(embt_init_matrix(&m, &o), EMBT_EINVAL);
    o = (embt_init_options)EMBT_INIT_OPTIONS_INIT;
    o.kind = EMBT_INIT_VALUES;
    TU_STATUS(embt_init_matrix(&m, &o), EMBT_EINVAL);
    o.kind = (embt_init_kind)42;
    TU_STATUS(embt_init_matrix(&m, &o), EMBT_EINVAL);
    o = (embt_init_options)EMBT_INIT_OPTIONS_INIT;
    o.version = 2;
    TU_STATUS(embt_init_matrix(&m, &o), EMBT_EINVAL);
    embt_matrix huge;
    TU_STATUS(embt_matrix_alloc(&huge, UINT64_MAX / 2, 3), EMBT_ELIMIT);
    cr_assert_null(huge.data);
}

/* The shape is checked before the row buffer is sized by it: `embt init --dim 2147483648` asked for
 * 8 GiB first, and a table of 0 rows x 2^31 - 1 (valid) for one 8 GiB row (found by review). */
Test(init, a_wide_table_asks_for_no_large_buffer)
{
    static const uint64_t cols[] = {(uint64_t)1 << 31, ((uint64_t)1 << 31) - 1};
    static const embt_status want[] = {EMBT_ELIMIT, EMBT_OK};
    for (int i = 0; i < 2; i++) {
        embt_writer *w = NULL;
        TU_OK(embt_writer_open(&w, tu_path("wide.embt"), NULL));
        embt_table_spec spec = EMBT_TABLE_SPEC_INIT;
        spec.name = "e";
        spec.rows = 0;
        spec.cols = cols[i];
        TU_OK(embt_set_allocator(ah_malloc, ah_realloc, ah_free));
        ah_arm(0);
        embt_status st = embt_init_write(w, &spec, NULL);
        size_t largest = atomic_load(&ah_largest);
        embt_set_allocator(NULL, NULL, NULL);
        cr_assert_eq(st, want[i], "cols %llu: %s", (unsigned long long)cols[i],
                     embt_status_name(st));
        cr_assert_lt(largest, (size_t)1 << 20, "cols %llu: %zu bytes asked for",
                     (unsigned long long)cols[i], largest);
        embt_writer_free(w);
    }
}
