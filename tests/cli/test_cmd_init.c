/* test_cmd_init.c: `embt init` run in-process: tables equal to embt_init_matrix() with the same seed,
 * byte-identical files for the same command, --vocab with a zeroed and recorded padding row, --like
 * adding a table to an existing file, values from a raw float32 file, and exit codes 1 and 2 with OUT
 * left absent. */
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
    int rc = cmd_init(argc, argv);
    fflush(stdout);
    fflush(stderr);
    return rc;
}

/* The table `name` of `path` as an owned matrix. */
static embt_matrix read_table(const char *path, const char *name, const embt_vocab **vocab_out)
{
    embt_file *f = NULL;
    const embt_table *t;
    TU_OK(embt_file_open(&f, path, NULL));
    TU_OK(embt_file_table(&t, f, name));
    embt_matrix m;
    TU_OK(embt_matrix_from_table(&m, t));
    if (vocab_out)
        *vocab_out = embt_table_vocab(t) ? (const embt_vocab *)1 : NULL;
    embt_file_close(f);
    return m;
}

Test(init_cmd, tables_equal_the_library_initialisers_for_the_same_seed, .init = setup,
     .fini = tu_teardown)
{
    struct {
        const char *spec;
        embt_init_kind kind;
        double a, b;
    } cases[] = {
        {"normal:0,1", EMBT_INIT_NORMAL, 0, 1},
        {"normal:0.5,2", EMBT_INIT_NORMAL, 0.5, 2},
        {"uniform:-1,1", EMBT_INIT_UNIFORM, -1, 1},
        {"kaiming-uniform", EMBT_INIT_KAIMING_UNIFORM, 0, 0},
        {"xavier-uniform", EMBT_INIT_XAVIER_UNIFORM, 0, 0},
        {"zeros", EMBT_INIT_ZEROS, 0, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *out = tu_path("t.embt");
        char *argv[] = {"init", (char *)out, "--rows", "50",     "--dim",
                        "7",    "--seed",    "2024",   "--init", (char *)cases[k].spec,
                        NULL};
        cr_assert_eq(run(10, argv), 0, "%s", cases[k].spec);
        embt_matrix got = read_table(out, "embedding", NULL);
        embt_matrix want;
        TU_OK(embt_matrix_alloc(&want, 50, 7));
        embt_init_options o = EMBT_INIT_OPTIONS_INIT;
        o.kind = cases[k].kind;
        o.seed = 2024;
        if (o.kind == EMBT_INIT_NORMAL) {
            o.mean = cases[k].a;
            o.std = cases[k].b;
        } else if (o.kind == EMBT_INIT_UNIFORM) {
            o.low = cases[k].a;
            o.high = cases[k].b;
        }
        TU_OK(embt_init_matrix(&want, &o));
        cr_assert_eq(memcmp(got.data, want.data, 50 * 7 * sizeof(float)), 0, "%s", cases[k].spec);
        embt_matrix_release(&got);
        embt_matrix_release(&want);
    }
    cr_assert_stdout_eq_str("");
}

Test(init_cmd, the_same_command_writes_the_same_bytes, .init = setup, .fini = tu_teardown)
{
    char *a[] = {"init", (char *)tu_path("a.embt"), "--rows", "300", "--dim", "9", "--seed", "5",
                 NULL};
    char *b[] = {"init", (char *)tu_path("b.embt"), "--rows", "300", "--dim", "9", "--seed", "5",
                 NULL};
    char *c[] = {"init", (char *)tu_path("c.embt"), "--rows", "300", "--dim", "9", "--seed", "6",
                 NULL};
    cr_assert_eq(run(8, a), 0);
    cr_assert_eq(run(8, b), 0);
    cr_assert_eq(run(8, c), 0);
    cr_assert(tu_same_file(tu_path("a.embt"), tu_path("b.embt")));
    cr_assert_not(tu_same_file(tu_path("a.embt"), tu_path("c.embt")));
}

Test(init_cmd, vocab_ties_the_table_and_zeroes_the_padding_row, .init = setup, .fini = tu_teardown)
{
    const char *vocab = tu_path("v.txt");
    tu_write_file(vocab, "<pad>\r\nthe\nking\n", 16);
    const char *out = tu_path("v.embt");
    char *argv[] = {"init", (char *)out,     "--vocab", (char *)vocab, "--dim",
                    "4",    "--padding-idx", "0",       NULL};
    cr_assert_eq(run(8, argv), 0);
    embt_file *f = NULL;
    const embt_table *t;
    const embt_vocab *v;
    TU_OK(embt_file_open(&f, out, NULL));
    TU_OK(embt_file_table(&t, f, "embedding"));
    TU_OK(embt_file_vocab(&v, f, NULL));
    cr_assert_eq(embt_table_vocab(t), v);
    cr_assert_eq(embt_vocab_size(v), 3);
    cr_assert_eq(embt_vocab_pad_id(v), 0);
    uint32_t id;
    TU_OK(embt_vocab_find(&id, v, "<pad>", 5));
    cr_assert_eq(id, 0, "CRLF stripped");
    const float *row0 = embt_table_row_f32(t, 0), *row1 = embt_table_row_f32(t, 1);
    for (int c = 0; c < 4; c++) {
        cr_assert_eq(row0[c], 0.0f);
        cr_assert_neq(row1[c], 0.0f);
    }
    embt_file_close(f);
}

Test(init_cmd, like_adds_a_table_to_the_same_file, .init = setup, .fini = tu_teardown)
{
    const char *path = tu_path("s.embt");
    tu_sample s = {6, 5, EMBT_DTYPE_F32, 0, 0, NULL};
    TU_OK(tu_write_sample(path, &s));
    embt_matrix before = read_table(path, "embedding", NULL);
    char *argv[] = {"init",    (char *)path, "--like", (char *)path, "--table",
                    "context", "--init",     "zeros",  NULL};
    cr_assert_eq(run(8, argv), 0);
    const embt_vocab *tied;
    embt_matrix ctx = read_table(path, "context", &tied);
    cr_assert_not_null(tied, "tied to the vocabulary");
    cr_assert_eq(ctx.rows, 6);
    cr_assert_eq(ctx.cols, 5, "--dim defaults to the tied table's");
    for (size_t i = 0; i < 30; i++)
        cr_assert_eq(ctx.data[i], 0.0f);
    embt_matrix after = read_table(path, "embedding", NULL);
    cr_assert_eq(memcmp(before.data, after.data, 30 * sizeof(float)), 0);
    /* the same name again: the writer refuses, the file stays as it is */
    cr_assert_eq(run(8, argv), 1);
    embt_matrix_release(&before);
    embt_matrix_release(&after);
    embt_matrix_release(&ctx);
}

Test(init_cmd, values_from_a_raw_float32_file, .init = setup, .fini = tu_teardown)
{
    float vals[6] = {1.5f, -2.0f, 3.25f, 1e-30f, -0.0f, 7.0f};
    tu_write_file(tu_path("v.f32"), vals, sizeof vals);
    char spec[4200];
    snprintf(spec, sizeof spec, "values:%s", tu_path("v.f32"));
    char *argv[] = {"init", (char *)tu_path("x.embt"), "--rows", "2", "--dim", "3", "--init", spec,
                    NULL};
    cr_assert_eq(run(8, argv), 0);
    embt_matrix m = read_table(tu_path("x.embt"), "embedding", NULL);
    cr_assert_eq(memcmp(m.data, vals, sizeof vals), 0);
    embt_matrix_release(&m);
    /* the wrong number of values: exit 1 and no output */
    char *bad[] = {"init", (char *)tu_path("y.embt"), "--rows", "3", "--dim", "3", "--init", spec,
                   NULL};
    cr_assert_eq(run(8, bad), 1);
    cr_assert_not(tu_exists(tu_path("y.embt")));
    cr_assert_eq(tu_count_temp(tu_dir, "y.embt"), 0);
}

Test(init_cmd, usage_errors_exit_2_and_write_nothing, .init = setup, .fini = tu_teardown)
{
    const char *out = tu_path("u.embt");
    char *cases[][8] = {
        {"init", (char *)out, "--dim", "3", NULL},
        {"init", (char *)out, "--rows", "3", NULL},
        {"init", (char *)out, "--rows", "3", "--dim", "3", "--init", "gaussian"},
        {"init", (char *)out, "--rows", "3", "--dim", "3", "--init", "uniform:1"},
        {"init", (char *)out, "--rows", "-3", "--dim", "3", NULL},
        {"init", (char *)out, "--vocab", "a", "--like", "b", "--dim", "3"},
        {"init", "--rows", "3", "--dim", "3", NULL},
    };
    int argcs[] = {4, 4, 8, 8, 6, 8, 5};
    for (int k = 0; k < 7; k++)
        cr_assert_eq(run(argcs[k], cases[k]), 2, "case %d", k);
    cr_assert_not(tu_exists(out));
}

Test(init_cmd, bad_parameters_and_inputs_exit_1, .init = setup, .fini = tu_teardown)
{
    const char *out = tu_path("e.embt");
    char *cases[][10] = {
        {"init", (char *)out, "--rows", "3", "--dim", "3", "--init", "uniform:1,-1"},
        {"init", (char *)out, "--rows", "3", "--dim", "3", "--padding-idx", "3"},
        {"init", (char *)out, "--vocab", (char *)tu_path("absent.txt"), "--dim", "3"},
        {"init", (char *)out, "--like", (char *)tu_path("absent.embt"), "--dim", "3"},
    };
    int argcs[] = {8, 8, 6, 6};
    for (int k = 0; k < 4; k++)
        cr_assert_eq(run(argcs[k], cases[k]), 1, "case %d", k);
    cr_assert_not(tu_exists(out));
    cr_assert_eq(tu_count_entries(), 0, "no temporary file left");
}
