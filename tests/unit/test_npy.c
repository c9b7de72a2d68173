/* test_npy.c: .npy import and export: numpy-written fixtures of every version, descr, order and rank
 * import to the values numpy meant (tests/fixtures/numpy/expected.h), conversions round once,
 * hand-built header dicts (accepted and rejected), every malformed class with its status and byte
 * offset and no output left behind, and export byte-identical to np.save. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "fixtures/numpy/expected.h"
#include "internal.h"
#include "npy.h"
#include "test_util.h"

TestSuite(npy, .init = tu_setup, .fini = tu_teardown);

#define ANY_OFFSET (EMBT_NO_OFFSET - 1)

/* Parameters hold their strings (Criterion may run a test in a fresh process image). */
typedef struct name_param {
    char name[32];
} name_param;

static embt_status import_file(const char *in, const embt_convert_options *o)
{
    embt_convert_options d = EMBT_CONVERT_OPTIONS_INIT;
    if (!o) {
        d.from = EMBT_FORMAT_NPY;
        o = &d;
    }
    return embt_convert_file(in, tu_path("out.embt"), o);
}

static embt_file *open_out(void)
{
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, tu_path("out.embt"), NULL));
    return f;
}

static const embt_table *table_of(const embt_file *f, const char *name)
{
    const embt_table *t = NULL;
    TU_OK(embt_file_table(&t, f, name));
    return t;
}

/* The table holds exactly these bytes (row-major, little-endian). */
static void expect_bytes(const embt_table *t, embt_dtype dtype, uint64_t rows, uint64_t cols,
                         const void *want, size_t elem_size)
{
    cr_assert_eq(embt_table_dtype(t), dtype, "dtype %d, expected %d", embt_table_dtype(t), dtype);
    cr_assert_eq(embt_table_rows(t), rows);
    cr_assert_eq(embt_table_cols(t), cols);
    if (rows != 0)
        cr_assert(memcmp(embt_table_data(t), want, rows * cols * elem_size) == 0,
                  "table values differ from numpy's");
}

/* Import fails with `code` at `offset` and leaves no output (nor temporary file) behind. */
static void expect_failure(const char *in, const embt_convert_options *o, embt_status code,
                           uint64_t offset)
{
    size_t before = tu_count_entries();
    TU_STATUS(import_file(in, o), code);
    if (offset != ANY_OFFSET)
        cr_assert_eq(embt_error_last()->offset, offset, "offset %llu, expected %llu (%s)",
                     (unsigned long long)embt_error_last()->offset, (unsigned long long)offset,
                     embt_error_last()->message);
    cr_assert_not(tu_exists(tu_path("out.embt")));
    cr_assert_eq(tu_count_entries(), before, "a file was left behind");
}

/* Writes a .npy with header dict `dict` (version major.0, padded to 64 like numpy) and n data
 * bytes; returns its path. */
static const char *make_npy(const char *name, unsigned major, const char *dict, const void *data,
                            size_t n)
{
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t hlen = dl + 1, pad = 64 - (pre + hlen) % 64;
    size_t total = pre + hlen + pad + n;
    uint8_t *b = malloc(total);
    cr_assert_not_null(b);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    if (major == 1)
        embt__put16(b + 8, (uint16_t)(hlen + pad));
    else
        embt__put32(b + 8, (uint32_t)(hlen + pad));
    memcpy(b + pre, dict, dl);
    memset(b + pre + dl, ' ', pad);
    b[pre + dl + pad] = '\n';
    if (n)
        memcpy(b + pre + hlen + pad, data, n);
    const char *path = tu_path(name);
    tu_write_file(path, b, total);
    free(b);
    return path;
}

/* ---- numpy's fixtures -------------------------------------------------------------------------- */

ParameterizedTestParameters(npy, every_f4_variant_imports_numpys_values)
{
    static name_param names[] = {{"f4_c.npy"},          {"f4_be.npy"}, {"f4_fortran.npy"},
                                 {"f4_fortran_be.npy"}, {"f4_v2.npy"}, {"f4_v3.npy"}};
    return cr_make_param_array(name_param, names, sizeof names / sizeof names[0]);
}

ParameterizedTest(name_param *name, npy, every_f4_variant_imports_numpys_values)
{
    TU_OK(import_file(tu_fixture("numpy", name->name), NULL));
    embt_file *f = open_out();
    const embt_table *t = table_of(f, "embedding");
    cr_assert_eq(embt_table_rank(t), 2);
    cr_assert_null(embt_table_vocab(t));
    expect_bytes(t, EMBT_DTYPE_F32, 3, 4, exp_e_f32, 4);
    size_t len;
    const char *meta = embt_file_metadata(f, &len);
    cr_assert_not_null(meta);
    char *m = strndup(meta, len);
    cr_assert_not_null(strstr(m, "format: npy"), "%s", m);
    cr_assert_not_null(strstr(m, "shape: [3, 4]"), "%s", m);
    free(m);
    embt_file_close(f);
}

ParameterizedTestParameters(npy, f8_keeps_f64_and_rounds_once_to_f32_and_f16)
{
    static name_param names[] = {{"f8_c.npy"}, {"f8_be.npy"}, {"f8_fortran.npy"}};
    return cr_make_param_array(name_param, names, sizeof names / sizeof names[0]);
}

ParameterizedTest(name_param *name, npy, f8_keeps_f64_and_rounds_once_to_f32_and_f16)
{
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    TU_OK(import_file(tu_fixture("numpy", name->name), &o));
    embt_file *f = open_out();
    expect_bytes(table_of(f, "embedding"), EMBT_DTYPE_F64, 2, 4, exp_d_f64, 8);
    embt_file_close(f);

    o.dtype = EMBT_DTYPE_F32;
    TU_OK(import_file(tu_fixture("numpy", name->name), &o));
    f = open_out();
    expect_bytes(table_of(f, "embedding"), EMBT_DTYPE_F32, 2, 4, exp_d_f32, 4);
    embt_file_close(f);

    o.dtype = EMBT_DTYPE_F16;
    TU_OK(import_file(tu_fixture("numpy", name->name), &o));
    f = open_out();
    expect_bytes(table_of(f, "embedding"), EMBT_DTYPE_F16, 2, 4, exp_d_f16, 2);
    embt_file_close(f);
}

Test(npy, f64_to_f16_matches_numpy_on_512_values_with_ties)
{
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.dtype = EMBT_DTYPE_F16;
    TU_OK(import_file(tu_fixture("numpy", "f8_random.npy"), &o));
    embt_file *f = open_out();
    expect_bytes(table_of(f, "embedding"), EMBT_DTYPE_F16, 64, 8, exp_r_f16, 2);
    embt_file_close(f);
    o.dtype = EMBT_DTYPE_F32;
    TU_OK(import_file(tu_fixture("numpy", "f8_random.npy"), &o));
    f = open_out();
    expect_bytes(table_of(f, "embedding"), EMBT_DTYPE_F32, 64, 8, exp_r_f32, 4);
    embt_file_close(f);
    /* and the helper alone */
    for (size_t i = 0; i < 512; i++) {
        double d;
        memcpy(&d, &exp_r_f64[i], sizeof d);
        cr_assert_eq(embt__f64_to_f16(d), exp_r_f16[i], "value %zu %.17g", i, d);
    }
}

Test(npy, f64_to_bf16_rounds_once_to_nearest_even)
{
    /* 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7: even is 1; a tiny excess rounds up (going
     * through f32 first would lose the excess and give 1) */
    cr_assert_eq(embt__f64_to_bf16(1.0 + 0x1p-8), 0x3f80);
    cr_assert_eq(embt__f64_to_bf16(1.0 + 0x1p-8 + 0x1p-40), 0x3f81);
    cr_assert_eq(embt__f64_to_bf16(1.0 + 3 * 0x1p-8), 0x3f82);
    cr_assert_eq(embt__f64_to_bf16(-2.0), 0xc000);
    cr_assert_eq(embt__f64_to_bf16(1e300), 0x7f80);
    cr_assert_eq(embt__f64_to_bf16(0x1p-133), 0x0001); /* smallest subnormal */
    cr_assert_eq(embt__f64_to_bf16(0x1p-134), 0x0000); /* its half: ties to even zero */
    cr_assert_eq(embt__f64_to_f16(65520.0), 0x7c00);   /* rounds up to infinity */
    cr_assert_eq(embt__f64_to_f16(65519.99), 0x7bff);
    cr_assert_eq(embt__f64_to_f16(0x1p-25 + 0x1p-60), 0x0001);
    cr_assert_eq(embt__f64_to_f16(-0.0), 0x8000);
    cr_assert_eq(embt__f64_to_f16(NAN) & 0x7e00, 0x7e00);
}

Test(npy, f2_keeps_f16_and_widens_exactly)
{
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    TU_OK(import_file(tu_fixture("numpy", "f2_c.npy"), &o));
    embt_file *f = open_out();
    expect_bytes(table_of(f, "embedding"), EMBT_DTYPE_F16, 2, 3, exp_h_f16, 2);
    embt_file_close(f);
    o.dtype = EMBT_DTYPE_F32;
    TU_OK(import_file(tu_fixture("numpy", "f2_be.npy"), &o));
    f = open_out();
    expect_bytes(table_of(f, "embedding"), EMBT_DTYPE_F32, 2, 3, exp_h_f32, 4);
    embt_file_close(f);
}

Test(npy, rank1_and_zero_rows)
{
    TU_OK(import_file(tu_fixture("numpy", "f4_rank1.npy"), NULL));
    embt_file *f = open_out();
    const embt_table *t = table_of(f, "embedding");
    cr_assert_eq(embt_table_rank(t), 1);
    expect_bytes(t, EMBT_DTYPE_F32, 5, 1, exp_b_f32, 4);
    embt_file_close(f);
    TU_OK(import_file(tu_fixture("numpy", "f4_empty.npy"), NULL));
    f = open_out();
    expect_bytes(table_of(f, "embedding"), EMBT_DTYPE_F32, 0, 4, NULL, 4);
    embt_file_close(f);
}

Test(npy, limit_takes_the_first_rows_in_either_order)
{
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    embt_convert_report rep;
    memset(&rep, 0, sizeof rep);
    o.limit = 2;
    o.report = &rep;
    const char *names[] = {"f4_c.npy", "f4_fortran_be.npy"};
    for (int i = 0; i < 2; i++) {
        TU_OK(import_file(tu_fixture("numpy", names[i]), &o));
        embt_file *f = open_out();
        expect_bytes(table_of(f, "embedding"), EMBT_DTYPE_F32, 2, 4, exp_e_f32, 4);
        embt_file_close(f);
        cr_assert_eq(rep.rows, 2);
    }
}

Test(npy, vocabulary_file_ties_the_table_and_must_match_its_rows)
{
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    tu_write_file(tu_path("v.txt"), "the\n,\n</s>\n", 11);
    o.vocab_path = tu_path("v.txt");
    o.table_name = "vectors";
    TU_OK(import_file(tu_fixture("numpy", "f4_fortran.npy"), &o));
    embt_file *f = open_out();
    const embt_table *t = table_of(f, "vectors");
    cr_assert_not_null(embt_table_vocab(t));
    expect_bytes(t, EMBT_DTYPE_F32, 3, 4, exp_e_f32, 4);
    embt_file_close(f);
    unlink(tu_path("out.embt"));

    tu_write_file(tu_path("v.txt"), "the\n,\n", 6);
    expect_failure(tu_fixture("numpy", "f4_c.npy"), &o, EMBT_EPARSE, EMBT_NO_OFFSET);
}

Test(npy, duplicate_policy_moves_the_matrix_rows_with_the_tokens)
{
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    tu_write_file(tu_path("v.txt"), "a\nb\na\n", 6);
    o.vocab_path = tu_path("v.txt");
    o.on_duplicate = EMBT_DUPLICATE_LAST;
    TU_OK(import_file(tu_fixture("numpy", "f4_c.npy"), &o));
    embt_file *f = open_out();
    const embt_table *t = table_of(f, "embedding");
    cr_assert_eq(embt_table_rows(t), 2);
    const uint8_t *d = embt_table_data(t);
    cr_assert(memcmp(d, exp_e_f32 + 8, 16) == 0, "token a takes the last row");
    cr_assert(memcmp(d + 16, exp_e_f32 + 4, 16) == 0);
    embt_file_close(f);
}

Test(npy, non_finite_values_fail_with_their_offset_unless_allowed)
{
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    expect_failure(tu_fixture("numpy", "f4_nan.npy"), &o, EMBT_EPARSE, 128 + 4);
    embt_convert_report rep;
    memset(&rep, 0, sizeof rep);
    o.report = &rep;
    o.flags = EMBT_CONVERT_ALLOW_NONFINITE;
    TU_OK(import_file(tu_fixture("numpy", "f4_nan.npy"), &o));
    cr_assert_eq(rep.nonfinite, 2);
}

Test(npy, f64_overflowing_the_output_dtype_fails)
{
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    TU_OK(import_file(tu_fixture("numpy", "f8_overflow.npy"), &o));
    unlink(tu_path("out.embt"));
    o.dtype = EMBT_DTYPE_F32;
    expect_failure(tu_fixture("numpy", "f8_overflow.npy"), &o, EMBT_EPARSE, 128 + 8);
}

ParameterizedTestParameters(npy, unsupported_arrays_are_refused)
{
    static name_param names[] = {
        {"i4.npy"}, {"object.npy"}, {"structured.npy"}, {"void2.npy"}, {"f4_rank3.npy"}};
    return cr_make_param_array(name_param, names, sizeof names / sizeof names[0]);
}

ParameterizedTest(name_param *name, npy, unsupported_arrays_are_refused)
{
    expect_failure(tu_fixture("numpy", name->name), NULL, EMBT_ELIMIT, ANY_OFFSET);
    cr_assert_neq(embt_error_last()->offset, EMBT_NO_OFFSET);
}

/* ---- hand-written header dicts --------------------------------------------------------------- */

typedef struct dict_case {
    char dict[96];
    unsigned major;
    embt_status want;
    long long at; /* offset of the problem inside the dict, -1 for none or any */
} dict_case;

ParameterizedTestParameters(npy, header_dicts)
{
    static dict_case cases[] = {
        {"{'shape': (2, 2), 'fortran_order': False, 'descr': '<f4'}", 1, EMBT_OK, -1},
        {"{ \"descr\" :\t'<f4' ,\n'fortran_order':False,'shape':(2,2,),}", 1, EMBT_OK, -1},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 2L), }", 1, EMBT_OK, -1},
        {"{'descr': '=f4', 'fortran_order': False, 'shape': (2, 2), }", 3, EMBT_OK, -1},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 2, EMBT_OK, -1},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 2L), }", 3, EMBT_EPARSE, 52},
        {"{'descr': '<f4', 'fortran_order': False}", 1, EMBT_EPARSE, 39},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'x': 1}", 1, EMBT_EPARSE, 58},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (4,)}", 1, EMBT_EPARSE,
         17},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4)}", 1, EMBT_EPARSE, 52},
        {"{'descr': '<f4', 'fortran_order': false, 'shape': (4,)}", 1, EMBT_EPARSE, 34},
        {"{'descr': '<f4", 1, EMBT_EPARSE, 10},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,)} x", 1, EMBT_EPARSE, 56},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (4,)}", 1, EMBT_EPARSE, 16},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-4,)}", 1, EMBT_EPARSE, 51},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", 1,
         EMBT_EPARSE, 51},
        {"{'descr': '<i8', 'fortran_order': False, 'shape': (2,)}", 1, EMBT_ELIMIT, 10},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,)}", 1, EMBT_ELIMIT, 10},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': ()}", 1, EMBT_ELIMIT, -1},
        {"['descr']", 1, EMBT_EPARSE, 0},
    };
    return cr_make_param_array(dict_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(dict_case *c, npy, header_dicts)
{
    float data[4] = {1, 2, 3, 4};
    const char *p = make_npy("h.npy", c->major, c->dict, data, c->want == EMBT_OK ? 16 : 16);
    uint64_t pre = c->major == 1 ? 10 : 12;
    if (c->want == EMBT_OK) {
        TU_OK(import_file(p, NULL));
        embt_file *f = open_out();
        const embt_table *t = table_of(f, "embedding");
        cr_assert_eq(embt_table_rows(t) * embt_table_cols(t), 4);
        cr_assert(memcmp(embt_table_data(t), data, 16) == 0);
        embt_file_close(f);
        return;
    }
    expect_failure(p, NULL, c->want, c->at < 0 ? ANY_OFFSET : pre + (uint64_t)c->at);
}

/* ---- malformed files ------------------------------------------------------------------------ */

Test(npy, malformed_files_fail_with_status_and_offset)
{
    size_t n;
    uint8_t *good = tu_read_file(tu_fixture("numpy", "f4_c.npy"), &n);
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", tu_path("bad.npy"));

    tu_write_file(p, good, 50); /* truncated header */
    expect_failure(p, NULL, EMBT_EPARSE, 8);
    tu_write_file(p, good, 7); /* truncated preamble */
    expect_failure(p, NULL, EMBT_EPARSE, 7);
    tu_write_file(p, good, n - 4); /* shape/size mismatch */
    expect_failure(p, NULL, EMBT_EPARSE, 128);
    good[1] = 'X'; /* bad magic */
    tu_write_file(p, good, n);
    expect_failure(p, NULL, EMBT_EFORMAT, 0);
    good[1] = 'N';
    good[6] = 4; /* unknown version */
    tu_write_file(p, good, n);
    expect_failure(p, NULL, EMBT_ELIMIT, 6);
    good[6] = 1;
    /* v2 header length beyond the cap, in a tiny file */
    uint8_t big[16] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0, 0, 0, 0x40};
    tu_write_file(p, big, sizeof big);
    expect_failure(p, NULL, EMBT_ELIMIT, 8);
    free(good);
}

Test(npy, huge_declared_shape_in_a_tiny_file_fails_before_allocating)
{
    /* 300,000,000 floats (1.2 GB) declared, 8 bytes present; and a product overflowing 64 bits */
    float d[2] = {1, 2};
    const char *p =
        make_npy("huge.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (300000000,), }",
                 d, sizeof d);
    expect_failure(p, NULL, EMBT_EPARSE, 128);
    p = make_npy("huge2.npy", 1,
                 "{'descr': '<f8', 'fortran_order': True, 'shape': (4294967296, 4294967296), }", d,
                 sizeof d);
    expect_failure(p, NULL, EMBT_EPARSE, 128);
}

Test(npy, every_truncation_fails_cleanly)
{
    size_t n;
    uint8_t *good = tu_read_file(tu_fixture("numpy", "f4_fortran_be.npy"), &n);
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", tu_path("cut.npy"));
    for (size_t k = 0; k < n; k++) {
        tu_write_file(p, good, k);
        embt_status rc = import_file(p, NULL);
        cr_assert(rc == EMBT_EPARSE || rc == EMBT_EFORMAT, "prefix %zu gave %s", k,
                  embt_status_name(rc));
        cr_assert_not(tu_exists(tu_path("out.embt")));
    }
    free(good);
}

/* ---- large arrays: batches, Fortran order, byte order ------------------------------------------ */

Test(npy, large_fortran_big_endian_array_matches_its_c_order_values)
{
    enum { R = 701, C = 403 }; /* over one batch of 2^18 elements, not a multiple of it */
    size_t n = (size_t)R * C;
    double *src = malloc(n * sizeof *src);
    uint8_t *fo = malloc(n * 8);
    float *want = malloc(n * sizeof *want);
    cr_assert(src && fo && want);
    uint64_t st = 7;
    for (size_t i = 0; i < n; i++) {
        src[i] = (double)tu_randf(&st, -3, 3) * (1.0 + 0x1p-30);
        want[i] = (float)src[i];
    }
    for (size_t r = 0; r < R; r++) {
        for (size_t c = 0; c < C; c++) {
            uint64_t b;
            memcpy(&b, &src[r * C + c], 8);
            for (int k = 0; k < 8; k++)
                fo[(c * R + r) * 8 + k] = (uint8_t)(b >> (56 - 8 * k));
        }
    }
    const char *p = make_npy(
        "big.npy", 1, "{'descr': '>f8', 'fortran_order': True, 'shape': (701, 403), }", fo, n * 8);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.dtype = EMBT_DTYPE_F32;
    TU_OK(import_file(p, &o));
    embt_file *f = open_out();
    expect_bytes(table_of(f, "embedding"), EMBT_DTYPE_F32, R, C, want, 4);
    embt_file_close(f);
    free(src);
    free(fo);
    free(want);
}

/* ---- export ------------------------------------------------------------------------------------ */

ParameterizedTestParameters(npy, export_is_byte_identical_to_np_save)
{
    static name_param names[] = {{"f4_c.npy"},     {"f8_c.npy"},     {"f2_c.npy"},
                                 {"f4_rank1.npy"}, {"f4_empty.npy"}, {"f8_random.npy"}};
    return cr_make_param_array(name_param, names, sizeof names / sizeof names[0]);
}

ParameterizedTest(name_param *name, npy, export_is_byte_identical_to_np_save)
{
    TU_OK(import_file(tu_fixture("numpy", name->name), NULL));
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.to = EMBT_FORMAT_NPY;
    TU_OK(embt_convert_file(tu_path("out.embt"), tu_path("back.npy"), &o));
    cr_assert(tu_same_file(tu_path("back.npy"), tu_fixture("numpy", name->name)),
              "%s differs from np.save's", name->name);
}

Test(npy, export_converts_other_dtypes)
{
    /* a f64 table exported as f16 rounds once, as numpy's astype does */
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    TU_OK(import_file(tu_fixture("numpy", "f8_random.npy"), &o));
    o.to = EMBT_FORMAT_NPY;
    o.dtype = EMBT_DTYPE_F16;
    TU_OK(embt_convert_file(tu_path("out.embt"), tu_path("h.npy"), &o));
    size_t n;
    uint8_t *b = tu_read_file(tu_path("h.npy"), &n);
    cr_assert_eq(n, 128 + 512 * 2);
    cr_assert(memcmp(b + 128, exp_r_f16, 1024) == 0);
    cr_assert(strstr((const char *)b + 10, "'<f2'") != NULL);
    free(b);
    o.dtype = EMBT_DTYPE_I8;
    TU_STATUS(embt_convert_file(tu_path("out.embt"), tu_path("i.npy"), &o), EMBT_EINVAL);
    cr_assert_not(tu_exists(tu_path("i.npy")));
}

Test(npy, header_builder_switches_to_version_2_only_when_needed)
{
    uint8_t h[256];
    size_t n = embt__npy_header_build(h, sizeof h, "<f4", 2, 3, 4);
    cr_assert_eq(n, 128);
    cr_assert_eq(h[6], 1);
    cr_assert_eq(embt__le16(h + 8), 118);
    n = embt__npy_header_build(h, sizeof h, "<f8", 1, UINT64_C(1) << 40, 1);
    cr_assert_eq(n % 64, 0);
    cr_assert_eq(h[n - 1], '\n');
}

Test(npy, sniffing)
{
    cr_assert(embt__sniff_npy((const uint8_t *)"\x93NUMPY\x01\x00", 8));
    cr_assert_not(embt__sniff_npy((const uint8_t *)"\x93NUMPX\x01\x00", 8));
    cr_assert_not(embt__sniff_npy((const uint8_t *)"\x93NUM", 4));
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    TU_OK(import_file(tu_fixture("numpy", "f4_v3.npy"), &o)); /* from EMBT_FORMAT_AUTO */
}
