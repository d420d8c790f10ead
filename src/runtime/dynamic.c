/* Process management calls of MPI 3.1 chapter 10 that a Ferry job cannot honour, and the two that it can.
 *
 * A Ferry job is the fixed set of ranks the coordinator's catalog holds: every checkpoint, restart and
 * migration is of exactly those ranks. A spawned process, or a connection to another job, would be
 * state outside that set that no checkpoint could carry, so these calls fail with their error class
 * (MPI_ERR_SPAWN, MPI_ERR_PORT, MPI_ERR_SERVICE) and a message that says why, through the
 * communicator's error handler (fatal by default). A program that only asks (MPI_Comm_get_parent) or
 * disconnects its own communicators runs as under any MPI. */
#include <stdlib.h>

#include "fmpi.h"

#pragma weak MPI_Comm_get_parent = PMPI_Comm_get_parent
#pragma weak MPI_Comm_disconnect = PMPI_Comm_disconnect
#pragma weak MPI_Comm_spawn = PMPI_Comm_spawn
#pragma weak MPI_Comm_spawn_multiple = PMPI_Comm_spawn_multiple
#pragma weak MPI_Open_port = PMPI_Open_port
#pragma weak MPI_Close_port = PMPI_Close_port
#pragma weak MPI_Comm_accept = PMPI_Comm_accept
#pragma weak MPI_Comm_connect = PMPI_Comm_connect
#pragma weak MPI_Comm_join = PMPI_Comm_join
#pragma weak MPI_Publish_name = PMPI_Publish_name
#pragma weak MPI_Unpublish_name = PMPI_Unpublish_name
#pragma weak MPI_Lookup_name = PMPI_Lookup_name

/* No rank of a Ferry job was spawned. */
int PMPI_Comm_get_parent(MPI_Comm *parent)
{
  FMPI_CHECK_INIT("MPI_Comm_get_parent");
  *parent = MPI_COMM_NULL;
  return MPI_SUCCESS;
}

/* MPI_Comm_free once every member is here: the caller has completed its communication on comm (MPI 3.1
 * 10.5.4 asks that of it, as of MPI_Finalize), so after the barrier all of it is matched too. */
int PMPI_Comm_disconnect(MPI_Comm *comm)
{
  FMPI_CHECK_INIT("MPI_Comm_disconnect");
  fmpi_comm *c = fmpi_comm_get(*comm);
  if (c == NULL || *comm == MPI_COMM_WORLD || *comm == MPI_COMM_SELF)
    return fmpi_error(c, MPI_ERR_COMM, "MPI_Comm_disconnect");
  int rv = PMPI_Barrier(*comm);
  return rv == MPI_SUCCESS ? PMPI_Comm_free(comm) : rv;
}

int PMPI_Comm_spawn(const char *command, char *argv[], int maxprocs, MPI_Info info, int root, MPI_Comm comm,
                    MPI_Comm *intercomm, int array_of_errcodes[])
{
  (void)command, (void)argv, (void)info, (void)root;
  FMPI_CHECK_INIT("MPI_Comm_spawn");
  *intercomm = MPI_COMM_NULL;
  if (array_of_errcodes != MPI_ERRCODES_IGNORE)
    for (int i = 0; i < maxprocs; i++)
      array_of_errcodes[i] = MPI_ERR_SPAWN;
  return fmpi_error(fmpi_comm_get(comm), MPI_ERR_SPAWN, "MPI_Comm_spawn");
}

int PMPI_Comm_spawn_multiple(int count, char *array_of_commands[], char **array_of_argv[],
                             const int array_of_maxprocs[], const MPI_Info array_of_info[], int root, MPI_Comm comm,
                             MPI_Comm *intercomm, int array_of_errcodes[])
{
  (void)array_of_commands, (void)array_of_argv, (void)array_of_info, (void)root;
  FMPI_CHECK_INIT("MPI_Comm_spawn_multiple");
  *intercomm = MPI_COMM_NULL;
  if (array_of_errcodes != MPI_ERRCODES_IGNORE)
    for (int i = 0, k = 0; i < count; i++)
      for (int j = 0; j < array_of_maxprocs[i]; j++)
        array_of_errcodes[k++] = MPI_ERR_SPAWN;
  return fmpi_error(fmpi_comm_get(comm), MPI_ERR_SPAWN, "MPI_Comm_spawn_multiple");
}

int PMPI_Open_port(MPI_Info info, char *port_name)
{
  (void)info;
  FMPI_CHECK_INIT("MPI_Open_port");
  port_name[0] = '\0';
  return fmpi_error(NULL, MPI_ERR_PORT, "MPI_Open_port");
}

int PMPI_Close_port(const char *port_name)
{
  (void)port_name;
  FMPI_CHECK_INIT("MPI_Close_port");
  return fmpi_error(NULL, MPI_ERR_PORT, "MPI_Close_port");
}

int PMPI_Comm_accept(const char *port_name, MPI_Info info, int root, MPI_Comm comm, MPI_Comm *newcomm)
{
  (void)port_name, (void)info, (void)root;
  FMPI_CHECK_INIT("MPI_Comm_accept");
  *newcomm = MPI_COMM_NULL;
  return fmpi_error(fmpi_comm_get(comm), MPI_ERR_PORT, "MPI_Comm_accept");
}

int PMPI_Comm_connect(const char *port_name, MPI_Info info, int root, MPI_Comm comm, MPI_Comm *newcomm)
{
  (void)port_name, (void)info, (void)root;
  FMPI_CHECK_INIT("MPI_Comm_connect");
  *newcomm = MPI_COMM_NULL;
  return fmpi_error(fmpi_comm_get(comm), MPI_ERR_PORT, "MPI_Comm_connect");
}

int PMPI_Comm_join(int fd, MPI_Comm *intercomm)
{
  (void)fd;
  FMPI_CHECK_INIT("MPI_Comm_join");
  *intercomm = MPI_COMM_NULL;
  return fmpi_error(NULL, MPI_ERR_PORT, "MPI_Comm_join");
}

int PMPI_Publish_name(const char *service_name, MPI_Info info, const char *port_name)
{
  (void)service_name, (void)info, (void)port_name;
  FMPI_CHECK_INIT("MPI_Publish_name");
  return fmpi_error(NULL, MPI_ERR_SERVICE, "MPI_Publish_name");
}

int PMPI_Unpublish_name(const char *service_name, MPI_Info info, const char *port_name)
{
  (void)service_name, (void)info, (void)port_name;
  FMPI_CHECK_INIT("MPI_Unpublish_name");
  return fmpi_error(NULL, MPI_ERR_SERVICE, "MPI_Unpublish_name");
}

/* Nothing can be published, so no name is found. */
int PMPI_Lookup_name(const char *service_name, MPI_Info info, char *port_name)
{
  (void)service_name, (void)info;
  FMPI_CHECK_INIT("MPI_Lookup_name");
  port_name[0] = '\0';
  return fmpi_error(NULL, MPI_ERR_NAME, "MPI_Lookup_name");
}
