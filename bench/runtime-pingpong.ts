// Benchmark (issue 3): ping-pong latency (0 B to 4 MiB) and streaming
// bandwidth between two ranks, three contenders measured in this run on the
// same path:
// - Ferry's runtime: bench/mpi-pingpong.c built with `ferry mpicc`, run with
//   `ferry run -n 2` on a local cluster;
// - Debian's MPICH over TCP (UCX_TLS=tcp,self: its shared-memory path off),
//   the same program built with mpicc.mpich, run with mpiexec.mpich;
// - raw TCP (bench/raw-tcp-pingpong.c, busy-polling): the limit.
// Paths: loopback inside one namespace host (all three), and two namespace
// hosts over veth + bridge (Ferry and raw TCP; Hydra cannot start a rank in
// another network namespace without ssh). Each contender runs ROUNDS times,
// interleaved, in an order that rotates every round (no contender always
// runs first or last). Within a run the programs time 20 batches per size and
// report the best batch's latency and the median batch's bandwidth (a stream's
// rate, not one lucky burst's); across runs, per size, the best round counts
// (least latency, most bandwidth), which filters out other work on this noisy
// machine. The load
// average before and after is printed with the tables, with a warning when
// other work ran: a contender that busy-polls without ever yielding (raw TCP)
// loses most from a shared core, so ratios measured under load flatter Ferry.
// Run: node dist/bench/run.js runtime-pingpong   (env: BENCH_PINGPONG_ROUNDS,
// BENCH_PINGPONG_MAX_BYTES, BENCH_PINGPONG_PATHS=loopback|veth|both)
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { FERRY_CLI, startTestCluster, type TestCluster } from '../src/local-cluster/local-cluster.js';
import { onProcessExit } from '../src/local-cluster/exit-cleanup.js';
import { packageRoot } from '../src/protocol/proto-root.js';

const ROUNDS = Number(process.env.BENCH_PINGPONG_ROUNDS ?? 3);
const PATHS = process.env.BENCH_PINGPONG_PATHS ?? 'both';
/** One-minute load average above this share of the cores: the figures are not trustworthy. */
const LOAD_WARN_PER_CORE = 0.5;
/** The load the benchmark adds itself: two busy-polling ranks. */
const OWN_LOAD = 2;
const MAX_BYTES = Number(process.env.BENCH_PINGPONG_MAX_BYTES ?? 4 << 20);
/** One contender run takes seconds; a hung one (UCX over TCP was seen stuck in a ping-pong) is killed and its printed sizes kept. */
const CONTENDER_TIMEOUT_MS = 60_000;
/** Targets from issue 3. */
const LATENCY_VS_RAW_MAX = 1.2;
const LATENCY_VS_MPICH_MAX = 1.0;
const BANDWIDTH_VS_RAW_MIN = 0.9;
/** Streaming bandwidth is judged from this size up (below it a stream measures message rate). */
const BANDWIDTH_TARGET_MIN_BYTES = 64 << 10;
const MPICH_CC = 'mpicc.mpich';
const MPICH_EXEC = 'mpiexec.mpich';

type Impl = 'raw' | 'mpich' | 'ferry';
interface Point {
  latencyUs: number;
  bandwidthMBps: number;
}
/** bytes -> best point over the rounds. */
type Series = Map<number, Point>;
interface Contender {
  series: Series;
  notes: Set<string>;
}

const LINE_RE = /pingpong impl=\S+ bytes=(\d+) iters=\d+ latency_us=([\d.]+) bw_iters=\d+ bandwidth_MBps=([\d.]+)/;

function parseInto(c: Contender, out: string): number {
  let n = 0;
  for (const line of out.split('\n')) {
    const m = LINE_RE.exec(line);
    if (!m) continue;
    n++;
    const bytes = Number(m[1]);
    const p = { latencyUs: Number(m[2]), bandwidthMBps: Number(m[3]) };
    const best = c.series.get(bytes);
    c.series.set(bytes, best ? { latencyUs: Math.min(best.latencyUs, p.latencyUs), bandwidthMBps: Math.max(best.bandwidthMBps, p.bandwidthMBps) } : p);
  }
  return n;
}

function expectedSizes(): number[] {
  const sizes: number[] = [];
  for (let b = 0; b <= MAX_BYTES; b = b === 0 ? 1 : b * 4) sizes.push(b);
  return sizes;
}

interface Output {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(argv: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = CONTENDER_TIMEOUT_MS): Promise<Output> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env, detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n[benchmark: killed after ${timeoutMs} ms]`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: stderr + String(e) });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Raw TCP: the server in `serverHost`, the client in `clientHost`, connecting to the server host's address. */
async function runRaw(c: TestCluster, bin: string, serverHost: string, clientHost: string): Promise<Output> {
  const address = c.hosts.find((h) => h.name === serverHost)!.address;
  const [cmd, ...args] = c.network.command(serverHost, [bin, 'server', address, '0', String(MAX_BYTES)]);
  const server = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      server.once('exit', (code) => reject(new Error(`raw-tcp-pingpong server exited ${code} before listening`)));
      createInterface({ input: server.stdout }).on('line', (line) => {
        const m = /^# listening port=(\d+)/.exec(line);
        if (m) resolve(Number(m[1]));
      });
    });
    return await run(c.network.command(clientHost, [bin, 'client', address, String(port), String(MAX_BYTES)]));
  } finally {
    server.kill('SIGKILL');
  }
}

function ratio(a: number | undefined, b: number | undefined): string {
  return a !== undefined && b !== undefined && b > 0 ? `${(a / b).toFixed(2)}x` : '-';
}

function mbps(p: Point | undefined): string {
  return p ? p.bandwidthMBps.toFixed(p.bandwidthMBps < 10 ? 2 : 0) : '-';
}

function fmtSize(b: number): string {
  return b >= 1 << 20 ? `${b >> 20} MiB` : b >= 1024 ? `${b >> 10} KiB` : `${b} B`;
}

function report(title: string, contenders: Map<Impl, Contender>): void {
  if (contenders.get('ferry')!.series.size === 0) return; // path not measured
  const raw = contenders.get('raw')!.series;
  const ferry = contenders.get('ferry')!.series;
  const mpich = contenders.get('mpich')?.series;
  console.log(`\n${title}`);
  const head = ['size', 'raw us', ...(mpich ? ['MPICH us'] : []), 'Ferry us', 'Ferry/raw', ...(mpich ? ['Ferry/MPICH'] : []), 'raw MB/s', ...(mpich ? ['MPICH MB/s'] : []), 'Ferry MB/s', 'bw Ferry/raw'];
  console.log(head.map((h) => h.padStart(13)).join(''));
  const misses: string[] = [];
  for (const bytes of expectedSizes()) {
    const r = raw.get(bytes);
    const f = ferry.get(bytes);
    const m = mpich?.get(bytes);
    const cells = [
      fmtSize(bytes),
      r?.latencyUs.toFixed(1) ?? '-',
      ...(mpich ? [m?.latencyUs.toFixed(1) ?? '-'] : []),
      f?.latencyUs.toFixed(1) ?? '-',
      ratio(f?.latencyUs, r?.latencyUs),
      ...(mpich ? [ratio(f?.latencyUs, m?.latencyUs)] : []),
      mbps(r),
      ...(mpich ? [mbps(m)] : []),
      mbps(f),
      ratio(f?.bandwidthMBps, r?.bandwidthMBps),
    ];
    console.log(cells.map((x) => x.padStart(13)).join(''));
    if (!f || !r) {
      misses.push(`${fmtSize(bytes)}: no figure (${!f ? 'Ferry' : 'raw'})`);
      continue;
    }
    if (f.latencyUs > LATENCY_VS_RAW_MAX * r.latencyUs) misses.push(`${fmtSize(bytes)}: latency ${(f.latencyUs / r.latencyUs).toFixed(2)}x raw > ${LATENCY_VS_RAW_MAX}x`);
    if (m && f.latencyUs > LATENCY_VS_MPICH_MAX * m.latencyUs) misses.push(`${fmtSize(bytes)}: latency ${(f.latencyUs / m.latencyUs).toFixed(2)}x MPICH (slower)`);
    if (bytes >= BANDWIDTH_TARGET_MIN_BYTES && f.bandwidthMBps < BANDWIDTH_VS_RAW_MIN * r.bandwidthMBps)
      misses.push(`${fmtSize(bytes)}: bandwidth ${(f.bandwidthMBps / r.bandwidthMBps).toFixed(2)}x raw < ${BANDWIDTH_VS_RAW_MIN}x`);
  }
  for (const [impl, c] of contenders) for (const note of c.notes) console.log(`note (${impl}): ${note}`);
  console.log(
    `targets: latency <= ${LATENCY_VS_RAW_MAX}x raw at every size${mpich ? ', never slower than MPICH' : ''}, bandwidth >= ${BANDWIDTH_VS_RAW_MIN}x raw from ${fmtSize(BANDWIDTH_TARGET_MIN_BYTES)}: ` +
      (misses.length === 0 ? 'MET' : `MISSED at ${misses.length} points:\n  ${misses.join('\n  ')}`),
  );
}

export async function runRuntimePingpongBenchmark(): Promise<void> {
  const root = packageRoot();
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-pingpong-'));
  const unregister = onProcessExit(() => rmSync(dir, { recursive: true, force: true }));
  let cluster: TestCluster | undefined;
  try {
    const rawBin = join(dir, 'raw-tcp-pingpong');
    const ferryBin = join(dir, 'ferry-pingpong');
    const mpichBin = join(dir, 'mpich-pingpong');
    execFileSync('cc', ['-O2', '-o', rawBin, join(root, 'bench', 'raw-tcp-pingpong.c')], { stdio: 'inherit' });
    execFileSync(process.execPath, [FERRY_CLI, 'mpicc', '-O2', '-o', ferryBin, join(root, 'bench', 'mpi-pingpong.c')], { stdio: 'inherit' });
    let haveMpich = true;
    try {
      // -w: MPICH's own mpi_proto.h trips -Wstringop-overflow on MPI_STATUSES_IGNORE.
      execFileSync(MPICH_CC, ['-O2', '-w', '-o', mpichBin, join(root, 'bench', 'mpi-pingpong.c')], { stdio: 'inherit' });
    } catch (e) {
      haveMpich = false;
      console.log(`MPICH left out: ${MPICH_CC} failed (${e instanceof Error ? e.message.split('\n')[0] : e}); install Debian's mpich`);
    }
    cluster = await startTestCluster({ hosts: 2 });
    const c = cluster;
    const fresh = (): Contender => ({ series: new Map(), notes: new Set() });
    const loop = new Map<Impl, Contender>([['raw', fresh()], ...(haveMpich ? [['mpich', fresh()] as [Impl, Contender]] : []), ['ferry', fresh()]]);
    const veth = new Map<Impl, Contender>([['raw', fresh()], ['ferry', fresh()]]);
    const sizes = expectedSizes().length;
    let jobs = 0;
    const record = (impl: Impl, into: Contender, what: string, out: Output): void => {
      const n = parseInto(into, out.stdout);
      if (out.code !== 0) {
        const bad = /BAD TERMINATION/.test(out.stdout + out.stderr) ? ' (BAD TERMINATION at exit)' : '';
        into.notes.add(`${what} exited ${out.code}${bad}; ${n} of ${sizes} sizes printed before it are used`);
        if (n === 0) console.error(`${impl} ${what} failed:\n${out.stderr.slice(-2000)}`);
      } else if (n < sizes) into.notes.add(`${what}: only ${n} of ${sizes} sizes printed`);
    };
    const loopRuns: [Impl, () => Promise<void>][] = [
      ['raw', async () => record('raw', loop.get('raw')!, 'raw TCP on loopback', await runRaw(c, rawBin, 'host1', 'host1'))],
      ...(haveMpich
        ? [['mpich', async () => {
            const argv = [MPICH_EXEC, '-launcher', 'fork', '-n', '2', mpichBin, String(MAX_BYTES), '--impl', 'mpich'];
            const out = await run(c.network.command('host1', argv), { ...process.env, UCX_TLS: 'tcp,self' });
            record('mpich', loop.get('mpich')!, 'mpiexec.mpich (UCX_TLS=tcp,self)', out);
          }] as [Impl, () => Promise<void>]]
        : []),
      ['ferry', async () => {
        const argv = ['run', '-n', '2', '--hosts', 'host1', '--job-id', `pp-loop-${jobs++}`, ferryBin, String(MAX_BYTES), '--impl', 'ferry'];
        record('ferry', loop.get('ferry')!, 'ferry run on one host', await c.ferry(argv, { timeoutMs: CONTENDER_TIMEOUT_MS }));
      }],
    ];
    const vethRuns: [Impl, () => Promise<void>][] = [
      ['raw', async () => record('raw', veth.get('raw')!, 'raw TCP over veth', await runRaw(c, rawBin, 'host2', 'host1'))],
      ['ferry', async () => {
        const argv = ['run', '-n', '2', '--hosts', 'host1,host2', '--job-id', `pp-veth-${jobs++}`, ferryBin, String(MAX_BYTES), '--impl', 'ferry'];
        record('ferry', veth.get('ferry')!, 'ferry run on two hosts', await c.ferry(argv, { timeoutMs: CONTENDER_TIMEOUT_MS }));
      }],
    ];
    const [loadBefore] = loadavg();
    for (let round = 0; round < ROUNDS; round++) {
      process.stderr.write(`runtime-pingpong: round ${round + 1}/${ROUNDS}\n`);
      for (const runs of [PATHS !== 'veth' ? loopRuns : [], PATHS !== 'loopback' ? vethRuns : []])
        for (let i = 0; i < runs.length; i++) await runs[(i + round) % runs.length][1]();
    }
    const [loadAfter] = loadavg();
    const cores = cpus().length;
    console.log(
      `\nrank runtime: ping-pong half round trip (us) and streaming bandwidth (MB/s, median of each run's batches), best of ${ROUNDS} interleaved rounds; ` +
        `ratios < 1 mean Ferry is faster (latency) / slower (bandwidth); load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after, on ${cores} cores`,
    );
    if (Math.max(loadBefore, loadAfter - OWN_LOAD) > LOAD_WARN_PER_CORE * cores)
      console.log(
        `WARNING: other work ran during the benchmark (beyond the load of about 2 that the two ranks add themselves); the busy-polling raw TCP contender suffers most from it, so these ratios flatter Ferry: run again on a quiet machine`,
      );
    report('loopback, both ranks in one namespace host (raw TCP and MPICH connect to the host address as Ferry does):', loop);
    report('two namespace hosts over veth + bridge (MPICH not measured: Hydra cannot place a rank in another network namespace without ssh):', veth);
  } finally {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
    unregister();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runRuntimePingpongBenchmark().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
