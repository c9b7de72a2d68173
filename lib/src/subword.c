/* subword.c: fastText's character n-gram enumeration and signed-char FNV-1a hash, bit-exact with
 * Dictionary::computeSubwords and Dictionary::hash (facebookresearch/fastText src/dictionary.cc). */
#include "subword.h"

#define FNV32_OFFSET 2166136261u
#define FNV32_PRIME 16777619u

/* fastText xors uint32_t(int8_t(c)): a byte with its high bit set carries 24 one bits above it. */
static inline uint32_t fnv_step(uint32_t h, uint8_t b)
{
    uint32_t x = b >= 0x80 ? 0xFFFFFF00u | b : b;
    return (h ^ x) * FNV32_PRIME;
}

uint32_t embt__subword_hash(const uint8_t *s, size_t n)
{
    uint32_t h = FNV32_OFFSET;
    for (size_t i = 0; i < n; i++)
        h = fnv_step(h, s[i]);
    return h;
}

size_t embt__subword_max(size_t len, uint32_t minn, uint32_t maxn)
{
    if (maxn == 0)
        return 0;
    /* there are at most len + 2 characters once "<" and ">" are added, and each start character
     * gives at most min(maxn, len + 2) - max(minn, 1) + 1 n-grams */
    size_t chars = len + 2;
    size_t hi = maxn < chars ? maxn : chars;
    size_t lo = minn > 1 ? minn : 1;
    if (lo > hi)
        return 0;
    return chars * (hi - lo + 1);
}

/* Byte i of "<" + word + ">". */
static inline uint8_t wrapped_byte(const uint8_t *word, size_t len, size_t i)
{
    return i == 0 ? (uint8_t)'<' : i == len + 1 ? (uint8_t)'>' : word[i - 1];
}

static inline int is_continuation(uint8_t b)
{
    return (b & 0xC0) == 0x80;
}

size_t embt__subword_buckets(uint32_t *out, size_t cap, const uint8_t *word, size_t len,
                             uint32_t minn, uint32_t maxn, uint32_t bucket)
{
    /* fastText skips the end-of-sentence token: Dictionary::initNgrams and getSubwords */
    if (len == 4 && word[0] == '<' && word[1] == '/' && word[2] == 's' && word[3] == '>')
        return 0;
    if (bucket == 0 || maxn == 0)
        return 0;
    size_t total = len + 2, count = 0;
    for (size_t i = 0; i < total; i++) {
        if (is_continuation(wrapped_byte(word, len, i)))
            continue;
        /* the n-gram grows one character at a time, so its hash can grow with it: FNV-1a over a
         * prefix is the state after that prefix */
        uint32_t h = FNV32_OFFSET;
        size_t j = i;
        for (uint32_t n = 1; j < total && n <= maxn; n++) {
            h = fnv_step(h, wrapped_byte(word, len, j++));
            while (j < total && is_continuation(wrapped_byte(word, len, j)))
                h = fnv_step(h, wrapped_byte(word, len, j++));
            if (n >= minn && !(n == 1 && (i == 0 || j == total))) {
                if (count < cap)
                    out[count] = h % bucket;
                count++;
            }
        }
    }
    return count;
}
