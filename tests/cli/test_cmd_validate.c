/* test_cmd_validate.c: `embt validate` run in-process: `FILE: ok`, --quiet, the error line and the
 * JSON record of an invalid file (compared with the library's own error record), exit codes 0/1/2. */
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

static int run_validate(int argc, char **argv)
{
    int rc = cmd_validate(argc, argv);
    fflush(stdout);
    fflush(stderr);
    return rc;
}

static const char *make_valid(const char *name)
{
    const char *path = tu_path(name);
    tu_sample s = {4, 3, EMBT_DTYPE_F32, 0, 0, "source: test\n"};
    TU_OK(tu_write_sample(path, &s));
    return path;
}

/* A valid file with one byte of the header changed: the header CRC no longer matches (rule 4). */
static const char *make_bad_header(const char *name)
{
    const char *path = make_valid(name);
    size_t len = 0;
    uint8_t *bytes = tu_read_file(path, &len);
    bytes[60] ^= 0x01; /* a reserved header byte */
    tu_write_file(path, bytes, len);
    free(bytes);
    return path;
}

/* The error record the library gives for `path` with full verification. */
static embt_error record_of(const char *path)
{
    embt_open_options opts = EMBT_OPEN_OPTIONS_INIT;
    opts.flags = EMBT_OPEN_VERIFY;
    embt_file *file = NULL;
    embt_status st = embt_file_open(&file, path, &opts);
    cr_assert_neq(st, EMBT_OK, "%s should be invalid", path);
    return *embt_error_last();
}

Test(validate, valid_file_prints_ok_and_exits_0, .init = setup, .fini = tu_teardown)
{
    const char *path = make_valid("good.embt");
    char *argv[] = {"validate", (char *)path, NULL};
    cr_assert_eq(run_validate(2, argv), 0);
    char want[1024];
    snprintf(want, sizeof want, "%s: ok\n", path);
    cr_assert_stdout_eq_str(want);
    cr_assert_stderr_eq_str("");
}

Test(validate, quiet_prints_nothing_for_valid_files, .init = setup, .fini = tu_teardown)
{
    const char *a = make_valid("a.embt");
    const char *b = make_valid("b.embt");
    char *argv[] = {"validate", "-q", (char *)a, (char *)b, NULL};
    cr_assert_eq(run_validate(4, argv), 0);
    cr_assert_stdout_eq_str("");
    cr_assert_stderr_eq_str("");
}

Test(validate, invalid_file_exits_1_with_section_offset_and_rule_on_stderr, .init = setup,
     .fini = tu_teardown)
{
    const char *path = make_bad_header("bad.embt");
    embt_error e = record_of(path);
    cr_assert_eq(e.code, EMBT_ECORRUPT);
    cr_assert_eq(e.rule, 4);
    char *argv[] = {"validate", (char *)path, NULL};
    cr_assert_eq(run_validate(2, argv), 1);
    cr_assert_stdout_eq_str("");
    char want[1024];
    if (e.offset != EMBT_NO_OFFSET)
        snprintf(want, sizeof want, "embt validate: %s: offset 0x%llx (%s): rule %u: %s\n", path,
                 (unsigned long long)e.offset, e.section, (unsigned)e.rule, e.message);
    else
        snprintf(want, sizeof want, "embt validate: %s: %s: rule %u: %s\n", path, e.section,
                 (unsigned)e.rule, e.message);
    cr_assert_stderr_eq_str(want);
}

Test(validate, json_prints_one_record_per_file, .init = setup, .fini = tu_teardown)
{
    const char *good = make_valid("good.embt");
    const char *bad = make_bad_header("bad.embt");
    embt_error e = record_of(bad);
    char *argv[] = {"validate", "--format=json", (char *)good, (char *)bad, NULL};
    cr_assert_eq(run_validate(4, argv), 1);
    char want[2048], offset[32] = "null";
    if (e.offset != EMBT_NO_OFFSET)
        snprintf(offset, sizeof offset, "%llu", (unsigned long long)e.offset);
    snprintf(
        want, sizeof want,
        "{\"file\":\"%s\",\"valid\":true,\"status\":\"EMBT_OK\",\"rule\":null,\"offset\":null,"
        "\"section\":null,\"message\":null}\n"
        "{\"file\":\"%s\",\"valid\":false,\"status\":\"EMBT_ECORRUPT\",\"rule\":4,\"offset\":%s,"
        "\"section\":\"%s\",\"message\":\"%s\"}\n",
        good, bad, offset, e.section, e.message);
    cr_assert_stdout_eq_str(want);
    cr_assert_stderr_eq_str("");
}

Test(validate, unreadable_file_is_reported_as_eio_in_json, .init = setup, .fini = tu_teardown)
{
    const char *path = tu_path("absent.embt");
    char *argv[] = {"validate", "--format", "json", (char *)path, NULL};
    cr_assert_eq(run_validate(4, argv), 1);
    FILE *out = cr_get_redirected_stdout();
    char line[1024], prefix[1024];
    cr_assert_not_null(fgets(line, sizeof line, out));
    snprintf(
        prefix, sizeof prefix,
        "{\"file\":\"%s\",\"valid\":false,\"status\":\"EMBT_EIO\",\"rule\":null,\"offset\":null,",
        path);
    cr_assert_eq(strncmp(line, prefix, strlen(prefix)), 0, "%s", line);
}

Test(validate, not_an_embt_file_is_eformat, .init = setup, .fini = tu_teardown)
{
    const char *path = tu_path("junk.embt");
    tu_write_file(path, "hello, world\n", 13);
    char *argv[] = {"validate", "--format=json", (char *)path, NULL};
    cr_assert_eq(run_validate(3, argv), 1);
    FILE *out = cr_get_redirected_stdout();
    char line[1024];
    cr_assert_not_null(fgets(line, sizeof line, out));
    cr_assert(strstr(line, "\"status\":\"EMBT_EFORMAT\",\"rule\":1,") != NULL, "%s", line);
}

Test(validate, usage_errors_exit_2_with_stdout_empty, .init = setup, .fini = tu_teardown)
{
    char *none[] = {"validate", NULL};
    cr_assert_eq(run_validate(1, none), 2);
    char *fmt[] = {"validate", "--format=yaml", "x.embt", NULL};
    cr_assert_eq(run_validate(3, fmt), 2);
    char *bad[] = {"validate", "-z", "x.embt", NULL};
    cr_assert_eq(run_validate(3, bad), 2);
    cr_assert_stdout_eq_str("");
}

Test(validate, help_exits_0, .init = setup, .fini = tu_teardown)
{
    char *argv[] = {"validate", "-h", NULL};
    cr_assert_eq(run_validate(2, argv), 0);
    cr_assert_stderr_eq_str("");
}
