/* fuzz_npy.c: libFuzzer target for the NumPy .npy importer. The input is the .npy file itself,
 * written to the scratch directory and converted with embt_convert_file(); the options come from the
 * input's length (detection or the explicit format, dtype, non-finite values, compression, a row
 * limit, and a --vocab file of a few lines, possibly with a duplicate, under each duplicate policy).
 * A failure must be a parse/format/limit error that leaves no output; a success must verify, have
 * the reported rows, and, when the dtype is kept and no limit or vocabulary applies, hold exactly
 * the elements of the input's data (the last rows * cols * itemsize bytes), read independently
 * with the byte order and the C/Fortran order the metadata reports. */
#include <stdbool.h>

#include "fuzz_common.h"

/* Looks up `key` in the file's metadata; returns a malloc'd copy or NULL. */
static char *meta_string(const embt_file *f, const char *key)
{
    size_t len = 0;
    const char *text = embt_file_metadata(f, &len);
    FZ_CHECK(text != NULL, "an imported npy has no metadata");
    embt_meta *m = NULL;
    FZ_CHECK(embt_meta_parse(&m, text, len) == EMBT_OK, "the importer's metadata does not parse");
    const char *v = NULL;
    size_t vlen = 0;
    char *copy = NULL;
    if (embt_meta_get(&v, &vlen, m, key) == EMBT_OK) {
        copy = malloc(vlen + 1);
        FZ_CHECK(copy != NULL, "out of memory");
        memcpy(copy, v, vlen + 1);
    }
    embt_meta_free(m);
    return copy;
}

/* The oracle: element (i, j) of the table equals element (i, j) of the input array, located from
 * the end of the input and byte-swapped for big-endian descrs. */
static void check_elements(const uint8_t *data, size_t size, const embt_file *f,
                           const embt_table *t, uint64_t array_rows)
{
    char *descr = meta_string(f, "source.descr");
    char *fortran = meta_string(f, "source.fortran_order");
    FZ_CHECK(descr && fortran, "metadata lacks descr or fortran_order");
    FZ_CHECK(strlen(descr) == 3 && strchr("<>=|", descr[0]) && descr[1] == 'f' &&
                 strchr("248", descr[2]),
             "unexpected descr '%s'", descr);
    size_t isz = (size_t)(descr[2] - '0');
    embt_dtype want = isz == 2 ? EMBT_DTYPE_F16 : isz == 4 ? EMBT_DTYPE_F32 : EMBT_DTYPE_F64;
    FZ_CHECK(embt_table_dtype(t) == want, "descr %s became %s", descr,
             embt_dtype_name(embt_table_dtype(t)));
    bool swap = descr[0] == '>';
    bool col_major = strcmp(fortran, "true") == 0;
    uint64_t rows = embt_table_rows(t), cols = embt_table_cols(t);
    FZ_CHECK(array_rows * cols * isz <= size, "array larger than the input");
    const uint8_t *base = data + size - array_rows * cols * isz;
    const uint8_t *got = embt_table_data(t);
    FZ_CHECK(got != NULL || rows == 0, "no table data");
    for (uint64_t i = 0; i < rows; i++) {
        for (uint64_t j = 0; j < cols; j++) {
            const uint8_t *src = base + (col_major ? j * array_rows + i : i * cols + j) * isz;
            uint8_t e[8];
            for (size_t b = 0; b < isz; b++)
                e[b] = swap ? src[isz - 1 - b] : src[b];
            FZ_CHECK(memcmp(got + (i * cols + j) * isz, e, isz) == 0,
                     "element (%llu, %llu) differs", (unsigned long long)i, (unsigned long long)j);
        }
    }
    free(descr);
    free(fortran);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = fz_path("in.npy"), *out = fz_path("out.embt"), *vocab = fz_path("vocab.txt");
    fz_write_file(in, data, size);

    static const embt_dtype dtypes[] = {
        0, EMBT_DTYPE_F32, EMBT_DTYPE_F16, EMBT_DTYPE_BF16, EMBT_DTYPE_I8, EMBT_DTYPE_F64};
    static const uint64_t limits[] = {0, 0, 1, 2};
    size_t k = size;
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    embt_convert_report report;
    memset(&report, 0xA5, sizeof report);
    o.from = k % 2 ? EMBT_FORMAT_NPY : EMBT_FORMAT_AUTO;
    k /= 2;
    o.dtype = dtypes[k % 6];
    k /= 6;
    if (k % 2)
        o.flags |= EMBT_CONVERT_ALLOW_NONFINITE;
    k /= 2;
    o.limit = limits[k % 4];
    k /= 4;
    unsigned vocab_lines = (unsigned)(k % 7); /* 0: no --vocab; 6: five lines, the last repeated */
    k /= 7;
    if (vocab_lines) {
        char text[64];
        size_t n = 0;
        for (unsigned i = 0; i < vocab_lines && i < 5; i++)
            n += (size_t)snprintf(text + n, sizeof text - n, "w%u\n", i);
        if (vocab_lines == 6)
            n += (size_t)snprintf(text + n, sizeof text - n, "w4\n");
        fz_write_file(vocab, (const uint8_t *)text, n);
        o.vocab_path = vocab;
        o.on_duplicate = (embt_on_duplicate)(k % 3);
    }
    k /= 3;
    if (k % 3 == 0)
        o.flags |= EMBT_CONVERT_COMPRESS;
    o.report = &report;
    size_t inputs = vocab_lines ? 2 : 1;

    embt_status st = embt_convert_file(in, out, &o);
    if (st != EMBT_OK) {
        fz_check_import_failure(st, fz_embt_magic(data, size));
        FZ_CHECK(fz_count_other_entries(NULL) == inputs,
                 "a failed conversion (%s) left output or a temporary file", embt_status_name(st));
    } else {
        embt_file *f = NULL;
        embt_open_options oo = EMBT_OPEN_OPTIONS_INIT;
        oo.flags = EMBT_OPEN_VERIFY;
        st = embt_file_open(&f, out, &oo);
        FZ_CHECK(st == EMBT_OK, "the converter wrote a file that does not verify");
        FZ_CHECK(fz_count_other_entries(NULL) == inputs + 1, "a conversion left a temporary file");
        const embt_table *t = NULL;
        FZ_CHECK(embt_file_table(&t, f, "embedding") == EMBT_OK, "no table 'embedding'");
        FZ_CHECK(embt_table_rows(t) == report.rows, "table of %llu rows, report says %llu",
                 (unsigned long long)embt_table_rows(t), (unsigned long long)report.rows);
        FZ_CHECK(o.limit == 0 || report.rows <= o.limit, "limit %llu, %llu rows",
                 (unsigned long long)o.limit, (unsigned long long)report.rows);
        const embt_vocab *v = embt_table_vocab(t);
        char *format = meta_string(f, "source.format");
        bool npy = format && strcmp(format, "npy") == 0;
        free(format);
        if (npy) {
            FZ_CHECK((v != NULL) == (o.vocab_path != NULL), "tied to a vocabulary: %d", v != NULL);
            if (v)
                FZ_CHECK(embt_vocab_size(v) == report.rows && report.rows <= 5,
                         "%u tokens from a file of %u lines", embt_vocab_size(v), vocab_lines);
            if (o.dtype)
                FZ_CHECK(embt_table_dtype(t) == o.dtype, "dtype %s, asked %s",
                         embt_dtype_name(embt_table_dtype(t)), embt_dtype_name(o.dtype));
            bool gzipped = size >= 2 && data[0] == 0x1F && data[1] == 0x8B;
            if (!gzipped && !v && o.dtype == 0 && o.limit == 0)
                check_elements(data, size, f, t, embt_table_rows(t));
        }
        embt_file_close(f);
        unlink(out);
    }
    unlink(in);
    if (vocab_lines)
        unlink(vocab);
    return 0;
}
