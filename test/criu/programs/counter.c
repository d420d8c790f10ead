/*
 * counter: the rank stand-in for the CRIU dump/restore tests.
 *
 * Usage: counter DATA_FILE [FINISH_LINES] [HEAP_MIB]
 *
 * Writes "N\n" to stdout every COUNTER_PERIOD_US (N = 1, 2, 3...) and
 * "err N\n" to stderr every tenth line, with write(2) so that nothing waits
 * in a stdio buffer. It keeps DATA_FILE open read-only (a regular file the
 * image needs) and holds HEAP_MIB of touched heap (memory the image
 * carries). After SIGUSR1 it writes FINISH_LINES more lines and exits with
 * COUNTER_EXIT_CODE; SIGTERM keeps its default action (death by signal).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COUNTER_PERIOD_US 3000
#define COUNTER_EXIT_CODE 7
#define COUNTER_DEFAULT_FINISH_LINES 5
#define COUNTER_DEFAULT_HEAP_MIB 8

static volatile sig_atomic_t counter_finishing;

static void counter_on_usr1(int sig)
{
	(void)sig;
	counter_finishing = 1;
}

static int counter_write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	struct timespec period = { 0, COUNTER_PERIOD_US * 1000L };
	long finish_lines = COUNTER_DEFAULT_FINISH_LINES;
	long heap_mib = COUNTER_DEFAULT_HEAP_MIB;
	unsigned long long n = 0;
	char line[64];
	char *heap;
	int data_fd;
	int len;

	if (argc < 2) {
		fprintf(stderr, "usage: counter DATA_FILE [FINISH_LINES] [HEAP_MIB]\n");
		return 2;
	}
	if (argc > 2)
		finish_lines = atol(argv[2]);
	if (argc > 3)
		heap_mib = atol(argv[3]);
	data_fd = open(argv[1], O_RDONLY);
	if (data_fd < 0) {
		perror("counter: open data file");
		return 1;
	}
	heap = malloc((size_t)heap_mib << 20);
	if (heap == NULL && heap_mib > 0) {
		perror("counter: malloc");
		return 1;
	}
	if (heap_mib > 0)
		memset(heap, 0x5a, (size_t)heap_mib << 20);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = counter_on_usr1;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) != 0) {
		perror("counter: sigaction");
		return 1;
	}

	for (;;) {
		n++;
		len = snprintf(line, sizeof(line), "%llu\n", n);
		if (counter_write_all(1, line, (size_t)len) != 0)
			return 1;
		if (n % 10 == 0) {
			len = snprintf(line, sizeof(line), "err %llu\n", n);
			if (counter_write_all(2, line, (size_t)len) != 0)
				return 1;
		}
		if (counter_finishing && --finish_lines <= 0)
			return COUNTER_EXIT_CODE;
		nanosleep(&period, NULL);
	}
}
