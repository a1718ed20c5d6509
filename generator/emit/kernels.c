/* kernels.c - the kernel pieces kinds share (kernels.h). */
#include "kernels.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int dn_vec_count(int panels, int vp) { return (panels + vp - 1) / vp; }

int dn_vec_wide(int j, int panels, int vp) { return vp == 2 && 2 * j + 1 < panels; }

/* ---- register tiles ---------------------------------------------------------- */

/* Declares pointer `name<i>` = base + clamp(first + i) * stride for i < count:
 * indices at or past `limit` (a C expression) reuse the last valid one. */
void dn_emit_clamped_ptrs(dn_buf *b, const char *name, const char *base, const char *first,
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
void dn_emit_accumulators(dn_buf *b, int rows, int panels, int vp) {
    int nv = dn_vec_count(panels, vp), n16 = vp == 2 ? panels / 2 : 0;
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
void dn_emit_splat_fmas(dn_buf *b, int rows, int panels, int vp, const char *vec, const char *scalar_fmt) {
    int nv = dn_vec_count(panels, vp);
    for (int r = 0; r < rows; r++) {
        char scalar[64];
        snprintf(scalar, sizeof scalar, scalar_fmt, r);
        dn_buf_line(b, "%sg = dn_splat%d(%s);", r == 0 ? (vp == 2 ? "dn_v16 " : "dn_v8 ") : "", 8 * vp, scalar);
        for (int v = 0; v < nv; v++) {
            if (dn_vec_wide(v, panels, vp))
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
/* The address `base` + (at_fmt with offset): without a "+ 0" term. */
static void tile_address(char *dst, size_t n, const char *base, const char *at_fmt, int offset) {
    char at[80];
    snprintf(at, sizeof at, at_fmt, offset);
    if (strcmp(at, "0") == 0)
        snprintf(dst, n, "%s", base);
    else if (strncmp(at, "0 + ", 4) == 0)
        snprintf(dst, n, "%s + %s", base, at + 4);
    else
        snprintf(dst, n, "%s + %s", base, at);
}

void dn_emit_tile_loads(dn_buf *b, int panels, int vp, const char *vec, const char *base, const char *at_fmt,
                        int step) {
    for (int j = 0; j < dn_vec_count(panels, vp); j++) {
        char a0[160], a1[160];
        tile_address(a0, sizeof a0, base, at_fmt, j * vp * step);
        tile_address(a1, sizeof a1, base, at_fmt, (j * vp + 1) * step);
        if (dn_vec_wide(j, panels, vp) && step == 8) /* adjacent: one load */
            dn_buf_line(b, "const dn_v16 %s%d = dn_load16(%s);", vec, j, a0);
        else if (dn_vec_wide(j, panels, vp))
            dn_buf_line(b, "const dn_v16 %s%d = dn_load8x2(%s, %s);", vec, j, a0, a1);
        else
            dn_buf_line(b, "const dn_v8 %s%d = dn_load8(%s);", vec, j, a0);
    }
}

/* Spills the accumulators of a rows x `panels` tile into float
 * z[rows][8 * panels]: panel j of row r at z[r][8 * j]. */
void dn_emit_spill(dn_buf *b, int rows, int panels, int vp) {
    dn_buf_line(b, "float z[%d][%d];", rows, 8 * panels);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < dn_vec_count(panels, vp); j++)
            dn_buf_line(b, "dn_store%d(&z[%d][%d], c%d%d);", dn_vec_wide(j, panels, vp) ? 16 : 8, r, 8 * vp * j, r, j);
}

/* The two-way split of a task into full tiles of `full` along a dimension
 * of `total` (a literal) and one remainder tile: `if (at < F) {tile(full)}
 * else {tile(rest)}`, or one of them alone. The tile emitter gets the size. */
void dn_emit_split(dn_buf *b, const char *at, int total, int full, void (*tile)(dn_buf *, int, void *),
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

/* ---- epilogue --------------------------------------------------------------------- */

/* Whether f is written through its functions <fn>_act and <fn>_dact
 * (dn_emit_act_functions) rather than inline. */
static int act_has_functions(const dn_actfn *f) {
    return !f->by_loss && (f->type == DN_ACT_LEAKY_RELU || f->type == DN_ACT_ELU || f->type == DN_ACT_GELU ||
                           f->type == DN_ACT_SILU || f->type == DN_ACT_SOFTPLUS);
}

/* The activation applied to vector `v` into `y` (a declaration). */
static void emit_activation(dn_buf *b, const dn_actfn *f) {
    if (f->by_loss) { /* softmax, or binary cross-entropy's sigmoid */
        dn_buf_line(b, "const dn_v8 y = v;");
        return;
    }
    switch (f->type) {
    case DN_ACT_RELU: dn_buf_line(b, "const dn_v8 y = dn_relu8(v);"); return;
    case DN_ACT_TANH:
    case DN_ACT_SIGMOID:
        dn_buf_line(b, "float t[8];");
        dn_buf_line(b, "dn_store8(t, v);");
        dn_buf_line(b, "for (int j = 0; j < 8; j++) t[j] = %s;",
                    f->type == DN_ACT_TANH ? "tanhf(t[j])" : "1.0f / (1.0f + expf(-t[j]))");
        dn_buf_line(b, "const dn_v8 y = dn_load8(t);");
        return;
    default: break;
    }
    if (act_has_functions(f)) {
        dn_buf_line(b, "float t[8];");
        dn_buf_line(b, "dn_store8(t, v);");
        dn_buf_line(b, "for (int j = 0; j < 8; j++) t[j] = %s_act(t[j]);", f->fn);
        dn_buf_line(b, "const dn_v8 y = dn_load8(t);");
        return;
    }
    dn_buf_line(b, "const dn_v8 y = v;");
}

void dn_emit_finish(dn_buf *b, const dn_plan *p, const dn_op *op) {
    const int stoch = op->stochastic, drop = op->drop.p > 0;
    dn_buf_line(b, "/* Bias, activation%s for the units [u, u + 8) of row `row`,",
                stoch ? " and, in training (h != NULL), noise and dropout" : "");
    dn_buf_line(b, " * whose sums over the inputs are z[0..8)%s%s. */", drop ? " and dropout scales mk[0..8)" : "",
                op->act.from_pre ? "; the pre-activation into pre when not NULL" : "");
    dn_buf_line(b, "static inline void %s_%s_finish(const float *z, size_t row, int u, const float *restrict bias,",
                p->name, op->name);
    dn_buf_line(b, "        float *restrict a%s%s%s) {", op->act.from_pre ? ", float *restrict pre" : "",
                drop ? ", float *restrict mask, const float *mk" : "",
                stoch ? ", float *restrict h, uint64_t seed, uint64_t step" : "");
    b->indent++;
    if (op->noise <= 0 && stoch) dn_buf_line(b, "(void)seed, (void)step; /* for noise, which this layer has not */");
    dn_buf_line(b, "const dn_v8 v = dn_load8(z) + dn_load8(bias + u);");
    emit_activation(b, &op->act);
    dn_buf_line(b, "const size_t at = row * %d + (size_t)u;", op->out.stride);
    dn_buf_line(b, "dn_store8(a + at, y);");
    if (op->act.from_pre) dn_buf_line(b, "if (pre) dn_store8(pre + at, v); /* for the derivative, in training */");
    if (stoch) {
        dn_buf_line(b, "if (!h) return;");
        dn_buf_line(b, "dn_v8 o = y;");
        if (op->noise > 0) {
            dn_buf_line(b, "float g[8];");
            dn_buf_line(b, "dn_gauss4(seed, step, %d, (uint32_t)row, (uint32_t)u, g);", op->slot);
            dn_buf_line(b, "dn_gauss4(seed, step, %d, (uint32_t)row, (uint32_t)u + 4, g + 4);", op->slot);
            dn_buf_line(b, "o = o + dn_splat8(%s) * dn_load8(g);", op->noise_lit);
        }
        if (drop) {
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

void dn_emit_dropout_block(dn_buf *b, const dn_op *op, int rows, int width, const char *u0) {
    dn_buf_line(b, "float mk[%d][%d];", rows, width);
    dn_buf_line(b, "if (h)");
    dn_buf_line(b, "    dn_dropout_block(seed, step, %d, (uint32_t)r0, nr, (uint32_t)(%s), %d, %" PRIu32 "u, %s, &mk[0][0]);",
                op->slot, u0, width, op->drop.threshold, op->drop.scale);
}

void dn_epilogue_args(char *dst, size_t n, const dn_op *op, int train) {
    char mask[2 * DN_EXPR_MAX + 24] = "";
    int len = 0;
    if (op->act.from_pre) len = snprintf(mask, sizeof mask, " %s,", train ? op->out.deriv_in : "NULL");
    if (!op->stochastic) {
        snprintf(dst, n, "%s n", mask);
        return;
    }
    if (op->drop.p > 0)
        snprintf(mask + len, sizeof mask - (size_t)len, train ? " %s," : " mc ? %s : NULL,", op->out.mask);
    snprintf(dst, n, train ? "%s %s, n, bt->seed, bt->step" : "%s mc ? %s : NULL, n, bt->seed, bt->step", mask,
             op->out.train);
}

/* ---- image planes ------------------------------------------------------------------ */

/* The activation of v (a float) into v. */
static void emit_act1(dn_buf *b, const dn_actfn *f) {
    switch (f->type) {
    case DN_ACT_RELU: dn_buf_line(b, "v = v > 0.0f ? v : 0.0f;"); return;
    case DN_ACT_TANH: dn_buf_line(b, "v = tanhf(v);"); return;
    case DN_ACT_SIGMOID: dn_buf_line(b, "v = 1.0f / (1.0f + expf(-v));"); return;
    default: break;
    }
    if (act_has_functions(f)) dn_buf_line(b, "v = %s_act(v);", f->fn);
}

/* The epilogue of an image op's plane c of row r, from sums s[] (plus
 * `bias`, a C expression or NULL): activation into a, and in training
 * (h != NULL) the dropout scales into mask and h. Shared with pool.c. */
void dn_emit_plane_epilogue(dn_buf *b, const dn_op *op, const char *sums, const char *bias) {
    const int plane = op->out.shape.h * op->out.shape.w, drop = op->drop.p > 0;
    if (drop && op->drop_channel) {
        dn_buf_line(b, "float mk[4] = {1.0f, 1.0f, 1.0f, 1.0f};");
        dn_buf_line(b, "if (h)");
        dn_buf_line(b, "    dn_dropout4(seed, step, %d, (uint32_t)r, (uint32_t)c & ~3u, %" PRIu32 "u, %s, mk);",
                    op->slot, op->drop.threshold, op->drop.scale);
        dn_buf_line(b, "const float keep = mk[c & 3];");
    } else if (drop) {
        dn_buf_line(b, "float mk[%d];", op->plane4);
        dn_buf_line(b, "if (h)");
        dn_buf_line(b, "    dn_dropout_block(seed, step, %d, (uint32_t)r, 1, (uint32_t)c * %du, %d, %" PRIu32 "u, %s, mk);",
                    op->slot, op->plane4, op->plane4, op->drop.threshold, op->drop.scale);
    }
    dn_buf_line(b, "const size_t at = (size_t)r * %d + (size_t)c * %d;", op->out.stride, plane);
    dn_buf_line(b, "for (int i = 0; i < %d; i++) {", plane);
    b->indent++;
    if (bias)
        dn_buf_line(b, "float v = %s[i] + %s;", sums, bias);
    else
        dn_buf_line(b, "float v = %s[i];", sums);
    if (op->act.from_pre) dn_buf_line(b, "if (pre) pre[at + (size_t)i] = v;");
    emit_act1(b, &op->act);
    dn_buf_line(b, "a[at + (size_t)i] = v;");
    if (op->stochastic) {
        dn_buf_line(b, "if (h) {");
        dn_buf_line(b, "    const float m = %s;", op->drop_channel ? "keep" : "mk[i]");
        dn_buf_line(b, "    mask[at + (size_t)i] = m;");
        dn_buf_line(b, "    h[at + (size_t)i] = v * m;");
        dn_buf_line(b, "}");
    }
    b->indent--;
    dn_buf_line(b, "}");
}

/* Zeroes the padding of row r of the output (a, and in training mask and
 * h) past its width, in the task `last_task` (a C condition) of the row. */
void dn_emit_row_padding(dn_buf *b, const dn_op *op, const char *last_task) {
    if (op->out.width == op->out.stride) return;
    dn_buf_line(b, "if (%s)", last_task);
    dn_buf_line(b, "    for (size_t i = (size_t)r * %d + %d; i < (size_t)r * %d + %d; i++) {", op->out.stride,
                op->out.width, op->out.stride, op->out.stride);
    dn_buf_line(b, "        a[i] = 0.0f;");
    if (op->act.from_pre) dn_buf_line(b, "        if (pre) pre[i] = 0.0f;");
    if (op->stochastic) {
        dn_buf_line(b, "        if (h) {");
        if (op->drop.p > 0) dn_buf_line(b, "            mask[i] = 0.0f;");
        dn_buf_line(b, "            h[i] = 0.0f;");
        dn_buf_line(b, "        }");
    }
    dn_buf_line(b, "    }");
}

void dn_emit_dx_plane(dn_buf *b, const dn_op *op, const char *chan) {
    const int iplane = op->in.shape.h * op->in.shape.w;
    char dv[DN_DERIV_MAX];
    const char *deriv = dn_act_derivative(&op->in.act, dv);
    dn_buf_line(b, "const size_t at = (size_t)r * %d + (size_t)%s * %d;", op->in.stride, chan, iplane);
    dn_buf_line(b, "for (int i = 0; i < %d; i++) {", iplane);
    b->indent++;
    dn_buf_line(b, "float v = s[i];");
    if (op->in.has_mask) dn_buf_line(b, "v *= mask_prev[at + (size_t)i];");
    if (deriv) {
        dn_buf_line(b, "const float a = a_prev[at + (size_t)i];");
        dn_buf_line(b, "v *= %s;", deriv);
    }
    dn_buf_line(b, "dx[at + (size_t)i] = v;");
    b->indent--;
    dn_buf_line(b, "}");
    if (op->in.width != op->in.stride) {
        dn_buf_line(b, "if (%s == 0)", chan);
        dn_buf_line(b, "    for (int i = %d; i < %d; i++) dx[(size_t)r * %d + i] = 0.0f;", op->in.width, op->in.stride,
                    op->in.stride);
    }
}

/* ---- activations -------------------------------------------------------------------- */

/* The body of <fn>_act(x): the activation of x, as PyTorch 1.13's CPU
 * kernels write it (exp(x) - 1 for elu, erf for gelu). Every function is
 * a scalar libm call on one float, so each element's value depends on
 * nothing but that element: the same at any thread count and tile. */
static void emit_act_body(dn_buf *b, const dn_actfn *f) {
    switch (f->type) {
    case DN_ACT_LEAKY_RELU: dn_buf_line(b, "    return x > 0.0f ? x : x * %s;", f->alpha); return;
    case DN_ACT_ELU: dn_buf_line(b, "    return x > 0.0f ? x : (expf(x) - 1.0f) * %s;", f->alpha); return;
    case DN_ACT_GELU:
        if (f->tanh) {
            dn_buf_line(b, "    const float inner = 0.797884561f * (x + 0.044715f * (x * x * x));");
            dn_buf_line(b, "    return 0.5f * x * (1.0f + tanhf(inner));");
        } else {
            dn_buf_line(b, "    return x * 0.5f * (1.0f + erff(x * 0.707106781f));");
        }
        return;
    case DN_ACT_SILU: dn_buf_line(b, "    return x / (1.0f + expf(-x));"); return;
    case DN_ACT_SOFTPLUS:
        dn_buf_line(b, "    return x * %s > %s ? x : log1pf(expf(x * %s)) / %s;", f->alpha, f->threshold, f->alpha,
                    f->alpha);
        return;
    default: dn_buf_line(b, "    return x;"); return;
    }
}

/* The body of <fn>_dact(a): the derivative at pre-activation a (from_pre)
 * or at the pre-activation whose output is a. */
static void emit_dact_body(dn_buf *b, const dn_actfn *f) {
    switch (f->type) {
    case DN_ACT_LEAKY_RELU: dn_buf_line(b, "    return a > 0.0f ? 1.0f : %s;", f->alpha); return;
    case DN_ACT_ELU: /* alpha exp(x) = y + alpha for x <= 0 */
        if (f->from_pre)
            dn_buf_line(b, "    return a > 0.0f ? 1.0f : %s * expf(a);", f->alpha);
        else
            dn_buf_line(b, "    return a > 0.0f ? 1.0f : a + %s;", f->alpha);
        return;
    case DN_ACT_GELU:
        if (f->tanh) {
            dn_buf_line(b, "    const float inner = 0.797884561f * (a + 0.044715f * (a * a * a));");
            dn_buf_line(b, "    const float t = tanhf(inner);");
            dn_buf_line(b, "    return 0.5f * (1.0f + t) + 0.5f * a * (1.0f - t * t) * 0.797884561f *");
            dn_buf_line(b, "           (1.0f + 3.0f * 0.044715f * (a * a));");
        } else {
            dn_buf_line(b, "    const float cdf = 0.5f * (1.0f + erff(a * 0.707106781f));");
            dn_buf_line(b, "    return cdf + a * (0.398942280f * expf(-0.5f * (a * a)));");
        }
        return;
    case DN_ACT_SILU:
        dn_buf_line(b, "    const float s = 1.0f / (1.0f + expf(-a));");
        dn_buf_line(b, "    return s * (1.0f + a * (1.0f - s));");
        return;
    case DN_ACT_SOFTPLUS: /* sigmoid(beta x) = 1 - exp(-beta y) */
        if (f->from_pre) {
            dn_buf_line(b, "    const float e = expf(a * %s);", f->alpha);
            dn_buf_line(b, "    return a * %s > %s ? 1.0f : e / (e + 1.0f);", f->alpha, f->threshold);
        } else {
            dn_buf_line(b, "    return a * %s > %s ? 1.0f : -expm1f(-(a * %s));", f->alpha, f->threshold, f->alpha);
        }
        return;
    default: dn_buf_line(b, "    return 1.0f;"); return;
    }
}

void dn_emit_act_functions(dn_buf *b, const dn_actfn *f, int forward_only) {
    if (!act_has_functions(f)) return;
    dn_buf_line(b, "/* %s: the activation of x%s. */", dn_act_name(f->type),
                forward_only ? ""
                : f->from_pre ? ", and its derivative at x (the pre-activation, kept in training)"
                              : ", and its derivative at the x whose output is a");
    dn_buf_line(b, "DN_INLINE float %s_act(float x) {", f->fn);
    emit_act_body(b, f);
    dn_buf_line(b, "}");
    if (!forward_only) {
        dn_buf_line(b, "DN_INLINE float %s_dact(float a) {", f->fn);
        emit_dact_body(b, f);
        dn_buf_line(b, "}");
        /* floats, not a vector: a vector argument's ABI depends on the target (AVX or not) */
        dn_buf_line(b, "DN_INLINE void %s_dact8(const float *a, float *d) {", f->fn);
        dn_buf_line(b, "    for (int j = 0; j < 8; j++) d[j] = %s_dact(a[j]);", f->fn);
        dn_buf_line(b, "}");
    }
    dn_buf_blank(b);
}

const char *dn_act_derivative(const dn_actfn *f, char dst[DN_DERIV_MAX]) {
    if (f->by_loss) return NULL;
    switch (f->type) {
    case DN_ACT_RELU: return "(a > 0.0f ? 1.0f : 0.0f)";
    case DN_ACT_TANH: return "(1.0f - a * a)";
    case DN_ACT_SIGMOID: return "(a * (1.0f - a))";
    default: break;
    }
    if (!act_has_functions(f)) return NULL; /* derivative 1: nothing to multiply */
    snprintf(dst, DN_DERIV_MAX, "%s_dact(a)", f->fn);
    return dst;
}

const char *dn_act_derivative8(const dn_actfn *f) {
    if (f->by_loss) return NULL;
    switch (f->type) {
    case DN_ACT_RELU: return "dn_step8(av)";
    case DN_ACT_TANH: return "(dn_splat8(1.0f) - av * av)";
    case DN_ACT_SIGMOID: return "(av * (dn_splat8(1.0f) - av))";
    default: break;
    }
    return act_has_functions(f) ? "dn_load8(dv)" : NULL;
}

void dn_emit_derivative8_input(dn_buf *b, const dn_actfn *f, const char *at) {
    if (act_has_functions(f)) {
        dn_buf_line(b, "float dv[8];");
        dn_buf_line(b, "%s_dact8(%s, dv);", f->fn, at);
    } else {
        dn_buf_line(b, "const dn_v8 av = dn_load8(%s);", at);
    }
}
