/* import_text.c: the word2vec and GloVe text importer (embt__import_text): detects the header, then
 * cuts the text into chunks of whole lines that worker threads parse with the exact float parser
 * and commit in order through the writer, applying the duplicate and UTF-8 policies of the options
 * on the way: one pass over the input, mapped or inflated as it goes. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "convert.h"
#include "parse_float.h"

#define LINE_BYTES_MAX (16u << 20) /* longest accepted line, terminator excluded */
#define TOKEN_BYTES_MAX 65535u     /* spec/FORMAT.md 10 */
#define CHUNK_BYTES (4u << 20)     /* text a worker parses at a time */
#define CHUNK_SLACK 16u            /* readable bytes after a streamed chunk (8-byte loads) */
#define THREADS_MAX 8
#define DETECT_NUL_BYTES 65536u      /* auto-detection looks for NUL bytes in this prefix */
#define DIM_MAX (LINE_BYTES_MAX / 2) /* each value takes at least a digit and a blank */
#define HEADER_NUMBER_MAX UINT64_C(1000000000000000)
#define ROWS_GUESS_MAX (1u << 22)   /* presized rows; more grow the arrays as they come */
#define KEEP_FIRST_BYTES (1u << 24) /* keep_last rows held before any grows, when not presized */

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
    uint64_t offset; /* of the token in its chunk; once checked for duplicates, in the arena */
    uint32_t length;
} token_span;

typedef struct parse_problem {
    embt_status code; /* EMBT_EPARSE or EMBT_ENOMEM */
    uint32_t column;  /* 1-based byte column */
    uint64_t offset;  /* byte offset in the chunk */
    char message[200];
} parse_problem;

/* One worker's view of a chunk of whole lines. Positions are offsets in data. */
typedef struct row_job {
    const uint8_t *data;
    size_t size; /* bytes readable at data: 8-byte loads stay below it */
    uint32_t dim;
    bool allow_nonfinite;
    bool check_utf8;    /* strict UTF-8 policy: a bad token fails the row here */
    float *values;      /* (rows, dim) output */
    token_span *tokens; /* (rows) output */
    size_t *fields;     /* (dim, 2) scratch: start and end of each value */
    parse_problem problem;
} row_job;

static bool fail_row(row_job *job, size_t line_start, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool fail_row(row_job *job, size_t line_start, size_t at, const char *fmt, ...)
{
    va_list ap;
    job->problem.code = EMBT_EPARSE;
    job->problem.column = (uint32_t)(at - line_start + 1);
    job->problem.offset = at;
    va_start(ap, fmt);
    vsnprintf(job->problem.message, sizeof job->problem.message, fmt, ap);
    va_end(ap);
    return false;
}

/* The general row parser for the line [s, e): the values are the last dim fields, the token is
 * the rest (it may hold blanks); reports every malformed class with its column. */
static bool parse_row_slow(row_job *job, size_t row, size_t s, size_t e)
{
    const uint8_t *data = job->data;
    const uint32_t dim = job->dim;
    size_t *fs = job->fields;
    char quoted[48];

    if (e - s > LINE_BYTES_MAX)
        return fail_row(job, s, s + LINE_BYTES_MAX, "line length %zu exceeds %u bytes", e - s,
                        LINE_BYTES_MAX);
    e = strip_trailing(data, s, e);

    /* the values are the last dim fields; find where each starts, right to left */
    size_t p = e;
    for (uint32_t k = dim; k > 0; k--) {
        while (p > s && is_blank(data[p - 1]))
            p--;
        if (p == s) {
            uint32_t found = dim - k; /* the leftmost field would be the token */
            return fail_row(job, s, e, "expected %u values, found %u", dim,
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
            return fail_row(job, s, e, "expected %u values, found %u", dim, dim - 1);
        return fail_row(job, s, s, "empty token");
    }

    /* the token */
    size_t token_len = token_end - s;
    if (token_len > TOKEN_BYTES_MAX)
        return fail_row(job, s, s, "token length %zu exceeds %u bytes", token_len, TOKEN_BYTES_MAX);
    size_t bad_at = 0;
    if (job->check_utf8 && !embt__utf8_valid(data + s, token_len, &bad_at))
        return fail_row(job, s, s + bad_at, "invalid utf-8 in token at byte %zu", bad_at + 1);
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
        return fail_row(job, s, extra_at, "expected %u values, found %zu", dim, dim + extra);

    /* the values, left to right */
    float *v = job->values + (size_t)row * dim;
    for (uint32_t k = 0; k < dim; k++) {
        size_t a = fs[2 * k];
        size_t b = fs[2 * k + 1];
        int prc = embt__parse_f32(&v[k], (const char *)data + a, b - a);
        if (prc == -2) {
            job->problem.code = EMBT_ENOMEM;
            return false;
        }
        if (prc != 0) {
            quote_field(quoted, sizeof quoted, data + a, b - a);
            return fail_row(job, s, a, "value %u '%s' is not a number", k + 1, quoted);
        }
        if (!isfinite(v[k]) && !job->allow_nonfinite) {
            quote_field(quoted, sizeof quoted, data + a, b - a);
            return fail_row(job, s, a, "value %u '%s' is not finite", k + 1, quoted);
        }
    }
    job->tokens[row].offset = s;
    job->tokens[row].length = (uint32_t)token_len;
    return true;
}

/* ---- the fast path: token without blanks, then dim plain decimals ------------------------------
 * The blanks of the line are found first, 64 bytes at a time, so that each value is parsed from
 * known bounds, independently of the one before (the CPU overlaps them). Digits are read eight at
 * a time (SWAR) and the value is exact by Clinger's rule (ANCHORS.md 4.1); anything else
 * (exponents, long mantissas, nan, errors) goes to embt__parse_f32 or to the general parser, so
 * results never depend on the path. */

static const uint64_t pow10_u64[9] = {1,      10,      100,      1000,     10000,
                                      100000, 1000000, 10000000, 100000000};
/* 10^-n rounded to double. For every w <= 2^24 and n <= 7, (float)(w * inv_pow10_f64[n]) equals
 * (float)w / 10^n, the correctly rounded quotient: the product is within 2^-52 (relative) of
 * w / 10^n, which is either a float or more than 2^-48 away from every midpoint between floats
 * (also checked exhaustively in test_import_text.c). A multiplication is cheaper than a division. */
static const double inv_pow10_f64[8] = {1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7};

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

/* Bit i set when p[i] is a blank, for the 64 bytes at p. */
static inline uint64_t blank_mask64(const uint8_t *p)
{
    uint64_t m = 0;
#if defined(__SSE2__)
    const __m128i space = _mm_set1_epi8(' '), tab = _mm_set1_epi8('\t');
    for (int i = 0; i < 4; i++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i));
        __m128i b = _mm_or_si128(_mm_cmpeq_epi8(x, space), _mm_cmpeq_epi8(x, tab));
        m |= (uint64_t)(uint16_t)_mm_movemask_epi8(b) << (16 * i);
    }
#else
    for (int i = 0; i < 8; i++) { /* per byte: high bit set unless the byte is zero (exact) */
        const uint64_t low7 = UINT64_C(0x7F7F7F7F7F7F7F7F);
        uint64_t v = load8(p + 8 * i);
        uint64_t xs = v ^ UINT64_C(0x2020202020202020), xt = v ^ UINT64_C(0x0909090909090909);
        uint64_t zs = ~(((xs & low7) + low7) | xs) & ~low7;
        uint64_t zt = ~(((xt & low7) + low7) | xt) & ~low7;
        m |= (((zs | zt) >> 7) * UINT64_C(0x0102040810204080) >> 56) << (8 * i);
    }
#endif
    return m;
}

/* Parses the value [a, b) (no blanks inside); false when it is not a number, or not finite unless
 * allowed. */
static inline bool parse_field(float *out, const uint8_t *data, size_t size, size_t a, size_t b,
                               bool allow_nonfinite)
{
    /* the common shape: a sign, 1 to 7 digits, a point, 1 to 7 digits; no branch on the sign (a
     * coin toss in embeddings) */
    size_t q = a + (data[a] == '-' || data[a] == '+');
    uint32_t sign = (uint32_t)(data[a] == '-') << 31;
    if (b - q <= 8 && q + 8 <= size) { /* the whole number in one word: drop the point */
        uint64_t x = load8(data + q);
        unsigned len = (unsigned)(b - q);
        unsigned n1 = leading_digits8(x);
        if (n1 - 1u < 6u && n1 + 1 < len && ((x >> (8 * n1)) & 0xFF) == '.') {
            unsigned n2 = len - n1 - 1;
            uint64_t frac = x >> (8 * (n1 + 1));
            if (leading_digits8(frac) >= n2) {
                uint64_t digits = (x & ((UINT64_C(1) << (8 * n1)) - 1)) | (frac << (8 * n1));
                uint64_t w = digits8_value(digits, n1 + n2);
                if (w <= (UINT64_C(1) << 24)) {
                    float v = (float)((double)w * inv_pow10_f64[n2]);
                    uint32_t bits;
                    memcpy(&bits, &v, sizeof bits);
                    bits |= sign;
                    memcpy(out, &bits, sizeof bits);
                    return true;
                }
            }
        }
    } else if (b - q <= 15 && q + 16 <= size) {
        uint64_t x = load8(data + q);
        unsigned n1 = leading_digits8(x);
        if (n1 - 1u < 7u && data[q + n1] == '.') {
            size_t f = q + n1 + 1;
            unsigned n2 = (unsigned)(b - f);
            uint64_t y = load8(data + f);
            if (n2 - 1u < 7u && leading_digits8(y) >= n2) {
                uint64_t w = digits8_value(x, n1) * pow10_u64[n2] + digits8_value(y, n2);
                if (w <= (UINT64_C(1) << 24)) {
                    float v = (float)((double)w * inv_pow10_f64[n2]);
                    uint32_t bits;
                    memcpy(&bits, &v, sizeof bits);
                    bits |= sign;
                    memcpy(out, &bits, sizeof bits);
                    return true;
                }
            }
        }
    }
    return embt__parse_f32(out, (const char *)data + a, b - a) == 0 &&
           (allow_nonfinite || isfinite(*out));
}

/* The common row shape; false sends the row to parse_row_slow (which also explains failures). */
static bool parse_row_fast(row_job *job, size_t row, size_t s, size_t e)
{
    const uint8_t *data = job->data;
    const size_t size = job->size;
    const uint32_t dim = job->dim;
    if (e - s > LINE_BYTES_MAX)
        return false;
    e = strip_trailing(data, s, e);
    /* every blank of the line, in order, while they fit the scratch */
    size_t *blank = job->fields;
    size_t n_blanks = 0, cap = (size_t)dim * 2;
    for (size_t base = s; base < e; base += 64) {
        uint64_t m = 0;
        if (base + 64 <= size) {
            m = blank_mask64(data + base);
        } else {
            for (size_t i = 0; i < 64 && base + i < e; i++)
                m |= (uint64_t)is_blank(data[base + i]) << i;
        }
        if (e - base < 64)
            m &= (UINT64_C(1) << (e - base)) - 1;
        for (; m != 0; m &= m - 1) {
            if (n_blanks == cap)
                return false;
            blank[n_blanks++] = base + (size_t)__builtin_ctzll(m);
        }
    }
    if (n_blanks == 0 || blank[0] == s)
        return false;
    size_t token_len = blank[0] - s;
    if (token_len > TOKEN_BYTES_MAX)
        return false;
    if (job->check_utf8 && !embt__utf8_valid(data + s, token_len, NULL))
        return false;
    float *v = job->values + (size_t)row * dim;
    const bool allow_nonfinite = job->allow_nonfinite;
    uint32_t k = 0;
    size_t a = blank[0] + 1;
    for (size_t i = 1; i <= n_blanks; i++) {
        size_t b = i < n_blanks ? blank[i] : e;
        if (b > a) {
            if (k == dim || !parse_field(&v[k], data, size, a, b, allow_nonfinite))
                return false;
            k++;
        }
        a = b + 1;
    }
    if (k != dim)
        return false;
    job->tokens[row].offset = s;
    job->tokens[row].length = (uint32_t)token_len;
    return true;
}

static bool parse_row(row_job *job, size_t row, size_t s, size_t e)
{
    return parse_row_fast(job, row, s, e) || parse_row_slow(job, row, s, e);
}

/* ---- tokens: copied in row order into one arena (so the input's pages can be dropped), with the
 * line of each row, and an open-addressing set of row numbers over them to find duplicates ------ */

typedef struct token_store {
    uint8_t *arena; /* the rows' tokens, concatenated */
    size_t used, cap;
    token_span *spans; /* (n) each output row's token in the arena */
    uint32_t *lines;   /* (n) the line each row was read from */
    size_t n, rows_cap;
    uint32_t *slots; /* row + 1, 0 = empty; at most half full */
    size_t mask;
} token_store;

static embt_status token_store_init(token_store *ts, uint64_t rows_guess)
{
    size_t n = 1024;
    while (n < rows_guess * 2 && n < ((size_t)1 << 31))
        n *= 2;
    memset(ts, 0, sizeof *ts);
    ts->slots = embt__calloc(n, sizeof *ts->slots);
    ts->mask = n - 1;
    return ts->slots ? EMBT_OK : embt__error_nomem();
}

static void token_store_free(token_store *ts)
{
    embt__free(ts->arena);
    embt__free(ts->spans);
    embt__free(ts->lines);
    embt__free(ts->slots);
}

static size_t token_slot(const token_store *ts, const uint8_t *bytes, uint32_t len)
{
    return (size_t)embt__fnv1a64(bytes, len) & ts->mask;
}

/* Doubles the set when the next row would fill it beyond one half. */
static embt_status token_store_reserve(token_store *ts)
{
    if (ts->n + 1 >= ts->rows_cap) {
        size_t cap = ts->rows_cap ? ts->rows_cap * 2 : 4096;
        token_span *spans = embt__realloc(ts->spans, cap * sizeof *spans);
        if (!spans)
            return embt__error_nomem();
        ts->spans = spans;
        uint32_t *lines = embt__realloc(ts->lines, cap * sizeof *lines);
        if (!lines)
            return embt__error_nomem();
        ts->lines = lines;
        ts->rows_cap = cap;
    }
    if ((ts->n + 1) * 2 <= ts->mask + 1)
        return EMBT_OK;
    size_t n = (ts->mask + 1) * 2;
    uint32_t *slots = embt__calloc(n, sizeof *slots);
    if (!slots)
        return embt__error_nomem();
    embt__free(ts->slots);
    ts->slots = slots;
    ts->mask = n - 1;
    for (size_t r = 0; r < ts->n; r++) {
        size_t i = token_slot(ts, ts->arena + ts->spans[r].offset, ts->spans[r].length);
        while (ts->slots[i] != 0)
            i = (i + 1) & ts->mask;
        ts->slots[i] = (uint32_t)r + 1;
    }
    return EMBT_OK;
}

/* Looks the token up: *first_out gets the row already holding it, or UINT32_MAX when it is new
 * (then it becomes row ts->n, read from `line`). Errors: EMBT_ENOMEM. */
static embt_status token_store_add(uint32_t *first_out, token_store *ts, const uint8_t *bytes,
                                   uint32_t len, uint32_t line)
{
    embt_status rc = token_store_reserve(ts);
    if (rc != EMBT_OK)
        return rc;
    size_t i = token_slot(ts, bytes, len);
    for (;;) {
        uint32_t slot = ts->slots[i];
        if (slot == 0)
            break;
        const token_span *o = &ts->spans[slot - 1];
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
    ts->spans[ts->n].offset = ts->used;
    ts->spans[ts->n].length = len;
    ts->lines[ts->n] = line;
    ts->used += len;
    ts->slots[i] = (uint32_t)ts->n + 1;
    ts->n++;
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

/* ---- layout ---------------------------------------------------------------------------------- */

typedef struct layout {
    embt_format format; /* WORD2VEC or GLOVE */
    uint32_t dim;
    size_t body;        /* offset of the first row */
    uint32_t body_line; /* its line number */
    size_t end;         /* whole input: end of the text once trailing blank lines are dropped */
    bool header;        /* word2vec: header_rows rows must follow */
    uint64_t header_rows;
    size_t start; /* offset of the first line (after a byte order mark) */
} layout;

/* Finds the format, dim and body from the first lines of the text (the whole input, or a prefix
 * holding two line feeds when `whole` is false); EMBT_EPARSE / EMBT_EFORMAT on failure. */
static embt_status detect_layout(layout *out, const uint8_t *data, size_t size, bool whole,
                                 embt_format from)
{
    size_t start = 0;
    size_t end = size;
    if (whole)
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
    out->start = start;
    if (header) {
        if (h_dim < 1 || h_dim > DIM_MAX)
            return embt__error_parse(1, 1, start, "header dim %llu outside [1, %u]",
                                     (unsigned long long)h_dim, DIM_MAX);
        out->format = EMBT_FORMAT_WORD2VEC;
        out->dim = (uint32_t)h_dim;
        out->body = l2;
        out->body_line = 2;
        out->header = true;
        out->header_rows = h_rows;
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
    return EMBT_OK;
}

static bool dtype_is_float(embt_dtype dtype)
{
    return dtype == EMBT_DTYPE_F32 || dtype == EMBT_DTYPE_F16 || dtype == EMBT_DTYPE_BF16 ||
           dtype == EMBT_DTYPE_F64;
}

/* ---- the pipeline -----------------------------------------------------------------------------
 * The text is cut into chunks of whole lines, about CHUNK_BYTES each. Workers (this thread and up
 * to THREADS_MAX - 1 more) take chunks in order, parse them into their own buffers, and commit
 * them strictly in order: the tokens go through the store (duplicates, UTF-8 policy), the values
 * to the writer. The commit of one chunk overlaps the parsing of the next ones, and the first
 * problem in line order is the one reported. No line count is needed beforehand: the table's row
 * count grows as rows are appended. */

typedef struct text_import {
    const embt__import *ctx;
    layout lay;
    embt_dtype dtype;
    bool lenient;         /* a duplicate or UTF-8 policy other than error */
    bool keep_last;       /* --on-duplicate last: rows are held until the end */
    bool plain_f32;       /* stored as f32 without compression: workers compute the CRC-32 */
    bool allow_nonfinite; /* count the non-finite values written */
    token_store store;    /* the output rows' tokens and lines */
    uint64_t lines;       /* body lines committed */
    uint64_t written;     /* rows appended to the writer */
    float *all;           /* keep_last: (all_cap, dim) the output rows */
    size_t all_cap;
    uint8_t *repaired; /* (TOKEN_BYTES_MAX * 3) a token with U+FFFD replacements */
    uint64_t total;    /* progress total: input bytes (compressed bytes for a gzip stream) */
    uint64_t next_report, step;
} text_import;

typedef struct chunk {
    uint64_t seq;
    const uint8_t *data; /* whole lines, in the mapping or in buf */
    size_t len;
    size_t readable;       /* bytes readable at data (8-byte loads) */
    uint64_t offset;       /* input offset of data[0] (inflated bytes for gzip) */
    uint64_t progress;     /* input position reached once it is committed */
    bool count_only;       /* past the row limit: its lines are only counted */
    embt_status source_rc; /* the input failed here; the error is source_error */
    embt_error source_error;
    size_t n_lines; /* lines parsed or counted (up to the failed one) */
    size_t n_good;  /* rows parsed */
    bool failed;    /* line n_good failed: job.problem says why */
    bool has_crc;
    uint32_t crc;       /* of the n_good rows' values */
    uint8_t *buf;       /* streaming: the text, buf_cap bytes */
    size_t buf_cap;     /* CHUNK_SLACK bytes past the text stay readable */
    float *values;      /* (cap, dim) */
    token_span *tokens; /* (cap) */
    size_t cap;
    row_job job;
} chunk;

typedef struct worker {
    struct pipeline *pl;
    pthread_t thread;
    bool is_main;
    chunk c;
} worker;

typedef struct pipeline {
    text_import *ti;
    atomic_bool stop;       /* hand out no more chunks */
    atomic_bool count_only; /* past the row limit */
    /* the source, under src_lock */
    pthread_mutex_t src_lock;
    uint64_t next_seq;
    size_t pos;      /* mapped: start of the next chunk */
    embt__input *in; /* streaming: the gzip stream */
    uint8_t *carry;  /* streaming: bytes after the last whole line handed out */
    size_t carry_len, carry_cap;
    uint64_t carry_offset;
    size_t skip; /* streaming: header bytes still to skip */
    bool eof;
    /* commits, under turn_lock */
    pthread_mutex_t turn_lock;
    pthread_cond_t turn;
    uint64_t next_commit;
    bool failed;
    embt_status rc;
    embt_error error;
    uint64_t committed; /* input position of the last committed chunk */
} pipeline;

/* Calls the progress callback now and then; EMBT_ECANCELED when it asks to stop. */
static embt_status progress(text_import *ti, uint64_t done, bool last)
{
    const embt_convert_options *o = ti->ctx->opts;
    if (!o->progress || (done < ti->next_report && !last))
        return EMBT_OK;
    ti->next_report = done + ti->step;
    if (o->progress(last || done > ti->total ? ti->total : done, ti->total, o->payload) != 0)
        return embt__error(EMBT_ECANCELED, EMBT_NO_OFFSET, NULL, 0,
                           "conversion canceled at byte %llu", (unsigned long long)done);
    return EMBT_OK;
}

/* Hands out the next chunk of a mapped text; false at its end. */
static bool next_mapped(pipeline *pl, chunk *c)
{
    const embt__input *in = pl->ti->ctx->in;
    size_t end = pl->ti->lay.end;
    if (pl->pos >= end)
        return false;
    size_t start = pl->pos, cut = end;
    if (end - start > CHUNK_BYTES) {
        const uint8_t *nl = memchr(in->data + start + CHUNK_BYTES, '\n', end - start - CHUNK_BYTES);
        if (nl)
            cut = (size_t)(nl - in->data);
    }
    c->data = in->data + start;
    c->len = cut - start;
    c->readable = in->size - start;
    c->offset = start;
    c->progress = cut;
    pl->pos = cut + 1;
    return true;
}

static embt_status grow_bytes(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return EMBT_OK;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    uint8_t *grown = embt__realloc(*buf, n);
    if (!grown)
        return embt__error_nomem();
    *buf = grown;
    *cap = n;
    return EMBT_OK;
}

/* Hands out the next chunk of a gzip stream, inflated into c->buf: whole lines only (the rest waits
 * in the carry), the trailing blank lines of the input dropped. *got_out is false at the end. */
static embt_status next_streamed(pipeline *pl, chunk *c, bool *got_out)
{
    *got_out = false;
    embt_status rc = grow_bytes(&c->buf, &c->buf_cap, CHUNK_BYTES + pl->carry_len + CHUNK_SLACK);
    if (rc != EMBT_OK)
        return rc;
    uint8_t *buf = c->buf;
    size_t len = pl->carry_len;
    uint64_t base = pl->carry_offset;
    if (len > 0) /* the carry is NULL until the first long tail; memcpy wants a real pointer */
        memcpy(buf, pl->carry, len);
    pl->carry_len = 0;
    bool more = len < CHUNK_BYTES;
    size_t cut;
    for (;;) {
        if (more && !pl->eof) {
            if (c->buf_cap - CHUNK_SLACK - len < CHUNK_BYTES / 4) { /* a long line */
                rc = grow_bytes(&c->buf, &c->buf_cap, c->buf_cap * 2);
                if (rc != EMBT_OK)
                    return rc;
                buf = c->buf;
            }
            size_t ask = c->buf_cap - CHUNK_SLACK - len, got = 0;
            rc = embt__input_read(pl->in, buf + len, ask, &got);
            if (rc != EMBT_OK)
                return rc;
            len += got;
            pl->eof = got < ask;
            if (pl->skip > 0) {
                size_t k = pl->skip < len ? pl->skip : len;
                memmove(buf, buf + k, len - k);
                len -= k;
                base += k;
                pl->skip -= k;
            }
            more = len < CHUNK_BYTES;
            continue;
        }
        size_t t = len; /* the text without trailing blank lines */
        while (t > 0 && (is_trailing_space(buf[t - 1]) || buf[t - 1] == '\n'))
            t--;
        if (pl->eof) {
            if (t == 0)
                return EMBT_OK;
            cut = t;
            break;
        }
        /* cut after the last line with text, or before the line still arriving */
        const uint8_t *nl = t > 0 ? memchr(buf + t, '\n', len - t) : NULL;
        if (!nl)
            for (size_t k = t; k > 0 && !nl; k--)
                if (buf[k - 1] == '\n')
                    nl = buf + k - 1;
        if (nl && t > 0) {
            cut = (size_t)(nl - buf);
            size_t rest = len - cut - 1;
            rc = grow_bytes(&pl->carry, &pl->carry_cap, rest);
            if (rc != EMBT_OK)
                return rc;
            memcpy(pl->carry, buf + cut + 1, rest);
            pl->carry_len = rest;
            pl->carry_offset = base + cut + 1;
            break;
        }
        more = true;
    }
    memset(buf + cut, 0, CHUNK_SLACK);
    c->data = buf;
    c->len = cut;
    c->readable = cut + CHUNK_SLACK;
    c->offset = base;
    c->progress = embt__input_consumed(pl->in);
    *got_out = true;
    return EMBT_OK;
}

/* Parses every line of chunk c (or counts them past the row limit); runs on any worker. */
static void parse_chunk(const text_import *ti, chunk *c)
{
    c->n_lines = c->n_good = 0;
    c->failed = c->has_crc = false;
    if (c->source_rc != EMBT_OK)
        return;
    if (c->count_only) {
        size_t n = 1;
        for (const uint8_t *p = c->data, *end = c->data + c->len;
             (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
            n++;
        c->n_lines = n;
        return;
    }
    size_t dim = ti->lay.dim;
    /* a row takes at least 2 * dim + 1 bytes and a line feed: room for every row and one failure */
    size_t need = (c->len + 1) / (2 * dim + 2) + 2;
    row_job *job = &c->job;
    if (need > c->cap) {
        float *values = embt__realloc(c->values, need * dim * sizeof *values);
        if (values)
            c->values = values;
        token_span *tokens = values ? embt__realloc(c->tokens, need * sizeof *tokens) : NULL;
        if (!tokens) {
            c->failed = true;
            c->n_lines = 1;
            job->problem.code = EMBT_ENOMEM;
            return;
        }
        c->tokens = tokens;
        c->cap = need;
    }
    job->data = c->data;
    job->size = c->readable;
    job->values = c->values;
    job->tokens = c->tokens;
    size_t s = 0, row = 0;
    for (;;) {
        const uint8_t *nl = memchr(c->data + s, '\n', c->len - s);
        size_t e = nl ? (size_t)(nl - c->data) : c->len;
        if (!parse_row(job, row, s, e)) {
            c->failed = true;
            break;
        }
        row++;
        if (!nl)
            break;
        s = e + 1;
    }
    c->n_good = row;
    c->n_lines = row + (c->failed ? 1 : 0);
    if (ti->plain_f32 && !ti->lenient) { /* every parsed row is written as it is */
        c->crc = embt__crc32(0, c->values, (uint64_t)row * dim * sizeof *c->values);
        c->has_crc = true;
    }
}

/* Offset in chunk c of the start of its line i. */
static size_t line_offset(const chunk *c, size_t i)
{
    size_t p = 0;
    for (; i > 0; i--) {
        const uint8_t *nl = memchr(c->data + p, '\n', c->len - p);
        if (!nl)
            break;
        p = (size_t)(nl - c->data) + 1;
    }
    return p;
}

/* Appends n rows to the table, raising its row count first. */
static embt_status append_rows(text_import *ti, const float *values, size_t n, const uint32_t *crc)
{
    embt_writer *w = ti->ctx->writer;
    if (ti->allow_nonfinite)
        for (size_t i = 0; i < n * ti->lay.dim; i++)
            ti->ctx->report->nonfinite += !isfinite(values[i]);
    embt_status rc = output_failure(embt__writer_table_set_rows(w, ti->written + n));
    if (rc == EMBT_OK)
        rc = output_failure(crc ? embt__writer_table_append_f32_crc(w, values, n, *crc)
                                : embt_writer_table_append_f32(w, values, n));
    if (rc == EMBT_OK)
        ti->written += n;
    return rc;
}

/* Where a row of a chunk goes once its token has been through the policies. */
static embt_status keep_row(text_import *ti, chunk *c, size_t i, size_t *out)
{
    size_t dim = ti->lay.dim;
    const float *v = c->values + i * dim;
    if (ti->keep_last) {
        size_t row = ti->store.n - 1;
        if (row >= ti->all_cap) {
            /* doubling the rows held so far; the first block is bounded in bytes, not rows */
            size_t cap = ti->all_cap ? ti->all_cap * 2
                                     : embt__batch_rows(4096, dim * sizeof *v, KEEP_FIRST_BYTES);
            float *grown = embt__realloc(ti->all, cap * dim * sizeof *grown);
            if (!grown)
                return embt__error_nomem();
            ti->all = grown;
            ti->all_cap = cap;
        }
        memcpy(ti->all + row * dim, v, dim * sizeof *v);
        return EMBT_OK;
    }
    if (*out != i)
        memmove(c->values + *out * dim, v, dim * sizeof *v);
    (*out)++;
    return EMBT_OK;
}

/* Commits chunk c, the next in line order. *stop_out asks for no more chunks (the row limit was
 * reached and no header needs the rest counted); *count_out for counting only. */
static embt_status commit_chunk(text_import *ti, chunk *c, bool *stop_out, bool *count_out)
{
    const embt_convert_options *o = ti->ctx->opts;
    embt_convert_report *rep = ti->ctx->report;
    const layout *lay = &ti->lay;
    size_t dim = lay->dim;
    embt_status rc = EMBT_OK;
    *stop_out = *count_out = false;
    if (c->source_rc != EMBT_OK) {
        *embt__error_record() = c->source_error;
        return c->source_rc;
    }
    uint64_t line0 = ti->lines;
    if (line0 + c->n_lines + lay->body_line > UINT32_MAX)
        return embt__error(
            EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0, "input has %llu lines, more than %u",
            (unsigned long long)(line0 + c->n_lines + lay->body_line), UINT32_MAX - 1u);
    size_t out = 0; /* rows kept, moved to the front of c->values */
    size_t i;
    for (i = 0; i < c->n_lines; i++) {
        uint32_t line = (uint32_t)(lay->body_line + line0 + i);
        if (lay->header && line0 + i >= lay->header_rows) {
            rc = embt__error_parse(line, 1, c->offset + line_offset(c, i),
                                   "row %llu is beyond the %llu rows the header declares",
                                   (unsigned long long)(lay->header_rows + 1),
                                   (unsigned long long)lay->header_rows);
            break;
        }
        if (o->limit != 0 && ti->store.n >= o->limit) {
            if (!lay->header) {
                *stop_out = true;
                break;
            }
            *count_out = true;
            continue;
        }
        if (c->count_only)
            continue;
        if (i == c->n_good) {
            const parse_problem *pp = &c->job.problem;
            rc = pp->code == EMBT_ENOMEM
                     ? embt__error_nomem()
                     : embt__error_parse(line, pp->column, c->offset + pp->offset, "%s",
                                         pp->message);
            break;
        }
        const uint8_t *tok = c->data + c->tokens[i].offset;
        size_t len = c->tokens[i].length;
        uint64_t at = c->offset + c->tokens[i].offset;
        if (ti->lenient) {
            size_t bad_at = 0;
            if (!embt__utf8_valid(tok, len, &bad_at)) {
                if (o->on_bad_utf8 == EMBT_BAD_UTF8_ERROR) {
                    rc = embt__error_parse(line, (uint32_t)bad_at + 1, at + bad_at,
                                           "invalid utf-8 in token at byte %zu", bad_at + 1);
                    break;
                }
                if (o->on_bad_utf8 == EMBT_BAD_UTF8_SKIP) {
                    rep->utf8_skipped++;
                    continue;
                }
                len = embt__utf8_repair(ti->repaired, tok, len);
                tok = ti->repaired;
                if (len > TOKEN_BYTES_MAX) {
                    rc = embt__error_parse(line, 1, at,
                                           "token length %zu after utf-8 repair exceeds %u bytes",
                                           len, TOKEN_BYTES_MAX);
                    break;
                }
                rep->utf8_replaced++;
            }
        }
        if (ti->store.n >= EMBT__TOKENS_MAX) {
            rc = embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                             "%llu rows exceed the %u tokens of a vocabulary",
                             (unsigned long long)ti->store.n + 1, EMBT__TOKENS_MAX);
            break;
        }
        uint32_t first = UINT32_MAX;
        rc = token_store_add(&first, &ti->store, tok, (uint32_t)len, line);
        if (rc != EMBT_OK)
            break;
        if (first != UINT32_MAX) {
            if (o->on_duplicate == EMBT_DUPLICATE_ERROR) {
                char quoted[48];
                quote_field(quoted, sizeof quoted, tok, len);
                rc = embt__error_parse(line, 1, at, "duplicate token '%s' (first on line %u)",
                                       quoted, ti->store.lines[first]);
                break;
            }
            rep->duplicates_dropped++;
            if (o->on_duplicate == EMBT_DUPLICATE_LAST) /* same place and token */
                memcpy(ti->all + (size_t)first * dim, c->values + i * dim, dim * sizeof(float));
            continue;
        }
        rc = keep_row(ti, c, i, &out);
        if (rc != EMBT_OK)
            break;
    }
    ti->lines = line0 + i;
    if (rc != EMBT_OK || out == 0)
        return rc;
    /* the worker's CRC holds when every parsed row went out unmoved */
    return append_rows(ti, c->values, out, c->has_crc && out == c->n_good ? &c->crc : NULL);
}

/* Takes, parses and commits chunks until there are no more or something failed. */
static void *run_worker(void *arg)
{
    worker *wk = arg;
    pipeline *pl = wk->pl;
    text_import *ti = pl->ti;
    chunk *c = &wk->c;
    for (;;) {
        pthread_mutex_lock(&pl->src_lock);
        if (atomic_load(&pl->stop)) {
            pthread_mutex_unlock(&pl->src_lock);
            break;
        }
        bool got = false;
        embt_status src = pl->in ? next_streamed(pl, c, &got) : (got = next_mapped(pl, c), EMBT_OK);
        c->source_rc = src;
        if (src != EMBT_OK) { /* committed in turn, after the lines before it */
            embt__error_set_section("input");
            c->source_error = *embt__error_record();
            got = true;
        }
        if (!got || src != EMBT_OK)
            atomic_store(&pl->stop, true);
        if (!got) {
            pthread_mutex_unlock(&pl->src_lock);
            break;
        }
        c->seq = pl->next_seq++;
        c->count_only = atomic_load(&pl->count_only);
        pthread_mutex_unlock(&pl->src_lock);

        parse_chunk(ti, c);

        pthread_mutex_lock(&pl->turn_lock);
        while (pl->next_commit != c->seq)
            pthread_cond_wait(&pl->turn, &pl->turn_lock);
        bool skip = pl->failed;
        pthread_mutex_unlock(&pl->turn_lock);
        bool stop = false, count_only = false;
        embt_status rc = skip ? EMBT_OK : commit_chunk(ti, c, &stop, &count_only);
        if (rc == EMBT_OK && !skip && !pl->in)
            embt__input_drop(ti->ctx->in, c->offset, c->offset + c->len + 1);
        if (stop || rc != EMBT_OK)
            atomic_store(&pl->stop, true);
        if (count_only)
            atomic_store(&pl->count_only, true);
        pthread_mutex_lock(&pl->turn_lock);
        if (rc != EMBT_OK && !pl->failed) {
            pl->failed = true;
            pl->rc = rc;
            pl->error = *embt__error_record();
        }
        if (rc == EMBT_OK && !skip)
            pl->committed = c->progress;
        pl->next_commit++;
        uint64_t done = pl->committed;
        bool failed = pl->failed;
        pthread_cond_broadcast(&pl->turn);
        pthread_mutex_unlock(&pl->turn_lock);

        /* the callback runs on the calling thread only */
        if (wk->is_main && !failed && progress(ti, done, false) != EMBT_OK) {
            atomic_store(&pl->stop, true);
            pthread_mutex_lock(&pl->turn_lock);
            if (!pl->failed) {
                pl->failed = true;
                pl->rc = EMBT_ECANCELED;
                pl->error = *embt__error_record();
            }
            pthread_mutex_unlock(&pl->turn_lock);
        }
    }
    return NULL;
}

static void chunk_free(chunk *c)
{
    embt__free(c->buf);
    embt__free(c->values);
    embt__free(c->tokens);
    embt__free(c->job.fields);
}

/* Runs the pipeline over the body of the text. */
static embt_status run_pipeline(text_import *ti)
{
    const embt__import *ctx = ti->ctx;
    const embt_convert_options *o = ctx->opts;
    embt_status rc = EMBT_OK;
    pipeline pl;
    worker workers[THREADS_MAX];
    memset(&pl, 0, sizeof pl);
    memset(workers, 0, sizeof workers);
    pl.ti = ti;
    atomic_init(&pl.stop, false);
    atomic_init(&pl.count_only, false);
    if (ctx->in->streaming) {
        pl.in = (embt__input *)ctx->in; /* reading advances the input's stream */
        pl.skip = ti->lay.body;
    } else {
        pl.pos = ti->lay.body;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    size_t n_workers = ncpu < 1 ? 1 : ncpu > THREADS_MAX ? THREADS_MAX : (size_t)ncpu;
    if (!pl.in && ti->lay.end - ti->lay.body <= CHUNK_BYTES)
        n_workers = 1; /* one chunk */
    for (size_t t = 0; t < n_workers; t++) {
        worker *wk = &workers[t];
        wk->pl = &pl;
        wk->is_main = t == 0;
        row_job *job = &wk->c.job;
        job->dim = ti->lay.dim;
        job->allow_nonfinite =
            (o->flags & EMBT_CONVERT_ALLOW_NONFINITE) && dtype_is_float(ti->dtype);
        job->check_utf8 = !ti->lenient;
        job->fields = embt__malloc((size_t)ti->lay.dim * 2 * sizeof *job->fields);
        if (!job->fields) {
            rc = embt__error_nomem();
            goto done;
        }
    }
    pthread_mutex_init(&pl.src_lock, NULL);
    pthread_mutex_init(&pl.turn_lock, NULL);
    pthread_cond_init(&pl.turn, NULL);
    size_t launched = 1;
    for (; launched < n_workers; launched++)
        if (pthread_create(&workers[launched].thread, NULL, run_worker, &workers[launched]) != 0)
            break;
    run_worker(&workers[0]);
    for (size_t t = 1; t < launched; t++)
        pthread_join(workers[t].thread, NULL);
    pthread_cond_destroy(&pl.turn);
    pthread_mutex_destroy(&pl.turn_lock);
    pthread_mutex_destroy(&pl.src_lock);
    if (pl.failed) {
        *embt__error_record() = pl.error;
        rc = pl.rc;
    }
done:
    for (size_t t = 0; t < n_workers; t++)
        chunk_free(&workers[t].c);
    embt__free(pl.carry);
    return rc;
}

/* ---- the import ------------------------------------------------------------------------------ */

/* Ends the table, then writes the vocabulary and the metadata. */
static embt_status finish(text_import *ti)
{
    const embt__import *ctx = ti->ctx;
    uint64_t rows = ti->store.n;
    embt_status rc = output_failure(embt_writer_table_end(ctx->writer));
    if (rc != EMBT_OK)
        return rc;
    embt_vocab_spec vspec = EMBT_VOCAB_SPEC_INIT;
    vspec.name = ctx->vocab_name;
    vspec.flags = (ctx->opts->flags & EMBT_CONVERT_COMPRESS) ? EMBT_VOCAB_COMPRESS : 0;
    rc = output_failure(embt_writer_vocab_begin(ctx->writer, &vspec));
    if (rc != EMBT_OK)
        return rc;
    const token_store *ts = &ti->store;
    for (uint64_t r = 0; r < rows; r++) {
        rc = embt_writer_vocab_add(ctx->writer, (const char *)ts->arena + ts->spans[r].offset,
                                   ts->spans[r].length, 0, NULL);
        if (rc != EMBT_OK) {
            /* the tokens were checked before; keep the position if the writer disagrees */
            if (rc == EMBT_EINVAL || rc == EMBT_EEXISTS) {
                char why[sizeof embt_error_last()->message];
                memcpy(why, embt_error_last()->message, sizeof why);
                return embt__error_parse(ts->lines[r], 1, EMBT_NO_OFFSET,
                                         "token refused by the writer: %s", why);
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

/* `format`: EMBT_FORMAT_WORD2VEC, EMBT_FORMAT_GLOVE, or EMBT_FORMAT_AUTO to tell them apart. */
embt_status embt__import_text(const embt__import *ctx, embt_format format)
{
    EMBT_CHECK_ARG(ctx != NULL);
    EMBT_CHECK_ARG(format == EMBT_FORMAT_AUTO || format == EMBT_FORMAT_WORD2VEC ||
                   format == EMBT_FORMAT_GLOVE);
    const embt_convert_options *o = ctx->opts;
    const embt__input *in = ctx->in;
    embt_status rc;
    text_import ti;
    memset(&ti, 0, sizeof ti);
    ti.ctx = ctx;
    ti.dtype = o->dtype ? o->dtype : EMBT_DTYPE_F32;
    ti.lenient = o->on_duplicate != EMBT_DUPLICATE_ERROR || o->on_bad_utf8 != EMBT_BAD_UTF8_ERROR;
    ti.keep_last = o->on_duplicate == EMBT_DUPLICATE_LAST;
    ti.plain_f32 = ti.dtype == EMBT_DTYPE_F32 && !(o->flags & EMBT_CONVERT_COMPRESS);
    ti.allow_nonfinite = (o->flags & EMBT_CONVERT_ALLOW_NONFINITE) && dtype_is_float(ti.dtype);
    ti.total = in->streaming ? in->map_size : in->size;
    ti.step = ti.total / 100 ? ti.total / 100 : 1;

    rc = embt__parse_float_init();
    if (rc != EMBT_OK)
        goto done;
    if (o->vocab_path) {
        rc = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                         "text input names its tokens: a vocabulary file does not apply");
        goto done;
    }
    rc = detect_layout(&ti.lay, in->data, in->size, !in->streaming, format);
    if (rc != EMBT_OK)
        goto done;
    /* size the duplicate set from the first row's length (rehashing later is the fallback) */
    uint64_t guess = 0;
    if (!in->streaming && ti.lay.body < ti.lay.end) {
        size_t first = line_end(in->data, ti.lay.end, ti.lay.body) - ti.lay.body + 1;
        guess = (ti.lay.end - ti.lay.body) / first + 1;
    }
    if (o->limit != 0 && guess > o->limit)
        guess = o->limit;
    /* a row of dim values takes at least 2 * dim bytes, so the input bounds the rows whatever the
     * header declares */
    if (ti.lay.dim > 0) {
        uint64_t rows_that_fit = (ti.lay.end - ti.lay.body) / (2 * (uint64_t)ti.lay.dim);
        if (guess > rows_that_fit)
            guess = rows_that_fit;
    }
    if (guess > ROWS_GUESS_MAX)
        guess = ROWS_GUESS_MAX;
    rc = token_store_init(&ti.store, guess);
    if (rc != EMBT_OK)
        goto done;
    if (ti.keep_last && guess > 0) { /* the rows are held to the end: size them once */
        ti.all = embt__malloc((size_t)guess * ti.lay.dim * sizeof *ti.all);
        if (!ti.all) {
            rc = embt__error_nomem();
            goto done;
        }
        ti.all_cap = (size_t)guess;
    }
    if (ti.lenient) {
        ti.repaired = embt__malloc((size_t)TOKEN_BYTES_MAX * 3);
        if (!ti.repaired) {
            rc = embt__error_nomem();
            goto done;
        }
    }
    embt_table_spec tspec = EMBT_TABLE_SPEC_INIT;
    tspec.name = ctx->table_name;
    tspec.dtype = ti.dtype;
    tspec.rows = 0; /* raised as rows are appended */
    tspec.cols = ti.lay.dim;
    tspec.vocab = ctx->vocab_name;
    tspec.flags = (o->flags & EMBT_CONVERT_COMPRESS) ? EMBT_TABLE_COMPRESS : 0;
    rc = output_failure(embt_writer_table_begin(ctx->writer, &tspec));
    if (rc != EMBT_OK)
        goto done;
    rc = run_pipeline(&ti);
    if (rc != EMBT_OK)
        goto done;
    if (ti.lay.header && ti.lines < ti.lay.header_rows) {
        rc =
            embt__error_parse(1, 1, ti.lay.start, "header declares %llu rows, the file has %llu",
                              (unsigned long long)ti.lay.header_rows, (unsigned long long)ti.lines);
        goto done;
    }
    if (ti.keep_last && ti.store.n > 0) {
        rc = append_rows(&ti, ti.all, ti.store.n, NULL);
        if (rc != EMBT_OK)
            goto done;
    }
    rc = progress(&ti, ti.total, true);
    if (rc == EMBT_OK)
        rc = finish(&ti);
done:
    token_store_free(&ti.store);
    embt__free(ti.all);
    embt__free(ti.repaired);
    return rc;
}
