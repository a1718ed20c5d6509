/* cli.c - the dngen command line: parse options, run the passes, write output.
 *
 *   load + validate (validate.c) -> emit (emit.c) -> write atomically (runtime dn_io.c)
 *
 * Subcommands (plot.c, sweep.c, summary.c) get argv from their own name on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dn_runtime.h"
#include "emit.h"
#include "plot.h"
#include "spec.h"
#include "summary.h"
#include "sweep.h"
#include "version.h"
#include "weights.h"

typedef struct {
    const char *spec;   /* input path */
    const char *output; /* -o argument; "-" is stdout */
    int check_only;
    int standalone;
    int inference;       /* --inference: predictor with built-in weights */
    const char *weights; /* --weights FILE */
    dn_target target;    /* --target */
    int mpi;             /* --mpi */
} cli_opts;

static void print_usage(FILE *f) {
    fprintf(f,
            "usage: dngen SPEC.yaml -o OUT.c [--standalone] [--mpi] [--target portable|native|x86-64-v3|generic]\n"
            "       dngen SPEC.yaml --inference --weights W.safetensors -o PREDICT.c\n"
            "       dngen SPEC.yaml --check\n"
            "       dngen plot RUN.csv... -o CHART.svg [--metric acc|loss|both]\n"
            "       dngen sweep SPEC.yaml --dropout 0.1,0.3,0.5 | --random K --range LO,HI [-- TRAINER-OPTIONS]\n"
            "       dngen summary SPEC.yaml\n"
            "       dngen --help | --version\n");
}

static void print_help(FILE *f) {
    fprintf(f,
            "dngen %s - generate a specialized C trainer from a YAML network spec\n\n", DNGEN_VERSION);
    print_usage(f);
    fprintf(f,
            "\noptions:\n"
            "  -o FILE, --output FILE\n"
            "                  write the generated C to FILE ('-' for standard output);\n"
            "                  FILE is replaced atomically, and left untouched on any error\n"
            "  --inference     emit an inference-only program with the weights of --weights\n"
            "                  built in (always standalone; link it with -static)\n"
            "  --weights FILE  trained weights (safetensors, e.g. from `train --save`)\n"
            "  --target T      portable (default), native, x86-64-v3 or generic: the -march\n"
            "                  in the build command written at the top of the output (the\n"
            "                  output runs the best of its AVX-512, AVX2 and baseline\n"
            "                  kernels on any x86-64 CPU; -march only raises the baseline)\n"
            "  --standalone    include the runtime, so that\n"
            "                    cc -O2 -fopenmp OUT.c -o model -lz -lm\n"
            "                  builds the trainer with nothing else present\n"
            "  --mpi           a distributed trainer: built with mpicc against libdnrt_mpi,\n"
            "                  run under mpirun or srun; the same bits at any process\n"
            "                  count (docs/distributed.md)\n"
            "  --check         validate the spec only\n"
            "  -h, --help      this text\n"
            "  --version       print the version\n"
            "\nsubcommands:\n"
            "  plot            draw training curves from trainer metrics CSV files as SVG\n"
            "                  ('dngen plot --help')\n"
            "  sweep           train one variant per dropout rate, grid or random, and compare\n"
            "                  them in a table and a chart (docs/sweep.md)\n"
            "  summary         print the network as a table: per layer its output shape,\n"
            "                  parameters and MFLOP, then the memory of a training run\n"
            "\nexit status: 0 success, 1 the spec is invalid, 2 usage or I/O error\n"
            "(sweep: 3 when a variant failed)\n"
            "spec reference: docs/spec.md\n");
}

/* Parses argv into o. Returns -1 after printing a usage error, 1 when
 * --help/--version was handled, 0 to go on. */
static int parse_args(int argc, char **argv, cli_opts *o, FILE *out, FILE *err) {
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help(out);
            return 1;
        } else if (strcmp(a, "--version") == 0) {
            fprintf(out, "dngen %s\n", DNGEN_VERSION);
            return 1;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (i + 1 >= argc) {
                fprintf(err, "dngen: %s needs a file name\n", a);
                return -1;
            }
            o->output = argv[++i];
        } else if (strcmp(a, "--check") == 0) {
            o->check_only = 1;
        } else if (strcmp(a, "--standalone") == 0) {
            o->standalone = 1;
        } else if (strcmp(a, "--inference") == 0) {
            o->inference = 1;
        } else if (strcmp(a, "--mpi") == 0) {
            o->mpi = 1;
        } else if (strcmp(a, "--weights") == 0 || strcmp(a, "--target") == 0) {
            if (i + 1 >= argc) {
                fprintf(err, "dngen: %s needs an argument\n", a);
                return -1;
            }
            const char *v = argv[++i];
            if (a[2] == 'w') {
                o->weights = v;
            } else if (strcmp(v, "portable") == 0) {
                o->target = DN_TARGET_PORTABLE;
            } else if (strcmp(v, "native") == 0) {
                o->target = DN_TARGET_NATIVE;
            } else if (strcmp(v, "x86-64-v3") == 0) {
                o->target = DN_TARGET_X86_64_V3;
            } else if (strcmp(v, "generic") == 0) {
                o->target = DN_TARGET_GENERIC;
            } else {
                fprintf(err, "dngen: unknown --target '%s' (portable, native, x86-64-v3, generic)\n", v);
                return -1;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(err, "dngen: unknown option '%s'\n", a);
            print_usage(err);
            return -1;
        } else if (o->spec) {
            fprintf(err, "dngen: more than one spec given ('%s' and '%s')\n", o->spec, a);
            return -1;
        } else {
            o->spec = a;
        }
    }
    if (!o->spec) {
        fprintf(err, "dngen: no spec file given\n");
        print_usage(err);
        return -1;
    }
    if (o->mpi && (o->standalone || o->inference)) {
        fprintf(err, "dngen: --mpi goes with neither --standalone nor --inference (it links libdnrt_mpi)\n");
        return -1;
    }
    if (o->inference != (o->weights != NULL)) {
        fprintf(err, "dngen: --inference and --weights FILE go together\n");
        return -1;
    }
    if (!o->output && !o->check_only) {
        fprintf(err, "dngen: no output given: use -o OUT.c (or -o - for standard output, --check to validate only)\n");
        return -1;
    }
    return 0;
}

int dngen_load_spec(const char *path, dn_spec *spec, FILE *err) {
    dn_diag d;
    dn_diag_init(&d, err, path);
    int r = dn_spec_load(path, spec, &d);
    if (r == -2)
        return DNGEN_EXIT_USAGE; /* unreadable file */
    if (r != 0) {
        fprintf(err, "%s: %d error%s\n", path, d.n_errors, d.n_errors == 1 ? "" : "s");
        return DNGEN_EXIT_INVALID_SPEC;
    }
    return DNGEN_EXIT_OK;
}

/* Writes the generated text to o->output. Returns an exit status. */
static int write_output(const cli_opts *o, const dn_buf *text, FILE *out, FILE *err) {
    if (strcmp(o->output, "-") == 0) {
        if (fwrite(text->data, 1, text->len, out) != text->len || fflush(out) != 0) {
            fprintf(err, "dngen: error writing to standard output\n");
            return DNGEN_EXIT_USAGE;
        }
        return DNGEN_EXIT_OK;
    }
    char msg[DN_ERR_MAX];
    if (dn_write_file_atomic(o->output, text->data, text->len, msg) != 0) {
        fprintf(err, "dngen: %s\n", msg);
        return DNGEN_EXIT_USAGE;
    }
    return DNGEN_EXIT_OK;
}

int dngen_main(int argc, char **argv, FILE *out, FILE *err) {
    if (argc >= 2 && strcmp(argv[1], "plot") == 0) return dngen_plot_main(argc - 1, argv + 1, out, err);
    if (argc >= 2 && strcmp(argv[1], "sweep") == 0) return dngen_sweep_main(argc - 1, argv + 1, out, err);
    if (argc >= 2 && strcmp(argv[1], "summary") == 0) return dngen_summary_main(argc - 1, argv + 1, out, err);

    cli_opts o;
    int r = parse_args(argc, argv, &o, out, err);
    if (r != 0) return r > 0 ? DNGEN_EXIT_OK : DNGEN_EXIT_USAGE;

    dn_spec *spec = calloc(1, sizeof *spec);
    if (!spec) {
        fprintf(err, "dngen: out of memory\n");
        return DNGEN_EXIT_USAGE;
    }
    int status = dngen_load_spec(o.spec, spec, err);
    if (status == DNGEN_EXIT_OK && !o.check_only) {
        dn_buf text = {0};
        dn_emit_opts eo = {.standalone = o.standalone, .target = o.target, .mpi = o.mpi};
        dn_weights w = {0};
        if (o.inference && dn_weights_load(o.weights, spec, &w, err) != 0) {
            status = DNGEN_EXIT_USAGE;
        } else if ((o.inference ? dn_emit_predictor(spec, w.params, w.hash,
                                                    &(dn_predictor_data){w.shift, w.scale, w.n_classes, w.class_names},
                                                    &eo, &text)
                                : dn_emit_trainer(spec, &eo, &text)) != 0) {
            fprintf(err, "dngen: internal error: out of memory or missing embedded template\n");
            status = DNGEN_EXIT_USAGE;
        } else {
            status = write_output(&o, &text, out, err);
        }
        dn_weights_free(&w);
        dn_buf_free(&text);
    }
    free(spec);
    return status;
}
