/* kernels.h - pieces of generated kernels that several kinds share: the
 * register tiles of broadcast outer products, the output epilogue (bias,
 * activation, noise, dropout) and activation derivatives.
 *
 * A tile is `rows` x `panels` accumulators c<r><j> of 8 floats (vp = 1) or
 * 16 (vp = 2: two panels side by side, the last vector 8 floats when the
 * panel count is odd).
 */
#ifndef DNGEN_KERNELS_H
#define DNGEN_KERNELS_H

#include "plan.h"
#include "text.h"

/* ---- register tiles ---------------------------------------------------------- */

/* Vectors of a tile `panels` wide with vp panels per vector, and whether
 * vector j is a 16-float one (else 8). Vector j starts at panel j * vp. */
int dn_vec_count(int panels, int vp);
int dn_vec_wide(int j, int panels, int vp);

/* Declares pointer `name<i>` = base + clamp(first + i) * stride for i < count:
 * indices at or past `limit` (a C expression) reuse the last valid one. */
void dn_emit_clamped_ptrs(dn_buf *b, const char *name, const char *base, const char *first, const char *limit,
                          int count, int stride);

/* Declares the zeroed accumulators c<r><j> of a rows x panels tile. */
void dn_emit_accumulators(dn_buf *b, int rows, int panels, int vp);

/* One step of a broadcast outer product: for each tile row r, splat the
 * scalar `scalar_fmt` (a format taking r) and accumulate it times the
 * vectors <vec>0.. into c<r>0.. */
void dn_emit_splat_fmas(dn_buf *b, int rows, int panels, int vp, const char *vec, const char *scalar_fmt);

/* Declares vector <vec><j> for each vector of a tile: the 8 floats at `base`
 * + `at_fmt` (a format taking a panel's offset) for one panel, the two
 * panels' side by side for a wide vector. `step` is the offset from one
 * panel to the next (8: adjacent, one 16-float load). */
void dn_emit_tile_loads(dn_buf *b, int panels, int vp, const char *vec, const char *base, const char *at_fmt,
                        int step);

/* Spills the accumulators into float z[rows][8 * panels]: panel j of row r
 * at z[r][8 * j]. */
void dn_emit_spill(dn_buf *b, int rows, int panels, int vp);
void dn_emit_spill_to(dn_buf *b, const char *name, int rows, int panels, int vp);

/* Sums over a batch's rows in chunks (the prelude's DN_CHUNK, the tree of
 * dn_tree_push). DN_CHUNK_ROWS is the generator's copy of DN_CHUNK. */
#define DN_CHUNK_ROWS 16
/* The depth of the pending-subtree stack of a training kernel for batches of
 * up to `rows` rows (the spec's batch): at least DN_TREE_DEPTH_MIN, so that
 * `train --batch-size` may go up to dn_tree_max_rows of it (65,520 rows)
 * whatever the spec's batch; the trainer refuses more. */
#define DN_TREE_DEPTH_MIN 12
int dn_tree_depth(int rows);
/* The largest batch whose chunks a stack of `depth` levels holds. */
int dn_tree_max_rows(int depth);
/* Opens the chunk loop of a sum over n rows: declares <type> <tag>_pend
 * [depth * (len)] and <tag>_count, then `for (c0...) {` with the chunk's rows
 * [c0, c1). Inside, the caller sums the chunk's rows from zero into a part
 * array of `len` values. */
void dn_emit_chunks_open(dn_buf *b, const char *type, const char *tag, int depth, const char *len);
/* Inside the chunk loop, instead of a part array: merges the accumulators
 * c<r><j> of a rows x `panels` register tile (dn_emit_accumulators) with the
 * pending subtrees of <tag>_pend (laid out as dn_emit_spill lays out z) and
 * stores the result as the next pending subtree. */
void dn_emit_tree_push_tile(dn_buf *b, const char *tag, int rows, int panels, int vp);
/* Closes it: pushes `part`, and after the loop writes the root into `out`
 * (declared by the caller before the loop). type "double" or "float". */
void dn_emit_chunks_close(dn_buf *b, const char *type, const char *tag, const char *part, const char *len,
                          const char *out);

/* The two-way split of a task into full tiles of `full` along a dimension
 * of `total` and one remainder tile: `if (at < F) {tile(full)} else
 * {tile(rest)}`, or one of them alone. The tile emitter gets the size. */
void dn_emit_split(dn_buf *b, const char *at, int total, int full, void (*tile)(dn_buf *, int, void *), void *ctx);

/* ---- epilogue --------------------------------------------------------------------- */

/* The function <model>_<op>_finish(z, row, u, bias, a[, pre][, mask, mk][, h,
 * seed, step]): for 8 units [u, u + 8) of one row whose sums are z[0..8), adds
 * bias, applies op->act into a (with op->act.from_pre keeping the sums plus
 * bias in pre unless it is NULL), and in training (h != NULL) noise and the
 * dropout scales mk into mask and h. For an op with an epilogue. */
void dn_emit_finish(dn_buf *b, const dn_plan *p, const dn_op *op);

/* Declares float mk[rows][width] and, in training (h != NULL), fills it with
 * op's dropout scales for rows [r0, r0 + nr) and units [u0, u0 + width) (u0
 * a C expression) by one dn_dropout_block. For an op with dropout. */
void dn_emit_dropout_block(dn_buf *b, const dn_op *op, int rows, int width, const char *u0);

/* The trailing arguments of a forward kernel that ends in an epilogue,
 * after its output `a`: pre (NULL in eval), mask, h, n and the random
 * stream, as the step passes them in training or eval. Writes them into dst. */
void dn_epilogue_args(char *dst, size_t n, const dn_op *op, int train);

/* ---- image planes (conv2d, pools) ------------------------------------------------- */

/* The epilogue of plane c of row r of an image op, inside its task, from the
 * array `sums` (plus `bias`, a C expression, or NULL): op->act into a (the
 * pre-activation into pre unless NULL, with op->act.from_pre), and in
 * training (h != NULL) op's dropout, per element or per channel, into mask
 * and h. Needs r, c, seed and step in scope. */
void dn_emit_plane_epilogue(dn_buf *b, const dn_op *op, const char *sums, const char *bias);

/* Zeroes the padding of row r of the op's output past its width (a, and in
 * training pre, mask and h), in the task where `last_task` (a C condition) holds. */
void dn_emit_row_padding(dn_buf *b, const dn_op *op, const char *last_task);

/* The end of an input-gradient task for plane `chan` (a C variable) of row
 * r, from its sums s[]: times the previous op's dropout scale and
 * activation derivative into dx, and dx's row padding zeroed by the task
 * of plane 0. Needs mask_prev and a_prev in scope. */
void dn_emit_dx_plane(dn_buf *b, const dn_op *op, const char *chan);

/* ---- activations -------------------------------------------------------------------- */

/* Room for a derivative expression. */
#define DN_DERIV_MAX (2 * DN_NAME_MAX + 40)

/* For an activation without an inline form (leaky_relu, elu, gelu, silu,
 * softplus): DN_INLINE functions <fn>_act8(const float *in, float *out) (8
 * lanes in vector arithmetic: exp, log1p, erf and tanh as fixed
 * polynomials, so every lane computes the same whatever the target, tile
 * or thread) and <fn>_act(float x) (one value through it), and unless
 * forward_only <fn>_dact8 and <fn>_dact, its derivative at what
 * f->from_pre says a is (the pre-activation or the output). Floats cross
 * the calls, never a vector, whose ABI depends on the target. For the
 * kernels of the op that applies f, before any of them; nothing for others. */
void dn_emit_act_functions(dn_buf *b, const dn_actfn *f, int forward_only);

/* The C expression of f's derivative in terms of `a` (its output, or with
 * f->from_pre its pre-activation), e.g. "(a > 0.0f ? 1.0f : 0.0f)", or a
 * call written into dst; NULL when it is 1 (or the loss applies f). */
const char *dn_act_derivative(const dn_actfn *f, char dst[DN_DERIV_MAX]);

/* The same on 8 lanes (lane by lane the same operations), an expression
 * of the names dn_emit_derivative8_input declares; NULL when it is 1. */
const char *dn_act_derivative8(const dn_actfn *f);

/* Declares what dn_act_derivative8(f) reads, from the 8 floats at `at` (a
 * C expression): the vector av, or the derivatives dv[8]. */
void dn_emit_derivative8_input(dn_buf *b, const dn_actfn *f, const char *at);

#endif
