/* dn_train.c - placeholder; being written. */
#include "dn_runtime.h"
