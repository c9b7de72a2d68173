/* vocab_file.h: the --vocab FILE reader's extended entry point (vocab_file.c), for array importers
 * that must drop or move matrix rows when a lenient policy drops a line of the vocabulary file.
 * Never installed. */
#ifndef EMBT_VOCAB_FILE_H
#define EMBT_VOCAB_FILE_H

#include "convert.h"

/* As embt__read_vocab_file(); in addition *source_out (when not NULL) receives an array of *n_out
 * line indices (0-based, owned by the caller, free with embt__free): token id i takes its row from
 * line source[i] of the file (the first occurrence, or the last one under EMBT_DUPLICATE_LAST).
 * *lines_out (when not NULL) gets the number of lines read. */
embt_status embt__read_vocab_file_rows(const embt__import *ctx, uint64_t *n_out,
                                       uint32_t **source_out, uint64_t *lines_out);

#endif
