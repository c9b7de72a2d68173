/* convert.h: the interface between embt_convert_file() (convert.c: dispatch, detection, temp files)
 * and the per-format importers (import_<format>.c) and exporters (export_<format>.c).
 * An importer reads a whole input held in memory (the text importer also a streaming gzip input)
 * and writes sections to an open writer; an exporter reads an open .embt file and writes bytes to
 * an atomic output. Never installed. */
#ifndef EMBT_CONVERT_H
#define EMBT_CONVERT_H

#include "internal.h"

/* ---- input (input.c): the input file, mapped, or inflated whole or in order ---- */
struct embt__inflater;
typedef struct embt__input {
    const char *path;    /* as given, for messages */
    const uint8_t *data; /* the bytes: the mapping, the inflated .gz, or (streaming) its prefix */
    size_t size;
    bool droppable; /* data is a file mapping whose parsed pages may be released (madvise) */
    bool gzipped;   /* the file was gzip-compressed; offsets in errors are in inflated bytes */
    bool streaming; /* gzip opened by embt__input_open and not yet whole: data holds a prefix, the
                     * text comes from embt__input_read */
    void *map;      /* owned resources, released by embt__input_release */
    size_t map_size;
    uint8_t *inflated;
    struct embt__inflater *zin; /* the gzip stream while streaming */
    size_t served;              /* prefix bytes already returned by embt__input_read */
} embt__input;

/* Maps `path` (or inflates it when it starts with the gzip magic 1F 8B, bounded by the limits of
 * spec/FORMAT.md 10 and multi-member aware). Errors: EMBT_EIO, EMBT_ENOMEM, EMBT_EFORMAT (a damaged
 * gzip stream), EMBT_ELIMIT. */
embt_status embt__input_load(embt__input *in, const char *path);
/* As embt__input_load, but a gzip file larger than a prefix is left streaming: data and size hold at
 * least 64 KiB of inflated text and two line feeds when it has them (up to 33 MiB). Same errors. */
embt_status embt__input_open(embt__input *in, const char *path);
/* Makes a streaming input whole (as embt__input_load); nothing may have been read yet. On failure
 * the input is released. */
embt_status embt__input_complete(embt__input *in);
/* Streaming input: the next inflated bytes (the prefix first), up to cap; fewer only at the end.
 * The prefix is freed once returned. Errors: those of embt__input_load, found as the stream goes. */
embt_status embt__input_read(embt__input *in, uint8_t *dst, size_t cap, size_t *n_out);
/* Streaming input: the compressed bytes consumed so far (for progress); otherwise size. */
uint64_t embt__input_consumed(const embt__input *in);
void embt__input_release(embt__input *in);
/* Releases the pages of data[from, to) when droppable (peak memory of long streaming imports). */
void embt__input_drop(const embt__input *in, size_t from, size_t to);

/* ---- output (output.c): a file that appears atomically, as the writer's do ---- */
typedef struct embt__output embt__output;
/* Creates `<path>.tmp.<pid>.<n>` next to path. Errors: EMBT_EIO, EMBT_ENOMEM. */
embt_status embt__output_open(embt__output **out, const char *path);
/* Buffered write of n bytes. Errors: EMBT_EIO. */
embt_status embt__output_write(embt__output *out, const void *data, size_t n);
/* Flush, fsync, close, rename over path, fsync the directory. Errors: EMBT_EIO. */
embt_status embt__output_commit(embt__output *out);
/* Removes the temporary file unless committed, and frees. NULL is fine. */
void embt__output_free(embt__output *out);

/* ---- the conversion context shared by importers ---- */
typedef struct embt__import {
    const embt__input *in;
    embt_writer *writer;              /* open; the importer adds sections, convert.c commits */
    const embt_convert_options *opts; /* never NULL (defaults filled in) */
    embt_convert_report *report;      /* never NULL */
    const char *table_name;           /* opts->table_name or "embedding" */
    const char *vocab_name;           /* opts->vocab_name or "words" */
} embt__import;

/* Importers: each checks its own format strictly, reports problems with line/column (text) or the
 * byte offset in the input (binary), and writes: the vocabulary (if the format has one, or from
 * opts->vocab_path), every table, and metadata (`source: {format: NAME, ...}`). */
embt_status embt__import_text(const embt__import *ctx, embt_format format); /* word2vec, glove */
embt_status embt__import_word2vec_bin(const embt__import *ctx);
embt_status embt__import_fasttext_bin(const embt__import *ctx);
embt_status embt__import_npy(const embt__import *ctx);
embt_status embt__import_npz(const embt__import *ctx);
embt_status embt__import_safetensors(const embt__import *ctx);
embt_status embt__import_embt(const embt__import *ctx);

/* Content sniffing for EMBT_FORMAT_AUTO (on the decompressed bytes): true when the prefix looks like
 * this format. Each lives with its importer. */
bool embt__sniff_word2vec_bin(const uint8_t *data, size_t size);
bool embt__sniff_fasttext_bin(const uint8_t *data, size_t size);
bool embt__sniff_npy(const uint8_t *data, size_t size);
bool embt__sniff_npz(const uint8_t *data, size_t size);
bool embt__sniff_safetensors(const uint8_t *data, size_t size);

/* Exporters: write the tied table of `table` (with its vocabulary, if any) or, for npz and
 * safetensors, every table, to `out`. Tokens a format cannot represent (a space in word2vec
 * formats) are EMBT_EINVAL naming the token id. */
embt_status embt__export_text(const embt_file *src, const embt_table *table, embt__output *out,
                              embt_format format, const embt_convert_options *opts);
embt_status embt__export_word2vec_bin(const embt_file *src, const embt_table *table,
                                      embt__output *out, const embt_convert_options *opts);
embt_status embt__export_npy(const embt_file *src, const embt_table *table, embt__output *out,
                             const embt_convert_options *opts);
embt_status embt__export_npz(const embt_file *src, embt__output *out,
                             const embt_convert_options *opts);
embt_status embt__export_safetensors(const embt_file *src, embt__output *out,
                                     const embt_convert_options *opts);

/* Vocabulary file for array formats (--vocab FILE): one token per line. Adds every token to the
 * writer's open vocabulary with the duplicate and UTF-8 policies of opts; *n_out gets the count. */
embt_status embt__read_vocab_file(const embt__import *ctx, uint64_t *n_out);

#endif
