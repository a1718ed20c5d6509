/* sweep.h - `dngen sweep`: grid or random search over dropout rates.
 *
 * Each variant is the spec validated again with its dropout rates as
 * overrides (dn_spec_parse_with); then a standalone trainer is emitted and
 * compiled, and it is trained with the
 * user's trainer options; the metrics CSVs are then summarized in a table,
 * DIR/sweep.csv and one combined chart DIR/sweep.svg. See docs/sweep.md. */
#ifndef DNGEN_SWEEP_H
#define DNGEN_SWEEP_H
#include <stdio.h>

/* Exit status when some variant failed to compile or train (the others
 * still ran). The other statuses are the CLI's: 0 ok, 1 invalid spec,
 * 2 usage or I/O error. */
enum { DNGEN_SWEEP_EXIT_VARIANT = 3 };

#define DNGEN_SWEEP_MAX_VARIANTS 1000 /* per sweep, grid or random */

/* Runs `dngen sweep` with the arguments after "sweep" (argv[0] is "sweep").
 * Progress, the trainers' output and the table go to `out`, diagnostics and
 * compiler messages to `err`. Children are started with posix_spawn (no
 * shell). Returns the exit status. */
int dngen_sweep_main(int argc, char **argv, FILE *out, FILE *err);

#endif
