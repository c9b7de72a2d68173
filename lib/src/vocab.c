/* vocab.c: token <-> id on the mapped vocabulary. Every access re-checks the few offsets it reads
 * (spec/FORMAT.md rule 30 for that token), so lookups are safe before embt_file_verify(). */
#include "reader.h"

static uint64_t abs_offset_of(const embt_vocab *v, const uint8_t *p)
{
    const embt__entry *e = &v->file->entries[v->entry];
    /* compressed sections have no file position for their decoded bytes */
    if (e->codec != EMBT__CODEC_NONE)
        return EMBT_NO_OFFSET;
    return e->offset + (uint64_t)(p - e->data);
}

const uint8_t *embt__vocab_token(const embt_vocab *v, uint32_t id, size_t *len_out)
{
    const uint8_t *o = v->offsets + 8 * (uint64_t)id;
    uint64_t start = embt__le64(o), end = embt__le64(o + 8);
    if (start > end || end > v->blob_length || end - start > EMBT__TOKEN_LEN_MAX || end == start ||
        (id == 0 && start != 0)) {
        embt__error(EMBT_ECORRUPT, abs_offset_of(v, o), v->file->entries[v->entry].label, 30,
                    "token %u has bad offsets [%llu, %llu) in a %llu-byte blob", id,
                    (unsigned long long)start, (unsigned long long)end,
                    (unsigned long long)v->blob_length);
        return NULL;
    }
    *len_out = (size_t)(end - start);
    return v->blob + start;
}

embt_status embt__vocab_probe(uint32_t *out, const embt_vocab *v, const uint8_t *token, size_t len)
{
    uint64_t h = embt__fnv1a64(token, len);
    uint32_t tag = (uint32_t)(h >> 32);
    uint64_t mask = v->n_slots - 1;
    uint64_t i = h & mask;
    *out = EMBT_NONE_ID;
    /* n_slots > n_tokens (rule 25), so an empty slot ends every probe; the bound guards the rest */
    for (uint64_t step = 0; step < v->n_slots; step++, i = (i + 1) & mask) {
        const uint8_t *slot = v->slots + EMBT__SLOT_SIZE * i;
        uint32_t id = embt__le32(slot);
        if (id == EMBT__NONE)
            return EMBT_OK;
        if (embt__le32(slot + 4) != tag)
            continue;
        if (id >= v->n_tokens) {
            const embt__entry *ie = &v->file->entries[v->index_entry];
            return embt__error(EMBT_ECORRUPT,
                               ie->codec == EMBT__CODEC_NONE ? ie->offset + EMBT__SLOT_SIZE * i
                                                             : EMBT_NO_OFFSET,
                               ie->label, 33, "index slot %llu names token %u of %u",
                               (unsigned long long)i, id, v->n_tokens);
        }
        size_t tlen;
        const uint8_t *t = embt__vocab_token(v, id, &tlen);
        if (!t)
            return EMBT_ECORRUPT;
        if (tlen == len && memcmp(t, token, len) == 0) {
            *out = id;
            return EMBT_OK;
        }
    }
    return EMBT_OK;
}

embt_status embt__vocab_build_index(embt_vocab *v)
{
    uint64_t slots = 16;
    while (slots <= v->n_tokens || slots * 3 < (uint64_t)v->n_tokens * 4)
        slots <<= 1;
    if (slots > SIZE_MAX / EMBT__SLOT_SIZE)
        return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, v->name, 0, "vocabulary too large");
    v->built_slots = embt__malloc((size_t)(slots * EMBT__SLOT_SIZE));
    if (!v->built_slots)
        return embt__error_nomem();
    memset(v->built_slots, 0xFF, (size_t)(slots * EMBT__SLOT_SIZE));
    v->slots = v->built_slots;
    v->n_slots = slots;
    for (uint32_t id = 0; id < v->n_tokens; id++) {
        size_t len;
        const uint8_t *t = embt__vocab_token(v, id, &len);
        if (!t)
            return EMBT_ECORRUPT;
        uint64_t h = embt__fnv1a64(t, len);
        uint64_t i = h & (slots - 1);
        for (;; i = (i + 1) & (slots - 1)) {
            uint8_t *slot = v->built_slots + EMBT__SLOT_SIZE * i;
            uint32_t other = embt__le32(slot);
            if (other == EMBT__NONE) {
                embt__put32(slot, id);
                embt__put32(slot + 4, (uint32_t)(h >> 32));
                break;
            }
            size_t olen = 0;
            const uint8_t *o = embt__vocab_token(v, other, &olen);
            if (o && olen == len && memcmp(o, t, len) == 0)
                return embt__error(EMBT_ECORRUPT, abs_offset_of(v, t),
                                   v->file->entries[v->entry].label, 32,
                                   "token %u repeats token %u", id, other);
        }
    }
    return EMBT_OK;
}

const char *embt_vocab_name(const embt_vocab *vocab)
{
    return vocab->name;
}

uint32_t embt_vocab_size(const embt_vocab *vocab)
{
    return vocab->n_tokens;
}

embt_status embt_vocab_find(uint32_t *out, const embt_vocab *vocab, const char *token, size_t len)
{
    EMBT_CHECK_ARG(out && vocab && (token || len == 0));
    uint32_t id;
    embt_status rc = embt__vocab_probe(&id, vocab, (const uint8_t *)token, len);
    if (rc)
        return rc;
    *out = id;
    return id == EMBT_NONE_ID ? EMBT_ENOTFOUND : EMBT_OK;
}

const char *embt_vocab_token(const embt_vocab *vocab, uint32_t id, size_t *len_out)
{
    size_t len = 0;
    if (id >= vocab->n_tokens) {
        embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "token id %u out of range (size %u)", id,
                    vocab->n_tokens);
        return NULL;
    }
    const uint8_t *t = embt__vocab_token(vocab, id, &len);
    if (len_out)
        *len_out = t ? len : 0;
    return (const char *)t;
}

int embt_vocab_has_counts(const embt_vocab *vocab)
{
    return vocab->counts != NULL;
}

embt_status embt_vocab_count(uint64_t *out, const embt_vocab *vocab, uint32_t id)
{
    EMBT_CHECK_ARG(out && vocab);
    if (!vocab->counts)
        return embt__error(EMBT_ENOTFOUND, EMBT_NO_OFFSET, NULL, 0, "vocabulary '%s' has no counts",
                           vocab->name);
    if (id >= vocab->n_tokens)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "token id %u out of range (size %u)", id, vocab->n_tokens);
    *out = embt__le64(vocab->counts + 8 * (uint64_t)id);
    return EMBT_OK;
}

uint32_t embt_vocab_unk_id(const embt_vocab *vocab)
{
    return vocab->special[0];
}

uint32_t embt_vocab_pad_id(const embt_vocab *vocab)
{
    return vocab->special[1];
}

uint32_t embt_vocab_bos_id(const embt_vocab *vocab)
{
    return vocab->special[2];
}

uint32_t embt_vocab_eos_id(const embt_vocab *vocab)
{
    return vocab->special[3];
}
