/* fuzz_csv.c - libFuzzer harness for the metrics CSV reader of `dngen plot`.
 *
 * Build and run (from the source root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Igenerator/cmd -Iruntime \
 *     tests/fuzz/fuzz_csv.c generator/cmd/plot_csv.c runtime/dn_csv.c -o /tmp/fuzz_csv
 *   /tmp/fuzz_csv -max_total_time=60 tests/fuzz/corpus/csv
 * (tests/fuzz/run.sh csv does this, on a scratch copy of the corpus.)
 *
 * With -DFUZZ_RENDER (and generator/cmd/plot.c runtime/dn_io.c runtime/dn_file.c
 * added) every successful parse is also rendered to SVG.
 *
 * Each input is parsed as a whole CSV file under four column selections
 * (accuracy, loss, both, everything optional). Besides the sanitizers'
 * checks, the reader's contract is asserted: on success rows within limits,
 * epochs finite and strictly increasing, values finite or NaN, needed
 * columns present; on failure one non-empty line and an empty result. */
#include "plot.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ACC (DNGEN_PLOT_BIT(DNGEN_PLOT_TRAIN_ACC) | DNGEN_PLOT_BIT(DNGEN_PLOT_TEST_ACC))
#define LOSS (DNGEN_PLOT_BIT(DNGEN_PLOT_TRAIN_LOSS) | DNGEN_PLOT_BIT(DNGEN_PLOT_TEST_LOSS))
#define ALL ((1u << DNGEN_PLOT_NCOLS) - 1u)

/* Aborts (a finding) unless cond holds. */
static void check(int cond) {
    if (!cond)
        abort();
}

/* Checks a successful parse against the reader's contract. */
static void check_metrics(const dngen_plot_metrics *m, unsigned want, unsigned need) {
    check(m->n >= 1 && m->n <= DNGEN_PLOT_MAX_ROWS);
    check(m->epoch != NULL);
    for (size_t i = 0; i < m->n; i++) {
        check(isfinite(m->epoch[i]));
        check(i == 0 || m->epoch[i] > m->epoch[i - 1]);
    }
    for (int c = 0; c < DNGEN_PLOT_NCOLS; c++) {
        if (need & DNGEN_PLOT_BIT(c))
            check(m->col[c] != NULL);
        if (!(want & DNGEN_PLOT_BIT(c)))
            check(m->col[c] == NULL);
        for (size_t i = 0; m->col[c] && i < m->n; i++)
            check(isfinite(m->col[c][i]) || isnan(m->col[c][i]));
    }
}

/* Checks a failed parse: one non-empty line, nothing left allocated. */
static void check_failure(const dngen_plot_metrics *m, const char *err) {
    check(err[0] != '\0');
    check(strchr(err, '\n') == NULL);
    check(m->n == 0 && m->epoch == NULL);
    for (int c = 0; c < DNGEN_PLOT_NCOLS; c++)
        check(m->col[c] == NULL);
}

#ifdef FUZZ_RENDER
/* Renders a parsed file with every metric choice and checks the result. */
static void check_render(const dngen_plot_metrics *m) {
    dngen_plot_run run = {"fuzz <&>", m};
    for (int metric = 1; metric <= 3; metric++) {
        char *svg = NULL;
        size_t len = 0;
        char err[256];
        if (dngen_plot_render(&run, 1, metric, NULL, &svg, &len, err, sizeof err) == 0) {
            check(svg != NULL && strlen(svg) == len);
            check(strstr(svg, "nan") == NULL && strstr(svg, "inf") == NULL);
            free(svg);
        } else {
            check(svg == NULL && err[0] != '\0');
        }
    }
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const unsigned masks[4][2] = {
        {ACC | DNGEN_PLOT_BIT(DNGEN_PLOT_VAL_ACC), ACC},
        {LOSS | DNGEN_PLOT_BIT(DNGEN_PLOT_VAL_LOSS), LOSS},
        {ALL, ACC | LOSS},
        {ALL, 0},
    };
    for (int k = 0; k < 4; k++) {
        dngen_plot_metrics m;
        char err[512];
        int rc = dngen_plot_csv_parse("fuzz.csv", (const char *)data, size, masks[k][0],
                                      masks[k][1], &m, err, sizeof err);
        if (rc == 0) {
            check_metrics(&m, masks[k][0], masks[k][1]);
#ifdef FUZZ_RENDER
            check_render(&m);
#endif
        } else {
            check(rc == -1);
            check_failure(&m, err);
        }
        dngen_plot_metrics_free(&m);
    }
    return 0;
}
