/* fuzz_common.h: helpers shared by the fuzz targets (header-only, everything static): the libFuzzer
 * entry point's prototype, a fatal check that works without assert (targets are also built in
 * release mode for the replay tests), an exact-size copy of the input (so ASan sees one byte past
 * the end) and a private scratch directory per process for targets that need files. */
#ifndef EMBT_FUZZ_COMMON_H
#define EMBT_FUZZ_COMMON_H

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "embt/embt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: print where and why, then abort so libFuzzer (or the replay test) stops. */
#define FZ_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, " [last error %s: %s]\n", embt_status_name(embt_error_last()->code),   \
                    embt_error_last()->message);                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A malloc'd copy of exactly `size` bytes (at least 1 allocated; malloc aligns to 16, which
 * embt_file_open_memory needs). Aborts when out of memory: that is the harness's failure. */
static inline uint8_t *fz_copy(const uint8_t *data, size_t size)
{
    /* calloc: an empty input still hands the parser defined memory */
    uint8_t *p = calloc(1, size ? size : 1);
    FZ_CHECK(p != NULL, "out of memory copying %zu bytes", size);
    if (size)
        memcpy(p, data, size);
    return p;
}

static char fz_dir[PATH_MAX];

static inline void fz_remove_dir(void)
{
    DIR *d = opendir(fz_dir);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char p[PATH_MAX];
            if (snprintf(p, sizeof p, "%s/%s", fz_dir, e->d_name) < (int)sizeof p)
                unlink(p);
        }
        closedir(d);
    }
    rmdir(fz_dir);
}

/* This process's scratch directory: on /dev/shm when it exists (no disk I/O per execution), else
 * under $TMPDIR or /tmp. Created on first use, removed at exit. */
static inline const char *fz_scratch(void)
{
    if (fz_dir[0])
        return fz_dir;
    struct stat st;
    const char *base = getenv("TMPDIR");
    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
        base = "/dev/shm";
    else if (!base || !*base)
        base = "/tmp";
    snprintf(fz_dir, sizeof fz_dir, "%s/embt-fuzz-XXXXXX", base);
    FZ_CHECK(mkdtemp(fz_dir) != NULL, "mkdtemp %s: %s", fz_dir, strerror(errno));
    atexit(fz_remove_dir);
    return fz_dir;
}

/* `name` inside the scratch directory, in one of 4 rotating static buffers. */
static inline const char *fz_path(const char *name)
{
    static char bufs[4][PATH_MAX];
    static unsigned next;
    char *b = bufs[next++ % 4];
    int n = snprintf(b, PATH_MAX, "%s/%s", fz_scratch(), name);
    FZ_CHECK(n > 0 && n < PATH_MAX, "path too long");
    return b;
}

static inline void fz_write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    FZ_CHECK(f != NULL, "create %s: %s", path, strerror(errno));
    FZ_CHECK(size == 0 || fwrite(data, 1, size, f) == size, "write %s", path);
    FZ_CHECK(fclose(f) == 0, "close %s", path);
}

/* Entries in the scratch directory other than `keep` (NULL: none kept): leftovers of a failed
 * conversion or write (temporary files, partial output). */
static inline size_t fz_count_other_entries(const char *keep)
{
    DIR *d = opendir(fz_scratch());
    FZ_CHECK(d != NULL, "opendir");
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (keep && !strcmp(e->d_name, keep))
            continue;
        n++;
    }
    closedir(d);
    return n;
}

/* True when the input starts with the .embt magic, so that format detection takes it for a
 * container (whose reader reports damage as EMBT_ECORRUPT). */
static inline bool fz_embt_magic(const uint8_t *data, size_t size)
{
    return size >= 5 && memcmp(data,
                               "\x89"
                               "EMBT",
                               5) == 0;
}

/* A failed embt_convert_file() on fuzzed input: a parse, format, limit, argument or version error,
 * or (corrupt_ok: the input may be taken for .embt) the container reader's ECORRUPT; the error
 * record agrees with the status. */
static inline void fz_check_import_failure(embt_status st, bool corrupt_ok)
{
    FZ_CHECK(st == EMBT_EPARSE || st == EMBT_EFORMAT || st == EMBT_ELIMIT || st == EMBT_EINVAL ||
                 st == EMBT_EVERSION || (corrupt_ok && st == EMBT_ECORRUPT),
             "convert failed with %s", embt_status_name(st));
    FZ_CHECK(st == embt_error_last()->code, "status and error record disagree");
}

#endif
