// A job's output while one of its followers is behind: the agents hold it back
// in the ranks' log files (output-flow.ts) for a follower that is there, but a
// follower that went silent (a `ferry run` killed, or stopped for good) does
// not hold it back from the others.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { coordinatorInboundCodec, operatorReplyCodec } from '../../src/protocol/messages.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { ControlPlaneHarness } from './control-plane-harness.js';
import { SimulatedRanks } from './simulated-node.js';

let h: ControlPlaneHarness;
let logDir: string;
let ranks: SimulatedRanks;
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

beforeEach(async () => {
  vi.useFakeTimers();
  logDir = mkdtempSync(join(tmpdir(), 'ferry-output-behind-'));
  ranks = new SimulatedRanks(logDir);
  h = new ControlPlaneHarness();
  h.startCoordinator();
  h.startAgent('a', {}, ranks);
  await advance(50);
});

afterEach(async () => {
  await h.close();
  vi.useRealTimers();
  rmSync(logDir, { recursive: true, force: true });
});

interface TestFollower {
  /** Output bytes received, and the whole text with "<notice: ...>" and "<ended>" in place. */
  bytes: () => number;
  text: () => string;
  /** Tells the coordinator how much it received (a live `ferry run` does so every 512 KiB and 2 s). */
  count: () => void;
  /** Follows again, as a live follower does every 2 s. */
  renew: () => void;
}

/** Follows job `j` on a connection of its own; counts what it receives when `counting`, else once at the start. */
function follow(counting: boolean): TestFollower {
  const client = h.hub.connect();
  let bytes = 0;
  const got: string[] = [];
  let nextId = 2;
  const post = (operator: object) => client.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: nextId++, ...operator } }));
  const count = () => post({ output_received: { job_id: 'j', bytes } });
  client.onMessage((frames) => {
    const r = operatorReplyCodec.decode(frames[0]);
    if (r.job_output) {
      bytes += r.job_output.data.length;
      got.push(Buffer.from(r.job_output.data).toString());
      if (counting) count();
    }
    if (r.job_notice) got.push(`<notice: ${r.job_notice.message}>`);
    if (r.job_ended) got.push('<ended>');
  });
  const renew = () => client.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: 1, follow_job: { job_id: 'j' } } }));
  renew();
  count();
  return { bytes: () => bytes, text: () => got.join(''), count, renew };
}

/** `mib` MiB of numbered lines of 1 KiB. */
function lines(mib: number, from = 0): string {
  const out: string[] = [];
  for (let i = from; i < from + mib * 1024; i++) out.push(`${String(i).padStart(9, '0')} ${'x'.repeat(1013)}\n`);
  return out.join('');
}

describe('followers behind', () => {
  it('a follower that went silent far behind does not hold the output back from a new one', async () => {
    await h.submit({ world_size: 1, hosts: ['a'] });
    await advance(50);
    const stuck = follow(false); // takes nothing: a `ferry run` killed, or stopped for good
    await advance(50);
    ranks.print('j', 0, lines(64));
    await advance(3_000);
    expect(stuck.bytes()).toBeGreaterThan(0);
    expect(stuck.bytes()).toBeLessThan(64 << 20); // it got its window, the rest waits
    await advance(90_000); // it stays silent
    const fresh = follow(true);
    for (let s = 0; s < 20; s++) {
      fresh.renew();
      await advance(1_000);
    }
    ranks.print('j', 0, 'after\n');
    for (let s = 0; s < 5; s++) {
      fresh.renew();
      await advance(1_000);
    }
    expect(fresh.text().endsWith('after\n')).toBe(true);
    // Alone, the silent one had held the output back: the new one got that backlog from the files.
    expect(fresh.bytes()).toBeGreaterThan(8 << 20);
    // The silent one comes back (a `ferry run` continued): what waited for it comes, whole and in order.
    for (let s = 0; s < 20; s++) {
      stuck.renew();
      stuck.count();
      fresh.renew();
      await advance(1_000);
    }
    expect(stuck.text()).toBe(`${lines(64)}after\n`);
  });
});
