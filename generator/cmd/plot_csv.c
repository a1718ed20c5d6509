/* plot_csv.c - the metrics CSV reader behind `dngen plot` and `dngen sweep`.
 *
 * Parses from a memory buffer only (no I/O), so it can be fuzzed on its own.
 * Lines, fields and numbers come from the runtime's CSV tokenizer (dn_csv,
 * runtime/dn_csv.c: comma-separated fields, no quoting in data rows,
 * numbers in C/JSON decimal notation); this file gives them meaning:
 * columns by name, one row per epoch. */
#include "plot_csv.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "dn_runtime.h"

static const char *const csv_col_names[DNGEN_PLOT_NCOLS] = {
    "train_loss", "train_acc", "test_loss", "test_acc", "val_loss", "val_acc", "lr",
};

#define CSV_EPOCH (-1)     /* column id of `epoch` */

const char *dngen_plot_column_name(int col) {
    return (col >= 0 && col < DNGEN_PLOT_NCOLS) ? csv_col_names[col] : "epoch";
}

/* Formats one message about the whole file into err[0..errlen) (nothing if
 * err is NULL or errlen 0); messages about a line go through dn_csv_errf. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static void csv_errf(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Where each known column sits in the header (field index, or -1). */
typedef struct {
    long epoch;
    long col[DNGEN_PLOT_NCOLS];
    size_t nfields;
    int acc, rmse;      /* accuracy columns named as such, or as *_rmse */
} csv_header;

/* A regression run's names of the accuracy columns, in their order. */
static const char *const csv_rmse_names[3] = {"train_rmse", "test_rmse", "val_rmse"};
static const int csv_rmse_cols[3] = {DNGEN_PLOT_TRAIN_ACC, DNGEN_PLOT_TEST_ACC, DNGEN_PLOT_VAL_ACC};

/* Column id (CSV_EPOCH or 0..NCOLS-1) named by p[0..n), or -2 if unknown;
 * *rmse set for a regression run's name of an accuracy column. A name may
 * be wrapped in double quotes. */
static int csv_column_id(const char *p, size_t n, int *rmse) {
    if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
        p++;
        n -= 2;
    }
    if (n == 5 && memcmp(p, "epoch", 5) == 0)
        return CSV_EPOCH;
    *rmse = 0;
    for (int c = 0; c < DNGEN_PLOT_NCOLS; c++)
        if (strlen(csv_col_names[c]) == n && memcmp(p, csv_col_names[c], n) == 0)
            return c;
    for (int k = 0; k < 3; k++)
        if (strlen(csv_rmse_names[k]) == n && memcmp(p, csv_rmse_names[k], n) == 0) {
            *rmse = 1;
            return csv_rmse_cols[k];
        }
    return -2;
}

/* Reads the header, the current line of c; checks for duplicates and the
 * needed columns. Returns 0 or -1 with err set. */
static int csv_parse_header(dn_csv *c, unsigned need, csv_header *h, char *err, size_t errlen) {
    h->epoch = -1;
    for (int k = 0; k < DNGEN_PLOT_NCOLS; k++)
        h->col[k] = -1;
    h->nfields = dn_csv_count_fields(c);
    h->acc = h->rmse = 0;
    dn_csv_field f;
    for (long i = 0; dn_csv_next_field(c, &f); i++) {
        int rmse, id = csv_column_id(f.p, f.n, &rmse);
        if (id == -2)
            continue;
        if (id == DNGEN_PLOT_TRAIN_ACC || id == DNGEN_PLOT_TEST_ACC || id == DNGEN_PLOT_VAL_ACC)
            *(rmse ? &h->rmse : &h->acc) = 1;
        if (h->acc && h->rmse) {
            dn_csv_errf(c, f.col, err, errlen, "error: both accuracy and RMSE columns");
            return -1;
        }
        long *slot = id == CSV_EPOCH ? &h->epoch : &h->col[id];
        if (*slot >= 0) {
            dn_csv_errf(c, f.col, err, errlen, "error: duplicate column '%s'", dngen_plot_column_name(id));
            return -1;
        }
        *slot = i;
    }
    if (h->epoch < 0) {
        dn_csv_errf(c, 0, err, errlen, "error: missing column 'epoch'");
        return -1;
    }
    for (int k = 0; k < DNGEN_PLOT_NCOLS; k++) {
        if ((need & DNGEN_PLOT_BIT(k)) && h->col[k] < 0) {
            dn_csv_errf(c, 0, err, errlen, "error: missing column '%s'", csv_col_names[k]);
            return -1;
        }
    }
    return 0;
}

/* Allocates the arrays of m for up to cap rows: epoch plus every wanted
 * column present in the header. Returns 0 or -1 (m partly filled; caller frees). */
static int csv_alloc(dngen_plot_metrics *m, const csv_header *h, unsigned want, size_t cap) {
    m->epoch = malloc(cap * sizeof *m->epoch);
    if (!m->epoch)
        return -1;
    for (int c = 0; c < DNGEN_PLOT_NCOLS; c++) {
        if (!(want & DNGEN_PLOT_BIT(c)) || h->col[c] < 0)
            continue;
        m->col[c] = malloc(cap * sizeof *m->col[c]);
        if (!m->col[c])
            return -1;
    }
    return 0;
}

/* Column id whose header position is field i and that m stores, or -2. */
static int csv_field_column(const dngen_plot_metrics *m, const csv_header *h, size_t i) {
    if (h->epoch == (long)i)
        return CSV_EPOCH;
    for (int c = 0; c < DNGEN_PLOT_NCOLS; c++)
        if (m->col[c] && h->col[c] == (long)i)
            return c;
    return -2;
}

/* Parses value field f of column id on the current line of c into *v.
 * Empty fields give NaN except for epoch. Returns 0 or -1 with err set. */
static int csv_parse_value(const dn_csv *c, const dn_csv_field *f, int id, double *v, char *err,
                           size_t errlen) {
    const char *cname = dngen_plot_column_name(id);
    char q[DN_CSV_QUOTE_MAX + 4];
    if (f->n == 0) {
        if (id != CSV_EPOCH) {
            *v = NAN;
            return 0;
        }
        dn_csv_errf(c, f->col, err, errlen, "error: missing value in column 'epoch'");
        return -1;
    }
    switch (dn_csv_number(f->p, f->n, v)) {
    case DN_CSV_NUM_OK:
        return 0;
    case DN_CSV_NUM_NONFINITE:
        dn_csv_errf(c, f->col, err, errlen, "error: non-finite value '%s' in column '%s'",
                    dn_csv_quote(f->p, f->n, q), cname);
        return -1;
    case DN_CSV_NUM_RANGE:
        dn_csv_errf(c, f->col, err, errlen, "error: value '%s' out of range in column '%s'",
                    dn_csv_quote(f->p, f->n, q), cname);
        return -1;
    case DN_CSV_NUM_LONG:
        dn_csv_errf(c, f->col, err, errlen, "error: number longer than %d bytes in column '%s'",
                    DN_CSV_NUM_MAX - 1, cname);
        return -1;
    default:
        dn_csv_errf(c, f->col, err, errlen, "error: expected a number in column '%s', got '%s'",
                    cname, dn_csv_quote(f->p, f->n, q));
        return -1;
    }
}

/* Checks that the epoch of row r (field f) exceeds the previous row's,
 * whose field is *prev; then makes f the previous one. Returns 0 or -1. */
static int csv_check_epoch(const dn_csv *c, const dngen_plot_metrics *m, size_t r,
                           const dn_csv_field *f, dn_csv_field *prev, char *err, size_t errlen) {
    if (r > 0 && !(m->epoch[r] > m->epoch[r - 1])) {
        char q1[DN_CSV_QUOTE_MAX + 4], q2[DN_CSV_QUOTE_MAX + 4];
        dn_csv_errf(c, f->col, err, errlen, "error: epoch %s is not greater than the previous epoch %s",
                    dn_csv_quote(f->p, f->n, q1), dn_csv_quote(prev->p, prev->n, q2));
        return -1;
    }
    *prev = *f;
    return 0;
}

/* Parses the current line of c as data row number m->n into the arrays of
 * m. `prev` holds the previous row's epoch field and is updated.
 * Returns 0 or -1 with err set. */
static int csv_parse_row(dn_csv *c, const csv_header *h, dngen_plot_metrics *m,
                         dn_csv_field *prev, char *err, size_t errlen) {
    size_t nf = dn_csv_count_fields(c), r = m->n;
    if (nf != h->nfields) {
        dn_csv_errf(c, 0, err, errlen, "error: expected %zu fields (as in the header), got %zu",
                    h->nfields, nf);
        return -1;
    }
    dn_csv_field f;
    for (size_t i = 0; dn_csv_next_field(c, &f); i++) {
        int id = csv_field_column(m, h, i);
        if (id == -2)
            continue;
        double *dst = id == CSV_EPOCH ? &m->epoch[r] : &m->col[id][r];
        if (csv_parse_value(c, &f, id, dst, err, errlen) != 0)
            return -1;
        if (id == CSV_EPOCH && csv_check_epoch(c, m, r, &f, prev, err, errlen) != 0)
            return -1;
    }
    m->n = r + 1;
    return 0;
}

/* Upper bound on the number of data rows: lines in data, capped. */
static size_t csv_row_capacity(const char *data, size_t len) {
    size_t lines = 1;
    const char *p = data, *end = data + len;
    while (p < end && lines <= DNGEN_PLOT_MAX_ROWS) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        lines++;
        p = nl + 1;
    }
    return lines < DNGEN_PLOT_MAX_ROWS ? lines : DNGEN_PLOT_MAX_ROWS;
}

void dngen_plot_metrics_free(dngen_plot_metrics *m) {
    if (!m)
        return;
    free(m->epoch);
    for (int c = 0; c < DNGEN_PLOT_NCOLS; c++)
        free(m->col[c]);
    memset(m, 0, sizeof *m);
}

/* Reads the data rows after the header into m. Returns 0 or -1 with err set. */
static int csv_parse_rows(dn_csv *c, const csv_header *h, dngen_plot_metrics *m, char *err,
                          size_t errlen) {
    dn_csv_field prev = {NULL, 0, 0};
    while (dn_csv_next_record(c)) {
        if (m->n >= DNGEN_PLOT_MAX_ROWS) {
            dn_csv_errf(c, 0, err, errlen, "error: more than %d data rows", DNGEN_PLOT_MAX_ROWS);
            return -1;
        }
        if (csv_parse_row(c, h, m, &prev, err, errlen) != 0)
            return -1;
    }
    if (m->n == 0) {
        csv_errf(err, errlen, "%s: error: no data rows", c->name);
        return -1;
    }
    return 0;
}

int dngen_plot_csv_parse(const char *name, const char *data, size_t len, unsigned want,
                         unsigned need, dngen_plot_metrics *m, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (err && errlen)
        err[0] = '\0';
    if (!name)
        name = "(input)";
    if (len > DNGEN_PLOT_MAX_BYTES) {
        csv_errf(err, errlen, "%s: error: file is larger than %zu bytes", name,
                 DNGEN_PLOT_MAX_BYTES);
        return -1;
    }
    want |= need;
    dn_csv c;
    dn_csv_init(&c, name, data, len);
    if (!dn_csv_next_record(&c)) {
        csv_errf(err, errlen, "%s: error: empty file", name);
        return -1;
    }
    csv_header h;
    if (csv_parse_header(&c, need, &h, err, errlen) != 0)
        return -1;
    if (csv_alloc(m, &h, want, csv_row_capacity(data + c.pos, len - c.pos)) != 0) {
        dngen_plot_metrics_free(m);
        csv_errf(err, errlen, "%s: error: out of memory", name);
        return -1;
    }
    if (csv_parse_rows(&c, &h, m, err, errlen) != 0) {
        dngen_plot_metrics_free(m);
        return -1;
    }
    m->rmse = h.rmse;
    return 0;
}
