/* One-sided traffic across flushes. Rank 0 exposes a window (a counter, a
 * sum, and a 1 MiB slice per other rank) and computes without calling MPI
 * until the file argv[1] exists: only its progress thread serves the others.
 * Ranks 1..size-1 loop until that file exists: under a shared lock on rank 0
 * they take a ticket (Fetch_and_op), add a value (Accumulate), and every
 * eighth round put a 1 MiB pattern into their slice (its body travels in a
 * message of its own) and read back its first and last bytes (Get).
 * Then every rank checks rank 0's window against what the origins say they
 * did: the tickets are 0..n-1 with none lost or taken twice, the sum is the
 * sum of the values added, each slice holds its owner's last pattern. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "check.h"

#define SLICE (1 << 20)

int main(int argc, char **argv)
{
  int rank, size;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  CHECK(argc == 2 && size >= 2, "usage: flush-rma STOP_FILE, on 2 ranks or more");
  MPI_Aint bytes = rank == 0 ? 2 * sizeof(uint64_t) + (MPI_Aint)(size - 1) * SLICE : 0;
  uint8_t *base;
  MPI_Win win;
  MPI_Win_allocate(bytes, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &base, &win);
  if (rank == 0)
    memset(base, 0, (size_t)bytes);
  MPI_Barrier(MPI_COMM_WORLD);
  printf("started\n");
  fflush(stdout);
  uint64_t rounds = 0, added = 0, *tickets = NULL;
  size_t ntickets = 0, cap = 0;
  uint8_t *pattern = malloc(SLICE), last = 0;
  MPI_Aint slice = 2 * sizeof(uint64_t) + (MPI_Aint)(rank - 1) * SLICE;
  if (rank == 0) {
    volatile double x = 1;
    while (access(argv[1], F_OK) != 0)
      for (int i = 0; i < 100000; i++)
        x = x * 1.0000001 + 1e-9;
  } else {
    while (access(argv[1], F_OK) != 0) {
      uint64_t one = 1, ticket, value = (uint64_t)rank * 1000003u + rounds;
      MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, win);
      MPI_Fetch_and_op(&one, &ticket, MPI_UINT64_T, 0, 0, MPI_SUM, win);
      MPI_Accumulate(&value, 1, MPI_UINT64_T, 0, sizeof(uint64_t), 1, MPI_UINT64_T, MPI_SUM, win);
      if (rounds % 8 == 0) {
        uint8_t ends[2];
        last = (uint8_t)(rounds / 8 + rank);
        for (int i = 0; i < SLICE; i++)
          pattern[i] = (uint8_t)(last + i);
        MPI_Put(pattern, SLICE, MPI_BYTE, 0, slice, SLICE, MPI_BYTE, win);
        MPI_Win_flush(0, win);
        MPI_Get(&ends[0], 1, MPI_BYTE, 0, slice, 1, MPI_BYTE, win);
        MPI_Get(&ends[1], 1, MPI_BYTE, 0, slice + SLICE - 1, 1, MPI_BYTE, win);
        MPI_Win_flush(0, win);
        CHECK(ends[0] == last && ends[1] == (uint8_t)(last + SLICE - 1), "read back %u %u after writing %u", ends[0], ends[1], last);
      }
      MPI_Win_unlock(0, win);
      if (ntickets == cap && (tickets = realloc(tickets, (cap = cap ? 2 * cap : 1024) * sizeof *tickets)) == NULL)
        MPI_Abort(MPI_COMM_WORLD, 3);
      tickets[ntickets++] = ticket;
      added += value;
      rounds++;
    }
  }
  /* every origin's last unlock returned: its ops are applied */
  uint64_t total_added = 0, total_rounds = 0;
  MPI_Allreduce(&added, &total_added, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
  MPI_Allreduce(&rounds, &total_rounds, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
  int *counts = malloc(sizeof(int) * size), *displs = malloc(sizeof(int) * size), n = (int)ntickets;
  MPI_Gather(&n, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
  uint64_t *all = NULL;
  if (rank == 0) {
    int sum = 0;
    for (int r = 0; r < size; r++) {
      displs[r] = sum;
      sum += counts[r];
    }
    all = calloc((size_t)sum + 1, sizeof *all);
  }
  MPI_Gatherv(tickets, n, MPI_UINT64_T, all, counts, displs, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  uint8_t lasts[64] = { 0 };
  MPI_Gather(&last, 1, MPI_BYTE, lasts, 1, MPI_BYTE, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    uint64_t *w = (uint64_t *)base;
    CHECK(w[0] == total_rounds, "counter %llu after %llu rounds", (unsigned long long)w[0], (unsigned long long)total_rounds);
    CHECK(w[1] == total_added, "sum %llu, the origins added %llu", (unsigned long long)w[1], (unsigned long long)total_added);
    uint8_t *seen = calloc(total_rounds + 1, 1);
    for (uint64_t i = 0; i < total_rounds; i++) {
      CHECK(all[i] < total_rounds && !seen[all[i]], "ticket %llu twice or out of range", (unsigned long long)all[i]);
      seen[all[i]] = 1;
    }
    for (int r = 1; r < size && r < 64; r++) {
      const uint8_t *s = base + 2 * sizeof(uint64_t) + (size_t)(r - 1) * SLICE;
      for (int i = 0; i < SLICE; i += 4099)
        CHECK(s[i] == (uint8_t)(lasts[r] + i), "rank %d's slice byte %d is %u", r, i, s[i]);
    }
    printf("rma ok rounds %llu\n", (unsigned long long)total_rounds);
  }
  MPI_Win_free(&win);
  MPI_Finalize();
  return 0;
}
