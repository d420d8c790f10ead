// `ferry coordinator` and `ferry agent`: the two daemons.
import { existsSync, mkdirSync } from 'node:fs';
import { cpus, networkInterfaces } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ErrorCode } from '../gen/proto.js';
import { Agent } from '../agent/agent.js';
import { LocalRankSteps } from '../agent/local-rank-steps.js';
import { RankChannelServer } from '../agent/rank-channel.js';
import { ImageTransferProcess } from '../images/image-transfer-process.js';
import { ensureImageStoreId } from '../images/image-store-id.js';
import { RANK_KILL_GRACE_MS, RankSupervisor } from '../agent/rank-supervisor.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { checkSafeName } from '../common/names.js';
import { Catalog } from '../coordinator/catalog.js';
import { Coordinator } from '../coordinator/coordinator.js';
import { catalogWriteError } from '../coordinator/catalog-errors.js';
import { LAUNCHER_LEASE_MS } from '../coordinator/launcher-leases.js';
import { StateDirLock } from '../coordinator/state-dir-lock.js';
import {
  defaultCoordinatorConfig,
  HEARTBEAT_INTERVAL_MS,
  HEARTBEAT_TIMEOUT_MS,
  HOST_REJOIN_GRACE_MS,
  MAX_IMAGE_REPLICAS,
  KEEP_EPOCHS,
  MAX_FRAME_BYTES,
} from '../coordinator/coordinator-config.js';
import { FERRY_VERSION } from '../coordinator/operator-service.js';
import { findCriuCandidates } from '../criu/criu-install.js';
import { packageRoot } from '../protocol/proto-root.js';
import { useClusterKey } from '../transport/cluster-key.js';
import { ZmqClientTransport, ZmqServerTransport } from '../transport/zmq-transport.js';
import { checkTcpAddress, intOpt, opt, parseArgs, requireOpt } from './args.js';

/** The abstract Unix socket name ranks use to reach their node's agent. */
export const DEFAULT_RANK_SOCKET = 'ferry-agent';

export async function coordinatorCommand(argv: string[]): Promise<number> {
  const cmd = 'ferry coordinator';
  const p = parseArgs(cmd, argv, {
    listen: { value: true },
    state: { value: true },
    'heartbeat-interval-ms': { value: true },
    'heartbeat-timeout-ms': { value: true },
    'max-frame-bytes': { value: true },
    'keep-epochs': { value: true },
    'host-rejoin-grace-ms': { value: true },
    'launcher-lease-ms': { value: true },
    'image-replicas': { value: true },
    key: { value: true },
  });
  const listen = checkTcpAddress(cmd, requireOpt(cmd, p, 'listen'), true);
  const key = useClusterKey(opt(p, 'key'));
  const stateDir = resolve(requireOpt(cmd, p, 'state'));
  const heartbeatIntervalMs = intOpt(cmd, p, 'heartbeat-interval-ms', HEARTBEAT_INTERVAL_MS, 10);
  const heartbeatTimeoutMs = intOpt(cmd, p, 'heartbeat-timeout-ms', Math.max(HEARTBEAT_TIMEOUT_MS, heartbeatIntervalMs * 3), 20);
  if (heartbeatTimeoutMs <= heartbeatIntervalMs) {
    throw new FerryError(ErrorCode.BAD_REQUEST, `${cmd}: --heartbeat-timeout-ms (${heartbeatTimeoutMs}) must exceed --heartbeat-interval-ms (${heartbeatIntervalMs})`);
  }
  const maxFrameBytes = intOpt(cmd, p, 'max-frame-bytes', MAX_FRAME_BYTES, 1024);
  const keepEpochs = intOpt(cmd, p, 'keep-epochs', KEEP_EPOCHS, 1);
  const hostRejoinGraceMs = intOpt(cmd, p, 'host-rejoin-grace-ms', HOST_REJOIN_GRACE_MS, 100);
  const launcherLeaseMs = intOpt(cmd, p, 'launcher-lease-ms', LAUNCHER_LEASE_MS, 1000);
  const imageReplicas = intOpt(cmd, p, 'image-replicas', 0, 0);
  if (imageReplicas > MAX_IMAGE_REPLICAS) throw new FerryError(ErrorCode.BAD_REQUEST, `${cmd}: --image-replicas must be at most ${MAX_IMAGE_REPLICAS}, got ${imageReplicas}`);
  mkdirSync(stateDir, { recursive: true });
  const lock = StateDirLock.acquire(stateDir);
  const catalog = Catalog.open(stateDir);
  let transport: ZmqServerTransport;
  try {
    // libzmq drops connections sending more than 4x the limit; between the
    // limit and that, the sender gets a FRAME_TOO_LARGE reply.
    transport = await ZmqServerTransport.bind(listen, { maxMessageBytes: maxFrameBytes * 4 });
  } catch (err) {
    catalog.close();
    lock.release();
    throw new FerryError(ErrorCode.UNAVAILABLE, `${cmd}: ${errorMessage(err)}`);
  }
  let coordinator: Coordinator;
  try {
    coordinator = new Coordinator(
      transport,
      catalog,
      defaultCoordinatorConfig({ heartbeatIntervalMs, heartbeatTimeoutMs, maxFrameBytes, keepEpochs, hostRejoinGraceMs, launcherLeaseMs, imageReplicas, listen: transport.address, clusterKey: key !== null }),
    );
  } catch (err) {
    // (it settles what the coordinator before it left in the catalog: a full disk refuses that)
    await transport.close();
    catalog.close();
    lock.release();
    throw catalogWriteError(err, catalog.file);
  }
  coordinator.onWarning = (message) => process.stderr.write(`ferry coordinator: warning: ${message}\n`);
  coordinator.start();
  process.stdout.write(
    `ferry coordinator listening on ${transport.address} (state ${stateDir}, instance ${coordinator.instance}; ` +
      `${key ? `cluster key ${key.file}` : 'no cluster key: anyone who reaches this port is let in'})\n`,
  );
  await untilSignal();
  await coordinator.stop();
  catalog.close();
  lock.release();
  return 0;
}

export async function agentCommand(argv: string[]): Promise<number> {
  const cmd = 'ferry agent';
  const p = parseArgs(cmd, argv, {
    coordinator: { value: true },
    name: { value: true },
    images: { value: true },
    address: { value: true },
    logs: { value: true },
    cpus: { value: true },
    'rank-socket': { value: true },
    'rank-kill-grace-ms': { value: true },
    'image-listen': { value: true },
    key: { value: true },
  });
  const coordinatorAddress = checkTcpAddress(cmd, requireOpt(cmd, p, 'coordinator'));
  const key = useClusterKey(opt(p, 'key'));
  const name = requireOpt(cmd, p, 'name');
  checkSafeName(`${cmd}: host name`, name);
  const images = resolve(requireOpt(cmd, p, 'images'));
  const logs = resolve(opt(p, 'logs') ?? join(dirname(images), 'logs'));
  mkdirSync(images, { recursive: true });
  mkdirSync(logs, { recursive: true });
  // Agents given one shared directory share its id: the coordinator lets them read each other's images in place.
  const imageStore = await ensureImageStoreId(images);
  const address = opt(p, 'address') ?? defaultAddress();
  const initPath = join(packageRoot(), 'build', 'bin', 'ferry-init');
  if (!existsSync(initPath)) throw new FerryError(ErrorCode.UNAVAILABLE, `${cmd}: ${initPath} is missing: run "npm run build"`);
  // The probe ran `criu check` and a test dump already: its answer is what the host registers with.
  const candidates = await findCriuCandidates().catch((e) => (process.stderr.write(`${cmd}: looking for CRIU: ${errorMessage(e)}\n`), []));
  const working = candidates.find((c) => c.working && c.version);
  const criu = working ? { command: working.command, version: working.version!, source: working.source } : null;
  const check = working
    ? { ok: true, detail: working.detail }
    : { ok: false, detail: candidates.length > 0 ? `no working CRIU: ${candidates.map((c) => `${c.command}: ${c.detail}`).join('; ')}` : 'no CRIU found (FERRY_CRIU, PATH, the CRIU cache)' };
  const rankSocket = opt(p, 'rank-socket') ?? DEFAULT_RANK_SOCKET;
  const ranks = new RankSupervisor({
    host: name,
    logsDir: logs,
    initPath,
    agentSocketName: rankSocket,
    killGraceMs: intOpt(cmd, p, 'rank-kill-grace-ms', RANK_KILL_GRACE_MS, 0),
    warn: (message) => process.stderr.write(`ferry agent ${name}: ${message}\n`),
  });
  const rankChannel = new RankChannelServer({
    socketName: rankSocket,
    authenticate: (jobId, rank, token) => ranks.checkRankToken(jobId, rank, token),
  });
  try {
    await rankChannel.listen();
  } catch (err) {
    throw new FerryError(
      ErrorCode.UNAVAILABLE,
      `${cmd}: cannot listen for ranks on the abstract socket @${rankSocket} (${errorMessage(err)}): is another agent running in this network namespace?`,
    );
  }
  // Other agents fetch this host's checkpoint images from here; this host's fetches run there too.
  const transfers = await ImageTransferProcess.start({
    listen: checkTcpAddress(cmd, opt(p, 'image-listen') ?? `tcp://${address}:0`, true),
    imagesRoot: images,
    key,
  });
  const agent = new Agent(
    {
      host: name,
      address,
      cpus: intOpt(cmd, p, 'cpus', cpus().length),
      criuVersion: criu?.version ?? '',
      criuCheckOk: check.ok,
      criuCheckDetail: check.detail,
      version: FERRY_VERSION,
      imageServer: transfers.address,
      imageStore,
    },
    () => {
      const t = new ZmqClientTransport(coordinatorAddress, { watchConnection: true });
      t.onRefused((why) => process.stderr.write(`ferry agent ${name}: the coordinator at ${coordinatorAddress}: ${why}; retrying\n`));
      return t;
    },
    ranks,
    {
      registered: () => process.stdout.write(`ferry agent ${name} registered\n`),
      warn: (message) => process.stderr.write(`ferry agent ${name}: ${message}\n`),
      fatal: (err) => {
        process.stderr.write(`ferry agent: ${err.message}\n`);
        process.exit(2);
      },
    },
    new LocalRankSteps({ host: name, imagesDir: images, ranks, rankChannel, criu, fetchImage: (o) => transfers.fetch(o) }),
    rankChannel,
  );
  agent.start();
  process.stdout.write(`ferry agent ${name} (${address}) connecting to ${coordinatorAddress}${key ? ` with cluster key ${key.file}` : ''}\n`);
  await untilSignal();
  await agent.stop();
  await rankChannel.close();
  await transfers.close();
  return 0;
}

function defaultAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}
