// The test's side of the agents' fault gates (src/agent/fault-gate.ts): close
// a gate before the operation, wait until a host's agent holds the step there,
// do the damage (kill an agent or the coordinator), open the gate.
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DROP, gateFile, heldFile, type GatedStep } from '../../src/agent/fault-gate.js';
import type { TestCluster } from './cluster.js';

export class FaultGates {
  private readonly dir: string;

  constructor(private readonly c: TestCluster) {
    if (!c.faultGatesDir) throw new Error('the cluster was started without faultGates');
    this.dir = c.faultGatesDir;
  }

  /**
   * Holds every agent's next `step`s (with `host`, that host's only) until open(step); forgets which hosts held it
   * before. With `drop`, the agents drop those steps instead (never run, never answered), until open(step).
   */
  close(step: GatedStep, host?: string, options: { drop?: boolean } = {}): void {
    for (const f of readdirSync(this.dir)) if (f.startsWith(`${step}.held.`)) rmSync(join(this.dir, f));
    writeFileSync(gateFile(this.dir, step, host), options.drop ? DROP : '');
  }

  open(step: GatedStep, host?: string): void {
    rmSync(gateFile(this.dir, step, host), { force: true });
  }

  /** Waits until the agent on `host` holds (or dropped) `step` at its closed gate. */
  async held(step: GatedStep, host: string): Promise<void> {
    await this.c.waitFor(() => existsSync(heldFile(this.dir, step, host)), `${step} held on ${host}`);
  }

  /** Opens every gate (for a finally: a failed test must not leave the next one's steps held). */
  openAll(): void {
    for (const f of readdirSync(this.dir)) if (!f.includes('.held.')) rmSync(join(this.dir, f), { force: true });
  }
}
