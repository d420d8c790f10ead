// The image server's chunk buffers: a buffer is refilled only after the very
// fetcher it was lent to has said it received that reply.
import { describe, expect, it } from 'vitest';
import { ImageChunkBuffers, POOLED_CHUNK_MIN_BYTES } from '../../src/images/image-chunk-buffers.js';

const MIB = 1024 * 1024;
const sameMemory = (a: Buffer, b: Buffer) => a.buffer === b.buffer && a.byteOffset === b.byteOffset;

describe('image chunk buffers', () => {
  it('a buffer comes back for reuse only with its own fetcher\'s receipt', () => {
    const pool = new ImageChunkBuffers(MIB);
    const a1 = pool.lend('A', 1, MIB);
    const a2 = pool.lend('A', 2, MIB / 2);
    expect(a1.length).toBe(MIB);
    expect(a2.length).toBe(MIB / 2);
    expect(sameMemory(a1, a2)).toBe(false);
    pool.receive('B', [1, 2]); // another fetcher naming A's requests: nothing comes back
    expect(pool.stats()).toMatchObject({ allocated: 2, reused: 0, free: 0, lent: 2 });
    const b1 = pool.lend('B', 1, MIB);
    expect(sameMemory(b1, a1) || sameMemory(b1, a2)).toBe(false);
    pool.receive('A', [1]);
    pool.receive('A', [1, 99]); // twice, and an id never lent: no effect
    expect(pool.stats()).toMatchObject({ allocated: 3, free: 1, lent: 2 });
    const b2 = pool.lend('B', 2, 300 * 1024);
    expect(sameMemory(b2, a1)).toBe(true);
    expect(b2.length).toBe(300 * 1024);
    expect(pool.stats()).toMatchObject({ allocated: 3, reused: 1, free: 0, lent: 3 });
    pool.close();
  });

  it('small chunks and chunks larger than a buffer get buffers of their own, never pooled', () => {
    const pool = new ImageChunkBuffers(MIB);
    const small = pool.lend('A', 1, POOLED_CHUNK_MIN_BYTES - 1);
    const large = pool.lend('A', 2, 2 * MIB);
    expect([small.length, large.length]).toEqual([POOLED_CHUNK_MIN_BYTES - 1, 2 * MIB]);
    pool.receive('A', [1, 2]);
    expect(pool.stats()).toMatchObject({ allocated: 0, free: 0, lent: 0 });
    pool.close();
  });

  it('a request id lent twice to one fetcher: the first buffer is never refilled', () => {
    const pool = new ImageChunkBuffers(MIB);
    const first = pool.lend('A', 7, MIB);
    const second = pool.lend('A', 7, MIB);
    pool.receive('A', [7]);
    expect(pool.stats()).toMatchObject({ dropped: 1, free: 1, lent: 0 });
    const next = pool.lend('A', 8, MIB);
    expect(sameMemory(next, second)).toBe(true);
    expect(sameMemory(next, first)).toBe(false);
    pool.close();
  });

  it('an unsent reply\'s buffer is free at once; at most maxFree buffers are kept', () => {
    const pool = new ImageChunkBuffers(MIB, 2);
    const bufs = [1, 2, 3].map((id) => pool.lend('A', id, MIB));
    pool.unsent('A', 1);
    pool.receive('A', [2, 3]);
    expect(pool.stats()).toMatchObject({ allocated: 3, free: 2, lent: 0 });
    expect(sameMemory(pool.lend('A', 4, MIB), bufs[1]!)).toBe(true); // the last one kept; the third was let go
    pool.close();
  });

  it('a fetcher that sends no receipts holds at most maxLentPerPeer buffers: its oldest loans are dropped, never refilled', () => {
    const pool = new ImageChunkBuffers(MIB, 8, 30_000, 4);
    const a = [1, 2, 3, 4, 5, 6].map((id) => pool.lend('A', id, MIB));
    const b = pool.lend('B', 1, MIB);
    expect(pool.stats()).toMatchObject({ allocated: 7, lent: 5, dropped: 2 });
    pool.receive('A', [1, 2]); // the dropped ones: not taken back
    expect(pool.stats()).toMatchObject({ free: 0, lent: 5 });
    pool.receive('A', [3, 6]);
    pool.receive('B', [1]);
    expect(pool.stats()).toMatchObject({ free: 3, lent: 2 });
    const next = [10, 11, 12].map((id) => pool.lend('C', id, MIB));
    for (const n of next) expect([a[2], a[5], b].some((x) => sameMemory(n, x!))).toBe(true);
    expect(next.some((n) => sameMemory(n, a[0]!) || sameMemory(n, a[1]!))).toBe(false);
    pool.close();
  });

  it('an idle fetcher\'s loans are dropped, not refilled; the free list goes once nothing was lent for the idle time', () => {
    const idleMs = 30_000;
    const pool = new ImageChunkBuffers(MIB, 8, idleMs);
    const t0 = Date.now();
    const lost = pool.lend('A', 1, MIB);
    pool.lend('B', 1, MIB);
    pool.receive('B', [1]);
    pool.sweep(t0 + idleMs / 2);
    expect(pool.stats()).toMatchObject({ free: 1, lent: 1, dropped: 0 });
    pool.sweep(t0 + idleMs + 1000);
    expect(pool.stats()).toMatchObject({ free: 0, lent: 0, dropped: 1 });
    pool.receive('A', [1]); // too late: the buffer is not taken back
    const again = pool.lend('A', 2, MIB);
    expect(sameMemory(again, lost)).toBe(false);
    expect(pool.stats()).toMatchObject({ allocated: 3, reused: 0 });
    pool.close();
  });
});
