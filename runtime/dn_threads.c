/* dn_threads.c - the team size of the training steps, chosen while they run.
 *
 * A generated trainer's results do not depend on its thread count (every
 * sum runs in an order set by the shapes), so the count may change between
 * any two steps. On a busy machine (a CI runner, a shared server) a second
 * thread whose core is taken makes every barrier wait for the scheduler:
 * with one other process spinning on one of two cores, the seed trainer's
 * two-thread epoch took 2.7x its one-thread epoch. So, unless --threads
 * fixes the count, the governor tries both counts (the OpenMP default and
 * 1) in rounds: a probe on the count not in use, long enough to span
 * several scheduler time slices (at least DN_GOV_PROBE_S seconds and
 * DN_GOV_PROBE_STEPS steps), then the count in use for `ratio` times as
 * long. It switches when the probe's mean step was at least 10% faster (to
 * more threads only after two such rounds in a row: a probe may catch the
 * other process asleep). Means, not medians: on a busy machine most
 * two-thread steps run at full speed, and a few that wait milliseconds for
 * the scheduler are the cost. Each probe that loses doubles `ratio` (up to
 * DN_GOV_RATIO_MAX), so on an idle machine the probes' cost fades to under
 * 1%; a switch resets it, so the governor follows a load that comes and
 * goes. DN_THREADS_TRACE=1 in the environment prints each switch on stderr;
 * DN_THREADS_FIXED=1 turns the governor off. */
#include "dn_runtime.h"
#include "dn_train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

void (*dn_batch_reduce)(double *v, int len) = NULL;

#define DN_GOV_PROBE_S 0.05
enum { DN_GOV_PROBE_STEPS = 8, DN_GOV_RATIO = 20, DN_GOV_RATIO_MAX = 320 };

static double dn_gov_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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
    g->ratio = DN_GOV_RATIO;
    g->probe_s = DN_GOV_PROBE_S;
    const char *quick = getenv("DN_GOV_QUICK"); /* tests: probes of a few steps, rounds of a few more */
    if (quick && atoi(quick) > 0) {
        g->probe_s = 0;
        g->ratio = 1;
        g->quick = 1;
    }
    g->trace = getenv("DN_THREADS_TRACE") != NULL;
}

/* Whether the current probe has lasted long enough. */
static int dn_gov_probe_done(const dn_governor *g) {
    return g->probe_n >= DN_GOV_PROBE_STEPS && g->probe_t >= g->probe_s;
}

void dn_gov_before_step(dn_governor *g) {
    if (!g->adaptive)
        return;
    dn_gov_set(g, dn_gov_probe_done(g) ? g->in_use : g->other);
    g->t0 = dn_gov_now();
}

/* At the end of a round: switch when the probe was clearly faster. */
static void dn_gov_decide(dn_governor *g) {
    double probe = g->probe_t / g->probe_n, use = g->use_t / g->use_n;
    g->wins = probe < 0.9 * use ? g->wins + 1 : 0;
    if (g->wins >= (g->other > g->in_use ? 2 : 1)) {
        int t = g->in_use;
        g->in_use = g->other;
        g->other = t;
        g->wins = 0;
        g->ratio = g->quick ? 1 : DN_GOV_RATIO;
        if (g->trace)
            fprintf(stderr, "threads: %d now (mean step %.3f ms with them, %.3f ms with %d)\n", g->in_use,
                    probe * 1e3, use * 1e3, g->other);
    } else if (g->wins == 0 && !g->quick && g->ratio < DN_GOV_RATIO_MAX) {
        g->ratio *= 2;
    }
    g->probe_t = g->use_t = 0;
    g->probe_n = g->use_n = 0;
}

void dn_gov_after_step(dn_governor *g) {
    if (!g->adaptive)
        return;
    double dt = dn_gov_now() - g->t0;
    if (g->running == g->other && !dn_gov_probe_done(g)) {
        g->probe_t += dt;
        g->probe_n++;
        return;
    }
    g->use_t += dt;
    g->use_n++;
    if (g->use_t >= g->ratio * g->probe_t && g->use_n >= DN_GOV_PROBE_STEPS)
        dn_gov_decide(g);
}

void dn_gov_settle(dn_governor *g) {
    if (g->adaptive)
        dn_gov_set(g, g->in_use);
}
