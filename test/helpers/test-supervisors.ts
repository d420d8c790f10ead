// Real RankSupervisors (ranks under ferry-init, in their own PID namespaces)
// sharing one temporary state directory, as agents started one after another
// on a host do; and their end, also when a test fails: every rank killed, the
// folder removed once the last has ended.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { RankSupervisor, type RankSupervisorOptions } from '../../src/agent/rank-supervisor.js';

export const FERRY_INIT = resolve('build', 'bin', 'ferry-init');

export class TestSupervisors {
  /** The temporary directory: logs/ and state/ (the rank table) under it. */
  dir = '';
  private readonly made: RankSupervisor[] = [];

  constructor(
    /** Names the directory and the agent socket. */
    private readonly name: string,
    /** The jobs whose ranks end() kills. */
    private readonly jobs: string[] = ['j'],
  ) {}

  /** In a beforeEach. */
  begin(): void {
    this.dir = mkdtempSync(join(tmpdir(), `ferry-test-${this.name}-`));
  }

  /** A supervisor on the shared state directory (the next agent, after the one before). */
  make(options: Partial<RankSupervisorOptions> = {}): RankSupervisor {
    const s = new RankSupervisor({
      host: 'h',
      logsDir: join(this.dir, 'logs'),
      stateDir: join(this.dir, 'state'),
      initPath: FERRY_INIT,
      agentSocketName: `ferry-test-${this.name}-${process.pid}`,
      ...options,
    });
    this.made.push(s);
    return s;
  }

  /** In an afterEach: kills every rank, waits for their ends (the table is written as they come), removes the folder. */
  async end(): Promise<void> {
    const all = this.made.splice(0);
    for (const s of all) for (const job of this.jobs) s.signalJob(job, 'SIGKILL');
    for (let i = 0; i < 250 && all.some((s) => s.running().length > 0); i++) await new Promise((r) => setTimeout(r, 20));
    for (const s of all) s.close();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
