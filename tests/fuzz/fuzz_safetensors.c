/* fuzz_safetensors.c: libFuzzer target for the safetensors importer. The input is the .safetensors
 * file itself, written to the scratch directory and converted with embt_convert_file(); the options
 * come from the input's length (detection or the explicit format, dtype, non-finite values,
 * compression, a row limit, the tied tensor's name and a --vocab file). A failure must be a
 * parse/format/limit/argument error that leaves no output; a success must verify, and when the
 * stored dtype is kept, every table must hold exactly the bytes its tensor's data_offsets name in
 * the input (the header is re-read with embt__json_parse for the offsets). */
#include <stdbool.h>

#include "fuzz_common.h"
#include "json.h"

/* Each tensor of the header whose table kept its dtype: the table's bytes are the tensor's. */
static void check_tensors(const uint8_t *data, size_t size, const embt_file *f)
{
    uint64_t n = 0;
    for (int b = 7; b >= 0; b--)
        n = n << 8 | data[b];
    FZ_CHECK(n <= size - 8, "imported with a header past the end");
    embt__json doc;
    FZ_CHECK(embt__json_parse(&doc, data + 8, (size_t)n, 8, EMBT__JSON_DEPTH_MAX, 1u << 20) ==
                 EMBT_OK,
             "the header of an imported file does not parse");
    const uint8_t *buffer = data + 8 + n;
    for (const embt__json_value *m = embt__json_first(&doc, &doc.values[0]); m;
         m = embt__json_next(&doc, m)) {
        if (strcmp(m->key, "__metadata__") == 0)
            continue;
        const embt_table *t = NULL;
        FZ_CHECK(embt_file_table(&t, f, m->key) == EMBT_OK, "no table for tensor '%s'", m->key);
        const embt__json_value *dt = embt__json_get(&doc, m, "dtype");
        const embt__json_value *off = embt__json_get(&doc, m, "data_offsets");
        FZ_CHECK(dt && off && dt->kind == EMBT__JSON_STRING && off->n_children == 2,
                 "tensor '%s' imported without dtype or data_offsets", m->key);
        const embt__json_value *begin = embt__json_first(&doc, off);
        const char *name = embt_dtype_name(embt_table_dtype(t));
        FZ_CHECK(name != NULL, "table dtype");
        char upper[8] = {0};
        for (size_t i = 0; name[i] && i < sizeof upper - 1; i++)
            upper[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
        if (strcmp(upper, dt->str) != 0)
            continue; /* converted */
        size_t bytes = (size_t)(embt_table_rows(t) * embt_table_cols(t)) *
                       embt_dtype_size(embt_table_dtype(t));
        FZ_CHECK(begin->integer <= size && bytes <= size - begin->integer,
                 "tensor '%s' outside the input", m->key);
        if (bytes)
            FZ_CHECK(memcmp(embt_table_data(t), buffer + begin->integer, bytes) == 0,
                     "tensor '%s': table bytes differ from the input", m->key);
        if (embt_table_dtype(t) == EMBT_DTYPE_I8 && embt_table_rows(t)) {
            const float *sc = embt_table_scales(t);
            FZ_CHECK(sc != NULL && sc[0] == 1.0f, "I8 tensor '%s' with a scale other than 1",
                     m->key);
        }
    }
    embt__json_free(&doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = fz_path("in.safetensors"), *out = fz_path("out.embt");
    const char *vocab = fz_path("vocab.txt");
    fz_write_file(in, data, size);

    static const embt_dtype dtypes[] = {
        0, EMBT_DTYPE_F32, EMBT_DTYPE_F16, EMBT_DTYPE_BF16, EMBT_DTYPE_I8, EMBT_DTYPE_F64};
    static const char *const names[] = {NULL, NULL, NULL, "embedding", "a", "weight"};
    size_t k = size;
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    embt_convert_report report;
    memset(&report, 0xA5, sizeof report);
    o.from = k % 2 ? EMBT_FORMAT_SAFETENSORS : EMBT_FORMAT_AUTO;
    k /= 2;
    o.dtype = dtypes[k % 6];
    k /= 6;
    if (k % 2)
        o.flags |= EMBT_CONVERT_ALLOW_NONFINITE;
    k /= 2;
    o.limit = k % 3 == 2 ? 1 : 0;
    k /= 3;
    o.table_name = names[k % 6];
    k /= 6;
    unsigned vocab_lines = k % 4 == 3 ? 1 + (unsigned)(k / 4 % 4) : 0;
    k /= 4;
    if (vocab_lines) {
        char text[32];
        size_t n = 0;
        for (unsigned i = 0; i < vocab_lines; i++)
            n += (size_t)snprintf(text + n, sizeof text - n, "w%u\n", i);
        fz_write_file(vocab, (const uint8_t *)text, n);
        o.vocab_path = vocab;
    }
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
        size_t mlen = 0;
        const char *meta = embt_file_metadata(f, &mlen);
        bool st_format = meta && mlen > 28 && memcmp(meta, "source: {format: safetensors", 28) == 0;
        if (st_format) {
            FZ_CHECK(embt_file_vocab_count(f) <= 1, "%zu vocabularies", embt_file_vocab_count(f));
            const embt_table *tied = NULL;
            for (size_t i = 0; i < embt_file_table_count(f); i++) {
                const embt_table *t = embt_file_table_at(f, i);
                if (embt_table_vocab(t)) {
                    FZ_CHECK(tied == NULL, "two tables tied to the vocabulary");
                    tied = t;
                }
            }
            FZ_CHECK((tied != NULL) == (embt_file_vocab_count(f) == 1), "vocabulary not tied");
            if (o.vocab_path)
                FZ_CHECK(tied && embt_table_rows(tied) <= vocab_lines, "--vocab not applied");
            if (tied) {
                FZ_CHECK(embt_table_rows(tied) == report.rows, "tied rows %llu, report %llu",
                         (unsigned long long)embt_table_rows(tied),
                         (unsigned long long)report.rows);
                if (o.table_name)
                    FZ_CHECK(strcmp(embt_table_name(tied), o.table_name) == 0,
                             "tied to '%s', asked '%s'", embt_table_name(tied), o.table_name);
            }
            bool gzipped = size >= 2 && data[0] == 0x1F && data[1] == 0x8B;
            if (!gzipped && o.limit == 0 && o.dtype == 0)
                check_tensors(data, size, f);
        }
        embt_file_close(f);
        unlink(out);
    }
    unlink(in);
    if (vocab_lines)
        unlink(vocab);
    return 0;
}
