/* cli.h - the dngen command line, callable in-process by tests. */
#ifndef DNGEN_CLI_H
#define DNGEN_CLI_H
#include <stdio.h>

/* Exit statuses of dngen. */
enum { DNGEN_EXIT_OK = 0, DNGEN_EXIT_INVALID_SPEC = 1, DNGEN_EXIT_USAGE = 2 };

/* Runs dngen with argv; normal output to `out`, diagnostics to `err`.
 * Returns the exit status. */
int dngen_main(int argc, char **argv, FILE *out, FILE *err);

#endif
