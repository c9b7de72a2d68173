/* output.c: a file that appears atomically for the exporters: bytes are buffered into
 * `<path>.tmp.<pid>.<n>` (O_EXCL, mode 0666 less umask) next to the destination, then commit
 * fsyncs, renames it over the destination and fsyncs the directory; on any failure or without
 * commit the temporary file is removed and the destination is untouched (STYLE.md 2.7); the file
 * itself is tmpfile.c's, as the writer's. */
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
    embt__tmpfile t; /* the temporary file, renamed over the destination at commit */
    uint8_t *buf;    /* (OUT_BUF_SIZE) */
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
    o->t.fd = -1;
    o->buf = embt__malloc(OUT_BUF_SIZE);
    if (!o->buf) {
        rc = embt__error_nomem();
        goto done;
    }
    rc = embt__tmpfile_create(&o->t, path);
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
        ssize_t k = embt__write(o->t.fd, p, n);
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
    if (out->broken || out->t.fd < 0)
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

embt_status embt__output_commit(embt__output *out)
{
    EMBT_CHECK_ARG(out != NULL);
    embt__output *o = out;
    embt_status rc = EMBT_OK;
    if (o->broken || o->t.fd < 0 || !o->t.tmp_path) {
        rc = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                         "output cannot be committed after a failure or a commit");
        goto done;
    }
    rc = flush(o);
    if (rc != EMBT_OK)
        goto done;
    rc = embt__tmpfile_commit(&o->t);
done:
    if (rc != EMBT_OK)
        o->broken = true;
    return rc;
}

void embt__output_free(embt__output *out)
{
    if (!out)
        return;
    embt__tmpfile_discard(&out->t);
    embt__free(out->buf);
    embt__free(out);
}
