/* dense.c - the dense kind: y = act(x W^T + b), then noise and dropout, with
 * every size a literal constant (or, before batch norm, z = x W^T + b only).
 *
 * A layer's weights live in panels of DN_PANEL (8) units, each input-major
 * (spec.h), and its buffers have rows of `stride` floats, so that one 8-float
 * vector holds 8 consecutive units everywhere (with AVX-512, one 16-float
 * vector holds two panels' 8: the plan's wide tiles). For an op (fan-in I,
 * units O in NP panels) three kernels are written, each an orphaned
 * `#pragma omp for nowait` that the model's single parallel region calls;
 * forward and backward_x end in dn_sync(), the prelude's team barrier:
 *
 *   forward     a = act(x W^T + b), then in training h = a * mask (inverted
 *               dropout). Register tiles of rows x panels, a broadcast outer
 *               product: per input i, one x scalar per row times one weight
 *               vector per panel. Each output sums over i in input order.
 *   backward_w  dW = d^T x, db = sum over rows of d; with Adam fused in, each
 *               tile of gradients is applied to its weights at once. Tiles of
 *               inputs x panels, an outer product over rows: every element
 *               sums over rows in row order.
 *   backward_x  d_prev = (d W) * mask_prev * act'(a_prev), when the plan gives
 *               the op its own input gradient. A task is a column of input
 *               vectors: it transposes W for those inputs into blocks of 8 (a
 *               scratch buffer of the workspace), then runs another broadcast
 *               outer product down the column, tiles of rows x input vectors:
 *               every element sums over units in unit order.
 *
 * For the plan's fused head, the last op's forward, the loss and its
 * backward_x are one kernel in training (<model>_head).
 *
 * Tiles never change an element's order of summation: rows past n are served
 * by clamped pointers and their results dropped, and remainder tiles run the
 * same sums. So every element is the same whatever the batch split, thread
 * count or tile shape (narrow or wide).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kernels.h"
#include "kind.h"
#include "loss.h"

/* ---- forward ---------------------------------------------------------------- */

typedef struct {
    const dn_plan *p;
    const dn_op *op;
    int rows, vp;
} fwd_ctx;

/* A forward tile of c->rows rows x `panels` panels from row r0, panel p0. */
static void emit_fwd_tile(dn_buf *b, int panels, void *vctx) {
    const fwd_ctx *c = vctx;
    const dn_op *L = c->op;
    int in = L->in.width, rows = c->rows;
    dn_buf_line(b, "const float *wp = w + (size_t)p0 * %d;", in * 8);
    dn_emit_clamped_ptrs(b, "x", "x", "r0", "n", rows, L->in.stride);
    dn_emit_accumulators(b, rows, panels, c->vp);
    dn_buf_line(b, "for (int i = 0; i < %d; i++) {", in);
    b->indent++;
    dn_emit_tile_loads(b, panels, c->vp, "w", "wp", "%d + (size_t)i * 8", in * 8);
    dn_emit_splat_fmas(b, rows, panels, c->vp, "w", "x%d[i]");
    b->indent--;
    dn_buf_line(b, "}");
    dn_emit_spill(b, rows, panels, c->vp);
    if (L->product_only) { /* z + bias for the batch norm kernels */
        dn_buf_line(b, "for (int r = 0; r < nr; r++)");
        dn_buf_line(b, "    for (int j = 0; j < %d; j++) {", panels);
        dn_buf_line(b, "        const int u = (p0 + j) * 8;");
        dn_buf_line(b, "        dn_store8(out + (size_t)(r0 + r) * %d + u, dn_load8(&z[r][8 * j]) + dn_load8(bias + u));",
                    L->out.stride);
        dn_buf_line(b, "    }");
        return;
    }
    if (L->drop.p > 0) dn_emit_dropout_block(b, L, rows, 8 * panels, "p0 * 8");
    dn_buf_line(b, "for (int r = 0; r < nr; r++)");
    dn_buf_line(b, "    for (int j = 0; j < %d; j++)", panels);
    dn_buf_line(b, "        %s_%s_finish(&z[r][8 * j], (size_t)(r0 + r), (p0 + j) * 8, bias, a%s%s%s);", c->p->name,
                L->name, L->act.from_pre ? ", pre" : "", L->drop.p > 0 ? ", mask, &mk[r][8 * j]" : "",
                L->stochastic ? ", h, seed, step" : "");
}

/* The task loop of the forward kernel with tiles of shape t. */
static void emit_fwd_body(dn_buf *b, const dn_plan *p, const dn_op *L, dn_tile t) {
    int np = L->panels, cblocks = (np + t.b - 1) / t.b;
    dn_buf_line(b, "const int row_blocks = (n + %d) / %d;", t.a - 1, t.a);
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int t = 0; t < %d * row_blocks; t++) {", cblocks);
    b->indent++;
    dn_buf_line(b, "const int p0 = (t / row_blocks) * %d, r0 = (t %% row_blocks) * %d;", t.b, t.a);
    dn_buf_line(b, "const int nr = n - r0 < %d ? n - r0 : %d;", t.a, t.a);
    fwd_ctx c = {p, L, t.a, t.vp};
    dn_emit_split(b, "p0", np, t.b, emit_fwd_tile, &c);
    b->indent--;
    dn_buf_line(b, "}");
}

static void emit_forward(dn_buf *b, const dn_plan *p, const dn_op *L) {
    int in = L->in.width, out = L->out.width, stoch = L->stochastic;
    if (L->product_only) /* the product only; the batchnorm op does the rest */
        dn_buf_line(b, "/* Forward product: out = x W^T + b [n, %d] (row stride %d), the input of batch norm.", out,
                    L->out.stride);
    else
        dn_buf_line(b, "/* Forward: a = %s(x W^T + b) [n, %d] (row stride %d).", dn_act_name(L->act.type), out, L->out.stride);
    if (stoch)
        dn_buf_line(b, " * In training h = %s%s%s%s%s%s (pass h = NULL for eval).", L->noise > 0 ? "(a + " : "a",
                    L->noise > 0 ? L->noise_text : "", L->noise > 0 ? " N(0,1))" : "",
                    L->drop.p > 0 ? " * mask, mask = 0 or 1/(1 - " : "", L->drop.p > 0 ? L->drop.rate : "",
                    L->drop.p > 0 ? ") per unit" : "");
    dn_buf_line(b, " * x [n, %d] (row stride %d), w: %d panels of [%d, 8], bias [%d]. */", in, L->in.stride,
                L->panels, in, L->out.stride);
    dn_buf_line(b, "static void %s_%s_forward(const float *restrict x, const float *restrict w,", p->name, L->name);
    if (L->product_only)
        dn_buf_line(b, "        const float *restrict bias, float *restrict out, int n) {");
    else
        dn_buf_line(b, "        const float *restrict bias, float *restrict a,%s%s%s int n%s) {",
                    L->act.from_pre ? " float *restrict pre," : "", L->drop.p > 0 ? " float *restrict mask," : "",
                    stoch ? " float *restrict h," : "", stoch ? ", uint64_t seed, uint64_t step" : "");
    b->indent++;
    dn_buf_line(b, "#if DN_WIDE_TILES");
    emit_fwd_body(b, p, L, L->fwd.wide);
    dn_buf_line(b, "#else");
    emit_fwd_body(b, p, L, L->fwd.narrow);
    dn_buf_line(b, "#endif");
    dn_buf_line(b, "dn_sync();");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

/* ---- backward_w --------------------------------------------------------------- */

typedef struct {
    const dn_plan *p;
    const dn_op *op;
    int adam, panels, inputs, vp;
} bw_ctx;

/* A dW tile of `ni` inputs x c->panels panels from input i0, panel p0. */
static void emit_bw_tile(dn_buf *b, int ni, void *vctx) {
    const bw_ctx *c = vctx;
    const dn_op *L = c->op;
    int panels = c->panels;
    dn_buf_line(b, "const float *dp = d + (size_t)p0 * 8, *xp = x + i0;");
    if (c->adam) {
        /* The next tile's weights and moments, asked for now: this tile's
         * product hides their latency (the wide 784-2048-2048-10 net, whose
         * Adam state comes from memory: 16.7 -> 14.1 ms per step on 1
         * thread, 8.65 -> 7.63 on 2). A line holds two inputs of a panel. */
        dn_buf_line(b, "for (int j = 0; j < %d; j++)", panels);
        dn_buf_line(b, "    for (int i = 0; i < %d && i0 + %d + i < %d; i += 2) {", ni, ni, L->in.width);
        dn_buf_line(b, "        const size_t at = (size_t)(p0 + j) * %d + (size_t)(i0 + %d + i) * 8;", L->in.width * 8, ni);
        dn_buf_line(b, "        dn_prefetch_rw(w + at);");
        dn_buf_line(b, "        dn_prefetch_rw(m + at);");
        dn_buf_line(b, "        dn_prefetch_rw(v + at);");
        dn_buf_line(b, "    }");
    }
    /* the tile's sums over the rows, chunk by chunk, combined in the tree */
    char len[24];
    snprintf(len, sizeof len, "%d", ni * 8 * panels);
    dn_emit_chunks_open(b, "float", "t", dn_tree_depth(c->p->spec->train.batch_size), len);
    dn_emit_accumulators(b, ni, panels, c->vp);
    dn_buf_line(b, "for (int r = c0; r < c1; r++) {");
    b->indent++;
    dn_buf_line(b, "const float *dr = dp + (size_t)r * %d, *xr = xp + (size_t)r * %d;", L->out.stride,
                L->in.stride);
    dn_emit_tile_loads(b, panels, c->vp, "d", "dr", "%d", 8);
    dn_emit_splat_fmas(b, ni, panels, c->vp, "d", "xr[%d]");
    b->indent--;
    dn_buf_line(b, "}");
    dn_emit_tree_push_tile(b, "t", ni, panels, c->vp);
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_line(b, "float zbuf[%d][%d];", ni, 8 * panels);
    dn_buf_line(b, "const float (*z)[%d] = (const float (*)[%d])dn_tree_root(t_pend, t_depth, t_count, &zbuf[0][0], %s);",
                8 * panels, 8 * panels, len);
    /* With 16-float vectors Adam takes inputs in pairs (two inputs of a
     * panel are 16 adjacent floats); the inputs from `single` on one by one.
     * Panel by panel, so that the writes run along one panel at a time:
     * hopping from panel to panel (a stride of in * 8 floats) makes the
     * hardware prefetcher reach into the next thread's panels and take
     * lines it is writing (fc1 of the seed net on 2 threads: 125 -> 108 us). */
    int single = c->adam && c->vp == 2 ? ni / 2 * 2 : 0;
    if (single > 0) {
        dn_buf_line(b, "for (int j = 0; j < %d; j++)", panels);
        dn_buf_line(b, "    for (int i = 0; i < %d; i += 2) {", single);
        dn_buf_line(b, "        const size_t at = (size_t)(p0 + j) * %d + (size_t)(i0 + i) * 8;", L->in.width * 8);
        dn_buf_line(b, "        dn_adam16(w + at, m + at, v + at, &z[i][8 * j], &z[i + 1][8 * j], ac);");
        dn_buf_line(b, "    }");
    }
    if (single == ni) return;
    dn_buf_line(b, "for (int j = 0; j < %d; j++)", panels);
    dn_buf_line(b, "    for (int i = %d; i < %d; i++) {", single, ni);
    dn_buf_line(b, "        const size_t at = (size_t)(p0 + j) * %d + (size_t)(i0 + i) * 8;", L->in.width * 8);
    if (c->adam)
        dn_buf_line(b, "        dn_adam8(w + at, m + at, v + at, &z[i][8 * j], ac);");
    else
        dn_buf_line(b, "        memcpy(dw + at, &z[i][8 * j], sizeof(float) * 8);");
    dn_buf_line(b, "    }");
}

/* The tiles of one column block of c->panels panels: the bias gradient (with
 * the first input block), then the input split. */
static void emit_bw_column(dn_buf *b, int panels, void *vctx) {
    bw_ctx c = *(const bw_ctx *)vctx;
    const dn_op *L = c.op;
    c.panels = panels;
    dn_buf_line(b, "if (i0 == 0)");
    dn_buf_line(b, "    for (int j = 0; j < %d; j++) {", panels);
    dn_buf_line(b, "        const int u = (p0 + j) * 8;");
    b->indent += 2;
    dn_buf_line(b, "float gs[8];");
    dn_emit_chunks_open(b, "float", "s", dn_tree_depth(c.p->spec->train.batch_size), "8");
    dn_buf_line(b, "dn_v8 sum = {0};");
    dn_buf_line(b, "for (int r = c0; r < c1; r++) sum += dn_load8(d + (size_t)r * %d + u);", L->out.stride);
    dn_buf_line(b, "float part[8];");
    dn_buf_line(b, "dn_store8(part, sum);");
    dn_emit_chunks_close(b, "float", "s", "part", "8", "gs");
    if (c.adam)
        dn_buf_line(b, "dn_adam8(bias + u, m + %d + u, v + %d + u, gs, ac);", L->out.stride * L->in.width,
                    L->out.stride * L->in.width);
    else
        dn_buf_line(b, "memcpy(db + u, gs, sizeof gs);");
    b->indent -= 2;
    dn_buf_line(b, "    }");
    dn_buf_line(b, "{");
    b->indent++;
    dn_emit_split(b, "i0", L->in.width, c.inputs, emit_bw_tile, &c);
    b->indent--;
    dn_buf_line(b, "}");
}

/* The task loop of the weight-gradient kernel with tiles of shape t. */
static void emit_bw_body(dn_buf *b, const dn_plan *p, const dn_op *L, int adam, dn_tile t) {
    int np = L->panels, cblocks = (np + t.b - 1) / t.b, iblocks = (L->in.width + t.a - 1) / t.a;
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int t = 0; t < %d; t++) {", cblocks * iblocks);
    b->indent++;
    dn_buf_line(b, "const int p0 = (t / %d) * %d, i0 = (t %% %d) * %d;", iblocks, t.b, iblocks, t.a);
    bw_ctx c = {p, L, adam, 0, t.a, t.vp};
    dn_emit_split(b, "p0", np, t.b, emit_bw_column, &c);
    b->indent--;
    dn_buf_line(b, "}");
}

/* The weight-gradient kernel; with `adam` the variant that applies Adam to
 * each gradient tile instead of storing it. */
static void emit_backward_w(dn_buf *b, const dn_plan *p, const dn_op *L, int adam) {
    int in = L->in.width, out = L->out.width;
    if (adam) {
        dn_buf_line(b, "/* Weight gradients as above, each tile applied at once by Adam to w and bias;");
        dn_buf_line(b, " * m and v hold the moments of w (%d floats) followed by those of bias. */", L->out.stride * in);
        dn_buf_line(b, "static void %s_%s_backward_w_adam(const float *restrict d, const float *restrict x,", p->name,
                    L->name);
        dn_buf_line(b, "        float *restrict w, float *restrict bias, float *restrict m, float *restrict v,");
        dn_buf_line(b, "        const dn_adam_coef *ac, int n) {");
    } else {
        dn_buf_line(b, "/* Weight gradients: dw [%d, %d] = d^T x (in w's panels), db [%d] = column sums of d.", out,
                    in, out);
        dn_buf_line(b, " * d [n, %d] (row stride %d), x [n, %d] (this layer's input). Each element sums", out,
                    L->out.stride, in);
        dn_buf_line(b, " * chunk's rows in order, then the chunks in the tree (DN_CHUNK). */");
        dn_buf_line(b, "static void %s_%s_backward_w(const float *restrict d, const float *restrict x,", p->name,
                    L->name);
        dn_buf_line(b, "        float *restrict dw, float *restrict db, int n) {");
    }
    b->indent++;
    dn_buf_line(b, "#if DN_WIDE_TILES");
    emit_bw_body(b, p, L, adam, L->bw.wide);
    dn_buf_line(b, "#else");
    emit_bw_body(b, p, L, adam, L->bw.narrow);
    dn_buf_line(b, "#endif");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

/* ---- backward_x ---------------------------------------------------------------- */

typedef struct {
    const dn_plan *p;
    const dn_op *op;
    int rows, vp;
} bx_ctx;

/* A tile of c->rows rows x `nv` vectors of 8 inputs from row r0, input
 * vector q0: per unit u, one d scalar per row times one vector of W^T per
 * input vector; then the previous layer's mask and derivative. Lanes past
 * the inputs come out 0 (wt holds zeros there). */
static void emit_bx_tile(dn_buf *b, int nv, void *vctx) {
    const bx_ctx *c = vctx;
    const dn_op *L = c->op;
    const dn_value *prev = &L->in;
    int out = L->out.width, rows = c->rows;
    const char *deriv = dn_act_derivative8(&prev->act);
    dn_buf_line(b, "const float *wq = wt + (size_t)q0 * %d;", L->out.stride * 8);
    dn_emit_clamped_ptrs(b, "d", "d", "r0", "n", rows, L->out.stride);
    dn_emit_accumulators(b, rows, nv, c->vp);
    dn_buf_line(b, "for (int u = 0; u < %d; u++) {", out);
    b->indent++;
    dn_emit_tile_loads(b, nv, c->vp, "w", "wq", "%d + (size_t)u * 8", L->out.stride * 8);
    dn_emit_splat_fmas(b, rows, nv, c->vp, "w", "d%d[u]");
    b->indent--;
    dn_buf_line(b, "}");
    dn_emit_spill(b, rows, nv, c->vp);
    dn_buf_line(b, "for (int r = 0; r < nr; r++)");
    dn_buf_line(b, "    for (int j = 0; j < %d; j++) {", nv);
    b->indent += 2;
    dn_buf_line(b, "const size_t at = (size_t)(r0 + r) * %d + (size_t)(q0 + j) * 8;", prev->stride);
    dn_buf_line(b, "dn_v8 s = dn_load8(&z[r][8 * j]);");
    if (deriv) dn_emit_derivative8_input(b, &prev->act, "a_prev + at");
    if (prev->has_mask) dn_buf_line(b, "const dn_v8 mv = dn_load8(mask_prev + at);");
    if (deriv || prev->has_mask)
        dn_buf_line(b, "s = s * (%s%s%s);", prev->has_mask ? "mv" : "", prev->has_mask && deriv ? " * " : "",
                    deriv ? deriv : "");
    dn_buf_line(b, "dn_store8(dx + at, s);");
    b->indent -= 2;
    dn_buf_line(b, "    }");
}

/* Transposes w's panels into wt for the input vectors [q0, q0 + nq) (q0 a
 * C expression): for each vector q of 8 inputs, the units' rows wt[q][u][0..8)
 * = W[u][8q .. 8q + 8), zero past the inputs (and, as the panels' padding,
 * past the units). Done by the calling thread. */
static void emit_bx_pack(dn_buf *b, const dn_op *L, const char *q0, int nq) {
    int in = L->in.width, full = in / 8, np = L->panels;
    dn_buf_line(b, "for (int e = 0; e < %d; e++) {", nq * np);
    b->indent++;
    if (strcmp(q0, "0") == 0)
        dn_buf_line(b, "const int q = e / %d, p = e %% %d;", np, np);
    else
        dn_buf_line(b, "const int q = %s + e / %d, p = e %% %d;", q0, np, np);
    dn_buf_line(b, "const float *src = w + (size_t)p * %d + (size_t)q * 64;", in * 8);
    dn_buf_line(b, "float *dst = wt + (size_t)q * %d + (size_t)p * 64;", L->out.stride * 8);
    if (in % 8 == 0) {
        dn_buf_line(b, "dn_transpose8x8(src, dst);");
    } else {
        dn_buf_line(b, "if (q < %d) {", full);
        dn_buf_line(b, "    dn_transpose8x8(src, dst);");
        dn_buf_line(b, "} else {");
        dn_buf_line(b, "    for (int j = 0; j < 8; j++)");
        dn_buf_line(b, "        for (int i = 0; i < 8; i++) dst[j * 8 + i] = i < %d ? src[i * 8 + j] : 0.0f;", in % 8);
        dn_buf_line(b, "}");
    }
    b->indent--;
    dn_buf_line(b, "}");
}

typedef struct {
    const dn_plan *p;
    const dn_op *op;
    dn_tile t;
} bx_column_ctx;

/* One task of the input-gradient kernel: the W^T of its `nv` input vectors
 * from q0, then its tiles over all rows. */
static void emit_bx_column(dn_buf *b, int nv, void *vctx) {
    const bx_column_ctx *c = vctx;
    emit_bx_pack(b, c->op, "q0", nv);
    dn_buf_line(b, "for (int r0 = 0; r0 < n; r0 += %d) {", c->t.a);
    b->indent++;
    dn_buf_line(b, "const int nr = n - r0 < %d ? n - r0 : %d;", c->t.a, c->t.a);
    bx_ctx x = {c->p, c->op, c->t.a, c->t.vp};
    emit_bx_tile(b, nv, &x);
    b->indent--;
    dn_buf_line(b, "}");
}

/* The task loop of the input-gradient kernel with tiles of shape t: a task
 * is a column of t.b input vectors, so the W^T a thread packs is the W^T it
 * reads, and no barrier separates the two. */
static void emit_bx_body(dn_buf *b, const dn_plan *p, const dn_op *L, dn_tile t) {
    int nq = (L->in.width + 7) / 8, qblocks = (nq + t.b - 1) / t.b;
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int t = 0; t < %d; t++) {", qblocks);
    b->indent++;
    dn_buf_line(b, "const int q0 = t * %d;", t.b);
    bx_column_ctx c = {p, L, t};
    dn_emit_split(b, "q0", nq, t.b, emit_bx_column, &c);
    b->indent--;
    dn_buf_line(b, "}");
}

static void emit_backward_x(dn_buf *b, const dn_plan *p, const dn_op *L) {
    const dn_value *prev = &L->in;
    int in = L->in.width, out = L->out.width;
    char dv[DN_DERIV_MAX];
    const char *deriv = dn_act_derivative(&prev->act, dv);
    dn_buf_line(b, "/* Input gradient, into %s: d_prev [n, %d] (row stride %d) = (d W)%s%s,", prev->owner, in,
                prev->stride, prev->has_mask ? " * mask_prev" : "", deriv ? " * act'(a_prev)" : "");
    dn_buf_line(b, " * zero past %d. d [n, %d] (row stride %d), w: %d panels of [%d, 8]. Per column of", in, out,
                L->out.stride, L->panels, in);
    dn_buf_line(b, " * input vectors, its W^T into wt (%d vectors of 8 inputs x %d units x 8), then tiles", (in + 7) / 8,
                L->out.stride);
    dn_buf_line(b, " * of rows x input vectors down the column, an outer product over the units: each");
    dn_buf_line(b, " * element sums units in order. */");
    dn_buf_line(b, "static void %s_%s_backward_x(const float *restrict d, const float *restrict w, float *restrict wt,",
                p->name, L->name);
    dn_buf_line(b, "        float *restrict dx, const float *restrict mask_prev, const float *restrict a_prev, int n) {");
    b->indent++;
    if (!prev->has_mask) dn_buf_line(b, "(void)mask_prev;");
    if (!deriv) dn_buf_line(b, "(void)a_prev;");
    dn_buf_line(b, "#if DN_WIDE_TILES");
    emit_bx_body(b, p, L, L->bx.wide);
    dn_buf_line(b, "#else");
    emit_bx_body(b, p, L, L->bx.narrow);
    dn_buf_line(b, "#endif");
    dn_buf_line(b, "dn_sync();");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

/* ---- the fused head of the training step ----------------------------------- */

/* The head's task loop with tiles of shape fwd (rows x panels) and bx (rows
 * x input vectors; the same rows): per block of rows, the forward tile over
 * all the layer's panels, the loss of each row, then the input gradient
 * tiles across all input vectors. */
static void emit_head_body(dn_buf *b, const dn_plan *p, const dn_op *L, dn_tile fwd, dn_tile bx) {
    int nq = (L->in.width + 7) / 8;
    dn_buf_line(b, "const int row_blocks = (n + %d) / %d;", fwd.a - 1, fwd.a);
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int t = 0; t < row_blocks; t++) {");
    b->indent++;
    dn_buf_line(b, "const int r0 = t * %d, nr = n - r0 < %d ? n - r0 : %d;", fwd.a, fwd.a, fwd.a);
    dn_buf_line(b, "{");
    b->indent++;
    dn_buf_line(b, "const int p0 = 0;");
    fwd_ctx fc = {p, L, fwd.a, fwd.vp};
    dn_emit_split(b, "p0", L->panels, fwd.b, emit_fwd_tile, &fc);
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_line(b, "for (int r = r0; r < r0 + nr; r++) {");
    b->indent++;
    dn_buf_line(b, "const float *zr = a + (size_t)r * %d;", L->out.stride);
    dn_emit_loss_row(b, p, 1);
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_line(b, "for (int q0 = 0; q0 < %d; q0 += %d) {", nq, bx.b);
    b->indent++;
    bx_ctx xc = {p, L, bx.a, bx.vp};
    dn_emit_split(b, "q0", nq, bx.b, emit_bx_tile, &xc);
    b->indent--;
    dn_buf_line(b, "}");
    b->indent--;
    dn_buf_line(b, "}");
}

/* The fused head kernel <model>_head (for the op with L->head). */
static void emit_head(dn_buf *b, const dn_plan *p, const dn_op *L) {
    const dn_value *prev = &L->in;
    char dv[DN_DERIV_MAX];
    const char *deriv = dn_act_derivative(&prev->act, dv);
    dn_buf_line(b, "/* ==== training head: %s forward, loss, %s input gradient ==== */", L->name, L->name);
    dn_buf_blank(b);
    dn_buf_line(b, "/* %s_%s_forward, %s_loss (training: y and d set, no output) and", p->name, L->name, p->name);
    dn_buf_line(b, " * %s_%s_backward_x in one kernel: per block of rows a [n, %d], rowloss, hits and", p->name,
                L->name, L->out.width);
    dn_buf_line(b, " * d = dloss/dz [n, %d], then dx [n, %d] = (d W)%s%s. A row's input gradient",
                L->out.width, L->in.width, prev->has_mask ? " * mask_prev" : "", deriv ? " * act'(a_prev)" : "");
    dn_buf_line(b, " * needs only its own d, so there is no barrier between the three; each thread");
    dn_buf_line(b, " * transposes W into its own wt. The sums are those of the three kernels. */");
    dn_buf_line(b, "static void %s_head(const float *restrict x, const float *restrict w, const float *restrict bias,",
                p->name);
    dn_buf_line(b, "        float *restrict a, %s *restrict y, float *restrict d, float *restrict rowloss,",
                dn_loss_y_type(p));
    dn_buf_line(b, "        float *restrict hits, float *restrict dx, const float *restrict mask_prev,");
    dn_buf_line(b, "        const float *restrict a_prev, int n, int n_all) {");
    b->indent++;
    if (!prev->has_mask) dn_buf_line(b, "(void)mask_prev;");
    if (!deriv) dn_buf_line(b, "(void)a_prev;");
    dn_buf_line(b, "_Alignas(64) float wt[%zu];", p->head_wt_floats);
    emit_bx_pack(b, L, "0", (L->in.width + 7) / 8);
    dn_buf_line(b, "const float inv_n = 1.0f / (float)n_all;");
    dn_buf_line(b, "#if DN_WIDE_TILES");
    emit_head_body(b, p, L, L->fwd.wide, L->bx.wide);
    dn_buf_line(b, "#else");
    emit_head_body(b, p, L, L->fwd.narrow, L->bx.narrow);
    dn_buf_line(b, "#endif");
    dn_buf_line(b, "dn_sync();");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

/* ---- the module's interface (kind.h) ------------------------------------------- */

static void dense_describe(dn_buf *b, const dn_plan *p, const dn_op *op) {
    (void)p;
    dn_buf_printf(b, "%-12s dense %6d -> %-6d %-8s", op->name, op->in.width, op->out.width,
                  op->product_only ? "(z)" : dn_act_name(op->act.type));
    if (op->noise > 0) dn_buf_printf(b, " noise %s", op->noise_text);
    if (op->drop.p > 0) dn_buf_printf(b, " dropout %s", op->drop.rate);
}

static void dense_kernels(dn_buf *b, const dn_plan *p, const dn_op *op, int forward_only) {
    dn_buf_line(b, "/* ==== %s: dense %d -> %d, %s%s%s%s%s ==== */", op->name, op->in.width, op->out.width,
                op->product_only ? "the product before batch norm" : dn_act_name(op->act.type),
                op->noise > 0 ? ", noise " : "", op->noise > 0 ? op->noise_text : "",
                op->drop.p > 0 ? ", dropout " : "", op->drop.p > 0 ? op->drop.rate : "");
    dn_buf_blank(b);
    if (!op->product_only) {
        dn_emit_act_functions(b, &op->act, forward_only);
        dn_emit_finish(b, p, op);
    }
    emit_forward(b, p, op);
    if (forward_only) return;
    emit_backward_w(b, p, op, 0);
    if (p->fused_adam) emit_backward_w(b, p, op, 1);
    if (op->own_backward_x) emit_backward_x(b, p, op);
    if (op->head) emit_head(b, p, op);
}

/* In training, the fused head computes this op, the loss and op->in.d. */
static void dense_head_call(dn_buf *b, const dn_plan *p, const dn_op *op) {
    dn_buf_line(b, "%s_head(%s, params + %zu, params + %zu, %s, %s, %s, bf.rowloss, bf.hits,", p->name,
                op->in.train, op->w_off, op->b_off, op->out.a, dn_loss_y_field(p), op->out.d);
    dn_buf_line(b, "        %s, %s, %s, n, n_all);", op->in.d, op->in.mask, op->in.deriv_in);
}

static void dense_forward(dn_buf *b, const dn_plan *p, const dn_op *op, int train) {
    const char *in = train ? op->in.train : op->in.eval;
    if (train && op->head) {
        dense_head_call(b, p, op);
        return;
    }
    if (op->product_only) {
        dn_buf_line(b, "%s_%s_forward(%s, params + %zu, params + %zu, %s, n);", p->name, op->name, in, op->w_off,
                    op->b_off, op->out.a);
        return;
    }
    char extra[4 * DN_EXPR_MAX];
    dn_epilogue_args(extra, sizeof extra, op, train);
    dn_buf_line(b, "%s_%s_forward(%s, params + %zu, params + %zu, %s,", p->name, op->name, in, op->w_off, op->b_off,
                op->out.a);
    dn_buf_line(b, "        %s);", extra + 1);
}

static void dense_backward_x_call(dn_buf *b, const dn_plan *p, const dn_op *op) {
    dn_buf_line(b, "%s_%s_backward_x(%s, params + %zu, bf.wt, %s, %s, %s, n);", p->name, op->name, op->out.d,
                op->w_off, op->in.d, op->in.mask, op->in.deriv_in);
}

static void dense_backward(dn_buf *b, const dn_plan *p, const dn_op *op) {
    dn_buf_line(b, "%s_%s_backward_w(%s, %s, grads + %zu, grads + %zu, n);", p->name, op->name, op->out.d,
                op->in.train, op->w_off, op->b_off);
    if (op->own_backward_x) dense_backward_x_call(b, p, op);
}

static void dense_backward_adam(dn_buf *b, const dn_plan *p, const dn_op *op) {
    if (op->own_backward_x) dense_backward_x_call(b, p, op);
    dn_buf_line(b, "%s_%s_backward_w_adam(%s, %s, params + %zu, params + %zu, m + %zu, v + %zu, ac, n);", p->name,
                op->name, op->out.d, op->in.train, op->w_off, op->b_off, op->w_off, op->w_off);
}

const dn_kind dn_kind_dense = {
    .name = "dense",
    .describe = dense_describe,
    .kernels = dense_kernels,
    .forward = dense_forward,
    .backward = dense_backward,
    .backward_adam = dense_backward_adam,
};
