/* test_alloc_failure_import.c: out-of-memory and out-of-space paths of the word2vec / GloVe text
 * importer. An allocator installed with embt_set_allocator() fails the n-th allocation; for n = 1,
 * 2, ... until the conversion succeeds, embt_convert_file() must fail with EMBT_ENOMEM, leave neither
 * the output nor a temporary file, and free everything it allocated. The importer parses on worker
 * threads, so the counters are atomic. (Allocations that libyaml makes outside the hook are not
 * counted.) Write failures come from RLIMIT_FSIZE (write() fails with EFBIG once the temporary file
 * would pass the limit; SIGXFSZ ignored), stepped over every offset of the output. */
#include <criterion/criterion.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "alloc_hook.h"
#include "test_util.h"

TestSuite(alloc_failure_import, .init = ah_install, .fini = ah_uninstall, .timeout = 300);

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
    size_t n = ah_convert_at_every_allocation(in, out, o);
    ah_verify_file(out); /* the successful output is a valid file */
    cr_assert_eq(unlink(out), 0);
    return n;
}

Test(alloc_failure_import, the_counting_allocator_sees_the_importers_allocations)
{
    size_t len;
    char *text = make_text(10, 3, true, &len);
    tu_write_file(tu_path("in.txt"), text, len);
    free(text);
    ah_arm(0);
    TU_OK(embt_convert_file(tu_path("in.txt"), tu_path("out.embt"), NULL));
    cr_assert_gt(atomic_load(&ah_n_calls), 0, "the hook was not used");
    cr_assert_eq(atomic_load(&ah_live), 0, "a successful conversion leaked");
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
    ah_arm(0);
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
        ah_arm(0);
        embt_status st = embt_convert_file(in, out, NULL);
        cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
        cr_assert_eq(st, EMBT_EIO, "limit %zu of %zu bytes: got %s (%s)", cap, full,
                     embt_status_name(st), embt_error_last()->message);
        cr_assert_eq(embt_error_last()->sys_errno, EFBIG, "limit %zu: errno %d", cap,
                     embt_error_last()->sys_errno);
        cr_assert_not(tu_exists(out), "limit %zu: a failed conversion created the output", cap);
        cr_assert_eq(tu_count_entries(), 1, "limit %zu: a failed conversion left a file", cap);
        cr_assert_eq(atomic_load(&ah_live), 0, "limit %zu: leaked", cap);
        checked++;
    }
    cr_log_info("write failure at %zu offsets of a %zu-byte output", checked, full);
    TU_OK(embt_convert_file(in, out, NULL));
}
