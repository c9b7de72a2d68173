/* writer.c: the streaming, atomic, deterministic writer of spec/FORMAT.md files.
 *
 * Invariants: sections go to the temporary file strictly one after the other (w->pos is the logical
 * end of the file, buffered bytes included); each section's CRC-32 is computed over its stored bytes
 * as they are produced; every gap is zero padding; nothing reaches the destination path before
 * commit renames the complete file over it. A failure in the middle of a section (I/O, zlib, memory)
 * marks the writer broken: only embt_writer_free() is useful after that. A rejected argument (bad
 * token, bad name, bad shape) changes nothing. */
#define _GNU_SOURCE /* sync_file_range */
#define ZLIB_CONST
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "internal.h"
#include "sysio.h"
#include "tmpfile.h"

#define WBUF_SIZE (1u << 20)  /* write buffer: small appends cost a memcpy, not a syscall */
#define WBUF_MIN (4u << 10)   /* its first size: it doubles up to WBUF_SIZE as output arrives */
#define ZOUT_SIZE (64u << 10) /* deflate output chunk */
#define CONV_ELEMS 8192u      /* elements converted per chunk (at most 8 bytes each) */
#define ZFEED_MAX (1u << 30)  /* avail_in is a uInt: feed large buffers in pieces */
#define SET_MIN 1024u         /* initial slots of the duplicate-token set */

/* One directory entry being built. Links are indices into w->entries. */
typedef struct wentry {
    uint16_t type;
    uint16_t flags;
    uint8_t codec;
    uint8_t filter;
    uint64_t offset;
    uint64_t stored;
    uint64_t decoded;
    uint32_t crc;
    uint32_t link;
    char *name; /* owned, name_len bytes (NUL-terminated for messages) */
    size_t name_len;
    uint8_t params[EMBT__E_PARAMS_LEN];
    char *tied_vocab; /* a tied table's vocabulary name, resolved to `link` at commit */
} wentry;

/* The section being written: offset, lengths and CRC so far, and the deflate state. */
typedef struct wstream {
    bool deflate;
    size_t elem; /* SHUFFLE element size; 0 when the section is not shuffled */
    uint64_t offset;
    uint64_t stored;
    uint64_t decoded;
    uint32_t crc;
    z_stream z;
    bool z_ready;
    size_t block_len; /* decoded bytes waiting in w->block for the shuffle */
} wstream;

/* The open vocabulary: tokens stay in memory until vocab_end (VOCAB starts with offsets[n + 1]). */
typedef struct wvocab {
    char *name;
    size_t name_len;
    unsigned flags;
    uint8_t *blob; /* blob_len bytes: the tokens, concatenated */
    size_t blob_len, blob_cap;
    uint64_t *offsets; /* (cap + 1): offsets[n] = blob_len */
    uint64_t *hashes;  /* (cap): FNV-1a 64 of each token */
    uint64_t *counts;  /* (cap), only with EMBT_VOCAB_COUNTS */
    size_t n, cap;
    uint32_t *set; /* (set_cap) open addressing over ids, EMBT__NONE empty; load <= 1/2 */
    size_t set_cap;
    uint32_t special[4]; /* unk, pad, bos, eos */
} wvocab;

/* The open table. Scales and norms are small (4 bytes a row) and written after the table. */
typedef struct wtable {
    size_t entry;
    embt_dtype dtype;
    size_t esize;
    unsigned rank;
    uint64_t rows, cols, done;
    unsigned flags;
    float *scales;      /* I8: (rows) for rank 2, (1) for rank 1 */
    float *norms;       /* EMBT_TABLE_NORMS: (rows) for rank 2, (1) for rank 1 */
    size_t row_cap;     /* entries allocated in scales and norms */
    double sumsq;       /* rank 1: running sum of squares of the decoded vector */
    float *pending;     /* I8 rank 1 from f32: (rows), quantised at table_end (one scale) */
    bool raw_scale_set; /* I8 rank 1 from raw bytes: scales[0] was given */
} wtable;

enum { OPEN_NONE, OPEN_VOCAB, OPEN_TABLE };

struct embt_writer {
    embt__tmpfile out; /* the temporary file, renamed over the destination at commit */
    uint32_t alignment;
    int level;
    bool broken;
    bool finished;
    /* Buffers are allocated on first use: a small file asks for about 100 kB, not 1.5 MB. */
    uint8_t *wbuf; /* (wbuf_cap <= WBUF_SIZE) */
    size_t wbuf_len, wbuf_cap;
    uint64_t pos;
    uint8_t *zout;  /* (ZOUT_SIZE), from the first deflated section */
    uint8_t *block; /* (EMBT__SHUFFLE_BLOCK) decoded bytes of the current shuffle block */
    uint8_t *shuf;  /* (EMBT__SHUFFLE_BLOCK) the same block, shuffled */
    void *conv;     /* (CONV_ELEMS * 8 bytes) converted elements, from the first vocab or table */
    float *check;   /* (CONV_ELEMS) elements decoded back for norms, from the first such table */
    wstream s;
    wentry *entries;
    size_t n_entries, cap_entries;
    int open;
    wvocab v;
    wtable t;
    char *metadata; /* set by embt_writer_set_metadata, written at commit */
    size_t metadata_len;
    bool has_metadata;
    bool copied_metadata;
};

/* ---- zlib allocation through the library's hooks ---------------------------------------------- */

static voidpf zalloc_hook(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return embt__calloc(items, size);
}

static void zfree_hook(voidpf opaque, voidpf ptr)
{
    (void)opaque;
    embt__free(ptr);
}

/* ---- raw output ------------------------------------------------------------------------------- */

static embt_status write_all(embt_writer *w, const uint8_t *p, size_t n, uint64_t at)
{
    uint64_t start = at;
    while (n > 0) {
        ssize_t k = embt__write(w->out.fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            w->broken = true;
            return embt__error_sys(errno, "write of %zu bytes at offset %" PRIu64 " failed", n, at);
        }
        p += k;
        n -= (size_t)k;
        at += (uint64_t)k;
    }
#ifdef SYNC_FILE_RANGE_WRITE
    /* start the write-back of large pieces now: the fsync at commit then has less left to wait for
     * (advisory: a failure here changes nothing, the fsync reports real errors) */
    if (at - start >= WBUF_SIZE)
        (void)sync_file_range(w->out.fd, (off_t)start, (off_t)(at - start), SYNC_FILE_RANGE_WRITE);
#endif
    return EMBT_OK;
}

static embt_status out_flush(embt_writer *w)
{
    embt_status st = write_all(w, w->wbuf, w->wbuf_len, w->pos - w->wbuf_len);
    w->wbuf_len = 0;
    return st;
}

/* Grows the write buffer by doubling until `want` (<= WBUF_SIZE) bytes fit. A failed allocation
 * breaks the writer: the caller is in the middle of a section. */
static embt_status wbuf_grow(embt_writer *w, size_t want)
{
    size_t cap = w->wbuf_cap ? w->wbuf_cap : WBUF_MIN;
    while (cap < want)
        cap *= 2;
    uint8_t *grown = embt__realloc(w->wbuf, cap);
    if (!grown) {
        w->broken = true;
        return embt__error_nomem();
    }
    w->wbuf = grown;
    w->wbuf_cap = cap;
    return EMBT_OK;
}

static embt_status out_bytes(embt_writer *w, const void *data, size_t n)
{
    const uint8_t *p = data;
    if (n == 0) /* empty vocabularies pass a NULL blob; memcpy must not see it */
        return EMBT_OK;
    if (n > WBUF_SIZE - w->wbuf_len) {
        embt_status st = out_flush(w);
        if (st != EMBT_OK)
            return st;
        if (n >= WBUF_SIZE) { /* a big piece goes straight to the file */
            w->pos += n;
            return write_all(w, p, n, w->pos - n);
        }
    }
    if (w->wbuf_len + n > w->wbuf_cap) {
        embt_status st = wbuf_grow(w, w->wbuf_len + n);
        if (st != EMBT_OK)
            return st;
    }
    memcpy(w->wbuf + w->wbuf_len, p, n);
    w->wbuf_len += n;
    w->pos += n;
    return EMBT_OK;
}

static embt_status out_zeros(embt_writer *w, uint64_t n)
{
    static const uint8_t zeros[256];
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        embt_status st = out_bytes(w, zeros, k);
        if (st != EMBT_OK)
            return st;
        n -= k;
    }
    return EMBT_OK;
}

/* FORMAT.md 3: each section and the directory start at align_up(previous end, alignment). */
static embt_status out_pad(embt_writer *w)
{
    uint64_t aligned;
    if (!embt__align_up(&aligned, w->pos, w->alignment)) {
        w->broken = true;
        return embt__error(EMBT_ELIMIT, w->pos, NULL, 0, "file length overflows 64 bits");
    }
    return out_zeros(w, aligned - w->pos);
}

/* ---- section streams -------------------------------------------------------------------------- */

/* Allocates, on first need, the buffers a section uses: zout to deflate, block and shuf to shuffle,
 * conv to convert values (vocabulary offsets and counts, table rows). */
static embt_status stream_buffers(embt_writer *w, bool deflate, bool shuffle, bool converts)
{
    if (deflate && !w->zout && !(w->zout = embt__malloc(ZOUT_SIZE)))
        goto nomem;
    if (shuffle && !w->block && !(w->block = embt__malloc(EMBT__SHUFFLE_BLOCK)))
        goto nomem;
    if (shuffle && !w->shuf && !(w->shuf = embt__malloc(EMBT__SHUFFLE_BLOCK)))
        goto nomem;
    if (converts && !w->conv && !(w->conv = embt__malloc((size_t)CONV_ELEMS * 8)))
        goto nomem;
    return EMBT_OK;
nomem:
    w->broken = true;
    return embt__error_nomem();
}

/* Starts a section at the next aligned offset; `converts`: its bytes go through w->conv. */
static embt_status stream_begin(embt_writer *w, bool deflate, size_t elem, bool converts)
{
    embt_status st = stream_buffers(w, deflate, deflate && elem > 1, converts);
    if (st == EMBT_OK)
        st = out_pad(w);
    if (st != EMBT_OK)
        return st;
    wstream *s = &w->s;
    s->deflate = deflate;
    s->elem = deflate && elem > 1 ? elem : 0; /* with e = 1 the shuffle is the identity */
    s->offset = w->pos;
    s->stored = s->decoded = 0;
    s->crc = 0;
    s->block_len = 0;
    if (deflate) {
        memset(&s->z, 0, sizeof s->z);
        s->z.zalloc = zalloc_hook;
        s->z.zfree = zfree_hook;
        int ret = deflateInit(&s->z, w->level);
        if (ret != Z_OK) {
            w->broken = true;
            return ret == Z_MEM_ERROR ? embt__error_nomem()
                                      : embt__error(EMBT_ERROR, EMBT_NO_OFFSET, NULL, 0,
                                                    "deflate init returned %d", ret);
        }
        s->z_ready = true;
    }
    return EMBT_OK;
}

/* Stored bytes: counted, checksummed, written. */
static embt_status stored_out(embt_writer *w, const uint8_t *p, size_t n)
{
    w->s.crc = embt__crc32(w->s.crc, p, n);
    w->s.stored += n;
    return out_bytes(w, p, n);
}

/* stored_out for bytes whose CRC-32 the caller computed (`crc`, from 0). */
static embt_status stored_out_crc(embt_writer *w, const uint8_t *p, size_t n, uint32_t crc)
{
    w->s.crc = (uint32_t)crc32_combine(w->s.crc, crc, (z_off_t)n);
    w->s.stored += n;
    w->s.decoded += n;
    return out_bytes(w, p, n);
}

static embt_status deflate_run(embt_writer *w, const uint8_t *p, size_t n, int flush)
{
    z_stream *z = &w->s.z;
    do {
        size_t chunk = n < ZFEED_MAX ? n : ZFEED_MAX;
        z->next_in = p;
        z->avail_in = (uInt)chunk;
        if (chunk) /* p is NULL when only flushing: no arithmetic on it */
            p += chunk;
        n -= chunk;
        int mode = n == 0 ? flush : Z_NO_FLUSH;
        do {
            z->next_out = w->zout;
            z->avail_out = ZOUT_SIZE;
            int ret = deflate(z, mode);
            if (ret == Z_STREAM_ERROR) {
                w->broken = true;
                return embt__error(EMBT_ERROR, w->pos, NULL, 0, "deflate stream error");
            }
            embt_status st = stored_out(w, w->zout, ZOUT_SIZE - z->avail_out);
            if (st != EMBT_OK)
                return st;
        } while (z->avail_out == 0);
    } while (n > 0);
    return EMBT_OK;
}

static embt_status shuffle_flush(embt_writer *w)
{
    embt__shuffle_block(w->shuf, w->block, w->s.block_len, w->s.elem);
    size_t n = w->s.block_len;
    w->s.block_len = 0;
    return deflate_run(w, w->shuf, n, Z_NO_FLUSH);
}

/* Appends decoded bytes to the current section. */
static embt_status stream_write(embt_writer *w, const void *data, size_t n)
{
    wstream *s = &w->s;
    const uint8_t *p = data;
    s->decoded += n;
    if (!s->deflate)
        return stored_out(w, p, n);
    if (s->elem == 0)
        return deflate_run(w, p, n, Z_NO_FLUSH);
    /* FORMAT.md 6: the shuffle works on 65,536-byte blocks of the decoded data */
    while (n > 0) {
        size_t k = EMBT__SHUFFLE_BLOCK - s->block_len;
        if (k > n)
            k = n;
        memcpy(w->block + s->block_len, p, k);
        s->block_len += k;
        p += k;
        n -= k;
        if (s->block_len == EMBT__SHUFFLE_BLOCK) {
            embt_status st = shuffle_flush(w);
            if (st != EMBT_OK)
                return st;
        }
    }
    return EMBT_OK;
}

/* Finishes the current section and records it in entry `index`. */
static embt_status stream_end(embt_writer *w, size_t index)
{
    wstream *s = &w->s;
    embt_status st = EMBT_OK;
    if (s->deflate) {
        if (s->elem && s->block_len > 0)
            st = shuffle_flush(w);
        if (st == EMBT_OK)
            st = deflate_run(w, NULL, 0, Z_FINISH);
        deflateEnd(&s->z);
        s->z_ready = false;
        if (st != EMBT_OK)
            return st;
    }
    wentry *e = &w->entries[index];
    e->codec = s->deflate ? EMBT__CODEC_DEFLATE : EMBT__CODEC_NONE;
    e->filter = s->elem ? EMBT__FILTER_SHUFFLE : EMBT__FILTER_NONE;
    e->offset = s->offset;
    e->stored = s->stored;
    e->decoded = s->decoded;
    e->crc = s->crc;
    return EMBT_OK;
}

/* A whole section from one buffer: begin, write, end (entry `index` already added). */
static embt_status write_section(embt_writer *w, size_t index, bool compress, size_t elem,
                                 const void *data, size_t n)
{
    embt_status st = stream_begin(w, compress, elem, false);
    if (st == EMBT_OK)
        st = stream_write(w, data, n);
    if (st == EMBT_OK)
        st = stream_end(w, index);
    return st;
}

/* ---- entries and names ------------------------------------------------------------------------ */

static embt_status entry_add(embt_writer *w, size_t *index_out, uint16_t type, bool required,
                             const char *name, size_t name_len, uint32_t link)
{
    if (w->n_entries >= EMBT__DIR_ENTRIES_MAX)
        return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                           "section count exceeds the limit of %u", EMBT__DIR_ENTRIES_MAX);
    if (w->n_entries == w->cap_entries) {
        size_t cap = w->cap_entries ? 2 * w->cap_entries : 16;
        wentry *grown = embt__realloc(w->entries, cap * sizeof *grown);
        if (!grown)
            return embt__error_nomem();
        w->entries = grown;
        w->cap_entries = cap;
    }
    char *copy = embt__strndup(name ? name : "", name_len);
    if (!copy)
        return embt__error_nomem();
    wentry *e = &w->entries[w->n_entries];
    memset(e, 0, sizeof *e);
    e->type = type;
    e->flags = required ? EMBT__ENTRY_REQUIRED : 0;
    e->link = link;
    e->name = copy;
    e->name_len = name_len;
    *index_out = w->n_entries++;
    return EMBT_OK;
}

/* Section and vocabulary names: FORMAT.md rule 14 (at most 256 bytes, UTF-8, no NUL); non-empty. */
static embt_status check_name(size_t *len_out, const char *what, const char *name)
{
    if (!name || !name[0])
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "%s name is empty", what);
    size_t len = strnlen(name, EMBT__NAME_MAX + 1);
    if (len > EMBT__NAME_MAX)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "%s name is longer than %u bytes",
                           what, EMBT__NAME_MAX);
    size_t bad;
    if (!embt__utf8_valid((const uint8_t *)name, len, &bad))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "%s name has invalid utf-8 at byte %zu", what, bad);
    *len_out = len;
    return EMBT_OK;
}

static const wentry *find_named(const embt_writer *w, uint16_t type, const char *name, size_t len)
{
    for (size_t i = 0; i < w->n_entries; i++) {
        const wentry *e = &w->entries[i];
        if (e->type == type && e->name_len == len && memcmp(e->name, name, len) == 0)
            return e;
    }
    return NULL;
}

static embt_status check_usable(const embt_writer *w, int want_open)
{
    if (w->finished)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "writer already committed");
    if (w->broken)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "writer is unusable after an earlier write failure");
    if (w->open != want_open) {
        static const char *const what[] = {"no section", "a vocabulary", "a table"};
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "expected %s open, found %s",
                           what[want_open], what[w->open]);
    }
    return EMBT_OK;
}

/* ---- open and free ---------------------------------------------------------------------------- */

embt_status embt_writer_open(embt_writer **out, const char *path, const embt_writer_options *opts)
{
    EMBT_CHECK_ARG(out != NULL);
    *out = NULL;
    EMBT_CHECK_ARG(path != NULL);
    if (!path[0])
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "output path is empty");
    embt_writer_options o = EMBT_WRITER_OPTIONS_INIT;
    if (opts)
        o = *opts;
    if (o.version != EMBT_WRITER_OPTIONS_VERSION)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "writer options version %u is not %u", o.version,
                           EMBT_WRITER_OPTIONS_VERSION);
    if (o.alignment == 0)
        o.alignment = EMBT__ALIGN_MIN;
    if (o.alignment < EMBT__ALIGN_MIN || o.alignment > EMBT__ALIGN_MAX ||
        (o.alignment & (o.alignment - 1)) != 0)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "alignment %" PRIu32 " is not a power of two in [64, 65536]",
                           o.alignment);
    if (o.compress_level == 0)
        o.compress_level = 1;
    if (o.compress_level < 1 || o.compress_level > 9)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "compression level %d is not in [1, 9]", o.compress_level);

    embt_status st = EMBT_OK;
    embt_writer *w = embt__calloc(1, sizeof *w);
    if (!w)
        return embt__error_nomem();
    w->out.fd = -1;
    w->alignment = o.alignment;
    w->level = o.compress_level;
    if ((st = embt__tmpfile_create(&w->out, path)))
        goto done;
    /* the header is patched at commit; FORMAT.md 3 puts section 0 at align_up(128, alignment) */
    st = out_zeros(w, EMBT__HEADER_SIZE);
done:
    if (st != EMBT_OK) {
        embt_writer_free(w);
        return st;
    }
    *out = w;
    return EMBT_OK;
}

static void vocab_reset(wvocab *v)
{
    embt__free(v->name);
    embt__free(v->blob);
    embt__free(v->offsets);
    embt__free(v->hashes);
    embt__free(v->counts);
    embt__free(v->set);
    memset(v, 0, sizeof *v);
}

static void table_reset(wtable *t)
{
    embt__free(t->scales);
    embt__free(t->norms);
    embt__free(t->pending);
    memset(t, 0, sizeof *t);
}

void embt_writer_free(embt_writer *writer)
{
    if (!writer)
        return;
    embt_writer *w = writer;
    if (w->s.z_ready)
        deflateEnd(&w->s.z);
    embt__tmpfile_discard(&w->out);
    vocab_reset(&w->v);
    table_reset(&w->t);
    for (size_t i = 0; i < w->n_entries; i++) {
        embt__free(w->entries[i].name);
        embt__free(w->entries[i].tied_vocab);
    }
    embt__free(w->entries);
    embt__free(w->metadata);
    embt__free(w->wbuf);
    embt__free(w->zout);
    embt__free(w->block);
    embt__free(w->shuf);
    embt__free(w->conv);
    embt__free(w->check);
    embt__free(w);
}

/* ---- vocabularies ----------------------------------------------------------------------------- */

embt_status embt_writer_vocab_begin(embt_writer *writer, const embt_vocab_spec *spec)
{
    EMBT_CHECK_ARG(writer != NULL);
    EMBT_CHECK_ARG(spec != NULL);
    embt_writer *w = writer;
    embt_status st = check_usable(w, OPEN_NONE);
    if (st != EMBT_OK)
        return st;
    if (spec->version != EMBT_VOCAB_SPEC_VERSION)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "vocabulary spec version %u is not %u", spec->version,
                           EMBT_VOCAB_SPEC_VERSION);
    if (spec->flags & ~(EMBT_VOCAB_COUNTS | EMBT_VOCAB_COMPRESS))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "unknown vocabulary flags 0x%x",
                           spec->flags);
    size_t len;
    st = check_name(&len, "vocabulary", spec->name);
    if (st != EMBT_OK)
        return st;
    if (find_named(w, EMBT_SECTION_VOCAB, spec->name, len))
        return embt__error(EMBT_EEXISTS, EMBT_NO_OFFSET, NULL, 0, "vocabulary '%s' already exists",
                           spec->name);
    wvocab *v = &w->v;
    v->name = embt__strndup(spec->name, len);
    v->offsets = embt__calloc(1, sizeof *v->offsets); /* offsets[0] = 0 */
    v->set = embt__malloc(SET_MIN * sizeof *v->set);
    if (!v->name || !v->offsets || !v->set) {
        vocab_reset(v);
        return embt__error_nomem();
    }
    memset(v->set, 0xFF, SET_MIN * sizeof *v->set);
    v->set_cap = SET_MIN;
    v->name_len = len;
    v->flags = spec->flags;
    for (int i = 0; i < 4; i++)
        v->special[i] = EMBT__NONE;
    w->open = OPEN_VOCAB;
    return EMBT_OK;
}

/* The slot holding a token equal to (tok, len), or the empty slot where it would go. */
static size_t set_probe(const wvocab *v, const uint8_t *tok, size_t len, uint64_t h)
{
    size_t mask = v->set_cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint32_t id = v->set[i];
        if (id == EMBT__NONE)
            return i;
        if (v->hashes[id] == h && v->offsets[id + 1] - v->offsets[id] == len &&
            memcmp(v->blob + v->offsets[id], tok, len) == 0)
            return i;
    }
}

/* Keeps the set at most half full so probes stay short; rebuilt from the stored hashes. */
static embt_status set_grow(wvocab *v)
{
    if (2 * (v->n + 1) <= v->set_cap)
        return EMBT_OK;
    size_t cap = 2 * v->set_cap;
    uint32_t *set = embt__calloc(cap, sizeof *set);
    if (!set)
        return embt__error_nomem();
    memset(set, 0xFF, cap * sizeof *set);
    for (size_t id = 0; id < v->n; id++) {
        size_t i = (size_t)v->hashes[id] & (cap - 1);
        while (set[i] != EMBT__NONE)
            i = (i + 1) & (cap - 1);
        set[i] = (uint32_t)id;
    }
    embt__free(v->set);
    v->set = set;
    v->set_cap = cap;
    return EMBT_OK;
}

/* Room for one more token in the per-token arrays and `len` more blob bytes. Arrays that grew keep
 * their new size even when a later one fails: only `cap` promises room. */
static embt_status vocab_reserve(wvocab *v, size_t len)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 1024;
        uint64_t *offsets = embt__realloc(v->offsets, (cap + 1) * sizeof *offsets);
        if (!offsets)
            return embt__error_nomem();
        v->offsets = offsets;
        uint64_t *hashes = embt__realloc(v->hashes, cap * sizeof *hashes);
        if (!hashes)
            return embt__error_nomem();
        v->hashes = hashes;
        if (v->flags & EMBT_VOCAB_COUNTS) {
            uint64_t *counts = embt__realloc(v->counts, cap * sizeof *counts);
            if (!counts)
                return embt__error_nomem();
            v->counts = counts;
        }
        v->cap = cap;
    }
    if (len > v->blob_cap - v->blob_len) {
        size_t cap = v->blob_cap ? v->blob_cap : 65536;
        while (cap - v->blob_len < len) {
            if (cap > SIZE_MAX / 2)
                return embt__error_nomem();
            cap *= 2;
        }
        uint8_t *blob = embt__realloc(v->blob, cap);
        if (!blob)
            return embt__error_nomem();
        v->blob = blob;
        v->blob_cap = cap;
    }
    return set_grow(v);
}

embt_status embt_writer_vocab_add(embt_writer *writer, const char *token, size_t len,
                                  uint64_t count, uint32_t *existing_id_out)
{
    EMBT_CHECK_ARG(writer != NULL);
    EMBT_CHECK_ARG(token != NULL || len == 0);
    embt_writer *w = writer;
    embt_status st = check_usable(w, OPEN_VOCAB);
    if (st != EMBT_OK)
        return st;
    wvocab *v = &w->v;
    /* FORMAT.md 4.1: every token is 1 to 65,535 bytes of valid UTF-8 without U+0000 */
    if (len == 0 || len > EMBT__TOKEN_LEN_MAX)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "token %zu length %zu is not in [1, %u]", v->n, len,
                           EMBT__TOKEN_LEN_MAX);
    const uint8_t *tok = (const uint8_t *)token;
    size_t bad;
    if (!embt__utf8_valid(tok, len, &bad))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "token %zu has invalid utf-8 or a nul at byte %zu", v->n, bad);
    if (v->n >= EMBT__TOKENS_MAX)
        return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                           "vocabulary exceeds the limit of %u tokens", EMBT__TOKENS_MAX);
    uint64_t h = embt__fnv1a64(tok, len);
    size_t slot = set_probe(v, tok, len, h);
    if (v->set[slot] != EMBT__NONE) {
        if (existing_id_out)
            *existing_id_out = v->set[slot];
        return embt__error(EMBT_EEXISTS, EMBT_NO_OFFSET, NULL, 0,
                           "token %zu duplicates token %" PRIu32, v->n, v->set[slot]);
    }
    st = vocab_reserve(v, len);
    if (st != EMBT_OK)
        return st;
    slot = set_probe(v, tok, len, h); /* the set may have been rebuilt */
    memcpy(v->blob + v->blob_len, tok, len);
    v->blob_len += len;
    v->hashes[v->n] = h;
    if (v->counts)
        v->counts[v->n] = count;
    v->offsets[v->n + 1] = v->blob_len;
    v->set[slot] = (uint32_t)v->n;
    v->n++;
    return EMBT_OK;
}

embt_status embt_writer_vocab_specials(embt_writer *writer, uint32_t unk_id, uint32_t pad_id,
                                       uint32_t bos_id, uint32_t eos_id)
{
    EMBT_CHECK_ARG(writer != NULL);
    embt_status st = check_usable(writer, OPEN_VOCAB);
    if (st != EMBT_OK)
        return st;
    writer->v.special[0] = unk_id;
    writer->v.special[1] = pad_id;
    writer->v.special[2] = bos_id;
    writer->v.special[3] = eos_id;
    return EMBT_OK;
}

/* Writes `n` u64 values little-endian through the conversion buffer. */
static embt_status write_u64s(embt_writer *w, const uint64_t *vals, size_t n)
{
    uint8_t *buf = w->conv;
    while (n > 0) {
        size_t k = n < CONV_ELEMS ? n : CONV_ELEMS;
        for (size_t i = 0; i < k; i++)
            embt__put64(buf + 8 * i, vals[i]);
        embt_status st = stream_write(w, buf, 8 * k);
        if (st != EMBT_OK)
            return st;
        vals += k;
        n -= k;
    }
    return EMBT_OK;
}

/* FORMAT.md 4.2: the smallest power of two >= max(16, ceil(4n / 3) + 1), so the load stays <= 3/4
 * and n_slots > n; it is then <= max(16, 4n) as rule 25 requires. */
static uint64_t index_slots(uint64_t n)
{
    uint64_t want = (4 * n + 2) / 3 + 1;
    uint64_t slots = 16;
    while (slots < want || slots <= n)
        slots *= 2;
    return slots;
}

static embt_status write_vocab_index(embt_writer *w, size_t vocab_entry, bool compress)
{
    wvocab *v = &w->v;
    uint64_t n_slots = index_slots(v->n);
    if (n_slots > SIZE_MAX / EMBT__SLOT_SIZE)
        return embt__error_nomem();
    uint8_t *slots = embt__malloc((size_t)n_slots * EMBT__SLOT_SIZE);
    if (!slots)
        return embt__error_nomem();
    for (uint64_t i = 0; i < n_slots; i++) {
        embt__put32(slots + 8 * i, EMBT__NONE);
        embt__put32(slots + 8 * i + 4, 0);
    }
    /* ids in increasing order, linear probing: the same tokens always give the same slots */
    uint64_t mask = n_slots - 1;
    for (size_t id = 0; id < v->n; id++) {
        uint64_t h = v->hashes[id];
        uint64_t i = h & mask;
        while (embt__le32(slots + 8 * i) != EMBT__NONE)
            i = (i + 1) & mask;
        embt__put32(slots + 8 * i, (uint32_t)id);
        embt__put32(slots + 8 * i + 4, (uint32_t)(h >> 32));
    }
    size_t index;
    embt_status st =
        entry_add(w, &index, EMBT_SECTION_VOCAB_INDEX, false, NULL, 0, (uint32_t)vocab_entry);
    if (st == EMBT_OK) {
        embt__put64(w->entries[index].params + EMBT__I_N_SLOTS, n_slots);
        embt__put32(w->entries[index].params + EMBT__I_HASH, EMBT__HASH_FNV1A64);
    }
    if (st == EMBT_OK)
        st = write_section(w, index, compress, 4, slots, (size_t)n_slots * EMBT__SLOT_SIZE);
    embt__free(slots);
    return st;
}

embt_status embt_writer_vocab_end(embt_writer *writer)
{
    EMBT_CHECK_ARG(writer != NULL);
    embt_writer *w = writer;
    embt_status st = check_usable(w, OPEN_VOCAB);
    if (st != EMBT_OK)
        return st;
    wvocab *v = &w->v;
    static const char *const special_names[] = {"unk", "pad", "bos", "eos"};
    for (int i = 0; i < 4; i++)
        if (v->special[i] != EMBT__NONE && v->special[i] >= v->n)
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                               "%s id %" PRIu32 " is not below the vocabulary size %zu",
                               special_names[i], v->special[i], v->n);
    bool compress = (v->flags & EMBT_VOCAB_COMPRESS) != 0;

    size_t vi;
    st = entry_add(w, &vi, EMBT_SECTION_VOCAB, true, v->name, v->name_len, EMBT__NONE);
    if (st != EMBT_OK)
        goto done;
    uint8_t *params = w->entries[vi].params;
    embt__put64(params + EMBT__V_N_TOKENS, v->n);
    embt__put64(params + EMBT__V_BLOB_LENGTH, v->blob_len);
    embt__put32(params + EMBT__V_UNK, v->special[0]);
    embt__put32(params + EMBT__V_PAD, v->special[1]);
    embt__put32(params + EMBT__V_BOS, v->special[2]);
    embt__put32(params + EMBT__V_EOS, v->special[3]);
    /* FORMAT.md 5: VOCAB may be deflated but never shuffled */
    st = stream_begin(w, compress, 0, true);
    if (st == EMBT_OK)
        st = write_u64s(w, v->offsets, v->n + 1);
    if (st == EMBT_OK)
        st = stream_write(w, v->blob, v->blob_len);
    if (st == EMBT_OK)
        st = stream_end(w, vi);
    if (st == EMBT_OK)
        st = write_vocab_index(w, vi, compress);
    if (st == EMBT_OK && (v->flags & EMBT_VOCAB_COUNTS)) {
        size_t ci;
        st = entry_add(w, &ci, EMBT_SECTION_VOCAB_COUNTS, false, NULL, 0, (uint32_t)vi);
        if (st == EMBT_OK)
            st = stream_begin(w, compress, 8, true);
        if (st == EMBT_OK)
            st = write_u64s(w, v->counts, v->n);
        if (st == EMBT_OK)
            st = stream_end(w, ci);
    }
done:
    /* sections may be half written: the file cannot be completed */
    if (st != EMBT_OK)
        w->broken = true;
    vocab_reset(v);
    w->open = OPEN_NONE;
    return st;
}

/* ---- tables ----------------------------------------------------------------------------------- */

embt_status embt_writer_table_begin(embt_writer *writer, const embt_table_spec *spec)
{
    EMBT_CHECK_ARG(writer != NULL);
    EMBT_CHECK_ARG(spec != NULL);
    embt_writer *w = writer;
    embt_status st = check_usable(w, OPEN_NONE);
    if (st != EMBT_OK)
        return st;
    if (spec->version != EMBT_TABLE_SPEC_VERSION)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "table spec version %u is not %u",
                           spec->version, EMBT_TABLE_SPEC_VERSION);
    size_t len = 0;
    st = check_name(&len, "table", spec->name);
    if (st != EMBT_OK)
        return st;
    size_t esize = embt_dtype_size(spec->dtype);
    if (esize == 0)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "table '%s' has unknown dtype %d",
                           spec->name, (int)spec->dtype);
    if (spec->flags & ~(EMBT_TABLE_NORMS | EMBT_TABLE_COMPRESS))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "table '%s' has unknown flags 0x%x", spec->name, spec->flags);
    /* FORMAT.md 4.3 and rule 27: rank 1 is a vector with cols = 1 */
    if (spec->rank != 1 && spec->rank != 2)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "table '%s' rank %u is not 1 or 2",
                           spec->name, spec->rank);
    if (spec->rank == 1 && spec->cols != 1)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "table '%s' has rank 1 but %" PRIu64 " cols (must be 1)", spec->name,
                           spec->cols);
    if (spec->cols == 0)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "table '%s' has 0 cols",
                           spec->name);
    if (spec->cols > EMBT__COLS_MAX)
        return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                           "table '%s' cols %" PRIu64 " exceeds the limit of %llu", spec->name,
                           spec->cols, EMBT__COLS_MAX);
    if (spec->rows > EMBT__ROWS_MAX)
        return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                           "table '%s' rows %" PRIu64 " exceeds the limit of %llu", spec->name,
                           spec->rows, EMBT__ROWS_MAX);
    uint64_t elems, bytes;
    if (!embt__mul_u64(&elems, spec->rows, spec->cols) || !embt__mul_u64(&bytes, elems, esize) ||
        elems > SIZE_MAX / 8)
        return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                           "table '%s' of %" PRIu64 " x %" PRIu64 " elements is too large",
                           spec->name, spec->rows, spec->cols);
    size_t vlen = 0;
    if (spec->vocab) {
        st = check_name(&vlen, "vocabulary", spec->vocab);
        if (st != EMBT_OK)
            return st;
    }
    if (find_named(w, EMBT_SECTION_TABLE, spec->name, len))
        return embt__error(EMBT_EEXISTS, EMBT_NO_OFFSET, NULL, 0, "table '%s' already exists",
                           spec->name);

    wtable *t = &w->t;
    bool i8 = spec->dtype == EMBT_DTYPE_I8;
    bool norms = (spec->flags & EMBT_TABLE_NORMS) != 0;
    /* one scale and one norm per row; a rank-1 vector is one "row" (FORMAT.md 4.4, rule 28) */
    size_t n_row_values = spec->rank == 2 ? (size_t)spec->rows : 1;
    char *tied = NULL;
    if (i8)
        t->scales = embt__calloc(n_row_values, sizeof *t->scales);
    if (norms)
        t->norms = embt__calloc(n_row_values, sizeof *t->norms);
    if (norms && !w->check) /* kept for the writer's later tables */
        w->check = embt__malloc((size_t)CONV_ELEMS * sizeof(float));
    if (spec->vocab)
        tied = embt__strndup(spec->vocab, vlen);
    if ((i8 && !t->scales) || (norms && (!t->norms || !w->check)) || (spec->vocab && !tied)) {
        embt__free(tied);
        table_reset(t);
        return embt__error_nomem();
    }
    size_t index;
    st = entry_add(w, &index, EMBT_SECTION_TABLE, true, spec->name, len, EMBT__NONE);
    if (st != EMBT_OK) {
        embt__free(tied);
        table_reset(t);
        return st;
    }
    wentry *e = &w->entries[index];
    e->tied_vocab = tied;
    embt__put32(e->params + EMBT__T_DTYPE, (uint32_t)spec->dtype);
    embt__put32(e->params + EMBT__T_RANK, spec->rank);
    embt__put64(e->params + EMBT__T_ROWS, spec->rows);
    embt__put64(e->params + EMBT__T_COLS, spec->cols);
    t->entry = index;
    t->row_cap = n_row_values;
    t->dtype = spec->dtype;
    t->esize = esize;
    t->rank = spec->rank;
    t->rows = spec->rows;
    t->cols = spec->cols;
    t->flags = spec->flags;
    w->open = OPEN_TABLE;
    st = stream_begin(w, (spec->flags & EMBT_TABLE_COMPRESS) != 0, esize, true);
    if (st != EMBT_OK)
        w->broken = true;
    return st;
}

static float max_abs(const float *x, size_t n)
{
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > m)
            m = a;
    }
    return m;
}

/* x[0 .. n) to n elements of `dtype` at dst (little-endian host: native layout is the file's).
 * I8 divides by `scale` (0: all zeros); integer dtypes round to nearest and saturate. */
static void from_f32(void *dst, const float *x, size_t n, embt_dtype dtype, float scale)
{
    switch (dtype) {
    case EMBT_DTYPE_F32: memcpy(dst, x, n * sizeof *x); break;
    case EMBT_DTYPE_F16: embt_f32_to_f16(dst, x, n); break;
    case EMBT_DTYPE_BF16: embt_f32_to_bf16(dst, x, n); break;
    case EMBT_DTYPE_F64:
        for (size_t i = 0; i < n; i++)
            ((double *)dst)[i] = (double)x[i];
        break;
    case EMBT_DTYPE_I8:
        for (size_t i = 0; i < n; i++) {
            long q = scale > 0.0f ? lrintf(x[i] / scale) : 0;
            ((int8_t *)dst)[i] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
        }
        break;
    case EMBT_DTYPE_U8:
        for (size_t i = 0; i < n; i++)
            ((uint8_t *)dst)[i] = x[i] <= 0.0f ? 0 : x[i] >= 255.0f ? 255 : (uint8_t)lrintf(x[i]);
        break;
    case EMBT_DTYPE_I32:
        for (size_t i = 0; i < n; i++)
            ((int32_t *)dst)[i] = x[i] >= 2147483648.0f    ? INT32_MAX
                                  : x[i] <= -2147483648.0f ? INT32_MIN
                                                           : (int32_t)lrintf(x[i]);
        break;
    case EMBT_DTYPE_I64:
        for (size_t i = 0; i < n; i++)
            ((int64_t *)dst)[i] = x[i] >= 9223372036854775808.0f    ? INT64_MAX
                                  : x[i] <= -9223372036854775808.0f ? INT64_MIN
                                                                    : (int64_t)llrintf(x[i]);
        break;
    }
}

/* Sum of squares, in double, of n stored elements as a reader decodes them (FORMAT.md 4.3:
 * ROW_NORMS holds the L2 norm of each decoded row). */
static double decoded_sumsq(embt_writer *w, const void *stored, size_t n, float scale)
{
    const uint8_t *p = stored;
    double ss = 0.0;
    while (n > 0) {
        size_t k = n < CONV_ELEMS ? n : CONV_ELEMS;
        embt__to_f32(w->check, p, w->t.dtype, k, scale);
        for (size_t i = 0; i < k; i++)
            ss += (double)w->check[i] * (double)w->check[i];
        p += k * w->t.esize;
        n -= k;
    }
    return ss;
}

/* Converts and writes n values of one row (or of a rank-1 vector); adds their decoded squares. */
static embt_status write_values(embt_writer *w, const float *x, size_t n, float scale, double *ss)
{
    while (n > 0) {
        size_t k = n < CONV_ELEMS ? n : CONV_ELEMS;
        from_f32(w->conv, x, k, w->t.dtype, scale);
        if (w->t.norms)
            *ss += decoded_sumsq(w, w->conv, k, scale);
        embt_status st = stream_write(w, w->conv, k * w->t.esize);
        if (st != EMBT_OK)
            return st;
        x += k;
        n -= k;
    }
    return EMBT_OK;
}

/* Checks that n_rows more rows fit and returns their element count. */
static embt_status check_append(const embt_writer *w, size_t n_rows, size_t *elems_out)
{
    const wtable *t = &w->t;
    if (n_rows > t->rows - t->done)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "table '%s' gets %zu more rows after %" PRIu64 " of %" PRIu64,
                           w->entries[t->entry].name, n_rows, t->done, t->rows);
    *elems_out = n_rows * (size_t)t->cols; /* bounded by rows * cols, checked at table_begin */
    return EMBT_OK;
}

embt_status embt_writer_table_append_f32(embt_writer *writer, const float *rows, size_t n_rows)
{
    EMBT_CHECK_ARG(writer != NULL);
    embt_writer *w = writer;
    embt_status st = check_usable(w, OPEN_TABLE);
    if (st != EMBT_OK)
        return st;
    wtable *t = &w->t;
    size_t elems = 0;
    st = check_append(w, n_rows, &elems);
    if (st != EMBT_OK)
        return st;
    EMBT_CHECK_ARG(rows != NULL || elems == 0);
    bool floating = t->dtype == EMBT_DTYPE_F32 || t->dtype == EMBT_DTYPE_F16 ||
                    t->dtype == EMBT_DTYPE_BF16 || t->dtype == EMBT_DTYPE_F64;
    if (!floating) {
        /* checked before anything is written, so a rejected call changes nothing */
        for (size_t i = 0; i < elems; i++)
            if (!isfinite(rows[i]))
                return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                                   "table '%s' value %zu of this call is not finite (dtype %s)",
                                   w->entries[t->entry].name, i, embt_dtype_name(t->dtype));
    }
    if (t->dtype == EMBT_DTYPE_I8 && t->rank == 1) {
        /* one scale for the whole vector: it is known only once every element has arrived */
        if (t->raw_scale_set)
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                               "table '%s' mixes raw and f32 appends of an i8 vector",
                               w->entries[t->entry].name);
        if (!t->pending) {
            t->pending = embt__calloc((size_t)t->rows, sizeof *t->pending);
            if (!t->pending)
                return embt__error_nomem();
        }
        memcpy(t->pending + t->done, rows, elems * sizeof *rows);
        t->done += n_rows;
        return EMBT_OK;
    }
    if (t->dtype == EMBT_DTYPE_F32 && !t->norms) { /* stored as given: no conversion copy */
        st = stream_write(w, rows, elems * sizeof *rows);
    } else if (t->rank == 1) {
        double ss = 0.0;
        st = write_values(w, rows, elems, 0.0f, &ss);
        t->sumsq += ss;
    } else {
        for (size_t r = 0; r < n_rows && st == EMBT_OK; r++) {
            const float *row = rows + r * (size_t)t->cols;
            float scale = 0.0f;
            if (t->dtype == EMBT_DTYPE_I8) {
                scale = max_abs(row, (size_t)t->cols) / 127.0f;
                t->scales[t->done + r] = scale;
            }
            double ss = 0.0;
            st = write_values(w, row, (size_t)t->cols, scale, &ss);
            if (t->norms)
                t->norms[t->done + r] = (float)sqrt(ss);
        }
    }
    if (st != EMBT_OK) {
        w->broken = true;
        return st;
    }
    t->done += n_rows;
    return EMBT_OK;
}

embt_status embt__writer_table_append_f32_crc(embt_writer *writer, const float *rows, size_t n_rows,
                                              uint32_t crc)
{
    EMBT_CHECK_ARG(writer != NULL);
    embt_writer *w = writer;
    const wtable *t = &w->t;
    if (w->open != OPEN_TABLE || w->broken || t->dtype != EMBT_DTYPE_F32 || t->norms ||
        w->s.deflate)
        return embt_writer_table_append_f32(writer, rows, n_rows);
    size_t elems = 0;
    embt_status st = check_append(w, n_rows, &elems);
    if (st != EMBT_OK)
        return st;
    EMBT_CHECK_ARG(rows != NULL || elems == 0);
    st = stored_out_crc(w, (const uint8_t *)rows, elems * sizeof *rows, crc);
    if (st != EMBT_OK) {
        w->broken = true;
        return st;
    }
    w->t.done += n_rows;
    return EMBT_OK;
}

embt_status embt__writer_table_set_rows(embt_writer *writer, uint64_t rows)
{
    EMBT_CHECK_ARG(writer != NULL);
    embt_writer *w = writer;
    embt_status st = check_usable(w, OPEN_TABLE);
    if (st != EMBT_OK)
        return st;
    wtable *t = &w->t;
    EMBT_CHECK_ARG(t->rank == 2 && rows >= t->done);
    const char *name = w->entries[t->entry].name;
    uint64_t elems, bytes;
    if (rows > EMBT__ROWS_MAX)
        return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                           "table '%s' rows %" PRIu64 " exceeds the limit of %llu", name, rows,
                           EMBT__ROWS_MAX);
    if (!embt__mul_u64(&elems, rows, t->cols) || !embt__mul_u64(&bytes, elems, t->esize) ||
        elems > SIZE_MAX / 8)
        return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                           "table '%s' of %" PRIu64 " x %" PRIu64 " elements is too large", name,
                           rows, t->cols);
    if ((t->scales || t->norms) && rows > t->row_cap) {
        size_t cap = t->row_cap * 2 > rows ? t->row_cap * 2 : (size_t)rows;
        float **arrays[2] = {&t->scales, &t->norms};
        for (int i = 0; i < 2; i++) {
            if (!*arrays[i])
                continue;
            float *grown = embt__realloc(*arrays[i], cap * sizeof **arrays[i]);
            if (!grown)
                return embt__error_nomem();
            memset(grown + t->row_cap, 0, (cap - t->row_cap) * sizeof *grown);
            *arrays[i] = grown;
        }
        t->row_cap = cap;
    }
    t->rows = rows;
    embt__put64(w->entries[t->entry].params + EMBT__T_ROWS, rows);
    return EMBT_OK;
}

embt_status embt_writer_table_append_raw(embt_writer *writer, const void *rows, size_t n_rows,
                                         const float *scales)
{
    EMBT_CHECK_ARG(writer != NULL);
    embt_writer *w = writer;
    embt_status st = check_usable(w, OPEN_TABLE);
    if (st != EMBT_OK)
        return st;
    wtable *t = &w->t;
    size_t elems = 0;
    st = check_append(w, n_rows, &elems);
    if (st != EMBT_OK)
        return st;
    EMBT_CHECK_ARG(rows != NULL || elems == 0);
    const char *name = w->entries[t->entry].name;
    bool i8 = t->dtype == EMBT_DTYPE_I8;
    if (i8 && n_rows > 0) {
        if (!scales)
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                               "table '%s' is i8 and needs row scales", name);
        /* rank 1: one scale for the vector, so every call passes the same scales[0] */
        size_t n_scales = t->rank == 2 ? n_rows : 1;
        for (size_t i = 0; i < n_scales; i++)
            if (!isfinite(scales[i]))
                return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                                   "table '%s' scale %zu of this call is not finite", name, i);
        if (t->rank == 1) {
            if (t->pending)
                return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                                   "table '%s' mixes raw and f32 appends of an i8 vector", name);
            if (t->raw_scale_set && memcmp(&t->scales[0], &scales[0], sizeof(float)) != 0)
                return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                                   "table '%s' vector scale %g differs from the earlier %g", name,
                                   (double)scales[0], (double)t->scales[0]);
        }
    }
    const uint8_t *p = rows;
    size_t row_bytes = (size_t)t->cols * t->esize;
    if (t->rank == 1) {
        float scale = i8 && n_rows > 0 ? scales[0] : t->scales ? t->scales[0] : 0.0f;
        if (i8 && n_rows > 0) {
            t->scales[0] = scale;
            t->raw_scale_set = true;
        }
        if (t->norms)
            t->sumsq += decoded_sumsq(w, p, elems, scale);
        st = stream_write(w, p, elems * t->esize);
    } else {
        for (size_t r = 0; r < n_rows && st == EMBT_OK; r++) {
            float scale = i8 ? scales[r] : 0.0f;
            if (i8)
                t->scales[t->done + r] = scale;
            if (t->norms)
                t->norms[t->done + r] = (float)sqrt(decoded_sumsq(w, p, (size_t)t->cols, scale));
            st = stream_write(w, p, row_bytes);
            p += row_bytes;
        }
    }
    if (st != EMBT_OK) {
        w->broken = true;
        return st;
    }
    t->done += n_rows;
    return EMBT_OK;
}

/* A ROW_SCALES or ROW_NORMS section: n f32 values after the table (shuffled with e = 4). */
static embt_status write_row_floats(embt_writer *w, uint16_t type, const float *vals, size_t n)
{
    size_t index;
    bool compress = (w->t.flags & EMBT_TABLE_COMPRESS) != 0;
    embt_status st =
        entry_add(w, &index, type, type == EMBT_SECTION_ROW_SCALES, NULL, 0, (uint32_t)w->t.entry);
    if (st == EMBT_OK)
        st = write_section(w, index, compress, 4, vals, n * sizeof *vals);
    return st;
}

embt_status embt_writer_table_end(embt_writer *writer)
{
    EMBT_CHECK_ARG(writer != NULL);
    embt_writer *w = writer;
    embt_status st = check_usable(w, OPEN_TABLE);
    if (st != EMBT_OK)
        return st;
    wtable *t = &w->t;
    if (t->done != t->rows)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "table '%s' ends after %" PRIu64 " of %" PRIu64 " rows",
                           w->entries[t->entry].name, t->done, t->rows);
    if (t->pending) {
        float scale = max_abs(t->pending, (size_t)t->rows) / 127.0f;
        t->scales[0] = scale;
        st = write_values(w, t->pending, (size_t)t->rows, scale, &t->sumsq);
    }
    if (st == EMBT_OK && t->norms && t->rank == 1)
        t->norms[0] = (float)sqrt(t->sumsq);
    if (st == EMBT_OK)
        st = stream_end(w, t->entry);
    size_t n_row_values = t->rank == 2 ? (size_t)t->rows : 1;
    if (st == EMBT_OK && t->scales)
        st = write_row_floats(w, EMBT_SECTION_ROW_SCALES, t->scales, n_row_values);
    if (st == EMBT_OK && t->norms)
        st = write_row_floats(w, EMBT_SECTION_ROW_NORMS, t->norms, n_row_values);
    if (st != EMBT_OK)
        w->broken = true;
    table_reset(t);
    w->open = OPEN_NONE;
    return st;
}

embt_status embt_writer_add_table_f32(embt_writer *writer, const embt_table_spec *spec,
                                      const float *data)
{
    EMBT_CHECK_ARG(spec != NULL);
    if (spec->rows > SIZE_MAX)
        return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                           "table rows %" PRIu64 " exceed this platform's size_t", spec->rows);
    embt_status st = embt_writer_table_begin(writer, spec);
    if (st != EMBT_OK)
        return st;
    st = embt_writer_table_append_f32(writer, data, (size_t)spec->rows);
    if (st == EMBT_OK)
        st = embt_writer_table_end(writer);
    /* the table's section has begun and cannot be taken back: no later call could succeed */
    if (st != EMBT_OK)
        writer->broken = true;
    return st;
}

/* ---- metadata --------------------------------------------------------------------------------- */

embt_status embt_writer_set_metadata(embt_writer *writer, const char *yaml, size_t len)
{
    EMBT_CHECK_ARG(writer != NULL);
    EMBT_CHECK_ARG(yaml != NULL || len == 0);
    embt_writer *w = writer;
    embt_status st = check_usable(w, w->open);
    if (st != EMBT_OK)
        return st;
    if (len > EMBT__METADATA_MAX)
        return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                           "metadata of %zu bytes exceeds the limit of %u", len,
                           EMBT__METADATA_MAX);
    if (w->copied_metadata)
        return embt__error(EMBT_EEXISTS, EMBT_NO_OFFSET, NULL, 0,
                           "metadata was already copied from the source file");
    /* the same parser embt_file_verify() applies for rule 37, so what is written verifies */
    embt_meta *meta = NULL;
    st = embt_meta_parse(&meta, yaml ? yaml : "", len);
    if (st != EMBT_OK)
        return st;
    embt_meta_free(meta);
    char *copy = embt__strndup(yaml ? yaml : "", len);
    if (!copy)
        return embt__error_nomem();
    embt__free(w->metadata);
    w->metadata = copy;
    w->metadata_len = len;
    w->has_metadata = true;
    return EMBT_OK;
}

/* ---- verbatim copies -------------------------------------------------------------------------- */

embt_status embt_writer_copy_sections(embt_writer *writer, const embt_file *src, unsigned flags)
{
    EMBT_CHECK_ARG(writer != NULL);
    EMBT_CHECK_ARG(src != NULL);
    embt_writer *w = writer;
    embt_status st = check_usable(w, OPEN_NONE);
    if (st != EMBT_OK)
        return st;
    if (flags & ~EMBT_COPY_SKIP_METADATA)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "unknown copy flags 0x%x", flags);
    if (w->n_entries != 0)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "sections can be copied only before any other section is written");
    bool skip_meta = (flags & EMBT_COPY_SKIP_METADATA) != 0;
    uint64_t size;
    const uint8_t *bytes = embt__file_bytes(src, &size);
    size_t count = embt_file_section_count(src);
    uint32_t *renum = embt__calloc(count ? count : 1, sizeof *renum);
    if (!renum)
        return embt__error_nomem();

    /* first pass: new indices, and every refusal before anything is written */
    uint32_t next = 0;
    for (size_t i = 0; i < count; i++) {
        embt_section_info info;
        st = embt_file_section(&info, src, i);
        if (st != EMBT_OK)
            goto done;
        bool meta = info.type == EMBT_SECTION_METADATA;
        if (meta && !skip_meta && w->has_metadata) {
            st = embt__error(EMBT_EEXISTS, EMBT_NO_OFFSET, NULL, 0,
                             "metadata is set on the writer and present in the source file");
            goto done;
        }
        renum[i] = meta && skip_meta ? EMBT__NONE : next++;
    }
    for (size_t i = 0; i < count; i++) {
        embt_section_info info;
        st = embt_file_section(&info, src, i);
        if (st != EMBT_OK)
            goto done;
        if (renum[i] != EMBT__NONE && info.link != EMBT__NONE &&
            (info.link >= count || renum[info.link] == EMBT__NONE)) {
            st = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                             "section %zu links to skipped section %" PRIu32, i, info.link);
            goto done;
        }
    }

    for (size_t i = 0; i < count; i++) {
        embt_section_info info;
        st = embt_file_section(&info, src, i);
        if (st != EMBT_OK)
            goto done;
        if (renum[i] == EMBT__NONE)
            continue;
        uint64_t end;
        if (!embt__add_u64(&end, info.offset, info.stored_length) || end > size ||
            info.stored_length > SIZE_MAX) {
            st = embt__error(EMBT_ECORRUPT, info.offset, NULL, 15,
                             "section %zu ends beyond the source file", i);
            goto done;
        }
        size_t index;
        st = entry_add(w, &index, info.type, false, info.name, info.name_length,
                       info.link == EMBT__NONE ? EMBT__NONE : renum[info.link]);
        if (st != EMBT_OK)
            goto done;
        wentry *e = &w->entries[index];
        e->flags = info.flags;
        memcpy(e->params, info.params, EMBT__E_PARAMS_LEN);
        st = write_section(w, index, false, 0, bytes + info.offset, (size_t)info.stored_length);
        if (st != EMBT_OK)
            goto done;
        /* the bytes were checksummed on the way: a damaged source is not propagated */
        if (e->crc != info.crc32) {
            st =
                embt__error(EMBT_ECORRUPT, info.offset, NULL, 34,
                            "section %zu crc 0x%08" PRIx32 " does not match its entry 0x%08" PRIx32,
                            i, e->crc, info.crc32);
            goto done;
        }
        e->codec = info.codec;
        e->filter = info.filter;
        e->decoded = info.decoded_length;
        if (info.type == EMBT_SECTION_METADATA)
            w->copied_metadata = true;
    }
done:
    /* a refusal of the first passes leaves the writer as it was; a later failure leaves it half
     * copied */
    if (st != EMBT_OK && w->n_entries != 0)
        w->broken = true;
    embt__free(renum);
    return st;
}

/* ---- commit ----------------------------------------------------------------------------------- */

/* FORMAT.md 4.3: a tied table links to its vocabulary, whose size must equal the table's rows. */
static embt_status resolve_tied_tables(embt_writer *w)
{
    for (size_t i = 0; i < w->n_entries; i++) {
        wentry *e = &w->entries[i];
        if (!e->tied_vocab)
            continue;
        const wentry *v = find_named(w, EMBT_SECTION_VOCAB, e->tied_vocab, strlen(e->tied_vocab));
        if (!v)
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                               "table '%s' names unknown vocabulary '%s'", e->name, e->tied_vocab);
        uint64_t rows = embt__le64(e->params + EMBT__T_ROWS);
        uint64_t n_tokens = embt__le64(v->params + EMBT__V_N_TOKENS);
        if (rows != n_tokens)
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                               "table '%s' has %" PRIu64 " rows but vocabulary '%s' has %" PRIu64
                               " tokens",
                               e->name, rows, e->tied_vocab, n_tokens);
        e->link = (uint32_t)(v - w->entries);
    }
    return EMBT_OK;
}

/* FORMAT.md 3.2 and 3.3: the 16-byte head, 96-byte entries, then the names in entry order. */
static embt_status build_directory(embt_writer *w, uint8_t **dir_out, size_t *len_out)
{
    uint64_t names = 0;
    for (size_t i = 0; i < w->n_entries; i++)
        names += w->entries[i].name_len;
    uint64_t len = EMBT__DIR_HEAD + (uint64_t)w->n_entries * EMBT__ENTRY_SIZE + names;
    if (len > EMBT__DIR_LENGTH_MAX)
        return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                           "directory of %" PRIu64 " bytes exceeds the limit of %u", len,
                           EMBT__DIR_LENGTH_MAX);
    uint8_t *dir = embt__calloc(1, (size_t)len);
    if (!dir)
        return embt__error_nomem();
    embt__put32(dir, (uint32_t)w->n_entries);
    embt__put32(dir + 4, EMBT__ENTRY_SIZE);
    embt__put32(dir + 8, (uint32_t)names);
    uint8_t *pool = dir + EMBT__DIR_HEAD + w->n_entries * EMBT__ENTRY_SIZE;
    uint32_t name_offset = 0;
    for (size_t i = 0; i < w->n_entries; i++) {
        const wentry *e = &w->entries[i];
        uint8_t *p = dir + EMBT__DIR_HEAD + i * EMBT__ENTRY_SIZE;
        embt__put16(p + EMBT__E_TYPE, e->type);
        embt__put16(p + EMBT__E_FLAGS, e->flags);
        p[EMBT__E_CODEC] = e->codec;
        p[EMBT__E_FILTER] = e->filter;
        embt__put64(p + EMBT__E_OFFSET, e->offset);
        embt__put64(p + EMBT__E_STORED, e->stored);
        embt__put64(p + EMBT__E_DECODED, e->decoded);
        embt__put32(p + EMBT__E_CRC, e->crc);
        embt__put32(p + EMBT__E_LINK, e->link);
        embt__put32(p + EMBT__E_NAME_OFFSET, name_offset);
        embt__put32(p + EMBT__E_NAME_LENGTH, (uint32_t)e->name_len);
        memcpy(p + EMBT__E_PARAMS, e->params, EMBT__E_PARAMS_LEN);
        memcpy(pool + name_offset, e->name, e->name_len);
        name_offset += (uint32_t)e->name_len;
    }
    *dir_out = dir;
    *len_out = (size_t)len;
    return EMBT_OK;
}

static embt_status pwrite_all(int fd, const uint8_t *p, size_t n, off_t at)
{
    while (n > 0) {
        ssize_t k = embt__pwrite(fd, p, n, at);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return embt__error_sys(errno, "write of the header failed");
        }
        p += k;
        n -= (size_t)k;
        at += k;
    }
    return EMBT_OK;
}

embt_status embt_writer_commit(embt_writer *writer)
{
    EMBT_CHECK_ARG(writer != NULL);
    embt_writer *w = writer;
    embt_status st = check_usable(w, OPEN_NONE);
    uint8_t *dir = NULL;
    size_t dir_len = 0;
    w->finished = true; /* success or failure, only free may follow */
    if (st != EMBT_OK)
        goto done;
    st = resolve_tied_tables(w);
    if (st != EMBT_OK)
        goto done;
    if (w->has_metadata) { /* the metadata goes last, after every other section */
        size_t index;
        st = entry_add(w, &index, EMBT_SECTION_METADATA, false, NULL, 0, EMBT__NONE);
        if (st == EMBT_OK)
            st = write_section(w, index, false, 0, w->metadata, w->metadata_len);
        if (st != EMBT_OK)
            goto done;
    }
    st = build_directory(w, &dir, &dir_len);
    if (st != EMBT_OK)
        goto done;
    st = out_pad(w);
    if (st != EMBT_OK)
        goto done;
    uint64_t dir_offset = w->pos;
    st = out_bytes(w, dir, dir_len);
    if (st == EMBT_OK)
        st = out_flush(w);
    if (st != EMBT_OK)
        goto done;

    /* FORMAT.md 3.1 */
    uint8_t header[EMBT__HEADER_SIZE] = {0};
    memcpy(header, EMBT__MAGIC, EMBT__MAGIC_LEN);
    embt__put16(header + EMBT__H_BYTE_ORDER, EMBT__BYTE_ORDER_MARK);
    embt__put16(header + EMBT__H_MAJOR, EMBT_FORMAT_VERSION_MAJOR);
    embt__put16(header + EMBT__H_MINOR, EMBT_FORMAT_VERSION_MINOR);
    embt__put32(header + EMBT__H_HEADER_SIZE, EMBT__HEADER_SIZE);
    embt__put32(header + EMBT__H_ALIGNMENT, w->alignment);
    embt__put64(header + EMBT__H_FILE_LENGTH, w->pos);
    embt__put64(header + EMBT__H_DIR_OFFSET, dir_offset);
    embt__put64(header + EMBT__H_DIR_LENGTH, dir_len);
    embt__put32(header + EMBT__H_DIR_CRC, embt__crc32(0, dir, dir_len));
    embt__put32(header + EMBT__H_HEADER_CRC, embt__crc32(0, header, EMBT__H_HEADER_CRC));
    st = pwrite_all(w->out.fd, header, sizeof header, 0);
    if (st != EMBT_OK)
        goto done;
    st = embt__tmpfile_commit(&w->out);
done:
    if (st != EMBT_OK && w->out.tmp_path) /* the destination stays untouched */
        embt__tmpfile_discard(&w->out);
    embt__free(dir);
    return st;
}
