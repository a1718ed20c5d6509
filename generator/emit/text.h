/* text.h - the growable text buffer every emitter writes into, and the
 * escaping of text from the spec into C comments and strings. */
#ifndef DNGEN_TEXT_H
#define DNGEN_TEXT_H

#include <stdarg.h>
#include <stddef.h>

#include "literal.h"

/* ---- output buffer --------------------------------------------------------- */

/* Growable text buffer. On allocation failure `oom` is set and further writes
 * are dropped; check it once at the end. */
typedef struct {
    char *data;
    size_t len, cap;
    int indent; /* levels of 4 spaces applied by dn_buf_line */
    int oom;
} dn_buf;

void dn_buf_free(dn_buf *b);
void dn_buf_append(dn_buf *b, const char *s, size_t n);
void dn_buf_printf(dn_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* One line: indentation, the formatted text, newline. */
void dn_buf_line(dn_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* An empty line. */
void dn_buf_blank(dn_buf *b);

/* Ends a block: one indentation level less, then a line "}". */
void dn_buf_close(dn_buf *b);

/* Appends `s` so that it is inert inside a C block comment: no comment
 * terminator, no control characters, no trigraph or line splice. Newlines
 * become "\n" + `newline_prefix`. */
void dn_buf_comment_text(dn_buf *b, const char *s, const char *newline_prefix);

/* Appends `s` as the contents of a C string literal (without the quotes):
 * printable ASCII except backslash, quote and '?' as is, the rest as octal escapes. */
void dn_buf_c_string(dn_buf *b, const char *s);

#endif
