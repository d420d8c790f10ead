// The progress line of long operator commands: rewritten in place on a
// terminal, one line per phase in a log, nothing with --json.
import { describe, expect, it } from 'vitest';
import { ProgressDisplay } from '../../src/cli/progress-display.js';
import type { CheckpointProgress } from '../../src/gen/proto.js';

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  const out = { isTTY, write: (s: string) => chunks.push(s) } as unknown as NodeJS.WriteStream;
  return { out, text: () => chunks.join('') };
}

const step = (phase: string, elapsed_ms: number, bytes_done = 0, bytes_total = 0): CheckpointProgress =>
  ({ job_id: 'j', epoch: 0, phase, elapsed_ms, operation: 'migrate', bytes_done, bytes_total }) as CheckpointProgress;

describe('progress display', () => {
  it('writes one line per phase when stderr is not a terminal, with the bytes shipped', () => {
    const s = sink(false);
    const d = new ProgressDisplay('migrate j rank 1', false, s.out);
    d.show(step('flushing', 0));
    d.show(step('dumping', 10));
    d.show(step('fetching', 300, 0, 64 * 1024 * 1024));
    d.show(step('fetching', 400, 32 * 1024 * 1024, 64 * 1024 * 1024));
    d.show(step('fetched', 500, 64 * 1024 * 1024, 64 * 1024 * 1024));
    d.done();
    expect(s.text()).toBe(
      'migrate j rank 1: flushing (0.0 s)\n' +
        'migrate j rank 1: dumping (0.0 s)\n' +
        'migrate j rank 1: fetching (0.3 s, 0 B of 64.0 MiB shipped)\n' +
        'migrate j rank 1: fetched (0.5 s, 64.0 MiB of 64.0 MiB shipped)\n',
    );
  });

  it('rewrites one line on a terminal and clears it at the end', () => {
    const s = sink(true);
    const d = new ProgressDisplay('restart j', false, s.out);
    d.show(step('fetching', 100, 1024, 4096));
    d.show(step('fetching', 200, 4096, 4096));
    d.done();
    expect(s.text()).toBe('\r\x1b[Krestart j: fetching (0.1 s, 1.0 KiB of 4.0 KiB shipped)\r\x1b[Krestart j: fetching (0.2 s, 4.0 KiB of 4.0 KiB shipped)\r\x1b[K');
  });

  it('stays quiet with --json', () => {
    const s = sink(true);
    const d = new ProgressDisplay('drain h', true, s.out);
    d.onNotice({ checkpoint_progress: step('flushing', 0) } as never);
    d.done();
    expect(s.text()).toBe('');
  });
});
