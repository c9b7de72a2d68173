/* fuzz_config.c: libFuzzer target for `embt train CONFIG.yaml` (tools/cli_train_config.c), which
 * turns a YAML mapping into the equivalent command line. The input is the config file. A failure
 * must be exit 1 or 2 with nothing returned; a success must give {"train", "--KEY" [VALUE], ...}
 * where every key is one of train's long options, none repeats, the two booleans take no value,
 * every other key is followed by one value, and every argument's origin (line, column) lies inside
 * the input (lines counted as libyaml does, UTF-16 included). The CLI's messages go to stderr,
 * which is pointed at /dev/null around the call. */
#include <fcntl.h>
#include <stdbool.h>

#include "cli_train.h"
#include "cli_util.h"
#include "fuzz_common.h"

/* The keys a config may hold (spec/CLI.md 12), written out again as the oracle. */
static const char *const value_keys[] = {
    "task",   "input",     "output", "pretrained", "dim",         "lr",     "epoch",
    "window", "neg",       "sample", "min-count",  "word-ngrams", "bucket", "threads",
    "seed",   "optimizer", "resume", "init",       "stop-after"};
static const char *const bool_keys[] = {"freeze", "quiet"};
#define N_VALUE (sizeof value_keys / sizeof value_keys[0])
#define N_BOOL (sizeof bool_keys / sizeof bool_keys[0])

static int key_index(const char *arg)
{
    if (strncmp(arg, "--", 2) != 0)
        return -1;
    for (size_t i = 0; i < N_VALUE; i++)
        if (strcmp(arg + 2, value_keys[i]) == 0)
            return (int)i;
    for (size_t i = 0; i < N_BOOL; i++)
        if (strcmp(arg + 2, bool_keys[i]) == 0)
            return (int)(N_VALUE + i);
    return -1;
}

/* Runs the parser with stderr silenced. */
static int parse_quietly(const char *path, cli_config_args *args)
{
    static int devnull = -1;
    if (devnull < 0)
        devnull = open("/dev/null", O_WRONLY);
    FZ_CHECK(devnull >= 0, "open /dev/null");
    fflush(stderr);
    int saved = dup(2);
    FZ_CHECK(saved >= 0 && dup2(devnull, 2) == 2, "redirect stderr");
    int rc = cli_train_config(path, args);
    fflush(stderr);
    FZ_CHECK(dup2(saved, 2) == 2 && close(saved) == 0, "restore stderr");
    return rc;
}

/* Lines of the input as libyaml counts them: it decodes UTF-16 after a BOM (FF FE or FE FF),
 * UTF-8 otherwise, and breaks lines at LF, CR LF, CR, NEL, LS and PS. */
static size_t count_lines(const uint8_t *data, size_t size)
{
    size_t lines = 1;
    if (size >= 2 &&
        ((data[0] == 0xFF && data[1] == 0xFE) || (data[0] == 0xFE && data[1] == 0xFF))) {
        bool le = data[0] == 0xFF;
        for (size_t i = 2; i + 1 < size; i += 2) {
            unsigned u = le ? data[i] | data[i + 1] << 8 : data[i] << 8 | data[i + 1];
            unsigned next = 0;
            if (i + 3 < size)
                next = le ? data[i + 2] | data[i + 3] << 8 : data[i + 2] << 8 | data[i + 3];
            lines +=
                u == '\n' || (u == '\r' && next != '\n') || u == 0x85 || u == 0x2028 || u == 0x2029;
        }
        return lines;
    }
    for (size_t i = 0; i < size; i++) {
        const uint8_t *d = data + i;
        size_t left = size - i;
        lines += d[0] == '\n' || (d[0] == '\r' && (left == 1 || d[1] != '\n')) ||
                 (left >= 2 && d[0] == 0xC2 && d[1] == 0x85) ||
                 (left >= 3 && d[0] == 0xE2 && d[1] == 0x80 && (d[2] == 0xA8 || d[2] == 0xA9));
    }
    return lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_path("c.yaml");
    fz_write_file(path, data, size);
    size_t lines = count_lines(data, size);
    cli_config_args a;
    memset(&a, 0xA5, sizeof a);
    int rc = parse_quietly(path, &a);
    unlink(path);
    if (rc != CLI_EXIT_OK) {
        FZ_CHECK(rc == CLI_EXIT_ERROR || rc == CLI_EXIT_USAGE, "exit code %d", rc);
        FZ_CHECK(a.argc == 0 && !a.argv && !a.line && !a.col, "a failure returned arguments");
        return 0;
    }
    FZ_CHECK(a.argc >= 1 && a.argv && a.line && a.col, "no command line");
    FZ_CHECK(strcmp(a.argv[0], "train") == 0 && a.argv[a.argc] == NULL, "not train's argv");
    bool seen[N_VALUE + N_BOOL] = {false};
    for (int i = 1; i < a.argc; i++) {
        int k = key_index(a.argv[i]);
        FZ_CHECK(k >= 0, "argument %d '%s' is not a known option", i, a.argv[i]);
        FZ_CHECK(!seen[k], "option %s given twice", a.argv[i]);
        seen[k] = true;
        FZ_CHECK(a.line[i] >= 1 && a.line[i] <= lines && a.col[i] >= 1 && a.col[i] <= size + 1,
                 "origin %u:%u of %s outside the %zu-line input", a.line[i], a.col[i], a.argv[i],
                 lines);
        if ((size_t)k < N_VALUE) {
            FZ_CHECK(i + 1 < a.argc, "option %s has no value", a.argv[i]);
            i++;
            FZ_CHECK(a.line[i] >= a.line[i - 1] && a.line[i] <= lines,
                     "value of %s at line %u, key at %u", a.argv[i - 1], a.line[i], a.line[i - 1]);
        }
    }
    cli_train_config_free(&a);
    FZ_CHECK(a.argc == 0 && !a.argv, "free left arguments");
    return 0;
}
