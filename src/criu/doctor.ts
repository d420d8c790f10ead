import { statfsSync } from 'node:fs';
import { hostname } from 'node:os';
import { type CriuCandidate, type CriuInstall, criuCheck, findCriuCandidates } from './criu-install.js';
import { runCommand } from './run-command.js';

// What `ferry doctor` found on this node: plain data, printed as a table or as JSON.
export interface DoctorReport {
  host: string;
  // True when every essential check passed (checkpoints work on this node).
  ok: boolean;
  criu: {
    found: boolean;
    command?: string;
    version?: string;
    source?: CriuInstall['source'];
    // Every place looked at, working or not.
    candidates: CriuCandidate[];
  };
  checks: DoctorCheck[];
}

export interface DoctorCheck {
  name: string;
  ok: boolean;
  // Essential checks make checkpointing impossible when they fail; the others
  // only take away an optional capability (shown as "off").
  essential: boolean;
  detail: string;
  // What does not work on this node because this check failed (only when !ok).
  prevents?: string;
}

const NAMESPACE_PROBE_TIMEOUT_MS = 10_000;

// What each check failing takes away, in the operator's terms.
const PREVENTS: Record<string, string> = {
  root: 'CRIU and namespaces need root: no checkpoints, no ranks in their own PID namespace, no namespace test hosts',
  'criu found': 'no checkpoint, restart or migration on this node (the control plane still works)',
  'criu check': 'CRIU cannot dump or restore here: no checkpoint, restart or migration on this node',
  'criu uffd': 'no lazy (post-copy) restore: a restored rank waits for all of its memory first',
  'criu mem_dirty_track': 'no iterative pre-copy migration; full dumps only (a rank is frozen for its whole dump)',
  // CRIU restores a tree into a new time namespace whose clocks go on from their values at the dump.
  'criu timens': "a restored rank's monotonic clock jumps: by the time it was stopped, or to its new host's uptime (backwards as often as not)",
  // CRIU (as root) keeps what it learnt of the kernel in /run/criu.kdat, but only on a tmpfs.
  'criu kernel cache':
    'CRIU probes the kernel again at every dump and every restore: about 20 ms of a 30 ms dump of an idle process, 20-50 ms of each of 4 parallel 64 MiB dumps (CRIU 4.1). ' +
    "A checkpoint's dumps are started ahead of time and keep it out of the pause (unless FERRY_WARM_DUMPS=0); a restore (restart, migration) pays it (docs/checkpoint-protocol.md, \"Dumps started ahead of time\")",
  'pid namespace': 'ranks cannot run as PID 1 of their own PID namespace, so an image cannot be restored where its PIDs are taken',
  'network namespace': 'no namespace hosts: the multi-host test cluster cannot run on this node',
};

async function probeCommand(name: string, command: string, args: string[]): Promise<DoctorCheck> {
  const r = await runCommand(command, args, { timeoutMs: NAMESPACE_PROBE_TIMEOUT_MS });
  const ok = r.code === 0;
  const output = r.spawnError ?? (r.stderr.trim() || r.stdout.trim());
  return check(name, ok, ok ? `${command} ${args.join(' ')}: ok` : `${command} ${args.join(' ')}: ${output || `exit ${r.code}`}`);
}

const OPTIONAL_CHECKS = new Set(['criu uffd', 'criu mem_dirty_track', 'criu timens', 'criu kernel cache', 'network namespace']);

const TMPFS_MAGIC = 0x01021994;
/** Where a CRIU run as root keeps its kernel probe (its KDAT_RUNDIR), and only on a tmpfs. */
const CRIU_KDAT_DIR = '/run';

function kernelCacheCheck(): DoctorCheck {
  let type: number;
  try {
    type = statfsSync(CRIU_KDAT_DIR).type;
  } catch (e) {
    return check('criu kernel cache', false, `cannot stat ${CRIU_KDAT_DIR}: ${(e as Error).message}`);
  }
  return type === TMPFS_MAGIC
    ? check('criu kernel cache', true, `${CRIU_KDAT_DIR} is a tmpfs: CRIU keeps its kernel probe in ${CRIU_KDAT_DIR}/criu.kdat`)
    : check('criu kernel cache', false, `${CRIU_KDAT_DIR} is not a tmpfs (filesystem type 0x${type.toString(16)}): CRIU keeps no ${CRIU_KDAT_DIR}/criu.kdat`);
}

function check(name: string, ok: boolean, detail: string): DoctorCheck {
  const essential = !OPTIONAL_CHECKS.has(name);
  return ok ? { name, ok, essential, detail } : { name, ok, essential, detail, prevents: PREVENTS[name] ?? 'unknown' };
}

function firstLine(text: string): string {
  return text.split('\n').find((l) => l.trim().length > 0)?.trim() ?? '';
}

export async function runDoctor(): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  checks.push(check('root', isRoot, isRoot ? 'running as root' : `running as uid ${process.getuid?.() ?? '?'}`));

  const candidates = await findCriuCandidates(true);
  const working = candidates.find((c) => c.working);
  const present = working ?? candidates.find((c) => c.found);
  if (working) {
    checks.push(check('criu found', true, `CRIU ${working.version} (${working.source}) ${working.command}`));
  } else if (present) {
    checks.push(check('criu found', false, `only a CRIU that does not work: ${present.version ?? '?'} (${present.source}) ${present.command}`));
  } else {
    checks.push(check('criu found', false, 'no CRIU in FERRY_CRIU, on PATH or in the cache (`npm run setup` provisions one)'));
  }

  if (present) {
    checks.push(check('criu check', present.working, present.detail));
    const install = { command: present.command };
    for (const feature of ['uffd', 'mem_dirty_track', 'timens']) {
      const r = await criuCheck(install, feature);
      checks.push(check(`criu ${feature}`, r.ok, firstLine(r.detail) || (r.ok ? 'supported' : 'not supported')));
    }
  } else {
    for (const name of ['criu check', 'criu uffd', 'criu mem_dirty_track', 'criu timens']) checks.push(check(name, false, 'not run: no CRIU'));
  }
  checks.push(kernelCacheCheck());

  checks.push(await probeCommand('pid namespace', 'unshare', ['--pid', '--fork', 'true']));
  checks.push(await probeCommand('network namespace', 'unshare', ['--net', 'true']));

  return {
    host: hostname(),
    ok: checks.every((c) => c.ok || !c.essential),
    criu: {
      found: working !== undefined,
      ...(working ? { command: working.command, version: working.version, source: working.source } : {}),
      candidates,
    },
    checks,
  };
}

// A human table: one row per check, then what each failure prevents.
export function formatDoctor(report: DoctorReport): string {
  const nameWidth = Math.max(5, ...report.checks.map((c) => c.name.length));
  const lines = [`ferry doctor on ${report.host}`, `${'CHECK'.padEnd(nameWidth)}  STATUS  DETAIL`];
  for (const c of report.checks) {
    lines.push(`${c.name.padEnd(nameWidth)}  ${(c.ok ? 'ok' : c.essential ? 'FAIL' : 'off').padEnd(6)}  ${c.detail.split('\n').join(' | ')}`);
  }
  const failed = report.checks.filter((c) => !c.ok);
  if (failed.length === 0) {
    lines.push('', 'Everything Ferry uses works on this node.');
  } else {
    lines.push('', 'What will not work:');
    for (const c of failed) lines.push(`- ${c.name}: ${c.prevents}`);
  }
  if (report.criu.candidates.length > 0) {
    lines.push('', 'CRIU looked for in:');
    for (const c of report.criu.candidates) {
      lines.push(`- ${c.source} ${c.command}: ${c.working ? 'works' : 'does not work'} (${c.detail})`);
    }
  }
  return lines.join('\n');
}
