/* export_npz.c: every table of an .embt file as a NumPy .npz: one NAME.npy member per table in
 * file order, stored with the zip64 local extra numpy writes (or deflated with data descriptors when
 * compression is asked), then the central directory and end records, zip64 ones when needed: the
 * bytes CPython 3.11's zipfile writes for np.savez. */
#include <zlib.h>

#include "npy.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_DESCRIPTOR 0x08074b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u
#define ZIP64_VERSION 45u
#define DEFAULT_VERSION 20u
#define ZIP64_LIMIT UINT64_C(0x7fffffff) /* Python's zipfile switches to zip64 above 2^31 - 1 */
#define FILECOUNT_LIMIT 0xffffu
#define DOS_DATE 0x21u            /* 1980-01-01: fixed, so the output is deterministic */
#define EXTERNAL_ATTR 0x01800000u /* 0o600 << 16, as zipfile sets */
#define FLAG_DESCRIPTOR 0x0008u
#define FLAG_UTF8 0x0800u
#define ZBUF_BYTES ((size_t)1 << 16)

typedef struct entry {
    const char *name; /* the table's name; the member is name + ".npy" */
    size_t name_len;
    uint16_t flags, method;
    unsigned version; /* version needed to extract, as the local header says */
    uint32_t crc;
    uint64_t csize, usize, offset;
} entry;

typedef struct zip_out {
    embt__npy_sink sink;
    void *payload;
    uint64_t pos; /* bytes written so far */
} zip_out;

static embt_status put(zip_out *z, const void *data, size_t n)
{
    z->pos += n;
    return n ? z->sink(data, n, z->payload) : EMBT_OK;
}

/* The member body: counted and checksummed, and deflated when zs is set. */
typedef struct body {
    zip_out *z;
    z_stream *zs;
    uint8_t *zbuf;
    uint32_t crc;
    uint64_t usize, csize;
} body;

static embt_status body_deflate(body *b, const void *data, size_t n, int flush)
{
    b->zs->next_in = (Bytef *)(uintptr_t)data;
    b->zs->avail_in = (uInt)n;
    for (;;) {
        b->zs->next_out = b->zbuf;
        b->zs->avail_out = (uInt)ZBUF_BYTES;
        int zrc = deflate(b->zs, flush);
        if (zrc == Z_STREAM_ERROR)
            return embt__error(EMBT_ERROR, EMBT_NO_OFFSET, NULL, 0, "deflate stream error");
        size_t got = ZBUF_BYTES - b->zs->avail_out;
        b->csize += got;
        embt_status rc = put(b->z, b->zbuf, got);
        if (rc != EMBT_OK)
            return rc;
        if (flush == Z_FINISH ? zrc == Z_STREAM_END : b->zs->avail_out != 0)
            return EMBT_OK;
    }
}

static embt_status body_sink(const void *data, size_t n, void *payload)
{
    body *b = payload;
    b->crc = embt__crc32(b->crc, data, n);
    b->usize += n;
    if (b->zs)
        return body_deflate(b, data, n, Z_NO_FLUSH);
    b->csize += n;
    return put(b->z, data, n);
}

static embt_status crc_sink(const void *data, size_t n, void *payload)
{
    body *b = payload;
    b->crc = embt__crc32(b->crc, data, n);
    b->usize += n;
    return EMBT_OK;
}

static embt_status put_name(zip_out *z, const entry *e)
{
    embt_status rc = put(z, e->name, e->name_len);
    return rc != EMBT_OK ? rc : put(z, ".npy", 4);
}

static embt_status write_member(zip_out *z, entry *e, const embt_table *table, embt_dtype dtype,
                                bool compress)
{
    embt_status rc;
    uint8_t h[64];
    z_stream zs;
    bool zs_live = false;
    uint8_t *zbuf = NULL;
    body b = {z, NULL, NULL, 0, 0, 0};

    e->offset = z->pos;
    e->method = compress ? 8 : 0;
    e->flags = compress ? FLAG_DESCRIPTOR : 0;
    for (size_t i = 0; i < e->name_len; i++)
        if ((uint8_t)e->name[i] >= 0x80)
            e->flags |= FLAG_UTF8;
    if (!compress) {
        /* a first pass for the CRC, so the local header is final (numpy seeks back instead) */
        rc = embt__npy_emit(table, dtype, crc_sink, &b, NULL);
        if (rc != EMBT_OK)
            goto done;
        e->crc = b.crc;
        e->usize = e->csize = b.usize;
    } else {
        e->crc = 0;
        e->usize = e->csize = 0;
    }
    /* as zipfile's FileHeader(zip64=True): the zip64 extra always, 32-bit sizes saturated and
     * version 4.5 only past its limit */
    bool big = e->usize > ZIP64_LIMIT || e->csize > ZIP64_LIMIT;
    e->version = big ? ZIP64_VERSION : DEFAULT_VERSION;
    embt__put32(h, SIG_LOCAL);
    h[4] = (uint8_t)e->version;
    h[5] = 0;
    embt__put16(h + 6, e->flags);
    embt__put16(h + 8, e->method);
    embt__put16(h + 10, 0);
    embt__put16(h + 12, DOS_DATE);
    embt__put32(h + 14, e->crc);
    embt__put32(h + 18, big ? 0xffffffffu : (uint32_t)e->csize);
    embt__put32(h + 22, big ? 0xffffffffu : (uint32_t)e->usize);
    embt__put16(h + 26, (uint16_t)(e->name_len + 4));
    embt__put16(h + 28, 20);
    embt__put16(h + 30, 1); /* zip64 extra: uncompressed, then compressed size */
    embt__put16(h + 32, 16);
    embt__put64(h + 34, e->usize);
    embt__put64(h + 42, e->csize);
    rc = put(z, h, 30);
    if (rc == EMBT_OK)
        rc = put_name(z, e);
    if (rc == EMBT_OK)
        rc = put(z, h + 30, 20);
    if (rc != EMBT_OK)
        goto done;

    b.crc = 0;
    b.usize = 0;
    if (compress) {
        memset(&zs, 0, sizeof zs);
        zs.zalloc = embt__zalloc;
        zs.zfree = embt__zfree;
        zbuf = embt__malloc(ZBUF_BYTES);
        if (!zbuf || deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
                                  Z_DEFAULT_STRATEGY) != Z_OK) {
            rc = embt__error_nomem();
            goto done;
        }
        zs_live = true;
        b.zs = &zs;
        b.zbuf = zbuf;
    }
    rc = embt__npy_emit(table, dtype, body_sink, &b, NULL);
    if (rc == EMBT_OK && compress)
        rc = body_deflate(&b, NULL, 0, Z_FINISH);
    if (rc != EMBT_OK)
        goto done;
    if (!compress && (b.crc != e->crc || b.usize != e->usize)) {
        rc = embt__error(EMBT_ERROR, EMBT_NO_OFFSET, NULL, 0,
                         "table '%s' changed while it was exported", e->name);
        goto done;
    }
    if (compress) {
        e->crc = b.crc;
        e->usize = b.usize;
        e->csize = b.csize;
        embt__put32(h, SIG_DESCRIPTOR);
        embt__put32(h + 4, e->crc);
        embt__put64(h + 8, e->csize);
        embt__put64(h + 16, e->usize);
        rc = put(z, h, 24);
    }
done:
    if (zs_live)
        deflateEnd(&zs);
    embt__free(zbuf);
    return rc;
}

static embt_status write_central(zip_out *z, const entry *e)
{
    uint8_t h[46 + 28];
    uint64_t extra[3];
    size_t nx = 0;
    uint32_t csize = (uint32_t)e->csize, usize = (uint32_t)e->usize, off = (uint32_t)e->offset;
    if (e->usize > ZIP64_LIMIT || e->csize > ZIP64_LIMIT) {
        extra[nx++] = e->usize;
        extra[nx++] = e->csize;
        usize = csize = 0xffffffffu;
    }
    if (e->offset > ZIP64_LIMIT) {
        extra[nx++] = e->offset;
        off = 0xffffffffu;
    }
    uint8_t version = (uint8_t)(nx ? ZIP64_VERSION : e->version);
    embt__put32(h, SIG_CENTRAL);
    h[4] = version;
    h[5] = 3; /* made on Unix */
    h[6] = version;
    h[7] = 0;
    embt__put16(h + 8, e->flags);
    embt__put16(h + 10, e->method);
    embt__put16(h + 12, 0);
    embt__put16(h + 14, DOS_DATE);
    embt__put32(h + 16, e->crc);
    embt__put32(h + 20, csize);
    embt__put32(h + 24, usize);
    embt__put16(h + 28, (uint16_t)(e->name_len + 4));
    embt__put16(h + 30, (uint16_t)(nx ? 4 + 8 * nx : 0));
    embt__put16(h + 32, 0);
    embt__put16(h + 34, 0);
    embt__put16(h + 36, 0);
    embt__put32(h + 38, EXTERNAL_ATTR);
    embt__put32(h + 42, off);
    uint8_t *x = h + 46;
    if (nx) {
        embt__put16(x, 1);
        embt__put16(x + 2, (uint16_t)(8 * nx));
        for (size_t i = 0; i < nx; i++)
            embt__put64(x + 4 + 8 * i, extra[i]);
    }
    embt_status rc = put(z, h, 46);
    if (rc == EMBT_OK)
        rc = put_name(z, e);
    if (rc == EMBT_OK && nx)
        rc = put(z, x, 4 + 8 * nx);
    return rc;
}

static embt_status write_end(zip_out *z, uint64_t count, uint64_t cd_off, uint64_t cd_size)
{
    uint8_t h[56 + 20 + 22];
    embt_status rc;
    if (count > FILECOUNT_LIMIT || cd_off > ZIP64_LIMIT || cd_size > ZIP64_LIMIT) {
        uint64_t rec = z->pos;
        embt__put32(h, SIG_EOCD64);
        embt__put64(h + 4, 44);
        embt__put16(h + 12, ZIP64_VERSION);
        embt__put16(h + 14, ZIP64_VERSION);
        embt__put32(h + 16, 0);
        embt__put32(h + 20, 0);
        embt__put64(h + 24, count);
        embt__put64(h + 32, count);
        embt__put64(h + 40, cd_size);
        embt__put64(h + 48, cd_off);
        embt__put32(h + 56, SIG_LOCATOR64);
        embt__put32(h + 60, 0);
        embt__put64(h + 64, rec);
        embt__put32(h + 72, 1);
        rc = put(z, h, 76);
        if (rc != EMBT_OK)
            return rc;
    }
    embt__put32(h, SIG_EOCD);
    embt__put16(h + 4, 0);
    embt__put16(h + 6, 0);
    uint16_t n16 = count > FILECOUNT_LIMIT ? 0xffff : (uint16_t)count;
    embt__put16(h + 8, n16);
    embt__put16(h + 10, n16);
    embt__put32(h + 12, cd_size > ZIP64_LIMIT ? 0xffffffffu : (uint32_t)cd_size);
    embt__put32(h + 16, cd_off > ZIP64_LIMIT ? 0xffffffffu : (uint32_t)cd_off);
    embt__put16(h + 20, 0);
    return put(z, h, 22);
}

embt_status embt__npz_write(const embt_file *src, embt__npy_sink sink, void *payload,
                            const embt_convert_options *opts)
{
    embt_status rc = EMBT_OK;
    size_t n = embt_file_table_count(src);
    entry *es = embt__calloc(n ? n : 1, sizeof *es);
    zip_out z = {sink, payload, 0};
    bool compress = opts && (opts->flags & EMBT_CONVERT_COMPRESS);
    if (!es)
        return embt__error_nomem();
    for (size_t i = 0; i < n; i++) {
        const embt_table *t = embt_file_table_at(src, i);
        embt_dtype dtype = EMBT_DTYPE_F32;
        es[i].name = embt_table_name(t);
        es[i].name_len = strlen(es[i].name);
        rc = embt__npy_export_dtype(&dtype, t, opts);
        if (rc == EMBT_OK)
            rc = write_member(&z, &es[i], t, dtype, compress);
        if (rc != EMBT_OK)
            goto done;
    }
    uint64_t cd_off = z.pos;
    for (size_t i = 0; i < n && rc == EMBT_OK; i++)
        rc = write_central(&z, &es[i]);
    if (rc == EMBT_OK)
        rc = write_end(&z, n, cd_off, z.pos - cd_off);
done:
    embt__free(es);
    return rc;
}

static embt_status output_sink(const void *data, size_t n, void *payload)
{
    return embt__output_write(payload, data, n);
}

embt_status embt__export_npz(const embt_file *src, embt__output *out,
                             const embt_convert_options *opts)
{
    EMBT_CHECK_ARG(src != NULL);
    EMBT_CHECK_ARG(out != NULL);
    return embt__npz_write(src, output_sink, out, opts);
}
