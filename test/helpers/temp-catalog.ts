// A real catalog (SQLite) in a state dir of its own, for tests of what the
// coordinator keeps there across a restart. Each test file calls
// closeTempCatalogs() after each test: it closes them and removes their dirs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalog } from '../../src/coordinator/catalog.js';

const dirs: string[] = [];
const catalogs: Catalog[] = [];

/**
 * A catalog with jobs `jobIds` (2 ranks each); `reopen` closes it and opens its state dir again, as a
 * coordinator restarted there does.
 */
export function tempCatalog(jobIds: readonly string[]): { catalog: Catalog; reopen: () => Catalog } {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-catalog-'));
  dirs.push(dir);
  const open = () => {
    const c = Catalog.open(dir);
    catalogs.push(c);
    return c;
  };
  const catalog = open();
  for (const id of jobIds) catalog.createJob({ id, worldSize: 2, argv: ['/bin/true'], cwd: '/', env: {}, createdMs: 1_000 });
  return {
    catalog,
    reopen: () => {
      catalog.close();
      return open();
    },
  };
}

export function closeTempCatalogs(): void {
  for (const c of catalogs.splice(0)) c.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}
