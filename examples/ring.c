/*
 * ring: a token of WORDS 64-bit words travels ROUNDS times around a ring of
 * all ranks. Each rank, when it holds the token, folds the round number into
 * the words it owns (word w belongs to rank w % size), so the final token --
 * and the checksum -- are the same for any number of ranks.
 *
 * usage: ring ROUNDS [WORDS] [--progress K]
 *   ring 1000        well under a second
 *   ring 20000000    minutes (checkpoint it mid-run)
 * Last line (rank 0): ring: rounds=R words=W checksum=0x...
 */
#include "example-util.h"

#define RING_TAG 1
#define RING_DEFAULT_WORDS 128
#define RING_SEED 0x52494e47ULL /* "RING" */

static const char *usage = "ring ROUNDS [WORDS] [--progress K]";

static void ring_fold(uint64_t *token, long long words, int rank, int size, long long round)
{
    long long w;
    for (w = rank; w < words; w += size)
        token[w] = ex_mix64(token[w] ^ ((uint64_t)round * 0x100000001ULL + (uint64_t)w));
}

int main(int argc, char **argv)
{
    const char *pos[2];
    long long progress_every, rounds, words = RING_DEFAULT_WORDS, round, w;
    int rank, size, next, prev, npos;
    uint64_t *token, *spare, *swap, checksum;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    npos = ex_parse_args(argc, argv, pos, 2, &progress_every, usage);
    if (npos < 1) {
        if (rank == 0)
            fprintf(stderr, "usage: %s\n", usage);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    rounds = ex_parse_count(pos[0], "ROUNDS", usage);
    if (npos > 1)
        words = ex_parse_count(pos[1], "WORDS", usage);
    if (words > (1LL << 27)) {
        if (rank == 0)
            fprintf(stderr, "WORDS too large\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }

    token = malloc((size_t)words * sizeof *token);
    spare = malloc((size_t)words * sizeof *spare);
    if (!token || !spare)
        MPI_Abort(MPI_COMM_WORLD, 3);
    for (w = 0; w < words; w++)
        token[w] = ex_random_at(RING_SEED, (uint64_t)w);
    next = (rank + 1) % size;
    prev = (rank + size - 1) % size;

    for (round = 0; round < rounds; round++) {
        if (rank == 0) {
            /* Rank 0 starts each lap and receives it back; with one rank the
             * ring is rank 0 sending to itself, so the send is nonblocking
             * and the lap comes back into a second buffer. */
            MPI_Request req;
            ring_fold(token, words, rank, size, round);
            MPI_Isend(token, (int)words, MPI_UINT64_T, next, RING_TAG, MPI_COMM_WORLD, &req);
            MPI_Recv(spare, (int)words, MPI_UINT64_T, prev, RING_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Wait(&req, MPI_STATUS_IGNORE);
            swap = token, token = spare, spare = swap;
            if (progress_every && (round + 1) % progress_every == 0)
                printf("ring: progress round=%lld\n", round + 1), fflush(stdout);
        } else {
            MPI_Recv(token, (int)words, MPI_UINT64_T, prev, RING_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            ring_fold(token, words, rank, size, round);
            MPI_Send(token, (int)words, MPI_UINT64_T, next, RING_TAG, MPI_COMM_WORLD);
        }
    }

    if (rank == 0) {
        checksum = ex_hash_bytes(EX_HASH_INIT, token, (size_t)words * sizeof *token);
        printf("ring: rounds=%lld words=%lld checksum=0x%016llx\n", rounds, words,
               (unsigned long long)checksum);
    }
    free(token);
    free(spare);
    MPI_Finalize();
    return 0;
}
