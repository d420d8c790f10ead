// Test harness for the rank runtime: builds libferrympi and small C programs,
// runs a RankChannelServer in the test process on a unique abstract name, and
// starts N rank processes on loopback with the env an agent would give them.
// The endpoint table of a job is sent once every rank has said hello (again
// after each resume), with address 127.0.0.1 and the ports from the hellos.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RankChannelServer, type RankInfo } from '../../src/agent/rank-channel.js';
import { packageRoot } from '../../src/protocol/proto-root.js';
import { afterAll, afterEach, beforeAll } from 'vitest';

export const ROOT = packageRoot();
export const BUILD_DIR = join(ROOT, 'build');

let built = false;
/** Builds the library (make is incremental). */
export function buildRuntime(): void {
  if (built) return;
  execFileSync('make', ['-s', '-C', join(ROOT, 'src', 'runtime'), `BUILD_DIR=${BUILD_DIR}`], { stdio: 'inherit' });
  built = true;
}

/** Compiles test/runtime/programs/NAME.c against the library into dir; returns the binary path. */
export function compileProgram(name: string, dir: string): string {
  buildRuntime();
  const out = join(dir, name);
  execFileSync('gcc', [
    '-O2', '-g', '-Wall', '-Werror', join(ROOT, 'test', 'runtime', 'programs', `${name}.c`),
    '-I', join(BUILD_DIR, 'include'), join(BUILD_DIR, 'lib', 'libferrympi.a'), '-lpthread', '-o', out,
  ], { stdio: 'inherit' });
  return out;
}

/**
 * Compiles test/runtime/programs/NAME.c together with the runtime's sources
 * built with another channel version (FMPI_WIRE_VERSION): a program linked
 * with another build of libferrympi.
 */
export function compileWithWireVersion(name: string, dir: string, version: number): string {
  buildRuntime(); // generates src/runtime/gen
  const src = join(ROOT, 'src', 'runtime');
  const sources = readdirSync(src).filter((f) => f.endsWith('.c')).map((f) => join(src, f));
  const out = join(dir, `${name}-wire${version}`);
  execFileSync('gcc', [
    '-O1', '-pthread', '-std=gnu11', `-DFMPI_WIRE_VERSION=${version}`, '-I', src, '-I', join(src, 'gen'),
    ...sources, join(src, 'gen', 'rank-proto.c'), join(ROOT, 'test', 'runtime', 'programs', `${name}.c`), '-o', out,
  ], { stdio: 'inherit' });
  return out;
}

export interface RankResult {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The ranks of one job, their output and their exits. */
export class RankJob {
  readonly procs: ChildProcess[] = [];
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly exits: Promise<RankResult>[] = [];
  readonly hellos: RankInfo[][] = [];
  private waiting = new Map<number, RankInfo>();
  /** ranks past MPI_Finalize: they never say hello again, their last endpoint stays in the table */
  private readonly finalized = new Set<number>();
  private readonly lastPort = new Map<number, number>();
  private readonly onHello = (info: RankInfo) => this.hello(info);
  private readonly onFinalized = (jobId: string, rank: number) => {
    if (jobId !== this.jobId) return;
    this.finalized.add(rank);
    this.sendTableIfComplete();
  };

  constructor(
    readonly server: RankChannelServer,
    readonly socketName: string,
    readonly jobId: string,
    readonly size: number,
  ) {
    server.on('hello', this.onHello);
    server.on('finalized', this.onFinalized);
  }

  /** `program`: one for every rank, or each rank's own. */
  start(program: string | ((rank: number) => string), args: string[] = [], extraEnv: Record<string, string> = {}): void {
    for (let rank = 0; rank < this.size; rank++) {
      this.stdout.push('');
      this.stderr.push('');
      const p = spawn(typeof program === 'string' ? program : program(rank), args, {
        env: {
          ...process.env,
          ...extraEnv,
          FERRY_JOB_ID: this.jobId,
          FERRY_RANK: String(rank),
          FERRY_SIZE: String(this.size),
          FERRY_AGENT_SOCKET: this.socketName,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      p.stdout!.on('data', (d: Buffer) => (this.stdout[rank] += d.toString()));
      p.stderr!.on('data', (d: Buffer) => (this.stderr[rank] += d.toString()));
      // 'close', not 'exit': output still in the pipes has been read by then
      this.exits.push(new Promise((resolve) => p.on('close', (code, signal) => resolve({ code, signal }))));
      this.procs.push(p);
    }
  }

  private hello(info: RankInfo): void {
    if (info.jobId !== this.jobId) return;
    this.waiting.set(info.rank, info);
    this.sendTableIfComplete();
  }

  /** Sends the table once every rank that will say hello has done so. */
  private sendTableIfComplete(): void {
    if (this.waiting.size === 0) return;
    for (let r = 0; r < this.size; r++) if (!this.waiting.has(r) && !this.finalized.has(r)) return;
    const round = [...this.waiting.values()].sort((a, b) => a.rank - b.rank);
    this.waiting = new Map();
    this.hellos.push(round);
    for (const h of round) this.lastPort.set(h.rank, h.listenPort);
    const endpoints = [...Array(this.size).keys()].map((rank) => ({ rank, address: '127.0.0.1', port: this.lastPort.get(rank)! }));
    this.server.sendEndpoints(this.jobId, endpoints);
  }

  /** Resolves when every rank has exited. */
  async wait(): Promise<RankResult[]> {
    return Promise.all(this.exits);
  }

  /** Resolves once rank's stdout contains text. */
  async waitForOutput(rank: number, text: string): Promise<void> {
    while (!this.stdout[rank].includes(text)) {
      const p = this.procs[rank];
      if (p.exitCode !== null || p.signalCode !== null) {
        throw new Error(`rank ${rank} exited before printing '${text}': ${this.stderr[rank]}`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /**
   * The sockets rank `rank` holds (see sockets()). A rank that is gone fails the
   * test with how it ended and what it printed on stderr, not with a bare ENOENT.
   */
  socketsOf(rank: number): string[] {
    const p = this.procs[rank];
    if (!existsSync(`/proc/${p.pid}/fd`)) {
      throw new Error(`rank ${rank} (pid ${p.pid}) is gone (exit ${p.exitCode}, signal ${p.signalCode}); its stderr: ${this.stderr[rank] || '(nothing)'}; its stdout: ${JSON.stringify(this.stdout[rank])}`);
    }
    return sockets(p.pid!);
  }

  /** Wakes every flushed rank (SIGUSR2). */
  resumeAll(): void {
    for (const p of this.procs) RankChannelServer.resume(p.pid!);
  }

  /**
   * Awaits `step`, or fails after `ms` naming the step and what each rank is
   * doing: its state, its threads' stacks (when gdb is installed) and its
   * stderr. A stalled step then says where it stalled, not only that the
   * test's timeout passed.
   */
  async within<T>(label: string, step: Promise<T>, ms = 30_000): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`job ${this.jobId}: ${label} did not finish in ${ms} ms\n${this.describe()}`)), ms);
    });
    try {
      return await Promise.race([step, stalled]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Each rank's process state, threads' stacks and stderr, for a failure message. */
  describe(): string {
    return this.procs.map((p, rank) => {
      const head = `--- rank ${rank} (pid ${p.pid})`;
      if (p.exitCode !== null || p.signalCode !== null) return `${head}: exited (code ${p.exitCode}, signal ${p.signalCode}); stderr: ${this.stderr[rank]}`;
      let state = '?';
      try {
        state = readFileSync(`/proc/${p.pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('State:')) ?? '?';
      } catch {
        // gone meanwhile
      }
      return `${head}: ${state}; sockets: ${this.socketsOrGone(rank)}\nstderr: ${this.stderr[rank] || '(nothing)'}\n${stacks(p.pid!)}`;
    }).join('\n');
  }

  private socketsOrGone(rank: number): string {
    try {
      return this.socketsOf(rank).length.toString();
    } catch {
      return 'gone';
    }
  }

  kill(): void {
    this.server.off('hello', this.onHello);
    this.server.off('finalized', this.onFinalized);
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
}

/** The stacks of every thread of a process, from gdb; empty when gdb is not installed or fails. */
function stacks(pid: number): string {
  try {
    return execFileSync('gdb', ['-p', String(pid), '-batch', '-nx', '-ex', 'thread apply all bt'], {
      encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'ignore'],
    }).split('\n').filter((l) => /^(Thread|#)/.test(l)).join('\n');
  } catch {
    return '';
  }
}

/** Resolves once cond() holds (checked every few milliseconds; the test's own timeout bounds it). */
export async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

let counter = 0;
/** A unique abstract socket name for this test process. */
export function uniqueSocketName(): string {
  return `ferry-test-rank-${process.pid}-${Date.now()}-${counter++}`;
}

export function makeTempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-runtime-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The sockets a process holds (from /proc/PID/fd), apart from stdio: Node's
 * spawn connects a child's stdio through socket pairs, where an agent uses files. */
export function sockets(pid: number): string[] {
  const found: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    if (Number(fd) <= 2) continue;
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target.startsWith('socket:')) found.push(`fd ${fd}: ${target}`);
    } catch {
      // fd closed meanwhile
    }
  }
  return found;
}

/** What useRankRuntime gives a test file. */
export interface RankRuntime {
  /** The temp directory the programs were compiled into (removed after the file). */
  readonly dir: string;
  /** The stand-in agent's rank channel (set in beforeAll). */
  readonly server: RankChannelServer;
  readonly socketName: string;
  /** The path of a program named to useRankRuntime. */
  program(name: string): string;
  /** A job through the server; killed after the test. */
  job(jobId: string, size: number): RankJob;
  /** A job made by the test itself (another server): killed after the test too. */
  track(job: RankJob): RankJob;
}

/**
 * The setup every runtime test file needs, as vitest hooks (call it inside a
 * describe): a temp directory with `programs` compiled into it, a rank
 * channel server standing in for the agent, and the jobs started through it
 * killed after each test, all removed after the file, also on failure.
 */
export function useRankRuntime(...programs: string[]): RankRuntime {
  const tmp = makeTempDir();
  const built = new Map<string, string>();
  const jobs: RankJob[] = [];
  let server: RankChannelServer | undefined;
  const socketName = uniqueSocketName();
  beforeAll(async () => {
    for (const name of programs) built.set(name, compileProgram(name, tmp.dir));
    server = new RankChannelServer({ socketName });
    await server.listen();
  });
  afterEach(() => {
    for (const j of jobs.splice(0)) j.kill();
  });
  afterAll(async () => {
    tmp.remove();
    await server?.close(); // undefined when beforeAll failed
  });
  return {
    dir: tmp.dir,
    get server() {
      if (!server) throw new Error('the rank channel server is not up (beforeAll failed?)');
      return server;
    },
    socketName,
    program(name) {
      const path = built.get(name);
      if (!path) throw new Error(`program ${name} was not named to useRankRuntime`);
      return path;
    },
    job(jobId, size) {
      return this.track(new RankJob(this.server, socketName, jobId, size));
    },
    track(job) {
      jobs.push(job);
      return job;
    },
  };
}
