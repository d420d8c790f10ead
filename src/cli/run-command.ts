// `ferry run`: submit a job, follow it to its end, exit with its status.
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { ErrorCode, type JobInfo, type OperatorReply } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';
import { intOpt, opt, parseArgs, parseDuration } from './args.js';
import { RankOutputWriter } from './rank-output-writer.js';
import { COMMON_OPERATOR_OPTIONS, coordinatorAddress, jobJson, jobStateName, withClient } from './operator-commands.js';

/** How long `ferry run` waits for the coordinator to accept the job. */
export const SUBMIT_TIMEOUT_MS = 30_000;
/** How often a running `ferry run` renews its follow of the job. */
export const FOLLOW_RENEW_MS = 2_000;

export async function runCommand(argv: string[]): Promise<number> {
  const cmd = 'ferry run';
  const p = parseArgs(
    cmd,
    argv,
    { ...COMMON_OPERATOR_OPTIONS, raw: {}, 'checkpoint-every': { value: true }, n: { value: true }, np: { value: true }, hosts: { value: true }, hostfile: { value: true }, 'job-id': { value: true } },
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
  return withClient(coordinatorAddress(cmd, p), async (c) => {
    let jobId = '';
    const onSignal = (signal: NodeJS.Signals) => {
      if (jobId) c.post({ signal_job: { job_id: jobId, signal } });
      else process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const output = new RankOutputWriter(!p.options.has('raw'));
    const onNotice = (r: OperatorReply) => {
      if (r.job_output) output.write(r.job_output.rank, r.job_output.stream, r.job_output.data);
    };
    let renewTimer: NodeJS.Timeout | undefined;
    try {
      const job = await new Promise<JobInfo>((resolve, reject) => {
        const done = (r: OperatorReply) => {
          const info = r.job_ended?.job ?? r.submit_job?.job;
          if (info) resolve(info);
          else reject(new FerryError(ErrorCode.MALFORMED, 'the coordinator ended the run without the job'));
        };
        let warned = false;
        // Renewing the follow lets a restarted coordinator learn about us.
        const renew = () => {
          c.request({ follow_job: { job_id: jobId } }, { follow: true, onNotice }).then(done, (err: unknown) => {
            if (err instanceof FerryError && err.code === ErrorCode.UNAVAILABLE) {
              if (!warned && !json) process.stderr.write(`ferry run: ${err.message}; the job may still run, waiting for the coordinator\n`);
              warned = true;
            } else reject(err);
          });
        };
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
            },
          },
          {
            timeoutMs: SUBMIT_TIMEOUT_MS,
            follow: true,
            onNotice: (r) => {
              if (r.submit_job?.job && !jobId) {
                jobId = r.submit_job.job.id;
                if (!json) process.stderr.write(`ferry run: job ${jobId} started, ${n} ranks\n`);
                renewTimer = setInterval(renew, FOLLOW_RENEW_MS);
              }
              onNotice(r);
            },
          },
        ).then(done, reject);
      });
      output.flush();
      if (json) process.stdout.write(JSON.stringify(jobJson(job), null, 2) + '\n');
      else if (job.exit_code !== 0) process.stderr.write(`ferry run: job ${job.id} ${jobStateName(job.state)}: ${job.detail}\n`);
      return job.exit_code & 0xff || (job.exit_code !== 0 ? 1 : 0);
    } finally {
      if (renewTimer) clearInterval(renewTimer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
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
