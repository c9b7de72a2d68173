/* import_text.c: the word2vec and GloVe text importer (embt__import_text): detects the header,
 * parses rows in parallel batches with the exact float parser and streams them through the writer,
 * applying the duplicate and UTF-8 policies of the options. Strict mode streams in one pass; a
 * lenient policy first plans which line feeds which output row, then parses the chosen lines. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "convert.h"
#include "parse_float.h"

#define LINE_BYTES_MAX (16u << 20)  /* longest accepted line, terminator excluded */
#define TOKEN_BYTES_MAX 65535u      /* spec/FORMAT.md 10 */
#define BATCH_ROWS_MAX 65536u       /* rows parsed before they are handed to the writer */
#define BATCH_VALUES_MAX (1u << 20) /* floats buffered per batch (4 MiB) */
#define ROWS_PER_THREAD_MIN 512u    /* below this a batch is parsed by the calling thread only */
#define THREADS_MAX 8
#define DETECT_NUL_BYTES 65536u      /* auto-detection looks for NUL bytes in this prefix */
#define DIM_MAX (LINE_BYTES_MAX / 2) /* each value takes at least a digit and a blank */
#define HEADER_NUMBER_MAX UINT64_C(1000000000000000)
#define DROP_BYTES (16u << 20) /* release the mapping's pages in steps of this size */

/* ---- lines and fields ----------------------------------------------------------------------- */

static inline bool is_blank(uint8_t c)
{
    return c == ' ' || c == '\t';
}

static inline bool is_trailing_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* End of the line starting at pos (the offset of its '\n', or size). */
static size_t line_end(const uint8_t *data, size_t size, size_t pos)
{
    const uint8_t *nl = memchr(data + pos, '\n', size - pos);
    return nl ? (size_t)(nl - data) : size;
}

static size_t strip_trailing(const uint8_t *data, size_t start, size_t end)
{
    while (end > start && is_trailing_space(data[end - 1]))
        end--;
    return end;
}

/* Number of blank-separated fields in [start, end), counting at most `stop`. */
static uint64_t count_fields(const uint8_t *data, size_t start, size_t end, uint64_t stop)
{
    uint64_t n = 0;
    size_t p = start;
    while (p < end && n < stop) {
        while (p < end && is_blank(data[p]))
            p++;
        if (p == end)
            break;
        n++;
        while (p < end && !is_blank(data[p]))
            p++;
    }
    return n;
}

/* Parses [start, end) as an unsigned decimal integer; false when it is not one or exceeds max. */
static bool parse_uint(uint64_t *out, const uint8_t *data, size_t start, size_t end, uint64_t max)
{
    uint64_t v = 0;
    if (start == end)
        return false;
    for (size_t p = start; p < end; p++) {
        if (data[p] < '0' || data[p] > '9')
            return false;
        v = v * 10 + (uint64_t)(data[p] - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

/* Copies up to 32 bytes of a field into dst for a message, '?' for anything but printable ASCII. */
static void quote_field(char *dst, size_t cap, const uint8_t *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < cap && i < 32; i++)
        dst[k++] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
    if (n > 32 && k + 4 < cap) {
        memcpy(dst + k, "...", 3);
        k += 3;
    }
    dst[k] = '\0';
}

/* ---- row parsing (runs on worker threads: never touches the error record) -------------------- */

typedef struct token_span {
    uint64_t
        offset; /* of the token in the input; once checked for duplicates, in the token arena */
    uint32_t length;
} token_span;

typedef struct parse_problem {
    embt_status code; /* EMBT_EPARSE or EMBT_ENOMEM */
    uint32_t column;  /* 1-based byte column */
    uint64_t offset;  /* absolute byte offset */
    char message[200];
} parse_problem;

typedef struct row_job {
    const uint8_t *data;
    size_t size;          /* bytes at data: 8-byte loads stay below it */
    const size_t *starts; /* (n) line starts */
    const size_t *ends;   /* (n) line ends (offset of the '\n' or of the end of input) */
    size_t n;
    uint32_t dim;
    bool allow_nonfinite;
    bool check_utf8;    /* strict UTF-8 policy: a bad token fails the row here */
    float *values;      /* (n, dim) output */
    token_span *tokens; /* (n) output */
    size_t *fields;     /* (dim, 2) scratch: start and end of each value */
    size_t bad_row;     /* first row that failed, n when none */
    uint64_t nonfinite; /* NaN and infinity values accepted */
    parse_problem problem;
} row_job;

static bool fail_row(row_job *job, size_t row, size_t line_start, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static bool fail_row(row_job *job, size_t row, size_t line_start, size_t at, const char *fmt, ...)
{
    va_list ap;
    job->bad_row = row;
    job->problem.code = EMBT_EPARSE;
    job->problem.column = (uint32_t)(at - line_start + 1);
    job->problem.offset = at;
    va_start(ap, fmt);
    vsnprintf(job->problem.message, sizeof job->problem.message, fmt, ap);
    va_end(ap);
    return false;
}

/* The general row parser: the values are the last dim fields, the token is the rest (it may hold
 * blanks); reports every malformed class with its column. */
static bool parse_row_slow(row_job *job, size_t row)
{
    const uint8_t *data = job->data;
    const uint32_t dim = job->dim;
    size_t s = job->starts[row];
    size_t e = job->ends[row];
    size_t *fs = job->fields;
    char quoted[48];

    if (e - s > LINE_BYTES_MAX)
        return fail_row(job, row, s, s + LINE_BYTES_MAX, "line length %zu exceeds %u bytes", e - s,
                        LINE_BYTES_MAX);
    e = strip_trailing(data, s, e);

    /* the values are the last dim fields; find where each starts, right to left */
    size_t p = e;
    for (uint32_t k = dim; k > 0; k--) {
        while (p > s && is_blank(data[p - 1]))
            p--;
        if (p == s) {
            uint32_t found = dim - k; /* the leftmost field would be the token */
            return fail_row(job, row, s, e, "expected %u values, found %u", dim,
                            found > 0 ? found - 1 : 0);
        }
        fs[2 * (k - 1) + 1] = p;
        while (p > s && !is_blank(data[p - 1]))
            p--;
        fs[2 * (k - 1)] = p;
    }
    size_t token_end = p;
    while (token_end > s && is_blank(data[token_end - 1]))
        token_end--;
    if (token_end == s) {
        if (p == s)
            return fail_row(job, row, s, e, "expected %u values, found %u", dim, dim - 1);
        return fail_row(job, row, s, s, "empty token");
    }

    /* the token */
    size_t token_len = token_end - s;
    if (token_len > TOKEN_BYTES_MAX)
        return fail_row(job, row, s, s, "token length %zu exceeds %u bytes", token_len,
                        TOKEN_BYTES_MAX);
    size_t bad_at = 0;
    if (job->check_utf8 && !embt__utf8_valid(data + s, token_len, &bad_at))
        return fail_row(job, row, s, s + bad_at, "invalid utf-8 in token at byte %zu", bad_at + 1);
    /* a token may hold blanks, but numbers at its end mean the line has too many values */
    size_t extra = 0, extra_at = token_end, q = token_end;
    for (;;) {
        size_t word_end = q;
        size_t word_start = word_end;
        while (word_start > s && !is_blank(data[word_start - 1]))
            word_start--;
        if (word_start == s)
            break; /* the first word is the token proper, numeric or not */
        float ignored;
        if (embt__parse_f32(&ignored, (const char *)data + word_start, word_end - word_start) != 0)
            break;
        extra++;
        extra_at = word_start;
        q = word_start;
        while (q > s && is_blank(data[q - 1]))
            q--;
    }
    if (extra > 0)
        return fail_row(job, row, s, extra_at, "expected %u values, found %zu", dim, dim + extra);

    /* the values, left to right */
    float *v = job->values + (size_t)row * dim;
    for (uint32_t k = 0; k < dim; k++) {
        size_t a = fs[2 * k];
        size_t b = fs[2 * k + 1];
        int prc = embt__parse_f32(&v[k], (const char *)data + a, b - a);
        if (prc == -2) {
            job->bad_row = row;
            job->problem.code = EMBT_ENOMEM;
            return false;
        }
        if (prc != 0) {
            quote_field(quoted, sizeof quoted, data + a, b - a);
            return fail_row(job, row, s, a, "value %u '%s' is not a number", k + 1, quoted);
        }
        if (!isfinite(v[k])) {
            if (!job->allow_nonfinite) {
                quote_field(quoted, sizeof quoted, data + a, b - a);
                return fail_row(job, row, s, a, "value %u '%s' is not finite", k + 1, quoted);
            }
            job->nonfinite++;
        }
    }
    job->tokens[row].offset = s;
    job->tokens[row].length = (uint32_t)token_len;
    return true;
}

/* ---- the fast path: token without blanks, then dim plain decimals ------------------------------
 * Digits are read eight at a time (SWAR): the value is exact by Clinger's rule (ANCHORS.md 4.1),
 * the same one embt__parse_f32 applies, and anything else (exponents, long mantissas, nan, errors)
 * goes to embt__parse_f32 or to the general parser, so results never depend on the path. */

static const float pow10_f32[11] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f,
                                    1e6f, 1e7f, 1e8f, 1e9f, 1e10f};
static const uint64_t pow10_u64[9] = {1,      10,      100,      1000,     10000,
                                      100000, 1000000, 10000000, 100000000};

static inline uint64_t load8(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Number of leading ASCII digits among the 8 bytes of v (first byte lowest). A byte >= 0xFA may
 * carry into the next byte, but only bytes after the first non-digit are affected. */
static inline unsigned leading_digits8(uint64_t v)
{
    uint64_t hi = v & UINT64_C(0xF0F0F0F0F0F0F0F0);
    uint64_t hi6 = (v + UINT64_C(0x0606060606060606)) & UINT64_C(0xF0F0F0F0F0F0F0F0);
    uint64_t x = (hi ^ UINT64_C(0x3030303030303030)) | (hi6 ^ UINT64_C(0x3030303030303030));
    return x ? (unsigned)__builtin_ctzll(x) / 8 : 8;
}

/* The value of the first n (1..8) digits of v: the others are shifted out, zeros shifted in act
 * as leading zeros; then pairs, quads and octets are combined by multiplication. */
static inline uint64_t digits8_value(uint64_t v, unsigned n)
{
    v -= UINT64_C(0x3030303030303030);
    v <<= (8 - n) * 8;
    v = v * 10 + (v >> 8);
    v = (((v & UINT64_C(0x000000FF000000FF)) * (100 + (UINT64_C(1000000) << 32))) +
         (((v >> 16) & UINT64_C(0x000000FF000000FF)) * (1 + (UINT64_C(10000) << 32)))) >>
        32;
    return v & 0xFFFFFFFFu;
}

/* Parses the value starting at data[p] (not a blank) and ending at a blank or at e. Returns the
 * offset after it, or 0 when it is not a number (the general parser then says why). */
static inline size_t parse_value(float *out, const uint8_t *data, size_t size, size_t p, size_t e)
{
    size_t f = p;
    bool negative = data[p] == '-';
    if (data[p] == '-' || data[p] == '+')
        p++;
    uint64_t w = 0;
    unsigned nd = 0;
    while (p < e && (unsigned)(data[p] - '0') < 10 && nd < 9) {
        w = w * 10 + (unsigned)(data[p] - '0');
        nd++;
        p++;
    }
    unsigned nf = 0;
    if (p < e && data[p] == '.' && nd < 9) {
        p++;
        if (p + 8 <= size) {
            unsigned n = leading_digits8(load8(data + p));
            if (n > 0 && p + n <= e) {
                w = w * pow10_u64[n] + digits8_value(load8(data + p), n);
                nf = n;
                p += n;
            }
        }
        while (p < e && (unsigned)(data[p] - '0') < 10 && nf < 10) {
            w = w * 10 + (unsigned)(data[p] - '0');
            nf++;
            p++;
        }
    }
    if ((p < e && !is_blank(data[p])) || nd + nf == 0 || w > (UINT64_C(1) << 24)) {
        while (p < e && !is_blank(data[p])) /* the whole field, for the exact fallback */
            p++;
        return embt__parse_f32(out, (const char *)data + f, p - f) == 0 ? p : 0;
    }
    float v = w == 0 ? 0.0f : (float)w / pow10_f32[nf];
    *out = negative ? -v : v;
    return p;
}

/* The common row shape; false sends the row to parse_row_slow (which also explains failures). */
static bool parse_row_fast(row_job *job, size_t row)
{
    const uint8_t *data = job->data;
    size_t s = job->starts[row];
    size_t e = job->ends[row];
    if (e - s > LINE_BYTES_MAX)
        return false;
    e = strip_trailing(data, s, e);
    size_t p = s;
    while (p < e && !is_blank(data[p]))
        p++;
    size_t token_len = p - s;
    if (token_len == 0 || token_len > TOKEN_BYTES_MAX)
        return false;
    if (job->check_utf8 && !embt__utf8_valid(data + s, token_len, NULL))
        return false;
    float *v = job->values + (size_t)row * job->dim;
    uint64_t nonfinite = 0;
    for (uint32_t k = 0; k < job->dim; k++) {
        if (p == e || !is_blank(data[p]))
            return false;
        while (p < e && is_blank(data[p]))
            p++;
        if (p == e)
            return false;
        p = parse_value(&v[k], data, job->size, p, e);
        if (p == 0)
            return false;
        if (!isfinite(v[k])) {
            if (!job->allow_nonfinite)
                return false;
            nonfinite++;
        }
    }
    if (p != e)
        return false;
    job->nonfinite += nonfinite;
    job->tokens[row].offset = s;
    job->tokens[row].length = (uint32_t)token_len;
    return true;
}

static bool parse_row(row_job *job, size_t row)
{
    return parse_row_fast(job, row) || parse_row_slow(job, row);
}

static void *run_job(void *arg)
{
    row_job *job = arg;
    job->bad_row = job->n;
    for (size_t i = 0; i < job->n; i++)
        if (!parse_row(job, i))
            break;
    return NULL;
}

/* ---- tokens: copied in order into one arena (so the input's pages can be dropped), and an
 * open-addressing set of row numbers over it to find duplicates -------------------------------- */

typedef struct token_store {
    uint8_t *arena; /* the checked tokens' bytes, concatenated */
    size_t used, cap;
    uint32_t *slots; /* row + 1, 0 = empty */
    size_t mask;
} token_store;

static embt_status token_store_init(token_store *ts, uint64_t rows)
{
    size_t n = 16;
    while (n < rows * 2)
        n *= 2;
    memset(ts, 0, sizeof *ts);
    ts->slots = embt__calloc(n, sizeof *ts->slots);
    ts->mask = n - 1;
    return ts->slots ? EMBT_OK : embt__error_nomem();
}

static void token_store_free(token_store *ts)
{
    embt__free(ts->arena);
    embt__free(ts->slots);
}

/* Adds the token of row `row` (bytes at `bytes`, tokens[row].length long), moving its offset into
 * the arena. *first_out receives the earlier row holding the same token, or UINT32_MAX (then the
 * token is added). Errors: EMBT_ENOMEM. */
static embt_status token_store_add(uint32_t *first_out, token_store *ts, token_span *tokens,
                                   uint32_t row, const uint8_t *bytes)
{
    uint32_t len = tokens[row].length;
    size_t i = (size_t)embt__fnv1a64(bytes, len) & ts->mask;
    for (;;) {
        uint32_t slot = ts->slots[i];
        if (slot == 0)
            break;
        const token_span *o = &tokens[slot - 1];
        if (o->length == len && memcmp(ts->arena + o->offset, bytes, len) == 0) {
            *first_out = slot - 1;
            return EMBT_OK;
        }
        i = (i + 1) & ts->mask;
    }
    if (ts->cap - ts->used < len) {
        size_t cap = ts->cap ? ts->cap : 65536;
        while (cap - ts->used < len)
            cap *= 2;
        uint8_t *grown = embt__realloc(ts->arena, cap);
        if (!grown)
            return embt__error_nomem();
        ts->arena = grown;
        ts->cap = cap;
    }
    memcpy(ts->arena + ts->used, bytes, len);
    tokens[row].offset = ts->used;
    ts->used += len;
    ts->slots[i] = row + 1;
    *first_out = UINT32_MAX;
    return EMBT_OK;
}

/* Marks a writer failure as concerning the output file (the CLI then names OUTPUT, not INPUT). */
static embt_status output_failure(embt_status rc)
{
    if (rc != EMBT_OK && rc != EMBT_EPARSE)
        embt__error_set_section("output");
    return rc;
}

/* ---- the conversion ------------------------------------------------------------------------- */

typedef struct layout {
    embt_format format; /* WORD2VEC or GLOVE */
    uint32_t dim;
    size_t body;        /* offset of the first row */
    uint32_t body_line; /* its line number */
    size_t end;         /* end of the text once trailing blank lines are dropped */
    uint64_t lines;     /* rows in the body */
} layout;

/* Finds the format, dim and body of the text; EMBT_EPARSE / EMBT_EFORMAT on failure. */
static embt_status detect_layout(layout *out, const embt__input *in, embt_format from)
{
    const uint8_t *data = in->data;
    size_t size = in->size;
    size_t start = 0;
    size_t end = size;
    while (end > 0 && (is_trailing_space(data[end - 1]) || data[end - 1] == '\n'))
        end--;
    if (size >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF)
        start = 3; /* UTF-8 byte order mark */
    if (end <= start)
        return embt__error_parse(1, 1, 0, "empty input: no vectors");
    if (from == EMBT_FORMAT_AUTO) {
        size_t probe = end < DETECT_NUL_BYTES ? end : DETECT_NUL_BYTES;
        if (memchr(data, '\0', probe) != NULL)
            return embt__error(EMBT_EFORMAT, EMBT_NO_OFFSET, NULL, 0,
                               "input holds NUL bytes: not word2vec or glove text");
    }

    size_t l1_end = line_end(data, end, start);
    if (l1_end - start > LINE_BYTES_MAX)
        return embt__error_parse(1, LINE_BYTES_MAX + 1, start + LINE_BYTES_MAX,
                                 "line length %zu exceeds %u bytes", l1_end - start,
                                 LINE_BYTES_MAX);
    size_t l1_text = strip_trailing(data, start, l1_end);
    /* header candidate: exactly two decimal integers */
    uint64_t h_rows = 0, h_dim = 0;
    bool two_ints = false;
    {
        size_t a = start, b = a;
        while (b < l1_text && !is_blank(data[b]))
            b++;
        size_t c = b;
        while (c < l1_text && is_blank(data[c]))
            c++;
        size_t d = c;
        while (d < l1_text && !is_blank(data[d]))
            d++;
        two_ints = d == l1_text && c > b && parse_uint(&h_rows, data, a, b, HEADER_NUMBER_MAX) &&
                   parse_uint(&h_dim, data, c, d, HEADER_NUMBER_MAX);
    }
    size_t l2 = l1_end < end ? l1_end + 1 : end;
    bool header = false;
    if (from == EMBT_FORMAT_WORD2VEC) {
        if (!two_ints)
            return embt__error_parse(1, 1, start, "expected a header line 'rows dim'");
        header = true;
    } else if (from == EMBT_FORMAT_AUTO && two_ints) {
        /* "rows dim" is a header unless the text reads as GloVe with one value per line */
        if (l2 == end) {
            header = true; /* a header and no body */
        } else {
            size_t l2_text = strip_trailing(data, l2, line_end(data, end, l2));
            uint64_t need = h_dim + 1 > 2 ? h_dim + 1 : 2;
            uint64_t fields = count_fields(data, l2, l2_text, need + 1);
            header = h_dim >= 1 && fields >= h_dim + 1 ? true : fields != 2;
        }
    }

    memset(out, 0, sizeof *out);
    out->end = end;
    if (header) {
        if (h_dim < 1 || h_dim > DIM_MAX)
            return embt__error_parse(1, 1, start, "header dim %llu outside [1, %u]",
                                     (unsigned long long)h_dim, DIM_MAX);
        out->format = EMBT_FORMAT_WORD2VEC;
        out->dim = (uint32_t)h_dim;
        out->body = l2;
        out->body_line = 2;
    } else {
        uint64_t fields = count_fields(data, start, l1_text, (uint64_t)DIM_MAX + 2);
        if (fields < 2)
            return embt__error_parse(1, (uint32_t)(l1_text - start + 1), l1_text,
                                     "expected a token and at least one value, found %llu fields",
                                     (unsigned long long)fields);
        if (fields - 1 > DIM_MAX)
            return embt__error_parse(1, 1, start, "line holds more than %u values", DIM_MAX);
        out->format = EMBT_FORMAT_GLOVE;
        out->dim = (uint32_t)(fields - 1);
        out->body = start;
        out->body_line = 1;
    }

    /* count the rows */
    uint64_t lines = 0;
    if (out->body < end) {
        lines = 1;
        size_t dropped = out->body;
        for (size_t p = out->body;;) {
            const uint8_t *nl = memchr(data + p, '\n', end - p);
            if (!nl)
                break;
            lines++;
            p = (size_t)(nl - data) + 1;
            if (p - dropped >= DROP_BYTES) { /* counting need not keep the text resident */
                embt__input_drop(in, dropped, p);
                dropped = p;
            }
        }
    }
    if (lines + out->body_line > UINT32_MAX)
        return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                           "input has %llu lines, more than %u",
                           (unsigned long long)(lines + out->body_line), UINT32_MAX - 1u);
    out->lines = lines;
    if (header && h_rows != lines) {
        if (h_rows < lines) {
            size_t p = out->body;
            for (uint64_t i = 0; i < h_rows; i++)
                p = line_end(data, end, p) + 1;
            return embt__error_parse((uint32_t)(2 + h_rows), 1, p,
                                     "row %llu is beyond the %llu rows the header declares",
                                     (unsigned long long)(h_rows + 1), (unsigned long long)h_rows);
        }
        return embt__error_parse(1, 1, start, "header declares %llu rows, the file has %llu",
                                 (unsigned long long)h_rows, (unsigned long long)lines);
    }
    return EMBT_OK;
}

static bool dtype_is_float(embt_dtype dtype)
{
    return dtype == EMBT_DTYPE_F32 || dtype == EMBT_DTYPE_F16 || dtype == EMBT_DTYPE_BF16 ||
           dtype == EMBT_DTYPE_F64;
}

/* ---- parallel batches ------------------------------------------------------------------------ */

/* Splits batches of lines over the threads; the calling thread takes the first part. */
typedef struct batch_parser {
    const uint8_t *data;
    size_t size;
    uint32_t dim;
    bool allow_nonfinite;
    bool check_utf8;
    size_t n_threads;
    size_t *scratch; /* (n_threads, dim, 2) field bounds */
    row_job jobs[THREADS_MAX];
    pthread_t threads[THREADS_MAX];
    size_t per; /* rows per part in the last batch */
} batch_parser;

/* Parses the nb lines [starts[i], ends[i]) into values (nb, dim) and tokens (nb). Returns the index
 * of the first line that failed (nb when none); *bad_out then points at its problem. Adds the
 * accepted non-finite values to *nonfinite. */
static size_t parse_batch(batch_parser *bp, const size_t *starts, const size_t *ends, size_t nb,
                          float *values, token_span *tokens, const row_job **bad_out,
                          uint64_t *nonfinite)
{
    size_t parts = nb / ROWS_PER_THREAD_MIN;
    if (parts < 1)
        parts = 1;
    if (parts > bp->n_threads)
        parts = bp->n_threads;
    size_t per = (nb + parts - 1) / parts;
    size_t launched = 0;
    for (size_t t = 0; t < parts; t++) {
        size_t a = t * per;
        size_t b = a + per < nb ? a + per : nb;
        row_job *j = &bp->jobs[t];
        memset(j, 0, sizeof *j);
        j->data = bp->data;
        j->size = bp->size;
        j->starts = starts + a;
        j->ends = ends + a;
        j->n = a < b ? b - a : 0;
        j->dim = bp->dim;
        j->allow_nonfinite = bp->allow_nonfinite;
        j->check_utf8 = bp->check_utf8;
        j->values = values + a * bp->dim;
        j->tokens = tokens + a;
        j->fields = bp->scratch + t * bp->dim * 2;
    }
    /* workers take parts 1.., this thread part 0; a failed create runs the part here instead */
    for (size_t t = 1; t < parts; t++) {
        if (pthread_create(&bp->threads[t], NULL, run_job, &bp->jobs[t]) != 0)
            break;
        launched = t;
    }
    run_job(&bp->jobs[0]);
    for (size_t t = 1; t <= launched; t++)
        pthread_join(bp->threads[t], NULL);
    for (size_t t = launched + 1; t < parts; t++)
        run_job(&bp->jobs[t]);

    *bad_out = NULL;
    size_t good = nb;
    for (size_t t = 0; t < parts; t++) {
        if (bp->jobs[t].bad_row < bp->jobs[t].n) {
            *bad_out = &bp->jobs[t];
            good = t * per + bp->jobs[t].bad_row;
            break;
        }
        *nonfinite += bp->jobs[t].nonfinite;
    }
    return good;
}

/* The error record for a failed line. */
static embt_status job_failure(const row_job *bad, uint32_t line)
{
    if (bad->problem.code == EMBT_ENOMEM)
        return embt__error_nomem();
    return embt__error_parse(line, bad->problem.column, bad->problem.offset, "%s",
                             bad->problem.message);
}

/* ---- the import ------------------------------------------------------------------------------ */

/* Where an output row's values come from (lenient policies). */
typedef struct plan_row {
    size_t start, end; /* the line */
    uint32_t line;     /* its 1-based number */
} plan_row;

typedef struct text_import {
    const embt__import *ctx;
    const uint8_t *data;
    layout lay;
    embt_dtype dtype;
    batch_parser bp;
    size_t batch;       /* lines per batch */
    token_span *tokens; /* (rows) the output rows' tokens, in the store's arena */
    token_store store;
    float *values;            /* (2, batch, dim) */
    size_t *starts, *ends;    /* (2, batch) */
    token_span *batch_tokens; /* (batch) lenient planning */
    plan_row *plan;           /* (rows) lenient: the line feeding each output row */
    uint8_t *repaired;        /* (TOKEN_BYTES_MAX * 3) a token with U+FFFD replacements */
    uint64_t next_report, step;
} text_import;

/* Calls the progress callback now and then; EMBT_ECANCELED when it asks to stop. */
static embt_status progress(text_import *ti, uint64_t done, bool last)
{
    const embt_convert_options *o = ti->ctx->opts;
    uint64_t total = ti->ctx->in->size;
    if (!o->progress || (done < ti->next_report && !last))
        return EMBT_OK;
    ti->next_report = done + ti->step;
    if (o->progress(last || done > total ? total : done, total, o->payload) != 0)
        return embt__error(EMBT_ECANCELED, EMBT_NO_OFFSET, NULL, 0,
                           "conversion canceled at byte %llu", (unsigned long long)done);
    return EMBT_OK;
}

static embt_status begin_table(text_import *ti, uint64_t rows)
{
    const embt__import *ctx = ti->ctx;
    embt_table_spec tspec = EMBT_TABLE_SPEC_INIT;
    tspec.name = ctx->table_name;
    tspec.dtype = ti->dtype;
    tspec.rows = rows;
    tspec.cols = ti->lay.dim;
    tspec.vocab = ctx->vocab_name;
    tspec.flags = (ctx->opts->flags & EMBT_CONVERT_COMPRESS) ? EMBT_TABLE_COMPRESS : 0;
    return output_failure(embt_writer_table_begin(ctx->writer, &tspec));
}

/* Ends the table, then writes the vocabulary and the metadata. */
static embt_status finish(text_import *ti, uint64_t rows)
{
    const embt__import *ctx = ti->ctx;
    embt_status rc = output_failure(embt_writer_table_end(ctx->writer));
    if (rc != EMBT_OK)
        return rc;
    embt_vocab_spec vspec = EMBT_VOCAB_SPEC_INIT;
    vspec.name = ctx->vocab_name;
    vspec.flags = (ctx->opts->flags & EMBT_CONVERT_COMPRESS) ? EMBT_VOCAB_COMPRESS : 0;
    rc = output_failure(embt_writer_vocab_begin(ctx->writer, &vspec));
    if (rc != EMBT_OK)
        return rc;
    for (uint64_t r = 0; r < rows; r++) {
        rc =
            embt_writer_vocab_add(ctx->writer, (const char *)ti->store.arena + ti->tokens[r].offset,
                                  ti->tokens[r].length, 0, NULL);
        if (rc != EMBT_OK) {
            /* the tokens were checked before; keep the position if the writer disagrees */
            if (rc == EMBT_EINVAL || rc == EMBT_EEXISTS) {
                char why[sizeof embt_error_last()->message];
                memcpy(why, embt_error_last()->message, sizeof why);
                uint32_t line = ti->plan ? ti->plan[r].line : (uint32_t)(ti->lay.body_line + r);
                return embt__error_parse(line, 1, EMBT_NO_OFFSET, "token refused by the writer: %s",
                                         why);
            }
            return output_failure(rc);
        }
    }
    rc = output_failure(embt_writer_vocab_end(ctx->writer));
    if (rc != EMBT_OK)
        return rc;
    char meta[160];
    int meta_len =
        snprintf(meta, sizeof meta, "source: {format: %s, rows: %llu, dim: %u}\n",
                 embt_format_name(ti->lay.format), (unsigned long long)rows, ti->lay.dim);
    rc = output_failure(embt_writer_set_metadata(ctx->writer, meta, (size_t)meta_len));
    if (rc == EMBT_OK)
        ctx->report->rows = rows;
    return rc;
}

/* Adds the tokens of rows [row, row + n) (lines at starts) to the store; a duplicate is EMBT_EPARSE
 * naming both lines. */
static embt_status add_tokens(text_import *ti, uint64_t row, size_t n, const size_t *starts)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t r = (uint32_t)(row + i);
        uint32_t first = UINT32_MAX;
        embt_status rc = token_store_add(&first, &ti->store, ti->tokens, r, ti->data + starts[i]);
        if (rc != EMBT_OK)
            return rc;
        if (first != UINT32_MAX) {
            char quoted[48];
            quote_field(quoted, sizeof quoted, ti->data + starts[i], ti->tokens[r].length);
            return embt__error_parse(ti->lay.body_line + r, 1, starts[i],
                                     "duplicate token '%s' (first on line %u)", quoted,
                                     ti->lay.body_line + first);
        }
    }
    return EMBT_OK;
}

/* A parsed batch handed to the writing thread while the next one is parsed. */
typedef struct write_job {
    text_import *ti;
    uint64_t row;
    size_t n;
    const size_t *starts; /* (n) */
    const float *values;  /* (n, dim) */
    embt_status rc;
    embt_error error; /* the writing thread's record, when rc is not EMBT_OK */
} write_job;

static void *run_write(void *arg)
{
    write_job *wj = arg;
    wj->rc = add_tokens(wj->ti, wj->row, wj->n, wj->starts);
    if (wj->rc == EMBT_OK)
        wj->rc =
            output_failure(embt_writer_table_append_f32(wj->ti->ctx->writer, wj->values, wj->n));
    if (wj->rc != EMBT_OK)
        wj->error = *embt_error_last();
    return NULL;
}

/* Strict policies: every line is a row, streamed in one pass; batch k is written (tokens checked,
 * values appended) by a second thread while batch k + 1 is parsed. */
static embt_status import_strict(text_import *ti, uint64_t rows)
{
    const embt__import *ctx = ti->ctx;
    const uint8_t *data = ti->data;
    write_job wj;
    pthread_t writer_thread;
    bool pending = false, threaded = false;
    size_t pos = ti->lay.body;
    int cur = 0;
    embt_status rc = begin_table(ti, rows);
    if (rc != EMBT_OK)
        return rc;
    memset(&wj, 0, sizeof wj);
    for (uint64_t row = 0; row < rows;) {
        size_t nb = rows - row < ti->batch ? (size_t)(rows - row) : ti->batch;
        size_t *starts = ti->starts + (size_t)cur * ti->batch;
        size_t *ends = ti->ends + (size_t)cur * ti->batch;
        float *values = ti->values + (size_t)cur * ti->batch * ti->lay.dim;
        for (size_t i = 0; i < nb; i++) {
            starts[i] = pos;
            ends[i] = line_end(data, ti->lay.end, pos);
            pos = ends[i] + 1;
        }
        const row_job *bad = NULL;
        size_t good = parse_batch(&ti->bp, starts, ends, nb, values, ti->tokens + row, &bad,
                                  &ctx->report->nonfinite);
        if (pending) {
            if (threaded)
                pthread_join(writer_thread, NULL);
            pending = false;
            if (wj.rc != EMBT_OK) {
                *embt__error_record() = wj.error;
                return wj.rc;
            }
            embt__input_drop(ctx->in, wj.starts[0], starts[0]);
            rc = progress(ti, starts[0], false);
            if (rc != EMBT_OK)
                return rc;
        }
        if (bad) { /* the first failure in line order: duplicates before the bad line first */
            rc = add_tokens(ti, row, good, starts);
            return rc != EMBT_OK ? rc
                                 : job_failure(bad, (uint32_t)(ti->lay.body_line + row + good));
        }
        wj.ti = ti;
        wj.row = row;
        wj.n = nb;
        wj.starts = starts;
        wj.values = values;
        wj.rc = EMBT_OK;
        pending = true;
        threaded = pthread_create(&writer_thread, NULL, run_write, &wj) == 0;
        if (!threaded)
            run_write(&wj);
        cur ^= 1;
        row += nb;
    }
    if (pending) {
        if (threaded)
            pthread_join(writer_thread, NULL);
        if (wj.rc != EMBT_OK) {
            *embt__error_record() = wj.error;
            return wj.rc;
        }
    }
    rc = progress(ti, pos, true);
    if (rc != EMBT_OK)
        return rc;
    return finish(ti, rows);
}

/* Replaces each byte that does not start a valid UTF-8 sequence (and each NUL) by U+FFFD.
 * Returns the new length. dst has room for 3 * n bytes. */
static size_t repair_utf8(uint8_t *dst, const uint8_t *s, size_t n)
{
    size_t k = 0, p = 0;
    while (p < n) {
        size_t bad = 0;
        if (embt__utf8_valid(s + p, n - p, &bad)) {
            bad = n - p;
        }
        memcpy(dst + k, s + p, bad);
        k += bad;
        p += bad;
        if (p < n) {
            memcpy(dst + k, "\xEF\xBF\xBD", 3);
            k += 3;
            p++;
        }
    }
    return k;
}

/* Lenient policies, pass 1: reads every line up to the limit, checks it fully and decides which
 * output row it feeds (or that it is dropped). *rows_out gets the output row count. */
static embt_status plan_rows(text_import *ti, uint64_t *rows_out)
{
    const embt__import *ctx = ti->ctx;
    const embt_convert_options *o = ctx->opts;
    const uint8_t *data = ti->data;
    embt_convert_report *rep = ctx->report;
    uint64_t kept = 0;
    uint64_t lines = ti->lay.lines;
    uint64_t ignored_nonfinite = 0; /* counted when the rows are written */
    size_t pos = ti->lay.body;
    for (uint64_t li = 0; li < lines && (o->limit == 0 || kept < o->limit);) {
        size_t nb = lines - li < ti->batch ? (size_t)(lines - li) : ti->batch;
        for (size_t i = 0; i < nb; i++) {
            ti->starts[i] = pos;
            ti->ends[i] = line_end(data, ti->lay.end, pos);
            pos = ti->ends[i] + 1;
        }
        const row_job *bad = NULL;
        size_t good = parse_batch(&ti->bp, ti->starts, ti->ends, nb, ti->values, ti->batch_tokens,
                                  &bad, &ignored_nonfinite);
        for (size_t i = 0; i < good && (o->limit == 0 || kept < o->limit); i++) {
            uint32_t line = (uint32_t)(ti->lay.body_line + li + i);
            const uint8_t *tok = data + ti->starts[i];
            size_t len = ti->batch_tokens[i].length;
            size_t bad_at = 0;
            if (!embt__utf8_valid(tok, len, &bad_at)) {
                if (o->on_bad_utf8 == EMBT_BAD_UTF8_ERROR)
                    return embt__error_parse(line, (uint32_t)bad_at + 1, ti->starts[i] + bad_at,
                                             "invalid utf-8 in token at byte %zu", bad_at + 1);
                if (o->on_bad_utf8 == EMBT_BAD_UTF8_SKIP) {
                    rep->utf8_skipped++;
                    continue;
                }
                len = repair_utf8(ti->repaired, tok, len);
                tok = ti->repaired;
                if (len > TOKEN_BYTES_MAX)
                    return embt__error_parse(line, 1, ti->starts[i],
                                             "token length %zu after utf-8 repair exceeds %u "
                                             "bytes",
                                             len, TOKEN_BYTES_MAX);
                rep->utf8_replaced++;
            }
            ti->tokens[kept].length = (uint32_t)len;
            uint32_t first = UINT32_MAX;
            embt_status rc = token_store_add(&first, &ti->store, ti->tokens, (uint32_t)kept, tok);
            if (rc != EMBT_OK)
                return rc;
            plan_row here = {ti->starts[i], ti->ends[i], line};
            if (first != UINT32_MAX) {
                if (o->on_duplicate == EMBT_DUPLICATE_ERROR) {
                    char quoted[48];
                    quote_field(quoted, sizeof quoted, tok, len);
                    return embt__error_parse(line, 1, ti->starts[i],
                                             "duplicate token '%s' (first on line %u)", quoted,
                                             ti->plan[first].line);
                }
                rep->duplicates_dropped++;
                if (o->on_duplicate == EMBT_DUPLICATE_LAST) { /* same place and token */
                    ti->plan[first].start = here.start;
                    ti->plan[first].end = here.end;
                }
                continue;
            }
            ti->plan[kept++] = here;
        }
        if (bad && (o->limit == 0 || kept < o->limit))
            return job_failure(bad, (uint32_t)(ti->lay.body_line + li + good));
        li += nb;
        embt_status rc = progress(ti, pos / 2, false);
        if (rc != EMBT_OK)
            return rc;
    }
    *rows_out = kept;
    return EMBT_OK;
}

/* Lenient policies, pass 2: parses the planned line of every output row and writes the table. */
static embt_status write_planned(text_import *ti, uint64_t rows)
{
    const embt__import *ctx = ti->ctx;
    embt_status rc = begin_table(ti, rows);
    if (rc != EMBT_OK)
        return rc;
    for (uint64_t row = 0; row < rows;) {
        size_t nb = rows - row < ti->batch ? (size_t)(rows - row) : ti->batch;
        for (size_t i = 0; i < nb; i++) {
            ti->starts[i] = ti->plan[row + i].start;
            ti->ends[i] = ti->plan[row + i].end;
        }
        const row_job *bad = NULL;
        size_t good = parse_batch(&ti->bp, ti->starts, ti->ends, nb, ti->values, ti->batch_tokens,
                                  &bad, &ctx->report->nonfinite);
        if (bad) /* checked by the plan; only memory can run out here */
            return job_failure(bad, ti->plan[row + good].line);
        rc = output_failure(embt_writer_table_append_f32(ctx->writer, ti->values, nb));
        if (rc != EMBT_OK)
            return rc;
        row += nb;
        uint64_t total = ctx->in->size;
        rc = progress(ti, total / 2 + (uint64_t)((double)total / 2 * ((double)row / rows)),
                      row == rows);
        if (rc != EMBT_OK)
            return rc;
    }
    return finish(ti, rows);
}

/* `format`: EMBT_FORMAT_WORD2VEC, EMBT_FORMAT_GLOVE, or EMBT_FORMAT_AUTO to tell them apart. */
embt_status embt__import_text(const embt__import *ctx, embt_format format)
{
    EMBT_CHECK_ARG(ctx != NULL);
    EMBT_CHECK_ARG(format == EMBT_FORMAT_AUTO || format == EMBT_FORMAT_WORD2VEC ||
                   format == EMBT_FORMAT_GLOVE);
    const embt_convert_options *o = ctx->opts;
    embt_status rc;
    text_import ti;
    memset(&ti, 0, sizeof ti);
    ti.ctx = ctx;
    ti.data = ctx->in->data;
    ti.dtype = o->dtype ? o->dtype : EMBT_DTYPE_F32;
    bool lenient = o->on_duplicate != EMBT_DUPLICATE_ERROR || o->on_bad_utf8 != EMBT_BAD_UTF8_ERROR;

    rc = embt__parse_float_init();
    if (rc != EMBT_OK)
        goto done;
    if (o->vocab_path) {
        rc = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                         "text input names its tokens: a vocabulary file does not apply");
        goto done;
    }
    rc = detect_layout(&ti.lay, ctx->in, format);
    if (rc != EMBT_OK)
        goto done;
    uint64_t rows = ti.lay.lines;
    if (o->limit != 0 && o->limit < rows)
        rows = o->limit;
    if (rows > EMBT__TOKENS_MAX) {
        rc = embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                         "%llu rows exceed the %u tokens of a vocabulary", (unsigned long long)rows,
                         EMBT__TOKENS_MAX);
        goto done;
    }

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    ti.bp.data = ti.data;
    ti.bp.size = ctx->in->size;
    ti.bp.dim = ti.lay.dim;
    ti.bp.allow_nonfinite = (o->flags & EMBT_CONVERT_ALLOW_NONFINITE) && dtype_is_float(ti.dtype);
    ti.bp.check_utf8 = !lenient;
    ti.bp.n_threads = ncpu < 1 ? 1 : ncpu > THREADS_MAX ? THREADS_MAX : (size_t)ncpu;
    ti.batch = BATCH_VALUES_MAX / ti.lay.dim;
    if (ti.batch > BATCH_ROWS_MAX)
        ti.batch = BATCH_ROWS_MAX;
    if (ti.batch < 1)
        ti.batch = 1;
    if (ti.batch > ti.lay.lines)
        ti.batch = ti.lay.lines > 0 ? (size_t)ti.lay.lines : 1;
    ti.step = ctx->in->size / 100 ? ctx->in->size / 100 : 1;

    ti.tokens = embt__malloc((size_t)(rows ? rows : 1) * sizeof *ti.tokens);
    /* two batches: one parsed while the other is written */
    ti.values = embt__malloc(2 * ti.batch * ti.lay.dim * sizeof *ti.values);
    ti.starts = embt__malloc(2 * ti.batch * sizeof *ti.starts);
    ti.ends = embt__malloc(2 * ti.batch * sizeof *ti.ends);
    ti.bp.scratch = embt__malloc(ti.bp.n_threads * ti.lay.dim * 2 * sizeof *ti.bp.scratch);
    if (!ti.tokens || !ti.values || !ti.starts || !ti.ends || !ti.bp.scratch) {
        rc = embt__error_nomem();
        goto done;
    }
    rc = token_store_init(&ti.store, rows);
    if (rc != EMBT_OK)
        goto done;
    if (!lenient) {
        rc = import_strict(&ti, rows);
        goto done;
    }
    ti.batch_tokens = embt__malloc(ti.batch * sizeof *ti.batch_tokens);
    ti.plan = embt__malloc((size_t)(rows ? rows : 1) * sizeof *ti.plan);
    ti.repaired = embt__malloc((size_t)TOKEN_BYTES_MAX * 3);
    if (!ti.batch_tokens || !ti.plan || !ti.repaired) {
        rc = embt__error_nomem();
        goto done;
    }
    rc = plan_rows(&ti, &rows);
    if (rc == EMBT_OK)
        rc = write_planned(&ti, rows);
done:
    token_store_free(&ti.store);
    embt__free(ti.repaired);
    embt__free(ti.plan);
    embt__free(ti.batch_tokens);
    embt__free(ti.bp.scratch);
    embt__free(ti.ends);
    embt__free(ti.starts);
    embt__free(ti.values);
    embt__free(ti.tokens);
    return rc;
}
