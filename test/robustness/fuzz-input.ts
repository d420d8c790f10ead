// Deterministic random inputs for the fuzz tests (a seeded PRNG, so a failure
// can be replayed).

export { mulberry32 } from '../../src/common/seeded-random.js';

export function randomBytesFrom(rand: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** A valid frame with bytes flipped, cut, duplicated or inserted. */
export function mutate(rand: () => number, frame: Uint8Array): Buffer {
  let b = Buffer.from(frame);
  const edits = 1 + Math.floor(rand() * 4);
  for (let e = 0; e < edits; e++) {
    const op = Math.floor(rand() * 4);
    const at = Math.floor(rand() * Math.max(1, b.length));
    if (op === 0 && b.length > 0) b[at] ^= 1 << Math.floor(rand() * 8);
    else if (op === 1) b = b.subarray(0, at);
    else if (op === 2) b = Buffer.concat([b.subarray(0, at), randomBytesFrom(rand, 1 + Math.floor(rand() * 6)), b.subarray(at)]);
    else b = Buffer.concat([b, b.subarray(0, at)]);
  }
  return b;
}
