/* summary.c - `dngen summary SPEC`: what a spec's network is and costs.
 *
 *   load + validate (cli.c's dngen_load_spec, as generation) -> dn_plan_build
 *   -> rows: the plan's ops in forward order, with a row of its own for each
 *      spec layer that has no op (flatten) -> one table, totals, memory
 *
 * Every figure comes from the plan or the spec: per op its parameters and
 * FLOP per sample (plan.c's plan_costs), the work space's floats per batch
 * row and once, and the spec's parameter buffer (n_floats). Nothing is
 * measured, so the output is a pure function of the spec. */
#include "summary.h"

#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dn_train.h" /* DN_EVAL_BATCH: the rows of a training run's work space */
#include "spec.h"

/* The columns of the table; text columns are left-aligned, numbers right. */
enum { COL_LAYER, COL_TYPE, COL_OUTPUT, COL_DROPOUT, COL_PARAMS, COL_FWD, COL_STEP, COL_BATCH, N_COLS };

static const char *const col_title[N_COLS] = {
    "layer", "type", "output", "dropout", "params", "fwd MFLOP", "step MFLOP", "batch MFLOP",
};

#define CELL_MAX (DN_NAME_MAX + 8)

typedef struct {
    char cell[N_COLS][CELL_MAX];
} row;

/* n with thousands separators: 200960 -> "200,960". */
static void fmt_count(char *dst, size_t cap, size_t n) {
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%zu", n);
    size_t o = 0;
    for (int i = 0; i < len && o + 2 < cap; i++) {
        if (i > 0 && (len - i) % 3 == 0) dst[o++] = ',';
        dst[o++] = digits[i];
    }
    dst[o] = '\0';
}

/* "[784]" or "[32, 26, 26]" (C, H, W). */
static void fmt_shape(char *dst, size_t cap, dn_shape s) {
    if (s.rank == 1)
        snprintf(dst, cap, "[%d]", s.c);
    else
        snprintf(dst, cap, "[%d, %d, %d]", s.c, s.h, s.w);
}

/* Fills the cost cells: parameters, then FLOP per sample forward and per
 * training step, and per step of `batch` samples, in MFLOP. */
static void set_costs(row *r, size_t params, double fwd, double step, int batch) {
    fmt_count(r->cell[COL_PARAMS], CELL_MAX, params);
    snprintf(r->cell[COL_FWD], CELL_MAX, "%.3f", fwd / 1e6);
    snprintf(r->cell[COL_STEP], CELL_MAX, "%.3f", step / 1e6);
    snprintf(r->cell[COL_BATCH], CELL_MAX, "%.3f", step * batch / 1e6);
}

/* The row of one op: a dense layer's product keeps the layer's name, its
 * batch norm is <name>_bn (PyTorch's module name for it in the state_dict),
 * input dropout is `input`. */
static void op_row(row *r, const dn_op *op, int batch) {
    const dn_layer *L = op->layer;
    snprintf(r->cell[COL_LAYER], CELL_MAX, "%s%s", op->name, op->kind == DN_OP_BATCHNORM ? "_bn" : "");
    snprintf(r->cell[COL_TYPE], CELL_MAX, "%s",
             !L                              ? "dropout"
             : op->kind != DN_OP_BATCHNORM   ? dn_layer_type_name(L->type)
             : op->out.shape.rank == 3       ? "batchnorm2d"
                                             : "batchnorm");
    fmt_shape(r->cell[COL_OUTPUT], CELL_MAX, op->out.shape);
    if (op->drop.p > 0)
        snprintf(r->cell[COL_DROPOUT], CELL_MAX, "%s%s", op->drop.rate, op->drop_channel ? " channel" : "");
    set_costs(r, op->params, op->flops_fwd, op->flops_fwd + op->flops_bwd, batch);
}

/* A row without an op: the network's input (without input dropout) or a
 * layer that only reshapes (flatten). */
static void plain_row(row *r, const char *name, const char *type, dn_shape shape, int batch) {
    snprintf(r->cell[COL_LAYER], CELL_MAX, "%s", name);
    snprintf(r->cell[COL_TYPE], CELL_MAX, "%s", type);
    fmt_shape(r->cell[COL_OUTPUT], CELL_MAX, shape);
    set_costs(r, 0, 0, 0, batch);
}

/* The rows in forward order: the input, then each spec layer's ops (none
 * for a flatten, two for dense + batch norm). Returns the count, at most
 * n_layers + n_ops + 1. */
static int build_rows(const dn_plan *p, row *rows) {
    const dn_spec *s = p->spec;
    const int batch = s->train.batch_size;
    int n = 0, i = 0;
    memset(rows, 0, (size_t)(s->n_layers + p->n_ops + 1) * sizeof *rows);
    if (i < p->n_ops && !p->ops[i].layer)
        op_row(&rows[n++], &p->ops[i++], batch);
    else
        plain_row(&rows[n++], "input", "input", s->input_shape, batch);
    for (int k = 0; k < s->n_layers; k++) {
        const dn_layer *L = &s->layers[k];
        if (i < p->n_ops && p->ops[i].layer == L) {
            while (i < p->n_ops && p->ops[i].layer == L) op_row(&rows[n++], &p->ops[i++], batch);
        } else {
            plain_row(&rows[n++], L->name, dn_layer_type_name(L->type), L->out_shape, batch);
        }
    }
    while (i < p->n_ops) op_row(&rows[n++], &p->ops[i++], batch); /* none: ops follow the layers */
    return n;
}

static void print_rule(FILE *out, const int *width) {
    int total = 0;
    for (int c = 0; c < N_COLS; c++) total += width[c] + (c ? 2 : 0);
    for (int k = 0; k < total; k++) fputc('-', out);
    fputc('\n', out);
}

static void print_row(FILE *out, const int *width, const char *const *cells) {
    char line[N_COLS * (CELL_MAX + 2) + 2];
    size_t o = 0;
    for (int c = 0; c < N_COLS; c++) {
        int right = c >= COL_PARAMS;
        o += (size_t)snprintf(line + o, sizeof line - o, "%s%*s", c ? "  " : "", right ? width[c] : -width[c],
                              cells[c]);
    }
    while (o > 0 && line[o - 1] == ' ') o--; /* no trailing blanks */
    line[o] = '\0';
    fprintf(out, "%s\n", line);
}

static double mib(double floats) { return floats * sizeof(float) / (1024.0 * 1024.0); }

/* Bytes of work space for `rows` rows of plan ctx, as the plan counts them. */
static size_t work_bytes(int rows, const void *ctx) {
    const dn_plan *p = ctx;
    return ((size_t)rows * p->workspace_floats_per_row + p->workspace_floats_fixed) * sizeof(float);
}

/* The copies of the parameter buffer a training run writes, as
 * runtime/dn_train.c uses them: the parameters; the gradient unless Adam's
 * step is fused (the fused step keeps no gradient buffer warm: it is
 * touched only when a loss diverges), i.e. with another optimizer or
 * clipping; and the optimizer's state: Adam's m and v, SGD's momentum buffer
 * (with momentum), RMSprop's square average (and momentum buffer, gradient
 * average). Their label into label[0..cap); returns the count. */
static int param_copies(const dn_train *t, char *label, size_t cap) {
    const dn_optimizer *o = &t->opt;
    int fused = (o->type == DN_OPT_ADAM || o->type == DN_OPT_ADAMW) && !(t->clip_grad_norm > 0);
    int n = fused ? 1 : 2;
    size_t len = (size_t)snprintf(label, cap, "parameters%s", fused ? "" : ", gradient");
    if (o->type == DN_OPT_ADAM || o->type == DN_OPT_ADAMW) {
        snprintf(label + len, cap - len, ", Adam m and v");
        return n + 2;
    }
    if (o->type == DN_OPT_SGD) {
        if (o->momentum > 0)
            snprintf(label + len, cap - len, ", momentum");
        return n + (o->momentum > 0);
    }
    snprintf(label + len, cap - len, ", RMSprop state");
    return n + 1 + (o->momentum > 0) + o->centered;
}

/* The memory a training run allocates for the network, as runtime/dn_train.c
 * does: the copies of the parameter buffer (param_copies), the work space
 * and the input batch, both for the rows of an evaluation batch, chosen as
 * dn_eval_rows does (runtime/dn_eval.c) from the work space's size, which
 * the plan gives (up to the alignment of each buffer). */
static void print_memory(const dn_plan *p, FILE *out) {
    const dn_spec *s = p->spec;
    const int batch = s->train.batch_size;
    const size_t rows = (size_t)dn_eval_rows_by(work_bytes, p, batch); /* the trainer's rule (runtime/dn_eval.c) */
    char label0[64];
    const int copies = param_copies(&s->train, label0, sizeof label0);
    const double params = (double)copies * (double)s->n_floats;
    const double work = (double)rows * (double)p->workspace_floats_per_row + (double)p->workspace_floats_fixed;
    const double input = (double)rows * (double)s->input;
    char what[3][128], a[32], b[32];
    fmt_count(a, sizeof a, s->n_floats);
    snprintf(what[0], sizeof what[0], "%d x %s floats", copies, a);
    fmt_count(a, sizeof a, p->workspace_floats_per_row);
    fmt_count(b, sizeof b, p->workspace_floats_fixed);
    if (p->workspace_floats_fixed)
        snprintf(what[1], sizeof what[1], "%zu rows x %s + %s floats", rows, a, b);
    else
        snprintf(what[1], sizeof what[1], "%zu rows x %s floats", rows, a);
    fmt_count(a, sizeof a, (size_t)s->input);
    snprintf(what[2], sizeof what[2], "%zu rows x %s floats", rows, a);
    const char *const label[3] = {label0, "work space", "input batch"};
    const double size[3] = {mib(params), mib(work), mib(input)};
    int w = 0, lw = 24;
    for (int k = 0; k < 3; k++) w = (int)strlen(what[k]) > w ? (int)strlen(what[k]) : w;
    lw = (int)strlen(label0) > lw ? (int)strlen(label0) : lw;
    fprintf(out, "memory a training run allocates: %.2f MiB (float32; the data set not counted)\n",
            mib(params + work + input));
    for (int k = 0; k < 3; k++) fprintf(out, "  %-*s  %-*s  %8.2f MiB\n", lw, label[k], w, what[k], size[k]);
    if ((int)rows > batch)
        fprintf(out, "  (%zu rows: training batches of %d, evaluation batches of %zu)\n", rows, batch, rows);
}

int dngen_summary_print(const dn_plan *p, FILE *out) {
    const dn_spec *s = p->spec;
    const int batch = s->train.batch_size;
    row *rows = malloc((size_t)(s->n_layers + p->n_ops + 2) * sizeof *rows); /* input, layers' rows, total */
    if (!rows)
        return -1;
    int n = build_rows(p, rows);

    /* Totals from the ops themselves, so that no rounding of a row adds up. */
    size_t params = 0;
    double fwd = 0, step = 0;
    for (int i = 0; i < p->n_ops; i++) {
        params += p->ops[i].params;
        fwd += p->ops[i].flops_fwd;
        step += p->ops[i].flops_fwd + p->ops[i].flops_bwd;
    }
    row *total = &rows[n];
    memset(total, 0, sizeof *total);
    snprintf(total->cell[COL_LAYER], CELL_MAX, "total");
    set_costs(total, params, fwd, step, batch);

    int width[N_COLS];
    for (int c = 0; c < N_COLS; c++) {
        width[c] = (int)strlen(col_title[c]);
        for (int r = 0; r <= n; r++)
            if ((int)strlen(rows[r].cell[c]) > width[c]) width[c] = (int)strlen(rows[r].cell[c]);
    }
    char shape[64];
    fmt_shape(shape, sizeof shape, s->input_shape);
    fprintf(out, "model %s (%s): input %s, batch %d, loss %s, optimizer %s\n\n", s->name, s->path, shape, batch,
            dn_loss_name(s->train.loss), dn_opt_name(s->train.opt.type));
    print_row(out, width, col_title);
    print_rule(out, width);
    for (int r = 0; r < n; r++) {
        const char *cells[N_COLS];
        for (int c = 0; c < N_COLS; c++) cells[c] = rows[r].cell[c];
        print_row(out, width, cells);
    }
    print_rule(out, width);
    const char *cells[N_COLS];
    for (int c = 0; c < N_COLS; c++) cells[c] = total->cell[c];
    print_row(out, width, cells);
    static const char *const updater[DN_OPT_COUNT] = {"Adam's", "Adam's", "SGD's", "RMSprop's"};
    fprintf(out,
            "\nfwd: forward pass per sample; step: forward and backward per sample; batch: step x %d\n"
            "(a multiply-add is 2 FLOP; the loss and %s update are not counted)\n\n",
            batch, updater[s->train.opt.type]);
    print_memory(p, out);
    free(rows);
    return 0;
}

static const char summary_usage[] = "usage: dngen summary SPEC.yaml\n";

int dngen_summary_main(int argc, char **argv, FILE *out, FILE *err) {
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fprintf(out, "%s\nprints the network of SPEC.yaml as a table: per layer its output shape,\n"
                         "dropout, parameters and MFLOP, then the memory of a training run\n"
                         "(docs/summary.md)\n", summary_usage);
            return DNGEN_EXIT_OK;
        }
        if (a[0] == '-' && a[1] != '\0') {
            fprintf(err, "dngen summary: unknown option '%s'\n%s", a, summary_usage);
            return DNGEN_EXIT_USAGE;
        }
        if (path) {
            fprintf(err, "dngen summary: more than one spec given ('%s' and '%s')\n", path, a);
            return DNGEN_EXIT_USAGE;
        }
        path = a;
    }
    if (!path) {
        fprintf(err, "dngen summary: no spec file given\n%s", summary_usage);
        return DNGEN_EXIT_USAGE;
    }
    dn_spec *spec = calloc(1, sizeof *spec);
    dn_plan *plan = calloc(1, sizeof *plan);
    int status = DNGEN_EXIT_USAGE;
    if (!spec || !plan) {
        fprintf(err, "dngen summary: out of memory\n");
    } else if ((status = dngen_load_spec(path, spec, err)) == DNGEN_EXIT_OK) {
        dn_plan_build(spec, plan);
        if (dngen_summary_print(plan, out) != 0) {
            fprintf(err, "dngen summary: out of memory\n");
            status = DNGEN_EXIT_USAGE;
        } else if (fflush(out) != 0 || ferror(out)) {
            fprintf(err, "dngen summary: error writing to standard output\n");
            status = DNGEN_EXIT_USAGE;
        }
    }
    free(plan);
    free(spec);
    return status;
}
