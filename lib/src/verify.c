/* verify.c: the content rules 30 to 38 of spec/FORMAT.md, applied rule by rule (rule 30 for every
 * vocabulary, then rule 31, ...), so the first broken rule is the one reported. Reads the whole file
 * once per rule that needs it; the checksum pass dominates and runs at zlib's crc32 speed. */
#include <math.h>
#include <sys/mman.h>

#include "reader.h"

static uint64_t abs_or_none(const embt__entry *e, const uint8_t *p)
{
    if (e->codec != EMBT__CODEC_NONE)
        return EMBT_NO_OFFSET;
    return e->offset + (uint64_t)(p - e->data);
}

/* rule 30: every token's offsets (embt__vocab_token checks one token; here all, plus the end) */
static embt_status check_offsets(const embt_vocab *v)
{
    const embt__entry *e = &v->file->entries[v->entry];
    for (uint32_t id = 0; id < v->n_tokens; id++) {
        size_t len;
        if (!embt__vocab_token(v, id, &len))
            return EMBT_ECORRUPT;
    }
    const uint8_t *last = v->offsets + 8 * (uint64_t)v->n_tokens;
    if (embt__le64(last) != v->blob_length)
        return embt__error(EMBT_ECORRUPT, abs_or_none(e, last), e->label, 30,
                           "last offset %llu does not equal the blob length %llu",
                           (unsigned long long)embt__le64(last),
                           (unsigned long long)v->blob_length);
    return EMBT_OK;
}

/* rule 31 */
static embt_status check_utf8(const embt_vocab *v)
{
    const embt__entry *e = &v->file->entries[v->entry];
    for (uint32_t id = 0; id < v->n_tokens; id++) {
        size_t len, bad;
        const uint8_t *t = embt__vocab_token(v, id, &len);
        if (!embt__utf8_valid(t, len, &bad))
            return embt__error(EMBT_ECORRUPT, abs_or_none(e, t + bad), e->label, 31,
                               "token %u is not valid utf-8 (or has a nul) at its byte %zu", id,
                               bad);
    }
    return EMBT_OK;
}

/* Rule 32 through the stored index: probes compare bytes, so a token found at another id repeats
 * that token. *missing receives the first id the index does not find (EMBT_NONE_ID if none), which
 * breaks rule 33 and is reported after rule 32 has been checked for every vocabulary. */
static embt_status probe_all(const embt_vocab *v, uint32_t *missing)
{
    const embt__entry *e = &v->file->entries[v->entry];
    *missing = EMBT_NONE_ID;
    if (v->index_entry == SIZE_MAX)
        return EMBT_OK; /* open built the index, which already rejected repeats */
    for (uint32_t id = 0; id < v->n_tokens; id++) {
        size_t len;
        const uint8_t *t = embt__vocab_token(v, id, &len);
        uint32_t found;
        /* a slot naming a bad id is a rule 33 matter: count the token as missing */
        if (embt__vocab_probe(&found, v, t, len) != EMBT_OK)
            found = EMBT_NONE_ID;
        if (found == id)
            continue;
        if (found != EMBT_NONE_ID)
            return embt__error(EMBT_ECORRUPT, abs_or_none(e, t), e->label, 32,
                               "token %u repeats token %u", id, found);
        if (*missing == EMBT_NONE_ID)
            *missing = id;
    }
    return EMBT_OK;
}

/* Rule 32 without the stored index, for one that breaks rule 33 (and so might hide a repeat): a
 * private index built from the tokens finds every repeat. */
static embt_status check_duplicates_privately(const embt_vocab *v)
{
    embt_vocab copy = *v;
    copy.slots = NULL;
    copy.built_slots = NULL;
    copy.index_entry = SIZE_MAX;
    embt_status rc = embt__vocab_build_index(&copy);
    embt__free(copy.built_slots);
    return rc;
}

/* rule 33: slot contents, plus the first token probe_all could not find */
static embt_status index_error(const embt_vocab *v, uint32_t missing)
{
    const embt__entry *ie = &v->file->entries[v->index_entry];
    uint64_t seen_slots = 0;
    for (uint64_t i = 0; i < v->n_slots; i++) {
        const uint8_t *slot = v->slots + EMBT__SLOT_SIZE * i;
        uint32_t id = embt__le32(slot), tag = embt__le32(slot + 4);
        if (id == EMBT__NONE) {
            if (tag != 0)
                return embt__error(EMBT_ECORRUPT, abs_or_none(ie, slot + 4), ie->label, 33,
                                   "empty slot %llu has tag 0x%08x", (unsigned long long)i, tag);
            continue;
        }
        if (id >= v->n_tokens)
            return embt__error(EMBT_ECORRUPT, abs_or_none(ie, slot), ie->label, 33,
                               "slot %llu names token %u of %u", (unsigned long long)i, id,
                               v->n_tokens);
        size_t len;
        const uint8_t *t = embt__vocab_token(v, id, &len);
        if ((uint32_t)(embt__fnv1a64(t, len) >> 32) != tag)
            return embt__error(EMBT_ECORRUPT, abs_or_none(ie, slot + 4), ie->label, 33,
                               "slot %llu has the wrong tag for token %u", (unsigned long long)i,
                               id);
        seen_slots++;
    }
    /* every token is found at its own slot and there are as many filled slots as tokens, so every
     * id occurs exactly once */
    if (seen_slots != v->n_tokens)
        return embt__error(EMBT_ECORRUPT, ie->offset, ie->label, 33,
                           "index holds %llu ids for %u tokens", (unsigned long long)seen_slots,
                           v->n_tokens);
    if (missing != EMBT_NONE_ID)
        return embt__error(EMBT_ECORRUPT, ie->offset, ie->label, 33, "index does not find token %u",
                           missing);
    return EMBT_OK;
}

static embt_status check_index(const embt_vocab *v, uint32_t missing)
{
    if (v->index_entry == SIZE_MAX)
        return EMBT_OK;
    embt_status rc = index_error(v, missing);
    if (rc != EMBT_ECORRUPT)
        return rc;
    /* rule 32 comes first: a broken index must not hide a repeated token */
    embt_error broken = *embt_error_last();
    embt_status dup = check_duplicates_privately(v);
    if (dup)
        return dup;
    *embt__error_record() = broken;
    return rc;
}

/* rule 34: checksums of the sections that are mapped (compressed ones were checked at open) */
static embt_status check_crcs(const embt_file *f)
{
    for (size_t i = 0; i < f->n_entries; i++) {
        const embt__entry *e = &f->entries[i];
        if (e->codec != EMBT__CODEC_NONE)
            continue;
        const uint8_t *p = f->bytes + e->offset;
        if (f->map && e->stored_length >= (1u << 20)) {
            /* the kernel reads ahead far more aggressively once told the pass is sequential */
            uintptr_t start = (uintptr_t)p & ~(uintptr_t)4095;
            posix_madvise((void *)start, (size_t)(e->stored_length + ((uintptr_t)p - start)),
                          POSIX_MADV_SEQUENTIAL | POSIX_MADV_WILLNEED);
        }
        uint32_t crc = embt__crc32(0, p, e->stored_length);
        if (crc != e->crc32)
            return embt__error(EMBT_ECORRUPT, e->offset, e->label, 34,
                               "section crc32 0x%08x does not match computed 0x%08x", e->crc32,
                               crc);
    }
    return EMBT_OK;
}

/* rule 36 */
static embt_status check_scales(const embt_file *f)
{
    for (size_t k = 0; k < f->n_tables; k++) {
        const embt_table *t = &f->tables[k];
        if (!t->scales)
            continue;
        const embt__entry *e = &f->entries[t->scales_entry];
        uint64_t n = t->rank == 1 ? 1 : t->rows;
        for (uint64_t r = 0; r < n; r++)
            if (!isfinite(t->scales[r]))
                return embt__error(EMBT_ECORRUPT, abs_or_none(e, e->data + 4 * r), e->label, 36,
                                   "scale of row %llu is not finite", (unsigned long long)r);
    }
    return EMBT_OK;
}

/* rule 37 */
static embt_status check_metadata(const embt_file *f)
{
    if (f->metadata_entry == SIZE_MAX)
        return EMBT_OK;
    const embt__entry *e = &f->entries[f->metadata_entry];
    size_t bad;
    if (!embt__utf8_valid(e->data, (size_t)e->decoded_length, &bad))
        return embt__error(EMBT_ECORRUPT, abs_or_none(e, e->data + bad), e->label, 37,
                           "metadata is not valid utf-8 (or has a nul) at its byte %zu", bad);
    embt_meta *meta = NULL;
    embt_status rc = embt_meta_parse(&meta, (const char *)e->data, (size_t)e->decoded_length);
    embt_meta_free(meta);
    if (rc == EMBT_ENOMEM)
        return rc;
    if (rc) {
        /* copy first: the new record is formatted into the same thread-local storage */
        embt_error yaml = *embt_error_last();
        embt__error(EMBT_ECORRUPT, e->codec == EMBT__CODEC_NONE ? e->offset : EMBT_NO_OFFSET,
                    e->label, 37, "metadata yaml: %s", yaml.message);
        embt__error_record()->line = yaml.line;
        embt__error_record()->column = yaml.column;
        return EMBT_ECORRUPT;
    }
    return EMBT_OK;
}

/* rule 38 */
static embt_status check_padding(const embt_file *f)
{
    uint64_t pos = f->header_size;
    for (size_t i = 0; i <= f->n_entries; i++) {
        uint64_t next = i < f->n_entries ? f->entries[i].offset : f->directory_offset;
        for (uint64_t p = pos; p < next; p++)
            if (f->bytes[p])
                return embt__error(EMBT_ECORRUPT, p,
                                   i < f->n_entries ? f->entries[i].label : "directory", 38,
                                   "padding byte before this section is 0x%02x", f->bytes[p]);
        if (i < f->n_entries)
            pos = f->entries[i].offset + f->entries[i].stored_length;
    }
    return EMBT_OK;
}

embt_status embt_file_verify(const embt_file *file)
{
    EMBT_CHECK_ARG(file);
    embt_status rc;
    for (size_t k = 0; k < file->n_vocabs; k++)
        if ((rc = check_offsets(&file->vocabs[k])))
            return rc;
    for (size_t k = 0; k < file->n_vocabs; k++)
        if ((rc = check_utf8(&file->vocabs[k])))
            return rc;
    /* one probe result per vocabulary carries rule 33's finding past the rule 32 pass */
    uint32_t *missing = embt__calloc(file->n_vocabs ? file->n_vocabs : 1, sizeof *missing);
    if (!missing)
        return embt__error_nomem();
    for (size_t k = 0; k < file->n_vocabs; k++)
        if ((rc = probe_all(&file->vocabs[k], &missing[k])))
            goto done;
    for (size_t k = 0; k < file->n_vocabs; k++)
        if ((rc = check_index(&file->vocabs[k], missing[k])))
            goto done;
    rc = EMBT_OK;
done:
    embt__free(missing);
    if (rc)
        return rc;
    if ((rc = check_crcs(file)) || (rc = check_scales(file)) || (rc = check_metadata(file)) ||
        (rc = check_padding(file)))
        return rc;
    embt_error_clear();
    return EMBT_OK;
}
