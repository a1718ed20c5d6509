/* dn_npy.c - NumPy .npy arrays as datasets: the header's dict parsed
 * strictly (descr, fortran_order, shape; nothing else), the data's length
 * checked against the shape before anything is allocated, and the features
 * mapped into memory, not copied, when they are little-endian float32.
 *
 * The format (numpy.lib.format): the magic "\x93NUMPY", a major and a minor
 * version byte, the header's length (2 bytes little-endian in version 1, 4
 * in versions 2 and 3), the header (a Python dict literal, padded with
 * spaces, ending in a newline), then the elements in C order. */
#include "dn_runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define DN_NPY_MAX_HEADER ((size_t)1 << 20)

/* The header text being parsed: p[0..n), which starts at byte `base` of the
 * file named `name`; i the next byte. */
typedef struct {
    const char *name;
    const char *p;
    size_t n, i, base;
    char *err;
} dn_npy_hdr;

/* Writes "NAME: byte N: MESSAGE" about the header's byte i. Returns -1. */
static int dn_npy_fail(const dn_npy_hdr *h, const char *msg) {
    dn_errf(h->err, "%s: byte %zu: %s", h->name, h->base + h->i, msg);
    return -1;
}

static void dn_npy_ws(dn_npy_hdr *h) {
    while (h->i < h->n && (h->p[h->i] == ' ' || h->p[h->i] == '\t' || h->p[h->i] == '\n'))
        h->i++;
}

/* Takes byte ch after blanks. Returns 0, or -1 with the error set. */
static int dn_npy_expect(dn_npy_hdr *h, char ch) {
    char msg[32];
    dn_npy_ws(h);
    if (h->i < h->n && h->p[h->i] == ch) {
        h->i++;
        return 0;
    }
    snprintf(msg, sizeof msg, "expected '%c' in the header", ch);
    return dn_npy_fail(h, msg);
}

/* A quoted string (single or double quotes, no escapes) into s[0..cap).
 * Returns 0, or -1 with the error set. */
static int dn_npy_string(dn_npy_hdr *h, char *s, size_t cap) {
    dn_npy_ws(h);
    if (h->i >= h->n || (h->p[h->i] != '\'' && h->p[h->i] != '"'))
        return dn_npy_fail(h, "expected a quoted string in the header");
    char q = h->p[h->i++];
    size_t k = 0;
    while (h->i < h->n && h->p[h->i] != q) {
        if (k + 1 >= cap || h->p[h->i] == '\\')
            return dn_npy_fail(h, "unsupported string in the header");
        s[k++] = h->p[h->i++];
    }
    if (h->i >= h->n)
        return dn_npy_fail(h, "unterminated string in the header");
    h->i++;
    s[k] = '\0';
    return 0;
}

/* The dtype descr such as '<f4' into a. Returns 0 or -1. */
static int dn_npy_descr(dn_npy_hdr *h, dn_npy *a) {
    char d[16], msg[160];
    dn_npy_ws(h);
    if (h->i < h->n && h->p[h->i] == '[')
        return dn_npy_fail(h, "structured dtypes are not supported");
    size_t at = h->i;
    if (dn_npy_string(h, d, sizeof d) != 0)
        return -1;
    char order = d[0], kind = d[0] ? d[1] : 0;
    long size = kind ? strtol(d + 2, NULL, 10) : 0;
    int ok = (kind == 'f' && (size == 4 || size == 8)) ||
             ((kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8)) ||
             (kind == 'b' && size == 1);
    ok = ok && strspn(d + 2, "0123456789") == strlen(d + 2) && strchr("<>|=", order);
    h->i = at;
    if (!ok) {
        snprintf(msg, sizeof msg, "unsupported dtype '%.8s' (supported: float32, float64, integers, bool)", d);
        return dn_npy_fail(h, msg);
    }
    if (order == '>' && size > 1) {
        snprintf(msg, sizeof msg, "big-endian dtype '%.8s' is not supported (save a.astype('<%c%ld'))",
                 d, kind, size);
        return dn_npy_fail(h, msg);
    }
    a->kind = kind;
    a->size = (int)size;
    return dn_npy_string(h, d, sizeof d);
}

/* A Python bool literal into *v. Returns 0 or -1. */
static int dn_npy_bool(dn_npy_hdr *h, int *v) {
    dn_npy_ws(h);
    if (h->n - h->i >= 4 && memcmp(h->p + h->i, "True", 4) == 0) {
        *v = 1;
        h->i += 4;
    } else if (h->n - h->i >= 5 && memcmp(h->p + h->i, "False", 5) == 0) {
        *v = 0;
        h->i += 5;
    } else {
        return dn_npy_fail(h, "expected True or False in the header");
    }
    return 0;
}

/* One dimension: decimal digits, at most 2^62. Returns 0 or -1. */
static int dn_npy_dim(dn_npy_hdr *h, uint64_t *v) {
    size_t s = h->i;
    *v = 0;
    for (; h->i < h->n && h->p[h->i] >= '0' && h->p[h->i] <= '9'; h->i++) {
        *v = *v * 10 + (uint64_t)(h->p[h->i] - '0');
        if (*v > ((uint64_t)1 << 62))
            return dn_npy_fail(h, "a dimension is too large");
    }
    return h->i > s ? 0 : dn_npy_fail(h, "expected a dimension in the shape");
}

/* The shape tuple into a (ndim, shape, count). Returns 0 or -1. */
static int dn_npy_shape(dn_npy_hdr *h, dn_npy *a) {
    if (dn_npy_expect(h, '(') != 0)
        return -1;
    a->ndim = 0;
    a->count = 1;
    for (;;) {
        dn_npy_ws(h);
        if (h->i < h->n && h->p[h->i] == ')')
            break;
        if (a->ndim == 8)
            return dn_npy_fail(h, "more than 8 dimensions");
        uint64_t v;
        if (dn_npy_dim(h, &v) != 0)
            return -1;
        if (v && a->count > UINT64_MAX / v)
            return dn_npy_fail(h, "the shape's element count overflows");
        a->shape[a->ndim++] = v;
        a->count *= v;
        dn_npy_ws(h);
        if (h->i < h->n && h->p[h->i] == ',')
            h->i++;
        else if (h->i >= h->n || h->p[h->i] != ')')
            return dn_npy_fail(h, "expected ',' or ')' in the shape");
    }
    h->i++;
    return 0;
}

/* The header dict into a. Returns 0 or -1 with the error set. */
static int dn_npy_dict(dn_npy_hdr *h, dn_npy *a) {
    int seen = 0, fortran = 0;
    if (dn_npy_expect(h, '{') != 0)
        return -1;
    for (;;) {
        char key[16];
        dn_npy_ws(h);
        if (h->i < h->n && h->p[h->i] == '}')
            break;
        size_t at = h->i;
        if (dn_npy_string(h, key, sizeof key) != 0 || dn_npy_expect(h, ':') != 0)
            return -1;
        int bit = !strcmp(key, "descr") ? 1 : !strcmp(key, "fortran_order") ? 2 : !strcmp(key, "shape") ? 4 : 0;
        if (bit == 0 || (seen & bit)) {
            h->i = at;
            return dn_npy_fail(h, bit ? "a key appears twice in the header" : "unknown key in the header");
        }
        seen |= bit;
        int rc = bit == 1 ? dn_npy_descr(h, a) : bit == 2 ? dn_npy_bool(h, &fortran) : dn_npy_shape(h, a);
        if (rc != 0)
            return -1;
        dn_npy_ws(h);
        if (h->i < h->n && h->p[h->i] == ',')
            h->i++;
        else if (h->i >= h->n || h->p[h->i] != '}')
            return dn_npy_fail(h, "expected ',' or '}' in the header");
    }
    h->i++;
    dn_npy_ws(h);
    if (h->i != h->n)
        return dn_npy_fail(h, "unexpected text after the header's dict");
    if (seen != 7)
        return dn_npy_fail(h, "the header lacks descr, fortran_order or shape");
    if (fortran && a->ndim > 1)
        return dn_npy_fail(h, "Fortran-order arrays are not supported (save np.ascontiguousarray(a))");
    return 0;
}

int dn_npy_parse(const char *name, const void *data, size_t len, dn_npy *a, char *err) {
    const unsigned char *b = data;
    memset(a, 0, sizeof *a);
    if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0) {
        dn_errf(err, "%s: byte 0: not a .npy file (no \\x93NUMPY magic)", name);
        return -1;
    }
    if (b[6] < 1 || b[6] > 3) {
        dn_errf(err, "%s: byte 6: unsupported .npy version %u.%u", name, b[6], b[7]);
        return -1;
    }
    size_t start = b[6] == 1 ? 10 : 12;
    size_t hl = b[6] == 1 ? (size_t)b[8] | (size_t)b[9] << 8
                          : len < 12 ? 0 : (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    if (len < start || hl > DN_NPY_MAX_HEADER || hl > len - start) {
        dn_errf(err, "%s: byte 8: header length %zu runs past the end of the file (%zu bytes)", name,
                hl, len);
        return -1;
    }
    dn_npy_hdr h = {name, (const char *)b + start, hl, 0, start, err};
    if (dn_npy_dict(&h, a) != 0)
        return -1;
    a->offset = start + hl;
    size_t have = len - a->offset;
    if (a->count > UINT64_MAX / (uint64_t)a->size || a->count * (uint64_t)a->size != have) {
        dn_errf(err, "%s: byte %zu: the file holds %zu data bytes, the header's shape needs %s%llu",
                name, a->offset, have, a->count > UINT64_MAX / (uint64_t)a->size ? "more than " : "",
                (unsigned long long)(a->count > UINT64_MAX / (uint64_t)a->size ? UINT64_MAX
                                                                                 : a->count * (uint64_t)a->size));
        return -1;
    }
    a->data = b + a->offset;
    return 0;
}

/* ---- elements ---------------------------------------------------------------- */

/* Element i of a as a double (integers exactly up to 2^53). */
static double dn_npy_get(const dn_npy *a, uint64_t i) {
    const unsigned char *p = (const unsigned char *)a->data + i * (uint64_t)a->size;
    union {
        float f;
        double d;
        int8_t i8;
        int16_t i16;
        int32_t i32;
        int64_t i64;
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
    } u;
    memcpy(&u, p, (size_t)a->size);
    switch (a->kind * 16 + a->size) {
    case 'f' * 16 + 4: return u.f;
    case 'f' * 16 + 8: return u.d;
    case 'i' * 16 + 1: return u.i8;
    case 'i' * 16 + 2: return u.i16;
    case 'i' * 16 + 4: return u.i32;
    case 'i' * 16 + 8: return (double)u.i64;
    case 'u' * 16 + 2: return u.u16;
    case 'u' * 16 + 4: return u.u32;
    case 'u' * 16 + 8: return (double)u.u64;
    default: return u.u8; /* u1, b1 */
    }
}

/* The dtype of a in numpy's words, for messages. */
static const char *dn_npy_dtype(const dn_npy *a) {
    static const char *const names[] = {"int8", "int16", "int32", "int64", "uint8", "uint16",
                                        "uint32", "uint64", "float32", "float64", "bool"};
    int lg = a->size == 1 ? 0 : a->size == 2 ? 1 : a->size == 4 ? 2 : 3;
    return a->kind == 'i' ? names[lg] : a->kind == 'u' ? names[4 + lg] : a->kind == 'f' ? names[7 + lg - 1] : names[10];
}

/* Reports element i of a (cols per row), which is not finite. Returns -1. */
static int dn_npy_nonfinite(const char *name, const dn_npy *a, uint64_t i, uint64_t cols, char *err) {
    double v = dn_npy_get(a, i);
    dn_errf(err, "%s: element [%llu, %llu] is %s", name, (unsigned long long)(i / cols),
            (unsigned long long)(i % cols), isnan(v) ? "NaN" : "infinite (or beyond float32)");
    return -1;
}

/* Converts the elements of a (cols per row) into finite floats at dst.
 * Returns 0, or -1 with err naming the first element that is not finite. */
static int dn_npy_floats(const char *name, const dn_npy *a, float *dst, uint64_t cols, char *err) {
    for (uint64_t i = 0; i < a->count; i++) {
        dst[i] = (float)dn_npy_get(a, i);
        if (!isfinite(dst[i]))
            return dn_npy_nonfinite(name, a, i, cols, err);
    }
    return 0;
}

/* Checks that every float32 element of a (cols per row) is finite. */
static int dn_npy_check_f32(const char *name, const dn_npy *a, uint64_t cols, char *err) {
    const float *x = a->data;
    int bad = 0;
    for (uint64_t i = 0; i < a->count; i++)
        bad |= !isfinite(x[i]);
    for (uint64_t i = 0; bad && i < a->count; i++)
        if (!isfinite(x[i]))
            return dn_npy_nonfinite(name, a, i, cols, err);
    return 0;
}

/* ---- files ------------------------------------------------------------------- */

/* Maps file path read-only into *map (*len bytes); an empty file or one
 * that cannot be mapped is read into memory instead (*mapped = 0). */
static int dn_npy_open(const char *path, void **map, size_t *len, int *mapped, char *err) {
    *map = NULL;
    *len = 0;
    *mapped = 0;
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            close(fd);
            *map = p;
            *len = (size_t)st.st_size;
            *mapped = 1;
            return 0;
        }
    }
    if (fd >= 0)
        close(fd);
    char why[DN_ERR_MAX], *data = NULL;
    if (dn_file_read(path, 0, &data, len, why) != 0) {
        dn_errf(err, "%s: %s", path, why);
        return -1;
    }
    *map = data;
    return 0;
}

static void dn_npy_close(void *map, size_t len, int mapped) {
    if (mapped)
        munmap(map, len);
    else
        free(map);
}

/* The features of file x_path into t (n, features, x). Returns 0 or -1. */
static int dn_npy_features(const char *path, dn_table *t, char *err) {
    void *map;
    size_t len;
    int mapped;
    dn_npy a;
    if (dn_npy_open(path, &map, &len, &mapped, err) != 0)
        return -1;
    int rc = dn_npy_parse(path, map, len, &a, err);
    uint64_t cols = a.ndim > 0 && a.shape[0] ? a.count / a.shape[0] : 0;
    if (rc == 0 && (a.ndim < 1 || a.shape[0] == 0 || a.shape[0] >= UINT32_MAX || cols == 0 ||
                    cols >= ((uint64_t)1 << 31) || (a.kind != 'f' && !(a.kind == 'u' && a.size == 1)))) {
        dn_errf(err, "%s: features must be float32, float64 or uint8 of shape [N, ...] with N >= 1, "
                     "got %s of %d dimensions",
                path, dn_npy_dtype(&a), a.ndim);
        rc = -1;
    }
    if (rc == 0) {
        t->n = (uint32_t)a.shape[0];
        t->features = (uint32_t)cols;
        if (mapped && a.kind == 'f' && a.size == 4 && a.offset % sizeof(float) == 0) {
            t->map = map; /* used in place */
            t->map_len = len;
            t->x = (const float *)a.data;
            return dn_npy_check_f32(path, &a, cols, err);
        }
        t->x = t->x_own = malloc(a.count * sizeof *t->x_own);
        if (!t->x_own) {
            dn_errf(err, "%s: out of memory", path);
            rc = -1;
        }
        rc = rc == 0 ? dn_npy_floats(path, &a, t->x_own, cols, err) : rc;
    }
    dn_npy_close(map, len, mapped);
    return rc;
}

/* Class labels from a: integers (or bools) of shape [n] or [n, 1], each in
 * 0..DN_TABLE_MAX_CLASSES-1, into t->y and t->n_classes. Returns 0 or -1. */
static int dn_npy_labels(const char *path, const dn_npy *a, dn_table *t, char *err) {
    if (a->kind == 'f') {
        dn_errf(err, "%s: class labels must be integers, got %s (real-valued targets need loss mse)",
                path, dn_npy_dtype(a));
        return -1;
    }
    if (a->count != t->n || !(a->ndim == 1 || (a->ndim == 2 && a->shape[1] == 1))) {
        dn_errf(err, "%s: labels must have shape [%u] (one per feature row), got %d dimensions, %llu elements",
                path, t->n, a->ndim, (unsigned long long)a->count);
        return -1;
    }
    if (!(t->y = malloc((size_t)t->n * sizeof *t->y))) {
        dn_errf(err, "%s: out of memory", path);
        return -1;
    }
    for (uint32_t r = 0; r < t->n; r++) {
        double v = dn_npy_get(a, r);
        if (!(v >= 0 && v < DN_TABLE_MAX_CLASSES)) {
            dn_errf(err, "%s: label %.0f at index %u is out of the range 0..%d", path, v, r,
                    DN_TABLE_MAX_CLASSES - 1);
            return -1;
        }
        t->y[r] = (int32_t)v;
        t->n_classes = t->y[r] >= t->n_classes ? t->y[r] + 1 : t->n_classes;
    }
    return 0;
}

/* Real-valued targets from a: numbers of shape [n] or [n, k], into t->t and
 * t->targets. Returns 0 or -1. */
static int dn_npy_targets(const char *path, const dn_npy *a, dn_table *t, char *err) {
    uint64_t k = a->ndim == 2 ? a->shape[1] : 1;
    if (a->ndim < 1 || a->ndim > 2 || a->shape[0] != t->n || k == 0 || k >= ((uint64_t)1 << 24)) {
        dn_errf(err, "%s: targets must have shape [%u] or [%u, k], got %d dimensions, %llu elements",
                path, t->n, t->n, a->ndim, (unsigned long long)a->count);
        return -1;
    }
    t->targets = (uint32_t)k;
    if (!(t->t = malloc(a->count * sizeof *t->t))) {
        dn_errf(err, "%s: out of memory", path);
        return -1;
    }
    return dn_npy_floats(path, a, t->t, k, err);
}

/* The targets of file y_path into t, which holds the features. */
static int dn_npy_y(const char *path, int kind, dn_table *t, char *err) {
    void *map;
    size_t len;
    int mapped;
    dn_npy a;
    if (dn_npy_open(path, &map, &len, &mapped, err) != 0)
        return -1;
    int rc = dn_npy_parse(path, map, len, &a, err);
    if (rc == 0)
        rc = kind == DN_TARGET_CLASS ? dn_npy_labels(path, &a, t, err) : dn_npy_targets(path, &a, t, err);
    dn_npy_close(map, len, mapped);
    return rc;
}

int dn_npy_table_load(const char *x_path, const char *y_path, int kind, dn_table *t, char *err) {
    memset(t, 0, sizeof *t);
    if (dn_npy_features(x_path, t, err) == 0 && dn_npy_y(y_path, kind, t, err) == 0)
        return 0;
    dn_table_free(t);
    return -1;
}
