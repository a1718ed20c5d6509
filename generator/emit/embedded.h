/* embedded.h - templates and runtime sources compiled into dngen (see embed.c). */
#ifndef DNGEN_EMBEDDED_H
#define DNGEN_EMBEDDED_H
#include <stddef.h>

typedef struct {
    const char *name; /* path relative to the source tree: "templates/trainer.c.in" */
    const char *data; /* contents, NUL-terminated */
    size_t len;       /* bytes, without the NUL */
} dn_embedded_file;

/* In build order; the last entry has name == NULL. */
extern const dn_embedded_file dn_embedded_files[];

/* The embedded file called `name`, or NULL. */
const dn_embedded_file *dn_embedded_find(const char *name);

#endif
