/* plot.h - `dngen plot`: training curves from metrics CSV files as a standalone SVG.
 *
 * Uses the metrics CSV reader (plot_csv.h), which knows nothing of charts:
 * plot.c -> plot_csv.h <- plot_csv.c, one way. */
#ifndef DNGEN_PLOT_H
#define DNGEN_PLOT_H
#include <stddef.h>
#include <stdio.h>

#include "plot_csv.h"

/* Runs `dngen plot` with the arguments after "plot" (argv[0] is "plot").
 * Returns an exit status (0 ok, 1 bad input file, 2 usage or output error). */
int dngen_plot_main(int argc, char **argv, FILE *out, FILE *err);

/* ---- SVG writer ------------------------------------------------------------ */

enum { DNGEN_PLOT_METRIC_ACC = 1, DNGEN_PLOT_METRIC_LOSS = 2, DNGEN_PLOT_METRIC_BOTH = 3, DNGEN_PLOT_METRIC_LR = 4 };

/* One curve set to draw: a parsed file and its legend label (any bytes; the
 * writer XML-escapes it and replaces invalid UTF-8). */
typedef struct {
    const char *label;
    const dngen_plot_metrics *m;
} dngen_plot_run;

/* Renders runs[0..n) as a standalone SVG 1.1 document into a malloc'd buffer
 * (*svg, *len; NUL-terminated for convenience). Output is a pure function of
 * the inputs. Returns 0, or -1 with one line in err (out of memory, or values
 * whose range cannot be represented). */
int dngen_plot_render(const dngen_plot_run *runs, size_t n, int metric, const char *title,
                      char **svg, size_t *len, char *err, size_t errlen);

#endif
