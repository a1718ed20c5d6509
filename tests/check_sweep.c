/* check_sweep.c - `dngen sweep`: variants, generated dropout constants, the
 * streamed trainer output, the table, sweep.csv, sweep.svg, --layer,
 * reproducible random search, failing variants and usage errors.
 *
 * dngen runs in-process (dngen_main with memory streams); the compiler and
 * the trainers it builds are real child processes. To stay fast, only two
 * tests compile real trainers (a tiny 16-8-3 net on a synthetic IDX set,
 * 2 epochs); the others use `--cc false`, for which every variant's source
 * is still generated (and kept, since the variant failed). */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "sweep.h"
#include "test_util.h"

/* A learnable toy: 16 inputs, one hidden layer with dropout, 3 classes. */
static const char tiny_spec[] = "name: tiny\n"
                                "input: 16\n"
                                "layers:\n"
                                "  - {name: h, units: 8, activation: relu, dropout: 0.5}\n"
                                "  - {name: out, units: 3, activation: softmax}\n"
                                "train: {batch_size: 16, optimizer: {type: adam, lr: 0.01}}\n";

/* Three hidden layers: a and b have dropout, c has none. */
static const char three_spec[] = "name: three\n"
                                 "input: 16\n"
                                 "layers:\n"
                                 "  - {name: a, units: 8, activation: relu, dropout: 0.5}\n"
                                 "  - {name: b, units: 8, activation: relu, dropout: 0.25}\n"
                                 "  - {name: c, units: 8, activation: relu}\n"
                                 "  - {name: out, units: 3, activation: softmax}\n";

/* Hidden layer without dropout: nothing to sweep unless --layer names it. */
static const char nodrop_spec[] = "name: nodrop\n"
                                  "input: 16\n"
                                  "layers:\n"
                                  "  - {name: h, units: 8, activation: relu}\n"
                                  "  - {name: out, units: 3, activation: softmax}\n";

/* ---- helpers ------------------------------------------------------------------ */

/* What one dngen_main() call did. */
typedef struct {
    int rc;
    char *out, *err;
    size_t out_len, err_len;
} run;

/* Runs dngen_main("dngen", args[0..n)) with memory streams. */
static void dngen_v(run *r, int n, const char *const *args) {
    char *argv[64];
    ck_assert_int_lt(n, 63);
    argv[0] = strdup("dngen");
    for (int i = 0; i < n; i++)
        argv[i + 1] = strdup(args[i]);
    argv[n + 1] = NULL;
    FILE *o = open_memstream(&r->out, &r->out_len), *e = open_memstream(&r->err, &r->err_len);
    ck_assert_ptr_nonnull(o);
    ck_assert_ptr_nonnull(e);
    r->rc = dngen_main(n + 1, argv, o, e);
    fclose(o);
    fclose(e);
    for (int i = 0; i <= n; i++)
        free(argv[i]);
}

/* dngen_v with the arguments up to the first NULL. */
static void dngen(run *r, ...) {
    const char *args[64];
    int n = 0;
    va_list ap;
    va_start(ap, r);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
        ck_assert_int_lt(n, 63);
        args[n++] = a;
    }
    va_end(ap);
    dngen_v(r, n, args);
}

static void run_free(run *r) {
    free(r->out);
    free(r->err);
}

/* Test scratch: DNGEN_TEST_TMP/<name> holding the specs and data/. */
typedef struct {
    char dir[4096], tiny[4200], three[4200], nodrop[4200], data[4200], out[4200];
} fixture;

/* Creates the scratch directory `name` with the three specs and a synthetic
 * IDX dataset (train: 300 samples, t10k: 90 with another seed). */
static void fixture_init(fixture *f, const char *name) {
    snprintf(f->dir, sizeof f->dir, "%s", tu_dir(name));
    snprintf(f->tiny, sizeof f->tiny, "%s/tiny.yaml", f->dir);
    snprintf(f->three, sizeof f->three, "%s/three.yaml", f->dir);
    snprintf(f->nodrop, sizeof f->nodrop, "%s/nodrop.yaml", f->dir);
    snprintf(f->data, sizeof f->data, "%s/data", f->dir);
    snprintf(f->out, sizeof f->out, "%s/out", f->dir);
    tu_write(f->tiny, tiny_spec);
    tu_write(f->three, three_spec);
    tu_write(f->nodrop, nodrop_spec);
    ck_assert_int_eq(mkdir(f->data, 0777), 0);
    ck_assert_int_eq(tu_write_synthetic_idx(f->data, "train", 300, 4, 4, 3, 1), 0);
    ck_assert_int_eq(tu_write_synthetic_idx(f->data, "t10k", 90, 4, 4, 3, 2), 0);
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}


/* Reads dir/name, which must exist (malloc'd). */
static char *read_in(const char *dir, const char *name) {
    char path[8400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = tu_read(path, NULL);
    ck_assert_msg(s != NULL, "cannot read %s", path);
    return s;
}

/* Whether dir/name exists. */
static int exists_in(const char *dir, const char *name) {
    char path[8400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return exists(path);
}

static int count_of(const char *hay, const char *needle) {
    int n = 0;
    for (const char *s = strstr(hay, needle); s; s = strstr(s + 1, needle))
        n++;
    return n;
}

/* The dropout rate on the banner line of layer `layer` in generated source
 * src (" *   NAME  dense ... dropout P"), 0 when the line has none. */
static double banner_rate(const char *src, const char *layer) {
    char needle[128];
    snprintf(needle, sizeof needle, "\n *   %s ", layer);
    const char *line = strstr(src, needle);
    ck_assert_msg(line != NULL, "no banner line for layer %s", layer);
    line++;
    const char *eol = strchr(line, '\n');
    const char *d = strstr(line, " dropout ");
    if (!d || d > eol)
        return 0.0;
    return strtod(d + 9, NULL);
}

/* The result rows of the table in out: the lines after the header line up
 * to the first line not starting with 'v'. Copies up to max rows (each a
 * malloc'd string) into rows and returns how many there are. */
static int table_rows(const char *out, const char *header, char **rows, int max) {
    const char *p = strstr(out, header);
    ck_assert_msg(p != NULL, "no table header '%s' in:\n%s", header, out);
    p = strchr(p, '\n') + 1;
    int n = 0;
    while (*p == 'v' && n < max) {
        const char *eol = strchr(p, '\n');
        rows[n++] = strndup(p, (size_t)(eol - p));
        p = eol + 1;
    }
    return n;
}

static void rows_free(char **rows, int n) {
    for (int i = 0; i < n; i++)
        free(rows[i]);
}

/* The second whitespace-separated field of a table row (its rates), or of
 * a marked row "v2 *  0.3 ..." the third. Copied into dst. */
static void row_rates(const char *row, char *dst, size_t n) {
    char a[64], b[64], c[64];
    ck_assert_int_ge(sscanf(row, "%63s %63s %63s", a, b, c), 2);
    snprintf(dst, n, "%s", strcmp(b, "*") == 0 ? c : b);
}

/* Index of column `name` in a CSV header line, or -1. */
static int csv_col(const char *header, const char *name) {
    int col = 0;
    size_t n = strlen(name);
    for (const char *p = header; *p && *p != '\n'; col++) {
        size_t len = strcspn(p, ",\n");
        if (len == n && strncmp(p, name, n) == 0)
            return col;
        p += len;
        if (*p == ',')
            p++;
    }
    return -1;
}

/* Field number col of CSV line `line` as a number (NaN when empty). */
static double csv_num(const char *line, int col) {
    for (int i = 0; i < col; i++) {
        line = strchr(line, ',');
        ck_assert_ptr_nonnull(line);
        line++;
    }
    if (*line == ',' || *line == '\n' || *line == '\0')
        return NAN;
    return strtod(line, NULL);
}

/* What a trainer's metrics CSV says, computed here independently. */
typedef struct {
    int rows;
    double best_test, last_train, last_test, seconds;
} metrics;

static metrics read_metrics(const char *dir, const char *name) {
    char *csv = read_in(dir, name);
    metrics m = {0, -1.0, NAN, NAN, 0.0};
    int tr = csv_col(csv, "train_acc"), te = csv_col(csv, "test_acc"), se = csv_col(csv, "seconds");
    ck_assert_msg(tr >= 0 && te >= 0 && se >= 0, "%s: header %s", name, csv);
    for (const char *line = strchr(csv, '\n'); line && line[1]; line = strchr(line, '\n')) {
        line++;
        m.rows++;
        m.last_train = csv_num(line, tr);
        m.last_test = csv_num(line, te);
        m.best_test = fmax(m.best_test, m.last_test);
        m.seconds += csv_num(line, se);
    }
    free(csv);
    return m;
}

/* Writes an executable shell script dir/name with the given text. */
static void write_script(const char *dir, const char *name, const char *text, char *path, size_t n) {
    snprintf(path, n, "%s/%s", dir, name);
    tu_write(path, text);
    ck_assert_int_eq(chmod(path, 0755), 0);
}

#define TABLE_HEADER_TEST "variant  rates            best_test_acc  final_test_acc  train_test_gap  seconds\n"

/* ---- a real grid sweep ------------------------------------------------------------ */

START_TEST(test_grid) {
    fixture f;
    fixture_init(&f, "sweep_grid");
    run r;
    dngen(&r, "sweep", f.tiny, "--dropout", "0.1,0.3,0.5", "--out-dir", f.out, "--cc", DNGEN_CC, "--keep", "--",
          "--data", f.data, "--epochs", "2", "--threads", "1", "--seed", "3", NULL);
    ck_assert_msg(r.rc == 0, "rc %d\nstdout:\n%s\nstderr:\n%s", r.rc, r.out, r.err);
    static const char *const rates[] = {"0.1", "0.3", "0.5"};
    /* thresholds floor(p * 2^32) as the generated kernels spell them */
    static const char *const thresholds[] = {"429496729u", "1288490188u", "2147483648u"};
    for (int i = 0; i < 3; i++) {
        char name[64], line[128];
        snprintf(name, sizeof name, "tiny_v%d.c", i + 1);
        char *src = read_in(f.out, name);
        ck_assert_msg(banner_rate(src, "h") == strtod(rates[i], NULL), "%s: banner rate %g", name,
                      banner_rate(src, "h"));
        ck_assert_msg(strstr(src, thresholds[i]) != NULL, "%s: no threshold %s", name, thresholds[i]);
        for (int j = 0; j < 3; j++)
            if (j != i)
                ck_assert_msg(strstr(src, thresholds[j]) == NULL, "%s: has the threshold of %s", name, rates[j]);
        free(src);
        snprintf(name, sizeof name, "tiny_v%d", i + 1);
        ck_assert_msg(exists_in(f.out, name), "--keep: no binary %s", name);
        for (int e = 1; e <= 2; e++) { /* the trainer's lines, streamed with the variant's prefix */
            snprintf(line, sizeof line, "\n[v%d p=%s] epoch %d: train_loss ", i + 1, rates[i], e);
            ck_assert_msg(strstr(r.out, line) != NULL, "no '%s' in:\n%s", line + 1, r.out);
        }
        snprintf(name, sizeof name, "v%d.csv", i + 1);
        ck_assert_int_eq(read_metrics(f.out, name).rows, 2);
    }

    char *rows[8];
    int n = table_rows(r.out, TABLE_HEADER_TEST, rows, 8);
    ck_assert_int_eq(n, 3);
    int marked = -1;
    for (int i = 0; i < n; i++) {
        char rr[64], v[8];
        row_rates(rows[i], rr, sizeof rr);
        snprintf(v, sizeof v, "v%d", i + 1);
        ck_assert_msg(strncmp(rows[i], v, strlen(v)) == 0, "row %d: %s", i, rows[i]);
        ck_assert_str_eq(rr, rates[i]);
        if (strchr(rows[i], '*')) {
            ck_assert_int_eq(marked, -1);
            marked = i;
        }
    }
    ck_assert_int_ge(marked, 0);

    /* sweep.csv: the same rows, values matching the metrics files */
    char *csv = read_in(f.out, "sweep.csv");
    const char *head = "variant,rates,best_test_acc,final_test_acc,train_test_gap,seconds\n";
    ck_assert_msg(strncmp(csv, head, strlen(head)) == 0, "sweep.csv:\n%s", csv);
    const char *line = csv + strlen(head);
    double best = -1.0;
    int best_i = -1;
    for (int i = 0; i < 3; i++) {
        char v[16], rr[32], name[32];
        double b, t, g, s;
        ck_assert_msg(sscanf(line, "%15[^,],%31[^,],%lf,%lf,%lf,%lf\n", v, rr, &b, &t, &g, &s) == 6, "line: %s",
                      line);
        snprintf(name, sizeof name, "v%d", i + 1);
        ck_assert_str_eq(v, name);
        ck_assert_str_eq(rr, rates[i]);
        snprintf(name, sizeof name, "v%d.csv", i + 1);
        metrics m = read_metrics(f.out, name);
        ck_assert_double_eq_tol(b, m.best_test, 1e-6);
        ck_assert_double_eq_tol(t, m.last_test, 1e-6);
        ck_assert_double_eq_tol(g, m.last_train - m.last_test, 1e-6);
        ck_assert_double_eq_tol(s, m.seconds, 1e-3);
        ck_assert(b >= 0.0 && b <= 1.0 && s >= 0.0);
        if (b > best) {
            best = b;
            best_i = i;
        }
        line = strchr(line, '\n') + 1;
    }
    ck_assert_str_eq(line, "");
    ck_assert_int_eq(marked, best_i);

    /* sweep.svg: train dashed + test solid per variant */
    char *svg = read_in(f.out, "sweep.svg");
    ck_assert_int_eq(count_of(svg, "<polyline"), 6);
    ck_assert_int_eq(count_of(svg, "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" stroke-dasharray"), 1);
    for (int i = 0; i < 3; i++) {
        char label[32];
        snprintf(label, sizeof label, "<title>Train (p=%s)</title>", rates[i]);
        ck_assert_msg(strstr(svg, label) != NULL, "no %s", label);
        snprintf(label, sizeof label, "<title>Test (p=%s)</title>", rates[i]);
        ck_assert_msg(strstr(svg, label) != NULL, "no %s", label);
    }
    free(svg);
    free(csv);
    rows_free(rows, n);
    run_free(&r);
}
END_TEST

/* A variant that fails to compile is reported; the others still run; exit 3.
 * Without --keep a finished variant's source and binary are removed. */
START_TEST(test_failed_variant_others_go_on) {
    fixture f;
    fixture_init(&f, "sweep_mixed");
    char cc[8400];
    write_script(f.dir, "cc-wrap",
                 "#!/bin/sh\n"
                 "for a in \"$@\"; do case \"$a\" in *_v2.c) echo \"wrapper: refusing $a\" >&2; exit 1;; esac; done\n"
                 "exec '" DNGEN_CC "' \"$@\"\n",
                 cc, sizeof cc);
    run r;
    dngen(&r, "sweep", f.tiny, "--dropout", "0.2,0.4", "--out-dir", f.out, "--cc", cc, "--", "--data", f.data,
          "--epochs", "1", "--threads", "1", NULL);
    ck_assert_msg(r.rc == DNGEN_SWEEP_EXIT_VARIANT, "rc %d\nstdout:\n%s\nstderr:\n%s", r.rc, r.out, r.err);
    ck_assert_msg(strstr(r.err, "[v2 p=0.4] wrapper: refusing ") != NULL, "stderr:\n%s", r.err);
    ck_assert_msg(strstr(r.err, "v2 (p=0.4): compiling failed (exit 1)") != NULL, "stderr:\n%s", r.err);
    ck_assert_msg(strstr(r.err, "1 of 2 variants failed: v2\n") != NULL, "stderr:\n%s", r.err);
    ck_assert_msg(strstr(r.out, "[v1 p=0.2] epoch 1: ") != NULL, "stdout:\n%s", r.out);
    ck_assert(exists_in(f.out, "v1.csv") && !exists_in(f.out, "v2.csv"));
    ck_assert_msg(!exists_in(f.out, "tiny_v1.c") && !exists_in(f.out, "tiny_v1"), "v1 files left without --keep");
    ck_assert_msg(exists_in(f.out, "tiny_v2.c"), "the failed variant's source should be kept");
    char *rows[4];
    int n = table_rows(r.out, TABLE_HEADER_TEST, rows, 4);
    ck_assert_int_eq(n, 2);
    ck_assert_msg(strncmp(rows[0], "v1 *  ", 6) == 0 && !strstr(rows[0], "FAILED"), "%s", rows[0]);
    ck_assert_msg(strstr(rows[1], "0.4") && strstr(rows[1], "FAILED: compiling failed (exit 1)"), "%s", rows[1]);
    char *csv = read_in(f.out, "sweep.csv");
    ck_assert_msg(strstr(csv, "\nv2,0.4,,,,\n") != NULL, "sweep.csv:\n%s", csv);
    char *svg = read_in(f.out, "sweep.svg");
    ck_assert_int_eq(count_of(svg, "<polyline"), 2);
    free(svg);
    free(csv);
    rows_free(rows, n);
    run_free(&r);
}
END_TEST

/* ---- without compiling: --cc false --------------------------------------------- */

/* --cc false: every variant fails to compile, each is reported, exit 3,
 * sweep.csv lists them, no chart. A compiler that cannot start: the same. */
START_TEST(test_compiler_fails) {
    fixture f;
    fixture_init(&f, "sweep_ccfail");
    run r;
    dngen(&r, "sweep", f.tiny, "--dropout", "0.1,0.3", "--out-dir", f.out, "--cc", "false", NULL);
    ck_assert_int_eq(r.rc, 3);
    ck_assert_msg(strstr(r.err, "v1 (p=0.1): compiling failed (exit 1)") != NULL, "stderr:\n%s", r.err);
    ck_assert_msg(strstr(r.err, "v2 (p=0.3): compiling failed (exit 1)") != NULL, "stderr:\n%s", r.err);
    ck_assert_msg(strstr(r.err, "2 of 2 variants failed: v1 v2\n") != NULL, "stderr:\n%s", r.err);
    char *rows[4];
    int n = table_rows(r.out, TABLE_HEADER_TEST, rows, 4);
    ck_assert_int_eq(n, 2);
    for (int i = 0; i < n; i++)
        ck_assert_msg(strstr(rows[i], "FAILED") && !strchr(rows[i], '*'), "%s", rows[i]);
    char *csv = read_in(f.out, "sweep.csv");
    ck_assert_str_eq(csv, "variant,rates,best_test_acc,final_test_acc,train_test_gap,seconds\nv1,0.1,,,,\nv2,0.3,,,,\n");
    ck_assert(!exists_in(f.out, "sweep.svg"));
    free(csv);
    rows_free(rows, n);
    run_free(&r);

    dngen(&r, "sweep", f.tiny, "--dropout", "0.1", "--out-dir", f.out, "--cc", "/nonexistent/bin/cc", NULL);
    ck_assert_int_eq(r.rc, 3);
    ck_assert_msg(strstr(r.err, "cannot run '/nonexistent/bin/cc'") && strstr(r.err, "compiling: could not start"),
                  "stderr:\n%s", r.err);
    run_free(&r);
}
END_TEST

/* Which layers a variant changes: by default every hidden layer with
 * dropout > 0; with --layer only the named ones (dropout 0 in the spec or not). */
START_TEST(test_layer_restricts) {
    fixture f;
    fixture_init(&f, "sweep_layer");
    static const struct {
        const char *layers[3];
        double a, b, c; /* rates expected in the generated source */
        const char *plan;
    } cases[] = {
        {{NULL}, 0.1, 0.1, 0.0, "dropout of a, b (grid search)"},
        {{"b", NULL}, 0.5, 0.1, 0.0, "dropout of b (grid search)"},
        {{"c", "a", NULL}, 0.1, 0.25, 0.1, "dropout of a, c (grid search)"},
        {{"b", "b", NULL}, 0.5, 0.1, 0.0, "dropout of b (grid search)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *args[16];
        int n = 0;
        args[n++] = "sweep";
        args[n++] = f.three;
        args[n++] = "--dropout";
        args[n++] = "0.1";
        for (int j = 0; cases[k].layers[j]; j++) {
            args[n++] = "--layer";
            args[n++] = cases[k].layers[j];
        }
        args[n++] = "--cc";
        args[n++] = "false";
        args[n++] = "--out-dir";
        args[n++] = f.out;
        run r;
        dngen_v(&r, n, args);
        ck_assert_msg(r.rc == 3, "case %zu: rc %d\n%s", k, r.rc, r.err);
        ck_assert_msg(strstr(r.out, cases[k].plan) != NULL, "case %zu: stdout:\n%s", k, r.out);
        char *src = read_in(f.out, "three_v1.c");
        ck_assert_msg(banner_rate(src, "a") == cases[k].a, "case %zu: a %g", k, banner_rate(src, "a"));
        ck_assert_msg(banner_rate(src, "b") == cases[k].b, "case %zu: b %g", k, banner_rate(src, "b"));
        ck_assert_msg(banner_rate(src, "c") == cases[k].c, "case %zu: c %g", k, banner_rate(src, "c"));
        ck_assert_double_eq(banner_rate(src, "out"), 0.0);
        free(src);
        run_free(&r);
    }
}
END_TEST

/* The rates column of every table row of a `--cc false` random sweep, joined by ' '. */
static void random_rates(const char *spec, const char *out_dir, const char *range, const char *k, const char *seed_opt,
                         const char *seed, char *dst, size_t n) {
    run r;
    if (seed_opt)
        dngen(&r, "sweep", spec, "--random", k, "--range", range, "--cc", "false", "--out-dir", out_dir, "--",
              seed_opt, seed, NULL);
    else
        dngen(&r, "sweep", spec, "--random", k, "--range", range, "--cc", "false", "--out-dir", out_dir, NULL);
    ck_assert_msg(r.rc == 3, "rc %d\n%s", r.rc, r.err);
    char *rows[16];
    int m = table_rows(r.out, TABLE_HEADER_TEST, rows, 16);
    ck_assert_int_eq(m, atoi(k));
    dst[0] = '\0';
    for (int i = 0; i < m; i++) {
        char rr[128];
        row_rates(rows[i], rr, sizeof rr);
        snprintf(dst + strlen(dst), n - strlen(dst), "%s%s", i ? " " : "", rr);
    }
    rows_free(rows, m);
    run_free(&r);
}

/* --random K --range LO,HI: K rates with 3 decimals in [LO, HI), the same for
 * the same seed, different for another; they reach the generated sources;
 * the default seed is the spec's (42). Several layers: a rate each. */
START_TEST(test_random) {
    fixture f;
    fixture_init(&f, "sweep_random");
    char a[256], b[256], c[256], d[256], e[256];
    random_rates(f.tiny, f.out, "0.1,0.6", "3", "--seed", "7", a, sizeof a);
    random_rates(f.tiny, f.out, "0.1,0.6", "3", "--seed", "7", b, sizeof b);
    random_rates(f.tiny, f.out, "0.1,0.6", "3", "--seed=8", NULL, c, sizeof c);
    ck_assert_str_eq(a, b);
    ck_assert_msg(strcmp(a, c) != 0, "seeds 7 and 8 gave the same rates %s", a);
    for (const char *p = a; *p;) {
        char *end;
        double v = strtod(p, &end);
        ck_assert_msg(end - p == 5 && p[1] == '.', "rate '%.*s' not printed with 3 decimals", (int)(end - p), p);
        ck_assert_msg(v >= 0.1 && v < 0.6, "rate %g outside [0.1, 0.6)", v);
        p = *end ? end + 1 : end;
    }
    /* the sources of the last run (seed 7) */
    random_rates(f.tiny, f.out, "0.1,0.6", "3", "--seed", "7", b, sizeof b);
    const char *p = b;
    for (int i = 1; i <= 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "tiny_v%d.c", i);
        char *src = read_in(f.out, name), *end;
        double want = strtod(p, &end);
        p = end;
        ck_assert_msg(fabs(banner_rate(src, "h") - want) < 1e-12, "%s: %g, want %g", name, banner_rate(src, "h"), want);
        free(src);
    }
    random_rates(f.tiny, f.out, "0.1,0.6", "3", NULL, NULL, d, sizeof d);
    random_rates(f.tiny, f.out, "0.1,0.6", "3", "--seed", "42", e, sizeof e);
    ck_assert_str_eq(d, e);

    /* two targeted layers (a, b): "x/y" per variant, not all equal */
    random_rates(f.three, f.out, "0.2,0.8", "4", "--seed", "5", a, sizeof a);
    int differ = 0;
    for (const char *q = a; *q;) {
        char *end;
        double x = strtod(q, &end);
        ck_assert_msg(*end == '/', "rates '%s': want x/y per variant", a);
        double y = strtod(end + 1, &end);
        ck_assert(x >= 0.2 && x < 0.8 && y >= 0.2 && y < 0.8);
        differ |= x != y;
        q = *end ? end + 1 : end;
    }
    ck_assert_msg(differ, "per-layer rates all equal: %s", a);
    /* a narrow range holding a single grid point */
    random_rates(f.tiny, f.out, "0.3,0.3005", "2", NULL, NULL, a, sizeof a);
    ck_assert_str_eq(a, "0.300 0.300");
}
END_TEST

/* With val_acc in the metrics (the trainer's --val-split), variants are
 * ranked by validation accuracy, not test; the chart still shows train and
 * test only; a trainer that fails is reported with its stderr prefixed.
 * The "compiler" here copies a shell script that plays the trainer. */
START_TEST(test_val_columns_and_failing_trainer) {
    fixture f;
    fixture_init(&f, "sweep_val");
    char trainer[8400], cc[8400], cmd[17000];
    write_script(f.dir, "fake-trainer",
                 "#!/bin/sh\n"
                 "m=''; prev=''\n"
                 "for a in \"$@\"; do [ \"$prev\" = --metrics ] && m=$a; prev=$a; done\n"
                 "echo \"epoch 1: fake $1\"\n"
                 "case \"$0\" in *_v3) echo boom >&2; exit 4;; *_v4) exit 0;; esac\n"
                 "{ echo epoch,step,train_loss,train_acc,test_loss,test_acc,seconds,val_loss,val_acc\n"
                 "case \"$0\" in\n"
                 "*_v1) echo 1,10,0.5,0.91,0.4,0.90,1.5,0.5,0.70; echo 2,20,0.4,0.97,0.3,0.95,2.25,0.5,0.80;;\n"
                 "*)    echo 1,10,0.5,0.88,0.4,0.80,1.5,0.5,0.85; echo 2,20,0.4,0.90,0.3,0.81,2.25,0.5,0.83;;\n"
                 "esac; } > \"$m\"\n",
                 trainer, sizeof trainer);
    snprintf(cmd, sizeof cmd,
             "#!/bin/sh\nout=''; prev=''\nfor a in \"$@\"; do [ \"$prev\" = -o ] && out=$a; prev=$a; done\n"
             "cp '%s' \"$out\"\n",
             trainer);
    write_script(f.dir, "fake-cc", cmd, cc, sizeof cc);
    /* stale metrics of an earlier sweep must not pass for v4's, which writes none */
    ck_assert_int_eq(mkdir(f.out, 0777), 0);
    char stale[8400];
    snprintf(stale, sizeof stale, "%s/v4.csv", f.out);
    tu_write(stale, "epoch,step,train_loss,train_acc,test_loss,test_acc,seconds\n1,1,0.1,0.99,0.1,0.99,1\n");
    run r;
    dngen(&r, "sweep", f.tiny, "--dropout", "0.1,0.3,0.5,0.7", "--out-dir", f.out, "--cc", cc, "--", "--epochs", "2",
          NULL);
    ck_assert_msg(r.rc == 3, "rc %d\nstdout:\n%s\nstderr:\n%s", r.rc, r.out, r.err);
    ck_assert_msg(strstr(r.out, "\n[v2 p=0.3] epoch 1: fake train\n") != NULL, "stdout:\n%s", r.out);
    ck_assert_msg(strstr(r.err, "[v3 p=0.5] boom\n") != NULL, "stderr:\n%s", r.err);
    ck_assert_msg(strstr(r.err, "v3 (p=0.5): training failed (exit 4)") != NULL, "stderr:\n%s", r.err);
    ck_assert_msg(strstr(r.err, "v4 (p=0.7): no metrics file") != NULL, "stderr:\n%s", r.err);
    ck_assert_msg(strstr(r.err, "2 of 4 variants failed: v3 v4\n") != NULL, "stderr:\n%s", r.err);
    char *rows[8];
    int n = table_rows(r.out, "variant  rates            best_val_acc  final_test_acc  train_test_gap  seconds\n", rows,
                       8);
    ck_assert_int_eq(n, 4);
    ck_assert_str_eq(rows[0], "v1       0.1              0.8000        0.9500          +0.0200         3.75");
    ck_assert_str_eq(rows[1], "v2 *     0.3              0.8500        0.8100          +0.0900         3.75");
    ck_assert_str_eq(rows[2], "v3       0.5              FAILED: training failed (exit 4)");
    ck_assert_str_eq(rows[3], "v4       0.7              FAILED: no metrics file (the trainer wrote none)");
    ck_assert_msg(strstr(r.out, "* best by best_val_acc: v2 (p=0.3)\n") != NULL, "stdout:\n%s", r.out);
    ck_assert_msg(strstr(r.out, "no val_acc column") == NULL, "stdout:\n%s", r.out);
    char *csv = read_in(f.out, "sweep.csv");
    ck_assert_str_eq(csv, "variant,rates,best_val_acc,final_test_acc,train_test_gap,seconds\n"
                          "v1,0.1,0.800000,0.950000,0.020000,3.750\n"
                          "v2,0.3,0.850000,0.810000,0.090000,3.750\n"
                          "v3,0.5,,,,\n"
                          "v4,0.7,,,,\n");
    char *svg = read_in(f.out, "sweep.svg");
    ck_assert_int_eq(count_of(svg, "<polyline"), 4);
    ck_assert(strstr(svg, "Validation (") == NULL && strstr(svg, "<title>Test (p=0.3)</title>") != NULL);
    free(svg);
    free(csv);
    rows_free(rows, n);
    run_free(&r);
}
END_TEST

/* ---- usage errors: status, message, nothing created ------------------------- */

START_TEST(test_usage_errors) {
    fixture f;
    fixture_init(&f, "sweep_usage");
    static const struct {
        const char *args[7];
        const char *msg;
    } bad[] = {
        {{"--dropout", "0.3", "--layer", "nope"}, "--layer: no layer named 'nope'"},
        {{"--dropout", "0.3", "--layer", "out"}, "error: dropout is not allowed on the output layer, got 0.3"},
        {{"--dropout", "1"}, "error: dropout must be in [0, 1), got 1\n"},
        {{"--dropout", "0.1,1.0"}, "error: dropout must be in [0, 1), got 1\n"},
        {{"--dropout", "0.3,-0.1"}, "error: dropout must be in [0, 1), got -0.1\n"},
        {{"--dropout", "0.1,,0.3"}, "'' is not a number"},
        {{"--dropout", "0.1,"}, "'' is not a number"},
        {{"--dropout", ""}, "'' is not a number"},
        {{"--dropout", "abc"}, "'abc' is not a number"},
        {{"--dropout", "0.1;0.3"}, "'0.1;0.3' is not a number"},
        {{"--dropout", "nan"}, "'nan' is not a number"},
        {{"--dropout", "0x0.1p0"}, "'0x0.1p0' is not a number"},
        {{"--dropout", "0.1", "--random", "2", "--range", "0.1,0.2"}, "exactly one of --dropout"},
        {{"--keep"}, "exactly one of --dropout"},
        {{"--random", "3"}, "--random K needs --range"},
        {{"--random", "0", "--range", "0.1,0.5"}, "--random: expected a count"},
        {{"--random", "x", "--range", "0.1,0.5"}, "--random: expected a count"},
        {{"--random", "3", "--range", "0.5,0.1"}, "need 0 <= LO < HI <= 1"},
        {{"--random", "3", "--range", "0.5"}, "expected LO,HI"},
        {{"--random", "3", "--range", "0.1001,0.1009"}, "no rate of the 0.001 grid"},
        {{"--dropout", "0.3", "--range", "0.1,0.5"}, "--range goes with --random"},
        {{"--dropout", "0.3", "--frob"}, "unknown option '--frob'"},
        {{"--dropout", "0.3", "--dropout", "0.5"}, "'--dropout' given more than once"},
        {{"--dropout"}, "'--dropout' needs a value"},
        {{"--dropout", "0.3", "--", "--metrics", "x.csv"}, "trainer option --metrics"},
        {{"--dropout", "0.3", "--", "--seed", "abc"}, "trainer option --seed"},
        {{"--dropout", "0.3", "--cc", " "}, "compiler command is empty"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        const char *const *a = bad[k].args;
        run r;
        dngen(&r, "sweep", f.tiny, "--out-dir", f.out, a[0], a[1], a[2], a[3], a[4], a[5], a[6], NULL);
        ck_assert_msg(r.rc == DNGEN_EXIT_USAGE, "case %zu (%s): rc %d\n%s", k, a[0], r.rc, r.err);
        ck_assert_msg(strstr(r.err, bad[k].msg) != NULL, "case %zu: want '%s' in:\n%s", k, bad[k].msg, r.err);
        ck_assert_msg(strstr(r.err, "usage: dngen sweep ") != NULL, "case %zu: no usage line", k);
        ck_assert_str_eq(r.out, "");
        ck_assert_msg(!exists(f.out), "case %zu: created %s", k, f.out);
        run_free(&r);
    }
}
END_TEST

/* Rates are checked by the spec's validation, with the variant's rates as
 * overrides: its diagnostics (at the value they replace, or at the layer),
 * a note naming the sweep, and a usage error naming the variant; exit 2,
 * before anything is created. */
START_TEST(test_rates_validated) {
    fixture f;
    fixture_init(&f, "sweep_validated");
    run r;
    dngen(&r, "sweep", f.tiny, "--out-dir", f.out, "--dropout", "0.3", "--layer", "out", NULL);
    char want[16384];
    snprintf(want, sizeof want,
             "%s:5:5: error: dropout is not allowed on the output layer, got 0.3\n"
             "%s:5:5: note: dropout 0.3 of layer 'out' is set by dngen sweep, not by the spec file\n"
             "dngen sweep: error: v1 (p=0.3) is not a valid network (see above)\n",
             f.tiny, f.tiny);
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    ck_assert_msg(strncmp(r.err, want, strlen(want)) == 0, "stderr:\n%s\nwant:\n%s", r.err, want);
    ck_assert_msg(strstr(r.err, "usage: dngen sweep ") != NULL, "%s", r.err);
    ck_assert_str_eq(r.out, "");
    ck_assert(!exists(f.out));
    run_free(&r);
    /* the second variant's rate: at the spec's own dropout value */
    dngen(&r, "sweep", f.tiny, "--out-dir", f.out, "--dropout", "0.2,1.5", NULL);
    snprintf(want, sizeof want,
             "%s:4:52: error: dropout must be in [0, 1), got 1.5\n"
             "%s:4:52: note: dropout 1.5 of layer 'h' is set by dngen sweep, not by the spec file\n"
             "dngen sweep: error: v2 (p=1.5) is not a valid network (see above)\n",
             f.tiny, f.tiny);
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    ck_assert_msg(strncmp(r.err, want, strlen(want)) == 0, "stderr:\n%s\nwant:\n%s", r.err, want);
    ck_assert(!exists(f.out));
    run_free(&r);
    /* a high but valid rate is swept (its warning is not repeated per variant) */
    dngen(&r, "sweep", f.tiny, "--out-dir", f.out, "--dropout", "0.9", "--cc", "false", NULL);
    ck_assert_msg(r.rc == 3, "rc %d\n%s", r.rc, r.err);
    ck_assert_msg(strstr(r.err, "warning") == NULL, "%s", r.err);
    char *src = read_in(f.out, "tiny_v1.c");
    ck_assert_msg(banner_rate(src, "h") == 0.9, "banner rate %g", banner_rate(src, "h"));
    free(src);
    run_free(&r);
}
END_TEST

/* Invalid or missing spec, nothing to sweep, help. */
START_TEST(test_spec_errors_and_help) {
    fixture f;
    fixture_init(&f, "sweep_spec");
    char bad[8400];
    snprintf(bad, sizeof bad, "%s/bad.yaml", f.dir);
    tu_write(bad, "name: bad\ninput: 16\nlayers:\n  - {name: h, units: 8, activation: relu, dropout: 1.5}\n");
    run r;
    dngen(&r, "sweep", bad, "--dropout", "0.3", "--out-dir", f.out, "--cc", "false", NULL);
    ck_assert_msg(r.rc == DNGEN_EXIT_INVALID_SPEC, "rc %d\n%s", r.rc, r.err);
    ck_assert_msg(strstr(r.err, "bad.yaml: ") && !exists(f.out), "stderr:\n%s", r.err);
    run_free(&r);
    dngen(&r, "sweep", "/nonexistent/spec.yaml", "--dropout", "0.3", "--out-dir", f.out, NULL);
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    run_free(&r);
    dngen(&r, "sweep", "--dropout", "0.3", NULL);
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    ck_assert_msg(strstr(r.err, "no spec file given") != NULL, "%s", r.err);
    run_free(&r);
    dngen(&r, "sweep", f.nodrop, "--dropout", "0.3", "--out-dir", f.out, "--cc", "false", NULL);
    ck_assert_int_eq(r.rc, DNGEN_EXIT_USAGE);
    ck_assert_msg(strstr(r.err, "no hidden layer of ") && strstr(r.err, "--layer"), "%s", r.err);
    run_free(&r);
    dngen(&r, "sweep", f.nodrop, "--dropout", "0.3", "--layer", "h", "--out-dir", f.out, "--cc", "false", NULL);
    ck_assert_int_eq(r.rc, 3); /* with --layer it sweeps (and fails to compile) */
    run_free(&r);

    dngen(&r, "sweep", "--help", NULL);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_msg(strncmp(r.out, "usage: dngen sweep SPEC.yaml ", 29) == 0, "%s", r.out);
    run_free(&r);
    dngen(&r, "--help", NULL);
    ck_assert_msg(strstr(r.out, "\n       dngen sweep SPEC.yaml ") != NULL, "dngen --help:\n%s", r.out);
    run_free(&r);
    char *o = NULL; /* the installed binary dispatches too */
    ck_assert_int_eq(tu_runf(&o, "'%s' sweep --help", DNGEN_EXE), 0);
    ck_assert_msg(strstr(o, "usage: dngen sweep") != NULL, "%s", o);
    free(o);
}
END_TEST

int main(void) {
    Suite *s = suite_create("check_sweep");
    TCase *tc = tcase_create("train");
    tcase_add_test(tc, test_grid);
    tcase_add_test(tc, test_failed_variant_others_go_on);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("generate");
    tcase_add_test(tc, test_compiler_fails);
    tcase_add_test(tc, test_layer_restricts);
    tcase_add_test(tc, test_random);
    tcase_add_test(tc, test_val_columns_and_failing_trainer);
    tcase_add_test(tc, test_usage_errors);
    tcase_add_test(tc, test_rates_validated);
    tcase_add_test(tc, test_spec_errors_and_help);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
