/* mpi_reduce.c - how much a reduction of gradients that gives the same bits
 * at any process count costs against MPI_Allreduce (issue 25; the design is
 * docs/distributed.md). Standalone: no generated code, no runtime.
 *
 *   mpicc -std=c11 -O3 -march=native bench/mpi_reduce.c -o mpi_reduce
 *   mpirun --allow-run-as-root --oversubscribe -np N ./mpi_reduce \
 *       [--floats P] [--batch B] [--chunk R] [--seg S] [--reps K] [--kernel]
 *
 * The model of a training step: the global batch of B rows is cut into
 * C = B / R chunks of R rows. Rank r of N owns the contiguous chunks
 * [r*C/N, (r+1)*C/N) and has computed one partial-gradient vector of P floats
 * per chunk (here: made-up values, a pure function of chunk and index, with
 * exponents spread over 2^-8..2^7 so that the order of additions shows in
 * the bits). The reduction leaves on every rank the sum of the C partials.
 *
 * The deterministic sum is defined as the partials added in chunk order,
 * ((c0 + c1) + c2) + ..., each partial a vector of its own. Nothing in that
 * definition depends on N: the ranks only decide where each addition runs.
 *
 *   allreduce  each rank adds its own partials in order, then
 *              MPI_Allreduce(MPI_SUM). NOT reproducible across N: with N
 *              ranks the sum is bracketed as (c0+c1) + (c2+c3) at N = 2,
 *              c0 + c1 + (c2+c3) or otherwise at N = 3, and the order in
 *              which the N rank sums meet is the collective algorithm's
 *              (recursive doubling, ring, Rabenseifner's reduce-scatter,
 *              chosen by message size and N, and by the MPI library and its
 *              tuning): float addition is not associative, so the bits move
 *              with N. The MPI standard only recommends, as advice to
 *              implementors, the same result for the same arguments in the
 *              same order, i.e. the same N and data layout.
 *   gather     MPI_Allgatherv of all chunk partials, then every rank adds the
 *              C partials in chunk order itself. Simple; each rank receives
 *              (C - own) * P floats and does C - 1 vector additions.
 *   chain      a pipelined chain in segments of S floats: rank 0 adds its
 *              partials and sends the running sum to rank 1, which adds its
 *              own onto it in order and passes it on, ...; rank N-1 holds the
 *              final segment and starts a second chain that copies it
 *              N-1 -> 0 -> 1 -> ... -> N-2. Every rank sends at most 2 P
 *              floats per step (a ring allreduce: 2 (N-1)/N P), and the
 *              segments keep all links busy at once.
 *   scatter    a reduce-scatter by hand: the vector is cut into N slices;
 *              rank j receives slice j of every chunk partial (one
 *              MPI_Alltoallw, strided types, no packing), adds the C slices
 *              in chunk order, and an MPI_Allgatherv spreads the slices'
 *              sums. With one chunk per rank it sends what a ring
 *              allreduce does, 2 (N-1)/N P floats; and the optimizer can
 *              run on the slice alone (each rank updates 1/N of the
 *              parameters, then the allgather spreads parameters instead).
 *              But a rank that owns m chunks sends m slices: the linear
 *              order cannot be summed ahead on any rank but rank 0.
 *   tree       another definition of the sum, also independent of N: a
 *              fixed pairwise tree over the C chunks (split at the largest
 *              power of two below the node's size). Each rank sums the
 *              largest whole subtrees inside its chunk range (one when N is
 *              a power of two dividing C; at most about 2 log2 C), sends slice
 *              j of each to rank j, which evaluates the top of the tree over
 *              its slice; an Allgatherv spreads the slices. Its bits differ
 *              from the linear order's, but are the same at every N.
 *
 * Each design is timed over K repetitions (after a barrier; the time of a
 * repetition is the slowest rank's); prints the median and the bytes each
 * rank sends per reduction, and a checksum (FNV-1a of the result's bytes)
 * that bench/mpi_reduce.sh compares across N. The program itself checks
 * that every rank holds the same bytes and that gather, chain and scatter
 * (the linear order's three) agree.
 *
 * --kernel (on one process) times the weight gradient of a 784 x 256 layer
 * (the seed's fc1) at batch B four ways: one running sum over the B rows;
 * the linear chunk order in registers (each chunk summed from zero, then
 * added to the tile's total); the chunk partials stored as vectors, then
 * summed in order; the tree order in registers (C a power of two). */
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int rank, nranks;

static void die(const char *what) {
    fprintf(stderr, "mpi_reduce: rank %d: %s\n", rank, what);
    MPI_Abort(MPI_COMM_WORLD, 2);
}

static float *alloc_floats(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)) != 0) die("out of memory");
    memset(p, 0, (n ? n : 1) * sizeof(float));
    return p;
}

/* The made-up partial of chunk c at index i: a pure function of (c, i). */
static float partial_value(int c, size_t i) {
    uint64_t z = ((uint64_t)(unsigned)c << 40) ^ (uint64_t)i;
    z += 0x9e3779b97f4a7c15u; /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    float u = (float)(z >> 40) * (1.0f / 16777216.0f) - 0.5f; /* [-0.5, 0.5) */
    int e = (int)((z >> 8) & 15) - 8;                          /* 2^-8 .. 2^7 */
    return e >= 0 ? u * (float)(1 << e) : u / (float)(1 << -e);
}

static uint64_t fnv1a(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3u;
    return h;
}

static double now(void) { return MPI_Wtime(); }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* First chunk of rank r when C chunks are split over N ranks. */
static int first_chunk(int r, int C, int N) { return (int)((int64_t)r * C / N); }

/* acc[0, n) += src[0, n): one vector addition, lane by lane. */
static void add_into(float *restrict acc, const float *restrict src, size_t n) {
    for (size_t i = 0; i < n; i++) acc[i] += src[i];
}

/* sum = mine[0] + mine[1] + ... in order over [lo, lo + n); k >= 1. */
static void sum_own(float *restrict sum, float *const *mine, int k, size_t lo, size_t n) {
    memcpy(sum + lo, mine[0] + lo, n * sizeof(float));
    for (int j = 1; j < k; j++) add_into(sum + lo, mine[j] + lo, n);
}

/* ---- the reductions; each leaves the total in out[0, P) ---------------- */

/* Rank sums in chunk order, then MPI's sum: not reproducible across N. */
static void red_allreduce(float *out, float *const *mine, int k, size_t P) {
    sum_own(out, mine, k, 0, P);
    MPI_Allreduce(MPI_IN_PLACE, out, (int)P, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

/* All partials everywhere (all[c] is chunk c's, contiguous), then the
 * ordered sum on every rank. counts/displs in floats. */
static void red_gather(float *out, float *all, int C, size_t P, const int *counts,
                       const int *displs) {
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all, counts, displs, MPI_FLOAT,
                   MPI_COMM_WORLD);
    memcpy(out, all, P * sizeof(float));
    for (int c = 1; c < C; c++) add_into(out, all + (size_t)c * P, P);
}

/* The pipelined chain: reduce 0 -> 1 -> ... -> N-1 segment by segment, then
 * copy N-1 -> 0 -> ... -> N-2. Tags: s for the running sum of segment s,
 * nseg + s for its final value. reqs holds 2 * nseg requests. */
static void red_chain(float *out, float *const *mine, int k, size_t P, size_t seg,
                      MPI_Request *reqs) {
    int nseg = (int)((P + seg - 1) / seg);
    int prev = rank - 1, next = rank + 1, last = nranks - 1;
    if (nranks == 1) {
        sum_own(out, mine, k, 0, P);
        return;
    }
    for (int s = 0; s < 2 * nseg; s++) reqs[s] = MPI_REQUEST_NULL;
    for (int s = 0; s < nseg; s++) { /* the reduction chain */
        size_t lo = (size_t)s * seg, n = P - lo < seg ? P - lo : seg;
        int j = 0;
        if (rank == 0) {
            sum_own(out, mine, k, lo, n);
            j = k;
        } else {
            MPI_Recv(out + lo, (int)n, MPI_FLOAT, prev, s, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
        for (; j < k; j++) add_into(out + lo, mine[j] + lo, n);
        int to = rank == last ? 0 : next; /* the last rank starts the copy */
        MPI_Isend(out + lo, (int)n, MPI_FLOAT, to, rank == last ? nseg + s : s, MPI_COMM_WORLD,
                  &reqs[s]);
    }
    if (rank != last) { /* the copy chain: last -> 0 -> 1 -> ... -> last-1 */
        int from = rank == 0 ? last : prev;
        for (int s = 0; s < nseg; s++) {
            size_t lo = (size_t)s * seg, n = P - lo < seg ? P - lo : seg;
            MPI_Wait(&reqs[s], MPI_STATUS_IGNORE); /* our running sum has left */
            MPI_Recv(out + lo, (int)n, MPI_FLOAT, from, nseg + s, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
            if (next != last)
                MPI_Isend(out + lo, (int)n, MPI_FLOAT, next, nseg + s, MPI_COMM_WORLD,
                          &reqs[nseg + s]);
        }
    }
    MPI_Waitall(2 * nseg, reqs, MPI_STATUSES_IGNORE);
}

/* Bytes this rank sends per reduction in the chain (exact): the running sum
 * leaves every rank but the last; the copy leaves the last rank and every
 * other rank except the one before the last. */
static double chain_bytes(size_t P) {
    int last = nranks - 1;
    if (nranks == 1) return 0;
    int sends = (rank != last) + (rank == last || rank != last - 1);
    return (double)sends * (double)P * 4;
}

/* Slice j of P floats over N ranks: [slice_lo(j), slice_lo(j + 1)). */
static size_t slice_lo(int j, size_t P) { return (size_t)j * P / (size_t)nranks; }

/* The scatter design. mine0 is the first own partial (the others follow,
 * P floats apart); recv holds C slices of this rank's slice length; the
 * types, counts and displacements are set up in main. */
static void red_scatter(float *out, const float *mine0, float *recv, int C, size_t P,
                        const int *ones, const int *sdisp, const MPI_Datatype *st,
                        const int *rcounts, const int *rdisp_b, const MPI_Datatype *rt,
                        const int *ocounts, const int *odispls) {
    size_t lo = slice_lo(rank, P), n = slice_lo(rank + 1, P) - lo;
    MPI_Alltoallw(mine0, ones, sdisp, st, recv, rcounts, rdisp_b, rt, MPI_COMM_WORLD);
    float *sum = out + lo; /* chunk c's slice is recv[c * n, (c + 1) * n) */
    memcpy(sum, recv, n * sizeof(float));
    for (int c = 1; c < C; c++) add_into(sum, recv + (size_t)c * n, n);
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, out, ocounts, odispls, MPI_FLOAT,
                   MPI_COMM_WORLD);
}

/* ---- the tree order --------------------------------------------------- */

/* A node of the fixed tree over chunks [lo, hi): a leaf is one chunk; an
 * inner node splits at lo + the largest power of two below hi - lo, so the
 * tree depends on C alone. */
typedef struct {
    int lo, hi;
    const float *v; /* its value over the slice in work */
} tnode;

static int tree_mid(int lo, int hi) {
    int p = 1;
    while (2 * p < hi - lo) p *= 2;
    return lo + p;
}

/* Appends to out the largest tree nodes inside [a, b) (at most about
 * 2 log2 C of them), in chunk order; returns the new count. */
static int tree_cover(int a, int b, int lo, int hi, tnode *out, int n) {
    if (b <= lo || hi <= a) return n;
    if (a <= lo && hi <= b) {
        out[n].lo = lo, out[n].hi = hi, out[n].v = NULL;
        return n + 1;
    }
    n = tree_cover(a, b, lo, tree_mid(lo, hi), out, n);
    return tree_cover(a, b, tree_mid(lo, hi), hi, out, n);
}

/* dst[0, n) = node [lo, hi)'s value: a known node's vector, else left + right
 * (the left into dst, the right into tmp[0], deeper ones further on). */
static void tree_eval(int lo, int hi, float *dst, size_t n, float *const *tmp, const tnode *known,
                      int nknown) {
    for (int q = 0; q < nknown; q++)
        if (known[q].lo == lo && known[q].hi == hi) {
            memcpy(dst, known[q].v, n * sizeof(float));
            return;
        }
    int mid = tree_mid(lo, hi);
    tree_eval(lo, mid, dst, n, tmp + 1, known, nknown);
    tree_eval(mid, hi, tmp[0], n, tmp + 1, known, nknown);
    add_into(dst, tmp[0], n);
}

/* The tree design's state: this rank's nodes (a leaf's value is the
 * chunk's partial itself; an inner node's is computed into vals), the send
 * types (slice j of each node, by absolute address), the receive layout and
 * scratch. */
typedef struct {
    int nmine, nall;           /* this rank's nodes; all ranks' nodes */
    tnode *mine, *all;         /* all: every rank's nodes in chunk order */
    float *vals, *recv, **tmp; /* vals: nmine x P; recv: nall x slice */
    MPI_Datatype *st, *rt;     /* per rank: node slices sent, MPI_FLOAT received */
    int *ones, *sdisp, *rcounts, *rdisp;
} tree_state;

static int tree_depth(int C) {
    int d = 1;
    while ((1 << (d - 1)) < C) d++;
    return d + 1;
}

static void tree_setup(tree_state *T, float *const *part, int c0, int C, size_t P) {
    int maxn = 4 * tree_depth(C) + 4;
    size_t lo = slice_lo(rank, P), n = slice_lo(rank + 1, P) - lo;
    T->mine = malloc((size_t)maxn * sizeof *T->mine);
    T->all = malloc((size_t)nranks * (size_t)maxn * sizeof *T->all);
    T->tmp = malloc((size_t)tree_depth(C) * sizeof *T->tmp);
    T->st = malloc((size_t)nranks * sizeof *T->st);
    T->rt = malloc((size_t)nranks * sizeof *T->rt);
    T->ones = malloc((size_t)nranks * 4 * sizeof(int));
    if (!T->mine || !T->all || !T->tmp || !T->st || !T->rt || !T->ones) die("out of memory");
    T->sdisp = T->ones + nranks, T->rcounts = T->sdisp + nranks, T->rdisp = T->rcounts + nranks;
    T->nmine = tree_cover(first_chunk(rank, C, nranks), first_chunk(rank + 1, C, nranks), 0, C,
                          T->mine, 0);
    T->vals = alloc_floats((size_t)T->nmine * P);
    for (int q = 0; q < T->nmine; q++)
        T->mine[q].v = T->mine[q].hi - T->mine[q].lo == 1 ? part[T->mine[q].lo - c0]
                                                          : T->vals + (size_t)q * P;
    MPI_Aint *addr = malloc((size_t)(T->nmine ? T->nmine : 1) * sizeof *addr);
    if (!addr) die("out of memory");
    T->nall = 0;
    for (int i = 0; i < nranks; i++) {
        int before = T->nall;
        T->nall = tree_cover(first_chunk(i, C, nranks), first_chunk(i + 1, C, nranks), 0, C,
                             T->all, T->nall);
        T->rcounts[i] = (int)((size_t)(T->nall - before) * n);
        T->rdisp[i] = (int)((size_t)before * n * sizeof(float));
    }
    T->recv = alloc_floats((size_t)T->nall * n);
    for (int d = 0; d < tree_depth(C); d++) T->tmp[d] = alloc_floats(P);
    for (int j = 0; j < nranks; j++) {
        size_t jlo = slice_lo(j, P), jn = slice_lo(j + 1, P) - jlo;
        for (int q = 0; q < T->nmine; q++) MPI_Get_address(T->mine[q].v + jlo, &addr[q]);
        MPI_Type_create_hindexed_block(T->nmine, (int)jn, addr, MPI_FLOAT, &T->st[j]);
        MPI_Type_commit(&T->st[j]);
        T->ones[j] = 1;
        T->sdisp[j] = 0; /* from MPI_BOTTOM */
        T->rt[j] = MPI_FLOAT;
    }
    free(addr);
}

/* The tree design: each rank sums its own whole subtrees (in the trainer,
 * inside the kernels; here from the stored partials), slice j of every
 * subtree goes to rank j (Alltoallw), rank j evaluates the top of the tree
 * over its slice, an Allgatherv spreads the slices. With N a power of two
 * dividing C each rank has one subtree and sends what a ring allreduce
 * sends. part[c - c0] is own chunk c's partial. */
static void red_tree(tree_state *T, float *out, float *const *part, int c0, int C, size_t P,
                     const int *ocounts, const int *odispls, tnode *leaves) {
    for (int q = 0; q < T->nmine; q++) { /* own inner subtrees, over the whole vector */
        int lo = T->mine[q].lo, hi = T->mine[q].hi;
        if (hi - lo == 1) continue; /* a leaf is sent from the partial itself */
        for (int c = lo; c < hi; c++) leaves[c - lo] = (tnode){c, c + 1, part[c - c0]};
        tree_eval(lo, hi, T->vals + (size_t)q * P, P, T->tmp, leaves, hi - lo);
    }
    size_t lo = slice_lo(rank, P), n = slice_lo(rank + 1, P) - lo;
    MPI_Alltoallw(MPI_BOTTOM, T->ones, T->sdisp, T->st, T->recv, T->rcounts, T->rdisp, T->rt,
                  MPI_COMM_WORLD);
    for (int q = 0; q < T->nall; q++) T->all[q].v = T->recv + (size_t)q * n;
    tree_eval(0, C, out + lo, n, T->tmp, T->all, T->nall);
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, out, ocounts, odispls, MPI_FLOAT,
                   MPI_COMM_WORLD);
}

/* ---- the single-process kernel comparison ------------------------------ */

typedef float v16 __attribute__((vector_size(64)));
#define BC(x) ((v16){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x})
#define KT 4  /* dW rows per register tile */
#define JT 32 /* dW columns per register tile: 2 vectors */

/* dW[K][J] = sum over rows b of x[b][k] d[b][j], each tile's sum over rows
 * [b0, b1) from zero into acc. */
static inline void tile_rows(v16 acc[KT][2], const float *x, const float *d, int K, int J,
                             int k0, int j0, int b0, int b1) {
    for (int a = 0; a < KT; a++) acc[a][0] = acc[a][1] = BC(0.0f);
    for (int b = b0; b < b1; b++) {
        v16 d0, d1;
        memcpy(&d0, d + (size_t)b * J + j0, 64);
        memcpy(&d1, d + (size_t)b * J + j0 + 16, 64);
        for (int a = 0; a < KT; a++) {
            float xv = x[(size_t)b * K + k0 + a];
            acc[a][0] += BC(xv) * d0;
            acc[a][1] += BC(xv) * d1;
        }
    }
}

static void store_tile(float *dw, v16 acc[KT][2], int J, int k0, int j0) {
    for (int a = 0; a < KT; a++) {
        memcpy(dw + (size_t)(k0 + a) * J + j0, &acc[a][0], 64);
        memcpy(dw + (size_t)(k0 + a) * J + j0 + 16, &acc[a][1], 64);
    }
}

/* mode 0: one running sum; 1: chunk order in registers; 2: chunk partials
 * stored, then summed in order (parts holds C * K * J floats); 3: the tree
 * order in registers, C a power of two: a binary counter of pending
 * subtree sums per tile (((c0 + c1) + (c2 + c3)) for C = 4). */
static void grad_kernel(int mode, float *dw, float *parts, const float *x, const float *d, int B,
                        int R, int K, int J) {
    int C = B / R;
    if (mode == 2) {
        for (int c = 0; c < C; c++)
            for (int k0 = 0; k0 < K; k0 += KT)
                for (int j0 = 0; j0 < J; j0 += JT) {
                    v16 acc[KT][2];
                    tile_rows(acc, x, d, K, J, k0, j0, c * R, (c + 1) * R);
                    store_tile(parts + (size_t)c * K * J, acc, J, k0, j0);
                }
        size_t n = (size_t)K * J;
        memcpy(dw, parts, n * sizeof(float));
        for (int c = 1; c < C; c++) add_into(dw, parts + (size_t)c * n, n);
        return;
    }
    for (int k0 = 0; k0 < K; k0 += KT)
        for (int j0 = 0; j0 < J; j0 += JT) {
            v16 acc[KT][2], tot[KT][2];
            if (mode == 0) {
                tile_rows(acc, x, d, K, J, k0, j0, 0, B);
            } else if (mode == 3) {
                v16 stk[16][KT][2]; /* stk[h]: a pending subtree of 2^h chunks */
                for (int c = 0; c < C; c++) {
                    tile_rows(acc, x, d, K, J, k0, j0, c * R, (c + 1) * R);
                    int h = 0;
                    for (; (c >> h) & 1; h++)
                        for (int a = 0; a < KT; a++)
                            acc[a][0] = stk[h][a][0] + acc[a][0], acc[a][1] = stk[h][a][1] + acc[a][1];
                    memcpy(stk[h], acc, sizeof acc);
                }
            } else {
                tile_rows(acc, x, d, K, J, k0, j0, 0, R);
                for (int c = 1; c < C; c++) {
                    tile_rows(tot, x, d, K, J, k0, j0, c * R, (c + 1) * R);
                    for (int a = 0; a < KT; a++) acc[a][0] += tot[a][0], acc[a][1] += tot[a][1];
                }
            }
            store_tile(dw, acc, J, k0, j0);
        }
}

static void kernel_bench(int B, int R, int reps) {
    const int K = 784, J = 256, C = B / R;
    float *x = alloc_floats((size_t)B * K), *d = alloc_floats((size_t)B * J);
    float *dw = alloc_floats((size_t)K * J), *parts = alloc_floats((size_t)C * K * J);
    for (size_t i = 0; i < (size_t)B * K; i++) x[i] = partial_value(1000, i);
    for (size_t i = 0; i < (size_t)B * J; i++) d[i] = partial_value(1001, i);
    static const char *names[4] = {"running", "chunked_regs", "chunked_stored", "tree_regs"};
    double *t = malloc((size_t)reps * sizeof *t);
    if (!t) die("out of memory");
    for (int round = 0; round < 2; round++) /* round 0 warms up */
        for (int mode = 0; mode < 4; mode++) {
            if (mode == 3 && (C & (C - 1)) != 0) continue; /* the tree kernel: C = 2^k */
            for (int r = 0; r < reps; r++) {
                double t0 = now();
                grad_kernel(mode, dw, parts, x, d, B, R, K, J);
                t[r] = now() - t0;
            }
            qsort(t, (size_t)reps, sizeof *t, cmp_double);
            if (round == 1)
                printf("kernel %s fc1 784x256 batch=%d chunk=%d median_us=%.2f gflops=%.1f "
                       "checksum=%016llx\n",
                       names[mode], B, R, t[reps / 2] * 1e6,
                       2.0 * K * J * B / t[reps / 2] * 1e-9,
                       (unsigned long long)fnv1a(dw, (size_t)K * J * 4));
            if (mode == 3) { /* the same bits as the tree over the stored partials */
                size_t n = (size_t)K * J;
                float *ref = alloc_floats(n), *tmp[20];
                tnode *leaf = malloc((size_t)C * sizeof *leaf);
                if (!leaf) die("out of memory");
                for (int c = 0; c < C; c++) leaf[c] = (tnode){c, c + 1, parts + (size_t)c * n};
                for (int h = 0; h < 20; h++) tmp[h] = alloc_floats(n);
                tree_eval(0, C, ref, n, tmp, leaf, C);
                if (memcmp(ref, dw, n * 4) != 0) die("tree_regs differs from the tree order");
                for (int h = 0; h < 20; h++) free(tmp[h]);
                free(leaf), free(ref);
            }
        }
    free(t);
}

/* ---- driver ------------------------------------------------------------- */

typedef enum { ALLREDUCE, GATHER, CHAIN, SCATTER, TREE, NDESIGNS } design;

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    size_t P = 235146, seg = 65536;
    int B = 64, R = 16, reps = 20, kernel = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--floats") == 0 && i + 1 < argc) P = (size_t)atol(argv[++i]);
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) B = atoi(argv[++i]);
        else if (strcmp(argv[i], "--chunk") == 0 && i + 1 < argc) R = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seg") == 0 && i + 1 < argc) seg = (size_t)atol(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--kernel") == 0) kernel = 1;
        else {
            if (rank == 0)
                fprintf(stderr, "usage: mpi_reduce [--floats P] [--batch B] [--chunk R] "
                                "[--seg S] [--reps K] [--kernel]\n");
            MPI_Finalize();
            return 2;
        }
    }
    if (R < 1 || B < R || B % R != 0 || P < 1 || P > (size_t)1 << 28 || seg < 1 || reps < 1)
        die("need 1 <= chunk <= batch, batch a multiple of chunk, 1 <= floats <= 2^28, "
            "seg >= 1, reps >= 1");
    int C = B / R;
    /* Every rank owns at least one chunk: the chain starts from rank 0's
     * first partial (starting from a vector of zeros would turn -0.0 into
     * +0.0, different bits from the sum at N = 1). */
    if (nranks > C) die("more processes than chunks (batch / chunk)");
    if ((size_t)C * P > (size_t)1 << 30) die("batch / chunk x floats too large");
    if (kernel) {
        if (rank == 0) kernel_bench(B, R, reps);
        MPI_Finalize();
        return 0;
    }

    /* This rank's chunks, each partial a vector of its own; all[c] is where
     * gather puts chunk c (the rank's own ones are filled in place). */
    int c0 = first_chunk(rank, C, nranks), k = first_chunk(rank + 1, C, nranks) - c0;
    float *all = alloc_floats((size_t)C * P), *outs[NDESIGNS];
    for (int dsg = 0; dsg < NDESIGNS; dsg++) outs[dsg] = alloc_floats(P);
    float **mine = malloc((size_t)(k > 0 ? k : 1) * sizeof *mine);
    int *counts = malloc((size_t)nranks * sizeof *counts), *displs = malloc((size_t)nranks * sizeof *displs);
    int nseg = (int)((P + seg - 1) / seg);
    MPI_Request *reqs = malloc((size_t)(2 * nseg) * sizeof *reqs);
    double *t = malloc(NDESIGNS * (size_t)reps * sizeof *t);
    if (!mine || !counts || !displs || !reqs || !t) die("out of memory");
    if ((size_t)C * P > (size_t)INT32_MAX) die("chunk partials exceed an int count");
    for (int j = 0; j < k; j++) {
        mine[j] = all + (size_t)(c0 + j) * P;
        for (size_t i = 0; i < P; i++) mine[j][i] = partial_value(c0 + j, i);
    }
    for (int r = 0; r < nranks; r++) {
        int a = first_chunk(r, C, nranks), b = first_chunk(r + 1, C, nranks);
        counts[r] = (int)((size_t)(b - a) * P);
        displs[r] = (int)((size_t)a * P);
    }

    /* The scatter design's types: to rank j, slice j of each own partial
     * (k blocks P apart); from rank i, its chunks' slices of ours, contiguous
     * at their chunk index. Then the slices' sums, gathered. */
    size_t my_n = slice_lo(rank + 1, P) - slice_lo(rank, P);
    float *recv = alloc_floats((size_t)C * my_n);
    MPI_Datatype *st = malloc((size_t)nranks * sizeof *st), *rt = malloc((size_t)nranks * sizeof *rt);
    int *ones = malloc((size_t)nranks * sizeof(int)), *sdisp = malloc((size_t)nranks * sizeof(int)),
        *rcounts = malloc((size_t)nranks * sizeof(int)), *rdisp_b = malloc((size_t)nranks * sizeof(int)),
        *ocounts = malloc((size_t)nranks * sizeof(int)), *odispls = malloc((size_t)nranks * sizeof(int));
    if (!st || !rt || !ones || !sdisp || !rcounts || !rdisp_b || !ocounts || !odispls)
        die("out of memory");
    for (int j = 0; j < nranks; j++) {
        size_t lo = slice_lo(j, P), n = slice_lo(j + 1, P) - lo;
        MPI_Type_vector(k, (int)n, (int)P, MPI_FLOAT, &st[j]);
        MPI_Type_commit(&st[j]);
        ones[j] = 1;
        sdisp[j] = (int)(lo * sizeof(float));
        int a = first_chunk(j, C, nranks), b = first_chunk(j + 1, C, nranks);
        rt[j] = MPI_FLOAT;
        rcounts[j] = (int)((size_t)(b - a) * my_n);
        rdisp_b[j] = (int)((size_t)a * my_n * sizeof(float));
        ocounts[j] = (int)n;
        odispls[j] = (int)lo;
    }

    tree_state tree;
    tree_setup(&tree, mine, c0, C, P);
    tnode *leaves = malloc((size_t)C * sizeof *leaves);
    if (!leaves) die("out of memory");

    /* The designs take turns within each repetition, so that a busy
     * machine's slow spells fall on all of them alike. */
    static const char *names[NDESIGNS] = {"allreduce", "gather", "chain", "scatter", "tree"};
    for (int r = -2; r < reps; r++) { /* two warm-up repetitions */
        for (int dsg = ALLREDUCE; dsg < NDESIGNS; dsg++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = now();
            if (dsg == ALLREDUCE) red_allreduce(outs[dsg], mine, k, P);
            else if (dsg == GATHER) red_gather(outs[dsg], all, C, P, counts, displs);
            else if (dsg == CHAIN) red_chain(outs[dsg], mine, k, P, seg, reqs);
            else if (dsg == SCATTER)
                red_scatter(outs[dsg], mine[0], recv, C, P, ones, sdisp, st, rcounts, rdisp_b, rt,
                            ocounts, odispls);
            else red_tree(&tree, outs[dsg], mine, c0, C, P, ocounts, odispls, leaves);
            double dt = now() - t0;
            MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            if (r >= 0) t[(size_t)dsg * (size_t)reps + (size_t)r] = dt;
        }
    }
    if (memcmp(outs[GATHER], outs[CHAIN], P * 4) != 0) die("chain and gather differ");
    if (memcmp(outs[GATHER], outs[SCATTER], P * 4) != 0) die("scatter and gather differ");
    for (int dsg = ALLREDUCE; dsg < NDESIGNS; dsg++) {
        double *td = t + (size_t)dsg * (size_t)reps;
        qsort(td, (size_t)reps, sizeof *td, cmp_double);

        /* Every rank must hold the same bytes. */
        uint64_t h = fnv1a(outs[dsg], P * 4), h0 = h;
        MPI_Bcast(&h0, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
        int same = h == h0, all_same;
        MPI_Allreduce(&same, &all_same, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
        if (!all_same) die("ranks disagree on the result");

        /* Bytes sent per reduction, the most any rank sends. The chain's
         * are exact; the collectives' are the algorithm's, which MPI picks
         * and does not report: a ring allreduce sends 2 (N-1)/N P floats, a
         * ring allgather every block but the one of the rank after it. */
        double bytes = 0;
        if (nranks > 1 && dsg == ALLREDUCE) bytes = 2.0 * (nranks - 1) / nranks * (double)P * 4;
        if (nranks > 1 && dsg == GATHER)
            bytes = ((double)C * (double)P - counts[(rank + 1) % nranks]) * 4;
        if (dsg == CHAIN) bytes = chain_bytes(P);
        if (nranks > 1 && dsg == TREE) /* exact alltoall part + ring allgather */
            bytes = ((double)tree.nmine * (double)(P - (slice_lo(rank + 1, P) - slice_lo(rank, P))) +
                     (double)(P - (size_t)ocounts[(rank + 1) % nranks])) * 4;
        if (nranks > 1 && dsg == SCATTER) /* exact alltoall part + ring allgather */
            bytes = ((double)k * (double)(P - (slice_lo(rank + 1, P) - slice_lo(rank, P))) +
                     (double)(P - (size_t)ocounts[(rank + 1) % nranks])) * 4;
        MPI_Allreduce(MPI_IN_PLACE, &bytes, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (rank == 0)
            printf("np=%d design=%s floats=%zu batch=%d chunk=%d seg=%zu median_ms=%.3f "
                   "min_ms=%.3f bytes_sent_max_rank=%.0f%s checksum=%016llx\n",
                   nranks, names[dsg], P, B, R, seg, td[reps / 2] * 1e3, td[0] * 1e3, bytes,
                   dsg == CHAIN ? "" : dsg >= SCATTER ? "(alltoall-exact+ring-model)" : "(ring-model)", (unsigned long long)h);
    }
    for (int j = 0; j < nranks; j++) MPI_Type_free(&st[j]), MPI_Type_free(&tree.st[j]);
    for (int d = 0; d < tree_depth(C); d++) free(tree.tmp[d]);
    free(tree.mine), free(tree.all), free(tree.vals), free(tree.recv), free(tree.tmp);
    free(tree.st), free(tree.rt), free(tree.ones), free(leaves);
    free(st), free(rt), free(ones), free(sdisp), free(rcounts), free(rdisp_b), free(ocounts),
        free(odispls), free(recv);
    for (int dsg = 0; dsg < NDESIGNS; dsg++) free(outs[dsg]);
    free(t), free(reqs), free(displs), free(counts), free(mine), free(all);
    MPI_Finalize();
    return 0;
}
