/* diag.c - compiler-style diagnostics: "file:line:col: error: message".
 *
 * Every front-end problem goes through dn_diag_report so that the CLI and
 * the tests see one format. After max_errors errors the sink goes quiet
 * (it prints "too many errors, stopping" once) but keeps counting, so the
 * caller can still tell that the spec was invalid and how badly. */
#include <stdarg.h>

#include "spec.h"

#define DN_DIAG_DEFAULT_MAX_ERRORS 20

void dn_diag_init(dn_diag *d, FILE *out, const char *file) {
    d->out = out;
    d->file = file;
    d->n_errors = 0;
    d->n_warnings = 0;
    d->max_errors = 0;
}

static int diag_cap(const dn_diag *d) {
    return d->max_errors > 0 ? d->max_errors : DN_DIAG_DEFAULT_MAX_ERRORS;
}

static const char *severity_word(dn_severity sev) {
    switch (sev) {
    case DN_ERROR: return "error";
    case DN_WARNING: return "warning";
    case DN_NOTE: return "note";
    }
    return "error";
}

/* Prints "file[:line[:col]]: " - the location prefix of one diagnostic. */
static void print_location(const dn_diag *d, dn_loc loc) {
    const char *file = d->file ? d->file : "<input>";
    if (loc.line <= 0)
        fprintf(d->out, "%s: ", file);
    else if (loc.col <= 0)
        fprintf(d->out, "%s:%d: ", file, loc.line);
    else
        fprintf(d->out, "%s:%d:%d: ", file, loc.line, loc.col);
}

/* Counts the diagnostic, then prints it unless the error cap was passed.
 * Notes and warnings that follow a suppressed error are suppressed too. */
void dn_diag_report(dn_diag *d, dn_severity sev, dn_loc loc, const char *fmt, ...) {
    int cap = diag_cap(d);
    if (sev == DN_ERROR)
        d->n_errors++;
    else if (sev == DN_WARNING)
        d->n_warnings++;
    if (d->n_errors > cap) {
        if (sev == DN_ERROR && d->n_errors == cap + 1 && d->out) {
            print_location(d, (dn_loc){0, 0});
            fputs("error: too many errors, stopping\n", d->out);
        }
        return;
    }
    if (!d->out)
        return;
    print_location(d, loc);
    fprintf(d->out, "%s: ", severity_word(sev));
    va_list ap;
    va_start(ap, fmt);
    vfprintf(d->out, fmt, ap);
    va_end(ap);
    fputc('\n', d->out);
}
