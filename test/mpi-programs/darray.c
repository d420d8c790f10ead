/* ranks: 1-8 */
/*
 * Type_create_darray: 2-D and 3-D arrays in C and Fortran order, block
 * (default and a larger block, which leaves some processes less or nothing),
 * cyclic (default and blocks of 2 and 3) and undistributed dimensions, over
 * the process grid Dims_create gives. Per rank: the type's size and extent and
 * the elements it picks out of the global array. Then each rank writes its
 * part through a file view of its darray type, and rank 0 checks that the
 * parts tile the whole array in the file.
 */
#include <unistd.h>

#include "check.h"

#define NCONF 5

int main(int argc, char **argv)
{
    int rank, size, c, i, d;
    chk_init(&argc, &argv, &rank, &size);
    chk_say("darray: started on %d ranks", size);
    char path[256];
    if (rank == 0)
        snprintf(path, sizeof path, "/tmp/ferry-darray-%ld.dat", (long)getpid());
    MPI_Bcast(path, sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD);

    for (c = 0; c < NCONF; c++) {
        int ndims = c == 2 ? 3 : 2, order = c == 2 || c == 3 ? MPI_ORDER_FORTRAN : MPI_ORDER_C;
        int gs[NCONF][3] = { { 10, 7, 0 }, { 9, 8, 0 }, { 4, 5, 6 }, { 12, 5, 0 }, { 11, 6, 0 } };
        int dist[NCONF][3] = { { MPI_DISTRIBUTE_BLOCK, MPI_DISTRIBUTE_BLOCK },
                               { MPI_DISTRIBUTE_CYCLIC, MPI_DISTRIBUTE_BLOCK },
                               { MPI_DISTRIBUTE_BLOCK, MPI_DISTRIBUTE_NONE, MPI_DISTRIBUTE_CYCLIC },
                               { MPI_DISTRIBUTE_CYCLIC, MPI_DISTRIBUTE_CYCLIC },
                               { MPI_DISTRIBUTE_BLOCK, MPI_DISTRIBUTE_CYCLIC } };
        int dargs[3] = { MPI_DISTRIBUTE_DFLT_DARG, MPI_DISTRIBUTE_DFLT_DARG, MPI_DISTRIBUTE_DFLT_DARG };
        int psizes[3] = { 0, 0, 0 };
        for (d = 0; d < ndims; d++)
            if (dist[c][d] == MPI_DISTRIBUTE_NONE)
                psizes[d] = 1;
        MPI_Dims_create(size, ndims, psizes);
        if (c == 1)
            dargs[0] = 2;
        if (c == 3)
            dargs[1] = 3;
        if (c == 4) /* one more than the even share: the last processes get less or nothing */
            dargs[0] = (gs[c][0] + psizes[0] - 1) / psizes[0] + 1;
        MPI_Datatype part;
        CHECK_MPI(MPI_Type_create_darray(size, rank, ndims, gs[c], dist[c], dargs, psizes, order, MPI_INT, &part));
        MPI_Type_commit(&part);
        int tsize;
        MPI_Aint lb, extent;
        MPI_Type_size(part, &tsize);
        MPI_Type_get_extent(part, &lb, &extent);
        int n = gs[c][0] * gs[c][1] * (ndims == 3 ? gs[c][2] : 1), mine = tsize / (int)sizeof(int);
        int *global = malloc(sizeof(int) * n), *local = malloc(sizeof(int) * (mine + 1));
        for (i = 0; i < n; i++)
            global[i] = i;
        /* the elements this rank's part picks, in the type's order */
        MPI_Sendrecv(global, 1, part, rank, c, local, mine, MPI_INT, rank, c, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        unsigned long long sum = 0;
        for (i = 0; i < mine; i++)
            sum = sum * 7 + (unsigned)local[i];
        chk_say_ordered(MPI_COMM_WORLD, "conf %d grid %dx%dx%d rank %d: %d ints, lb %ld extent %ld, first %d last %d, sum %llu",
                        c, psizes[0], psizes[1], ndims == 3 ? psizes[2] : 1, rank, mine, (long)lb, (long)extent,
                        mine ? local[0] : -1, mine ? local[mine - 1] : -1, sum);

        /* every rank writes its part through a view of its type: the file is the global array */
        MPI_File fh;
        CHECK_MPI(MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_CREATE | MPI_MODE_RDWR | MPI_MODE_DELETE_ON_CLOSE,
                                MPI_INFO_NULL, &fh));
        MPI_File_set_view(fh, 0, MPI_INT, part, "native", MPI_INFO_NULL);
        CHECK_MPI(MPI_File_write_all(fh, local, mine, MPI_INT, MPI_STATUS_IGNORE));
        MPI_File_set_view(fh, 0, MPI_BYTE, MPI_BYTE, "native", MPI_INFO_NULL);
        if (rank == 0) {
            int *back = malloc(sizeof(int) * n), got, bad = 0;
            MPI_Status st;
            MPI_File_read_at(fh, 0, back, n, MPI_INT, &st);
            MPI_Get_count(&st, MPI_INT, &got);
            for (i = 0; i < got; i++)
                bad += back[i] != i;
            CHECK(got == n && bad == 0, "conf %d: the parts do not tile the file (%d of %d ints, %d wrong)", c, got, n,
                  bad);
            chk_say("conf %d: the parts written through their views tile the %d ints of the file: %s", c, n,
                    got == n && bad == 0 ? "yes" : "no");
            free(back);
        }
        MPI_File_close(&fh);
        MPI_Type_free(&part);
        free(global);
        free(local);
    }
    return chk_finish();
}
