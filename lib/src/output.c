/* output.c: a file that appears atomically for the exporters: bytes are buffered into
 * `<path>.tmp.<pid>.<n>` (O_EXCL, mode 0666 less umask) next to the destination, then commit
 * fsyncs, renames it over the destination and fsyncs the directory; on any failure or without
 * commit the temporary file is removed and the destination is untouched (STYLE.md 2.7). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert.h"
#include "sysio.h"
#include "tmpfile.h"

#define OUT_BUF_SIZE (1u << 20) /* small writes cost a memcpy, not a syscall */

struct embt__output {
    int fd;
    char *path;
    char *dir_path; /* the destination's directory, fsynced after the rename */
    char *tmp_path; /* NULL once renamed or removed */
    uint8_t *buf;   /* (OUT_BUF_SIZE) */
    size_t used;
    uint64_t pos; /* bytes handed to write() so far */
    bool broken;  /* a write failed: only free is useful */
};

embt_status embt__output_open(embt__output **out, const char *path)
{
    EMBT_CHECK_ARG(out != NULL);
    *out = NULL;
    EMBT_CHECK_ARG(path != NULL);
    if (!path[0])
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "output path is empty");
    embt_status rc = EMBT_OK;
    embt__output *o = embt__calloc(1, sizeof *o);
    if (!o)
        return embt__error_nomem();
    o->fd = -1;
    o->buf = embt__malloc(OUT_BUF_SIZE);
    if (!o->buf) {
        rc = embt__error_nomem();
        goto done;
    }
    embt__tmpfile t;
    if ((rc = embt__tmpfile_create(&t, path)))
        goto done;
    o->fd = t.fd;
    o->path = t.path;
    o->dir_path = t.dir_path;
    o->tmp_path = t.tmp_path;
done:
    if (rc != EMBT_OK) {
        embt__output_free(o);
        return rc;
    }
    *out = o;
    return EMBT_OK;
}

static embt_status write_all(embt__output *o, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = embt__write(o->fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            o->broken = true;
            return embt__error_sys(errno, "write of %zu bytes at offset %llu failed", n,
                                   (unsigned long long)o->pos);
        }
        p += k;
        n -= (size_t)k;
        o->pos += (uint64_t)k;
    }
    return EMBT_OK;
}

static embt_status flush(embt__output *o)
{
    embt_status rc = write_all(o, o->buf, o->used);
    o->used = 0;
    return rc;
}

embt_status embt__output_write(embt__output *out, const void *data, size_t n)
{
    EMBT_CHECK_ARG(out != NULL);
    EMBT_CHECK_ARG(data != NULL || n == 0);
    if (out->broken || out->fd < 0)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "output is no longer writable after a failure or commit");
    if (n == 0)
        return EMBT_OK;
    if (n > OUT_BUF_SIZE - out->used) {
        embt_status rc = flush(out);
        if (rc != EMBT_OK)
            return rc;
        if (n >= OUT_BUF_SIZE) /* a big piece goes straight to the file */
            return write_all(out, data, n);
    }
    memcpy(out->buf + out->used, data, n);
    out->used += n;
    return EMBT_OK;
}

/* Makes the rename durable: fsync the directory that holds the destination. */
static embt_status sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return embt__error_sys(errno, "cannot open the output directory to sync it");
    embt_status rc = EMBT_OK;
    if (embt__fsync(fd) != 0)
        rc = embt__error_sys(errno, "fsync of the output directory failed");
    close(fd);
    return rc;
}

embt_status embt__output_commit(embt__output *out)
{
    EMBT_CHECK_ARG(out != NULL);
    embt__output *o = out;
    embt_status rc = EMBT_OK;
    if (o->broken || o->fd < 0 || !o->tmp_path) {
        rc = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                         "output cannot be committed after a failure or a commit");
        goto done;
    }
    rc = flush(o);
    if (rc != EMBT_OK)
        goto done;
    if (embt__fsync(o->fd) != 0) {
        rc = embt__error_sys(errno, "fsync of the output file failed");
        goto done;
    }
    int fd = o->fd;
    o->fd = -1;
    if (close(fd) != 0) {
        rc = embt__error_sys(errno, "close of the output file failed");
        goto done;
    }
    if (embt__rename(o->tmp_path, o->path) != 0) {
        rc = embt__error_sys(errno, "cannot rename the temporary file over the output");
        goto done;
    }
    embt__free(o->tmp_path);
    o->tmp_path = NULL;
    /* the new file is in place; a failure here only means the rename may not survive a crash */
    rc = sync_dir(o->dir_path);
done:
    if (rc != EMBT_OK)
        o->broken = true;
    return rc;
}

void embt__output_free(embt__output *out)
{
    if (!out)
        return;
    if (out->fd >= 0)
        close(out->fd);
    if (out->tmp_path)
        unlink(out->tmp_path);
    embt__free(out->tmp_path);
    embt__free(out->dir_path);
    embt__free(out->path);
    embt__free(out->buf);
    embt__free(out);
}
