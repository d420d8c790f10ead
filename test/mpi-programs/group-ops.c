/* ranks: 1-8 */
/*
 * Group set operations: Group_union, Group_intersection, Group_difference
 * (member order as the standard defines it), Group_range_incl and
 * Group_range_excl (positive and negative strides), and a communicator made
 * from a range group.
 */
#include "check.h"

/* Rank 0 prints a group as the world ranks of its members. */
static void say_group(const char *what, MPI_Group g)
{
    MPI_Group world;
    int n, i, *in, *out;
    char line[CHK_LINE_MAX];
    int at;
    MPI_Comm_group(MPI_COMM_WORLD, &world);
    MPI_Group_size(g, &n);
    in = malloc(sizeof(int) * (size_t)(n + 1));
    out = malloc(sizeof(int) * (size_t)(n + 1));
    for (i = 0; i < n; i++)
        in[i] = i;
    MPI_Group_translate_ranks(g, n, in, world, out);
    at = snprintf(line, sizeof line, "%s: %d members:", what, n);
    for (i = 0; i < n; i++)
        at += snprintf(line + at, sizeof line - (size_t)at, " %d", out[i]);
    chk_say("%s", line);
    free(in);
    free(out);
    MPI_Group_free(&world);
}

int main(int argc, char **argv)
{
    int rank, size, i, n;
    MPI_Group world, evens, low, g;
    int even_ranks[8], low_ranks[8];
    chk_init(&argc, &argv, &rank, &size);
    chk_say("group-ops: started on %d ranks", size);
    MPI_Comm_group(MPI_COMM_WORLD, &world);
    /* evens in descending order, the lower half ascending */
    for (i = 0, n = 0; i < size; i++)
        if ((size - 1 - i) % 2 == 0)
            even_ranks[n++] = size - 1 - i;
    MPI_Group_incl(world, n, even_ranks, &evens);
    for (i = 0; i < (size + 1) / 2; i++)
        low_ranks[i] = i;
    MPI_Group_incl(world, (size + 1) / 2, low_ranks, &low);
    say_group("evens", evens);
    say_group("low half", low);

    MPI_Group_union(evens, low, &g);
    say_group("evens union low", g);
    MPI_Group_free(&g);
    MPI_Group_union(low, evens, &g);
    say_group("low union evens", g);
    MPI_Group_free(&g);
    MPI_Group_intersection(evens, low, &g);
    say_group("evens intersection low", g);
    MPI_Group_free(&g);
    MPI_Group_difference(evens, low, &g);
    say_group("evens minus low", g);
    MPI_Group_free(&g);
    MPI_Group_difference(low, world, &g);
    say_group("low minus world", g);
    MPI_Group_free(&g);

    {
        /* down from the last rank by 2, then up through the ranks of the other parity */
        int ranges[2][3] = {{size - 1, 0, -2}, {(size - 1) % 2 == 0 ? 1 : 0, size - 1, 2}};
        int nr = size > 1 ? 2 : 1;
        MPI_Group_range_incl(world, nr, ranges, &g);
        say_group("range_incl", g);
        MPI_Group_free(&g);
        MPI_Group_range_excl(world, 1, ranges, &g);
        say_group("range_excl of the first triplet", g);
        MPI_Group_free(&g);
    }

    /* a communicator over the every-other-rank range */
    {
        int every_other[1][3] = {{0, size - 1, 2}}, crank = -1, csize = 0, sum = 0;
        MPI_Comm comm;
        MPI_Group_range_incl(world, 1, every_other, &g);
        MPI_Comm_create(MPI_COMM_WORLD, g, &comm);
        if (rank % 2 == 0) {
            CHECK(comm != MPI_COMM_NULL, "rank %d is in the every-other communicator", rank);
            MPI_Comm_rank(comm, &crank);
            MPI_Comm_size(comm, &csize);
            CHECK_EQ_INT(crank, rank / 2, "rank in the every-other communicator");
            MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, comm);
            CHECK_EQ_INT(sum, (csize - 1) * csize, "sum of even world ranks");
            MPI_Comm_free(&comm);
        } else {
            CHECK(comm == MPI_COMM_NULL, "rank %d is not in it", rank);
        }
        MPI_Group_free(&g);
        chk_say("communicator over a range group: ok");
    }
    MPI_Group_free(&evens);
    MPI_Group_free(&low);
    MPI_Group_free(&world);
    return chk_finish();
}
