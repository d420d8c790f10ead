/* Error handlers (MPI_ERRORS_ARE_FATAL, MPI_ERRORS_RETURN, user ones) and error strings. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmpi.h"

#pragma weak MPI_Comm_set_errhandler = PMPI_Comm_set_errhandler
#pragma weak MPI_Comm_get_errhandler = PMPI_Comm_get_errhandler
#pragma weak MPI_Comm_create_errhandler = PMPI_Comm_create_errhandler
#pragma weak MPI_Errhandler_free = PMPI_Errhandler_free
#pragma weak MPI_Error_string = PMPI_Error_string
#pragma weak MPI_Error_class = PMPI_Error_class
#pragma weak MPI_Comm_call_errhandler = PMPI_Comm_call_errhandler
#pragma weak MPI_Add_error_class = PMPI_Add_error_class
#pragma weak MPI_Add_error_code = PMPI_Add_error_code
#pragma weak MPI_Add_error_string = PMPI_Add_error_string

#define FIRST_USER_ERRH 8

fmpi_table fmpi_errhs;

static const char *const error_strings[] = {
  [MPI_SUCCESS] = "No MPI error",
  [MPI_ERR_BUFFER] = "Invalid buffer pointer",
  [MPI_ERR_COUNT] = "Invalid count argument",
  [MPI_ERR_TYPE] = "Invalid datatype argument",
  [MPI_ERR_TAG] = "Invalid tag argument",
  [MPI_ERR_COMM] = "Invalid communicator",
  [MPI_ERR_RANK] = "Invalid rank",
  [MPI_ERR_ROOT] = "Invalid root",
  [MPI_ERR_GROUP] = "Invalid group",
  [MPI_ERR_OP] = "Invalid MPI_Op",
  [MPI_ERR_TOPOLOGY] = "Invalid topology",
  [MPI_ERR_DIMS] = "Invalid dimension argument",
  [MPI_ERR_ARG] = "Invalid argument",
  [MPI_ERR_UNKNOWN] = "Unknown error",
  [MPI_ERR_TRUNCATE] = "Message truncated",
  [MPI_ERR_OTHER] = "Other MPI error",
  [MPI_ERR_INTERN] = "Internal MPI error",
  [MPI_ERR_IN_STATUS] = "See the MPI_ERROR field in MPI_Status for the error code",
  [MPI_ERR_PENDING] = "Pending request",
  [MPI_ERR_REQUEST] = "Invalid MPI_Request",
  [MPI_ERR_NO_MEM] = "Out of memory",
  [MPI_ERR_INFO] = "Invalid MPI_Info",
  [MPI_ERR_INFO_KEY] = "Invalid info key (empty or longer than MPI_MAX_INFO_KEY)",
  [MPI_ERR_INFO_VALUE] = "Invalid info value (empty or longer than MPI_MAX_INFO_VAL)",
  [MPI_ERR_INFO_NOKEY] = "No such key in the MPI_Info",
  [MPI_ERR_FILE] = "Invalid MPI_File",
  [MPI_ERR_NOT_SAME] = "Collective argument not the same on all processes",
  [MPI_ERR_AMODE] = "Invalid file access mode",
  [MPI_ERR_UNSUPPORTED_DATAREP] = "Unsupported data representation (only \"native\")",
  [MPI_ERR_UNSUPPORTED_OPERATION] = "Unsupported operation on the file",
  [MPI_ERR_NO_SUCH_FILE] = "No such file",
  [MPI_ERR_FILE_EXISTS] = "File exists",
  [MPI_ERR_BAD_FILE] = "Invalid file name",
  [MPI_ERR_ACCESS] = "Permission denied",
  [MPI_ERR_NO_SPACE] = "No space left on the device",
  [MPI_ERR_QUOTA] = "Quota exceeded",
  [MPI_ERR_READ_ONLY] = "Read-only file or file system",
  [MPI_ERR_FILE_IN_USE] = "File in use",
  [MPI_ERR_DUP_DATAREP] = "Data representation already defined",
  [MPI_ERR_CONVERSION] = "Data conversion failed",
  [MPI_ERR_IO] = "I/O error",
  [MPI_ERR_WIN] = "Invalid MPI_Win",
  [MPI_ERR_BASE] = "Invalid base address",
  [MPI_ERR_SIZE] = "Invalid size argument",
  [MPI_ERR_DISP] = "Invalid displacement or displacement unit",
  [MPI_ERR_LOCKTYPE] = "Invalid lock type",
  [MPI_ERR_ASSERT] = "Invalid assertion argument",
  [MPI_ERR_RMA_CONFLICT] = "Conflicting accesses to a window",
  [MPI_ERR_RMA_SYNC] = "One-sided call outside the epoch it needs (no fence, lock or start for this target)",
  [MPI_ERR_RMA_RANGE] = "Target memory is outside the window",
  [MPI_ERR_RMA_ATTACH] = "Memory cannot be attached (overlaps attached memory) or was not attached",
  [MPI_ERR_RMA_SHARED] = "Memory cannot be shared: the ranks of a Ferry job share no memory (they can move to other hosts)",
  [MPI_ERR_RMA_FLAVOR] = "Wrong window flavor for this call",
  [MPI_ERR_KEYVAL] = "Invalid keyval",
  [MPI_ERR_NAME] = "No service of this name is published (a Ferry job publishes none)",
  [MPI_ERR_PORT] = "Ports are not supported: a Ferry job does not connect to other jobs (its ranks move between hosts)",
  [MPI_ERR_SERVICE] = "Name publishing is not supported: a Ferry job does not connect to other jobs",
  [MPI_ERR_SPAWN] = "Spawning processes is not supported: a Ferry job's ranks are fixed when it starts",
  [MPI_T_ERR_MEMORY] = "Out of memory (tool interface)",
  [MPI_T_ERR_NOT_INITIALIZED] = "The tool interface is not initialized (MPI_T_init_thread)",
  [MPI_T_ERR_CANNOT_INIT] = "The tool interface cannot be initialized",
  [MPI_T_ERR_INVALID_INDEX] = "No variable or category has this index",
  [MPI_T_ERR_INVALID_ITEM] = "No enumeration item has this index",
  [MPI_T_ERR_INVALID_HANDLE] = "Invalid tool interface handle",
  [MPI_T_ERR_OUT_OF_HANDLES] = "No more tool interface handles",
  [MPI_T_ERR_OUT_OF_SESSIONS] = "No more performance variable sessions",
  [MPI_T_ERR_INVALID_SESSION] = "Invalid performance variable session",
  [MPI_T_ERR_CVAR_SET_NOT_NOW] = "The control variable cannot be set now",
  [MPI_T_ERR_CVAR_SET_NEVER] = "The control variable cannot be set",
  [MPI_T_ERR_PVAR_NO_STARTSTOP] = "The performance variable cannot be started or stopped",
  [MPI_T_ERR_PVAR_NO_WRITE] = "The performance variable cannot be written",
  [MPI_T_ERR_PVAR_NO_ATOMIC] = "The performance variable cannot be read and reset at once",
  [MPI_T_ERR_INVALID_NAME] = "No variable or category has this name",
  [MPI_T_ERR_INVALID] = "Invalid use of the tool interface",
};

/* Classes and codes of MPI_Add_error_class/_code (MPI 3.1 8.5), numbered from MPI_ERR_LASTCODE + 1 in the
 * order made: each knows its class (a class is its own) and the string MPI_Add_error_string gave it. */
typedef struct user_error {
  int cls;
  char *string;
} user_error;
static user_error *user_errors;
static int n_user_errors;
int fmpi_last_used_code = MPI_ERR_LASTCODE; /* the MPI_LASTUSEDCODE attribute */

static user_error *user_error_get(int code)
{
  int i = code - MPI_ERR_LASTCODE - 1;
  return i >= 0 && i < n_user_errors ? &user_errors[i] : NULL;
}

static int add_user_error(int cls)
{
  user_error *grown = realloc(user_errors, sizeof *grown * (size_t)(n_user_errors + 1));
  if (grown == NULL)
    fmpi_fatal("out of memory");
  user_errors = grown;
  int code = MPI_ERR_LASTCODE + 1 + n_user_errors;
  user_errors[n_user_errors++] = (user_error){ cls < 0 ? code : cls, NULL };
  fmpi_last_used_code = code;
  return code;
}

/* A predefined class or one MPI_Add_error_class made. */
static bool is_class(int c)
{
  user_error *u = user_error_get(c);
  return (c >= 0 && c <= MPI_ERR_LASTCODE) || (u && u->cls == c);
}

int PMPI_Add_error_class(int *errorclass)
{
  FMPI_CHECK_INIT("MPI_Add_error_class");
  *errorclass = add_user_error(-1);
  return MPI_SUCCESS;
}

int PMPI_Add_error_code(int errorclass, int *errorcode)
{
  FMPI_CHECK_INIT("MPI_Add_error_code");
  if (!is_class(errorclass))
    return fmpi_error(NULL, MPI_ERR_ARG, "MPI_Add_error_code");
  *errorcode = add_user_error(errorclass);
  return MPI_SUCCESS;
}

/* Only for the classes and codes MPI_Add_error_class/_code made (MPI_ERR_ARG for a predefined one). */
int PMPI_Add_error_string(int errorcode, const char *string)
{
  FMPI_CHECK_INIT("MPI_Add_error_string");
  user_error *u = user_error_get(errorcode);
  if (u == NULL || string == NULL || strlen(string) >= MPI_MAX_ERROR_STRING)
    return fmpi_error(NULL, MPI_ERR_ARG, "MPI_Add_error_string");
  char *copy = strdup(string);
  if (copy == NULL)
    fmpi_fatal("out of memory");
  free(u->string);
  u->string = copy;
  return MPI_SUCCESS;
}

int fmpi_errh_call(MPI_Comm comm, MPI_Errhandler errh, int code, const char *fname)
{
  if (errh == MPI_ERRORS_RETURN)
    return code;
  MPI_Comm_errhandler_function **fn = errh >= FIRST_USER_ERRH ? fmpi_table_get(&fmpi_errhs, errh - FIRST_USER_ERRH + 1) : NULL;
  if (fn) {
    MPI_Comm c = comm;
    int e = code;
    (*fn)(&c, &e, fname);
    return code;
  }
  char s[MPI_MAX_ERROR_STRING];
  int len;
  PMPI_Error_string(code, s, &len);
  fmpi_fatal("error in %s: %s (MPI_ERRORS_ARE_FATAL)", fname, s);
}

/* Reports error code of call fname on communicator c (NULL: MPI_COMM_WORLD). */
int fmpi_error(fmpi_comm *c, int code, const char *fname)
{
  if (c == NULL)
    c = fmpi_comm_get(MPI_COMM_WORLD);
  return fmpi_errh_call(c ? c->handle : MPI_COMM_WORLD, c ? c->errh : MPI_ERRORS_ARE_FATAL, code, fname);
}

/* A predefined error handler or a live user one. */
bool fmpi_errh_valid(MPI_Errhandler errh)
{
  return errh == MPI_ERRORS_ARE_FATAL || errh == MPI_ERRORS_RETURN ||
         (errh >= FIRST_USER_ERRH && fmpi_table_get(&fmpi_errhs, errh - FIRST_USER_ERRH + 1) != NULL);
}

int PMPI_Comm_set_errhandler(MPI_Comm comm, MPI_Errhandler errhandler)
{
  fmpi_comm *c = fmpi_comm_get(comm);
  if (c == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, "MPI_Comm_set_errhandler");
  if (!fmpi_errh_valid(errhandler))
    return fmpi_error(c, MPI_ERR_ARG, "MPI_Comm_set_errhandler");
  c->errh = errhandler;
  return MPI_SUCCESS;
}

int PMPI_Comm_get_errhandler(MPI_Comm comm, MPI_Errhandler *errhandler)
{
  fmpi_comm *c = fmpi_comm_get(comm);
  if (c == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, "MPI_Comm_get_errhandler");
  *errhandler = c->errh;
  return MPI_SUCCESS;
}

int PMPI_Comm_create_errhandler(MPI_Comm_errhandler_function *function, MPI_Errhandler *errhandler)
{
  MPI_Comm_errhandler_function **fn = malloc(sizeof *fn);
  if (fn == NULL)
    fmpi_fatal("out of memory");
  *fn = function;
  *errhandler = fmpi_table_add(&fmpi_errhs, fn) - 1 + FIRST_USER_ERRH;
  return MPI_SUCCESS;
}

/* Only the caller's handle goes: a handler stays for the communicators, windows and files that use it
 * (MPI 3.1 8.3.4), and, since *_get_errhandler hands out references too, for as long as the process
 * lives (a function pointer each, rarely more than a few). */
int PMPI_Errhandler_free(MPI_Errhandler *errhandler)
{
  *errhandler = MPI_ERRHANDLER_NULL;
  return MPI_SUCCESS;
}

/* Invokes the communicator's error handler as an error in an MPI call would. */
int PMPI_Comm_call_errhandler(MPI_Comm comm, int errorcode)
{
  fmpi_comm *c = fmpi_comm_get(comm);
  if (c == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, "MPI_Comm_call_errhandler");
  fmpi_error(c, errorcode, "MPI_Comm_call_errhandler");
  return MPI_SUCCESS;
}

int PMPI_Error_string(int errorcode, char *string, int *resultlen)
{
  user_error *u = user_error_get(errorcode);
  if (u) { /* no string given yet: the empty one */
    snprintf(string, MPI_MAX_ERROR_STRING, "%s", u->string ? u->string : "");
    *resultlen = (int)strlen(string);
    return MPI_SUCCESS;
  }
  const char *s = errorcode >= 0 && errorcode < (int)(sizeof error_strings / sizeof *error_strings) &&
                          error_strings[errorcode]
                      ? error_strings[errorcode]
                      : NULL;
  if (s)
    snprintf(string, MPI_MAX_ERROR_STRING, "%s", s);
  else
    snprintf(string, MPI_MAX_ERROR_STRING, "Unknown error code %d", errorcode);
  *resultlen = (int)strlen(string);
  return s ? MPI_SUCCESS : MPI_ERR_ARG;
}

int PMPI_Error_class(int errorcode, int *errorclass)
{
  user_error *u = user_error_get(errorcode);
  if (u) {
    *errorclass = u->cls;
    return MPI_SUCCESS;
  }
  if (errorcode < 0 || errorcode > MPI_ERR_LASTCODE)
    return fmpi_error(NULL, MPI_ERR_ARG, "MPI_Error_class");
  *errorclass = errorcode;
  return MPI_SUCCESS;
}
