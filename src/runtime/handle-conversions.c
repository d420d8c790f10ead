/* Handle conversions between C handles and Fortran integers (MPI 3.1 section
 * 17.2.4). Ferry's handles are small integers, as MPICH's are, so a handle is
 * its own Fortran integer and converting back gives the same handle; an
 * invalid integer gives an invalid handle, which the call it is passed to
 * reports. Functions, not macros, so a profiling layer sees them too. */
#include "fmpi.h"

#pragma weak MPI_Comm_c2f = PMPI_Comm_c2f
#pragma weak MPI_Comm_f2c = PMPI_Comm_f2c
#pragma weak MPI_Type_c2f = PMPI_Type_c2f
#pragma weak MPI_Type_f2c = PMPI_Type_f2c
#pragma weak MPI_Group_c2f = PMPI_Group_c2f
#pragma weak MPI_Group_f2c = PMPI_Group_f2c
#pragma weak MPI_Request_c2f = PMPI_Request_c2f
#pragma weak MPI_Request_f2c = PMPI_Request_f2c
#pragma weak MPI_Op_c2f = PMPI_Op_c2f
#pragma weak MPI_Op_f2c = PMPI_Op_f2c
#pragma weak MPI_Info_c2f = PMPI_Info_c2f
#pragma weak MPI_Info_f2c = PMPI_Info_f2c
#pragma weak MPI_Errhandler_c2f = PMPI_Errhandler_c2f
#pragma weak MPI_Errhandler_f2c = PMPI_Errhandler_f2c
#pragma weak MPI_Win_c2f = PMPI_Win_c2f
#pragma weak MPI_Win_f2c = PMPI_Win_f2c
#pragma weak MPI_File_c2f = PMPI_File_c2f
#pragma weak MPI_File_f2c = PMPI_File_f2c
#pragma weak MPI_Message_c2f = PMPI_Message_c2f
#pragma weak MPI_Message_f2c = PMPI_Message_f2c

MPI_Fint PMPI_Comm_c2f(MPI_Comm comm) { return (MPI_Fint)comm; }
MPI_Comm PMPI_Comm_f2c(MPI_Fint comm) { return (MPI_Comm)comm; }
MPI_Fint PMPI_Type_c2f(MPI_Datatype datatype) { return (MPI_Fint)datatype; }
MPI_Datatype PMPI_Type_f2c(MPI_Fint datatype) { return (MPI_Datatype)datatype; }
MPI_Fint PMPI_Group_c2f(MPI_Group group) { return (MPI_Fint)group; }
MPI_Group PMPI_Group_f2c(MPI_Fint group) { return (MPI_Group)group; }
MPI_Fint PMPI_Request_c2f(MPI_Request request) { return (MPI_Fint)request; }
MPI_Request PMPI_Request_f2c(MPI_Fint request) { return (MPI_Request)request; }
MPI_Fint PMPI_Op_c2f(MPI_Op op) { return (MPI_Fint)op; }
MPI_Op PMPI_Op_f2c(MPI_Fint op) { return (MPI_Op)op; }
MPI_Fint PMPI_Info_c2f(MPI_Info info) { return (MPI_Fint)info; }
MPI_Info PMPI_Info_f2c(MPI_Fint info) { return (MPI_Info)info; }
MPI_Fint PMPI_Errhandler_c2f(MPI_Errhandler errhandler) { return (MPI_Fint)errhandler; }
MPI_Errhandler PMPI_Errhandler_f2c(MPI_Fint errhandler) { return (MPI_Errhandler)errhandler; }
MPI_Fint PMPI_Win_c2f(MPI_Win win) { return (MPI_Fint)win; }
MPI_Win PMPI_Win_f2c(MPI_Fint win) { return (MPI_Win)win; }
MPI_Fint PMPI_File_c2f(MPI_File file) { return (MPI_Fint)file; }
MPI_File PMPI_File_f2c(MPI_Fint file) { return (MPI_File)file; }
MPI_Fint PMPI_Message_c2f(MPI_Message message) { return (MPI_Fint)message; }
MPI_Message PMPI_Message_f2c(MPI_Fint message) { return (MPI_Message)message; }
