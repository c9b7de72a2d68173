/* cmd_init.c: `embt init OUT`: a new table initialised as PyTorch initialises weights (normal,
 * uniform, kaiming/xavier uniform, zeros, given values), from a documented seeded generator, in a new
 * file (optionally with a vocabulary) or added to a copy of an existing file (--like). OUT appears
 * atomically (the writer's temporary file and rename). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <embt/embt.h>

#include "cli_util.h"
#include "cmd.h"

static const char usage[] =
    "usage: embt init [options] OUT --rows N --dim D [--init SPEC]\n"
    "       embt init [options] OUT --vocab TOKENS.txt --dim D [--init SPEC]\n"
    "       embt init [options] OUT --like FILE.embt [--dim D] [--init SPEC]\n"
    "\n"
    "Writes OUT with a new table initialised by SPEC (default normal:0,1, nn.Embedding's):\n"
    "  uniform:A,B              U(A, B), e.g. uniform:-1,1\n"
    "  normal:MEAN,STD          N(MEAN, STD^2)\n"
    "  kaiming-uniform[:FAN_IN] nn.Linear's default, U(+-1/sqrt(FAN_IN)); FAN_IN defaults to D\n"
    "  xavier-uniform[:GAIN]    U(+-GAIN*sqrt(6/(N+D)))\n"
    "  zeros                    all zeros\n"
    "  values:FILE              N*D float32 values: a .npy file, or raw little-endian float32\n"
    "\n"
    "options:\n"
    "  --rows N            number of rows (default: the vocabulary's size)\n"
    "  --dim D             number of columns (--like: default the columns of FILE's tied table)\n"
    "  --vocab FILE        one token per line (UTF-8): write vocabulary \"words\" and tie the "
    "table\n"
    "  --like FILE         copy every section of FILE and tie the table to its first vocabulary\n"
    "                      (OUT may be FILE itself: the table is added)\n"
    "  --init SPEC         see above\n"
    "  --seed S            seed of the generator (default 0): same seed, same table everywhere\n"
    "  --padding-idx K     zero row K after initialisation (negative: from the end)\n"
    "  --table NAME        name of the new table (default embedding)\n"
    "  --dtype TYPE        stored type: f32 (default), f16, bf16, f64 or i8\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 written, 1 an input could not be read or OUT could not be written, 2 usage.\n";

enum {
    OPT_ROWS = 256,
    OPT_DIM,
    OPT_VOCAB,
    OPT_LIKE,
    OPT_INIT,
    OPT_SEED,
    OPT_PAD,
    OPT_TABLE,
    OPT_DTYPE
};

static const struct option long_options[] = {
    {"rows", required_argument, NULL, OPT_ROWS},
    {"dim", required_argument, NULL, OPT_DIM},
    {"vocab", required_argument, NULL, OPT_VOCAB},
    {"like", required_argument, NULL, OPT_LIKE},
    {"init", required_argument, NULL, OPT_INIT},
    {"seed", required_argument, NULL, OPT_SEED},
    {"padding-idx", required_argument, NULL, OPT_PAD},
    {"table", required_argument, NULL, OPT_TABLE},
    {"dtype", required_argument, NULL, OPT_DTYPE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static bool parse_double(double *out, const char *s, char stop, const char **end_out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    *end_out = end;
    return end != s && *end == stop && errno == 0;
}

/* Parses SPEC into opts; *values_path_out receives FILE of values:FILE. */
static bool parse_spec(embt_init_options *o, const char **values_path_out, const char *spec)
{
    const char *end;
    if (strncmp(spec, "uniform:", 8) == 0) {
        o->kind = EMBT_INIT_UNIFORM;
        return parse_double(&o->low, spec + 8, ',', &end) &&
               parse_double(&o->high, end + 1, '\0', &end);
    }
    if (strncmp(spec, "normal:", 7) == 0) {
        o->kind = EMBT_INIT_NORMAL;
        return parse_double(&o->mean, spec + 7, ',', &end) &&
               parse_double(&o->std, end + 1, '\0', &end);
    }
    if (strcmp(spec, "kaiming-uniform") == 0 || strncmp(spec, "kaiming-uniform:", 16) == 0) {
        o->kind = EMBT_INIT_KAIMING_UNIFORM;
        return spec[15] == '\0' ||
               (cli_parse_u64(&o->fan_in, spec + 16, UINT64_MAX) && o->fan_in > 0);
    }
    if (strcmp(spec, "xavier-uniform") == 0 || strncmp(spec, "xavier-uniform:", 15) == 0) {
        o->kind = EMBT_INIT_XAVIER_UNIFORM;
        return spec[14] == '\0' || parse_double(&o->gain, spec + 15, '\0', &end);
    }
    if (strcmp(spec, "zeros") == 0) {
        o->kind = EMBT_INIT_ZEROS;
        return true;
    }
    if (strncmp(spec, "values:", 7) == 0 && spec[7]) {
        o->kind = EMBT_INIT_VALUES;
        *values_path_out = spec + 7;
        return true;
    }
    return false;
}

/* Reads the whole regular file (malloc'd; *len_out bytes). NULL on failure, *why says why. */
static char *slurp(const char *path, size_t *len_out, const char **why)
{
    FILE *f = cli_fopen_regular(path, why);
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                fclose(f);
                *why = "out of memory";
                return NULL;
            }
            buf = grown;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        *why = "read error";
        return NULL;
    }
    *len_out = len;
    return buf;
}

/* values:FILE as rows * dim floats (malloc'd). A .npy goes through the converter into a temporary
 * .embt next to OUT; anything else must be exactly rows * dim raw little-endian float32 values. */
static float *load_values(const char *path, const char *out_path, uint64_t rows, uint64_t dim)
{
    size_t len = 0;
    const char *why = NULL;
    char *raw = slurp(path, &len, &why);
    if (!raw) {
        cli_errorf("init", path, "cannot read: %s", why);
        return NULL;
    }
    if (len >= 6 && memcmp(raw, "\x93NUMPY", 6) == 0) {
        free(raw);
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.values.%ld.embt", out_path, (long)getpid());
        /* reserved with O_EXCL: a name planted there (a symbolic link) is never written through */
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            cli_errorf("init", tmp, "cannot create the temporary file: %s", strerror(errno));
            return NULL;
        }
        close(fd);
        cli_temps_own(tmp);
        embt_convert_options co = EMBT_CONVERT_OPTIONS_INIT;
        co.from = EMBT_FORMAT_NPY;
        co.to = EMBT_FORMAT_EMBT;
        embt_file *f = NULL;
        embt_matrix m = {NULL, 0, 0};
        float *values = NULL;
        if (embt_convert_file(path, tmp, &co) != EMBT_OK || embt_file_open(&f, tmp, NULL) ||
            embt_file_table_count(f) == 0 ||
            embt_matrix_from_table(&m, embt_file_table_at(f, 0)) != EMBT_OK) {
            cli_error_record("init", path, embt_error_last());
        } else if (m.rows * m.cols != rows * dim) {
            cli_errorf("init", path, "has %llu x %llu values, the table needs %llu x %llu",
                       (unsigned long long)m.rows, (unsigned long long)m.cols,
                       (unsigned long long)rows, (unsigned long long)dim);
        } else {
            values = m.data;
            m.data = NULL;
        }
        embt_matrix_release(&m);
        embt_file_close(f);
        unlink(tmp);
        cli_temps_own(NULL);
        return values;
    }
    if (dim != 0 && (len % 4 != 0 || len / 4 / dim != rows || (len / 4) % dim != 0)) {
        cli_errorf("init", path, "has %zu bytes, the table needs %llu x %llu float32 (%llu bytes)",
                   len, (unsigned long long)rows, (unsigned long long)dim,
                   (unsigned long long)(rows * dim * 4));
        free(raw);
        return NULL;
    }
    float *values = malloc(len ? len : 1); /* aligned for float, unlike a char buffer in theory */
    if (values)
        memcpy(values, raw, len); /* little-endian host: the bytes are the floats */
    free(raw);
    if (!values)
        cli_errorf("init", NULL, "out of memory");
    for (size_t i = 0; values && i < len / 4; i++) {
        if (!isfinite(values[i])) { /* as the .npy path (the converter) refuses them */
            cli_errorf("init", path, "offset 0x%zx: value %zu is not finite", 4 * i, i);
            free(values);
            values = NULL;
        }
    }
    return values;
}

/* Writes the vocabulary of TOKENS.txt (one per line, LF or CRLF). Errors name the line. */
static bool write_vocab(embt_writer *w, const char *path, uint64_t *n_out, int64_t pad)
{
    size_t len;
    const char *why = NULL;
    char *text = slurp(path, &len, &why);
    if (!text) {
        cli_errorf("init", path, "cannot read: %s", why);
        return false;
    }
    bool ok = false;
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    if (embt_writer_vocab_begin(w, &vs) != EMBT_OK) {
        cli_error_record("init", path, embt_error_last());
        goto done;
    }
    uint64_t n = 0;
    /* a UTF-8 byte order mark is not part of the first token (as convert --vocab reads it) */
    size_t start = len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    for (size_t pos = start, line = 1; pos < len; line++) {
        char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len, tok_len = end - pos;
        if (tok_len > 0 && text[pos + tok_len - 1] == '\r')
            tok_len--;
        if (embt_writer_vocab_add(w, text + pos, tok_len, 0, NULL) != EMBT_OK) {
            char where[4200];
            snprintf(where, sizeof where, "%s:%zu", path, line);
            cli_errorf("init", where, "%s", embt_error_last()->message);
            goto done;
        }
        n++;
        pos = end + 1;
    }
    if (pad != EMBT_NO_PADDING) {
        int64_t row = pad < 0 ? (int64_t)n + pad : pad;
        if (row >= 0 && (uint64_t)row < n &&
            embt_writer_vocab_specials(w, EMBT_NONE_ID, (uint32_t)row, EMBT_NONE_ID,
                                       EMBT_NONE_ID) != EMBT_OK) {
            cli_error_record("init", path, embt_error_last());
            goto done;
        }
    }
    if (embt_writer_vocab_end(w) != EMBT_OK) {
        cli_error_record("init", path, embt_error_last());
        goto done;
    }
    *n_out = n;
    ok = true;
done:
    free(text);
    return ok;
}

int cmd_init(int argc, char **argv)
{
    uint64_t rows = 0, dim = 0, seed = 0;
    bool have_rows = false, have_dim = false;
    const char *vocab_path = NULL, *like_path = NULL, *spec_text = "normal:0,1";
    const char *table_name = "embedding", *values_path = NULL;
    embt_init_options io = EMBT_INIT_OPTIONS_INIT;
    embt_dtype dtype = EMBT_DTYPE_F32;
    embt_file *like = NULL;
    embt_writer *w = NULL;
    float *values = NULL;
    int rc = CLI_EXIT_ERROR;

    optind = 0;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1;) {
        switch (c) {
        case OPT_ROWS:
        case OPT_DIM:
        case OPT_SEED: {
            uint64_t v;
            if (!cli_parse_u64(&v, optarg, UINT64_MAX)) {
                rc = cli_usage_error("init", "%s must be a non-negative integer, not '%s'",
                                     argv[optind - 1], optarg);
                goto done;
            }
            if (c == OPT_ROWS)
                rows = v, have_rows = true;
            else if (c == OPT_DIM)
                dim = v, have_dim = true;
            else
                seed = v;
            break;
        }
        case OPT_VOCAB: vocab_path = optarg; break;
        case OPT_LIKE: like_path = optarg; break;
        case OPT_INIT: spec_text = optarg; break;
        case OPT_PAD: {
            char *end;
            errno = 0;
            long long v = strtoll(optarg, &end, 10);
            if (end == optarg || *end || errno || v == EMBT_NO_PADDING) {
                rc = cli_usage_error("init", "--padding-idx must be an integer, not '%s'", optarg);
                goto done;
            }
            io.padding_idx = v;
            break;
        }
        case OPT_TABLE: table_name = optarg; break;
        case OPT_DTYPE:
            if (embt_dtype_parse(&dtype, optarg) != EMBT_OK) {
                rc = cli_usage_error("init", "unknown dtype '%s'", optarg);
                goto done;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            rc = CLI_EXIT_OK;
            goto done;
        default: rc = cli_bad_option("init", c, argv); goto done;
        }
    }
    if (argc - optind != 1) {
        rc = cli_usage_error("init", argc - optind < 1 ? "missing OUT" : "too many arguments");
        goto done;
    }
    const char *out_path = argv[optind];
    if (!parse_spec(&io, &values_path, spec_text)) {
        rc = cli_usage_error("init", "bad --init '%s'", spec_text);
        goto done;
    }
    io.seed = seed;
    if (cli_output_not_input("init", out_path, vocab_path, "--vocab file") ||
        cli_output_not_input("init", out_path, values_path, "--init values file"))
        goto done; /* rc is still CLI_EXIT_ERROR */
    if (vocab_path && like_path) {
        rc = cli_usage_error("init", "--vocab and --like exclude each other");
        goto done;
    }
    if (!vocab_path && !like_path && !have_rows) {
        rc = cli_usage_error("init", "--rows is required without --vocab or --like");
        goto done;
    }

    const char *vocab_name = NULL;
    if (like_path) {
        const embt_vocab *v = NULL;
        embt_open_options verified = EMBT_OPEN_OPTIONS_INIT;
        verified.flags = EMBT_OPEN_VERIFY; /* its sections are copied: refuse damage */
        if (embt_file_open(&like, like_path, &verified) != EMBT_OK) {
            cli_error_record("init", like_path, embt_error_last());
            goto done;
        }
        if (embt_file_vocab(&v, like, NULL) != EMBT_OK) {
            cli_errorf("init", like_path, "has no vocabulary");
            goto done;
        }
        vocab_name = embt_vocab_name(v);
        if (have_rows && rows != embt_vocab_size(v)) {
            cli_errorf("init", like_path, "vocabulary has %u tokens, not --rows %llu",
                       embt_vocab_size(v), (unsigned long long)rows);
            goto done;
        }
        rows = embt_vocab_size(v);
        for (size_t i = 0; !have_dim && i < embt_file_table_count(like); i++) {
            const embt_table *t = embt_file_table_at(like, i);
            if (embt_table_vocab(t) == v && embt_table_rank(t) == 2) {
                dim = embt_table_cols(t);
                have_dim = true;
            }
        }
    }
    if (!have_dim) {
        rc = cli_usage_error("init", "--dim is required");
        goto done;
    }

    cli_temps_catch();
    if (embt_writer_open(&w, out_path, NULL) != EMBT_OK) {
        cli_error_record("init", out_path, embt_error_last());
        goto done;
    }
    if (like && embt_writer_copy_sections(w, like, 0) != EMBT_OK) {
        cli_error_record("init", like_path, embt_error_last());
        goto done;
    }
    if (vocab_path) {
        uint64_t n;
        if (!write_vocab(w, vocab_path, &n, io.padding_idx))
            goto done;
        if (have_rows && rows != n) {
            cli_errorf("init", vocab_path, "has %llu tokens, not --rows %llu",
                       (unsigned long long)n, (unsigned long long)rows);
            goto done;
        }
        rows = n;
        vocab_name = "words";
    }
    if (values_path) {
        if (!(values = load_values(values_path, out_path, rows, dim)))
            goto done;
        io.values = values;
    }
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = table_name;
    ts.dtype = dtype;
    ts.rows = rows;
    ts.cols = dim;
    ts.vocab = vocab_name;
    if (embt_init_write(w, &ts, &io) != EMBT_OK) {
        cli_error_record("init", out_path, embt_error_last());
        goto done;
    }
    if (!like) {
        char meta[1024];
        int n = snprintf(meta, sizeof meta,
                         "init:\n  table: \"%s\"\n  spec: \"%s\"\n  seed: %llu\n"
                         "  generator: \"xoshiro256** seeded by splitmix64 (embt/ops.h)\"\n",
                         table_name, values_path ? "values" : spec_text, (unsigned long long)seed);
        /* names with quotes or backslashes would need escaping: leave the record out for them */
        if (n > 0 && (size_t)n < sizeof meta && !strpbrk(table_name, "\"\\") &&
            !strpbrk(spec_text, "\"\\") &&
            embt_writer_set_metadata(w, meta, (size_t)n) != EMBT_OK) {
            cli_error_record("init", out_path, embt_error_last());
            goto done;
        }
    }
    if (embt_writer_commit(w) != EMBT_OK) {
        cli_error_record("init", out_path, embt_error_last());
        goto done;
    }
    rc = CLI_EXIT_OK;
done:
    embt_writer_free(w);
    cli_temps_release();
    embt_file_close(like);
    free(values);
    return rc;
}
