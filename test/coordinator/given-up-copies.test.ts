import { afterEach, describe, expect, it } from 'vitest';
import { GivenUpCopies } from '../../src/coordinator/given-up-copies.js';
import { closeTempCatalogs, tempCatalog } from '../helpers/temp-catalog.js';

afterEach(closeTempCatalogs);

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

  describe('kept in the catalog', () => {
    it('outlive the coordinator: a restarted one still leaves out what the copy printed', () => {
      const { catalog, reopen } = tempCatalog(['j', 'jj']);
      const g = new GivenUpCopies(catalog);
      g.givenUp('j', 0, 'a');
      g.givenUp('j', 1, 'a');
      g.placed('j', 1, 'a'); // restarted there: no longer a given-up copy
      const next = new GivenUpCopies(reopen());
      expect(next.output('j', 0, 'a', () => 'b', 10)).toBe('first');
      expect(next.output('j', 0, 'a', () => 'b', 10)).toBe('drop');
      expect(next.output('j', 1, 'a', () => 'b', 10)).toBe('pass');
      expect(next.output('j', 0, 'b', () => 'b', 10)).toBe('pass');
    });

    it('are forgotten with a deleted job, which stays in the catalog until their host is back; never kept for a job the catalog does not have', () => {
      const { catalog, reopen } = tempCatalog(['j', 'jj']);
      const g = new GivenUpCopies(catalog);
      g.givenUp('j', 0, 'a');
      g.givenUp('jj', 0, 'a');
      g.givenUp('nope', 0, 'a');
      catalog.deleteJob('j', 1, 'deleted');
      g.forget('j');
      const again = reopen();
      const next = new GivenUpCopies(again);
      expect(next.output('j', 0, 'a', () => 'b', 1)).toBe('pass');
      expect(next.output('jj', 0, 'a', () => 'b', 1)).toBe('first');
      expect(next.output('nope', 0, 'a', () => 'b', 1)).toBe('pass');
      // (its copy on a may still run: a kills it when it registers again, and only then does the job go)
      expect(again.purgeJob('j')).toBe(false);
      expect(again.removeDeletedJobCopiesOn('a')).toBe(1);
      expect(again.purgeJob('j')).toBe(true);
      expect(new GivenUpCopies(again).output('jj', 0, 'a', () => 'b', 1)).toBe('first');
    });

    it('hold in memory when the catalog refuses them', () => {
      const { catalog } = tempCatalog(['j', 'jj']);
      const g = new GivenUpCopies(catalog);
      catalog.close(); // every write throws now
      g.givenUp('j', 0, 'a');
      expect(g.output('j', 0, 'a', () => 'b', 1)).toBe('first');
      g.placed('j', 0, 'a');
      expect(g.output('j', 0, 'a', () => 'b', 1)).toBe('pass');
    });
  });
});
