/* embt/import.h: converting embedding formats to and from .embt (spec/CLI.md, `embt convert`).
 * Any input may be gzip-compressed (detected by its magic).
 * Thread safety: each call is independent; calls on different paths may run in parallel. */
#ifndef EMBT_IMPORT_H
#define EMBT_IMPORT_H

#include "common.h"
#include "table.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum embt_format {
    EMBT_FORMAT_AUTO = 0,         /* detect from the content (input) or the extension (output) */
    EMBT_FORMAT_EMBT = 1,         /* the container itself (re-encode: dtype, compression, subset) */
    EMBT_FORMAT_WORD2VEC = 2,     /* text with a "rows dim" header line (.txt, .vec) */
    EMBT_FORMAT_GLOVE = 3,        /* text without a header */
    EMBT_FORMAT_WORD2VEC_BIN = 4, /* "rows dim\n", then token, space, dim little-endian f32 */
    EMBT_FORMAT_FASTTEXT_BIN = 5, /* fastText .bin model (import only) */
    EMBT_FORMAT_NPY = 6,          /* NumPy .npy 1.0/2.0/3.0 */
    EMBT_FORMAT_NPZ = 7,          /* NumPy .npz (zip of .npy, stored or deflated, zip64) */
    EMBT_FORMAT_SAFETENSORS = 8   /* safetensors */
} embt_format;

/* "embt", "word2vec", "glove", "word2vec-bin", "fasttext-bin", "npy", "npz", "safetensors"; NULL
 * for others. Static string. */
EMBT_API const char *embt_format_name(embt_format format);
/* Errors: EMBT_EINVAL for an unknown name. */
EMBT_API embt_status embt_format_parse(embt_format *out, const char *name);

/* Progress: called with bytes done and total (total 0 when unknown); return non-zero to cancel
 * (the conversion then fails with EMBT_ECANCELED and leaves no output). */
typedef int (*embt_progress_fn)(uint64_t done, uint64_t total, void *payload);

#define EMBT_CONVERT_COMPRESS 0x1u        /* deflate+shuffle the output's sections */
#define EMBT_CONVERT_ALLOW_NONFINITE 0x2u /* accept nan/inf values instead of failing */

/* What to do with a token seen before (strict by default). */
typedef enum embt_on_duplicate {
    EMBT_DUPLICATE_ERROR = 0, /* fail with EMBT_EPARSE naming both places */
    EMBT_DUPLICATE_FIRST = 1, /* keep the first row, drop the later ones */
    EMBT_DUPLICATE_LAST = 2   /* keep the last row (at the first one's position) */
} embt_on_duplicate;

/* What to do with a token that is not valid UTF-8 (strict by default). */
typedef enum embt_on_bad_utf8 {
    EMBT_BAD_UTF8_ERROR = 0, /* fail with EMBT_EPARSE */
    EMBT_BAD_UTF8_REPLACE =
        1,                 /* replace each bad sequence with U+FFFD (then duplicates may arise) */
    EMBT_BAD_UTF8_SKIP = 2 /* drop the row */
} embt_on_bad_utf8;

/* Counts of every lenient choice made, filled in by embt_convert_file() when asked. */
typedef struct embt_convert_report {
    uint64_t rows;               /* rows written */
    uint64_t duplicates_dropped; /* rows dropped by EMBT_DUPLICATE_FIRST / _LAST */
    uint64_t utf8_replaced;      /* tokens repaired by EMBT_BAD_UTF8_REPLACE */
    uint64_t utf8_skipped;       /* rows dropped by EMBT_BAD_UTF8_SKIP */
    uint64_t nonfinite;          /* NaN/infinity values kept by EMBT_CONVERT_ALLOW_NONFINITE */
} embt_convert_report;

typedef struct embt_convert_options {
    unsigned version; /* EMBT_CONVERT_OPTIONS_VERSION */
    embt_format from; /* EMBT_FORMAT_AUTO to detect from the content */
    embt_dtype dtype; /* stored dtype of the output tables; 0: keep the input's (f32 for text) */
    uint64_t limit;   /* read at most this many rows; 0: all */
    unsigned flags;   /* EMBT_CONVERT_* */
    const char *table_name; /* import: name of the table tied to the vocabulary (NULL: "embedding";
                             * npz/safetensors: the input array to tie); export: the table to write */
    const char *vocab_name; /* NULL: "words" */
    embt_progress_fn progress;
    void *payload;
    embt_format to;                 /* EMBT_FORMAT_AUTO: from out_path's extension, else embt */
    embt_on_duplicate on_duplicate; /* default EMBT_DUPLICATE_ERROR */
    embt_on_bad_utf8 on_bad_utf8;   /* default EMBT_BAD_UTF8_ERROR */
    const char *vocab_path;      /* npy/npz/safetensors: one token per line (UTF-8, LF or CRLF) */
    embt_convert_report *report; /* filled in on success when not NULL */
} embt_convert_options;
#define EMBT_CONVERT_OPTIONS_VERSION 1
/* clang-format off */
#define EMBT_CONVERT_OPTIONS_INIT { EMBT_CONVERT_OPTIONS_VERSION, EMBT_FORMAT_AUTO, 0, 0, 0, NULL, NULL, NULL, NULL, EMBT_FORMAT_AUTO, EMBT_DUPLICATE_ERROR, EMBT_BAD_UTF8_ERROR, NULL, NULL }
/* clang-format on */

/* Converts the file at `in_path` (format opts->from, or detected) into `out_path` (format opts->to,
 * or from its extension: .embt, .txt/.vec (word2vec), .bin (word2vec-bin), .npy, .npz,
 * .safetensors; a trailing .gz is not written). Importing gives one vocabulary and the tables of the
 * input (the one tied to the vocabulary named opts->table_name), with metadata naming the source.
 * Strict by default: a ragged line, a value that is not a number, NaN/infinity (unless allowed), a
 * duplicate token, invalid UTF-8 or a header that disagrees with the body is EMBT_EPARSE with line
 * and column (text) or byte offset (binary) in the error record, and out_path is untouched (the
 * output appears atomically, as with the writer). Every float read from text is the correctly
 * rounded value of its decimal text (as strtof in the C locale); text is written so that it reads
 * back to the same float32.
 * Errors: EMBT_EPARSE, EMBT_EFORMAT (format not recognised), EMBT_EIO, EMBT_ENOMEM, EMBT_EINVAL,
 * EMBT_ECANCELED, EMBT_ELIMIT (beyond the limits of spec/FORMAT.md 10, or a feature such as a
 * quantized fastText model that is not supported), EMBT_EVERSION (a fastText model version other
 * than 11 or 12). */
EMBT_API embt_status embt_convert_file(const char *in_path, const char *out_path,
                                       const embt_convert_options *opts);

/* Bytes embt_format_f32() may write, the terminating NUL included. */
#define EMBT_F32_TEXT_MAX 17

/* Writes the shortest decimal text that strtof reads back to exactly v (the closest such text
 * when several have that length; NumPy's repr style: "0.1", "1.0", "1e-05", "-3.4028235e+38"), NUL-
 * terminated, into buf (EMBT_F32_TEXT_MAX bytes). NaN and infinities give "nan", "inf", "-inf".
 * Returns the length without the NUL. Thread-safe; never fails. This is what the text exporters
 * write. */
EMBT_API size_t embt_format_f32(char *buf, float v);

#ifdef __cplusplus
}
#endif
#endif
