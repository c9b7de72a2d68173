/* test_writer.c: the writer's contract: deterministic bytes, argument and content errors with the
 * documented statuses, and atomic commits: the destination is the old file or the complete new one,
 * whatever fails and wherever the writing process is killed; temp files never linger or block. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

static embt_writer *open_writer(const char *path)
{
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, path, NULL));
    cr_assert_not_null(w);
    return w;
}

static void begin_vocab(embt_writer *w, const char *name)
{
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    vs.name = name;
    TU_OK(embt_writer_vocab_begin(w, &vs));
}

static embt_table_spec table_spec(const char *name, uint64_t rows, uint64_t cols, const char *vocab)
{
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = name;
    ts.rows = rows;
    ts.cols = cols;
    ts.vocab = vocab;
    return ts;
}

static void open_and_verify(const char *path)
{
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, NULL));
    TU_OK(embt_file_verify(f));
    embt_file_close(f);
}

/* ---- determinism ---- */

struct det_case {
    unsigned vocab_flags, table_flags;
    embt_dtype dtype;
};

ParameterizedTestParameters(writer, the_same_content_written_twice_gives_identical_bytes)
{
    static struct det_case cases[] = {
        {0, 0, EMBT_DTYPE_F32},
        {EMBT_VOCAB_COUNTS, EMBT_TABLE_NORMS, EMBT_DTYPE_F16},
        {EMBT_VOCAB_COMPRESS, EMBT_TABLE_COMPRESS, EMBT_DTYPE_F32},
        {EMBT_VOCAB_COMPRESS | EMBT_VOCAB_COUNTS, EMBT_TABLE_COMPRESS | EMBT_TABLE_NORMS,
         EMBT_DTYPE_I8},
    };
    return cr_make_param_array(struct det_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct det_case *k, writer, the_same_content_written_twice_gives_identical_bytes,
                  .init = tu_setup, .fini = tu_teardown)
{
    tu_sample s = {300, 17, k->dtype, k->vocab_flags, k->table_flags, "a: 1\nb:\n  c: text\n"};
    const char *a = tu_path("a.embt"), *b = tu_path("second-name.embt");
    TU_OK(tu_write_sample(a, &s));
    TU_OK(tu_write_sample(b, &s));
    cr_assert(tu_same_file(a, b), "two writes of the same content differ");
    /* overwriting an existing destination gives the same bytes again */
    TU_OK(tu_write_sample(a, &s));
    cr_assert(tu_same_file(a, b));
    open_and_verify(a);
}

/* ---- vocabulary errors ---- */

Test(writer, a_duplicate_token_is_eexists_and_reports_the_existing_id, .init = tu_setup,
     .fini = tu_teardown)
{
    const char *path = tu_path("dup.embt");
    embt_writer *w = open_writer(path);
    begin_vocab(w, "words");
    static const char *const toks[] = {"a", "\xc3\xa9", "c"};
    for (int i = 0; i < 3; i++)
        TU_OK(embt_writer_vocab_add(w, toks[i], strlen(toks[i]), 0, NULL));
    uint32_t existing = 12345;
    TU_STATUS(embt_writer_vocab_add(w, "\xc3\xa9", 2, 0, &existing), EMBT_EEXISTS);
    cr_assert_eq(existing, 1);
    TU_STATUS(embt_writer_vocab_add(w, "a", 1, 0, NULL), EMBT_EEXISTS);
    TU_OK(embt_writer_vocab_add(w, "d", 1, 0, NULL));
    TU_OK(embt_writer_vocab_end(w));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);

    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, NULL));
    TU_OK(embt_file_verify(f));
    const embt_vocab *v = embt_file_vocab_at(f, 0);
    cr_assert_eq(embt_vocab_size(v), 4, "a rejected duplicate was added");
    uint32_t id;
    TU_OK(embt_vocab_find(&id, v, "d", 1));
    cr_assert_eq(id, 3);
    embt_file_close(f);
}

/* No pointers in parameters: Criterion runs each case in a fresh process. */
struct bad_token {
    char bytes[8];
    size_t len;
};

ParameterizedTestParameters(writer, an_invalid_token_is_einval_and_adds_nothing)
{
    static struct bad_token cases[] = {
        {"", 0},                 /* empty */
        {"\xff", 1},             /* never valid in UTF-8 */
        {"\x80", 1},             /* lone continuation byte */
        {"\xc0\xaf", 2},         /* overlong '/' */
        {"\xe0\x80\xaf", 3},     /* overlong, three bytes */
        {"\xed\xa0\x80", 3},     /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", 4}, /* above U+10FFFF */
        {"\xe2\x82", 2},         /* truncated sequence */
        {"a\0b", 3},             /* U+0000 inside */
        {"\0", 1},               /* U+0000 alone */
    };
    return cr_make_param_array(struct bad_token, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct bad_token *k, writer, an_invalid_token_is_einval_and_adds_nothing,
                  .init = tu_setup, .fini = tu_teardown)
{
    const char *path = tu_path("bad.embt");
    embt_writer *w = open_writer(path);
    begin_vocab(w, "words");
    TU_STATUS(embt_writer_vocab_add(w, k->bytes, k->len, 0, NULL), EMBT_EINVAL);
    TU_OK(embt_writer_vocab_add(w, "ok", 2, 0, NULL));
    TU_OK(embt_writer_vocab_end(w));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, NULL));
    TU_OK(embt_file_verify(f));
    uint32_t id = 99;
    TU_OK(embt_vocab_find(&id, embt_file_vocab_at(f, 0), "ok", 2));
    cr_assert_eq(id, 0, "the rejected token took an id");
    cr_assert_eq(embt_vocab_size(embt_file_vocab_at(f, 0)), 1);
    embt_file_close(f);
}

Test(writer, a_token_of_65535_bytes_is_accepted_and_65536_is_einval, .init = tu_setup,
     .fini = tu_teardown)
{
    const char *path = tu_path("long.embt");
    char *tok = malloc(65536);
    cr_assert_not_null(tok);
    memset(tok, 'x', 65536);
    embt_writer *w = open_writer(path);
    begin_vocab(w, "words");
    TU_STATUS(embt_writer_vocab_add(w, tok, 65536, 0, NULL), EMBT_EINVAL);
    TU_OK(embt_writer_vocab_add(w, tok, 65535, 0, NULL));
    TU_OK(embt_writer_vocab_end(w));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, NULL));
    TU_OK(embt_file_verify(f));
    size_t len = 0;
    const char *got = embt_vocab_token(embt_file_vocab_at(f, 0), 0, &len);
    cr_assert_eq(len, 65535);
    cr_assert_eq(memcmp(got, tok, len), 0);
    embt_file_close(f);
    free(tok);
}

Test(writer, a_special_id_beyond_the_vocabulary_is_einval_at_vocab_end, .init = tu_setup,
     .fini = tu_teardown)
{
    embt_writer *w = open_writer(tu_path("special.embt"));
    begin_vocab(w, "words");
    TU_OK(embt_writer_vocab_add(w, "a", 1, 0, NULL));
    TU_OK(embt_writer_vocab_add(w, "b", 1, 0, NULL));
    TU_OK(embt_writer_vocab_specials(w, 0, EMBT_NONE_ID, EMBT_NONE_ID, 2));
    TU_STATUS(embt_writer_vocab_end(w), EMBT_EINVAL);
    embt_writer_free(w);
    cr_assert_eq(tu_count_entries(), 0, "a failed writer left files behind");
}

Test(writer, duplicate_vocabulary_and_table_names_are_eexists, .init = tu_setup,
     .fini = tu_teardown)
{
    embt_writer *w = open_writer(tu_path("names.embt"));
    begin_vocab(w, "words");
    TU_OK(embt_writer_vocab_add(w, "a", 1, 0, NULL));
    TU_OK(embt_writer_vocab_end(w));
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    TU_STATUS(embt_writer_vocab_begin(w, &vs), EMBT_EEXISTS);
    float x = 1.0f;
    embt_table_spec ts = table_spec("t", 1, 1, NULL);
    TU_OK(embt_writer_add_table_f32(w, &ts, &x));
    TU_STATUS(embt_writer_table_begin(w, &ts), EMBT_EEXISTS);
    /* a table may share a vocabulary's name: the two namespaces are separate (FORMAT.md 4) */
    ts = table_spec("words", 1, 1, "words");
    TU_OK(embt_writer_add_table_f32(w, &ts, &x));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    open_and_verify(tu_path("names.embt"));
}

Test(writer, a_second_open_section_is_einval, .init = tu_setup, .fini = tu_teardown)
{
    embt_writer *w = open_writer(tu_path("open.embt"));
    begin_vocab(w, "words");
    embt_table_spec ts = table_spec("t", 1, 1, NULL);
    TU_STATUS(embt_writer_table_begin(w, &ts), EMBT_EINVAL);
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    vs.name = "other";
    TU_STATUS(embt_writer_vocab_begin(w, &vs), EMBT_EINVAL);
    TU_STATUS(embt_writer_commit(w), EMBT_EINVAL);
    embt_writer_free(w);
    cr_assert_eq(tu_count_entries(), 0);
}

/* ---- table errors ---- */

Test(writer, fewer_rows_than_declared_is_einval_at_table_end_and_more_at_append, .init = tu_setup,
     .fini = tu_teardown)
{
    embt_writer *w = open_writer(tu_path("rows.embt"));
    float rows[3 * 4] = {0};
    embt_table_spec ts = table_spec("t", 3, 4, NULL);
    TU_OK(embt_writer_table_begin(w, &ts));
    TU_OK(embt_writer_table_append_f32(w, rows, 2));
    TU_STATUS(embt_writer_table_append_f32(w, rows, 2), EMBT_EINVAL);
    TU_STATUS(embt_writer_table_end(w), EMBT_EINVAL);
    embt_writer_free(w);
    cr_assert_eq(tu_count_entries(), 0);
}

struct bad_spec {
    embt_dtype dtype;
    unsigned rank;
    uint64_t rows, cols;
    char name[8];
    unsigned flags;
    embt_status want;
};

ParameterizedTestParameters(writer, a_bad_table_spec_is_rejected_at_begin)
{
    static struct bad_spec cases[] = {
        {(embt_dtype)0, 2, 1, 1, "t", 0, EMBT_EINVAL},                 /* unknown dtype */
        {(embt_dtype)9, 2, 1, 1, "t", 0, EMBT_EINVAL},                 /* unknown dtype */
        {EMBT_DTYPE_F32, 3, 1, 1, "t", 0, EMBT_EINVAL},                /* rank 3 */
        {EMBT_DTYPE_F32, 0, 1, 1, "t", 0, EMBT_EINVAL},                /* rank 0 */
        {EMBT_DTYPE_F32, 1, 4, 2, "t", 0, EMBT_EINVAL},                /* rank 1 with cols 2 */
        {EMBT_DTYPE_F32, 2, 1, 0, "t", 0, EMBT_EINVAL},                /* cols 0 */
        {EMBT_DTYPE_F32, 2, 1, 1, "", 0, EMBT_EINVAL},                 /* empty name */
        {EMBT_DTYPE_F32, 2, 1, 1, "\xff", 0, EMBT_EINVAL},             /* name not UTF-8 */
        {EMBT_DTYPE_F32, 2, 1, 1, "t", 0x80, EMBT_EINVAL},             /* unknown flag */
        {EMBT_DTYPE_F32, 2, (1ull << 40) + 1, 1, "t", 0, EMBT_ELIMIT}, /* rows beyond 2^40 */
        {EMBT_DTYPE_F32, 2, 1, 0x80000000ull, "t", 0, EMBT_ELIMIT},    /* cols beyond 2^31-1 */
    };
    return cr_make_param_array(struct bad_spec, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct bad_spec *k, writer, a_bad_table_spec_is_rejected_at_begin,
                  .init = tu_setup, .fini = tu_teardown)
{
    embt_writer *w = open_writer(tu_path("spec.embt"));
    embt_table_spec ts = table_spec(k->name, k->rows, k->cols, NULL);
    ts.dtype = k->dtype;
    ts.rank = k->rank;
    ts.flags = k->flags;
    TU_STATUS(embt_writer_table_begin(w, &ts), k->want);
    /* the writer is still usable */
    float x = 2.0f;
    ts = table_spec("fine", 1, 1, NULL);
    TU_OK(embt_writer_add_table_f32(w, &ts, &x));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    open_and_verify(tu_path("spec.embt"));
}

Test(writer, non_finite_values_are_einval_for_integer_dtypes_and_kept_for_floats, .init = tu_setup,
     .fini = tu_teardown)
{
    static const embt_dtype ints[] = {EMBT_DTYPE_I8, EMBT_DTYPE_U8, EMBT_DTYPE_I32, EMBT_DTYPE_I64};
    float bad[2] = {1.0f, NAN};
    embt_writer *w = open_writer(tu_path("nan.embt"));
    for (size_t i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof name, "i%zu", i);
        embt_table_spec ts = table_spec(name, 1, 2, NULL);
        ts.dtype = ints[i];
        TU_OK(embt_writer_table_begin(w, &ts));
        TU_STATUS(embt_writer_table_append_f32(w, bad, 1), EMBT_EINVAL);
        float good[2] = {1.0f, 2.0f};
        TU_OK(embt_writer_table_append_f32(w, good, 1));
        TU_OK(embt_writer_table_end(w));
    }
    float special[3] = {NAN, INFINITY, -INFINITY};
    embt_table_spec ts = table_spec("f", 1, 3, NULL);
    TU_OK(embt_writer_add_table_f32(w, &ts, special));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, tu_path("nan.embt"), NULL));
    TU_OK(embt_file_verify(f));
    const embt_table *t = NULL;
    TU_OK(embt_file_table(&t, f, "f"));
    const float *row = embt_table_row_f32(t, 0);
    cr_assert(isnan(row[0]) && row[1] == INFINITY && row[2] == -INFINITY);
    embt_file_close(f);
}

Test(writer, integer_dtypes_round_to_nearest_and_saturate, .init = tu_setup, .fini = tu_teardown)
{
    float in[6] = {-1000.0f, -1.5f, 0.4f, 2.5f, 254.6f, 1000.0f};
    embt_writer *w = open_writer(tu_path("sat.embt"));
    embt_table_spec ts = table_spec("u8", 1, 6, NULL);
    ts.dtype = EMBT_DTYPE_U8;
    TU_OK(embt_writer_add_table_f32(w, &ts, in));
    ts = table_spec("i32", 1, 2, NULL);
    ts.dtype = EMBT_DTYPE_I32;
    float big[2] = {3e9f, -3e9f};
    TU_OK(embt_writer_add_table_f32(w, &ts, big));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, tu_path("sat.embt"), NULL));
    const embt_table *t = NULL;
    TU_OK(embt_file_table(&t, f, "u8"));
    const uint8_t *u = embt_table_data(t);
    /* round to nearest (ties: 2.5 may go to 2 or 3 depending on the tie rule, so it is not checked) */
    cr_assert_eq(u[0], 0);
    cr_assert_eq(u[1], 0);
    cr_assert_eq(u[2], 0);
    cr_assert_eq(u[4], 255);
    cr_assert_eq(u[5], 255);
    TU_OK(embt_file_table(&t, f, "i32"));
    const uint8_t *p = embt_table_data(t);
    int32_t v0 = (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
    int32_t v1 = (int32_t)((uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                           (uint32_t)p[7] << 24);
    cr_assert_eq(v0, INT32_MAX);
    cr_assert_eq(v1, INT32_MIN);
    embt_file_close(f);
}

/* ---- commit errors leave the destination alone ---- */

static void write_small(const char *path)
{
    tu_sample s = {10, 4, EMBT_DTYPE_F32, 0, 0, "old: file\n"};
    TU_OK(tu_write_sample(path, &s));
}

Test(writer, a_tied_table_whose_rows_differ_from_the_vocabulary_fails_at_commit_and_writes_nothing,
     .init = tu_setup, .fini = tu_teardown)
{
    const char *path = tu_path("tied.embt");
    embt_writer *w = open_writer(path);
    begin_vocab(w, "words");
    TU_OK(embt_writer_vocab_add(w, "a", 1, 0, NULL));
    TU_OK(embt_writer_vocab_add(w, "b", 1, 0, NULL));
    TU_OK(embt_writer_vocab_end(w));
    float x[3] = {1, 2, 3};
    embt_table_spec ts = table_spec("embedding", 3, 1, "words");
    TU_OK(embt_writer_add_table_f32(w, &ts, x));
    cr_assert_neq(embt_writer_commit(w), EMBT_OK);
    cr_assert_eq(embt_error_last()->code, EMBT_EINVAL);
    embt_writer_free(w);
    cr_assert_not(tu_exists(path), "a failed commit created the destination");
    cr_assert_eq(tu_count_entries(), 0, "a failed commit left a temp file");
}

Test(writer, a_table_tied_to_an_unknown_vocabulary_fails_at_commit, .init = tu_setup,
     .fini = tu_teardown)
{
    const char *path = tu_path("unknown.embt");
    embt_writer *w = open_writer(path);
    float x[2] = {1, 2};
    embt_table_spec ts = table_spec("embedding", 2, 1, "nowhere");
    embt_status st = embt_writer_add_table_f32(w, &ts, x);
    if (st == EMBT_OK)
        TU_STATUS(embt_writer_commit(w), EMBT_EINVAL);
    else
        cr_assert_eq(st, EMBT_EINVAL);
    embt_writer_free(w);
    cr_assert_eq(tu_count_entries(), 0);
}

Test(writer, an_existing_destination_survives_a_failed_commit, .init = tu_setup,
     .fini = tu_teardown)
{
    const char *path = tu_path("keep.embt"), *copy = tu_path("copy.embt");
    write_small(path);
    size_t n;
    uint8_t *before = tu_read_file(path, &n);
    tu_write_file(copy, before, n);
    free(before);

    embt_writer *w = open_writer(path);
    begin_vocab(w, "words");
    TU_OK(embt_writer_vocab_add(w, "a", 1, 0, NULL));
    TU_OK(embt_writer_vocab_end(w));
    float x[2] = {1, 2};
    embt_table_spec ts = table_spec("embedding", 2, 1, "words");
    TU_OK(embt_writer_add_table_f32(w, &ts, x));
    cr_assert_neq(embt_writer_commit(w), EMBT_OK);
    embt_writer_free(w);
    cr_assert(tu_same_file(path, copy), "the old destination changed");
    cr_assert_eq(tu_count_temp(tu_dir, "keep.embt"), 0);
    open_and_verify(path);
}

/* rename() would replace the node itself: as root, `embt convert in.txt /dev/null` made /dev/null a
 * regular file. Directories and FIFOs stand for the other kinds (devices need mknod). */
Test(writer, a_destination_that_is_not_a_regular_file_is_einval_and_left_alone, .init = tu_setup,
     .fini = tu_teardown)
{
    const char *dir = tu_path("dir.embt");
    char fifo[PATH_MAX];
    snprintf(fifo, sizeof fifo, "%s", tu_path("fifo.embt"));
    cr_assert_eq(mkdir(dir, 0755), 0);
    cr_assert_eq(mkfifo(fifo, 0644), 0);
    const char *paths[] = {dir, fifo};
    for (int i = 0; i < 2; i++) {
        embt_writer *w = (embt_writer *)1;
        TU_STATUS(embt_writer_open(&w, paths[i], NULL), EMBT_EINVAL);
        cr_assert_null(w);
        cr_assert_str_eq(embt_error_last()->section, "output");
    }
    struct stat st;
    cr_assert(stat(dir, &st) == 0 && S_ISDIR(st.st_mode));
    cr_assert(stat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));
    cr_assert_eq(tu_count_entries(), 2, "a temporary file was left");
}

Test(writer, a_replaced_file_keeps_its_permission_bits, .init = tu_setup, .fini = tu_teardown)
{
    const char *path = tu_path("private.embt");
    write_small(path);
    cr_assert_eq(chmod(path, 0600), 0);
    write_small(path);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", (unsigned)(st.st_mode & 07777));
    open_and_verify(path);
}

Test(writer, a_symbolic_link_is_followed_and_stays_a_link, .init = tu_setup, .fini = tu_teardown)
{
    char target[PATH_MAX], link[PATH_MAX];
    snprintf(target, sizeof target, "%s", tu_path("target.embt"));
    snprintf(link, sizeof link, "%s", tu_path("link.embt"));
    cr_assert_eq(symlink("target.embt", link), 0);
    embt_writer *w = (embt_writer *)1;
    TU_STATUS(embt_writer_open(&w, link, NULL), EMBT_EINVAL); /* dangling: nothing to follow */
    cr_assert_null(w);
    write_small(target);
    struct stat before, after;
    cr_assert_eq(stat(target, &before), 0);
    write_small(link);
    cr_assert_eq(lstat(link, &after), 0);
    cr_assert(S_ISLNK(after.st_mode), "the link was replaced by a file");
    cr_assert_eq(stat(target, &after), 0);
    cr_assert_neq(after.st_ino, before.st_ino, "the target was not replaced");
    open_and_verify(target);
    cr_assert_eq(tu_count_entries(), 2);
}

Test(writer, a_destination_in_a_missing_directory_is_eio, .init = tu_setup, .fini = tu_teardown)
{
    embt_writer *w = (embt_writer *)1;
    TU_STATUS(embt_writer_open(&w, tu_path("no/such/dir/x.embt"), NULL), EMBT_EIO);
    cr_assert_null(w);
    cr_assert_eq(embt_error_last()->sys_errno, ENOENT);
}

/* ---- metadata ---- */

struct bad_yaml {
    char text[32];
    uint32_t line, column;
};

ParameterizedTestParameters(writer, metadata_that_is_not_a_yaml_mapping_is_eparse_with_its_position)
{
    static struct bad_yaml cases[] = {
        {"a: 1\n\tb: 2\n", 2, 1},    /* tab indentation */
        {"a: 1\n b: 2\n", 2, 3},     /* mapping value inside a scalar */
        {"a: b: c\n", 1, 5},         /* the same on line 1 */
        {"a: 1\nb: [2\n", 3, 1},     /* unclosed flow sequence */
        {"- a\n- b\n", 1, 1},        /* root is a sequence */
        {"hello\n", 1, 1},           /* root is a scalar */
        {"a: 1\na: 2\n", 2, 1},      /* duplicate key */
        {"a: 1\n---\nb: 2\n", 2, 1}, /* two documents */
    };
    return cr_make_param_array(struct bad_yaml, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct bad_yaml *k, writer,
                  metadata_that_is_not_a_yaml_mapping_is_eparse_with_its_position, .init = tu_setup,
                  .fini = tu_teardown)
{
    embt_writer *w = open_writer(tu_path("meta.embt"));
    TU_STATUS(embt_writer_set_metadata(w, k->text, strlen(k->text)), EMBT_EPARSE);
    cr_assert_eq(embt_error_last()->line, k->line);
    cr_assert_eq(embt_error_last()->column, k->column);
    embt_writer_free(w);
    cr_assert_eq(tu_count_entries(), 0);
}

Test(writer, empty_metadata_is_accepted, .init = tu_setup, .fini = tu_teardown)
{
    const char *path = tu_path("empty-meta.embt");
    embt_writer *w = open_writer(path);
    TU_OK(embt_writer_set_metadata(w, "", 0));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    open_and_verify(path);
}

/* ---- temp files ---- */

Test(writer, freeing_an_uncommitted_writer_removes_its_temp_file_at_every_stage, .init = tu_setup,
     .fini = tu_teardown)
{
    for (int stage = 0; stage < 5; stage++) {
        const char *path = tu_path("abandoned.embt");
        embt_writer *w = open_writer(path);
        if (stage >= 1) {
            begin_vocab(w, "words");
            TU_OK(embt_writer_vocab_add(w, "a", 1, 0, NULL));
        }
        if (stage >= 2)
            TU_OK(embt_writer_vocab_end(w));
        if (stage >= 3) {
            embt_table_spec ts = table_spec("t", 1000, 64, NULL);
            ts.flags = stage == 4 ? EMBT_TABLE_COMPRESS : 0;
            TU_OK(embt_writer_table_begin(w, &ts));
            float row[64] = {0};
            for (int r = 0; r < 500; r++)
                TU_OK(embt_writer_table_append_f32(w, row, 1));
        }
        cr_assert_eq(tu_count_temp(tu_dir, "abandoned.embt"), 1,
                     "stage %d: expected exactly one temp file while writing", stage);
        embt_writer_free(w);
        cr_assert_eq(tu_count_entries(), 0, "stage %d: files left after embt_writer_free", stage);
    }
}

/* What a signal handler calls: the temporary files of open writers go, the writer stays freeable. */
Test(writer, remove_temp_files_removes_the_temporary_files_of_open_writers, .init = tu_setup,
     .fini = tu_teardown)
{
    embt_writer *a = open_writer(tu_path("a.embt"));
    embt_writer *b = open_writer(tu_path("b.embt"));
    cr_assert_eq(tu_count_entries(), 2);
    embt_remove_temp_files();
    cr_assert_eq(tu_count_entries(), 0, "a temporary file is left");
    embt_writer_free(a);
    embt_writer_free(b);
    write_small(tu_path("c.embt")); /* a committed file is not registered any more */
    embt_remove_temp_files();
    cr_assert(tu_exists(tu_path("c.embt")));
}

Test(writer, a_committed_file_is_complete_has_mode_0666_less_umask_and_no_temp_file,
     .init = tu_setup, .fini = tu_teardown)
{
    mode_t old = umask(027);
    const char *path = tu_path("done.embt");
    tu_sample s = {1000, 32, EMBT_DTYPE_F32, EMBT_VOCAB_COUNTS, EMBT_TABLE_NORMS, "k: v\n"};
    TU_OK(tu_write_sample(path, &s));
    umask(old);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0640, "mode %o", (unsigned)(st.st_mode & 0777));
    cr_assert_eq(tu_count_entries(), 1);
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, NULL));
    cr_assert_eq(embt_file_size(f), (uint64_t)st.st_size);
    TU_OK(embt_file_verify(f));
    embt_file_close(f);
}

Test(writer, stale_temp_files_with_this_pid_do_not_block_a_write, .init = tu_setup,
     .fini = tu_teardown)
{
    char path[PATH_MAX]; /* tu_path's buffers rotate: keep a copy */
    snprintf(path, sizeof path, "%s", tu_path("stale.embt"));
    /* a previous process with our pid died leaving its temp files: the names the writer would try */
    for (int n = 0; n < 16; n++) {
        char name[64];
        snprintf(name, sizeof name, "stale.embt.tmp.%ld.%d", (long)getpid(), n);
        tu_write_file(tu_path(name), "junk", 4);
    }
    write_small(path);
    open_and_verify(path);
    cr_assert_eq(tu_count_temp(tu_dir, "stale.embt"), 16, "the stale files should be left alone");
    for (int n = 0; n < 16; n++) {
        char name[64];
        snprintf(name, sizeof name, "stale.embt.tmp.%ld.%d", (long)getpid(), n);
        size_t len;
        uint8_t *b = tu_read_file(tu_path(name), &len);
        cr_assert(len == 4 && memcmp(b, "junk", 4) == 0, "%s was overwritten", name);
        free(b);
    }
}

/* ---- SIGKILL at random moments ---- */

enum { BIG_ROWS = 20000, BIG_COLS = 100 };

/* The child: writes a large table row by row over `path`, then exits 0 (1 on failure). */
static void big_writer_child(const char *path)
{
    embt_writer *w = NULL;
    static float row[BIG_COLS];
    if (embt_writer_open(&w, path, NULL))
        _exit(1);
    embt_table_spec ts = table_spec("big", BIG_ROWS, BIG_COLS, NULL);
    if (embt_writer_table_begin(w, &ts))
        _exit(1);
    for (int r = 0; r < BIG_ROWS; r++) {
        for (int c = 0; c < BIG_COLS; c++)
            row[c] = (float)(r * BIG_COLS + c);
        if (embt_writer_table_append_f32(w, row, 1))
            _exit(1);
    }
    if (embt_writer_table_end(w) || embt_writer_set_metadata(w, "new: file\n", 10) ||
        embt_writer_commit(w))
        _exit(1);
    embt_writer_free(w);
    _exit(0);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool is_new_big_file(const char *path)
{
    embt_file *f = NULL;
    if (embt_file_open(&f, path, NULL))
        return false;
    const embt_table *t = NULL;
    bool ok = embt_file_verify(f) == EMBT_OK && embt_file_table(&t, f, "big") == EMBT_OK &&
              embt_table_rows(t) == BIG_ROWS &&
              embt_table_row_f32(t, BIG_ROWS - 1)[BIG_COLS - 1] == (float)(BIG_ROWS * BIG_COLS - 1);
    embt_file_close(f);
    return ok;
}

Test(writer, a_writer_killed_at_any_moment_leaves_the_old_destination_intact, .init = tu_setup,
     .fini = tu_teardown, .timeout = 120)
{
    const char *path = tu_path("victim.embt"), *orig = tu_path("original.bin");
    write_small(path);
    size_t n_old;
    uint8_t *old = tu_read_file(path, &n_old);
    tu_write_file(orig, old, n_old);

    /* calibrate: how long a complete write takes */
    double t0 = now_s();
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        big_writer_child(path);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    double full = now_s() - t0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the calibration writer failed");
    cr_assert(is_new_big_file(path));
    write_small(path);
    cr_assert(tu_same_file(path, orig), "rewriting the old content gave other bytes");

    pid_t killed[128];
    int n_killed = 0, n_finished = 0;
    uint64_t seed = (uint64_t)getpid();
    for (int attempt = 0; attempt < 128 && n_killed < 32; attempt++) {
        /* delays spread over [0, full]: before open, while streaming, during commit */
        useconds_t delay = (useconds_t)(tu_randf(&seed, 0.0f, 1.0f) * full * 1e6);
        pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0)
            big_writer_child(path);
        usleep(delay);
        kill(pid, SIGKILL);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        if (WIFSIGNALED(status)) {
            killed[n_killed++] = pid;
            cr_assert(tu_same_file(path, orig) || is_new_big_file(path),
                      "kill after %u us: the destination is neither the old nor the new file",
                      (unsigned)delay);
            if (!tu_same_file(path, orig)) {
                /* killed after the rename: fine, the new file is complete; restore the old one */
                write_small(path);
            }
            open_and_verify(path);
        } else {
            cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
            cr_assert(is_new_big_file(path));
            n_finished++;
            write_small(path);
        }
        cr_assert(tu_same_file(path, orig));
    }
    cr_log_info("full write %.3f s; %d writers killed, %d finished first", full, n_killed,
                n_finished);
    cr_assert_geq(n_killed, 30, "only %d kills landed while writing", n_killed);

    /* the survivors of killed writers are named <path>.tmp.<pid>.<n> after a killed pid */
    DIR *d = opendir(tu_dir);
    cr_assert_not_null(d);
    size_t strays = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "victim.embt.tmp.", 16) != 0)
            continue;
        strays++;
        char *end;
        long p = strtol(e->d_name + 16, &end, 10);
        cr_assert_eq(*end, '.', "bad temp name %s", e->d_name);
        char *end2;
        strtol(end + 1, &end2, 10);
        cr_assert(end2 > end + 1 && *end2 == '\0', "bad temp name %s", e->d_name);
        bool known = false;
        for (int i = 0; i < n_killed; i++)
            known |= killed[i] == (pid_t)p;
        cr_assert(known, "temp file %s is not from a killed writer", e->d_name);
    }
    closedir(d);
    cr_log_info("%zu stray temp files", strays);

    /* they never prevent the next write */
    pid = fork();
    if (pid == 0)
        big_writer_child(path);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_assert(is_new_big_file(path));
    free(old);
}
