/* dn_optim.c - SGD, RMSprop, gradient-norm clipping and learning-rate
 * schedules, reproducing torch.optim.SGD / RMSprop (foreach=False),
 * torch.nn.utils.clip_grad_norm_ and torch.optim.lr_scheduler of PyTorch
 * 1.13 (see dn_runtime.h for the formulas).
 *
 * Float32 as PyTorch's tensor ops, with the multiply-adds its AVX2 kernels
 * fuse evaluated as (double)a * b + c rounded once (dn_adam.c explains why).
 * Scalars are computed in double from the values as typed and rounded to
 * float where they meet a tensor, as ATen does. Schedules keep the lr as a
 * double and update it with the operations PyTorch's schedulers use
 * (StepLR and ExponentialLR multiply the current lr; the plateau cut is
 * max(lr * factor, min_lr)), so the sequence is PyTorch's bit for bit.
 *
 * Every loop is elementwise, so any OpenMP split gives identical results;
 * the gradient norm is one serial sum in an order fixed by n. */
#include "dn_runtime.h"

#include <math.h>

/* a * b + c with one rounding (PyTorch's fused multiply-add, see dn_adam.c). */
static inline float dn_optim_madd(float a, float b, float c) {
    return (float)((double)a * (double)b + (double)c);
}

/* ---- SGD ------------------------------------------------------------------ */

void dn_sgd_step(const dn_optim *o, double lr, float *p, const float *g, float *buf, size_t n, int64_t t) {
    const double mom = dn_adam_as_typed(o->momentum), damp = dn_adam_as_typed(o->dampening);
    const float wd = (float)dn_adam_as_typed(o->weight_decay), momf = (float)mom;
    const float keep = (float)(1.0 - damp), neg_lr = (float)(-lr);
    const int use_wd = o->weight_decay != 0.0f, use_mom = o->momentum != 0.0f, first = t <= 1;
    const int nesterov = o->nesterov;
    const long long nn = (long long)n;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (nn > 32768)
#endif
    for (long long i = 0; i < nn; i++) {
        float d = use_wd ? dn_optim_madd(p[i], wd, g[i]) : g[i];
        if (use_mom) {
            float b = first ? d : dn_optim_madd(d, keep, buf[i] * momf);
            buf[i] = b;
            d = nesterov ? dn_optim_madd(b, momf, d) : b;
        }
        p[i] = dn_optim_madd(d, neg_lr, p[i]);
    }
}

/* ---- RMSprop -------------------------------------------------------------- */

void dn_rmsprop_step(const dn_optim *o, double lr, float *p, const float *g, float *sq, float *buf,
                     float *ga, size_t n) {
    const double alpha = dn_adam_as_typed(o->alpha);
    const float a = (float)alpha, oma = (float)(1.0 - alpha), eps = (float)dn_adam_as_typed(o->eps);
    const float wd = (float)dn_adam_as_typed(o->weight_decay), mom = (float)dn_adam_as_typed(o->momentum);
    const float neg_lr = (float)(-lr);
    const int use_wd = o->weight_decay != 0.0f, use_mom = o->momentum > 0.0f, centered = o->centered;
    const long long nn = (long long)n;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (nn > 32768)
#endif
    for (long long i = 0; i < nn; i++) {
        float gi = use_wd ? dn_optim_madd(p[i], wd, g[i]) : g[i];
        float s = dn_optim_madd(oma * gi, gi, sq[i] * a);
        sq[i] = s;
        float avg;
        if (centered) {
            float m = dn_optim_madd(gi, oma, ga[i] * a);
            ga[i] = m;
            avg = sqrtf(dn_optim_madd(-m, m, s)) + eps;
        } else {
            avg = sqrtf(s) + eps;
        }
        if (use_mom) {
            float b = buf[i] * mom + gi / avg;
            buf[i] = b;
            p[i] = dn_optim_madd(b, neg_lr, p[i]);
        } else {
            p[i] = p[i] + (neg_lr * gi) / avg;
        }
    }
}

/* ---- clipping ------------------------------------------------------------- */

/* Lanes of the norm's sum: element i goes to lane i % DN_OPTIM_LANES, the
 * lanes are added pairwise at the end. Independent chains let the adds
 * overlap (and vectorize); the order depends on n alone. */
#define DN_OPTIM_LANES 8

double dn_grad_norm(const float *g, size_t n) {
    double acc[DN_OPTIM_LANES] = {0};
    size_t i = 0;
    for (; i + DN_OPTIM_LANES <= n; i += DN_OPTIM_LANES)
        for (int l = 0; l < DN_OPTIM_LANES; l++)
            acc[l] += (double)g[i + l] * (double)g[i + l];
    for (; i < n; i++)
        acc[i % DN_OPTIM_LANES] += (double)g[i] * (double)g[i];
    for (int w = DN_OPTIM_LANES / 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++)
            acc[l] += acc[l + w];
    return sqrt(acc[0]);
}

void dn_grad_clip(float *g, size_t n, double max_norm, double norm) {
    float coef = (float)max_norm / ((float)norm + 1e-6f);
    if (!(coef < 1.0f))
        return; /* clamp(coef, max=1): g * 1 is g */
    const long long nn = (long long)n;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (nn > 32768)
#endif
    for (long long i = 0; i < nn; i++)
        g[i] *= coef;
}

/* ---- schedules ------------------------------------------------------------ */

void dn_lrs_start(const dn_lr_sched *s, double base, dn_lr_state *st) {
    (void)s;
    st->lr = base;
    st->epochs = 0;
    st->best = 0;
    st->has_best = 0;
    st->bad_epochs = st->cooldown_left = 0;
}

double dn_lrs_at(const dn_lr_sched *s, const dn_lr_state *st, double base, int64_t step, int64_t total) {
    if (s->type != DN_LRS_COSINE)
        return st->lr;
    const int64_t w = s->warmup_steps;
    if (step < w)
        return base * (double)(step + 1) / (double)w;
    const double min_lr = dn_adam_as_typed(s->min_lr);
    double span = total - w > 1 ? (double)(total - w) : 1.0;
    double frac = (double)(step - w) / span;
    if (frac > 1.0)
        frac = 1.0;
    return min_lr + (base - min_lr) * (1.0 + cos(3.141592653589793 * frac)) / 2.0;
}

/* ReduceLROnPlateau's rel threshold mode: a < best * (1 - th) for a loss,
 * a > best * (1 + th) for an accuracy. */
static int dn_optim_better(const dn_lr_sched *s, const dn_lr_state *st, double a) {
    const double th = dn_adam_as_typed(s->threshold);
    if (!st->has_best)
        return 1; /* PyTorch's best starts at +inf (loss) or -inf (accuracy) */
    return s->metric_acc ? a > st->best * (th + 1.0) : a < st->best * (1.0 - th);
}

/* ReduceLROnPlateau.step(metric). */
static void dn_optim_plateau(const dn_lr_sched *s, dn_lr_state *st, double metric) {
    if (dn_optim_better(s, st, metric)) {
        st->best = metric;
        st->has_best = 1;
        st->bad_epochs = 0;
    } else {
        st->bad_epochs++;
    }
    if (st->cooldown_left > 0) {
        st->cooldown_left--;
        st->bad_epochs = 0;
    }
    if (st->bad_epochs > s->patience) {
        double lr = st->lr * dn_adam_as_typed(s->factor), min_lr = dn_adam_as_typed(s->min_lr);
        if (lr < min_lr)
            lr = min_lr;
        if (st->lr - lr > 1e-8) /* PyTorch's eps: smaller cuts are skipped */
            st->lr = lr;
        st->cooldown_left = s->cooldown;
        st->bad_epochs = 0;
    }
}

void dn_lrs_epoch_end(const dn_lr_sched *s, dn_lr_state *st, double metric) {
    st->epochs++;
    if (s->type == DN_LRS_STEP && st->epochs % s->step_size == 0)
        st->lr *= dn_adam_as_typed(s->gamma);
    else if (s->type == DN_LRS_EXPONENTIAL)
        st->lr *= dn_adam_as_typed(s->gamma);
    else if (s->type == DN_LRS_PLATEAU)
        dn_optim_plateau(s, st, metric);
}
