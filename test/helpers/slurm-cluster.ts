// A real Slurm (Debian's slurmctld and slurmd, authenticated by MUNGE) on a
// test cluster's namespace hosts: one slurmd per host, each in that host's
// network namespace and in a UTS namespace named after the host (so Slurm's
// node name, and the hostname its tasks see, is the Ferry host's name);
// slurmctld and munged inside the first host. Configuration, key, state and
// logs live in the cluster's temp dir; the cluster's stop (its namespaces'
// processes are killed) ends whatever the daemons left, slurmstepds included.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DaemonProcess } from './daemon-process.js';
import type { TestCluster } from './cluster.js';

const execFileP = promisify(execFile);

export const SLURM_PROGRAMS = ['/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/bin/srun', '/usr/bin/scancel', '/usr/bin/sinfo', '/usr/sbin/munged'];
const DAEMON_START_TIMEOUT_MS = 30_000;
const NODES_IDLE_TIMEOUT_MS = 60_000;

/** Whether Debian's Slurm and MUNGE are installed (scripts/install-slurm.sh). */
export function slurmInstalled(): boolean {
  return SLURM_PROGRAMS.every((p) => existsSync(p));
}

export interface SlurmCluster {
  /** The environment srun, scancel and sinfo need (SLURM_CONF). */
  readonly env: NodeJS.ProcessEnv;
  /** ARGV run on HOST as a Slurm node sees it: its network namespace, its hostname. */
  command(host: string, argv: readonly string[]): string[];
  /** A Slurm command (sinfo, squeue, scancel) on the first host; rejects with its stderr on failure. */
  run(argv: readonly string[]): Promise<string>;
  /** Last lines of every Slurm daemon's log, for failure messages. */
  logTails(lines?: number): string;
  stop(): Promise<void>;
}

export async function startSlurm(c: TestCluster): Promise<SlurmCluster> {
  const dir = join(c.tempDir, 'slurm');
  const controller = c.hosts[0]!;
  mkdirSync(join(dir, 'state'), { recursive: true });
  for (const h of c.hosts) mkdirSync(join(dir, 'spool', h.name), { recursive: true });
  const keyFile = join(dir, 'munge.key');
  writeFileSync(keyFile, randomBytes(1024));
  chmodSync(keyFile, 0o400);
  const mungeSocket = join(dir, 'munge.socket');
  const conf = join(dir, 'slurm.conf');
  const cpuCount = cpus().length;
  writeFileSync(
    conf,
    [
      'ClusterName=ferrytest',
      `SlurmctldHost=${controller.name}(${controller.address})`,
      'SlurmctldPort=6817',
      'SlurmdPort=6818',
      'AuthType=auth/munge',
      `AuthInfo=socket=${mungeSocket}`,
      'CredType=cred/munge',
      'SlurmUser=root',
      'SlurmdUser=root',
      `StateSaveLocation=${join(dir, 'state')}`,
      `SlurmdSpoolDir=${join(dir, 'spool', '%n')}`,
      `SlurmctldPidFile=${join(dir, 'slurmctld.pid')}`,
      `SlurmdPidFile=${join(dir, 'slurmd-%n.pid')}`,
      // No cgroups: the tasks are `ferry rank-exec` clients; Ferry's agents run the ranks.
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      'SwitchType=switch/none',
      'MpiDefault=none',
      'MailProg=/bin/true',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core',
      'SchedulerType=sched/builtin',
      'ReturnToService=2',
      'KillWait=5',
      ...c.hosts.map((h) => `NodeName=${h.name} NodeAddr=${h.address} CPUs=${cpuCount} State=UNKNOWN`),
      `PartitionName=ferry Nodes=${c.hosts.map((h) => h.name).join(',')} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES`,
      '',
    ].join('\n'),
  );
  // slurmd sets up its cgroup plugin even with proctrack/linuxproc. Its autodetection fails on this machine's
  // hybrid layout (a tmpfs with v1 hierarchies), so name the version; v2 without systemd to ask for a scope.
  const cgroupV2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
  writeFileSync(join(dir, 'cgroup.conf'), cgroupV2 ? 'CgroupPlugin=cgroup/v2\nIgnoreSystemd=yes\n' : 'CgroupPlugin=cgroup/v1\n');
  const env: NodeJS.ProcessEnv = { ...process.env, SLURM_CONF: conf };
  const command = (host: string, argv: readonly string[]) =>
    c.network.command(host, ['unshare', '--uts', 'sh', '-c', 'hostname "$0" && exec "$@"', host, ...argv]);

  const daemons: DaemonProcess[] = [];
  const stop = async () => {
    await Promise.all(daemons.map((d) => d.stop()));
  };
  const logTails = (lines = 15) => daemons.map((d) => `--- ${d.name}\n${d.tail(lines)}`).join('\n');
  const start = async (d: DaemonProcess, ready: RegExp) => {
    daemons.push(d);
    d.start();
    await d.waitForOutput(ready, DAEMON_START_TIMEOUT_MS);
  };
  const run = async (argv: readonly string[]) => {
    const [cmd, ...args] = command(controller.name, argv);
    try {
      return (await execFileP(cmd!, args, { env, timeout: 30_000 })).stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`${argv.join(' ')}: ${e.stderr?.trim() || e.message}\n${logTails()}`);
    }
  };
  try {
    const munged = ['munged', '-F', '-f', `--key-file=${keyFile}`, `--socket=${mungeSocket}`, `--pid-file=${join(dir, 'munged.pid')}`, `--seed-file=${join(dir, 'munged.seed')}`];
    await start(new DaemonProcess('munged', command(controller.name, munged), join(dir, 'munged.log'), env), /Created \d+ work threads/);
    await start(new DaemonProcess('slurmctld', command(controller.name, ['slurmctld', '-D', '-f', conf]), join(dir, 'slurmctld.log'), env), /slurmctld version \S+ started/);
    await Promise.all(
      c.hosts.map((h) => start(new DaemonProcess(`slurmd ${h.name}`, command(h.name, ['slurmd', '-D', '-f', conf]), join(dir, `slurmd-${h.name}.log`), env), /slurmd started on/)),
    );
    // Every node registered and idle.
    const deadline = Date.now() + NODES_IDLE_TIMEOUT_MS;
    for (;;) {
      const states = (await run(['sinfo', '-h', '-N', '-o', '%N %t'])).trim().split('\n');
      if (states.length === c.hosts.length && states.every((l) => / idle$/.test(l))) break;
      if (Date.now() > deadline) throw new Error(`Slurm nodes not idle within ${NODES_IDLE_TIMEOUT_MS} ms: ${states.join('; ')}\n${logTails()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { env, command, run, logTails, stop };
}
