/* test_alloc_failure_import.c: out-of-memory and out-of-space paths of the word2vec / GloVe text
 * importer. An allocator installed with embt_set_allocator() fails the n-th allocation; for n = 1,
 * 2, ... until the conversion succeeds, embt_convert_file() must fail with EMBT_ENOMEM, leave neither
 * the output nor a temporary file, and free everything it allocated. The importer parses on worker
 * threads, so the counters are atomic. (Allocations that libyaml makes outside the hook are not
 * counted.) Write failures come from RLIMIT_FSIZE (write() fails with EFBIG once the temporary file
 * would pass the limit; SIGXFSZ ignored), stepped over every offset of the output. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "test_util.h"

static atomic_size_t n_calls;  /* allocation attempts since the last reset */
static atomic_size_t fail_at;  /* the attempt that fails (1-based); 0: never */
static atomic_long live;       /* successful allocations minus frees */
static atomic_size_t n_failed; /* how many attempts were failed */

static void *count_malloc(size_t size)
{
    if (atomic_fetch_add(&n_calls, 1) + 1 == atomic_load(&fail_at)) {
        atomic_fetch_add(&n_failed, 1);
        return NULL;
    }
    void *p = malloc(size);
    if (p)
        atomic_fetch_add(&live, 1);
    return p;
}

static void *count_realloc(void *ptr, size_t size)
{
    if (atomic_fetch_add(&n_calls, 1) + 1 == atomic_load(&fail_at)) {
        atomic_fetch_add(&n_failed, 1);
        return NULL;
    }
    void *p = realloc(ptr, size);
    if (p && !ptr)
        atomic_fetch_add(&live, 1);
    return p;
}

static void count_free(void *ptr)
{
    if (ptr)
        atomic_fetch_sub(&live, 1);
    free(ptr);
}

static void install(void)
{
    tu_setup();
    TU_OK(embt_set_allocator(count_malloc, count_realloc, count_free));
}

static void uninstall(void)
{
    embt_set_allocator(NULL, NULL, NULL);
    tu_teardown();
}

static void arm(size_t n)
{
    atomic_store(&n_calls, 0);
    atomic_store(&n_failed, 0);
    atomic_store(&live, 0);
    atomic_store(&fail_at, n);
}

TestSuite(alloc_failure_import, .init = install, .fini = uninstall, .timeout = 300);

/* A text file of `rows` rows of `dim` values (non-ASCII tokens included), with a word2vec header
 * when asked; enough rows that the importer uses more than one parse batch. */
static char *make_text(size_t rows, size_t dim, bool header, size_t *len_out)
{
    size_t cap = 64 + rows * (32 + dim * 16), len = 0;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    if (header)
        len += (size_t)snprintf(buf + len, cap - len, "%zu %zu\n", rows, dim);
    for (size_t r = 0; r < rows; r++) {
        char tok[64];
        tu_token(tok, sizeof tok, (uint32_t)r);
        len += (size_t)snprintf(buf + len, cap - len, "%s", tok);
        for (size_t c = 0; c < dim; c++)
            len += (size_t)snprintf(buf + len, cap - len, " %.9g", (double)tu_value(r, c));
        len += (size_t)snprintf(buf + len, cap - len, "\n");
    }
    cr_assert_lt(len, cap);
    *len_out = len;
    return buf;
}

/* gzip-compresses `len` bytes into a new buffer (zlib's own allocator: not counted). */
static uint8_t *gzip_bytes(const char *data, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    cr_assert_eq(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)len) + 64;
    uint8_t *out = malloc(cap);
    cr_assert_not_null(out);
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

/* Runs the conversion of `in` to out.embt with the n-th allocation failing, for every n, and
 * returns how many allocations a successful conversion makes. */
static size_t convert_at_every_allocation(const char *in, const embt_convert_options *o)
{
    const char *out = tu_path("out.embt");
    size_t entries = tu_count_entries(); /* the input files */
    size_t n;
    for (n = 1; n < 200000; n++) {
        arm(n);
        embt_status st = embt_convert_file(in, out, o);
        long leaked = atomic_load(&live);
        cr_assert_eq(leaked, 0, "n=%zu: %ld allocations leaked (status %s)", n, leaked,
                     embt_status_name(st));
        if (atomic_load(&n_failed) == 0) {
            TU_OK(st);
            break;
        }
        cr_assert_eq(st, EMBT_ENOMEM, "n=%zu: got %s (%s)", n, embt_status_name(st),
                     embt_error_last()->message);
        cr_assert_eq(embt_error_last()->code, EMBT_ENOMEM, "n=%zu: error record", n);
        cr_assert_not(tu_exists(out), "n=%zu: a failed conversion created the output", n);
        cr_assert_eq(tu_count_entries(), entries, "n=%zu: a failed conversion left a file", n);
    }
    cr_assert_gt(n, 1, "the conversion made no allocation through the hook");
    /* the successful output is a valid file */
    arm(0);
    embt_file *f = NULL;
    embt_open_options oo = EMBT_OPEN_OPTIONS_INIT;
    oo.flags = EMBT_OPEN_VERIFY;
    TU_OK(embt_file_open(&f, out, &oo));
    embt_file_close(f);
    cr_assert_eq(atomic_load(&live), 0);
    cr_assert_eq(unlink(out), 0);
    return n - 1;
}

Test(alloc_failure_import, the_counting_allocator_sees_the_importers_allocations)
{
    size_t len;
    char *text = make_text(10, 3, true, &len);
    tu_write_file(tu_path("in.txt"), text, len);
    free(text);
    arm(0);
    TU_OK(embt_convert_file(tu_path("in.txt"), tu_path("out.embt"), NULL));
    cr_assert_gt(atomic_load(&n_calls), 0, "the hook was not used");
    cr_assert_eq(atomic_load(&live), 0, "a successful conversion leaked");
}

Test(alloc_failure_import, word2vec_text_fails_cleanly_at_every_allocation)
{
    size_t len;
    char *text = make_text(300, 5, true, &len);
    tu_write_file(tu_path("in.txt"), text, len);
    free(text);
    size_t n = convert_at_every_allocation(tu_path("in.txt"), NULL);
    cr_log_info("word2vec text: %zu allocations", n);
}

Test(alloc_failure_import, glove_text_to_compressed_f16_fails_cleanly_at_every_allocation)
{
    size_t len;
    char *text = make_text(300, 5, false, &len);
    tu_write_file(tu_path("in.txt"), text, len);
    free(text);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.from = EMBT_FORMAT_GLOVE;
    o.dtype = EMBT_DTYPE_F16;
    o.flags = EMBT_CONVERT_COMPRESS;
    size_t n = convert_at_every_allocation(tu_path("in.txt"), &o);
    cr_log_info("glove text, f16 + deflate: %zu allocations", n);
}

Test(alloc_failure_import, gzip_text_fails_cleanly_at_every_allocation)
{
    size_t len, gz_len;
    char *text = make_text(200, 4, true, &len);
    uint8_t *gz = gzip_bytes(text, len, &gz_len);
    free(text);
    tu_write_file(tu_path("in.txt.gz"), gz, gz_len);
    free(gz);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.on_duplicate = EMBT_DUPLICATE_FIRST;
    size_t n = convert_at_every_allocation(tu_path("in.txt.gz"), &o);
    cr_log_info("gzip word2vec text: %zu allocations", n);
}

Test(alloc_failure_import, a_write_failing_at_any_offset_fails_cleanly)
{
    /* own copies: tu_path() rotates among 8 buffers */
    char in[PATH_MAX], out[PATH_MAX];
    snprintf(in, sizeof in, "%s", tu_path("in.txt"));
    snprintf(out, sizeof out, "%s", tu_path("out.embt"));
    size_t len;
    char *text = make_text(200, 6, true, &len);
    tu_write_file(in, text, len);
    free(text);
    arm(0);
    TU_OK(embt_convert_file(in, out, NULL));
    size_t full;
    free(tu_read_file(out, &full));
    cr_assert_eq(unlink(out), 0);
    cr_assert_gt(full, 4096u);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    /* every 61 bytes (a step prime to the 64-byte alignment, so limits fall inside headers,
     * padding and rows), then every byte of the last 130 */
    size_t checked = 0;
    for (size_t cap = 0; cap < full; cap += cap + 130 < full ? 61 : 1) {
        struct rlimit lim = {(rlim_t)cap, old.rlim_max};
        cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
        arm(0);
        embt_status st = embt_convert_file(in, out, NULL);
        cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
        cr_assert_eq(st, EMBT_EIO, "limit %zu of %zu bytes: got %s (%s)", cap, full,
                     embt_status_name(st), embt_error_last()->message);
        cr_assert_eq(embt_error_last()->sys_errno, EFBIG, "limit %zu: errno %d", cap,
                     embt_error_last()->sys_errno);
        cr_assert_not(tu_exists(out), "limit %zu: a failed conversion created the output", cap);
        cr_assert_eq(tu_count_entries(), 1, "limit %zu: a failed conversion left a file", cap);
        cr_assert_eq(atomic_load(&live), 0, "limit %zu: leaked", cap);
        checked++;
    }
    cr_log_info("write failure at %zu offsets of a %zu-byte output", checked, full);
    TU_OK(embt_convert_file(in, out, NULL));
}
