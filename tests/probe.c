/* probe.c - test harness compiled together with one generated trainer.
 *
 * The test suite builds it as
 *   cc ... -DDN_PROBE_SOURCE='"gen.c"' -DDN_PROBE_MODEL=<name>_model probe.c libdnrt.a
 * so the generated file is part of this translation unit and its dn_model is
 * reachable. Commands (exit 0 = pass, 1 = mismatch, 2 = usage/setup error):
 *
 *   probe fixture FILE.safetensors [--adam]
 *       compares eval outputs and loss, train-mode loss and every gradient
 *       (dropout masks from dngen's Philox streams) with the PyTorch fixture;
 *       with --adam also the weights after 10 optimizer steps (spec without
 *       dropout): Adam, fused and not, or SGD, RMSprop and clipping through
 *       the runtime, at 1 and 2 threads.
 *   probe dropout P
 *       for a spec `input: {size: N, dropout: P}` + one linear unit + mse:
 *       checks drop rate, preserved mean, eval identity, 1 vs 2 threads.
 */
#define _POSIX_C_SOURCE 200809L
#define main dn_generated_main
#include DN_PROBE_SOURCE
#undef main

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

int main(int argc, char **argv);

static const dn_model *const M = &DN_PROBE_MODEL;

/* ---- helpers ---------------------------------------------------------------- */

static void *probe_alloc(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
        fprintf(stderr, "probe: out of memory\n");
        exit(2);
    }
    memset(p, 0, bytes);
    return p;
}

/* The fixture tensor `name`, which must have `count` elements of dtype. */
static const dn_st_info *need(const dn_st_file *f, const char *name, const char *dtype, size_t count) {
    const dn_st_info *t = dn_st_find(f, name);
    size_t elem = strcmp(dtype, "I64") == 0 ? 8 : 4;
    if (!t || strcmp(t->dtype, dtype) != 0 || t->nbytes != count * elem) {
        fprintf(stderr, "probe: fixture tensor '%s' missing or not %zu x %s\n", name, count, dtype);
        exit(2);
    }
    return t;
}

static void copy_f32(float *dst, const dn_st_info *t) { memcpy(dst, t->data, t->nbytes); }

/* Worst relative difference of got vs want, relative to max(|want|, floor). */
static double worst_rel(const float *got, const float *want, size_t n, double floor, size_t *where) {
    double worst = 0;
    *where = 0;
    for (size_t i = 0; i < n; i++) {
        double den = fabs((double)want[i]);
        if (den < floor) den = floor;
        double e = fabs((double)got[i] - (double)want[i]) / den;
        if (!(e <= worst)) { /* also catches NaN */
            worst = e != e ? INFINITY : e;
            *where = i;
        }
    }
    return worst;
}

/* Compares got with want (n floats): at least `frac` of the elements within
 * `tol` and all within `tol_all`, relative to max(|want|, floor). Prints one
 * line; returns 1 on mismatch. */
static int compare_most(const char *what, const float *got, const float *want, size_t n, double floor, double tol,
                        double tol_all, double frac) {
    size_t where = 0, over = 0;
    double err = worst_rel(got, want, n, floor, &where);
    for (size_t i = 0; i < n; i++) {
        double den = fabs((double)want[i]) > floor ? fabs((double)want[i]) : floor;
        over += !(fabs((double)got[i] - (double)want[i]) / den <= tol);
    }
    int ok = err <= tol_all && (double)(n - over) >= frac * (double)n;
    printf("%-24s worst_rel %.2e at %zu (got %.9g, want %.9g), %zu of %zu over %.0e %s\n", what, err, where,
           (double)got[where], (double)want[where], over, n, tol, ok ? "ok" : "MISMATCH");
    return ok ? 0 : 1;
}

/* Compares got with want (n floats) and prints one line: worst relative
 * error (relative to max(|want|, floor)) and where. Returns 1 on mismatch. */
static int compare(const char *what, const float *got, const float *want, size_t n, double floor, double tol) {
    return compare_most(what, got, want, n, floor, tol, tol, 1.0);
}

/* True when tensor t is the bias of a layer with batch norm ("<L>.bias"
 * beside "<L>_bn.weight"), or (suffix "running_mean") that batch norm's
 * running mean. Batch norm subtracts the batch mean, so such a bias has a
 * zero gradient up to rounding; the noise makes Adam's steps of it (and the
 * running mean, which follows it) differ by the same tiny relative amount in
 * any two implementations. */
static int near_bn_bias(int t, const char *suffix) {
    const char *name = M->tensors[t].name, *dot = strrchr(name, '.');
    char want[200];
    if (!dot) return 0;
    if (strcmp(suffix, "bias") == 0 && strcmp(dot, ".bias") == 0) {
        snprintf(want, sizeof want, "%.*s_bn.weight", (int)(dot - name), name);
    } else if (strcmp(dot + 1, suffix) == 0 && dot - name > 3 && strncmp(dot - 3, "_bn", 3) == 0) {
        snprintf(want, sizeof want, "%.*s.weight", (int)(dot - 3 - name), name);
    } else {
        return 0;
    }
    for (int u = 0; u < M->n_tensors; u++)
        if (strcmp(M->tensors[u].name, want) == 0) return 1;
    return 0;
}

/* Max |x| over n floats (used to scale the floor of relative errors). */
static double max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)x[i]) > m) m = fabs((double)x[i]);
    return m;
}

/* ---- fixture ----------------------------------------------------------------- */

typedef struct {
    dn_st_file *f;
    int n;
    float *params, *x, *want;
    int32_t *y;
    float *t; /* multi-label fixtures: the 0/1 targets [n, n_outputs] ("t"), else NULL */
    void *ws;
    uint64_t seed, step;
} fixture;

static void fixture_open(fixture *fx, const char *path) {
    char err[DN_ERR_MAX];
    if (dn_st_open(path, &fx->f, err) != 0) {
        fprintf(stderr, "probe: %s\n", err);
        exit(2);
    }
    const dn_st_info *yt = dn_st_find(fx->f, "y"), *tt = dn_st_find(fx->f, "t");
    if (!yt && !tt) {
        fprintf(stderr, "probe: fixture has neither 'y' nor 't'\n");
        exit(2);
    }
    fx->n = yt ? (int)(yt->nbytes / 8) : (int)(tt->nbytes / 4 / (size_t)M->n_outputs);
    fx->t = NULL;
    if (tt) { /* value targets: labels stay 0 */
        fx->t = probe_alloc((size_t)fx->n * (size_t)M->n_outputs * sizeof(float));
        copy_f32(fx->t, need(fx->f, "t", "F32", (size_t)fx->n * (size_t)M->n_outputs));
    }
    fx->params = probe_alloc(M->n_params * sizeof(float));
    fx->want = probe_alloc(M->n_params * sizeof(float));
    fx->x = probe_alloc((size_t)fx->n * (size_t)M->n_inputs * sizeof(float));
    fx->y = probe_alloc((size_t)fx->n * sizeof(int32_t));
    fx->ws = probe_alloc(M->workspace_size(fx->n));
    copy_f32(fx->x, need(fx->f, "x", "F32", (size_t)fx->n * (size_t)M->n_inputs));
    for (int i = 0; yt && i < fx->n; i++) { /* safetensors promises no alignment */
        int64_t v;
        memcpy(&v, (const char *)yt->data + 8 * (size_t)i, sizeof v);
        fx->y[i] = (int32_t)v;
    }
    const char *s = dn_st_meta_get(fx->f, "seed"), *st = dn_st_meta_get(fx->f, "step");
    fx->seed = s ? strtoull(s, NULL, 10) : 0;
    fx->step = st ? strtoull(st, NULL, 10) : 0;
}

/* Loads `prefix.<name>` for every tensor (with params_only, for every
 * parameter: state tensors have no gradient) into the parameter buffer dst. */
static void load_params(const fixture *fx, const char *prefix, int params_only, float *dst) {
    for (int t = 0; t < M->n_tensors; t++) {
        if (params_only && M->tensors[t].state) continue;
        char name[160];
        snprintf(name, sizeof name, "%s.%s", prefix, M->tensors[t].name);
        float *canon = probe_alloc(M->tensors[t].count * sizeof(float));
        copy_f32(canon, need(fx->f, name, "F32", M->tensors[t].count));
        dn_tensor_import(&M->tensors[t], dst, canon);
        free(canon);
    }
}

/* Tensor t of parameter buffer buf in PyTorch layout (malloc'd). */
static float *tensor_of(const float *buf, int t) {
    float *canon = probe_alloc(M->tensors[t].count * sizeof(float));
    dn_tensor_export(&M->tensors[t], buf, canon);
    return canon;
}

/* Expected eval output per row: softmax of the fixture's logits `name`
 * (cross-entropy models), the sigmoid of each logit (binary cross-entropy,
 * one or, multi-label, several) or the logits themselves (mse with a
 * linear output). */
static void expected_outputs(const fixture *fx, const char *name, float *out) {
    size_t no = (size_t)M->n_outputs;
    const dn_st_info *lg = need(fx->f, name, "F32", (size_t)fx->n * no);
    const float *z = lg->data;
    for (int r = 0; r < fx->n; r++) {
        const float *zr = z + (size_t)r * no;
        if (M->loss == DN_MODEL_LOSS_BCE) {
            for (size_t o = 0; o < no; o++) out[(size_t)r * no + o] = (float)(1.0 / (1.0 + exp(-(double)zr[o])));
            continue;
        }
        if (M->loss != DN_MODEL_LOSS_CE) {
            memcpy(out + (size_t)r * no, zr, no * sizeof(float));
            continue;
        }
        double mx = zr[0], sum = 0;
        for (size_t o = 1; o < no; o++) mx = zr[o] > mx ? zr[o] : mx;
        for (size_t o = 0; o < no; o++) sum += exp(zr[o] - mx);
        for (size_t o = 0; o < no; o++) out[(size_t)r * no + o] = (float)(exp(zr[o] - mx) / sum);
    }
}

static float scalar(const fixture *fx, const char *name) {
    const dn_st_info *t = need(fx->f, name, "F32", 1);
    return *(const float *)t->data;
}

static int check_eval(const fixture *fx) {
    size_t no = (size_t)M->n_outputs;
    float *got = probe_alloc((size_t)fx->n * no * sizeof(float));
    float *want = probe_alloc((size_t)fx->n * no * sizeof(float));
    dn_batch b = {.n = fx->n, .x = fx->x, .y = fx->y, .t = fx->t, .seed = fx->seed, .step = fx->step, .mc_dropout = 0};
    load_params(fx, "init", 0, fx->params);
    float loss = (float)(M->eval(fx->params, fx->ws, &b, got, NULL) / fx->n);
    expected_outputs(fx, "eval.logits", want);
    int bad = compare("eval outputs", got, want, (size_t)fx->n * no, 1e-3, 1e-5);
    float wl = scalar(fx, "eval.loss");
    bad |= compare("eval loss", &loss, &wl, 1, 1e-6, 1e-5);
    free(got);
    free(want);
    return bad;
}

static int check_train(const fixture *fx) {
    float *grads = probe_alloc(M->n_params * sizeof(float));
    dn_batch b = {.n = fx->n, .x = fx->x, .y = fx->y, .t = fx->t, .seed = fx->seed, .step = fx->step, .mc_dropout = 0};
    load_params(fx, "init", 0, fx->params);
    float loss = (float)(M->train_step(fx->params, grads, fx->ws, &b, NULL) / fx->n);
    float wl = scalar(fx, "train.loss");
    int bad = compare("train loss (dropout on)", &loss, &wl, 1, 1e-6, 1e-5);
    load_params(fx, "grad", 1, fx->want);
    double scale = max_abs(fx->want, M->n_params);
    for (int t = 0; t < M->n_tensors; t++) {
        const dn_tensor_info *ti = &M->tensors[t];
        if (ti->state) continue;
        char what[128];
        snprintf(what, sizeof what, "grad %s", ti->name);
        float *got = tensor_of(grads, t), *want = tensor_of(fx->want, t);
        if (near_bn_bias(t, "bias")) { /* both zero up to rounding */
            double g = max_abs(got, ti->count), w = max_abs(want, ti->count);
            int ok = g <= 1e-5 * scale && w <= 1e-5 * scale;
            printf("%-24s max |got| %.1e, |want| %.1e: zero up to rounding (before batch norm) %s\n", what, g, w,
                   ok ? "ok" : "MISMATCH");
            bad |= !ok;
            free(got);
            free(want);
            continue;
        }
        double floor = 1e-2 * max_abs(want, ti->count) + 1e-12;
        bad |= compare(what, got, want, ti->count, floor, 1e-4);
        free(got);
        free(want);
    }
    free(grads);
    return bad;
}

static int compare_adam10(const fixture *fx, const char *label);

/* With batch norm the fixture has the eval-mode logits after its 10 steps
 * (running statistics moved 10 times): eval at fx->params must give them. */
static int check_eval_after(const fixture *fx) {
    if (!dn_st_find(fx->f, "adam10.eval.logits")) return 0;
    size_t count = (size_t)fx->n * (size_t)M->n_outputs;
    float *got = probe_alloc(count * sizeof(float)), *want = probe_alloc(count * sizeof(float));
    expected_outputs(fx, "adam10.eval.logits", want);
    dn_batch b = {.n = fx->n, .x = fx->x, .y = NULL, .seed = fx->seed, .step = 0, .mc_dropout = 0};
    M->eval(fx->params, fx->ws, &b, got, NULL);
    int bad = compare("adam10 eval outputs", got, want, count, 1e-3, 1e-4);
    free(got);
    free(want);
    return bad;
}

/* Ten steps from the fixture's init with the spec's optimizer and clipping
 * through the runtime (train_step, dn_grad_norm and dn_grad_clip, then
 * dn_sgd_step, dn_rmsprop_step or dn_adam_step), at `threads` threads;
 * leaves the weights in fx->params. Returns the mismatches of the losses. */
static int run_optim10(const fixture *fx, int threads) {
#ifdef _OPENMP
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    size_t n = M->n_params;
    float *g = probe_alloc(n * sizeof(float)), *b[3];
    for (int k = 0; k < 3; k++) b[k] = probe_alloc(n * sizeof(float));
    const dn_defaults *d = &M->defaults;
    dn_adam adam = {d->lr, d->beta1, d->beta2, d->eps, d->weight_decay, d->decoupled_wd};
    dn_optim o = d->optim;
    o.eps = d->eps;
    o.weight_decay = d->weight_decay;
    const double lr = dn_adam_as_typed(d->lr);
    load_params(fx, "init", 0, fx->params);
    const float *wl = need(fx->f, "adam10.loss", "F32", 10)->data;
    int bad = 0;
    for (int t = 0; t < 10; t++) {
        dn_batch bt = {.n = fx->n, .x = fx->x, .y = fx->y, .t = fx->t, .seed = fx->seed, .step = (uint64_t)t, .mc_dropout = 0};
        float loss = (float)(M->train_step(fx->params, g, fx->ws, &bt, NULL) / fx->n);
        char what[64];
        snprintf(what, sizeof what, "step %d loss", t + 1);
        if (threads == 1) bad |= compare(what, &loss, &wl[t], 1, 1e-6, 1e-5);
        if (d->clip_grad_norm > 0)
            dn_grad_clip(g, M->n_trainable, dn_adam_as_typed(d->clip_grad_norm), dn_grad_norm(g, M->n_trainable));
        if (o.type == DN_OPTIM_SGD)
            dn_sgd_step(&o, lr, fx->params, g, b[0], M->n_trainable, t + 1);
        else if (o.type == DN_OPTIM_RMSPROP)
            dn_rmsprop_step(&o, lr, fx->params, g, b[1], b[0], b[2], M->n_trainable);
        else
            dn_adam_step(&adam, fx->params, g, b[0], b[1], M->n_trainable, t + 1);
    }
    free(g);
    for (int k = 0; k < 3; k++) free(b[k]);
    return bad;
}

/* SGD, RMSprop or clipping: ten steps agree with PyTorch's, and are the
 * same bits at 1 and 2 threads. */
static int check_optim(const fixture *fx) {
    float *one = probe_alloc(M->n_params * sizeof(float));
    int bad = run_optim10(fx, 2);
    memcpy(one, fx->params, M->n_params * sizeof(float));
    bad |= run_optim10(fx, 1);
    int same = memcmp(one, fx->params, M->n_params * sizeof(float)) == 0;
    printf("10 steps at 1 and 2 threads: %s\n", same ? "bit-identical ok" : "DIFFER (MISMATCH)");
    bad |= !same;
    bad |= compare_adam10(fx, "10 steps");
    free(one);
    return bad;
}

/* 10 Adam steps on the fixture batch, as torch.optim.Adam/AdamW with the
 * spec's settings; the model must have no dropout (the fixture's run had it off). */
static int check_adam(const fixture *fx) {
    if (M->defaults.optim.type != DN_OPTIM_ADAM || M->defaults.clip_grad_norm > 0)
        return check_optim(fx);
    size_t n = M->n_params;
    float *g = probe_alloc(n * sizeof(float)), *m = probe_alloc(n * sizeof(float)),
          *v = probe_alloc(n * sizeof(float));
    const dn_defaults *d = &M->defaults;
    dn_adam cfg = {d->lr, d->beta1, d->beta2, d->eps, d->weight_decay, d->decoupled_wd};
    load_params(fx, "init", 0, fx->params);
    const dn_st_info *lt = need(fx->f, "adam10.loss", "F32", 10);
    const float *wl = lt->data;
    int bad = 0;
    for (int t = 0; t < 10; t++) {
        dn_batch b = {.n = fx->n, .x = fx->x, .y = fx->y, .t = fx->t, .seed = fx->seed, .step = (uint64_t)t, .mc_dropout = 0};
        float loss = (float)(M->train_step(fx->params, g, fx->ws, &b, NULL) / fx->n);
        char what[64];
        snprintf(what, sizeof what, "adam step %d loss", t + 1);
        bad |= compare(what, &loss, &wl[t], 1, 1e-6, 1e-5);
        dn_adam_step(&cfg, fx->params, g, m, v, M->n_trainable, t + 1);
    }
    bad |= compare_adam10(fx, "adam10");
    bad |= check_eval_after(fx);
    /* The fused kernels (train_step_adam) from the same start. */
    load_params(fx, "init", 0, fx->params);
    memset(m, 0, n * sizeof(float));
    memset(v, 0, n * sizeof(float));
    for (int t = 0; t < 10; t++) {
        dn_batch b = {.n = fx->n, .x = fx->x, .y = fx->y, .t = fx->t, .seed = fx->seed, .step = (uint64_t)t, .mc_dropout = 0};
        dn_adam_coef c;
        dn_adam_coefs(&cfg, t + 1, &c);
        M->train_step_adam(fx->params, m, v, &c, fx->ws, &b, NULL);
    }
    bad |= compare_adam10(fx, "fused adam10");
    free(g);
    free(m);
    free(v);
    return bad;
}

/* Compares fx->params with the fixture's weights after 10 Adam steps. */
static int compare_adam10(const fixture *fx, const char *label) {
    int bad = 0;
    load_params(fx, "adam10", 0, fx->want);
    for (int t = 0; t < M->n_tensors; t++) {
        const dn_tensor_info *ti = &M->tensors[t];
        char what[128];
        snprintf(what, sizeof what, "%s %s", label, ti->name);
        /* Adam divides by sqrt(v) + eps: a coordinate whose gradient is near
         * eps (1e-8) turns a rounding-level gradient difference into a visible
         * step difference in any implementation. Hence: 99.9% of the weights
         * within 1e-5, all within 1e-3. */
        float *got = tensor_of(fx->params, t), *want = tensor_of(fx->want, t);
        if (near_bn_bias(t, "bias") || near_bn_bias(t, "running_mean")) {
            /* Steps driven partly by rounding noise (see near_bn_bias): within 1% of the tensor's scale. */
            bad |= compare_most(what, got, want, ti->count, max_abs(want, ti->count), 1e-2, 1e-2, 1.0);
        } else {
            bad |= compare_most(what, got, want, ti->count, 1e-2, 1e-5, 1e-3, 0.999);
        }
        free(got);
        free(want);
    }
    return bad;
}

static int cmd_fixture(const char *path, int adam) {
    fixture fx;
    fixture_open(&fx, path);
    int bad = adam ? check_adam(&fx) : (check_eval(&fx) | check_train(&fx));
    dn_st_close(fx.f);
    free(fx.params);
    free(fx.want);
    free(fx.x);
    free(fx.y);
    free(fx.t);
    free(fx.ws);
    return bad;
}

/* ---- dropout statistics -------------------------------------------------------- */

/* Output of the single linear unit for rows of all-ones input with W = 1, b = 0:
 * the sum of the input dropout scale factors, i.e. kept * 1/(1-p). */
static void run_mc(int threads, int n, uint64_t step, float *out) {
#ifdef _OPENMP
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    size_t in = (size_t)M->n_inputs;
    float *params = probe_alloc(M->n_params * sizeof(float)), *x = probe_alloc((size_t)n * in * sizeof(float));
    void *ws = probe_alloc(M->workspace_size(n));
    for (size_t i = 0; i < in; i++) params[dn_tensor_index(&M->tensors[0], i)] = 1.0f;
    for (size_t i = 0; i < (size_t)n * in; i++) x[i] = 1.0f;
    dn_batch b = {.n = n, .x = x, .y = NULL, .seed = 2024, .step = step, .mc_dropout = step != UINT64_MAX};
    M->eval(params, ws, &b, out, NULL);
    free(params);
    free(x);
    free(ws);
}

static int cmd_dropout(double p) {
    const int n = 256;
    const size_t in = (size_t)M->n_inputs;
    float *o1 = probe_alloc((size_t)n * sizeof(float)), *o2 = probe_alloc((size_t)n * sizeof(float));
    int bad = 0;
    double kept = 0, total = 0, mean = 0;
    for (uint64_t step = 0; step < 4; step++) {
        run_mc(1, n, step, o1);
        run_mc(2, n, step, o2);
        if (memcmp(o1, o2, (size_t)n * sizeof(float)) != 0) {
            printf("MISMATCH: outputs differ between 1 and 2 threads at step %llu\n", (unsigned long long)step);
            bad = 1;
        }
        for (int r = 0; r < n; r++) {
            kept += o1[r] * (1.0 - p);
            mean += o1[r];
        }
        total += (double)n * (double)in;
    }
    double rate = 1.0 - kept / total, sigma = sqrt(p * (1 - p) / total);
    double mean_ratio = mean / total; /* E = 1: each unit contributes 1 in expectation */
    printf("drop rate %.5f (p %.3f, 4 sigma %.5f)  mean ratio %.5f\n", rate, p, 4 * sigma, mean_ratio);
    if (fabs(rate - p) > 4 * sigma) bad = 1;
    if (fabs(mean_ratio - 1.0) > 4 * sigma / (1.0 - p)) bad = 1;
    run_mc(2, n, UINT64_MAX, o1); /* eval: dropout must be the identity */
    for (int r = 0; r < n; r++)
        if (o1[r] != (float)in) {
            printf("MISMATCH: eval output %g, want %zu (dropout must be the identity)\n", o1[r], in);
            bad = 1;
            break;
        }
    free(o1);
    free(o2);
    return bad;
}

/* ---- the vectorized PRNG ---------------------------------------------------------- */

/* dn_philox8 (AVX2 lanes where compiled for AVX2) against dn_philox4x32_10,
 * and dn_dropout_block against dn_dropout4, on counters from DN_RNG_TEST. */
static int cmd_philox(void) {
    int bad = 0;
    for (uint32_t t = 0; t < 2000 && !bad; t++) {
        uint32_t c0[8], c1[8], out[4][8], q[8];
        for (int i = 0; i < 8; i++) q[i] = dn_rand_u32(99, DN_RNG_TEST, 3, t, 0, (uint32_t)i);
        for (int l = 0; l < 8; l++) {
            c0[l] = q[l];
            c1[l] = q[(l + 3) % 8] ^ (uint32_t)l;
        }
        uint64_t key = (uint64_t)q[1] << 32 | q[2];
        dn_philox8(c0, c1, q[3], q[4], (uint32_t)key, (uint32_t)(key >> 32), out);
        for (int l = 0; l < 8; l++) {
            dn_u32x4 ctr = {{c0[l], c1[l], q[3], q[4]}};
            dn_u32x4 r = dn_philox4x32_10(ctr, (uint32_t)key, (uint32_t)(key >> 32));
            for (int w = 0; w < 4; w++)
                if (out[w][l] != r.v[w]) {
                    printf("MISMATCH: philox8 lane %d word %d at trial %u\n", l, w, t);
                    bad = 1;
                }
        }
        /* a block of 1..5 rows x 4..40 units against 4 units at a time */
        int rows = 1 + (int)(q[5] % 5), width = 4 * (1 + (int)(q[6] % 10));
        uint32_t row0 = q[7] % 1000, u0 = 4 * (q[0] % 300), thr = q[1];
        float m[5 * 40], want[4];
        dn_dropout_block(key, q[2], t % 7, row0, rows, u0, width, thr, 2.0f, m);
        for (int r = 0; r < rows; r++)
            for (int u = 0; u < width; u += 4) {
                dn_dropout4(key, q[2], t % 7, row0 + (uint32_t)r, u0 + (uint32_t)u, thr, 2.0f, want);
                if (memcmp(want, m + r * width + u, sizeof want) != 0) {
                    printf("MISMATCH: dropout block row %d unit %d at trial %u\n", r, u, t);
                    bad = 1;
                }
            }
    }
    printf("philox8 and dropout blocks %s (%s)\n", bad ? "DIFFER" : "agree with the scalar Philox",
#if defined(__AVX2__)
           "AVX2 lanes"
#else
           "scalar lanes"
#endif
    );
    return bad;
}

int main(int argc, char **argv) {
    (void)dn_generated_main;
    if (argc >= 3 && strcmp(argv[1], "fixture") == 0)
        return cmd_fixture(argv[2], argc >= 4 && strcmp(argv[3], "--adam") == 0);
    if (argc == 3 && strcmp(argv[1], "dropout") == 0) return cmd_dropout(strtod(argv[2], NULL));
    if (argc == 2 && strcmp(argv[1], "philox") == 0) return cmd_philox();
    fprintf(stderr, "usage: probe fixture FILE [--adam] | probe dropout P | probe philox\n");
    return 2;
}
