/* cli_util.c: the CLI's shared helpers: error lines on stderr, usage errors, --format parsing and the
 * YAML/JSON output writer. Output is built in memory and written whole, so stdout stays clean when a
 * command fails. */
#include "cli_util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

void cli_error_record(const char *cmd, const char *file, const embt_error *err)
{
    fprintf(stderr, "embt %s: ", cmd);
    if (err->line) {
        /* text input: the file itself, or a text section inside it (`model.embt: metadata:3:5`) */
        if (file && err->section[0])
            fprintf(stderr, "%s: %s:", file, err->section);
        else if (file)
            fprintf(stderr, "%s:", file);
        else
            fputs("line ", stderr);
        fprintf(stderr, "%u:%u: ", (unsigned)err->line, (unsigned)err->column);
    } else if (file) {
        fprintf(stderr, "%s: ", file);
    }
    if (!err->line && err->offset != EMBT_NO_OFFSET) {
        fprintf(stderr, "offset 0x%llx", (unsigned long long)err->offset);
        if (err->section[0])
            fprintf(stderr, " (%s)", err->section);
        fputs(": ", stderr);
    } else if (!err->line && err->section[0]) {
        fprintf(stderr, "%s: ", err->section);
    }
    if (err->rule)
        fprintf(stderr, "rule %u: ", (unsigned)err->rule);
    const char *msg = err->message[0] ? err->message : embt_status_name(err->code);
    fputs(msg, stderr);
    /* the library leaves strerror to the caller unless its message already says it */
    if (err->code == EMBT_EIO && err->sys_errno) {
        const char *sys = strerror(err->sys_errno);
        if (!strstr(msg, sys))
            fprintf(stderr, ": %s", sys);
    }
    fputc('\n', stderr);
}

static const int temp_signals[3] = {SIGINT, SIGTERM, SIGHUP};
static struct sigaction temp_old[3];
static bool temps_caught;
static char own_temp[PATH_MAX]; /* a file the CLI itself created, or "" */

static void remove_temps(int sig)
{
    embt_remove_temp_files(); /* async-signal-safe, as unlink is */
    if (own_temp[0])
        unlink(own_temp);
    signal(sig, SIG_DFL);
    raise(sig);
}

void cli_temps_catch(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = remove_temps;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; i++) {
        sigaction(temp_signals[i], NULL, &temp_old[i]);
        if (temp_old[i].sa_handler != SIG_IGN) /* nohup's SIGHUP stays ignored */
            sigaction(temp_signals[i], &sa, NULL);
    }
    temps_caught = true;
}

void cli_temps_own(const char *path)
{
    own_temp[0] = '\0';
    if (path && strlen(path) < sizeof own_temp) /* set whole before the handler can see it */
        memcpy(own_temp, path, strlen(path) + 1);
}

void cli_temps_release(void)
{
    if (!temps_caught)
        return;
    temps_caught = false;
    for (int i = 0; i < 3; i++)
        sigaction(temp_signals[i], &temp_old[i], NULL);
    own_temp[0] = '\0';
}

int cli_output_not_input(const char *cmd, const char *output, const char *input, const char *role)
{
    struct stat a, b;
    if (!output || !input || stat(output, &a) != 0 || stat(input, &b) != 0 ||
        a.st_dev != b.st_dev || a.st_ino != b.st_ino)
        return CLI_EXIT_OK;
    cli_errorf(cmd, output, "is also the %s: it would be replaced; choose another output", role);
    return CLI_EXIT_ERROR;
}

ssize_t cli_getline_max(char **buf, size_t *cap, FILE *in, size_t max)
{
    size_t len = 0;
    for (int c; (c = getc_unlocked(in)) != EOF;) {
        if (len == max + 1)
            return -2;
        if (len + 2 > *cap) {
            size_t want = *cap ? 2 * *cap : 256;
            if (want > max + 2)
                want = max + 2;
            char *grown = realloc(*buf, want);
            if (!grown)
                return -3;
            *buf = grown;
            *cap = want;
        }
        (*buf)[len++] = (char)c;
        if (c == '\n')
            break;
    }
    if (len == 0)
        return -1;
    if (len == max + 1 && (*buf)[len - 1] != '\n')
        return -2;
    (*buf)[len] = '\0';
    return (ssize_t)len;
}

FILE *cli_fopen_regular(const char *path, const char **why)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        *why = strerror(errno);
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    int flags = S_ISREG(st.st_mode) ? fcntl(fd, F_GETFL) : -1;
    FILE *f = flags >= 0 && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        *why = S_ISREG(st.st_mode) ? strerror(errno) : "not a regular file";
        close(fd);
    }
    return f;
}

const char *cli_printable(const char *s)
{
    enum { SHOWN = 200 };
    static char bufs[2][SHOWN * 4 + 4];
    static unsigned next;
    char *b = bufs[next++ % 2], *o = b;
    size_t i = 0;
    for (; s[i] && i < SHOWN; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n' || c == '\t') {
            *o++ = '\\';
            *o++ = c == '\n' ? 'n' : 't';
        } else if (c < 0x20 || c == 0x7f) {
            o += sprintf(o, "\\x%02x", c);
        } else {
            *o++ = (char)c;
        }
    }
    if (s[i])
        o += sprintf(o, "...");
    *o = '\0';
    return b;
}

void cli_errorf(const char *cmd, const char *file, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "embt %s: ", cmd);
    if (file)
        fprintf(stderr, "%s: ", file);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static struct {
    const char *path;
    char *const *argv;
    const unsigned *line, *col;
    int argc;
} origins;

void cli_set_arg_origins(const char *path, char *const *argv, const unsigned *line,
                         const unsigned *col, int argc)
{
    origins.path = path;
    origins.argv = argv;
    origins.line = line;
    origins.col = col;
    origins.argc = argc;
    optarg = NULL; /* a value left by an earlier getopt loop is not one of these */
}

/* The usage error line, prefixed with the origin of `arg` when a config file supplied it. */
static int usage_error_v(const char *cmd, const char *arg, const char *fmt, va_list ap)
{
    fprintf(stderr, "embt %s: ", cmd);
    for (int i = 0; arg && i < origins.argc; i++)
        if (origins.argv[i] == arg && origins.line[i] > 0) {
            fprintf(stderr, "%s:%u:%u: ", origins.path, origins.line[i], origins.col[i]);
            break;
        }
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\ntry 'embt %s --help' for usage\n", cmd);
    return CLI_EXIT_USAGE;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    /* inside a getopt loop optarg is the value being refused; glibc's getopt clears it on every
     * call, so after the loop (a missing option, say) no value is named */
    va_list ap;
    va_start(ap, fmt);
    int rc = usage_error_v(cmd, optarg, fmt, ap);
    va_end(ap);
    return rc;
}

int cli_arg_error(const char *cmd, const char *arg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = usage_error_v(cmd, arg, fmt, ap);
    va_end(ap);
    return rc;
}

int cli_bad_option(const char *cmd, int c, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    if (c == ':')
        return cli_arg_error(cmd, arg, "option '%s' needs a value", arg);
    if (optopt && optopt != '?')
        return cli_usage_error(cmd, "unknown option '-%c'", optopt);
    return cli_arg_error(cmd, arg, "unknown option '%s'", arg);
}

bool cli_parse_format(cli_format *out, const char *name, unsigned allowed)
{
    static const struct {
        const char *name;
        cli_format format;
    } names[] = {{"text", CLI_FORMAT_TEXT}, {"yaml", CLI_FORMAT_YAML}, {"json", CLI_FORMAT_JSON}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0 && (allowed & names[i].format)) {
            *out = names[i].format;
            return true;
        }
    return false;
}

/* ---- output buffer ----------------------------------------------------------------------------- */

typedef struct buffer {
    char *data;
    size_t len, cap;
} buffer;

static bool buf_add(buffer *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return false;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

static bool buf_str(buffer *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

static bool json_escape(buffer *b, const char *s, size_t len)
{
    bool ok = buf_add(b, "\"", 1);
    for (size_t i = 0; ok && i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            ok = buf_add(b, esc, 2);
        } else if (c == '\n') {
            ok = buf_str(b, "\\n");
        } else if (c == '\t') {
            ok = buf_str(b, "\\t");
        } else if (c == '\r') {
            ok = buf_str(b, "\\r");
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            ok = buf_str(b, esc);
        } else {
            ok = buf_add(b, &s[i], 1);
        }
    }
    return ok && buf_add(b, "\"", 1);
}

void cli_json_string(FILE *f, const char *s, size_t len)
{
    buffer b = {0};
    if (json_escape(&b, s, len))
        fwrite(b.data, 1, b.len, f);
    free(b.data);
}

/* ---- cli_out ----------------------------------------------------------------------------------- */

#define OUT_DEPTH_MAX 128

struct cli_out {
    cli_format format;
    bool failed;
    buffer buf;
    /* YAML */
    yaml_emitter_t emitter;
    bool emitter_ready;
    bool started;
    /* JSON: per open container, whether it is a mapping and how many members it has */
    bool is_map[OUT_DEPTH_MAX];
    size_t members[OUT_DEPTH_MAX];
    size_t depth;
    bool after_key;
};

static int yaml_write(void *data, unsigned char *buffer_, size_t size)
{
    return buf_add(data, buffer_, size) ? 1 : 0;
}

cli_out *cli_out_new(cli_format format)
{
    cli_out *out = calloc(1, sizeof *out);
    if (!out)
        return NULL;
    out->format = format;
    if (format == CLI_FORMAT_YAML) {
        if (!yaml_emitter_initialize(&out->emitter)) {
            free(out);
            return NULL;
        }
        out->emitter_ready = true;
        yaml_emitter_set_output(&out->emitter, yaml_write, &out->buf);
        yaml_emitter_set_encoding(&out->emitter, YAML_UTF8_ENCODING);
        yaml_emitter_set_unicode(&out->emitter, 1);
        yaml_emitter_set_width(&out->emitter, -1);
        yaml_emitter_set_indent(&out->emitter, 2);
        yaml_emitter_set_break(&out->emitter, YAML_LN_BREAK);
    }
    return out;
}

void cli_out_free(cli_out *out)
{
    if (!out)
        return;
    if (out->emitter_ready)
        yaml_emitter_delete(&out->emitter);
    free(out->buf.data);
    free(out);
}

/* Sends one event (consumed) to the emitter, starting the stream and document first. */
static void yaml_send(cli_out *out, yaml_event_t *ev, bool ready)
{
    if (out->failed)
        goto fail;
    if (!ready) {
        out->failed = true;
        return;
    }
    if (!out->started) {
        yaml_event_t s;
        out->started = true;
        if (!yaml_stream_start_event_initialize(&s, YAML_UTF8_ENCODING) ||
            !yaml_emitter_emit(&out->emitter, &s) ||
            !yaml_document_start_event_initialize(&s, NULL, NULL, NULL, 1) ||
            !yaml_emitter_emit(&out->emitter, &s)) {
            out->failed = true;
            goto fail;
        }
    }
    if (!yaml_emitter_emit(&out->emitter, ev))
        out->failed = true;
    return;
fail:
    yaml_event_delete(ev);
}

static void yaml_scalar(cli_out *out, const char *s, size_t len, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    bool ok =
        yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)len, 1, 1, style) != 0;
    yaml_send(out, &ev, ok);
}

/* True when a YAML 1.1 reader resolving plain scalars would not read `s` as a string: the null,
 * boolean and number forms of the YAML 1.1 type repository. Erring towards quoting is harmless. */
static bool plain_is_not_string(const char *s, size_t len)
{
    static const char *const words[] = {"~", "null", "true", "false", "yes",   "no",   "on", "off",
                                        "y", "n",    ".inf", "-.inf", "+.inf", ".nan", "<<", "="};
    if (len == 0)
        return true;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strlen(words[i]) == len && strncasecmp(s, words[i], len) == 0)
            return true;
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    if (i < len && s[i] == '.')
        i++;
    return i < len && s[i] >= '0' && s[i] <= '9';
}

static void json_before_value(cli_out *out)
{
    if (out->depth == 0 || out->after_key) {
        out->after_key = false;
        return;
    }
    if (out->members[out->depth - 1]++ > 0 && !buf_add(&out->buf, ",", 1))
        out->failed = true;
}

static void json_raw(cli_out *out, const char *s)
{
    if (out->failed)
        return;
    json_before_value(out);
    if (!buf_str(&out->buf, s))
        out->failed = true;
}

static void json_open(cli_out *out, bool is_map)
{
    if (out->failed)
        return;
    if (out->depth == OUT_DEPTH_MAX) {
        out->failed = true;
        return;
    }
    json_raw(out, is_map ? "{" : "[");
    out->is_map[out->depth] = is_map;
    out->members[out->depth] = 0;
    out->depth++;
}

static void json_close(cli_out *out, bool is_map)
{
    if (out->failed)
        return;
    if (out->depth == 0 || out->is_map[out->depth - 1] != is_map) {
        out->failed = true;
        return;
    }
    out->depth--;
    if (!buf_str(&out->buf, is_map ? "}" : "]"))
        out->failed = true;
}

void cli_out_map_begin(cli_out *out)
{
    if (out->format == CLI_FORMAT_JSON) {
        json_open(out, true);
        return;
    }
    yaml_event_t ev;
    bool ok =
        yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) != 0;
    yaml_send(out, &ev, ok);
}

void cli_out_map_end(cli_out *out)
{
    if (out->format == CLI_FORMAT_JSON) {
        json_close(out, true);
        return;
    }
    yaml_event_t ev;
    bool ok = yaml_mapping_end_event_initialize(&ev) != 0;
    yaml_send(out, &ev, ok);
}

void cli_out_seq_begin(cli_out *out, bool flow)
{
    if (out->format == CLI_FORMAT_JSON) {
        json_open(out, false);
        return;
    }
    yaml_event_t ev;
    bool ok =
        yaml_sequence_start_event_initialize(
            &ev, NULL, NULL, 1, flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE) != 0;
    yaml_send(out, &ev, ok);
}

void cli_out_seq_end(cli_out *out)
{
    if (out->format == CLI_FORMAT_JSON) {
        json_close(out, false);
        return;
    }
    yaml_event_t ev;
    bool ok = yaml_sequence_end_event_initialize(&ev) != 0;
    yaml_send(out, &ev, ok);
}

static void out_key_n(cli_out *out, const char *key, size_t len)
{
    if (out->format == CLI_FORMAT_YAML) {
        yaml_scalar(out, key, len,
                    plain_is_not_string(key, len) ? YAML_SINGLE_QUOTED_SCALAR_STYLE
                                                  : YAML_ANY_SCALAR_STYLE);
        return;
    }
    if (out->failed)
        return;
    if (out->depth == 0 || !out->is_map[out->depth - 1] || out->after_key) {
        out->failed = true;
        return;
    }
    if ((out->members[out->depth - 1]++ > 0 && !buf_add(&out->buf, ",", 1)) ||
        !json_escape(&out->buf, key, len) || !buf_add(&out->buf, ":", 1))
        out->failed = true;
    out->after_key = true;
}

void cli_out_key(cli_out *out, const char *key)
{
    out_key_n(out, key, strlen(key));
}

void cli_out_str(cli_out *out, const char *s, size_t len)
{
    if (out->format == CLI_FORMAT_YAML) {
        yaml_scalar(out, s, len,
                    plain_is_not_string(s, len) ? YAML_SINGLE_QUOTED_SCALAR_STYLE
                                                : YAML_ANY_SCALAR_STYLE);
        return;
    }
    if (out->failed)
        return;
    json_before_value(out);
    if (!json_escape(&out->buf, s, len))
        out->failed = true;
}

void cli_out_cstr(cli_out *out, const char *s)
{
    if (s)
        cli_out_str(out, s, strlen(s));
    else
        cli_out_null(out);
}

/* A scalar that is not a string: plain in YAML, bare in JSON. */
static void out_plain(cli_out *out, const char *text)
{
    if (out->format == CLI_FORMAT_YAML)
        yaml_scalar(out, text, strlen(text), YAML_PLAIN_SCALAR_STYLE);
    else
        json_raw(out, text);
}

void cli_out_u64(cli_out *out, uint64_t v)
{
    char text[32];
    snprintf(text, sizeof text, "%llu", (unsigned long long)v);
    out_plain(out, text);
}

void cli_out_id(cli_out *out, uint32_t id)
{
    if (id == EMBT_NONE_ID)
        cli_out_null(out);
    else
        cli_out_u64(out, id);
}

void cli_out_bool(cli_out *out, bool v)
{
    out_plain(out, v ? "true" : "false");
}

void cli_out_null(cli_out *out)
{
    out_plain(out, "null");
}

void cli_out_yaml_doc(cli_out *out, const char *yaml, size_t len)
{
    yaml_parser_t parser;
    if (out->failed)
        return;
    if (!yaml_parser_initialize(&parser)) {
        out->failed = true;
        return;
    }
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    yaml_parser_set_input_string(&parser, (const unsigned char *)(yaml ? yaml : ""), len);
    /* per open collection of the source document: is it a mapping waiting for a key */
    bool key_next[OUT_DEPTH_MAX];
    bool is_map[OUT_DEPTH_MAX];
    size_t depth = 0;
    bool wrote_root = false;
    for (bool done = false; !done && !out->failed;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            out->failed = true;
            break;
        }
        bool as_key = depth > 0 && is_map[depth - 1] && key_next[depth - 1];
        /* a value completes a pair: the parent mapping waits for a key again */
        bool value_event = ev.type == YAML_SCALAR_EVENT || ev.type == YAML_MAPPING_START_EVENT ||
                           ev.type == YAML_SEQUENCE_START_EVENT;
        if (value_event && depth > 0 && is_map[depth - 1])
            key_next[depth - 1] = !key_next[depth - 1];
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = true; break;
        case YAML_SCALAR_EVENT:
            if (depth == 0)
                break; /* an empty document ("---" alone) */
            if (as_key) {
                out_key_n(out, (const char *)ev.data.scalar.value, ev.data.scalar.length);
            } else if (out->format == CLI_FORMAT_YAML) {
                yaml_scalar(out, (const char *)ev.data.scalar.value, ev.data.scalar.length,
                            ev.data.scalar.style);
            } else {
                cli_out_str(out, (const char *)ev.data.scalar.value, ev.data.scalar.length);
            }
            break;
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (as_key || depth == OUT_DEPTH_MAX) {
                out->failed = true;
                break;
            }
            is_map[depth] = ev.type == YAML_MAPPING_START_EVENT;
            key_next[depth] = true;
            depth++;
            wrote_root = true;
            if (is_map[depth - 1])
                cli_out_map_begin(out);
            else
                cli_out_seq_begin(out, false);
            break;
        case YAML_MAPPING_END_EVENT:
            depth--;
            cli_out_map_end(out);
            break;
        case YAML_SEQUENCE_END_EVENT:
            depth--;
            cli_out_seq_end(out);
            break;
        case YAML_ALIAS_EVENT: out->failed = true; break;
        default: break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    if (!wrote_root && !out->failed) {
        cli_out_map_begin(out);
        cli_out_map_end(out);
    }
}

bool cli_out_finish(cli_out *out, FILE *f)
{
    if (out->failed)
        return false;
    if (out->format == CLI_FORMAT_YAML) {
        yaml_event_t ev;
        if (!out->started)
            return false;
        bool ok = yaml_document_end_event_initialize(&ev, 1) &&
                  yaml_emitter_emit(&out->emitter, &ev) && yaml_stream_end_event_initialize(&ev) &&
                  yaml_emitter_emit(&out->emitter, &ev) && yaml_emitter_flush(&out->emitter);
        if (!ok)
            return false;
    } else {
        if (out->depth != 0 || !buf_add(&out->buf, "\n", 1))
            return false;
    }
    if (fwrite(out->buf.data, 1, out->buf.len, f) != out->buf.len)
        return false;
    return fflush(f) == 0;
}

bool cli_parse_u64(uint64_t *out, const char *s, uint64_t max)
{
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

const embt_table *cli_open_vocab_table(const char *cmd, const char *path, const char *name,
                                       embt_file **file)
{
    if (embt_file_open(file, path, NULL) != EMBT_OK) {
        cli_error_record(cmd, path, embt_error_last());
        return NULL;
    }
    const embt_table *t = NULL;
    if (name) {
        if (embt_file_table(&t, *file, name) == EMBT_OK && embt_table_vocab(t))
            return t;
        cli_errorf(cmd, path, "no table '%s' tied to a vocabulary", name);
        return NULL;
    }
    for (size_t i = 0; i < embt_file_table_count(*file); i++)
        if (embt_table_vocab(t = embt_file_table_at(*file, i)))
            return t;
    cli_errorf(cmd, path, "no table tied to a vocabulary");
    return NULL;
}

bool cli_find_token(uint32_t *id, const char *cmd, const char *path, const embt_vocab *vocab,
                    const char *token)
{
    embt_status st = embt_vocab_find(id, vocab, token, strlen(token));
    if (st == EMBT_ENOTFOUND)
        cli_errorf(cmd, path, "token '%s' not found", cli_printable(token));
    else if (st != EMBT_OK)
        cli_error_record(cmd, path, embt_error_last());
    return st == EMBT_OK;
}

int cli_query_option(cli_query_options *q, const char *cmd, int c, const char *arg)
{
    switch (c) {
    case 'k':
        if (!cli_parse_u64(&q->k, arg, UINT64_MAX) || q->k == 0 || q->k > 1000000)
            return cli_usage_error(cmd, "bad -k '%s' (expected 1 to 1000000)", arg);
        return CLI_EXIT_OK;
    case CLI_OPT_RESTRICT:
        if (!cli_parse_u64(&q->restrict_rows, arg, UINT64_MAX))
            return cli_usage_error(cmd, "bad --restrict '%s'", arg);
        return CLI_EXIT_OK;
    case CLI_OPT_TABLE: q->table = arg; return CLI_EXIT_OK;
    case CLI_OPT_JSON: q->json = true; return CLI_EXIT_OK;
    default: return -1;
    }
}

int cli_print_hits(const char *cmd, const char *path, const embt_vocab *vocab, const embt_hit *hits,
                   size_t n_hits, bool json)
{
    char *text = NULL;
    size_t text_len = 0;
    FILE *mem = open_memstream(&text, &text_len);
    if (!mem) {
        cli_errorf(cmd, path, "out of memory");
        return CLI_EXIT_ERROR;
    }
    for (size_t i = 0; i < n_hits; i++) {
        size_t len;
        const char *tok = embt_vocab_token(vocab, hits[i].id, &len);
        if (!tok) {
            cli_error_record(cmd, path, embt_error_last());
            fclose(mem);
            free(text);
            return CLI_EXIT_ERROR;
        }
        if (json) {
            fprintf(mem, "{\"rank\":%zu,\"token\":", i + 1);
            cli_json_string(mem, tok, len);
            /* JSON has no infinity: a score beyond the float range is null, as lookup does */
            if (isfinite(hits[i].score))
                fprintf(mem, ",\"id\":%u,\"score\":%.9g}\n", hits[i].id, (double)hits[i].score);
            else
                fprintf(mem, ",\"id\":%u,\"score\":null}\n", hits[i].id);
        } else {
            fwrite(tok, 1, len, mem);
            fprintf(mem, "\t%.9g\n", (double)hits[i].score);
        }
    }
    int rc = cli_memstream_to_stdout(cmd, path, &mem, &text, &text_len);
    free(text);
    return rc;
}

int cli_memstream_to_stdout(const char *cmd, const char *path, FILE **mem, char **text,
                            size_t *text_len)
{
    /* text and text_len are only valid once the stream is closed */
    int closed = fclose(*mem);
    *mem = NULL;
    if (closed != 0) {
        cli_errorf(cmd, path, "out of memory");
        return CLI_EXIT_ERROR;
    }
    if (fwrite(*text, 1, *text_len, stdout) != *text_len || fflush(stdout) != 0) {
        cli_errorf(cmd, NULL, "cannot write the output");
        return CLI_EXIT_ERROR;
    }
    return CLI_EXIT_OK;
}

int cli_parse_predict_options(const char *cmd, const char *usage, int argc, char **argv,
                              unsigned long long *k, double *threshold)
{
    enum { OPT_THRESHOLD = 256 };
    static const struct option longopts[] = {
        {"threshold", required_argument, NULL, OPT_THRESHOLD},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char *end;
    uint64_t v;
    optind = 0;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, ":k:h", longopts, NULL)) != -1;) {
        switch (c) {
        case 'h': fputs(usage, stdout); return CLI_EXIT_OK;
        case 'k':
            if (!cli_parse_u64(&v, optarg, 1000000) || v == 0)
                return cli_usage_error(cmd, "-k must be in [1, 1000000], not '%s'", optarg);
            *k = v;
            break;
        case OPT_THRESHOLD:
            errno = 0;
            *threshold = strtod(optarg, &end);
            if (errno || *end || end == optarg || !isfinite(*threshold))
                return cli_usage_error(cmd, "bad --threshold '%s'", optarg);
            break;
        default: return cli_bad_option(cmd, c, argv);
        }
    }
    return -1;
}
