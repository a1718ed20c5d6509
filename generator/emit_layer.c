/* emit_layer.c - placeholder; being written. */
#include "spec.h"
