/* embt/meta.h: the METADATA section's YAML document, parsed and edited with libyaml.
 * Keys are addressed by dotted paths ("training.lr") through nested mappings; values are scalars
 * kept as text (no tag resolution, nothing executed).
 * Thread safety: an embt_meta belongs to one thread at a time. */
#ifndef EMBT_META_H
#define EMBT_META_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct embt_meta embt_meta;

/* An empty document. Errors: EMBT_ENOMEM. */
EMBT_API embt_status embt_meta_new(embt_meta **out);

/* Parses `len` bytes of YAML: one document whose root is a mapping, or nothing. Keys must be scalars
 * and unique within their mapping; anchors and aliases are refused (they allow exponential expansion).
 * Errors: EMBT_EPARSE (line and column of the error record set, 1-based), EMBT_ELIMIT (over 16 MiB,
 * or nested deeper than 64 levels), EMBT_ENOMEM. On failure *out is NULL. */
EMBT_API embt_status embt_meta_parse(embt_meta **out, const char *yaml, size_t len);

EMBT_API void embt_meta_free(embt_meta *meta);

/* Looks up a dotted key path; on success *value_out points at the scalar's text (NUL-terminated,
 * *len_out bytes), borrowed until the next change to `meta` or its free.
 * Errors: EMBT_ENOTFOUND (record set, naming the key), EMBT_EINVAL (the path names a mapping or
 * sequence, or is empty). */
EMBT_API embt_status embt_meta_get(const char **value_out, size_t *len_out, const embt_meta *meta,
                                   const char *key_path);

/* Sets a dotted key path to a scalar, creating intermediate mappings; an existing key keeps its place.
 * Errors: EMBT_EINVAL (empty path or segment, or a segment that is a scalar or sequence), EMBT_ENOMEM. */
EMBT_API embt_status embt_meta_set(embt_meta *meta, const char *key_path, const char *value);

/* Serialises the document as block-style YAML (deterministic: keys in document order). The text is
 * owned by `meta` and valid until its next change or free. An empty document gives "" (length 0).
 * Errors: EMBT_ENOMEM. */
EMBT_API embt_status embt_meta_emit(const char **text_out, size_t *len_out, embt_meta *meta);

#ifdef __cplusplus
}
#endif
#endif
