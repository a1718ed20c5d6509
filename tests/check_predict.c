/* check_predict.c - the inference CLI (dn_predict_main) on hand-made models.
 *
 * The toy is a linear layer 4 inputs -> 3 outputs with fixed weights and a
 * softmax (or raw outputs for the mse variant). Its "dropout" acts on the
 * inputs when mc != 0: unit k of row r is kept iff
 *   dn_rand_u32(seed, DN_RNG_DROPOUT, r, pass, 1, k) >= dn_dropout_threshold(0.5)
 * and kept units are doubled, so MC passes differ. The model checks that its
 * workspace is 64-byte aligned and that batches stay within the size given
 * to workspace_size, and can trace its calls into a file.
 *
 * Every dn_predict_main call runs in a forked child with stdin, stdout and
 * stderr redirected to files. Expected outputs are computed here from the
 * pixels: normalization, ranking, MC statistics and formatting all done
 * independently of dn_predict.c.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "dn_runtime.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifndef DN_NO_ZLIB
#include <zlib.h>
#endif

/* ---- the toy models ------------------------------------------------------------ */

#define NI 4
#define NO 3
#define NS 6 /* samples in the test files */
#define T_MEAN 0.5f
#define T_STD 0.25f

static const double T_W[NO][NI] = {
    {1.0, -0.5, 0.25, 0.0},
    {-0.75, 1.0, 0.5, -0.25},
    {0.5, 0.25, -1.0, 1.0},
};
static const double T_B[NO] = {0.1, -0.2, 0.05};

static const uint8_t PX[NS][NI] = {
    {0, 0, 0, 0},   {255, 255, 255, 255}, {12, 200, 34, 90},
    {250, 3, 128, 64}, {77, 77, 180, 5},  {10, 20, 0, 250},
};

static FILE *g_trace;  /* child only: model calls are logged here when set */
static int g_ws_rows;  /* child only: the last workspace_size argument */

static size_t t_ws_size(int max_batch) {
    g_ws_rows = max_batch;
    if (g_trace)
        fprintf(g_trace, "ws %d\n", max_batch);
    return (size_t)max_batch * NI * sizeof(float);
}

/* One row of the toy: probabilities (ce) or raw outputs, in double. */
static void ref_row(const float *x, int mc, uint64_t seed, uint32_t row, uint64_t pass, int ce,
                    double *out) {
    double xin[NI], z[NO];
    uint32_t thr = dn_dropout_threshold(0.5);
    for (int k = 0; k < NI; k++) {
        int keep = !mc || dn_rand_u32(seed, DN_RNG_DROPOUT, row, (uint32_t)pass, 1, (uint32_t)k) >= thr;
        xin[k] = keep ? (double)x[k] * (mc ? 2.0 : 1.0) : 0.0;
    }
    double zmax = -INFINITY;
    for (int c = 0; c < NO; c++) {
        z[c] = T_B[c];
        for (int k = 0; k < NI; k++)
            z[c] += T_W[c][k] * xin[k];
        if (z[c] > zmax)
            zmax = z[c];
    }
    if (!ce) {
        for (int c = 0; c < NO; c++)
            out[c] = z[c];
        return;
    }
    double sum = 0;
    for (int c = 0; c < NO; c++)
        sum += exp(z[c] - zmax);
    for (int c = 0; c < NO; c++)
        out[c] = exp(z[c] - zmax) / sum;
}

static void t_predict(int ce, void *ws, const float *x, int n, float *out, int mc, uint64_t seed,
                      uint64_t pass) {
    if (((uintptr_t)ws & 63) != 0 || n < 1 || n > g_ws_rows)
        abort();
    memcpy(ws, x, (size_t)n * NI * sizeof(float)); /* the workspace must be that large */
    if (g_trace)
        fprintf(g_trace, "predict n=%d mc=%d seed=%llu pass=%llu\n", n, mc,
                (unsigned long long)seed, (unsigned long long)pass);
    for (int r = 0; r < n; r++) {
        double o[NO];
        ref_row(x + (size_t)r * NI, mc, seed, (uint32_t)r, pass, ce, o);
        for (int c = 0; c < NO; c++)
            out[(size_t)r * NO + c] = (float)o[c];
    }
}

static void t_predict_ce(void *ws, const float *x, int n, float *out, int mc, uint64_t seed,
                         uint64_t pass) {
    t_predict(1, ws, x, n, out, mc, seed, pass);
}

static void t_predict_mse(void *ws, const float *x, int n, float *out, int mc, uint64_t seed,
                          uint64_t pass) {
    t_predict(0, ws, x, n, out, mc, seed, pass);
}

static const dn_infer_model toy = {"toy", "9.9.9", "0123456789abcdef", "fedcba9876543210",
                                   NI, NO, DN_MODEL_LOSS_CE, 1, T_MEAN, T_STD,
                                   t_ws_size, t_predict_ce, NULL, NULL, 0, NULL, 0};
static const dn_infer_model toy_nodrop = {"toy", "9.9.9", "0123456789abcdef", "fedcba9876543210",
                                          NI, NO, DN_MODEL_LOSS_CE, 0, T_MEAN, T_STD,
                                          t_ws_size, t_predict_ce, NULL, NULL, 0, NULL, 0};
static const dn_infer_model toy_mse = {"toy", "9.9.9", "0123456789abcdef", "fedcba9876543210",
                                       NI, NO, DN_MODEL_LOSS_MSE, 1, T_MEAN, T_STD,
                                       t_ws_size, t_predict_mse, NULL, NULL, 0, NULL, 0};

/* ---- files ------------------------------------------------------------------------ */

static char g_dir[1024];

/* g_dir/name (ring of buffers so several can be live at once). */
static const char *P(const char *name) {
    static char ring[8][1200];
    static int next;
    char *p = ring[next++ % 8];
    snprintf(p, sizeof ring[0], "%s/%s", g_dir, name);
    return p;
}

static void setup(const char *name) {
    char cmd[1200];
    snprintf(g_dir, sizeof g_dir, "%s/predict_%s", DNGEN_TEST_TMP, name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    ck_assert(system(cmd) == 0);
    ck_assert_msg(mkdir(g_dir, 0777) == 0, "mkdir %s: %s", g_dir, strerror(errno));
}

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    ck_assert(fwrite(data, 1, len, f) == len);
    ck_assert(fclose(f) == 0);
}

static void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

/* IDX unsigned-byte file: header for ndim dims, then `len` payload bytes. */
static void write_idx(const char *path, int ndim, const uint32_t *dims, const uint8_t *data,
                      size_t len) {
    uint8_t buf[4096];
    size_t n = 0;
    buf[n++] = 0;
    buf[n++] = 0;
    buf[n++] = 8;
    buf[n++] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) {
        buf[n++] = (uint8_t)(dims[i] >> 24);
        buf[n++] = (uint8_t)(dims[i] >> 16);
        buf[n++] = (uint8_t)(dims[i] >> 8);
        buf[n++] = (uint8_t)dims[i];
    }
    ck_assert(n + len <= sizeof buf);
    memcpy(buf + n, data, len);
    write_bytes(path, buf, n + len);
}

static void write_idx3(const char *path) {
    uint32_t dims[3] = {NS, 2, 2};
    write_idx(path, 3, dims, &PX[0][0], sizeof PX);
}

static void write_idx2(const char *path) {
    uint32_t dims[2] = {NS, NI};
    write_idx(path, 2, dims, &PX[0][0], sizeof PX);
}

/* The pixels as CSV (optional header line). */
static void write_csv(const char *path, const char *header) {
    char text[2048];
    size_t n = 0;
    if (header)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s\n", header);
    for (int s = 0; s < NS; s++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%d,%d,%d,%d\n", PX[s][0], PX[s][1],
                              PX[s][2], PX[s][3]);
    write_text(path, text);
}

/* x as the network sees it: (px/255 - mean)/std in float32. */
static float norm_px(uint8_t px) { return ((float)px / 255.0f - T_MEAN) / T_STD; }

static void put_le_f32(uint8_t *p, float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    p[0] = (uint8_t)u;
    p[1] = (uint8_t)(u >> 8);
    p[2] = (uint8_t)(u >> 16);
    p[3] = (uint8_t)(u >> 24);
}

/* The normalized pixels as raw little-endian float32. */
static void write_raw(const char *path) {
    uint8_t buf[NS * NI * 4];
    for (int s = 0; s < NS; s++)
        for (int k = 0; k < NI; k++)
            put_le_f32(buf + 4 * (s * NI + k), norm_px(PX[s][k]));
    write_bytes(path, buf, sizeof buf);
}

/* Whole file as a NUL-terminated malloc'd string (NULL if unreadable). */
static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

/* ---- running dn_predict_main ------------------------------------------------------- */

typedef struct {
    int status; /* exit status; 1000 + signal if killed */
    char *out;
    char *err;
} run_result;

static void run_free(run_result *r) {
    free(r->out);
    free(r->err);
}

static const char *g_stdin_path;  /* child's standard input (NULL: /dev/null) */
static const char *g_stdout_path; /* NULL: g_dir/stdout.txt */
static const char *g_trace_path;  /* model trace file (NULL: none) */

/* Runs dn_predict_main(m, {"toy", args..., NULL}) in a child process. */
static run_result run_v(const dn_infer_model *m, const char *first, va_list ap) {
    const char *argv[64];
    int argc = 0;
    argv[argc++] = "toy";
    for (const char *a = first; a; a = va_arg(ap, const char *)) {
        ck_assert(argc < 63);
        argv[argc++] = a;
    }
    argv[argc] = NULL;
    char out_path[1200], err_path[1200];
    snprintf(out_path, sizeof out_path, "%s/stdout.txt", g_dir);
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", g_dir);
    write_text(out_path, "");
    fflush(NULL);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        int fd = open(g_stdin_path ? g_stdin_path : "/dev/null", O_RDONLY);
        if (fd < 0 || dup2(fd, 0) < 0)
            _exit(99);
        close(fd);
        clearerr(stdin);
        if (!freopen(g_stdout_path ? g_stdout_path : out_path, "w", stdout) ||
            !freopen(err_path, "w", stderr))
            _exit(99);
        if (g_trace_path && !(g_trace = fopen(g_trace_path, "w")))
            _exit(98);
        int rc = dn_predict_main(m, argc, (char **)argv);
        if (g_trace)
            fclose(g_trace);
        exit(rc); /* not _exit: LeakSanitizer checks dn_predict_main at exit */
    }
    int ws = 0;
    ck_assert(waitpid(pid, &ws, 0) == pid);
    run_result r;
    r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 1000 + WTERMSIG(ws);
    r.out = slurp(out_path);
    r.err = slurp(err_path);
    ck_assert(r.out && r.err);
    return r;
}

static run_result run(const dn_infer_model *m, const char *first, ...) {
    va_list ap;
    va_start(ap, first);
    run_result r = run_v(m, first, ap);
    va_end(ap);
    return r;
}

/* Runs, expects exit 0, empty stderr and stdout `want`. */
static void run_expect_out(const dn_infer_model *m, const char *want, const char *first, ...) {
    va_list ap;
    va_start(ap, first);
    run_result r = run_v(m, first, ap);
    va_end(ap);
    ck_assert_msg(r.status == 0, "exit %d; stderr: %s", r.status, r.err);
    ck_assert_str_eq(r.err, "");
    ck_assert_str_eq(r.out, want);
    run_free(&r);
}

static int matches(const char *text, const char *pattern) {
    regex_t re;
    ck_assert(regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE | REG_NOSUB) == 0);
    int ok = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

/* ---- expected outputs ---------------------------------------------------------------- */

enum { F_TEXT, F_CSV, F_JSON };

/* rank = indices of v by decreasing value, ties by index. */
static void ref_rank(const double *v, int *rank) {
    for (int i = 0; i < NO; i++)
        rank[i] = i;
    for (int i = 0; i < NO; i++)
        for (int j = i + 1; j < NO; j++)
            if (v[rank[j]] > v[rank[i]] || (v[rank[j]] == v[rank[i]] && rank[j] < rank[i])) {
                int t = rank[i];
                rank[i] = rank[j];
                rank[j] = t;
            }
}

/* Outputs of sample s as dn_predict sees them (float, widened). */
static void ref_sample(const uint8_t *px, int normalize, int ce, double *v) {
    float x[NI];
    double o[NO];
    for (int k = 0; k < NI; k++)
        x[k] = normalize ? norm_px(px[k]) : (float)px[k];
    ref_row(x, 0, 0, 0, 0, ce, o);
    for (int c = 0; c < NO; c++)
        v[c] = (double)(float)o[c];
}

/* Expected output for PX without MC dropout (malloc'd). */
static char *expect(int fmt, int top, int normalize, int ce) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert(f != NULL);
    const char *cls = ce ? "class" : "output", *val = ce ? "probability" : "value";
    if (fmt == F_CSV) {
        fprintf(f, "index,%s,%s", cls, val);
        for (int r = 2; r <= top; r++)
            fprintf(f, ",%s_%d,%s_%d", cls, r, val, r);
        fputc('\n', f);
    }
    for (int s = 0; s < NS; s++) {
        double v[NO];
        int rank[NO];
        ref_sample(PX[s], normalize, ce, v);
        ref_rank(v, rank);
        if (fmt == F_TEXT && top == 1) {
            fprintf(f, ce ? "%d: class %d p=%.4f\n" : "%d: output %d value=%.4f\n", s, rank[0],
                    v[rank[0]]);
        } else if (fmt == F_TEXT) {
            fprintf(f, "%d: ", s);
            for (int r = 0; r < top; r++)
                fprintf(f, "%s%d (%.4f)", r ? ", " : "", rank[r], v[rank[r]]);
            fputc('\n', f);
        } else if (fmt == F_CSV) {
            fprintf(f, "%d", s);
            for (int r = 0; r < top; r++)
                fprintf(f, ",%d,%.6f", rank[r], v[rank[r]]);
            fputc('\n', f);
        } else {
            fprintf(f, "{\"index\":%d,\"%s\":%d,\"%s\":%.6f", s, cls, rank[0], val, v[rank[0]]);
            if (top > 1) {
                fputs(",\"top\":[", f);
                for (int r = 0; r < top; r++)
                    fprintf(f, "%s[%d,%.6f]", r ? "," : "", rank[r], v[rank[r]]);
                fputc(']', f);
            }
            fputs("}\n", f);
        }
    }
    ck_assert(fclose(f) == 0);
    return buf;
}

/* ---- tests: formats ------------------------------------------------------------------- */

/* The test's own arithmetic must give distinct classes, or the checks below
 * would not notice a wrong argmax. */
START_TEST(test_fixture_sane) {
    int seen[NO] = {0};
    for (int s = 0; s < NS; s++) {
        double v[NO];
        int rank[NO];
        ref_sample(PX[s], 1, 1, v);
        ref_rank(v, rank);
        seen[rank[0]] = 1;
        ck_assert(v[rank[0]] > v[rank[1]] && v[rank[1]] > v[rank[2]]);
    }
    ck_assert(seen[0] && seen[1] && seen[2]);
}
END_TEST

static const char *const fmt_names[] = {"text", "csv", "json"};

/* Every input format, as a file and on stdin, in every output format. */
START_TEST(test_input_formats) {
    setup("formats");
    write_idx3(P("a.idx3"));
    write_idx2(P("a.idx2"));
    write_csv(P("plain.csv"), NULL);
    write_csv(P("header.csv"), "p0,p1,p2,p3");
    write_raw(P("a.f32"));
    /* CRLF, blanks, spaces around fields, a BOM, 1e2 notation */
    write_text(P("messy.csv"),
               "\xef\xbb\xbfpixel a, pixel b, c, d\r\n\r\n 0, 0,0 ,0\r\n255,255.0,2.55e2,255\r\n"
               "  \r\n12,200,34,90\r\n250,3,128,64\n77,77,180,5\n\n10,20,0,+250");
    const char *files[] = {"a.idx3", "a.idx2", "plain.csv", "header.csv", "a.f32", "messy.csv"};
    for (int fmt = 0; fmt < 3; fmt++) {
        char *want = expect(fmt, 1, 1, 1);
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            g_stdin_path = NULL;
            run_expect_out(&toy, want, P(files[i]), "--format", fmt_names[fmt], NULL);
            g_stdin_path = P(files[i]);
            run_expect_out(&toy, want, "--format", fmt_names[fmt], NULL);
            run_expect_out(&toy, want, "-", "--format", fmt_names[fmt], NULL);
        }
        g_stdin_path = NULL;
        free(want);
    }
#ifndef DN_NO_ZLIB
    /* a gzip-compressed IDX file (detected by content, not by name) */
    char *idx = slurp(P("a.idx3"));
    gzFile gz = gzopen(P("a.idx3.gz"), "wb");
    ck_assert(idx && gz);
    ck_assert(gzwrite(gz, idx, 16 + sizeof PX) == (int)(16 + sizeof PX));
    ck_assert(gzclose(gz) == Z_OK);
    free(idx);
    ck_assert(rename(P("a.idx3.gz"), P("packed")) == 0);
    for (int fmt = 0; fmt < 3; fmt++) {
        char *want = expect(fmt, 1, 1, 1);
        run_expect_out(&toy, want, P("packed"), "--format", fmt_names[fmt], NULL);
        free(want);
    }
#endif
    /* forced formats agree with detection */
    char *want = expect(F_TEXT, 1, 1, 1);
    run_expect_out(&toy, want, "--input-format", "idx", P("a.idx3"), NULL);
    run_expect_out(&toy, want, "--input-format=csv", P("header.csv"), NULL);
    run_expect_out(&toy, want, "--input-format", "raw", P("a.f32"), NULL);
    g_stdin_path = P("a.idx2");
    run_expect_out(&toy, want, "--input-format", "idx", NULL);
    g_stdin_path = NULL;
    free(want);
}
END_TEST

/* The text/csv/json lines spelled out once, for sample 0 of a one-line CSV. */
START_TEST(test_exact_lines) {
    setup("exact");
    write_text(P("one.csv"), "0,0,0,0\n");
    /* all pixels 0: x = -2 everywhere; z = b - 2 * rowsum(W) */
    double z[NO], p[NO], sum = 0;
    for (int c = 0; c < NO; c++) {
        z[c] = T_B[c] - 2 * (T_W[c][0] + T_W[c][1] + T_W[c][2] + T_W[c][3]);
        sum += exp(z[c]);
    }
    for (int c = 0; c < NO; c++)
        p[c] = (float)(exp(z[c]) / sum);
    /* z = (-1.4, -1.2, -1.45): class 1, then 0, then 2 */
    char want[256];
    snprintf(want, sizeof want, "0: class 1 p=%.4f\n", p[1]);
    run_expect_out(&toy, want, P("one.csv"), NULL);
    snprintf(want, sizeof want, "0: 1 (%.4f), 0 (%.4f), 2 (%.4f)\n", p[1], p[0], p[2]);
    run_expect_out(&toy, want, P("one.csv"), "--top", "3", NULL);
    snprintf(want, sizeof want, "index,class,probability,class_2,probability_2\n0,1,%.6f,0,%.6f\n",
             p[1], p[0]);
    run_expect_out(&toy, want, P("one.csv"), "--format=csv", "--top=2", NULL);
    snprintf(want, sizeof want,
             "{\"index\":0,\"class\":1,\"probability\":%.6f,\"top\":[[1,%.6f],[0,%.6f]]}\n", p[1],
             p[1], p[0]);
    run_expect_out(&toy, want, P("one.csv"), "--format", "json", "--top", "2", NULL);
    snprintf(want, sizeof want, "{\"index\":0,\"class\":1,\"probability\":%.6f}\n", p[1]);
    run_expect_out(&toy, want, P("one.csv"), "--format", "json", "--top", "1", NULL);
}
END_TEST

START_TEST(test_top) {
    setup("top");
    write_idx3(P("a.idx"));
    for (int fmt = 0; fmt < 3; fmt++)
        for (int top = 1; top <= NO; top++) {
            char *want = expect(fmt, top, 1, 1);
            char k[8];
            snprintf(k, sizeof k, "%d", top);
            run_expect_out(&toy, want, P("a.idx"), "--format", fmt_names[fmt], "--top", k, NULL);
            free(want);
        }
}
END_TEST

START_TEST(test_normalize) {
    setup("normalize");
    write_idx3(P("a.idx"));
    write_csv(P("a.csv"), NULL);
    char *norm = expect(F_CSV, 3, 1, 1), *raw = expect(F_CSV, 3, 0, 1);
    ck_assert_str_ne(norm, raw);
    run_expect_out(&toy, norm, P("a.idx"), "--format", "csv", "--top", "3", NULL);
    run_expect_out(&toy, raw, P("a.idx"), "--format", "csv", "--top", "3", "--no-normalize", NULL);
    run_expect_out(&toy, raw, "--no-normalize", P("a.csv"), "--format", "csv", "--top", "3", NULL);
    free(norm);
    free(raw);
    /* --no-normalize does not touch raw float32 input; small CSV values as given */
    write_raw(P("a.f32"));
    char *want = expect(F_TEXT, 1, 1, 1);
    run_expect_out(&toy, want, P("a.f32"), "--no-normalize", NULL);
    free(want);
    write_text(P("small.csv"), "0.5,-1.25,2,0\n");
    float x[NI] = {0.5f, -1.25f, 2.0f, 0.0f};
    double o[NO];
    ref_row(x, 0, 0, 0, 0, 1, o);
    int rank[NO];
    ref_rank(o, rank);
    char line[128];
    snprintf(line, sizeof line, "0: class %d p=%.4f\n", rank[0], (double)(float)o[rank[0]]);
    run_expect_out(&toy, line, P("small.csv"), "--no-normalize", NULL);
}
END_TEST

/* Batching: any --batch gives the same output; batches and workspace as documented. */
START_TEST(test_batches) {
    setup("batches");
    write_idx3(P("a.idx"));
    char *want = expect(F_JSON, 2, 1, 1);
    g_trace_path = P("trace.txt");
    run_expect_out(&toy, want, P("a.idx"), "--format", "json", "--top", "2", "--batch", "4", NULL);
    char *trace = slurp(P("trace.txt"));
    ck_assert_str_eq(trace, "ws 4\npredict n=4 mc=0 seed=0 pass=0\npredict n=2 mc=0 seed=0 pass=0\n");
    free(trace);
    run_expect_out(&toy, want, P("a.idx"), "--format", "json", "--top", "2", NULL);
    trace = slurp(P("trace.txt"));
    ck_assert_str_eq(trace, "ws 6\npredict n=6 mc=0 seed=0 pass=0\n");
    free(trace);
    run_expect_out(&toy, want, P("a.idx"), "--format", "json", "--top", "2", "--batch", "1", NULL);
    trace = slurp(P("trace.txt"));
    ck_assert_str_eq(trace, "ws 1\npredict n=1 mc=0 seed=0 pass=0\npredict n=1 mc=0 seed=0 pass=0\n"
                            "predict n=1 mc=0 seed=0 pass=0\npredict n=1 mc=0 seed=0 pass=0\n"
                            "predict n=1 mc=0 seed=0 pass=0\npredict n=1 mc=0 seed=0 pass=0\n");
    free(trace);
    g_trace_path = NULL;
    free(want);
}
END_TEST

START_TEST(test_mse_model) {
    setup("mse");
    write_idx3(P("a.idx"));
    for (int fmt = 0; fmt < 3; fmt++) {
        char *want = expect(fmt, 1, 1, 0);
        run_expect_out(&toy_mse, want, P("a.idx"), "--format", fmt_names[fmt], NULL);
        free(want);
        want = expect(fmt, 2, 1, 0);
        run_expect_out(&toy_mse, want, P("a.idx"), "--format", fmt_names[fmt], "--top", "2", NULL);
        free(want);
    }
    /* raw outputs are not probabilities: some are negative or above 1 */
    double v[NO];
    ref_sample(PX[1], 1, 0, v);
    ck_assert(v[0] > 1.0 || v[1] > 1.0 || v[2] > 1.0);
    run_result r = run(&toy_mse, P("a.idx"), "--format", "csv", "--mc", "3", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert(matches(r.out, "^index,output,value,std$"));
    ck_assert(matches(r.out, "^5,[0-2],-?[0-9]+\\.[0-9]{6},[0-9]+\\.[0-9]{6}$"));
    run_free(&r);
    r = run(&toy_mse, P("a.idx"), "--mc", "3", NULL);
    ck_assert(matches(r.out, "^0: output [0-2] value=-?[0-9]+\\.[0-9]{4} std=[0-9]+\\.[0-9]{4}$"));
    ck_assert(!strstr(r.out, "entropy"));
    run_free(&r);
}
END_TEST

START_TEST(test_zero_samples) {
    setup("zero");
    write_text(P("header.csv"), "a,b,c,d\n\n");
    write_text(P("empty"), "");
    uint32_t dims[3] = {0, 2, 2};
    write_idx(P("empty.idx"), 3, dims, &PX[0][0], 0);
    run_expect_out(&toy, "index,class,probability\n", P("header.csv"), "--format", "csv", NULL);
    run_expect_out(&toy, "", P("header.csv"), NULL);
    run_expect_out(&toy, "", P("empty"), "--format", "json", NULL);
    run_expect_out(&toy, "index,class,probability,entropy,std\n", P("empty.idx"), "--format",
                   "csv", "--mc", "2", NULL);
}
END_TEST

/* ---- tests: MC dropout ------------------------------------------------------------------ */

/* Parses CSV output rows "index,class,p,...,entropy,std" into cls/p/ent/sd. */
static int parse_mc_csv(const char *out, int *cls, double *p, double *ent, double *sd, int max) {
    const char *l = strchr(out, '\n');
    int n = 0;
    while (l && l[1] && n < max) {
        l++;
        char *e;
        long idx = strtol(l, &e, 10);
        ck_assert(idx == n && *e == ',');
        cls[n] = (int)strtol(e + 1, &e, 10);
        ck_assert(*e == ',');
        p[n] = strtod(e + 1, &e);
        ck_assert(*e == ',');
        ent[n] = strtod(e + 1, &e);
        ck_assert(*e == ',');
        sd[n] = strtod(e + 1, &e);
        ck_assert(*e == '\n');
        n++;
        l = e;
    }
    return n;
}

/* A case computable by hand: input (1, 0, 0, 0) unnormalized, so every pass
 * gives one of two probability vectors: unit 0 kept (x = (2,0,0,0)) or
 * dropped (x = 0). With k of N passes keeping it, the mean is
 * (k P1 + (N-k) P0) / N and the std of class c is
 * |P1c - P0c| sqrt(k (N-k)) / N. */
START_TEST(test_mc_by_hand) {
    setup("mc_hand");
    write_text(P("one.csv"), "1,0,0,0\n");
    const int N = 10;
    uint64_t seed = 0;
    int k = 0;
    uint32_t thr = dn_dropout_threshold(0.5);
    for (;; seed++) { /* a seed with a proper mix of kept and dropped passes */
        k = 0;
        for (int p = 0; p < N; p++)
            k += dn_rand_u32(seed, DN_RNG_DROPOUT, 0, (uint32_t)p, 1, 0) >= thr;
        if (k >= 3 && k <= 7 && seed > 0)
            break;
    }
    double p1[NO], p0[NO], s1 = 0, s0 = 0;
    for (int c = 0; c < NO; c++) {
        s1 += exp(T_B[c] + 2 * T_W[c][0]);
        s0 += exp(T_B[c]);
    }
    for (int c = 0; c < NO; c++) {
        p1[c] = exp(T_B[c] + 2 * T_W[c][0]) / s1;
        p0[c] = exp(T_B[c]) / s0;
    }
    double mean[NO], ent = 0;
    int best = 0;
    for (int c = 0; c < NO; c++) {
        mean[c] = (k * p1[c] + (N - k) * p0[c]) / N;
        ent -= mean[c] * log(mean[c]);
        if (mean[c] > mean[best])
            best = c;
    }
    double sd = fabs(p1[best] - p0[best]) * sqrt((double)k * (N - k)) / N;
    char seed_s[32];
    snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)seed);
    run_result r = run(&toy, P("one.csv"), "--no-normalize", "--mc", "10", "--seed", seed_s,
                       "--format", "csv", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert(matches(r.out, "^index,class,probability,entropy,std$"));
    int cls[1];
    double pv[1], ev[1], sv[1];
    ck_assert_int_eq(parse_mc_csv(r.out, cls, pv, ev, sv, 1), 1);
    ck_assert_int_eq(cls[0], best);
    ck_assert_msg(fabs(pv[0] - mean[best]) < 2e-6, "p %f, expected %f", pv[0], mean[best]);
    ck_assert_msg(fabs(ev[0] - ent) < 2e-6, "entropy %f, expected %f", ev[0], ent);
    ck_assert_msg(fabs(sv[0] - sd) < 2e-6, "std %f, expected %f (k=%d)", sv[0], sd, k);
    ck_assert(sd > 0.01);
    run_free(&r);
    /* --mc 1: one pass, std 0 */
    r = run(&toy, P("one.csv"), "--no-normalize", "--mc", "1", "--format", "json", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert(matches(r.out, "^\\{\"index\":0,\"class\":[0-2],\"probability\":0\\.[0-9]{6},"
                             "\"entropy\":[0-9]\\.[0-9]{6},\"std\":0\\.000000\\}$"));
    run_free(&r);
}
END_TEST

/* The general case against a direct computation: rows within batches,
 * passes 0..N-1, the seed; plus determinism and the text/json spellings. */
START_TEST(test_mc_reference) {
    setup("mc_ref");
    write_idx3(P("a.idx"));
    const int N = 7, B = 4;
    const uint64_t seed = 42;
    g_trace_path = P("trace.txt");
    run_result r = run(&toy, P("a.idx"), "--mc", "7", "--seed", "42", "--batch", "4", "--format",
                       "csv", NULL);
    g_trace_path = NULL;
    ck_assert_msg(r.status == 0, "%s", r.err);
    char *trace = slurp(P("trace.txt"));
    const char *head = "ws 4\npredict n=4 mc=1 seed=42 pass=0\npredict n=4 mc=1 seed=42 pass=1\n";
    ck_assert_msg(strncmp(trace, head, strlen(head)) == 0, "%s", trace);
    ck_assert(strstr(trace, "predict n=2 mc=1 seed=42 pass=6\n") != NULL);
    ck_assert(!strstr(trace, "pass=7"));
    free(trace);
    int cls[NS];
    double pv[NS], ev[NS], sv[NS];
    ck_assert_int_eq(parse_mc_csv(r.out, cls, pv, ev, sv, NS), NS);
    int nonzero_sd = 0;
    for (int s = 0; s < NS; s++) {
        float x[NI];
        for (int k = 0; k < NI; k++)
            x[k] = norm_px(PX[s][k]);
        double v[16][NO], mean[NO] = {0};
        for (int p = 0; p < N; p++) {
            double o[NO];
            ref_row(x, 1, seed, (uint32_t)(s % B), (uint64_t)p, 1, o);
            for (int c = 0; c < NO; c++) {
                v[p][c] = (float)o[c];
                mean[c] += v[p][c] / N;
            }
        }
        int rank[NO];
        ref_rank(mean, rank);
        double ent = 0, var = 0;
        for (int c = 0; c < NO; c++)
            ent -= mean[c] > 0 ? mean[c] * log(mean[c]) : 0;
        for (int p = 0; p < N; p++)
            var += (v[p][rank[0]] - mean[rank[0]]) * (v[p][rank[0]] - mean[rank[0]]) / N;
        ck_assert_int_eq(cls[s], rank[0]);
        ck_assert_msg(fabs(pv[s] - mean[rank[0]]) < 2e-6, "sample %d: p %f vs %f", s, pv[s],
                      mean[rank[0]]);
        ck_assert_msg(fabs(ev[s] - ent) < 2e-6, "sample %d: entropy %f vs %f", s, ev[s], ent);
        ck_assert_msg(fabs(sv[s] - sqrt(var)) < 2e-6, "sample %d: std %f vs %f", s, sv[s],
                      sqrt(var));
        nonzero_sd += sv[s] > 1e-3;
    }
    ck_assert(nonzero_sd >= 4);
    /* same seed: same bytes; another seed: different */
    run_result again = run(&toy, P("a.idx"), "--mc", "7", "--seed", "42", "--batch", "4",
                           "--format", "csv", NULL);
    ck_assert_str_eq(again.out, r.out);
    run_free(&again);
    again = run(&toy, P("a.idx"), "--mc", "7", "--seed", "43", "--batch", "4", "--format", "csv",
                NULL);
    ck_assert_int_eq(again.status, 0);
    ck_assert_str_ne(again.out, r.out);
    run_free(&again);
    /* the default seed is 0 */
    run_result d0 = run(&toy, P("a.idx"), "--mc", "3", NULL);
    run_result s0 = run(&toy, P("a.idx"), "--mc", "3", "--seed", "0", NULL);
    ck_assert_int_eq(d0.status, 0);
    ck_assert_str_eq(d0.out, s0.out);
    ck_assert(matches(d0.out, "^0: class [0-2] p=[01]\\.[0-9]{4} entropy=[0-9]\\.[0-9]{4} "
                              "std=[0-9]\\.[0-9]{4}$"));
    run_free(&d0);
    run_free(&s0);
    run_free(&r);
    /* text, csv and json with --top and --mc */
    r = run(&toy, P("a.idx"), "--mc", "3", "--top", "2", NULL);
    ck_assert(matches(r.out, "^5: [0-2] \\([01]\\.[0-9]{4}\\), [0-2] \\([01]\\.[0-9]{4}\\) "
                             "entropy=[0-9]\\.[0-9]{4} std=[0-9]\\.[0-9]{4}$"));
    run_free(&r);
    r = run(&toy, P("a.idx"), "--mc", "3", "--top", "3", "--format", "csv", NULL);
    ck_assert(matches(r.out, "^index,class,probability,class_2,probability_2,class_3,"
                             "probability_3,entropy,std$"));
    run_free(&r);
    r = run(&toy, P("a.idx"), "--mc", "3", "--top", "2", "--format", "json", NULL);
    ck_assert(matches(r.out, "^\\{\"index\":5,\"class\":[0-2],\"probability\":[01]\\.[0-9]{6},"
                             "\"top\":\\[\\[[0-2],[01]\\.[0-9]{6}\\],\\[[0-2],[01]\\.[0-9]{6}\\]\\],"
                             "\"entropy\":[0-9]\\.[0-9]{6},\"std\":[0-9]\\.[0-9]{6}\\}$"));
    run_free(&r);
}
END_TEST

/* ---- tests: help, version, errors ------------------------------------------------------- */

START_TEST(test_help_version) {
    setup("help");
    run_expect_out(&toy, "toy predictor (dngen 9.9.9, spec 0123456789abcdef, weights fedcba9876543210)\n",
                   "--version", NULL);
    const char *spellings[] = {"--help", "-h"};
    for (int i = 0; i < 2; i++) {
        run_result r = run(&toy, spellings[i], NULL);
        ck_assert_int_eq(r.status, 0);
        ck_assert_str_eq(r.err, "");
        ck_assert(matches(r.out, "^Usage: toy \\[INPUT\\] \\[OPTIONS\\]$"));
        const char *opts[] = {"--format F", "--top K", "--mc N", "--seed S", "--batch B",
                              "--no-normalize", "--input-format F", "--help", "--version"};
        for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++)
            ck_assert_msg(matches(r.out, opts[k]), "help lacks %s", opts[k]);
        ck_assert(matches(r.out, "^  idx  "));
        ck_assert(matches(r.out, "^  csv  "));
        ck_assert(matches(r.out, "^  raw  "));
        ck_assert(matches(r.out, "already normalized"));
        ck_assert(matches(r.out, "^  text  0: class 7 p=0\\.9876$"));
        ck_assert(matches(r.out, "index,class,probability"));
        ck_assert(matches(r.out, "^Exit status:$"));
        ck_assert(matches(r.out, "^  0  success$"));
        ck_assert(matches(r.out, "^  2  usage error"));
        ck_assert(matches(r.out, "^  3  input error"));
        ck_assert(matches(r.out, "^  4  output write error"));
        ck_assert(matches(r.out, "\\(x/255 - 0\\.5\\) / 0\\.25"));
        run_free(&r);
    }
    run_result r = run(&toy_mse, "--help", NULL);
    ck_assert(matches(r.out, "^  text  0: output 7 value=1\\.2345$"));
    ck_assert(!strstr(r.out, "entropy"));
    run_free(&r);
}
END_TEST

typedef struct {
    const char *args[6];
    const char *err;
} bad_case;

static const bad_case bad_cases[] = {
    {{"--format", "xml"}, "toy: --format: expected text, csv or json, got 'xml'\n"},
    {{"--format"}, "toy: --format: missing value F\n"},
    {{"--input-format=png"}, "toy: --input-format: expected idx, csv or raw, got 'png'\n"},
    {{"--top", "0"}, "toy: --top: expected an integer in [1, 3], got '0'\n"},
    {{"--top", "4"}, "toy: --top: expected an integer in [1, 3], got '4'\n"},
    {{"--top", "2x"}, "toy: --top: expected an integer in [1, 3], got '2x'\n"},
    {{"--mc", "0"}, "toy: --mc: expected an integer in [1, 1000000], got '0'\n"},
    {{"--mc", ""}, "toy: --mc: expected an integer in [1, 1000000], got ''\n"},
    {{"--batch", "-3"}, "toy: --batch: expected an integer in [1, 1048576], got '-3'\n"},
    {{"--batch", "1e3"}, "toy: --batch: expected an integer in [1, 1048576], got '1e3'\n"},
    {{"--mc", "2", "--seed", "-1"},
     "toy: --seed: expected an integer in [0, 18446744073709551615], got '-1'\n"},
    {{"--mc", "2", "--seed", "18446744073709551616"},
     "toy: --seed: expected an integer in [0, 18446744073709551615], got '18446744073709551616'\n"},
    {{"--seed", "5"}, "toy: --seed needs --mc N (it seeds the MC dropout masks)\n"},
    {{"--bogus"}, "toy: unknown option '--bogus' (try 'toy --help')\n"},
    {{"-x"}, "toy: unknown option '-x' (try 'toy --help')\n"},
    {{"--no-normalize=1"}, "toy: --no-normalize: takes no value, got '1'\n"},
    {{"a.csv", "b.csv"}, "toy: unexpected argument 'b.csv' (one INPUT only; try 'toy --help')\n"},
    {{""}, "toy: empty INPUT file name\n"},
};

START_TEST(test_bad_arguments) {
    setup("bad_args");
    const bad_case *c = &bad_cases[_i];
    const char *a[7] = {0};
    for (int k = 0; k < 6 && c->args[k]; k++)
        a[k] = c->args[k];
    run_result r = run(&toy, a[0], a[1], a[2], a[3], a[4], a[5], NULL);
    ck_assert_msg(r.status == 2, "case %d: exit %d", _i, r.status);
    ck_assert_str_eq(r.err, c->err);
    ck_assert_str_eq(r.out, "");
    run_free(&r);
}
END_TEST

START_TEST(test_mc_without_dropout) {
    setup("nodrop");
    write_idx3(P("a.idx"));
    run_result r = run(&toy_nodrop, P("a.idx"), "--mc", "3", NULL);
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.err, "toy: --mc: model has no dropout (MC dropout needs a network with dropout)\n");
    ck_assert_str_eq(r.out, "");
    run_free(&r);
    char *want = expect(F_TEXT, 1, 1, 1);
    run_expect_out(&toy_nodrop, want, P("a.idx"), NULL);
    free(want);
}
END_TEST

/* Input errors: exit 3, one line naming file, problem and place, nothing on stdout. */
typedef struct {
    const char *file;    /* written by setup_error_files */
    int on_stdin;
    const char *opt;     /* an extra option or NULL */
    const char *err;     /* expected stderr after "toy: " with FILE for the path */
} input_case;

static const input_case input_cases[] = {
    {"missing.csv", 0, NULL, "FILE: cannot open: No such file or directory"},
    {"few.csv", 0, NULL, "FILE:2:6: 3 values on the line, the model takes 4"},
    {"many.csv", 0, NULL, "FILE:1:9: more than 4 values on the line (the model takes 4)"},
    {"bad.csv", 0, NULL, "FILE:4:5: expected a number, got 'x'"},
    {"bad.csv", 1, NULL, "<stdin>:4:5: expected a number, got 'x'"},
    {"empty_field.csv", 0, NULL, "FILE:1:3: expected a number, got an empty field"},
    {"junk.csv", 0, NULL, "FILE:1:7: expected a number, got '4.5.6'"},
    {"nan.csv", 0, NULL, "FILE:2:1: expected a number, got 'nan'"},
    {"inf.csv", 0, NULL, "FILE:1:5: expected a number, got '-inf'"},
    {"hex.csv", 0, NULL, "FILE:1:3: expected a number, got '0x10'"},
    {"huge.csv", 0, NULL, "FILE:2:3: number '1e39' is out of range for float32"},
    {"long.csv", 0, NULL,
     "FILE:1:7: number '00000000000000000000000000000000...' is longer than 511 bytes"},
    {"blanks.csv", 0, NULL, "FILE:1:10: expected a number, got '3 4'"},
    {"trunc.idx", 0, NULL, "FILE: payload is 22 bytes, header says 24"},
    {"trunc.idx", 1, NULL,
     "<stdin>: truncated IDX data: the header (6 samples) needs 24 bytes from byte 16, the input "
     "ends at byte 38"},
    {"trunc_hdr.idx", 1, NULL,
     "<stdin>: truncated header: input has 10 bytes, the IDX header needs 16"},
    {"long.idx", 1, NULL,
     "<stdin>: 1 bytes of trailing data at byte 40 (the header says 6 samples, 24 bytes)"},
    {"shape.idx", 0, NULL,
     "FILE: IDX dimensions 6 x 3 x 3 (at byte 4) do not hold samples of 4 values: expected [n, "
     "rows, cols] with rows*cols = 4, or [n, 4]"},
    {"shape.idx", 1, NULL,
     "<stdin>: IDX dimensions 6 x 3 x 3 (at byte 4) do not hold samples of 4 values: expected "
     "[n, rows, cols] with rows*cols = 4, or [n, 4]"},
    {"labels.idx", 0, NULL,
     "FILE: IDX dimensions 6 (at byte 4) do not hold samples of 4 values: expected [n, rows, "
     "cols] with rows*cols = 4, or [n, 4]"},
    {"float.idx", 1, NULL, "<stdin>: unsupported data type 0x0d at byte 2 (only 0x08, unsigned byte)"},
    {"a.csv", 0, "--input-format=idx",
     "FILE: bad magic 0x3235 at byte 0 (expected 0x0000, not an IDX file)"},
    {"odd.f32", 0, NULL,
     "FILE: raw float32 input is 38 bytes, not a multiple of 16 (4 values x 4 bytes): 6 bytes left "
     "over at byte 32"},
    {"odd.f32", 1, NULL,
     "<stdin>: raw float32 input is 38 bytes, not a multiple of 16 (4 values x 4 bytes): 6 bytes "
     "left over at byte 32"},
    {"a.csv", 0, "--input-format=raw",
     "FILE: raw float32 input is 20 bytes, not a multiple of 16 (4 values x 4 bytes): 4 bytes left "
     "over at byte 16"},
    {"nan.f32", 0, NULL, "FILE: value at byte 24 (sample 1, value 3) is NaN, not a finite number"},
    {"dir", 0, NULL, "FILE: read error: Is a directory"},
    {"gz.idx.gz", 1, NULL, "<stdin>: gzip-compressed input is read from files only (give the file name)"},
};

static void setup_error_files(void) {
    write_text(P("few.csv"), "1,2,3,4\n1,2,3\n");
    write_text(P("many.csv"), "1,2,3,4,5\n");
    write_text(P("bad.csv"), "p,q,r,s\n1,2,3,4\n\n1,2,x,4\n");
    write_text(P("empty_field.csv"), "1,,3,4\n");
    write_text(P("junk.csv"), "1,2,3,4.5.6\n");
    write_text(P("nan.csv"), "1,2,3,4\nnan,1,2,3\n"); /* on line 1 it would be a header */
    write_text(P("inf.csv"), "1,2,-inf,4\n");
    write_text(P("hex.csv"), "1,0x10,3,4\n");
    write_text(P("huge.csv"), "1,2,3,4\n0,1e39,2,3\n");
    char long_csv[640];
    snprintf(long_csv, sizeof long_csv, "1,2,3,%0600d\n", 1);
    write_text(P("long.csv"), long_csv);
    write_text(P("blanks.csv"), " 1 ,\t2\t, 3 4 \r\n");
    write_text(P("a.csv"), "255,0,0,0\n0,255,0,0\n");
    uint8_t px[64] = {0};
    uint32_t d3[3] = {NS, 2, 2}, bad3[3] = {NS, 3, 3}, d1[1] = {NS};
    write_idx(P("trunc.idx"), 3, d3, px, 22);
    write_idx(P("long.idx"), 3, d3, px, 25);
    write_idx(P("shape.idx"), 3, bad3, px, 54);
    write_idx(P("labels.idx"), 1, d1, px, NS);
    write_bytes(P("trunc_hdr.idx"), "\0\0\x08\x03\0\0\0\x06\0\0", 10);
    write_bytes(P("float.idx"), "\0\0\x0d\x02\0\0\0\x01\0\0\0\x04", 12);
    write_bytes(P("odd.f32"), px, 38);
    uint8_t raw[32];
    for (int i = 0; i < 8; i++)
        put_le_f32(raw + 4 * i, i == 6 ? NAN : 0.5f);
    write_bytes(P("nan.f32"), raw, sizeof raw);
    write_bytes(P("gz.idx.gz"), "\x1f\x8b\x08\0\0\0\0\0", 8);
    ck_assert(mkdir(P("dir"), 0777) == 0);
}

START_TEST(test_input_errors) {
    setup("input_errors");
    setup_error_files();
    const input_case *c = &input_cases[_i];
    char want[1024], path[1200];
    snprintf(path, sizeof path, "%s", P(c->file));
    const char *f = strstr(c->err, "FILE");
    if (f)
        snprintf(want, sizeof want, "toy: %.*s%s%s\n", (int)(f - c->err), c->err, path, f + 4);
    else
        snprintf(want, sizeof want, "toy: %s\n", c->err);
    g_stdin_path = c->on_stdin ? path : NULL;
    for (int fmt = 0; fmt < 3; fmt++) {
        run_result r = c->on_stdin ? run(&toy, "--format", fmt_names[fmt], c->opt, NULL)
                                   : run(&toy, path, "--format", fmt_names[fmt], c->opt, NULL);
        ck_assert_msg(r.status == 3, "case %d (%s): exit %d, stderr %s", _i, c->file, r.status,
                      r.err);
        ck_assert_str_eq(r.err, want);
        ck_assert_str_eq(r.out, ""); /* nothing printed before the input is known good */
        run_free(&r);
    }
    g_stdin_path = NULL;
}
END_TEST

START_TEST(test_output_error) {
    setup("output_error");
    write_idx3(P("a.idx"));
    g_stdout_path = "/dev/full";
    run_result r = run(&toy, P("a.idx"), NULL);
    ck_assert_int_eq(r.status, 4);
    ck_assert_str_eq(r.err, "toy: error writing to standard output: No space left on device\n");
    run_free(&r);
    r = run(&toy, "--help", NULL);
    ck_assert_int_eq(r.status, 4);
    run_free(&r);
    g_stdout_path = NULL;
}
END_TEST

int main(void) {
    Suite *s = suite_create("check_predict");
    TCase *fm = tcase_create("formats");
    tcase_add_test(fm, test_fixture_sane);
    tcase_add_test(fm, test_input_formats);
    tcase_add_test(fm, test_exact_lines);
    tcase_add_test(fm, test_top);
    tcase_add_test(fm, test_normalize);
    tcase_add_test(fm, test_batches);
    tcase_add_test(fm, test_mse_model);
    tcase_add_test(fm, test_zero_samples);
    suite_add_tcase(s, fm);

    TCase *mc = tcase_create("mc");
    tcase_add_test(mc, test_mc_by_hand);
    tcase_add_test(mc, test_mc_reference);
    tcase_add_test(mc, test_mc_without_dropout);
    suite_add_tcase(s, mc);

    TCase *cli = tcase_create("cli");
    tcase_add_test(cli, test_help_version);
    tcase_add_loop_test(cli, test_bad_arguments, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_loop_test(cli, test_input_errors, 0,
                        (int)(sizeof input_cases / sizeof input_cases[0]));
    tcase_add_test(cli, test_output_error);
    suite_add_tcase(s, cli);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
