/* check_e2e.c - generated trainers end to end on a synthetic IDX dataset:
 * they learn, give bit-identical results at any thread count (and without
 * OpenMP, and with either tile width), resume to bit-identical weights, and
 * survive kill -9. Also what a new user runs first: README's example of spec
 * errors, and tools/deps.sh when another apt holds its lock. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

/* Input dropout, hidden dropout and noise: every random stream is used. */
static const char *const spec_text =
    "name: syn\n"
    "input: {size: 64, dropout: 0.1}\n"
    "layers:\n"
    "  - {units: 56, activation: relu, dropout: 0.3, noise: 0.05}\n"
    "  - {units: 24, activation: tanh, dropout: 0.2}\n"
    "  - {units: 4, activation: softmax}\n"
    "train: {batch_size: 32, epochs: 3, seed: 7}\n";

/* Batch norm on both hidden layers, then dropout (and noise). */
static const char *const bn_spec_text =
    "name: synbn\n"
    "input: 64\n"
    "layers:\n"
    "  - {units: 56, activation: relu, batchnorm: true, dropout: 0.3}\n"
    "  - {units: 24, activation: tanh, batchnorm: {momentum: 0.2}, noise: 0.05}\n"
    "  - {units: 4, activation: softmax}\n"
    "train: {batch_size: 32, epochs: 2, seed: 7}\n";

/* syn's network with SGD (nesterov momentum, weight decay), warmup +
 * cosine and clipping; and with centered RMSprop and a step schedule. */
static const char *const sgd_spec_text =
    "name: synsgd\n"
    "input: {size: 64, dropout: 0.1}\n"
    "layers:\n"
    "  - {units: 56, activation: relu, dropout: 0.3, noise: 0.05}\n"
    "  - {units: 24, activation: tanh, dropout: 0.2}\n"
    "  - {units: 4, activation: softmax}\n"
    "train:\n"
    "  batch_size: 32\n"
    "  epochs: 3\n"
    "  seed: 7\n"
    "  optimizer: {type: sgd, lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 1.0e-4}\n"
    "  schedule: {type: cosine, warmup_steps: 30, min_lr: 1.0e-4}\n"
    "  clip_grad_norm: 1.0\n";

static const char *const rms_spec_text =
    "name: synrms\n"
    "input: 64\n"
    "layers:\n"
    "  - {units: 56, activation: relu, dropout: 0.3}\n"
    "  - {units: 4, activation: softmax}\n"
    "train:\n"
    "  batch_size: 32\n"
    "  epochs: 3\n"
    "  seed: 7\n"
    "  optimizer: {type: rmsprop, lr: 0.002, momentum: 0.5, centered: true}\n"
    "  schedule: {type: step, step_size: 1, gamma: 0.5}\n";

static char dir[4096];

/* Builds the trainer twice (with and without OpenMP) and writes the data. */
static void setup(void) {
    snprintf(dir, sizeof dir, "%s", tu_dir("e2e"));
    char spec[4200], data[4200];
    snprintf(spec, sizeof spec, "%s/syn.yaml", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    tu_write(spec, spec_text);
    char bn_spec[4200], sgd_spec[4200], rms_spec[4200];
    snprintf(bn_spec, sizeof bn_spec, "%s/synbn.yaml", dir);
    tu_write(bn_spec, bn_spec_text);
    snprintf(sgd_spec, sizeof sgd_spec, "%s/synsgd.yaml", dir);
    tu_write(sgd_spec, sgd_spec_text);
    snprintf(rms_spec, sizeof rms_spec, "%s/synrms.yaml", dir);
    tu_write(rms_spec, rms_spec_text);
    char *out = NULL;
    tu_runf(&out, "mkdir -p '%s'", data);
    free(out);
    if (tu_write_synthetic_idx(data, "train", 3000, 8, 8, 4, 1) != 0 ||
        tu_write_synthetic_idx(data, "t10k", 600, 8, 8, 4, 2) != 0 ||
        tu_build_trainer(spec, dir, "syn", "", "") != 0 ||
        tu_build_trainer(spec, dir, "syn_serial", "--standalone", "-fno-openmp") != 0 ||
        tu_build_trainer(spec, dir, "syn_narrow", "", "-mno-avx512f") != 0 ||
        tu_build_trainer(bn_spec, dir, "synbn", "", "") != 0 ||
        tu_build_trainer(bn_spec, dir, "synbn_serial", "--standalone", "-fno-openmp") != 0 ||
        tu_build_trainer(sgd_spec, dir, "synsgd", "", "") != 0 ||
        tu_build_trainer(sgd_spec, dir, "synsgd_serial", "--standalone", "-fno-openmp") != 0 ||
        tu_build_trainer(rms_spec, dir, "synrms", "", "") != 0) {
        fprintf(stderr, "e2e setup failed\n");
        exit(1);
    }
}

/* Runs the trainer (binary `bin` in dir) with args; asserts exit status `want`. */
static char *trainer(int want, const char *bin, const char *args) {
    char *out = NULL;
    int st = tu_runf(&out, "cd '%s' && ./%s train --data data %s 2>&1", dir, bin, args);
    if (st != want) fprintf(stderr, "%s %s -> %d\n%s\n", bin, args, st, out);
    ck_assert_int_eq(st, want);
    return out;
}

/* Trains `bin` with args (which must save to `weights`): test accuracy
 * >= 0.95, and eval on the saved weights agrees with the last epoch line.
 * Returns that accuracy. */
static double learns(const char *bin, const char *args, const char *weights) {
    char *out = trainer(0, bin, args);
    double acc = tu_last_test_acc(out);
    printf("%s: synthetic test accuracy %.4f\n", bin, acc);
    ck_assert_msg(acc >= 0.95, "test accuracy %.4f < 0.95\n%s", acc, out);
    free(out);
    char *ev = NULL;
    ck_assert_int_eq(tu_runf(&ev, "cd '%s' && ./%s eval --weights %s --data data", dir, bin, weights), 0);
    ck_assert_msg(tu_last_test_acc(ev) == acc, "eval: %s", ev);
    free(ev);
    return acc;
}

START_TEST(test_learns) { learns("syn", "--save w.safetensors", "w.safetensors"); }
END_TEST

START_TEST(test_threads_bit_identical) {
    free(trainer(0, "syn", "--threads 1 --save t1.safetensors"));
    free(trainer(0, "syn", "--threads 2 --save t2.safetensors"));
    free(trainer(0, "syn", "--threads 3 --save t3.safetensors"));
    free(trainer(0, "syn_serial", "--save serial.safetensors"));
    ck_assert_msg(tu_same_files(dir, "t1.safetensors", "t2.safetensors"), "1 vs 2 threads differ");
    ck_assert_msg(tu_same_files(dir, "t1.safetensors", "t3.safetensors"), "1 vs 3 threads differ");
    ck_assert_msg(tu_same_files(dir, "t1.safetensors", "serial.safetensors"), "OpenMP vs serial build differ");
    /* Without AVX-512 the gradient kernels use narrower tiles: same results. */
    free(trainer(0, "syn_narrow", "--threads 2 --save narrow.safetensors"));
    ck_assert_msg(tu_same_files(dir, "t1.safetensors", "narrow.safetensors"), "narrow vs wide tiles differ");
    free(trainer(0, "syn", "--threads 2 --seed 8 --save s8.safetensors"));
    ck_assert_msg(!tu_same_files(dir, "t1.safetensors", "s8.safetensors"), "the seed changes nothing");
}
END_TEST

/* Without --threads the team size changes while training runs (quick
 * rounds here: 8 probe steps on one count, then 8 or more on the other, 1
 * and 3 threads taking turns): the bytes of --threads 1. */
START_TEST(test_adaptive_threads_bit_identical) {
    free(trainer(0, "syn", "--threads 1 --save a1.safetensors"));
    char *out = NULL;
    int st = tu_runf(&out, "cd '%s' && OMP_NUM_THREADS=3 DN_GOV_QUICK=1 ./syn train --data data "
                     "--save adaptive.safetensors 2>&1", dir);
    ck_assert_msg(st == 0, "%s", out);
    free(out);
    ck_assert_msg(tu_same_files(dir, "a1.safetensors", "adaptive.safetensors"), "adaptive team size changed the results");
}
END_TEST

/* Stops after k steps (mid-epoch, at an epoch end), resumes with the same
 * command line: the final full state equals an uninterrupted run's. */
START_TEST(test_resume_bit_identical) {
    const char *full = "--threads 2 --checkpoint-every 100000 --save";
    char args[512];
    snprintf(args, sizeof args, "%s ref.safetensors", full);
    free(trainer(0, "syn", args));
    const int stops[] = {1, 50, 94, 188, 200};
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
        snprintf(args, sizeof args, "%s r.safetensors --max-steps %d", full, stops[i]);
        free(trainer(0, "syn", args));
        snprintf(args, sizeof args, "%s r.safetensors --resume r.safetensors", full);
        free(trainer(0, "syn", args));
        ck_assert_msg(tu_same_files(dir, "ref.safetensors", "r.safetensors"), "resume after step %d differs", stops[i]);
    }
}
END_TEST

/* kill -9 at random moments during a run that checkpoints every 5 steps;
 * resuming each time ends with the uninterrupted run's state. */
START_TEST(test_kill9_resume) {
    const char *full = "--epochs 6 --threads 2 --checkpoint-every 5 --save";
    char args[512], *out = NULL;
    snprintf(args, sizeof args, "%s ref9.safetensors", full);
    free(trainer(0, "syn", args));
    tu_runf(&out, "rm -f '%s/k.safetensors'", dir);
    free(out);
    srand(12345);
    int resumed = 0;
    for (int round = 0; round < 4; round++) {
        char resume[64] = "";
        char path[4200];
        snprintf(path, sizeof path, "%s/k.safetensors", dir);
        if (access(path, F_OK) == 0) {
            snprintf(resume, sizeof resume, "--resume k.safetensors");
            resumed++;
        }
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            char cmd[8192];
            snprintf(cmd, sizeof cmd, "cd '%s' && exec ./syn train --data data %s k.safetensors %s >/dev/null 2>&1",
                     dir, full, resume);
            execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
            _exit(127);
        }
        /* wait for a first checkpoint (or the end of the run), then kill at a
         * random moment within the next 80 ms */
        struct timespec tick = {0, 2000000L};
        int st, reaped = 0;
        for (int waited = 0; waited < 2500 && access(path, F_OK) != 0 && !reaped; waited++) {
            reaped = waitpid(pid, &st, WNOHANG) == pid;
            nanosleep(&tick, NULL);
        }
        struct timespec ts = {0, (long)(rand() % 80) * 1000000L};
        nanosleep(&ts, NULL);
        if (!reaped) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
        }
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/k.safetensors", dir);
    snprintf(args, sizeof args, "%s k.safetensors %s", full, access(path, F_OK) == 0 ? "--resume k.safetensors" : "");
    free(trainer(0, "syn", args));
    printf("kill -9: 4 kills, %d of them hit a run resumed from a checkpoint\n", resumed);
    ck_assert_msg(resumed >= 2, "the kills came too early to test resuming (%d)", resumed);
    ck_assert_msg(tu_same_files(dir, "ref9.safetensors", "k.safetensors"), "killed and resumed run differs");
    tu_runf(&out, "ls -a '%s' | grep -c '\\.tmp\\.' || true", dir);
    ck_assert_msg(atoi(out) == 0, "temporary files left behind: %s", out);
    free(out);
}
END_TEST

/* Class column of `predict --format csv` output (after the header). */
static int predicted_classes(const char *csv, int *cls, int max) {
    const char *p = strchr(csv, '\n');
    int n = 0;
    while (p && p[1] && n < max) {
        int idx, c;
        if (sscanf(p + 1, "%d,%d,", &idx, &c) != 2 || idx != n) return -1;
        cls[n++] = c;
        p = strchr(p + 1, '\n');
    }
    return n;
}

/* How many of the 600 test rows `predict --format csv` output classifies
 * as their label says. */
static int predicted_hits(const char *csv) {
    static int cls[600];
    ck_assert_int_eq(predicted_classes(csv, cls, 600), 600);
    char lp[4200];
    snprintf(lp, sizeof lp, "%s/data/t10k-labels-idx1-ubyte", dir);
    size_t ln;
    char *labels = tu_read(lp, &ln);
    ck_assert_ptr_nonnull(labels);
    ck_assert_uint_eq(ln, 8 + 600);
    int hits = 0;
    for (int i = 0; i < 600; i++) hits += cls[i] == (unsigned char)labels[8 + i];
    free(labels);
    return hits;
}

/* True when the file in dir contains the text. */
static int file_has(const char *name, const char *text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t n;
    char *data = tu_read(path, &n);
    ck_assert_ptr_nonnull(data);
    int found = 0;
    for (size_t i = 0, k = strlen(text); !found && i + k <= n; i++) found = memcmp(data + i, text, k) == 0;
    free(data);
    return found;
}

/* Batch norm end to end: it learns; eval on the saved weights (running
 * statistics) scores what the last epoch printed; 1, 2 threads and a serial
 * build agree bit for bit; the checkpoint keeps the running statistics
 * (without optimizer moments), so resuming mid-epoch gives the uninterrupted
 * run's state; the inference program predicts what eval scores; a last
 * batch of one row is skipped. */
START_TEST(test_batchnorm) {
    double acc = learns("synbn", "--threads 1 --save bn1.safetensors --checkpoint-every 100000", "bn1.safetensors");
    /* the inference program runs batch norm on the same running statistics */
    char *pr = NULL;
    int st = tu_runf(&pr,
                     "cd '%s' && '%s' synbn.yaml --inference --weights bn1.safetensors -o predict_bn.c && "
                     "'%s' -std=c11 -O2 -Wall -Wextra -Werror predict_bn.c -o predict_bn -lz -lm 2>&1 && "
                     "./predict_bn data/t10k-images-idx3-ubyte --format csv",
                     dir, DNGEN_EXE, DNGEN_CC);
    ck_assert_msg(st == 0, "%s", pr);
    int hits = predicted_hits(pr);
    ck_assert_msg((double)hits / 600 == acc, "predict accuracy %d/600, trainer %.4f", hits, acc);
    free(pr);
    free(trainer(0, "synbn", "--threads 2 --save bn2.safetensors --checkpoint-every 100000"));
    free(trainer(0, "synbn_serial", "--save bns.safetensors --checkpoint-every 100000"));
    ck_assert_msg(tu_same_files(dir, "bn1.safetensors", "bn2.safetensors"), "1 vs 2 threads differ");
    ck_assert_msg(tu_same_files(dir, "bn1.safetensors", "bns.safetensors"), "OpenMP vs serial build differ");
    ck_assert(file_has("bn1.safetensors", "\"fc1_bn.running_var\""));
    ck_assert(file_has("bn1.safetensors", "\"optimizer.exp_avg.fc1_bn.weight\""));
    ck_assert(!file_has("bn1.safetensors", "optimizer.exp_avg.fc1_bn.running_mean"));
    free(trainer(0, "synbn", "--threads 2 --save bnr.safetensors --checkpoint-every 100000 --max-steps 130"));
    free(trainer(0, "synbn", "--threads 2 --save bnr.safetensors --checkpoint-every 100000 --resume bnr.safetensors"));
    ck_assert_msg(tu_same_files(dir, "bn1.safetensors", "bnr.safetensors"), "resumed batch norm run differs");
    /* 2850 rows in batches of 37: 77 batches and one row, which is skipped */
    char *out = trainer(0, "synbn", "--epochs 1 --val-split 0.05 --batch-size 37 --save bnv.safetensors --checkpoint-every 100000");
    ck_assert_msg(file_has("bnv.safetensors", "\"step\":\"77\""), "%s", out);
    free(out);
    out = trainer(2, "synbn", "--batch-size 1");
    ck_assert_ptr_nonnull(strstr(out, "at least 2 with batch norm"));
    free(out);
    /* the chunk trees hold 16 x (2^12 - 1) rows; a larger batch is refused, not summed wrongly */
    out = trainer(2, "synbn", "--batch-size 65521");
    ck_assert_msg(strstr(out, "--batch-size 65521 is more than this trainer takes (65520") != NULL, "%s", out);
    free(out);
}
END_TEST

/* Trainers generated with SGD + cosine + clipping and with RMSprop + a step
 * schedule: they learn, print the schedule's lr, give the same bytes at 1
 * and 2 threads and serially, keep their optimizer state in checkpoints
 * and resume to the uninterrupted run's state. */
START_TEST(test_optimizers) {
    learns("synsgd", "--threads 1 --save o1.safetensors --checkpoint-every 100000", "o1.safetensors");
    learns("synrms", "--threads 1 --save q1.safetensors --checkpoint-every 100000", "q1.safetensors");
    char *out = trainer(0, "synrms", "--threads 2 --save q2.safetensors --checkpoint-every 100000");
    ck_assert_msg(strstr(out, " lr 0.002 time ") && strstr(out, " lr 0.001 time ") &&
                  strstr(out, " lr 0.0005 time "), "%s", out);
    free(out);
    ck_assert_msg(tu_same_files(dir, "q1.safetensors", "q2.safetensors"), "rmsprop: 1 vs 2 threads differ");
    ck_assert(file_has("q1.safetensors", "\"optimizer.grad_avg.fc1.weight\""));
    ck_assert(file_has("q1.safetensors", "\"optimizer.square_avg.fc1.weight\""));
    free(trainer(0, "synsgd", "--threads 2 --save o2.safetensors --checkpoint-every 100000"));
    free(trainer(0, "synsgd_serial", "--save os.safetensors --checkpoint-every 100000"));
    ck_assert_msg(tu_same_files(dir, "o1.safetensors", "o2.safetensors"), "sgd: 1 vs 2 threads differ");
    ck_assert_msg(tu_same_files(dir, "o1.safetensors", "os.safetensors"), "sgd: OpenMP vs serial build differ");
    ck_assert(file_has("o1.safetensors", "\"optimizer.momentum_buffer.fc1.weight\""));
    ck_assert(!file_has("o1.safetensors", "exp_avg"));
    const int stops[] = {20, 94, 150};
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
        char args[256];
        snprintf(args, sizeof args, "--threads 2 --save or.safetensors --checkpoint-every 100000 --max-steps %d",
                 stops[i]);
        free(trainer(0, "synsgd", args));
        free(trainer(0, "synsgd", "--threads 2 --save or.safetensors --checkpoint-every 100000 --resume or.safetensors"));
        ck_assert_msg(tu_same_files(dir, "o1.safetensors", "or.safetensors"), "sgd: resume after step %d differs",
                      stops[i]);
    }
}
END_TEST

/* A static inference program built from the trained weights predicts what
 * the trainer's eval scores, has no dynamic dependencies, and its MC-dropout
 * output is reproducible. */
START_TEST(test_predictor) {
    free(trainer(0, "syn", "--save pw.safetensors"));
    char *ev = NULL, *out = NULL;
    ck_assert_int_eq(tu_runf(&ev, "cd '%s' && ./syn eval --weights pw.safetensors --data data", dir), 0);
    double acc = tu_last_test_acc(ev);
    int st = tu_runf(&out,
                     "cd '%s' && '%s' syn.yaml --inference --weights pw.safetensors -o predict.c && "
                     "'%s' -std=c11 -O2 -Wall -Wextra -Wshadow -Werror -static predict.c -o predict -lz -lm 2>&1 && "
                     "(ldd ./predict 2>&1 || true)",
                     dir, DNGEN_EXE, DNGEN_CC);
    ck_assert_msg(st == 0, "%s", out);
    ck_assert_msg(strstr(out, "not a dynamic executable") != NULL, "ldd says: %s", out);
    free(out);
    st = tu_runf(&out, "cd '%s' && ./predict data/t10k-images-idx3-ubyte --format csv", dir);
    ck_assert_int_eq(st, 0);
    int hits = predicted_hits(out);
    ck_assert_msg((double)hits / 600 == acc, "predict accuracy %d/600, eval %s", hits, ev);
    free(out);
    free(ev);
    /* MC dropout: same seed, same output; another seed, another output */
    char *m1 = NULL, *m2 = NULL, *m3 = NULL;
    ck_assert_int_eq(tu_runf(&m1, "cd '%s' && ./predict data/t10k-images-idx3-ubyte --mc 8 --seed 1 --format csv", dir), 0);
    ck_assert_int_eq(tu_runf(&m2, "cd '%s' && ./predict data/t10k-images-idx3-ubyte --mc 8 --seed 1 --format csv", dir), 0);
    ck_assert_int_eq(tu_runf(&m3, "cd '%s' && ./predict data/t10k-images-idx3-ubyte --mc 8 --seed 2 --format csv", dir), 0);
    ck_assert_str_eq(m1, m2);
    ck_assert_str_ne(m1, m3);
    ck_assert_ptr_nonnull(strstr(m1, "entropy,std"));
    free(m1);
    free(m2);
    free(m3);
}
END_TEST

/* A small run of a serial, AVX2-level build is valgrind-clean: no invalid
 * access, no uninitialized use, no leak. (valgrind cannot run AVX-512 code;
 * the sanitizer build of the suite covers the default flags instead.) */
START_TEST(test_valgrind_clean) {
    if (DNGEN_SANITIZE_FLAGS[0] != '\0') return; /* ASan and valgrind do not mix */
    char spec[4200];
    snprintf(spec, sizeof spec, "%s/syn.yaml", dir);
    ck_assert_int_eq(tu_build_trainer(spec, dir, "syn_vg", "--standalone", "-fno-openmp -march=x86-64-v3 -g"), 0);
    char *out = NULL;
    int st = tu_runf(&out,
                     "cd '%s' && valgrind -q --error-exitcode=9 --leak-check=full "
                     "--errors-for-leak-kinds=definite,indirect ./syn_vg train --data data --epochs 1 "
                     "--save vg.safetensors --checkpoint-every 40 --metrics vg.csv 2>&1",
                     dir);
    ck_assert_msg(st == 0, "valgrind exit %d:\n%s", st, out);
    ck_assert_ptr_nonnull(strstr(out, "epoch 1:"));
    free(out);
}
END_TEST

/* README's example of spec errors is real: the command it shows, run from a
 * directory that has the repository's examples/, prints exactly the lines
 * README shows after it, exits 1 as it says, and leaves -o's file alone. */
START_TEST(test_readme_bad_spec) {
    char readme[4200];
    snprintf(readme, sizeof readme, "%s/README.md", DNGEN_SOURCE_DIR);
    char *text = tu_read(readme, NULL);
    ck_assert_ptr_nonnull(text);
    const char *cmd = strstr(text, "\n$ build/dngen examples/bad.yaml ");
    ck_assert_msg(cmd != NULL, "README.md has no '$ build/dngen examples/bad.yaml ...' line");
    cmd += 3; /* "build/dngen ..." */
    const char *eol = strchr(cmd, '\n');
    ck_assert_ptr_nonnull(eol);
    const char *hash = memchr(cmd, '#', (size_t)(eol - cmd));
    ck_assert_msg(hash && strstr(hash, "exit status 1") != NULL && strstr(hash, "untouched") != NULL,
                  "README's command line does not say 'untouched' and 'exit status 1'");
    size_t n = (size_t)(hash - cmd);
    while (n > 0 && cmd[n - 1] == ' ')
        n--;
    char args[512]; /* the arguments after "build/dngen " */
    ck_assert(n > 12 && n - 12 < sizeof args);
    memcpy(args, cmd + 12, n - 12);
    args[n - 12] = '\0';
    ck_assert_str_eq(args, "examples/bad.yaml -o mlp.c");
    const char *want = eol + 1, *end = strstr(want, "\n```");
    ck_assert_ptr_nonnull(end);

    const char *d = tu_dir("readme_bad");
    char out_c[4200];
    snprintf(out_c, sizeof out_c, "%s/mlp.c", d);
    tu_write(out_c, "/* kept */\n");
    char *out = NULL;
    int st = tu_runf(&out, "cd '%s' && ln -s '%s/examples' examples && '%s' %s 2>&1", d, DNGEN_SOURCE_DIR,
                     DNGEN_EXE, args);
    ck_assert_msg(st == 1, "exit %d:\n%s", st, out);
    size_t want_len = (size_t)(end - want) + 1; /* with the last line's newline */
    ck_assert_msg(strlen(out) == want_len && memcmp(out, want, want_len) == 0,
                  "dngen printed:\n%s\nREADME.md shows:\n%.*s", out, (int)want_len, want);
    char *kept = tu_read(out_c, NULL);
    ck_assert_ptr_nonnull(kept);
    ck_assert_str_eq(kept, "/* kept */\n");
    free(kept);
    free(out);
    free(text);
}
END_TEST

/* tools/deps.sh waits for another apt instead of stopping at its lock
 * error. With fakes first in PATH (dpkg-query: nothing installed; id: root;
 * apt-get: logs its arguments, and `update` fails with apt's lock error the
 * first FAKE_LOCKED times), it says what it waits for, retries, and passes
 * DPkg::Lock::Timeout to apt-get so that apt waits for the dpkg lock itself;
 * after DNGEN_APT_WAIT seconds it gives up. */
START_TEST(test_deps_waits_for_apt_lock) {
    char d[4200], path[4400], log[4400];
    snprintf(d, sizeof d, "%s", tu_dir("deps"));
    snprintf(path, sizeof path, "%s/dpkg-query", d);
    tu_write(path, "#!/bin/sh\nexit 1\n");
    snprintf(path, sizeof path, "%s/id", d);
    tu_write(path, "#!/bin/sh\necho 0\n");
    snprintf(path, sizeof path, "%s/apt-get", d);
    tu_write(path, "#!/bin/sh\n"
                   "echo \"$*\" >>\"$FAKE_DIR/log\"\n"
                   "case \" $* \" in *\" update \"*)\n"
                   "  n=$(cat \"$FAKE_DIR/n\" 2>/dev/null || echo 0); n=$((n + 1)); echo $n >\"$FAKE_DIR/n\"\n"
                   "  if [ $n -le $FAKE_LOCKED ]; then\n"
                   "    echo 'E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)' >&2\n"
                   "    echo 'E: Unable to lock directory /var/lib/apt/lists/' >&2\n"
                   "    exit 100\n"
                   "  fi;;\n"
                   "esac\n");
    snprintf(log, sizeof log, "%s/log", d);
    char *out = NULL;
    int st = tu_runf(&out, "chmod +x '%s'/* && cd '%s' && FAKE_DIR='%s' FAKE_LOCKED=2 DNGEN_APT_WAIT=60 "
                     "PATH='%s':\"$PATH\" bash tools/deps.sh --data 2>&1", d, DNGEN_SOURCE_DIR, d, d);
    ck_assert_msg(st == 0, "deps.sh exit %d:\n%s", st, out);
    const char *said = "dngen: apt-get update waits for another apt or dpkg to finish: could not get lock "
                       "/var/lib/apt/lists/lock. It is held by process 4242 (apt-get); retrying for up to ";
    const char *p = strstr(out, said);
    ck_assert_msg(p != NULL, "deps.sh did not say what it waits for:\n%s", out);
    ck_assert_msg(strstr(p + 1, said) == NULL, "said twice:\n%s", out);
    ck_assert_msg(strstr(out, "E: Could not get lock") == NULL, "apt's lock error shown:\n%s", out);
    char *calls = tu_read(log, NULL);
    ck_assert_ptr_nonnull(calls);
    /* three updates (two locked), then one install with the lock timeout */
    const char *u = "-o DPkg::Lock::Timeout=", *c = calls;
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(strncmp(c, u, strlen(u)) == 0, "call %d: %s", i + 1, calls);
        c = strchr(c, '\n');
        ck_assert_ptr_nonnull(c);
        ck_assert_msg(strncmp(c - 10, " update -q", 10) == 0, "call %d is not an update:\n%s", i + 1, calls);
        c++;
    }
    ck_assert_msg(strncmp(c, u, strlen(u)) == 0 && strstr(c, " install -y ") != NULL &&
                      strstr(c, " dataset-fashion-mnist\n") != NULL && strchr(c, '\n')[1] == '\0',
                  "calls:\n%s", calls);
    free(calls);
    free(out);

    /* Locked for good: gives up after DNGEN_APT_WAIT seconds, with apt's
     * error, and installs nothing. */
    snprintf(path, sizeof path, "%s/n", d);
    unlink(path);
    unlink(log);
    time_t t0 = time(NULL);
    st = tu_runf(&out, "cd '%s' && FAKE_DIR='%s' FAKE_LOCKED=1000 DNGEN_APT_WAIT=3 PATH='%s':\"$PATH\" "
                 "bash tools/deps.sh 2>&1", DNGEN_SOURCE_DIR, d, d);
    ck_assert_msg(st == 1, "deps.sh exit %d:\n%s", st, out);
    ck_assert_msg(time(NULL) - t0 >= 2, "gave up at once:\n%s", out);
    ck_assert_msg(strstr(out, "E: Could not get lock /var/lib/apt/lists/lock.") != NULL &&
                      strstr(out, "dngen: gave up after waiting 3 s for another apt or dpkg to finish") != NULL,
                  "%s", out);
    calls = tu_read(log, NULL);
    ck_assert_ptr_nonnull(calls);
    ck_assert_msg(strstr(calls, "install") == NULL, "installed anyway:\n%s", calls);
    free(calls);
    free(out);
}
END_TEST

int main(void) {
    setup();
    Suite *s = suite_create("e2e");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_learns);
    tcase_add_test(tc, test_threads_bit_identical);
    tcase_add_test(tc, test_adaptive_threads_bit_identical);
    tcase_add_test(tc, test_resume_bit_identical);
    tcase_add_test(tc, test_kill9_resume);
    tcase_add_test(tc, test_predictor);
    tcase_add_test(tc, test_batchnorm);
    tcase_add_test(tc, test_optimizers);
    tcase_add_test(tc, test_valgrind_clean);
    tcase_add_test(tc, test_readme_bad_spec);
    tcase_add_test(tc, test_deps_waits_for_apt_lock);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
