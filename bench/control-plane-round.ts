// Benchmark: a prepare/acknowledge round of the coordinator with simulated
// agents (4, 16 and 64 agents of 16 ranks, up to 1,024 ranks), and the
// coordinator's CPU per heartbeat. Everything is measured in this run and
// printed as ratios against the smallest configuration, plus a check that the
// cost follows the number of agents and not of ranks (16 agents carrying 1
// rank each against 16 agents carrying 64).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Catalog } from '../src/coordinator/catalog.js';
import { Coordinator } from '../src/coordinator/coordinator.js';
import { defaultCoordinatorConfig } from '../src/coordinator/coordinator-config.js';
import { RoundStep } from '../src/gen/proto.js';
import { ZmqServerTransport } from '../src/transport/zmq-transport.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 200);
const HEARTBEAT_WINDOW_MS = Number(process.env.BENCH_HEARTBEAT_WINDOW_MS ?? 3_000);
const SIM_HEARTBEAT_MS = 100;
const here = dirname(fileURLToPath(import.meta.url));

interface Result {
  agents: number;
  ranksPerAgent: number;
  roundMedianMs: number;
  roundP90Ms: number;
  cpuPerHeartbeatUs: number;
}

async function waitFor(pred: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`benchmark: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function measure(agents: number, ranksPerAgent: number): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-'));
  const catalog = Catalog.open(dir);
  const transport = await ZmqServerTransport.bind('tcp://127.0.0.1:0', { maxMessageBytes: 64 << 20 });
  const coordinator = new Coordinator(
    transport,
    catalog,
    defaultCoordinatorConfig({ heartbeatIntervalMs: SIM_HEARTBEAT_MS, heartbeatTimeoutMs: 30_000, listen: transport.address }),
  );
  coordinator.start();
  let child: ChildProcess | undefined;
  try {
    // The coordinator's own idle cost (timers, sweeps) over the same window,
    // subtracted below so the figure is the cost of heartbeats alone.
    const idle0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, HEARTBEAT_WINDOW_MS));
    const idle = process.cpuUsage(idle0);
    child = spawn(process.execPath, [join(here, 'simulated-agents.js'), transport.address, String(agents), String(ranksPerAgent)], {
      stdio: 'inherit',
      env: { ...process.env, SIM_HEARTBEAT_MS: String(SIM_HEARTBEAT_MS) },
    });
    await waitFor(() => coordinator.hosts.up().length === agents, `${agents} simulated agents to register`);
    const job = await coordinator.jobs.submit('bench', 1, {
      argv: ['/bench/app'],
      cwd: '/',
      env: {},
      world_size: agents * ranksPerAgent,
      hosts: [],
      rank_hosts: {},
      follow: false,
      job_id: 'bench',
      checkpoint_every_ms: 0, keep_epochs: 0, auto_restarts: 0, own_image_replicas: false, image_replicas: 0, stdin: new Uint8Array(0),
    });
    if (job.ranks?.length !== agents * ranksPerAgent) throw new Error('benchmark: the job did not get every rank');
    // Warm up, then time rounds one after the other.
    for (let i = 0; i < 20; i++) await coordinator.jobs.round('bench', RoundStep.PREPARE, i + 1, 10_000);
    const times: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const t0 = process.hrtime.bigint();
      const r = await coordinator.jobs.round('bench', RoundStep.PREPARE, 100 + i, 10_000);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (!r.ok) throw new Error(`benchmark: round failed: ${[...r.failures.values()][0]}`);
    }
    times.sort((a, b) => a - b);
    // CPU of this (the coordinator's) process per heartbeat, while idle otherwise.
    const hb0 = coordinator.stats.heartbeats;
    const cpu0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, HEARTBEAT_WINDOW_MS));
    const cpu = process.cpuUsage(cpu0);
    const heartbeats = coordinator.stats.heartbeats - hb0;
    return {
      agents,
      ranksPerAgent,
      roundMedianMs: times[Math.floor(times.length / 2)],
      roundP90Ms: times[Math.floor(times.length * 0.9)],
      cpuPerHeartbeatUs: Math.max(0, cpu.user + cpu.system - idle.user - idle.system) / Math.max(1, heartbeats),
    };
  } finally {
    child?.kill('SIGTERM');
    await coordinator.stop();
    catalog.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runControlPlaneBenchmark(): Promise<void> {
  const scaling = [];
  for (const agents of [4, 16, 64]) scaling.push(await measure(agents, 16));
  const base = scaling[0];
  console.log(`\ncontrol plane: one prepare/acknowledge round (median of ${ROUNDS}), coordinator CPU per heartbeat`);
  console.log('agents  ranks  round median  round p90  vs 4 agents  ranks vs 4 agents  CPU/heartbeat  vs 4 agents');
  for (const r of scaling) {
    console.log(
      [
        String(r.agents).padStart(6),
        String(r.agents * r.ranksPerAgent).padStart(5),
        `${r.roundMedianMs.toFixed(2)} ms`.padStart(12),
        `${r.roundP90Ms.toFixed(2)} ms`.padStart(9),
        `${(r.roundMedianMs / base.roundMedianMs).toFixed(2)}x`.padStart(11),
        `${(r.agents / base.agents).toFixed(0)}x`.padStart(17),
        `${r.cpuPerHeartbeatUs.toFixed(0)} us`.padStart(13),
        `${(r.cpuPerHeartbeatUs / base.cpuPerHeartbeatUs).toFixed(2)}x`.padStart(11),
      ].join('  '),
    );
  }
  const few = await measure(16, 1);
  const many = await measure(16, 64);
  console.log(
    `\nsame 16 agents, 1 vs 64 ranks each (16 vs 1,024 ranks): round median ${few.roundMedianMs.toFixed(2)} ms vs ` +
      `${many.roundMedianMs.toFixed(2)} ms = ${(many.roundMedianMs / few.roundMedianMs).toFixed(2)}x for 64x the ranks`,
  );
  const at1024 = scaling[scaling.length - 1];
  console.log(
    `target: a round well under 100 ms at 1,024 ranks: ${at1024.roundMedianMs.toFixed(2)} ms (${((at1024.roundMedianMs / 100) * 100).toFixed(1)}% of 100 ms) ` +
      (at1024.roundMedianMs < 100 ? 'MET' : 'MISSED'),
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runControlPlaneBenchmark().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
