/* fuzz_meta.c: libFuzzer target for the METADATA YAML parser and emitter. The input is YAML text:
 * parse it; when it parses, emit it, parse the emitted text again (it must parse: embt never writes
 * metadata it cannot read back) and emit that: the two emitted texts must be identical. Then set a
 * dotted key, read it back, and check that the result still round-trips. */
#include "fuzz_common.h"

/* The emitted text of `m`, copied (emit's buffer lives only until the next change). */
static char *emit_copy(embt_meta *m, size_t *len_out)
{
    const char *text = NULL;
    size_t len = 0;
    embt_status st = embt_meta_emit(&text, &len, m);
    FZ_CHECK(st == EMBT_OK, "emit failed: %s", embt_status_name(st));
    FZ_CHECK(text != NULL, "emit gave NULL");
    FZ_CHECK(memchr(text, '\0', len) == NULL, "emitted text contains NUL");
    char *copy = (char *)fz_copy((const uint8_t *)text, len);
    *len_out = len;
    return copy;
}

/* Parses `text` (which embt emitted: it must parse) and checks that emitting it gives it back. */
static void check_fixed_point(const char *text, size_t len, const char *what)
{
    embt_meta *m = NULL;
    embt_status st = embt_meta_parse(&m, text, len);
    FZ_CHECK(st == EMBT_OK, "%s: emitted YAML does not parse back (%s): <<%.*s>>", what,
             embt_status_name(st), (int)(len > 2000 ? 2000 : len), text);
    size_t len2;
    char *text2 = emit_copy(m, &len2);
    FZ_CHECK(len2 == len && memcmp(text, text2, len) == 0,
             "%s: emit(parse(emit(x))) != emit(x):\n<<%.*s>>\n<<%.*s>>", what, (int)len, text,
             (int)len2, text2);
    free(text2);
    embt_meta_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *yaml = (char *)fz_copy(data, size);
    embt_meta *m = (embt_meta *)1;
    embt_status st = embt_meta_parse(&m, yaml, size);
    if (st != EMBT_OK) {
        FZ_CHECK(m == NULL, "a failed parse left *out set");
        FZ_CHECK(st == EMBT_EPARSE || st == EMBT_ELIMIT, "parse failed with %s",
                 embt_status_name(st));
        if (st == EMBT_EPARSE)
            FZ_CHECK(embt_error_last()->line >= 1 && embt_error_last()->column >= 1,
                     "parse error without a position");
        free(yaml);
        return 0;
    }
    size_t len;
    char *text = emit_copy(m, &len);
    check_fixed_point(text, len, "parsed input");

    /* a key path taken from the input's first bytes, when it is a usable one */
    char key[33] = "fuzz.key";
    if (size >= 2 && size <= 4096) {
        size_t k = 0;
        for (; k < size && k < 32 && yaml[k] != '\0' && yaml[k] != '\n'; k++)
            key[k] = yaml[k];
        key[k] = '\0';
        if (k == 0)
            strcpy(key, "fuzz.key");
    }
    static const char value[] = "a: [value] # with 'quotes' and \"more\"\n";
    st = embt_meta_set(m, key, value);
    FZ_CHECK(st == EMBT_OK || st == EMBT_EINVAL, "set '%s' returned %s", key, embt_status_name(st));
    if (st == EMBT_OK) {
        const char *got = NULL;
        size_t got_len = 0;
        FZ_CHECK(embt_meta_get(&got, &got_len, m, key) == EMBT_OK, "get '%s' after set", key);
        FZ_CHECK(got_len == strlen(value) && memcmp(got, value, got_len) == 0 &&
                     got[got_len] == '\0',
                 "get '%s' gave back another value", key);
        free(text);
        text = emit_copy(m, &len);
        check_fixed_point(text, len, "after set");
        embt_meta *again = NULL;
        FZ_CHECK(embt_meta_parse(&again, text, len) == EMBT_OK, "reparse after set");
        FZ_CHECK(embt_meta_get(&got, &got_len, again, key) == EMBT_OK, "get '%s' after reparse",
                 key);
        FZ_CHECK(got_len == strlen(value) && memcmp(got, value, got_len) == 0,
                 "value of '%s' changed through emit + parse", key);
        embt_meta_free(again);
    }
    free(text);
    embt_meta_free(m);
    free(yaml);
    return 0;
}
