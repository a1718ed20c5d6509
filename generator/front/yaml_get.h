/* yaml_get.h - typed access to dn_ynode values, reporting through dn_diag.
 *
 * Every getter either stores a checked value and returns 0, or reports one
 * error located at the offending node and returns -1 (DN_Y_INVALID nodes
 * fail silently: their error was reported when the tree was built).
 * Messages follow the front end's style: lowercase, no trailing period,
 * quoting the bad value. */
#ifndef DNGEN_YAML_GET_H
#define DNGEN_YAML_GET_H

#include <stddef.h>
#include <stdint.h>

#include "spec.h"
#include "yaml_tree.h"

/* Size of the buffers dn_yquote/dn_ydescribe write into. */
#define DN_YTEXT_BUF 64

/* A printable, truncated copy of s[0..len) for messages (control bytes
 * become '?', long text ends in "..."). Returns buf. */
const char *dn_yquote(const char *s, size_t len, char buf[DN_YTEXT_BUF]);

/* What a node is, for "got ..." in messages: "a mapping", "a sequence",
 * "a string" (quoted scalar), "an empty value", or 'text' for a plain scalar. */
const char *dn_ydescribe(const dn_ynode *n, char buf[DN_YTEXT_BUF]);

/* Requires n to be a mapping or a sequence: "expected a mapping, got ...". */
int dn_yexpect(dn_diag *d, const dn_ynode *n, dn_ykind kind);

/* A plain decimal integer (optional '-', digits only) in [lo, hi]:
 * "expected an integer, got '1.5'", "units must be in [1, 16777216], got 0". */
int dn_yget_int(dn_diag *d, const dn_ynode *n, const char *key, long long lo, long long hi,
                long long *out);

/* A plain decimal integer in [0, 2^64-1]. */
int dn_yget_u64(dn_diag *d, const dn_ynode *n, const char *key, uint64_t *out);

/* A finite plain number (integer or decimal/exponent form):
 * "expected a number, got a string", "lr must be a finite number, got .inf". */
int dn_yget_number(dn_diag *d, const dn_ynode *n, const char *key, double *out);

/* A scalar's text copied into buf (cap bytes incl. terminator). Rejects
 * non-scalars, embedded NULs, text longer than cap-1, and (unless
 * allow_empty) empty text: "dir must not be empty". */
int dn_yget_string(dn_diag *d, const dn_ynode *n, const char *key, char *buf, size_t cap,
                   int allow_empty);

/* A C identifier (not a keyword, at most DN_NAME_MAX chars) into buf of
 * DN_NAME_MAX + 1 bytes. `what` names it in messages ("layer name"). */
int dn_yget_ident(dn_diag *d, const dn_ynode *n, const char *what, char *buf);

/* One of names[0..count) (exact spelling); index in *out. Otherwise
 * "unknown activation 'rleu'; did you mean 'relu'? (allowed: ...)". */
int dn_yget_enum(dn_diag *d, const dn_ynode *n, const char *what, const char *const *names,
                 size_t count, int *out);

/* True when s is a C11 or C23 keyword. */
int dn_is_c_keyword(const char *s);

/* The entry of names closest to word (case-insensitive optimal string
 * alignment distance, at most 1 for words of <= 3 chars, else 2), or NULL. */
const char *dn_ysuggest(const char *word, const char *const *names, size_t count);

/* One recognised key of a mapping: key/value NULL when the key is absent;
 * misspelled is an unknown key for which this one was suggested. */
typedef struct {
    const dn_ynode *key;
    const dn_ynode *value;
    const dn_ynode *misspelled;
} dn_yfield;

/* Sorts the pairs of mapping `map` into fields[i] by allowed[i]. Reports
 * non-scalar keys, unknown keys (with a suggestion and the allowed list;
 * `where` completes "unknown key 'x' ...", e.g. "in layer") and duplicate
 * keys (error at the second, note at the first; the first is kept).
 * Returns -1 only if map is not a mapping; fields are then all absent. */
int dn_ymap_fields(dn_diag *d, const dn_ynode *map, const char *where,
                   const char *const *allowed, size_t n_allowed, dn_yfield *fields);

/* Reports "missing required key 'units' in layer" at the mapping when
 * field f is absent, unless a misspelling of it was already reported.
 * Returns 0 when present, -1 when absent. */
int dn_yrequire(dn_diag *d, const dn_ynode *map, const dn_yfield *f, const char *key,
                const char *where);

#endif
