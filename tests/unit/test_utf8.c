/* test_utf8.c: the UTF-8 check and repair every importer uses (util.c). embt__utf8_repair must give
 * exactly what Python's bytes.decode('utf-8', errors='replace') gives (gensim's
 * unicode_errors='replace'), NUL aside: tests/fixtures/python/utf8_replace.txt holds Python's answers
 * for every 1- to 3-byte string over 20 boundary bytes and every 4-byte string over 9
 * (utf8_replace.py wrote it). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "test_util.h"

static size_t from_hex(uint8_t *out, const char *hex)
{
    size_t n = 0;
    for (; hex[0] && hex[1]; hex += 2) {
        unsigned v;
        cr_assert_eq(sscanf(hex, "%2x", &v), 1, "bad hex '%s'", hex);
        out[n++] = (uint8_t)v;
    }
    return n;
}

Test(utf8, repair_matches_pythons_replace_on_every_short_string)
{
    const char *path = tu_fixture("python", "utf8_replace.txt");
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    char in_hex[32], want_hex[64];
    size_t cases = 0, repaired = 0;
    while (fscanf(f, "%31s %63s", in_hex, want_hex) == 2) {
        uint8_t in[16], want[32], got[48];
        size_t n = from_hex(in, in_hex), n_want = from_hex(want, want_hex);
        size_t bad = 0;
        bool valid = embt__utf8_valid(in, n, &bad);
        size_t n_got = embt__utf8_repair(got, in, n);
        cr_assert(n_got == n_want && memcmp(got, want, n_got) == 0,
                  "%s: repaired to %zu bytes, Python gives %s", in_hex, n_got, want_hex);
        /* valid exactly when Python changes nothing */
        cr_assert_eq(valid, n == n_want && memcmp(in, want, n) == 0, "%s: valid %d", in_hex, valid);
        cr_assert(valid || bad < n, "%s: bad offset %zu", in_hex, bad);
        repaired += !valid;
        cases++;
    }
    fclose(f);
    cr_assert_eq(cases, 14981, "fixture of %zu cases", cases);
    cr_log_info("%zu cases, %zu repaired", cases, repaired);
}

Test(utf8, repair_of_long_runs_stays_within_three_bytes_per_input_byte)
{
    uint8_t in[300], out[900];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i % 3 == 0 ? 0xFF : i % 3 == 1 ? 0xE0 : 0x80);
    size_t n = embt__utf8_repair(out, in, sizeof in);
    cr_assert_leq(n, 3 * sizeof in);
    size_t bad;
    cr_assert(embt__utf8_valid(out, n, &bad), "the repair is not valid UTF-8 at %zu", bad);
    cr_assert_eq(embt__utf8_repair(out, in, 0), 0);
}
