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
    cr_assert_eq(run("--to", "fasttext-bin", in_path, out_path, NULL), 2);
    cr_assert_eq(run("--to", "csv", in_path, out_path, NULL), 2);
    cr_assert_eq(run("--on-duplicate", "keep", in_path, out_path, NULL), 2);
    cr_assert_eq(run("--on-bad-utf8", "ignore", in_path, out_path, NULL), 2);
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

Test(convert, lenient_choices_are_counted_on_stderr)
{
    write_text("a 1 2\nb 3 4\na 5 6\nc\xff 7 8\nb 9 10\nd nan 1\n");
    cr_assert_eq(run("--on-duplicate", "last", "--on-bad-utf8", "replace", "--allow-nonfinite",
                     in_path, out_path, NULL),
                 0);
    cr_assert_stdout_eq_str("");
    cr_assert_stderr_eq_str("embt convert: 2 duplicates kept last\n"
                            "embt convert: 1 token with bad utf-8 replaced\n"
                            "embt convert: 1 non-finite value kept\n");
}

Test(convert, skipped_rows_are_reported)
{
    write_text("a 1\nb\xff 2\na 3\n");
    cr_assert_eq(run("--on-duplicate=first", "--on-bad-utf8=skip", in_path, out_path, NULL), 0);
    cr_assert_stderr_eq_str("embt convert: 1 duplicate kept first\n"
                            "embt convert: 1 row with bad utf-8 skipped\n");
}

Test(convert, duplicate_is_an_error_by_default_and_leaves_no_output)
{
    write_text("a 1\nb 2\na 3\n");
    cr_assert_eq(run(in_path, out_path, NULL), 1);
    char want[300];
    snprintf(want, sizeof want, "embt convert: %s:3:1: duplicate token 'a' (first on line 1)\n",
             in_path);
    cr_assert_stderr_eq_str(want);
    cr_assert_eq(access(out_path, F_OK), -1);
}

Test(convert, to_and_from_select_the_formats)
{
    write_text("a 1 2\nb 3 4\n");
    char vec_path[160];
    snprintf(vec_path, sizeof vec_path, "%s/out.data", tmp_dir);
    cr_assert_eq(run("--from", "glove", "--to", "word2vec", in_path, vec_path, NULL), 0);
    cr_assert_eq(run("--from", "word2vec", vec_path, out_path, NULL), 0);
    embt_file *f = NULL;
    cr_assert_eq(embt_file_open(&f, out_path, NULL), EMBT_OK);
    const embt_table *t = NULL;
    cr_assert_eq(embt_file_table(&t, f, "embedding"), EMBT_OK);
    cr_assert_eq(embt_table_rows(t), 2);
    cr_assert_eq(embt_table_row_f32(t, 1)[1], 4.0f);
    embt_file_close(f);
}

Test(convert, vocab_file_errors_name_the_vocab_file)
{
    char vocab_path[160];
    snprintf(vocab_path, sizeof vocab_path, "%s/vocab.txt", tmp_dir);
    FILE *f = fopen(vocab_path, "wb");
    fputs("x\ny\nx\n", f);
    fclose(f);
    /* a .npy of 3 x 1 float32 written by hand */
    char npy_path[160];
    snprintf(npy_path, sizeof npy_path, "%s/in.npy", tmp_dir);
    char header[128]; /* 10 + 118: the data starts 64-byte aligned */
    memset(header, ' ', sizeof header);
    memcpy(header, "\x93NUMPY\x01\x00\x76\x00", 10);
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 1), }";
    memcpy(header + 10, dict, strlen(dict));
    header[127] = '\n';
    float v[3] = {1, 2, 3};
    f = fopen(npy_path, "wb");
    fwrite(header, 1, sizeof header, f);
    fwrite(v, 4, 3, f);
    fclose(f);
    cr_assert_eq(run("--vocab", vocab_path, npy_path, out_path, NULL), 1);
    char want[400];
    snprintf(want, sizeof want, "embt convert: %s:3:1: duplicate token (first as token 0)\n",
             vocab_path);
    cr_assert_stderr_eq_str(want);
    cr_assert_eq(access(out_path, F_OK), -1);
}
