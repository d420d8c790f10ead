// The id of a job that a launcher started (`ferry rank-exec` without
// --job-id): srun's job and step ids, so an operator finds a Slurm job in
// `ferry jobs`; never an id a job has already. Over the in-memory transport.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ControlPlaneHarness } from './control-plane-harness.js';
import { joinLaunch, joined } from './launch-joins.js';

let h: ControlPlaneHarness;
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

beforeEach(async () => {
  h = await ControlPlaneHarness.started({ a: 'store-a', b: 'store-b' });
});

afterEach(() => h.stop());

/** Both ranks of launch `key` join (rank 0 from a, rank 1 from b); the job id each was told. */
async function launch(key: string, jobId = ''): Promise<(string | undefined)[]> {
  const joins = [joinLaunch(h, key, 0, 'a', { jobId }), joinLaunch(h, key, 1, 'b', { jobId })];
  for (let t = 0; t < 5_000 && !joins.every(joined); t += 50) await advance(50);
  return joins.map(joined);
}

describe('the id of a launched job', () => {
  it("is srun's job and step ids", async () => {
    expect(await launch('slurm:1234.0')).toEqual(['slurm-1234.0', 'slurm-1234.0']);
    expect(h.catalog!.getJob('slurm-1234.0')!.worldSize).toBe(2);
  });

  it('gets a fresh suffix when a job has those ids already (a Slurm whose job ids started over)', async () => {
    expect(await launch('key:earlier', 'slurm-77.0')).toEqual(['slurm-77.0', 'slurm-77.0']);
    const [id, other] = await launch('slurm:77.0');
    expect(id).toMatch(/^slurm-77\.0-[0-9a-z]+-[0-9a-z]+$/);
    expect(other).toBe(id);
    expect(h.catalog!.getJob(id!)!.worldSize).toBe(2);
  });

  it("is the launcher's kind and a fresh suffix for launchers whose ids mean nothing to an operator", async () => {
    const [hydra] = await launch('hydra:host1:4242:99');
    expect(hydra).toMatch(/^hydra-[0-9a-z]+-[0-9a-z]+$/);
    const [keyed] = await launch('key:run-17');
    expect(keyed).toMatch(/^key-[0-9a-z]+-[0-9a-z]+$/);
  });
});
