/* ranks: 1-8 */
/*
 * Smaller MPI 3.1 calls libraries and tools use: Request_get_status (does not
 * free the request), Get_elements_x, Status_set_elements/set_cancelled,
 * Op_commutative, Is_thread_main, Comm_test_inter, Type_size_x,
 * Type_get_extent_x/true_extent_x, Type_set_name/get_name, Aint_add/diff,
 * Comm_dup_with_info/set_info/get_info, Comm_call_errhandler, and
 * Comm_create_group (two groups created at once with different tags, used at
 * once).
 */
#include "check.h"

static int handler_calls, handler_class;

static void note_error(MPI_Comm *comm, int *code, ...)
{
    (void)comm;
    handler_calls++;
    MPI_Error_class(*code, &handler_class);
}

static void noncommutative(void *in, void *inout, int *len, MPI_Datatype *type)
{
    int i;
    (void)type;
    for (i = 0; i < *len; i++)
        ((int *)inout)[i] = ((int *)in)[i];
}

int main(int argc, char **argv)
{
    int rank, size, i, flag, count, len, polls;
    double vals[4] = { 1, 2, 3, 4 }, in[4];
    MPI_Request req;
    MPI_Status st;
    chk_init(&argc, &argv, &rank, &size);
    chk_say("queries: started on %d ranks", size);

    /* Request_get_status: not complete before the peer sends; complete after, and the request stays */
    int from = (rank + size - 1) % size, to = (rank + 1) % size;
    MPI_Irecv(in, 4, MPI_DOUBLE, from, 9, MPI_COMM_WORLD, &req);
    MPI_Request_get_status(req, &flag, &st);
    CHECK(flag == 0, "Request_get_status before any send: flag %d", flag);
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Send(vals, 3, MPI_DOUBLE, to, 9, MPI_COMM_WORLD);
    for (flag = 0, polls = 0; !flag; polls++)
        MPI_Request_get_status(req, &flag, &st);
    CHECK(req != MPI_REQUEST_NULL, "Request_get_status left the request");
    MPI_Request_get_status(req, &flag, &st);
    CHECK(flag == 1 && st.MPI_SOURCE == from && st.MPI_TAG == 9, "a second Request_get_status");
    MPI_Wait(&req, &st);
    CHECK(req == MPI_REQUEST_NULL, "Wait after Request_get_status frees it");
    MPI_Count elements;
    MPI_Get_elements_x(&st, MPI_DOUBLE, &elements);
    chk_say("received %lld doubles, source %s, tag %d", (long long)elements, st.MPI_SOURCE == from ? "left" : "?",
            st.MPI_TAG);
    MPI_Request_get_status(MPI_REQUEST_NULL, &flag, MPI_STATUS_IGNORE);
    chk_say("Request_get_status of MPI_REQUEST_NULL: flag %d", flag);

    /* Status_set_elements / set_cancelled */
    MPI_Status_set_elements(&st, MPI_INT, 5);
    MPI_Get_count(&st, MPI_INT, &count);
    MPI_Get_elements_x(&st, MPI_INT, &elements);
    MPI_Status_set_cancelled(&st, 1);
    MPI_Test_cancelled(&st, &flag);
    chk_say("status set to 5 ints: count %d, elements %lld, cancelled %d", count, (long long)elements, flag);
    MPI_Status_set_elements_x(&st, MPI_DOUBLE, 3);
    MPI_Get_count(&st, MPI_DOUBLE, &count);
    MPI_Status_set_cancelled(&st, 0);
    MPI_Test_cancelled(&st, &flag);
    chk_say("status set to 3 doubles: count %d, cancelled %d", count, flag);

    /* ops, threads, intercommunicators */
    MPI_Op mine;
    int commute_sum, commute_max, commute_mine;
    MPI_Op_create(noncommutative, 0, &mine);
    MPI_Op_commutative(MPI_SUM, &commute_sum);
    MPI_Op_commutative(MPI_MAX, &commute_max);
    MPI_Op_commutative(mine, &commute_mine);
    chk_say("commutative: SUM %d, MAX %d, user op %d", commute_sum, commute_max, commute_mine);
    MPI_Op_free(&mine);
    MPI_Is_thread_main(&flag);
    chk_say("Is_thread_main: %d", flag);
    MPI_Comm_test_inter(MPI_COMM_WORLD, &flag);
    chk_say("Comm_test_inter(world): %d", flag);

    /* datatype sizes, extents and names */
    MPI_Datatype vec;
    MPI_Count xs, xlb, xext, tlb, text;
    char name[MPI_MAX_OBJECT_NAME];
    MPI_Type_vector(3, 2, 5, MPI_DOUBLE, &vec);
    MPI_Type_commit(&vec);
    MPI_Type_size_x(vec, &xs);
    MPI_Type_get_extent_x(vec, &xlb, &xext);
    MPI_Type_get_true_extent_x(vec, &tlb, &text);
    chk_say("vector 3x2 stride 5 of double: size %lld, lb %lld, extent %lld, true lb %lld, true extent %lld",
            (long long)xs, (long long)xlb, (long long)xext, (long long)tlb, (long long)text);
    MPI_Type_get_name(vec, name, &len);
    chk_say("a new type's name: '%s' (%d)", name, len);
    MPI_Type_set_name(vec, "halo_columns");
    MPI_Type_get_name(vec, name, &len);
    chk_say("named: '%s' (%d)", name, len);
    MPI_Type_get_name(MPI_INT, name, &len);
    chk_say("MPI_INT is named '%s'", name);
    MPI_Type_get_name(MPI_DOUBLE, name, &len);
    chk_say("MPI_DOUBLE is named '%s'", name);
    MPI_Type_free(&vec);

    MPI_Aint base, third;
    MPI_Get_address(&vals[0], &base);
    third = MPI_Aint_add(base, 2 * sizeof(double));
    CHECK(third == (MPI_Aint)&vals[2], "Aint_add");
    chk_say("Aint_diff(&vals[3], &vals[0]) = %ld", (long)MPI_Aint_diff((MPI_Aint)&vals[3], base));

    /* info on communicators */
    MPI_Info info, used;
    MPI_Comm dup;
    MPI_Info_create(&info);
    MPI_Info_set(info, "mpi_assert_no_any_tag", "false");
    MPI_Comm_dup_with_info(MPI_COMM_WORLD, info, &dup);
    MPI_Comm_set_info(dup, info);
    MPI_Comm_get_info(dup, &used);
    CHECK(used != MPI_INFO_NULL, "Comm_get_info gives an info object");
    MPI_Info_free(&used);
    MPI_Info_free(&info);
    int sum = 0;
    MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, dup);
    chk_say("Allreduce on a Comm_dup_with_info duplicate: %d", sum);

    /* Comm_call_errhandler */
    MPI_Errhandler eh;
    MPI_Comm_create_errhandler(note_error, &eh);
    MPI_Comm_set_errhandler(dup, eh);
    MPI_Comm_call_errhandler(dup, MPI_ERR_OTHER);
    chk_say("Comm_call_errhandler: %d call(s), class %s", handler_calls,
            handler_class == MPI_ERR_OTHER ? "MPI_ERR_OTHER" : "another");
    MPI_Errhandler_free(&eh);
    MPI_Comm_free(&dup);

    /* Comm_create_group: the even ranks (tag 5) and the odd ranks (tag 6) at once; only members call */
    MPI_Group world, half;
    MPI_Comm sub;
    int *members = malloc(sizeof(int) * size), n = 0, subrank, subsize, subsum = 0;
    for (i = rank % 2; i < size; i += 2)
        members[n++] = i;
    MPI_Comm_group(MPI_COMM_WORLD, &world);
    MPI_Group_incl(world, n, members, &half);
    MPI_Comm_create_group(MPI_COMM_WORLD, half, 5 + rank % 2, &sub);
    MPI_Comm_rank(sub, &subrank);
    MPI_Comm_size(sub, &subsize);
    MPI_Allreduce(&rank, &subsum, 1, MPI_INT, MPI_SUM, sub);
    CHECK_EQ_INT(subrank, rank / 2, "rank in Comm_create_group's communicator");
    chk_say_ordered(MPI_COMM_WORLD, "create_group rank %d: %d of %d, sum of world ranks %d", rank, subrank, subsize,
                    subsum);
    /* its context is its own: a message on it does not match one on world with the same tag */
    if (subsize > 1) {
        int a = -1, b = -1, peer = (subrank + 1) % subsize, back = (subrank + subsize - 1) % subsize;
        MPI_Request r2[2];
        MPI_Irecv(&a, 1, MPI_INT, back, 3, sub, &r2[0]);
        MPI_Irecv(&b, 1, MPI_INT, members[back], 3, MPI_COMM_WORLD, &r2[1]);
        MPI_Send(&rank, 1, MPI_INT, members[peer], 3, MPI_COMM_WORLD);
        int twice = 2 * rank;
        MPI_Send(&twice, 1, MPI_INT, peer, 3, sub);
        MPI_Waitall(2, r2, MPI_STATUSES_IGNORE);
        CHECK(a == 2 * members[back] && b == members[back], "separate contexts: %d %d", a, b);
    }
    MPI_Comm_free(&sub);
    MPI_Group_free(&half);
    MPI_Group_free(&world);
    free(members);
    return chk_finish();
}
