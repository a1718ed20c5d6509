/* dn_data_csv.c - datasets from CSV text: features, class labels or real
 * targets, in one pass over the text (the file read whole, inflated first
 * when it is gzip), with every error at its line and byte column.
 *
 * Lines come from dn_csv.c's tokenizer (LF or CRLF, byte order mark); the
 * fields of a line are split here, since a dataset may use another
 * delimiter and quoted fields. Each value is the double strtod reads,
 * rounded to float; two fast paths give exactly that without strtod: an
 * exact one (Clinger's: a mantissa below 2^53 and a power of ten within
 * 1e+-22, one correctly rounded IEEE operation), and for longer mantissas
 * (17-digit output of numpy or pandas) an approximation kept only when it
 * lies too far from a float rounding midpoint for the exact double to
 * round differently (dn_dc_float_safe); anything else goes to strtod. */
#include "dn_runtime.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifndef DN_NO_ZLIB
#include <zlib.h>
#endif

#define DN_DC_DEFAULT_MAX ((size_t)1 << 34)

#define DN_DC_MAX_COLS (1u << 24)

enum { DN_DC_FEATURE = 0, DN_DC_TARGET = 1, DN_DC_IGNORED = 2 };

/* One field of a line: p[0..n) without blanks or quotes; `col` the 1-based
 * byte column where it starts; `quotes` how many "" pairs it holds. */
typedef struct {
    const char *p;
    size_t n, col, quotes;
} dn_dc_field;

/* The parse in progress. */
typedef struct {
    dn_csv c;              /* the line reader (and the error prefix) */
    const dn_csv_opts *o;
    char delim, comment;
    size_t pos;            /* next field of the current line; > c.n when none is left */
    uint32_t ncol;
    unsigned char *role;   /* [ncol] DN_DC_* */
    uint32_t *slot;        /* [ncol] index among the features or targets */
    char **colname;        /* [ncol] header names, or NULL */
    size_t rows_cap;
    /* class labels while reading: distinct names in order of appearance */
    char **names;
    size_t *name_len, *name_line;
    int n_names;
    int last_hit;
    char *scratch;         /* unescaped quoted fields */
    size_t scratch_cap;
} dn_dc;

/* ---- fields -------------------------------------------------------------- */

/* A byte around a field that is not part of it. */
static int dn_dc_blank(const dn_dc *d, char ch) {
    return (ch == ' ' || ch == '\t') && ch != d->delim;
}

/* Scans the quoted field whose opening quote is at s, into *f; sets d->pos
 * past its delimiter. Returns 0, or -1 with err set. */
static int dn_dc_quoted(dn_dc *d, size_t s, dn_dc_field *f, char *err) {
    const char *t = d->c.text;
    size_t n = d->c.n, i = s + 1;
    f->quotes = 0;
    for (;; i++) {
        if (i >= n) {
            dn_csv_errf(&d->c, s + 1, err, DN_ERR_MAX,
                        "unterminated quoted field (a quoted field cannot span lines)");
            return -1;
        }
        if (t[i] != '"')
            continue;
        if (i + 1 < n && t[i + 1] == '"') {
            f->quotes++;
            i++;
            continue;
        }
        break;
    }
    f->p = t + s + 1;
    f->n = i - s - 1;
    f->col = s + 1;
    size_t k = i + 1;
    while (k < n && dn_dc_blank(d, t[k]))
        k++;
    if (k < n && t[k] != d->delim) {
        dn_csv_errf(&d->c, k + 1, err, DN_ERR_MAX, "unexpected '%c' after a quoted field",
                    (unsigned char)t[k] < 0x20 ? '?' : t[k]);
        return -1;
    }
    d->pos = k < n ? k + 1 : n + 1;
    return 0;
}

/* Stores the current line's next field in *f. Returns 1, 0 when every field
 * was taken, or -1 with err set (a malformed quoted field). */
static int dn_dc_next_field(dn_dc *d, dn_dc_field *f, char *err) {
    const char *t = d->c.text;
    size_t n = d->c.n, s = d->pos;
    if (s > n)
        return 0;
    while (s < n && dn_dc_blank(d, t[s]))
        s++;
    if (s < n && t[s] == '"')
        return dn_dc_quoted(d, s, f, err) == 0 ? 1 : -1;
    const char *hit = memchr(t + s, d->delim, n - s);
    size_t e = hit ? (size_t)(hit - t) : n;
    d->pos = hit ? e + 1 : n + 1;
    while (e > s && dn_dc_blank(d, t[e - 1]))
        e--;
    f->p = t + s;
    f->n = e - s;
    f->col = s + 1;
    f->quotes = 0;
    return 1;
}

/* The text of field f with each "" made one quote: f->p itself when it has
 * none, else d->scratch. NULL when out of memory. */
static const char *dn_dc_unquote(dn_dc *d, const dn_dc_field *f, size_t *n) {
    *n = f->n;
    if (f->quotes == 0)
        return f->p;
    if (d->scratch_cap < f->n) {
        char *nb = realloc(d->scratch, f->n);
        if (!nb)
            return NULL;
        d->scratch = nb;
        d->scratch_cap = f->n;
    }
    size_t k = 0;
    for (size_t i = 0; i < f->n; i++) {
        d->scratch[k++] = f->p[i];
        if (f->p[i] == '"')
            i++; /* the second quote of a pair */
    }
    *n = k;
    return d->scratch;
}

/* A malloc'd NUL-terminated copy of field f, quotes undone. NULL (err set)
 * when out of memory or when the text holds a NUL byte. */
static char *dn_dc_strdup(dn_dc *d, const dn_dc_field *f, char *err) {
    size_t n;
    const char *p = dn_dc_unquote(d, f, &n);
    if (p && memchr(p, '\0', n)) {
        dn_csv_errf(&d->c, f->col, err, DN_ERR_MAX, "a name holds a NUL byte");
        return NULL;
    }
    char *s = p ? malloc(n + 1) : NULL;
    if (!s) {
        dn_csv_errf(&d->c, f->col, err, DN_ERR_MAX, "out of memory");
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* ---- numbers ------------------------------------------------------------- */

static const double dn_dc_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Adds the digits of p[*i..n) to the mantissa *m (*nd significant digits,
 * 19 at most: past that *trunc is set, and a dropped digit before the
 * point still raises the power of ten *e10); fraction digits (frac = 1)
 * kept in *m, leading zeros included, lower *e10 by one each. Returns the
 * count of digits. */
static inline size_t dn_dc_mantissa(const char *p, size_t n, size_t *i, uint64_t *m, int *nd, int *e10,
                             int frac, int *trunc) {
    size_t start = *i;
    for (; *i < n && p[*i] >= '0' && p[*i] <= '9'; (*i)++) {
        unsigned dig = (unsigned)(p[*i] - '0');
        if (*m == 0 && dig == 0) {
            *e10 -= frac;
            continue;
        }
        if (*nd >= 19) {
            *trunc |= dig != 0;
            *e10 += !frac;
            continue;
        }
        *m = *m * 10 + dig;
        (*nd)++;
        *e10 -= frac;
    }
    return *i - start;
}

/* Whether double a, within 4 units of 2^-53 * |a| of the decimal's exact
 * value, is far enough from both float rounding midpoints around (float)a
 * that strtod's double (within half a unit of the exact value) rounds to
 * the same float. Normal floats only. */
static int dn_dc_float_safe(double a, float f) {
    if (!(fabsf(f) >= FLT_MIN && fabsf(f) < FLT_MAX))
        return 0;
    double lo = ((double)f + (double)nextafterf(f, -INFINITY)) / 2; /* exact: 25-bit sums */
    double hi = ((double)f + (double)nextafterf(f, INFINITY)) / 2;
    double margin = fabs(a) * (4.0 / 9007199254740992.0);
    return fabs(a - lo) > margin && fabs(a - hi) > margin;
}

/* The fast paths: p[0..n) as (float)strtod would read it, into *v. Exact
 * when the mantissa has at most 19 digits and is below 2^53 and the power
 * of ten is within 1e+-22 (Clinger's: one correctly rounded operation);
 * else, with the power still in range, the product of the rounded first
 * 19 digits and the power, kept when dn_dc_float_safe vouches for it.
 * Returns 1 with *v set, or 0 (the caller asks strtod). */
static int dn_dc_fast_float(const char *p, size_t n, float *v) {
    size_t i = 0;
    int neg = 0, nd = 0, e10 = 0, trunc = 0;
    uint64_t m = 0;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        neg = p[i++] == '-';
    size_t digits = dn_dc_mantissa(p, n, &i, &m, &nd, &e10, 0, &trunc);
    if (i < n && p[i] == '.') {
        i++;
        digits += dn_dc_mantissa(p, n, &i, &m, &nd, &e10, 1, &trunc);
    }
    if (digits == 0)
        return 0;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        int eneg = 0, ex = 0;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            eneg = p[i++] == '-';
        size_t s = i;
        for (; i < n && p[i] >= '0' && p[i] <= '9' && ex < 1000; i++)
            ex = ex * 10 + (p[i] - '0');
        if (i == s)
            return 0;
        e10 += eneg ? -ex : ex;
    }
    if (i != n)
        return 0;
    if (m == 0) {
        *v = neg ? -0.0f : 0.0f;
        return 1;
    }
    if (e10 < -22 || e10 > 22)
        return 0;
    double d = (double)m;
    d = e10 < 0 ? d / dn_dc_pow10[-e10] : d * dn_dc_pow10[e10];
    d = neg ? -d : d;
    float f = (float)d;
    if ((!trunc && m <= ((uint64_t)1 << 53)) ? !isfinite(f) : !dn_dc_float_safe(d, f))
        return 0;
    *v = f;
    return 1;
}

/* Reads field f as a finite float into *v. Returns 0, or -1 with err set,
 * naming the column (what: "feature", "target"). */
static int dn_dc_value(dn_dc *d, const dn_dc_field *f, uint32_t col, float *v, char *err) {
    double x;
    int rc = DN_CSV_NUM_OK;
    if (!f->quotes && dn_dc_fast_float(f->p, f->n, v))
        return 0;
    if (f->quotes) /* a "" pair: no number */
        rc = DN_CSV_NUM_SYNTAX;
    else
        rc = dn_csv_number(f->p, f->n, &x);
    if (rc == DN_CSV_NUM_OK && !isfinite((float)x))
        rc = DN_CSV_NUM_RANGE;
    if (rc == DN_CSV_NUM_OK) {
        *v = (float)x;
        return 0;
    }
    char q[DN_CSV_QUOTE_MAX + 4], cn[DN_CSV_QUOTE_MAX + 4];
    const char *name = d->colname ? d->colname[col] : NULL;
    char num[24];
    snprintf(num, sizeof num, "%u", col);
    const char *where = name ? dn_csv_quote(name, strlen(name), cn) : num;
    const char *why = f->n == 0                     ? "missing value"
                      : rc == DN_CSV_NUM_NONFINITE ? "not a finite number"
                      : rc == DN_CSV_NUM_RANGE     ? "out of the range of a float"
                      : rc == DN_CSV_NUM_LONG      ? "number too long"
                                                   : "not a number";
    dn_csv_errf(&d->c, f->col, err, DN_ERR_MAX, "%s '%s' in column '%s'", why,
                dn_csv_quote(f->p, f->n, q), where);
    return -1;
}

/* ---- columns --------------------------------------------------------------- */

/* Selector s as a column index into *col (0-based; negative from the end).
 * Returns 1 when s is an index in range, 0 when it is not an index at all,
 * -1 when it is one out of range. */
static int dn_dc_index(const char *s, uint32_t ncol, uint32_t *col) {
    const char *p = s + (s[0] == '-');
    if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 9)
        return 0;
    long v = strtol(s, NULL, 10);
    if (v < 0)
        v += (long)ncol;
    if (v < 0 || v >= (long)ncol)
        return -1;
    *col = (uint32_t)v;
    return 1;
}

/* Resolves selector s to a column. Returns 0, or -1 with err set. */
static int dn_dc_select(const dn_dc *d, const char *s, uint32_t *col, char *err) {
    char q[DN_CSV_QUOTE_MAX + 4];
    int rc = dn_dc_index(s, d->ncol, col);
    if (rc == 1)
        return 0;
    if (rc == -1 || !d->colname) {
        dn_errf(err, "%s: column '%s' %s (the file has %u columns%s)", d->c.name,
                dn_csv_quote(s, strlen(s), q), rc == -1 ? "is out of range" : "needs a header row",
                d->ncol, rc == -1 ? "; indices count from 0, -1 is the last" : ", no header");
        return -1;
    }
    int hits = 0;
    for (uint32_t k = 0; k < d->ncol; k++)
        if (strcmp(d->colname[k], s) == 0 && hits++ == 0)
            *col = k;
    if (hits == 1)
        return 0;
    dn_errf(err, "%s: %s column named '%s' in the header", d->c.name,
            hits ? "more than one" : "no", dn_csv_quote(s, strlen(s), q));
    return -1;
}

/* Gives column `col` role r, refusing a column named twice. */
static int dn_dc_assign(dn_dc *d, uint32_t col, int r, const char *s, char *err) {
    char q[DN_CSV_QUOTE_MAX + 4];
    if (d->role[col] != DN_DC_FEATURE) {
        dn_errf(err, "%s: column '%s' is selected twice (as target or ignored)", d->c.name,
                dn_csv_quote(s, strlen(s), q));
        return -1;
    }
    d->role[col] = (unsigned char)r;
    return 0;
}

/* Sets each column's role and slot from the options; counts features and
 * targets into t. Returns 0 or -1 with err set. */
static int dn_dc_roles(dn_dc *d, dn_table *t, char *err) {
    const dn_csv_opts *o = d->o;
    uint32_t col = 0;
    if (o->n_target == 0) {
        d->role[d->ncol - 1] = DN_DC_TARGET;
    }
    for (int i = 0; i < o->n_target; i++)
        if (dn_dc_select(d, o->target[i], &col, err) != 0 ||
            dn_dc_assign(d, col, DN_DC_TARGET, o->target[i], err) != 0)
            return -1;
    for (int i = 0; i < o->n_ignore; i++)
        if (dn_dc_select(d, o->ignore[i], &col, err) != 0 ||
            dn_dc_assign(d, col, DN_DC_IGNORED, o->ignore[i], err) != 0)
            return -1;
    uint32_t nf = 0, nt = 0;
    for (uint32_t k = 0; k < d->ncol; k++)
        d->slot[k] = d->role[k] == DN_DC_FEATURE ? nf++ : d->role[k] == DN_DC_TARGET ? nt++ : 0;
    if (nf == 0 || (o->kind == DN_TARGET_CLASS && nt != 1)) {
        dn_errf(err, "%s: %s", d->c.name,
                nf == 0 ? "no feature columns are left" : "class labels come from exactly one column");
        return -1;
    }
    t->features = nf;
    t->targets = o->kind == DN_TARGET_VALUE ? nt : 0;
    return 0;
}

/* ---- lines ----------------------------------------------------------------- */

/* Makes the next line that holds data current (blank lines and comments
 * skipped) and starts its fields. Returns 1, or 0 at the end. */
static int dn_dc_next_row(dn_dc *d) {
    while (dn_csv_next_record(&d->c)) {
        size_t s = 0;
        while (s < d->c.n && dn_dc_blank(d, d->c.text[s]))
            s++;
        if (s < d->c.n && d->c.text[s] == d->comment)
            continue;
        d->pos = 0;
        return 1;
    }
    return 0;
}

/* Fields on the current line (a quoted field's delimiters not counted).
 * Returns the count, or 0 with err set. */
static uint32_t dn_dc_count(dn_dc *d, char *err) {
    dn_dc_field f;
    uint32_t k = 0;
    int rc;
    while ((rc = dn_dc_next_field(d, &f, err)) == 1)
        if (++k > DN_DC_MAX_COLS) {
            dn_csv_errf(&d->c, f.col, err, DN_ERR_MAX, "more than %u columns", DN_DC_MAX_COLS);
            return 0;
        }
    d->pos = 0;
    return rc == 0 ? k : 0;
}

/* Reads the header line's names. Returns 0 or -1 with err set. */
static int dn_dc_header(dn_dc *d, char *err) {
    d->colname = calloc(d->ncol, sizeof *d->colname);
    if (!d->colname) {
        dn_errf(err, "%s: out of memory", d->c.name);
        return -1;
    }
    dn_dc_field f;
    for (uint32_t k = 0; k < d->ncol; k++)
        if (dn_dc_next_field(d, &f, err) != 1 || !(d->colname[k] = dn_dc_strdup(d, &f, err)))
            return -1;
    return 0;
}

/* Upper bound on the data rows, the current one included: the lines left,
 * and no more rows than ncol-byte pieces of the text left (a row of ncol
 * fields, each feature non-empty, takes at least ncol bytes with its line
 * end), so that the bound times ncol stays near the text's size. */
static size_t dn_dc_rows_bound(const dn_dc *d) {
    size_t k = 2;
    const char *p = d->c.data + d->c.pos, *end = d->c.data + d->c.len;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        k++;
        p++;
    }
    size_t by_size = (d->c.len - d->c.pos) / d->ncol + 2;
    return k < by_size ? k : by_size;
}

/* ---- class labels ---------------------------------------------------------- */

/* The id of label field f among the names seen so far, adding it when new.
 * Returns the id, or -1 with err set. */
static int dn_dc_label(dn_dc *d, const dn_dc_field *f, char *err) {
    size_t n;
    const char *p = dn_dc_unquote(d, f, &n);
    if (!p) {
        dn_csv_errf(&d->c, f->col, err, DN_ERR_MAX, "out of memory");
        return -1;
    }
    int h = d->last_hit;
    if (h < d->n_names && d->name_len[h] == n && memcmp(d->names[h], p, n) == 0)
        return h;
    for (h = 0; h < d->n_names; h++)
        if (d->name_len[h] == n && memcmp(d->names[h], p, n) == 0)
            return d->last_hit = h;
    if (d->n_names == DN_TABLE_MAX_CLASSES) {
        dn_csv_errf(&d->c, f->col, err, DN_ERR_MAX,
                    "more than %d distinct class labels (real-valued targets need loss mse)",
                    DN_TABLE_MAX_CLASSES);
        return -1;
    }
    char *s = dn_dc_strdup(d, f, err);
    if (!s)
        return -1;
    d->names[d->n_names] = s;
    d->name_len[d->n_names] = n;
    d->name_line[d->n_names] = d->c.line;
    return d->last_hit = d->n_names++;
}

/* Label text s as a class number: digits only, below DN_TABLE_MAX_CLASSES
 * (else -1 when it is an integer too large, -2 when it is no integer). */
static long dn_dc_label_number(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || strspn(s, "0123456789") != n)
        return -2;
    if (n > 6)
        return -1;
    long v = strtol(s, NULL, 10);
    return v < DN_TABLE_MAX_CLASSES ? v : -1;
}

/* Byte order of two names, for qsort. */
static int dn_dc_cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Turns label ids in t->y into classes: the numbers themselves when every
 * name is a number, else the names' ranks in sorted order (kept in
 * t->class_names). Returns 0 or -1 with err set. */
static int dn_dc_classes(dn_dc *d, dn_table *t, char *err) {
    long num[DN_TABLE_MAX_CLASSES];
    int numeric = 1;
    long top = -1;
    for (int h = 0; h < d->n_names; h++) {
        num[h] = dn_dc_label_number(d->names[h]);
        numeric &= num[h] != -2;
        top = num[h] > top ? num[h] : top;
    }
    for (int h = 0; numeric && h < d->n_names; h++)
        if (num[h] == -1) {
            char q[DN_CSV_QUOTE_MAX + 4];
            dn_errf(err, "%s:%zu: class label %s is too large (labels are 0..%d)", d->c.name,
                    d->name_line[h], dn_csv_quote(d->names[h], strlen(d->names[h]), q),
                    DN_TABLE_MAX_CLASSES - 1);
            return -1;
        }
    if (!numeric) {
        char **sorted = malloc((size_t)d->n_names * sizeof *sorted);
        if (!sorted) {
            dn_errf(err, "%s: out of memory", d->c.name);
            return -1;
        }
        memcpy(sorted, d->names, (size_t)d->n_names * sizeof *sorted);
        qsort(sorted, (size_t)d->n_names, sizeof *sorted, dn_dc_cmp_names);
        for (int h = 0; h < d->n_names; h++)
            for (int r = 0; r < d->n_names; r++)
                if (sorted[r] == d->names[h])
                    num[h] = r;
        t->class_names = sorted;
        top = d->n_names - 1;
    }
    for (uint32_t r = 0; r < t->n; r++)
        t->y[r] = (int32_t)num[t->y[r]];
    t->n_classes = (int)top + 1;
    if (!numeric) /* the strings now belong to the table */
        d->n_names = 0;
    return 0;
}

/* ---- rows ------------------------------------------------------------------ */

/* Reads the current line as data row r. Returns 0 or -1 with err set. */
static int dn_dc_row(dn_dc *d, dn_table *t, uint32_t r, char *err) {
    dn_dc_field f;
    float *x = t->x_own + (size_t)r * t->features;
    for (uint32_t k = 0; k < d->ncol; k++) {
        int rc = dn_dc_next_field(d, &f, err);
        if (rc != 1) {
            if (rc == 0)
                dn_csv_errf(&d->c, d->c.n + 1, err, DN_ERR_MAX, "row has %u fields, expected %u",
                            k, d->ncol);
            return -1;
        }
        if (d->role[k] == DN_DC_FEATURE) {
            if (dn_dc_value(d, &f, k, x + d->slot[k], err) != 0)
                return -1;
        } else if (d->role[k] == DN_DC_TARGET) {
            int id = 0;
            if (t->targets ? dn_dc_value(d, &f, k, t->t + (size_t)r * t->targets + d->slot[k], err)
                           : (id = dn_dc_label(d, &f, err)) < 0)
                return -1;
            if (!t->targets)
                t->y[r] = id;
        }
    }
    if (d->pos <= d->c.n) {
        dn_csv_errf(&d->c, d->pos + 1, err, DN_ERR_MAX, "row has more than the %u fields expected",
                    d->ncol);
        return -1;
    }
    return 0;
}

/* Allocates the table's arrays for up to d->rows_cap rows. */
static int dn_dc_alloc(dn_dc *d, dn_table *t, char *err) {
    size_t rows = d->rows_cap ? d->rows_cap : 1;
    t->x_own = malloc(rows * t->features * sizeof *t->x_own);
    if (t->targets)
        t->t = malloc(rows * t->targets * sizeof *t->t);
    else
        t->y = malloc(rows * sizeof *t->y);
    d->names = malloc(DN_TABLE_MAX_CLASSES * sizeof *d->names);
    d->name_len = malloc(DN_TABLE_MAX_CLASSES * sizeof *d->name_len);
    d->name_line = malloc(DN_TABLE_MAX_CLASSES * sizeof *d->name_line);
    if (t->x_own && (t->t || t->y) && d->names && d->name_len && d->name_line)
        return 0;
    dn_errf(err, "%s: out of memory for %zu rows of %u values", d->c.name, rows,
            t->features + t->targets);
    return -1;
}

/* Reads every data row. Returns 0 or -1 with err set. */
static int dn_dc_rows(dn_dc *d, dn_table *t, char *err) {
    uint32_t r = 0;
    int more = 1; /* the first data row is current already */
    for (; more; more = dn_dc_next_row(d)) {
        if (r == UINT32_MAX || r >= d->rows_cap) {
            dn_csv_errf(&d->c, 0, err, DN_ERR_MAX, "too many rows");
            return -1;
        }
        if (dn_dc_row(d, t, r, err) != 0)
            return -1;
        r++;
    }
    t->n = r;
    t->x = t->x_own;
    return t->targets ? 0 : dn_dc_classes(d, t, err);
}

/* ---- the whole file --------------------------------------------------------- */

/* Skips o->skip lines, reads the header, counts columns, sets roles and
 * allocates. Leaves the first data row current. Returns 0 or -1. */
static int dn_dc_begin(dn_dc *d, dn_table *t, char *err) {
    for (uint32_t k = 0; k < d->o->skip; k++)
        dn_csv_next_line(&d->c);
    if (!dn_dc_next_row(d)) {
        dn_errf(err, "%s: no data rows", d->c.name);
        return -1;
    }
    if ((d->ncol = dn_dc_count(d, err)) == 0)
        return -1;
    if (d->o->header) {
        if (dn_dc_header(d, err) != 0)
            return -1;
        if (!dn_dc_next_row(d)) {
            dn_errf(err, "%s: a header but no data rows", d->c.name);
            return -1;
        }
    }
    d->role = calloc(d->ncol, 1);
    d->slot = calloc(d->ncol, sizeof *d->slot);
    if (!d->role || !d->slot) {
        dn_errf(err, "%s: out of memory", d->c.name);
        return -1;
    }
    d->rows_cap = dn_dc_rows_bound(d);
    return dn_dc_roles(d, t, err) != 0 || dn_dc_alloc(d, t, err) != 0 ? -1 : 0;
}

/* Frees the parse's own memory (not the table's). */
static void dn_dc_end(dn_dc *d) {
    for (uint32_t k = 0; d->colname && k < d->ncol; k++)
        free(d->colname[k]);
    for (int h = 0; h < d->n_names; h++)
        free(d->names[h]);
    free(d->colname);
    free(d->role);
    free(d->slot);
    free(d->names);
    free(d->name_len);
    free(d->name_line);
    free(d->scratch);
}

/* Moves the feature columns' names into the table. */
static void dn_dc_keep_names(dn_dc *d, dn_table *t) {
    if (!d->colname || !(t->feature_names = calloc(t->features, sizeof *t->feature_names)))
        return;
    for (uint32_t k = 0; k < d->ncol; k++)
        if (d->role[k] == DN_DC_FEATURE) {
            t->feature_names[d->slot[k]] = d->colname[k];
            d->colname[k] = NULL;
        }
}

int dn_csv_table_parse(const char *name, const char *data, size_t len, const dn_csv_opts *o,
                       dn_table *t, char *err) {
    dn_dc d;
    memset(&d, 0, sizeof d);
    memset(t, 0, sizeof *t);
    err[0] = '\0';
    dn_csv_init(&d.c, name, data, len);
    d.o = o;
    d.delim = o->delimiter ? o->delimiter : ',';
    d.comment = o->comment ? o->comment : '#';
    int rc = dn_dc_begin(&d, t, err) == 0 && dn_dc_rows(&d, t, err) == 0 ? 0 : -1;
    if (rc == 0)
        dn_dc_keep_names(&d, t);
    dn_dc_end(&d);
    if (rc != 0)
        dn_table_free(t);
    return rc;
}

/* ---- files ------------------------------------------------------------------ */

#ifndef DN_NO_ZLIB
/* Inflates gzip data src[0..n) (one or more members) into a malloc'd buffer
 * of at most max bytes. Returns 0 or -1 with err set. */
static int dn_dc_gunzip(const char *path, const char *src, size_t n, size_t max, char **out,
                        size_t *out_len, char *err) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        dn_errf(err, "%s: out of memory", path);
        return -1;
    }
    size_t cap = n < (max >> 2) ? n * 4 + 4096 : max + 1, len = 0;
    char *buf = malloc(cap + 1);
    const char *why = buf ? NULL : "out of memory";
    zs.next_in = (unsigned char *)(uintptr_t)src;
    while (!why) {
        if (len == cap) {
            size_t ncap = cap > max / 2 ? max + 1 : cap * 2;
            char *nb = ncap > cap ? realloc(buf, ncap + 1) : NULL;
            why = ncap <= cap ? "decompressed data is too large" : nb ? NULL : "out of memory";
            if (why)
                break;
            buf = nb;
            cap = ncap;
        }
        size_t in_left = n - (size_t)((const char *)zs.next_in - src);
        zs.avail_in = in_left > (1u << 30) ? 1u << 30 : (uInt)in_left;
        zs.next_out = (unsigned char *)buf + len;
        zs.avail_out = cap - len > (1u << 30) ? 1u << 30 : (uInt)(cap - len);
        size_t before = zs.avail_out;
        int ret = inflate(&zs, Z_NO_FLUSH);
        len += before - zs.avail_out;
        in_left = n - (size_t)((const char *)zs.next_in - src);
        if (ret == Z_STREAM_END) {
            if (in_left == 0)
                break;
            if (in_left < 2 || zs.next_in[0] != 0x1f || zs.next_in[1] != 0x8b)
                why = "trailing garbage after gzip data";
            else if (inflateReset(&zs) != Z_OK)
                why = "gzip reset failed";
        } else if (ret == Z_BUF_ERROR && in_left == 0) {
            why = "truncated gzip data";
        } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
            why = ret == Z_MEM_ERROR ? "out of memory" : "corrupt gzip data";
        }
        if (len > max)
            why = "decompressed data is too large";
    }
    inflateEnd(&zs);
    if (why) {
        free(buf);
        dn_errf(err, "%s: %s%s", path, why,
                strcmp(why, "decompressed data is too large") ? "" : " for the size limit");
        return -1;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}
#endif

int dn_csv_table_load(const char *path, const dn_csv_opts *o, dn_table *t, char *err) {
    size_t max = o->max_bytes ? o->max_bytes : DN_DC_DEFAULT_MAX, len = 0;
    char *data = NULL, why[DN_ERR_MAX];
    memset(t, 0, sizeof *t);
    if (dn_file_read(path, max, &data, &len, why) != 0) {
        dn_errf(err, "%s: %s", path, why);
        return -1;
    }
    if (len >= 2 && (unsigned char)data[0] == 0x1f && (unsigned char)data[1] == 0x8b) {
#ifndef DN_NO_ZLIB
        char *plain = NULL;
        int rc = dn_dc_gunzip(path, data, len, max, &plain, &len, err);
        free(data);
        if (rc != 0)
            return -1;
        data = plain;
#else
        free(data);
        dn_errf(err, "%s: gzip data, but this program was built without zlib", path);
        return -1;
#endif
    }
    int rc = dn_csv_table_parse(path, data, len, o, t, err);
    free(data);
    return rc;
}
