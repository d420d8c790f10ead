// CRIU location, provisioning and the doctor on this machine, with the real
// CRIU: a process tree under ferry-init in its own PID namespace is dumped
// and restored.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  parseDeb822Sources,
  parseOneLineSources,
  pickDebianMirror,
  readSystemAptSources,
} from '../../src/criu/apt-sources.js';
import {
  type CriuInstall,
  cleanCriuOutput,
  criuCheck,
  findCriu,
  probeCriu,
} from '../../src/criu/criu-install.js';
import { CRIU_BUILDS } from '../../src/criu/criu-builds.js';
import { DUMP_CHECK_FILE, runDumpCheck } from '../../src/criu/criu-dump-check.js';
import { CriuProvisionError, ensureCriu, provisionCriu } from '../../src/criu/criu-provision.js';
import { formatDoctor, runDoctor } from '../../src/criu/doctor.js';
import { runCommand } from '../../src/criu/run-command.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const BUILD_DIR = join(ROOT, 'build');
const FERRY_INIT = join(BUILD_DIR, 'bin', 'ferry-init');
const PROVISION_TIMEOUT_MS = 10 * 60_000;
const CRIU_TEST_TIMEOUT_MS = 120_000;
const WAIT_LIMIT_MS = 30_000;
const POLL_MS = 25;

const tmpDirs: string[] = [];
function makeTmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}

// Environment variables a test changed, restored after it.
const savedEnv = new Map<string, string | undefined>();
function setEnv(name: string, value: string | undefined): void {
  if (!savedEnv.has(name)) savedEnv.set(name, process.env[name]);
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

afterEach(() => {
  for (const [name, value] of savedEnv) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  savedEnv.clear();
});

afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

describe('apt sources', () => {
  const DEB822 = `# comment line
Types: deb deb-src
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
Enabled: no
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
`;

  const ONE_LINE = `# deb http://commented.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/vendor.gpg] https://vendor.example/repo nodistro main
deb [signed-by=/etc/apt/keyrings/debian.gpg] http://one.example/debian bookworm main non-free-firmware
`;

  it('parses deb822 stanzas, skipping disabled ones and comments', () => {
    const sources = parseDeb822Sources(DEB822);
    expect(sources).toEqual([
      {
        uri: 'http://mirror.example/debian/',
        suites: ['bookworm', 'bookworm-updates'],
        components: ['main', 'contrib'],
        signedBy: '/usr/share/keyrings/debian-archive-keyring.gpg',
      },
      {
        uri: 'http://mirror.example/debian-security',
        suites: ['bookworm-security'],
        components: ['main'],
        signedBy: '/usr/share/keyrings/debian-archive-keyring.gpg',
      },
    ]);
    expect(pickDebianMirror(sources)).toMatchObject({ uri: 'http://mirror.example/debian' });
  });

  it('parses one-line sources with options, ignoring deb-src, security and vendor suites', () => {
    const sources = parseOneLineSources(ONE_LINE);
    expect(sources.map((s) => s.uri)).toEqual([
      'http://security.example/debian-security',
      'https://vendor.example/repo',
      'http://one.example/debian',
    ]);
    expect(sources[2]).toEqual({
      uri: 'http://one.example/debian',
      suites: ['bookworm'],
      components: ['main', 'non-free-firmware'],
      signedBy: '/etc/apt/keyrings/debian.gpg',
    });
    expect(pickDebianMirror(sources)?.uri).toBe('http://one.example/debian');
  });

  it('finds no mirror when there are only security and vendor sources', () => {
    const only = parseOneLineSources(ONE_LINE.split('\n').slice(0, 4).join('\n'));
    expect(only.length).toBe(2);
    expect(pickDebianMirror(only)).toBeUndefined();
  });

  it('reads both files of a system configuration', async () => {
    const dir = makeTmp('ferry-apt-');
    mkdirSync(join(dir, 'sources.list.d'));
    writeFileSync(join(dir, 'sources.list'), 'deb http://list.example/debian trixie main\n');
    writeFileSync(join(dir, 'sources.list.d', 'debian.sources'), DEB822);
    writeFileSync(join(dir, 'sources.list.d', 'ignored.list.disabled'), 'deb http://no.example/debian bookworm main\n');
    const sources = await readSystemAptSources(join(dir, 'sources.list'), join(dir, 'sources.list.d'));
    expect(sources.map((s) => s.uri)).toEqual([
      'http://list.example/debian',
      'http://mirror.example/debian/',
      'http://mirror.example/debian-security',
    ]);
  });

  it('finds a Debian mirror in this machine\'s own configuration', async () => {
    const mirror = pickDebianMirror(await readSystemAptSources());
    expect(mirror?.uri).toMatch(/^https?:\/\//);
    expect(mirror?.uri).not.toContain('security');
  });
});

describe('CRIU on this machine', () => {
  let criu: CriuInstall;

  beforeAll(async () => {
    execFileSync('make', ['-s', '-C', join(ROOT, 'src', 'native'), `BUILD_DIR=${BUILD_DIR}`], { stdio: 'inherit' });
    criu = await ensureCriu();
  }, PROVISION_TIMEOUT_MS);

  it('ensureCriu gives a working CRIU 4.x and findCriu then finds it', async () => {
    expect(criu.version).toMatch(/^4\./);
    expect(await criuCheck(criu)).toMatchObject({ ok: true });
    expect(await findCriu()).toEqual(criu);
  });

  it('answers feature checks the way CRIU does', async () => {
    const uffd = await criuCheck(criu, 'uffd');
    const direct = await runCommand(criu.command, ['check', '--feature', 'uffd']);
    expect(uffd.ok).toBe(direct.code === 0);
    const bogus = await criuCheck(criu, 'no_such_feature_xyz');
    expect(bogus.ok).toBe(false);
  });

  it('filters the harmless RLIMIT_NOFILE line out of CRIU output', () => {
    const text = "rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted\nLooks good.\n";
    expect(cleanCriuOutput(text)).toBe('Looks good.');
  });

  it('FERRY_CRIU wins when it works and is skipped when it does not', async () => {
    setEnv('FERRY_CRIU', criu.command);
    expect(await findCriu()).toMatchObject({ source: 'FERRY_CRIU', command: criu.command, version: criu.version });

    // A CRIU whose `check` fails, like Debian 12's 3.17 on this kernel.
    const dir = makeTmp('ferry-badcriu-');
    const bad = join(dir, 'criu');
    writeFileSync(bad, '#!/bin/sh\n[ "$1" = --version ] && { echo "Version: 3.17.1"; exit 0; }\necho "Error: vdso: Unexpected rt vDSO area bounds" >&2\nexit 1\n');
    chmodSync(bad, 0o755);
    setEnv('FERRY_CRIU', bad);
    const found = await findCriu();
    expect(found?.source).not.toBe('FERRY_CRIU');
    expect(found?.version).toBe(criu.version);
  });

  it('counts a CRIU as working only once it has dumped a test process', async () => {
    expect(await runDumpCheck(criu.command)).toMatchObject({ ok: true });
    // `criu check` passes, every dump fails: like CRIU 4.1 where hardware breakpoints do not work.
    const dir = makeTmp('ferry-nodump-');
    const fake = join(dir, 'criu');
    writeFileSync(
      fake,
      '#!/bin/sh\ncase "$1" in --version) echo "Version: 4.1.1";; check) echo "Looks good.";; ' +
        'dump) echo "Error (compel): cannot stop the task" > "$5/dump.log"; exit 1;; esac\n',
    );
    chmodSync(fake, 0o755);
    const probe = await probeCriu('FERRY_CRIU', fake);
    expect(probe).toMatchObject({ found: true, version: '4.1.1', working: false });
    expect(probe.detail).toMatch(/^criu check passes but a test dump exit code 1; its log ends: Error \(compel\): cannot stop the task/);
    setEnv('FERRY_CRIU', fake);
    expect((await findCriu())?.command).not.toBe(fake);
  });

  it("takes a provisioned build's kept test-dump answer for this kernel: a failed one is not asked `criu check` again", async () => {
    const cacheDir = makeTmp('ferry-kept-');
    const calls = join(cacheDir, 'calls');
    const fake = join(cacheDir, 'criu');
    writeFileSync(fake, `#!/bin/sh\necho "$1" >> ${calls}\ncase "$1" in --version) echo "Version: 4.1.1";; check) echo "Looks good.";; esac\n`);
    chmodSync(fake, 0o755);
    const keep = (ok: boolean, kernel = release()) =>
      writeFileSync(join(cacheDir, DUMP_CHECK_FILE), JSON.stringify({ ok, detail: ok ? 'dumped a test process' : 'a test dump hung for 20 s', kernel, criuVersion: '4.1.1' }));
    const asked = () => readFileSync(calls, 'utf8').trim().split('\n');

    keep(false);
    expect(await probeCriu('cache', fake, cacheDir)).toMatchObject({ working: false, detail: 'criu check passes but a test dump hung for 20 s' });
    expect(asked()).toEqual(['--version']);
    rmSync(calls);
    keep(true);
    expect(await probeCriu('cache', fake, cacheDir)).toMatchObject({ working: true, detail: 'criu check: Looks good.; dumped a test process' });
    expect(asked()).toEqual(['--version', 'check']);
    rmSync(calls);
    // Kept for another kernel: checked again from the start, test dump included.
    keep(false, 'another-kernel');
    await probeCriu('cache', fake, cacheDir);
    expect(asked().slice(0, 3)).toEqual(['--version', 'check', 'dump']);
  });

  it('provisions into a fresh cache, twice at once, leaving one working install and no leftovers', async () => {
    const cache = makeTmp('ferry-cache-');
    setEnv('FERRY_CACHE_DIR', cache);
    const [a, b] = await Promise.all([provisionCriu(), provisionCriu()]);
    expect(a).toEqual(b);
    const name = basename(dirname(dirname(a.command)));
    expect(CRIU_BUILDS.map((x) => x.cacheName)).toContain(name);
    expect(a.command).toBe(join(cache, name, 'bin', 'criu'));
    expect(a.version).toMatch(/^4\./);
    // Builds tried before it that install but do not dump here stay, marked, so they are not fetched again.
    const leftovers = readdirSync(cache).filter((n) => n.includes('.tmp-') || n.includes('.old-'));
    expect(leftovers).toEqual([]);
    expect(readdirSync(join(cache, name)).sort()).toEqual(['bin', DUMP_CHECK_FILE, 'prefix']);
    expect(await criuCheck(a)).toMatchObject({ ok: true });
    const before = readdirSync(cache).sort();

    // A broken install (here: its CRIU binary gone) is replaced by a working one.
    rmSync(join(cache, name, 'prefix', 'usr', 'sbin', 'criu'));
    expect(await criuCheck(a)).toMatchObject({ ok: false });
    const again = await provisionCriu();
    expect(again).toEqual(a);
    expect(await criuCheck(again)).toMatchObject({ ok: true });
    expect(readdirSync(cache).sort()).toEqual(before);
  }, PROVISION_TIMEOUT_MS);

  it('fails with the step named when the cache folder cannot be made', async () => {
    const dir = makeTmp('ferry-cache-bad-');
    writeFileSync(join(dir, 'file'), '');
    setEnv('FERRY_CACHE_DIR', join(dir, 'file', 'sub'));
    const err = await provisionCriu().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CriuProvisionError);
    expect((err as CriuProvisionError).step).toBe('cache-dir');
    expect((err as CriuProvisionError).impossible).toBe(false);
    expect((err as Error).message).toMatch(/step cache-dir: cannot create .*file\/sub/);
  });

  describe('provision-main', () => {
    let outDir = '';
    let main = '';

    beforeAll(() => {
      // Compiled into the repository's build folder so that it resolves
      // node_modules the way dist/ does, and runnable by an unprivileged user.
      outDir = mkdtempSync(join(BUILD_DIR, 'test-provision-'));
      tmpDirs.push(outDir);
      execFileSync(
        join(ROOT, 'node_modules', '.bin', 'tsc'),
        ['--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--strict', '--skipLibCheck',
          '--types', 'node', '--rootDir', ROOT, '--outDir', outDir, join(ROOT, 'src', 'criu', 'provision-main.ts')],
        { stdio: 'inherit' },
      );
      writeFileSync(join(outDir, 'package.json'), '{"type":"module"}\n');
      chmodSync(outDir, 0o755);
      main = join(outDir, 'src', 'criu', 'provision-main.js');
    }, CRIU_TEST_TIMEOUT_MS);

    it('prints the CRIU in use on one line', async () => {
      const r = await runCommand(process.execPath, [main]);
      expect(r.code).toBe(0);
      expect(r.stderr.trim()).toBe(`criu: ${criu.version} (${criu.source}) ${criu.command}`);
    }, CRIU_TEST_TIMEOUT_MS);

    it('exits 0 with one line saying what is missing when it cannot provision (not root)', async () => {
      const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/nonexistent' };
      const r = await runCommand('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, main], { env });
      expect(r.stderr).toMatch(/^criu: no working CRIU, .*not running as root.*\(step not-root\); checkpoint, restart and migration will not work/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.code).toBe(0);
    }, CRIU_TEST_TIMEOUT_MS);

    it('exits 1 when provisioning was possible but failed', async () => {
      const dir = makeTmp('ferry-cache-bad-');
      writeFileSync(join(dir, 'file'), '');
      const env = { ...process.env, FERRY_CACHE_DIR: join(dir, 'file', 'sub'), FERRY_CRIU: '', PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
      const r = await runCommand(process.execPath, [main], { env });
      expect(r.stderr).toMatch(/^criu: CRIU provisioning failed at step cache-dir/);
      expect(r.code).toBe(1);
    }, CRIU_TEST_TIMEOUT_MS);
  });

  it('the doctor reports every check, consistent with CRIU itself', async () => {
    const report = await runDoctor();
    expect(report.checks.map((c) => c.name)).toEqual([
      'root',
      'criu found',
      'criu check',
      'criu uffd',
      'criu mem_dirty_track',
      'criu timens',
      'criu kernel cache',
      'pid namespace',
      'network namespace',
    ]);
    const byName = new Map(report.checks.map((c) => [c.name, c]));
    expect(byName.get('root')?.ok).toBe(process.getuid?.() === 0);
    expect(byName.get('criu found')?.ok).toBe(true);
    expect(byName.get('criu check')?.ok).toBe(true);
    expect(report.criu).toMatchObject({ found: true, version: criu.version });
    const dirty = await runCommand(criu.command, ['check', '--feature', 'mem_dirty_track']);
    expect(byName.get('criu mem_dirty_track')?.ok).toBe(dirty.code === 0);
    const unshare = await runCommand('unshare', ['--net', 'true']);
    expect(byName.get('network namespace')?.ok).toBe(unshare.code === 0);
    const timens = await runCommand(criu.command, ['check', '--feature', 'timens']);
    expect(byName.get('criu timens')?.ok).toBe(timens.code === 0);
    expect(byName.get('criu kernel cache')?.ok).toBe(statfsSync('/run').type === 0x01021994); // TMPFS_MAGIC
    if (!byName.get('criu kernel cache')?.ok) expect(byName.get('criu kernel cache')?.detail).toMatch(/^\/run is not a tmpfs \(filesystem type 0x[0-9a-f]+\)/);
    for (const c of report.checks) {
      if (!c.ok) expect(c.prevents).toBeTruthy();
      else expect(c.prevents).toBeUndefined();
    }
    // Plain data: survives JSON unchanged.
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
    const text = formatDoctor(report);
    for (const c of report.checks) expect(text).toContain(c.name);
    for (const c of report.checks.filter((x) => !x.ok)) expect(text).toContain(c.prevents);
  }, CRIU_TEST_TIMEOUT_MS);
});

describe('CRIU dump and restore of a rank under ferry-init', () => {
  const processes: ChildProcess[] = [];
  const pids = new Set<number>();

  afterAll(async () => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const p of processes) {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGKILL');
        await new Promise((r) => p.on('close', r));
      }
    }
  });

  function childrenOf(pid: number): number[] {
    const out: number[] = [];
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
      } catch {
        // exited meanwhile
      }
    }
    return out;
  }

  async function waitFor<T>(what: string, probe: () => T | undefined | false): Promise<T> {
    const deadline = Date.now() + WAIT_LIMIT_MS;
    for (;;) {
      const v = probe();
      if (v !== undefined && v !== false) return v;
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  function exited(p: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve({ code: p.exitCode, signal: p.signalCode });
    return new Promise((r) => p.on('close', (code, signal) => r({ code, signal })));
  }

  function counterLines(log: string): number {
    return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l.length > 0).length : 0;
  }

  function nsPids(pid: number): number[] {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('NSpid:'));
    return (line ?? '').split(/\s+/).slice(1).filter((x) => x).map(Number);
  }

  it('dumps the namespace init with its program and restores it running', async () => {
    const criu = await ensureCriu();
    const dir = makeTmp('ferry-criu-dump-');
    const images = join(dir, 'images');
    mkdirSync(images);
    const log = join(dir, 'counter.log');
    const out = openSync(join(dir, 'out.log'), 'a');
    // The sleep-loop rank: appends a counter to a file (files survive a
    // restore, pipes to outside readers do not; FACTS.md).
    const loop = `i=0; while :; do i=$((i+1)); echo $i >> ${log}; sleep 0.02; done`;
    const rank = spawn('unshare', ['--pid', '--fork', 'setsid', FERRY_INIT, 'sh', '-c', loop], {
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    processes.push(rank);
    const init = await waitFor('ferry-init to start', () => childrenOf(rank.pid!)[0]);
    pids.add(init);
    expect(nsPids(init).at(-1)).toBe(1);
    await waitFor('the counter to run', () => counterLines(log) >= 3);

    const dump = await runCommand(criu.command, ['dump', '-t', String(init), '-D', images, '-o', 'dump.log'], {
      timeoutMs: CRIU_TEST_TIMEOUT_MS,
    });
    const dumpLog = () => readFileSync(join(images, 'dump.log'), 'utf8').split('\n').slice(-15).join('\n');
    expect(dump.code, existsSync(join(images, 'dump.log')) ? dumpLog() : dump.stderr).toBe(0);
    // The dumped tree was killed: unshare sees its child die.
    await exited(rank);
    expect(existsSync(`/proc/${init}`)).toBe(false);
    const linesAtDump = counterLines(log);

    const pidfile = join(dir, 'restored.pid');
    const restore = spawn(criu.command, ['restore', '-D', images, '-o', 'restore.log', '--pidfile', pidfile], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    processes.push(restore);
    const restored = await waitFor('the restore', () => {
      if (restore.exitCode !== null) throw new Error(`criu restore exited ${restore.exitCode}: ${readFileSync(join(images, 'restore.log'), 'utf8').split('\n').slice(-15).join('\n')}`);
      const text = existsSync(pidfile) ? readFileSync(pidfile, 'utf8').trim() : '';
      return text ? Number(text) : undefined;
    });
    pids.add(restored);
    // A fresh PID namespace where the init is PID 1 again and its program PID 2
    // (the PIDs inside are restored; the init's host PID need not be).
    expect(nsPids(restored).at(-1)).toBe(1);
    const program = childrenOf(restored).find((pid) => nsPids(pid).at(-1) === 2);
    expect(program).toBeDefined();
    // The program goes on counting from where it was.
    await waitFor('the restored counter to grow', () => counterLines(log) >= linesAtDump + 3);
    const numbers = readFileSync(log, 'utf8').split('\n').filter((l) => l).map(Number);
    expect(numbers).toEqual(numbers.map((_, i) => i + 1));

    // ferry-init still forwards SIGTERM after the restore; then the tree ends.
    process.kill(restored, 'SIGTERM');
    const end = await exited(restore);
    expect(end.code).toBe(0);
    await waitFor('the restored tree to be gone', () => !existsSync(`/proc/${restored}`));
  }, CRIU_TEST_TIMEOUT_MS);
});
