/* literal.c - numbers as C literals and as text, exactly (literal.h). */
#include "literal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dn_format_rate(char *dst, size_t n, double p) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(dst, n, "%.*g", prec, p);
        if (strtod(dst, NULL) == p) return;
    }
}

void dn_float_literal(char *dst, size_t n, float x) {
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(dst, n, "%.*g", prec, (double)x);
        if (strtof(dst, NULL) == x) break;
    }
    if (!strpbrk(dst, ".eEn")) /* "2" -> "2.0" */
        strncat(dst, ".0", n - strlen(dst) - 1);
    strncat(dst, "f", n - strlen(dst) - 1);
}
