/* util.c: byte-level helpers shared by the reader and the writer: CRC-32, strict UTF-8 validation and
 * the SHUFFLE filter of spec/FORMAT.md 6. Pure functions of their arguments; no allocation. */
#include <zlib.h>

#include "internal.h"

/* crc32_z takes a z_size_t, which is only 32 bits on some targets: feed at most 1 GiB per call. */
#define CRC_CHUNK ((uint64_t)1 << 30)

uint32_t embt__crc32(uint32_t crc, const void *data, uint64_t n)
{
    const uint8_t *p = data;
    while (n > 0) {
        uint64_t chunk = n < CRC_CHUNK ? n : CRC_CHUNK;
        crc = (uint32_t)crc32_z(crc, p, (z_size_t)chunk);
        p += chunk;
        n -= chunk;
    }
    return crc;
}

/* True when none of the 8 bytes has its high bit set and none is zero (the classic has-zero trick). */
static bool ascii_nonzero8(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    return (v & highs) == 0 && ((v - ones) & ~v & highs) == 0;
}

/* For the byte at s[0] that is not ASCII (n >= 1 bytes): *len_out = the length of the character it
 * leads, 0 when it leads none (NUL, a stray continuation byte, C0, C1, F5..FF); returns how many of
 * the character's bytes are well-formed, so it is valid when the two are equal. RFC 3629 section
 * 4: the second byte's range depends on the lead byte, which excludes overlong forms (C0, C1,
 * E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code points above U+10FFFF. */
static size_t sequence_prefix(const uint8_t *s, size_t n, size_t *len_out)
{
    uint8_t b = s[0], lo = 0x80, hi = 0xBF;
    size_t len = 0;
    if (b >= 0xC2 && b <= 0xDF) {
        len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        lo = b == 0xE0 ? 0xA0 : 0x80;
        hi = b == 0xED ? 0x9F : 0xBF;
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        lo = b == 0xF0 ? 0x90 : 0x80;
        hi = b == 0xF4 ? 0x8F : 0xBF;
    }
    *len_out = len;
    if (len == 0)
        return 0;
    size_t k = 1;
    if (n > 1 && s[1] >= lo && s[1] <= hi) {
        k = 2;
        while (k < len && k < n && s[k] >= 0x80 && s[k] <= 0xBF)
            k++;
    }
    return k;
}

bool embt__utf8_valid(const uint8_t *s, size_t n, size_t *bad_at)
{
    size_t i = 0;
    while (i < n) {
        /* most tokens and YAML are ASCII: skip whole words of it */
        while (n - i >= 8 && ascii_nonzero8(s + i))
            i += 8;
        if (i >= n)
            break;
        if (s[i] >= 0x01 && s[i] <= 0x7F) {
            i++;
            continue;
        }
        size_t len, k = sequence_prefix(s + i, n - i, &len);
        if (len == 0 || k < len) {
            if (bad_at)
                *bad_at = i; /* the lead byte of the sequence that does not decode */
            return false;
        }
        i += len;
    }
    return true;
}

size_t embt__utf8_repair(uint8_t *dst, const uint8_t *s, size_t n)
{
    size_t out = 0, p = 0;
    while (p < n) {
        size_t bad = 0;
        if (embt__utf8_valid(s + p, n - p, &bad))
            bad = n - p;
        memcpy(dst + out, s + p, bad);
        out += bad;
        p += bad;
        if (p < n) {
            /* the lead byte and the continuation bytes that could still have completed it */
            size_t len, k = sequence_prefix(s + p, n - p, &len);
            p += len == 0 ? 1 : k;
            memcpy(dst + out, "\xEF\xBF\xBD", 3);
            out += 3;
        }
    }
    return out;
}

void embt__shuffle_block(uint8_t *dst, const uint8_t *src, size_t n, size_t e)
{
    if (e <= 1) {
        memcpy(dst, src, n);
        return;
    }
    size_t k = n / e;
    /* FORMAT.md 6: shuffled byte j * k + i is decoded byte i * e + j */
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < e; j++)
            dst[j * k + i] = src[i * e + j];
}

void embt__unshuffle_block(uint8_t *dst, const uint8_t *src, size_t n, size_t e)
{
    if (e <= 1) {
        memcpy(dst, src, n);
        return;
    }
    size_t k = n / e;
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < e; j++)
            dst[i * e + j] = src[j * k + i];
}

size_t embt__shuffle_elem_size(uint16_t type, uint32_t dtype)
{
    switch (type) {
    case EMBT_SECTION_TABLE: return embt_dtype_size((embt_dtype)dtype);
    case EMBT_SECTION_ROW_SCALES:
    case EMBT_SECTION_ROW_NORMS:
    case EMBT_SECTION_VOCAB_INDEX: return 4;
    case EMBT_SECTION_VOCAB_COUNTS: return 8;
    default:
        return 0; /* VOCAB and METADATA must not be shuffled; unknown types are never decoded */
    }
}
