/* dn_shard.c - shares of a batch as nodes of the chunk tree (dn_shard.h). */
#include "dn_shard.h"

#include <stdlib.h>

int dn_shard_init(dn_shard *s, int ranks) {
    s->ranks = ranks;
    s->parts = 0;
    s->first = calloc((size_t)ranks + 1, sizeof(int));
    s->split = calloc((size_t)ranks, sizeof(int));
    s->alive = calloc((size_t)ranks, sizeof(int));
    if (!s->first || !s->split || !s->alive) {
        dn_shard_free(s);
        return -1;
    }
    return 0;
}

void dn_shard_free(dn_shard *s) {
    free(s->first);
    free(s->split);
    free(s->alive);
    s->first = s->split = s->alive = NULL;
}

/* The largest power of two below size (size >= 2): where a node splits. */
static int split_point(int size) {
    int m = 1;
    while (2 * m < size) m *= 2;
    return m;
}

void dn_shard_plan(dn_shard *s, int n) {
    const int chunks = (n + DN_SHARD_CHUNK - 1) / DN_SHARD_CHUNK;
    s->parts = chunks > 0 ? 1 : 0;
    s->first[0] = 0;
    s->first[1] = chunks;
    while (s->parts < s->ranks) {
        int at = -1, best = 1;
        for (int i = 0; i < s->parts; i++) /* the largest share, leftmost first */
            if (s->first[i + 1] - s->first[i] > best) {
                best = s->first[i + 1] - s->first[i];
                at = i;
            }
        if (at < 0)
            break; /* every share is one chunk */
        for (int i = s->parts; i > at; i--) s->first[i + 1] = s->first[i];
        s->first[at + 1] = s->first[at] + split_point(best);
        s->split[s->parts - 1] = at;
        s->parts++;
    }
    for (int i = s->parts; i < s->ranks; i++) s->first[i + 1] = s->first[s->parts];
}

void dn_shard_rows(const dn_shard *s, int n, int r, int *lo, int *hi) {
    int a = s->first[r] * DN_SHARD_CHUNK, b = s->first[r + 1] * DN_SHARD_CHUNK;
    *lo = a < n ? a : n;
    *hi = b < n ? b : n;
}

/* The combination for values of type T: the splits undone last first, each
 * parent = left + right (the kernels' dn_tree order). */
#define DN_SHARD_COMBINE(name, T)                                                  \
    void name(dn_shard *s, T *v, size_t stride, size_t len) {                      \
        int live = s->parts;                                                       \
        for (int i = 0; i < live; i++) s->alive[i] = i;                            \
        for (int k = s->parts - 2; k >= 0; k--) {                                  \
            const int at = s->split[k];                                            \
            T *left = v + (size_t)s->alive[at] * stride;                           \
            const T *right = v + (size_t)s->alive[at + 1] * stride;                \
            for (size_t j = 0; j < len; j++) left[j] = left[j] + right[j];         \
            for (int i = at + 1; i + 1 < live; i++) s->alive[i] = s->alive[i + 1]; \
            live--;                                                                \
        }                                                                          \
    }
DN_SHARD_COMBINE(dn_shard_combine, float)
DN_SHARD_COMBINE(dn_shard_combine_d, double)
