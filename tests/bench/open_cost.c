/* open_cost.c: measures what opening an .embt file and looking up one token costs in pages, to show
 * that it does not grow with the vocabulary (issue: O(1) open). Usage: open_cost FILE TOKEN.
 * It evicts the file from the page cache (posix_fadvise DONTNEED), then opens it, finds TOKEN, reads
 * its row of the first table and reports the page faults of those steps (getrusage) and the file's
 * pages resident afterwards (mincore), which includes the kernel's read-ahead. */
#include <embt/embt.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long resident_pages(const char *path, long *total)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return -1;
    long page = sysconf(_SC_PAGESIZE);
    size_t n = (size_t)((st.st_size + page - 1) / page);
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    unsigned char *vec = malloc(n);
    long count = 0;
    if (map != MAP_FAILED && vec && mincore(map, (size_t)st.st_size, vec) == 0)
        for (size_t i = 0; i < n; i++)
            count += vec[i] & 1;
    free(vec);
    if (map != MAP_FAILED)
        munmap(map, (size_t)st.st_size);
    close(fd);
    *total = (long)n;
    return count;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: open_cost FILE TOKEN\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0 || fsync(fd) != 0 || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0) {
        perror(argv[1]);
        return 1;
    }
    close(fd);
    long total;
    long before = resident_pages(argv[1], &total);

    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    double t0 = now();
    embt_file *file = NULL;
    const embt_vocab *vocab = NULL;
    uint32_t id = 0;
    int ok = embt_file_open(&file, argv[1], NULL) == EMBT_OK &&
             embt_file_vocab(&vocab, file, NULL) == EMBT_OK &&
             embt_vocab_find(&id, vocab, argv[2], strlen(argv[2])) == EMBT_OK &&
             embt_file_table_count(file) > 0;
    float row[4096];
    const embt_table *table = ok ? embt_file_table_at(file, 0) : NULL;
    if (ok && embt_table_cols(table) <= 4096)
        ok = embt_table_read_row_f32(row, table, id) == EMBT_OK;
    double t1 = now();
    getrusage(RUSAGE_SELF, &r1);
    if (!ok) {
        fprintf(stderr, "open_cost: %s\n", embt_error_last()->message);
        return 1;
    }
    long after = resident_pages(argv[1], &total);
    printf("file_pages: %ld\nvocab_size: %u\nid: %u\nminor_faults: %ld\nmajor_faults: %ld\n"
           "resident_before: %ld\nresident_after: %ld\nseconds: %.6f\n",
           total, embt_vocab_size(vocab), id, r1.ru_minflt - r0.ru_minflt,
           r1.ru_majflt - r0.ru_majflt, before, after, t1 - t0);
    embt_file_close(file);
    return 0;
}
