/* plot.h - `dngen plot`: training curves from metrics CSV files as a standalone SVG. */
#ifndef DNGEN_PLOT_H
#define DNGEN_PLOT_H
#include <stdio.h>

/* Runs `dngen plot` with the arguments after "plot" (argv[0] is "plot").
 * Returns an exit status (0 ok, 1 bad input file, 2 usage or output error). */
int dngen_plot_main(int argc, char **argv, FILE *out, FILE *err);

#endif
