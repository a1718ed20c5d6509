/* dn_safetensors.c - safetensors writer (F32 tensors + string metadata) and a
 * strict reader for all common dtypes.
 *
 * Layout: u64 little-endian N, N bytes of UTF-8 JSON header, then the data
 * area; each tensor's data_offsets are relative to the data area. */
#include "dn_runtime.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Largest JSON header accepted (same limit as the reference implementation). */
static const uint64_t dn_sft_max_header = 100000000u;
enum { dn_sft_max_dims = 8 };

typedef struct {
    const char *name;
    size_t size;
} dn_sft_dtype;

static const dn_sft_dtype dn_sft_dtypes[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2},  {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
    {"I8", 1},  {"U8", 1},  {"BOOL", 1}, {"U64", 8},  {"U32", 4}, {"U16", 2},
};

/* Length of the valid UTF-8 sequence at s (avail bytes), or 0 if invalid
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
static size_t dn_sft_utf8_len(const unsigned char *s, size_t avail) {
    unsigned c = s[0];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (avail < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* ---- growable byte buffer (writer) --------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} dn_sft_buf;

/* Appends n bytes; on allocation failure sets b->oom and drops the data. */
static void dn_sft_put(dn_sft_buf *b, const char *s, size_t n) {
    if (b->oom)
        return;
    if (b->cap - b->len < n) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap - b->len < n) {
            if (ncap > SIZE_MAX / 2) {
                b->oom = 1;
                return;
            }
            ncap *= 2;
        }
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void dn_sft_puts(dn_sft_buf *b, const char *s) { dn_sft_put(b, s, strlen(s)); }

/* Appends an unsigned decimal integer. */
static void dn_sft_put_u64(dn_sft_buf *b, uint64_t v) {
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    dn_sft_put(b, tmp, (size_t)n);
}

/* Appends s as a quoted JSON string (s must be valid UTF-8). */
static void dn_sft_put_json_string(dn_sft_buf *b, const char *s) {
    static const char hex[] = "0123456789abcdef";
    dn_sft_put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (*c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            if (*c >= 0x20) {
                dn_sft_put(b, (const char *)c, 1);
                continue;
            }
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[*c >> 4];
            esc[5] = hex[*c & 15];
            n = 6;
        }
        dn_sft_put(b, esc, n);
    }
    dn_sft_put(b, "\"", 1);
}

/* ---- writer --------------------------------------------------------------- */

/* 1 if the NUL-terminated string is valid UTF-8. */
static int dn_sft_valid_utf8(const char *s) {
    const unsigned char *u = (const unsigned char *)s;
    size_t avail = strlen(s);
    while (avail > 0) {
        size_t k = dn_sft_utf8_len(u, avail);
        if (k == 0)
            return 0;
        u += k;
        avail -= k;
    }
    return 1;
}

/* Bytes of F32 data of tensor t, or SIZE_MAX if its shape is invalid or the
 * size overflows. */
static size_t dn_sft_tensor_bytes(const dn_st_tensor *t) {
    if (t->ndim < 0 || t->ndim > 4)
        return SIZE_MAX;
    size_t bytes = sizeof(float);
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0)
            return SIZE_MAX;
        uint64_t dim = (uint64_t)t->shape[d];
        if (dim != 0 && bytes > (SIZE_MAX - 1) / dim)
            return SIZE_MAX;
        bytes *= (size_t)dim;
    }
    return bytes;
}

/* Checks the writer's inputs: names and metadata valid UTF-8 and unique,
 * shapes valid; fills bytes[i] and returns the total data size. */
static int dn_sft_check_inputs(const char *path, const dn_st_tensor *t, int n, const dn_st_meta *meta,
                            int n_meta, size_t *bytes, size_t *total, char *err) {
    *total = 0;
    for (int i = 0; i < n; i++) {
        if (!t[i].name || !dn_sft_valid_utf8(t[i].name) || !strcmp(t[i].name, "__metadata__")) {
            dn_errf(err, "%s: tensor %d: missing, reserved or non-UTF-8 name", path, i);
            return -1;
        }
        for (int j = 0; j < i; j++) {
            if (!strcmp(t[i].name, t[j].name)) {
                dn_errf(err, "%s: duplicate tensor name '%s'", path, t[i].name);
                return -1;
            }
        }
        bytes[i] = dn_sft_tensor_bytes(&t[i]);
        if (bytes[i] == SIZE_MAX || bytes[i] > SIZE_MAX - *total || (bytes[i] && !t[i].data)) {
            dn_errf(err, "%s: tensor '%s': invalid shape or missing data", path, t[i].name);
            return -1;
        }
        *total += bytes[i];
    }
    for (int i = 0; i < n_meta; i++) {
        if (!meta[i].key || !meta[i].value || !dn_sft_valid_utf8(meta[i].key) ||
            !dn_sft_valid_utf8(meta[i].value)) {
            dn_errf(err, "%s: metadata entry %d: missing or non-UTF-8 key or value", path, i);
            return -1;
        }
        for (int j = 0; j < i; j++) {
            if (!strcmp(meta[i].key, meta[j].key)) {
                dn_errf(err, "%s: duplicate metadata key '%s'", path, meta[i].key);
                return -1;
            }
        }
    }
    return 0;
}

/* Builds the JSON header, padded with spaces to a multiple of 8 bytes. */
static void dn_sft_build_header(dn_sft_buf *h, const dn_st_tensor *t, int n, const size_t *bytes,
                             const dn_st_meta *meta, int n_meta) {
    dn_sft_puts(h, "{");
    if (n_meta > 0) {
        dn_sft_puts(h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i)
                dn_sft_puts(h, ",");
            dn_sft_put_json_string(h, meta[i].key);
            dn_sft_puts(h, ":");
            dn_sft_put_json_string(h, meta[i].value);
        }
        dn_sft_puts(h, "}");
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        if (i || n_meta > 0)
            dn_sft_puts(h, ",");
        dn_sft_put_json_string(h, t[i].name);
        dn_sft_puts(h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) {
            if (d)
                dn_sft_puts(h, ",");
            dn_sft_put_u64(h, (uint64_t)t[i].shape[d]);
        }
        dn_sft_puts(h, "],\"data_offsets\":[");
        dn_sft_put_u64(h, off);
        dn_sft_puts(h, ",");
        off += bytes[i];
        dn_sft_put_u64(h, off);
        dn_sft_puts(h, "]}");
    }
    dn_sft_puts(h, "}");
    while (h->len % 8 != 0)
        dn_sft_puts(h, " ");
}

/* Stores v as 8 little-endian bytes. */
static void dn_sft_store_le64(unsigned char *p, uint64_t v) {
    for (int k = 0; k < 8; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

/* Copies count floats to dst as little-endian IEEE-754 bytes. */
static void dn_sft_store_f32(unsigned char *dst, const float *src, size_t count) {
    for (size_t i = 0; i < count; i++) {
        uint32_t w;
        memcpy(&w, &src[i], 4);
        dst[4 * i] = (unsigned char)w;
        dst[4 * i + 1] = (unsigned char)(w >> 8);
        dst[4 * i + 2] = (unsigned char)(w >> 16);
        dst[4 * i + 3] = (unsigned char)(w >> 24);
    }
}

int dn_st_write(const char *path, const dn_st_tensor *t, int n, const dn_st_meta *meta, int n_meta,
                char *err) {
    if (n < 0 || n_meta < 0 || (n > 0 && !t) || (n_meta > 0 && !meta)) {
        dn_errf(err, "%s: invalid tensor or metadata list", path);
        return -1;
    }
    size_t *bytes = malloc(((size_t)n + 1) * sizeof *bytes);
    size_t total = 0;
    dn_sft_buf h = {0};
    unsigned char *file = NULL;
    int rc = -1;
    if (!bytes) {
        dn_errf(err, "%s: out of memory", path);
        return -1;
    }
    if (dn_sft_check_inputs(path, t, n, meta, n_meta, bytes, &total, err) != 0)
        goto done;
    dn_sft_build_header(&h, t, n, bytes, meta, n_meta);
    if (h.oom || total > SIZE_MAX - 8 - h.len || !(file = malloc(8 + h.len + total))) {
        dn_errf(err, "%s: out of memory", path);
        goto done;
    }
    dn_sft_store_le64(file, (uint64_t)h.len);
    memcpy(file + 8, h.p, h.len);
    unsigned char *data = file + 8 + h.len;
    for (int i = 0; i < n; i++) {
        dn_sft_store_f32(data, t[i].data, bytes[i] / 4);
        data += bytes[i];
    }
    rc = dn_write_file_atomic(path, file, 8 + h.len + total, err);
done:
    free(file);
    free(h.p);
    free(bytes);
    return rc;
}

/* ---- reader: file structure ------------------------------------------------ */

typedef struct {
    dn_st_info info;
    uint64_t begin, end; /* data_offsets */
    size_t off;          /* file offset of the name, for messages */
} dn_sft_entry;

struct dn_st_file {
    unsigned char *mem; /* allocation holding the file image */
    dn_sft_entry *t;
    int n, cap;
    char **mkey, **mval;
    size_t *moff; /* file offsets of metadata keys */
    int n_meta, mcap;
};

/* ---- reader: JSON parsing ----------------------------------------------- */

typedef struct {
    const unsigned char *s; /* header text */
    size_t n, pos;
    const char *path;
    char *err;
    const unsigned char *data; /* data area and its size */
    size_t data_size;
} dn_sft_parser;

/* Reports a JSON syntax error at header position pos (as a file offset). */
static int dn_sft_syntax(dn_sft_parser *ps, size_t pos, const char *what) {
    dn_errf(ps->err, "%s: bad JSON header at byte %zu: %s", ps->path, pos + 8, what);
    return -1;
}

/* Skips JSON whitespace; returns the next byte or -1 at the end. */
static int dn_sft_peek(dn_sft_parser *ps) {
    while (ps->pos < ps->n && (ps->s[ps->pos] == ' ' || ps->s[ps->pos] == '\t' ||
                               ps->s[ps->pos] == '\n' || ps->s[ps->pos] == '\r'))
        ps->pos++;
    return ps->pos < ps->n ? ps->s[ps->pos] : -1;
}

/* Consumes the character c (after whitespace) or fails. */
static int dn_sft_expect(dn_sft_parser *ps, char c) {
    if (dn_sft_peek(ps) != (unsigned char)c) {
        char what[32];
        snprintf(what, sizeof what, "expected '%c'", c);
        return dn_sft_syntax(ps, ps->pos, what);
    }
    ps->pos++;
    return 0;
}

/* After '{' or '[' has been consumed: returns 1 (and consumes the closer) if
 * the container is empty, else 0. */
static int dn_sft_open_empty(dn_sft_parser *ps, char closer) {
    if (dn_sft_peek(ps) == (unsigned char)closer) {
        ps->pos++;
        return 1;
    }
    return 0;
}

/* After a member: consumes ',' (returns 0, more follow) or the closer
 * (returns 1); anything else is an error (-1). */
static int dn_sft_next_member(dn_sft_parser *ps, char closer) {
    int c = dn_sft_peek(ps);
    if (c == ',') {
        ps->pos++;
        return 0;
    }
    if (c == (unsigned char)closer) {
        ps->pos++;
        return 1;
    }
    char what[32];
    snprintf(what, sizeof what, "expected ',' or '%c'", closer);
    return dn_sft_syntax(ps, ps->pos, what);
}

/* Parses 4 hex digits at ps->pos. */
static int dn_sft_hex4(dn_sft_parser *ps, uint32_t *out) {
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        if (ps->pos >= ps->n)
            return dn_sft_syntax(ps, ps->pos, "unterminated \\u escape");
        unsigned c = ps->s[ps->pos];
        unsigned d = c >= '0' && c <= '9'   ? c - '0'
                     : c >= 'a' && c <= 'f' ? c - 'a' + 10
                     : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                            : 16;
        if (d == 16)
            return dn_sft_syntax(ps, ps->pos, "bad hex digit in \\u escape");
        v = v << 4 | d;
        ps->pos++;
    }
    *out = v;
    return 0;
}

/* Decodes a \uXXXX escape (ps->pos just after "\u"), joining surrogate
 * pairs; writes UTF-8 to *o and advances it. */
static int dn_sft_unicode_escape(dn_sft_parser *ps, char **o) {
    size_t at = ps->pos - 2;
    uint32_t cp, lo;
    if (dn_sft_hex4(ps, &cp) != 0)
        return -1;
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return dn_sft_syntax(ps, at, "unpaired low surrogate in \\u escape");
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (ps->pos + 2 > ps->n || ps->s[ps->pos] != '\\' || ps->s[ps->pos + 1] != 'u')
            return dn_sft_syntax(ps, at, "unpaired high surrogate in \\u escape");
        ps->pos += 2;
        if (dn_sft_hex4(ps, &lo) != 0)
            return -1;
        if (lo < 0xdc00 || lo > 0xdfff)
            return dn_sft_syntax(ps, at, "unpaired high surrogate in \\u escape");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    if (cp == 0)
        return dn_sft_syntax(ps, at, "NUL character in string");
    unsigned char *u = (unsigned char *)*o;
    if (cp < 0x80) {
        *u++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *u++ = (unsigned char)(0xc0 | cp >> 6);
        *u++ = (unsigned char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *u++ = (unsigned char)(0xe0 | cp >> 12);
        *u++ = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        *u++ = (unsigned char)(0x80 | (cp & 0x3f));
    } else {
        *u++ = (unsigned char)(0xf0 | cp >> 18);
        *u++ = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
        *u++ = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        *u++ = (unsigned char)(0x80 | (cp & 0x3f));
    }
    *o = (char *)u;
    return 0;
}

/* Decodes the escape after a backslash (ps->pos at the escape letter). */
static int dn_sft_escape(dn_sft_parser *ps, char **o) {
    if (ps->pos >= ps->n)
        return dn_sft_syntax(ps, ps->pos, "unterminated string");
    unsigned char c = ps->s[ps->pos++];
    const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
    if (c == 'u')
        return dn_sft_unicode_escape(ps, o);
    const char *hit = c ? strchr(from, c) : NULL;
    if (!hit)
        return dn_sft_syntax(ps, ps->pos - 2, "bad escape in string");
    *(*o)++ = to[hit - from];
    return 0;
}

/* Parses a JSON string into a malloc'd NUL-terminated UTF-8 copy; *at gets
 * its header position. */
static int dn_sft_string(dn_sft_parser *ps, char **out, size_t *at) {
    *out = NULL;
    if (dn_sft_peek(ps) != '"')
        return dn_sft_syntax(ps, ps->pos, "expected a string");
    *at = ps->pos++;
    size_t end = ps->pos;
    while (end < ps->n && ps->s[end] != '"')
        end += ps->s[end] == '\\' ? 2 : 1;
    if (end >= ps->n)
        return dn_sft_syntax(ps, *at, "unterminated string");
    char *buf = malloc(end - ps->pos + 1), *o = buf; /* decoding never grows */
    if (!buf) {
        dn_errf(ps->err, "%s: out of memory", ps->path);
        return -1;
    }
    while (ps->s[ps->pos] != '"') {
        unsigned char c = ps->s[ps->pos];
        size_t k;
        if (c == '\\') {
            ps->pos++;
            if (dn_sft_escape(ps, &o) != 0)
                goto fail;
        } else if (c < 0x20) {
            dn_sft_syntax(ps, ps->pos, "control character in string");
            goto fail;
        } else if ((k = dn_sft_utf8_len(ps->s + ps->pos, ps->n - ps->pos)) == 0) {
            dn_sft_syntax(ps, ps->pos, "invalid UTF-8 in string");
            goto fail;
        } else {
            memcpy(o, ps->s + ps->pos, k);
            o += k;
            ps->pos += k;
        }
    }
    ps->pos++;
    *o = '\0';
    *out = buf;
    return 0;
fail:
    free(buf);
    return -1;
}

/* Parses a JSON integer that must be non-negative (what names it in
 * messages). Fractions, exponents and values above 2^64-1 are rejected. */
static int dn_sft_uint(dn_sft_parser *ps, uint64_t *out, const char *what) {
    int c = dn_sft_peek(ps);
    size_t at = ps->pos;
    char msg[96];
    if (c == '-') {
        snprintf(msg, sizeof msg, "%s must be a non-negative integer", what);
        return dn_sft_syntax(ps, at, msg);
    }
    if (c < '0' || c > '9') {
        snprintf(msg, sizeof msg, "expected an integer (%s)", what);
        return dn_sft_syntax(ps, at, msg);
    }
    uint64_t v = 0;
    while (ps->pos < ps->n && ps->s[ps->pos] >= '0' && ps->s[ps->pos] <= '9') {
        unsigned d = ps->s[ps->pos] - '0';
        if (v > (UINT64_MAX - d) / 10)
            return dn_sft_syntax(ps, at, "integer too large");
        v = v * 10 + d;
        ps->pos++;
    }
    if (ps->pos - at > 1 && ps->s[at] == '0')
        return dn_sft_syntax(ps, at, "leading zero in integer");
    if (ps->pos < ps->n &&
        (ps->s[ps->pos] == '.' || ps->s[ps->pos] == 'e' || ps->s[ps->pos] == 'E'))
        return dn_sft_syntax(ps, at, "only integers are allowed");
    *out = v;
    return 0;
}

/* Parses an array of up to max non-negative integers. */
static int dn_sft_uint_array(dn_sft_parser *ps, uint64_t *vals, int max, int *count, const char *what) {
    *count = 0;
    if (dn_sft_expect(ps, '[') != 0)
        return -1;
    if (dn_sft_open_empty(ps, ']'))
        return 0;
    for (;;) {
        if (*count == max) {
            char msg[96];
            snprintf(msg, sizeof msg, "%s has more than %d entries", what, max);
            return dn_sft_syntax(ps, ps->pos, msg);
        }
        if (dn_sft_uint(ps, &vals[(*count)++], what) != 0)
            return -1;
        int r = dn_sft_next_member(ps, ']');
        if (r != 0)
            return r < 0 ? -1 : 0;
    }
}

/* The dtype table entry for name, or NULL. */
static const dn_sft_dtype *dn_sft_find_dtype(const char *name) {
    for (size_t i = 0; i < sizeof dn_sft_dtypes / sizeof dn_sft_dtypes[0]; i++)
        if (!strcmp(dn_sft_dtypes[i].name, name))
            return &dn_sft_dtypes[i];
    return NULL;
}

/* Formats "[a, b, c]" into buf. */
static void dn_sft_fmt_dims(char *buf, size_t cap, const uint64_t *d, int n) {
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%llu", i ? ", " : "",
                                (unsigned long long)d[i]);
    if (len < cap)
        snprintf(buf + len, cap - len, "]");
}

/* Checks one tensor's shape against its offsets and the data area, then
 * fills e->info's data pointer and size. */
static int dn_sft_check_tensor(dn_sft_parser *ps, dn_sft_entry *e, const dn_sft_dtype *dt,
                            const uint64_t *shape, const uint64_t *offs) {
    uint64_t bytes = dt->size;
    int overflow = 0;
    for (int d = 0; d < e->info.ndim; d++) {
        if (shape[d] > INT64_MAX)
            overflow = 1;
        else if (shape[d] != 0 && bytes > UINT64_MAX / shape[d])
            overflow = 1;
        else
            bytes *= shape[d];
    }
    char dims[200];
    dn_sft_fmt_dims(dims, sizeof dims, shape, e->info.ndim);
    if (offs[1] < offs[0] || overflow || offs[1] - offs[0] != bytes) {
        char size[48];
        if (overflow)
            snprintf(size, sizeof size, "size overflows");
        else
            snprintf(size, sizeof size, "%llu bytes", (unsigned long long)bytes);
        dn_errf(ps->err,
                 "%s: tensor '%s': data_offsets [%llu, %llu] do not match shape %s of %s (%s)",
                 ps->path, e->info.name, (unsigned long long)offs[0], (unsigned long long)offs[1],
                 dims, dt->name, size);
        return -1;
    }
    if (offs[1] > ps->data_size) {
        dn_errf(ps->err,
                 "%s: tensor '%s': data_offsets [%llu, %llu] lie outside the data area (%zu bytes)",
                 ps->path, e->info.name, (unsigned long long)offs[0], (unsigned long long)offs[1],
                 ps->data_size);
        return -1;
    }
    for (int d = 0; d < e->info.ndim; d++)
        e->info.shape[d] = (int64_t)shape[d];
    e->info.dtype = dt->name;
    e->begin = offs[0];
    e->end = offs[1];
    e->info.data = ps->data + offs[0];
    e->info.nbytes = (size_t)bytes;
    return 0;
}

/* Parses one tensor's description object {"dtype", "shape", "data_offsets"}
 * (all required, nothing else allowed) into e, whose name is set. */
static int dn_sft_tensor(dn_sft_parser *ps, dn_sft_entry *e) {
    uint64_t shape[dn_sft_max_dims], offs[2];
    int have_shape = 0, n_offs = -1;
    const dn_sft_dtype *dt = NULL;
    size_t obj_at = ps->pos;
    if (dn_sft_peek(ps) != '{') {
        dn_errf(ps->err, "%s: tensor '%s': expected an object at byte %zu", ps->path, e->info.name,
                 ps->pos + 8);
        return -1;
    }
    ps->pos++;
    int done = dn_sft_open_empty(ps, '}');
    while (!done) {
        char *key = NULL, *val = NULL;
        size_t kat, vat;
        int rc = dn_sft_string(ps, &key, &kat);
        if (rc == 0)
            rc = dn_sft_expect(ps, ':');
        if (rc == 0 && !strcmp(key, "dtype") && !dt) {
            rc = dn_sft_string(ps, &val, &vat);
            if (rc == 0 && !(dt = dn_sft_find_dtype(val))) {
                dn_errf(ps->err, "%s: tensor '%s': unknown dtype \"%s\" at byte %zu", ps->path,
                         e->info.name, val, vat + 8);
                rc = -1;
            }
        } else if (rc == 0 && !strcmp(key, "shape") && !have_shape) {
            rc = dn_sft_uint_array(ps, shape, dn_sft_max_dims, &e->info.ndim, "shape");
            have_shape = 1;
        } else if (rc == 0 && !strcmp(key, "data_offsets") && n_offs < 0) {
            rc = dn_sft_uint_array(ps, offs, 2, &n_offs, "data_offsets");
        } else if (rc == 0) {
            dn_errf(ps->err, "%s: tensor '%s': unexpected or repeated key \"%s\" at byte %zu",
                     ps->path, e->info.name, key, kat + 8);
            rc = -1;
        }
        free(key);
        free(val);
        if (rc != 0)
            return -1;
        done = dn_sft_next_member(ps, '}');
        if (done < 0)
            return -1;
    }
    if (!dt || !have_shape || n_offs != 2) {
        dn_errf(ps->err, "%s: tensor '%s' at byte %zu: %s", ps->path, e->info.name, obj_at + 8,
                 !dt           ? "missing \"dtype\""
                 : !have_shape ? "missing \"shape\""
                 : n_offs < 0  ? "missing \"data_offsets\""
                               : "data_offsets must have 2 entries");
        return -1;
    }
    return dn_sft_check_tensor(ps, e, dt, shape, offs);
}

/* Parses the "__metadata__" object (string values only) into f. */
static int dn_sft_metadata(dn_sft_parser *ps, dn_st_file *f) {
    if (dn_sft_expect(ps, '{') != 0)
        return -1;
    int done = dn_sft_open_empty(ps, '}');
    while (!done) {
        if (f->n_meta == f->mcap) {
            int ncap = f->mcap ? 2 * f->mcap : 8;
            char **k = realloc(f->mkey, (size_t)ncap * sizeof *k);
            if (k)
                f->mkey = k;
            char **v = realloc(f->mval, (size_t)ncap * sizeof *v);
            if (v)
                f->mval = v;
            size_t *o = realloc(f->moff, (size_t)ncap * sizeof *o);
            if (o)
                f->moff = o;
            if (!k || !v || !o) {
                dn_errf(ps->err, "%s: out of memory", ps->path);
                return -1;
            }
            f->mcap = ncap;
        }
        int i = f->n_meta;
        size_t vat;
        f->mkey[i] = f->mval[i] = NULL;
        if (dn_sft_string(ps, &f->mkey[i], &f->moff[i]) != 0)
            return -1;
        f->n_meta++;
        if (dn_sft_expect(ps, ':') != 0)
            return -1;
        if (dn_sft_peek(ps) != '"') {
            dn_errf(ps->err, "%s: __metadata__ value for '%s' at byte %zu must be a string",
                     ps->path, f->mkey[i], ps->pos + 8);
            return -1;
        }
        if (dn_sft_string(ps, &f->mval[i], &vat) != 0)
            return -1;
        done = dn_sft_next_member(ps, '}');
        if (done < 0)
            return -1;
    }
    return 0;
}

/* Appends a zeroed entry to f->t; returns it or NULL when out of memory. */
static dn_sft_entry *dn_sft_new_entry(dn_st_file *f) {
    if (f->n == f->cap) {
        int ncap = f->cap ? 2 * f->cap : 16;
        dn_sft_entry *nt = realloc(f->t, (size_t)ncap * sizeof *nt);
        if (!nt)
            return NULL;
        f->t = nt;
        f->cap = ncap;
    }
    dn_sft_entry *e = &f->t[f->n++];
    memset(e, 0, sizeof *e);
    return e;
}

/* Parses the whole header object into f. */
static int dn_sft_header(dn_sft_parser *ps, dn_st_file *f) {
    int seen_meta = 0;
    if (dn_sft_expect(ps, '{') != 0)
        return -1;
    int done = dn_sft_open_empty(ps, '}');
    while (!done) {
        char *key;
        size_t kat;
        if (dn_sft_string(ps, &key, &kat) != 0)
            return -1;
        if (!strcmp(key, "__metadata__")) {
            free(key);
            if (seen_meta++)
                return dn_sft_syntax(ps, kat, "repeated \"__metadata__\"");
            if (dn_sft_expect(ps, ':') != 0 || dn_sft_metadata(ps, f) != 0)
                return -1;
        } else {
            dn_sft_entry *e = dn_sft_new_entry(f);
            if (!e) {
                free(key);
                dn_errf(ps->err, "%s: out of memory", ps->path);
                return -1;
            }
            e->info.name = key;
            e->off = kat;
            if (dn_sft_expect(ps, ':') != 0 || dn_sft_tensor(ps, e) != 0)
                return -1;
        }
        done = dn_sft_next_member(ps, '}');
        if (done < 0)
            return -1;
    }
    if (dn_sft_peek(ps) != -1)
        return dn_sft_syntax(ps, ps->pos, "trailing characters after the header object");
    return 0;
}

/* ---- reader: cross-tensor checks ----------------------------------------- */

static int dn_sft_cmp_name(const void *a, const void *b) {
    const dn_sft_entry *x = *(const dn_sft_entry *const *)a, *y = *(const dn_sft_entry *const *)b;
    int c = strcmp(x->info.name, y->info.name);
    return c ? c : (x->off > y->off) - (x->off < y->off);
}

static int dn_sft_cmp_range(const void *a, const void *b) {
    const dn_sft_entry *x = *(const dn_sft_entry *const *)a, *y = *(const dn_sft_entry *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return (x->off > y->off) - (x->off < y->off);
}

/* Rejects duplicate tensor names, duplicate metadata keys and overlapping
 * (non-empty) tensor byte ranges. */
static int dn_sft_cross_check(const char *path, dn_st_file *f, char *err) {
    for (int i = 0; i < f->n_meta; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(f->mkey[i], f->mkey[j])) {
                dn_errf(err, "%s: duplicate __metadata__ key '%s' at byte %zu", path, f->mkey[i],
                         f->moff[i] + 8);
                return -1;
            }
    if (f->n < 2)
        return 0;
    const dn_sft_entry **s = malloc((size_t)f->n * sizeof *s);
    if (!s) {
        dn_errf(err, "%s: out of memory", path);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < f->n; i++)
        s[i] = &f->t[i];
    qsort(s, (size_t)f->n, sizeof *s, dn_sft_cmp_name);
    for (int i = 1; i < f->n && rc == 0; i++)
        if (!strcmp(s[i]->info.name, s[i - 1]->info.name)) {
            dn_errf(err, "%s: duplicate tensor name '%s' at byte %zu", path, s[i]->info.name,
                     s[i]->off + 8);
            rc = -1;
        }
    qsort(s, (size_t)f->n, sizeof *s, dn_sft_cmp_range);
    const dn_sft_entry *prev = NULL;
    for (int i = 0; i < f->n && rc == 0; i++) {
        if (s[i]->begin == s[i]->end)
            continue;
        if (prev && s[i]->begin < prev->end) {
            dn_errf(err, "%s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap", path,
                     prev->info.name, (unsigned long long)prev->begin,
                     (unsigned long long)prev->end, s[i]->info.name,
                     (unsigned long long)s[i]->begin, (unsigned long long)s[i]->end);
            rc = -1;
        }
        if (!prev || s[i]->end > prev->end)
            prev = s[i];
    }
    free(s);
    return rc;
}

/* ---- reader: file loading -------------------------------------------------- */

/* Reads the file: checks the header length against the file size and the
 * limit before allocating, and places the image so the data area is 64-byte
 * aligned. Sets *hdr (JSON text), *hlen, *data, *data_size. */
static int dn_sft_read_file(const char *path, dn_st_file *f, const unsigned char **hdr, size_t *hlen,
                         const unsigned char **data, size_t *data_size, char *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        dn_errf(err, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    int rc = -1;
    unsigned char len8[8];
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        dn_errf(err, "%s: not a regular file", path);
        goto done;
    }
    if ((uint64_t)sb.st_size > SIZE_MAX - 64) {
        dn_errf(err, "%s: file too large", path);
        goto done;
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8 || fread(len8, 1, 8, fp) != 8) {
        dn_errf(err, "%s: file is %zu bytes, too short for the 8-byte header length", path, size);
        goto done;
    }
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--)
        n = n << 8 | len8[k];
    if (n > dn_sft_max_header || n > (uint64_t)size - 8) {
        dn_errf(err, "%s: header length %llu exceeds %s (%llu bytes)", path, (unsigned long long)n,
                 n > dn_sft_max_header ? "the limit" : "the file's remaining size",
                 n > dn_sft_max_header ? (unsigned long long)dn_sft_max_header
                                    : (unsigned long long)size - 8);
        goto done;
    }
    size_t rest = size - 8;
    f->mem = malloc(rest + 64);
    if (!f->mem) {
        dn_errf(err, "%s: out of memory for %zu bytes", path, rest);
        goto done;
    }
    size_t pad = (64 - ((uintptr_t)f->mem + (size_t)n) % 64) % 64;
    unsigned char *img = f->mem + pad;
    if (fread(img, 1, rest, fp) != rest || getc(fp) != EOF) {
        dn_errf(err, "%s: read error or file changed while reading%s%s", path,
                 ferror(fp) ? ": " : "", ferror(fp) ? strerror(errno) : "");
        goto done;
    }
    *hdr = img;
    *hlen = (size_t)n;
    *data = img + n;
    *data_size = rest - (size_t)n;
    rc = 0;
done:
    fclose(fp);
    return rc;
}

int dn_st_open(const char *path, dn_st_file **out, char *err) {
    *out = NULL;
    dn_st_file *f = calloc(1, sizeof *f);
    if (!f) {
        dn_errf(err, "%s: out of memory", path);
        return -1;
    }
    dn_sft_parser ps = {0};
    ps.path = path;
    ps.err = err;
    int rc = dn_sft_read_file(path, f, &ps.s, &ps.n, &ps.data, &ps.data_size, err);
    if (rc == 0)
        rc = dn_sft_header(&ps, f);
    if (rc == 0)
        rc = dn_sft_cross_check(path, f, err);
    if (rc != 0) {
        dn_st_close(f);
        return -1;
    }
    *out = f;
    return 0;
}

void dn_st_close(dn_st_file *f) {
    if (!f)
        return;
    for (int i = 0; i < f->n; i++)
        free((char *)f->t[i].info.name);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->mkey[i]);
        free(f->mval[i]);
    }
    free(f->t);
    free(f->mkey);
    free(f->mval);
    free(f->moff);
    free(f->mem);
    free(f);
}

int dn_st_count(const dn_st_file *f) { return f ? f->n : 0; }

const dn_st_info *dn_st_get(const dn_st_file *f, int i) {
    return f && i >= 0 && i < f->n ? &f->t[i].info : NULL;
}

const dn_st_info *dn_st_find(const dn_st_file *f, const char *name) {
    for (int i = 0; f && i < f->n; i++)
        if (!strcmp(f->t[i].info.name, name))
            return &f->t[i].info;
    return NULL;
}

const char *dn_st_meta_get(const dn_st_file *f, const char *key) {
    for (int i = 0; f && i < f->n_meta; i++)
        if (!strcmp(f->mkey[i], key))
            return f->mval[i];
    return NULL;
}
