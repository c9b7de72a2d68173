/* cli_util.h: helpers shared by the subcommands: exit codes, rendering the library's error record as
 * one stderr line, usage errors, --format parsing, and a structured output writer with a YAML
 * backend (libyaml's emitter) and a JSON backend, so every command prints the same fields in both. */
#ifndef EMBT_CLI_UTIL_H
#define EMBT_CLI_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <embt/embt.h>

/* Exit codes (spec/CLI.md). */
#define CLI_EXIT_OK 0
#define CLI_EXIT_ERROR 1
#define CLI_EXIT_USAGE 2

/* Prints the error record as one line on stderr:
 *   embt <cmd>: <file>: offset 0x1a0 (<section>): rule 15: <message>
 *   embt <cmd>: <file>:<line>:<col>: <message>            (text inputs: line set)
 *   embt <cmd>: <file>: <section>:<line>:<col>: <message>  (a text section of a binary file)
 * Absent parts are omitted; `file` may be NULL. */
void cli_error_record(const char *cmd, const char *file, const embt_error *err);

/* `s` for an error line: control bytes and DEL as \n, \t or \xNN, and cut after 200 bytes ("..."),
 * so that a token from the input can neither split the line nor drive the terminal. Returns one of
 * 2 rotating static buffers. */
const char *cli_printable(const char *s);

/* Until cli_temps_release(), SIGINT, SIGTERM and SIGHUP remove the temporary files of the outputs
 * being written (embt_remove_temp_files()) and the file named by cli_temps_own(), then end the
 * process as the signal would: an interrupted convert, init or meta set leaves nothing behind. */
void cli_temps_catch(void);
/* A file the command created itself (O_EXCL) and removes at the end; NULL: none. */
void cli_temps_own(const char *path);
void cli_temps_release(void);

/* Refuses (exit 1, one line naming `role`) an OUTPUT that is the same file as a text input that
 * is not an .embt: `train --input corpus.txt --output corpus.txt` would replace the corpus by the
 * model. Returns CLI_EXIT_OK when they differ or either does not exist. */
int cli_output_not_input(const char *cmd, const char *output, const char *input, const char *role);

/* getline() with a bound: reads one line of `in` into *buf (grown to at most max + 2 bytes, newline
 * kept, NUL-terminated) and returns its length; -1 at the end of the input or on a read error
 * (ferror tells), -2 when the line is longer than max bytes (one byte past the bound is consumed,
 * no more), -3 when memory ran
 * out. Without the bound,
 * `embt predict MODEL - < /dev/zero` grew one line until memory ran out. */
ssize_t cli_getline_max(char **buf, size_t *cap, FILE *in, size_t max);

/* Opens `path` for reading if it is a regular file (a FIFO neither blocks nor is read without end,
 * nor is /dev/zero). NULL on failure, *why then says why in a few words. */
FILE *cli_fopen_regular(const char *path, const char **why);

/* Prints `embt <cmd>: <file>: <message>` (file may be NULL) on stderr. */
void cli_errorf(const char *cmd, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints `embt <cmd>: <message>` and a hint to run `embt <cmd> --help` on stderr; returns
 * CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* cli_usage_error() about the argument `arg` (one of argv's strings), which names its origin in a
 * config file when it came from one (cli_set_arg_origins). */
int cli_arg_error(const char *cmd, const char *arg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Where the arguments came from when a file supplied them (`embt train CONFIG.yaml`): while set, a
 * usage error raised while getopt's optarg is argv[i] names `path:line[i]:col[i]` of that value.
 * cli_set_arg_origins(NULL, NULL, NULL, NULL, 0) clears it. */
void cli_set_arg_origins(const char *path, char *const *argv, const unsigned *line,
                         const unsigned *col, int argc);

/* Reports an option getopt_long() rejected (returned '?' or ':'); returns CLI_EXIT_USAGE. The
 * option string must start with ':' so a missing argument is told apart. */
int cli_bad_option(const char *cmd, int c, char **argv);

typedef enum cli_format {
    CLI_FORMAT_TEXT = 1,
    CLI_FORMAT_YAML = 2,
    CLI_FORMAT_JSON = 4
} cli_format;

/* Parses a --format value among the formats in `allowed` (a mask of cli_format).
 * Returns false (nothing printed) for an unknown or disallowed name. */
bool cli_parse_format(cli_format *out, const char *name, unsigned allowed);

/* Closes *mem (an open_memstream on *text, *text_len) and writes the text to stdout, so that a
 * command prints all of its results or none. *mem is NULL afterwards. Prints the error line itself.
 * Returns CLI_EXIT_OK or CLI_EXIT_ERROR. */
int cli_memstream_to_stdout(const char *cmd, const char *path, FILE **mem, char **text,
                            size_t *text_len);

/* Options shared by `predict` and `test`: -k N (1 to 1000000) and --threshold P. Returns -1 when
 * the command should go on (optind at the first operand), else the exit code (help or usage). */
int cli_parse_predict_options(const char *cmd, const char *usage, int argc, char **argv,
                              unsigned long long *k, double *threshold);

/* Parses a decimal unsigned integer: digits only (no sign or blank), no overflow, at most `max`. */
bool cli_parse_u64(uint64_t *out, const char *s, uint64_t max);

/* Opens `path` into *file and returns the table named `name` if it is tied to a vocabulary, or
 * (name NULL) the first table tied to one. On failure prints the error line and returns NULL;
 * *file may then be open and is the caller's to close. */
const embt_table *cli_open_vocab_table(const char *cmd, const char *path, const char *name,
                                       embt_file **file);

/* Finds `token` in the vocabulary; prints "token '...' not found" or the library's error and
 * returns false when it cannot. */
bool cli_find_token(uint32_t *id, const char *cmd, const char *path, const embt_vocab *vocab,
                    const char *token);

/* The options `similar` and `analogy` share: -k N (1 to 1000000, default 10), --restrict N,
 * --table NAME, --json. Put CLI_QUERY_LONGOPTS in the command's getopt_long table and "k:" in its
 * option string. */
typedef struct cli_query_options {
    uint64_t k, restrict_rows;
    const char *table;
    bool json;
} cli_query_options;
#define CLI_QUERY_OPTIONS_INIT                                                                     \
    {                                                                                              \
        10, 0, NULL, false                                                                         \
    }
enum { CLI_OPT_RESTRICT = 0x1000, CLI_OPT_TABLE, CLI_OPT_JSON };
#define CLI_QUERY_LONGOPTS                                                                         \
    {"restrict", required_argument, NULL, CLI_OPT_RESTRICT},                                       \
        {"table", required_argument, NULL, CLI_OPT_TABLE},                                         \
    {                                                                                              \
        "json", no_argument, NULL, CLI_OPT_JSON                                                    \
    }

/* Takes getopt's option c if it is one of the shared ones: returns -1 when it is not, CLI_EXIT_OK
 * when it was taken, CLI_EXIT_USAGE (message printed) for a bad value. */
int cli_query_option(cli_query_options *q, const char *cmd, int c, const char *arg);

/* Prints hits, best first, as `TOKEN<TAB>SCORE` lines or (json) one object per hit with rank,
 * token, id and score; all or nothing. Returns CLI_EXIT_OK or CLI_EXIT_ERROR (line printed). */
int cli_print_hits(const char *cmd, const char *path, const embt_vocab *vocab, const embt_hit *hits,
                   size_t n_hits, bool json);

/* ---- structured output ------------------------------------------------------------------------- */

/* A document built in memory and written at the end, so a command that fails half-way prints
 * nothing on stdout. Errors are sticky: after one, calls do nothing and cli_out_finish() fails.
 * YAML: block style, strings quoted when a YAML 1.1 reader would take them for a number, boolean
 * or null. JSON: one line, compact, strings escaped. */
typedef struct cli_out cli_out;

/* `format` is CLI_FORMAT_YAML or CLI_FORMAT_JSON. NULL when out of memory. */
cli_out *cli_out_new(cli_format format);
void cli_out_free(cli_out *out);

void cli_out_map_begin(cli_out *out);
void cli_out_map_end(cli_out *out);
void cli_out_seq_begin(cli_out *out, bool flow); /* flow: `[1, 2]` in YAML */
void cli_out_seq_end(cli_out *out);
void cli_out_key(cli_out *out, const char *key);
void cli_out_str(cli_out *out, const char *s, size_t len);
void cli_out_cstr(cli_out *out, const char *s); /* NULL gives null */
void cli_out_u64(cli_out *out, uint64_t v);
void cli_out_id(cli_out *out, uint32_t id); /* EMBT_NONE_ID gives null */
void cli_out_bool(cli_out *out, bool v);
void cli_out_null(cli_out *out);

/* Forwards the root mapping of a YAML document (`len` bytes) as one value; an empty document gives
 * an empty mapping. The text must already have passed embt_meta_parse() (mapping root, scalar keys,
 * no aliases). Scalars stay text: YAML keeps their source quoting, JSON makes them strings. */
void cli_out_yaml_doc(cli_out *out, const char *yaml, size_t len);

/* Finishes the document and writes it to `f` (JSON: followed by a newline). Returns false when the
 * document failed to build or could not be written. */
bool cli_out_finish(cli_out *out, FILE *f);

/* Appends `s` (len bytes) as a JSON string literal, quotes included, to f. */
void cli_json_string(FILE *f, const char *s, size_t len);

#endif
