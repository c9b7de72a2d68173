/* loader.c: the smallest complete embt reader. `loader FILE TOKEN` prints the token's row of the
 * table "embedding" as "TOKEN v1 v2 ..." (%.9g, so float32 values round-trip) and exits 0; any
 * failure prints one line to stderr and exits 1. Uses only the public API (<embt/embt.h>). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <embt/embt.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: loader FILE TOKEN\n");
        return 1;
    }
    const char *path = argv[1], *token = argv[2];
    embt_file *file = NULL;
    float *row = NULL;
    int rc = 1;

    if (embt_file_open(&file, path, NULL) != EMBT_OK) {
        fprintf(stderr, "loader: %s: %s\n", path, embt_error_last()->message);
        goto done;
    }
    /* The first vocabulary (name NULL) and the table whose row i belongs to its token i. */
    const embt_vocab *vocab = NULL;
    const embt_table *table = NULL;
    if (embt_file_vocab(&vocab, file, NULL) != EMBT_OK ||
        embt_file_table(&table, file, "embedding") != EMBT_OK || embt_table_vocab(table) != vocab) {
        fprintf(stderr, "loader: %s: no table \"embedding\" tied to the first vocabulary\n", path);
        goto done;
    }
    uint32_t id;
    embt_status st = embt_vocab_find(&id, vocab, token, strlen(token));
    if (st == EMBT_ENOTFOUND) {
        fprintf(stderr, "loader: %s: token not found: %s\n", path, token);
        goto done;
    } else if (st != EMBT_OK) {
        fprintf(stderr, "loader: %s: %s\n", path, embt_error_last()->message);
        goto done;
    }
    /* Whatever the stored dtype, embt_table_read_row_f32() converts the row into our float buffer. */
    uint64_t cols = embt_table_cols(table);
    if (cols > SIZE_MAX / sizeof *row || !(row = malloc(cols ? cols * sizeof *row : 1))) {
        fprintf(stderr, "loader: out of memory for %llu values\n", (unsigned long long)cols);
        goto done;
    }
    if (embt_table_read_row_f32(row, table, id) != EMBT_OK) {
        fprintf(stderr, "loader: %s: %s\n", path, embt_error_last()->message);
        goto done;
    }
    printf("%s", token);
    for (uint64_t i = 0; i < cols; i++)
        printf(" %.9g", (double)row[i]);
    printf("\n");
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "loader: cannot write to stdout\n");
        goto done;
    }
    rc = 0;
done:
    free(row);
    embt_file_close(file);
    return rc;
}
