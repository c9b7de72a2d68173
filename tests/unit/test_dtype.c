/* test_dtype.c: the dtype table (names, sizes, parsing) and the exported f16/bf16 conversions,
 * checked exhaustively on the 16-bit side and on a dense grid of f32 inputs against an independent
 * round-to-nearest-even reference (and against GCC's _Float16 where the compiler has it).
 *
 * NaN policy these tests expect: a NaN stays a NaN of the same sign in every direction; its payload
 * may be canonicalised (quieted or replaced), so f16 -> f32 -> f16 is the identity on every value
 * except NaNs, where only "NaN with the same sign" is required. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

/* ---- independent references ---- */

static bool f16_is_nan(uint16_t h)
{
    return (h & 0x7C00) == 0x7C00 && (h & 0x03FF) != 0;
}

static bool bf16_is_nan(uint16_t h)
{
    return (h & 0x7F80) == 0x7F80 && (h & 0x007F) != 0;
}

/* The exact value of a binary16 (non-NaN), computed with ldexp. */
static float ref_f16_value(uint16_t h)
{
    int sign = h >> 15, e = (h >> 10) & 0x1F, m = h & 0x3FF;
    float v;
    if (e == 0)
        v = ldexpf((float)m, -24);
    else if (e == 31)
        v = INFINITY;
    else
        v = ldexpf((float)(m | 0x400), e - 25);
    return sign ? -v : v;
}

/* binary32 bits -> binary16, round to nearest, ties to even; any NaN gives 0x7E00 with the sign. */
static uint16_t ref_f32_to_f16(uint32_t x)
{
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t exp = (x >> 23) & 0xFF, man = x & 0x7FFFFF;
    if (exp == 0xFF)
        return (uint16_t)(sign | (man ? 0x7E00 : 0x7C00));
    int e = (int)exp - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7C00);
    uint32_t q, rem, half;
    if (e <= 0) {
        /* result in units of 2^-24: significand m times 2^(exp - 126) (f32 subnormals: 2^-125) */
        uint32_t m = exp ? (man | 0x800000) : man;
        uint32_t s = exp ? 126 - exp : 125;
        if (s > 25)
            return sign;
        q = m >> s;
        rem = m & ((1u << s) - 1);
        half = 1u << (s - 1);
    } else {
        q = ((uint32_t)e << 10) | (man >> 13);
        rem = man & 0x1FFF;
        half = 0x1000;
    }
    if (rem > half || (rem == half && (q & 1)))
        q++; /* a carry into the exponent is correct, up to infinity (0x7C00) */
    return (uint16_t)(sign | q);
}

/* binary32 bits -> bfloat16, round to nearest, ties to even (NaN handled by the caller). */
static uint16_t ref_f32_to_bf16(uint32_t x)
{
    return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

/* Checks the library's f32 -> f16 / bf16 on n inputs against the references; returns mismatches. */
static size_t check_f32_batch(const uint32_t *bits, size_t n, uint16_t *h, uint16_t *b, float *f)
{
    for (size_t i = 0; i < n; i++)
        f[i] = tu_bits_f32(bits[i]);
    embt_f32_to_f16(h, f, n);
    embt_f32_to_bf16(b, f, n);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t x = bits[i];
        bool nan = (x & 0x7F800000) == 0x7F800000 && (x & 0x7FFFFF);
        bool ok16, okb;
        if (nan) {
            ok16 = f16_is_nan(h[i]) && (h[i] >> 15) == (x >> 31);
            okb = bf16_is_nan(b[i]) && (b[i] >> 15) == (x >> 31);
        } else {
            ok16 = h[i] == ref_f32_to_f16(x);
            okb = b[i] == ref_f32_to_bf16(x);
        }
        if (!ok16 || !okb) {
            if (bad < 5)
                cr_log_error("f32 0x%08x: f16 0x%04x (want 0x%04x), bf16 0x%04x (want 0x%04x)", x,
                             h[i], ref_f32_to_f16(x), b[i], ref_f32_to_bf16(x));
            bad++;
        }
    }
    return bad;
}

/* ---- 16 bits -> f32 -> 16 bits, exhaustively ---- */

Test(dtype, f16_to_f32_gives_the_exact_value_of_every_half)
{
    static uint16_t h[65536];
    static float f[65536];
    for (uint32_t i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;
    embt_f16_to_f32(f, h, 65536);
    for (uint32_t i = 0; i < 65536; i++) {
        if (f16_is_nan(h[i])) {
            cr_assert(isnan(f[i]), "half 0x%04x should give NaN", i);
            cr_assert_eq(signbit(f[i]) != 0, (i >> 15) != 0, "half 0x%04x lost its sign", i);
        } else {
            float want = ref_f16_value(h[i]);
            cr_assert_eq(tu_f32_bits(f[i]), tu_f32_bits(want), "half 0x%04x: got %a, want %a", i,
                         (double)f[i], (double)want);
        }
    }
}

Test(dtype, f16_round_trip_through_f32_is_the_identity_except_nan_payloads)
{
    static uint16_t h[65536], back[65536];
    static float f[65536];
    for (uint32_t i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;
    embt_f16_to_f32(f, h, 65536);
    embt_f32_to_f16(back, f, 65536);
    for (uint32_t i = 0; i < 65536; i++) {
        if (f16_is_nan(h[i]))
            cr_assert(f16_is_nan(back[i]) && (back[i] >> 15) == (i >> 15),
                      "NaN 0x%04x came back as 0x%04x", i, back[i]);
        else
            cr_assert_eq(back[i], h[i], "half 0x%04x came back as 0x%04x", i, back[i]);
    }
}

Test(dtype, bf16_to_f32_is_the_high_half_of_the_f32_for_every_value)
{
    static uint16_t h[65536];
    static float f[65536];
    for (uint32_t i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;
    embt_bf16_to_f32(f, h, 65536);
    for (uint32_t i = 0; i < 65536; i++) {
        if (bf16_is_nan(h[i]))
            cr_assert(isnan(f[i]) && (signbit(f[i]) != 0) == ((i >> 15) != 0),
                      "bf16 NaN 0x%04x gave %a", i, (double)f[i]);
        else
            cr_assert_eq(tu_f32_bits(f[i]), i << 16, "bf16 0x%04x gave 0x%08x", i,
                         tu_f32_bits(f[i]));
    }
}

Test(dtype, bf16_round_trip_through_f32_is_the_identity_except_nan_payloads)
{
    static uint16_t h[65536], back[65536];
    static float f[65536];
    for (uint32_t i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;
    embt_bf16_to_f32(f, h, 65536);
    embt_f32_to_bf16(back, f, 65536);
    for (uint32_t i = 0; i < 65536; i++) {
        if (bf16_is_nan(h[i]))
            cr_assert(bf16_is_nan(back[i]) && (back[i] >> 15) == (i >> 15),
                      "bf16 NaN 0x%04x came back as 0x%04x", i, back[i]);
        else
            cr_assert_eq(back[i], h[i], "bf16 0x%04x came back as 0x%04x", i, back[i]);
    }
}

/* ---- f32 -> 16 bits on a dense grid ---- */

/* Every combination of the high bits with low bits that put the dropped part below, at and above
 * the halfway point, plus random patterns: covers the round and sticky bits of both formats. */
Test(dtype, f32_to_f16_and_bf16_round_to_nearest_even_on_a_dense_grid)
{
    enum { BATCH = 1 << 16 };
    uint32_t *bits = malloc(BATCH * sizeof *bits);
    uint16_t *h = malloc(BATCH * 2), *b = malloc(BATCH * 2);
    float *f = malloc(BATCH * 4);
    cr_assert(bits && h && b && f);
    static const uint32_t low12[] = {0x000, 0x001, 0x7FF, 0x800, 0x801, 0xFFF};
    static const uint32_t low15[] = {0x0000, 0x0001, 0x3FFF, 0x4000, 0x4001, 0x7FFF};
    size_t n = 0, bad = 0, total = 0;
    for (uint32_t hi = 0; hi < (1u << 20); hi++)
        for (size_t k = 0; k < 6; k++) {
            bits[n++] = (hi << 12) | low12[k];
            if (n == BATCH) {
                bad += check_f32_batch(bits, n, h, b, f);
                total += n;
                n = 0;
            }
        }
    for (uint32_t hi = 0; hi < (1u << 17); hi++)
        for (size_t k = 0; k < 6; k++) {
            bits[n++] = (hi << 15) | low15[k];
            if (n == BATCH) {
                bad += check_f32_batch(bits, n, h, b, f);
                total += n;
                n = 0;
            }
        }
    uint64_t seed = 42;
    for (int rep = 0; rep < 32; rep++) {
        for (size_t i = n; i < BATCH; i++)
            bits[i] = (uint32_t)tu_rand(&seed);
        bad += check_f32_batch(bits, BATCH, h, b, f);
        total += BATCH;
        n = 0;
    }
    cr_assert_eq(bad, 0, "%zu of %zu f32 inputs converted wrongly", bad, total);
    free(bits);
    free(h);
    free(b);
    free(f);
}

struct round_case {
    uint32_t in;   /* f32 bits */
    uint16_t f16;  /* expected binary16 */
    uint16_t bf16; /* expected bfloat16 */
};

ParameterizedTestParameters(dtype, f32_conversion_edge_cases_round_as_specified)
{
    static struct round_case cases[] = {
        {0x00000000, 0x0000, 0x0000}, /* +0 */
        {0x80000000, 0x8000, 0x8000}, /* -0 keeps its sign */
        {0x3F800000, 0x3C00, 0x3F80}, /* 1 */
        {0x3F801000, 0x3C00, 0x3F80}, /* 1 + 2^-11: f16 midpoint, ties to even (down) */
        {0x3F803000, 0x3C02, 0x3F80}, /* 1 + 3 * 2^-11: f16 midpoint, ties to even (up) */
        {0x3F801001, 0x3C01, 0x3F80}, /* just above the f16 midpoint */
        {0x3F808000, 0x3C04, 0x3F80}, /* 1 + 2^-8: bf16 midpoint, even (down) */
        {0x3F818000, 0x3C0C, 0x3F82}, /* bf16 midpoint, even (up) */
        {0x3F808001, 0x3C04, 0x3F81}, /* just above the bf16 midpoint */
        {0x477FE000, 0x7BFF, 0x4780}, /* 65504, the largest half */
        {0x477FEFFF, 0x7BFF, 0x4780}, /* just below 65520 */
        {0x477FF000, 0x7C00, 0x4780}, /* 65520: midpoint to 65536, ties to even = infinity */
        {0x47800000, 0x7C00, 0x4780}, /* 65536 overflows f16 */
        {0x7F7FFFFF, 0x7C00, 0x7F80}, /* FLT_MAX: overflows both to infinity */
        {0xFF7FFFFF, 0xFC00, 0xFF80}, /* -FLT_MAX */
        {0x7F800000, 0x7C00, 0x7F80}, /* +inf */
        {0xFF800000, 0xFC00, 0xFF80}, /* -inf */
        {0x38800000, 0x0400, 0x3880}, /* 2^-14, the smallest normal half */
        {0x387FC000, 0x03FF, 0x3880}, /* 1023 * 2^-24, the largest subnormal half */
        {0x33800000, 0x0001, 0x3380}, /* 2^-24, the smallest subnormal half */
        {0x33000000, 0x0000, 0x3300}, /* 2^-25: midpoint between 0 and 2^-24, even = 0 */
        {0x33000001, 0x0001, 0x3300}, /* just above it */
        {0xB3000000, 0x8000, 0xB300}, /* -2^-25 rounds to -0 */
        {0x33C00000, 0x0002, 0x33C0}, /* 3 * 2^-25: midpoint between 1 and 2 units, even = 2 */
        {0x34200000, 0x0002, 0x3420}, /* 5 * 2^-25: midpoint between 2 and 3 units, even = 2 */
        {0x387FE000, 0x0400, 0x3880}, /* 1023.5 units: rounds up into the first normal */
        {0x00000001, 0x0000, 0x0000}, /* smallest f32 subnormal */
        {0x007FFFFF, 0x0000, 0x0080}, /* largest f32 subnormal: bf16 rounds up to the min normal */
        {0xC0490FDB, 0xC248, 0xC049}, /* -pi */
    };
    return cr_make_param_array(struct round_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct round_case *c, dtype, f32_conversion_edge_cases_round_as_specified)
{
    float f = tu_bits_f32(c->in);
    uint16_t h = 0xDEAD, b = 0xDEAD;
    embt_f32_to_f16(&h, &f, 1);
    embt_f32_to_bf16(&b, &f, 1);
    cr_assert_eq(h, c->f16, "f32 0x%08x -> f16 0x%04x, want 0x%04x", c->in, h, c->f16);
    cr_assert_eq(b, c->bf16, "f32 0x%08x -> bf16 0x%04x, want 0x%04x", c->in, b, c->bf16);
    /* the table's own expectations agree with the reference, so the reference is checked too */
    cr_assert_eq(ref_f32_to_f16(c->in), c->f16);
    cr_assert_eq(ref_f32_to_bf16(c->in), c->bf16);
}

Test(dtype, nan_inputs_stay_nan_with_their_sign)
{
    static const uint32_t nans[] = {0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001,
                                    0x7FFFFFFF, 0x7F801000, 0x7F802000, 0x7FBFFFFF};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        float f = tu_bits_f32(nans[i]);
        uint16_t h, b;
        embt_f32_to_f16(&h, &f, 1);
        embt_f32_to_bf16(&b, &f, 1);
        /* 0x7F801000 and 0x7F802000 would truncate to an infinity without care for the payload */
        cr_assert(f16_is_nan(h), "f32 NaN 0x%08x -> f16 0x%04x", nans[i], h);
        cr_assert(bf16_is_nan(b), "f32 NaN 0x%08x -> bf16 0x%04x", nans[i], b);
        cr_assert_eq(h >> 15, nans[i] >> 31);
        cr_assert_eq(b >> 15, nans[i] >> 31);
    }
}

Test(dtype, conversions_of_zero_elements_write_nothing)
{
    float f = 1.5f;
    uint16_t h = 0x1234;
    embt_f32_to_f16(&h, &f, 0);
    embt_f32_to_bf16(&h, &f, 0);
    cr_assert_eq(h, 0x1234);
    embt_f16_to_f32(&f, &h, 0);
    embt_bf16_to_f32(&f, &h, 0);
    cr_assert_eq(f, 1.5f);
}

#if defined(__FLT16_MAX__)
__extension__ typedef _Float16 half_t;

/* GCC's _Float16 (soft-fp __truncsfhf2 / __extendhfsf2 or F16C) is a second, independent reference. */
Test(dtype, f16_conversions_agree_with_the_compilers_float16)
{
    static uint16_t h[65536];
    static float f[65536];
    for (uint32_t i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;
    embt_f16_to_f32(f, h, 65536);
    for (uint32_t i = 0; i < 65536; i++) {
        if (f16_is_nan((uint16_t)i))
            continue;
        half_t x;
        uint16_t u = (uint16_t)i;
        memcpy(&x, &u, 2);
        cr_assert_eq(tu_f32_bits(f[i]), tu_f32_bits((float)x), "half 0x%04x", i);
    }
    uint64_t seed = 7;
    enum { N = 1 << 16 };
    float *in = malloc(N * sizeof *in);
    uint16_t *out = malloc(N * sizeof *out);
    cr_assert(in && out);
    for (int rep = 0; rep < 64; rep++) {
        for (size_t i = 0; i < N; i++) {
            /* bias towards the f16 range: exponents 100..150 */
            uint32_t r = (uint32_t)tu_rand(&seed);
            uint32_t bits = (r & 0x807FFFFF) | ((100u + (r >> 8) % 51u) << 23);
            in[i] = tu_bits_f32(rep % 2 ? r : bits);
        }
        embt_f32_to_f16(out, in, N);
        for (size_t i = 0; i < N; i++) {
            if (isnan(in[i]))
                continue;
            half_t x = (half_t)in[i];
            uint16_t want;
            memcpy(&want, &x, 2);
            cr_assert_eq(out[i], want, "f32 %a: 0x%04x, compiler says 0x%04x", (double)in[i],
                         out[i], want);
        }
    }
    free(in);
    free(out);
}
#endif

/* ---- names, sizes, parsing ---- */

/* No pointers in parameters: Criterion runs each case in a fresh process (see STYLE.md 2.11). */
struct dtype_case {
    embt_dtype dtype;
    char name[8];
    size_t size;
};

ParameterizedTestParameters(dtype, every_dtype_has_its_name_and_size)
{
    static struct dtype_case cases[] = {
        {EMBT_DTYPE_F32, "f32", 4}, {EMBT_DTYPE_F16, "f16", 2}, {EMBT_DTYPE_BF16, "bf16", 2},
        {EMBT_DTYPE_F64, "f64", 8}, {EMBT_DTYPE_I8, "i8", 1},   {EMBT_DTYPE_U8, "u8", 1},
        {EMBT_DTYPE_I32, "i32", 4}, {EMBT_DTYPE_I64, "i64", 8},
    };
    return cr_make_param_array(struct dtype_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct dtype_case *c, dtype, every_dtype_has_its_name_and_size)
{
    cr_assert_eq(embt_dtype_size(c->dtype), c->size);
    cr_assert_not_null(embt_dtype_name(c->dtype));
    cr_assert_str_eq(embt_dtype_name(c->dtype), c->name);
    embt_dtype parsed = 0;
    TU_OK(embt_dtype_parse(&parsed, c->name));
    cr_assert_eq(parsed, c->dtype);
}

Test(dtype, unknown_dtypes_have_no_name_and_size_zero)
{
    static const int bad[] = {0, 9, 100, -1, 0x10001};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(embt_dtype_size((embt_dtype)bad[i]), 0, "dtype %d", bad[i]);
        cr_assert_null(embt_dtype_name((embt_dtype)bad[i]), "dtype %d", bad[i]);
    }
}

Test(dtype, parse_rejects_names_that_are_not_dtypes)
{
    static const char *const bad[] = {"",        "f",   "f3", "f320", "f32 ", " f32",
                                      "float32", "i16", "bf", "u8x",  "i6"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        embt_dtype out = EMBT_DTYPE_F64;
        TU_STATUS(embt_dtype_parse(&out, bad[i]), EMBT_EINVAL);
        cr_assert_eq(embt_error_last()->code, EMBT_EINVAL, "name \"%s\"", bad[i]);
    }
}
