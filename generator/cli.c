/* cli.c - placeholder; being written. */
#include "spec.h"
#include "cli.h"
int dngen_main(int argc, char **argv, FILE *out, FILE *err) { (void)argc; (void)argv; (void)out; fprintf(err, "not yet\n"); return 2; }
