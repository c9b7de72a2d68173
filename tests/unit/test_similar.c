/* test_similar.c: the search index, embt_similar(), embt_most_similar() and embt_analogy(): results
 * against a brute-force reference in double on small tables (every metric, dtype, thread count and
 * both kernel paths, restrict, exclusions, ties, zero rows, more queries than one panel holds), and
 * against gensim 4's most_similar / most_similar_cosmul on the bundled GloVe sample
 * (tests/fixtures/gensim_eval, made by make_fixtures.py). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "test_util.h"

TestSuite(similar, .init = tu_setup, .fini = tu_teardown);

/* Writes a table (rows, cols) of `values` in `dtype`, tied to tokens "t0", "t1", ... */
static const char *write_table(const char *name, const float *values, uint32_t rows, uint32_t cols,
                               embt_dtype dtype)
{
    const char *path = tu_path(name);
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, path, NULL));
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    TU_OK(embt_writer_vocab_begin(w, &vs));
    for (uint32_t i = 0; i < rows; i++) {
        char tok[32];
        int n = snprintf(tok, sizeof tok, "t%u", i);
        TU_OK(embt_writer_vocab_add(w, tok, (size_t)n, 0, NULL));
    }
    TU_OK(embt_writer_vocab_end(w));
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = "embedding";
    ts.dtype = dtype;
    ts.rows = rows;
    ts.cols = cols;
    ts.vocab = "words";
    TU_OK(embt_writer_add_table_f32(w, &ts, values));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    return path;
}

typedef struct fixture {
    embt_file *file;
    const embt_table *table;
    embt_index *index;
} fixture;

static void open_fixture(fixture *f, const char *path, const embt_index_options *io)
{
    TU_OK(embt_file_open(&f->file, path, NULL));
    TU_OK(embt_file_table(&f->table, f->file, "embedding"));
    TU_OK(embt_index_new(&f->index, f->table, io));
}

static void close_fixture(fixture *f)
{
    embt_index_free(f->index);
    embt_file_close(f->file);
}

/* Random values, with rows 7 and 8 equal to row 3 (ties) and row 5 all zeros. */
static float *make_values(uint32_t rows, uint32_t cols, uint64_t seed)
{
    float *v = malloc(sizeof(float) * rows * cols);
    cr_assert_not_null(v);
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        v[i] = tu_randf(&seed, -1.0f, 1.0f);
    if (rows > 8) {
        memcpy(v + 7 * cols, v + 3 * cols, cols * sizeof(float));
        memcpy(v + 8 * cols, v + 3 * cols, cols * sizeof(float));
        memset(v + 5 * cols, 0, cols * sizeof(float));
    }
    return v;
}

typedef struct ref_hit {
    double score;
    uint32_t id;
} ref_hit;

static int cmp_ref_desc(const void *a, const void *b)
{
    const ref_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Brute force in double over rows (as the table stores them, converted to f32): best first. L2
 * scores are negated distances so one order serves all. Returns the number of hits. */
static size_t reference(ref_hit *out, const embt_table *t, const float *q, embt_metric metric,
                        uint64_t rows, const uint32_t *excl, size_t n_excl)
{
    size_t dim = (size_t)embt_table_cols(t), n = 0;
    float *row = malloc(dim * sizeof(float));
    double qn = 0;
    for (size_t d = 0; d < dim; d++)
        qn += (double)q[d] * q[d];
    qn = sqrt(qn);
    for (uint64_t r = 0; r < rows; r++) {
        bool skip = false;
        for (size_t i = 0; i < n_excl; i++)
            skip |= excl[i] == r;
        if (skip)
            continue;
        TU_OK(embt_table_read_row_f32(row, t, r));
        double dot = 0, rn = 0, l2 = 0;
        for (size_t d = 0; d < dim; d++) {
            dot += (double)q[d] * row[d];
            rn += (double)row[d] * row[d];
            l2 += ((double)q[d] - row[d]) * ((double)q[d] - row[d]);
        }
        double s = dot;
        if (metric == EMBT_METRIC_COSINE)
            s = rn > 0 && qn > 0 ? dot / (sqrt(rn) * qn) : 0.0;
        else if (metric == EMBT_METRIC_L2)
            s = -sqrt(l2);
        out[n++] = (ref_hit){s, (uint32_t)r};
    }
    qsort(out, n, sizeof *out, cmp_ref_desc);
    free(row);
    return n;
}

/* Checks hits (k) against the reference: same ids in the same order and scores within tol. */
static void check_hits(const embt_hit *hits, size_t n_hits, const ref_hit *ref, size_t n_ref,
                       size_t k, embt_metric metric, double tol)
{
    size_t want = n_ref < k ? n_ref : k;
    cr_assert_eq(n_hits, want, "%zu hits, expected %zu", n_hits, want);
    for (size_t i = 0; i < want; i++) {
        double s = metric == EMBT_METRIC_L2 ? -ref[i].score : ref[i].score;
        cr_assert_eq(hits[i].id, ref[i].id, "hit %zu: id %u, expected %u (score %.9g vs %.9g)", i,
                     hits[i].id, ref[i].id, (double)hits[i].score, s);
        cr_assert(fabs(hits[i].score - s) <= tol * (1 + fabs(s)), "hit %zu: score %.9g vs %.9g", i,
                  (double)hits[i].score, s);
    }
    for (size_t i = want; i < k; i++) {
        cr_assert_eq(hits[i].id, EMBT_NONE_ID);
        cr_assert(isnan(hits[i].score));
    }
}

/* nq queries (37: more than two panels of 16; 1 to 4: the row-major kernels), each excluding its own
 * row, over a 1000 x 23 table (1000 rows: a partial block and a partial micro-block at the end). */
static void run_queries(embt_dtype dtype, embt_metric metric, unsigned threads, bool generic,
                        uint64_t restrict_rows, size_t nq)
{
    enum { ROWS = 1000, COLS = 23, NQ = 37, K = 12 };
    cr_assert(nq >= 1 && nq <= NQ);
    float *v = make_values(ROWS, COLS, 42);
    fixture f;
    embt_index_options io = EMBT_INDEX_OPTIONS_INIT;
    io.threads = threads;
    io.flags = generic ? EMBT_INDEX_GENERIC : 0;
    open_fixture(&f, write_table("t.embt", v, ROWS, COLS, dtype), &io);
    float q[NQ * COLS];
    uint32_t excl[NQ];
    for (size_t i = 0; i < NQ; i++) {
        excl[i] = (uint32_t)(i * 26 % ROWS);
        TU_OK(embt_table_read_row_f32(q + i * COLS, f.table, excl[i]));
    }
    embt_hit hits[NQ * K];
    size_t n_hits[NQ];
    embt_query_options qo = EMBT_QUERY_OPTIONS_INIT;
    qo.metric = metric;
    qo.restrict_rows = restrict_rows;
    qo.exclude_each = excl;
    qo.n_exclude_each = 1;
    TU_OK(embt_similar(hits, n_hits, f.index, q, nq, K, &qo));
    ref_hit *ref = malloc(sizeof(ref_hit) * ROWS);
    uint64_t rows = restrict_rows && restrict_rows < ROWS ? restrict_rows : ROWS;
    for (size_t i = 0; i < nq; i++) {
        size_t n = reference(ref, f.table, q + i * COLS, metric, rows, &excl[i], 1);
        check_hits(hits + i * K, n_hits[i], ref, n, K, metric, 1e-6);
    }
    free(ref);
    free(v);
    close_fixture(&f);
}

static void run_batch(embt_dtype dtype, embt_metric metric, unsigned threads, bool generic,
                      uint64_t restrict_rows)
{
    run_queries(dtype, metric, threads, generic, restrict_rows, 37);
}

Test(similar, cosine_batch_matches_brute_force_on_f32)
{
    run_batch(EMBT_DTYPE_F32, EMBT_METRIC_COSINE, 2, false, 0);
}

Test(similar, cosine_batch_matches_brute_force_on_the_generic_path)
{
    run_batch(EMBT_DTYPE_F32, EMBT_METRIC_COSINE, 2, true, 0);
}

Test(similar, dot_and_l2_match_brute_force)
{
    run_batch(EMBT_DTYPE_F32, EMBT_METRIC_DOT, 2, false, 0);
    run_batch(EMBT_DTYPE_F32, EMBT_METRIC_L2, 2, false, 0);
    run_batch(EMBT_DTYPE_F32, EMBT_METRIC_L2, 1, true, 0);
}

Test(similar, one_to_four_queries_match_brute_force_on_f16_and_f32)
{
    /* the row-major kernels, f16 rows widened in registers, and the one-query epilogue */
    embt_dtype dtypes[] = {EMBT_DTYPE_F16, EMBT_DTYPE_F32, EMBT_DTYPE_BF16};
    embt_metric metrics[] = {EMBT_METRIC_COSINE, EMBT_METRIC_DOT, EMBT_METRIC_L2};
    for (size_t d = 0; d < 3; d++)
        for (size_t m = 0; m < 3; m++)
            for (size_t nq = 1; nq <= 4; nq += 3) {
                run_queries(dtypes[d], metrics[m], 2, false, 0, nq);
                run_queries(dtypes[d], metrics[m], 1, true, 0, nq);
            }
    run_queries(EMBT_DTYPE_F16, EMBT_METRIC_COSINE, 2, false, 997, 1);
}

Test(similar, every_dtype_matches_brute_force_on_its_converted_rows)
{
    run_batch(EMBT_DTYPE_F16, EMBT_METRIC_COSINE, 2, false, 0);
    run_batch(EMBT_DTYPE_BF16, EMBT_METRIC_DOT, 2, false, 0);
    run_batch(EMBT_DTYPE_I8, EMBT_METRIC_COSINE, 2, true, 0);
    run_batch(EMBT_DTYPE_F64, EMBT_METRIC_L2, 2, false, 0);
}

Test(similar, restrict_searches_only_the_first_rows)
{
    run_batch(EMBT_DTYPE_F32, EMBT_METRIC_COSINE, 2, false, 97);
    run_batch(EMBT_DTYPE_F32, EMBT_METRIC_COSINE, 3, true, 5);
}

Test(similar, results_do_not_depend_on_threads_or_kernels)
{
    enum { ROWS = 20000, COLS = 50, NQ = 20, K = 10 };
    float *v = make_values(ROWS, COLS, 7);
    const char *path = write_table("t.embt", v, ROWS, COLS, EMBT_DTYPE_F32);
    embt_hit base[NQ * K];
    for (int variant = 0; variant < 4; variant++) {
        fixture f;
        embt_index_options io = EMBT_INDEX_OPTIONS_INIT;
        io.threads = (unsigned[]){1, 2, 3, 2}[variant];
        io.flags = variant == 3 ? EMBT_INDEX_GENERIC : 0;
        open_fixture(&f, path, &io);
        embt_hit hits[NQ * K];
        TU_OK(embt_similar(hits, NULL, f.index, v + 100 * COLS, NQ, K, NULL));
        if (variant == 0)
            memcpy(base, hits, sizeof hits);
        for (size_t i = 0; i < NQ * K; i++) {
            cr_assert_eq(hits[i].id, base[i].id, "variant %d hit %zu", variant, i);
            /* reported scores are recomputed in double: identical bits on every path */
            cr_assert_eq(tu_f32_bits(hits[i].score), tu_f32_bits(base[i].score));
        }
        /* 3 queries take the row-major kernel instead of the panels: same answers */
        TU_OK(embt_similar(hits, NULL, f.index, v + 100 * COLS, 3, K, NULL));
        for (size_t i = 0; i < 3 * K; i++) {
            cr_assert_eq(hits[i].id, base[i].id, "variant %d, 3 queries, hit %zu", variant, i);
            cr_assert_eq(tu_f32_bits(hits[i].score), tu_f32_bits(base[i].score));
        }
        close_fixture(&f);
    }
    free(v);
}

Test(similar, ties_go_to_the_lower_id_and_zero_rows_score_zero)
{
    enum { ROWS = 40, COLS = 9 };
    float *v = make_values(ROWS, COLS, 3);
    fixture f;
    open_fixture(&f, write_table("t.embt", v, ROWS, COLS, EMBT_DTYPE_F32), NULL);
    embt_hit hits[3];
    size_t n;
    /* rows 3, 7 and 8 are equal: the query row 3 itself comes first, then 7, then 8 */
    TU_OK(embt_similar(hits, &n, f.index, v + 3 * COLS, 1, 3, NULL));
    cr_assert_eq(n, 3);
    cr_assert_eq(hits[0].id, 3);
    cr_assert_eq(hits[1].id, 7);
    cr_assert_eq(hits[2].id, 8);
    cr_assert_float_eq(hits[2].score, 1.0f, 1e-6);
    /* a zero query scores every row 0: the k lowest ids */
    float zero[COLS] = {0};
    TU_OK(embt_similar(hits, &n, f.index, zero, 1, 3, NULL));
    for (uint32_t i = 0; i < 3; i++) {
        cr_assert_eq(hits[i].id, i);
        cr_assert_eq(hits[i].score, 0.0f);
    }
    cr_assert_eq(embt_index_norms(f.index)[5], 0.0f);
    free(v);
    close_fixture(&f);
}

Test(similar, shared_exclusions_and_short_results)
{
    enum { ROWS = 10, COLS = 4 };
    float *v = make_values(ROWS, COLS, 11);
    fixture f;
    open_fixture(&f, write_table("t.embt", v, ROWS, COLS, EMBT_DTYPE_F32), NULL);
    uint32_t excl[] = {9, 0, 4, 4};
    embt_query_options qo = EMBT_QUERY_OPTIONS_INIT;
    qo.exclude = excl;
    qo.n_exclude = 4;
    embt_hit hits[2 * 12];
    size_t n[2];
    TU_OK(embt_similar(hits, n, f.index, v, 2, 12, &qo));
    ref_hit ref[ROWS];
    for (int q = 0; q < 2; q++) {
        size_t nr = reference(ref, f.table, v + q * COLS, EMBT_METRIC_COSINE, ROWS, excl, 4);
        cr_assert_eq(nr, 7);
        check_hits(hits + q * 12, n[q], ref, nr, 12, EMBT_METRIC_COSINE, 1e-6);
    }
    free(v);
    close_fixture(&f);
}

Test(similar, bad_arguments_are_einval)
{
    enum { ROWS = 10, COLS = 4 };
    float *v = make_values(ROWS, COLS, 1);
    fixture f;
    open_fixture(&f, write_table("t.embt", v, ROWS, COLS, EMBT_DTYPE_F32), NULL);
    embt_hit hits[4];
    embt_query_options qo = EMBT_QUERY_OPTIONS_INIT;
    TU_STATUS(embt_similar(hits, NULL, f.index, v, 1, 0, &qo), EMBT_EINVAL);
    qo.version = 99;
    TU_STATUS(embt_similar(hits, NULL, f.index, v, 1, 4, &qo), EMBT_EINVAL);
    qo = (embt_query_options)EMBT_QUERY_OPTIONS_INIT;
    qo.metric = (embt_metric)42;
    TU_STATUS(embt_similar(hits, NULL, f.index, v, 1, 4, &qo), EMBT_EINVAL);
    uint32_t pos[] = {1}, neg[] = {10};
    TU_STATUS(embt_most_similar(hits, NULL, f.index, pos, 1, neg, 1, 4, NULL), EMBT_EINVAL);
    TU_STATUS(embt_most_similar(hits, NULL, f.index, pos, 0, NULL, 0, 4, NULL), EMBT_EINVAL);
    uint32_t abc[] = {1, 2, 99};
    TU_STATUS(embt_analogy(hits, NULL, f.index, abc, 1, 4, NULL), EMBT_EINVAL);
    embt_index_options io = EMBT_INDEX_OPTIONS_INIT;
    io.threads = 65;
    embt_index *x = NULL;
    TU_STATUS(embt_index_new(&x, f.table, &io), EMBT_EINVAL);
    cr_assert_null(x);
    free(v);
    close_fixture(&f);
}

/* gensim's formulas written out in double for most_similar([b, c], [a]) and its cosmul. */
static void reference_analogy(ref_hit *ref, size_t *n_out, const embt_table *t, uint32_t a,
                              uint32_t b, uint32_t c, bool mul)
{
    size_t dim = (size_t)embt_table_cols(t), rows = (size_t)embt_table_rows(t), n = 0;
    double *u = calloc(3 * dim, sizeof(double)), *row = calloc(dim, sizeof(double));
    float *tmp = malloc(dim * sizeof(float));
    uint32_t in[3] = {b, c, a};
    for (int i = 0; i < 3; i++) {
        TU_OK(embt_table_read_row_f32(tmp, t, in[i]));
        double s = 0;
        for (size_t d = 0; d < dim; d++)
            s += (double)tmp[d] * tmp[d];
        for (size_t d = 0; d < dim; d++)
            u[i * dim + d] = tmp[d] / sqrt(s);
    }
    for (size_t r = 0; r < rows; r++) {
        if (r == a || r == b || r == c)
            continue;
        TU_OK(embt_table_read_row_f32(tmp, t, r));
        double rn = 0, cs[3] = {0, 0, 0};
        for (size_t d = 0; d < dim; d++)
            rn += (double)tmp[d] * tmp[d];
        rn = sqrt(rn);
        for (int i = 0; i < 3; i++) {
            for (size_t d = 0; d < dim; d++)
                cs[i] += u[i * dim + d] * tmp[d];
            cs[i] = rn > 0 ? cs[i] / rn : 0;
        }
        double s;
        if (mul)
            s = (1 + cs[0]) / 2 * (1 + cs[1]) / 2 / ((1 + cs[2]) / 2 + 1e-6);
        else {
            double m2 = 0;
            for (size_t d = 0; d < dim; d++) {
                double m = u[d] + u[dim + d] - u[2 * dim + d];
                m2 += m * m;
            }
            s = (cs[0] + cs[1] - cs[2]) / sqrt(m2);
        }
        ref[n++] = (ref_hit){s, (uint32_t)r};
    }
    qsort(ref, n, sizeof *ref, cmp_ref_desc);
    *n_out = n;
    free(u);
    free(row);
    free(tmp);
}

Test(similar, analogies_match_the_gensim_formulas_in_batches)
{
    enum { ROWS = 700, COLS = 31, NQ = 23, K = 8 };
    float *v = make_values(ROWS, COLS, 5);
    fixture f;
    open_fixture(&f, write_table("t.embt", v, ROWS, COLS, EMBT_DTYPE_F32), NULL);
    uint32_t abc[NQ * 3];
    /* row 5 is zero: gensim's unit vector of it is NaN, so the reference leaves it out */
    for (size_t i = 0; i < NQ * 3; i++)
        abc[i] = (uint32_t)((i * 97 + 13) % ROWS) == 5 ? 6 : (uint32_t)((i * 97 + 13) % ROWS);
    ref_hit *ref = malloc(sizeof(ref_hit) * ROWS);
    for (int mul = 0; mul < 2; mul++) {
        embt_most_similar_options mo = EMBT_MOST_SIMILAR_OPTIONS_INIT;
        mo.method = mul ? EMBT_ANALOGY_MUL : EMBT_ANALOGY_ADD;
        embt_hit hits[NQ * K], one[K];
        size_t n[NQ], n1;
        TU_OK(embt_analogy(hits, n, f.index, abc, NQ, K, &mo));
        for (size_t q = 0; q < NQ; q++) {
            size_t nr;
            reference_analogy(ref, &nr, f.table, abc[3 * q], abc[3 * q + 1], abc[3 * q + 2], mul);
            check_hits(hits + q * K, n[q], ref, nr, K, EMBT_METRIC_COSINE, 1e-5);
            /* the single-query entry point gives the same answers */
            uint32_t pos[2] = {abc[3 * q + 1], abc[3 * q + 2]};
            TU_OK(embt_most_similar(one, &n1, f.index, pos, 2, &abc[3 * q], 1, K, &mo));
            check_hits(one, n1, ref, nr, K, EMBT_METRIC_COSINE, 1e-5);
        }
    }
    free(ref);
    free(v);
    close_fixture(&f);
}

/* ---- gensim 4 on the bundled GloVe sample -------------------------------------------------- */

static void open_sample(fixture *f)
{
    const char *src = tu_source("data/sample/glove.6B.100d.20k.txt.gz");
    const char *path = tu_path("sample.embt");
    TU_OK(embt_convert_file(src, path, NULL));
    open_fixture(f, path, NULL);
}

static uint32_t id_of(const fixture *f, const char *tok)
{
    uint32_t id;
    TU_OK(embt_vocab_find(&id, embt_table_vocab(f->table), tok, strlen(tok)));
    return id;
}

/* Compares every query of a fixture file (key<TAB>rank<TAB>word<TAB>score lines) with `run`. */
typedef void (*run_fn)(embt_hit *hits, size_t *n, const fixture *f, const char *key);

static void compare_fixture(const fixture *f, const char *name, run_fn run)
{
    const char *path = tu_fixture("gensim_eval", name);
    FILE *in = fopen(path, "r");
    cr_assert_not_null(in, "%s", path);
    char line[512], key[256] = "";
    embt_hit hits[10];
    size_t n = 0, lines = 0;
    while (fgets(line, sizeof line, in)) {
        char *k = strtok(line, "\t"), *rank = strtok(NULL, "\t"), *word = strtok(NULL, "\t"),
             *score = strtok(NULL, "\n");
        cr_assert(k && rank && word && score);
        if (strcmp(k, key) != 0) {
            snprintf(key, sizeof key, "%s", k);
            run(hits, &n, f, key);
            cr_assert_eq(n, 10);
        }
        int r = atoi(rank);
        cr_assert_eq(hits[r].id, id_of(f, word), "%s: rank %d is %s in gensim", key, r, word);
        cr_assert(fabs(hits[r].score - strtod(score, NULL)) < 1e-5, "%s: %s %.9g vs gensim %s", key,
                  word, (double)hits[r].score, score);
        lines++;
    }
    fclose(in);
    cr_assert_geq(lines, 50);
}

static void run_neighbours(embt_hit *hits, size_t *n, const fixture *f, const char *key)
{
    uint32_t id = id_of(f, key);
    TU_OK(embt_most_similar(hits, n, f->index, &id, 1, NULL, 0, 10, NULL));
}

static void run_analogy(embt_hit *hits, size_t *n, const fixture *f, const char *key, bool mul)
{
    char a[64], b[64], c[64];
    cr_assert_eq(sscanf(key, "%63s %63s %63s", a, b, c), 3);
    uint32_t abc[3] = {id_of(f, a), id_of(f, b), id_of(f, c)};
    embt_most_similar_options mo = EMBT_MOST_SIMILAR_OPTIONS_INIT;
    mo.method = mul ? EMBT_ANALOGY_MUL : EMBT_ANALOGY_ADD;
    TU_OK(embt_analogy(hits, n, f->index, abc, 1, 10, &mo));
}

static void run_add(embt_hit *hits, size_t *n, const fixture *f, const char *key)
{
    run_analogy(hits, n, f, key, false);
}

static void run_mul(embt_hit *hits, size_t *n, const fixture *f, const char *key)
{
    run_analogy(hits, n, f, key, true);
}

Test(similar, gensim_neighbours_and_analogies_on_the_glove_sample, .timeout = 300)
{
    fixture f;
    open_sample(&f);
    compare_fixture(&f, "neighbours.tsv", run_neighbours);
    compare_fixture(&f, "analogy_add.tsv", run_add);
    compare_fixture(&f, "analogy_mul.tsv", run_mul);
    close_fixture(&f);
}
