/* Ferry's MPI library (libferrympi): the MPI 3.1 subset of issue 3, with
 * channels that Ferry can flush, close and rewire for a checkpoint.
 * Handles are small integers (as in MPICH); every MPI_ function has a PMPI_
 * twin so profiling tools can interpose. */
#ifndef FERRY_MPI_H
#define FERRY_MPI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MPI_VERSION 3
#define MPI_SUBVERSION 1
#define FERRY_MPI 1

typedef int MPI_Datatype;
typedef int MPI_Comm;
typedef int MPI_Group;
typedef int MPI_Op;
typedef int MPI_Request;
typedef int MPI_Errhandler;
typedef int MPI_Info;
typedef int MPI_Message;
typedef intptr_t MPI_Aint;
typedef long long MPI_Offset;
typedef long long MPI_Count;
typedef int MPI_File;
typedef int MPI_Win;

typedef struct MPI_Status {
  int MPI_SOURCE;
  int MPI_TAG;
  int MPI_ERROR;
  int ferry_cancelled;
  long long ferry_bytes; /* bytes received */
} MPI_Status;

/* Fortran integers, for the C-Fortran status conversions (MPI_Status_c2f) */
typedef int MPI_Fint;
#define MPI_F_STATUS_SIZE ((int)(sizeof(MPI_Status) / sizeof(MPI_Fint)))
#define MPI_F_SOURCE 0
#define MPI_F_TAG 1
#define MPI_F_ERROR 2
#define MPI_F_STATUS_IGNORE ((MPI_Fint *)0)
#define MPI_F_STATUSES_IGNORE ((MPI_Fint *)0)

/* generalized requests (grequest.c) */
typedef int MPI_Grequest_query_function(void *extra_state, MPI_Status *status);
typedef int MPI_Grequest_free_function(void *extra_state);
typedef int MPI_Grequest_cancel_function(void *extra_state, int complete);

typedef void MPI_User_function(void *invec, void *inoutvec, int *len, MPI_Datatype *datatype);
typedef void MPI_Comm_errhandler_function(MPI_Comm *comm, int *error_code, ...);
typedef int MPI_Comm_copy_attr_function(MPI_Comm oldcomm, int comm_keyval, void *extra_state, void *attribute_val_in,
                                        void *attribute_val_out, int *flag);
typedef int MPI_Comm_delete_attr_function(MPI_Comm comm, int comm_keyval, void *attribute_val, void *extra_state);
/* MPI-1 names of the same callback types (removed in MPI 3.0; MPICH still has them) */
typedef MPI_Comm_copy_attr_function MPI_Copy_function;
typedef MPI_Comm_delete_attr_function MPI_Delete_function;
typedef MPI_Comm_errhandler_function MPI_Handler_function;
typedef void MPI_Win_errhandler_function(MPI_Win *win, int *error_code, ...);
typedef void MPI_File_errhandler_function(MPI_File *file, int *error_code, ...);
typedef int MPI_Win_copy_attr_function(MPI_Win oldwin, int win_keyval, void *extra_state, void *attribute_val_in,
                                       void *attribute_val_out, int *flag);
typedef int MPI_Win_delete_attr_function(MPI_Win win, int win_keyval, void *attribute_val, void *extra_state);
typedef int MPI_Type_copy_attr_function(MPI_Datatype oldtype, int type_keyval, void *extra_state,
                                        void *attribute_val_in, void *attribute_val_out, int *flag);
typedef int MPI_Type_delete_attr_function(MPI_Datatype datatype, int type_keyval, void *attribute_val,
                                          void *extra_state);
/* the predefined callbacks (functions, not handles) */
int MPI_COMM_NULL_COPY_FN(MPI_Comm, int, void *, void *, void *, int *);
int MPI_COMM_DUP_FN(MPI_Comm, int, void *, void *, void *, int *);
int MPI_COMM_NULL_DELETE_FN(MPI_Comm, int, void *, void *);
int MPI_WIN_NULL_COPY_FN(MPI_Win, int, void *, void *, void *, int *);
int MPI_WIN_DUP_FN(MPI_Win, int, void *, void *, void *, int *);
int MPI_WIN_NULL_DELETE_FN(MPI_Win, int, void *, void *);
int MPI_TYPE_NULL_COPY_FN(MPI_Datatype, int, void *, void *, void *, int *);
int MPI_TYPE_DUP_FN(MPI_Datatype, int, void *, void *, void *, int *);
int MPI_TYPE_NULL_DELETE_FN(MPI_Datatype, int, void *, void *);
#define MPI_NULL_COPY_FN MPI_COMM_NULL_COPY_FN
#define MPI_DUP_FN MPI_COMM_DUP_FN
#define MPI_NULL_DELETE_FN MPI_COMM_NULL_DELETE_FN

/* error classes */
#define MPI_SUCCESS 0
#define MPI_ERR_BUFFER 1
#define MPI_ERR_COUNT 2
#define MPI_ERR_TYPE 3
#define MPI_ERR_TAG 4
#define MPI_ERR_COMM 5
#define MPI_ERR_RANK 6
#define MPI_ERR_ROOT 7
#define MPI_ERR_GROUP 8
#define MPI_ERR_OP 9
#define MPI_ERR_TOPOLOGY 10
#define MPI_ERR_DIMS 11
#define MPI_ERR_ARG 12
#define MPI_ERR_UNKNOWN 13
#define MPI_ERR_TRUNCATE 14
#define MPI_ERR_OTHER 15
#define MPI_ERR_INTERN 16
#define MPI_ERR_IN_STATUS 17
#define MPI_ERR_PENDING 18
#define MPI_ERR_REQUEST 19
#define MPI_ERR_NO_MEM 20
#define MPI_ERR_INFO 21
#define MPI_ERR_INFO_KEY 22
#define MPI_ERR_INFO_VALUE 23
#define MPI_ERR_INFO_NOKEY 24
#define MPI_ERR_FILE 25
#define MPI_ERR_NOT_SAME 26
#define MPI_ERR_AMODE 27
#define MPI_ERR_UNSUPPORTED_DATAREP 28
#define MPI_ERR_UNSUPPORTED_OPERATION 29
#define MPI_ERR_NO_SUCH_FILE 30
#define MPI_ERR_FILE_EXISTS 31
#define MPI_ERR_BAD_FILE 32
#define MPI_ERR_ACCESS 33
#define MPI_ERR_NO_SPACE 34
#define MPI_ERR_QUOTA 35
#define MPI_ERR_READ_ONLY 36
#define MPI_ERR_FILE_IN_USE 37
#define MPI_ERR_DUP_DATAREP 38
#define MPI_ERR_CONVERSION 39
#define MPI_ERR_IO 40
#define MPI_ERR_WIN 41
#define MPI_ERR_BASE 42
#define MPI_ERR_SIZE 43
#define MPI_ERR_DISP 44
#define MPI_ERR_LOCKTYPE 45
#define MPI_ERR_ASSERT 46
#define MPI_ERR_RMA_CONFLICT 47
#define MPI_ERR_RMA_SYNC 48
#define MPI_ERR_RMA_RANGE 49
#define MPI_ERR_RMA_ATTACH 50
#define MPI_ERR_RMA_SHARED 51
#define MPI_ERR_RMA_FLAVOR 52
#define MPI_ERR_KEYVAL 53
#define MPI_ERR_NAME 54
#define MPI_ERR_PORT 55
#define MPI_ERR_SERVICE 56
#define MPI_ERR_SPAWN 57
/* the tool information interface's return codes (tools.c) */
#define MPI_T_ERR_MEMORY 58
#define MPI_T_ERR_NOT_INITIALIZED 59
#define MPI_T_ERR_CANNOT_INIT 60
#define MPI_T_ERR_INVALID_INDEX 61
#define MPI_T_ERR_INVALID_ITEM 62
#define MPI_T_ERR_INVALID_HANDLE 63
#define MPI_T_ERR_OUT_OF_HANDLES 64
#define MPI_T_ERR_OUT_OF_SESSIONS 65
#define MPI_T_ERR_INVALID_SESSION 66
#define MPI_T_ERR_CVAR_SET_NOT_NOW 67
#define MPI_T_ERR_CVAR_SET_NEVER 68
#define MPI_T_ERR_PVAR_NO_STARTSTOP 69
#define MPI_T_ERR_PVAR_NO_WRITE 70
#define MPI_T_ERR_PVAR_NO_ATOMIC 71
#define MPI_T_ERR_INVALID_NAME 72
#define MPI_T_ERR_INVALID 73
/* classes and codes of MPI_Add_error_class/_code are above this */
#define MPI_ERR_LASTCODE 80

/* special values */
#define MPI_ANY_SOURCE (-2)
#define MPI_PROC_NULL (-1)
#define MPI_ROOT (-3)
#define MPI_ANY_TAG (-1)
#define MPI_UNDEFINED (-32766)
#define MPI_TAG_UB_VALUE 0x7fffffff
#define MPI_MAX_PROCESSOR_NAME 256
#define MPI_MAX_ERROR_STRING 512
#define MPI_MAX_OBJECT_NAME 128
#define MPI_MAX_INFO_KEY 255
#define MPI_MAX_INFO_VAL 1024
#define MPI_INFO_NULL ((MPI_Info)0)
/* the environment the program started in (info.c): command, argv, maxprocs, wdir, thread_level */
#define MPI_INFO_ENV ((MPI_Info)0x7f000001)
#define MPI_MESSAGE_NULL ((MPI_Message)0)
#define MPI_MESSAGE_NO_PROC ((MPI_Message)-1)
#define MPI_COMM_TYPE_SHARED 1
#define MPI_FILE_NULL ((MPI_File)0)
#define MPI_MAX_DATAREP_STRING 128
#define MPI_DISPLACEMENT_CURRENT (-54278278)

/* file access modes (MPI_File_open) and seek origins */
#define MPI_MODE_CREATE 1
#define MPI_MODE_RDONLY 2
#define MPI_MODE_WRONLY 4
#define MPI_MODE_RDWR 8
#define MPI_MODE_DELETE_ON_CLOSE 16
#define MPI_MODE_UNIQUE_OPEN 32
#define MPI_MODE_EXCL 64
#define MPI_MODE_APPEND 128
#define MPI_MODE_SEQUENTIAL 256
/* one-sided: assertions (MPI_Win_fence, _post, _start, _lock), lock types,
 * window attributes (MPI_Win_get_attr), flavors and memory models */
#define MPI_MODE_NOCHECK 1024
#define MPI_MODE_NOSTORE 2048
#define MPI_MODE_NOPUT 4096
#define MPI_MODE_NOPRECEDE 8192
#define MPI_MODE_NOSUCCEED 16384
#define MPI_LOCK_EXCLUSIVE 234
#define MPI_LOCK_SHARED 235
#define MPI_WIN_BASE 101
#define MPI_WIN_SIZE 102
#define MPI_WIN_DISP_UNIT 103
#define MPI_WIN_CREATE_FLAVOR 104
#define MPI_WIN_MODEL 105
#define MPI_WIN_FLAVOR_CREATE 1
#define MPI_WIN_FLAVOR_ALLOCATE 2
#define MPI_WIN_FLAVOR_DYNAMIC 3
#define MPI_WIN_FLAVOR_SHARED 4
#define MPI_WIN_SEPARATE 1
#define MPI_WIN_UNIFIED 2
#define MPI_WIN_NULL ((MPI_Win)0)
#define MPI_SEEK_SET 600
#define MPI_SEEK_CUR 602
#define MPI_SEEK_END 604
#define MPI_MAX_LIBRARY_VERSION_STRING 256
#define MPI_BOTTOM ((void *)0)
#define MPI_IN_PLACE ((void *)-1)
#define MPI_STATUS_IGNORE ((MPI_Status *)1)
#define MPI_STATUSES_IGNORE ((MPI_Status *)1)
#define MPI_ERRCODES_IGNORE ((int *)0)
#define MPI_ARGV_NULL ((char **)0)
#define MPI_ARGVS_NULL ((char ***)0)
#define MPI_MAX_PORT_NAME 256
#define MPI_UNWEIGHTED ((int *)1)
#define MPI_WEIGHTS_EMPTY ((int *)2)

/* comparison results */
#define MPI_IDENT 0
#define MPI_CONGRUENT 1
#define MPI_SIMILAR 2
#define MPI_UNEQUAL 3

/* array orders (MPI_Type_create_subarray) */
#define MPI_ORDER_C 56
#define MPI_ORDER_FORTRAN 57
#define MPI_DISTRIBUTE_BLOCK 121
#define MPI_DISTRIBUTE_CYCLIC 122
#define MPI_DISTRIBUTE_NONE 123
#define MPI_DISTRIBUTE_DFLT_DARG (-49767)

/* datatype constructors (MPI_Type_get_envelope) and classes (MPI_Type_match_size) */
#define MPI_COMBINER_NAMED 1
#define MPI_COMBINER_DUP 2
#define MPI_COMBINER_CONTIGUOUS 3
#define MPI_COMBINER_VECTOR 4
#define MPI_COMBINER_HVECTOR_INTEGER 5
#define MPI_COMBINER_HVECTOR 6
#define MPI_COMBINER_INDEXED 7
#define MPI_COMBINER_HINDEXED_INTEGER 8
#define MPI_COMBINER_HINDEXED 9
#define MPI_COMBINER_INDEXED_BLOCK 10
#define MPI_COMBINER_STRUCT_INTEGER 11
#define MPI_COMBINER_STRUCT 12
#define MPI_COMBINER_SUBARRAY 13
#define MPI_COMBINER_DARRAY 14
#define MPI_COMBINER_F90_REAL 15
#define MPI_COMBINER_F90_COMPLEX 16
#define MPI_COMBINER_F90_INTEGER 17
#define MPI_COMBINER_RESIZED 18
#define MPI_COMBINER_HINDEXED_BLOCK 19
#define MPI_TYPECLASS_REAL 1
#define MPI_TYPECLASS_INTEGER 2
#define MPI_TYPECLASS_COMPLEX 3

/* topologies (MPI_Topo_test) */
#define MPI_GRAPH 1
#define MPI_CART 2
#define MPI_DIST_GRAPH 3

/* thread levels */
#define MPI_THREAD_SINGLE 0
#define MPI_THREAD_FUNNELED 1
#define MPI_THREAD_SERIALIZED 2
#define MPI_THREAD_MULTIPLE 3

/* attribute keys (MPI_Comm_get_attr) */
#define MPI_TAG_UB 1
#define MPI_HOST 2
#define MPI_IO 3
#define MPI_WTIME_IS_GLOBAL 4
#define MPI_LASTUSEDCODE 5
#define MPI_UNIVERSE_SIZE 6
#define MPI_APPNUM 7
#define MPI_KEYVAL_INVALID (-1)

/* null and predefined handles */
#define MPI_COMM_NULL ((MPI_Comm)0)
#define MPI_COMM_WORLD ((MPI_Comm)1)
#define MPI_COMM_SELF ((MPI_Comm)2)
#define MPI_GROUP_NULL ((MPI_Group)0)
#define MPI_GROUP_EMPTY ((MPI_Group)1)
#define MPI_REQUEST_NULL ((MPI_Request)0)
/* Space MPI_Bsend charges per message on top of its bytes (see MPI_Buffer_attach). */
#define MPI_BSEND_OVERHEAD 96
#define MPI_ERRHANDLER_NULL ((MPI_Errhandler)0)
#define MPI_ERRORS_ARE_FATAL ((MPI_Errhandler)1)
#define MPI_ERRORS_RETURN ((MPI_Errhandler)2)

#define MPI_DATATYPE_NULL ((MPI_Datatype)0)
#define MPI_CHAR ((MPI_Datatype)1)
#define MPI_SIGNED_CHAR ((MPI_Datatype)2)
#define MPI_UNSIGNED_CHAR ((MPI_Datatype)3)
#define MPI_BYTE ((MPI_Datatype)4)
#define MPI_WCHAR ((MPI_Datatype)5)
#define MPI_SHORT ((MPI_Datatype)6)
#define MPI_UNSIGNED_SHORT ((MPI_Datatype)7)
#define MPI_INT ((MPI_Datatype)8)
#define MPI_UNSIGNED ((MPI_Datatype)9)
#define MPI_LONG ((MPI_Datatype)10)
#define MPI_UNSIGNED_LONG ((MPI_Datatype)11)
#define MPI_LONG_LONG_INT ((MPI_Datatype)12)
#define MPI_LONG_LONG MPI_LONG_LONG_INT
#define MPI_UNSIGNED_LONG_LONG ((MPI_Datatype)13)
#define MPI_FLOAT ((MPI_Datatype)14)
#define MPI_DOUBLE ((MPI_Datatype)15)
#define MPI_LONG_DOUBLE ((MPI_Datatype)16)
#define MPI_INT8_T ((MPI_Datatype)17)
#define MPI_INT16_T ((MPI_Datatype)18)
#define MPI_INT32_T ((MPI_Datatype)19)
#define MPI_INT64_T ((MPI_Datatype)20)
#define MPI_UINT8_T ((MPI_Datatype)21)
#define MPI_UINT16_T ((MPI_Datatype)22)
#define MPI_UINT32_T ((MPI_Datatype)23)
#define MPI_UINT64_T ((MPI_Datatype)24)
#define MPI_C_BOOL ((MPI_Datatype)25)
#define MPI_C_FLOAT_COMPLEX ((MPI_Datatype)26)
#define MPI_C_COMPLEX MPI_C_FLOAT_COMPLEX
#define MPI_C_DOUBLE_COMPLEX ((MPI_Datatype)27)
#define MPI_C_LONG_DOUBLE_COMPLEX ((MPI_Datatype)28)
#define MPI_AINT ((MPI_Datatype)29)
#define MPI_OFFSET ((MPI_Datatype)30)
#define MPI_COUNT ((MPI_Datatype)31)
#define MPI_PACKED ((MPI_Datatype)32)
#define MPI_FLOAT_INT ((MPI_Datatype)33)
#define MPI_DOUBLE_INT ((MPI_Datatype)34)
#define MPI_LONG_INT ((MPI_Datatype)35)
#define MPI_2INT ((MPI_Datatype)36)
#define MPI_SHORT_INT ((MPI_Datatype)37)
#define MPI_LONG_DOUBLE_INT ((MPI_Datatype)38)
/* MPI-1 bound markers for MPI_Type_struct (removed in MPI 3.0; use MPI_Type_create_resized) */
#define MPI_LB ((MPI_Datatype)39)
#define MPI_UB ((MPI_Datatype)40)

#define MPI_OP_NULL ((MPI_Op)0)
#define MPI_MAX ((MPI_Op)1)
#define MPI_MIN ((MPI_Op)2)
#define MPI_SUM ((MPI_Op)3)
#define MPI_PROD ((MPI_Op)4)
#define MPI_LAND ((MPI_Op)5)
#define MPI_BAND ((MPI_Op)6)
#define MPI_LOR ((MPI_Op)7)
#define MPI_BOR ((MPI_Op)8)
#define MPI_LXOR ((MPI_Op)9)
#define MPI_BXOR ((MPI_Op)10)
#define MPI_MINLOC ((MPI_Op)11)
#define MPI_MAXLOC ((MPI_Op)12)
#define MPI_REPLACE ((MPI_Op)13)
#define MPI_NO_OP ((MPI_Op)14)

/* Declares MPI_name and its PMPI_name twin. */
#define FERRY_MPI_API(ret, name, args) ret MPI_##name args; ret PMPI_##name args;

/* setup */
FERRY_MPI_API(int, Init, (int *argc, char ***argv))
FERRY_MPI_API(int, Init_thread, (int *argc, char ***argv, int required, int *provided))
FERRY_MPI_API(int, Query_thread, (int *provided))
FERRY_MPI_API(int, Is_thread_main, (int *flag))
FERRY_MPI_API(int, Finalize, (void))
FERRY_MPI_API(int, Initialized, (int *flag))
FERRY_MPI_API(int, Finalized, (int *flag))
FERRY_MPI_API(int, Abort, (MPI_Comm comm, int errorcode))
FERRY_MPI_API(int, Comm_rank, (MPI_Comm comm, int *rank))
FERRY_MPI_API(int, Comm_size, (MPI_Comm comm, int *size))
FERRY_MPI_API(int, Get_processor_name, (char *name, int *resultlen))
FERRY_MPI_API(double, Wtime, (void))
FERRY_MPI_API(double, Wtick, (void))
FERRY_MPI_API(int, Get_version, (int *version, int *subversion))
FERRY_MPI_API(int, Get_library_version, (char *version, int *resultlen))
FERRY_MPI_API(int, Comm_get_attr, (MPI_Comm comm, int keyval, void *attribute_val, int *flag))
FERRY_MPI_API(int, Comm_create_keyval, (MPI_Comm_copy_attr_function *comm_copy_attr_fn,
                                        MPI_Comm_delete_attr_function *comm_delete_attr_fn, int *comm_keyval,
                                        void *extra_state))
FERRY_MPI_API(int, Comm_free_keyval, (int *comm_keyval))
FERRY_MPI_API(int, Comm_set_attr, (MPI_Comm comm, int comm_keyval, void *attribute_val))
FERRY_MPI_API(int, Comm_delete_attr, (MPI_Comm comm, int comm_keyval))
FERRY_MPI_API(int, Attr_get, (MPI_Comm comm, int keyval, void *attribute_val, int *flag))
FERRY_MPI_API(int, Attr_put, (MPI_Comm comm, int keyval, void *attribute_val))
FERRY_MPI_API(int, Attr_delete, (MPI_Comm comm, int keyval))

/* point to point */
FERRY_MPI_API(int, Send, (const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm))
FERRY_MPI_API(int, Ssend, (const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm))
FERRY_MPI_API(int, Recv, (void *buf, int count, MPI_Datatype datatype, int source, int tag, MPI_Comm comm, MPI_Status *status))
FERRY_MPI_API(int, Isend, (const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Issend, (const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Irecv, (void *buf, int count, MPI_Datatype datatype, int source, int tag, MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Sendrecv, (const void *sendbuf, int sendcount, MPI_Datatype sendtype, int dest, int sendtag,
                              void *recvbuf, int recvcount, MPI_Datatype recvtype, int source, int recvtag,
                              MPI_Comm comm, MPI_Status *status))
FERRY_MPI_API(int, Sendrecv_replace, (void *buf, int count, MPI_Datatype datatype, int dest, int sendtag, int source,
                                      int recvtag, MPI_Comm comm, MPI_Status *status))
FERRY_MPI_API(int, Probe, (int source, int tag, MPI_Comm comm, MPI_Status *status))
FERRY_MPI_API(int, Iprobe, (int source, int tag, MPI_Comm comm, int *flag, MPI_Status *status))
FERRY_MPI_API(int, Mprobe, (int source, int tag, MPI_Comm comm, MPI_Message *message, MPI_Status *status))
FERRY_MPI_API(int, Improbe, (int source, int tag, MPI_Comm comm, int *flag, MPI_Message *message, MPI_Status *status))
FERRY_MPI_API(int, Mrecv, (void *buf, int count, MPI_Datatype datatype, MPI_Message *message, MPI_Status *status))
FERRY_MPI_API(int, Imrecv, (void *buf, int count, MPI_Datatype datatype, MPI_Message *message, MPI_Request *request))
FERRY_MPI_API(int, Get_count, (const MPI_Status *status, MPI_Datatype datatype, int *count))
FERRY_MPI_API(int, Get_elements, (const MPI_Status *status, MPI_Datatype datatype, int *count))
FERRY_MPI_API(int, Wait, (MPI_Request *request, MPI_Status *status))
FERRY_MPI_API(int, Waitall, (int count, MPI_Request requests[], MPI_Status *statuses))
FERRY_MPI_API(int, Waitany, (int count, MPI_Request requests[], int *index, MPI_Status *status))
FERRY_MPI_API(int, Waitsome, (int incount, MPI_Request requests[], int *outcount, int indices[], MPI_Status *statuses))
FERRY_MPI_API(int, Test, (MPI_Request *request, int *flag, MPI_Status *status))
FERRY_MPI_API(int, Testall, (int count, MPI_Request requests[], int *flag, MPI_Status *statuses))
FERRY_MPI_API(int, Testany, (int count, MPI_Request requests[], int *index, int *flag, MPI_Status *status))
FERRY_MPI_API(int, Testsome, (int incount, MPI_Request requests[], int *outcount, int indices[], MPI_Status *statuses))
FERRY_MPI_API(int, Request_free, (MPI_Request *request))
FERRY_MPI_API(int, Request_get_status, (MPI_Request request, int *flag, MPI_Status *status))
FERRY_MPI_API(int, Get_elements_x, (const MPI_Status *status, MPI_Datatype datatype, MPI_Count *count))
FERRY_MPI_API(int, Status_set_elements, (MPI_Status *status, MPI_Datatype datatype, int count))
FERRY_MPI_API(int, Status_set_elements_x, (MPI_Status *status, MPI_Datatype datatype, MPI_Count count))
FERRY_MPI_API(int, Status_set_cancelled, (MPI_Status *status, int flag))
FERRY_MPI_API(int, Bsend, (const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm))
FERRY_MPI_API(int, Ibsend, (const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Rsend, (const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm))
FERRY_MPI_API(int, Irsend, (const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Buffer_attach, (void *buffer, int size))
FERRY_MPI_API(int, Buffer_detach, (void *buffer_addr, int *size))
FERRY_MPI_API(int, Pack, (const void *inbuf, int incount, MPI_Datatype datatype, void *outbuf, int outsize, int *position, MPI_Comm comm))
FERRY_MPI_API(int, Unpack, (const void *inbuf, int insize, int *position, void *outbuf, int outcount, MPI_Datatype datatype, MPI_Comm comm))
FERRY_MPI_API(int, Pack_size, (int incount, MPI_Datatype datatype, MPI_Comm comm, int *size))
FERRY_MPI_API(int, Send_init, (const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Ssend_init, (const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Bsend_init, (const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Rsend_init, (const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Recv_init, (void *buf, int count, MPI_Datatype datatype, int source, int tag, MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Start, (MPI_Request *request))
FERRY_MPI_API(int, Startall, (int count, MPI_Request array_of_requests[]))
FERRY_MPI_API(int, Cancel, (MPI_Request *request))
FERRY_MPI_API(int, Test_cancelled, (const MPI_Status *status, int *flag))
FERRY_MPI_API(int, Status_c2f, (const MPI_Status *c_status, MPI_Fint *f_status))
FERRY_MPI_API(int, Status_f2c, (const MPI_Fint *f_status, MPI_Status *c_status))

/* handle conversions to and from Fortran integers (handle-conversions.c): a handle is its own integer */
FERRY_MPI_API(MPI_Fint, Comm_c2f, (MPI_Comm comm))
FERRY_MPI_API(MPI_Comm, Comm_f2c, (MPI_Fint comm))
FERRY_MPI_API(MPI_Fint, Type_c2f, (MPI_Datatype datatype))
FERRY_MPI_API(MPI_Datatype, Type_f2c, (MPI_Fint datatype))
FERRY_MPI_API(MPI_Fint, Group_c2f, (MPI_Group group))
FERRY_MPI_API(MPI_Group, Group_f2c, (MPI_Fint group))
FERRY_MPI_API(MPI_Fint, Request_c2f, (MPI_Request request))
FERRY_MPI_API(MPI_Request, Request_f2c, (MPI_Fint request))
FERRY_MPI_API(MPI_Fint, Op_c2f, (MPI_Op op))
FERRY_MPI_API(MPI_Op, Op_f2c, (MPI_Fint op))
FERRY_MPI_API(MPI_Fint, Info_c2f, (MPI_Info info))
FERRY_MPI_API(MPI_Info, Info_f2c, (MPI_Fint info))
FERRY_MPI_API(MPI_Fint, Errhandler_c2f, (MPI_Errhandler errhandler))
FERRY_MPI_API(MPI_Errhandler, Errhandler_f2c, (MPI_Fint errhandler))
FERRY_MPI_API(MPI_Fint, Win_c2f, (MPI_Win win))
FERRY_MPI_API(MPI_Win, Win_f2c, (MPI_Fint win))
FERRY_MPI_API(MPI_Fint, File_c2f, (MPI_File file))
FERRY_MPI_API(MPI_File, File_f2c, (MPI_Fint file))
FERRY_MPI_API(MPI_Fint, Message_c2f, (MPI_Message message))
FERRY_MPI_API(MPI_Message, Message_f2c, (MPI_Fint message))
FERRY_MPI_API(int, Grequest_start, (MPI_Grequest_query_function *query_fn, MPI_Grequest_free_function *free_fn,
                                    MPI_Grequest_cancel_function *cancel_fn, void *extra_state,
                                    MPI_Request *request))
FERRY_MPI_API(int, Grequest_complete, (MPI_Request request))

/* communicators and groups */
FERRY_MPI_API(int, Comm_dup, (MPI_Comm comm, MPI_Comm *newcomm))
FERRY_MPI_API(int, Comm_idup, (MPI_Comm comm, MPI_Comm *newcomm, MPI_Request *request))
FERRY_MPI_API(int, Comm_split, (MPI_Comm comm, int color, int key, MPI_Comm *newcomm))
FERRY_MPI_API(int, Comm_create, (MPI_Comm comm, MPI_Group group, MPI_Comm *newcomm))
FERRY_MPI_API(int, Comm_create_group, (MPI_Comm comm, MPI_Group group, int tag, MPI_Comm *newcomm))
FERRY_MPI_API(int, Comm_dup_with_info, (MPI_Comm comm, MPI_Info info, MPI_Comm *newcomm))
FERRY_MPI_API(int, Comm_set_info, (MPI_Comm comm, MPI_Info info))
FERRY_MPI_API(int, Comm_get_info, (MPI_Comm comm, MPI_Info *info_used))
FERRY_MPI_API(int, Comm_test_inter, (MPI_Comm comm, int *flag))
FERRY_MPI_API(int, Comm_remote_size, (MPI_Comm comm, int *size))
FERRY_MPI_API(int, Comm_remote_group, (MPI_Comm comm, MPI_Group *group))
FERRY_MPI_API(int, Intercomm_create, (MPI_Comm local_comm, int local_leader, MPI_Comm peer_comm, int remote_leader,
                                      int tag, MPI_Comm *newintercomm))
FERRY_MPI_API(int, Intercomm_merge, (MPI_Comm intercomm, int high, MPI_Comm *newintracomm))
FERRY_MPI_API(int, Comm_split_type, (MPI_Comm comm, int split_type, int key, MPI_Info info, MPI_Comm *newcomm))
FERRY_MPI_API(int, Comm_set_name, (MPI_Comm comm, const char *comm_name))
FERRY_MPI_API(int, Comm_get_name, (MPI_Comm comm, char *comm_name, int *resultlen))
FERRY_MPI_API(int, Comm_free, (MPI_Comm *comm))
FERRY_MPI_API(int, Comm_compare, (MPI_Comm comm1, MPI_Comm comm2, int *result))
FERRY_MPI_API(int, Comm_group, (MPI_Comm comm, MPI_Group *group))
FERRY_MPI_API(int, Group_incl, (MPI_Group group, int n, const int ranks[], MPI_Group *newgroup))
FERRY_MPI_API(int, Group_excl, (MPI_Group group, int n, const int ranks[], MPI_Group *newgroup))
FERRY_MPI_API(int, Group_size, (MPI_Group group, int *size))
FERRY_MPI_API(int, Group_rank, (MPI_Group group, int *rank))
FERRY_MPI_API(int, Group_translate_ranks, (MPI_Group group1, int n, const int ranks1[], MPI_Group group2, int ranks2[]))
FERRY_MPI_API(int, Group_compare, (MPI_Group group1, MPI_Group group2, int *result))
FERRY_MPI_API(int, Group_free, (MPI_Group *group))
FERRY_MPI_API(int, Group_union, (MPI_Group group1, MPI_Group group2, MPI_Group *newgroup))
FERRY_MPI_API(int, Group_intersection, (MPI_Group group1, MPI_Group group2, MPI_Group *newgroup))
FERRY_MPI_API(int, Group_difference, (MPI_Group group1, MPI_Group group2, MPI_Group *newgroup))
FERRY_MPI_API(int, Group_range_incl, (MPI_Group group, int n, int ranges[][3], MPI_Group *newgroup))
FERRY_MPI_API(int, Group_range_excl, (MPI_Group group, int n, int ranges[][3], MPI_Group *newgroup))

/* collectives */
FERRY_MPI_API(int, Barrier, (MPI_Comm comm))
FERRY_MPI_API(int, Bcast, (void *buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm))
FERRY_MPI_API(int, Reduce, (const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op, int root,
                            MPI_Comm comm))
FERRY_MPI_API(int, Allreduce, (const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
                               MPI_Comm comm))
FERRY_MPI_API(int, Gather, (const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                            MPI_Datatype recvtype, int root, MPI_Comm comm))
FERRY_MPI_API(int, Gatherv, (const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                             const int recvcounts[], const int displs[], MPI_Datatype recvtype, int root, MPI_Comm comm))
FERRY_MPI_API(int, Scatter, (const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                             MPI_Datatype recvtype, int root, MPI_Comm comm))
FERRY_MPI_API(int, Scatterv, (const void *sendbuf, const int sendcounts[], const int displs[], MPI_Datatype sendtype,
                              void *recvbuf, int recvcount, MPI_Datatype recvtype, int root, MPI_Comm comm))
FERRY_MPI_API(int, Allgather, (const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                               MPI_Datatype recvtype, MPI_Comm comm))
FERRY_MPI_API(int, Allgatherv, (const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                                const int recvcounts[], const int displs[], MPI_Datatype recvtype, MPI_Comm comm))
FERRY_MPI_API(int, Alltoall, (const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                              MPI_Datatype recvtype, MPI_Comm comm))
FERRY_MPI_API(int, Alltoallv, (const void *sendbuf, const int sendcounts[], const int sdispls[], MPI_Datatype sendtype,
                               void *recvbuf, const int recvcounts[], const int rdispls[], MPI_Datatype recvtype,
                               MPI_Comm comm))
FERRY_MPI_API(int, Reduce_scatter_block, (const void *sendbuf, void *recvbuf, int recvcount, MPI_Datatype datatype,
                                          MPI_Op op, MPI_Comm comm))
FERRY_MPI_API(int, Scan, (const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
                          MPI_Comm comm))
FERRY_MPI_API(int, Exscan, (const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
                            MPI_Comm comm))
FERRY_MPI_API(int, Reduce_scatter, (const void *sendbuf, void *recvbuf, const int recvcounts[], MPI_Datatype datatype,
                                    MPI_Op op, MPI_Comm comm))
FERRY_MPI_API(int, Ibarrier, (MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Ibcast, (void *buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm,
                            MPI_Request *request))
FERRY_MPI_API(int, Ireduce, (const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op, int root,
                             MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Iallreduce, (const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
                                MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Igather, (const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                             MPI_Datatype recvtype, int root, MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Iscatter, (const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                              MPI_Datatype recvtype, int root, MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Iallgather, (const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                                int recvcount, MPI_Datatype recvtype, MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Ialltoall, (const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                               MPI_Datatype recvtype, MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Igatherv, (const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                              const int recvcounts[], const int displs[], MPI_Datatype recvtype, int root, MPI_Comm comm,
                              MPI_Request *request))
FERRY_MPI_API(int, Iscatterv, (const void *sendbuf, const int sendcounts[], const int displs[], MPI_Datatype sendtype,
                               void *recvbuf, int recvcount, MPI_Datatype recvtype, int root, MPI_Comm comm,
                               MPI_Request *request))
FERRY_MPI_API(int, Iallgatherv, (const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                                 const int recvcounts[], const int displs[], MPI_Datatype recvtype, MPI_Comm comm,
                                 MPI_Request *request))
FERRY_MPI_API(int, Ialltoallv, (const void *sendbuf, const int sendcounts[], const int sdispls[], MPI_Datatype sendtype,
                                void *recvbuf, const int recvcounts[], const int rdispls[], MPI_Datatype recvtype,
                                MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Ireduce_scatter_block, (const void *sendbuf, void *recvbuf, int recvcount, MPI_Datatype datatype,
                                           MPI_Op op, MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Iscan, (const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
                           MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Iexscan, (const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
                             MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Reduce_local, (const void *inbuf, void *inoutbuf, int count, MPI_Datatype datatype, MPI_Op op))
FERRY_MPI_API(int, Alltoallw, (const void *sendbuf, const int sendcounts[], const int sdispls[],
                               const MPI_Datatype sendtypes[], void *recvbuf, const int recvcounts[], const int rdispls[],
                               const MPI_Datatype recvtypes[], MPI_Comm comm))
FERRY_MPI_API(int, Ialltoallw, (const void *sendbuf, const int sendcounts[], const int sdispls[],
                                const MPI_Datatype sendtypes[], void *recvbuf, const int recvcounts[],
                                const int rdispls[], const MPI_Datatype recvtypes[], MPI_Comm comm,
                                MPI_Request *request))
FERRY_MPI_API(int, Ireduce_scatter, (const void *sendbuf, void *recvbuf, const int recvcounts[], MPI_Datatype datatype,
                                     MPI_Op op, MPI_Comm comm, MPI_Request *request))

/* info objects */
FERRY_MPI_API(int, Info_create, (MPI_Info *info))
FERRY_MPI_API(int, Info_set, (MPI_Info info, const char *key, const char *value))
FERRY_MPI_API(int, Info_get, (MPI_Info info, const char *key, int valuelen, char *value, int *flag))
FERRY_MPI_API(int, Info_get_valuelen, (MPI_Info info, const char *key, int *valuelen, int *flag))
FERRY_MPI_API(int, Info_get_nkeys, (MPI_Info info, int *nkeys))
FERRY_MPI_API(int, Info_get_nthkey, (MPI_Info info, int n, char *key))
FERRY_MPI_API(int, Info_delete, (MPI_Info info, const char *key))
FERRY_MPI_API(int, Info_dup, (MPI_Info info, MPI_Info *newinfo))
FERRY_MPI_API(int, Info_free, (MPI_Info *info))
FERRY_MPI_API(int, Alloc_mem, (MPI_Aint size, MPI_Info info, void *baseptr))
FERRY_MPI_API(int, Free_mem, (void *base))

/* Cartesian topologies */
FERRY_MPI_API(int, Dims_create, (int nnodes, int ndims, int dims[]))
FERRY_MPI_API(int, Cart_create, (MPI_Comm comm_old, int ndims, const int dims[], const int periods[], int reorder,
                                 MPI_Comm *comm_cart))
FERRY_MPI_API(int, Cart_get, (MPI_Comm comm, int maxdims, int dims[], int periods[], int coords[]))
FERRY_MPI_API(int, Cartdim_get, (MPI_Comm comm, int *ndims))
FERRY_MPI_API(int, Cart_rank, (MPI_Comm comm, const int coords[], int *rank))
FERRY_MPI_API(int, Cart_coords, (MPI_Comm comm, int rank, int maxdims, int coords[]))
FERRY_MPI_API(int, Cart_shift, (MPI_Comm comm, int direction, int disp, int *rank_source, int *rank_dest))
FERRY_MPI_API(int, Cart_sub, (MPI_Comm comm, const int remain_dims[], MPI_Comm *newcomm))
FERRY_MPI_API(int, Cart_map, (MPI_Comm comm, int ndims, const int dims[], const int periods[], int *newrank))
FERRY_MPI_API(int, Topo_test, (MPI_Comm comm, int *status))

/* graph topologies and neighborhood collectives (also on Cartesian communicators) */
FERRY_MPI_API(int, Graph_create, (MPI_Comm comm_old, int nnodes, const int index[], const int edges[], int reorder,
                                  MPI_Comm *comm_graph))
FERRY_MPI_API(int, Graphdims_get, (MPI_Comm comm, int *nnodes, int *nedges))
FERRY_MPI_API(int, Graph_get, (MPI_Comm comm, int maxindex, int maxedges, int index[], int edges[]))
FERRY_MPI_API(int, Graph_neighbors_count, (MPI_Comm comm, int rank, int *nneighbors))
FERRY_MPI_API(int, Graph_neighbors, (MPI_Comm comm, int rank, int maxneighbors, int neighbors[]))
FERRY_MPI_API(int, Graph_map, (MPI_Comm comm, int nnodes, const int index[], const int edges[], int *newrank))
FERRY_MPI_API(int, Dist_graph_create_adjacent, (MPI_Comm comm_old, int indegree, const int sources[],
                                                const int sourceweights[], int outdegree, const int destinations[],
                                                const int destweights[], MPI_Info info, int reorder,
                                                MPI_Comm *comm_dist_graph))
FERRY_MPI_API(int, Dist_graph_create, (MPI_Comm comm_old, int n, const int sources[], const int degrees[],
                                       const int destinations[], const int weights[], MPI_Info info, int reorder,
                                       MPI_Comm *comm_dist_graph))
FERRY_MPI_API(int, Dist_graph_neighbors_count, (MPI_Comm comm, int *indegree, int *outdegree, int *weighted))
FERRY_MPI_API(int, Dist_graph_neighbors, (MPI_Comm comm, int maxindegree, int sources[], int sourceweights[],
                                          int maxoutdegree, int destinations[], int destweights[]))
FERRY_MPI_API(int, Neighbor_allgather, (const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                                        int recvcount, MPI_Datatype recvtype, MPI_Comm comm))
FERRY_MPI_API(int, Neighbor_allgatherv, (const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                                         const int recvcounts[], const int displs[], MPI_Datatype recvtype,
                                         MPI_Comm comm))
FERRY_MPI_API(int, Neighbor_alltoall, (const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                                       int recvcount, MPI_Datatype recvtype, MPI_Comm comm))
FERRY_MPI_API(int, Neighbor_alltoallv, (const void *sendbuf, const int sendcounts[], const int sdispls[],
                                        MPI_Datatype sendtype, void *recvbuf, const int recvcounts[],
                                        const int rdispls[], MPI_Datatype recvtype, MPI_Comm comm))
FERRY_MPI_API(int, Neighbor_alltoallw, (const void *sendbuf, const int sendcounts[], const MPI_Aint sdispls[],
                                        const MPI_Datatype sendtypes[], void *recvbuf, const int recvcounts[],
                                        const MPI_Aint rdispls[], const MPI_Datatype recvtypes[], MPI_Comm comm))
FERRY_MPI_API(int, Ineighbor_allgather, (const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                                         int recvcount, MPI_Datatype recvtype, MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Ineighbor_allgatherv, (const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                                          const int recvcounts[], const int displs[], MPI_Datatype recvtype,
                                          MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Ineighbor_alltoall, (const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                                        int recvcount, MPI_Datatype recvtype, MPI_Comm comm, MPI_Request *request))
FERRY_MPI_API(int, Ineighbor_alltoallv, (const void *sendbuf, const int sendcounts[], const int sdispls[],
                                         MPI_Datatype sendtype, void *recvbuf, const int recvcounts[],
                                         const int rdispls[], MPI_Datatype recvtype, MPI_Comm comm,
                                         MPI_Request *request))
FERRY_MPI_API(int, Ineighbor_alltoallw, (const void *sendbuf, const int sendcounts[], const MPI_Aint sdispls[],
                                         const MPI_Datatype sendtypes[], void *recvbuf, const int recvcounts[],
                                         const MPI_Aint rdispls[], const MPI_Datatype recvtypes[], MPI_Comm comm,
                                         MPI_Request *request))

/* datatypes */
FERRY_MPI_API(int, Type_contiguous, (int count, MPI_Datatype oldtype, MPI_Datatype *newtype))
FERRY_MPI_API(int, Type_vector, (int count, int blocklength, int stride, MPI_Datatype oldtype, MPI_Datatype *newtype))
FERRY_MPI_API(int, Type_create_hvector, (int count, int blocklength, MPI_Aint stride, MPI_Datatype oldtype,
                                         MPI_Datatype *newtype))
FERRY_MPI_API(int, Type_indexed, (int count, const int blocklengths[], const int displacements[], MPI_Datatype oldtype,
                                  MPI_Datatype *newtype))
FERRY_MPI_API(int, Type_create_hindexed, (int count, const int blocklengths[], const MPI_Aint displacements[],
                                          MPI_Datatype oldtype, MPI_Datatype *newtype))
FERRY_MPI_API(int, Type_create_struct, (int count, const int blocklengths[], const MPI_Aint displacements[],
                                        const MPI_Datatype types[], MPI_Datatype *newtype))
FERRY_MPI_API(int, Type_create_resized, (MPI_Datatype oldtype, MPI_Aint lb, MPI_Aint extent, MPI_Datatype *newtype))
FERRY_MPI_API(int, Type_create_indexed_block, (int count, int blocklength, const int displacements[],
                                               MPI_Datatype oldtype, MPI_Datatype *newtype))
FERRY_MPI_API(int, Type_create_hindexed_block, (int count, int blocklength, const MPI_Aint displacements[],
                                                MPI_Datatype oldtype, MPI_Datatype *newtype))
FERRY_MPI_API(int, Type_create_subarray, (int ndims, const int sizes[], const int subsizes[], const int starts[],
                                          int order, MPI_Datatype oldtype, MPI_Datatype *newtype))
FERRY_MPI_API(int, Type_create_darray, (int size, int rank, int ndims, const int gsizes[], const int distribs[],
                                        const int dargs[], const int psizes[], int order, MPI_Datatype oldtype,
                                        MPI_Datatype *newtype))
FERRY_MPI_API(int, Type_dup, (MPI_Datatype oldtype, MPI_Datatype *newtype))
FERRY_MPI_API(int, Type_create_keyval, (MPI_Type_copy_attr_function *type_copy_attr_fn,
                                        MPI_Type_delete_attr_function *type_delete_attr_fn, int *type_keyval,
                                        void *extra_state))
FERRY_MPI_API(int, Type_free_keyval, (int *type_keyval))
FERRY_MPI_API(int, Type_set_attr, (MPI_Datatype datatype, int type_keyval, void *attribute_val))
FERRY_MPI_API(int, Type_get_attr, (MPI_Datatype datatype, int type_keyval, void *attribute_val, int *flag))
FERRY_MPI_API(int, Type_delete_attr, (MPI_Datatype datatype, int type_keyval))
FERRY_MPI_API(int, Type_commit, (MPI_Datatype *datatype))
FERRY_MPI_API(int, Type_free, (MPI_Datatype *datatype))
FERRY_MPI_API(int, Type_size, (MPI_Datatype datatype, int *size))
FERRY_MPI_API(int, Type_get_extent, (MPI_Datatype datatype, MPI_Aint *lb, MPI_Aint *extent))
FERRY_MPI_API(int, Type_get_true_extent, (MPI_Datatype datatype, MPI_Aint *true_lb, MPI_Aint *true_extent))
FERRY_MPI_API(int, Get_address, (const void *location, MPI_Aint *address))
FERRY_MPI_API(int, Type_size_x, (MPI_Datatype datatype, MPI_Count *size))
FERRY_MPI_API(int, Type_get_extent_x, (MPI_Datatype datatype, MPI_Count *lb, MPI_Count *extent))
FERRY_MPI_API(int, Type_get_true_extent_x, (MPI_Datatype datatype, MPI_Count *true_lb, MPI_Count *true_extent))
FERRY_MPI_API(int, Type_set_name, (MPI_Datatype datatype, const char *type_name))
FERRY_MPI_API(int, Type_get_name, (MPI_Datatype datatype, char *type_name, int *resultlen))
FERRY_MPI_API(int, Type_get_envelope, (MPI_Datatype datatype, int *num_integers, int *num_addresses,
                                       int *num_datatypes, int *combiner))
FERRY_MPI_API(int, Type_get_contents, (MPI_Datatype datatype, int max_integers, int max_addresses,
                                       int max_datatypes, int array_of_integers[], MPI_Aint array_of_addresses[],
                                       MPI_Datatype array_of_datatypes[]))
FERRY_MPI_API(int, Type_match_size, (int typeclass, int size, MPI_Datatype *datatype))
FERRY_MPI_API(int, Pack_external, (const char datarep[], const void *inbuf, int incount, MPI_Datatype datatype,
                                   void *outbuf, MPI_Aint outsize, MPI_Aint *position))
FERRY_MPI_API(int, Unpack_external, (const char datarep[], const void *inbuf, MPI_Aint insize, MPI_Aint *position,
                                     void *outbuf, int outcount, MPI_Datatype datatype))
FERRY_MPI_API(int, Pack_external_size, (const char datarep[], int incount, MPI_Datatype datatype, MPI_Aint *size))
FERRY_MPI_API(MPI_Aint, Aint_add, (MPI_Aint base, MPI_Aint disp))
FERRY_MPI_API(MPI_Aint, Aint_diff, (MPI_Aint addr1, MPI_Aint addr2))

/* ops */
FERRY_MPI_API(int, Op_create, (MPI_User_function *user_fn, int commute, MPI_Op *op))
FERRY_MPI_API(int, Op_free, (MPI_Op *op))
FERRY_MPI_API(int, Op_commutative, (MPI_Op op, int *commute))

/* errors */
FERRY_MPI_API(int, Comm_set_errhandler, (MPI_Comm comm, MPI_Errhandler errhandler))
FERRY_MPI_API(int, Comm_get_errhandler, (MPI_Comm comm, MPI_Errhandler *errhandler))
FERRY_MPI_API(int, Comm_create_errhandler, (MPI_Comm_errhandler_function *function, MPI_Errhandler *errhandler))
FERRY_MPI_API(int, Errhandler_free, (MPI_Errhandler *errhandler))
FERRY_MPI_API(int, Error_string, (int errorcode, char *string, int *resultlen))
FERRY_MPI_API(int, Error_class, (int errorcode, int *errorclass))
FERRY_MPI_API(int, Comm_call_errhandler, (MPI_Comm comm, int errorcode))
FERRY_MPI_API(int, Add_error_class, (int *errorclass))
FERRY_MPI_API(int, Add_error_code, (int errorclass, int *errorcode))
FERRY_MPI_API(int, Add_error_string, (int errorcode, const char *string))

/* MPI-IO over POSIX files (file.c) */
FERRY_MPI_API(int, File_open, (MPI_Comm comm, const char *filename, int amode, MPI_Info info, MPI_File *fh))
FERRY_MPI_API(int, File_close, (MPI_File *fh))
FERRY_MPI_API(int, File_delete, (const char *filename, MPI_Info info))
FERRY_MPI_API(int, File_get_size, (MPI_File fh, MPI_Offset *size))
FERRY_MPI_API(int, File_set_size, (MPI_File fh, MPI_Offset size))
FERRY_MPI_API(int, File_preallocate, (MPI_File fh, MPI_Offset size))
FERRY_MPI_API(int, File_sync, (MPI_File fh))
FERRY_MPI_API(int, File_get_amode, (MPI_File fh, int *amode))
FERRY_MPI_API(int, File_get_group, (MPI_File fh, MPI_Group *group))
FERRY_MPI_API(int, File_set_info, (MPI_File fh, MPI_Info info))
FERRY_MPI_API(int, File_get_info, (MPI_File fh, MPI_Info *info_used))
FERRY_MPI_API(int, File_set_view, (MPI_File fh, MPI_Offset disp, MPI_Datatype etype, MPI_Datatype filetype,
                                   const char *datarep, MPI_Info info))
FERRY_MPI_API(int, File_get_view, (MPI_File fh, MPI_Offset *disp, MPI_Datatype *etype, MPI_Datatype *filetype,
                                   char *datarep))
FERRY_MPI_API(int, File_get_type_extent, (MPI_File fh, MPI_Datatype datatype, MPI_Aint *extent))
FERRY_MPI_API(int, File_read_at, (MPI_File fh, MPI_Offset offset, void *buf, int count, MPI_Datatype datatype,
                                  MPI_Status *status))
FERRY_MPI_API(int, File_write_at, (MPI_File fh, MPI_Offset offset, const void *buf, int count, MPI_Datatype datatype,
                                   MPI_Status *status))
FERRY_MPI_API(int, File_read_at_all, (MPI_File fh, MPI_Offset offset, void *buf, int count, MPI_Datatype datatype,
                                      MPI_Status *status))
FERRY_MPI_API(int, File_write_at_all, (MPI_File fh, MPI_Offset offset, const void *buf, int count,
                                       MPI_Datatype datatype, MPI_Status *status))
FERRY_MPI_API(int, File_iread_at, (MPI_File fh, MPI_Offset offset, void *buf, int count, MPI_Datatype datatype,
                                   MPI_Request *request))
FERRY_MPI_API(int, File_iwrite_at, (MPI_File fh, MPI_Offset offset, const void *buf, int count,
                                    MPI_Datatype datatype, MPI_Request *request))
FERRY_MPI_API(int, File_read, (MPI_File fh, void *buf, int count, MPI_Datatype datatype, MPI_Status *status))
FERRY_MPI_API(int, File_write, (MPI_File fh, const void *buf, int count, MPI_Datatype datatype, MPI_Status *status))
FERRY_MPI_API(int, File_read_all, (MPI_File fh, void *buf, int count, MPI_Datatype datatype, MPI_Status *status))
FERRY_MPI_API(int, File_write_all, (MPI_File fh, const void *buf, int count, MPI_Datatype datatype,
                                    MPI_Status *status))
FERRY_MPI_API(int, File_iread, (MPI_File fh, void *buf, int count, MPI_Datatype datatype, MPI_Request *request))
FERRY_MPI_API(int, File_iwrite, (MPI_File fh, const void *buf, int count, MPI_Datatype datatype,
                                 MPI_Request *request))
FERRY_MPI_API(int, File_read_shared, (MPI_File fh, void *buf, int count, MPI_Datatype datatype, MPI_Status *status))
FERRY_MPI_API(int, File_write_shared, (MPI_File fh, const void *buf, int count, MPI_Datatype datatype,
                                       MPI_Status *status))
FERRY_MPI_API(int, File_read_ordered, (MPI_File fh, void *buf, int count, MPI_Datatype datatype, MPI_Status *status))
FERRY_MPI_API(int, File_write_ordered, (MPI_File fh, const void *buf, int count, MPI_Datatype datatype,
                                        MPI_Status *status))
FERRY_MPI_API(int, File_seek_shared, (MPI_File fh, MPI_Offset offset, int whence))
FERRY_MPI_API(int, File_get_position_shared, (MPI_File fh, MPI_Offset *offset))
FERRY_MPI_API(int, File_seek, (MPI_File fh, MPI_Offset offset, int whence))
FERRY_MPI_API(int, File_get_position, (MPI_File fh, MPI_Offset *offset))
FERRY_MPI_API(int, File_get_byte_offset, (MPI_File fh, MPI_Offset offset, MPI_Offset *disp))
FERRY_MPI_API(int, File_set_errhandler, (MPI_File file, MPI_Errhandler errhandler))
FERRY_MPI_API(int, File_get_errhandler, (MPI_File file, MPI_Errhandler *errhandler))
FERRY_MPI_API(int, File_create_errhandler, (MPI_File_errhandler_function *function, MPI_Errhandler *errhandler))
FERRY_MPI_API(int, File_call_errhandler, (MPI_File fh, int errorcode))
FERRY_MPI_API(int, File_set_atomicity, (MPI_File fh, int flag))
FERRY_MPI_API(int, File_get_atomicity, (MPI_File fh, int *flag))
/* split collectives and nonblocking collective and shared-pointer forms (file-split.c) */
FERRY_MPI_API(int, File_read_at_all_begin, (MPI_File fh, MPI_Offset offset, void *buf, int count, MPI_Datatype datatype))
FERRY_MPI_API(int, File_read_at_all_end, (MPI_File fh, void *buf, MPI_Status *status))
FERRY_MPI_API(int, File_write_at_all_begin, (MPI_File fh, MPI_Offset offset, const void *buf, int count,
                                             MPI_Datatype datatype))
FERRY_MPI_API(int, File_write_at_all_end, (MPI_File fh, const void *buf, MPI_Status *status))
FERRY_MPI_API(int, File_read_all_begin, (MPI_File fh, void *buf, int count, MPI_Datatype datatype))
FERRY_MPI_API(int, File_read_all_end, (MPI_File fh, void *buf, MPI_Status *status))
FERRY_MPI_API(int, File_write_all_begin, (MPI_File fh, const void *buf, int count, MPI_Datatype datatype))
FERRY_MPI_API(int, File_write_all_end, (MPI_File fh, const void *buf, MPI_Status *status))
FERRY_MPI_API(int, File_read_ordered_begin, (MPI_File fh, void *buf, int count, MPI_Datatype datatype))
FERRY_MPI_API(int, File_read_ordered_end, (MPI_File fh, void *buf, MPI_Status *status))
FERRY_MPI_API(int, File_write_ordered_begin, (MPI_File fh, const void *buf, int count, MPI_Datatype datatype))
FERRY_MPI_API(int, File_write_ordered_end, (MPI_File fh, const void *buf, MPI_Status *status))
FERRY_MPI_API(int, File_iread_at_all, (MPI_File fh, MPI_Offset offset, void *buf, int count, MPI_Datatype datatype,
                                       MPI_Request *request))
FERRY_MPI_API(int, File_iwrite_at_all, (MPI_File fh, MPI_Offset offset, const void *buf, int count,
                                        MPI_Datatype datatype, MPI_Request *request))
FERRY_MPI_API(int, File_iread_all, (MPI_File fh, void *buf, int count, MPI_Datatype datatype, MPI_Request *request))
FERRY_MPI_API(int, File_iwrite_all, (MPI_File fh, const void *buf, int count, MPI_Datatype datatype,
                                     MPI_Request *request))
FERRY_MPI_API(int, File_iread_shared, (MPI_File fh, void *buf, int count, MPI_Datatype datatype,
                                       MPI_Request *request))
FERRY_MPI_API(int, File_iwrite_shared, (MPI_File fh, const void *buf, int count, MPI_Datatype datatype,
                                        MPI_Request *request))

/* MPI-1 names removed in MPI 3.0 that old programs still call (MPICH keeps
 * them); each forwards to its replacement (mpi1-names.c). */
FERRY_MPI_API(int, Address, (void *location, MPI_Aint *address))
FERRY_MPI_API(int, Type_hvector, (int count, int blocklength, MPI_Aint stride, MPI_Datatype oldtype,
                                  MPI_Datatype *newtype))
FERRY_MPI_API(int, Type_hindexed, (int count, int blocklengths[], MPI_Aint displacements[], MPI_Datatype oldtype,
                                   MPI_Datatype *newtype))
FERRY_MPI_API(int, Type_struct, (int count, int blocklengths[], MPI_Aint displacements[], MPI_Datatype types[],
                                 MPI_Datatype *newtype))
FERRY_MPI_API(int, Type_extent, (MPI_Datatype datatype, MPI_Aint *extent))
FERRY_MPI_API(int, Type_lb, (MPI_Datatype datatype, MPI_Aint *displacement))
FERRY_MPI_API(int, Type_ub, (MPI_Datatype datatype, MPI_Aint *displacement))
FERRY_MPI_API(int, Errhandler_create, (MPI_Handler_function *function, MPI_Errhandler *errhandler))
FERRY_MPI_API(int, Errhandler_set, (MPI_Comm comm, MPI_Errhandler errhandler))
FERRY_MPI_API(int, Errhandler_get, (MPI_Comm comm, MPI_Errhandler *errhandler))
FERRY_MPI_API(int, Keyval_create, (MPI_Copy_function *copy_fn, MPI_Delete_function *delete_fn, int *keyval,
                                   void *extra_state))
FERRY_MPI_API(int, Keyval_free, (int *keyval))

/* one-sided communication (win.c) */
FERRY_MPI_API(int, Win_create, (void *base, MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm, MPI_Win *win))
FERRY_MPI_API(int, Win_allocate, (MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm, void *baseptr,
                                  MPI_Win *win))
FERRY_MPI_API(int, Win_allocate_shared, (MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm, void *baseptr,
                                         MPI_Win *win))
FERRY_MPI_API(int, Win_shared_query, (MPI_Win win, int rank, MPI_Aint *size, int *disp_unit, void *baseptr))
FERRY_MPI_API(int, Win_create_dynamic, (MPI_Info info, MPI_Comm comm, MPI_Win *win))
FERRY_MPI_API(int, Win_attach, (MPI_Win win, void *base, MPI_Aint size))
FERRY_MPI_API(int, Win_detach, (MPI_Win win, const void *base))
FERRY_MPI_API(int, Win_free, (MPI_Win *win))
FERRY_MPI_API(int, Win_get_attr, (MPI_Win win, int win_keyval, void *attribute_val, int *flag))
FERRY_MPI_API(int, Win_create_keyval, (MPI_Win_copy_attr_function *win_copy_attr_fn,
                                       MPI_Win_delete_attr_function *win_delete_attr_fn, int *win_keyval,
                                       void *extra_state))
FERRY_MPI_API(int, Win_free_keyval, (int *win_keyval))
FERRY_MPI_API(int, Win_set_attr, (MPI_Win win, int win_keyval, void *attribute_val))
FERRY_MPI_API(int, Win_delete_attr, (MPI_Win win, int win_keyval))
FERRY_MPI_API(int, Win_get_group, (MPI_Win win, MPI_Group *group))
FERRY_MPI_API(int, Win_set_name, (MPI_Win win, const char *win_name))
FERRY_MPI_API(int, Win_get_name, (MPI_Win win, char *win_name, int *resultlen))
FERRY_MPI_API(int, Win_set_info, (MPI_Win win, MPI_Info info))
FERRY_MPI_API(int, Win_get_info, (MPI_Win win, MPI_Info *info_used))
FERRY_MPI_API(int, Win_create_errhandler, (MPI_Win_errhandler_function *function, MPI_Errhandler *errhandler))
FERRY_MPI_API(int, Win_set_errhandler, (MPI_Win win, MPI_Errhandler errhandler))
FERRY_MPI_API(int, Win_get_errhandler, (MPI_Win win, MPI_Errhandler *errhandler))
FERRY_MPI_API(int, Win_call_errhandler, (MPI_Win win, int errorcode))
FERRY_MPI_API(int, Win_fence, (int assert, MPI_Win win))
FERRY_MPI_API(int, Win_post, (MPI_Group group, int assert, MPI_Win win))
FERRY_MPI_API(int, Win_start, (MPI_Group group, int assert, MPI_Win win))
FERRY_MPI_API(int, Win_complete, (MPI_Win win))
FERRY_MPI_API(int, Win_wait, (MPI_Win win))
FERRY_MPI_API(int, Win_test, (MPI_Win win, int *flag))
FERRY_MPI_API(int, Win_lock, (int lock_type, int rank, int assert, MPI_Win win))
FERRY_MPI_API(int, Win_unlock, (int rank, MPI_Win win))
FERRY_MPI_API(int, Win_lock_all, (int assert, MPI_Win win))
FERRY_MPI_API(int, Win_unlock_all, (MPI_Win win))
FERRY_MPI_API(int, Win_flush, (int rank, MPI_Win win))
FERRY_MPI_API(int, Win_flush_all, (MPI_Win win))
FERRY_MPI_API(int, Win_flush_local, (int rank, MPI_Win win))
FERRY_MPI_API(int, Win_flush_local_all, (MPI_Win win))
FERRY_MPI_API(int, Win_sync, (MPI_Win win))
FERRY_MPI_API(int, Put, (const void *origin_addr, int origin_count, MPI_Datatype origin_datatype, int target_rank,
                         MPI_Aint target_disp, int target_count, MPI_Datatype target_datatype, MPI_Win win))
FERRY_MPI_API(int, Get, (void *origin_addr, int origin_count, MPI_Datatype origin_datatype, int target_rank,
                         MPI_Aint target_disp, int target_count, MPI_Datatype target_datatype, MPI_Win win))
FERRY_MPI_API(int, Accumulate, (const void *origin_addr, int origin_count, MPI_Datatype origin_datatype,
                                int target_rank, MPI_Aint target_disp, int target_count,
                                MPI_Datatype target_datatype, MPI_Op op, MPI_Win win))
FERRY_MPI_API(int, Get_accumulate, (const void *origin_addr, int origin_count, MPI_Datatype origin_datatype,
                                    void *result_addr, int result_count, MPI_Datatype result_datatype,
                                    int target_rank, MPI_Aint target_disp, int target_count,
                                    MPI_Datatype target_datatype, MPI_Op op, MPI_Win win))
FERRY_MPI_API(int, Fetch_and_op, (const void *origin_addr, void *result_addr, MPI_Datatype datatype,
                                  int target_rank, MPI_Aint target_disp, MPI_Op op, MPI_Win win))
FERRY_MPI_API(int, Compare_and_swap, (const void *origin_addr, const void *compare_addr, void *result_addr,
                                      MPI_Datatype datatype, int target_rank, MPI_Aint target_disp, MPI_Win win))
FERRY_MPI_API(int, Rput, (const void *origin_addr, int origin_count, MPI_Datatype origin_datatype, int target_rank,
                          MPI_Aint target_disp, int target_count, MPI_Datatype target_datatype, MPI_Win win,
                          MPI_Request *request))
FERRY_MPI_API(int, Rget, (void *origin_addr, int origin_count, MPI_Datatype origin_datatype, int target_rank,
                          MPI_Aint target_disp, int target_count, MPI_Datatype target_datatype, MPI_Win win,
                          MPI_Request *request))
FERRY_MPI_API(int, Raccumulate, (const void *origin_addr, int origin_count, MPI_Datatype origin_datatype,
                                 int target_rank, MPI_Aint target_disp, int target_count,
                                 MPI_Datatype target_datatype, MPI_Op op, MPI_Win win, MPI_Request *request))
FERRY_MPI_API(int, Rget_accumulate, (const void *origin_addr, int origin_count, MPI_Datatype origin_datatype,
                                     void *result_addr, int result_count, MPI_Datatype result_datatype,
                                     int target_rank, MPI_Aint target_disp, int target_count,
                                     MPI_Datatype target_datatype, MPI_Op op, MPI_Win win, MPI_Request *request))

/* process management (dynamic.c): no rank of a Ferry job is spawned, and a job connects to no other */
FERRY_MPI_API(int, Comm_get_parent, (MPI_Comm *parent))
FERRY_MPI_API(int, Comm_disconnect, (MPI_Comm *comm))
FERRY_MPI_API(int, Comm_spawn, (const char *command, char *argv[], int maxprocs, MPI_Info info, int root,
                                MPI_Comm comm, MPI_Comm *intercomm, int array_of_errcodes[]))
FERRY_MPI_API(int, Comm_spawn_multiple, (int count, char *array_of_commands[], char **array_of_argv[],
                                         const int array_of_maxprocs[], const MPI_Info array_of_info[], int root,
                                         MPI_Comm comm, MPI_Comm *intercomm, int array_of_errcodes[]))
FERRY_MPI_API(int, Open_port, (MPI_Info info, char *port_name))
FERRY_MPI_API(int, Close_port, (const char *port_name))
FERRY_MPI_API(int, Comm_accept, (const char *port_name, MPI_Info info, int root, MPI_Comm comm, MPI_Comm *newcomm))
FERRY_MPI_API(int, Comm_connect, (const char *port_name, MPI_Info info, int root, MPI_Comm comm, MPI_Comm *newcomm))
FERRY_MPI_API(int, Comm_join, (int fd, MPI_Comm *intercomm))
FERRY_MPI_API(int, Publish_name, (const char *service_name, MPI_Info info, const char *port_name))
FERRY_MPI_API(int, Unpublish_name, (const char *service_name, MPI_Info info, const char *port_name))
FERRY_MPI_API(int, Lookup_name, (const char *service_name, MPI_Info info, char *port_name))

/* the profiling and tool interfaces (tools.c) */
FERRY_MPI_API(int, Pcontrol, (const int level, ...))

typedef struct fmpi_t_handle *MPI_T_enum;
typedef struct fmpi_t_handle *MPI_T_cvar_handle;
typedef struct fmpi_t_handle *MPI_T_pvar_handle;
typedef struct fmpi_t_session *MPI_T_pvar_session;
#define MPI_T_ENUM_NULL ((MPI_T_enum)0)
#define MPI_T_CVAR_HANDLE_NULL ((MPI_T_cvar_handle)0)
#define MPI_T_PVAR_HANDLE_NULL ((MPI_T_pvar_handle)0)
#define MPI_T_PVAR_ALL_HANDLES ((MPI_T_pvar_handle)1)
#define MPI_T_PVAR_SESSION_NULL ((MPI_T_pvar_session)0)
#define MPI_T_VERBOSITY_USER_BASIC 1
#define MPI_T_VERBOSITY_USER_DETAIL 2
#define MPI_T_VERBOSITY_USER_ALL 3
#define MPI_T_VERBOSITY_TUNER_BASIC 4
#define MPI_T_VERBOSITY_TUNER_DETAIL 5
#define MPI_T_VERBOSITY_TUNER_ALL 6
#define MPI_T_VERBOSITY_MPIDEV_BASIC 7
#define MPI_T_VERBOSITY_MPIDEV_DETAIL 8
#define MPI_T_VERBOSITY_MPIDEV_ALL 9
#define MPI_T_BIND_NO_OBJECT 0
#define MPI_T_BIND_MPI_COMM 1
#define MPI_T_BIND_MPI_DATATYPE 2
#define MPI_T_BIND_MPI_ERRHANDLER 3
#define MPI_T_BIND_MPI_FILE 4
#define MPI_T_BIND_MPI_GROUP 5
#define MPI_T_BIND_MPI_OP 6
#define MPI_T_BIND_MPI_REQUEST 7
#define MPI_T_BIND_MPI_WIN 8
#define MPI_T_BIND_MPI_MESSAGE 9
#define MPI_T_BIND_MPI_INFO 10
#define MPI_T_SCOPE_CONSTANT 0
#define MPI_T_SCOPE_READONLY 1
#define MPI_T_SCOPE_LOCAL 2
#define MPI_T_SCOPE_GROUP 3
#define MPI_T_SCOPE_GROUP_EQ 4
#define MPI_T_SCOPE_ALL 5
#define MPI_T_SCOPE_ALL_EQ 6
#define MPI_T_PVAR_CLASS_STATE 0
#define MPI_T_PVAR_CLASS_LEVEL 1
#define MPI_T_PVAR_CLASS_SIZE 2
#define MPI_T_PVAR_CLASS_PERCENTAGE 3
#define MPI_T_PVAR_CLASS_HIGHWATERMARK 4
#define MPI_T_PVAR_CLASS_LOWWATERMARK 5
#define MPI_T_PVAR_CLASS_COUNTER 6
#define MPI_T_PVAR_CLASS_AGGREGATE 7
#define MPI_T_PVAR_CLASS_TIMER 8
#define MPI_T_PVAR_CLASS_GENERIC 9
FERRY_MPI_API(int, T_init_thread, (int required, int *provided))
FERRY_MPI_API(int, T_finalize, (void))
FERRY_MPI_API(int, T_enum_get_info, (MPI_T_enum enumtype, int *num, char *name, int *name_len))
FERRY_MPI_API(int, T_enum_get_item, (MPI_T_enum enumtype, int index, int *value, char *name, int *name_len))
FERRY_MPI_API(int, T_cvar_get_num, (int *num_cvar))
FERRY_MPI_API(int, T_cvar_get_info, (int cvar_index, char *name, int *name_len, int *verbosity,
                                     MPI_Datatype *datatype, MPI_T_enum *enumtype, char *desc, int *desc_len,
                                     int *bind, int *scope))
FERRY_MPI_API(int, T_cvar_get_index, (const char *name, int *cvar_index))
FERRY_MPI_API(int, T_cvar_handle_alloc, (int cvar_index, void *obj_handle, MPI_T_cvar_handle *handle, int *count))
FERRY_MPI_API(int, T_cvar_handle_free, (MPI_T_cvar_handle *handle))
FERRY_MPI_API(int, T_cvar_read, (MPI_T_cvar_handle handle, void *buf))
FERRY_MPI_API(int, T_cvar_write, (MPI_T_cvar_handle handle, const void *buf))
FERRY_MPI_API(int, T_pvar_get_num, (int *num_pvar))
FERRY_MPI_API(int, T_pvar_get_info, (int pvar_index, char *name, int *name_len, int *verbosity, int *var_class,
                                     MPI_Datatype *datatype, MPI_T_enum *enumtype, char *desc, int *desc_len,
                                     int *bind, int *readonly, int *continuous, int *atomic))
FERRY_MPI_API(int, T_pvar_get_index, (const char *name, int var_class, int *pvar_index))
FERRY_MPI_API(int, T_pvar_session_create, (MPI_T_pvar_session *session))
FERRY_MPI_API(int, T_pvar_session_free, (MPI_T_pvar_session *session))
FERRY_MPI_API(int, T_pvar_handle_alloc, (MPI_T_pvar_session session, int pvar_index, void *obj_handle,
                                         MPI_T_pvar_handle *handle, int *count))
FERRY_MPI_API(int, T_pvar_handle_free, (MPI_T_pvar_session session, MPI_T_pvar_handle *handle))
FERRY_MPI_API(int, T_pvar_start, (MPI_T_pvar_session session, MPI_T_pvar_handle handle))
FERRY_MPI_API(int, T_pvar_stop, (MPI_T_pvar_session session, MPI_T_pvar_handle handle))
FERRY_MPI_API(int, T_pvar_read, (MPI_T_pvar_session session, MPI_T_pvar_handle handle, void *buf))
FERRY_MPI_API(int, T_pvar_write, (MPI_T_pvar_session session, MPI_T_pvar_handle handle, const void *buf))
FERRY_MPI_API(int, T_pvar_reset, (MPI_T_pvar_session session, MPI_T_pvar_handle handle))
FERRY_MPI_API(int, T_pvar_readreset, (MPI_T_pvar_session session, MPI_T_pvar_handle handle, void *buf))
FERRY_MPI_API(int, T_category_get_num, (int *num_cat))
FERRY_MPI_API(int, T_category_get_info, (int cat_index, char *name, int *name_len, char *desc, int *desc_len,
                                         int *num_cvars, int *num_pvars, int *num_categories))
FERRY_MPI_API(int, T_category_get_index, (const char *name, int *cat_index))
FERRY_MPI_API(int, T_category_get_cvars, (int cat_index, int len, int indices[]))
FERRY_MPI_API(int, T_category_get_pvars, (int cat_index, int len, int indices[]))
FERRY_MPI_API(int, T_category_get_categories, (int cat_index, int len, int indices[]))
FERRY_MPI_API(int, T_category_changed, (int *stamp))

#undef FERRY_MPI_API

#ifdef __cplusplus
}
#endif

#endif
