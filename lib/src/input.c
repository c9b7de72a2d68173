/* input.c: the whole input of a conversion in memory: a read-only mapping of the file, or the
 * inflated bytes of a gzip file (every member, bounded by spec/FORMAT.md 10). I/O only: parsing
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

/* Inflates every gzip member of `gz` (n bytes) into in->inflated. */
static embt_status inflate_gzip(embt__input *in, const uint8_t *gz, size_t n)
{
    embt_status rc = EMBT_OK;
    z_stream zs;
    bool zs_live = false;
    uint8_t *buf = NULL;
    size_t cap, used = 0;

    /* ISIZE (the last member's length mod 2^32) is a good first guess for one-member files, but it
     * comes from the file: never trust it beyond what deflate can expand n bytes to (1032:1) */
    uint64_t guess = n >= 18 ? embt__le32(gz + n - 4) : 0;
    uint64_t most = (uint64_t)n * 1032 + 4096;
    if (guess > most)
        guess = most;
    cap = guess > n ? (size_t)guess + 1 : n * 4 + 64;
    if (cap < 4096)
        cap = 4096;
    buf = embt__malloc(cap);
    if (!buf) {
        rc = embt__error_nomem();
        goto done;
    }
    memset(&zs, 0, sizeof zs);
    zs.zalloc = zalloc_hook;
    zs.zfree = zfree_hook;
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
        size_t in_chunk = n - in_pos > INFLATE_IN_CHUNK ? INFLATE_IN_CHUNK : n - in_pos;
        size_t out_chunk = cap - used > INFLATE_OUT_CHUNK ? INFLATE_OUT_CHUNK : cap - used;
        zs.next_in = (Bytef *)(uintptr_t)(gz + in_pos);
        zs.avail_in = (uInt)in_chunk;
        zs.next_out = buf + used;
        zs.avail_out = (uInt)out_chunk;
        int zrc = inflate(&zs, Z_NO_FLUSH);
        size_t before = in_pos;
        in_pos += in_chunk - zs.avail_in;
        drop_range(gz, before, in_pos); /* the compressed bytes are read once */
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
    in->inflated = buf;
    in->data = buf;
    in->size = used;
    in->gzipped = true;
    buf = NULL;
done:
    if (zs_live)
        inflateEnd(&zs);
    embt__free(buf);
    return rc;
}

embt_status embt__input_load(embt__input *in, const char *path)
{
    EMBT_CHECK_ARG(in != NULL);
    EMBT_CHECK_ARG(path != NULL);
    embt_status rc = EMBT_OK;
    struct stat st;
    void *map = NULL;
    size_t map_size = 0;

    memset(in, 0, sizeof *in);
    in->path = path;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
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
    in->droppable = true;
    map = NULL;
done:
    if (map)
        munmap(map, map_size);
    if (fd >= 0)
        close(fd);
    if (rc != EMBT_OK)
        embt__input_release(in);
    return rc;
}

void embt__input_release(embt__input *in)
{
    if (!in)
        return;
    if (in->map)
        munmap(in->map, in->map_size);
    embt__free(in->inflated);
    const char *path = in->path;
    memset(in, 0, sizeof *in);
    in->path = path;
}
