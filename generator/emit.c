/* emit.c - placeholder; being written. */
#include "spec.h"
#include <string.h>
#include "embedded.h"
const dn_embedded_file *dn_embedded_find(const char *name) {
    for (const dn_embedded_file *f = dn_embedded_files; f->name; f++)
        if (strcmp(f->name, name) == 0) return f;
    return NULL;
}
