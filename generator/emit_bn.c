/* emit_bn.c - the kernels of a batchnorm layer (PyTorch's Linear ->
 * BatchNorm1d -> activation -> noise -> dropout).
 *
 * The layer's forward product (emit_layer.c) leaves z = x W^T + b in a
 * buffer of its own. Then, with S the layer's row stride:
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
 * The statistics and the backward pass split the units between threads;
 * every sum runs over the rows in order, so results do not depend on the
 * thread count. Units past `units` (padding) have z = 0, hence mean 0 and
 * alpha = shift = 0; the backward pass leaves them alone.
 */
#include <inttypes.h>
#include <stdio.h>

#include "emit.h"

/* The rows of stats [5][S] (see above). */
enum { ST_MEAN, ST_ISTD, ST_ALPHA, ST_SHIFT, ST_UVAR };

static void emit_batch_stats(dn_buf *b, const dn_spec *s, const dn_layer *L) {
    int S = L->stride;
    char eps[40];
    dn_float_literal(eps, sizeof eps, (float)L->bn_eps);
    dn_buf_line(b, "/* Batch statistics of z [n, %d] (n >= 2) into stats [5][%d]: mean, 1/sqrt(var + eps),", L->units, S);
    dn_buf_line(b, " * alpha = gamma/std, shift = beta - mean * alpha, unbiased variance. Sums in double. */");
    dn_buf_line(b, "static void %s_%s_bn_batch(const float *restrict z, const float *restrict gamma,", s->name, L->name);
    dn_buf_line(b, "        const float *restrict beta, float *restrict stats, int n) {");
    b->indent++;
    dn_buf_line(b, "DN_OMP(omp for schedule(static))");
    dn_buf_line(b, "for (int u = 0; u < %d; u++) {", S);
    b->indent++;
    dn_buf_line(b, "double sum = 0.0, sq = 0.0;");
    dn_buf_line(b, "for (int r = 0; r < n; r++) sum += z[(size_t)r * %d + u];", S);
    dn_buf_line(b, "const float mean = (float)(sum / n);");
    dn_buf_line(b, "for (int r = 0; r < n; r++) {");
    dn_buf_line(b, "    const float e = z[(size_t)r * %d + u] - mean;", S);
    dn_buf_line(b, "    sq += (double)(e * e);");
    dn_buf_line(b, "}");
    dn_buf_line(b, "const float istd = (float)(1.0 / sqrt(sq / n + (double)%s));", eps);
    dn_buf_line(b, "const float alpha = istd * gamma[u];");
    dn_buf_line(b, "stats[%d + u] = mean;", ST_MEAN * S);
    dn_buf_line(b, "stats[%d + u] = istd;", ST_ISTD * S);
    dn_buf_line(b, "stats[%d + u] = alpha;", ST_ALPHA * S);
    dn_buf_line(b, "stats[%d + u] = beta[u] - mean * alpha;", ST_SHIFT * S);
    dn_buf_line(b, "stats[%d + u] = (float)(sq / (n > 1 ? n - 1 : 1));", ST_UVAR * S);
    b->indent--;
    dn_buf_line(b, "}");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

static void emit_running_stats(dn_buf *b, const dn_spec *s, const dn_layer *L) {
    int S = L->stride;
    char eps[40];
    dn_float_literal(eps, sizeof eps, (float)L->bn_eps);
    dn_buf_line(b, "/* Eval: alpha and shift of stats [5][%d] from the running mean and variance. */", S);
    dn_buf_line(b, "static void %s_%s_bn_running(const float *restrict run_mean, const float *restrict run_var,",
                s->name, L->name);
    dn_buf_line(b, "        const float *restrict gamma, const float *restrict beta, float *restrict stats) {");
    b->indent++;
    dn_buf_line(b, "DN_OMP(omp for schedule(static))");
    dn_buf_line(b, "for (int u = 0; u < %d; u++) {", S);
    b->indent++;
    dn_buf_line(b, "const float istd = 1.0f / sqrtf(run_var[u] + %s);", eps);
    dn_buf_line(b, "const float alpha = istd * gamma[u];");
    dn_buf_line(b, "stats[%d + u] = alpha;", ST_ALPHA * S);
    dn_buf_line(b, "stats[%d + u] = beta[u] - run_mean[u] * alpha;", ST_SHIFT * S);
    b->indent--;
    dn_buf_line(b, "}");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

/* bn_apply: tiles of 8 rows x 8 units; the dropout scales of a tile come
 * from one dn_dropout_block, as in the forward product's tiles. */
static void emit_apply(dn_buf *b, const dn_spec *s, int k) {
    const dn_layer *L = &s->layers[k];
    int S = L->stride, stoch = dn_layer_stochastic(L), drop = L->dropout > 0;
    dn_buf_line(b, "/* a = %s(z * alpha + shift) [n, %d]%s. */", dn_act_name(L->act), L->units,
                stoch ? "; in training (h != NULL) noise and dropout into h" : "");
    dn_buf_line(b, "static void %s_%s_bn_apply(const float *restrict z, const float *restrict stats, float *restrict a,",
                s->name, L->name);
    dn_buf_line(b, "        %s%sint n%s) {", drop ? "float *restrict mask, " : "", stoch ? "float *restrict h, " : "",
                stoch ? ", uint64_t seed, uint64_t step" : "");
    b->indent++;
    dn_buf_line(b, "const int row_blocks = (n + 7) / 8;");
    dn_buf_line(b, "DN_OMP(omp for schedule(static))");
    dn_buf_line(b, "for (int t = 0; t < %d * row_blocks; t++) {", S / 8);
    b->indent++;
    dn_buf_line(b, "const int u = (t / row_blocks) * 8, r0 = (t %% row_blocks) * 8;");
    dn_buf_line(b, "const int nr = n - r0 < 8 ? n - r0 : 8;");
    if (drop) {
        char scale[40];
        dn_float_literal(scale, sizeof scale, dn_dropout_scale(L->dropout));
        dn_buf_line(b, "float mk[8][8];");
        dn_buf_line(b, "if (h)");
        dn_buf_line(b, "    dn_dropout_block(seed, step, %d, (uint32_t)r0, nr, (uint32_t)u, 8, %" PRIu32 "u, %s, &mk[0][0]);",
                    k + 1, dn_dropout_threshold_of(L->dropout), scale);
    }
    dn_buf_line(b, "const dn_v8 alpha = dn_load8(stats + %d + u);", ST_ALPHA * S);
    dn_buf_line(b, "for (int r = 0; r < nr; r++) {");
    b->indent++;
    dn_buf_line(b, "float zs[8];");
    dn_buf_line(b, "dn_store8(zs, dn_load8(z + (size_t)(r0 + r) * %d + u) * alpha);", S);
    dn_buf_line(b, "%s_%s_finish(zs, (size_t)(r0 + r), u, stats + %d, a%s%s);", s->name, L->name, ST_SHIFT * S,
                drop ? ", mask, mk[r]" : "", stoch ? ", h, seed, step" : "");
    b->indent--;
    dn_buf_line(b, "}");
    b->indent--;
    dn_buf_line(b, "}");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

static void emit_backward(dn_buf *b, const dn_spec *s, const dn_layer *L, int adam) {
    int S = L->stride;
    char mom[40];
    dn_float_literal(mom, sizeof mom, (float)L->bn_momentum);
    if (adam) {
        dn_buf_line(b, "/* Backward through batch norm as above, with gamma and beta updated by Adam at once");
        dn_buf_line(b, " * (moments: m and v, gamma's [%d] then beta's [%d]). */", S, S);
        dn_buf_line(b, "static void %s_%s_bn_backward_adam(float *restrict d, const float *restrict z,", s->name,
                    L->name);
        dn_buf_line(b, "        const float *restrict stats, float *restrict gamma, float *restrict beta, float *restrict m,");
        dn_buf_line(b, "        float *restrict v, const dn_adam_coef *ac, float *restrict run_mean,");
        dn_buf_line(b, "        float *restrict run_var, int n) {");
    } else {
        dn_buf_line(b, "/* Backward through batch norm (batch statistics): d [n, %d], the gradient wrt the", L->units);
        dn_buf_line(b, " * output, becomes the gradient wrt z in place:");
        dn_buf_line(b, " *   d = (d - sum(d) / n - (z - mean) * dot / (n var)) * gamma / std,  dot = sum((z - mean) d)");
        dn_buf_line(b, " * dgamma = dot / std, dbeta = sum(d). Then run_mean and run_var move toward the batch's");
        dn_buf_line(b, " * mean and unbiased variance by momentum %s. */", mom);
        dn_buf_line(b, "static void %s_%s_bn_backward(float *restrict d, const float *restrict z,", s->name, L->name);
        dn_buf_line(b, "        const float *restrict stats, const float *restrict gamma, float *restrict dgamma,");
        dn_buf_line(b, "        float *restrict dbeta, float *restrict run_mean, float *restrict run_var, int n) {");
    }
    b->indent++;
    dn_buf_line(b, "DN_OMP(omp for schedule(static))");
    dn_buf_line(b, "for (int u = 0; u < %d; u++) {", L->units);
    b->indent++;
    dn_buf_line(b, "const float mean = stats[%d + u], istd = stats[%d + u];", ST_MEAN * S, ST_ISTD * S);
    dn_buf_line(b, "double sum = 0.0, dot = 0.0;");
    dn_buf_line(b, "for (int r = 0; r < n; r++) {");
    dn_buf_line(b, "    const size_t at = (size_t)r * %d + (size_t)u;", S);
    dn_buf_line(b, "    sum += d[at];");
    dn_buf_line(b, "    dot += (double)((z[at] - mean) * d[at]);");
    dn_buf_line(b, "}");
    dn_buf_line(b, "const float k = (float)dot * istd * istd / (float)n, mean_d = (float)(sum / n), w = gamma[u];");
    dn_buf_line(b, "for (int r = 0; r < n; r++) {");
    dn_buf_line(b, "    const size_t at = (size_t)r * %d + (size_t)u;", S);
    dn_buf_line(b, "    d[at] = (d[at] - mean_d - (z[at] - mean) * k) * istd * w;");
    dn_buf_line(b, "}");
    if (adam) {
        dn_buf_line(b, "dn_adam1(gamma + u, m + u, v + u, (float)dot * istd, ac);");
        dn_buf_line(b, "dn_adam1(beta + u, m + %d + u, v + %d + u, (float)sum, ac);", S, S);
    } else {
        dn_buf_line(b, "dgamma[u] = (float)dot * istd;");
        dn_buf_line(b, "dbeta[u] = (float)sum;");
    }
    dn_buf_line(b, "const float mom = %s;", mom);
    dn_buf_line(b, "run_mean[u] = mom * mean + (1.0f - mom) * run_mean[u];");
    dn_buf_line(b, "run_var[u] = mom * stats[%d + u] + (1.0f - mom) * run_var[u];", ST_UVAR * S);
    b->indent--;
    dn_buf_line(b, "}");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

void dn_emit_bn_kernels(dn_buf *b, const dn_spec *s, int k, int forward_only) {
    const dn_layer *L = &s->layers[k];
    if (!forward_only) emit_batch_stats(b, s, L);
    emit_running_stats(b, s, L);
    emit_apply(b, s, k);
    if (forward_only) return;
    emit_backward(b, s, L, 0);
    emit_backward(b, s, L, 1);
}
