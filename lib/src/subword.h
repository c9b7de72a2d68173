/* subword.h: fastText's character n-grams of a word and their hash (Dictionary::computeSubwords and
 * Dictionary::hash of fastText 0.9.2), bit-exact, for the .bin importer and for vectors of words
 * outside the vocabulary. Never installed. */
#ifndef EMBT_SUBWORD_H
#define EMBT_SUBWORD_H

#include <stddef.h>
#include <stdint.h>

/* fastText's n-gram hash: FNV-1a 32 in which every byte is sign-extended to 32 bits before the xor
 * (fastText hashes `int8_t` chars; bytes >= 0x80 xor 0xFFFFFF80 | b). Known quirk, kept on purpose. */
uint32_t embt__subword_hash(const uint8_t *s, size_t n);

/* Upper bound of the n-grams of a word of `len` bytes for n in [minn, maxn]; 0 when maxn is 0. */
size_t embt__subword_max(size_t len, uint32_t minn, uint32_t maxn);

/* The hashed buckets of the character n-grams of "<" + word + ">" in fastText's order: for each
 * start character, n = 1 .. maxn characters (UTF-8 aware: a byte 10xxxxxx never starts or counts as
 * a character), keeping n >= minn and dropping n = 1 at either boundary; each gives
 * embt__subword_hash(ngram) % bucket. The word "</s>" has none. Writes at most `cap` buckets to out
 * and returns how many there are (which may exceed cap; embt__subword_max() bounds it). With
 * bucket 0 there are none (fastText would divide by zero; its loader never gets there). */
size_t embt__subword_buckets(uint32_t *out, size_t cap, const uint8_t *word, size_t len,
                             uint32_t minn, uint32_t maxn, uint32_t bucket);

#endif
