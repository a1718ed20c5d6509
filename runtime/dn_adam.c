/* dn_adam.c - placeholder; being written. */
#include "dn_runtime.h"
