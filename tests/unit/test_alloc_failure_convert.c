/* test_alloc_failure_convert.c: out-of-memory paths of every importer and exporter other than text
 * (test_alloc_failure_import.c has word2vec/GloVe text and gzip text). An allocator installed with
 * embt_set_allocator() fails the n-th allocation; for n = 1, 2, ... until the conversion succeeds,
 * embt_convert_file() must fail with EMBT_ENOMEM, free everything it allocated, and leave neither the
 * output nor a temporary or intermediate file in the output directory. Inputs are the small fixtures
 * of tests/fixtures/ (read in place) or files built here. zlib streams allocate through the hook too,
 * so their failures are injected as well. Counters are atomic: exporters format on a second thread. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "alloc_hook.h"
#include "test_util.h"

TestSuite(alloc_failure_convert, .init = ah_install, .fini = ah_uninstall, .timeout = 120);

/* The files a successful conversion to `out_name` must produce: the output itself, nothing else. */
typedef struct run_result {
    size_t allocations; /* made by the successful conversion */
    size_t out_size;
} run_result;

/* Runs the conversion of `in` to <test dir>/out_name with the n-th allocation failing, for every n,
 * then checks that the successful output exists (and, for .embt, verifies). */
static run_result convert_at_every_allocation(const char *in, const char *out_name,
                                              const embt_convert_options *o)
{
    char out[PATH_MAX];
    snprintf(out, sizeof out, "%s", tu_path(out_name));
    size_t entries = tu_count_entries(); /* inputs built in the test directory */
    run_result r = {ah_convert_at_every_allocation(in, out, o), 0};
    cr_assert_eq(tu_count_entries(), entries + 1, "the successful conversion left a stray file");
    free(tu_read_file(out, &r.out_size));
    cr_assert_gt(r.out_size, 0);
    size_t len = strlen(out);
    if (len > 5 && strcmp(out + len - 5, ".embt") == 0)
        ah_verify_file(out);
    cr_assert_eq(unlink(out), 0);
    return r;
}

/* gzip-compresses the file `from` into `to` (zlib's own allocator: not counted). */
static void gzip_file(const char *from, const char *to)
{
    size_t len;
    uint8_t *data = tu_read_file(from, &len);
    z_stream z;
    memset(&z, 0, sizeof z);
    cr_assert_eq(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)len) + 64;
    uint8_t *out = malloc(cap);
    cr_assert_not_null(out);
    z.next_in = data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    tu_write_file(to, out, cap - z.avail_out);
    deflateEnd(&z);
    free(out);
    free(data);
}

/* An .embt with a vocabulary (counts, compressed), the tied f32 table "embedding" (with norms), a
 * stand-alone i8 table and metadata: every kind of section the exporters read. */
static void write_source(const char *path, bool compress)
{
    ah_arm(0);
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, path, NULL));
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    vs.flags = EMBT_VOCAB_COUNTS | (compress ? EMBT_VOCAB_COMPRESS : 0);
    TU_OK(embt_writer_vocab_begin(w, &vs));
    enum { ROWS = 40, COLS = 5 };
    for (uint32_t i = 0; i < ROWS; i++) {
        char tok[64];
        size_t len = tu_token(tok, sizeof tok, i);
        TU_OK(embt_writer_vocab_add(w, tok, len, ROWS - i, NULL));
    }
    TU_OK(embt_writer_vocab_end(w));
    float rows[ROWS * COLS];
    for (int i = 0; i < ROWS * COLS; i++)
        rows[i] = tu_value((uint64_t)i / COLS, (uint64_t)i % COLS);
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = "embedding";
    ts.rows = ROWS;
    ts.cols = COLS;
    ts.vocab = "words";
    ts.flags = EMBT_TABLE_NORMS | (compress ? EMBT_TABLE_COMPRESS : 0);
    TU_OK(embt_writer_add_table_f32(w, &ts, rows));
    ts.name = "quantised";
    ts.dtype = EMBT_DTYPE_I8;
    ts.vocab = NULL;
    ts.flags = 0;
    TU_OK(embt_writer_add_table_f32(w, &ts, rows));
    static const char meta[] = "model: test\nparams:\n  dim: 5\n";
    TU_OK(embt_writer_set_metadata(w, meta, strlen(meta)));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    cr_assert_eq(atomic_load(&ah_live), 0);
}

/* ---- importers ---------------------------------------------------------------------------------- */

/* Imports tests/fixtures/<dir>/<name> into out.embt at every allocation; logs "<what>: <count>". */
static void import_fixture(const char *dir, const char *name, const char *what)
{
    run_result r = convert_at_every_allocation(tu_fixture(dir, name), "out.embt", NULL);
    cr_log_info("%s: %zu allocations", what, r.allocations);
}

Test(alloc_failure_convert, word2vec_bin_import_fails_cleanly_at_every_allocation)
{
    import_fixture("gensim", "vectors.bin", "word2vec-bin import");
}

Test(alloc_failure_convert, fasttext_bin_import_fails_cleanly_at_every_allocation)
{
    import_fixture("fasttext", "cbow_nosub.bin", "fasttext-bin import (cbow, no subwords)");
}

Test(alloc_failure_convert, fasttext_supervised_import_fails_cleanly_at_every_allocation)
{
    import_fixture("fasttext", "sup.bin", "fasttext-bin import (supervised)");
}

Test(alloc_failure_convert, npy_import_with_a_vocab_file_fails_cleanly_at_every_allocation)
{
    static const char vocab[] = "a\n\xc3\xa9t\xc3\xa9\nc\n"; /* f4_c.npy is (3, 4) */
    tu_write_file(tu_path("vocab.txt"), vocab, strlen(vocab));
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.vocab_path = tu_path("vocab.txt");
    run_result r = convert_at_every_allocation(tu_fixture("numpy", "f4_c.npy"), "out.embt", &o);
    cr_log_info("npy import + vocab file: %zu allocations", r.allocations);
    import_fixture("numpy", "f8_fortran.npy", "npy import (f8, Fortran order)");
}

Test(alloc_failure_convert, npz_stored_import_fails_cleanly_at_every_allocation)
{
    import_fixture("numpy", "savez.npz", "npz (stored) import");
}

Test(alloc_failure_convert, npz_deflated_import_fails_cleanly_at_every_allocation)
{
    import_fixture("numpy", "savez_compressed.npz", "npz (deflated) import");
    import_fixture("numpy", "zip64.npz", "npz (zip64) import");
}

Test(alloc_failure_convert, safetensors_import_fails_cleanly_at_every_allocation)
{
    import_fixture("safetensors", "basic.safetensors", "safetensors import");
}

Test(alloc_failure_convert, embt_reencode_fails_cleanly_at_every_allocation)
{
    write_source(tu_path("src.embt"), true);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.dtype = EMBT_DTYPE_F16;
    o.flags = EMBT_CONVERT_COMPRESS;
    run_result r = convert_at_every_allocation(tu_path("src.embt"), "out.embt", &o);
    cr_log_info("embt -> embt (f16, deflate): %zu allocations", r.allocations);
}

Test(alloc_failure_convert, gzip_binary_inputs_fail_cleanly_at_every_allocation)
{
    gzip_file(tu_fixture("gensim", "vectors.bin"), tu_path("vectors.bin.gz"));
    gzip_file(tu_fixture("safetensors", "basic.safetensors"), tu_path("basic.safetensors.gz"));
    run_result r = convert_at_every_allocation(tu_path("vectors.bin.gz"), "out.embt", NULL);
    cr_log_info("gzip word2vec-bin import: %zu allocations", r.allocations);
    r = convert_at_every_allocation(tu_path("basic.safetensors.gz"), "out.embt", NULL);
    cr_log_info("gzip safetensors import: %zu allocations", r.allocations);
}

/* ---- exporters ---------------------------------------------------------------------------------- */

static void export_at_every_allocation(const char *out_name, embt_format to, unsigned flags)
{
    write_source(tu_path("src.embt"), true);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.to = to;
    o.flags = flags;
    run_result r = convert_at_every_allocation(tu_path("src.embt"), out_name, &o);
    cr_log_info("embt -> %s%s: %zu allocations, %zu bytes", embt_format_name(to),
                flags & EMBT_CONVERT_COMPRESS ? " (deflate)" : "", r.allocations, r.out_size);
}

Test(alloc_failure_convert, word2vec_text_export_fails_cleanly_at_every_allocation)
{
    export_at_every_allocation("out.txt", EMBT_FORMAT_WORD2VEC, 0);
}

Test(alloc_failure_convert, glove_export_fails_cleanly_at_every_allocation)
{
    export_at_every_allocation("out.glove", EMBT_FORMAT_GLOVE, 0);
}

Test(alloc_failure_convert, word2vec_bin_export_fails_cleanly_at_every_allocation)
{
    export_at_every_allocation("out.bin", EMBT_FORMAT_WORD2VEC_BIN, 0);
}

Test(alloc_failure_convert, npy_export_fails_cleanly_at_every_allocation)
{
    export_at_every_allocation("out.npy", EMBT_FORMAT_NPY, 0);
}

Test(alloc_failure_convert, npz_export_fails_cleanly_at_every_allocation)
{
    export_at_every_allocation("out.npz", EMBT_FORMAT_NPZ, 0);
    export_at_every_allocation("out.npz", EMBT_FORMAT_NPZ, EMBT_CONVERT_COMPRESS);
}

Test(alloc_failure_convert, safetensors_export_fails_cleanly_at_every_allocation)
{
    export_at_every_allocation("out.safetensors", EMBT_FORMAT_SAFETENSORS, 0);
}

/* import into an intermediate .embt next to the output, then export: the intermediate file must go */
Test(alloc_failure_convert, conversion_through_an_intermediate_fails_cleanly_at_every_allocation)
{
    run_result r =
        convert_at_every_allocation(tu_fixture("gensim", "vectors.bin"), "out.npy", NULL);
    cr_log_info("word2vec-bin -> npy: %zu allocations", r.allocations);
    r = convert_at_every_allocation(tu_fixture("numpy", "savez_compressed.npz"), "out.safetensors",
                                    NULL);
    cr_log_info("npz (deflated) -> safetensors: %zu allocations", r.allocations);
}
