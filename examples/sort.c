/*
 * sort: parallel sample sort of KEYS 64-bit integers, repeated ROUNDS times
 * with fresh keys each round.
 *
 * Each round: every rank generates its block of keys (a pure function of the
 * global index), sorts it locally, picks size-1 regular samples; the samples
 * are gathered everywhere (Allgather) and size-1 splitters chosen; the number
 * of keys for every destination is exchanged with Alltoall and the keys
 * themselves with Alltoallv; each rank merges what it received. The result
 * is checked globally sorted (neighbour boundaries, total count) and hashed
 * in rank order. The sorted sequence is unique, so the checksum is the same
 * on any number of ranks and any MPI.
 *
 * usage: sort KEYS [ROUNDS] [--progress K]     (ROUNDS defaults to 1)
 *   sort 100000           well under a second
 *   sort 4000000 500      minutes (checkpoint it mid-run)
 * Last line (rank 0): sort: keys=K rounds=R checksum=0x...
 */
#include "example-util.h"

#define SORT_SEED 0x534f5254ULL /* "SORT" */
#define TAG_BOUNDARY 20

static const char *usage = "sort KEYS [ROUNDS] [--progress K]";

static int sort_compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Report a failed check from any rank and end the job. */
static void sort_fail(int rank, const char *what, long long round)
{
    fprintf(stderr, "sort: rank %d: round %lld: %s\n", rank, round, what);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

int main(int argc, char **argv)
{
    const char *pos[2];
    long long progress_every, keys, rounds = 1, round, first, count, i, total, received;
    int rank, size, npos, d;
    uint64_t *local, *sorted, *samples, *all_samples, *splitters, round_hash, checksum = EX_HASH_INIT;
    int *send_counts, *recv_counts, *send_displs, *recv_displs;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    npos = ex_parse_args(argc, argv, pos, 2, &progress_every, usage);
    if (npos < 1) {
        if (rank == 0)
            fprintf(stderr, "usage: %s\n", usage);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    keys = ex_parse_count(pos[0], "KEYS", usage);
    if (npos > 1)
        rounds = ex_parse_count(pos[1], "ROUNDS", usage);
    if (keys > (1LL << 30)) {
        if (rank == 0)
            fprintf(stderr, "KEYS must be at most 2^30\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }

    first = keys * rank / size;
    count = keys * (rank + 1) / size - first;
    local = malloc((size_t)(count + 1) * sizeof *local);
    samples = malloc((size_t)size * sizeof *samples);
    all_samples = malloc((size_t)size * (size_t)size * sizeof *all_samples);
    splitters = malloc((size_t)size * sizeof *splitters);
    send_counts = malloc(4 * (size_t)size * sizeof(int));
    if (!local || !samples || !all_samples || !splitters || !send_counts)
        MPI_Abort(MPI_COMM_WORLD, 3);
    recv_counts = send_counts + size;
    send_displs = recv_counts + size;
    recv_displs = send_displs + size;

    for (round = 0; round < rounds; round++) {
        uint64_t seed = ex_mix64(SORT_SEED + (uint64_t)round);
        for (i = 0; i < count; i++)
            local[i] = ex_random_at(seed, (uint64_t)(first + i));
        qsort(local, (size_t)count, sizeof *local, sort_compare_u64);

        /* Regular sampling: size-1 samples per rank; a rank without keys
         * offers the largest key value so it does not pull splitters down. */
        for (d = 0; d < size - 1; d++)
            samples[d] = count > 0 ? local[count * (d + 1) / size] : UINT64_MAX;
        if (size > 1) {
            MPI_Allgather(samples, size - 1, MPI_UINT64_T, all_samples, size - 1, MPI_UINT64_T,
                          MPI_COMM_WORLD);
            qsort(all_samples, (size_t)size * (size_t)(size - 1), sizeof *all_samples, sort_compare_u64);
            for (d = 0; d < size - 1; d++)
                splitters[d] = all_samples[(long long)(d + 1) * (size - 1)];
        }

        /* Keys <= splitters[d] (and > splitters[d-1]) go to rank d. */
        i = 0;
        for (d = 0; d < size; d++) {
            long long start = i;
            if (d == size - 1)
                i = count;
            else
                while (i < count && local[i] <= splitters[d])
                    i++;
            send_counts[d] = (int)(i - start);
            send_displs[d] = (int)start;
        }
        MPI_Alltoall(send_counts, 1, MPI_INT, recv_counts, 1, MPI_INT, MPI_COMM_WORLD);
        received = 0;
        for (d = 0; d < size; d++) {
            recv_displs[d] = (int)received;
            received += recv_counts[d];
        }
        sorted = malloc((size_t)(received + 1) * sizeof *sorted);
        if (!sorted)
            MPI_Abort(MPI_COMM_WORLD, 3);
        MPI_Alltoallv(local, send_counts, send_displs, MPI_UINT64_T, sorted, recv_counts, recv_displs,
                      MPI_UINT64_T, MPI_COMM_WORLD);
        /* Each incoming run is sorted already; a sort of the concatenation is
         * simpler than a k-way merge and fast enough for an example. */
        qsort(sorted, (size_t)received, sizeof *sorted, sort_compare_u64);

        /* Verify: locally sorted, nothing lost, and ordered across ranks
         * (every rank's first key >= the previous non-empty rank's last). */
        for (i = 1; i < received; i++)
            if (sorted[i - 1] > sorted[i])
                sort_fail(rank, "local block not sorted", round);
        MPI_Allreduce(&received, &total, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
        if (total != keys)
            sort_fail(rank, "key count changed", round);
        {
            /* Carry the largest key seen so far from rank to rank. */
            uint64_t carry[2] = {0, 0}; /* {have_any, max_so_far} */
            MPI_Status st;
            if (rank > 0)
                MPI_Recv(carry, 2, MPI_UINT64_T, rank - 1, TAG_BOUNDARY, MPI_COMM_WORLD, &st);
            if (received > 0) {
                if (carry[0] && carry[1] > sorted[0])
                    sort_fail(rank, "blocks out of order across ranks", round);
                carry[0] = 1;
                carry[1] = sorted[received - 1];
            }
            if (rank < size - 1)
                MPI_Send(carry, 2, MPI_UINT64_T, rank + 1, TAG_BOUNDARY, MPI_COMM_WORLD);
        }

        round_hash = ex_chain_hash(MPI_COMM_WORLD, sorted, (size_t)received * sizeof *sorted);
        if (rank == 0) {
            checksum = ex_hash_bytes(checksum, &round_hash, sizeof round_hash);
            if (progress_every && (round + 1) % progress_every == 0)
                printf("sort: progress round=%lld\n", round + 1), fflush(stdout);
        }
        free(sorted);
    }

    if (rank == 0)
        printf("sort: keys=%lld rounds=%lld checksum=0x%016llx\n", keys, rounds, (unsigned long long)checksum);
    free(local);
    free(samples);
    free(all_samples);
    free(splitters);
    free(send_counts);
    MPI_Finalize();
    return 0;
}
