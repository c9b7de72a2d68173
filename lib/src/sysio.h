/* sysio.h: the library's read, write, fsync and rename system calls, through one place where tests
 * can make the n-th call fail (or come back short) as the allocator hooks do for allocations.
 * Without a fault hook (the default) each is the plain system call. Never installed. */
#ifndef EMBT_SYSIO_H
#define EMBT_SYSIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

typedef enum embt__io_op {
    EMBT__IO_READ = 0,   /* read() of an input (embt_file_open without mmap, a training corpus) */
    EMBT__IO_WRITE = 1,  /* write() or pwrite() of an output */
    EMBT__IO_FSYNC = 2,  /* fsync() of an output file or of its directory */
    EMBT__IO_RENAME = 3, /* rename() of a temporary file over the output */
} embt__io_op;

/* Called before each system call of kind `op`. Returns 0 to let the call run or an errno value the
 * call then fails with (without running). For reads and writes *n is the byte count asked for; the
 * hook may lower it (not to 0) to make the call short. It runs on the calling thread (training
 * workers included), so it must be thread-safe. */
typedef int (*embt__io_fault_fn)(embt__io_op op, size_t *n);

/* Installs `fn` (NULL: none). Tests only: set it before the calls it should see, as the allocator. */
void embt__io_fault_set(embt__io_fault_fn fn);

ssize_t embt__read(int fd, void *buf, size_t n);
ssize_t embt__write(int fd, const void *buf, size_t n);
ssize_t embt__pwrite(int fd, const void *buf, size_t n, off_t at);
int embt__fsync(int fd);
int embt__rename(const char *from, const char *to);

/* Opens `path` for reading as a stdio stream if it is a regular file. O_NONBLOCK first, so that a
 * FIFO cannot block the open, and fstat, so that /dev/zero or a FIFO is not read without end. NULL
 * on failure: *not_regular tells a FIFO, device, directory or socket from an errno failure. */
FILE *embt__fopen_regular(const char *path, bool *not_regular);

#endif
