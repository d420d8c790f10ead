// CRIU dumps that outlived their agent. An agent killed in the middle of a
// DUMP leaves its CRIU running (a child does not die with its parent), and
// that CRIU goes on writing into the image set. The next agent on the host
// finds such dumps by their command line, a dump into its own images
// directory, so that a DISCARD of their image set waits for them to end
// instead of removing files CRIU then writes again. A warm dump
// (src/criu/warm-dump.ts) was started for a folder under .warm-dumps that
// became the rank's at the go: it is found by the folder CRIU has open.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, dirname, isAbsolute, relative, sep } from 'node:path';
import { processAlive, processStartTicks } from './rank-process.js';

export interface OrphanDump {
  pid: number;
  startTicks: number;
  /** IMAGES/JOB/SET: the image set it writes into. */
  setDir: string;
}

/** Running `criu dump` processes whose images folder is IMAGES/JOB/SET/rank-R under `imagesDir`. */
export function findOrphanDumps(imagesDir: string): OrphanDump[] {
  const found: OrphanDump[] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return found;
  }
  for (const name of pids) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // ended meanwhile
    }
    if (!isCriuDump(argv)) continue;
    const dir = argv[argv.indexOf('--images-dir') + 1];
    if (!argv.includes('--images-dir') || !dir) continue;
    const pid = Number(name);
    const rankDir = isRankImageDir(imagesDir, dir) ? dir : isWarmDumpDir(imagesDir, dir) ? openRankImageDir(imagesDir, pid) : undefined;
    if (!rankDir) continue; // another agent's, or a warm dump still waiting (it ends with its agent's pipe)
    const startTicks = processStartTicks(pid);
    if (startTicks !== undefined) found.push({ pid, startTicks, setDir: dirname(rankDir) });
  }
  return found;
}

/** IMAGES/JOB/SET/rank-R under `imagesDir` (no hidden folder of the agent's). */
function isRankImageDir(imagesDir: string, dir: string): boolean {
  const rel = relative(imagesDir, dir);
  return !rel.startsWith('.') && !isAbsolute(rel) && rel.split(sep).length === 3;
}

/** IMAGES/.warm-dumps/...: a warm dump's folder before the go. */
function isWarmDumpDir(imagesDir: string, dir: string): boolean {
  const rel = relative(imagesDir, dir);
  return rel.split(sep)[0] === '.warm-dumps';
}

/** The rank image folder the process has open (a warm dump's, renamed at the go), if any. */
function openRankImageDir(imagesDir: string, pid: number): string | undefined {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return undefined;
  }
  for (const fd of fds) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (isAbsolute(target) && isRankImageDir(imagesDir, target)) return target;
    } catch {
      // closed meanwhile
    }
  }
  return undefined;
}

/**
 * `criu dump ...`, also as Ferry spawns a provisioned CRIU (criu-launch.ts):
 * its loader's command line, `ld-linux-*.so.* --library-path L .../criu dump ...`
 * (a program run by the loader keeps the loader's argv in /proc/PID/cmdline).
 */
function isCriuDump(argv: string[]): boolean {
  const program = basename(argv[0] ?? '');
  const criuAt = program === 'criu' ? 0 : program.startsWith('ld-') ? argv.findIndex((a) => basename(a) === 'criu') : -1;
  return criuAt >= 0 && argv.indexOf('dump', criuAt + 1) > criuAt;
}

/** Resolves once the dump has ended (it is not this process's child: polled). */
export async function orphanDumpEnded(d: OrphanDump, pollMs = 100): Promise<void> {
  while (processAlive(d.pid, d.startTicks)) await new Promise((r) => setTimeout(r, pollMs));
}
