/*
 * ferry-restore: the parent of a rank restored by CRIU.
 *
 * Usage: ferry-restore PIDFILE CRIU [CRIU-ARGS...]
 *
 * Runs `CRIU CRIU-ARGS... --restore-detached --restore-sibling --pidfile
 * PIDFILE` and becomes the parent of the restored tree's root (the rank's
 * ferry-init, PID 1 of a fresh PID namespace):
 *
 *  - --restore-sibling makes CRIU create the root as a sibling of itself,
 *    i.e. as our child. The root was started under `unshare --kill-child`
 *    and CRIU restores its parent-death signal; were CRIU its parent, the
 *    root would get SIGKILL the moment CRIU exits. As our child it dies
 *    with us instead, as it died with unshare before the dump.
 *  - We are also a child subreaper, so the root is handed to us even if a
 *    CRIU version creates it under itself.
 *
 * Protocol with the agent: one line "restored PID\n" on stdout once the
 * tree runs (PID as this namespace sees it), then stdout is closed. The exit
 * status is the rank's: ferry-init's exit code, or 128+N when signal N
 * killed it. When CRIU fails, nothing is printed and the exit code is
 * FR_EXIT_RESTORE_FAILED (CRIU's log says why).
 *
 * The usual termination and user signals sent to ferry-restore are passed
 * on to the restored root (ferry-init forwards them to the program).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define FR_EXIT_USAGE 2
#define FR_EXIT_INTERNAL 1
#define FR_EXIT_RESTORE_FAILED 125
#define FR_SIGNAL_EXIT_BASE 128
#define FR_EXTRA_ARGS 5 /* --restore-detached --restore-sibling --pidfile F NULL */
#define FR_FIRST_EXTRA_FD 3

static const int fr_forwarded_signals[] = {
	SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
};
#define FR_FORWARDED_COUNT \
	(sizeof(fr_forwarded_signals) / sizeof(fr_forwarded_signals[0]))

static int fri_setup_signals(sigset_t *waitset, sigset_t *oldmask)
{
	size_t i;

	if (signal(SIGCHLD, SIG_DFL) == SIG_ERR)
		return -1;
	sigemptyset(waitset);
	sigaddset(waitset, SIGCHLD);
	for (i = 0; i < FR_FORWARDED_COUNT; i++)
		sigaddset(waitset, fr_forwarded_signals[i]);
	return sigprocmask(SIG_BLOCK, waitset, oldmask);
}

static int fri_status_to_exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return FR_SIGNAL_EXIT_BASE + WTERMSIG(status);
	return FR_EXIT_INTERNAL;
}

/* Runs CRIU with our extra options and returns its wait status (-1 on error). */
static int fri_run_criu(int argc, char **argv, const char *pidfile,
			const sigset_t *oldmask)
{
	char **args;
	pid_t criu;
	int status;
	int i, n = 0;

	args = calloc((size_t)argc + FR_EXTRA_ARGS, sizeof(*args));
	if (args == NULL)
		return -1;
	for (i = 2; i < argc; i++)
		args[n++] = argv[i];
	args[n++] = "--restore-detached";
	args[n++] = "--restore-sibling";
	args[n++] = "--pidfile";
	args[n++] = (char *)pidfile;
	args[n] = NULL;

	criu = fork();
	if (criu < 0) {
		free(args);
		return -1;
	}
	if (criu == 0) {
		/* CRIU's own output goes to our stderr: stdout carries the protocol. */
		(void)dup2(STDERR_FILENO, STDOUT_FILENO);
		(void)sigprocmask(SIG_SETMASK, oldmask, NULL);
		execvp(args[0], args);
		fprintf(stderr, "ferry-restore: cannot execute %s: %s\n",
			args[0], strerror(errno));
		_exit(FR_EXIT_RESTORE_FAILED);
	}
	free(args);
	/* Signals are blocked, so this wait is not interrupted; they stay
	 * pending and are forwarded once the root runs. */
	while (waitpid(criu, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return status;
}

static pid_t fri_read_pidfile(const char *path)
{
	FILE *f;
	long pid = 0;

	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = -1;
	fclose(f);
	return pid > 0 ? (pid_t)pid : -1;
}

/* The log files handed to CRIU as inherited fds are not ours to keep open. */
static void fri_close_extra_fds(void)
{
	long max = sysconf(_SC_OPEN_MAX);
	int fd;

	if (max < 0 || max > 65536)
		max = 65536;
	for (fd = FR_FIRST_EXTRA_FD; fd < max; fd++)
		(void)close(fd);
}

/* Waits for the root, forwarding signals; returns its wait status. */
static int fri_wait_root(pid_t root, const sigset_t *waitset)
{
	siginfo_t info;
	pid_t pid;
	int status, sig;

	for (;;) {
		/* Reap first: the root may have ended before we got here. */
		for (;;) {
			pid = waitpid(-1, &status, WNOHANG);
			if (pid == root)
				return status;
			if (pid > 0 || (pid < 0 && errno == EINTR))
				continue;
			if (pid < 0 && errno == ECHILD)
				return -1; /* the root is not our child */
			break;
		}
		sig = sigwaitinfo(waitset, &info);
		if (sig < 0 || sig == SIGCHLD)
			continue;
		(void)kill(root, sig);
	}
}

int main(int argc, char **argv)
{
	sigset_t waitset, oldmask;
	const char *pidfile;
	pid_t root;
	int status;

	if (argc < 3) {
		fprintf(stderr, "usage: ferry-restore PIDFILE CRIU [CRIU-ARGS...]\n");
		return FR_EXIT_USAGE;
	}
	pidfile = argv[1];
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
		fprintf(stderr, "ferry-restore: cannot become a subreaper: %s\n",
			strerror(errno));
		return FR_EXIT_INTERNAL;
	}
	if (fri_setup_signals(&waitset, &oldmask) != 0) {
		fprintf(stderr, "ferry-restore: cannot set up signals: %s\n",
			strerror(errno));
		return FR_EXIT_INTERNAL;
	}
	(void)unlink(pidfile); /* a stale one must not be taken for this restore */

	status = fri_run_criu(argc, argv, pidfile, &oldmask);
	fri_close_extra_fds();
	if (status == -1) {
		fprintf(stderr, "ferry-restore: cannot run %s: %s\n", argv[2],
			strerror(errno));
		return FR_EXIT_RESTORE_FAILED;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "ferry-restore: criu restore failed (%s %d)\n",
			WIFEXITED(status) ? "exit code" : "signal",
			WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		return FR_EXIT_RESTORE_FAILED;
	}
	root = fri_read_pidfile(pidfile);
	if (root < 0) {
		fprintf(stderr, "ferry-restore: criu wrote no pid to %s\n", pidfile);
		return FR_EXIT_RESTORE_FAILED;
	}
	printf("restored %d\n", (int)root);
	fflush(stdout);
	(void)close(STDOUT_FILENO);

	status = fri_wait_root(root, &waitset);
	if (status == -1) {
		fprintf(stderr, "ferry-restore: restored pid %d is not our child\n",
			(int)root);
		return FR_EXIT_INTERNAL;
	}
	return fri_status_to_exit_code(status);
}
