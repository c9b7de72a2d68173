/* embt/import.h: converting other embedding formats into .embt.
 * This release reads word2vec text (header line "rows dim") and GloVe text (no header), optionally
 * gzip-compressed; later releases add the binary formats and export (spec/CLI.md, `embt convert`).
 * Thread safety: each call is independent; calls on different paths may run in parallel. */
#ifndef EMBT_IMPORT_H
#define EMBT_IMPORT_H

#include "common.h"
#include "table.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum embt_format {
    EMBT_FORMAT_AUTO = 0, /* detect from the content */
    EMBT_FORMAT_EMBT = 1,
    EMBT_FORMAT_WORD2VEC = 2, /* text with a "rows dim" header line */
    EMBT_FORMAT_GLOVE = 3     /* text without a header */
} embt_format;

/* "embt", "word2vec", "glove"; NULL for others. Static string. */
EMBT_API const char *embt_format_name(embt_format format);
/* Errors: EMBT_EINVAL for an unknown name. */
EMBT_API embt_status embt_format_parse(embt_format *out, const char *name);

/* Progress: called with bytes done and total (total 0 when unknown); return non-zero to cancel
 * (the conversion then fails with EMBT_ECANCELED and leaves no output). */
typedef int (*embt_progress_fn)(uint64_t done, uint64_t total, void *payload);

#define EMBT_CONVERT_COMPRESS 0x1u        /* deflate+shuffle the output's sections */
#define EMBT_CONVERT_ALLOW_NONFINITE 0x2u /* accept nan/inf values instead of failing */

typedef struct embt_convert_options {
    unsigned version;       /* EMBT_CONVERT_OPTIONS_VERSION */
    embt_format from;       /* EMBT_FORMAT_AUTO to detect */
    embt_dtype dtype;       /* stored dtype of the output table; 0: f32 */
    uint64_t limit;         /* read at most this many rows; 0: all */
    unsigned flags;         /* EMBT_CONVERT_* */
    const char *table_name; /* NULL: "embedding" */
    const char *vocab_name; /* NULL: "words" */
    embt_progress_fn progress;
    void *payload;
} embt_convert_options;
#define EMBT_CONVERT_OPTIONS_VERSION 1
/* clang-format off */
#define EMBT_CONVERT_OPTIONS_INIT { EMBT_CONVERT_OPTIONS_VERSION, EMBT_FORMAT_AUTO, 0, 0, 0, NULL, NULL, NULL, NULL }
/* clang-format on */

/* Converts the vectors file at `in_path` into a new .embt at `out_path` (one vocabulary, one table
 * tied to it, metadata naming the source format). Strict: a ragged line, a value that is not a
 * number, NaN/infinity (unless allowed), a duplicate token, invalid UTF-8 or a header that disagrees
 * with the body is EMBT_EPARSE with line and column in the error record, and out_path is untouched.
 * Every float is the correctly rounded value of its decimal text (as strtof in the C locale).
 * Errors: EMBT_EPARSE, EMBT_EFORMAT (format not recognised), EMBT_EIO, EMBT_ENOMEM, EMBT_EINVAL,
 * EMBT_ECANCELED. */
EMBT_API embt_status embt_convert_file(const char *in_path, const char *out_path,
                                       const embt_convert_options *opts);

#ifdef __cplusplus
}
#endif
#endif
