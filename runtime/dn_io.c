/* dn_io.c - placeholder; being written. */
#include "dn_runtime.h"
