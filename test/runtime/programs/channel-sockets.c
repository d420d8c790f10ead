/* The runtime's TCP channels as a rank sees them from inside: after a message
 * each way with every other rank, each rank looks at its own connected TCP
 * sockets (found through /proc/self/fd) and prints one line per socket:
 *   rank R peer-host other|same notsent-lowat N
 * ("other": the socket's peer address differs from its own address, a channel
 * to another host). A channel to another host must keep the runtime's
 * TCP_NOTSENT_LOWAT, one on the host's own address the kernel's default (0
 * read back). Ranks print in rank order; rank 0 ends with "sockets done". */
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "check.h"

static void print_sockets(int rank)
{
  DIR *d = opendir("/proc/self/fd");
  CHECK(d != NULL, "cannot list /proc/self/fd");
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    int fd = atoi(e->d_name), domain = 0, type = 0, lowat = -1;
    socklen_t len = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_INET)
      continue;
    len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
      continue;
    struct sockaddr_in self, peer;
    socklen_t self_len = sizeof self, peer_len = sizeof peer;
    if (getpeername(fd, (struct sockaddr *)&peer, &peer_len) != 0)
      continue; /* the listener */
    CHECK(getsockname(fd, (struct sockaddr *)&self, &self_len) == 0, "getsockname of fd %d", fd);
    len = sizeof lowat;
    CHECK(getsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, &len) == 0, "TCP_NOTSENT_LOWAT of fd %d", fd);
    printf("rank %d peer-host %s notsent-lowat %d\n", rank, self.sin_addr.s_addr == peer.sin_addr.s_addr ? "same" : "other", lowat);
  }
  closedir(d);
  fflush(stdout);
}

int main(int argc, char **argv)
{
  int rank, size;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  for (int peer = 0; peer < size; peer++) {
    int out = rank * 100 + peer, in = -1;
    if (peer == rank)
      continue;
    MPI_Sendrecv(&out, 1, MPI_INT, peer, 0, &in, 1, MPI_INT, peer, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    CHECK(in == peer * 100 + rank, "from rank %d: %d", peer, in);
  }
  for (int r = 0; r < size; r++) {
    if (r == rank)
      print_sockets(rank);
    MPI_Barrier(MPI_COMM_WORLD);
  }
  if (rank == 0)
    printf("sockets done\n");
  MPI_Finalize();
  return 0;
}
