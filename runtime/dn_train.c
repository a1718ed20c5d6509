/* dn_train.c - dn_main and the `train` command: data, buffers, the epoch
 * loop, metrics CSV, checkpoints, resume and signals.
 *
 * Determinism: everything random is a pure function of (seed, epoch, step),
 * the driver only adds up per-batch sums in batch order, and a checkpoint
 * holds the whole state (weights, Adam moments, step, epoch, batch cursor,
 * running epoch sums), so a resumed run ends bit-identical to an
 * uninterrupted one whatever the thread count.
 */
#include "dn_runtime.h"
#include "dn_train.h"

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TR_CSV_HEADER "epoch,step,train_loss,train_acc,test_loss,test_acc,seconds\n"
#define TR_CSV_MAX_OLD ((long)64 << 20) /* largest metrics file kept on resume */

/* ---- signals ---------------------------------------------------------------- */

static volatile sig_atomic_t tr_signal_caught; /* signal number, 0 = none */

static void tr_on_signal(int sig) { tr_signal_caught = sig; }

/* Old dispositions, restored when training ends. */
typedef struct {
    struct sigaction old_int, old_term;
} tr_signals;

/* Routes SIGINT/SIGTERM to the flag. SA_RESETHAND: a second signal kills. */
static void tr_signals_install(tr_signals *s) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = tr_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    tr_signal_caught = 0;
    sigaction(SIGINT, &sa, &s->old_int);
    sigaction(SIGTERM, &sa, &s->old_term);
}

static void tr_signals_restore(const tr_signals *s) {
    sigaction(SIGINT, &s->old_int, NULL);
    sigaction(SIGTERM, &s->old_term, NULL);
}

/* ---- run resources ---------------------------------------------------------- */

/* Everything one training run owns; all of it is allocated before the loop. */
typedef struct {
    const dn_model *m;
    const dn_opts *o;
    dn_dataset train, test;
    int has_test;
    int eval_batch;             /* rows per test-eval batch */
    float *params, *grads, *exp_avg, *exp_avg_sq, *x;
    int32_t *y;
    uint32_t *perm, *test_order;
    void *ws;
    char *csv;                  /* metrics file contents */
    size_t csv_len, csv_cap;
} tr_run;

static void tr_free(tr_run *r) {
    dn_dataset_free(&r->train);
    if (r->has_test)
        dn_dataset_free(&r->test);
    free(r->params);
    free(r->grads);
    free(r->exp_avg);
    free(r->exp_avg_sq);
    free(r->x);
    free(r->y);
    free(r->perm);
    free(r->test_order);
    free(r->ws);
    free(r->csv);
}

/* True if DIR/NAME or DIR/NAME.gz exists. */
static int tr_exists(const char *dir, const char *name) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (access(path, F_OK) == 0)
        return 1;
    snprintf(path, sizeof path, "%s/%s.gz", dir, name);
    return access(path, F_OK) == 0;
}

/* Loads train-* (required) and t10k-* (when its image file exists). */
static int tr_load_data(tr_run *r) {
    const dn_model *m = r->m;
    const char *dir = r->o->data_dir;
    char err[DN_ERR_MAX];
    if (dn_dataset_load(dir, "train", (uint32_t)m->n_inputs, m->n_outputs, &r->train, err) != 0) {
        fprintf(stderr, "%s: %s\n", r->o->prog, err);
        return DN_EXIT_INPUT;
    }
    if (r->train.n == 0) {
        fprintf(stderr, "%s: %s: the training set (train-*) has no samples\n", r->o->prog, dir);
        return DN_EXIT_INPUT;
    }
    if (!tr_exists(dir, "t10k-images-idx3-ubyte"))
        return DN_EXIT_OK;
    if (dn_dataset_load(dir, "t10k", (uint32_t)m->n_inputs, m->n_outputs, &r->test, err) != 0) {
        fprintf(stderr, "%s: %s\n", r->o->prog, err);
        return DN_EXIT_INPUT;
    }
    r->has_test = r->test.n > 0;
    if (!r->has_test)
        dn_dataset_free(&r->test);
    return DN_EXIT_OK;
}

/* Allocates parameters, gradients, Adam moments, batch buffers, the
 * permutation and the workspace. */
static int tr_alloc(tr_run *r) {
    const dn_model *m = r->m;
    int b = r->o->batch_size;
    if ((uint32_t)b > r->train.n)
        b = (int)r->train.n; /* no batch can be larger */
    r->eval_batch = b > DN_EVAL_BATCH ? b : DN_EVAL_BATCH;
    if (r->has_test && (uint32_t)r->eval_batch > r->test.n)
        r->eval_batch = (int)r->test.n;
    int rows = b > r->eval_batch ? b : r->eval_batch;
    size_t pbytes = m->n_params * sizeof(float);
    r->params = dn_alloc_aligned(pbytes);
    r->grads = dn_alloc_aligned(pbytes);
    r->exp_avg = dn_alloc_aligned(pbytes);
    r->exp_avg_sq = dn_alloc_aligned(pbytes);
    r->x = dn_alloc_aligned((size_t)rows * (size_t)m->n_inputs * sizeof(float));
    r->y = dn_alloc_aligned((size_t)rows * sizeof(int32_t));
    r->perm = dn_identity_order(r->train.n);
    r->test_order = r->has_test ? dn_identity_order(r->test.n) : NULL;
    r->ws = dn_alloc_aligned(m->workspace_size(rows));
    if (!r->params || !r->grads || !r->exp_avg || !r->exp_avg_sq || !r->x || !r->y || !r->perm ||
        (r->has_test && !r->test_order) || !r->ws) {
        fprintf(stderr, "%s: out of memory\n", r->o->prog);
        return DN_EXIT_FAIL;
    }
    return DN_EXIT_OK;
}

/* ---- start state: fresh, --init or --resume -------------------------------- */

static int64_t tr_batches_per_epoch(const tr_run *r) {
    return ((int64_t)r->train.n + r->o->batch_size - 1) / r->o->batch_size;
}

/* Refuses a resume whose run differs from the command line's. */
static int tr_check_resume(const tr_run *r, const dn_train_state *saved) {
    const dn_opts *o = r->o;
    const char *p = o->prog, *f = o->resume;
    if (saved->batch_size != o->batch_size) {
        fprintf(stderr, "%s: %s: run was saved with --batch-size %d, the command line gives %d; "
                "a different batch size cannot continue the same run\n", p, f, saved->batch_size,
                o->batch_size);
    } else if (saved->seed != o->seed) {
        fprintf(stderr, "%s: %s: run was saved with --seed %" PRIu64 ", the command line gives %"
                PRIu64 "; resume with the same --seed\n", p, f, saved->seed, o->seed);
    } else if (saved->shuffle != o->shuffle) {
        fprintf(stderr, "%s: %s: run was saved %s --no-shuffle; resume with the same shuffling\n",
                p, f, saved->shuffle ? "without" : "with");
    } else if (saved->n_train != r->train.n) {
        fprintf(stderr, "%s: %s: run was saved with %" PRIu32 " training samples, %s has %" PRIu32
                "; resume with the same data\n", p, f, saved->n_train, o->data_dir, r->train.n);
    } else if (saved->batch > tr_batches_per_epoch(r) || saved->seen > (int64_t)r->train.n) {
        fprintf(stderr, "%s: %s: batch cursor %" PRId64 " is beyond the epoch's %" PRId64
                " batches\n", p, f, saved->batch, tr_batches_per_epoch(r));
    } else {
        return DN_EXIT_OK;
    }
    return DN_EXIT_INPUT;
}

/* Loads a --resume checkpoint into the run and *st. */
static int tr_resume(tr_run *r, dn_train_state *st) {
    char err[DN_ERR_MAX];
    dn_train_state saved;
    memset(&saved, 0, sizeof saved);
    if (dn_ckpt_load(r->m, r->o->resume, r->params, r->exp_avg, r->exp_avg_sq, &saved, NULL, err) != 0) {
        fprintf(stderr, "%s: %s\n", r->o->prog, err);
        return DN_EXIT_INPUT;
    }
    int rc = tr_check_resume(r, &saved);
    if (rc != DN_EXIT_OK)
        return rc;
    if (saved.adam.lr != st->adam.lr)
        fprintf(stderr, "%s: warning: %s: run was saved with --lr %g, continuing with --lr %g\n",
                r->o->prog, r->o->resume, (double)saved.adam.lr, (double)st->adam.lr);
    dn_adam adam = st->adam; /* the command line's optimizer settings win */
    *st = saved;
    st->adam = adam;
    return DN_EXIT_OK;
}

/* Sets up *st and the weights: fresh init, --init weights or --resume. */
static int tr_start_state(tr_run *r, dn_train_state *st) {
    const dn_model *m = r->m;
    const dn_opts *o = r->o;
    memset(st, 0, sizeof *st);
    st->seed = o->seed;
    st->batch_size = o->batch_size;
    st->shuffle = o->shuffle;
    st->n_train = r->train.n;
    st->adam.lr = o->lr;
    st->adam.beta1 = m->defaults.beta1;
    st->adam.beta2 = m->defaults.beta2;
    st->adam.eps = m->defaults.eps;
    st->adam.weight_decay = m->defaults.weight_decay;
    st->adam.decoupled = m->defaults.decoupled_wd;
    if (o->resume)
        return tr_resume(r, st);
    if (!o->init) {
        m->init(r->params, o->seed);
        return DN_EXIT_OK;
    }
    char err[DN_ERR_MAX], warn[DN_ERR_MAX];
    if (dn_ckpt_load(m, o->init, r->params, NULL, NULL, NULL, warn, err) != 0) {
        fprintf(stderr, "%s: %s\n", o->prog, err);
        return DN_EXIT_INPUT;
    }
    if (warn[0])
        fprintf(stderr, "%s: warning: %s\n", o->prog, warn);
    return DN_EXIT_OK;
}

/* ---- metrics CSV -------------------------------------------------------------- */

/* Appends len bytes to the CSV buffer, growing it. Returns 0 or -1. */
static int tr_csv_append(tr_run *r, const char *s, size_t len) {
    if (r->csv_len + len + 1 > r->csv_cap) {
        size_t cap = (r->csv_cap ? r->csv_cap * 2 : 4096) + len;
        char *p = realloc(r->csv, cap);
        if (!p)
            return -1;
        r->csv = p;
        r->csv_cap = cap;
    }
    memcpy(r->csv + r->csv_len, s, len);
    r->csv_len += len;
    r->csv[r->csv_len] = '\0';
    return 0;
}

/* Reads a whole small file into a malloc'd string; NULL if absent/unreadable. */
static char *tr_read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && size <= TR_CSV_MAX_OLD &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size + 1)) != NULL) {
        if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
            free(buf);
            buf = NULL;
        } else {
            buf[size] = '\0';
        }
    }
    fclose(f);
    return buf;
}

/* Copies into the CSV buffer the rows of an existing metrics file for the
 * epochs a resumed run has completed (1..done_epochs), in increasing order,
 * so the rewritten file still covers the whole run. */
static int tr_csv_keep_old(tr_run *r, int64_t done_epochs) {
    char *old = tr_read_text(r->o->metrics);
    if (!old)
        return 0;
    int rc = 0;
    size_t hlen = strlen(TR_CSV_HEADER);
    int64_t last = 0;
    if (strncmp(old, TR_CSV_HEADER, hlen) == 0) {
        for (char *line = old + hlen; *line && rc == 0;) {
            char *nl = strchr(line, '\n');
            if (!nl)
                break; /* an unterminated last line is not a complete row */
            char *end;
            long long e = strtoll(line, &end, 10);
            if (end != line && *end == ',' && e > last && e <= done_epochs) {
                rc = tr_csv_append(r, line, (size_t)(nl - line + 1));
                last = e;
            }
            line = nl + 1;
        }
    }
    free(old);
    return rc;
}

/* Prepares the CSV buffer (header, plus old rows on resume). */
static int tr_csv_init(tr_run *r, const dn_train_state *st) {
    if (!r->o->metrics)
        return DN_EXIT_OK;
    if (tr_csv_append(r, TR_CSV_HEADER, strlen(TR_CSV_HEADER)) != 0 ||
        (r->o->resume && tr_csv_keep_old(r, st->epoch) != 0)) {
        fprintf(stderr, "%s: out of memory\n", r->o->prog);
        return DN_EXIT_FAIL;
    }
    return DN_EXIT_OK;
}

/* Metrics of one finished (or partial) epoch. */
typedef struct {
    double train_loss, train_acc, test_loss, test_acc, seconds;
} tr_epoch_result;

/* Appends the epoch's row and rewrites the metrics file atomically. */
static int tr_csv_write(tr_run *r, const dn_train_state *st, const tr_epoch_result *e) {
    if (!r->o->metrics)
        return DN_EXIT_OK;
    char row[512], test[128] = ",";
    if (r->has_test)
        snprintf(test, sizeof test, "%.6g,%.6f", e->test_loss, e->test_acc);
    int len = snprintf(row, sizeof row, "%" PRId64 ",%" PRId64 ",%.6g,%.6f,%s,%.3f\n",
                       st->epoch + 1, st->step, e->train_loss, e->train_acc, test, e->seconds);
    char err[DN_ERR_MAX];
    if (len < 0 || (size_t)len >= sizeof row || tr_csv_append(r, row, (size_t)len) != 0) {
        fprintf(stderr, "%s: out of memory\n", r->o->prog);
        return DN_EXIT_FAIL;
    }
    if (dn_write_file_atomic(r->o->metrics, r->csv, r->csv_len, err) != 0) {
        fprintf(stderr, "%s: %s\n", r->o->prog, err);
        return DN_EXIT_OUTPUT;
    }
    return DN_EXIT_OK;
}

/* ---- the loop ------------------------------------------------------------------ */

/* Saves the full training state to --save. */
static int tr_save_state(tr_run *r, const dn_train_state *st) {
    char err[DN_ERR_MAX];
    if (dn_ckpt_save(r->m, r->o->save, r->params, r->exp_avg, r->exp_avg_sq, st, err) != 0) {
        fprintf(stderr, "%s: %s\n", r->o->prog, err);
        return DN_EXIT_OUTPUT;
    }
    return DN_EXIT_OK;
}

/* Reports a non-finite loss at the step about to be taken, naming the first
 * tensor whose gradient is not finite. */
static void tr_report_nonfinite(const tr_run *r, const dn_train_state *st, double loss) {
    const dn_model *m = r->m;
    const char *bad = NULL;
    for (int t = 0; t < m->n_tensors && !bad; t++)
        for (size_t k = 0; k < m->tensors[t].count; k++)
            if (!isfinite(r->grads[m->tensors[t].offset + k])) {
                bad = m->tensors[t].name;
                break;
            }
    fflush(stdout);
    fprintf(stderr, "%s: step %" PRId64 ": loss is %s", r->o->prog, st->step + 1,
            isnan(loss) ? "nan" : loss > 0 ? "inf" : "-inf");
    if (bad)
        fprintf(stderr, ", gradient of '%s' is not finite", bad);
    fprintf(stderr, "; stopping%s\n", r->o->save ? " (last checkpoint kept)" : "");
}

/* Forward, backward and Adam step t = step + 1 on batch b: fused when the
 * model provides train_step_adam, else train_step then dn_adam_step. Returns
 * the batch's loss sum; when it is not finite, nothing has been updated. */
static double tr_train_batch(tr_run *r, const dn_train_state *st, const dn_batch *b, int *correct) {
    const dn_model *m = r->m;
    if (m->train_step_adam) {
        dn_adam_coef c;
        dn_adam_coefs(&st->adam, st->step + 1, &c);
        return m->train_step_adam(r->params, r->exp_avg, r->exp_avg_sq, &c, r->ws, b, correct);
    }
    double loss = m->train_step(r->params, r->grads, r->ws, b, correct);
    if (isfinite(loss))
        dn_adam_step(&st->adam, r->params, r->grads, r->exp_avg, r->exp_avg_sq, m->n_params,
                     st->step + 1);
    return loss;
}

/* One optimizer step on batch st->batch of the epoch's permutation. */
static int tr_step(tr_run *r, dn_train_state *st) {
    const dn_model *m = r->m;
    int64_t start = st->batch * (int64_t)r->o->batch_size;
    int64_t left = (int64_t)r->train.n - start;
    int rows = left < r->o->batch_size ? (int)left : r->o->batch_size;
    dn_dataset_gather(&r->train, r->perm + start, rows, m->defaults.norm_mean,
                      m->defaults.norm_std, r->x, r->y);
    dn_batch b = {.n = rows, .x = r->x, .y = r->y, .seed = st->seed, .step = (uint64_t)st->step};
    int correct = 0;
    double loss = tr_train_batch(r, st, &b, &correct);
    if (!isfinite(loss)) {
        if (m->train_step_adam) { /* the fused step left no gradients to inspect */
            int ignored = 0;
            m->train_step(r->params, r->grads, r->ws, &b, &ignored);
        }
        tr_report_nonfinite(r, st, loss);
        return DN_EXIT_FAIL;
    }
    st->step++;
    st->batch++;
    st->loss_sum += loss;
    st->correct += correct;
    st->seen += rows;
    return DN_EXIT_OK;
}

/* Handles a caught SIGINT/SIGTERM: saves the state when --save is given.
 * Returns 128 + signal, or DN_EXIT_OUTPUT when the save failed. */
static int tr_interrupted(tr_run *r, const dn_train_state *st) {
    int sig = tr_signal_caught;
    fflush(stdout);
    if (!r->o->save) {
        fprintf(stderr, "%s: interrupted at step %" PRId64 "; no --save given, state not saved\n",
                r->o->prog, st->step);
        return 128 + sig;
    }
    if (tr_save_state(r, st) != DN_EXIT_OK)
        return DN_EXIT_OUTPUT;
    fprintf(stderr, "%s: interrupted at step %" PRId64 "; state saved to %s\n", r->o->prog,
            st->step, r->o->save);
    return 128 + sig;
}

/* After a step that did not end the epoch: periodic checkpoint, signals. */
static int tr_after_step(tr_run *r, const dn_train_state *st) {
    int64_t every = r->o->checkpoint_every;
    if (every && st->step % every == 0 && tr_save_state(r, st) != DN_EXIT_OK)
        return DN_EXIT_OUTPUT;
    if (tr_signal_caught)
        return tr_interrupted(r, st);
    return DN_EXIT_OK;
}

/* Evaluates, prints the epoch line and writes the metrics row. */
static int tr_report_epoch(tr_run *r, const dn_train_state *st, double seconds) {
    tr_epoch_result e;
    memset(&e, 0, sizeof e);
    e.seconds = seconds;
    e.train_loss = st->seen ? st->loss_sum / (double)st->seen : 0.0;
    e.train_acc = st->seen ? (double)st->correct / (double)st->seen : 0.0;
    if (r->has_test)
        dn_eval_dataset(r->m, r->params, r->ws, &r->test, r->test_order, r->eval_batch, r->x,
                        r->y, &e.test_loss, &e.test_acc);
    if (!r->o->quiet) {
        printf("epoch %" PRId64 ": train_loss %.4f train_acc %.4f", st->epoch + 1, e.train_loss,
               e.train_acc);
        if (r->has_test)
            printf(" test_acc %.4f", e.test_acc);
        printf(" time %.2fs\n", e.seconds);
        fflush(stdout);
    }
    return tr_csv_write(r, st, &e);
}

static int tr_max_steps_reached(const tr_run *r, const dn_train_state *st) {
    return r->o->max_steps && st->step >= r->o->max_steps;
}

/* Runs the batches left in epoch st->epoch, reports it and, if it is
 * complete, moves st to the next epoch (then handles a checkpoint that fell
 * on its last step, and signals). */
static int tr_epoch(tr_run *r, dn_train_state *st) {
    int64_t nb = tr_batches_per_epoch(r);
    if (st->shuffle)
        dn_shuffle(r->perm, r->train.n, st->seed, (uint32_t)st->epoch);
    double t0 = dn_now_seconds();
    while (st->batch < nb && !tr_max_steps_reached(r, st)) {
        int rc = tr_step(r, st);
        if (rc == DN_EXIT_OK && st->batch < nb)
            rc = tr_after_step(r, st);
        if (rc != DN_EXIT_OK)
            return rc;
    }
    int rc = tr_report_epoch(r, st, dn_now_seconds() - t0);
    if (rc != DN_EXIT_OK || st->batch < nb)
        return rc;
    st->epoch++;
    st->batch = 0;
    st->loss_sum = 0;
    st->correct = st->seen = 0;
    int64_t every = r->o->checkpoint_every;
    if (every && st->step % every == 0 && st->step > 0 && tr_save_state(r, st) != DN_EXIT_OK)
        return DN_EXIT_OUTPUT;
    return tr_signal_caught ? tr_interrupted(r, st) : DN_EXIT_OK;
}

/* Runs epochs until --epochs, --max-steps, a failure or a signal. */
static int tr_loop(tr_run *r, dn_train_state *st) {
    while (st->epoch < r->o->epochs) {
        if (tr_max_steps_reached(r, st) && st->batch == 0)
            break; /* nothing of this epoch to report */
        int rc = tr_epoch(r, st);
        if (rc != DN_EXIT_OK)
            return rc;
        if (tr_max_steps_reached(r, st))
            break;
    }
    return DN_EXIT_OK;
}

/* Final save: the full state with --checkpoint-every, else the weights. */
static int tr_save_final(tr_run *r, const dn_train_state *st) {
    if (!r->o->save)
        return DN_EXIT_OK;
    if (r->o->checkpoint_every)
        return tr_save_state(r, st);
    char err[DN_ERR_MAX];
    if (dn_ckpt_save(r->m, r->o->save, r->params, NULL, NULL, NULL, err) != 0) {
        fprintf(stderr, "%s: %s\n", r->o->prog, err);
        return DN_EXIT_OUTPUT;
    }
    return DN_EXIT_OK;
}

static void tr_print_header(const tr_run *r, int threads) {
    if (r->o->quiet)
        return;
    printf("training %s: %zu parameters, %" PRIu32 " train / %" PRIu32 " test samples, batch %d, "
           "%d epochs, seed %" PRIu64 ", %d threads\n",
           r->m->name, r->m->n_params, r->train.n, r->has_test ? r->test.n : 0, r->o->batch_size,
           r->o->epochs, r->o->seed, threads);
    fflush(stdout);
}

int dn_cmd_train(const dn_model *m, const dn_opts *o) {
    tr_run r;
    memset(&r, 0, sizeof r);
    r.m = m;
    r.o = o;
    dn_train_state st;
    int threads = dn_apply_threads(o->threads);
    int rc = tr_load_data(&r);
    if (rc == DN_EXIT_OK)
        rc = tr_alloc(&r);
    if (rc == DN_EXIT_OK)
        rc = tr_start_state(&r, &st);
    if (rc == DN_EXIT_OK)
        rc = tr_csv_init(&r, &st);
    if (rc == DN_EXIT_OK) {
        tr_print_header(&r, threads);
        tr_signals sigs;
        tr_signals_install(&sigs);
        rc = tr_loop(&r, &st);
        if (rc == DN_EXIT_OK)
            rc = tr_save_final(&r, &st);
        tr_signals_restore(&sigs);
    }
    tr_free(&r);
    return rc;
}

/* ---- entry point ------------------------------------------------------------- */

int dn_main(const dn_model *m, int argc, char **argv) {
    dn_opts o;
    int rc = dn_opts_parse(m, argc, argv, &o);
    if (rc != DN_EXIT_OK)
        return rc;
    if (o.cmd == DN_CMD_NONE) {
        dn_print_help(m, o.prog, DN_CMD_NONE, stderr);
        return DN_EXIT_USAGE;
    }
    if (o.cmd == DN_CMD_HELP || o.help)
        dn_print_help(m, o.prog, o.cmd, stdout);
    else if (o.cmd == DN_CMD_VERSION)
        dn_print_version(m, stdout);
    else if (o.cmd == DN_CMD_TRAIN)
        rc = dn_cmd_train(m, &o);
    else if (o.cmd == DN_CMD_EVAL)
        rc = dn_cmd_eval(m, &o);
    else
        rc = dn_cmd_gradcheck(m, &o);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: error writing to standard output\n", o.prog);
        if (rc == DN_EXIT_OK)
            rc = DN_EXIT_OUTPUT;
    }
    return rc;
}
