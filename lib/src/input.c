/* input.c: the input of a conversion: a read-only mapping of the file, or the inflated bytes of a
 * gzip file (every member, bounded by spec/FORMAT.md 10), either whole in memory or, for the text
 * importer, read in order through embt__input_read so that memory stays bounded. I/O only: parsing
 * belongs to the importers. */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "convert.h"

#define INFLATE_BYTES_MAX (UINT64_C(1) << 40) /* spec/FORMAT.md 10: largest file */
#define INFLATE_IN_CHUNK (1u << 20)           /* avail_in and avail_out are uInt */
#define INFLATE_OUT_CHUNK (1u << 30)
#define PREFIX_BYTES_MIN (64u << 10)        /* inflated for detection before a gzip input streams */
#define PREFIX_BYTES_MAX ((size_t)33 << 20) /* two of the text importer's longest lines */

/* A gzip stream being inflated from the mapping of the compressed file. */
struct embt__inflater {
    z_stream zs;
    const uint8_t *gz; /* the compressed bytes (the input's mapping) */
    size_t n;
    size_t in_pos;  /* compressed bytes consumed */
    uint64_t total; /* inflated bytes produced */
    bool done;      /* the last member ended exactly at the end of the file */
};

/* Releases the pages of [from, to) of a mapping (whole pages inside the range only). */
static void drop_range(const uint8_t *data, size_t from, size_t to)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)(data + from) + page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t b = (uintptr_t)(data + to) & ~(uintptr_t)(page - 1);
    if (b > a)
        (void)madvise((void *)a, b - a, MADV_DONTNEED);
}

void embt__input_drop(const embt__input *in, size_t from, size_t to)
{
    if (in->droppable && from < to && to <= in->size)
        drop_range(in->data, from, to);
}

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

static embt_status inflater_new(struct embt__inflater **out, const uint8_t *gz, size_t n)
{
    struct embt__inflater *zi = embt__calloc(1, sizeof *zi);
    if (!zi)
        return embt__error_nomem();
    zi->zs.zalloc = zalloc_hook;
    zi->zs.zfree = zfree_hook;
    if (inflateInit2(&zi->zs, 16 + MAX_WBITS) != Z_OK) {
        embt__free(zi);
        return embt__error_nomem();
    }
    zi->gz = gz;
    zi->n = n;
    *out = zi;
    return EMBT_OK;
}

static void inflater_free(struct embt__inflater *zi)
{
    if (!zi)
        return;
    inflateEnd(&zi->zs);
    embt__free(zi);
}

/* Inflates up to cap bytes into dst (fewer only at the end of the stream); *n_out gets the count.
 * Every member is read; bytes after the last one, a damaged or truncated stream are EMBT_EFORMAT
 * with the compressed offset, more than INFLATE_BYTES_MAX in all is EMBT_ELIMIT. */
static embt_status inflater_read(struct embt__inflater *zi, uint8_t *dst, size_t cap, size_t *n_out)
{
    z_stream *zs = &zi->zs;
    size_t used = 0;
    *n_out = 0;
    while (used < cap && !zi->done) {
        size_t in_chunk =
            zi->n - zi->in_pos > INFLATE_IN_CHUNK ? INFLATE_IN_CHUNK : zi->n - zi->in_pos;
        size_t out_chunk = cap - used > INFLATE_OUT_CHUNK ? INFLATE_OUT_CHUNK : cap - used;
        zs->next_in = (Bytef *)(uintptr_t)(zi->gz + zi->in_pos);
        zs->avail_in = (uInt)in_chunk;
        zs->next_out = dst + used;
        zs->avail_out = (uInt)out_chunk;
        int zrc = inflate(zs, Z_NO_FLUSH);
        size_t before = zi->in_pos;
        zi->in_pos += in_chunk - zs->avail_in;
        drop_range(zi->gz, before, zi->in_pos); /* the compressed bytes are read once */
        used += out_chunk - zs->avail_out;
        zi->total += out_chunk - zs->avail_out;
        if (zi->total > INFLATE_BYTES_MAX)
            return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                               "gzip input inflates beyond %llu bytes",
                               (unsigned long long)INFLATE_BYTES_MAX);
        *n_out = used;
        if (zrc == Z_STREAM_END) {
            if (zi->in_pos == zi->n) {
                zi->done = true;
                break;
            }
            if (zi->n - zi->in_pos >= 2 && zi->gz[zi->in_pos] == 0x1f &&
                zi->gz[zi->in_pos + 1] == 0x8b) {
                inflateReset(zs); /* next member */
                continue;
            }
            return embt__error(EMBT_EFORMAT, zi->in_pos, NULL, 0,
                               "%zu bytes after the end of the gzip stream", zi->n - zi->in_pos);
        }
        if (zrc == Z_MEM_ERROR)
            return embt__error_nomem();
        if (zrc != Z_OK && zrc != Z_BUF_ERROR)
            return embt__error(EMBT_EFORMAT, zi->in_pos, NULL, 0,
                               "corrupt gzip data at byte %zu: %s", zi->in_pos,
                               zs->msg ? zs->msg : "inflate error");
        if (zi->in_pos == zi->n && zs->avail_out != 0)
            return embt__error(EMBT_EFORMAT, zi->in_pos, NULL, 0,
                               "gzip stream truncated at byte %zu", zi->n);
    }
    return EMBT_OK;
}

/* Inflates the rest of a gzip input after the `used` bytes already in in->inflated (capacity cap),
 * making the input whole. */
static embt_status inflate_rest(embt__input *in, size_t used, size_t cap)
{
    struct embt__inflater *zi = in->zin;
    uint8_t *buf = in->inflated;
    /* ISIZE (the last member's length mod 2^32) is a good first guess for one-member files, but it
     * comes from the file: never trust it beyond what deflate can expand n bytes to (1032:1) */
    size_t n = zi->n;
    uint64_t guess = n >= 18 ? embt__le32(zi->gz + n - 4) : 0;
    uint64_t most = (uint64_t)n * 1032 + 4096;
    if (guess > most)
        guess = most;
    size_t want = guess > n ? (size_t)guess + 1 : n * 4 + 64;
    if (want < 4096)
        want = 4096;
    while (!zi->done) {
        if (used == cap || cap < want) {
            size_t grown_cap = cap < want ? want : cap * 2;
            if ((uint64_t)grown_cap > INFLATE_BYTES_MAX)
                return embt__error(EMBT_ELIMIT, EMBT_NO_OFFSET, NULL, 0,
                                   "gzip input inflates beyond %llu bytes",
                                   (unsigned long long)INFLATE_BYTES_MAX);
            uint8_t *grown = embt__realloc(buf, grown_cap);
            if (!grown)
                return embt__error_nomem();
            buf = grown;
            in->inflated = buf;
            cap = grown_cap;
        }
        size_t got = 0;
        embt_status rc = inflater_read(zi, buf + used, cap - used, &got);
        used += got;
        if (rc != EMBT_OK)
            return rc;
    }
    inflater_free(zi);
    in->zin = NULL;
    in->data = buf;
    in->size = used;
    in->streaming = false;
    if (in->map) { /* only the inflated copy is kept */
        munmap(in->map, in->map_size);
        in->map = NULL;
        in->map_size = 0;
    }
    return EMBT_OK;
}

/* Inflates a prefix of the gzip input: at least PREFIX_BYTES_MIN and two line feeds when there are,
 * so that format detection and the text importer's header see whole lines. */
static embt_status inflate_prefix(embt__input *in)
{
    size_t cap = PREFIX_BYTES_MIN, used = 0, newlines = 0;
    for (;;) {
        uint8_t *grown = embt__realloc(in->inflated, cap);
        if (!grown)
            return embt__error_nomem();
        in->inflated = grown;
        size_t got = 0;
        embt_status rc = inflater_read(in->zin, grown + used, cap - used, &got);
        if (rc != EMBT_OK)
            return rc;
        for (size_t i = used; i < used + got && newlines < 2; i++)
            newlines += grown[i] == '\n';
        used += got;
        in->data = grown;
        in->size = used;
        if (in->zin->done || newlines >= 2 || cap >= PREFIX_BYTES_MAX)
            break;
        cap *= 2;
    }
    if (in->zin->done) /* it all fit: a whole input, as embt__input_load makes */
        return inflate_rest(in, used, cap);
    in->streaming = true;
    return EMBT_OK;
}

embt_status embt__input_open(embt__input *in, const char *path)
{
    EMBT_CHECK_ARG(in != NULL);
    EMBT_CHECK_ARG(path != NULL);
    embt_status rc = EMBT_OK;
    struct stat st;
    void *map = NULL;
    size_t map_size = 0;

    memset(in, 0, sizeof *in);
    in->path = path;
    int fd =
        open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block: refused below */
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
        goto done; /* empty: the importer reports it */
    map = mmap(NULL, map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        map = NULL;
        rc = embt__error_sys(errno, "cannot map input");
        goto done;
    }
    /* read once, front to back: ask for read-ahead of the whole file early */
    (void)madvise(map, map_size, MADV_SEQUENTIAL);
    (void)madvise(map, map_size, MADV_WILLNEED);
    in->map = map;
    in->map_size = map_size;
    map = NULL;
    const uint8_t *bytes = in->map;
    if (map_size >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) {
        in->gzipped = true;
        rc = inflater_new(&in->zin, bytes, map_size);
        if (rc == EMBT_OK)
            rc = inflate_prefix(in);
        goto done;
    }
    in->data = bytes;
    in->size = map_size;
    in->droppable = true;
done:
    if (map)
        munmap(map, map_size);
    if (fd >= 0)
        close(fd);
    if (rc != EMBT_OK)
        embt__input_release(in);
    return rc;
}

embt_status embt__input_complete(embt__input *in)
{
    EMBT_CHECK_ARG(in != NULL);
    if (!in->streaming)
        return EMBT_OK;
    EMBT_CHECK_ARG(in->served == 0);
    embt_status rc = inflate_rest(in, in->size, in->size);
    if (rc != EMBT_OK)
        embt__input_release(in);
    return rc;
}

embt_status embt__input_load(embt__input *in, const char *path)
{
    embt_status rc = embt__input_open(in, path);
    if (rc == EMBT_OK)
        rc = embt__input_complete(in);
    return rc;
}

embt_status embt__input_read(embt__input *in, uint8_t *dst, size_t cap, size_t *n_out)
{
    EMBT_CHECK_ARG(in != NULL && in->streaming);
    size_t k = in->size - in->served; /* the prefix first */
    if (k > cap)
        k = cap;
    if (k > 0) /* data is NULL once the prefix is served */
        memcpy(dst, in->data + in->served, k);
    in->served += k;
    if (in->served == in->size && in->inflated) { /* the prefix is not needed any more */
        embt__free(in->inflated);
        in->inflated = NULL;
        in->data = NULL;
        in->size = in->served = 0;
    }
    size_t got = 0;
    embt_status rc = k < cap ? inflater_read(in->zin, dst + k, cap - k, &got) : EMBT_OK;
    *n_out = k + got;
    return rc;
}

uint64_t embt__input_consumed(const embt__input *in)
{
    return in->zin ? in->zin->in_pos : in->size;
}

void embt__input_release(embt__input *in)
{
    if (!in)
        return;
    if (in->map)
        munmap(in->map, in->map_size);
    inflater_free(in->zin);
    embt__free(in->inflated);
    const char *path = in->path;
    memset(in, 0, sizeof *in);
    in->path = path;
}
