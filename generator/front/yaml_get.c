/* yaml_get.c - typed getters over the YAML tree (see yaml_get.h).
 *
 * Scalars are typed by form, not by YAML's implicit resolution: a quoted
 * scalar is always a string; a plain scalar is an integer only if it is
 * decimal digits, a number only if it matches the decimal/exponent grammar.
 * There are no booleans or nulls: "~" is just the text "~". */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "yaml_get.h"

/* ---- message helpers ------------------------------------------------------ */

/* Copies at most `keep` printable chars of s into buf, then "..." if cut.
 * buf must hold keep + 4 bytes. */
static void quote_into(const char *s, size_t len, char *buf, size_t keep) {
    size_t o = 0;
    for (size_t i = 0; i < len && o < keep; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[o++] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
    }
    if (len > keep) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
}

const char *dn_yquote(const char *s, size_t len, char buf[DN_YTEXT_BUF]) {
    quote_into(s, len, buf, DN_YTEXT_BUF - 4);
    return buf;
}

const char *dn_ydescribe(const dn_ynode *n, char buf[DN_YTEXT_BUF]) {
    switch (n->kind) {
    case DN_Y_MAP: return "a mapping";
    case DN_Y_SEQ: return "a sequence";
    case DN_Y_INVALID: return "an alias";
    case DN_Y_SCALAR: break;
    }
    if (n->quoted)
        return "a string";
    if (n->len == 0)
        return "an empty value";
    buf[0] = '\'';
    quote_into(n->text, n->len, buf + 1, DN_YTEXT_BUF - 6);
    size_t l = strlen(buf);
    buf[l] = '\'';
    buf[l + 1] = '\0';
    return buf;
}

int dn_yexpect(dn_diag *d, const dn_ynode *n, dn_ykind kind) {
    char g[DN_YTEXT_BUF];
    if (n->kind == kind)
        return 0;
    if (n->kind != DN_Y_INVALID)
        dn_diag_report(d, DN_ERROR, n->loc, "expected %s, got %s",
                       kind == DN_Y_MAP ? "a mapping" : kind == DN_Y_SEQ ? "a sequence" : "a scalar",
                       dn_ydescribe(n, g));
    return -1;
}

/* Plain, non-empty scalar, or an "expected <what>, got ..." error. */
static int expect_plain(dn_diag *d, const dn_ynode *n, const char *what) {
    char g[DN_YTEXT_BUF];
    if (n->kind == DN_Y_SCALAR && !n->quoted && n->len > 0)
        return 0;
    if (n->kind != DN_Y_INVALID)
        dn_diag_report(d, DN_ERROR, n->loc, "expected %s, got %s", what, dn_ydescribe(n, g));
    return -1;
}

/* ---- integers ------------------------------------------------------------- */

/* Parses "-?[0-9]+" exactly. *mag saturates at UINT64_MAX with *overflow
 * set. Returns -1 when the text is not of that form. */
static int parse_decimal(const char *s, size_t len, int *neg, uint64_t *mag, int *overflow) {
    size_t i = 0;
    *neg = 0;
    *mag = 0;
    *overflow = 0;
    if (i < len && s[i] == '-') {
        *neg = 1;
        i++;
    }
    if (i == len)
        return -1;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned digit = (unsigned)(s[i] - '0');
        if (*mag > (UINT64_MAX - digit) / 10) {
            *overflow = 1;
            *mag = UINT64_MAX;
        } else if (!*overflow) {
            *mag = *mag * 10 + digit;
        }
    }
    return 0;
}

/* Reads an integer node into sign + magnitude; reports non-integers. */
static int read_decimal(dn_diag *d, const dn_ynode *n, int *neg, uint64_t *mag, int *overflow) {
    char g[DN_YTEXT_BUF];
    if (expect_plain(d, n, "an integer"))
        return -1;
    if (parse_decimal(n->text, n->len, neg, mag, overflow) == 0)
        return 0;
    dn_diag_report(d, DN_ERROR, n->loc, "expected an integer, got %s", dn_ydescribe(n, g));
    return -1;
}

int dn_yget_int(dn_diag *d, const dn_ynode *n, const char *key, long long lo, long long hi,
                long long *out) {
    int neg, overflow;
    uint64_t mag;
    char q[DN_YTEXT_BUF];
    if (read_decimal(d, n, &neg, &mag, &overflow))
        return -1;
    /* Every accepted range lies well inside [-2^62, 2^62]. */
    const uint64_t lim = (uint64_t)1 << 62;
    if (!overflow && mag <= lim) {
        long long v = neg ? -(long long)mag : (long long)mag;
        if (v >= lo && v <= hi) {
            *out = v;
            return 0;
        }
    }
    dn_diag_report(d, DN_ERROR, n->loc, "%s must be in [%lld, %lld], got %s", key, lo, hi,
                   dn_yquote(n->text, n->len, q));
    return -1;
}

int dn_yget_u64(dn_diag *d, const dn_ynode *n, const char *key, uint64_t *out) {
    int neg, overflow;
    uint64_t mag;
    char q[DN_YTEXT_BUF];
    if (read_decimal(d, n, &neg, &mag, &overflow))
        return -1;
    if (!overflow && (!neg || mag == 0)) {
        *out = mag;
        return 0;
    }
    dn_diag_report(d, DN_ERROR, n->loc, "%s must be in [0, %llu], got %s", key,
                   (unsigned long long)UINT64_MAX, dn_yquote(n->text, n->len, q));
    return -1;
}

/* ---- floating point ------------------------------------------------------- */

static size_t skip_digits(const char *s, size_t i, size_t len) {
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    return i;
}

/* True for "[+-]?(digits[.digits?] | .digits)([eE][+-]?digits)?". */
static int is_number_text(const char *s, size_t len) {
    size_t i = 0;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        i++;
    size_t int_start = i;
    i = skip_digits(s, i, len);
    size_t n_int = i - int_start, n_frac = 0;
    if (i < len && s[i] == '.') {
        size_t frac_start = ++i;
        i = skip_digits(s, i, len);
        n_frac = i - frac_start;
    }
    if (n_int + n_frac == 0)
        return 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t exp_start = i;
        i = skip_digits(s, i, len);
        if (i == exp_start)
            return 0;
    }
    return i == len;
}

/* True for spellings of infinity/NaN in YAML (".inf", ".nan") or C ("inf"). */
static int is_nonfinite_text(const char *s, size_t len) {
    static const char *const words[] = {".inf", "inf", "infinity", ".nan", "nan"};
    if (len > 0 && (s[0] == '+' || s[0] == '-')) {
        s++;
        len--;
    }
    for (size_t w = 0; w < sizeof words / sizeof words[0]; w++) {
        size_t wl = strlen(words[w]), i = 0;
        if (wl != len)
            continue;
        while (i < wl && tolower((unsigned char)s[i]) == words[w][i])
            i++;
        if (i == wl)
            return 1;
    }
    return 0;
}

int dn_yget_number(dn_diag *d, const dn_ynode *n, const char *key, double *out) {
    char q[DN_YTEXT_BUF];
    if (expect_plain(d, n, "a number"))
        return -1;
    int nonfinite = is_nonfinite_text(n->text, n->len);
    if (!nonfinite && !is_number_text(n->text, n->len)) {
        dn_diag_report(d, DN_ERROR, n->loc, "expected a number, got %s", dn_ydescribe(n, q));
        return -1;
    }
    double v = nonfinite ? HUGE_VAL : strtod(n->text, NULL);
    if (!isfinite(v)) {
        dn_diag_report(d, DN_ERROR, n->loc, "%s must be a finite number, got %s", key,
                       dn_yquote(n->text, n->len, q));
        return -1;
    }
    *out = v;
    return 0;
}

/* ---- strings and names ---------------------------------------------------- */

int dn_yget_string(dn_diag *d, const dn_ynode *n, const char *key, char *buf, size_t cap,
                   int allow_empty) {
    if (n->kind != DN_Y_SCALAR)
        return dn_yexpect(d, n, DN_Y_SCALAR);
    if (n->len == 0 && !allow_empty) {
        dn_diag_report(d, DN_ERROR, n->loc, "%s must not be empty", key);
        return -1;
    }
    if (memchr(n->text, '\0', n->len)) {
        dn_diag_report(d, DN_ERROR, n->loc, "%s must not contain NUL characters", key);
        return -1;
    }
    if (n->len >= cap) {
        dn_diag_report(d, DN_ERROR, n->loc, "%s is too long (%zu bytes, at most %zu)", key, n->len,
                       cap - 1);
        return -1;
    }
    memcpy(buf, n->text, n->len + 1);
    return 0;
}

int dn_is_c_keyword(const char *s) {
    static const char *const kw[] = {
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
        "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
        "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch",
        "typedef", "union", "unsigned", "void", "volatile", "while", "_Alignas", "_Alignof",
        "_Atomic", "_Bool", "_Complex", "_Generic", "_Imaginary", "_Noreturn", "_Static_assert",
        "_Thread_local",
        /* C23 */
        "alignas", "alignof", "bool", "constexpr", "false", "nullptr", "static_assert",
        "thread_local", "true", "typeof", "typeof_unqual", "_BitInt", "_Decimal32",
        "_Decimal64", "_Decimal128"};
    for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
        if (strcmp(s, kw[i]) == 0)
            return 1;
    return 0;
}

static int is_ident_text(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return len > 0;
}

int dn_yget_ident(dn_diag *d, const dn_ynode *n, const char *what, char *buf) {
    char q[DN_YTEXT_BUF];
    if (n->kind != DN_Y_SCALAR)
        return dn_yexpect(d, n, DN_Y_SCALAR);
    if (n->len == 0) {
        dn_diag_report(d, DN_ERROR, n->loc, "%s must not be empty", what);
        return -1;
    }
    dn_yquote(n->text, n->len, q);
    if (!is_ident_text(n->text, n->len)) {
        dn_diag_report(d, DN_ERROR, n->loc,
                       "invalid %s '%s': use letters, digits and underscores, not starting "
                       "with a digit",
                       what, q);
        return -1;
    }
    if (n->len > DN_NAME_MAX) {
        dn_diag_report(d, DN_ERROR, n->loc, "%s '%s' is too long (%zu characters, at most %d)",
                       what, q, n->len, DN_NAME_MAX);
        return -1;
    }
    if (dn_is_c_keyword(n->text)) {
        dn_diag_report(d, DN_ERROR, n->loc, "%s '%s' is a C keyword", what, q);
        return -1;
    }
    memcpy(buf, n->text, n->len + 1);
    return 0;
}

/* ---- suggestions and enums ------------------------------------------------ */

#define SUGGEST_MAX_LEN 64

/* Case-insensitive optimal string alignment distance (edits: insert, delete,
 * substitute, swap adjacent). Both strings at most SUGGEST_MAX_LEN long. */
static size_t osa_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    size_t rows[3][SUGGEST_MAX_LEN + 1]; /* i-2, i-1, i */
    for (size_t j = 0; j <= lb; j++)
        rows[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        /* row k lives in rows[k % 3] */
        size_t *prev2 = rows[(i + 1) % 3], *prev = rows[(i + 2) % 3], *cur = rows[i % 3];
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t cost = ca == cb ? 0 : 1;
            size_t best = prev[j - 1] + cost;
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
    }
    return rows[la % 3][lb];
}

const char *dn_ysuggest(const char *word, const char *const *names, size_t count) {
    size_t wl = strlen(word);
    if (wl == 0 || wl > SUGGEST_MAX_LEN)
        return NULL;
    size_t limit = wl <= 3 ? 1 : 2, best_d = limit + 1;
    const char *best = NULL;
    for (size_t i = 0; i < count; i++) {
        if (strlen(names[i]) > SUGGEST_MAX_LEN)
            continue;
        size_t dist = osa_distance(word, names[i]);
        if (dist < best_d) {
            best_d = dist;
            best = names[i];
        }
    }
    return best;
}

/* "a, b, c" into buf (truncated to cap). */
static void join_names(const char *const *names, size_t count, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        int w = snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= cap - o)
            return;
        o += (size_t)w;
    }
}

/* "unknown <what> 'x'[ <where>][; did you mean 'y'?] (allowed: ...)".
 * Returns the suggestion made, or NULL. */
static const char *report_unknown(dn_diag *d, dn_loc loc, const char *what, const char *word,
                           size_t word_len, const char *where, const char *const *names,
                           size_t count) {
    char q[DN_YTEXT_BUF], allowed[512], hint[SUGGEST_MAX_LEN + 32] = "";
    const char *s = memchr(word, '\0', word_len) ? NULL : dn_ysuggest(word, names, count);
    if (s)
        snprintf(hint, sizeof hint, "; did you mean '%s'?", s);
    join_names(names, count, allowed, sizeof allowed);
    dn_diag_report(d, DN_ERROR, loc, "unknown %s '%s'%s%s%s (allowed: %s)", what,
                   dn_yquote(word, word_len, q), where[0] ? " " : "", where, hint, allowed);
    return s;
}

/* Index of the scalar's text in names, or -1. */
static int find_name(const dn_ynode *n, const char *const *names, size_t count) {
    for (size_t i = 0; i < count; i++)
        if (strlen(names[i]) == n->len && memcmp(names[i], n->text, n->len) == 0)
            return (int)i;
    return -1;
}

int dn_yget_enum(dn_diag *d, const dn_ynode *n, const char *what, const char *const *names,
                 size_t count, int *out) {
    if (n->kind != DN_Y_SCALAR)
        return dn_yexpect(d, n, DN_Y_SCALAR);
    int i = find_name(n, names, count);
    if (i < 0) {
        report_unknown(d, n->loc, what, n->text, n->len, "", names, count);
        return -1;
    }
    *out = i;
    return 0;
}

/* ---- mappings ------------------------------------------------------------- */

int dn_ymap_fields(dn_diag *d, const dn_ynode *map, const char *where,
                   const char *const *allowed, size_t n_allowed, dn_yfield *fields) {
    char q[DN_YTEXT_BUF];
    for (size_t i = 0; i < n_allowed; i++)
        fields[i].key = fields[i].value = fields[i].misspelled = NULL;
    if (dn_yexpect(d, map, DN_Y_MAP))
        return -1;
    for (size_t p = 0; p < map->n_pairs; p++) {
        const dn_ynode *k = map->pairs[p].key, *v = map->pairs[p].value;
        if (k->kind != DN_Y_SCALAR) {
            dn_yexpect(d, k, DN_Y_SCALAR);
            continue;
        }
        int i = find_name(k, allowed, n_allowed);
        if (i < 0) {
            const char *s = report_unknown(d, k->loc, "key", k->text, k->len, where, allowed,
                                           n_allowed);
            for (size_t j = 0; s && j < n_allowed; j++)
                if (allowed[j] == s && !fields[j].misspelled)
                    fields[j].misspelled = k;
        } else if (fields[i].key) {
            dn_diag_report(d, DN_ERROR, k->loc, "duplicate key '%s'", dn_yquote(k->text, k->len, q));
            dn_diag_report(d, DN_NOTE, fields[i].key->loc, "'%s' first defined here", q);
        } else {
            fields[i].key = k;
            fields[i].value = v;
        }
    }
    return 0;
}

int dn_yrequire(dn_diag *d, const dn_ynode *map, const dn_yfield *f, const char *key,
                const char *where) {
    if (f->value)
        return 0;
    if (f->misspelled) /* "did you mean '<key>'?" already said it */
        return -1;
    dn_diag_report(d, DN_ERROR, map->loc, "missing required key '%s' %s", key, where);
    return -1;
}
