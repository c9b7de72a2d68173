/* classify_state.c: the resume state of a classifier run in its output's metadata (see
 * classify_state.h): written by every run, read back by a resumed one. */
#include <stdio.h>
#include <stdlib.h>

#include "classify_state.h"

embt_status cls__state_save(embt_meta *m, int completed, uint64_t processed,
                            const cls_thread_state *th, uint32_t threads)
{
    embt_status st = embt_meta_set(m, "training.state.completed", completed ? "true" : "false");
    if (!st)
        st = embt__meta_set_u64(m, "training.state.processed", processed);
    for (uint32_t t = 0; !st && t < threads; t++) {
        const cls_thread_state *s = &th[t];
        char key[80], buf[80];
        const char *names[4] = {"epoch", "line", "tokens", "updates"};
        uint64_t v[4] = {s->epoch, s->line, s->tokens, s->updates};
        for (int k = 0; !st && k < 4; k++) {
            snprintf(key, sizeof key, "training.state.thread%u.%s", t, names[k]);
            st = embt__meta_set_u64(m, key, v[k]);
        }
        if (st)
            break;
        snprintf(key, sizeof key, "training.state.thread%u.rng", t);
        snprintf(buf, sizeof buf, "%016llx%016llx%016llx%016llx", (unsigned long long)s->rng.s[0],
                 (unsigned long long)s->rng.s[1], (unsigned long long)s->rng.s[2],
                 (unsigned long long)s->rng.s[3]);
        if ((st = embt_meta_set(m, key, buf)))
            break;
        /* %.17g: the sum reads back to the same double, so the mean loss of a resumed run is the
         * uninterrupted run's */
        snprintf(key, sizeof key, "training.state.thread%u.loss_sum", t);
        st = embt__meta_set_f64(m, key, s->loss_sum);
    }
    return st;
}

/* Four 64-bit words from 64 hex digits. */
static bool parse_rng(embt_rng *rng, const char *s, size_t len)
{
    if (len != 64)
        return false;
    for (int w = 0; w < 4; w++) {
        char part[17], *end;
        memcpy(part, s + 16 * w, 16);
        part[16] = '\0';
        for (int i = 0; i < 16; i++)
            if (!((part[i] >= '0' && part[i] <= '9') || (part[i] >= 'a' && part[i] <= 'f')))
                return false;
        rng->s[w] = (uint64_t)strtoull(part, &end, 16);
    }
    rng->spare = 0.0;
    rng->has_spare = 0;
    return true;
}

embt_status cls__state_load(int *completed_out, uint64_t *processed_out, cls_thread_state *th,
                            uint32_t threads, const embt_meta *m)
{
    const char *v;
    size_t len;
    embt_status st = embt_meta_get(&v, &len, m, "training.state.completed");
    if (st)
        return st;
    if (completed_out)
        *completed_out = strcmp(v, "true") == 0;
    if ((st = embt__meta_get_u64(processed_out, m, "training.state.processed", true)))
        return st;
    for (uint32_t t = 0; t < threads; t++) {
        cls_thread_state *s = &th[t];
        char key[80];
        const char *names[4] = {"epoch", "line", "tokens", "updates"};
        uint64_t x[4];
        for (int k = 0; k < 4; k++) {
            snprintf(key, sizeof key, "training.state.thread%u.%s", t, names[k]);
            if ((st = embt__meta_get_u64(&x[k], m, key, true)))
                return st;
        }
        if (x[0] > UINT32_MAX)
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                               "metadata training.state.thread%u.epoch: out of range", t);
        s->epoch = (uint32_t)x[0];
        s->line = x[1];
        s->tokens = x[2];
        s->updates = x[3];
        snprintf(key, sizeof key, "training.state.thread%u.rng", t);
        if ((st = embt_meta_get(&v, &len, m, key)))
            return st;
        if (!parse_rng(&s->rng, v, len))
            return embt__error(EMBT_EINVAL, EMBT_NO_OFFSET, NULL, 0,
                               "metadata %s: not 64 lowercase hex digits", key);
        snprintf(key, sizeof key, "training.state.thread%u.loss_sum", t);
        if ((st = embt__meta_get_f64(&s->loss_sum, m, key)))
            return st;
    }
    return EMBT_OK;
}

/* Table `name` of f, or ENOTFOUND naming it. */
static embt_status find_table(const embt_table **out, const embt_file *f, const char *name)
{
    if (embt_file_table(out, f, name) != EMBT_OK)
        return embt__error(EMBT_ENOTFOUND, EMBT_NO_OFFSET, NULL, 0, "no table '%s'", name);
    return EMBT_OK;
}

embt_status cls__check_table(const embt_table **out, const embt_file *f, const char *name,
                             uint64_t rows, uint64_t cols)
{
    const embt_table *t = NULL;
    embt_status st = find_table(&t, f, name);
    if (!st)
        st = embt__table_check_shape(t, rows, cols);
    if (!st && out)
        *out = t;
    return st;
}

embt_status cls__read_table(float *dst, const embt_file *f, const char *name, uint64_t rows,
                            uint64_t cols)
{
    const embt_table *t = NULL;
    embt_status st = find_table(&t, f, name);
    return st ? st : embt__table_read_f32(dst, t, rows, cols); /* which checks the shape */
}
