/* fuzz_eval.c: libFuzzer target for the evaluation files (`embt eval --analogies/--pairs`), which
 * users download (questions-words.txt, WordSim-353, SimLex-999): the input is the file, read by
 * embt_eval_analogies() and by embt_eval_pairs() against a fixed 16-word table whose tokens mix
 * cases and Unicode case-folding traps (ß, ǅ, the Kelvin sign). Options from the input's length:
 * case-sensitive or not, restrict 0/3/9/100. A failure must be EPARSE (with a line) or, for pairs
 * with none usable, EINVAL. A success must add up: sections' counts sum to the totals, correct <=
 * total, accuracies and OOV ratios follow their formulas, at most one section per ":" line and one
 * counted or invalid line per line; correlations are NaN or in [-1, 1]. */
#include <math.h>
#include <stdbool.h>

#include "fuzz_common.h"

static const char *const words[] = {"king",   "queen", "man", "woman", "Paris", "France",
                                    "Rome",   "Italy", "ß",   "SS",    "ǅemal", "DŽEMAL",
                                    "\u212A", "k",     "big", "bigger"};
#define N_WORDS (sizeof words / sizeof words[0])
#define DIM 4

static embt_file *file;
static embt_index *index_;

/* The table, written and opened once per process. */
static void setup(void)
{
    if (index_)
        return;
    const char *path = fz_path("table.embt");
    embt_writer *w = NULL;
    FZ_CHECK(embt_writer_open(&w, path, NULL) == EMBT_OK, "writer");
    embt_vocab_spec vs = EMBT_VOCAB_SPEC_INIT;
    FZ_CHECK(embt_writer_vocab_begin(w, &vs) == EMBT_OK, "vocab");
    for (size_t i = 0; i < N_WORDS; i++)
        FZ_CHECK(embt_writer_vocab_add(w, words[i], strlen(words[i]), 0, NULL) == EMBT_OK, "%s",
                 words[i]);
    FZ_CHECK(embt_writer_vocab_end(w) == EMBT_OK, "vocab end");
    float rows[N_WORDS * DIM];
    uint32_t x = 12345;
    for (size_t i = 0; i < N_WORDS * DIM; i++) {
        x = x * 1103515245u + 12345u;
        rows[i] = (float)((int)(x >> 16) % 200 - 100) / 50.0f;
    }
    rows[5 * DIM] = rows[5 * DIM + 1] = rows[5 * DIM + 2] = rows[5 * DIM + 3] = 0; /* zero norm */
    embt_table_spec ts = EMBT_TABLE_SPEC_INIT;
    ts.name = "embedding";
    ts.rows = N_WORDS;
    ts.cols = DIM;
    ts.vocab = "words";
    FZ_CHECK(embt_writer_add_table_f32(w, &ts, rows) == EMBT_OK, "table");
    FZ_CHECK(embt_writer_commit(w) == EMBT_OK, "commit");
    embt_writer_free(w);
    FZ_CHECK(embt_file_open(&file, path, NULL) == EMBT_OK, "open");
    const embt_table *t = NULL;
    FZ_CHECK(embt_file_table(&t, file, "embedding") == EMBT_OK, "table");
    FZ_CHECK(embt_index_new(&index_, t, NULL) == EMBT_OK, "index");
}

static bool close_to(double a, double b)
{
    return fabs(a - b) <= 1e-9 * (fabs(b) + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    /* analogies: lines end at LF (gensim reads bytes); pairs: at LF, CR LF or CR (Python's text
     * mode), so a pairs file may have more lines */
    size_t lines = 0, text_lines = 0, colon_lines = 0;
    for (size_t i = 0; i < size; i++) {
        bool start = i == 0 || data[i - 1] == '\n';
        lines += start;
        colon_lines += start && data[i] == ':';
        text_lines += start || (data[i - 1] == '\r' && data[i] != '\n');
    }
    const char *path = fz_path("eval.txt");
    fz_write_file(path, data, size);
    static const uint64_t restricts[] = {0, 3, 9, 100};
    embt_eval_options o = EMBT_EVAL_OPTIONS_INIT;
    o.flags = size % 2 ? EMBT_EVAL_CASE_SENSITIVE : 0;
    o.restrict_rows = restricts[(size / 2) % 4];

    embt_analogy_report *r = NULL;
    embt_status st = embt_eval_analogies(&r, index_, path, &o);
    if (st != EMBT_OK) {
        FZ_CHECK(st == EMBT_EPARSE && embt_error_last()->line >= 1, "analogies: %s",
                 embt_status_name(st));
        FZ_CHECK(r == NULL, "a failure returned a report");
    } else {
        uint64_t correct = 0, total = 0, skipped = 0;
        for (size_t i = 0; i < r->n_sections; i++) {
            const embt_analogy_section *s = &r->sections[i];
            FZ_CHECK(s->name != NULL && s->correct <= s->total, "section %zu", i);
            FZ_CHECK(close_to(s->accuracy, s->total ? (double)s->correct / s->total : 0),
                     "section accuracy %g", s->accuracy);
            correct += s->correct;
            total += s->total;
            skipped += s->skipped;
        }
        FZ_CHECK(r->n_sections <= colon_lines, "%zu sections from %zu ':' lines", r->n_sections,
                 colon_lines);
        FZ_CHECK(correct == r->correct && total == r->total && skipped == r->skipped,
                 "sections do not add up to the totals");
        FZ_CHECK(close_to(r->accuracy, total ? (double)correct / total : 0), "accuracy %g",
                 r->accuracy);
        FZ_CHECK(
            close_to(r->oov_ratio, total + skipped ? (double)skipped / (total + skipped) * 100 : 0),
            "oov ratio %g", r->oov_ratio);
        FZ_CHECK(total + skipped + r->invalid_lines + r->n_sections <= lines,
                 "more questions than lines");
        embt_analogy_report_free(r);
    }

    embt_pairs_report p;
    st = embt_eval_pairs(&p, index_, path, &o);
    if (st != EMBT_OK) {
        FZ_CHECK(st == EMBT_EINVAL || (st == EMBT_EPARSE && embt_error_last()->line >= 1),
                 "pairs: %s", embt_status_name(st));
    } else {
        FZ_CHECK(p.pairs >= 1 && p.pairs + p.oov + p.invalid_lines <= text_lines,
                 "%llu pairs, %llu oov, %llu invalid of %zu lines", (unsigned long long)p.pairs,
                 (unsigned long long)p.oov, (unsigned long long)p.invalid_lines, text_lines);
        FZ_CHECK(isnan(p.pearson) || (p.pearson >= -1 - 1e-9 && p.pearson <= 1 + 1e-9),
                 "pearson %g", p.pearson);
        FZ_CHECK(isnan(p.spearman) || (p.spearman >= -1 - 1e-9 && p.spearman <= 1 + 1e-9),
                 "spearman %g", p.spearman);
        FZ_CHECK(close_to(p.oov_ratio, (double)p.oov / (p.pairs + p.oov) * 100), "oov ratio %g",
                 p.oov_ratio);
    }
    unlink(path);
    return 0;
}
