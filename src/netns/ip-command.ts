// Runs iproute2's `ip` (and finds the pieces a namespace host needs), with
// errors that say what is missing instead of a bare ENOENT or EPERM.
import { spawn, spawnSync } from 'node:child_process';
import { ErrorCode } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';

const trace = tracer('netns');

const IP_COMMAND_TIMEOUT_MS = 30_000;

let checked = false;

// Fails with one clear line when namespace hosts cannot be made here:
// not root, or `ip` / `nsenter` missing.
export function assertNamespaceHostsUsable(): void {
  if (checked) return;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new FerryError(
      ErrorCode.UNSUPPORTED,
      'namespace hosts need root (CAP_NET_ADMIN to create network namespaces, veth pairs and a bridge); run as root',
    );
  }
  for (const [tool, args, pkg] of [
    ['ip', ['-V'], 'iproute2'],
    ['nsenter', ['--version'], 'util-linux'],
  ] as const) {
    const r = spawnSync(tool, [...args], { encoding: 'utf8' });
    if (r.error) {
      throw new FerryError(ErrorCode.UNSUPPORTED, `'${tool}' not found on PATH (package ${pkg}): namespace hosts cannot be created`);
    }
  }
  checked = true;
}

function describe(args: readonly string[], input: string | undefined): string {
  return `ip ${args.join(' ')}${input ? ` <<< ${JSON.stringify(input.trim().split('\n').slice(0, 3).join('; '))}` : ''}`;
}

// Runs `ip ARGS` (with INPUT on stdin, for `-batch -`) and resolves with stdout.
export function runIp(args: readonly string[], input?: string): Promise<string> {
  trace(describe(args, input));
  return new Promise((resolve, reject) => {
    const child = spawn('ip', [...args], { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], timeout: IP_COMMAND_TIMEOUT_MS });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', (err) => reject(new FerryError(ErrorCode.INTERNAL, `${describe(args, input)} failed: ${err.message}`)));
    child.once('close', (code, signal) => {
      if (code === 0) resolve(stdout);
      else reject(new FerryError(ErrorCode.INTERNAL, `${describe(args, input)} failed: ${stderr.trim() || `exit ${code ?? signal}`}`));
    });
    if (input !== undefined) {
      // ip reads the whole batch; an early exit (bad command) closes the pipe first
      child.stdin!.on('error', () => {});
      child.stdin!.end(input);
    }
  });
}

export interface IpResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

// Synchronous form, for clean-up from a process 'exit' handler. Never throws.
export function runIpSync(args: readonly string[], input?: string): IpResult {
  trace(`${describe(args, input)} (sync)`);
  const r = spawnSync('ip', [...args], { encoding: 'utf8', input: input ?? '', timeout: IP_COMMAND_TIMEOUT_MS });
  return { ok: !r.error && r.status === 0, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}

// Names of the network namespaces under /run/netns (`ip netns list` adds "(id: N)").
export function parseNetnsList(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name.length > 0);
}

// Interface names in the current namespace, from `ip -j link show`.
export function parseLinkNames(jsonStdout: string): string[] {
  const links = JSON.parse(jsonStdout || '[]') as { ifname?: string }[];
  return links.map((l) => l.ifname ?? '').filter((n) => n.length > 0);
}

// PIDs of every process whose network namespace is NETNS (`ip netns pids`).
export function parsePids(stdout: string): number[] {
  return stdout
    .split('\n')
    .map((s) => Number.parseInt(s.trim(), 10))
    .filter((n) => Number.isInteger(n) && n > 0);
}
