// `ferry epochs`'s PHASES column: how long an epoch was in each state it
// left, in order (it listed every transition, "preparing->flushed 12 ms, ...",
// some 170 characters a row).
import { describe, expect, it } from 'vitest';
import { phaseDurations } from '../../src/cli/checkpoint-commands.js';

const at = (t0: number, steps: [string, number][]) => ({ started_ms: t0, phases: steps.map(([state, ms]) => ({ state, at_ms: t0 + ms })) });

describe('the phases of an epoch in ferry epochs', () => {
  it('gives the time in each state left, without those under 1 ms', () => {
    const committed = at(1000, [['preparing', 0], ['flushed', 12], ['dumping', 12], ['dumped', 99], ['resuming', 100], ['storing', 104], ['stored', 321], ['committed', 321], ['done', 322]]);
    expect(phaseDurations(committed)).toBe('preparing 12 ms, dumping 87 ms, dumped 1 ms, resuming 4 ms, storing 217 ms, committed 1 ms');
    // An epoch that waited before its PREPARE, then aborted in its dump; its deletion is no phase.
    const aborted = at(1000, [['preparing', 30], ['flushed', 40], ['dumping', 41], ['aborting', 500], ['aborted', 520], ['deleted', 9000]]);
    expect(phaseDurations(aborted)).toBe('waiting 30 ms, preparing 10 ms, flushed 1 ms, dumping 459 ms, aborting 20 ms');
    expect(phaseDurations(at(1000, [['preparing', 0]]))).toBe('-'); // under way, nothing left yet
  });
});
