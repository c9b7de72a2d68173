/* reader.h: the reader's in-memory model of an open file (file.c builds it; vocab.c, table.c and
 * verify.c read it). Everything here is immutable once embt_file_open() returns. Never installed. */
#ifndef EMBT_READER_H
#define EMBT_READER_H

#include "internal.h"

/* One directory entry, decoded and checked by the rules "at open" of spec/FORMAT.md 7. */
typedef struct embt__entry {
    uint16_t type;
    uint16_t flags;
    uint8_t codec;
    uint8_t filter;
    uint64_t offset; /* absolute offset of the stored bytes */
    uint64_t stored_length;
    uint64_t decoded_length;
    uint32_t crc32;
    uint32_t link;
    const char *name; /* in the name pool of the mapping */
    uint32_t name_length;
    const uint8_t *params; /* 48 bytes in the mapping */
    uint64_t entry_offset; /* absolute offset of the entry itself, for error messages */
    const uint8_t *data;   /* decoded bytes: the mapping, or `owned` for compressed sections */
    uint8_t *owned;        /* allocation holding an inflated section (data is aligned inside) */
    char label[64];        /* "table embedding", "entry 3": the error record's section */
} embt__entry;

struct embt_vocab {
    const embt_file *file;
    size_t entry; /* index into file->entries */
    char *name;   /* NUL-terminated copy */
    uint32_t n_tokens;
    uint64_t blob_length;
    const uint8_t *offsets; /* u64 LE offsets[n_tokens + 1] */
    const uint8_t *blob;
    uint32_t special[4];  /* unk, pad, bos, eos */
    const uint8_t *slots; /* index: n_slots x (u32 id, u32 tag), from the file or built */
    uint64_t n_slots;
    uint8_t *built_slots;  /* owned when the file has no VOCAB_INDEX */
    size_t index_entry;    /* entry of the VOCAB_INDEX, or SIZE_MAX when built */
    const uint8_t *counts; /* u64 LE counts[n_tokens] or NULL */
};

struct embt_table {
    const embt_file *file;
    size_t entry;
    char *name;
    embt_dtype dtype;
    unsigned rank;
    uint64_t rows;
    uint64_t cols;
    size_t row_bytes;
    const embt_vocab *vocab; /* tied vocabulary or NULL */
    const uint8_t *data;
    const float *scales; /* I8 only */
    const float *norms;  /* ROW_NORMS or NULL */
    size_t scales_entry; /* SIZE_MAX when none */
};

struct embt_file {
    const uint8_t *bytes; /* the whole file */
    uint64_t size;
    void *map;          /* mmap base, or NULL */
    uint8_t *read_copy; /* EMBT_OPEN_NO_MMAP buffer, or NULL */
    unsigned major, minor;
    uint32_t header_size;
    uint32_t alignment;
    uint64_t directory_offset;
    embt__entry *entries;
    size_t n_entries;
    embt_vocab *vocabs;
    size_t n_vocabs;
    embt_table *tables;
    size_t n_tables;
    size_t metadata_entry; /* SIZE_MAX when none */
};

/* Token `id` of `vocab` with rule 30 checked for that token. NULL on corruption (record set). */
const uint8_t *embt__vocab_token(const embt_vocab *vocab, uint32_t id, size_t *len_out);
/* Probes the index; *out = id or EMBT_NONE_ID. EMBT_ECORRUPT when a slot names a bad id. */
embt_status embt__vocab_probe(uint32_t *out, const embt_vocab *vocab, const uint8_t *token,
                              size_t len);
/* Builds an in-memory index for a vocabulary stored without one (rules 30, 32 checked). */
embt_status embt__vocab_build_index(embt_vocab *vocab);

#endif
