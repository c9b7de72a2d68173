/* cmd_info.c: `embt info FILE [--format=yaml|json]`: the file's version, size, vocabularies, tables,
 * sections and metadata as one YAML document (default) or one JSON object, built whole before it is
 * printed so a failure leaves stdout empty. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <embt/embt.h>

#include "cli_util.h"
#include "cmd.h"

static const char usage[] =
    "usage: embt info [--format=yaml|json] FILE\n"
    "\n"
    "Shows the format version, size and alignment of FILE, its vocabularies, tables, sections and\n"
    "metadata. The file is opened (header, directory and entries checked) but not fully verified:\n"
    "use `embt validate` for that.\n"
    "\n"
    "options:\n"
    "  --format=yaml|json  output format (default yaml)\n"
    "  -h, --help          show this help\n";

/* The directory entry of the section of `type` named `name` (the first one), or -1. */
static long find_section(const embt_file *file, uint16_t type, const char *name)
{
    size_t n = embt_file_section_count(file);
    for (size_t i = 0; i < n; i++) {
        embt_section_info s;
        if (embt_file_section(&s, file, i) == EMBT_OK && s.type == type &&
            s.name_length == strlen(name) && memcmp(s.name, name, s.name_length) == 0)
            return (long)i;
    }
    return -1;
}

/* True when a section of `type` links to entry `target`. */
static bool has_linked(const embt_file *file, uint16_t type, long target)
{
    size_t n = embt_file_section_count(file);
    for (size_t i = 0; target >= 0 && i < n; i++) {
        embt_section_info s;
        if (embt_file_section(&s, file, i) == EMBT_OK && s.type == type &&
            s.link == (uint32_t)target)
            return true;
    }
    return false;
}

static void put_vocabs(cli_out *out, const embt_file *file)
{
    cli_out_key(out, "vocabularies");
    cli_out_seq_begin(out, false);
    for (size_t i = 0; i < embt_file_vocab_count(file); i++) {
        const embt_vocab *v = embt_file_vocab_at(file, i);
        long entry = find_section(file, EMBT_SECTION_VOCAB, embt_vocab_name(v));
        cli_out_map_begin(out);
        cli_out_key(out, "name");
        cli_out_cstr(out, embt_vocab_name(v));
        cli_out_key(out, "size");
        cli_out_u64(out, embt_vocab_size(v));
        cli_out_key(out, "unk_id");
        cli_out_id(out, embt_vocab_unk_id(v));
        cli_out_key(out, "pad_id");
        cli_out_id(out, embt_vocab_pad_id(v));
        cli_out_key(out, "bos_id");
        cli_out_id(out, embt_vocab_bos_id(v));
        cli_out_key(out, "eos_id");
        cli_out_id(out, embt_vocab_eos_id(v));
        cli_out_key(out, "has_counts");
        cli_out_bool(out, embt_vocab_has_counts(v) != 0);
        cli_out_key(out, "has_index");
        cli_out_bool(out, has_linked(file, EMBT_SECTION_VOCAB_INDEX, entry));
        cli_out_map_end(out);
    }
    cli_out_seq_end(out);
}

static void put_tables(cli_out *out, const embt_file *file)
{
    cli_out_key(out, "tables");
    cli_out_seq_begin(out, false);
    for (size_t i = 0; i < embt_file_table_count(file); i++) {
        const embt_table *t = embt_file_table_at(file, i);
        const embt_vocab *v = embt_table_vocab(t);
        long entry = find_section(file, EMBT_SECTION_TABLE, embt_table_name(t));
        embt_section_info s = {0};
        if (entry >= 0)
            embt_file_section(&s, file, (size_t)entry);
        cli_out_map_begin(out);
        cli_out_key(out, "name");
        cli_out_cstr(out, embt_table_name(t));
        cli_out_key(out, "dtype");
        cli_out_cstr(out, embt_dtype_name(embt_table_dtype(t)));
        cli_out_key(out, "rank");
        cli_out_u64(out, embt_table_rank(t));
        cli_out_key(out, "shape");
        cli_out_seq_begin(out, true);
        cli_out_u64(out, embt_table_rows(t));
        if (embt_table_rank(t) == 2)
            cli_out_u64(out, embt_table_cols(t));
        cli_out_seq_end(out);
        cli_out_key(out, "vocab");
        cli_out_cstr(out, v ? embt_vocab_name(v) : NULL);
        cli_out_key(out, "compressed");
        cli_out_bool(out, s.codec != 0);
        cli_out_key(out, "has_norms");
        cli_out_bool(out, embt_table_norms(t) != NULL);
        cli_out_map_end(out);
    }
    cli_out_seq_end(out);
}

static void put_sections(cli_out *out, const embt_file *file)
{
    static const char *const codecs[] = {"none", "deflate"};
    static const char *const filters[] = {"none", "shuffle"};
    cli_out_key(out, "sections");
    cli_out_seq_begin(out, false);
    for (size_t i = 0; i < embt_file_section_count(file); i++) {
        embt_section_info s;
        if (embt_file_section(&s, file, i) != EMBT_OK)
            continue;
        cli_out_map_begin(out);
        cli_out_key(out, "type");
        cli_out_cstr(out, embt_section_type_name(s.type));
        cli_out_key(out, "type_id");
        cli_out_u64(out, s.type);
        cli_out_key(out, "name");
        cli_out_str(out, s.name ? s.name : "", s.name_length);
        cli_out_key(out, "offset");
        cli_out_u64(out, s.offset);
        cli_out_key(out, "stored_length");
        cli_out_u64(out, s.stored_length);
        cli_out_key(out, "decoded_length");
        cli_out_u64(out, s.decoded_length);
        cli_out_key(out, "codec");
        if (s.codec < 2)
            cli_out_cstr(out, codecs[s.codec]);
        else
            cli_out_u64(out, s.codec);
        cli_out_key(out, "filter");
        if (s.filter < 2)
            cli_out_cstr(out, filters[s.filter]);
        else
            cli_out_u64(out, s.filter);
        cli_out_key(out, "link");
        cli_out_id(out, s.link);
        cli_out_key(out, "required");
        cli_out_bool(out, (s.flags & 1u) != 0);
        cli_out_map_end(out);
    }
    cli_out_seq_end(out);
}

int cmd_info(int argc, char **argv)
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
    for (int c; (c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1;) {
        switch (c) {
        case 'f':
            if (!cli_parse_format(&format, optarg, CLI_FORMAT_YAML | CLI_FORMAT_JSON)) {
                rc = cli_usage_error("info", "unknown format '%s' (expected yaml or json)", optarg);
                goto done;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            rc = CLI_EXIT_OK;
            goto done;
        default: rc = cli_bad_option("info", c, argv); goto done;
        }
    }
    if (argc - optind != 1) {
        rc = cli_usage_error("info", argc == optind ? "missing FILE" : "too many arguments");
        goto done;
    }
    const char *path = argv[optind];

    if (embt_file_open(&file, path, NULL) != EMBT_OK) {
        cli_error_record("info", path, embt_error_last());
        goto done;
    }
    size_t meta_len = 0;
    const char *meta_text = embt_file_metadata(file, &meta_len);
    /* the metadata is not verified at open: reject what the forwarder must not see */
    if (embt_meta_parse(&meta, meta_text, meta_len) != EMBT_OK) {
        embt_error err = *embt_error_last();
        snprintf(err.section, sizeof err.section, "metadata");
        cli_error_record("info", path, &err);
        goto done;
    }

    out = cli_out_new(format);
    if (!out) {
        cli_errorf("info", path, "out of memory");
        goto done;
    }
    unsigned major = 0, minor = 0;
    char version[32];
    embt_file_version(file, &major, &minor);
    snprintf(version, sizeof version, "%u.%u", major, minor);

    cli_out_map_begin(out);
    cli_out_key(out, "file");
    cli_out_cstr(out, path);
    cli_out_key(out, "format_version");
    cli_out_cstr(out, version);
    cli_out_key(out, "size");
    cli_out_u64(out, embt_file_size(file));
    cli_out_key(out, "alignment");
    cli_out_u64(out, embt_file_alignment(file));
    put_vocabs(out, file);
    put_tables(out, file);
    put_sections(out, file);
    cli_out_key(out, "metadata");
    cli_out_yaml_doc(out, meta_text, meta_len);
    cli_out_map_end(out);
    if (!cli_out_finish(out, stdout)) {
        cli_errorf("info", path, "cannot write the output");
        goto done;
    }
    rc = CLI_EXIT_OK;

done:
    cli_out_free(out);
    embt_meta_free(meta);
    embt_file_close(file);
    return rc;
}
