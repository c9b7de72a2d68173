/* cmd_meta.c: `embt meta FILE [get KEY | set KEY VALUE]`: prints the metadata document, one scalar,
 * or rewrites the file atomically with one key changed (every other section copied as stored; the
 * input is untouched on any failure). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <embt/embt.h>

#include "cli_util.h"
#include "cmd.h"

static const char usage[] =
    "usage: embt meta [--format=yaml|json] FILE\n"
    "       embt meta FILE get KEY\n"
    "       embt meta FILE set KEY VALUE\n"
    "\n"
    "Prints the YAML metadata of FILE (normalised: block style, keys in document order), prints\n"
    "the scalar at KEY, or sets KEY to VALUE. KEY is a dotted path through nested mappings\n"
    "(training.lr); set creates missing mappings and keeps the place of an existing key. set\n"
    "rewrites FILE atomically (a temporary file renamed over it); values are stored as text.\n"
    "Options must come before FILE; arguments after FILE are never options (VALUE may be -1).\n"
    "\n"
    "options:\n"
    "  --format=yaml|json  how to print the whole document (default yaml)\n"
    "  -h, --help          show this help\n";

/* Writes the file at `path` again with `meta` as its metadata; `file` is its open handle. */
static int rewrite(const char *path, const embt_file *file, embt_meta *meta)
{
    embt_writer *writer = NULL;
    int rc = CLI_EXIT_ERROR;
    const char *text = NULL;
    size_t len = 0;
    embt_writer_options opts = EMBT_WRITER_OPTIONS_INIT;
    opts.alignment = embt_file_alignment(file);

    cli_temps_catch();
    if (embt_meta_emit(&text, &len, meta) != EMBT_OK ||
        embt_writer_open(&writer, path, &opts) != EMBT_OK ||
        embt_writer_copy_sections(writer, file, EMBT_COPY_SKIP_METADATA) != EMBT_OK ||
        (len > 0 && embt_writer_set_metadata(writer, text, len) != EMBT_OK) ||
        embt_writer_commit(writer) != EMBT_OK) {
        cli_error_record("meta", path, embt_error_last());
        goto done;
    }
    rc = CLI_EXIT_OK;

done:
    embt_writer_free(writer);
    cli_temps_release();
    return rc;
}

int cmd_meta(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_format format = CLI_FORMAT_YAML;
    embt_file *file = NULL;
    embt_meta *meta = NULL;
    cli_out *out = NULL;
    int rc = CLI_EXIT_ERROR;

    optind = 0;
    opterr = 0;
    /* '+': stop at FILE, so a VALUE such as -1 is not taken for an option */
    for (int c; (c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1;) {
        switch (c) {
        case 'f':
            if (!cli_parse_format(&format, optarg, CLI_FORMAT_YAML | CLI_FORMAT_JSON)) {
                rc = cli_usage_error("meta", "unknown format '%s' (expected yaml or json)", optarg);
                goto done;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            rc = CLI_EXIT_OK;
            goto done;
        default: rc = cli_bad_option("meta", c, argv); goto done;
        }
    }
    int n_args = argc - optind;
    if (n_args < 1) {
        rc = cli_usage_error("meta", "missing FILE");
        goto done;
    }
    const char *path = argv[optind];
    const char *action = n_args > 1 ? argv[optind + 1] : NULL;
    char **rest = argv + optind + 2;
    int n_rest = n_args - 2;
    if (action && strcmp(action, "get") != 0 && strcmp(action, "set") != 0) {
        rc = cli_usage_error("meta", "unknown action '%s' (expected get or set)", action);
        goto done;
    }
    if (action && action[0] == 'g' && n_rest != 1) {
        rc = cli_usage_error("meta", "get takes one KEY");
        goto done;
    }
    if (action && action[0] == 's' && n_rest != 2) {
        rc = cli_usage_error("meta", "set takes KEY and VALUE");
        goto done;
    }

    if (embt_file_open(&file, path, NULL) != EMBT_OK) {
        cli_error_record("meta", path, embt_error_last());
        goto done;
    }
    size_t len = 0;
    const char *text = embt_file_metadata(file, &len);
    if (embt_meta_parse(&meta, text, len) != EMBT_OK) {
        embt_error err = *embt_error_last();
        snprintf(err.section, sizeof err.section, "metadata");
        cli_error_record("meta", path, &err);
        goto done;
    }

    if (!action) {
        if (format == CLI_FORMAT_JSON) {
            out = cli_out_new(CLI_FORMAT_JSON);
            if (out)
                cli_out_yaml_doc(out, text, len);
            if (!out || !cli_out_finish(out, stdout)) {
                cli_errorf("meta", path, "cannot write the output");
                goto done;
            }
        } else {
            const char *yaml = NULL;
            size_t yaml_len = 0;
            if (embt_meta_emit(&yaml, &yaml_len, meta) != EMBT_OK) {
                cli_error_record("meta", path, embt_error_last());
                goto done;
            }
            if (fwrite(yaml, 1, yaml_len, stdout) != yaml_len || fflush(stdout) != 0) {
                cli_errorf("meta", path, "cannot write the output");
                goto done;
            }
        }
    } else if (action[0] == 'g') {
        const char *value = NULL;
        size_t value_len = 0;
        if (embt_meta_get(&value, &value_len, meta, rest[0]) != EMBT_OK) {
            cli_error_record("meta", path, embt_error_last());
            goto done;
        }
        fwrite(value, 1, value_len, stdout);
        fputc('\n', stdout);
        if (fflush(stdout) != 0) {
            cli_errorf("meta", path, "cannot write the output");
            goto done;
        }
    } else {
        if (embt_meta_set(meta, rest[0], rest[1]) != EMBT_OK) {
            cli_error_record("meta", path, embt_error_last());
            goto done;
        }
        if (rewrite(path, file, meta) != CLI_EXIT_OK)
            goto done;
    }
    rc = CLI_EXIT_OK;

done:
    cli_out_free(out);
    embt_meta_free(meta);
    embt_file_close(file);
    return rc;
}
