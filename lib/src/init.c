/* init.c: writable float32 matrices (alloc, release, from_pretrained copy) and the initialisers of
 * nn.Embedding, nn.Linear and torch.nn.init, into a matrix or streamed to a writer. The values depend
 * only on (kind, parameters, seed, shape): one embt_rng draws the elements in row-major order, so the
 * matrix and the streamed table are identical, and identical on every machine. */
#include <math.h>

#include "rng.h"

static embt_status matrix_bytes(size_t *out, uint64_t rows, uint64_t cols)
{
    uint64_t n;
    if (!embt__mul_u64(&n, rows, cols) || !embt__mul_u64(&n, n, sizeof(float)) || n > SIZE_MAX)
        return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                           "matrix of %llu x %llu floats exceeds the address space",
                           (unsigned long long)rows, (unsigned long long)cols);
    *out = (size_t)n;
    return EMBT_OK;
}

embt_status embt_matrix_alloc(embt_matrix *out, uint64_t rows, uint64_t cols)
{
    EMBT_CHECK_ARG(out != NULL);
    memset(out, 0, sizeof *out);
    size_t bytes = 0;
    embt_status st = matrix_bytes(&bytes, rows, cols);
    if (st)
        return st;
    if (bytes > 0 && !(out->data = embt__calloc(1, bytes)))
        return embt__error_nomem();
    out->rows = rows;
    out->cols = cols;
    return EMBT_OK;
}

void embt_matrix_release(embt_matrix *m)
{
    if (!m)
        return;
    embt__free(m->data);
    memset(m, 0, sizeof *m);
}

embt_status embt_matrix_from_table(embt_matrix *out, const embt_table *table)
{
    EMBT_CHECK_ARG(out && table);
    memset(out, 0, sizeof *out);
    embt_matrix m;
    embt_status st = embt_matrix_alloc(&m, embt_table_rows(table), embt_table_cols(table));
    if (st)
        return st;
    for (uint64_t r = 0; r < m.rows && m.cols > 0; r++) {
        if ((st = embt_table_read_row_f32(m.data + r * (size_t)m.cols, table, r))) {
            embt_matrix_release(&m);
            return st;
        }
    }
    *out = m;
    return EMBT_OK;
}

/* ---- the value stream ---- */

typedef struct init_gen {
    embt_rng rng;
    embt_init_kind kind;
    double a, b;         /* uniform: [a, b) as low + (high - low) d; normal: mean a, std b */
    const float *values; /* EMBT_INIT_VALUES */
    size_t next;         /* elements produced so far (values only) */
} init_gen;

static embt_status bad(const char *what, double v)
{
    return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "%s %g", what, v);
}

/* Checks the options for a (rows, cols) table and prepares the stream. *pad_out: the normalised
 * padding row or -1. */
static embt_status gen_start(init_gen *g, int64_t *pad_out, const embt_init_options *o,
                             uint64_t rows, uint64_t cols)
{
    if (o->version != EMBT_INIT_OPTIONS_VERSION)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "unknown init options version %u",
                           o->version);
    memset(g, 0, sizeof *g);
    embt_rng_seed(&g->rng, o->seed);
    g->kind = o->kind;
    double fan_in = (double)(o->fan_in ? o->fan_in : cols);
    double fan_out = (double)(o->fan_out ? o->fan_out : rows);
    switch (o->kind) {
    case EMBT_INIT_UNIFORM:
        if (!isfinite(o->low) || !isfinite(o->high) || !(o->low <= o->high))
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                               "uniform bounds %g, %g are not finite with low <= high", o->low,
                               o->high);
        g->a = o->low;
        g->b = o->high;
        break;
    case EMBT_INIT_NORMAL:
        if (!isfinite(o->mean))
            return bad("normal mean is not finite:", o->mean);
        if (!isfinite(o->std) || !(o->std >= 0))
            return bad("normal std is not finite and >= 0:", o->std);
        g->a = o->mean;
        g->b = o->std;
        break;
    case EMBT_INIT_KAIMING_UNIFORM: {
        if (!isfinite(o->slope))
            return bad("kaiming slope is not finite:", o->slope);
        if (fan_in == 0)
            return bad("kaiming fan_in must be > 0, got", fan_in);
        /* torch.nn.init.kaiming_uniform_(mode='fan_in', nonlinearity='leaky_relu') */
        double gain = sqrt(2.0 / (1.0 + o->slope * o->slope));
        double std = gain / sqrt(fan_in);
        double bound = sqrt(3.0) * std;
        g->kind = EMBT_INIT_UNIFORM;
        g->a = -bound;
        g->b = bound;
        break;
    }
    case EMBT_INIT_XAVIER_UNIFORM: {
        if (!isfinite(o->gain))
            return bad("xavier gain is not finite:", o->gain);
        if (fan_in + fan_out == 0)
            return bad("xavier fan_in + fan_out must be > 0, got", fan_in + fan_out);
        /* torch.nn.init.xavier_uniform_ */
        double std = o->gain * sqrt(2.0 / (fan_in + fan_out));
        double bound = sqrt(3.0) * std;
        g->kind = EMBT_INIT_UNIFORM;
        g->a = -bound;
        g->b = bound;
        break;
    }
    case EMBT_INIT_ZEROS: break;
    case EMBT_INIT_VALUES:
        if (!o->values && rows && cols)
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "init values not given");
        g->values = o->values;
        break;
    default:
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "unknown init kind %d",
                           (int)o->kind);
    }
    *pad_out = -1;
    if (o->padding_idx != EMBT_NO_PADDING) {
        int64_t p = o->padding_idx;
        if (p >= 0 ? (uint64_t)p >= rows : (uint64_t)(-(p + 1)) + 1 > rows)
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                               "padding_idx %lld out of range (%llu rows)", (long long)p,
                               (unsigned long long)rows);
        *pad_out = p < 0 ? (int64_t)rows + p : p;
    }
    return EMBT_OK;
}

/* The next n elements of the stream. */
static void gen_fill(init_gen *g, float *restrict dst, size_t n)
{
    /* dst: (n) */
    switch (g->kind) {
    case EMBT_INIT_UNIFORM:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)(g->a + (g->b - g->a) * embt_rng_double(&g->rng));
        break;
    case EMBT_INIT_NORMAL:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)(g->a + g->b * embt_rng_normal(&g->rng));
        break;
    case EMBT_INIT_VALUES:
        memcpy(dst, g->values + g->next, n * sizeof *dst);
        g->next += n;
        break;
    default: memset(dst, 0, n * sizeof *dst); break;
    }
}

embt_status embt_init_matrix(embt_matrix *m, const embt_init_options *opts)
{
    EMBT_CHECK_ARG(m && (m->data || m->rows == 0 || m->cols == 0));
    embt_init_options defaults = EMBT_INIT_OPTIONS_INIT;
    init_gen g;
    int64_t pad;
    embt_status st = gen_start(&g, &pad, opts ? opts : &defaults, m->rows, m->cols);
    if (st)
        return st;
    size_t cols = (size_t)m->cols;
    for (uint64_t r = 0; r < m->rows; r++)
        gen_fill(&g, m->data + r * cols, cols);
    if (pad >= 0)
        memset(m->data + (size_t)pad * cols, 0, cols * sizeof(float));
    return EMBT_OK;
}

enum { WRITE_CHUNK_FLOATS = 1 << 16 }; /* 256 KiB of rows per append */

embt_status embt_init_write(embt_writer *writer, const embt_table_spec *spec,
                            const embt_init_options *opts)
{
    EMBT_CHECK_ARG(writer && spec);
    embt_init_options defaults = EMBT_INIT_OPTIONS_INIT;
    init_gen g;
    int64_t pad;
    embt_status st = gen_start(&g, &pad, opts ? opts : &defaults, spec->rows, spec->cols);
    if (st)
        return st;
    size_t chunk_bytes;
    if ((st = matrix_bytes(&chunk_bytes, 1, spec->cols)))
        return st;
    /* the writer checks the shape against the limits before anything is allocated for it */
    if ((st = embt_writer_table_begin(writer, spec)))
        return st;
    size_t cols = (size_t)spec->cols;
    size_t per = cols == 0 ? 1 : (cols >= WRITE_CHUNK_FLOATS ? 1 : WRITE_CHUNK_FLOATS / cols);
    if (spec->rows < per) /* no buffer for rows a table does not have (0 x 2^31 - 1) */
        per = (size_t)spec->rows;
    size_t n_buf = per * cols > 0 ? per * cols : 1;
    float *buf = embt__malloc(n_buf * sizeof *buf); /* (per, cols) */
    if (!buf)
        return embt__error_nomem();
    for (uint64_t r = 0; r < spec->rows; r += per) {
        size_t m = spec->rows - r < per ? (size_t)(spec->rows - r) : per;
        gen_fill(&g, buf, m * cols);
        if (pad >= 0 && (uint64_t)pad >= r && (uint64_t)pad < r + m)
            memset(buf + (size_t)((uint64_t)pad - r) * cols, 0, cols * sizeof *buf);
        if ((st = embt_writer_table_append_f32(writer, buf, m)))
            goto done;
    }
    st = embt_writer_table_end(writer);
done:
    embt__free(buf);
    return st;
}
