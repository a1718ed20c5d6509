/* summary.h - `dngen summary SPEC`: the network as a table, Keras-style.
 *
 * One row per op of the plan (plan/plan.h; a dense layer with batch norm is
 * two rows, `fc1` and `fc1_bn`, and input dropout is the `input` row) plus
 * one per spec layer that has no op (flatten): name, type, output shape,
 * dropout, trained parameters, and MFLOP per sample forward and per
 * training step (forward + backward; per sample and for the spec's batch),
 * then the totals and the memory of a training run. See docs/summary.md. */
#ifndef DNGEN_SUMMARY_H
#define DNGEN_SUMMARY_H
#include <stdio.h>

#include "plan.h"

/* Writes the summary of a built plan (its spec is p->spec) to out.
 * Returns 0, or -1 when out of memory (nothing written). */
int dngen_summary_print(const dn_plan *p, FILE *out);

/* Runs `dngen summary` with the arguments after "summary" (argv[0] is
 * "summary"). Returns the CLI's exit status: 0, 1 invalid spec (the same
 * diagnostics as generation), 2 usage or I/O error. */
int dngen_summary_main(int argc, char **argv, FILE *out, FILE *err);

#endif
