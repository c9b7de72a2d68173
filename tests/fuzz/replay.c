/* replay.c: runs saved inputs through a fuzz target's LLVMFuzzerTestOneInput without libFuzzer, so
 * any compiler (GCC included) and every ctest run cover the seeds and the crash reproducers.
 * Usage: fuzz_replay_<target> PATH...; a directory stands for the regular files directly in it.
 * A broken invariant aborts (the test fails); no input at all is a failure too. As libFuzzer's
 * -rss_limit_mb=2048 (run.sh) does, a single library allocation over 2 GiB aborts too, so the
 * reproducers of excessive allocations fail here when the bug comes back. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "embt/embt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ALLOCATION_MAX ((size_t)2048 << 20)

static void check_size(size_t n)
{
    if (n > ALLOCATION_MAX) {
        fprintf(stderr, "replay: the library asked for %zu bytes in one allocation (limit %zu)\n",
                n, ALLOCATION_MAX);
        abort();
    }
}
static void *capped_malloc(size_t n)
{
    check_size(n);
    return malloc(n);
}
static void *capped_realloc(void *p, size_t n)
{
    check_size(n);
    return realloc(p, n);
}

static size_t n_inputs;

/* Reads and runs one file; returns 0, or 1 when it cannot be read. */
static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fprintf(stderr, "replay: %s: out of memory\n", path);
            fclose(f);
            return 1;
        }
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap)
            break;
        cap *= 2;
        uint8_t *grown = realloc(buf, cap);
        if (!grown)
            free(buf);
        buf = grown;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "replay: %s: read error\n", path);
        free(buf);
        return 1;
    }
    /* an exact-size copy, as libFuzzer passes it, so ASan builds see reads past the end */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        return 1;
    }
    memcpy(exact, buf, len);
    free(buf);
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    n_inputs++;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs the regular files of `dir` in name order (reproducible output). */
static int replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) {
                rc = 1;
                break;
            }
            names = grown;
        }
        names[n] = malloc(strlen(dir) + strlen(e->d_name) + 2);
        if (!names[n]) {
            rc = 1;
            break;
        }
        sprintf(names[n], "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (rc == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
            rc = replay_file(names[i]);
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    int rc = 0;
    if (embt_set_allocator(capped_malloc, capped_realloc, free) != EMBT_OK) {
        fprintf(stderr, "replay: cannot install the allocation limit\n");
        return 1;
    }
    for (int i = 1; i < argc && rc == 0; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            rc = 1;
        } else if (S_ISDIR(st.st_mode)) {
            rc = replay_dir(argv[i]);
        } else {
            rc = replay_file(argv[i]);
        }
    }
    if (rc == 0 && n_inputs == 0) {
        fprintf(stderr, "replay: no input given\n");
        rc = 1;
    }
    printf("replayed %zu inputs%s\n", n_inputs, rc ? " (stopped on an error)" : "");
    return rc;
}
