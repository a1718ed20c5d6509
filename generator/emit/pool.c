/* pool.c - the pool2d kind: max or average pooling over windows of the
 * input planes (PyTorch's MaxPool2d / AvgPool2d, no padding, floor mode),
 * then dropout of elements or whole channels.
 *
 *   forward     one task per (sample, channel): each output the max (the
 *               first of equal values, as PyTorch; its position kept for
 *               backward) or the mean of its window, then dropout.
 *   backward_x  one task per (sample, channel): each output's gradient goes
 *               back to its argmax, or spread evenly over its window, in
 *               output order; then the previous op's dropout scale and
 *               activation derivative.
 *
 * No parameters, so no weight gradient.
 */
#include <stdio.h>

#include "kernels.h"
#include "kind.h"

/* Max pooling of the plane at xc into s (and arg), 8 outputs at a time in
 * plane order: each lane starts at its window's first input and walks the
 * window row by row, taking a value that is larger or NaN (the scalar rule
 * `x > best || x != x`: the first of equal values, the last NaN, as
 * PyTorch), with vector compares and blends instead of branches that a
 * random plane makes mispredict. The lanes' window origins are constants
 * (org); the lanes past the plane's end read its first input, unused. */
static void emit_max_lanes(dn_buf *b, const dn_op *op) {
    const dn_shape in = op->in.shape, out = op->out.shape;
    const int plane = out.h * out.w, padded = (plane + 7) / 8 * 8;
    dn_buf_line(b, "static const int32_t org[%d] = { /* each output's window origin in the input plane */", padded);
    for (int o = 0; o < padded; o++) {
        const int org = o < plane ? (o / out.w) * op->sh * in.w + (o % out.w) * op->sw : 0;
        if (o % 12 == 0) dn_buf_printf(b, "%*s", 4 * (b->indent + 1), "");
        dn_buf_printf(b, "%d,%s", org, o % 12 == 11 || o + 1 == padded ? "\n" : " ");
    }
    dn_buf_line(b, "};");
    dn_buf_line(b, "float s[%d];", padded);
    dn_buf_line(b, "int32_t *ar = arg ? arg + (size_t)r * %d + (size_t)c * %d : NULL;", op->out.stride, plane);
    dn_buf_line(b, "for (int o0 = 0; o0 < %d; o0 += 8) {", padded);
    b->indent++;
    dn_buf_line(b, "dn_v8i at0, bi;");
    dn_buf_line(b, "memcpy(&at0, org + o0, sizeof at0);");
    dn_buf_line(b, "float t[8];");
    dn_buf_line(b, "for (int l = 0; l < 8; l++) t[l] = xc[org[o0 + l]];");
    dn_buf_line(b, "dn_v8 bv = dn_load8(t);");
    dn_buf_line(b, "bi = at0;");
    dn_buf_line(b, "for (int ky = 0; ky < %d; ky++)", op->kh);
    dn_buf_line(b, "    for (int kx = 0; kx < %d; kx++) {", op->kw);
    dn_buf_line(b, "        const int k = ky * %d + kx;", in.w);
    dn_buf_line(b, "        for (int l = 0; l < 8; l++) t[l] = xc[org[o0 + l] + k];");
    dn_buf_line(b, "        const dn_v8 v = dn_load8(t);");
    dn_buf_line(b, "        const dn_v8i take = (v > bv) | (v != v); /* NaN wins, as in PyTorch */");
    dn_buf_line(b, "        bv = (dn_v8)(((dn_v8i)v & take) | ((dn_v8i)bv & ~take));");
    dn_buf_line(b, "        bi = ((at0 + k) & take) | (bi & ~take);");
    dn_buf_line(b, "    }");
    dn_buf_line(b, "dn_store8(s + o0, bv);");
    dn_buf_line(b, "if (ar) {");
    dn_buf_line(b, "    int32_t q[8];");
    dn_buf_line(b, "    memcpy(q, &bi, sizeof q);");
    dn_buf_line(b, "    for (int l = 0; l < 8 && o0 + l < %d; l++) ar[o0 + l] = q[l];", plane);
    dn_buf_line(b, "}");
    b->indent--;
    dn_buf_line(b, "}");
}

/* Average pooling of the plane at xc into s: each output the mean of its
 * window, summed row by row. */
static void emit_avg_window(dn_buf *b, const dn_op *op) {
    const dn_shape in = op->in.shape, out = op->out.shape;
    dn_buf_line(b, "float s[%d];", out.h * out.w);
    dn_buf_line(b, "for (int oy = 0; oy < %d; oy++)", out.h);
    dn_buf_line(b, "    for (int ox = 0; ox < %d; ox++) {", out.w);
    b->indent += 2;
    dn_buf_line(b, "const int y0 = oy * %d, x0 = ox * %d;", op->sh, op->sw);
    dn_buf_line(b, "float sum = 0.0f;");
    dn_buf_line(b, "for (int ky = 0; ky < %d; ky++)", op->kh);
    dn_buf_line(b, "    for (int kx = 0; kx < %d; kx++) sum += xc[(y0 + ky) * %d + x0 + kx];", op->kw, in.w);
    dn_buf_line(b, "s[oy * %d + ox] = sum / %d.0f;", out.w, op->kh * op->kw);
    b->indent -= 2;
    dn_buf_line(b, "    }");
}

static void emit_forward(dn_buf *b, const dn_plan *p, const dn_op *op) {
    const dn_shape in = op->in.shape, out = op->out.shape;
    const char *what = op->pool_max ? "max" : "average";
    dn_buf_line(b, "/* Forward: %s pooling [n, %d, %d, %d] -> a [n, %d, %d, %d] (row stride %d), window %dx%d,",
                what, in.c, in.h, in.w, out.c, out.h, out.w, op->out.stride, op->kh, op->kw);
    dn_buf_line(b, " * stride %dx%d%s%s. */", op->sh, op->sw, op->pool_max ? "; arg: each max's position in its plane" : "",
                op->drop.p > 0 ? "; in training h = a * mask" : "");
    dn_buf_line(b, "static void %s_%s_forward(const float *restrict x,%s float *restrict a,%s%s int n%s) {", p->name,
                op->name, op->pool_max ? " int32_t *restrict arg," : "", op->drop.p > 0 ? " float *restrict mask," : "",
                op->stochastic ? " float *restrict h," : "", op->stochastic ? ", uint64_t seed, uint64_t step" : "");
    b->indent++;
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int t = 0; t < n * %d; t++) {", out.c);
    b->indent++;
    dn_buf_line(b, "const int r = t / %d, c = t %% %d;", out.c, out.c);
    dn_buf_line(b, "const float *xc = x + (size_t)r * %d + (size_t)c * %d;", op->in.stride, in.h * in.w);
    if (op->pool_max)
        emit_max_lanes(b, op);
    else
        emit_avg_window(b, op);
    dn_emit_plane_epilogue(b, op, "s", NULL);
    dn_emit_row_padding(b, op, "c == 0");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_line(b, "dn_sync();");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

static void emit_backward_x(dn_buf *b, const dn_plan *p, const dn_op *op) {
    const dn_shape in = op->in.shape, out = op->out.shape;
    const int iplane = in.h * in.w, oplane = out.h * out.w;
    char dv[DN_DERIV_MAX];
    const char *deriv = dn_act_derivative(&op->in.act, dv);
    dn_buf_line(b, "/* Input gradient, into %s: d_prev [n, %d, %d, %d] (row stride %d) = d routed back to %s%s%s. */",
                op->in.owner, in.c, in.h, in.w, op->in.stride, op->pool_max ? "each max" : "each window",
                op->in.has_mask ? " * mask_prev" : "", deriv ? " * act'(a_prev)" : "");
    dn_buf_line(b, "static void %s_%s_backward_x(const float *restrict d,%s float *restrict dx,", p->name, op->name,
                op->pool_max ? " const int32_t *restrict arg," : "");
    dn_buf_line(b, "        const float *restrict mask_prev, const float *restrict a_prev, int n) {");
    b->indent++;
    if (!op->in.has_mask) dn_buf_line(b, "(void)mask_prev;");
    if (!deriv) dn_buf_line(b, "(void)a_prev;");
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int t = 0; t < n * %d; t++) {", in.c);
    b->indent++;
    dn_buf_line(b, "const int r = t / %d, c = t %% %d;", in.c, in.c);
    dn_buf_line(b, "const float *dr = d + (size_t)r * %d + (size_t)c * %d;", op->out.stride, oplane);
    dn_buf_line(b, "float s[%d] = {0};", iplane);
    if (op->pool_max) {
        dn_buf_line(b, "const int32_t *ar = arg + (size_t)r * %d + (size_t)c * %d;", op->out.stride, oplane);
        dn_buf_line(b, "for (int o = 0; o < %d; o++) s[ar[o]] += dr[o];", oplane);
    } else {
        dn_buf_line(b, "for (int oy = 0; oy < %d; oy++)", out.h);
        dn_buf_line(b, "    for (int ox = 0; ox < %d; ox++) {", out.w);
        dn_buf_line(b, "        const float g = dr[oy * %d + ox] / %d.0f;", out.w, op->kh * op->kw);
        dn_buf_line(b, "        for (int ky = 0; ky < %d; ky++)", op->kh);
        dn_buf_line(b, "            for (int kx = 0; kx < %d; kx++) s[(oy * %d + ky) * %d + ox * %d + kx] += g;",
                    op->kw, op->sh, in.w, op->sw);
        dn_buf_line(b, "    }");
    }
    dn_emit_dx_plane(b, op, "c");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_line(b, "dn_sync();");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

/* ---- the module's interface (kind.h) ------------------------------------------- */

static void pool_describe(dn_buf *b, const dn_plan *p, const dn_op *op) {
    (void)p;
    const dn_shape i = op->in.shape, o = op->out.shape;
    dn_buf_printf(b, "%-12s %s %dx%dx%d -> %dx%dx%d, window %dx%d stride %dx%d", op->name,
                  op->pool_max ? "maxpool2d" : "avgpool2d", i.c, i.h, i.w, o.c, o.h, o.w, op->kh, op->kw, op->sh,
                  op->sw);
    if (op->drop.p > 0) dn_buf_printf(b, " dropout %s%s", op->drop.rate, op->drop_channel ? " (channels)" : "");
}

static void pool_kernels(dn_buf *b, const dn_plan *p, const dn_op *op, int forward_only) {
    const dn_shape i = op->in.shape, o = op->out.shape;
    dn_buf_line(b, "/* ==== %s: %s pooling [%d, %d, %d] -> [%d, %d, %d]%s%s%s ==== */", op->name,
                op->pool_max ? "max" : "average", i.c, i.h, i.w, o.c, o.h, o.w, op->drop.p > 0 ? ", dropout " : "",
                op->drop.p > 0 ? op->drop.rate : "", op->drop.p > 0 && op->drop_channel ? " per channel" : "");
    dn_buf_blank(b);
    emit_forward(b, p, op);
    if (!forward_only && op->own_backward_x) emit_backward_x(b, p, op);
}

static void pool_forward(dn_buf *b, const dn_plan *p, const dn_op *op, int train) {
    char extra[4 * DN_EXPR_MAX], arg[DN_EXPR_MAX + 8] = "";
    dn_epilogue_args(extra, sizeof extra, op, train);
    if (op->pool_max) snprintf(arg, sizeof arg, " %s,", train ? op->arg : "NULL");
    dn_buf_line(b, "%s_%s_forward(%s,%s %s,%s);", p->name, op->name, train ? op->in.train : op->in.eval, arg,
                op->out.a, extra);
}

static void pool_backward(dn_buf *b, const dn_plan *p, const dn_op *op) {
    char arg[DN_EXPR_MAX + 8] = "";
    if (!op->own_backward_x) return;
    if (op->pool_max) snprintf(arg, sizeof arg, " %s,", op->arg);
    dn_buf_line(b, "%s_%s_backward_x(%s,%s %s, %s, %s, n);", p->name, op->name, op->out.d, arg, op->in.d, op->in.mask,
                op->in.deriv_in);
}

const dn_kind dn_kind_pool2d = {
    .name = "pool2d",
    .describe = pool_describe,
    .kernels = pool_kernels,
    .forward = pool_forward,
    .backward = pool_backward,
    .backward_adam = pool_backward,
};
