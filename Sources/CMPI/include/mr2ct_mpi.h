// MR2CT's thin bridge to MPI (Debian's Open MPI, libopenmpi-dev): the few collective operations data-parallel
// training needs, on plain buffers over MPI_COMM_WORLD. No MPI type appears here; every function returns 0 on
// success or the MPI error code. Nothing calls MPI_Init unless `mr2ct_mpi_launched()` says a launcher
// (mpirun, srun) started this process.
#ifndef MR2CT_MPI_H
#define MR2CT_MPI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when the environment shows a parallel launcher with more than one process (Open MPI's OMPI_COMM_WORLD_SIZE,
/// PMIx's PMIX_RANK with a job size, Slurm's SLURM_PROCID with SLURM_NTASKS > 1, MPICH/Hydra's PMI_SIZE), else 0.
int mr2ct_mpi_launched(void);

/// MPI_Init_thread asking for MPI_THREAD_SERIALIZED (one thread at a time calls MPI). Writes the thread level
/// provided (0 single, 1 funneled, 2 serialized, 3 multiple) into `provided`.
int mr2ct_mpi_init(int *provided);
int mr2ct_mpi_initialized(void);
int mr2ct_mpi_rank(int *rank);
int mr2ct_mpi_size(int *size);

/// In-place sum of `count` floats over all ranks (MPI_Allreduce, MPI_SUM, MPI_FLOAT).
int mr2ct_mpi_allreduce_sum_f32(float *values, int64_t count);
/// In-place sum of `count` doubles over all ranks.
int mr2ct_mpi_allreduce_sum_f64(double *values, int64_t count);
/// In-place maximum of `count` unsigned 64-bit integers over all ranks.
int mr2ct_mpi_allreduce_max_u64(uint64_t *values, int64_t count);
/// Every rank's `value` into `all` (size × 1 words, rank order: MPI_Allgather).
int mr2ct_mpi_allgather_u64(uint64_t value, uint64_t *all);
/// Broadcast of `count` bytes from `root`.
int mr2ct_mpi_broadcast(void *bytes, int64_t count, int root);
int mr2ct_mpi_barrier(void);
/// MPI_Abort on MPI_COMM_WORLD: ends every process of the job with `code`.
void mr2ct_mpi_abort(int code);
int mr2ct_mpi_finalize(void);
/// MPI_Wtime.
double mr2ct_mpi_wtime(void);

#ifdef __cplusplus
}
#endif
#endif
