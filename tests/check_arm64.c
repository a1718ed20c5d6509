/* check_arm64.c - generated programs on ARM64: a predictor and a trainer
 * cross-compiled with Debian's gcc-aarch64-linux-gnu (statically, zlib from
 * zlib1g-dev:arm64) and run under qemu-aarch64 (qemu-user) give what the
 * same programs give on x86-64 with FMA: the same predictions, byte for
 * byte, and the same checkpoint where the arithmetic is the same (relu and
 * softmax; tanhf and expf-based sigmoid come from each libm). The vector code
 * is GCC vector extensions, which become NEON there.
 *
 * Skipped (exit 77) when the cross compiler, qemu-aarch64 or the arm64 zlib
 * is missing; tools/deps.sh installs them. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

#define ARM_CC "aarch64-linux-gnu-gcc"
#define ARM_LIB "/usr/lib/aarch64-linux-gnu"

static char dir[4096];

/* 0 when every tool is here. */
static int tools_missing(void) {
    char *out = NULL;
    int st = tu_runf(&out, "command -v " ARM_CC " && command -v qemu-aarch64 && test -f " ARM_LIB "/libz.a");
    free(out);
    return st != 0;
}

static void run_ok(const char *what, const char *cmd) {
    char *out = NULL;
    int st = tu_runf(&out, "cd '%s' && %s 2>&1", dir, cmd);
    ck_assert_msg(st == 0, "%s: '%s' exited %d:\n%s", what, cmd, st, out);
    free(out);
}

/* The predictor of tests/fixtures/small_ce.yaml (tanh, sigmoid, relu and
 * softmax layers) with committed weights, on 200 CSV rows. */
START_TEST(test_predictor_same_output) {
    char cmd[8192];
    FILE *f;
    char path[4200];
    snprintf(path, sizeof path, "%s/in.csv", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    unsigned s = 12345u;
    for (int r = 0; r < 200; r++)
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
    run_ok("x86-64 build", "cc -O2 -march=x86-64-v3 p.c -o p_x86 -lz -lm");
    run_ok("arm64 build", ARM_CC " -O2 -static p.c -o p_arm -L" ARM_LIB " -lz -lm");
    run_ok("x86-64 run", "./p_x86 in.csv --format csv > out_x86.csv");
    run_ok("arm64 run", "qemu-aarch64 ./p_arm in.csv --format csv > out_arm.csv");
    ck_assert_msg(tu_same_files(dir, "out_x86.csv", "out_arm.csv"), "arm64 predictions differ from x86-64's");
}
END_TEST

/* A relu net with input and hidden dropout trained 2 epochs on both. */
START_TEST(test_trainer_same_checkpoint) {
    char cmd[8192];
    tu_runf(NULL, "mkdir -p '%s/data'", dir);
    char data[4200], spec[4200];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(spec, sizeof spec, "%s/r.yaml", dir);
    ck_assert_int_eq(tu_write_synthetic_idx(data, "train", 600, 4, 4, 3, 1), 0);
    ck_assert_int_eq(tu_write_synthetic_idx(data, "t10k", 100, 4, 4, 3, 2), 0);
    tu_write(spec, "name: r\ninput: {size: 16, dropout: 0.1}\nlayers:\n"
                   "  - {units: 12, activation: relu, dropout: 0.3}\n"
                   "  - {units: 9, activation: relu}\n"
                   "  - {units: 3, activation: softmax}\n"
                   "train: {batch_size: 32, epochs: 2, seed: 9}\n");
    snprintf(cmd, sizeof cmd, "'%s' r.yaml --standalone -o r.c", DNGEN_EXE);
    run_ok("generate", cmd);
    run_ok("x86-64 build", "cc -O2 -march=x86-64-v3 -fopenmp r.c -o r_x86 -lz -lm");
    run_ok("arm64 build", ARM_CC " -O2 -static -fopenmp r.c -o r_arm -L" ARM_LIB " -lz -lm");
    run_ok("x86-64 train", "./r_x86 train --data data --threads 2 --save x86.safetensors");
    run_ok("arm64 train", "qemu-aarch64 ./r_arm train --data data --threads 2 --save arm.safetensors");
    ck_assert_msg(tu_same_files(dir, "x86.safetensors", "arm.safetensors"), "arm64 checkpoint differs from x86-64's");
}
END_TEST

int main(void) {
    if (tools_missing()) {
        printf("check_arm64: skipped: needs %s, qemu-aarch64 and %s/libz.a (tools/deps.sh installs them)\n",
               ARM_CC, ARM_LIB);
        return 77;
    }
    snprintf(dir, sizeof dir, "%s", tu_dir("arm64"));
    Suite *s = suite_create("arm64");
    TCase *tc = tcase_create("arm64");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_predictor_same_output);
    tcase_add_test(tc, test_trainer_same_checkpoint);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
