// An agent runs a job's restart FETCHes (which cut the ranks' files back) and
// PUT_BACKs (which append the cut bytes again) one after the other, in the
// order they came: a PUT_BACK sent after a FETCH the coordinator gave up on
// waits for that FETCH to end, and a later restart's FETCH waits for the
// PUT_BACK, so it never puts back what that later FETCH cut. The FETCH is held
// at its fault gate; real files, the cut made as a FETCH makes it.
import { EventEmitter } from 'node:events';
import { constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RoundStep, type RoundRequest } from '../../src/gen/proto.js';
import type { RankSupervisor } from '../../src/agent/rank-supervisor.js';
import type { ImageSummary } from '../../src/criu/criu-images.js';
import { cutBackWrittenFiles } from '../../src/criu/written-files.js';

// The gates directory is read when fault-gate.ts loads: set before it (with local-rank-steps.ts) is imported.
const dir = mkdtempSync(join(tmpdir(), 'ferry-test-cut-turns-'));
const gates = join(dir, 'gates');
process.env.FERRY_FAULT_GATES = gates;
const { LocalRankSteps, cutKeptDir } = await import('../../src/agent/local-rank-steps.js');
const { gateFile, heldFile } = await import('../../src/agent/fault-gate.js');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const request = (step: RoundStep): RoundRequest =>
  ({ job_id: 'j', epoch: 3, image_set: '3', step, ranks: [0], sources: [], appended_sizes: [], roll_back_files: true }) as unknown as RoundRequest;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the turns of a job\'s FETCHes and PUT_BACKs on one agent', () => {
  it('holds a PUT_BACK until the FETCH under way ends, and a later FETCH until that PUT_BACK ends', async () => {
    mkdirSync(gates, { recursive: true });
    const steps = new LocalRankSteps({ host: 'h', imagesDir: join(dir, 'images'), ranks: new EventEmitter() as unknown as RankSupervisor });
    // What the first restart's FETCH cut: rank 0's results, 250 bytes, back to its 100 at epoch 3.
    const path = join(dir, 'results');
    writeFileSync(path, Buffer.from(Array.from({ length: 250 }, (_, i) => (i * 7) % 256)));
    const whole = readFileSync(path);
    const summary = { files: [{ id: 1, path, sizeBytes: 100, flags: constants.O_WRONLY, pos: 100, uses: ['fd'], fds: [{ pid: 1, fd: 3 }] }] } as unknown as ImageSummary;
    await cutBackWrittenFiles(summary, new Map(), cutKeptDir(join(dir, 'images'), 'h', 'j', 3, 0));

    const order: string[] = [];
    writeFileSync(gateFile(gates, 'fetch'), '');
    const fetch1 = steps.run(request(RoundStep.FETCH)).then(() => order.push('fetch 1'));
    for (let i = 0; i < 200 && !existsSync(heldFile(gates, 'fetch', 'h')); i++) await sleep(10);
    expect(existsSync(heldFile(gates, 'fetch', 'h'))).toBe(true);
    // The coordinator gave up on that FETCH and sends PUT_BACK; then a second restart's FETCH comes.
    const putBack = steps.run(request(RoundStep.PUT_BACK)).then((o) => (order.push('put back'), o));
    const fetch2 = steps.run(request(RoundStep.FETCH)).then(() => order.push('fetch 2'));
    await sleep(300);
    expect(order).toEqual([]);
    expect(readFileSync(path).length).toBe(100); // not put back while the FETCH may still cut
    rmSync(gateFile(gates, 'fetch'));
    const out = await putBack;
    await Promise.all([fetch1, fetch2]);
    expect(order).toEqual(['fetch 1', 'put back', 'fetch 2']);
    expect(out.filesPutBack).toEqual([{ rank: 0, path, from_bytes: 100, to_bytes: 250 }]);
    expect(readFileSync(path)).toEqual(whole);
  });
});
