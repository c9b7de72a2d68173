/* embt/file.h: opening, inspecting and verifying .embt files.
 *
 * Thread safety: once embt_file_open() returns, an embt_file and every embt_vocab and embt_table
 * borrowed from it are immutable. Any number of threads may call the read functions of this header,
 * vocab.h and table.h on them at once without locks. embt_file_close() must not race with them. */
#ifndef EMBT_FILE_H
#define EMBT_FILE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct embt_file embt_file;
typedef struct embt_vocab embt_vocab;
typedef struct embt_table embt_table;

/* Flags for embt_open_options.flags. */
#define EMBT_OPEN_NO_MMAP 0x1u /* read the file into memory instead of mapping it */
#define EMBT_OPEN_VERIFY 0x2u  /* run embt_file_verify() before returning */

typedef struct embt_open_options {
    unsigned version;           /* EMBT_OPEN_OPTIONS_VERSION */
    unsigned flags;             /* EMBT_OPEN_* */
    uint64_t max_inflate_bytes; /* cap on all compressed sections decoded at open; 0: 16 GiB */
} embt_open_options;
#define EMBT_OPEN_OPTIONS_VERSION 1
/* clang-format off */
#define EMBT_OPEN_OPTIONS_INIT { EMBT_OPEN_OPTIONS_VERSION, 0, 0 }
/* clang-format on */

/* Opens the file at `path`: open, fstat, a read-only shared mmap, then the checks spec/FORMAT.md 7.1 to
 * 7.4 call "at open" (header, directory, every entry: O(number of sections), independent of vocabulary
 * and table sizes). Compressed sections are inflated here and their CRC checked. Uncompressed payloads
 * are not read: their checksums are checked by embt_file_verify().
 * `opts` may be NULL for defaults. On success *out owns the handle (free with embt_file_close()).
 * Errors: EMBT_EIO (open/stat/mmap/read failed, or not a regular file), EMBT_EFORMAT, EMBT_EVERSION,
 * EMBT_ECORRUPT, EMBT_ELIMIT, EMBT_ENOMEM, EMBT_EINVAL. On failure *out is NULL.
 * Truncating the file while it is mapped makes later reads fault (SIGBUS): this cannot be guarded. */
EMBT_API embt_status embt_file_open(embt_file **out, const char *path,
                                    const embt_open_options *opts);

/* As embt_file_open() on `size` bytes at `data`, which are borrowed: they must stay valid and unchanged
 * until embt_file_close(). EMBT_OPEN_NO_MMAP is ignored. */
EMBT_API embt_status embt_file_open_memory(embt_file **out, const void *data, size_t size,
                                           const embt_open_options *opts);

/* Unmaps and frees everything; every pointer borrowed from the file becomes invalid. NULL is fine. */
EMBT_API void embt_file_close(embt_file *file);

/* Applies every content rule of spec/FORMAT.md 7.5: every section checksum, token offsets, UTF-8,
 * duplicate tokens, the hash index, scales, metadata YAML, zero padding. Reads the whole file.
 * Returns EMBT_OK or EMBT_ECORRUPT (with offset, section and rule in the error record), EMBT_ENOMEM.
 * Thread-safe. */
EMBT_API embt_status embt_file_verify(const embt_file *file);

/* The file's container version and size. */
EMBT_API void embt_file_version(const embt_file *file, unsigned *major_out, unsigned *minor_out);
EMBT_API uint64_t embt_file_size(const embt_file *file);
EMBT_API uint32_t embt_file_alignment(const embt_file *file);

/* Vocabularies and tables, in file order. Returned pointers are borrowed from the file. */
EMBT_API size_t embt_file_vocab_count(const embt_file *file);
EMBT_API const embt_vocab *embt_file_vocab_at(const embt_file *file, size_t index);
EMBT_API size_t embt_file_table_count(const embt_file *file);
EMBT_API const embt_table *embt_file_table_at(const embt_file *file, size_t index);

/* Finds a vocabulary or table by name (NUL-terminated). `name` NULL for a vocabulary means the first one.
 * Errors: EMBT_ENOTFOUND (*out set to NULL). */
EMBT_API embt_status embt_file_vocab(const embt_vocab **out, const embt_file *file,
                                     const char *name);
EMBT_API embt_status embt_file_table(const embt_table **out, const embt_file *file,
                                     const char *name);

/* The METADATA section's YAML text, borrowed (not NUL-terminated; *len_out bytes), or NULL with
 * *len_out = 0 when the file has none. The text is not validated before embt_file_verify(). */
EMBT_API const char *embt_file_metadata(const embt_file *file, size_t *len_out);

/* One entry of the section directory, as stored, for inspection tools. */
typedef struct embt_section_info {
    uint16_t type;   /* EMBT_SECTION_* or an unknown value */
    uint16_t flags;  /* bit 0: required */
    uint8_t codec;   /* 0 none, 1 deflate */
    uint8_t filter;  /* 0 none, 1 shuffle */
    uint64_t offset; /* absolute */
    uint64_t stored_length;
    uint64_t decoded_length;
    uint32_t crc32;
    uint32_t link;    /* entry index or EMBT_NONE_ID */
    const char *name; /* borrowed, not NUL-terminated */
    size_t name_length;
    const uint8_t *params; /* the entry's 48 type-specific bytes as stored, borrowed */
} embt_section_info;

#define EMBT_SECTION_VOCAB 1
#define EMBT_SECTION_VOCAB_INDEX 2
#define EMBT_SECTION_VOCAB_COUNTS 3
#define EMBT_SECTION_TABLE 4
#define EMBT_SECTION_ROW_SCALES 5
#define EMBT_SECTION_ROW_NORMS 6
#define EMBT_SECTION_METADATA 7

EMBT_API size_t embt_file_section_count(const embt_file *file);
/* Fills *out for entry `index`. Errors: EMBT_EINVAL when index is out of range. */
EMBT_API embt_status embt_file_section(embt_section_info *out, const embt_file *file, size_t index);
/* "VOCAB", "TABLE", ..., or "UNKNOWN". Static string. */
EMBT_API const char *embt_section_type_name(uint16_t type);

#ifdef __cplusplus
}
#endif
#endif
