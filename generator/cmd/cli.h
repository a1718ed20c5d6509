/* cli.h - the dngen command line, callable in-process by tests. */
#ifndef DNGEN_CLI_H
#define DNGEN_CLI_H
#include <stdio.h>

#include "spec.h"

/* Exit statuses of dngen. */
enum { DNGEN_EXIT_OK = 0, DNGEN_EXIT_INVALID_SPEC = 1, DNGEN_EXIT_USAGE = 2 };

/* Runs dngen with argv; normal output to `out`, diagnostics to `err`.
 * Returns the exit status. */
int dngen_main(int argc, char **argv, FILE *out, FILE *err);

/* Loads and validates the spec file at path into *spec as every command
 * that reads a spec does: diagnostics to err, then "PATH: N errors".
 * Returns DNGEN_EXIT_OK, DNGEN_EXIT_INVALID_SPEC, or DNGEN_EXIT_USAGE when
 * the file cannot be read. */
int dngen_load_spec(const char *path, dn_spec *spec, FILE *err);

#endif
