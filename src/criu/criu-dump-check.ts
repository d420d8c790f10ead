// Does this CRIU really dump here? `criu check` can pass while every dump
// hangs (CRIU 4.1 under a paravirtualised kernel whose hardware breakpoints do
// not work: the dump never gets its task back from the parasite). So a CRIU
// counts as working only once it has dumped a throwaway process, with
// --leave-running, within a time limit. The answer for a provisioned build is
// kept next to it, per kernel release, as this takes a few hundred
// milliseconds when it works and the whole time limit when it does not.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { tracer } from '../common/trace.js';
import { cleanCriuOutput } from './criu-install.js';
import { runCriu } from './criu-launch.js';
import { describeFailure, lastLines } from './run-command.js';

const trace = tracer('criu');

export const DUMP_CHECK_TIMEOUT_MS = 20_000;
/** Where a provisioned build keeps its answer. */
export const DUMP_CHECK_FILE = 'dump-check.json';
const START_WAIT_MS = 5_000;

export interface DumpCheck {
  ok: boolean;
  detail: string;
}

interface DumpCheckRecord extends DumpCheck {
  kernel: string;
  criuVersion: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Dumps a sleeping process of its own (its own session, no terminal) and says whether CRIU managed. */
export async function runDumpCheck(command: string): Promise<DumpCheck> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-criu-dump-check-'));
  const victim = spawn('sleep', ['600'], { stdio: 'ignore', detached: true });
  try {
    const pid = victim.pid;
    if (!pid) return { ok: false, detail: 'could not start a process to dump' };
    // Dump it only once it is `sleep` (not the forked node half-way through exec).
    for (let waited = 0; waited < START_WAIT_MS; waited += 10) {
      try {
        if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep') break;
      } catch {
        // not there yet
      }
      await sleep(10);
    }
    const r = await runCriu(command, ['dump', '-t', String(pid), '-D', dir, '-o', 'dump.log', '-v2', '--leave-running'], {
      timeoutMs: DUMP_CHECK_TIMEOUT_MS,
    });
    if (r.code === 0) return { ok: true, detail: 'dumped a test process' };
    const log = await readFile(join(dir, 'dump.log'), 'utf8').catch(() => '');
    const why = r.timedOut ? `hung for ${DUMP_CHECK_TIMEOUT_MS / 1000} s` : describeFailure(r);
    return { ok: false, detail: `a test dump ${why}${log ? `; its log ends: ${lastLines(cleanCriuOutput(log), 2)}` : ''}` };
  } finally {
    victim.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

/** The test dump's answer kept in `cacheDir` for this kernel and CRIU version, if any. */
export async function keptDumpCheck(cacheDir: string, criuVersion: string): Promise<DumpCheck | undefined> {
  try {
    const kept = JSON.parse(await readFile(join(cacheDir, DUMP_CHECK_FILE), 'utf8')) as DumpCheckRecord;
    if (kept.kernel === release() && kept.criuVersion === criuVersion && typeof kept.ok === 'boolean') return { ok: kept.ok, detail: kept.detail };
  } catch {
    // none yet, or unreadable: check again
  }
  return undefined;
}

/** runDumpCheck, its answer kept in `cacheDir` for this kernel and this CRIU version. */
export async function cachedDumpCheck(cacheDir: string, command: string, criuVersion: string): Promise<DumpCheck> {
  const kept = await keptDumpCheck(cacheDir, criuVersion);
  if (kept) return kept;
  const file = join(cacheDir, DUMP_CHECK_FILE);
  const kernel = release();
  const check = await runDumpCheck(command);
  trace(`dump check of ${command} on kernel ${kernel}: ${check.ok ? 'ok' : check.detail}`);
  const record: DumpCheckRecord = { ...check, kernel, criuVersion };
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, JSON.stringify(record) + '\n');
    await rename(tmp, file);
  } catch {
    await rm(tmp, { force: true }); // a read-only cache still answers, only slower next time
  }
  return check;
}
