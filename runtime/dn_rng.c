/* dn_rng.c - placeholder; being written. */
#include "dn_runtime.h"
