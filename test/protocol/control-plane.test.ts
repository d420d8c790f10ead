// The coordinator/agent protocol over the in-memory transport, under fake
// timers: registration, heartbeat loss and return, coordinator restart,
// duplicate host names and version mismatch.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode } from '../../src/gen/proto.js';
import { agentMessageCodec, coordinatorInboundCodec, operatorReplyCodec } from '../../src/protocol/messages.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { ControlPlaneHarness } from './control-plane-harness.js';

let h: ControlPlaneHarness;

beforeEach(() => {
  vi.useFakeTimers();
  h = new ControlPlaneHarness();
});

afterEach(async () => {
  await h.close();
  vi.useRealTimers();
});

const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

describe('control plane over the in-memory transport', () => {
  it('registers agents and records them in the catalog', async () => {
    const c = h.startCoordinator();
    h.startAgent('a');
    h.startAgent('b');
    await advance(50);
    expect(c.hosts.up().map((x) => x.name)).toEqual(['a', 'b']);
    expect(h.catalog!.listHosts().map((x) => [x.name, x.state])).toEqual([
      ['a', 'up'],
      ['b', 'up'],
    ]);
    const a = h.catalog!.getHost('a')!;
    expect(a.cpus).toBe(4);
    expect(a.criuVersion).toBe('4.1.1');
    // Heartbeats keep them up well past the timeout.
    await advance(3_000);
    expect(h.hostState('a')).toBe('up');
    expect(c.stats.heartbeats).toBeGreaterThan(20);
  });

  it('marks a silent host down and brings it back when heartbeats return', async () => {
    const c = h.startCoordinator();
    const agent = h.startAgent('a');
    await advance(50);
    expect(h.hostState('a')).toBe('up');
    const heard = c.stats.heartbeats;
    h.hub.severed = true;
    await advance(700);
    expect(h.hostState('a')).toBe('down');
    expect(c.stats.heartbeats).toBe(heard);
    expect(h.catalog!.getHost('a')!.state).toBe('down');
    h.hub.severed = false;
    await advance(8_000);
    expect(h.hostState('a')).toBe('up');
    expect(agent.state).toBe('registered');
    const kinds = h.catalog!.listEvents({ limit: 100 }).map((e) => e.kind);
    expect(kinds).toContain('host.down');
    expect(kinds.lastIndexOf('host.up')).toBeGreaterThan(kinds.indexOf('host.down'));
  });

  it('keeps the catalog over a coordinator restart and the agents re-register by themselves', async () => {
    h.startCoordinator();
    h.startAgent('a');
    h.startAgent('b');
    await advance(50);
    const firstInstance = h.coordinator!.instance;
    await h.stopCoordinator();
    await advance(2_000); // agents notice the loss and back off
    const c2 = h.startCoordinator();
    expect(c2.instance).not.toBe(firstInstance);
    // Straight after the restart the hosts are known but not yet heard from.
    expect(c2.hosts.all().map((x) => [x.name, x.state])).toEqual([
      ['a', 'unknown'],
      ['b', 'unknown'],
    ]);
    await advance(10_000);
    expect(c2.hosts.all().map((x) => [x.name, x.state])).toEqual([
      ['a', 'up'],
      ['b', 'up'],
    ]);
  });

  it('refuses a second live agent with the same host name, and lets it in once the first is down', async () => {
    const c = h.startCoordinator();
    const first = h.startAgent('a');
    await advance(50);
    const second = h.startAgent('a');
    await advance(300);
    expect(second.state).toBe('connecting');
    expect(c.hosts.get('a')!.agentInstance).toBe(first.instance);
    expect(h.coordinator!.hosts.all()).toHaveLength(1);
    const refusals = h.catalog!.listEvents({ limit: 100 }).filter((e) => e.kind === 'host.duplicate');
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals[0].message).toMatch(/host name "a" is held by a live agent/);
    await first.stop();
    await advance(10_000);
    expect(c.hosts.get('a')!.agentInstance).toBe(second.instance);
    expect(second.state).toBe('registered');
  });

  it('refuses an agent speaking another major protocol version with a clear error', async () => {
    h.startCoordinator();
    const client = h.hub.connect();
    const replies: Uint8Array[] = [];
    client.onMessage((f) => replies.push(f[0]));
    client.send(
      coordinatorInboundCodec.encode({
        agent: { version: { major: PROTOCOL_VERSION.major + 1, minor: 0 }, request_id: 7, register: { host: 'x', agent_instance: 'i' } },
      }),
    );
    await advance(10);
    expect(replies).toHaveLength(1);
    const reply = agentMessageCodec.decode(replies[0]);
    expect(reply.reply_to).toBe(7);
    expect(reply.status?.code).toBe(ErrorCode.VERSION_MISMATCH);
    expect(reply.status?.message).toMatch(new RegExp(`speaks Ferry protocol 2\\.0, this side speaks 1\\.${PROTOCOL_VERSION.minor}:`));
    expect(h.coordinator!.hosts.get('x')).toBeUndefined();
    // The operator channel refuses it the same way.
    client.send(coordinatorInboundCodec.encode({ operator: { version: { major: 9, minor: 1 }, request_id: 8, hosts: {} } }));
    await advance(10);
    const op = operatorReplyCodec.decode(replies[1]);
    expect(op.status?.code).toBe(ErrorCode.VERSION_MISMATCH);
  });

  it('an agent refused for its protocol version reports it as fatal, and a garbage frame is not fatal', async () => {
    // A coordinator of the next major version, played by hand.
    const server = h.hub.listen();
    server.onMessage((peer, frames) => {
      const msg = coordinatorInboundCodec.decode(frames[0]).agent!;
      server.send(peer, Uint8Array.from([0xff, 0x01])); // garbage first
      server.send(
        peer,
        agentMessageCodec.encode({
          version: { major: PROTOCOL_VERSION.major + 1, minor: 0 },
          reply_to: msg.request_id,
          status: { ok: false, code: ErrorCode.VERSION_MISMATCH, message: 'the agent speaks Ferry protocol 1.0, this side speaks 2.0' },
        }),
      );
    });
    h.startAgent('a');
    await advance(50);
    expect(h.fatal).toHaveLength(1);
    expect(h.fatal[0]).toMatch(/protocol/);
  });

  it('answers a heartbeat from an unregistered peer with NOT_REGISTERED', async () => {
    h.startCoordinator();
    const client = h.hub.connect();
    const replies: Uint8Array[] = [];
    client.onMessage((f) => replies.push(f[0]));
    client.send(coordinatorInboundCodec.encode({ agent: { version: PROTOCOL_VERSION, request_id: 1, heartbeat: { sent_ms: 1 } } }));
    await advance(10);
    expect(agentMessageCodec.decode(replies[0]).status?.code).toBe(ErrorCode.NOT_REGISTERED);
  });
});
