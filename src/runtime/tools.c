/* The profiling and tool interfaces' own calls.
 *
 * MPI_Pcontrol is for a profiling library interposed over the MPI_ names (every call here has its PMPI_
 * twin): this library itself profiles nothing, so the call does nothing, as MPI 3.1 14.2.4 allows.
 *
 * The tool information interface (MPI_T, chapter 14.3) exposes no control or performance variables and
 * no categories: their counts are 0, every index and name is invalid, and no handle can exist. A tool
 * that enumerates variables works and finds none; performance variable sessions can be made and freed.
 * The interface may be used before MPI_Init and after MPI_Finalize, and its initializations nest. */
#include <stdlib.h>

#include "fmpi.h"

#pragma weak MPI_Pcontrol = PMPI_Pcontrol
#pragma weak MPI_T_init_thread = PMPI_T_init_thread
#pragma weak MPI_T_finalize = PMPI_T_finalize
#pragma weak MPI_T_enum_get_info = PMPI_T_enum_get_info
#pragma weak MPI_T_enum_get_item = PMPI_T_enum_get_item
#pragma weak MPI_T_cvar_get_num = PMPI_T_cvar_get_num
#pragma weak MPI_T_cvar_get_info = PMPI_T_cvar_get_info
#pragma weak MPI_T_cvar_get_index = PMPI_T_cvar_get_index
#pragma weak MPI_T_cvar_handle_alloc = PMPI_T_cvar_handle_alloc
#pragma weak MPI_T_cvar_handle_free = PMPI_T_cvar_handle_free
#pragma weak MPI_T_cvar_read = PMPI_T_cvar_read
#pragma weak MPI_T_cvar_write = PMPI_T_cvar_write
#pragma weak MPI_T_pvar_get_num = PMPI_T_pvar_get_num
#pragma weak MPI_T_pvar_get_info = PMPI_T_pvar_get_info
#pragma weak MPI_T_pvar_get_index = PMPI_T_pvar_get_index
#pragma weak MPI_T_pvar_session_create = PMPI_T_pvar_session_create
#pragma weak MPI_T_pvar_session_free = PMPI_T_pvar_session_free
#pragma weak MPI_T_pvar_handle_alloc = PMPI_T_pvar_handle_alloc
#pragma weak MPI_T_pvar_handle_free = PMPI_T_pvar_handle_free
#pragma weak MPI_T_pvar_start = PMPI_T_pvar_start
#pragma weak MPI_T_pvar_stop = PMPI_T_pvar_stop
#pragma weak MPI_T_pvar_read = PMPI_T_pvar_read
#pragma weak MPI_T_pvar_write = PMPI_T_pvar_write
#pragma weak MPI_T_pvar_reset = PMPI_T_pvar_reset
#pragma weak MPI_T_pvar_readreset = PMPI_T_pvar_readreset
#pragma weak MPI_T_category_get_num = PMPI_T_category_get_num
#pragma weak MPI_T_category_get_info = PMPI_T_category_get_info
#pragma weak MPI_T_category_get_index = PMPI_T_category_get_index
#pragma weak MPI_T_category_get_cvars = PMPI_T_category_get_cvars
#pragma weak MPI_T_category_get_pvars = PMPI_T_category_get_pvars
#pragma weak MPI_T_category_get_categories = PMPI_T_category_get_categories
#pragma weak MPI_T_category_changed = PMPI_T_category_changed

int PMPI_Pcontrol(const int level, ...)
{
  (void)level;
  return MPI_SUCCESS;
}

static int t_inits; /* MPI_T_init_thread calls not yet matched by MPI_T_finalize */

struct fmpi_t_session {
  struct fmpi_t_session *next;
};
static struct fmpi_t_session *sessions;

#define T_CHECK_INIT()                      \
  do {                                      \
    if (t_inits == 0)                       \
      return MPI_T_ERR_NOT_INITIALIZED;     \
  } while (0)

int PMPI_T_init_thread(int required, int *provided)
{
  t_inits++;
  *provided = required > MPI_THREAD_SERIALIZED ? MPI_THREAD_SERIALIZED : required;
  return MPI_SUCCESS;
}

int PMPI_T_finalize(void)
{
  T_CHECK_INIT();
  if (--t_inits == 0)
    while (sessions) {
      struct fmpi_t_session *s = sessions;
      sessions = s->next;
      free(s);
    }
  return MPI_SUCCESS;
}

/* ---- enumerations and control variables: none ---- */

int PMPI_T_enum_get_info(MPI_T_enum enumtype, int *num, char *name, int *name_len)
{
  (void)enumtype, (void)num, (void)name, (void)name_len;
  T_CHECK_INIT();
  return MPI_T_ERR_INVALID_HANDLE;
}

int PMPI_T_enum_get_item(MPI_T_enum enumtype, int index, int *value, char *name, int *name_len)
{
  (void)enumtype, (void)index, (void)value, (void)name, (void)name_len;
  T_CHECK_INIT();
  return MPI_T_ERR_INVALID_HANDLE;
}

int PMPI_T_cvar_get_num(int *num_cvar)
{
  T_CHECK_INIT();
  *num_cvar = 0;
  return MPI_SUCCESS;
}

int PMPI_T_cvar_get_info(int cvar_index, char *name, int *name_len, int *verbosity, MPI_Datatype *datatype,
                         MPI_T_enum *enumtype, char *desc, int *desc_len, int *bind, int *scope)
{
  (void)cvar_index, (void)name, (void)name_len, (void)verbosity, (void)datatype, (void)enumtype, (void)desc,
      (void)desc_len, (void)bind, (void)scope;
  T_CHECK_INIT();
  return MPI_T_ERR_INVALID_INDEX;
}

int PMPI_T_cvar_get_index(const char *name, int *cvar_index)
{
  (void)name, (void)cvar_index;
  T_CHECK_INIT();
  return MPI_T_ERR_INVALID_NAME;
}

int PMPI_T_cvar_handle_alloc(int cvar_index, void *obj_handle, MPI_T_cvar_handle *handle, int *count)
{
  (void)cvar_index, (void)obj_handle, (void)handle, (void)count;
  T_CHECK_INIT();
  return MPI_T_ERR_INVALID_INDEX;
}

int PMPI_T_cvar_handle_free(MPI_T_cvar_handle *handle)
{
  (void)handle;
  T_CHECK_INIT();
  return MPI_T_ERR_INVALID_HANDLE;
}

int PMPI_T_cvar_read(MPI_T_cvar_handle handle, void *buf)
{
  (void)handle, (void)buf;
  T_CHECK_INIT();
  return MPI_T_ERR_INVALID_HANDLE;
}

int PMPI_T_cvar_write(MPI_T_cvar_handle handle, const void *buf)
{
  (void)handle, (void)buf;
  T_CHECK_INIT();
  return MPI_T_ERR_INVALID_HANDLE;
}

/* ---- performance variables: none, but sessions ---- */

int PMPI_T_pvar_get_num(int *num_pvar)
{
  T_CHECK_INIT();
  *num_pvar = 0;
  return MPI_SUCCESS;
}

int PMPI_T_pvar_get_info(int pvar_index, char *name, int *name_len, int *verbosity, int *var_class,
                         MPI_Datatype *datatype, MPI_T_enum *enumtype, char *desc, int *desc_len, int *bind,
                         int *readonly, int *continuous, int *atomic)
{
  (void)pvar_index, (void)name, (void)name_len, (void)verbosity, (void)var_class, (void)datatype, (void)enumtype,
      (void)desc, (void)desc_len, (void)bind, (void)readonly, (void)continuous, (void)atomic;
  T_CHECK_INIT();
  return MPI_T_ERR_INVALID_INDEX;
}

int PMPI_T_pvar_get_index(const char *name, int var_class, int *pvar_index)
{
  (void)name, (void)var_class, (void)pvar_index;
  T_CHECK_INIT();
  return MPI_T_ERR_INVALID_NAME;
}

static bool session_live(MPI_T_pvar_session session)
{
  for (struct fmpi_t_session *s = sessions; s; s = s->next)
    if (s == session)
      return true;
  return false;
}

int PMPI_T_pvar_session_create(MPI_T_pvar_session *session)
{
  T_CHECK_INIT();
  struct fmpi_t_session *s = calloc(1, sizeof *s);
  if (s == NULL)
    return MPI_T_ERR_MEMORY;
  s->next = sessions;
  sessions = s;
  *session = s;
  return MPI_SUCCESS;
}

int PMPI_T_pvar_session_free(MPI_T_pvar_session *session)
{
  T_CHECK_INIT();
  for (struct fmpi_t_session **p = &sessions; *p; p = &(*p)->next)
    if (*p == *session) {
      *p = (*session)->next;
      free(*session);
      *session = MPI_T_PVAR_SESSION_NULL;
      return MPI_SUCCESS;
    }
  return MPI_T_ERR_INVALID_SESSION;
}

int PMPI_T_pvar_handle_alloc(MPI_T_pvar_session session, int pvar_index, void *obj_handle,
                             MPI_T_pvar_handle *handle, int *count)
{
  (void)pvar_index, (void)obj_handle, (void)handle, (void)count;
  T_CHECK_INIT();
  return session_live(session) ? MPI_T_ERR_INVALID_INDEX : MPI_T_ERR_INVALID_SESSION;
}

/* A call on one handle: none exists. MPI_T_PVAR_ALL_HANDLES (start, stop, reset): all none of them. */
static int on_handle(MPI_T_pvar_session session, MPI_T_pvar_handle handle, bool all_ok)
{
  T_CHECK_INIT();
  if (!session_live(session))
    return MPI_T_ERR_INVALID_SESSION;
  return all_ok && handle == MPI_T_PVAR_ALL_HANDLES ? MPI_SUCCESS : MPI_T_ERR_INVALID_HANDLE;
}

int PMPI_T_pvar_handle_free(MPI_T_pvar_session session, MPI_T_pvar_handle *handle)
{
  return on_handle(session, *handle, false);
}

int PMPI_T_pvar_start(MPI_T_pvar_session session, MPI_T_pvar_handle handle)
{
  return on_handle(session, handle, true);
}

int PMPI_T_pvar_stop(MPI_T_pvar_session session, MPI_T_pvar_handle handle)
{
  return on_handle(session, handle, true);
}

int PMPI_T_pvar_read(MPI_T_pvar_session session, MPI_T_pvar_handle handle, void *buf)
{
  (void)buf;
  return on_handle(session, handle, false);
}

int PMPI_T_pvar_write(MPI_T_pvar_session session, MPI_T_pvar_handle handle, const void *buf)
{
  (void)buf;
  return on_handle(session, handle, false);
}

int PMPI_T_pvar_reset(MPI_T_pvar_session session, MPI_T_pvar_handle handle)
{
  return on_handle(session, handle, true);
}

int PMPI_T_pvar_readreset(MPI_T_pvar_session session, MPI_T_pvar_handle handle, void *buf)
{
  (void)buf;
  return on_handle(session, handle, false);
}

/* ---- categories: none, and they never change ---- */

int PMPI_T_category_get_num(int *num_cat)
{
  T_CHECK_INIT();
  *num_cat = 0;
  return MPI_SUCCESS;
}

int PMPI_T_category_get_info(int cat_index, char *name, int *name_len, char *desc, int *desc_len, int *num_cvars,
                             int *num_pvars, int *num_categories)
{
  (void)cat_index, (void)name, (void)name_len, (void)desc, (void)desc_len, (void)num_cvars, (void)num_pvars,
      (void)num_categories;
  T_CHECK_INIT();
  return MPI_T_ERR_INVALID_INDEX;
}

int PMPI_T_category_get_index(const char *name, int *cat_index)
{
  (void)name, (void)cat_index;
  T_CHECK_INIT();
  return MPI_T_ERR_INVALID_NAME;
}

int PMPI_T_category_get_cvars(int cat_index, int len, int indices[])
{
  (void)cat_index, (void)len, (void)indices;
  T_CHECK_INIT();
  return MPI_T_ERR_INVALID_INDEX;
}

int PMPI_T_category_get_pvars(int cat_index, int len, int indices[])
{
  (void)cat_index, (void)len, (void)indices;
  T_CHECK_INIT();
  return MPI_T_ERR_INVALID_INDEX;
}

int PMPI_T_category_get_categories(int cat_index, int len, int indices[])
{
  (void)cat_index, (void)len, (void)indices;
  T_CHECK_INIT();
  return MPI_T_ERR_INVALID_INDEX;
}

int PMPI_T_category_changed(int *stamp)
{
  T_CHECK_INIT();
  *stamp = 0;
  return MPI_SUCCESS;
}
