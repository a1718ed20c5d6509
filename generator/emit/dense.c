/* emit_layer.c - per-layer kernels with every size a literal constant.
 *
 * A layer's weights live in panels of DN_PANEL (8) units, each input-major
 * (spec.h), and its buffers have rows of `stride` floats, so that one 8-float
 * vector holds 8 consecutive units everywhere (with AVX-512, one 16-float
 * vector holds two panels' 8, see tile_shape). For layer k (fan-in I, units O
 * in NP panels) three kernels are written, each an orphaned `#pragma omp for
 * nowait` that the model's single parallel region calls; forward and
 * backward_x end in dn_sync(), the prelude's team barrier:
 *
 *   forward     a = act(x W^T + b), then in training h = a * mask (inverted
 *               dropout). Register tiles of rows x panels, a broadcast outer
 *               product: per input i, one x scalar per row times one weight
 *               vector per panel. Each output sums over i in input order.
 *   backward_w  dW = d^T x, db = sum over rows of d; with Adam fused in, each
 *               tile of gradients is applied to its weights at once. Tiles of
 *               inputs x panels, an outer product over rows: every element
 *               sums over rows in row order.
 *   backward_x  d_prev = (d W) * mask_prev * act'(a_prev), for k > 0. A
 *               task is a column of input vectors: it transposes W for
 *               those inputs into blocks of 8 (a scratch buffer of the
 *               workspace), then runs another broadcast outer product down
 *               the column, tiles of rows x input vectors: every element
 *               sums over units in unit order.
 *
 * With dn_fused_head, the last layer's forward, the loss and its backward_x
 * are one kernel instead (dn_emit_head).
 *
 * A batchnorm layer's forward product stops at z = x W^T + b; its
 * normalization, activation, noise and dropout come from emit_bn.c.
 *
 * Tiles never change an element's order of summation: rows past n are served
 * by clamped pointers and their results dropped, and remainder tiles run the
 * same sums. So every element is the same whatever the batch split, thread
 * count or tile shape (narrow or wide).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "emit.h"

/* Tile shapes for 16 registers of 8 floats (narrow: 12 accumulators) and for
 * 32 of 16 floats (wide: AVX-512, chosen when the trainer is compiled, see
 * DN_WIDE_TILES in the prelude). A wide vector holds two panels (vp = 2):
 * 8 x 4 panels is 16 accumulators of 16 floats, and a tile with an odd
 * number of panels ends with one 8-float vector. */
typedef struct {
    int a, b; /* a x b panels (or blocks of 8 inputs) */
    int vp;   /* panels per vector: 1 (8 floats) or 2 (16) */
} tile_shape;
static const tile_shape FWD_TILE[2] = {{6, 2, 1}, {8, 4, 2}}; /* rows x panels */
static const tile_shape BW_TILE[2] = {{6, 2, 1}, {8, 4, 2}};  /* inputs x panels */
static const tile_shape BX_TILE[2] = {{6, 2, 1}, {8, 4, 2}};  /* rows x blocks of 8 inputs */

/* The vectors of a tile `panels` wide with vp panels per vector: how many,
 * and whether vector j is a 16-float one (else 8). Vector j starts at
 * panel j * vp. */
static int vec_count(int panels, int vp) { return (panels + vp - 1) / vp; }
static int vec_wide(int j, int panels, int vp) { return vp == 2 && 2 * j + 1 < panels; }

/* Row stride of layer k's input buffer: the input size, or the previous
 * layer's padded width. */
static int input_stride(const dn_spec *s, int k) { return k == 0 ? s->input : s->layers[k - 1].stride; }

static int panels_of(const dn_layer *L) { return L->stride / DN_PANEL; }

const char *dn_act_derivative(dn_act act) {
    switch (act) {
    case DN_ACT_RELU: return "(a > 0.0f ? 1.0f : 0.0f)";
    case DN_ACT_TANH: return "(1.0f - a * a)";
    case DN_ACT_SIGMOID: return "(a * (1.0f - a))";
    case DN_ACT_LINEAR:
    case DN_ACT_SOFTMAX:
    case DN_ACT_COUNT: break;
    }
    return NULL; /* derivative 1: nothing to multiply */
}

int dn_layer_stochastic(const dn_layer *L) { return L->dropout > 0 || L->noise > 0; }

/* Declares pointer `name<i>` = base + clamp(first + i) * stride for i < count:
 * indices at or past `limit` (a C expression) reuse the last valid one. */
static void emit_clamped_ptrs(dn_buf *b, const char *name, const char *base, const char *first,
                              const char *limit, int count, int stride) {
    for (int i = 0; i < count; i++) {
        if (i == 0)
            dn_buf_line(b, "const float *%s0 = %s + (size_t)%s * %d;", name, base, first, stride);
        else
            dn_buf_line(b, "const float *%s%d = %s + (size_t)(%s + %d < %s ? %s + %d : %s - 1) * %d;", name, i,
                        base, first, i, limit, first, i, limit, stride);
    }
}

/* Declares the zeroed accumulators c<r><j> of a register tile of `rows` x
 * the vectors of `panels` panels (vp per vector). */
static void emit_accumulators(dn_buf *b, int rows, int panels, int vp) {
    int nv = vec_count(panels, vp), n16 = vp == 2 ? panels / 2 : 0;
    for (int r = 0; r < rows; r++) {
        dn_buf_printf(b, "%*s", 4 * b->indent, "");
        for (int j = 0; j < nv; j++)
            dn_buf_printf(b, "%sc%d%d = {0}%s", j == 0 ? (n16 ? "dn_v16 " : "dn_v8 ") : j == n16 ? "dn_v8 " : "",
                          r, j, j + 1 == nv ? ";\n" : j + 1 == n16 ? "; " : ", ");
    }
}

/* One step of a broadcast outer product: for each tile row r, splat the
 * scalar `scalar_fmt` (a format taking r) and accumulate it times the
 * vectors <vec>0.. of the tile into c<r>0.. */
static void emit_splat_fmas(dn_buf *b, int rows, int panels, int vp, const char *vec, const char *scalar_fmt) {
    int nv = vec_count(panels, vp);
    for (int r = 0; r < rows; r++) {
        char scalar[64];
        snprintf(scalar, sizeof scalar, scalar_fmt, r);
        dn_buf_line(b, "%sg = dn_splat%d(%s);", r == 0 ? (vp == 2 ? "dn_v16 " : "dn_v8 ") : "", 8 * vp, scalar);
        for (int v = 0; v < nv; v++) {
            if (vec_wide(v, panels, vp))
                dn_buf_line(b, "c%d%d = dn_fma16(g, %s%d, c%d%d);", r, v, vec, v, r, v);
            else
                dn_buf_line(b, "c%d%d = dn_fma8(%s, %s%d, c%d%d);", r, v, vp == 2 ? "dn_lo8(g)" : "g", vec, v, r, v);
        }
    }
}

/* Declares vector <vec><j> of a tile for each of its vectors: the 8 floats
 * at `base` + `at_fmt` (a format taking a panel's offset) for one panel, the
 * two panels' 8 floats side by side for a wide vector. `step` is the offset
 * from one panel to the next (8: adjacent, one 16-float load). */
static void emit_tile_loads(dn_buf *b, int panels, int vp, const char *vec, const char *base, const char *at_fmt,
                            int step) {
    for (int j = 0; j < vec_count(panels, vp); j++) {
        char at0[80], at1[80];
        snprintf(at0, sizeof at0, at_fmt, j * vp * step);
        snprintf(at1, sizeof at1, at_fmt, (j * vp + 1) * step);
        if (vec_wide(j, panels, vp) && step == 8) /* adjacent: one load */
            dn_buf_line(b, "const dn_v16 %s%d = dn_load16(%s + %s);", vec, j, base, at0);
        else if (vec_wide(j, panels, vp))
            dn_buf_line(b, "const dn_v16 %s%d = dn_load8x2(%s + %s, %s + %s);", vec, j, base, at0, base, at1);
        else
            dn_buf_line(b, "const dn_v8 %s%d = dn_load8(%s + %s);", vec, j, base, at0);
    }
}

/* Spills the accumulators of a rows x `panels` tile into float
 * z[rows][8 * panels]: panel j of row r at z[r][8 * j]. */
static void emit_spill(dn_buf *b, int rows, int panels, int vp) {
    dn_buf_line(b, "float z[%d][%d];", rows, 8 * panels);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < vec_count(panels, vp); j++)
            dn_buf_line(b, "dn_store%d(&z[%d][%d], c%d%d);", vec_wide(j, panels, vp) ? 16 : 8, r, 8 * vp * j, r, j);
}

/* The two-way split of a task into full tiles of `full` along a dimension
 * of `total` (a literal) and one remainder tile: `if (at < F) {tile(full)}
 * else {tile(rest)}`, or one of them alone. The tile emitter gets the size. */
static void emit_split(dn_buf *b, const char *at, int total, int full, void (*tile)(dn_buf *, int, void *),
                       void *ctx) {
    int f = total / full * full, rest = total - f;
    if (rest == 0 || f == 0) {
        tile(b, rest == 0 ? full : rest, ctx);
        return;
    }
    dn_buf_line(b, "if (%s < %d) {", at, f);
    b->indent++;
    tile(b, full, ctx);
    b->indent--;
    dn_buf_line(b, "} else {");
    b->indent++;
    tile(b, rest, ctx);
    b->indent--;
    dn_buf_line(b, "}");
}

/* ---- forward ---------------------------------------------------------------- */

/* The activation applied to vector `v` into `y` (a declaration). */
static void emit_activation(dn_buf *b, dn_act act) {
    switch (act) {
    case DN_ACT_RELU: dn_buf_line(b, "const dn_v8 y = dn_relu8(v);"); return;
    case DN_ACT_TANH:
    case DN_ACT_SIGMOID:
        dn_buf_line(b, "float t[8];");
        dn_buf_line(b, "dn_store8(t, v);");
        dn_buf_line(b, "for (int j = 0; j < 8; j++) t[j] = %s;",
                    act == DN_ACT_TANH ? "tanhf(t[j])" : "1.0f / (1.0f + expf(-t[j]))");
        dn_buf_line(b, "const dn_v8 y = dn_load8(t);");
        return;
    case DN_ACT_LINEAR:
    case DN_ACT_SOFTMAX: /* softmax is applied by the loss */
    case DN_ACT_COUNT: break;
    }
    dn_buf_line(b, "const dn_v8 y = v;");
}

/* The epilogue shared by all forward tiles: bias, activation, and in training
 * noise and dropout, for 8 units of one row. */
static void emit_finish(dn_buf *b, const dn_spec *s, int k) {
    const dn_layer *L = &s->layers[k];
    int stoch = dn_layer_stochastic(L);
    dn_buf_line(b, "/* Bias, activation%s for the units [u, u + 8) of row `row`,", stoch ? " and, in training (h != NULL), noise and dropout" : "");
    dn_buf_line(b, " * whose sums over the inputs are z[0..8)%s. */", L->dropout > 0 ? " and dropout scales mk[0..8)" : "");
    dn_buf_line(b, "static inline void %s_%s_finish(const float *z, size_t row, int u, const float *restrict bias,", s->name,
                L->name);
    dn_buf_line(b, "        float *restrict a%s%s) {", L->dropout > 0 ? ", float *restrict mask, const float *mk" : "",
                stoch ? ", float *restrict h, uint64_t seed, uint64_t step" : "");
    if (L->noise <= 0 && stoch) {
        dn_buf_line(b, "(void)seed;");
        dn_buf_line(b, "(void)step;");
    }
    b->indent++;
    dn_buf_line(b, "const dn_v8 v = dn_load8(z) + dn_load8(bias + u);");
    emit_activation(b, L->act);
    dn_buf_line(b, "const size_t at = row * %d + (size_t)u;", L->stride);
    dn_buf_line(b, "dn_store8(a + at, y);");
    if (stoch) {
        dn_buf_line(b, "if (!h) return;");
        dn_buf_line(b, "dn_v8 o = y;");
        if (L->noise > 0) {
            char sigma[40];
            dn_float_literal(sigma, sizeof sigma, (float)L->noise);
            dn_buf_line(b, "float g[8];");
            dn_buf_line(b, "dn_gauss4(seed, step, %d, (uint32_t)row, (uint32_t)u, g);", k + 1);
            dn_buf_line(b, "dn_gauss4(seed, step, %d, (uint32_t)row, (uint32_t)u + 4, g + 4);", k + 1);
            dn_buf_line(b, "o = o + dn_splat8(%s) * dn_load8(g);", sigma);
        }
        if (L->dropout > 0) {
            dn_buf_line(b, "const dn_v8 mv = dn_load8(mk);");
            dn_buf_line(b, "dn_store8(mask + at, mv);");
            dn_buf_line(b, "o = o * mv;");
        }
        dn_buf_line(b, "dn_store8(h + at, o);");
    }
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

typedef struct {
    const dn_spec *s;
    int k, rows, vp;
} fwd_ctx;

void dn_emit_dropout_block(dn_buf *b, const dn_spec *s, int k, int rows, int width, const char *u0) {
    double p = s->layers[k].dropout;
    char scale[40];
    dn_float_literal(scale, sizeof scale, dn_dropout_scale(p));
    dn_buf_line(b, "float mk[%d][%d];", rows, width);
    dn_buf_line(b, "if (h)");
    dn_buf_line(b, "    dn_dropout_block(seed, step, %d, (uint32_t)r0, nr, (uint32_t)(%s), %d, %" PRIu32 "u, %s, &mk[0][0]);",
                k + 1, u0, width, dn_dropout_threshold_of(p), scale);
}

/* A forward tile of c->rows rows x `panels` panels from row r0, panel p0. */
static void emit_fwd_tile(dn_buf *b, int panels, void *vctx) {
    const fwd_ctx *c = vctx;
    const dn_layer *L = &c->s->layers[c->k];
    int in = L->in, rows = c->rows;
    dn_buf_line(b, "const float *wp = w + (size_t)p0 * %d;", in * 8);
    emit_clamped_ptrs(b, "x", "x", "r0", "n", rows, input_stride(c->s, c->k));
    emit_accumulators(b, rows, panels, c->vp);
    dn_buf_line(b, "for (int i = 0; i < %d; i++) {", in);
    b->indent++;
    emit_tile_loads(b, panels, c->vp, "w", "wp", "%d + (size_t)i * 8", in * 8);
    emit_splat_fmas(b, rows, panels, c->vp, "w", "x%d[i]");
    b->indent--;
    dn_buf_line(b, "}");
    emit_spill(b, rows, panels, c->vp);
    if (L->batchnorm) { /* z + bias for the batch norm kernels */
        dn_buf_line(b, "for (int r = 0; r < nr; r++)");
        dn_buf_line(b, "    for (int j = 0; j < %d; j++) {", panels);
        dn_buf_line(b, "        const int u = (p0 + j) * 8;");
        dn_buf_line(b, "        dn_store8(out + (size_t)(r0 + r) * %d + u, dn_load8(&z[r][8 * j]) + dn_load8(bias + u));",
                    L->stride);
        dn_buf_line(b, "    }");
        return;
    }
    if (L->dropout > 0) dn_emit_dropout_block(b, c->s, c->k, rows, 8 * panels, "p0 * 8");
    dn_buf_line(b, "for (int r = 0; r < nr; r++)");
    dn_buf_line(b, "    for (int j = 0; j < %d; j++)", panels);
    dn_buf_line(b, "        %s_%s_finish(&z[r][8 * j], (size_t)(r0 + r), (p0 + j) * 8, bias, a%s%s);", c->s->name,
                L->name, L->dropout > 0 ? ", mask, &mk[r][8 * j]" : "", dn_layer_stochastic(L) ? ", h, seed, step" : "");
}

/* The task loop of the forward kernel with tiles of shape t. */
static void emit_fwd_body(dn_buf *b, const dn_spec *s, int k, tile_shape t) {
    const dn_layer *L = &s->layers[k];
    int np = panels_of(L), cblocks = (np + t.b - 1) / t.b;
    dn_buf_line(b, "const int row_blocks = (n + %d) / %d;", t.a - 1, t.a);
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int t = 0; t < %d * row_blocks; t++) {", cblocks);
    b->indent++;
    dn_buf_line(b, "const int p0 = (t / row_blocks) * %d, r0 = (t %% row_blocks) * %d;", t.b, t.a);
    dn_buf_line(b, "const int nr = n - r0 < %d ? n - r0 : %d;", t.a, t.a);
    fwd_ctx c = {s, k, t.a, t.vp};
    emit_split(b, "p0", np, t.b, emit_fwd_tile, &c);
    b->indent--;
    dn_buf_line(b, "}");
}

static void emit_forward(dn_buf *b, const dn_spec *s, int k) {
    const dn_layer *L = &s->layers[k];
    int in = L->in, out = L->units, stoch = dn_layer_stochastic(L);
    char rate[32], sigma[32];
    dn_format_rate(rate, sizeof rate, L->dropout);
    dn_format_rate(sigma, sizeof sigma, L->noise);
    emit_finish(b, s, k);
    if (L->batchnorm) /* the product only; emit_bn.c does the rest */
        dn_buf_line(b, "/* Forward product: out = x W^T + b [n, %d] (row stride %d), the input of batch norm.", out,
                    L->stride);
    else
        dn_buf_line(b, "/* Forward: a = %s(x W^T + b) [n, %d] (row stride %d).", dn_act_name(L->act), out, L->stride);
    if (stoch && !L->batchnorm)
        dn_buf_line(b, " * In training h = %s%s%s%s%s%s (pass h = NULL for eval).", L->noise > 0 ? "(a + " : "a",
                    L->noise > 0 ? sigma : "", L->noise > 0 ? " N(0,1))" : "",
                    L->dropout > 0 ? " * mask, mask = 0 or 1/(1 - " : "", L->dropout > 0 ? rate : "",
                    L->dropout > 0 ? ") per unit" : "");
    dn_buf_line(b, " * x [n, %d] (row stride %d), w: %d panels of [%d, 8], bias [%d]. */", in, input_stride(s, k),
                panels_of(L), in, L->stride);
    dn_buf_line(b, "static void %s_%s_forward(const float *restrict x, const float *restrict w,", s->name, L->name);
    if (L->batchnorm)
        dn_buf_line(b, "        const float *restrict bias, float *restrict out, int n) {");
    else
        dn_buf_line(b, "        const float *restrict bias, float *restrict a,%s%s int n%s) {",
                    L->dropout > 0 ? " float *restrict mask," : "", stoch ? " float *restrict h," : "",
                    stoch ? ", uint64_t seed, uint64_t step" : "");
    b->indent++;
    dn_buf_line(b, "#if DN_WIDE_TILES");
    emit_fwd_body(b, s, k, FWD_TILE[1]);
    dn_buf_line(b, "#else");
    emit_fwd_body(b, s, k, FWD_TILE[0]);
    dn_buf_line(b, "#endif");
    dn_buf_line(b, "dn_sync();");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

/* ---- backward_w --------------------------------------------------------------- */

typedef struct {
    const dn_spec *s;
    int k, adam, panels, inputs, vp;
} bw_ctx;

/* A dW tile of `ni` inputs x c->panels panels from input i0, panel p0. */
static void emit_bw_tile(dn_buf *b, int ni, void *vctx) {
    const bw_ctx *c = vctx;
    const dn_layer *L = &c->s->layers[c->k];
    int panels = c->panels;
    dn_buf_line(b, "const float *dp = d + (size_t)p0 * 8, *xp = x + i0;");
    if (c->adam) {
        /* The next tile's weights and moments, asked for now: this tile's
         * product hides their latency (the wide 784-2048-2048-10 net, whose
         * Adam state comes from memory: 16.7 -> 14.1 ms per step on 1
         * thread, 8.65 -> 7.63 on 2). A line holds two inputs of a panel. */
        dn_buf_line(b, "for (int j = 0; j < %d; j++)", panels);
        dn_buf_line(b, "    for (int i = 0; i < %d && i0 + %d + i < %d; i += 2) {", ni, ni, L->in);
        dn_buf_line(b, "        const size_t at = (size_t)(p0 + j) * %d + (size_t)(i0 + %d + i) * 8;", L->in * 8, ni);
        dn_buf_line(b, "        dn_prefetch_rw(w + at);");
        dn_buf_line(b, "        dn_prefetch_rw(m + at);");
        dn_buf_line(b, "        dn_prefetch_rw(v + at);");
        dn_buf_line(b, "    }");
    }
    emit_accumulators(b, ni, panels, c->vp);
    dn_buf_line(b, "for (int r = 0; r < n; r++) {");
    b->indent++;
    dn_buf_line(b, "const float *dr = dp + (size_t)r * %d, *xr = xp + (size_t)r * %d;", L->stride,
                input_stride(c->s, c->k));
    emit_tile_loads(b, panels, c->vp, "d", "dr", "%d", 8);
    emit_splat_fmas(b, ni, panels, c->vp, "d", "xr[%d]");
    b->indent--;
    dn_buf_line(b, "}");
    emit_spill(b, ni, panels, c->vp);
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
        dn_buf_line(b, "        const size_t at = (size_t)(p0 + j) * %d + (size_t)(i0 + i) * 8;", L->in * 8);
        dn_buf_line(b, "        dn_adam16(w + at, m + at, v + at, &z[i][8 * j], &z[i + 1][8 * j], ac);");
        dn_buf_line(b, "    }");
    }
    if (single == ni) return;
    dn_buf_line(b, "for (int j = 0; j < %d; j++)", panels);
    dn_buf_line(b, "    for (int i = %d; i < %d; i++) {", single, ni);
    dn_buf_line(b, "        const size_t at = (size_t)(p0 + j) * %d + (size_t)(i0 + i) * 8;", L->in * 8);
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
    const dn_layer *L = &c.s->layers[c.k];
    c.panels = panels;
    dn_buf_line(b, "if (i0 == 0)");
    dn_buf_line(b, "    for (int j = 0; j < %d; j++) {", panels);
    dn_buf_line(b, "        const int u = (p0 + j) * 8;");
    dn_buf_line(b, "        dn_v8 sum = {0};");
    dn_buf_line(b, "        for (int r = 0; r < n; r++) sum += dn_load8(d + (size_t)r * %d + u);", L->stride);
    if (c.adam) {
        dn_buf_line(b, "        float gs[8];");
        dn_buf_line(b, "        dn_store8(gs, sum);");
        dn_buf_line(b, "        dn_adam8(bias + u, m + %d + u, v + %d + u, gs, ac);", L->stride * L->in,
                    L->stride * L->in);
    } else {
        dn_buf_line(b, "        dn_store8(db + u, sum);");
    }
    dn_buf_line(b, "    }");
    dn_buf_line(b, "{");
    b->indent++;
    emit_split(b, "i0", L->in, c.inputs, emit_bw_tile, &c);
    b->indent--;
    dn_buf_line(b, "}");
}

/* The task loop of the weight-gradient kernel with tiles of shape t. */
static void emit_bw_body(dn_buf *b, const dn_spec *s, int k, int adam, tile_shape t) {
    const dn_layer *L = &s->layers[k];
    int np = panels_of(L), cblocks = (np + t.b - 1) / t.b, iblocks = (L->in + t.a - 1) / t.a;
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int t = 0; t < %d; t++) {", cblocks * iblocks);
    b->indent++;
    dn_buf_line(b, "const int p0 = (t / %d) * %d, i0 = (t %% %d) * %d;", iblocks, t.b, iblocks, t.a);
    bw_ctx c = {s, k, adam, 0, t.a, t.vp};
    emit_split(b, "p0", np, t.b, emit_bw_column, &c);
    b->indent--;
    dn_buf_line(b, "}");
}

/* The weight-gradient kernel; with `adam` the variant that applies Adam to
 * each gradient tile instead of storing it. */
static void emit_backward_w(dn_buf *b, const dn_spec *s, int k, int adam) {
    const dn_layer *L = &s->layers[k];
    int in = L->in, out = L->units;
    if (adam) {
        dn_buf_line(b, "/* Weight gradients as above, each tile applied at once by Adam to w and bias;");
        dn_buf_line(b, " * m and v hold the moments of w (%d floats) followed by those of bias. */", L->stride * in);
        dn_buf_line(b, "static void %s_%s_backward_w_adam(const float *restrict d, const float *restrict x,", s->name,
                    L->name);
        dn_buf_line(b, "        float *restrict w, float *restrict bias, float *restrict m, float *restrict v,");
        dn_buf_line(b, "        const dn_adam_coef *ac, int n) {");
    } else {
        dn_buf_line(b, "/* Weight gradients: dw [%d, %d] = d^T x (in w's panels), db [%d] = column sums of d.", out,
                    in, out);
        dn_buf_line(b, " * d [n, %d] (row stride %d), x [n, %d] (this layer's input). Each element sums", out,
                    L->stride, in);
        dn_buf_line(b, " * rows in order. */");
        dn_buf_line(b, "static void %s_%s_backward_w(const float *restrict d, const float *restrict x,", s->name,
                    L->name);
        dn_buf_line(b, "        float *restrict dw, float *restrict db, int n) {");
    }
    b->indent++;
    dn_buf_line(b, "#if DN_WIDE_TILES");
    emit_bw_body(b, s, k, adam, BW_TILE[1]);
    dn_buf_line(b, "#else");
    emit_bw_body(b, s, k, adam, BW_TILE[0]);
    dn_buf_line(b, "#endif");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

/* ---- backward_x ---------------------------------------------------------------- */

typedef struct {
    const dn_spec *s;
    int k, rows, vp;
} bx_ctx;

/* The activation's derivative for a vector of outputs `av`, or NULL for 1;
 * lane by lane the same operations as dn_act_derivative. */
static const char *act_derivative8(dn_act act) {
    switch (act) {
    case DN_ACT_RELU: return "dn_step8(av)";
    case DN_ACT_TANH: return "(dn_splat8(1.0f) - av * av)";
    case DN_ACT_SIGMOID: return "(av * (dn_splat8(1.0f) - av))";
    case DN_ACT_LINEAR:
    case DN_ACT_SOFTMAX:
    case DN_ACT_COUNT: break;
    }
    return NULL;
}

/* A tile of c->rows rows x `nv` vectors of 8 inputs from row r0, input
 * vector q0: per unit u, one d scalar per row times one vector of W^T per
 * input vector; then the previous layer's mask and derivative. Lanes past
 * the inputs come out 0 (wt holds zeros there). */
static void emit_bx_tile(dn_buf *b, int nv, void *vctx) {
    const bx_ctx *c = vctx;
    const dn_layer *L = &c->s->layers[c->k], *prev = &c->s->layers[c->k - 1];
    int out = L->units, rows = c->rows;
    const char *deriv = act_derivative8(prev->act);
    dn_buf_line(b, "const float *wq = wt + (size_t)q0 * %d;", L->stride * 8);
    emit_clamped_ptrs(b, "d", "d", "r0", "n", rows, L->stride);
    emit_accumulators(b, rows, nv, c->vp);
    dn_buf_line(b, "for (int u = 0; u < %d; u++) {", out);
    b->indent++;
    emit_tile_loads(b, nv, c->vp, "w", "wq", "%d + (size_t)u * 8", L->stride * 8);
    emit_splat_fmas(b, rows, nv, c->vp, "w", "d%d[u]");
    b->indent--;
    dn_buf_line(b, "}");
    emit_spill(b, rows, nv, c->vp);
    dn_buf_line(b, "for (int r = 0; r < nr; r++)");
    dn_buf_line(b, "    for (int j = 0; j < %d; j++) {", nv);
    b->indent += 2;
    dn_buf_line(b, "const size_t at = (size_t)(r0 + r) * %d + (size_t)(q0 + j) * 8;", prev->stride);
    dn_buf_line(b, "dn_v8 s = dn_load8(&z[r][8 * j]);");
    if (deriv) dn_buf_line(b, "const dn_v8 av = dn_load8(a_prev + at);");
    if (prev->dropout > 0) dn_buf_line(b, "const dn_v8 mv = dn_load8(mask_prev + at);");
    if (deriv || prev->dropout > 0)
        dn_buf_line(b, "s = s * (%s%s%s);", prev->dropout > 0 ? "mv" : "", prev->dropout > 0 && deriv ? " * " : "",
                    deriv ? deriv : "");
    dn_buf_line(b, "dn_store8(dx + at, s);");
    b->indent -= 2;
    dn_buf_line(b, "    }");
}

/* Transposes w's panels into wt for the input vectors [q0, q0 + nq) (q0 a
 * C expression): for each vector q of 8 inputs, the units' rows wt[q][u][0..8)
 * = W[u][8q .. 8q + 8), zero past the inputs (and, as the panels' padding,
 * past the units). Done by the calling thread. */
static void emit_bx_pack(dn_buf *b, const dn_spec *s, int k, const char *q0, int nq) {
    const dn_layer *L = &s->layers[k];
    int in = L->in, full = in / 8, np = panels_of(L);
    dn_buf_line(b, "for (int e = 0; e < %d; e++) {", nq * np);
    b->indent++;
    if (strcmp(q0, "0") == 0)
        dn_buf_line(b, "const int q = e / %d, p = e %% %d;", np, np);
    else
        dn_buf_line(b, "const int q = %s + e / %d, p = e %% %d;", q0, np, np);
    dn_buf_line(b, "const float *src = w + (size_t)p * %d + (size_t)q * 64;", in * 8);
    dn_buf_line(b, "float *dst = wt + (size_t)q * %d + (size_t)p * 64;", L->stride * 8);
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
    const dn_spec *s;
    int k;
    tile_shape t;
} bx_column_ctx;

/* One task of the input-gradient kernel: the W^T of its `nv` input vectors
 * from q0, then its tiles over all rows. */
static void emit_bx_column(dn_buf *b, int nv, void *vctx) {
    const bx_column_ctx *c = vctx;
    emit_bx_pack(b, c->s, c->k, "q0", nv);
    dn_buf_line(b, "for (int r0 = 0; r0 < n; r0 += %d) {", c->t.a);
    b->indent++;
    dn_buf_line(b, "const int nr = n - r0 < %d ? n - r0 : %d;", c->t.a, c->t.a);
    bx_ctx x = {c->s, c->k, c->t.a, c->t.vp};
    emit_bx_tile(b, nv, &x);
    b->indent--;
    dn_buf_line(b, "}");
}

/* The task loop of the input-gradient kernel with tiles of shape t: a task
 * is a column of t.b input vectors, so the W^T a thread packs is the W^T it
 * reads, and no barrier separates the two. */
static void emit_bx_body(dn_buf *b, const dn_spec *s, int k, tile_shape t) {
    int nq = (s->layers[k].in + 7) / 8, qblocks = (nq + t.b - 1) / t.b;
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int t = 0; t < %d; t++) {", qblocks);
    b->indent++;
    dn_buf_line(b, "const int q0 = t * %d;", t.b);
    bx_column_ctx c = {s, k, t};
    emit_split(b, "q0", nq, t.b, emit_bx_column, &c);
    b->indent--;
    dn_buf_line(b, "}");
}

static void emit_backward_x(dn_buf *b, const dn_spec *s, int k) {
    const dn_layer *L = &s->layers[k], *prev = &s->layers[k - 1];
    int in = L->in, out = L->units;
    const char *deriv = dn_act_derivative(prev->act);
    dn_buf_line(b, "/* Input gradient, into %s: d_prev [n, %d] (row stride %d) = (d W)%s%s,", prev->name, in,
                prev->stride, prev->dropout > 0 ? " * mask_prev" : "", deriv ? " * act'(a_prev)" : "");
    dn_buf_line(b, " * zero past %d. d [n, %d] (row stride %d), w: %d panels of [%d, 8]. Per column of", in, out,
                L->stride, panels_of(L), in);
    dn_buf_line(b, " * input vectors, its W^T into wt (%d vectors of 8 inputs x %d units x 8), then tiles", (in + 7) / 8,
                L->stride);
    dn_buf_line(b, " * of rows x input vectors down the column, an outer product over the units: each");
    dn_buf_line(b, " * element sums units in order. */");
    dn_buf_line(b, "static void %s_%s_backward_x(const float *restrict d, const float *restrict w, float *restrict wt,",
                s->name, L->name);
    dn_buf_line(b, "        float *restrict dx, const float *restrict mask_prev, const float *restrict a_prev, int n) {");
    b->indent++;
    if (prev->dropout <= 0) dn_buf_line(b, "(void)mask_prev;");
    if (!deriv) dn_buf_line(b, "(void)a_prev;");
    dn_buf_line(b, "#if DN_WIDE_TILES");
    emit_bx_body(b, s, k, BX_TILE[1]);
    dn_buf_line(b, "#else");
    emit_bx_body(b, s, k, BX_TILE[0]);
    dn_buf_line(b, "#endif");
    dn_buf_line(b, "dn_sync();");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

void dn_emit_layer_kernels(dn_buf *b, const dn_spec *s, int k, int forward_only) {
    const dn_layer *L = &s->layers[k];
    char rate[32];
    dn_format_rate(rate, sizeof rate, L->dropout);
    char sigma[32];
    dn_format_rate(sigma, sizeof sigma, L->noise);
    dn_buf_line(b, "/* ==== %s: dense %d -> %d, %s%s%s%s%s%s ==== */", L->name, L->in, L->units,
                L->batchnorm ? "batch norm, " : "", dn_act_name(L->act), L->noise > 0 ? ", noise " : "",
                L->noise > 0 ? sigma : "", L->dropout > 0 ? ", dropout " : "", L->dropout > 0 ? rate : "");
    dn_buf_blank(b);
    emit_forward(b, s, k);
    if (L->batchnorm) dn_emit_bn_kernels(b, s, k, forward_only);
    if (forward_only) return;
    emit_backward_w(b, s, k, 0);
    emit_backward_w(b, s, k, 1);
    if (dn_own_backward_x(s, k)) emit_backward_x(b, s, k);
}

int dn_own_backward_x(const dn_spec *s, int k) { return k > 0 && !(k == s->n_layers - 1 && dn_fused_head(s)); }

/* ---- the fused head of the training step ----------------------------------- */

/* Most floats of W^T a head keeps on each thread's stack (64 KiB). */
enum { HEAD_WT_MAX = 16384 };

static size_t head_wt_floats(const dn_spec *s) {
    const dn_layer *L = &s->layers[s->n_layers - 1];
    return (size_t)(L->in + 7) / 8 * (size_t)L->stride * 8;
}

int dn_fused_head(const dn_spec *s) {
    const dn_layer *L = &s->layers[s->n_layers - 1];
    int np = panels_of(L);
    return s->n_layers > 1 && !L->batchnorm && !dn_layer_stochastic(L) && np <= FWD_TILE[0].b &&
           np <= FWD_TILE[1].b && head_wt_floats(s) <= HEAD_WT_MAX;
}

/* The head's task loop with tiles of shape fwd (rows x panels) and bx (rows
 * x input vectors; the same rows): per block of rows, the forward tile over
 * all the layer's panels, the loss of each row, then the input gradient
 * tiles across all input vectors. */
static void emit_head_body(dn_buf *b, const dn_spec *s, tile_shape fwd, tile_shape bx) {
    int k = s->n_layers - 1, nq = (s->layers[k].in + 7) / 8;
    const dn_layer *L = &s->layers[k];
    dn_buf_line(b, "const int row_blocks = (n + %d) / %d;", fwd.a - 1, fwd.a);
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int t = 0; t < row_blocks; t++) {");
    b->indent++;
    dn_buf_line(b, "const int r0 = t * %d, nr = n - r0 < %d ? n - r0 : %d;", fwd.a, fwd.a, fwd.a);
    dn_buf_line(b, "{");
    b->indent++;
    dn_buf_line(b, "const int p0 = 0;");
    fwd_ctx fc = {s, k, fwd.a, fwd.vp};
    emit_split(b, "p0", panels_of(L), fwd.b, emit_fwd_tile, &fc);
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_line(b, "for (int r = r0; r < r0 + nr; r++) {");
    b->indent++;
    dn_buf_line(b, "const float *zr = a + (size_t)r * %d;", L->stride);
    dn_emit_loss_row(b, s, 1);
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_line(b, "for (int q0 = 0; q0 < %d; q0 += %d) {", nq, bx.b);
    b->indent++;
    bx_ctx xc = {s, k, bx.a, bx.vp};
    emit_split(b, "q0", nq, bx.b, emit_bx_tile, &xc);
    b->indent--;
    dn_buf_line(b, "}");
    b->indent--;
    dn_buf_line(b, "}");
}

void dn_emit_head(dn_buf *b, const dn_spec *s) {
    int k = s->n_layers - 1;
    const dn_layer *L = &s->layers[k], *prev = &s->layers[k - 1];
    const char *deriv = dn_act_derivative(prev->act);
    dn_buf_line(b, "/* ==== training head: %s forward, loss, %s input gradient ==== */", L->name, L->name);
    dn_buf_blank(b);
    dn_buf_line(b, "/* %s_%s_forward, %s_loss (training: y and d set, no output) and", s->name, L->name, s->name);
    dn_buf_line(b, " * %s_%s_backward_x in one kernel: per block of rows a [n, %d], rowloss, hits and", s->name,
                L->name, L->units);
    dn_buf_line(b, " * d = dloss/dz [n, %d], then dx [n, %d] = (d W)%s%s. A row's input gradient",
                L->units, L->in, prev->dropout > 0 ? " * mask_prev" : "", deriv ? " * act'(a_prev)" : "");
    dn_buf_line(b, " * needs only its own d, so there is no barrier between the three; each thread");
    dn_buf_line(b, " * transposes W into its own wt. The sums are those of the three kernels. */");
    dn_buf_line(b, "static void %s_head(const float *restrict x, const float *restrict w, const float *restrict bias,",
                s->name);
    dn_buf_line(b, "        float *restrict a, const int32_t *restrict y, float *restrict d, float *restrict rowloss,");
    dn_buf_line(b, "        float *restrict hits, float *restrict dx, const float *restrict mask_prev,");
    dn_buf_line(b, "        const float *restrict a_prev, int n) {");
    b->indent++;
    if (prev->dropout <= 0) dn_buf_line(b, "(void)mask_prev;");
    if (!deriv) dn_buf_line(b, "(void)a_prev;");
    dn_buf_line(b, "_Alignas(64) float wt[%zu];", head_wt_floats(s));
    emit_bx_pack(b, s, k, "0", (L->in + 7) / 8);
    dn_buf_line(b, "const float inv_n = 1.0f / (float)n;");
    dn_buf_line(b, "(void)inv_n;");
    dn_buf_line(b, "#if DN_WIDE_TILES");
    emit_head_body(b, s, FWD_TILE[1], BX_TILE[1]);
    dn_buf_line(b, "#else");
    emit_head_body(b, s, FWD_TILE[0], BX_TILE[0]);
    dn_buf_line(b, "#endif");
    dn_buf_line(b, "dn_sync();");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}
