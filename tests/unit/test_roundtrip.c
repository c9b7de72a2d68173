/* test_roundtrip.c: everything the writer stores comes back from the reader: values of every dtype
 * (compared with the documented conversion of the input), tokens both ways, counts, special ids,
 * rank-1 and stand-alone tables, several vocabularies, metadata text, forward links and
 * embt_writer_copy_sections(); through every way of opening a file. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <criterion/theories.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

/* Fixed tokens first (numbers, markup, non-ASCII), then generated ones. */
static const char *const fixed_tokens[] = {"</s>",
                                           "-0.5",
                                           "\xc3\xa9",
                                           "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
                                           "\xf0\x9f\x98\x80",
                                           "a b",
                                           "<unk>",
                                           "0",
                                           "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82"};
#define N_FIXED (sizeof fixed_tokens / sizeof fixed_tokens[0])

static size_t rt_token(char *buf, size_t cap, uint32_t i)
{
    if (i < N_FIXED) {
        snprintf(buf, cap, "%s", fixed_tokens[i]);
        return strlen(buf);
    }
    return tu_token(buf, cap, i);
}

/* The f32 input (r, c) given to the writer for a table of `dtype`: integers for integer dtypes (so
 * they are exact), floats of magnitudes 1e-3 .. 4e3 (f16 subnormals included) otherwise, with an
 * all-zero row every 11 rows (I8 scale 0). */
static float rt_input(embt_dtype dtype, uint64_t r, uint64_t c)
{
    switch (dtype) {
    case EMBT_DTYPE_U8: return (float)((r * 31 + c * 7) % 256);
    case EMBT_DTYPE_I32: return (float)((int64_t)((r * 7919 + c * 104729) % 2000001) - 1000000);
    case EMBT_DTYPE_I64:
        return (float)(((int64_t)((r * 7919 + c * 104729) % 2000001) - 1000000) * 8);
    default:
        if (r % 11 == 5)
            return 0.0f;
        return tu_value(r, c) * powf(10.0f, (float)((int)(r % 7) - 3));
    }
}

/* The value the reader must return for input x, exactly (not used for I8). */
static float rt_expected(embt_dtype dtype, float x)
{
    uint16_t h;
    float back;
    switch (dtype) {
    case EMBT_DTYPE_F16:
        embt_f32_to_f16(&h, &x, 1);
        embt_f16_to_f32(&back, &h, 1);
        return back;
    case EMBT_DTYPE_BF16:
        embt_f32_to_bf16(&h, &x, 1);
        embt_bf16_to_f32(&back, &h, 1);
        return back;
    default: return x;
    }
}

/* Checks one decoded row against its inputs. I8: |got - x| <= scale / 2, with slack for the two
 * f32 roundings of q = round(x / s) and s * q. Others: bit-exact. */
static void check_row(embt_dtype dtype, const float *got, const float *in, uint64_t cols,
                      float scale, const char *what, uint64_t r)
{
    for (uint64_t c = 0; c < cols; c++) {
        if (dtype == EMBT_DTYPE_I8) {
            float err = fabsf(got[c] - in[c]);
            float tol = scale * 0.5f * (1.0f + 1e-5f) + fabsf(in[c]) * 1e-6f;
            cr_assert_leq(err, tol, "%s (%llu, %llu): got %g for %g, scale %g", what,
                          (unsigned long long)r, (unsigned long long)c, (double)got[c],
                          (double)in[c], (double)scale);
        } else {
            float want = rt_expected(dtype, in[c]);
            cr_assert_eq(tu_f32_bits(got[c]), tu_f32_bits(want),
                         "%s (%llu, %llu): got %a, want %a (input %a)", what, (unsigned long long)r,
                         (unsigned long long)c, (double)got[c], (double)want, (double)in[c]);
        }
    }
}

/* Little-endian element i of raw table bytes as the stored integer/float, for byte checks. */
static double raw_element(const uint8_t *p, embt_dtype dtype, size_t i)
{
    switch (dtype) {
    case EMBT_DTYPE_F32: {
        uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                     (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
        return tu_bits_f32(u);
    }
    case EMBT_DTYPE_F64: {
        uint64_t u = 0;
        for (int k = 7; k >= 0; k--)
            u = u << 8 | p[8 * i + (size_t)k];
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    case EMBT_DTYPE_U8: return p[i];
    case EMBT_DTYPE_I8: return (int8_t)p[i];
    case EMBT_DTYPE_I32: {
        uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                     (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
        return (int32_t)u;
    }
    case EMBT_DTYPE_I64: {
        uint64_t u = 0;
        for (int k = 7; k >= 0; k--)
            u = u << 8 | p[8 * i + (size_t)k];
        return (double)(int64_t)u;
    }
    default: {
        uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
        float f;
        if (dtype == EMBT_DTYPE_F16)
            embt_f16_to_f32(&f, &h, 1);
        else
            embt_bf16_to_f32(&f, &h, 1);
        return f;
    }
    }
}

/* ---- the theory: dtype x cols x rows x compression x norms ---- */

static const char *open_mode = ""; /* how the file under check was opened, for messages */

struct rt_case {
    embt_dtype dtype;
    uint64_t cols, rows;
    bool compress, norms;
};

#define RT_METADATA                                                                                \
    "source: roundtrip\nshape: [1, 2]\ntraining:\n  lr: 0.025\n  note: \"caf\xc3\xa9\"\n"

static void write_case(const char *path, const struct rt_case *k)
{
    embt_writer *w = NULL;
    embt_writer_options wo = EMBT_WRITER_OPTIONS_INIT;
    wo.compress_level = 6;
    TU_OK(embt_writer_open(&w, path, &wo));
    bool tied = k->rows > 0;
    if (tied) {
        embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
        vs.flags = k->compress ? EMBT_VOCAB_COMPRESS | EMBT_VOCAB_COUNTS : EMBT_VOCAB_COUNTS;
        TU_OK(embt_writer_vocab_begin(w, &vs));
        for (uint32_t i = 0; i < k->rows; i++) {
            char tok[64];
            size_t len = rt_token(tok, sizeof tok, i);
            TU_OK(embt_writer_vocab_add(w, tok, len, (uint64_t)i * 3 + 1, NULL));
        }
        TU_OK(embt_writer_vocab_specials(w, 0, EMBT_NONE_ID, k->rows > 1 ? 1 : EMBT_NONE_ID,
                                         (uint32_t)k->rows - 1));
        TU_OK(embt_writer_vocab_end(w));
    }
    unsigned flags = (k->compress ? EMBT_TABLE_COMPRESS : 0) | (k->norms ? EMBT_TABLE_NORMS : 0);
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = "embedding";
    ts.dtype = k->dtype;
    ts.rows = k->rows;
    ts.cols = k->cols;
    ts.vocab = tied ? "words" : NULL;
    ts.flags = flags;
    TU_OK(embt_writer_table_begin(w, &ts));
    /* rows stream in uneven batches: 1, 2, 3, ... rows per call */
    float *buf = malloc(sizeof(float) * (size_t)(k->cols * (k->rows + 1)));
    cr_assert_not_null(buf);
    for (uint64_t r0 = 0, step = 1; r0 < k->rows; r0 += step, step++) {
        uint64_t n = r0 + step > k->rows ? k->rows - r0 : step;
        for (uint64_t r = 0; r < n; r++)
            for (uint64_t c = 0; c < k->cols; c++)
                buf[r * k->cols + c] = rt_input(k->dtype, r0 + r, c);
        TU_OK(embt_writer_table_append_f32(w, buf, (size_t)n));
    }
    TU_OK(embt_writer_table_end(w));
    /* the rank-1 bias, through the one-call helper */
    for (uint64_t r = 0; r < k->rows; r++)
        buf[r] = rt_input(k->dtype, r, 999);
    embt_table_spec bs = EMBT_TABLE_SPEC_INIT;
    bs.name = "bias";
    bs.dtype = k->dtype;
    bs.rank = 1;
    bs.rows = k->rows;
    bs.cols = 1;
    bs.vocab = tied ? "words" : NULL;
    bs.flags = flags;
    TU_OK(embt_writer_add_table_f32(w, &bs, buf));
    free(buf);
    TU_OK(embt_writer_set_metadata(w, RT_METADATA, strlen(RT_METADATA)));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
}

static void check_vocab(const embt_file *f, const struct rt_case *k)
{
    if (k->rows == 0) {
        cr_assert_eq(embt_file_vocab_count(f), 0);
        return;
    }
    cr_assert_eq(embt_file_vocab_count(f), 1);
    const embt_vocab *v = NULL;
    TU_OK(embt_file_vocab(&v, f, "words"));
    cr_assert_eq(v, embt_file_vocab_at(f, 0));
    cr_assert_str_eq(embt_vocab_name(v), "words");
    cr_assert_eq(embt_vocab_size(v), k->rows);
    cr_assert_eq(embt_vocab_unk_id(v), 0);
    cr_assert_eq(embt_vocab_pad_id(v), EMBT_NONE_ID);
    cr_assert_eq(embt_vocab_bos_id(v), k->rows > 1 ? 1 : EMBT_NONE_ID);
    cr_assert_eq(embt_vocab_eos_id(v), k->rows - 1);
    cr_assert(embt_vocab_has_counts(v));
    for (uint32_t i = 0; i < k->rows; i++) {
        char tok[64];
        size_t len = rt_token(tok, sizeof tok, i), got_len = 0;
        const char *got = embt_vocab_token(v, i, &got_len);
        cr_assert_not_null(got, "token %u", i);
        cr_assert_eq(got_len, len, "token %u length", i);
        cr_assert_eq(memcmp(got, tok, len), 0, "token %u bytes", i);
        uint32_t id = EMBT_NONE_ID;
        TU_OK(embt_vocab_find(&id, v, tok, len));
        cr_assert_eq(id, i, "find(\"%s\")", tok);
        uint64_t count = 0;
        TU_OK(embt_vocab_count(&count, v, i));
        cr_assert_eq(count, (uint64_t)i * 3 + 1);
    }
}

static void check_table(const embt_file *f, const struct rt_case *k, const char *name,
                        unsigned rank)
{
    const embt_table *t = NULL;
    TU_OK(embt_file_table(&t, f, name));
    uint64_t cols = rank == 1 ? 1 : k->cols;
    uint64_t incol = rank == 1 ? 999 : 0; /* the bias used column 999 of the input pattern */
    cr_assert_str_eq(embt_table_name(t), name);
    cr_assert_eq(embt_table_dtype(t), k->dtype);
    cr_assert_eq(embt_table_rank(t), rank);
    cr_assert_eq(embt_table_rows(t), k->rows);
    cr_assert_eq(embt_table_cols(t), cols);
    if (k->rows > 0) {
        const embt_vocab *v = NULL;
        TU_OK(embt_file_vocab(&v, f, "words"));
        cr_assert_eq(embt_table_vocab(t), v);
    } else {
        cr_assert_null(embt_table_vocab(t));
    }
    cr_assert_eq(embt_table_scales(t) != NULL, k->dtype == EMBT_DTYPE_I8);
    cr_assert_eq(embt_table_norms(t) != NULL, k->norms);
    const uint8_t *data = embt_table_data(t);
    if (k->rows > 0) {
        cr_assert_not_null(data);
        cr_assert_eq((uintptr_t)data % 64, 0, "table %s data not 64-byte aligned (%s)", name,
                     open_mode);
    }

    size_t n = (size_t)(k->rows * cols);
    float *in = malloc(sizeof(float) * (n + 1)), *got = malloc(sizeof(float) * (n + 1));
    uint64_t *ids = malloc(sizeof(uint64_t) * (k->rows + 1));
    cr_assert(in && got && ids);
    for (uint64_t r = 0; r < k->rows; r++)
        for (uint64_t c = 0; c < cols; c++)
            in[r * cols + c] = rt_input(k->dtype, r, rank == 1 ? incol : c);

    const float *scales = embt_table_scales(t);
    for (uint64_t r = 0; r < k->rows; r++) {
        float scale = 0.0f;
        if (scales) {
            /* s = max|x| / 127 (the vector's max for rank 1) */
            uint64_t lo = rank == 1 ? 0 : r, hi = rank == 1 ? k->rows : r + 1;
            float amax = 0.0f;
            for (uint64_t i = lo * cols; i < hi * cols; i++)
                amax = fmaxf(amax, fabsf(in[i]));
            scale = scales[rank == 1 ? 0 : r];
            cr_assert(isfinite(scale));
            cr_assert_leq(fabsf(scale - amax / 127.0f), amax / 127.0f * 1e-6f + 1e-37f,
                          "row %llu scale %g, max|x|/127 = %g", (unsigned long long)r,
                          (double)scale, (double)(amax / 127.0f));
        }
        TU_OK(embt_table_read_row_f32(got, t, r));
        check_row(k->dtype, got, in + r * cols, cols, scale, "read_row", r);
        /* stored bytes: the dtype's encoding of the same value */
        for (uint64_t c = 0; c < cols; c++) {
            double raw = raw_element(data, k->dtype, (size_t)(r * cols + c));
            if (k->dtype == EMBT_DTYPE_I8)
                cr_assert_eq(tu_f32_bits(got[c]), tu_f32_bits(scale * (float)raw),
                             "i8 (%llu, %llu): scale * q", (unsigned long long)r,
                             (unsigned long long)c);
            else
                cr_assert_eq(tu_f32_bits((float)raw), tu_f32_bits(got[c]),
                             "stored (%llu, %llu) decodes differently", (unsigned long long)r,
                             (unsigned long long)c);
        }
        if (k->dtype == EMBT_DTYPE_F32) {
            const float *row = embt_table_row_f32(t, r);
            cr_assert_not_null(row);
            cr_assert_eq(memcmp(row, in + r * cols, sizeof(float) * cols), 0);
        } else {
            cr_assert_null(embt_table_row_f32(t, r));
        }
        if (k->norms && rank == 2) {
            double sum = 0;
            for (uint64_t c = 0; c < cols; c++)
                sum += (double)got[c] * got[c];
            float want = (float)sqrt(sum), norm = embt_table_norms(t)[r];
            cr_assert_leq(fabsf(norm - want), want * 1e-5f + 1e-30f, "norm of row %llu: %g vs %g",
                          (unsigned long long)r, (double)norm, (double)want);
        }
    }
    if (k->norms && rank == 1) {
        /* FORMAT.md 7.4 rule 28: a rank-1 table has one norm, of the whole vector */
        double sum = 0;
        for (uint64_t r = 0; r < k->rows; r++) {
            TU_OK(embt_table_read_row_f32(got, t, r));
            sum += (double)got[0] * got[0];
        }
        float want = (float)sqrt(sum), norm = embt_table_norms(t)[0];
        cr_assert_leq(fabsf(norm - want), want * 1e-5f + 1e-30f, "norm of the vector: %g vs %g",
                      (double)norm, (double)want);
    }
    /* gather every row in reverse order: same values as read_row */
    for (uint64_t r = 0; r < k->rows; r++)
        ids[r] = k->rows - 1 - r;
    TU_OK(embt_table_gather_f32(got, t, ids, (size_t)k->rows));
    for (uint64_t r = 0; r < k->rows; r++) {
        float *row = malloc(sizeof(float) * cols);
        cr_assert_not_null(row);
        TU_OK(embt_table_read_row_f32(row, t, ids[r]));
        cr_assert_eq(memcmp(row, got + r * cols, sizeof(float) * cols), 0, "gather row %llu",
                     (unsigned long long)r);
        free(row);
    }
    free(in);
    free(got);
    free(ids);
}

static void check_file(const embt_file *f, const struct rt_case *k)
{
    TU_OK(embt_file_verify(f));
    unsigned major = 0, minor = 99;
    embt_file_version(f, &major, &minor);
    cr_assert_eq(major, 1);
    cr_assert_eq(minor, 0);
    cr_assert_eq(embt_file_alignment(f), 64);
    check_vocab(f, k);
    cr_assert_eq(embt_file_table_count(f), 2);
    cr_assert_str_eq(embt_table_name(embt_file_table_at(f, 0)), "embedding");
    cr_assert_str_eq(embt_table_name(embt_file_table_at(f, 1)), "bias");
    check_table(f, k, "embedding", 2);
    check_table(f, k, "bias", 1);
    size_t mlen = 0;
    const char *meta = embt_file_metadata(f, &mlen);
    cr_assert_not_null(meta);
    cr_assert_eq(mlen, strlen(RT_METADATA));
    cr_assert_eq(memcmp(meta, RT_METADATA, mlen), 0);
    /* compression shows in the directory: every TABLE is deflated exactly when asked */
    for (size_t i = 0; i < embt_file_section_count(f); i++) {
        embt_section_info si;
        TU_OK(embt_file_section(&si, f, i));
        if (si.type == EMBT_SECTION_TABLE)
            cr_assert_eq(si.codec, k->compress ? 1 : 0, "section %zu codec", i);
    }
}

TheoryDataPoints(roundtrip, every_dtype_shape_and_option_survives_write_and_read) = {
    DataPoints(int, 1, 2, 3, 4, 5, 6, 7, 8),
    DataPoints(int, 1, 3, 100),
    DataPoints(int, 0, 1, 257),
    DataPoints(bool, false, true),
    DataPoints(bool, false, true),
};

Theory((int dtype, int cols, int rows, bool compress, bool norms), roundtrip,
       every_dtype_shape_and_option_survives_write_and_read, .init = tu_setup, .fini = tu_teardown)
{
    struct rt_case k = {(embt_dtype)dtype, (uint64_t)cols, (uint64_t)rows, compress, norms};
    const char *path = tu_path("rt.embt");
    write_case(path, &k);
    cr_assert_eq(tu_count_entries(), 1, "the writer left files behind");

    embt_file *f = NULL;
    open_mode = "mmap";
    TU_OK(embt_file_open(&f, path, NULL));
    check_file(f, &k);
    embt_file_close(f);

    embt_open_options oo = EMBT_OPEN_OPTIONS_INIT;
    oo.flags = EMBT_OPEN_NO_MMAP | EMBT_OPEN_VERIFY;
    open_mode = "no mmap";
    TU_OK(embt_file_open(&f, path, &oo));
    check_file(f, &k);
    embt_file_close(f);

    size_t len;
    uint8_t *bytes = tu_read_file(path, &len);
    open_mode = "memory";
    TU_OK(embt_file_open_memory(&f, bytes, len, NULL));
    cr_assert_eq(embt_file_size(f), len);
    check_file(f, &k);
    embt_file_close(f);
    free(bytes);
}

/* ---- raw appends store exactly the bytes given ---- */

struct raw_case {
    embt_dtype dtype;
    bool compress;
};

ParameterizedTestParameters(roundtrip, raw_rows_are_stored_byte_for_byte)
{
    static struct raw_case cases[] = {
        {EMBT_DTYPE_F32, false}, {EMBT_DTYPE_F16, false}, {EMBT_DTYPE_BF16, false},
        {EMBT_DTYPE_F64, false}, {EMBT_DTYPE_I8, false},  {EMBT_DTYPE_U8, false},
        {EMBT_DTYPE_I32, false}, {EMBT_DTYPE_I64, false}, {EMBT_DTYPE_F32, true},
        {EMBT_DTYPE_F16, true},  {EMBT_DTYPE_I8, true},   {EMBT_DTYPE_I64, true},
    };
    return cr_make_param_array(struct raw_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct raw_case *k, roundtrip, raw_rows_are_stored_byte_for_byte,
                  .init = tu_setup, .fini = tu_teardown)
{
    enum { ROWS = 37, COLS = 13 };
    size_t esz = embt_dtype_size(k->dtype), n = (size_t)ROWS * COLS * esz;
    uint8_t *raw = malloc(n);
    float scales[ROWS];
    cr_assert_not_null(raw);
    uint64_t seed = 99;
    /* random bits include NaNs: legal table values (FORMAT.md 7.5), stored as given */
    for (size_t i = 0; i < n; i++)
        raw[i] = (uint8_t)tu_rand(&seed);
    for (int r = 0; r < ROWS; r++)
        scales[r] = 0.01f * (float)(r + 1);
    const char *path = tu_path("raw.embt");
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, path, NULL));
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = "raw";
    ts.dtype = k->dtype;
    ts.rows = ROWS;
    ts.cols = COLS;
    ts.flags = k->compress ? EMBT_TABLE_COMPRESS : 0;
    TU_OK(embt_writer_table_begin(w, &ts));
    TU_OK(embt_writer_table_append_raw(w, raw, 10, scales));
    TU_OK(embt_writer_table_append_raw(w, raw + 10 * COLS * esz, ROWS - 10, scales + 10));
    TU_OK(embt_writer_table_end(w));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);

    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, NULL));
    TU_OK(embt_file_verify(f));
    const embt_table *t = NULL;
    TU_OK(embt_file_table(&t, f, "raw"));
    cr_assert_eq(memcmp(embt_table_data(t), raw, n), 0);
    if (k->dtype == EMBT_DTYPE_I8)
        cr_assert_eq(memcmp(embt_table_scales(t), scales, sizeof scales), 0);
    embt_file_close(f);
    free(raw);
}

/* ---- structure: several vocabularies, stand-alone tables, forward links, empty files ---- */

static void add_vocab(embt_writer *w, const char *name, const char *const *tokens, size_t n)
{
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    vs.name = name;
    TU_OK(embt_writer_vocab_begin(w, &vs));
    for (size_t i = 0; i < n; i++)
        TU_OK(embt_writer_vocab_add(w, tokens[i], strlen(tokens[i]), 0, NULL));
    TU_OK(embt_writer_vocab_end(w));
}

static void add_f32(embt_writer *w, const char *name, const char *vocab, unsigned rank,
                    uint64_t rows, uint64_t cols, float base)
{
    float *buf = malloc(sizeof(float) * (size_t)(rows * cols + 1));
    cr_assert_not_null(buf);
    for (uint64_t i = 0; i < rows * cols; i++)
        buf[i] = base + (float)i;
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = name;
    ts.rank = rank;
    ts.rows = rows;
    ts.cols = cols;
    ts.vocab = vocab;
    TU_OK(embt_writer_add_table_f32(w, &ts, buf));
    free(buf);
}

static void check_f32(const embt_file *f, const char *name, uint64_t rows, uint64_t cols,
                      float base)
{
    const embt_table *t = NULL;
    TU_OK(embt_file_table(&t, f, name));
    cr_assert_eq(embt_table_rows(t), rows, "%s rows", name);
    cr_assert_eq(embt_table_cols(t), cols, "%s cols", name);
    const float *p = embt_table_data(t);
    for (uint64_t i = 0; i < rows * cols; i++)
        cr_assert_eq(p[i], base + (float)i, "%s element %llu", name, (unsigned long long)i);
}

Test(roundtrip, two_vocabularies_each_keep_their_tied_tables, .init = tu_setup, .fini = tu_teardown)
{
    static const char *const src[] = {"a", "b", "\xc3\xa9", "</s>", "-0.5"};
    static const char *const tgt[] = {"a", "\xce\xb1", "\xce\xb2"};
    const char *path = tu_path("two.embt");
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, path, NULL));
    add_vocab(w, "src", src, 5);
    add_vocab(w, "tgt", tgt, 3);
    add_f32(w, "src.embedding", "src", 2, 5, 4, 0.0f);
    add_f32(w, "tgt.embedding", "tgt", 2, 3, 2, 100.0f);
    add_f32(w, "tgt.bias", "tgt", 1, 3, 1, 200.0f);
    add_f32(w, "linear.weight", NULL, 2, 2, 4, 300.0f);
    add_f32(w, "linear.bias", NULL, 1, 2, 1, 400.0f);
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);

    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, NULL));
    TU_OK(embt_file_verify(f));
    cr_assert_eq(embt_file_vocab_count(f), 2);
    cr_assert_eq(embt_file_table_count(f), 5);
    const embt_vocab *vs = NULL, *vt = NULL, *first = NULL;
    TU_OK(embt_file_vocab(&vs, f, "src"));
    TU_OK(embt_file_vocab(&vt, f, "tgt"));
    TU_OK(embt_file_vocab(&first, f, NULL));
    cr_assert_eq(first, vs);
    cr_assert_neq(vs, vt);
    uint32_t id;
    TU_OK(embt_vocab_find(&id, vs, "a", 1));
    cr_assert_eq(id, 0);
    TU_OK(embt_vocab_find(&id, vt, "\xce\xb2", 2));
    cr_assert_eq(id, 2);
    TU_STATUS(embt_vocab_find(&id, vt, "b", 1), EMBT_ENOTFOUND);
    cr_assert_eq(embt_vocab_has_counts(vs), 0);
    cr_assert_eq(embt_vocab_unk_id(vs), EMBT_NONE_ID);
    static const char *const names[] = {"src.embedding", "tgt.embedding", "tgt.bias",
                                        "linear.weight", "linear.bias"};
    for (size_t i = 0; i < 5; i++)
        cr_assert_str_eq(embt_table_name(embt_file_table_at(f, i)), names[i]);
    const embt_table *t = NULL;
    TU_OK(embt_file_table(&t, f, "src.embedding"));
    cr_assert_eq(embt_table_vocab(t), vs);
    TU_OK(embt_file_table(&t, f, "tgt.bias"));
    cr_assert_eq(embt_table_vocab(t), vt);
    cr_assert_eq(embt_table_rank(t), 1);
    TU_OK(embt_file_table(&t, f, "linear.weight"));
    cr_assert_null(embt_table_vocab(t));
    TU_OK(embt_file_table(&t, f, "linear.bias"));
    cr_assert_null(embt_table_vocab(t));
    cr_assert_eq(embt_table_rank(t), 1);
    check_f32(f, "src.embedding", 5, 4, 0.0f);
    check_f32(f, "tgt.embedding", 3, 2, 100.0f);
    check_f32(f, "tgt.bias", 3, 1, 200.0f);
    check_f32(f, "linear.weight", 2, 4, 300.0f);
    check_f32(f, "linear.bias", 2, 1, 400.0f);
    t = (const embt_table *)1;
    TU_STATUS(embt_file_table(&t, f, "missing"), EMBT_ENOTFOUND);
    cr_assert_null(t);
    cr_assert_null(embt_file_metadata(f, &(size_t){1}));
    embt_file_close(f);
}

Test(roundtrip, a_tied_table_written_before_its_vocabulary_links_forward, .init = tu_setup,
     .fini = tu_teardown)
{
    static const char *const toks[] = {"x", "y", "z"};
    const char *path = tu_path("fwd.embt");
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, path, NULL));
    add_f32(w, "embedding", "words", 2, 3, 2, 1.0f);
    add_vocab(w, "words", toks, 3);
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);

    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, NULL));
    TU_OK(embt_file_verify(f));
    const embt_vocab *v = NULL;
    const embt_table *t = NULL;
    TU_OK(embt_file_vocab(&v, f, "words"));
    TU_OK(embt_file_table(&t, f, "embedding"));
    cr_assert_eq(embt_table_vocab(t), v);
    check_f32(f, "embedding", 3, 2, 1.0f);
    /* the TABLE entry comes first in the file and its link points forward to the VOCAB */
    bool seen = false;
    for (size_t i = 0; i < embt_file_section_count(f); i++) {
        embt_section_info si;
        TU_OK(embt_file_section(&si, f, i));
        if (si.type == EMBT_SECTION_TABLE) {
            embt_section_info target;
            cr_assert_gt(si.link, i, "link %u of entry %zu is not forward", si.link, i);
            TU_OK(embt_file_section(&target, f, si.link));
            cr_assert_eq(target.type, EMBT_SECTION_VOCAB);
            seen = true;
        }
    }
    cr_assert(seen);
    embt_file_close(f);
}

Test(roundtrip, a_file_without_sections_opens_and_verifies, .init = tu_setup, .fini = tu_teardown)
{
    const char *path = tu_path("empty.embt");
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, path, NULL));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, NULL));
    TU_OK(embt_file_verify(f));
    cr_assert_eq(embt_file_vocab_count(f), 0);
    cr_assert_eq(embt_file_table_count(f), 0);
    cr_assert_eq(embt_file_section_count(f), 0);
    cr_assert_eq(embt_file_size(f), 128 + 16, "header then an empty directory at offset 128");
    const embt_vocab *v = (const embt_vocab *)1;
    TU_STATUS(embt_file_vocab(&v, f, NULL), EMBT_ENOTFOUND);
    cr_assert_null(v);
    embt_file_close(f);
}

Test(roundtrip, a_larger_alignment_aligns_every_section, .init = tu_setup, .fini = tu_teardown)
{
    static const char *const toks[] = {"one", "two", "three"};
    const char *path = tu_path("align.embt");
    embt_writer *w = NULL;
    embt_writer_options wo = EMBT_WRITER_OPTIONS_INIT;
    wo.alignment = 4096;
    TU_OK(embt_writer_open(&w, path, &wo));
    add_vocab(w, "words", toks, 3);
    add_f32(w, "embedding", "words", 2, 3, 5, 7.0f);
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, NULL));
    TU_OK(embt_file_verify(f));
    cr_assert_eq(embt_file_alignment(f), 4096);
    for (size_t i = 0; i < embt_file_section_count(f); i++) {
        embt_section_info si;
        TU_OK(embt_file_section(&si, f, i));
        cr_assert_eq(si.offset % 4096, 0, "section %zu at %llu", i, (unsigned long long)si.offset);
    }
    check_f32(f, "embedding", 3, 5, 7.0f);
    embt_file_close(f);
}

/* ---- copying sections ---- */

static void write_copy_source(const char *path)
{
    tu_sample s = {50,
                   8,
                   EMBT_DTYPE_F16,
                   EMBT_VOCAB_COUNTS | EMBT_VOCAB_COMPRESS,
                   EMBT_TABLE_COMPRESS | EMBT_TABLE_NORMS,
                   "old: true\nkeep: [1, 2]\n"};
    TU_OK(tu_write_sample(path, &s));
}

Test(roundtrip, copy_sections_skipping_metadata_keeps_every_table_and_takes_new_metadata,
     .init = tu_setup, .fini = tu_teardown)
{
    const char *src_path = tu_path("src.embt"), *dst_path = tu_path("dst.embt");
    write_copy_source(src_path);
    embt_file *src = NULL, *dst = NULL;
    TU_OK(embt_file_open(&src, src_path, NULL));

    static const char meta[] = "new: metadata\nnested:\n  k: \"v\"\n";
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, dst_path, NULL));
    TU_OK(embt_writer_copy_sections(w, src, EMBT_COPY_SKIP_METADATA));
    TU_OK(embt_writer_set_metadata(w, meta, strlen(meta)));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);

    TU_OK(embt_file_open(&dst, dst_path, NULL));
    TU_OK(embt_file_verify(dst));
    size_t mlen = 0;
    const char *m = embt_file_metadata(dst, &mlen);
    cr_assert_not_null(m);
    cr_assert_eq(mlen, strlen(meta));
    cr_assert_eq(memcmp(m, meta, mlen), 0);
    cr_assert_eq(embt_file_table_count(dst), embt_file_table_count(src));
    cr_assert_eq(embt_file_vocab_count(dst), embt_file_vocab_count(src));
    for (size_t i = 0; i < embt_file_table_count(src); i++) {
        const embt_table *a = embt_file_table_at(src, i), *b = embt_file_table_at(dst, i);
        cr_assert_str_eq(embt_table_name(a), embt_table_name(b));
        cr_assert_eq(embt_table_dtype(a), embt_table_dtype(b));
        cr_assert_eq(embt_table_rows(a), embt_table_rows(b));
        cr_assert_eq(embt_table_cols(a), embt_table_cols(b));
        size_t n = (size_t)(embt_table_rows(a) * embt_table_cols(a)) *
                   embt_dtype_size(embt_table_dtype(a));
        cr_assert_eq(memcmp(embt_table_data(a), embt_table_data(b), n), 0);
        cr_assert_not_null(embt_table_norms(b));
        cr_assert_eq(memcmp(embt_table_norms(a), embt_table_norms(b), 4 * embt_table_rows(a)), 0);
        cr_assert_not_null(embt_table_vocab(b));
    }
    const embt_vocab *va = embt_file_vocab_at(src, 0), *vb = embt_file_vocab_at(dst, 0);
    cr_assert_eq(embt_vocab_size(va), embt_vocab_size(vb));
    for (uint32_t i = 0; i < embt_vocab_size(va); i++) {
        size_t la, lb;
        const char *ta = embt_vocab_token(va, i, &la), *tb = embt_vocab_token(vb, i, &lb);
        cr_assert_eq(la, lb);
        cr_assert_eq(memcmp(ta, tb, la), 0);
        uint64_t ca, cb;
        TU_OK(embt_vocab_count(&ca, va, i));
        TU_OK(embt_vocab_count(&cb, vb, i));
        cr_assert_eq(ca, cb);
    }
    /* every non-metadata section is copied as stored: same codec, lengths and checksum */
    size_t j = 0;
    for (size_t i = 0; i < embt_file_section_count(src); i++) {
        embt_section_info a, b;
        TU_OK(embt_file_section(&a, src, i));
        if (a.type == EMBT_SECTION_METADATA)
            continue;
        TU_OK(embt_file_section(&b, dst, j++));
        cr_assert_eq(a.type, b.type);
        cr_assert_eq(a.codec, b.codec);
        cr_assert_eq(a.filter, b.filter);
        cr_assert_eq(a.stored_length, b.stored_length);
        cr_assert_eq(a.crc32, b.crc32);
    }
    embt_file_close(dst);
    embt_file_close(src);
}

Test(roundtrip, copy_sections_of_a_whole_file_reproduces_it_byte_for_byte, .init = tu_setup,
     .fini = tu_teardown)
{
    const char *src_path = tu_path("src.embt"), *dst_path = tu_path("dst.embt");
    write_copy_source(src_path);
    embt_file *src = NULL;
    TU_OK(embt_file_open(&src, src_path, NULL));
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, dst_path, NULL));
    TU_OK(embt_writer_copy_sections(w, src, 0));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    embt_file_close(src);
    cr_assert(tu_same_file(src_path, dst_path), "a full copy differs from its source");
}
