/* Attribute caching on communicators (MPI 3.1 section 6.7): keyvals with
 * copy and delete callbacks, values set per communicator, copied by
 * Comm_dup through the copy callback and deleted (callback first) by
 * Comm_free or Comm_delete_attr. The predefined keys (MPI_TAG_UB ...) are
 * answered by Comm_get_attr in comm.c. */
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

/* User keyvals are FIRST_USER_KEYVAL + table slot - 1 (below: the predefined keys). */
#define FIRST_USER_KEYVAL 64

typedef struct fmpi_keyval {
  MPI_Comm_copy_attr_function *copy;
  MPI_Comm_delete_attr_function *del;
  void *extra;
  int refs; /* 1 while not freed, plus one per attribute set with it */
} fmpi_keyval;

struct fmpi_attr {
  struct fmpi_attr *next;
  int keyval;
  void *value;
};

static fmpi_table keyvals;

static fmpi_keyval *get_keyval(int keyval)
{
  return keyval >= FIRST_USER_KEYVAL ? fmpi_table_get(&keyvals, keyval - FIRST_USER_KEYVAL + 1) : NULL;
}

static void unref(int keyval)
{
  fmpi_keyval *k = get_keyval(keyval);
  if (k && --k->refs == 0) {
    fmpi_table_del(&keyvals, keyval - FIRST_USER_KEYVAL + 1);
    free(k);
  }
}

int MPI_COMM_NULL_COPY_FN(MPI_Comm oldcomm, int keyval, void *extra, void *in, void *out, int *flag)
{
  (void)oldcomm, (void)keyval, (void)extra, (void)in, (void)out;
  *flag = 0;
  return MPI_SUCCESS;
}

int MPI_COMM_DUP_FN(MPI_Comm oldcomm, int keyval, void *extra, void *in, void *out, int *flag)
{
  (void)oldcomm, (void)keyval, (void)extra;
  *(void **)out = in;
  *flag = 1;
  return MPI_SUCCESS;
}

int MPI_COMM_NULL_DELETE_FN(MPI_Comm comm, int keyval, void *value, void *extra)
{
  (void)comm, (void)keyval, (void)value, (void)extra;
  return MPI_SUCCESS;
}

int PMPI_Comm_create_keyval(MPI_Comm_copy_attr_function *copy_fn, MPI_Comm_delete_attr_function *delete_fn,
                            int *keyval, void *extra_state)
{
  fmpi_keyval *k = malloc(sizeof *k);
  if (k == NULL)
    fmpi_fatal("out of memory");
  k->copy = copy_fn ? copy_fn : MPI_COMM_NULL_COPY_FN;
  k->del = delete_fn ? delete_fn : MPI_COMM_NULL_DELETE_FN;
  k->extra = extra_state;
  k->refs = 1;
  *keyval = fmpi_table_add(&keyvals, k) - 1 + FIRST_USER_KEYVAL;
  return MPI_SUCCESS;
}

/* The keyval goes once no communicator holds an attribute with it. */
int PMPI_Comm_free_keyval(int *keyval)
{
  if (get_keyval(*keyval) == NULL)
    return fmpi_error(NULL, MPI_ERR_ARG, "MPI_Comm_free_keyval");
  unref(*keyval);
  *keyval = MPI_KEYVAL_INVALID;
  return MPI_SUCCESS;
}

static struct fmpi_attr **find_attr(fmpi_comm *c, int keyval)
{
  struct fmpi_attr **at = &c->attrs;
  while (*at && (*at)->keyval != keyval)
    at = &(*at)->next;
  return at;
}

/* Removes one attribute, its delete callback first; its error code, if any. */
static int delete_attr(fmpi_comm *c, struct fmpi_attr **at)
{
  struct fmpi_attr *a = *at;
  fmpi_keyval *k = get_keyval(a->keyval);
  int rv = k->del(c->handle, a->keyval, a->value, k->extra);
  if (rv != MPI_SUCCESS)
    return rv;
  *at = a->next;
  unref(a->keyval);
  free(a);
  return MPI_SUCCESS;
}

static void put_attr(fmpi_comm *c, int keyval, void *value)
{
  struct fmpi_attr *a = malloc(sizeof *a);
  if (a == NULL)
    fmpi_fatal("out of memory");
  a->keyval = keyval;
  a->value = value;
  a->next = c->attrs;
  c->attrs = a;
  get_keyval(keyval)->refs++;
}

int PMPI_Comm_set_attr(MPI_Comm comm, int keyval, void *attribute_val)
{
  FMPI_CHECK_INIT("MPI_Comm_set_attr");
  fmpi_comm *c = fmpi_comm_get(comm);
  if (c == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, "MPI_Comm_set_attr");
  if (get_keyval(keyval) == NULL)
    return fmpi_error(c, MPI_ERR_ARG, "MPI_Comm_set_attr"); /* unknown, or a predefined key */
  struct fmpi_attr **at = find_attr(c, keyval);
  if (*at) {
    int rv = delete_attr(c, at); /* the old value's delete callback runs, as for Comm_delete_attr */
    if (rv != MPI_SUCCESS)
      return fmpi_error(c, rv, "MPI_Comm_set_attr");
  }
  put_attr(c, keyval, attribute_val);
  return MPI_SUCCESS;
}

int PMPI_Comm_delete_attr(MPI_Comm comm, int keyval)
{
  FMPI_CHECK_INIT("MPI_Comm_delete_attr");
  fmpi_comm *c = fmpi_comm_get(comm);
  if (c == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, "MPI_Comm_delete_attr");
  struct fmpi_attr **at = find_attr(c, keyval);
  if (*at == NULL)
    return fmpi_error(c, MPI_ERR_ARG, "MPI_Comm_delete_attr");
  int rv = delete_attr(c, at);
  return rv == MPI_SUCCESS ? rv : fmpi_error(c, rv, "MPI_Comm_delete_attr");
}

bool fmpi_attr_get(fmpi_comm *c, int keyval, void **value)
{
  struct fmpi_attr *a = *find_attr(c, keyval);
  if (a)
    *value = a->value;
  return a != NULL;
}

int fmpi_attrs_copy(fmpi_comm *from, fmpi_comm *to)
{
  for (struct fmpi_attr *a = from->attrs; a; a = a->next) {
    fmpi_keyval *k = get_keyval(a->keyval);
    void *out = NULL;
    int flag = 0;
    int rv = k->copy(from->handle, a->keyval, k->extra, a->value, &out, &flag);
    if (rv != MPI_SUCCESS)
      return rv;
    if (flag)
      put_attr(to, a->keyval, out);
  }
  return MPI_SUCCESS;
}

int fmpi_attrs_delete_all(fmpi_comm *c)
{
  while (c->attrs) {
    int rv = delete_attr(c, &c->attrs);
    if (rv != MPI_SUCCESS)
      return rv;
  }
  return MPI_SUCCESS;
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
