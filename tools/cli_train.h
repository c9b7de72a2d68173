/* cli_train.h: the pieces of `embt train` shared between tools/cmd_train.c (dispatch, skip-gram),
 * tools/cli_train_config.c (CONFIG.yaml to flags) and tools/cli_train_classify.c (--task classify,
 * written by the classifier's author). */
#ifndef EMBT_CLI_TRAIN_H
#define EMBT_CLI_TRAIN_H

#include <signal.h>

/* `embt train --task classify ...`: argv as given to cmd_train() (argv[0] "train"); returns the exit
 * code. Defined in tools/cli_train_classify.c. */
int cli_train_classify(int argc, char **argv);

/* The command line a CONFIG.yaml stands for, and where each argument came from. */
typedef struct cli_config_args {
    int argc;
    char **argv;    /* {"train", "--KEY", "VALUE", ...}, NULL terminated */
    unsigned *line; /* line[i], col[i]: the 1-based position of argv[i] in the file (0: none) */
    unsigned *col;
} cli_config_args;

/* Reads CONFIG.yaml, a mapping of flag names (without "--"; '_' may stand for '-') to scalars, and
 * builds the equivalent command line (a boolean flag such as freeze becomes "--freeze" when true
 * and is left out when false). Unknown keys, nested values and duplicate keys are errors naming the
 * key and its line. On success *out is filled (free with cli_train_config_free()) and 0 is
 * returned; on error a message is printed on stderr and the exit code (1 unreadable, 2 bad key or
 * value) is returned, with *out empty. */
int cli_train_config(const char *path, cli_config_args *out);
void cli_train_config_free(cli_config_args *args);

/* Ctrl-C while training: cli_train_catch_sigint() clears the flag it returns and installs a SIGINT
 * handler that sets it (the trainers stop at the next line or sentence and write a resumable
 * file), saving the previous action in *old; cli_train_release_sigint() puts *old back. Defined in
 * tools/cmd_train.c. */
volatile sig_atomic_t *cli_train_catch_sigint(struct sigaction *old);
void cli_train_release_sigint(const struct sigaction *old);

#endif
