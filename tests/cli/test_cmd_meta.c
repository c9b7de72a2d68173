/* test_cmd_meta.c: `embt meta` run in-process: printing (YAML and JSON), get, set with the atomic
 * rewrite (other sections copied byte for byte, input untouched on failure), exit codes 0/1/2. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>

#include "cmd.h"
#include "test_util.h"

static void setup(void)
{
    tu_setup();
    cr_redirect_stdout();
    cr_redirect_stderr();
}

static int run_meta(int argc, char **argv)
{
    int rc = cmd_meta(argc, argv);
    fflush(stdout);
    fflush(stderr);
    return rc;
}

static const char *make_sample(const char *metadata)
{
    const char *path = tu_path("m.embt");
    tu_sample s = {5, 3, EMBT_DTYPE_F32, EMBT_VOCAB_COUNTS, EMBT_TABLE_NORMS, metadata};
    TU_OK(tu_write_sample(path, &s));
    return path;
}

/* The metadata text of the file at `path`, malloc'd and NUL-terminated. */
static char *metadata_of(const char *path)
{
    embt_file *file = NULL;
    TU_OK(embt_file_open(&file, path, NULL));
    size_t len = 0;
    const char *text = embt_file_metadata(file, &len);
    char *copy = strndup(text ? text : "", len);
    embt_file_close(file);
    return copy;
}

Test(meta, prints_the_document_in_block_style, .init = setup, .fini = tu_teardown)
{
    const char *path = make_sample("source: test\ntraining: {lr: 0.025, window: '5'}\n");
    char *argv[] = {"meta", (char *)path, NULL};
    cr_assert_eq(run_meta(2, argv), 0);
    cr_assert_stdout_eq_str("source: test\ntraining:\n  lr: 0.025\n  window: '5'\n");
    cr_assert_stderr_eq_str("");
}

Test(meta, prints_the_document_as_json, .init = setup, .fini = tu_teardown)
{
    const char *path = make_sample("source: test\ntags: [a, \"b\\\"c\"]\nnested: {x: 1}\n");
    char *argv[] = {"meta", "--format=json", (char *)path, NULL};
    cr_assert_eq(run_meta(3, argv), 0);
    cr_assert_stdout_eq_str(
        "{\"source\":\"test\",\"tags\":[\"a\",\"b\\\"c\"],\"nested\":{\"x\":\"1\"}}\n");
}

Test(meta, file_without_metadata_prints_nothing, .init = setup, .fini = tu_teardown)
{
    const char *path = make_sample(NULL);
    char *argv[] = {"meta", (char *)path, NULL};
    cr_assert_eq(run_meta(2, argv), 0);
    char *json[] = {"meta", "--format=json", (char *)path, NULL};
    cr_assert_eq(run_meta(3, json), 0);
    /* the YAML run printed nothing; stdout can be read only once */
    cr_assert_stdout_eq_str("{}\n");
}

Test(meta, get_prints_the_scalar, .init = setup, .fini = tu_teardown)
{
    const char *path = make_sample("source: test\ntraining:\n  lr: 0.025\n");
    char *argv[] = {"meta", (char *)path, "get", "training.lr", NULL};
    cr_assert_eq(run_meta(4, argv), 0);
    cr_assert_stdout_eq_str("0.025\n");
    cr_assert_stderr_eq_str("");
}

Test(meta, get_of_an_absent_key_exits_1_with_key_not_found, .init = setup, .fini = tu_teardown)
{
    const char *path = make_sample("source: test\n");
    char *argv[] = {"meta", (char *)path, "get", "training.lr", NULL};
    cr_assert_eq(run_meta(4, argv), 1);
    cr_assert_stdout_eq_str("");
    char want[1024];
    snprintf(want, sizeof want, "embt meta: %s: key training.lr not found\n", path);
    cr_assert_stderr_eq_str(want);
}

Test(meta, set_rewrites_the_file_and_keeps_every_other_section, .init = setup, .fini = tu_teardown)
{
    const char *path = make_sample("source: test\ntraining:\n  lr: 0.025\n  epochs: 5\n");
    embt_file *before = NULL;
    TU_OK(embt_file_open(&before, path, NULL));
    const embt_table *tb = NULL;
    TU_OK(embt_file_table(&tb, before, "embedding"));
    size_t bytes = (size_t)(embt_table_rows(tb) * embt_table_cols(tb) * 4);
    float *data = malloc(bytes), *norms = malloc(embt_table_rows(tb) * 4);
    memcpy(data, embt_table_data(tb), bytes);
    memcpy(norms, embt_table_norms(tb), embt_table_rows(tb) * 4);
    embt_file_close(before);

    char *argv[] = {"meta", (char *)path, "set", "training.lr", "-0.5", NULL};
    cr_assert_eq(run_meta(5, argv), 0);
    char *argv2[] = {"meta", (char *)path, "set", "training.opt.name", "adam", NULL};
    cr_assert_eq(run_meta(5, argv2), 0);
    cr_assert_stdout_eq_str("");
    cr_assert_stderr_eq_str("");

    char *text = metadata_of(path);
    cr_assert_str_eq(text,
                     "source: test\ntraining:\n  lr: -0.5\n  epochs: 5\n  opt:\n    name: adam\n");
    free(text);

    embt_open_options opts = EMBT_OPEN_OPTIONS_INIT;
    opts.flags = EMBT_OPEN_VERIFY;
    embt_file *after = NULL;
    TU_OK(embt_file_open(&after, path, &opts));
    const embt_table *ta = NULL;
    TU_OK(embt_file_table(&ta, after, "embedding"));
    cr_assert_eq(memcmp(embt_table_data(ta), data, bytes), 0);
    cr_assert_not_null(embt_table_norms(ta));
    cr_assert_eq(memcmp(embt_table_norms(ta), norms, embt_table_rows(ta) * 4), 0);
    const embt_vocab *v = NULL;
    TU_OK(embt_file_vocab(&v, after, "words"));
    cr_assert_eq(embt_vocab_size(v), 5);
    cr_assert(embt_vocab_has_counts(v));
    embt_file_close(after);
    free(data);
    free(norms);
    cr_assert_eq(tu_count_temp(tu_dir, "m.embt"), 0);
}

Test(meta, set_on_a_file_without_metadata_adds_it, .init = setup, .fini = tu_teardown)
{
    const char *path = make_sample(NULL);
    char *argv[] = {"meta", (char *)path, "set", "source", "yes", NULL};
    cr_assert_eq(run_meta(5, argv), 0);
    char *get[] = {"meta", (char *)path, "get", "source", NULL};
    cr_assert_eq(run_meta(4, get), 0);
    cr_assert_stdout_eq_str("yes\n");
}

Test(meta, failed_set_leaves_the_file_untouched, .init = setup, .fini = tu_teardown)
{
    const char *path = make_sample("training:\n  lr: 0.025\n");
    const char *copy = tu_path("copy.embt");
    size_t len = 0;
    uint8_t *orig = tu_read_file(path, &len);
    tu_write_file(copy, orig, len);
    free(orig);
    char *argv[] = {"meta", (char *)path, "set", "training", "1", NULL};
    cr_assert_eq(run_meta(5, argv), 1);
    cr_assert_stdout_eq_str("");
    cr_assert(tu_same_file(path, copy));
    cr_assert_eq(tu_count_temp(tu_dir, "m.embt"), 0);
}

Test(meta, bad_metadata_in_the_file_exits_1_with_its_position, .init = setup, .fini = tu_teardown)
{
    /* the writer refuses bad YAML, so patch a valid document of the same length in place */
    const char *path = make_sample("a: 1\nb: 2\n");
    size_t len = 0;
    uint8_t *bytes = tu_read_file(path, &len);
    uint8_t *hit = NULL;
    for (size_t i = 0; !hit && i + 10 <= len; i++)
        if (memcmp(bytes + i, "a: 1\nb: 2\n", 10) == 0)
            hit = bytes + i;
    cr_assert_not_null(hit);
    hit[5] = 'a'; /* "a: 1\na: 2\n": duplicate key at line 2, column 1 */
    tu_write_file(path, bytes, len);
    free(bytes);
    char *argv[] = {"meta", (char *)path, NULL};
    cr_assert_eq(run_meta(2, argv), 1);
    cr_assert_stdout_eq_str("");
    FILE *err = cr_get_redirected_stderr();
    char line[1024], prefix[1024];
    cr_assert_not_null(fgets(line, sizeof line, err));
    snprintf(prefix, sizeof prefix, "embt meta: %s: metadata:2:1: ", path);
    cr_assert_eq(strncmp(line, prefix, strlen(prefix)), 0, "%s", line);
}

Test(meta, usage_errors_exit_2_with_stdout_empty, .init = setup, .fini = tu_teardown)
{
    char *none[] = {"meta", NULL};
    cr_assert_eq(run_meta(1, none), 2);
    char *action[] = {"meta", "f.embt", "drop", "k", NULL};
    cr_assert_eq(run_meta(4, action), 2);
    char *get[] = {"meta", "f.embt", "get", NULL};
    cr_assert_eq(run_meta(3, get), 2);
    char *set[] = {"meta", "f.embt", "set", "k", NULL};
    cr_assert_eq(run_meta(4, set), 2);
    char *fmt[] = {"meta", "--format=tsv", "f.embt", NULL};
    cr_assert_eq(run_meta(3, fmt), 2);
    cr_assert_stdout_eq_str("");
}

Test(meta, missing_file_exits_1, .init = setup, .fini = tu_teardown)
{
    char *argv[] = {"meta", (char *)tu_path("absent.embt"), "get", "a", NULL};
    cr_assert_eq(run_meta(4, argv), 1);
    cr_assert_stdout_eq_str("");
}
