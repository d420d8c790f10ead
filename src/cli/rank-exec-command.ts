// `ferry rank-exec PROGRAM ARGS...`: the hook for existing MPI launchers
// (`mpiexec -n 4 ferry rank-exec ./app`, `srun ferry rank-exec ./app`). It
// reads the rank the launcher gave it, joins the other ranks of the launch at
// the coordinator, which starts the whole job under Ferry with every rank on
// the node its rank-exec runs on, and then stays as the launcher's child:
// it writes that one rank's output, raw, to its own stdout and stderr, and
// exits with that rank's status, wherever Ferry has moved the rank meanwhile.
import { hostname, networkInterfaces } from 'node:os';
import { constants as osConstants } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { ErrorCode, JobState, type JobInfo, type LauncherProcessInit, type OperatorReply, type RankOutput_Stream } from '../gen/proto.js';
import { ownStartTicks } from '../common/proc-stat.js';
import { FerryError } from '../common/ferry-error.js';
import { opt, parseArgs, parseDuration } from './args.js';
import { FOLLOW_RENEW_MS, JobFollower, STOPPED_EXIT_STATUS, jobExitStatus } from './job-follower.js';
import { launchKey, launcherRank, rankEnvironment } from './launcher-env.js';
import type { OperatorClient } from './operator-client.js';
import { RankOutputWriter } from './rank-output-writer.js';
import { rank0Stdin } from './rank0-stdin.js';
import { StopOnSignal, parseStopSignal } from './stop-on-signal.js';
import { COMMON_OPERATOR_OPTIONS, coordinatorAddress, jobStateName, withClient } from './operator-commands.js';

/** How long the ranks of one launch may take to all join, unless --join-timeout says otherwise. */
export const RANK_EXEC_JOIN_TIMEOUT_MS = 60_000;
/** Added to the join timeout for the client's own deadline: the coordinator's answer comes first. */
const JOIN_REPLY_MARGIN_MS = 10_000;

const CMD = 'ferry rank-exec';
/** How long a rank-exec given SIGTSTP waits for the coordinator to hear it before it stops (Slurm's SIGSTOP comes 2 s after). */
const SUSPEND_NOTICE_MS = 1_000;

/**
 * The output of one rank only, raw: the launcher tags it. The coordinator
 * sends only this rank's (its follows name the rank); the filter stays for a
 * coordinator of an earlier 1.x, which sends every rank's.
 */
class OneRankOutput extends RankOutputWriter {
  constructor(private readonly rank: number) {
    super(false);
  }

  override write(rank: number, stream: RankOutput_Stream, data: Uint8Array, written?: () => void): void {
    if (rank === this.rank) super.write(rank, stream, data, written);
    else written?.();
  }
}

export async function rankExecCommand(argv: string[]): Promise<number> {
  const p = parseArgs(
    CMD,
    argv,
    { ...COMMON_OPERATOR_OPTIONS, host: { value: true }, 'job-key': { value: true }, 'job-id': { value: true }, 'join-timeout': { value: true }, 'stop-on': { value: true }, stdin: { value: true } },
    true,
  );
  if (p.options.has('json')) throw new FerryError(ErrorCode.BAD_REQUEST, `${CMD}: --json is not supported (the output is the rank's own)`);
  const [program, ...args] = p.positional;
  if (!program) throw new FerryError(ErrorCode.BAD_REQUEST, `${CMD}: missing program (mpiexec -n N ferry rank-exec PROGRAM ARGS...)`);
  const lr = launcherRank(process.env);
  const waitMs = opt(p, 'join-timeout') ? parseDuration(`${CMD}: --join-timeout`, opt(p, 'join-timeout')!) : RANK_EXEC_JOIN_TIMEOUT_MS;
  if (waitMs <= 0) throw new FerryError(ErrorCode.BAD_REQUEST, `${CMD}: --join-timeout must be positive`);
  const path = program.includes('/') && !isAbsolute(program) ? resolve(program) : program;
  // Rank 0's standard input, as ferry run's (the launcher hands rank 0's rank-exec its own): only with
  // --stdin (-: read to its end) or when it is a regular file, since a launcher's is a pipe that a
  // terminal may keep open. The other ranks' is not read.
  const stdin = lr.rank === 0 ? rank0Stdin(CMD, opt(p, 'stdin')) : new Uint8Array(0);
  // --stop-on: the launcher passes a batch system's time-limit warning to every rank-exec; rank 0's
  // asks for the checkpoint and stop, the others let it pass. Each then ends once the job is stopped.
  const stopSignal = opt(p, 'stop-on') ? parseStopSignal(CMD, opt(p, 'stop-on')!) : undefined;
  let stopSignalled = false;
  const onStopSignal = () => (stopSignalled = true);

  // Signals are caught from here on: one that comes before the launch started abandons it.
  let jobId = '';
  let abandoned: NodeJS.Signals | undefined;
  let follower: JobFollower | undefined;
  let client: OperatorClient | undefined;
  let waitingForRestart = false;
  const received = new Map<string, number>();
  const onSignal = (signal: NodeJS.Signals) => {
    const nth = (received.get(signal) ?? 0) + 1;
    received.set(signal, nth);
    if (jobId && waitingForRestart) abandoned ??= signal;
    else if (jobId) client?.post({ signal_launched_job: { job_id: jobId, signal, rank: lr.rank, nth } });
    else if (!abandoned) {
      abandoned = signal;
      follower?.fail(new FerryError(ErrorCode.UNAVAILABLE, `${signal} before the launch started`));
    }
  };
  // SIGTSTP (a batch system suspending the launcher: Slurm sends SIGSTOP 2 s later) and SIGCONT are told
  // to the coordinator, whose lease on this rank's follow waits in between (launcher-leases.ts); then this
  // process stops, as it would without the handler.
  const suspends = new Map<string, number>();
  const onSuspend = () => {
    const nth = (suspends.get('SIGTSTP') ?? 0) + 1;
    suspends.set('SIGTSTP', nth);
    const stop = () => process.kill(process.pid, 'SIGSTOP');
    if (!jobId || !client) return stop();
    client.request({ signal_launched_job: { job_id: jobId, signal: 'SIGTSTP', rank: lr.rank, nth } }, { timeoutMs: SUSPEND_NOTICE_MS }).then(stop, stop);
  };
  const onContinue = () => {
    const nth = (suspends.get('SIGCONT') ?? 0) + 1;
    suspends.set('SIGCONT', nth);
    if (jobId) client?.post({ signal_launched_job: { job_id: jobId, signal: 'SIGCONT', rank: lr.rank, nth } });
  };
  const forwarded = (['SIGINT', 'SIGTERM'] as NodeJS.Signals[]).filter((sig) => sig !== stopSignal);
  for (const sig of forwarded) process.on(sig, onSignal);
  process.on('SIGTSTP', onSuspend);
  process.on('SIGCONT', onContinue);
  if (stopSignal) process.on(stopSignal, onStopSignal);
  let stopper: StopOnSignal | undefined;
  const signalStatus = (signal: NodeJS.Signals) => 128 + (osConstants.signals[signal] ?? 15);
  try {
    return await withClient(coordinatorAddress(CMD, p), async (c) => {
      client = c;
      const host = opt(p, 'host') || process.env.FERRY_HOST || (await localHost(c));
      if (abandoned) return signalStatus(abandoned);
      const key = launchKey(process.env, opt(p, 'job-key'), lr, { host, parentPid: process.ppid });
      // This process as its node's agent sees it: asked about when its renewals stop (launcher-leases.ts).
      const self: LauncherProcessInit = { host, pid: process.pid, start_ticks: await ownStartTicks() };
      const output = new OneRankOutput(lr.rank);
      follower = new JobFollower(c, output, false, CMD);
      const first = follower;
      if (stopSignal && lr.rank === 0) stopper = new StopOnSignal(c, stopSignal, `${CMD}: rank 0`, false);
      c.request(
        {
          join_launched_rank: {
            launch_key: key,
            rank: lr.rank,
            world_size: lr.size,
            host,
            argv: [path, ...args],
            cwd: process.cwd(),
            env: rankEnvironment(process.env),
            launcher: lr.launcher,
            wait_ms: waitMs,
            job_id: opt(p, 'job-id') ?? '',
            launcher_process: self,
            stdin,
          },
        },
        {
          timeoutMs: waitMs + JOIN_REPLY_MARGIN_MS,
          follow: true,
          onNotice: (r: OperatorReply) => {
            if (r.join_launched_rank?.job && !jobId && !abandoned) {
              jobId = r.join_launched_rank.job.id;
              first.follow(jobId, false, [lr.rank], self);
              stopper?.jobStarted(jobId);
            }
            first.onNotice(r);
          },
        },
      ).then(first.onFinal, (err: Error) => first.fail(err));
      let job: JobInfo;
      try {
        job = await first.ended;
      } catch (err) {
        if (!abandoned) throw err;
        // The other rank-execs most likely got it too: the launch is dropped (or its job signalled) once.
        await c.request({ signal_launched_job: { launch_key: key, signal: abandoned, rank: lr.rank, nth: 1 } }).catch(() => undefined);
        return signalStatus(abandoned);
      }
      jobId = job.id;
      // Stopped after a checkpoint: the rank is not done; wait for `ferry restart` and follow it again.
      while (job.state === JobState.JOB_STOPPED) {
        if (stopSignalled) {
          // Stopped for the time limit: this allocation ends; the next launch with the job's id continues it.
          process.stderr.write(`${CMD}: rank ${lr.rank}: job ${job.id} ${job.detail}; so does a launch with --job-id ${job.id}\n`);
          return STOPPED_EXIT_STATUS;
        }
        process.stderr.write(`${CMD}: rank ${lr.rank}: job ${job.id} stopped after a checkpoint; waiting for "ferry restart ${job.id}"\n`);
        waitingForRestart = true;
        await untilRestarted(c, job.id, () => abandoned !== undefined);
        waitingForRestart = false;
        if (abandoned) return signalStatus(abandoned);
        follower.stop();
        follower = new JobFollower(c, output, false, CMD);
        follower.follow(job.id, true, [lr.rank], self);
        job = await follower.ended;
      }
      return rankExit(job, lr.rank, received.size > 0);
    });
  } finally {
    for (const sig of forwarded) process.off(sig, onSignal);
    process.off('SIGTSTP', onSuspend);
    process.off('SIGCONT', onContinue);
    if (stopSignal) process.off(stopSignal, onStopSignal);
    stopper?.dispose();
  }
}

/**
 * This node's Ferry host: the agent named like os.hostname() if there is one,
 * else the one agent whose address is an address of this node (namespace hosts
 * share a hostname), else os.hostname() (the coordinator then names it as unknown).
 */
async function localHost(c: OperatorClient): Promise<string> {
  const name = hostname();
  const hosts = (await c.request({ hosts: {} })).hosts?.hosts ?? [];
  if (hosts.some((h) => h.name === name)) return name;
  const mine = new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address)));
  const matching = hosts.filter((h) => mine.has(h.address));
  return matching.length === 1 ? matching[0].name : name;
}

async function untilRestarted(c: OperatorClient, jobId: string, givenUp: () => boolean): Promise<void> {
  while (!givenUp()) {
    await new Promise((r) => setTimeout(r, FOLLOW_RENEW_MS));
    let job: JobInfo | null | undefined;
    try {
      job = (await c.request({ job: { job_id: jobId } })).job?.job;
    } catch (err) {
      if (err instanceof FerryError && err.code === ErrorCode.UNAVAILABLE) continue; // the coordinator restarts: wait on
      throw err;
    }
    if (job && job.state !== JobState.JOB_STOPPED) return;
  }
}

/** The status a launcher should see for this rank; a one-line reason on stderr when another rank ended the job. */
export function rankExit(job: JobInfo, rank: number, signalled: boolean): number {
  const r = job.ranks.find((x) => x.rank === rank);
  const own = r && r.state === 'exited' ? rankStatus(r.exit_code, r.signal) : 0;
  if (job.state === JobState.JOB_SUCCEEDED) return own;
  const causedHere = job.detail.startsWith(`rank ${rank} `);
  if (!causedHere && !(signalled && job.state === JobState.JOB_CANCELLED)) {
    process.stderr.write(`${CMD}: rank ${rank}: job ${job.id} ${jobStateName(job.state)}: ${job.detail || 'no reason given'}\n`);
  }
  return own || jobExitStatus(job) || 1;
}

/** A rank's status as a shell shows it: its exit code, or 128 + N for a death by signal N. */
export function rankStatus(exitCode: number, signal: string): number {
  if (signal) {
    const n = (osConstants.signals as Record<string, number>)[signal];
    return n ? 128 + n : 1;
  }
  return exitCode < 0 ? 1 : exitCode & 0xff || (exitCode !== 0 ? 1 : 0);
}
