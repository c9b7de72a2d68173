/* cmd_analogy.c: `embt analogy FILE A B C`: A is to B as C is to what, by gensim's 3CosAdd
 * (most_similar([B, C], [A])) or 3CosMul (most_similar_cosmul), A, B and C excluded, printed as
 * NEIGHBOR<TAB>SCORE lines best first or JSON Lines; built whole before printing. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <embt/embt.h>

#include "cli_util.h"
#include "cmd.h"

static const char usage[] =
    "usage: embt analogy [options] FILE A B C\n"
    "\n"
    "A is to B as C is to what: prints the K best answers, one `WORD<TAB>SCORE` line each, best\n"
    "first; A, B and C are never answers. add is gensim's most_similar([B, C], [A]) (3CosAdd), "
    "mul\n"
    "its most_similar_cosmul (3CosMul, Levy & Goldberg 2014). Ties go to the lower id.\n"
    "\n"
    "options:\n"
    "  -k N              number of answers (default 10)\n"
    "  --method add|mul  3CosAdd (default) or 3CosMul\n"
    "  --restrict N      search the first N rows only (0: all, the default)\n"
    "  --table NAME      table to search (default: the first table tied to a vocabulary)\n"
    "  --json            one JSON object per answer: rank, token, id, score\n"
    "  -h, --help        show this help\n";

enum { OPT_METHOD = 256 };

int cmd_analogy(int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_QUERY_LONGOPTS,
        {"method", required_argument, NULL, OPT_METHOD},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_query_options q = CLI_QUERY_OPTIONS_INIT;
    embt_analogy_method method = EMBT_ANALOGY_ADD;
    embt_file *file = NULL;
    embt_index *index = NULL;
    embt_hit *hits = NULL;
    int rc = CLI_EXIT_ERROR;

    optind = 0;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":hk:", longopts, NULL)) != -1;) {
        int taken = cli_query_option(&q, "analogy", c, optarg);
        if (taken == CLI_EXIT_OK)
            continue;
        if (taken == CLI_EXIT_USAGE) {
            rc = taken;
            goto done;
        }
        switch (c) {
        case OPT_METHOD:
            if (strcmp(optarg, "add") == 0)
                method = EMBT_ANALOGY_ADD;
            else if (strcmp(optarg, "mul") == 0)
                method = EMBT_ANALOGY_MUL;
            else {
                rc =
                    cli_usage_error("analogy", "unknown method '%s' (expected add or mul)", optarg);
                goto done;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            rc = CLI_EXIT_OK;
            goto done;
        default: rc = cli_bad_option("analogy", c, argv); goto done;
        }
    }
    if (argc - optind != 4) {
        rc = cli_usage_error("analogy",
                             argc - optind < 4 ? "missing FILE, A, B or C" : "too many arguments");
        goto done;
    }
    const char *path = argv[optind];
    const embt_table *table = cli_open_vocab_table("analogy", path, q.table, &file);
    const embt_vocab *vocab = table ? embt_table_vocab(table) : NULL;
    if (!vocab)
        goto done;
    uint32_t abc[3];
    for (int i = 0; i < 3; i++)
        if (!cli_find_token(&abc[i], "analogy", path, vocab, argv[optind + 1 + i]))
            goto done;
    if (embt_index_new(&index, table, NULL) != EMBT_OK) {
        cli_error_record("analogy", path, embt_error_last());
        goto done;
    }
    uint64_t rows = embt_table_rows(table);
    if (q.k > rows)
        q.k = rows ? rows : 1;
    size_t n_hits = 0;
    if (!(hits = malloc((size_t)q.k * sizeof *hits))) {
        cli_errorf("analogy", path, "out of memory");
        goto done;
    }
    embt_most_similar_options mo = EMBT_MOST_SIMILAR_OPTIONS_INIT;
    mo.method = method;
    mo.restrict_rows = q.restrict_rows;
    if (embt_analogy(hits, &n_hits, index, abc, 1, (size_t)q.k, &mo) != EMBT_OK) {
        cli_error_record("analogy", path, embt_error_last());
        goto done;
    }
    rc = cli_print_hits("analogy", path, vocab, hits, n_hits, q.json);

done:
    free(hits);
    embt_index_free(index);
    embt_file_close(file);
    return rc;
}
