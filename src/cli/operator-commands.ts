// `ferry status | hosts | jobs | job | events`: ask the coordinator, print a
// table (or --json).
import { HostState, JobState, type EventInfo, type HostInfo, type JobInfo } from '../gen/proto.js';
import { checkTcpAddress, intOpt, onePositional, opt, parseArgs, type OptionSpec, type ParsedArgs } from './args.js';
import { DEFAULT_COORDINATOR, OperatorClient } from './operator-client.js';
import { EVENTS_FOLLOW_HEADER, eventLine, followEvents } from './events-follower.js';
import { formatAgo, formatTable, formatTime } from './table.js';

export const COMMON_OPERATOR_OPTIONS: Record<string, OptionSpec> = { coordinator: { value: true }, json: {} };

export function coordinatorAddress(cmd: string, p: ParsedArgs): string {
  return checkTcpAddress(cmd, opt(p, 'coordinator') ?? process.env.FERRY_COORDINATOR ?? DEFAULT_COORDINATOR);
}

export async function withClient<T>(address: string, fn: (c: OperatorClient) => Promise<T>): Promise<T> {
  const client = new OperatorClient(address);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

const hostStateName = (s: HostState) => (s === HostState.HOST_UP ? 'up' : s === HostState.HOST_DOWN ? 'down' : 'unknown');
export const jobStateName = (s: JobState) => (JobState[s] ?? 'JOB_STATE_UNKNOWN').replace(/^JOB_(STATE_)?/, '').toLowerCase();

function hostJson(h: HostInfo) {
  return {
    name: h.name,
    address: h.address,
    state: hostStateName(h.state),
    cpus: h.cpus,
    criuVersion: h.criu_version,
    criuCheckOk: h.criu_check_ok,
    criuCheckDetail: h.criu_check_detail,
    registeredMs: h.registered_ms,
    lastHeartbeatMs: h.last_heartbeat_ms,
    runningRanks: h.running_ranks,
    drainedMs: Number(h.drained_ms) || null,
    drainReason: h.drain_reason,
  };
}

export function jobJson(j: JobInfo) {
  return {
    id: j.id,
    state: jobStateName(j.state),
    worldSize: j.world_size,
    argv: j.argv,
    createdMs: j.created_ms,
    endedMs: j.ended_ms,
    exitCode: j.exit_code,
    detail: j.detail,
    keepEpochs: j.keep_epochs,
    autoRestarts: j.auto_restarts,
    autoRestartDue: j.auto_restart_due,
    imageReplicas: j.image_replicas,
    ownImageReplicas: j.own_image_replicas,
    hosts: j.hosts,
    launcherSuspended: j.launcher_suspended,
    ranks: j.ranks.map((r) => ({ rank: r.rank, host: r.host, pid: r.pid, endpoint: r.endpoint, state: r.state, exitCode: r.exit_code, signal: r.signal })),
  };
}

function eventJson(e: EventInfo) {
  return { seq: e.seq, timeMs: e.time_ms, kind: e.kind, host: e.host, jobId: e.job_id, message: e.message };
}

const out = (s: string) => process.stdout.write(s);

export async function operatorCommand(name: string, argv: string[]): Promise<number> {
  const cmd = `ferry ${name}`;
  switch (name) {
    case 'status': {
      const p = parseArgs(cmd, argv, COMMON_OPERATOR_OPTIONS);
      const addr = coordinatorAddress(cmd, p);
      const { s, hosts } = await withClient(addr, async (c) => ({
        s: (await c.request({ cluster_status: {} })).cluster_status!,
        hosts: (await c.request({ hosts: {} })).hosts!.hosts,
      }));
      if (p.options.has('json')) {
        out(
          JSON.stringify(
            {
              coordinator: addr,
              instance: s.coordinator_instance,
              startedMs: s.started_ms,
              version: s.version,
              hostsUp: s.hosts_up,
              hostsDown: s.hosts_down,
              hostsUnknown: s.hosts_unknown,
              jobsRunning: s.jobs_running,
              ranksRunning: s.ranks_running,
              keepEpochs: s.keep_epochs,
              imageReplicas: s.image_replicas,
              clusterKey: s.cluster_key,
              hosts: hosts.map(hostJson),
            },
            null,
            2,
          ) + '\n',
        );
      } else {
        out(
          `coordinator ${addr} (instance ${s.coordinator_instance}, ferry ${s.version}, up since ${formatTime(s.started_ms)})\n` +
            `connections: ${s.cluster_key ? 'cluster key (CURVE): only holders of the key get in' : 'no cluster key: open to whoever reaches the port'}\n` +
            `hosts: ${s.hosts_up} up, ${s.hosts_down} down, ${s.hosts_unknown} not yet re-registered\n` +
            `jobs running: ${s.jobs_running}, ranks running: ${s.ranks_running}\n` +
            `checkpoints: a job keeps its ${s.keep_epochs} newest epochs unless it says otherwise; ` +
            `${s.image_replicas === 0 ? 'no copies of images on other hosts' : `${s.image_replicas} cop${s.image_replicas === 1 ? 'y' : 'ies'} of each image on other hosts`}\n\n` +
            hostsTable(hosts),
        );
      }
      return 0;
    }
    case 'hosts': {
      const p = parseArgs(cmd, argv, COMMON_OPERATOR_OPTIONS);
      const hosts = await withClient(coordinatorAddress(cmd, p), async (c) => (await c.request({ hosts: {} })).hosts!.hosts);
      out(p.options.has('json') ? JSON.stringify(hosts.map(hostJson), null, 2) + '\n' : hostsTable(hosts));
      return 0;
    }
    case 'jobs': {
      const p = parseArgs(cmd, argv, { ...COMMON_OPERATOR_OPTIONS, all: {} });
      const jobs = await withClient(coordinatorAddress(cmd, p), async (c) => (await c.request({ jobs: { all: p.options.has('all') } })).jobs!.jobs);
      if (p.options.has('json')) out(JSON.stringify(jobs.map(jobJson), null, 2) + '\n');
      else
        out(
          formatTable(
            ['JOB', 'STATE', 'RANKS', 'HOSTS', 'CREATED', 'EXIT', 'COMMAND'],
            jobs.map((j) => [
              j.id,
              jobStateName(j.state) + (j.launcher_suspended ? ', suspended' : ''),
              String(j.world_size),
              [...new Set(j.ranks.map((r) => r.host))].join(','),
              formatTime(j.created_ms),
              j.ended_ms ? String(j.exit_code) : '-',
              j.argv.join(' '),
            ]),
          ),
        );
      return 0;
    }
    case 'job': {
      const p = parseArgs(cmd, argv, COMMON_OPERATOR_OPTIONS);
      const id = onePositional(cmd, p, 'job id', 'ferry job JOB');
      const job = await withClient(coordinatorAddress(cmd, p), async (c) => (await c.request({ job: { job_id: id } })).job!.job!);
      if (p.options.has('json')) out(JSON.stringify(jobJson(job), null, 2) + '\n');
      else
        out(
          `job ${job.id}: ${jobStateName(job.state)}${job.detail ? ` (${job.detail})` : ''}\n` +
            (job.launcher_suspended ? 'suspended by its launcher (SIGTSTP, or found stopped): its ranks are stopped until the launcher continues it (SIGCONT); no checkpoint or migration meanwhile\n' : '') +
            (job.hosts.length ? `its hosts (restarts and drains keep it there): ${job.hosts.join(', ')}\n` : '') +
            (job.auto_restart_due ? 'an automatic restart from its last epoch is due\n' : '') +
            (job.auto_restarts ? `automatic restarts left: ${job.auto_restarts}\n` : '') +
            (job.image_replicas ? `copies of each committed image on other hosts: ${job.image_replicas}${job.own_image_replicas ? '' : " (the coordinator's default)"}\n` : '') +
            formatTable(
              ['RANK', 'HOST', 'PID', 'STATE', 'EXIT'],
              job.ranks.map((r) => [String(r.rank), r.host, String(r.pid), r.state, r.state === 'exited' ? r.signal || String(r.exit_code) : '-']),
            ),
        );
      return 0;
    }
    case 'events': {
      const p = parseArgs(cmd, argv, { ...COMMON_OPERATOR_OPTIONS, job: { value: true }, after: { value: true }, limit: { value: true }, follow: {} });
      if (p.options.has('follow')) return eventsFollow(cmd, p);
      const events = await withClient(coordinatorAddress(cmd, p), async (c) =>
        (
          await c.request({
            // (without --after: the newest, as an operator looking at what just happened wants them)
            events: { job_id: opt(p, 'job') ?? '', after_seq: intOpt(cmd, p, 'after', 0, 0), limit: intOpt(cmd, p, 'limit', 100), newest: !p.options.has('after') },
          })
        ).events!.events,
      );
      if (p.options.has('json')) out(JSON.stringify(events.map(eventJson), null, 2) + '\n');
      else out(formatTable(['SEQ', 'TIME', 'KIND', 'HOST', 'JOB', 'MESSAGE'], events.map((e) => [String(e.seq), formatTime(e.time_ms), e.kind, e.host || '-', e.job_id || '-', e.message])));
      return 0;
    }
    default:
      throw new Error(`unknown operator command ${name}`);
  }
}

/** `ferry events --follow`: until Ctrl-C (or SIGTERM), which ends it with status 0. */
async function eventsFollow(cmd: string, p: ParsedArgs): Promise<number> {
  const json = p.options.has('json');
  const stop = new AbortController();
  const end = () => stop.abort();
  process.on('SIGINT', end);
  process.on('SIGTERM', end);
  if (!json) out(EVENTS_FOLLOW_HEADER + '\n');
  try {
    await followEvents(
      coordinatorAddress(cmd, p),
      { jobId: opt(p, 'job') ?? '', afterSeq: intOpt(cmd, p, 'after', 0, 0), limit: intOpt(cmd, p, 'limit', 100) },
      {
        event: (e) => out((json ? JSON.stringify(eventJson(e)) : eventLine(e)) + '\n'),
        note: (line) => process.stderr.write(`${cmd}: ${line}\n`),
      },
      stop.signal,
    );
  } finally {
    process.off('SIGINT', end);
    process.off('SIGTERM', end);
  }
  return 0;
}

function hostsTable(hosts: HostInfo[]): string {
  return formatTable(
    ['HOST', 'STATE', 'ADDRESS', 'CPUS', 'RANKS', 'CRIU', 'LAST HEARD'],
    hosts.map((h) => [
      h.name,
      hostStateName(h.state) + (Number(h.drained_ms) > 0 ? `, drained${h.drain_reason ? ` (${h.drain_reason})` : ''}` : ''),
      h.address,
      String(h.cpus),
      String(h.running_ranks),
      h.criu_version ? `${h.criu_version}${h.criu_check_ok ? '' : ' (check fails)'}` : 'none',
      formatAgo(h.last_heartbeat_ms),
    ]),
  );
}
