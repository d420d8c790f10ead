// `ferry forget HOST`: a host that is down is gone for good. The coordinator
// stops waiting for it, and says what went with it: the checkpoints that can
// no longer be restored, the jobs that lost ranks, the copies made anew.
import type { ForgetHostReply } from '../gen/proto.js';
import { onePositional, parseArgs } from './args.js';
import { COMMON_OPERATOR_OPTIONS, coordinatorAddress, withClient } from './operator-commands.js';

export async function forgetCommand(argv: string[]): Promise<number> {
  const cmd = 'ferry forget';
  const p = parseArgs(cmd, argv, COMMON_OPERATOR_OPTIONS);
  const host = onePositional(cmd, p, 'host', 'ferry forget HOST');
  const r = await withClient(coordinatorAddress(cmd, p), (c) => c.request({ forget_host: { host } }));
  const f = r.forget_host!;
  if (p.options.has('json')) process.stdout.write(JSON.stringify(forgottenJson(f), null, 2) + '\n');
  else process.stdout.write(forgottenLines(f).join('\n') + '\n');
  return 0;
}

function forgottenJson(f: ForgetHostReply) {
  return {
    host: f.host,
    lostEpochs: f.lost_epochs.map((e) => ({ jobId: e.job_id, epoch: Number(e.epoch), ranks: e.ranks })),
    imagesLost: f.images_lost,
    imagesKeptByReplicas: f.images_kept_by_replicas,
    replicasDropped: f.replicas_dropped,
    failedJobs: f.failed_jobs,
    sharedStore: f.shared_store,
    jobsGettingCopies: f.jobs_getting_copies,
  };
}

function forgottenLines(f: ForgetHostReply): string[] {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const lines = [`host ${f.host} forgotten`];
  if (f.shared_store) lines.push(`  its images stay in image store ${f.shared_store}, which other hosts share`);
  else if (f.images_lost === 0) lines.push('  no image of a committed epoch was there');
  if (f.images_lost > 0) {
    const kept = f.images_kept_by_replicas;
    lines.push(`  ${plural(f.images_lost, 'image')} of committed epochs were there` + (kept > 0 ? `; replicas on other hosts still hold ${kept} of them` : ''));
  }
  for (const e of f.lost_epochs) {
    lines.push(`  lost: job ${e.job_id} epoch ${e.epoch} (no other copy of rank${e.ranks.length > 1 ? 's' : ''} ${e.ranks.join(',')}): it can no longer be restored`);
  }
  if (f.replicas_dropped > 0) lines.push(`  ${plural(f.replicas_dropped, 'replica')} of other hosts' images were there`);
  if (f.failed_jobs.length > 0) lines.push(`  ranks lost now, without waiting for the host to come back: job${f.failed_jobs.length > 1 ? 's' : ''} ${f.failed_jobs.join(', ')} (ferry job JOB says what follows)`);
  if (f.jobs_getting_copies.length > 0) lines.push(`  new copies of the images of job${f.jobs_getting_copies.length > 1 ? 's' : ''} ${f.jobs_getting_copies.join(', ')} are being made on other hosts`);
  return lines;
}
