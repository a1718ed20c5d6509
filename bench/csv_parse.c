/* csv_parse.c - how fast the trainer reads a numeric CSV dataset: makes a
 * 100 MB table in memory (20 features like "-12.345678", or longer forms
 * with --long, and an integer label, per row), then times
 * dn_csv_table_parse over it, best of 3 runs, on one core.
 *
 *   bench/csv_parse.sh            (builds against build/runtime/libdnrt.a)
 *   csv_parse [MB] [--long]
 * Prints the rows, the bytes and MB/s (1 MB = 10^6 bytes). */
#include "dn_runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Seconds on a monotonic clock. */
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Writes rows until the text holds about `bytes` bytes; returns its length. */
static size_t make_text(char *buf, size_t bytes, int longform, size_t *rows) {
    uint64_t s = 1;
    size_t len = 0;
    *rows = 0;
    while (len + 512 < bytes) {
        for (int k = 0; k < 20; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            double v = ((double)(s >> 11) / 9007199254740992.0 - 0.5) * 200;
            len += (size_t)sprintf(buf + len, longform ? "%.17g," : "%.6f,", v);
        }
        len += (size_t)sprintf(buf + len, "%d\n", (int)((*rows)++ % 10));
    }
    return len;
}

int main(int argc, char **argv) {
    size_t mb = argc > 1 ? (size_t)atol(argv[1]) : 100, rows = 0;
    int longform = argc > 2 && strcmp(argv[2], "--long") == 0;
    char *text = malloc(mb * 1000000 + 1);
    if (!text || mb == 0)
        return 1;
    size_t len = make_text(text, mb * 1000000, longform, &rows);
    double best = 1e30;
    char err[DN_ERR_MAX];
    for (int run = 0; run < 3; run++) {
        dn_csv_opts o = {0};
        dn_table t;
        double t0 = now();
        if (dn_csv_table_parse("bench.csv", text, len, &o, &t, err) != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        double dt = now() - t0;
        best = dt < best ? dt : best;
        if (t.n != rows || t.features != 20)
            return 1;
        dn_table_free(&t);
    }
    printf("csv_parse: %zu rows, %.1f MB (%s numbers): %.3f s, %.0f MB/s\n", rows, (double)len / 1e6,
           longform ? "17-digit" : "6-decimal", best, (double)len / 1e6 / best);
    free(text);
    return 0;
}
