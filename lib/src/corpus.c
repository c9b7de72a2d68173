/* corpus.c: a buffered word reader over a text corpus that can start at any byte offset, and the
 * counting vocabulary (FNV-1a open addressing) built from it (corpus.h). */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corpus.h"
#include "sysio.h"

#define READ_CHUNK (1u << 20)

static inline bool is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Makes buf[pos] available; false at end of file or on error (*st set). */
static bool fill(embt__reader *r, embt_status *st)
{
    if (r->pos < r->len)
        return true;
    ssize_t got;
    do
        got = embt__read(r->fd, r->buf, r->cap);
    while (got < 0 && errno == EINTR);
    if (got < 0) {
        *st = embt__error_sys(errno, "cannot read the corpus %s", r->path);
        return false;
    }
    r->len = (size_t)got;
    r->pos = 0;
    return got > 0;
}

embt_status embt__reader_seek(embt__reader *r, uint64_t offset)
{
    uint64_t start = offset > 0 ? offset - 1 : 0;
    if (lseek(r->fd, (off_t)start, SEEK_SET) < 0)
        return embt__error_sys(errno, "cannot seek in the corpus %s", r->path);
    r->len = r->pos = 0;
    r->offset = start;
    if (offset == 0)
        return EMBT_OK;
    embt_status st = EMBT_OK;
    if (!fill(r, &st))
        return st;
    bool mid_word = !is_space(r->buf[r->pos]);
    r->pos++;
    r->offset++;
    while (mid_word && fill(r, &st) && !is_space(r->buf[r->pos])) {
        r->pos++;
        r->offset++;
    }
    return st;
}

static embt_status reader_open(embt__reader *r, const char *path, uint64_t offset)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->fd = -1;
    int fd =
        open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block: refused below */
    if (fd < 0)
        return embt__error_sys(errno, "cannot open the corpus %s", path);
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return embt__error_sys(e, "cannot stat the corpus %s", path);
    }
    if (!S_ISREG(sb.st_mode)) { /* threads seek to their share of the bytes */
        close(fd);
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "the corpus %s is not a regular file", path);
    }
    r->fd = fd;
    r->size = (uint64_t)sb.st_size;
    r->cap = READ_CHUNK;
    r->buf = embt__malloc(r->cap);
    if (!r->buf) {
        embt__reader_close(r);
        return embt__error_nomem();
    }
    embt_status st = embt__reader_seek(r, offset);
    if (st)
        embt__reader_close(r);
    return st;
}

embt_status embt__reader_open(embt__reader *r, const char *path, uint64_t offset)
{
    embt_status st = reader_open(r, path, offset);
    if (st && st != EMBT_ENOMEM)
        embt__error_set_section("corpus"); /* the CLI then names the corpus file */
    return st;
}

void embt__reader_close(embt__reader *r)
{
    if (r->fd >= 0)
        close(r->fd);
    embt__free(r->buf);
    r->fd = -1;
    r->buf = NULL;
}

embt__tok embt__reader_next(embt__reader *r, embt_status *st)
{
    *st = EMBT_OK;
    /* skip blanks other than newline */
    for (;;) {
        if (!fill(r, st))
            return EMBT__TOK_EOF;
        uint8_t c = r->buf[r->pos];
        if (c == '\n') {
            r->pos++;
            r->offset++;
            return EMBT__TOK_EOL;
        }
        if (!is_space(c))
            break;
        r->pos++;
        r->offset++;
    }
    size_t n = 0;
    bool too_long = false;
    while (fill(r, st)) {
        uint8_t c = r->buf[r->pos];
        if (is_space(c))
            break;
        if (n < EMBT__TOKEN_MAX)
            r->word[n++] = (char)c;
        else
            too_long = true;
        r->pos++;
        r->offset++;
    }
    if (*st)
        return EMBT__TOK_EOF;
    r->word[n] = '\0';
    r->word_len = n;
    if (too_long || !embt__utf8_valid((const uint8_t *)r->word, n, NULL))
        return EMBT__TOK_SKIP;
    return EMBT__TOK_WORD;
}

/* ---- vocabulary ---- */

void embt__vocab_init(embt__vocab *v)
{
    memset(v, 0, sizeof *v);
}

void embt__vocab_release(embt__vocab *v)
{
    embt__free(v->arena);
    embt__free(v->off);
    embt__free(v->len);
    embt__free(v->count);
    embt__free(v->slots);
    memset(v, 0, sizeof *v);
}

static size_t slot_of(const embt__vocab *v, const char *tok, size_t len)
{
    size_t mask = v->n_slots - 1;
    size_t s = (size_t)embt__fnv1a64(tok, len) & mask;
    for (;;) {
        uint32_t id = v->slots[s];
        if (id == EMBT_NONE_ID ||
            (v->len[id] == len && memcmp(v->arena + v->off[id], tok, len) == 0))
            return s;
        s = (s + 1) & mask;
    }
}

static embt_status rehash(embt__vocab *v, size_t n_slots)
{
    uint32_t *slots = embt__malloc(n_slots * sizeof *slots);
    if (!slots)
        return embt__error_nomem();
    embt__free(v->slots);
    v->slots = slots;
    v->n_slots = n_slots;
    memset(slots, 0xFF, n_slots * sizeof *slots);
    for (uint32_t i = 0; i < v->n; i++)
        slots[slot_of(v, v->arena + v->off[i], v->len[i])] = i;
    return EMBT_OK;
}

embt_status embt__vocab_append_file(embt__vocab *d, const embt_vocab *src, bool with_counts)
{
    for (uint32_t i = 0, n = embt_vocab_size(src); i < n; i++) {
        size_t len;
        uint64_t count = 0;
        const char *tok = embt_vocab_token(src, i, &len);
        if (!tok)
            return embt_error_last()->code;
        embt_status st = with_counts ? embt_vocab_count(&count, src, i) : EMBT_OK;
        uint32_t want = d->n, id = EMBT_NONE_ID;
        if (st || (st = embt__vocab_add(d, tok, len, count, &id)))
            return st;
        if (id != want)
            return embt__error(EMBT_ECORRUPT, EMBT_NO_OFFSET, NULL, 0,
                               "vocabulary token %" PRIu32 " repeats token %" PRIu32, i,
                               id - (want - i));
    }
    return EMBT_OK;
}

uint32_t embt__vocab_find(const embt__vocab *v, const char *tok, size_t len)
{
    if (!v->n_slots)
        return EMBT_NONE_ID;
    return v->slots[slot_of(v, tok, len)];
}

static bool grow(void **p, size_t elem, size_t n)
{
    void *q = embt__realloc(*p, elem * n);
    if (!q)
        return false;
    *p = q;
    return true;
}

embt_status embt__vocab_add(embt__vocab *v, const char *tok, size_t len, uint64_t count,
                            uint32_t *id_out)
{
    if (v->n_slots == 0 && rehash(v, 1024))
        return EMBT_ENOMEM;
    size_t s = slot_of(v, tok, len);
    uint32_t id = v->slots[s];
    if (id != EMBT_NONE_ID) {
        v->count[id] += count;
        if (id_out)
            *id_out = id;
        return EMBT_OK;
    }
    if (v->n == UINT32_MAX - 1)
        return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0, "too many distinct tokens");
    if (v->n == v->cap) {
        uint32_t cap = v->cap ? (v->cap > UINT32_MAX / 2 ? UINT32_MAX : v->cap * 2) : 1024;
        if (!grow((void **)&v->off, sizeof *v->off, cap) ||
            !grow((void **)&v->len, sizeof *v->len, cap) ||
            !grow((void **)&v->count, sizeof *v->count, cap))
            return embt__error_nomem();
        v->cap = cap;
    }
    if (v->arena_len + len + 1 > v->arena_cap) {
        size_t cap = v->arena_cap ? v->arena_cap * 2 : 1 << 16;
        while (cap < v->arena_len + len + 1)
            cap *= 2;
        if (!grow((void **)&v->arena, 1, cap))
            return embt__error_nomem();
        v->arena_cap = cap;
    }
    id = v->n++;
    v->off[id] = v->arena_len;
    v->len[id] = (uint32_t)len;
    v->count[id] = count;
    memcpy(v->arena + v->arena_len, tok, len);
    v->arena[v->arena_len + len] = '\0';
    v->arena_len += len + 1;
    v->slots[s] = id;
    if ((size_t)v->n * 10 > v->n_slots * 7 && rehash(v, v->n_slots * 2))
        return EMBT_ENOMEM;
    if (id_out)
        *id_out = id;
    return EMBT_OK;
}

typedef struct ranked {
    uint64_t count;
    uint32_t id;
} ranked;

static int cmp_count_desc(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

embt_status embt__vocab_finish(embt__vocab *v, uint32_t keep, uint64_t min_count)
{
    if (keep > v->n)
        keep = v->n;
    ranked *order = embt__malloc(((size_t)v->n + 1) * sizeof *order);
    uint64_t *off = embt__malloc(((size_t)v->n + 1) * sizeof *off);
    uint32_t *len = embt__malloc(((size_t)v->n + 1) * sizeof *len);
    uint64_t *count = embt__malloc(((size_t)v->n + 1) * sizeof *count);
    if (!order || !off || !len || !count) {
        embt__free(order);
        embt__free(off);
        embt__free(len);
        embt__free(count);
        return embt__error_nomem();
    }
    uint32_t n = 0;
    for (uint32_t i = keep; i < v->n; i++)
        if (v->count[i] >= min_count) {
            order[n].count = v->count[i];
            order[n++].id = i;
        }
    qsort(order, n, sizeof *order, cmp_count_desc);
    for (uint32_t i = 0; i < keep; i++) {
        off[i] = v->off[i];
        len[i] = v->len[i];
        count[i] = v->count[i];
    }
    for (uint32_t k = 0; k < n; k++) {
        off[keep + k] = v->off[order[k].id];
        len[keep + k] = v->len[order[k].id];
        count[keep + k] = v->count[order[k].id];
    }
    embt__free(order);
    embt__free(v->off);
    embt__free(v->len);
    embt__free(v->count);
    v->off = off;
    v->len = len;
    v->count = count;
    v->n = keep + n;
    v->cap = v->n + 1;
    size_t slots = 1024;
    while (slots * 7 < (size_t)v->n * 10)
        slots *= 2;
    return rehash(v, slots * 2);
}
