/* plot.c - placeholder; being written. */
#include "plot.h"
