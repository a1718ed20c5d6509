/* dn_idx.c - placeholder; being written. */
#include "dn_runtime.h"
