/* batchnorm.c - the batchnorm kind: batch norm of the product before it,
 * then activation, noise and dropout: PyTorch's Linear -> BatchNorm1d ->
 * activation -> Dropout, or on an image Conv2d -> BatchNorm2d -> activation
 * -> Dropout / Dropout2d.
 *
 * The dense or conv2d op before it leaves z, its product plus bias, in a
 * buffer of its own (op->z). Then, with S the layer's row stride and K =
 * op->bn_width its features (units, or an image's channels) rounded up to 8:
 *
 *   bn_batch     training: per feature the batch mean and 1/sqrt(var + eps)
 *                (biased variance, sums in double over the rows in row
 *                order, and for an image each row's plane, as PyTorch's
 *                CPU kernel), the unbiased variance, and the
 *                affine map alpha = gamma/std, shift = beta - mean * alpha,
 *                into stats [5][K];
 *   bn_running   eval: the same map from the running mean and variance;
 *   bn_apply     a = act(z * alpha + shift) through the layer's finish
 *                function (an image's: the plane epilogue conv2d uses),
 *                which also adds noise and applies dropout;
 *   bn_backward  the gradient wrt the batch norm output becomes the
 *                gradient wrt z, in place (PyTorch's formula), gamma's and
 *                beta's gradients are stored or, in the fused variant,
 *                applied by Adam; then the running statistics move toward
 *                the batch's by the momentum (after the loss was found
 *                finite, in the fused step).
 *
 * On flat values the statistics and the backward pass split groups of 8
 * units between threads and keep 8 sums side by side; on images each task
 * is one channel, whose sums run over the rows in order, each row's plane
 * into 8 lanes (position mod 8), the lanes added in order at the end. Every
 * feature's sums run in an order set by the shapes, so results do not
 * depend on the thread count. Units past `units` (padding) have z = 0 and
 * d = 0, hence mean 0, alpha = shift = 0, and zero gradients: their gamma,
 * beta and running statistics stay 0; an image's features past its
 * channels are never touched.
 */
#include <stdio.h>
#include <string.h>

#include "kernels.h"
#include "kind.h"

/* The rows of stats [5][K] (see above). */
enum { ST_MEAN, ST_ISTD, ST_ALPHA, ST_SHIFT, ST_UVAR };

/* Whether the op normalizes an image's channels (BatchNorm2d), else units. */
static int on_image(const dn_op *L) { return L->out.shape.rank == 3; }

/* The loop over groups of 8 units, as an omp for: opens `u = 8 * group`.
 * With `nowait` (a phase that a dn_reduce_across and another group loop
 * follow) no barrier: every group loop of a kernel gives a thread the same
 * groups (static schedule, same count), so in one process the next phase
 * reads only what the same thread wrote, and under MPI dn_reduce_across
 * synchronizes. */
static void open_groups(dn_buf *b, int stride, int nowait) {
    dn_buf_line(b, nowait ? "DN_OMP(omp for schedule(static) nowait)" : "DN_OMP(omp for schedule(static))");
    dn_buf_line(b, "for (int g = 0; g < %d; g++) {", stride / 8);
    b->indent++;
    dn_buf_line(b, "const int u = g * 8;");
}

/* How the statements shared by flat and image values name one feature's
 * numbers: `ix` indexes the per-feature arrays ("[j]" for flat values'
 * 8 units side by side, "" for an image channel's scalars), `at` is the
 * feature's index into gamma, beta, the running statistics and the rows of
 * stats ("u + j" or "c"), `cnt` the count of values per feature ("n" or
 * "cnt"). */
typedef struct {
    const char *ix, *at, *cnt;
} feature_names;

static const feature_names FLAT_NAMES = {"[j]", "u + j", "n_all"}, IMAGE_NAMES = {"", "c", "cnt"};

/* The statements that turn a feature's sum and sq (and mean) into its
 * statistics in stats [5][K]. */
static void emit_stats_final(dn_buf *b, const dn_op *L, feature_names f) {
    const int K = L->bn_width;
    const char *eps = L->bn_eps_double; /* in double here, as PyTorch's CPU kernel adds it (in eval: in float) */
    dn_buf_line(b, "const float istd = (float)(1.0 / sqrt(sq%s / %s + %s));", f.ix, f.cnt, eps);
    dn_buf_line(b, "const float alpha = istd * gamma[%s];", f.at);
    dn_buf_line(b, "stats[%d + %s] = mean%s;", ST_MEAN * K, f.at, f.ix);
    dn_buf_line(b, "stats[%d + %s] = istd;", ST_ISTD * K, f.at);
    dn_buf_line(b, "stats[%d + %s] = alpha;", ST_ALPHA * K, f.at);
    dn_buf_line(b, "stats[%d + %s] = beta[%s] - mean%s * alpha;", ST_SHIFT * K, f.at, f.at, f.ix);
    dn_buf_line(b, "stats[%d + %s] = (float)(sq%s / (%s > 1 ? %s - 1 : 1));", ST_UVAR * K, f.at, f.ix, f.cnt, f.cnt);
}

static void emit_batch_stats_flat(dn_buf *b, const dn_plan *p, const dn_op *L) {
    int S = L->out.stride;
    dn_buf_line(b, "/* Batch statistics of z [n, %d] (n >= 2) into stats [5][%d]: mean, 1/sqrt(var + eps),", L->out.width, S);
    dn_buf_line(b, " * alpha = gamma/std, shift = beta - mean * alpha, unbiased variance. Each unit's sums");
    dn_buf_line(b, " * run over a chunk's rows in order, in double, then the chunks in the tree; 8 units");
    dn_buf_line(b, " * side by side. The sums pass through red [2][%d] (doubles), where dn_reduce_across", S);
    dn_buf_line(b, " * combines the processes' shares under MPI; n rows here, n_all in the whole batch. */");
    dn_buf_line(b, "static void %s_%s_bn_batch(const float *restrict z, const float *restrict gamma,", p->name, L->name);
    dn_buf_line(b, "        const float *restrict beta, float *restrict stats, double *restrict red, int n, int n_all) {");
    b->indent++;
    const int depth = dn_tree_depth(p->spec->train.batch_size);
    open_groups(b, S, 1);
    dn_buf_line(b, "double sum[8];");
    dn_emit_chunks_open(b, "double", "s", depth, "8");
    dn_buf_line(b, "double part[8] = {0};");
    dn_buf_line(b, "for (int r = c0; r < c1; r++)");
    dn_buf_line(b, "    for (int j = 0; j < 8; j++) part[j] += z[(size_t)r * %d + u + j];", S);
    dn_emit_chunks_close(b, "double", "s", "part", "8", "sum");
    dn_buf_line(b, "for (int j = 0; j < 8; j++) red[u + j] = sum[j];");
    dn_buf_close(b);
    dn_buf_line(b, "dn_reduce_across(red, %d);", S);
    open_groups(b, S, 1);
    dn_buf_line(b, "double sq[8];");
    dn_buf_line(b, "float mean[8];");
    dn_buf_line(b, "for (int j = 0; j < 8; j++) mean[j] = (float)(red[u + j] / n_all);");
    dn_emit_chunks_open(b, "double", "q", depth, "8");
    dn_buf_line(b, "double part[8] = {0};");
    dn_buf_line(b, "for (int r = c0; r < c1; r++)");
    dn_buf_line(b, "    for (int j = 0; j < 8; j++) {");
    dn_buf_line(b, "        const float e = z[(size_t)r * %d + u + j] - mean[j];", S);
    dn_buf_line(b, "        part[j] += (double)(e * e);");
    dn_buf_line(b, "    }");
    dn_emit_chunks_close(b, "double", "q", "part", "8", "sq");
    dn_buf_line(b, "for (int j = 0; j < 8; j++) red[%d + u + j] = sq[j];", S);
    dn_buf_close(b);
    dn_buf_line(b, "dn_reduce_across(red + %d, %d);", S, S);
    open_groups(b, S, 0);
    dn_buf_line(b, "const double *sq = red + %d + u;", S);
    dn_buf_line(b, "float mean[8];");
    dn_buf_line(b, "for (int j = 0; j < 8; j++) mean[j] = (float)(red[u + j] / n_all);");
    dn_buf_line(b, "for (int j = 0; j < 8; j++) {");
    b->indent++;
    emit_stats_final(b, L, FLAT_NAMES);
    dn_buf_close(b);
    dn_buf_close(b);
    dn_buf_close(b);
    dn_buf_blank(b);
}

/* The loop over an image's channels, one task each, as an omp for: opens
 * channel c. Every such loop of a kernel gives a thread the same channels
 * (static schedule, same count). */
static void open_channels(dn_buf *b, const dn_op *L) {
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int c = 0; c < %d; c++) {", L->bn_features);
    b->indent++;
}

/* Opens the loop over the rows of channel c with `at`, the offset of its
 * plane in row r. */
static void open_channel_rows(dn_buf *b, const dn_op *L) {
    dn_buf_line(b, "for (int r = 0; r < n; r++) {");
    b->indent++;
    dn_buf_line(b, "const size_t at = (size_t)r * %d + (size_t)c * %d;", L->out.stride, L->bn_plane);
}

/* The same over the rows [c0, c1) of a chunk. */
static void open_chunk_rows(dn_buf *b, const dn_op *L) {
    dn_buf_line(b, "for (int r = c0; r < c1; r++) {");
    b->indent++;
    dn_buf_line(b, "const size_t at = (size_t)r * %d + (size_t)c * %d;", L->out.stride, L->bn_plane);
}

/* The statements of a plane loop for one value: `i` its position in the
 * plane (a C expression), `l` the lane (0..7) whose partial sums it adds to. */
typedef void (*plane_body)(dn_buf *b, const char *i, const char *l);

/* A channel's plane of one row, value by value in order, each added to the
 * partial sums of lane (position mod 8): eight independent chains of double
 * additions instead of one, in an order set by the plane's size. */
static void emit_plane_lanes(dn_buf *b, const dn_op *L, plane_body body) {
    const int P = L->bn_plane, full = P / 8 * 8;
    if (full > 0) {
        dn_buf_line(b, "for (int i = 0; i < %d; i += 8)", full);
        dn_buf_line(b, "    for (int l = 0; l < 8; l++) {");
        b->indent += 2;
        body(b, "i + l", "l");
        b->indent -= 2;
        dn_buf_line(b, "    }");
    }
    if (full < P) {
        char lane[32];
        snprintf(lane, sizeof lane, full ? "i - %d" : "i", full);
        dn_buf_line(b, "for (int i = %d; i < %d; i++) {", full, P);
        b->indent++;
        body(b, "i", lane);
        dn_buf_close(b);
    }
}

/* Declares `name`, the sum of the eight lanes of `lanes` in lane order. */
static void emit_lane_total(dn_buf *b, const char *name, const char *lanes) {
    dn_buf_line(b, "double %s = 0.0;", name);
    dn_buf_line(b, "for (int l = 0; l < 8; l++) %s += %s[l];", name, lanes);
}

/* z at position i of the plane at `at`: "z[at + (size_t)i]". */
static void z_at(char *dst, size_t n, const char *i) {
    snprintf(dst, n, strchr(i, ' ') ? "z[at + (size_t)(%s)]" : "z[at + (size_t)%s]", i);
}

static void body_sum(dn_buf *b, const char *i, const char *l) {
    char zi[64];
    z_at(zi, sizeof zi, i);
    dn_buf_line(b, "sum8[%s] += %s;", l, zi);
}

static void body_sq(dn_buf *b, const char *i, const char *l) {
    char zi[64];
    z_at(zi, sizeof zi, i);
    dn_buf_line(b, "const float e = %s - mean;", zi);
    dn_buf_line(b, "sq8[%s] += (double)(e * e);", l);
}

static void body_sum_dot(dn_buf *b, const char *i, const char *l) {
    dn_buf_line(b, "sum8[%s] += dr[%s];", l, i);
    dn_buf_line(b, "dot8[%s] += (double)((zr[%s] - mean) * dr[%s]);", l, i, i);
}

static void emit_batch_stats_image(dn_buf *b, const dn_plan *p, const dn_op *L) {
    const dn_shape o = L->out.shape;
    dn_buf_line(b, "/* Batch statistics of z [n, %d, %d, %d] (n >= 2) per channel into stats [5][%d]: mean,", o.c, o.h,
                o.w, L->bn_width);
    dn_buf_line(b, " * 1/sqrt(var + eps), alpha = gamma/std, shift = beta - mean * alpha, unbiased variance,");
    dn_buf_line(b, " * each over the channel's n * %d values. Sums in double over a chunk's rows in order,", L->bn_plane);
    dn_buf_line(b, " * each row's plane in order into 8 lanes (position mod 8), then the lanes in order, then");
    dn_buf_line(b, " * the chunks in the tree; one task per channel. The sums pass through red [2][%d]", L->bn_width);
    dn_buf_line(b, " * (doubles), where dn_reduce_across combines the processes' shares under MPI. */");
    dn_buf_line(b, "static void %s_%s_bn_batch(const float *restrict z, const float *restrict gamma,", p->name, L->name);
    dn_buf_line(b, "        const float *restrict beta, float *restrict stats, double *restrict red, int n, int n_all) {");
    b->indent++;
    const int depth = dn_tree_depth(p->spec->train.batch_size), K = L->bn_width;
    dn_buf_line(b, "const int64_t cnt = (int64_t)n_all * %d;", L->bn_plane);
    open_channels(b, L);
    dn_buf_line(b, "double sum;");
    dn_emit_chunks_open(b, "double", "s", depth, "1");
    dn_buf_line(b, "double sum8[8] = {0};");
    open_chunk_rows(b, L);
    emit_plane_lanes(b, L, body_sum);
    dn_buf_close(b);
    emit_lane_total(b, "part", "sum8");
    dn_emit_chunks_close(b, "double", "s", "&part", "1", "&sum");
    dn_buf_line(b, "red[c] = sum;");
    dn_buf_close(b);
    dn_buf_line(b, "dn_reduce_across(red, %d);", K);
    open_channels(b, L);
    dn_buf_line(b, "double sq;");
    dn_buf_line(b, "const float mean = (float)(red[c] / cnt);");
    dn_emit_chunks_open(b, "double", "q", depth, "1");
    dn_buf_line(b, "double sq8[8] = {0};");
    open_chunk_rows(b, L);
    emit_plane_lanes(b, L, body_sq);
    dn_buf_close(b);
    emit_lane_total(b, "part", "sq8");
    dn_emit_chunks_close(b, "double", "q", "&part", "1", "&sq");
    dn_buf_line(b, "red[%d + c] = sq;", K);
    dn_buf_close(b);
    dn_buf_line(b, "dn_reduce_across(red + %d, %d);", K, K);
    open_channels(b, L);
    dn_buf_line(b, "const double sq = red[%d + c];", K);
    dn_buf_line(b, "const float mean = (float)(red[c] / cnt);");
    emit_stats_final(b, L, IMAGE_NAMES);
    dn_buf_close(b);
    dn_buf_line(b, "dn_sync();");
    dn_buf_close(b);
    dn_buf_blank(b);
}

static void emit_batch_stats(dn_buf *b, const dn_plan *p, const dn_op *L) {
    if (on_image(L))
        emit_batch_stats_image(b, p, L);
    else
        emit_batch_stats_flat(b, p, L);
}

static void emit_running_stats(dn_buf *b, const dn_plan *p, const dn_op *L) {
    int S = L->bn_width;
    const char *eps = L->bn_eps_float;
    dn_buf_line(b, "/* Eval: alpha and shift of stats [5][%d] from the running mean and variance. */", S);
    dn_buf_line(b, "static void %s_%s_bn_running(const float *restrict run_mean, const float *restrict run_var,",
                p->name, L->name);
    dn_buf_line(b, "        const float *restrict gamma, const float *restrict beta, float *restrict stats) {");
    b->indent++;
    dn_buf_line(b, "DN_OMP(omp for schedule(static))");
    dn_buf_line(b, "for (int u = 0; u < %d; u++) {", S);
    b->indent++;
    dn_buf_line(b, "const float istd = 1.0f / sqrtf(run_var[u] + %s);", eps);
    dn_buf_line(b, "const float alpha = istd * gamma[u];");
    dn_buf_line(b, "stats[%d + u] = alpha;", ST_ALPHA * S);
    dn_buf_line(b, "stats[%d + u] = beta[u] - run_mean[u] * alpha;", ST_SHIFT * S);
    dn_buf_close(b);
    dn_buf_close(b);
    dn_buf_blank(b);
}

/* bn_apply on an image: one task per (row, channel), its plane scaled by
 * alpha, then the plane epilogue conv2d uses (shift, activation, dropout of
 * elements or channels). */
static void emit_apply_image(dn_buf *b, const dn_plan *p, const dn_op *L) {
    const int K = L->bn_width, C = L->bn_features, P = L->bn_plane, drop = L->drop.p > 0;
    const dn_shape o = L->out.shape;
    dn_buf_line(b, "/* a = %s(z * alpha + shift) [n, %d, %d, %d] (row stride %d), alpha and shift per channel%s. */",
                dn_act_name(L->act.type), o.c, o.h, o.w, L->out.stride,
                !drop ? "" : L->drop_channel ? "; in training h = a * mask per channel" : "; in training h = a * mask per element");
    dn_buf_line(b, "static void %s_%s_bn_apply(const float *restrict z, const float *restrict stats, float *restrict a,",
                p->name, L->name);
    dn_buf_line(b, "        %s%s%sint n%s) {", L->act.from_pre ? "float *restrict pre, " : "",
                drop ? "float *restrict mask, " : "", L->stochastic ? "float *restrict h, " : "",
                L->stochastic ? ", uint64_t seed, uint64_t step" : "");
    b->indent++;
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int t = 0; t < n * %d; t++) {", C);
    b->indent++;
    dn_buf_line(b, "const int r = t / %d, c = t %% %d;", C, C);
    dn_buf_line(b, "const float *zc = z + (size_t)r * %d + (size_t)c * %d;", L->out.stride, P);
    dn_buf_line(b, "const float alpha = stats[%d + c], shift = stats[%d + c];", ST_ALPHA * K, ST_SHIFT * K);
    dn_buf_line(b, "float s[%d];", P);
    dn_buf_line(b, "for (int i = 0; i < %d; i++) s[i] = zc[i] * alpha;", P);
    dn_emit_plane_epilogue(b, L, "s", "shift");
    dn_emit_row_padding(b, L, "c == 0");
    dn_buf_close(b);
    dn_buf_line(b, "dn_sync();");
    dn_buf_close(b);
    dn_buf_blank(b);
}

/* bn_apply: tiles of 8 rows x 8 units; the dropout scales of a tile come
 * from one dn_dropout_block, as in the forward product's tiles. */
static void emit_apply(dn_buf *b, const dn_plan *p, const dn_op *L) {
    int S = L->out.stride, stoch = L->stochastic, drop = L->drop.p > 0;
    dn_buf_line(b, "/* a = %s(z * alpha + shift) [n, %d]%s. */", dn_act_name(L->act.type), L->out.width,
                stoch ? "; in training (h != NULL) noise and dropout into h" : "");
    dn_buf_line(b, "static void %s_%s_bn_apply(const float *restrict z, const float *restrict stats, float *restrict a,",
                p->name, L->name);
    dn_buf_line(b, "        %s%s%sint n%s) {", L->act.from_pre ? "float *restrict pre, " : "",
                drop ? "float *restrict mask, " : "", stoch ? "float *restrict h, " : "",
                stoch ? ", uint64_t seed, uint64_t step" : "");
    b->indent++;
    dn_buf_line(b, "const int row_blocks = (n + 7) / 8;");
    dn_buf_line(b, "DN_OMP(omp for schedule(static))");
    dn_buf_line(b, "for (int t = 0; t < %d * row_blocks; t++) {", S / 8);
    b->indent++;
    dn_buf_line(b, "const int u = (t / row_blocks) * 8, r0 = (t %% row_blocks) * 8;");
    dn_buf_line(b, "const int nr = n - r0 < 8 ? n - r0 : 8;");
    if (drop) dn_emit_dropout_block(b, L, 8, 8, "u");
    dn_buf_line(b, "const dn_v8 alpha = dn_load8(stats + %d + u);", ST_ALPHA * S);
    dn_buf_line(b, "for (int r = 0; r < nr; r++) {");
    b->indent++;
    dn_buf_line(b, "float zs[8];");
    dn_buf_line(b, "dn_store8(zs, dn_load8(z + (size_t)(r0 + r) * %d + u) * alpha);", S);
    dn_buf_line(b, "%s_%s_finish(zs, (size_t)(r0 + r), u, stats + %d, a%s%s%s);", p->name, L->name, ST_SHIFT * S,
                L->act.from_pre ? ", pre" : "", drop ? ", mask, mk[r]" : "", stoch ? ", h, seed, step" : "");
    dn_buf_close(b);
    dn_buf_close(b);
    dn_buf_close(b);
    dn_buf_blank(b);
}

/* The backward kernel's signature, plain or with Adam fused. */
static void emit_backward_signature(dn_buf *b, const dn_plan *p, const dn_op *L, int adam) {
    if (adam) {
        dn_buf_line(b, "static void %s_%s_bn_backward_adam(float *restrict d, const float *restrict z,", p->name,
                    L->name);
        dn_buf_line(b, "        const float *restrict stats, float *restrict gamma, float *restrict beta, float *restrict m,");
        dn_buf_line(b, "        float *restrict v, const dn_adam_coef *ac, float *restrict run_mean,");
        dn_buf_line(b, "        float *restrict run_var, double *restrict red, int n, int n_all) {");
    } else {
        dn_buf_line(b, "static void %s_%s_bn_backward(float *restrict d, const float *restrict z,", p->name, L->name);
        dn_buf_line(b, "        const float *restrict stats, const float *restrict gamma, float *restrict dgamma,");
        dn_buf_line(b, "        float *restrict dbeta, float *restrict run_mean, float *restrict run_var, double *restrict red,");
        dn_buf_line(b, "        int n, int n_all) {");
    }
}

/* The end of the backward pass of one feature, from its sums: gamma's and
 * beta's gradients stored or applied by Adam, then the running statistics
 * moved by the momentum. */
static void emit_backward_final(dn_buf *b, const dn_op *L, int adam, feature_names f) {
    const int K = L->bn_width;
    if (adam) {
        dn_buf_line(b, "dn_adam1(gamma + %s, m + %s, v + %s, (float)dot%s * istd%s, ac);", f.at, f.at, f.at, f.ix, f.ix);
        dn_buf_line(b, "dn_adam1(beta + %s, m + %d + %s, v + %d + %s, (float)sum%s, ac);", f.at, K, f.at, K, f.at, f.ix);
    } else {
        /* the sums are the whole batch's: under MPI the share of row 0 carries
         * them, the others add -0.0f (x + -0.0f is x, zeros' signs included) */
        dn_buf_line(b, "dgamma[%s] = dn_row_base ? -0.0f : (float)dot%s * istd%s;", f.at, f.ix, f.ix);
        dn_buf_line(b, "dbeta[%s] = dn_row_base ? -0.0f : (float)sum%s;", f.at, f.ix);
    }
    dn_buf_line(b, "const float mom = %s;", L->bn_momentum);
    dn_buf_line(b, "run_mean[%s] = mom * mean%s + (1.0f - mom) * run_mean[%s];", f.at, f.ix, f.at);
    dn_buf_line(b, "run_var[%s] = mom * stats[%d + %s] + (1.0f - mom) * run_var[%s];", f.at, ST_UVAR * K, f.at, f.at);
}

static void emit_backward_flat(dn_buf *b, const dn_plan *p, const dn_op *L, int adam) {
    int S = L->out.stride;
    const char *mom = L->bn_momentum;
    if (adam) {
        dn_buf_line(b, "/* Backward through batch norm as above, with gamma and beta updated by Adam at once");
        dn_buf_line(b, " * (moments: m and v, gamma's [%d] then beta's [%d]). */", S, S);
    } else {
        dn_buf_line(b, "/* Backward through batch norm (batch statistics): d [n, %d], the gradient wrt the", L->out.width);
        dn_buf_line(b, " * output, becomes the gradient wrt z in place:");
        dn_buf_line(b, " *   d = (d - sum(d) / n - (z - mean) * dot / (n var)) * gamma / std,  dot = sum((z - mean) d)");
        dn_buf_line(b, " * dgamma = dot / std, dbeta = sum(d). Then run_mean and run_var move toward the batch's");
        dn_buf_line(b, " * mean and unbiased variance by momentum %s. 8 units side by side, sums in double. */", mom);
    }
    emit_backward_signature(b, p, L, adam);
    b->indent++;
    open_groups(b, S, 1);
    dn_buf_line(b, "const float *mean = stats + %d + u;", ST_MEAN * S);
    dn_buf_line(b, "double res[16]; /* sums of d, then of (z - mean) d */");
    dn_emit_chunks_open(b, "double", "s", dn_tree_depth(p->spec->train.batch_size), "16");
    dn_buf_line(b, "double part[16] = {0};");
    dn_buf_line(b, "for (int r = c0; r < c1; r++) {");
    dn_buf_line(b, "    const float *dr = d + (size_t)r * %d + u, *zr = z + (size_t)r * %d + u;", S, S);
    dn_buf_line(b, "    for (int j = 0; j < 8; j++) {");
    dn_buf_line(b, "        part[j] += dr[j];");
    dn_buf_line(b, "        part[8 + j] += (double)((zr[j] - mean[j]) * dr[j]);");
    dn_buf_line(b, "    }");
    dn_buf_line(b, "}");
    dn_emit_chunks_close(b, "double", "s", "part", "16", "res");
    dn_buf_line(b, "for (int j = 0; j < 8; j++) {");
    dn_buf_line(b, "    red[u + j] = res[j];");
    dn_buf_line(b, "    red[%d + u + j] = res[8 + j];", S);
    dn_buf_line(b, "}");
    dn_buf_close(b);
    dn_buf_line(b, "dn_reduce_across(red, %d);", 2 * S);
    open_groups(b, S, 0);
    dn_buf_line(b, "const float *mean = stats + %d + u, *istd = stats + %d + u;", ST_MEAN * S, ST_ISTD * S);
    dn_buf_line(b, "const double *sum = red + u, *dot = red + %d + u;", S);
    dn_buf_line(b, "float k[8], mean_d[8], scale[8];");
    dn_buf_line(b, "for (int j = 0; j < 8; j++) {");
    dn_buf_line(b, "    k[j] = (float)dot[j] * istd[j] * istd[j] / (float)n_all;");
    dn_buf_line(b, "    mean_d[j] = (float)(sum[j] / n_all);");
    dn_buf_line(b, "    scale[j] = istd[j] * gamma[u + j];");
    dn_buf_line(b, "}");
    dn_buf_line(b, "for (int r = 0; r < n; r++) {");
    dn_buf_line(b, "    float *dr = d + (size_t)r * %d + u;", S);
    dn_buf_line(b, "    const float *zr = z + (size_t)r * %d + u;", S);
    dn_buf_line(b, "    for (int j = 0; j < 8; j++) dr[j] = (dr[j] - mean_d[j] - (zr[j] - mean[j]) * k[j]) * scale[j];");
    dn_buf_line(b, "}");
    dn_buf_line(b, "for (int j = 0; j < 8; j++) {");
    b->indent++;
    emit_backward_final(b, L, adam, FLAT_NAMES);
    dn_buf_close(b);
    dn_buf_close(b);
    dn_buf_close(b);
    dn_buf_blank(b);
}

/* Backward through BatchNorm2d: as the flat one, per channel over the
 * channel's n * h * w values, one task per channel. */
static void emit_backward_image(dn_buf *b, const dn_plan *p, const dn_op *L, int adam) {
    const int K = L->bn_width, P = L->bn_plane;
    const dn_shape o = L->out.shape;
    if (adam) {
        dn_buf_line(b, "/* Backward through batch norm as above, with gamma and beta updated by Adam at once");
        dn_buf_line(b, " * (moments: m and v, gamma's [%d] then beta's [%d]). */", K, K);
    } else {
        dn_buf_line(b, "/* Backward through batch norm (batch statistics), per channel over its n * %d values:", P);
        dn_buf_line(b, " * d [n, %d, %d, %d], the gradient wrt the output, becomes the gradient wrt z in place:", o.c,
                    o.h, o.w);
        dn_buf_line(b, " *   d = (d - sum(d) / cnt - (z - mean) * dot / (cnt var)) * gamma / std,  dot = sum((z - mean) d)");
        dn_buf_line(b, " * dgamma = dot / std, dbeta = sum(d). Then run_mean and run_var move toward the batch's");
        dn_buf_line(b, " * mean and unbiased variance by momentum %s. One task per channel, sums in 8 lanes as", L->bn_momentum);
        dn_buf_line(b, " * bn_batch's. */");
    }
    emit_backward_signature(b, p, L, adam);
    b->indent++;
    dn_buf_line(b, "const int64_t cnt = (int64_t)n_all * %d;", P);
    open_channels(b, L);
    dn_buf_line(b, "const float mean = stats[%d + c];", ST_MEAN * K);
    dn_buf_line(b, "double res[2]; /* the sums of d and of (z - mean) d */");
    dn_emit_chunks_open(b, "double", "s", dn_tree_depth(p->spec->train.batch_size), "2");
    dn_buf_line(b, "double sum8[8] = {0}, dot8[8] = {0};");
    open_chunk_rows(b, L);
    dn_buf_line(b, "const float *dr = d + at, *zr = z + at;");
    emit_plane_lanes(b, L, body_sum_dot);
    dn_buf_close(b);
    emit_lane_total(b, "sum", "sum8");
    emit_lane_total(b, "dot", "dot8");
    dn_buf_line(b, "double part[2] = {sum, dot};");
    dn_emit_chunks_close(b, "double", "s", "part", "2", "res");
    dn_buf_line(b, "red[c] = res[0];");
    dn_buf_line(b, "red[%d + c] = res[1];", K);
    dn_buf_close(b);
    dn_buf_line(b, "dn_reduce_across(red, %d);", 2 * K);
    open_channels(b, L);
    dn_buf_line(b, "const float mean = stats[%d + c], istd = stats[%d + c];", ST_MEAN * K, ST_ISTD * K);
    dn_buf_line(b, "const double sum = red[c], dot = red[%d + c];", K);
    dn_buf_line(b, "const float k = (float)dot * istd * istd / (float)cnt;");
    dn_buf_line(b, "const float mean_d = (float)(sum / cnt);");
    dn_buf_line(b, "const float scale = istd * gamma[c];");
    open_channel_rows(b, L);
    dn_buf_line(b, "float *dr = d + at;");
    dn_buf_line(b, "const float *zr = z + at;");
    dn_buf_line(b, "for (int i = 0; i < %d; i++) dr[i] = (dr[i] - mean_d - (zr[i] - mean) * k) * scale;", P);
    dn_buf_close(b);
    emit_backward_final(b, L, adam, IMAGE_NAMES);
    dn_buf_close(b);
    dn_buf_line(b, "dn_sync();");
    dn_buf_close(b);
    dn_buf_blank(b);
}

/* ---- the module's interface (kind.h) ------------------------------------------- */

static void bn_describe(dn_buf *b, const dn_plan *p, const dn_op *op) {
    (void)p;
    if (on_image(op))
        dn_buf_printf(b, "%-12s batchnorm2d %d channels (momentum %s, eps %s) %s", op->name, op->bn_features,
                      op->bn_momentum_text, op->bn_eps_text, dn_act_name(op->act.type));
    else
        dn_buf_printf(b, "%-12s batchnorm %3d (momentum %s, eps %s) %s", op->name, op->out.width,
                      op->bn_momentum_text, op->bn_eps_text, dn_act_name(op->act.type));
    if (op->noise > 0) dn_buf_printf(b, " noise %s", op->noise_text);
    if (op->drop.p > 0) dn_buf_printf(b, " dropout %s%s", op->drop.rate, op->drop_channel ? " (channels)" : "");
}

static void bn_kernels(dn_buf *b, const dn_plan *p, const dn_op *op, int forward_only) {
    const int image = on_image(op);
    dn_buf_line(b, "/* ==== %s: batch norm of %d %s (momentum %s, eps %s), %s%s%s%s%s%s ==== */", op->name,
                op->bn_features, image ? "channels" : "units", op->bn_momentum_text, op->bn_eps_text,
                dn_act_name(op->act.type), op->noise > 0 ? ", noise " : "", op->noise > 0 ? op->noise_text : "",
                op->drop.p > 0 ? ", dropout " : "", op->drop.p > 0 ? op->drop.rate : "",
                op->drop.p > 0 && op->drop_channel ? " per channel" : "");
    dn_buf_blank(b);
    dn_emit_act_functions(b, &op->act, forward_only);
    if (!image) dn_emit_finish(b, p, op);
    if (!forward_only) emit_batch_stats(b, p, op);
    emit_running_stats(b, p, op);
    if (image)
        emit_apply_image(b, p, op);
    else
        emit_apply(b, p, op);
    if (forward_only) return;
    for (int adam = 0; adam <= p->fused_adam; adam++) {
        if (image)
            emit_backward_image(b, p, op, adam);
        else
            emit_backward_flat(b, p, op, adam);
    }
}

static void bn_forward(dn_buf *b, const dn_plan *p, const dn_op *op, int train) {
    const char *m = p->name, *nm = op->name;
    char extra[4 * DN_EXPR_MAX];
    if (train)
        dn_buf_line(b, "%s_%s_bn_batch(%s, params + %zu, params + %zu, %s, %s, n, n_all);", m, nm, op->z,
                    op->g_off, op->beta_off, op->stats, op->red);
    else
        dn_buf_line(b, "%s_%s_bn_running(params + %zu, params + %zu, params + %zu, params + %zu, %s);", m, nm,
                    op->rm_off, op->rv_off, op->g_off, op->beta_off, op->stats);
    dn_epilogue_args(extra, sizeof extra, op, train);
    dn_buf_line(b, "%s_%s_bn_apply(%s, %s, %s,%s);", m, nm, op->z, op->stats, op->out.a, extra);
}

static void bn_backward(dn_buf *b, const dn_plan *p, const dn_op *op) {
    dn_buf_line(b, "%s_%s_bn_backward(%s, %s, %s, params + %zu, grads + %zu, grads + %zu,", p->name, op->name,
                op->out.d, op->z, op->stats, op->g_off, op->g_off, op->beta_off);
    dn_buf_line(b, "        params + %zu, params + %zu, %s, n, n_all);", op->rm_off, op->rv_off, op->red);
}

static void bn_backward_adam(dn_buf *b, const dn_plan *p, const dn_op *op) {
    dn_buf_line(b, "%s_%s_bn_backward_adam(%s, %s, %s, params + %zu, params + %zu, m + %zu, v + %zu,", p->name,
                op->name, op->out.d, op->z, op->stats, op->g_off, op->beta_off, op->g_off, op->g_off);
    dn_buf_line(b, "        ac, params + %zu, params + %zu, %s, n, n_all);", op->rm_off, op->rv_off, op->red);
}

const dn_kind dn_kind_batchnorm = {
    .name = "batchnorm",
    .describe = bn_describe,
    .kernels = bn_kernels,
    .forward = bn_forward,
    .backward = bn_backward,
    .backward_adam = bn_backward_adam,
};
