/* dn_train.c - dn_main and the `train` command: data and validation split,
 * buffers, the epoch loop, evaluation and epoch lines, early stopping,
 * checkpoints, resume and signals. The metrics file, step log and progress
 * bar are written by dn_report.c; split and early-stopping bookkeeping live
 * in dn_split.c.
 *
 * Determinism: everything random is a pure function of (seed, epoch, step),
 * the driver only adds up per-batch sums in batch order, and a checkpoint
 * holds the whole state (weights, Adam moments, step, epoch, batch cursor,
 * running epoch sums, validation split, best-so-far weights and counters),
 * so a resumed run ends bit-identical to an uninterrupted one whatever the
 * thread count.
 */
#include "dn_runtime.h"
#include "dn_train.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef DN_MPI
#include "dn_mpi.h"
#endif

/* ---- signals ---------------------------------------------------------------- */

static volatile sig_atomic_t dn_tr_signal_caught; /* signal number, 0 = none */

static void dn_tr_on_signal(int sig) { dn_tr_signal_caught = sig; }

/* Old dispositions, restored when training ends. */
typedef struct {
    struct sigaction old_int, old_term;
} dn_tr_signals;

/* Routes SIGINT/SIGTERM to the flag. SA_RESETHAND: a second signal kills. */
static void dn_tr_signals_install(dn_tr_signals *s) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = dn_tr_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    dn_tr_signal_caught = 0;
    sigaction(SIGINT, &sa, &s->old_int);
    sigaction(SIGTERM, &sa, &s->old_term);
}

static void dn_tr_signals_restore(const dn_tr_signals *s) {
    sigaction(SIGINT, &s->old_int, NULL);
    sigaction(SIGTERM, &s->old_term, NULL);
}

/* ---- run resources ---------------------------------------------------------- */

/* Everything one training run owns; all of it is allocated before the loop. */
typedef struct {
    const dn_model *m;
    dn_governor gov;            /* the steps' team size (dn_threads.c) */
    const dn_opts *o;
    dn_dataset train, test;
    int has_test;
    int eval_batch;             /* rows per eval batch (test and validation) */
    float *params, *grads, *x;
    dn_opt_bufs ob;             /* the optimizer's state (Adam: exp_avg, exp_avg_sq) */
    double lr;                  /* the lr of the last step taken */
    float *best;                /* --early-stopping: weights of the best epoch */
    int32_t *y;
    float *t;                   /* regression and multi-label: the batch's targets */
    uint32_t *perm;             /* this epoch's order of the trained samples */
    uint32_t *test_order;
    void *ws;
    dn_split split;             /* trained and held-out samples of train */
    dn_metrics metrics;
    dn_steplog steplog;
    dn_progress progress;
#ifdef DN_MPI
    dn_shard shard;             /* this batch's shares, one per process */
    int signal_agreed;          /* the largest signal any process had caught when they last
                                   compared (each step, each epoch's end): what all stop on */
    float *mpi_scratch;         /* dn_mpi_combine_floats' */
#endif
} dn_tr_run;

/* The signal the run stops on: the caught one, or under MPI the one all
 * processes agreed on (so that they stop after the same step). */
static int dn_tr_signal(const dn_tr_run *r) {
#ifdef DN_MPI
    return dn_mpi_size > 1 ? r->signal_agreed : (int)dn_tr_signal_caught;
#else
    (void)r;
    return (int)dn_tr_signal_caught;
#endif
}

static void dn_tr_free(dn_tr_run *r) {
    dn_dataset_free(&r->train);
    if (r->has_test)
        dn_dataset_free(&r->test);
    free(r->params);
    free(r->grads);
    for (int k = 0; k < DN_OPT_BUFS; k++)
        free(r->ob.b[k]);
    free(r->best);
    free(r->x);
    free(r->y);
    free(r->t);
    free(r->perm);
    free(r->test_order);
    free(r->ws);
    dn_split_free(&r->split);
    dn_metrics_free(&r->metrics);
#ifdef DN_MPI
    dn_shard_free(&r->shard);
    free(r->mpi_scratch);
#endif
}

/* True if DIR/NAME or DIR/NAME.gz exists. */
static int dn_tr_exists(const char *dir, const char *name) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (access(path, F_OK) == 0)
        return 1;
    snprintf(path, sizeof path, "%s/%s.gz", dir, name);
    return access(path, F_OK) == 0;
}

/* Loads train-* (required) and t10k-* (when its image file exists), or the
 * spec's CSV or NPY files. */
static int dn_tr_load_data(dn_tr_run *r) {
    const dn_model *m = r->m;
    const char *dir = r->o->data_dir;
    char err[DN_ERR_MAX];
    if (m->defaults.data) {
        if (dn_data_load(m, r->o, &r->train, &r->test, &r->has_test, err) == 0)
            return DN_EXIT_OK;
        fprintf(stderr, "%s: %s\n", r->o->prog, err);
        return DN_EXIT_INPUT;
    }
    if (dn_dataset_load(dir, "train", (uint32_t)m->n_inputs, dn_model_classes(m), &r->train, err) != 0) {
        fprintf(stderr, "%s: %s\n", r->o->prog, err);
        return DN_EXIT_INPUT;
    }
    if (r->train.n == 0) {
        fprintf(stderr, "%s: %s: the training set (train-*) has no samples\n", r->o->prog, dir);
        return DN_EXIT_INPUT;
    }
    if (!dn_tr_exists(dir, "t10k-images-idx3-ubyte"))
        return DN_EXIT_OK;
    if (dn_dataset_load(dir, "t10k", (uint32_t)m->n_inputs, dn_model_classes(m), &r->test, err) != 0) {
        fprintf(stderr, "%s: %s\n", r->o->prog, err);
        return DN_EXIT_INPUT;
    }
    r->has_test = r->test.n > 0;
    if (!r->has_test)
        dn_dataset_free(&r->test);
    return DN_EXIT_OK;
}

/* Splits off the --val-split samples; both parts must be non-empty. */
static int dn_tr_make_split(dn_tr_run *r) {
    const dn_opts *o = r->o;
    if (dn_split_make(r->train.n, o->val_split, o->seed, &r->split) != 0) {
        fprintf(stderr, "%s: out of memory\n", o->prog);
        return DN_EXIT_FAIL;
    }
    if (o->val_split > 0 && r->split.n_val == 0) {
        fprintf(stderr, "%s: --val-split %g: round(%g * %" PRIu32 ") = 0 training samples would be "
                "held out; use a larger fraction\n", o->prog, o->val_split, o->val_split, r->train.n);
        return DN_EXIT_USAGE;
    }
    if (r->split.n_fit == 0) {
        fprintf(stderr, "%s: --val-split %g would hold out all %" PRIu32 " training sample%s; "
                "use a smaller fraction\n", o->prog, o->val_split, r->train.n, dn_plural(r->train.n));
        return DN_EXIT_USAGE;
    }
    if (r->m->defaults.schedule.type == DN_LRS_PLATEAU && r->split.n_val == 0) {
        fprintf(stderr, "%s: the plateau schedule watches the validation %s; give --val-split F "
                "(e.g. --val-split 0.1)\n",
                o->prog, r->m->defaults.schedule.metric_acc ? "accuracy" : "loss");
        return DN_EXIT_USAGE;
    }
    if (r->m->batchnorm && r->split.n_fit < 2) {
        fprintf(stderr, "%s: batch norm needs at least 2 training samples, got %" PRIu32 "\n", o->prog,
                r->split.n_fit);
        return DN_EXIT_USAGE;
    }
    return DN_EXIT_OK;
}

/* Allocates parameters, gradients, the optimizer's buffers (the third only
 * for centered RMSprop), best weights, batch buffers, the permutation and
 * the workspace. */
static int dn_tr_alloc(dn_tr_run *r) {
    const dn_model *m = r->m;
    int b = r->o->batch_size;
    if ((uint32_t)b > r->split.n_fit)
        b = (int)r->split.n_fit; /* no batch can be larger */
    r->eval_batch = dn_eval_rows(m, b);
    if (r->has_test && (uint32_t)r->eval_batch > r->test.n)
        r->eval_batch = (int)r->test.n;
    int rows = b > r->eval_batch ? b : r->eval_batch;
    size_t pbytes = m->n_params * sizeof(float);
    r->params = dn_alloc_aligned(pbytes);
    /* With Adam fused into the kernels no gradient buffer is used (only to
     * inspect a non-finite step, allocated then): 4.8 MB of cnn.yaml's. */
    int fused = m->train_step_adam && m->defaults.optim.type == DN_OPTIM_ADAM && !(m->defaults.clip_grad_norm > 0);
#ifdef DN_MPI
    fused = fused && dn_mpi_size == 1;
#endif
    r->grads = fused ? NULL : dn_alloc_aligned(pbytes);
    r->ob.b[0] = dn_alloc_aligned(pbytes);
    r->ob.b[1] = dn_alloc_aligned(pbytes);
    int third = m->defaults.optim.type == DN_OPTIM_RMSPROP && m->defaults.optim.centered;
    r->ob.b[2] = third ? dn_alloc_aligned(pbytes) : NULL;
    r->best = r->o->patience ? dn_alloc_aligned(pbytes) : NULL;
    r->x = dn_alloc_aligned((size_t)rows * (size_t)m->n_inputs * sizeof(float));
    r->y = dn_alloc_aligned((size_t)rows * sizeof(int32_t));
    r->t = dn_model_targets(m) ? dn_alloc_aligned((size_t)rows * (size_t)m->n_outputs * sizeof(float)) : NULL;
    r->perm = dn_identity_order(r->split.n_fit);
    r->test_order = r->has_test ? dn_identity_order(r->test.n) : NULL;
    r->ws = dn_alloc_aligned(m->workspace_size(rows));
#ifdef DN_MPI
    if (m->n_params >= (size_t)INT_MAX) { /* MPI counts and offsets are ints */
        fprintf(stderr, "%s: %zu parameters: more than MPI's int counts can hold\n", r->o->prog, m->n_params);
        return DN_EXIT_FAIL;
    }
    if (dn_shard_init(&r->shard, dn_mpi_size) != 0 ||
        !(r->mpi_scratch = malloc(sizeof(float) * dn_mpi_scratch_floats(m->n_params)))) {
        fprintf(stderr, "%s: out of memory\n", r->o->prog);
        return DN_EXIT_FAIL;
    }
#endif
    if (!r->params || (!fused && !r->grads) || !r->ob.b[0] || !r->ob.b[1] || (third && !r->ob.b[2]) || !r->x ||
        !r->y || !r->perm || (r->o->patience && !r->best) || (r->has_test && !r->test_order) || !r->ws ||
        (dn_model_targets(m) && !r->t)) {
        fprintf(stderr, "%s: out of memory\n", r->o->prog);
        return DN_EXIT_FAIL;
    }
    return DN_EXIT_OK;
}

/* ---- start state: fresh, --init or --resume -------------------------------- */

/* Batches per epoch: the last one may be short, except that a last batch of
 * one row is dropped with batch norm (its batch variance would be 0; PyTorch
 * refuses such a batch). */
static int64_t dn_tr_batches_per_epoch(const dn_tr_run *r) {
    int64_t n = r->split.n_fit, b = r->o->batch_size;
    if (r->m->batchnorm && n % b == 1)
        return n / b;
    return (n + b - 1) / b;
}

/* Refuses a resume whose run differs from the command line's. */
static int dn_tr_check_resume(const dn_tr_run *r, const dn_train_state *saved) {
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
        fprintf(stderr, "%s: %s: run was saved with %" PRIu32 " training sample%s, %s has %" PRIu32
                "; resume with the same data\n", p, f, saved->n_train, dn_plural(saved->n_train),
                r->m->defaults.data ? o->train : o->data_dir, r->train.n);
    } else if (saved->val_split != o->val_split) {
        fprintf(stderr, "%s: %s: run was saved with --val-split %g, the command line gives %g; "
                "resume with the same --val-split\n", p, f, saved->val_split, o->val_split);
    } else if (saved->batch > dn_tr_batches_per_epoch(r) || saved->seen > (int64_t)r->split.n_fit) {
        int64_t n = dn_tr_batches_per_epoch(r);
        fprintf(stderr, "%s: %s: batch cursor %" PRId64 " is beyond the epoch's %" PRId64 " %s\n", p,
                f, saved->batch, n, n == 1 ? "batch" : "batches");
    } else if (o->patience && !saved->patience) {
        fprintf(stderr, "%s: %s: run was saved without --early-stopping, so its best epoch is "
                "unknown; resume without --early-stopping\n", p, f);
    } else {
        return DN_EXIT_OK;
    }
    return DN_EXIT_INPUT;
}

/* Early stopping on resume: the command line's patience, the saved
 * best-so-far state (dropped when the command line has no --early-stopping). */
static void dn_tr_resume_early_stopping(const dn_tr_run *r, dn_train_state *st) {
    const dn_opts *o = r->o;
    if (o->patience && st->patience != o->patience)
        fprintf(stderr, "%s: warning: %s: run was saved with --early-stopping %d, continuing with "
                "--early-stopping %d\n", o->prog, o->resume, st->patience, o->patience);
    st->patience = o->patience;
    if (!o->patience) {
        st->best_epoch = st->since_best = 0;
        st->best_val_acc = 0;
    }
}

/* The schedule's lr after a resume whose --lr differs from the saved
 * run's: without a schedule the new lr; a per-epoch schedule continues
 * scaled by new / old (cosine computes from the base lr anyway). */
static void dn_tr_resume_lr(const dn_tr_run *r, const dn_train_state *saved, dn_train_state *st) {
    if (saved->adam.lr == st->adam.lr)
        return;
    double now = dn_adam_as_typed(st->adam.lr);
    if (r->m->defaults.schedule.type == DN_LRS_NONE)
        st->lrs.lr = now;
    else
        st->lrs.lr *= now / dn_adam_as_typed(saved->adam.lr);
}

/* Loads a --resume checkpoint into the run and *st. */
static int dn_tr_resume(dn_tr_run *r, dn_train_state *st) {
    char err[DN_ERR_MAX];
    dn_train_state saved;
    memset(&saved, 0, sizeof saved);
    if (dn_ckpt_load(r->m, r->o->resume, r->params, &r->ob, r->best, &saved, NULL, err) != 0) {
        fprintf(stderr, "%s: %s\n", r->o->prog, err);
        return DN_EXIT_INPUT;
    }
    int rc = dn_tr_check_resume(r, &saved);
    if (rc != DN_EXIT_OK)
        return rc;
    if (saved.adam.lr != st->adam.lr)
        fprintf(stderr, "%s: warning: %s: run was saved with --lr %g, continuing with --lr %g\n",
                r->o->prog, r->o->resume, (double)saved.adam.lr, (double)st->adam.lr);
    dn_adam adam = st->adam; /* the command line's optimizer settings win */
    dn_optim optim = st->optim;
    *st = saved;
    st->adam = adam;
    st->optim = optim;
    dn_tr_resume_lr(r, &saved, st);
    dn_tr_resume_early_stopping(r, st);
    return DN_EXIT_OK;
}

/* Sets up *st and the weights: fresh init, --init weights or --resume. */
static int dn_tr_start_state(dn_tr_run *r, dn_train_state *st) {
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
    st->optim = m->defaults.optim;
    st->optim.eps = m->defaults.eps;
    st->optim.weight_decay = m->defaults.weight_decay;
    dn_lrs_start(&m->defaults.schedule, dn_adam_as_typed(o->lr), &st->lrs);
    st->val_split = o->val_split;
    st->patience = o->patience;
    if (o->resume)
        return dn_tr_resume(r, st);
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

/* Opens the metrics file and the step log; on resume both keep what the
 * saved run had written up to its state. */
static int dn_tr_open_outputs(dn_tr_run *r, const dn_train_state *st) {
    const dn_opts *o = r->o;
    int rc = dn_metrics_open(&r->metrics, o->metrics, o->resume ? st->epoch : -1, r->m->regression,
                             o->prog);
    if (rc == DN_EXIT_OK)
        rc = dn_steplog_open(&r->steplog, o->log_steps, o->resume ? st->step : -1, o->prog);
    return rc;
}

/* ---- the loop ------------------------------------------------------------------ */

/* Saves the full training state to --save (and pushes the step log out, so
 * that it covers at least the saved steps). */
static int dn_tr_save_state(dn_tr_run *r, const dn_train_state *st) {
    char err[DN_ERR_MAX];
    dn_steplog_flush(&r->steplog);
    if (!r->o->save)
        return DN_EXIT_OK; /* under MPI: a process other than 0 */
    if (dn_ckpt_save(r->m, r->o->save, r->params, &r->ob, r->best, st, err) != 0) {
        dn_progress_clear(&r->progress);
        fprintf(stderr, "%s: %s\n", r->o->prog, err);
#ifdef DN_MPI
        dn_mpi_abort(DN_EXIT_OUTPUT); /* the others would wait for process 0 forever */
#endif
        return DN_EXIT_OUTPUT;
    }
    return DN_EXIT_OK;
}

/* Reports a non-finite loss (or, the loss being finite, gradient norm) at
 * the step about to be taken, naming the first tensor whose gradient is not
 * finite. */
static void dn_tr_report_nonfinite(dn_tr_run *r, const dn_train_state *st, double loss, double norm) {
    const dn_model *m = r->m;
    const char *bad = NULL;
    for (int t = 0; t < m->n_tensors && !bad && r->grads; t++) /* no grads: out of memory, named nothing */
        for (size_t k = 0; k < m->tensors[t].count; k++)
            if (!isfinite(r->grads[m->tensors[t].offset + k])) {
                bad = m->tensors[t].name;
                break;
            }
    fflush(stdout);
    dn_progress_clear(&r->progress);
    double bad_value = isfinite(loss) ? norm : loss;
    fprintf(stderr, "%s: step %" PRId64 ": %s is %s", r->o->prog, st->step + 1,
            isfinite(loss) ? "gradient norm" : "loss",
            isnan(bad_value) ? "nan" : bad_value > 0 ? "inf" : "-inf");
    if (bad)
        fprintf(stderr, ", gradient of '%s' is not finite", bad);
    fprintf(stderr, "; stopping%s\n", r->o->save ? " (last checkpoint kept)" : "");
}

/* The optimizer update of step t = step + 1 at learning rate lr from the
 * gradients in r->grads (clipped already). */
static void dn_tr_update(dn_tr_run *r, const dn_train_state *st, double lr) {
    const dn_model *m = r->m;
    size_t n = m->n_trainable;
    float **b = r->ob.b;
    if (st->optim.type == DN_OPTIM_SGD) {
        dn_sgd_step(&st->optim, lr, r->params, r->grads, b[0], n, st->step + 1);
    } else if (st->optim.type == DN_OPTIM_RMSPROP) {
        dn_rmsprop_step(&st->optim, lr, r->params, r->grads, b[1], b[0], b[2], n);
    } else {
        dn_adam_coef c;
        dn_adam_coefs_at(&st->adam, lr, st->step + 1, &c);
        if (m->adam_apply)
            m->adam_apply(&c, r->params, r->grads, b[0], b[1], n);
        else
            dn_adam_apply(&c, r->params, r->grads, b[0], b[1], n);
    }
}

/* Optimizer steps in the whole run: --epochs times the batches per epoch
 * (the span of a cosine schedule). */
static int64_t dn_tr_total_steps(const dn_tr_run *r) {
    return (int64_t)r->o->epochs * dn_tr_batches_per_epoch(r);
}

/* The schedule's learning rate for the step about to be taken. */
static double dn_tr_lr_now(const dn_tr_run *r, const dn_train_state *st) {
    return dn_lrs_at(&r->m->defaults.schedule, &st->lrs, dn_adam_as_typed(st->adam.lr), st->step,
                     dn_tr_total_steps(r));
}

/* Forward, backward and optimizer step t = step + 1 on batch b, at the
 * schedule's lr: fused Adam when the model provides train_step_adam and
 * nothing needs the whole gradient first (another optimizer, clipping),
 * else train_step, clipping, then the runtime's update. Returns the batch's
 * loss sum; when it (or, clipping, the gradient's norm, stored in *norm) is
 * not finite, nothing has been updated. */
static double dn_tr_train_batch(dn_tr_run *r, const dn_train_state *st, const dn_batch *b, int *correct,
                                double *norm) {
    const dn_model *m = r->m;
    const float clip = m->defaults.clip_grad_norm;
    r->lr = dn_tr_lr_now(r, st);
    *norm = 0;
    double loss;
#ifdef DN_MPI
    if (dn_mpi_size > 1) {
        /* This process's share (none for some when the batch has fewer
         * chunks than there are processes: batch norm's reductions still
         * need them in the step), then the combined sums; the update below
         * runs on every process alike. One process takes the plain path
         * (the same bits). */
        loss = m->train_step(r->params, r->grads, r->ws, b, correct);
        /* the local flag is only read: a signal caught during the exchange
         * counts at the next one, so that all processes stop after the same step */
        int sig = (int)dn_tr_signal_caught;
        dn_mpi_combine_floats(&r->shard, r->grads, m->n_trainable, r->mpi_scratch);
        dn_mpi_combine_step(&r->shard, &loss, correct, &sig);
        r->signal_agreed = sig;
    } else
#endif
    {
        if (m->train_step_adam && st->optim.type == DN_OPTIM_ADAM && !(clip > 0)) {
            dn_adam_coef c;
            dn_adam_coefs_at(&st->adam, r->lr, st->step + 1, &c);
            return m->train_step_adam(r->params, r->ob.b[0], r->ob.b[1], &c, r->ws, b, correct);
        }
        loss = m->train_step(r->params, r->grads, r->ws, b, correct);
    }
    if (!isfinite(loss))
        return loss;
    if (clip > 0) {
        *norm = dn_grad_norm(r->grads, m->n_trainable);
        if (!isfinite(*norm))
            return loss;
        dn_grad_clip(r->grads, m->n_trainable, dn_adam_as_typed(clip), *norm);
    }
    dn_tr_update(r, st, r->lr);
    return loss;
}

/* One optimizer step on batch st->batch of the epoch's order; then its
 * step-log row and the progress bar. */
static int dn_tr_step(dn_tr_run *r, dn_train_state *st) {
    const dn_model *m = r->m;
    int64_t start = st->batch * (int64_t)r->o->batch_size;
    int64_t left = (int64_t)r->split.n_fit - start;
    int rows = left < r->o->batch_size ? (int)left : r->o->batch_size;
    int lo = 0, hi = rows; /* the rows this process trains on */
#ifdef DN_MPI
    dn_shard_plan(&r->shard, rows);
    dn_shard_rows(&r->shard, rows, dn_mpi_rank, &lo, &hi);
    dn_mpi_use_shard(&r->shard);
#endif
    dn_dataset_gather(&r->train, r->perm + start + lo, hi - lo, m->defaults.norm_mean,
                      m->defaults.norm_std, r->x, r->y);
    dn_batch b = {.n = hi - lo, .x = r->x, .y = r->y, .seed = st->seed, .step = (uint64_t)st->step,
                  .row0 = lo, .n_total = rows};
    if (dn_model_targets(m)) {
        dn_data_gather_targets(&r->train, r->perm + start + lo, hi - lo, r->t);
        b.t = r->t;
    }
    int correct = 0;
    dn_gov_before_step(&r->gov);
    double norm;
    double loss = dn_tr_train_batch(r, st, &b, &correct, &norm);
    dn_gov_after_step(&r->gov);
    if (!isfinite(loss) || !isfinite(norm)) {
        if (!isfinite(loss) && !r->grads)
            r->grads = dn_alloc_aligned(m->n_params * sizeof(float));
        if (!isfinite(loss) && r->grads) { /* a fused step left no gradients to inspect; redo it plainly */
            int ignored = 0;
            m->train_step(r->params, r->grads, r->ws, &b, &ignored);
        }
        dn_tr_report_nonfinite(r, st, loss, norm);
        return DN_EXIT_FAIL;
    }
    st->step++;
    st->batch++;
    st->loss_sum += loss;
    st->correct += correct;
    st->seen += rows;
    dn_steplog_row(&r->steplog, st->step, st->epoch + 1, loss / rows, (double)correct / rows);
    dn_progress_step(&r->progress, st, r->o->epochs, dn_tr_batches_per_epoch(r));
    return DN_EXIT_OK;
}

/* Handles a caught SIGINT/SIGTERM: saves the state when --save is given.
 * Returns 128 + signal, or DN_EXIT_OUTPUT when the save failed. */
static int dn_tr_interrupted(dn_tr_run *r, const dn_train_state *st) {
    int sig = dn_tr_signal(r);
    fflush(stdout);
    dn_progress_clear(&r->progress);
    dn_steplog_flush(&r->steplog);
#ifdef DN_MPI
    if (dn_mpi_rank != 0)
        return 128 + sig; /* process 0 reports and saves */
#endif
    if (!r->o->save) {
        fprintf(stderr, "%s: interrupted at step %" PRId64 "; no --save given, state not saved\n",
                r->o->prog, st->step);
        return 128 + sig;
    }
    if (dn_tr_save_state(r, st) != DN_EXIT_OK)
        return DN_EXIT_OUTPUT;
    fprintf(stderr, "%s: interrupted at step %" PRId64 "; state saved to %s\n", r->o->prog,
            st->step, r->o->save);
    return 128 + sig;
}

/* After a step that did not end the epoch: periodic checkpoint, signals. */
static int dn_tr_after_step(dn_tr_run *r, const dn_train_state *st) {
    int64_t every = r->o->checkpoint_every;
    if (every && st->step % every == 0 && dn_tr_save_state(r, st) != DN_EXIT_OK)
        return DN_EXIT_OUTPUT;
    if (dn_tr_signal(r))
        return dn_tr_interrupted(r, st);
    return DN_EXIT_OK;
}

/* dn_tr_evaluate for regression: RMSE (in the *_acc fields), MAE, R^2. */
static void dn_tr_evaluate_regression(dn_tr_run *r, dn_epoch_row *e) {
    dn_reg_metrics q;
    e->train_acc = sqrt(e->train_loss);
    e->has_val = r->split.n_val > 0;
    if (e->has_val) {
        dn_eval_regression(r->m, r->params, r->ws, &r->train, r->split.val, r->split.n_val,
                           r->eval_batch, r->x, &q);
        e->val_loss = q.mse, e->val_acc = q.rmse, e->val_mae = q.mae, e->val_r2 = q.r2;
    }
    e->has_test = r->has_test;
    if (r->has_test) {
        dn_eval_regression(r->m, r->params, r->ws, &r->test, r->test_order, r->test.n, r->eval_batch,
                           r->x, &q);
        e->test_loss = q.mse, e->test_acc = q.rmse, e->test_mae = q.mae, e->test_r2 = q.r2;
    }
}

/* The epoch's results: training sums so far, validation and test passes. */
static void dn_tr_evaluate(dn_tr_run *r, const dn_train_state *st, double seconds, dn_epoch_row *e) {
    dn_gov_settle(&r->gov);
    memset(e, 0, sizeof *e);
    e->epoch = st->epoch + 1;
    e->step = st->step;
    e->seconds = seconds;
    e->lr = r->lr;
    e->train_loss = st->seen ? st->loss_sum / (double)st->seen : 0.0;
    e->train_acc = st->seen ? (double)st->correct / (double)st->seen : 0.0;
    if (r->m->regression) {
        dn_tr_evaluate_regression(r, e);
        return;
    }
    e->has_val = r->split.n_val > 0;
    if (e->has_val)
        dn_eval_dataset(r->m, r->params, r->ws, &r->train, r->split.val, r->split.n_val,
                        r->eval_batch, r->x, r->y, &e->val_loss, &e->val_acc);
    e->has_test = r->has_test;
    if (r->has_test)
        dn_eval_dataset(r->m, r->params, r->ws, &r->test, r->test_order, r->test.n, r->eval_batch,
                        r->x, r->y, &e->test_loss, &e->test_acc);
}

/* "epoch E: train_loss L train_acc A [val_loss L val_acc A gap G] [test_acc A] [lr R] time Ts"
 * (lr: with a schedule) */
static void dn_tr_print_epoch(const dn_tr_run *r, const dn_epoch_row *e) {
    if (r->o->quiet)
        return;
    if (r->m->regression) {
        dn_reg_print_epoch(e);
        return;
    }
    printf("epoch %" PRId64 ": train_loss %.4f train_acc %.4f", e->epoch, e->train_loss, e->train_acc);
    if (e->has_val) {
        double gap = e->train_acc - e->val_acc;
        printf(" val_loss %.4f val_acc %.4f gap %.4f", e->val_loss, e->val_acc,
               fabs(gap) < 5e-5 ? 0.0 : gap); /* no "-0.0000" */
    }
    if (e->has_test)
        printf(" test_acc %.4f", e->test_acc);
    if (r->m->defaults.schedule.type != DN_LRS_NONE)
        printf(" lr %.6g", e->lr);
    printf(" time %.3fs\n", e->seconds);
    fflush(stdout);
}

/* Evaluates, prints the epoch line and writes the metrics row. */
static int dn_tr_report_epoch(dn_tr_run *r, const dn_train_state *st, double seconds, dn_epoch_row *e) {
    dn_progress_clear(&r->progress);
    dn_tr_evaluate(r, st, seconds, e);
    dn_tr_print_epoch(r, e);
    return dn_metrics_add(&r->metrics, e, r->o->prog);
}

static int dn_tr_max_steps_reached(const dn_tr_run *r, const dn_train_state *st) {
    return r->o->max_steps && st->step >= r->o->max_steps;
}

/* The epoch's order of the trained samples: positions 0..n_fit-1, shuffled
 * by dn_shuffle(seed, epoch) unless --no-shuffle, mapped to sample indices. */
static void dn_tr_epoch_order(dn_tr_run *r, const dn_train_state *st) {
    uint32_t n = r->split.n_fit;
    if (st->shuffle)
        dn_shuffle(r->perm, n, st->seed, (uint32_t)st->epoch);
    else
        for (uint32_t i = 0; i < n; i++)
            r->perm[i] = i;
    for (uint32_t i = 0; i < n; i++)
        r->perm[i] = r->split.fit[r->perm[i]];
}

/* Runs the batches left in epoch st->epoch, reports it and, if it is
 * complete, updates early stopping and moves st to the next epoch (then
 * handles a checkpoint that fell on its last step, and signals). */
static int dn_tr_epoch(dn_tr_run *r, dn_train_state *st) {
    int64_t nb = dn_tr_batches_per_epoch(r);
    dn_tr_epoch_order(r, st);
    dn_progress_epoch(&r->progress, st);
    double t0 = dn_now_seconds();
    while (st->batch < nb && !dn_tr_max_steps_reached(r, st)) {
        int rc = dn_tr_step(r, st);
        if (rc == DN_EXIT_OK && st->batch < nb)
            rc = dn_tr_after_step(r, st);
        if (rc != DN_EXIT_OK)
            return rc;
    }
    dn_epoch_row e;
    int rc = dn_tr_report_epoch(r, st, dn_now_seconds() - t0, &e);
    if (rc != DN_EXIT_OK || st->batch < nb)
        return rc;
    if (st->patience)
        dn_es_update(st, st->epoch + 1, r->m->regression ? -e.val_acc : e.val_acc, r->params, r->best,
                     r->m->n_params); /* regression: the lowest val RMSE is best */
    const dn_lr_sched *sched = &r->m->defaults.schedule;
    /* plateau on accuracy: a regression model's val RMSE, lower is better */
    dn_lrs_epoch_end(sched, &st->lrs, sched->metric_acc ? (r->m->regression ? -e.val_acc : e.val_acc) : e.val_loss);
    st->epoch++;
    st->batch = 0;
    st->loss_sum = 0;
    st->correct = st->seen = 0;
    int64_t every = r->o->checkpoint_every;
    if (every && st->step % every == 0 && st->step > 0 && dn_tr_save_state(r, st) != DN_EXIT_OK)
        return DN_EXIT_OUTPUT;
#ifdef DN_MPI
    r->signal_agreed = dn_mpi_max_int((int)dn_tr_signal_caught); /* one caught during the evaluation too */
#endif
    return dn_tr_signal(r) ? dn_tr_interrupted(r, st) : DN_EXIT_OK;
}

/* Runs epochs until --epochs, early stopping, --max-steps, a failure or a
 * signal. */
static int dn_tr_loop(dn_tr_run *r, dn_train_state *st) {
    while (st->epoch < r->o->epochs) {
        if (dn_es_exhausted(st))
            break;
        if (dn_tr_max_steps_reached(r, st) && st->batch == 0)
            break; /* nothing of this epoch to report */
        int rc = dn_tr_epoch(r, st);
        if (rc != DN_EXIT_OK)
            return rc;
        if (dn_tr_max_steps_reached(r, st))
            break;
    }
    return DN_EXIT_OK;
}

/* Writes the weights alone to --save. */
static int dn_tr_save_weights(dn_tr_run *r) {
    char err[DN_ERR_MAX];
    if (dn_ckpt_save(r->m, r->o->save, r->params, NULL, NULL, NULL, err) != 0) {
        fprintf(stderr, "%s: %s\n", r->o->prog, err);
        return DN_EXIT_OUTPUT;
    }
    return DN_EXIT_OK;
}

/* Final save: the full state with --checkpoint-every, else the weights. */
static int dn_tr_save_final(dn_tr_run *r, const dn_train_state *st) {
    if (!r->o->save)
        return DN_EXIT_OK;
    if (r->o->checkpoint_every)
        return dn_tr_save_state(r, st);
    return dn_tr_save_weights(r);
}

/* Early stopping at the end of a finished run (stopped by it, or all
 * epochs done; not a --max-steps pause): puts the best epoch's weights back
 * into params, says so and evaluates them on the test set. Returns 1 when it
 * restored. */
static int dn_tr_restore_best(dn_tr_run *r, const dn_train_state *st) {
    if (!st->patience || st->best_epoch == 0 || !(dn_es_exhausted(st) || st->epoch >= r->o->epochs))
        return 0;
    memcpy(r->params, r->best, r->m->n_params * sizeof *r->params);
    if (r->o->quiet)
        return 1;
    if (dn_es_exhausted(st))
        printf("early stopping: no %s improvement for %" PRId64 " epoch%s;",
               r->m->regression ? "val_rmse" : "val_acc", st->since_best, dn_plural(st->since_best));
    else
        printf("early stopping: not triggered in %" PRId64 " epoch%s;", st->epoch, dn_plural(st->epoch));
    printf(" restored epoch %" PRId64 " (%s %.4f)\n", st->best_epoch,
           r->m->regression ? "val_rmse" : "val_acc", r->m->regression ? -st->best_val_acc : st->best_val_acc);
    if (r->has_test) {
        double loss, acc;
        dn_eval_dataset(r->m, r->params, r->ws, &r->test, r->test_order, r->test.n, r->eval_batch,
                        r->x, r->y, &loss, &acc);
        printf("restored weights: test_loss %.4f test_%s %.4f\n", loss, r->m->regression ? "rmse" : "acc", acc);
    }
    fflush(stdout);
    return 1;
}

/* The end of a run that did not fail: the best weights (weights only) when
 * early stopping restored them, else the usual final save. */
static int dn_tr_finish(dn_tr_run *r, const dn_train_state *st) {
    if (dn_tr_restore_best(r, st))
        return r->o->save ? dn_tr_save_weights(r) : DN_EXIT_OK;
    return dn_tr_save_final(r, st);
}

static void dn_tr_print_header(const dn_tr_run *r, int threads) {
    if (r->o->quiet)
        return;
    printf("training %s: %zu parameters, %" PRIu32 " train / ", r->m->name, dn_model_param_count(r->m),
           r->split.n_fit);
    if (r->split.n_val)
        printf("%" PRIu32 " val / ", r->split.n_val);
    printf("%" PRIu32 " test samples, batch %d, %d epoch%s, seed %" PRIu64 ", %d thread%s\n",
           r->has_test ? r->test.n : 0, r->o->batch_size, r->o->epochs, dn_plural(r->o->epochs),
           r->o->seed, threads, dn_plural(threads));
    fflush(stdout);
}

int dn_cmd_train(const dn_model *m, const dn_opts *o) {
#ifdef DN_MPI
    /* Process 0 alone prints and writes files; the others read the same
     * inputs (--resume, --init) and train on their shares. */
    dn_opts quiet_opts;
    if (dn_mpi_rank != 0) {
        quiet_opts = *o;
        quiet_opts.save = quiet_opts.metrics = quiet_opts.log_steps = NULL;
        quiet_opts.quiet = 1;
        o = &quiet_opts;
    }
#endif
    dn_tr_run r;
    memset(&r, 0, sizeof r);
    r.m = m;
    r.o = o;
    dn_train_state st;
    int threads = dn_apply_threads(o->threads);
    dn_gov_init(&r.gov, o->threads, threads);
    dn_progress_init(&r.progress, !o->quiet && isatty(STDERR_FILENO));
    int rc = dn_tr_load_data(&r);
    if (rc == DN_EXIT_OK)
        rc = dn_tr_make_split(&r);
    if (rc == DN_EXIT_OK)
        rc = dn_tr_alloc(&r);
    if (rc == DN_EXIT_OK)
        rc = dn_tr_start_state(&r, &st);
    if (rc == DN_EXIT_OK)
        r.lr = dn_tr_lr_now(&r, &st);
    if (rc == DN_EXIT_OK)
        rc = dn_tr_open_outputs(&r, &st);
#ifdef DN_MPI
    if (dn_mpi_max_int(rc) != DN_EXIT_OK) /* one process could not start: all stop, none waits */
        dn_mpi_abort(rc != DN_EXIT_OK ? rc : DN_EXIT_FAIL);
#endif
    if (rc == DN_EXIT_OK) {
        dn_tr_print_header(&r, threads);
        dn_tr_signals sigs;
        dn_tr_signals_install(&sigs);
        rc = dn_tr_loop(&r, &st);
        if (rc == DN_EXIT_OK)
            rc = dn_tr_finish(&r, &st);
        dn_tr_signals_restore(&sigs);
    }
    int log_rc = dn_steplog_close(&r.steplog, o->prog);
    if (rc == DN_EXIT_OK)
        rc = log_rc;
    dn_tr_free(&r);
    return rc;
}

/* ---- entry point ------------------------------------------------------------- */

#ifdef DN_MPI
int dn_main_mpi(const dn_model *m, int argc, char **argv) {
    dn_mpi_start(&argc, &argv);
    if (dn_mpi_size > 1)
        dn_batch_reduce = dn_mpi_reduce_doubles;
    if (dn_mpi_rank != 0 && !freopen("/dev/null", "w", stdout)) {
        fprintf(stderr, "process %d: cannot silence standard output\n", dn_mpi_rank);
        dn_mpi_abort(DN_EXIT_OUTPUT);
    }
    int rc = dn_main(m, argc, argv);
    dn_mpi_stop();
    return rc;
}
#endif

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
