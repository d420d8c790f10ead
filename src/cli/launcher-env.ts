// What an existing launcher tells the process it starts: its rank, the world
// size, and a key that every rank of the same launch shares (so the
// coordinator can gather them into one job). Pure functions of the
// environment, so they can be tested without a launcher.
import { readFileSync } from 'node:fs';
import { ErrorCode } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';

type Env = Record<string, string | undefined>;

export interface LauncherRank {
  rank: number;
  size: number;
  /** Who set them, with the variables ("mpiexec (PMI_RANK/PMI_SIZE)"). */
  launcher: string;
}

/** The pairs of variables launchers set, in the order they are named in messages. */
export const LAUNCHER_RANK_VARIABLES = [
  { launcher: 'mpiexec', rank: 'PMI_RANK', size: 'PMI_SIZE' },
  { launcher: 'srun', rank: 'SLURM_PROCID', size: 'SLURM_NTASKS' },
  { launcher: "Open MPI's mpirun", rank: 'OMPI_COMM_WORLD_RANK', size: 'OMPI_COMM_WORLD_SIZE' },
] as const;

/** Variables the launcher set for itself: not passed on to the rank Ferry starts. */
export const LAUNCHER_VARIABLE_PREFIXES = ['PMI_', 'PMIX_', 'SLURM_', 'SLURMD_', 'OMPI_', 'HYDI_', 'HYDRA_', 'MPI_LOCALNRANKS', 'MPI_LOCALRANKID', 'MPIR_CVAR_CH3_INTERFACE_HOSTNAME'];

function bad(message: string): FerryError {
  return new FerryError(ErrorCode.BAD_REQUEST, `ferry rank-exec: ${message}`);
}

function parseCount(name: string, text: string, min: number): number {
  if (!/^\d+$/.test(text.trim())) throw bad(`${name}="${text}" is not a number`);
  const n = Number(text.trim());
  if (n < min) throw bad(`${name}=${n} must be at least ${min}`);
  return n;
}

/** The rank and size every launcher variable present agrees on; a clear error when none is set or they disagree. */
export function launcherRank(env: Env): LauncherRank {
  const found: LauncherRank[] = [];
  for (const v of LAUNCHER_RANK_VARIABLES) {
    const rank = env[v.rank];
    const size = env[v.size];
    if (rank === undefined && size === undefined) continue;
    if (rank === undefined || size === undefined) {
      throw bad(`${v.launcher} variables are incomplete: ${rank === undefined ? v.rank : v.size} is not set but ${rank === undefined ? v.size : v.rank} is`);
    }
    const r = { rank: parseCount(v.rank, rank, 0), size: parseCount(v.size, size, 1), launcher: `${v.launcher} (${v.rank}/${v.size})` };
    if (r.rank >= r.size) throw bad(`${v.rank}=${r.rank} is not below ${v.size}=${r.size}`);
    found.push(r);
  }
  if (found.length === 0) {
    const names = LAUNCHER_RANK_VARIABLES.map((v) => `${v.rank}/${v.size}`).join(', ');
    throw bad(`no launcher rank in the environment (none of ${names} is set): run it under a launcher, e.g. mpiexec -n 4 ferry rank-exec ./app`);
  }
  const disagree = found.find((f) => f.rank !== found[0].rank || f.size !== found[0].size);
  if (disagree) {
    throw bad(
      `the launcher variables disagree: ${found.map((f) => `${f.launcher} say rank ${f.rank} of ${f.size}`).join(', ')}`,
    );
  }
  return found[0];
}

export interface LaunchKeyContext {
  /** This node's Ferry host name (part of a key that only holds on one node). */
  host: string;
  /** The launcher's process that started this one (Hydra's proxy). */
  parentPid: number;
  /** The parent's start time, so a reused pid makes another key. */
  parentStartTime?: (pid: number) => string;
}

/**
 * The key that every rank of one launch shares:
 * - --job-key / FERRY_JOB_KEY when given;
 * - Slurm: the job and step ids;
 * - Open MPI: its PMIx namespace or job id;
 * - MPICH's Hydra: PMI_PORT (with -pmi-port), PMI_JOBID when set, else the
 *   pmi proxy that started every local rank (only when all ranks run on this
 *   node: MPI_LOCALNRANKS = PMI_SIZE).
 */
export function launchKey(env: Env, explicit: string | undefined, lr: LauncherRank, ctx: LaunchKeyContext): string {
  const given = explicit ?? env.FERRY_JOB_KEY;
  if (given !== undefined) {
    if (!given) throw bad('the job key (--job-key or FERRY_JOB_KEY) is empty');
    return `key:${given}`;
  }
  if (env.SLURM_PROCID !== undefined) {
    const job = env.SLURM_JOB_ID ?? env.SLURM_JOBID;
    const step = env.SLURM_STEP_ID ?? env.SLURM_STEPID;
    if (!job || step === undefined) throw bad(`srun set SLURM_PROCID but not ${!job ? 'SLURM_JOB_ID' : 'SLURM_STEP_ID'}: give --job-key or FERRY_JOB_KEY, the same for every rank`);
    return `slurm:${job}.${step}`;
  }
  if (env.OMPI_COMM_WORLD_RANK !== undefined) {
    const ns = env.PMIX_NAMESPACE ?? env.OMPI_MCA_ess_base_jobid;
    if (!ns) throw bad('Open MPI set no PMIX_NAMESPACE or OMPI_MCA_ess_base_jobid: give --job-key or FERRY_JOB_KEY, the same for every rank');
    return `ompi:${ns}`;
  }
  if (env.PMI_PORT) return `hydra:${env.PMI_PORT}`;
  if (env.PMI_JOBID) return `pmi:${env.PMI_JOBID}`;
  const local = env.MPI_LOCALNRANKS === undefined ? undefined : Number(env.MPI_LOCALNRANKS);
  if (local !== undefined && local !== lr.size) {
    throw bad(
      `${local} of the ${lr.size} ranks run on this node, and mpiexec names no launch all nodes share: ` +
        'run mpiexec with -pmi-port, or give every rank the same key (mpiexec -genv FERRY_JOB_KEY=SOMETHING-UNIQUE ...)',
    );
  }
  const started = (ctx.parentStartTime ?? processStartTime)(ctx.parentPid);
  return `hydra:${ctx.host}:${ctx.parentPid}:${started}`;
}

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
export function processStartTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '0';
  } catch {
    return '0';
  }
}

/** The user's environment for the rank, as `ferry run` passes it, without the launcher's own variables and Ferry's. */
export function rankEnvironment(env: Env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || k.startsWith('FERRY_')) continue;
    if (LAUNCHER_VARIABLE_PREFIXES.some((p) => k.startsWith(p))) continue;
    out[k] = v;
  }
  return out;
}
