/* parse_float.c: exact decimal text to float32: Clinger's fast path in float arithmetic for short
 * decimals, strtof_l in the C locale for everything else (ANCHORS.md 4.1). */
#define _GNU_SOURCE /* strtof_l */
#include <float.h>
#include <locale.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"
#include "parse_float.h"

/* The fast path is exact only when float operations round once to float (no wider evaluation). */
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "parse_float.c needs FLT_EVAL_METHOD == 0"
#endif

/* 10^0 .. 10^10 are exact in binary32 (5^10 < 2^24). */
static const float pow10_f32[11] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f,
                                    1e6f, 1e7f, 1e8f, 1e9f, 1e10f};

#define FAST_MANTISSA_MAX (UINT64_C(1) << 24)
#define SLOW_STACK_BYTES 256

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale = (locale_t)0;

static void c_locale_create(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

embt_status embt__parse_float_init(void)
{
    pthread_once(&c_locale_once, c_locale_create);
    if (c_locale == (locale_t)0)
        return embt__error_nomem();
    return EMBT_OK;
}

/* strtof_l on a NUL-terminated copy: the authority on what is a number. */
static int parse_slow(float *out, const char *s, size_t n)
{
    char stack[SLOW_STACK_BYTES];
    char *buf = stack;
    char *end = NULL;
    int rc = -1;

    if (c_locale == (locale_t)0)
        return -2;
    if (n == 0)
        return -1;
    /* strtof skips leading white space; a field never starts with it */
    switch (s[0]) {
    case ' ':
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r': return -1;
    default: break;
    }
    if (n >= sizeof stack) {
        buf = embt__malloc(n + 1);
        if (!buf)
            return -2;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    float v = strtof_l(buf, &end, c_locale);
    if (end == buf + n && memchr(buf, '\0', n) == NULL) {
        *out = v;
        rc = 0;
    }
    if (buf != stack)
        embt__free(buf);
    return rc;
}

int embt__parse_f32(float *out, const char *s, size_t n)
{
    const char *p = s;
    const char *end = s + n;
    bool negative = false;
    bool any_digit = false;
    uint64_t w = 0; /* decimal mantissa, digits without the point */
    int64_t q = 0;  /* power of ten: value = w * 10^q */

    if (p < end && (*p == '-' || *p == '+')) {
        negative = *p == '-';
        p++;
    }
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        any_digit = true;
        w = w * 10 + (uint64_t)(*p - '0');
        if (w > FAST_MANTISSA_MAX)
            return parse_slow(out, s, n);
    }
    if (p < end && *p == '.') {
        p++;
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            any_digit = true;
            w = w * 10 + (uint64_t)(*p - '0');
            if (w > FAST_MANTISSA_MAX)
                return parse_slow(out, s, n);
            q--;
            if (q < -10 && w != 0)
                return parse_slow(out, s, n);
        }
    }
    if (!any_digit)
        return parse_slow(out, s, n); /* inf, nan, hex, or not a number */
    if (p < end && (*p == 'e' || *p == 'E')) {
        const char *e = p + 1;
        bool exp_negative = false;
        int64_t exp = 0;
        if (e < end && (*e == '-' || *e == '+')) {
            exp_negative = *e == '-';
            e++;
        }
        if (e == end || *e < '0' || *e > '9')
            return parse_slow(out, s, n);
        for (; e < end && *e >= '0' && *e <= '9'; e++) {
            exp = exp * 10 + (*e - '0');
            if (exp > 100000)
                return parse_slow(out, s, n);
        }
        q += exp_negative ? -exp : exp;
        p = e;
    }
    if (p != end)
        return parse_slow(out, s, n);

    float v;
    if (w == 0) {
        v = 0.0f;
    } else if (q >= 0 && q <= 10) {
        v = (float)w * pow10_f32[q];
    } else if (q < 0 && q >= -10) {
        v = (float)w / pow10_f32[-q];
    } else {
        return parse_slow(out, s, n);
    }
    *out = negative ? -v : v;
    return 0;
}
