/* check_cpu.c - one portable binary for every x86-64: a generated program
 * built without -march carries its kernels for AVX-512, for AVX2 with FMA
 * and for the compiler's baseline, and runs the best one the CPU has
 * (templates/prelude.c.in, DN_DISPATCH). DN_CPU=avx2 or baseline caps the
 * choice, so one machine runs each copy:
 * - the AVX-512 and AVX2 copies give the same checkpoint and the same
 *   predictions, byte for byte, and the same as a -march=native build
 *   without dispatch (GCC) and as Clang's portable build;
 * - the baseline copy (SSE2: no FMA, so products and sums round separately)
 *   gives a different checkpoint, which shows that it ran, that learned as
 *   well (the same test accuracy within 2 points).
 * Copies the CPU lacks are left out; on other architectures the suite is
 * skipped (exit 77). */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static char dir[4096];
static int has_avx2, has_avx512; /* copies this CPU can run */

static void run_ok(const char *what, const char *cmd) {
    char *out = NULL;
    int st = tu_runf(&out, "cd '%s' && %s 2>&1", dir, cmd);
    ck_assert_msg(st == 0, "%s: '%s' exited %d:\n%s", what, cmd, st, out);
    free(out);
}

/* Output of cmd run in dir (asserts exit 0; caller frees). */
static char *run_out(const char *cmd) {
    char *out = NULL;
    int st = tu_runf(&out, "cd '%s' && %s 2>&1", dir, cmd);
    ck_assert_msg(st == 0, "'%s' exited %d:\n%s", cmd, st, out);
    return out;
}

/* A conv net with channel and element dropout, a pool, a dense layer with
 * batch norm and one with dropout: every kind's kernels, on 8x8 images. */
static const char *const conv_spec = "name: r\n"
                                     "input: {shape: [1, 8, 8], dropout: 0.1}\n"
                                     "layers:\n"
                                     "  - {name: c1, type: conv2d, filters: 6, kernel: 3, padding: 1, activation: relu,\n"
                                     "     dropout: {rate: 0.2, mode: channel}}\n"
                                     "  - {name: p1, type: maxpool2d, kernel: 2, dropout: 0.1}\n"
                                     "  - {name: flat, type: flatten}\n"
                                     "  - {name: fc1, units: 20, activation: tanh, batchnorm: true}\n"
                                     "  - {name: fc2, units: 12, activation: relu, dropout: 0.3}\n"
                                     "  - {name: out, units: 4, activation: softmax}\n"
                                     "train: {batch_size: 32, epochs: 2, seed: 5}\n";

START_TEST(test_trainer_copies) {
    char cmd[8192];
    tu_runf(NULL, "mkdir -p '%s/data'", dir);
    char data[4200], spec[4200];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(spec, sizeof spec, "%s/r.yaml", dir);
    ck_assert_int_eq(tu_write_synthetic_idx(data, "train", 640, 8, 8, 4, 1), 0);
    ck_assert_int_eq(tu_write_synthetic_idx(data, "t10k", 160, 8, 8, 4, 2), 0);
    tu_write(spec, conv_spec);
    snprintf(cmd, sizeof cmd, "'%s' r.yaml --standalone -o r.c", DNGEN_EXE);
    run_ok("generate", cmd);
    run_ok("portable build", "gcc -std=c11 -O2 -fopenmp -Wall -Wextra -Werror r.c -o r -lz -lm");
    const char *train = "train --data data --threads 2 --save";
    char *base = NULL, *best = NULL;
    snprintf(cmd, sizeof cmd, "DN_CPU=baseline ./r %s base.safetensors", train);
    base = run_out(cmd);
    if (has_avx2) {
        snprintf(cmd, sizeof cmd, "DN_CPU=avx2 ./r %s avx2.safetensors", train);
        best = run_out(cmd);
        ck_assert_msg(!tu_same_files(dir, "base.safetensors", "avx2.safetensors"),
                      "DN_CPU=baseline gave the AVX2 copy's bits: did the baseline copy run?");
        double a = tu_last_test_acc(base), b = tu_last_test_acc(best);
        ck_assert_msg(a >= 0 && fabs(a - b) <= 0.02, "baseline test_acc %.4f vs AVX2 %.4f", a, b);
        ck_assert_msg(b > 0.5, "the net did not learn (test_acc %.4f):\n%s", b, best);
    }
    if (has_avx512) {
        snprintf(cmd, sizeof cmd, "./r %s avx512.safetensors", train);
        free(run_out(cmd));
        ck_assert_msg(tu_same_files(dir, "avx2.safetensors", "avx512.safetensors"),
                      "the AVX-512 copy's checkpoint differs from the AVX2 copy's");
    }
    if (has_avx2) {
        run_ok("native build", "gcc -std=c11 -O2 -march=native -DDN_NO_DISPATCH -fopenmp r.c -o r_native -lz -lm");
        snprintf(cmd, sizeof cmd, "./r_native %s native.safetensors", train);
        free(run_out(cmd));
        ck_assert_msg(tu_same_files(dir, "avx2.safetensors", "native.safetensors"),
                      "-march=native without dispatch differs from the dispatched copies");
        char *have = NULL;
        if (tu_runf(&have, "command -v clang") == 0) {
            run_ok("clang build", "clang -std=c11 -O2 -fopenmp -Wall -Wextra -Werror r.c -o r_clang -lz -lm");
            snprintf(cmd, sizeof cmd, "DN_CPU=avx2 ./r_clang %s clang.safetensors", train);
            free(run_out(cmd));
            ck_assert_msg(tu_same_files(dir, "avx2.safetensors", "clang.safetensors"),
                          "Clang's AVX2 copy differs from GCC's");
        }
        free(have);
    }
    free(base);
    free(best);
}
END_TEST

/* The static predictor of tests/fixtures/small_ce.yaml with committed
 * weights on 300 CSV rows, once per copy. */
START_TEST(test_predictor_copies) {
    char cmd[8192], path[4200];
    snprintf(path, sizeof path, "%s/in.csv", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    unsigned s = 777u;
    for (int r = 0; r < 300; r++)
        for (int c = 0; c < 7; c++) {
            s = s * 1103515245u + 12345u;
            fprintf(f, "%.4f%s", ((double)(s >> 8 & 0xffff) / 65536.0 - 0.5) * 4.0, c < 6 ? "," : "\n");
        }
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "'%s' '%s/tests/fixtures/small_ce.yaml' --inference --weights "
             "'%s/tests/golden/small_ce_weights.safetensors' -o p.c",
             DNGEN_EXE, DNGEN_SOURCE_DIR, DNGEN_SOURCE_DIR);
    run_ok("generate", cmd);
    run_ok("portable build", "gcc -std=c11 -O2 -static -Wall -Wextra -Werror p.c -o p -lz -lm");
    run_ok("baseline", "DN_CPU=baseline ./p in.csv --format csv > base.csv");
    if (!has_avx2) return;
    run_ok("avx2", "DN_CPU=avx2 ./p in.csv --format csv > avx2.csv");
    if (has_avx512) {
        run_ok("avx512", "./p in.csv --format csv > avx512.csv");
        ck_assert_msg(tu_same_files(dir, "avx2.csv", "avx512.csv"), "AVX-512 predictions differ from AVX2's");
    }
    /* The baseline rounds differently; the printed probabilities agree to
     * the few units in the last printed digit that a rounding moves. */
    char *diff = NULL;
    int st = tu_runf(&diff,
                     "cd '%s' && paste -d, base.csv avx2.csv | awk -F, 'NR > 1 { h = NF / 2; "
                     "for (i = 1; i <= h; i++) if ($i ~ /^[-0-9.e]+$/) { d = $i - $(i + h); "
                     "if (d < 0) d = -d; if (d > 1e-4) { print NR\": \"$0; bad = 1 } } } "
                     "END { exit bad }'",
                     dir);
    ck_assert_msg(st == 0, "baseline predictions are not within 1e-4 of AVX2's:\n%s", diff);
    free(diff);
}
END_TEST

int main(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    has_avx512 = has_avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
#else
    printf("check_cpu: skipped: run-time CPU dispatch is x86-64 only\n");
    return 77;
#endif
    snprintf(dir, sizeof dir, "%s", tu_dir("cpu"));
    Suite *s = suite_create("cpu");
    TCase *tc = tcase_create("cpu");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_trainer_copies);
    tcase_add_test(tc, test_predictor_copies);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
