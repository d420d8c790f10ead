// What the launcher-hook tests share: a launcher (mpiexec, srun) or a lone
// `ferry rank-exec` run as a child whose output is watched, and the jobs and
// events the coordinator made of its launch.
import { spawn } from 'node:child_process';
import { expect } from 'vitest';
import type { FerryResult, TestCluster } from './cluster.js';

export const LAUNCH_TIMEOUT_MS = 300_000;

export interface Launched {
  pid: number;
  /** What it wrote to stdout so far. */
  stdout: () => string;
  stderr: () => string;
  done: Promise<FerryResult>;
}

export interface JobJson {
  id: string;
  state: string;
  detail: string;
  worldSize: number;
  argv: string[];
  launcherSuspended: boolean;
  ranks: { rank: number; host: string; state: string; exitCode: number }[];
}

/** A rank's output lines without `ferry run`'s "[N] " tags. */
export const untagged = (out: string): string[] =>
  out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.replace(/^\[\d+\] /, ''));

/** The one line of an example's output that carries its checksum. */
export function checksumLine(out: string): string {
  const line = untagged(out).find((l) => /checksum=0x[0-9a-f]{16}/.test(l));
  if (!line) throw new Error(`no checksum line in:\n${out}`);
  return line;
}

/** Launch helpers bound to the test file's cluster (a getter: the cluster starts in beforeAll). */
export function launcherTools(cluster: () => TestCluster) {
  /**
   * ARGV as a child, the coordinator's address and the cluster key in its environment, killed after
   * LAUNCH_TIMEOUT_MS; `input`, if given, on its standard input (a pipe, then closed).
   */
  function launch(argv: string[], env: NodeJS.ProcessEnv, input?: string): Launched {
    const c = cluster();
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, FERRY_COORDINATOR: c.coordinatorAddress, FERRY_KEY: c.keyFile, ...env },
    });
    if (input !== undefined) child.stdin!.end(input);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), LAUNCH_TIMEOUT_MS); // a hang shows as code null
    const done = new Promise<FerryResult>((resolve) =>
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      }),
    );
    return { pid: child.pid!, stdout: () => stdout, stderr: () => stderr, done };
  }

  async function jobs(): Promise<JobJson[]> {
    const r = await cluster().ferry(['jobs', '--all', '--json']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout);
  }

  async function jobIds(): Promise<Set<string>> {
    return new Set((await jobs()).map((j) => j.id));
  }

  /** The one job started since `before` (job ids seen then). */
  async function newJob(before: Set<string>): Promise<JobJson> {
    let found: JobJson[] = [];
    await cluster().waitFor(async () => (found = (await jobs()).filter((j) => !before.has(j.id))).length > 0, 'the launched job');
    expect(found).toHaveLength(1);
    return found[0]!;
  }

  async function job(id: string): Promise<JobJson> {
    const j = (await jobs()).find((x) => x.id === id);
    if (!j) throw new Error(`no job ${id}`);
    return j;
  }

  async function events(jobId: string): Promise<{ kind: string; message: string }[]> {
    const r = await cluster().ferry(['events', '--job', jobId, '--json', '--limit', '1000']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout);
  }

  return { launch, jobs, jobIds, newJob, job, events };
}
