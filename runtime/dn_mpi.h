/* dn_mpi.h - the MPI layer of a distributed trainer (runtime/dn_mpi.c, in
 * libdnrt_mpi only; the trainer is built with mpicc and `dngen --mpi`).
 *
 * Every process holds the whole model and trains on its share of each
 * batch (dn_shard.h); the shares' gradient and loss sums are combined along
 * the top of the kernels' chunk tree, so the result has the bits of one
 * process at any process count. Process 0 alone prints and writes files.
 */
#ifndef DN_MPI_H
#define DN_MPI_H

#include <stddef.h>

#include "dn_shard.h"

/* This process's rank and the job's size (0 and 1 before dn_mpi_start). */
extern int dn_mpi_rank, dn_mpi_size;

/* MPI_Init_thread (funneled: only the main thread calls MPI). */
void dn_mpi_start(int *argc, char ***argv);
void dn_mpi_stop(void);
/* Ends every process of the job with exit code `code` (MPI_Abort). */
void dn_mpi_abort(int code);

/* The sums of one step, combined: v [len] holds this process's share of the
 * gradient (ignored when it has no rows); on return every process holds the
 * combined gradient. scratch holds dn_mpi_scratch_floats(len) floats. */
size_t dn_mpi_scratch_floats(size_t len);
void dn_mpi_combine_floats(dn_shard *s, float *v, size_t len, float *scratch);

/* The step's small numbers: the loss sum (a share's, 0 without rows),
 * correct predictions (added), and a caught signal (the largest wins), so
 * that all processes stop after the same step. */
void dn_mpi_combine_step(dn_shard *s, double *loss, int *correct, int *signal);

/* The shares of the batch the next step trains on (for dn_batch_reduce). */
void dn_mpi_use_shard(dn_shard *s);

/* dn_batch_reduce under MPI: the shares' sums of len doubles, combined in
 * the tree's order, on every process. */
void dn_mpi_reduce_doubles(double *v, int len);

/* Adds v [len] over the processes where each element is nonzero on at most
 * one of them (exact: x + 0 is x); every process gets the sums. */
void dn_mpi_sum_disjoint(double *v, size_t len);

/* The largest of the processes' values (for exit codes of a setup phase). */
int dn_mpi_max_int(int v);

#endif
