/* corpus.h: streaming a plain-text corpus word by word from any byte offset, and a growable
 * vocabulary of tokens with counts (hash index, min-count pruning, count ordering) built from it:
 * shared by skip-gram and the classifier. Never installed. */
#ifndef EMBT_CORPUS_H
#define EMBT_CORPUS_H

#include "internal.h"

/* Longest token kept, in bytes; longer tokens are skipped (read as EMBT__TOK_SKIP). */
#define EMBT__TOKEN_MAX 255

typedef enum embt__tok {
    EMBT__TOK_EOF = 0,  /* end of the file */
    EMBT__TOK_WORD = 1, /* a token (bytes other than space, \t, \n, \v, \f, \r) */
    EMBT__TOK_EOL = 2,  /* a newline: end of a line (sentence / example) */
    EMBT__TOK_SKIP = 3  /* a token too long or not valid UTF-8: count it as unknown */
} embt__tok;

typedef struct embt__reader {
    const char *path; /* as given to embt__reader_open (borrowed), for messages */
    int fd;
    uint8_t *buf; /* (cap) */
    size_t cap, len, pos;
    uint64_t offset; /* file offset of buf[pos]: where the next token starts reading */
    uint64_t size;   /* file size at open */
    char word[EMBT__TOKEN_MAX + 1];
    size_t word_len;
} embt__reader;

/* Opens `path` and positions at byte `offset`; when offset > 0 and the byte before it is not
 * white space, the rest of that token is skipped (a thread starting mid-file). Errors: EMBT_EIO,
 * EMBT_ENOMEM. */
embt_status embt__reader_open(embt__reader *r, const char *path, uint64_t offset);
void embt__reader_close(embt__reader *r);
/* Moves to `offset` as embt__reader_open() does. Errors: EMBT_EIO. */
embt_status embt__reader_seek(embt__reader *r, uint64_t offset);
/* The next token kind; for EMBT__TOK_WORD the bytes are r->word (NUL-terminated, r->word_len).
 * *st receives EMBT_EIO on a read error (returned as EMBT__TOK_EOF). */
embt__tok embt__reader_next(embt__reader *r, embt_status *st);

/* Tokens with counts, ids in insertion order until embt__vocab_finish() reorders them. */
typedef struct embt__vocab {
    char *arena; /* token bytes, each NUL-terminated */
    size_t arena_len, arena_cap;
    uint64_t *off;   /* (n) token i at arena + off[i] */
    uint32_t *len;   /* (n) */
    uint64_t *count; /* (n) */
    uint32_t n, cap;
    uint32_t *slots; /* open addressing, EMBT_NONE_ID empty; n_slots a power of two */
    size_t n_slots;
} embt__vocab;

void embt__vocab_init(embt__vocab *v);
void embt__vocab_release(embt__vocab *v);
/* Adds `count` to the token's count, inserting it with the next id when new. *id_out may be NULL.
 * Errors: EMBT_ENOMEM, EMBT_ELIMIT (2^32 - 1 tokens). */
embt_status embt__vocab_add(embt__vocab *v, const char *tok, size_t len, uint64_t count,
                            uint32_t *id_out);
/* Appends every token of `src` in its order (token i gets id d->n + i), with its count when
 * `with_counts` (else 0). A token that repeats an earlier one is EMBT_ECORRUPT: FORMAT.md forbids
 * it, but a file opened without verification can hold one, and merging it would shift every later
 * token off its table row. Errors: also the reader's (ECORRUPT, ENOTFOUND for missing counts),
 * EMBT_ENOMEM, EMBT_ELIMIT. */
embt_status embt__vocab_append_file(embt__vocab *d, const embt_vocab *src, bool with_counts);
/* The id of a token, EMBT_NONE_ID when absent. */
uint32_t embt__vocab_find(const embt__vocab *v, const char *tok, size_t len);
static inline const char *embt__vocab_token(const embt__vocab *v, uint32_t id)
{
    return v->arena + v->off[id];
}
/* Keeps ids [0, keep) in place; of the others, drops tokens whose count < min_count and orders
 * the rest by decreasing count, ties by id (first seen first). Rebuilds the index.
 * Errors: EMBT_ENOMEM. */
embt_status embt__vocab_finish(embt__vocab *v, uint32_t keep, uint64_t min_count);

#endif
