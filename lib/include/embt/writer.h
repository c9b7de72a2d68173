/* embt/writer.h: the streaming, atomic, deterministic writer of .embt files.
 *
 * Sections are written to a temporary file next to the destination in the order of the calls; table
 * rows and tokens stream to disk as they are appended, so a table is never held whole in memory (the
 * vocabulary's tokens are kept until embt_writer_vocab_end(), to build the hash index). The directory
 * and header are written by embt_writer_commit(), which then fsyncs the file, renames it over the
 * destination and fsyncs the directory: the destination is either the old file or the complete new one.
 * The same calls with the same data always give the same bytes.
 *
 * Thread safety: a writer belongs to one thread at a time. */
#ifndef EMBT_WRITER_H
#define EMBT_WRITER_H

#include "file.h"
#include "table.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct embt_writer embt_writer;

typedef struct embt_writer_options {
    unsigned version;   /* EMBT_WRITER_OPTIONS_VERSION */
    uint32_t alignment; /* section alignment: a power of two in [64, 65536]; 0: 64 */
    int compress_level; /* zlib level 1..9 used by sections flagged for compression; 0: 1 */
} embt_writer_options;
#define EMBT_WRITER_OPTIONS_VERSION 1
/* clang-format off */
#define EMBT_WRITER_OPTIONS_INIT { EMBT_WRITER_OPTIONS_VERSION, 0, 0 }
/* clang-format on */

/* Creates the temporary file `<path>.tmp.<pid>.<n>` in the destination's directory (O_EXCL, mode 0666
 * less umask). Nothing is written to `path` before embt_writer_commit(). `opts` may be NULL.
 * Errors: EMBT_EIO, EMBT_EINVAL, EMBT_ENOMEM. On failure *out is NULL. */
EMBT_API embt_status embt_writer_open(embt_writer **out, const char *path,
                                      const embt_writer_options *opts);

/* Aborts an uncommitted writer (removing its temporary file) and frees it. NULL is fine. */
EMBT_API void embt_writer_free(embt_writer *writer);

/* ---- vocabularies ------------------------------------------------------------------------------- */

#define EMBT_VOCAB_COUNTS 0x1u   /* store the counts given to embt_writer_vocab_add() */
#define EMBT_VOCAB_COMPRESS 0x2u /* deflate the token bytes, index and counts */

typedef struct embt_vocab_spec {
    unsigned version; /* EMBT_VOCAB_SPEC_VERSION */
    const char
        *name; /* non-empty, at most 256 bytes of UTF-8, unique among the file's vocabularies */
    unsigned flags; /* EMBT_VOCAB_* */
} embt_vocab_spec;
#define EMBT_VOCAB_SPEC_VERSION 1
/* clang-format off */
#define EMBT_VOCAB_SPEC_INIT { EMBT_VOCAB_SPEC_VERSION, "words", 0 }
/* clang-format on */

/* Starts a vocabulary. Only one vocabulary or table is open at a time.
 * Errors: EMBT_EINVAL (bad name or flags, another section open), EMBT_EEXISTS (name taken). */
EMBT_API embt_status embt_writer_vocab_begin(embt_writer *writer, const embt_vocab_spec *spec);

/* Appends token `len` bytes at `token`, which gets the next id; `count` is stored when the vocabulary
 * was begun with EMBT_VOCAB_COUNTS and ignored otherwise. The token must be 1 to 65,535 bytes of valid
 * UTF-8 without NUL. Errors: EMBT_EINVAL (bad token; nothing added), EMBT_EEXISTS (duplicate: nothing is
 * added and *existing_id_out, if not NULL, receives the id of the earlier token), EMBT_ELIMIT, EMBT_EIO. */
EMBT_API embt_status embt_writer_vocab_add(embt_writer *writer, const char *token, size_t len,
                                           uint64_t count, uint32_t *existing_id_out);

/* Sets the special ids of the open vocabulary (EMBT_NONE_ID for none). Checked at vocab_end: each must
 * be below the final size (EMBT_EINVAL). */
EMBT_API embt_status embt_writer_vocab_specials(embt_writer *writer, uint32_t unk_id,
                                                uint32_t pad_id, uint32_t bos_id, uint32_t eos_id);

/* Ends the vocabulary: writes VOCAB, VOCAB_INDEX and (if asked) VOCAB_COUNTS.
 * Errors: EMBT_EINVAL (no vocabulary open, bad special id), EMBT_EIO, EMBT_ENOMEM. */
EMBT_API embt_status embt_writer_vocab_end(embt_writer *writer);

/* ---- tables ------------------------------------------------------------------------------------- */

#define EMBT_TABLE_NORMS 0x1u    /* also store each row's L2 norm (ROW_NORMS) */
#define EMBT_TABLE_COMPRESS 0x2u /* deflate with the shuffle filter */

typedef struct embt_table_spec {
    unsigned version; /* EMBT_TABLE_SPEC_VERSION */
    const char *name; /* non-empty, at most 256 bytes of UTF-8, unique among the file's tables */
    embt_dtype dtype; /* how the rows are stored */
    unsigned rank;    /* 2 for a matrix, 1 for a vector (rows = length, cols = 1) */
    uint64_t rows;    /* exact number of rows that will be appended */
    uint64_t cols;    /* elements per row; 1 for rank 1 */
    const char
        *vocab;     /* name of a vocabulary of this writer (tied: rows must equal its size, checked
                         * at commit) or NULL for a stand-alone table */
    unsigned flags; /* EMBT_TABLE_* */
} embt_table_spec;
#define EMBT_TABLE_SPEC_VERSION 1
/* clang-format off */
#define EMBT_TABLE_SPEC_INIT { EMBT_TABLE_SPEC_VERSION, NULL, EMBT_DTYPE_F32, 2, 0, 0, NULL, 0 }
/* clang-format on */

/* Starts a table. Errors: EMBT_EINVAL (bad name, dtype, rank, shape, flags, another section open),
 * EMBT_EEXISTS (name taken), EMBT_ELIMIT (shape beyond the limits of spec/FORMAT.md 10). */
EMBT_API embt_status embt_writer_table_begin(embt_writer *writer, const embt_table_spec *spec);

/* Appends n_rows rows given as float32 ((n_rows, cols), row-major), converted to the table's dtype:
 * F16/BF16 round to nearest even, F64 is exact, I8 stores q = round(x / s) with s = max|x| / 127 per
 * row (s = 0 rows store zeros), integer dtypes round to nearest and saturate. Non-finite values are
 * stored as given for float dtypes and are EMBT_EINVAL for I8 and integers.
 * Errors: EMBT_EINVAL (no table open, more rows than declared), EMBT_EIO, EMBT_ENOMEM. */
EMBT_API embt_status embt_writer_table_append_f32(embt_writer *writer, const float *rows,
                                                  size_t n_rows);

/* Appends n_rows rows already in the table's dtype, little-endian, exactly as they will be stored.
 * For I8, `scales` gives the n_rows row scales (finite); a rank-1 I8 vector has one scale, passed as
 * scales[0] on every call. `scales` is ignored for other dtypes.
 * Errors: as embt_writer_table_append_f32(). */
EMBT_API embt_status embt_writer_table_append_raw(embt_writer *writer, const void *rows,
                                                  size_t n_rows, const float *scales);

/* Ends the table. Errors: EMBT_EINVAL (fewer rows appended than declared), EMBT_EIO. */
EMBT_API embt_status embt_writer_table_end(embt_writer *writer);

/* begin + append_f32 (all rows) + end. */
EMBT_API embt_status embt_writer_add_table_f32(embt_writer *writer, const embt_table_spec *spec,
                                               const float *data);

/* ---- metadata and copies ------------------------------------------------------------------------ */

/* Sets the METADATA section (written at commit): `len` bytes of YAML whose root is a mapping (or
 * empty), checked by embt_meta_parse() (unique keys, no anchors or aliases: spec rule 37).
 * Errors: EMBT_EPARSE (not such a document; line/column set), EMBT_ELIMIT (over 16 MiB or nested
 * deeper than 64), EMBT_EEXISTS (metadata was already copied by embt_writer_copy_sections()). */
EMBT_API embt_status embt_writer_set_metadata(embt_writer *writer, const char *yaml, size_t len);

#define EMBT_COPY_SKIP_METADATA 0x1u

/* Copies every section of `src` as stored (same codec, bytes and checksum; links renumbered), except
 * METADATA when EMBT_COPY_SKIP_METADATA is given. Unknown optional sections are kept. Must be called
 * before any other section is written. Each section's CRC is recomputed while copying.
 * Errors: EMBT_EINVAL, EMBT_EEXISTS, EMBT_EIO, EMBT_ENOMEM, EMBT_ECORRUPT (a checksum mismatch). */
EMBT_API embt_status embt_writer_copy_sections(embt_writer *writer, const embt_file *src,
                                               unsigned flags);

/* Writes the directory and header, fsyncs, renames the temporary file over the destination and fsyncs
 * the directory. After it (success or failure) only embt_writer_free() may be called.
 * Errors: EMBT_EINVAL (a section still open, a tied table whose rows differ from its vocabulary's size,
 * an unknown vocabulary name), EMBT_ELIMIT (directory over 16 MiB), EMBT_ENOMEM, EMBT_EIO. Every
 * error before the rename leaves the destination untouched; the only error after it is a failed fsync
 * of the directory (EMBT_EIO), when the new file is in place but its durability is not assured. */
EMBT_API embt_status embt_writer_commit(embt_writer *writer);

#ifdef __cplusplus
}
#endif
#endif
