/* step_bench.c - times the training step of one generated trainer in
 * isolation (no data loading): compiled into the same translation unit as
 * the generated file, like tests/probe.c.
 *
 *   cc -O2 -march=native -fopenmp -Iruntime -DDN_BENCH_SOURCE='"mlp.c"' \
 *      -DDN_BENCH_MODEL=mlp_model bench/step_bench.c build/runtime/libdnrt.a -lz -lm
 *   ./step_bench [--threads N] [--batch B] [--steps S] [--unfused] [--clip C] [--eval] [--flop F]
 *
 * --unfused: train_step then dn_adam_step (the path of other optimizers);
 * --clip C: the same with the gradient's norm clipped to C in between, as
 * the trainer does for `clip_grad_norm: C`.
 * Prints one line: ms per step (median of 5 rounds), GFLOP/s, where the FLOP
 * count is 2 x (forward + weight-gradient + input-gradient multiply-adds) of
 * the dense layers, or F per sample when given (conv nets: `dngen summary`). */
#define _POSIX_C_SOURCE 200809L
#define main dn_generated_main
#include DN_BENCH_SOURCE
#undef main

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

int main(int argc, char **argv);

static const dn_model *const M = &DN_BENCH_MODEL;

static double now(void) {
    struct timespec ts;
    clock_gettime(getenv("DN_BENCH_CPUTIME") ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *bench_alloc(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
        fprintf(stderr, "step_bench: out of memory\n");
        exit(2);
    }
    memset(p, 0, bytes);
    return p;
}

/* Multiply-adds per sample of a training step (eval: forward only). */
static double macs_per_sample(int eval) {
    double fwd = 0, dx = 0;
    int first = 1;
    for (int t = 0; t < M->n_tensors; t++) {
        if (M->tensors[t].ndim != 2) continue; /* the weights: the products' FLOPs */
        double mk = (double)M->tensors[t].count;
        fwd += mk;
        if (!first) dx += mk; /* the first layer needs no input gradient */
        first = 0;
    }
    return eval ? fwd : 2 * fwd + dx;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    (void)dn_generated_main;
    int threads = 0, batch = 64, steps = 200, unfused = 0, eval = 0;
    double flop_given = 0, clip = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) batch = atoi(argv[++i]);
        else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc) steps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--unfused") == 0) unfused = 1;
        else if (strcmp(argv[i], "--clip") == 0 && i + 1 < argc) clip = atof(argv[++i]), unfused = 1;
        else if (strcmp(argv[i], "--eval") == 0) eval = 1;
        else if (strcmp(argv[i], "--flop") == 0 && i + 1 < argc) flop_given = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--threads N] [--batch B] [--steps S] [--unfused] [--clip C] [--eval] [--flop F]\n",
                    argv[0]);
            return 2;
        }
    }
#ifdef _OPENMP
    if (threads > 0) omp_set_num_threads(threads);
    threads = omp_get_max_threads();
#else
    threads = 1;
#endif
    size_t np = M->n_params, nx = (size_t)batch * (size_t)M->n_inputs;
    float *params = bench_alloc(np * 4), *grads = bench_alloc(np * 4), *m = bench_alloc(np * 4),
          *v = bench_alloc(np * 4), *x = bench_alloc(nx * 4);
    float *out = bench_alloc((size_t)batch * (size_t)M->n_outputs * 4);
    int32_t *y = bench_alloc((size_t)batch * 4);
    void *ws = bench_alloc(M->workspace_size(batch));
    M->init(params, 1);
    for (size_t i = 0; i < nx; i++) x[i] = (float)(dn_u32_to_unit(dn_rand_u32(7, DN_RNG_TEST, 0, 0, 0, (uint32_t)i)) * 2 - 1);
    for (int r = 0; r < batch; r++) y[r] = r % M->n_outputs;
    dn_adam cfg = {M->defaults.lr, M->defaults.beta1, M->defaults.beta2, M->defaults.eps,
                   M->defaults.weight_decay, M->defaults.decoupled_wd};
    double rounds[5];
    uint64_t step = 0;
    for (int round = 0; round < 5; round++) {
        double t0 = now();
        for (int s = 0; s < steps; s++, step++) {
            dn_batch b = {.n = batch, .x = x, .y = y, .seed = 42, .step = step, .mc_dropout = 0};
            if (eval) {
                M->eval(params, ws, &b, out, NULL);
            } else if (unfused || !M->train_step_adam) {
                M->train_step(params, grads, ws, &b, NULL);
                if (clip > 0)
                    dn_grad_clip(grads, M->n_trainable, clip, dn_grad_norm(grads, M->n_trainable));
                dn_adam_step(&cfg, params, grads, m, v, M->n_trainable, (int64_t)step + 1);
            } else {
                dn_adam_coef c;
                dn_adam_coefs(&cfg, (int64_t)step + 1, &c);
                M->train_step_adam(params, m, v, &c, ws, &b, NULL);
            }
        }
        rounds[round] = (now() - t0) / steps;
    }
    qsort(rounds, 5, sizeof rounds[0], cmp_double);
    double sec = rounds[2], flop = (flop_given > 0 ? flop_given : 2.0 * macs_per_sample(eval)) * batch;
    printf("%s threads=%d batch=%d %s ms_per_step=%.4f gflops=%.1f\n", M->name, threads, batch,
           eval ? "eval" : clip > 0 ? "train-clipped" : unfused ? "train-unfused" : "train", sec * 1e3,
           flop / sec * 1e-9);
    return 0;
}
