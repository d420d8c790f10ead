// lone-steps jobs (examples/lone-steps.c: ranks that compute outside MPI,
// printing "step N" every 25 steps and appending to their own files) in a test
// cluster of the end-to-end tests: the uninterrupted run to compare with, the
// files the ranks write, and waits on what rank 0 printed.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { FerryResult, TestCluster } from './cluster.js';
import { buildExample, checksumLine } from './e2e-run.js';

/** lone-steps prints a "step N" line every this many steps. */
const STEPS_PER_LINE = 25;

export class LoneStepsJobs {
  private program = '';
  private referenceRun: Promise<string> | undefined;

  constructor(
    private readonly c: () => TestCluster,
    /** The steps each job runs (20 ms each). */
    private readonly steps: string,
    private readonly timeoutMs: number,
  ) {}

  /** Builds the program (in the cluster's beforeAll). */
  build(): void {
    this.program = buildExample(this.c(), 'lone-steps');
  }

  /** `ferry run` of a 2-rank job on `hosts`, with `options` before the program. */
  run(jobId: string, hosts: string, options: string[] = []): Promise<FerryResult> {
    mkdirSync(join(this.c().tempDir, 'outputs'), { recursive: true });
    return this.c().ferry(['run', '-n', '2', '--hosts', hosts, '--job-id', jobId, ...options, this.program, this.steps, this.prefix(jobId)], { timeoutMs: this.timeoutMs });
  }

  /** The uninterrupted run's output, on host1 (run once). */
  reference(): Promise<string> {
    this.referenceRun ??= (async () => {
      const r = await this.run('ref', 'host1');
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    })();
    return this.referenceRun;
  }

  /**
   * `done` (the job's `ferry run`) ended 0 with the uninterrupted run's output bit for bit (its checksum line
   * first, for a clearer failure), and the job's files are the uninterrupted run's.
   */
  async expectUninterrupted(done: FerryResult, jobId: string): Promise<void> {
    const reference = await this.reference();
    expect(done.code, `${done.stderr}\n${this.c().logTails(30)}`).toBe(0);
    expect(checksumLine(done.stdout, this.c().logTails(20))).toBe(checksumLine(reference));
    expect(done.stdout).toBe(reference);
    const expected = this.files('ref');
    for (const [i, bytes] of this.files(jobId).entries()) expect(bytes.equals(expected[i]!), `output file ${i}`).toBe(true);
  }

  /** The files the job's ranks wrote. */
  files(jobId: string): Buffer[] {
    return [0, 1].map((r) => readFileSync(`${this.prefix(jobId)}.${r}`));
  }

  /** Rank 0's log on `host`. */
  log(host: string, jobId: string): string {
    return join(this.c().tempDir, 'hosts', host, 'logs', jobId, 'rank-0.out');
  }

  /** Until `file` has `text` (polled every 5 ms). */
  async untilPrinted(file: string, text: string): Promise<void> {
    for (const start = Date.now(); Date.now() - start < this.timeoutMs; await new Promise((r) => setTimeout(r, 5))) {
      if (existsSync(file) && readFileSync(file, 'utf8').includes(text)) return;
    }
    throw new Error(`${file} did not get ${JSON.stringify(text)}`);
  }

  /** Until `file` has the "step N" line after the last it has now. */
  async untilNextStep(file: string): Promise<void> {
    const last = existsSync(file) ? /step (\d+)\n$/.exec(readFileSync(file, 'utf8'))?.[1] : undefined;
    await this.untilPrinted(file, `step ${last === undefined ? 0 : Number(last) + STEPS_PER_LINE}\n`);
  }

  private prefix(jobId: string): string {
    return join(this.c().tempDir, 'outputs', jobId);
  }
}
