/* dn_mpi.c - the MPI layer of a distributed trainer (dn_mpi.h). */
#include "dn_mpi.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dn_mpi_rank = 0, dn_mpi_size = 1;

/* What this process handed to MPI to send to others (the algorithm's bytes,
 * not the library's), and the steps: printed at the end when the
 * environment has DNGEN_MPI_STATS=1 (bench/mpi_train.sh). */
static double sent_bytes;
static long steps;

/* Buffers of the per-step collectives: grown to the largest request and
 * kept, so that a step allocates nothing (freed by dn_mpi_stop). */
static int *counts;    /* [4 * size]: alltoallv's and allgatherv's counts and offsets */
static double *gather; /* allgathers of doubles */
static size_t gather_cap;

/* gather with room for n doubles, or the job ends (out of memory). */
static double *gather_room(size_t n) {
    if (n > gather_cap) {
        double *p = realloc(gather, n * sizeof *p);
        if (!p) {
            fprintf(stderr, "out of memory\n");
            dn_mpi_abort(1);
        }
        gather = p;
        gather_cap = n;
    }
    return gather;
}

void dn_mpi_start(int *argc, char ***argv) {
    int provided = 0;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &dn_mpi_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &dn_mpi_size);
    counts = calloc(4 * (size_t)dn_mpi_size, sizeof *counts);
    if (!counts) {
        fprintf(stderr, "out of memory\n");
        dn_mpi_abort(1);
    }
}

void dn_mpi_stop(void) {
    const char *stats = getenv("DNGEN_MPI_STATS");
    if (stats && strcmp(stats, "1") == 0 && steps > 0)
        fprintf(stderr, "mpi stats: process %d of %d: %ld steps, %.0f bytes sent per step\n", dn_mpi_rank,
                dn_mpi_size, steps, sent_bytes / (double)steps);
    free(counts);
    free(gather);
    MPI_Finalize();
}

void dn_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

/* Slice j of a vector of len values cut in `size` slices: [at(j), at(j + 1)). */
static size_t slice_at(size_t len, int size, int j) { return len * (size_t)j / (size_t)size; }

size_t dn_mpi_scratch_floats(size_t len) {
    return (size_t)dn_mpi_size * (len / (size_t)dn_mpi_size + 1);
}

/* Each process takes one slice of the vector: every share's owner sends it
 * its slice (one alltoallv), it combines the shares' slices in the tree's
 * order, and an allgatherv gives everyone every combined slice. A process
 * sends and receives about 2 (size - 1) / size of the vector, as a ring
 * allreduce does. MPI's counts and offsets are ints: the trainer refuses a
 * model of 2^31 floats or more (dn_tr_alloc). */
void dn_mpi_combine_floats(dn_shard *s, float *v, size_t len, float *scratch) {
    const int size = dn_mpi_size, me = dn_mpi_rank;
    if (s->parts <= 1 && size == 1)
        return;
    static int plain = -1; /* DNGEN_MPI_BENCH_ALLREDUCE=1: MPI_Allreduce instead, for bench/mpi_train.sh only */
    if (plain < 0) {
        const char *e = getenv("DNGEN_MPI_BENCH_ALLREDUCE");
        plain = e && strcmp(e, "1") == 0;
    }
    if (plain) { /* NOT reproducible: the library's order depends on N and on its algorithm */
        if (me >= s->parts)
            memset(v, 0, sizeof(float) * len);
        for (size_t at = 0; at < len; at += INT_MAX / 2) {
            const size_t k = len - at < INT_MAX / 2 ? len - at : INT_MAX / 2;
            MPI_Allreduce(MPI_IN_PLACE, v + at, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        }
        sent_bytes += 4.0 * 2.0 * (double)len * (size - 1) / size; /* what a ring algorithm sends */
        steps++;
        return;
    }
    int *sc = counts, *sd = sc + size, *rc = sd + size, *rd = rc + size;
    const size_t mine = slice_at(len, size, me + 1) - slice_at(len, size, me);
    for (int j = 0; j < size; j++) {
        sc[j] = me < s->parts ? (int)(slice_at(len, size, j + 1) - slice_at(len, size, j)) : 0;
        sd[j] = (int)slice_at(len, size, j);
        rc[j] = j < s->parts ? (int)mine : 0;
        rd[j] = (int)((size_t)j * mine);
    }
    MPI_Alltoallv(v, sc, sd, MPI_FLOAT, scratch, rc, rd, MPI_FLOAT, MPI_COMM_WORLD);
    for (int j = 0; j < size; j++)
        if (j != me) sent_bytes += 4.0 * sc[j];
    sent_bytes += 4.0 * (double)mine * (size - 1);
    steps++;
    if (s->parts > 0)
        dn_shard_combine(s, scratch, mine, mine);
    else
        for (size_t i = 0; i < mine; i++) scratch[i] = 0.0f;
    for (int j = 0; j < size; j++) {
        rc[j] = (int)(slice_at(len, size, j + 1) - slice_at(len, size, j));
        rd[j] = (int)slice_at(len, size, j);
    }
    MPI_Allgatherv(scratch, (int)mine, MPI_FLOAT, v, rc, rd, MPI_FLOAT, MPI_COMM_WORLD);
}

void dn_mpi_combine_step(dn_shard *s, double *loss, int *correct, int *signal) {
    const int size = dn_mpi_size;
    double mine[3] = {*loss, (double)*correct, (double)*signal};
    double *all = gather_room(3 * (size_t)size);
    MPI_Allgather(mine, 3, MPI_DOUBLE, all, 3, MPI_DOUBLE, MPI_COMM_WORLD);
    sent_bytes += 24.0 * (size - 1);
    double hits = 0, sig = 0;
    for (int i = 0; i < size; i++) {
        hits += all[3 * i + 1]; /* integers: exact in any order */
        if (all[3 * i + 2] > sig) sig = all[3 * i + 2];
    }
    if (s->parts > 0) {
        for (int i = 0; i < s->parts; i++) all[i] = all[3 * i]; /* the shares' loss sums, packed */
        dn_shard_combine_d(s, all, 1, 1);
        *loss = all[0];
    } else {
        *loss = 0.0;
    }
    *correct = (int)hits;
    *signal = (int)sig;
}

static dn_shard *current;

void dn_mpi_use_shard(dn_shard *s) { current = s; }

void dn_mpi_reduce_doubles(double *v, int len) {
    const int size = dn_mpi_size;
    if (!current)
        return; /* not training (gradcheck): every process works alone */
    double *all = gather_room((size_t)len * (size_t)size);
    MPI_Allgather(v, len, MPI_DOUBLE, all, len, MPI_DOUBLE, MPI_COMM_WORLD);
    sent_bytes += 8.0 * len * (size - 1);
    if (current->parts > 0) {
        dn_shard_combine_d(current, all, (size_t)len, (size_t)len);
        memcpy(v, all, sizeof(double) * (size_t)len);
    }
}

void dn_mpi_sum_disjoint(double *v, size_t len) {
    for (size_t at = 0; at < len; at += INT_MAX / 2) {
        const size_t k = len - at < INT_MAX / 2 ? len - at : INT_MAX / 2;
        MPI_Allreduce(MPI_IN_PLACE, v + at, (int)k, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    }
}

int dn_mpi_max_int(int v) {
    int out = v;
    MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return out;
}
