/* test_fasttext_bin.c: the fastText .bin importer against models written by the real fastText 0.9.2
 * (tests/fixtures/fasttext, made by make_fixtures.sh): word vectors equal print-word-vectors' text
 * and a mean recomputed here in double, raw matrices bit-exact, counts, labels and metadata; every
 * malformed class with its status and byte offset and no output left; the policies and options; the
 * n-gram hash and enumeration of subword.c. The importer is driven directly (input in memory, an
 * open writer, commit), as embt_convert_file() drives it. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#include "convert.h"
#include "subword.h"

TestSuite(fasttext_bin, .init = tu_setup, .fini = tu_teardown);

/* ---- fixtures and the importer ---------------------------------------------------------------- */

static uint8_t *load(const char *name, size_t *size_out)
{
    return tu_read_file(tu_fixture("fasttext", name), size_out);
}

/* Imports `size` bytes at `data` into out_path as embt_convert_file() would. */
static embt_status import_bytes(const uint8_t *data, size_t size, const char *out_path,
                                const embt_convert_options *opts, embt_convert_report *report)
{
    embt__input in;
    memset(&in, 0, sizeof in);
    in.path = "model.bin";
    in.data = data;
    in.size = size;
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    if (opts)
        o = *opts;
    embt_convert_report local;
    memset(&local, 0, sizeof local);
    embt__import ctx = {&in,
                        NULL,
                        &o,
                        report ? report : &local,
                        o.table_name ? o.table_name : "embedding",
                        o.vocab_name ? o.vocab_name : "words"};
    embt_writer *w = NULL;
    embt_status st = embt_writer_open(&w, out_path, NULL);
    if (st)
        return st;
    ctx.writer = w;
    st = embt__import_fasttext_bin(&ctx);
    if (st == EMBT_OK)
        st = embt_writer_commit(w);
    embt_error saved = *embt_error_last();
    embt_writer_free(w);
    *embt__error_record() = saved;
    return st;
}

static embt_file *open_out(const char *path)
{
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, NULL));
    TU_OK(embt_file_verify(f));
    return f;
}

static const embt_table *table(const embt_file *f, const char *name)
{
    const embt_table *t = NULL;
    TU_OK(embt_file_table(&t, f, name));
    return t;
}

static const embt_vocab *vocab(const embt_file *f, const char *name)
{
    const embt_vocab *v = NULL;
    TU_OK(embt_file_vocab(&v, f, name));
    return v;
}

/* ---- an independent reading of the fixture's layout (trusted: written by fastText) ----------- */

typedef struct layout {
    int32_t dim, bucket, minn, maxn, model, size, nwords, nlabels;
    int64_t pruneidx_size;
    size_t words_at[512]; /* offset of each entry's word */
    size_t dict_end;      /* after the entries (and pairs) */
    size_t quant_in, in_data, quant_out, out_data, end;
    uint64_t in_rows, out_rows;
} layout;

static int32_t rd32(const uint8_t *d, size_t at)
{
    return (int32_t)((uint32_t)d[at] | (uint32_t)d[at + 1] << 8 | (uint32_t)d[at + 2] << 16 |
                     (uint32_t)d[at + 3] << 24);
}

static int64_t rd64(const uint8_t *d, size_t at)
{
    return (int64_t)((uint64_t)(uint32_t)rd32(d, at) | (uint64_t)(uint32_t)rd32(d, at + 4) << 32);
}

static void wr32(uint8_t *d, size_t at, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        d[at + i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *d, size_t at, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        d[at + i] = (uint8_t)(v >> (8 * i));
}

static layout read_layout(const uint8_t *d, size_t size)
{
    layout L;
    memset(&L, 0, sizeof L);
    L.dim = rd32(d, 8);
    L.model = rd32(d, 36);
    L.bucket = rd32(d, 40);
    L.minn = rd32(d, 44);
    L.maxn = rd32(d, 48);
    L.size = rd32(d, 64);
    L.nwords = rd32(d, 68);
    L.nlabels = rd32(d, 72);
    L.pruneidx_size = rd64(d, 84);
    cr_assert_leq(L.size, 512);
    size_t p = 92;
    for (int32_t i = 0; i < L.size; i++) {
        L.words_at[i] = p;
        p += strlen((const char *)d + p) + 1 + 8 + 1;
    }
    if (L.pruneidx_size > 0)
        p += 8 * (size_t)L.pruneidx_size;
    L.dict_end = p;
    L.quant_in = p;
    L.in_rows = (uint64_t)rd64(d, p + 1);
    L.in_data = p + 17;
    L.quant_out = L.in_data + L.in_rows * (size_t)L.dim * 4;
    L.out_rows = (uint64_t)rd64(d, L.quant_out + 1);
    L.out_data = L.quant_out + 17;
    L.end = L.out_data + L.out_rows * (size_t)L.dim * 4;
    cr_assert_eq(L.end, size, "fixture layout misread");
    return L;
}

static float f32_at(const uint8_t *d, size_t at)
{
    return tu_bits_f32((uint32_t)rd32(d, at));
}

/* ---- a reference word vector: fastText's rule, written again here, summed in double -------- */

/* Buckets of the n-grams of "<word>" (fastText computeSubwords, signed-char FNV-1a). */
static size_t ref_ngrams(uint32_t *out, size_t cap, const char *word, int minn, int maxn,
                         int bucket)
{
    if (strcmp(word, "</s>") == 0 || bucket == 0)
        return 0;
    char s[1024];
    snprintf(s, sizeof s, "<%s>", word);
    size_t len = strlen(s), n_out = 0;
    for (size_t i = 0; i < len; i++) {
        if ((s[i] & 0xC0) == 0x80)
            continue;
        char ngram[1024];
        size_t nl = 0, j = i;
        for (int n = 1; j < len && n <= maxn; n++) {
            ngram[nl++] = s[j++];
            while (j < len && (s[j] & 0xC0) == 0x80)
                ngram[nl++] = s[j++];
            if (n >= minn && !(n == 1 && (i == 0 || j == len))) {
                uint32_t h = 2166136261u;
                for (size_t k = 0; k < nl; k++) {
                    h ^= (uint32_t)(int32_t)(signed char)ngram[k];
                    h *= 16777619u;
                }
                cr_assert_lt(n_out, cap);
                out[n_out++] = h % (uint32_t)bucket;
            }
        }
    }
    return n_out;
}

/* Mean in double of input rows `rows[0..n)`; *mag_out gets the mean of |terms| per column. */
static void ref_mean(double *out, double *mag_out, const uint8_t *d, const layout *L,
                     const int64_t *rows, size_t n)
{
    for (int32_t j = 0; j < L->dim; j++) {
        double s = 0, a = 0;
        for (size_t r = 0; r < n; r++) {
            float v = f32_at(d, L->in_data + ((size_t)rows[r] * (size_t)L->dim + (size_t)j) * 4);
            s += v;
            a += fabs(v);
        }
        out[j] = s / (double)n;
        mag_out[j] = a / (double)n;
    }
}

/* Rows of the word vector of dictionary word `word_row` spelled `word`; `remap` (or NULL) maps
 * a bucket to its pruned row (-1: pruned away). */
static size_t ref_rows(int64_t *rows, const char *word, int64_t word_row, const layout *L,
                       int64_t (*remap)(uint32_t))
{
    uint32_t b[4096];
    size_t nb = ref_ngrams(b, 4096, word, L->minn, L->maxn, L->bucket), n = 0;
    rows[n++] = word_row;
    for (size_t k = 0; k < nb; k++) {
        int64_t r = remap ? remap(b[k]) : b[k];
        if (r >= 0)
            rows[n++] = L->nwords + r;
    }
    return n;
}

/* Every word's vector in `f` against the double reference: |ours - ref| <= 1e-6 * mean |term|
 * (float sums of at most ~40 terms of similar size stay far inside this). */
static void check_against_reference(const embt_file *f, const uint8_t *d, const layout *L,
                                    int64_t (*remap)(uint32_t))
{
    const embt_vocab *v = vocab(f, "words");
    const embt_table *t = table(f, "embedding");
    cr_assert_eq(embt_vocab_size(v), (uint32_t)L->nwords);
    for (int32_t i = 0; i < L->nwords; i++) {
        const char *word = (const char *)d + L->words_at[i];
        size_t len;
        const char *tok = embt_vocab_token(v, (uint32_t)i, &len);
        cr_assert(len == strlen(word) && memcmp(tok, word, len) == 0, "token %d", i);
        int64_t rows[4096];
        size_t n = ref_rows(rows, word, i, L, remap);
        double ref[64], mag[64];
        ref_mean(ref, mag, d, L, rows, n);
        const float *row = embt_table_row_f32(t, (uint64_t)i);
        for (int32_t j = 0; j < L->dim; j++)
            cr_assert_leq(fabs(row[j] - ref[j]), 1e-6 * mag[j] + 1e-30,
                          "word %d '%s' column %d: %.9g vs %.12g", i, word, j, row[j], ref[j]);
    }
}

/* ---- fastText's own text output ------------------------------------------------------------- */

/* Every line "word v1 .. vD " of a print-word-vectors (or .vec, header skipped) file: our vector
 * printed as C++ streams print it (setprecision(5): %.5g) must give the same characters. */
static size_t check_printed(const embt_file *f, const char *text_name, bool header)
{
    size_t n;
    char *text = (char *)load(text_name, &n);
    text[n] = '\0';
    const embt_vocab *v = vocab(f, "words");
    const embt_table *t = table(f, "embedding");
    size_t lines = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (header) {
            header = false;
            continue;
        }
        char *sp = strchr(line, ' ');
        cr_assert_not_null(sp);
        *sp = '\0';
        uint32_t id;
        TU_OK(embt_vocab_find(&id, v, line, strlen(line)));
        const float *row = embt_table_row_f32(t, id);
        char *field_save = NULL, *field = strtok_r(sp + 1, " ", &field_save);
        for (uint64_t j = 0; j < embt_table_cols(t); j++) {
            cr_assert_not_null(field, "%s: '%s' has too few values", text_name, line);
            char mine[32];
            snprintf(mine, sizeof mine, "%.5g", (double)row[j]);
            cr_assert_str_eq(mine, field, "%s: '%s' column %llu", text_name, line,
                             (unsigned long long)j);
            field = strtok_r(NULL, " ", &field_save);
        }
        cr_assert_null(field);
        lines++;
    }
    free(text);
    return lines;
}

/* Every line "word xxxxxxxx .." of an .exact.txt file (the float bits fastText's own getWordVector
 * gave, see exact.cc): `vector(word, out)` must give the same bits. Returns the line count. */
static size_t check_exact(const char *exact_name, void (*vector)(const char *, float *, void *),
                          void *payload)
{
    size_t n;
    char *text = (char *)load(exact_name, &n);
    text[n] = '\0';
    size_t lines = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *sp = strchr(line, ' ');
        cr_assert_not_null(sp);
        *sp = '\0';
        float mine[8];
        vector(line, mine, payload);
        char *p = sp + 1;
        for (int j = 0; j < 8; j++) {
            char *end;
            unsigned long bits = strtoul(p, &end, 16);
            cr_assert_neq(end, p, "%s: '%s' has too few values", exact_name, line);
            cr_assert_eq(tu_f32_bits(mine[j]), (uint32_t)bits,
                         "%s: '%s' column %d: %08x (%.9g), fastText %08lx", exact_name, line, j,
                         tu_f32_bits(mine[j]), mine[j], bits);
            p = end;
        }
        lines++;
    }
    free(text);
    return lines;
}

/* The row of `word` in the tied table of the file `payload`. */
static void table_vector(const char *word, float *out, void *payload)
{
    const embt_file *f = payload;
    uint32_t id;
    TU_OK(embt_vocab_find(&id, vocab(f, "words"), word, strlen(word)));
    memcpy(out, embt_table_row_f32(table(f, "embedding"), id), 8 * sizeof *out);
}

/* "word count type" lines of fastText's `dump dict` against the vocabularies' counts. */
static void check_counts(const embt_file *f, const char *dict_name)
{
    size_t n;
    char *text = (char *)load(dict_name, &n);
    text[n] = '\0';
    char *save = NULL;
    size_t words = 0, labels = 0;
    strtok_r(text, "\n", &save); /* the entry count */
    for (char *line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char word[256], type[16];
        unsigned long long count;
        cr_assert_eq(sscanf(line, "%255s %llu %15s", word, &count, type), 3);
        bool is_label = strcmp(type, "label") == 0;
        const embt_vocab *v = vocab(f, is_label ? "labels" : "words");
        cr_assert(embt_vocab_has_counts(v));
        uint32_t id;
        uint64_t have;
        TU_OK(embt_vocab_find(&id, v, word, strlen(word)));
        cr_assert_eq(id, is_label ? labels : words, "%s is out of dictionary order", word);
        TU_OK(embt_vocab_count(&have, v, id));
        cr_assert_eq(have, count, "count of %s", word);
        if (is_label)
            labels++;
        else
            words++;
    }
    cr_assert_eq(embt_vocab_size(vocab(f, "words")), words);
    free(text);
}

/* The whole check of one fixture model. */
static void check_model(const char *stem, int32_t want_labels)
{
    char name[64];
    size_t size;
    snprintf(name, sizeof name, "%s.bin", stem);
    uint8_t *d = load(name, &size);
    layout L = read_layout(d, size);
    cr_assert_eq(L.nlabels, want_labels);
    const char *out = tu_path("out.embt");
    embt_convert_report rep;
    memset(&rep, 0, sizeof rep);
    TU_OK(import_bytes(d, size, out, NULL, &rep));
    cr_assert_eq(rep.rows, (uint64_t)L.nwords);
    embt_file *f = open_out(out);

    snprintf(name, sizeof name, "%s.pwv.txt", stem);
    cr_assert_eq(check_printed(f, name, false), (size_t)L.nwords);
    snprintf(name, sizeof name, "%s.vec", stem);
    cr_assert_eq(check_printed(f, name, true), (size_t)L.nwords);
    snprintf(name, sizeof name, "%s.exact.txt", stem);
    cr_assert_eq(check_exact(name, table_vector, f), (size_t)L.nwords);
    check_against_reference(f, d, &L, NULL);
    snprintf(name, sizeof name, "%s.dict.txt", stem);
    check_counts(f, name);

    /* "</s>" is the end-of-sentence id; its vector is its own row, exactly */
    const embt_vocab *v = vocab(f, "words");
    uint32_t eos;
    TU_OK(embt_vocab_find(&eos, v, "</s>", 4));
    cr_assert_eq(embt_vocab_eos_id(v), eos);
    cr_assert_eq(memcmp(embt_table_row_f32(table(f, "embedding"), eos),
                        d + L.in_data + (size_t)eos * (size_t)L.dim * 4, (size_t)L.dim * 4),
                 0);

    /* the raw matrices, bit for bit */
    const embt_table *in = table(f, "input"), *outm = table(f, "output");
    cr_assert_eq(embt_table_rows(in), L.in_rows);
    cr_assert_eq(embt_table_rows(in), (uint64_t)(L.nwords + L.bucket));
    cr_assert_null(embt_table_vocab(in));
    cr_assert_eq(memcmp(embt_table_data(in), d + L.in_data, L.in_rows * (size_t)L.dim * 4), 0);
    cr_assert_eq(embt_table_rows(outm), L.out_rows);
    cr_assert_eq(memcmp(embt_table_data(outm), d + L.out_data, L.out_rows * (size_t)L.dim * 4), 0);
    if (L.model == 3) {
        cr_assert_eq(embt_table_vocab(outm), vocab(f, "labels"));
        cr_assert_eq(embt_vocab_size(vocab(f, "labels")), (uint32_t)L.nlabels);
    } else {
        cr_assert_null(embt_table_vocab(outm));
    }
    const embt_table *none = NULL;
    cr_assert_eq(embt_file_table(&none, f, "pruneidx"), EMBT_ENOTFOUND);
    embt_file_close(f);
    free(d);
}

Test(fasttext_bin, skipgram_words_match_print_word_vectors_and_the_double_mean)
{
    check_model("sg", 0);
}

Test(fasttext_bin, cbow_without_subwords_keeps_the_word_rows)
{
    check_model("cbow_nosub", 0);
}

Test(fasttext_bin, supervised_model_gives_labels_and_an_output_tied_to_them)
{
    check_model("sup", 4);
}

Test(fasttext_bin, metadata_records_the_arguments_and_subword_settings)
{
    size_t size;
    uint8_t *d = load("sg.bin", &size);
    const char *out = tu_path("out.embt");
    TU_OK(import_bytes(d, size, out, NULL, NULL));
    embt_file *f = open_out(out);
    size_t len;
    const char *yaml = embt_file_metadata(f, &len);
    embt_meta *meta = NULL;
    TU_OK(embt_meta_parse(&meta, yaml, len));
    static const char *const want[][2] = {{"source.format", "fasttext-bin"},
                                          {"source.version", "12"},
                                          {"source.model", "skipgram"},
                                          {"source.loss", "ns"},
                                          {"source.dim", "8"},
                                          {"source.bucket", "2000"},
                                          {"source.minn", "3"},
                                          {"source.maxn", "5"},
                                          {"source.word_ngrams", "1"},
                                          {"source.t", "0.0001"},
                                          {"source.nwords", "101"},
                                          {"source.pruneidx_size", "-1"},
                                          {"source.subwords.table", "input"},
                                          {"source.subwords.hash", "fnv1a32-signed-char"},
                                          {"source.subwords.word_rows", "101"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *value;
        size_t vlen;
        TU_OK(embt_meta_get(&value, &vlen, meta, want[i][0]));
        cr_assert_str_eq(value, want[i][1], "%s", want[i][0]);
    }
    embt_meta_free(meta);
    embt_file_close(f);
    free(d);
}

/* What the later issue will do for unknown words: the n-grams of subword.c over table "input"
 * give fastText's vectors of words it never saw (oov.txt through fastText's getWordVector), bit
 * for bit, and so also their print-word-vectors text. */
typedef struct oov_ctx {
    const embt_table *input;
    const layout *L;
} oov_ctx;

static void oov_vector(const char *word, float *out, void *payload)
{
    const oov_ctx *c = payload;
    uint32_t b[512];
    size_t nb =
        embt__subword_buckets(b, 512, (const uint8_t *)word, strlen(word), (uint32_t)c->L->minn,
                              (uint32_t)c->L->maxn, (uint32_t)c->L->bucket);
    cr_assert_gt(nb, 0);
    for (int j = 0; j < 8; j++)
        out[j] = 0.0f;
    for (size_t k = 0; k < nb; k++) {
        const float *row = embt_table_row_f32(c->input, (uint64_t)c->L->nwords + b[k]);
        for (int j = 0; j < 8; j++)
            out[j] += row[j];
    }
    for (int j = 0; j < 8; j++)
        out[j] *= (float)(1.0 / (double)nb);
}

Test(fasttext_bin, unknown_words_from_the_input_table_match_fasttext)
{
    size_t size;
    uint8_t *d = load("sg.bin", &size);
    layout L = read_layout(d, size);
    const char *out = tu_path("out.embt");
    TU_OK(import_bytes(d, size, out, NULL, NULL));
    embt_file *f = open_out(out);
    oov_ctx c = {table(f, "input"), &L};
    cr_assert_eq(check_exact("sg.oov.exact.txt", oov_vector, &c), 8);
    size_t n;
    char *text = (char *)load("sg.oov.txt", &n);
    text[n] = '\0';
    char *save = NULL;
    size_t lines = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *sp = strchr(line, ' ');
        *sp = '\0';
        float v[8];
        oov_vector(line, v, &c);
        char *fsave = NULL, *field = strtok_r(sp + 1, " ", &fsave);
        for (int j = 0; j < 8; j++, field = strtok_r(NULL, " ", &fsave)) {
            char mine[32];
            snprintf(mine, sizeof mine, "%.5g", (double)v[j]);
            cr_assert_str_eq(mine, field, "oov '%s' column %d", line, j);
        }
        lines++;
    }
    cr_assert_eq(lines, 8);
    free(text);
    embt_file_close(f);
    free(d);
}

/* ---- malformed inputs: status, offset, and nothing left behind -------------------------------- */

static void expect_failure(const uint8_t *d, size_t size, embt_status want, uint64_t want_offset,
                           const char *what)
{
    const char *out = tu_path("bad.embt");
    embt_status st = import_bytes(d, size, out, NULL, NULL);
    const embt_error *e = embt_error_last();
    cr_assert_eq(st, want, "%s: %s, expected %s (%s)", what, embt_status_name(st),
                 embt_status_name(want), e->message);
    if (want_offset != EMBT_NO_OFFSET)
        cr_assert_eq(e->offset, want_offset, "%s: offset %llu, expected %llu (%s)", what,
                     (unsigned long long)e->offset, (unsigned long long)want_offset, e->message);
    cr_assert_not(tu_exists(out), "%s: output left behind", what);
    cr_assert_eq(tu_count_temp(tu_dir, "bad.embt"), 0, "%s: temporary file left behind", what);
}

enum base { ABS, QUANT_IN, QUANT_OUT, WORD0, END };

typedef struct patch_case {
    const char *name;
    enum base base; /* where `at` counts from */
    size_t at;
    uint8_t len; /* bytes of `value` written little-endian */
    uint64_t value;
    embt_status status;
    enum base err_base;
    size_t err_at;
} patch_case;

static size_t base_offset(const layout *L, enum base b)
{
    switch (b) {
    case ABS: return 0;
    case QUANT_IN: return L->quant_in;
    case QUANT_OUT: return L->quant_out;
    case WORD0: return L->words_at[0];
    case END: return L->end;
    }
    return 0;
}

Test(fasttext_bin, each_malformed_field_fails_with_its_offset)
{
    static const patch_case cases[] = {
        {"bad magic", ABS, 0, 4, 0x2F4F16BB, EMBT_EFORMAT, ABS, 0},
        {"version 13", ABS, 4, 4, 13, EMBT_EVERSION, ABS, 4},
        {"version 10", ABS, 4, 4, 10, EMBT_EVERSION, ABS, 4},
        {"dim 0", ABS, 8, 4, 0, EMBT_EPARSE, ABS, 8},
        {"loss 9", ABS, 32, 4, 9, EMBT_EPARSE, ABS, 32},
        {"model 0", ABS, 36, 4, 0, EMBT_EPARSE, ABS, 36},
        {"bucket -1", ABS, 40, 4, 0xFFFFFFFF, EMBT_EPARSE, ABS, 40},
        {"bucket 0 with n-grams", ABS, 40, 4, 0, EMBT_EPARSE, ABS, 40},
        {"minn -1", ABS, 44, 4, 0xFFFFFFFF, EMBT_EPARSE, ABS, 44},
        {"maxn -1", ABS, 48, 4, 0xFFFFFFFF, EMBT_EPARSE, ABS, 48},
        {"maxn 65", ABS, 48, 4, 65, EMBT_ELIMIT, ABS, 48},
        {"huge dictionary size", ABS, 64, 4, 0x7FFFFFFF, EMBT_EPARSE, ABS, 64},
        {"negative dictionary size", ABS, 64, 4, 0xFFFFFFFF, EMBT_EPARSE, ABS, 64},
        {"nwords off by one", ABS, 68, 4, 102, EMBT_EPARSE, ABS, 68},
        {"pruneidx_size -2", ABS, 84, 8, UINT64_MAX - 1, EMBT_EPARSE, ABS, 84},
        {"huge pruneidx_size", ABS, 84, 8, 1ull << 40, EMBT_EPARSE, ABS, 84},
        {"empty first word", WORD0, 0, 1, 0, EMBT_EPARSE, WORD0, 0},
        {"negative count", WORD0, 4, 8, UINT64_MAX, EMBT_EPARSE, WORD0, 4},
        {"first word typed label", WORD0, 12, 1, 1, EMBT_EPARSE, WORD0, 12},
        {"quantized input", QUANT_IN, 0, 1, 1, EMBT_ELIMIT, QUANT_IN, 0},
        {"quantization flag 2", QUANT_IN, 0, 1, 2, EMBT_EPARSE, QUANT_IN, 0},
        {"input rows off by one", QUANT_IN, 1, 8, 2102, EMBT_EPARSE, QUANT_IN, 1},
        {"input rows huge", QUANT_IN, 1, 8, 1ull << 62, EMBT_EPARSE, QUANT_IN, 1},
        {"input columns 9", QUANT_IN, 9, 8, 9, EMBT_EPARSE, QUANT_IN, 9},
        {"quantized output", QUANT_OUT, 0, 1, 1, EMBT_ELIMIT, QUANT_OUT, 0},
        {"output rows off by one", QUANT_OUT, 1, 8, 100, EMBT_EPARSE, QUANT_OUT, 1},
        {"nan in the last bucket row", QUANT_IN, 17 + 4 * 8 * 2100, 4, 0x7FC00000, EMBT_EPARSE,
         QUANT_IN, 17 + 4 * 8 * 2100},
        {"infinity in a word row", QUANT_IN, 17 + 4 * 3, 4, 0x7F800000, EMBT_EPARSE, QUANT_IN,
         17 + 4 * 3},
        {"nan in the output matrix", QUANT_OUT, 17 + 4 * 5, 4, 0xFFC00001, EMBT_EPARSE, QUANT_OUT,
         17 + 4 * 5},
    };
    size_t size;
    uint8_t *orig = load("sg.bin", &size);
    layout L = read_layout(orig, size);
    cr_assert_eq(L.nwords, 101);
    cr_assert_eq(L.in_rows, 2101);
    cr_assert_str_eq((const char *)orig + L.words_at[0], "the");
    uint8_t *d = malloc(size + 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const patch_case *c = &cases[i];
        memcpy(d, orig, size);
        size_t at = base_offset(&L, c->base) + c->at;
        for (uint8_t k = 0; k < c->len; k++)
            d[at + k] = (uint8_t)(c->value >> (8 * k));
        expect_failure(d, size, c->status, base_offset(&L, c->err_base) + c->err_at, c->name);
    }
    /* one byte more than fastText wrote */
    memcpy(d, orig, size);
    d[size] = 0;
    expect_failure(d, size + 1, EMBT_EPARSE, size, "trailing byte");
    free(d);
    free(orig);
}

Test(fasttext_bin, every_truncation_fails_cleanly_inside_the_prefix)
{
    size_t size;
    uint8_t *orig = load("sg.bin", &size);
    for (size_t n = 0; n < size; n += n < 1200 ? 1 : 997) {
        uint8_t *d = malloc(n ? n : 1);
        memcpy(d, orig, n);
        char what[64];
        snprintf(what, sizeof what, "prefix of %zu bytes", n);
        expect_failure(d, n, n < 4 ? EMBT_EFORMAT : EMBT_EPARSE, EMBT_NO_OFFSET, what);
        cr_assert_leq(embt_error_last()->offset, n, "%s: offset beyond the data", what);
        free(d);
    }
    free(orig);
}

Test(fasttext_bin, quantized_ftz_from_fasttext_is_refused)
{
    size_t size;
    uint8_t *d = load("sup.ftz", &size);
    /* the dictionary reads as in a .bin; the flag after it says the input is quantized */
    size_t p = 92;
    for (int32_t i = 0; i < rd32(d, 64); i++)
        p += strlen((const char *)d + p) + 1 + 8 + 1;
    int64_t pruned = rd64(d, 84);
    if (pruned > 0)
        p += 8 * (size_t)pruned;
    cr_assert_eq(d[p], 1);
    expect_failure(d, size, EMBT_ELIMIT, p, "sup.ftz");
    cr_assert_str_eq(embt_error_last()->section, "fasttext input matrix");
    cr_assert_not_null(
        strstr(embt_error_last()->message, ".ftz quantized models are not supported"));
    free(d);
}

/* ---- policies and options -------------------------------------------------------------------- */

/* sg.bin with word `victim` (an ASCII word) respelled as `as` (same length). */
static uint8_t *respelled(size_t *size_out, layout *L_out, const char *victim, const char *as)
{
    uint8_t *d = load("sg.bin", size_out);
    *L_out = read_layout(d, *size_out);
    for (int32_t i = 0; i < L_out->nwords; i++) {
        char *w = (char *)d + L_out->words_at[i];
        if (strcmp(w, victim) == 0) {
            cr_assert_eq(strlen(as), strlen(victim));
            memcpy(w, as, strlen(as));
            return d;
        }
    }
    cr_assert_fail("no word %s", victim);
    return NULL;
}

static int32_t word_index(const uint8_t *d, const layout *L, const char *word)
{
    for (int32_t i = 0; i < L->nwords; i++)
        if (strcmp((const char *)d + L->words_at[i], word) == 0)
            return i;
    return -1;
}

Test(fasttext_bin, invalid_utf8_word_fails_or_is_skipped_or_replaced)
{
    size_t size;
    layout L;
    uint8_t *d = respelled(&size, &L, "was", "w\xffs");
    int32_t at = word_index(d, &L, "w\xffs");
    expect_failure(d, size, EMBT_EPARSE, L.words_at[at] + 1, "bad utf-8");

    const char *out = tu_path("skip.embt");
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    embt_convert_report rep;
    memset(&rep, 0, sizeof rep);
    o.on_bad_utf8 = EMBT_BAD_UTF8_SKIP;
    TU_OK(import_bytes(d, size, out, &o, &rep));
    cr_assert_eq(rep.utf8_skipped, 1);
    cr_assert_eq(rep.rows, (uint64_t)L.nwords - 1);
    embt_file *f = open_out(out);
    cr_assert_eq(embt_vocab_size(vocab(f, "words")), (uint32_t)L.nwords - 1);
    cr_assert_eq(embt_table_rows(table(f, "input")), L.in_rows);
    /* the words after it keep their vectors, one id lower */
    size_t osize;
    uint8_t *orig = load("sg.bin", &osize);
    const char *full_path = tu_path("full.embt");
    TU_OK(import_bytes(orig, osize, full_path, NULL, NULL));
    embt_file *full = open_out(full_path);
    cr_assert_eq(memcmp(embt_table_row_f32(table(f, "embedding"), (uint64_t)at),
                        embt_table_row_f32(table(full, "embedding"), (uint64_t)at + 1), 8 * 4),
                 0);
    embt_file_close(full);
    embt_file_close(f);
    free(orig);

    out = tu_path("replace.embt");
    memset(&rep, 0, sizeof rep);
    o.on_bad_utf8 = EMBT_BAD_UTF8_REPLACE;
    TU_OK(import_bytes(d, size, out, &o, &rep));
    cr_assert_eq(rep.utf8_replaced, 1);
    f = open_out(out);
    uint32_t id;
    TU_OK(embt_vocab_find(&id, vocab(f, "words"), "w\xef\xbf\xbds", 5));
    cr_assert_eq(id, (uint32_t)at);
    embt_file_close(f);
    free(d);
}

Test(fasttext_bin, duplicate_word_fails_or_keeps_first_or_last)
{
    size_t size;
    layout L;
    /* "z" becomes a second "y": both are single letters of the corpus */
    uint8_t *d = respelled(&size, &L, "z", "y");
    int32_t first = word_index(d, &L, "y"), second = -1;
    for (int32_t i = first + 1; i < L.nwords; i++)
        if (strcmp((const char *)d + L.words_at[i], "y") == 0)
            second = i;
    cr_assert_geq(second, 0);
    expect_failure(d, size, EMBT_EPARSE, L.words_at[second], "duplicate");

    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    for (int policy = 0; policy < 2; policy++) {
        o.on_duplicate = policy == 0 ? EMBT_DUPLICATE_FIRST : EMBT_DUPLICATE_LAST;
        const char *out = tu_path(policy == 0 ? "first.embt" : "last.embt");
        embt_convert_report rep;
        memset(&rep, 0, sizeof rep);
        TU_OK(import_bytes(d, size, out, &o, &rep));
        cr_assert_eq(rep.duplicates_dropped, 1);
        embt_file *f = open_out(out);
        cr_assert_eq(embt_vocab_size(vocab(f, "words")), (uint32_t)L.nwords - 1);
        uint32_t id;
        TU_OK(embt_vocab_find(&id, vocab(f, "words"), "y", 1));
        cr_assert_eq(id, (uint32_t)first);
        /* the kept vector: the chosen dictionary entry's row plus the n-grams of "y" */
        int64_t rows[64];
        size_t n = ref_rows(rows, "y", policy == 0 ? first : second, &L, NULL);
        double ref[64], mag[64];
        ref_mean(ref, mag, d, &L, rows, n);
        const float *row = embt_table_row_f32(table(f, "embedding"), id);
        for (int j = 0; j < L.dim; j++)
            cr_assert_leq(fabs(row[j] - ref[j]), 1e-6 * mag[j], "policy %d column %d", policy, j);
        embt_file_close(f);
    }
    free(d);
}

Test(fasttext_bin, limit_dtype_and_compression_apply_to_the_word_table)
{
    size_t size;
    uint8_t *d = load("sg.bin", &size);
    layout L = read_layout(d, size);
    const char *full_path = tu_path("full.embt"), *out = tu_path("limited.embt");
    TU_OK(import_bytes(d, size, full_path, NULL, NULL));
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.limit = 10;
    o.dtype = EMBT_DTYPE_F16;
    o.flags = EMBT_CONVERT_COMPRESS;
    o.table_name = "vectors";
    o.vocab_name = "tokens";
    TU_OK(import_bytes(d, size, out, &o, NULL));
    embt_file *full = open_out(full_path), *f = open_out(out);
    const embt_table *t = table(f, "vectors");
    cr_assert_eq(embt_vocab_size(vocab(f, "tokens")), 10);
    cr_assert_eq(embt_table_rows(t), 10);
    cr_assert_eq(embt_table_dtype(t), EMBT_DTYPE_F16);
    /* input stays whole: unknown words need every bucket */
    cr_assert_eq(embt_table_rows(table(f, "input")), L.in_rows);
    embt_section_info info;
    bool compressed = false;
    for (size_t i = 0; i < embt_file_section_count(f); i++) {
        TU_OK(embt_file_section(&info, f, i));
        compressed |= info.codec != 0;
    }
    cr_assert(compressed);
    const embt_table *ft = table(full, "embedding");
    for (uint64_t r = 0; r < 10; r++) {
        float got[8];
        uint16_t h[8];
        TU_OK(embt_table_read_row_f32(got, t, r));
        embt_f32_to_f16(h, embt_table_row_f32(ft, r), 8);
        float want[8];
        embt_f16_to_f32(want, h, 8);
        cr_assert_eq(memcmp(got, want, sizeof got), 0, "row %llu", (unsigned long long)r);
    }
    embt_file_close(f);
    embt_file_close(full);
    free(d);
}

Test(fasttext_bin, nonfinite_values_are_kept_and_counted_when_allowed)
{
    size_t size;
    uint8_t *d = load("sg.bin", &size);
    layout L = read_layout(d, size);
    wr32(d, L.in_data + 4 * 3, 0x7F800000); /* row 0 ("the") column 3: +inf */
    const char *out = tu_path("out.embt");
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.flags = EMBT_CONVERT_ALLOW_NONFINITE;
    embt_convert_report rep;
    memset(&rep, 0, sizeof rep);
    TU_OK(import_bytes(d, size, out, &o, &rep));
    cr_assert_eq(rep.nonfinite, 2); /* the input value and the vector of "the" */
    embt_file *f = open_out(out);
    cr_assert(isinf(embt_table_row_f32(table(f, "embedding"), 0)[3]));
    embt_file_close(f);
    free(d);
}

Test(fasttext_bin, output_is_deterministic)
{
    size_t size;
    uint8_t *d = load("sup.bin", &size);
    TU_OK(import_bytes(d, size, tu_path("a.embt"), NULL, NULL));
    TU_OK(import_bytes(d, size, tu_path("b.embt"), NULL, NULL));
    cr_assert(tu_same_file(tu_path("a.embt"), tu_path("b.embt")));
    free(d);
}

/* Fails allocation number `oom_fail_at` (1-based) of the library; counts live blocks. */
static size_t oom_calls, oom_fail_at;
static long oom_live;

static void *oom_malloc(size_t size)
{
    if (++oom_calls == oom_fail_at)
        return NULL;
    void *p = malloc(size);
    oom_live += p != NULL;
    return p;
}

static void *oom_realloc(void *ptr, size_t size)
{
    if (++oom_calls == oom_fail_at)
        return NULL;
    void *p = realloc(ptr, size);
    oom_live += p && !ptr;
    return p;
}

static void oom_free(void *ptr)
{
    oom_live -= ptr != NULL;
    free(ptr);
}

Test(fasttext_bin, every_allocation_failure_is_enomem_without_leaks_or_output)
{
    size_t size;
    uint8_t *d = load("sup.bin", &size);
    TU_OK(embt_set_allocator(oom_malloc, oom_realloc, oom_free));
    const char *out = tu_path("oom.embt");
    embt_status st = EMBT_ENOMEM;
    size_t failures = 0;
    for (oom_fail_at = 1; st != EMBT_OK; oom_fail_at++) {
        oom_calls = 0;
        oom_live = 0;
        st = import_bytes(d, size, out, NULL, NULL);
        cr_assert_eq(oom_live, 0, "allocation %zu: %ld blocks leaked", oom_fail_at, oom_live);
        if (st == EMBT_OK)
            break;
        cr_assert_eq(st, EMBT_ENOMEM, "allocation %zu: %s (%s)", oom_fail_at, embt_status_name(st),
                     embt_error_last()->message);
        cr_assert_not(tu_exists(out));
        cr_assert_eq(tu_count_temp(tu_dir, "oom.embt"), 0);
        failures++;
    }
    cr_assert_gt(failures, 5);
    cr_assert(tu_exists(out));
    free(d);
}

/* ---- pruned dictionary (fastText writes it only with quantized input; built here by hand) ---- */

#define PRUNE_EVERY 3

static int64_t prune_remap(uint32_t bucket)
{
    return bucket % PRUNE_EVERY == 0 ? (int64_t)(bucket / PRUNE_EVERY) : -1;
}

Test(fasttext_bin, pruned_dictionary_remaps_ngram_rows)
{
    size_t size;
    uint8_t *orig = load("sg.bin", &size);
    layout L = read_layout(orig, size);
    size_t k = ((size_t)L.bucket + PRUNE_EVERY - 1) / PRUNE_EVERY, dimb = (size_t)L.dim * 4;
    size_t out_part = size - L.quant_out;
    size_t psize = L.dict_end + 8 * k + 17 + ((size_t)L.nwords + k) * dimb + out_part;
    uint8_t *d = malloc(psize);
    memcpy(d, orig, L.dict_end);
    wr64(d, 84, k);
    size_t p = L.dict_end;
    for (size_t i = 0; i < k; i++) { /* pairs in descending bucket order: the reader sorts */
        size_t b = (k - 1 - i) * PRUNE_EVERY;
        wr32(d, p, (uint32_t)b);
        wr32(d, p + 4, (uint32_t)(b / PRUNE_EVERY));
        p += 8;
    }
    d[p] = 0;
    wr64(d, p + 1, (uint64_t)L.nwords + k);
    wr64(d, p + 9, (uint64_t)L.dim);
    p += 17;
    memcpy(d + p, orig + L.in_data, (size_t)L.nwords * dimb);
    p += (size_t)L.nwords * dimb;
    for (size_t r = 0; r < k; r++, p += dimb)
        memcpy(d + p, orig + L.in_data + ((size_t)L.nwords + r * PRUNE_EVERY) * dimb, dimb);
    memcpy(d + p, orig + L.quant_out, out_part);
    cr_assert_eq(p + out_part, psize);

    const char *out = tu_path("pruned.embt");
    TU_OK(import_bytes(d, psize, out, NULL, NULL));
    embt_file *f = open_out(out);
    layout PL = read_layout(d, psize);
    cr_assert_eq(PL.in_rows, (uint64_t)L.nwords + k);
    check_against_reference(f, d, &PL, prune_remap);
    const embt_table *pi = table(f, "pruneidx");
    cr_assert_eq(embt_table_rows(pi), k);
    const uint8_t *pairs = embt_table_data(pi);
    for (size_t i = 0; i < k; i++) {
        cr_assert_eq(rd32(pairs, 8 * i), (int32_t)(i * PRUNE_EVERY));
        cr_assert_eq(rd32(pairs, 8 * i + 4), (int32_t)i);
    }
    embt_file_close(f);

    /* a pair whose row is beyond the pruned rows, and a repeated bucket */
    wr32(d, L.dict_end + 4, (uint32_t)k);
    expect_failure(d, psize, EMBT_EPARSE, L.dict_end + 4, "pruned row out of range");
    wr32(d, L.dict_end + 4, 0);
    wr32(d, L.dict_end + 8, (uint32_t)((k - 1) * PRUNE_EVERY));
    expect_failure(d, psize, EMBT_EPARSE, L.dict_end + 8, "repeated bucket");
    free(d);
    free(orig);
}

/* ---- sniffing and the subword module ---------------------------------------------------------- */

Test(fasttext_bin, sniff_wants_the_magic_and_a_version)
{
    size_t size;
    uint8_t *d = load("sg.bin", &size);
    cr_assert(embt__sniff_fasttext_bin(d, size));
    cr_assert(embt__sniff_fasttext_bin(d, 8));
    cr_assert_not(embt__sniff_fasttext_bin(d, 7));
    uint8_t *q = load("sup.ftz", &size);
    cr_assert(embt__sniff_fasttext_bin(q, size));
    d[4] = 0xFF, d[5] = 0xFF, d[6] = 0xFF, d[7] = 0xFF;
    cr_assert_not(embt__sniff_fasttext_bin(d, size));
    d[0] ^= 1;
    d[4] = 12, d[5] = 0, d[6] = 0, d[7] = 0;
    cr_assert_not(embt__sniff_fasttext_bin(d, size));
    free(q);
    free(d);
}

Test(fasttext_bin, hash_sign_extends_bytes_above_0x7f)
{
    /* FNV-1a 32 of ASCII is the textbook one; "é" (C3 A9) xors sign-extended bytes */
    cr_assert_eq(embt__subword_hash((const uint8_t *)"", 0), 2166136261u);
    cr_assert_eq(embt__subword_hash((const uint8_t *)"a", 1), 0xE40C292Cu);
    cr_assert_eq(embt__subword_hash((const uint8_t *)"foobar", 6), 0xBF9CF968u);
    uint32_t h = 2166136261u;
    h = (h ^ 0xFFFFFFC3u) * 16777619u;
    h = (h ^ 0xFFFFFFA9u) * 16777619u;
    cr_assert_eq(embt__subword_hash((const uint8_t *)"\xc3\xa9", 2), h);
    uint32_t unsigned_h = ((2166136261u ^ 0xC3u) * 16777619u ^ 0xA9u) * 16777619u;
    cr_assert_neq(h, unsigned_h);
}

Test(fasttext_bin, ngrams_match_the_reference_for_every_corpus_word)
{
    size_t n;
    char *text = (char *)load("corpus.txt", &n);
    text[n] = '\0';
    static const int settings[][3] = {{3, 5, 2000}, {2, 3, 500}, {1, 6, 97}, {0, 2, 1}, {4, 3, 50}};
    char *save = NULL;
    size_t words = 0;
    for (char *w = strtok_r(text, " \n", &save); w; w = strtok_r(NULL, " \n", &save), words++) {
        for (size_t s = 0; s < sizeof settings / sizeof settings[0]; s++) {
            const int *c = settings[s];
            uint32_t want[512], got[512];
            size_t len = strlen(w);
            size_t nw = ref_ngrams(want, 512, w, c[0], c[1], c[2]);
            size_t ng = embt__subword_buckets(got, 512, (const uint8_t *)w, len, (uint32_t)c[0],
                                              (uint32_t)c[1], (uint32_t)c[2]);
            cr_assert_eq(ng, nw, "'%s' minn %d maxn %d", w, c[0], c[1]);
            cr_assert_eq(memcmp(got, want, nw * sizeof *got), 0, "'%s' minn %d", w, c[0]);
            cr_assert_leq(ng, embt__subword_max(len, (uint32_t)c[0], (uint32_t)c[1]));
            /* a short buffer still counts them all */
            cr_assert_eq(embt__subword_buckets(got, 1, (const uint8_t *)w, len, (uint32_t)c[0],
                                               (uint32_t)c[1], (uint32_t)c[2]),
                         nw);
        }
    }
    cr_assert_gt(words, 1000);
    uint32_t b[8];
    cr_assert_eq(embt__subword_buckets(b, 8, (const uint8_t *)"</s>", 4, 1, 6, 100), 0);
    cr_assert_eq(embt__subword_buckets(b, 8, (const uint8_t *)"ab", 2, 3, 0, 100), 0);
    /* "é" alone: "<é", "é>", "<é>" for n in [2, 3]; the character counts once */
    cr_assert_eq(embt__subword_buckets(b, 8, (const uint8_t *)"\xc3\xa9", 2, 2, 3, 1000), 3);
    free(text);
}
