/* import_text.c: embt_convert_file for word2vec and GloVe text (plain or gzip): load the input into
 * memory, detect the header, parse rows in parallel batches and stream them through the writer. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "internal.h"
#include "parse_float.h"

#define LINE_BYTES_MAX (16u << 20)  /* longest accepted line, terminator excluded */
#define TOKEN_BYTES_MAX 65535u      /* spec/FORMAT.md 10 */
#define BATCH_ROWS_MAX 65536u       /* rows parsed before they are handed to the writer */
#define BATCH_VALUES_MAX (1u << 20) /* floats buffered per batch (4 MiB) */
#define ROWS_PER_THREAD_MIN 512u    /* below this a batch is parsed by the calling thread only */
#define THREADS_MAX 8
#define DETECT_NUL_BYTES 65536u /* auto-detection looks for NUL bytes in this prefix */
#define INFLATE_BYTES_MAX (UINT64_C(1) << 40)
#define DIM_MAX (LINE_BYTES_MAX / 2) /* each value takes at least a digit and a blank */
#define HEADER_NUMBER_MAX UINT64_C(1000000000000000)

static const char *const default_table = "embedding";
static const char *const default_vocab = "words";

const char *embt_format_name(embt_format format)
{
    switch (format) {
    case EMBT_FORMAT_EMBT: return "embt";
    case EMBT_FORMAT_WORD2VEC: return "word2vec";
    case EMBT_FORMAT_GLOVE: return "glove";
    case EMBT_FORMAT_AUTO: break;
    }
    return NULL;
}

embt_status embt_format_parse(embt_format *out, const char *name)
{
    EMBT_CHECK_ARG(out != NULL);
    EMBT_CHECK_ARG(name != NULL);
    static const embt_format known[] = {EMBT_FORMAT_EMBT, EMBT_FORMAT_WORD2VEC, EMBT_FORMAT_GLOVE};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(name, embt_format_name(known[i])) == 0) {
            *out = known[i];
            return EMBT_OK;
        }
    }
    return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                       "unknown format '%.64s' (expected embt, word2vec or glove)", name);
}

/* Gives back the pages of [from, to) of a file mapping: they were read, and their tokens copied. */
static void drop_pages(const uint8_t *data, bool droppable, size_t from, size_t to)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)(data + from) + page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t b = (uintptr_t)(data + to) & ~(uintptr_t)(page - 1);
    if (droppable && b > a)
        (void)madvise((void *)a, b - a, MADV_DONTNEED);
}

/* ---- input: the whole text in memory (a read-only map, or the inflated bytes of a .gz) ------ */

typedef struct text_input {
    const uint8_t *data; /* size bytes of text */
    size_t size;
    void *map; /* mapping to unmap, or NULL */
    size_t map_size;
    uint8_t *heap; /* inflated text to free, or NULL */
} text_input;

static void input_release(text_input *in)
{
    if (in->map)
        munmap(in->map, in->map_size);
    embt__free(in->heap);
    memset(in, 0, sizeof *in);
}

/* Inflates every gzip member of `gz` (n bytes) into in->heap. */
static embt_status inflate_gzip(text_input *in, const uint8_t *gz, size_t n)
{
    embt_status rc = EMBT_OK;
    z_stream zs;
    bool zs_live = false;
    uint8_t *buf = NULL;
    size_t cap, used = 0;

    /* ISIZE (the last member's length mod 2^32) is a good first guess for one-member files */
    uint64_t guess = n >= 18 ? embt__le32(gz + n - 4) : 0;
    cap = guess > n ? (size_t)guess + 1 : n * 4 + 64;
    if (cap < 4096)
        cap = 4096;
    buf = embt__malloc(cap);
    if (!buf) {
        rc = embt__error_nomem();
        goto done;
    }
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        rc = embt__error_nomem();
        goto done;
    }
    zs_live = true;
    size_t in_pos = 0;
    for (;;) {
        if (used == cap) {
            if ((uint64_t)cap * 2 > INFLATE_BYTES_MAX) {
                rc = embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                                 "gzip input inflates beyond %llu bytes",
                                 (unsigned long long)INFLATE_BYTES_MAX);
                goto done;
            }
            uint8_t *grown = embt__realloc(buf, cap * 2);
            if (!grown) {
                rc = embt__error_nomem();
                goto done;
            }
            buf = grown;
            cap *= 2;
        }
        size_t in_chunk = n - in_pos > (1u << 20) ? (1u << 20) : n - in_pos;
        size_t out_chunk = cap - used > (1u << 30) ? (1u << 30) : cap - used;
        zs.next_in = (Bytef *)(uintptr_t)(gz + in_pos);
        zs.avail_in = (uInt)in_chunk;
        zs.next_out = buf + used;
        zs.avail_out = (uInt)out_chunk;
        int zrc = inflate(&zs, Z_NO_FLUSH);
        size_t before = in_pos;
        in_pos += in_chunk - zs.avail_in;
        drop_pages(gz, true, before, in_pos); /* the compressed bytes are read once */
        used += out_chunk - zs.avail_out;
        if (zrc == Z_STREAM_END) {
            if (in_pos == n)
                break;
            if (n - in_pos >= 2 && gz[in_pos] == 0x1f && gz[in_pos + 1] == 0x8b) {
                inflateReset(&zs); /* next member */
                continue;
            }
            rc = embt__error(EMBT_EFORMAT, in_pos, NULL, 0,
                             "%zu bytes after the end of the gzip stream", n - in_pos);
            goto done;
        }
        if (zrc == Z_MEM_ERROR) {
            rc = embt__error_nomem();
            goto done;
        }
        if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            rc = embt__error(EMBT_EFORMAT, in_pos, NULL, 0, "corrupt gzip data at byte %zu: %s",
                             in_pos, zs.msg ? zs.msg : "inflate error");
            goto done;
        }
        if (in_pos == n && zs.avail_out != 0) {
            rc = embt__error(EMBT_EFORMAT, in_pos, NULL, 0, "gzip stream truncated at byte %zu", n);
            goto done;
        }
    }
    in->heap = buf;
    in->data = buf;
    in->size = used;
    buf = NULL;
done:
    if (zs_live)
        inflateEnd(&zs);
    embt__free(buf);
    return rc;
}

static embt_status input_load(text_input *in, const char *path)
{
    embt_status rc = EMBT_OK;
    struct stat st;
    void *map = NULL;
    size_t map_size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    memset(in, 0, sizeof *in);
    if (fd < 0) {
        rc = embt__error_sys(errno, "cannot open input");
        goto done;
    }
    if (fstat(fd, &st) != 0) {
        rc = embt__error_sys(errno, "cannot stat input");
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = embt__error(EMBT_EIO, EMBT_NO_OFFSET, NULL, 0, "input is not a regular file");
        goto done;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        rc = embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                         "input size %llu exceeds the address space",
                         (unsigned long long)st.st_size);
        goto done;
    }
    map_size = (size_t)st.st_size;
    if (map_size == 0)
        goto done; /* empty: the parser reports it */
    map = mmap(NULL, map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        map = NULL;
        rc = embt__error_sys(errno, "cannot map input");
        goto done;
    }
    (void)madvise(map, map_size, MADV_SEQUENTIAL);
    const uint8_t *bytes = map;
    if (map_size >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) {
        rc = inflate_gzip(in, bytes, map_size);
        goto done; /* the map is released below: only the inflated copy is kept */
    }
    in->map = map;
    in->map_size = map_size;
    in->data = bytes;
    in->size = map_size;
    map = NULL;
done:
    if (map)
        munmap(map, map_size);
    if (fd >= 0)
        close(fd);
    return rc;
}

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
    const size_t *starts; /* (n) line starts */
    const size_t *ends;   /* (n) line ends (offset of the '\n' or of the end of input) */
    size_t n;
    uint32_t dim;
    bool allow_nonfinite;
    float *values;      /* (n, dim) output */
    token_span *tokens; /* (n) output */
    size_t *fields;     /* (dim, 2) scratch: start and end of each value */
    size_t bad_row;     /* first row that failed, n when none */
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

static bool parse_row(row_job *job, size_t row)
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
    if (!embt__utf8_valid(data + s, token_len, &bad_at))
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
        if (!job->allow_nonfinite && !isfinite(v[k])) {
            quote_field(quoted, sizeof quoted, data + a, b - a);
            return fail_row(job, row, s, a, "value %u '%s' is not finite", k + 1, quoted);
        }
    }
    job->tokens[row].offset = s;
    job->tokens[row].length = (uint32_t)token_len;
    return true;
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
static embt_status detect_layout(layout *out, const uint8_t *data, size_t size, bool droppable,
                                 embt_format from)
{
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
            if (p - dropped >= (16u << 20)) { /* counting need not keep the text resident */
                drop_pages(data, droppable, dropped, p);
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

/* The conversion proper, on text already in memory. */
/* `droppable`: data is a read-only file mapping whose pages may be released once parsed. */
static embt_status convert_text(const uint8_t *data, size_t size, bool droppable,
                                const char *out_path, const embt_convert_options *o)
{
    embt_status rc;
    embt_writer *writer = NULL;
    token_span *tokens = NULL;
    token_store store = {NULL, 0, 0, NULL, 0};
    float *values = NULL;
    size_t *starts = NULL, *ends = NULL, *scratch = NULL;
    layout lay;
    row_job jobs[THREADS_MAX];
    pthread_t threads[THREADS_MAX];
    const char *table_name = o->table_name ? o->table_name : default_table;
    const char *vocab_name = o->vocab_name ? o->vocab_name : default_vocab;
    embt_dtype dtype = o->dtype ? o->dtype : EMBT_DTYPE_F32;
    bool allow_nonfinite = (o->flags & EMBT_CONVERT_ALLOW_NONFINITE) && dtype_is_float(dtype);

    rc = detect_layout(&lay, data, size, droppable, o->from);
    if (rc != EMBT_OK)
        goto done;
    uint64_t rows = lay.lines;
    if (o->limit != 0 && o->limit < rows)
        rows = o->limit;
    if (rows > EMBT__TOKENS_MAX) {
        rc = embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                         "%llu rows exceed the %u tokens of a vocabulary", (unsigned long long)rows,
                         EMBT__TOKENS_MAX);
        goto done;
    }

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    size_t n_threads = ncpu < 1 ? 1 : ncpu > THREADS_MAX ? THREADS_MAX : (size_t)ncpu;
    size_t batch = BATCH_VALUES_MAX / lay.dim;
    if (batch > BATCH_ROWS_MAX)
        batch = BATCH_ROWS_MAX;
    if (batch < 1)
        batch = 1;
    if (batch > rows)
        batch = rows > 0 ? (size_t)rows : 1;

    tokens = embt__malloc((size_t)(rows ? rows : 1) * sizeof *tokens);
    values = embt__malloc(batch * lay.dim * sizeof *values);
    starts = embt__malloc(batch * sizeof *starts);
    ends = embt__malloc(batch * sizeof *ends);
    scratch = embt__malloc(n_threads * lay.dim * 2 * sizeof *scratch);
    if (!tokens || !values || !starts || !ends || !scratch) {
        rc = embt__error_nomem();
        goto done;
    }
    rc = token_store_init(&store, rows);
    if (rc != EMBT_OK)
        goto done;

    rc = output_failure(embt_writer_open(&writer, out_path, NULL));
    if (rc != EMBT_OK)
        goto done;
    unsigned compress = o->flags & EMBT_CONVERT_COMPRESS;
    embt_table_spec tspec = EMBT_TABLE_SPEC_INIT;
    tspec.name = table_name;
    tspec.dtype = dtype;
    tspec.rows = rows;
    tspec.cols = lay.dim;
    tspec.vocab = vocab_name;
    tspec.flags = compress ? EMBT_TABLE_COMPRESS : 0;
    rc = output_failure(embt_writer_table_begin(writer, &tspec));
    if (rc != EMBT_OK)
        goto done;

    uint64_t total = size;
    uint64_t next_report = 0;
    uint64_t step = total / 100 ? total / 100 : 1;
    size_t pos = lay.body;
    for (uint64_t row = 0; row < rows;) {
        size_t nb = rows - row < batch ? (size_t)(rows - row) : batch;
        for (size_t i = 0; i < nb; i++) {
            starts[i] = pos;
            ends[i] = line_end(data, lay.end, pos);
            pos = ends[i] + 1;
        }
        size_t parts = nb / ROWS_PER_THREAD_MIN;
        if (parts < 1)
            parts = 1;
        if (parts > n_threads)
            parts = n_threads;
        size_t per = (nb + parts - 1) / parts;
        size_t launched = 0;
        for (size_t t = 0; t < parts; t++) {
            size_t a = t * per;
            size_t b = a + per < nb ? a + per : nb;
            row_job *j = &jobs[t];
            memset(j, 0, sizeof *j);
            j->data = data;
            j->starts = starts + a;
            j->ends = ends + a;
            j->n = a < b ? b - a : 0;
            j->dim = lay.dim;
            j->allow_nonfinite = allow_nonfinite;
            j->values = values + a * lay.dim;
            j->tokens = tokens + row + a;
            j->fields = scratch + t * lay.dim * 2;
        }
        /* workers take parts 1.., this thread part 0; a failed create runs the part here instead */
        for (size_t t = 1; t < parts; t++) {
            if (pthread_create(&threads[t], NULL, run_job, &jobs[t]) != 0)
                break;
            launched = t;
        }
        run_job(&jobs[0]);
        for (size_t t = 1; t <= launched; t++)
            pthread_join(threads[t], NULL);
        for (size_t t = launched + 1; t < parts; t++)
            run_job(&jobs[t]);

        /* the first failure in line order, then duplicates before it */
        size_t good = nb;
        const row_job *bad = NULL;
        for (size_t t = 0; t < parts; t++) {
            if (jobs[t].bad_row < jobs[t].n) {
                bad = &jobs[t];
                good = t * per + jobs[t].bad_row;
                break;
            }
        }
        for (size_t i = 0; i < good; i++) {
            uint32_t r = (uint32_t)(row + i);
            uint32_t first = UINT32_MAX;
            rc = token_store_add(&first, &store, tokens, r, data + starts[i]);
            if (rc != EMBT_OK)
                goto done;
            if (first != UINT32_MAX) {
                char quoted[48];
                quote_field(quoted, sizeof quoted, data + starts[i], tokens[r].length);
                rc = embt__error_parse(lay.body_line + r, 1, starts[i],
                                       "duplicate token '%s' (first on line %u)", quoted,
                                       lay.body_line + first);
                goto done;
            }
        }
        if (bad) {
            if (bad->problem.code == EMBT_ENOMEM) {
                rc = embt__error_nomem();
                goto done;
            }
            rc = embt__error_parse((uint32_t)(lay.body_line + row + good), bad->problem.column,
                                   bad->problem.offset, "%s", bad->problem.message);
            goto done;
        }
        rc = output_failure(embt_writer_table_append_f32(writer, values, nb));
        if (rc != EMBT_OK)
            goto done;
        drop_pages(data, droppable, starts[0], pos < lay.end ? pos : lay.end);
        row += nb;
        if (o->progress && (pos >= next_report || row == rows)) {
            uint64_t done_bytes = row == rows || pos > total ? total : pos;
            if (o->progress(done_bytes, total, o->payload) != 0) {
                rc = embt__error(EMBT_ECANCELED, EMBT_NO_OFFSET, NULL, 0,
                                 "conversion canceled at row %llu", (unsigned long long)row);
                goto done;
            }
            next_report = pos + step;
        }
    }
    rc = output_failure(embt_writer_table_end(writer));
    if (rc != EMBT_OK)
        goto done;

    embt_vocab_spec vspec = EMBT_VOCAB_SPEC_INIT;
    vspec.name = vocab_name;
    vspec.flags = compress ? EMBT_VOCAB_COMPRESS : 0;
    rc = output_failure(embt_writer_vocab_begin(writer, &vspec));
    if (rc != EMBT_OK)
        goto done;
    for (uint64_t r = 0; r < rows; r++) {
        rc = embt_writer_vocab_add(writer, (const char *)store.arena + tokens[r].offset,
                                   tokens[r].length, 0, NULL);
        if (rc != EMBT_OK) {
            output_failure(rc);
            /* the tokens were checked above; keep the position if the writer disagrees */
            if (rc == EMBT_EINVAL || rc == EMBT_EEXISTS) {
                char why[sizeof embt_error_last()->message];
                memcpy(why, embt_error_last()->message, sizeof why);
                rc = embt__error_parse((uint32_t)(lay.body_line + r), 1, EMBT_NO_OFFSET,
                                       "token refused by the writer: %s", why);
            }
            goto done;
        }
    }
    rc = output_failure(embt_writer_vocab_end(writer));
    if (rc != EMBT_OK)
        goto done;

    char meta[160];
    int meta_len = snprintf(meta, sizeof meta, "source: {format: %s, rows: %llu, dim: %u}\n",
                            embt_format_name(lay.format), (unsigned long long)rows, lay.dim);
    rc = output_failure(embt_writer_set_metadata(writer, meta, (size_t)meta_len));
    if (rc != EMBT_OK)
        goto done;
    rc = output_failure(embt_writer_commit(writer));
done:
    embt_writer_free(writer);
    token_store_free(&store);
    embt__free(scratch);
    embt__free(ends);
    embt__free(starts);
    embt__free(values);
    embt__free(tokens);
    return rc;
}

embt_status embt_convert_file(const char *in_path, const char *out_path,
                              const embt_convert_options *opts)
{
    embt_status rc;
    text_input in;
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;

    EMBT_CHECK_ARG(in_path != NULL);
    EMBT_CHECK_ARG(out_path != NULL);
    memset(&in, 0, sizeof in);
    if (opts) {
        if (opts->version != EMBT_CONVERT_OPTIONS_VERSION)
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                               "convert options version %u, expected %u", opts->version,
                               EMBT_CONVERT_OPTIONS_VERSION);
        o = *opts;
    }
    if (o.from != EMBT_FORMAT_AUTO && o.from != EMBT_FORMAT_WORD2VEC && o.from != EMBT_FORMAT_GLOVE)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "cannot convert from format %d (expected word2vec or glove)",
                           (int)o.from);
    if (o.dtype != 0 && embt_dtype_size(o.dtype) == 0)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "unknown dtype %d", (int)o.dtype);
    if (o.flags & ~(EMBT_CONVERT_COMPRESS | EMBT_CONVERT_ALLOW_NONFINITE))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "unknown convert flags 0x%x",
                           o.flags);
    rc = embt__parse_float_init();
    if (rc != EMBT_OK)
        return rc;
    rc = input_load(&in, in_path);
    if (rc != EMBT_OK) {
        embt__error_set_section("input");
        goto done;
    }
    rc = convert_text(in.data, in.size, in.map != NULL, out_path, &o);
done:
    input_release(&in);
    return rc;
}
