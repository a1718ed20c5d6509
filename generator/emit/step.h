/* step.h - the model-level functions of a generated program, emitted by
 * walking the plan's ops: the work buffers, the two training steps and the
 * eval step. */
#ifndef DNGEN_STEP_H
#define DNGEN_STEP_H

#include "plan.h"
#include "text.h"

/* The struct <model>_buffers, <model>_bind and <model>_workspace_size. */
void dn_emit_buffers(dn_buf *b, const dn_plan *p);

/* <model>_train_step (gradients into grads) and <model>_train_step_adam
 * (Adam fused into the weight-gradient kernels), each one parallel region. */
void dn_emit_train_steps(dn_buf *b, const dn_plan *p);

/* <model>_eval: forward without dropout (unless MC dropout), the loss. */
void dn_emit_eval(dn_buf *b, const dn_plan *p);

#endif
