/* emit_layer.c - per-layer kernels with every size a literal constant.
 *
 * For layer k (fan-in I, units O) three kernels are written, each an orphaned
 * `#pragma omp for` that the model's single parallel region calls:
 *
 *   forward     a = act(x W^T + b), then in training h = a * mask (inverted
 *               dropout). Register tiles of FWD_RB rows x FWD_CB units; each
 *               output sums 8 lanes over k, then the lanes in a fixed order.
 *   backward_w  dW = d^T x, db = sum over rows of d. Tiles of BW_OB units x
 *               8*nv inputs; every element sums over rows in row order.
 *   backward_x  d_prev = (d W) * mask_prev * act'(a_prev), for k > 0. Tiles
 *               of BX_RB rows x 8*nv inputs; every element sums over units
 *               in unit order.
 *
 * Tiles never change an element's order of summation: rows past n and units
 * past O are served by clamped pointers and their results dropped, and the
 * column remainder has its own (equally ordered) code. So the result of
 * every element is the same whatever the batch split or thread count.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "emit.h"

/* Tile shapes. The gradient tiles come in two widths, chosen when the
 * trainer is compiled (DN_WIDE_TILES, see the prelude): with 32 vector
 * registers (AVX-512VL) twice as many input columns per tile. The shape never
 * changes an element's order of summation, so both give identical results. */
enum { FWD_RB = 3, FWD_CB = 4, BW_OB = 4, BX_RB = 4, NV_NARROW = 3, NV_WIDE = 6 };

/* Expression applying the activation to float `v`. */
static const char *act_expr(dn_act act) {
    switch (act) {
    case DN_ACT_RELU: return "v > 0.0f ? v : 0.0f";
    case DN_ACT_TANH: return "tanhf(v)";
    case DN_ACT_SIGMOID: return "1.0f / (1.0f + expf(-v))";
    case DN_ACT_LINEAR:
    case DN_ACT_SOFTMAX: /* softmax is applied by the loss */
    case DN_ACT_COUNT: break;
    }
    return "v";
}

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

/* Declares pointer `name<i>` = base + clamp(first + i) * stride for i < count:
 * indices past `limit_expr` (a C expression) reuse the last valid one. */
static void emit_clamped_ptrs(dn_buf *b, const char *name, const char *base, const char *first,
                              const char *limit, int count, int stride, int always_valid) {
    for (int i = 0; i < count; i++) {
        if (i == 0 || always_valid)
            dn_buf_line(b, "const float *%s%d = %s + (size_t)(%s + %d) * %d;", name, i, base, first, i,
                        stride);
        else
            dn_buf_line(b, "const float *%s%d = %s + (size_t)(%s + %d < %s ? %s + %d : %s - 1) * %d;",
                        name, i, base, first, i, limit, first, i, limit, stride);
    }
}

/* Declares the zeroed accumulators c<r><j> of a rows x cols register tile. */
static void emit_accumulators(dn_buf *b, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        dn_buf_printf(b, "%*sdn_v8 ", 4 * b->indent, "");
        for (int j = 0; j < cols; j++) dn_buf_printf(b, "c%d%d = {0}%s", r, j, j + 1 < cols ? ", " : ";\n");
    }
}

/* One step of a broadcast outer product: for each tile row r, splat the
 * scalar `scalar_fmt` (a format taking r) and accumulate it times the
 * vectors <vec>0..<vec>(nv-1) into c<r>0..c<r>(nv-1). */
static void emit_splat_fmas(dn_buf *b, int rows, int nv, const char *vec, const char *scalar_fmt) {
    for (int r = 0; r < rows; r++) {
        char scalar[64];
        snprintf(scalar, sizeof scalar, scalar_fmt, r);
        dn_buf_line(b, "%sg = dn_splat8(%s);", r == 0 ? "dn_v8 " : "", scalar);
        for (int v = 0; v < nv; v++) dn_buf_line(b, "c%d%d = dn_fma8(g, %s%d, c%d%d);", r, v, vec, v, r, v);
    }
}

/* ---- forward ---------------------------------------------------------------- */

static void emit_forward_tile(dn_buf *b, int in) {
    int kv = in - in % 8; /* inputs covered by 8-wide steps */
    emit_accumulators(b, FWD_RB, FWD_CB);
    if (kv > 0) {
        dn_buf_line(b, "for (int k = 0; k < %d; k += 8) {", kv);
        b->indent++;
        for (int r = 0; r < FWD_RB; r++) dn_buf_line(b, "const dn_v8 x%dv = dn_load8(x%d + k);", r, r);
        for (int c = 0; c < FWD_CB; c++) {
            dn_buf_line(b, "%swv = dn_load8(w%d + k);", c == 0 ? "dn_v8 " : "", c);
            for (int r = 0; r < FWD_RB; r++) dn_buf_line(b, "c%d%d = dn_fma8(x%dv, wv, c%d%d);", r, c, r, r, c);
        }
        b->indent--;
        dn_buf_line(b, "}");
    }
    dn_buf_line(b, "float z[%d][%d] = {", FWD_RB, FWD_CB);
    for (int r = 0; r < FWD_RB; r++)
        dn_buf_line(b, "    {dn_hsum8(c%d0), dn_hsum8(c%d1), dn_hsum8(c%d2), dn_hsum8(c%d3)},", r, r, r, r);
    dn_buf_line(b, "};");
    if (kv < in) {
        dn_buf_line(b, "for (int k = %d; k < %d; k++) {", kv, in);
        b->indent++;
        for (int r = 0; r < FWD_RB; r++)
            for (int c = 0; c < FWD_CB; c++) dn_buf_line(b, "z[%d][%d] += x%d[k] * w%d[k];", r, c, r, c);
        b->indent--;
        dn_buf_line(b, "}");
    }
}

int dn_layer_stochastic(const dn_layer *L) { return L->dropout > 0 || L->noise > 0; }

/* Bias, activation and (in training) noise and dropout for the rows of one tile. */
static void emit_forward_epilogue(dn_buf *b, const dn_spec *s, int k) {
    const dn_layer *L = &s->layers[k];
    int out = L->units;
    const char *nc = out % FWD_CB ? "nc" : "4";
    dn_buf_line(b, "for (int r = 0; r < nr; r++) {");
    b->indent++;
    dn_buf_line(b, "const size_t row = (size_t)(r0 + r);");
    if (L->dropout > 0) {
        char scale[40];
        dn_float_literal(scale, sizeof scale, dn_dropout_scale(L->dropout));
        dn_buf_line(b, "float m[4] = {0};");
        dn_buf_line(b, "if (h)");
        dn_buf_line(b, "    dn_dropout4(seed, step, %d, (uint32_t)row, (uint32_t)o0, %" PRIu32 "u, %s, m);", k + 1,
                    dn_dropout_threshold_of(L->dropout), scale);
    }
    if (L->noise > 0) {
        dn_buf_line(b, "float g[4] = {0};");
        dn_buf_line(b, "if (h) dn_gauss4(seed, step, %d, (uint32_t)row, (uint32_t)o0, g);", k + 1);
    }
    dn_buf_line(b, "for (int c = 0; c < %s; c++) {", nc);
    b->indent++;
    dn_buf_line(b, "const float v = z[r][c] + bias[o0 + c];");
    dn_buf_line(b, "const float y = %s;", act_expr(L->act));
    dn_buf_line(b, "a[row * %d + o0 + c] = y;", out);
    if (dn_layer_stochastic(L)) {
        char sigma[40];
        dn_float_literal(sigma, sizeof sigma, (float)L->noise);
        dn_buf_line(b, "if (h) {");
        if (L->dropout > 0) dn_buf_line(b, "    mask[row * %d + o0 + c] = m[c];", out);
        dn_buf_line(b, "    h[row * %d + o0 + c] = %s%s%s%s;", out, L->noise > 0 ? "(y + " : "y",
                    L->noise > 0 ? sigma : "", L->noise > 0 ? " * g[c])" : "", L->dropout > 0 ? " * m[c]" : "");
        dn_buf_line(b, "}");
    }
    b->indent--;
    dn_buf_line(b, "}");
    b->indent--;
    dn_buf_line(b, "}");
}

static void emit_forward(dn_buf *b, const dn_spec *s, int k) {
    const dn_layer *L = &s->layers[k];
    int in = L->in, out = L->units, cblocks = (out + FWD_CB - 1) / FWD_CB;
    char rate[32], sigma[32];
    dn_format_rate(rate, sizeof rate, L->dropout);
    dn_format_rate(sigma, sizeof sigma, L->noise);
    dn_buf_line(b, "/* Forward: a = %s(x W^T + b) [n, %d].", dn_act_name(L->act), out);
    if (dn_layer_stochastic(L))
        dn_buf_line(b, " * In training h = %s%s%s%s%s%s (pass h = NULL for eval).", L->noise > 0 ? "(a + " : "a",
                    L->noise > 0 ? sigma : "", L->noise > 0 ? " N(0,1))" : "",
                    L->dropout > 0 ? " * mask, mask = 0 or 1/(1 - " : "", L->dropout > 0 ? rate : "",
                    L->dropout > 0 ? ") per unit" : "");
    dn_buf_line(b, " * x [n, %d], w [%d, %d], bias [%d]. Tiles of %d rows x %d units. */", in, out, in, out,
                FWD_RB, FWD_CB);
    dn_buf_line(b, "static void %s_%s_forward(const float *restrict x, const float *restrict w,", s->name, L->name);
    dn_buf_line(b, "        const float *restrict bias, float *restrict a,%s%s int n%s) {",
                L->dropout > 0 ? " float *restrict mask," : "", dn_layer_stochastic(L) ? " float *restrict h," : "",
                dn_layer_stochastic(L) ? ", uint64_t seed, uint64_t step" : "");
    b->indent++;
    dn_buf_line(b, "const int row_blocks = (n + %d) / %d;", FWD_RB - 1, FWD_RB);
    dn_buf_line(b, "DN_OMP(omp for schedule(static))");
    dn_buf_line(b, "for (int t = 0; t < %d * row_blocks; t++) {", cblocks);
    b->indent++;
    dn_buf_line(b, "const int o0 = (t / row_blocks) * %d, r0 = (t %% row_blocks) * %d;", FWD_CB, FWD_RB);
    dn_buf_line(b, "const int nr = n - r0 < %d ? n - r0 : %d;", FWD_RB, FWD_RB);
    if (out % FWD_CB) dn_buf_line(b, "const int nc = %d - o0 < %d ? %d - o0 : %d;", out, FWD_CB, out, FWD_CB);
    emit_clamped_ptrs(b, "x", "x", "r0", "n", FWD_RB, in, 0);
    {
        char limit[16];
        snprintf(limit, sizeof limit, "%d", out);
        emit_clamped_ptrs(b, "w", "w", "o0", limit, FWD_CB, in, out % FWD_CB == 0);
    }
    emit_forward_tile(b, in);
    emit_forward_epilogue(b, s, k);
    b->indent--;
    dn_buf_line(b, "}");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

typedef void (*body_emitter)(dn_buf *b, const dn_spec *s, int k, int flag, int nv);
static void emit_bw_body(dn_buf *b, const dn_spec *s, int k, int adam, int nv);
static void emit_bx_body(dn_buf *b, const dn_spec *s, int k, int unused, int nv);

/* Emits body(nv) for both tile widths under #if DN_WIDE_TILES, or only the
 * narrow one when the layer is too small for wide tiles to matter. */
static void emit_wide_switch(dn_buf *b, const dn_spec *s, int k, int flag, body_emitter body, int worth_it) {
    if (!worth_it) {
        body(b, s, k, flag, NV_NARROW);
        return;
    }
    dn_buf_line(b, "#if DN_WIDE_TILES");
    body(b, s, k, flag, NV_WIDE);
    dn_buf_line(b, "#else");
    body(b, s, k, flag, NV_NARROW);
    dn_buf_line(b, "#endif");
}

/* ---- backward_w --------------------------------------------------------------- */

/* One dW tile of BW_OB units x nv vectors starting at column i0 (a C expression). */
static void emit_bw_tile(dn_buf *b, int in, int out, int nv, const char *i0, int adam) {
    dn_buf_line(b, "{");
    b->indent++;
    for (int o = 0; o < BW_OB; o++) dn_buf_line(b, "const int u%d = o0 + (%d < nu ? %d : nu - 1);", o, o, o);
    emit_accumulators(b, BW_OB, nv);
    dn_buf_line(b, "for (int r = 0; r < n; r++) {");
    b->indent++;
    dn_buf_line(b, "const float *xr = x + (size_t)r * %d + %s;", in, i0);
    dn_buf_line(b, "const float *dr = d + (size_t)r * %d;", out);
    for (int v = 0; v < nv; v++) dn_buf_line(b, "const dn_v8 x%d = dn_load8(xr + %d);", v, 8 * v);
    emit_splat_fmas(b, BW_OB, nv, "x", "dr[u%d]");
    b->indent--;
    dn_buf_line(b, "}");
    for (int o = 0; o < BW_OB; o++) {
        dn_buf_line(b, "if (%d < nu) {", o);
        b->indent++;
        if (adam) dn_buf_line(b, "float grad[8];");
        for (int v = 0; v < nv; v++) {
            char at[96];
            snprintf(at, sizeof at, "(size_t)(o0 + %d) * %d + %s + %d", o, in, i0, 8 * v);
            if (adam) {
                dn_buf_line(b, "dn_store8(grad, c%d%d);", o, v);
                dn_buf_line(b, "dn_adam8(w + %s, m + %s, v + %s, grad, ac);", at, at, at);
            } else {
                dn_buf_line(b, "dn_store8(dw + %s, c%d%d);", at, o, v);
            }
        }
        b->indent--;
        dn_buf_line(b, "}");
    }
    b->indent--;
    dn_buf_line(b, "}");
}

/* The weight-gradient kernel; with `adam` the variant that applies Adam to
 * each gradient tile instead of storing it. */
static void emit_backward_w(dn_buf *b, const dn_spec *s, int k, int adam) {
    const dn_layer *L = &s->layers[k];
    int in = L->in, out = L->units;
    if (adam) {
        dn_buf_line(b, "/* Weight gradients as above, each tile applied at once by Adam to w [%d, %d] and", out, in);
        dn_buf_line(b, " * bias [%d]; m and v hold the moments of w followed by those of bias. */", out);
        dn_buf_line(b, "static void %s_%s_backward_w_adam(const float *restrict d, const float *restrict x,", s->name,
                    L->name);
        dn_buf_line(b, "        float *restrict w, float *restrict bias, float *restrict m, float *restrict v,");
        dn_buf_line(b, "        const dn_adam_coef *ac, int n) {");
    } else {
        dn_buf_line(b, "/* Weight gradients: dw [%d, %d] = d^T x, db [%d] = column sums of d.", out, in, out);
        dn_buf_line(b, " * d [n, %d], x [n, %d] (this layer's input). Each element sums rows in order. */", out, in);
        dn_buf_line(b, "static void %s_%s_backward_w(const float *restrict d, const float *restrict x,", s->name,
                    L->name);
        dn_buf_line(b, "        float *restrict dw, float *restrict db, int n) {");
    }
    b->indent++;
    emit_wide_switch(b, s, k, adam, emit_bw_body, in >= 8 * NV_WIDE);
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

/* The task loop of the weight-gradient kernel with tiles of nv vectors. */
static void emit_bw_body(dn_buf *b, const dn_spec *s, int k, int adam, int nv) {
    const dn_layer *L = &s->layers[k];
    int in = L->in, out = L->units;
    int full = in / (8 * nv), rem_v = (in % (8 * nv)) / 8, tail = in % 8;
    int jobs = full + (rem_v || tail ? 1 : 0), oblocks = (out + BW_OB - 1) / BW_OB;
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int t = 0; t < %d; t++) {", oblocks * jobs);
    b->indent++;
    dn_buf_line(b, "const int o0 = (t / %d) * %d, job = t %% %d;", jobs, BW_OB, jobs);
    dn_buf_line(b, "const int nu = %d - o0 < %d ? %d - o0 : %d;", out, BW_OB, out, BW_OB);
    dn_buf_line(b, "if (job == 0)");
    dn_buf_line(b, "    for (int u = 0; u < nu; u++) {");
    dn_buf_line(b, "        float sum = 0.0f;");
    dn_buf_line(b, "        for (int r = 0; r < n; r++) sum += d[(size_t)r * %d + o0 + u];", out);
    if (adam)
        dn_buf_line(b, "        dn_adam1(&bias[o0 + u], &m[%d + o0 + u], &v[%d + o0 + u], sum, ac);", out * in,
                    out * in);
    else
        dn_buf_line(b, "        db[o0 + u] = sum;");
    dn_buf_line(b, "    }");
    if (full > 0) {
        dn_buf_line(b, "if (job < %d) {", full);
        b->indent++;
        dn_buf_line(b, "const int i0 = job * %d;", 8 * nv);
        emit_bw_tile(b, in, out, nv, "i0", adam);
        b->indent--;
        dn_buf_line(b, "}");
    }
    if (rem_v || tail) {
        dn_buf_line(b, "if (job == %d) {", full);
        b->indent++;
        if (rem_v) {
            char i0[32];
            snprintf(i0, sizeof i0, "%d", full * 8 * nv);
            emit_bw_tile(b, in, out, rem_v, i0, adam);
        }
        if (tail) {
            dn_buf_line(b, "for (int u = 0; u < nu; u++)");
            dn_buf_line(b, "    for (int i = %d; i < %d; i++) {", in - tail, in);
            dn_buf_line(b, "        float sum = 0.0f;");
            dn_buf_line(b, "        for (int r = 0; r < n; r++)");
            dn_buf_line(b, "            sum += d[(size_t)r * %d + o0 + u] * x[(size_t)r * %d + i];", out, in);
            if (adam)
                dn_buf_line(b, "        dn_adam1(&w[(size_t)(o0 + u) * %d + i], &m[(size_t)(o0 + u) * %d + i],", in, in);
            if (adam)
                dn_buf_line(b, "                 &v[(size_t)(o0 + u) * %d + i], sum, ac);", in);
            else
                dn_buf_line(b, "        dw[(size_t)(o0 + u) * %d + i] = sum;", in);
            dn_buf_line(b, "    }");
        }
        b->indent--;
        dn_buf_line(b, "}");
    }
    b->indent--;
    dn_buf_line(b, "}");
}

/* ---- backward_x ---------------------------------------------------------------- */

/* Multiplies the gradient just stored at dxr[0..count) by the previous
 * layer's dropout mask and activation derivative. */
static void emit_bx_fixup(dn_buf *b, const dn_layer *prev, int in, const char *count) {
    const char *deriv = dn_act_derivative(prev->act);
    if (!deriv && prev->dropout <= 0) return;
    dn_buf_line(b, "for (int i = 0; i < %s; i++) {", count);
    b->indent++;
    if (deriv) dn_buf_line(b, "const float a = ap[i];");
    dn_buf_line(b, "dxr[i] *= %s%s%s;", prev->dropout > 0 ? "mp[i]" : "", prev->dropout > 0 && deriv ? " * " : "",
                deriv ? deriv : "");
    b->indent--;
    dn_buf_line(b, "}");
    (void)in;
}

/* Row pointers into dx, mask_prev and a_prev for row `row` at column expression i0. */
static void emit_bx_row_ptrs(dn_buf *b, const dn_layer *prev, int in, const char *i0) {
    dn_buf_line(b, "float *dxr = dx + row * %d + %s;", in, i0);
    if (dn_act_derivative(prev->act)) dn_buf_line(b, "const float *ap = a_prev + row * %d + %s;", in, i0);
    if (prev->dropout > 0) dn_buf_line(b, "const float *mp = mask_prev + row * %d + %s;", in, i0);
}

static void emit_bx_tile(dn_buf *b, const dn_layer *L, const dn_layer *prev, int nv, const char *i0) {
    int in = L->in, out = L->units;
    dn_buf_line(b, "{");
    b->indent++;
    emit_clamped_ptrs(b, "d", "d", "r0", "n", BX_RB, out, 0);
    emit_accumulators(b, BX_RB, nv);
    dn_buf_line(b, "for (int u = 0; u < %d; u++) {", out);
    b->indent++;
    dn_buf_line(b, "const float *wr = w + (size_t)u * %d + %s;", in, i0);
    for (int v = 0; v < nv; v++) dn_buf_line(b, "const dn_v8 w%d = dn_load8(wr + %d);", v, 8 * v);
    emit_splat_fmas(b, BX_RB, nv, "w", "d%d[u]");
    b->indent--;
    dn_buf_line(b, "}");
    for (int r = 0; r < BX_RB; r++) {
        dn_buf_line(b, "if (%d < nr) {", r);
        b->indent++;
        dn_buf_line(b, "const size_t row = (size_t)(r0 + %d);", r);
        emit_bx_row_ptrs(b, prev, in, i0);
        for (int v = 0; v < nv; v++) dn_buf_line(b, "dn_store8(dxr + %d, c%d%d);", 8 * v, r, v);
        char count[16];
        snprintf(count, sizeof count, "%d", 8 * nv);
        emit_bx_fixup(b, prev, in, count);
        b->indent--;
        dn_buf_line(b, "}");
    }
    b->indent--;
    dn_buf_line(b, "}");
}

static void emit_backward_x(dn_buf *b, const dn_spec *s, int k) {
    const dn_layer *L = &s->layers[k], *prev = &s->layers[k - 1];
    int in = L->in, out = L->units;
    const char *deriv = dn_act_derivative(prev->act);
    dn_buf_line(b, "/* Input gradient, into %s: d_prev [n, %d] = (d W)%s%s.", prev->name, in,
                prev->dropout > 0 ? " * mask_prev" : "", deriv ? " * act'(a_prev)" : "");
    dn_buf_line(b, " * d [n, %d], w [%d, %d]. Each element sums units in order. */", out, out, in);
    dn_buf_line(b, "static void %s_%s_backward_x(const float *restrict d, const float *restrict w,", s->name, L->name);
    dn_buf_line(b, "        float *restrict dx, const float *restrict mask_prev, const float *restrict a_prev, int n) {");
    b->indent++;
    if (prev->dropout <= 0) dn_buf_line(b, "(void)mask_prev;");
    if (!deriv) dn_buf_line(b, "(void)a_prev;");
    emit_wide_switch(b, s, k, 0, emit_bx_body, in >= 8 * NV_WIDE);
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

/* The task loop of the input-gradient kernel with tiles of nv vectors. */
static void emit_bx_body(dn_buf *b, const dn_spec *s, int k, int unused, int nv) {
    const dn_layer *L = &s->layers[k], *prev = &s->layers[k - 1];
    int in = L->in;
    int full = in / (8 * nv), rem_v = (in % (8 * nv)) / 8, tail = in % 8;
    int jobs = full + (rem_v || tail ? 1 : 0);
    (void)unused;
    dn_buf_line(b, "const int row_blocks = (n + %d) / %d;", BX_RB - 1, BX_RB);
    dn_buf_line(b, "DN_OMP(omp for schedule(static))");
    dn_buf_line(b, "for (int t = 0; t < %d * row_blocks; t++) {", jobs);
    b->indent++;
    dn_buf_line(b, "const int job = t / row_blocks, r0 = (t %% row_blocks) * %d;", BX_RB);
    dn_buf_line(b, "const int nr = n - r0 < %d ? n - r0 : %d;", BX_RB, BX_RB);
    if (full > 0) {
        dn_buf_line(b, "if (job < %d) {", full);
        b->indent++;
        dn_buf_line(b, "const int i0 = job * %d;", 8 * nv);
        emit_bx_tile(b, L, prev, nv, "i0");
        b->indent--;
        dn_buf_line(b, "}");
    }
    if (rem_v || tail) {
        dn_buf_line(b, "if (job == %d) {", full);
        b->indent++;
        if (rem_v) {
            char i0[32];
            snprintf(i0, sizeof i0, "%d", full * 8 * nv);
            emit_bx_tile(b, L, prev, rem_v, i0);
        }
        if (tail) {
            char i0[32], count[16];
            snprintf(i0, sizeof i0, "%d", in - tail);
            snprintf(count, sizeof count, "%d", tail);
            dn_buf_line(b, "for (int r = 0; r < nr; r++) {");
            b->indent++;
            dn_buf_line(b, "const size_t row = (size_t)(r0 + r);");
            emit_bx_row_ptrs(b, prev, in, i0);
            dn_buf_line(b, "for (int i = 0; i < %d; i++) {", tail);
            dn_buf_line(b, "    float sum = 0.0f;");
            dn_buf_line(b, "    for (int u = 0; u < %d; u++) sum += d[row * %d + u] * w[(size_t)u * %d + %d + i];",
                        L->units, L->units, in, in - tail);
            dn_buf_line(b, "    dxr[i] = sum;");
            dn_buf_line(b, "}");
            emit_bx_fixup(b, prev, in, count);
            b->indent--;
            dn_buf_line(b, "}");
        }
        b->indent--;
        dn_buf_line(b, "}");
    }
    b->indent--;
    dn_buf_line(b, "}");
}

void dn_emit_layer_kernels(dn_buf *b, const dn_spec *s, int k, int forward_only) {
    const dn_layer *L = &s->layers[k];
    char rate[32];
    dn_format_rate(rate, sizeof rate, L->dropout);
    char sigma[32];
    dn_format_rate(sigma, sizeof sigma, L->noise);
    dn_buf_line(b, "/* ==== %s: dense %d -> %d, %s%s%s%s%s ==== */", L->name, L->in, L->units, dn_act_name(L->act),
                L->noise > 0 ? ", noise " : "", L->noise > 0 ? sigma : "", L->dropout > 0 ? ", dropout " : "",
                L->dropout > 0 ? rate : "");
    dn_buf_blank(b);
    emit_forward(b, s, k);
    if (forward_only) return;
    emit_backward_w(b, s, k, 0);
    emit_backward_w(b, s, k, 1);
    if (k > 0) emit_backward_x(b, s, k);
}
