/* Communicators and groups. A communicator is a context id (agreed by an
 * allreduce-max over the parent, so no two communicators that share a rank
 * share a context) and the world ranks of its members. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmpi.h"

#pragma weak MPI_Comm_rank = PMPI_Comm_rank
#pragma weak MPI_Comm_size = PMPI_Comm_size
#pragma weak MPI_Comm_get_attr = PMPI_Comm_get_attr
#pragma weak MPI_Comm_dup = PMPI_Comm_dup
#pragma weak MPI_Comm_idup = PMPI_Comm_idup
#pragma weak MPI_Comm_split = PMPI_Comm_split
#pragma weak MPI_Comm_split_type = PMPI_Comm_split_type
#pragma weak MPI_Comm_set_name = PMPI_Comm_set_name
#pragma weak MPI_Comm_get_name = PMPI_Comm_get_name
#pragma weak MPI_Comm_create = PMPI_Comm_create
#pragma weak MPI_Comm_create_group = PMPI_Comm_create_group
#pragma weak MPI_Comm_dup_with_info = PMPI_Comm_dup_with_info
#pragma weak MPI_Comm_set_info = PMPI_Comm_set_info
#pragma weak MPI_Comm_get_info = PMPI_Comm_get_info
#pragma weak MPI_Comm_test_inter = PMPI_Comm_test_inter
#pragma weak MPI_Comm_remote_size = PMPI_Comm_remote_size
#pragma weak MPI_Comm_remote_group = PMPI_Comm_remote_group
#pragma weak MPI_Comm_free = PMPI_Comm_free
#pragma weak MPI_Comm_compare = PMPI_Comm_compare
#pragma weak MPI_Comm_group = PMPI_Comm_group
#pragma weak MPI_Group_incl = PMPI_Group_incl
#pragma weak MPI_Group_excl = PMPI_Group_excl
#pragma weak MPI_Group_size = PMPI_Group_size
#pragma weak MPI_Group_rank = PMPI_Group_rank
#pragma weak MPI_Group_translate_ranks = PMPI_Group_translate_ranks
#pragma weak MPI_Group_compare = PMPI_Group_compare
#pragma weak MPI_Group_free = PMPI_Group_free
#pragma weak MPI_Group_union = PMPI_Group_union
#pragma weak MPI_Group_intersection = PMPI_Group_intersection
#pragma weak MPI_Group_difference = PMPI_Group_difference
#pragma weak MPI_Group_range_incl = PMPI_Group_range_incl
#pragma weak MPI_Group_range_excl = PMPI_Group_range_excl

fmpi_table fmpi_comms, fmpi_groups;

fmpi_comm *fmpi_comm_get(MPI_Comm h)
{
  fmpi_comm *c = fmpi_table_get(&fmpi_comms, h);
  return c && !c->user_freed ? c : NULL;
}
fmpi_group *fmpi_group_get(MPI_Group h) { return fmpi_table_get(&fmpi_groups, h); }

/* A communicator for calls that take an intracommunicator only (NULL for an intercommunicator). */
fmpi_comm *fmpi_comm_get_intra(MPI_Comm h)
{
  fmpi_comm *c = fmpi_comm_get(h);
  return c && !c->inter ? c : NULL;
}

/* A communicator over the given world ranks (copied), or NULL if this rank is not one. */
fmpi_comm *fmpi_comm_new(uint32_t ctx, int n, const int *world, MPI_Errhandler errh)
{
  fmpi_comm *c = calloc(1, sizeof *c);
  if (c == NULL || (c->world = malloc(sizeof(int) * (size_t)(n ? n : 1))) == NULL ||
      (c->local = malloc(sizeof(int) * (size_t)fmpi_st.size)) == NULL)
    fmpi_fatal("out of memory");
  c->ctx = ctx;
  c->size = n;
  c->rank = -1;
  c->errh = errh;
  for (int r = 0; r < fmpi_st.size; r++)
    c->local[r] = -1;
  for (int i = 0; i < n; i++) {
    c->world[i] = world[i];
    c->local[world[i]] = i;
    if (world[i] == fmpi_st.rank)
      c->rank = i;
  }
  fmpi_lock(); /* the progress thread reads the table (ctx.c) */
  c->handle = fmpi_table_add(&fmpi_comms, c);
  fmpi_unlock();
  return c;
}

static void free_comm(fmpi_comm *c);

/* The memory of a communicator no handle and no request refers to any more. An
 * intercommunicator takes its local group's communicator with it. */
static void destroy_comm(fmpi_comm *c)
{
  if (c->inter)
    free_comm(fmpi_table_get(&fmpi_comms, c->local_comm));
  free(c->cart);
  fmpi_graph_free(c->graph);
  free(c->world);
  free(c->local);
  free(c);
}

/* Freed communicators still in the table for their requests (app thread only). */
static int zombies;

/* Drops the handle's reference: gone now if no request points to c, else at a later
 * fmpi_comm_reap. */
static void free_comm(fmpi_comm *c)
{
  fmpi_lock();
  c->user_freed = true;
  bool unused = __atomic_load_n(&c->refs, __ATOMIC_ACQUIRE) == 0;
  if (unused)
    fmpi_table_del(&fmpi_comms, c->handle);
  else
    zombies++;
  fmpi_unlock();
  if (unused)
    destroy_comm(c);
}

/* Frees the communicators MPI_Comm_free left to their pending requests, once these are
 * released (app thread, lock not held). A freed communicator gets no new requests, so
 * a count that reached 0 stays there. */
void fmpi_comm_reap(void)
{
  for (int h = 1; zombies > 0 && h <= fmpi_comms.n; h++) {
    fmpi_lock();
    fmpi_comm *c = fmpi_table_get(&fmpi_comms, h);
    bool dead = c && c->user_freed && __atomic_load_n(&c->refs, __ATOMIC_ACQUIRE) == 0;
    if (dead) {
      fmpi_table_del(&fmpi_comms, h);
      zombies--;
    }
    fmpi_unlock();
    if (dead)
      destroy_comm(c);
  }
}

static fmpi_group *make_group(int n, const int *world)
{
  fmpi_group *g = calloc(1, sizeof *g);
  if (g == NULL || (g->world = malloc(sizeof(int) * (size_t)(n ? n : 1))) == NULL)
    fmpi_fatal("out of memory");
  g->size = n;
  if (n)
    memcpy(g->world, world, sizeof(int) * (size_t)n);
  return g;
}

int fmpi_comm_init_predefined(void)
{
  int *all = malloc(sizeof(int) * (size_t)fmpi_st.size);
  if (all == NULL)
    return -1;
  for (int r = 0; r < fmpi_st.size; r++)
    all[r] = r;
  fmpi_comm *w = fmpi_comm_new(0, fmpi_st.size, all, MPI_ERRORS_ARE_FATAL);
  fmpi_comm *s = fmpi_comm_new(2, 1, &fmpi_st.rank, MPI_ERRORS_ARE_FATAL);
  free(all);
  fmpi_group *empty = make_group(0, NULL);
  if (w->handle != MPI_COMM_WORLD || s->handle != MPI_COMM_SELF ||
      fmpi_table_add(&fmpi_groups, empty) != MPI_GROUP_EMPTY)
    return -1;
  return 0;
}

#define GET_COMM(h, name)                          \
  FMPI_CHECK_INIT(name);                           \
  fmpi_comm *c = fmpi_comm_get(h);                 \
  if (c == NULL)                                   \
  return fmpi_error(NULL, MPI_ERR_COMM, name)

/* ... for the calls that take an intracommunicator only */
#define GET_INTRA_COMM(h, name)                    \
  GET_COMM(h, name);                               \
  if (c->inter)                                    \
  return fmpi_error(c, MPI_ERR_COMM, name)

int PMPI_Comm_rank(MPI_Comm comm, int *rank)
{
  GET_COMM(comm, "MPI_Comm_rank");
  *rank = c->rank;
  return MPI_SUCCESS;
}

int PMPI_Comm_size(MPI_Comm comm, int *size)
{
  GET_COMM(comm, "MPI_Comm_size");
  *size = c->inter ? c->local_size : c->size;
  return MPI_SUCCESS;
}

int PMPI_Comm_get_attr(MPI_Comm comm, int keyval, void *attribute_val, int *flag)
{
  static int tag_ub = MPI_TAG_UB_VALUE, host = MPI_PROC_NULL, io = MPI_ANY_SOURCE, wtime_global = 0;
  GET_COMM(comm, "MPI_Comm_get_attr");
  /* MPI_UNIVERSE_SIZE and MPI_APPNUM are absent: no spawning (dynamic.c), one program per job */
  int *v = keyval == MPI_TAG_UB ? &tag_ub : keyval == MPI_HOST ? &host : keyval == MPI_IO ? &io
         : keyval == MPI_WTIME_IS_GLOBAL ? &wtime_global : keyval == MPI_LASTUSEDCODE ? &fmpi_last_used_code
         : NULL;
  if (v) {
    *(int **)attribute_val = v;
    *flag = 1;
    return MPI_SUCCESS;
  }
  void *user;
  *flag = fmpi_attr_get(c, keyval, &user);
  if (*flag)
    *(void **)attribute_val = user;
  return MPI_SUCCESS;
}

/* What a duplicate d of c has besides its members: c's topology, and the
 * attributes their copy callbacks keep. On an error d is gone. */
static int dup_extras(fmpi_comm *c, fmpi_comm *d)
{
  if (c->cart)
    d->cart = fmpi_cart_new(c->cart->ndims, c->cart->dims, c->cart->periods);
  if (c->graph)
    d->graph = fmpi_graph_dup(c->graph);
  int rv = fmpi_attrs_copy(c, d);
  if (rv != MPI_SUCCESS) {
    fmpi_attrs_delete_all(d);
    free_comm(d);
  }
  return rv;
}

int PMPI_Comm_dup(MPI_Comm comm, MPI_Comm *newcomm)
{
  GET_COMM(comm, "MPI_Comm_dup");
  fmpi_comm *d;
  if (c->inter)
    fmpi_inter_dup(c, &d);
  else
    d = fmpi_comm_new(fmpi_agree_ctx(c), c->size, c->world, c->errh);
  int rv = dup_extras(c, d);
  *newcomm = rv == MPI_SUCCESS ? d->handle : MPI_COMM_NULL;
  return rv == MPI_SUCCESS ? MPI_SUCCESS : fmpi_error(c, rv, "MPI_Comm_dup");
}

/* The new communicator exists (its handle is in *newcomm) from the call on,
 * with its topology and attributes; its context is agreed without blocking
 * (ctx.c), and it may be used once the request completes. An
 * intercommunicator is duplicated at once, with blocking agreements. */
int PMPI_Comm_idup(MPI_Comm comm, MPI_Comm *newcomm, MPI_Request *request)
{
  GET_COMM(comm, "MPI_Comm_idup");
  if (request == NULL)
    return fmpi_error(c, MPI_ERR_REQUEST, "MPI_Comm_idup");
  fmpi_comm *d = c->inter ? fmpi_inter_dup_pending(c) : fmpi_comm_new(FMPI_CTX_PENDING, c->size, c->world, c->errh);
  int rv = dup_extras(c, d);
  if (rv != MPI_SUCCESS) {
    *newcomm = MPI_COMM_NULL;
    *request = MPI_REQUEST_NULL;
    return fmpi_error(c, rv, "MPI_Comm_idup");
  }
  *newcomm = d->handle;
  fmpi_ctx_agree_start(c, d, request);
  return MPI_SUCCESS;
}

/* A duplicate for the library's own traffic (a file's, a window's): the same
 * ranks in a new context, without the topology and the attributes, so no
 * user copy or delete callback runs for it. */
int fmpi_comm_dup_internal(MPI_Comm comm, MPI_Comm *newcomm)
{
  fmpi_comm *c = fmpi_comm_get(comm);
  uint32_t ctx = fmpi_agree_ctx(c);
  *newcomm = fmpi_comm_new(ctx, c->size, c->world, c->errh)->handle;
  return MPI_SUCCESS;
}

typedef struct split_entry {
  int color, key, rank;
} split_entry;

static int by_key(const void *a, const void *b)
{
  const split_entry *x = a, *y = b;
  return x->key != y->key ? (x->key < y->key ? -1 : 1) : x->rank - y->rank;
}

int PMPI_Comm_split(MPI_Comm comm, int color, int key, MPI_Comm *newcomm)
{
  GET_COMM(comm, "MPI_Comm_split");
  if (color < 0 && color != MPI_UNDEFINED)
    return fmpi_error(c, MPI_ERR_ARG, "MPI_Comm_split");
  if (c->inter)
    return fmpi_inter_split(c, color, key, newcomm);
  int mine[2] = { color, key };
  int *all = malloc(sizeof(int) * 2 * (size_t)c->size);
  split_entry *e = malloc(sizeof *e * (size_t)c->size);
  int *world = malloc(sizeof(int) * (size_t)c->size);
  if (!all || !e || !world)
    fmpi_fatal("out of memory");
  PMPI_Allgather(mine, 2, MPI_INT, all, 2, MPI_INT, comm);
  uint32_t ctx = fmpi_agree_ctx(c);
  int n = 0;
  for (int i = 0; i < c->size; i++)
    if (color != MPI_UNDEFINED && all[2 * i] == color)
      e[n++] = (split_entry){ all[2 * i], all[2 * i + 1], i };
  qsort(e, (size_t)n, sizeof *e, by_key);
  for (int i = 0; i < n; i++)
    world[i] = c->world[e[i].rank];
  *newcomm = color == MPI_UNDEFINED ? MPI_COMM_NULL : fmpi_comm_new(ctx, n, world, c->errh)->handle;
  free(all);
  free(e);
  free(world);
  return MPI_SUCCESS;
}

/* MPI_COMM_TYPE_SHARED: the ranks whose MPI_Get_processor_name is this
 * rank's (one node; a rank migrated later stays in the communicator it got). */
int PMPI_Comm_split_type(MPI_Comm comm, int split_type, int key, MPI_Info info, MPI_Comm *newcomm)
{
  (void)info;
  GET_INTRA_COMM(comm, "MPI_Comm_split_type");
  if (split_type != MPI_COMM_TYPE_SHARED && split_type != MPI_UNDEFINED)
    return fmpi_error(c, MPI_ERR_ARG, "MPI_Comm_split_type");
  char mine[MPI_MAX_PROCESSOR_NAME];
  int len;
  memset(mine, 0, sizeof mine);
  PMPI_Get_processor_name(mine, &len);
  char *all = malloc((size_t)c->size * MPI_MAX_PROCESSOR_NAME);
  if (all == NULL)
    fmpi_fatal("out of memory");
  PMPI_Allgather(mine, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, comm);
  int color = 0; /* the first rank with this name */
  while (strncmp(all + (size_t)color * MPI_MAX_PROCESSOR_NAME, mine, MPI_MAX_PROCESSOR_NAME) != 0)
    color++;
  free(all);
  return PMPI_Comm_split(comm, split_type == MPI_UNDEFINED ? MPI_UNDEFINED : color, key, newcomm);
}

int PMPI_Comm_set_name(MPI_Comm comm, const char *name)
{
  GET_COMM(comm, "MPI_Comm_set_name");
  snprintf(c->name, sizeof c->name, "%s", name);
  return MPI_SUCCESS;
}

int PMPI_Comm_get_name(MPI_Comm comm, char *name, int *resultlen)
{
  GET_COMM(comm, "MPI_Comm_get_name");
  const char *n = c->name[0] ? c->name : comm == MPI_COMM_WORLD ? "MPI_COMM_WORLD" : comm == MPI_COMM_SELF ? "MPI_COMM_SELF" : "";
  snprintf(name, MPI_MAX_OBJECT_NAME, "%s", n);
  *resultlen = (int)strlen(name);
  return MPI_SUCCESS;
}

int PMPI_Comm_create(MPI_Comm comm, MPI_Group group, MPI_Comm *newcomm)
{
  GET_COMM(comm, "MPI_Comm_create");
  if (c->inter) {
    int rv = fmpi_inter_create(c, group, newcomm);
    return rv == MPI_SUCCESS ? rv : fmpi_error(c, rv, "MPI_Comm_create");
  }
  fmpi_group *g = fmpi_group_get(group);
  if (g == NULL)
    return fmpi_error(c, MPI_ERR_GROUP, "MPI_Comm_create");
  uint32_t ctx = fmpi_agree_ctx(c);
  bool member = false;
  for (int i = 0; i < g->size; i++)
    member |= g->world[i] == fmpi_st.rank;
  *newcomm = member ? fmpi_comm_new(ctx, g->size, g->world, c->errh)->handle : MPI_COMM_NULL;
  return MPI_SUCCESS;
}

/* The members of group agree on a context among themselves: each sends its
 * next free context to the group's first member, which answers with the
 * largest. The messages go on comm's collective context with a negative tag
 * made from the caller's (the library's own collective tags are positive), so
 * concurrent creations with other tags, and comm's collectives, do not match
 * them. (Tags that differ only above bit 29 share one.) */
int PMPI_Comm_create_group(MPI_Comm comm, MPI_Group group, int tag, MPI_Comm *newcomm)
{
  GET_INTRA_COMM(comm, "MPI_Comm_create_group");
  fmpi_group *g = fmpi_group_get(group);
  if (g == NULL)
    return fmpi_error(c, MPI_ERR_GROUP, "MPI_Comm_create_group");
  if (tag < 0)
    return fmpi_error(c, MPI_ERR_TAG, "MPI_Comm_create_group");
  int me = -1;
  for (int i = 0; i < g->size; i++) {
    if (g->world[i] < 0 || g->world[i] >= fmpi_st.size || c->local[g->world[i]] < 0)
      return fmpi_error(c, MPI_ERR_GROUP, "MPI_Comm_create_group"); /* not all in comm */
    if (g->world[i] == fmpi_st.rank)
      me = i;
  }
  if (me < 0) {
    *newcomm = MPI_COMM_NULL;
    return MPI_SUCCESS;
  }
  int itag = -16 - (tag & 0x3fffffff), leader = c->local[g->world[0]], n = g->size;
  unsigned mine = fmpi_st.next_ctx, agreed = mine;
  unsigned *theirs = calloc((size_t)n, sizeof *theirs);
  fmpi_request **r = calloc((size_t)n, sizeof *r);
  if (theirs == NULL || r == NULL)
    fmpi_fatal("out of memory");
  fmpi_lock();
  if (me == 0) {
    for (int i = 1; i < n; i++)
      fmpi_irecv(&theirs[i], 1, MPI_UNSIGNED, c->local[g->world[i]], itag, c, c->ctx + 1, &r[i - 1]);
    fmpi_wait_reqs_keep(r, n - 1);
    for (int i = 1; i < n; i++) {
      fmpi_req_release(r[i - 1]);
      if (theirs[i] > agreed)
        agreed = theirs[i];
    }
    for (int i = 1; i < n; i++)
      fmpi_isend(&agreed, 1, MPI_UNSIGNED, c->local[g->world[i]], itag, c, c->ctx + 1, false, &r[i - 1]);
    fmpi_wait_reqs_keep(r, n - 1);
    for (int i = 1; i < n; i++)
      fmpi_req_release(r[i - 1]);
  } else {
    fmpi_isend(&mine, 1, MPI_UNSIGNED, leader, itag, c, c->ctx + 1, false, &r[0]);
    fmpi_irecv(&agreed, 1, MPI_UNSIGNED, leader, itag, c, c->ctx + 1, &r[1]);
    fmpi_wait_reqs_keep(r, 2);
    fmpi_req_release(r[0]);
    fmpi_req_release(r[1]);
  }
  fmpi_unlock();
  free(theirs);
  free(r);
  fmpi_ctx_taken(agreed);
  *newcomm = fmpi_comm_new(agreed, n, g->world, c->errh)->handle;
  return MPI_SUCCESS;
}

/* Hints are accepted and not used (the runtime has none to honour). */
int PMPI_Comm_dup_with_info(MPI_Comm comm, MPI_Info info, MPI_Comm *newcomm)
{
  int nkeys, rv;
  if (info != MPI_INFO_NULL && (rv = PMPI_Info_get_nkeys(info, &nkeys)) != MPI_SUCCESS)
    return rv;
  return PMPI_Comm_dup(comm, newcomm);
}

int PMPI_Comm_set_info(MPI_Comm comm, MPI_Info info)
{
  GET_COMM(comm, "MPI_Comm_set_info");
  int nkeys;
  return info == MPI_INFO_NULL ? MPI_SUCCESS : PMPI_Info_get_nkeys(info, &nkeys);
}

int PMPI_Comm_get_info(MPI_Comm comm, MPI_Info *info_used)
{
  GET_COMM(comm, "MPI_Comm_get_info");
  return PMPI_Info_create(info_used); /* the hints in use: none */
}

int PMPI_Comm_test_inter(MPI_Comm comm, int *flag)
{
  GET_COMM(comm, "MPI_Comm_test_inter");
  *flag = c->inter;
  return MPI_SUCCESS;
}

int PMPI_Comm_remote_size(MPI_Comm comm, int *size)
{
  GET_COMM(comm, "MPI_Comm_remote_size");
  if (!c->inter)
    return fmpi_error(c, MPI_ERR_COMM, "MPI_Comm_remote_size");
  *size = c->size;
  return MPI_SUCCESS;
}

int PMPI_Comm_remote_group(MPI_Comm comm, MPI_Group *group)
{
  GET_COMM(comm, "MPI_Comm_remote_group");
  if (!c->inter)
    return fmpi_error(c, MPI_ERR_COMM, "MPI_Comm_remote_group");
  *group = fmpi_table_add(&fmpi_groups, make_group(c->size, c->world));
  return MPI_SUCCESS;
}

int PMPI_Comm_free(MPI_Comm *comm)
{
  FMPI_CHECK_INIT("MPI_Comm_free");
  fmpi_comm *c = fmpi_comm_get(*comm);
  if (c == NULL || *comm == MPI_COMM_WORLD || *comm == MPI_COMM_SELF)
    return fmpi_error(c, MPI_ERR_COMM, "MPI_Comm_free");
  int rv = fmpi_attrs_delete_all(c); /* delete callbacks first, in the communicator still valid */
  if (rv != MPI_SUCCESS)
    return fmpi_error(c, rv, "MPI_Comm_free");
  free_comm(c);
  *comm = MPI_COMM_NULL;
  fmpi_comm_reap();
  return MPI_SUCCESS;
}

/* MPI_IDENT / CONGRUENT (same order) / SIMILAR (same set) / UNEQUAL over member lists. */
static int compare_members(int n1, const int *w1, int n2, const int *w2)
{
  if (n1 != n2)
    return MPI_UNEQUAL;
  bool same_order = true;
  for (int i = 0; i < n1; i++) {
    same_order &= w1[i] == w2[i];
    bool found = false;
    for (int k = 0; k < n2 && !found; k++)
      found = w1[i] == w2[k];
    if (!found)
      return MPI_UNEQUAL;
  }
  return same_order ? MPI_CONGRUENT : MPI_SIMILAR;
}

int PMPI_Comm_compare(MPI_Comm comm1, MPI_Comm comm2, int *result)
{
  FMPI_CHECK_INIT("MPI_Comm_compare");
  fmpi_comm *a = fmpi_comm_get(comm1), *b = fmpi_comm_get(comm2);
  if (a == NULL || b == NULL)
    return fmpi_error(NULL, MPI_ERR_COMM, "MPI_Comm_compare");
  if (a == b)
    *result = MPI_IDENT;
  else if (a->inter != b->inter)
    *result = MPI_UNEQUAL;
  else if (!a->inter)
    *result = compare_members(a->size, a->world, b->size, b->world);
  else { /* both groups must match; the weaker of the two answers */
    fmpi_comm *la = fmpi_comm_get(a->local_comm), *lb = fmpi_comm_get(b->local_comm);
    int l = compare_members(la->size, la->world, lb->size, lb->world);
    int r = compare_members(a->size, a->world, b->size, b->world);
    *result = l > r ? l : r;
  }
  return MPI_SUCCESS;
}

int PMPI_Comm_group(MPI_Comm comm, MPI_Group *group)
{
  GET_COMM(comm, "MPI_Comm_group");
  if (c->inter) /* the local group */
    c = fmpi_comm_get(c->local_comm);
  *group = fmpi_table_add(&fmpi_groups, make_group(c->size, c->world));
  return MPI_SUCCESS;
}

int PMPI_Group_incl(MPI_Group group, int n, const int ranks[], MPI_Group *newgroup)
{
  fmpi_group *g = fmpi_group_get(group);
  if (g == NULL)
    return fmpi_error(NULL, MPI_ERR_GROUP, "MPI_Group_incl");
  if (n < 0 || n > g->size)
    return fmpi_error(NULL, MPI_ERR_ARG, "MPI_Group_incl");
  int *w = malloc(sizeof(int) * (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++) {
    if (ranks[i] < 0 || ranks[i] >= g->size) {
      free(w);
      return fmpi_error(NULL, MPI_ERR_RANK, "MPI_Group_incl");
    }
    w[i] = g->world[ranks[i]];
  }
  *newgroup = fmpi_table_add(&fmpi_groups, make_group(n, w));
  free(w);
  return MPI_SUCCESS;
}

int PMPI_Group_excl(MPI_Group group, int n, const int ranks[], MPI_Group *newgroup)
{
  fmpi_group *g = fmpi_group_get(group);
  if (g == NULL)
    return fmpi_error(NULL, MPI_ERR_GROUP, "MPI_Group_excl");
  int *w = malloc(sizeof(int) * (size_t)(g->size ? g->size : 1));
  int m = 0;
  for (int i = 0; i < g->size; i++) {
    bool out = false;
    for (int k = 0; k < n; k++)
      out |= ranks[k] == i;
    if (!out)
      w[m++] = g->world[i];
  }
  *newgroup = fmpi_table_add(&fmpi_groups, make_group(m, w));
  free(w);
  return MPI_SUCCESS;
}

int PMPI_Group_size(MPI_Group group, int *size)
{
  fmpi_group *g = fmpi_group_get(group);
  if (g == NULL)
    return fmpi_error(NULL, MPI_ERR_GROUP, "MPI_Group_size");
  *size = g->size;
  return MPI_SUCCESS;
}

int PMPI_Group_rank(MPI_Group group, int *rank)
{
  fmpi_group *g = fmpi_group_get(group);
  if (g == NULL)
    return fmpi_error(NULL, MPI_ERR_GROUP, "MPI_Group_rank");
  *rank = MPI_UNDEFINED;
  for (int i = 0; i < g->size; i++)
    if (g->world[i] == fmpi_st.rank)
      *rank = i;
  return MPI_SUCCESS;
}

int PMPI_Group_translate_ranks(MPI_Group group1, int n, const int ranks1[], MPI_Group group2, int ranks2[])
{
  fmpi_group *a = fmpi_group_get(group1), *b = fmpi_group_get(group2);
  if (a == NULL || b == NULL)
    return fmpi_error(NULL, MPI_ERR_GROUP, "MPI_Group_translate_ranks");
  for (int i = 0; i < n; i++) {
    if (ranks1[i] == MPI_PROC_NULL) {
      ranks2[i] = MPI_PROC_NULL;
      continue;
    }
    if (ranks1[i] < 0 || ranks1[i] >= a->size)
      return fmpi_error(NULL, MPI_ERR_RANK, "MPI_Group_translate_ranks");
    ranks2[i] = MPI_UNDEFINED;
    for (int k = 0; k < b->size; k++)
      if (b->world[k] == a->world[ranks1[i]])
        ranks2[i] = k;
  }
  return MPI_SUCCESS;
}

int PMPI_Group_compare(MPI_Group group1, MPI_Group group2, int *result)
{
  fmpi_group *a = fmpi_group_get(group1), *b = fmpi_group_get(group2);
  if (a == NULL || b == NULL)
    return fmpi_error(NULL, MPI_ERR_GROUP, "MPI_Group_compare");
  int r = compare_members(a->size, a->world, b->size, b->world);
  *result = r == MPI_CONGRUENT ? MPI_IDENT : r;
  return MPI_SUCCESS;
}

static bool has(const fmpi_group *g, int world)
{
  for (int i = 0; i < g->size; i++)
    if (g->world[i] == world)
      return true;
  return false;
}

enum set_op_kind { SET_UNION, SET_INTERSECTION, SET_DIFFERENCE };

/* The members of a (in its order): all of them (union), those in b
 * (intersection) or those not in b (difference); then, for a union, the
 * members of b not in a (in b's order). */
static int set_op(MPI_Group group1, MPI_Group group2, enum set_op_kind kind, MPI_Group *newgroup, const char *name)
{
  fmpi_group *a = fmpi_group_get(group1), *b = fmpi_group_get(group2);
  if (a == NULL || b == NULL)
    return fmpi_error(NULL, MPI_ERR_GROUP, name);
  int *w = malloc(sizeof(int) * (size_t)(a->size + b->size + 1)), n = 0;
  if (w == NULL)
    fmpi_fatal("out of memory");
  for (int i = 0; i < a->size; i++)
    if (kind == SET_UNION || has(b, a->world[i]) == (kind == SET_INTERSECTION))
      w[n++] = a->world[i];
  if (kind == SET_UNION)
    for (int i = 0; i < b->size; i++)
      if (!has(a, b->world[i]))
        w[n++] = b->world[i];
  *newgroup = n == 0 ? MPI_GROUP_EMPTY : fmpi_table_add(&fmpi_groups, make_group(n, w));
  free(w);
  return MPI_SUCCESS;
}

int PMPI_Group_union(MPI_Group group1, MPI_Group group2, MPI_Group *newgroup)
{
  return set_op(group1, group2, SET_UNION, newgroup, "MPI_Group_union");
}

int PMPI_Group_intersection(MPI_Group group1, MPI_Group group2, MPI_Group *newgroup)
{
  return set_op(group1, group2, SET_INTERSECTION, newgroup, "MPI_Group_intersection");
}

int PMPI_Group_difference(MPI_Group group1, MPI_Group group2, MPI_Group *newgroup)
{
  return set_op(group1, group2, SET_DIFFERENCE, newgroup, "MPI_Group_difference");
}

/* The group ranks that n (first, last, stride) triplets name, in order, into
 * out; their number, or -1 on a bad triplet or a rank named twice. */
static int range_ranks(const fmpi_group *g, int n, int ranges[][3], int *out)
{
  int m = 0;
  bool *seen = calloc((size_t)(g->size ? g->size : 1), sizeof *seen);
  if (seen == NULL)
    fmpi_fatal("out of memory");
  for (int i = 0; i < n; i++) {
    int first = ranges[i][0], last = ranges[i][1], stride = ranges[i][2];
    if (stride == 0 || first < 0 || first >= g->size || last < 0 || last >= g->size) {
      free(seen);
      return -1;
    }
    for (int r = first; stride > 0 ? r <= last : r >= last; r += stride) {
      if (seen[r]) {
        free(seen);
        return -1;
      }
      seen[r] = true;
      out[m++] = r;
    }
  }
  free(seen);
  return m;
}

/* Group_range_incl (include) and Group_range_excl: Group_incl / Group_excl of the ranks the triplets name. */
static int range_group(MPI_Group group, int n, int ranges[][3], MPI_Group *newgroup, bool include, const char *name)
{
  fmpi_group *g = fmpi_group_get(group);
  if (g == NULL)
    return fmpi_error(NULL, MPI_ERR_GROUP, name);
  int *picked = malloc(sizeof(int) * (size_t)(g->size + 1));
  if (picked == NULL)
    fmpi_fatal("out of memory");
  int m = n < 0 ? -1 : range_ranks(g, n, ranges, picked);
  int rv = m < 0 ? fmpi_error(NULL, MPI_ERR_RANK, name)
         : include ? PMPI_Group_incl(group, m, picked, newgroup) : PMPI_Group_excl(group, m, picked, newgroup);
  free(picked);
  return rv;
}

int PMPI_Group_range_incl(MPI_Group group, int n, int ranges[][3], MPI_Group *newgroup)
{
  return range_group(group, n, ranges, newgroup, true, "MPI_Group_range_incl");
}

int PMPI_Group_range_excl(MPI_Group group, int n, int ranges[][3], MPI_Group *newgroup)
{
  return range_group(group, n, ranges, newgroup, false, "MPI_Group_range_excl");
}

int PMPI_Group_free(MPI_Group *group)
{
  fmpi_group *g = fmpi_group_get(*group);
  if (g == NULL)
    return fmpi_error(NULL, MPI_ERR_GROUP, "MPI_Group_free");
  if (*group != MPI_GROUP_EMPTY) {
    fmpi_table_del(&fmpi_groups, *group);
    free(g->world);
    free(g);
  }
  *group = MPI_GROUP_NULL;
  return MPI_SUCCESS;
}
