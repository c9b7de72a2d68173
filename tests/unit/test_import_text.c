/* test_import_text.c: word2vec/GloVe text import: the exact float parser against strtof, accepted
 * inputs, every malformed class with its line and column, a round trip of the bundled sample. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <embt/embt.h>

#include "internal.h"
#include "parse_float.h"
#include "test_util.h"

/* ---- helpers -------------------------------------------------------------------------------- */

static void make_tmp_dir(void);
static void remove_tmp_dir(void);
TestSuite(import_text, .init = make_tmp_dir, .fini = remove_tmp_dir);

/* A private temporary directory per test (Criterion forks each test). */
static char tmp_dir[64];
static char in_path[128];
static char out_path[128];

static void make_tmp_dir(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/embt-import-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp_dir));
    snprintf(in_path, sizeof in_path, "%s/in.txt", tmp_dir);
    snprintf(out_path, sizeof out_path, "%s/out.embt", tmp_dir);
}

static void remove_tmp_dir(void)
{
    DIR *d = opendir(tmp_dir);
    if (!d)
        return;
    struct dirent *ent;
    char path[400];
    while ((ent = readdir(d)) != NULL) {
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", tmp_dir, ent->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(tmp_dir);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

static void write_text(const char *text)
{
    write_file(in_path, text, strlen(text));
}

/* Files in the temporary directory other than the input. */
static int count_other_files(void)
{
    DIR *d = opendir(tmp_dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL)
        if (strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0 &&
            strcmp(ent->d_name, "in.txt") != 0)
            n++;
    closedir(d);
    return n;
}

static embt_status convert(const embt_convert_options *opts)
{
    return embt_convert_file(in_path, out_path, opts);
}

/* Opens the output and checks the vocabulary and table against tokens[] and values (rows, dim). */
static void check_output(const char *const *tokens, const float *values, size_t rows, size_t dim,
                         const char *table_name, const char *vocab_name)
{
    embt_file *f = NULL;
    const embt_vocab *v = NULL;
    const embt_table *t = NULL;
    cr_assert_eq(embt_file_open(&f, out_path, NULL), EMBT_OK, "%s", embt_error_last()->message);
    cr_assert_eq(embt_file_verify(f), EMBT_OK, "%s", embt_error_last()->message);
    cr_assert_eq(embt_file_vocab(&v, f, vocab_name ? vocab_name : "words"), EMBT_OK);
    cr_assert_eq(embt_file_table(&t, f, table_name ? table_name : "embedding"), EMBT_OK);
    cr_assert_eq(embt_table_vocab(t), v);
    cr_assert_eq(embt_vocab_size(v), rows);
    cr_assert_eq(embt_table_rows(t), rows);
    cr_assert_eq(embt_table_cols(t), dim);
    float row[64];
    cr_assert_leq(dim, 64);
    for (size_t i = 0; i < rows; i++) {
        size_t len = 0;
        const char *tok = embt_vocab_token(v, (uint32_t)i, &len);
        cr_assert_not_null(tok);
        cr_assert_eq(len, strlen(tokens[i]), "token %zu", i);
        cr_assert_eq(memcmp(tok, tokens[i], len), 0, "token %zu", i);
        uint32_t id = 0;
        cr_assert_eq(embt_vocab_find(&id, v, tokens[i], strlen(tokens[i])), EMBT_OK);
        cr_assert_eq(id, i);
        cr_assert_eq(embt_table_read_row_f32(row, t, i), EMBT_OK);
        for (size_t k = 0; k < dim; k++)
            cr_assert_eq(memcmp(&row[k], &values[i * dim + k], 4), 0, "row %zu value %zu: %a vs %a",
                         i, k, (double)row[k], (double)values[i * dim + k]);
    }
    embt_file_close(f);
}

static void check_metadata(const char *expected)
{
    embt_file *f = NULL;
    cr_assert_eq(embt_file_open(&f, out_path, NULL), EMBT_OK);
    size_t len = 0;
    const char *meta = embt_file_metadata(f, &len);
    cr_assert_not_null(meta);
    cr_assert_eq(len, strlen(expected), "metadata '%.*s'", (int)len, meta);
    cr_assert_eq(memcmp(meta, expected, len), 0, "metadata '%.*s'", (int)len, meta);
    embt_file_close(f);
}

/* ---- the float parser against strtof -------------------------------------------------------- */

/* splitmix64: a small deterministic generator for the random decimal strings */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static unsigned rng_below(uint64_t *state, unsigned n)
{
    return (unsigned)(rng_next(state) % n);
}

static size_t put_digits(char *p, uint64_t *rng, unsigned n, bool nonzero_first)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (char)('0' + (i == 0 && nonzero_first ? 1 + rng_below(rng, 9) : rng_below(rng, 10)));
    return n;
}

/* One random decimal string of the given shape into buf (NUL-terminated); returns its length. */
static size_t random_decimal(char *buf, uint64_t *rng, unsigned shape)
{
    size_t n = 0;
    unsigned sign = rng_below(rng, 4);
    if (sign == 0)
        buf[n++] = '-';
    else if (sign == 1 && shape != 0)
        buf[n++] = '+';
    switch (shape) {
    case 0: /* short decimals as GloVe and word2vec print them */
        n += put_digits(buf + n, rng, 1 + rng_below(rng, 2), false);
        buf[n++] = '.';
        n += put_digits(buf + n, rng, 1 + rng_below(rng, 7), false);
        break;
    case 1: /* long digit strings, the point anywhere */
    {
        unsigned total = 8 + rng_below(rng, 40);
        unsigned point = rng_below(rng, total + 1);
        n += put_digits(buf + n, rng, point, false);
        buf[n++] = '.';
        n += put_digits(buf + n, rng, total - point, false);
        if (point == 0 && total == 0)
            buf[n++] = '0';
        break;
    }
    case 2: /* mantissa with an exponent over the whole float range and beyond */
        n += put_digits(buf + n, rng, 1 + rng_below(rng, 9), true);
        if (rng_below(rng, 2)) {
            buf[n++] = '.';
            n += put_digits(buf + n, rng, rng_below(rng, 9), false);
        }
        n += (size_t)sprintf(buf + n, "%c%d", rng_below(rng, 2) ? 'e' : 'E',
                             (int)rng_below(rng, 110) - 60);
        break;
    case 3: /* subnormals and the underflow boundary */
        n += put_digits(buf + n, rng, 1, true);
        buf[n++] = '.';
        n += put_digits(buf + n, rng, rng_below(rng, 12), false);
        n += (size_t)sprintf(buf + n, "e-%u", 37 + rng_below(rng, 12));
        break;
    case 4: /* huge values around FLT_MAX and overflow */
        n += put_digits(buf + n, rng, 1 + rng_below(rng, 10), true);
        n += (size_t)sprintf(buf + n, "e%u", 30 + rng_below(rng, 12));
        break;
    case 5: /* exact midpoints between adjacent floats: the rounding ties */
    {
        uint32_t bits = (uint32_t)rng_next(rng) & 0x7F7FFFFFu;
        float a, b;
        memcpy(&a, &bits, 4);
        b = nextafterf(a, INFINITY);
        n += (size_t)sprintf(buf + n, "%.60g", ((double)a + (double)b) / 2);
        break;
    }
    case 6: /* shortest round-trip text of random floats (gensim, finalfusion) */
    {
        uint32_t bits = (uint32_t)rng_next(rng) & 0x7FFFFFFFu;
        float a;
        memcpy(&a, &bits, 4);
        if (isnan(a))
            a = 1.5f;
        n += (size_t)sprintf(buf + n, "%.9g", (double)a);
        break;
    }
    case 7: /* integers, leading zeros, bare points */
    {
        unsigned kind = rng_below(rng, 4);
        if (kind == 0)
            n += put_digits(buf + n, rng, 1 + rng_below(rng, 12), false);
        else if (kind == 1)
            n += (size_t)sprintf(buf + n, "000%u.%u", rng_below(rng, 1000), rng_below(rng, 1000));
        else if (kind == 2)
            n += (size_t)sprintf(buf + n, ".%u", rng_below(rng, 100000));
        else
            n += (size_t)sprintf(buf + n, "%u.", rng_below(rng, 100000));
        break;
    }
    default: /* short decimals with a small exponent: the fast path's edges */
        n += put_digits(buf + n, rng, 1 + rng_below(rng, 8), false);
        buf[n++] = '.';
        n += put_digits(buf + n, rng, rng_below(rng, 5), false);
        n += (size_t)sprintf(buf + n, "e%d", (int)rng_below(rng, 25) - 12);
        break;
    }
    buf[n] = '\0';
    return n;
}

/* Compares embt__parse_f32 with strtof (C locale) on s: same acceptance, same bits. */
static void check_against_strtof(const char *s, size_t n)
{
    char *end = NULL;
    float expected = strtof(s, &end);
    bool strtof_ok = n > 0 && end == s + n &&
                     !(s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\v' ||
                       s[0] == '\f' || s[0] == '\r');
    float got = 0;
    int rc = embt__parse_f32(&got, s, n);
    cr_assert_eq(rc == 0, strtof_ok, "'%s': parser %d, strtof %s", s, rc,
                 strtof_ok ? "accepts" : "refuses");
    if (strtof_ok)
        cr_assert_eq(memcmp(&got, &expected, 4), 0, "'%s': %a vs strtof %a", s, (double)got,
                     (double)expected);
}

Test(import_text, float_parser_matches_strtof_on_random_decimals, .timeout = 300)
{
    setlocale(LC_ALL, "C");
    cr_assert_eq(embt__parse_float_init(), EMBT_OK);
    uint64_t rng = 20240611;
    char buf[256];
    const unsigned shapes = 9;
    const unsigned per_shape = 400000; /* 3.6 million strings in all */
    for (unsigned shape = 0; shape < shapes; shape++)
        for (unsigned i = 0; i < per_shape; i++) {
            size_t n = random_decimal(buf, &rng, shape);
            check_against_strtof(buf, n);
        }
}

Test(import_text, float_parser_matches_strtof_on_edge_cases)
{
    setlocale(LC_ALL, "C");
    cr_assert_eq(embt__parse_float_init(), EMBT_OK);
    static const char *const cases[] = {
        "0",
        "-0",
        "+0",
        "-0.0",
        "0.0000000000000000000000000000001",
        "16777216",
        "16777217",
        "16777215.5",
        "1e10",
        "1e-10",
        "1e11",
        "1e-11",
        "0.1",
        "0.2",
        "0.3",
        "1.17549435e-38",
        "1.4e-45",
        "7e-46",
        "7.0064923216240854e-46",
        "3.4028235e38",
        "3.40282357e38",
        "3.4028236e38",
        "1e39",
        "-1e39",
        "nan",
        "NaN",
        "-nan",
        "inf",
        "-inf",
        "Infinity",
        "infinity",
        "0x1p3",
        "0x1.8p-1",
        "1e",
        "1e+",
        "e5",
        ".",
        "-",
        "+",
        "",
        "--1",
        "1.2.3",
        " 1",
        "1 ",
        "1,5",
        "0.5f",
        "1e99999999999",
        "1e-99999999999",
        "0e99999",
        ".5",
        "5.",
        "-.5e1",
        "123456789012345678901234567890",
        "0.00000000000000000000000000001e30",
        "9999999999999999999999",
        "1.00000005960464477539062",
        "1.000000059604644775390625",
        "1.0000000596046447753906250001",
        "-0.5",
        "0.038194",
        "-3.0243",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_against_strtof(cases[i], strlen(cases[i]));
}

Test(import_text, float_parser_matches_strtof_on_the_real_glove_file, .timeout = 600)
{
    const char *path = tu_source("../data/glove.6B.100d.txt");
    FILE *f = fopen(path, "rb");
    if (!f)
        cr_skip_test("%s not present (fetch it with ../shared/scripts/fetch-real-data.sh)", path);
    setlocale(LC_ALL, "C");
    cr_assert_eq(embt__parse_float_init(), EMBT_OK);
    static char line[1 << 16];
    uint64_t values = 0;
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
            line[--n] = '\0';
        char *p = strchr(line, ' ');
        cr_assert_not_null(p);
        while (p && *p) {
            p++;
            char *e = strchr(p, ' ');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            char save = p[len];
            p[len] = '\0';
            float got = 0;
            cr_assert_eq(embt__parse_f32(&got, p, len), 0, "'%s'", p);
            float expected = strtof(p, NULL);
            if (memcmp(&got, &expected, 4) != 0)
                cr_assert_fail("'%s': %a vs strtof %a", p, (double)got, (double)expected);
            p[len] = save;
            p = e;
            values++;
        }
    }
    fclose(f);
    cr_assert_eq(values, UINT64_C(34147900));
}

/* ---- accepted inputs ------------------------------------------------------------------------ */

Test(import_text, word2vec_with_header)
{
    write_text("3 2\nfoo 1 2\nbar 0.5 -0.25\nbaz 1e-3 7\n");
    cr_assert_eq(convert(NULL), EMBT_OK, "%s", embt_error_last()->message);
    const char *tokens[] = {"foo", "bar", "baz"};
    const float values[] = {1, 2, 0.5f, -0.25f, 1e-3f, 7};
    check_output(tokens, values, 3, 2, NULL, NULL);
    check_metadata("source: {format: word2vec, rows: 3, dim: 2}\n");
}

Test(import_text, glove_without_header_with_trailing_spaces_and_crlf)
{
    write_text("the 0.1 0.2 0.3 \r\nof -0.038194 0.72812 1\t\r\nand 3 4 5\r\n\r\n\n");
    cr_assert_eq(convert(NULL), EMBT_OK, "%s", embt_error_last()->message);
    const char *tokens[] = {"the", "of", "and"};
    const float values[] = {0.1f, 0.2f, 0.3f, -0.038194f, 0.72812f, 1, 3, 4, 5};
    check_output(tokens, values, 3, 3, NULL, NULL);
    check_metadata("source: {format: glove, rows: 3, dim: 3}\n");
}

Test(import_text, tokens_with_spaces_non_ascii_and_numbers)
{
    write_text("first 1 2\nnew york 3 4\ncaf\xc3\xa9 5 6\n\xe6\x97\xa5\xe6\x9c\xac 7 8\n-0.5 9 "
               "10\nlast\tone 11 12");
    cr_assert_eq(convert(NULL), EMBT_OK, "%s", embt_error_last()->message);
    const char *tokens[] = {"first", "new york", "caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac",
                            "-0.5",  "last\tone"};
    const float values[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    check_output(tokens, values, 6, 2, NULL, NULL);
}

Test(import_text, word2vec_header_with_a_numeric_first_token)
{
    write_text("2 3\n-0.5 1 2 3\n1 4 5 6\n");
    cr_assert_eq(convert(NULL), EMBT_OK, "%s", embt_error_last()->message);
    const char *tokens[] = {"-0.5", "1"};
    const float values[] = {1, 2, 3, 4, 5, 6};
    check_output(tokens, values, 2, 3, NULL, NULL);
}

Test(import_text, gzip_input_in_two_members)
{
    /* two gzip members back to back, as `cat a.gz b.gz` makes */
    const char *parts[] = {"alpha 1 2\nbeta 3 4\n", "gamma 5 6\n"};
    FILE *f = fopen(in_path, "wb");
    cr_assert_not_null(f);
    for (int i = 0; i < 2; i++) {
        char tmp[160];
        snprintf(tmp, sizeof tmp, "%s/part.gz", tmp_dir);
        gzFile gz = gzopen(tmp, "wb9");
        cr_assert_not_null(gz);
        cr_assert_eq(gzwrite(gz, parts[i], (unsigned)strlen(parts[i])), (int)strlen(parts[i]));
        cr_assert_eq(gzclose(gz), Z_OK);
        FILE *g = fopen(tmp, "rb");
        char buf[512];
        size_t n = fread(buf, 1, sizeof buf, g);
        fclose(g);
        unlink(tmp);
        cr_assert_eq(fwrite(buf, 1, n, f), n);
    }
    fclose(f);
    cr_assert_eq(convert(NULL), EMBT_OK, "%s", embt_error_last()->message);
    const char *tokens[] = {"alpha", "beta", "gamma"};
    const float values[] = {1, 2, 3, 4, 5, 6};
    check_output(tokens, values, 3, 2, NULL, NULL);
}

Test(import_text, truncated_gzip_is_refused_without_output)
{
    const char *text = "alpha 1 2\nbeta 3 4\n";
    uLongf cap = 256;
    Bytef buf[256];
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    cr_assert_eq(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)text;
    zs.avail_in = (uInt)strlen(text);
    zs.next_out = buf;
    zs.avail_out = (uInt)cap;
    cr_assert_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t n = cap - zs.avail_out;
    deflateEnd(&zs);
    write_file(in_path, buf, n - 6);
    embt_status rc = convert(NULL);
    cr_assert_eq(rc, EMBT_EFORMAT, "%s", embt_status_name(rc));
    cr_assert_eq(count_other_files(), 0);
}

Test(import_text, options_limit_names_dtype_and_compression)
{
    write_text("a 0.1 0.2\nb 0.3 0.4\nc 0.5 0.6\n");
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.limit = 2;
    o.table_name = "vectors";
    o.vocab_name = "tokens";
    o.dtype = EMBT_DTYPE_F16;
    o.flags = EMBT_CONVERT_COMPRESS;
    cr_assert_eq(convert(&o), EMBT_OK, "%s", embt_error_last()->message);
    const char *tokens[] = {"a", "b"};
    float values[] = {0.1f, 0.2f, 0.3f, 0.4f};
    uint16_t half[4];
    embt_f32_to_f16(half, values, 4);
    embt_f16_to_f32(values, half, 4);
    check_output(tokens, values, 2, 2, "vectors", "tokens");
    check_metadata("source: {format: glove, rows: 2, dim: 2}\n");
    embt_file *f = NULL;
    cr_assert_eq(embt_file_open(&f, out_path, NULL), EMBT_OK);
    const embt_table *t = NULL;
    cr_assert_eq(embt_file_table(&t, f, "vectors"), EMBT_OK);
    cr_assert_eq(embt_table_dtype(t), EMBT_DTYPE_F16);
    int compressed = 0;
    for (size_t i = 0; i < embt_file_section_count(f); i++) {
        embt_section_info info;
        cr_assert_eq(embt_file_section(&info, f, i), EMBT_OK);
        if (info.type == EMBT_SECTION_TABLE)
            compressed = info.codec == 1;
    }
    cr_assert(compressed);
    embt_file_close(f);
}

Test(import_text, nonfinite_values_when_allowed)
{
    write_text("a nan 1\nb -inf 1e39\n");
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.flags = EMBT_CONVERT_ALLOW_NONFINITE;
    cr_assert_eq(convert(&o), EMBT_OK, "%s", embt_error_last()->message);
    const char *tokens[] = {"a", "b"};
    const float values[] = {strtof("nan", NULL), 1, -INFINITY, INFINITY};
    check_output(tokens, values, 2, 2, NULL, NULL);
}

Test(import_text, output_is_deterministic)
{
    write_text("x 1 2\ny 3 4\n");
    cr_assert_eq(convert(NULL), EMBT_OK);
    char first[160];
    snprintf(first, sizeof first, "%s/first.embt", tmp_dir);
    cr_assert_eq(rename(out_path, first), 0);
    cr_assert_eq(convert(NULL), EMBT_OK);
    FILE *a = fopen(first, "rb"), *b = fopen(out_path, "rb");
    int ca, cb;
    do {
        ca = fgetc(a);
        cb = fgetc(b);
        cr_assert_eq(ca, cb);
    } while (ca != EOF);
    fclose(a);
    fclose(b);
}

Test(import_text, header_with_zero_rows_gives_an_empty_table)
{
    write_text("0 5\n");
    cr_assert_eq(convert(NULL), EMBT_OK, "%s", embt_error_last()->message);
    check_output(NULL, NULL, 0, 5, NULL, NULL);
}

typedef struct progress_log {
    int calls;
    uint64_t last_done, total;
    int cancel_at; /* 0: never */
} progress_log;

static int log_progress(uint64_t done, uint64_t total, void *payload)
{
    progress_log *log = payload;
    cr_assert_geq(done, log->last_done);
    cr_assert_leq(done, total);
    log->calls++;
    log->last_done = done;
    log->total = total;
    return log->cancel_at != 0 && log->calls >= log->cancel_at;
}

/* Many rows, so the conversion runs several batches on several threads. */
static void write_many_rows(size_t rows)
{
    FILE *f = fopen(in_path, "wb");
    cr_assert_not_null(f);
    for (size_t i = 0; i < rows; i++)
        fprintf(f, "w%zu %zu.25 -%zu.5 %zue-3\n", i, i, i % 97, i % 1013);
    fclose(f);
}

Test(import_text, progress_reaches_the_total)
{
    write_many_rows(200000);
    progress_log log = {0, 0, 0, 0};
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.progress = log_progress;
    o.payload = &log;
    cr_assert_eq(convert(&o), EMBT_OK, "%s", embt_error_last()->message);
    cr_assert_geq(log.calls, 2);
    cr_assert_eq(log.last_done, log.total);
    struct stat st;
    cr_assert_eq(stat(in_path, &st), 0);
    cr_assert_eq(log.total, (uint64_t)st.st_size);
}

Test(import_text, canceled_by_progress_leaves_no_output)
{
    write_many_rows(200000);
    progress_log log = {0, 0, 0, 1};
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.progress = log_progress;
    o.payload = &log;
    cr_assert_eq(convert(&o), EMBT_ECANCELED);
    cr_assert_eq(count_other_files(), 0);
}

Test(import_text, error_in_a_late_batch_reports_the_first_line)
{
    /* the 150,001st row is bad and so is a later one: the earlier is reported */
    FILE *f = fopen(in_path, "wb");
    for (size_t i = 0; i < 200000; i++) {
        if (i == 150000)
            fprintf(f, "w%zu 1 2 oops\n", i);
        else if (i == 190000)
            fprintf(f, "w%zu 1\n", i);
        else
            fprintf(f, "w%zu 1 2 3\n", i);
    }
    fclose(f);
    cr_assert_eq(convert(NULL), EMBT_EPARSE);
    cr_assert_eq(embt_error_last()->line, 150001);
    cr_assert_eq(embt_error_last()->column, (uint32_t)strlen("w150000 1 2 ") + 1);
    cr_assert_eq(count_other_files(), 0);
}

Test(import_text, duplicate_before_a_parse_error_in_the_same_batch_wins)
{
    write_text("a 1\nb 2\na 3\nc x\n");
    cr_assert_eq(convert(NULL), EMBT_EPARSE);
    cr_assert_eq(embt_error_last()->line, 3);
    cr_assert_eq(embt_error_last()->column, 1);
}

/* ---- malformed inputs ----------------------------------------------------------------------- */

/* Strings are held inline: Criterion may run a parameterized test in a re-executed process, where a
 * pointer to the parent's static data would not be valid. */
typedef struct bad_case {
    char name[40];
    char text[40];
    size_t len; /* 0: strlen(text) */
    embt_format from;
    uint32_t line, column;
} bad_case;

ParameterizedTestParameters(import_text, malformed_input_is_eparse_with_position)
{
    static bad_case cases[] = {
        {"ragged, too few values", "a 1 2\nb 3\n", 0, EMBT_FORMAT_AUTO, 2, 4},
        {"ragged, too many values", "a 1 2\nb 3 4 5\n", 0, EMBT_FORMAT_AUTO, 2, 3},
        {"blank line in the body", "a 1 2\n\nb 3 4\n", 0, EMBT_FORMAT_AUTO, 2, 1},
        {"not a number", "a 1 2\nb 3 x\n", 0, EMBT_FORMAT_AUTO, 2, 5},
        {"two points", "a 1 2\nb 1.2.3 4\n", 0, EMBT_FORMAT_AUTO, 2, 3},
        {"comma decimal", "a 1 2\nb 1,5 4\n", 0, EMBT_FORMAT_AUTO, 2, 3},
        {"number with crlf", "a 1 2\r\nb 3 4x\r\n", 0, EMBT_FORMAT_AUTO, 2, 5},
        {"nan", "a 1 2\nb nan 4\n", 0, EMBT_FORMAT_AUTO, 2, 3},
        {"infinity", "a 1 2\nb 4 -inf\n", 0, EMBT_FORMAT_AUTO, 2, 5},
        {"overflow to infinity", "a 1 2\nb 1e39 4\n", 0, EMBT_FORMAT_AUTO, 2, 3},
        {"duplicate token", "a 1 2\nb 3 4\na 5 6\n", 0, EMBT_FORMAT_AUTO, 3, 1},
        {"invalid utf-8", "a 1 2\nb\xff 3 4\n", 0, EMBT_FORMAT_AUTO, 2, 2},
        {"overlong utf-8", "a 1 2\nx\xc0\xaf 3 4\n", 0, EMBT_FORMAT_AUTO, 2, 2},
        {"utf-16 surrogate", "a 1 2\nxy\xed\xa0\x80 3 4\n", 0, EMBT_FORMAT_AUTO, 2, 3},
        {"empty token", "a 1 2\n 3 4\n", 0, EMBT_FORMAT_AUTO, 2, 1},
        {"header declares more rows", "3 2\na 1 2\nb 3 4\n", 0, EMBT_FORMAT_AUTO, 1, 1},
        {"header declares fewer rows", "1 2\na 1 2\nb 3 4\n", 0, EMBT_FORMAT_AUTO, 3, 1},
        {"header dim larger than the rows", "2 3\na 1 2\nb 3 4\n", 0, EMBT_FORMAT_AUTO, 2, 6},
        {"header dim smaller than the rows", "2 1\na 1 2\nb 3 4\n", 0, EMBT_FORMAT_WORD2VEC, 2, 3},
        {"forced word2vec without header", "a 1 2\nb 3 4\n", 0, EMBT_FORMAT_WORD2VEC, 1, 1},
        {"empty file", "", 0, EMBT_FORMAT_AUTO, 1, 1},
        {"only blank lines", "\n \r\n\t\n", 0, EMBT_FORMAT_AUTO, 1, 1},
        {"token without values", "lonely\n", 0, EMBT_FORMAT_AUTO, 1, 7},
        {"nul in a value", "a 1 2\nb 3 4\0\n", 13, EMBT_FORMAT_GLOVE, 2, 5},
    };
    return cr_make_param_array(bad_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(bad_case *c, import_text, malformed_input_is_eparse_with_position)
{
    write_file(in_path, c->text, c->len ? c->len : strlen(c->text));
    write_file(out_path, "old", 3); /* an existing output stays as it was */
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.from = c->from;
    embt_status rc = convert(&o);
    const embt_error *e = embt_error_last();
    cr_assert_eq(rc, EMBT_EPARSE, "%s: %s (%s)", c->name, embt_status_name(rc), e->message);
    cr_assert_eq(e->code, EMBT_EPARSE, "%s", c->name);
    cr_assert_eq(e->line, c->line, "%s: line %u, expected %u (%s)", c->name, e->line, c->line,
                 e->message);
    cr_assert_eq(e->column, c->column, "%s: column %u, expected %u (%s)", c->name, e->column,
                 c->column, e->message);
    cr_assert_neq(e->message[0], '\0');
    cr_assert_null(strchr(e->message, '\n'));
    cr_assert_eq(count_other_files(), 1, "%s: a temporary file remains", c->name);
    char buf[8] = {0};
    FILE *f = fopen(out_path, "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fread(buf, 1, sizeof buf, f), 3);
    fclose(f);
    cr_assert_str_eq(buf, "old");
}

Test(import_text, token_longer_than_65535_bytes)
{
    size_t n = 70000;
    char *text = malloc(n + 16);
    memset(text, 'x', n);
    memcpy(text + n, " 1 2\n", 6);
    write_file(in_path, text, strlen(text));
    free(text);
    cr_assert_eq(convert(NULL), EMBT_EPARSE);
    cr_assert_eq(embt_error_last()->line, 1);
    cr_assert_eq(embt_error_last()->column, 1);
    cr_assert_eq(count_other_files(), 0);
}

Test(import_text, line_longer_than_16_mib)
{
    size_t n = (17u << 20);
    char *text = malloc(n + 32);
    strcpy(text, "a 1 2\nb");
    size_t k = strlen(text);
    while (k < n) {
        memcpy(text + k, " 1", 2);
        k += 2;
    }
    memcpy(text + k, "\n", 2);
    write_file(in_path, text, strlen(text));
    free(text);
    cr_assert_eq(convert(NULL), EMBT_EPARSE);
    cr_assert_eq(embt_error_last()->line, 2);
    cr_assert_eq(embt_error_last()->column, (16u << 20) + 1);
    cr_assert_eq(count_other_files(), 0);
}

Test(import_text, binary_input_is_eformat)
{
    static const char bin[] = "2 3\nab\0\0\x80?\0\0\0@\n";
    write_file(in_path, bin, sizeof bin - 1);
    cr_assert_eq(convert(NULL), EMBT_EFORMAT);
    cr_assert_eq(count_other_files(), 0);
}

Test(import_text, missing_input_is_eio)
{
    unlink(in_path);
    cr_assert_eq(convert(NULL), EMBT_EIO);
    cr_assert_eq(embt_error_last()->sys_errno, ENOENT);
    cr_assert_str_eq(embt_error_last()->section, "input");
    cr_assert_eq(count_other_files(), 0);
}

Test(import_text, bad_options_are_einval)
{
    write_text("a 1\n");
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.version = 99;
    cr_assert_eq(convert(&o), EMBT_EINVAL);
    o.version = EMBT_CONVERT_OPTIONS_VERSION;
    o.from = (embt_format)99;
    cr_assert_eq(convert(&o), EMBT_EINVAL);
    o.from = EMBT_FORMAT_AUTO;
    o.on_duplicate = (embt_on_duplicate)7;
    cr_assert_eq(convert(&o), EMBT_EINVAL);
    o.on_duplicate = EMBT_DUPLICATE_ERROR;
    o.on_bad_utf8 = (embt_on_bad_utf8)7;
    cr_assert_eq(convert(&o), EMBT_EINVAL);
    o.on_bad_utf8 = EMBT_BAD_UTF8_ERROR;
    o.vocab_path = "words.txt"; /* text names its own tokens */
    cr_assert_eq(convert(&o), EMBT_EINVAL);
    o.vocab_path = NULL;
    o.dtype = EMBT_DTYPE_I32; /* not a conversion target */
    cr_assert_eq(convert(&o), EMBT_EINVAL);
    o.dtype = (embt_dtype)42;
    cr_assert_eq(convert(&o), EMBT_EINVAL);
    cr_assert_eq(count_other_files(), 0);
}

Test(import_text, format_names)
{
    embt_format f;
    cr_assert_str_eq(embt_format_name(EMBT_FORMAT_GLOVE), "glove");
    cr_assert_str_eq(embt_format_name(EMBT_FORMAT_WORD2VEC), "word2vec");
    cr_assert_null(embt_format_name(EMBT_FORMAT_AUTO));
    cr_assert_eq(embt_format_parse(&f, "word2vec"), EMBT_OK);
    cr_assert_eq(f, EMBT_FORMAT_WORD2VEC);
    cr_assert_eq(embt_format_parse(&f, "fasttext"), EMBT_EINVAL);
    static const char *const names[] = {"embt",         "word2vec", "glove", "word2vec-bin",
                                        "fasttext-bin", "npy",      "npz",   "safetensors"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        cr_assert_eq(embt_format_parse(&f, names[i]), EMBT_OK, "%s", names[i]);
        cr_assert_str_eq(embt_format_name(f), names[i]);
    }
}

/* ---- round trip of the bundled sample ------------------------------------------------------- */

Test(import_text, bundled_sample_round_trips_bit_exact, .timeout = 300)
{
    const char *sample = tu_source("data/sample/glove.6B.100d.20k.txt.gz");
    cr_assert_eq(embt_convert_file(sample, out_path, NULL), EMBT_OK, "%s",
                 embt_error_last()->message);

    embt_file *f = NULL;
    const embt_vocab *v = NULL;
    const embt_table *t = NULL;
    cr_assert_eq(embt_file_open(&f, out_path, NULL), EMBT_OK);
    cr_assert_eq(embt_file_verify(f), EMBT_OK, "%s", embt_error_last()->message);
    cr_assert_eq(embt_file_vocab(&v, f, "words"), EMBT_OK);
    cr_assert_eq(embt_file_table(&t, f, "embedding"), EMBT_OK);
    cr_assert_eq(embt_vocab_size(v), 20000);
    cr_assert_eq(embt_table_cols(t), 100);

    gzFile gz = gzopen(sample, "rb");
    cr_assert_not_null(gz);
    static char line[1 << 16];
    float row[100];
    uint32_t id = 0;
    while (gzgets(gz, line, sizeof line)) {
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
            line[--n] = '\0';
        char *sp = strchr(line, ' ');
        cr_assert_not_null(sp);
        size_t len = 0;
        const char *tok = embt_vocab_token(v, id, &len);
        cr_assert_eq(len, (size_t)(sp - line));
        cr_assert_eq(memcmp(tok, line, len), 0, "token %u", id);
        cr_assert_eq(embt_table_read_row_f32(row, t, id), EMBT_OK);
        char *p = sp;
        for (int k = 0; k < 100; k++) {
            char *end = NULL;
            float expected = strtof(p, &end);
            cr_assert_neq(end, p);
            cr_assert_eq(memcmp(&expected, &row[k], 4), 0, "row %u value %d", id, k);
            p = end;
        }
        id++;
    }
    gzclose(gz);
    cr_assert_eq(id, 20000);
    embt_file_close(f);
}

/* ---- lenient policies ----------------------------------------------------------------------- */

Test(import_text, duplicates_kept_first_are_counted)
{
    write_text("a 1 2\nb 3 4\na 5 6\nc 7 8\nb 9 10\n");
    embt_convert_report rep;
    memset(&rep, 0xff, sizeof rep);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.on_duplicate = EMBT_DUPLICATE_FIRST;
    o.report = &rep;
    cr_assert_eq(convert(&o), EMBT_OK, "%s", embt_error_last()->message);
    const char *tokens[] = {"a", "b", "c"};
    const float values[] = {1, 2, 3, 4, 7, 8};
    check_output(tokens, values, 3, 2, NULL, NULL);
    cr_assert_eq(rep.rows, 3);
    cr_assert_eq(rep.duplicates_dropped, 2);
    cr_assert_eq(rep.utf8_replaced + rep.utf8_skipped + rep.nonfinite, 0);
}

Test(import_text, duplicates_kept_last_take_the_first_place)
{
    write_text("a 1 2\nb 3 4\na 5 6\nc 7 8\nb 9 10\na 11 12\n");
    embt_convert_report rep;
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.on_duplicate = EMBT_DUPLICATE_LAST;
    o.report = &rep;
    cr_assert_eq(convert(&o), EMBT_OK, "%s", embt_error_last()->message);
    const char *tokens[] = {"a", "b", "c"};
    const float values[] = {11, 12, 9, 10, 7, 8};
    check_output(tokens, values, 3, 2, NULL, NULL);
    cr_assert_eq(rep.rows, 3);
    cr_assert_eq(rep.duplicates_dropped, 3);
}

Test(import_text, duplicates_kept_last_across_batches)
{
    /* 3,000 distinct rows of dim 400 span several batches; every token then repeats in reverse */
    FILE *f = fopen(in_path, "wb");
    size_t n = 3000, dim = 400;
    for (size_t pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < n; k++) {
            size_t i = pass ? n - 1 - k : k;
            fprintf(f, "w%zu", i);
            for (size_t j = 0; j < dim; j++)
                fprintf(f, " %zu", pass * 100000 + i + j);
            fputc('\n', f);
        }
    }
    fclose(f);
    embt_convert_report rep;
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.on_duplicate = EMBT_DUPLICATE_LAST;
    o.report = &rep;
    cr_assert_eq(convert(&o), EMBT_OK, "%s", embt_error_last()->message);
    cr_assert_eq(rep.rows, n);
    cr_assert_eq(rep.duplicates_dropped, n);
    embt_file *ef = NULL;
    const embt_table *t = NULL;
    const embt_vocab *v = NULL;
    cr_assert_eq(embt_file_open(&ef, out_path, NULL), EMBT_OK);
    cr_assert_eq(embt_file_table(&t, ef, "embedding"), EMBT_OK);
    cr_assert_eq(embt_file_vocab(&v, ef, NULL), EMBT_OK);
    for (size_t i = 0; i < n; i += 499) {
        size_t len = 0;
        char want[16];
        snprintf(want, sizeof want, "w%zu", i);
        const char *tok = embt_vocab_token(v, (uint32_t)i, &len);
        cr_assert_eq(len, strlen(want));
        cr_assert_eq(memcmp(tok, want, len), 0);
        const float *row = embt_table_row_f32(t, i);
        cr_assert_eq(row[0], (float)(100000 + i));
        cr_assert_eq(row[dim - 1], (float)(100000 + i + dim - 1));
    }
    embt_file_close(ef);
}

Test(import_text, bad_utf8_replaced_with_u_fffd)
{
    write_text("a 1\nb\xff\xfe 2\nc\xc3 3\n");
    embt_convert_report rep;
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.on_bad_utf8 = EMBT_BAD_UTF8_REPLACE;
    o.report = &rep;
    cr_assert_eq(convert(&o), EMBT_OK, "%s", embt_error_last()->message);
    const char *tokens[] = {"a", "b\xef\xbf\xbd\xef\xbf\xbd", "c\xef\xbf\xbd"};
    const float values[] = {1, 2, 3};
    check_output(tokens, values, 3, 1, NULL, NULL);
    cr_assert_eq(rep.utf8_replaced, 2);
    cr_assert_eq(rep.utf8_skipped, 0);
}

Test(import_text, bad_utf8_replacement_that_collides_is_a_duplicate)
{
    write_text("a\xef\xbf\xbd 1\na\xff 2\n");
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.on_bad_utf8 = EMBT_BAD_UTF8_REPLACE;
    cr_assert_eq(convert(&o), EMBT_EPARSE);
    cr_assert_eq(embt_error_last()->line, 2);
    cr_assert_eq(count_other_files(), 0);
    embt_convert_report rep;
    o.on_duplicate = EMBT_DUPLICATE_FIRST;
    o.report = &rep;
    cr_assert_eq(convert(&o), EMBT_OK, "%s", embt_error_last()->message);
    cr_assert_eq(rep.rows, 1);
    cr_assert_eq(rep.utf8_replaced, 1);
    cr_assert_eq(rep.duplicates_dropped, 1);
}

Test(import_text, bad_utf8_rows_skipped)
{
    write_text("3 1\na 1\nb\xff 2\nc 3\n");
    embt_convert_report rep;
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.on_bad_utf8 = EMBT_BAD_UTF8_SKIP;
    o.report = &rep;
    cr_assert_eq(convert(&o), EMBT_OK, "%s", embt_error_last()->message);
    const char *tokens[] = {"a", "c"};
    const float values[] = {1, 3};
    check_output(tokens, values, 2, 1, NULL, NULL);
    cr_assert_eq(rep.rows, 2);
    cr_assert_eq(rep.utf8_skipped, 1);
}

Test(import_text, lenient_policies_stay_strict_about_numbers)
{
    write_text("a 1 2\na 3 4\nb 5\n");
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.on_duplicate = EMBT_DUPLICATE_FIRST;
    o.on_bad_utf8 = EMBT_BAD_UTF8_SKIP;
    cr_assert_eq(convert(&o), EMBT_EPARSE);
    cr_assert_eq(embt_error_last()->line, 3);
    cr_assert_eq(embt_error_last()->column, 4);
    cr_assert_eq(count_other_files(), 0);
}

Test(import_text, limit_counts_kept_rows_under_lenient_policies)
{
    write_text("a 1\na 2\nb 3\nc 4\n");
    embt_convert_report rep;
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.on_duplicate = EMBT_DUPLICATE_FIRST;
    o.limit = 2;
    o.report = &rep;
    cr_assert_eq(convert(&o), EMBT_OK, "%s", embt_error_last()->message);
    const char *tokens[] = {"a", "b"};
    const float values[] = {1, 3};
    check_output(tokens, values, 2, 1, NULL, NULL);
    cr_assert_eq(rep.duplicates_dropped, 1);
}

Test(import_text, nonfinite_values_are_counted)
{
    write_text("a nan 1\nb inf -inf\n");
    embt_convert_report rep;
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.flags = EMBT_CONVERT_ALLOW_NONFINITE;
    o.report = &rep;
    cr_assert_eq(convert(&o), EMBT_OK, "%s", embt_error_last()->message);
    cr_assert_eq(rep.nonfinite, 3);
    cr_assert_eq(rep.rows, 2);
}

/* Every shape of decimal the fast path takes or refuses, through the whole import, vs strtof. */
Test(import_text, imported_values_equal_strtof_for_every_decimal_shape)
{
    static const char *const fixed[] = {"0",          "-0",         "+1",
                                        "1.",         ".5",         "-.5",
                                        "0.0000001",  "16777216",   "16777217",
                                        "123456789",  "1.2345678",  "0.12345678",
                                        "9.87654321", "1e5",        "1E-5",
                                        "-3.4e38",    "1e-45",      "0.33333333333",
                                        "00012.5",    "4294967296", "7.000001",
                                        "0.10000000", "99999999.9", "1.00000005960464477539"};
    size_t nf = sizeof fixed / sizeof fixed[0];
    size_t n = 20000;
    char **text = malloc(n * sizeof *text);
    FILE *f = fopen(in_path, "wb");
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        char buf[64];
        if (i < nf) {
            snprintf(buf, sizeof buf, "%s", fixed[i]);
        } else {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            unsigned ip = (unsigned)(s >> 40) % 1000;
            unsigned digits = 1 + (unsigned)(s >> 20) % 10;
            uint64_t frac = (s >> 8) % 10000000000ull;
            snprintf(buf, sizeof buf, "%s%u.%0*llu", (s & 1) ? "-" : "",
                     ip % (1u + (unsigned)(s & 7) * 30), (int)digits,
                     (unsigned long long)(frac % (uint64_t)pow(10, digits)));
        }
        text[i] = strdup(buf);
        fprintf(f, "t%zu %s\n", i, buf);
    }
    fclose(f);
    cr_assert_eq(convert(NULL), EMBT_OK, "%s", embt_error_last()->message);
    embt_file *ef = NULL;
    const embt_table *t = NULL;
    cr_assert_eq(embt_file_open(&ef, out_path, NULL), EMBT_OK);
    cr_assert_eq(embt_file_table(&t, ef, "embedding"), EMBT_OK);
    for (size_t i = 0; i < n; i++) {
        float want = strtof(text[i], NULL);
        float got = embt_table_row_f32(t, i)[0];
        cr_assert_eq(memcmp(&want, &got, 4), 0, "'%s': %.9g, strtof %.9g", text[i], got, want);
        free(text[i]);
    }
    free(text);
    embt_file_close(ef);
}

/* ---- streaming: inputs larger than a parse chunk (4 MiB), plain and gzip ---------------------- */

/* Writes `rows` GloVe rows of 24 values (about 9 MB for 40,000 rows) to `path`, gzip-compressed
 * when `gz`; row `bad_row` (if < rows) gets "oops" as its 7th value and row `dup_row` (if < rows)
 * repeats the token of row 3 with other values. Rows end in CRLF when `crlf`. */
static void write_big_text(const char *path, bool gz, size_t rows, size_t bad_row, size_t dup_row,
                           bool crlf)
{
    gzFile g = gz ? gzopen(path, "wb6") : NULL;
    FILE *f = gz ? NULL : fopen(path, "wb");
    cr_assert(g || f);
    char line[512];
    for (size_t i = 0; i < rows; i++) {
        int n = i == dup_row ? snprintf(line, sizeof line, "w3")
                             : snprintf(line, sizeof line, "w%zu", i);
        for (size_t k = 0; k < 24; k++) {
            if (i == bad_row && k == 6)
                n += snprintf(line + n, sizeof line - (size_t)n, " oops");
            else
                n += snprintf(line + n, sizeof line - (size_t)n, " %s0.%05zu",
                              (i + k) % 2 ? "-" : "", (i * 31 + k * 7919) % 100000);
        }
        n += snprintf(line + n, sizeof line - (size_t)n, crlf ? "\r\n" : "\n");
        if (g)
            cr_assert_eq(gzwrite(g, line, (unsigned)n), n);
        else
            cr_assert_eq(fwrite(line, 1, (size_t)n, f), (size_t)n);
    }
    if (g)
        cr_assert_eq(gzclose(g), Z_OK);
    else
        cr_assert_eq(fclose(f), 0);
}

static uint8_t *read_all(const char *path, size_t *n_out)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    cr_assert_geq(n, 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *n_out = (size_t)n;
    return buf;
}

/* Converts in_path and `gz_path` with the same options and checks that the outputs are identical. */
static void check_same_output(const char *gz_path, const embt_convert_options *o)
{
    char other[160];
    snprintf(other, sizeof other, "%s/gz.embt", tmp_dir);
    cr_assert_eq(embt_convert_file(in_path, out_path, o), EMBT_OK, "%s",
                 embt_error_last()->message);
    cr_assert_eq(embt_convert_file(gz_path, other, o), EMBT_OK, "%s", embt_error_last()->message);
    size_t n1, n2;
    uint8_t *a = read_all(out_path, &n1);
    uint8_t *b = read_all(other, &n2);
    cr_assert_eq(n1, n2);
    cr_assert_eq(memcmp(a, b, n1), 0, "the gzip input gave another file");
    free(a);
    free(b);
}

Test(import_text, gzip_input_streams_to_the_same_file_as_plain_text)
{
    char gz[160];
    snprintf(gz, sizeof gz, "%s/big.txt.gz", tmp_dir);
    write_big_text(in_path, false, 40000, SIZE_MAX, SIZE_MAX, false);
    write_big_text(gz, true, 40000, SIZE_MAX, SIZE_MAX, false);
    struct stat st;
    cr_assert_eq(stat(in_path, &st), 0);
    cr_assert_gt(st.st_size, 2 * (4 << 20), "rows must cross several chunk boundaries");
    check_same_output(gz, NULL);
    embt_convert_report rep = {0, 0, 0, 0, 0};
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.report = &rep;
    o.limit = 33333;
    check_same_output(gz, &o);
    cr_assert_eq(rep.rows, 33333);
}

Test(import_text, gzip_input_with_crlf_and_trailing_blank_lines)
{
    char gz[160];
    snprintf(gz, sizeof gz, "%s/big.txt.gz", tmp_dir);
    write_big_text(in_path, false, 30000, SIZE_MAX, SIZE_MAX, true);
    write_big_text(gz, true, 30000, SIZE_MAX, SIZE_MAX, true);
    for (int i = 0; i < 2; i++) { /* blank lines at the end are dropped */
        FILE *f = fopen(i ? gz : in_path, "ab");
        if (i) { /* a second gzip member holding only blank lines */
            fclose(f);
            gzFile g = gzopen(gz, "ab");
            gzputs(g, "\n \t\r\n\n");
            gzclose(g);
        } else {
            fputs("\n \t\r\n\n", f);
            fclose(f);
        }
    }
    check_same_output(gz, NULL);
}

Test(import_text, gzip_error_on_a_late_line_reports_its_position_and_leaves_no_output)
{
    char gz[160];
    snprintf(gz, sizeof gz, "%s/big.txt.gz", tmp_dir);
    write_big_text(gz, true, 40000, 37001, SIZE_MAX, false);
    write_file(out_path, "old", 3);
    embt_status rc = embt_convert_file(gz, out_path, NULL);
    const embt_error *e = embt_error_last();
    cr_assert_eq(rc, EMBT_EPARSE, "%s (%s)", embt_status_name(rc), e->message);
    cr_assert_eq(e->line, 37002, "%s", e->message);
    /* "w37001" and six values of 8 or 9 bytes, each after a blank */
    char prefix[512];
    int n = snprintf(prefix, sizeof prefix, "w37001");
    for (size_t k = 0; k < 6; k++)
        n += snprintf(prefix + n, sizeof prefix - (size_t)n, " %s0.%05zu",
                      (37001 + k) % 2 ? "-" : "", (37001 * 31 + k * 7919) % 100000);
    cr_assert_eq(e->column, (uint32_t)n + 2, "%s", e->message);
    cr_assert_eq(count_other_files(), 2, "only big.txt.gz and the old output");
    size_t len;
    uint8_t *old = read_all(out_path, &len);
    cr_assert_eq(len, 3);
    free(old);
}

Test(import_text, gzip_duplicate_across_chunks_names_both_lines)
{
    char gz[160];
    snprintf(gz, sizeof gz, "%s/big.txt.gz", tmp_dir);
    write_big_text(gz, true, 40000, SIZE_MAX, 39000, false);
    embt_status rc = embt_convert_file(gz, out_path, NULL);
    cr_assert_eq(rc, EMBT_EPARSE);
    cr_assert_eq(embt_error_last()->line, 39001);
    cr_assert_eq(embt_error_last()->column, 1);
    cr_assert_not_null(strstr(embt_error_last()->message, "first on line 4"), "%s",
                       embt_error_last()->message);
    cr_assert_eq(count_other_files(), 1);
}

Test(import_text, gzip_lenient_policies_stream_in_one_pass)
{
    char gz[160];
    snprintf(gz, sizeof gz, "%s/big.txt.gz", tmp_dir);
    write_big_text(in_path, false, 40000, SIZE_MAX, 39000, false);
    write_big_text(gz, true, 40000, SIZE_MAX, 39000, false);
    for (int policy = EMBT_DUPLICATE_FIRST; policy <= EMBT_DUPLICATE_LAST; policy++) {
        embt_convert_report rep = {0, 0, 0, 0, 0};
        embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
        o.on_duplicate = (embt_on_duplicate)policy;
        o.report = &rep;
        check_same_output(gz, &o);
        cr_assert_eq(rep.rows, 39999);
        cr_assert_eq(rep.duplicates_dropped, 1);
        /* the kept values of "w3": those of its first or of its last line */
        embt_file *f = NULL;
        const embt_table *t = NULL;
        cr_assert_eq(embt_file_open(&f, out_path, NULL), EMBT_OK);
        cr_assert_eq(embt_file_table(&t, f, "embedding"), EMBT_OK);
        size_t src = policy == EMBT_DUPLICATE_LAST ? 39000 : 3;
        char buf[32];
        snprintf(buf, sizeof buf, "%s0.%05zu", src % 2 ? "-" : "", (src * 31) % 100000);
        float want = strtof(buf, NULL);
        cr_assert_eq(memcmp(&embt_table_row_f32(t, 3)[0], &want, 4), 0, "policy %d", policy);
        embt_file_close(f);
    }
}

Test(import_text, gzip_truncated_after_the_prefix_is_eformat_without_output)
{
    char gz[160];
    snprintf(gz, sizeof gz, "%s/big.txt.gz", tmp_dir);
    write_big_text(gz, true, 40000, SIZE_MAX, SIZE_MAX, false);
    size_t n;
    uint8_t *bytes = read_all(gz, &n);
    FILE *f = fopen(gz, "wb");
    cr_assert_eq(fwrite(bytes, 1, n - 1000, f), n - 1000);
    fclose(f);
    free(bytes);
    embt_status rc = embt_convert_file(gz, out_path, NULL);
    cr_assert_eq(rc, EMBT_EFORMAT, "%s (%s)", embt_status_name(rc), embt_error_last()->message);
    cr_assert_eq(count_other_files(), 1);
}

Test(import_text, word2vec_header_checked_against_a_streamed_body)
{
    /* a header declaring one row fewer than the body: the error names the extra line */
    char gz[160];
    snprintf(gz, sizeof gz, "%s/big.txt.gz", tmp_dir);
    gzFile g = gzopen(gz, "wb1");
    gzprintf(g, "29999 3\n");
    for (size_t i = 0; i < 30000; i++)
        gzprintf(g, "tok%zu 0.5 -1.25 %zu.0 %s\n", i, i, i % 50 ? "" : " ");
    gzclose(g);
    embt_status rc = embt_convert_file(gz, out_path, NULL);
    cr_assert_eq(rc, EMBT_EPARSE, "%s", embt_error_last()->message);
    cr_assert_eq(embt_error_last()->line, 30001);
    cr_assert_eq(embt_error_last()->column, 1);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.limit = 10; /* the rest is still counted against the header */
    cr_assert_eq(embt_convert_file(gz, out_path, &o), EMBT_EPARSE);
    cr_assert_eq(embt_error_last()->line, 30001);
}

Test(import_text, mapped_input_error_in_a_late_chunk_after_a_duplicate)
{
    write_big_text(in_path, false, 40000, 39500, 20000, false);
    cr_assert_eq(convert(NULL), EMBT_EPARSE);
    cr_assert_eq(embt_error_last()->line, 20001, "%s", embt_error_last()->message);
    cr_assert_eq(embt_error_last()->column, 1);
    cr_assert_eq(count_other_files(), 0);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.on_duplicate = EMBT_DUPLICATE_FIRST;
    cr_assert_eq(convert(&o), EMBT_EPARSE);
    cr_assert_eq(embt_error_last()->line, 39501, "%s", embt_error_last()->message);
    cr_assert_eq(count_other_files(), 0);
}

Test(import_text, short_decimals_round_exactly_through_a_double_product)
{
    /* the importer's fast path computes w / 10^n as (float)(w * 10^-n in double) for w <= 2^24,
     * n <= 7; Clinger's division in float is correctly rounded, so both must agree everywhere */
    static const float p10[8] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f, 1e6f, 1e7f};
    static const double inv[8] = {1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7};
    for (int n = 1; n < 8; n++) {
        size_t bad = 0;
        for (uint32_t w = 0; w <= (UINT32_C(1) << 24); w++) {
            volatile float a = (float)w / p10[n];
            volatile float b = (float)((double)w * inv[n]);
            bad += a != b;
        }
        cr_assert_eq(bad, 0, "n = %d: %zu mismatches", n, bad);
    }
}
