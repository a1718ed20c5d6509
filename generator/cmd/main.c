/* main.c - the dngen command: a thin shell around dngen_main() (cli.c). */
#include <stdio.h>

#include "cli.h"

int main(int argc, char **argv) { return dngen_main(argc, argv, stdout, stderr); }
