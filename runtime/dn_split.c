/* dn_split.c - the validation split of the training set and the
 * early-stopping bookkeeping (best epoch, best val_acc, epochs since).
 *
 * The split is a pure function of (seed, n, fraction): a Fisher-Yates
 * permutation on the DN_RNG_SPLIT stream whose first round(F * n) entries
 * are held out. Both parts are then used in increasing index order, so the
 * per-epoch shuffle (DN_RNG_SHUFFLE) permutes positions of the trained part
 * exactly as it permutes 0..n-1 without a split.
 */
#include "dn_runtime.h"
#include "dn_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

uint32_t dn_split_count(uint32_t n, double frac) {
    double v = round(frac * (double)n);
    return v <= 0 ? 0 : v >= (double)n ? n : (uint32_t)v;
}

void dn_split_perm(uint32_t *perm, uint32_t n, uint64_t seed) {
    for (uint32_t i = 0; i < n; i++)
        perm[i] = i;
    for (uint32_t i = n; i-- > 1;) {
        uint32_t w = dn_rand_u32(seed, DN_RNG_SPLIT, 0, 0, 0, i);
        uint32_t j = (uint32_t)(((uint64_t)w * ((uint64_t)i + 1)) >> 32);
        uint32_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}

int dn_split_make(uint32_t n, double frac, uint64_t seed, dn_split *s) {
    memset(s, 0, sizeof *s);
    s->n_val = dn_split_count(n, frac);
    s->n_fit = n - s->n_val;
    s->fit = malloc((s->n_fit ? s->n_fit : 1) * sizeof *s->fit);
    s->val = malloc((s->n_val ? s->n_val : 1) * sizeof *s->val);
    uint32_t *perm = malloc((n ? n : 1) * sizeof *perm);
    unsigned char *held = calloc(n ? n : 1, 1);
    int ok = s->fit && s->val && perm && held;
    if (ok) {
        dn_split_perm(perm, n, seed);
        for (uint32_t k = 0; k < s->n_val; k++)
            held[perm[k]] = 1;
        uint32_t nf = 0, nv = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (held[i])
                s->val[nv++] = i;
            else
                s->fit[nf++] = i;
        }
    }
    free(perm);
    free(held);
    if (!ok)
        dn_split_free(s);
    return ok ? 0 : -1;
}

void dn_split_free(dn_split *s) {
    free(s->fit);
    free(s->val);
    s->fit = s->val = NULL;
}

int dn_es_exhausted(const dn_train_state *st) {
    return st->patience > 0 && st->since_best >= st->patience;
}

int dn_es_update(dn_train_state *st, int64_t epoch, double val_acc, const float *params,
                 float *best, size_t n) {
    if (st->best_epoch == 0 || val_acc > st->best_val_acc) {
        st->best_epoch = epoch;
        st->best_val_acc = val_acc;
        st->since_best = 0;
        memcpy(best, params, n * sizeof *best);
    } else {
        st->since_best++;
    }
    return dn_es_exhausted(st);
}
