// A CRIU dump that outlived its agent: the next agent finds it by its command
// line and its DISCARD of that image set waits for it to end. Stood in for by
// a process named criu with a dump's arguments (a real one needs a rank and
// an agent killed at the right moment; test/e2e kills agents around DUMPs).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RoundStep, type RoundRequest } from '../../src/gen/proto.js';
import { LocalRankSteps } from '../../src/agent/local-rank-steps.js';
import { findOrphanDumps } from '../../src/agent/orphan-dumps.js';
import { RankSupervisor } from '../../src/agent/rank-supervisor.js';
import { roundRequest } from '../helpers/round-request.js';

let dir: string;
const children: ChildProcess[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-orphan-dumps-'));
});

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** A process whose argv is that of `criu dump` into `imagesDir`, which writes a file there after `ms` and exits. */
function fakeDump(imagesDir: string, ms: number, verb = 'dump'): ChildProcess {
  const late = join(imagesDir, 'pages-1.img');
  // (it makes the folder again: a DISCARD that did not wait for it would find its file left behind)
  const script = `setTimeout(() => { const fs = require('fs'); fs.mkdirSync(${JSON.stringify(imagesDir)}, { recursive: true }); fs.writeFileSync(${JSON.stringify(late)}, 'x'); }, ${ms})`;
  const child = spawn(process.execPath, ['-e', script, verb, '--tree', '4242', '--images-dir', imagesDir, '--log-file', join(imagesDir, 'dump.log')], {
    argv0: 'criu',
    stdio: 'ignore',
  });
  children.push(child);
  return child;
}

const discard = (set: number, ranks: number[]): RoundRequest => roundRequest(RoundStep.DISCARD, { job_id: 'j', epoch: set, ranks, world_size: 2 });

describe('CRIU dumps left by a killed agent', () => {
  it('are found by their images folder under this agent, and nothing else is', async () => {
    const images = join(dir, 'images');
    const rankDir = join(images, 'j', '3', 'rank-0');
    mkdirSync(rankDir, { recursive: true });
    const ours = fakeDump(rankDir, 60_000);
    fakeDump(join(dir, 'other-images', 'j', '3', 'rank-0'), 60_000); // another agent's
    fakeDump(rankDir, 60_000, 'restore'); // not a dump
    await new Promise((r) => setTimeout(r, 300)); // the processes exist with their argv
    expect(findOrphanDumps(images).map((d) => [d.pid, d.setDir])).toEqual([[ours.pid, join(images, 'j', '3')]]);
  });

  it("a warm dump's are found by the image folder they have open once it went, and not while they wait", async () => {
    const images = join(dir, 'images');
    const staging = join(images, '.warm-dumps', 'h', 'j', 'rank-0-4242-1');
    const waiting = join(images, '.warm-dumps', 'h', 'j', 'rank-1-4243-2');
    mkdirSync(staging, { recursive: true });
    mkdirSync(waiting, { recursive: true });
    mkdirSync(join(images, 'j', '3'), { recursive: true });
    // As CRIU does: the images folder stays open through a descriptor.
    const holding = (folder: string) =>
      spawn(process.execPath, ['-e', `require('fs').openSync(${JSON.stringify(folder)}, 'r'); setTimeout(() => {}, 60000)`, 'dump', '--tree', '4242', '--images-dir', folder], {
        argv0: 'criu',
        stdio: 'ignore',
      });
    const went = holding(staging);
    const still = holding(waiting);
    children.push(went, still);
    const hasOpen = (pid: number, folder: string) => {
      try {
        return readdirSync(`/proc/${pid}/fd`).some((fd) => {
          try {
            return readlinkSync(`/proc/${pid}/fd/${fd}`) === folder;
          } catch {
            return false;
          }
        });
      } catch {
        return false;
      }
    };
    for (let waited = 0; !(hasOpen(went.pid!, staging) && hasOpen(still.pid!, waiting)); waited += 20) {
      if (waited > 10_000) throw new Error('the stand-ins never opened their folders');
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(findOrphanDumps(images)).toEqual([]); // both still wait
    renameSync(staging, join(images, 'j', '3', 'rank-0')); // the go
    expect(findOrphanDumps(images).map((d) => [d.pid, d.setDir])).toEqual([[went.pid, join(images, 'j', '3')]]);
  });

  it('hold a DISCARD of their image set until they end, so nothing they write is left behind', async () => {
    const images = join(dir, 'images');
    const rankDir = join(images, 'j', '3', 'rank-0');
    mkdirSync(rankDir, { recursive: true });
    writeFileSync(join(rankDir, 'core-1.img'), 'x');
    const orphan = fakeDump(rankDir, 1_000);
    await new Promise((r) => setTimeout(r, 300));
    const ranks = new RankSupervisor({ host: 'h', logsDir: join(dir, 'logs'), stateDir: join(dir, 'state'), initPath: '/nonexistent/ferry-init', agentSocketName: 'ferry-test-orphan' });
    const steps = new LocalRankSteps({ host: 'h', imagesDir: images, ranks, criu: null });
    const exited = new Promise((r) => orphan.once('exit', r));
    await steps.run(discard(3, [0]));
    await exited;
    // The DISCARD waited for the dump's last write, then removed the set: nothing is left.
    expect(existsSync(join(images, 'j', '3'))).toBe(false);
  });
});
