/* dropout.c - the dropout kind: h = x * mask on the network's input, as
 * PyTorch's nn.Dropout (inverted dropout: survivors scaled by 1/(1-p)),
 * identity in eval unless MC dropout asks for masks. */
#include <inttypes.h>

#include "kind.h"

static void dropout_describe(dn_buf *b, const dn_plan *p, const dn_op *op) {
    (void)p;
    dn_buf_printf(b, "%-12s dropout %d features, rate %s", op->name, op->out.width, op->drop.rate);
}

static void dropout_kernels(dn_buf *b, const dn_plan *p, const dn_op *op, int forward_only) {
    const int n = op->out.width;
    (void)forward_only; /* the same kernel serves training and MC dropout */
    dn_buf_line(b, "/* ==== %s: %d features, dropout %s ==== */", op->name, n, op->drop.rate);
    dn_buf_blank(b);
    dn_buf_line(b, "/* h = x * mask [n, %d], mask = 0 or 1/(1 - %s) per feature (slot %d). */", n, op->drop.rate,
                op->slot);
    dn_buf_line(b, "static void %s_%s_dropout(const float *restrict x, float *restrict mask, float *restrict h,",
                p->name, op->name);
    dn_buf_line(b, "        int n, uint64_t seed, uint64_t step) {");
    b->indent++;
    dn_buf_line(b, "DN_OMP(omp for schedule(static) nowait)");
    dn_buf_line(b, "for (int r = 0; r < n; r++)");
    dn_buf_line(b, "    for (int u = 0; u < %d; u += 4) {", n);
    dn_buf_line(b, "        float m[4];");
    dn_buf_line(b, "        dn_dropout4(seed, step, %d, (uint32_t)r, (uint32_t)u, %" PRIu32 "u, %s, m);", op->slot,
                op->drop.threshold, op->drop.scale);
    dn_buf_line(b, "        for (int j = 0; j < 4 && u + j < %d; j++) {", n);
    dn_buf_line(b, "            const size_t i = (size_t)r * %d + (size_t)(u + j);", n);
    dn_buf_line(b, "            mask[i] = m[j];");
    dn_buf_line(b, "            h[i] = x[i] * m[j];");
    dn_buf_line(b, "        }");
    dn_buf_line(b, "    }");
    dn_buf_line(b, "dn_sync();");
    b->indent--;
    dn_buf_line(b, "}");
    dn_buf_blank(b);
}

static void dropout_forward(dn_buf *b, const dn_plan *p, const dn_op *op, int train) {
    dn_buf_line(b, "%s%s_%s_dropout(%s, %s, %s, n, bt->seed, bt->step);", train ? "" : "if (mc) ", p->name, op->name,
                op->in.a, op->out.mask, op->out.train);
}

const dn_kind dn_kind_dropout = {
    .name = "dropout",
    .describe = dropout_describe,
    .kernels = dropout_kernels,
    .forward = dropout_forward,
    .backward = NULL,
    .backward_adam = NULL,
};
