/* dn_checkpoint.c - placeholder; being written. */
#include "dn_runtime.h"
