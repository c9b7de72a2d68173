/* membw.c: the machine's physical references for the benchmark suite: memcpy bandwidth and one-core
 * streaming read bandwidth over buffers larger than the caches. Usage: membw [MIB] (default 512).
 * Prints `BENCH memcpy_gbps=X` (bytes copied per second, counted once) and `BENCH read_gbps=Y`,
 * each the median of 7 passes, as tests/bench/run.sh expects. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { PASSES = 7 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Eight independent accumulators so that the loop is bound by loads, not by one add chain. */
static uint64_t read_all(const uint64_t *p, size_t n)
{
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        a0 += p[i];
        a1 += p[i + 1];
        a2 += p[i + 2];
        a3 += p[i + 3];
        a4 += p[i + 4];
        a5 += p[i + 5];
        a6 += p[i + 6];
        a7 += p[i + 7];
    }
    for (; i < n; i++)
        a0 += p[i];
    return a0 ^ a1 ^ a2 ^ a3 ^ a4 ^ a5 ^ a6 ^ a7;
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 512;
    if (argc > 2 || mib == 0) {
        fprintf(stderr, "usage: membw [MIB]\n");
        return 2;
    }
    size_t bytes = mib << 20, words = bytes / sizeof(uint64_t);
    uint64_t *src = malloc(bytes), *dst = malloc(bytes);
    if (!src || !dst) {
        fprintf(stderr, "membw: cannot allocate 2 x %zu MiB\n", mib);
        return 1;
    }
    for (size_t i = 0; i < words; i++) /* touch every page of both buffers before timing */
        src[i] = i * 0x9E3779B97F4A7C15ull;
    memset(dst, 1, bytes);

    double copy[PASSES], read[PASSES];
    uint64_t sink = 0;
    for (int k = 0; k < PASSES; k++) {
        double t = now();
        memcpy(dst, src, bytes);
        copy[k] = now() - t;
        sink += dst[(size_t)k * 4099 % words];
        t = now();
        sink += read_all(src, words);
        read[k] = now() - t;
    }
    qsort(copy, PASSES, sizeof copy[0], cmp_double);
    qsort(read, PASSES, sizeof read[0], cmp_double);
    printf("buffer: %zu MiB\n", mib);
    printf("BENCH memcpy_gbps=%.2f\n", (double)bytes / copy[PASSES / 2] / 1e9);
    printf("BENCH read_gbps=%.2f\n", (double)bytes / read[PASSES / 2] / 1e9);
    printf("checksum: %llu\n", (unsigned long long)(sink & 0xffff));
    free(src);
    free(dst);
    return 0;
}
