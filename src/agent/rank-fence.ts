// Fencing: an agent cut off from its coordinator stops its ranks before the
// coordinator can give them up.
//
// A coordinator that has not heard a host for its heartbeat timeout marks it
// down, and after its rejoin grace gives up the ranks there: their job fails,
// or restarts from its last epoch on other hosts (--auto-restart, or an
// operator's `ferry restart`). When the host was only cut off (a pulled cable,
// a switch port down), its ranks still run: a second copy of each would
// compute, print and write the job's files alongside the restored one until
// the host came back and its copies were killed.
//
// So an agent that has not heard the coordinator for that same grace stops
// its ranks (SIGTSTP to each rank's ferry-init, which stops its whole PID
// namespace) and marks them fenced in its rank table. The coordinator gives a
// host up no sooner than a heartbeat timeout plus the grace after it last heard
// it; the agent last heard the coordinator no earlier than that, so its ranks
// are stopped first. When a coordinator answers again, the ranks it gave up
// have been SIGKILLed by then (it sends that before it answers the
// registration, on the same connection), and the others continue.
//
// A coordinator that is down, not cut off, stops the ranks in the same way
// after the grace: without a coordinator nothing can tell the two apart, and
// a stopped rank loses time, never results.
import type { RankRunner } from './rank-supervisor.js';

/** While fenced, ranks that start running meanwhile (a restore that ended) are stopped at this pace. */
export const FENCE_RECHECK_MS = 1_000;

export class RankFence {
  private timer: NodeJS.Timeout | undefined;
  private active = false;

  constructor(
    private readonly ranks: Pick<RankRunner, 'fence' | 'unfence'>,
    /** What an operator reads in the agent's log. */
    private readonly say: (message: string) => void,
  ) {}

  /**
   * The session was lost; the coordinator last answered at `heardMs`. Unless one answers before, the
   * ranks are stopped at `heardMs + graceMs` (graceMs 0: never, a coordinator that does not fence).
   */
  arm(heardMs: number, graceMs: number): void {
    if (!this.ranks.fence || graceMs <= 0 || this.timer || this.active) return;
    const fire = () => {
      this.timer = undefined;
      this.active = true;
      this.fenceNow(graceMs);
    };
    this.timer = setTimeout(fire, Math.max(0, heardMs + graceMs - Date.now()));
    this.timer.unref?.();
  }

  private fenceNow(graceMs: number): void {
    if (!this.active) return;
    const stopped = this.ranks.fence!();
    if (stopped.length > 0) {
      this.say(
        `no coordinator has answered for ${graceMs} ms, its grace for a host that went down: ranks ${stopped.join(', ')} are stopped ` +
          'until one answers, so that they never run alongside copies of them it restarts elsewhere',
      );
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.fenceNow(graceMs);
    }, FENCE_RECHECK_MS);
    this.timer.unref?.();
  }

  /** A coordinator answered the registration: the ranks fenced (by this agent or the one before it) continue. */
  heard(): void {
    this.cancel();
    const continued = this.ranks.unfence?.() ?? [];
    if (continued.length > 0) this.say(`a coordinator answers again: ranks ${continued.join(', ')} continue (those it gave up were killed first)`);
  }

  /** The agent stops: no more fencing from it; what is fenced stays so, for the next agent to continue. */
  cancel(): void {
    this.active = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
