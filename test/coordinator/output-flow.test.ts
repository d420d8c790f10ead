// OutputFlow: a job's output held back at its agents while one of its
// followers has more waiting at the coordinator than it keeps, renewed while
// that lasts, let go once the follower caught up.
import { describe, expect, it } from 'vitest';
import { OUTPUT_PAUSE_AT_BYTES, OUTPUT_PAUSE_MS, OUTPUT_RESUME_AT_BYTES, OutputFlow } from '../../src/coordinator/output-flow.js';

describe('OutputFlow', () => {
  it('pauses past the high mark, renews the pause while the follower is behind, and lets go at the low mark', () => {
    const told: [string, number][] = [];
    const flow = new OutputFlow((jobId, ms) => told.push([jobId, ms]));
    flow.update('j', OUTPUT_PAUSE_AT_BYTES);
    expect(told).toEqual([]);
    flow.update('j', OUTPUT_PAUSE_AT_BYTES + 1);
    flow.update('j', OUTPUT_PAUSE_AT_BYTES + 2); // once
    expect(told).toEqual([['j', OUTPUT_PAUSE_MS]]);
    expect(flow.isPaused('j')).toBe(true);
    flow.update('j', OUTPUT_RESUME_AT_BYTES + 1); // between the marks: still paused
    flow.renew(() => OUTPUT_RESUME_AT_BYTES + 1);
    expect(told).toEqual([['j', OUTPUT_PAUSE_MS], ['j', OUTPUT_PAUSE_MS]]);
    flow.renew(() => OUTPUT_RESUME_AT_BYTES);
    expect(told.at(-1)).toEqual(['j', 0]);
    expect(flow.isPaused('j')).toBe(false);
    flow.renew(() => OUTPUT_PAUSE_AT_BYTES * 2); // renew does not pause by itself
    expect(told).toHaveLength(3);
  });

  it('keeps jobs apart, and forgets an ended one without telling its agents', () => {
    const told: [string, number][] = [];
    const flow = new OutputFlow((jobId, ms) => told.push([jobId, ms]));
    flow.update('a', OUTPUT_PAUSE_AT_BYTES + 1);
    flow.update('b', 0);
    expect(flow.isPaused('a')).toBe(true);
    expect(flow.isPaused('b')).toBe(false);
    flow.forget('a');
    flow.renew(() => OUTPUT_PAUSE_AT_BYTES * 2);
    expect(told).toEqual([['a', OUTPUT_PAUSE_MS]]);
  });
});
