/* check_train.c - the trainer driver (dn_main) on a hand-written toy model.
 *
 * The toy is softmax regression, 8 inputs -> 3 classes, with dropout on the
 * inputs (p = 0.25, masks from DN_RNG_DROPOUT) so that seed and step matter,
 * and per-row gradients summed in row order after an OpenMP loop so that the
 * thread count must not matter. Hooks make it return NaN, raise a signal or
 * compute a wrong gradient at chosen steps.
 *
 * Eval with b->mc_dropout keeps the input dropout on (masks from seed and
 * step, as generated models do), for `eval --mc`.
 *
 * Every dn_main call runs in a forked child with stdout/stderr redirected
 * to files (or stderr to a pseudo-terminal), like a real process; the data set is a synthetic, linearly
 * separable IDX set written by the tests (100 train / 30 test samples, so
 * batch 32 gives 4 steps per epoch, the last one of 4 rows).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#define _XOPEN_SOURCE 700 /* posix_openpt: the progress bar test needs a terminal */
#include "dn_runtime.h"
#include "dn_train.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the toy model ---------------------------------------------------------- */

#define TOY_IN 8
#define TOY_OUT 3
#define TOY_NP (TOY_IN * TOY_OUT + TOY_OUT)
#define TOY_P_DROP 0.25

static const dn_tensor_info toy_tensors[] = {
    {"fc.weight", 2, {TOY_OUT, TOY_IN}, 0, TOY_IN * TOY_OUT, TOY_IN, 0, TOY_IN * TOY_OUT, 0.0f, 0},
    {"fc.bias", 1, {TOY_OUT, 0}, TOY_IN * TOY_OUT, TOY_OUT, TOY_IN, 0, TOY_OUT, 0.0f, 0},
};

static int64_t toy_nan_step = -1;   /* train_step returns NaN at this step */
static int64_t toy_inf_grad_step = -1; /* ... a finite loss and an infinite gradient */
static int64_t toy_raise_step = -1; /* train_step raises toy_raise_sig at this step */
static int toy_raise_sig = SIGTERM;
static int toy_grad_bug;            /* scale the bias gradient by 1.1 */
static FILE *toy_trace;             /* when set: "step row pixel*8" per row trained */

/* Workspace for n rows: per-row gradients, losses and hits. */
static size_t toy_ws_size(int max_batch) {
    return (size_t)max_batch * (TOY_NP * sizeof(float) + sizeof(double) + sizeof(int)) + 64;
}

static void toy_init(float *params, uint64_t seed) {
    float bound = 1.0f / sqrtf((float)TOY_IN);
    for (int t = 0; t < 2; t++)
        for (size_t i = 0; i < toy_tensors[t].count; i++) {
            double u = dn_u32_to_unit(dn_rand_u32(seed, DN_RNG_INIT, (uint32_t)t, 0, 0, (uint32_t)i));
            params[toy_tensors[t].offset + i] = (float)((2 * u - 1) * bound);
        }
}

/* One row: forward (dropout on the inputs when `train`), loss, hit and, if
 * g != NULL, the row's gradient of its loss. */
static void toy_row(const float *p, const float *x, int y, const dn_batch *b, int row, int train,
                    float *g, double *loss, int *hit, float *prob_out) {
    float xin[TOY_IN], z[TOY_OUT], prob[TOY_OUT];
    uint32_t thr = dn_dropout_threshold(TOY_P_DROP);
    for (int k = 0; k < TOY_IN; k++) {
        int keep = !train ||
                   dn_rand_u32(b->seed, DN_RNG_DROPOUT, (uint32_t)row, (uint32_t)b->step, 0, (uint32_t)k) >= thr;
        xin[k] = keep ? x[k] * (train ? (float)(1.0 / (1.0 - TOY_P_DROP)) : 1.0f) : 0.0f;
    }
    int best = 0;
    for (int c = 0; c < TOY_OUT; c++) {
        z[c] = p[TOY_IN * TOY_OUT + c];
        for (int k = 0; k < TOY_IN; k++)
            z[c] += p[c * TOY_IN + k] * xin[k];
        if (z[c] > z[best])
            best = c;
    }
    float sum = 0;
    for (int c = 0; c < TOY_OUT; c++)
        sum += (prob[c] = expf(z[c] - z[best]));
    for (int c = 0; c < TOY_OUT; c++) {
        prob[c] /= sum;
        if (prob_out)
            prob_out[c] = prob[c];
    }
    *loss = y >= 0 ? (double)(logf(sum) + z[best] - z[y]) : 0.0;
    *hit = best == y;
    for (int c = 0; g && c < TOY_OUT; c++) {
        float dz = prob[c] - (c == y ? 1.0f : 0.0f);
        for (int k = 0; k < TOY_IN; k++)
            g[c * TOY_IN + k] = dz * xin[k];
        g[TOY_IN * TOY_OUT + c] = dz;
    }
}

static double toy_train_step(float *params, float *grads, void *ws, const dn_batch *b, int *correct) {
    if ((int64_t)b->step == toy_raise_step)
        raise(toy_raise_sig);
    for (int r = 0; toy_trace && r < b->n; r++) {
        fprintf(toy_trace, "%d %d", (int)b->step, r);
        for (int k = 0; k < TOY_IN; k++) /* undo the (px/255 - 0.5)/0.5 normalization */
            fprintf(toy_trace, " %d", (int)lrintf((b->x[r * TOY_IN + k] * 0.5f + 0.5f) * 255.0f));
        fputc('\n', toy_trace);
    }
    float *g = ws;
    size_t loss_at = ((size_t)b->n * TOY_NP * sizeof(float) + 7) & ~(size_t)7;
    double *loss = (double *)(void *)((char *)ws + loss_at);
    int *hit = (int *)(loss + b->n);
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int r = 0; r < b->n; r++)
        toy_row(params, b->x + (size_t)r * TOY_IN, b->y[r], b, r, 1, g + (size_t)r * TOY_NP,
                &loss[r], &hit[r], NULL);
    double total = 0;
    for (int j = 0; j < TOY_NP; j++)
        grads[j] = 0;
    for (int r = 0; r < b->n; r++) {
        total += loss[r];
        *correct += hit[r];
        for (int j = 0; j < TOY_NP; j++)
            grads[j] += g[(size_t)r * TOY_NP + j] / (float)b->n;
    }
    if (toy_grad_bug)
        for (int c = 0; c < TOY_OUT; c++)
            grads[TOY_IN * TOY_OUT + c] *= 1.1f;
    if ((int64_t)b->step == toy_nan_step) {
        grads[3] = NAN;
        return NAN;
    }
    if ((int64_t)b->step == toy_inf_grad_step)
        grads[TOY_IN * TOY_OUT + 1] = INFINITY;
    return total;
}

static double toy_eval(const float *params, void *ws, const dn_batch *b, float *out, int *correct) {
    (void)ws;
    double total = 0;
    for (int r = 0; r < b->n; r++) {
        double loss;
        int hit;
        toy_row(params, b->x + (size_t)r * TOY_IN, b->y ? b->y[r] : -1, b, r, b->mc_dropout != 0,
                NULL, &loss, &hit, out ? out + (size_t)r * TOY_OUT : NULL);
        total += loss;
        if (correct && b->y)
            *correct += hit;
    }
    return b->y ? total : 0.0;
}

/* The fused variant: toy_train_step, then Adam from the coefficients c
 * with the same arithmetic as dn_adam_step; nothing changes on a
 * non-finite loss. */
static double toy_train_step_adam(float *params, float *m, float *v, const dn_adam_coef *c,
                                  void *ws, const dn_batch *b, int *correct) {
    float g[TOY_NP];
    double loss = toy_train_step(params, g, ws, b, correct);
    if (!isfinite(loss))
        return loss;
    for (int i = 0; i < TOY_NP; i++) {
        float p = params[i] * c->shrink;
        float gi = c->l2 ? (float)((double)p * c->wd + g[i]) : g[i];
        m[i] = (float)((double)gi * c->omb1 + (double)(m[i] * c->b1));
        v[i] = (float)((double)(c->omb2 * gi) * gi + (double)(v[i] * c->b2));
        params[i] = p + (c->neg_step * m[i]) / (sqrtf(v[i]) / c->bc2_sqrt + c->eps);
    }
    return loss;
}

static const dn_model toy_model = {
    .name = "toy",
    .dngen_version = "0.1.0",
    .spec_hash = "0123456789abcdef",
    .spec_path = "specs/toy.yaml",
    .n_inputs = TOY_IN,
    .n_outputs = TOY_OUT,
    .n_params = TOY_NP,
    .n_trainable = TOY_NP,
    .n_tensors = 2,
    .tensors = toy_tensors,
    .loss = 0,
    .defaults = {.batch_size = 32, .epochs = 3, .seed = 7, .lr = 0.05f, .beta1 = 0.9f,
                 .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0, .decoupled_wd = 0,
                 .data_dir = "data", .norm_mean = 0.5f, .norm_std = 0.5f},
    .workspace_size = toy_ws_size,
    .init = toy_init,
    .train_step = toy_train_step,
    .eval = toy_eval,
};

static dn_model toy_fused_model; /* toy_model with train_step_adam */
/* toy_model with other optimizers, schedules and clipping (made in main):
 * SGD (nesterov momentum, weight decay) with StepLR; centered RMSprop with
 * momentum and ExponentialLR; fused Adam with clipping (which takes the
 * unfused path) and warmup + cosine; SGD with ReduceLROnPlateau on the
 * validation accuracy. */
static dn_model toy_sgd_model, toy_rmsprop_model, toy_clip_model, toy_plateau_model;
static dn_model toy_fused_sched_model; /* fused Adam with ExponentialLR */
static const dn_model *toy_active = &toy_model; /* what run() trains */

/* ---- scratch files and synthetic data ------------------------------------------ */

static char g_dir[1024];  /* this test's scratch directory */

/* Path of `name` inside the scratch directory (ring of static buffers). */
static const char *P(const char *name) {
    static char ring[16][1200];
    static int next;
    char *p = ring[next++ % 16];
    snprintf(p, sizeof ring[0], "%s/%s", g_dir, name);
    return p;
}

/* printf into a ring of static buffers, for argv entries. */
static const char *F(const char *fmt, ...) {
    static char ring[16][64];
    static int next;
    char *p = ring[next++ % 16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, sizeof ring[0], fmt, ap);
    va_end(ap);
    return p;
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert(fwrite(data, 1, len, f) == len);
    ck_assert(fclose(f) == 0);
}

/* Pixels (img, n x 8) and labels of the synthetic set `salt`: image i has
 * class c (random) and pixels 2c, 2c+1 bright, so it is linearly separable. */
static void make_samples(uint32_t n, uint32_t salt, unsigned char *img, unsigned char *lab) {
    for (uint32_t i = 0; i < n; i++) {
        int c = (int)(dn_rand_u32(salt, DN_RNG_TEST, 9, 0, 0, i) % TOY_OUT);
        lab[i] = (unsigned char)c;
        for (int k = 0; k < TOY_IN; k++) {
            uint32_t v = dn_rand_u32(salt, DN_RNG_TEST, 10, i, 0, (uint32_t)k) % 80;
            img[(size_t)i * TOY_IN + (size_t)k] = (unsigned char)(k / 2 == c ? v + 170 : v);
        }
    }
}

/* Writes DIR/PREFIX-{images-idx3,labels-idx1}-ubyte with n samples of set
 * `salt` as 2x4 images. */
static void write_idx_set(const char *dir, const char *prefix, uint32_t n, uint32_t salt) {
    unsigned char *img = malloc(16 + (size_t)n * TOY_IN), lab[8 + 1024];
    ck_assert(img != NULL && n <= 1024);
    put_be32(img, 0x803);
    put_be32(img + 4, n);
    put_be32(img + 8, 2);
    put_be32(img + 12, 4);
    put_be32(lab, 0x801);
    put_be32(lab + 4, n);
    make_samples(n, salt, img + 16, lab + 8);
    char path[1300];
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, prefix);
    write_bytes(path, img, 16 + (size_t)n * TOY_IN);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix);
    write_bytes(path, lab, 8 + n);
    free(img);
}

/* Creates a fresh scratch directory DNGEN_TEST_TMP/train_<name> (left in
 * place afterwards for inspection) with data/ (train 100,
 * t10k 30) and notest/ (train 100 only). */
static void setup(const char *name) {
    char cmd[1200];
    snprintf(g_dir, sizeof g_dir, "%s/train_%s", DNGEN_TEST_TMP, name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    ck_assert(system(cmd) == 0);
    ck_assert_msg(mkdir(g_dir, 0777) == 0, "mkdir %s: %s", g_dir, strerror(errno));
    ck_assert(mkdir(P("data"), 0777) == 0 || errno == EEXIST);
    ck_assert(mkdir(P("notest"), 0777) == 0 || errno == EEXIST);
    write_idx_set(P("data"), "train", 100, 1);
    write_idx_set(P("data"), "t10k", 30, 2);
    write_idx_set(P("notest"), "train", 100, 1);
    unlink(P("notest/t10k-images-idx3-ubyte"));
}

/* Whole file as a NUL-terminated malloc'd string (NULL if unreadable). */
static char *slurp(const char *path, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
        len += got;
        if (cap - len - 1 == 0) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

/* ---- running dn_main ------------------------------------------------------------ */

typedef struct {
    int status;  /* exit status; 1000 + signal if killed */
    char *out;   /* captured stdout */
    char *err;   /* captured stderr */
} run_result;

static void run_free(run_result *r) {
    free(r->out);
    free(r->err);
}

static int g_tty; /* run() puts the child's stderr on a pseudo-terminal */

/* A pseudo-terminal pair; the parent keeps the slave open too, so nothing
 * written to it is lost when the child exits. */
static void open_pty(int *master, int *slave) {
    *master = posix_openpt(O_RDWR | O_NOCTTY);
    ck_assert(*master >= 0 && grantpt(*master) == 0 && unlockpt(*master) == 0);
    const char *name = ptsname(*master);
    ck_assert_ptr_nonnull(name);
    *slave = open(name, O_RDWR | O_NOCTTY);
    ck_assert(*slave >= 0);
}

/* Reads what the child writes to the terminal until it exits. */
static char *pty_collect(int master, pid_t pid, int *ws) {
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap), scratch[4096];
    ck_assert_ptr_nonnull(buf);
    for (int done = 0;;) {
        struct pollfd pfd = {.fd = master, .events = POLLIN};
        while (poll(&pfd, 1, done ? 0 : 20) > 0 && (pfd.revents & POLLIN)) {
            ssize_t n = read(master, len + 1 < cap ? buf + len : scratch,
                             len + 1 < cap ? cap - len - 1 : sizeof scratch);
            if (n <= 0)
                break;
            if (len + 1 < cap)
                len += (size_t)n;
        }
        if (done)
            break;
        pid_t w = waitpid(pid, ws, WNOHANG);
        ck_assert(w == 0 || w == pid);
        done = w == pid;
    }
    buf[len] = '\0';
    return buf;
}

/* Runs dn_main(toy_active, {"toy", args..., NULL}) in a child process. */
static run_result run_v(const char *first, va_list ap) {
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
    int master = -1, slave = -1;
    if (g_tty)
        open_pty(&master, &slave);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        if (!freopen(out_path, "w", stdout) ||
            (g_tty ? dup2(slave, STDERR_FILENO) < 0 : !freopen(err_path, "w", stderr)))
            _exit(99);
        if (g_tty) {
            close(master);
            close(slave);
        }
        int rc = dn_main(toy_active, argc, (char **)argv);
        exit(rc); /* not _exit: LeakSanitizer checks at exit */
    }
    int ws = 0;
    run_result r;
    if (g_tty) {
        r.err = pty_collect(master, pid, &ws);
        close(master);
        close(slave);
    } else {
        ck_assert(waitpid(pid, &ws, 0) == pid);
        r.err = slurp(err_path, NULL);
    }
    r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 1000 + WTERMSIG(ws);
    r.out = slurp(out_path, NULL);
    ck_assert(r.out && r.err);
    return r;
}

/* run(args..., NULL) */
static run_result run(const char *first, ...) {
    va_list ap;
    va_start(ap, first);
    run_result r = run_v(first, ap);
    va_end(ap);
    return r;
}

/* Runs, expects `status`, frees the output. */
static void run_expect(int status, const char *first, ...) {
    va_list ap;
    va_start(ap, first);
    run_result r = run_v(first, ap);
    va_end(ap);
    ck_assert_msg(r.status == status, "exit %d, expected %d; stderr: %s", r.status, status, r.err);
    run_free(&r);
}

static int file_equal(const char *a, const char *b) {
    size_t la, lb;
    char *x = slurp(a, &la), *y = slurp(b, &lb);
    int same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

static int matches(const char *text, const char *pattern) {
    regex_t re;
    ck_assert(regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE | REG_NOSUB) == 0);
    int ok = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static int count_lines_starting(const char *text, const char *prefix) {
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        n += strncmp(l, prefix, len) == 0;
    return n;
}

/* The last "test_acc X" value in text (-1 when absent). */
static double last_test_acc(const char *text) {
    double acc = -1;
    for (const char *p = strstr(text, "test_acc "); p; p = strstr(p + 1, "test_acc "))
        acc = strtod(p + 9, NULL);
    return acc;
}

/* Copies text without the " time ...s" part of epoch lines. */
static char *strip_times(const char *text) {
    char *out = malloc(strlen(text) + 1), *o = out;
    ck_assert(out != NULL);
    for (const char *p = text; *p;) {
        if (strncmp(p, " time ", 6) == 0) {
            p = strchr(p, '\n');
            if (!p)
                break;
        }
        *o++ = *p++;
    }
    *o = '\0';
    return out;
}

/* Copies a metrics CSV without its 7th column (seconds). */
static char *strip_seconds(const char *csv) {
    char *out = malloc(strlen(csv) + 1), *o = out;
    ck_assert(out != NULL);
    for (const char *line = csv; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        int field = 1;
        for (size_t k = 0; k < len; k++) {
            if (line[k] == ',')
                field++;
            if (field != 7)
                *o++ = line[k];
        }
        *o++ = '\n';
        line += len + (nl ? 1 : 0);
    }
    *o = '\0';
    return out;
}

/* ---- tests ---------------------------------------------------------------------- */

START_TEST(test_help_version) {
    setup("help");
    run_result r = run("--help", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "Usage: toy COMMAND"));
    ck_assert_ptr_nonnull(strstr(r.out, "gradcheck"));
    ck_assert_ptr_nonnull(strstr(r.out, "Exit status:"));
    ck_assert_ptr_nonnull(strstr(r.out, "  3        input file error"));
    ck_assert_str_eq(r.err, "");
    run_free(&r);

    r = run("--version", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, "toy (dngen 0.1.0, spec specs/toy.yaml 0123456789abcdef)\n");
    run_free(&r);

    r = run("train", "--help", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "Usage: toy train [OPTIONS]"));
    ck_assert(matches(r.out, "^  --epochs N +epochs to train \\(default 3\\)$"));
    ck_assert(matches(r.out, "^  --batch-size N +rows per batch \\(default 32\\)$"));
    ck_assert(matches(r.out, "^  --lr X .*\\(default 0.05\\)$"));
    ck_assert(matches(r.out, "^  --resume CKPT "));
    ck_assert(matches(r.out, "^  4 +output write error"));
    ck_assert(matches(r.out, "^  --val-split F .*\\(default 0\\)$"));
    ck_assert(matches(r.out, "^  --early-stopping P +stop after P epochs without a val_acc improvement"));
    ck_assert(!matches(r.out, "--early-stopping.*default"));
    ck_assert(matches(r.out, "^  --log-steps FILE "));
    ck_assert(matches(r.out, "^  --metrics FILE .*JSON Lines"));
    run_free(&r);

    r = run("eval", "--help", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert(matches(r.out, "^  --weights FILE "));
    ck_assert(matches(r.out, "^  --batch-size N +rows per batch \\(default 256\\)$"));
    ck_assert(matches(r.out, "^  --mc N +MC dropout"));
    ck_assert(matches(r.out, "^  --mc-seed S .*\\(default 0\\)$"));
    ck_assert(!matches(r.out, "--epochs"));
    run_free(&r);

    r = run(NULL);
    ck_assert_int_eq(r.status, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "Usage: toy COMMAND"));
    run_free(&r);
}
END_TEST

/* One bad command line and the exact stderr it must produce. */
typedef struct {
    const char *args[6];
    const char *message;
} bad_case;

static const bad_case bad_cases[] = {
    {{"train", "--epochs", "x"}, "toy: --epochs: expected an integer >= 1, got 'x'\n"},
    {{"train", "--epochs", "0"}, "toy: --epochs: expected an integer >= 1, got '0'\n"},
    {{"train", "--epochs", "1.5"}, "toy: --epochs: expected an integer >= 1, got '1.5'\n"},
    {{"train", "--epochs", " 3"}, "toy: --epochs: expected an integer >= 1, got ' 3'\n"},
    {{"train", "--epochs=99999999999"}, "toy: --epochs: expected an integer >= 1, got '99999999999'\n"},
    {{"train", "--epochs"}, "toy: --epochs: missing value N\n"},
    {{"train", "--batch-size", "0"}, "toy: --batch-size: expected an integer in [1, 1048576], got '0'\n"},
    {{"train", "--lr", "-1"}, "toy: --lr: expected a number > 0, got '-1'\n"},
    {{"train", "--lr", "abc"}, "toy: --lr: expected a number > 0, got 'abc'\n"},
    {{"train", "--lr", "nan"}, "toy: --lr: expected a number > 0, got 'nan'\n"},
    {{"train", "--lr", "1e99"}, "toy: --lr: expected a number > 0, got '1e99'\n"},
    {{"train", "--seed", "-1"}, "toy: --seed: expected an integer in [0, 18446744073709551615], got '-1'\n"},
    {{"train", "--seed", "18446744073709551616"},
     "toy: --seed: expected an integer in [0, 18446744073709551615], got '18446744073709551616'\n"},
    {{"train", "--threads", "0"}, "toy: --threads: expected an integer in [1, 1024], got '0'\n"},
    {{"train", "--max-steps", "0"}, "toy: --max-steps: expected an integer >= 1, got '0'\n"},
    {{"train", "--checkpoint-every", "-5"}, "toy: --checkpoint-every: expected an integer >= 1, got '-5'\n"},
    {{"train", "--save", ""}, "toy: --save: expected a non-empty value, got ''\n"},
    {{"train", "--no-shuffle=1"}, "toy: --no-shuffle: takes no value, got '1'\n"},
    {{"train", "--bogus"}, "toy: train: unknown option '--bogus' (try 'toy train --help')\n"},
    {{"train", "stray"}, "toy: train: unexpected argument 'stray' (try 'toy train --help')\n"},
    {{"eval", "--epochs", "3"}, "toy: eval: unknown option '--epochs' (try 'toy eval --help')\n"},
    {{"eval"}, "toy: eval: --weights FILE is required\n"},
    {{"gradcheck", "--samples", "0"}, "toy: --samples: expected an integer in [1, 1000000], got '0'\n"},
    {{"train", "--init", "a", "--resume", "b"}, "toy: train: --init and --resume cannot be used together\n"},
    {{"train", "--checkpoint-every", "3"}, "toy: train: --checkpoint-every needs --save FILE\n"},
    {{"fly"}, "toy: unknown command 'fly' (expected train, eval or gradcheck; try 'toy --help')\n"},
    {{"--version", "x"}, "toy: --version: unexpected argument 'x'\n"},
    {{"train", "--val-split", "1"}, "toy: --val-split: expected a number in [0, 1), got '1'\n"},
    {{"train", "--val-split", "-0.1"}, "toy: --val-split: expected a number in [0, 1), got '-0.1'\n"},
    {{"train", "--val-split", "nan"}, "toy: --val-split: expected a number in [0, 1), got 'nan'\n"},
    {{"train", "--val-split", "0.2x"}, "toy: --val-split: expected a number in [0, 1), got '0.2x'\n"},
    {{"train", "--val-split"}, "toy: --val-split: missing value F\n"},
    {{"train", "--early-stopping", "0"}, "toy: --early-stopping: expected an integer >= 1, got '0'\n"},
    {{"train", "--early-stopping", "2"}, "toy: train: --early-stopping needs --val-split F with F > 0\n"},
    {{"train", "--early-stopping", "2", "--val-split", "0"},
     "toy: train: --early-stopping needs --val-split F with F > 0\n"},
    {{"train", "--log-steps", ""}, "toy: --log-steps: expected a non-empty value, got ''\n"},
    {{"train", "--mc", "3"}, "toy: train: unknown option '--mc' (try 'toy train --help')\n"},
    {{"eval", "--weights", "w", "--mc", "0"}, "toy: --mc: expected an integer in [1, 100000], got '0'\n"},
    {{"eval", "--weights", "w", "--mc", "x"}, "toy: --mc: expected an integer in [1, 100000], got 'x'\n"},
    {{"eval", "--weights", "w", "--mc-seed", "3"}, "toy: eval: --mc-seed needs --mc N\n"},
    {{"eval", "--mc", "2", "--mc-seed", "-3"},
     "toy: --mc-seed: expected an integer in [0, 18446744073709551615], got '-3'\n"},
    {{"eval", "--weights", "w", "--val-split", "0.1"},
     "toy: eval: unknown option '--val-split' (try 'toy eval --help')\n"},
};

START_TEST(test_bad_arguments) {
    setup("badargs");
    const bad_case *c = &bad_cases[_i];
    run_result r = run(c->args[0], c->args[1], c->args[2], c->args[3], c->args[4], c->args[5]);
    ck_assert_msg(r.status == 2, "case %d: exit %d", _i, r.status);
    ck_assert_str_eq(r.err, c->message);
    ck_assert_str_eq(r.out, "");
    run_free(&r);
}
END_TEST

START_TEST(test_input_errors) {
    setup("inputs");
    /* Missing data says where data comes from (the README's commands once
     * ran into this with the spec's default directory). */
    static const char hint[] = "give the data directory with --data DIR (Fashion-MNIST: Debian package "
                               "dataset-fashion-mnist, installed in /usr/share/datasets/fashion-mnist)\n";
    char want[2400];
    run_result r = run("train", "--data", P("nonexistent"), NULL);
    ck_assert_int_eq(r.status, 3);
    snprintf(want, sizeof want, "toy: %s: no such directory; %s", P("nonexistent"), hint);
    ck_assert_str_eq(r.err, want);
    ck_assert_str_eq(r.out, "");
    run_free(&r);
    r = run("eval", "--weights", P("w.st"), "--data", P("nonexistent"), NULL);
    ck_assert_int_eq(r.status, 3);
    ck_assert_str_eq(r.err, want);
    run_free(&r);
    ck_assert(mkdir(P("empty"), 0777) == 0 || errno == EEXIST);
    r = run("train", "--data", P("empty"), NULL);
    ck_assert_int_eq(r.status, 3);
    snprintf(want, sizeof want, "toy: %s/train-images-idx3-ubyte: no such file (nor "
             "%s/train-images-idx3-ubyte.gz); %s", P("empty"), P("empty"), hint);
    ck_assert_str_eq(r.err, want);
    run_free(&r);
    /* The hint names the package's real directory (when it is installed). */
    if (system("dpkg-query -W -f='${Status}' dataset-fashion-mnist 2>/dev/null | "
               "grep -q 'install ok installed'") == 0)
        ck_assert_msg(system("dpkg -L dataset-fashion-mnist | "
                             "grep -qx /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") == 0,
                      "dataset-fashion-mnist does not install /usr/share/datasets/fashion-mnist");
    /* Other errors about the data keep their own message, without the hint. */
    write_idx_set(P("empty"), "train", 100, 1);
    unlink(P("empty/train-labels-idx1-ubyte"));
    r = run("train", "--data", P("empty"), NULL);
    ck_assert_int_eq(r.status, 3);
    ck_assert_msg(matches(r.err, "^toy: .*/train-labels-idx1-ubyte: no such file \\(nor .*\\.gz\\)\n$"),
                  "%s", r.err);
    run_free(&r);

    /* A test set that exists but is broken is an error, not "no test set". */
    ck_assert(mkdir(P("broken"), 0777) == 0 || errno == EEXIST);
    write_idx_set(P("broken"), "train", 100, 1);
    write_bytes(P("broken/t10k-images-idx3-ubyte"), "junk", 4);
    run_expect(3, "train", "--data", P("broken"), NULL);
    run_expect(3, "eval", "--weights", P("nofile.safetensors"), "--data", P("data"), NULL);
    run_expect(3, "train", "--data", P("data"), "--init", P("nofile.safetensors"), NULL);
    run_expect(3, "train", "--data", P("data"), "--resume", P("nofile.safetensors"), NULL);
    /* Output errors: a --save or --metrics path in a missing directory. */
    run_expect(4, "train", "--data", P("data"), "--epochs", "1", "--save", P("no/dir/w.st"), NULL);
    run_expect(4, "train", "--data", P("data"), "--epochs", "1", "--metrics", P("no/dir/m.csv"), NULL);
    run_expect(4, "train", "--data", P("data"), "--epochs", "1", "--metrics", P("no/dir/m.jsonl"), NULL);
    run_expect(4, "train", "--data", P("data"), "--epochs", "1", "--log-steps", P("no/dir/s.csv"), NULL);
    /* A split that leaves either part empty (100 training samples). */
    r = run("train", "--data", P("data"), "--val-split", "0.004", NULL);
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.err, "toy: --val-split 0.004: round(0.004 * 100) = 0 training samples would "
                            "be held out; use a larger fraction\n");
    run_free(&r);
    r = run("train", "--data", P("data"), "--val-split", "0.996", NULL);
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.err, "toy: --val-split 0.996 would hold out all 100 training samples; use a "
                            "smaller fraction\n");
    run_free(&r);
    run_expect(0, "train", "--data", P("data"), "--val-split", "0.006", "--epochs", "1", NULL);
    run_expect(0, "train", "--data", P("data"), "--val-split", "0.994", "--epochs", "1", NULL);
}
END_TEST

START_TEST(test_learns) {
    setup("learns");
    run_result r = run("train", "--data", P("data"), "--epochs", "15", NULL);
    ck_assert_msg(r.status == 0, "stderr: %s", r.err);
    double acc = last_test_acc(r.out);
    ck_assert_msg(acc >= 0.9, "test accuracy %.4f after 15 epochs:\n%s", acc, r.out);
    ck_assert_int_eq(count_lines_starting(r.out, "epoch "), 15);
    run_free(&r);
}
END_TEST

START_TEST(test_output_format) {
    setup("format");
    run_result r = run("train", "--data", P("data"), "--epochs", "2", "--threads", "1", NULL);
    ck_assert_int_eq(r.status, 0);
    const char *line = "[0-9]+\\.[0-9]{4}";
    char pat[512];
    ck_assert(matches(r.out, "^training toy: 27 parameters, 100 train / 30 test samples, batch 32, "
                             "2 epochs, seed 7, 1 thread$"));
    for (int e = 1; e <= 2; e++) {
        snprintf(pat, sizeof pat, "^epoch %d: train_loss %s train_acc %s test_acc %s time [0-9]+\\.[0-9]{3}s$",
                 e, line, line, line);
        ck_assert_msg(matches(r.out, pat), "no line for epoch %d in:\n%s", e, r.out);
    }
    ck_assert_int_eq(count_lines_starting(r.out, ""), 3);
    run_free(&r);

    r = run("train", "--data", P("notest"), "--epochs", "1", "--seed", "9", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert(matches(r.out, "^training toy: 27 parameters, 100 train / 0 test samples, batch 32, "
                             "1 epoch, seed 9, [0-9]+ threads?$"));
    run_free(&r);
    r = run("train", "--data", P("notest"), "--epochs", "1", "--threads", "2", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_msg(matches(r.out, "^training toy: .*, 1 epoch, seed 7, 2 threads$"), "%s", r.out);
    ck_assert(matches(r.out, "^epoch 1: train_loss [0-9.]+ train_acc [0-9.]+ time [0-9.]+s$"));
    run_free(&r);

    r = run("train", "--data", P("data"), "--epochs", "2", "--quiet", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, "");
    run_free(&r);
}
END_TEST

/* Metrics: steps per epoch with the last partial batch, test columns. */
START_TEST(test_metrics_and_partial_batch) {
    setup("metrics");
    run_expect(0, "train", "--data", P("data"), "--epochs", "2", "--metrics", P("m.csv"), NULL);
    char *csv = slurp(P("m.csv"), NULL);
    ck_assert_ptr_nonnull(csv);
    ck_assert(matches(csv, "^epoch,step,train_loss,train_acc,test_loss,test_acc,seconds,val_loss,val_acc,lr\n"
                           "1,4,[0-9.e-]+,[01]\\.[0-9]{6},[0-9.e-]+,[01]\\.[0-9]{6},[0-9]+\\.[0-9]{3},,,0\\.05\n"
                           "2,8,[^,]+,[^,]+,[^,]+,[^,]+,[^,]+,,,0\\.05\n$"));
    free(csv);

    run_expect(0, "train", "--data", P("notest"), "--epochs", "1", "--metrics", P("n.csv"), NULL);
    csv = slurp(P("n.csv"), NULL);
    ck_assert(matches(csv, "^1,4,[0-9.e-]+,[01]\\.[0-9]{6},,,[0-9.]+,,,0\\.05\n$"));
    free(csv);

    /* Batch sizes around the sample count: ceil(100 / B) steps per epoch. */
    static const int sizes[][2] = {{50, 2}, {33, 4}, {99, 2}, {100, 1}, {128, 1}, {1, 100}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        run_expect(0, "train", "--data", P("data"), "--epochs", "1", "--batch-size",
                   F("%d", sizes[k][0]), "--metrics", P("b.csv"), "--no-shuffle", NULL);
        csv = slurp(P("b.csv"), NULL);
        char pat[64];
        snprintf(pat, sizeof pat, "^1,%d,", sizes[k][1]);
        ck_assert_msg(matches(csv, pat), "batch %d: %s", sizes[k][0], csv);
        free(csv);
    }
}
END_TEST

START_TEST(test_max_steps) {
    setup("maxsteps");
    run_result r = run("train", "--data", P("data"), "--epochs", "5", "--max-steps", "6",
                       "--metrics", P("m.csv"), "--save", P("w.st"), NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(count_lines_starting(r.out, "epoch "), 2);
    ck_assert_int_eq(count_lines_starting(r.out, "epoch 2: "), 1);
    run_free(&r);
    char *csv = slurp(P("m.csv"), NULL);
    ck_assert(matches(csv, "\n1,4,[^\n]*\n2,6,[^\n]*\n$"));
    free(csv);
    ck_assert(access(P("w.st"), F_OK) == 0);
    /* Stopping exactly at an epoch end does not start (or report) the next. */
    r = run("train", "--data", P("data"), "--epochs", "5", "--max-steps", "8", NULL);
    ck_assert_int_eq(count_lines_starting(r.out, "epoch "), 2);
    run_free(&r);
}
END_TEST

/* Sample index of each trained row, from a trace of `steps` steps: rows[]
 * gets them in order, per_step[s] the row count of step s. Returns rows. */
static int read_trace(const char *path, int *rows, int max_rows, int *per_step, int steps) {
    unsigned char img[100 * TOY_IN], lab[100];
    make_samples(100, 1, img, lab);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    int n = 0, step, row, px[TOY_IN];
    memset(per_step, 0, (size_t)steps * sizeof *per_step);
    while (fscanf(f, "%d %d %d %d %d %d %d %d %d %d", &step, &row, &px[0], &px[1], &px[2], &px[3],
                  &px[4], &px[5], &px[6], &px[7]) == 10) {
        ck_assert(n < max_rows && step >= 0 && step < steps && row == per_step[step]);
        per_step[step]++;
        int found = -1;
        for (int i = 0; i < 100 && found < 0; i++) {
            int same = 1;
            for (int k = 0; k < TOY_IN; k++)
                same &= img[i * TOY_IN + k] == px[k];
            if (same)
                found = i;
        }
        ck_assert_msg(found >= 0, "trace row %d of step %d is no training sample", row, step);
        rows[n++] = found;
    }
    fclose(f);
    return n;
}

/* Batches follow dn_shuffle(seed, epoch), the last partial batch included,
 * and --no-shuffle keeps file order. */
START_TEST(test_batch_order) {
    setup("order");
    for (int shuffle = 1; shuffle >= 0; shuffle--) {
        toy_trace = fopen(P("trace.txt"), "w");
        ck_assert_ptr_nonnull(toy_trace);
        if (shuffle)
            run_expect(0, "train", "--data", P("data"), "--max-steps", "6", "--seed", "5", NULL);
        else
            run_expect(0, "train", "--data", P("data"), "--max-steps", "6", "--no-shuffle", NULL);
        fclose(toy_trace);
        toy_trace = NULL;
        int rows[200], per_step[6];
        ck_assert_int_eq(read_trace(P("trace.txt"), rows, 200, per_step, 6), 164);
        static const int want_rows[6] = {32, 32, 32, 4, 32, 32};
        uint32_t perm[100];
        for (int s = 0; s < 6; s++)
            ck_assert_int_eq(per_step[s], want_rows[s]);
        for (int e = 0; e < 2; e++) {
            dn_shuffle(perm, 100, 5, (uint32_t)e);
            for (int i = 0; i < (e ? 64 : 100); i++)
                ck_assert_int_eq(rows[e * 100 + i], shuffle ? (int)perm[i] : i);
        }
    }
}
END_TEST

/* The first step is Adam's with t = 1: every weight with a non-zero
 * gradient moves by lr (m_hat / sqrt(v_hat) = sign(g)). */
START_TEST(test_first_step_is_adam) {
    setup("adam");
    run_expect(0, "train", "--data", P("data"), "--max-steps", "1", "--lr", "0.01", "--save",
               P("w.st"), NULL);
    float init[TOY_NP], after[TOY_NP];
    toy_init(init, 7);
    char err[DN_ERR_MAX];
    ck_assert_msg(dn_ckpt_load(&toy_model, P("w.st"), after, NULL, NULL, NULL, NULL, err) == 0, "%s", err);
    for (int j = 0; j < TOY_NP; j++) {
        double d = fabs((double)after[j] - init[j]);
        ck_assert_msg(d == 0 || fabs(d - 0.01) < 1e-5, "param %d moved by %g", j, d);
    }
}
END_TEST

START_TEST(test_save_eval_roundtrip) {
    setup("roundtrip");
    run_result r = run("train", "--data", P("data"), "--epochs", "4", "--save", P("w.st"),
                       "--metrics", P("m.csv"), NULL);
    ck_assert_int_eq(r.status, 0);
    double train_acc = last_test_acc(r.out);
    run_free(&r);
    char *csv = slurp(P("m.csv"), NULL);
    const char *row = strstr(csv, "\n4,");
    ck_assert_ptr_nonnull(row);
    double csv_loss = 0;
    ck_assert(sscanf(row, "\n4,%*d,%*f,%*f,%lf", &csv_loss) == 1);
    free(csv);
    for (int k = 0; k < 2; k++) {
        r = k ? run("eval", "--weights", P("w.st"), "--data", P("data"), "--batch-size", "7", NULL)
              : run("eval", "--weights", P("w.st"), "--data", P("data"), NULL);
        ck_assert_msg(r.status == 0, "stderr: %s", r.err);
        ck_assert(matches(r.out, "^test_loss [0-9]+\\.[0-9]{4} test_acc [01]\\.[0-9]{4}\n$"));
        double loss = strtod(r.out + 10, NULL);
        ck_assert_double_eq_tol(last_test_acc(r.out), train_acc, 1e-9);
        ck_assert_double_eq_tol(loss, csv_loss, 1e-4);
        run_free(&r);
    }
    /* --init from the saved weights starts where training ended. */
    r = run("train", "--data", P("data"), "--epochs", "1", "--init", P("w.st"), "--lr", "1e-9", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_double_eq_tol(last_test_acc(r.out), train_acc, 1e-9);
    run_free(&r);
}
END_TEST

/* Writes a weights file with the given tensors (data: zeros). */
static void write_weights(const char *path, const dn_st_tensor *t, int n, const char *hash) {
    dn_st_meta meta[1] = {{"spec_hash", hash}};
    char err[DN_ERR_MAX];
    ck_assert_msg(dn_st_write(path, t, n, meta, hash ? 1 : 0, err) == 0, "%s", err);
}

/* eval --weights and train --init with path both fail with `message`. */
static void expect_load_error(const char *path, const char *message) {
    char want[2048];
    snprintf(want, sizeof want, "toy: %s: %s\n", path, message);
    run_result r = run("eval", "--weights", path, "--data", P("data"), NULL);
    ck_assert_int_eq(r.status, 3);
    ck_assert_str_eq(r.err, want);
    run_free(&r);
    r = run("train", "--init", path, "--data", P("data"), NULL);
    ck_assert_int_eq(r.status, 3);
    ck_assert_str_eq(r.err, want);
    ck_assert_str_eq(r.out, "");
    run_free(&r);
}

START_TEST(test_load_rejects) {
    setup("rejects");
    static const float zeros[64];
    dn_st_tensor w = {"fc.weight", 2, {3, 8}, zeros}, b = {"fc.bias", 1, {3}, zeros};
    dn_st_tensor w_bad = {"fc.weight", 2, {4, 8}, zeros}, b_bad = {"fc.bias", 2, {3, 1}, zeros};
    dn_st_tensor extra = {"extra.w", 1, {2}, zeros}, extra2 = {"head.bias", 1, {2}, zeros};
    dn_st_tensor opt = {"optimizer.exp_avg.fc.bias", 1, {3}, zeros};

    dn_st_tensor only_w[] = {w};
    write_weights(P("missing.st"), only_w, 1, NULL);
    expect_load_error(P("missing.st"), "missing tensor 'fc.bias'");
    write_weights(P("empty.st"), NULL, 0, NULL);
    expect_load_error(P("empty.st"), "missing tensors 'fc.weight', 'fc.bias'");

    dn_st_tensor with_extra[] = {w, extra, b};
    write_weights(P("extra.st"), with_extra, 3, NULL);
    expect_load_error(P("extra.st"), "unexpected tensor 'extra.w' (not a parameter of model 'toy')");
    dn_st_tensor with_extras[] = {w, extra, b, extra2};
    write_weights(P("extras.st"), with_extras, 4, NULL);
    expect_load_error(P("extras.st"),
                      "unexpected tensors 'extra.w', 'head.bias' (not parameters of model 'toy')");

    dn_st_tensor shaped[] = {w_bad, b};
    write_weights(P("shape.st"), shaped, 2, NULL);
    expect_load_error(P("shape.st"), "tensor 'fc.weight' has shape [4, 8], model expects [3, 8]");
    dn_st_tensor shaped_b[] = {w, b_bad};
    write_weights(P("shapeb.st"), shaped_b, 2, NULL);
    expect_load_error(P("shapeb.st"), "tensor 'fc.bias' has shape [3, 1], model expects [3]");

    /* PyTorch-made files (no metadata) and stray optimizer.* tensors load;
     * a different spec hash only warns. */
    dn_st_tensor ok[] = {b, w, opt};
    write_weights(P("ok.st"), ok, 3, NULL);
    run_result r = run("eval", "--weights", P("ok.st"), "--data", P("data"), NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_str_eq(r.err, "");
    run_free(&r);
    write_weights(P("other.st"), ok, 2, "fedcba9876543210");
    r = run("eval", "--weights", P("other.st"), "--data", P("data"), NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert(matches(r.err, "^toy: warning: .*other.st: written by model '\\?' with spec hash "
                             "fedcba9876543210, this trainer's spec hash is 0123456789abcdef\n$"));
    run_free(&r);

    /* A weights-only file cannot be resumed. */
    r = run("train", "--resume", P("ok.st"), "--data", P("data"), NULL);
    ck_assert_int_eq(r.status, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "no 'spec_hash' metadata; not a checkpoint written by a dngen trainer"));
    run_free(&r);
    run_expect(0, "train", "--data", P("data"), "--epochs", "1", "--save", P("wo.st"), NULL);
    r = run("train", "--resume", P("wo.st"), "--data", P("data"), NULL);
    ck_assert_int_eq(r.status, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "holds weights only, not a training state"));
    run_free(&r);
}
END_TEST

/* Reference: one uninterrupted 3-epoch run (12 steps). */
static void reference_run(char **out, char **csv) {
    run_result r = run("train", "--data", P("data"), "--epochs", "3", "--save", P("ref.st"),
                       "--metrics", P("ref.csv"), NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    *out = strip_times(r.out);
    char *raw = slurp(P("ref.csv"), NULL);
    *csv = strip_seconds(raw);
    free(raw);
    run_free(&r);
}

/* Resumes state.st to the end and checks weights, epoch lines and metrics
 * against the reference. */
static void resume_and_compare(const char *ref_out, const char *ref_csv, int k) {
    run_result r = run("train", "--data", P("data"), "--epochs", "3", "--save", P("final.st"),
                       "--metrics", P("run.csv"), "--resume", P("state.st"), NULL);
    ck_assert_msg(r.status == 0, "resume after step %d: %s", k, r.err);
    ck_assert_msg(file_equal(P("final.st"), P("ref.st")),
                  "stopped after step %d: final weights differ from the uninterrupted run", k);
    char *out = strip_times(r.out);
    const char *line = strchr(out, '\n') + 1; /* skip the header line */
    ck_assert_msg(strstr(ref_out, line) != NULL, "step %d: resumed epoch lines\n%s\nnot in\n%s", k,
                  line, ref_out);
    free(out);
    char *raw = slurp(P("run.csv"), NULL);
    char *csv = strip_seconds(raw);
    ck_assert_msg(strcmp(csv, ref_csv) == 0, "step %d: metrics\n%s\nvs\n%s", k, csv, ref_csv);
    free(raw);
    free(csv);
    run_free(&r);
}

/* The models test_resume_bit_identical trains, by loop index. */
static const dn_model *resume_model(int i) {
    const dn_model *const models[] = {&toy_model,         &toy_fused_model, &toy_sgd_model,
                                      &toy_rmsprop_model, &toy_clip_model,  &toy_fused_sched_model};
    return models[i];
}

START_TEST(test_resume_bit_identical) {
    setup("resume");
    toy_active = resume_model(_i);
    char *ref_out, *ref_csv;
    reference_run(&ref_out, &ref_csv);
    /* Mid-epoch, epoch boundaries (4, 8), the last partial batch (11 -> 12). */
    static const int stops[] = {1, 3, 4, 5, 8, 11, 12};
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
        int k = stops[i];
        run_expect(0, "train", "--data", P("data"), "--epochs", "3", "--save", P("state.st"),
                   "--checkpoint-every", "1000", "--max-steps", F("%d", k), "--metrics", P("run.csv"),
                   NULL);
        resume_and_compare(ref_out, ref_csv, k);
    }
    /* A crash (SIGKILL in the 8th step) leaves the periodic checkpoint of
     * step 6 and the metrics of epoch 1; resuming from them still ends
     * identical. */
    toy_raise_step = 7;
    toy_raise_sig = SIGKILL;
    run_result r = run("train", "--data", P("data"), "--epochs", "3", "--save", P("state.st"),
                       "--checkpoint-every", "3", "--metrics", P("run.csv"), NULL);
    ck_assert_int_eq(r.status, 1000 + SIGKILL);
    run_free(&r);
    toy_raise_step = -1;
    resume_and_compare(ref_out, ref_csv, 6);
    free(ref_out);
    free(ref_csv);
}
END_TEST

/* A step schedule's lr in the epoch lines (0.05 halved per epoch), and
 * after a resume with another --lr; a plateau schedule needs a validation split, cuts its lr when the
 * validation accuracy stops improving, and resumes from any step to the same
 * weights. */
START_TEST(test_schedule_runs) {
    setup("sched");
    toy_active = &toy_sgd_model;
    run_result r = run("train", "--data", P("data"), "--epochs", "3", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_msg(matches(r.out, "epoch 1: [^\n]* lr 0\\.05 time [^\n]*\nepoch 2: [^\n]* lr 0\\.025 time "
                                 "[^\n]*\nepoch 3: [^\n]* lr 0\\.0125 time "), "%s", r.out);
    run_free(&r);
    /* Resumed with another --lr: the schedule goes on from the lr it had
     * reached, scaled by new / old; without a schedule the new lr holds. */
    run_expect(0, "train", "--data", P("data"), "--epochs", "3", "--save", P("s.st"), "--checkpoint-every", "100",
               "--max-steps", "5", NULL);
    r = run("train", "--data", P("data"), "--epochs", "3", "--resume", P("s.st"), "--lr", "0.2", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_ptr_nonnull(strstr(r.err, "run was saved with --lr 0.05, continuing with --lr 0.2"));
    ck_assert_msg(matches(r.out, "epoch 2: [^\n]* lr 0\\.1 time [^\n]*\nepoch 3: [^\n]* lr 0\\.05 time "), "%s",
                  r.out);
    run_free(&r);
    toy_active = &toy_model;
    run_expect(0, "train", "--data", P("data"), "--epochs", "3", "--save", P("s.st"), "--checkpoint-every", "100",
               "--max-steps", "5", "--metrics", P("m.csv"), NULL);
    run_expect(0, "train", "--data", P("data"), "--epochs", "3", "--resume", P("s.st"), "--lr", "0.2", "--metrics",
               P("m.csv"), NULL);
    char *csv = slurp(P("m.csv"), NULL);
    ck_assert_msg(matches(csv, "\n1,4,[^\n]*,0\\.05\n2,8,[^\n]*,0\\.2\n3,12,[^\n]*,0\\.2\n$"), "%s", csv);
    free(csv);
    toy_active = &toy_plateau_model;
    r = run("train", "--data", P("data"), "--epochs", "2", NULL);
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.err, "toy: the plateau schedule watches the validation accuracy; give --val-split F "
                            "(e.g. --val-split 0.1)\n");
    run_free(&r);
#define PLATEAU_ARGS "--data", P("data"), "--val-split", "0.2", "--epochs", "8"
    r = run("train", PLATEAU_ARGS, "--save", P("ref.st"), NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_msg(strstr(r.out, " lr 0.025 time ") != NULL, "the lr was never cut:\n%s", r.out);
    char *ref_out = strip_times(r.out);
    run_free(&r);
    static const int stops[] = {2, 3, 9, 13, 20};
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
        run_expect(0, "train", PLATEAU_ARGS, "--save", P("state.st"), "--checkpoint-every", "1000",
                   "--max-steps", F("%d", stops[i]), NULL);
        r = run("train", PLATEAU_ARGS, "--save", P("final.st"), "--resume", P("state.st"), NULL);
        ck_assert_msg(r.status == 0, "resume after step %d: %s", stops[i], r.err);
        ck_assert_msg(file_equal(P("final.st"), P("ref.st")), "stopped after step %d: weights differ", stops[i]);
        char *out = strip_times(r.out);
        const char *body = strchr(out, '\n') + 1;
        ck_assert_msg(strstr(ref_out, body) != NULL, "step %d:\n%s\nnot in\n%s", stops[i], body, ref_out);
        free(out);
        run_free(&r);
    }
#undef PLATEAU_ARGS
    free(ref_out);
}
END_TEST

START_TEST(test_resume_refuses_other_runs) {
    setup("refuse");
    run_expect(0, "train", "--data", P("data"), "--epochs", "3", "--save", P("s.st"),
               "--checkpoint-every", "100", "--max-steps", "5", NULL);
    struct {
        const char *opt, *val, *needle;
    } cases[] = {
        {"--batch-size", "16", "run was saved with --batch-size 32, the command line gives 16; a "
                               "different batch size cannot continue the same run\n"},
        {"--seed", "8", "run was saved with --seed 7, the command line gives 8"},
        {"--no-shuffle", NULL, "run was saved without --no-shuffle"},
        {"--data", P("data2"), "run was saved with 100 training samples"},
    };
    ck_assert(mkdir(P("data2"), 0777) == 0 || errno == EEXIST);
    write_idx_set(P("data2"), "train", 90, 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_result r = cases[i].val
                           ? run("train", "--data", P("data"), "--resume", P("s.st"), cases[i].opt,
                                 cases[i].val, NULL)
                           : run("train", "--data", P("data"), "--resume", P("s.st"), cases[i].opt, NULL);
        ck_assert_int_eq(r.status, 3);
        ck_assert_msg(strstr(r.err, cases[i].needle) != NULL, "%s", r.err);
        run_free(&r);
    }
    /* A state saved by another spec is refused. */
    dn_model other = toy_model;
    other.spec_hash = "fedcba9876543210";
    float p[TOY_NP] = {0};
    dn_train_state st;
    memset(&st, 0, sizeof st);
    st.seed = 7;
    st.batch_size = 32;
    st.shuffle = 1;
    st.n_train = 100;
    char err[DN_ERR_MAX];
    dn_opt_bufs ob = {{p, p, NULL}};
    ck_assert(dn_ckpt_save(&other, P("o.st"), p, &ob, NULL, &st, err) == 0);
    run_result r = run("train", "--data", P("data"), "--resume", P("o.st"), NULL);
    ck_assert_int_eq(r.status, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "spec hash fedcba9876543210, this trainer's spec hash is "
                                        "0123456789abcdef; a run can only be resumed"));
    run_free(&r);
    /* ... and the same state under the right hash is accepted. */
    ck_assert(dn_ckpt_save(&toy_model, P("o.st"), p, &ob, NULL, &st, err) == 0);
    run_expect(0, "train", "--data", P("data"), "--resume", P("o.st"), "--epochs", "1", NULL);
}
END_TEST

START_TEST(test_threads_identical) {
    setup("threads");
    run_expect(0, "train", "--data", P("data"), "--epochs", "2", "--threads", "1", "--save",
               P("t1.st"), "--checkpoint-every", "3", "--batch-size", "20", NULL);
    run_expect(0, "train", "--data", P("data"), "--epochs", "2", "--threads", "2", "--save",
               P("t2.st"), "--checkpoint-every", "3", "--batch-size", "20", NULL);
    ck_assert(file_equal(P("t1.st"), P("t2.st")));
    /* ... and the seed does matter. */
    run_expect(0, "train", "--data", P("data"), "--epochs", "2", "--threads", "2", "--save",
               P("t3.st"), "--checkpoint-every", "3", "--batch-size", "20", "--seed", "8", NULL);
    ck_assert(!file_equal(P("t1.st"), P("t3.st")));
    /* The fused train_step_adam path gives the same weights and moments. */
    toy_active = &toy_fused_model;
    run_expect(0, "train", "--data", P("data"), "--epochs", "2", "--threads", "2", "--save",
               P("t4.st"), "--checkpoint-every", "3", "--batch-size", "20", NULL);
    ck_assert(file_equal(P("t1.st"), P("t4.st")));
}
END_TEST

START_TEST(test_nan_stops) {
    setup("nan");
    toy_active = _i ? &toy_fused_model : &toy_model;
    run_expect(0, "train", "--data", P("data"), "--save", P("before.st"), "--checkpoint-every", "2",
               "--max-steps", "4", NULL);
    toy_nan_step = 5; /* the 6th step */
    run_result r = run("train", "--data", P("data"), "--save", P("w.st"), "--checkpoint-every", "2",
                       "--metrics", P("m.csv"), NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.err, "toy: step 6: loss is nan, gradient of 'fc.weight' is not finite; "
                            "stopping (last checkpoint kept)\n");
    ck_assert_int_eq(count_lines_starting(r.out, "epoch "), 1);
    run_free(&r);
    /* The checkpoint is the one from step 4, not a NaN-poisoned one. */
    ck_assert(file_equal(P("w.st"), P("before.st")));
    char *csv = slurp(P("m.csv"), NULL);
    ck_assert(matches(csv, "\n1,4,[^\n]*\n$"));
    free(csv);
}
END_TEST

/* With clipping, a gradient whose norm is not finite stops the run as a
 * non-finite loss does: named, nothing updated, the last checkpoint kept. */
START_TEST(test_nonfinite_norm_stops) {
    setup("infnorm");
    toy_active = &toy_clip_model;
    run_expect(0, "train", "--data", P("data"), "--save", P("before.st"), "--checkpoint-every", "2",
               "--max-steps", "4", NULL);
    toy_inf_grad_step = 5; /* the 6th step */
    run_result r = run("train", "--data", P("data"), "--save", P("w.st"), "--checkpoint-every", "2", NULL);
    toy_inf_grad_step = -1;
    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.err, "toy: step 6: gradient norm is inf, gradient of 'fc.bias' is not finite; "
                            "stopping (last checkpoint kept)\n");
    run_free(&r);
    ck_assert(file_equal(P("w.st"), P("before.st")));
}
END_TEST

START_TEST(test_signal_saves_state) {
    setup("signal");
    char *ref_out, *ref_csv;
    reference_run(&ref_out, &ref_csv);
    toy_raise_step = 5; /* SIGTERM arrives during the 6th step */
    run_result r = run("train", "--data", P("data"), "--epochs", "3", "--save", P("state.st"),
                       "--metrics", P("run.csv"), NULL);
    ck_assert_int_eq(r.status, 143);
    char want[1400];
    snprintf(want, sizeof want, "toy: interrupted at step 6; state saved to %s\n", P("state.st"));
    ck_assert_str_eq(r.err, want);
    run_free(&r);
    toy_raise_step = -1;
    resume_and_compare(ref_out, ref_csv, 6);

    /* SIGINT at an epoch's last step: the epoch is reported first. */
    toy_raise_step = 3;
    toy_raise_sig = SIGINT;
    r = run("train", "--data", P("data"), "--epochs", "3", "--save", P("state.st"), "--metrics",
            P("run.csv"), NULL);
    ck_assert_int_eq(r.status, 130);
    ck_assert_int_eq(count_lines_starting(r.out, "epoch 1: "), 1);
    run_free(&r);
    toy_raise_step = -1;
    resume_and_compare(ref_out, ref_csv, 4);

    /* Without --save the run still stops, saying nothing was saved. */
    toy_raise_step = 2;
    r = run("train", "--data", P("data"), NULL);
    ck_assert_int_eq(r.status, 130);
    ck_assert_str_eq(r.err, "toy: interrupted at step 3; no --save given, state not saved\n");
    run_free(&r);
    free(ref_out);
    free(ref_csv);
}
END_TEST

START_TEST(test_gradcheck) {
    setup("gradcheck");
    run_result r = run("gradcheck", "--seed", "3", NULL);
    ck_assert_msg(r.status == 0, "%s%s", r.out, r.err);
    ck_assert(matches(r.out, "^fc\\.weight +worst_rel_err [0-9]\\.[0-9]e[-+][0-9]+  ok$"));
    ck_assert(matches(r.out, "^fc\\.bias +worst_rel_err [0-9]\\.[0-9]e[-+][0-9]+  ok$"));
    ck_assert_int_eq(count_lines_starting(r.out, ""), 2);
    run_free(&r);

    toy_grad_bug = 1;
    r = run("gradcheck", "--samples", "5", NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert(matches(r.out, "^fc\\.weight +worst_rel_err [^ ]+  ok$"));
    ck_assert(matches(r.out, "^fc\\.bias +worst_rel_err [^ ]+  FAIL$"));
    ck_assert_str_eq(r.err, "toy: gradcheck: 1 of 2 tensors above relative error 2e-02\n");
    run_free(&r);
}
END_TEST

/* ---- validation split ------------------------------------------------------------ */

/* The split as the brief defines it, computed here independently: Fisher-
 * Yates on DN_RNG_SPLIT (a = b = c = 0, i = position), the first
 * round(frac * n) entries held out. is_val[i] gets 1 for held-out samples. */
static uint32_t ref_split(uint32_t n, double frac, uint64_t seed, unsigned char *is_val) {
    static uint32_t perm[4096];
    ck_assert(n <= 4096);
    for (uint32_t i = 0; i < n; i++) {
        perm[i] = i;
        is_val[i] = 0;
    }
    for (uint32_t i = n; i-- > 1;) {
        uint32_t w = dn_rand_u32(seed, DN_RNG_SPLIT, 0, 0, 0, i);
        uint32_t j = (uint32_t)(((uint64_t)w * (i + 1)) >> 32), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    uint32_t k = (uint32_t)floor(frac * n + 0.5);
    for (uint32_t i = 0; i < k; i++)
        is_val[perm[i]] = 1;
    return k;
}

/* dn_split_make: sizes round(F * n), the two parts disjoint, complete, in
 * index order, the held-out part the reference's; seeds matter. */
START_TEST(test_split_sizes) {
    static const uint32_t ns[] = {1, 2, 3, 10, 100, 1000, 4096};
    static const double fs[] = {0, 0.05, 0.1, 0.15, 0.25, 0.5, 0.9, 0.99};
    static unsigned char is_val[4096];
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (size_t b = 0; b < sizeof fs / sizeof fs[0]; b++) {
            uint32_t n = ns[a];
            dn_split s;
            ck_assert(dn_split_make(n, fs[b], 11, &s) == 0);
            uint32_t k = ref_split(n, fs[b], 11, is_val);
            ck_assert_msg(s.n_val == k && s.n_fit == n - k, "n %u F %g: %u held out, want %u", n,
                          fs[b], s.n_val, k);
            ck_assert_uint_eq(dn_split_count(n, fs[b]), k);
            for (uint32_t i = 0; i < s.n_val; i++)
                ck_assert(is_val[s.val[i]] && (i == 0 || s.val[i] > s.val[i - 1]));
            for (uint32_t i = 0; i < s.n_fit; i++)
                ck_assert(!is_val[s.fit[i]] && (i == 0 || s.fit[i] > s.fit[i - 1]));
            dn_split_free(&s);
        }
    ck_assert_uint_eq(dn_split_count(100, 0.105), 11); /* round, not truncate */
    ck_assert_uint_eq(dn_split_count(10, 0.05), 1);    /* halves round up */
    /* Same seed, same split; another seed, another split. */
    dn_split s1, s2, s3;
    ck_assert(dn_split_make(1000, 0.1, 3, &s1) == 0 && dn_split_make(1000, 0.1, 3, &s2) == 0 &&
              dn_split_make(1000, 0.1, 4, &s3) == 0);
    ck_assert(memcmp(s1.val, s2.val, 100 * sizeof *s1.val) == 0);
    ck_assert(memcmp(s1.val, s3.val, 100 * sizeof *s1.val) != 0);
    dn_split_free(&s1);
    dn_split_free(&s2);
    dn_split_free(&s3);
}
END_TEST

/* Trains `steps` steps with a trace; returns the sample indices trained, in
 * order (count in *n). */
static void trace_split_run(const char *seed, const char *frac, int shuffle, int steps, int *rows,
                            int *n) {
    toy_trace = fopen(P("trace.txt"), "w");
    ck_assert_ptr_nonnull(toy_trace);
    if (shuffle)
        run_expect(0, "train", "--data", P("data"), "--max-steps", F("%d", steps), "--seed", seed,
                   "--val-split", frac, NULL);
    else
        run_expect(0, "train", "--data", P("data"), "--max-steps", F("%d", steps), "--seed", seed,
                   "--val-split", frac, "--no-shuffle", NULL);
    fclose(toy_trace);
    toy_trace = NULL;
    int per_step[16];
    *n = read_trace(P("trace.txt"), rows, 400, per_step, steps);
}

/* Training visits exactly the non-held-out samples: in index order with
 * --no-shuffle, else in the order dn_shuffle(seed, epoch) gives their
 * positions; the split follows the seed. */
START_TEST(test_split_training_set) {
    setup("split");
    unsigned char is_val[100];
    uint32_t k = ref_split(100, 0.25, 5, is_val), fit[100], nf = 0;
    ck_assert_uint_eq(k, 25);
    for (uint32_t i = 0; i < 100; i++)
        if (!is_val[i])
            fit[nf++] = i;
    int rows[400], n;
    trace_split_run("5", "0.25", 0, 3, rows, &n); /* 75 samples: 32 + 32 + 11 */
    ck_assert_int_eq(n, 75);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(rows[i], (int)fit[i]);
    /* Shuffled, two epochs: positions permuted per epoch, never a held-out sample. */
    trace_split_run("5", "0.25", 1, 6, rows, &n);
    ck_assert_int_eq(n, 150);
    uint32_t perm[75];
    for (int e = 0; e < 2; e++) {
        dn_shuffle(perm, 75, 5, (uint32_t)e);
        for (int i = 0; i < 75; i++)
            ck_assert_int_eq(rows[e * 75 + i], (int)fit[perm[i]]);
    }
    /* Same seed: same trace; another seed: another held-out set. */
    int again[400], n2;
    trace_split_run("5", "0.25", 1, 6, again, &n2);
    ck_assert(n2 == n && memcmp(rows, again, sizeof(int) * (size_t)n) == 0);
    unsigned char other[100];
    ref_split(100, 0.25, 6, other);
    ck_assert(memcmp(is_val, other, sizeof other) != 0);
    trace_split_run("6", "0.25", 0, 3, rows, &n);
    ck_assert_int_eq(n, 75);
    for (int i = 0; i < n; i++)
        ck_assert(!other[rows[i]]);
    int same = 1;
    for (int i = 0; i < n; i++)
        same &= rows[i] == (int)fit[i];
    ck_assert(!same);
}
END_TEST

/* Field `k` (0-based) of a CSV row as a number; NAN when empty. */
static double csv_field(const char *row, int k) {
    for (int i = 0; i < k; i++) {
        row = strchr(row, ',');
        ck_assert_ptr_nonnull(row);
        row++;
    }
    return *row == ',' || *row == '\n' || !*row ? NAN : strtod(row, NULL);
}

/* Value after "key " in an epoch line. */
static double line_value(const char *line, const char *key) {
    char k[64];
    snprintf(k, sizeof k, " %s ", key);
    const char *p = strstr(line, k);
    ck_assert_msg(p != NULL, "no %s in %s", key, line);
    return strtod(p + strlen(k), NULL);
}

/* The toy's eval-mode loss sum and hits over the samples with is_val set,
 * with the weights of file w, as the trainer normalizes them. */
static void toy_val_metrics(const char *w, const unsigned char *is_val, double *loss, double *acc) {
    float p[TOY_NP];
    char err[DN_ERR_MAX];
    ck_assert_msg(dn_ckpt_load(&toy_model, w, p, NULL, NULL, NULL, NULL, err) == 0, "%s", err);
    unsigned char img[100 * TOY_IN], lab[100];
    make_samples(100, 1, img, lab);
    dn_batch b = {.n = 1};
    double sum = 0;
    int hits = 0, n = 0;
    for (int i = 0; i < 100; i++) {
        if (!is_val[i])
            continue;
        float x[TOY_IN];
        for (int k = 0; k < TOY_IN; k++)
            x[k] = ((float)img[i * TOY_IN + k] / 255.0f - 0.5f) / 0.5f;
        double l;
        int hit;
        toy_row(p, x, lab[i], &b, 0, 0, NULL, &l, &hit, NULL);
        sum += l;
        hits += hit;
        n++;
    }
    *loss = sum / n;
    *acc = (double)hits / n;
}

/* Epoch line and metrics with a split: val_loss, val_acc and gap, the CSV's
 * val columns, and both equal to an independent evaluation of the saved
 * weights on the held-out samples. */
START_TEST(test_split_report) {
    setup("splitreport");
    run_result r = run("train", "--data", P("data"), "--epochs", "1", "--val-split", "0.2",
                       "--save", P("w.st"), "--metrics", P("m.csv"), "--threads", "1", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_str_eq(r.err, ""); /* no progress bar: stderr is no terminal */
    const char *num = "-?[0-9]+\\.[0-9]{4}";
    char pat[512];
    snprintf(pat, sizeof pat, "^epoch 1: train_loss %s train_acc %s val_loss %s val_acc %s gap %s "
             "test_acc %s time [0-9]+\\.[0-9]{3}s$", num, num, num, num, num, num);
    ck_assert_msg(matches(r.out, pat), "%s", r.out);
    ck_assert(matches(r.out, "^training toy: 27 parameters, 80 train / 20 val / 30 test samples, "));
    const char *line = strstr(r.out, "epoch 1:");
    double tr_acc = line_value(line, "train_acc"), va = line_value(line, "val_acc");
    double gap = line_value(line, "gap");
    ck_assert_msg(fabs(gap - (tr_acc - va)) <= 1.5e-4, "gap %g, train_acc %g, val_acc %g", gap,
                  tr_acc, va);
    char *csv = slurp(P("m.csv"), NULL);
    ck_assert(matches(csv, "^epoch,step,train_loss,train_acc,test_loss,test_acc,seconds,val_loss,val_acc,lr\n"
                           "1,3,[^,]+,[01]\\.[0-9]{6},[^,]+,[^,]+,[0-9.]+,[0-9.e-]+,[01]\\.[0-9]{6},0\\.05\n$"));
    const char *row = strchr(csv, '\n') + 1;
    unsigned char is_val[100];
    ref_split(100, 0.2, 7, is_val);
    double want_loss, want_acc;
    toy_val_metrics(P("w.st"), is_val, &want_loss, &want_acc);
    ck_assert_double_eq_tol(csv_field(row, 7), want_loss, 1e-5 * want_loss + 1e-9);
    ck_assert_double_eq_tol(csv_field(row, 8), want_acc, 1e-6);
    ck_assert_double_eq_tol(va, want_acc, 5.1e-5);
    ck_assert_double_eq_tol(line_value(line, "val_loss"), want_loss, 5.1e-5);
    ck_assert_double_eq_tol(csv_field(row, 3), tr_acc, 5.1e-5);
    free(csv);
    run_free(&r);

    /* No test set: the val part stays, test_acc goes. */
    r = run("train", "--data", P("notest"), "--epochs", "1", "--val-split", "0.2", "--metrics",
            P("n.csv"), NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert(matches(r.out, "^epoch 1: train_loss [0-9.]+ train_acc [0-9.]+ val_loss [0-9.]+ "
                             "val_acc [0-9.]+ gap -?[0-9.]+ time [0-9.]+s$"));
    run_free(&r);
    csv = slurp(P("n.csv"), NULL);
    ck_assert(matches(csv, "\n1,3,[^,]+,[^,]+,,,[0-9.]+,[0-9.e-]+,[01]\\.[0-9]{6},0\\.05\n$"));
    free(csv);
}
END_TEST

/* ---- JSON Lines metrics ------------------------------------------------------------- */

#define N_JSON_KEYS 10
static const char *const json_keys[N_JSON_KEYS] = {"epoch", "step", "train_loss", "train_acc", "test_loss",
                                                   "test_acc", "seconds", "val_loss", "val_acc", "lr"};

/* Parses one JSON Lines object of exactly the metrics keys, in order, whose
 * values are JSON numbers or null (NAN). Returns the end of the line, or
 * NULL when it is not such an object. */
static const char *parse_json_row(const char *p, double *v) {
    if (*p++ != '{')
        return NULL;
    for (int k = 0; k < N_JSON_KEYS; k++) {
        size_t len = strlen(json_keys[k]);
        if (k && *p++ != ',')
            return NULL;
        if (*p != '"' || strncmp(p + 1, json_keys[k], len) != 0 || p[len + 1] != '"' || p[len + 2] != ':')
            return NULL;
        p += len + 3;
        if (strncmp(p, "null", 4) == 0) {
            v[k] = NAN;
            p += 4;
            continue;
        }
        /* number = -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
        const char *s = p;
        if (*p == '-')
            p++;
        if (*p == '0')
            p++;
        else if (*p >= '1' && *p <= '9')
            while (*p >= '0' && *p <= '9')
                p++;
        else
            return NULL;
        if (*p == '.') {
            if (!(*++p >= '0' && *p <= '9'))
                return NULL;
            while (*p >= '0' && *p <= '9')
                p++;
        }
        if (*p == 'e' || *p == 'E') {
            p++;
            if (*p == '+' || *p == '-')
                p++;
            if (!(*p >= '0' && *p <= '9'))
                return NULL;
            while (*p >= '0' && *p <= '9')
                p++;
        }
        v[k] = strtod(s, NULL);
    }
    return p[0] == '}' && p[1] == '\n' ? p + 2 : NULL;
}

/* Checks a JSONL metrics file against the CSV of the same run: one object
 * per epoch, the same values, null where the CSV is empty. */
static void check_jsonl_vs_csv(const char *jsonl_path, const char *csv_path, int rows) {
    char *j = slurp(jsonl_path, NULL), *c = slurp(csv_path, NULL);
    ck_assert(j && c);
    const char *jp = j, *cp = strchr(c, '\n') + 1;
    for (int r = 0; r < rows; r++) {
        double v[N_JSON_KEYS];
        const char *next = parse_json_row(jp, v);
        ck_assert_msg(next != NULL, "row %d is not a metrics object: %s", r, jp);
        ck_assert_double_eq(v[0], r + 1);
        for (int k = 0; k < N_JSON_KEYS; k++) {
            double want = csv_field(cp, k);
            if (k == 6)
                continue; /* seconds differ between runs */
            if (isnan(want))
                ck_assert_msg(isnan(v[k]), "row %d %s: %g, CSV empty", r, json_keys[k], v[k]);
            else
                ck_assert_msg(v[k] == want, "row %d %s: %.9g vs CSV %.9g", r, json_keys[k], v[k], want);
        }
        ck_assert(v[6] >= 0);
        jp = next;
        cp = strchr(cp, '\n') + 1;
    }
    ck_assert_str_eq(jp, "");
    free(j);
    free(c);
}

START_TEST(test_metrics_jsonl) {
    setup("jsonl");
    run_expect(0, "train", "--data", P("data"), "--epochs", "3", "--val-split", "0.2", "--metrics",
               P("m.jsonl"), NULL);
    run_expect(0, "train", "--data", P("data"), "--epochs", "3", "--val-split", "0.2", "--metrics",
               P("m.csv"), NULL);
    check_jsonl_vs_csv(P("m.jsonl"), P("m.csv"), 3);
    /* Without split or test set: nulls. */
    run_expect(0, "train", "--data", P("notest"), "--epochs", "2", "--metrics", P("n.jsonl"), NULL);
    run_expect(0, "train", "--data", P("notest"), "--epochs", "2", "--metrics", P("n.csv"), NULL);
    check_jsonl_vs_csv(P("n.jsonl"), P("n.csv"), 2);
    char *j = slurp(P("n.jsonl"), NULL);
    ck_assert(matches(j, "^\\{\"epoch\":1,\"step\":4,\"train_loss\":[0-9.e-]+,\"train_acc\":[0-9.]+,"
                         "\"test_loss\":null,\"test_acc\":null,\"seconds\":[0-9.]+,"
                         "\"val_loss\":null,\"val_acc\":null,\"lr\":0\\.05\\}$"));
    free(j);
    /* A resumed run keeps the saved epochs' objects and drops later ones. */
    run_expect(0, "train", "--data", P("data"), "--epochs", "3", "--val-split", "0.2", "--metrics",
               P("r.jsonl"), "--save", P("s.st"), "--checkpoint-every", "100", "--max-steps", "4", NULL);
    run_expect(0, "train", "--data", P("data"), "--epochs", "3", "--val-split", "0.2", "--metrics",
               P("r.jsonl"), "--resume", P("s.st"), NULL);
    check_jsonl_vs_csv(P("r.jsonl"), P("m.csv"), 3);
    /* Non-finite values are null in JSON (which has no inf or nan). */
    dn_metrics mt;
    ck_assert_int_eq(dn_metrics_open(&mt, P("u.jsonl"), -1, 0, "toy"), DN_EXIT_OK);
    dn_epoch_row e = {.epoch = 1, .step = 2, .train_loss = 0.5, .train_acc = 0.25,
                      .test_loss = INFINITY, .test_acc = 0.5, .seconds = 1, .val_loss = NAN,
                      .val_acc = 1, .has_test = 1, .has_val = 1, .lr = 0.001};
    ck_assert_int_eq(dn_metrics_add(&mt, &e, "toy"), DN_EXIT_OK);
    dn_metrics_free(&mt);
    j = slurp(P("u.jsonl"), NULL);
    ck_assert_str_eq(j, "{\"epoch\":1,\"step\":2,\"train_loss\":0.5,\"train_acc\":0.250000,"
                        "\"test_loss\":null,\"test_acc\":0.500000,\"seconds\":1.000,"
                        "\"val_loss\":null,\"val_acc\":1.000000,\"lr\":0.001}\n");
    double v[N_JSON_KEYS];
    ck_assert_ptr_nonnull(parse_json_row(j, v));
    free(j);
}
END_TEST

/* Metrics CSVs of older trainers are continued on resume: rows of the
 * 7-column format get the empty val and lr columns, rows of the 9-column
 * format (before lr) an empty lr; later rows are the new run's. */
START_TEST(test_metrics_old_csv_resume) {
    setup("oldcsv");
    run_expect(0, "train", "--data", P("data"), "--epochs", "2", "--metrics", P("ref.csv"), NULL);
    static const struct {
        const char *header;
        int cut;          /* columns an old row lacks */
        const char *pad;  /* what the resumed file adds */
    } olds[] = {{"epoch,step,train_loss,train_acc,test_loss,test_acc,seconds\n", 3, ",,,"},
                {"epoch,step,train_loss,train_acc,test_loss,test_acc,seconds,val_loss,val_acc\n", 1, ","}};
    for (size_t k = 0; k < sizeof olds / sizeof olds[0]; k++) {
        run_expect(0, "train", "--data", P("data"), "--epochs", "2", "--metrics", P("m.csv"), "--save",
                   P("s.st"), "--checkpoint-every", "100", "--max-steps", "4", NULL);
        char *csv = slurp(P("m.csv"), NULL), old[1024], want_row[1024];
        const char *row = strchr(csv, '\n') + 1;
        size_t rl = strlen(row) - 1; /* without its newline */
        for (int c = 0; c < olds[k].cut; c++)
            while (row[--rl] != ',') {
            }
        snprintf(old, sizeof old, "%s%.*s\n", olds[k].header, (int)rl, row);
        snprintf(want_row, sizeof want_row, "%.*s%s\n", (int)rl, row, olds[k].pad);
        write_bytes(P("m.csv"), old, strlen(old));
        free(csv);
        run_expect(0, "train", "--data", P("data"), "--epochs", "2", "--metrics", P("m.csv"), "--resume",
                   P("s.st"), NULL);
        char *a = slurp(P("m.csv"), NULL), *b = slurp(P("ref.csv"), NULL);
        const char *a1 = strchr(a, '\n') + 1, *a2 = strchr(a1, '\n') + 1;
        const char *b1 = strchr(b, '\n') + 1, *b2 = strchr(b1, '\n') + 1;
        ck_assert(strncmp(a, b, (size_t)(b1 - b)) == 0);              /* today's header */
        ck_assert(strncmp(a1, want_row, strlen(want_row)) == 0);      /* the old row, padded */
        char *sa = strip_seconds(a2), *sb = strip_seconds(b2);        /* the new run's row */
        ck_assert_str_eq(sa, sb);
        free(a);
        free(b);
        free(sa);
        free(sb);
    }
}
END_TEST

/* ---- early stopping ---------------------------------------------------------------------- */

#define ES_ARGS "--data", P("data"), "--val-split", "0.2", "--early-stopping", "2", "--epochs", "40"

/* Parses "restored epoch E (val_acc X)"; returns E. */
static int restored_epoch(const char *out, double *val_acc) {
    const char *p = strstr(out, "restored epoch ");
    ck_assert_msg(p != NULL, "no 'restored epoch' in:\n%s", out);
    int e = 0;
    ck_assert(sscanf(p, "restored epoch %d (val_acc %lf)", &e, val_acc) == 2);
    return e;
}

/* Loads the weights (top-level tensors) of a checkpoint. */
static void load_weights(const char *path, float *p) {
    char err[DN_ERR_MAX];
    ck_assert_msg(dn_ckpt_load(&toy_model, path, p, NULL, NULL, NULL, NULL, err) == 0, "%s", err);
}

/* The toy stalls: on the separable set the validation accuracy reaches its
 * best early and then cannot improve while the weights keep moving. The
 * run stops exactly P epochs after the best epoch, the val_acc of every
 * later epoch is no better, and --save gets that epoch's weights: the
 * weights of a run paused at its end, not those of the last epoch. */
START_TEST(test_early_stopping) {
    setup("es");
    run_result r = run("train", ES_ARGS, "--save", P("es.st"), "--metrics", P("es.csv"), NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_str_eq(r.err, "");
    double best_acc;
    int best = restored_epoch(r.out, &best_acc);
    int epochs = count_lines_starting(r.out, "epoch ");
    ck_assert_msg(epochs == best + 2 && epochs < 40, "stopped after %d epochs, best %d:\n%s", epochs,
                  best, r.out);
    char want[128];
    snprintf(want, sizeof want, "\nearly stopping: no val_acc improvement for 2 epochs; restored "
             "epoch %d (val_acc %.4f)\nrestored weights: test_loss ", best, best_acc);
    ck_assert_msg(strstr(r.out, want) != NULL, "%s", r.out);
    char *csv = slurp(P("es.csv"), NULL);
    int rows = 0;
    for (const char *row = strchr(csv, '\n') + 1; *row; row = strchr(row, '\n') + 1, rows++) {
        double va = csv_field(row, 8);
        if (rows + 1 < best)
            ck_assert_msg(va < best_acc + 5e-5, "epoch %d val_acc %g beats the best", rows + 1, va);
        else if (rows + 1 == best)
            ck_assert_double_eq_tol(va, best_acc, 5.1e-5);
        else
            ck_assert_msg(va <= best_acc + 5e-5, "epoch %d val_acc %g after the best", rows + 1, va);
    }
    ck_assert_int_eq(rows, epochs);
    free(csv);
    /* The restored test metrics are those of the best epoch's line. */
    char line_start[32];
    snprintf(line_start, sizeof line_start, "epoch %d: ", best);
    const char *bl = strstr(r.out, line_start);
    ck_assert_double_eq_tol(last_test_acc(r.out), line_value(bl, "test_acc"), 1e-9);
    run_free(&r);

    /* The state saved at the end of the best epoch has those weights (and
     * they are its best.* tensors too). */
    run_expect(0, "train", ES_ARGS, "--save", P("at_best.st"), "--checkpoint-every", "1000",
               "--max-steps", F("%d", best * 3), NULL);
    float restored[TOY_NP], at_best[TOY_NP], m[TOY_NP], v[TOY_NP], bw[TOY_NP], last[TOY_NP];
    load_weights(P("es.st"), restored);
    dn_train_state st;
    char err[DN_ERR_MAX];
    dn_opt_bufs ob = {{m, v, NULL}};
    ck_assert_msg(dn_ckpt_load(&toy_model, P("at_best.st"), at_best, &ob, bw, &st, NULL, err) == 0,
                  "%s", err);
    ck_assert(memcmp(restored, at_best, sizeof restored) == 0);
    ck_assert(memcmp(bw, at_best, sizeof bw) == 0);
    ck_assert(st.patience == 2 && st.best_epoch == best && st.since_best == 0 && st.epoch == best);
    ck_assert(st.val_split == 0.2);
    /* ... and differ from the last epoch's. */
    run_expect(0, "train", "--data", P("data"), "--val-split", "0.2", "--epochs", F("%d", epochs),
               "--save", P("last.st"), NULL);
    load_weights(P("last.st"), last);
    ck_assert(memcmp(restored, last, sizeof last) != 0);
    /* Early stopping does not change training: without it, the same
     * weights at the best epoch. */
    run_expect(0, "train", "--data", P("data"), "--val-split", "0.2", "--epochs", F("%d", best),
               "--save", P("plain.st"), NULL);
    ck_assert(file_equal(P("plain.st"), P("es.st")));
    /* eval reads the restored file and a state with best.* tensors. */
    run_expect(0, "eval", "--weights", P("es.st"), "--data", P("data"), NULL);
    run_expect(0, "eval", "--weights", P("at_best.st"), "--data", P("data"), NULL);

    /* Patience never reached: restored anyway at the end; --quiet silences it. */
    r = run("train", "--data", P("data"), "--val-split", "0.2", "--early-stopping", "50", "--epochs",
            F("%d", epochs), "--save", P("nt.st"), NULL);
    ck_assert_int_eq(r.status, 0);
    snprintf(want, sizeof want, "\nearly stopping: not triggered in %d epochs; restored epoch %d ",
             epochs, best);
    ck_assert_msg(strstr(r.out, want) != NULL, "%s", r.out);
    ck_assert(file_equal(P("nt.st"), P("es.st")));
    run_free(&r);
    r = run("train", ES_ARGS, "--quiet", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, "");
    run_free(&r);

    /* Counts of one are in the singular. */
    r = run("train", "--data", P("data"), "--val-split", "0.2", "--early-stopping", "1", "--epochs",
            "40", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_msg(strstr(r.out, "\nearly stopping: no val_acc improvement for 1 epoch; restored epoch ")
                  != NULL, "%s", r.out);
    run_free(&r);
    r = run("train", "--data", P("data"), "--val-split", "0.2", "--early-stopping", "5", "--epochs",
            "1", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_msg(strstr(r.out, "\nearly stopping: not triggered in 1 epoch; restored epoch 1 ") != NULL,
                  "%s", r.out);
    run_free(&r);
}
END_TEST

/* Early stopping resumed from any point ends bit-identical to the
 * uninterrupted run: same restored weights, epoch lines and metrics. */
START_TEST(test_early_stopping_resume) {
    setup("esresume");
    run_result r = run("train", ES_ARGS, "--save", P("ref.st"), "--metrics", P("ref.csv"), NULL);
    ck_assert_int_eq(r.status, 0);
    double acc;
    int best = restored_epoch(r.out, &acc), epochs = count_lines_starting(r.out, "epoch ");
    char *ref_out = strip_times(r.out), *raw = slurp(P("ref.csv"), NULL);
    char *ref_csv = strip_seconds(raw);
    free(raw);
    run_free(&r);
    int total = epochs * 3; /* 80 samples, batch 32: 3 steps per epoch */
    int stops[] = {1, 3, 4, best * 3 - 1, best * 3, best * 3 + 2, total - 3, total - 1};
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
        int k = stops[i];
        ck_assert(k >= 1 && k < total);
        run_expect(0, "train", ES_ARGS, "--save", P("state.st"), "--checkpoint-every", "1000",
                   "--max-steps", F("%d", k), "--metrics", P("run.csv"), NULL);
        r = run("train", ES_ARGS, "--save", P("final.st"), "--metrics", P("run.csv"), "--resume",
                P("state.st"), NULL);
        ck_assert_msg(r.status == 0, "resume after step %d: %s", k, r.err);
        ck_assert_msg(file_equal(P("final.st"), P("ref.st")), "stopped after step %d: weights differ", k);
        char *out = strip_times(r.out);
        const char *body = strchr(out, '\n') + 1;
        ck_assert_msg(strstr(ref_out, body) != NULL, "step %d:\n%s\nnot in\n%s", k, body, ref_out);
        ck_assert(strstr(body, "early stopping: no val_acc improvement for 2 epochs") != NULL);
        free(out);
        raw = slurp(P("run.csv"), NULL);
        char *csv = strip_seconds(raw);
        ck_assert_msg(strcmp(csv, ref_csv) == 0, "step %d: metrics\n%s\nvs\n%s", k, csv, ref_csv);
        free(raw);
        free(csv);
        run_free(&r);
    }
    /* SIGTERM after the best epoch: the saved state resumes to the same end. */
    toy_raise_step = best * 3 + 1;
    r = run("train", ES_ARGS, "--save", P("state.st"), NULL);
    ck_assert_int_eq(r.status, 143);
    run_free(&r);
    toy_raise_step = -1;
    run_expect(0, "train", ES_ARGS, "--save", P("final.st"), "--resume", P("state.st"), NULL);
    ck_assert(file_equal(P("final.st"), P("ref.st")));

    /* Refusals: another split, early stopping that was not tracked. */
    run_expect(0, "train", ES_ARGS, "--save", P("state.st"), "--checkpoint-every", "1000",
               "--max-steps", "4", NULL);
    r = run("train", "--data", P("data"), "--val-split", "0.3", "--resume", P("state.st"), NULL);
    ck_assert_int_eq(r.status, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "run was saved with --val-split 0.2, the command line gives 0.3; "
                                        "resume with the same --val-split\n"));
    run_free(&r);
    /* Another patience is allowed, with a warning; dropping early stopping too. */
    r = run("train", "--data", P("data"), "--val-split", "0.2", "--early-stopping", "3", "--epochs",
            "6", "--resume", P("state.st"), NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.err, "run was saved with --early-stopping 2, continuing with "
                                        "--early-stopping 3\n"));
    run_free(&r);
    r = run("train", "--data", P("data"), "--val-split", "0.2", "--epochs", "6", "--resume",
            P("state.st"), NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_null(strstr(r.out, "early stopping"));
    run_free(&r);
    run_expect(0, "train", "--data", P("data"), "--val-split", "0.2", "--save", P("plain.st"),
               "--checkpoint-every", "1000", "--max-steps", "4", NULL);
    r = run("train", ES_ARGS, "--resume", P("plain.st"), NULL);
    ck_assert_int_eq(r.status, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "run was saved without --early-stopping, so its best epoch "
                                        "is unknown; resume without --early-stopping\n"));
    run_free(&r);
    free(ref_out);
    free(ref_csv);
}
END_TEST

/* ---- step log --------------------------------------------------------------------------- */

/* Checks a step log: header, rows 1..steps, epochs, and that the
 * row-weighted means of each epoch's loss and accuracy are the metrics'
 * train_loss and train_acc. */
static void check_step_log(const char *log_path, const char *csv_path, int steps) {
    static const int rows_of[4] = {32, 32, 32, 4};
    char *log = slurp(log_path, NULL), *csv = slurp(csv_path, NULL);
    ck_assert(log && csv);
    ck_assert_msg(strncmp(log, "step,epoch,loss,acc\n", 20) == 0, "%s", log);
    ck_assert_int_eq(count_lines_starting(log, ""), steps + 1);
    const char *row = log + 20, *mrow = strchr(csv, '\n') + 1;
    double loss_sum = 0, hit_sum = 0;
    for (int s = 1; s <= steps; s++) {
        long long step, epoch;
        double loss, acc;
        ck_assert(sscanf(row, "%lld,%lld,%lf,%lf\n", &step, &epoch, &loss, &acc) == 4);
        ck_assert(matches(row, "^[0-9]+,[0-9]+,[0-9.e-]+,[01]\\.[0-9]{6}$"));
        ck_assert_int_eq(step, s);
        ck_assert_int_eq(epoch, (s - 1) / 4 + 1);
        int rows = rows_of[(s - 1) % 4];
        loss_sum += loss * rows;
        hit_sum += acc * rows;
        ck_assert(fabs(acc * rows - floor(acc * rows + 0.5)) < 1e-4);
        if (s % 4 == 0) {
            ck_assert_double_eq_tol(loss_sum / 100, csv_field(mrow, 2), 1e-5);
            ck_assert_double_eq_tol(hit_sum / 100, csv_field(mrow, 3), 1e-6);
            loss_sum = hit_sum = 0;
            mrow = strchr(mrow, '\n') + 1;
        }
        row = strchr(row, '\n') + 1;
    }
    free(log);
    free(csv);
}

START_TEST(test_log_steps) {
    setup("logsteps");
    run_expect(0, "train", "--data", P("data"), "--epochs", "3", "--log-steps", P("ref.log"),
               "--metrics", P("m.csv"), NULL);
    check_step_log(P("ref.log"), P("m.csv"), 12);
    run_expect(0, "train", "--data", P("data"), "--epochs", "3", "--max-steps", "7", "--log-steps",
               P("s.log"), "--metrics", P("m.csv"), NULL);
    check_step_log(P("s.log"), P("m.csv"), 7);
    /* Resumed from a pause or a crash (SIGKILL in step 8, last checkpoint
     * at step 6): the log is cut back to the saved step and continued. */
    run_expect(0, "train", "--data", P("data"), "--epochs", "3", "--max-steps", "5", "--log-steps",
               P("r.log"), "--save", P("st.st"), "--checkpoint-every", "1000", NULL);
    run_expect(0, "train", "--data", P("data"), "--epochs", "3", "--log-steps", P("r.log"),
               "--resume", P("st.st"), NULL);
    ck_assert(file_equal(P("r.log"), P("ref.log")));
    toy_raise_step = 7;
    toy_raise_sig = SIGKILL;
    run_result r = run("train", "--data", P("data"), "--epochs", "3", "--log-steps", P("k.log"),
                       "--save", P("st.st"), "--checkpoint-every", "3", NULL);
    ck_assert_int_eq(r.status, 1000 + SIGKILL);
    run_free(&r);
    toy_raise_step = -1;
    r = run("train", "--data", P("data"), "--epochs", "3", "--log-steps", P("k.log"), "--resume",
            P("st.st"), NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.err, "");
    ck_assert(file_equal(P("k.log"), P("ref.log")));
    run_free(&r);
    /* A log that lost rows is continued with a warning. */
    write_bytes(P("k.log"), "step,epoch,loss,acc\n1,1,1.0,0.5\n", 32);
    r = run("train", "--data", P("data"), "--epochs", "3", "--log-steps", P("k.log"), "--resume",
            P("st.st"), NULL);
    ck_assert_int_eq(r.status, 0);
    char want[1400];
    snprintf(want, sizeof want, "toy: warning: %s: rows of steps 2..6 are missing; the log "
             "continues at step 7\n", P("k.log"));
    ck_assert_str_eq(r.err, want);
    run_free(&r);
    /* One row lost: said in the singular. */
    write_bytes(P("k.log"), "step,epoch,loss,acc\n1,1,1.0,0.5\n2,1,1.0,0.5\n3,1,1.0,0.5\n4,1,1.0,0.5\n"
                "5,2,1.0,0.5\n", 80);
    r = run("train", "--data", P("data"), "--epochs", "3", "--log-steps", P("k.log"), "--resume",
            P("st.st"), NULL);
    ck_assert_int_eq(r.status, 0);
    snprintf(want, sizeof want, "toy: warning: %s: the row of step 6 is missing; the log "
             "continues at step 7\n", P("k.log"));
    ck_assert_str_eq(r.err, want);
    run_free(&r);
}
END_TEST

/* ---- progress bar ------------------------------------------------------------------------ */

START_TEST(test_progress_bar) {
    setup("progress");
    /* stderr is a file here: nothing but errors may appear in it. */
    run_result r = run("train", "--data", P("data"), "--epochs", "2", "--val-split", "0.2", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.err, "");
    run_free(&r);
    /* On a terminal: a bar per epoch, each erased again; stdout unchanged. */
    g_tty = 1;
    r = run("train", "--data", P("data"), "--epochs", "2", "--val-split", "0.2", NULL);
    ck_assert_int_eq(r.status, 0);
    for (int e = 1; e <= 2; e++) {
        char pat[256];
        snprintf(pat, sizeof pat, "\repoch %d/2 \\[[=> ]{20}\\] [0-9]+%%  [0-9]+ samples/s  loss "
                 "[0-9]+\\.[0-9]{4}  ETA [0-9]+s", e);
        ck_assert_msg(matches(r.err, pat), "no bar for epoch %d in '%s'", e, r.err);
    }
    ck_assert(matches(r.err, "\r +\r$"));
    ck_assert_int_eq(count_lines_starting(r.out, "epoch "), 2);
    ck_assert_ptr_null(strchr(r.out, '\r'));
    run_free(&r);
    r = run("train", "--data", P("data"), "--epochs", "2", "--quiet", NULL);
    g_tty = 0;
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.err, "");
    run_free(&r);
}
END_TEST

/* ---- eval --mc ---------------------------------------------------------------------------- */

typedef struct {
    double loss, acc, entropy_ok, entropy_bad;
    int wrong;
} mc_result;

/* eval --mc computed here: the 30 test samples form one batch (row =
 * sample index); pass q keeps the toy's input dropout on with masks from
 * (seed, step q); the mean of the passes' probabilities gives the loss,
 * the prediction and the entropy. */
static mc_result ref_mc(const char *w, int passes, uint64_t seed) {
    float p[TOY_NP];
    load_weights(w, p);
    unsigned char img[30 * TOY_IN], lab[30];
    make_samples(30, 2, img, lab);
    double es[2] = {0, 0}, lsum = 0;
    int cnt[2] = {0, 0};
    for (int i = 0; i < 30; i++) {
        float x[TOY_IN], prob[TOY_OUT];
        for (int k = 0; k < TOY_IN; k++)
            x[k] = ((float)img[i * TOY_IN + k] / 255.0f - 0.5f) / 0.5f;
        double mean[TOY_OUT] = {0}, l, e = 0;
        int hit, best = 0;
        for (int q = 0; q < passes; q++) {
            dn_batch b = {.n = 30, .seed = seed, .step = (uint64_t)q, .mc_dropout = 1};
            toy_row(p, x, lab[i], &b, i, 1, NULL, &l, &hit, prob);
            for (int c = 0; c < TOY_OUT; c++)
                mean[c] += prob[c];
        }
        for (int c = 0; c < TOY_OUT; c++)
            mean[c] /= passes;
        for (int c = 0; c < TOY_OUT; c++) {
            if (mean[c] > mean[best])
                best = c;
            if (mean[c] > 0)
                e -= mean[c] * log(mean[c]);
        }
        lsum -= log(mean[lab[i]]);
        es[best == lab[i]] += e;
        cnt[best == lab[i]]++;
    }
    mc_result r = {lsum / 30, cnt[1] / 30.0, es[1] / cnt[1], cnt[0] ? es[0] / cnt[0] : NAN, cnt[0]};
    return r;
}

START_TEST(test_eval_mc) {
    setup("mc");
    /* Barely trained (one step), so that some test samples are wrong. */
    run_expect(0, "train", "--data", P("data"), "--max-steps", "1", "--lr", "0.02", "--save",
               P("w.st"), NULL);
    mc_result want = ref_mc(P("w.st"), 20, 5);
    ck_assert_msg(want.wrong > 0 && want.wrong < 30, "%d wrong", want.wrong);
    run_result r = run("eval", "--weights", P("w.st"), "--data", P("data"), "--mc", "20",
                       "--mc-seed", "5", NULL);
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_str_eq(r.err, "");
    ck_assert_msg(matches(r.out, "^test_loss [0-9]+\\.[0-9]{4} test_acc [01]\\.[0-9]{4} mc_passes 20 "
                                 "entropy_correct [0-9]+\\.[0-9]{4} entropy_wrong [0-9]+\\.[0-9]{4}\n$"),
                  "%s", r.out);
    double loss, acc, ok, bad;
    int passes;
    ck_assert(sscanf(r.out, "test_loss %lf test_acc %lf mc_passes %d entropy_correct %lf "
                            "entropy_wrong %lf", &loss, &acc, &passes, &ok, &bad) == 5);
    ck_assert_double_eq_tol(loss, want.loss, 5.1e-5);
    ck_assert_double_eq_tol(acc, want.acc, 5.1e-5);
    ck_assert_double_eq_tol(ok, want.entropy_ok, 5.1e-5);
    ck_assert_double_eq_tol(bad, want.entropy_bad, 5.1e-5);
    char *first = strdup(r.out);
    run_free(&r);
    /* Deterministic; the seed and the pass count matter. */
    r = run("eval", "--weights", P("w.st"), "--data", P("data"), "--mc", "20", "--mc-seed", "5",
            "--threads", "2", NULL);
    ck_assert_str_eq(r.out, first);
    run_free(&r);
    r = run("eval", "--weights", P("w.st"), "--data", P("data"), "--mc", "20", "--mc-seed", "6", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_ne(r.out, first);
    run_free(&r);
    mc_result one = ref_mc(P("w.st"), 1, 0);
    r = run("eval", "--weights", P("w.st"), "--data", P("data"), "--mc", "1", NULL);
    ck_assert(sscanf(r.out, "test_loss %lf test_acc %lf mc_passes %d", &loss, &acc, &passes) == 3);
    ck_assert_int_eq(passes, 1);
    ck_assert_double_eq_tol(loss, one.loss, 5.1e-5);
    run_free(&r);
    /* Plain eval is not MC: dropout off. */
    r = run("eval", "--weights", P("w.st"), "--data", P("data"), NULL);
    ck_assert(matches(r.out, "^test_loss [0-9.]+ test_acc [0-9.]+\n$"));
    run_free(&r);
    free(first);
}
END_TEST

static void make_optim_models(void) {
    toy_sgd_model = toy_model;
    toy_sgd_model.defaults.optim = (dn_optim){.type = DN_OPTIM_SGD, .momentum = 0.9f, .nesterov = 1};
    toy_sgd_model.defaults.weight_decay = 0.01f;
    toy_sgd_model.defaults.schedule = (dn_lr_sched){.type = DN_LRS_STEP, .step_size = 1, .gamma = 0.5f};
    toy_rmsprop_model = toy_model;
    toy_rmsprop_model.defaults.lr = 0.01f;
    toy_rmsprop_model.defaults.optim =
        (dn_optim){.type = DN_OPTIM_RMSPROP, .alpha = 0.9f, .momentum = 0.5f, .centered = 1};
    toy_rmsprop_model.defaults.schedule = (dn_lr_sched){.type = DN_LRS_EXPONENTIAL, .gamma = 0.8f};
    toy_clip_model = toy_fused_model;
    toy_clip_model.defaults.clip_grad_norm = 0.1f;
    toy_clip_model.defaults.schedule = (dn_lr_sched){.type = DN_LRS_COSINE, .warmup_steps = 3, .min_lr = 0.001f};
    toy_fused_sched_model = toy_fused_model;
    toy_fused_sched_model.defaults.schedule = (dn_lr_sched){.type = DN_LRS_EXPONENTIAL, .gamma = 0.7f};
    toy_plateau_model = toy_sgd_model;
    toy_plateau_model.defaults.schedule = (dn_lr_sched){.type = DN_LRS_PLATEAU, .factor = 0.5f, .patience = 0,
                                                         .threshold = 0.01f, .cooldown = 1, .min_lr = 0.001f,
                                                         .metric_acc = 1};
}

int main(void) {
    toy_fused_model = toy_model;
    toy_fused_model.train_step_adam = toy_train_step_adam;
    make_optim_models();
    Suite *s = suite_create("check_train");
    TCase *cli = tcase_create("cli");
    tcase_add_test(cli, test_help_version);
    tcase_add_loop_test(cli, test_bad_arguments, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(cli, test_input_errors);
    suite_add_tcase(s, cli);

    TCase *train = tcase_create("train");
    tcase_set_timeout(train, 120);
    tcase_add_test(train, test_learns);
    tcase_add_test(train, test_output_format);
    tcase_add_test(train, test_metrics_and_partial_batch);
    tcase_add_test(train, test_max_steps);
    tcase_add_test(train, test_batch_order);
    tcase_add_test(train, test_first_step_is_adam);
    tcase_add_test(train, test_save_eval_roundtrip);
    tcase_add_test(train, test_load_rejects);
    tcase_add_test(train, test_threads_identical);
    tcase_add_loop_test(train, test_nan_stops, 0, 2); /* plain, fused */
    tcase_add_test(train, test_gradcheck);
    suite_add_tcase(s, train);

    TCase *resume = tcase_create("resume");
    tcase_set_timeout(resume, 120);
    tcase_add_loop_test(resume, test_resume_bit_identical, 0, 6); /* plain, fused, sgd, rmsprop, clip, fused+schedule */
    tcase_add_test(resume, test_schedule_runs);
    tcase_add_test(resume, test_resume_refuses_other_runs);
    tcase_add_test(resume, test_signal_saves_state);
    tcase_add_test(resume, test_nonfinite_norm_stops);
    suite_add_tcase(s, resume);

    TCase *val = tcase_create("validation");
    tcase_set_timeout(val, 240);
    tcase_add_test(val, test_split_sizes);
    tcase_add_test(val, test_split_training_set);
    tcase_add_test(val, test_split_report);
    tcase_add_test(val, test_metrics_jsonl);
    tcase_add_test(val, test_metrics_old_csv_resume);
    tcase_add_test(val, test_early_stopping);
    tcase_add_test(val, test_early_stopping_resume);
    tcase_add_test(val, test_log_steps);
    tcase_add_test(val, test_progress_bar);
    tcase_add_test(val, test_eval_mc);
    suite_add_tcase(s, val);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
