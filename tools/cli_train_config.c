/* cli_train_config.c: `embt train CONFIG.yaml`: turns the YAML mapping of flag names to values into
 * the equivalent command line, rejecting unknown keys with their line (libyaml's parser events). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cli_train.h"
#include "cli_util.h"

/* Every long option of `embt train`; booleans take no value on the command line. */
static const struct {
    const char *name;
    int boolean;
} keys[] = {
    {"task", 0},       {"input", 0},     {"output", 0},      {"pretrained", 0}, {"freeze", 1},
    {"dim", 0},        {"lr", 0},        {"epoch", 0},       {"window", 0},     {"neg", 0},
    {"sample", 0},     {"min-count", 0}, {"word-ngrams", 0}, {"bucket", 0},     {"threads", 0},
    {"seed", 0},       {"optimizer", 0}, {"resume", 0},      {"init", 0},       {"quiet", 1},
    {"stop-after", 0},
};
#define N_KEYS (sizeof keys / sizeof keys[0])

void cli_train_config_free(cli_config_args *args)
{
    for (int i = 0; args->argv && i < args->argc; i++)
        free(args->argv[i]);
    free(args->argv);
    free(args->line);
    free(args->col);
    memset(args, 0, sizeof *args);
}

/* Appends s, found at line:col of the file, to the command line. */
static int push(cli_config_args *a, int *cap, const char *s, size_t line, size_t col)
{
    if (a->argc + 2 > *cap) {
        int nc = *cap ? *cap * 2 : 16;
        char **g = realloc(a->argv, (size_t)nc * sizeof *g);
        if (g)
            a->argv = g;
        unsigned *l = realloc(a->line, (size_t)nc * sizeof *l);
        if (l)
            a->line = l;
        unsigned *c = realloc(a->col, (size_t)nc * sizeof *c);
        if (c)
            a->col = c;
        if (!g || !l || !c)
            return -1;
        *cap = nc;
    }
    char *d = strdup(s);
    if (!d)
        return -1;
    a->line[a->argc] = (unsigned)line;
    a->col[a->argc] = (unsigned)col;
    a->argv[a->argc++] = d;
    a->argv[a->argc] = NULL;
    return 0;
}

int cli_train_config(const char *path, cli_config_args *out)
{
    memset(out, 0, sizeof *out);
    const char *why = NULL;
    FILE *f = cli_fopen_regular(path, &why);
    if (!f) {
        cli_errorf("train", path, "cannot open: %s", why);
        return CLI_EXIT_ERROR;
    }
    yaml_parser_t p;
    yaml_event_t ev;
    int rc = CLI_EXIT_OK, cap = 0, depth = 0, have_event = 0, documents = 0;
    unsigned seen[N_KEYS] = {0};
    char key[64] = "";
    size_t key_line = 0, key_col = 0, key_idx = N_KEYS;
    int expect_value = 0;
    if (!yaml_parser_initialize(&p)) {
        fclose(f);
        cli_errorf("train", path, "out of memory");
        return CLI_EXIT_ERROR;
    }
    yaml_parser_set_input_file(&p, f);
    if (push(out, &cap, "train", 0, 0))
        goto nomem;
    for (;;) {
        if (!yaml_parser_parse(&p, &ev)) {
            cli_errorf("train", NULL, "%s:%zu:%zu: %s", path, p.problem_mark.line + 1,
                       p.problem_mark.column + 1, p.problem ? p.problem : "bad YAML");
            rc = CLI_EXIT_USAGE;
            goto done;
        }
        have_event = 1;
        size_t line = ev.start_mark.line + 1, col = ev.start_mark.column + 1;
        if (ev.type == YAML_STREAM_END_EVENT)
            break;
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            if (documents++ > 0) { /* a second document would be merged into the first */
                cli_errorf("train", NULL, "%s:%zu:%zu: the config must be one YAML document", path,
                           line, col);
                rc = CLI_EXIT_USAGE;
                goto done;
            }
            break;
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (depth > 0 || ev.type == YAML_SEQUENCE_START_EVENT) {
                if (depth > 0)
                    cli_errorf("train", NULL, "%s:%zu:%zu: key '%s' needs a single value", path,
                               key_line, key_col, key);
                else
                    cli_errorf("train", NULL, "%s:%zu:%zu: the config must be a mapping", path,
                               line, col);
                rc = CLI_EXIT_USAGE;
                goto done;
            }
            depth++;
            break;
        case YAML_MAPPING_END_EVENT: depth--; break;
        case YAML_ALIAS_EVENT:
            cli_errorf("train", NULL, "%s:%zu:%zu: aliases are not allowed", path, line, col);
            rc = CLI_EXIT_USAGE;
            goto done;
        case YAML_SCALAR_EVENT: {
            const char *v = (const char *)ev.data.scalar.value;
            if (depth == 0) {
                cli_errorf("train", NULL, "%s:%zu:%zu: the config must be a mapping", path, line,
                           col);
                rc = CLI_EXIT_USAGE;
                goto done;
            }
            if (strlen(v) != ev.data.scalar.length) { /* a "\0" escape would cut the value */
                cli_errorf("train", NULL, "%s:%zu:%zu: a NUL character is not allowed", path, line,
                           col);
                rc = CLI_EXIT_USAGE;
                goto done;
            }
            if (!expect_value) {
                snprintf(key, sizeof key, "%s", v);
                for (char *c = key; *c; c++)
                    if (*c == '_')
                        *c = '-';
                key_line = line;
                key_col = col;
                key_idx = N_KEYS;
                for (size_t k = 0; k < N_KEYS; k++)
                    if (strcmp(keys[k].name, key) == 0)
                        key_idx = k;
                if (key_idx == N_KEYS || strlen(v) >= sizeof key) {
                    cli_errorf("train", NULL, "%s:%zu:%zu: unknown key '%s'", path, line, col, v);
                    rc = CLI_EXIT_USAGE;
                    goto done;
                }
                if (seen[key_idx]) {
                    cli_errorf("train", NULL, "%s:%zu:%zu: key '%s' given twice (first on line %u)",
                               path, line, col, v, seen[key_idx]);
                    rc = CLI_EXIT_USAGE;
                    goto done;
                }
                seen[key_idx] = (unsigned)line;
                expect_value = 1;
                break;
            }
            expect_value = 0;
            char opt[80];
            snprintf(opt, sizeof opt, "--%s", keys[key_idx].name);
            if (keys[key_idx].boolean) {
                int on = !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on");
                int off = !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off");
                if (!on && !off) {
                    cli_errorf("train", NULL, "%s:%zu:%zu: key '%s' takes true or false", path,
                               line, col, key);
                    rc = CLI_EXIT_USAGE;
                    goto done;
                }
                if (on && push(out, &cap, opt, key_line, key_col))
                    goto nomem;
            } else if (push(out, &cap, opt, key_line, key_col) || push(out, &cap, v, line, col)) {
                goto nomem;
            }
            break;
        }
        default: break;
        }
        yaml_event_delete(&ev);
        have_event = 0;
    }
    goto done;
nomem:
    cli_errorf("train", path, "out of memory");
    rc = CLI_EXIT_ERROR;
done:
    if (have_event)
        yaml_event_delete(&ev);
    yaml_parser_delete(&p);
    fclose(f);
    if (rc != CLI_EXIT_OK)
        cli_train_config_free(out);
    return rc;
}
