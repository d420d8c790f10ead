/* A profiling layer over the persistent-request calls: this program defines
 * MPI_Send_init, MPI_Recv_init, MPI_Start and MPI_Startall itself, counts the
 * calls and forwards them to the PMPI_ names, as a profiling tool does. With
 * the library's MPI_ names weak aliases, these definitions win at link time
 * and the exchange still works through PMPI_. Rank 0 prints the counts. */
#include "check.h"

static int n_send_init, n_recv_init, n_start, n_startall;

int MPI_Send_init(const void *buf, int count, MPI_Datatype type, int dest, int tag, MPI_Comm comm, MPI_Request *req)
{
  n_send_init++;
  return PMPI_Send_init(buf, count, type, dest, tag, comm, req);
}

int MPI_Recv_init(void *buf, int count, MPI_Datatype type, int src, int tag, MPI_Comm comm, MPI_Request *req)
{
  n_recv_init++;
  return PMPI_Recv_init(buf, count, type, src, tag, comm, req);
}

int MPI_Start(MPI_Request *req)
{
  n_start++;
  return PMPI_Start(req);
}

int MPI_Startall(int count, MPI_Request reqs[])
{
  n_startall++;
  return PMPI_Startall(count, reqs);
}

int main(int argc, char **argv)
{
  int rank, size, out, in = -1;
  MPI_Request r[2];
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int next = (rank + 1) % size, prev = (rank + size - 1) % size;
  MPI_Recv_init(&in, 1, MPI_INT, prev, 3, MPI_COMM_WORLD, &r[0]);
  MPI_Send_init(&out, 1, MPI_INT, next, 3, MPI_COMM_WORLD, &r[1]);
  for (int i = 0; i < 3; i++) {
    out = rank * 10 + i;
    MPI_Startall(2, r);
    MPI_Waitall(2, r, MPI_STATUSES_IGNORE);
    CHECK(in == prev * 10 + i, "round %d: got %d", i, in);
  }
  out = rank * 10 + 3;
  MPI_Start(&r[0]);
  MPI_Start(&r[1]);
  MPI_Waitall(2, r, MPI_STATUSES_IGNORE);
  CHECK(in == prev * 10 + 3, "last round: got %d", in);
  MPI_Request_free(&r[0]);
  MPI_Request_free(&r[1]);
  if (rank == 0)
    printf("send_init %d recv_init %d start %d startall %d\n", n_send_init, n_recv_init, n_start, n_startall);
  MPI_Finalize();
  return 0;
}
