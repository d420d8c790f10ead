// `ferry cancel JOB`: end a job from any terminal, not only from the
// `ferry run` that started it (which may be long gone for a week-long job).
// `ferry delete JOB`: free the disk an ended job's checkpoints hold, and
// forget the job.
import { ErrorCode, JobState, type DeleteJobReply, type JobInfo } from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { onePositional, opt, parseArgs, parseDuration } from './args.js';
import { formatBytes } from './format-bytes.js';
import { COMMON_OPERATOR_OPTIONS, coordinatorAddress, jobJson, jobStateName, withClient } from './operator-commands.js';
import type { OperatorClient } from './operator-client.js';

/** Long enough for the agents' SIGKILL of ranks that ignore SIGTERM (10 s) and the exits to come in. */
const CANCEL_WAIT_DEFAULT = '30s';
const POLL_MS = 250;

const ENDED = new Set([JobState.JOB_SUCCEEDED, JobState.JOB_FAILED, JobState.JOB_CANCELLED, JobState.JOB_STOPPED]);

export async function cancelCommand(argv: string[]): Promise<number> {
  const cmd = 'ferry cancel';
  const p = parseArgs(cmd, argv, { ...COMMON_OPERATOR_OPTIONS, signal: { value: true }, wait: { value: true } });
  const jobId = onePositional(cmd, p, 'job id', 'ferry cancel JOB [--signal SIGTERM] [--wait 30s]');
  const signal = (opt(p, 'signal') ?? 'SIGTERM').toUpperCase().replace(/^(?!SIG)/, 'SIG');
  const waitMs = parseDuration(`${cmd}: --wait`, opt(p, 'wait') ?? CANCEL_WAIT_DEFAULT);
  const json = p.options.has('json');
  const say = (line: string) => {
    if (!json) process.stdout.write(line + '\n');
  };
  const ended = await withClient(coordinatorAddress(cmd, p), async (c) => {
    const before = await jobOf(c, jobId);
    if (ENDED.has(before.state)) {
      // A failed job may be waiting for its automatic restart: the signal calls that off.
      if (before.state === JobState.JOB_FAILED) await c.request({ signal_job: { job_id: jobId, signal } });
      say(
        before.state === JobState.JOB_STOPPED
          ? `job ${jobId} is stopped: none of its ranks runs (ferry restart ${jobId} continues it)`
          : `job ${jobId} already ended: ${jobStateName(before.state)}`,
      );
      return before;
    }
    await c.request({ signal_job: { job_id: jobId, signal } });
    say(`job ${jobId}: ${signal} sent to its ranks`);
    const deadline = Date.now() + waitMs;
    for (;;) {
      const job = await jobOf(c, jobId);
      if (ENDED.has(job.state)) {
        say(`job ${jobId} ${jobStateName(job.state)}${job.detail ? `: ${job.detail}` : ''}`);
        return job;
      }
      if (Date.now() >= deadline) {
        const left = job.ranks.filter((r) => r.state !== 'exited').map((r) => `${r.rank} on ${r.host}`);
        throw new FerryError(
          ErrorCode.TIMEOUT,
          `job ${jobId} has not ended ${Math.round(waitMs / 1000)} s after ${signal}; still running: rank${left.length === 1 ? '' : 's'} ${left.join(', ')}` +
            (signal === 'SIGKILL' ? '' : ` (ferry cancel ${jobId} --signal SIGKILL ends them)`),
        );
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  });
  if (json) process.stdout.write(JSON.stringify(jobJson(ended), null, 2) + '\n');
  return 0;
}

async function jobOf(c: OperatorClient, jobId: string): Promise<JobInfo> {
  return (await c.request({ job: { job_id: jobId } })).job!.job!;
}

/** Removing images is an rm per rank directory on each host; the coordinator bounds each host's round. */
const DELETE_CLIENT_TIMEOUT_MS = 5 * 60_000;

export async function deleteCommand(argv: string[]): Promise<number> {
  const cmd = 'ferry delete';
  const p = parseArgs(cmd, argv, { ...COMMON_OPERATOR_OPTIONS, force: {} });
  if (p.positional.length === 0) throw new FerryError(ErrorCode.BAD_REQUEST, `${cmd}: missing job id (ferry delete JOB... [--force])`);
  const json = p.options.has('json');
  const results: ReturnType<typeof deletedJson>[] = [];
  let failed = 0;
  await withClient(coordinatorAddress(cmd, p), async (c) => {
    // One job after another; one that cannot be deleted is named, and the others still go.
    for (const jobId of p.positional) {
      try {
        const r = await c.request({ delete_job: { job_id: jobId, force: p.options.has('force') } }, { timeoutMs: DELETE_CLIENT_TIMEOUT_MS });
        const d = r.delete_job!;
        if (json) results.push(deletedJson(d));
        else process.stdout.write(deletedLine(d) + '\n');
      } catch (err) {
        if (p.positional.length === 1) throw err;
        failed++;
        const code = err instanceof FerryError ? ErrorCode[err.code] : undefined;
        process.stderr.write(`ferry: job ${jobId}: ${errorMessage(err)}${code ? ` [${code}]` : ''}\n`);
      }
    }
  });
  if (json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  return failed > 0 ? 1 : 0;
}

function deletedJson(d: DeleteJobReply) {
  return {
    jobId: d.job_id,
    epochs: d.epochs,
    imagesRemoved: d.images_removed,
    bytesRemoved: d.bytes_removed,
    imagesWaiting: d.images_waiting,
    waitingHosts: d.waiting_hosts,
    purged: d.purged,
    logHosts: d.log_hosts,
    logBytesRemoved: Number(d.log_bytes_removed),
    replicasRemoved: d.replicas_removed,
    replicaBytesRemoved: Number(d.replica_bytes_removed),
  };
}

function deletedLine(d: DeleteJobReply): string {
  const epochs = d.epochs.length === 0 ? 'no committed epochs' : `epoch${d.epochs.length > 1 ? 's' : ''} ${d.epochs.join(', ')}`;
  let line = `job ${d.job_id} deleted with ${epochs}: ${d.images_removed} image${d.images_removed === 1 ? '' : 's'} removed (${formatBytes(d.bytes_removed)})`;
  if (d.replicas_removed > 0) line += `, ${d.replicas_removed} replica${d.replicas_removed === 1 ? '' : 's'} on other hosts (${formatBytes(Number(d.replica_bytes_removed))})`;
  if (d.log_hosts > 0) line += `, output logs on ${d.log_hosts} host${d.log_hosts === 1 ? '' : 's'} (${formatBytes(Number(d.log_bytes_removed))})`;
  if (d.images_waiting > 0) {
    line +=
      `; ${d.images_waiting} wait${d.images_waiting === 1 ? 's' : ''} for host${d.waiting_hosts.length > 1 ? 's' : ''} ${d.waiting_hosts.join(', ')}: ` +
      `removed when it registers again (ferry events --job ${d.job_id} says why), and the job leaves the catalog then ` +
      `(\`ferry forget HOST\` if it is gone for good)`;
  }
  return line;
}
