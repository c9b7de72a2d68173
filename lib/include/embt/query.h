/* embt/query.h: nearest neighbours (cosine, dot, Euclidean), analogies (3CosAdd, 3CosMul) and the
 * classic word-vector evaluations (analogy accuracy, word-pair correlations) with gensim 4's
 * conventions, over a prepared search index built once per table.
 *
 * Thread safety: an embt_index is immutable once embt_index_new() returns; any number of threads may
 * query it at once. Each query call itself uses up to embt_index_options.threads threads. */
#ifndef EMBT_QUERY_H
#define EMBT_QUERY_H

#include "table.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct embt_index embt_index;

/* One result: a row id and its score (cosine, dot product or Euclidean distance). */
typedef struct embt_hit {
    uint32_t id;
    float score;
} embt_hit;

typedef enum embt_metric {
    EMBT_METRIC_COSINE = 1, /* higher is better; rows of norm 0 score 0 */
    EMBT_METRIC_DOT = 2,    /* higher is better */
    EMBT_METRIC_L2 = 3      /* Euclidean distance, lower is better */
} embt_metric;

#define EMBT_INDEX_GENERIC 0x1u         /* portable kernels only, even when AVX2+FMA is present */
#define EMBT_INDEX_RECOMPUTE_NORMS 0x2u /* ignore the file's ROW_NORMS and compute the norms */

typedef struct embt_index_options {
    unsigned version; /* EMBT_INDEX_OPTIONS_VERSION */
    unsigned flags;   /* EMBT_INDEX_* */
    unsigned threads; /* threads per query call, 1 to 64; 0: 2 */
} embt_index_options;
#define EMBT_INDEX_OPTIONS_VERSION 1
/* clang-format off */
#define EMBT_INDEX_OPTIONS_INIT { EMBT_INDEX_OPTIONS_VERSION, 0, 0 }
/* clang-format on */

/* Prepares `table` (rank 2, any dtype) for search: takes its stored ROW_NORMS or computes every row's
 * L2 norm once (in double, stored as float). The table (and so its file) must outlive the index.
 * `opts` may be NULL. On success *out owns the index (free with embt_index_free()).
 * Errors: EMBT_EINVAL (rank-1 table, bad options), EMBT_ENOMEM, EMBT_EIO (a thread could not start).
 * On failure *out is NULL. */
EMBT_API embt_status embt_index_new(embt_index **out, const embt_table *table,
                                    const embt_index_options *opts);
/* NULL is fine. */
EMBT_API void embt_index_free(embt_index *index);

/* The indexed table, and its rows' L2 norms (rows values, borrowed from the index). */
EMBT_API const embt_table *embt_index_table(const embt_index *index);
EMBT_API const float *embt_index_norms(const embt_index *index);
/* "avx2-fma" or "generic": the kernels the index uses. Static string. */
EMBT_API const char *embt_index_kernels(const embt_index *index);

typedef struct embt_query_options {
    unsigned version;   /* EMBT_QUERY_OPTIONS_VERSION */
    embt_metric metric; /* 0: cosine */
    uint64_t
        restrict_rows; /* search rows [0, restrict_rows) only (gensim's restrict_vocab); 0: all */
    const uint32_t *exclude; /* ids never returned for any query (n_exclude of them); may be NULL */
    size_t n_exclude;
    const uint32_t *exclude_each; /* (n_queries, n_exclude_each): ids never returned for that query;
                                   * EMBT_NONE_ID entries are ignored; may be NULL */
    size_t n_exclude_each;
} embt_query_options;
#define EMBT_QUERY_OPTIONS_VERSION 1
/* clang-format off */
#define EMBT_QUERY_OPTIONS_INIT { EMBT_QUERY_OPTIONS_VERSION, EMBT_METRIC_COSINE, 0, NULL, 0, NULL, 0 }
/* clang-format on */

/* The k best rows for each of n_queries query vectors `queries` (n_queries, cols) float32, best first,
 * into hits (n_queries, k); n_hits_out (n_queries, may be NULL) receives how many were found (fewer
 * than k when fewer rows qualify; the remaining hits get id EMBT_NONE_ID and score NaN).
 * All queries are answered by one pass over the table, blocked so that many queries share each row
 * read (a matrix product), with the rows split between the index's threads. Cosine scores use the
 * query scaled to unit length and each row's norm; a query of norm 0 scores every row 0. Rows whose
 * score is NaN are never returned. Ties are broken by the lower id. Reported scores are recomputed in
 * double for the returned rows, so they do not depend on the kernels; L2 distances are exact.
 * `opts` may be NULL (cosine, all rows, nothing excluded).
 * Errors: EMBT_EINVAL (k 0, bad options), EMBT_ENOMEM, EMBT_EIO (a thread could not start). */
EMBT_API embt_status embt_similar(embt_hit *hits, size_t *n_hits_out, const embt_index *index,
                                  const float *queries, size_t n_queries, size_t k,
                                  const embt_query_options *opts);

typedef enum embt_analogy_method {
    EMBT_ANALOGY_ADD = 1, /* 3CosAdd: gensim most_similar() */
    EMBT_ANALOGY_MUL = 2  /* 3CosMul: gensim most_similar_cosmul() */
} embt_analogy_method;

typedef struct embt_most_similar_options {
    unsigned version;           /* EMBT_MOST_SIMILAR_OPTIONS_VERSION */
    embt_analogy_method method; /* 0: add */
    uint64_t restrict_rows;     /* search rows [0, restrict_rows) only; 0: all */
} embt_most_similar_options;
#define EMBT_MOST_SIMILAR_OPTIONS_VERSION 1
/* clang-format off */
#define EMBT_MOST_SIMILAR_OPTIONS_INIT { EMBT_MOST_SIMILAR_OPTIONS_VERSION, EMBT_ANALOGY_ADD, 0 }
/* clang-format on */

/* gensim's most_similar(positive, negative) on row ids, the input ids excluded from the results.
 * add: u_i = row_i / |row_i| (float32), mean = (sum of u_pos - sum of u_neg) / (n_pos + n_neg),
 *      scaled to unit length; score_j = cos(row_j, mean).
 * mul: score_j = prod_pos c_i(j) / (prod_neg c_i(j) + 1e-6), c_i(j) = (1 + cos(row_j, u_i)) / 2
 *      (Levy & Goldberg 2014, eq. 4 and footnote 7); at most 16 inputs in all.
 * A row of norm 0 has unit vector 0 (cos 0). hits (k) and *n_hits_out as in embt_similar().
 * Errors: EMBT_EINVAL (no positive id, an id out of range, k 0, too many inputs), EMBT_ENOMEM,
 * EMBT_EIO. */
EMBT_API embt_status embt_most_similar(embt_hit *hits, size_t *n_hits_out, const embt_index *index,
                                       const uint32_t *positive, size_t n_positive,
                                       const uint32_t *negative, size_t n_negative, size_t k,
                                       const embt_most_similar_options *opts);

/* a is to b as c is to what: most_similar([b, c], [a]) for n_questions questions abc (n_questions, 3)
 * at once (one blocked pass over the table), into hits (n_questions, k) and n_hits_out (n_questions,
 * may be NULL). Each question's own a, b, c are excluded from its results. Errors: as
 * embt_most_similar(). */
EMBT_API embt_status embt_analogy(embt_hit *hits, size_t *n_hits_out, const embt_index *index,
                                  const uint32_t *abc, size_t n_questions, size_t k,
                                  const embt_most_similar_options *opts);

/* ---- evaluation (gensim 4 evaluate_word_analogies / evaluate_word_pairs) ----------------------- */

#define EMBT_EVAL_CASE_SENSITIVE                                                                   \
    0x1u /* compare words as they are (gensim case_insensitive=False) */

typedef struct embt_eval_options {
    unsigned version;       /* EMBT_EVAL_OPTIONS_VERSION */
    unsigned flags;         /* EMBT_EVAL_* */
    uint64_t restrict_rows; /* only the first restrict_rows tokens are known words; 0: 300000 */
} embt_eval_options;
#define EMBT_EVAL_OPTIONS_VERSION 1
/* clang-format off */
#define EMBT_EVAL_OPTIONS_INIT { EMBT_EVAL_OPTIONS_VERSION, 0, 0 }
/* clang-format on */

typedef struct embt_analogy_section {
    const char *name; /* section name (after ": "), NUL-terminated, owned by the report */
    uint64_t correct; /* questions answered correctly */
    uint64_t total;   /* questions evaluated (correct + incorrect) */
    uint64_t skipped; /* questions skipped for a word outside the known words */
    double accuracy;  /* correct / total, 0 when total is 0 */
} embt_analogy_section;

typedef struct embt_analogy_report {
    embt_analogy_section *sections; /* file order */
    size_t n_sections;
    uint64_t correct, total, skipped; /* over all sections ("Total accuracy" in gensim) */
    double accuracy;                  /* correct / total, 0 when total is 0 */
    double oov_ratio;                 /* skipped / (total + skipped) * 100, 0 when no question */
    uint64_t invalid_lines;           /* lines that are not 4 words (skipped uncounted) */
} embt_analogy_report;

/* Analogy accuracy on a file in the layout of word2vec's questions-words.txt: ": name" opens a
 * section, other lines are "a b c d" (a is to b as c is to d), split on white space. Exactly as gensim:
 * the known words are the first restrict_rows tokens; case-insensitive by default (words and tokens
 * upper-cased with Python 3.11's full Unicode mapping; among tokens with the same upper-case form the
 * lowest id wins); a question with an unknown word is skipped and counted; the prediction is the
 * first of the top 5 of most_similar([b, c], [a]) (restricted, a, b, c excluded) whose upper-cased
 * form is not a, b or c; a line of other than 4 words is skipped uncounted. The index's table must be
 * tied to a vocabulary. On success *out owns the report (free with embt_analogy_report_free()).
 * Errors: EMBT_EIO, EMBT_EPARSE (a question before any section, invalid UTF-8; line set), EMBT_EINVAL
 * (table without vocabulary), EMBT_ENOMEM. */
EMBT_API embt_status embt_eval_analogies(embt_analogy_report **out, const embt_index *index,
                                         const char *path, const embt_eval_options *opts);
/* NULL is fine. */
EMBT_API void embt_analogy_report_free(embt_analogy_report *report);

typedef struct embt_pairs_report {
    double pearson;         /* Pearson r of gold scores and cosines; NaN when undefined */
    double spearman;        /* Spearman rho (Pearson on average-tied ranks); NaN when undefined */
    uint64_t pairs;         /* pairs used */
    uint64_t oov;           /* pairs skipped for an unknown word */
    double oov_ratio;       /* oov / (pairs + oov) * 100 */
    uint64_t invalid_lines; /* lines that are not word<TAB>word<TAB>number, skipped */
} embt_pairs_report;

/* Correlation with human judgements on a word-pair file, one "word1<TAB>word2<TAB>score" per line
 * (CRLF accepted, "#" lines skipped), as gensim evaluate_word_pairs(): known words and case folding
 * as in embt_eval_analogies(), similarity = cosine. Errors: EMBT_EIO, EMBT_EPARSE (invalid UTF-8),
 * EMBT_EINVAL (no usable pair, table without vocabulary), EMBT_ENOMEM. */
EMBT_API embt_status embt_eval_pairs(embt_pairs_report *out, const embt_index *index,
                                     const char *path, const embt_eval_options *opts);

#ifdef __cplusplus
}
#endif
#endif
