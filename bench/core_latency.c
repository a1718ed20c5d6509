/* core_latency.c - one-way latency between the cores of two OpenMP threads:
 * they pass a counter back and forth through one shared cache line, and half
 * the round trip is what a thread waits, at least, for data the other just
 * wrote. On a VM it hints where the two virtual CPUs sit: on the 2-core VM
 * of bench/run.sh it read 57-73 ns while 2-thread training steps ran fast
 * and 190-210 ns while they ran 40% slower.
 *
 *     gcc -O2 -fopenmp bench/core_latency.c -o core_latency && ./core_latency
 *
 * Prints: core_latency_ns 233 */
#include <stdatomic.h>
#include <stdio.h>
#include <omp.h>

#define ROUNDS 200000

static _Alignas(64) atomic_int token;

int main(void) {
    double best = 1e9;
    int threads = 0;
    for (int rep = 0; rep < 3; rep++) {
        atomic_store(&token, 0);
        double t0 = omp_get_wtime();
#pragma omp parallel num_threads(2)
        {
            const int me = omp_get_thread_num();
#pragma omp single
            threads = omp_get_num_threads();
            for (int i = 0; i < ROUNDS && threads == 2; i++) {
                const int want = 2 * i + me; /* thread 0 moves on even values, 1 on odd */
                while (atomic_load_explicit(&token, memory_order_acquire) != want) {
                }
                atomic_store_explicit(&token, want + 1, memory_order_release);
            }
        }
        double ns = (omp_get_wtime() - t0) / (2.0 * ROUNDS) * 1e9;
        if (ns < best)
            best = ns;
    }
    if (threads != 2) {
        fprintf(stderr, "core_latency: needs 2 threads, got %d\n", threads);
        return 1;
    }
    printf("core_latency_ns %.0f\n", best);
    return 0;
}
