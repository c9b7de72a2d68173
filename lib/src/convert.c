/* convert.c: embt_convert_file: checks the options, picks the output format (option or extension)
 * and the input format (option, or detection on the decompressed content), and runs one of three
 * paths: import into a new .embt, export of an .embt table, or import into a temporary .embt next
 * to the output followed by an export (the temporary file is removed on every path). Nothing
 * appears at the output path unless the whole conversion succeeds. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "convert.h"
#include "tmpfile.h"
#include "parse_float.h"

#define TMP_ATTEMPTS 1000u /* names tried for the intermediate .embt (O_EXCL collisions) */

static const char *const default_table = "embedding";
static const char *const default_vocab = "words";

static const struct {
    embt_format format;
    const char *name;
} format_names[] = {
    {EMBT_FORMAT_EMBT, "embt"},
    {EMBT_FORMAT_WORD2VEC, "word2vec"},
    {EMBT_FORMAT_GLOVE, "glove"},
    {EMBT_FORMAT_WORD2VEC_BIN, "word2vec-bin"},
    {EMBT_FORMAT_FASTTEXT_BIN, "fasttext-bin"},
    {EMBT_FORMAT_NPY, "npy"},
    {EMBT_FORMAT_NPZ, "npz"},
    {EMBT_FORMAT_SAFETENSORS, "safetensors"},
};
#define N_FORMATS (sizeof format_names / sizeof format_names[0])

const char *embt_format_name(embt_format format)
{
    for (size_t i = 0; i < N_FORMATS; i++)
        if (format_names[i].format == format)
            return format_names[i].name;
    return NULL;
}

embt_status embt_format_parse(embt_format *out, const char *name)
{
    EMBT_CHECK_ARG(out != NULL);
    EMBT_CHECK_ARG(name != NULL);
    for (size_t i = 0; i < N_FORMATS; i++) {
        if (strcmp(name, format_names[i].name) == 0) {
            *out = format_names[i].format;
            return EMBT_OK;
        }
    }
    return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                       "unknown format '%.64s' (expected embt, word2vec, glove, word2vec-bin, "
                       "fasttext-bin, npy, npz or safetensors)",
                       name);
}

/* ---- detection -------------------------------------------------------------------------------- */

/* The binary formats in the order they are tried; each sniffer lives with its importer. Text comes
 * last, since any bytes might be text. */
static const struct {
    embt_format format;
    bool (*sniff)(const uint8_t *data, size_t size);
} sniffers[] = {
    {EMBT_FORMAT_NPY, embt__sniff_npy},
    {EMBT_FORMAT_NPZ, embt__sniff_npz},
    {EMBT_FORMAT_SAFETENSORS, embt__sniff_safetensors},
    {EMBT_FORMAT_FASTTEXT_BIN, embt__sniff_fasttext_bin},
    {EMBT_FORMAT_WORD2VEC_BIN, embt__sniff_word2vec_bin},
};

static bool is_blank(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* True when the input starts with a "rows dim" line followed by a line of at least two fields whose
 * last min(dim, fields - 1) fields are numbers: word2vec text (even with a ragged first row, which
 * the text importer then reports by line and column), which a binary sniffer looking at the bytes
 * after the first token could take for float32 data. Binary rows hardly ever read as decimals
 * followed by a newline. */
static bool looks_like_word2vec_text(const uint8_t *data, size_t size)
{
    size_t p = 0;
    uint64_t dim = 0;
    for (int k = 0; k < 2; k++) {
        size_t start = p;
        dim = 0;
        while (p < size && data[p] >= '0' && data[p] <= '9' && p - start < 12)
            dim = dim * 10 + (uint64_t)(data[p++] - '0');
        if (p == start)
            return false;
        if (k == 0) {
            if (p == size || !is_blank(data[p]))
                return false;
            while (p < size && is_blank(data[p]))
                p++;
        }
    }
    while (p < size && (is_blank(data[p]) || data[p] == '\r'))
        p++;
    if (p == size || data[p] != '\n' || dim == 0)
        return false;
    size_t line = p + 1;
    const uint8_t *nl = memchr(data + line, '\n', size - line);
    if (!nl)
        return false;
    size_t end = (size_t)(nl - data);
    while (end > line && (is_blank(data[end - 1]) || data[end - 1] == '\r'))
        end--;
    uint64_t numbers = 0;
    while (numbers < dim) { /* the last fields, right to left */
        size_t a = end;
        while (a > line && !is_blank(data[a - 1]))
            a--;
        float ignored;
        if (a == end || a == line || /* the first field is the token, numeric or not */
            embt__parse_f32(&ignored, (const char *)data + a, end - a) != 0)
            break;
        end = a;
        numbers++;
        while (end > line && is_blank(data[end - 1]))
            end--;
    }
    return numbers >= 1 && end > line;
}

/* The input's format; EMBT_FORMAT_AUTO means "text": the text importer tells word2vec from GloVe
 * (and refuses binary bytes with EMBT_EFORMAT). */
static embt_format detect_format(const embt__input *in)
{
    if (in->size >= EMBT__MAGIC_LEN && memcmp(in->data, EMBT__MAGIC, EMBT__MAGIC_LEN) == 0)
        return EMBT_FORMAT_EMBT;
    if (looks_like_word2vec_text(in->data, in->size))
        return EMBT_FORMAT_AUTO;
    for (size_t i = 0; i < sizeof sniffers / sizeof sniffers[0]; i++)
        if (in->size > 0 && sniffers[i].sniff(in->data, in->size))
            return sniffers[i].format;
    return EMBT_FORMAT_AUTO;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The output format from the extension of `path`. */
static embt_status format_from_extension(embt_format *out, const char *path)
{
    static const struct {
        const char *ext;
        embt_format format;
    } exts[] = {
        {".embt", EMBT_FORMAT_EMBT},
        {".txt", EMBT_FORMAT_WORD2VEC},
        {".vec", EMBT_FORMAT_WORD2VEC},
        {".bin", EMBT_FORMAT_WORD2VEC_BIN},
        {".npy", EMBT_FORMAT_NPY},
        {".npz", EMBT_FORMAT_NPZ},
        {".safetensors", EMBT_FORMAT_SAFETENSORS},
    };
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        if (ends_with(path, exts[i].ext)) {
            *out = exts[i].format;
            return EMBT_OK;
        }
    }
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash + 1 : path, '.');
    return embt__error(
        EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
        "output extension '%.32s' names no format (expected .embt, .txt, .vec, .bin, "
        ".npy, .npz or .safetensors, or give the format)",
        dot ? dot : "");
}

/* ---- options ---------------------------------------------------------------------------------- */

static bool format_valid(embt_format f)
{
    return f == EMBT_FORMAT_AUTO || embt_format_name(f) != NULL;
}

/* Copies *opts (or the defaults) into *o and checks every field. */
static embt_status check_options(embt_convert_options *o, const embt_convert_options *opts)
{
    embt_convert_options defaults = EMBT_CONVERT_OPTIONS_INIT;
    *o = opts ? *opts : defaults;
    if (o->version != EMBT_CONVERT_OPTIONS_VERSION)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "convert options version %u, expected %u", o->version,
                           EMBT_CONVERT_OPTIONS_VERSION);
    if (!format_valid(o->from))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "unknown input format %d",
                           (int)o->from);
    if (!format_valid(o->to))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "unknown output format %d",
                           (int)o->to);
    if (o->dtype != 0 && o->dtype != EMBT_DTYPE_F32 && o->dtype != EMBT_DTYPE_F16 &&
        o->dtype != EMBT_DTYPE_BF16 && o->dtype != EMBT_DTYPE_F64 && o->dtype != EMBT_DTYPE_I8)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "dtype %d cannot be converted to (expected f32, f16, bf16, f64 or i8)",
                           (int)o->dtype);
    if (o->flags & ~(EMBT_CONVERT_COMPRESS | EMBT_CONVERT_ALLOW_NONFINITE))
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "unknown convert flags 0x%x",
                           o->flags);
    if ((unsigned)o->on_duplicate > EMBT_DUPLICATE_LAST)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "unknown duplicate policy %d",
                           (int)o->on_duplicate);
    if ((unsigned)o->on_bad_utf8 > EMBT_BAD_UTF8_SKIP)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "unknown utf-8 policy %d",
                           (int)o->on_bad_utf8);
    if (o->table_name && !o->table_name[0])
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "table name is empty");
    if (o->vocab_name && !o->vocab_name[0])
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "vocabulary name is empty");
    if (o->vocab_path && !o->vocab_path[0])
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "vocabulary file path is empty");
    return EMBT_OK;
}

/* ---- the three paths -------------------------------------------------------------------------- */

/* Marks a failure as concerning the output file (the CLI then names OUTPUT, not INPUT). */
static embt_status output_failure(embt_status rc)
{
    if (rc == EMBT_EIO)
        embt__error_set_section("output");
    return rc;
}

/* Runs the importer of `format` (AUTO: text of either kind) on ctx. */
static embt_status run_importer(const embt__import *ctx, embt_format format)
{
    switch (format) {
    case EMBT_FORMAT_AUTO:
    case EMBT_FORMAT_WORD2VEC:
    case EMBT_FORMAT_GLOVE: return embt__import_text(ctx, format);
    case EMBT_FORMAT_WORD2VEC_BIN: return embt__import_word2vec_bin(ctx);
    case EMBT_FORMAT_FASTTEXT_BIN: return embt__import_fasttext_bin(ctx);
    case EMBT_FORMAT_NPY: return embt__import_npy(ctx);
    case EMBT_FORMAT_NPZ: return embt__import_npz(ctx);
    case EMBT_FORMAT_SAFETENSORS: return embt__import_safetensors(ctx);
    case EMBT_FORMAT_EMBT: return embt__import_embt(ctx);
    }
    return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "unknown input format %d",
                       (int)format);
}

/* Imports `in` (format `from`) into a new .embt at out_path. */
static embt_status import_to(const embt__input *in, embt_format from, const char *out_path,
                             const embt_convert_options *o, embt_convert_report *report)
{
    embt_writer *writer = NULL;
    embt_status rc = output_failure(embt_writer_open(&writer, out_path, NULL));
    if (rc != EMBT_OK)
        goto done;
    embt__import ctx = {in,
                        writer,
                        o,
                        report,
                        o->table_name ? o->table_name : default_table,
                        o->vocab_name ? o->vocab_name : default_vocab};
    rc = run_importer(&ctx, from);
    if (rc != EMBT_OK)
        goto done;
    rc = embt_writer_commit(writer);
    if (rc != EMBT_OK && rc != EMBT_EPARSE)
        embt__error_set_section("output");
done:
    embt_writer_free(writer);
    return rc;
}

/* The table an export writes: opts->table_name, else "embedding", else the only table tied to the
 * first vocabulary. */
static embt_status pick_table(const embt_table **out, const embt_file *file, const char *name)
{
    *out = NULL;
    if (name) {
        if (embt_file_table(out, file, name) != EMBT_OK)
            return embt__error(EMBT_ENOTFOUND, EMBT_NO_OFFSET, NULL, 0, "no table named '%.64s'",
                               name);
        return EMBT_OK;
    }
    if (embt_file_table(out, file, default_table) == EMBT_OK)
        return EMBT_OK;
    const embt_vocab *first = embt_file_vocab_count(file) ? embt_file_vocab_at(file, 0) : NULL;
    size_t tied = 0;
    for (size_t i = 0; first && i < embt_file_table_count(file); i++) {
        const embt_table *t = embt_file_table_at(file, i);
        if (embt_table_vocab(t) == first) {
            *out = t;
            tied++;
        }
    }
    if (tied == 1)
        return EMBT_OK;
    *out = NULL;
    if (embt_file_table_count(file) == 1 && !first) {
        *out = embt_file_table_at(file, 0);
        return EMBT_OK;
    }
    return embt__error(EMBT_ENOTFOUND, EMBT_NO_OFFSET, NULL, 0,
                       "no table 'embedding' and %zu tables tied to the first vocabulary: name one",
                       tied);
}

/* Exports the .embt held in `data` (size bytes) to out_path in format `to`. `ours`: the file is the
 * intermediate this conversion just wrote, so it is not verified again (a user's file is). */
static embt_status export_to(const uint8_t *data, size_t size, bool ours, embt_format to,
                             const char *out_path, const embt_convert_options *o,
                             embt_convert_report *report)
{
    embt_file *file = NULL;
    embt__output *out = NULL;
    const embt_table *table = NULL;
    embt_status rc = embt_file_open_memory(&file, data, size, ours ? NULL : &embt__open_verified);
    if (rc != EMBT_OK)
        goto done;
    if (to != EMBT_FORMAT_NPZ && to != EMBT_FORMAT_SAFETENSORS) {
        rc = pick_table(&table, file, o->table_name);
        if (rc != EMBT_OK)
            goto done;
        uint64_t rows = embt_table_rows(table);
        report->rows = o->limit && o->limit < rows ? o->limit : rows;
    }
    rc = output_failure(embt__output_open(&out, out_path));
    if (rc != EMBT_OK)
        goto done;
    switch (to) {
    case EMBT_FORMAT_WORD2VEC:
    case EMBT_FORMAT_GLOVE: rc = embt__export_text(file, table, out, to, o); break;
    case EMBT_FORMAT_WORD2VEC_BIN: rc = embt__export_word2vec_bin(file, table, out, o); break;
    case EMBT_FORMAT_NPY: rc = embt__export_npy(file, table, out, o); break;
    case EMBT_FORMAT_NPZ: rc = embt__export_npz(file, out, o); break;
    case EMBT_FORMAT_SAFETENSORS: rc = embt__export_safetensors(file, out, o); break;
    default:
        rc = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "cannot write format %s",
                         embt_format_name(to) ? embt_format_name(to) : "?");
        break;
    }
    if (rc != EMBT_OK)
        goto done;
    if (o->progress && o->progress(size, size, o->payload) != 0) {
        rc = embt__error(EMBT_ECANCELED, EMBT_NO_OFFSET, NULL, 0,
                         "conversion canceled before the output was committed");
        goto done;
    }
    rc = output_failure(embt__output_commit(out));
done:
    embt__output_free(out);
    embt_file_close(file);
    return rc;
}

/* Reserves a fresh name `<out_path>.<pid>.<n>.embt` for the intermediate file (an empty file that
 * the writer's rename replaces). *tmp_out is owned by the caller. */
static embt_status reserve_intermediate(char **tmp_out, const char *out_path)
{
    size_t cap = strlen(out_path) + 64;
    char *path = embt__malloc(cap);
    if (!path)
        return embt__error_nomem();
    for (unsigned n = 0;; n++) {
        snprintf(path, cap, "%s.%ld.%u.embt", out_path, (long)getpid(), n);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            close(fd);
            embt__temp_register(path); /* embt_remove_temp_files() removes it on a signal */
            break;
        }
        if (errno != EEXIST || n + 1 >= TMP_ATTEMPTS) {
            embt_status rc =
                output_failure(embt__error_sys(errno, "cannot create the intermediate file"));
            embt__free(path);
            return rc;
        }
    }
    *tmp_out = path;
    return EMBT_OK;
}

/* Imports into an intermediate .embt next to the output, then exports it; the intermediate file is
 * removed whatever happens. */
static embt_status convert_through(const embt__input *in, embt_format from, embt_format to,
                                   const char *out_path, const embt_convert_options *o,
                                   embt_convert_report *report)
{
    char *tmp = NULL;
    embt__input mid;
    memset(&mid, 0, sizeof mid);
    embt_status rc = reserve_intermediate(&tmp, out_path);
    if (rc != EMBT_OK)
        goto done;
    /* the intermediate keeps the input's precision (or --dtype) and is never compressed; the limit
     * is applied once, by the importer */
    embt_convert_options inner = *o;
    inner.flags &= ~EMBT_CONVERT_COMPRESS;
    rc = import_to(in, from, tmp, &inner, report);
    if (rc != EMBT_OK)
        goto done;
    rc = embt__input_load(&mid, tmp);
    if (rc != EMBT_OK)
        goto done;
    embt_convert_report unused = {0, 0, 0, 0, 0};
    embt_convert_options outer = *o;
    outer.limit = 0;
    outer.progress = NULL;
    /* the importer named its tables; the export picks the one tied to the vocabulary */
    rc = export_to(mid.data, mid.size, true, to, out_path, &outer, &unused);
    if (rc != EMBT_OK)
        goto done;
    uint64_t total = in->streaming ? in->map_size : in->size;
    if (o->progress && o->progress(total, total, o->payload) != 0)
        rc = embt__error(EMBT_ECANCELED, EMBT_NO_OFFSET, NULL, 0, "conversion canceled");
done:
    embt__input_release(&mid);
    if (tmp) {
        embt__temp_unregister(tmp);
        unlink(tmp);
        embt__free(tmp);
    }
    return rc;
}

embt_status embt_convert_file(const char *in_path, const char *out_path,
                              const embt_convert_options *opts)
{
    EMBT_CHECK_ARG(in_path != NULL);
    EMBT_CHECK_ARG(out_path != NULL);
    embt_status rc;
    embt__input in;
    embt_convert_options o;
    embt_convert_report report = {0, 0, 0, 0, 0};
    memset(&in, 0, sizeof in);

    rc = check_options(&o, opts);
    if (rc != EMBT_OK)
        return rc;
    if (!out_path[0])
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0, "output path is empty");
    embt_format to = o.to;
    if (to == EMBT_FORMAT_AUTO) {
        rc = format_from_extension(&to, out_path);
        if (rc != EMBT_OK)
            return rc;
    }
    if (to == EMBT_FORMAT_FASTTEXT_BIN)
        return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                           "fasttext-bin is an input format only");
    o.to = to;
    rc = embt__parse_float_init();
    if (rc != EMBT_OK)
        return rc;
    rc = embt__input_open(&in, in_path);
    if (rc != EMBT_OK) {
        embt__error_set_section("input");
        goto done;
    }
    /* a large gzip input streams into the text importer; detection on its prefix is final only for
     * text without NUL bytes (every binary sniffer then answers no on the whole input too) */
    if (in.streaming && o.from == EMBT_FORMAT_AUTO &&
        (memchr(in.data, '\0', in.size) != NULL || detect_format(&in) != EMBT_FORMAT_AUTO)) {
        rc = embt__input_complete(&in);
        if (rc != EMBT_OK) {
            embt__error_set_section("input");
            goto done;
        }
    }
    embt_format from = o.from != EMBT_FORMAT_AUTO ? o.from : detect_format(&in);
    if (in.streaming && from != EMBT_FORMAT_AUTO && from != EMBT_FORMAT_WORD2VEC &&
        from != EMBT_FORMAT_GLOVE) {
        rc = embt__input_complete(&in);
        if (rc != EMBT_OK) {
            embt__error_set_section("input");
            goto done;
        }
    }
    if (from == EMBT_FORMAT_EMBT && to != EMBT_FORMAT_EMBT) {
        if (o.vocab_path) {
            rc = embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                             "a vocabulary file only applies to array inputs");
            goto done;
        }
        rc = export_to(in.data, in.size, false, to, out_path, &o, &report);
    } else if (to == EMBT_FORMAT_EMBT) {
        rc = import_to(&in, from, out_path, &o, &report);
    } else {
        rc = convert_through(&in, from, to, out_path, &o, &report);
    }
    if (rc == EMBT_OK && o.report)
        *o.report = report;
done:
    embt__input_release(&in);
    return rc;
}
