/* sysio.c: read, write, fsync and rename with an optional fault hook for tests (sysio.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sysio.h"

static embt__io_fault_fn fault_hook;

void embt__io_fault_set(embt__io_fault_fn fn)
{
    fault_hook = fn;
}

/* 0, or the errno the hook asks for; *n is lowered only within (0, *n]. */
static int inject(embt__io_op op, size_t *n)
{
    embt__io_fault_fn fn = fault_hook;
    if (!fn)
        return 0;
    size_t k = *n;
    int err = fn(op, &k);
    if (err == 0 && k > 0 && k < *n)
        *n = k;
    return err;
}

ssize_t embt__read(int fd, void *buf, size_t n)
{
    int err = inject(EMBT__IO_READ, &n);
    if (err) {
        errno = err;
        return -1;
    }
    return read(fd, buf, n);
}

ssize_t embt__write(int fd, const void *buf, size_t n)
{
    int err = inject(EMBT__IO_WRITE, &n);
    if (err) {
        errno = err;
        return -1;
    }
    return write(fd, buf, n);
}

ssize_t embt__pwrite(int fd, const void *buf, size_t n, off_t at)
{
    int err = inject(EMBT__IO_WRITE, &n);
    if (err) {
        errno = err;
        return -1;
    }
    return pwrite(fd, buf, n, at);
}

int embt__fsync(int fd)
{
    size_t none = 0;
    int err = inject(EMBT__IO_FSYNC, &none);
    if (err) {
        errno = err;
        return -1;
    }
    return fsync(fd);
}

int embt__rename(const char *from, const char *to)
{
    size_t none = 0;
    int err = inject(EMBT__IO_RENAME, &none);
    if (err) {
        errno = err;
        return -1;
    }
    return rename(from, to);
}

FILE *embt__fopen_regular(const char *path, bool *not_regular)
{
    *not_regular = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        *not_regular = true;
        close(fd);
        return NULL;
    }
    int flags = fcntl(fd, F_GETFL);
    FILE *f = flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0 ? NULL : fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return f;
}
