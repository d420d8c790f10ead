/* Attribute caching (MPI 3.1 section 6.7) on communicators, windows and
 * datatypes: keyvals with copy and delete callbacks, values set per object,
 * copied by Comm_dup / Type_dup through the copy callback and deleted
 * (callback first) by Comm_free / Win_free / Type_free or a delete call. The
 * communicator calls are here; the window and datatype ones, in win.c and
 * datatype.c, use the same engine. The predefined keys (MPI_TAG_UB,
 * MPI_WIN_BASE ...) are answered by Comm_get_attr in comm.c and
 * Win_get_attr in win.c. */
#define _GNU_SOURCE
#include <stdlib.h>

#include "fmpi.h"

#pragma weak MPI_Comm_create_keyval = PMPI_Comm_create_keyval
#pragma weak MPI_Comm_free_keyval = PMPI_Comm_free_keyval
#pragma weak MPI_Comm_set_attr = PMPI_Comm_set_attr
#pragma weak MPI_Comm_delete_attr = PMPI_Comm_delete_attr
#pragma weak MPI_Attr_get = PMPI_Attr_get
#pragma weak MPI_Attr_put = PMPI_Attr_put
#pragma weak MPI_Attr_delete = PMPI_Attr_delete

/* User keyvals are FIRST_USER_KEYVAL + table slot - 1 (below: the predefined
 * keys), one table for the three kinds of object; a keyval names its kind. */
#define FIRST_USER_KEYVAL 64

/* The callbacks of the three kinds differ only in the handle's type (an int for all). */
typedef int copy_fn(int oldobj, int keyval, void *extra, void *in, void *out, int *flag);
typedef int delete_fn(int obj, int keyval, void *value, void *extra);

typedef struct fmpi_keyval {
  copy_fn *copy;
  delete_fn *del;
  void *extra;
  int kind;  /* enum fmpi_attr_kind */
  int refs;  /* 1 while not freed, plus one per attribute set with it */
} fmpi_keyval;

struct fmpi_attr {
  struct fmpi_attr *next;
  int keyval;
  void *value;
};

static fmpi_table keyvals;

static fmpi_keyval *get_keyval(int keyval, int kind)
{
  fmpi_keyval *k = keyval >= FIRST_USER_KEYVAL ? fmpi_table_get(&keyvals, keyval - FIRST_USER_KEYVAL + 1) : NULL;
  return k && k->kind == kind ? k : NULL;
}

static void unref(fmpi_keyval *k, int keyval)
{
  if (--k->refs == 0) {
    fmpi_table_del(&keyvals, keyval - FIRST_USER_KEYVAL + 1);
    free(k);
  }
}

static int null_copy(int oldobj, int keyval, void *extra, void *in, void *out, int *flag)
{
  (void)oldobj, (void)keyval, (void)extra, (void)in, (void)out;
  *flag = 0;
  return MPI_SUCCESS;
}

static int dup_copy(int oldobj, int keyval, void *extra, void *in, void *out, int *flag)
{
  (void)oldobj, (void)keyval, (void)extra;
  *(void **)out = in;
  *flag = 1;
  return MPI_SUCCESS;
}

static int null_delete(int obj, int keyval, void *value, void *extra)
{
  (void)obj, (void)keyval, (void)value, (void)extra;
  return MPI_SUCCESS;
}

/* The predefined callbacks, one set per kind (the standard names each). */
int MPI_COMM_NULL_COPY_FN(MPI_Comm o, int k, void *x, void *in, void *out, int *flag) { return null_copy(o, k, x, in, out, flag); }
int MPI_COMM_DUP_FN(MPI_Comm o, int k, void *x, void *in, void *out, int *flag) { return dup_copy(o, k, x, in, out, flag); }
int MPI_COMM_NULL_DELETE_FN(MPI_Comm o, int k, void *v, void *x) { return null_delete(o, k, v, x); }
int MPI_WIN_NULL_COPY_FN(MPI_Win o, int k, void *x, void *in, void *out, int *flag) { return null_copy(o, k, x, in, out, flag); }
int MPI_WIN_DUP_FN(MPI_Win o, int k, void *x, void *in, void *out, int *flag) { return dup_copy(o, k, x, in, out, flag); }
int MPI_WIN_NULL_DELETE_FN(MPI_Win o, int k, void *v, void *x) { return null_delete(o, k, v, x); }
int MPI_TYPE_NULL_COPY_FN(MPI_Datatype o, int k, void *x, void *in, void *out, int *flag) { return null_copy(o, k, x, in, out, flag); }
int MPI_TYPE_DUP_FN(MPI_Datatype o, int k, void *x, void *in, void *out, int *flag) { return dup_copy(o, k, x, in, out, flag); }
int MPI_TYPE_NULL_DELETE_FN(MPI_Datatype o, int k, void *v, void *x) { return null_delete(o, k, v, x); }

int fmpi_keyval_create(int kind, void *copy, void *del, int *keyval, void *extra)
{
  fmpi_keyval *k = malloc(sizeof *k);
  if (k == NULL)
    fmpi_fatal("out of memory");
  k->copy = copy ? (copy_fn *)copy : null_copy;
  k->del = del ? (delete_fn *)del : null_delete;
  k->extra = extra;
  k->kind = kind;
  k->refs = 1;
  *keyval = fmpi_table_add(&keyvals, k) - 1 + FIRST_USER_KEYVAL;
  return MPI_SUCCESS;
}

/* The keyval goes once no object holds an attribute with it; MPI_ERR_ARG if it is not one of kind's. */
int fmpi_keyval_free(int kind, int *keyval)
{
  fmpi_keyval *k = get_keyval(*keyval, kind);
  if (k == NULL)
    return MPI_ERR_ARG;
  unref(k, *keyval);
  *keyval = MPI_KEYVAL_INVALID;
  return MPI_SUCCESS;
}

static struct fmpi_attr **find_attr(struct fmpi_attr **list, int keyval)
{
  while (*list && (*list)->keyval != keyval)
    list = &(*list)->next;
  return list;
}

/* Removes one attribute, its delete callback first; its error code, if any. */
static int delete_attr(struct fmpi_attr **at, int handle, int kind)
{
  struct fmpi_attr *a = *at;
  fmpi_keyval *k = get_keyval(a->keyval, kind);
  int rv = k->del(handle, a->keyval, a->value, k->extra);
  if (rv != MPI_SUCCESS)
    return rv;
  *at = a->next;
  unref(k, a->keyval);
  free(a);
  return MPI_SUCCESS;
}

static void put_attr(struct fmpi_attr **list, int kind, int keyval, void *value)
{
  struct fmpi_attr *a = malloc(sizeof *a);
  if (a == NULL)
    fmpi_fatal("out of memory");
  a->keyval = keyval;
  a->value = value;
  a->next = *list;
  *list = a;
  get_keyval(keyval, kind)->refs++;
}

/* Sets keyval's attribute of an object (list, handle) of kind: MPI_ERR_ARG
 * for an unknown keyval, a predefined one or one of another kind; the old
 * value's delete callback runs first, as for a delete. */
int fmpi_attr_set(struct fmpi_attr **list, int handle, int kind, int keyval, void *value)
{
  if (get_keyval(keyval, kind) == NULL)
    return MPI_ERR_ARG;
  struct fmpi_attr **at = find_attr(list, keyval);
  int rv;
  if (*at && (rv = delete_attr(at, handle, kind)) != MPI_SUCCESS)
    return rv;
  put_attr(list, kind, keyval, value);
  return MPI_SUCCESS;
}

int fmpi_attr_delete(struct fmpi_attr **list, int handle, int kind, int keyval)
{
  struct fmpi_attr **at = find_attr(list, keyval);
  return *at == NULL ? MPI_ERR_ARG : delete_attr(at, handle, kind);
}

bool fmpi_attr_find(struct fmpi_attr **list, int keyval, void **value)
{
  struct fmpi_attr *a = *find_attr(list, keyval);
  if (a)
    *value = a->value;
  return a != NULL;
}

/* A duplicate's attributes: those the copy callbacks keep. */
int fmpi_attr_copy_all(struct fmpi_attr **from, int from_handle, int kind, struct fmpi_attr **to)
{
  for (struct fmpi_attr *a = *from; a; a = a->next) {
    fmpi_keyval *k = get_keyval(a->keyval, kind);
    void *out = NULL;
    int flag = 0;
    int rv = k->copy(from_handle, a->keyval, k->extra, a->value, &out, &flag);
    if (rv != MPI_SUCCESS)
      return rv;
    if (flag)
      put_attr(to, kind, a->keyval, out);
  }
  return MPI_SUCCESS;
}

/* An object's end: every attribute's delete callback (stops at an error). */
int fmpi_attr_delete_all(struct fmpi_attr **list, int handle, int kind)
{
  while (*list) {
    int rv = delete_attr(list, handle, kind);
    if (rv != MPI_SUCCESS)
      return rv;
  }
  return MPI_SUCCESS;
}

/* ---- communicators ---- */

int PMPI_Comm_create_keyval(MPI_Comm_copy_attr_function *copy_fn, MPI_Comm_delete_attr_function *delete_fn,
                            int *keyval, void *extra_state)
{
  return fmpi_keyval_create(FMPI_ATTR_COMM, (void *)copy_fn, (void *)delete_fn, keyval, extra_state);
}

int PMPI_Comm_free_keyval(int *keyval)
{
  int rv = fmpi_keyval_free(FMPI_ATTR_COMM, keyval);
  return rv == MPI_SUCCESS ? rv : fmpi_error(NULL, rv, "MPI_Comm_free_keyval");
}

int PMPI_Comm_set_attr(MPI_Comm comm, int keyval, void *attribute_val)
{
  FMPI_CHECK_INIT("MPI_Comm_set_attr");
  fmpi_comm *c = fmpi_comm_get(comm);
  if (c == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, "MPI_Comm_set_attr");
  int rv = fmpi_attr_set(&c->attrs, c->handle, FMPI_ATTR_COMM, keyval, attribute_val);
  return rv == MPI_SUCCESS ? rv : fmpi_error(c, rv, "MPI_Comm_set_attr");
}

int PMPI_Comm_delete_attr(MPI_Comm comm, int keyval)
{
  FMPI_CHECK_INIT("MPI_Comm_delete_attr");
  fmpi_comm *c = fmpi_comm_get(comm);
  if (c == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, "MPI_Comm_delete_attr");
  int rv = fmpi_attr_delete(&c->attrs, c->handle, FMPI_ATTR_COMM, keyval);
  return rv == MPI_SUCCESS ? rv : fmpi_error(c, rv, "MPI_Comm_delete_attr");
}

bool fmpi_attr_get(fmpi_comm *c, int keyval, void **value)
{
  return fmpi_attr_find(&c->attrs, keyval, value);
}

int fmpi_attrs_copy(fmpi_comm *from, fmpi_comm *to)
{
  return fmpi_attr_copy_all(&from->attrs, from->handle, FMPI_ATTR_COMM, &to->attrs);
}

int fmpi_attrs_delete_all(fmpi_comm *c)
{
  return fmpi_attr_delete_all(&c->attrs, c->handle, FMPI_ATTR_COMM);
}

/* The MPI-1 names. */
int PMPI_Attr_get(MPI_Comm comm, int keyval, void *attribute_val, int *flag)
{
  return PMPI_Comm_get_attr(comm, keyval, attribute_val, flag);
}

int PMPI_Attr_put(MPI_Comm comm, int keyval, void *attribute_val)
{
  return PMPI_Comm_set_attr(comm, keyval, attribute_val);
}

int PMPI_Attr_delete(MPI_Comm comm, int keyval)
{
  return PMPI_Comm_delete_attr(comm, keyval);
}
