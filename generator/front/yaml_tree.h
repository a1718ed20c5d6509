/* yaml_tree.h - a small YAML node tree that remembers where each node is.
 *
 * The validator never sees libyaml: it walks this tree, whose nodes carry
 * 1-based line:col positions for diagnostics. Only the YAML subset a spec
 * needs is kept: scalars (with "was it quoted?"), sequences and mappings,
 * one document, no anchors/aliases/tags. */
#ifndef DNGEN_YAML_TREE_H
#define DNGEN_YAML_TREE_H

#include <stddef.h>

#include "spec.h"

typedef enum {
    DN_Y_INVALID, /* placeholder for a rejected construct (alias); already reported */
    DN_Y_SCALAR,
    DN_Y_SEQ,
    DN_Y_MAP
} dn_ykind;

typedef struct dn_ynode dn_ynode;

typedef struct {
    dn_ynode *key;
    dn_ynode *value;
} dn_ypair;

struct dn_ynode {
    dn_ykind kind;
    dn_loc loc;          /* 1-based start of the node */
    /* DN_Y_SCALAR */
    char *text;          /* NUL-terminated copy; may contain NULs from "\0" escapes */
    size_t len;          /* bytes in text, excluding the terminator */
    int quoted;          /* 1 unless plain style: quoted and block scalars are strings */
    /* DN_Y_SEQ */
    dn_ynode **items;
    size_t n_items;
    /* DN_Y_MAP (pairs in file order, duplicates kept) */
    dn_ypair *pairs;
    size_t n_pairs;
};

/* Maximum nesting of sequences/mappings; deeper input is rejected. */
#define DN_YAML_MAX_DEPTH 64

/* Parses YAML text (len bytes, need not be NUL-terminated) into a tree.
 * Syntax errors, multiple documents, an empty document ("spec is empty"),
 * anchors, aliases and tags are reported through d.
 * Returns the root, or NULL when nothing usable could be built (an error
 * was reported). A non-NULL root may still come with reported errors;
 * callers compare d->n_errors. Free with dn_ynode_free. */
dn_ynode *dn_yaml_load(const char *text, size_t len, dn_diag *d);

/* Frees a node and everything below it. NULL is allowed. */
void dn_ynode_free(dn_ynode *n);

#endif
