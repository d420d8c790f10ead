/* ranks: 1-8 */
/*
 * The MPI-1 names that MPI 3.0 removed and older programs still call (MPICH
 * keeps them): Address, Type_hvector/hindexed/struct with the MPI_LB and
 * MPI_UB markers, Type_extent/lb/ub, Errhandler_create/set/get,
 * Keyval_create/free with MPI_DUP_FN and MPI_NULL_COPY_FN.
 */
#include "check.h"

static int handler_calls, handler_code;

static void count_errors(MPI_Comm *comm, int *code, ...)
{
    (void)comm;
    handler_calls++;
    handler_code = *code;
}

int main(int argc, char **argv)
{
    int rank, size, i, flag, *got;
    int data[16], out[16];
    MPI_Aint a0, a1, lb, ub, extent;
    MPI_Datatype marked, padded, hvec, hidx, pair;
    chk_init(&argc, &argv, &rank, &size);
    chk_say("mpi1-names: started on %d ranks", size);

    for (i = 0; i < 16; i++)
        data[i] = rank * 100 + i;
    MPI_Address(&data[0], &a0);
    MPI_Address(&data[3], &a1);
    chk_say("MPI_Address: data[3] is %ld bytes after data[0]", (long)(a1 - a0));

    /* {LB at 0, two ints at 4, UB at 20}: extent 20, its data at bytes 4-11 */
    {
        int bl[3] = { 1, 2, 1 };
        MPI_Aint disp[3] = { 0, 4, 20 };
        MPI_Datatype types[3] = { MPI_LB, MPI_INT, MPI_UB };
        MPI_Type_struct(3, bl, disp, types, &marked);
        MPI_Type_commit(&marked);
    }
    MPI_Type_lb(marked, &lb);
    MPI_Type_ub(marked, &ub);
    MPI_Type_extent(marked, &extent);
    chk_say("LB/UB struct: lb %ld, ub %ld, extent %ld", (long)lb, (long)ub, (long)extent);
    /* {double at 0, UB at 12}: an explicit upper bound takes no alignment padding */
    {
        int bl[2] = { 1, 1 };
        MPI_Aint disp[2] = { 0, 12 };
        MPI_Datatype types[2] = { MPI_DOUBLE, MPI_UB };
        MPI_Type_struct(2, bl, disp, types, &padded);
        MPI_Type_commit(&padded);
    }
    MPI_Type_extent(padded, &extent);
    chk_say("UB struct of a double: extent %ld", (long)extent);

    /* two of the marked type: ints 1,2 and 6,7 of data (20 bytes = 5 ints apart) */
    for (i = 0; i < 16; i++)
        out[i] = -1;
    MPI_Sendrecv(data, 2, marked, rank, 1, out, 4, MPI_INT, rank, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    chk_say("marked type picks: %d %d %d %d", out[0] - rank * 100, out[1] - rank * 100, out[2] - rank * 100,
            out[3] - rank * 100);
    CHECK(out[0] == data[1] && out[1] == data[2] && out[2] == data[6] && out[3] == data[7], "LB/UB struct layout");

    /* hvector: 3 blocks of 2 ints, 16 bytes apart; hindexed: blocks at 0 and 40 bytes */
    MPI_Type_hvector(3, 2, 16, MPI_INT, &hvec);
    MPI_Type_commit(&hvec);
    {
        int bl[2] = { 1, 2 };
        MPI_Aint disp[2] = { 0, 40 };
        MPI_Type_hindexed(2, bl, disp, MPI_INT, &hidx);
        MPI_Type_commit(&hidx);
    }
    MPI_Type_extent(hvec, &extent);
    MPI_Sendrecv(data, 1, hvec, rank, 2, out, 6, MPI_INT, rank, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    chk_say("hvector: extent %ld, picks %d %d %d %d %d %d", (long)extent, out[0] % 100, out[1] % 100, out[2] % 100,
            out[3] % 100, out[4] % 100, out[5] % 100);
    MPI_Type_extent(hidx, &extent);
    MPI_Sendrecv(data, 1, hidx, rank, 3, out, 3, MPI_INT, rank, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    chk_say("hindexed: extent %ld, picks %d %d %d", (long)extent, out[0] % 100, out[1] % 100, out[2] % 100);

    /* a struct of the marked type and an int, exchanged around the ring */
    {
        int bl[2] = { 1, 1 };
        MPI_Aint disp[2];
        MPI_Datatype types[2] = { marked, MPI_INT };
        MPI_Address(&data[0], &a0);
        MPI_Address(&data[10], &a1);
        disp[0] = 0;
        disp[1] = a1 - a0;
        MPI_Type_struct(2, bl, disp, types, &pair);
        MPI_Type_commit(&pair);
    }
    MPI_Sendrecv(data, 1, pair, (rank + 1) % size, 4, out, 3, MPI_INT, (rank + size - 1) % size, 4, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
    CHECK(out[0] == data[1] - rank * 100 + ((rank + size - 1) % size) * 100, "pair: first int");
    chk_say("struct of a marked type: from rank %d: %d %d %d", (rank + size - 1) % size, out[0] % 100, out[1] % 100,
            out[2] % 100);

    /* Errhandler_create/set/get */
    MPI_Errhandler eh, current;
    MPI_Comm dup;
    MPI_Errhandler_create(count_errors, &eh);
    MPI_Comm_dup(MPI_COMM_WORLD, &dup);
    MPI_Errhandler_set(dup, eh);
    MPI_Errhandler_get(dup, &current);
    CHECK(current == eh, "Errhandler_get gives the handler set");
    MPI_Send(data, 1, MPI_INT, size, 0, dup); /* no such rank: the handler runs */
    MPI_Error_class(handler_code, &i);
    chk_say("user handler: %d call(s), class %s", handler_calls, i == MPI_ERR_RANK ? "MPI_ERR_RANK" : "another");
    MPI_Errhandler_free(&current);

    /* Keyval_create/free with the MPI-1 copy functions */
    int copied, dropped, value = 42;
    MPI_Comm dup2;
    MPI_Keyval_create(MPI_DUP_FN, MPI_NULL_DELETE_FN, &copied, NULL);
    MPI_Keyval_create(MPI_NULL_COPY_FN, MPI_NULL_DELETE_FN, &dropped, NULL);
    MPI_Attr_put(dup, copied, &value);
    MPI_Attr_put(dup, dropped, &value);
    MPI_Comm_dup(dup, &dup2);
    MPI_Attr_get(dup2, copied, &got, &flag);
    chk_say("MPI_DUP_FN: flag %d, value %d", flag, flag ? *got : -1);
    MPI_Attr_get(dup2, dropped, &got, &flag);
    chk_say("MPI_NULL_COPY_FN: flag %d", flag);
    MPI_Comm_free(&dup2);
    MPI_Comm_free(&dup);
    MPI_Keyval_free(&copied);
    MPI_Keyval_free(&dropped);
    CHECK(copied == MPI_KEYVAL_INVALID && dropped == MPI_KEYVAL_INVALID, "Keyval_free sets MPI_KEYVAL_INVALID");
    MPI_Errhandler_free(&eh);

    MPI_Type_free(&marked);
    MPI_Type_free(&padded);
    MPI_Type_free(&hvec);
    MPI_Type_free(&hidx);
    MPI_Type_free(&pair);
    return chk_finish();
}
