/* dn_predict_cli.c - the predictor's command line: options into a
 * dn_pr_opts (every value checked, one message per mistake), and the text
 * of --help and --version. First step of the predictor (see dn_predict.h).
 */
#include "dn_predict.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Basename of argv[0] ("predict" when absent). */
static const char *dn_pr_prog_name(int argc, char **argv) {
    if (argc < 1 || !argv[0] || !argv[0][0])
        return "predict";
    const char *slash = strrchr(argv[0], '/');
    return slash && slash[1] ? slash + 1 : argv[0];
}

/* Parses all of s as a decimal integer in [lo, hi]. Returns 0 or -1. */
static int dn_pr_parse_int(const char *s, long lo, long hi, int *v) {
    int64_t x;
    if (dn_parse_i64(s, &x) != 0 || x < lo || x > hi)
        return -1;
    *v = (int)x;
    return 0;
}

/* Index of s in the NULL-terminated list names, or -1. */
static int dn_pr_lookup(const char *s, const char *const *names) {
    for (int k = 0; names[k]; k++)
        if (strcmp(s, names[k]) == 0)
            return k;
    return -1;
}

static const char *const dn_pr_out_names[] = {"text", "csv", "json", NULL};
static const char *const dn_pr_in_names[] = {"idx", "csv", "raw", "npy", NULL};

/* The options; `value` is the metavar of options that take one (NULL: flag). */
typedef struct {
    const char *name;
    const char *value;
} dn_pr_option;

static const dn_pr_option dn_pr_options[] = {
    {"--format", "F"},  {"--top", "K"},          {"--mc", "N"},
    {"--seed", "S"},    {"--batch", "B"},        {"--no-normalize", NULL},
    {"--input-format", "F"}, {"--help", NULL},   {"--version", NULL},
};

#define DN_PR_N_OPTIONS (sizeof dn_pr_options / sizeof dn_pr_options[0])

/* The option whose name is name[0..len), or NULL. */
static const dn_pr_option *dn_pr_find_option(const char *name, size_t len) {
    for (size_t k = 0; k < DN_PR_N_OPTIONS; k++)
        if (strlen(dn_pr_options[k].name) == len && strncmp(dn_pr_options[k].name, name, len) == 0)
            return &dn_pr_options[k];
    return NULL;
}

/* --format or --input-format: a name from its list. Returns 0, or -1 with
 * the accepted names in want. */
static int dn_pr_store_format(dn_pr_opts *o, const char *name, const char *val, char *want, size_t cap) {
    int out = strcmp(name, "--format") == 0;
    int k = dn_pr_lookup(val, out ? dn_pr_out_names : dn_pr_in_names);
    if (k < 0) {
        snprintf(want, cap, out ? "text, csv or json" : "idx, csv or raw");
        return -1;
    }
    if (out)
        o->format = k;
    else
        o->input_format = DN_PR_IN_IDX + k;
    return 0;
}

/* --top, --mc or --batch: an integer from 1 to the option's maximum.
 * Returns 0, or -1 with the accepted range in want. */
static int dn_pr_store_count(const dn_infer_model *m, dn_pr_opts *o, const char *name, const char *val,
                             char *want, size_t cap) {
    int *dst = &o->batch, max = DN_PR_MAX_BATCH;
    if (strcmp(name, "--top") == 0) {
        dst = &o->top;
        max = dn_pr_listed(m);
    } else if (strcmp(name, "--mc") == 0) {
        dst = &o->mc;
        max = DN_PR_MAX_MC;
    }
    if (dn_pr_parse_int(val, 1, max, dst) == 0)
        return 0;
    snprintf(want, cap, "an integer in [1, %d]", max);
    return -1;
}

/* --seed: any 64-bit unsigned integer. Returns 0, or -1 with the range in want. */
static int dn_pr_store_seed(dn_pr_opts *o, const char *val, char *want, size_t cap) {
    if (dn_parse_u64(val, &o->seed) == 0) {
        o->seed_given = 1;
        return 0;
    }
    snprintf(want, cap, "an integer in [0, %" PRIu64 "]", UINT64_MAX);
    return -1;
}

/* Stores the value of option `name`. Returns 0, or DN_PR_EXIT_USAGE after
 * printing "PROG: NAME: expected ..., got 'VAL'". */
static int dn_pr_store(const dn_infer_model *m, dn_pr_opts *o, const char *name, const char *val) {
    char want[96];
    int rc;
    if (strcmp(name, "--format") == 0 || strcmp(name, "--input-format") == 0)
        rc = dn_pr_store_format(o, name, val, want, sizeof want);
    else if (strcmp(name, "--seed") == 0)
        rc = dn_pr_store_seed(o, val, want, sizeof want);
    else
        rc = dn_pr_store_count(m, o, name, val, want, sizeof want);
    if (rc == 0)
        return 0;
    fprintf(stderr, "%s: %s: expected %s, got '%s'\n", o->prog, name, want, val);
    return DN_PR_EXIT_USAGE;
}

/* Takes INPUT (a non-option argument). */
static int dn_pr_positional(dn_pr_opts *o, const char *arg) {
    if (o->input) {
        fprintf(stderr, "%s: unexpected argument '%s' (one INPUT only; try '%s --help')\n",
                o->prog, arg, o->prog);
        return DN_PR_EXIT_USAGE;
    }
    if (!arg[0]) {
        fprintf(stderr, "%s: empty INPUT file name\n", o->prog);
        return DN_PR_EXIT_USAGE;
    }
    o->input = arg;
    return DN_PR_EXIT_OK;
}

/* What parsing does after one argument. */
enum { DN_PR_ARG_NEXT, DN_PR_ARG_STOP, DN_PR_ARG_BAD };

/* A flag: --help and --version stop the parsing, --no-normalize is noted.
 * eq: the "=VALUE" the flag was given with, or NULL. */
static int dn_pr_flag(dn_pr_opts *o, const dn_pr_option *op, const char *eq) {
    if (eq) {
        fprintf(stderr, "%s: %s: takes no value, got '%s'\n", o->prog, op->name, eq + 1);
        return DN_PR_ARG_BAD;
    }
    if (strcmp(op->name, "--help") == 0) {
        o->help = 1;
        return DN_PR_ARG_STOP;
    }
    if (strcmp(op->name, "--version") == 0) {
        o->version = 1;
        return DN_PR_ARG_STOP;
    }
    o->normalize = 0; /* --no-normalize */
    return DN_PR_ARG_NEXT;
}

/* The option at argv[*k] ("-X..." but not "-" or "--"), as "--NAME",
 * "--NAME=VALUE" or "--NAME VALUE" (then *k moves to the value). */
static int dn_pr_option_arg(const dn_infer_model *m, int argc, char **argv, int *k, dn_pr_opts *o) {
    const char *arg = argv[*k];
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
        o->help = 1;
        return DN_PR_ARG_STOP;
    }
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    const dn_pr_option *op = strncmp(arg, "--", 2) == 0 ? dn_pr_find_option(arg, len) : NULL;
    if (!op) {
        fprintf(stderr, "%s: unknown option '%s' (try '%s --help')\n", o->prog, arg, o->prog);
        return DN_PR_ARG_BAD;
    }
    if (!op->value)
        return dn_pr_flag(o, op, eq);
    if (!eq && *k + 1 >= argc) {
        fprintf(stderr, "%s: %s: missing value %s\n", o->prog, op->name, op->value);
        return DN_PR_ARG_BAD;
    }
    const char *val = eq ? eq + 1 : argv[++*k];
    return dn_pr_store(m, o, op->name, val) == 0 ? DN_PR_ARG_NEXT : DN_PR_ARG_BAD;
}

/* The rules between options: --mc needs dropout, --seed needs --mc.
 * Returns DN_PR_EXIT_OK or DN_PR_EXIT_USAGE (message printed). */
static int dn_pr_check_options(const dn_infer_model *m, const dn_pr_opts *o) {
    if (o->mc && !m->has_dropout) {
        fprintf(stderr, "%s: --mc: model has no dropout (MC dropout needs a network with dropout)\n",
                o->prog);
        return DN_PR_EXIT_USAGE;
    }
    if (o->top > 1 && m->multilabel) {
        fprintf(stderr, "%s: --top: a multi-label model's line lists every label's probability already\n",
                o->prog);
        return DN_PR_EXIT_USAGE;
    }
    if (o->seed_given && !o->mc) {
        fprintf(stderr, "%s: --seed needs --mc N (it seeds the MC dropout masks)\n", o->prog);
        return DN_PR_EXIT_USAGE;
    }
    return DN_PR_EXIT_OK;
}

int dn_pr_parse_args(const dn_infer_model *m, int argc, char **argv, dn_pr_opts *o) {
    memset(o, 0, sizeof *o);
    o->prog = dn_pr_prog_name(argc, argv);
    o->format = DN_PR_OUT_TEXT;
    o->top = 1;
    o->batch = DN_PR_DEFAULT_BATCH;
    o->normalize = 1;
    o->input_format = DN_PR_IN_AUTO;
    int options_done = 0;
    for (int k = 1; k < argc; k++) {
        const char *arg = argv[k];
        int next = DN_PR_ARG_NEXT;
        if (options_done || arg[0] != '-' || arg[1] == '\0')
            next = dn_pr_positional(o, arg) == DN_PR_EXIT_OK ? DN_PR_ARG_NEXT : DN_PR_ARG_BAD;
        else if (strcmp(arg, "--") == 0)
            options_done = 1;
        else
            next = dn_pr_option_arg(m, argc, argv, &k, o);
        if (next == DN_PR_ARG_BAD)
            return DN_PR_EXIT_USAGE;
        if (next == DN_PR_ARG_STOP)
            return DN_PR_EXIT_OK;
    }
    return dn_pr_check_options(m, o);
}

/* ---- help and version --------------------------------------------------------- */

/* The usage line, what the program is, and its options. */
static void dn_pr_help_options(const dn_infer_model *m, const char *prog, FILE *out) {
    int ce = dn_pr_classifier(m);
    fprintf(out,
            "Usage: %s [INPUT] [OPTIONS]\n"
            "Predict with model '%s' (%d inputs -> %d %s) and its built-in weights\n"
            "(dngen %s, spec %s, weights %s).\n"
            "Reads the samples in INPUT (a file; '-' or none: standard input) and prints\n"
            "one line per sample.\n\n",
            prog, m->name, m->n_inputs, dn_pr_listed(m),
            m->multilabel ? "labels, multi-label" : ce ? "classes" : "raw outputs, mse", m->dngen_version,
            m->spec_hash, m->weights_hash);
    fprintf(out,
            "Options:\n"
            "  --format F           output format: text, csv or json (default text)\n"
            "  --top K              list the K %s, 1..%d (default 1)\n"
            "  --mc N               MC dropout: average N passes with dropout on, 1..%d\n"
            "  --seed S             seed of the MC dropout masks, needs --mc (default 0)\n"
            "  --batch B            samples per forward pass, 1..%d (default %d)\n"
            "  --no-normalize       feed IDX/CSV values to the network as they are\n"
            "  --input-format F     idx, csv or raw (default: detected from the content)\n"
            "  --help               show this help\n"
            "  --version            show model name, dngen version, spec and weights hashes\n"
            "  --                   end of options (INPUT may then start with '-')\n\n",
            ce ? "most likely classes" : "largest outputs", dn_pr_listed(m), DN_PR_MAX_MC, DN_PR_MAX_BATCH,
            DN_PR_DEFAULT_BATCH);
}

/* The input formats and how values are fed to the network. */
static void dn_pr_help_inputs(const dn_infer_model *m, FILE *out) {
    if (m->shift) {
        fprintf(out,
                "Input formats (N = %d values per sample):\n"
                "  csv  text, one sample per line, N comma-separated feature values (the\n"
                "       training file's feature columns, in order, without targets or ignored\n"
                "       columns); a first line whose first field is not a number is a header\n"
                "  raw  little-endian float32, N per sample (length a multiple of %d bytes)\n"
                "  npy  a .npy array [n, ...] of float32, float64 or uint8, N values per sample\n"
                "  CSV and NPY values are fed as (v - shift) / scale, the scaling of the\n"
                "  training rows, unless --no-normalize. Raw float32 values are taken as scaled.\n\n",
                m->n_inputs, 4 * m->n_inputs);
        return;
    }
    fprintf(out,
            "Input formats (N = %d values per sample):\n"
            "  idx  IDX unsigned-byte file (magic 00 00 08 0n): images [n, rows, cols] with\n"
            "       rows*cols = N, or [n, N]; gzip-compressed IDX files are read too\n"
            "  csv  text, one sample per line, N comma-separated numbers; blank lines are\n"
            "       ignored; a first line whose first field is not a number is a header\n"
            "  raw  little-endian float32, N per sample, nothing else (length a multiple\n"
            "       of %d bytes)\n"
            "  IDX and CSV values are pixels 0..255, fed as (x/255 - %g) / %g unless\n"
            "  --no-normalize. Raw float32 values are taken as already normalized.\n"
            "  Detection: IDX magic or gzip -> idx; only printable text -> csv; else raw.\n\n",
            m->n_inputs, 4 * m->n_inputs, (double)m->norm_mean, (double)m->norm_std);
}

/* The output formats, for probabilities (ce) or raw outputs. */
static void dn_pr_help_outputs(int ce, FILE *out) {
    if (ce)
        fputs("Output (samples counted from 0; 'class' is the most probable class):\n"
              "  text  0: class 7 p=0.9876\n"
              "        --top K: 0: 7 (0.9876), 2 (0.0100), ...\n"
              "        --mc: the line ends with ' entropy=E std=S'\n"
              "  csv   header index,class,probability[,class_2,probability_2,...][,entropy,std]\n"
              "        then 0,7,0.987600,... (6 decimals)\n"
              "  json  one object per line, the keys that apply:\n"
              "        {\"index\":0,\"class\":7,\"probability\":0.987600,\"top\":[[7,0.987600],...],\n"
              "         \"entropy\":E,\"std\":S}\n",
              out);
    else
        fputs("Output (samples counted from 0; 'output' is the index of the largest output):\n"
              "  text  0: output 7 value=1.2345\n"
              "        --top K: 0: 7 (1.2345), 2 (0.0100), ...\n"
              "        --mc: the line ends with ' std=S'\n"
              "  csv   header index,output,value[,output_2,value_2,...][,std]\n"
              "        then 0,7,1.234500,... (6 decimals)\n"
              "  json  one object per line, the keys that apply:\n"
              "        {\"index\":0,\"output\":7,\"value\":1.234500,\"top\":[[7,1.234500],...],\"std\":S}\n",
              out);
    fputs("  The --top K list replaces the single result when K > 1.\n\n", out);
}

/* What --mc computes (unless multi-label: dn_pr_help_multilabel said it),
 * and the exit statuses. */
static void dn_pr_help_mc_and_exit(int ce, int multilabel, FILE *out) {
    if (!multilabel && ce)
        fputs("MC dropout (--mc N): passes p = 0..N-1 run with dropout on, masks drawn from\n"
              "(S, p) and each sample's row within its batch (so results depend on S and\n"
              "--batch). The prediction is the mean of the N probability vectors; entropy\n"
              "is -sum p ln p of that mean (nats); std is the standard deviation over the\n"
              "passes (divided by N) of the predicted class's probability.\n\n",
              out);
    else if (!multilabel)
        fputs("MC dropout (--mc N): passes p = 0..N-1 run with dropout on, masks drawn from\n"
              "(S, p) and each sample's row within its batch (so results depend on S and\n"
              "--batch). The prediction is the mean of the N output vectors; std is the\n"
              "standard deviation over the passes (divided by N) of the chosen output.\n\n",
              out);
    fputs("Exit status:\n"
          "  0  success\n"
          "  1  out of memory\n"
          "  2  usage error (bad option or value; --mc on a model without dropout)\n"
          "  3  input error (unreadable or malformed input, wrong number of values)\n"
          "  4  output write error (standard output)\n",
          out);
}

/* A multi-label model's output formats (--top does not apply). */
static void dn_pr_help_multilabel(FILE *out) {
    fputs("Output (samples counted from 0; one probability per label; 'labels' lists\n"
          "those above 0.5, the labels predicted 1):\n"
          "  text  0: labels 0,2 p=0.9123 0.0456 0.8812 (labels none when no label is)\n"
          "        --mc: the line ends with ' std=S0 S1 S2'\n"
          "  csv   header index,labels,p_0,p_1,...[,std_0,std_1,...]\n"
          "        then 0,0;2,0.912300,0.045600,0.881200 (6 decimals)\n"
          "  json  one object per line:\n"
          "        {\"index\":0,\"labels\":[0,2],\"probabilities\":[0.912300,...],\"std\":[...]}\n"
          "  --top does not apply: every label's probability is listed.\n\n"
          "MC dropout (--mc N): passes p = 0..N-1 run with dropout on, masks drawn from\n"
          "(S, p) and each sample's row within its batch (so results depend on S and\n"
          "--batch). The prediction is the mean of the N probability vectors; std is\n"
          "the standard deviation over the passes (divided by N) of each probability.\n\n",
          out);
}

void dn_pr_print_help(const dn_infer_model *m, const char *prog, FILE *out) {
    int ce = dn_pr_classifier(m);
    dn_pr_help_options(m, prog, out);
    dn_pr_help_inputs(m, out);
    if (m->multilabel)
        dn_pr_help_multilabel(out);
    else
        dn_pr_help_outputs(ce, out);
    dn_pr_help_mc_and_exit(ce, m->multilabel, out);
}

void dn_pr_print_version(const dn_infer_model *m, FILE *out) {
    fprintf(out, "%s predictor (dngen %s, spec %s, weights %s)\n", m->name, m->dngen_version,
            m->spec_hash, m->weights_hash);
}
