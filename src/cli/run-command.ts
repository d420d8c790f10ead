// `ferry run`: submit a job, follow it to its end, exit with its status.
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { ErrorCode, JobState } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';
import { intOpt, onePositional, opt, parseArgs, parseDuration } from './args.js';
import { JobFollower, jobExitStatus } from './job-follower.js';
import { RankOutputWriter } from './rank-output-writer.js';
import { StopOnSignal, parseStopSignal } from './stop-on-signal.js';
import { COMMON_OPERATOR_OPTIONS, coordinatorAddress, jobJson, jobStateName, withClient } from './operator-commands.js';
import { rank0Stdin } from './rank0-stdin.js';
import { noteForClosedStdout } from './stdout-closed.js';

/** How long `ferry run` waits for the coordinator to accept the job. */
export const SUBMIT_TIMEOUT_MS = 30_000;

export async function runCommand(argv: string[]): Promise<number> {
  const cmd = 'ferry run';
  const p = parseArgs(
    cmd,
    argv,
    { ...COMMON_OPERATOR_OPTIONS, raw: {}, 'stop-on': { value: true }, 'checkpoint-every': { value: true }, 'keep-epochs': { value: true }, 'auto-restart': { value: true }, 'image-replicas': { value: true }, n: { value: true }, np: { value: true }, hosts: { value: true }, hostfile: { value: true }, 'job-id': { value: true }, stdin: { value: true } },
    true,
  );
  const [program, ...args] = p.positional;
  if (!program) throw new FerryError(ErrorCode.BAD_REQUEST, `${cmd}: missing program (ferry run -n N PROGRAM ARGS...)`);
  const n = intOpt(cmd, p, 'n', intOpt(cmd, p, 'np', 0, 1), 1);
  if (n === 0) throw new FerryError(ErrorCode.BAD_REQUEST, `${cmd}: missing option -n (the number of ranks)`);
  if (opt(p, 'hosts') && opt(p, 'hostfile')) throw new FerryError(ErrorCode.BAD_REQUEST, `${cmd}: give --hosts or --hostfile, not both`);
  const hosts = opt(p, 'hosts') ? opt(p, 'hosts')!.split(',').filter(Boolean) : opt(p, 'hostfile') ? readHostfile(opt(p, 'hostfile')!) : [];
  const path = program.includes('/') && !isAbsolute(program) ? resolve(program) : program;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('FERRY_')) env[k] = v;
  const json = p.options.has('json');
  const stopSignal = opt(p, 'stop-on') ? parseStopSignal(cmd, opt(p, 'stop-on')!) : undefined;
  const stdin = rank0Stdin(cmd, opt(p, 'stdin'));
  return withClient(coordinatorAddress(cmd, p), async (c) => {
    let jobId = '';
    // Ctrl-C and SIGTERM end the job on every host (unless --stop-on takes one of them).
    const forwarded = (['SIGINT', 'SIGTERM'] as NodeJS.Signals[]).filter((s) => s !== stopSignal);
    const onSignal = (signal: NodeJS.Signals) => {
      if (jobId) c.post({ signal_job: { job_id: jobId, signal } });
      else process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    };
    for (const s of forwarded) process.on(s, onSignal);
    const stopper = stopSignal ? new StopOnSignal(c, stopSignal, cmd, json) : undefined;
    const follower = new JobFollower(c, new RankOutputWriter(!p.options.has('raw')), json, cmd);
    try {
      c.request(
        {
          submit_job: {
            argv: [path, ...args],
            cwd: process.cwd(),
            env,
            world_size: n,
            hosts,
            follow: true,
            job_id: opt(p, 'job-id') ?? '',
            checkpoint_every_ms: opt(p, 'checkpoint-every') ? parseDuration(`${cmd}: --checkpoint-every`, opt(p, 'checkpoint-every')!) : 0,
            keep_epochs: intOpt(cmd, p, 'keep-epochs', 0, 1),
            auto_restarts: intOpt(cmd, p, 'auto-restart', 0, 0),
            own_image_replicas: opt(p, 'image-replicas') !== undefined,
            image_replicas: intOpt(cmd, p, 'image-replicas', 0, 0),
            stdin,
          },
        },
        {
          timeoutMs: SUBMIT_TIMEOUT_MS,
          follow: true,
          onNotice: (r) => {
            if (r.submit_job?.job && !jobId) {
              jobId = r.submit_job.job.id;
              if (!json) process.stderr.write(`ferry run: job ${jobId} ${r.submit_job.continued ? 'continues' : 'started'}, ${n} ranks\n`);
              noteForClosedStdout(`ferry run: standard output closed; job ${jobId} runs on ("ferry attach ${jobId}" follows it again)`);
              follower.follow(jobId, false);
              stopper?.jobStarted(jobId);
            }
            follower.onNotice(r);
          },
        },
      ).then(follower.onFinal, (err: Error) => follower.fail(err));
      const job = await follower.ended;
      if (json) process.stdout.write(JSON.stringify(jobJson(job), null, 2) + '\n');
      else if (job.state === JobState.JOB_STOPPED) process.stderr.write(`ferry run: job ${job.id} ${job.detail}\n`);
      else if (job.exit_code !== 0) process.stderr.write(`ferry run: job ${job.id} ${jobStateName(job.state)}: ${job.detail}\n`);
      return jobExitStatus(job);
    } finally {
      follower.stop();
      stopper?.dispose();
      for (const s of forwarded) process.off(s, onSignal);
    }
  });
}

/** `ferry attach JOB`: follow a job's output to its end (Ctrl-C detaches; the job goes on). */
export async function attachCommand(argv: string[]): Promise<number> {
  const cmd = 'ferry attach';
  const p = parseArgs(cmd, argv, { ...COMMON_OPERATOR_OPTIONS, raw: {}, 'stop-on': { value: true } });
  const jobId = onePositional(cmd, p, 'job id', 'ferry attach JOB [--stop-on SIGNAL]');
  const stopSignal = opt(p, 'stop-on') ? parseStopSignal(cmd, opt(p, 'stop-on')!) : undefined;
  return withClient(coordinatorAddress(cmd, p), async (c) => {
    noteForClosedStdout(`${cmd}: standard output closed; job ${jobId} runs on`);
    const follower = new JobFollower(c, new RankOutputWriter(!p.options.has('raw')), p.options.has('json'), cmd);
    const stopper = stopSignal ? new StopOnSignal(c, stopSignal, cmd, p.options.has('json')) : undefined;
    try {
      follower.follow(jobId);
      stopper?.jobStarted(jobId);
      const job = await follower.ended;
      if (p.options.has('json')) process.stdout.write(JSON.stringify(jobJson(job), null, 2) + '\n');
      else process.stderr.write(`${cmd}: job ${job.id} ${jobStateName(job.state)}${job.detail ? `: ${job.detail}` : ''}\n`);
      return jobExitStatus(job);
    } finally {
      follower.stop();
      stopper?.dispose();
    }
  });
}

/** Hostfile lines: "host" or "host slots=N" (slots repeat the host); # comments. */
export function readHostfile(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new FerryError(ErrorCode.BAD_REQUEST, `ferry run: cannot read hostfile ${file}: ${(err as Error).message}`);
  }
  const hosts: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const [name] = line.split(/\s+/);
    if (!hosts.includes(name)) hosts.push(name);
  }
  if (hosts.length === 0) throw new FerryError(ErrorCode.BAD_REQUEST, `ferry run: hostfile ${file} names no host`);
  return hosts;
}
