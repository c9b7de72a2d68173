/* main.c: the embt binary's entry point: the command table, `embt --help`, `embt help [CMD]`,
 * `embt --version`, and dispatch of argv[1] to its cmd_<name>() with argv shifted by one. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <embt/embt.h>

#include "cli_util.h"
#include "cmd.h"

static const cmd_entry commands[] = {
    {"info", cmd_info, "show the vocabularies, tables, sections and metadata of a .embt file"},
    {"validate", cmd_validate, "check .embt files against every rule of the format"},
    {"meta", cmd_meta, "print, get or set the YAML metadata of a .embt file"},
    {"convert", cmd_convert, "convert text, word2vec, fastText, NumPy, safetensors"},
    {"lookup", cmd_lookup, "print the vectors of tokens or ids, as F.embedding returns them"},
    {"init", cmd_init, "write a new table initialised as PyTorch does, from a seed"},
    {"similar", cmd_similar, "print the nearest neighbours of a token (cosine, dot or l2)"},
    {"analogy", cmd_analogy, "solve a is to b as c is to ? (3CosAdd or 3CosMul)"},
    {"eval", cmd_eval, "analogy accuracy and word-pair correlations, as gensim computes them"},
    {"train", cmd_train, "train skip-gram vectors or a text classifier (from a table or scratch)"},
    {"predict", cmd_predict, "print the best labels of text lines with a trained classifier"},
    {"test", cmd_test, "precision and recall at k of a classifier, as fastText test"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const cmd_entry *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void print_usage(FILE *f)
{
    fputs("usage: embt <command> [options] [args]\n"
          "       embt help <command>\n"
          "       embt --version\n"
          "\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\nexit status: 0 success, 1 error (including an invalid file), 2 usage error\n", f);
}

static int unknown_command(const char *name)
{
    fprintf(stderr, "embt: unknown command '%s'\ntry 'embt --help' for the list of commands\n",
            name);
    return CLI_EXIT_USAGE;
}

static int dispatch(int argc, char **argv)
{
    if (argc < 2) {
        fputs("embt: missing command\n", stderr);
        print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
        (strcmp(name, "help") == 0 && argc == 2)) {
        print_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0) {
        printf("embt %s (format %d.%d)\n", EMBT_VERSION_STRING, EMBT_FORMAT_VERSION_MAJOR,
               EMBT_FORMAT_VERSION_MINOR);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "help") == 0) {
        if (argc > 3) {
            fputs("embt help: too many arguments\ntry 'embt --help' for usage\n", stderr);
            return CLI_EXIT_USAGE;
        }
        const cmd_entry *cmd = find_command(argv[2]);
        if (!cmd)
            return unknown_command(argv[2]);
        char help[] = "--help";
        char *sub_argv[] = {argv[2], help, NULL};
        return cmd->fn(2, sub_argv);
    }
    if (name[0] == '-') {
        fprintf(stderr, "embt: unknown option '%s'\ntry 'embt --help' for usage\n", name);
        return CLI_EXIT_USAGE;
    }
    const cmd_entry *cmd = find_command(name);
    if (!cmd)
        return unknown_command(name);
    return cmd->fn(argc - 1, argv + 1);
}

int main(int argc, char **argv)
{
    int rc = dispatch(argc, argv);
    /* results that could not be written are a failure whatever printed them (`embt validate m.embt
     * > /dev/full`); a command that failed has said so already */
    errno = 0;
    int failed = fflush(stdout) != 0 || ferror(stdout);
    if (failed && rc == CLI_EXIT_OK) {
        const char *name = argc >= 2 && argv[1][0] != '-' ? argv[1] : NULL;
        fprintf(stderr, "embt%s%s: cannot write the output%s%s\n", name ? " " : "",
                name ? name : "", errno ? ": " : "", errno ? strerror(errno) : "");
        rc = CLI_EXIT_ERROR;
    }
    return rc;
}
