// The agents' fault gates (src/agent/fault-gate.ts): a closed gate holds its
// step and says so; opening it lets the step go; other steps pass.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { gateFile, heldFile, passFaultGate } from '../../src/agent/fault-gate.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('fault gates', () => {
  it('hold a step while its gate is closed, say which host holds it, and let it go once opened', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-gates-'));
    dirs.push(dir);
    writeFileSync(gateFile(dir, 'store'), '');
    let passed = false;
    const held = passFaultGate('store', 'host7', dir).then(() => (passed = true));
    await passFaultGate('dump', 'host7', dir); // another step is not held
    expect(existsSync(heldFile(dir, 'dump', 'host7'))).toBe(false);
    expect(readFileSync(heldFile(dir, 'store', 'host7'), 'utf8')).toBe(`${process.pid}\n`);
    await new Promise((r) => setTimeout(r, 100));
    expect(passed).toBe(false);
    rmSync(gateFile(dir, 'store'));
    await held;
    expect(passed).toBe(true);
  });

  it('hold one host only with a gate of its own', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-gates-'));
    dirs.push(dir);
    writeFileSync(gateFile(dir, 'prepare', 'host2'), '');
    await passFaultGate('prepare', 'host1', dir); // another host passes
    let passed = false;
    const held = passFaultGate('prepare', 'host2', dir).then(() => (passed = true));
    expect(existsSync(heldFile(dir, 'prepare', 'host2'))).toBe(true);
    expect(existsSync(heldFile(dir, 'prepare', 'host1'))).toBe(false);
    await new Promise((r) => setTimeout(r, 100));
    expect(passed).toBe(false);
    rmSync(gateFile(dir, 'prepare', 'host2'));
    await held;
  });

  it('cost nothing without a gates directory', async () => {
    await passFaultGate('resume', 'host1', '');
  });
});
