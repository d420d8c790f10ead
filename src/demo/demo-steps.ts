// Prints each demo step with how long it took.
export async function step<T>(title: string, fn: () => Promise<T>): Promise<T> {
  process.stdout.write(`==> ${title} ... `);
  const t0 = process.hrtime.bigint();
  try {
    const result = await fn();
    process.stdout.write(`done in ${formatMs(t0)}\n`);
    return result;
  } catch (err) {
    process.stdout.write(`FAILED after ${formatMs(t0)}\n`);
    throw err;
  }
}

function formatMs(t0: bigint): string {
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`;
}
