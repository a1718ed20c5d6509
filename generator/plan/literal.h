/* literal.h - numbers as the generated code and its comments print them:
 * exact C float literals and shortest round-trip text. */
#ifndef DNGEN_LITERAL_H
#define DNGEN_LITERAL_H

#include <stddef.h>

/* A C float literal that reads back as exactly x ("2.0f", "1.42857146f"). */
void dn_float_literal(char *dst, size_t n, float x);

/* Human text for a rate, the shortest form that round-trips ("0.5"). */
void dn_format_rate(char *dst, size_t n, double p);

#endif
