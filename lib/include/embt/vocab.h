/* embt/vocab.h: token <-> id on a vocabulary borrowed from an open file.
 * Thread safety: all functions are read-only and may be called from any number of threads. */
#ifndef EMBT_VOCAB_H
#define EMBT_VOCAB_H

#include "file.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The vocabulary's name (borrowed, NUL-terminated, valid until the file is closed). */
EMBT_API const char *embt_vocab_name(const embt_vocab *vocab);

/* Number of tokens. Ids are [0, size). */
EMBT_API uint32_t embt_vocab_size(const embt_vocab *vocab);

/* Finds the id of `token` (`len` bytes, need not be NUL-terminated) through the file's on-disk hash
 * index: O(1) expected, touching a few pages. A vocabulary stored without a VOCAB_INDEX (other writers
 * may omit it; embt never does) gets an in-memory index built by embt_file_open(), at O(n) open cost.
 * Errors: EMBT_ENOTFOUND (an expected outcome; the error record is not touched), EMBT_ECORRUPT (an
 * offset read on the way is out of bounds). */
EMBT_API embt_status embt_vocab_find(uint32_t *out, const embt_vocab *vocab, const char *token,
                                     size_t len);

/* The bytes of token `id` (not NUL-terminated; *len_out bytes), borrowed from the file: O(1).
 * Returns NULL when id is out of range or the token's offsets are corrupt (error record set). */
EMBT_API const char *embt_vocab_token(const embt_vocab *vocab, uint32_t id, size_t *len_out);

/* Per-token counts: EMBT_ENOTFOUND when the vocabulary has none, EMBT_EINVAL for a bad id. */
EMBT_API int embt_vocab_has_counts(const embt_vocab *vocab);
EMBT_API embt_status embt_vocab_count(uint64_t *out, const embt_vocab *vocab, uint32_t id);

/* Special token ids, EMBT_NONE_ID when absent. */
EMBT_API uint32_t embt_vocab_unk_id(const embt_vocab *vocab);
EMBT_API uint32_t embt_vocab_pad_id(const embt_vocab *vocab);
EMBT_API uint32_t embt_vocab_bos_id(const embt_vocab *vocab);
EMBT_API uint32_t embt_vocab_eos_id(const embt_vocab *vocab);

#ifdef __cplusplus
}
#endif
#endif
