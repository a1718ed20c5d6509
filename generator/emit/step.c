/* step.c - the work buffers, training steps and eval step (step.h). Each
 * walks the plan's ops through their kinds (kind.h) and knows none of them. */
#include "step.h"

#include "kind.h"
#include "loss.h"

/* ---- buffers --------------------------------------------------------------- */

void dn_emit_buffers(dn_buf *b, const dn_plan *p) {
    const char *m = p->name;
    dn_buf_line(b, "/* ==== work buffers (one block, carved per batch of n rows) ==== */");
    dn_buf_blank(b);
    dn_buf_line(b, "typedef struct {");
    for (int i = 0; i < p->n_bufs; i++)
        dn_buf_line(b, "    float *%s; /* %s */", p->bufs[i].name, p->bufs[i].comment);
    dn_buf_line(b, "} %s_buffers;", m);
    dn_buf_blank(b);
    dn_buf_line(b, "/* Carves the buffers for n rows from ws; with ws == NULL only measures.");
    dn_buf_line(b, " * Returns the bytes used. */");
    dn_buf_line(b, "static size_t %s_bind(void *ws, int n, %s_buffers *bf) {", m, m);
    b->indent++;
    dn_buf_line(b, "char *base = ws;");
    dn_buf_line(b, "size_t off = 0;");
    dn_buf_line(b, "const size_t rows = (size_t)n;");
    for (int i = 0; i < p->n_bufs; i++) {
        const dn_plan_buf *f = &p->bufs[i];
        if (!f->per_row)
            dn_buf_line(b, "bf->%s = dn_carve(base, &off, %zu);", f->name, f->floats);
        else if (f->floats == 1)
            dn_buf_line(b, "bf->%s = dn_carve(base, &off, rows);", f->name);
        else
            dn_buf_line(b, "bf->%s = dn_carve(base, &off, rows * %zu);", f->name, f->floats);
    }
    dn_buf_line(b, "return off;");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
    dn_buf_line(b, "static size_t %s_workspace_size(int max_batch) {", m);
    dn_buf_line(b, "    %s_buffers bf;", m);
    dn_buf_line(b, "    return %s_bind(NULL, max_batch, &bf);", m);
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

/* ---- steps -------------------------------------------------------------------- */

/* The forward calls of every op, in training or eval. In training with the
 * fused head, the last op's call is the head's, which also runs the loss. */
static void emit_forward_calls(dn_buf *b, const dn_plan *p, int train) {
    for (int i = 0; i < p->n_ops; i++) dn_kind_of(p->ops[i].kind)->forward(b, p, &p->ops[i], train);
    if (train && p->fused_head) return;
    dn_buf_line(b, "%s_loss(%s, %s, %s, %s, bf.rowloss, bf.hits, n, n_all);", p->name, p->last->out.a,
                dn_loss_y_field(p), train ? p->last->out.d : "NULL", train ? "NULL" : "out");
}

/* The start of a step function: bind the buffers, open the parallel region. */
static void open_step(dn_buf *b, const dn_plan *p) {
    dn_buf_line(b, "%s_buffers bf;", p->name);
    dn_buf_line(b, "const int n = bt->n, n_all = bt->n_total > n ? bt->n_total : n;");
    dn_buf_line(b, "(void)n_all;");
    dn_buf_line(b, "%s_bind(ws, n, &bf);", p->name);
    dn_buf_line(b, "DN_TEAM_DECLARE(team);");
    dn_buf_line(b, "DN_OMP(omp parallel)");
    dn_buf_line(b, "{");
    b->indent++;
    dn_buf_line(b, "DN_TEAM_BIND(team);");
    dn_buf_line(b, "dn_row_base = (uint32_t)bt->row0;");
}

static void close_region(dn_buf *b) {
    b->indent--;
    dn_buf_line(b, "}");
}

static void emit_train_step(dn_buf *b, const dn_plan *p) {
    const char *m = p->name;
    const dn_spec *s = p->spec;
    const int state = s->n_floats > s->n_train_floats; /* state tensors: running statistics */
    dn_buf_line(b, "/* ==== training step ==== */");
    dn_buf_blank(b);
    dn_buf_line(b, "/* Forward with dropout, loss, backward into grads (all of them overwritten).");
    dn_buf_line(b, " * One parallel region; the kernels split work with orphaned omp for.%s", state ? "" : " */");
    if (state) {
        dn_buf_line(b, " * State tensors (params from %zu on, batch norm's running statistics)", s->n_train_floats);
        dn_buf_line(b, " * are updated, their grads zeroed. */");
    }
    dn_buf_line(b, "static double %s_train_step(float *params, float *grads, void *ws, const dn_batch *bt, int *correct) {", m);
    b->indent++;
    if (state)
        dn_buf_line(b, "memset(grads + %zu, 0, sizeof(float) * %zu);", s->n_train_floats, s->n_floats - s->n_train_floats);
    open_step(b, p);
    emit_forward_calls(b, p, 1);
    for (int i = p->n_ops - 1; i >= 0; i--) {
        const dn_kind *k = dn_kind_of(p->ops[i].kind);
        if (k->backward) k->backward(b, p, &p->ops[i]);
    }
    close_region(b);
    dn_buf_line(b, "return %s_sum_rows(&bf, n, correct);", m);
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

/* The training step with Adam fused into the weight-gradient kernels. Per
 * op, top down: its input gradient first (from the weights before their
 * update), then the fused update. */
static void emit_train_step_adam(dn_buf *b, const dn_plan *p) {
    const char *m = p->name;
    dn_buf_line(b, "/* True when every row's loss is finite (every thread computes the same). */");
    dn_buf_line(b, "static int %s_rows_finite(const %s_buffers *bf, int n) {", m, m);
    dn_buf_line(b, "    for (int r = 0; r < n; r++)");
    dn_buf_line(b, "        if (!isfinite(bf->rowloss[r])) return 0;");
    dn_buf_line(b, "    return 1;");
    dn_buf_line(b, "}");
    dn_buf_blank(b);
    dn_buf_line(b, "/* Forward with dropout, loss, then per layer the input gradient and the");
    dn_buf_line(b, " * weight gradient with Adam applied tile by tile (no gradient buffer).");
    dn_buf_line(b, " * A non-finite loss leaves params, m and v untouched. */");
    dn_buf_line(b, "static double %s_train_step_adam(float *params, float *m, float *v, const dn_adam_coef *ac,", m);
    dn_buf_line(b, "        void *ws, const dn_batch *bt, int *correct) {");
    b->indent++;
    open_step(b, p);
    emit_forward_calls(b, p, 1);
    dn_buf_line(b, "if (%s_rows_finite(&bf, n)) {", m);
    b->indent++;
    for (int i = p->n_ops - 1; i >= 0; i--) {
        const dn_kind *k = dn_kind_of(p->ops[i].kind);
        if (k->backward_adam) k->backward_adam(b, p, &p->ops[i]);
    }
    close_region(b);
    close_region(b);
    dn_buf_line(b, "return %s_sum_rows(&bf, n, correct);", m);
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

/* Adam over a whole gradient with the fused kernels' arithmetic. */
static void emit_adam_apply(dn_buf *b, const dn_plan *p) {
    const char *m = p->name;
    dn_buf_line(b, "/* Adam on n parameters p with gradient g (moments m, v), element by element as the");
    dn_buf_line(b, " * fused kernels apply it (dn_adam8, dn_adam1 past the last 8): the runtime's update when");
    dn_buf_line(b, " * the gradient must be complete first (clipping, MPI). Returns n. */");
    dn_buf_line(b, "static size_t %s_adam_apply(const dn_adam_coef *ac, float *p, const float *g, float *m, float *v,", m);
    dn_buf_line(b, "        size_t n) {");
    b->indent++;
    dn_buf_line(b, "const long long blocks = (long long)(n / 8);");
    dn_buf_line(b, "DN_OMP(omp parallel for schedule(static) if (blocks > 4096))");
    dn_buf_line(b, "for (long long i = 0; i < blocks; i++) dn_adam8(p + 8 * i, m + 8 * i, v + 8 * i, g + 8 * i, ac);");
    dn_buf_line(b, "for (size_t i = (size_t)blocks * 8; i < n; i++) dn_adam1(p + i, m + i, v + i, g[i], ac);");
    dn_buf_line(b, "return n;");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

void dn_emit_train_steps(dn_buf *b, const dn_plan *p) {
    emit_train_step(b, p);
    if (p->fused_adam) emit_train_step_adam(b, p);
    if (p->adam) emit_adam_apply(b, p);
}

void dn_emit_eval(dn_buf *b, const dn_plan *p) {
    const char *m = p->name;
    dn_buf_line(b, "/* ==== evaluation (dropout off%s) ==== */", p->randomized ? " unless MC dropout" : "");
    dn_buf_blank(b);
    dn_buf_line(b, "static double %s_eval(const float *params, void *ws, const dn_batch *bt, float *out, int *correct) {",
                m);
    b->indent++;
    if (p->randomized) dn_buf_line(b, "const int mc = bt->mc_dropout;");
    open_step(b, p);
    emit_forward_calls(b, p, 0);
    close_region(b);
    dn_buf_line(b, "return %s ? %s_sum_rows(&bf, n, correct) : 0.0;", dn_loss_y_field(p), m);
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}
