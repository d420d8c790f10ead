/*
 * ferry-init: the PID 1 of each rank's PID namespace.
 *
 * Usage: ferry-init PROGRAM [ARGS...]
 *
 * The kernel treats PID 1 of a namespace specially: signals it has no handler
 * for are dropped, and every orphan in the namespace becomes its child. An MPI
 * program run directly as PID 1 would ignore a plain SIGTERM and leave zombies.
 * This init runs the program as its only direct child, forwards the usual
 * termination and user signals to it, reaps every child (orphans too), and
 * exits with the program's status: its exit code, or 128+N when signal N
 * killed it.
 *
 * A wrapper script may run the MPI program as its child. So, as PID 1, the init
 * sends the termination signals (SIGTERM, SIGINT, SIGHUP, SIGQUIT) to every
 * process of the namespace, as a terminal's Ctrl-C or Slurm's scancel reach the
 * whole job, and then waits for all of them to end, not only for the program:
 * the MPI program's own handler runs (the kernel would SIGKILL what is left once
 * the init exits). The agent SIGKILLs the init after its grace if they do not
 * end. SIGTSTP and SIGCONT stop and continue every process of the namespace.
 * SIGUSR1 and SIGUSR2 go to the program alone.
 *
 * It is dumped and restored by CRIU together with the rank, so it holds no
 * sockets, timers or threads: only a blocked signal set and a sigwaitinfo()
 * loop, which a restore resumes (an interrupted wait returns EINTR and is
 * simply retried).
 *
 * When FERRY_INIT_DIR is set, the init moves into that directory once the
 * program is forked (the program keeps the working directory it was started
 * in, and does not see the variable): CRIU's parasite makes a scratch
 * directory in the dumped root task's working directory, and ranks whose inits
 * share one cannot be dumped at the same moment (src/agent/rank-init-dir.ts).
 *
 * When FERRY_EXIT_STATUS_FILE is set, the status is also written there
 * (atomically: a temporary file renamed over it) just before exiting: an
 * agent restarted after a crash is no longer the parent of the rank's tree,
 * and learns the status from that file instead of from waitpid.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define FI_EXIT_EXEC_FAILED 127
#define FI_EXIT_USAGE 2
#define FI_EXIT_INTERNAL 1
#define FI_SIGNAL_EXIT_BASE 128

/* First line of the status file: a magic and a format version (rank-supervisor.ts reads it). */
#define FI_STATUS_MAGIC "ferry-exit-status 1"
#define FI_STATUS_ENV "FERRY_EXIT_STATUS_FILE"
#define FI_INIT_DIR_ENV "FERRY_INIT_DIR"

/*
 * Signals passed on (to the program, or as PID 1 to the whole namespace: see
 * above); everything else keeps its default. SIGTSTP (its job's launcher is
 * being suspended) goes on as SIGSTOP, which cannot be ignored; SIGCONT resumes.
 */
static const int fi_forwarded_signals[] = {
	SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGTSTP, SIGCONT,
};
#define FI_FORWARDED_COUNT \
	(sizeof(fi_forwarded_signals) / sizeof(fi_forwarded_signals[0]))

/*
 * Build the set the init waits on (forwarded signals plus SIGCHLD) and block
 * it. The kernel drops signals that PID 1 of a namespace has no handler for,
 * but never a blocked one: blocked signals stay pending until sigwaitinfo()
 * takes them, so no handler is needed.
 */
static int fi_setup_signals(sigset_t *waitset, sigset_t *oldmask)
{
	size_t i;

	/* An inherited SIG_IGN for SIGCHLD would make the kernel reap children
	 * itself, and the program's exit status would be lost. */
	if (signal(SIGCHLD, SIG_DFL) == SIG_ERR)
		return -1;
	sigemptyset(waitset);
	sigaddset(waitset, SIGCHLD);
	for (i = 0; i < FI_FORWARDED_COUNT; i++)
		sigaddset(waitset, fi_forwarded_signals[i]);
	return sigprocmask(SIG_BLOCK, waitset, oldmask);
}

/*
 * In the forked child: default dispositions for the forwarded signals (in case
 * ferry-init was started with some of them ignored), the old mask, exec.
 */
static void fi_exec_program(char **argv, const sigset_t *oldmask)
{
	struct sigaction sa;
	size_t i;
	int err;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < FI_FORWARDED_COUNT; i++)
		(void)sigaction(fi_forwarded_signals[i], &sa, NULL);
	(void)sigprocmask(SIG_SETMASK, oldmask, NULL);
	(void)unsetenv(FI_INIT_DIR_ENV);

	execvp(argv[0], argv);
	err = errno;
	fprintf(stderr, "ferry-init: cannot execute %s: %s (errno %d)\n",
		argv[0], strerror(err), err);
	_exit(FI_EXIT_EXEC_FAILED);
}

/* Best effort: in the job's directory the rank still runs, only its dumps take turns. */
static void fi_enter_init_dir(void)
{
	const char *dir = getenv(FI_INIT_DIR_ENV);

	if (dir == NULL || *dir == 0)
		return;
	if (chdir(dir) != 0)
		fprintf(stderr, "ferry-init: cannot enter %s: %s\n", dir,
			strerror(errno));
}

static int fi_status_to_exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return FI_SIGNAL_EXIT_BASE + WTERMSIG(status);
	return FI_EXIT_INTERNAL;
}

/*
 * Writes "ferry-exit-status 1\ncode=N signal=S\n" to the status file named
 * by FERRY_EXIT_STATUS_FILE (S is the signal that killed the program, or 0).
 * Best effort: a missing directory (a rank restored on a host where it does
 * not exist) only means the agent learns the status another way or not at all.
 */
static void fi_write_status(int status, int code)
{
	const char *path = getenv(FI_STATUS_ENV);
	char tmp[4096], line[128];
	int fd, n;

	if (path == NULL || *path == 0)
		return;
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		return;
	n = snprintf(line, sizeof line, "%s\ncode=%d signal=%d\n", FI_STATUS_MAGIC,
		     code, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, line, (size_t)n) != n || fsync(fd) != 0) {
		close(fd);
		unlink(tmp);
		return;
	}
	close(fd);
	if (rename(tmp, path) != 0)
		unlink(tmp);
}

/*
 * Reap every child that has exited. Returns 1 and fills *status once the
 * program itself has been reaped, 0 otherwise; *none_left says whether no
 * child is left at all.
 */
static int fi_reap_children(pid_t program, int *status, int *none_left)
{
	int found = 0;
	int st;
	pid_t pid;

	for (;;) {
		pid = waitpid(-1, &st, WNOHANG);
		if (pid > 0) {
			if (pid == program) {
				*status = st;
				found = 1;
			}
			continue;
		}
		if (pid < 0 && errno == EINTR)
			continue;
		/* 0: children left but none exited; -1 ECHILD: none left */
		*none_left = pid < 0 && errno == ECHILD;
		break;
	}
	return found;
}

static int fi_ends_the_tree(int sig)
{
	return sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT;
}

int main(int argc, char **argv)
{
	sigset_t waitset, oldmask;
	siginfo_t info;
	pid_t program;
	int status = 0;
	int sig;
	int program_done = 0, none_left = 0, ending = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: ferry-init PROGRAM [ARGS...]\n");
		return FI_EXIT_USAGE;
	}
	if (fi_setup_signals(&waitset, &oldmask) != 0) {
		fprintf(stderr, "ferry-init: cannot set up signals: %s\n",
			strerror(errno));
		return FI_EXIT_INTERNAL;
	}
	/* When not PID 1 (tests, debugging), still become the reaper of orphans. */
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

	program = fork();
	if (program < 0) {
		fprintf(stderr, "ferry-init: cannot fork: %s\n", strerror(errno));
		return FI_EXIT_INTERNAL;
	}
	if (program == 0)
		fi_exec_program(&argv[1], &oldmask);
	fi_enter_init_dir();

	for (;;) {
		sig = sigwaitinfo(&waitset, &info);
		if (sig < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "ferry-init: sigwaitinfo: %s\n",
				strerror(errno));
			return FI_EXIT_INTERNAL;
		}
		if (sig == SIGCHLD) {
			if (fi_reap_children(program, &status, &none_left))
				program_done = 1;
			/* After a termination signal to all: until the last one ended. */
			if (program_done && (!ending || none_left))
				break;
			continue;
		}
		/* The program may already be a zombie: ESRCH is harmless then.
		 * -1 from PID 1: every process of the namespace but this one. */
		if (fi_ends_the_tree(sig) && getpid() == 1) {
			ending = 1;
			(void)kill(-1, sig);
		} else if ((sig == SIGTSTP || sig == SIGCONT) && getpid() == 1)
			(void)kill(-1, sig == SIGTSTP ? SIGSTOP : SIGCONT);
		else if (!program_done)
			(void)kill(program, sig == SIGTSTP ? SIGSTOP : sig);
	}
	/* Reap what else has already exited; the kernel kills the rest of the
	 * namespace when PID 1 exits. */
	(void)fi_reap_children(program, &status, &none_left);
	fi_write_status(status, fi_status_to_exit_code(status));
	return fi_status_to_exit_code(status);
}
