/* test_convert.c: the conversion core: option checks, output format by extension, input detection,
 * the three paths (import, export, import then export through a temporary .embt) leaving no stray
 * files on success or failure, re-encoding of .embt (dtype, compression, limit, metadata kept),
 * cancellation, the report, the atomic output and the --vocab FILE reader. */
#include <criterion/criterion.h>
#include <zlib.h>

#include "convert.h"
#include "test_util.h"
#include "vocab_file.h"

TestSuite(convert, .init = tu_setup, .fini = tu_teardown);

/* Files in the test directory. */
static int count_files(void)
{
    DIR *d = opendir(tu_dir);
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void write_str(const char *name, const char *text)
{
    tu_write_file(tu_path(name), text, strlen(text));
}

static const char *const sample_text = "4 3\nthe 0.1 -0.2 0.3\nof 1 2 3\n\xc3\xa9t\xc3\xa9 -0.5 0 "
                                       "1e-3\n</s> 7.25 8 9\n";

/* A two-table .embt: "embedding" tied to "words" (4 x 3, f32) and a stand-alone "bias" (2 x 1),
 * with metadata. */
static void make_embt(const char *name)
{
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, tu_path(name), NULL));
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    vs.flags = EMBT_VOCAB_COUNTS;
    TU_OK(embt_writer_vocab_begin(w, &vs));
    const char *toks[] = {"the", "of", "and", "to"};
    for (int i = 0; i < 4; i++)
        TU_OK(embt_writer_vocab_add(w, toks[i], strlen(toks[i]), (uint64_t)(100 - i), NULL));
    TU_OK(embt_writer_vocab_specials(w, 3, EMBT_NONE_ID, EMBT_NONE_ID, EMBT_NONE_ID));
    TU_OK(embt_writer_vocab_end(w));
    float data[12];
    for (int i = 0; i < 12; i++)
        data[i] = (float)i * 0.1f - 0.3f;
    tu_add_table(w, "embedding", 4, 3, "words", data);
    embt_table_spec bs = EMBT_TABLE_SPEC_INIT;
    bs.name = "bias";
    bs.rank = 1;
    bs.rows = 2;
    bs.cols = 1;
    float bias[2] = {0.5f, -1.5f};
    TU_OK(embt_writer_add_table_f32(w, &bs, bias));
    const char *meta = "model: {name: test}\n";
    TU_OK(embt_writer_set_metadata(w, meta, strlen(meta)));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
}

Test(convert, unknown_output_extension_is_einval_without_files)
{
    write_str("in.txt", sample_text);
    TU_STATUS(embt_convert_file(tu_path("in.txt"), tu_path("out.xyz"), NULL), EMBT_EINVAL);
    TU_STATUS(embt_convert_file(tu_path("in.txt"), tu_path("out.embt.gz"), NULL), EMBT_EINVAL);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.to = EMBT_FORMAT_FASTTEXT_BIN;
    TU_STATUS(embt_convert_file(tu_path("in.txt"), tu_path("out.bin"), &o), EMBT_EINVAL);
    o.to = (embt_format)42;
    TU_STATUS(embt_convert_file(tu_path("in.txt"), tu_path("out.bin"), &o), EMBT_EINVAL);
    cr_assert_eq(count_files(), 1);
}

Test(convert, explicit_output_format_overrides_the_extension)
{
    write_str("in.txt", sample_text);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.to = EMBT_FORMAT_EMBT;
    TU_OK(embt_convert_file(tu_path("in.txt"), tu_path("out.data"), &o));
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, tu_path("out.data"), NULL));
    embt_file_close(f);
    cr_assert_eq(count_files(), 2);
}

Test(convert, report_counts_rows_and_nothing_lenient_by_default)
{
    write_str("in.txt", sample_text);
    embt_convert_report rep;
    memset(&rep, 0xab, sizeof rep);
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.report = &rep;
    TU_OK(embt_convert_file(tu_path("in.txt"), tu_path("out.embt"), &o));
    cr_assert_eq(rep.rows, 4);
    cr_assert_eq(rep.duplicates_dropped + rep.utf8_replaced + rep.utf8_skipped + rep.nonfinite, 0);
}

Test(convert, embt_input_is_detected_and_reencoded_to_f16_compressed_and_limited)
{
    make_embt("in.embt");
    embt_convert_report rep;
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.dtype = EMBT_DTYPE_F16;
    o.flags = EMBT_CONVERT_COMPRESS;
    o.limit = 3;
    o.report = &rep;
    TU_OK(embt_convert_file(tu_path("in.embt"), tu_path("out.embt"), &o));
    cr_assert_eq(rep.rows, 3);
    embt_file *in = NULL, *out = NULL;
    TU_OK(embt_file_open(&in, tu_path("in.embt"), NULL));
    TU_OK(embt_file_open(&out, tu_path("out.embt"), NULL));
    TU_OK(embt_file_verify(out));
    const embt_vocab *v = NULL;
    TU_OK(embt_file_vocab(&v, out, "words"));
    cr_assert_eq(embt_vocab_size(v), 3);
    cr_assert(embt_vocab_has_counts(v));
    uint64_t count = 0;
    TU_OK(embt_vocab_count(&count, v, 2));
    cr_assert_eq(count, 98);
    cr_assert_eq(embt_vocab_unk_id(v), EMBT_NONE_ID, "the unk id 3 is beyond the limit");
    const embt_table *t = NULL, *ti = NULL, *b = NULL;
    TU_OK(embt_file_table(&t, out, "embedding"));
    TU_OK(embt_file_table(&ti, in, "embedding"));
    cr_assert_eq(embt_table_dtype(t), EMBT_DTYPE_F16);
    cr_assert_eq(embt_table_rows(t), 3);
    cr_assert_eq(embt_table_vocab(t), v);
    for (uint64_t r = 0; r < 3; r++) {
        float got[3];
        uint16_t want16[3];
        float want[3];
        TU_OK(embt_table_read_row_f32(got, t, r));
        embt_f32_to_f16(want16, embt_table_row_f32(ti, r), 3);
        embt_f16_to_f32(want, want16, 3);
        cr_assert_eq(memcmp(got, want, sizeof got), 0, "row %llu", (unsigned long long)r);
    }
    TU_OK(embt_file_table(&b, out, "bias"));
    cr_assert_eq(embt_table_rows(b), 2, "a stand-alone table is not limited");
    cr_assert_eq(embt_table_rank(b), 1);
    size_t len = 0;
    const char *meta = embt_file_metadata(out, &len);
    cr_assert_eq(len, strlen("model: {name: test}\n"));
    cr_assert_eq(memcmp(meta, "model: {name: test}\n", len), 0);
    int compressed = 0;
    for (size_t i = 0; i < embt_file_section_count(out); i++) {
        embt_section_info si;
        TU_OK(embt_file_section(&si, out, i));
        compressed += si.codec != 0;
    }
    cr_assert_gt(compressed, 0);
    embt_file_close(in);
    embt_file_close(out);
    cr_assert_eq(count_files(), 2);
}

Test(convert, embt_reencode_without_options_keeps_every_value)
{
    make_embt("in.embt");
    TU_OK(embt_convert_file(tu_path("in.embt"), tu_path("out.embt"), NULL));
    embt_file *in = NULL, *out = NULL;
    TU_OK(embt_file_open(&in, tu_path("in.embt"), NULL));
    TU_OK(embt_file_open(&out, tu_path("out.embt"), NULL));
    cr_assert_eq(embt_file_table_count(out), 2);
    for (size_t i = 0; i < 2; i++) {
        const embt_table *a = embt_file_table_at(in, i), *b = NULL;
        TU_OK(embt_file_table(&b, out, embt_table_name(a)));
        cr_assert_eq(embt_table_dtype(b), embt_table_dtype(a));
        size_t bytes = embt_table_rows(a) * embt_table_cols(a) * 4;
        cr_assert_eq(memcmp(embt_table_data(a), embt_table_data(b), bytes), 0);
    }
    embt_file_close(in);
    embt_file_close(out);
}

Test(convert, gzipped_embt_is_detected)
{
    make_embt("in.embt");
    size_t n = 0;
    uint8_t *raw = tu_read_file(tu_path("in.embt"), &n);
    gzFile gz = gzopen(tu_path("in.embt.gz"), "wb");
    cr_assert_not_null(gz);
    cr_assert_eq(gzwrite(gz, raw, (unsigned)n), (int)n);
    cr_assert_eq(gzclose(gz), Z_OK);
    free(raw);
    TU_OK(embt_convert_file(tu_path("in.embt.gz"), tu_path("out.embt"), NULL));
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, tu_path("out.embt"), NULL));
    cr_assert_eq(embt_file_table_count(f), 2);
    embt_file_close(f);
}

Test(convert, npy_content_is_detected_without_from)
{
    /* a hand-written .npy 1.0: 2 x 3 little-endian float32, C order */
    char header[128];
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    size_t hl = 118; /* 10 + 118 = 128: the data is 64-byte aligned */
    memset(header, ' ', sizeof header);
    memcpy(header, "\x93NUMPY\x01\x00", 8);
    header[8] = (char)hl;
    header[9] = 0;
    memcpy(header + 10, dict, strlen(dict));
    header[127] = '\n';
    float data[6] = {1, 2, 3, 4.5f, -5, 6e-3f};
    FILE *f = fopen(tu_path("in.dat"), "wb");
    cr_assert_eq(fwrite(header, 1, 128, f), 128);
    cr_assert_eq(fwrite(data, 4, 6, f), 6);
    fclose(f);
    TU_OK(embt_convert_file(tu_path("in.dat"), tu_path("out.embt"), NULL));
    embt_file *ef = NULL;
    const embt_table *t = NULL;
    TU_OK(embt_file_open(&ef, tu_path("out.embt"), NULL));
    cr_assert_eq(embt_file_table_count(ef), 1);
    t = embt_file_table_at(ef, 0);
    cr_assert_eq(embt_table_rows(t), 2);
    cr_assert_eq(embt_table_cols(t), 3);
    cr_assert_eq(memcmp(embt_table_data(t), data, sizeof data), 0);
    embt_file_close(ef);
}

Test(convert, binary_garbage_is_eformat_without_files)
{
    uint8_t junk[256];
    for (int i = 0; i < 256; i++)
        junk[i] = (uint8_t)(i * 37);
    tu_write_file(tu_path("in.dat"), junk, sizeof junk);
    TU_STATUS(embt_convert_file(tu_path("in.dat"), tu_path("out.embt"), NULL), EMBT_EFORMAT);
    TU_STATUS(embt_convert_file(tu_path("in.dat"), tu_path("out.npy"), NULL), EMBT_EFORMAT);
    cr_assert_eq(count_files(), 1);
}

Test(convert, embt_to_text_and_back_is_lossless)
{
    write_str("in.txt", sample_text);
    TU_OK(embt_convert_file(tu_path("in.txt"), tu_path("a.embt"), NULL));
    TU_OK(embt_convert_file(tu_path("a.embt"), tu_path("b.vec"), NULL));
    TU_OK(embt_convert_file(tu_path("b.vec"), tu_path("c.embt"), NULL));
    embt_file *a = NULL, *c = NULL;
    const embt_table *ta = NULL, *tc = NULL;
    TU_OK(embt_file_open(&a, tu_path("a.embt"), NULL));
    TU_OK(embt_file_open(&c, tu_path("c.embt"), NULL));
    TU_OK(embt_file_table(&ta, a, "embedding"));
    TU_OK(embt_file_table(&tc, c, "embedding"));
    cr_assert_eq(embt_table_rows(tc), 4);
    cr_assert_eq(memcmp(embt_table_data(ta), embt_table_data(tc), 4 * 3 * 4), 0);
    const embt_vocab *vc = embt_table_vocab(tc);
    size_t len = 0;
    const char *tok = embt_vocab_token(vc, 2, &len);
    cr_assert_eq(len, 5);
    cr_assert_eq(memcmp(tok, "\xc3\xa9t\xc3\xa9", 5), 0);
    embt_file_close(a);
    embt_file_close(c);
    cr_assert_eq(count_files(), 4);
}

Test(convert, text_to_npy_goes_through_a_removed_temporary)
{
    write_str("in.txt", sample_text);
    embt_convert_report rep;
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.report = &rep;
    o.limit = 2;
    TU_OK(embt_convert_file(tu_path("in.txt"), tu_path("out.npy"), &o));
    cr_assert_eq(rep.rows, 2);
    cr_assert_eq(count_files(), 2, "only the input and the output remain");
    size_t n = 0;
    uint8_t *npy = tu_read_file(tu_path("out.npy"), &n);
    cr_assert_gt(n, 2 * 3 * 4);
    cr_assert_eq(memcmp(npy, "\x93NUMPY", 6), 0);
    const float want[6] = {0.1f, -0.2f, 0.3f, 1, 2, 3};
    cr_assert_eq(memcmp(npy + n - sizeof want, want, sizeof want), 0);
    free(npy);
}

Test(convert, failed_import_through_a_temporary_leaves_nothing)
{
    write_str("in.txt", "2 2\na 1 2\nb 3 x\n");
    TU_STATUS(embt_convert_file(tu_path("in.txt"), tu_path("out.npy"), NULL), EMBT_EPARSE);
    cr_assert_eq(embt_error_last()->line, 3);
    cr_assert_eq(embt_error_last()->column, 5);
    cr_assert_eq(count_files(), 1);
    write_str("out.npy", "old");
    TU_STATUS(embt_convert_file(tu_path("in.txt"), tu_path("out.npy"), NULL), EMBT_EPARSE);
    size_t n = 0;
    uint8_t *old = tu_read_file(tu_path("out.npy"), &n);
    cr_assert_eq(n, 3);
    cr_assert_eq(memcmp(old, "old", 3), 0);
    free(old);
    cr_assert_eq(count_files(), 2);
}

Test(convert, failed_export_through_a_temporary_leaves_nothing)
{
    /* a token with a space cannot be written to word2vec-bin */
    write_str("in.txt", "2 2\nnew york 1 2\nb 3 4\n");
    TU_STATUS(embt_convert_file(tu_path("in.txt"), tu_path("out.bin"), NULL), EMBT_EINVAL);
    cr_assert_eq(count_files(), 1);
}

Test(convert, missing_table_for_export_is_enotfound)
{
    make_embt("in.embt");
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.table_name = "absent";
    TU_STATUS(embt_convert_file(tu_path("in.embt"), tu_path("out.txt"), &o), EMBT_ENOTFOUND);
    cr_assert_eq(count_files(), 1);
}

static int cancel_at_once(uint64_t done, uint64_t total, void *payload)
{
    (void)done;
    (void)total;
    ++*(int *)payload;
    return 1;
}

Test(convert, cancel_leaves_no_output_on_every_path)
{
    write_str("in.txt", sample_text);
    make_embt("in.embt");
    const char *paths[][2] = {{"in.txt", "out.embt"},
                              {"in.txt", "out.npy"},
                              {"in.embt", "out.txt"},
                              {"in.embt", "out2.embt"}};
    for (size_t i = 0; i < 4; i++) {
        int calls = 0;
        embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
        o.progress = cancel_at_once;
        o.payload = &calls;
        TU_STATUS(embt_convert_file(tu_path(paths[i][0]), tu_path(paths[i][1]), &o),
                  EMBT_ECANCELED);
        cr_assert_gt(calls, 0);
        cr_assert_eq(count_files(), 2, "%s -> %s", paths[i][0], paths[i][1]);
    }
}

Test(convert, output_appears_only_at_commit)
{
    embt__output *out = NULL;
    TU_OK(embt__output_open(&out, tu_path("o.bin")));
    TU_OK(embt__output_write(out, "abc", 3));
    cr_assert_not(tu_exists(tu_path("o.bin")));
    cr_assert_eq(count_files(), 1);
    embt__output_free(out); /* no commit: nothing stays */
    cr_assert_eq(count_files(), 0);
    TU_OK(embt__output_open(&out, tu_path("o.bin")));
    static uint8_t big[3 << 20];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    TU_OK(embt__output_write(out, "xy", 2));
    TU_OK(embt__output_write(out, big, sizeof big));
    TU_OK(embt__output_commit(out));
    embt__output_free(out);
    size_t n = 0;
    uint8_t *got = tu_read_file(tu_path("o.bin"), &n);
    cr_assert_eq(n, 2 + sizeof big);
    cr_assert_eq(memcmp(got, "xy", 2), 0);
    cr_assert_eq(memcmp(got + 2, big, sizeof big), 0);
    free(got);
    cr_assert_eq(count_files(), 1);
    TU_STATUS(embt__output_open(&out, tu_path("no/such/dir/o.bin")), EMBT_EIO);
    cr_assert_null(out);
}

Test(convert, input_inflates_every_gzip_member)
{
    gzFile gz = gzopen(tu_path("two.gz"), "wb");
    gzputs(gz, "first ");
    gzclose(gz);
    size_t n1 = 0;
    uint8_t *m1 = tu_read_file(tu_path("two.gz"), &n1);
    gz = gzopen(tu_path("two.gz"), "wb");
    gzputs(gz, "second");
    gzclose(gz);
    size_t n2 = 0;
    uint8_t *m2 = tu_read_file(tu_path("two.gz"), &n2);
    uint8_t *both = malloc(n1 + n2);
    memcpy(both, m1, n1);
    memcpy(both + n1, m2, n2);
    tu_write_file(tu_path("two.gz"), both, n1 + n2);
    embt__input in;
    TU_OK(embt__input_load(&in, tu_path("two.gz")));
    cr_assert(in.gzipped);
    cr_assert_not(in.droppable);
    cr_assert_eq(in.size, 12);
    cr_assert_eq(memcmp(in.data, "first second", 12), 0);
    embt__input_release(&in);
    tu_write_file(tu_path("two.gz"), both, n1 + n2 - 3); /* truncated */
    TU_STATUS(embt__input_load(&in, tu_path("two.gz")), EMBT_EFORMAT);
    TU_STATUS(embt__input_load(&in, tu_path("absent")), EMBT_EIO);
    free(both);
    free(m1);
    free(m2);
}

/* ---- --vocab FILE ------------------------------------------------------------------------------ */

/* Reads `text` as a vocabulary file into a fresh writer; returns the status, *n the tokens. */
static embt_status read_vocab(const char *text, embt_on_duplicate dup, embt_on_bad_utf8 utf8,
                              uint64_t limit, uint64_t *n, embt_convert_report *rep,
                              uint32_t **source)
{
    write_str("vocab.txt", text);
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, tu_path("v.embt"), NULL));
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    TU_OK(embt_writer_vocab_begin(w, &vs));
    embt_convert_options o = EMBT_CONVERT_OPTIONS_INIT;
    o.on_duplicate = dup;
    o.on_bad_utf8 = utf8;
    o.limit = limit;
    o.vocab_path = tu_path("vocab.txt");
    memset(rep, 0, sizeof *rep);
    embt__import ctx = {NULL, w, &o, rep, "embedding", "words"};
    embt_status rc = embt__read_vocab_file_rows(&ctx, n, source, NULL);
    embt_writer_free(w);
    return rc;
}

Test(convert, vocab_file_reads_lf_crlf_bom_and_a_last_line_without_newline)
{
    uint64_t n = 0;
    embt_convert_report rep;
    uint32_t *src = NULL;
    TU_OK(read_vocab("\xef\xbb\xbf"
                     "a\r\nb c\n</s>\n-0.5",
                     EMBT_DUPLICATE_ERROR, EMBT_BAD_UTF8_ERROR, 0, &n, &rep, &src));
    cr_assert_eq(n, 4);
    for (uint32_t i = 0; i < 4; i++)
        cr_assert_eq(src[i], i);
    free(src);
    TU_OK(read_vocab("a\nb\nc\n", EMBT_DUPLICATE_ERROR, EMBT_BAD_UTF8_ERROR, 2, &n, &rep, NULL));
    cr_assert_eq(n, 2);
}

Test(convert, vocab_file_errors_name_line_and_column)
{
    uint64_t n = 0;
    embt_convert_report rep;
    TU_STATUS(read_vocab("a\nb\na\n", EMBT_DUPLICATE_ERROR, EMBT_BAD_UTF8_ERROR, 0, &n, &rep, NULL),
              EMBT_EPARSE);
    cr_assert_eq(embt_error_last()->line, 3);
    cr_assert_eq(embt_error_last()->column, 1);
    cr_assert_str_eq(embt_error_last()->section, "vocab file");
    TU_STATUS(
        read_vocab("a\nxy\xff\n", EMBT_DUPLICATE_ERROR, EMBT_BAD_UTF8_ERROR, 0, &n, &rep, NULL),
        EMBT_EPARSE);
    cr_assert_eq(embt_error_last()->line, 2);
    cr_assert_eq(embt_error_last()->column, 3);
    TU_STATUS(read_vocab("a\n\nb\n", EMBT_DUPLICATE_ERROR, EMBT_BAD_UTF8_ERROR, 0, &n, &rep, NULL),
              EMBT_EPARSE);
    cr_assert_eq(embt_error_last()->line, 2);
}

Test(convert, vocab_file_policies_are_counted_and_map_rows)
{
    uint64_t n = 0;
    embt_convert_report rep;
    uint32_t *src = NULL;
    TU_OK(read_vocab("a\nb\na\nc\xff\nd\n", EMBT_DUPLICATE_LAST, EMBT_BAD_UTF8_SKIP, 0, &n, &rep,
                     &src));
    cr_assert_eq(n, 3);
    cr_assert_eq(rep.duplicates_dropped, 1);
    cr_assert_eq(rep.utf8_skipped, 1);
    cr_assert_eq(src[0], 2, "a takes its row from line 3");
    cr_assert_eq(src[1], 1);
    cr_assert_eq(src[2], 4);
    free(src);
    TU_OK(read_vocab("a\xff\nb\n", EMBT_DUPLICATE_FIRST, EMBT_BAD_UTF8_REPLACE, 0, &n, &rep, NULL));
    cr_assert_eq(n, 2);
    cr_assert_eq(rep.utf8_replaced, 1);
}
