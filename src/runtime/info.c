/* MPI_Info objects (ordered key/value lists, MPI 3.1 chapter 9), for the calls
 * that take hints: Ferry takes none, but programs create, fill and pass them. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fmpi.h"

#pragma weak MPI_Info_create = PMPI_Info_create
#pragma weak MPI_Info_set = PMPI_Info_set
#pragma weak MPI_Info_get = PMPI_Info_get
#pragma weak MPI_Info_get_valuelen = PMPI_Info_get_valuelen
#pragma weak MPI_Info_get_nkeys = PMPI_Info_get_nkeys
#pragma weak MPI_Info_get_nthkey = PMPI_Info_get_nthkey
#pragma weak MPI_Info_delete = PMPI_Info_delete
#pragma weak MPI_Info_dup = PMPI_Info_dup
#pragma weak MPI_Info_free = PMPI_Info_free

typedef struct info_entry {
  struct info_entry *next;
  char *key, *value;
} info_entry;

typedef struct fmpi_info {
  info_entry *head; /* in the order the keys were first set */
} fmpi_info;

static fmpi_table infos;

/* MPI_INFO_ENV: filled at MPI_Init, never freed. Programs may add to it, as
 * under MPICH. */
static fmpi_info env_info;

/* MPI_Info handles 1.. are table slots; MPI_INFO_NULL (0) is none. */
static fmpi_info *get_info(MPI_Info h) { return h == MPI_INFO_ENV ? &env_info : fmpi_table_get(&infos, h); }

static char *copy(const char *s)
{
  char *c = strdup(s);
  if (c == NULL)
    fmpi_fatal("out of memory");
  return c;
}

static info_entry *find(fmpi_info *in, const char *key)
{
  for (info_entry *e = in->head; e; e = e->next)
    if (strcmp(e->key, key) == 0)
      return e;
  return NULL;
}

/* sets key (valid) to value (valid): replaced in place, or added at the end */
static void put(fmpi_info *in, const char *key, const char *value)
{
  info_entry *e = find(in, key);
  if (e) {
    free(e->value);
    e->value = copy(value);
    return;
  }
  e = calloc(1, sizeof *e);
  if (e == NULL)
    fmpi_fatal("out of memory");
  e->key = copy(key);
  e->value = copy(value);
  info_entry **end = &in->head;
  while (*end)
    end = &(*end)->next;
  *end = e;
}

static bool value_ok(const char *value) { return value != NULL && value[0] != 0 && strlen(value) <= MPI_MAX_INFO_VAL; }

static bool key_ok(const char *key)
{
  size_t n = key ? strlen(key) : 0;
  return n > 0 && n <= MPI_MAX_INFO_KEY;
}

/* The keys MPI 3.1 section 8.7 names that stay true wherever the rank runs
 * (no host or arch: a restart may move it): command and argv as the program
 * was started (from /proc/self/cmdline, which getopt's reordering of argv does
 * not touch), maxprocs (the world's size), wdir, thread_level (requested). */
static void env_put(const char *key, const char *value)
{
  if (value_ok(value))
    put(&env_info, key, value);
}

void fmpi_info_env_init(int argc, char **argv, int thread_level)
{
  static const char *const levels[] = {"MPI_THREAD_SINGLE", "MPI_THREAD_FUNNELED", "MPI_THREAD_SERIALIZED",
                                       "MPI_THREAD_MULTIPLE"};
  char cmdline[8192], *args[256];
  int n = 0;
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  ssize_t len = fd >= 0 ? read(fd, cmdline, sizeof cmdline - 1) : -1;
  if (fd >= 0)
    close(fd);
  if (len > 0) {
    cmdline[len] = 0;
    for (char *p = cmdline; p < cmdline + len && n < 256; p += strlen(p) + 1)
      args[n++] = p;
  } else {
    for (; argv != NULL && n < argc && n < 256 && argv[n] != NULL; n++)
      args[n] = argv[n];
  }
  char value[MPI_MAX_INFO_VAL + 1];
  if (n > 0)
    env_put("command", args[0]);
  if (n > 1) {
    /* the arguments after the command, separated by spaces; left out when they do not fit */
    size_t used = 0;
    bool fits = true;
    for (int i = 1; i < n && fits; i++) {
      int w = snprintf(value + used, sizeof value - used, "%s%s", i > 1 ? " " : "", args[i]);
      fits = w >= 0 && (size_t)w < sizeof value - used;
      used += fits ? (size_t)w : 0;
    }
    if (fits && used > 0)
      env_put("argv", value);
  }
  snprintf(value, sizeof value, "%d", fmpi_st.size);
  env_put("maxprocs", value);
  if (getcwd(value, sizeof value) != NULL)
    env_put("wdir", value);
  if (thread_level >= MPI_THREAD_SINGLE && thread_level <= MPI_THREAD_MULTIPLE)
    env_put("thread_level", levels[thread_level - MPI_THREAD_SINGLE]);
}

int PMPI_Info_create(MPI_Info *info)
{
  fmpi_info *in = calloc(1, sizeof *in);
  if (in == NULL)
    fmpi_fatal("out of memory");
  *info = fmpi_table_add(&infos, in);
  return MPI_SUCCESS;
}

int PMPI_Info_set(MPI_Info info, const char *key, const char *value)
{
  fmpi_info *in = get_info(info);
  if (in == NULL)
    return fmpi_error(NULL, MPI_ERR_INFO, "MPI_Info_set");
  if (!key_ok(key))
    return fmpi_error(NULL, MPI_ERR_INFO_KEY, "MPI_Info_set");
  if (!value_ok(value))
    return fmpi_error(NULL, MPI_ERR_INFO_VALUE, "MPI_Info_set");
  put(in, key, value);
  return MPI_SUCCESS;
}

int PMPI_Info_get(MPI_Info info, const char *key, int valuelen, char *value, int *flag)
{
  fmpi_info *in = get_info(info);
  if (in == NULL)
    return fmpi_error(NULL, MPI_ERR_INFO, "MPI_Info_get");
  if (!key_ok(key))
    return fmpi_error(NULL, MPI_ERR_INFO_KEY, "MPI_Info_get");
  if (valuelen < 0)
    return fmpi_error(NULL, MPI_ERR_ARG, "MPI_Info_get");
  info_entry *e = find(in, key);
  *flag = e != NULL;
  if (e) {
    /* at most valuelen characters, then the terminating NUL */
    size_t n = strlen(e->value) < (size_t)valuelen ? strlen(e->value) : (size_t)valuelen;
    memcpy(value, e->value, n);
    value[n] = 0;
  }
  return MPI_SUCCESS;
}

int PMPI_Info_get_valuelen(MPI_Info info, const char *key, int *valuelen, int *flag)
{
  fmpi_info *in = get_info(info);
  if (in == NULL)
    return fmpi_error(NULL, MPI_ERR_INFO, "MPI_Info_get_valuelen");
  if (!key_ok(key))
    return fmpi_error(NULL, MPI_ERR_INFO_KEY, "MPI_Info_get_valuelen");
  info_entry *e = find(in, key);
  *flag = e != NULL;
  if (e)
    *valuelen = (int)strlen(e->value);
  return MPI_SUCCESS;
}

int PMPI_Info_get_nkeys(MPI_Info info, int *nkeys)
{
  fmpi_info *in = get_info(info);
  if (in == NULL)
    return fmpi_error(NULL, MPI_ERR_INFO, "MPI_Info_get_nkeys");
  int n = 0;
  for (info_entry *e = in->head; e; e = e->next)
    n++;
  *nkeys = n;
  return MPI_SUCCESS;
}

int PMPI_Info_get_nthkey(MPI_Info info, int n, char *key)
{
  fmpi_info *in = get_info(info);
  if (in == NULL)
    return fmpi_error(NULL, MPI_ERR_INFO, "MPI_Info_get_nthkey");
  info_entry *e = in->head;
  for (int i = 0; e && i < n; i++)
    e = e->next;
  if (n < 0 || e == NULL)
    return fmpi_error(NULL, MPI_ERR_ARG, "MPI_Info_get_nthkey");
  strcpy(key, e->key);
  return MPI_SUCCESS;
}

int PMPI_Info_delete(MPI_Info info, const char *key)
{
  fmpi_info *in = get_info(info);
  if (in == NULL)
    return fmpi_error(NULL, MPI_ERR_INFO, "MPI_Info_delete");
  if (!key_ok(key))
    return fmpi_error(NULL, MPI_ERR_INFO_KEY, "MPI_Info_delete");
  for (info_entry **at = &in->head; *at; at = &(*at)->next) {
    if (strcmp((*at)->key, key) == 0) {
      info_entry *e = *at;
      *at = e->next;
      free(e->key);
      free(e->value);
      free(e);
      return MPI_SUCCESS;
    }
  }
  return fmpi_error(NULL, MPI_ERR_INFO_NOKEY, "MPI_Info_delete");
}

int PMPI_Info_dup(MPI_Info info, MPI_Info *newinfo)
{
  fmpi_info *in = get_info(info);
  if (in == NULL)
    return fmpi_error(NULL, MPI_ERR_INFO, "MPI_Info_dup");
  PMPI_Info_create(newinfo);
  for (info_entry *e = in->head; e; e = e->next)
    PMPI_Info_set(*newinfo, e->key, e->value);
  return MPI_SUCCESS;
}

int PMPI_Info_free(MPI_Info *info)
{
  fmpi_info *in = get_info(*info);
  if (in == NULL)
    return fmpi_error(NULL, MPI_ERR_INFO, "MPI_Info_free");
  if (*info == MPI_INFO_ENV) {
    /* predefined: the handle is let go of, the object stays (as MPICH does) */
    *info = MPI_INFO_NULL;
    return MPI_SUCCESS;
  }
  while (in->head) {
    info_entry *e = in->head;
    in->head = e->next;
    free(e->key);
    free(e->value);
    free(e);
  }
  fmpi_table_del(&infos, *info);
  free(in);
  *info = MPI_INFO_NULL;
  return MPI_SUCCESS;
}
