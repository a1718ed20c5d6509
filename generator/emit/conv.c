/* conv.c - the conv2d kind: a = act(conv(x, W) + b), then dropout of
 * elements or whole channels, as PyTorch's Conv2d (cross-correlation, zero
 * padding) -> activation -> Dropout / Dropout2d.
 *
 * Rows hold one sample as [C, H, W] (PyTorch's order), so that a flatten
 * after it is free and fc1.weight means what it means in PyTorch; the row
 * stride is C * H * W rounded up to 8 (the padding kept zero). W is
 * [F, C, KH, KW] as PyTorch has it. Three kernels, each an orphaned omp for:
 *
 *   forward     direct convolution, one task per (sample, filter): the
 *               output plane sums over channels, then kernel rows and
 *               columns (each tap an unrolled block with literal bounds that
 *               skip the zero padding), then bias, activation and dropout.
 *   backward_w  dW and db, one task per filter: every element sums over
 *               samples in order, each sample's plane first. With Adam
 *               fused, the filter's gradients update its weights at once.
 *   backward_x  d_prev, one task per (sample, input channel): each element
 *               sums over filters, then taps, in order; then the previous
 *               op's dropout scale and activation derivative.
 *
 * The order of every sum depends on the shapes alone, so results are the
 * same at any thread count. The algorithm is the plain direct one for
 * every shape (named in each kernel's comment); faster ones per shape are
 * the next step (issue 22).
 */
#include <inttypes.h>
#include <stdio.h>

#include "kernels.h"
#include "kind.h"

/* Output positions o with 0 <= o * stride + tap - pad < size: [lo, hi). */
static void tap_range(int out, int stride, int tap, int pad, int size, int *lo, int *hi) {
    int a = 0, b = out;
    while (a < out && a * stride + tap - pad < 0) a++;
    while (b > a && (b - 1) * stride + tap - pad >= size) b--;
    *lo = a;
    *hi = b;
}

/* One tap (ky, kx) of a correlation between output plane `o` (HO x WO) and
 * input plane `i` (H x W): o[oy][ox] op= ... or i[iy][ix] += ..., per
 * `forward`. The products are written the same way in both directions. */
static void emit_tap(dn_buf *b, const dn_op *op, int ky, int kx, int forward, const char *wexpr) {
    const dn_shape in = op->in.shape, out = op->out.shape;
    int y0, y1, x0, x1;
    tap_range(out.h, op->sh, ky, op->pad_top, in.h, &y0, &y1);
    tap_range(out.w, op->sw, kx, op->pad_left, in.w, &x0, &x1);
    if (y0 >= y1 || x0 >= x1) return; /* the tap sees only padding */
    const int dy = ky - op->pad_top, dx = kx - op->pad_left;
    dn_buf_line(b, "{");
    b->indent++;
    dn_buf_line(b, "const float wv = %s;", wexpr);
    if (op->conv_rows_vec && x1 - x0 >= 8) { /* rows of adjacent columns: 8 at a time, the rest one by one */
        const int full = x0 + (x1 - x0) / 8 * 8;
        char orow[96], irow[96], ix[32]; /* the input row, and its column ix for output column ox */
        snprintf(orow, sizeof orow, "%s + oy * %d", forward ? "s" : "dr", out.w);
        snprintf(irow, sizeof irow, "%s + (oy * %d %c %d) * %d", forward ? "xc" : "s", op->sh, dy < 0 ? '-' : '+',
                 dy < 0 ? -dy : dy, in.w);
        if (dx)
            snprintf(ix, sizeof ix, "(ox %c %d)", dx < 0 ? '-' : '+', dx < 0 ? -dx : dx);
        else
            snprintf(ix, sizeof ix, "ox");
        dn_buf_line(b, "const dn_v8 w8 = dn_splat8(wv);");
        dn_buf_line(b, "for (int oy = %d; oy < %d; oy++) {", y0, y1);
        b->indent++;
        if (forward) {
            dn_buf_line(b, "float *so = %s;", orow);
            dn_buf_line(b, "const float *xi = %s;", irow);
            dn_buf_line(b, "for (int ox = %d; ox < %d; ox += 8) dn_store8(so + ox, dn_fma8(w8, dn_load8(xi + %s), "
                        "dn_load8(so + ox)));", x0, full, ix);
            if (full < x1)
                dn_buf_line(b, "for (int ox = %d; ox < %d; ox++) so[ox] = dn_fmaf(wv, xi[%s], so[ox]);", full, x1, ix);
        } else {
            dn_buf_line(b, "const float *di = %s;", orow);
            dn_buf_line(b, "float *si = %s;", irow);
            dn_buf_line(b, "for (int ox = %d; ox < %d; ox += 8) dn_store8(si + %s, dn_fma8(w8, dn_load8(di + ox), "
                        "dn_load8(si + %s)));", x0, full, ix, ix);
            if (full < x1)
                dn_buf_line(b, "for (int ox = %d; ox < %d; ox++) si[%s] = dn_fmaf(wv, di[ox], si[%s]);", full, x1, ix, ix);
        }
        b->indent--;
        dn_buf_line(b, "}");
        b->indent--;
        dn_buf_line(b, "}");
        return;
    }
    dn_buf_line(b, "for (int oy = %d; oy < %d; oy++)", y0, y1);
    dn_buf_line(b, "    for (int ox = %d; ox < %d; ox++)", x0, x1);
    char at[96];
    snprintf(at, sizeof at, "(oy * %d %c %d) * %d + ox * %d %c %d", op->sh, dy < 0 ? '-' : '+', dy < 0 ? -dy : dy,
             in.w, op->sw, dx < 0 ? '-' : '+', dx < 0 ? -dx : dx);
    if (forward)
        dn_buf_line(b, "        s[oy * %d + ox] += wv * xc[%s];", out.w, at);
    else
        dn_buf_line(b, "        s[%s] += wv * dr[oy * %d + ox];", at, out.w);
    b->indent--;
    dn_buf_line(b, "}");
}

/* All taps of one channel pair, in row-major tap order. */
static void emit_taps(dn_buf *b, const dn_op *op, int forward, const char *wbase) {
    for (int ky = 0; ky < op->kh; ky++)
        for (int kx = 0; kx < op->kw; kx++) {
            char w[64];
            snprintf(w, sizeof w, "%s[%d]", wbase, ky * op->kw + kx);
            emit_tap(b, op, ky, kx, forward, w);
        }
}

/* Filters per task and vectors of 8 output columns per tile of the tiled
 * forward kernel: FWD_FB x 3 accumulators of 8 floats fit 16 registers. */
enum { FWD_FB = 4 };

typedef struct {
    const dn_op *op;
    int vb; /* vectors of 8 columns per tile */
} fwd_tile_ctx;

/* The vectors [ox0, ox0 + 8 vb) (ox0 a C expression) of output row oy for
 * filters [f0, f0 + nf): registers summing channels, then kernel rows, then
 * columns, stored into s[nf][HO * WO]. */
static void emit_fwd_vectors(dn_buf *b, const dn_op *op, int nf, int vb, const char *ox0) {
    const dn_shape in = op->in.shape, out = op->out.shape;
    const int taps = in.c * op->kh * op->kw;
    for (int fi = 0; fi < nf; fi++) {
        dn_buf_printf(b, "%*sdn_v8", 4 * b->indent, "");
        for (int j = 0; j < vb; j++) dn_buf_printf(b, "%s c%d%d = {0}", j ? "," : "", fi, j);
        dn_buf_printf(b, ";\n");
    }
    dn_buf_line(b, "for (int ci = 0; ci < %d; ci++) {", in.c);
    b->indent++;
    dn_buf_line(b, "const float *xp = xr + (size_t)ci * %d + (size_t)(oy * %d) * %d + %s;", in.h * in.w, op->sh, in.w,
                ox0);
    dn_buf_line(b, "const float *wp = w + (size_t)f0 * %d + (size_t)ci * %d;", taps, op->kh * op->kw);
    for (int ky = 0; ky < op->kh; ky++)
        for (int kx = 0; kx < op->kw; kx++) {
            dn_buf_line(b, "{");
            b->indent++;
            for (int j = 0; j < vb; j++)
                dn_buf_line(b, "const dn_v8 x%d = dn_load8(xp + %d);", j, ky * in.w + kx + 8 * j);
            for (int fi = 0; fi < nf; fi++) {
                dn_buf_line(b, "{");
                dn_buf_line(b, "    const dn_v8 g = dn_splat8(wp[%d]);", fi * taps + ky * op->kw + kx);
                for (int j = 0; j < vb; j++) dn_buf_line(b, "    c%d%d = dn_fma8(g, x%d, c%d%d);", fi, j, j, fi, j);
                dn_buf_line(b, "}");
            }
            b->indent--;
            dn_buf_line(b, "}");
        }
    b->indent--;
    dn_buf_line(b, "}");
    for (int fi = 0; fi < nf; fi++)
        for (int j = 0; j < vb; j++)
            dn_buf_line(b, "dn_store8(&s[%d][oy * %d + %s + %d], c%d%d);", fi, out.w, ox0, 8 * j, fi, j);
}

/* Filters [f0, f0 + nf) of row r, every output row: tiles of ctx->vb
 * vectors of 8 columns, then, when the width is not a multiple of 8, one
 * more vector ending at the last column: it recomputes a few columns with
 * the same operations in the same order, so they get the same values. */
static void emit_fwd_tile(dn_buf *b, int nf, void *vctx) {
    const fwd_tile_ctx *t = vctx;
    const dn_op *op = t->op;
    const dn_shape out = op->out.shape;
    const int full = out.w / 8 * 8;
    dn_buf_line(b, "for (int oy = 0; oy < %d; oy++) {", out.h);
    b->indent++;
    dn_buf_line(b, "for (int ox0 = 0; ox0 < %d; ox0 += %d) {", full, 8 * t->vb);
    b->indent++;
    emit_fwd_vectors(b, op, nf, t->vb, "ox0");
    b->indent--;
    dn_buf_line(b, "}");
    if (full < out.w) {
        char last[16];
        snprintf(last, sizeof last, "%d", out.w - 8);
        dn_buf_line(b, "{ /* the last 8 columns */");
        b->indent++;
        emit_fwd_vectors(b, op, nf, 1, last);
        b->indent--;
        dn_buf_line(b, "}");
    }
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_line(b, "for (int fi = 0; fi < %d; fi++) {", nf);
    b->indent++;
    dn_buf_line(b, "const int c = f0 + fi;");
    dn_buf_line(b, "const float *sf = s[fi];");
    dn_emit_plane_epilogue(b, op, "sf", "bias[c]");
    b->indent--;
    dn_buf_line(b, "}");
}

/* The forward kernel of a convolution without padding and with column
 * stride 1, at least 8 output columns wide: register tiles of FWD_FB
 * filters x up to 3 vectors of 8 output columns, one task per (row, block
 * of filters). */
static void emit_forward_tiled(dn_buf *b, const dn_op *op) {
    const dn_shape out = op->out.shape;
    const int nv = out.w / 8, blocks = (out.c + FWD_FB - 1) / FWD_FB;
    fwd_tile_ctx t = {op, nv % 3 == 0 ? 3 : nv % 2 == 0 ? 2 : 1};
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int t = 0; t < n * %d; t++) {", blocks);
    b->indent++;
    dn_buf_line(b, "const int r = t / %d, f0 = (t %% %d) * %d;", blocks, blocks, FWD_FB);
    dn_buf_line(b, "const float *xr = x + (size_t)r * %d;", op->in.stride);
    dn_buf_line(b, "float s[%d][%d];", FWD_FB, out.h * out.w);
    dn_emit_split(b, "f0", out.c, FWD_FB, emit_fwd_tile, &t);
    dn_emit_row_padding(b, op, "f0 == 0");
    b->indent--;
    dn_buf_line(b, "}");
}


/* The forward kernel's signature tail, as dense's: mask, h and the stream when randomized. */
static void emit_fwd_signature(dn_buf *b, const dn_plan *p, const dn_op *op) {
    dn_buf_line(b, "static void %s_%s_forward(const float *restrict x, const float *restrict w,", p->name, op->name);
    dn_buf_line(b, "        const float *restrict bias, float *restrict a,%s%s%s int n%s) {",
                op->act.from_pre ? " float *restrict pre," : "", op->drop.p > 0 ? " float *restrict mask," : "",
                op->stochastic ? " float *restrict h," : "", op->stochastic ? ", uint64_t seed, uint64_t step" : "");
}

static void emit_forward(dn_buf *b, const dn_plan *p, const dn_op *op) {
    const dn_shape in = op->in.shape, out = op->out.shape;
    const int taps = in.c * op->kh * op->kw;
    dn_buf_line(b, "/* Forward (direct convolution): a = %s(conv(x, W) + b) [n, %d, %d, %d] (row stride %d)%s.",
                dn_act_name(op->act.type), out.c, out.h, out.w, op->out.stride,
                op->drop.p > 0 ? (op->drop_channel ? ", in training h = a * mask per channel"
                                                   : ", in training h = a * mask per element")
                               : "");
    dn_buf_line(b, " * x [n, %d, %d, %d] (row stride %d), w [%d, %d, %d, %d], stride %d x %d, padding %d x %d. */",
                in.c, in.h, in.w, op->in.stride, out.c, in.c, op->kh, op->kw, op->sh, op->sw, op->pad_top,
                op->pad_left);
    emit_fwd_signature(b, p, op);
    b->indent++;
    if (op->conv_tiled) {
        emit_forward_tiled(b, op);
        dn_buf_line(b, "dn_sync();");
        b->indent--;
        dn_buf_line(b, "}");
        dn_buf_blank(b);
        return;
    }
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int t = 0; t < n * %d; t++) {", out.c);
    b->indent++;
    dn_buf_line(b, "const int r = t / %d, c = t %% %d;", out.c, out.c);
    dn_buf_line(b, "float s[%d] = {0};", out.h * out.w);
    dn_buf_line(b, "for (int ci = 0; ci < %d; ci++) {", in.c);
    b->indent++;
    dn_buf_line(b, "const float *xc = x + (size_t)r * %d + (size_t)ci * %d;", op->in.stride, in.h * in.w);
    dn_buf_line(b, "const float *wc = w + (size_t)c * %d + (size_t)ci * %d;", taps, op->kh * op->kw);
    emit_taps(b, op, 1, "wc");
    b->indent--;
    dn_buf_line(b, "}");
    dn_emit_plane_epilogue(b, op, "s", "bias[c]");
    dn_emit_row_padding(b, op, "c == 0");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_line(b, "dn_sync();");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

/* The sums of a filter's weight gradient into g[taps] and gb, for the
 * filter `c` of the task: each element sums over rows, then output rows,
 * then columns, in that order. */
static void emit_bw_sums_scalar(dn_buf *b, const dn_op *op) {
    const dn_shape in = op->in.shape, out = op->out.shape;
    const int plane = out.h * out.w;
    dn_buf_line(b, "for (int r = 0; r < n; r++) {");
    b->indent++;
    dn_buf_line(b, "const float *dr = d + (size_t)r * %d + (size_t)c * %d;", op->out.stride, plane);
    dn_buf_line(b, "float sb = 0.0f;");
    dn_buf_line(b, "for (int i = 0; i < %d; i++) sb += dr[i];", plane);
    dn_buf_line(b, "gb += sb;");
    dn_buf_line(b, "for (int ci = 0; ci < %d; ci++) {", in.c);
    b->indent++;
    dn_buf_line(b, "const float *xc = x + (size_t)r * %d + (size_t)ci * %d;", op->in.stride, in.h * in.w);
    dn_buf_line(b, "float *gc = g + ci * %d;", op->kh * op->kw);
    for (int ky = 0; ky < op->kh; ky++)
        for (int kx = 0; kx < op->kw; kx++) {
            int y0, y1, x0, x1;
            tap_range(out.h, op->sh, ky, op->pad_top, in.h, &y0, &y1);
            tap_range(out.w, op->sw, kx, op->pad_left, in.w, &x0, &x1);
            if (y0 >= y1 || x0 >= x1) continue;
            const int dy = ky - op->pad_top, dx = kx - op->pad_left;
            dn_buf_line(b, "{");
            dn_buf_line(b, "    float sum = 0.0f;");
            dn_buf_line(b, "    for (int oy = %d; oy < %d; oy++)", y0, y1);
            dn_buf_line(b, "        for (int ox = %d; ox < %d; ox++)", x0, x1);
            dn_buf_line(b, "            sum += dr[oy * %d + ox] * xc[(oy * %d %c %d) * %d + ox * %d %c %d];", out.w,
                        op->sh, dy < 0 ? '-' : '+', dy < 0 ? -dy : dy, in.w, op->sw, dx < 0 ? '-' : '+',
                        dx < 0 ? -dx : dx);
            dn_buf_line(b, "    gc[%d] += sum;", ky * op->kw + kx);
            dn_buf_line(b, "}");
        }
    b->indent--;
    dn_buf_line(b, "}");
    b->indent--;
    dn_buf_line(b, "}");
}

/* For column stride 1: per input channel and kernel row, one vector
 * accumulator of 8 output columns per kernel column, over all rows and
 * output rows (8 adjacent columns of d times 8 adjacent columns of x), the
 * columns past the last full vector in a scalar beside it; at the end the
 * lanes are added in order, then the scalar. A fixed order, set by the
 * shapes alone. */
static void emit_bw_sums_vec(dn_buf *b, const dn_op *op) {
    const dn_shape in = op->in.shape, out = op->out.shape;
    const int plane = out.h * out.w;
    dn_buf_line(b, "for (int r = 0; r < n; r++) {");
    dn_buf_line(b, "    const float *dr = d + (size_t)r * %d + (size_t)c * %d;", op->out.stride, plane);
    dn_buf_line(b, "    float sb = 0.0f;");
    dn_buf_line(b, "    for (int i = 0; i < %d; i++) sb += dr[i];", plane);
    dn_buf_line(b, "    gb += sb;");
    dn_buf_line(b, "}");
    dn_buf_line(b, "for (int ci = 0; ci < %d; ci++) {", in.c);
    b->indent++;
    for (int ky = 0; ky < op->kh; ky++) {
        int y0, y1;
        tap_range(out.h, op->sh, ky, op->pad_top, in.h, &y0, &y1);
        if (y0 >= y1) continue;
        const int dy = ky - op->pad_top;
        dn_buf_line(b, "{ /* kernel row %d */", ky);
        b->indent++;
        for (int kx = 0; kx < op->kw; kx++) dn_buf_line(b, "dn_v8 acc%d = {0};", kx);
        for (int kx = 0; kx < op->kw; kx++) dn_buf_line(b, "float tail%d = 0.0f;", kx);
        dn_buf_line(b, "for (int r = 0; r < n; r++) {");
        b->indent++;
        dn_buf_line(b, "const float *dr = d + (size_t)r * %d + (size_t)c * %d;", op->out.stride, plane);
        dn_buf_line(b, "const float *xc = x + (size_t)r * %d + (size_t)ci * %d;", op->in.stride, in.h * in.w);
        dn_buf_line(b, "for (int oy = %d; oy < %d; oy++) {", y0, y1);
        b->indent++;
        dn_buf_line(b, "const float *drow = dr + oy * %d, *xrow = xc + (oy * %d %c %d) * %d;", out.w, op->sh,
                    dy < 0 ? '-' : '+', dy < 0 ? -dy : dy, in.w);
        for (int kx = 0; kx < op->kw; kx++) {
            int x0, x1;
            tap_range(out.w, 1, kx, op->pad_left, in.w, &x0, &x1);
            if (x0 >= x1) continue;
            const int dx = kx - op->pad_left, full = x0 + (x1 - x0) / 8 * 8;
            if (full > x0)
                dn_buf_line(b, "for (int ox = %d; ox < %d; ox += 8) acc%d = dn_fma8(dn_load8(drow + ox), "
                            "dn_load8(xrow + ox %c %d), acc%d);", x0, full, kx, dx < 0 ? '-' : '+', dx < 0 ? -dx : dx,
                            kx);
            if (x1 > full)
                dn_buf_line(b, "for (int ox = %d; ox < %d; ox++) tail%d += drow[ox] * xrow[ox %c %d];", full, x1, kx,
                            dx < 0 ? '-' : '+', dx < 0 ? -dx : dx);
        }
        b->indent--;
        dn_buf_line(b, "}");
        b->indent--;
        dn_buf_line(b, "}");
        for (int kx = 0; kx < op->kw; kx++) {
            dn_buf_line(b, "{");
            dn_buf_line(b, "    float lanes[8], sum = 0.0f;");
            dn_buf_line(b, "    dn_store8(lanes, acc%d);", kx);
            dn_buf_line(b, "    for (int l = 0; l < 8; l++) sum += lanes[l];");
            dn_buf_line(b, "    g[ci * %d + %d] = sum + tail%d;", op->kh * op->kw, ky * op->kw + kx, kx);
            dn_buf_line(b, "}");
        }
        b->indent--;
        dn_buf_line(b, "}");
    }
    b->indent--;
    dn_buf_line(b, "}");
}

/* A filter's weight-gradient sums, vectorized along output columns when
 * the column stride is 1, else plain. */
static void emit_bw_sums(dn_buf *b, const dn_op *op) {
    if (op->conv_rows_vec && op->out.shape.w >= 8)
        emit_bw_sums_vec(b, op);
    else
        emit_bw_sums_scalar(b, op);
}

/* The weight-gradient kernel; with `adam` each filter's gradients update
 * its weights (and bias) by Adam at once. */
static void emit_backward_w(dn_buf *b, const dn_plan *p, const dn_op *op, int adam) {
    const dn_shape in = op->in.shape, out = op->out.shape;
    const int taps = in.c * op->kh * op->kw;
    if (adam) {
        dn_buf_line(b, "/* Weight gradients as above, each filter's applied at once by Adam to w and bias");
        dn_buf_line(b, " * (moments mw, vw of w and mb, vb of bias). */");
        dn_buf_line(b, "static void %s_%s_backward_w_adam(const float *restrict d, const float *restrict x,", p->name,
                    op->name);
        dn_buf_line(b, "        float *restrict w, float *restrict bias, float *restrict mw, float *restrict vw,");
        dn_buf_line(b, "        float *restrict mb, float *restrict vb, const dn_adam_coef *ac, int n) {");
    } else {
        dn_buf_line(b, "/* Weight gradients: dw [%d, %d, %d, %d] = sum over rows of d (x) x, db [%d] = sums of d.",
                    out.c, in.c, op->kh, op->kw, out.c);
        dn_buf_line(b, " * d [n, %d, %d, %d] (row stride %d). Each element sums rows in order. */", out.c, out.h,
                    out.w, op->out.stride);
        dn_buf_line(b, "static void %s_%s_backward_w(const float *restrict d, const float *restrict x,", p->name,
                    op->name);
        dn_buf_line(b, "        float *restrict dw, float *restrict db, int n) {");
    }
    b->indent++;
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int c = 0; c < %d; c++) {", out.c);
    b->indent++;
    dn_buf_line(b, "float g[%d] = {0}, gb = 0.0f;", taps);
    emit_bw_sums(b, op);
    if (adam) {
        dn_buf_line(b, "for (int e = 0; e < %d; e++)", taps);
        dn_buf_line(b, "    dn_adam1(w + (size_t)c * %d + e, mw + (size_t)c * %d + e, vw + (size_t)c * %d + e, g[e], ac);",
                    taps, taps, taps);
        dn_buf_line(b, "dn_adam1(bias + c, mb + c, vb + c, gb, ac);");
    } else {
        dn_buf_line(b, "for (int e = 0; e < %d; e++) dw[(size_t)c * %d + e] = g[e];", taps, taps);
        dn_buf_line(b, "db[c] = gb;");
    }
    b->indent--;
    dn_buf_line(b, "}");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

/* The input-gradient kernel: d_prev = (d correlated back through W) *
 * mask_prev * act'(a_prev). */
static void emit_backward_x(dn_buf *b, const dn_plan *p, const dn_op *op) {
    const dn_shape in = op->in.shape, out = op->out.shape;
    const int taps = in.c * op->kh * op->kw, iplane = in.h * in.w;
    char dv[DN_DERIV_MAX];
    const char *deriv = dn_act_derivative(&op->in.act, dv);
    dn_buf_line(b, "/* Input gradient, into %s: d_prev [n, %d, %d, %d] (row stride %d) = (d through W)%s%s;",
                op->in.owner, in.c, in.h, in.w, op->in.stride, op->in.has_mask ? " * mask_prev" : "",
                deriv ? " * act'(a_prev)" : "");
    dn_buf_line(b, " * one task per (row, input channel); each element sums filters, then taps, in order. */");
    dn_buf_line(b, "static void %s_%s_backward_x(const float *restrict d, const float *restrict w,", p->name, op->name);
    dn_buf_line(b, "        float *restrict dx, const float *restrict mask_prev, const float *restrict a_prev, int n) {");
    b->indent++;
    if (!op->in.has_mask) dn_buf_line(b, "(void)mask_prev;");
    if (!deriv) dn_buf_line(b, "(void)a_prev;");
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int t = 0; t < n * %d; t++) {", in.c);
    b->indent++;
    dn_buf_line(b, "const int r = t / %d, ci = t %% %d;", in.c, in.c);
    dn_buf_line(b, "float s[%d] = {0};", iplane);
    dn_buf_line(b, "for (int c = 0; c < %d; c++) {", out.c);
    b->indent++;
    dn_buf_line(b, "const float *dr = d + (size_t)r * %d + (size_t)c * %d;", op->out.stride, out.h * out.w);
    dn_buf_line(b, "const float *wc = w + (size_t)c * %d + (size_t)ci * %d;", taps, op->kh * op->kw);
    emit_taps(b, op, 0, "wc");
    b->indent--;
    dn_buf_line(b, "}");
    dn_emit_dx_plane(b, op, "ci");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_line(b, "dn_sync();");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

/* ---- the module's interface (kind.h) ------------------------------------------- */

static void conv_describe(dn_buf *b, const dn_plan *p, const dn_op *op) {
    (void)p;
    const dn_shape i = op->in.shape, o = op->out.shape;
    dn_buf_printf(b, "%-12s conv2d %dx%dx%d -> %dx%dx%d, kernel %dx%d stride %dx%d %s", op->name, i.c, i.h, i.w, o.c,
                  o.h, o.w, op->kh, op->kw, op->sh, op->sw, dn_act_name(op->act.type));
    if (op->drop.p > 0) dn_buf_printf(b, " dropout %s%s", op->drop.rate, op->drop_channel ? " (channels)" : "");
}

static void conv_kernels(dn_buf *b, const dn_plan *p, const dn_op *op, int forward_only) {
    const dn_shape i = op->in.shape, o = op->out.shape;
    dn_buf_line(b, "/* ==== %s: conv2d [%d, %d, %d] -> [%d, %d, %d], %s%s%s%s ==== */", op->name, i.c, i.h, i.w, o.c,
                o.h, o.w, dn_act_name(op->act.type), op->drop.p > 0 ? ", dropout " : "",
                op->drop.p > 0 ? op->drop.rate : "", op->drop.p > 0 && op->drop_channel ? " per channel" : "");
    dn_buf_blank(b);
    dn_emit_act_functions(b, &op->act, forward_only);
    emit_forward(b, p, op);
    if (forward_only) return;
    emit_backward_w(b, p, op, 0);
    emit_backward_w(b, p, op, 1);
    if (op->own_backward_x) emit_backward_x(b, p, op);
}

static void conv_forward(dn_buf *b, const dn_plan *p, const dn_op *op, int train) {
    char extra[4 * DN_EXPR_MAX];
    dn_epilogue_args(extra, sizeof extra, op, train);
    dn_buf_line(b, "%s_%s_forward(%s, params + %zu, params + %zu, %s,", p->name, op->name,
                train ? op->in.train : op->in.eval, op->w_off, op->b_off, op->out.a);
    dn_buf_line(b, "        %s);", extra + 1);
}

static void conv_backward_x_call(dn_buf *b, const dn_plan *p, const dn_op *op) {
    dn_buf_line(b, "%s_%s_backward_x(%s, params + %zu, %s, %s, %s, n);", p->name, op->name, op->out.d, op->w_off,
                op->in.d, op->in.mask, op->in.deriv_in);
}

static void conv_backward(dn_buf *b, const dn_plan *p, const dn_op *op) {
    dn_buf_line(b, "%s_%s_backward_w(%s, %s, grads + %zu, grads + %zu, n);", p->name, op->name, op->out.d,
                op->in.train, op->w_off, op->b_off);
    if (op->own_backward_x) conv_backward_x_call(b, p, op);
    /* backward_w has no barrier: the next op's backward reads only what backward_x wrote */
    if (!op->own_backward_x) dn_buf_line(b, "dn_sync();");
}

static void conv_backward_adam(dn_buf *b, const dn_plan *p, const dn_op *op) {
    if (op->own_backward_x) conv_backward_x_call(b, p, op);
    dn_buf_line(b, "%s_%s_backward_w_adam(%s, %s, params + %zu, params + %zu, m + %zu, v + %zu, m + %zu, v + %zu,",
                p->name, op->name, op->out.d, op->in.train, op->w_off, op->b_off, op->w_off, op->w_off, op->b_off,
                op->b_off);
    dn_buf_line(b, "        ac, n);");
}

const dn_kind dn_kind_conv2d = {
    .name = "conv2d",
    .describe = conv_describe,
    .kernels = conv_kernels,
    .forward = conv_forward,
    .backward = conv_backward,
    .backward_adam = conv_backward_adam,
};
