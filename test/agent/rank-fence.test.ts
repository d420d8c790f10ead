// Fencing (agent/rank-fence.ts): an agent that has not heard its coordinator
// for the rejoin grace stops its ranks, and continues them once one answers;
// also when that is the next agent, after this one was killed meanwhile. Real
// ranks under ferry-init, in their own PID namespaces; RankSupervisors on one
// state directory, and real agents over real ZeroMQ with a coordinator played
// by a router that answers registrations and heartbeats, or stops answering.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as zmq from 'zeromq';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { LocalRankSteps } from '../../src/agent/local-rank-steps.js';
import { agentMessageCodec, coordinatorInboundCodec, OK_STATUS } from '../../src/protocol/messages.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { ZmqClientTransport } from '../../src/transport/zmq-transport.js';
import { initPidOf, RankSupervisor } from '../../src/agent/rank-supervisor.js';
import { childrenOf } from '../../src/agent/runtime-processes.js';
import { RANK_TABLE_FILE } from '../../src/agent/rank-table.js';
import { RankFence } from '../../src/agent/rank-fence.js';
import { processStateCode } from '../../src/common/proc-stat.js';

const FERRY_INIT = resolve('build', 'bin', 'ferry-init');
const SLEEPER = { argv: ['/bin/sh', '-c', 'exec sleep 60'], cwd: '/', env: { PATH: '/usr/bin:/bin' } };

let dir = '';
const supervisors: RankSupervisor[] = [];
const supervisor = () => {
  const s = new RankSupervisor({ host: 'h', logsDir: join(dir, 'logs'), stateDir: join(dir, 'state'), initPath: FERRY_INIT, agentSocketName: `ferry-test-fence-${process.pid}` });
  supervisors.push(s);
  return s;
};
const fencedInTable = () =>
  (JSON.parse(readFileSync(join(dir, 'state', RANK_TABLE_FILE), 'utf8')) as { ranks: { rank: number; fenced?: boolean }[] }).ranks.filter((t) => t.fenced).map((t) => t.rank);

/** The state of rank R's program (the child of its ferry-init), once it runs; of job j unless `job`. */
async function programState(s: RankSupervisor, rank: number, job = 'j'): Promise<string> {
  const unshare = s.running().find((p) => p.job_id === job && p.rank === rank)!.pid!;
  for (let i = 0; i < 250; i++) {
    const init = initPidOf(unshare);
    const program = init ? childrenOf(init)[0] : undefined;
    if (program) {
      try {
        return processStateCode(readFileSync(`/proc/${program}/stat`, 'utf8'));
      } catch {
        // between fork and exec, or gone
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`rank ${rank} has no program running`);
}

/** Until rank R's program is in one of `states` (signals go through ferry-init, a hop away). */
async function until(s: RankSupervisor, rank: number, states: string[], job = 'j'): Promise<string> {
  let state = '';
  for (let i = 0; i < 500 && !states.includes((state = await programState(s, rank, job))); i++) await new Promise((r) => setTimeout(r, 20));
  return state;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-test-fence-'));
});
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  const all = supervisors.splice(0);
  for (const s of all) for (const job of ['j', 'k']) s.signalJob(job, 'SIGKILL');
  for (let i = 0; i < 250 && all.some((s) => s.running().length > 0); i++) await new Promise((r) => setTimeout(r, 20));
  for (const s of all) s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('fencing the ranks of an agent cut off from its coordinator', () => {
  it('stops them once the grace has passed since the coordinator last answered, and continues them when one answers', async () => {
    const s = supervisor();
    s.start({ jobId: 'j', rank: 0, worldSize: 2, ...SLEEPER });
    s.start({ jobId: 'j', rank: 1, worldSize: 2, ...SLEEPER });
    expect(await until(s, 0, ['S'])).toBe('S');
    const said: string[] = [];
    const fence = new RankFence(s, (m) => said.push(m));
    // Last heard 800 ms ago, with a grace of 1 s: stopped about 200 ms from now, not at once.
    fence.arm(Date.now() - 800, 1_000);
    expect(await programState(s, 0)).toBe('S');
    expect(await until(s, 0, ['T'])).toBe('T');
    expect(await until(s, 1, ['T'])).toBe('T');
    expect(fencedInTable()).toEqual([0, 1]);
    expect(said).toEqual([expect.stringMatching(/^no coordinator has answered for 1000 ms, .*: ranks j\/0, j\/1 are stopped until one answers/)]);

    fence.heard();
    expect(await until(s, 0, ['S', 'R'])).not.toBe('T');
    expect(await until(s, 1, ['S', 'R'])).not.toBe('T');
    expect(fencedInTable()).toEqual([]);
    expect(said[1]).toMatch(/^a coordinator answers again: ranks j\/0, j\/1 continue/);
  });

  it('never stops them for a coordinator that gives no grace (an older one)', async () => {
    const s = supervisor();
    s.start({ jobId: 'j', rank: 0, worldSize: 1, ...SLEEPER });
    expect(await until(s, 0, ['S'])).toBe('S');
    const fence = new RankFence(s, () => undefined);
    fence.arm(Date.now() - 60_000, 0);
    await new Promise((r) => setTimeout(r, 300));
    expect(await programState(s, 0)).toBe('S');
  });

  it('leaves a job its launcher suspended stopped when it continues the others', async () => {
    const s = supervisor();
    s.start({ jobId: 'j', rank: 0, worldSize: 1, ...SLEEPER });
    s.start({ jobId: 'k', rank: 0, worldSize: 1, ...SLEEPER });
    expect(await until(s, 0, ['S'])).toBe('S');
    expect(await until(s, 0, ['S'], 'k')).toBe('S');
    s.signalJob('j', 'SIGTSTP'); // (what a suspended launcher's stop becomes: launcher-leases.ts)
    expect(await until(s, 0, ['T'])).toBe('T');
    expect(s.fence()).toEqual(['k/0']);
    expect(await until(s, 0, ['T'], 'k')).toBe('T');
    expect(s.unfence()).toEqual(['k/0']);
    expect(await until(s, 0, ['S', 'R'], 'k')).not.toBe('T');
    await new Promise((r) => setTimeout(r, 300));
    expect(await programState(s, 0)).toBe('T');
  });

  it('is kept in the rank table: the next agent, once registered, continues what the one before it stopped', async () => {
    const first = supervisor();
    first.start({ jobId: 'j', rank: 0, worldSize: 1, ...SLEEPER });
    expect(await until(first, 0, ['S'])).toBe('S');
    expect(first.fence()).toEqual(['j/0']);
    expect(await until(first, 0, ['T'])).toBe('T');
    // The agent is killed while cut off; the next one takes the rank back, still stopped, and is heard.
    const next = supervisor();
    expect(next.readopt().alive.map((a) => a.process.rank)).toEqual([0]);
    expect(fencedInTable()).toEqual([0]);
    new RankFence(next, () => undefined).heard();
    expect(await until(next, 0, ['S', 'R'])).not.toBe('T');
    expect(fencedInTable()).toEqual([]);
  });
});

const GRACE_MS = 800;

/** A coordinator played by a ZeroMQ router: it answers registrations (with GRACE_MS) and heartbeats while `answering`. */
async function fakeCoordinator(): Promise<{ address: string; answering: boolean; registrations: number }> {
  const router = new zmq.Router({ linger: 0 });
  await router.bind('tcp://127.0.0.1:0');
  router.receiveTimeout = 100;
  const state = { address: router.lastEndpoint!, answering: true, registrations: 0 };
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      let id: Buffer, frame: Buffer;
      try {
        [id, frame] = await router.receive();
      } catch {
        continue;
      }
      const msg = coordinatorInboundCodec.decode(frame).agent;
      if (!msg || !state.answering || msg.reply_to) continue;
      const base = { version: PROTOCOL_VERSION, reply_to: msg.request_id, status: OK_STATUS };
      if (msg.body === 'register') {
        state.registrations++;
        await router.send([id, agentMessageCodec.encode({ ...base, register_reply: { coordinator_instance: 'c', heartbeat_interval_ms: 100, heartbeat_timeout_ms: 400, host_rejoin_grace_ms: GRACE_MS } })]);
      } else if (msg.body === 'heartbeat') {
        await router.send([id, agentMessageCodec.encode({ ...base, heartbeat_ack: { coordinator_instance: 'c' } })]);
      } else if (msg.request_id) {
        await router.send([id, agentMessageCodec.encode({ ...base, ack: {} })]);
      }
    }
  })();
  cleanups.push(async () => {
    stop = true;
    await loop;
    router.close();
  });
  return state;
}

function startAgent(address: string, ranks: RankSupervisor): Agent {
  const agent = new Agent(
    { host: 'h', address: '127.0.0.1', cpus: 1, criuVersion: '', criuCheckOk: false, criuCheckDetail: '', version: 'test' },
    () => new ZmqClientTransport(address),
    ranks,
    {},
    new LocalRankSteps({ host: 'h', imagesDir: join(dir, 'images'), ranks }),
  );
  agent.start();
  cleanups.push(() => agent.stop());
  return agent;
}

const waitUntil = async (what: string, predicate: () => boolean, timeoutMs = 15_000) => {
  const t0 = Date.now();
  while (!predicate()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('an agent cut off from its coordinator', () => {
  it('stops its ranks once the grace its coordinator gave has passed, and continues them once it answers again', async () => {
    const coordinator = await fakeCoordinator();
    const s = supervisor();
    const agent = startAgent(coordinator.address, s);
    await waitUntil('the registration', () => agent.state === 'registered');
    s.start({ jobId: 'j', rank: 0, worldSize: 1, ...SLEEPER });
    expect(await until(s, 0, ['S'])).toBe('S');

    coordinator.answering = false;
    const cut = Date.now();
    await waitUntil('the session to be lost', () => agent.state === 'connecting');
    expect(await programState(s, 0)).toBe('S'); // (lost after 400 ms: the grace runs from the last answer)
    expect(await until(s, 0, ['T'])).toBe('T');
    expect(Date.now() - cut).toBeGreaterThanOrEqual(GRACE_MS - 150);

    const before = coordinator.registrations;
    coordinator.answering = true;
    await waitUntil('the registration again', () => coordinator.registrations > before && agent.state === 'registered');
    expect(await until(s, 0, ['S', 'R'])).not.toBe('T');
    expect(fencedInTable()).toEqual([]);
  });

  it('restarted while cut off, stops the ranks it took back after the grace the agent before it knew', async () => {
    const coordinator = await fakeCoordinator();
    const first = supervisor();
    const agent = startAgent(coordinator.address, first);
    await waitUntil('the registration', () => agent.state === 'registered');
    first.start({ jobId: 'j', rank: 0, worldSize: 1, ...SLEEPER });
    expect(await until(first, 0, ['S'])).toBe('S');
    // The agent dies (its ranks run on); the next one starts while the host is cut off.
    coordinator.answering = false;
    await agent.stop();
    first.close();
    const next = supervisor();
    startAgent(coordinator.address, next);
    expect(next.running().map((p) => p.rank)).toEqual([0]);
    expect(await programState(next, 0)).toBe('S');
    expect(await until(next, 0, ['T'])).toBe('T');
    expect(fencedInTable()).toEqual([0]);

    coordinator.answering = true;
    expect(await until(next, 0, ['S', 'R'])).not.toBe('T');
  });
});
