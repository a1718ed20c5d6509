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
 * <name>[rows][8 * panels]: panel j of row r at <name>[r][8 * j]. */
void dn_emit_spill_to(dn_buf *b, const char *name, int rows, int panels, int vp) {
    dn_buf_line(b, "float %s[%d][%d];", name, rows, 8 * panels);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < dn_vec_count(panels, vp); j++)
            dn_buf_line(b, "dn_store%d(&%s[%d][%d], c%d%d);", dn_vec_wide(j, panels, vp) ? 16 : 8, name, r, 8 * vp * j,
                        r, j);
}

void dn_emit_spill(dn_buf *b, int rows, int panels, int vp) { dn_emit_spill_to(b, "z", rows, panels, vp); }

int dn_tree_depth(int rows) {
    int chunks = (rows + DN_CHUNK_ROWS - 1) / DN_CHUNK_ROWS, d = 1;
    while (d < 31 && (1 << d) <= chunks) d++;
    return d > DN_TREE_DEPTH_MIN ? d : DN_TREE_DEPTH_MIN;
}

int dn_tree_max_rows(int depth) { return DN_CHUNK_ROWS * (int)((1u << depth) - 1u); }

void dn_emit_chunks_open(dn_buf *b, const char *type, const char *tag, int depth, const char *len) {
    dn_buf_line(b, "%s %s_pend[%d * (%s)];", type, tag, depth, len);
    dn_buf_line(b, "const int %s_depth = %d;", tag, depth);
    dn_buf_line(b, "int %s_count = 0;", tag);
    dn_buf_line(b, "for (int c0 = 0; c0 < n; c0 += DN_CHUNK) {");
    b->indent++;
    dn_buf_line(b, "const int c1 = n - c0 < DN_CHUNK ? n : c0 + DN_CHUNK;");
}

void dn_emit_tree_push_tile(dn_buf *b, const char *tag, int rows, int panels, int vp) {
    const int W = 8 * panels, nv = dn_vec_count(panels, vp);
    dn_buf_line(b, "{ /* the chunk's sums into the tree (dn_tree_push's order), merged in registers */");
    b->indent++;
    dn_buf_line(b, "int k = %s_count, lv = 0;", tag);
    dn_buf_line(b, "for (; (k & 1) && lv + 1 < %s_depth; k >>= 1, lv++) {", tag);
    b->indent++;
    dn_buf_line(b, "const float *pl = %s_pend + (size_t)lv * %d;", tag, rows * W);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < nv; j++) {
            const int wide = dn_vec_wide(j, panels, vp);
            dn_buf_line(b, "c%d%d = dn_load%d(pl + %d) + c%d%d;", r, j, wide ? 16 : 8, r * W + 8 * vp * j, r, j);
        }
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_line(b, "float *ps = %s_pend + (size_t)lv * %d;", tag, rows * W);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < nv; j++)
            dn_buf_line(b, "dn_store%d(ps + %d, c%d%d);", dn_vec_wide(j, panels, vp) ? 16 : 8, r * W + 8 * vp * j, r, j);
    dn_buf_line(b, "%s_count++;", tag);
    b->indent--;
    dn_buf_line(b, "}");
}

void dn_emit_chunks_close(dn_buf *b, const char *type, const char *tag, const char *part, const char *len,
                          const char *out) {
    const char *sfx = strcmp(type, "double") == 0 ? "d" : "";
    dn_buf_line(b, "dn_tree_push%s(%s_pend, %s_depth, &%s_count, %s, %s);", sfx, tag, tag, tag, part, len);
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_line(b, "dn_tree_finish%s(%s_pend, %s_depth, %s_count, %s, %s);", sfx, tag, tag, tag, out, len);
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
        dn_buf_line(b, "DN_VNAME(%s_act8)(t, t);", f->fn);
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
    char bufs[2 * DN_EXPR_MAX + 24] = ""; /* pre and mask, those the kernel has */
    int len = 0;
    if (op->act.from_pre) len = snprintf(bufs, sizeof bufs, " %s,", train ? op->out.deriv_in : "NULL");
    if (!op->stochastic) {
        snprintf(dst, n, "%s n", bufs);
        return;
    }
    if (op->drop.p > 0)
        snprintf(bufs + len, sizeof bufs - (size_t)len, train ? " %s," : " mc ? %s : NULL,", op->out.mask);
    snprintf(dst, n, train ? "%s %s, n, bt->seed, bt->step" : "%s mc ? %s : NULL, n, bt->seed, bt->step", bufs,
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
    if (act_has_functions(f)) dn_buf_line(b, "v = DN_VNAME(%s_act)(v);", f->fn);
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

/* ---- vector math for the activations -------------------------------------------- */

/* Writes the lane-by-lane select (m ? a : b) into dst; m is a comparison's mask. */
static const char *sel8(char *dst, size_t n, const char *m, const char *a, const char *b) {
    snprintf(dst, n, "(dn_v8)(((dn_v8i)(%s) & (%s)) | ((dn_v8i)(%s) & ~(%s)))", a, m, b, m);
    return dst;
}

/* Declares dn_v8 <d> = e^x, or with `m1` e^x - 1, for x a dn_v8 expression.
 * Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2; Cephes' degree-5
 * polynomial for e^r - 1 = r + r^2 p(r) (within 2 ulp of expf); scaled by
 * 2^n as two exact powers of 2, so that results near the underflow round as
 * expf's do; 0 below -103.97 and infinity above 88.72, as expf. Where n = 0
 * e^x - 1 is r + r^2 p(r) itself, precise near 0. Plain vector operations
 * (temporaries xe_*), so a lane's result depends on that lane alone. */
static void emit_exp8(dn_buf *b, const char *d, const char *x, int m1) {
    static const char *const c[] = {"1.3981999507e-3f", "8.3334519073e-3f", "4.1665795894e-2f",
                                    "1.6666665459e-1f", "5.0000001201e-1f"};
    char s1[512], s2[1200];
    dn_buf_line(b, "dn_v8 %s;", d);
    dn_buf_line(b, "{");
    b->indent++;
    dn_buf_line(b, "const dn_v8 xe_x = %s;", x);
    dn_buf_line(b, "const dn_v8i xe_hi = xe_x > dn_splat8(88.7228394f), xe_lo = xe_x < dn_splat8(-103.972084f);");
    sel8(s1, sizeof s1, "xe_lo", "dn_splat8(-103.972084f)", "xe_x");
    dn_buf_line(b, "const dn_v8 xe_c = %s;", sel8(s2, sizeof s2, "xe_hi", "dn_splat8(88.7228394f)", s1));
    dn_buf_line(b, "const dn_v8 xe_f = xe_c * dn_splat8(1.44269504f) + dn_splat8(0.5f);");
    dn_buf_line(b, "dn_v8i xe_n = __builtin_convertvector(xe_f, dn_v8i);");
    dn_buf_line(b, "xe_n += (dn_v8i)(__builtin_convertvector(xe_n, dn_v8) > xe_f); /* floor */");
    dn_buf_line(b, "const dn_v8 xe_nf = __builtin_convertvector(xe_n, dn_v8);");
    dn_buf_line(b, "const dn_v8 xe_r = xe_c - xe_nf * dn_splat8(0.693359375f) + xe_nf * dn_splat8(2.12194440e-4f);");
    dn_buf_line(b, "dn_v8 xe_p = dn_splat8(1.9875691500e-4f);");
    for (int i = 0; i < 5; i++) dn_buf_line(b, "xe_p = xe_p * xe_r + dn_splat8(%s);", c[i]);
    dn_buf_line(b, "const dn_v8 xe_q = xe_p * xe_r * xe_r + xe_r; /* e^r - 1 */");
    dn_buf_line(b, "const dn_v8i xe_n1 = xe_n >> 1, xe_n2 = xe_n - xe_n1;");
    dn_buf_line(b, "dn_v8 xe_y = (xe_q + dn_splat8(1.0f)) * (dn_v8)((xe_n1 + 127) << 23) * (dn_v8)((xe_n2 + 127) << 23);");
    if (m1) dn_buf_line(b, "xe_y = %s;", sel8(s2, sizeof s2, "xe_n == 0", "xe_q", "xe_y - dn_splat8(1.0f)"));
    sel8(s1, sizeof s1, "xe_lo", m1 ? "dn_splat8(-1.0f)" : "dn_splat8(0.0f)", "xe_y");
    dn_buf_line(b, "%s = %s;", d, sel8(s2, sizeof s2, "xe_hi", "dn_splat8(INFINITY)", s1));
    b->indent--;
    dn_buf_line(b, "}");
}

/* Declares dn_v8 <d> = log(1 + u) for u >= 0, the dn_v8 named u: Cephes'
 * logf of w = 1 + u (mantissa in [sqrt(1/2), sqrt(2)), degree-8
 * polynomial, within 2 ulp), times u / (w - 1), which gives back what the
 * rounding of 1 + u lost; u itself where 1 + u rounds to 1; infinity for
 * u = infinity. Temporaries lg_*. */
static void emit_log1p8(dn_buf *b, const char *d, const char *u) {
    static const char *const c[] = {"-1.1514610310e-1f", "1.1676998740e-1f", "-1.2420140846e-1f",
                                    "1.4249322787e-1f", "-1.6668057665e-1f", "2.0000714765e-1f",
                                    "-2.4999993993e-1f", "3.3333331174e-1f"};
    char s1[512], s2[1200], t[160];
    dn_buf_line(b, "dn_v8 %s;", d);
    dn_buf_line(b, "{");
    b->indent++;
    dn_buf_line(b, "const dn_v8 lg_w = dn_splat8(1.0f) + %s;", u);
    dn_buf_line(b, "const dn_v8i lg_bits = (dn_v8i)lg_w;");
    dn_buf_line(b, "dn_v8i lg_e = (lg_bits >> 23) - 126;");
    dn_buf_line(b, "dn_v8 lg_m = (dn_v8)((lg_bits & 0x007fffff) | 0x3f000000); /* w = m 2^e, m in [1/2, 1) */");
    dn_buf_line(b, "const dn_v8i lg_small = lg_m < dn_splat8(0.707106781f);");
    dn_buf_line(b, "lg_e += lg_small;");
    dn_buf_line(b, "lg_m = lg_m - dn_splat8(1.0f) + (dn_v8)((dn_v8i)lg_m & lg_small);");
    dn_buf_line(b, "const dn_v8 lg_z = lg_m * lg_m, lg_ef = __builtin_convertvector(lg_e, dn_v8);");
    dn_buf_line(b, "dn_v8 lg_y = dn_splat8(7.0376836292e-2f);");
    for (int i = 0; i < 8; i++) dn_buf_line(b, "lg_y = lg_y * lg_m + dn_splat8(%s);", c[i]);
    dn_buf_line(b, "lg_y = lg_y * lg_m * lg_z + lg_ef * dn_splat8(-2.12194440e-4f) - dn_splat8(0.5f) * lg_z;");
    dn_buf_line(b, "const dn_v8 lg_l = lg_m + lg_y + lg_ef * dn_splat8(0.693359375f);");
    dn_buf_line(b, "const dn_v8i lg_one = lg_w == dn_splat8(1.0f), lg_inf = %s == dn_splat8(INFINITY);", u);
    snprintf(t, sizeof t, "lg_l * (%s / (lg_w - dn_splat8(1.0f)))", u);
    sel8(s1, sizeof s1, "lg_one", u, t);
    dn_buf_line(b, "%s = %s;", d, sel8(s2, sizeof s2, "lg_inf", u, s1));
    b->indent--;
    dn_buf_line(b, "}");
}

/* Declares dn_v8 <d> = erf(x) for the dn_v8 named x: Abramowitz and Stegun
 * 7.1.26, 1 - (a1 t + ... + a5 t^5) e^(-x^2) with t = 1/(1 + p|x|),
 * within 1.5e-7 of erf, the form PyTorch's vectorized CPU kernels use for
 * gelu. Temporaries ef_*. */
static void emit_erf8(dn_buf *b, const char *d, const char *x) {
    static const char *const c[] = {"-1.453152027f", "1.421413741f", "-0.284496736f", "0.254829592f"};
    dn_buf_line(b, "dn_v8 %s;", d);
    dn_buf_line(b, "{");
    b->indent++;
    dn_buf_line(b, "const dn_v8 ef_a = (dn_v8)((dn_v8i)%s & 0x7fffffff);", x);
    dn_buf_line(b, "const dn_v8 ef_t = dn_splat8(1.0f) / (dn_splat8(1.0f) + dn_splat8(0.3275911f) * ef_a);");
    dn_buf_line(b, "dn_v8 ef_r = dn_splat8(1.061405429f);");
    for (int i = 0; i < 4; i++) dn_buf_line(b, "ef_r = ef_r * ef_t + dn_splat8(%s);", c[i]);
    emit_exp8(b, "ef_e", "-(ef_a * ef_a)", 0);
    dn_buf_line(b, "const dn_v8 ef_y = dn_splat8(1.0f) - ef_r * ef_t * ef_e;");
    dn_buf_line(b, "%s = (dn_v8)((dn_v8i)ef_y | ((dn_v8i)%s & ~0x7fffffff)); /* erf(-x) = -erf(x) */", d, x);
    b->indent--;
    dn_buf_line(b, "}");
}

/* Declares dn_v8 <d> = tanh(u), u a dn_v8 expression: 1 - 2 / (e^(2u) + 1),
 * within about 1e-7 of it (absolute). Temporaries th_*. */
static void emit_tanh8(dn_buf *b, const char *d, const char *u) {
    char x[160];
    snprintf(x, sizeof x, "dn_splat8(2.0f) * (%s)", u);
    emit_exp8(b, "th_e", x, 0);
    dn_buf_line(b, "const dn_v8 %s = dn_splat8(1.0f) - dn_splat8(2.0f) / (th_e + dn_splat8(1.0f));", d);
}

/* ---- activations -------------------------------------------------------------------- */

/* The body of <fn>_act8: y = f(x) for the dn_v8 x, as PyTorch 1.13's CPU
 * kernels define it (exp(x) - 1 for elu; gelu's erf, or tanh). */
static void emit_act8_body(dn_buf *b, const dn_actfn *f) {
    char s[600];
    switch (f->type) {
    case DN_ACT_LEAKY_RELU:
        dn_buf_line(b, "const dn_v8 y = %s;", sel8(s, sizeof s, "x > dn_splat8(0.0f)", "x", "x * dn_splat8(kp)"));
        break;
    case DN_ACT_ELU:
        emit_exp8(b, "ex", "x", 0);
        dn_buf_line(b, "const dn_v8 y = %s;", sel8(s, sizeof s, "x > dn_splat8(0.0f)", "x", "(ex - dn_splat8(1.0f)) * dn_splat8(kp)"));
        break;
    case DN_ACT_GELU:
        if (f->tanh) {
            dn_buf_line(b, "const dn_v8 inner = dn_splat8(0.797884561f) * (x + dn_splat8(0.044715f) * (x * x * x));");
            emit_tanh8(b, "th", "inner");
            dn_buf_line(b, "const dn_v8 y = dn_splat8(0.5f) * x * (dn_splat8(1.0f) + th);");
        } else {
            dn_buf_line(b, "const dn_v8 u = x * dn_splat8(0.707106781f);");
            emit_erf8(b, "er", "u");
            dn_buf_line(b, "const dn_v8 y = x * dn_splat8(0.5f) * (dn_splat8(1.0f) + er);");
        }
        break;
    case DN_ACT_SILU:
        emit_exp8(b, "en", "-x", 0);
        dn_buf_line(b, "const dn_v8 y = x / (dn_splat8(1.0f) + en);");
        break;
    case DN_ACT_SOFTPLUS:
        dn_buf_line(b, "const dn_v8 bx = x * dn_splat8(kp);");
        emit_exp8(b, "eb", "bx", 0);
        emit_log1p8(b, "lp", "eb");
        dn_buf_line(b, "const dn_v8 y = %s;", sel8(s, sizeof s, "bx > dn_splat8(kt)", "x", "lp / dn_splat8(kp)"));
        break;
    default: dn_buf_line(b, "const dn_v8 y = x;"); break;
    }
}

/* The body of <fn>_dact8: d = f'(x) for the dn_v8 a, the pre-activation x
 * itself (from_pre) or the output f(x) whose x it stands for. */
static void emit_dact8_body(dn_buf *b, const dn_actfn *f) {
    char s[600];
    switch (f->type) {
    case DN_ACT_LEAKY_RELU:
        dn_buf_line(b, "const dn_v8 d = %s;", sel8(s, sizeof s, "a > dn_splat8(0.0f)", "dn_splat8(1.0f)", "dn_splat8(kp)"));
        break;
    case DN_ACT_ELU: /* alpha e^x = y + alpha for x <= 0 */
        if (f->from_pre) {
            emit_exp8(b, "ea", "a", 0);
            sel8(s, sizeof s, "a > dn_splat8(0.0f)", "dn_splat8(1.0f)", "dn_splat8(kp) * ea");
        } else {
            sel8(s, sizeof s, "a > dn_splat8(0.0f)", "dn_splat8(1.0f)", "a + dn_splat8(kp)");
        }
        dn_buf_line(b, "const dn_v8 d = %s;", s);
        break;
    case DN_ACT_GELU:
        if (f->tanh) {
            dn_buf_line(b, "const dn_v8 inner = dn_splat8(0.797884561f) * (a + dn_splat8(0.044715f) * (a * a * a));");
            emit_tanh8(b, "th", "inner");
            dn_buf_line(b, "const dn_v8 d = dn_splat8(0.5f) * (dn_splat8(1.0f) + th) + dn_splat8(0.5f) * a *");
            dn_buf_line(b, "    (dn_splat8(1.0f) - th * th) * dn_splat8(0.797884561f) * (dn_splat8(1.0f) + dn_splat8(3.0f * 0.044715f) * (a * a));");
        } else {
            dn_buf_line(b, "const dn_v8 u = a * dn_splat8(0.707106781f);");
            emit_erf8(b, "er", "u");
            emit_exp8(b, "pdf", "dn_splat8(-0.5f) * (a * a)", 0);
            dn_buf_line(b, "const dn_v8 d = dn_splat8(0.5f) * (dn_splat8(1.0f) + er) + a * (dn_splat8(0.398942280f) * pdf);");
        }
        break;
    case DN_ACT_SILU:
        emit_exp8(b, "en", "-a", 0);
        dn_buf_line(b, "const dn_v8 sg = dn_splat8(1.0f) / (dn_splat8(1.0f) + en);");
        dn_buf_line(b, "const dn_v8 d = sg * (dn_splat8(1.0f) + a * (dn_splat8(1.0f) - sg));");
        break;
    case DN_ACT_SOFTPLUS: /* sigmoid(beta x) = 1 - e^(-beta y) */
        dn_buf_line(b, "const dn_v8 bx = a * dn_splat8(kp);");
        if (f->from_pre) {
            emit_exp8(b, "eb", "bx", 0);
            sel8(s, sizeof s, "bx > dn_splat8(kt)", "dn_splat8(1.0f)", "eb / (eb + dn_splat8(1.0f))");
        } else {
            emit_exp8(b, "em", "-bx", 1);
            sel8(s, sizeof s, "bx > dn_splat8(kt)", "dn_splat8(1.0f)", "-em");
        }
        dn_buf_line(b, "const dn_v8 d = %s;", s);
        break;
    default: dn_buf_line(b, "const dn_v8 d = dn_splat8(1.0f);"); break;
    }
}

/* The parameters a function body reads: kp (slope, alpha or beta) and kt
 * (softplus's threshold). */
static void emit_act_params(dn_buf *b, const dn_actfn *f) {
    if (f->type == DN_ACT_SOFTPLUS)
        dn_buf_line(b, "const float kp = %s, kt = %s;", f->alpha, f->threshold);
    else if (f->type == DN_ACT_LEAKY_RELU || f->type == DN_ACT_ELU)
        dn_buf_line(b, "const float kp = %s;", f->alpha);
}

/* DN_INLINE void <fn>_<what>8(const float *in, float *out), the 8 lanes at
 * once (floats cross the call, not a vector, whose ABI depends on the
 * target), and DN_INLINE float <fn>_<what>(float v), one value through it;
 * each CPU copy has its own, named through DN_VNAME. */
static void emit_act_pair(dn_buf *b, const dn_actfn *f, const char *what, char var, char res,
                          void (*body)(dn_buf *, const dn_actfn *)) {
    dn_buf_line(b, "DN_INLINE void DN_VNAME(%s_%s8)(const float *in, float *out) {", f->fn, what);
    b->indent++;
    emit_act_params(b, f);
    dn_buf_line(b, "const dn_v8 %c = dn_load8(in);", var);
    body(b, f);
    dn_buf_line(b, "dn_store8(out, %c);", res);
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_line(b, "DN_INLINE float DN_VNAME(%s_%s)(float v) {", f->fn, what);
    dn_buf_line(b, "    float t[8] = {v};");
    dn_buf_line(b, "    DN_VNAME(%s_%s8)(t, t);", f->fn, what);
    dn_buf_line(b, "    return t[0];");
    dn_buf_line(b, "}");
}

void dn_emit_act_functions(dn_buf *b, const dn_actfn *f, int forward_only) {
    if (!act_has_functions(f)) return;
    dn_buf_line(b, "/* %s: the activation%s, 8 lanes in vector arithmetic (exp, log1p, erf and tanh", dn_act_name(f->type),
                forward_only ? ""
                : f->from_pre ? " and its derivative at the pre-activation, kept in training"
                              : " and its derivative at the x whose output is a");
    dn_buf_line(b, " * as polynomials: every lane computes the same, whatever the tile or thread). */");
    emit_act_pair(b, f, "act", 'x', 'y', emit_act8_body);
    if (!forward_only) emit_act_pair(b, f, "dact", 'a', 'd', emit_dact8_body);
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
    snprintf(dst, DN_DERIV_MAX, "DN_VNAME(%s_dact)(a)", f->fn);
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
        dn_buf_line(b, "DN_VNAME(%s_dact8)(%s, dv);", f->fn, at);
    } else {
        dn_buf_line(b, "const dn_v8 av = dn_load8(%s);", at);
    }
}
