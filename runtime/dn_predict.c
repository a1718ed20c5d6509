/* dn_predict.c - placeholder; being written. */
#include "dn_runtime.h"
