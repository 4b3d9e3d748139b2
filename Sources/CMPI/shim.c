// See include/mr2ct_mpi.h. Counts above INT_MAX are sent in chunks (MPI counts are int).
#include "mr2ct_mpi.h"

#include <limits.h>
#include <mpi.h>
#include <stdlib.h>

static int env_int(const char *name, long *out) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end) return 0;
    *out = v;
    return 1;
}

int mr2ct_mpi_launched(void) {
    long v = 0;
    if (env_int("OMPI_COMM_WORLD_SIZE", &v)) return v > 1;
    if (env_int("PMIX_SIZE", &v) || env_int("PMI_SIZE", &v)) return v > 1;
    if (getenv("PMIX_RANK") && env_int("SLURM_NTASKS", &v)) return v > 1;
    if (getenv("SLURM_PROCID") && getenv("SLURM_STEP_ID") && env_int("SLURM_NTASKS", &v)) return v > 1;
    return 0;
}

int mr2ct_mpi_init(int *provided) {
    int p = 0;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &p);
    if (rc != MPI_SUCCESS) return rc;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    switch (p) {
    case MPI_THREAD_SINGLE: *provided = 0; break;
    case MPI_THREAD_FUNNELED: *provided = 1; break;
    case MPI_THREAD_SERIALIZED: *provided = 2; break;
    default: *provided = 3; break;
    }
    return MPI_SUCCESS;
}

int mr2ct_mpi_initialized(void) {
    int flag = 0, finalized = 0;
    MPI_Initialized(&flag);
    MPI_Finalized(&finalized);
    return flag && !finalized;
}

int mr2ct_mpi_rank(int *rank) { return MPI_Comm_rank(MPI_COMM_WORLD, rank); }
int mr2ct_mpi_size(int *size) { return MPI_Comm_size(MPI_COMM_WORLD, size); }

static int allreduce(void *values, int64_t count, MPI_Datatype type, size_t width, MPI_Op op) {
    char *p = values;
    while (count > 0) {
        int n = count > INT_MAX ? INT_MAX : (int)count;
        int rc = MPI_Allreduce(MPI_IN_PLACE, p, n, type, op, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
        p += (size_t)n * width;
        count -= n;
    }
    return MPI_SUCCESS;
}

int mr2ct_mpi_allreduce_sum_f32(float *values, int64_t count) {
    return allreduce(values, count, MPI_FLOAT, sizeof(float), MPI_SUM);
}

int mr2ct_mpi_allreduce_sum_f64(double *values, int64_t count) {
    return allreduce(values, count, MPI_DOUBLE, sizeof(double), MPI_SUM);
}

int mr2ct_mpi_allreduce_max_u64(uint64_t *values, int64_t count) {
    return allreduce(values, count, MPI_UINT64_T, sizeof(uint64_t), MPI_MAX);
}

int mr2ct_mpi_allgather_u64(uint64_t value, uint64_t *all) {
    return MPI_Allgather(&value, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
}

int mr2ct_mpi_broadcast(void *bytes, int64_t count, int root) {
    char *p = bytes;
    while (count > 0) {
        int n = count > INT_MAX ? INT_MAX : (int)count;
        int rc = MPI_Bcast(p, n, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
        p += n;
        count -= n;
    }
    return MPI_SUCCESS;
}

int mr2ct_mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }
void mr2ct_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
int mr2ct_mpi_finalize(void) { return MPI_Finalize(); }
double mr2ct_mpi_wtime(void) { return MPI_Wtime(); }
