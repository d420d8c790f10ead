// The states of one checkpoint epoch, and the only place they change.
// docs/checkpoint-protocol.md describes the messages of each step and what
// happens on each failure.
import { ErrorCode } from '../../gen/proto.js';
import { FerryError } from '../../common/ferry-error.js';
import { tracer } from '../../common/trace.js';

const trace = tracer('checkpoint');

export type EpochState =
  | 'preparing' //  PREPARE sent: every rank flushes its channels into its memory and closes its sockets
  | 'flushed' //    every rank flushed: the job is a consistent cut, frozen in dump-safe waits
  | 'dumping' //    DUMP sent: the agents CRIU-dump their ranks (left running)
  | 'dumped' //     CRIU wrote every rank's image (not yet hashed nor fsynced): the ranks need not wait any more
  | 'resuming' //   RESUME sent: ranks rewire and go on while their images are stored (not with --stop)
  | 'storing' //    STORE sent: the agents hash and fsync every file and write each rank's manifest
  | 'stored' //     every image is on disk with its manifest, fsynced, and recorded in the catalog
  | 'committed' //  the catalog says so, durably: this epoch is the one to restart from
  | 'stopping' //   --stop: STOP sent, the ranks end (they waited, flushed, for the commit)
  | 'done' //       the operation is over; the epoch stays committed
  | 'aborting' //   a step failed: ranks still flushed are resumed, partial images discarded
  | 'aborted'; //   the previous committed epoch is still the truth

// A checkpoint that goes on: ... dumped -> resuming -> storing -> stored -> committed -> done.
// With --stop:                 ... dumped -> storing -> stored -> committed -> stopping -> done.
const TRANSITIONS: Record<EpochState, readonly EpochState[]> = {
  preparing: ['flushed', 'aborting'],
  flushed: ['dumping', 'aborting'],
  dumping: ['dumped', 'aborting'],
  dumped: ['resuming', 'storing', 'aborting'],
  resuming: ['storing'],
  storing: ['stored', 'aborting'],
  stored: ['committed', 'aborting'],
  committed: ['stopping', 'done'],
  stopping: ['done'],
  done: [],
  aborting: ['aborted'],
  aborted: [],
};

export class EpochMachine {
  private current: EpochState = 'preparing';
  readonly enteredMs = new Map<EpochState, number>();

  constructor(
    readonly jobId: string,
    readonly epoch: number,
    private readonly now: () => number,
    private readonly onChange: (from: EpochState, to: EpochState) => void = () => {},
  ) {
    this.enteredMs.set('preparing', now());
  }

  get state(): EpochState {
    return this.current;
  }

  /** Moves to `to` if the machine is in one of `from`; anything else is a bug, reported with the state. */
  transition(from: readonly EpochState[], to: EpochState): void {
    if (!from.includes(this.current) || !TRANSITIONS[this.current].includes(to)) {
      throw new FerryError(
        ErrorCode.INTERNAL,
        `epoch ${this.epoch} of job ${this.jobId}: illegal transition ${this.current} -> ${to} (expected from ${from.join('|')})`,
      );
    }
    trace(`job ${this.jobId} epoch ${this.epoch}: ${this.current} -> ${to}`);
    const previous = this.current;
    this.current = to;
    this.enteredMs.set(to, this.now());
    this.onChange(previous, to);
  }

  /** Milliseconds from entering `a` to entering `b` (0 when either never happened). */
  between(a: EpochState, b: EpochState): number {
    const ta = this.enteredMs.get(a);
    const tb = this.enteredMs.get(b);
    return ta !== undefined && tb !== undefined ? tb - ta : 0;
  }

  canAbort(): boolean {
    return TRANSITIONS[this.current].includes('aborting');
  }
}
