/* plot_csv.h - the metrics CSV reader (plot_csv.c) behind `dngen plot` and
 * `dngen sweep`: the trainer's per-epoch metrics file into arrays. It
 * depends on nothing of the chart; plot.h and sweep.c build on it. */
#ifndef DNGEN_PLOT_CSV_H
#define DNGEN_PLOT_CSV_H
#include <stddef.h>

/* A metrics file is a header line naming its columns, then one row per epoch.
 * Columns are found by name; unknown and unrequested columns are ignored
 * (never parsed), and their order does not matter. An
 * empty field means "missing" (stored as NaN). CRLF or LF line endings, a
 * trailing newline or not, a UTF-8 byte order mark, blank lines and spaces
 * around fields are accepted. */

#define DNGEN_PLOT_MAX_BYTES ((size_t)16 << 20) /* per input file */
#define DNGEN_PLOT_MAX_ROWS 100000              /* data rows per input file */

/* The metric columns the reader knows, besides the mandatory `epoch`. */
enum {
    DNGEN_PLOT_TRAIN_LOSS,
    DNGEN_PLOT_TRAIN_ACC,
    DNGEN_PLOT_TEST_LOSS,
    DNGEN_PLOT_TEST_ACC,
    DNGEN_PLOT_VAL_LOSS,
    DNGEN_PLOT_VAL_ACC,
    DNGEN_PLOT_LR,      /* the learning rate of each epoch's last step */
    DNGEN_PLOT_NCOLS
};
#define DNGEN_PLOT_BIT(c) (1u << (c))

/* One parsed metrics file. */
typedef struct {
    size_t n;                         /* data rows, >= 1 after a successful parse */
    double *epoch;                    /* n values, finite, strictly increasing */
    double *col[DNGEN_PLOT_NCOLS];    /* n values each (finite, or NaN = missing);
                                         NULL if absent from the header or not wanted */
    int rmse;                         /* a regression run's file: the *_ACC columns were
                                         read from train_rmse, test_rmse, val_rmse */
} dngen_plot_metrics;

/* A regression run's metrics file (train_rmse, test_rmse, val_rmse in place
 * of the accuracy columns) is read with those as the accuracy columns, and
 * m->rmse set; a header with both kinds is an error.
 *
 * Parses a metrics CSV held in data[0..len) (need not be NUL-terminated; NUL
 * bytes are ordinary characters). `name` is used in messages. `want` is a mask
 * of DNGEN_PLOT_BIT(column) to read if present; `need` (a subset of want)
 * must be present in the header. On success returns 0 and fills *m (free
 * with dngen_plot_metrics_free). On failure returns -1, leaves *m empty and
 * writes one compiler-style line (no newline) into err[0..errlen), e.g.
 *   "run.csv:4:3: error: expected a number in column 'train_acc', got 'abc'"
 * where 4 is the line and 3 the 1-based byte column of the field. */
int dngen_plot_csv_parse(const char *name, const char *data, size_t len, unsigned want,
                         unsigned need, dngen_plot_metrics *m, char *err, size_t errlen);

/* Frees what a successful parse allocated and empties *m (NULL-safe, idempotent). */
void dngen_plot_metrics_free(dngen_plot_metrics *m);

/* The header name of a metric column ("train_acc"), or "epoch" for -1. */
const char *dngen_plot_column_name(int col);

#endif
