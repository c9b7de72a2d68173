/* internal.h: helpers shared inside lib/ (and by the tests): allocation, the error record, checked
 * arithmetic, little-endian codecs, checksums and the token hash. Never installed. */
#ifndef EMBT_INTERNAL_H
#define EMBT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "embt/embt.h"
#include "format.h"

/* ---- allocation (alloc.c): every allocation of the library goes through these ---- */
void *embt__malloc(size_t size);
void *embt__calloc(size_t n, size_t size);
void *embt__realloc(void *ptr, size_t size);
void embt__free(void *ptr);
char *embt__strndup(const char *s, size_t n);
/* zlib's zalloc and zfree (alloc_func, free_func) through the hooks above, so that tests can fail
 * a stream's allocations too; set them in every z_stream before inflateInit/deflateInit. */
void *embt__zalloc(void *opaque, unsigned items, unsigned size);
void embt__zfree(void *opaque, void *ptr);

/* ---- open options (file.c) ---- */
/* EMBT_OPEN_VERIFY: for inputs whose every byte is used anyway (convert, init --like, training
 * state), so that a damaged or invalid file is refused instead of being re-encoded into a fresh,
 * valid-looking one. */
extern const embt_open_options embt__open_verified;

/* ---- errors (error.c) ---- */
/* Sets the calling thread's record and returns `code`. `section` may be NULL. `rule` is the
 * spec/FORMAT.md 7 rule number or 0. printf-style message. */
embt_status embt__error(embt_status code, uint64_t offset, const char *section, uint32_t rule,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* EMBT_EIO with errno captured by the caller. */
embt_status embt__error_sys(int sys_errno, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* EMBT_EPARSE with a 1-based line and column. */
embt_status embt__error_parse(uint32_t line, uint32_t column, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* EMBT_ENOMEM without allocating. */
embt_status embt__error_nomem(void);
/* Fills in the section of the current record if it has none (outer layers add context). */
void embt__error_set_section(const char *section);
/* Writable access for the few places that adjust a record (e.g. to add a line number). */
embt_error *embt__error_record(void);

/* Caller bugs: an assert in debug builds, EMBT_EINVAL in release builds. */
#ifdef NDEBUG
#define EMBT_CHECK_ARG(x)                                                                          \
    do {                                                                                           \
        if (!(x))                                                                                  \
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "invalid argument: %s", #x);  \
    } while (0)
#else
#include <assert.h>
#define EMBT_CHECK_ARG(x)                                                                          \
    do {                                                                                           \
        assert(x);                                                                                 \
        if (!(x))                                                                                  \
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "invalid argument: %s", #x);  \
    } while (0)
#endif

/* A loop the fuzzers learn nothing from (filling a 10^7-slot table): left out of their coverage
 * instrumentation, whose per-iteration comparison hooks would take most of a run. Clang only. */
#if defined(__clang__)
#define EMBT_NO_COVERAGE __attribute__((noinline, no_sanitize("coverage")))
#else
#define EMBT_NO_COVERAGE
#endif

/* ---- checked arithmetic: false on overflow ---- */
static inline bool embt__add_u64(uint64_t *out, uint64_t a, uint64_t b)
{
    return !__builtin_add_overflow(a, b, out);
}
static inline bool embt__mul_u64(uint64_t *out, uint64_t a, uint64_t b)
{
    return !__builtin_mul_overflow(a, b, out);
}
/* align_up(x, a) for a power of two a; false on overflow. */
static inline bool embt__align_up(uint64_t *out, uint64_t x, uint64_t a)
{
    uint64_t t;
    if (!embt__add_u64(&t, x, a - 1))
        return false;
    *out = t & ~(a - 1);
    return true;
}

/* Rows per conversion buffer: as many as fit in `budget` bytes, at least one, at most `rows`.
 * Importers size their buffers by the rows the input holds, never by a declared row length
 * alone: a header of 0 rows may declare any width, and then no buffer is needed (0). */
static inline size_t embt__batch_rows(uint64_t rows, uint64_t row_bytes, size_t budget)
{
    uint64_t n = row_bytes && row_bytes < budget ? budget / row_bytes : 1;
    return (size_t)(n < rows ? n : rows);
}

/* ---- little-endian codecs: assemble bytes, never cast file pointers ---- */
static inline uint16_t embt__le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t embt__le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t embt__le64(const uint8_t *p)
{
    return (uint64_t)embt__le32(p) | ((uint64_t)embt__le32(p + 4) << 32);
}
static inline void embt__put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void embt__put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void embt__put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- checksums and hashing ---- */
/* CRC-32 (zlib) of n bytes, any n (crc32_z); continue from `crc` (0 to start). */
uint32_t embt__crc32(uint32_t crc, const void *data, uint64_t n);

/* FNV-1a 64 of the token bytes (spec/FORMAT.md 4.2). */
static inline uint64_t embt__fnv1a64(const void *data, size_t n)
{
    const uint8_t *p = data;
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001B3ull;
    }
    return h;
}

/* ---- UTF-8 (util.c) ---- */
/* True when the n bytes are valid UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF) and
 * contain no NUL. On false, *bad_at (if not NULL) receives the offset of the first bad byte. */
bool embt__utf8_valid(const uint8_t *s, size_t n, size_t *bad_at);
/* Copies s (n bytes) to dst with each ill-formed sequence replaced by one U+FFFD, as Python's
 * bytes.decode('utf-8', errors='replace') does (gensim's unicode_errors='replace'): a lead byte and
 * the continuation bytes that could still complete it (its maximal subpart) become one U+FFFD, any
 * other bad byte one U+FFFD each; a NUL, which a token cannot hold, becomes U+FFFD too. dst holds
 * 3 * n bytes. Returns the new length. */
size_t embt__utf8_repair(uint8_t *dst, const uint8_t *s, size_t n);

/* ---- shuffle filter (spec/FORMAT.md 6), block by block ---- */
/* dst and src are n bytes (n a multiple of e, n <= EMBT__SHUFFLE_BLOCK); they must not overlap. */
void embt__shuffle_block(uint8_t *dst, const uint8_t *src, size_t n, size_t e);
void embt__unshuffle_block(uint8_t *dst, const uint8_t *src, size_t n, size_t e);

/* ---- dtype conversion (dtype.c) ---- */
/* Converts n elements of `src` (dtype, little-endian as stored) to float32; `scale` multiplies I8
 * values (ignored otherwise). */
void embt__to_f32(float *dst, const void *src, embt_dtype dtype, size_t n, float scale);
/* n consecutive binary16 rows of `cols` values (stride row_bytes, 2-byte aligned) to float32 (n, cols),
 * with F16C when the CPU has it and `generic` is false; both paths give the bits of embt__to_f32
 * (gather.c). */
void embt__f16_block_to_f32(float *dst, const uint8_t *src, size_t row_bytes, size_t cols, size_t n,
                            bool generic);

/* d rounded to float with round-to-odd: rounded once more to a format at least 2 bits narrower
 * (f16, bf16), the result is the correctly rounded value of d (Boldo & Melquiond 2008). */
float embt__f64_to_f32_odd(double d);

/* Element size of the SHUFFLE filter for a section of `type` (0 when the filter is not allowed). */
size_t embt__shuffle_elem_size(uint16_t type, uint32_t dtype);

/* ---- numbers in metadata (meta.c): the training state that skipgram.c and classify_state.c keep
 * in their output and read back when resuming ---- */
/* Sets `key` to v: in decimal (u64), or with %.17g so that it reads back to the same double (f64).
 * Errors: embt_meta_set()'s. */
embt_status embt__meta_set_u64(embt_meta *meta, const char *key, uint64_t v);
embt_status embt__meta_set_f64(embt_meta *meta, const char *key, double v);
/* The value of `key` as a decimal integer (strtoull) or a number (strtod). With `strict`, a leading
 * '-' and an out-of-range integer are rejected too (without it they read as strtoull() reads them).
 * Errors: embt_meta_get()'s (EMBT_ENOTFOUND naming the key), EMBT_EINVAL "metadata <key>: not an
 * integer" / "not a number". */
embt_status embt__meta_get_u64(uint64_t *out, const embt_meta *meta, const char *key, bool strict);
embt_status embt__meta_get_f64(double *out, const embt_meta *meta, const char *key);

/* ---- reader internals shared with the writer (file.c) ---- */
/* The whole input as mapped or borrowed; used to copy stored section bytes verbatim. */
const uint8_t *embt__file_bytes(const embt_file *file, uint64_t *size_out);

/* ---- writer internals for streaming importers (writer.c) ---- */
/* ---- whole tables as float32 (table.c): the trainers and optimisers reading their state ---- */
/* EMBT_OK when t is (rows, cols) (a rank-1 table counts as (rows, 1)), else EMBT_EINVAL
 * "table NAME is R x C, expected rows x cols". Check before allocating by rows and cols. */
embt_status embt__table_check_shape(const embt_table *t, uint64_t rows, uint64_t cols);
/* Reads the whole of t, which must be (rows, cols), into dst (rows * cols floats). */
embt_status embt__table_read_f32(float *dst, const embt_table *t, uint64_t rows, uint64_t cols);

/* Sets the row count of the open rank-2 table to `rows` (at least the rows appended so far), for an
 * importer that learns the count as it goes: begin the table with 0 rows and raise the count before
 * each append. Errors: EMBT_EINVAL, EMBT_ELIMIT (beyond FORMAT.md 10), EMBT_ENOMEM. */
embt_status embt__writer_table_set_rows(embt_writer *writer, uint64_t rows);
/* embt_writer_table_append_f32 for a caller that computed `crc`, the CRC-32 (from 0) of the n_rows
 * rows' bytes: when the table is stored as plain f32 the writer combines it instead of reading the
 * rows again. Same errors. */
embt_status embt__writer_table_append_f32_crc(embt_writer *writer, const float *rows, size_t n_rows,
                                              uint32_t crc);

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "embt maps little-endian table data directly and needs a little-endian host"
#endif

#endif
