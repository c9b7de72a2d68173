/* fuzz_word2vec_bin.c: libFuzzer target for the word2vec binary importer. The input is the .bin file
 * itself, written to the scratch directory and converted with embt_convert_file(); the options come
 * from the input's length (detection or the explicit format, dtype, duplicate and UTF-8 policies,
 * non-finite values, compression, a row limit). A failure must be a parse/format/limit error that
 * leaves no output; a success must verify, tie "embedding" to "words" with the reported row count,
 * and, under the strict policies with f32 output, hold exactly the rows an independent re-parse of
 * the input finds (token bytes and value bits; gzip inputs are inflated first and skip this). */
#include <stdbool.h>

#include "fuzz_common.h"

/* The independent oracle for strict f32 imports: walks the rows as the format says and compares
 * each with the converted file. */
static void check_rows(const uint8_t *data, size_t size, const embt_table *t, const embt_vocab *v)
{
    size_t p = 0;
    uint64_t rows = 0, dim = 0;
    while (p < size && data[p] >= '0' && data[p] <= '9')
        rows = rows * 10 + (uint64_t)(data[p++] - '0');
    while (p < size && (data[p] == ' ' || data[p] == '\t'))
        p++;
    while (p < size && data[p] >= '0' && data[p] <= '9')
        dim = dim * 10 + (uint64_t)(data[p++] - '0');
    while (p < size && data[p] != '\n')
        p++;
    p++;
    FZ_CHECK(embt_table_cols(t) == dim, "cols %llu, header dim %llu",
             (unsigned long long)embt_table_cols(t), (unsigned long long)dim);
    uint64_t n = embt_table_rows(t);
    FZ_CHECK(n <= rows, "%llu rows from a header of %llu", (unsigned long long)n,
             (unsigned long long)rows);
    const uint8_t *bytes = embt_table_data(t);
    for (uint64_t r = 0; r < n; r++) {
        while (p < size && data[p] == '\n')
            p++;
        const uint8_t *sp = memchr(data + p, ' ', size - p);
        FZ_CHECK(sp != NULL, "row %llu: no space, yet imported", (unsigned long long)r);
        size_t len = (size_t)(sp - data) - p, got = 0;
        const char *tok = embt_vocab_token(v, (uint32_t)r, &got);
        FZ_CHECK(tok && got == len && memcmp(tok, data + p, len) == 0, "token %llu differs",
                 (unsigned long long)r);
        p += len + 1;
        FZ_CHECK(size - p >= dim * 4, "row %llu truncated, yet imported", (unsigned long long)r);
        FZ_CHECK(memcmp(bytes + r * dim * 4, data + p, dim * 4) == 0, "row %llu values differ",
                 (unsigned long long)r);
        p += dim * 4;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = fz_path("in.bin"), *out = fz_path("out.embt");
    fz_write_file(in, data, size);

    static const embt_dtype dtypes[] = {0, EMBT_DTYPE_F16, EMBT_DTYPE_BF16, EMBT_DTYPE_I8,
                                        EMBT_DTYPE_F64};
    static const uint64_t limits[] = {0, 0, 1, 3};
    size_t k = size;
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    embt_convert_report report;
    memset(&report, 0xA5, sizeof report);
    o.from = k % 2 ? EMBT_FORMAT_WORD2VEC_BIN : EMBT_FORMAT_AUTO;
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
    if (k % 7 == 0)
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
    const embt_table *t = NULL;
    FZ_CHECK(embt_file_table(&t, f, "embedding") == EMBT_OK, "no table 'embedding'");
    FZ_CHECK(embt_table_rows(t) == report.rows, "table of %llu rows, report says %llu",
             (unsigned long long)embt_table_rows(t), (unsigned long long)report.rows);
    FZ_CHECK(o.limit == 0 || report.rows <= o.limit, "limit %llu, %llu rows",
             (unsigned long long)o.limit, (unsigned long long)report.rows);
    const embt_vocab *v = embt_table_vocab(t);
    if (v) { /* word2vec binary (detection may also have picked text, which ties too) */
        FZ_CHECK(embt_vocab_size(v) == report.rows, "vocabulary and table sizes differ");
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
    FZ_CHECK(embt_table_dtype(t) == (o.dtype ? o.dtype : EMBT_DTYPE_F32), "dtype %s",
             embt_dtype_name(embt_table_dtype(t)));
    bool gzipped = size >= 2 && data[0] == 0x1F && data[1] == 0x8B; /* inflated first */
    if (o.from == EMBT_FORMAT_WORD2VEC_BIN && o.dtype == 0 && !gzipped &&
        o.on_duplicate == EMBT_DUPLICATE_ERROR && o.on_bad_utf8 == EMBT_BAD_UTF8_ERROR) {
        FZ_CHECK(v != NULL, "word2vec-bin gave an untied table");
        check_rows(data, size, t, v);
    }
    embt_file_close(f);
    unlink(out);
    unlink(in);
    return 0;
}
