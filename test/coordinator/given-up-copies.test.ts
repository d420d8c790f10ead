import { describe, expect, it } from 'vitest';
import { GivenUpCopies } from '../../src/coordinator/given-up-copies.js';

describe('the output of ranks given up with their host', () => {
  it('is left out once the rank runs on another host, and said so the first time', () => {
    const g = new GivenUpCopies();
    g.givenUp('j', 0, 'a');
    let runsOn = 'a';
    // The job only failed: the rank's last words from its host pass.
    expect(g.output('j', 0, 'a', () => runsOn, 10)).toBe('pass');
    runsOn = 'b'; // restarted there
    expect(g.output('j', 0, 'a', () => runsOn, 10)).toBe('first');
    expect(g.output('j', 0, 'a', () => runsOn, 5)).toBe('drop');
    // Its restored copy, and the other ranks, pass.
    expect(g.output('j', 0, 'b', () => runsOn, 5)).toBe('pass');
    expect(g.output('j', 1, 'a', () => 'b', 5)).toBe('pass');
    expect(g.output('k', 0, 'a', () => 'b', 5)).toBe('pass');
  });

  it('passes what a new copy placed on the same host prints', () => {
    const g = new GivenUpCopies();
    g.givenUp('j', 0, 'a');
    expect(g.output('j', 0, 'a', () => 'b', 1)).toBe('first');
    g.placed('j', 0, 'a');
    expect(g.output('j', 0, 'a', () => 'a', 1)).toBe('pass');
    expect(g.output('j', 0, 'a', () => 'b', 1)).toBe('pass');
  });

  it('forgets a deleted job', () => {
    const g = new GivenUpCopies();
    g.givenUp('j', 0, 'a');
    g.givenUp('jj', 0, 'a');
    g.forget('j');
    expect(g.output('j', 0, 'a', () => 'b', 1)).toBe('pass');
    expect(g.output('jj', 0, 'a', () => 'b', 1)).toBe('first');
  });
});
