/* test_alloc_failure.c: out-of-memory paths. An allocator installed with embt_set_allocator() fails
 * the n-th allocation; for n = 1, 2, ... until the operation succeeds, opening + verifying a file and
 * writing a whole file must fail with EMBT_ENOMEM, leave no output or temp file, and free everything
 * they allocated. (libyaml and zlib allocate outside the hook unless the library routes them.) */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_hook.h"
#include "test_util.h"

TestSuite(alloc_failure, .init = ah_install, .fini = ah_uninstall, .timeout = 120);

Test(alloc_failure, the_counting_allocator_sees_the_librarys_allocations)
{
    ah_arm(0);
    tu_sample s = {20, 4, EMBT_DTYPE_F32, 0, 0, NULL};
    TU_OK(tu_write_sample(tu_path("probe.embt"), &s));
    cr_assert_gt(atomic_load(&ah_n_calls), 0, "the hook was not used");
    long leaked = atomic_load(&ah_live);
    cr_assert_eq(leaked, 0, "a successful write leaked %ld allocations", leaked);
}

/* The writer's buffers grow with its output: a 20-row file, compressed and shuffled or not, asks
 * for no piece over 64 kB (the value-conversion buffer and zlib's own state), not the 1 MB
 * write buffer a large output uses. */
Test(alloc_failure, a_small_file_is_written_without_large_buffers)
{
    for (int compress = 0; compress < 2; compress++) {
        ah_arm(0);
        tu_sample s = {20,
                       4,
                       EMBT_DTYPE_F32,
                       compress ? EMBT_VOCAB_COMPRESS : 0,
                       compress ? EMBT_TABLE_COMPRESS | EMBT_TABLE_NORMS : 0,
                       NULL};
        TU_OK(tu_write_sample(tu_path("small.embt"), &s));
        size_t largest = atomic_load(&ah_largest);
        cr_assert_leq(largest, (size_t)64 << 10, "compress=%d: %zu bytes asked for at once",
                      compress, largest);
        cr_assert_eq(atomic_load(&ah_live), 0);
    }
}

/* (a) open + verify of a file with a compressed table, counts, norms and metadata */
Test(alloc_failure, open_and_verify_fail_cleanly_at_every_allocation)
{
    const char *path = tu_path("in.embt");
    ah_arm(0);
    tu_sample s = {200,
                   16,
                   EMBT_DTYPE_F16,
                   EMBT_VOCAB_COUNTS | EMBT_VOCAB_COMPRESS,
                   EMBT_TABLE_COMPRESS | EMBT_TABLE_NORMS,
                   "a: 1\nb:\n  c: [x, y]\n"};
    TU_OK(tu_write_sample(path, &s));
    size_t n;
    for (n = 1; n < 100000; n++) {
        ah_arm(n);
        embt_file *f = (embt_file *)1;
        embt_status st = embt_file_open(&f, path, NULL);
        if (st == EMBT_OK) {
            st = embt_file_verify(f);
            embt_file_close(f);
        } else {
            cr_assert_null(f, "n=%zu: failed open left *out set", n);
        }
        long leaked = atomic_load(&ah_live);
        cr_assert_eq(leaked, 0, "n=%zu: %ld allocations leaked (status %s)", n, leaked,
                     embt_status_name(st));
        if (atomic_load(&ah_n_failed) == 0) {
            TU_OK(st);
            break;
        }
        cr_assert_eq(st, EMBT_ENOMEM, "n=%zu: got %s (%s)", n, embt_status_name(st),
                     embt_error_last()->message);
        cr_assert_eq(embt_error_last()->code, EMBT_ENOMEM);
    }
    cr_log_info("open + verify: %zu allocations", n - 1);
    cr_assert_gt(n, 1, "open + verify made no allocation through the hook");

    /* the same through the read-into-memory path */
    embt_open_options oo = EMBT_OPEN_OPTIONS_INIT;
    oo.flags = EMBT_OPEN_NO_MMAP | EMBT_OPEN_VERIFY;
    for (n = 1; n < 100000; n++) {
        ah_arm(n);
        embt_file *f = NULL;
        embt_status st = embt_file_open(&f, path, &oo);
        embt_file_close(f);
        long leaked = atomic_load(&ah_live);
        cr_assert_eq(leaked, 0, "no mmap, n=%zu: %ld allocations leaked", n, leaked);
        if (atomic_load(&ah_n_failed) == 0) {
            TU_OK(st);
            break;
        }
        cr_assert_eq(st, EMBT_ENOMEM, "no mmap, n=%zu: got %s", n, embt_status_name(st));
    }
}

/* (b) a full write: vocab (compressed, counts) + table (compressed, norms) + I8 table + metadata */
static embt_status full_write(const char *path)
{
    embt_writer *w = NULL;
    embt_status st = embt_writer_open(&w, path, NULL);
    if (st)
        goto done;
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    vs.flags = EMBT_VOCAB_COUNTS | EMBT_VOCAB_COMPRESS;
    if ((st = embt_writer_vocab_begin(w, &vs)))
        goto done;
    for (uint32_t i = 0; i < 300; i++) {
        char tok[64];
        size_t len = tu_token(tok, sizeof tok, i);
        if ((st = embt_writer_vocab_add(w, tok, len, i, NULL)))
            goto done;
    }
    if ((st = embt_writer_vocab_end(w)))
        goto done;
    float rows[300 * 8];
    for (int i = 0; i < 300 * 8; i++)
        rows[i] = tu_value((uint64_t)i / 8, (uint64_t)i % 8);
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = "embedding";
    ts.rows = 300;
    ts.cols = 8;
    ts.vocab = "words";
    ts.flags = EMBT_TABLE_COMPRESS | EMBT_TABLE_NORMS;
    if ((st = embt_writer_add_table_f32(w, &ts, rows)))
        goto done;
    ts.name = "quantised";
    ts.dtype = EMBT_DTYPE_I8;
    ts.vocab = NULL;
    ts.flags = 0;
    if ((st = embt_writer_add_table_f32(w, &ts, rows)))
        goto done;
    static const char meta[] = "model: test\nparams:\n  dim: 8\n";
    if ((st = embt_writer_set_metadata(w, meta, strlen(meta))))
        goto done;
    st = embt_writer_commit(w);
done:
    embt_writer_free(w);
    return st;
}

Test(alloc_failure, a_full_write_fails_cleanly_at_every_allocation)
{
    const char *path = tu_path("out.embt");
    size_t n;
    for (n = 1; n < 100000; n++) {
        ah_arm(n);
        embt_status st = full_write(path);
        long leaked = atomic_load(&ah_live);
        cr_assert_eq(leaked, 0, "n=%zu: %ld allocations leaked (status %s)", n, leaked,
                     embt_status_name(st));
        if (atomic_load(&ah_n_failed) == 0) {
            TU_OK(st);
            break;
        }
        cr_assert_eq(st, EMBT_ENOMEM, "n=%zu: got %s (%s)", n, embt_status_name(st),
                     embt_error_last()->message);
        cr_assert_not(tu_exists(path), "n=%zu: a failed write created the destination", n);
        cr_assert_eq(tu_count_entries(), 0, "n=%zu: a failed write left a temp file", n);
    }
    cr_log_info("full write: %zu allocations", n - 1);
    cr_assert_gt(n, 1);
    ah_arm(0);
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, NULL));
    TU_OK(embt_file_verify(f));
    embt_file_close(f);
    cr_assert_eq(atomic_load(&ah_live), 0);
}

/* (c) copying sections from an open file into a new one */
Test(alloc_failure, copying_sections_fails_cleanly_at_every_allocation)
{
    const char *src_path = tu_path("src.embt"), *path = tu_path("copy.embt");
    ah_arm(0);
    TU_OK(full_write(src_path));
    embt_file *src = NULL;
    TU_OK(embt_file_open(&src, src_path, NULL));
    long base = atomic_load(&ah_live);
    size_t n;
    for (n = 1; n < 100000; n++) {
        ah_arm(n);
        atomic_store(&ah_live, base);
        embt_writer *w = NULL;
        embt_status st = embt_writer_open(&w, path, NULL);
        if (st == EMBT_OK)
            st = embt_writer_copy_sections(w, src, EMBT_COPY_SKIP_METADATA);
        if (st == EMBT_OK)
            st = embt_writer_set_metadata(w, "x: 1\n", 5);
        if (st == EMBT_OK)
            st = embt_writer_commit(w);
        embt_writer_free(w);
        long leaked = atomic_load(&ah_live) - base;
        cr_assert_eq(leaked, 0, "n=%zu: %ld allocations leaked", n, leaked);
        if (atomic_load(&ah_n_failed) == 0) {
            TU_OK(st);
            break;
        }
        cr_assert_eq(st, EMBT_ENOMEM, "n=%zu: got %s", n, embt_status_name(st));
        cr_assert_not(tu_exists(path), "n=%zu: a failed copy created the destination", n);
        cr_assert_eq(tu_count_temp(tu_dir, "copy.embt"), 0, "n=%zu: temp file left", n);
    }
    embt_file_close(src);
}
