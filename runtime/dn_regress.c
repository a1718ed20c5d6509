/* dn_regress.c - what regression (mse against real-valued targets) changes
 * in the trainer's reports: RMSE, MAE and R^2 instead of accuracy.
 *
 *   RMSE = sqrt(mean over rows and outputs of (out - t)^2)
 *        = sqrt(mean loss), the loss being each row's mean over outputs
 *   MAE  = mean over rows and outputs of |out - t|
 *   R^2  = mean over outputs j of 1 - SSE_j / SST_j, SST_j the sum of
 *          squares of t_j about its mean (scikit-learn's r2_score with
 *          multioutput='uniform_average'; a constant target gives 1 when
 *          predicted exactly, else 0)
 * Every sum runs in row order in double, so the figures do not depend on
 * the thread count. */
#include "dn_runtime.h"
#include "dn_train.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-output sums of one evaluation. */
typedef struct {
    double *sse, *st, *st2; /* [k]: squared errors, targets, squared targets */
    double sae, loss;
} dn_rg_sums;

/* Adds rows rows of outputs out and targets t (k per row) to s. */
static void dn_rg_add(dn_rg_sums *s, const float *out, const float *t, int rows, int k) {
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < k; j++) {
            double y = t[(size_t)r * k + j], e = (double)out[(size_t)r * k + j] - y;
            s->sse[j] += e * e;
            s->sae += fabs(e);
            s->st[j] += y;
            s->st2[j] += y * y;
        }
}

/* The metrics from the sums of n rows. */
static void dn_rg_finish(const dn_rg_sums *s, uint32_t n, int k, dn_reg_metrics *q) {
    double r2 = 0;
    for (int j = 0; j < k; j++) {
        double sst = s->st2[j] - s->st[j] * s->st[j] / n;
        r2 += sst > 0 ? 1 - s->sse[j] / sst : s->sse[j] == 0 ? 1 : 0;
    }
    q->mse = s->loss / n;
    q->rmse = sqrt(q->mse);
    q->mae = s->sae / ((double)n * k);
    q->r2 = r2 / k;
}

int dn_eval_regression(const dn_model *m, const float *params, void *ws, const dn_dataset *ds,
                       const uint32_t *order, uint32_t n, int batch, float *x, dn_reg_metrics *q) {
    int k = m->n_outputs;
    size_t cells = (size_t)batch * (size_t)k;
    float *out = malloc(cells * sizeof *out), *t = malloc(cells * sizeof *t);
    dn_rg_sums s = {calloc((size_t)k, sizeof(double)), calloc((size_t)k, sizeof(double)),
                    calloc((size_t)k, sizeof(double)), 0, 0};
    int ok = out && t && s.sse && s.st && s.st2 && n > 0;
    for (uint32_t start = 0; ok && start < n; start += (uint32_t)batch) {
        uint32_t left = n - start;
        int rows = left < (uint32_t)batch ? (int)left : batch;
        dn_dataset_gather(ds, order + start, rows, 0, 1, x, NULL);
        dn_data_gather_targets(ds, order + start, rows, t);
        dn_batch b = {.n = rows, .x = x, .t = t};
        s.loss += m->eval(params, ws, &b, out, NULL);
        dn_rg_add(&s, out, t, rows, k);
    }
    if (ok)
        dn_rg_finish(&s, n, k, q);
    else
        q->mse = q->rmse = q->mae = q->r2 = NAN;
    free(out);
    free(t);
    free(s.sse);
    free(s.st);
    free(s.st2);
    return ok ? 0 : -1;
}

void dn_reg_print_epoch(const dn_epoch_row *e) {
    printf("epoch %" PRId64 ": train_loss %.4f train_rmse %.4f", e->epoch, e->train_loss, e->train_acc);
    if (e->has_val)
        printf(" val_loss %.4f val_rmse %.4f val_mae %.4f val_r2 %.4f", e->val_loss, e->val_acc,
               e->val_mae, e->val_r2);
    if (e->has_test)
        printf(" test_rmse %.4f test_mae %.4f test_r2 %.4f", e->test_acc, e->test_mae, e->test_r2);
    printf(" time %.3fs\n", e->seconds);
    fflush(stdout);
}
