/* diag.c - placeholder; being written. */
#include "spec.h"
