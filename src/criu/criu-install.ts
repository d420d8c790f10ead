import { access, constants } from 'node:fs/promises';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { tracer } from '../common/trace.js';
import { CRIU_BUILDS, type CriuBuild } from './criu-builds.js';
import { cachedDumpCheck, keptDumpCheck, runDumpCheck } from './criu-dump-check.js';
import { runCriu } from './criu-launch.js';
import { describeFailure } from './run-command.js';

const trace = tracer('criu');

// A CRIU that runs on this node: spawn `command args...` to use it.
export interface CriuInstall {
  command: string;
  version: string;
  source: 'FERRY_CRIU' | 'PATH' | 'cache';
}

// One place a CRIU was looked for, and what was found there (for `ferry doctor`).
export interface CriuCandidate {
  source: CriuInstall['source'];
  command: string;
  found: boolean;
  version?: string;
  working: boolean;
  detail: string;
}

const CRIU_VERSION_TIMEOUT_MS = 15_000;
const CRIU_CHECK_TIMEOUT_MS = 60_000;

// Printed by CRIU on every run when it may not raise its own file limit: harmless.
const HARMLESS_LINE = /rlimit: Can't setup RLIMIT_NOFILE/;

export function ferryCacheDir(): string {
  return process.env.FERRY_CACHE_DIR || join(homedir(), '.cache', 'ferry');
}

// Where ensureCriu() puts a build of CRIU, and the wrapper callers spawn.
export function criuCacheDir(build: CriuBuild = CRIU_BUILDS[0]!): string {
  return join(ferryCacheDir(), build.cacheName);
}

export function criuCacheCommand(build: CriuBuild = CRIU_BUILDS[0]!): string {
  return join(criuCacheDir(build), 'bin', 'criu');
}

export function cleanCriuOutput(text: string): string {
  return text
    .split('\n')
    .filter((l) => l.trim().length > 0 && !HARMLESS_LINE.test(l))
    .join('\n')
    .trim();
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function findOnPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

// `criu --version` prints "Version: 4.1.1" (and a GitID line on git builds).
export async function criuVersion(command: string): Promise<{ version?: string; detail: string }> {
  const r = await runCriu(command, ['--version'], { timeoutMs: CRIU_VERSION_TIMEOUT_MS });
  const m = /Version:\s*(\S+)/.exec(r.stdout);
  if (r.code === 0 && m) return { version: m[1], detail: `version ${m[1]}` };
  return { detail: `criu --version failed: ${describeFailure(r)}` };
}

// `criu check` (or `criu check --feature FEATURE`): ok when CRIU says it works.
export async function criuCheck(
  install: Pick<CriuInstall, 'command'>,
  feature?: string,
): Promise<{ ok: boolean; detail: string }> {
  const args = feature ? ['check', '--feature', feature] : ['check'];
  const r = await runCriu(install.command, args, { timeoutMs: CRIU_CHECK_TIMEOUT_MS });
  const output = cleanCriuOutput(`${r.stdout}\n${r.stderr}`);
  if (r.spawnError) return { ok: false, detail: r.spawnError };
  if (r.timedOut) return { ok: false, detail: `criu ${args.join(' ')} timed out` };
  return { ok: r.code === 0, detail: output || (r.code === 0 ? 'ok' : describeFailure(r)) };
}

// Version, `criu check` and a test dump for one candidate command. A
// provisioned build (`cacheDir`) keeps the test dump's answer per kernel.
export async function probeCriu(source: CriuInstall['source'], command: string, cacheDir?: string): Promise<CriuCandidate> {
  if (!(await isExecutable(command))) {
    return { source, command, found: false, working: false, detail: 'not found or not executable' };
  }
  const v = await criuVersion(command);
  if (!v.version) return { source, command, found: true, working: false, detail: v.detail };
  // A provisioned build whose test dump already failed on this kernel: no need to ask `criu check` again.
  const failed = cacheDir ? await keptDumpCheck(cacheDir, v.version) : undefined;
  if (failed && !failed.ok) return { source, command, found: true, version: v.version, working: false, detail: `criu check passes but ${failed.detail}` };
  const check = await criuCheck({ command });
  if (!check.ok) return { source, command, found: true, version: v.version, working: false, detail: `criu check failed: ${lastLine(check.detail)}` };
  const dump = cacheDir ? await cachedDumpCheck(cacheDir, command, v.version) : await runDumpCheck(command);
  const detail = dump.ok ? `criu check: ${lastLine(check.detail)}; ${dump.detail}` : `criu check passes but ${dump.detail}`;
  return { source, command, found: true, version: v.version, working: dump.ok, detail };
}

function lastLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim().length > 0);
  return lines[lines.length - 1] ?? '';
}

// Every place a CRIU is looked for, in order: FERRY_CRIU, PATH, the cache.
// Stops at the first working one unless `all` is set (the doctor shows all).
export async function findCriuCandidates(all = false): Promise<CriuCandidate[]> {
  const out: CriuCandidate[] = [];
  const places: [CriuInstall['source'], () => Promise<string | undefined>, string?][] = [
    ['FERRY_CRIU', async () => {
      const value = process.env.FERRY_CRIU;
      if (!value) return undefined;
      return value.includes('/') ? value : ((await findOnPath(value)) ?? value);
    }],
    ['PATH', () => findOnPath('criu')],
    ...CRIU_BUILDS.map((b): [CriuInstall['source'], () => Promise<string | undefined>, string] => ['cache', async () => criuCacheCommand(b), criuCacheDir(b)]),
  ];
  for (const [source, locate, cacheDir] of places) {
    const command = await locate();
    if (!command) continue;
    // A build not provisioned (yet) is skipped quietly unless every place is asked for.
    if (source === 'cache' && !all && !(await isExecutable(command))) continue;
    const candidate = await probeCriu(source, command, cacheDir);
    trace(`${source} ${command}: ${candidate.working ? 'works' : 'does not work'} (${candidate.detail})`);
    out.push(candidate);
    if (candidate.working && !all) break;
  }
  return out;
}

// The first working CRIU, or null when none works on this node.
export async function findCriu(): Promise<CriuInstall | null> {
  const candidates = await findCriuCandidates();
  const ok = candidates.find((c) => c.working);
  return ok && ok.version ? { command: ok.command, version: ok.version, source: ok.source } : null;
}
