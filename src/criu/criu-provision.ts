import { chmod, mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';
import { ErrorCode } from '../gen/proto.js';
import { pickDebianMirror, readSystemAptSources } from './apt-sources.js';
import { CRIU_BUILDS, type CriuBuild } from './criu-builds.js';
import { type CriuInstall, criuCacheDir, criuCheck, criuVersion, ferryCacheDir, findCriu, probeCriu } from './criu-install.js';
import { ARCHITECTURES, criuWrapperScript } from './criu-launch.js';
import { acquireFileLock } from './file-lock.js';
import { describeFailure, runCommand } from './run-command.js';

const trace = tracer('criu');

// What to provision, and in which order: criu-builds.ts.
/** The first build tried (kept for callers that name one). */
export const CRIU_SUITE = CRIU_BUILDS[0]!.suite;
export const CRIU_PACKAGES = CRIU_BUILDS[0]!.packages;

const APT_UPDATE_TIMEOUT_MS = 5 * 60_000;
const APT_DOWNLOAD_TIMEOUT_MS = 10 * 60_000;
const DPKG_EXTRACT_TIMEOUT_MS = 60_000;
// A second run waits this long for the first to finish provisioning.
const PROVISION_LOCK_TIMEOUT_MS = 20 * 60_000;

// The step that failed; `impossible` steps mean this node cannot provision at
// all (not root, no apt), as opposed to a failure worth reporting loudly.
export type CriuProvisionStep =
  | 'not-root'
  | 'no-apt'
  | 'no-mirror'
  | 'unsupported-arch'
  | 'cache-dir'
  | 'lock'
  | 'apt-update'
  | 'package-missing'
  | 'apt-download'
  | 'extract'
  | 'check'
  | 'install';

const IMPOSSIBLE_STEPS: ReadonlySet<CriuProvisionStep> = new Set([
  'not-root',
  'no-apt',
  'no-mirror',
  'unsupported-arch',
]);

export class CriuProvisionError extends FerryError {
  readonly step: CriuProvisionStep;
  // The message without the "failed at step" prefix.
  readonly detail: string;

  constructor(step: CriuProvisionStep, detail: string) {
    super(ErrorCode.UNAVAILABLE, `CRIU provisioning failed at step ${step}: ${detail}`);
    this.name = 'CriuProvisionError';
    this.step = step;
    this.detail = detail;
  }

  // True when this node lacks what provisioning needs (root, apt, a Debian mirror).
  get impossible(): boolean {
    return IMPOSSIBLE_STEPS.has(this.step);
  }
}

// Returns a working CRIU: one already present, or one provisioned into the cache.
export async function ensureCriu(): Promise<CriuInstall> {
  const found = await findCriu();
  if (found) return found;
  return provisionCriu();
}

// Provisions the builds of criu-builds.ts in order into
// `${FERRY_CACHE_DIR:-~/.cache/ferry}/NAME` until one works here (idempotent:
// a working cache is reused). Concurrent runs serialise on a lock file per build.
export async function provisionCriu(): Promise<CriuInstall> {
  const params = await checkPreconditions();
  const cacheRoot = ferryCacheDir();
  try {
    await mkdir(cacheRoot, { recursive: true });
  } catch (err) {
    throw new CriuProvisionError('cache-dir', `cannot create ${cacheRoot}: ${(err as Error).message}`);
  }
  const failures: string[] = [];
  for (const build of CRIU_BUILDS) {
    try {
      return await provisionBuild(build, cacheRoot, params);
    } catch (err) {
      if (!(err instanceof CriuProvisionError) || err.step !== 'check') throw err;
      trace(`CRIU from ${build.suite} does not work here: ${err.detail}`);
      failures.push(`${build.cacheName} (Debian ${build.suite}): ${err.detail}`);
    }
  }
  throw new CriuProvisionError('check', `no CRIU that Ferry can provision works on this host: ${failures.join('; ')}`);
}

async function provisionBuild(build: CriuBuild, cacheRoot: string, params: BuildParams): Promise<CriuInstall> {
  const lockPath = join(cacheRoot, `${build.cacheName}.lock`);
  let lock;
  try {
    lock = await acquireFileLock(lockPath, PROVISION_LOCK_TIMEOUT_MS);
  } catch (err) {
    throw new CriuProvisionError('lock', (err as Error).message);
  }
  try {
    const target = criuCacheDir(build);
    const existing = await probeCriu('cache', join(target, 'bin', 'criu'), target);
    if (existing.working && existing.version) {
      trace(`cache already provisioned by another run: ${existing.version}`);
      return { command: existing.command, version: existing.version, source: 'cache' };
    }
    if (existing.found && existing.version && /^criu check passes but/.test(existing.detail)) {
      // Installed intact, and it is this host that it does not work on: no point in fetching it again.
      throw new CriuProvisionError('check', existing.detail);
    }
    // Leftovers of runs that died half way; safe to remove while holding the lock.
    for (const name of await readdir(cacheRoot)) {
      if (name.startsWith(`${build.cacheName}.tmp-`) || name.startsWith(`${build.cacheName}.old-`)) await rm(join(cacheRoot, name), { recursive: true, force: true });
    }
    const work = await mkdtemp(join(cacheRoot, `${build.cacheName}.tmp-`));
    try {
      const version = await buildInto(work, build, params);
      // A broken or partial install is moved aside first (rename cannot replace a folder).
      const old = `${target}.old-${process.pid}`;
      try {
        await rename(target, old);
        await rm(old, { recursive: true, force: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CriuProvisionError('install', `cannot remove the old ${target}: ${(err as Error).message}`);
      }
      await chmod(work, 0o755); // mkdtemp made it private; the wrapper must be runnable by anyone
      try {
        await rename(work, target);
      } catch (err) {
        throw new CriuProvisionError('install', `cannot move ${work} to ${target}: ${(err as Error).message}`);
      }
      // Installed either way (so the next run knows without fetching it again); used only when it dumps here.
      const installed = await probeCriu('cache', join(target, 'bin', 'criu'), target);
      if (!installed.working) throw new CriuProvisionError('check', installed.detail);
      trace(`provisioned CRIU ${version} into ${target}`);
      return { command: join(target, 'bin', 'criu'), version, source: 'cache' };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  } finally {
    await lock.release();
  }
}

interface BuildParams {
  triplet: string;
  loader: string;
  mirror: string;
  signedBy?: string;
}

async function checkPreconditions(): Promise<BuildParams> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new CriuProvisionError('not-root', 'not running as root (CRIU, and unpacking and checking it, need root)');
  }
  const arch = await runCommand('dpkg', ['--print-architecture'], { timeoutMs: 10_000 });
  const aptGet = await runCommand('apt-get', ['--version'], { timeoutMs: 10_000 });
  if (arch.code !== 0 || aptGet.code !== 0) {
    throw new CriuProvisionError('no-apt', 'apt-get and dpkg are needed to fetch Debian packages; this is not a Debian-like system');
  }
  const archName = arch.stdout.trim();
  const archInfo = ARCHITECTURES[archName];
  if (!archInfo) throw new CriuProvisionError('unsupported-arch', `no CRIU provisioning for architecture ${archName}`);
  const mirror = pickDebianMirror(await readSystemAptSources());
  if (!mirror) {
    throw new CriuProvisionError('no-mirror', 'no Debian main-archive source in /etc/apt/sources.list or /etc/apt/sources.list.d');
  }
  trace(`mirror ${mirror.uri}, architecture ${archName}`);
  return { ...archInfo, mirror: mirror.uri, ...(mirror.signedBy ? { signedBy: mirror.signedBy } : {}) };
}

// Downloads, unpacks and checks CRIU in `work`; returns its version.
async function buildInto(work: string, build: CriuBuild, params: BuildParams): Promise<string> {
  const aptDir = join(work, 'apt');
  const debDir = join(work, 'debs');
  const prefix = join(work, 'prefix');
  for (const d of [join(aptDir, 'lists', 'partial'), join(aptDir, 'cache', 'archives', 'partial'), debDir, prefix, join(work, 'bin')]) {
    await mkdir(d, { recursive: true });
  }
  const sourceList = join(aptDir, 'sources.list');
  const options = params.signedBy ? `[signed-by=${params.signedBy}] ` : '';
  await writeFile(sourceList, `deb ${options}${params.mirror} ${build.suite} main\n`);
  // Everything apt reads or writes is private: the system's lists, caches and
  // pins stay as they were. The sandbox user could not write under $HOME.
  const aptOptions = [
    '-o', `Dir::Etc::sourcelist=${sourceList}`,
    '-o', 'Dir::Etc::SourceParts=/dev/null',
    '-o', 'Dir::Etc::Preferences=/dev/null',
    '-o', 'Dir::Etc::PreferencesParts=/dev/null',
    '-o', `Dir::State::Lists=${join(aptDir, 'lists')}`,
    '-o', `Dir::Cache=${join(aptDir, 'cache')}`,
    '-o', 'APT::Sandbox::User=root',
    '-o', 'Acquire::Languages=none',
  ];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' };

  trace('apt-get update (private lists)');
  const update = await runCommand('apt-get', [...aptOptions, '-q', 'update'], { env, timeoutMs: APT_UPDATE_TIMEOUT_MS });
  if (update.code !== 0 || /^(E:|W: Failed to fetch)/m.test(update.stderr)) {
    throw new CriuProvisionError('apt-update', `apt-get update for ${build.suite} failed: ${describeFailure(update)}`);
  }

  trace(`apt-get download ${build.packages.length} packages from ${build.suite}`);
  const download = await runCommand('apt-get', [...aptOptions, '-q', 'download', ...build.packages], {
    cwd: debDir,
    env,
    timeoutMs: APT_DOWNLOAD_TIMEOUT_MS,
  });
  const missing = [...`${download.stderr}\n${download.stdout}`.matchAll(/Unable to locate package (\S+)|Can't select candidate version from package (\S+)|Package '?(\S+?)'? has no installation candidate/g)]
    .map((m) => m[1] ?? m[2] ?? m[3]);
  if (missing.length > 0) {
    throw new CriuProvisionError('package-missing', `not in ${build.suite}: ${missing.join(', ')}`);
  }
  if (download.code !== 0) {
    throw new CriuProvisionError('apt-download', `apt-get download failed: ${describeFailure(download)}`);
  }
  const debs = (await readdir(debDir)).filter((n) => n.endsWith('.deb'));
  const absent = build.packages.filter((p) => !debs.some((d) => d.startsWith(`${p}_`)));
  if (absent.length > 0) {
    throw new CriuProvisionError('package-missing', `apt-get download left out: ${absent.join(', ')}`);
  }

  trace(`dpkg -x ${debs.length} packages into ${prefix}`);
  for (const deb of debs) {
    const x = await runCommand('dpkg', ['-x', join(debDir, deb), prefix], { timeoutMs: DPKG_EXTRACT_TIMEOUT_MS });
    if (x.code !== 0) throw new CriuProvisionError('extract', `dpkg -x ${deb}: ${describeFailure(x)}`);
  }
  await rm(aptDir, { recursive: true, force: true });
  await rm(debDir, { recursive: true, force: true });

  const wrapper = join(work, 'bin', 'criu');
  await writeFile(wrapper, criuWrapperScript(params.triplet, params.loader, build));
  await chmod(wrapper, 0o755);

  // Version and `criu check` here; the test dump runs once it is in place.
  const v = await criuVersion(wrapper);
  const check = v.version ? await criuCheck({ command: wrapper }) : { ok: false, detail: v.detail };
  if (!v.version || !check.ok) throw new CriuProvisionError('check', `the unpacked CRIU does not work: ${check.detail}`);
  return v.version;
}
