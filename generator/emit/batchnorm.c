/* batchnorm.c - the batchnorm kind: BatchNorm1d of the dense product before
 * it, then activation, noise and dropout (PyTorch's Linear -> BatchNorm1d ->
 * activation -> Dropout).
 *
 * The dense op before it leaves z = x W^T + b in a buffer of its own (op->z). Then, with S the layer's row stride:
 *
 *   bn_batch     training: per unit the batch mean and 1/sqrt(var + eps)
 *                (biased variance, sums over rows in row order in double,
 *                as PyTorch's CPU kernel), the unbiased variance, and the
 *                affine map alpha = gamma/std, shift = beta - mean * alpha,
 *                into stats [5][S];
 *   bn_running   eval: the same map from the running mean and variance;
 *   bn_apply     a = act(z * alpha + shift) through the layer's finish
 *                function, which also adds noise and applies dropout;
 *   bn_backward  the gradient wrt the batch norm output becomes the
 *                gradient wrt z, in place (PyTorch's formula), gamma's and
 *                beta's gradients are stored or, in the fused variant,
 *                applied by Adam; then the running statistics move toward
 *                the batch's by the momentum (after the loss was found
 *                finite, in the fused step).
 *
 * The statistics and the backward pass split groups of 8 units between
 * threads and keep 8 sums side by side; every unit's sums run over the rows
 * in order, so results do not depend on the thread count. Units past
 * `units` (padding) have z = 0 and d = 0, hence mean 0, alpha = shift = 0,
 * and zero gradients: their gamma, beta and running statistics stay 0.
 */
#include <stdio.h>
#include <string.h>

#include "kernels.h"
#include "kind.h"

/* The rows of stats [5][S] (see above). */
enum { ST_MEAN, ST_ISTD, ST_ALPHA, ST_SHIFT, ST_UVAR };

/* The loop over groups of 8 units, as an omp for: opens `u = 8 * group`. */
static void open_groups(dn_buf *b, int stride) {
    dn_buf_line(b, "DN_OMP(omp for schedule(static))");
    dn_buf_line(b, "for (int g = 0; g < %d; g++) {", stride / 8);
    b->indent++;
    dn_buf_line(b, "const int u = g * 8;");
}

static void emit_batch_stats(dn_buf *b, const dn_plan *p, const dn_op *L) {
    int S = L->out.stride;
    const char *eps = L->bn_eps_double; /* in double here, as PyTorch's CPU kernel adds it (in eval: in float) */
    dn_buf_line(b, "/* Batch statistics of z [n, %d] (n >= 2) into stats [5][%d]: mean, 1/sqrt(var + eps),", L->out.width, S);
    dn_buf_line(b, " * alpha = gamma/std, shift = beta - mean * alpha, unbiased variance. Each unit's sums");
    dn_buf_line(b, " * run over the rows in order, in double; 8 units side by side. */");
    dn_buf_line(b, "static void %s_%s_bn_batch(const float *restrict z, const float *restrict gamma,", p->name, L->name);
    dn_buf_line(b, "        const float *restrict beta, float *restrict stats, int n) {");
    b->indent++;
    open_groups(b, S);
    dn_buf_line(b, "double sum[8] = {0}, sq[8] = {0};");
    dn_buf_line(b, "float mean[8];");
    dn_buf_line(b, "for (int r = 0; r < n; r++)");
    dn_buf_line(b, "    for (int j = 0; j < 8; j++) sum[j] += z[(size_t)r * %d + u + j];", S);
    dn_buf_line(b, "for (int j = 0; j < 8; j++) mean[j] = (float)(sum[j] / n);");
    dn_buf_line(b, "for (int r = 0; r < n; r++)");
    dn_buf_line(b, "    for (int j = 0; j < 8; j++) {");
    dn_buf_line(b, "        const float e = z[(size_t)r * %d + u + j] - mean[j];", S);
    dn_buf_line(b, "        sq[j] += (double)(e * e);");
    dn_buf_line(b, "    }");
    dn_buf_line(b, "for (int j = 0; j < 8; j++) {");
    b->indent++;
    dn_buf_line(b, "const float istd = (float)(1.0 / sqrt(sq[j] / n + %s));", eps);
    dn_buf_line(b, "const float alpha = istd * gamma[u + j];");
    dn_buf_line(b, "stats[%d + u + j] = mean[j];", ST_MEAN * S);
    dn_buf_line(b, "stats[%d + u + j] = istd;", ST_ISTD * S);
    dn_buf_line(b, "stats[%d + u + j] = alpha;", ST_ALPHA * S);
    dn_buf_line(b, "stats[%d + u + j] = beta[u + j] - mean[j] * alpha;", ST_SHIFT * S);
    dn_buf_line(b, "stats[%d + u + j] = (float)(sq[j] / (n > 1 ? n - 1 : 1));", ST_UVAR * S);
    dn_buf_close(b);
    dn_buf_close(b);
    dn_buf_close(b);
    dn_buf_blank(b);
}

static void emit_running_stats(dn_buf *b, const dn_plan *p, const dn_op *L) {
    int S = L->out.stride;
    const char *eps = L->bn_eps_float;
    dn_buf_line(b, "/* Eval: alpha and shift of stats [5][%d] from the running mean and variance. */", S);
    dn_buf_line(b, "static void %s_%s_bn_running(const float *restrict run_mean, const float *restrict run_var,",
                p->name, L->name);
    dn_buf_line(b, "        const float *restrict gamma, const float *restrict beta, float *restrict stats) {");
    b->indent++;
    dn_buf_line(b, "DN_OMP(omp for schedule(static))");
    dn_buf_line(b, "for (int u = 0; u < %d; u++) {", S);
    b->indent++;
    dn_buf_line(b, "const float istd = 1.0f / sqrtf(run_var[u] + %s);", eps);
    dn_buf_line(b, "const float alpha = istd * gamma[u];");
    dn_buf_line(b, "stats[%d + u] = alpha;", ST_ALPHA * S);
    dn_buf_line(b, "stats[%d + u] = beta[u] - run_mean[u] * alpha;", ST_SHIFT * S);
    dn_buf_close(b);
    dn_buf_close(b);
    dn_buf_blank(b);
}

/* bn_apply: tiles of 8 rows x 8 units; the dropout scales of a tile come
 * from one dn_dropout_block, as in the forward product's tiles. */
static void emit_apply(dn_buf *b, const dn_plan *p, const dn_op *L) {
    int S = L->out.stride, stoch = L->stochastic, drop = L->drop.p > 0;
    dn_buf_line(b, "/* a = %s(z * alpha + shift) [n, %d]%s. */", dn_act_name(L->act.type), L->out.width,
                stoch ? "; in training (h != NULL) noise and dropout into h" : "");
    dn_buf_line(b, "static void %s_%s_bn_apply(const float *restrict z, const float *restrict stats, float *restrict a,",
                p->name, L->name);
    dn_buf_line(b, "        %s%s%sint n%s) {", L->act.from_pre ? "float *restrict pre, " : "",
                drop ? "float *restrict mask, " : "", stoch ? "float *restrict h, " : "",
                stoch ? ", uint64_t seed, uint64_t step" : "");
    b->indent++;
    dn_buf_line(b, "const int row_blocks = (n + 7) / 8;");
    dn_buf_line(b, "DN_OMP(omp for schedule(static))");
    dn_buf_line(b, "for (int t = 0; t < %d * row_blocks; t++) {", S / 8);
    b->indent++;
    dn_buf_line(b, "const int u = (t / row_blocks) * 8, r0 = (t %% row_blocks) * 8;");
    dn_buf_line(b, "const int nr = n - r0 < 8 ? n - r0 : 8;");
    if (drop) dn_emit_dropout_block(b, L, 8, 8, "u");
    dn_buf_line(b, "const dn_v8 alpha = dn_load8(stats + %d + u);", ST_ALPHA * S);
    dn_buf_line(b, "for (int r = 0; r < nr; r++) {");
    b->indent++;
    dn_buf_line(b, "float zs[8];");
    dn_buf_line(b, "dn_store8(zs, dn_load8(z + (size_t)(r0 + r) * %d + u) * alpha);", S);
    dn_buf_line(b, "%s_%s_finish(zs, (size_t)(r0 + r), u, stats + %d, a%s%s%s);", p->name, L->name, ST_SHIFT * S,
                L->act.from_pre ? ", pre" : "", drop ? ", mask, mk[r]" : "", stoch ? ", h, seed, step" : "");
    dn_buf_close(b);
    dn_buf_close(b);
    dn_buf_close(b);
    dn_buf_blank(b);
}

static void emit_backward(dn_buf *b, const dn_plan *p, const dn_op *L, int adam) {
    int S = L->out.stride;
    const char *mom = L->bn_momentum;
    if (adam) {
        dn_buf_line(b, "/* Backward through batch norm as above, with gamma and beta updated by Adam at once");
        dn_buf_line(b, " * (moments: m and v, gamma's [%d] then beta's [%d]). */", S, S);
        dn_buf_line(b, "static void %s_%s_bn_backward_adam(float *restrict d, const float *restrict z,", p->name,
                    L->name);
        dn_buf_line(b, "        const float *restrict stats, float *restrict gamma, float *restrict beta, float *restrict m,");
        dn_buf_line(b, "        float *restrict v, const dn_adam_coef *ac, float *restrict run_mean,");
        dn_buf_line(b, "        float *restrict run_var, int n) {");
    } else {
        dn_buf_line(b, "/* Backward through batch norm (batch statistics): d [n, %d], the gradient wrt the", L->out.width);
        dn_buf_line(b, " * output, becomes the gradient wrt z in place:");
        dn_buf_line(b, " *   d = (d - sum(d) / n - (z - mean) * dot / (n var)) * gamma / std,  dot = sum((z - mean) d)");
        dn_buf_line(b, " * dgamma = dot / std, dbeta = sum(d). Then run_mean and run_var move toward the batch's");
        dn_buf_line(b, " * mean and unbiased variance by momentum %s. 8 units side by side, sums in double. */", mom);
        dn_buf_line(b, "static void %s_%s_bn_backward(float *restrict d, const float *restrict z,", p->name, L->name);
        dn_buf_line(b, "        const float *restrict stats, const float *restrict gamma, float *restrict dgamma,");
        dn_buf_line(b, "        float *restrict dbeta, float *restrict run_mean, float *restrict run_var, int n) {");
    }
    b->indent++;
    open_groups(b, S);
    dn_buf_line(b, "const float *mean = stats + %d + u, *istd = stats + %d + u;", ST_MEAN * S, ST_ISTD * S);
    dn_buf_line(b, "double sum[8] = {0}, dot[8] = {0};");
    dn_buf_line(b, "for (int r = 0; r < n; r++) {");
    dn_buf_line(b, "    const float *dr = d + (size_t)r * %d + u, *zr = z + (size_t)r * %d + u;", S, S);
    dn_buf_line(b, "    for (int j = 0; j < 8; j++) {");
    dn_buf_line(b, "        sum[j] += dr[j];");
    dn_buf_line(b, "        dot[j] += (double)((zr[j] - mean[j]) * dr[j]);");
    dn_buf_line(b, "    }");
    dn_buf_line(b, "}");
    dn_buf_line(b, "float k[8], mean_d[8], scale[8];");
    dn_buf_line(b, "for (int j = 0; j < 8; j++) {");
    dn_buf_line(b, "    k[j] = (float)dot[j] * istd[j] * istd[j] / (float)n;");
    dn_buf_line(b, "    mean_d[j] = (float)(sum[j] / n);");
    dn_buf_line(b, "    scale[j] = istd[j] * gamma[u + j];");
    dn_buf_line(b, "}");
    dn_buf_line(b, "for (int r = 0; r < n; r++) {");
    dn_buf_line(b, "    float *dr = d + (size_t)r * %d + u;", S);
    dn_buf_line(b, "    const float *zr = z + (size_t)r * %d + u;", S);
    dn_buf_line(b, "    for (int j = 0; j < 8; j++) dr[j] = (dr[j] - mean_d[j] - (zr[j] - mean[j]) * k[j]) * scale[j];");
    dn_buf_line(b, "}");
    dn_buf_line(b, "for (int j = 0; j < 8; j++) {");
    b->indent++;
    if (adam) {
        dn_buf_line(b, "dn_adam1(gamma + u + j, m + u + j, v + u + j, (float)dot[j] * istd[j], ac);");
        dn_buf_line(b, "dn_adam1(beta + u + j, m + %d + u + j, v + %d + u + j, (float)sum[j], ac);", S, S);
    } else {
        dn_buf_line(b, "dgamma[u + j] = (float)dot[j] * istd[j];");
        dn_buf_line(b, "dbeta[u + j] = (float)sum[j];");
    }
    dn_buf_line(b, "const float mom = %s;", mom);
    dn_buf_line(b, "run_mean[u + j] = mom * mean[j] + (1.0f - mom) * run_mean[u + j];");
    dn_buf_line(b, "run_var[u + j] = mom * stats[%d + u + j] + (1.0f - mom) * run_var[u + j];", ST_UVAR * S);
    dn_buf_close(b);
    dn_buf_close(b);
    dn_buf_close(b);
    dn_buf_blank(b);
}

/* ---- the module's interface (kind.h) ------------------------------------------- */

static void bn_describe(dn_buf *b, const dn_plan *p, const dn_op *op) {
    (void)p;
    dn_buf_printf(b, "%-12s batchnorm %3d (momentum %s, eps %s) %s", op->name, op->out.width,
                  op->bn_momentum_text, op->bn_eps_text, dn_act_name(op->act.type));
    if (op->noise > 0) dn_buf_printf(b, " noise %s", op->noise_text);
    if (op->drop.p > 0) dn_buf_printf(b, " dropout %s", op->drop.rate);
}

static void bn_kernels(dn_buf *b, const dn_plan *p, const dn_op *op, int forward_only) {
    dn_buf_line(b, "/* ==== %s: batch norm of %d units (momentum %s, eps %s), %s%s%s%s%s ==== */", op->name,
                op->out.width, op->bn_momentum_text, op->bn_eps_text, dn_act_name(op->act.type),
                op->noise > 0 ? ", noise " : "", op->noise > 0 ? op->noise_text : "",
                op->drop.p > 0 ? ", dropout " : "", op->drop.p > 0 ? op->drop.rate : "");
    dn_buf_blank(b);
    dn_emit_act_functions(b, &op->act, forward_only);
    dn_emit_finish(b, p, op);
    if (!forward_only) emit_batch_stats(b, p, op);
    emit_running_stats(b, p, op);
    emit_apply(b, p, op);
    if (forward_only) return;
    emit_backward(b, p, op, 0);
    emit_backward(b, p, op, 1);
}

static void bn_forward(dn_buf *b, const dn_plan *p, const dn_op *op, int train) {
    const char *m = p->name, *nm = op->name;
    char extra[4 * DN_EXPR_MAX];
    if (train)
        dn_buf_line(b, "%s_%s_bn_batch(%s, params + %zu, params + %zu, %s, n);", m, nm, op->z, op->g_off,
                    op->beta_off, op->stats);
    else
        dn_buf_line(b, "%s_%s_bn_running(params + %zu, params + %zu, params + %zu, params + %zu, %s);", m, nm,
                    op->rm_off, op->rv_off, op->g_off, op->beta_off, op->stats);
    dn_epilogue_args(extra, sizeof extra, op, train);
    dn_buf_line(b, "%s_%s_bn_apply(%s, %s, %s,%s);", m, nm, op->z, op->stats, op->out.a, extra);
}

static void bn_backward(dn_buf *b, const dn_plan *p, const dn_op *op) {
    dn_buf_line(b, "%s_%s_bn_backward(%s, %s, %s, params + %zu, grads + %zu, grads + %zu,", p->name, op->name,
                op->out.d, op->z, op->stats, op->g_off, op->g_off, op->beta_off);
    dn_buf_line(b, "        params + %zu, params + %zu, n);", op->rm_off, op->rv_off);
}

static void bn_backward_adam(dn_buf *b, const dn_plan *p, const dn_op *op) {
    dn_buf_line(b, "%s_%s_bn_backward_adam(%s, %s, %s, params + %zu, params + %zu, m + %zu, v + %zu,", p->name,
                op->name, op->out.d, op->z, op->stats, op->g_off, op->beta_off, op->g_off, op->g_off);
    dn_buf_line(b, "        ac, params + %zu, params + %zu, n);", op->rm_off, op->rv_off);
}

const dn_kind dn_kind_batchnorm = {
    .name = "batchnorm",
    .describe = bn_describe,
    .kernels = bn_kernels,
    .forward = bn_forward,
    .backward = bn_backward,
    .backward_adam = bn_backward_adam,
};
