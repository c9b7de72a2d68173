/* cmd_similar.c: `embt similar FILE TOKEN`: the nearest neighbours of a token by cosine (gensim's
 * most_similar), dot product or Euclidean distance, the token itself excluded, as
 * NEIGHBOR<TAB>SCORE lines best first or JSON Lines; built whole before printing. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <embt/embt.h>

#include "cli_util.h"
#include "cmd.h"

static const char usage[] =
    "usage: embt similar [options] FILE TOKEN\n"
    "\n"
    "Prints the K rows nearest to TOKEN's row, best first, one `NEIGHBOR<TAB>SCORE` line each\n"
    "(TOKEN itself excluded). Cosine is gensim's most_similar(TOKEN); ties go to the lower id.\n"
    "\n"
    "options:\n"
    "  -k N                   number of neighbours (default 10)\n"
    "  --restrict N           search the first N rows only (0: all, the default)\n"
    "  --metric cosine|dot|l2 similarity (default cosine); l2 prints distances, nearest first\n"
    "  --table NAME           table to search (default: the first table tied to a vocabulary)\n"
    "  --json                 one JSON object per neighbour: rank, token, id, score\n"
    "  -h, --help             show this help\n";

enum { OPT_METRIC = 256 };

int cmd_similar(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_QUERY_LONGOPTS,
        {"metric", required_argument, NULL, OPT_METRIC},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_query_options q = CLI_QUERY_OPTIONS_INIT;
    embt_metric metric = EMBT_METRIC_COSINE;
    embt_file *file = NULL;
    embt_index *index = NULL;
    embt_hit *hits = NULL;
    float *query = NULL;
    int rc = CLI_EXIT_ERROR;

    optind = 0;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":hk:", longopts, NULL)) != -1;) {
        int taken = cli_query_option(&q, "similar", c, optarg);
        if (taken == CLI_EXIT_OK)
            continue;
        if (taken == CLI_EXIT_USAGE) {
            rc = taken;
            goto done;
        }
        switch (c) {
        case OPT_METRIC:
            if (strcmp(optarg, "cosine") == 0)
                metric = EMBT_METRIC_COSINE;
            else if (strcmp(optarg, "dot") == 0)
                metric = EMBT_METRIC_DOT;
            else if (strcmp(optarg, "l2") == 0)
                metric = EMBT_METRIC_L2;
            else {
                rc = cli_usage_error("similar", "unknown metric '%s' (expected cosine, dot or l2)",
                                     optarg);
                goto done;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            rc = CLI_EXIT_OK;
            goto done;
        default: rc = cli_bad_option("similar", c, argv); goto done;
        }
    }
    if (argc - optind != 2) {
        rc = cli_usage_error("similar",
                             argc - optind < 2 ? "missing FILE or TOKEN" : "too many arguments");
        goto done;
    }
    const char *path = argv[optind], *token = argv[optind + 1];
    const embt_table *table = cli_open_vocab_table("similar", path, q.table, &file);
    const embt_vocab *vocab = table ? embt_table_vocab(table) : NULL;
    uint32_t id;
    if (!vocab || !cli_find_token(&id, "similar", path, vocab, token))
        goto done;
    if (embt_index_new(&index, table, NULL) != EMBT_OK) {
        cli_error_record("similar", path, embt_error_last());
        goto done;
    }
    uint64_t rows = embt_table_rows(table);
    if (q.k > rows)
        q.k = rows ? rows : 1;
    size_t n_hits = 0;
    hits = malloc((size_t)q.k * sizeof *hits);
    query = malloc((size_t)embt_table_cols(table) * sizeof *query);
    if (!hits || !query) {
        cli_errorf("similar", path, "out of memory");
        goto done;
    }
    embt_status st;
    if (metric == EMBT_METRIC_COSINE) {
        /* gensim's most_similar(TOKEN): the same float32 query as gensim builds */
        embt_most_similar_options mo = EMBT_MOST_SIMILAR_OPTIONS_INIT;
        mo.restrict_rows = q.restrict_rows;
        st = embt_most_similar(hits, &n_hits, index, &id, 1, NULL, 0, (size_t)q.k, &mo);
    } else {
        embt_query_options qo = EMBT_QUERY_OPTIONS_INIT;
        qo.metric = metric;
        qo.restrict_rows = q.restrict_rows;
        qo.exclude = &id;
        qo.n_exclude = 1;
        uint64_t row = id;
        st = embt_table_gather_f32(query, table, &row, 1);
        if (st == EMBT_OK)
            st = embt_similar(hits, &n_hits, index, query, 1, (size_t)q.k, &qo);
    }
    if (st != EMBT_OK) {
        cli_error_record("similar", path, embt_error_last());
        goto done;
    }
    rc = cli_print_hits("similar", path, vocab, hits, n_hits, q.json);

done:
    free(hits);
    free(query);
    embt_index_free(index);
    embt_file_close(file);
    return rc;
}
