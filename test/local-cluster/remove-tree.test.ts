// A cluster's temp dir goes also when a test mounted something in it.
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mountsUnder, removeTree } from '../../src/local-cluster/remove-tree.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-remove-tree-'));
afterAll(() => removeTree(dir));

describe('removeTree', () => {
  it('unmounts what is mounted under the dir, deepest first, then removes it', () => {
    const outer = join(dir, 'hosts', 'host2', 'images');
    mkdirSync(outer, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'ferry-test-tree', outer]);
    const inner = join(outer, 'job', '1');
    mkdirSync(inner, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'ferry-test-tree', inner]);
    writeFileSync(join(inner, 'pages.img'), 'x');
    expect(mountsUnder(dir)).toEqual([inner, outer]);
    expect(mountsUnder(join(dir, 'hosts', 'host'))).toEqual([]); // a prefix that is not a parent
    removeTree(dir);
    expect(existsSync(dir)).toBe(false);
    expect(mountsUnder(dir)).toEqual([]);
  });
});
