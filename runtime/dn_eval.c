/* dn_eval.c - shared driver helpers, the `eval` command (plain and MC
 * dropout) and `gradcheck`. */
#include "dn_runtime.h"
#include "dn_train.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef DN_MPI
#include "dn_mpi.h"
#endif

#define DN_EV_GRAD_ROWS 4         /* rows of the random gradcheck batch */
#define DN_EV_GRAD_STEP 1e-2      /* finite-difference step, relative to max(|p|, 1) */
#define DN_EV_GRAD_FLOOR 1e-3     /* denominator floor of the relative error */
#define DN_EV_GRAD_TOL 2e-2       /* largest accepted relative error (float model) */

void *dn_alloc_aligned(size_t bytes) {
    if (bytes > SIZE_MAX - 64)
        return NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0)
        rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (p)
        memset(p, 0, rounded);
    return p;
}

double dn_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int dn_apply_threads(int threads) {
#ifdef _OPENMP
    if (threads > 0)
        omp_set_num_threads(threads);
    return omp_get_max_threads();
#else
    (void)threads;
    return 1;
#endif
}

void dn_eval_dataset(const dn_model *m, const float *params, void *ws, const dn_dataset *ds,
                     const uint32_t *order, uint32_t n, int batch, float *x, int32_t *y,
                     double *loss, double *acc) {
    if (m->regression) { /* acc: the RMSE */
        dn_reg_metrics q;
        dn_eval_regression(m, params, ws, ds, order, n, batch, x, &q);
        *loss = q.mse;
        *acc = q.rmse;
        return;
    }
    double loss_sum = 0;
    int64_t hits = 0;
    /* multi-label: the batch's 0/1 targets */
    float *t = m->multilabel ? malloc((size_t)batch * (size_t)m->n_outputs * sizeof *t) : NULL;
    if (m->multilabel && !t) {
        fprintf(stderr, "out of memory\n");
        *loss = *acc = NAN;
        return;
    }
#ifdef DN_MPI
    /* Under MPI the batches go round the processes; each batch's sums come
     * back to all (dn_mpi_sum_disjoint: exact) and are added in batch order,
     * as one process adds them. */
    const size_t nb = n ? (n - 1) / (uint32_t)batch + 1 : 0;
    double *per = calloc(2 * nb + 1, sizeof(double));
    if (!per) {
        fprintf(stderr, "out of memory\n");
        free(t);
        dn_mpi_abort(DN_EXIT_FAIL);
        return;
    }
#endif
    for (uint32_t start = 0; start < n; start += (uint32_t)batch) {
        uint32_t left = n - start;
        int rows = left < (uint32_t)batch ? (int)left : batch;
#ifdef DN_MPI
        const size_t k = start / (uint32_t)batch;
        if ((int)(k % (size_t)dn_mpi_size) != dn_mpi_rank)
            continue;
#endif
        dn_dataset_gather(ds, order + start, rows, m->defaults.norm_mean, m->defaults.norm_std,
                          x, y);
        dn_batch b = {.n = rows, .x = x, .y = y, .t = t};
        if (t)
            dn_data_gather_targets(ds, order + start, rows, t);
        int correct = 0;
#ifdef DN_MPI
        per[2 * k] = m->eval(params, ws, &b, NULL, &correct);
        per[2 * k + 1] = correct;
#else
        loss_sum += m->eval(params, ws, &b, NULL, &correct);
        hits += correct;
#endif
    }
#ifdef DN_MPI
    dn_mpi_sum_disjoint(per, 2 * nb);
    for (size_t k = 0; k < nb; k++) {
        loss_sum += per[2 * k];
        hits += (int64_t)per[2 * k + 1];
    }
    free(per);
#endif
    free(t);
    *loss = n ? loss_sum / n : 0.0;
    *acc = n ? (double)hits / n : 0.0;
}

uint32_t *dn_identity_order(uint32_t n) {
    uint32_t *p = malloc((n ? n : 1) * sizeof *p);
    for (uint32_t i = 0; p && i < n; i++)
        p[i] = i;
    return p;
}

/* ---- eval ------------------------------------------------------------------ */

/* Buffers of one eval run; out and mean only with --mc. */
typedef struct {
    float *params, *x, *out;
    int32_t *y;
    uint32_t *order;
    double *mean;
    void *ws;
} dn_ev_buffers;

static void dn_ev_free(dn_ev_buffers *b) {
    free(b->params);
    free(b->x);
    free(b->out);
    free(b->y);
    free(b->order);
    free(b->mean);
    free(b->ws);
}

/* Allocates the buffers for batches of `batch` rows over n samples. */
static int dn_ev_alloc(const dn_model *m, int batch, uint32_t n, int mc, dn_ev_buffers *b) {
    memset(b, 0, sizeof *b);
    size_t outs = (size_t)batch * (size_t)m->n_outputs;
    b->params = dn_alloc_aligned(m->n_params * sizeof(float));
    b->x = dn_alloc_aligned((size_t)batch * (size_t)m->n_inputs * sizeof(float));
    b->y = dn_alloc_aligned((size_t)batch * sizeof(int32_t));
    b->order = dn_identity_order(n);
    b->ws = dn_alloc_aligned(m->workspace_size(batch));
    if (mc) {
        b->out = dn_alloc_aligned(outs * sizeof(float));
        b->mean = dn_alloc_aligned(outs * sizeof(double));
    }
    return b->params && b->x && b->y && b->order && b->ws && (!mc || (b->out && b->mean)) ? 0 : -1;
}

/* Sums of an MC-dropout evaluation; index 1: correctly classified, 0: not. */
typedef struct {
    double loss_sum, entropy_sum[2];
    int64_t count[2];
} dn_ev_mc_sums;

/* dn_ev_mc_sample for binary cross-entropy: p is the mean probability of
 * class 1; the class is 1 when p > 0.5. */
static void dn_ev_mc_binary(double p, int32_t y, dn_ev_mc_sums *s) {
    double q = y == 1 ? p : 1.0 - p, entropy = 0;
    int hit = (p > 0.5) == (y == 1);
    if (p > 0 && p < 1)
        entropy = -(p * log(p) + (1.0 - p) * log(1.0 - p));
    s->loss_sum += -log(q > FLT_MIN ? q : FLT_MIN);
    s->entropy_sum[hit] += entropy;
    s->count[hit]++;
}

/* Adds one sample, given the mean v [n_outputs] of its N passes and its
 * label y: the loss of the mean (cross-entropy -ln v[y], with v[y] floored
 * at FLT_MIN; or the squared error against the one-hot target, averaged over
 * outputs), the hit of its argmax and its predictive entropy -sum v ln v. */
static void dn_ev_mc_sample(const dn_model *m, const double *v, int32_t y, dn_ev_mc_sums *s) {
    int k = m->n_outputs, best = 0;
    if (m->loss == DN_MODEL_LOSS_BCE) {
        dn_ev_mc_binary(v[0], y, s);
        return;
    }
    for (int c = 1; c < k; c++)
        if (v[c] > v[best])
            best = c;
    int hit = best == y;
    double loss = 0, entropy = 0;
    if (m->loss == DN_MODEL_LOSS_CE) {
        loss = -log(v[y] > FLT_MIN ? v[y] : FLT_MIN);
        for (int c = 0; c < k; c++)
            if (v[c] > 0)
                entropy -= v[c] * log(v[c]);
    } else {
        for (int c = 0; c < k; c++)
            loss += (v[c] - (c == y)) * (v[c] - (c == y));
        loss /= k;
    }
    s->loss_sum += loss;
    s->entropy_sum[hit] += entropy;
    s->count[hit]++;
}

/* The o->mc passes over the rows in b->x (pass p: dropout masks from
 * (--mc-seed, step p, row within the batch)), then each row's mean. */
static void dn_ev_mc_batch(const dn_model *m, const dn_opts *o, dn_ev_buffers *b, int rows,
                        dn_ev_mc_sums *s) {
    size_t k = (size_t)m->n_outputs, count = (size_t)rows * k;
    for (size_t i = 0; i < count; i++)
        b->mean[i] = 0;
    for (int p = 0; p < o->mc; p++) {
        dn_batch bt = {.n = rows, .x = b->x, .y = NULL, .seed = o->mc_seed, .step = (uint64_t)p,
                       .mc_dropout = 1};
        m->eval(b->params, b->ws, &bt, b->out, NULL);
        for (size_t i = 0; i < count; i++)
            b->mean[i] += b->out[i];
    }
    for (size_t i = 0; i < count; i++)
        b->mean[i] /= o->mc;
    for (int r = 0; r < rows; r++)
        dn_ev_mc_sample(m, b->mean + (size_t)r * k, b->y[r], s);
}

/* eval --mc: prints "test_loss X test_acc Y mc_passes N" and, for
 * cross-entropy models (binary too), "entropy_correct A entropy_wrong B". */
static void dn_ev_mc_run(const dn_model *m, const dn_opts *o, const dn_dataset *ds, int batch,
                      dn_ev_buffers *b) {
    dn_ev_mc_sums s;
    memset(&s, 0, sizeof s);
    for (uint32_t start = 0; start < ds->n; start += (uint32_t)batch) {
        uint32_t left = ds->n - start;
        int rows = left < (uint32_t)batch ? (int)left : batch;
        dn_dataset_gather(ds, b->order + start, rows, m->defaults.norm_mean, m->defaults.norm_std,
                          b->x, b->y);
        dn_ev_mc_batch(m, o, b, rows, &s);
    }
    printf("test_loss %.4f test_acc %.4f mc_passes %d", s.loss_sum / ds->n,
           (double)s.count[1] / ds->n, o->mc);
    if (m->loss != DN_MODEL_LOSS_MSE)
        printf(" entropy_correct %.4f entropy_wrong %.4f",
               s.count[1] ? s.entropy_sum[1] / (double)s.count[1] : NAN,
               s.count[0] ? s.entropy_sum[0] / (double)s.count[0] : NAN);
    putchar('\n');
}

/* Loads the test set; DN_EXIT_OK or DN_EXIT_INPUT (message printed). */
static int dn_ev_load_test(const dn_model *m, const dn_opts *o, dn_dataset *ds) {
    char err[DN_ERR_MAX];
    int has_test = 1;
    memset(ds, 0, sizeof *ds);
    if (m->defaults.data ? dn_data_load(m, o, NULL, ds, &has_test, err) != 0
                         : dn_dataset_load(o->data_dir, "t10k", (uint32_t)m->n_inputs, dn_model_classes(m), ds, err) != 0) {
        fprintf(stderr, "%s: %s\n", o->prog, err);
        return DN_EXIT_INPUT;
    }
    if (!has_test) {
        fprintf(stderr, "%s: %s: no test set (the spec has neither test nor test_split; give --test)\n",
                o->prog, o->train);
        return DN_EXIT_INPUT;
    }
    if (ds->n == 0) {
        fprintf(stderr, "%s: %s: the test set (t10k-*) has no samples\n", o->prog, o->data_dir);
        dn_dataset_free(ds);
        return DN_EXIT_INPUT;
    }
    return DN_EXIT_OK;
}

int dn_eval_rows_by(size_t (*ws_bytes)(int rows, const void *ctx), const void *ctx, int at_least) {
    int rows = at_least > DN_EVAL_BATCH ? at_least : DN_EVAL_BATCH;
    size_t floor_ws = ws_bytes(at_least, ctx), cap = floor_ws > DN_EVAL_WS_MAX ? floor_ws : DN_EVAL_WS_MAX;
    while (rows > at_least && ws_bytes(rows, ctx) > cap)
        rows = rows / 2 > at_least ? rows / 2 : at_least;
    return rows;
}

static size_t dn_ev_model_ws(int rows, const void *ctx) {
    return ((const dn_model *)ctx)->workspace_size(rows);
}

int dn_eval_rows(const dn_model *m, int at_least) { return dn_eval_rows_by(dn_ev_model_ws, m, at_least); }

/* Prints "test_loss L test_acc A", or for regression "test_loss L
 * test_rmse R test_mae M test_r2 Q". */
static void dn_ev_plain(const dn_model *m, const dn_dataset *ds, int batch, dn_ev_buffers *b) {
    double loss, acc;
    dn_reg_metrics q;
    if (m->regression && dn_eval_regression(m, b->params, b->ws, ds, b->order, ds->n, batch, b->x, &q) == 0) {
        printf("test_loss %.4f test_rmse %.4f test_mae %.4f test_r2 %.4f\n", q.mse, q.rmse, q.mae, q.r2);
        return;
    }
    dn_eval_dataset(m, b->params, b->ws, ds, b->order, ds->n, batch, b->x, b->y, &loss, &acc);
    printf("test_loss %.4f test_%s %.4f\n", loss, m->regression ? "rmse" : "acc", acc);
}

int dn_cmd_eval(const dn_model *m, const dn_opts *o) {
    char err[DN_ERR_MAX], warn[DN_ERR_MAX];
    if (o->mc && m->multilabel) { /* its sums score one label per row */
        fprintf(stderr, "%s: eval --mc: MC dropout evaluation of a multi-label model is not supported; "
                "evaluate without --mc\n", o->prog);
        return DN_EXIT_USAGE;
    }
    dn_apply_threads(o->threads);
    int batch = o->batch_size_given ? o->batch_size : dn_eval_rows(m, 1);
    dn_dataset ds;
    int rc = dn_ev_load_test(m, o, &ds);
    if (rc != DN_EXIT_OK)
        return rc;
    if ((uint32_t)batch > ds.n)
        batch = (int)ds.n;
    dn_ev_buffers b;
    if (dn_ev_alloc(m, batch, ds.n, o->mc, &b) != 0) {
        fprintf(stderr, "%s: out of memory\n", o->prog);
        rc = DN_EXIT_FAIL;
    } else if (dn_ckpt_load(m, o->weights, b.params, NULL, NULL, NULL, warn, err) != 0) {
        fprintf(stderr, "%s: %s\n", o->prog, err);
        rc = DN_EXIT_INPUT;
    } else {
        if (warn[0])
            fprintf(stderr, "%s: warning: %s\n", o->prog, warn);
        if (o->mc) {
            dn_ev_mc_run(m, o, &ds, batch, &b);
        } else {
            dn_ev_plain(m, &ds, batch, &b);
        }
    }
    dn_ev_free(&b);
    dn_dataset_free(&ds);
    return rc;
}

/* ---- gradcheck -------------------------------------------------------------
 *
 * The model computes in float, so a mean loss is known only to about
 * FLT_EPSILON * |L|, and a ReLU network's loss has kinks (a unit crossing
 * zero, here or in a later layer) that a finite-difference step often
 * straddles; in a 784-256-128-10 MLP two of them can lie within 1e-3 of p.
 * For each coordinate the loss is evaluated at p + {±h, ±h/2, ±h/8}, giving
 * central differences over three widths and one-sided slopes over [0, h/2]
 * and [0, h/8] on either side. Away from kinks all of them agree, so a wrong
 * gradient disagrees with every one; next to a kink the analytic gradient
 * (the derivative on p's side) matches a slope that stays on that side. The
 * error is the smallest over the estimates n of
 *   |a - n| / (max(|a| + |n|, DN_EV_GRAD_FLOOR) + noise(n) / DN_EV_GRAD_TOL)
 * where noise(n) bounds the round-off of n (2 * FLT_EPSILON * |L| / width),
 * so differences within the float round-off of the loss always pass. */

/* Random batch and buffers for gradcheck. */
typedef struct {
    float *params, *grads, *analytic, *x;
    int32_t y[DN_EV_GRAD_ROWS];
    float *t;       /* regression: targets [rows, n_outputs] */
    void *ws;
    dn_batch batch;
    double loss0;   /* mean loss at the unperturbed params */
    double noise;   /* bound on the float round-off of a mean loss */
} dn_ev_grad;

/* Mean loss of the fixed batch at the current params (same dropout masks
 * every call: seed and step do not change). */
static double dn_ev_loss(const dn_model *m, dn_ev_grad *g) {
    int correct = 0;
    return m->train_step(g->params, g->grads, g->ws, &g->batch, &correct) / DN_EV_GRAD_ROWS;
}

/* Mean loss with params[k] moved by about s; *actual gets the real offset
 * (after rounding p + s to float). */
static double dn_ev_loss_at(const dn_model *m, dn_ev_grad *g, size_t k, double s, double *actual) {
    float p = g->params[k];
    g->params[k] = (float)(p + s);
    *actual = (double)g->params[k] - (double)p;
    double l = dn_ev_loss(m, g);
    g->params[k] = p;
    return l;
}

/* Error of analytic value a against the slope between two loss samples. */
static double dn_ev_err(const dn_ev_grad *g, double a, double l0, double x0, double l1, double x1) {
    double n = (l1 - l0) / (x1 - x0), noise = 2 * g->noise / fabs(x1 - x0);
    double den = fabs(a) + fabs(n);
    return fabs(a - n) / ((den > DN_EV_GRAD_FLOOR ? den : DN_EV_GRAD_FLOOR) + noise / DN_EV_GRAD_TOL);
}

/* Smallest error of analytic value a against coordinate k's estimates. */
static double dn_ev_coordinate_err(const dn_model *m, dn_ev_grad *g, size_t k, double a) {
    double p = fabs((double)g->params[k]);
    double h = DN_EV_GRAD_STEP * (p > 1 ? p : 1), x[7], l[7];
    static const double frac[7] = {-1, -0.5, -0.125, 0, 0.125, 0.5, 1};
    for (int i = 0; i < 7; i++)
        l[i] = i == 3 ? g->loss0 : dn_ev_loss_at(m, g, k, frac[i] * h, &x[i]);
    x[3] = 0;
    /* Central over [-h, h], [-h/2, h/2], [-h/8, h/8]; one-sided over
     * [-h/2, 0], [0, h/2], [-h/8, 0], [0, h/8]. */
    static const int pairs[7][2] = {{0, 6}, {1, 5}, {2, 4}, {1, 3}, {3, 5}, {2, 3}, {3, 4}};
    double best = INFINITY;
    for (int i = 0; i < 7; i++) {
        int u = pairs[i][0], v = pairs[i][1];
        double e = dn_ev_err(g, a, l[u], x[u], l[v], x[v]);
        if (e < best) /* NaN never is */
            best = e;
    }
    return best;
}

/* Checks `samples` random coordinates of tensor t (all of them when it has
 * no more) and returns the worst error (infinite for a non-finite one).
 * Dropout and dead ReLUs make many gradients exactly 0; at most a quarter of
 * the checked coordinates are such zeros, so that the rest test something. */
static double dn_ev_check_tensor(const dn_model *m, dn_ev_grad *g, int t, int samples, uint64_t seed) {
    const dn_tensor_info *ti = &m->tensors[t];
    int exhaustive = ti->count <= (size_t)samples;
    size_t tries = exhaustive ? ti->count : (size_t)samples * 8;
    int checked = 0, zeros = 0, max_zeros = exhaustive ? samples : (samples + 3) / 4;
    double worst = 0;
    for (size_t j = 0; j < tries && checked < samples; j++) {
        uint32_t w = dn_rand_u32(seed, DN_RNG_TEST, 2, (uint32_t)t, 0, (uint32_t)j);
        size_t k = dn_tensor_index(ti, exhaustive ? j : (size_t)(((uint64_t)w * ti->count) >> 32));
        double a = g->analytic[k];
        if (a == 0 && zeros++ >= max_zeros)
            continue;
        double e = isfinite(a) ? dn_ev_coordinate_err(m, g, k, a) : INFINITY;
        if (!(e <= worst))
            worst = e;
        checked++;
    }
    return worst;
}

/* Fills the random batch: inputs uniform in [-1, 1) from DN_RNG_TEST a=0,
 * labels from a=1; dropout seed = seed, step 0. */
static void dn_ev_fill_batch(const dn_model *m, dn_ev_grad *g, uint64_t seed) {
    size_t nx = (size_t)DN_EV_GRAD_ROWS * (size_t)m->n_inputs;
    for (size_t i = 0; i < nx; i++)
        g->x[i] = (float)(2.0 * dn_u32_to_unit(dn_rand_u32(seed, DN_RNG_TEST, 0, 0, 0, (uint32_t)i)) - 1.0);
    for (int r = 0; r < DN_EV_GRAD_ROWS; r++) {
        uint32_t w = dn_rand_u32(seed, DN_RNG_TEST, 1, 0, 0, (uint32_t)r);
        g->y[r] = (int32_t)(((uint64_t)w * (uint64_t)dn_model_classes(m)) >> 32);
    }
    dn_batch b = {.n = DN_EV_GRAD_ROWS, .x = g->x, .y = g->y, .seed = seed, .step = 0};
    if (m->regression) { /* targets uniform in [-1, 1) from a=2 */
        for (int i = 0; i < DN_EV_GRAD_ROWS * m->n_outputs; i++)
            g->t[i] = (float)(2.0 * dn_u32_to_unit(dn_rand_u32(seed, DN_RNG_TEST, 2, 0, 0, (uint32_t)i)) - 1.0);
        b.t = g->t;
    }
    if (m->multilabel) { /* targets 0 or 1 from the top bit of a=2 */
        for (int i = 0; i < DN_EV_GRAD_ROWS * m->n_outputs; i++)
            g->t[i] = (float)(dn_rand_u32(seed, DN_RNG_TEST, 2, 0, 0, (uint32_t)i) >> 31);
        b.t = g->t;
    }
    g->batch = b;
}

/* Prints one line per parameter tensor (state tensors have no gradient);
 * returns the number that failed and sets *checked to the number checked. */
static int dn_ev_check_all(const dn_model *m, dn_ev_grad *g, const dn_opts *o, int *checked) {
    int failed = 0, width = 12;
    *checked = 0;
    for (int t = 0; t < m->n_tensors; t++)
        if ((int)strlen(m->tensors[t].name) > width)
            width = (int)strlen(m->tensors[t].name);
    for (int t = 0; t < m->n_tensors; t++) {
        if (m->tensors[t].state) /* running statistics: no gradient */
            continue;
        double worst = dn_ev_check_tensor(m, g, t, o->samples, o->seed);
        ++*checked;
        int bad = !(worst <= DN_EV_GRAD_TOL);
        failed += bad;
        printf("%-*s  worst_rel_err %.1e  %s\n", width, m->tensors[t].name, worst, bad ? "FAIL" : "ok");
    }
    return failed;
}

int dn_cmd_gradcheck(const dn_model *m, const dn_opts *o) {
    dn_ev_grad g;
    memset(&g, 0, sizeof g);
    g.params = dn_alloc_aligned(m->n_params * sizeof(float));
    g.grads = dn_alloc_aligned(m->n_params * sizeof(float));
    g.analytic = dn_alloc_aligned(m->n_params * sizeof(float));
    g.x = dn_alloc_aligned((size_t)DN_EV_GRAD_ROWS * (size_t)m->n_inputs * sizeof(float));
    g.ws = dn_alloc_aligned(m->workspace_size(DN_EV_GRAD_ROWS));
    g.t = dn_alloc_aligned((size_t)DN_EV_GRAD_ROWS * (size_t)m->n_outputs * sizeof(float));
    int rc = DN_EXIT_OK;
    if (!g.params || !g.grads || !g.analytic || !g.x || !g.ws || !g.t) {
        fprintf(stderr, "%s: out of memory\n", o->prog);
        rc = DN_EXIT_FAIL;
    } else {
        m->init(g.params, o->seed);
        dn_ev_fill_batch(m, &g, o->seed);
        int correct = 0;
        m->train_step(g.params, g.analytic, g.ws, &g.batch, &correct);
        g.loss0 = dn_ev_loss(m, &g);
        g.noise = FLT_EPSILON * (fabs(g.loss0) > 1 ? fabs(g.loss0) : 1);
        int checked = 0, failed = dn_ev_check_all(m, &g, o, &checked);
        if (failed) {
            fprintf(stderr, "%s: gradcheck: %d of %d tensor%s above relative error %.0e\n", o->prog,
                    failed, checked, dn_plural(checked), DN_EV_GRAD_TOL);
            rc = DN_EXIT_FAIL;
        }
    }
    free(g.params);
    free(g.grads);
    free(g.analytic);
    free(g.x);
    free(g.ws);
    free(g.t);
    return rc;
}
