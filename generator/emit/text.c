/* text.c - the emitters' output buffer and the escaping of spec text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

void dn_buf_free(dn_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Makes room for n more bytes plus a NUL; returns 0, or -1 and sets oom. */
static int buf_reserve(dn_buf *b, size_t n) {
    if (b->oom) return -1;
    if (b->len + n + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1) {
        if (cap > ((size_t)-1) / 2) {
            b->oom = 1;
            return -1;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void dn_buf_append(dn_buf *b, const char *s, size_t n) {
    if (buf_reserve(b, n) != 0) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_vprintf(dn_buf *b, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || buf_reserve(b, (size_t)n) != 0) {
        if (n < 0) b->oom = 1;
        return;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void dn_buf_printf(dn_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void dn_buf_line(dn_buf *b, const char *fmt, ...) {
    if (fmt[0] != '\0' && fmt[0] != '#')
        for (int i = 0; i < b->indent; i++) dn_buf_append(b, "    ", 4);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
    dn_buf_append(b, "\n", 1);
}

void dn_buf_blank(dn_buf *b) { dn_buf_append(b, "\n", 1); }

void dn_buf_close(dn_buf *b) {
    b->indent--;
    dn_buf_line(b, "}");
}

void dn_buf_comment_text(dn_buf *b, const char *s, const char *newline_prefix) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n') {
            dn_buf_append(b, "\n", 1);
            dn_buf_append(b, newline_prefix, strlen(newline_prefix));
        } else if (*p == '*' && p[1] == '/') {
            dn_buf_append(b, "* ", 2); /* breaks the comment terminator */
        } else if (*p == '/' && p[1] == '*') {
            dn_buf_append(b, "/ ", 2); /* no nested-comment warning */
        } else if (*p == '?' && p[1] == '?') {
            dn_buf_append(b, "? ", 2); /* no trigraphs */
        } else if (*p == '\\') {
            dn_buf_append(b, "\\ ", 2); /* no line splice */
        } else if (*p < 0x20 || *p == 0x7f) {
            dn_buf_append(b, " ", 1);
        } else {
            dn_buf_append(b, (const char *)p, 1);
        }
    }
}

void dn_buf_c_string(dn_buf *b, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x20 && *p < 0x7f && *p != '\\' && *p != '"' && *p != '?') {
            dn_buf_append(b, (const char *)p, 1);
        } else {
            char esc[8];
            snprintf(esc, sizeof esc, "\\%03o", *p);
            dn_buf_append(b, esc, 4);
        }
    }
}
