/* cmd_eval.c: `embt eval FILE --analogies F... --pairs F...`: analogy accuracy (per section and in
 * total) and word-pair correlations with gensim 4's conventions, as one YAML document or one JSON
 * object, built whole before printing so a failure leaves stdout empty. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <embt/embt.h>

#include "cli_util.h"
#include "cmd.h"

static const char usage[] =
    "usage: embt eval [options] FILE (--analogies F | --pairs F)...\n"
    "\n"
    "Evaluates FILE's vectors the way gensim 4 does: --analogies takes word2vec's\n"
    "questions-words.txt layout (evaluate_word_analogies: 3CosAdd, top 5, inputs skipped),\n"
    "--pairs a `word1<TAB>word2<TAB>score` file (evaluate_word_pairs: Pearson and Spearman of\n"
    "the cosines). Only the first N tokens are known words; others make a question or pair\n"
    "skipped and counted. Words are compared upper-cased unless --case-sensitive.\n"
    "\n"
    "options:\n"
    "  --analogies F      an analogy file (repeatable)\n"
    "  --pairs F          a word-pair file (repeatable)\n"
    "  --restrict N       known words: the first N tokens (default 300000)\n"
    "  --case-sensitive   compare words as they are\n"
    "  --table NAME       table to use (default: the first table tied to a vocabulary)\n"
    "  --json             one JSON object instead of YAML\n"
    "  -h, --help         show this help\n";

enum { OPT_ANALOGIES = 256, OPT_PAIRS, OPT_RESTRICT, OPT_CASE, OPT_TABLE, OPT_JSON };

#define MAX_INPUTS 64

/* A string: double-quoted with JSON escapes, which YAML's double-quoted style also reads. */
static void put_str(FILE *f, const char *s)
{
    cli_json_string(f, s, strlen(s));
}

/* A float with %.9g; NaN is .nan in YAML and null in JSON. */
static void put_f64(FILE *f, double v, bool json)
{
    if (isnan(v))
        fputs(json ? "null" : ".nan", f);
    else
        fprintf(f, "%.9g", v);
}

static void put_analogies(FILE *f, const char *path, const embt_analogy_report *r, bool json)
{
    if (json) {
        fputs("{\"file\":", f);
        put_str(f, path);
        fputs(",\"accuracy\":", f);
        put_f64(f, r->accuracy, true);
        fprintf(f, ",\"correct\":%llu,\"total\":%llu,\"skipped\":%llu,\"oov_ratio\":",
                (unsigned long long)r->correct, (unsigned long long)r->total,
                (unsigned long long)r->skipped);
        put_f64(f, r->oov_ratio, true);
        fprintf(f, ",\"invalid_lines\":%llu,\"sections\":[", (unsigned long long)r->invalid_lines);
        for (size_t i = 0; i < r->n_sections; i++) {
            const embt_analogy_section *s = &r->sections[i];
            fputs(i ? ",{\"name\":" : "{\"name\":", f);
            put_str(f, s->name);
            fputs(",\"accuracy\":", f);
            put_f64(f, s->accuracy, true);
            fprintf(f, ",\"correct\":%llu,\"total\":%llu,\"skipped\":%llu}",
                    (unsigned long long)s->correct, (unsigned long long)s->total,
                    (unsigned long long)s->skipped);
        }
        fputs("]}", f);
        return;
    }
    fputs("- file: ", f);
    put_str(f, path);
    fputs("\n  accuracy: ", f);
    put_f64(f, r->accuracy, false);
    fprintf(f, "\n  correct: %llu\n  total: %llu\n  skipped: %llu\n  oov_ratio: ",
            (unsigned long long)r->correct, (unsigned long long)r->total,
            (unsigned long long)r->skipped);
    put_f64(f, r->oov_ratio, false);
    fprintf(f, "\n  invalid_lines: %llu\n  sections:%s\n", (unsigned long long)r->invalid_lines,
            r->n_sections ? "" : " []");
    for (size_t i = 0; i < r->n_sections; i++) {
        const embt_analogy_section *s = &r->sections[i];
        fputs("  - name: ", f);
        put_str(f, s->name);
        fputs("\n    accuracy: ", f);
        put_f64(f, s->accuracy, false);
        fprintf(f, "\n    correct: %llu\n    total: %llu\n    skipped: %llu\n",
                (unsigned long long)s->correct, (unsigned long long)s->total,
                (unsigned long long)s->skipped);
    }
}

static void put_pairs(FILE *f, const char *path, const embt_pairs_report *r, bool json)
{
    fputs(json ? "{\"file\":" : "- file: ", f);
    put_str(f, path);
    fputs(json ? ",\"pearson\":" : "\n  pearson: ", f);
    put_f64(f, r->pearson, json);
    fputs(json ? ",\"spearman\":" : "\n  spearman: ", f);
    put_f64(f, r->spearman, json);
    fprintf(f,
            json ? ",\"pairs\":%llu,\"oov\":%llu,\"oov_ratio\":"
                 : "\n  pairs: %llu\n  oov: %llu\n  oov_ratio: ",
            (unsigned long long)r->pairs, (unsigned long long)r->oov);
    put_f64(f, r->oov_ratio, json);
    fprintf(f, json ? ",\"invalid_lines\":%llu}" : "\n  invalid_lines: %llu\n",
            (unsigned long long)r->invalid_lines);
}

int cmd_eval(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"analogies", required_argument, NULL, OPT_ANALOGIES},
        {"pairs", required_argument, NULL, OPT_PAIRS},
        {"restrict", required_argument, NULL, OPT_RESTRICT},
        {"case-sensitive", no_argument, NULL, OPT_CASE},
        {"table", required_argument, NULL, OPT_TABLE},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *analogies[MAX_INPUTS], *pairs[MAX_INPUTS];
    size_t n_analogies = 0, n_pairs = 0;
    embt_eval_options eo = EMBT_EVAL_OPTIONS_INIT;
    const char *table_name = NULL;
    bool json = false;
    embt_file *file = NULL;
    embt_index *index = NULL;
    embt_analogy_report *report = NULL;
    char *text = NULL;
    size_t text_len = 0;
    FILE *mem = NULL;
    int rc = CLI_EXIT_ERROR;

    optind = 0;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1;) {
        switch (c) {
        case OPT_ANALOGIES:
        case OPT_PAIRS:
            if (n_analogies + n_pairs == MAX_INPUTS) {
                rc = cli_usage_error("eval", "at most %d evaluation files", MAX_INPUTS);
                goto done;
            }
            if (c == OPT_ANALOGIES)
                analogies[n_analogies++] = optarg;
            else
                pairs[n_pairs++] = optarg;
            break;
        case OPT_RESTRICT:
            if (!cli_parse_u64(&eo.restrict_rows, optarg, UINT64_MAX) || eo.restrict_rows == 0) {
                rc = cli_usage_error("eval", "bad --restrict '%s' (expected a count >= 1)", optarg);
                goto done;
            }
            break;
        case OPT_CASE: eo.flags |= EMBT_EVAL_CASE_SENSITIVE; break;
        case OPT_TABLE: table_name = optarg; break;
        case OPT_JSON: json = true; break;
        case 'h':
            fputs(usage, stdout);
            rc = CLI_EXIT_OK;
            goto done;
        default: rc = cli_bad_option("eval", c, argv); goto done;
        }
    }
    if (argc - optind != 1) {
        rc = cli_usage_error("eval", argc == optind ? "missing FILE" : "too many arguments");
        goto done;
    }
    if (n_analogies + n_pairs == 0) {
        rc = cli_usage_error("eval", "nothing to evaluate: give --analogies or --pairs");
        goto done;
    }
    const char *path = argv[optind];
    const embt_table *table = cli_open_vocab_table("eval", path, table_name, &file);
    if (!table)
        goto done;
    if (embt_index_new(&index, table, NULL) != EMBT_OK) {
        cli_error_record("eval", path, embt_error_last());
        goto done;
    }
    if (!(mem = open_memstream(&text, &text_len))) {
        cli_errorf("eval", path, "out of memory");
        goto done;
    }
    unsigned long long restrict_rows = eo.restrict_rows ? eo.restrict_rows : 300000;
    const char *cs = (eo.flags & EMBT_EVAL_CASE_SENSITIVE) ? "true" : "false";
    if (json) {
        fputs("{\"file\":", mem);
        put_str(mem, path);
        fputs(",\"table\":", mem);
        put_str(mem, embt_table_name(table));
        fprintf(mem, ",\"restrict\":%llu,\"case_sensitive\":%s,\"analogies\":[", restrict_rows, cs);
    } else {
        fputs("file: ", mem);
        put_str(mem, path);
        fputs("\ntable: ", mem);
        put_str(mem, embt_table_name(table));
        fprintf(mem, "\nrestrict: %llu\ncase_sensitive: %s\nanalogies:%s\n", restrict_rows, cs,
                n_analogies ? "" : " []");
    }
    for (size_t i = 0; i < n_analogies; i++) {
        if (embt_eval_analogies(&report, index, analogies[i], &eo) != EMBT_OK) {
            cli_error_record("eval", analogies[i], embt_error_last());
            goto done;
        }
        if (json && i)
            fputc(',', mem);
        put_analogies(mem, analogies[i], report, json);
        embt_analogy_report_free(report);
        report = NULL;
    }
    fputs(json ? "],\"pairs\":[" : (n_pairs ? "pairs:\n" : "pairs: []\n"), mem);
    for (size_t i = 0; i < n_pairs; i++) {
        embt_pairs_report pr;
        if (embt_eval_pairs(&pr, index, pairs[i], &eo) != EMBT_OK) {
            cli_error_record("eval", pairs[i], embt_error_last());
            goto done;
        }
        if (json && i)
            fputc(',', mem);
        put_pairs(mem, pairs[i], &pr, json);
    }
    if (json)
        fputs("]}\n", mem);
    rc = cli_memstream_to_stdout("eval", path, &mem, &text, &text_len);

done:
    if (mem)
        fclose(mem);
    free(text);
    embt_analogy_report_free(report);
    embt_index_free(index);
    embt_file_close(file);
    return rc;
}
