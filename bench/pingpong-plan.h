/*
 * pingpong-plan.h: what the ping-pong benchmark programs (raw-tcp-pingpong.c
 * and mpi-pingpong.c) share, so every contender measures the same way: the
 * message sizes, how many iterations each size gets, their batches, and how
 * a size's figures come out of its batches (the best batch's latency, the
 * median batch's bandwidth: see raw-tcp-pingpong.c).
 *
 * Every size's latency is measured before any stream runs, as separate latency
 * and bandwidth programs would (OSU's osu_latency and osu_bw): a stream leaves
 * the TCP connection in a state that slows the ping-pongs after it, by how
 * much depending on how the stream was written (docs/runtime.md), and the
 * contenders write their streams differently.
 */
#ifndef PINGPONG_PLAN_H
#define PINGPONG_PLAN_H

#define PP_DEFAULT_MAX_BYTES (4 << 20)
#define PP_WINDOW 64 /* the stream's window: Isends in flight, buffers it cycles through */
#define PP_LATENCY_BYTES_BUDGET (32 << 20)
#define PP_LATENCY_ITERS_MAX 2000
#define PP_LATENCY_ITERS_MIN 20
#define PP_STREAM_BYTES_BUDGET (128 << 20)
#define PP_STREAM_ITERS_MAX 20000
#define PP_STREAM_ITERS_MIN 16
#define PP_WARMUP_ITERS 10
#define PP_BATCHES 20 /* latency: best batch mean; bandwidth: median batch (fewer if fewer iterations) */
#define PP_MAX_SIZES 34 /* sizes 0, 1, 4, ... 4^31: as many as a MAX_BYTES in a long can ask for */

static inline long pp_clamp(long v, long lo, long hi) { return v < lo ? lo : v > hi ? hi : v; }
static inline long pp_latency_iters(long bytes) { return pp_clamp(PP_LATENCY_BYTES_BUDGET / (bytes ? bytes : 1), PP_LATENCY_ITERS_MIN, PP_LATENCY_ITERS_MAX); }
static inline long pp_stream_iters(long bytes) { return pp_clamp(PP_STREAM_BYTES_BUDGET / (bytes ? bytes : 1), PP_STREAM_ITERS_MIN, PP_STREAM_ITERS_MAX); }
static inline long pp_next_size(long bytes) { return bytes == 0 ? 1 : bytes * 4; }
/* The number of batches for `total` iterations, and the iterations in batch b
 * (the first batches take the remainder). */
static inline long pp_batches(long total) { return total < PP_BATCHES ? total : PP_BATCHES; }
static inline long pp_batch(long total, long b) { return total / pp_batches(total) + (b < total % pp_batches(total)); }

/* The median of n values (sorts them). */
static inline double pp_median(double *v, long n)
{
    long i, j;
    for (i = 1; i < n; i++)
        for (j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
