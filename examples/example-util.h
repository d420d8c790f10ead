/*
 * Helpers shared by the example programs: a counter-based PRNG, a byte hash,
 * argument parsing. Header-only, plain C99, nothing MPI-specific beyond
 * MPI_Abort, so every example compiles unchanged against any MPI.
 *
 * Why counter-based: a value is a pure function of (seed, global index), so
 * the input data is the same whatever the number of ranks and however the
 * data is decomposed; that is what makes checksums comparable across runs
 * with different rank counts and different MPI implementations.
 */
#ifndef EXAMPLE_UTIL_H
#define EXAMPLE_UTIL_H

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64 finalizer: a bijective 64-bit mixer. */
static inline uint64_t ex_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* The value number `index` of stream `seed`. */
static inline uint64_t ex_random_at(uint64_t seed, uint64_t index)
{
    return ex_mix64(ex_mix64(seed) ^ index);
}

/* A uniform double in [0, 1) with 53 random bits, exactly representable. */
static inline double ex_unit_double(uint64_t r)
{
    return (double)(r >> 11) * (1.0 / 9007199254740992.0);
}

#define EX_HASH_INIT 0xcbf29ce484222325ULL

/* FNV-1a over bytes, continued from `h`: integer only, so bit-exact. */
static inline uint64_t ex_hash_bytes(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = (const unsigned char *)data;
    size_t i;
    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Parse a positive integer argument or abort with a usage message. */
static inline long long ex_parse_count(const char *text, const char *what, const char *usage)
{
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || v <= 0) {
        fprintf(stderr, "bad %s '%s'\nusage: %s\n", what, text, usage);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    return v;
}

/*
 * Removes `--NAME VALUE` from the command line (argc, argv shift down) and
 * returns VALUE, or NULL when the option is not there. For options one
 * program has on top of the common ones below.
 */
static inline const char *ex_take_option(int *argc, char **argv, const char *name)
{
    int i;
    for (i = 1; i + 1 < *argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            const char *value = argv[i + 1];
            memmove(&argv[i], &argv[i + 2], (size_t)(*argc - i - 2) * sizeof *argv);
            *argc -= 2;
            argv[*argc] = NULL;
            return value;
        }
    }
    return NULL;
}

/* Opens PREFIX.RANK with fopen MODE, or aborts naming the file. */
static inline FILE *ex_open_rank_file(const char *prefix, int rank, const char *mode)
{
    char path[4096];
    FILE *f;
    snprintf(path, sizeof path, "%s.%d", prefix, rank);
    f = fopen(path, mode);
    if (!f) {
        perror(path);
        MPI_Abort(MPI_COMM_WORLD, 4);
    }
    return f;
}

/*
 * Common command line: POSITIONAL... [--progress K]. Fills `pos` with up to
 * `max_pos` positional arguments and returns how many there were.
 */
static inline int ex_parse_args(int argc, char **argv, const char **pos, int max_pos,
                                long long *progress_every, const char *usage)
{
    int i, npos = 0;
    *progress_every = 0;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--progress") == 0 && i + 1 < argc) {
            *progress_every = ex_parse_count(argv[++i], "--progress interval", usage);
        } else if (strcmp(argv[i], "--help") == 0 || argv[i][0] == '-' || npos == max_pos) {
            fprintf(stderr, "usage: %s\n", usage);
            MPI_Abort(MPI_COMM_WORLD, 2);
        } else {
            pos[npos++] = argv[i];
        }
    }
    return npos;
}

/*
 * Chain a hash through the ranks in rank order: rank r continues the hash of
 * ranks 0..r-1 over its own bytes. Returns the final hash on rank 0 (others
 * get 0). Memory-light alternative to gathering everything to rank 0.
 */
static inline uint64_t ex_chain_hash(MPI_Comm comm, const void *data, size_t len)
{
    int rank, size;
    uint64_t h = EX_HASH_INIT;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    if (rank > 0)
        MPI_Recv(&h, 1, MPI_UINT64_T, rank - 1, 901, comm, MPI_STATUS_IGNORE);
    h = ex_hash_bytes(h, data, len);
    if (size == 1)
        return h;
    if (rank < size - 1)
        MPI_Send(&h, 1, MPI_UINT64_T, rank + 1, 901, comm);
    else
        MPI_Send(&h, 1, MPI_UINT64_T, 0, 902, comm);
    if (rank == 0) {
        MPI_Recv(&h, 1, MPI_UINT64_T, size - 1, 902, comm, MPI_STATUS_IGNORE);
        return h;
    }
    return 0;
}

#endif
