/* dn_args.c - the trainer's command line: option table, strict number
 * parsing, help and version text. */
#include "dn_runtime.h"
#include "dn_train.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    DN_AR_INT,      /* int in [lo, hi] */
    DN_AR_I64,      /* int64_t in [lo, hi] */
    DN_AR_U64,      /* any uint64_t */
    DN_AR_POSREAL,  /* finite float > 0 */
    DN_AR_FRACTION, /* double in [0, 1) */
    DN_AR_STR,      /* non-empty string */
    DN_AR_FLAG      /* no value; stores (int)lo */
} dn_ar_kind;

#define DN_AR_TRAIN (1u << DN_CMD_TRAIN)
#define DN_AR_EVAL (1u << DN_CMD_EVAL)
#define DN_AR_GRAD (1u << DN_CMD_GRADCHECK)

typedef struct {
    const char *name;   /* "--epochs" */
    dn_ar_kind kind;
    unsigned cmds;      /* commands that take it (AR_* mask) */
    size_t offset;      /* field in dn_opts */
    int64_t lo, hi;     /* integer range (DN_AR_INT, DN_AR_I64); value for DN_AR_FLAG */
    const char *metavar;
    const char *help;
} dn_ar_option;

#define DN_AR_OFF(field) offsetof(dn_opts, field)

static const dn_ar_option dn_ar_options[] = {
    {"--data", DN_AR_STR, DN_AR_TRAIN | DN_AR_EVAL, DN_AR_OFF(data_dir), 0, 0, "DIR",
     "directory with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]"},
    {"--train", DN_AR_STR, DN_AR_TRAIN | DN_AR_EVAL, DN_AR_OFF(train), 0, 0, "FILE",
     "CSV or NPY data: the training file (npy: its features)"},
    {"--train-y", DN_AR_STR, DN_AR_TRAIN | DN_AR_EVAL, DN_AR_OFF(train_y), 0, 0, "FILE",
     "NPY data: the training targets"},
    {"--test", DN_AR_STR, DN_AR_TRAIN | DN_AR_EVAL, DN_AR_OFF(test), 0, 0, "FILE",
     "CSV or NPY data: the test file (instead of the spec's test or test_split)"},
    {"--test-y", DN_AR_STR, DN_AR_TRAIN | DN_AR_EVAL, DN_AR_OFF(test_y), 0, 0, "FILE",
     "NPY data: the test targets"},
    {"--epochs", DN_AR_INT, DN_AR_TRAIN, DN_AR_OFF(epochs), 1, INT32_MAX, "N", "epochs to train"},
    {"--batch-size", DN_AR_INT, DN_AR_TRAIN | DN_AR_EVAL, DN_AR_OFF(batch_size), 1, 1 << 20, "N",
     "rows per batch"},
    {"--lr", DN_AR_POSREAL, DN_AR_TRAIN, DN_AR_OFF(lr), 0, 0, "X",
     "learning rate (a schedule's starting lr)"},
    {"--seed", DN_AR_U64, DN_AR_TRAIN | DN_AR_GRAD, DN_AR_OFF(seed), 0, 0, "N",
     "seed of init, shuffling and dropout"},
    {"--threads", DN_AR_INT, DN_AR_TRAIN | DN_AR_EVAL, DN_AR_OFF(threads), 1, 1024, "N",
     "OpenMP threads (results do not depend on it; default: adaptive)"},
    {"--save", DN_AR_STR, DN_AR_TRAIN, DN_AR_OFF(save), 0, 0, "FILE",
     "write weights (.safetensors) at the end, or checkpoints"},
    {"--init", DN_AR_STR, DN_AR_TRAIN, DN_AR_OFF(init), 0, 0, "FILE", "start from these weights"},
    {"--metrics", DN_AR_STR, DN_AR_TRAIN, DN_AR_OFF(metrics), 0, 0, "FILE",
     "write per-epoch metrics as CSV, or JSON Lines if FILE ends in .jsonl (rewritten each epoch)"},
    {"--val-split", DN_AR_FRACTION, DN_AR_TRAIN, DN_AR_OFF(val_split), 0, 0, "F",
     "hold out round(F*n) training samples (chosen by --seed) for validation, 0 <= F < 1"},
    {"--early-stopping", DN_AR_INT, DN_AR_TRAIN, DN_AR_OFF(patience), 1, INT32_MAX, "P",
     "stop after P epochs without a val_acc improvement, then keep the best epoch's weights"},
    {"--log-steps", DN_AR_STR, DN_AR_TRAIN, DN_AR_OFF(log_steps), 0, 0, "FILE",
     "write step,epoch,loss,acc of every optimizer step as CSV"},
    {"--no-shuffle", DN_AR_FLAG, DN_AR_TRAIN, DN_AR_OFF(shuffle), 0, 0, NULL,
     "visit training samples in file order"},
    {"--max-steps", DN_AR_I64, DN_AR_TRAIN, DN_AR_OFF(max_steps), 1, INT64_MAX, "N",
     "stop after N optimizer steps in total"},
    {"--checkpoint-every", DN_AR_I64, DN_AR_TRAIN, DN_AR_OFF(checkpoint_every), 1, INT64_MAX, "N",
     "save the full training state to --save every N steps and at the end"},
    {"--resume", DN_AR_STR, DN_AR_TRAIN, DN_AR_OFF(resume), 0, 0, "CKPT",
     "continue the run saved in CKPT (same --batch-size, --seed, shuffling, --val-split)"},
    {"--quiet", DN_AR_FLAG, DN_AR_TRAIN, DN_AR_OFF(quiet), 1, 0, NULL, "print nothing on stdout"},
    {"--weights", DN_AR_STR, DN_AR_EVAL, DN_AR_OFF(weights), 0, 0, "FILE",
     "weights to evaluate (required)"},
    {"--mc", DN_AR_INT, DN_AR_EVAL, DN_AR_OFF(mc), 1, 100000, "N",
     "MC dropout: average the probabilities of N passes with dropout on"},
    {"--mc-seed", DN_AR_U64, DN_AR_EVAL, DN_AR_OFF(mc_seed), 0, 0, "S", "seed of the MC dropout masks (needs --mc)"},
    {"--samples", DN_AR_INT, DN_AR_GRAD, DN_AR_OFF(samples), 1, 1000000, "K",
     "coordinates checked per tensor"},
};

#define DN_AR_N_OPTIONS (sizeof dn_ar_options / sizeof dn_ar_options[0])

static const char *const dn_ar_cmd_names[] = {"", "train", "eval", "gradcheck", "", ""};

/* Fills the defaults every command starts from. */
static void dn_ar_set_defaults(const dn_model *m, const char *prog, dn_opts *o) {
    memset(o, 0, sizeof *o);
    o->prog = prog;
    o->data_dir = m->defaults.data_dir ? m->defaults.data_dir : "data";
    if (m->defaults.data) {
        o->train = m->defaults.data->train;
        o->train_y = m->defaults.data->train_y;
        o->test = m->defaults.data->test;
        o->test_y = m->defaults.data->test_y;
    }
    o->epochs = m->defaults.epochs;
    o->batch_size = m->defaults.batch_size;
    o->lr = m->defaults.lr;
    o->seed = m->defaults.seed;
    o->shuffle = 1;
    o->samples = 20;
}

/* Basename of argv[0] ("trainer" when absent). */
static const char *dn_ar_prog_name(int argc, char **argv) {
    if (argc < 1 || !argv[0] || !argv[0][0])
        return "trainer";
    const char *slash = strrchr(argv[0], '/');
    return slash && slash[1] ? slash + 1 : argv[0];
}

/* Parses all of s as a number in [0, 1). */
static int dn_ar_parse_fraction(const char *s, double *v) {
    if (!(isdigit((unsigned char)s[0]) || s[0] == '.' || s[0] == '+'))
        return -1;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !(x >= 0 && x < 1))
        return -1;
    *v = x;
    return 0;
}

/* Parses all of s as a finite float > 0. */
static int dn_ar_parse_posreal(const char *s, float *v) {
    if (!(isdigit((unsigned char)s[0]) || s[0] == '.' || s[0] == '+'))
        return -1;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(x) || x <= 0 || x > FLT_MAX || (float)x <= 0)
        return -1;
    *v = (float)x;
    return 0;
}

/* Prints "PROG: NAME: expected ..., got 'VAL'" for a value of option op. */
static void dn_ar_bad_value(const dn_opts *o, const dn_ar_option *op, const char *val) {
    char want[96];
    switch (op->kind) {
    case DN_AR_INT:
    case DN_AR_I64:
        if (op->hi >= INT32_MAX)
            snprintf(want, sizeof want, "an integer >= %" PRId64, op->lo);
        else
            snprintf(want, sizeof want, "an integer in [%" PRId64 ", %" PRId64 "]", op->lo, op->hi);
        break;
    case DN_AR_U64:
        snprintf(want, sizeof want, "an integer in [0, %" PRIu64 "]", UINT64_MAX);
        break;
    case DN_AR_POSREAL:
        snprintf(want, sizeof want, "a number > 0");
        break;
    case DN_AR_FRACTION:
        snprintf(want, sizeof want, "a number in [0, 1)");
        break;
    default:
        snprintf(want, sizeof want, "a non-empty value");
        break;
    }
    fprintf(stderr, "%s: %s: expected %s, got '%s'\n", o->prog, op->name, want, val);
}

/* Stores val into the field of op. Returns 0, or -1 if val is invalid. */
static int dn_ar_store(dn_opts *o, const dn_ar_option *op, const char *val) {
    char *field = (char *)o + op->offset;
    int64_t i;
    switch (op->kind) {
    case DN_AR_INT:
    case DN_AR_I64:
        if (dn_parse_i64(val, &i) != 0 || i < op->lo || i > op->hi)
            return -1;
        if (op->kind == DN_AR_INT)
            *(int *)(void *)field = (int)i;
        else
            *(int64_t *)(void *)field = i;
        return 0;
    case DN_AR_U64:
        return dn_parse_u64(val, (uint64_t *)(void *)field);
    case DN_AR_POSREAL:
        return dn_ar_parse_posreal(val, (float *)(void *)field);
    case DN_AR_FRACTION:
        return dn_ar_parse_fraction(val, (double *)(void *)field);
    case DN_AR_STR:
        if (!val[0])
            return -1;
        *(const char **)(void *)field = val;
        return 0;
    case DN_AR_FLAG:
        *(int *)(void *)field = (int)op->lo;
        return 0;
    }
    return -1;
}

/* Finds option `name` (the part before any '='), or NULL. */
static const dn_ar_option *dn_ar_find(const char *name, size_t len) {
    for (size_t k = 0; k < DN_AR_N_OPTIONS; k++)
        if (strlen(dn_ar_options[k].name) == len && strncmp(dn_ar_options[k].name, name, len) == 0)
            return &dn_ar_options[k];
    return NULL;
}

/* Whether option op applies to model m's data: --data to IDX files,
 * --train and --test to CSV and NPY files, --train-y and --test-y to NPY. */
static int dn_ar_applies(const dn_model *m, const dn_ar_option *op) {
    const dn_data_spec *d = m->defaults.data;
    if (op->offset == DN_AR_OFF(data_dir))
        return d == NULL;
    if (op->offset == DN_AR_OFF(train) || op->offset == DN_AR_OFF(test))
        return d != NULL;
    if (op->offset == DN_AR_OFF(train_y) || op->offset == DN_AR_OFF(test_y))
        return d != NULL && d->format == DN_DATA_NPY;
    return 1;
}

/* Parses argv[2..] for command o->cmd: "--opt VAL", "--opt=VAL", flags and
 * --help. Returns DN_EXIT_OK or DN_EXIT_USAGE (message printed). */
static int dn_ar_parse_command_args(const dn_model *m, int argc, char **argv, dn_opts *o) {
    const char *cmd = dn_ar_cmd_names[o->cmd];
    for (int k = 2; k < argc; k++) {
        const char *arg = argv[k];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            o->help = 1;
            return DN_EXIT_OK;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "%s: %s: unexpected argument '%s' (try '%s %s --help')\n", o->prog, cmd,
                    arg, o->prog, cmd);
            return DN_EXIT_USAGE;
        }
        const char *eq = strchr(arg, '=');
        const dn_ar_option *op = dn_ar_find(arg, eq ? (size_t)(eq - arg) : strlen(arg));
        if (!op || !(op->cmds & (1u << o->cmd)) || !dn_ar_applies(m, op)) {
            fprintf(stderr, "%s: %s: unknown option '%s' (try '%s %s --help')\n", o->prog, cmd, arg,
                    o->prog, cmd);
            return DN_EXIT_USAGE;
        }
        const char *val = NULL;
        if (op->kind == DN_AR_FLAG) {
            if (eq) {
                fprintf(stderr, "%s: %s: takes no value, got '%s'\n", o->prog, op->name, eq + 1);
                return DN_EXIT_USAGE;
            }
        } else if (eq) {
            val = eq + 1;
        } else if (k + 1 < argc) {
            val = argv[++k];
        } else {
            fprintf(stderr, "%s: %s: missing value %s\n", o->prog, op->name, op->metavar);
            return DN_EXIT_USAGE;
        }
        if (dn_ar_store(o, op, val) != 0) {
            dn_ar_bad_value(o, op, val);
            return DN_EXIT_USAGE;
        }
        if (op->offset == DN_AR_OFF(batch_size))
            o->batch_size_given = 1;
        if (op->offset == DN_AR_OFF(mc_seed))
            o->mc_seed_given = 1;
    }
    return DN_EXIT_OK;
}

/* Checks combinations that single options cannot express. */
static int dn_ar_check_combinations(const dn_model *m, const dn_opts *o) {
    if (o->help)
        return DN_EXIT_OK;
    if (o->cmd == DN_CMD_TRAIN && m->defaults.max_batch_size > 0 && o->batch_size > m->defaults.max_batch_size) {
        fprintf(stderr, "%s: train: --batch-size %d is more than this trainer takes (%d: its sums over a batch's "
                "chunks are sized for it); regenerate it with a larger train.batch_size\n", o->prog, o->batch_size,
                m->defaults.max_batch_size);
        return DN_EXIT_USAGE;
    }
    if (o->cmd == DN_CMD_TRAIN && m->batchnorm && o->batch_size < 2) {
        fprintf(stderr, "%s: train: --batch-size must be at least 2 with batch norm, got %d\n", o->prog,
                o->batch_size);
        return DN_EXIT_USAGE;
    }
    if (o->cmd == DN_CMD_EVAL && !o->weights) {
        fprintf(stderr, "%s: eval: --weights FILE is required\n", o->prog);
        return DN_EXIT_USAGE;
    }
    if (o->cmd == DN_CMD_TRAIN && o->init && o->resume) {
        fprintf(stderr, "%s: train: --init and --resume cannot be used together\n", o->prog);
        return DN_EXIT_USAGE;
    }
    if (o->cmd == DN_CMD_TRAIN && o->checkpoint_every && !o->save) {
        fprintf(stderr, "%s: train: --checkpoint-every needs --save FILE\n", o->prog);
        return DN_EXIT_USAGE;
    }
    if (o->cmd == DN_CMD_TRAIN && o->patience && !(o->val_split > 0)) {
        fprintf(stderr, "%s: train: --early-stopping needs --val-split F with F > 0\n", o->prog);
        return DN_EXIT_USAGE;
    }
    if (o->cmd == DN_CMD_EVAL && o->mc_seed_given && !o->mc) {
        fprintf(stderr, "%s: eval: --mc-seed needs --mc N\n", o->prog);
        return DN_EXIT_USAGE;
    }
    return DN_EXIT_OK;
}

/* Maps argv[1] to a command. Returns DN_EXIT_OK or DN_EXIT_USAGE. */
static int dn_ar_parse_command(int argc, char **argv, dn_opts *o) {
    if (argc < 2) {
        o->cmd = DN_CMD_NONE;
        return DN_EXIT_OK;
    }
    const char *c = argv[1];
    if (strcmp(c, "--help") == 0 || strcmp(c, "-h") == 0 || strcmp(c, "help") == 0)
        o->cmd = DN_CMD_HELP;
    else if (strcmp(c, "--version") == 0)
        o->cmd = DN_CMD_VERSION;
    else if (strcmp(c, "train") == 0)
        o->cmd = DN_CMD_TRAIN;
    else if (strcmp(c, "eval") == 0)
        o->cmd = DN_CMD_EVAL;
    else if (strcmp(c, "gradcheck") == 0)
        o->cmd = DN_CMD_GRADCHECK;
    else {
        fprintf(stderr, "%s: unknown command '%s' (expected train, eval or gradcheck; try '%s --help')\n",
                o->prog, c, o->prog);
        return DN_EXIT_USAGE;
    }
    if ((o->cmd == DN_CMD_HELP || o->cmd == DN_CMD_VERSION) && argc > 2) {
        fprintf(stderr, "%s: %s: unexpected argument '%s'\n", o->prog, c, argv[2]);
        return DN_EXIT_USAGE;
    }
    return DN_EXIT_OK;
}

int dn_opts_parse(const dn_model *m, int argc, char **argv, dn_opts *o) {
    dn_ar_set_defaults(m, dn_ar_prog_name(argc, argv), o);
    int rc = dn_ar_parse_command(argc, argv, o);
    if (rc == DN_EXIT_OK && o->cmd >= DN_CMD_TRAIN && o->cmd <= DN_CMD_GRADCHECK)
        rc = dn_ar_parse_command_args(m, argc, argv, o);
    if (rc == DN_EXIT_OK)
        rc = dn_ar_check_combinations(m, o);
    return rc;
}

/* Formats the default of option op for command cmd (from d) into buf; "" when it has none. */
static void dn_ar_default_text(const dn_ar_option *op, dn_cmd cmd, const dn_opts *d, char *buf,
                            size_t cap) {
    const char *field = (const char *)d + op->offset;
    buf[0] = '\0';
    if (op->offset == DN_AR_OFF(batch_size) && cmd == DN_CMD_EVAL)
        snprintf(buf, cap, "%d", DN_EVAL_BATCH);
    else if (op->kind == DN_AR_INT && op->offset != DN_AR_OFF(threads) &&
             *(const int *)(const void *)field != 0) /* 0: off (--early-stopping, --mc) */
        snprintf(buf, cap, "%d", *(const int *)(const void *)field);
    else if (op->kind == DN_AR_U64)
        snprintf(buf, cap, "%" PRIu64, *(const uint64_t *)(const void *)field);
    else if (op->kind == DN_AR_POSREAL)
        snprintf(buf, cap, "%g", (double)*(const float *)(const void *)field);
    else if (op->kind == DN_AR_FRACTION)
        snprintf(buf, cap, "%g", *(const double *)(const void *)field);
    else if (op->kind == DN_AR_STR && *(const char *const *)(const void *)field)
        snprintf(buf, cap, "%s", *(const char *const *)(const void *)field);
}

/* Prints the option lines of command cmd. */
static void dn_ar_print_options(const dn_model *m, dn_cmd cmd, FILE *out) {
    dn_opts d;
    dn_ar_set_defaults(m, "", &d);
    for (size_t k = 0; k < DN_AR_N_OPTIONS; k++) {
        const dn_ar_option *op = &dn_ar_options[k];
        if (!(op->cmds & (1u << cmd)) || !dn_ar_applies(m, op))
            continue;
        char left[48], def[160];
        snprintf(left, sizeof left, "%s%s%s", op->name, op->metavar ? " " : "",
                 op->metavar ? op->metavar : "");
        dn_ar_default_text(op, cmd, &d, def, sizeof def);
        fprintf(out, "  %-24s %s", left, op->help);
        if (def[0])
            fprintf(out, " (default %s)", def);
        fputc('\n', out);
    }
    fprintf(out, "  %-24s %s\n", "--help", "show this help");
}

/* The exit-status table shared by all help pages. */
static void dn_ar_print_exit_statuses(FILE *out) {
    fputs("Exit status:\n"
          "  0        success\n"
          "  1        training diverged (loss NaN/Inf) or gradcheck failed\n"
          "  2        usage error (bad command, option or value)\n"
          "  3        input file error (data, weights, checkpoint)\n"
          "  4        output write error (checkpoint, metrics, stdout)\n"
          "  130/143  interrupted by SIGINT/SIGTERM (state saved when --save is given)\n",
          out);
}

/* Usage line and summary of each command. */
static void dn_ar_print_command_usage(const char *prog, dn_cmd cmd, FILE *out) {
    if (cmd == DN_CMD_TRAIN)
        fprintf(out, "Usage: %s train [OPTIONS]\nTrain the network with its optimizer; prints one line per epoch.\n"
                     "With --val-split the line adds val_loss, val_acc and gap = train_acc - val_acc.\n"
                     "With a learning-rate schedule the line adds the lr of the epoch's last step.\n"
                     "With --early-stopping the run ends (by it or after --epochs) with the best\n"
                     "epoch's weights restored, evaluated and written to --save (weights only).\n"
                     "A progress bar is drawn on stderr when it is a terminal.\n", prog);
    else if (cmd == DN_CMD_EVAL)
        fprintf(out, "Usage: %s eval --weights FILE [OPTIONS]\n"
                     "Evaluate weights on the test set (t10k-*); prints test_loss and test_acc.\n"
                     "With --mc N: the mean of N dropout-on passes (masks from --mc-seed, the pass\n"
                     "and the row within its batch), then mc_passes and the mean predictive\n"
                     "entropy (nats) of correctly and wrongly classified samples (nan if none).\n",
                prog);
    else
        fprintf(out, "Usage: %s gradcheck [OPTIONS]\n"
                     "Compare train_step's gradients with central finite differences\n"
                     "on random data; one line per tensor.\n", prog);
}

void dn_print_help(const dn_model *m, const char *prog, dn_cmd cmd, FILE *out) {
    if (cmd == DN_CMD_TRAIN || cmd == DN_CMD_EVAL || cmd == DN_CMD_GRADCHECK) {
        dn_ar_print_command_usage(prog, cmd, out);
        fputs("\nOptions:\n", out);
        dn_ar_print_options(m, cmd, out);
        fputc('\n', out);
        dn_ar_print_exit_statuses(out);
        return;
    }
    fprintf(out,
            "Usage: %s COMMAND [OPTIONS]\n"
            "Trainer for model '%s' (%d inputs, %d outputs, %zu parameters),\n"
            "generated by dngen %s from %s.\n\n"
            "Commands:\n"
            "  train      train the network\n"
            "  eval       evaluate saved weights on the test set\n"
            "  gradcheck  check gradients against finite differences\n\n"
            "Options:\n"
            "  --help     show this help ('%s COMMAND --help' for a command's options)\n"
            "  --version  show the dngen version and spec hash\n\n",
            prog, m->name, m->n_inputs, m->n_outputs, dn_model_param_count(m), m->dngen_version, m->spec_path,
            prog);
    dn_ar_print_exit_statuses(out);
}

void dn_print_version(const dn_model *m, FILE *out) {
    fprintf(out, "%s (dngen %s, spec %s %s)\n", m->name, m->dngen_version, m->spec_path,
            m->spec_hash);
}
