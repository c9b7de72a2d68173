/* test_alloc_failure_libc.c: out-of-memory paths that embt_set_allocator() cannot reach. libyaml
 * calls malloc() itself, so the metadata parser's and emitter's handling of YAML_MEMORY_ERROR is
 * only tested by failing malloc() for the whole process: this executable defines malloc, calloc,
 * realloc and free (over glibc's __libc_* functions), which the shared libyaml resolves to. The
 * n-th allocation attempt, anywhere in the process, fails; for n = 1, 2, ... until the operation
 * succeeds it must return EMBT_ENOMEM and free every block it allocated.
 * AddressSanitizer replaces malloc itself, so under ASan the tests are skipped. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define INTERPOSED 0
#endif
#endif
#if !defined(INTERPOSED) && (defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__))
#define INTERPOSED 0
#endif
#ifndef INTERPOSED
#define INTERPOSED 1
#endif

static atomic_bool armed;      /* count and fail only between arm() and disarm() */
static atomic_size_t n_calls;  /* allocation attempts since arm() */
static atomic_size_t fail_at;  /* the attempt that fails (1-based); 0: none */
static atomic_size_t n_failed; /* attempts failed since arm() */
static atomic_long live;       /* blocks allocated minus blocks freed since arm() */

#if INTERPOSED
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *ptr, size_t size);
void __libc_free(void *ptr);

/* true when this attempt is the one to fail */
static bool fail_now(void)
{
    if (!atomic_load(&armed))
        return false;
    if (atomic_fetch_add(&n_calls, 1) + 1 != atomic_load(&fail_at))
        return false;
    atomic_fetch_add(&n_failed, 1);
    return true;
}

static void *counted(void *p)
{
    if (p && atomic_load(&armed))
        atomic_fetch_add(&live, 1);
    return p;
}

void *malloc(size_t size)
{
    return fail_now() ? NULL : counted(__libc_malloc(size));
}

void *calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : counted(__libc_calloc(n, size));
}

void *realloc(void *ptr, size_t size)
{
    if (fail_now())
        return NULL;
    void *p = __libc_realloc(ptr, size);
    if (!ptr)
        counted(p);
    return p;
}

void free(void *ptr)
{
    if (ptr && atomic_load(&armed))
        atomic_fetch_sub(&live, 1);
    __libc_free(ptr);
}
#endif

static void arm(size_t n)
{
    atomic_store(&n_calls, 0);
    atomic_store(&n_failed, 0);
    atomic_store(&live, 0);
    atomic_store(&fail_at, n);
    atomic_store(&armed, true);
}

static void disarm(void)
{
    atomic_store(&armed, false);
}

static void setup(void)
{
    if (!INTERPOSED)
        cr_skip_test("malloc is AddressSanitizer's here; it cannot be interposed");
    tu_setup();
}

TestSuite(alloc_failure_libc, .init = setup, .fini = tu_teardown, .timeout = 120);

/* A document with every node kind the parser builds: nested mappings, sequences (block and flow),
 * quoted and plain scalars, multi-line text, and keys long enough to grow libyaml's buffers. */
static const char doc[] =
    "source:\n"
    "  format: word2vec\n"
    "  path: \"/data/some file with a long name that grows the scalar buffer.txt\"\n"
    "training:\n"
    "  lr: 0.025\n"
    "  epochs: [1, 2, 3]\n"
    "  layers:\n"
    "  - {name: embedding, rows: 100}\n"
    "  - name: output\n"
    "    rows: 100\n"
    "notes: |\n"
    "  first line\n"
    "  second line\n";

/* Runs op(arg) with the n-th allocation failing, for n = 1, 2, ... until it succeeds; returns how
 * many allocations the successful run made. */
static size_t fail_each(const char *what, embt_status (*op)(void *), void *arg)
{
    size_t n;
    for (n = 1; n < 100000; n++) {
        arm(n);
        embt_status st = op(arg);
        disarm();
        long leaked = atomic_load(&live);
        size_t failed = atomic_load(&n_failed);
        cr_assert_eq(leaked, 0, "%s, n=%zu: %ld blocks leaked (status %s)", what, n, leaked,
                     embt_status_name(st));
        if (failed == 0) {
            TU_OK(st);
            break;
        }
        cr_assert_eq(st, EMBT_ENOMEM, "%s, n=%zu: got %s (%s)", what, n, embt_status_name(st),
                     embt_error_last()->message);
    }
    cr_assert_gt(n, 2, "%s made no allocation that could fail", what);
    cr_log_info("%s: %zu allocations", what, n - 1);
    return n - 1;
}

static embt_status parse_and_free(void *arg)
{
    (void)arg;
    embt_meta *m = NULL;
    embt_status st = embt_meta_parse(&m, doc, sizeof doc - 1);
    embt_meta_free(m);
    return st;
}

Test(alloc_failure_libc, metadata_parse_fails_cleanly_at_every_allocation)
{
    fail_each("parse", parse_and_free, NULL);
}

static embt_status parse_set_emit(void *arg)
{
    (void)arg;
    embt_meta *m = NULL;
    const char *text = NULL;
    size_t len = 0;
    embt_status st = embt_meta_parse(&m, doc, sizeof doc - 1);
    if (st == EMBT_OK)
        st = embt_meta_set(m, "training.optimizer.name", "sgd with a long name to grow buffers");
    if (st == EMBT_OK)
        st = embt_meta_emit(&text, &len, m);
    if (st == EMBT_OK && (len == 0 || !strstr(text, "optimizer")))
        st = EMBT_EINVAL; /* not ENOMEM: fails the test */
    embt_meta_free(m);
    return st;
}

Test(alloc_failure_libc, metadata_emit_fails_cleanly_at_every_allocation)
{
    fail_each("parse + set + emit", parse_set_emit, NULL);
}

static embt_status open_verify_close(void *arg)
{
    embt_file *f = NULL;
    embt_open_options oo = EMBT_OPEN_OPTIONS_INIT;
    oo.flags = EMBT_OPEN_VERIFY;
    embt_status st = embt_file_open(&f, (const char *)arg, &oo);
    embt_file_close(f);
    return st;
}

Test(alloc_failure_libc, open_and_verify_with_metadata_fail_cleanly_at_every_allocation)
{
    const char *path = tu_path("meta.embt");
    tu_sample s = {50, 8, EMBT_DTYPE_F32, EMBT_VOCAB_COUNTS, EMBT_TABLE_COMPRESS, doc};
    TU_OK(tu_write_sample(path, &s));
    fail_each("open + verify", open_verify_close, (void *)path);
}
