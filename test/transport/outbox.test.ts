// Outbox: sends one at a time, in order, and says how many bytes wait for a
// socket that has not taken them (the agent reads no more rank output then).
import { describe, expect, it } from 'vitest';
import { Outbox } from '../../src/transport/outbox.js';

describe('Outbox', () => {
  it('writes in order, one at a time, and counts the bytes still waiting', async () => {
    const taken: string[] = [];
    let release: () => void = () => {};
    const box = new Outbox<Uint8Array>(
      (m) =>
        new Promise<void>((resolve) => {
          taken.push(Buffer.from(m).toString());
          release = resolve; // the socket takes the next one only when this one went
        }),
      (m) => m.length,
    );
    box.push(Buffer.from('aaaa'));
    box.push(Buffer.from('bb'));
    box.push(Buffer.from('c'));
    expect(taken).toEqual(['aaaa']);
    expect(box.queuedBytes).toBe(3); // (the one being written is the socket's)
    release();
    await new Promise((r) => setImmediate(r));
    expect(taken).toEqual(['aaaa', 'bb']);
    expect(box.queuedBytes).toBe(1);
    release();
    await new Promise((r) => setImmediate(r));
    expect(box.queuedBytes).toBe(0);
    box.push(Buffer.from('dd'));
    box.close();
    expect(box.queuedBytes).toBe(0);
  });
});
