// The operations the soak (main.ts) throws at a running job, each what an
// operator or a failing machine does: checkpoints, migrations, drains, stops
// and restarts (also from an older epoch, on other hosts), periodic
// checkpoints, and with --chaos agents and the coordinator SIGKILLed, also in
// the middle of a checkpoint or a migration, and whole hosts lost (given up
// after the rejoin grace, or forgotten by the operator) while the job restarts
// by itself from the copies of its images, and hosts cut off the network for
// a moment or past the grace, their ranks running on. An operation reports what it did; it throws only when Ferry
// answered in a way no operator should see (a refusal of a job that still
// runs, with no fault injected to explain it).
import type { FerryResult, TestCluster } from '../local-cluster/local-cluster.js';
import type { Random } from '../common/seeded-random.js';
import { MIN_CHECKPOINT_INTERVAL_MS } from '../coordinator/checkpoint/periodic-checkpoints.js';
import { EPOCH_TERMINAL_STATES } from '../coordinator/catalog-types.js';

export interface SoakJob {
  id: string;
  /** The `ferry run` that launched it; settled once the job stopped or ended. */
  run: Promise<FerryResult>;
  /** Set once a `checkpoint --stop` ended the run: nobody follows the job after its restart. */
  restarted: boolean;
}

export interface JobView {
  state: string;
  detail: string;
  ranks: { rank: number; host: string; state: string }[];
  /** The hosts it may run on (its --hosts, widened by migrations); empty: any host. */
  hosts: string[];
}

export interface OperationContext {
  c: TestCluster;
  random: Random;
  job: SoakJob;
  /** The job as `ferry job` shows it. */
  view(): Promise<JobView>;
}

export interface Operation {
  name: string;
  /** Only with --chaos: it kills daemons. */
  chaos: boolean;
  /** What it did, for the log. */
  run(o: OperationContext): Promise<string>;
}

const COMMAND_TIMEOUT_MS = 300_000;
/**
 * When the coordinator is killed once its operation began (its event in the coordinator's log, see
 * COORDINATOR_TRACE): from its first step to its last ones. Timed from the command's start instead, most
 * kills came before the command (a Node process) had reached the coordinator, or after it was done.
 */
const COORDINATOR_KILL_AFTER_BEGIN_MS = { min: 0, max: 800 };
const PERIODIC_EVERY_MS = { min: MIN_CHECKPOINT_INTERVAL_MS, max: 2_500 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/**
 * An operation refused as BUSY is asked again for this long, as `ferry run --stop-on` does: after an agent
 * killed in a flush, the coordinator holds the job until that agent is back and the flush is finished
 * (or fails the job once the rejoin grace, 7 s with --chaos, has run out). Busy for longer is a finding.
 */
const BUSY_RETRY_MS = 30_000;
const BUSY_RETRY_EVERY_MS = 250;
/**
 * How long a refused operation's job, some of whose ranks have exited, is watched for its end before the
 * refusal counts as a finding: a job whose ranks are exiting, one of them still reconnecting to an agent
 * started again to report its end, is refused ("has 1 of 4 ranks running") while it still counts as
 * running (soak seed 122). A job none of whose ranks has exited is not ending: its refusal is a finding.
 */
const ENDING_GRACE_MS = 15_000;

/** The hosts the job's ranks are on now. */
const hostsOf = (v: JobView) => [...new Set(v.ranks.map((r) => r.host))].sort();

/** Thrown for an answer that is a finding, not a race with the job's own end. */
export class SoakFinding extends Error {}

/**
 * `ferry ARGS`; a failure is a finding unless the job is no longer running
 * (it may end between the choice of an operation and its request), or was
 * ending (ENDING_GRACE_MS), or `expected` says the failure was provoked.
 */
async function ferry(o: OperationContext, args: string[], expected?: string): Promise<{ ok: boolean; out: string }> {
  const busyUntil = Date.now() + BUSY_RETRY_MS;
  let r = await o.c.ferry(args, { timeoutMs: COMMAND_TIMEOUT_MS });
  while (!expected && r.code !== 0 && r.stderr.includes('[BUSY]') && Date.now() < busyUntil) {
    await sleep(BUSY_RETRY_EVERY_MS);
    r = await o.c.ferry(args, { timeoutMs: COMMAND_TIMEOUT_MS });
  }
  if (r.code === 0) return { ok: true, out: r.stdout };
  const why = r.stderr.trim().split('\n').pop() ?? '';
  if (expected) return { ok: false, out: `${expected}: ${why}` };
  const endsBy = Date.now() + ENDING_GRACE_MS;
  let now = await o.view();
  const ending = now.ranks.some((r) => r.state === 'exited');
  while (ending && now.state === 'running' && Date.now() < endsBy) {
    await sleep(BUSY_RETRY_EVERY_MS);
    now = await o.view();
  }
  if (now.state !== 'running') return { ok: false, out: `refused, the job being ${now.state}${ending ? ' (it was ending)' : ''}: ${why}` };
  const busy = r.stderr.includes('[BUSY]') ? ` (still busy after ${BUSY_RETRY_MS} ms of asking again)` : '';
  throw new SoakFinding(`ferry ${args.join(' ')} failed (exit ${r.code}) while job ${o.job.id} runs${busy}:\n${r.stderr}`);
}

/** Waits until every host is up again (after a kill, once its agent is restarted). */
async function allHostsUp(c: TestCluster): Promise<void> {
  await c.waitForHostStates(Object.fromEntries(c.hosts.map((h) => [h.name, 'up'])), 60_000);
}

/**
 * Starts `host`'s killed agent again 0-2 s later, as a service manager would, while the operation it
 * was killed in goes on; returns the delay. Waiting for the operation instead left the host down for as
 * long as the operation took to give up on it (a migration's fetch from it: its 15 s chunk timeout), past
 * the soak's rejoin grace: the job failed for a host no supervisor would have left down so long.
 */
async function restartLikeASupervisor(o: OperationContext, host: string): Promise<number> {
  const away = o.random.int(0, 2_000);
  await sleep(away);
  await o.c.startAgent(host);
  return away;
}

/** The coordinator's trace that logs its events (the soak's cluster runs with it). */
export const COORDINATOR_TRACE = 'coordinator';

/**
 * Starts an operation (`start`, told what to say of a refusal) and SIGKILLs the coordinator `afterMs`
 * after the operation's begin event (`kind`.begin, naming the job) shows in its log; then starts the
 * coordinator again. An operation refused before it began goes without the kill.
 */
async function killCoordinatorAfterBegin(
  o: OperationContext,
  kind: 'checkpoint' | 'migration',
  afterMs: number,
  start: (expected: string) => Promise<{ ok: boolean; out: string }>,
): Promise<{ ok: boolean; out: string }> {
  const logFrom = o.c.logs('coordinator').length;
  const began = `event ${kind}.begin: job ${o.job.id}:`;
  let done = false;
  const op = start(`with the coordinator killed ${afterMs} ms after it began`).finally(() => (done = true));
  await o.c.waitFor(() => done || o.c.logs('coordinator').slice(logFrom).includes(began), `${kind} of job ${o.job.id} to begin`, 60_000);
  if (done) return op;
  await sleep(afterMs);
  await o.c.killCoordinator('SIGKILL');
  const r = await op;
  await o.c.startCoordinator();
  await allHostsUp(o.c);
  return r;
}

/** A random rank of the job, where it runs, and another host to move it to. */
async function pickMove(o: OperationContext): Promise<{ rank: number; host: string; to: string }> {
  const { rank, host } = o.random.pick((await o.view()).ranks);
  return { rank, host, to: o.random.pick(o.c.hosts.filter((h) => h.name !== host)).name };
}

interface EpochView {
  epoch: number;
  state: string;
  detail: string;
  images: number;
  replicatedImages: number;
}


async function epochsOf(o: OperationContext): Promise<EpochView[]> {
  const r = await o.c.ferry(['epochs', o.job.id, '--json']);
  if (r.code !== 0) throw new Error(`ferry epochs ${o.job.id} failed: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as EpochView[];
}

/** Until no epoch of the job is in flight (a periodic checkpoint's last round has ended). */
async function epochsSettled(o: OperationContext): Promise<EpochView[]> {
  let epochs: EpochView[] = [];
  await o.c.waitFor(async () => (epochs = await epochsOf(o)).every((e) => EPOCH_TERMINAL_STATES.includes(e.state)), `job ${o.job.id}'s epochs to settle`, 120_000);
  return epochs;
}

/**
 * Before a host is taken away: one the job can do without (one of its hosts, and another host it may run
 * on), and a committed epoch copied off every host (replicatedCheckpoint); or why there is none.
 */
async function hostLossReady(o: OperationContext): Promise<{ host: string; epoch: number } | string> {
  const view = await o.view();
  const allowed = view.hosts.length > 0 ? view.hosts : o.c.hosts.map((h) => h.name);
  const candidates = hostsOf(view).filter((h) => allowed.some((a) => a !== h));
  if (candidates.length === 0) return `skipped: job ${o.job.id} may run on ${allowed.join(',')} only`;
  const host = o.random.pick(candidates);
  const epoch = await replicatedCheckpoint(o);
  return typeof epoch === 'string' ? epoch : { host, epoch };
}

/**
 * A committed epoch with a copy of every image on another host, for the automatic restart after a lost host
 * to start from; or what ended the attempt.
 */
async function replicatedCheckpoint(o: OperationContext): Promise<number | string> {
  const ck = await ferry(o, ['checkpoint', o.job.id, '--json']);
  if (!ck.ok) return ck.out;
  const epoch = (JSON.parse(ck.out) as { epoch: number }).epoch;
  let replicated = false;
  await o.c.waitFor(
    async () => {
      const e = (await epochsOf(o)).find((x) => x.epoch === epoch);
      replicated = !!e && e.state === 'committed' && e.replicatedImages === e.images;
      return replicated || (await o.view()).state !== 'running';
    },
    `copies of epoch ${epoch} of job ${o.job.id}`,
    120_000,
  );
  return replicated ? epoch : `job ${o.job.id} ended before epoch ${epoch} was copied`;
}

/** Until the job, which lost `host`, runs again with every rank elsewhere (or has ended); the job then. */
async function restartedWithout(o: OperationContext, host: string): Promise<JobView> {
  await o.c.waitFor(
    async () => {
      const v = await o.view();
      return v.state !== 'running' || (!v.ranks.some((r) => r.host === host) && v.ranks.every((r) => r.state === 'running'));
    },
    `job ${o.job.id} restarted without ${host}`,
    180_000,
  );
  return o.view();
}

/**
 * A third of the time, once the job runs again without a host (and before that host is back): the
 * coordinator is SIGKILLed and started again while the restored ranks print again what they printed after
 * the epoch (a repeat the next coordinator must still drop, output-replay.ts). Says so, or nothing.
 */
async function maybeKillCoordinatorAfterRestart(o: OperationContext, after: JobView): Promise<string> {
  if (after.state !== 'running' || o.random.int(0, 2) !== 0) return '';
  await o.c.killCoordinator('SIGKILL');
  await o.c.startCoordinator();
  return '; the coordinator killed and started again right after the restart';
}

/** How long `partition-host` cuts a host off: past the heartbeat timeout at times, always within the rejoin grace. */
const PARTITION_MS = { min: 300, max: 4_000 };

/** `ferry checkpoint --json`'s answer, in a line. */
function checkpointSummary(json: string): string {
  const r = JSON.parse(json) as Record<string, number>;
  return `epoch ${r.epoch} committed: paused ${r.pausedMs} ms (flush ${r.flushMs}, dump ${r.dumpMs}, resume ${r.resumeMs}), then store ${r.storeMs}, commit ${r.commitMs}`;
}

/** `ferry migrate|drain --json`'s answer, in a line. */
function moveSummary(json: string): string {
  const r = JSON.parse(json) as { moves: { rank: number; from: string; to: string }[]; notes: string[] } & Record<string, number>;
  const moves = r.moves.map((m) => `${m.rank} ${m.from}->${m.to}`).join(', ') || 'nothing moved';
  const phases = (['flush', 'dump', 'fetch', 'restore', 'resume'] as const)
    .filter((p) => r[`${p}Ms`]! > 0)
    .map((p) => `${p} ${r[`${p}Ms`]}`)
    .join(', ');
  return `${moves}, downtime ${r.downtimeMs} ms${phases ? ` (${phases})` : ''}${r.notes.map((n) => `; note: ${n}`).join('')}`;
}

export const OPERATIONS: readonly Operation[] = [
  {
    name: 'checkpoint',
    chaos: false,
    async run(o) {
      const r = await ferry(o, ['checkpoint', o.job.id, '--json']);
      return r.ok ? checkpointSummary(r.out) : r.out;
    },
  },
  {
    name: 'migrate',
    chaos: false,
    async run(o) {
      const { rank, host, to } = await pickMove(o);
      const r = await ferry(o, ['migrate', o.job.id, '--rank', String(rank), '--to', to, '--json']);
      return r.ok ? `rank ${rank} ${host} -> ${to}: ${moveSummary(r.out)}` : r.out;
    },
  },
  {
    name: 'drain',
    chaos: false,
    async run(o) {
      const view = await o.view();
      const host = o.random.pick(hostsOf(view));
      // A job kept to this host alone has nowhere to go: the drain is refused, by design (NO_CAPACITY).
      const pinned = view.hosts.length > 0 && view.hosts.every((h) => h === host) ? `the job may run on ${host} only` : undefined;
      try {
        const r = await ferry(o, ['drain', host, '--reason', 'soak', '--json'], pinned);
        return r.ok ? `${host} drained: ${moveSummary(r.out)}` : r.out;
      } finally {
        await ferry(o, ['undrain', host]);
      }
    },
  },
  {
    name: 'stop-restart',
    chaos: false,
    async run(o) {
      const stopped = await ferry(o, ['checkpoint', o.job.id, '--stop']);
      if (!stopped.ok) return stopped.out;
      if (!o.job.restarted) {
        const r = await o.job.run;
        if (r.code !== 75) throw new SoakFinding(`the job's ferry run exited ${r.code} after checkpoint --stop (75 expected):\n${r.stderr}`);
      }
      o.job.restarted = true;
      const epochs = JSON.parse((await ferry(o, ['epochs', o.job.id, '--json'])).out) as { epoch: number; state: string }[];
      const committed = epochs.filter((e) => e.state === 'committed').map((e) => e.epoch);
      const epoch = o.random.pick(committed);
      const hosts = o.random.shuffle(o.c.hosts.map((h) => h.name)).slice(0, o.random.int(1, o.c.hosts.length));
      const r = await o.c.ferry(['restart', o.job.id, '--epoch', String(epoch), '--hosts', hosts.join(',')], { timeoutMs: COMMAND_TIMEOUT_MS });
      if (r.code !== 0) throw new SoakFinding(`ferry restart ${o.job.id} --epoch ${epoch} --hosts ${hosts.join(',')} failed (exit ${r.code}):\n${r.stderr}`);
      return `stopped; restarted from epoch ${epoch} (of ${committed.join(',')}) on ${hosts.join(',')}`;
    },
  },
  {
    name: 'periodic-checkpoints',
    chaos: false,
    async run(o) {
      const before = new Set((await epochsOf(o)).map((e) => e.epoch));
      const logFrom = o.c.logs('coordinator').length;
      const everyMs = o.random.int(PERIODIC_EVERY_MS.min, PERIODIC_EVERY_MS.max);
      const forMs = o.random.int(2_000, 7_000);
      const on = await ferry(o, ['checkpoint', o.job.id, '--every', `${everyMs}ms`]);
      if (!on.ok) return on.out;
      await sleep(forMs);
      const off = await ferry(o, ['checkpoint', o.job.id, '--every', 'off']);
      const fresh = (await epochsSettled(o)).filter((e) => !before.has(e.epoch));
      const count = (state: string) => fresh.filter((e) => e.state === state).length;
      const aborted = fresh.filter((e) => e.state === 'aborted');
      // Rounds refused before an epoch began show only as events.
      const failedLines = o.c.logs('coordinator').slice(logFrom).split('\n').filter((l) => l.includes(`event checkpoint.periodic-failed: job ${o.job.id}:`));
      // Nothing was injected: a round that failed while the job still runs is a finding.
      if ((aborted.length > 0 || failedLines.length > 0) && (await o.view()).state === 'running') {
        const why = [...aborted.map((e) => `epoch ${e.epoch} aborted: ${e.detail}`), ...failedLines];
        throw new SoakFinding(`periodic checkpoints of job ${o.job.id} failed while it runs:\n${why.join('\n')}`);
      }
      return `every ${everyMs} ms for ${forMs} ms: ${count('committed') + count('deleted')} epochs committed (${count('deleted')} of them deleted since by retention), ${aborted.length} aborted${off.ok ? '' : `; ${off.out}`}`;
    },
  },
  {
    name: 'kill-agent',
    chaos: true,
    async run(o) {
      const host = o.random.pick(hostsOf(await o.view()));
      await o.c.killAgent(host, 'SIGKILL');
      const away = o.random.int(0, 2_000);
      await sleep(away);
      await o.c.startAgent(host);
      await allHostsUp(o.c);
      return `${host}'s agent SIGKILLed, started again ${away} ms later`;
    },
  },
  {
    name: 'kill-agent-in-checkpoint',
    chaos: true,
    async run(o) {
      const host = o.random.pick(hostsOf(await o.view()));
      const after = o.random.int(0, 600);
      const cut = ferry(o, ['checkpoint', o.job.id, '--json'], `checkpoint with ${host}'s agent killed ${after} ms in`);
      await sleep(after);
      await o.c.killAgent(host, 'SIGKILL');
      const [r, away] = await Promise.all([cut, restartLikeASupervisor(o, host)]);
      await allHostsUp(o.c);
      return r.ok ? `${host}'s agent killed ${after} ms in, started again ${away} ms later; epoch ${(JSON.parse(r.out) as { epoch: number }).epoch} committed all the same` : r.out;
    },
  },
  {
    name: 'kill-agent-in-migration',
    chaos: true,
    async run(o) {
      const { rank, host, to } = await pickMove(o);
      const victim = o.random.pick([host, to]);
      const after = o.random.int(0, 600);
      const move = ferry(o, ['migrate', o.job.id, '--rank', String(rank), '--to', to], `migration of rank ${rank} ${host} -> ${to} with ${victim}'s agent killed ${after} ms in`);
      await sleep(after);
      await o.c.killAgent(victim, 'SIGKILL');
      const [r, away] = await Promise.all([move, restartLikeASupervisor(o, victim)]);
      await allHostsUp(o.c);
      return r.ok ? `rank ${rank} ${host} -> ${to}, ${victim}'s agent killed ${after} ms in, started again ${away} ms later, moved all the same` : r.out;
    },
  },
  {
    name: 'kill-coordinator-in-migration',
    chaos: true,
    async run(o) {
      const { rank, host, to } = await pickMove(o);
      const after = o.random.int(COORDINATOR_KILL_AFTER_BEGIN_MS.min, COORDINATOR_KILL_AFTER_BEGIN_MS.max);
      const what = `migration of rank ${rank} ${host} -> ${to}`;
      const r = await killCoordinatorAfterBegin(o, 'migration', after, (expected) => ferry(o, ['migrate', o.job.id, '--rank', String(rank), '--to', to], `${what} ${expected}`));
      return r.ok ? `${what}, the coordinator killed ${after} ms after it began, moved all the same` : r.out;
    },
  },
  {
    name: 'lose-host',
    chaos: true,
    async run(o) {
      const loss = await hostLossReady(o);
      if (typeof loss === 'string') return loss;
      const { host, epoch } = loss;
      const forget = o.random.int(0, 1) === 1;
      const killed = await o.c.failHost(host);
      // The operator says the host is gone for good (no grace), or the coordinator gives it up after the grace.
      if (forget) {
        await o.c.waitForHostStates({ [host]: 'down' }, 60_000);
        await ferry(o, ['forget', host]);
      }
      const after = await restartedWithout(o, host);
      const crash = await maybeKillCoordinatorAfterRestart(o, after);
      await o.c.startAgent(host);
      await allHostsUp(o.c);
      return `${host} lost (agent and ${killed} processes killed${forget ? ', then forgotten' : ', given up after the grace'}) after epoch ${epoch} was copied: job ${after.state}${after.state === 'running' ? ` on ${hostsOf(after).join(',')}` : ''}${crash}`;
    },
  },
  {
    name: 'partition-host',
    chaos: true,
    async run(o) {
      const forMs = o.random.int(PARTITION_MS.min, PARTITION_MS.max);
      // A third of the time a checkpoint is asked for as the host goes, a third a migration from or to it:
      // either may abort, or end once the host is back.
      const during = o.random.pick(['nothing', 'checkpoint', 'migration'] as const);
      const move = await pickMove(o);
      const host = during === 'migration' ? o.random.pick([move.host, move.to]) : move.host;
      const what = `${host} cut off the network for ${forMs} ms`;
      await o.c.partitionHost(host, true);
      let r: { ok: boolean; out: string } | undefined;
      try {
        const meanwhile =
          during === 'checkpoint'
            ? ferry(o, ['checkpoint', o.job.id, '--json'], `checkpoint while ${host} is cut off`).then((x) => (x.ok ? { ok: true, out: checkpointSummary(x.out) } : x))
            : during === 'migration'
              ? ferry(o, ['migrate', o.job.id, '--rank', String(move.rank), '--to', move.to, '--json'], `migration of rank ${move.rank} ${move.host} -> ${move.to} while ${host} is cut off`).then(
                  (x) => (x.ok ? { ok: true, out: `rank ${move.rank} ${move.host} -> ${move.to}: ${moveSummary(x.out)}` } : x),
                )
              : undefined;
        await sleep(forMs);
        await o.c.partitionHost(host, false);
        r = await meanwhile;
      } finally {
        await o.c.partitionHost(host, false);
      }
      await allHostsUp(o.c);
      if (!r) return what;
      return r.ok ? `${what}, a ${during} asked meanwhile: ${r.out}` : `${what}; ${r.out}`;
    },
  },
  {
    name: 'partition-host-past-grace',
    chaos: true,
    async run(o) {
      const loss = await hostLossReady(o);
      if (typeof loss === 'string') return loss;
      const { host, epoch } = loss;
      // The host's ranks run on, cut off, until their agent stops them (fencing), while the job restarts
      // without them; then the host comes back with them: they must go, and nothing of theirs may reach the
      // job's output or its files.
      await o.c.partitionHost(host, true);
      let after: JobView;
      let crash: string;
      try {
        after = await restartedWithout(o, host);
        crash = await maybeKillCoordinatorAfterRestart(o, after);
      } finally {
        await o.c.partitionHost(host, false);
      }
      await allHostsUp(o.c);
      return `${host} cut off the network past the grace after epoch ${epoch} was copied, then back: job ${after.state}${after.state === 'running' ? ` on ${hostsOf(after).join(',')}` : ''}${crash}`;
    },
  },
  {
    name: 'kill-coordinator',
    chaos: true,
    async run(o) {
      const after = o.random.int(COORDINATOR_KILL_AFTER_BEGIN_MS.min, COORDINATOR_KILL_AFTER_BEGIN_MS.max);
      const r = await killCoordinatorAfterBegin(o, 'checkpoint', after, (expected) => ferry(o, ['checkpoint', o.job.id, '--json'], `checkpoint ${expected}`));
      return r.ok ? `coordinator killed ${after} ms into a checkpoint, which had committed` : r.out;
    },
  },
];
