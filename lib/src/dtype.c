/* dtype.c: element types of spec/FORMAT.md 4.4: sizes, names, and the conversions between the stored
 * dtypes and float32. Conversions are exact bit manipulations (round to nearest even where a value
 * must be rounded) so every platform gives the same bytes. */
#include <math.h>
#include <string.h>

#include "internal.h"

static const struct {
    embt_dtype dtype;
    size_t size;
    const char *name;
} dtypes[] = {
    {EMBT_DTYPE_F32, 4, "f32"}, {EMBT_DTYPE_F16, 2, "f16"}, {EMBT_DTYPE_BF16, 2, "bf16"},
    {EMBT_DTYPE_F64, 8, "f64"}, {EMBT_DTYPE_I8, 1, "i8"},   {EMBT_DTYPE_U8, 1, "u8"},
    {EMBT_DTYPE_I32, 4, "i32"}, {EMBT_DTYPE_I64, 8, "i64"},
};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

size_t embt_dtype_size(embt_dtype dtype)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (dtypes[i].dtype == dtype)
            return dtypes[i].size;
    return 0;
}

const char *embt_dtype_name(embt_dtype dtype)
{
    for (size_t i = 0; i < N_DTYPES; i++)
        if (dtypes[i].dtype == dtype)
            return dtypes[i].name;
    return NULL;
}

embt_status embt_dtype_parse(embt_dtype *out, const char *name)
{
    EMBT_CHECK_ARG(out != NULL);
    EMBT_CHECK_ARG(name != NULL);
    for (size_t i = 0; i < N_DTYPES; i++) {
        if (strcmp(name, dtypes[i].name) == 0) {
            *out = dtypes[i].dtype;
            return EMBT_OK;
        }
    }
    return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                       "unknown dtype '%.32s' (expected f32, f16, bf16, f64, i8, u8, i32 or i64)",
                       name);
}

static float bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t f32_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* binary16 -> binary32 is exact: re-bias the exponent, normalise subnormals, keep NaN payloads but
 * quiet signalling NaNs, as the F16C instruction (and every IEEE conversion) does, so that every
 * conversion path of the library gives the same bits. */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t mant = h & 0x3FFu;
    if (exp == 0x1F)
        return bits_to_f32(sign | 0x7F800000u | (mant << 13) | (mant ? 0x00400000u : 0));
    if (exp != 0)
        return bits_to_f32(sign | ((exp + 112u) << 23) | (mant << 13));
    if (mant == 0)
        return bits_to_f32(sign);
    /* subnormal: mant * 2^-24; shift the leading 1 up to the implicit bit */
    uint32_t e = 113;
    while ((mant & 0x400u) == 0) {
        mant <<= 1;
        e--;
    }
    return bits_to_f32(sign | (e << 23) | ((mant & 0x3FFu) << 13));
}

static uint16_t float_to_half(float f)
{
    uint32_t x = f32_to_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    x &= 0x7FFFFFFFu;
    if (x > 0x7F800000u) /* NaN: keep the top payload bits and force quiet so it stays a NaN */
        return (uint16_t)(sign | 0x7E00u | ((x >> 13) & 0x3FFu));
    if (x >= 0x477FF000u) /* >= 65520, the midpoint above 65504 (odd mantissa): rounds to inf */
        return (uint16_t)(sign | 0x7C00u);
    if (x >= 0x38800000u) { /* normal f16 (>= 2^-14): re-bias, then round the 13 dropped bits */
        uint32_t r = x - (112u << 23);
        r += 0xFFFu + ((r >> 13) & 1u);
        return (uint16_t)(sign | (r >> 13));
    }
    if (x <= 0x33000000u) /* <= 2^-25, half the smallest subnormal: ties go to the even zero */
        return sign;
    /* subnormal f16: the value in units of 2^-24 is mant * 2^(exp - 126), exp in [102, 112] */
    uint32_t exp = x >> 23;
    uint32_t mant = (x & 0x7FFFFFu) | 0x800000u;
    uint32_t shift = 126u - exp;
    uint32_t q = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u)))
        q++; /* may carry into the smallest normal, 0x0400, which is the right encoding */
    return (uint16_t)(sign | q);
}

static float bfloat_to_float(uint16_t b)
{
    return bits_to_f32((uint32_t)b << 16);
}

static uint16_t float_to_bfloat(float f)
{
    uint32_t x = f32_to_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) /* NaN: truncating could clear the payload, so set quiet */
        return (uint16_t)((x >> 16) | 0x0040u);
    x += 0x7FFFu + ((x >> 16) & 1u); /* round to nearest even; overflow carries into inf */
    return (uint16_t)(x >> 16);
}

void embt_f16_to_f32(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = half_to_float(src[i]);
}

void embt_f32_to_f16(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = float_to_half(src[i]);
}

void embt_bf16_to_f32(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = bfloat_to_float(src[i]);
}

void embt_f32_to_bf16(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = float_to_bfloat(src[i]);
}

/* Stored bytes are little-endian and may be unaligned (rows of 2-byte dtypes, gathered rows), so every
 * element is assembled from bytes; compilers turn these into plain loads on little-endian hosts. */
void embt__to_f32(float *dst, const void *src, embt_dtype dtype, size_t n, float scale)
{
    const uint8_t *p = src;
    switch (dtype) {
    case EMBT_DTYPE_F32:
        for (size_t i = 0; i < n; i++)
            dst[i] = bits_to_f32(embt__le32(p + 4 * i));
        break;
    case EMBT_DTYPE_F16:
        for (size_t i = 0; i < n; i++)
            dst[i] = half_to_float(embt__le16(p + 2 * i));
        break;
    case EMBT_DTYPE_BF16:
        for (size_t i = 0; i < n; i++)
            dst[i] = bfloat_to_float(embt__le16(p + 2 * i));
        break;
    case EMBT_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            uint64_t u = embt__le64(p + 8 * i);
            double d;
            memcpy(&d, &u, sizeof d);
            dst[i] = (float)d; /* IEEE conversion: round to nearest even, overflow to inf */
        }
        break;
    case EMBT_DTYPE_I8:
        for (size_t i = 0; i < n; i++)
            dst[i] = scale * (float)(int8_t)p[i];
        break;
    case EMBT_DTYPE_U8:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)p[i];
        break;
    case EMBT_DTYPE_I32:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)(int32_t)embt__le32(p + 4 * i);
        break;
    case EMBT_DTYPE_I64:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)(int64_t)embt__le64(p + 8 * i);
        break;
    default:
        /* callers validated the dtype at open or table_begin; zeros keep an impossible case defined */
        memset(dst, 0, n * sizeof *dst);
        break;
    }
}

float embt__f64_to_f32_odd(double d)
{
    float f = (float)d;
    if ((double)f == d || isnan(d))
        return f;
    if (fabs((double)f) > fabs(d)) /* (float)d rounded away from zero: step back towards it */
        f = nextafterf(f, 0.0f);
    uint32_t u = f32_to_bits(f) | 1u; /* inexact: the sticky bit marks it */
    return bits_to_f32(u);
}
