/* MPI setup and teardown: bootstrap through the agent, the progress thread,
 * MPI_Abort and the exit report. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "fmpi.h"
#include "gen/rank-proto.h"

#pragma weak MPI_Init = PMPI_Init
#pragma weak MPI_Init_thread = PMPI_Init_thread
#pragma weak MPI_Query_thread = PMPI_Query_thread
#pragma weak MPI_Is_thread_main = PMPI_Is_thread_main
#pragma weak MPI_Finalize = PMPI_Finalize
#pragma weak MPI_Initialized = PMPI_Initialized
#pragma weak MPI_Finalized = PMPI_Finalized
#pragma weak MPI_Abort = PMPI_Abort
#pragma weak MPI_Get_processor_name = PMPI_Get_processor_name
#pragma weak MPI_Wtime = PMPI_Wtime
#pragma weak MPI_Wtick = PMPI_Wtick
#pragma weak MPI_Get_version = PMPI_Get_version
#pragma weak MPI_Get_library_version = PMPI_Get_library_version

fmpi_state fmpi_st = {
  .lock = PTHREAD_MUTEX_INITIALIZER,
  .done_cond = PTHREAD_COND_INITIALIZER,
  .listen_fd = -1,
  .agent_fd = -1,
  .wake_fd = -1,
};

void fmpi_lock(void) { pthread_mutex_lock(&fmpi_st.lock); }
void fmpi_unlock(void) { pthread_mutex_unlock(&fmpi_st.lock); }

double fmpi_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Tells the agent (so it ends the job) and exits with code. */
static void __attribute__((noreturn)) abort_job(int code, const char *msg)
{
  if (fmpi_st.agent_fd >= 0) {
    fmpi_RankAbort ab = { .error_code = code, .message = (char *)msg };
    fmpi_agent_send_notice(FMPI_RANKMESSAGE_ABORT, &ab, 0, 0, NULL);
  }
  fflush(stdout);
  fflush(stderr);
  _exit(code & 0xff ? code & 0xff : 1);
}

void fmpi_fatal(const char *fmt, ...)
{
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "ferrympi: rank %d: fatal: %s\n", fmpi_st.rank, msg);
  abort_job(1, msg);
}

/* Reports the process's exit status to the agent (registered with on_exit). */
static void report_exit(int status, void *arg)
{
  (void)arg;
  if (fmpi_st.agent_fd < 0)
    return;
  fmpi_RankExit ex = { .exit_code = status };
  fmpi_agent_send_notice(FMPI_RANKMESSAGE_EXIT, &ex, 0, 0, NULL);
  fmpi_agent_close();
}

static void ignore_signal(int sig) { (void)sig; }

static int env_int(const char *name, int *out)
{
  const char *s = getenv(name);
  char *end;
  if (s == NULL || *s == 0)
    return -1;
  long v = strtol(s, &end, 10);
  if (*end != 0 || v < 0 || v > 1 << 24)
    fmpi_fatal("%s=%s is not a valid number", name, s);
  *out = (int)v;
  return 0;
}

int PMPI_Init_thread(int *argc, char ***argv, int required, int *provided)
{
  const char *job = getenv("FERRY_JOB_ID");
  const char *sock = getenv("FERRY_AGENT_SOCKET");
  const char *token = getenv("FERRY_RANK_TOKEN");
  int rv;

  if (fmpi_st.initialized)
    fmpi_fatal("MPI_Init called twice");
  fmpi_st.thread_level = required > MPI_THREAD_SERIALIZED ? MPI_THREAD_SERIALIZED : required;
  fmpi_st.main_thread = pthread_self();
  if (provided)
    *provided = fmpi_st.thread_level;
  fmpi_types_init();
  fmpi_st.next_ctx = FMPI_FIRST_USER_CTX;

  if (env_int("FERRY_RANK", &fmpi_st.rank) != 0) {
    /* singleton: started without Ferry, one rank, no agent */
    fmpi_st.rank = 0;
    fmpi_st.size = 1;
  } else {
    if (env_int("FERRY_SIZE", &fmpi_st.size) != 0 || fmpi_st.size < 1 || fmpi_st.rank >= fmpi_st.size)
      fmpi_fatal("FERRY_SIZE missing or not above FERRY_RANK");
    if (job == NULL || sock == NULL || strlen(sock) >= sizeof fmpi_st.agent_name - 1 ||
        strlen(job) >= sizeof fmpi_st.job)
      fmpi_fatal("FERRY_JOB_ID and FERRY_AGENT_SOCKET must be set (ranks are started by a Ferry agent)");
    snprintf(fmpi_st.job, sizeof fmpi_st.job, "%s", job);
    snprintf(fmpi_st.agent_name, sizeof fmpi_st.agent_name, "%s", sock);
    const char *agent_file = getenv("FERRY_AGENT_SOCKET_FILE");
    if (agent_file != NULL && strlen(agent_file) >= sizeof fmpi_st.agent_file)
      fmpi_fatal("FERRY_AGENT_SOCKET_FILE is longer than %zu characters", sizeof fmpi_st.agent_file - 1);
    snprintf(fmpi_st.agent_file, sizeof fmpi_st.agent_file, "%s", agent_file ? agent_file : "");
    if (token != NULL && strlen(token) >= sizeof fmpi_st.token)
      fmpi_fatal("FERRY_RANK_TOKEN is longer than %zu characters", sizeof fmpi_st.token - 1);
    snprintf(fmpi_st.token, sizeof fmpi_st.token, "%s", token ? token : "");
  }
  /* FNV-1a of the job id and its rank token: a peer's HELLO must carry the
   * same, so a rank's listener (open to the network) lets in only ranks of
   * this job: another job's rank, or a process that knows the job id but not
   * the token the agent handed the job's ranks, is refused. The token is the
   * secret; the hash only has to differ without it. */
  fmpi_st.job_hash = 1469598103934665603ull;
  for (const char *p = fmpi_st.job; *p; p++)
    fmpi_st.job_hash = (fmpi_st.job_hash ^ (uint8_t)*p) * 1099511628211ull;
  if (fmpi_st.token[0]) {
    fmpi_st.job_hash = (fmpi_st.job_hash ^ 0u) * 1099511628211ull; /* the separator */
    for (const char *p = fmpi_st.token; *p; p++)
      fmpi_st.job_hash = (fmpi_st.job_hash ^ (uint8_t)*p) * 1099511628211ull;
  }

  fmpi_st.peers = calloc((size_t)fmpi_st.size, sizeof(fmpi_peer));
  if (fmpi_st.peers == NULL)
    fmpi_fatal("out of memory");
  for (int r = 0; r < fmpi_st.size; r++) {
    fmpi_peer *p = &fmpi_st.peers[r];
    p->rank = r;
    p->out_fd = -1;
    p->out_seq = p->in_seq = 0;
    p->retry_msec = FMPI_RETRY_MIN_MSEC;
  }
  if ((rv = fmpi_comm_init_predefined()) != 0)
    fmpi_fatal("cannot create the predefined communicators");
  fmpi_info_env_init(argc ? *argc : 0, argv ? *argv : NULL, required);

  /* SIGUSR2 (resume after a flush) is taken by sigwait in the progress thread:
   * blocked here, so every thread created from now on has it blocked too. The
   * no-op handler keeps a stray SIGUSR2 from killing the rank (and makes it
   * deliverable to a PID-namespace init). */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = ignore_signal;
  sigaction(SIGUSR2, &sa, NULL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &set, NULL);

  if ((fmpi_st.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
    fmpi_fatal("eventfd: %s", strerror(errno));
  if (fmpi_st.size > 1 || sock != NULL) {
    if (sock == NULL)
      fmpi_fatal("FERRY_AGENT_SOCKET is not set");
    if ((rv = fmpi_listen()) != 0)
      fmpi_fatal("cannot open the data listener: %s", strerror(-rv));
    if ((rv = fmpi_agent_connect()) != 0)
      fmpi_fatal("cannot connect to the Ferry agent at @%s: %s", fmpi_st.agent_name, strerror(-rv));
    if ((rv = fmpi_agent_hello(0)) != 0)
      fmpi_fatal("bootstrap through the agent failed");
  }
  fmpi_st.state = ST_RUNNING;
  fmpi_st.initialized = true;
  on_exit(report_exit, NULL);
  if (fmpi_st.agent_fd >= 0) {
    if ((rv = pthread_create(&fmpi_st.thread, NULL, fmpi_progress_main, NULL)) != 0)
      fmpi_fatal("cannot start the progress thread: %s", strerror(rv));
    fmpi_st.thread_started = true;
  }
  return MPI_SUCCESS;
}

int PMPI_Init(int *argc, char ***argv)
{
  return PMPI_Init_thread(argc, argv, MPI_THREAD_SINGLE, NULL);
}

int PMPI_Query_thread(int *provided)
{
  *provided = fmpi_st.thread_level;
  return MPI_SUCCESS;
}

int PMPI_Is_thread_main(int *flag)
{
  *flag = pthread_equal(pthread_self(), fmpi_st.main_thread) != 0;
  return MPI_SUCCESS;
}

int PMPI_Finalize(void)
{
  FMPI_CHECK_INIT("MPI_Finalize");
  PMPI_Barrier(MPI_COMM_WORLD);
  fmpi_lock();
  fmpi_channels_shutdown();
  fmpi_st.stop = true;
  fmpi_st.state = ST_FINALIZED;
  fmpi_unpark();
  fmpi_wake();
  fmpi_unlock();
  if (fmpi_st.thread_started)
    pthread_join(fmpi_st.thread, NULL);
  fmpi_st.thread_started = false;
  fmpi_scratch_release();
  /* A flush taken inside MPI_Finalize closed the agent connection (or the agent
   * crashed): connect again, or the finalized and exit notices are lost. */
  fmpi_agent_rejoin_finalized();
  if (fmpi_st.agent_fd >= 0) {
    fmpi_RankFinalized fin = { .sent_messages = fmpi_st.sent_messages,
                               .received_messages = fmpi_st.received_messages };
    fmpi_agent_send_notice(FMPI_RANKMESSAGE_FINALIZED, &fin, 0, 0, NULL);
  }
  fmpi_st.finalized = true;
  return MPI_SUCCESS;
}

int PMPI_Initialized(int *flag)
{
  *flag = fmpi_st.initialized;
  return MPI_SUCCESS;
}

int PMPI_Finalized(int *flag)
{
  *flag = fmpi_st.finalized;
  return MPI_SUCCESS;
}

int PMPI_Abort(MPI_Comm comm, int errorcode)
{
  char msg[128];
  snprintf(msg, sizeof msg, "MPI_Abort(comm %d, %d) called by rank %d", comm, errorcode, fmpi_st.rank);
  fprintf(stderr, "ferrympi: %s\n", msg);
  abort_job(errorcode, msg);
}

int PMPI_Get_processor_name(char *name, int *resultlen)
{
  if (gethostname(name, MPI_MAX_PROCESSOR_NAME) != 0)
    snprintf(name, MPI_MAX_PROCESSOR_NAME, "unknown");
  name[MPI_MAX_PROCESSOR_NAME - 1] = 0;
  *resultlen = (int)strlen(name);
  return MPI_SUCCESS;
}

/* Wall-clock time: ranks may move between hosts, whose monotonic clocks differ. */
double PMPI_Wtime(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double PMPI_Wtick(void) { return 1e-9; }

int PMPI_Get_version(int *version, int *subversion)
{
  *version = MPI_VERSION;
  *subversion = MPI_SUBVERSION;
  return MPI_SUCCESS;
}

int PMPI_Get_library_version(char *version, int *resultlen)
{
  snprintf(version, MPI_MAX_LIBRARY_VERSION_STRING, "%s", FMPI_RUNTIME_VERSION);
  *resultlen = (int)strlen(version);
  return MPI_SUCCESS;
}
