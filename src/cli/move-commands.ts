// `ferry restart`, `ferry migrate`, `ferry drain`: ranks restored on other hosts.
import { ErrorCode, type MoveReply } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';
import { CHECKPOINT_CLIENT_TIMEOUT_MS } from './checkpoint-commands.js';
import { formatBytes } from './format-bytes.js';
import { ProgressDisplay } from './progress-display.js';
import { intOpt, onePositional, opt, parseArgs, requireOpt } from './args.js';
import { COMMON_OPERATOR_OPTIONS, coordinatorAddress, withClient } from './operator-commands.js';

function print(json: boolean, what: string, r: MoveReply): void {
  if (json) {
    process.stdout.write(
      JSON.stringify(
        {
          epoch: r.epoch,
          moves: r.moves.map((m) => ({ jobId: m.job_id, rank: m.rank, from: m.from_host, to: m.to_host })),
          flushMs: r.flush_ms,
          dumpMs: r.dump_ms,
          fetchMs: r.fetch_ms,
          restoreMs: r.restore_ms,
          resumeMs: r.resume_ms,
          downtimeMs: r.downtime_ms,
          bytesShipped: r.bytes_shipped,
          notes: r.notes,
        },
        null,
        2,
      ) + '\n',
    );
    return;
  }
  const notes = r.notes.map((n) => `note: ${n}\n`).join('');
  if (r.moves.length === 0) {
    process.stdout.write(`${what}\n${notes}`);
    return;
  }
  const lines = r.moves.map((m) => `  ${m.job_id} rank ${m.rank}: ${m.from_host || '-'} -> ${m.to_host}`);
  const phases = [
    ['flush', r.flush_ms],
    ['dump', r.dump_ms],
    ['fetch', r.fetch_ms],
    ['restore', r.restore_ms],
    ['resume', r.resume_ms],
  ]
    .filter(([, ms]) => (ms as number) > 0)
    .map(([n, ms]) => `${n} ${ms} ms`)
    .join(', ');
  process.stdout.write(`${what}\n${lines.join('\n')}\n  ${phases ? `${phases}; ` : ''}downtime ${r.downtime_ms} ms, ${formatBytes(r.bytes_shipped)} shipped\n${notes}`);
}

/** "0=a,1=b" -> rank -> host. */
export function parseRankMap(cmd: string, text: string): Record<number, string> {
  const map: Record<number, string> = {};
  for (const part of text.split(',').filter(Boolean)) {
    const m = /^(\d+)=([A-Za-z0-9._-]+)$/.exec(part.trim());
    if (!m) throw new FerryError(ErrorCode.BAD_REQUEST, `${cmd}: --map entry "${part}" is not RANK=HOST`);
    map[Number(m[1])] = m[2];
  }
  return map;
}

export async function restartCommand(argv: string[]): Promise<number> {
  const cmd = 'ferry restart';
  const p = parseArgs(cmd, argv, { ...COMMON_OPERATOR_OPTIONS, epoch: { value: true }, hosts: { value: true }, map: { value: true } });
  const jobId = onePositional(cmd, p, 'job id', 'ferry restart JOB [--epoch E] [--hosts a,b | --map 0=a,1=b]');
  if (opt(p, 'hosts') && opt(p, 'map')) throw new FerryError(ErrorCode.BAD_REQUEST, `${cmd}: give --hosts or --map, not both`);
  const progress = new ProgressDisplay(`restart ${jobId}`, p.options.has('json'));
  const r = await withClient(coordinatorAddress(cmd, p), (c) =>
    c.request(
      {
        restart: {
          job_id: jobId,
          epoch: intOpt(cmd, p, 'epoch', 0, 1),
          hosts: (opt(p, 'hosts') ?? '').split(',').filter(Boolean),
          rank_hosts: opt(p, 'map') ? parseRankMap(cmd, opt(p, 'map')!) : {},
        },
      },
      { timeoutMs: CHECKPOINT_CLIENT_TIMEOUT_MS, onNotice: progress.onNotice },
    ),
  ).finally(() => progress.done());
  print(p.options.has('json'), `job ${jobId}: restarted from epoch ${r.move!.epoch}`, r.move!);
  return 0;
}

export async function migrateCommand(argv: string[]): Promise<number> {
  const cmd = 'ferry migrate';
  const p = parseArgs(cmd, argv, { ...COMMON_OPERATOR_OPTIONS, rank: { value: true }, to: { value: true } });
  const jobId = onePositional(cmd, p, 'job id', 'ferry migrate JOB --rank R --to HOST');
  const rank = intOpt(cmd, p, 'rank', -1, 0);
  if (rank < 0) throw new FerryError(ErrorCode.BAD_REQUEST, `${cmd}: missing option --rank`);
  const to = requireOpt(cmd, p, 'to');
  const progress = new ProgressDisplay(`migrate ${jobId} rank ${rank}`, p.options.has('json'));
  const r = await withClient(coordinatorAddress(cmd, p), (c) =>
    c.request({ migrate: { job_id: jobId, rank, to_host: to } }, { timeoutMs: CHECKPOINT_CLIENT_TIMEOUT_MS, onNotice: progress.onNotice }),
  ).finally(() => progress.done());
  print(p.options.has('json'), `job ${jobId}: rank ${rank} migrated`, r.move!);
  return 0;
}

export async function drainCommand(argv: string[]): Promise<number> {
  const cmd = 'ferry drain';
  const p = parseArgs(cmd, argv, { ...COMMON_OPERATOR_OPTIONS, reason: { value: true } });
  const host = onePositional(cmd, p, 'host', 'ferry drain HOST [--reason TEXT]');
  const progress = new ProgressDisplay(`drain ${host}`, p.options.has('json'));
  const r = await withClient(coordinatorAddress(cmd, p), (c) =>
    c.request({ drain: { host, reason: opt(p, 'reason') ?? '' } }, { timeoutMs: CHECKPOINT_CLIENT_TIMEOUT_MS, onNotice: progress.onNotice }),
  ).finally(() => progress.done());
  const n = r.move!.moves.length;
  print(p.options.has('json'), `host ${host} drained: ${n} rank${n === 1 ? '' : 's'} moved; no new ranks go there until \`ferry undrain ${host}\``, r.move!);
  return 0;
}

export async function undrainCommand(argv: string[]): Promise<number> {
  const cmd = 'ferry undrain';
  const p = parseArgs(cmd, argv, COMMON_OPERATOR_OPTIONS);
  const host = onePositional(cmd, p, 'host', 'ferry undrain HOST');
  const r = await withClient(coordinatorAddress(cmd, p), (c) => c.request({ undrain_host: { host } }));
  const u = r.undrain_host!;
  if (p.options.has('json')) process.stdout.write(JSON.stringify({ host: u.host, wasDrained: u.was_drained }, null, 2) + '\n');
  else process.stdout.write(u.was_drained ? `host ${host} undrained: new ranks may go there again\n` : `host ${host} was not drained: nothing changed\n`);
  return 0;
}
