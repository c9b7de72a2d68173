/* cmd_lookup.c: `embt lookup FILE TOKEN... | -`: the rows of tokens (or ids) as F.embedding returns
 * them, optionally renormalised (--max-norm, output only) or pooled into one bag vector; one
 * `TOKEN<TAB>v1 ... vD` line per token (or JSON Lines), each value the shortest decimal that reads
 * back to the same float32. Every token is resolved before anything is printed. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <embt/embt.h>

#include "cli_util.h"
#include "cmd.h"

static const char usage[] =
    "usage: embt lookup [options] FILE TOKEN...\n"
    "       embt lookup [options] FILE -          (tokens from stdin, one per line)\n"
    "\n"
    "Prints the row of each TOKEN as `TOKEN<TAB>v1 v2 ... vD`, values in the shortest form that\n"
    "reads back to the same float32, as torch.nn.functional.embedding returns them.\n"
    "\n"
    "options:\n"
    "  --ids               TOKENs are row ids (0-based), not words\n"
    "  --table NAME        table to read (default: the first table tied to a vocabulary)\n"
    "  --max-norm X        scale rows whose p-norm exceeds X to X (output only: FILE is "
    "unchanged)\n"
    "  --norm-type P       p of the norm: a number > 0 or inf (default 2)\n"
    "  --padding-idx K     padding row (negative: from the end), left out of --bag\n"
    "  --bag MODE          sum, mean or max: print one pooled vector for all the tokens\n"
    "  --skip-unknown      skip unknown tokens (a warning on stderr) instead of failing\n"
    "  --json              JSON Lines: {\"token\", \"id\", \"vector\"} (--bag: {\"bag\", "
    "\"count\",\n"
    "                      \"vector\"}); non-finite values are null\n"
    "  --format=text|json  same as --json for json\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 printed, 1 an unknown token or id, or FILE unreadable, 2 usage error.\n";

enum {
    OPT_IDS = 256,
    OPT_TABLE,
    OPT_MAX_NORM,
    OPT_NORM_TYPE,
    OPT_PAD,
    OPT_BAG,
    OPT_SKIP,
    OPT_JSON
};

static const struct option long_options[] = {
    {"ids", no_argument, NULL, OPT_IDS},
    {"table", required_argument, NULL, OPT_TABLE},
    {"max-norm", required_argument, NULL, OPT_MAX_NORM},
    {"norm-type", required_argument, NULL, OPT_NORM_TYPE},
    {"padding-idx", required_argument, NULL, OPT_PAD},
    {"bag", required_argument, NULL, OPT_BAG},
    {"skip-unknown", no_argument, NULL, OPT_SKIP},
    {"json", no_argument, NULL, OPT_JSON},
    {"format", required_argument, NULL, 'f'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Each value as the shortest text that reads back to the same float32 (JSON has no NaN or
 * infinity: null). */
static void put_f32(FILE *out, float v, bool json)
{
    if (json && !isfinite(v)) {
        fputs("null", out);
        return;
    }
    char buf[EMBT_F32_TEXT_MAX];
    fwrite(buf, 1, embt_format_f32(buf, v), out);
}

static void put_vector(FILE *out, const float *v, size_t n, bool json)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(json ? ',' : ' ', out);
        put_f32(out, v[i], json);
    }
}

static bool parse_double(double *out, const char *s)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return end != s && *end == '\0' && errno == 0;
}

static bool parse_i64(int64_t *out, const char *s)
{
    if (!(*s == '-' || (*s >= '0' && *s <= '9'))) /* strtoll would skip blanks and take '+' */
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    *out = v;
    return end != s && *end == '\0' && errno == 0;
}

/* Tokens from stdin, one per line (LF or CRLF), empty lines skipped. Owned by *lines_out. Prints
 * the error line on failure: a NUL byte would otherwise cut a token short without a word. */
static bool read_stdin(char ***lines_out, size_t *n_out)
{
    char **lines = NULL, *line = NULL;
    size_t n = 0, cap = 0, line_cap = 0, line_no = 0;
    ssize_t len;
    bool ok = false;
    /* a token is at most 65535 bytes (FORMAT.md 10), plus a CR: longer lines cannot be tokens */
    while ((len = cli_getline_max(&line, &line_cap, stdin, 65536)) >= 0 || len == -2) {
        line_no++;
        if (len == -2) {
            cli_errorf("lookup", NULL, "<stdin>:%zu: longer than any token (65535 bytes)", line_no);
            goto out;
        }
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        const char *nul = memchr(line, '\0', (size_t)len);
        if (nul) {
            cli_errorf("lookup", NULL, "<stdin>:%zu:%zu: a NUL byte in the token", line_no,
                       (size_t)(nul - line) + 1);
            goto out;
        }
        if (len == 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(lines, cap * sizeof *lines);
            if (!grown)
                goto nomem;
            lines = grown;
        }
        if (!(lines[n] = strdup(line)))
            goto nomem;
        n++;
    }
    if (len == -3)
        goto nomem;
    ok = !ferror(stdin);
    if (!ok)
        cli_errorf("lookup", "<stdin>", "cannot read tokens: %s", strerror(errno));
    goto out;
nomem:
    cli_errorf("lookup", NULL, "out of memory");
out:
    free(line);
    *lines_out = lines;
    *n_out = n;
    return ok;
}

/* The table named, or the first table tied to a vocabulary, or (with --ids) the first table. */
static const embt_table *pick_table(const embt_file *file, const char *name, bool ids)
{
    const embt_table *t = NULL;
    if (name) {
        embt_file_table(&t, file, name);
        return t;
    }
    for (size_t i = 0; i < embt_file_table_count(file); i++)
        if (embt_table_vocab(embt_file_table_at(file, i)))
            return embt_file_table_at(file, i);
    return ids && embt_file_table_count(file) ? embt_file_table_at(file, 0) : NULL;
}

int cmd_lookup(int argc, char **argv)
{
    bool by_id = false, skip_unknown = false, json = false;
    const char *table_name = NULL, *bag = NULL;
    embt_gather_options gopts = EMBT_GATHER_OPTIONS_INIT;
    char **stdin_tokens = NULL;
    size_t n_stdin = 0;
    embt_file *file = NULL;
    int64_t *ids = NULL;
    size_t *which = NULL; /* token index of each id */
    float *rows = NULL;
    char *text = NULL;
    size_t text_len = 0;
    FILE *out = NULL;
    int rc = CLI_EXIT_ERROR;

    optind = 0;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1;) {
        switch (c) {
        case OPT_IDS: by_id = true; break;
        case OPT_TABLE: table_name = optarg; break;
        case OPT_MAX_NORM:
            if (!parse_double(&gopts.max_norm, optarg) || !(gopts.max_norm > 0)) {
                rc = cli_usage_error("lookup", "--max-norm must be a number > 0, not '%s'", optarg);
                goto done;
            }
            break;
        case OPT_NORM_TYPE:
            if (!parse_double(&gopts.norm_type, optarg) || !(gopts.norm_type > 0)) {
                rc = cli_usage_error("lookup", "--norm-type must be a number > 0 or inf, not '%s'",
                                     optarg);
                goto done;
            }
            break;
        case OPT_PAD:
            if (!parse_i64(&gopts.padding_idx, optarg) || gopts.padding_idx == EMBT_NO_PADDING) {
                rc =
                    cli_usage_error("lookup", "--padding-idx must be an integer, not '%s'", optarg);
                goto done;
            }
            break;
        case OPT_BAG:
            if (strcmp(optarg, "sum") && strcmp(optarg, "mean") && strcmp(optarg, "max")) {
                rc = cli_usage_error("lookup", "unknown bag mode '%s' (expected sum, mean or max)",
                                     optarg);
                goto done;
            }
            bag = optarg;
            break;
        case OPT_SKIP: skip_unknown = true; break;
        case OPT_JSON: json = true; break;
        case 'f': {
            cli_format fmt;
            if (!cli_parse_format(&fmt, optarg, CLI_FORMAT_TEXT | CLI_FORMAT_JSON)) {
                rc = cli_usage_error("lookup", "unknown format '%s' (expected text or json)",
                                     optarg);
                goto done;
            }
            json = fmt == CLI_FORMAT_JSON;
            break;
        }
        case 'h':
            fputs(usage, stdout);
            rc = CLI_EXIT_OK;
            goto done;
        default: rc = cli_bad_option("lookup", c, argv); goto done;
        }
    }
    if (argc - optind < 2) {
        rc = cli_usage_error("lookup", argc - optind < 1 ? "missing FILE" : "missing TOKEN or -");
        goto done;
    }
    const char *path = argv[optind];
    char **tokens = argv + optind + 1;
    size_t n_tokens = (size_t)(argc - optind - 1);
    if (n_tokens == 1 && strcmp(tokens[0], "-") == 0) {
        if (!read_stdin(&stdin_tokens, &n_stdin))
            goto done;
        tokens = stdin_tokens;
        n_tokens = n_stdin;
    }

    if (embt_file_open(&file, path, NULL) != EMBT_OK) {
        cli_error_record("lookup", path, embt_error_last());
        goto done;
    }
    const embt_table *table = pick_table(file, table_name, by_id);
    if (!table) {
        if (table_name)
            cli_errorf("lookup", path, "no table named '%s'", table_name);
        else
            cli_errorf("lookup", path, "no table tied to a vocabulary (use --ids or --table)");
        goto done;
    }
    const embt_vocab *vocab = embt_table_vocab(table);
    if (!by_id && !vocab) {
        cli_errorf("lookup", path, "table '%s' has no vocabulary: use --ids",
                   embt_table_name(table));
        goto done;
    }
    if (embt_table_rows(table) == 0) { /* and its columns are backed by no byte of the file */
        cli_errorf("lookup", path, "table '%s' has no rows", embt_table_name(table));
        goto done;
    }
    size_t dim = (size_t)embt_table_cols(table);
    ids = malloc((n_tokens ? n_tokens : 1) * sizeof *ids);
    which = malloc((n_tokens ? n_tokens : 1) * sizeof *which);
    if (!ids || !which) {
        cli_errorf("lookup", NULL, "out of memory");
        goto done;
    }
    size_t n_ids = 0;
    for (size_t i = 0; i < n_tokens; i++) {
        int64_t id;
        bool known;
        if (by_id) {
            known = parse_i64(&id, tokens[i]) && id >= 0 && (uint64_t)id < embt_table_rows(table);
        } else {
            uint32_t u;
            embt_status st = embt_vocab_find(&u, vocab, tokens[i], strlen(tokens[i]));
            if (st != EMBT_OK && st != EMBT_ENOTFOUND) {
                cli_error_record("lookup", path, embt_error_last());
                goto done;
            }
            known = st == EMBT_OK;
            id = u;
        }
        if (!known) {
            cli_errorf("lookup", path, "%s '%s'%s", by_id ? "bad id" : "unknown token",
                       cli_printable(tokens[i]), skip_unknown ? ": skipped" : "");
            if (!skip_unknown)
                goto done;
            continue;
        }
        which[n_ids] = i;
        ids[n_ids++] = id;
    }

    size_t n_out = bag ? 1 : n_ids;
    rows = malloc((n_out > 0 && dim > 0 ? n_out * dim : 1) * sizeof *rows);
    if (!rows) {
        cli_errorf("lookup", NULL, "out of memory");
        goto done;
    }
    embt_status st;
    if (bag) {
        embt_bag_options b = EMBT_BAG_OPTIONS_INIT;
        b.mode = bag[1] == 'u' ? EMBT_BAG_SUM : bag[1] == 'e' ? EMBT_BAG_MEAN : EMBT_BAG_MAX;
        b.padding_idx = gopts.padding_idx;
        b.max_norm = gopts.max_norm;
        b.norm_type = gopts.norm_type;
        int64_t offsets[1] = {0};
        st = embt_bag(rows, table, ids, n_ids, offsets, 1, NULL, &b);
    } else {
        st = embt_gather(rows, table, ids, n_ids, &gopts);
    }
    if (st != EMBT_OK) {
        cli_error_record("lookup", path, embt_error_last());
        goto done;
    }

    /* built in memory, so a failure leaves stdout empty */
    if (!(out = open_memstream(&text, &text_len))) {
        cli_errorf("lookup", NULL, "out of memory");
        goto done;
    }
    if (bag) {
        if (json) {
            fprintf(out, "{\"bag\":\"%s\",\"count\":%zu,\"vector\":[", bag, n_ids);
            put_vector(out, rows, dim, true);
            fputs("]}\n", out);
        } else {
            fprintf(out, "%s\t", bag);
            put_vector(out, rows, dim, false);
            fputc('\n', out);
        }
    }
    for (size_t i = 0; !bag && i < n_ids; i++) {
        const char *tok = tokens[which[i]];
        if (json) {
            fputs("{\"token\":", out);
            cli_json_string(out, tok, strlen(tok));
            fprintf(out, ",\"id\":%lld,\"vector\":[", (long long)ids[i]);
            put_vector(out, rows + i * dim, dim, true);
            fputs("]}\n", out);
        } else {
            fprintf(out, "%s\t", tok);
            put_vector(out, rows + i * dim, dim, false);
            fputc('\n', out);
        }
    }
    if (fclose(out) != 0) {
        out = NULL;
        cli_errorf("lookup", NULL, "out of memory");
        goto done;
    }
    out = NULL;
    if (fwrite(text, 1, text_len, stdout) != text_len || fflush(stdout) != 0) {
        cli_errorf("lookup", NULL, "cannot write the output");
        goto done;
    }
    rc = CLI_EXIT_OK;
done:
    if (out)
        fclose(out);
    free(text);
    free(rows);
    free(ids);
    free(which);
    for (size_t i = 0; i < n_stdin; i++)
        free(stdin_tokens[i]);
    free(stdin_tokens);
    embt_file_close(file);
    return rc;
}
