/* alloc_hook.h: one counting allocator shared by the failure-injection suites (test_alloc_failure*.c,
 * test_io_failure.c), so that they all fail and count allocations the same way. Installed with
 * embt_set_allocator(), it fails the n-th allocation attempt after ah_arm(n) (0: none) and counts
 * successful allocations minus frees in ah_live, so a leak shows as ah_live != 0, and the largest
 * size asked for in ah_largest. The counters are
 * atomic: importers, exporters and trainers allocate on worker threads. Header-only like
 * test_util.h: each suite is its own executable, and Criterion runs each test in its own process. */
#ifndef EMBT_ALLOC_HOOK_H
#define EMBT_ALLOC_HOOK_H

#include <stdatomic.h>

#include "test_util.h"

static atomic_size_t ah_n_calls;  /* allocation attempts since the last ah_arm() */
static atomic_size_t ah_fail_at;  /* the attempt that fails (1-based); 0: never */
static atomic_long ah_live;       /* successful allocations minus frees */
static atomic_size_t ah_n_failed; /* how many attempts were failed */
static atomic_size_t ah_largest;  /* the largest size asked for */

static inline void ah_note_size(size_t size)
{
    size_t seen = atomic_load(&ah_largest);
    while (size > seen && !atomic_compare_exchange_weak(&ah_largest, &seen, size))
        ;
}

static inline void *ah_malloc(size_t size)
{
    ah_note_size(size);
    if (atomic_fetch_add(&ah_n_calls, 1) + 1 == atomic_load(&ah_fail_at)) {
        atomic_fetch_add(&ah_n_failed, 1);
        return NULL;
    }
    void *p = malloc(size);
    if (p)
        atomic_fetch_add(&ah_live, 1);
    return p;
}

static inline void *ah_realloc(void *ptr, size_t size)
{
    ah_note_size(size);
    if (atomic_fetch_add(&ah_n_calls, 1) + 1 == atomic_load(&ah_fail_at)) {
        atomic_fetch_add(&ah_n_failed, 1);
        return NULL;
    }
    void *p = realloc(ptr, size);
    if (p && !ptr)
        atomic_fetch_add(&ah_live, 1);
    return p;
}

static inline void ah_free(void *ptr)
{
    if (ptr)
        atomic_fetch_sub(&ah_live, 1);
    free(ptr);
}

/* Resets the counters; the n-th allocation attempt from now on fails (0: none). */
static inline void ah_arm(size_t n)
{
    atomic_store(&ah_n_calls, 0);
    atomic_store(&ah_n_failed, 0);
    atomic_store(&ah_largest, 0);
    atomic_store(&ah_live, 0);
    atomic_store(&ah_fail_at, n);
}

/* .init and .fini of a suite: the test directory (tu_setup) and the allocator. */
static inline void ah_install(void)
{
    tu_setup();
    TU_OK(embt_set_allocator(ah_malloc, ah_realloc, ah_free));
}

static inline void ah_uninstall(void)
{
    embt_set_allocator(NULL, NULL, NULL);
    tu_teardown();
}

/* Converts `in` to `out` with the n-th allocation failing, for n = 1, 2, ... until a conversion
 * makes no failed allocation, which must succeed. Every conversion must free all it allocated; a
 * failed one must return EMBT_ENOMEM (status and error record), not create `out` and leave the
 * test directory as it was. Returns the allocations of the successful conversion (at least 1). */
static inline size_t ah_convert_at_every_allocation(const char *in, const char *out,
                                                    const embt_convert_options *o)
{
    size_t entries = tu_count_entries(); /* inputs built in the test directory */
    size_t n;
    for (n = 1; n < 200000; n++) {
        ah_arm(n);
        embt_status st = embt_convert_file(in, out, o);
        long leaked = atomic_load(&ah_live);
        cr_assert_eq(leaked, 0, "n=%zu: %ld allocations leaked (status %s: %s)", n, leaked,
                     embt_status_name(st), embt_error_last()->message);
        if (atomic_load(&ah_n_failed) == 0) {
            TU_OK(st);
            break;
        }
        cr_assert_eq(st, EMBT_ENOMEM, "n=%zu: got %s (%s)", n, embt_status_name(st),
                     embt_error_last()->message);
        cr_assert_eq(embt_error_last()->code, EMBT_ENOMEM, "n=%zu: error record", n);
        cr_assert_not(tu_exists(out), "n=%zu: a failed conversion created the output", n);
        cr_assert_eq(tu_count_entries(), entries,
                     "n=%zu: a failed conversion left a temporary or intermediate file", n);
    }
    cr_assert_gt(n, 1, "the conversion made no allocation through the hook");
    return n - 1;
}

/* Opens and verifies the .embt file `path` with no allocation failing; closing it frees all. */
static inline void ah_verify_file(const char *path)
{
    ah_arm(0);
    embt_file *f = NULL;
    embt_open_options oo = EMBT_OPEN_OPTIONS_INIT;
    oo.flags = EMBT_OPEN_VERIFY;
    TU_OK(embt_file_open(&f, path, &oo));
    embt_file_close(f);
    cr_assert_eq(atomic_load(&ah_live), 0);
}

#endif
