/* dn_threads.c - the team size of the training steps, chosen while they run.
 *
 * A generated trainer's results do not depend on its thread count (every
 * sum runs in an order set by the shapes), so the count may change between
 * any two steps. On a busy machine (a CI runner, a shared server) a second
 * thread whose core is taken makes every barrier wait for the scheduler:
 * with one other process spinning on one of two cores, the seed trainer's
 * two-thread epoch took 2.7x its one-thread epoch. So, unless --threads
 * fixes the count, the governor tries both: in rounds of DN_GOV_ROUND
 * steps, the first DN_GOV_PROBE run with the count not in use and the rest
 * with the one in use, and it switches when the probe's median step was at
 * least 10% faster than the median of the steps before it. Idle, the probes
 * cost DN_GOV_PROBE/DN_GOV_ROUND of the difference between the counts;
 * busy, the trainer follows the load within a round. DN_THREADS_TRACE=1
 * in the environment prints each switch on stderr; DN_THREADS_FIXED=1 turns
 * the governor off. */
#include "dn_runtime.h"
#include "dn_train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum { DN_GOV_ROUND = 128, DN_GOV_PROBE = 4 };

static double dn_gov_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int dn_gov_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n), n >= 1 (reorders v). */
static double dn_gov_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, dn_gov_cmp);
    return v[n / 2];
}

static void dn_gov_set(dn_governor *g, int threads) {
#ifdef _OPENMP
    if (threads != g->running)
        omp_set_num_threads(threads);
#endif
    g->running = threads;
}

void dn_gov_init(dn_governor *g, int fixed, int most) {
    memset(g, 0, sizeof *g);
    g->adaptive = fixed == 0 && most > 1 && !getenv("DN_THREADS_FIXED");
    g->in_use = most;
    g->other = 1;
    g->running = most;
    const char *round = getenv("DN_GOV_ROUND"); /* tests: shorter rounds */
    g->round = round && atoi(round) > DN_GOV_PROBE ? atoi(round) : DN_GOV_ROUND;
    g->trace = getenv("DN_THREADS_TRACE") != NULL;
    if (g->round > DN_GOV_MAX_ROUND)
        g->round = DN_GOV_MAX_ROUND;
}

void dn_gov_before_step(dn_governor *g) {
    if (!g->adaptive)
        return;
    dn_gov_set(g, g->at < DN_GOV_PROBE ? g->other : g->in_use);
    g->t0 = dn_gov_now();
}

/* At the end of a round: switch when the probe was clearly faster. */
static void dn_gov_decide(dn_governor *g) {
    int n_use = g->round - DN_GOV_PROBE;
    double probe = dn_gov_median(g->secs, DN_GOV_PROBE), use = dn_gov_median(g->secs + DN_GOV_PROBE, n_use);
    if (probe < 0.9 * use) {
        int t = g->in_use;
        g->in_use = g->other;
        g->other = t;
        g->switches++;
        if (g->trace)
            fprintf(stderr, "threads: %d now (median step %.3f ms with them, %.3f ms with %d)\n", g->in_use,
                    probe * 1e3, use * 1e3, g->other);
    }
    g->at = 0;
}

void dn_gov_after_step(dn_governor *g) {
    if (!g->adaptive)
        return;
    g->secs[g->at++] = dn_gov_now() - g->t0;
    if (g->at == g->round)
        dn_gov_decide(g);
}

void dn_gov_settle(dn_governor *g) {
    if (g->adaptive)
        dn_gov_set(g, g->in_use);
}
