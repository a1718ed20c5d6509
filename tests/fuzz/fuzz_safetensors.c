/* fuzz_safetensors.c - libFuzzer harness for the safetensors reader (dn_st_open).
 *
 * Build and run (from the source root; tests/fuzz/run.sh does this):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L \
 *     -Iruntime tests/fuzz/fuzz_safetensors.c runtime/dn_safetensors.c runtime/dn_io.c \
 *     -o /tmp/fuzz_safetensors
 *   /tmp/fuzz_safetensors -max_total_time=60 -dict=tests/fuzz/safetensors.dict CORPUS_COPY
 *
 * dn_st_open only reads files, so each input is written to a scratch file
 * (created once with mkstemp in $TMPDIR, or /tmp, and rewritten per input).
 * On success the harness re-reads the accepted JSON header itself (a small
 * scanner for the subset the reader accepts) and checks, for every tensor
 * in file order: name, dtype and shape as written; nbytes = product(shape)
 * * dtype size = end - begin of data_offsets; offsets within the data area;
 * data pointing at exactly those bytes of the file (every byte is read and
 * compared); dn_st_find finds it; and that every __metadata__ key is found
 * by dn_st_meta_get. On failure err must be one non-empty line and the
 * handle NULL. Violations abort(). */
#include "dn_runtime.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FST_CHECK(cond)                                                                       \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz_safetensors: invariant failed: %s (%s:%d)\n", #cond,        \
                    __FILE__, __LINE__);                                                      \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

static char fst_path[4096];
static int fst_fd = -1; /* the scratch file, open for writing */

/* Reports a finding that is not a simple condition. */
_Noreturn static void fst_fail(const char *what) {
    fprintf(stderr, "fuzz_safetensors: %s\n", what);
    abort();
}

/* Removes the scratch file at exit. */
static void fst_cleanup(void) {
    if (fst_fd >= 0)
        close(fst_fd);
    if (fst_path[0])
        unlink(fst_path);
}

/* Creates the scratch file on first use. Returns 0 or -1. */
static int fst_init(void) {
    if (fst_path[0])
        return 0;
    const char *dir = getenv("TMPDIR");
    if (!dir || !dir[0])
        dir = "/tmp";
    snprintf(fst_path, sizeof fst_path, "%s/fuzz_safetensors_XXXXXX", dir);
    int fd = mkstemp(fst_path);
    if (fd < 0) {
        perror(fst_path);
        fst_path[0] = '\0';
        return -1;
    }
    fst_fd = fd;
    atexit(fst_cleanup);
    return 0;
}

/* ---- an independent scanner for accepted headers -------------------------
 * Only has to understand what the reader accepted; anything unexpected is a
 * finding (the reader accepted something that is not a valid header). */

typedef struct {
    const unsigned char *s;
    size_t n, pos;
} fst_scan;

static void fst_ws(fst_scan *sc) {
    while (sc->pos < sc->n && (sc->s[sc->pos] == ' ' || sc->s[sc->pos] == '\t' ||
                               sc->s[sc->pos] == '\n' || sc->s[sc->pos] == '\r'))
        sc->pos++;
}

/* Consumes c after whitespace. */
static void fst_eat(fst_scan *sc, char c) {
    fst_ws(sc);
    FST_CHECK(sc->pos < sc->n && sc->s[sc->pos] == (unsigned char)c);
    sc->pos++;
}

/* After whitespace: consumes c and returns 1 if it is next, else 0. */
static int fst_try(fst_scan *sc, char c) {
    fst_ws(sc);
    if (sc->pos < sc->n && sc->s[sc->pos] == (unsigned char)c) {
        sc->pos++;
        return 1;
    }
    return 0;
}

static unsigned fst_hex4(fst_scan *sc) {
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        FST_CHECK(sc->pos < sc->n);
        unsigned c = sc->s[sc->pos++], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            d = 16;
        if (d == 16)
            fst_fail("accepted header has a bad \\u escape");
        v = v << 4 | d;
    }
    return v;
}

/* Appends code point cp as UTF-8. */
static void fst_put_utf8(char **o, unsigned cp) {
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
}

/* Decodes a JSON string into a malloc'd NUL-terminated copy. */
static char *fst_string(fst_scan *sc) {
    fst_eat(sc, '"');
    char *buf = malloc(sc->n - sc->pos + 1), *o = buf; /* decoding never grows */
    FST_CHECK(buf != NULL);
    for (;;) {
        FST_CHECK(sc->pos < sc->n);
        unsigned char c = sc->s[sc->pos++];
        if (c == '"')
            break;
        if (c != '\\') {
            FST_CHECK(c >= 0x20);
            *o++ = (char)c;
            continue;
        }
        FST_CHECK(sc->pos < sc->n);
        c = sc->s[sc->pos++];
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *hit = c ? strchr(from, c) : NULL;
        if (hit) {
            *o++ = to[hit - from];
        } else {
            FST_CHECK(c == 'u');
            unsigned cp = fst_hex4(sc);
            if (cp >= 0xd800 && cp <= 0xdbff) {
                /* The low surrogate's escape must follow at once. */
                FST_CHECK(sc->pos + 1 < sc->n && sc->s[sc->pos] == '\\' &&
                          sc->s[sc->pos + 1] == 'u');
                sc->pos += 2;
                unsigned lo = fst_hex4(sc);
                FST_CHECK(lo >= 0xdc00 && lo <= 0xdfff);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            FST_CHECK(cp != 0 && !(cp >= 0xdc00 && cp <= 0xdfff));
            fst_put_utf8(&o, cp);
        }
    }
    *o = '\0';
    return buf;
}

/* A non-negative JSON integer. */
static uint64_t fst_uint(fst_scan *sc) {
    fst_ws(sc);
    FST_CHECK(sc->pos < sc->n && sc->s[sc->pos] >= '0' && sc->s[sc->pos] <= '9');
    uint64_t v = 0;
    while (sc->pos < sc->n && sc->s[sc->pos] >= '0' && sc->s[sc->pos] <= '9') {
        unsigned d = sc->s[sc->pos++] - '0';
        FST_CHECK(v <= (UINT64_MAX - d) / 10);
        v = v * 10 + d;
    }
    return v;
}

/* [a, b, ...] of at most max entries; returns the count. */
static int fst_uint_array(fst_scan *sc, uint64_t *v, int max) {
    int n = 0;
    fst_eat(sc, '[');
    if (fst_try(sc, ']'))
        return 0;
    do {
        FST_CHECK(n < max);
        v[n++] = fst_uint(sc);
    } while (fst_try(sc, ','));
    fst_eat(sc, ']');
    return n;
}

/* One tensor as written in the header. */
typedef struct {
    char *name, *dtype;
    uint64_t shape[8], offs[2];
    int ndim;
} fst_tensor;

static void fst_tensor_desc(fst_scan *sc, fst_tensor *t) {
    int n_offs = -1;
    fst_eat(sc, '{');
    if (fst_try(sc, '}'))
        fst_fail("accepted an empty tensor object");
    do {
        char *key = fst_string(sc);
        fst_eat(sc, ':');
        if (!strcmp(key, "dtype")) {
            FST_CHECK(t->dtype == NULL);
            t->dtype = fst_string(sc);
        } else if (!strcmp(key, "shape")) {
            FST_CHECK(t->ndim < 0);
            t->ndim = fst_uint_array(sc, t->shape, 8);
        } else {
            FST_CHECK(!strcmp(key, "data_offsets") && n_offs < 0);
            n_offs = fst_uint_array(sc, t->offs, 2);
        }
        free(key);
    } while (fst_try(sc, ','));
    fst_eat(sc, '}');
    FST_CHECK(t->dtype != NULL && t->ndim >= 0 && n_offs == 2);
}

/* Size in bytes of one element of dtype, 0 if unknown. */
static size_t fst_dtype_size(const char *dtype) {
    static const struct {
        const char *name;
        size_t size;
    } tab[] = {{"F64", 8}, {"F32", 4}, {"F16", 2},  {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
               {"I8", 1},  {"U8", 1},  {"BOOL", 1}, {"U64", 8},  {"U32", 4}, {"U16", 2}};
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (!strcmp(tab[i].name, dtype))
            return tab[i].size;
    return 0;
}

/* Checks one tensor of an opened file against its description and the file
 * bytes (data area = area[0..area_size)). */
static void fst_check_tensor(const dn_st_file *f, const dn_st_info *info, const fst_tensor *t,
                             const uint8_t *area, size_t area_size) {
    FST_CHECK(info != NULL && info->name != NULL && info->dtype != NULL);
    FST_CHECK(!strcmp(info->name, t->name) && strcmp(info->name, "__metadata__") != 0);
    FST_CHECK(!strcmp(info->dtype, t->dtype));
    size_t esize = fst_dtype_size(info->dtype);
    FST_CHECK(esize != 0);
    FST_CHECK(info->ndim == t->ndim && info->ndim >= 0 && info->ndim <= 8);
    uint64_t bytes = esize;
    int zero = 0;
    for (int d = 0; d < info->ndim; d++) {
        FST_CHECK(info->shape[d] >= 0 && (uint64_t)info->shape[d] == t->shape[d]);
        zero |= info->shape[d] == 0;
    }
    for (int d = 0; d < info->ndim && !zero; d++) {
        FST_CHECK(bytes <= area_size / (uint64_t)info->shape[d]);
        bytes *= (uint64_t)info->shape[d];
    }
    if (zero)
        bytes = 0;
    FST_CHECK(info->nbytes == bytes);
    FST_CHECK(t->offs[0] <= t->offs[1] && t->offs[1] <= area_size);
    FST_CHECK(t->offs[1] - t->offs[0] == bytes);
    FST_CHECK(bytes == 0 || info->data != NULL);
    /* Every byte is read, and must be the file's bytes at the offsets. */
    if (bytes)
        FST_CHECK(memcmp(info->data, area + t->offs[0], bytes) == 0);
    FST_CHECK(dn_st_find(f, info->name) == info);
}

/* Re-reads the header of an accepted file and checks the reader's view. */
static void fst_check_file(const dn_st_file *f, const uint8_t *data, size_t size) {
    FST_CHECK(size >= 8);
    uint64_t hlen = 0;
    for (int k = 7; k >= 0; k--)
        hlen = hlen << 8 | data[k];
    FST_CHECK(hlen <= size - 8);
    fst_scan sc = {data + 8, (size_t)hlen, 0};
    const uint8_t *area = data + 8 + hlen;
    size_t area_size = size - 8 - (size_t)hlen;
    int n = dn_st_count(f), seen = 0, seen_meta = 0;
    FST_CHECK(n >= 0);
    FST_CHECK(dn_st_get(f, -1) == NULL && dn_st_get(f, n) == NULL);

    fst_eat(&sc, '{');
    if (!fst_try(&sc, '}')) {
        do {
            char *key = fst_string(&sc);
            fst_eat(&sc, ':');
            if (!strcmp(key, "__metadata__")) {
                FST_CHECK(!seen_meta++);
                fst_eat(&sc, '{');
                if (!fst_try(&sc, '}')) {
                    do {
                        char *mk = fst_string(&sc);
                        fst_eat(&sc, ':');
                        char *mv = fst_string(&sc);
                        const char *got = dn_st_meta_get(f, mk);
                        FST_CHECK(got != NULL);
                        /* Keys are unique in an accepted file, so the value is this one. */
                        FST_CHECK(!strcmp(got, mv));
                        free(mk);
                        free(mv);
                    } while (fst_try(&sc, ','));
                    fst_eat(&sc, '}');
                }
                free(key);
            } else {
                fst_tensor t;
                memset(&t, 0, sizeof t);
                t.ndim = -1;
                t.name = key;
                fst_tensor_desc(&sc, &t);
                FST_CHECK(seen < n);
                fst_check_tensor(f, dn_st_get(f, seen), &t, area, area_size);
                seen++;
                free(t.name);
                free(t.dtype);
            }
        } while (fst_try(&sc, ','));
        fst_eat(&sc, '}');
    }
    fst_ws(&sc);
    FST_CHECK(sc.pos == sc.n);
    FST_CHECK(seen == n);
    FST_CHECK(dn_st_find(f, "__metadata__") == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fst_init() != 0)
        abort();
    /* Written in place, then cut to length (truncating to zero first would
     * make some file systems flush on every close, which is slow). */
    for (size_t done = 0; done < size;) {
        ssize_t n = pwrite(fst_fd, data + done, size - done, (off_t)done);
        FST_CHECK(n > 0);
        done += (size_t)n;
    }
    FST_CHECK(ftruncate(fst_fd, (off_t)size) == 0);

    static char sentinel;
    dn_st_file *f = (dn_st_file *)(void *)&sentinel; /* dn_st_open must overwrite it */
    char err[DN_ERR_MAX];
    memset(err, 0, sizeof err);
    int rc = dn_st_open(fst_path, &f, err);
    FST_CHECK(rc == 0 || rc == -1);
    if (rc == 0) {
        FST_CHECK(f != NULL);
        fst_check_file(f, data, size);
        dn_st_close(f);
    } else {
        FST_CHECK(f == NULL);
        FST_CHECK(memchr(err, '\0', sizeof err) != NULL);
        FST_CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
        FST_CHECK(strstr(err, fst_path) != NULL);
    }
    return 0;
}
