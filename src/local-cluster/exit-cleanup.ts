// Synchronous clean-ups that must run however a test process ends: normal
// exit, a failed test that never reached afterAll, SIGINT (Ctrl-C) or SIGTERM
// (a runner tearing the worker down). Only synchronous work is possible here.
const cleanups = new Set<() => void>();
let installed = false;

function runAll(): void {
  for (const fn of [...cleanups]) {
    cleanups.delete(fn);
    try {
      fn();
    } catch {
      // best effort: the process is going away
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  runAll();
  process.removeListener(signal, onSignal);
  // Our listener suppressed the default action; restore it unless someone
  // else handles the signal.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

// Registers FN; returns a function that unregisters it (call it after a normal clean-up).
export function onProcessExit(fn: () => void): () => void {
  if (!installed) {
    installed = true;
    process.on('exit', runAll);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}
