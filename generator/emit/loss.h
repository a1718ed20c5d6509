/* loss.h - the loss of the network's output (p->last->out), as the spec's
 * train.loss says: softmax + cross-entropy (with label smoothing),
 * sigmoid + binary cross-entropy of one logit against labels 0 and 1, or
 * mean squared error against one-hot targets, each the mean over the batch. */
#ifndef DNGEN_LOSS_H
#define DNGEN_LOSS_H

#include "plan.h"
#include "text.h"

/* The loss of one row r: from zr (the output's row), rowloss[r] and hits[r]
 * when y != NULL, the output into p when p != NULL, and the gradient into
 * row r of d (the output's row stride) when d != NULL. With `train`: y and
 * d are set and there is no p, so no tests. Needs inv_n = 1/n in scope. */
void dn_emit_loss_row(dn_buf *b, const dn_plan *p, int train);

/* Whether the targets are real values (data.targets: values): then the
 * kernels' `y` is a float [n, outputs] array of targets, bt->t, and mse
 * compares against it instead of one-hot labels (no hits). */
int dn_loss_values(const dn_plan *p);
/* The C type of the kernels' y ("const int32_t" or "const float") and the
 * batch field that feeds it ("bt->y" or "bt->t"). */
const char *dn_loss_y_type(const dn_plan *p);
const char *dn_loss_y_field(const dn_plan *p);

/* The kernels <model>_loss (the rows of a batch, an orphaned omp for
 * ending in dn_sync) and <model>_sum_rows (loss and hits summed in row
 * order, the same for any thread count). */
void dn_emit_loss(dn_buf *b, const dn_plan *p);

#endif
