/* ranks: 1-8 */
/*
 * Communicators and groups: Comm_dup, Comm_split (colors, keys, MPI_UNDEFINED),
 * Comm_compare (IDENT, CONGRUENT, SIMILAR, UNEQUAL), Comm_group, Group_incl,
 * Group_translate_ranks, Group_free, Comm_free; and the context separation
 * of communicators (a message on one never matches a receive on another).
 * Also the setup calls: Initialized, Finalized, Get_version,
 * Get_processor_name, Wtime/Wtick (values not printed: not deterministic).
 */
#include "check.h"

int main(int argc, char **argv)
{
    int rank, size, result, flag, version, subversion, len, i, srank, ssize;
    char name[MPI_MAX_PROCESSOR_NAME];
    double t0, t1;
    MPI_Comm dup, rev, half;
    MPI_Group world_group, rev_group, sub_group;

    MPI_Initialized(&flag);
    CHECK_EQ_INT(flag, 0, "Initialized before MPI_Init");
    chk_init(&argc, &argv, &rank, &size);
    MPI_Initialized(&flag);
    CHECK_EQ_INT(flag, 1, "Initialized after MPI_Init");
    MPI_Finalized(&flag);
    CHECK_EQ_INT(flag, 0, "Finalized before MPI_Finalize");
    MPI_Get_version(&version, &subversion);
    CHECK(version > 3 || (version == 3 && subversion >= 1), "MPI version %d.%d < 3.1", version, subversion);
    MPI_Get_processor_name(name, &len);
    CHECK(len > 0 && len < MPI_MAX_PROCESSOR_NAME && (int)strlen(name) == len, "Get_processor_name length");
    t0 = MPI_Wtime();
    t1 = MPI_Wtime();
    CHECK(t1 >= t0 && MPI_Wtick() > 0.0, "Wtime monotonic, Wtick positive");
    chk_say("groups: setup calls: ok");

    /* Compare: self IDENT, dup CONGRUENT, reversed split SIMILAR (when size
     * > 1), half split UNEQUAL. */
    MPI_Comm_compare(MPI_COMM_WORLD, MPI_COMM_WORLD, &result);
    CHECK_EQ_INT(result, MPI_IDENT, "compare world with itself");
    MPI_Comm_dup(MPI_COMM_WORLD, &dup);
    MPI_Comm_compare(MPI_COMM_WORLD, dup, &result);
    CHECK_EQ_INT(result, MPI_CONGRUENT, "compare world with its dup");
    MPI_Comm_split(MPI_COMM_WORLD, 0, size - rank, &rev);
    MPI_Comm_rank(rev, &srank);
    CHECK_EQ_INT(srank, size - 1 - rank, "rank in the reversed split");
    MPI_Comm_compare(MPI_COMM_WORLD, rev, &result);
    CHECK_EQ_INT(result, size > 1 ? MPI_SIMILAR : MPI_CONGRUENT, "compare world with reversed split");
    MPI_Comm_split(MPI_COMM_WORLD, rank < (size + 1) / 2, rank, &half);
    MPI_Comm_size(half, &ssize);
    MPI_Comm_compare(MPI_COMM_WORLD, half, &result);
    CHECK_EQ_INT(result, size > 1 ? MPI_UNEQUAL : MPI_CONGRUENT, "compare world with half");
    chk_say("groups: Comm_compare IDENT/CONGRUENT/SIMILAR/UNEQUAL: ok");

    /* Translate ranks between the reversed communicator and world. */
    MPI_Comm_group(MPI_COMM_WORLD, &world_group);
    MPI_Comm_group(rev, &rev_group);
    {
        int *from = malloc(sizeof(int) * (size_t)size), *to = malloc(sizeof(int) * (size_t)size);
        for (i = 0; i < size; i++)
            from[i] = i;
        MPI_Group_translate_ranks(rev_group, size, from, world_group, to);
        for (i = 0; i < size; i++)
            CHECK_EQ_INT(to[i], size - 1 - i, "translate reversed rank");
        /* Group_incl of the even world ranks; odd ones are MPI_UNDEFINED in it. */
        for (i = 0; i < (size + 1) / 2; i++)
            from[i] = 2 * i;
        MPI_Group_incl(world_group, (size + 1) / 2, from, &sub_group);
        for (i = 0; i < size; i++)
            from[i] = i;
        MPI_Group_translate_ranks(world_group, size, from, sub_group, to);
        for (i = 0; i < size; i++)
            CHECK_EQ_INT(to[i], i % 2 == 0 ? i / 2 : MPI_UNDEFINED, "translate into the even group");
        free(from);
        free(to);
    }
    MPI_Group_free(&sub_group);
    CHECK(sub_group == MPI_GROUP_NULL, "Group_free nulls the handle");
    MPI_Group_free(&rev_group);
    MPI_Group_free(&world_group);
    chk_say("groups: Group_incl, Group_translate_ranks, Group_free: ok");

    /* Context separation: the same (source, tag) on world, dup and rev are
     * three different streams; receive them in the opposite order. */
    {
        int next = (rank + 1) % size, prev = (rank + size - 1) % size;
        int a = 1, b = 2, c = 3, x = 0, y = 0, z = 0, rprev;
        MPI_Request r[3];
        MPI_Isend(&a, 1, MPI_INT, next, 5, MPI_COMM_WORLD, &r[0]);
        MPI_Isend(&b, 1, MPI_INT, next, 5, dup, &r[1]);
        /* In rev, world rank `next` has rank size-1-next. */
        MPI_Isend(&c, 1, MPI_INT, size - 1 - next, 5, rev, &r[2]);
        rprev = size - 1 - prev;
        MPI_Recv(&z, 1, MPI_INT, rprev, 5, rev, MPI_STATUS_IGNORE);
        MPI_Recv(&y, 1, MPI_INT, prev, 5, dup, MPI_STATUS_IGNORE);
        MPI_Recv(&x, 1, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Waitall(3, r, MPI_STATUSES_IGNORE);
        CHECK(x == 1 && y == 2 && z == 3, "messages crossed communicators: %d %d %d", x, y, z);
    }
    chk_say("groups: communicators keep messages apart: ok");

    chk_say_ordered(MPI_COMM_WORLD, "groups: world rank %d: reversed rank %d, half size %d", rank, srank, ssize);
    MPI_Comm_free(&half);
    MPI_Comm_free(&rev);
    MPI_Comm_free(&dup);
    CHECK(dup == MPI_COMM_NULL, "Comm_free nulls the handle");
    {
        int total = 0, rc;
        MPI_Allreduce(&chk_failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        MPI_Finalize();
        MPI_Finalized(&flag);
        if (rank == 0) {
            if (!flag)
                total++, fprintf(stderr, "Finalized after MPI_Finalize is false\n");
            printf(total == 0 ? "OK\n" : "FAILED %d\n", total);
        }
        rc = total == 0 ? 0 : 1;
        return rc;
    }
}
