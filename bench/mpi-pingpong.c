/*
 * mpi-pingpong: the ping-pong benchmark through MPI, between ranks 0 and 1
 * (other ranks only wait), so it runs unchanged under Debian's MPICH and
 * under Ferry's runtime. Same measurement and output as raw-tcp-pingpong.c:
 * half round-trip latency of an MPI_Send/MPI_Recv ping-pong for every size,
 * then for the same sizes the bandwidth of a one-way stream of MPI_Isend in
 * windows of PP_WINDOW messages, the receiver pre-posting MPI_Irecv and
 * acknowledging each batch of the stream with one empty message. Both are measured in PP_BATCHES batches, as in
 * raw-tcp-pingpong.c: the best batch's latency counts, and the median
 * batch's bandwidth (see there).
 *
 *   mpiexec -n 2 ./mpi-pingpong [MAX_BYTES] [--impl NAME]
 *   pingpong impl=NAME bytes=N iters=I latency_us=X bw_iters=J bandwidth_MBps=Y
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pingpong-plan.h"

#define TAG_PING 1
#define TAG_STREAM 2
#define TAG_ACK 3

static void pingpong(int rank, char *buf, int n)
{
    int peer = 1 - rank;
    if (rank == 0) {
        MPI_Send(buf, n, MPI_BYTE, peer, TAG_PING, MPI_COMM_WORLD);
        MPI_Recv(buf, n, MPI_BYTE, peer, TAG_PING, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else {
        MPI_Recv(buf, n, MPI_BYTE, peer, TAG_PING, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(buf, n, MPI_BYTE, peer, TAG_PING, MPI_COMM_WORLD);
    }
}

int main(int argc, char **argv)
{
    int rank, size, i;
    long max_bytes = PP_DEFAULT_MAX_BYTES, bytes, it, s;
    double lat_us[PP_MAX_SIZES];
    const char *impl = "mpi";
    char *buf;
    MPI_Request reqs[PP_WINDOW];

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--impl") == 0 && i + 1 < argc)
            impl = argv[++i];
        else
            max_bytes = atol(argv[i]);
    }
    if (size < 2 || max_bytes < 0) {
        if (rank == 0)
            fprintf(stderr, "usage: mpiexec -n 2 mpi-pingpong [MAX_BYTES] [--impl NAME]\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    /* One buffer per window slot for the stream: a receiver must not post
     * two receives into the same memory. */
    buf = malloc((size_t)(max_bytes > 0 ? max_bytes : 1) * PP_WINDOW);
    if (!buf)
        MPI_Abort(MPI_COMM_WORLD, 3);
    memset(buf, 0x5a, (size_t)(max_bytes > 0 ? max_bytes : 1) * PP_WINDOW);
    if (rank == 0) {
        printf("# MPI Send/Recv ping-pong (latency = half round trip), Isend stream in windows of %d\n", PP_WINDOW);
        fflush(stdout);
    }

    for (bytes = 0, s = 0; bytes <= max_bytes; bytes = pp_next_size(bytes), s++) {
        long iters = pp_latency_iters(bytes);
        double t0;
        int n = (int)bytes;
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank <= 1) {
            long b;
            double us;
            for (it = 0; it < PP_WARMUP_ITERS; it++)
                pingpong(rank, buf, n);
            for (b = 0; b < pp_batches(iters); b++) {
                long k = pp_batch(iters, b);
                t0 = MPI_Wtime();
                for (it = 0; it < k; it++)
                    pingpong(rank, buf, n);
                us = (MPI_Wtime() - t0) * 1e6 / (2.0 * (double)k);
                if (b == 0 || us < lat_us[s])
                    lat_us[s] = us;
            }
        }
    }
    for (bytes = 0, s = 0; bytes <= max_bytes; bytes = pp_next_size(bytes), s++) {
        long stream = pp_stream_iters(bytes);
        double t0;
        int n = (int)bytes;
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank <= 1) {
            int peer = 1 - rank;
            long b;
            double bw_us, batch_us[PP_BATCHES];
            size_t slot_bytes = (size_t)(max_bytes > 0 ? max_bytes : 1);
            for (b = 0; b < pp_batches(stream); b++) {
                long k = pp_batch(stream, b);
                t0 = MPI_Wtime();
                for (it = 0; it < k; it += PP_WINDOW) {
                    int w, win = (int)(k - it < PP_WINDOW ? k - it : PP_WINDOW);
                    for (w = 0; w < win; w++) {
                        char *slot = buf + (size_t)w * slot_bytes;
                        if (rank == 0)
                            MPI_Isend(slot, n, MPI_BYTE, peer, TAG_STREAM, MPI_COMM_WORLD, &reqs[w]);
                        else
                            MPI_Irecv(slot, n, MPI_BYTE, peer, TAG_STREAM, MPI_COMM_WORLD, &reqs[w]);
                    }
                    MPI_Waitall(win, reqs, MPI_STATUSES_IGNORE);
                }
                if (rank == 0)
                    MPI_Recv(NULL, 0, MPI_BYTE, peer, TAG_ACK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                else
                    MPI_Send(NULL, 0, MPI_BYTE, peer, TAG_ACK, MPI_COMM_WORLD);
                batch_us[b] = (MPI_Wtime() - t0) * 1e6 / (double)k;
            }
            bw_us = pp_median(batch_us, pp_batches(stream));
            if (rank == 0) {
                printf("pingpong impl=%s bytes=%ld iters=%ld latency_us=%.3f bw_iters=%ld bandwidth_MBps=%.4f\n", impl,
                       bytes, pp_latency_iters(bytes), lat_us[s], stream, (double)bytes / bw_us);
                fflush(stdout);
            }
        }
    }
    free(buf);
    MPI_Finalize();
    return 0;
}
