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
function operator(): { send(id: number, req: Omit<OperatorRequestInit, 'version' | 'request_id'>): void; ranksOf(id: number): number[]; joined(id: number): string } {
  const client = h.hub.connect();
  const output = new Map<number, number[]>();
  const jobs = new Map<number, string>();
  client.onMessage((frames) => {
    const r = operatorReplyCodec.decode(frames[0]);
    if (r.job_output) output.set(Number(r.reply_to), [...(output.get(Number(r.reply_to)) ?? []), r.job_output.rank]);
    if (r.join_launched_rank?.job) jobs.set(Number(r.reply_to), r.join_launched_rank.job.id);
  });
  return {
    send: (id, req) => client.send(coordinatorInboundCodec.encode({ operator: { version: PROTOCOL_VERSION, request_id: id, ...req } })),
    ranksOf: (id) => output.get(id) ?? [],
    joined: (id) => jobs.get(id) ?? '',
  };
}

function outputOfEveryRank(jobId: string, worldSize: number): void {
  for (let rank = 0; rank < worldSize; rank++) {
    h.coordinator!.jobs.onRankOutput({ job_id: jobId, rank, stream: RankOutput_Stream.STDOUT, data: Buffer.from(`line of ${rank}\n`) });
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
