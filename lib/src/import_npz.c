/* import_npz.c: embt_convert_file from a NumPy .npz (a zip of .npy members, stored or deflated,
 * zip64): a hardened zip reader (central directory first, bounded inflate, CRC-32 of every member)
 * that turns each NAME.npy into a table NAME, one of them tied to the --vocab vocabulary. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

#include "npy.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u
#define LOCAL_LEN 30u
#define CENTRAL_LEN 46u
#define EOCD_LEN 22u
#define LOCATOR64_LEN 20u
#define EOCD64_LEN 56u
#define EOCD_SCAN (EOCD_LEN + 65535u) /* the record plus the longest comment */
#define MEMBERS_MAX 65536u            /* arrays per archive */
#define DEFLATE_RATIO 1032u           /* deflate's best expansion (spec/FORMAT.md 10) */
#define DEFLATE_SLACK 64u
#define MEMBER_BYTES_MAX (UINT64_C(1) << 40) /* inflated bytes of one member */
#define NAME_MAX_BYTES 256u                  /* table names (spec/FORMAT.md 10) */
#define ZIP_CHUNK ((size_t)1 << 30)          /* zlib counts in uInt */

typedef struct member {
    uint64_t central;      /* offset of its central directory entry */
    uint64_t local;        /* offset of its local header */
    uint64_t data;         /* offset of its (compressed) bytes */
    uint64_t csize, usize; /* from the central directory (zip64 extra when saturated) */
    uint32_t crc;
    uint16_t method;     /* 0 stored, 8 deflated */
    const uint8_t *name; /* borrowed from the central directory, name_len bytes */
    size_t name_len;     /* including ".npy" */
} member;

bool embt__sniff_npz(const uint8_t *data, size_t size)
{
    if (size < LOCAL_LEN || embt__le32(data) != SIG_LOCAL)
        return false;
    size_t n = embt__le16(data + 26);
    return n >= 4 && n <= size - LOCAL_LEN && memcmp(data + LOCAL_LEN + n - 4, ".npy", 4) == 0;
}

static embt_status bad(uint64_t at, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* EMBT_EPARSE in the zip structure at input offset `at`. */
static embt_status bad(uint64_t at, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return embt__error(EMBT_EPARSE, at, "zip", 0, "%s", msg);
}

/* Finds the central directory through the end record (and the zip64 record when fields are
 * saturated). */
static embt_status find_central(const uint8_t *d, size_t size, uint64_t *off_out,
                                uint64_t *size_out, uint64_t *count_out)
{
    if (size < EOCD_LEN)
        return embt__error(EMBT_EFORMAT, 0, "zip", 0, "not a zip archive: %zu bytes", size);
    size_t lo = size > EOCD_SCAN ? size - EOCD_SCAN : 0, p = size - EOCD_LEN;
    for (;; p--) {
        if (embt__le32(d + p) == SIG_EOCD && p + EOCD_LEN + embt__le16(d + p + 20) == size)
            break;
        if (p == lo)
            return embt__error(EMBT_EFORMAT, size, "zip", 0,
                               "no zip end of central directory record in the last %zu bytes",
                               size - lo);
    }
    if (embt__le16(d + p + 4) != 0 || embt__le16(d + p + 6) != 0 ||
        embt__le16(d + p + 8) != embt__le16(d + p + 10))
        return embt__error(EMBT_ELIMIT, p + 4, "zip", 0,
                           "multi-disk zip archives are not supported");
    uint64_t count = embt__le16(d + p + 10), cd_size = embt__le32(d + p + 12);
    uint64_t cd_off = embt__le32(d + p + 16), cd_end = p;
    bool saturated = count == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu;
    bool locator = p >= LOCATOR64_LEN && embt__le32(d + p - LOCATOR64_LEN) == SIG_LOCATOR64;
    if (saturated && !locator)
        return bad(p, "zip end record has saturated fields but no zip64 locator precedes it");
    if (locator) {
        /* zipfile writes the zip64 records when a limit is passed, saturated fields or not */
        size_t loc = p - LOCATOR64_LEN;
        uint64_t rec = embt__le64(d + loc + 8);
        if (embt__le32(d + loc + 4) != 0 || embt__le32(d + loc + 16) > 1)
            return embt__error(EMBT_ELIMIT, loc + 4, "zip", 0,
                               "multi-disk zip archives are not supported");
        if (rec > loc || loc - rec < EOCD64_LEN || embt__le32(d + rec) != SIG_EOCD64)
            return bad(loc + 8, "zip64 locator points at %llu, where no zip64 end record lies",
                       (unsigned long long)rec);
        if (embt__le32(d + rec + 16) != 0 || embt__le32(d + rec + 20) != 0 ||
            embt__le64(d + rec + 24) != embt__le64(d + rec + 32))
            return embt__error(EMBT_ELIMIT, rec + 16, "zip", 0,
                               "multi-disk zip archives are not supported");
        count = embt__le64(d + rec + 32);
        cd_size = embt__le64(d + rec + 40);
        cd_off = embt__le64(d + rec + 48);
        cd_end = rec;
    }
    uint64_t end;
    if (!embt__add_u64(&end, cd_off, cd_size) || end != cd_end)
        return bad(cd_end,
                   "zip central directory at %llu of %llu bytes does not end at the end "
                   "record",
                   (unsigned long long)cd_off, (unsigned long long)cd_size);
    if (count > MEMBERS_MAX)
        return embt__error(EMBT_ELIMIT, cd_end, "zip", 0,
                           "zip archive of %llu members exceeds the limit of %u",
                           (unsigned long long)count, MEMBERS_MAX);
    if (count * CENTRAL_LEN > cd_size)
        return bad(cd_off, "zip central directory of %llu bytes cannot hold %llu entries",
                   (unsigned long long)cd_size, (unsigned long long)count);
    *off_out = cd_off;
    *size_out = cd_size;
    *count_out = count;
    return EMBT_OK;
}

/* Reads central entry at *pos into m and advances *pos; checks its local header. */
static embt_status read_entry(member *m, const uint8_t *d, uint64_t *pos, uint64_t cd_off,
                              uint64_t cd_end, uint64_t index)
{
    uint64_t p = *pos;
    if (cd_end - p < CENTRAL_LEN || embt__le32(d + p) != SIG_CENTRAL)
        return bad(p, "zip central entry %llu is truncated or lacks its signature",
                   (unsigned long long)index);
    unsigned flags = embt__le16(d + p + 8);
    m->central = p;
    m->method = embt__le16(d + p + 10);
    m->crc = embt__le32(d + p + 16);
    m->csize = embt__le32(d + p + 20);
    m->usize = embt__le32(d + p + 24);
    size_t nlen = embt__le16(d + p + 28), xlen = embt__le16(d + p + 30);
    size_t clen = embt__le16(d + p + 32);
    unsigned disk = embt__le16(d + p + 34);
    m->local = embt__le32(d + p + 42);
    if (cd_end - p - CENTRAL_LEN < (uint64_t)nlen + xlen + clen)
        return bad(p, "zip central entry %llu runs past the central directory",
                   (unsigned long long)index);
    m->name = d + p + CENTRAL_LEN;
    m->name_len = nlen;

    /* the zip64 extra holds, in order, only the fields saturated above */
    bool need_u = m->usize == 0xffffffffu, need_c = m->csize == 0xffffffffu;
    bool need_l = m->local == 0xffffffffu, need_d = disk == 0xffff;
    const uint8_t *x = d + p + CENTRAL_LEN + nlen;
    for (size_t i = 0; i + 4 <= xlen;) {
        unsigned id = embt__le16(x + i), sz = embt__le16(x + i + 2);
        if (sz > xlen - i - 4)
            return bad(p + CENTRAL_LEN + nlen + i,
                       "zip central entry %llu has an extra field of %llu bytes past its end",
                       (unsigned long long)index, (unsigned long long)sz);
        if (id == 1) {
            size_t q = i + 4, qe = q + sz;
            uint64_t *fields[3] = {need_u ? &m->usize : NULL, need_c ? &m->csize : NULL,
                                   need_l ? &m->local : NULL};
            for (int f = 0; f < 3; f++) {
                if (!fields[f])
                    continue;
                if (qe - q < 8)
                    return bad(p + CENTRAL_LEN + nlen + i,
                               "zip64 extra of entry %llu is %llu bytes: too short",
                               (unsigned long long)index, (unsigned long long)sz);
                *fields[f] = embt__le64(x + q);
                q += 8;
            }
            need_u = need_c = need_l = false;
            if (need_d && qe - q >= 4)
                disk = embt__le32(x + q) == 0 ? 0 : 1;
            need_d = false;
        }
        i += 4 + (size_t)sz;
    }
    if (need_u || need_c || need_l)
        return bad(p, "zip central entry %llu has saturated fields but no zip64 extra",
                   (unsigned long long)index);
    if (disk != 0)
        return embt__error(EMBT_ELIMIT, p + 34, "zip", 0,
                           "multi-disk zip archives are not supported");
    if (flags & 0x41)
        return embt__error(EMBT_ELIMIT, p + 8, "zip", 0,
                           "zip member %llu is encrypted (flags 0x%04x)", (unsigned long long)index,
                           flags);
    if (m->method != 0 && m->method != 8)
        return embt__error(EMBT_ELIMIT, p + 10, "zip", 0,
                           "zip member %llu uses compression method %u (only 0, stored, and 8, "
                           "deflated, are supported)",
                           (unsigned long long)index, m->method);

    /* the local header: its own name and extra lengths */
    uint64_t l = m->local;
    if (l > cd_off || cd_off - l < LOCAL_LEN || embt__le32(d + l) != SIG_LOCAL)
        return bad(p + 42, "zip member %llu: no local header at offset %llu",
                   (unsigned long long)index, (unsigned long long)l);
    if (embt__le16(d + l + 6) & 0x41)
        return embt__error(EMBT_ELIMIT, l + 6, "zip", 0, "zip member %llu is encrypted",
                           (unsigned long long)index);
    size_t lnlen = embt__le16(d + l + 26), lxlen = embt__le16(d + l + 28);
    m->data = l + LOCAL_LEN + lnlen + lxlen;
    uint64_t end;
    if (m->data > cd_off || !embt__add_u64(&end, m->data, m->csize) || end > cd_off)
        return bad(l, "zip member %llu of %llu bytes runs into the central directory",
                   (unsigned long long)index, (unsigned long long)m->csize);
    if (lnlen != nlen || memcmp(d + l + LOCAL_LEN, m->name, nlen) != 0)
        return bad(l + LOCAL_LEN, "zip member %llu: local and central names differ",
                   (unsigned long long)index);
    if (m->method == 0 && m->csize != m->usize)
        return bad(p + 20, "stored zip member %llu: compressed size %llu differs from its size",
                   (unsigned long long)index, (unsigned long long)m->csize);
    if (m->method == 8) {
        uint64_t most;
        if (!embt__mul_u64(&most, m->csize, DEFLATE_RATIO) ||
            !embt__add_u64(&most, most, DEFLATE_SLACK) || m->usize > most)
            return embt__error(EMBT_ELIMIT, p + 24, "zip", 0,
                               "zip member %llu declares %llu bytes from %llu compressed: beyond "
                               "deflate's 1032:1",
                               (unsigned long long)index, (unsigned long long)m->usize,
                               (unsigned long long)m->csize);
    }
    if (m->usize > MEMBER_BYTES_MAX || m->usize > SIZE_MAX - 1)
        return embt__error(EMBT_ELIMIT, p + 24, "zip", 0,
                           "zip member %llu of %llu bytes exceeds the limit of %llu",
                           (unsigned long long)index, (unsigned long long)m->usize,
                           (unsigned long long)MEMBER_BYTES_MAX);

    /* NAME.npy with NAME a table name */
    size_t tlen = nlen >= 4 ? nlen - 4 : 0;
    size_t bad_at;
    if (nlen < 4 || memcmp(m->name + tlen, ".npy", 4) != 0)
        return embt__error(EMBT_ELIMIT, p + CENTRAL_LEN, "zip", 0,
                           "zip member %llu '%.*s' is not a .npy array", (unsigned long long)index,
                           (int)(nlen > 64 ? 64 : nlen), (const char *)m->name);
    if (tlen == 0 || tlen > NAME_MAX_BYTES)
        return embt__error(EMBT_ELIMIT, p + CENTRAL_LEN, "zip", 0,
                           "zip member %llu: array name of %zu bytes is outside [1, %u]",
                           (unsigned long long)index, tlen, NAME_MAX_BYTES);
    if (!embt__utf8_valid(m->name, tlen, &bad_at))
        return bad(p + CENTRAL_LEN + bad_at,
                   "zip member %llu: array name is not UTF-8 at byte %llu",
                   (unsigned long long)index, (unsigned long long)bad_at);
    *pos = p + CENTRAL_LEN + nlen + xlen + clen;
    return EMBT_OK;
}

static int by_local(const void *a, const void *b)
{
    const member *x = *(const member *const *)a, *y = *(const member *const *)b;
    return x->local < y->local ? -1 : x->local > y->local;
}

static int by_name(const void *a, const void *b)
{
    const member *x = *(const member *const *)a, *y = *(const member *const *)b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    return c ? c : x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

/* Members must not overlap (overlapping members are a zip bomb technique), names must be unique. */
static embt_status check_members(member *ms, size_t n)
{
    embt_status rc = EMBT_OK;
    member **ix = embt__malloc(n * sizeof *ix);
    if (!ix)
        return embt__error_nomem();
    for (size_t i = 0; i < n; i++)
        ix[i] = &ms[i];
    qsort(ix, n, sizeof *ix, by_local);
    for (size_t i = 0; i + 1 < n; i++) {
        if (ix[i]->data + ix[i]->csize > ix[i + 1]->local) {
            rc = bad(ix[i + 1]->local, "zip member at %llu overlaps the member at %llu",
                     (unsigned long long)ix[i + 1]->local, (unsigned long long)ix[i]->local);
            goto done;
        }
    }
    qsort(ix, n, sizeof *ix, by_name);
    for (size_t i = 0; i + 1 < n; i++) {
        if (by_name(&ix[i], &ix[i + 1]) == 0) {
            rc = embt__error(
                EMBT_EPARSE, ix[i + 1]->central, "zip", 0, "zip holds two members named '%.*s'",
                (int)(ix[i]->name_len > 64 ? 64 : ix[i]->name_len), (const char *)ix[i]->name);
            goto done;
        }
    }
done:
    embt__free(ix);
    return rc;
}

/* Inflates a raw deflate stream of m->csize bytes into dst (m->usize bytes, plus one spare byte to
 * catch a stream longer than declared). */
static embt_status inflate_member(uint8_t *dst, const uint8_t *src, const member *m)
{
    embt_status rc = EMBT_OK;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.zalloc = embt__zalloc;
    zs.zfree = embt__zfree;
    if (inflateInit2(&zs, -15) != Z_OK)
        return embt__error_nomem();
    uint64_t in_pos = 0, out_pos = 0, cap = m->usize + 1;
    for (;;) {
        uint64_t ai = m->csize - in_pos, ao = cap - out_pos;
        zs.next_in = (Bytef *)(uintptr_t)(src + in_pos);
        zs.avail_in = (uInt)(ai > ZIP_CHUNK ? ZIP_CHUNK : ai);
        zs.next_out = dst + out_pos;
        zs.avail_out = (uInt)(ao > ZIP_CHUNK ? ZIP_CHUNK : ao);
        uInt gave_in = zs.avail_in, gave_out = zs.avail_out;
        int z = inflate(&zs, Z_NO_FLUSH);
        in_pos += gave_in - zs.avail_in;
        out_pos += gave_out - zs.avail_out;
        if (out_pos > m->usize) {
            rc = bad(m->data, "deflated member inflates beyond its declared %llu bytes",
                     (unsigned long long)m->usize);
            goto done;
        }
        if (z == Z_STREAM_END)
            break;
        if (z == Z_OK)
            continue;
        if (z == Z_MEM_ERROR) {
            rc = embt__error_nomem();
            goto done;
        }
        if (z == Z_BUF_ERROR && in_pos == m->csize) {
            rc = bad(m->data + in_pos, "deflated member ends after %llu of %llu bytes",
                     (unsigned long long)out_pos, (unsigned long long)m->usize);
            goto done;
        }
        rc = embt__error(EMBT_EPARSE, m->data + in_pos, "zip", 0, "damaged deflate stream: %s",
                         zs.msg ? zs.msg : "no progress");
        goto done;
    }
    if (out_pos != m->usize)
        rc = bad(m->data, "deflated member inflates to %llu bytes, its entry declares %llu",
                 (unsigned long long)out_pos, (unsigned long long)m->usize);
    else if (in_pos != m->csize)
        rc = bad(m->data + in_pos, "deflated member has %llu bytes after its stream end",
                 (unsigned long long)(m->csize - in_pos));
done:
    inflateEnd(&zs);
    return rc;
}

/* Appends `{name: "x", version: ..., method: stored}` for one array to the metadata list. */
static embt_status meta_member(char **buf, size_t *len, size_t *cap, const member *m,
                               const embt__npy *npy, bool first)
{
    char desc[40], head[160];
    embt_status rc =
        embt__buf_append(buf, len, cap, first ? "{name: " : ", {name: ", first ? 7 : 9);
    if (rc == EMBT_OK)
        rc = embt__yaml_quote(buf, len, cap, (const char *)m->name, m->name_len - 4);
    embt__npy_meta(head, sizeof head, npy);
    if (rc == EMBT_OK)
        rc = embt__buf_append(buf, len, cap, ", ", 2);
    if (rc == EMBT_OK)
        rc = embt__buf_append(buf, len, cap, head, strlen(head));
    int n = snprintf(desc, sizeof desc, ", method: %s}", m->method ? "deflate" : "stored");
    if (rc == EMBT_OK)
        rc = embt__buf_append(buf, len, cap, desc, (size_t)n);
    return rc;
}

embt_status embt__import_npz(const embt__import *ctx)
{
    embt_status rc;
    const embt_convert_options *o = ctx->opts;
    const uint8_t *d = ctx->in->data;
    size_t size = ctx->in->size;
    member *ms = NULL;
    uint8_t *heap = NULL;
    uint32_t *row_map = NULL;
    char *meta = NULL;
    size_t meta_len = 0, meta_cap = 0;
    uint64_t cd_off = 0, cd_size = 0, count = 0, total_rows = 0, tied_rows = 0;
    bool compress = (o->flags & EMBT_CONVERT_COMPRESS) != 0;

    rc = find_central(d, size, &cd_off, &cd_size, &count);
    if (rc != EMBT_OK)
        goto done;
    if (count == 0) {
        rc = embt__error(EMBT_EFORMAT, cd_off, "zip", 0, "npz archive holds no arrays");
        goto done;
    }
    ms = embt__calloc((size_t)count, sizeof *ms);
    if (!ms) {
        rc = embt__error_nomem();
        goto done;
    }
    uint64_t pos = cd_off;
    for (uint64_t i = 0; i < count; i++) {
        rc = read_entry(&ms[i], d, &pos, cd_off, cd_off + cd_size, i);
        if (rc != EMBT_OK)
            goto done;
    }
    rc = check_members(ms, (size_t)count);
    if (rc != EMBT_OK)
        goto done;

    /* the array tied to the vocabulary: the one asked for, else "embedding" if present */
    const char *want = o->table_name ? o->table_name : "embedding";
    size_t want_len = strlen(want);
    member *tied = NULL;
    for (uint64_t i = 0; i < count; i++)
        if (ms[i].name_len - 4 == want_len && memcmp(ms[i].name, want, want_len) == 0)
            tied = &ms[i];
    if (o->table_name && !tied) {
        rc = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, "zip", 0, "npz has no array named '%.64s'",
                         o->table_name);
        goto done;
    }
    if (o->vocab_path && !tied) {
        rc = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, "zip", 0,
                         "a vocabulary file needs an array to tie it to: the npz has no "
                         "'embedding' and no table name was given");
        goto done;
    }

    rc = embt__buf_append(&meta, &meta_len, &meta_cap, "source: {format: npz, arrays: [", 31);
    for (uint64_t i = 0; rc == EMBT_OK && i < count; i++) {
        member *m = &ms[i];
        char section[64], name[NAME_MAX_BYTES + 1];
        size_t tlen = m->name_len - 4;
        memcpy(name, m->name, tlen);
        name[tlen] = '\0';
        snprintf(section, sizeof section, "array %.57s", name);
        const uint8_t *bytes = d + m->data;
        if (m->method == 8) {
            heap = embt__malloc((size_t)m->usize + 1);
            if (!heap) {
                rc = embt__error_nomem();
                goto done;
            }
            rc = inflate_member(heap, d + m->data, m);
            if (rc != EMBT_OK) {
                embt__error_set_section(section);
                goto done;
            }
            bytes = heap;
        }
        uint32_t crc = embt__crc32(0, bytes, m->usize);
        if (crc != m->crc) {
            rc = embt__error(EMBT_EPARSE, m->data, section, 0,
                             "zip member CRC-32 is 0x%08x, its entry declares 0x%08x", crc, m->crc);
            goto done;
        }
        embt__npy_src src = {bytes, (size_t)m->usize, m->method == 8 ? m->local : m->data,
                             m->method == 8, section};
        embt__npy npy;
        rc = embt__npy_parse(&npy, &src);
        if (rc != EMBT_OK)
            goto done;
        uint64_t rows = npy.rows;
        if (o->limit != 0 && o->limit < rows && (!tied || m == tied))
            rows = o->limit;
        if (m == tied && o->vocab_path) {
            rc = embt__npy_read_vocab(ctx, npy.rows, name, &rows, &row_map);
            if (rc != EMBT_OK)
                goto done;
        }
        embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
        ts.name = name;
        ts.dtype = o->dtype;
        ts.vocab = m == tied && o->vocab_path ? ctx->vocab_name : NULL;
        ts.flags = compress ? EMBT_TABLE_COMPRESS : 0;
        rc = embt__npy_write_table(ctx, &src, &npy, &ts, rows, row_map, m->data, size);
        if (rc != EMBT_OK) {
            embt__error_set_section(section);
            goto done;
        }
        embt__free(heap);
        heap = NULL;
        embt__free(row_map);
        row_map = NULL;
        total_rows += rows;
        if (m == tied)
            tied_rows = rows;
        rc = meta_member(&meta, &meta_len, &meta_cap, m, &npy, i == 0);
    }
    if (rc == EMBT_OK)
        rc = embt__buf_append(&meta, &meta_len, &meta_cap, "]}\n", 3);
    if (rc != EMBT_OK)
        goto done;
    rc = embt_writer_set_metadata(ctx->writer, meta, meta_len);
    if (rc != EMBT_OK)
        goto done;
    ctx->report->rows = tied ? tied_rows : total_rows;
done:
    embt__free(row_map);
    embt__free(meta);
    embt__free(heap);
    embt__free(ms);
    return rc;
}
