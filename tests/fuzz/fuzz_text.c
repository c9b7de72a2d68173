/* fuzz_text.c: libFuzzer target for the word2vec / GloVe text importer (plain or gzip). The input is
 * the text file itself, written to the scratch directory and converted with embt_convert_file(). The
 * options come from the input's length, so seeds stay plain text files: the source format (auto,
 * word2vec, GloVe), the duplicate and bad-UTF-8 policies, non-finite values and the output dtype.
 * A success must give a file that opens and verifies with the reported number of rows; a failure
 * must leave no output and no temporary file. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = fz_path("in.txt"), *out = fz_path("out.embt");
    fz_write_file(in, data, size);

    static const embt_format formats[] = {EMBT_FORMAT_AUTO, EMBT_FORMAT_WORD2VEC,
                                          EMBT_FORMAT_GLOVE};
    static const embt_dtype dtypes[] = {0, EMBT_DTYPE_F16, EMBT_DTYPE_I8, EMBT_DTYPE_F64};
    size_t k = size;
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    embt_convert_report report;
    memset(&report, 0xA5, sizeof report);
    o.from = formats[k % 3];
    k /= 3;
    o.on_duplicate = (embt_on_duplicate)(k % 3);
    k /= 3;
    o.on_bad_utf8 = (embt_on_bad_utf8)(k % 3);
    k /= 3;
    if (k % 2)
        o.flags |= EMBT_CONVERT_ALLOW_NONFINITE;
    k /= 2;
    o.dtype = dtypes[k % 4];
    if (k % 5 == 0)
        o.flags |= EMBT_CONVERT_COMPRESS;
    o.report = &report;

    embt_status st = embt_convert_file(in, out, &o);
    if (st != EMBT_OK) {
        /* detection may take the input for .embt, which can also be of a newer major version or
         * corrupt */
        fz_check_import_failure(st, true);
        FZ_CHECK(fz_count_other_entries("in.txt") == 0,
                 "a failed conversion (%s) left output or a temporary file", embt_status_name(st));
    } else {
        embt_file *f = NULL;
        embt_open_options oo = EMBT_OPEN_OPTIONS_INIT;
        oo.flags = EMBT_OPEN_VERIFY;
        st = embt_file_open(&f, out, &oo);
        FZ_CHECK(st == EMBT_OK, "the converter wrote a file that does not verify");
        const embt_table *t = NULL;
        FZ_CHECK(embt_file_table(&t, f, "embedding") == EMBT_OK, "no table 'embedding'");
        FZ_CHECK(embt_table_rows(t) == report.rows, "table of %llu rows, report says %llu",
                 (unsigned long long)embt_table_rows(t), (unsigned long long)report.rows);
        const embt_vocab *v = embt_table_vocab(t);
        FZ_CHECK(v != NULL && embt_vocab_size(v) == report.rows,
                 "table not tied to the vocabulary");
        FZ_CHECK(o.dtype == 0 ? embt_table_dtype(t) == EMBT_DTYPE_F32
                              : embt_table_dtype(t) == o.dtype,
                 "dtype %s", embt_dtype_name(embt_table_dtype(t)));
        if (!(o.flags & EMBT_CONVERT_ALLOW_NONFINITE))
            FZ_CHECK(report.nonfinite == 0, "non-finite values kept without the flag");
        if (o.on_duplicate == EMBT_DUPLICATE_ERROR)
            FZ_CHECK(report.duplicates_dropped == 0, "duplicates dropped under the strict policy");
        if (o.on_bad_utf8 == EMBT_BAD_UTF8_ERROR)
            FZ_CHECK(report.utf8_replaced == 0 && report.utf8_skipped == 0,
                     "UTF-8 repaired under the strict policy");
        /* every token reads back and is found at its own id (verify checked duplicates) */
        for (uint32_t id = 0; id < embt_vocab_size(v) && id < 1024; id++) {
            size_t len = 0;
            const char *tok = embt_vocab_token(v, id, &len);
            FZ_CHECK(tok != NULL, "token %u", id);
            /* auto-detection may pick word2vec binary, whose tokens may hold a line break */
            if (o.from != EMBT_FORMAT_AUTO)
                FZ_CHECK(memchr(tok, '\n', len) == NULL, "token %u spans lines", id);
            uint32_t found;
            FZ_CHECK(embt_vocab_find(&found, v, tok, len) == EMBT_OK && found == id,
                     "token %u not found at its id", id);
        }
        embt_file_close(f);
        FZ_CHECK(fz_count_other_entries("in.txt") == 1, "a conversion left a temporary file");
        unlink(out);
    }
    unlink(in);
    return 0;
}
