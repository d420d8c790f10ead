// Per-module tracing, switched on by FERRY_TRACE (comma-separated module names,
// or "all"). Lines go to stderr with a timestamp and the module name, so an
// operator can follow one subsystem's protocol steps without a debugger.

const enabled = new Set(
  (process.env.FERRY_TRACE ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0),
);

export type TraceFn = ((message: string) => void) & { readonly enabled: boolean };

export function tracer(module: string): TraceFn {
  const on = enabled.has('all') || enabled.has(module);
  const fn = ((message: string) => {
    if (on) process.stderr.write(`${new Date().toISOString()} [${module}] ${message}\n`);
  }) as TraceFn;
  Object.defineProperty(fn, 'enabled', { value: on });
  return fn;
}
