// `ferry checkpoint JOB [--stop | --every 10m | --keep-epochs N | --auto-restart N]` and `ferry epochs JOB`.
import { ErrorCode, type EpochInfo } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';
import { intOpt, onePositional, opt, parseArgs, parseDuration } from './args.js';
import { COMMON_OPERATOR_OPTIONS, coordinatorAddress, withClient } from './operator-commands.js';
import { formatBytes } from './format-bytes.js';
import { ProgressDisplay } from './progress-display.js';
import { formatTable, formatTime } from './table.js';

/** A checkpoint waits for its whole protocol; the coordinator bounds each step itself. */
export const CHECKPOINT_CLIENT_TIMEOUT_MS = 15 * 60_000;

function epochJson(e: EpochInfo) {
  return {
    jobId: e.job_id,
    epoch: e.epoch,
    state: e.state,
    startedMs: e.started_ms,
    committedMs: e.committed_ms,
    sizeBytes: e.size_bytes,
    images: e.images,
    phases: e.phases.map((p) => ({ state: p.state, atMs: p.at_ms, detail: p.detail })),
    detail: e.detail,
    replicatedImages: e.replicated_images,
    replicaHosts: e.replica_hosts,
  };
}

/** "4 on host1,host3": how many images have a verified replica, and where; "-" for none. */
function replicasOf(e: EpochInfo): string {
  return e.replicated_images > 0 ? `${e.replicated_images} on ${e.replica_hosts.join(',')}` : '-';
}

/** Milliseconds spent in each phase, from the catalog's phase timestamps ('deleted', by retention later, is no phase of it). */
/**
 * How long the epoch was in each state it left, in order, those under 1 ms left out ("preparing 12 ms,
 * dumping 87 ms, storing 217 ms"): the flush, the dump, the store... Before its first state, it waited.
 */
export function phaseDurations(e: { started_ms: number; phases: readonly { state: string; at_ms: number }[] }): string {
  const points = [{ state: 'waiting', at: Number(e.started_ms) }, ...e.phases.filter((p) => p.state !== 'deleted').map((p) => ({ state: p.state, at: Number(p.at_ms) }))];
  const parts: string[] = [];
  for (let i = 1; i < points.length; i++) {
    const ms = points[i].at - points[i - 1].at;
    if (ms >= 1) parts.push(`${points[i - 1].state} ${ms} ms`);
  }
  return parts.join(', ') || '-';
}

export async function checkpointCommand(argv: string[]): Promise<number> {
  const cmd = 'ferry checkpoint';
  const p = parseArgs(cmd, argv, {
    ...COMMON_OPERATOR_OPTIONS,
    stop: {},
    every: { value: true },
    'keep-epochs': { value: true },
    'auto-restart': { value: true },
    'image-replicas': { value: true },
    hosts: { value: true },
  });
  const jobId = onePositional(cmd, p, 'job id', 'ferry checkpoint JOB [--stop | --every 10m | --keep-epochs N | --auto-restart N | --image-replicas N | --hosts a,b]');
  const settings = ['stop', 'every', 'keep-epochs', 'auto-restart', 'image-replicas', 'hosts'].filter((o) => p.options.has(o));
  if (settings.length > 1) throw new FerryError(ErrorCode.BAD_REQUEST, `${cmd}: give one of --${settings.join(', --')}, not several`);
  if (opt(p, 'keep-epochs') !== undefined) {
    const keep = opt(p, 'keep-epochs') === 'default' ? 0 : intOpt(cmd, p, 'keep-epochs', 0, 1);
    const r = await withClient(coordinatorAddress(cmd, p), (c) => c.request({ checkpoint: { job_id: jobId, set_keep: true, keep_epochs: keep } }));
    const kept = r.job?.job?.keep_epochs ?? keep;
    process.stdout.write(`job ${jobId}: keeps the images of its ${kept} newest committed epoch${kept === 1 ? '' : 's'}${keep === 0 ? " (the coordinator's default)" : ''}\n`);
    return 0;
  }
  if (opt(p, 'image-replicas') !== undefined) {
    const own = opt(p, 'image-replicas') !== 'default';
    const n = own ? intOpt(cmd, p, 'image-replicas', 0, 0) : 0;
    const r = await withClient(coordinatorAddress(cmd, p), (c) =>
      c.request({ checkpoint: { job_id: jobId, set_image_replicas: true, own_image_replicas: own, image_replicas: n } }),
    );
    const now = r.job?.job?.image_replicas ?? n;
    process.stdout.write(
      (now === 0 ? `job ${jobId}: no copies of its images on other hosts` : `job ${jobId}: ${now} cop${now === 1 ? 'y' : 'ies'} of each committed image on other hosts`) +
        (own ? '' : " (the coordinator's default)") +
        (now > 0 ? '; those its newest epoch lacks are being made' : '') +
        '\n',
    );
    return 0;
  }
  if (opt(p, 'hosts') !== undefined) {
    const hosts = opt(p, 'hosts') === 'any' ? [] : opt(p, 'hosts')!.split(',').filter(Boolean);
    if (hosts.length === 0 && opt(p, 'hosts') !== 'any') throw new FerryError(ErrorCode.BAD_REQUEST, `${cmd}: --hosts takes a,b,... or any`);
    const r = await withClient(coordinatorAddress(cmd, p), (c) => c.request({ checkpoint: { job_id: jobId, set_hosts: true, hosts } }));
    const now = r.job?.job?.hosts ?? hosts;
    process.stdout.write(now.length ? `job ${jobId}: its hosts are ${now.join(', ')} (restarts and drains keep it there)\n` : `job ${jobId}: may run on any host\n`);
    return 0;
  }
  if (opt(p, 'auto-restart') !== undefined) {
    const n = opt(p, 'auto-restart') === 'off' ? 0 : intOpt(cmd, p, 'auto-restart', 0, 0);
    await withClient(coordinatorAddress(cmd, p), (c) => c.request({ checkpoint: { job_id: jobId, set_auto_restarts: true, auto_restarts: n } }));
    process.stdout.write(
      n ? `job ${jobId}: restarted automatically from its last checkpoint, up to ${n} time${n === 1 ? '' : 's'}, if it loses a host\n` : `job ${jobId}: no automatic restarts\n`,
    );
    return 0;
  }
  if (opt(p, 'every') !== undefined) {
    const everyMs = parseDuration(`${cmd}: --every`, opt(p, 'every')!);
    await withClient(coordinatorAddress(cmd, p), (c) => c.request({ checkpoint: { job_id: jobId, set_every: true, every_ms: everyMs } }));
    process.stdout.write(everyMs ? `job ${jobId}: a checkpoint every ${opt(p, 'every')}\n` : `job ${jobId}: periodic checkpoints off\n`);
    return 0;
  }
  const json = p.options.has('json');
  const progress = new ProgressDisplay(`checkpoint ${jobId}`, json);
  const r = await withClient(coordinatorAddress(cmd, p), (c) =>
    c.request({ checkpoint: { job_id: jobId, stop: p.options.has('stop') } }, { timeoutMs: CHECKPOINT_CLIENT_TIMEOUT_MS, onNotice: progress.onNotice }),
  ).finally(() => progress.done());
  const cp = r.checkpoint!;
  const e = cp.epoch!;
  if (json) {
    process.stdout.write(
      JSON.stringify(
        {
          ...epochJson(e),
          flushMs: cp.flush_ms,
          dumpMs: cp.dump_ms,
          storeMs: cp.store_ms,
          commitMs: cp.commit_ms,
          resumeMs: cp.resume_ms,
          pausedMs: cp.paused_ms,
          drainedMessages: cp.drained_messages,
          drainedBytes: cp.drained_bytes,
          replicasToCopy: cp.replicas_to_copy,
        },
        null,
        2,
      ) + '\n',
    );
  } else {
    process.stdout.write(
      `job ${jobId}: epoch ${e.epoch} committed, ${e.images} images, ${formatBytes(e.size_bytes)}\n` +
        `  flush ${cp.flush_ms} ms (${cp.drained_messages} messages, ${formatBytes(cp.drained_bytes)} drained), dump ${cp.dump_ms} ms, ` +
        (p.options.has('stop')
          ? `store ${cp.store_ms} ms, commit ${cp.commit_ms} ms, stop ${cp.resume_ms} ms\n`
          : `resume ${cp.resume_ms} ms (the job paused ${cp.paused_ms} ms), then store ${cp.store_ms} ms, commit ${cp.commit_ms} ms\n`) +
        (cp.replicas_to_copy > 0
          ? `  copies of its images to ${cp.replicas_to_copy === 1 ? 'another host follow' : `${cp.replicas_to_copy} other hosts follow`} (ferry epochs ${jobId} shows them)\n`
          : ''),
    );
  }
  return 0;
}

export async function epochsCommand(argv: string[]): Promise<number> {
  const cmd = 'ferry epochs';
  const p = parseArgs(cmd, argv, COMMON_OPERATOR_OPTIONS);
  const jobId = onePositional(cmd, p, 'job id', 'ferry epochs JOB');
  const epochs = await withClient(coordinatorAddress(cmd, p), async (c) => (await c.request({ epochs: { job_id: jobId } })).epochs!.epochs);
  if (p.options.has('json')) process.stdout.write(JSON.stringify(epochs.map(epochJson), null, 2) + '\n');
  else
    process.stdout.write(
      formatTable(
        ['EPOCH', 'STATE', 'STARTED', 'SIZE', 'IMAGES', 'REPLICAS', 'PHASES', 'DETAIL'],
        epochs.map((e) => [String(e.epoch), e.state, formatTime(e.started_ms), formatBytes(e.size_bytes), String(e.images), replicasOf(e), phaseDurations(e), e.detail]),
      ),
    );
  return 0;
}
