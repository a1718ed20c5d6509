/* check_data_train.c - generated trainers on CSV and NPY data: a spec with a
 * `data: {format: csv}` section trains on a file the test writes (string
 * class labels, an ignored id column, a seeded test split, standard
 * scaling), learns the problem, gives the same results at any thread
 * count, and `eval` sees the same test rows; the NPY format with the
 * files given on the command line; and the errors a user meets first
 * (feature count, missing file) as one line and exit status 3. */
#include "test_util.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[4096];
static int built;

static const char *const spec_csv =
    "name: blobs\n"
    "input: 4\n"
    "layers:\n"
    "  - {name: fc1, units: 16, activation: relu}\n"
    "  - {name: out, units: 3, activation: softmax}\n"
    "train: {batch_size: 16, epochs: 12, seed: 5, optimizer: {type: adam, lr: 0.01}}\n"
    "data: {format: csv, train: blobs.csv, header: true, target: species, ignore: [id],\n"
    "       test_split: 0.25, normalize: standard}\n";

static const char *const spec_npy =
    "name: blobsn\n"
    "input: 4\n"
    "layers:\n"
    "  - {name: fc1, units: 16, activation: relu}\n"
    "  - {name: out, units: 3, activation: softmax}\n"
    "train: {batch_size: 16, epochs: 12, seed: 5, optimizer: {type: adam, lr: 0.01}}\n"
    "data: {format: npy, train: none.npy, train_y: none_y.npy, normalize: standard}\n";

static const char *const spec_reg =
    "name: reg\n"
    "input: 3\n"
    "layers:\n"
    "  - {name: fc1, units: 24, activation: tanh}\n"
    "  - {name: out, units: 2, activation: linear}\n"
    "train: {batch_size: 16, epochs: 30, seed: 9, loss: mse, optimizer: {type: adam, lr: 0.01}}\n"
    "data: {format: csv, train: reg.csv, header: true, target: [y1, y2], test_split: 0.2,\n"
    "       normalize: standard}\n";

static const char *const spec_reg1 =
    "name: reg1\n"
    "input: 3\n"
    "layers:\n"
    "  - {name: fc1, units: 8, activation: tanh}\n"
    "  - {name: out, units: 1, activation: linear}\n"
    "train: {batch_size: 16, epochs: 3, seed: 9, loss: mse}\n"
    "data: {format: csv, train: reg1.csv, test: reg1t.csv, header: true, normalize: minmax}\n";

/* Uniform in [-1, 1) from an LCG. */
static double lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 4503599627370496.0 - 1.0;
}

/* Sample i of the blobs problem: class i % 3, four features on very
 * different scales (so that scaling matters), each class apart. */
static int blob(int i, uint64_t *s, double f[4]) {
    int c = i % 3;
    f[0] = 1000 + 30 * c + 8 * lcg(s);
    f[1] = -0.05 + 0.02 * c + 0.006 * lcg(s);
    f[2] = 3 * lcg(s); /* noise only */
    f[3] = (c == 1 ? 5 : -5) + 2 * lcg(s);
    return c;
}

/* Writes n blobs as CSV with an id column and string labels. */
static void write_csv(const char *path, int n, unsigned seed) {
    static const char *const names[3] = {"setosa", "versicolor", "virginica"};
    uint64_t s = seed;
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "id,sepal,petal,noise,width,species\n");
    for (int i = 0; i < n; i++) {
        double x[4];
        int c = blob(i, &s, x);
        fprintf(f, "%d,%.6f,%.6g,%.4f,%.5f,%s\n", 1000 + i, x[0], x[1], x[2], x[3], names[c]);
    }
    ck_assert_int_eq(fclose(f), 0);
}

/* Writes a version-1 .npy: header dict, then `bytes` of data. */
static void write_npy(const char *path, const char *descr, const char *shape, const void *data, size_t bytes) {
    char dict[256];
    int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    size_t hl = ((size_t)dl + 11 + 63) / 64 * 64 - 10;
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc((int)(hl & 255), f);
    fputc((int)(hl >> 8), f);
    fwrite(dict, 1, (size_t)dl, f);
    for (size_t k = (size_t)dl; k + 1 < hl; k++)
        fputc(' ', f);
    fputc('\n', f);
    fwrite(data, 1, bytes, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* Writes n blobs as x (float32 [n, 4]) and y (int64 [n]) .npy files. */
static void write_npy_blobs(const char *xp, const char *yp, int n, unsigned seed) {
    float *x = malloc((size_t)n * 4 * sizeof *x);
    int64_t *y = malloc((size_t)n * sizeof *y);
    uint64_t s = seed;
    for (int i = 0; i < n; i++) {
        double f[4];
        y[i] = blob(i, &s, f);
        for (int k = 0; k < 4; k++)
            x[i * 4 + k] = (float)f[k];
    }
    char shape[64];
    snprintf(shape, sizeof shape, "(%d, 4)", n);
    write_npy(xp, "<f4", shape, x, (size_t)n * 4 * sizeof *x);
    snprintf(shape, sizeof shape, "(%d,)", n);
    write_npy(yp, "<i8", shape, y, (size_t)n * sizeof *y);
    free(x);
    free(y);
}

/* Writes n rows of a, b, c (on different scales), y1 = 2a' - b' + c'/2
 * and y2 = a' b' (primes: the features on [-1, 1]); with `one`, only y1. */
static void write_reg(const char *path, int n, unsigned seed, int one) {
    uint64_t s = seed;
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, one ? "a,b,c,y1\n" : "a,b,c,y1,y2\n");
    for (int i = 0; i < n; i++) {
        double a = lcg(&s), b = lcg(&s), c = lcg(&s);
        fprintf(f, "%.6f,%.6f,%.6f,%.6f", 50 + 10 * a, 0.01 * b, c, 2 * a - b + 0.5 * c);
        if (one)
            fprintf(f, "\n");
        else
            fprintf(f, ",%.6f\n", a * b);
    }
    ck_assert_int_eq(fclose(f), 0);
}

/* Builds both trainers and writes the data once. */
static void setup(void) {
    if (built)
        return;
    snprintf(dir, sizeof dir, "%s", tu_dir("data_train"));
    char path[4200];
    snprintf(path, sizeof path, "%s/blobs.yaml", dir);
    tu_write(path, spec_csv);
    ck_assert_int_eq(tu_build_trainer(path, dir, "blobs", "", ""), 0);
    snprintf(path, sizeof path, "%s/blobsn.yaml", dir);
    tu_write(path, spec_npy);
    ck_assert_int_eq(tu_build_trainer(path, dir, "blobsn", "", ""), 0);
    snprintf(path, sizeof path, "%s/reg.yaml", dir);
    tu_write(path, spec_reg);
    ck_assert_int_eq(tu_build_trainer(path, dir, "reg", "", ""), 0);
    snprintf(path, sizeof path, "%s/reg1.yaml", dir);
    tu_write(path, spec_reg1);
    ck_assert_int_eq(tu_build_trainer(path, dir, "reg1", "", ""), 0);
    snprintf(path, sizeof path, "%s/reg.csv", dir);
    write_reg(path, 500, 31, 0);
    snprintf(path, sizeof path, "%s/reg1.csv", dir);
    write_reg(path, 200, 32, 1);
    snprintf(path, sizeof path, "%s/reg1t.csv", dir);
    write_reg(path, 60, 33, 1);
    snprintf(path, sizeof path, "%s/blobs.csv", dir);
    write_csv(path, 320, 11);
    snprintf(path, sizeof path, "%s/three.csv", dir);
    tu_write(path, "id,a,b,c,species\n1,1,2,3,x\n2,4,5,6,y\n");
    char yp[4200];
    snprintf(path, sizeof path, "%s/x.npy", dir);
    snprintf(yp, sizeof yp, "%s/y.npy", dir);
    write_npy_blobs(path, yp, 300, 21);
    snprintf(path, sizeof path, "%s/xt.npy", dir);
    snprintf(yp, sizeof yp, "%s/yt.npy", dir);
    write_npy_blobs(path, yp, 90, 22);
    built = 1;
}

START_TEST(test_csv_trains_and_evaluates) {
    setup();
    char cmd[8800];
    snprintf(cmd, sizeof cmd, "cd '%s' && ./blobs train --threads 2 --save w2.safetensors 2>&1", dir);
    char *out = tu_expect_run(0, cmd);
    double acc = tu_last_test_acc(out);
    ck_assert_msg(acc >= 0.95, "test_acc %g after 12 epochs:\n%s", acc, out);
    snprintf(cmd, sizeof cmd, "cd '%s' && ./blobs train --threads 1 --save w1.safetensors --quiet 2>&1", dir);
    free(tu_expect_run(0, cmd));
    ck_assert_msg(tu_same_files(dir, "w1.safetensors", "w2.safetensors"), "weights differ between 1 and 2 threads");
    /* eval sees the same 80 test rows (round(0.25 * 320)) */
    snprintf(cmd, sizeof cmd, "cd '%s' && ./blobs eval --weights w2.safetensors 2>&1", dir);
    char *ev = tu_expect_run(0, cmd);
    char want[64];
    snprintf(want, sizeof want, "test_acc %.4f", acc);
    ck_assert_msg(strstr(ev, want) != NULL, "eval says:\n%s\ntrain's last epoch: %s", ev, want);
    free(ev);
    free(out);
}
END_TEST

START_TEST(test_csv_errors) {
    setup();
    char cmd[8800];
    snprintf(cmd, sizeof cmd, "cd '%s' && ./blobs train --train three.csv 2>&1", dir);
    char *out = tu_expect_run(3, cmd);
    ck_assert_msg(strstr(out, "blobs: three.csv: 3 features per row, but the network's input takes 4 (spec `input:`)\n"),
                  "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "cd '%s' && ./blobs train --train nothere.csv 2>&1", dir);
    out = tu_expect_run(3, cmd);
    ck_assert_msg(strstr(out, "blobs: nothere.csv: No such file or directory\n"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "cd '%s' && ./blobs train --data d 2>&1", dir);
    out = tu_expect_run(2, cmd);
    ck_assert_msg(strstr(out, "unknown option '--data'"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "cd '%s' && ./blobs train --help 2>&1", dir);
    out = tu_expect_run(0, cmd);
    ck_assert_msg(strstr(out, "--train FILE") && strstr(out, "(default blobs.csv)") && !strstr(out, "--train-y"),
                  "%s", out);
    free(out);
}
END_TEST

START_TEST(test_npy_from_command_line) {
    setup();
    char cmd[8800];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && ./blobsn train --train x.npy --train-y y.npy --test xt.npy --test-y yt.npy "
             "--save wn.safetensors --val-split 0.2 --early-stopping 3 2>&1",
             dir);
    char *out = tu_expect_run(0, cmd);
    double acc = tu_last_test_acc(out);
    ck_assert_msg(acc >= 0.95, "test_acc %g:\n%s", acc, out);
    ck_assert_msg(strstr(out, "val_acc"), "no validation metrics:\n%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "cd '%s' && ./blobsn eval --weights wn.safetensors --train x.npy --train-y y.npy 2>&1",
             dir);
    out = tu_expect_run(3, cmd);
    ck_assert_msg(strstr(out, "no test set"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "cd '%s' && ./blobsn train --train x.npy --train-y yt.npy 2>&1", dir);
    out = tu_expect_run(3, cmd);
    ck_assert_msg(strstr(out, "yt.npy: labels must have shape [300]"), "%s", out);
    free(out);
}
END_TEST

/* The number after `key ` in out (-1e30 when absent): the last one. */
static double last_value(const char *out, const char *key) {
    double v = -1e30;
    char pat[64];
    snprintf(pat, sizeof pat, "%s ", key);
    for (const char *p = strstr(out, pat); p; p = strstr(p + 1, pat))
        v = strtod(p + strlen(pat), NULL);
    return v;
}

START_TEST(test_regression_trains) {
    setup();
    char cmd[8800];
    snprintf(cmd, sizeof cmd, "cd '%s' && ./reg gradcheck 2>&1", dir);
    free(tu_expect_run(0, cmd)); /* the real-valued mse gradient against finite differences */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && ./reg train --threads 2 --save r2.safetensors --metrics reg.csv.out --val-split 0.1 2>&1", dir);
    char *out = tu_expect_run(0, cmd);
    double rmse = last_value(out, "test_rmse"), r2 = last_value(out, "test_r2"), mae = last_value(out, "test_mae");
    ck_assert_msg(r2 > 0.95 && rmse > 0 && rmse < 0.2 && mae > 0 && mae <= rmse, "rmse %g mae %g r2 %g:\n%s", rmse,
                  mae, r2, out);
    ck_assert_msg(strstr(out, "train_rmse ") && strstr(out, "val_r2 ") && !strstr(out, "_acc"), "%s", out);
    snprintf(cmd, sizeof cmd, "cd '%s' && ./reg train --threads 1 --save r1.safetensors --quiet --val-split 0.1 2>&1",
             dir);
    free(tu_expect_run(0, cmd));
    ck_assert_msg(tu_same_files(dir, "r1.safetensors", "r2.safetensors"), "weights differ between 1 and 2 threads");
    char path[4200];
    snprintf(path, sizeof path, "%s/reg.csv.out", dir);
    char *metrics = tu_read(path, NULL);
    ck_assert_ptr_nonnull(metrics);
    ck_assert_msg(strncmp(metrics, "epoch,step,train_loss,train_rmse,test_loss,test_rmse,seconds,val_loss,val_rmse,"
                                   "test_mae,test_r2,val_mae,val_r2,lr\n", 110) == 0, "%s", metrics);
    free(metrics);
    snprintf(cmd, sizeof cmd, "cd '%s' && ./reg eval --weights r2.safetensors 2>&1", dir);
    char *ev = tu_expect_run(0, cmd);
    ck_assert_msg(fabs(last_value(ev, "test_rmse") - rmse) < 1e-4, "eval:\n%s\ntrain: %g", ev, rmse);
    double loss = last_value(ev, "test_loss");
    ck_assert_msg(fabs(rmse * rmse - loss) < 1e-3 * loss + 1e-4, "rmse^2 %g vs mse %g", rmse * rmse, loss);
    free(ev);
    free(out);
}
END_TEST

/* R^2 of one output is 1 - n * mse / SST: SST computed here from the file. */
START_TEST(test_regression_r2_definition) {
    setup();
    char cmd[8800];
    snprintf(cmd, sizeof cmd, "cd '%s' && ./reg1 train --quiet --save q.safetensors 2>&1 && ./reg1 eval --weights q.safetensors 2>&1", dir);
    char *ev = tu_expect_run(0, cmd);
    uint64_t s = 33;
    double sum = 0, sum2 = 0;
    for (int i = 0; i < 60; i++) {
        double a = lcg(&s), b = lcg(&s), c = lcg(&s);
        char buf[32];
        snprintf(buf, sizeof buf, "%.6f", 2 * a - b + 0.5 * c); /* the value as written */
        double y = (float)strtod(buf, NULL);
        sum += y;
        sum2 += y * y;
    }
    double sst = sum2 - sum * sum / 60, mse = last_value(ev, "test_loss"), r2 = last_value(ev, "test_r2");
    ck_assert_msg(fabs(r2 - (1 - 60 * mse / sst)) < 2e-4, "r2 %g, 1 - n mse / sst = %g\n%s", r2, 1 - 60 * mse / sst, ev);
    free(ev);
}
END_TEST

static const char *const spec_names =
    "name: names\n"
    "input: 2\n"
    "layers:\n"
    "  - {name: fc1, units: 16, activation: relu}\n"
    "  - {name: out, units: 4, activation: softmax}\n"
    "train: {batch_size: 8, epochs: 40, seed: 2, optimizer: {type: adam, lr: 0.02}}\n"
    "data: {format: csv, train: names.csv, header: true, normalize: minmax}\n";

/* Class names that would break a C comment or string, a printf format or
 * trigraphs, and one that is not UTF-8, each a quadrant around (500, 3). */
static const char *const hostile[4] = {"*/ int x; /*", "a\"b\\c", "?\?=%n%s\t\r", "\xff\xfe not utf-8"};

/* The predictor built from a trainer's checkpoint prints the class names
 * exactly as the CSV gave them, and applies the training scaling. */
START_TEST(test_predictor_names_and_scaling) {
    setup();
    char path[4200], cmd[8800];
    snprintf(path, sizeof path, "%s/names.csv", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "x,\"y\",label\n");
    uint64_t s = 5;
    for (int i = 0; i < 200; i++) {
        int c = i % 4;
        double x = 500 + (c & 1 ? 100 : -100) + 20 * lcg(&s), y = 3 + (c & 2 ? 1 : -1) + 0.2 * lcg(&s);
        fprintf(f, "%.3f,%.4f,\"", x, y);
        for (const char *p = hostile[c]; *p; p++)
            fputs(*p == '"' ? "\"\"" : (char[2]){*p, 0}, f);
        fprintf(f, "\"\n");
    }
    ck_assert_int_eq(fclose(f), 0);
    snprintf(path, sizeof path, "%s/names.yaml", dir);
    tu_write(path, spec_names);
    ck_assert_int_eq(tu_build_trainer(path, dir, "names", "", ""), 0);
    snprintf(cmd, sizeof cmd, "cd '%s' && ./names train --quiet --save names.safetensors 2>&1", dir);
    free(tu_expect_run(0, cmd));
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' names.yaml --inference --weights names.safetensors -o names_pred.c 2>&1 && "
             "'%s' -std=c11 -O1 -Wall -Wextra -Werror -Wno-unused-function names_pred.c -o names_pred -lz -lm 2>&1",
             dir, DNGEN_EXE, DNGEN_CC);
    free(tu_expect_run(0, cmd));
    /* the quadrant centres, raw (unscaled) */
    snprintf(path, sizeof path, "%s/centres.csv", dir);
    tu_write(path, "x,y\n400,2\n600,2\n400,4\n600,4\n");
    snprintf(cmd, sizeof cmd, "cd '%s' && ./names_pred centres.csv 2>&1", dir);
    char *out = tu_expect_run(0, cmd);
    for (int c = 0; c < 4; c++) {
        char want[96];
        snprintf(want, sizeof want, "%d: class %s p=", c, hostile[c]);
        ck_assert_msg(strstr(out, want) != NULL, "no \"%s\" in:\n%s", want, out);
    }
    /* the same rows as a float64 .npy: the same answers */
    const double centres[8] = {400, 2, 600, 2, 400, 4, 600, 4};
    snprintf(path, sizeof path, "%s/centres.npy", dir);
    write_npy(path, "<f8", "(4, 2)", centres, sizeof centres);
    snprintf(cmd, sizeof cmd, "cd '%s' && ./names_pred centres.npy 2>&1", dir);
    char *npy_out = tu_expect_run(0, cmd);
    ck_assert_str_eq(npy_out, out);
    free(npy_out);
    snprintf(path, sizeof path, "%s/wide.npy", dir);
    write_npy(path, "<f8", "(2, 4)", centres, sizeof centres);
    snprintf(cmd, sizeof cmd, "cd '%s' && ./names_pred wide.npy 2>&1", dir);
    npy_out = tu_expect_run(3, cmd);
    ck_assert_msg(strstr(npy_out, "wide.npy: expected float32, float64 or uint8 samples [n, ...] of 2 values each"),
                  "%s", npy_out);
    free(npy_out);
    free(out);
    snprintf(cmd, sizeof cmd, "cd '%s' && ./names_pred centres.csv --format json 2>&1", dir);
    out = tu_expect_run(0, cmd);
    ck_assert_msg(strstr(out, "{\"index\":1,\"class\":\"a\\\"b\\\\c\",") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "{\"index\":2,\"class\":\"?\?=%n%s\\u0009\\u000d\",") != NULL, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "cd '%s' && ./names_pred centres.csv --format csv 2>&1", dir);
    out = tu_expect_run(0, cmd);
    ck_assert_msg(strstr(out, "\n1,\"a\"\"b\\c\",") != NULL, "%s", out);
    free(out);
}
END_TEST

/* ---- multi-label binary cross-entropy ------------------------------------------ */

static const char *const spec_ml =
    "name: ml\n"
    "input: 4\n"
    "layers:\n"
    "  - {name: fc1, units: 24, activation: relu, dropout: 0.1}\n"
    "  - {name: out, units: 3, activation: sigmoid}\n"
    "train: {batch_size: 16, epochs: 30, seed: 4, loss: binary_cross_entropy, optimizer: {type: adam, lr: 0.01}}\n"
    "data: {format: csv, train: ml.csv, test: mlt.csv, header: true, target: [a, b, c], normalize: standard}\n";

/* The features of row i of the multi-label problem (four, on different
 * scales) and its labels: a = f0 > 0, b = f1 + f2 > 0, c = f3 < -0.2 (on
 * the [-1, 1] scale before scaling). */
static void ml_row(uint64_t *s, double f[4], int lab[3]) {
    double u[4];
    for (int k = 0; k < 4; k++)
        u[k] = lcg(s);
    f[0] = 100 + 20 * u[0], f[1] = 0.01 * u[1], f[2] = 0.01 * u[2], f[3] = 3 * u[3];
    lab[0] = u[0] > 0, lab[1] = u[1] + u[2] > 0, lab[2] = u[3] < -0.2;
}

/* Writes n rows "f0,f1,f2,f3,a,b,c" (with labels) or, for the predictor,
 * the features alone; the labels of each row into lab[3 * i ..] when
 * lab != NULL. */
static void write_ml(const char *path, int n, unsigned seed, int with_labels, int *lab) {
    uint64_t s = seed;
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, with_labels ? "f0,f1,f2,f3,a,b,c\n" : "f0,f1,f2,f3\n");
    for (int i = 0; i < n; i++) {
        double x[4];
        int l[3];
        ml_row(&s, x, l);
        fprintf(f, "%.5f,%.7f,%.7f,%.5f", x[0], x[1], x[2], x[3]);
        if (with_labels)
            fprintf(f, ",%d,%d,%d", l[0], l[1], l[2]);
        fprintf(f, "\n");
        if (lab)
            memcpy(lab + 3 * i, l, sizeof l);
    }
    ck_assert_int_eq(fclose(f), 0);
}

/* Three 0/1 target columns and a sigmoid layer of 3 units: the trainer
 * learns the rule (exact-match accuracy, every label right, reported as
 * train_acc / test_acc), is bit-reproducible across thread counts, and
 * eval's test_loss and test_acc are the definitions (mean over rows and
 * labels of -t ln p - (1 - t) ln(1 - p); the share of rows whose three
 * labels are all p > 0.5 exactly when t = 1) computed here from the
 * predictor's probabilities, three per row. */
START_TEST(test_multilabel_trains) {
    setup();
    enum { NT = 120 };
    char path[4200], cmd[8800];
    static int lab[3 * NT];
    snprintf(path, sizeof path, "%s/ml.csv", dir);
    write_ml(path, 600, 41, 1, NULL);
    snprintf(path, sizeof path, "%s/mlt.csv", dir);
    write_ml(path, NT, 42, 1, lab);
    snprintf(path, sizeof path, "%s/mltx.csv", dir);
    write_ml(path, NT, 42, 0, NULL);
    snprintf(path, sizeof path, "%s/ml.yaml", dir);
    tu_write(path, spec_ml);
    ck_assert_int_eq(tu_build_trainer(path, dir, "ml", "", ""), 0);
    snprintf(cmd, sizeof cmd, "cd '%s' && ./ml gradcheck 2>&1", dir);
    free(tu_expect_run(0, cmd));
    snprintf(cmd, sizeof cmd, "cd '%s' && ./ml train --threads 2 --save m2.safetensors --metrics ml.metrics 2>&1", dir);
    char *out = tu_expect_run(0, cmd);
    double acc = tu_last_test_acc(out);
    ck_assert_msg(acc >= 0.9, "exact-match test_acc %g after 30 epochs:\n%s", acc, out);
    ck_assert_msg(strstr(out, "train_acc ") && !strstr(out, "rmse"), "%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/ml.metrics", dir);
    char *metrics = tu_read(path, NULL);
    ck_assert_ptr_nonnull(metrics);
    ck_assert_msg(strncmp(metrics, "epoch,step,train_loss,train_acc,test_loss,test_acc,", 51) == 0, "%s", metrics);
    free(metrics);
    snprintf(cmd, sizeof cmd, "cd '%s' && ./ml train --threads 1 --save m1.safetensors --quiet 2>&1", dir);
    free(tu_expect_run(0, cmd));
    ck_assert_msg(tu_same_files(dir, "m1.safetensors", "m2.safetensors"), "weights differ between 1 and 2 threads");
    snprintf(cmd, sizeof cmd, "cd '%s' && ./ml eval --weights m2.safetensors 2>&1", dir);
    char *ev = tu_expect_run(0, cmd);
    double ev_loss = last_value(ev, "test_loss"), ev_acc = last_value(ev, "test_acc");
    ck_assert_msg(fabs(ev_acc - acc) < 1e-9, "eval:\n%s\ntrain's last test_acc %g", ev, acc);
    /* the predictor: index,labels,p_0,p_1,p_2 per row */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' ml.yaml --inference --weights m2.safetensors -o ml_pred.c 2>&1 && "
             "'%s' -std=c11 -O1 -Wall -Wextra -Werror -Wno-unused-function ml_pred.c -o ml_pred -lz -lm 2>&1 && "
             "./ml_pred mltx.csv --format csv 2>&1",
             dir, DNGEN_EXE, DNGEN_CC);
    char *pred = tu_expect_run(0, cmd);
    ck_assert_msg(strncmp(pred, "index,labels,p_0,p_1,p_2\n", 25) == 0, "%s", pred);
    const char *line = strchr(pred, '\n') + 1;
    double loss = 0;
    int right = 0;
    for (int i = 0; i < NT; i++) {
        double p[3];
        ck_assert_int_eq((int)strtol(line, NULL, 10), i);
        const char *labels = strchr(line, ','), *probs = labels ? strchr(labels + 1, ',') : NULL; /* labels: 0;2 */
        ck_assert_msg(probs != NULL, "line %d: %.60s", i, line);
        ck_assert_int_eq(sscanf(probs, ",%lf,%lf,%lf", &p[0], &p[1], &p[2]), 3);
        int all = 1;
        for (int j = 0; j < 3; j++) {
            int t = lab[3 * i + j];
            double q = t ? p[j] : 1 - p[j];
            loss -= log(q > 1e-6 ? q : 1e-6);
            all &= (p[j] > 0.5) == t;
        }
        right += all;
        line = strchr(line, '\n');
        ck_assert_ptr_nonnull(line);
        line++;
    }
    ck_assert_str_eq(line, ""); /* one line per row */
    loss /= 3.0 * NT;
    ck_assert_msg(fabs(ev_acc - (double)right / NT) < 5.1e-5, "eval test_acc %g, from the probabilities %g", ev_acc, /* 4 decimals */
                  (double)right / NT);
    ck_assert_msg(fabs(ev_loss - loss) < 2e-4 + 1e-2 * loss, "eval test_loss %g, from the probabilities %g", ev_loss,
                  loss);
    free(pred);
    free(ev);
}
END_TEST

/* A target other than 0 or 1 is an error naming the file, row and column;
 * MC-dropout eval is refused (its sums score one label per row). */
START_TEST(test_multilabel_errors) {
    setup();
    char path[4200], cmd[8800];
    snprintf(path, sizeof path, "%s/ml.yaml", dir);
    tu_write(path, spec_ml);
    ck_assert_int_eq(tu_build_trainer(path, dir, "ml", "", ""), 0);
    snprintf(path, sizeof path, "%s/mlbad.csv", dir);
    tu_write(path, "f0,f1,f2,f3,a,b,c\n1,2,3,4,0,1,1\n1,2,3,4,1,0.5,0\n");
    snprintf(cmd, sizeof cmd, "cd '%s' && ./ml train --train mlbad.csv --test mlbad.csv 2>&1", dir);
    char *out = tu_expect_run(3, cmd);
    ck_assert_msg(strstr(out, "ml: mlbad.csv: row 2, target column 2 ('b'): 0.5, but multi-label "
                              "binary_cross_entropy takes targets 0 and 1\n"), "%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/mlok.csv", dir);
    tu_write(path, "f0,f1,f2,f3,a,b,c\n1,2,3,4,0,1,1\n1,2,3,4,1,0,0\n");
    snprintf(cmd, sizeof cmd, "cd '%s' && ./ml train --train mlok.csv --test mlok.csv --epochs 1 --quiet "
                              "--save mlok.safetensors 2>&1 && ./ml eval --test mlok.csv --weights mlok.safetensors --mc 4 2>&1",
             dir);
    out = tu_expect_run(2, cmd);
    ck_assert_msg(strstr(out, "not supported"), "%s", out);
    free(out);
}
END_TEST

static Suite *data_train_suite(void) {
    Suite *s = suite_create("check_data_train");
    TCase *tc = tcase_create("trainers");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_csv_trains_and_evaluates);
    tcase_add_test(tc, test_csv_errors);
    tcase_add_test(tc, test_npy_from_command_line);
    tcase_add_test(tc, test_regression_trains);
    tcase_add_test(tc, test_regression_r2_definition);
    tcase_add_test(tc, test_predictor_names_and_scaling);
    tcase_add_test(tc, test_multilabel_trains);
    tcase_add_test(tc, test_multilabel_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(data_train_suite());
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
