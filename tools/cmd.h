/* cmd.h: the subcommands of the embt binary. Each is main-like: argv[0] is the command's name,
 * options are parsed with getopt_long, the return value is the exit code (0 ok, 1 error, 2 usage). */
#ifndef EMBT_CMD_H
#define EMBT_CMD_H

typedef int (*cmd_fn)(int argc, char **argv);

typedef struct cmd_entry {
    const char *name;
    cmd_fn fn;
    const char *summary; /* one line, lowercase, for `embt --help` */
} cmd_entry;

int cmd_info(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_meta(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_lookup(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_similar(int argc, char **argv);
int cmd_analogy(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_test(int argc, char **argv);

#endif
