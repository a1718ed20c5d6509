/* csv_parse.c - how fast the trainer reads a numeric dataset: makes a
 * 100 MB CSV table in memory (20 features like "-12.345678", or longer
 * forms with --long, and an integer label, per row), then times
 * dn_csv_table_parse over it, best of 3 runs, on one core. With --npy
 * FILE it writes the same numbers as a float32 .npy [rows, 20] and an int64
 * label file (FILE.y), and times dn_npy_table_load (mapped, checked for
 * NaN and Inf, not copied) from the page cache.
 *
 *   bench/csv_parse.sh            (builds against build/runtime/libdnrt.a)
 *   csv_parse [MB] [--long | --npy FILE]
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

/* Writes the header of a .npy version 1 file with dict `dict` to f. */
static void npy_header(FILE *f, const char *dict) {
    size_t dl = strlen(dict), hl = (10 + dl + 1 + 63) / 64 * 64 - 10;
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc((int)(hl & 255), f);
    fputc((int)(hl >> 8), f);
    fputs(dict, f);
    for (size_t k = dl; k + 1 < hl; k++)
        fputc(' ', f);
    fputc('\n', f);
}

/* The --npy measurement: rows x 20 float32 features and int64 labels. */
static int bench_npy(const char *path, size_t rows) {
    char ypath[4200], dict[160];
    snprintf(ypath, sizeof ypath, "%s.y", path);
    FILE *f = fopen(path, "wb"), *g = fopen(ypath, "wb");
    if (!f || !g)
        return 1;
    snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, 20), }", rows);
    npy_header(f, dict);
    snprintf(dict, sizeof dict, "{'descr': '<i8', 'fortran_order': False, 'shape': (%zu,), }", rows);
    npy_header(g, dict);
    uint64_t s = 1;
    for (size_t r = 0; r < rows; r++) {
        float x[20];
        for (int k = 0; k < 20; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            x[k] = (float)(((double)(s >> 11) / 9007199254740992.0 - 0.5) * 200);
        }
        int64_t y = (int64_t)(r % 10);
        fwrite(x, sizeof x, 1, f);
        fwrite(&y, sizeof y, 1, g);
    }
    if (fclose(f) != 0 || fclose(g) != 0)
        return 1;
    double best = 1e30;
    char err[DN_ERR_MAX];
    for (int run = 0; run < 3; run++) {
        dn_table t;
        double t0 = now();
        if (dn_npy_table_load(path, ypath, DN_TARGET_CLASS, &t, err) != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        double dt = now() - t0;
        best = dt < best ? dt : best;
        dn_table_free(&t);
    }
    double mb = (double)rows * 20 * 4 / 1e6;
    printf("npy_load: %zu rows, %.1f MB of float32 features (mapped): %.3f s, %.0f MB/s\n", rows, mb, best,
           mb / best);
    remove(path);
    remove(ypath);
    return 0;
}

int main(int argc, char **argv) {
    size_t mb = argc > 1 ? (size_t)atol(argv[1]) : 100, rows = 0;
    int longform = argc > 2 && strcmp(argv[2], "--long") == 0;
    if (argc > 3 && strcmp(argv[2], "--npy") == 0)
        return bench_npy(argv[3], mb * 1000000 / 80);
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
