/* dn_train.h - declarations shared by the trainer driver files
 * (dn_args.c, dn_checkpoint.c, dn_eval.c, dn_split.c, dn_report.c, dn_train.c).
 *
 * Not part of the public runtime API (that is dn_runtime.h): these are the
 * driver's cross-file helpers. `dngen --standalone` pastes this header right
 * after dn_runtime.h, so it relies on dn_runtime.h's declarations and adds
 * only names with the dn_ prefix that generated code does not use.
 */
#ifndef DN_TRAIN_H
#define DN_TRAIN_H

#include "dn_runtime.h"

#include <stdint.h>
#include <stdio.h>

/* Process exit statuses of dn_main (documented in `--help`). */
enum {
    DN_EXIT_OK = 0,     /* success */
    DN_EXIT_FAIL = 1,   /* training diverged (NaN/Inf) or gradcheck failed */
    DN_EXIT_USAGE = 2,  /* bad command line */
    DN_EXIT_INPUT = 3,  /* unreadable or invalid data, weights or checkpoint */
    DN_EXIT_OUTPUT = 4  /* a checkpoint, metrics or stdout write failed */
};

/* Rows per eval batch unless `eval --batch-size` says otherwise (the seed
 * article's test loader uses 1000; 256 keeps the trainer's peak memory under
 * 64 MB on Fashion-MNIST); training evaluates in batches of max(this, B). */
#define DN_EVAL_BATCH 256

/* Most bytes of work space evaluation takes for its batches, unless the
 * training batch already needs more: a conv net's activations per row are
 * large (specs/cnn.yaml: 0.64 MiB), and 256 of them would be 164 MiB. */
#define DN_EVAL_WS_MAX ((size_t)32 << 20)

/* Rows per eval batch: max(DN_EVAL_BATCH, at_least), halved (not below
 * at_least) while its work space passes DN_EVAL_WS_MAX and at_least rows'.
 * The evaluation's results do not depend on it beyond the rounding of the
 * loss's sum. */
int dn_eval_rows(const dn_model *m, int at_least);
/* The same rule on any measure of the work space (bytes for `rows` rows):
 * `dngen summary` applies it to the plan's counts. */
int dn_eval_rows_by(size_t (*ws_bytes)(int rows, const void *ctx), const void *ctx, int at_least);

/* ---- command line (dn_args.c) --------------------------------------------- */

typedef enum {
    DN_CMD_NONE,      /* no command given */
    DN_CMD_TRAIN,
    DN_CMD_EVAL,
    DN_CMD_GRADCHECK,
    DN_CMD_HELP,      /* PROG --help */
    DN_CMD_VERSION    /* PROG --version */
} dn_cmd;

/* Parsed options; fields a command does not take keep their defaults. */
typedef struct {
    const char *prog;          /* basename of argv[0], for messages */
    dn_cmd cmd;
    int help;                  /* `PROG CMD --help` */
    const char *data_dir;
    const char *train, *train_y;  /* CSV/NPY data: files (defaults from the spec) */
    const char *test, *test_y;    /* NULL: the spec's test_split, if any */
    int epochs;
    int batch_size;
    int batch_size_given;      /* eval: --batch-size was given */
    float lr;
    uint64_t seed;
    int threads;               /* 0: leave the OpenMP default */
    const char *save;          /* NULL: no checkpoint */
    const char *init;
    const char *metrics;
    const char *resume;
    const char *weights;       /* eval */
    int shuffle;               /* 0 with --no-shuffle */
    int64_t max_steps;         /* 0: no limit */
    int64_t checkpoint_every;  /* 0: no periodic checkpoints */
    int quiet;
    int samples;               /* gradcheck coordinates per tensor */
    double val_split;          /* --val-split F in [0, 1): held-out fraction */
    int patience;              /* --early-stopping P; 0: off */
    const char *log_steps;     /* --log-steps FILE: one CSV row per step */
    int mc;                    /* eval --mc N: MC dropout passes; 0: plain eval */
    uint64_t mc_seed;          /* eval --mc-seed S */
    int mc_seed_given;
} dn_opts;

/* Fills *o from argv, defaults from m->defaults. Returns DN_EXIT_OK, or
 * DN_EXIT_USAGE after printing one line "PROG: ..." on stderr. */
int dn_opts_parse(const dn_model *m, int argc, char **argv, dn_opts *o);

/* Prints the help text for `cmd` (DN_CMD_HELP/NONE: the overview) to out. */
void dn_print_help(const dn_model *m, const char *prog, dn_cmd cmd, FILE *out);

/* Prints "<name> (dngen <version>, spec <path> <hash>)" to out. */
void dn_print_version(const dn_model *m, FILE *out);

/* ---- training state and checkpoints (dn_checkpoint.c) --------------------- */

/* Everything besides weights and Adam moments that a resumed run needs to
 * continue exactly where the saved run stood. */
typedef struct {
    int64_t step;       /* optimizer steps done since the run started */
    int64_t epoch;      /* 0-based epoch in progress */
    int64_t batch;      /* batches of that epoch already done */
    uint64_t seed;
    int batch_size;
    int shuffle;        /* 0/1 */
    uint32_t n_train;   /* training samples the run uses */
    double loss_sum;    /* sums over the epoch's batches done so far */
    int64_t correct;
    int64_t seen;
    dn_adam adam;       /* Adam's settings; adam.lr is the base lr of every optimizer */
    dn_optim optim;     /* optim.type and, for SGD and RMSprop, their settings */
    dn_lr_state lrs;    /* the schedule's position (lrs.lr: the lr without a schedule) */
    double val_split;   /* held-out fraction of the training set (0: none) */
    /* Early stopping, tracked when patience > 0: */
    int patience;       /* epochs without a val_acc improvement that stop the run */
    int64_t best_epoch; /* 1-based epoch with the best val_acc so far; 0: none yet */
    double best_val_acc;
    int64_t since_best; /* complete epochs since best_epoch */
} dn_train_state;

/* The optimizer's state buffers, each n_params floats laid out like the
 * parameters: Adam's exp_avg and exp_avg_sq (b[0], b[1]); SGD's
 * momentum_buffer (b[0]); RMSprop's momentum_buffer, square_avg and
 * grad_avg (b[0], b[1], b[2]). Buffers an optimizer does not use may be NULL. */
#define DN_OPT_BUFS 3
typedef struct {
    float *b[DN_OPT_BUFS];
} dn_opt_bufs;

/* PyTorch's name of state buffer `slot` of the optimizer st describes
 * ("exp_avg", "momentum_buffer", ...), or NULL when it keeps none there
 * (SGD without momentum, RMSprop without momentum or centering). */
const char *dn_ckpt_opt_buf_name(const dn_train_state *st, int slot);

/* Writes a checkpoint atomically: the weights under m->tensors' names and
 * shapes; when st != NULL also the optimizer's state buffers in use (ob, as
 * optimizer.<buffer name>.<tensor name>) and the state as metadata, and,
 * when st->patience > 0, the early-stopping state with the best epoch's
 * weights (best) as tensors best.<name>. Returns 0 or -1 with err set. */
int dn_ckpt_save(const dn_model *m, const char *path, const float *params, const dn_opt_bufs *ob,
                 const float *best, const dn_train_state *st, char *err);

/* Loads weights into params (n_params floats). Every model tensor must be
 * present as F32 with its exact shape; tensors that are neither model tensors
 * nor optimizer.* / best.* are an error. With ob != NULL this is a resume:
 * *st and the optimizer's buffers (those the saved optimizer uses) are
 * loaded too (st->patience > 0 when the file holds early-stopping state;
 * then its best.* tensors go into best unless it is NULL), and a different
 * spec hash is an error. Otherwise a different spec hash only writes a
 * warning line into warn (DN_ERR_MAX bytes; "" when none). Returns 0 or -1
 * with err set. */
int dn_ckpt_load(const dn_model *m, const char *path, float *params, const dn_opt_bufs *ob,
                 float *best, dn_train_state *st, char *warn, char *err);

/* ---- CSV and NPY data (dn_dataset.c) --------------------------------------- */

/* Loads m->defaults.data's files (o->train etc.): the train set into
 * *train and the test set (a test file, or the seeded test split) into
 * *test, either may be NULL; *has_test says whether there is a test set.
 * Checks features against the input, labels or targets against the
 * outputs. Returns 0, or -1 with err set. */
int dn_data_load(const dn_model *m, const dn_opts *o, dn_dataset *train, dn_dataset *test,
                 int *has_test, char *err);

/* ---- validation split and early stopping (dn_split.c) ---------------------- */

/* The training set divided into the samples trained on and the held-out
 * validation samples, both in increasing index order. */
typedef struct {
    uint32_t n_fit, n_val;
    uint32_t *fit;      /* n_fit sample indices */
    uint32_t *val;      /* n_val sample indices */
} dn_split;

/* Samples held out for fraction frac of n: round(frac * n). */
uint32_t dn_split_count(uint32_t n, double frac);

/* The split permutation of 0..n-1: Fisher-Yates as dn_shuffle, on the
 * DN_RNG_SPLIT stream (a = b = c = 0, i = position). */
void dn_split_perm(uint32_t *perm, uint32_t n, uint64_t seed);

/* Splits n samples: the first dn_split_count(n, frac) entries of
 * dn_split_perm are validation, the rest are trained on. Returns 0, or -1
 * when out of memory. */
int dn_split_make(uint32_t n, double frac, uint64_t seed, dn_split *s);
void dn_split_free(dn_split *s);

/* Early-stopping bookkeeping after complete epoch `epoch` (1-based) with
 * validation accuracy val_acc: on a strict improvement (or the first epoch)
 * it becomes the best and params (n floats) are copied into best; otherwise
 * since_best grows. Returns dn_es_exhausted(st). */
int dn_es_update(dn_train_state *st, int64_t epoch, double val_acc, const float *params,
                 float *best, size_t n);

/* True when early stopping is on and patience epochs passed without improvement. */
int dn_es_exhausted(const dn_train_state *st);

/* ---- metrics file, step log, progress bar (dn_report.c) -------------------- */

/* One epoch's results (a partial epoch when --max-steps ends it). */
typedef struct {
    int64_t epoch, step;        /* 1-based epoch; optimizer steps done */
    double train_loss, train_acc, test_loss, test_acc, seconds, val_loss, val_acc;
    int has_test, has_val;
    double lr;                  /* the learning rate of the epoch's last step */
    /* regression models: *_acc hold RMSE, and these MAE and R^2 */
    double val_mae, val_r2, test_mae, test_r2;
} dn_epoch_row;

/* The --metrics file, kept in memory and rewritten atomically per epoch:
 * CSV, or JSON Lines when the name ends in ".jsonl". */
typedef struct {
    const char *path;           /* NULL: no metrics file */
    int jsonl;
    int regression;             /* RMSE, MAE and R^2 columns (dn_epoch_row) instead of accuracy */
    char *buf;
    size_t len, cap;
} dn_metrics;

/* Starts the metrics text for path (NULL: none). keep_epochs >= 0 (resume):
 * rows of an existing file for epochs 1..keep_epochs are kept. Returns
 * DN_EXIT_OK or DN_EXIT_FAIL (out of memory, message printed). */
int dn_metrics_open(dn_metrics *mt, const char *path, int64_t keep_epochs, int regression,
                    const char *prog);

/* Appends the epoch's row and rewrites the file. Returns a DN_EXIT_* status. */
int dn_metrics_add(dn_metrics *mt, const dn_epoch_row *e, const char *prog);
void dn_metrics_free(dn_metrics *mt);

/* The --log-steps file: "step,epoch,loss,acc", one row per optimizer step,
 * through a buffered FILE. */
typedef struct {
    FILE *f;                    /* NULL: no step log */
    const char *path;
} dn_steplog;

/* Opens path (NULL: none). keep_steps >= 0 (resume): an existing log is
 * kept up to the row of step keep_steps and continued; else it is
 * truncated. Returns DN_EXIT_OK or DN_EXIT_OUTPUT (message printed). */
int dn_steplog_open(dn_steplog *l, const char *path, int64_t keep_steps, const char *prog);

/* One row: step (1-based), epoch (1-based), batch mean loss and accuracy. */
void dn_steplog_row(dn_steplog *l, int64_t step, int64_t epoch, double loss, double acc);

/* Pushes buffered rows to the file (at checkpoints and signals). */
void dn_steplog_flush(dn_steplog *l);

/* Flushes and closes. Returns DN_EXIT_OK or DN_EXIT_OUTPUT (message printed). */
int dn_steplog_close(dn_steplog *l, const char *prog);

/* A one-line progress bar on stderr, redrawn at most 10 times a second. */
typedef struct {
    int on;                     /* stderr is a terminal and not --quiet */
    double t0, last;            /* start of this epoch (in this process), last redraw */
    int64_t batch0, seen0;      /* st->batch and st->seen at t0 */
    int drawn;                  /* characters on screen */
} dn_progress;

/* on: whether to draw at all. */
void dn_progress_init(dn_progress *p, int on);

/* Marks the start (or resumed start) of an epoch. */
void dn_progress_epoch(dn_progress *p, const dn_train_state *st);

/* After a step: redraws when 0.1 s have passed since the last redraw. */
void dn_progress_step(dn_progress *p, const dn_train_state *st, int epochs, int64_t batches);

/* Erases the bar (before anything else is printed). */
void dn_progress_clear(dn_progress *p);

/* "s" after a count n other than 1, "" after 1: "%d epoch%s", n, dn_plural(n). */
const char *dn_plural(int64_t n);

/* ---- shared helpers (dn_eval.c) -------------------------------------------- */

/* 64-byte-aligned, zeroed block of at least `bytes` bytes (free with free());
 * NULL on failure or overflow. */
void *dn_alloc_aligned(size_t bytes);

/* Seconds on a monotonic clock. */
double dn_now_seconds(void);

/* The team size of the training steps while they run (dn_threads.c):
 * fixed with --threads, else chosen between the OpenMP default and 1 by
 * timing both, since results do not depend on it. */
typedef struct {
    int adaptive;           /* 0: the count stays as --threads or OpenMP set it */
    int in_use, other;      /* the count of most steps, and the one probed */
    int running;            /* the count omp_set_num_threads last set */
    int ratio;              /* a round runs in_use for ratio x the probe's time */
    double probe_s;         /* a probe's least duration */
    double probe_t, use_t;  /* this round's seconds of steps: probing, in use */
    int probe_n, use_n;     /* ... and their steps */
    int wins;               /* rounds in a row the probe was clearly faster */
    int quick, trace;       /* DN_GOV_QUICK (tests), DN_THREADS_TRACE */
    double t0;
} dn_governor;

/* fixed: --threads (0: none given); most: the threads regions use now. */
void dn_gov_init(dn_governor *g, int fixed, int most);
/* Around each training step: sets its team size, then times it. */
void dn_gov_before_step(dn_governor *g);
void dn_gov_after_step(dn_governor *g);
/* Before work that is not a step (eval): the count in use. */
void dn_gov_settle(dn_governor *g);

/* Applies --threads (no-op without OpenMP or when threads == 0) and returns
 * the number of threads parallel regions will use. */
int dn_apply_threads(int threads);

/* Eval-mode pass over the n samples order[0..n) of ds in batches of up to
 * `batch` rows, through buffers x [batch * n_inputs], y [batch] and ws
 * (workspace_size(>= batch) bytes). Stores the mean per-row loss and the
 * accuracy. */
void dn_eval_dataset(const dn_model *m, const float *params, void *ws, const dn_dataset *ds,
                     const uint32_t *order, uint32_t n, int batch, float *x, int32_t *y,
                     double *loss, double *acc);

/* malloc'd array 0, 1, ..., n-1 (NULL when out of memory). */
uint32_t *dn_identity_order(uint32_t n);

/* Commands. Each returns a DN_EXIT_* status. */
int dn_cmd_train(const dn_model *m, const dn_opts *o);
int dn_cmd_eval(const dn_model *m, const dn_opts *o);
int dn_cmd_gradcheck(const dn_model *m, const dn_opts *o);

/* ---- regression reports (dn_regress.c) ------------------------------------- */

typedef struct {
    double mse, rmse, mae, r2;
} dn_reg_metrics;

/* Evaluates rows order[0..n) of ds (table data with targets) in batches of
 * `batch` through x [batch, n_inputs]: the mean loss (mse) and the RMSE,
 * MAE and R^2 of the outputs. Returns 0, or -1 (all NaN) when out of
 * memory or n == 0. */
int dn_eval_regression(const dn_model *m, const float *params, void *ws, const dn_dataset *ds,
                       const uint32_t *order, uint32_t n, int batch, float *x, dn_reg_metrics *q);

/* "epoch E: train_loss L train_rmse R [val_loss L val_rmse R val_mae M
 * val_r2 Q] [test_rmse R test_mae M test_r2 Q] time Ts" */
void dn_reg_print_epoch(const dn_epoch_row *e);

#endif
