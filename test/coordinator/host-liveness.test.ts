// The coordinator's liveness sweep: a host silent for the heartbeat timeout is
// marked down, but a sweep that comes late (the coordinator itself stood
// still, its unread heartbeats waiting in the socket) is skipped once, so a
// stalled coordinator does not mark down every host it did not read.
import { describe, expect, it } from 'vitest';
import { HostRegistry } from '../../src/coordinator/host-registry.js';
import type { RegisterRequest } from '../../src/gen/proto.js';

const TIMEOUT_MS = 1_500;
const PERIOD_MS = 100; // the coordinator sweeps every half heartbeat interval

const REQUEST: RegisterRequest = { host: 'a', address: '198.18.0.2', cpus: 2, criu_version: '4.1.1', criu_check_ok: true, criu_check_detail: '', agent_instance: 'i1', ranks: [], exited: [], agent_version: 'test', image_server: '', image_store: '', output_untaken_jobs: [] };

function registry(): { hosts: HostRegistry; clock: { t: number }; downs: string[] } {
  const clock = { t: 0 };
  const downs: string[] = [];
  const hosts = new HostRegistry(TIMEOUT_MS, () => clock.t, {
    stateChanged: (h, _from, reason) => {
      if (h.state === 'down') downs.push(`${h.name}: ${reason}`);
    },
  });
  hosts.register('peer-a', REQUEST);
  return { hosts, clock, downs };
}

/** Sweeps every PERIOD_MS up to `until`, as the coordinator's timer does when nothing holds it up. */
function sweepUntil(r: ReturnType<typeof registry>, until: number): void {
  while (r.clock.t < until) {
    r.clock.t += PERIOD_MS;
    r.hosts.sweep();
  }
}

describe('the liveness sweep', () => {
  it('marks a host down once it has been silent for the timeout', () => {
    const r = registry();
    r.hosts.sweep();
    sweepUntil(r, TIMEOUT_MS - PERIOD_MS);
    expect(r.hosts.get('a')!.state).toBe('up');
    sweepUntil(r, TIMEOUT_MS);
    expect(r.downs).toEqual([`a: no heartbeat for ${TIMEOUT_MS} ms (timeout ${TIMEOUT_MS} ms)`]);
  });

  it('skips a sweep that comes after the coordinator stood still: the heartbeats read next keep the host up', () => {
    const r = registry();
    r.hosts.sweep();
    r.clock.t = 4_600; // blocked 4.6 s; the agent's heartbeats of that time wait in the socket
    r.hosts.sweep();
    expect(r.hosts.get('a')!.state).toBe('up');
    r.hosts.touch('peer-a'); // read right after the timers
    sweepUntil(r, 4_600 + TIMEOUT_MS - PERIOD_MS);
    expect(r.downs).toEqual([]);
  });

  it('still finds a host that died during the stall, one sweep later', () => {
    const r = registry();
    r.hosts.sweep();
    r.clock.t = 4_600;
    r.hosts.sweep();
    expect(r.downs).toEqual([]);
    sweepUntil(r, 4_700);
    expect(r.downs).toEqual(['a: no heartbeat for 4700 ms (timeout 1500 ms)']);
  });

  it('brings a host marked down back up only when its agent registers again, not at a heartbeat', () => {
    const r = registry();
    r.hosts.sweep();
    sweepUntil(r, TIMEOUT_MS);
    expect(r.hosts.get('a')!.state).toBe('down');
    // An agent that stood still past the timeout, and never noticed: the coordinator says NOT_REGISTERED.
    expect(r.hosts.heartbeat('peer-a', 1)).toBeUndefined();
    expect(r.hosts.get('a')!.state).toBe('down');
    r.hosts.register('peer-a', { ...REQUEST, ranks: [] });
    expect(r.hosts.get('a')!.state).toBe('up');
    expect(r.hosts.heartbeat('peer-a', 1)?.name).toBe('a');
  });

  it('never skips two sweeps in a row: a coordinator late at every sweep still finds a dead host', () => {
    const r = registry();
    r.hosts.sweep();
    for (const t of [1_000, 2_000, 3_000]) {
      r.clock.t = t;
      r.hosts.sweep();
    }
    expect(r.downs).toEqual(['a: no heartbeat for 2000 ms (timeout 1500 ms)']);
  });
});
