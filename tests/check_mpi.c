/* check_mpi.c - distributed trainers (dngen --mpi) under mpirun: the same
 * bytes as the single-process trainer at 1 to 4 processes, resume from N to
 * M processes, clear failures; and the shares of a batch (dn_shard.c)
 * against the kernels' chunk tree. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dn_shard.h"
#include "test_util.h"

/* ---- the shares against the tree, without MPI ------------------------------------- */

/* The kernels' tree (templates/vector.c.in, dn_tree_push) by its definition:
 * a node of `count` chunks splits at the largest power of two below it. */
static float tree_sum(const float *chunk, int count) {
    if (count == 1) return chunk[0];
    int m = 1;
    while (2 * m < count) m *= 2;
    return tree_sum(chunk, m) + tree_sum(chunk + m, count - m);
}

/* For every batch of up to 40 chunks and 1 to 9 processes: the shares are
 * contiguous, cover the batch in order, and their tree sums, combined,
 * give the whole batch's tree sum bit for bit. */
START_TEST(test_shares_combine_to_the_tree) {
    float chunk[40], part[9];
    uint32_t x = 12345;
    for (int i = 0; i < 40; i++) { /* values whose sums round differently in other orders */
        x = x * 1664525u + 1013904223u;
        chunk[i] = (float)((x >> 8) % 100000) * (i % 3 ? 1e-3f : 7.77f);
    }
    for (int ranks = 1; ranks <= 9; ranks++) {
        dn_shard s;
        ck_assert_int_eq(dn_shard_init(&s, ranks), 0);
        for (int chunks = 1; chunks <= 40; chunks++) {
            const int n = chunks * DN_SHARD_CHUNK - (chunks % 2 ? 5 : 0); /* a short last chunk too */
            dn_shard_plan(&s, n);
            ck_assert_int_eq(s.parts, chunks < ranks ? chunks : ranks);
            int next = 0;
            for (int r = 0; r < ranks; r++) {
                int lo, hi;
                dn_shard_rows(&s, n, r, &lo, &hi);
                ck_assert_int_eq(lo, next);
                ck_assert(r < s.parts ? hi > lo && lo % DN_SHARD_CHUNK == 0 : hi == lo);
                next = hi;
                if (r < s.parts) part[r] = tree_sum(chunk + s.first[r], s.first[r + 1] - s.first[r]);
            }
            ck_assert_int_eq(next, n);
            dn_shard_combine(&s, part, 1, 1);
            const float whole = tree_sum(chunk, chunks);
            ck_assert_msg(memcmp(&part[0], &whole, sizeof whole) == 0, "%d chunks, %d ranks: %.9g vs %.9g",
                          chunks, ranks, part[0], whole);
        }
        dn_shard_free(&s);
    }
}
END_TEST

/* Two processes split 4 chunks in halves; three take 1, 1 and 2 (the
 * largest share is split first, the leftmost of equal ones). */
START_TEST(test_share_sizes) {
    dn_shard s;
    ck_assert_int_eq(dn_shard_init(&s, 3), 0);
    dn_shard_plan(&s, 64);
    ck_assert_int_eq(s.first[1], 1);
    ck_assert_int_eq(s.first[2], 2);
    ck_assert_int_eq(s.first[3], 4);
    dn_shard_free(&s);
    ck_assert_int_eq(dn_shard_init(&s, 2), 0);
    dn_shard_plan(&s, 64);
    ck_assert_int_eq(s.first[1], 2);
    dn_shard_free(&s);
}
END_TEST

/* ---- trainers under mpirun ----------------------------------------------------------- */

static char dir[4096];

/* A dense net with dropout, noise and BatchNorm1d, batch 40 (chunks of 16, 16 and 8;
 * the epoch's last batch of 20 rows has 2, so 3 and 4 processes leave some
 * without rows), AdamW with a step schedule and clipping; a conv net with
 * BatchNorm2d, channel dropout and max pooling, batch 64, Adam (fused into the kernels
 * in one process, the runtime's under MPI); a dense net with SGD and
 * Nesterov momentum, batch 48. */
static const char *const dense_spec =
    "name: dmpi\n"
    "input: {shape: [1, 8, 8]}\n"
    "layers:\n"
    "  - {name: flat, type: flatten}\n"
    "  - {name: fc1, units: 24, activation: relu, dropout: 0.3, noise: 0.05}\n"
    "  - {name: fc2, units: 12, activation: gelu, dropout: 0.2, batchnorm: true}\n"
    "  - {name: out, units: 4, activation: softmax}\n"
    "train:\n"
    "  optimizer: {type: adamw, lr: 0.003, weight_decay: 0.01}\n"
    "  schedule: {type: step, step_size: 1, gamma: 0.7}\n"
    "  clip_grad_norm: 1.0\n"
    "  batch_size: 40\n"
    "  epochs: 3\n"
    "  seed: 7\n";

static const char *const conv_spec =
    "name: cmpi\n"
    "input: {shape: [1, 8, 8]}\n"
    "layers:\n"
    "  - {name: conv1, type: conv2d, filters: 4, kernel: 3, padding: 1, activation: relu, batchnorm: true}\n"
    "  - {name: pool1, type: maxpool2d, kernel: 2, dropout: {rate: 0.2, mode: channel}}\n"
    "  - {name: flat, type: flatten}\n"
    "  - {name: fc1, units: 16, activation: relu, dropout: 0.25}\n"
    "  - {name: out, units: 4, activation: softmax}\n"
    "train:\n"
    "  optimizer: {type: adam, lr: 0.002}\n"
    "  batch_size: 64\n"
    "  epochs: 2\n"
    "  seed: 3\n";

static const char *const sgd_spec =
    "name: smpi\n"
    "input: 64\n"
    "layers:\n"
    "  - {name: fc1, units: 20, activation: silu, dropout: 0.4}\n"
    "  - {name: out, units: 4, activation: softmax}\n"
    "train:\n"
    "  optimizer: {type: sgd, lr: 0.05, momentum: 0.9, nesterov: true}\n"
    "  batch_size: 48\n"
    "  epochs: 2\n"
    "  seed: 5\n";

static const char *cflags(void) {
    return "-std=c11 -O2 -march=native -DDN_NO_DISPATCH -fopenmp -Wall -Wextra -Werror -I" DNGEN_SOURCE_DIR
           "/runtime " DNGEN_SANITIZE_FLAGS;
}

/* Generates and builds dir/<name>_mpi with mpicc. */
static int build_mpi(const char *spec, const char *name) {
    char *out = NULL;
    int st = tu_runf(&out, "'%s' '%s' --mpi -o '%s/%s_mpi.c' && '%s' %s '%s/%s_mpi.c' -o '%s/%s_mpi' '%s' -lz -lm",
                     DNGEN_EXE, spec, dir, name, DNGEN_MPICC, cflags(), dir, name, dir, name, DNGEN_RUNTIME_MPI_LIB);
    if (st != 0) fprintf(stderr, "building %s_mpi failed (%d):\n%s\n", name, st, out);
    free(out);
    return st;
}

static void setup(void) {
    snprintf(dir, sizeof dir, "%s", tu_dir("mpi"));
    char path[4200], data[4200], *out = NULL;
    snprintf(data, sizeof data, "%s/data", dir);
    tu_runf(&out, "mkdir -p '%s'", data);
    free(out);
    int bad = tu_write_synthetic_idx(data, "train", 300, 8, 8, 4, 1) != 0 ||
              tu_write_synthetic_idx(data, "t10k", 100, 8, 8, 4, 2) != 0;
    const char *names[] = {"dmpi", "cmpi", "smpi"}, *texts[] = {dense_spec, conv_spec, sgd_spec};
    for (int i = 0; i < 3 && !bad; i++) {
        snprintf(path, sizeof path, "%s/%s.yaml", dir, names[i]);
        tu_write(path, texts[i]);
        bad = tu_build_trainer(path, dir, names[i], "", "") != 0 || build_mpi(path, names[i]) != 0;
    }
    if (bad) {
        fprintf(stderr, "mpi setup failed\n");
        exit(1);
    }
}

/* Runs `cmd` in dir and returns its exit status; its output in *out. */
static int run_in_dir(char **out, const char *cmd) {
    return tu_runf(out, "cd '%s' && %s 2>&1", dir, cmd);
}

/* The epoch lines of a trainer's output without their times: losses,
 * accuracies (the evaluation's too) and lr, as printed (malloc'd). */
static char *epoch_lines(const char *out) {
    char *res = calloc(1, strlen(out) + 1), *w = res;
    for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, "epoch ", 6) != 0) continue;
        const char *end = strchr(p, '\n'), *time = strstr(p, " time ");
        if (!end) end = p + strlen(p);
        if (time && time < end) end = time;
        memcpy(w, p, (size_t)(end - p));
        w += end - p;
        *w++ = '\n';
    }
    return res;
}

/* mpirun -np N of <name>_mpi train with args; asserts success. Returns
 * its epoch lines. */
static char *mpi_train(const char *name, int np, const char *args) {
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' --oversubscribe --allow-run-as-root -np %d ./%s_mpi train --data data %s",
             DNGEN_MPIEXEC, np, name, args);
    int st = run_in_dir(&out, cmd);
    ck_assert_msg(st == 0, "%s -> %d\n%s", cmd, st, out);
    char *lines = epoch_lines(out);
    free(out);
    return lines;
}

static char *plain_train(const char *name, const char *args) {
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "./%s train --data data %s", name, args);
    int st = run_in_dir(&out, cmd);
    ck_assert_msg(st == 0, "%s -> %d\n%s", cmd, st, out);
    char *lines = epoch_lines(out);
    free(out);
    return lines;
}

static const char *const models[] = {"dmpi", "cmpi", "smpi"};

/* 1, 2, 3 and 4 processes (1 or 2 threads each) save the single-process
 * trainer's checkpoint byte for byte and print its epoch lines (the test
 * set's evaluation shared among the processes). */
START_TEST(test_any_process_count) {
    const char *m = models[_i];
    char args[256], a[64], b[64];
    snprintf(a, sizeof a, "%s_plain.safetensors", m);
    snprintf(args, sizeof args, "--threads 2 --save %s", a);
    char *want = plain_train(m, args);
    ck_assert_msg(strstr(want, "test_acc") != NULL, "no epoch lines:\n%s", want);
    for (int np = 1; np <= 4; np++) {
        snprintf(b, sizeof b, "%s_np%d.safetensors", m, np);
        snprintf(args, sizeof args, "--threads %d --save %s", np == 2 ? 2 : 1, b);
        char *got = mpi_train(m, np, args);
        ck_assert_msg(tu_same_files(dir, a, b), "%s: %d processes differ from one", m, np);
        ck_assert_msg(strcmp(want, got) == 0, "%s: %d processes print\n%sinstead of\n%s", m, np, got, want);
        free(got);
    }
    free(want);
}
END_TEST

/* A run stopped after 9 steps under 2 processes and resumed under 3 ends
 * with the uninterrupted single-process weights. */
START_TEST(test_resume_other_count) {
    const char *m = models[_i];
    char args[256], a[64], b[64];
    snprintf(a, sizeof a, "%s_full.safetensors", m);
    snprintf(b, sizeof b, "%s_part.safetensors", m);
    snprintf(args, sizeof args, "--threads 1 --checkpoint-every 100000 --save %s", a);
    free(plain_train(m, args));
    snprintf(args, sizeof args, "--threads 1 --checkpoint-every 100000 --save %s --max-steps 9", b);
    free(mpi_train(m, 2, args));
    snprintf(args, sizeof args, "--threads 1 --checkpoint-every 100000 --save %s --resume %s", b, b);
    free(mpi_train(m, 3, args));
    ck_assert_msg(tu_same_files(dir, a, b), "%s: resumed 2 -> 3 processes differs", m);
}
END_TEST

/* Data that cannot be read, or a checkpoint that cannot be written, ends
 * the job with the trainer's message and a failure status, promptly (the
 * test's timeout would catch a hang). */
START_TEST(test_missing_data_fails_cleanly) {
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' --oversubscribe --allow-run-as-root -np 2 ./dmpi_mpi train --data nowhere",
             DNGEN_MPIEXEC);
    int st = run_in_dir(&out, cmd);
    ck_assert_msg(st != 0, "%s", out);
    ck_assert_msg(strstr(out, "nowhere") != NULL, "no message naming the data:\n%s", out);
    free(out);
    /* a checkpoint process 0 cannot write (at step 5) ends the job too, with the output error's status */
    snprintf(cmd, sizeof cmd,
             "'%s' --oversubscribe --allow-run-as-root -np 2 ./dmpi_mpi train --data data --threads 1 "
             "--checkpoint-every 5 --save nodir/x.safetensors",
             DNGEN_MPIEXEC);
    st = run_in_dir(&out, cmd);
    ck_assert_msg(st == 4, "exit %d:\n%s", st, out);
    ck_assert_msg(strstr(out, "nodir") != NULL, "no message naming the checkpoint:\n%s", out);
    free(out);
}
END_TEST

/* A process killed mid-run ends the whole job (no hang), and the last
 * periodic checkpoint, written by process 0, is intact: a run resumed from
 * it loads it. (Resuming exactly is test_resume_other_count's.) */
START_TEST(test_killed_process_ends_job) {
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "rm -f k.safetensors; ('%s' --oversubscribe --allow-run-as-root -np 2 ./dmpi_mpi train --data data "
             "--epochs 100000 --threads 1 --checkpoint-every 20 --save k.safetensors > k.log 2>&1; echo $? > k.rc) & "
             "for i in $(seq 1 300); do [ -s k.safetensors ] && break; sleep 0.1; done; "
             "sleep 0.5; pkill -KILL -n -x dmpi_mpi; "
             "for i in $(seq 1 300); do [ -s k.rc ] && break; sleep 0.1; done; cat k.rc",
             DNGEN_MPIEXEC);
    int st = run_in_dir(&out, cmd);
    ck_assert_msg(st == 0, "%s", out);
    ck_assert_msg(atoi(out) != 0, "the job did not fail after a process was killed: %s", out);
    free(out);
    /* the checkpoint loads (its step is past --max-steps: nothing more to train) */
    free(mpi_train("dmpi", 2, "--threads 1 --epochs 100000 --max-steps 1 --resume k.safetensors --save k2.safetensors"));
}
END_TEST

/* SIGTERM to the processes (what Slurm's scancel does, and what mpirun does
 * with a SIGTERM of its own after odls_base_sigkill_timeout, 1 s by default:
 * too tight a window to test on a loaded machine): the processes stop after
 * the same step, process 0 saves the state, and it loads under 3 processes. */
START_TEST(test_sigterm_saves_state) {
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "rm -f s.safetensors s.log; '%s' --oversubscribe --allow-run-as-root -np 2 ./dmpi_mpi train --data data "
             "--epochs 100000 --threads 1 --save s.safetensors > s.log 2>&1 & pid=$!; "
             "for i in $(seq 1 300); do grep -q '^epoch 2:' s.log && break; sleep 0.1; done; "
             "pkill -TERM -x dmpi_mpi; wait $pid; echo rc $?; cat s.log | grep -v '^epoch'",
             DNGEN_MPIEXEC);
    int st = run_in_dir(&out, cmd);
    ck_assert_msg(st == 0, "%s", out);
    ck_assert_msg(strstr(out, "rc 0") == NULL, "mpirun exited 0 after SIGTERM:\n%s", out);
    ck_assert_msg(strstr(out, "state saved to s.safetensors") != NULL, "process 0 did not report the save:\n%s", out);
    char *ckpt = NULL;
    st = tu_runf(&ckpt, "test -s '%s/s.safetensors' && echo saved", dir);
    ck_assert_msg(st == 0 && strstr(ckpt, "saved"), "no state saved after SIGTERM:\n%s", out);
    free(ckpt);
    free(out);
    /* the saved state loads under 3 processes (its step is past --max-steps: nothing more to train) */
    free(mpi_train("dmpi", 3, "--threads 1 --epochs 100000 --max-steps 1 --resume s.safetensors --save s2.safetensors"));
}
END_TEST

static Suite *mpi_suite(void) {
    Suite *s = suite_create("mpi");
    TCase *tc = tcase_create("shares");
    tcase_add_test(tc, test_shares_combine_to_the_tree);
    tcase_add_test(tc, test_share_sizes);
    suite_add_tcase(s, tc);
    tc = tcase_create("mpirun");
    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_any_process_count, 0, 3);
    tcase_add_loop_test(tc, test_resume_other_count, 0, 3);
    tcase_add_test(tc, test_missing_data_fails_cleanly);
    tcase_add_test(tc, test_killed_process_ends_job);
    tcase_add_test(tc, test_sigterm_saves_state);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(mpi_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
