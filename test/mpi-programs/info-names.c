/* ranks: 1-8 */
/*
 * MPI_Info (create, set, get, valuelen, nkeys/nthkey in the
 * order set, delete, dup, free, errors), Comm_set_name/Comm_get_name (the
 * predefined names, not copied by Comm_dup), Comm_split_type
 * (MPI_COMM_TYPE_SHARED: the members share this rank's processor name;
 * MPI_UNDEFINED), and Alloc_mem/Free_mem used as a message buffer.
 */
#include "check.h"

int main(int argc, char **argv)
{
    int rank, size, i, flag, len, n, rc, cls;
    char value[64], key[MPI_MAX_INFO_KEY + 1], name[MPI_MAX_OBJECT_NAME];
    MPI_Info info, copy;
    MPI_Comm dup, node;
    chk_init(&argc, &argv, &rank, &size);
    chk_say("info-names: started on %d ranks", size);

    MPI_Info_create(&info);
    MPI_Info_set(info, "cb_nodes", "4");
    MPI_Info_set(info, "striping_unit", "1048576");
    MPI_Info_set(info, "ferry_hint", "first");
    MPI_Info_set(info, "cb_nodes", "8"); /* overwritten, keeps its place */
    MPI_Info_get_nkeys(info, &n);
    chk_say("info: %d keys", n);
    for (i = 0; i < n; i++) {
        MPI_Info_get_nthkey(info, i, key);
        MPI_Info_get(info, key, sizeof value - 1, value, &flag);
        chk_say("info key %d: %s = %s (flag %d)", i, key, value, flag);
    }
    MPI_Info_get_valuelen(info, "striping_unit", &len, &flag);
    chk_say("info valuelen: %d flag %d", len, flag);
    MPI_Info_get(info, "no_such_key", sizeof value - 1, value, &flag);
    MPI_Info_get_valuelen(info, "no_such_key", &len, &n);
    chk_say("info missing key: flag %d, valuelen flag %d", flag, n);
    MPI_Info_dup(info, &copy);
    MPI_Info_delete(info, "cb_nodes");
    MPI_Info_get_nkeys(info, &n);
    MPI_Info_get_nkeys(copy, &i);
    chk_say("after delete: %d keys, the duplicate %d", n, i);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    rc = MPI_Info_delete(info, "cb_nodes");
    MPI_Error_class(rc, &cls);
    chk_say("delete of a missing key: %s", cls == MPI_ERR_INFO_NOKEY ? "MPI_ERR_INFO_NOKEY" : "another class");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    MPI_Info_free(&info);
    MPI_Info_free(&copy);
    CHECK(info == MPI_INFO_NULL && copy == MPI_INFO_NULL, "Info_free sets MPI_INFO_NULL");

    MPI_Comm_get_name(MPI_COMM_WORLD, name, &len);
    chk_say("world is named '%s' (%d)", name, len);
    MPI_Comm_get_name(MPI_COMM_SELF, name, &len);
    chk_say("self is named '%s'", name);
    MPI_Comm_dup(MPI_COMM_WORLD, &dup);
    MPI_Comm_get_name(dup, name, &len);
    chk_say("a duplicate is named '%s' (%d)", name, len);
    MPI_Comm_set_name(dup, "solver");
    MPI_Comm_get_name(dup, name, &len);
    chk_say("named: '%s' (%d)", name, len);
    MPI_Comm_free(&dup);

    /* ranks of one node: every member has this rank's processor name */
    {
        char mine[MPI_MAX_PROCESSOR_NAME], *all;
        int nsize, nrank, wrank, plen;
        MPI_Info_create(&info);
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, info, &node);
        MPI_Info_free(&info);
        CHECK(node != MPI_COMM_NULL, "split_type SHARED gives every rank a communicator");
        MPI_Comm_size(node, &nsize);
        MPI_Comm_rank(node, &nrank);
        memset(mine, 0, sizeof mine);
        MPI_Get_processor_name(mine, &plen);
        all = malloc((size_t)nsize * MPI_MAX_PROCESSOR_NAME);
        MPI_Allgather(mine, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, node);
        for (i = 0; i < nsize; i++)
            CHECK(strncmp(all + (size_t)i * MPI_MAX_PROCESSOR_NAME, mine, MPI_MAX_PROCESSOR_NAME) == 0, "member %d of this node has another processor name", i);
        /* ordered by key (the world rank): node ranks follow world ranks */
        MPI_Allgather(&rank, 1, MPI_INT, all, 1, MPI_INT, node);
        for (i = 1; i < nsize; i++)
            CHECK(((int *)all)[i] > ((int *)all)[i - 1], "node ranks ordered by key");
        wrank = nrank == 0;
        MPI_Allreduce(MPI_IN_PLACE, &wrank, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        CHECK(wrank >= 1 && wrank <= size, "%d node leaders", wrank);
        free(all);
        MPI_Comm_free(&node);
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_UNDEFINED, 0, MPI_INFO_NULL, &node);
        CHECK(node == MPI_COMM_NULL, "split_type MPI_UNDEFINED gives MPI_COMM_NULL");
        chk_say("split_type: ok");
    }

    /* Alloc_mem as a message buffer */
    {
        int *buf, count = 1 << 18, prev = (rank + size - 1) % size, ok = 1;
        MPI_Alloc_mem((MPI_Aint)count * (MPI_Aint)sizeof(int), MPI_INFO_NULL, &buf);
        for (i = 0; i < count; i++)
            buf[i] = rank * 7 + i;
        MPI_Sendrecv_replace(buf, count, MPI_INT, (rank + 1) % size, 3, prev, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        for (i = 0; i < count; i++)
            ok &= buf[i] == prev * 7 + i;
        CHECK(ok, "a buffer from MPI_Alloc_mem carried the message");
        MPI_Free_mem(buf);
        chk_say("alloc_mem: ok");
    }
    return chk_finish();
}
