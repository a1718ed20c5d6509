/* test_util.c - see test_util.h. */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

#include <check.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

int tu_run(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        pclose(p);
        return -1;
    }
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
    }
    buf[len] = '\0';
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    if (st == -1) return -1;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

int tu_runf(char **out, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd) return -1;
    return tu_run(cmd, out);
}

const char *tu_dir(const char *name) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", DNGEN_TEST_TMP, name);
    char *out = NULL;
    tu_runf(&out, "rm -rf '%s' && mkdir -p '%s'", path, path);
    free(out);
    return path;
}

void tu_write(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "tu_write: cannot write %s\n", path);
        abort();
    }
}

char *tu_read(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

/* Compile flags shared by trainers and probes: this CPU's one copy of the
 * kernels (-march=native -DDN_NO_DISPATCH), a third of the compile time of
 * the portable build with its three copies. check_cpu shows that this
 * build gives the dispatched AVX-512 and AVX2 copies' bits; the suites
 * that build as README does (check_cli, check_e2e, check_cpu, ...) compile
 * the portable program. */
static const char *base_cflags(void) {
    return "-std=c11 -O2 -march=native -DDN_NO_DISPATCH -fopenmp -Wall -Wextra -Werror -I" DNGEN_SOURCE_DIR "/runtime "
           DNGEN_SANITIZE_FLAGS;
}

int tu_build_trainer(const char *spec, const char *dir, const char *name, const char *opts,
                     const char *cflags) {
    char *out = NULL;
    int st = tu_runf(&out, "'%s' '%s' %s -o '%s/%s.c'", DNGEN_EXE, spec, opts ? opts : "", dir, name);
    if (st != 0) {
        fprintf(stderr, "dngen failed (%d):\n%s\n", st, out);
        free(out);
        return -1;
    }
    free(out);
    int standalone = opts && strstr(opts, "--standalone");
    st = tu_runf(&out, "'%s' %s %s '%s/%s.c' -o '%s/%s' %s -lz -lm", DNGEN_CC, base_cflags(), cflags ? cflags : "",
                 dir, name, dir, name, standalone ? "" : DNGEN_RUNTIME_LIB);
    if (st != 0) fprintf(stderr, "compiling %s/%s.c failed (%d):\n%s\n", dir, name, st, out);
    free(out);
    return st == 0 ? 0 : -1;
}

int tu_build_probe(const char *dir, const char *name, const char *model_symbol) {
    char *out = NULL;
    int st = tu_runf(&out,
                     "'%s' %s -DDN_PROBE_SOURCE='\"%s/%s.c\"' -DDN_PROBE_MODEL=%s '%s/tests/probe.c' -o '%s/%s_probe' %s "
                     "-lz -lm",
                     DNGEN_CC, base_cflags(), dir, name, model_symbol, DNGEN_SOURCE_DIR, dir, name, DNGEN_RUNTIME_LIB);
    if (st != 0) fprintf(stderr, "compiling the probe for %s failed (%d):\n%s\n", name, st, out);
    free(out);
    return st == 0 ? 0 : -1;
}

/* Writes an IDX file: magic 0 0 8 ndim, big-endian dims, bytes. */
static int write_idx(const char *path, int ndim, const uint32_t *dims, const uint8_t *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint8_t head[4] = {0, 0, 8, (uint8_t)ndim};
    fwrite(head, 1, 4, f);
    for (int i = 0; i < ndim; i++) {
        uint8_t be[4] = {(uint8_t)(dims[i] >> 24), (uint8_t)(dims[i] >> 16), (uint8_t)(dims[i] >> 8), (uint8_t)dims[i]};
        fwrite(be, 1, 4, f);
    }
    fwrite(data, 1, n, f);
    return fclose(f) == 0 ? 0 : -1;
}

int tu_write_synthetic_idx(const char *dir, const char *prefix, int n, int rows, int cols, int classes,
                           unsigned seed) {
    size_t feat = (size_t)rows * (size_t)cols;
    uint8_t *img = malloc((size_t)n * feat), *lab = malloc((size_t)n);
    if (!img || !lab) return -1;
    uint32_t s = seed * 2654435761u + 1;
    for (int i = 0; i < n; i++) {
        int c = i % classes;
        lab[i] = (uint8_t)c;
        for (size_t k = 0; k < feat; k++) {
            s = s * 1664525u + 1013904223u;
            int band = (int)(k * (size_t)classes / feat);
            int v = (int)(s >> 24) / 2 + (band == c ? 110 : 0); /* noise 0..127, +110 in the class band */
            img[(size_t)i * feat + k] = (uint8_t)v;
        }
    }
    char ip[4096], lp[4096];
    snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte", dir, prefix);
    snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte", dir, prefix);
    uint32_t idims[3] = {(uint32_t)n, (uint32_t)rows, (uint32_t)cols}, ldims[1] = {(uint32_t)n};
    int r = write_idx(ip, 3, idims, img, (size_t)n * feat) | write_idx(lp, 1, ldims, lab, (size_t)n);
    free(img);
    free(lab);
    return r;
}

char *tu_expect_run(int want, const char *cmd) {
    char *out = NULL;
    int st = tu_run(cmd, &out);
    if (st != want) fprintf(stderr, "$ %s\n%s\n", cmd, out);
    ck_assert_msg(st == want, "'%s' exited %d, want %d", cmd, st, want);
    return out;
}

int tu_same_files(const char *dir, const char *a, const char *b) {
    char pa[4200], pb[4200];
    size_t la, lb;
    snprintf(pa, sizeof pa, "%s/%s", dir, a);
    snprintf(pb, sizeof pb, "%s/%s", dir, b);
    char *x = tu_read(pa, &la), *y = tu_read(pb, &lb);
    ck_assert_msg(x != NULL, "cannot read %s", pa);
    ck_assert_msg(y != NULL, "cannot read %s", pb);
    int same = la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

double tu_last_test_acc(const char *out) {
    const char *p = out, *q;
    double acc = -1;
    while ((q = strstr(p, "test_acc ")) != NULL) {
        acc = strtod(q + 9, NULL);
        p = q + 9;
    }
    return acc;
}
