// What an agent keeps of the files a restart's FETCH cut back (written-files.ts):
// PUT_BACK appends it again, the RESUME of a restart that succeeded removes it,
// and so does the job's deletion. Real files; the cut made as FETCH makes it.
import { EventEmitter } from 'node:events';
import { constants, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RoundStep, type RoundRequest } from '../../src/gen/proto.js';
import { LocalRankSteps, cutKeptDir } from '../../src/agent/local-rank-steps.js';
import type { RankSupervisor } from '../../src/agent/rank-supervisor.js';
import type { ImageSummary } from '../../src/criu/criu-images.js';
import { cutBackWrittenFiles } from '../../src/criu/written-files.js';

let dir = '';
let steps: LocalRankSteps;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-test-kept-cuts-'));
  steps = new LocalRankSteps({ host: 'h', imagesDir: join(dir, 'images'), ranks: new EventEmitter() as unknown as RankSupervisor });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const request = (step: RoundStep): RoundRequest => ({ job_id: 'j', epoch: 3, image_set: '3', step, ranks: [0] }) as unknown as RoundRequest;

/** Rank 0's results file grew from 100 to 250 bytes after epoch 3; FETCH cuts it back, keeping the rest. */
async function cutResults(): Promise<{ path: string; whole: Buffer }> {
  const path = join(dir, 'results');
  writeFileSync(path, Buffer.from(Array.from({ length: 250 }, (_, i) => (i * 7) % 256)));
  const whole = readFileSync(path);
  const summary = { files: [{ id: 1, path, sizeBytes: 100, flags: constants.O_WRONLY, pos: 100, uses: ['fd'], fds: [{ pid: 1, fd: 3 }] }] } as unknown as ImageSummary;
  await cutBackWrittenFiles(summary, new Map(), cutKeptDir(join(dir, 'images'), 'h', 'j', 3, 0));
  expect(readFileSync(path).length).toBe(100);
  return { path, whole };
}

describe('the bytes a restart cut', () => {
  it('PUT_BACK appends them again and reports each file', async () => {
    const { path, whole } = await cutResults();
    const out = await steps.run(request(RoundStep.PUT_BACK));
    expect(out.failed.size).toBe(0);
    expect(out.filesPutBack).toEqual([{ rank: 0, path, from_bytes: 100, to_bytes: 250 }]);
    expect(out.putBackProblems).toEqual([]);
    expect(readFileSync(path)).toEqual(whole);
    expect(existsSync(cutKeptDir(join(dir, 'images'), 'h', 'j'))).toBe(false); // nothing left kept
  });

  it('go with the RESUME of the restart, and with the job', async () => {
    const { path } = await cutResults();
    await steps.run({ ...request(RoundStep.RESUME), ranks: [] } as RoundRequest);
    expect(existsSync(cutKeptDir(join(dir, 'images'), 'h', 'j'))).toBe(false);
    expect(readFileSync(path).length).toBe(100); // the restart went on from the epoch: the file stays as cut
    await cutResults();
    await steps.forgetJob('j');
    expect(existsSync(cutKeptDir(join(dir, 'images'), 'h', 'j'))).toBe(false);
  });
});
