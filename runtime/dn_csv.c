/* dn_csv.c - the one CSV tokenizer: lines, fields and numbers of the small
 * dialect that metrics files (`dngen plot`, `dngen sweep`) and the
 * predictor's CSV input share, with "NAME:LINE:COL: " in front of errors.
 *
 * It only splits text and reads numbers; what the fields mean (column names,
 * how many values a line holds) is the caller's. Works on a buffer and its
 * length, so the text need not be NUL-terminated, and never allocates. */
#include "dn_runtime.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dn_csv_init(dn_csv *c, const char *name, const char *data, size_t len) {
    memset(c, 0, sizeof *c);
    c->name = name ? name : "(input)";
    c->data = data;
    c->len = len;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        c->pos = 3; /* UTF-8 byte order mark */
}

int dn_csv_next_line(dn_csv *c) {
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
    c->text = start;
    c->n = k;
    c->field = 0;
    return 1;
}

int dn_csv_blank(const dn_csv *c) {
    for (size_t i = 0; i < c->n; i++)
        if (c->text[i] != ' ' && c->text[i] != '\t' && c->text[i] != '\r')
            return 0;
    return 1;
}

int dn_csv_next_record(dn_csv *c) {
    while (dn_csv_next_line(c))
        if (!dn_csv_blank(c))
            return 1;
    return 0;
}

size_t dn_csv_count_fields(const dn_csv *c) {
    size_t count = 1;
    for (size_t i = 0; i < c->n; i++)
        count += c->text[i] == ',';
    return count;
}

void dn_csv_rewind(dn_csv *c) { c->field = 0; }

int dn_csv_next_field(dn_csv *c, dn_csv_field *f) {
    if (c->field > c->n)
        return 0;
    size_t s = c->field;
    const char *comma = memchr(c->text + s, ',', c->n - s);
    size_t e = comma ? (size_t)(comma - c->text) : c->n;
    c->field = comma ? e + 1 : c->n + 1;
    while (s < e && (c->text[s] == ' ' || c->text[s] == '\t'))
        s++;
    while (e > s && (c->text[e - 1] == ' ' || c->text[e - 1] == '\t'))
        e--;
    f->p = c->text + s;
    f->n = e - s;
    f->col = s + 1;
    return 1;
}

/* ---- numbers ---------------------------------------------------------------- */

/* Moves *i past the decimal digits of p[*i..n); returns how many there were. */
static size_t dn_csv_digits(const char *p, size_t n, size_t *i) {
    size_t start = *i;
    while (*i < n && p[*i] >= '0' && p[*i] <= '9')
        (*i)++;
    return *i - start;
}

size_t dn_csv_scan_number(const char *p, size_t n) {
    size_t i = 0;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        i++;
    size_t digits = dn_csv_digits(p, n, &i);
    if (i < n && p[i] == '.') {
        i++;
        digits += dn_csv_digits(p, n, &i);
    }
    if (digits == 0)
        return 0;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (p[j] == '+' || p[j] == '-'))
            j++;
        if (dn_csv_digits(p, n, &j) > 0)
            i = j;
    }
    return i;
}

/* Case-insensitive: p[0..n) equals the lowercase word w. */
static int dn_csv_word(const char *p, size_t n, const char *w) {
    if (strlen(w) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i] >= 'A' && p[i] <= 'Z' ? (char)(p[i] - 'A' + 'a') : p[i];
        if (ch != w[i])
            return 0;
    }
    return 1;
}

/* p[0..n) spells a NaN or an infinity the way strtod would read one. */
static int dn_csv_nonfinite_word(const char *p, size_t n) {
    if (n > 0 && (p[0] == '+' || p[0] == '-')) {
        p++;
        n--;
    }
    if (dn_csv_word(p, n, "nan") || dn_csv_word(p, n, "inf") || dn_csv_word(p, n, "infinity"))
        return 1;
    return n >= 5 && dn_csv_word(p, 4, "nan(") && p[n - 1] == ')';
}

int dn_csv_number(const char *p, size_t n, double *v) {
    if (n == 0 || dn_csv_scan_number(p, n) != n)
        return dn_csv_nonfinite_word(p, n) ? DN_CSV_NUM_NONFINITE : DN_CSV_NUM_SYNTAX;
    if (n >= DN_CSV_NUM_MAX)
        return DN_CSV_NUM_LONG;
    char buf[DN_CSV_NUM_MAX];
    memcpy(buf, p, n);
    buf[n] = '\0';
    char *end = NULL;
    double d = strtod(buf, &end);
    if (end != buf + n)
        return DN_CSV_NUM_SYNTAX; /* e.g. a locale whose decimal point is not '.' */
    if (!isfinite(d))
        return DN_CSV_NUM_RANGE;
    *v = d;
    return DN_CSV_NUM_OK;
}

/* ---- messages --------------------------------------------------------------- */

const char *dn_csv_quote(const char *p, size_t n, char *buf) {
    size_t k = n < DN_CSV_QUOTE_MAX ? n : DN_CSV_QUOTE_MAX;
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

void dn_csv_errf(const dn_csv *c, size_t col, char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0)
        return;
    int at = col ? snprintf(err, errlen, "%s:%zu:%zu: ", c->name, c->line, col)
                 : snprintf(err, errlen, "%s:%zu: ", c->name, c->line);
    if (at >= 0 && (size_t)at < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + at, errlen - (size_t)at, fmt, ap);
        va_end(ap);
    }
    for (char *ch = err; *ch; ch++) /* one printable line, as dn_errf makes it */
        if ((unsigned char)*ch < 0x20 || *ch == 0x7f)
            *ch = '?';
}
