/* dn_shard.h - how the processes of an MPI job share a batch.
 *
 * Every sum over a batch's rows in the generated kernels is a tree over the
 * batch's chunks of DN_SHARD_CHUNK rows (the prelude's DN_CHUNK): each node
 * splits at the largest power of two below its size, left subtree first.
 * A share is a node of that tree, so a process's kernels compute exactly that
 * node's sums, and combining the shares' sums along the top of the tree gives
 * the bits one process gets for the whole batch. The shares come from
 * splitting the root, then always the largest share (the leftmost of equal
 * ones), until there is one per process or every share is one chunk; the
 * combination undoes the splits in reverse. Nothing here needs MPI.
 */
#ifndef DN_SHARD_H
#define DN_SHARD_H

#include <stddef.h>

#define DN_SHARD_CHUNK 16

typedef struct {
    int ranks;  /* processes */
    int parts;  /* shares with rows in the batch planned: min(ranks, chunks) */
    int *first; /* [ranks + 1]: share r holds chunks [first[r], first[r + 1]); empty for r >= parts */
    int *split; /* [ranks]: the splits in the order made (parts - 1), each the position of its left share */
    int *alive; /* [ranks]: scratch of dn_shard_combine */
} dn_shard;

/* Allocates the tables for `ranks` processes (>= 1). Returns 0, or -1 when
 * out of memory (nothing to free then). */
int dn_shard_init(dn_shard *s, int ranks);
void dn_shard_free(dn_shard *s);

/* Shares a batch of n rows (n >= 0). */
void dn_shard_plan(dn_shard *s, int n);

/* The rows [*lo, *hi) of share r (of the batch of n rows last planned). */
void dn_shard_rows(const dn_shard *s, int n, int r, int *lo, int *hi);

/* Combines the shares' sums along the top of the tree: v holds s->parts
 * vectors of len values, share i's at v + i * stride; the result ends in
 * share 0's. */
void dn_shard_combine(dn_shard *s, float *v, size_t stride, size_t len);
void dn_shard_combine_d(dn_shard *s, double *v, size_t stride, size_t len);

#endif
