/* yaml_tree.c - placeholder; being written. */
#include "spec.h"
