/* test_format_float.c: embt_format_f32 prints the shortest, closest decimal that strtof reads back
 * to the same float32, in NumPy's repr style. A sample of a few million bit patterns runs by default;
 * EMBT_FLOAT_EXHAUSTIVE=1 in the environment checks all 2^32 on two threads (a one-off run, about
 * ten minutes on two cores). */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "test_util.h"

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Writes [-]d * 10^e as "[-]<d>e<e>" into buf (at least 40 bytes); snprintf would dominate the
 * exhaustive run. */
static void decimal_text(char *buf, bool neg, uint64_t d, int e)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + d % 10);
        d /= 10;
    } while (d);
    char *p = buf;
    if (neg)
        *p++ = '-';
    while (n)
        *p++ = tmp[--n];
    *p++ = 'e';
    if (e < 0) {
        *p++ = '-';
        e = -e;
    }
    if (e >= 10)
        *p++ = (char)('0' + e / 10);
    *p++ = (char)('0' + e % 10);
    *p = '\0';
}

/* Checks one finite bit pattern: the text reads back exactly, is at most 16 bytes, has no shorter
 * decimal that reads back (the numbers of one digit fewer just below and above it do not), and no
 * neighbour with as many digits that reads back is closer to the exact value. Returns NULL or a
 * description of the failure (static buffer, one per thread). */
static const char *check_bits(uint32_t bits)
{
    static _Thread_local char why[160];
    float v = from_bits(bits);
    char s[40];
    size_t len = embt_format_f32(s, v);
    if (len != strlen(s) || len > 16) {
        snprintf(why, sizeof why, "%08x: length %zu of '%s'", bits, len, s);
        return why;
    }
    float back = strtof(s, NULL);
    if (to_bits(back) != bits) {
        snprintf(why, sizeof why, "%08x: '%s' reads back as %08x", bits, s, to_bits(back));
        return why;
    }
    /* digits and decimal exponent of the text: value = d * 10^e */
    uint64_t d = 0;
    int n = 0, e = 0, frac = 0;
    bool seen_point = false, started = false;
    const char *c = s;
    if (*c == '-')
        c++;
    for (; *c && *c != 'e'; c++) {
        if (*c == '.') {
            seen_point = true;
            continue;
        }
        if (seen_point)
            frac++;
        if (*c == '0' && !started)
            continue;
        started = true;
        d = d * 10 + (uint64_t)(*c - '0');
        n++;
    }
    if (*c == 'e')
        e = atoi(c + 1);
    e -= frac;
    while (d != 0 && d % 10 == 0) { /* "120.0" has two significant digits */
        d /= 10;
        e++;
        n--;
    }
    if (v == 0)
        return NULL;
    bool neg = bits >> 31;
    char t[48];
    if (n > 1) {
        uint64_t shorter[2] = {d / 10, d / 10 + 1};
        for (int i = 0; i < 2; i++) {
            decimal_text(t, neg, shorter[i], e + 1);
            if (to_bits(strtof(t, NULL)) == bits) {
                snprintf(why, sizeof why, "%08x: '%s' is longer than '%s'", bits, s, t);
                return why;
            }
        }
    }
    long double exact = (long double)v, mine = -1;
    uint64_t near[2] = {d - 1, d + 1};
    for (int i = 0; i < 2; i++) {
        if (near[i] == 0)
            continue;
        decimal_text(t, neg, near[i], e);
        if (to_bits(strtof(t, NULL)) != bits)
            continue;
        if (mine < 0)
            mine = fabsl(strtold(s, NULL) - exact);
        long double theirs = fabsl(strtold(t, NULL) - exact);
        /* long double carries 64 bits: differences far below one unit of the last digit are ties */
        long double unit = powl(10.0L, e);
        if (theirs < mine - unit * 1e-6L) {
            snprintf(why, sizeof why, "%08x: '%s' is closer than '%s'", bits, t, s);
            return why;
        }
    }
    return NULL;
}

typedef struct sweep {
    uint64_t first, step, count;
    uint64_t checked, failures;
    char first_failure[160];
} sweep;

static void *run_sweep(void *arg)
{
    sweep *w = arg;
    uint64_t b = w->first;
    for (uint64_t i = 0; i < w->count; i++, b += w->step) {
        uint32_t bits = (uint32_t)b;
        if (((bits >> 23) & 0xFF) == 0xFF)
            continue; /* nan and inf are checked by name */
        w->checked++;
        const char *why = check_bits(bits);
        if (why && w->failures++ == 0)
            snprintf(w->first_failure, sizeof w->first_failure, "%s", why);
    }
    return NULL;
}

/* Checks patterns first, first + step, ... (count of them) on two threads. */
static void sweep_two_threads(uint64_t first, uint64_t step, uint64_t count)
{
    sweep w[2] = {{first, step * 2, (count + 1) / 2, 0, 0, ""},
                  {first + step, step * 2, count / 2, 0, 0, ""}};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, run_sweep, &w[1]), 0);
    run_sweep(&w[0]);
    pthread_join(th, NULL);
    cr_log_info("checked %llu patterns", (unsigned long long)(w[0].checked + w[1].checked));
    cr_assert_eq(w[0].failures + w[1].failures, 0, "%llu failures, e.g. %s",
                 (unsigned long long)(w[0].failures + w[1].failures),
                 w[0].failures ? w[0].first_failure : w[1].first_failure);
}

Test(format_float, sampled_bit_patterns_read_back_exactly_and_are_shortest_and_closest,
     .timeout = 86400)
{
    const char *all = getenv("EMBT_FLOAT_EXHAUSTIVE");
    if (all && strcmp(all, "1") == 0) {
        sweep_two_threads(0, 1, UINT64_C(1) << 32);
        return;
    }
    /* a stride coprime with 2^32 visits about 3 million patterns spread over every exponent */
    sweep_two_threads(12345, 1427, (UINT64_C(1) << 32) / 1427);
}

Test(format_float, every_exponent_edge_is_shortest_and_closest)
{
    /* the smallest and largest few mantissas of every exponent, both signs: powers of two (where
     * the gap below halves), the subnormal range and the largest finite values */
    for (uint32_t sign = 0; sign < 2; sign++) {
        for (uint32_t ex = 0; ex < 255; ex++) {
            for (uint32_t m = 0; m < 64; m++) {
                uint32_t lo = sign << 31 | ex << 23 | m;
                uint32_t hi = sign << 31 | ex << 23 | (0x7FFFFFu - m);
                const char *why = check_bits(lo);
                cr_assert_null(why, "%s", why);
                why = check_bits(hi);
                cr_assert_null(why, "%s", why);
            }
        }
    }
}

Test(format_float, prints_numpy_repr_strings)
{
    static const struct {
        float v;
        const char *text;
    } cases[] = {
        {0.1f, "0.1"},
        {1.0f, "1.0"},
        {-1.0f, "-1.0"},
        {0.0f, "0.0"},
        {-0.0f, "-0.0"},
        {2.5f, "2.5"},
        {100.0f, "100.0"},
        {123456.7f, "123456.7"},
        {16777216.0f, "16777216.0"},
        {0.3f, "0.3"},
        {1e-4f, "1e-04"}, /* the float is just below 1e-4: scientific, as NumPy */
        {0.00012345679f, "0.00012345679"},
        {1e-5f, "1e-05"},
        {-1.5e-7f, "-1.5e-07"},
        {3.4028235e38f, "3.4028235e+38"},
        {-3.4028235e38f, "-3.4028235e+38"},
        {1e-45f, "1e-45"},
        {7e-45f, "7e-45"},
        {1.17549435e-38f, "1.1754944e-38"},
        {999999995904.0f, "1000000000000.0"},   /* the float just below 1e12 */
        {-999999995904.0f, "-1000000000000.0"}, /* the longest string: 16 bytes */
        {1.0000001e12f,
         "1.0000001e+12"}, /* NumPy would print 1000000100000.0 (it switches at 1e16) */
        {987654.3e3f, "987654300.0"},
        {0.79230624f, "0.79230624"},
        {33554432.0f, "33554432.0"},
        {1e30f, "1e+30"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[17];
        size_t n = embt_format_f32(buf, cases[i].v);
        cr_expect_str_eq(buf, cases[i].text, "%.9g", (double)cases[i].v);
        cr_expect_eq(n, strlen(cases[i].text));
    }
}

Test(format_float, prints_nan_and_infinities_by_name)
{
    char buf[17];
    cr_assert_eq(embt_format_f32(buf, INFINITY), 3);
    cr_assert_str_eq(buf, "inf");
    cr_assert_eq(embt_format_f32(buf, -INFINITY), 4);
    cr_assert_str_eq(buf, "-inf");
    cr_assert_eq(embt_format_f32(buf, NAN), 3);
    cr_assert_str_eq(buf, "nan");
    cr_assert_eq(embt_format_f32(buf, from_bits(0xFFC00001u)), 3);
    cr_assert_str_eq(buf, "nan");
}

/* tests/fixtures/gensim/numpy_repr.txt: "<hex bits> <repr>" lines written by make_fixtures.py with
 * NumPy's own repr of each float32 (random bit patterns and awkward values below 1e12 in
 * magnitude). */
Test(format_float, matches_numpy_repr_of_random_float32)
{
    const char *path = tu_fixture("gensim", "numpy_repr.txt");
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    char line[128];
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned bits;
        char want[64], got[17];
        cr_assert_eq(sscanf(line, "%x %63s", &bits, want), 2, "line %zu", n + 1);
        embt_format_f32(got, from_bits(bits));
        cr_expect_str_eq(got, want, "bits %08x", bits);
        n++;
    }
    fclose(f);
    cr_assert_geq(n, 10000);
}
