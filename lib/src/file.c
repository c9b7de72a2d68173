/* file.c: opening a file (open, fstat, mmap) and the pure parse of (bytes, size) that applies the
 * rules "at open" of spec/FORMAT.md 7.1 to 7.4, inflates compressed sections and builds the vocabulary
 * and table views. Invariant: after a successful parse every entry lies inside the file, every decoded
 * length matches its type's shape, and nothing reads outside the buffer. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "reader.h"
#include "sysio.h"

#define NO_INDEX SIZE_MAX

static embt_status corrupt(uint64_t offset, const char *section, uint32_t rule, const char *what,
                           uint64_t value)
{
    return embt__error(EMBT_ECORRUPT, offset, section, rule, "%s %llu", what,
                       (unsigned long long)value);
}

static bool is_pow2(uint64_t x)
{
    return x && !(x & (x - 1));
}

/* ---- 7.1 header ---------------------------------------------------------------------------- */

static embt_status parse_header(embt_file *f)
{
    const uint8_t *b = f->bytes;
    const uint64_t size = f->size;

    /* rule 1 */
    if (size < EMBT__HEADER_SIZE || memcmp(b, EMBT__MAGIC, EMBT__MAGIC_LEN) != 0)
        return embt__error(EMBT_EFORMAT, 0, "header", 1, "not an embt file (%s)",
                           size < EMBT__HEADER_SIZE ? "shorter than the 128-byte header"
                                                    : "bad magic");
    /* rule 2 */
    f->major = embt__le16(b + EMBT__H_MAJOR);
    f->minor = embt__le16(b + EMBT__H_MINOR);
    if (f->major != EMBT_FORMAT_VERSION_MAJOR)
        return embt__error(EMBT_EVERSION, EMBT__H_MAJOR, "header", 2,
                           "format version %u.%u is not supported (this library reads 1.x)",
                           f->major, f->minor);
    /* rule 3 */
    if (b[EMBT__H_ZERO] != 0)
        return corrupt(EMBT__H_ZERO, "header", 3, "byte 9 must be zero, found", b[EMBT__H_ZERO]);
    uint16_t bom = embt__le16(b + EMBT__H_BYTE_ORDER);
    if (bom != EMBT__BYTE_ORDER_MARK)
        return embt__error(EMBT_ECORRUPT, EMBT__H_BYTE_ORDER, "header", 3,
                           "byte order mark 0x%04x, only little-endian (ff fe) is defined", bom);
    /* rule 4: the CRC continues past byte 128 only for a header_size that is itself plausible */
    uint32_t header_size = embt__le32(b + EMBT__H_HEADER_SIZE);
    uint32_t crc = embt__crc32(0, b, EMBT__H_HEADER_CRC);
    if (header_size > EMBT__HEADER_SIZE && header_size <= EMBT__HEADER_SIZE_MAX &&
        header_size % 8 == 0 && header_size <= size)
        crc = embt__crc32(crc, b + EMBT__HEADER_SIZE, header_size - EMBT__HEADER_SIZE);
    uint32_t stored_crc = embt__le32(b + EMBT__H_HEADER_CRC);
    if (crc != stored_crc)
        return embt__error(EMBT_ECORRUPT, EMBT__H_HEADER_CRC, "header", 4,
                           "header crc32 0x%08x does not match computed 0x%08x", stored_crc, crc);
    /* rule 5 */
    if (header_size < EMBT__HEADER_SIZE || header_size > EMBT__HEADER_SIZE_MAX ||
        header_size % 8 != 0 || header_size > size)
        return corrupt(EMBT__H_HEADER_SIZE, "header", 5, "header size", header_size);
    f->header_size = header_size;
    /* rule 6 */
    uint32_t alignment = embt__le32(b + EMBT__H_ALIGNMENT);
    if (!is_pow2(alignment) || alignment < EMBT__ALIGN_MIN || alignment > EMBT__ALIGN_MAX)
        return corrupt(EMBT__H_ALIGNMENT, "header", 6,
                       "alignment must be a power of two in [64, 65536], found", alignment);
    f->alignment = alignment;
    /* rule 7 */
    uint64_t file_length = embt__le64(b + EMBT__H_FILE_LENGTH);
    if (file_length != size)
        return embt__error(EMBT_ECORRUPT, EMBT__H_FILE_LENGTH, "header", 7,
                           "file length field %llu but the file has %llu bytes",
                           (unsigned long long)file_length, (unsigned long long)size);
    /* rule 8 */
    uint32_t flags = embt__le32(b + EMBT__H_FLAGS);
    if (flags != 0)
        return embt__error(EMBT_ELIMIT, EMBT__H_FLAGS, "header", 8,
                           "file flags 0x%08x name features this reader does not have", flags);
    /* rule 9: reserved bytes, including any header bytes past 128 a 1.0 file cannot define */
    if (f->minor <= EMBT_FORMAT_VERSION_MINOR) {
        for (uint32_t i = EMBT__H_RESERVED; i < EMBT__H_RESERVED + EMBT__H_RESERVED_LEN; i++)
            if (b[i])
                return corrupt(i, "header", 9, "reserved header byte is not zero at offset", i);
        for (uint32_t i = EMBT__HEADER_SIZE; i < header_size; i++)
            if (b[i])
                return corrupt(i, "header", 9, "reserved header byte is not zero at offset", i);
    }
    f->directory_offset = embt__le64(b + EMBT__H_DIR_OFFSET);
    return EMBT_OK;
}

/* ---- 7.2 directory and 7.3 generic entry rules ------------------------------------------------ */

static embt_status parse_directory(embt_file *f, uint32_t *entry_size_out,
                                   uint32_t *names_length_out)
{
    const uint8_t *b = f->bytes;
    uint64_t dir_offset = f->directory_offset;
    uint64_t dir_length = embt__le64(b + EMBT__H_DIR_LENGTH);
    uint64_t dir_end;

    /* rule 10 */
    if (dir_offset % f->alignment != 0)
        return corrupt(EMBT__H_DIR_OFFSET, "header", 10,
                       "directory offset is not a multiple of the alignment:", dir_offset);
    if (dir_length < EMBT__DIR_HEAD || dir_length > EMBT__DIR_LENGTH_MAX)
        return corrupt(EMBT__H_DIR_LENGTH, "header", 10,
                       "directory length outside [16, 16 MiB]:", dir_length);
    if (!embt__add_u64(&dir_end, dir_offset, dir_length) || dir_end != f->size)
        return embt__error(EMBT_ECORRUPT, EMBT__H_DIR_OFFSET, "header", 10,
                           "directory at %llu + %llu does not end at the end of the file (%llu)",
                           (unsigned long long)dir_offset, (unsigned long long)dir_length,
                           (unsigned long long)f->size);
    /* rule 11 */
    const uint8_t *dir = b + dir_offset;
    uint32_t crc = embt__crc32(0, dir, dir_length);
    uint32_t stored_crc = embt__le32(b + EMBT__H_DIR_CRC);
    if (crc != stored_crc)
        return embt__error(EMBT_ECORRUPT, EMBT__H_DIR_CRC, "header", 11,
                           "directory crc32 0x%08x does not match computed 0x%08x", stored_crc,
                           crc);
    /* rule 12 */
    uint32_t count = embt__le32(dir);
    uint32_t entry_size = embt__le32(dir + 4);
    uint32_t names_length = embt__le32(dir + 8);
    if (count > EMBT__DIR_ENTRIES_MAX)
        return corrupt(dir_offset, "directory", 12, "entry count above 65536:", count);
    if (entry_size < EMBT__ENTRY_SIZE || entry_size > EMBT__ENTRY_SIZE_MAX || entry_size % 8 != 0)
        return corrupt(dir_offset + 4, "directory", 12, "entry size", entry_size);
    /* at most 65536 * 1024 + 2^32: no overflow in 64 bits */
    uint64_t expect = EMBT__DIR_HEAD + (uint64_t)count * entry_size + names_length;
    if (expect != dir_length)
        return embt__error(EMBT_ECORRUPT, dir_offset, "directory", 12,
                           "directory length %llu but its counts give %llu",
                           (unsigned long long)dir_length, (unsigned long long)expect);
    if (embt__le32(dir + 12) != 0)
        return corrupt(dir_offset + 12, "directory", 12, "reserved directory field is",
                       embt__le32(dir + 12));
    f->n_entries = count;
    *entry_size_out = entry_size;
    *names_length_out = names_length;
    return EMBT_OK;
}

static const char *type_label(uint16_t type)
{
    switch (type) {
    case EMBT_SECTION_VOCAB: return "vocab";
    case EMBT_SECTION_VOCAB_INDEX: return "vocab_index";
    case EMBT_SECTION_VOCAB_COUNTS: return "vocab_counts";
    case EMBT_SECTION_TABLE: return "table";
    case EMBT_SECTION_ROW_SCALES: return "row_scales";
    case EMBT_SECTION_ROW_NORMS: return "row_norms";
    case EMBT_SECTION_METADATA: return "metadata";
    }
    return NULL;
}

static embt_status parse_entries(embt_file *f, uint32_t entry_size, uint32_t names_length)
{
    const uint8_t *dir = f->bytes + f->directory_offset;
    const uint8_t *names = dir + EMBT__DIR_HEAD + (uint64_t)f->n_entries * entry_size;
    /* header_size <= 4096 and alignment <= 65536 (rules 5, 6): cannot overflow */
    uint64_t expect_offset = 0;
    embt__align_up(&expect_offset, f->header_size, f->alignment);

    f->entries = embt__calloc(f->n_entries ? f->n_entries : 1, sizeof *f->entries);
    if (!f->entries)
        return embt__error_nomem();

    for (size_t i = 0; i < f->n_entries; i++) {
        embt__entry *e = &f->entries[i];
        const uint8_t *p = dir + EMBT__DIR_HEAD + (uint64_t)i * entry_size;
        uint64_t at = f->directory_offset + EMBT__DIR_HEAD + (uint64_t)i * entry_size;
        char sec[32];
        snprintf(sec, sizeof sec, "entry %zu", i);
        e->entry_offset = at;
        e->type = embt__le16(p + EMBT__E_TYPE);
        e->flags = embt__le16(p + EMBT__E_FLAGS);
        e->codec = p[EMBT__E_CODEC];
        e->filter = p[EMBT__E_FILTER];
        e->offset = embt__le64(p + EMBT__E_OFFSET);
        e->stored_length = embt__le64(p + EMBT__E_STORED);
        e->decoded_length = embt__le64(p + EMBT__E_DECODED);
        e->crc32 = embt__le32(p + EMBT__E_CRC);
        e->link = embt__le32(p + EMBT__E_LINK);
        uint32_t name_offset = embt__le32(p + EMBT__E_NAME_OFFSET);
        e->name_length = embt__le32(p + EMBT__E_NAME_LENGTH);
        e->params = p + EMBT__E_PARAMS;
        snprintf(e->label, sizeof e->label, "%s", sec);

        /* rule 13 */
        if (e->flags & ~EMBT__ENTRY_REQUIRED)
            return corrupt(at + EMBT__E_FLAGS, sec, 13, "undefined entry flag bits", e->flags);
        if (embt__le16(p + EMBT__E_RESERVED) != 0)
            return corrupt(at + EMBT__E_RESERVED, sec, 13, "reserved entry field is",
                           embt__le16(p + EMBT__E_RESERVED));
        /* rule 14 */
        if (e->name_length > EMBT__NAME_MAX)
            return corrupt(at + EMBT__E_NAME_LENGTH, sec, 14,
                           "name longer than 256 bytes:", e->name_length);
        if ((uint64_t)name_offset + e->name_length > names_length)
            return corrupt(at + EMBT__E_NAME_OFFSET, sec, 14,
                           "name runs past the name pool at offset", name_offset);
        e->name = (const char *)names + name_offset;
        size_t bad;
        if (!embt__utf8_valid((const uint8_t *)e->name, e->name_length, &bad))
            return corrupt(f->directory_offset + (uint64_t)((const uint8_t *)e->name - dir) + bad,
                           sec, 14, "name is not valid utf-8 at name byte", bad);
        if (type_label(e->type) && e->name_length)
            snprintf(e->label, sizeof e->label, "%s %.*s", type_label(e->type),
                     (int)(e->name_length > 40 ? 40 : e->name_length), e->name);
        else if (type_label(e->type))
            snprintf(e->label, sizeof e->label, "%s (entry %zu)", type_label(e->type), i);
        /* rule 15: the layout is determined by the lengths, so every byte is accounted for */
        uint64_t end;
        if (e->offset != expect_offset)
            return embt__error(EMBT_ECORRUPT, at + EMBT__E_OFFSET, e->label, 15,
                               "section offset %llu, expected %llu (sections follow each other "
                               "at the alignment)",
                               (unsigned long long)e->offset, (unsigned long long)expect_offset);
        if (!embt__add_u64(&end, e->offset, e->stored_length) || end > f->directory_offset)
            return corrupt(at + EMBT__E_STORED, e->label, 15,
                           "section runs past the directory: stored length", e->stored_length);
        if (!embt__align_up(&expect_offset, end, f->alignment))
            return corrupt(at + EMBT__E_STORED, e->label, 15,
                           "stored length overflows:", e->stored_length);
        /* rule 16 */
        if (e->codec > EMBT__CODEC_DEFLATE)
            return embt__error(EMBT_ELIMIT, at + EMBT__E_CODEC, e->label, 16,
                               "codec %u is not supported", e->codec);
        if (e->filter > EMBT__FILTER_SHUFFLE)
            return embt__error(EMBT_ELIMIT, at + EMBT__E_FILTER, e->label, 16,
                               "filter %u is not supported", e->filter);
        /* rule 17 */
        if (e->filter == EMBT__FILTER_SHUFFLE && e->codec != EMBT__CODEC_DEFLATE)
            return corrupt(at + EMBT__E_FILTER, e->label, 17, "shuffle without deflate: codec",
                           e->codec);
        /* rule 18 */
        if (e->codec == EMBT__CODEC_NONE && e->decoded_length != e->stored_length)
            return corrupt(
                at + EMBT__E_DECODED, e->label, 18,
                "uncompressed section with a different decoded length:", e->decoded_length);
        if (e->codec == EMBT__CODEC_DEFLATE) {
            uint64_t cap;
            if (!embt__mul_u64(&cap, e->stored_length, EMBT__DEFLATE_RATIO) ||
                !embt__add_u64(&cap, cap, EMBT__DEFLATE_SLACK))
                cap = UINT64_MAX;
            if (e->decoded_length > cap)
                return corrupt(
                    at + EMBT__E_DECODED, e->label, 18,
                    "decoded length beyond what deflate can expand to:", e->decoded_length);
        }
        /* rule 19 */
        if (e->link != EMBT__NONE && (e->link >= f->n_entries || e->link == i))
            return corrupt(at + EMBT__E_LINK, e->label, 19, "link to entry", e->link);
        /* rule 20 */
        if (!type_label(e->type) && (e->flags & EMBT__ENTRY_REQUIRED))
            return embt__error(EMBT_ELIMIT, at + EMBT__E_TYPE, e->label, 20,
                               "required section type %u is not supported by this reader", e->type);
        e->data = f->bytes + e->offset;
    }
    uint64_t last_end = expect_offset;
    if (f->directory_offset != last_end)
        return embt__error(EMBT_ECORRUPT, EMBT__H_DIR_OFFSET, "header", 15,
                           "directory offset %llu, expected %llu after the last section",
                           (unsigned long long)f->directory_offset, (unsigned long long)last_end);
    return EMBT_OK;
}

/* ---- 7.4 per-type rules ---------------------------------------------------------------------- */

static bool required_for(uint16_t type)
{
    return type == EMBT_SECTION_VOCAB || type == EMBT_SECTION_TABLE ||
           type == EMBT_SECTION_ROW_SCALES;
}

static embt_status check_params_zero(const embt__entry *e, size_t used)
{
    for (size_t j = used; j < EMBT__E_PARAMS_LEN; j++)
        if (e->params[j])
            return corrupt(e->entry_offset + EMBT__E_PARAMS + j, e->label, 21,
                           "unused params byte is not zero at params offset", j);
    return EMBT_OK;
}

static embt_status expect_length(const embt__entry *e, uint32_t rule, uint64_t expected)
{
    if (e->decoded_length != expected)
        return embt__error(EMBT_ECORRUPT, e->entry_offset + EMBT__E_DECODED, e->label, rule,
                           "decoded length %llu, its shape requires %llu",
                           (unsigned long long)e->decoded_length, (unsigned long long)expected);
    return EMBT_OK;
}

static uint64_t table_rows_for_aux(const embt__entry *t)
{
    /* rule 28: rank 1 tables have one scale/norm */
    return embt__le32(t->params + EMBT__T_RANK) == 1 ? 1 : embt__le64(t->params + EMBT__T_ROWS);
}

static embt_status check_type(embt_file *f, size_t i)
{
    embt__entry *e = &f->entries[i];
    const uint64_t at = e->entry_offset;
    embt_status rc;

    if (!type_label(e->type))
        return EMBT_OK; /* unknown optional: skipped */
    /* rule 21 */
    if (((e->flags & EMBT__ENTRY_REQUIRED) != 0) != required_for(e->type))
        return corrupt(at + EMBT__E_FLAGS, e->label, 21,
                       "required flag does not match the type:", e->flags);
    bool named = e->type == EMBT_SECTION_VOCAB || e->type == EMBT_SECTION_TABLE;
    if (named != (e->name_length > 0))
        return corrupt(at + EMBT__E_NAME_LENGTH, e->label, 21,
                       named ? "vocabularies and tables need a name, length"
                             : "this section type has no name, length",
                       e->name_length);
    /* rule 22 */
    const embt__entry *target = e->link == EMBT__NONE ? NULL : &f->entries[e->link];
    bool link_ok;
    switch (e->type) {
    case EMBT_SECTION_VOCAB_INDEX:
    case EMBT_SECTION_VOCAB_COUNTS: link_ok = target && target->type == EMBT_SECTION_VOCAB; break;
    case EMBT_SECTION_ROW_SCALES:
        link_ok = target && target->type == EMBT_SECTION_TABLE &&
                  embt__le32(target->params + EMBT__T_DTYPE) == EMBT_DTYPE_I8;
        break;
    case EMBT_SECTION_ROW_NORMS: link_ok = target && target->type == EMBT_SECTION_TABLE; break;
    case EMBT_SECTION_TABLE: link_ok = !target || target->type == EMBT_SECTION_VOCAB; break;
    default: link_ok = !target;
    }
    if (!link_ok)
        return corrupt(at + EMBT__E_LINK, e->label, 22,
                       "link to an entry of the wrong type:", e->link);
    /* rule 23: uniqueness against earlier entries */
    for (size_t j = 0; j < i; j++) {
        const embt__entry *o = &f->entries[j];
        bool clash = false;
        if (o->type != e->type)
            continue;
        if (named)
            clash =
                o->name_length == e->name_length && memcmp(o->name, e->name, e->name_length) == 0;
        else if (e->type == EMBT_SECTION_METADATA)
            clash = true;
        else
            clash = o->link == e->link;
        if (clash)
            return embt__error(EMBT_ECORRUPT, at, e->label, 23,
                               "duplicate of entry %zu (same type and %s)", j,
                               named ? "name" : "owner");
    }

    switch (e->type) {
    case EMBT_SECTION_VOCAB: { /* rule 24 */
        if ((rc = check_params_zero(e, EMBT__V_USED)))
            return rc;
        uint64_t n = embt__le64(e->params + EMBT__V_N_TOKENS);
        uint64_t blob = embt__le64(e->params + EMBT__V_BLOB_LENGTH);
        uint64_t len;
        if (n > EMBT__TOKENS_MAX)
            return corrupt(at + EMBT__E_PARAMS + EMBT__V_N_TOKENS, e->label, 24,
                           "token count above 2^32 - 2:", n);
        if (!embt__mul_u64(&len, n + 1, 8) || !embt__add_u64(&len, len, blob))
            return corrupt(at + EMBT__E_PARAMS + EMBT__V_BLOB_LENGTH, e->label, 24,
                           "blob length overflows:", blob);
        if (e->decoded_length != len)
            return embt__error(EMBT_ECORRUPT, at + EMBT__E_DECODED, e->label, 24,
                               "decoded length %llu, %llu tokens and a %llu-byte blob need %llu",
                               (unsigned long long)e->decoded_length, (unsigned long long)n,
                               (unsigned long long)blob, (unsigned long long)len);
        for (int k = 0; k < 4; k++) {
            uint32_t id = embt__le32(e->params + EMBT__V_UNK + 4 * k);
            if (id != EMBT__NONE && id >= n)
                return corrupt(at + EMBT__E_PARAMS + EMBT__V_UNK + 4 * k, e->label, 24,
                               "special token id beyond the vocabulary:", id);
        }
        if (embt__le32(e->params + EMBT__V_FLAGS) != 0)
            return corrupt(at + EMBT__E_PARAMS + EMBT__V_FLAGS, e->label, 24,
                           "undefined vocabulary flags", embt__le32(e->params + EMBT__V_FLAGS));
        break;
    }
    case EMBT_SECTION_VOCAB_INDEX: { /* rule 25 */
        uint32_t hash = embt__le32(e->params + EMBT__I_HASH);
        if (hash != EMBT__HASH_FNV1A64)
            return embt__error(EMBT_ELIMIT, at + EMBT__E_PARAMS + EMBT__I_HASH, e->label, 25,
                               "hash function %u is not supported", hash);
        if ((rc = check_params_zero(e, EMBT__I_USED)))
            return rc;
        uint64_t slots = embt__le64(e->params + EMBT__I_N_SLOTS);
        uint64_t n = embt__le64(target->params + EMBT__V_N_TOKENS);
        uint64_t cap = n * 4 > 16 ? n * 4 : 16;
        if (!is_pow2(slots) || slots <= n || slots > cap)
            return corrupt(at + EMBT__E_PARAMS + EMBT__I_N_SLOTS, e->label, 25,
                           "slot count must be a power of two above the token count and at most "
                           "max(16, 4 * tokens):",
                           slots);
        if ((rc = expect_length(e, 25, slots * EMBT__SLOT_SIZE)))
            return rc;
        break;
    }
    case EMBT_SECTION_VOCAB_COUNTS: /* rule 26 */
        if ((rc = check_params_zero(e, 0)))
            return rc;
        if ((rc = expect_length(e, 26, embt__le64(target->params + EMBT__V_N_TOKENS) * 8)))
            return rc;
        break;
    case EMBT_SECTION_TABLE: { /* rule 27 */
        uint32_t dtype = embt__le32(e->params + EMBT__T_DTYPE);
        if (embt_dtype_size((embt_dtype)dtype) == 0)
            return embt__error(EMBT_ELIMIT, at + EMBT__E_PARAMS + EMBT__T_DTYPE, e->label, 27,
                               "dtype %u is not supported", dtype);
        if ((rc = check_params_zero(e, EMBT__T_USED)))
            return rc;
        uint32_t rank = embt__le32(e->params + EMBT__T_RANK);
        uint64_t rows = embt__le64(e->params + EMBT__T_ROWS);
        uint64_t cols = embt__le64(e->params + EMBT__T_COLS);
        uint64_t len;
        if (rank != 1 && rank != 2)
            return corrupt(at + EMBT__E_PARAMS + EMBT__T_RANK, e->label, 27, "rank", rank);
        if (rows > EMBT__ROWS_MAX)
            return corrupt(at + EMBT__E_PARAMS + EMBT__T_ROWS, e->label, 27,
                           "rows above 2^40:", rows);
        if ((rank == 2 && (cols < 1 || cols > EMBT__COLS_MAX)) || (rank == 1 && cols != 1))
            return corrupt(at + EMBT__E_PARAMS + EMBT__T_COLS, e->label, 27, "cols", cols);
        if (!embt__mul_u64(&len, rows, cols) ||
            !embt__mul_u64(&len, len, embt_dtype_size((embt_dtype)dtype)))
            return corrupt(at + EMBT__E_PARAMS + EMBT__T_ROWS, e->label, 27,
                           "table size overflows: rows", rows);
        if ((rc = expect_length(e, 27, len)))
            return rc;
        if (target && rows != embt__le64(target->params + EMBT__V_N_TOKENS))
            return embt__error(EMBT_ECORRUPT, at + EMBT__E_PARAMS + EMBT__T_ROWS, e->label, 27,
                               "tied table has %llu rows but its vocabulary %llu tokens",
                               (unsigned long long)rows,
                               (unsigned long long)embt__le64(target->params + EMBT__V_N_TOKENS));
        break;
    }
    case EMBT_SECTION_ROW_SCALES:
    case EMBT_SECTION_ROW_NORMS: /* rule 28 */
        if ((rc = check_params_zero(e, 0)))
            return rc;
        if ((rc = expect_length(e, 28, 4 * table_rows_for_aux(target))))
            return rc;
        break;
    case EMBT_SECTION_METADATA: /* rule 29 */
        if ((rc = check_params_zero(e, 0)))
            return rc;
        if (e->decoded_length > EMBT__METADATA_MAX)
            return corrupt(at + EMBT__E_DECODED, e->label, 29,
                           "metadata above 16 MiB:", e->decoded_length);
        break;
    }
    return EMBT_OK;
}

static embt_status check_types(embt_file *f)
{
    embt_status rc;
    for (size_t i = 0; i < f->n_entries; i++)
        if ((rc = check_type(f, i)))
            return rc;
    /* rule 23, the clause that needs every entry */
    for (size_t i = 0; i < f->n_entries; i++) {
        const embt__entry *t = &f->entries[i];
        if (t->type != EMBT_SECTION_TABLE || embt__le32(t->params + EMBT__T_DTYPE) != EMBT_DTYPE_I8)
            continue;
        bool found = false;
        for (size_t j = 0; j < f->n_entries && !found; j++)
            found = f->entries[j].type == EMBT_SECTION_ROW_SCALES && f->entries[j].link == i;
        if (!found)
            return embt__error(EMBT_ECORRUPT, t->entry_offset, t->label, 23,
                               "i8 table without a row_scales section");
    }
    return EMBT_OK;
}

/* ---- compressed sections: rules 34 and 35 at open ---------------------------------------------- */

static embt_status inflate_entry(embt__entry *e, uint64_t *budget)
{
    if (e->decoded_length > *budget)
        return embt__error(EMBT_ELIMIT, e->entry_offset + EMBT__E_DECODED, e->label, 0,
                           "compressed sections decode to more than the open limit allows "
                           "(%llu bytes left, this one needs %llu)",
                           (unsigned long long)*budget, (unsigned long long)e->decoded_length);
    if (e->decoded_length > SIZE_MAX - 64)
        return embt__error(EMBT_ELIMIT, e->entry_offset + EMBT__E_DECODED, e->label, 0,
                           "section too large for this machine");
    *budget -= e->decoded_length;
    /* rule 34 before inflating: zlib would cope, but the checksum names the damage precisely */
    uint32_t crc = embt__crc32(0, e->data, e->stored_length);
    if (crc != e->crc32)
        return embt__error(EMBT_ECORRUPT, e->offset, e->label, 34,
                           "section crc32 0x%08x does not match computed 0x%08x", e->crc32, crc);

    size_t elem = 1;
    if (e->filter == EMBT__FILTER_SHUFFLE)
        elem = embt__shuffle_elem_size(
            e->type, e->type == EMBT_SECTION_TABLE ? embt__le32(e->params + EMBT__T_DTYPE) : 0);
    if (elem == 0)
        return embt__error(EMBT_ECORRUPT, e->entry_offset + EMBT__E_FILTER, e->label, 35,
                           "this section type cannot be shuffled");

    /* 64-byte aligned payload inside the allocation; one spare block for unshuffling */
    size_t block = e->filter == EMBT__FILTER_SHUFFLE ? EMBT__SHUFFLE_BLOCK : 0;
    e->owned = embt__malloc((size_t)e->decoded_length + 64 + block);
    if (!e->owned)
        return embt__error_nomem();
    uint8_t *out = e->owned + (64 - ((uintptr_t)e->owned & 63));
    if (((uintptr_t)e->owned & 63) == 0)
        out = e->owned;

    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.zalloc = embt__zalloc;
    zs.zfree = embt__zfree;
    if (inflateInit(&zs) != Z_OK)
        return embt__error_nomem();
    const uint8_t *in = e->data;
    uint64_t in_left = e->stored_length, out_left = e->decoded_length;
    uint8_t *dst = out;
    int zr = Z_OK;
    while (zr == Z_OK) {
        uInt in_chunk = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
        uInt out_chunk = out_left > (1u << 30) ? (1u << 30) : (uInt)out_left;
        uint8_t dummy;
        zs.next_in = (Bytef *)(uintptr_t)in;
        zs.avail_in = in_chunk;
        /* one spare output byte reveals a stream longer than decoded_length */
        zs.next_out = out_chunk ? dst : &dummy;
        zs.avail_out = out_chunk ? out_chunk : 1;
        zr = inflate(&zs, Z_NO_FLUSH);
        uint64_t used_in = in_chunk - zs.avail_in;
        uint64_t made = (out_chunk ? out_chunk : 1) - zs.avail_out;
        in += used_in;
        in_left -= used_in;
        if (!out_chunk && made) {
            zr = Z_DATA_ERROR;
            break;
        }
        dst += made;
        out_left -= made;
        if (zr == Z_OK && used_in == 0 && made == 0)
            zr = Z_BUF_ERROR;
    }
    inflateEnd(&zs);
    if (zr == Z_MEM_ERROR) /* the window, when a section takes more than one call (> 1 GiB) */
        return embt__error_nomem();
    if (zr != Z_STREAM_END || out_left != 0 || in_left != 0)
        return embt__error(EMBT_ECORRUPT, e->offset + (e->stored_length - in_left), e->label, 35,
                           "deflate stream does not decode to exactly %llu bytes (%s)",
                           (unsigned long long)e->decoded_length,
                           zr == Z_STREAM_END ? (out_left ? "too short" : "trailing bytes")
                                              : "bad stream");
    if (e->filter == EMBT__FILTER_SHUFFLE) {
        uint8_t *tmp = out + e->decoded_length;
        for (uint64_t pos = 0; pos < e->decoded_length; pos += EMBT__SHUFFLE_BLOCK) {
            size_t n = e->decoded_length - pos < EMBT__SHUFFLE_BLOCK
                           ? (size_t)(e->decoded_length - pos)
                           : EMBT__SHUFFLE_BLOCK;
            if (n % elem)
                return embt__error(EMBT_ECORRUPT, e->entry_offset + EMBT__E_DECODED, e->label, 35,
                                   "shuffled length is not a multiple of the element size %zu",
                                   elem);
            memcpy(tmp, out + pos, n);
            embt__unshuffle_block(out + pos, tmp, n, elem);
        }
    }
    e->data = out;
    return EMBT_OK;
}

/* ---- views ------------------------------------------------------------------------------------- */

static embt_status build_views(embt_file *f)
{
    size_t nv = 0, nt = 0;
    f->metadata_entry = NO_INDEX;
    for (size_t i = 0; i < f->n_entries; i++) {
        nv += f->entries[i].type == EMBT_SECTION_VOCAB;
        nt += f->entries[i].type == EMBT_SECTION_TABLE;
        if (f->entries[i].type == EMBT_SECTION_METADATA)
            f->metadata_entry = i;
    }
    f->vocabs = embt__calloc(nv ? nv : 1, sizeof *f->vocabs);
    f->tables = embt__calloc(nt ? nt : 1, sizeof *f->tables);
    if (!f->vocabs || !f->tables)
        return embt__error_nomem();

    /* entry index -> vocab view, for linking tables */
    for (size_t i = 0; i < f->n_entries; i++) {
        embt__entry *e = &f->entries[i];
        if (e->type != EMBT_SECTION_VOCAB)
            continue;
        embt_vocab *v = &f->vocabs[f->n_vocabs++];
        v->file = f;
        v->entry = i;
        v->index_entry = NO_INDEX;
        v->name = embt__strndup(e->name, e->name_length);
        if (!v->name)
            return embt__error_nomem();
        v->n_tokens = (uint32_t)embt__le64(e->params + EMBT__V_N_TOKENS);
        v->blob_length = embt__le64(e->params + EMBT__V_BLOB_LENGTH);
        v->offsets = e->data;
        v->blob = e->data + 8 * ((uint64_t)v->n_tokens + 1);
        for (int k = 0; k < 4; k++)
            v->special[k] = embt__le32(e->params + EMBT__V_UNK + 4 * k);
    }
    for (size_t i = 0; i < f->n_entries; i++) {
        embt__entry *e = &f->entries[i];
        if (e->type != EMBT_SECTION_VOCAB_INDEX && e->type != EMBT_SECTION_VOCAB_COUNTS)
            continue;
        for (size_t k = 0; k < f->n_vocabs; k++) {
            embt_vocab *v = &f->vocabs[k];
            if (v->entry != e->link)
                continue;
            if (e->type == EMBT_SECTION_VOCAB_COUNTS) {
                v->counts = e->data;
            } else {
                v->slots = e->data;
                v->n_slots = embt__le64(e->params + EMBT__I_N_SLOTS);
                v->index_entry = i;
            }
        }
    }
    for (size_t i = 0; i < f->n_entries; i++) {
        embt__entry *e = &f->entries[i];
        if (e->type != EMBT_SECTION_TABLE)
            continue;
        embt_table *t = &f->tables[f->n_tables++];
        t->file = f;
        t->entry = i;
        t->scales_entry = NO_INDEX;
        t->name = embt__strndup(e->name, e->name_length);
        if (!t->name)
            return embt__error_nomem();
        t->dtype = (embt_dtype)embt__le32(e->params + EMBT__T_DTYPE);
        t->rank = embt__le32(e->params + EMBT__T_RANK);
        t->rows = embt__le64(e->params + EMBT__T_ROWS);
        t->cols = embt__le64(e->params + EMBT__T_COLS);
        /* cols <= 2^31 - 1 and size <= 8: fits size_t */
        t->row_bytes = (size_t)t->cols * embt_dtype_size(t->dtype);
        t->data = e->data;
        for (size_t k = 0; k < f->n_vocabs; k++)
            if (f->vocabs[k].entry == e->link)
                t->vocab = &f->vocabs[k];
    }
    for (size_t i = 0; i < f->n_entries; i++) {
        embt__entry *e = &f->entries[i];
        if (e->type != EMBT_SECTION_ROW_SCALES && e->type != EMBT_SECTION_ROW_NORMS)
            continue;
        for (size_t k = 0; k < f->n_tables; k++) {
            embt_table *t = &f->tables[k];
            if (t->entry != e->link)
                continue;
            /* sections start on 64-byte boundaries (or in our aligned inflate buffers) */
            if (e->type == EMBT_SECTION_ROW_SCALES) {
                t->scales = (const float *)(const void *)e->data;
                t->scales_entry = i;
            } else {
                t->norms = (const float *)(const void *)e->data;
            }
        }
    }
    /* vocabularies stored without an index get one now (O(n), documented in vocab.h) */
    for (size_t k = 0; k < f->n_vocabs; k++) {
        embt_status rc;
        if (!f->vocabs[k].slots && (rc = embt__vocab_build_index(&f->vocabs[k])))
            return rc;
    }
    return EMBT_OK;
}

/* ---- open / close ------------------------------------------------------------------------------ */

static embt_status parse(embt_file *f, const embt_open_options *opts)
{
    embt_status rc;
    uint32_t entry_size = 0, names_length = 0;
    if ((rc = parse_header(f)) || (rc = parse_directory(f, &entry_size, &names_length)) ||
        (rc = parse_entries(f, entry_size, names_length)) || (rc = check_types(f)))
        return rc;
    uint64_t budget = opts && opts->max_inflate_bytes ? opts->max_inflate_bytes : (16ull << 30);
    for (size_t i = 0; i < f->n_entries; i++)
        if (f->entries[i].codec == EMBT__CODEC_DEFLATE &&
            (rc = inflate_entry(&f->entries[i], &budget)))
            return rc;
    if ((rc = build_views(f)))
        return rc;
    if (opts && (opts->flags & EMBT_OPEN_VERIFY))
        return embt_file_verify(f);
    return EMBT_OK;
}

static embt_status check_options(const embt_open_options *opts)
{
    if (opts && opts->version != EMBT_OPEN_OPTIONS_VERSION)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "open options version %u, this library knows %u", opts->version,
                           EMBT_OPEN_OPTIONS_VERSION);
    if (opts && (opts->flags & ~(EMBT_OPEN_NO_MMAP | EMBT_OPEN_VERIFY)))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "unknown open flags 0x%x",
                           opts->flags);
    return EMBT_OK;
}

embt_status embt_file_open_memory(embt_file **out, const void *data, size_t size,
                                  const embt_open_options *opts)
{
    EMBT_CHECK_ARG(out);
    *out = NULL;
    EMBT_CHECK_ARG(data || size == 0);
    embt_status rc = check_options(opts);
    if (rc)
        return rc;
    /* f32/f64 rows and scales are used in place: they need their natural alignment */
    if ((uintptr_t)data % 8 != 0)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "in-memory files must be aligned to 8 bytes");
    embt_file *f = embt__calloc(1, sizeof *f);
    if (!f)
        return embt__error_nomem();
    f->bytes = data ? data : (const uint8_t *)"";
    f->size = size;
    if ((rc = parse(f, opts))) {
        embt_file_close(f);
        return rc;
    }
    *out = f;
    return EMBT_OK;
}

/* Reads the whole file into *out_alloc; *out is that buffer aligned to 64 bytes, so table data keeps
 * the alignment the format promises (a plain malloc gives only 16). */
static embt_status read_whole(uint8_t **out_alloc, const uint8_t **out, int fd, uint64_t size)
{
    if (size > SIZE_MAX - 64)
        return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0, "file too large to read");
    uint8_t *alloc = embt__malloc((size_t)size + 64);
    if (!alloc)
        return embt__error_nomem();
    uint8_t *buf = alloc + ((64 - ((uintptr_t)alloc & 63)) & 63);
    uint64_t done = 0;
    while (done < size) {
        size_t want = size - done > (1u << 30) ? (1u << 30) : (size_t)(size - done);
        ssize_t n = embt__read(fd, buf + done, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;
            embt__free(alloc);
            return embt__error_sys(err, "read failed at byte %llu of %llu",
                                   (unsigned long long)done, (unsigned long long)size);
        }
        done += (uint64_t)n;
    }
    *out_alloc = alloc;
    *out = buf;
    return EMBT_OK;
}

const embt_open_options embt__open_verified = {EMBT_OPEN_OPTIONS_VERSION, EMBT_OPEN_VERIFY, 0};

embt_status embt_file_open(embt_file **out, const char *path, const embt_open_options *opts)
{
    EMBT_CHECK_ARG(out);
    *out = NULL;
    EMBT_CHECK_ARG(path);
    embt_status rc = check_options(opts);
    if (rc)
        return rc;

    embt_file *f = NULL;
    struct stat st;
    /* O_NONBLOCK: a FIFO must not block the open before fstat refuses it (no effect on files) */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return embt__error_sys(errno, "cannot open: %s", strerror(errno));
    if (fstat(fd, &st) != 0) {
        rc = embt__error_sys(errno, "cannot stat: %s", strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = embt__error_sys(EINVAL, "not a regular file");
        goto done;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        rc = embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0, "file too large to map");
        goto done;
    }
    f = embt__calloc(1, sizeof *f);
    if (!f) {
        rc = embt__error_nomem();
        goto done;
    }
    f->size = (uint64_t)st.st_size;
    if (f->size == 0) {
        f->bytes = (const uint8_t *)"";
    } else if (opts && (opts->flags & EMBT_OPEN_NO_MMAP)) {
        if ((rc = read_whole(&f->read_copy, &f->bytes, fd, f->size)))
            goto done;
    } else {
        void *map = mmap(NULL, (size_t)f->size, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
            rc = embt__error_sys(errno, "cannot map: %s", strerror(errno));
            goto done;
        }
        f->map = map;
        f->bytes = map;
    }
    rc = parse(f, opts);
done:
    close(fd);
    if (rc) {
        embt_file_close(f);
        return rc;
    }
    *out = f;
    return EMBT_OK;
}

void embt_file_close(embt_file *file)
{
    if (!file)
        return;
    for (size_t i = 0; file->entries && i < file->n_entries; i++)
        embt__free(file->entries[i].owned);
    for (size_t i = 0; file->vocabs && i < file->n_vocabs; i++) {
        embt__free(file->vocabs[i].name);
        embt__free(file->vocabs[i].built_slots);
    }
    for (size_t i = 0; file->tables && i < file->n_tables; i++)
        embt__free(file->tables[i].name);
    embt__free(file->entries);
    embt__free(file->vocabs);
    embt__free(file->tables);
    if (file->map)
        munmap(file->map, (size_t)file->size);
    embt__free(file->read_copy);
    embt__free(file);
}

/* ---- accessors --------------------------------------------------------------------------------- */

const uint8_t *embt__file_bytes(const embt_file *file, uint64_t *size_out)
{
    *size_out = file->size;
    return file->bytes;
}

void embt_file_version(const embt_file *file, unsigned *major_out, unsigned *minor_out)
{
    if (major_out)
        *major_out = file->major;
    if (minor_out)
        *minor_out = file->minor;
}

uint64_t embt_file_size(const embt_file *file)
{
    return file->size;
}

uint32_t embt_file_alignment(const embt_file *file)
{
    return file->alignment;
}

size_t embt_file_vocab_count(const embt_file *file)
{
    return file->n_vocabs;
}

const embt_vocab *embt_file_vocab_at(const embt_file *file, size_t index)
{
    return index < file->n_vocabs ? &file->vocabs[index] : NULL;
}

size_t embt_file_table_count(const embt_file *file)
{
    return file->n_tables;
}

const embt_table *embt_file_table_at(const embt_file *file, size_t index)
{
    return index < file->n_tables ? &file->tables[index] : NULL;
}

embt_status embt_file_vocab(const embt_vocab **out, const embt_file *file, const char *name)
{
    EMBT_CHECK_ARG(out);
    *out = NULL;
    EMBT_CHECK_ARG(file);
    for (size_t i = 0; i < file->n_vocabs; i++) {
        if (!name || strcmp(file->vocabs[i].name, name) == 0) {
            *out = &file->vocabs[i];
            return EMBT_OK;
        }
    }
    if (!name)
        return embt__error(EMBT_ENOTFOUND, EMBT_NO_OFFSET, NULL, 0, "the file has no vocabulary");
    return embt__error(EMBT_ENOTFOUND, EMBT_NO_OFFSET, NULL, 0, "no vocabulary named '%s'", name);
}

embt_status embt_file_table(const embt_table **out, const embt_file *file, const char *name)
{
    EMBT_CHECK_ARG(out);
    *out = NULL;
    EMBT_CHECK_ARG(file && name);
    for (size_t i = 0; i < file->n_tables; i++) {
        if (strcmp(file->tables[i].name, name) == 0) {
            *out = &file->tables[i];
            return EMBT_OK;
        }
    }
    return embt__error(EMBT_ENOTFOUND, EMBT_NO_OFFSET, NULL, 0, "no table named '%s'", name);
}

const char *embt_file_metadata(const embt_file *file, size_t *len_out)
{
    if (file->metadata_entry == NO_INDEX) {
        if (len_out)
            *len_out = 0;
        return NULL;
    }
    const embt__entry *e = &file->entries[file->metadata_entry];
    if (len_out)
        *len_out = (size_t)e->decoded_length;
    return (const char *)e->data;
}

size_t embt_file_section_count(const embt_file *file)
{
    return file->n_entries;
}

embt_status embt_file_section(embt_section_info *out, const embt_file *file, size_t index)
{
    EMBT_CHECK_ARG(out && file);
    if (index >= file->n_entries)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "section %zu out of range (file has %zu)", index, file->n_entries);
    const embt__entry *e = &file->entries[index];
    out->type = e->type;
    out->flags = e->flags;
    out->codec = e->codec;
    out->filter = e->filter;
    out->offset = e->offset;
    out->stored_length = e->stored_length;
    out->decoded_length = e->decoded_length;
    out->crc32 = e->crc32;
    out->link = e->link;
    out->name = e->name;
    out->name_length = e->name_length;
    out->params = e->params;
    return EMBT_OK;
}

const char *embt_section_type_name(uint16_t type)
{
    switch (type) {
    case EMBT_SECTION_VOCAB: return "VOCAB";
    case EMBT_SECTION_VOCAB_INDEX: return "VOCAB_INDEX";
    case EMBT_SECTION_VOCAB_COUNTS: return "VOCAB_COUNTS";
    case EMBT_SECTION_TABLE: return "TABLE";
    case EMBT_SECTION_ROW_SCALES: return "ROW_SCALES";
    case EMBT_SECTION_ROW_NORMS: return "ROW_NORMS";
    case EMBT_SECTION_METADATA: return "METADATA";
    }
    return "UNKNOWN";
}
