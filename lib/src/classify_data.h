/* classify_data.h: reading labelled text lines for the classifier (classify.c): the line reader,
 * fastText's tokens and hashes, and the features of one line (word ids, `</s>`, hashed word
 * n-grams). The counting vocabularies are corpus.h's. Never installed. */
#ifndef EMBT_CLASSIFY_DATA_H
#define EMBT_CLASSIFY_DATA_H
#include <stdbool.h>
#include <stdio.h>

#include "internal.h"

#define CLS_MAX_LINE ((size_t)1 << 20) /* bytes per line, newline excluded */
#define CLS_EOS "</s>"

/* A growable array of uint32 (embt__realloc). */
typedef struct cls_vec {
    uint32_t *v;
    size_t n, cap;
} cls_vec;
embt_status cls__vec_push(cls_vec *vec, uint32_t x);
void cls__vec_free(cls_vec *vec);

/* Lines of a stream, LF-terminated (a CR before the LF stays: it is whitespace). */
typedef struct cls_reader {
    FILE *f;
    char *buf;        /* CLS_MAX_LINE + 1 bytes */
    uint64_t line_no; /* 1-based number of the line last returned */
} cls_reader;
embt_status cls__reader_init(cls_reader *r, FILE *f);
void cls__reader_free(cls_reader *r);
/* Next line into *line (borrowed until the next call), `len` bytes, checked to be UTF-8 without NUL.
 * *got is false at the end. Errors: EMBT_EPARSE (line, column), EMBT_ELIMIT (too long), EMBT_EIO. */
embt_status cls__reader_next(cls_reader *r, const char **line, size_t *len, bool *got);

/* fastText's Dictionary::hash: FNV-1a 32 over the bytes as signed chars. */
uint32_t cls__hash(const char *s, size_t n);
/* The next whitespace-separated token of s[*pos .. n): false when none is left. */
bool cls__next_token(const char *s, size_t n, size_t *pos, size_t *start, size_t *len);

/* Looks a token up: its id or EMBT_NONE_ID. */
typedef uint32_t (*cls_lookup_fn)(const void *ctx, const char *s, size_t n);

typedef struct cls_featurizer {
    const char *prefix; /* label prefix */
    size_t prefix_len;
    cls_lookup_fn word, label;
    const void *word_ctx, *label_ctx;
    uint32_t nwords;
    uint32_t word_ngrams;
    uint64_t bucket;
    cls_vec hashes; /* scratch */
} cls_featurizer;

/* The features and labels of one line, as fastText's Dictionary::getLine (supervised): feat receives
 * the known word ids, `</s>`'s id, then the n-gram rows (nwords + bucket index); labels the known
 * label ids; *ntokens every token plus `</s>`; *n_words the word tokens (known or not), `</s>`
 * excluded. Both vectors are cleared first. Errors: EMBT_ENOMEM. */
embt_status cls__features(cls_featurizer *fz, const char *s, size_t n, cls_vec *feat,
                          cls_vec *labels, uint64_t *ntokens, uint64_t *n_words);

#endif
