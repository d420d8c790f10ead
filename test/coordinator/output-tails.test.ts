// OutputTails: which ranks' output still comes after their exit, from which
// host; a `last` from another host (a copy that moved away) ends nothing.
import { describe, expect, it } from 'vitest';
import { OutputTails } from '../../src/coordinator/output-tails.js';

describe('OutputTails', () => {
  it("waits for each rank's last chunk from the host of its exit", () => {
    const tails = new OutputTails();
    tails.expect('j', 0, 'a');
    tails.expect('j', 1, 'b');
    expect(tails.has('j')).toBe(true);
    expect(tails.hostsOf('j').sort()).toEqual(['a', 'b']);
    expect(tails.ended('j', 0, 'b')).toBe(false); // an old copy's
    expect(tails.ended('j', 0, 'a')).toBe(false); // rank 1's still open
    expect(tails.ended('j', 0, 'a')).toBe(false); // a repeat
    expect(tails.ended('j', 1, 'b')).toBe(true);
    expect(tails.has('j')).toBe(false);
  });

  it('gives up the tails of a host, per job, and forgets a job', () => {
    const tails = new OutputTails();
    tails.expect('j', 0, 'a');
    tails.expect('j', 2, 'a');
    tails.expect('j', 1, 'b');
    tails.expect('k', 0, 'a');
    expect(tails.hasHost('a')).toBe(true);
    expect([...tails.dropHost('a')]).toEqual([['j', [0, 2]], ['k', [0]]]);
    expect(tails.hasHost('a')).toBe(false);
    expect(tails.has('k')).toBe(false);
    expect([...tails.byHost('j')]).toEqual([['b', [1]]]);
    tails.forget('j');
    expect(tails.has('j')).toBe(false);
  });
});
