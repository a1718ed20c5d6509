/* check_conv.c - convolutional nets (conv2d, max and average pooling,
 * flatten, element and channel dropout, BatchNorm2d) generated, compiled
 * and run: their gradients agree with finite differences, they learn a
 * synthetic image task, and their weights are bit-identical at 1, 2 and 3
 * threads, without OpenMP, and after a resume. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dn_runtime.h"
#include "test_util.h"

/* ---- gradient checks ----------------------------------------------------------- */

/* Odd sizes, kernels 3 and 5, stride 1 and 2, padding 0, 1 and same (odd and
 * even kernels), max and average pooling with odd windows and overlapping
 * strides, element and channel dropout, every activation, every loss, a
 * conv after a conv and after a pool (their input gradients), and a dense
 * layer after a flatten. */
static const char *const gradcheck_specs[] = {
    "name: c1\ninput: {shape: [2, 9, 7]}\nlayers:\n"
    "  - {type: conv2d, filters: 3, kernel: 3, padding: 1, activation: tanh, dropout: 0.2}\n"
    "  - {type: conv2d, filters: 4, kernel: [3, 2], stride: 2, activation: relu, dropout: {rate: 0.3, mode: channel}}\n"
    "  - {type: flatten}\n"
    "  - {units: 5, activation: softmax}\n",
    "name: c2\ninput: {shape: [1, 11, 11], dropout: 0.1}\nlayers:\n"
    "  - {type: conv2d, filters: 5, kernel: 5, padding: same, activation: sigmoid}\n"
    "  - {type: maxpool2d, kernel: 3, stride: 2, dropout: 0.25}\n"
    "  - {type: conv2d, filters: 3, kernel: 2, padding: same, activation: relu}\n"
    "  - {type: avgpool2d, kernel: [2, 3]}\n"
    "  - {type: flatten}\n"
    "  - {units: 7, activation: tanh, dropout: 0.2}\n"
    "  - {units: 3, activation: softmax}\n",
    "name: c3\ninput: {shape: [3, 6, 6]}\nlayers:\n"
    "  - {type: avgpool2d, kernel: 2, stride: 1}\n"
    "  - {type: conv2d, filters: 2, kernel: 3, stride: [1, 2], padding: [2, 1], activation: linear}\n"
    "  - {type: maxpool2d, kernel: 2, dropout: {rate: 0.5, mode: channel}}\n"
    "  - {type: flatten}\n"
    "  - {units: 4, activation: linear}\n"
    "train: {loss: mse}\n",
    /* the register-tiled forward (no padding, column stride 1, >= 8 output
     * columns): full and partial filter blocks, a tail of columns, row
     * stride 2 */
    "name: c4\ninput: {shape: [2, 12, 13]}\nlayers:\n"
    "  - {type: conv2d, filters: 6, kernel: [3, 2], stride: [2, 1], activation: tanh, dropout: 0.2}\n"
    "  - {type: conv2d, filters: 5, kernel: 3, activation: relu, dropout: {rate: 0.3, mode: channel}}\n"
    "  - {type: flatten}\n"
    "  - {units: 3, activation: softmax}\n",
    /* `same` with an even kernel pads only after the rows and columns: not
     * the tiled kernels' case, though nothing is padded before */
    "name: c5\ninput: {shape: [2, 9, 10]}\nlayers:\n"
    "  - {type: conv2d, filters: 3, kernel: 2, padding: same, activation: relu}\n"
    "  - {type: conv2d, filters: 2, kernel: [2, 4], padding: same, activation: tanh}\n"
    "  - {type: flatten}\n"
    "  - {units: 3, activation: softmax}\n",
    /* BatchNorm2d in train mode (batch statistics): after the tiled and the
     * plain forward, with custom momentum and eps, element and channel
     * dropout after it, more channels than one group of 8, a conv and a
     * pool after it (their input gradients into its output) */
    "name: c6\ninput: {shape: [2, 8, 11]}\nlayers:\n"
    "  - {type: conv2d, filters: 3, kernel: 3, activation: tanh, batchnorm: true, dropout: 0.2}\n"
    "  - {type: conv2d, filters: 10, kernel: 2, padding: 1, activation: sigmoid,\n"
    "     batchnorm: {momentum: 0.3, eps: 1.0e-3}, dropout: {rate: 0.3, mode: channel}}\n"
    "  - {type: maxpool2d, kernel: 2}\n"
    "  - {type: flatten}\n"
    "  - {units: 4, activation: softmax}\n",
    /* issue 24's activations on convolutions: derivatives from the kept
     * pre-activation (gelu, softplus with a low threshold, negative elu
     * alpha, silu) through a max pool and a conv, from the output (leaky
     * relu); a pre-activation with row padding (conv3: 36 of 40) */
    "name: c7\ninput: {shape: [2, 9, 7]}\nlayers:\n"
    "  - {type: conv2d, filters: 3, kernel: 3, padding: 1, activation: gelu, dropout: 0.2}\n"
    "  - {type: maxpool2d, kernel: 2, stride: 1}\n"
    "  - {type: conv2d, filters: 4, kernel: [3, 2], stride: 2, activation: {type: softplus, beta: 2, threshold: 1},"
    " dropout: {rate: 0.3, mode: channel}}\n"
    "  - {type: conv2d, filters: 3, kernel: 1, activation: {type: elu, alpha: -0.5}}\n"
    "  - {type: conv2d, filters: 3, kernel: 1, activation: {type: leaky_relu, slope: 0.1}}\n"
    "  - {type: conv2d, filters: 2, kernel: 1, activation: swish}\n"
    "  - {type: flatten}\n"
    "  - {units: 5, activation: softmax}\n",
    /* the register-tiled forward with gelu (tanh) and elu, softplus after a
     * pool, binary cross-entropy */
    "name: c8\ninput: {shape: [2, 10, 12]}\nlayers:\n"
    "  - {type: conv2d, filters: 5, kernel: 3, activation: {type: gelu, approximate: tanh}}\n"
    "  - {type: conv2d, filters: 4, kernel: 3, activation: elu, dropout: 0.2}\n"
    "  - {type: avgpool2d, kernel: 2}\n"
    "  - {type: conv2d, filters: 3, kernel: 1, activation: softplus}\n"
    "  - {type: flatten}\n"
    "  - {units: 1, activation: sigmoid}\n"
    "train: {loss: binary_cross_entropy}\n",
    /* BatchNorm2d before activations whose derivative reads the kept
     * pre-activation (gelu, elu with a negative alpha; silu after a dense
     * batch norm) */
    "name: c9\ninput: {shape: [2, 8, 9]}\nlayers:\n"
    "  - {type: conv2d, filters: 3, kernel: 3, activation: gelu, batchnorm: true, dropout: 0.2}\n"
    "  - {type: conv2d, filters: 4, kernel: 2, padding: 1, activation: {type: elu, alpha: -0.5},\n"
    "     batchnorm: {momentum: 0.3, eps: 1.0e-3}}\n"
    "  - {type: maxpool2d, kernel: 2}\n"
    "  - {type: flatten}\n"
    "  - {units: 5, activation: silu, batchnorm: true}\n"
    "  - {units: 3, activation: softmax}\n"
    "train: {batch_size: 8}\n",
    /* a kernel taller than 64 rows (validation allows 1024): the tiled
     * gradient kernels' generator-side tables cover it */
    "name: c10\ninput: {shape: [1, 72, 10]}\nlayers:\n"
    "  - {type: conv2d, filters: 2, kernel: 1, activation: tanh}\n"
    "  - {type: conv2d, filters: 2, kernel: [70, 2], activation: tanh}\n"
    "  - {type: flatten}\n"
    "  - {units: 2, activation: softmax}\n",
};

/* The trainer's own gradcheck (central differences, masks fixed) passes. */
START_TEST(test_gradcheck) {
    const char *dir = tu_dir("conv_gradcheck");
    char spec[4096], cmd[8192];
    snprintf(spec, sizeof spec, "%s/g.yaml", dir);
    tu_write(spec, gradcheck_specs[_i]);
    ck_assert_int_eq(tu_build_trainer(spec, dir, "g", "", ""), 0);
    snprintf(cmd, sizeof cmd, "%s/g gradcheck --samples 30", dir);
    char *out = tu_expect_run(0, cmd);
    printf("conv spec %d:\n%s", _i, out);
    ck_assert_ptr_nonnull(strstr(out, "weight"));
    ck_assert_ptr_null(strstr(out, "FAIL"));
    free(out);
}
END_TEST

/* ---- training ------------------------------------------------------------------ */

/* A small LeNet-like net on 10x10 images of 4 classes: conv1 runs the
 * register-tiled forward kernel, conv2 (padded) the plain one, then
 * BatchNorm2d (its running statistics in checkpoints, eval and the
 * predictor). */
static const char *const net_text =
    "name: cnet\n"
    "input: {shape: [1, 10, 10]}\n"
    "layers:\n"
    "  - {name: conv1, type: conv2d, filters: 6, kernel: 3, activation: relu}\n"
    "  - {name: pool1, type: maxpool2d, kernel: 2, dropout: {rate: 0.2, mode: channel}}\n"
    "  - {name: conv2, type: conv2d, filters: 8, kernel: 3, padding: 1, activation: relu, dropout: 0.1,\n"
    "     batchnorm: {momentum: 0.2}}\n"
    "  - {name: pool2, type: avgpool2d, kernel: 2}\n"
    "  - {name: flat, type: flatten}\n"
    "  - {name: fc1, units: 16, activation: relu, dropout: 0.3}\n"
    "  - {name: fc2, units: 4, activation: softmax}\n"
    "train: {batch_size: 32, epochs: 3, seed: 5}\n";

static char dir[4096];

static void setup(void) {
    snprintf(dir, sizeof dir, "%s", tu_dir("conv_e2e"));
    char spec[4200], data[4200], *out = NULL;
    snprintf(spec, sizeof spec, "%s/cnet.yaml", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    tu_write(spec, net_text);
    tu_runf(&out, "mkdir -p '%s'", data);
    free(out);
    if (tu_write_synthetic_idx(data, "train", 2000, 10, 10, 4, 1) != 0 ||
        tu_write_synthetic_idx(data, "t10k", 400, 10, 10, 4, 2) != 0 ||
        tu_build_trainer(spec, dir, "cnet", "", "") != 0 ||
        tu_build_trainer(spec, dir, "cnet_serial", "--standalone", "-fno-openmp") != 0) {
        fprintf(stderr, "conv setup failed\n");
        exit(1);
    }
}

static char *trainer(const char *bin, const char *args) {
    char *out = NULL;
    int st = tu_runf(&out, "cd '%s' && ./%s train --data data %s 2>&1", dir, bin, args);
    if (st != 0) fprintf(stderr, "%s %s -> %d\n%s\n", bin, args, st, out);
    ck_assert_int_eq(st, 0);
    return out;
}

/* It learns, and 1, 2, 3 threads and a serial build give the same bytes. */
START_TEST(test_learns_bit_identical) {
    char *out = trainer("cnet", "--threads 1 --save t1.safetensors");
    double acc = tu_last_test_acc(out);
    printf("cnet: synthetic test accuracy %.4f\n", acc);
    ck_assert_msg(acc >= 0.9, "test accuracy %.4f < 0.9\n%s", acc, out);
    free(out);
    free(trainer("cnet", "--threads 2 --save t2.safetensors"));
    free(trainer("cnet", "--threads 3 --save t3.safetensors"));
    free(trainer("cnet_serial", "--save ts.safetensors"));
    ck_assert_msg(tu_same_files(dir, "t1.safetensors", "t2.safetensors"), "1 vs 2 threads differ");
    ck_assert_msg(tu_same_files(dir, "t1.safetensors", "t3.safetensors"), "1 vs 3 threads differ");
    ck_assert_msg(tu_same_files(dir, "t1.safetensors", "ts.safetensors"), "OpenMP vs serial differ");
}
END_TEST

/* Stopping after 70 steps and resuming ends on the uninterrupted weights. */
START_TEST(test_resume_bit_identical) {
    free(trainer("cnet", "--threads 2 --checkpoint-every 100000 --save full.safetensors"));
    free(trainer("cnet", "--threads 2 --checkpoint-every 100000 --save part.safetensors --max-steps 70"));
    free(trainer("cnet", "--threads 2 --checkpoint-every 100000 --save part.safetensors --resume part.safetensors"));
    ck_assert_msg(tu_same_files(dir, "full.safetensors", "part.safetensors"), "resumed run differs");
}
END_TEST

/* The mean cross-entropy over a predictor's CSV of all classes (`--top
 * K`: index, then K pairs of class and probability per line) for the
 * labels of ds; *hits counts the first class equal to the label. */
static double csv_loss(char *csv, int k, const dn_dataset *ds, int *rows, int *hits) {
    double loss = 0.0;
    *rows = *hits = 0;
    for (char *line = strchr(csv, '\n'); line && line[1]; line = strchr(line, '\n')) {
        long idx = strtol(line + 1, &line, 10);
        for (int j = 0; j < k; j++) {
            long cls = strtol(line + 1, &line, 10);
            double prob = strtod(line + 1, &line);
            if (cls != ds->labels[idx]) continue;
            *hits += j == 0;
            loss -= log(prob > 5e-7 ? prob : 5e-7); /* printed to 6 decimals */
        }
        (*rows)++;
    }
    return *rows ? loss / *rows : 0.0;
}

/* The trainer's `eval --weights p.safetensors` with extra arguments `args`:
 * its test_acc and test_loss. */
static void eval_figures(const char *args, double *acc, double *loss) {
    char *out = NULL;
    int st = tu_runf(&out, "cd '%s' && ./cnet eval --weights p.safetensors --data data %s 2>&1", dir, args);
    ck_assert_msg(st == 0, "%s", out);
    const char *acc_at = strstr(out, "test_acc "), *loss_at = strstr(out, "test_loss ");
    ck_assert_msg(acc_at && loss_at, "%s", out);
    *acc = strtod(acc_at + 9, NULL);
    *loss = strtod(loss_at + 10, NULL);
    free(out);
}

/* The predictor's accuracy and mean loss on the test set, with extra
 * arguments `args`, all 4 classes listed. */
static void predictor_figures(const char *args, const dn_dataset *ds, double *acc, double *loss) {
    char *out = NULL, path[4200];
    int st = tu_runf(&out, "cd '%s' && ./cnet_predict data/t10k-images-idx3-ubyte* --format csv --top 4 %s > pred.csv",
                     dir, args);
    ck_assert_msg(st == 0, "%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/pred.csv", dir);
    char *csv = tu_read(path, NULL);
    ck_assert_ptr_nonnull(csv);
    int rows = 0, hits = 0;
    *loss = csv_loss(csv, 4, ds, &rows, &hits);
    ck_assert_int_eq(rows, (int)ds->n);
    *acc = (double)hits / rows;
    free(csv);
}

/* The static predictor made from the saved weights classifies the test set
 * as the trainer's eval does (batch norm on its running statistics): the
 * same accuracy to the last sample, and the same mean loss from its
 * probabilities; with MC dropout (same seed, same batches, so the same
 * masks) too. */
START_TEST(test_predictor_agrees_with_eval) {
    free(trainer("cnet", "--threads 2 --save p.safetensors"));
    char *out = NULL;
    int st = tu_runf(&out, "cd '%s' && '%s' cnet.yaml --inference --weights p.safetensors -o cnet_predict.c && "
                     "'%s' -O2 cnet_predict.c -o cnet_predict -lz -lm 2>&1", dir, DNGEN_EXE, DNGEN_CC);
    ck_assert_msg(st == 0, "%s", out);
    free(out);
    dn_dataset ds;
    char err[DN_ERR_MAX], path[4200];
    snprintf(path, sizeof path, "%s/data", dir);
    ck_assert_msg(dn_dataset_load(path, "t10k", 100, 4, &ds, err) == 0, "%s", err);
    double eval_acc, eval_loss, acc, loss;
    eval_figures("", &eval_acc, &eval_loss);
    predictor_figures("", &ds, &acc, &loss);
    printf("predictor accuracy %.4f loss %.5f, eval %.4f loss %.4f\n", acc, loss, eval_acc, eval_loss);
    ck_assert_msg(fabs(acc - eval_acc) < 1e-4, "predictor accuracy %.4f vs eval %.4f", acc, eval_acc);
    ck_assert_msg(fabs(loss - eval_loss) < 2e-4, "predictor loss %.5f vs eval %.4f", loss, eval_loss);
    double mc_eval_acc, mc_eval_loss;
    eval_figures("--mc 5 --mc-seed 3 --batch-size 100", &mc_eval_acc, &mc_eval_loss);
    predictor_figures("--mc 5 --seed 3 --batch 100", &ds, &acc, &loss);
    printf("MC dropout: predictor accuracy %.4f loss %.5f, eval %.4f loss %.4f\n", acc, loss, mc_eval_acc,
           mc_eval_loss);
    ck_assert_msg(fabs(acc - mc_eval_acc) < 1e-4, "MC predictor accuracy %.4f vs eval %.4f", acc, mc_eval_acc);
    ck_assert_msg(fabs(loss - mc_eval_loss) < 2e-4, "MC predictor loss %.5f vs eval %.4f", loss, mc_eval_loss);
    ck_assert_msg(fabs(mc_eval_loss - eval_loss) > 1e-3, "MC dropout changed nothing (loss %.4f)", eval_loss);
    dn_dataset_free(&ds);
}
END_TEST

static Suite *conv_suite(void) {
    Suite *s = suite_create("conv");
    TCase *tc = tcase_create("gradcheck");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_gradcheck, 0, (int)(sizeof gradcheck_specs / sizeof gradcheck_specs[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("train");
    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_learns_bit_identical);
    tcase_add_test(tc, test_resume_bit_identical);
    tcase_add_test(tc, test_predictor_agrees_with_eval);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(conv_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
