/* check_act.c - issue 24's activations and losses in whole training runs:
 * a conv net with every new activation and label smoothing, and a binary
 * classifier (one sigmoid unit, binary cross-entropy) learn synthetic
 * image tasks; their weights are bit-identical at 1 and 2 threads and
 * without OpenMP; the binary model's MC eval and its predictor agree with
 * its eval. (Gradients and parity with PyTorch: check_generated and
 * check_conv.) */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dn_runtime.h"
#include "test_util.h"

/* Every activation of issue 24 (gelu in the tiled conv forward, parameters
 * whose derivative reads the output and others the pre-activation),
 * element and channel dropout, cross-entropy with label smoothing. */
static const char *const act_net =
    "name: anet\n"
    "input: {shape: [1, 10, 10]}\n"
    "layers:\n"
    "  - {type: conv2d, filters: 6, kernel: 3, activation: gelu}\n"
    "  - {type: maxpool2d, kernel: 2, dropout: {rate: 0.2, mode: channel}}\n"
    "  - {type: conv2d, filters: 8, kernel: 3, padding: 1, activation: {type: softplus, beta: 2, threshold: 1},"
    " dropout: 0.1}\n"
    "  - {type: flatten}\n"
    "  - {units: 24, activation: {type: leaky_relu, slope: -0.1}, dropout: 0.2}\n"
    "  - {units: 16, activation: {type: elu, alpha: 0.5}, batchnorm: true}\n"
    "  - {units: 16, activation: swish}\n"
    "  - {units: 12, activation: {type: gelu, approximate: tanh}}\n"
    "  - {units: 4, activation: softmax}\n"
    "train: {batch_size: 32, epochs: 3, seed: 5, loss: {type: cross_entropy, label_smoothing: 0.1}}\n";

/* Two classes, one sigmoid output. */
static const char *const bce_net =
    "name: bnet\n"
    "input: {shape: [1, 10, 10]}\n"
    "layers:\n"
    "  - {type: conv2d, filters: 4, kernel: 3, activation: silu}\n"
    "  - {type: avgpool2d, kernel: 2}\n"
    "  - {type: flatten}\n"
    "  - {units: 12, activation: elu, dropout: 0.3}\n"
    "  - {units: 1, activation: sigmoid}\n"
    "train: {batch_size: 32, epochs: 3, seed: 6, loss: binary_cross_entropy}\n";

static char dir[4096];

/* Writes spec `text` as dir/name.yaml and builds the trainer and a serial
 * standalone one (name_serial). Returns 0 or -1. */
static int build_pair(const char *name, const char *text) {
    char spec[4200], serial[128];
    snprintf(spec, sizeof spec, "%s/%s.yaml", dir, name);
    snprintf(serial, sizeof serial, "%s_serial", name);
    tu_write(spec, text);
    if (tu_build_trainer(spec, dir, name, "", "") != 0) return -1;
    return tu_build_trainer(spec, dir, serial, "--standalone", "-fno-openmp");
}

static void setup(void) {
    snprintf(dir, sizeof dir, "%s", tu_dir("act_e2e"));
    char *out = NULL;
    tu_runf(&out, "mkdir -p '%s/data4' '%s/data2'", dir, dir);
    free(out);
    char d4[4200], d2[4200];
    snprintf(d4, sizeof d4, "%s/data4", dir);
    snprintf(d2, sizeof d2, "%s/data2", dir);
    if (tu_write_synthetic_idx(d4, "train", 1500, 10, 10, 4, 1) != 0 ||
        tu_write_synthetic_idx(d4, "t10k", 400, 10, 10, 4, 2) != 0 ||
        tu_write_synthetic_idx(d2, "train", 1500, 10, 10, 2, 3) != 0 ||
        tu_write_synthetic_idx(d2, "t10k", 400, 10, 10, 2, 4) != 0 || build_pair("anet", act_net) != 0 ||
        build_pair("bnet", bce_net) != 0) {
        fprintf(stderr, "check_act setup failed\n");
        exit(1);
    }
}

/* Runs `./bin args` in dir; asserts exit status 0 and returns the output. */
/* noinline: inlined, GCC 12 warns (wrongly) that field() reads a dangling pointer */
__attribute__((noinline)) static char *run(const char *bin, const char *args) {
    char *out = NULL;
    int st = tu_runf(&out, "cd '%s' && ./%s %s 2>&1", dir, bin, args);
    if (st != 0) fprintf(stderr, "%s %s -> %d\n%s\n", bin, args, st, out);
    ck_assert_int_eq(st, 0);
    return out;
}

/* Trains `net` on `data` with 1 and 2 threads and serially: it learns (test
 * accuracy >= 0.9) and the three weight files are the same bytes. */
static void learns_bit_identical(const char *net, const char *data) {
    char args[512], serial[64];
    snprintf(args, sizeof args, "train --data %s --threads 1 --save %s1.safetensors", data, net);
    char *out = run(net, args);
    double acc = tu_last_test_acc(out);
    printf("%s: synthetic test accuracy %.4f\n", net, acc);
    ck_assert_msg(acc >= 0.9, "%s: test accuracy %.4f < 0.9\n%s", net, acc, out);
    free(out);
    snprintf(args, sizeof args, "train --data %s --threads 2 --save %s2.safetensors", data, net);
    free(run(net, args));
    snprintf(serial, sizeof serial, "%s_serial", net);
    snprintf(args, sizeof args, "train --data %s --save %ss.safetensors", data, net);
    free(run(serial, args));
    char a[96], b[96], c[96];
    snprintf(a, sizeof a, "%s1.safetensors", net);
    snprintf(b, sizeof b, "%s2.safetensors", net);
    snprintf(c, sizeof c, "%ss.safetensors", net);
    ck_assert_msg(tu_same_files(dir, a, b), "%s: 1 vs 2 threads differ", net);
    ck_assert_msg(tu_same_files(dir, a, c), "%s: OpenMP vs serial differ", net);
}

START_TEST(test_activations_learn_bit_identical) { learns_bit_identical("anet", "data4"); }
END_TEST

START_TEST(test_bce_learns_bit_identical) { learns_bit_identical("bnet", "data2"); }
END_TEST

/* The value after `key ` in out, or NAN. */
static double field(const char *out, const char *key) {
    const char *at = strstr(out, key);
    return at ? strtod(at + strlen(key), NULL) : NAN;
}

/* The binary model's eval, its MC eval (probability of class 1 averaged,
 * the class 1 above 0.5) and its predictor (classes 0 and 1 from the one
 * probability) agree. */
START_TEST(test_bce_eval_mc_predictor) {
    free(run("bnet", "train --data data2 --threads 2 --save p.safetensors"));
    char *out = run("bnet", "eval --weights p.safetensors --data data2");
    double acc = field(out, "test_acc ");
    free(out);
    out = run("bnet", "eval --weights p.safetensors --data data2 --mc 4");
    double mc_acc = field(out, "test_acc ");
    printf("bnet eval: test_acc %.4f; --mc 4: %s", acc, out);
    ck_assert_msg(acc >= 0.9 && mc_acc >= 0.85, "eval %.4f, mc %.4f", acc, mc_acc);
    ck_assert_ptr_nonnull(strstr(out, "entropy_correct"));
    free(out);
    int st = tu_runf(&out, "cd '%s' && '%s' bnet.yaml --inference --weights p.safetensors -o bnet_predict.c && "
                     "'%s' -O2 bnet_predict.c -o bnet_predict -lz -lm && "
                     "./bnet_predict data2/t10k-images-idx3-ubyte* --format csv --top 2 > pred.csv 2>&1",
                     dir, DNGEN_EXE, DNGEN_CC);
    ck_assert_msg(st == 0, "%s", out);
    free(out);
    dn_dataset ds;
    char err[DN_ERR_MAX], path[4200];
    snprintf(path, sizeof path, "%s/data2", dir);
    ck_assert_msg(dn_dataset_load(path, "t10k", 100, 2, &ds, err) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/pred.csv", dir);
    char *csv = tu_read(path, NULL), *line = strchr(csv, '\n');
    int rows = 0, hits = 0;
    while (line && line[1]) { /* index,class,probability,class_2,probability_2 */
        long idx = strtol(line + 1, &line, 10), cls = strtol(line + 1, &line, 10);
        double p = strtod(line + 1, &line);
        long cls2 = strtol(line + 1, &line, 10);
        double p2 = strtod(line + 1, &line);
        ck_assert(cls + cls2 == 1 && p >= p2 && fabs(p + p2 - 1.0) < 1e-5);
        hits += ds.labels[idx] == cls;
        rows++;
        line = strchr(line, '\n');
    }
    ck_assert_int_eq(rows, (int)ds.n);
    printf("predictor accuracy %.4f, eval %.4f\n", (double)hits / rows, acc);
    ck_assert_msg(fabs((double)hits / rows - acc) < 1e-4, "predictor %d/%d vs eval %.4f", hits, rows, acc);
    free(csv);
    dn_dataset_free(&ds);
}
END_TEST

/* ---- the activation functions against double-precision references ---------- */

/* One layer per function form; the program below includes the generated
 * trainer and compares each layer's <model>_<layer>_act and _dact, over
 * 800001 points of [-40, 40] and beyond the range of exp, with the
 * definitions in double (erf, tanh, exp, log1p of libm). Infinite inputs
 * only where PyTorch's own formula is not inf * 0 (gelu, silu: NaN). */
static const char *const fn_net =
    "name: fn\ninput: 2\nlayers:\n"
    "  - {name: g, units: 2, activation: gelu}\n"
    "  - {name: gt, units: 2, activation: {type: gelu, approximate: tanh}}\n"
    "  - {name: si, units: 2, activation: silu}\n"
    "  - {name: el, units: 2, activation: {type: elu, alpha: 1.3}}\n"
    "  - {name: en, units: 2, activation: {type: elu, alpha: -0.5}}\n"
    "  - {name: lr, units: 2, activation: {type: leaky_relu, slope: 0.2}}\n"
    "  - {name: sp, units: 2, activation: softplus}\n"
    "  - {name: sq, units: 2, activation: {type: softplus, beta: 2, threshold: 1}}\n"
    "  - {units: 2, activation: softmax}\n";

static const char *const fn_check =
    "#define main dn_generated_main\n"
    "#include \"fn.c\"\n"
    "#undef main\n"
    "#include <stdio.h>\n"
    "static double worst[16];\n"
    "/* error of got against want, in units of max(1, |x|, |want|) * 1e-7 */\n"
    "static void note(int k, double x, float got, double want) {\n"
    "    double s = fabs(x) > 1 ? fabs(x) : 1, e;\n"
    "    if (fabs(want) > s) s = fabs(want);\n"
    "    e = isinf(want) ? (got == want ? 0 : 1e9) : fabs(got - want) / s * 1e7;\n"
    "    if (!(e <= worst[k])) worst[k] = e != e ? 1e9 : e;\n"
    "}\n"
    "static double sg(double x) { return 1 / (1 + exp(-x)); }\n"
    "int main(void) {\n"
    "    const double c = 0.7978845608028654, k = 0.044715;\n"
    "    for (long i = -400001; i <= 400004; i++) {\n"
    "        double x = i * 1e-4;\n"
    "        if (i == -400001) x = -INFINITY; else if (i > 400000) x = (double[]){88.5, 89.0, -88.5, INFINITY}[i - 400001];\n"
    "        const float xf = (float)x;\n"
    "        x = xf;\n"
    "        double t = tanh(c * (x + k * x * x * x));\n"
    "        if (!isinf(x)) note(0, x, fn_g_act(xf), 0.5 * x * (1 + erf(x / sqrt(2))));\n"
    "        if (!isinf(x)) note(1, x, fn_g_dact(xf), 0.5 * (1 + erf(x / sqrt(2))) + x * exp(-x * x / 2) / sqrt(2 * M_PI));\n"
    "        if (!isinf(x)) note(2, x, fn_gt_act(xf), 0.5 * x * (1 + t));\n"
    "        if (!isinf(x)) note(3, x, fn_gt_dact(xf), 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * k * x * x));\n"
    "        if (!isinf(x)) note(4, x, fn_si_act(xf), x * sg(x));\n"
    "        if (!isinf(x)) note(5, x, fn_si_dact(xf), sg(x) * (1 + x * (1 - sg(x))));\n"
    "        note(6, x, fn_el_act(xf), x > 0 ? x : 1.3 * expm1(x));\n"
    "        note(7, x, fn_el_dact(fn_el_act(xf)), x > 0 ? 1 : 1.3 * exp(x));\n"
    "        note(8, x, fn_en_dact(xf), x > 0 ? 1 : -0.5 * exp(x));\n"
    "        note(9, x, fn_lr_act(xf), x > 0 ? x : 0.2 * x);\n"
    "        note(10, x, fn_sp_act(xf), x > 20 ? x : log1p(exp(x)));\n"
    "        note(11, x, fn_sp_dact(fn_sp_act(xf)), x > 20 ? 1 : sg(x));\n"
    "        note(12, x, fn_sq_act(xf), 2 * x > 1 ? x : log1p(exp(2 * x)) / 2);\n"
    "        note(13, x, fn_sq_dact(xf), 2 * x > 1 ? 1 : sg(2 * x));\n"
    "    }\n"
    "    for (int j = 0; j < 14; j++) printf(\"%d %.3g\\n\", j, worst[j]);\n"
    "    return 0;\n"
    "}\n";

/* Each activation and derivative is within a few float roundings of its
 * definition (errors in units of 1e-7 times max(1, |x|, |f(x)|); the
 * erf and tanh forms, like PyTorch's vectorized ones, to a few 1e-7 of x). */
START_TEST(test_functions_accurate) {
    char path[4200], *out = NULL;
    snprintf(path, sizeof path, "%s/fn.yaml", dir);
    tu_write(path, fn_net);
    snprintf(path, sizeof path, "%s/fn_check.c", dir);
    tu_write(path, fn_check);
    int st = tu_runf(&out, "cd '%s' && '%s' fn.yaml --standalone -o fn.c && '%s' -O2 -std=c11 -D_DEFAULT_SOURCE "
                     "fn_check.c -o fn_check -lz -lm && ./fn_check", dir, DNGEN_EXE, DNGEN_CC);
    ck_assert_msg(st == 0, "%s", out);
    printf("worst errors (1e-7 units):\n%s", out);
    for (const char *line = out; *line; line = strchr(line, '\n') + 1) {
        int k;
        double e;
        ck_assert_int_eq(sscanf(line, "%d %lg", &k, &e), 2);
        ck_assert_msg(e <= 6.0, "function %d: error %g x 1e-7", k, e);
        if (!strchr(line, '\n')) break;
    }
    free(out);
}
END_TEST

static Suite *act_suite(void) {
    Suite *s = suite_create("act");
    TCase *tc = tcase_create("train");
    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_activations_learn_bit_identical);
    tcase_add_test(tc, test_bce_learns_bit_identical);
    tcase_add_test(tc, test_bce_eval_mc_predictor);
    tcase_add_test(tc, test_functions_accurate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(act_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
