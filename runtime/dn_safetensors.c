/* dn_safetensors.c - placeholder; being written. */
#include "dn_runtime.h"
