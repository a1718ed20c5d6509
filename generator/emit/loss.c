/* loss.c - the loss of the network's output: the per-row code (shared by
 * the loss kernel and the fused training head) and the kernel that runs it
 * over a batch, with the row sums of loss and hits (loss.h). */
#include "loss.h"

#include <stdio.h>

#include "kernels.h"

/* Zeroes the padding of row r of d (units past the last layer's width). */
static void emit_d_padding(dn_buf *b, const dn_value *L) {
    if (L->width < L->stride)
        dn_buf_line(b, "    for (int o = %d; o < %d; o++) d[(size_t)r * %d + o] = 0.0f;", L->width, L->stride, L->stride);
}

/* Opens the block of a row's loss code that needs `what` ("y", "d"): under
 * `if (what)`, or unconditionally in training code, where y and d are set. */
static void open_block(dn_buf *b, int train, const char *what) {
    if (train)
        dn_buf_line(b, "{");
    else
        dn_buf_line(b, "if (%s) {", what);
}

static void emit_loss_ce(dn_buf *b, const dn_plan *p, int train) {
    const dn_value *L = &p->last->out;
    int out = L->width;
    dn_buf_line(b, "float mx = zr[0];");
    dn_buf_line(b, "int arg = 0;");
    dn_buf_line(b, "for (int o = 1; o < %d; o++)", out);
    dn_buf_line(b, "    if (zr[o] > mx) mx = zr[arg = o];");
    dn_buf_line(b, "float sum = 0.0f;");
    dn_buf_line(b, "for (int o = 0; o < %d; o++) sum += expf(zr[o] - mx);", out);
    dn_buf_line(b, "const float lse = mx + logf(sum);");
    if (!train) {
        dn_buf_line(b, "if (p)");
        dn_buf_line(b, "    for (int o = 0; o < %d; o++) p[o] = expf(zr[o] - lse);", out);
    }
    open_block(b, train, "y");
    if (p->smoothing) { /* PyTorch's (1 - e) nll + e/K sum over classes of -log p */
        dn_buf_line(b, "    float spread = 0.0f;");
        dn_buf_line(b, "    for (int o = 0; o < %d; o++) spread += lse - zr[o];", out);
        dn_buf_line(b, "    rowloss[r] = %s * (lse - zr[y[r]]) + %s * spread;", p->smooth_keep, p->smooth_each);
    } else {
        dn_buf_line(b, "    rowloss[r] = lse - zr[y[r]];");
    }
    dn_buf_line(b, "    hits[r] = arg == y[r] ? 1.0f : 0.0f;");
    dn_buf_line(b, "}");
    open_block(b, train, "d");
    dn_buf_line(b, "    for (int o = 0; o < %d; o++)", out);
    if (p->smoothing) /* the target: 1 - e + e/K for the label, e/K for the others */
        dn_buf_line(b, "        d[(size_t)r * %d + o] = (expf(zr[o] - lse) - (o == y[r] ? %s : 0.0f) - %s) * inv_n;",
                    L->stride, p->smooth_keep, p->smooth_each);
    else
        dn_buf_line(b, "        d[(size_t)r * %d + o] = (expf(zr[o] - lse) - (o == y[r] ? 1.0f : 0.0f)) * inv_n;",
                    L->stride);
    emit_d_padding(b, L);
    dn_buf_line(b, "}");
}

/* Binary cross-entropy of the one logit zr[0] against the label 0 or 1,
 * as PyTorch's binary_cross_entropy_with_logits computes it (stable for
 * any logit: m = max(-z, 0), loss = (1 - y) z + m + log(e^-m + e^(-z-m)));
 * the output is the probability sigmoid(z), the class 1 when z > 0. */
static void emit_loss_bce(dn_buf *b, const dn_value *L, int train) {
    dn_buf_line(b, "const float zv = zr[0], prob = 1.0f / (1.0f + expf(-zv));");
    if (!train) {
        dn_buf_line(b, "if (p)");
        dn_buf_line(b, "    p[0] = prob;");
    }
    open_block(b, train, "y");
    dn_buf_line(b, "    const float label = y[r] == 1 ? 1.0f : 0.0f, m = zv < 0.0f ? -zv : 0.0f;");
    dn_buf_line(b, "    rowloss[r] = (1.0f - label) * zv + m + logf(expf(-m) + expf(-zv - m));");
    dn_buf_line(b, "    hits[r] = (zv > 0.0f) == (y[r] == 1) ? 1.0f : 0.0f;");
    dn_buf_line(b, "}");
    open_block(b, train, "d");
    dn_buf_line(b, "    d[(size_t)r * %d] = (prob - (y[r] == 1 ? 1.0f : 0.0f)) * inv_n;", L->stride);
    emit_d_padding(b, L);
    dn_buf_line(b, "}");
}

/* Multi-label binary cross-entropy: each logit zr[o] against its own target
 * y[r, o] in {0, 1}, per label as emit_loss_bce computes it. The row's loss
 * is the mean over its labels, so that the batch's (the mean of the rows)
 * is PyTorch's BCEWithLogitsLoss mean over all n * K elements; the gradient
 * is (sigmoid(z) - t) / (n_all * K). The outputs are the K probabilities;
 * the row is a hit when every label is right (probability above 0.5 for
 * the label 1): exact-match accuracy. */
static void emit_loss_mlbce(dn_buf *b, const dn_value *L, int train) {
    int out = L->width;
    if (!train) {
        dn_buf_line(b, "if (p)");
        dn_buf_line(b, "    for (int o = 0; o < %d; o++) p[o] = 1.0f / (1.0f + expf(-zr[o]));", out);
    }
    open_block(b, train, "y");
    dn_buf_line(b, "    float sum = 0.0f;");
    dn_buf_line(b, "    int right = 0;");
    dn_buf_line(b, "    for (int o = 0; o < %d; o++) {", out);
    dn_buf_line(b, "        const float zv = zr[o], tv = y[(size_t)r * %d + o], m = zv < 0.0f ? -zv : 0.0f;", out);
    dn_buf_line(b, "        sum += (1.0f - tv) * zv + m + logf(expf(-m) + expf(-zv - m));");
    dn_buf_line(b, "        right += (zv > 0.0f) == (tv == 1.0f);");
    dn_buf_line(b, "    }");
    dn_buf_line(b, "    rowloss[r] = sum / %d.0f;", out);
    dn_buf_line(b, "    hits[r] = right == %d ? 1.0f : 0.0f;", out);
    dn_buf_line(b, "}");
    open_block(b, train, "d");
    dn_buf_line(b, "    for (int o = 0; o < %d; o++)", out);
    dn_buf_line(b, "        d[(size_t)r * %d + o] = (1.0f / (1.0f + expf(-zr[o])) - y[(size_t)r * %d + o]) * inv_n / %d.0f;",
                L->stride, out, out);
    emit_d_padding(b, L);
    dn_buf_line(b, "}");
}

int dn_loss_values(const dn_plan *p) { return p->spec->data.values; }
const char *dn_loss_y_type(const dn_plan *p) { return dn_loss_values(p) ? "const float" : "const int32_t"; }
const char *dn_loss_y_field(const dn_plan *p) { return dn_loss_values(p) ? "bt->t" : "bt->y"; }

/* mse's target of output o in row r: y's value, or the one-hot label. */
static void target_expr(char *buf, size_t cap, const dn_value *L, int values) {
    if (values)
        snprintf(buf, cap, "y[(size_t)r * %d + o]", L->width);
    else
        snprintf(buf, cap, "(o == y[r] ? 1.0f : 0.0f)");
}

static void emit_loss_mse(dn_buf *b, const dn_value *L, int train, int values) {
    int out = L->width;
    char dv[DN_DERIV_MAX];
    const char *deriv = dn_act_derivative(&L->act, dv);
    char tgt[64];
    target_expr(tgt, sizeof tgt, L, values);
    if (!values) {
        dn_buf_line(b, "int arg = 0;");
        dn_buf_line(b, "for (int o = 1; o < %d; o++)", out);
        dn_buf_line(b, "    if (zr[o] > zr[arg]) arg = o;");
    }
    if (!train) {
        dn_buf_line(b, "if (p)");
        dn_buf_line(b, "    for (int o = 0; o < %d; o++) p[o] = zr[o];", out);
    }
    open_block(b, train, "y");
    dn_buf_line(b, "    float sum = 0.0f;");
    dn_buf_line(b, "    for (int o = 0; o < %d; o++) {", out);
    dn_buf_line(b, "        const float e = zr[o] - %s;", tgt);
    dn_buf_line(b, "        sum += e * e;");
    dn_buf_line(b, "    }");
    dn_buf_line(b, "    rowloss[r] = sum / %d.0f;", out);
    dn_buf_line(b, "    hits[r] = %s;", values ? "0.0f" : "arg == y[r] ? 1.0f : 0.0f");
    dn_buf_line(b, "}");
    open_block(b, train, "d");
    dn_buf_line(b, "    for (int o = 0; o < %d; o++) {", out);
    dn_buf_line(b, "        const float a = zr[o];");
    dn_buf_line(b, "        d[(size_t)r * %d + o] = 2.0f * (a - %s) * inv_n / %d.0f%s%s;",
                L->stride, tgt, out, deriv ? " * " : "", deriv ? deriv : "");
    dn_buf_line(b, "    }");
    emit_d_padding(b, L);
    dn_buf_line(b, "}");
}

void dn_emit_loss_row(dn_buf *b, const dn_plan *p, int train) {
    switch (p->spec->train.loss) {
    case DN_LOSS_CROSS_ENTROPY: emit_loss_ce(b, p, train); return;
    case DN_LOSS_BINARY_CROSS_ENTROPY:
        if (dn_loss_values(p))
            emit_loss_mlbce(b, &p->last->out, train);
        else
            emit_loss_bce(b, &p->last->out, train);
        return;
    case DN_LOSS_MSE:
    case DN_LOSS_COUNT: break;
    }
    emit_loss_mse(b, &p->last->out, train, dn_loss_values(p));
}

/* What the loss is, for the comment before its kernel. */
static const char *loss_title(const dn_plan *p) {
    switch (p->spec->train.loss) {
    case DN_LOSS_CROSS_ENTROPY:
        return p->smoothing ? "softmax + cross-entropy with label smoothing, mean over the batch"
                            : "softmax + cross-entropy, mean over the batch";
    case DN_LOSS_BINARY_CROSS_ENTROPY:
        return dn_loss_values(p) ? "sigmoid + multi-label binary cross-entropy on the logits, mean over batch and labels"
                                 : "sigmoid + binary cross-entropy on the logit, mean over the batch";
    case DN_LOSS_MSE:
    case DN_LOSS_COUNT: break;
    }
    return dn_loss_values(p) ? "mean squared error against real-valued targets, mean over batch and outputs"
                             : "mean squared error against one-hot targets, mean over batch and outputs";
}

void dn_emit_loss(dn_buf *b, const dn_plan *p) {
    const dn_value *L = &p->last->out;
    const char *m = p->name;
    int ce = p->spec->train.loss != DN_LOSS_MSE;
    dn_buf_line(b, "/* ==== loss: %s ==== */", loss_title(p));
    dn_buf_blank(b);
    dn_buf_line(b, "/* Per row r of z [n, %d] (row stride %d): rowloss and hit (when y != NULL), the output", L->width,
                L->stride);
    dn_buf_line(b, " * (%s) into p (when p != NULL), and the gradient of the mean loss",
                !ce ? "values"
                : p->spec->train.loss != DN_LOSS_BINARY_CROSS_ENTROPY ? "probabilities"
                : dn_loss_values(p) ? "probability of each label" : "probability of class 1");
    dn_buf_line(b, " * wrt the pre-activation into d (when d != NULL; needs y; row stride %d, zero past %d). */",
                L->stride, L->width);
    dn_buf_line(b, "static void %s_loss(const float *restrict z, %s *restrict y, float *restrict d,", m,
                dn_loss_y_type(p));
    dn_buf_line(b, "        float *restrict out, float *restrict rowloss, float *restrict hits, int n, int n_all) {");
    b->indent++;
    dn_buf_line(b, "const float inv_n = 1.0f / (float)n_all;");
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int r = 0; r < n; r++) {");
    b->indent++;
    dn_buf_line(b, "const float *zr = z + (size_t)r * %d;", L->stride);
    dn_buf_line(b, "float *p = out ? out + (size_t)r * %d : NULL;", L->width);
    dn_emit_loss_row(b, p, 0);
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_line(b, "dn_sync();");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
    dn_buf_line(b, "/* Sums the per-row results: each chunk's rows in order, the chunks in the tree");
    dn_buf_line(b, " * (DN_CHUNK; the same for any thread count). */");
    dn_buf_line(b, "static double %s_sum_rows(const %s_buffers *bf, int n, int *correct) {", m, m);
    b->indent++;
    dn_buf_line(b, "double loss;");
    dn_buf_line(b, "int hits = 0;");
    dn_emit_chunks_open(b, "double", "l", 31, "1");
    dn_buf_line(b, "double part = 0.0;");
    dn_buf_line(b, "for (int r = c0; r < c1; r++) {");
    dn_buf_line(b, "    part += bf->rowloss[r];");
    dn_buf_line(b, "    hits += bf->hits[r] != 0.0f;");
    dn_buf_line(b, "}");
    dn_emit_chunks_close(b, "double", "l", "&part", "1", "&loss");
    dn_buf_line(b, "if (correct) *correct += hits;");
    dn_buf_line(b, "return loss;");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

