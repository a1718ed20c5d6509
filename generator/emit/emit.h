/* emit.h - turns a validated dn_spec into the C source of a trainer or a
 * predictor: dn_plan_build (plan/plan.h) resolves the network, then the
 * model emitter (model.c) expands the templates and walks the plan's ops,
 * each through its kind's module (kind.h: dense.c, batchnorm.c, dropout.c),
 * with the loss (loss.c) and the shared kernel pieces (kernels.c) beside.
 *
 * Emitters trust the plan completely (see spec.h and plan.h).
 */
#ifndef DNGEN_EMIT_H
#define DNGEN_EMIT_H

#include <stdint.h>

#include "spec.h"
#include "text.h"

/* ---- entry points ------------------------------------------------------------ */

/* The -march of the banner's build command. The default, portable, has
 * none: the program carries kernels for several CPUs and picks at run time
 * (templates/prelude.c.in, DN_DISPATCH). */
typedef enum { DN_TARGET_PORTABLE, DN_TARGET_NATIVE, DN_TARGET_X86_64_V3, DN_TARGET_GENERIC } dn_target;

typedef struct {
    int standalone;   /* paste the runtime into the output */
    int inference;    /* an inference-only program (see dn_emit_predictor) */
    dn_target target; /* the -march the banner's build command uses */
    int mpi;          /* a distributed trainer: main is dn_main_mpi (libdnrt_mpi, mpicc) */
} dn_emit_opts;

/* Writes the complete trainer source for `s` into `out` (appending).
 * Returns 0, or -1 when out of memory or an embedded file is missing
 * (both internal failures). */
int dn_emit_trainer(const dn_spec *s, const dn_emit_opts *o, dn_buf *out);

/* Writes an inference-only program for `s` with the trained parameters
 * `params` (s->n_params floats, spec layout; file hash `weights_hash`) as const
 * data: eval mode, dropout kept only for MC dropout, no backward pass, no
 * optimizer; always standalone. `data` (NULL: none) is the scaling and the
 * class names of csv and npy data. Returns 0, or -1 as dn_emit_trainer. */
/* What a predictor of csv or npy data embeds besides its weights. */
typedef struct {
    const float *shift, *scale;    /* [input] the training rows' feature scaling */
    int n_classes;                 /* class names (n_classes of them), or 0 */
    char *const *class_names;
} dn_predictor_data;

int dn_emit_predictor(const dn_spec *s, const float *params, uint64_t weights_hash,
                      const dn_predictor_data *data, const dn_emit_opts *o, dn_buf *out);

#endif
