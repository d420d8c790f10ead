// `ferry run --stop-on SIGNAL` and `ferry attach JOB --stop-on SIGNAL`: the
// warning a batch system sends before a job's time limit (Slurm's
// `--signal=B:USR1@300`, say) checkpoints the job and stops it, instead of
// reaching the ranks. The command then ends with STOPPED_EXIT_STATUS, and the
// next allocation continues the job with `ferry restart JOB`. A checkpoint that
// is refused because another one runs is asked again until that one is done;
// one that fails leaves the job running (the command says so and follows on).
import { constants as osConstants } from 'node:os';
import { ErrorCode } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';
import type { OperatorClient } from './operator-client.js';
import { CHECKPOINT_CLIENT_TIMEOUT_MS } from './checkpoint-commands.js';

/** How long a stop waits for a checkpoint, restart or migration of the job that runs already. */
export const STOP_BUSY_WAIT_MS = 120_000;
const BUSY_RETRY_MS = 1_000;

/** "USR1", "SIGUSR1", "sigusr1" -> "SIGUSR1"; refuses what cannot be caught. */
export function parseStopSignal(cmd: string, text: string): NodeJS.Signals {
  const name = (text.toUpperCase().startsWith('SIG') ? text.toUpperCase() : `SIG${text.toUpperCase()}`) as NodeJS.Signals;
  if (!(name in osConstants.signals) || name === 'SIGKILL' || name === 'SIGSTOP') {
    throw new FerryError(ErrorCode.BAD_REQUEST, `${cmd}: --stop-on needs a signal that can be caught (SIGUSR1, SIGTERM, ...), got "${text}"`);
  }
  return name;
}

export class StopOnSignal {
  private jobId = '';
  private requested = false;
  private readonly onSignal = () => this.stop();

  constructor(
    private readonly c: OperatorClient,
    readonly signal: NodeJS.Signals,
    private readonly who: string,
    private readonly quiet: boolean,
  ) {
    process.on(signal, this.onSignal);
  }

  /** The job is known (a signal that came before is acted on now). */
  jobStarted(jobId: string): void {
    this.jobId = jobId;
    if (this.requested) void this.checkpoint();
  }

  dispose(): void {
    process.off(this.signal, this.onSignal);
  }

  private stop(): void {
    if (this.requested) {
      this.say(`${this.signal} again: the job is being stopped already`);
      return;
    }
    this.requested = true;
    if (this.jobId) void this.checkpoint();
  }

  private async checkpoint(): Promise<void> {
    this.say(`${this.signal}: checkpointing job ${this.jobId} to stop it`);
    const deadline = Date.now() + STOP_BUSY_WAIT_MS;
    for (let told = false; ; ) {
      try {
        const r = await this.c.request({ checkpoint: { job_id: this.jobId, stop: true } }, { timeoutMs: CHECKPOINT_CLIENT_TIMEOUT_MS });
        this.say(`job ${this.jobId} stopped after checkpoint epoch ${r.checkpoint?.epoch?.epoch ?? '?'}`);
        return;
      } catch (err) {
        if (err instanceof FerryError && err.code === ErrorCode.BUSY && Date.now() < deadline) {
          if (!told) this.say(`waiting to stop the job: ${err.message}`);
          told = true;
          await new Promise((r) => setTimeout(r, BUSY_RETRY_MS));
          continue;
        }
        // (the coordinator's message says the job keeps running, and which checkpoint stays the last)
        this.say(`could not checkpoint and stop job ${this.jobId}: ${(err as Error).message}`, true);
        this.requested = false; // a later signal tries again
        return;
      }
    }
  }

  private say(text: string, always = false): void {
    if (always || !this.quiet) process.stderr.write(`${this.who}: ${text}\n`);
  }
}
