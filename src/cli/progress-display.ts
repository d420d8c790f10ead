// Progress of a long operator command (checkpoint, restart, migrate, drain) on
// stderr: one line rewritten in place on a terminal, one line per phase when
// stderr is a file or a pipe (logs keep the story), nothing with --json.
import type { CheckpointProgress, OperatorReply } from '../gen/proto.js';
import { formatBytes } from './format-bytes.js';

export class ProgressDisplay {
  private readonly tty: boolean;
  private lastPhase = '';
  private shown = false;

  constructor(
    private readonly what: string,
    private readonly quiet: boolean,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(out.isTTY);
  }

  /** The `onNotice` of an operator request. */
  readonly onNotice = (n: OperatorReply): void => {
    if (n.checkpoint_progress) this.show(n.checkpoint_progress);
  };

  show(p: CheckpointProgress): void {
    if (this.quiet) return;
    const label = `${this.what}${p.epoch ? ` epoch ${p.epoch}` : ''}`;
    const bytes = p.bytes_total > 0 ? `, ${formatBytes(p.bytes_done)} of ${formatBytes(p.bytes_total)} shipped` : '';
    const line = `${label}: ${p.phase} (${(p.elapsed_ms / 1000).toFixed(1)} s${bytes})`;
    if (this.tty) {
      this.out.write(`\r\x1b[K${line}`);
      this.shown = true;
    } else if (p.phase !== this.lastPhase) {
      this.out.write(`${line}\n`);
    }
    this.lastPhase = p.phase;
  }

  /** Clears the in-place line before the command prints its result. */
  done(): void {
    if (this.shown) this.out.write('\r\x1b[K');
    this.shown = false;
  }
}
