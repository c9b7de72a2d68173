/* test_cmd_info.c: `embt info` run in-process on files made with the writer: exact YAML and JSON
 * output, exit codes 0/1/2, and nothing on stdout when the command fails. */
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

static const char sample_meta[] = "source: test\ntraining:\n  lr: 0.025\n  window: '5'\n";

static const char *make_sample(void)
{
    const char *path = tu_path("m.embt");
    tu_sample s = {3, 2, EMBT_DTYPE_F32, 0, 0, sample_meta};
    TU_OK(tu_write_sample(path, &s));
    return path;
}

static int run_info(int argc, char **argv)
{
    int rc = cmd_info(argc, argv);
    fflush(stdout);
    fflush(stderr);
    return rc;
}

/* The `sections:` entries the file should show, from the library's own view of the directory. */
static void put_sections(FILE *f, const embt_file *file, bool json)
{
    for (size_t i = 0; i < embt_file_section_count(file); i++) {
        embt_section_info s;
        TU_OK(embt_file_section(&s, file, i));
        char link[16] = "null";
        if (s.link != EMBT_NONE_ID)
            snprintf(link, sizeof link, "%u", (unsigned)s.link);
        const char *type = embt_section_type_name(s.type);
        bool required = s.flags & 1;
        if (json)
            fprintf(f,
                    "%s{\"type\":\"%s\",\"type_id\":%u,\"name\":\"%.*s\",\"offset\":%llu,"
                    "\"stored_length\":%llu,\"decoded_length\":%llu,\"codec\":\"none\","
                    "\"filter\":\"none\",\"link\":%s,\"required\":%s}",
                    i ? "," : "", type, (unsigned)s.type, (int)s.name_length, s.name,
                    (unsigned long long)s.offset, (unsigned long long)s.stored_length,
                    (unsigned long long)s.decoded_length, link, required ? "true" : "false");
        else
            fprintf(f,
                    "- type: %s\n  type_id: %u\n  name: %s%.*s%s\n  offset: %llu\n"
                    "  stored_length: %llu\n  decoded_length: %llu\n  codec: none\n"
                    "  filter: none\n  link: %s\n  required: %s\n",
                    type, (unsigned)s.type, s.name_length ? "" : "''", (int)s.name_length, s.name,
                    "", (unsigned long long)s.offset, (unsigned long long)s.stored_length,
                    (unsigned long long)s.decoded_length, link, required ? "true" : "false");
    }
}

static char *expected_output(const char *path, bool json)
{
    embt_file *file = NULL;
    TU_OK(embt_file_open(&file, path, NULL));
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    unsigned long long size = embt_file_size(file);
    if (json) {
        fprintf(f,
                "{\"file\":\"%s\",\"format_version\":\"1.0\",\"size\":%llu,\"alignment\":64,"
                "\"vocabularies\":[{\"name\":\"words\",\"size\":3,\"unk_id\":null,\"pad_id\":null,"
                "\"bos_id\":null,\"eos_id\":null,\"has_counts\":false,\"has_index\":true}],"
                "\"tables\":[{\"name\":\"embedding\",\"dtype\":\"f32\",\"rank\":2,\"shape\":[3,2],"
                "\"vocab\":\"words\",\"compressed\":false,\"has_norms\":false}],\"sections\":[",
                path, size);
        put_sections(f, file, true);
        fputs("],\"metadata\":{\"source\":\"test\",\"training\":{\"lr\":\"0.025\",\"window\":\"5\"}"
              "}}\n",
              f);
    } else {
        fprintf(f,
                "file: %s\nformat_version: '1.0'\nsize: %llu\nalignment: 64\nvocabularies:\n"
                "- name: words\n  size: 3\n  unk_id: null\n  pad_id: null\n  bos_id: null\n"
                "  eos_id: null\n  has_counts: false\n  has_index: true\ntables:\n"
                "- name: embedding\n  dtype: f32\n  rank: 2\n  shape: [3, 2]\n  vocab: words\n"
                "  compressed: false\n  has_norms: false\nsections:\n",
                path, size);
        put_sections(f, file, false);
        fputs("metadata:\n  source: test\n  training:\n    lr: 0.025\n    window: '5'\n", f);
    }
    fclose(f);
    embt_file_close(file);
    return text;
}

Test(info, prints_the_file_as_yaml_by_default, .init = setup, .fini = tu_teardown)
{
    const char *path = make_sample();
    char *want = expected_output(path, false);
    char *argv[] = {"info", (char *)path, NULL};
    cr_assert_eq(run_info(2, argv), 0);
    cr_assert_stdout_eq_str(want);
    cr_assert_stderr_eq_str("");
    free(want);
}

Test(info, prints_one_json_object_with_the_same_fields, .init = setup, .fini = tu_teardown)
{
    const char *path = make_sample();
    char *want = expected_output(path, true);
    char *argv[] = {"info", "--format=json", (char *)path, NULL};
    cr_assert_eq(run_info(3, argv), 0);
    cr_assert_stdout_eq_str(want);
    free(want);
}

Test(info, runs_twice_in_one_process, .init = setup, .fini = tu_teardown)
{
    const char *path = make_sample();
    char *argv1[] = {"info", "--format", "json", (char *)path, NULL};
    cr_assert_eq(cmd_info(4, argv1), 0);
    char *argv2[] = {"info", "--format=bogus", (char *)path, NULL};
    cr_assert_eq(run_info(3, argv2), 2);
}

Test(info, quotes_names_a_yaml_reader_would_take_for_other_types, .init = setup,
     .fini = tu_teardown)
{
    const char *path = tu_path("q.embt");
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, path, NULL));
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = "true";
    ts.rank = 1;
    ts.rows = 2;
    ts.cols = 1;
    float v[2] = {1, 2};
    TU_OK(embt_writer_add_table_f32(w, &ts, v));
    ts.name = "a: b";
    TU_OK(embt_writer_add_table_f32(w, &ts, v));
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    char *argv[] = {"info", (char *)path, NULL};
    cr_assert_eq(run_info(2, argv), 0);
    FILE *out = cr_get_redirected_stdout();
    char line[256];
    int seen = 0;
    while (fgets(line, sizeof line, out)) {
        if (strcmp(line, "- name: 'true'\n") == 0 || strcmp(line, "- name: 'a: b'\n") == 0)
            seen++;
        if (strcmp(line, "  shape: [2]\n") == 0 || strcmp(line, "  vocab: null\n") == 0)
            seen++;
    }
    cr_assert_eq(seen, 6, "saw %d of the expected lines", seen);
}

Test(info, file_without_metadata_shows_an_empty_mapping, .init = setup, .fini = tu_teardown)
{
    const char *path = tu_path("n.embt");
    tu_sample s = {2, 1, EMBT_DTYPE_F16, EMBT_VOCAB_COUNTS, EMBT_TABLE_NORMS, NULL};
    TU_OK(tu_write_sample(path, &s));
    char *argv[] = {"info", "--format=json", (char *)path, NULL};
    cr_assert_eq(run_info(3, argv), 0);
    FILE *out = cr_get_redirected_stdout();
    char buf[4096] = {0};
    fread(buf, 1, sizeof buf - 1, out);
    cr_assert(strstr(buf, "\"metadata\":{}}\n") != NULL, "%s", buf);
    cr_assert(strstr(buf, "\"has_counts\":true") != NULL, "%s", buf);
    cr_assert(strstr(buf, "\"has_norms\":true") != NULL, "%s", buf);
    cr_assert(strstr(buf, "\"dtype\":\"f16\"") != NULL, "%s", buf);
}

Test(info, missing_file_exits_1_with_one_error_line_and_no_output, .init = setup,
     .fini = tu_teardown)
{
    const char *path = tu_path("absent.embt");
    char *argv[] = {"info", (char *)path, NULL};
    cr_assert_eq(run_info(2, argv), 1);
    cr_assert_stdout_eq_str("");
    FILE *err = cr_get_redirected_stderr();
    char line[1024], prefix[1024];
    cr_assert_not_null(fgets(line, sizeof line, err));
    snprintf(prefix, sizeof prefix, "embt info: %s: ", path);
    cr_assert_eq(strncmp(line, prefix, strlen(prefix)), 0, "%s", line);
    cr_assert_null(fgets(line, sizeof line, err), "a second line: %s", line);
}

Test(info, not_an_embt_file_exits_1, .init = setup, .fini = tu_teardown)
{
    const char *path = tu_path("text.embt");
    char junk[256];
    memset(junk, 'x', sizeof junk);
    tu_write_file(path, junk, sizeof junk);
    char *argv[] = {"info", (char *)path, NULL};
    cr_assert_eq(run_info(2, argv), 1);
    cr_assert_stdout_eq_str("");
}

Test(info, usage_errors_exit_2_with_stdout_empty, .init = setup, .fini = tu_teardown)
{
    char *none[] = {"info", NULL};
    cr_assert_eq(run_info(1, none), 2);
    char *two[] = {"info", "a", "b", NULL};
    cr_assert_eq(run_info(3, two), 2);
    char *bad[] = {"info", "--bogus", "a", NULL};
    cr_assert_eq(run_info(3, bad), 2);
    char *fmt[] = {"info", "--format=text", "a", NULL};
    cr_assert_eq(run_info(3, fmt), 2);
    char *noarg[] = {"info", "a", "--format", NULL};
    cr_assert_eq(run_info(3, noarg), 2);
    cr_assert_stdout_eq_str("");
}

Test(info, help_prints_usage_on_stdout_and_exits_0, .init = setup, .fini = tu_teardown)
{
    char *argv[] = {"info", "--help", NULL};
    cr_assert_eq(run_info(2, argv), 0);
    FILE *out = cr_get_redirected_stdout();
    char line[256];
    cr_assert_not_null(fgets(line, sizeof line, out));
    cr_assert_str_eq(line, "usage: embt info [--format=yaml|json] FILE\n");
    cr_assert_stderr_eq_str("");
}
