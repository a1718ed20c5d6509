/* peak_flops.c - measures the FP32 fused multiply-add peak of this machine.
 *
 * Each thread runs 12 independent chains of 8-wide FMAs (acc = acc * m + c on
 * 256-bit vectors): enough chains in flight to cover the FMA latency on both FMA
 * pipes of current x86 cores. One FMA on 8 floats counts as 16 FLOP.
 *
 * Build and run (from the repository root):
 *     gcc -O2 -mfma -mavx2 -fopenmp bench/peak_flops.c -o peak_flops && ./peak_flops
 * (or -O2 -march=native). Check the inner loop is vfmadd...ps on ymm registers:
 *     gcc -O2 -mfma -mavx2 -fopenmp -S bench/peak_flops.c -o - | grep vfmadd
 *
 * Output: one line per thread count, best of 3 measurements of about 0.5 s each:
 *     peak_gflops threads=1 98.7
 *     peak_gflops threads=2 190.2
 * Thread counts measured: 1 and omp_get_max_threads() (set OMP_NUM_THREADS to
 * change the latter), or those given on the command line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef float v8 __attribute__((vector_size(32)));

#define CHAINS 12
#define FLOP_PER_ITER (CHAINS * 8 * 2)
#define TARGET_SEC 0.5
#define REPEATS 3

/* Inputs read through volatiles so the compiler cannot fold the loop away;
 * the result is stored to a volatile sink so it cannot be discarded. */
static volatile float g_mul = 0.99999994f; /* largest float below 1: chains converge to c/(1-m) */
static volatile float g_add = 1e-7f;
static volatile float g_sink;

static double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs `iters` iterations of CHAINS independent FMAs; returns a checksum.
 * The chains are 12 named variables, not an array: GCC at -O2 does not fully
 * unroll a 12-trip inner loop and would keep an array in memory. */
static float fma_chains(long iters) {
    const float m = g_mul, c = g_add;
    const v8 vm = {m, m, m, m, m, m, m, m};
    const v8 vc = {c, c, c, c, c, c, c, c};
#define INIT(k) v8 a##k = vc * (float)(k)
    INIT(0); INIT(1); INIT(2); INIT(3); INIT(4); INIT(5);
    INIT(6); INIT(7); INIT(8); INIT(9); INIT(10); INIT(11);
#undef INIT
    for (long i = 0; i < iters; i++) {
        /* 12 vfmadd on ymm registers per iteration, no loads or stores. */
        a0 = a0 * vm + vc; a1 = a1 * vm + vc; a2 = a2 * vm + vc;
        a3 = a3 * vm + vc; a4 = a4 * vm + vc; a5 = a5 * vm + vc;
        a6 = a6 * vm + vc; a7 = a7 * vm + vc; a8 = a8 * vm + vc;
        a9 = a9 * vm + vc; a10 = a10 * vm + vc; a11 = a11 * vm + vc;
    }
    v8 sum = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11));
    float total = 0.0f;
    for (int j = 0; j < 8; j++)
        total += sum[j];
    return total;
}

/* Wall seconds for every one of `threads` threads to run `iters` iterations. */
static double timed_run(int threads, long iters) {
    double t0 = now_sec();
    float checksum = 0.0f;
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(+ : checksum)
    checksum += fma_chains(iters);
#else
    (void)threads;
    checksum = fma_chains(iters);
#endif
    double t = now_sec() - t0;
    g_sink = checksum;
    return t;
}

/* Best GFLOP/s over REPEATS runs of about TARGET_SEC seconds on `threads` threads. */
static double measure(int threads) {
    long iters = 1 << 16;
    for (;;) { /* calibrate: grow until one run takes a tenth of the target */
        double t = timed_run(threads, iters);
        if (t > TARGET_SEC / 10) {
            iters = (long)((double)iters * TARGET_SEC / t);
            break;
        }
        iters *= 4;
    }
    double best = 0.0;
    for (int r = 0; r < REPEATS; r++) {
        double t = timed_run(threads, iters);
        double gflops = (double)iters * FLOP_PER_ITER * threads / t * 1e-9;
        if (gflops > best)
            best = gflops;
    }
    return best;
}

int main(int argc, char **argv) {
    int counts[16], n = 0;
    for (int i = 1; i < argc && n < 16; i++) {
        int t = atoi(argv[i]);
        if (t < 1) {
            fprintf(stderr, "usage: %s [THREADS...]\n", argv[0]);
            return 2;
        }
        counts[n++] = t;
    }
    if (n == 0) {
        counts[n++] = 1;
#ifdef _OPENMP
        if (omp_get_max_threads() > 1)
            counts[n++] = omp_get_max_threads();
#endif
    }
    for (int i = 0; i < n; i++)
        printf("peak_gflops threads=%d %.1f\n", counts[i], measure(counts[i]));
    return 0;
}
