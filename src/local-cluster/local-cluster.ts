// A Ferry cluster on one machine, for integration tests, the demo and benchmarks: N namespace hosts on a bridge, a
// coordinator in the root namespace listening on the bridge address, one agent
// inside each host. Everything it starts or creates is removed by stop(), and
// also when the test process exits, is interrupted or is terminated.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FAULT_GATES_ENV } from '../agent/fault-gate.js';
import { RANK_INIT_ROOT_ENV } from '../agent/rank-init-dir.js';
import { createHostNetwork, sweepStaleHostNetworks, type HostNetwork, type NamespaceHost } from '../netns/index.js';
import { parseRunName } from '../netns/run-tag.js';
import { processAlive } from '../netns/stale-sweeper.js';
import { packageRoot } from '../protocol/proto-root.js';
import { CLUSTER_KEY_ENV, writeNewClusterKey } from '../transport/cluster-key.js';
import { DaemonProcess } from './daemon-process.js';
import { onProcessExit } from './exit-cleanup.js';
import { removeTree } from './remove-tree.js';

export const CLUSTER_START_TIMEOUT_MS = 60_000;
export const WAIT_FOR_DEFAULT_TIMEOUT_MS = 30_000;
export const FERRY_COMMAND_TIMEOUT_MS = 30_000;
/** Commands that work on this node only and take no --coordinator. */
const LOCAL_COMMANDS = new Set(['inspect', 'doctor', 'mpicc']);
const WAIT_POLL_MS = 100;
const TEMP_DIR_PREFIX = 'ferry-cluster-';
/** In a temp dir kept by FERRY_KEEP_CLUSTER_DIR=1 (its daemons stopped): the next clusters' sweep leaves it alone. */
const KEPT_MARKER = 'KEPT';

const COORDINATOR_READY_RE = /ferry coordinator listening on tcp:\/\/\S+/;
const agentRegisteredRe = (host: string): RegExp => new RegExp(`ferry agent ${host.replace(/[.]/g, '\\.')} registered`);

export type HostState = 'up' | 'down' | 'unknown';

export interface TestClusterOptions {
  hosts?: number | string[]; // default 3
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  hostRejoinGraceMs?: number; // the coordinator's --host-rejoin-grace-ms
  launcherLeaseMs?: number; // the coordinator's --launcher-lease-ms
  imageReplicas?: number; // the coordinator's --image-replicas
  rankKillGraceMs?: number; // the agents' --rank-kill-grace-ms
  startTimeoutMs?: number; // default CLUSTER_START_TIMEOUT_MS
  env?: NodeJS.ProcessEnv; // extra environment for the daemons (e.g. FERRY_TRACE)
  cliPath?: string; // default FERRY_CLI (dist/src/cli/main.js)
  // Groups of host names whose agents get one images dir between them (as
  // NFS would give them), e.g. [['host1', 'host2']]; other hosts get their own.
  sharedImages?: readonly (readonly string[])[];
  // A cluster key (cluster-key.ts) for the daemons and the `ferry` commands (FERRY_KEY): CURVE everywhere.
  clusterKey?: boolean;
  // Fault gates for the agents (agent/fault-gate.ts), in TEMP/fault-gates: see TestCluster.faultGatesDir.
  faultGates?: boolean;
}

export interface FerryResult {
  code: number | null; // null when killed (e.g. after FERRY_COMMAND_TIMEOUT_MS)
  stdout: string;
  stderr: string;
}

export interface ClusterHost extends NamespaceHost {
  imagesDir: string; // the agent's --images (the same for hosts of one sharedImages group)
  logsDir: string; // the agent's --logs (job output)
}

export interface HostRow {
  name: string;
  address: string;
  state: HostState;
  [field: string]: unknown;
}

export interface TestCluster {
  readonly network: HostNetwork;
  readonly hosts: readonly ClusterHost[];
  readonly coordinatorAddress: string; // tcp://BRIDGE_ADDRESS:PORT
  readonly stateDir: string;
  readonly tempDir: string;
  // Where a test closes and opens the agents' fault gates (agent/fault-gate.ts), with faultGates.
  readonly faultGatesDir?: string;
  // The CLI in the root namespace, --coordinator added unless ARGS has one.
  ferry(args: readonly string[], options?: { timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<FerryResult>;
  readonly keyFile?: string; // the cluster key, with clusterKey
  // The CLI inside HOST's network namespace.
  ferryOn(host: string, args: readonly string[], options?: { timeoutMs?: number }): Promise<FerryResult>;
  // `ferry hosts --json`, parsed; throws with the CLI's output if it fails.
  hostRows(): Promise<HostRow[]>;
  // Waits until every named host has the given state.
  waitForHostStates(expected: Record<string, HostState>, timeoutMs?: number): Promise<void>;
  killAgent(host: string, signal?: NodeJS.Signals): Promise<void>;
  // HOST dies: its agent and every process in its network namespace (its ranks among them) get SIGKILL.
  // Returns how many processes of the namespace were killed besides the agent.
  failHost(host: string): Promise<number>;
  // HOST's network is cut off the bridge (a partition: every process on it runs on) or joined again.
  partitionHost(host: string, cut: boolean): Promise<void>;
  // Starts HOST's agent again and waits for it to print that it registered.
  startAgent(host: string): Promise<void>;
  killCoordinator(signal?: NodeJS.Signals): Promise<void>;
  // Stops the coordinator (SIGSTOP) for MS, then lets it go on.
  pauseCoordinator(ms: number): Promise<void>;
  // Starts the coordinator again (same address and state dir); waits until it listens.
  startCoordinator(): Promise<void>;
  waitFor(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs?: number): Promise<void>;
  // Log of 'coordinator' or of a host's agent (all incarnations).
  logs(name: string): string;
  // Last lines of every daemon's log, for failure messages.
  logTails(lines?: number): string;
  stop(): Promise<void>;
}

export const FERRY_CLI = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');

function assertCliBuilt(cli: string): void {
  if (!existsSync(cli)) throw new Error(`cluster helper: ${cli} not found; run \`bash scripts/build.sh\` first`);
}

// A port free on ADDRESS right now (the coordinator binds it moments later).
async function freePort(address: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen({ host: address, port: 0, exclusive: true }, () => res());
  });
  const addr = server.address();
  await new Promise<void>((res) => server.close(() => res()));
  if (addr === null || typeof addr === 'string') throw new Error('cluster helper: no port from a TCP listener');
  return addr.port;
}

function runCommand(argv: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = FERRY_COMMAND_TIMEOUT_MS): Promise<FerryResult> {
  return new Promise((res) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    // A `ferry run` still following its job when this process ends (the demo stopped with Ctrl-C) goes too.
    const unregister = onProcessExit(() => child.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n[cluster helper: killed after ${timeoutMs} ms]`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      unregister();
      res({ code: null, stdout, stderr: stderr + String(err) });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      unregister();
      res({ code, stdout, stderr });
    });
  });
}

// Processes whose command line mentions DIR (the daemons of one cluster all
// get paths inside its temp dir).
function pidsMentioning(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

// Leftovers of clusters whose creating process died without stop() (e.g. a
// SIGKILLed test run): the coordinator still running in the root namespace
// and the temp dir. The dir's name carries the network's run tag and owner.
// (sweepStaleHostNetworks removes the hosts and what runs inside them.)
function sweepStaleClusterDirs(): void {
  for (const entry of readdirSync(tmpdir())) {
    if (!entry.startsWith(TEMP_DIR_PREFIX)) continue;
    // mkdtemp names look like ferry-cluster-<run tag>-XXXXXX
    const parsed = parseRunName(entry.slice(TEMP_DIR_PREFIX.length));
    if (!parsed || processAlive(parsed.ownerPid)) continue;
    const dir = join(tmpdir(), entry);
    if (existsSync(join(dir, KEPT_MARKER))) continue; // FERRY_KEEP_CLUSTER_DIR: stopped, kept on purpose
    for (const pid of pidsMentioning(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    removeTree(dir);
  }
}

// Everything left by test clusters whose process died: hosts (and whatever
// still runs in them), bridges, coordinators, temp dirs. startTestCluster
// calls it first; it never touches a cluster whose creating process is alive.
export async function sweepStaleTestClusters(): Promise<void> {
  await sweepStaleHostNetworks();
  sweepStaleClusterDirs();
}

// The images dir HOST shares with the other hosts of its group, if it is in one.
function sharedImagesDir(tempDir: string, host: string, groups: readonly (readonly string[])[]): string | undefined {
  const group = groups.find((g) => g.includes(host));
  return group && join(tempDir, 'shared-images', group.join('+'));
}

function checkSharedImages(groups: readonly (readonly string[])[], names: readonly string[]): void {
  const seen = new Set<string>();
  for (const group of groups) {
    for (const name of group) {
      if (!names.includes(name)) throw new Error(`cluster helper: sharedImages names host ${name}, not one of ${names.join(', ')}`);
      if (seen.has(name)) throw new Error(`cluster helper: host ${name} is in two sharedImages groups`);
      seen.add(name);
    }
  }
}

export async function startTestCluster(options: TestClusterOptions = {}): Promise<TestCluster> {
  const cli = options.cliPath ?? FERRY_CLI;
  assertCliBuilt(cli);
  await sweepStaleTestClusters();

  const network = await createHostNetwork({ hosts: options.hosts ?? 3 });
  try {
    checkSharedImages(options.sharedImages ?? [], network.hosts.map((h) => h.name));
  } catch (err) {
    await network.destroy();
    throw err;
  }
  const tempDir = mkdtempSync(join(tmpdir(), `${TEMP_DIR_PREFIX}${network.tag}-`));
  const daemons: DaemonProcess[] = [];
  let stopped = false;
  const cleanupSync = (): void => {
    for (const d of daemons) d.killSync();
    network.destroySync();
    removeTree(tempDir);
  };
  const unregister = onProcessExit(cleanupSync);

  // The ranks' init directories (rank-init-dir.ts) go with the cluster's temp dir, whatever becomes of its agents.
  const env: NodeJS.ProcessEnv = { ...process.env, [RANK_INIT_ROOT_ENV]: join(tempDir, 'rank-init'), ...options.env };
  const keyFile = options.clusterKey ? writeNewClusterKey(join(tempDir, 'cluster.key')).file : undefined;
  if (keyFile) env[CLUSTER_KEY_ENV] = keyFile;
  const faultGatesDir = options.faultGates ? join(tempDir, 'fault-gates') : undefined;
  if (faultGatesDir) {
    mkdirSync(faultGatesDir);
    env[FAULT_GATES_ENV] = faultGatesDir;
  }
  const stateDir = join(tempDir, 'state');
  const logDir = join(tempDir, 'logs');
  mkdirSync(stateDir);
  mkdirSync(logDir);
  const hosts: ClusterHost[] = network.hosts.map((h) => {
    const imagesDir = sharedImagesDir(tempDir, h.name, options.sharedImages ?? []) ?? join(tempDir, 'hosts', h.name, 'images');
    const logsDir = join(tempDir, 'hosts', h.name, 'logs');
    mkdirSync(imagesDir, { recursive: true });
    mkdirSync(logsDir, { recursive: true });
    return { ...h, imagesDir, logsDir };
  });

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(daemons.map((d) => d.stop()));
    await network.destroy();
    if (process.env.FERRY_KEEP_CLUSTER_DIR === '1') {
      writeFileSync(join(tempDir, KEPT_MARKER), 'kept for a look at its logs: remove it when done\n');
      process.stderr.write(`cluster helper: kept ${tempDir} (remove it when done: no later cluster sweeps it)\n`);
    } else {
      removeTree(tempDir);
    }
    unregister();
  };

  try {
    const port = await freePort(network.bridgeAddress);
    const coordinatorAddress = `tcp://${network.bridgeAddress}:${port}`;
    const node = process.execPath;

    const coordinatorArgv = [node, cli, 'coordinator', '--listen', coordinatorAddress, '--state', stateDir];
    if (options.heartbeatIntervalMs !== undefined) coordinatorArgv.push('--heartbeat-interval-ms', String(options.heartbeatIntervalMs));
    if (options.heartbeatTimeoutMs !== undefined) coordinatorArgv.push('--heartbeat-timeout-ms', String(options.heartbeatTimeoutMs));
    if (options.hostRejoinGraceMs !== undefined) coordinatorArgv.push('--host-rejoin-grace-ms', String(options.hostRejoinGraceMs));
    if (options.launcherLeaseMs !== undefined) coordinatorArgv.push('--launcher-lease-ms', String(options.launcherLeaseMs));
    if (options.imageReplicas !== undefined) coordinatorArgv.push('--image-replicas', String(options.imageReplicas));
    const coordinator = new DaemonProcess('coordinator', coordinatorArgv, join(logDir, 'coordinator.log'), env);
    daemons.push(coordinator);

    const agents = new Map<string, DaemonProcess>();
    for (const h of hosts) {
      const argv = network.command(h.name, [
        node, cli, 'agent',
        '--coordinator', coordinatorAddress,
        '--name', h.name,
        '--images', h.imagesDir,
        '--address', h.address,
        '--logs', h.logsDir,
        ...(options.rankKillGraceMs !== undefined ? ['--rank-kill-grace-ms', String(options.rankKillGraceMs)] : []),
      ]);
      const agent = new DaemonProcess(`agent ${h.name}`, argv, join(logDir, `agent-${h.name}.log`), env);
      agents.set(h.name, agent);
      daemons.push(agent);
    }
    const agentOf = (host: string): DaemonProcess => {
      const a = agents.get(host);
      if (!a) throw new Error(`cluster helper: no host ${host} (hosts: ${[...agents.keys()].join(', ')})`);
      return a;
    };

    const logTails = (lines = 25): string =>
      daemons.map((d) => `--- ${d.name} (${d.logFile}) ---\n${d.tail(lines)}`).join('\n');

    const waitFor = async (predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = WAIT_FOR_DEFAULT_TIMEOUT_MS): Promise<void> => {
      const deadline = Date.now() + timeoutMs;
      let lastError = '';
      for (;;) {
        try {
          if (await predicate()) return;
          lastError = '';
        } catch (err) {
          lastError = err instanceof Error ? err.message : String(err);
        }
        if (Date.now() > deadline) {
          throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}\n${logTails()}`);
        }
        await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
      }
    };

    // Right after the command name: for `ferry run`, whatever follows the
    // program belongs to the program.
    const withCoordinator = (args: readonly string[]): string[] =>
      args.includes('--coordinator') || LOCAL_COMMANDS.has(args[0])
        ? [...args]
        : [args[0], '--coordinator', coordinatorAddress, ...args.slice(1)];
    const ferry = (args: readonly string[], o: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<FerryResult> =>
      runCommand([node, cli, ...withCoordinator(args)], { ...env, ...o.env }, o.timeoutMs);
    const ferryOn = (host: string, args: readonly string[], o: { timeoutMs?: number } = {}): Promise<FerryResult> =>
      runCommand(network.command(host, [node, cli, ...withCoordinator(args)]), env, o.timeoutMs);

    const hostRows = async (): Promise<HostRow[]> => {
      const r = await ferry(['hosts', '--json']);
      if (r.code !== 0) throw new Error(`ferry hosts --json exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
      const rows = JSON.parse(r.stdout) as HostRow[];
      if (!Array.isArray(rows)) throw new Error(`ferry hosts --json printed no array: ${r.stdout}`);
      return rows;
    };

    const waitForHostStates = (expected: Record<string, HostState>, timeoutMs?: number): Promise<void> =>
      waitFor(
        async () => {
          const rows = await hostRows();
          return Object.entries(expected).every(([name, state]) => rows.find((row) => row.name === name)?.state === state);
        },
        `host states ${JSON.stringify(expected)}`,
        timeoutMs,
      );

    const startTimeoutMs = options.startTimeoutMs ?? CLUSTER_START_TIMEOUT_MS;
    const startCoordinator = async (): Promise<void> => {
      coordinator.start();
      await coordinator.waitForOutput(COORDINATOR_READY_RE, startTimeoutMs);
    };
    const startAgent = async (host: string): Promise<void> => {
      const agent = agentOf(host);
      agent.start();
      await agent.waitForOutput(agentRegisteredRe(host), startTimeoutMs);
    };

    await startCoordinator();
    await Promise.all(hosts.map((h) => startAgent(h.name)));
    await waitForHostStates(Object.fromEntries(hosts.map((h) => [h.name, 'up' as const])), startTimeoutMs);

    return {
      network,
      hosts,
      coordinatorAddress,
      stateDir,
      tempDir,
      faultGatesDir,
      ferry,
      ferryOn,
      keyFile,
      hostRows,
      waitForHostStates,
      killAgent: (host, signal = 'SIGKILL') => agentOf(host).kill(signal),
      failHost: async (host) => {
        await agentOf(host).kill('SIGKILL');
        const ns = hosts.find((h) => h.name === host)!.netns;
        const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        return pids.length;
      },
      partitionHost: (host, cut) => network.setConnected(host, !cut),
      startAgent,
      killCoordinator: (signal = 'SIGKILL') => coordinator.kill(signal),
      pauseCoordinator: (ms) => coordinator.pause(ms),
      startCoordinator,
      waitFor,
      logs: (name) => (name === 'coordinator' ? coordinator : agentOf(name)).log(),
      logTails,
      stop,
    };
  } catch (err) {
    const tails = daemons.map((d) => `--- ${d.name} ---\n${d.tail()}`).join('\n');
    await stop().catch(() => cleanupSync());
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`test cluster did not start: ${message}${message.includes('--- ') ? '' : `\n${tails}`}`);
  }
}
