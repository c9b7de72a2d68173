/* fuzz_resume.c: libFuzzer target for training state a stranger wrote: the `.embt` given to
 * `embt train` as --resume (settings, vocabularies, counts, tables, optimiser and thread state all
 * come from it) or as --pretrained (a vocabulary and its table). The first input byte picks the
 * trainer (skip-gram or classifier) and the role; the rest is the file. Both train on the small
 * labelled corpus tests/fixtures/classify/train.txt (the seeds were trained on it, so that their
 * corpus checks pass), one run stopping after a few words or lines. A failure must be one of the
 * statuses a bad file gives, leave no output and no temporary file; a success must write a file
 * that opens and verifies. The trainers' allocations are bounded by replay.c and libFuzzer's
 * -malloc_limit_mb, which is what this target is for: no setting in the file may ask for memory
 * out of proportion to it. Inputs whose settings ask for more than a fuzzing budget of work
 * (many threads) are skipped before training; they are still parsed by the other targets.
 * The trainers verify their state files (every CRC-32), which a mutation nearly always breaks: for
 * inputs whose mode byte has bit 7 set the harness first recomputes the CRCs it can find (sections,
 * directory, header), so that mutated settings and weights reach the training code. */
#include <stdbool.h>
#include <zlib.h>

#include "fuzz_common.h"

#ifndef EMBT_FUZZ_CORPUS
#error "EMBT_FUZZ_CORPUS must name tests/fixtures/classify/train.txt"
#endif

enum { SG_RESUME, SG_PRETRAINED, CLS_RESUME, CLS_PRETRAINED, N_MODES };

#define THREADS_BUDGET 4 /* threads a resume file may ask for before the input is skipped */

/* The corpus, copied once into the scratch directory. */
static const char *corpus_path(void)
{
    static char path[PATH_MAX];
    if (path[0])
        return path;
    FILE *in = fopen(EMBT_FUZZ_CORPUS, "rb");
    FZ_CHECK(in != NULL, "open %s: %s", EMBT_FUZZ_CORPUS, strerror(errno));
    static uint8_t buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    FZ_CHECK(n > 0 && n < sizeof buf, "the corpus %s", EMBT_FUZZ_CORPUS);
    snprintf(path, sizeof path, "%s", fz_path("corpus.txt"));
    fz_write_file(path, buf, n);
    return path;
}

/* Whether a resume file's training.threads asks for more threads than the budget (an integer
 * the trainer would accept; anything else goes to the trainer, which must refuse it). */
static bool over_budget(const uint8_t *data, size_t size)
{
    uint8_t *copy = fz_copy(data, size);
    embt_file *f = NULL;
    bool over = false;
    if (embt_file_open_memory(&f, copy, size, NULL) == EMBT_OK) {
        size_t len = 0;
        const char *text = embt_file_metadata(f, &len);
        embt_meta *m = NULL;
        const char *v;
        size_t vlen;
        if (text && embt_meta_parse(&m, text, len) == EMBT_OK &&
            embt_meta_get(&v, &vlen, m, "training.threads") == EMBT_OK) {
            char *end;
            unsigned long long t = strtoull(v, &end, 10);
            over = end != v && *end == '\0' && t > THREADS_BUDGET && t <= 1024;
        }
        embt_meta_free(m);
        embt_file_close(f);
    }
    free(copy);
    return over;
}

static uint64_t le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t crc(const uint8_t *p, size_t n)
{
    return (uint32_t)crc32_z(crc32(0, NULL, 0), p, n);
}

/* Recomputes the CRC-32s of FORMAT.md 3 where the fields point inside the file: each section's
 * (over its stored bytes), the directory's, then the header's (bytes [0, 124) only). */
static void reseal(uint8_t *p, size_t n)
{
    if (n < 128)
        return;
    uint64_t dir = le(p + 32, 8), dir_len = le(p + 40, 8);
    if (dir <= n && dir_len <= n - dir && dir_len >= 16) {
        uint64_t count = le(p + dir, 4), esize = le(p + dir + 4, 4);
        for (uint64_t i = 0; esize >= 96 && i < count && 16 + (i + 1) * esize <= dir_len; i++) {
            uint8_t *e = p + dir + 16 + i * esize;
            uint64_t off = le(e + 8, 8), stored = le(e + 16, 8);
            if (off <= n && stored <= n - off)
                put32(e + 32, crc(p + off, (size_t)stored));
        }
        put32(p + 48, crc(p + dir, (size_t)dir_len));
    }
    put32(p + 124, crc(p, 124));
}

/* A failed run on a fuzzed state file: the file's fault, reported as such, and nothing written. */
static void check_failure(embt_status st, const char *what)
{
    FZ_CHECK(st == EMBT_EFORMAT || st == EMBT_ECORRUPT || st == EMBT_EVERSION ||
                 st == EMBT_ELIMIT || st == EMBT_EINVAL || st == EMBT_ENOTFOUND ||
                 st == EMBT_EPARSE,
             "%s failed with %s", what, embt_status_name(st));
    FZ_CHECK(st == embt_error_last()->code, "status and error record disagree");
}

static void check_output(embt_status st, const char *what)
{
    if (st != EMBT_OK) {
        check_failure(st, what);
        FZ_CHECK(fz_count_other_entries(NULL) == 2, "%s failed and left a file behind", what);
        return;
    }
    embt_file *f = NULL;
    embt_open_options oo = EMBT_OPEN_OPTIONS_INIT;
    oo.flags = EMBT_OPEN_VERIFY;
    st = embt_file_open(&f, fz_path("out.embt"), &oo);
    FZ_CHECK(st == EMBT_OK, "%s wrote a file that does not verify: %s", what, embt_status_name(st));
    embt_file_close(f);
    FZ_CHECK(unlink(fz_path("out.embt")) == 0, "remove the output");
    FZ_CHECK(fz_count_other_entries(NULL) == 2, "%s left a temporary file", what);
}

static void run_skipgram(bool resume, const char *state)
{
    embt_sg_options o;
    embt_sg_defaults(&o);
    o.input = corpus_path();
    o.output = fz_path("out.embt");
    if (resume)
        o.resume = state;
    else
        o.pretrained = state;
    o.dim = 4;
    o.epoch = 2;
    o.window = 2;
    o.neg = 2;
    o.min_count = 1;
    o.stop_after_words = 40;
    embt_sg_report rep;
    check_output(embt_sg_train(&o, &rep), resume ? "skip-gram resume" : "skip-gram pretrained");
}

static void run_classifier(bool resume, const char *state)
{
    embt_classify_options o = EMBT_CLASSIFY_OPTIONS_INIT;
    o.dim = 4;
    o.epoch = 2;
    o.min_count = 1;
    o.word_ngrams = 2;
    o.bucket = 16;
    o.stop_after_lines = 4;
    embt_file *pf = NULL;
    if (resume) {
        o.resume = state;
    } else {
        embt_status st = embt_file_open(&pf, state, NULL);
        if (st != EMBT_OK) {
            check_failure(st, "open the pretrained file");
            return;
        }
        st = embt_file_table(&o.pretrained, pf, "embedding");
        if (st != EMBT_OK) {
            FZ_CHECK(st == EMBT_ENOTFOUND, "table lookup: %s", embt_status_name(st));
            embt_file_close(pf);
            return;
        }
        o.dim = 0; /* the table's */
    }
    embt_classify_report rep;
    embt_status st = embt_classify_train(corpus_path(), fz_path("out.embt"), &o, &rep);
    embt_file_close(pf);
    check_output(st, resume ? "classifier resume" : "classifier pretrained");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] % N_MODES;
    bool resealed = data[0] & 0x80;
    uint8_t *file = fz_copy(data + 1, size - 1);
    size--;
    if (resealed)
        reseal(file, size);
    bool resume = mode == SG_RESUME || mode == CLS_RESUME;
    if (resume && over_budget(file, size)) {
        free(file);
        return 0;
    }
    corpus_path();
    const char *state = fz_path("state.embt");
    fz_write_file(state, file, size);
    free(file);
    if (mode == SG_RESUME || mode == SG_PRETRAINED)
        run_skipgram(resume, state);
    else
        run_classifier(resume, state);
    return 0;
}
