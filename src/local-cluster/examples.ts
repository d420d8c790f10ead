// The examples (examples/*.c) on a local cluster: built with `ferry mpicc`,
// and judged by the checksum line each prints at its end, in rank 0's output
// on whichever host it ended.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../protocol/proto-root.js';
import { FERRY_CLI, type TestCluster } from './local-cluster.js';

/**
 * Builds examples/NAME.c with `ferry mpicc` into the cluster's bin directory (the runs are compared bit for
 * bit: no FMA contraction); the path. `flags` go to the compiler too, and the binary is named `as`.
 */
export function buildExample(c: TestCluster, name: string, options: { flags?: string[]; as?: string } = {}): string {
  const bin = join(c.tempDir, 'bin');
  mkdirSync(bin, { recursive: true });
  const out = join(bin, options.as ?? name);
  const source = join(packageRoot(), 'examples', `${name}.c`);
  execFileSync(process.execPath, [FERRY_CLI, 'mpicc', '-O2', '-ffp-contract=off', ...(options.flags ?? []), '-o', out, source], { stdio: ['ignore', 'inherit', 'inherit'] });
  return out;
}

/** The `NAME: ... checksum=0x...` line of an example's output, without its `[rank]` tag; `context` goes into the error. */
export function checksumLine(out: string, context = ''): string {
  const line = out.split('\n').find((l) => /checksum=0x[0-9a-f]{16}/.test(l));
  if (!line) throw new Error(`no checksum line in:\n${out}${context ? `\n${context}` : ''}`);
  return line.replace(/^\[\d+\] /, '');
}

/** Rank 0's output of a job, from the logs of every host it ran on. */
export function rank0Output(c: TestCluster, jobId: string): string {
  return c.hosts
    .map((h) => join(h.logsDir, jobId, 'rank-0.out'))
    .filter(existsSync)
    .map((f) => readFileSync(f, 'utf8'))
    .join('');
}
