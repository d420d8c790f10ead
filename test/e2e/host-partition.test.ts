// End to end, with real CRIU, real agents and namespace hosts that each have
// an images directory of their own: a host cut off the network (its link to
// the bridge down, every process on it running on) for longer than the rejoin
// grace. Its job, run with --auto-restart and a replica of every image, is
// restarted from the replicas on the other hosts while the cut-off rank still
// runs: two copies of one rank, the split brain a real partition makes. The
// program (lone-steps) works alone between its start and its end, printing
// and appending to its own file as it goes, so the cut-off copy does not block
// on its peers: it is its agent that must stop it (agent/rank-fence.ts). When
// the host comes back, that copy must go, and nothing of it may reach the
// job's output or its files: `ferry run` prints the uninterrupted run's output
// bit for bit, and the files end as the uninterrupted run's. The checkpoint's
// DUMP is held until rank 0 printed a line after its flush (its restored copy
// does not print that line again). Again with the
// coordinator killed and started again while the host is cut off: it must
// still know that copy for a given-up one (given-up-copies.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { ferryOkOn } from '../helpers/e2e-run.js';
import { FaultGates } from '../helpers/fault-gates.js';
import { LoneStepsJobs } from '../helpers/lone-steps-job.js';
import { programOn as programOnHost } from '../helpers/host-processes.js';

// About 10 s (500 steps of 20 ms): long enough to still run after its checkpoint, the copies of its
// images, the grace and the restart.
const STEPS = '500';
const RUN_TIMEOUT_MS = 120_000;
const GRACE_MS = 3_000;

let c: TestCluster;
let gates: FaultGates;
const jobs = new LoneStepsJobs(() => c, STEPS, RUN_TIMEOUT_MS);

const ferryOk = ferryOkOn(() => c, RUN_TIMEOUT_MS);

const job = async (jobId: string) => JSON.parse(await ferryOk(['job', jobId, '--json'])) as { state: string; detail: string; ranks: { host: string; state: string }[] };
const epochs = async (jobId: string) => JSON.parse(await ferryOk(['epochs', jobId, '--json'])) as { epoch: number; images: number; replicatedImages: number }[];

/** The job's processes in HOST's network namespace (its ranks: nothing else there runs the program), with their state. */
const programOn = (host: string) => programOnHost(c, host, 'lone-steps');

beforeAll(async () => {
  c = await startTestCluster({ hosts: 3, heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1_500, hostRejoinGraceMs: GRACE_MS, imageReplicas: 1, faultGates: true });
  gates = new FaultGates(c);
  jobs.build();
}, 120_000);

afterAll(async () => {
  // (a failed test may leave host1 cut off: join it again before the cluster stops)
  gates?.openAll();
  await c?.partitionHost('host1', false).catch(() => undefined);
  await c?.stop();
});

describe('a host cut off the network', { timeout: 300_000 }, () => {
  it.each([
    { jobId: 'cut', coordinatorRestart: false },
    { jobId: 'cut-crash', coordinatorRestart: true },
  ])('past the grace: the job restarts without it; its rank, still running, goes when it is back and leaves no trace (coordinator restarted meanwhile: $coordinatorRestart)', async ({ jobId, coordinatorRestart }) => {
    await jobs.reference();
    const run = jobs.run(jobId, 'host1,host2', ['--auto-restart', '1']);
    await c.waitFor(async () => (await job(jobId)).state === 'running', `job ${jobId} running`);
    // Rank 0 prints a progress line between its flush and its dump (it computes outside MPI: the DUMP is
    // held until it has). Its restored copy goes on from the dump and does not print that line again: the
    // rollback must not drop as much of its new output (agent/late-output.ts).
    const log = jobs.log('host1', jobId);
    await jobs.untilPrinted(log, 'step 25\n');
    gates.close('dump', 'host1');
    let checkpointed: Promise<string>;
    try {
      checkpointed = ferryOk(['checkpoint', jobId]);
      await gates.held('dump', 'host1');
      await jobs.untilNextStep(log);
    } finally {
      gates.open('dump', 'host1');
    }
    await checkpointed;
    await c.waitFor(async () => (await epochs(jobId))[0]!.replicatedImages === 2, 'replicas of epoch 1');
    expect((await job(jobId)).ranks.map((r) => r.host)).toEqual(['host1', 'host2']);
    const stale = programOn('host1').map((p) => p.pid);
    expect(stale).toHaveLength(1);

    await c.partitionHost('host1', true);
    try {
      await c.waitFor(
        async () => {
          const j = await job(jobId);
          return j.state === 'running' && j.ranks.every((r) => r.host !== 'host1' && r.state === 'running');
        },
        `job ${jobId} restarted without host1`,
        60_000,
      );
      // Two copies of rank 0 now: the restored one, and the cut-off one, stopped by its agent.
      expect(programOn('host1')).toEqual([{ pid: stale[0], state: 'T' }]);
      if (coordinatorRestart) {
        await c.killCoordinator('SIGKILL');
        await c.startCoordinator();
        await c.waitFor(async () => (await job(jobId)).ranks.every((r) => r.host !== 'host1' && r.state === 'running'), `job ${jobId} running on after the coordinator's restart`);
      }
    } finally {
      await c.partitionHost('host1', false);
    }
    await c.waitForHostStates({ host1: 'up' }, 60_000);
    await c.waitFor(() => programOn('host1').length === 0, 'the cut-off copy of rank 0 to go', 30_000);

    const done = await run;
    // Bit for bit the uninterrupted run's output: nothing of the cut-off copy, no progress line twice.
    await jobs.expectUninterrupted(done, jobId);
    const events = await ferryOk(['events', '--job', jobId]);
    expect(events).toMatch(/rank\.stale-copy .*job cut(-crash)? rank 0: host host1 came back with a copy of it alive, but the rank runs on host\d; killing that copy/);
    // What the cut-off copy printed before it was stopped went with it, and the job's followers were told.
    expect(done.stderr).toMatch(/rank 0's copy on host host1, given up when host1 went down, printed on while host1 was cut off: that output is left out/);
  });
});
