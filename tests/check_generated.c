/* check_generated.c - generated trainers, compiled and run: they build cleanly
 * everywhere, match PyTorch, check their own gradients, apply dropout as
 * PyTorch does, learn, and are bit-reproducible across thread counts and
 * interruptions. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define FIXTURES DNGEN_SOURCE_DIR "/tests/fixtures"

/* ---- builds ------------------------------------------------------------------ */

/* The seed network compiles warning-free (-Wall -Wextra -Werror -std=c11)
 * with gcc and clang, with and without OpenMP, standalone and linked; so do
 * a batch norm net and the nets with every activation. */
START_TEST(test_compiles_everywhere) {
    const char *dir = tu_dir("compile");
    char cmd[8192], *out;
    snprintf(cmd, sizeof cmd, "'%s' %s/specs/mlp.yaml -o %s/lib.c && '%s' %s/specs/mlp.yaml --standalone -o %s/sa.c",
             DNGEN_EXE, DNGEN_SOURCE_DIR, dir, DNGEN_EXE, DNGEN_SOURCE_DIR, dir);
    free(tu_expect_run(0, cmd));
    const char *ccs[] = {"gcc", "clang"}, *omps[] = {"", "-fopenmp"}, *files[] = {"lib", "sa"};
    for (int c = 0; c < 2; c++)
        for (int o = 0; o < 2; o++)
            for (int f = 0; f < 2; f++) {
                snprintf(cmd, sizeof cmd,
                         "%s -std=c11 -O1 -Wall -Wextra -Werror %s -I%s/runtime -c %s/%s.c -o %s/%s_%d%d.o", ccs[c],
                         omps[o], DNGEN_SOURCE_DIR, dir, files[f], dir, files[f], c, o);
                out = tu_expect_run(0, cmd);
                ck_assert_str_eq(out, ""); /* not even a note */
                free(out);
            }
    /* A network with batch norm (its own kernels), in the linked form. */
    snprintf(cmd, sizeof cmd, "'%s' %s/specs/mlp_batchnorm.yaml -o %s/bn.c", DNGEN_EXE, DNGEN_SOURCE_DIR, dir);
    free(tu_expect_run(0, cmd));
    for (int c = 0; c < 2; c++)
        for (int o = 0; o < 2; o++) {
            snprintf(cmd, sizeof cmd, "%s -std=c11 -O1 -Wall -Wextra -Werror %s -I%s/runtime -c %s/bn.c -o %s/bn_%d%d.o",
                     ccs[c], omps[o], DNGEN_SOURCE_DIR, dir, dir, c, o);
            out = tu_expect_run(0, cmd);
            ck_assert_str_eq(out, "");
            free(out);
        }
    /* Every activation of issue 24, dense and conv (their functions take
     * floats, never a vector, whose ABI would depend on AVX), linked form. */
    const char *acts[] = {"small_act", "small_act_conv"};
    for (int a = 0; a < 2; a++) {
        snprintf(cmd, sizeof cmd, "'%s' %s/tests/fixtures/%s.yaml -o %s/%s.c", DNGEN_EXE, DNGEN_SOURCE_DIR, acts[a],
                 dir, acts[a]);
        free(tu_expect_run(0, cmd));
        for (int c = 0; c < 2; c++)
            for (int o = 0; o < 2; o++) {
                snprintf(cmd, sizeof cmd, "%s -std=c11 -O1 -Wall -Wextra -Werror %s -I%s/runtime -c %s/%s.c -o %s/%s_%d%d.o",
                         ccs[c], omps[o], DNGEN_SOURCE_DIR, dir, acts[a], dir, acts[a], c, o);
                out = tu_expect_run(0, cmd);
                ck_assert_str_eq(out, "");
                free(out);
            }
    }
    /* The standalone file links with nothing but libc, libm and zlib. */
    snprintf(cmd, sizeof cmd, "cc -O2 -fopenmp %s/sa.c -o %s/sa -lz -lm && %s/sa --help", dir, dir, dir);
    out = tu_expect_run(0, cmd);
    ck_assert_ptr_nonnull(strstr(out, "train"));
    free(out);
}
END_TEST

/* Output size must not grow with layer widths (sizes are literals, never unrolled
 * whole): a 16x wider network gives a file of about the same size. */
START_TEST(test_source_size_independent_of_width) {
    const char *dir = tu_dir("size");
    char narrow[4096], wide[4096];
    snprintf(narrow, sizeof narrow, "%s/narrow.yaml", dir);
    snprintf(wide, sizeof wide, "%s/wide.yaml", dir);
    tu_write(narrow, "name: n\ninput: 784\nlayers:\n  - {units: 128, activation: relu, dropout: 0.5}\n"
                     "  - {units: 128, activation: relu}\n  - {units: 10, activation: softmax}\n");
    tu_write(wide, "name: n\ninput: 784\nlayers:\n  - {units: 2048, activation: relu, dropout: 0.5}\n"
                   "  - {units: 2048, activation: relu}\n  - {units: 10, activation: softmax}\n");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s -o %s/n.c && '%s' %s -o %s/w.c", DNGEN_EXE, narrow, dir, DNGEN_EXE, wide, dir);
    free(tu_expect_run(0, cmd));
    size_t ln, lw;
    char *a = tu_read(strcat(strcpy(cmd, dir), "/n.c"), &ln);
    char *b = tu_read(strcat(strcpy(cmd, dir), "/w.c"), &lw);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_msg(lw < ln + ln / 10, "wide %zu bytes vs narrow %zu", lw, ln);
    free(a);
    free(b);
}
END_TEST

/* ---- PyTorch parity ------------------------------------------------------------- */

/* Dense nets, then conv nets (conv2d, max and average pooling, flatten,
 * element and channel dropout, BatchNorm2d), the optimizers and clipping,
 * then issue 24's activations and losses (tests/fixtures/README.md lists
 * what each covers). */
static const char *const fixture_cases[] = {"small_ce",    "small_mse",   "small_adamw", "small_l2",
                                            "small_noise", "small_bn",    "small_bn_out", "seed_mlp",
                                            "small_conv1", "small_conv2", "small_conv3", "small_conv4",
                                            "small_sgd",   "small_rmsprop", "small_clip", "small_clip_sgd",
                                            "small_act",   "small_act_conv", "small_bce",  "small_mlbce"};
#define N_FIXTURES ((int)(sizeof fixture_cases / sizeof fixture_cases[0]))

/* Forward (eval), train-mode loss and every gradient, with dngen's dropout
 * masks applied on the PyTorch side, agree with the committed fixture. */
START_TEST(test_fixture_forward_backward) {
    const char *c = fixture_cases[_i];
    const char *dir = tu_dir(c);
    char spec[4096], cmd[8192];
    snprintf(spec, sizeof spec, "%s/%s.yaml", FIXTURES, c);
    ck_assert_int_eq(tu_build_trainer(spec, dir, c, "", ""), 0);
    char sym[128];
    snprintf(sym, sizeof sym, "%s_model", c);
    ck_assert_int_eq(tu_build_probe(dir, c, sym), 0);
    snprintf(cmd, sizeof cmd, "%s/%s_probe fixture %s/%s.safetensors", dir, c, FIXTURES, c);
    char *out = tu_expect_run(0, cmd);
    printf("%s:\n%s", c, out);
    free(out);
}
END_TEST

/* Replaces every "dropout: <number>", "rate: <number>" (an image layer's
 * `dropout: {rate: p, mode: channel}`) and "noise: <number>" in text by
 * "...: 0" (the fixture's Adam steps ran without either); "dropout: {" stays. */
static char *strip_dropout(const char *text) {
    char *r = malloc(strlen(text) + 1), *w = r;
    ck_assert_ptr_nonnull(r);
    for (const char *p = text; *p;) {
        int key = strncmp(p, "dropout: ", 9) == 0 ? 9
                  : strncmp(p, "rate: ", 6) == 0  ? 6
                  : strncmp(p, "noise: ", 7) == 0 ? 7
                                                   : 0;
        if (key && (p[key] == '.' || (p[key] >= '0' && p[key] <= '9'))) {
            memcpy(w, p, (size_t)key);
            w += key;
            *w++ = '0';
            p += key;
            while (*p == '.' || (*p >= '0' && *p <= '9')) p++;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    return r;
}

/* Ten optimizer steps (dropout off, as in the fixture) land on PyTorch's weights. */
START_TEST(test_fixture_adam10) {
    const char *c = fixture_cases[_i];
    const char *dir = tu_dir(c);
    char spec[4096], cmd[8192];
    snprintf(spec, sizeof spec, "%s/%s.yaml", FIXTURES, c);
    char *text = tu_read(spec, NULL);
    ck_assert_ptr_nonnull(text);
    char *nodrop = strip_dropout(text);
    snprintf(spec, sizeof spec, "%s/nodrop.yaml", dir);
    tu_write(spec, nodrop);
    free(text);
    free(nodrop);
    ck_assert_int_eq(tu_build_trainer(spec, dir, c, "", ""), 0);
    char sym[128];
    snprintf(sym, sizeof sym, "%s_model", c);
    ck_assert_int_eq(tu_build_probe(dir, c, sym), 0);
    snprintf(cmd, sizeof cmd, "%s/%s_probe fixture %s/%s.safetensors --adam", dir, c, FIXTURES, c);
    char *out = tu_expect_run(0, cmd);
    printf("%s adam10:\n%s", c, out);
    free(out);
}
END_TEST

/* ---- dropout semantics -------------------------------------------------------- */

static const double dropout_rates[] = {0.1, 0.3, 0.5};

/* Empirical drop rate within 4 sigma of p, mean preserved, eval is the
 * identity, masks bit-identical on 1 and 2 threads. */
START_TEST(test_dropout_statistics) {
    double p = dropout_rates[_i];
    const char *dir = tu_dir("dropout");
    char spec[4096], text[512], cmd[8192];
    snprintf(spec, sizeof spec, "%s/drop.yaml", dir);
    snprintf(text, sizeof text,
             "name: drop\ninput: {size: 1024, dropout: %g}\nlayers:\n  - {units: 1, activation: linear}\n"
             "train: {loss: mse}\n",
             p);
    tu_write(spec, text);
    ck_assert_int_eq(tu_build_trainer(spec, dir, "drop", "", ""), 0);
    ck_assert_int_eq(tu_build_probe(dir, "drop", "drop_model"), 0);
    snprintf(cmd, sizeof cmd, "%s/drop_probe dropout %g", dir, p);
    char *out = tu_expect_run(0, cmd);
    printf("p=%g: %s", p, out);
    free(out);
    if (_i == 0) { /* the kernels' vectorized Philox gives the scalar one's words */
        snprintf(cmd, sizeof cmd, "%s/drop_probe philox", dir);
        out = tu_expect_run(0, cmd);
        printf("%s", out);
        free(out);
    }
}
END_TEST

/* ---- gradient checks ----------------------------------------------------------- */

/* Specs covering every activation, every loss, input dropout, dropout and
 * noise on hidden layers, batch norm (hidden and output layers), and widths
 * that exercise every tile remainder. */
static const char *const gradcheck_specs[] = {
    "name: g1\ninput: {size: 13, dropout: 0.2}\nlayers:\n"
    "  - {units: 29, activation: tanh, dropout: 0.3}\n"
    "  - {units: 9, activation: sigmoid, noise: 0.2, dropout: 0.5}\n"
    "  - {units: 6, activation: relu, noise: 0.1}\n"
    "  - {units: 5, activation: softmax}\n",
    "name: g2\ninput: 37\nlayers:\n"
    "  - {units: 33, activation: relu, dropout: 0.25}\n"
    "  - {units: 4, activation: linear}\n"
    "train: {loss: mse}\n",
    "name: g3\ninput: 8\nlayers:\n"
    "  - {units: 16, activation: linear, noise: 0.5}\n"
    "  - {units: 3, activation: sigmoid}\n"
    "train: {loss: mse}\n",
    "name: g4\ninput: 5\nlayers:\n"
    "  - {units: 11, activation: sigmoid}\n"
    "  - {units: 2, activation: tanh}\n"
    "train: {loss: mse, optimizer: adamw}\n",
    "name: g5\ninput: 50\nlayers:\n"
    "  - {units: 25, activation: tanh, dropout: 0.1}\n"
    "  - {units: 10, activation: softmax}\n",
    "name: g6\ninput: {size: 11, dropout: 0.1}\nlayers:\n"
    "  - {units: 13, activation: relu, batchnorm: true, dropout: 0.3}\n"
    "  - {units: 9, activation: tanh, batchnorm: {momentum: 0.5, eps: 0.01}, noise: 0.2}\n"
    "  - {units: 7, activation: sigmoid}\n"
    "  - {units: 3, activation: softmax, batchnorm: true}\n",
    "name: g7\ninput: 6\nlayers:\n"
    "  - {units: 20, activation: sigmoid, batchnorm: true}\n"
    "  - {units: 2, activation: linear, batchnorm: true}\n"
    "train: {loss: mse}\n",
    /* every activation of issue 24 (derivatives from the output and from
     * the kept pre-activation, after batch norm too), label smoothing */
    "name: g8\ninput: {size: 13, dropout: 0.2}\nlayers:\n"
    "  - {units: 29, activation: gelu, dropout: 0.3}\n"
    "  - {units: 11, activation: {type: gelu, approximate: tanh}, noise: 0.2}\n"
    "  - {units: 9, activation: swish, batchnorm: true}\n"
    "  - {units: 10, activation: {type: leaky_relu, slope: 0.2}, dropout: 0.1}\n"
    "  - {units: 7, activation: elu}\n"
    "  - {units: 6, activation: softplus}\n"
    "  - {units: 5, activation: softmax}\n"
    "train: {loss: {type: cross_entropy, label_smoothing: 0.1}}\n",
    /* negative slope and alpha, softplus with a low threshold (derivatives
     * from the pre-activation); binary cross-entropy after batch norm */
    "name: g9\ninput: 7\nlayers:\n"
    "  - {units: 9, activation: {type: leaky_relu, slope: -0.3}}\n"
    "  - {units: 8, activation: {type: elu, alpha: -0.5}, batchnorm: true}\n"
    "  - {units: 6, activation: {type: softplus, beta: 2, threshold: 1}, dropout: 0.2}\n"
    "  - {units: 1, activation: sigmoid, batchnorm: true}\n"
    "train: {loss: binary_cross_entropy}\n",
    /* binary cross-entropy in the fused head */
    "name: g10\ninput: 10\nlayers:\n"
    "  - {units: 17, activation: {type: elu, alpha: 0.7}}\n"
    "  - {units: 1, activation: sigmoid}\n"
    "train: {loss: binary_cross_entropy}\n",
    /* multi-label binary cross-entropy (random 0/1 targets per output):
     * after batch norm (g11), and in the fused head with 11 labels, a tile
     * remainder (g12) */
    "name: g11\ninput: {size: 9, dropout: 0.1}\nlayers:\n"
    "  - {units: 14, activation: tanh, dropout: 0.2}\n"
    "  - {units: 5, activation: sigmoid, batchnorm: true}\n"
    "train: {loss: binary_cross_entropy}\n"
    "data: {format: npy, train: x.npy, train_y: t.npy}\n",
    "name: g12\ninput: 6\nlayers:\n"
    "  - {units: 13, activation: relu}\n"
    "  - {units: 11, activation: sigmoid}\n"
    "train: {loss: binary_cross_entropy}\n"
    "data: {format: npy, train: x.npy, train_y: t.npy}\n",
};

/* The trainer's own `gradcheck` (central differences with the dropout masks
 * and noise fixed) passes for every spec above. */
START_TEST(test_gradcheck) {
    const char *dir = tu_dir("gradcheck");
    char spec[4096], cmd[8192];
    snprintf(spec, sizeof spec, "%s/g.yaml", dir);
    tu_write(spec, gradcheck_specs[_i]);
    ck_assert_int_eq(tu_build_trainer(spec, dir, "g", "", ""), 0);
    snprintf(cmd, sizeof cmd, "%s/g gradcheck --samples 30", dir);
    char *out = tu_expect_run(0, cmd);
    printf("spec %d:\n%s", _i, out);
    ck_assert_ptr_nonnull(strstr(out, "ok"));
    ck_assert_ptr_null(strstr(out, "FAIL"));
    free(out);
}
END_TEST

/* ---- suite ------------------------------------------------------------------- */

static Suite *generated_suite(void) {
    Suite *s = suite_create("generated");
    TCase *tc = tcase_create("build");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_compiles_everywhere);
    tcase_add_test(tc, test_source_size_independent_of_width);
    suite_add_tcase(s, tc);

    tc = tcase_create("parity");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_fixture_forward_backward, 0, N_FIXTURES);
    tcase_add_loop_test(tc, test_fixture_adam10, 0, N_FIXTURES);
    suite_add_tcase(s, tc);

    tc = tcase_create("gradcheck");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_gradcheck, 0, (int)(sizeof gradcheck_specs / sizeof gradcheck_specs[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("dropout");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_dropout_statistics, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(generated_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
