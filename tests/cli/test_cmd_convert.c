/* test_cmd_convert.c: `embt convert`: exit codes, the shape of its messages, clean stdout, and no
 * output file when the conversion fails; in-process and through the real binary. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <embt/embt.h>

#include "cmd.h"

static char tmp_dir[64];
static char in_path[128];
static char out_path[128];

static void setup(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/embt-convert-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp_dir));
    snprintf(in_path, sizeof in_path, "%s/in.txt", tmp_dir);
    snprintf(out_path, sizeof out_path, "%s/out.embt", tmp_dir);
    cr_redirect_stdout();
    cr_redirect_stderr();
}

static void teardown(void)
{
    DIR *d = opendir(tmp_dir);
    if (!d)
        return;
    struct dirent *ent;
    char path[400];
    while ((ent = readdir(d)) != NULL) {
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", tmp_dir, ent->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(tmp_dir);
}

TestSuite(convert, .init = setup, .fini = teardown);

static void write_text(const char *text)
{
    FILE *f = fopen(in_path, "wb");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* Runs cmd_convert with the NULL-terminated arguments after "convert". */
static int run(const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"convert";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a != NULL && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    int rc = cmd_convert(argc, argv);
    fflush(stdout);
    fflush(stderr);
    return rc;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int files_in_tmp_dir(void)
{
    DIR *d = opendir(tmp_dir);
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL)
        if (strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

Test(convert, help_goes_to_stdout_with_exit_0)
{
    cr_assert_eq(run("--help", NULL), 0);
    cr_assert_stdout_neq_str("");
    cr_assert_stderr_eq_str("");
}

Test(convert, success_prints_nothing_and_writes_the_output)
{
    write_text("3 2\nfoo 1 2\nbar 3 4\nbaz 5 6\n");
    cr_assert_eq(run(in_path, out_path, NULL), 0);
    cr_assert_stdout_eq_str("");
    cr_assert_stderr_eq_str("");
    embt_file *f = NULL;
    cr_assert_eq(embt_file_open(&f, out_path, NULL), EMBT_OK);
    const embt_table *t = NULL;
    cr_assert_eq(embt_file_table(&t, f, "embedding"), EMBT_OK);
    cr_assert_eq(embt_table_rows(t), 3);
    embt_file_close(f);
}

Test(convert, options_are_passed_to_the_library)
{
    write_text("a 1 2\nb 3 4\nc 5 6\n");
    cr_assert_eq(run("--from", "glove", "--dtype", "bf16", "--limit", "2", "--compress", "--table",
                     "vec", "--vocab-name", "tok", "--quiet", in_path, out_path, NULL),
                 0);
    cr_assert_stderr_eq_str("");
    embt_file *f = NULL;
    cr_assert_eq(embt_file_open(&f, out_path, NULL), EMBT_OK);
    const embt_table *t = NULL;
    const embt_vocab *v = NULL;
    cr_assert_eq(embt_file_table(&t, f, "vec"), EMBT_OK);
    cr_assert_eq(embt_file_vocab(&v, f, "tok"), EMBT_OK);
    cr_assert_eq(embt_table_rows(t), 2);
    cr_assert_eq(embt_table_dtype(t), EMBT_DTYPE_BF16);
    embt_file_close(f);
}

Test(convert, parse_error_is_one_line_with_line_and_column_and_exit_1)
{
    write_text("a 1 2\nb 3 x\n");
    cr_assert_eq(run(in_path, out_path, NULL), 1);
    char expected[300];
    snprintf(expected, sizeof expected, "embt convert: %s:2:5: value 2 'x' is not a number\n",
             in_path);
    cr_assert_stderr_eq_str(expected);
    cr_assert_stdout_eq_str("");
    cr_assert(!exists(out_path));
    cr_assert_eq(files_in_tmp_dir(), 1, "a temporary file remains");
}

Test(convert, nonfinite_values_need_the_option)
{
    write_text("a nan 2\n");
    cr_assert_eq(run(in_path, out_path, NULL), 1);
    cr_assert(!exists(out_path));
    cr_assert_eq(run("--allow-nonfinite", in_path, out_path, NULL), 0);
    cr_assert(exists(out_path));
}

Test(convert, missing_input_names_the_input_with_exit_1)
{
    cr_assert_eq(run(in_path, out_path, NULL), 1);
    char expected[300];
    snprintf(expected, sizeof expected,
             "embt convert: %s: cannot open input: No such file or directory\n", in_path);
    cr_assert_stderr_eq_str(expected);
    cr_assert_eq(files_in_tmp_dir(), 0);
}

Test(convert, usage_errors_exit_2)
{
    write_text("a 1 2\n");
    cr_assert_eq(run(NULL), 2);
    cr_assert_eq(run(in_path, NULL), 2);
    cr_assert_eq(run(in_path, out_path, "extra", NULL), 2);
    cr_assert_eq(run("--dtype", "f8", in_path, out_path, NULL), 2);
    cr_assert_eq(run("--from", "fasttext", in_path, out_path, NULL), 2);
    cr_assert_eq(run("--limit", "0", in_path, out_path, NULL), 2);
    cr_assert_eq(run("--limit", "-3", in_path, out_path, NULL), 2);
    cr_assert_eq(run("--limit", "12x", in_path, out_path, NULL), 2);
    cr_assert_eq(run("--bogus", in_path, out_path, NULL), 2);
    cr_assert_eq(run("-z", in_path, out_path, NULL), 2);
    cr_assert_eq(run(in_path, out_path, "--table", NULL), 2);
    cr_assert_stdout_eq_str("");
    cr_assert(!exists(out_path));
}

Test(convert, usage_error_message_shape)
{
    cr_assert_eq(run("--dtype", "f8", "a", "b", NULL), 2);
    cr_assert_stderr_eq_str(
        "embt convert: unknown --dtype 'f8' (expected f32, f16, bf16, f64 or i8)\n"
        "try 'embt convert --help' for usage\n");
}

/* ---- the real binary ------------------------------------------------------------------------ */

/* Runs the embt binary with `args` (shell words), stdout to `stdout_file`; returns its status. */
static int run_binary(const char *args, const char *stdout_file)
{
    const char *bin = getenv("EMBT_BINARY");
    cr_assert_not_null(bin, "EMBT_BINARY is not set");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' convert %s >'%s' 2>/dev/null", bin, args, stdout_file);
    int st = system(cmd);
    cr_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

Test(convert, binary_exit_codes_and_clean_stdout)
{
    char args[600], so[200];
    snprintf(so, sizeof so, "%s/stdout", tmp_dir);
    write_text("a 1 2\nb 3 4\n");
    snprintf(args, sizeof args, "'%s' '%s'", in_path, out_path);
    cr_assert_eq(run_binary(args, so), 0);
    cr_assert_eq(file_size(so), 0);
    cr_assert(exists(out_path));
    unlink(out_path);

    write_text("a 1 2\nb 3\n");
    cr_assert_eq(run_binary(args, so), 1);
    cr_assert_eq(file_size(so), 0);
    cr_assert(!exists(out_path));

    snprintf(args, sizeof args, "--dtype nope '%s' '%s'", in_path, out_path);
    cr_assert_eq(run_binary(args, so), 2);
    cr_assert_eq(file_size(so), 0);

    cr_assert_eq(run_binary("--help", so), 0);
    cr_assert_gt(file_size(so), 0);
    unlink(so);
}
