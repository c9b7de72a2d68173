/* test_io_failure.c: failing system calls. The fault hook of lib/src/sysio.h makes the n-th read,
 * write, fsync or rename fail (or every write come back short); for n = 1, 2, ... until the
 * operation succeeds, each path must fail with EMBT_EIO and the errno given, free everything, leave
 * no temporary or intermediate file, and leave a previous output byte for byte as it was. Paths:
 * embt_file_open without mmap (read), a training corpus (read), and the three paths of
 * embt_convert_file: import (the writer), export (the atomic output) and import + export through
 * an intermediate file (write, fsync, rename). Inputs of embt_convert_file are mapped, gzip ones
 * inflated from the mapping: they make no read() call to fail. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "alloc_hook.h"
#include "cmd.h"
#include "sysio.h"
#include "test_util.h"

#define N_OPS 4

static atomic_uint calls[N_OPS];   /* calls of each kind since the last arm() */
static atomic_uint fail_at[N_OPS]; /* the call of that kind that fails (1-based); 0: none */
static atomic_size_t cap[N_OPS];   /* reads and writes: at most this many bytes (0: no cap) */
static atomic_int fail_errno;      /* what the failing call reports */
static atomic_bool interrupt;      /* every other read and write fails with EINTR first */
static atomic_uint n_failed;       /* calls failed with fail_errno */

static int io_hook(embt__io_op op, size_t *n)
{
    unsigned k = atomic_fetch_add(&calls[op], 1) + 1;
    if (k == atomic_load(&fail_at[op])) {
        atomic_fetch_add(&n_failed, 1);
        return atomic_load(&fail_errno);
    }
    if (atomic_load(&interrupt) && (op == EMBT__IO_READ || op == EMBT__IO_WRITE) && k % 2)
        return EINTR;
    size_t c = atomic_load(&cap[op]);
    if (c && *n > c)
        *n = c;
    return 0;
}

/* Resets the counters (the allocator's too: it counts for leaks and fails nothing); the `fail`-th
 * call of kind `op` fails with `err` (fail 0: none). */
static void arm(embt__io_op op, unsigned fail, int err)
{
    for (int i = 0; i < N_OPS; i++) {
        atomic_store(&calls[i], 0);
        atomic_store(&fail_at[i], 0);
    }
    atomic_store(&fail_at[op], fail);
    atomic_store(&fail_errno, err);
    atomic_store(&n_failed, 0);
    ah_arm(0);
}

static void install(void)
{
    ah_install();
    for (int i = 0; i < N_OPS; i++)
        atomic_store(&cap[i], 0);
    atomic_store(&interrupt, false);
    embt__io_fault_set(io_hook);
}

static void uninstall(void)
{
    embt__io_fault_set(NULL);
    ah_uninstall();
}

TestSuite(io_failure, .init = install, .fini = uninstall, .timeout = 120);

/* A word2vec text file of `rows` rows of `dim` values. */
static void write_text(const char *path, size_t rows, size_t dim)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "%zu %zu\n", rows, dim);
    for (size_t r = 0; r < rows; r++) {
        char tok[64];
        tu_token(tok, sizeof tok, (uint32_t)r);
        fputs(tok, f);
        for (size_t c = 0; c < dim; c++)
            fprintf(f, " %.9g", (double)tu_value(r, c));
        fputc('\n', f);
    }
    cr_assert_eq(fclose(f), 0);
}

/* ---- reads ---------------------------------------------------------------------------------------- */

Test(io_failure, open_without_mmap_fails_cleanly_at_every_read)
{
    const char *path = tu_path("in.embt");
    tu_sample s = {
        300,     8, EMBT_DTYPE_F16, EMBT_VOCAB_COUNTS | EMBT_VOCAB_COMPRESS, EMBT_TABLE_NORMS,
        "a: 1\n"};
    arm(EMBT__IO_READ, 0, 0);
    TU_OK(tu_write_sample(path, &s));
    atomic_store(&cap[EMBT__IO_READ], 509); /* many short reads: every one of them can fail */
    embt_open_options oo = EMBT_OPEN_OPTIONS_INIT;
    oo.flags = EMBT_OPEN_NO_MMAP | EMBT_OPEN_VERIFY;
    unsigned n;
    for (n = 1; n < 100000; n++) {
        arm(EMBT__IO_READ, n, EIO);
        embt_file *f = (embt_file *)1;
        embt_status st = embt_file_open(&f, path, &oo);
        embt_file_close(f);
        cr_assert_eq(atomic_load(&ah_live), 0, "read %u: %ld allocations leaked", n,
                     atomic_load(&ah_live));
        if (atomic_load(&n_failed) == 0) {
            TU_OK(st);
            break;
        }
        cr_assert_null(f, "read %u: a failed open left *out set", n);
        cr_assert_eq(st, EMBT_EIO, "read %u: got %s (%s)", n, embt_status_name(st),
                     embt_error_last()->message);
        cr_assert_eq(embt_error_last()->sys_errno, EIO, "read %u: errno %d", n,
                     embt_error_last()->sys_errno);
    }
    cr_log_info("open without mmap: %u reads of at most 509 bytes", n - 1);
    cr_assert_gt(n, 10);

    /* interrupted reads are retried: the same file opens */
    atomic_store(&interrupt, true);
    arm(EMBT__IO_READ, 0, 0);
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, &oo));
    embt_file_close(f);
    cr_assert_gt(atomic_load(&calls[EMBT__IO_READ]), 2 * (n - 1) - 1);
}

/* A mapped file is read without system calls: nothing to fail. Truncated while mapped, it faults
 * (SIGBUS) at the first access past its new end; embt_file_open() documents that this cannot be
 * guarded, and embt_convert_file() maps its input (MAP_PRIVATE) the same way. The access runs in a
 * child process so that this test still cleans up. Opened with EMBT_OPEN_NO_MMAP, the handle holds
 * its own copy and the truncation does not matter. */
static int read_last_row_after_truncation(const char *path, unsigned flags)
{
    embt_open_options oo = EMBT_OPEN_OPTIONS_INIT;
    oo.flags = flags;
    embt_file *f = NULL;
    TU_OK(embt_file_open(&f, path, &oo));
    const embt_table *t = NULL;
    TU_OK(embt_file_table(&t, f, "embedding"));
    cr_assert_eq(truncate(path, 4096), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        signal(SIGBUS, SIG_DFL); /* not a sanitizer's report: the plain signal */
        float row[16];
        embt_status st = embt_table_read_row_f32(row, t, embt_table_rows(t) - 1);
        _exit(st == EMBT_OK && row[15] == tu_value(embt_table_rows(t) - 1, 15) ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    embt_file_close(f);
    return status;
}

Test(io_failure, a_mapped_file_truncated_after_open_faults_with_sigbus)
{
    const char *path = tu_path("in.embt");
    tu_sample s = {2000, 16, EMBT_DTYPE_F32, 0, 0, NULL}; /* a 128 KB table */
    arm(EMBT__IO_READ, 0, 0);
    TU_OK(tu_write_sample(path, &s));
    int status = read_last_row_after_truncation(path, 0);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS, "status 0x%x", (unsigned)status);
    TU_OK(tu_write_sample(path, &s));
    status = read_last_row_after_truncation(path, EMBT_OPEN_NO_MMAP);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", (unsigned)status);
}

/* ---- writes, fsync and rename of embt_convert_file ----------------------------------------------- */

typedef struct conv_path {
    const char *name;
    const char *in;  /* input path */
    const char *out; /* output file name in the test directory */
} conv_path;

static const char old_bytes[] = "the previous output\n";

/* Puts the previous output in place; returns the number of entries of the test directory. */
static size_t put_old(const char *out)
{
    tu_write_file(out, old_bytes, sizeof old_bytes - 1);
    return tu_count_entries();
}

static bool is_old(const char *out)
{
    size_t len;
    uint8_t *b = tu_read_file(out, &len);
    bool same = len == sizeof old_bytes - 1 && memcmp(b, old_bytes, len) == 0;
    free(b);
    return same;
}

/* The three paths, with inputs in the test directory. */
static size_t make_paths(conv_path *p)
{
    write_text(tu_path("in.txt"), 200, 6);
    static char in_txt[PATH_MAX], in_embt[PATH_MAX], in_bin[PATH_MAX];
    snprintf(in_txt, sizeof in_txt, "%s", tu_path("in.txt"));
    snprintf(in_embt, sizeof in_embt, "%s", tu_path("in.embt"));
    snprintf(in_bin, sizeof in_bin, "%s", tu_fixture("gensim", "vectors.bin"));
    tu_sample s = {200, 6, EMBT_DTYPE_F32, EMBT_VOCAB_COUNTS, 0, "a: 1\n"};
    TU_OK(tu_write_sample(in_embt, &s));
    p[0] = (conv_path){"import (text -> embt)", in_txt, "out.embt"};
    p[1] = (conv_path){"export (embt -> npy)", in_embt, "out.npy"};
    p[2] = (conv_path){"through (word2vec-bin -> safetensors)", in_bin, "out.safetensors"};
    return 3;
}

/* The clean result of each path, for comparison. */
static uint8_t *clean_run(const conv_path *p, size_t *len_out)
{
    const char *out = tu_path(p->out);
    arm(EMBT__IO_READ, 0, 0);
    TU_OK(embt_convert_file(p->in, out, NULL));
    uint8_t *b = tu_read_file(out, len_out);
    cr_assert_eq(unlink(out), 0);
    return b;
}

Test(io_failure, convert_fails_cleanly_at_every_write)
{
    conv_path paths[3];
    size_t n_paths = make_paths(paths);
    for (size_t i = 0; i < n_paths; i++) {
        size_t want_len;
        uint8_t *want = clean_run(&paths[i], &want_len);
        char out[PATH_MAX];
        snprintf(out, sizeof out, "%s", tu_path(paths[i].out));
        size_t entries = put_old(out);
        atomic_store(&cap[EMBT__IO_WRITE], 397); /* short writes: many of them */
        unsigned n;
        for (n = 1; n < 100000; n++) {
            arm(EMBT__IO_WRITE, n, ENOSPC);
            embt_status st = embt_convert_file(paths[i].in, out, NULL);
            cr_assert_eq(atomic_load(&ah_live), 0, "%s, write %u: leaked", paths[i].name, n);
            if (atomic_load(&n_failed) == 0) {
                TU_OK(st);
                break;
            }
            const embt_error *e = embt_error_last();
            cr_assert_eq(st, EMBT_EIO, "%s, write %u: got %s (%s)", paths[i].name, n,
                         embt_status_name(st), e->message);
            cr_assert_eq(e->sys_errno, ENOSPC, "%s, write %u: errno %d", paths[i].name, n,
                         e->sys_errno);
            cr_assert_str_eq(e->section, "output", "%s, write %u: section '%s'", paths[i].name, n,
                             e->section);
            cr_assert(is_old(out), "%s, write %u: the previous output changed", paths[i].name, n);
            cr_assert_eq(tu_count_entries(), entries, "%s, write %u: a file was left",
                         paths[i].name, n);
        }
        cr_log_info("%s: %u writes of at most 397 bytes, each failed once", paths[i].name, n - 1);
        cr_assert_gt(n, 3);
        size_t got_len;
        uint8_t *got = tu_read_file(out, &got_len);
        cr_assert(got_len == want_len && memcmp(got, want, want_len) == 0,
                  "%s: short writes changed the output", paths[i].name);
        free(got);
        free(want);
        atomic_store(&cap[EMBT__IO_WRITE], 0);
        cr_assert_eq(unlink(out), 0);
    }
}

/* fsync: every failure but the last one (the directory, after the rename) leaves the previous
 * output; a failure of that last fsync reports EMBT_EIO with the new file already in place (the
 * rename is done; only its durability is in doubt). rename: every failure leaves the previous
 * output. Neither leaves a temporary file. */
Test(io_failure, convert_fails_cleanly_at_every_fsync_and_rename)
{
    conv_path paths[3];
    size_t n_paths = make_paths(paths);
    for (size_t i = 0; i < n_paths; i++) {
        size_t want_len;
        uint8_t *want = clean_run(&paths[i], &want_len);
        arm(EMBT__IO_READ, 0, 0);
        TU_OK(embt_convert_file(paths[i].in, tu_path(paths[i].out), NULL));
        unsigned n_fsync = atomic_load(&calls[EMBT__IO_FSYNC]);
        unsigned n_rename = atomic_load(&calls[EMBT__IO_RENAME]);
        /* the writer and the output each fsync the file and its directory and rename once */
        cr_assert_eq(n_fsync, i == 2 ? 4u : 2u, "%s: %u fsync calls", paths[i].name, n_fsync);
        cr_assert_eq(n_rename, i == 2 ? 2u : 1u, "%s: %u rename calls", paths[i].name, n_rename);
        const embt__io_op ops[2] = {EMBT__IO_FSYNC, EMBT__IO_RENAME};
        for (int k = 0; k < 2; k++) {
            unsigned total = k == 0 ? n_fsync : n_rename;
            char out[PATH_MAX];
            snprintf(out, sizeof out, "%s", tu_path(paths[i].out));
            for (unsigned n = 1; n <= total + 1; n++) {
                size_t entries = put_old(out);
                arm(ops[k], n, EIO);
                embt_status st = embt_convert_file(paths[i].in, out, NULL);
                cr_assert_eq(atomic_load(&ah_live), 0, "%s, %s %u: leaked", paths[i].name,
                             k ? "rename" : "fsync", n);
                cr_assert_eq(tu_count_entries(), entries, "%s, %s %u: a file was left",
                             paths[i].name, k ? "rename" : "fsync", n);
                if (n > total) {
                    TU_OK(st);
                    break;
                }
                cr_assert_eq(st, EMBT_EIO, "%s, %s %u: got %s", paths[i].name,
                             k ? "rename" : "fsync", n, embt_status_name(st));
                cr_assert_eq(embt_error_last()->sys_errno, EIO);
                cr_assert_str_eq(embt_error_last()->section, "output");
                if (k == 0 && n == total) {
                    size_t len;
                    uint8_t *b = tu_read_file(out, &len);
                    cr_assert(len == want_len && memcmp(b, want, len) == 0,
                              "%s: the renamed output is incomplete", paths[i].name);
                    free(b);
                } else {
                    cr_assert(is_old(out), "%s, %s %u: the previous output changed", paths[i].name,
                              k ? "rename" : "fsync", n);
                }
            }
        }
        free(want);
    }
}

Test(io_failure, interrupted_writes_are_retried)
{
    conv_path paths[3];
    size_t n_paths = make_paths(paths);
    for (size_t i = 0; i < n_paths; i++) {
        size_t want_len;
        uint8_t *want = clean_run(&paths[i], &want_len);
        atomic_store(&interrupt, true);
        atomic_store(&cap[EMBT__IO_WRITE], 1000);
        arm(EMBT__IO_WRITE, 0, 0);
        TU_OK(embt_convert_file(paths[i].in, tu_path(paths[i].out), NULL));
        cr_assert_gt(atomic_load(&calls[EMBT__IO_WRITE]), 4);
        atomic_store(&interrupt, false);
        atomic_store(&cap[EMBT__IO_WRITE], 0);
        size_t got_len;
        uint8_t *got = tu_read_file(tu_path(paths[i].out), &got_len);
        cr_assert(got_len == want_len && memcmp(got, want, want_len) == 0, "%s", paths[i].name);
        free(got);
        free(want);
    }
}

/* The command line names the file a system call failed on, and says why. */
Test(io_failure, the_cli_error_line_names_the_output_and_the_errno)
{
    cr_redirect_stdout();
    cr_redirect_stderr();
    write_text(tu_path("in.txt"), 20, 3);
    char in[PATH_MAX], out[PATH_MAX];
    snprintf(in, sizeof in, "%s", tu_path("in.txt"));
    snprintf(out, sizeof out, "%s", tu_path("out.embt"));
    arm(EMBT__IO_WRITE, 1, ENOSPC);
    char *argv[] = {"convert", in, out};
    int rc = cmd_convert(3, argv);
    fflush(stdout);
    fflush(stderr);
    cr_assert_eq(rc, 1);
    cr_assert_not(tu_exists(out));
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "embt convert: %s: ", out);
    char buf[1024] = "";
    size_t len = fread(buf, 1, sizeof buf - 1, cr_get_redirected_stderr());
    buf[len] = '\0';
    cr_assert_eq(strncmp(buf, want, strlen(want)), 0, "stderr: %s", buf);
    cr_assert(strstr(buf, strerror(ENOSPC)), "stderr: %s", buf);
    cr_assert_eq(fgetc(cr_get_redirected_stdout()), EOF, "stdout is not empty");
}

/* ---- the training corpus -------------------------------------------------------------------------- */

static void write_corpus(const char *path)
{
    tu_write_corpus(path, 200, 10, 30, 3);
}

static void sg_options(embt_sg_options *o, const char *in, const char *out, uint32_t threads)
{
    embt_sg_defaults(o);
    o->input = in;
    o->output = out;
    o->dim = 8;
    o->epoch = 2;
    o->min_count = 1;
    o->threads = threads;
}

Test(io_failure, skipgram_fails_cleanly_at_every_corpus_read)
{
    char in[PATH_MAX], out[PATH_MAX];
    snprintf(in, sizeof in, "%s", tu_path("corpus.txt"));
    snprintf(out, sizeof out, "%s", tu_path("out.embt"));
    write_corpus(in);
    /* a few reads per pass over the 8 KB corpus; one epoch: each failure after the counting pass
     * costs the trainer's 0.1 s monitoring tick */
    atomic_store(&cap[EMBT__IO_READ], 2500);
    for (uint32_t threads = 1; threads <= 2; threads++) {
        size_t entries = put_old(out);
        embt_sg_options o;
        sg_options(&o, in, out, threads);
        o.epoch = 1;
        unsigned n;
        for (n = 1; n < 10000; n++) {
            arm(EMBT__IO_READ, n, EIO);
            embt_sg_report rep;
            embt_status st = embt_sg_train(&o, &rep);
            cr_assert_eq(atomic_load(&ah_live), 0, "threads %u, read %u: leaked", threads, n);
            if (atomic_load(&n_failed) == 0) {
                TU_OK(st);
                break;
            }
            cr_assert_eq(st, EMBT_EIO, "threads %u, read %u: got %s (%s)", threads, n,
                         embt_status_name(st), embt_error_last()->message);
            cr_assert_eq(embt_error_last()->sys_errno, EIO);
            cr_assert(strstr(embt_error_last()->message, "corpus"), "message: %s",
                      embt_error_last()->message);
            cr_assert(is_old(out), "threads %u, read %u: the previous output changed", threads, n);
            cr_assert_eq(tu_count_entries(), entries, "threads %u, read %u: a file was left",
                         threads, n);
        }
        cr_log_info("skip-gram, %u thread(s): %u corpus reads of at most 2500 bytes", threads,
                    n - 1);
        cr_assert_gt(n, 5);
    }
}

/* A word cut by a short read continues in the next buffer: 3-byte reads give the same file. */
Test(io_failure, skipgram_short_reads_give_the_same_file)
{
    char in[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
    snprintf(in, sizeof in, "%s", tu_path("corpus.txt"));
    snprintf(a, sizeof a, "%s", tu_path("a.embt"));
    snprintf(b, sizeof b, "%s", tu_path("b.embt"));
    write_corpus(in);
    embt_sg_options o;
    embt_sg_report rep;
    sg_options(&o, in, a, 1);
    arm(EMBT__IO_READ, 0, 0);
    TU_OK(embt_sg_train(&o, &rep));
    atomic_store(&cap[EMBT__IO_READ], 3);
    atomic_store(&interrupt, true);
    o.output = b;
    arm(EMBT__IO_READ, 0, 0);
    TU_OK(embt_sg_train(&o, &rep));
    cr_assert_gt(atomic_load(&calls[EMBT__IO_READ]), 6000);
    cr_assert(tu_same_file(a, b), "short or interrupted reads changed the trained file");
}

Test(io_failure, skipgram_output_write_failure_keeps_the_previous_file)
{
    char in[PATH_MAX], out[PATH_MAX];
    snprintf(in, sizeof in, "%s", tu_path("corpus.txt"));
    snprintf(out, sizeof out, "%s", tu_path("out.embt"));
    write_corpus(in);
    size_t entries = put_old(out);
    embt_sg_options o;
    sg_options(&o, in, out, 1);
    atomic_store(&cap[EMBT__IO_WRITE], 1024);
    const struct {
        embt__io_op op;
        unsigned n;
    } faults[] = {{EMBT__IO_WRITE, 1},
                  {EMBT__IO_WRITE, 3},
                  {EMBT__IO_WRITE, 5},
                  {EMBT__IO_FSYNC, 1},
                  {EMBT__IO_RENAME, 1}};
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        arm(faults[i].op, faults[i].n, ENOSPC);
        embt_sg_report rep;
        embt_status st = embt_sg_train(&o, &rep);
        cr_assert_eq(atomic_load(&n_failed), 1, "fault %zu was not reached", i);
        cr_assert_eq(st, EMBT_EIO, "fault %zu: got %s", i, embt_status_name(st));
        cr_assert_eq(atomic_load(&ah_live), 0, "fault %zu: leaked", i);
        cr_assert(is_old(out), "fault %zu: the previous output changed", i);
        cr_assert_eq(tu_count_entries(), entries, "fault %zu: a file was left", i);
    }
}
