// Who gets a job's output: every follower of the job gets every rank's, a
// follow that names ranks gets theirs only, and a rank joined by `ferry
// rank-exec` (join_launched_rank) gets its own rank's only, so N rank-execs
// do not receive N times the whole job's output.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RankOutput_Stream, type OperatorRequestInit } from '../../src/gen/proto.js';
import { coordinatorInboundCodec, operatorReplyCodec } from '../../src/protocol/messages.js';
import { PROTOCOL_VERSION } from '../../src/protocol/version.js';
import { ControlPlaneHarness } from './control-plane-harness.js';

let h: ControlPlaneHarness;
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

beforeEach(async () => {
  vi.useFakeTimers();
  h = new ControlPlaneHarness();
  h.startCoordinator();
  h.startAgent('a');
  h.startAgent('b');
  await advance(50);
});

afterEach(async () => {
  await h.close();
  vi.useRealTimers();
});

/** An operator connection that records the ranks of the output notices it gets, per request. */
function operator(): {
  send(id: number, req: Omit<OperatorRequestInit, 'version' | 'request_id'>): void;
  ranksOf(id: number): number[];
  joined(id: number): string;
  /** What it got, in order: output text, notices as "notice: ...", the end as "ended". */
  log: string[];
} {
  const client = h.hub.connect();
  const output = new Map<number, number[]>();
  const jobs = new Map<number, string>();
  const log: string[] = [];
  client.onMessage((frames) => {
    const r = operatorReplyCodec.decode(frames[0]);
    if (r.job_output) output.set(Number(r.reply_to), [...(output.get(Number(r.reply_to)) ?? []), r.job_output.rank]);
    if (r.job_output) log.push(Buffer.from(r.job_output.data).toString());
    if (r.job_notice) log.push(`notice: ${r.job_notice.message}`);
    if (r.job_ended) log.push('ended');
    if (r.join_launched_rank?.job) jobs.set(Number(r.reply_to), r.join_launched_rank.job.id);
  });
  return {
    send: (id, req) => client.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: id, ...req } })),
    ranksOf: (id) => output.get(id) ?? [],
    joined: (id) => jobs.get(id) ?? '',
    log,
  };
}

function outputOfEveryRank(jobId: string, worldSize: number): void {
  for (let rank = 0; rank < worldSize; rank++) {
    h.coordinator!.jobs.output.onRankOutput({ job_id: jobId, rank, stream: RankOutput_Stream.STDOUT, data: Buffer.from(`line of ${rank}\n`) });
  }
}

describe('job output to followers', () => {
  it('sends every rank to a plain follower and only the named ranks to a follow that names them', async () => {
    await h.submit({ world_size: 4, hosts: ['a', 'b'] });
    // One follower per connection and job: two connections.
    const all = operator();
    const some = operator();
    all.send(1, { follow_job: { job_id: 'j' } });
    some.send(2, { follow_job: { job_id: 'j', ranks: [1, 3] } });
    await advance(10);
    outputOfEveryRank('j', 4);
    await advance(10);
    expect(all.ranksOf(1)).toEqual([0, 1, 2, 3]);
    expect(some.ranksOf(2)).toEqual([1, 3]);
  });

  it("gives each rank joined by rank-exec its own rank's output only", async () => {
    const execs = [operator(), operator()];
    for (const [rank, host] of [[0, 'a'], [1, 'b']] as const) {
      execs[rank]!.send(10 + rank, {
        join_launched_rank: { launch_key: 'test:1', rank, world_size: 2, host, argv: ['/app'], cwd: '/', env: {}, launcher: 'test', wait_ms: 5_000, job_id: 'launched' },
      });
    }
    await advance(50);
    expect([execs[0]!.joined(10), execs[1]!.joined(11)]).toEqual(['launched', 'launched']);
    outputOfEveryRank('launched', 2);
    await advance(10);
    expect(execs[0]!.ranksOf(10)).toEqual([0]);
    expect(execs[1]!.ranksOf(11)).toEqual([1]);
  });
});

describe('output no one follows', () => {
  it('goes to the next follower once (a ferry run renewing its follow after a coordinator restart)', async () => {
    await h.submit({ world_size: 2, hosts: ['a'] });
    outputOfEveryRank('j', 2);
    const late = operator();
    late.send(1, { follow_job: { job_id: 'j' } });
    await advance(10);
    expect(late.log).toEqual(['line of 0\n', 'line of 1\n']);
    const another = operator();
    another.send(2, { follow_job: { job_id: 'j' } });
    await advance(10);
    expect(another.log).toEqual([]);
  });

  it('reaches a follow that comes after the job ended, before the end', async () => {
    await h.submit({ world_size: 2, hosts: ['a'] });
    await advance(10);
    outputOfEveryRank('j', 2);
    for (const rank of [0, 1]) h.nodes.get('a')!.ranks.exit('j', rank, 0);
    await advance(100);
    expect(h.catalog!.getJob('j')!.state).toBe('succeeded');
    expect(h.coordinator!.jobs.output.replay.mark('j').ranks).toEqual({}); // no rollback needs its output counts
    const late = operator();
    late.send(1, { follow_job: { job_id: 'j' } });
    await advance(10);
    expect(late.log).toEqual(['line of 0\n', 'line of 1\n', 'ended']);
  });

  it("keeps each rank's output for the follower of that rank", async () => {
    await h.submit({ world_size: 2, hosts: ['a'] });
    outputOfEveryRank('j', 2);
    const one = operator();
    one.send(1, { follow_job: { job_id: 'j', ranks: [1] } });
    const zero = operator();
    zero.send(2, { follow_job: { job_id: 'j', ranks: [0] } });
    await advance(10);
    expect(one.log).toEqual(['line of 1\n']);
    expect(zero.log).toEqual(['line of 0\n']);
  });

  it('keeps the newest 256 KiB and says how much went', async () => {
    await h.submit({ world_size: 1, hosts: ['a'] });
    for (let i = 0; i < 5; i++) {
      h.coordinator!.jobs.output.onRankOutput({ job_id: 'j', rank: 0, stream: RankOutput_Stream.STDOUT, data: Buffer.alloc(100 * 1024, 48 + i) });
    }
    const late = operator();
    late.send(1, { follow_job: { job_id: 'j' } });
    await advance(10);
    expect(late.log[0]).toBe(`notice: ${3 * 100 * 1024} bytes of its output went while no one followed it (kept: the last 262144; all of it is in the agents' logs)`);
    expect(late.log.slice(1).map((x) => [x.length, x[0]])).toEqual([[100 * 1024, '3'], [100 * 1024, '4']]);
  });
});
