/* fuzz_fasttext_bin.c: libFuzzer target for the fastText .bin importer (arguments, dictionary,
 * pruned-bucket index, input and output matrices, word vectors from character n-grams). The input
 * is the model file itself, written to the scratch directory and converted with
 * embt_convert_file(); the options come from the input's length (detection or the explicit format,
 * dtype, duplicate and UTF-8 policies, non-finite values, compression, a word limit). A failure must
 * be a parse/format/limit/version error that leaves no output; a success must verify and hold the
 * words vocabulary with counts tied to "embedding" (the reported rows, within the limit), the raw
 * "input" and "output" matrices of the model's dim, and the subword metadata. */
#include <stdbool.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = fz_path("in.bin"), *out = fz_path("out.embt");
    fz_write_file(in, data, size);

    static const embt_dtype dtypes[] = {0, EMBT_DTYPE_F16, EMBT_DTYPE_BF16, EMBT_DTYPE_I8,
                                        EMBT_DTYPE_F64};
    static const uint64_t limits[] = {0, 0, 1, 5};
    size_t k = size;
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    embt_convert_report report;
    memset(&report, 0xA5, sizeof report);
    o.from = k % 2 ? EMBT_FORMAT_FASTTEXT_BIN : EMBT_FORMAT_AUTO;
    k /= 2;
    o.on_duplicate = (embt_on_duplicate)(k % 3);
    k /= 3;
    o.on_bad_utf8 = (embt_on_bad_utf8)(k % 3);
    k /= 3;
    if (k % 2)
        o.flags |= EMBT_CONVERT_ALLOW_NONFINITE;
    k /= 2;
    o.dtype = dtypes[k % 5];
    k /= 5;
    o.limit = limits[k % 4];
    k /= 4;
    if (k % 3 == 0)
        o.flags |= EMBT_CONVERT_COMPRESS;
    o.report = &report;

    embt_status st = embt_convert_file(in, out, &o);
    if (st != EMBT_OK) {
        fz_check_import_failure(st, fz_embt_magic(data, size));
        FZ_CHECK(fz_count_other_entries("in.bin") == 0,
                 "a failed conversion (%s) left output or a temporary file", embt_status_name(st));
        unlink(in);
        return 0;
    }
    embt_file *f = NULL;
    embt_open_options oo = EMBT_OPEN_OPTIONS_INIT;
    oo.flags = EMBT_OPEN_VERIFY;
    st = embt_file_open(&f, out, &oo);
    FZ_CHECK(st == EMBT_OK, "the converter wrote a file that does not verify");
    FZ_CHECK(fz_count_other_entries("in.bin") == 1, "a conversion left a temporary file");
    const embt_table *t = NULL, *input = NULL, *output = NULL;
    FZ_CHECK(embt_file_table(&t, f, "embedding") == EMBT_OK, "no table 'embedding'");
    FZ_CHECK(embt_table_rows(t) == report.rows, "table of %llu rows, report says %llu",
             (unsigned long long)embt_table_rows(t), (unsigned long long)report.rows);
    FZ_CHECK(o.limit == 0 || report.rows <= o.limit, "limit %llu, %llu rows",
             (unsigned long long)o.limit, (unsigned long long)report.rows);
    size_t mlen = 0;
    const char *meta = embt_file_metadata(f, &mlen);
    bool ft = meta && mlen > 30 && memcmp(meta, "source:\n  format: fasttext-bin", 30) == 0;
    if (ft || o.from == EMBT_FORMAT_FASTTEXT_BIN) {
        FZ_CHECK(ft, "a fastText import without its metadata");
        const embt_vocab *v = embt_table_vocab(t);
        FZ_CHECK(v != NULL && embt_vocab_size(v) == report.rows, "embedding not tied to words");
        FZ_CHECK(embt_vocab_has_counts(v), "words without counts");
        FZ_CHECK(embt_file_table(&input, f, "input") == EMBT_OK &&
                     embt_file_table(&output, f, "output") == EMBT_OK,
                 "input or output matrix missing");
        FZ_CHECK(embt_table_cols(input) == embt_table_cols(t) &&
                     embt_table_cols(output) == embt_table_cols(t),
                 "matrices of different dims");
        FZ_CHECK(embt_table_rows(input) >= embt_table_rows(t), "fewer input rows than words");
        embt_meta *m = NULL;
        FZ_CHECK(embt_meta_parse(&m, meta, mlen) == EMBT_OK, "metadata does not parse");
        const char *s = NULL;
        size_t slen = 0;
        FZ_CHECK(embt_meta_get(&s, &slen, m, "source.subwords.table") == EMBT_OK &&
                     strcmp(s, "input") == 0,
                 "subword metadata");
        embt_meta_free(m);
        for (uint32_t id = 0; id < embt_vocab_size(v) && id < 1024; id++) {
            size_t len = 0;
            const char *tok = embt_vocab_token(v, id, &len);
            uint32_t found;
            FZ_CHECK(tok && embt_vocab_find(&found, v, tok, len) == EMBT_OK && found == id,
                     "token %u not found at its id", id);
        }
    }
    if (!(o.flags & EMBT_CONVERT_ALLOW_NONFINITE))
        FZ_CHECK(report.nonfinite == 0, "non-finite values kept without the flag");
    if (o.on_duplicate == EMBT_DUPLICATE_ERROR)
        FZ_CHECK(report.duplicates_dropped == 0, "duplicates dropped under the strict policy");
    if (o.on_bad_utf8 == EMBT_BAD_UTF8_ERROR)
        FZ_CHECK(report.utf8_replaced == 0 && report.utf8_skipped == 0,
                 "UTF-8 repaired under the strict policy");
    embt_file_close(f);
    unlink(out);
    unlink(in);
    return 0;
}
