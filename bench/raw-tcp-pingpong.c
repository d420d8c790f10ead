/*
 * raw-tcp-pingpong: the "limit" contender of the ping-pong benchmark. Two
 * processes, one TCP connection with TCP_NODELAY, non-blocking sockets and
 * busy-polling send/recv (the fastest TCP path on this machine, FACTS.md).
 *
 *   raw-tcp-pingpong server ADDR PORT [MAX_BYTES]   (PORT 0: pick one, printed)
 *   raw-tcp-pingpong client ADDR PORT [MAX_BYTES]
 *
 * For sizes 0, 1, 4, 16, ... up to MAX_BYTES (default 4 MiB) the client
 * measures the half round-trip time of a ping-pong, then for the same sizes the
 * bandwidth of a one-way stream (the receiver acknowledges each batch of the
 * stream with one byte), and prints one line per size (the format
 * mpi-pingpong.c prints too).
 * Both are measured in PP_BATCHES batches, so a moment of other work on this
 * shared machine does not decide the figure. The best batch's latency counts.
 * Bandwidth is the median batch's: the best one measured a burst, not a
 * stream (over veth, some runs' second batch went at 7-8 GB/s, every other
 * batch at 2.5-3.2 GB/s, for raw TCP and Ferry alike; docs/runtime.md):
 *   pingpong impl=raw-tcp bytes=N iters=I latency_us=X bw_iters=J bandwidth_MBps=Y
 * TCP cannot carry an empty message, so size 0 moves one byte each way (the
 * smallest real round trip; an MPI 0-byte message carries a header too).
 * Lines starting with '#' are comments. The server prints
 * "# listening port=P" once it accepts connections.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pingpong-plan.h"

#define PP_CONNECT_RETRY_MS 10000

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* Busy-poll until all `len` bytes are sent. */
static void send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            die("send");
        }
    }
}

/* Busy-poll until all `len` bytes are received. */
static void recv_all(int fd, char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n == 0) {
            fprintf(stderr, "raw-tcp-pingpong: peer closed the connection\n");
            exit(1);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            die("recv");
        }
    }
}

static void pingpong(int fd, int is_client, char *buf, size_t wire)
{
    if (is_client) {
        send_all(fd, buf, wire);
        recv_all(fd, buf, wire);
    } else {
        recv_all(fd, buf, wire);
        send_all(fd, buf, wire);
    }
}

static void tune(int fd)
{
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        die("TCP_NODELAY");
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
        die("O_NONBLOCK");
}

static struct sockaddr_in parse_addr(const char *addr, const char *port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)atoi(port));
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "raw-tcp-pingpong: bad IPv4 address '%s'\n", addr);
        exit(2);
    }
    return sa;
}

static int serve(const char *addr, const char *port)
{
    struct sockaddr_in sa = parse_addr(addr, port);
    socklen_t len = sizeof sa;
    int one = 1, lfd, fd;
    if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
        die("socket");
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("bind");
    if (listen(lfd, 1) != 0)
        die("listen");
    if (getsockname(lfd, (struct sockaddr *)&sa, &len) != 0)
        die("getsockname");
    printf("# listening port=%d\n", ntohs(sa.sin_port));
    fflush(stdout);
    if ((fd = accept(lfd, NULL, NULL)) < 0)
        die("accept");
    close(lfd);
    tune(fd);
    return fd;
}

static int connect_to(const char *addr, const char *port)
{
    struct sockaddr_in sa = parse_addr(addr, port);
    double deadline = now_us() + PP_CONNECT_RETRY_MS * 1000.0;
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            die("socket");
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
            tune(fd);
            return fd;
        }
        if (errno != ECONNREFUSED || now_us() > deadline)
            die("connect");
        close(fd);
        usleep(10000); /* the server is not listening yet */
    }
}

int main(int argc, char **argv)
{
    int is_client, fd;
    long max_bytes = PP_DEFAULT_MAX_BYTES, bytes, i, k;
    double lat_us[PP_MAX_SIZES];
    char *buf, ack = 0;
    size_t slot_bytes;
    if (argc < 4 || (strcmp(argv[1], "server") != 0 && strcmp(argv[1], "client") != 0)) {
        fprintf(stderr, "usage: raw-tcp-pingpong server|client ADDR PORT [MAX_BYTES]\n");
        return 2;
    }
    is_client = strcmp(argv[1], "client") == 0;
    if (argc > 4)
        max_bytes = atol(argv[4]);
    /* The stream's messages go from and to PP_WINDOW slots MAX_BYTES apart, as in
     * mpi-pingpong.c (whose receiver posts a window of receives, each needing its
     * own memory). One buffer for every message stays in the cache, and the
     * "limit" then measured the cache as much as TCP (docs/runtime.md). */
    slot_bytes = (size_t)max_bytes + 1;
    buf = malloc(slot_bytes * PP_WINDOW);
    if (!buf)
        die("malloc");
    memset(buf, 0x5a, slot_bytes * PP_WINDOW);
    fd = is_client ? connect_to(argv[2], argv[3]) : serve(argv[2], argv[3]);
    if (is_client) {
        printf("# raw TCP, TCP_NODELAY, busy-polling non-blocking send/recv; latency = half round trip\n");
        fflush(stdout);
    }

    for (bytes = 0, k = 0; bytes <= max_bytes; bytes = pp_next_size(bytes), k++) {
        long iters = pp_latency_iters(bytes), b;
        size_t wire = bytes > 0 ? (size_t)bytes : 1;
        double t0, us;
        for (i = 0; i < PP_WARMUP_ITERS; i++)
            pingpong(fd, is_client, buf, wire);
        for (b = 0; b < pp_batches(iters); b++) {
            long n = pp_batch(iters, b);
            t0 = now_us();
            for (i = 0; i < n; i++)
                pingpong(fd, is_client, buf, wire);
            us = (now_us() - t0) / (2.0 * (double)n);
            if (b == 0 || us < lat_us[k])
                lat_us[k] = us;
        }
    }
    for (bytes = 0, k = 0; bytes <= max_bytes; bytes = pp_next_size(bytes), k++) {
        long stream = pp_stream_iters(bytes), b;
        size_t wire = bytes > 0 ? (size_t)bytes : 1;
        double t0, bw_us, batch_us[PP_BATCHES];
        /* Stream: each batch is n messages one way, one byte back. */
        for (b = 0; b < pp_batches(stream); b++) {
            long n = pp_batch(stream, b);
            t0 = now_us();
            for (i = 0; i < n; i++) {
                char *slot = buf + (size_t)(i % PP_WINDOW) * slot_bytes;
                if (is_client)
                    send_all(fd, slot, wire);
                else
                    recv_all(fd, slot, wire);
            }
            if (is_client)
                recv_all(fd, &ack, 1);
            else
                send_all(fd, &ack, 1);
            batch_us[b] = (now_us() - t0) / (double)n;
        }
        bw_us = pp_median(batch_us, pp_batches(stream));
        if (is_client) {
            printf("pingpong impl=raw-tcp bytes=%ld iters=%ld latency_us=%.3f bw_iters=%ld bandwidth_MBps=%.4f\n",
                   bytes, pp_latency_iters(bytes), lat_us[k], stream, (double)bytes / bw_us);
            fflush(stdout);
        }
    }
    close(fd);
    free(buf);
    return 0;
}
