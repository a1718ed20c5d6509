/* dn_adam.c - Adam / AdamW, reproducing torch.optim.Adam(W) 1.13
 * (foreach=False, amsgrad=False, maximize=False) in float32.
 *
 * PyTorch evaluates its scalar coefficients (1 - beta1, lr / (1 - beta1^t),
 * ...) in double from the Python floats the user typed, then rounds each to
 * float32 where it meets a tensor. The tensor ops are, per element:
 *   g = g + wd * p            (Adam only; ATen's add kernel, fused)
 *   m = m * b1;  m = m + (1 - b1) * g              (fused multiply-add)
 *   v = v * b2;  v = v + ((1 - b2) * g) * g        (fused multiply-add)
 *   d = sqrt(v) / sqrt(1 - b2^t) + eps
 *   p = p + (-(lr / (1 - b1^t)) * m) / d
 * PyTorch's AVX2 kernels fuse the marked multiply-adds. We evaluate each as
 * (double)a * b + c rounded to float: the product is exact in double, so this
 * equals fmaf() except in rare double-rounding ties, vectorizes without FMA
 * hardware, and is unaffected by FP contraction. Reproduces torch 1.13
 * (AVX2) bit for bit on test data; see tools/dn_adam_reference.py.
 *
 * The loop is `omp parallel for` without `simd`: sqrtf's errno path keeps
 * clang from honouring a simd request, which it reports as a warning. */
#include "dn_runtime.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* a * b + c with one rounding of the exact product's sum (see above). */
static inline float dn_adam_madd(float a, float b, float c) {
    return (float)((double)a * (double)b + (double)c);
}

/* The double nearest the shortest decimal that rounds to f: the value the
 * user most likely typed (0.9f -> 0.9), so that coefficients computed from it
 * in double match PyTorch's, which never saw a float32 hyperparameter. */
double dn_adam_as_typed(float f) {
    char buf[32];
    for (int prec = 1; prec < 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        double d = strtod(buf, NULL);
        if ((float)d == f)
            return d;
    }
    return (double)f;
}

void dn_adam_coefs(const dn_adam *cfg, int64_t t, dn_adam_coef *c) {
    dn_adam_coefs_at(cfg, dn_adam_as_typed(cfg->lr), t, c);
}

void dn_adam_coefs_at(const dn_adam *cfg, double lr, int64_t t, dn_adam_coef *c) {
    const double b1 = dn_adam_as_typed(cfg->beta1);
    const double b2 = dn_adam_as_typed(cfg->beta2), wd = dn_adam_as_typed(cfg->weight_decay);
    const double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    c->b1 = (float)b1;
    c->omb1 = (float)(1.0 - b1);
    c->b2 = (float)b2;
    c->omb2 = (float)(1.0 - b2);
    c->eps = (float)dn_adam_as_typed(cfg->eps);
    c->neg_step = (float)(-(lr / bc1));
    c->bc2_sqrt = (float)sqrt(bc2);
    c->wd = (float)wd;
    c->l2 = cfg->weight_decay != 0.0f && !cfg->decoupled;
    /* AdamW: p *= 1 - lr * wd (exactly 1.0f otherwise) */
    c->shrink = (cfg->weight_decay != 0.0f && cfg->decoupled) ? (float)(1.0 - lr * wd) : 1.0f;
}

void dn_adam_step(const dn_adam *cfg, float *p, const float *g, float *m, float *v, size_t n,
                  int64_t t) {
    dn_adam_coef c;
    dn_adam_coefs(cfg, t, &c);
    dn_adam_apply(&c, p, g, m, v, n);
}

void dn_adam_apply(const dn_adam_coef *cp, float *p, const float *g, float *m, float *v, size_t n) {
    const dn_adam_coef c = *cp;
    const long long nn = (long long)n;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (nn > 32768)
#endif
    for (long long i = 0; i < nn; i++) {
        float pi = p[i] * c.shrink;
        float gi = c.l2 ? dn_adam_madd(pi, c.wd, g[i]) : g[i];
        float mi = dn_adam_madd(gi, c.omb1, m[i] * c.b1);
        float vi = dn_adam_madd(c.omb2 * gi, gi, v[i] * c.b2);
        float denom = sqrtf(vi) / c.bc2_sqrt + c.eps;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi + (c.neg_step * mi) / denom;
    }
}
