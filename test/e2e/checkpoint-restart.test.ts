// End to end, with real CRIU, real agents and namespace hosts: the Jacobi and
// sort examples on 4 ranks over 2 hosts, checkpointed, stopped, restarted
// elsewhere, migrated and drained, each compared bit for bit with an
// uninterrupted run of the same size; and what happens when things fail.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FERRY_CLI, startTestCluster, type FerryResult, type TestCluster } from '../helpers/cluster.js';
import { rank0Output } from '../../src/local-cluster/examples.js';
import { buildExample, checksumLine, ferryOkOn } from '../helpers/e2e-run.js';
import { FaultGates } from '../helpers/fault-gates.js';

// Sized to run for seconds on 4 ranks here, so that every step lands mid-run.
const JACOBI = ['jacobi', '512', '12000'];
const SORT = ['sort', '1000000', '80']; // 80 rounds: about 18 s here, so a drain under CI load still lands mid-run
const RUN_TIMEOUT_MS = 300_000;

let c: TestCluster;
let gates: FaultGates; // tests 2 and 5 hold a DUMP
let bin: string;
const reference = new Map<string, string>();

/** The checksum line of a run's output (tags and progress lines aside). */
function start(jobId: string, example: string[], hosts = 'host1,host2', runOptions: string[] = []): Promise<FerryResult> {
  return c.ferry(['run', '-n', '4', '--hosts', hosts, '--job-id', jobId, ...runOptions, join(bin, example[0]), ...example.slice(1)], { timeoutMs: RUN_TIMEOUT_MS });
}

async function job(jobId: string): Promise<{ state: string; detail: string; ranks: { rank: number; host: string; state: string }[] }> {
  const r = await c.ferry(['job', jobId, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

async function waitRunning(jobId: string): Promise<void> {
  await c.waitFor(async () => {
    const r = await c.ferry(['job', jobId, '--json']);
    return r.code === 0 && JSON.parse(r.stdout).state === 'running';
  }, `job ${jobId} running`);
}

const ferryOk = ferryOkOn(() => c, RUN_TIMEOUT_MS);

/** Where a Jacobi job writes its history (--history, "w") or log (--log, "a") files, PREFIX.RANK, in the directory every host sees. */
const outputPrefix = (jobId: string, kind: 'history' | 'log') => join(c.tempDir, 'outputs', `${jobId}-${kind}`);
const outputFiles = (jobId: string, kind: 'history' | 'log') => [0, 1, 2, 3].map((r) => readFileSync(`${outputPrefix(jobId, kind)}.${r}`));
const outputArgs = (jobId: string) => ['--history', outputPrefix(jobId, 'history'), '--log', outputPrefix(jobId, 'log')];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  // (the coordinator's trace: test 2 waits for its refusal of a stop)
  c = await startTestCluster({ hosts: 3, heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1_500, faultGates: true, env: { FERRY_TRACE: 'coordinator' } });
  gates = new FaultGates(c);
  for (const name of ['jacobi', 'sort']) bin = dirname(buildExample(c, name));
  // Uninterrupted runs of the same sizes, in this cluster (Jacobi's also writes its history and log files).
  mkdirSync(join(c.tempDir, 'outputs'), { recursive: true });
  for (const [id, example] of [['ref-jacobi', [...JACOBI, ...outputArgs('ref-jacobi')]], ['ref-sort', SORT]] as const) {
    const r = await start(id, [...example]);
    expect(r.code, r.stderr).toBe(0);
    reference.set(example[0], checksumLine(r.stdout));
  }
}, 600_000);

afterAll(async () => {
  await c?.stop();
});

describe('checkpoint, restart and migration end to end', { timeout: 600_000 }, () => {
  it('1. checkpoints and continues at three random moments; the result is bit for bit the uninterrupted one', async () => {
    const run = start('cont', JACOBI);
    await waitRunning('cont');
    for (const delay of [300, 1_200, 700].map((ms) => ms + Math.floor(Math.random() * 400))) {
      await sleep(delay);
      const out = await ferryOk(['checkpoint', 'cont', '--json']);
      expect(JSON.parse(out).state).toBe('committed');
    }
    const r = await run;
    expect(r.code, r.stderr).toBe(0);
    expect(checksumLine(r.stdout)).toBe(reference.get('jacobi'));
    // Retention: the coordinator's default keeps the newest 2 committed epochs; epoch 1's images go.
    const states = async () => JSON.parse(await ferryOk(['epochs', 'cont', '--json'])).map((e: { epoch: number; state: string }) => [e.epoch, e.state]);
    expect(await states()).toEqual([
      [1, 'deleted'],
      [2, 'committed'],
      [3, 'committed'],
    ]);
    const onDisk = (epoch: number) => c.hosts.slice(0, 2).filter((h) => existsSync(join(h.imagesDir, 'cont', String(epoch))));
    await c.waitFor(async () => onDisk(1).length === 0, "epoch 1's images removed from host1 and host2");
    expect(onDisk(2).length).toBe(2);
    expect(readdirSync(join(c.hosts[0].imagesDir, 'cont', '3')).sort()).toEqual(['rank-0', 'rank-1']);
    // Each rank's dump had been started ahead of time (src/criu/warm-dump.ts): its CRIU had probed the kernel and
    // waited for the go; and once the ranks ended, no CRIU waits any more.
    for (const h of c.hosts.slice(0, 2)) {
      for (const rank of readdirSync(join(h.imagesDir, 'cont', '3'))) {
        expect(readFileSync(join(h.imagesDir, 'cont', '3', rank, 'dump.log'), 'utf8'), `${h.name} ${rank}`).toMatch(/waiting for the go[^]*ferry-append-files: go\n/);
      }
    }
    const waitingCriu = () =>
      execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => c.hosts.some((h) => l.includes(join(h.imagesDir, '.warm-dumps', h.name, 'cont'))));
    await c.waitFor(async () => waitingCriu().length === 0, 'no CRIU waiting for a dump of the ended job');
    const refused = await c.ferry(['restart', 'cont', '--epoch', '1']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/epoch 1 of job cont was deleted \(deleted: the job keeps its 2 newest committed epochs\); committed epochs with images: 2, 3/);
    // Keeping fewer deletes at once.
    expect(await ferryOk(['checkpoint', 'cont', '--keep-epochs', '1'])).toBe('job cont: keeps the images of its 1 newest committed epoch\n');
    await c.waitFor(async () => onDisk(2).length === 0, "epoch 2's images removed from host1 and host2");
    expect(await states()).toEqual([
      [1, 'deleted'],
      [2, 'deleted'],
      [3, 'committed'],
    ]);
    expect(onDisk(3).length).toBe(2);
    // ferry delete: the ended job's last epoch leaves both hosts' disks, and the job the catalog.
    const deleted = await ferryOk(['delete', 'cont']);
    expect(deleted).toMatch(/^job cont deleted with epoch 3: 4 images removed \([\d.]+ [KMG]iB\), output logs on 2 hosts \([\d.]+ (B|[KMG]iB)\)\n$/);
    expect(onDisk(3)).toEqual([]);
    expect(c.hosts.slice(0, 2).filter((h) => existsSync(join(h.imagesDir, 'cont')))).toEqual([]);
    expect(c.hosts.slice(0, 2).filter((h) => existsSync(join(h.logsDir, 'cont')))).toEqual([]);
    const gone = await c.ferry(['job', 'cont']);
    expect(gone.stderr.trim()).toBe('ferry: no job "cont" in the catalog [UNKNOWN_JOB]');
    expect(await ferryOk(['jobs', '--all', '--json'])).not.toContain('"cont"');
  });

  it('2. checkpoints with --stop (ferry run --stop-on USR1, as a batch system warns of a time limit), then restarts on two other hosts to the same result', async () => {
    const run = start('stopgo', SORT, 'host1,host2', ['--stop-on', 'USR1']);
    await waitRunning('stopgo');
    await sleep(1_000);
    // What Slurm's --signal=B:USR1@300 does: the signal goes to ferry run, not to the ranks. It comes
    // while a checkpoint runs (its DUMP held at a fault gate until the coordinator has refused the stop:
    // its trace says so), so the stop is asked again after it.
    gates.close('dump');
    let running: Promise<string>;
    try {
      running = ferryOk(['checkpoint', 'stopgo']);
      await gates.held('dump', 'host1');
      execFileSync('pkill', ['-USR1', '-f', 'job-id stopgo --stop-on USR1']);
      await c.waitFor(() => /operator error to \S+: job stopgo is busy: checkpoint epoch 1/.test(c.logs('coordinator')), 'the stop refused while epoch 1 dumps');
    } finally {
      gates.open('dump');
    }
    await running;
    const first = await run;
    expect(first.code, first.stderr).toBe(75);
    expect(first.stderr).toMatch(/\nferry run: SIGUSR1: checkpointing job stopgo to stop it\n/);
    expect(first.stderr).toMatch(/\nferry run: waiting to stop the job: job stopgo is busy: checkpoint epoch 1 is \w+; try again when it is done\n/);
    expect(first.stderr).toMatch(/\nferry run: job stopgo stopped after checkpoint epoch 2; ferry restart stopgo continues it\n/);
    expect(first.stdout).not.toMatch(/checksum/);
    expect((await job('stopgo')).state).toBe('stopped');
    // ferry inspect decodes one rank's image.
    const image = join(c.hosts[0].imagesDir, 'stopgo', '1', 'rank-0');
    const inspect = await ferryOk(['inspect', image]);
    expect(inspect).toMatch(/^job stopgo epoch 1 rank 0, dumped on host1/);
    expect(inspect).toMatch(/\n1 +0 +\d+ +[\d.]+ \S+ +ferry-init\n2 +1 +\d+ +[\d.]+ \S+ +sort\n/);
    expect(inspect).toContain(join(bin, 'sort'));
    // The next allocation runs the same command line on its own hosts: the job goes on from epoch 2,
    // and this ferry run follows it to its end.
    const continued = await start('stopgo', SORT, 'host2,host3', ['--stop-on', 'USR1']);
    expect(continued.code, `${continued.stderr}\n${c.logTails(30)}`).toBe(0);
    expect(continued.stderr).toMatch(/^ferry run: job stopgo: continuing job stopgo from its last committed epoch\nferry run: job stopgo continues, 4 ranks\n/m);
    expect(checksumLine(continued.stdout)).toBe(reference.get('sort'));
    // CRIU's work folders of successful restores are gone.
    for (const h of c.hosts.slice(1, 3)) expect(readdirSync(join(h.imagesDir, '.restore'))).toEqual([]);
    const end = await job('stopgo');
    expect(end.state, end.detail).toBe('succeeded');
    expect(end.ranks.map((r) => r.host)).toEqual(['host2', 'host2', 'host3', 'host3']);
    expect(checksumLine(rank0Output(c, 'stopgo'))).toBe(reference.get('sort'));
    // The same epoch restored again on the same hosts is restored anew (the agents' restores of it have ended).
    const restart = await ferryOk(['restart', 'stopgo', '--hosts', 'host2,host3', '--json']);
    expect(JSON.parse(restart).moves.map((m: { to: string }) => m.to).sort()).toEqual(['host2', 'host2', 'host3', 'host3']);
    const again = await c.ferry(['attach', 'stopgo'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(again.code, `${again.stderr}\n${c.logTails(30)}`).toBe(0);
    expect(checksumLine(again.stdout)).toBe(reference.get('sort'));
  });

  it('3. migrates rank 1 to a third host mid-run and back; ferry run follows it to the same result', async () => {
    const run = start('mig', JACOBI);
    await waitRunning('mig');
    await sleep(800);
    await ferryOk(['migrate', 'mig', '--rank', '1', '--to', 'host3']);
    expect((await job('mig')).ranks.map((r) => r.host)).toEqual(['host1', 'host3', 'host2', 'host2']);
    await sleep(800);
    await ferryOk(['migrate', 'mig', '--rank', '1', '--to', 'host1']);
    expect((await job('mig')).ranks.map((r) => r.host)).toEqual(['host1', 'host1', 'host2', 'host2']);
    const r = await run;
    expect(r.code, r.stderr).toBe(0);
    expect(checksumLine(r.stdout)).toBe(reference.get('jacobi'));
  });

  it('4. drains a host while the job runs', async () => {
    const run = start('drain', SORT);
    await waitRunning('drain');
    await sleep(800);
    try {
      const out = JSON.parse(await ferryOk(['drain', 'host1', '--reason', 'e2e', '--json']));
      expect(out.moves.map((m: { rank: number; from: string }) => [m.rank, m.from])).toEqual([
        [0, 'host1'],
        [1, 'host1'],
      ]);
      expect((await job('drain')).ranks.some((r) => r.host === 'host1')).toBe(false);
      const hosts = JSON.parse(await ferryOk(['hosts', '--json'])) as { name: string; drainReason: string }[];
      expect(hosts.map((h) => `${h.name}:${h.drainReason}`)).toEqual(['host1:e2e', 'host2:', 'host3:']);
    } finally {
      await ferryOk(['undrain', 'host1']); // the next tests run on host1 again
    }
    const r = await run;
    expect(r.code, r.stderr).toBe(0);
    expect(checksumLine(r.stdout)).toBe(reference.get('sort'));
  });

  it('5. an agent killed during DUMP aborts the epoch; the job runs on to the right result and the previous epoch still restores', async () => {
    const run = start('kill', JACOBI);
    await waitRunning('kill');
    await ferryOk(['checkpoint', 'kill']); // epoch 1, the one to fall back on
    gates.close('dump');
    let second: Promise<FerryResult>;
    try {
      second = c.ferry(['checkpoint', 'kill'], { timeoutMs: RUN_TIMEOUT_MS });
      await gates.held('dump', 'host2');
      await c.killAgent('host2', 'SIGKILL');
    } finally {
      gates.open('dump');
    }
    const failed = await second;
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toMatch(/checkpoint of job kill \(epoch 2\) aborted: DUMP failed: .*host host2/);
    expect(failed.stderr).toMatch(/epoch 1 remains the last committed checkpoint/);
    const epochs = JSON.parse(await ferryOk(['epochs', 'kill', '--json']));
    expect(epochs.map((e: { state: string }) => e.state)).toEqual(['committed', 'aborted']);
    // host2's ranks outlive their agent (flushed, waiting); the restarted agent
    // re-adopts and wakes them, and the job runs on to the uninterrupted result.
    expect((await job('kill')).state).toBe('running');
    await c.startAgent('host2');
    const r = await run;
    expect(r.code, `${r.stderr}\n${c.logTails(30)}`).toBe(0);
    expect(checksumLine(r.stdout)).toBe(reference.get('jacobi'));
    const ended = await job('kill');
    expect(ended.state, ended.detail).toBe('succeeded');
    expect(ended.ranks.map((x) => x.host)).toEqual(['host1', 'host1', 'host2', 'host2']);
    // ... and epoch 1 still restores it, elsewhere, to the same result.
    await ferryOk(['restart', 'kill', '--epoch', '1', '--hosts', 'host1,host3']);
    const attached = await c.ferry(['attach', 'kill'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(attached.code, `${attached.stderr}\n${c.logTails(30)}`).toBe(0);
    expect(checksumLine(attached.stdout)).toBe(reference.get('jacobi'));
    const end = await job('kill');
    expect(end.state, `${end.detail}\n${c.logTails(30)}`).toBe('succeeded');
  });

  it('6. refuses to restart from an image with one byte flipped, naming the epoch, the rank and the file', async () => {
    const run = start('flip', SORT);
    await waitRunning('flip');
    await ferryOk(['checkpoint', 'flip', '--stop']);
    const stopped = await run;
    expect(stopped.code, stopped.stderr).toBe(75); // stopped, to be continued: not a success
    const host = c.hosts.find((h) => h.name === 'host1')!;
    const dir = join(host.imagesDir, 'flip', '1', 'rank-1');
    const pages = readdirSync(dir).find((f) => f.startsWith('pages-'))!;
    const bytes = readFileSync(join(dir, pages));
    bytes[Math.floor(bytes.length / 2)] ^= 0x40;
    writeFileSync(join(dir, pages), bytes);
    const r = await c.ferry(['restart', 'flip', '--hosts', 'host2,host3'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`epoch 1 rank 1: ${pages}: sha256 mismatch`));
    const after = await job('flip');
    expect(after.state).toBe('stopped');
    expect(after.ranks.every((x) => x.state === 'exited')).toBe(true);
  });

  it('7. refuses a restart while the only copy of the images is on a host that is down, with nothing started', async () => {
    const run = start('down', SORT, 'host2,host3');
    await waitRunning('down');
    await ferryOk(['checkpoint', 'down', '--stop']);
    await run;
    await c.killAgent('host3', 'SIGKILL');
    await c.waitForHostStates({ host3: 'down' });
    const r = await c.ferry(['restart', 'down', '--hosts', 'host1,host2']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/epoch 1 of job down: the image of rank 2 is on host host3, which is down, and there is no other copy; nothing was started/);
    expect((await job('down')).state).toBe('stopped');
    await c.startAgent('host3');
  });

  it('8. refuses a restart where the executable is missing, naming the file and the host; it restarts once the file is back', async () => {
    const movable = join(c.tempDir, 'movable');
    mkdirSync(movable, { recursive: true });
    const exe = join(movable, 'sort');
    copyFileSync(join(bin, 'sort'), exe);
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'gone', exe, ...SORT.slice(1)], { timeoutMs: RUN_TIMEOUT_MS });
    await waitRunning('gone');
    await ferryOk(['checkpoint', 'gone', '--stop']);
    await run;
    renameSync(exe, `${exe}.away`);
    const r = await c.ferry(['restart', 'gone', '--hosts', 'host2,host3'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`host[23]: ${exe}: missing`));
    const after = await job('gone');
    expect(after.state).toBe('stopped');
    expect(after.ranks.every((x) => x.state === 'exited')).toBe(true);
    renameSync(`${exe}.away`, exe);
    await ferryOk(['restart', 'gone', '--hosts', 'host2,host3']);
    const attached = await c.ferry(['attach', 'gone'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(attached.code, attached.stderr).toBe(0);
    expect(checksumLine(attached.stdout)).toBe(reference.get('sort'));
  });

  it('8b. a job whose executable is rebuilt while it runs checkpoints with it in the image and restarts on two other hosts to the same result', async () => {
    const dir = join(c.tempDir, 'rebuilt');
    mkdirSync(dir, { recursive: true });
    const exe = join(dir, 'sort');
    copyFileSync(join(bin, 'sort'), exe);
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'rebuilt', exe, ...SORT.slice(1)], { timeoutMs: RUN_TIMEOUT_MS });
    await waitRunning('rebuilt');
    // What a linker does: a new file renamed over the old one, which the ranks still run.
    writeFileSync(`${exe}.new`, Buffer.concat([readFileSync(exe), Buffer.from('a newer build')]), { mode: 0o755 });
    renameSync(`${exe}.new`, exe);
    await ferryOk(['checkpoint', 'rebuilt', '--stop']);
    await run;
    const inspect = await ferryOk(['inspect', join(c.hosts[0].imagesDir, 'rebuilt', '1', 'rank-0')]);
    expect(inspect).toContain('\nfiles deleted while the rank held them, carried in the image (the restore needs nothing at their path):\n');
    expect(inspect).toMatch(new RegExp(`\\n${exe} +\\d+ +ghost-file-\\d+\\.img \\([^)]+\\) +exe,mapped\\n`));
    // Two ranks per host, restored at once from images that both recreate the old executable.
    await ferryOk(['restart', 'rebuilt', '--hosts', 'host2,host3']);
    const attached = await c.ferry(['attach', 'rebuilt'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(attached.code, `${attached.stderr}\n${c.logTails(30)}`).toBe(0);
    expect(checksumLine(attached.stdout)).toBe(reference.get('sort'));
    expect(readdirSync(dir)).toEqual(['sort']); // no ghost left behind
  });

  it("9. restarts from an older epoch a job whose ranks write their own files: what they wrote or appended after it is cut back, and the files end bit for bit as in an uninterrupted run", async () => {
    const run = start('files', [...JACOBI, ...outputArgs('files')]);
    await waitRunning('files');
    await sleep(800);
    await ferryOk(['checkpoint', 'files']); // epoch 1
    const atEpoch1 = (kind: 'history' | 'log') => outputFiles('files', kind).map((b) => b.length);
    const [history1, log1] = [atEpoch1('history'), atEpoch1('log')];
    await sleep(1_000);
    await ferryOk(['checkpoint', 'files', '--stop']); // epoch 2: the files have grown since epoch 1
    expect((await run).code).toBe(75);
    const grown = { history: outputFiles('files', 'history').map((b) => b.length), log: outputFiles('files', 'log').map((b) => b.length) };
    for (const r of [0, 1, 2, 3]) {
      expect(grown.history[r], `rank ${r}'s history`).toBeGreaterThan(history1[r]);
      expect(grown.log[r], `rank ${r}'s log`).toBeGreaterThan(log1[r]);
    }
    // ferry inspect shows which files a restart would cut back: those open for writing, with their size at the dump.
    const inspect = await ferryOk(['inspect', join(c.hosts[0].imagesDir, 'files', '1', 'rank-0')]);
    expect(inspect).toMatch(new RegExp(`\\n${outputPrefix('files', 'history')}\\.0 +\\d+ +write +fd`));
    expect(inspect).toMatch(new RegExp(`\\n${outputPrefix('files', 'log')}\\.0 +\\d+\\* +write,append +fd`));
    expect(inspect).toContain('(a restart from this image cuts a file open for writing back to its size at the dump if it grew since)');
    // Back to epoch 1: each rank's history goes back to the size CRIU recorded when it dumped the rank, and
    // its log (open for append: CRIU records no size) to the size Ferry's CRIU plugin recorded then.
    const restarted = JSON.parse(await ferryOk(['restart', 'files', '--epoch', '1', '--hosts', 'host2,host3', '--json']));
    for (const kind of ['history', 'log'] as const) {
      const cut = (restarted.notes as string[]).filter((n) => n.includes(outputPrefix('files', kind)));
      expect(cut).toHaveLength(4);
      for (const r of [0, 1, 2, 3]) {
        expect(cut.find((n) => n.includes(`${outputPrefix('files', kind)}.${r}:`))).toMatch(
          new RegExp(`^rank ${r} on host[23]: ${outputPrefix('files', kind)}\\.${r}: cut back from ${grown[kind][r]} to \\d+ bytes, its size at epoch 1 \\(written after that checkpoint\\)$`),
        );
      }
    }
    // The bytes FETCH cut were kept aside until the restart resumed (for PUT_BACK, had it failed): gone now.
    for (const h of c.hosts) expect(existsSync(join(h.imagesDir, '.cut-back', h.name, 'files')), `${h.name}: kept cut bytes`).toBe(false);
    const attached = await c.ferry(['attach', 'files'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(attached.code, `${attached.stderr}\n${c.logTails(30)}`).toBe(0);
    expect(checksumLine(attached.stdout)).toBe(reference.get('jacobi'));
    // Each rank's log on its new host says where the repeated output starts; the job's output does not.
    const noted = /\n?\[ferry [^\]]+\] rank (\d) of job files restored on (host[23]) from epoch 1: what it prints from here repeats its output after that checkpoint\n/;
    const notes = c.hosts.flatMap((h) => [0, 1, 2, 3].map((r) => join(h.logsDir, 'files', `rank-${r}.out`))).filter(existsSync).flatMap((f) => noted.exec(readFileSync(f, 'utf8'))?.[1] ?? []);
    expect(notes.sort()).toEqual(['0', '1', '2', '3']);
    expect(attached.stdout).not.toContain('[ferry ');
    for (const kind of ['history', 'log'] as const) {
      const expected = outputFiles('ref-jacobi', kind);
      for (const [r, bytes] of outputFiles('files', kind).entries()) expect(bytes.equals(expected[r]), `rank ${r}'s ${kind} file`).toBe(true);
    }
  });

  it('9b. a restart from an older epoch that fails after cutting the files back puts them back: the newer epoch still restores, bit for bit', async () => {
    const run = start('files2', [...JACOBI, ...outputArgs('files2')]);
    await waitRunning('files2');
    await sleep(800);
    await ferryOk(['checkpoint', 'files2']); // epoch 1
    await sleep(1_000);
    await ferryOk(['checkpoint', 'files2', '--stop']); // epoch 2
    expect((await run).code).toBe(75);
    const atEpoch2 = { history: outputFiles('files2', 'history'), log: outputFiles('files2', 'log') };
    // The restore precheck of epoch 1 fails (its executable is missing), after FETCH has cut the files back.
    const exe = join(bin, 'jacobi');
    renameSync(exe, `${exe}.away`);
    let failed: FerryResult;
    try {
      failed = await c.ferry(['restart', 'files2', '--epoch', '1', '--hosts', 'host2,host3'], { timeoutMs: RUN_TIMEOUT_MS });
    } finally {
      renameSync(`${exe}.away`, exe);
    }
    expect(failed.code, failed.stderr).not.toBe(0);
    expect(failed.stderr).toMatch(/RESTORE failed: .*jacobi.*\(files cut back before it: .*; all \d+ put back as they were after the restart failed\)/s);
    for (const kind of ['history', 'log'] as const) {
      for (const [r, bytes] of outputFiles('files2', kind).entries()) expect(bytes.equals(atEpoch2[kind][r]), `rank ${r}'s ${kind} file, put back`).toBe(true);
    }
    // So the newest epoch restores (its files are as long as its record) and the job ends as if never stopped.
    await ferryOk(['restart', 'files2', '--hosts', 'host2,host3']);
    const attached = await c.ferry(['attach', 'files2'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(attached.code, `${attached.stderr}\n${c.logTails(30)}`).toBe(0);
    expect(checksumLine(attached.stdout)).toBe(reference.get('jacobi'));
    for (const kind of ['history', 'log'] as const) {
      const expected = outputFiles('ref-jacobi', kind);
      for (const [r, bytes] of outputFiles('files2', kind).entries()) expect(bytes.equals(expected[r]), `rank ${r}'s ${kind} file`).toBe(true);
    }
  });

  it('10. checkpoints, migrates and restarts hybrid MPI+OpenMP ranks (2 threads each) to the uninterrupted result', async () => {
    const omp = buildExample(c, 'jacobi', { flags: ['-fopenmp'], as: 'jacobi-omp' });
    // Passive: threads waiting at the end of a parallel region sleep instead of spinning (8 threads on 2 cores here).
    const env = { OMP_NUM_THREADS: '2', OMP_WAIT_POLICY: 'passive' };
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'omp', omp, ...JACOBI.slice(1)], { timeoutMs: RUN_TIMEOUT_MS, env });
    await waitRunning('omp');
    // Each rank has its OpenMP worker besides its main thread and the runtime's progress thread.
    const threads = () => {
      try {
        return execFileSync('pgrep', ['-x', 'jacobi-omp'], { encoding: 'utf8' }).trim().split('\n').map((pid) => readdirSync(`/proc/${pid}/task`).length);
      } catch {
        return []; // none yet, or one ended between pgrep and the read
      }
    };
    await c.waitFor(async () => threads().length === 4 && threads().every((n) => n >= 3), '4 ranks of jacobi-omp with 3 threads each');
    await sleep(500);
    await ferryOk(['checkpoint', 'omp']);
    await ferryOk(['migrate', 'omp', '--rank', '2', '--to', 'host3']);
    await sleep(500);
    await ferryOk(['checkpoint', 'omp', '--stop']);
    expect((await run).code).toBe(75);
    await ferryOk(['restart', 'omp', '--hosts', 'host2,host3']);
    const attached = await c.ferry(['attach', 'omp'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(attached.code, `${attached.stderr}\n${c.logTails(30)}`).toBe(0);
    // The same line as the plain build's: the threads split rows, not arithmetic.
    expect(checksumLine(attached.stdout)).toBe(reference.get('jacobi'));
  });

  it('12. a job whose ranks write one shared file with MPI-IO, restarted from an older epoch on two other hosts, ends with the file bit for bit as an uninterrupted run leaves it', async () => {
    const prog = join(c.tempDir, 'bin', 'shared-file');
    execFileSync(process.execPath, [FERRY_CLI, 'mpicc', '-O2', '-o', prog, 'test/e2e/programs/shared-file.c'], { stdio: 'inherit' });
    const file = (jobId: string) => join(c.tempDir, 'outputs', `${jobId}.dat`);
    const STEPS = '250';
    const runShared = (jobId: string) =>
      c.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', jobId, prog, file(jobId), STEPS], { timeoutMs: RUN_TIMEOUT_MS });
    const ref = await runShared('ref-shared');
    expect(ref.code, ref.stderr).toBe(0);
    const refSum = /shared-file: \d+ ints, checksum \d+/.exec(ref.stdout)?.[0];
    expect(refSum, ref.stdout).toBeDefined();

    const run = runShared('shared');
    await c.waitFor(async () => rank0Output(c, 'shared').includes('shared-file: started'), 'shared-file started');
    await sleep(800);
    await ferryOk(['checkpoint', 'shared']); // epoch 1
    await sleep(1_000);
    await ferryOk(['checkpoint', 'shared', '--stop']); // epoch 2: the file has grown since epoch 1
    expect((await run).code).toBe(75);
    await ferryOk(['restart', 'shared', '--epoch', '1', '--hosts', 'host2,host3']);
    const attached = await c.ferry(['attach', 'shared'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(attached.code, `${attached.stderr}\n${c.logTails(30)}`).toBe(0);
    expect(/shared-file: \d+ ints, checksum \d+/.exec(attached.stdout)?.[0]).toBe(refSum);
    expect(readFileSync(file('shared')).equals(readFileSync(file('ref-shared'))), 'the shared file').toBe(true);
  });

  it('13. a job sharing work through one-sided communication (passive-target locks, fetch-and-op, accumulates, fence puts) is checkpointed, has a rank migrated and is restarted on two other hosts, to the uninterrupted totals', async () => {
    const prog = join(c.tempDir, 'bin', 'rma-tasks');
    execFileSync(process.execPath, [FERRY_CLI, 'mpicc', '-O2', '-o', prog, 'test/e2e/programs/rma-tasks.c'], { stdio: 'inherit' });
    // The job waits at three quarters of its steps until its gate file exists: the checkpoints and the
    // migration below happen before its end however fast or slow this machine runs it.
    const gate = (jobId: string) => join(c.tempDir, `${jobId}.gate`);
    const runTasks = (jobId: string) =>
      c.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', jobId, prog, '120', '24', gate(jobId)], { timeoutMs: RUN_TIMEOUT_MS });
    const totals = (out: string) => /rma-tasks: \d+ tasks done, sum \d+, xor \d+, ring \d+/.exec(out)?.[0];
    writeFileSync(gate('ref-rma'), '');
    const ref = await runTasks('ref-rma');
    expect(ref.code, ref.stderr).toBe(0);
    expect(totals(ref.stdout), ref.stdout).toBeDefined();

    const run = runTasks('rma');
    await c.waitFor(async () => rank0Output(c, 'rma').includes('rma-tasks: started'), 'rma-tasks started');
    await sleep(500);
    await ferryOk(['checkpoint', 'rma']);
    await ferryOk(['migrate', 'rma', '--rank', '0', '--to', 'host3']); // the rank whose window everyone uses
    await sleep(300);
    await ferryOk(['checkpoint', 'rma', '--stop']);
    expect((await run).code).toBe(75);
    writeFileSync(gate('rma'), '');
    await ferryOk(['restart', 'rma', '--hosts', 'host2,host3']);
    const attached = await c.ferry(['attach', 'rma'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(attached.code, `${attached.stderr}\n${c.logTails(30)}`).toBe(0);
    expect(totals(attached.stdout)).toBe(totals(ref.stdout));
  });

  it("11. a rank restored after it was stopped for a while does not see that time on its monotonic clock, nor the clock going back", async () => {
    const prog = join(c.tempDir, 'bin', 'clock-gap');
    execFileSync(process.execPath, [FERRY_CLI, 'mpicc', '-O2', '-o', prog, 'test/e2e/programs/clock-gap.c'], { stdio: 'inherit' });
    const run = c.ferry(['run', '-n', '2', '--hosts', 'host1,host2', '--job-id', 'clock', prog, '600'], { timeoutMs: RUN_TIMEOUT_MS });
    await c.waitFor(async () => rank0Output(c, 'clock').includes('clock-gap: started'), 'clock-gap started');
    await sleep(500);
    await ferryOk(['checkpoint', 'clock', '--stop']);
    expect((await run).code).toBe(75);
    const STOPPED_MS = 4_000;
    await sleep(STOPPED_MS);
    await ferryOk(['restart', 'clock', '--hosts', 'host2,host3']);
    const attached = await c.ferry(['attach', 'clock'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(attached.code, `${attached.stderr}\n${c.logTails(30)}`).toBe(0);
    const m = /clock-gap: iters=600 max_step_ms=(\d+) backwards=(\d+)/.exec(attached.stdout);
    expect(m, attached.stdout).not.toBeNull();
    expect(Number(m![2])).toBe(0);
    // CRIU restores the rank into a new time namespace whose clocks go on from their values at the dump
    // (criu check --feature timens; `ferry doctor` reports it): not the host's, which ran on meanwhile.
    expect(Number(m![1])).toBeLessThan(STOPPED_MS / 2);
  });
  it('14. rank 0 reading its standard input (ferry run --stdin) is checkpointed, migrated and restarted on other hosts halfway through it, and reads on from where it was', async () => {
    const prog = join(c.tempDir, 'bin', 'stdin-sum');
    execFileSync(process.execPath, [FERRY_CLI, 'mpicc', '-O2', '-o', prog, 'test/e2e/programs/stdin-sum.c'], { stdio: 'inherit' });
    // Larger than stdio's buffer: rank 0's file offset at each dump is in the middle of the file.
    const values = Array.from({ length: 3000 }, (_, i) => (i * 7919 + 104729) * 1000003 - (i % 13) * 999983);
    const input = join(c.tempDir, 'stdin-sum.in');
    writeFileSync(input, values.map((v) => `${v}\n`).join(''));
    const expected = `stdin-sum: lines=${values.length} sum=${values.reduce((a, v) => a + BigInt(v) * 3n, 0n)}`;
    const run = c.ferry(['run', '-n', '2', '--hosts', 'host1,host2', '--job-id', 'stdin', '--stdin', input, prog, '3'], { timeoutMs: RUN_TIMEOUT_MS });
    await c.waitFor(async () => rank0Output(c, 'stdin').includes('stdin-sum: started'), 'stdin-sum started');
    await sleep(1_500);
    await ferryOk(['checkpoint', 'stdin']);
    await ferryOk(['migrate', 'stdin', '--rank', '0', '--to', 'host3']);
    await sleep(1_500);
    await ferryOk(['checkpoint', 'stdin', '--stop']);
    const first = await run;
    expect(first.code, first.stderr).toBe(75);
    expect(first.stdout).not.toMatch(/lines=/); // stopped halfway through its input
    // The namespace hosts share this machine's /tmp, where the stopped ranks' init directories stay for a while
    // (keepInitDirs). Another machine would have none: remove them, so rank 0's input comes from its image.
    const initRoot = join(c.tempDir, 'rank-init');
    const left = readdirSync(initRoot).filter((d) => d.startsWith('stdin.'));
    expect(left.some((d) => existsSync(join(initRoot, d, 'stdin')))).toBe(true);
    for (const d of left) rmSync(join(initRoot, d), { recursive: true, force: true });
    await ferryOk(['restart', 'stdin', '--map', '0=host2,1=host1']);
    const attached = await c.ferry(['attach', 'stdin'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(attached.code, `${attached.stderr}\n${c.logTails(30)}`).toBe(0);
    expect(attached.stdout).toContain(expected);
  });

  it('15. ranks started by a wrapper script that runs the MPI program as its child are checkpointed, migrated, stopped and restarted on other hosts to the uninterrupted result', async () => {
    const wrapper = join(c.tempDir, 'bin', 'wrap.sh');
    // no exec: the shell stays the rank's program, the MPI program its child (a SIGUSR2 for the program ended the shell)
    writeFileSync(wrapper, '#!/bin/sh\necho "wrapper of rank $FERRY_RANK starts"\n"$@"\nrc=$?\necho "wrapper of rank $FERRY_RANK: exit $rc"\nexit $rc\n', { mode: 0o755 });
    const run = c.ferry(['run', '-n', '4', '--hosts', 'host1,host2', '--job-id', 'wrapped', wrapper, join(bin, SORT[0]), ...SORT.slice(1)], { timeoutMs: RUN_TIMEOUT_MS });
    await c.waitFor(async () => rank0Output(c, 'wrapped').includes('wrapper of rank 0 starts'), 'the wrapped job to start');
    await sleep(1_500);
    await ferryOk(['checkpoint', 'wrapped']);
    await ferryOk(['migrate', 'wrapped', '--rank', '1', '--to', 'host3']);
    await ferryOk(['checkpoint', 'wrapped', '--stop']);
    const first = await run;
    expect(first.code, first.stderr).toBe(75);
    await ferryOk(['restart', 'wrapped', '--hosts', 'host2,host3']);
    const attached = await c.ferry(['attach', 'wrapped'], { timeoutMs: RUN_TIMEOUT_MS });
    expect(attached.code, `${attached.stderr}\n${c.logTails(30)}`).toBe(0);
    expect(checksumLine(attached.stdout)).toBe(reference.get('sort'));
    expect(attached.stdout).toContain('wrapper of rank 0: exit 0');
  });
});
