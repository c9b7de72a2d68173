/* test_cmd_lookup.c: `embt lookup` run in-process: the exact lines for tokens, ids and stdin, values
 * that read back to the same float32, bags with padding, max_norm, JSON Lines, unknown tokens (exit 1,
 * stdout empty, or skipped), usage errors (exit 2). */
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

static int run(int argc, char **argv)
{
    int rc = cmd_lookup(argc, argv);
    fflush(stdout);
    fflush(stderr);
    return rc;
}

/* tokens a b c <pad>, a tied 4 x 3 f32 table with values that have short decimal forms */
static const float values[12] = {0.1f,  1.0f, -2.5f, 3e-8f, 100.0f, 0.3333333f,
                                 -1.0f, 2.0f, 4.0f,  0.0f,  0.0f,   0.0f};

static const char *make_file(void)
{
    const char *path = tu_path("l.embt");
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, path, NULL));
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    TU_OK(embt_writer_vocab_begin(w, &vs));
    const char *toks[] = {"a", "b", "c", "<pad>"};
    for (int i = 0; i < 4; i++)
        TU_OK(embt_writer_vocab_add(w, toks[i], strlen(toks[i]), 0, NULL));
    TU_OK(embt_writer_vocab_end(w));
    tu_add_table(w, "embedding", 4, 3, "words", values);
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    return path;
}

Test(lookup, prints_token_tab_values_in_shortest_round_trip_form, .init = setup,
     .fini = tu_teardown)
{
    const char *path = make_file();
    char *argv[] = {"lookup", (char *)path, "b", "a", "b", NULL};
    cr_assert_eq(run(5, argv), 0);
    cr_assert_stdout_eq_str("b\t3e-08 100.0 0.3333333\n"
                            "a\t0.1 1.0 -2.5\n"
                            "b\t3e-08 100.0 0.3333333\n");
    cr_assert_stderr_eq_str("");
}

Test(lookup, ids_and_json_lines, .init = setup, .fini = tu_teardown)
{
    const char *path = make_file();
    char *argv[] = {"lookup", "--ids", "--json", (char *)path, "2", "0", NULL};
    cr_assert_eq(run(6, argv), 0);
    cr_assert_stdout_eq_str("{\"token\":\"2\",\"id\":2,\"vector\":[-1.0,2.0,4.0]}\n"
                            "{\"token\":\"0\",\"id\":0,\"vector\":[0.1,1.0,-2.5]}\n");
}

Test(lookup, tokens_from_stdin_one_per_line, .init = setup, .fini = tu_teardown)
{
    const char *path = make_file();
    FILE *in = cr_get_redirected_stdin();
    fputs("c\r\n\na\n", in);
    fclose(in);
    char *argv[] = {"lookup", (char *)path, "-", NULL};
    cr_assert_eq(run(3, argv), 0);
    cr_assert_stdout_eq_str("c\t-1.0 2.0 4.0\na\t0.1 1.0 -2.5\n");
}

Test(lookup, bags_leave_out_the_padding_row, .init = setup, .fini = tu_teardown)
{
    const char *path = make_file();
    /* mean of a and c; <pad> (id 3, given as -1) neither adds nor counts */
    char *argv[] = {"lookup", "--bag", "mean", "--padding-idx", "-1", (char *)path, "a",
                    "<pad>",  "c",     NULL};
    cr_assert_eq(run(9, argv), 0);
    char *sum[] = {"lookup", "--bag", "max", "--json", (char *)path, "a", "c", NULL};
    cr_assert_eq(run(7, sum), 0);
    cr_assert_stdout_eq_str("mean\t-0.45 1.5 0.75\n"
                            "{\"bag\":\"max\",\"count\":2,\"vector\":[0.1,2.0,4.0]}\n");
}

Test(lookup, max_norm_scales_the_output_only, .init = setup, .fini = tu_teardown)
{
    const char *path = make_file();
    /* c = (-1, 2, 4): L2 norm sqrt(21) > 3, so scaled by (float)(3 / ((float)sqrt(21) + 1e-7)) */
    char *argv[] = {"lookup", "--max-norm", "3", (char *)path, "c", "c", NULL};
    cr_assert_eq(run(6, argv), 0);
    double norm = (double)(float)sqrt(21.0);
    float s = (float)(3.0 / (norm + 1e-7));
    float want[3] = {-1 * s, 2 * s, 4 * s};
    FILE *out = cr_get_redirected_stdout();
    char line[256];
    for (int k = 0; k < 2; k++) { /* both copies of c, renormalised alike */
        cr_assert_not_null(fgets(line, sizeof line, out));
        cr_assert_eq(strncmp(line, "c\t", 2), 0);
        char *p = line + 2;
        for (int c = 0; c < 3; c++) {
            char *end;
            float v = strtof(p, &end);
            cr_assert_eq(tu_f32_bits(v), tu_f32_bits(want[c]), "value %d: %s", c, p);
            p = end;
        }
    }
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, NULL));
    const embt_table *t;
    TU_OK(embt_file_table(&t, f, "embedding"));
    cr_assert_eq(embt_table_row_f32(t, 2)[2], 4.0f, "file untouched");
    embt_file_close(f);
}

Test(lookup, unknown_token_fails_naming_it_with_stdout_empty, .init = setup, .fini = tu_teardown)
{
    const char *path = make_file();
    char *argv[] = {"lookup", (char *)path, "a", "zebra", NULL};
    cr_assert_eq(run(4, argv), 1);
    cr_assert_stdout_eq_str("");
    cr_assert_stderr_neq_str("");
}

Test(lookup, unknown_token_message_names_it, .init = setup, .fini = tu_teardown)
{
    const char *path = make_file();
    char *argv[] = {"lookup", (char *)path, "zebra", NULL};
    cr_assert_eq(run(3, argv), 1);
    char want[4200];
    snprintf(want, sizeof want, "embt lookup: %s: unknown token 'zebra'\n", path);
    cr_assert_stderr_eq_str(want);
}

/* A token from the input is shown escaped: a line break in it would split the error line, and an
 * escape sequence would reach the terminal. */
Test(lookup, an_unknown_token_with_control_bytes_is_shown_escaped, .init = setup,
     .fini = tu_teardown)
{
    const char *path = make_file();
    char *argv[] = {"lookup", (char *)path, "zz\nyy\x1b[2J", NULL};
    cr_assert_eq(run(3, argv), 1);
    char want[4200];
    snprintf(want, sizeof want, "embt lookup: %s: unknown token 'zz\\nyy\\x1b[2J'\n", path);
    cr_assert_stderr_eq_str(want);
}

/* getline keeps a NUL byte that strlen would stop at: "a<NUL>b" looked up 'a' and exited 0. */
Test(lookup, a_nul_byte_on_stdin_is_an_error_with_its_line_and_column, .init = setup,
     .fini = tu_teardown)
{
    const char *path = make_file();
    FILE *in = cr_get_redirected_stdin();
    fwrite("b\na\0b\n", 1, 6, in);
    fclose(in);
    char *argv[] = {"lookup", (char *)path, "-", NULL};
    cr_assert_eq(run(3, argv), 1);
    cr_assert_stdout_eq_str("");
    cr_assert_stderr_eq_str("embt lookup: <stdin>:2:2: a NUL byte in the token\n");
}

/* A table of 0 rows has columns no byte backs: an empty bag of 2^31 - 1 zeros asked for 8 GiB. */
Test(lookup, a_table_without_rows_is_an_error, .init = setup, .fini = tu_teardown)
{
    const char *path = tu_path("empty.embt");
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, path, NULL));
    tu_add_vocab(w, "words", (const char *const[]){NULL});
    float none = 0;
    tu_add_table(w, "embedding", 0, ((uint64_t)1 << 31) - 1, "words", &none);
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    FILE *in = cr_get_redirected_stdin();
    fclose(in);
    char *argv[] = {"lookup", "--bag", "mean", (char *)path, "-", NULL};
    cr_assert_eq(run(5, argv), 1);
    cr_assert_stdout_eq_str("");
    char want[4200];
    snprintf(want, sizeof want, "embt lookup: %s: table 'embedding' has no rows\n", path);
    cr_assert_stderr_eq_str(want);
}

Test(lookup, skip_unknown_prints_the_known_tokens, .init = setup, .fini = tu_teardown)
{
    const char *path = make_file();
    char *argv[] = {"lookup", "--skip-unknown", (char *)path, "zebra", "a", NULL};
    cr_assert_eq(run(5, argv), 0);
    cr_assert_stdout_eq_str("a\t0.1 1.0 -2.5\n");
}

Test(lookup, id_out_of_range_is_an_error, .init = setup, .fini = tu_teardown)
{
    const char *path = make_file();
    char *argv[] = {"lookup", "--ids", (char *)path, "4", NULL};
    cr_assert_eq(run(4, argv), 1);
    cr_assert_stdout_eq_str("");
}

Test(lookup, usage_errors_exit_2, .init = setup, .fini = tu_teardown)
{
    const char *path = make_file();
    char *cases[][6] = {
        {"lookup", (char *)path, NULL},
        {"lookup", "--bag", "median", (char *)path, "a", NULL},
        {"lookup", "--norm-type", "0", (char *)path, "a", NULL},
        {"lookup", "--max-norm", "x", (char *)path, "a", NULL},
        {"lookup", "--padding-idx", "1.5", (char *)path, "a", NULL},
        {"lookup", "--frobnicate", (char *)path, "a", NULL},
    };
    int argcs[] = {2, 5, 5, 5, 5, 4};
    for (int k = 0; k < 6; k++)
        cr_assert_eq(run(argcs[k], cases[k]), 2, "case %d", k);
    cr_assert_stdout_eq_str("");
}

/* Every float32 printed reads back to the same bits: 4,000 random values of every magnitude. */
Test(lookup, printed_values_read_back_to_the_same_float32, .init = setup, .fini = tu_teardown)
{
    enum { R = 400, C = 10 };
    float *data = malloc(sizeof(float) * R * C);
    uint64_t s = 11;
    for (int i = 0; i < R * C; i++) {
        uint32_t u = (uint32_t)tu_rand(&s);
        if ((u & 0x7F800000u) == 0x7F800000u) /* keep them finite */
            u &= 0xBFFFFFFFu;
        data[i] = tu_bits_f32(u);
    }
    embt_writer *w = NULL;
    TU_OK(embt_writer_open(&w, tu_path("r.embt"), NULL));
    tu_add_table(w, "t", R, C, NULL, data);
    TU_OK(embt_writer_commit(w));
    embt_writer_free(w);
    char **argv = malloc(sizeof(char *) * (R + 4));
    char(*ids)[16] = malloc(16 * R);
    argv[0] = "lookup";
    argv[1] = "--ids";
    argv[2] = (char *)tu_path("r.embt");
    for (int r = 0; r < R; r++) {
        snprintf(ids[r], 16, "%d", r);
        argv[3 + r] = ids[r];
    }
    argv[3 + R] = NULL;
    cr_assert_eq(run(3 + R, argv), 0);
    FILE *out = cr_get_redirected_stdout();
    char line[1024];
    for (int r = 0; r < R; r++) {
        cr_assert_not_null(fgets(line, sizeof line, out));
        char *p = strchr(line, '\t');
        cr_assert_not_null(p);
        for (int c = 0; c < C; c++) {
            char *end;
            float v = strtof(p + 1, &end);
            cr_assert_eq(tu_f32_bits(v), tu_f32_bits(data[r * C + c]), "row %d col %d", r, c);
            p = end;
        }
    }
    free(argv);
    free(ids);
    free(data);
}
