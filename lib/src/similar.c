/* similar.c: the search index (row norms computed once) and the blocked multi-query scan behind
 * embt_similar(), embt_most_similar() and embt_analogy(): queries are packed into panels of 16 lanes,
 * the threads claim units of contiguous rows from a shared counter, and read each block of a unit once
 * per group of panels, keeping a bounded heap per query; the per-thread heaps are merged at the end.
 * Ties are broken by the lower id everywhere, so results do not depend on the thread count. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "kernels.h"

/* Rows per block (a multiple of EMBT__MR; 240 rows of 100 floats = 96 KB, inside L2) and panels per
 * group (16 panels of 100 x 16 floats = 100 KB): a block is read from memory once per group. */
#define ROW_BLOCK 240
#define PANEL_GROUP 16
/* Rows per unit of work a thread claims (8 blocks, 768 KB of 100-float rows): the threads take units
 * from a shared counter, so one that starts late or is preempted leaves its share to the others
 * instead of delaying the whole scan. */
#define UNIT_ROWS (8 * ROW_BLOCK)
/* Below this many rows a second thread costs more than it saves. */
#define MIN_ROWS_PER_THREAD 4096

void embt__index_row(float *dst, const embt_index *index, uint64_t id)
{
    const embt_table *t = index->table;
    float scale = t->scales ? t->scales[id] : 1.0f;
    embt__to_f32(dst, t->data + (size_t)id * t->row_bytes, t->dtype, index->dim, scale);
}

void embt__unitvec(float *v, size_t dim)
{
    double norm = sqrt(embt__sumsq(v, dim));
    if (!(norm > 0.0))
        return;
    float s = (float)(1.0 / norm);
    for (size_t i = 0; i < dim; i++)
        v[i] *= s;
}

/* ---- running work on several threads ------------------------------------------------------------ */

typedef void *(*task_fn)(void *arg);

/* Runs fn(args + i * size) for i in [0, n): n - 1 new threads plus the caller. */
static embt_status run_parallel(task_fn fn, void *args, size_t size, size_t n)
{
    pthread_t tid[64];
    size_t started = 0;
    embt_status st = EMBT_OK;
    for (size_t i = 1; i < n; i++) {
        int rc = pthread_create(&tid[i - 1], NULL, fn, (char *)args + i * size);
        if (rc != 0) {
            st = embt__error_sys(rc, "cannot start a search thread");
            break;
        }
        started++;
    }
    if (st == EMBT_OK)
        fn(args);
    for (size_t i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    return st;
}

static size_t thread_count(const embt_index *index, uint64_t rows)
{
    size_t n = index->threads;
    while (n > 1 && rows / n < MIN_ROWS_PER_THREAD)
        n--;
    return n;
}

/* ---- the index ---------------------------------------------------------------------------------- */

typedef struct norm_task {
    embt_index *index;
    uint64_t lo, hi;
    bool compute; /* false: norms are stored, only derive inv and sq */
    float *buf;   /* (dim) */
} norm_task;

static void *norm_worker(void *arg)
{
    norm_task *t = arg;
    embt_index *x = t->index;
    for (uint64_t r = t->lo; r < t->hi; r++) {
        double n;
        if (t->compute) {
            const float *row = t->buf;
            if (x->table->dtype == EMBT_DTYPE_F32)
                row =
                    (const float *)(const void *)(x->table->data + (size_t)r * x->table->row_bytes);
            else if (x->table->dtype == EMBT_DTYPE_F16)
                embt__f16_block_to_f32(t->buf, x->table->data + (size_t)r * x->table->row_bytes,
                                       x->table->row_bytes, x->dim, 1, x->generic);
            else
                embt__index_row(t->buf, x, r);
            n = sqrt(embt__sumsq(row, x->dim));
            x->owned_norms[r] = (float)n;
        }
        n = x->norms[r];
        x->inv_norms[r] = n > 0.0 ? (float)(1.0 / n) : 0.0f;
        x->sq_norms[r] = (float)(n * n);
    }
    return NULL;
}

embt_status embt_index_new(embt_index **out, const embt_table *table,
                           const embt_index_options *opts)
{
    EMBT_CHECK_ARG(out != NULL);
    *out = NULL;
    EMBT_CHECK_ARG(table != NULL);
    embt_index_options defaults = EMBT_INDEX_OPTIONS_INIT;
    if (!opts)
        opts = &defaults;
    if (opts->version != EMBT_INDEX_OPTIONS_VERSION)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "unknown index options version %u",
                           opts->version);
    if (opts->threads > 64 || (opts->flags & ~(EMBT_INDEX_GENERIC | EMBT_INDEX_RECOMPUTE_NORMS)))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "bad index options");
    if (table->rank != 2 || table->cols == 0 || table->cols > (1u << 24) ||
        table->rows > UINT32_MAX)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "table '%s' cannot be searched: it needs rank 2, 1 to 2^24 columns "
                           "and at most 2^32 - 1 rows",
                           table->name);
    embt_status st = EMBT_OK;
    norm_task tasks[64];
    size_t n_tasks = 0;
    embt_index *x = embt__calloc(1, sizeof *x);
    if (!x)
        return embt__error_nomem();
    x->table = table;
    x->rows = table->rows;
    x->dim = (size_t)table->cols;
    x->threads = opts->threads ? opts->threads : 2;
    x->generic = (opts->flags & EMBT_INDEX_GENERIC) != 0;
    x->kernels = embt__kernels_select(x->generic);
    size_t n = (size_t)x->rows ? (size_t)x->rows : 1;
    bool compute = !table->norms || (opts->flags & EMBT_INDEX_RECOMPUTE_NORMS);
    x->inv_norms = embt__malloc(n * sizeof(float));
    x->sq_norms = embt__malloc(n * sizeof(float));
    if (compute)
        x->owned_norms = embt__malloc(n * sizeof(float));
    if (!x->inv_norms || !x->sq_norms || (compute && !x->owned_norms)) {
        st = embt__error_nomem();
        goto done;
    }
    x->norms = compute ? x->owned_norms : table->norms;
    n_tasks = thread_count(x, x->rows);
    for (size_t i = 0; i < n_tasks; i++) {
        tasks[i] =
            (norm_task){x, x->rows * i / n_tasks, x->rows * (i + 1) / n_tasks, compute, NULL};
        if (compute && table->dtype != EMBT_DTYPE_F32 &&
            !(tasks[i].buf = embt__malloc(x->dim * sizeof(float)))) {
            st = embt__error_nomem();
            goto done;
        }
    }
    st = run_parallel(norm_worker, tasks, sizeof tasks[0], n_tasks);
done:
    for (size_t i = 0; i < n_tasks; i++)
        embt__free(tasks[i].buf);
    if (st) {
        embt_index_free(x);
        return st;
    }
    *out = x;
    return EMBT_OK;
}

void embt_index_free(embt_index *index)
{
    if (!index)
        return;
    embt__free(index->owned_norms);
    embt__free(index->inv_norms);
    embt__free(index->sq_norms);
    embt__free(index);
}

const embt_table *embt_index_table(const embt_index *index)
{
    return index ? index->table : NULL;
}

const float *embt_index_norms(const embt_index *index)
{
    return index ? index->norms : NULL;
}

const char *embt_index_kernels(const embt_index *index)
{
    return index ? index->kernels->name : NULL;
}

/* ---- top-k heaps -------------------------------------------------------------------------------- */

/* a ranks below b: lower score, or the same score and a higher id. */
static bool worse(embt_hit a, embt_hit b)
{
    return a.score < b.score || (a.score == b.score && a.id > b.id);
}

/* Min-heap on `worse`: h[0] is the weakest of the kept hits. */
static void heap_push(embt_hit *h, size_t n, embt_hit v)
{
    size_t i = n;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!worse(v, h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static void heap_replace_top(embt_hit *h, size_t n, embt_hit v)
{
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && worse(h[c + 1], h[c]))
            c++;
        if (!worse(h[c], v))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Best first: higher score, then lower id. */
static int cmp_hit_desc(const void *a, const void *b)
{
    const embt_hit *x = a, *y = b;
    if (worse(*y, *x))
        return -1;
    if (worse(*x, *y))
        return 1;
    return 0;
}

/* Best first for distances: lower score, then lower id. */
static int cmp_hit_asc(const void *a, const void *b)
{
    const embt_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* ---- the scan ----------------------------------------------------------------------------------- */

typedef struct scan_worker {
    const embt__scan *scan;
    const float *panels; /* (n_panels, dim, w) */
    size_t n_panels, w, slots;
    bool rowdot;          /* lanes <= EMBT__ROWDOT_LANES: the row-major kernel instead of panels */
    size_t n_lanes;       /* lanes in all */
    const uint32_t *excl; /* sorted shared exclusions */
    atomic_uint_fast64_t *next_unit; /* shared: the next unit of UNIT_ROWS rows to claim */
    uint64_t lo, hi;                 /* the rows of the unit being scanned */
    embt_hit *heap;                  /* (n_queries, k) */
    size_t *count;                   /* (n_queries) */
    float *thr;                      /* (n_queries): score a row must reach to be looked at */
    float *rowbuf;                   /* (ROW_BLOCK + EMBT__MR, dim) */
} scan_worker;

static bool excluded(const scan_worker *w, size_t q, uint32_t id)
{
    const embt__scan *s = w->scan;
    for (size_t i = 0; i < s->n_exclude_each; i++)
        if (s->exclude_each[q * s->n_exclude_each + i] == id)
            return true;
    return s->n_exclude && bsearch(&id, w->excl, s->n_exclude, sizeof id, cmp_u32);
}

static void consider(scan_worker *w, size_t q, uint32_t id, float score)
{
    if (excluded(w, q, id))
        return;
    size_t k = w->scan->k;
    embt_hit *h = w->heap + q * k;
    embt_hit v = {id, score};
    if (w->count[q] < k) {
        heap_push(h, w->count[q]++, v);
        if (w->count[q] == k)
            w->thr[q] = h[0].score;
    } else if (worse(h[0], v)) {
        heap_replace_top(h, k, v);
        w->thr[q] = h[0].score;
    }
}

/* s: (EMBT__MR, EMBT__LANES) raw dot products of rows r0 .. r0 + mr - 1 with panel p. */
static void epilogue(scan_worker *w, const float *s, uint64_t r0, size_t mr, size_t p)
{
    const embt__scan *sc = w->scan;
    const embt_index *x = sc->index;
    size_t q0 = p * w->slots;
    size_t nq = sc->n_queries - q0 < w->slots ? sc->n_queries - q0 : w->slots;
    /* thresholds of this panel's queries, +inf for lanes without one (consider() updates w->thr;
     * the copy is refreshed after every accepted candidate) */
    if (nq == 1 && !sc->cosmul) {
        /* one query (the common interactive case): lane 0 only */
        float t0 = w->thr[q0];
        for (size_t i = 0; i < mr; i++) {
            uint64_t r = r0 + i;
            float score = s[i * EMBT__LANES];
            if (sc->metric == EMBT_METRIC_COSINE)
                score *= x->inv_norms[r];
            else if (sc->metric == EMBT_METRIC_L2)
                score = score * 2.0f - x->sq_norms[r];
            if (score >= t0) {
                consider(w, q0, (uint32_t)r, score);
                t0 = w->thr[q0];
            }
        }
        return;
    }
    float thr[EMBT__LANES];
    for (size_t j = 0; j < EMBT__LANES; j++)
        thr[j] = j < nq && !sc->cosmul ? w->thr[q0 + j] : INFINITY;
    for (size_t i = 0; i < mr; i++) {
        uint64_t r = r0 + i;
        const float *si = s + i * EMBT__LANES;
        if (sc->cosmul) {
            float inv = x->inv_norms[r];
            for (size_t j = 0; j < nq; j++) {
                const float *g = si + j * sc->group;
                float num = 1.0f, den = 1.0f;
                for (size_t l = 0; l < sc->n_pos; l++)
                    num *= (1.0f + g[l] * inv) * 0.5f;
                for (size_t l = sc->n_pos; l < sc->group; l++)
                    den *= (1.0f + g[l] * inv) * 0.5f;
                float score = num / (den + 1e-6f);
                if (score >= w->thr[q0 + j])
                    consider(w, q0 + j, (uint32_t)r, score);
            }
            continue;
        }
        /* cosine: dot / norm; dot: as is; L2: 2 q.r - |r|^2 ranks as -|q - r|^2 + |q|^2 */
        float mul = 1.0f, add = 0.0f;
        if (sc->metric == EMBT_METRIC_COSINE)
            mul = x->inv_norms[r];
        else if (sc->metric == EMBT_METRIC_L2) {
            mul = 2.0f;
            add = -x->sq_norms[r];
        }
        /* a branch-free pass over all lanes (vectorised by the compiler), then the rare lanes
         * that reach their threshold; unused lanes compare against +inf */
        float score[EMBT__LANES];
        int any = 0;
        for (size_t j = 0; j < EMBT__LANES; j++) {
            score[j] = si[j] * mul + add;
            any |= score[j] >= thr[j];
        }
        if (!any)
            continue;
        for (size_t j = 0; j < nq; j++)
            if (score[j] >= thr[j]) {
                consider(w, q0 + j, (uint32_t)r, score[j]);
                thr[j] = w->thr[q0 + j];
            }
    }
}

/* Scans rows [w->lo, w->hi) against every panel. */
static void scan_unit(scan_worker *w)
{
    const embt__scan *sc = w->scan;
    const embt_index *x = sc->index;
    const embt_table *t = x->table;
    size_t dim = x->dim;
    embt__panel_fn kern = w->w == 16 ? x->kernels->panel16 : x->kernels->panel8;
    float s[EMBT__MR * EMBT__LANES];
    for (size_t pg = 0; pg < w->n_panels; pg += PANEL_GROUP) {
        size_t pend = pg + PANEL_GROUP < w->n_panels ? pg + PANEL_GROUP : w->n_panels;
        for (uint64_t r0 = w->lo; r0 < w->hi; r0 += ROW_BLOCK) {
            size_t nr = (size_t)(w->hi - r0 < ROW_BLOCK ? w->hi - r0 : ROW_BLOCK);
            size_t full = nr - nr % EMBT__MR;
            if (w->rowdot && t->dtype == EMBT_DTYPE_F16 && x->kernels->rowdot_f16) {
                /* few lanes on f16: rows widened in registers; a last partial micro-block is
                 * converted and padded */
                const uint8_t *base = t->data + (size_t)r0 * t->row_bytes;
                size_t ld = t->row_bytes / 2;
                for (size_t i = 0; i < full; i += EMBT__MR) {
                    x->kernels->rowdot_f16(s, (const uint16_t *)(const void *)base + i * ld, ld,
                                           sc->lanes, w->n_lanes, dim);
                    epilogue(w, s, r0 + i, EMBT__MR, 0);
                }
                if (full < nr) {
                    memset(w->rowbuf, 0, EMBT__MR * dim * sizeof(float));
                    embt__f16_block_to_f32(w->rowbuf, base + full * t->row_bytes, t->row_bytes, dim,
                                           nr - full, false);
                    x->kernels->rowdot(s, w->rowbuf, dim, sc->lanes, w->n_lanes, dim);
                    epilogue(w, s, r0 + full, nr - full, 0);
                }
                continue;
            }
            const float *rows = w->rowbuf;
            if (t->dtype == EMBT_DTYPE_F32) {
                /* f32 rows are read in place; only a last partial micro-block is copied and padded */
                rows = (const float *)(const void *)(t->data + (size_t)r0 * t->row_bytes);
                if (full < nr) {
                    memset(w->rowbuf, 0, EMBT__MR * dim * sizeof(float));
                    memcpy(w->rowbuf, rows + full * dim, (nr - full) * dim * sizeof(float));
                }
            } else {
                /* other dtypes are converted block by block; the padding rows stay zero */
                if (t->dtype == EMBT_DTYPE_F16)
                    embt__f16_block_to_f32(w->rowbuf, t->data + (size_t)r0 * t->row_bytes,
                                           t->row_bytes, dim, nr, x->generic);
                else
                    for (size_t i = 0; i < nr; i++)
                        embt__index_row(w->rowbuf + i * dim, x, r0 + i);
                memset(w->rowbuf + nr * dim, 0, (EMBT__MR - nr % EMBT__MR) * dim * sizeof(float));
                full = nr + (EMBT__MR - nr % EMBT__MR) % EMBT__MR;
            }
            if (w->rowdot) {
                /* few lanes: one panel, lanes kept row-major */
                for (size_t i = 0; i < full; i += EMBT__MR) {
                    x->kernels->rowdot(s, rows + i * dim, dim, sc->lanes, w->n_lanes, dim);
                    epilogue(w, s, r0 + i, nr - i < EMBT__MR ? nr - i : EMBT__MR, 0);
                }
                if (full < nr) {
                    x->kernels->rowdot(s, w->rowbuf, dim, sc->lanes, w->n_lanes, dim);
                    epilogue(w, s, r0 + full, nr - full, 0);
                }
                continue;
            }
            for (size_t p = pg; p < pend; p++) {
                const float *panel = w->panels + p * dim * w->w;
                for (size_t i = 0; i < full; i += EMBT__MR) {
                    kern(s, rows + i * dim, dim, panel, dim);
                    epilogue(w, s, r0 + i, nr - i < EMBT__MR ? nr - i : EMBT__MR, p);
                }
                if (full < nr) {
                    kern(s, w->rowbuf, dim, panel, dim);
                    epilogue(w, s, r0 + full, nr - full, p);
                }
            }
        }
    }
}

static void *scan_worker_run(void *arg)
{
    scan_worker *w = arg;
    uint64_t rows = w->scan->rows;
    for (;;) {
        uint64_t u = atomic_fetch_add_explicit(w->next_unit, 1, memory_order_relaxed);
        if (u >= (rows + UNIT_ROWS - 1) / UNIT_ROWS)
            return NULL;
        w->lo = u * UNIT_ROWS;
        w->hi = w->lo + UNIT_ROWS < rows ? w->lo + UNIT_ROWS : rows;
        scan_unit(w);
    }
}

/* The final score of row `row` (float32, dim) for query q, in double. */
static double rescore(const embt__scan *sc, size_t q, uint32_t id, const float *row)
{
    const embt_index *x = sc->index;
    size_t dim = x->dim;
    double norm = x->norms[id];
    if (sc->cosmul) {
        double num = 1.0, den = 1.0;
        for (size_t l = 0; l < sc->group; l++) {
            const float *u = sc->lanes + (q * sc->group + l) * dim;
            double cos = norm > 0.0 ? embt__dot_f64(u, row, dim) / norm : 0.0;
            double c = (1.0 + cos) / 2.0;
            if (l < sc->n_pos)
                num *= c;
            else
                den *= c;
        }
        return num / (den + 1e-6);
    }
    const float *v = sc->lanes + q * dim;
    if (sc->metric == EMBT_METRIC_COSINE)
        return norm > 0.0 ? embt__dot_f64(v, row, dim) / norm : 0.0;
    if (sc->metric == EMBT_METRIC_DOT)
        return embt__dot_f64(v, row, dim);
    double s = 0.0;
    for (size_t d = 0; d < dim; d++) {
        double e = (double)v[d] - (double)row[d];
        s += e * e;
    }
    return sqrt(s);
}

embt_status embt__scan_run(const embt__scan *sc)
{
    const embt_index *x = sc->index;
    size_t dim = x->dim, nq = sc->n_queries, k = sc->k;
    size_t n_threads = thread_count(x, sc->rows);
    size_t lanes = nq * sc->group;
    size_t w = lanes <= 8 ? 8 : 16;
    size_t slots = w / sc->group;
    size_t n_panels = (nq + slots - 1) / slots;
    embt_status st = EMBT_OK;
    scan_worker workers[64];
    memset(workers, 0, sizeof workers);
    atomic_uint_fast64_t next_unit = 0;
    float *panels = NULL, *row = NULL;
    uint32_t *excl = NULL;
    embt_hit *merged = NULL;
    size_t n_panel_floats = 0, n_heap = 0;
    if (nq == 0)
        return EMBT_OK;
    /* sizes: panels n_panels * dim * w floats, heaps nq * k hits per thread */
    if (__builtin_mul_overflow(n_panels, dim * w, &n_panel_floats) ||
        __builtin_mul_overflow(nq, k, &n_heap) || n_heap > SIZE_MAX / sizeof(embt_hit) / 64) {
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "%zu queries of %zu results are too many for one call", nq, k);
    }
    panels = embt__calloc(n_panel_floats ? n_panel_floats : 1, sizeof(float));
    row = embt__malloc(dim * sizeof(float));
    merged = embt__malloc(n_threads * (k ? k : 1) * sizeof(embt_hit));
    if (!panels || !row || !merged)
        goto nomem;
    /* panels[p][d][slot * group + l] = lanes[(p * slots + slot) * group + l][d] */
    for (size_t q = 0; q < nq; q++)
        for (size_t l = 0; l < sc->group; l++) {
            const float *src = sc->lanes + (q * sc->group + l) * dim;
            float *dst = panels + (q / slots) * dim * w + (q % slots) * sc->group + l;
            for (size_t d = 0; d < dim; d++)
                dst[d * w] = src[d];
        }
    if (sc->n_exclude) {
        if (!(excl = embt__malloc(sc->n_exclude * sizeof *excl)))
            goto nomem;
        memcpy(excl, sc->exclude, sc->n_exclude * sizeof *excl);
        qsort(excl, sc->n_exclude, sizeof *excl, cmp_u32);
    }
    for (size_t i = 0; i < n_threads; i++) {
        scan_worker *wk = &workers[i];
        *wk = (scan_worker){.scan = sc,
                            .panels = panels,
                            .n_panels = n_panels,
                            .w = w,
                            .slots = slots,
                            .rowdot = lanes <= EMBT__ROWDOT_LANES,
                            .n_lanes = lanes,
                            .excl = excl,
                            .next_unit = &next_unit};
        wk->heap = embt__malloc((n_heap ? n_heap : 1) * sizeof(embt_hit));
        wk->count = embt__calloc(nq, sizeof(size_t));
        wk->thr = embt__malloc(nq * sizeof(float));
        wk->rowbuf = embt__malloc((ROW_BLOCK + EMBT__MR) * dim * sizeof(float));
        if (!wk->heap || !wk->count || !wk->thr || !wk->rowbuf)
            goto nomem;
        for (size_t q = 0; q < nq; q++)
            wk->thr[q] = -INFINITY;
    }
    if ((st = run_parallel(scan_worker_run, workers, sizeof workers[0], n_threads)))
        goto done;
    for (size_t q = 0; q < nq; q++) {
        size_t m = 0;
        for (size_t i = 0; i < n_threads; i++) {
            memcpy(merged + m, workers[i].heap + q * k, workers[i].count[q] * sizeof(embt_hit));
            m += workers[i].count[q];
        }
        qsort(merged, m, sizeof *merged, cmp_hit_desc);
        if (m > k)
            m = k;
        for (size_t j = 0; j < m; j++) {
            embt__index_row(row, x, merged[j].id);
            merged[j].score = (float)rescore(sc, q, merged[j].id, row);
        }
        qsort(merged, m, sizeof *merged,
              sc->metric == EMBT_METRIC_L2 && !sc->cosmul ? cmp_hit_asc : cmp_hit_desc);
        embt_hit *out = sc->hits + q * k;
        memcpy(out, merged, m * sizeof *out);
        for (size_t j = m; j < k; j++)
            out[j] = (embt_hit){EMBT_NONE_ID, NAN};
        if (sc->n_hits)
            sc->n_hits[q] = m;
    }
    goto done;
nomem:
    st = embt__error_nomem();
done:
    for (size_t i = 0; i < n_threads; i++) {
        embt__free(workers[i].heap);
        embt__free(workers[i].count);
        embt__free(workers[i].thr);
        embt__free(workers[i].rowbuf);
    }
    embt__free(panels);
    embt__free(row);
    embt__free(excl);
    embt__free(merged);
    return st;
}

/* ---- embt_similar ------------------------------------------------------------------------------- */

embt_status embt_similar(embt_hit *hits, size_t *n_hits_out, const embt_index *index,
                         const float *queries, size_t n_queries, size_t k,
                         const embt_query_options *opts)
{
    EMBT_CHECK_ARG(index != NULL);
    EMBT_CHECK_ARG(n_queries == 0 || (hits && queries));
    embt_query_options defaults = EMBT_QUERY_OPTIONS_INIT;
    if (!opts)
        opts = &defaults;
    if (opts->version != EMBT_QUERY_OPTIONS_VERSION)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "unknown query options version %u",
                           opts->version);
    embt_metric metric = opts->metric ? opts->metric : EMBT_METRIC_COSINE;
    if (metric != EMBT_METRIC_COSINE && metric != EMBT_METRIC_DOT && metric != EMBT_METRIC_L2)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "unknown metric %d", (int)metric);
    if (k == 0)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "k must be at least 1");
    if ((opts->n_exclude && !opts->exclude) || (opts->n_exclude_each && !opts->exclude_each))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "exclusion list missing");
    size_t dim = index->dim;
    float *lanes = NULL;
    if (metric == EMBT_METRIC_COSINE && n_queries) {
        if (n_queries > SIZE_MAX / sizeof(float) / dim)
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "too many queries");
        if (!(lanes = embt__malloc(n_queries * dim * sizeof(float))))
            return embt__error_nomem();
        memcpy(lanes, queries, n_queries * dim * sizeof(float));
        for (size_t q = 0; q < n_queries; q++)
            embt__unitvec(lanes + q * dim, dim);
    }
    uint64_t rows = index->rows;
    if (opts->restrict_rows && opts->restrict_rows < rows)
        rows = opts->restrict_rows;
    embt__scan sc = {.index = index,
                     .metric = metric,
                     .n_queries = n_queries,
                     .group = 1,
                     .lanes = lanes ? lanes : queries,
                     .rows = rows,
                     .k = k,
                     .exclude = opts->exclude,
                     .n_exclude = opts->n_exclude,
                     .exclude_each = opts->exclude_each,
                     .n_exclude_each = opts->n_exclude_each,
                     .hits = hits,
                     .n_hits = n_hits_out};
    embt_status st = embt__scan_run(&sc);
    embt__free(lanes);
    return st;
}
