// A process on a compute node that is not a rank cannot pass for one: real
// agents, an MPI job on two namespace hosts, and a stranger in each host's
// namespace (test/helpers/spoof-rank.mjs). On the agent's rank socket it says
// it is rank 0 and is refused for want of the job's rank token (before it
// could take the rank's place); on rank 0's data listener it sends a peer
// HELLO made from the job id alone and rank 0 closes the connection without a
// word. The job runs on and ends with every message checked. Then the job is
// checkpointed, stopped and restarted: the restored ranks still hold the
// token (in their memory, their agents read it from the restored ferry-init).
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RANK_SOCKET } from '../../src/cli/daemon-commands.js';
import { ErrorCode } from '../../src/gen/proto.js';
import { packageRoot } from '../../src/protocol/proto-root.js';
import type { TestCluster } from '../helpers/cluster.js';
import { allRanksRunning, ferryJson as ferryJsonOf, startFaultCluster } from '../helpers/fault-cluster.js';

const SPOOF = join(packageRoot(), 'test', 'helpers', 'spoof-rank.mjs');

let c: TestCluster;
let stream: string;

beforeAll(async () => {
  ({ cluster: c, stream } = await startFaultCluster());
}, 120_000);

afterAll(async () => {
  await c?.stop();
});

const ferryJson = <T>(args: string[]) => ferryJsonOf<T>(c, args);

interface RankView {
  rank: number;
  host: string;
  endpoint: string;
}

/** Runs spoof-rank.mjs inside HOST's network namespace; its JSON line. */
async function spoof(host: string, args: string[]): Promise<Record<string, unknown>> {
  const [cmd, ...argv] = c.network.command(host, [process.execPath, SPOOF, ...args]);
  const { stdout } = await promisify(execFile)(cmd!, argv, { timeout: 30_000 });
  return JSON.parse(stdout.trim());
}

describe('rank tokens', { timeout: 180_000 }, () => {
  it('refuse a stranger on the rank socket and on a rank listener; the job and its restart are unharmed', async () => {
    const stop = join(c.tempDir, 'stop-token');
    const run = c.ferry(['run', '-n', '2', '--hosts', 'host1,host2', '--job-id', 'tok', stream, stop], { timeoutMs: 150_000 });
    await allRanksRunning(c, 'tok');
    const ranks = (await ferryJson<{ ranks: RankView[] }>(['job', 'tok'])).ranks;
    const rank0 = ranks.find((r) => r.rank === 0)!;
    const other = ranks.find((r) => r.rank === 1)!;

    // On rank 0's host: "I am rank 0", with a guessed token. Refused as such, not as a duplicate.
    const onSocket = await spoof(rank0.host, ['agent', DEFAULT_RANK_SOCKET, 'tok', '0', '2', 'guess']);
    expect(onSocket).toMatchObject({ closed: true, code: ErrorCode.PERMISSION_DENIED });
    expect(onSocket.message).toMatch(/not rank 0 of job tok on host \S+ said it was \(it did not show the job's rank token\)/);
    // Nor with none at all.
    const none = await spoof(rank0.host, ['agent', DEFAULT_RANK_SOCKET, 'tok', '0', '2', '']);
    expect(none).toMatchObject({ closed: true, code: ErrorCode.PERMISSION_DENIED });
    expect(none.message).toMatch(/showed no rank token: .* a program linked with a Ferry runtime from before rank tokens \(build it again with ferry mpicc\)/);
    // As rank 1 on the host that does not run it: refused, and its connection closed, so it cannot keep
    // rank 1's place from the rank itself should it be restored or migrated there.
    const notRank1 = c.hosts.find((h) => h.name !== other.host)!.name;
    expect(await spoof(notRank1, ['agent', DEFAULT_RANK_SOCKET, 'tok', '1', '2', ''])).toMatchObject({ closed: true, code: ErrorCode.UNKNOWN_RANK });

    // From the other host: a peer HELLO to rank 0's listener that knows the job id but not the token.
    const [address, port] = rank0.endpoint.split(':');
    expect(await spoof(other.host, ['peer', address!, port!, 'tok', '1'])).toEqual({ closed: true, bytes: 0 });
    const err0 = join(c.hosts.find((h) => h.name === rank0.host)!.logsDir, 'tok', 'rank-0.err');
    await c.waitFor(() => readFileSync(err0, 'utf8').includes('refused a connection that is not from a rank of this job'), 'rank 0 to refuse');

    // Restored ranks keep their token: checkpoint, stop, restart; the job still ends with every message checked.
    const ckpt = await c.ferry(['checkpoint', 'tok', '--stop', '--json'], { timeoutMs: 60_000 });
    expect(ckpt.code, ckpt.stderr).toBe(0);
    expect((await run).code).not.toBe(null);
    const restart = await c.ferry(['restart', 'tok', '--json'], { timeoutMs: 120_000 });
    expect(restart.code, `${restart.stderr}\n${c.logTails(20)}`).toBe(0);
    const attached = c.ferry(['attach', 'tok'], { timeoutMs: 120_000 });
    await allRanksRunning(c, 'tok');
    writeFileSync(stop, '');
    const r = await attached;
    expect(r.code, `${r.stderr}\n${c.logTails(20)}`).toBe(0);
    expect(r.stdout).toMatch(/\[0\] stream ok rounds \d+ messages \d+/);
    expect((await ferryJson<{ state: string }>(['job', 'tok'])).state).toBe('succeeded');
  });
});
