/* dn_train.h - declarations shared by the trainer driver files
 * (dn_args.c, dn_checkpoint.c, dn_eval.c, dn_train.c).
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

/* Rows per eval batch unless `eval --batch-size` says otherwise (as the seed
 * article's test loader); training evaluates in batches of max(this, B). */
#define DN_EVAL_BATCH 1000

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
    dn_adam adam;
} dn_train_state;

/* Writes a checkpoint atomically: the weights under m->tensors' names and
 * shapes; when st != NULL also the Adam moments (exp_avg, exp_avg_sq, each
 * n_params floats) and the state as metadata. Returns 0 or -1 with err set. */
int dn_ckpt_save(const dn_model *m, const char *path, const float *params, const float *exp_avg,
                 const float *exp_avg_sq, const dn_train_state *st, char *err);

/* Loads weights into params (n_params floats). Every model tensor must be
 * present as F32 with its exact shape; tensors that are neither model tensors
 * nor optimizer.* are an error. With exp_avg != NULL this is a resume: the
 * moments and *st are loaded too, and a different spec hash is an error.
 * Otherwise a different spec hash only writes a warning line into warn
 * (DN_ERR_MAX bytes; "" when none). Returns 0 or -1 with err set. */
int dn_ckpt_load(const dn_model *m, const char *path, float *params, float *exp_avg,
                 float *exp_avg_sq, dn_train_state *st, char *warn, char *err);

/* ---- shared helpers (dn_eval.c) -------------------------------------------- */

/* 64-byte-aligned, zeroed block of at least `bytes` bytes (free with free());
 * NULL on failure or overflow. */
void *dn_alloc_aligned(size_t bytes);

/* Seconds on a monotonic clock. */
double dn_now_seconds(void);

/* Applies --threads (no-op without OpenMP or when threads == 0) and returns
 * the number of threads parallel regions will use. */
int dn_apply_threads(int threads);

/* Eval-mode pass over ds (rows in `order`, ds->n entries) in batches of up
 * to `batch` rows, through buffers x [batch * n_inputs], y [batch] and ws
 * (workspace_size(>= batch) bytes). Stores the mean per-row loss and the
 * accuracy. */
void dn_eval_dataset(const dn_model *m, const float *params, void *ws, const dn_dataset *ds,
                     const uint32_t *order, int batch, float *x, int32_t *y, double *loss,
                     double *acc);

/* malloc'd array 0, 1, ..., n-1 (NULL when out of memory). */
uint32_t *dn_identity_order(uint32_t n);

/* Commands. Each returns a DN_EXIT_* status. */
int dn_cmd_train(const dn_model *m, const dn_opts *o);
int dn_cmd_eval(const dn_model *m, const dn_opts *o);
int dn_cmd_gradcheck(const dn_model *m, const dn_opts *o);

#endif
