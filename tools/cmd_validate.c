/* cmd_validate.c: `embt validate FILE...`: opens each file with full verification (every rule of
 * spec/FORMAT.md 7) and reports `FILE: ok` on stdout or the broken rule on stderr (text), or one JSON
 * object per file on stdout (json). Exit 1 when any file is invalid or unreadable. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <embt/embt.h>

#include "cli_util.h"
#include "cmd.h"

static const char usage[] =
    "usage: embt validate [--format=text|json] [--quiet] FILE...\n"
    "\n"
    "Checks each FILE against every rule of spec/FORMAT.md section 7, reading all its bytes.\n"
    "Exit status 0 when all are valid, 1 when any is invalid or cannot be read, 2 on bad usage.\n"
    "\n"
    "options:\n"
    "  --format=text|json  text: `FILE: ok` on stdout, one error line per invalid file on stderr;\n"
    "                      json: one object per file on stdout with the fields file, valid,\n"
    "                      status, rule, offset, section, message (default text)\n"
    "  -q, --quiet         text: do not print `FILE: ok`\n"
    "  -h, --help          show this help\n";

/* {"file","valid","status","rule","offset","section","message"} on one line. */
static void print_json(const char *path, const embt_error *err)
{
    bool valid = err == NULL;
    fputs("{\"file\":", stdout);
    cli_json_string(stdout, path, strlen(path));
    printf(",\"valid\":%s,\"status\":\"%s\"", valid ? "true" : "false",
           embt_status_name(valid ? EMBT_OK : err->code));
    if (!valid && err->rule)
        printf(",\"rule\":%u", (unsigned)err->rule);
    else
        fputs(",\"rule\":null", stdout);
    if (!valid && err->offset != EMBT_NO_OFFSET)
        printf(",\"offset\":%llu", (unsigned long long)err->offset);
    else
        fputs(",\"offset\":null", stdout);
    fputs(",\"section\":", stdout);
    if (!valid && err->section[0])
        cli_json_string(stdout, err->section, strlen(err->section));
    else
        fputs("null", stdout);
    fputs(",\"message\":", stdout);
    if (!valid)
        cli_json_string(stdout, err->message, strlen(err->message));
    else
        fputs("null", stdout);
    fputs("}\n", stdout);
}

int cmd_validate(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_format format = CLI_FORMAT_TEXT;
    bool quiet = false;
    int rc = CLI_EXIT_OK;

    optind = 0;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1;) {
        switch (c) {
        case 'f':
            if (!cli_parse_format(&format, optarg, CLI_FORMAT_TEXT | CLI_FORMAT_JSON)) {
                rc = cli_usage_error("validate", "unknown format '%s' (expected text or json)",
                                     optarg);
                goto done;
            }
            break;
        case 'q': quiet = true; break;
        case 'h': fputs(usage, stdout); goto done;
        default: rc = cli_bad_option("validate", c, argv); goto done;
        }
    }
    if (optind == argc) {
        rc = cli_usage_error("validate", "missing FILE");
        goto done;
    }

    for (int i = optind; i < argc; i++) {
        const char *path = argv[i];
        embt_open_options opts = EMBT_OPEN_OPTIONS_INIT;
        opts.flags = EMBT_OPEN_VERIFY;
        embt_file *file = NULL;
        embt_status st = embt_file_open(&file, path, &opts);
        embt_file_close(file);
        const embt_error *err = st == EMBT_OK ? NULL : embt_error_last();
        if (err)
            rc = CLI_EXIT_ERROR;
        if (format == CLI_FORMAT_JSON)
            print_json(path, err);
        else if (err)
            cli_error_record("validate", path, err);
        else if (!quiet)
            printf("%s: ok\n", path);
    }
    if (fflush(stdout) != 0) {
        cli_errorf("validate", NULL, "cannot write the output: %s", strerror(errno));
        rc = CLI_EXIT_ERROR;
    }

done:
    return rc;
}
