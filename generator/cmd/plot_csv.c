/* plot_csv.c - the metrics CSV reader behind `dngen plot`.
 *
 * Parses from a memory buffer only (no I/O), so it can be fuzzed on its own.
 * The grammar is deliberately small: comma-separated fields, no quoting in
 * data rows, numbers in C/JSON decimal notation. */
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *const csv_col_names[DNGEN_PLOT_NCOLS] = {
    "train_loss", "train_acc", "test_loss", "test_acc", "val_loss", "val_acc",
};

#define CSV_EPOCH (-1)     /* column id of `epoch` */
#define CSV_NUM_MAX 512    /* longest number token accepted, in bytes */
#define CSV_QUOTE_MAX 32   /* bytes of a bad field quoted in a message */

const char *dngen_plot_column_name(int col) {
    return (col >= 0 && col < DNGEN_PLOT_NCOLS) ? csv_col_names[col] : "epoch";
}

/* Formats one message into err[0..errlen) (nothing if err is NULL or errlen 0). */
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

/* Copies field text p[0..n) into buf (cap >= CSV_QUOTE_MAX + 4) for a message:
 * at most CSV_QUOTE_MAX bytes, control bytes and quotes replaced by '?',
 * "..." appended when cut. Returns buf. */
static const char *csv_quote(const char *p, size_t n, char *buf) {
    size_t k = n < CSV_QUOTE_MAX ? n : CSV_QUOTE_MAX;
    for (size_t i = 0; i < k; i++) {
        unsigned char ch = (unsigned char)p[i];
        buf[i] = (ch < 0x20 || ch == 0x7f || ch == '\'') ? '?' : (char)ch;
    }
    if (k < n) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = '\0';
    return buf;
}

/* A cursor over the input lines. */
typedef struct {
    const char *data;
    size_t len;
    size_t pos;  /* start of the next line */
    size_t line; /* 1-based number of the line last returned */
} csv_cursor;

/* Returns the next line in [*p, *p + *n) without its "\n" or "\r\n"; 0 at end. */
static int csv_next_line(csv_cursor *c, const char **p, size_t *n) {
    if (c->pos >= c->len)
        return 0;
    const char *start = c->data + c->pos;
    size_t rest = c->len - c->pos;
    const char *nl = memchr(start, '\n', rest);
    size_t k = nl ? (size_t)(nl - start) : rest;
    c->pos += nl ? k + 1 : k;
    if (k > 0 && start[k - 1] == '\r')
        k--;
    c->line++;
    *p = start;
    *n = k;
    return 1;
}

/* True if the line holds only spaces, tabs and carriage returns. */
static int csv_blank(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return 0;
    return 1;
}

/* Number of comma-separated fields in a line (>= 1). */
static size_t csv_count_fields(const char *p, size_t n) {
    size_t count = 1;
    const char *end = p + n;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        if (!comma)
            break;
        count++;
        p = comma + 1;
    }
    return count;
}

/* Splits off the field starting at *pos in line[0..n): sets [*f, *f + *fn) to
 * the field trimmed of spaces and tabs, and advances *pos past its comma. */
static void csv_next_field(const char *line, size_t n, size_t *pos, const char **f, size_t *fn) {
    size_t s = *pos;
    const char *comma = memchr(line + s, ',', n - s);
    size_t e = comma ? (size_t)(comma - line) : n;
    *pos = comma ? e + 1 : n;
    while (s < e && (line[s] == ' ' || line[s] == '\t'))
        s++;
    while (e > s && (line[e - 1] == ' ' || line[e - 1] == '\t'))
        e--;
    *f = line + s;
    *fn = e - s;
}

/* Case-insensitive comparison of p[0..n) with the lowercase word w. */
static int csv_word(const char *p, size_t n, const char *w) {
    size_t wn = strlen(w);
    if (n != wn)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (ch != w[i])
            return 0;
    }
    return 1;
}

/* True if p[0..n) spells a NaN or infinity the way strtod would read one. */
static int csv_nonfinite_word(const char *p, size_t n) {
    if (n > 0 && (p[0] == '+' || p[0] == '-')) {
        p++;
        n--;
    }
    if (csv_word(p, n, "nan") || csv_word(p, n, "inf") || csv_word(p, n, "infinity"))
        return 1;
    return n >= 5 && csv_word(p, 4, "nan(") && p[n - 1] == ')';
}

/* Scans a run of decimal digits from p[*i..n); returns how many. */
static size_t csv_digits(const char *p, size_t n, size_t *i) {
    size_t start = *i;
    while (*i < n && p[*i] >= '0' && p[*i] <= '9')
        (*i)++;
    return *i - start;
}

/* True if p[0..n) is a decimal number: [+-] (d+[.d*] | .d+) [(e|E)[+-]d+]. */
static int csv_decimal_syntax(const char *p, size_t n) {
    size_t i = 0;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        i++;
    size_t digits = csv_digits(p, n, &i);
    if (i < n && p[i] == '.') {
        i++;
        digits += csv_digits(p, n, &i);
    }
    if (digits == 0)
        return 0;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        if (csv_digits(p, n, &i) == 0)
            return 0;
    }
    return i == n;
}

enum { CSV_NUM_OK, CSV_NUM_SYNTAX, CSV_NUM_NONFINITE, CSV_NUM_RANGE, CSV_NUM_LONG };

/* Parses the non-empty token p[0..n) as a finite double into *v.
 * Returns one of CSV_NUM_*. Hex floats and locale decimal commas are rejected. */
static int csv_number(const char *p, size_t n, double *v) {
    if (!csv_decimal_syntax(p, n))
        return csv_nonfinite_word(p, n) ? CSV_NUM_NONFINITE : CSV_NUM_SYNTAX;
    if (n >= CSV_NUM_MAX)
        return CSV_NUM_LONG;
    char buf[CSV_NUM_MAX];
    memcpy(buf, p, n);
    buf[n] = '\0';
    char *end = NULL;
    errno = 0;
    double d = strtod(buf, &end);
    if (end != buf + n)
        return CSV_NUM_SYNTAX; /* e.g. a locale whose decimal point is not '.' */
    if (!isfinite(d))
        return CSV_NUM_RANGE;
    *v = d;
    return CSV_NUM_OK;
}

/* Where each known column sits in the header (field index, or -1). */
typedef struct {
    long epoch;
    long col[DNGEN_PLOT_NCOLS];
    size_t nfields;
    size_t line;
} csv_header;

/* Column id (CSV_EPOCH or 0..NCOLS-1) named by p[0..n), or -2 if unknown.
 * A name may be wrapped in double quotes. */
static int csv_column_id(const char *p, size_t n) {
    if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
        p++;
        n -= 2;
    }
    if (n == 5 && memcmp(p, "epoch", 5) == 0)
        return CSV_EPOCH;
    for (int c = 0; c < DNGEN_PLOT_NCOLS; c++)
        if (strlen(csv_col_names[c]) == n && memcmp(p, csv_col_names[c], n) == 0)
            return c;
    return -2;
}

/* Reads the header line; checks for duplicates and the needed columns.
 * Returns 0 or -1 with err set. */
static int csv_parse_header(const char *name, const char *line, size_t n, size_t lineno,
                            unsigned need, csv_header *h, char *err, size_t errlen) {
    h->epoch = -1;
    for (int c = 0; c < DNGEN_PLOT_NCOLS; c++)
        h->col[c] = -1;
    h->nfields = csv_count_fields(line, n);
    h->line = lineno;
    size_t pos = 0;
    for (size_t i = 0; i < h->nfields; i++) {
        const char *f;
        size_t fn;
        csv_next_field(line, n, &pos, &f, &fn);
        int id = csv_column_id(f, fn);
        if (id == -2)
            continue;
        long *slot = id == CSV_EPOCH ? &h->epoch : &h->col[id];
        if (*slot >= 0) {
            csv_errf(err, errlen, "%s:%zu:%zu: error: duplicate column '%s'", name, lineno,
                     (size_t)(f - line) + 1, dngen_plot_column_name(id));
            return -1;
        }
        *slot = (long)i;
    }
    if (h->epoch < 0) {
        csv_errf(err, errlen, "%s:%zu: error: missing column 'epoch'", name, lineno);
        return -1;
    }
    for (int c = 0; c < DNGEN_PLOT_NCOLS; c++) {
        if ((need & DNGEN_PLOT_BIT(c)) && h->col[c] < 0) {
            csv_errf(err, errlen, "%s:%zu: error: missing column '%s'", name, lineno,
                     csv_col_names[c]);
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

/* Previous epoch token, for the "not increasing" message. */
typedef struct {
    const char *p;
    size_t n;
} csv_token;

/* Parses one value field f[0..fn) of column id at line:colno into *v.
 * Empty fields give NaN except for epoch. Returns 0 or -1 with err set. */
static int csv_parse_value(const char *name, size_t lineno, size_t colno, int id, const char *f,
                           size_t fn, double *v, char *err, size_t errlen) {
    const char *cname = dngen_plot_column_name(id);
    char q[CSV_QUOTE_MAX + 4];
    if (fn == 0) {
        if (id != CSV_EPOCH) {
            *v = NAN;
            return 0;
        }
        csv_errf(err, errlen, "%s:%zu:%zu: error: missing value in column 'epoch'", name, lineno,
                 colno);
        return -1;
    }
    switch (csv_number(f, fn, v)) {
    case CSV_NUM_OK:
        return 0;
    case CSV_NUM_NONFINITE:
        csv_errf(err, errlen, "%s:%zu:%zu: error: non-finite value '%s' in column '%s'", name,
                 lineno, colno, csv_quote(f, fn, q), cname);
        return -1;
    case CSV_NUM_RANGE:
        csv_errf(err, errlen, "%s:%zu:%zu: error: value '%s' out of range in column '%s'", name,
                 lineno, colno, csv_quote(f, fn, q), cname);
        return -1;
    case CSV_NUM_LONG:
        csv_errf(err, errlen, "%s:%zu:%zu: error: number longer than %d bytes in column '%s'",
                 name, lineno, colno, CSV_NUM_MAX - 1, cname);
        return -1;
    default:
        csv_errf(err, errlen, "%s:%zu:%zu: error: expected a number in column '%s', got '%s'",
                 name, lineno, colno, cname, csv_quote(f, fn, q));
        return -1;
    }
}

/* Parses data row number m->n (line[0..n) at lineno) into the arrays of m.
 * `prev` holds the previous row's epoch token and is updated.
 * Returns 0 or -1 with err set. */
static int csv_parse_row(const char *name, const char *line, size_t n, size_t lineno,
                         const csv_header *h, dngen_plot_metrics *m, csv_token *prev, char *err,
                         size_t errlen) {
    size_t nf = csv_count_fields(line, n);
    if (nf != h->nfields) {
        csv_errf(err, errlen, "%s:%zu: error: expected %zu fields (as in the header), got %zu",
                 name, lineno, h->nfields, nf);
        return -1;
    }
    size_t pos = 0;
    size_t r = m->n;
    for (size_t i = 0; i < nf; i++) {
        const char *f;
        size_t fn;
        csv_next_field(line, n, &pos, &f, &fn);
        int id = csv_field_column(m, h, i);
        if (id == -2)
            continue;
        size_t colno = (size_t)(f - line) + 1;
        double *dst = id == CSV_EPOCH ? &m->epoch[r] : &m->col[id][r];
        if (csv_parse_value(name, lineno, colno, id, f, fn, dst, err, errlen) != 0)
            return -1;
        if (id == CSV_EPOCH) {
            char q1[CSV_QUOTE_MAX + 4], q2[CSV_QUOTE_MAX + 4];
            if (r > 0 && !(m->epoch[r] > m->epoch[r - 1])) {
                csv_errf(err, errlen,
                         "%s:%zu:%zu: error: epoch %s is not greater than the previous epoch %s",
                         name, lineno, colno, csv_quote(f, fn, q1),
                         csv_quote(prev->p, prev->n, q2));
                return -1;
            }
            prev->p = f;
            prev->n = fn;
        }
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
static int csv_parse_rows(const char *name, csv_cursor *cur, const csv_header *h,
                          dngen_plot_metrics *m, char *err, size_t errlen) {
    const char *line;
    size_t n;
    csv_token prev = {NULL, 0};
    while (csv_next_line(cur, &line, &n)) {
        if (csv_blank(line, n))
            continue;
        if (m->n >= DNGEN_PLOT_MAX_ROWS) {
            csv_errf(err, errlen, "%s:%zu: error: more than %d data rows", name, cur->line,
                     DNGEN_PLOT_MAX_ROWS);
            return -1;
        }
        if (csv_parse_row(name, line, n, cur->line, h, m, &prev, err, errlen) != 0)
            return -1;
    }
    if (m->n == 0) {
        csv_errf(err, errlen, "%s: error: no data rows", name);
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
    csv_cursor cur = {data, len, 0, 0};
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        cur.pos = 3;
    const char *line = NULL;
    size_t n = 0;
    int found = 0;
    while (!found && csv_next_line(&cur, &line, &n))
        found = !csv_blank(line, n);
    if (!found) {
        csv_errf(err, errlen, "%s: error: empty file", name);
        return -1;
    }
    csv_header h;
    if (csv_parse_header(name, line, n, cur.line, need, &h, err, errlen) != 0)
        return -1;
    if (csv_alloc(m, &h, want, csv_row_capacity(data + cur.pos, len - cur.pos)) != 0) {
        dngen_plot_metrics_free(m);
        csv_errf(err, errlen, "%s: error: out of memory", name);
        return -1;
    }
    if (csv_parse_rows(name, &cur, &h, m, err, errlen) != 0) {
        dngen_plot_metrics_free(m);
        return -1;
    }
    return 0;
}
