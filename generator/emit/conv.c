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
 *   backward_w  dW and db, one task per filter (two, side by side in the
 *               16-float vectors, with AVX-512): every element sums over
 *               samples in order, each sample's plane first; with column
 *               stride 1 in 8 lanes of output columns, all taps of up to
 *               12 / kw kernel rows in one pass over d. With Adam fused, the
 *               filter's gradients update its weights at once.
 *   backward_x  d_prev, one task per (sample, input channels): each element
 *               sums over filters, then taps, in order; then the previous
 *               op's dropout scale and activation derivative. With stride 1,
 *               register tiles of channels x 8-column vectors of an input
 *               row over a ring of zero-margined rows of d (as many channels
 *               as 24 accumulators allow with AVX-512, 12 without); else
 *               the plain scatter, tap by tap, into the channel's plane.
 *
 * The order of every sum depends on the shapes alone, so results are the
 * same at any thread count, and the tiled kernels give the plain ones'
 * bits. cnn.yaml's training step on one thread (bench/step_bench.c with
 * DN_BENCH_CPUTIME=1, Zen 5, a shared machine): 110 ms with the plain
 * gradient kernels, 94 with the tiled weight gradient, 75 with both, 66
 * with four filters per weight-gradient task and eight per forward tile
 * (AVX-512). 16-float vectors in the input gradient measured the same as
 * 8-float ones there (its broadcasts and the ring's copies bind).
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
 * forward kernel: FWD_FB x 3 accumulators of 8 floats fit 16 registers
 * (AVX2), FWD_FB_WIDE x 3 fit 32 (AVX-512). */
enum { FWD_FB = 4, FWD_FB_WIDE = 8 };

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
 * stride 1, at least 8 output columns wide: register tiles of fb filters x
 * up to 3 vectors of 8 output columns, one task per (row, block of filters). */
static void emit_forward_tiles(dn_buf *b, const dn_op *op, int fb) {
    const dn_shape out = op->out.shape;
    const int nv = out.w / 8, blocks = (out.c + fb - 1) / fb;
    fwd_tile_ctx t = {op, nv % 3 == 0 ? 3 : nv % 2 == 0 ? 2 : 1};
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int t = 0; t < n * %d; t++) {", blocks);
    b->indent++;
    dn_buf_line(b, "const int r = t / %d, f0 = (t %% %d) * %d;", blocks, blocks, fb);
    dn_buf_line(b, "const float *xr = x + (size_t)r * %d;", op->in.stride);
    dn_buf_line(b, "float s[%d][%d];", fb, out.h * out.w);
    dn_emit_split(b, "f0", out.c, fb, emit_fwd_tile, &t);
    dn_emit_row_padding(b, op, "f0 == 0");
    b->indent--;
    dn_buf_line(b, "}");
}

/* The tiled forward kernel: twice the filters per tile with AVX-512's 32
 * registers (when there are more than FWD_FB); each output sums channels,
 * then taps, in the same order either way. */
static void emit_forward_tiled(dn_buf *b, const dn_op *op) {
    if (op->out.shape.c <= FWD_FB) {
        emit_forward_tiles(b, op, FWD_FB);
        return;
    }
    dn_buf_line(b, "#if DN_WIDE_TILES");
    emit_forward_tiles(b, op, FWD_FB_WIDE);
    dn_buf_line(b, "#else");
    emit_forward_tiles(b, op, FWD_FB);
    dn_buf_line(b, "#endif");
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
    if (op->product_only)
        dn_buf_line(b, "/* Forward (direct convolution): z = conv(x, W) + b [n, %d, %d, %d] (row stride %d), the input of "
                    "batch norm.", out.c, out.h, out.w, op->out.stride);
    else
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
static void emit_bw_sums_scalar(dn_buf *b, const dn_op *op, int depth) {
    const dn_shape in = op->in.shape, out = op->out.shape;
    const int plane = out.h * out.w, taps = in.c * op->kh * op->kw;
    char len[24];
    snprintf(len, sizeof len, "%d", taps + 1);
    dn_buf_line(b, "float res[%d];", taps + 1);
    dn_emit_chunks_open(b, "float", "w", depth, len);
    dn_buf_line(b, "float part[%d] = {0};", taps + 1);
    dn_buf_line(b, "for (int r = c0; r < c1; r++) {");
    b->indent++;
    dn_buf_line(b, "const float *dr = d + (size_t)r * %d + (size_t)c * %d;", op->out.stride, plane);
    dn_buf_line(b, "float sb = 0.0f;");
    dn_buf_line(b, "for (int i = 0; i < %d; i++) sb += dr[i];", plane);
    dn_buf_line(b, "part[%d] += sb;", taps);
    dn_buf_line(b, "for (int ci = 0; ci < %d; ci++) {", in.c);
    b->indent++;
    dn_buf_line(b, "const float *xc = x + (size_t)r * %d + (size_t)ci * %d;", op->in.stride, in.h * in.w);
    dn_buf_line(b, "float *gc = part + ci * %d;", op->kh * op->kw);
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
    dn_emit_chunks_close(b, "float", "w", "part", len, "res");
    dn_buf_line(b, "memcpy(g, res, sizeof(float) * %d);", taps);
    dn_buf_line(b, "gb = res[%d];", taps);
}

/* Whether the weight gradient runs 8 output columns per vector: column
 * stride 1 and rows of at least 8 outputs. */
static int bw_vectorized(const dn_op *op) { return op->conv_rows_vec && op->out.shape.w >= 8; }

/* Kernel rows whose taps share one pass over d in the vectorized weight
 * gradient: as many as keep 12 accumulators (16 registers with AVX2). */
static int bw_rows_per_pass(const dn_op *op) {
    int g = 12 / op->kw;
    if (g < 1) g = 1;
    return g < op->kh ? g : op->kh;
}

/* For column stride 1, the sums of filters [c, c + nf) into g[nf * taps]
 * (filter by filter) and gb (gb[nf] when nf > 1). nf == 1: 8-float vectors;
 * nf even: nf / 2 16-float vectors per tap, each holding two filters side
 * by side (two panels of 8 lanes). Per input channel and pass over kernel
 * rows [ky0, ky1), one accumulator of 8 output columns per tap and filter,
 * over all rows and output rows (8 adjacent columns of d times 8 adjacent
 * columns of x, the d vectors loaded once for every tap that reads those
 * columns), the columns past the last full vector in a scalar beside it; at
 * the end the lanes are added in order, then the scalar. Each sum's order
 * (rows, output rows, vectors, lanes) is set by the shapes alone and is the
 * same for every nf and any grouping of kernel rows into passes. */
static void emit_bw_sums_vec(dn_buf *b, const dn_op *op, int nf, int depth) {
    const dn_shape in = op->in.shape, out = op->out.shape;
    const int plane = out.h * out.w, taps = in.c * op->kh * op->kw, per = bw_rows_per_pass(op);
    const int wide = nf > 1, nv = wide ? nf / 2 : 1;
    for (int f = 0; f < nf; f++) {
        dn_buf_line(b, "{ /* the bias gradient of filter c + %d */", f);
        b->indent++;
        dn_buf_line(b, "float sum;");
        dn_emit_chunks_open(b, "float", "b", depth, "1");
        dn_buf_line(b, "float part = 0.0f;");
        dn_buf_line(b, "for (int r = c0; r < c1; r++) {");
        dn_buf_line(b, "    const float *dr = d + (size_t)r * %d + (size_t)(c + %d) * %d;", op->out.stride, f, plane);
        dn_buf_line(b, "    float sb = 0.0f;");
        dn_buf_line(b, "    for (int i = 0; i < %d; i++) sb += dr[i];", plane);
        dn_buf_line(b, "    part += sb;");
        dn_buf_line(b, "}");
        dn_emit_chunks_close(b, "float", "b", "&part", "1", "&sum");
        if (wide)
            dn_buf_line(b, "gb[%d] = sum;", f);
        else
            dn_buf_line(b, "gb = sum;");
        b->indent--;
        dn_buf_line(b, "}");
    }
    dn_buf_line(b, "for (int ci = 0; ci < %d; ci++) {", in.c);
    b->indent++;
    for (int ky0 = 0; ky0 < op->kh; ky0 += per) {
        const int ky1 = ky0 + per < op->kh ? ky0 + per : op->kh;
        int ylo[DN_MAX_WINDOW], yhi[DN_MAX_WINDOW], xlo[DN_MAX_WINDOW], xhi[DN_MAX_WINDOW], xfull[DN_MAX_WINDOW];
        int any = 0;
        for (int ky = ky0; ky < ky1; ky++) tap_range(out.h, op->sh, ky, op->pad_top, in.h, &ylo[ky], &yhi[ky]);
        for (int kx = 0; kx < op->kw; kx++) {
            tap_range(out.w, 1, kx, op->pad_left, in.w, &xlo[kx], &xhi[kx]);
            xfull[kx] = xlo[kx] + (xhi[kx] - xlo[kx] > 0 ? (xhi[kx] - xlo[kx]) / 8 * 8 : 0);
        }
        for (int ky = ky0; ky < ky1; ky++) any |= ylo[ky] < yhi[ky];
        if (!any) continue;
        dn_buf_line(b, "{ /* kernel rows %d to %d */", ky0, ky1 - 1);
        b->indent++;
        /* the pass's sums, one per tap and filter (tap-major), chunk by chunk */
        const int K = (ky1 - ky0) * op->kw * nf;
        char len[24];
        snprintf(len, sizeof len, "%d", K);
        dn_buf_line(b, "float res[%d];", K);
        dn_emit_chunks_open(b, "float", "w", depth, len);
        for (int ky = ky0; ky < ky1; ky++)
            for (int kx = 0; kx < op->kw; kx++) {
                for (int v = 0; v < nv; v++) dn_buf_line(b, "%s acc%d_%d_%d = {0};", wide ? "dn_v16" : "dn_v8", v, ky, kx);
                dn_buf_line(b, "float tail%d_%d[%d] = {0};", ky, kx, nf);
            }
        dn_buf_line(b, "for (int r = c0; r < c1; r++) {");
        b->indent++;
        dn_buf_line(b, "const float *dr = d + (size_t)r * %d + (size_t)c * %d;", op->out.stride, plane);
        dn_buf_line(b, "const float *xc = x + (size_t)r * %d + (size_t)ci * %d;", op->in.stride, in.h * in.w);
        /* output rows in segments over which the same kernel rows are in range */
        int cuts[2 * 12], nc = 0; /* two per kernel row of the pass: at most 12 */
        for (int ky = ky0; ky < ky1; ky++)
            if (ylo[ky] < yhi[ky]) cuts[nc++] = ylo[ky], cuts[nc++] = yhi[ky];
        for (int i = 1; i < nc; i++) /* sort, small */
            for (int j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
                int t = cuts[j];
                cuts[j] = cuts[j - 1];
                cuts[j - 1] = t;
            }
        for (int i = 0; i + 1 < nc; i++) {
            const int s0 = cuts[i], s1 = cuts[i + 1];
            if (s0 >= s1) continue;
            dn_buf_line(b, "for (int oy = %d; oy < %d; oy++) {", s0, s1);
            b->indent++;
            dn_buf_line(b, "const float *drow = dr + oy * %d;", out.w);
            for (int ky = ky0; ky < ky1; ky++) {
                if (!(ylo[ky] <= s0 && s1 <= yhi[ky])) continue;
                const int dy = ky - op->pad_top;
                dn_buf_line(b, "const float *xrow%d = xc + (oy * %d %c %d) * %d;", ky, op->sh, dy < 0 ? '-' : '+',
                            dy < 0 ? -dy : dy, in.w);
            }
            /* taps grouped by their full-vector column range: the d vectors loaded once each */
            for (int kx = 0; kx < op->kw; kx++) {
                int first = 1;
                for (int k2 = 0; k2 < kx; k2++)
                    if (xlo[k2] == xlo[kx] && xfull[k2] == xfull[kx]) first = 0;
                if (!first || xfull[kx] <= xlo[kx]) continue;
                dn_buf_line(b, "for (int ox = %d; ox < %d; ox += 8) {", xlo[kx], xfull[kx]);
                b->indent++;
                for (int v = 0; v < nv; v++) {
                    if (wide)
                        dn_buf_line(b, "const dn_v16 dv%d = dn_load8x2(drow + %d + ox, drow + %d + ox);", v,
                                    2 * v * plane, (2 * v + 1) * plane);
                    else
                        dn_buf_line(b, "const dn_v8 dv%d = dn_load8(drow + ox);", v);
                }
                for (int ky = ky0; ky < ky1; ky++) {
                    if (!(ylo[ky] <= s0 && s1 <= yhi[ky])) continue;
                    for (int k2 = kx; k2 < op->kw; k2++) {
                        if (xlo[k2] != xlo[kx] || xfull[k2] != xfull[kx]) continue;
                        const int dx = k2 - op->pad_left;
                        dn_buf_line(b, "{");
                        dn_buf_line(b, wide ? "    const dn_v16 xv = dn_dup8(xrow%d + ox %c %d);"
                                            : "    const dn_v8 xv = dn_load8(xrow%d + ox %c %d);",
                                    ky, dx < 0 ? '-' : '+', dx < 0 ? -dx : dx);
                        for (int v = 0; v < nv; v++)
                            dn_buf_line(b, "    acc%d_%d_%d = %s(dv%d, xv, acc%d_%d_%d);", v, ky, k2,
                                        wide ? "dn_fma16" : "dn_fma8", v, v, ky, k2);
                        dn_buf_line(b, "}");
                    }
                }
                b->indent--;
                dn_buf_line(b, "}");
            }
            for (int ky = ky0; ky < ky1; ky++) {
                if (!(ylo[ky] <= s0 && s1 <= yhi[ky])) continue;
                for (int kx = 0; kx < op->kw; kx++) {
                    if (xhi[kx] <= xfull[kx]) continue;
                    const int dx = kx - op->pad_left;
                    for (int f = 0; f < nf; f++)
                        dn_buf_line(b, "for (int ox = %d; ox < %d; ox++) tail%d_%d[%d] += drow[%d + ox] * xrow%d[ox %c %d];",
                                    xfull[kx], xhi[kx], ky, kx, f, f * plane, ky, dx < 0 ? '-' : '+',
                                    dx < 0 ? -dx : dx);
                }
            }
            b->indent--;
            dn_buf_line(b, "}");
        }
        b->indent--;
        dn_buf_line(b, "}");
        dn_buf_line(b, "float part[%d];", K);
        for (int ky = ky0; ky < ky1; ky++)
            for (int kx = 0; kx < op->kw; kx++)
                for (int v = 0; v < nv; v++) {
                    dn_buf_line(b, "{");
                    dn_buf_line(b, "    float lanes[%d];", wide ? 16 : 8);
                    dn_buf_line(b, wide ? "    dn_store16(lanes, acc%d_%d_%d);" : "    dn_store8(lanes, acc%d_%d_%d);", v,
                                ky, kx);
                    for (int h = 0; h <= wide; h++) {
                        const int f = wide ? 2 * v + h : 0;
                        dn_buf_line(b, "    {");
                        dn_buf_line(b, "        float sum = 0.0f;");
                        dn_buf_line(b, "        for (int l = 0; l < 8; l++) sum += lanes[%d + l];", 8 * h);
                        dn_buf_line(b, "        part[%d] = sum + tail%d_%d[%d];", ((ky - ky0) * op->kw + kx) * nf + f, ky,
                                    kx, f);
                        dn_buf_line(b, "    }");
                    }
                    dn_buf_line(b, "}");
                }
        dn_emit_chunks_close(b, "float", "w", "part", len, "res");
        for (int ky = ky0; ky < ky1; ky++)
            for (int kx = 0; kx < op->kw; kx++)
                for (int f = 0; f < nf; f++)
                    dn_buf_line(b, "g[%d + ci * %d + %d] = res[%d];", f * taps, op->kh * op->kw, ky * op->kw + kx,
                                ((ky - ky0) * op->kw + kx) * nf + f);
        b->indent--;
        dn_buf_line(b, "}");
    }
    b->indent--;
    dn_buf_line(b, "}");
}

/* A filter's weight-gradient sums, vectorized along output columns when
 * the column stride is 1, else plain. */
static void emit_bw_sums(dn_buf *b, const dn_op *op, int depth) {
    if (bw_vectorized(op))
        emit_bw_sums_vec(b, op, 1, depth);
    else
        emit_bw_sums_scalar(b, op, depth);
}

/* The end of a task's filters [c, c + nf): their sums g (taps floats per
 * filter) and gb (one per filter; a scalar when nf == 1) into dw and db, or
 * with `adam` through Adam into w and bias. */
static void emit_bw_store(dn_buf *b, const dn_op *op, int adam, int nf) {
    const int taps = op->in.shape.c * op->kh * op->kw;
    for (int f = 0; f < nf; f++) {
        char gb[16] = "gb";
        if (nf > 1) snprintf(gb, sizeof gb, "gb[%d]", f);
        if (adam) {
            dn_buf_line(b, "for (int e = 0; e < %d; e++)", taps);
            dn_buf_line(b, "    dn_adam1(w + (size_t)(c + %d) * %d + e, mw + (size_t)(c + %d) * %d + e, "
                        "vw + (size_t)(c + %d) * %d + e, g[%d + e], ac);", f, taps, f, taps, f, taps, f * taps);
            dn_buf_line(b, "dn_adam1(bias + c + %d, mb + c + %d, vb + c + %d, %s, ac);", f, f, f, gb);
        } else {
            dn_buf_line(b, "for (int e = 0; e < %d; e++) dw[(size_t)(c + %d) * %d + e] = g[%d + e];", taps, f, taps,
                        f * taps);
            dn_buf_line(b, "db[c + %d] = %s;", f, gb);
        }
    }
}

/* One filter per task, as the narrow kernels (and every non-vectorized
 * one) do it. */
static void emit_bw_filters(dn_buf *b, const dn_op *op, int adam, int depth) {
    const int taps = op->in.shape.c * op->kh * op->kw;
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int c = 0; c < %d; c++) {", op->out.shape.c);
    b->indent++;
    dn_buf_line(b, "float g[%d] = {0}, gb = 0.0f;", taps);
    emit_bw_sums(b, op, depth);
    emit_bw_store(b, op, adam, 1);
    b->indent--;
    dn_buf_line(b, "}");
}

/* With wide tiles (AVX-512): filters in groups of 4 (when their count is a
 * multiple of 4) or 2, two per 16-float vector, lane for lane the narrow
 * kernel's sums; an odd last filter alone. Four filters share each load of
 * x among two vectors of accumulators. */
static void emit_bw_groups(dn_buf *b, const dn_op *op, int adam, int depth) {
    const int taps = op->in.shape.c * op->kh * op->kw, nf = op->out.shape.c, fg = nf % 4 == 0 ? 4 : 2;
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int t = 0; t < %d; t++) {", (nf + fg - 1) / fg);
    b->indent++;
    dn_buf_line(b, "const int c = %d * t;", fg);
    if (nf % fg) {
        dn_buf_line(b, "if (c == %d) { /* the last filter alone */", nf - 1);
        b->indent++;
        dn_buf_line(b, "float g[%d] = {0}, gb = 0.0f;", taps);
        emit_bw_sums_vec(b, op, 1, depth);
        emit_bw_store(b, op, adam, 1);
        dn_buf_line(b, "continue;");
        b->indent--;
        dn_buf_line(b, "}");
    }
    dn_buf_line(b, "float g[%d] = {0}, gb[%d] = {0};", fg * taps, fg);
    emit_bw_sums_vec(b, op, fg, depth);
    emit_bw_store(b, op, adam, fg);
    b->indent--;
    dn_buf_line(b, "}");
}

/* The weight-gradient kernel; with `adam` each filter's gradients update
 * its weights (and bias) by Adam at once. */
static void emit_backward_w(dn_buf *b, const dn_plan *p, const dn_op *op, int adam) {
    const dn_shape in = op->in.shape, out = op->out.shape;
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
        dn_buf_line(b, " * d [n, %d, %d, %d] (row stride %d). Each element sums a chunk's rows in order, then the chunks in the tree. */", out.c, out.h,
                    out.w, op->out.stride);
        dn_buf_line(b, "static void %s_%s_backward_w(const float *restrict d, const float *restrict x,", p->name,
                    op->name);
        dn_buf_line(b, "        float *restrict dw, float *restrict db, int n) {");
    }
    b->indent++;
    const int depth = dn_tree_depth(p->spec->train.batch_size);
    if (bw_vectorized(op) && out.c > 1) {
        dn_buf_line(b, "#if DN_WIDE_TILES");
        emit_bw_groups(b, op, adam, depth);
        dn_buf_line(b, "#else");
        emit_bw_filters(b, op, adam, depth);
        dn_buf_line(b, "#endif");
    } else {
        emit_bw_filters(b, op, adam, depth);
    }
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

/* Input channels per task of the tiled input gradient: the largest divisor
 * of the channel count whose accumulators (channels x vectors of vw floats
 * covering a row) fit in `regs` registers; 0 when not even one channel's
 * row does. */
static int bx_group(const dn_op *op, int regs, int vw) {
    const int v = (op->in.shape.w + vw - 1) / vw;
    for (int g = regs / v; g >= 1; g--)
        if (op->in.shape.c % g == 0) return g;
    return 0;
}

/* Floats of one padded row of d (one filter's output row with zero margins
 * wide enough for every tap of every vector). */
static int bx_padded_width(const dn_op *op) { return ((op->in.shape.w + 15) / 16 * 16 + op->kw - 1 + 7) / 8 * 8; }

/* Whether the input gradient runs by register tiles: stride 1, padding
 * inside the kernel, rows of at most 12 vectors, and a ring of padded rows
 * of d that stays small (at most 128 KiB on the stack). */
static int bx_tiled(const dn_op *op) {
    return op->sh == 1 && op->sw == 1 && op->pad_top < op->kh && op->pad_left < op->kw && op->pad_right < op->kw &&
           op->pad_bottom < op->kh && bx_group(op, 12, 8) > 0 &&
           (long)op->kh * op->out.shape.c * bx_padded_width(op) <= 32768;
}

/* The tiled input-gradient task body for `g` input channels [ci0, ci0 + g):
 * input row by input row, g x v accumulators of 8 columns in registers over
 * every filter and tap (a correlation of d with the flipped kernel), read
 * from a ring of the kh rows of d the row needs, each copied once per task
 * with zero margins, so every vector takes every tap in range of its rows;
 * a column past the row's end computes what is dropped. */
static void emit_bx_tile(dn_buf *b, const dn_op *op, int g, int vw) {
    const dn_shape in = op->in.shape, out = op->out.shape;
    const int v = (in.w + vw - 1) / vw, pw = bx_padded_width(op), kk = op->kh * op->kw, taps = in.c * kk;
    const int margin = op->kw - 1 - op->pad_left;
    dn_buf_line(b, "float sg[%d][%d];", g, in.h * in.w);
    dn_buf_line(b, "float ring[%d][%d];", op->kh, out.c * pw);
    dn_buf_line(b, "const float *dr = d + (size_t)r * %d;", op->out.stride);
    /* row oy of every filter into slot oy %% kh, margins zero */
    dn_buf_line(b, "#define DN_BX_ROW(oy) \\");
    dn_buf_line(b, "    for (int c = 0; c < %d; c++) { \\", out.c);
    dn_buf_line(b, "        float *q = ring[(oy) %% %d] + c * %d; \\", op->kh, pw);
    if (margin > 0) dn_buf_line(b, "        memset(q, 0, sizeof(float) * %d); \\", margin);
    dn_buf_line(b, "        memcpy(q + %d, dr + c * %d + (oy) * %d, sizeof(float) * %d); \\", margin, out.h * out.w,
                out.w, out.w);
    dn_buf_line(b, "        memset(q + %d, 0, sizeof(float) * %d); \\", margin + out.w, pw - margin - out.w);
    dn_buf_line(b, "    }");
    if (op->pad_top > 0) dn_buf_line(b, "for (int oy = 0; oy < %d; oy++) DN_BX_ROW(oy);", op->pad_top);
    /* input rows in segments with the same kernel rows in range: oy = iy + pt - ky in [0, out.h) */
    int cuts[2 * DN_MAX_WINDOW + 2], nc = 0; /* the row's ends, and two per kernel row */
    cuts[nc++] = 0;
    cuts[nc++] = in.h;
    for (int ky = 0; ky < op->kh; ky++) {
        const int lo = ky - op->pad_top, hi = out.h + ky - op->pad_top; /* iy range of tap row ky */
        if (lo > 0 && lo < in.h) cuts[nc++] = lo;
        if (hi > 0 && hi < in.h) cuts[nc++] = hi;
    }
    for (int i = 1; i < nc; i++)
        for (int j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
            int t = cuts[j];
            cuts[j] = cuts[j - 1];
            cuts[j - 1] = t;
        }
    for (int i = 0; i + 1 < nc; i++) {
        const int s0 = cuts[i], s1 = cuts[i + 1];
        if (s0 >= s1) continue;
        dn_buf_line(b, "for (int iy = %d; iy < %d; iy++) {", s0, s1);
        b->indent++;
        if (s0 + op->pad_top < out.h) /* a new row of d enters: oy = iy + pt */
            dn_buf_line(b, "DN_BX_ROW(iy + %d);", op->pad_top);
        for (int ci = 0; ci < g; ci++)
            for (int j = 0; j < v; j++) dn_buf_line(b, "dn_v%d c%d_%d = {0};", vw, ci, j);
        dn_buf_line(b, "for (int c = 0; c < %d; c++) {", out.c);
        b->indent++;
        dn_buf_line(b, "const float *wc = w + (size_t)c * %d + (size_t)ci0 * %d;", taps, kk);
        for (int ky = 0; ky < op->kh; ky++) {
            const int lo = ky - op->pad_top, hi = out.h + ky - op->pad_top;
            if (!(lo <= s0 && s1 <= hi)) continue; /* tap row out of range for this segment */
            dn_buf_line(b, "{");
            b->indent++;
            dn_buf_line(b, "const float *q = ring[(iy + %d) %% %d] + c * %d;", op->pad_top - ky + op->kh, op->kh, pw);
            for (int kx = 0; kx < op->kw; kx++) {
                dn_buf_line(b, "{");
                b->indent++;
                for (int j = 0; j < v; j++)
                    dn_buf_line(b, "const dn_v%d d%d = dn_load%d(q + %d);", vw, j, vw, vw * j + op->kw - 1 - kx);
                for (int ci = 0; ci < g; ci++) {
                    dn_buf_line(b, "{");
                    dn_buf_line(b, "    const dn_v%d wv = dn_splat%d(wc[%d]);", vw, vw, ci * kk + ky * op->kw + kx);
                    for (int j = 0; j < v; j++)
                        dn_buf_line(b, "    c%d_%d = dn_fma%d(wv, d%d, c%d_%d);", ci, j, vw, j, ci, j);
                    dn_buf_line(b, "}");
                }
                b->indent--;
                dn_buf_line(b, "}");
            }
            b->indent--;
            dn_buf_line(b, "}");
        }
        b->indent--;
        dn_buf_line(b, "}");
        for (int ci = 0; ci < g; ci++)
            for (int j = 0; j < v; j++) {
                if (vw * j + vw <= in.w) {
                    dn_buf_line(b, "dn_store%d(sg[%d] + iy * %d + %d, c%d_%d);", vw, ci, in.w, vw * j, ci, j);
                } else {
                    dn_buf_line(b, "{");
                    dn_buf_line(b, "    float lanes[%d];", vw);
                    dn_buf_line(b, "    dn_store%d(lanes, c%d_%d);", vw, ci, j);
                    dn_buf_line(b, "    memcpy(sg[%d] + iy * %d + %d, lanes, sizeof(float) * %d);", ci, in.w, vw * j,
                                in.w - vw * j);
                    dn_buf_line(b, "}");
                }
            }
        b->indent--;
        dn_buf_line(b, "}");
    }
    dn_buf_line(b, "#undef DN_BX_ROW");
    for (int ci = 0; ci < g; ci++) {
        dn_buf_line(b, "{");
        b->indent++;
        dn_buf_line(b, "const int ci = ci0 + %d;", ci);
        dn_buf_line(b, "const float *s = sg[%d];", ci);
        dn_emit_dx_plane(b, op, "ci");
        b->indent--;
        dn_buf_line(b, "}");
    }
}

/* An input-gradient kernel's comment (its first line, then `how`: the
 * algorithm), signature and opening, indented for its body. */
static void emit_bx_head(dn_buf *b, const dn_plan *p, const dn_op *op, const char *how) {
    const dn_shape in = op->in.shape;
    char dv[DN_DERIV_MAX];
    const char *deriv = dn_act_derivative(&op->in.act, dv);
    dn_buf_line(b, "/* Input gradient, into %s: d_prev [n, %d, %d, %d] (row stride %d) = (d through W)%s%s;",
                op->in.owner, in.c, in.h, in.w, op->in.stride, op->in.has_mask ? " * mask_prev" : "",
                deriv ? " * act'(a_prev)" : "");
    dn_buf_line(b, " * %s */", how);
    dn_buf_line(b, "static void %s_%s_backward_x(const float *restrict d, const float *restrict w,", p->name, op->name);
    dn_buf_line(b, "        float *restrict dx, const float *restrict mask_prev, const float *restrict a_prev, int n) {");
    b->indent++;
    if (!op->in.has_mask) dn_buf_line(b, "(void)mask_prev;");
    if (!deriv) dn_buf_line(b, "(void)a_prev;");
}

/* The tiled input-gradient kernel: tasks of (row, group of input channels),
 * with AVX-512 16-float vectors and as many channels as 24 accumulators
 * allow, else 8-float ones and 12.
 * Each element sums filters, then taps, in order, as the plain kernel. */
static void emit_backward_x_tiled(dn_buf *b, const dn_plan *p, const dn_op *op) {
    const dn_shape in = op->in.shape;
    emit_bx_head(b, p, op, "register tiles of input channels x 8-column vectors of an input row over a ring of zero-\n"
                           " * margined rows of d; each element sums filters, then taps, in order.");
    const int gw = bx_group(op, 24, 16), gn = bx_group(op, 12, 8);
    for (int wide = 1; wide >= 0; wide--) {
        const int g = wide ? gw : gn;
        if (g == 0) continue; /* no 16-float tile fits: the narrow one for both */
        if (gw > 0) dn_buf_line(b, wide ? "#if DN_WIDE_TILES" : "#else");
        dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
        dn_buf_line(b, "for (int t = 0; t < n * %d; t++) {", in.c / g);
        b->indent++;
        dn_buf_line(b, "const int r = t / %d, ci0 = (t %% %d) * %d;", in.c / g, in.c / g, g);
        emit_bx_tile(b, op, g, wide ? 16 : 8);
        b->indent--;
        dn_buf_line(b, "}");
    }
    if (gw > 0) dn_buf_line(b, "#endif");
    dn_buf_line(b, "dn_sync();");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

/* The input-gradient kernel: d_prev = (d correlated back through W) *
 * mask_prev * act'(a_prev). */
static void emit_backward_x(dn_buf *b, const dn_plan *p, const dn_op *op) {
    const dn_shape in = op->in.shape, out = op->out.shape;
    const int taps = in.c * op->kh * op->kw, iplane = in.h * in.w;
    emit_bx_head(b, p, op, "one task per (row, input channel); each element sums filters, then taps, in order.");
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
                  o.h, o.w, op->kh, op->kw, op->sh, op->sw, op->product_only ? "(z)" : dn_act_name(op->act.type));
    if (op->drop.p > 0) dn_buf_printf(b, " dropout %s%s", op->drop.rate, op->drop_channel ? " (channels)" : "");
}

static void conv_kernels(dn_buf *b, const dn_plan *p, const dn_op *op, int forward_only) {
    const dn_shape i = op->in.shape, o = op->out.shape;
    dn_buf_line(b, "/* ==== %s: conv2d [%d, %d, %d] -> [%d, %d, %d], %s%s%s%s ==== */", op->name, i.c, i.h, i.w, o.c,
                o.h, o.w, op->product_only ? "the sum before batch norm" : dn_act_name(op->act.type),
                op->drop.p > 0 ? ", dropout " : "",
                op->drop.p > 0 ? op->drop.rate : "", op->drop.p > 0 && op->drop_channel ? " per channel" : "");
    dn_buf_blank(b);
    dn_emit_act_functions(b, &op->act, forward_only);
    emit_forward(b, p, op);
    if (forward_only) return;
    emit_backward_w(b, p, op, 0);
    if (p->fused_adam) emit_backward_w(b, p, op, 1);
    if (op->own_backward_x) {
        if (bx_tiled(op))
            emit_backward_x_tiled(b, p, op);
        else
            emit_backward_x(b, p, op);
    }
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
