/* kind.h - the interface of a layer kind's emitter module.
 *
 * Each op of the plan has a kind (dn_op_kind, plan.h); each kind is one
 * module (dense.c, batchnorm.c, dropout.c, conv.c, pool.c) that fills one
 * dn_kind. The model
 * emitter (model.c) walks the plan's ops and calls these functions; it knows
 * no kind by name, and a kind knows no other kind: what an op reads and
 * leaves is in its dn_value in and out, names and all.
 *
 * The contract of every function: it appends C text to b for op (whose
 * kind is this one) of plan p, trusting the plan entirely; it reports
 * nothing and fails never (dn_buf collects an out-of-memory state).
 *
 * Generated kernels are functions `static void <model>_<op>_<what>(...)`
 * called from inside the step's one parallel region: each splits its work
 * with an orphaned `omp for` and, where a later kernel reads what it wrote,
 * ends in dn_sync(). Every sum runs in an order fixed by the shapes alone,
 * so results are bit-identical at any thread count.
 */
#ifndef DNGEN_KIND_H
#define DNGEN_KIND_H

#include "plan.h"
#include "text.h"

typedef struct {
    const char *name;
    /* One line for the banner (without " *   " and newline): what the op
     * computes, e.g. "fc1          dense    784 -> 256    relu     dropout 0.5". */
    void (*describe)(dn_buf *b, const dn_plan *p, const dn_op *op);
    /* The op's kernel definitions. With forward_only (predictors) only
     * those the eval step calls. */
    void (*kernels)(dn_buf *b, const dn_plan *p, const dn_op *op, int forward_only);
    /* Its calls in a step's forward pass: in training (`train`: masks and
     * noise drawn from bt->seed, bt->step) or in eval (dropout only when the
     * step's `mc` is set). Reads op->in.train or op->in.eval, leaves op->out. */
    void (*forward)(dn_buf *b, const dn_plan *p, const dn_op *op, int train);
    /* Its calls in the backward pass of the plain step, after the ops after
     * it: from op->out.d, the gradients of its parameters into `grads` (at
     * the parameters' offsets) and op->in.d. NULL when it has none. */
    void (*backward)(dn_buf *b, const dn_plan *p, const dn_op *op);
    /* The same in the step with Adam fused in: the parameters, at the same
     * offsets in params, m and v, updated through `ac`, after op->in.d was
     * computed from the weights before their update. NULL when none. */
    void (*backward_adam)(dn_buf *b, const dn_plan *p, const dn_op *op);
} dn_kind;

extern const dn_kind dn_kind_dropout, dn_kind_dense, dn_kind_batchnorm, dn_kind_conv2d, dn_kind_pool2d;

/* The module of kind k. */
const dn_kind *dn_kind_of(dn_op_kind k);

#endif
