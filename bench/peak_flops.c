/* peak_flops.c - measures the FP32 fused multiply-add peak of this machine.
 *
 * Each thread runs 12 independent chains of FMAs (acc = acc * m + c) on
 * 256-bit vectors and, when compiled for AVX-512, on 512-bit ones: enough
 * chains in flight to cover the FMA latency on both FMA pipes of current x86
 * cores. The peak is the faster of the two widths: cores that split 512-bit
 * operations in halves (AMD Zen 4) reach the same FLOP rate with either,
 * cores with full-width 512-bit FMA units (Zen 5, Intel server parts) twice
 * as much with the wider. One FMA on W floats counts as 2W FLOP.
 *
 * Build and run (from the repository root):
 *     gcc -O2 -march=native -fopenmp bench/peak_flops.c -o peak_flops && ./peak_flops
 * Check the inner loops are vfmadd...ps on ymm (and zmm) registers:
 *     gcc -O2 -march=native -fopenmp -S bench/peak_flops.c -o - | grep vfmadd
 *
 * Output: one line per thread count, best of 3 measurements of about 0.5 s
 * per width, the peak first, then the width that reached it and both rates:
 *     peak_gflops threads=1 230.1 width=512 fma256=115.2 fma512=230.1
 *     peak_gflops threads=2 456.6 width=512 fma256=230.3 fma512=456.6
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
#if defined(__AVX512F__)
typedef float v16 __attribute__((vector_size(64)));
#define HAVE_512 1
#else
#define HAVE_512 0
#endif

#define CHAINS 12
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

/* fma_chains_W(iters): runs `iters` iterations of CHAINS independent FMAs
 * on vectors of W floats (type V); returns a checksum. The chains are 12
 * named variables, not an array: GCC at -O2 does not fully unroll a 12-trip
 * inner loop and would keep an array in memory. */
#define DEFINE_FMA_CHAINS(V, W)                                                                      \
    static float fma_chains_##W(long iters) {                                                        \
        const V vm = (V){0} + g_mul, vc = (V){0} + g_add;                                            \
        V a0 = vc * 0.0f, a1 = vc * 1.0f, a2 = vc * 2.0f, a3 = vc * 3.0f, a4 = vc * 4.0f;            \
        V a5 = vc * 5.0f, a6 = vc * 6.0f, a7 = vc * 7.0f, a8 = vc * 8.0f, a9 = vc * 9.0f;            \
        V a10 = vc * 10.0f, a11 = vc * 11.0f;                                                        \
        for (long i = 0; i < iters; i++) { /* 12 vfmadd per iteration, no loads or stores */        \
            a0 = a0 * vm + vc; a1 = a1 * vm + vc; a2 = a2 * vm + vc;                                \
            a3 = a3 * vm + vc; a4 = a4 * vm + vc; a5 = a5 * vm + vc;                                \
            a6 = a6 * vm + vc; a7 = a7 * vm + vc; a8 = a8 * vm + vc;                                \
            a9 = a9 * vm + vc; a10 = a10 * vm + vc; a11 = a11 * vm + vc;                            \
        }                                                                                            \
        V sum = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11));       \
        float total = 0.0f;                                                                          \
        for (int j = 0; j < W; j++)                                                                  \
            total += sum[j];                                                                         \
        return total;                                                                                \
    }
DEFINE_FMA_CHAINS(v8, 8)
#if HAVE_512
DEFINE_FMA_CHAINS(v16, 16)
#endif

static float fma_chains(int width, long iters) {
#if HAVE_512
    if (width == 16)
        return fma_chains_16(iters);
#endif
    (void)width;
    return fma_chains_8(iters);
}

/* Wall seconds for every one of `threads` threads to run `iters` iterations. */
static double timed_run(int threads, int width, long iters) {
    double t0 = now_sec();
    float checksum = 0.0f;
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(+ : checksum)
    checksum += fma_chains(width, iters);
#else
    (void)threads;
    checksum = fma_chains(width, iters);
#endif
    double t = now_sec() - t0;
    g_sink = checksum;
    return t;
}

/* Best GFLOP/s over REPEATS runs of about TARGET_SEC seconds on `threads`
 * threads with vectors of `width` floats. */
static double measure(int threads, int width) {
    long iters = 1 << 16;
    for (;;) { /* calibrate: grow until one run takes a tenth of the target */
        double t = timed_run(threads, width, iters);
        if (t > TARGET_SEC / 10) {
            iters = (long)((double)iters * TARGET_SEC / t);
            break;
        }
        iters *= 4;
    }
    double best = 0.0;
    for (int r = 0; r < REPEATS; r++) {
        double t = timed_run(threads, width, iters);
        double gflops = (double)iters * CHAINS * width * 2 * threads / t * 1e-9;
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
    for (int i = 0; i < n; i++) {
        double g8 = measure(counts[i], 8), g16 = HAVE_512 ? measure(counts[i], 16) : 0.0;
        printf("peak_gflops threads=%d %.1f width=%d fma256=%.1f", counts[i], g16 > g8 ? g16 : g8,
               g16 > g8 ? 512 : 256, g8);
        if (HAVE_512)
            printf(" fma512=%.1f", g16);
        printf("\n");
    }
    return 0;
}
