// What the end-to-end tests share: examples built with ferry mpicc, the
// checksum line an example prints (rank tag removed), and ferry commands that
// must succeed.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { FERRY_CLI, type TestCluster } from './cluster.js';

/** The `NAME: ... checksum=0x...` line of an example's output, without its `[rank]` tag; `context` goes into the error. */
export function checksumLine(out: string, context = ''): string {
  const line = out.split('\n').find((l) => /checksum=0x[0-9a-f]{16}/.test(l));
  if (!line) throw new Error(`no checksum line in:\n${out}${context ? `\n${context}` : ''}`);
  return line.replace(/^\[\d+\] /, '');
}

/** A `ferry ARGS` on `c` that must exit 0 (else the test fails with its stderr and the daemons' logs); its stdout. */
export function ferryOkOn(c: () => TestCluster, timeoutMs: number): (args: string[]) => Promise<string> {
  return async (args) => {
    const r = await c().ferry(args, { timeoutMs });
    expect(r.code, `ferry ${args.join(' ')}: ${r.stderr}\n${c().logTails(20)}`).toBe(0);
    return r.stdout;
  };
}

/**
 * Builds examples/NAME.c with `ferry mpicc` into the cluster's bin directory (as the e2e runs compare bit
 * for bit: no FMA contraction); the path. `flags` go to the compiler too, and the binary is named `as`.
 */
export function buildExample(c: TestCluster, name: string, options: { flags?: string[]; as?: string } = {}): string {
  const bin = join(c.tempDir, 'bin');
  mkdirSync(bin, { recursive: true });
  const out = join(bin, options.as ?? name);
  execFileSync(process.execPath, [FERRY_CLI, 'mpicc', '-O2', '-ffp-contract=off', ...(options.flags ?? []), '-o', out, `examples/${name}.c`], { stdio: 'inherit' });
  return out;
}
