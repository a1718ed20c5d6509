/* dn_table.c - what every dataset table shares, whichever reader made it
 * (dn_data_csv.c, dn_npy.c). */
#include "dn_runtime.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Frees the strings of a NULL-or-array of n names, and the array. */
static void dn_tab_free_names(char **names, size_t n) {
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

void dn_table_free(dn_table *t) {
    dn_tab_free_names(t->class_names, (size_t)(t->class_names ? t->n_classes : 0));
    dn_tab_free_names(t->feature_names, t->feature_names ? t->features : 0);
    free(t->x_own);
    free(t->y);
    free(t->t);
    if (t->map)
        munmap(t->map, t->map_len);
    memset(t, 0, sizeof *t);
}
