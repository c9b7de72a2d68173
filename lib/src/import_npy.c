/* import_npy.c: embt_convert_file from a NumPy .npy array: one table (rank 1 or 2), tied to the
 * vocabulary of --vocab FILE when one is given, with the array's header in the metadata. */
#include <stdio.h>

#include "npy.h"

bool embt__sniff_npy(const uint8_t *data, size_t size)
{
    return size >= EMBT__NPY_MAGIC_LEN + 2 && memcmp(data, "\x93NUMPY", EMBT__NPY_MAGIC_LEN) == 0;
}

embt_status embt__import_npy(const embt__import *ctx)
{
    embt_status rc;
    const embt_convert_options *o = ctx->opts;
    embt__npy_src src = {ctx->in->data, ctx->in->size, 0, false, "npy"};
    embt__npy npy;
    uint32_t *row_map = NULL;

    rc = embt__npy_parse(&npy, &src);
    if (rc != EMBT_OK)
        goto done;
    uint64_t rows = o->limit != 0 && o->limit < npy.rows ? o->limit : npy.rows;
    if (o->vocab_path) {
        rc = embt__npy_read_vocab(ctx, npy.rows, ctx->table_name, &rows, &row_map);
        if (rc != EMBT_OK)
            goto done;
    }

    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = ctx->table_name;
    ts.dtype = o->dtype;
    ts.vocab = o->vocab_path ? ctx->vocab_name : NULL;
    ts.flags = (o->flags & EMBT_CONVERT_COMPRESS) ? EMBT_TABLE_COMPRESS : 0;
    rc = embt__npy_write_table(ctx, &src, &npy, &ts, rows, row_map, 0, ctx->in->size);
    if (rc != EMBT_OK)
        goto done;

    char desc[160], meta[200];
    embt__npy_meta(desc, sizeof desc, &npy);
    int len = snprintf(meta, sizeof meta, "source: {format: npy, %s}\n", desc);
    rc = embt_writer_set_metadata(ctx->writer, meta, (size_t)len);
    if (rc != EMBT_OK)
        goto done;
    ctx->report->rows = rows;
done:
    embt__free(row_map);
    return rc;
}
