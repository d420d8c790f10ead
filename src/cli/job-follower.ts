// Follows a job to its end: its output as it comes, then the final state. The
// follow is renewed every FOLLOW_RENEW_MS, so a coordinator that restarted
// learns about the follower again; while the coordinator is unreachable the
// follower waits (the job may well be running) and says so once.
import { ErrorCode, JobState, type JobInfo, type LauncherProcessInit, type OperatorReply } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';
import { SourceEnds } from '../common/source-ends.js';
import type { OperatorClient } from './operator-client.js';
import type { RankOutputWriter } from './rank-output-writer.js';

/** How often a follower renews its follow of the job. */
export const FOLLOW_RENEW_MS = 2_000;
/** A follower tells the coordinator how much output it took after each this many bytes (and at each renewal). */
export const OUTPUT_COUNT_EVERY_BYTES = 512 * 1024;

export class JobFollower {
  private timer: NodeJS.Timeout | undefined;
  private warned = false;
  /**
   * Ids of the follow requests not settled, oldest first. The coordinator keeps
   * one follow per client and job, the newest: once a newer one is answered,
   * the older ones hear nothing more and are forgotten (a week-long job renews
   * 300,000 times).
   */
  private readonly follows: number[] = [];
  /**
   * Output bytes taken (written out: a stdout pipe not read holds them back, and with them the job's
   * output, at the coordinator and then in the agents' log files), and as told to the coordinator
   * (follower-link.ts paces what it sends by it).
   */
  private received = 0;
  /** What of each source of output was written: what a new coordinator sends again is written once. */
  private readonly written = new SourceEnds();
  private told = -1;
  private stopped = false;
  private jobId = '';
  private settle: { resolve: (job: JobInfo) => void; reject: (err: Error) => void } | undefined;
  readonly ended: Promise<JobInfo>;

  constructor(
    private readonly c: OperatorClient,
    private readonly output: RankOutputWriter,
    private readonly quiet: boolean,
    private readonly who: string,
    private readonly renewMs = FOLLOW_RENEW_MS,
  ) {
    this.ended = new Promise<JobInfo>((resolve, reject) => (this.settle = { resolve, reject }));
  }

  /** Output notices of any request about the job go through here. */
  readonly onNotice = (r: OperatorReply): void => {
    if (this.follows.includes(r.reply_to)) while (this.follows[0] !== r.reply_to) this.c.forget(this.follows.shift()!);
    if (r.job_output) {
      const { rank, stream, source, offset, data } = r.job_output;
      const bytes = data.length;
      // (counted whole, as sent: the coordinator paces by what it sent)
      this.output.write(rank, stream, this.written.unseen(rank, stream, source, offset, data), () => {
        this.received += bytes;
        if (this.received - this.told >= OUTPUT_COUNT_EVERY_BYTES) this.tellReceived();
      });
    }
    if (r.job_notice && !this.quiet) {
      process.stderr.write(`${this.who}: job ${r.job_notice.job_id}: ${r.job_notice.message}\n`);
    }
  };

  /** A final reply that carries the ended job settles the follower. */
  readonly onFinal = (r: OperatorReply): void => {
    const info = r.job_ended?.job ?? r.submit_job?.job;
    if (info) this.finish(info);
    else this.fail(new FerryError(ErrorCode.MALFORMED, 'the coordinator ended the follow without the job'));
  };

  /**
   * Starts (and keeps renewing) the follow of `jobId`: the output of `ranks`
   * only, if given; `launcher`: as their launcher's process (ferry rank-exec),
   * whose renewals keep the job, and which the coordinator can ask its host
   * about when they stop.
   */
  follow(jobId: string, now = true, ranks: number[] = [], launcher?: LauncherProcessInit): void {
    const renew = () => {
      let id = 0;
      const onId = (n: number) => this.follows.push((id = n));
      const as = launcher ? { launcher: true, launcher_process: launcher } : {};
      this.c.request({ follow_job: { job_id: jobId, ranks, ...as } }, { follow: true, onNotice: this.onNotice, onId }).then(this.onFinal, (err: unknown) => {
        const i = this.follows.indexOf(id);
        if (i >= 0) this.follows.splice(i, 1);
        if (err instanceof FerryError && err.code === ErrorCode.UNAVAILABLE) {
          if (!this.warned && !this.quiet) process.stderr.write(`${this.who}: ${err.message}; the job may still run, waiting for the coordinator\n`);
          this.warned = true;
        } else this.fail(err as Error);
      });
    };
    this.jobId = jobId;
    if (now) renew();
    // (after the follow, on the same connection: the coordinator knows the follower when it hears the count)
    this.tellReceived();
    this.timer = setInterval(() => {
      renew();
      this.tellReceived();
    }, this.renewMs);
  }

  private tellReceived(): void {
    if (!this.jobId || this.stopped) return;
    this.c.post({ output_received: { job_id: this.jobId, bytes: this.received } });
    this.told = this.received;
  }

  fail(err: Error): void {
    this.stop();
    this.settle?.reject(err);
  }

  private finish(job: JobInfo): void {
    this.stop();
    this.output.flush();
    this.settle?.resolve(job);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const id of this.follows.splice(0)) this.c.forget(id);
  }
}

/**
 * What `ferry run` and `ferry attach` exit with for a job stopped after a
 * checkpoint (ferry checkpoint --stop, --stop-on): not done, to be continued
 * with ferry restart (sysexits' EX_TEMPFAIL, "try again later").
 */
export const STOPPED_EXIT_STATUS = 75;

/** The exit status a launcher gives for a job: its first non-zero rank status (STOPPED_EXIT_STATUS for a stopped job). */
export function jobExitStatus(job: JobInfo): number {
  if (job.state === JobState.JOB_STOPPED) return STOPPED_EXIT_STATUS;
  return job.exit_code & 0xff || (job.exit_code !== 0 ? 1 : 0);
}
