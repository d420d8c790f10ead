// Fault injection for tests: gates that hold a step of the checkpoint protocol
// on this node until the test lets it go, so that a test can kill an agent or
// the coordinator in the middle of that step however slow the machine is.
//
// With FERRY_FAULT_GATES=DIR in the agent's environment, a step (prepare,
// dump, store, fetch, resume, restore; flushing: a PREPARE once its ranks were asked to flush;
// endpoint: a rank's endpoint report; table: the coordinator's endpoint table handed to the ranks) that finds the file DIR/STEP, or DIR/STEP@HOST
// for its own host only (a closed gate), creates DIR/STEP.held.HOST (the test
// waits for it) and waits until that file is removed. A gate whose file says
// `drop` drops the step instead: the agent never runs it nor answers, as if the
// request had never reached it (the gate may be opened for the next request).
// Without the variable, or with no such file, it costs a check or two.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The protocol steps; `flushing`: a PREPARE after the agent asked its ranks to flush, before it waits for them;
 * `endpoint`: the agent's report of a rank's endpoint to the coordinator; `table`: an endpoint table from the
 * coordinator, handed to the ranks waiting for it.
 */
export type GatedStep = 'prepare' | 'flushing' | 'dump' | 'store' | 'fetch' | 'resume' | 'restore' | 'endpoint' | 'table';

export const FAULT_GATES_ENV = 'FERRY_FAULT_GATES';
const GATES_DIR = process.env[FAULT_GATES_ENV] ?? '';
const POLL_MS = 20;
/** The content of a gate file that drops the step rather than holding it. */
export const DROP = 'drop';

/** The file whose presence holds `step` on every host, or with `host` on that host only (the test creates and removes it). */
export const gateFile = (dir: string, step: GatedStep, host?: string) => join(dir, host ? `${step}@${host}` : step);
/** The file the agent on `host` creates once it holds `step` at its gate. */
export const heldFile = (dir: string, step: GatedStep, host: string) => join(dir, `${step}.held.${host}`);

/** Waits while the test holds `step` on this node; returns at once when it does not. */
export async function passFaultGate(step: GatedStep, host: string, dir = GATES_DIR): Promise<void> {
  if (!dir) return;
  const closed = [gateFile(dir, step), gateFile(dir, step, host)].find((f) => existsSync(f));
  if (!closed) return;
  const drop = readFileSync(closed, 'utf8').trim() === DROP;
  writeFileSync(heldFile(dir, step, host), `${process.pid}\n`);
  if (drop) return new Promise<never>(() => {});
  while (existsSync(closed)) await new Promise((r) => setTimeout(r, POLL_MS));
}
