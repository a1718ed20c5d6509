/* plan.c - dn_plan_build: from a validated dn_spec to the chain of ops with
 * every name, size, literal and kernel choice resolved (plan.h). */
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "literal.h"

/* Tile shapes (plan.h's dn_tiles): 6 x 2 panels is 12 accumulators of 8
 * floats; 8 x 4 panels with two panels per 16-float vector is 16
 * accumulators, a tile with an odd number of panels ending with one 8-float
 * vector. The same for the three tiled kernels of a dense op. */
static const dn_tiles DENSE_TILES = {{6, 2, 1}, {8, 4, 2}};

/* Most floats of W^T the fused head keeps on each thread's stack (64 KiB). */
enum { HEAD_WT_MAX = 16384 };

/* ---- values and epilogues --------------------------------------------------- */

/* No activation. */
static const dn_actfn LINEAR_ACT = {.type = DN_ACT_LINEAR};

/* Softplus's derivative from its output y, 1 - exp(-beta y), holds where
 * beta y <= threshold; where y = x (beta x > threshold) it must be 1. Both
 * cases are told apart by beta y > threshold except just below the
 * threshold, where log1p(exp(t)) rounds above it: from 18 on, the
 * derivative there, 1/(1 + exp(-t)), is 1 in float anyway. */
enum { SOFTPLUS_OUTPUT_THRESHOLD = 18 };

/* Layer L's activation: its literals, and whether its derivative needs the
 * pre-activation: always for gelu and silu (not monotonic); leaky_relu and
 * elu with a negative parameter (their output no longer tells the sign of
 * x); softplus with a threshold below SOFTPLUS_OUTPUT_THRESHOLD. Else the
 * output does, and no buffer is needed. `by_loss`: the loss applies it. */
static dn_actfn act_of(const dn_spec *s, const dn_layer *L, int by_loss) {
    dn_actfn f = {.type = L->act, .tanh = L->act_tanh, .by_loss = by_loss};
    snprintf(f.fn, sizeof f.fn, "%s_%s", s->name, L->name);
    dn_float_literal(f.alpha, sizeof f.alpha, (float)L->act_alpha);
    dn_float_literal(f.threshold, sizeof f.threshold, (float)L->act_threshold);
    switch (L->act) {
    case DN_ACT_GELU:
    case DN_ACT_SILU: f.from_pre = 1; break;
    case DN_ACT_LEAKY_RELU:
    case DN_ACT_ELU: f.from_pre = L->act_alpha < 0; break;
    case DN_ACT_SOFTPLUS: f.from_pre = L->act_threshold < SOFTPLUS_OUTPUT_THRESHOLD; break;
    default: break;
    }
    return f;
}

/* Whether layer k's activation is applied by the loss: softmax, and the
 * sigmoid of binary cross-entropy, which works on the logits. */
static int act_by_loss(const dn_spec *s, int k) {
    const dn_layer *L = &s->layers[k];
    return L->act == DN_ACT_SOFTMAX ||
           (k == s->n_layers - 1 && s->train.loss == DN_LOSS_BINARY_CROSS_ENTROPY && L->act == DN_ACT_SIGMOID);
}

/* The network's input as the first op reads it. */
static dn_value input_value(const dn_spec *s) {
    dn_value v = {.width = s->input, .stride = s->input, .shape = s->input_shape, .act = LINEAR_ACT};
    snprintf(v.owner, sizeof v.owner, "input");
    snprintf(v.a, sizeof v.a, "bt->x");
    snprintf(v.train, sizeof v.train, "bt->x");
    snprintf(v.eval, sizeof v.eval, "bt->x");
    snprintf(v.mask, sizeof v.mask, "NULL");
    snprintf(v.deriv_in, sizeof v.deriv_in, "bt->x");
    return v;
}

/* Whether a value is the network's input (no gradient flows into it). */
static int reads_input(const dn_value *v) { return strcmp(v->owner, "input") == 0; }

/* The output of an op named `name` with an epilogue (activation act,
 * randomized or not, with dropout scales or not): buffers bf.<name>_a, _h,
 * _mask, _d and _pre, as `prefix` ("fc1" or "input") names them. */
static dn_value epilogue_value(const char *prefix, int width, int stride, dn_actfn act, int stochastic,
                               int mask) {
    dn_value v = {.width = width, .stride = stride, .shape = {1, width, 1, 1}, .act = act, .has_mask = mask};
    snprintf(v.owner, sizeof v.owner, "%s", prefix);
    snprintf(v.a, sizeof v.a, "bf.%s_a", prefix);
    snprintf(v.deriv_in, sizeof v.deriv_in, act.from_pre ? "bf.%s_pre" : "bf.%s_a", prefix);
    snprintf(v.d, sizeof v.d, "bf.%s_d", prefix);
    snprintf(v.mask, sizeof v.mask, mask ? "bf.%s_mask" : "NULL", prefix);
    if (stochastic) {
        snprintf(v.train, sizeof v.train, "bf.%s_h", prefix);
        snprintf(v.eval, sizeof v.eval, "(mc ? bf.%s_h : bf.%s_a)", prefix, prefix);
    } else {
        snprintf(v.train, sizeof v.train, "%s", v.a);
        snprintf(v.eval, sizeof v.eval, "%s", v.a);
    }
    return v;
}

static dn_drop drop_of(double p) {
    dn_drop d = {.p = p};
    dn_format_rate(d.rate, sizeof d.rate, p);
    if (p > 0) {
        d.threshold = dn_dropout_threshold(p);
        dn_float_literal(d.scale, sizeof d.scale, 1.0f / (float)(1.0 - p));
    }
    return d;
}

/* Sets op's epilogue from layer k: activation, dropout and noise. */
static void set_epilogue(dn_op *op, const dn_spec *s, int k) {
    const dn_layer *L = &s->layers[k];
    op->act = act_of(s, L, act_by_loss(s, k));
    op->drop = drop_of(L->dropout);
    op->noise = L->noise;
    dn_format_rate(op->noise_text, sizeof op->noise_text, L->noise);
    dn_float_literal(op->noise_lit, sizeof op->noise_lit, (float)L->noise);
    op->stochastic = L->dropout > 0 || L->noise > 0;
}

/* ---- ops --------------------------------------------------------------------- */

static dn_op *new_op(dn_plan *p, dn_op_kind kind, const dn_layer *L, int slot, const dn_value *in) {
    dn_op *op = &p->ops[p->n_ops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->layer = L;
    op->slot = slot;
    op->in = *in;
    snprintf(op->name, sizeof op->name, "%s", L ? L->name : "input");
    snprintf(op->noise_text, sizeof op->noise_text, "0");
    return op;
}

/* Input dropout: h = x * mask, slot 0. */
static void plan_input_dropout(dn_plan *p, const dn_spec *s, dn_value *cur) {
    dn_op *op = new_op(p, DN_OP_DROPOUT, NULL, 0, cur);
    op->act = LINEAR_ACT;
    op->drop = drop_of(s->input_dropout);
    op->stochastic = 1;
    op->out = epilogue_value("input", s->input, s->input, LINEAR_ACT, 1, 1);
    op->out.shape = s->input_shape;
    snprintf(op->out.a, sizeof op->out.a, "bt->x"); /* h beside the input itself */
    snprintf(op->out.deriv_in, sizeof op->out.deriv_in, "bt->x");
    snprintf(op->out.eval, sizeof op->out.eval, "(mc ? bf.input_h : bt->x)");
    op->out.d[0] = '\0';
    *cur = op->out;
}

/* An op of layer L whose batch norm follows: it leaves z, the product plus
 * bias, in bf.<L>_z, without activation, noise or dropout. */
static void set_product_only(dn_op *op, const dn_layer *L) {
    op->product_only = 1;
    op->act = LINEAR_ACT;
    op->drop = drop_of(0);
    snprintf(op->noise_text, sizeof op->noise_text, "0");
    op->out = epilogue_value(L->name, L->units, L->stride, LINEAR_ACT, 0, 0);
    snprintf(op->out.a, sizeof op->out.a, "bf.%s_z", L->name);
    snprintf(op->out.deriv_in, sizeof op->out.deriv_in, "bf.%s_z", L->name);
    snprintf(op->out.train, sizeof op->out.train, "bf.%s_z", L->name);
    snprintf(op->out.eval, sizeof op->out.eval, "bf.%s_z", L->name);
}

/* Layer k's dense product, and its epilogue unless batch norm follows. */
static void plan_dense(dn_plan *p, const dn_spec *s, int k, dn_value *cur) {
    const dn_layer *L = &s->layers[k];
    dn_op *op = new_op(p, DN_OP_DENSE, L, k + 1, cur);
    op->w_off = L->w_off;
    op->b_off = L->b_off;
    op->panels = L->stride / DN_PANEL;
    op->fwd = op->bw = op->bx = DENSE_TILES;
    op->own_backward_x = !reads_input(cur); /* a flatten may come first */
    if (L->batchnorm)
        set_product_only(op, L);
    else {
        set_epilogue(op, s, k);
        op->out = epilogue_value(L->name, L->units, L->stride, op->act, op->stochastic, L->dropout > 0);
    }
    *cur = op->out;
}

/* Layer k's batch norm after its product: normalization and the epilogue. */
static void plan_batchnorm(dn_plan *p, const dn_spec *s, int k, dn_value *cur) {
    const dn_layer *L = &s->layers[k];
    dn_op *op = new_op(p, DN_OP_BATCHNORM, L, k + 1, cur);
    set_epilogue(op, s, k);
    op->out = epilogue_value(L->name, L->units, L->stride, op->act, op->stochastic, L->dropout > 0);
    op->out.shape = L->out_shape;
    op->bn_features = dn_bn_features(L);
    op->bn_plane = L->type == DN_LAYER_CONV2D ? L->out_shape.h * L->out_shape.w : 1;
    op->bn_width = dn_bn_stride(L);
    if (L->type == DN_LAYER_CONV2D) { /* BatchNorm2d: the epilogue works on planes, as conv2d's */
        op->drop_channel = L->dropout_channel;
        op->plane4 = dn_round_up(op->bn_plane, 4);
    }
    op->g_off = L->g_off;
    op->beta_off = L->beta_off;
    op->rm_off = L->rm_off;
    op->rv_off = L->rv_off;
    snprintf(op->z, sizeof op->z, "bf.%s_z", L->name);
    snprintf(op->stats, sizeof op->stats, "bf.%s_stats", L->name);
    snprintf(op->red, sizeof op->red, "(double *)bf.%s_red", L->name);
    snprintf(op->bn_eps_double, sizeof op->bn_eps_double, "%.17g", L->bn_eps);
    if (!strpbrk(op->bn_eps_double, ".en")) strcat(op->bn_eps_double, ".0");
    dn_float_literal(op->bn_eps_float, sizeof op->bn_eps_float, (float)L->bn_eps);
    dn_float_literal(op->bn_momentum, sizeof op->bn_momentum, (float)L->bn_momentum);
    dn_format_rate(op->bn_momentum_text, sizeof op->bn_momentum_text, L->bn_momentum);
    dn_format_rate(op->bn_eps_text, sizeof op->bn_eps_text, L->bn_eps);
    *cur = op->out;
}

/* Layer k's convolution: in.shape [C, H, W] to out.shape [F, HO, WO], rows
 * of F * HO * WO floats rounded up to 8 (the padding zero). */
static void plan_conv(dn_plan *p, const dn_spec *s, int k, dn_value *cur) {
    const dn_layer *L = &s->layers[k];
    dn_op *op = new_op(p, DN_OP_CONV2D, L, k + 1, cur);
    if (L->batchnorm)
        set_product_only(op, L);
    else {
        set_epilogue(op, s, k);
        op->out = epilogue_value(L->name, L->units, L->stride, op->act, op->stochastic, L->dropout > 0);
        op->drop_channel = L->dropout_channel;
    }
    op->out.shape = L->out_shape;
    op->kh = L->kh, op->kw = L->kw, op->sh = L->sh, op->sw = L->sw;
    op->pad_top = L->pad_top, op->pad_left = L->pad_left;
    op->pad_bottom = L->pad_bottom, op->pad_right = L->pad_right;
    op->plane4 = dn_round_up(L->out_shape.h * L->out_shape.w, 4);
    /* The kernels (emit/conv.c): register tiles where nothing is padded and
     * output columns are adjacent in the input (stride 1) and at least one
     * vector wide; vectors along columns wherever the stride is 1. Measured
     * on cnn.yaml, one thread, 20 training steps and an eval of 10000
     * images (forward-heavy): 13.9 s with the plain forward, 8.2 s tiled;
     * the weight gradient took 10.3 s of a run scalar, 1.0 s vectorized. */
    op->conv_rows_vec = L->sw == 1;
    op->conv_tiled = L->sw == 1 && L->pad_top == 0 && L->pad_left == 0 && L->pad_bottom == 0 &&
                     L->pad_right == 0 && L->out_shape.w >= 8;
    op->w_off = L->w_off;
    op->b_off = L->b_off;
    op->own_backward_x = !reads_input(cur); /* a flatten may come first */
    *cur = op->out;
}

/* Layer k's pooling, max or average, then dropout. */
static void plan_pool(dn_plan *p, const dn_spec *s, int k, dn_value *cur) {
    const dn_layer *L = &s->layers[k];
    dn_op *op = new_op(p, DN_OP_POOL2D, L, k + 1, cur);
    set_epilogue(op, s, k);
    op->out = epilogue_value(L->name, L->units, L->stride, LINEAR_ACT, op->stochastic, L->dropout > 0);
    op->out.shape = L->out_shape;
    op->kh = L->kh, op->kw = L->kw, op->sh = L->sh, op->sw = L->sw;
    op->pool_max = L->type == DN_LAYER_MAXPOOL2D;
    op->drop_channel = L->dropout_channel;
    op->plane4 = dn_round_up(L->out_shape.h * L->out_shape.w, 4);
    if (op->pool_max) snprintf(op->arg, sizeof op->arg, "(int32_t *)bf.%s_arg", L->name);
    op->own_backward_x = !reads_input(cur); /* a flatten may come first */
    *cur = op->out;
}

/* A flatten has no op: the rows already hold C, H, W in PyTorch's order. */
static void plan_flatten(dn_value *cur) {
    cur->shape = (dn_shape){1, cur->width, 1, 1};
}

/* ---- cost -------------------------------------------------------------------- */

/* Parameters and FLOP per sample of each op (multiply-add = 2 FLOP). The
 * backward pass is about twice the forward where there are weights (the
 * weight and input gradients), once where there are none. */
static void plan_costs(dn_plan *p) {
    for (int i = 0; i < p->n_ops; i++) {
        dn_op *op = &p->ops[i];
        const dn_shape in = op->in.shape, out = op->out.shape;
        double fwd = 0, wgrad = 0;
        switch (op->kind) {
        case DN_OP_DENSE:
            op->params = (size_t)op->in.width * (size_t)op->out.width + (size_t)op->out.width;
            fwd = 2.0 * op->in.width * op->out.width;
            wgrad = fwd;
            break;
        case DN_OP_CONV2D:
            op->params = (size_t)out.c * ((size_t)in.c * (size_t)(op->kh * op->kw) + 1);
            fwd = 2.0 * out.c * out.h * out.w * in.c * op->kh * op->kw;
            wgrad = fwd;
            break;
        case DN_OP_BATCHNORM:
            op->params = 2 * (size_t)op->bn_features;
            fwd = 4.0 * op->out.width;
            wgrad = fwd;
            break;
        case DN_OP_POOL2D:
            fwd = (double)out.c * out.h * out.w * op->kh * op->kw;
            break;
        case DN_OP_DROPOUT:
        case DN_OP_KIND_COUNT:
            fwd = op->out.width;
            break;
        }
        op->flops_fwd = fwd;
        op->flops_bwd = wgrad + (op->own_backward_x || op->head || op->kind == DN_OP_BATCHNORM ? fwd : 0.0);
    }
}

/* ---- kernel choices ------------------------------------------------------------ */

/* The fused training head: a last dense layer after another one, without
 * batch norm, dropout or noise, whose units fit one forward tile (both
 * shapes) and whose W^T fits a thread's stack. */
static void plan_head(dn_plan *p, const dn_spec *s) {
    dn_op *last = &p->ops[p->n_ops - 1];
    const dn_layer *L = &s->layers[s->n_layers - 1];
    p->head_wt_floats = (size_t)(L->in + 7) / 8 * (size_t)L->stride * 8;
    p->fused_head = !reads_input(&last->in) && last->kind == DN_OP_DENSE && !last->stochastic &&
                    last->panels <= last->fwd.narrow.b && last->panels <= last->fwd.wide.b &&
                    p->head_wt_floats <= HEAD_WT_MAX;
    if (p->fused_head) {
        last->head = 1;
        last->own_backward_x = 0;
    }
}

/* Floats of the W^T scratch: the largest dense op with its own input
 * gradient, its inputs and units rounded up to vectors of 8. */
static size_t plan_wt_floats(const dn_plan *p) {
    size_t most = 0;
    for (int i = 0; i < p->n_ops; i++) {
        const dn_op *op = &p->ops[i];
        if (op->kind != DN_OP_DENSE || !op->own_backward_x) continue;
        size_t f = (size_t)op->in.stride * (size_t)op->out.stride;
        most = f > most ? f : most;
    }
    return most;
}

/* ---- buffers and tensors ----------------------------------------------------------- */

static void add_buf(dn_plan *p, int per_row, size_t floats, const char *comment, const char *fmt, const char *name) {
    dn_plan_buf *b = &p->bufs[p->n_bufs++];
    snprintf(b->name, sizeof b->name, fmt, name);
    b->per_row = per_row;
    b->floats = floats;
    snprintf(b->comment, sizeof b->comment, "%s", comment);
}

/* The buffers of spec layer L (its ops' outputs, in one group). */
static void plan_layer_bufs(dn_plan *p, const dn_layer *L) {
    char c[160];
    if (L->type == DN_LAYER_FLATTEN) return;
    snprintf(c, sizeof c, "[n, %d] activation", L->stride);
    add_buf(p, 1, (size_t)L->stride, c, "%s_a", L->name);
    if (L->dropout > 0) {
        snprintf(c, sizeof c, "[n, %d] dropout scale", L->stride);
        add_buf(p, 1, (size_t)L->stride, c, "%s_mask", L->name);
    }
    if (L->dropout > 0 || L->noise > 0) {
        snprintf(c, sizeof c, "[n, %d] output in training", L->stride);
        add_buf(p, 1, (size_t)L->stride, c, "%s_h", L->name);
    }
    snprintf(c, sizeof c, "[n, %d] gradient wrt the pre-activation (zero past %d)", L->stride, L->units);
    add_buf(p, 1, (size_t)L->stride, c, "%s_d", L->name);
    if (act_of(p->spec, L, 0).from_pre) {
        snprintf(c, sizeof c, "[n, %d] pre-activation, in training (%s's derivative reads it)", L->stride,
                 dn_act_name(L->act));
        add_buf(p, 1, (size_t)L->stride, c, "%s_pre", L->name);
    }
    if (L->batchnorm) {
        snprintf(c, sizeof c, "[n, %d] %s, the input of batch norm", L->stride,
                 L->type == DN_LAYER_CONV2D ? "conv(x, W) + b" : "x W^T + b");
        add_buf(p, 1, (size_t)L->stride, c, "%s_z", L->name);
        snprintf(c, sizeof c, "[5][%d] batch norm: mean, 1/std, alpha, shift, unbiased var%s", dn_bn_stride(L),
                 L->type == DN_LAYER_CONV2D ? " per channel" : "");
        add_buf(p, 0, 5 * (size_t)dn_bn_stride(L), c, "%s_stats", L->name);
        add_buf(p, 0, 4 * (size_t)dn_bn_stride(L), "[2][features] sums in double (batch norm)", "%s_red", L->name);
    }
    if (L->type == DN_LAYER_MAXPOOL2D) {
        snprintf(c, sizeof c, "[n, %d] int32: max pool's argmax in its input plane", L->stride);
        add_buf(p, 1, (size_t)L->stride, c, "%s_arg", L->name);
    }
}

static void plan_bufs(dn_plan *p, const dn_spec *s) {
    char c[160];
    if (s->input_dropout > 0) {
        snprintf(c, sizeof c, "[n, %d] input dropout", s->input);
        add_buf(p, 1, (size_t)s->input, c, "%smask", "input_");
        add_buf(p, 1, (size_t)s->input, c, "%sh", "input_");
    }
    for (int k = 0; k < s->n_layers; k++) plan_layer_bufs(p, &s->layers[k]);
    add_buf(p, 1, 1, "[n] per-row loss", "%s", "rowloss");
    add_buf(p, 1, 1, "[n] argmax hit", "%s", "hits");
    if (p->wt_floats) {
        snprintf(c, sizeof c, "[%zu] scratch: one layer's W^T for its input gradient", p->wt_floats);
        add_buf(p, 0, p->wt_floats, c, "%s", "wt");
    }
}

static void plan_tensors(dn_plan *p, const dn_spec *s) {
    for (int k = 0; k < s->n_layers; k++) {
        dn_plan_tensor t[DN_LAYER_TENSORS];
        int n = dn_layer_tensors(&s->layers[k], t);
        for (int j = 0; j < n; j++) {
            dn_plan_tensor *pt = &p->tensors[p->n_tensors++];
            pt->info = t[j].info;
            memcpy(pt->name, t[j].name, sizeof pt->name);
            pt->info.name = pt->name;
        }
    }
}

/* Cross-entropy's label smoothing e over the K outputs: the target of
 * the label is 1 - e + e / K, of every other class e / K. */
static void plan_smoothing(dn_plan *p, const dn_spec *s) {
    const double e = s->train.label_smoothing;
    p->smoothing = s->train.loss == DN_LOSS_CROSS_ENTROPY && e > 0;
    if (!p->smoothing) return;
    dn_float_literal(p->smooth_keep, sizeof p->smooth_keep, (float)(1.0 - e));
    dn_float_literal(p->smooth_each, sizeof p->smooth_each, (float)(e / s->layers[s->n_layers - 1].units));
}

void dn_plan_build(const dn_spec *s, dn_plan *p) {
    memset(p, 0, sizeof *p);
    p->spec = s;
    p->name = s->name;
    dn_value cur = input_value(s);
    if (s->input_dropout > 0) plan_input_dropout(p, s, &cur);
    for (int k = 0; k < s->n_layers; k++) {
        switch (s->layers[k].type) {
        case DN_LAYER_CONV2D:
            plan_conv(p, s, k, &cur);
            if (s->layers[k].batchnorm) plan_batchnorm(p, s, k, &cur);
            break;
        case DN_LAYER_MAXPOOL2D:
        case DN_LAYER_AVGPOOL2D: plan_pool(p, s, k, &cur); break;
        case DN_LAYER_FLATTEN: plan_flatten(&cur); break;
        case DN_LAYER_DENSE:
        case DN_LAYER_TYPE_COUNT:
            plan_dense(p, s, k, &cur);
            if (s->layers[k].batchnorm) plan_batchnorm(p, s, k, &cur);
            break;
        }
    }
    p->last = &p->ops[p->n_ops - 1];
    for (int i = 0; i < p->n_ops; i++) p->randomized |= p->ops[i].stochastic;
    plan_head(p, s);
    p->adam = s->train.opt.type == DN_OPT_ADAM || s->train.opt.type == DN_OPT_ADAMW;
    p->fused_adam = p->adam && !(s->train.clip_grad_norm > 0);
    plan_smoothing(p, s);
    p->wt_floats = plan_wt_floats(p);
    plan_bufs(p, s);
    plan_tensors(p, s);
    plan_costs(p);
    for (int i = 0; i < p->n_bufs; i++) {
        if (p->bufs[i].per_row)
            p->workspace_floats_per_row += p->bufs[i].floats;
        else
            p->workspace_floats_fixed += p->bufs[i].floats;
    }
}
