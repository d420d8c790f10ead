// `ferry doctor`: what works on this node for checkpoint/restart.
import { formatDoctor, runDoctor } from '../criu/doctor.js';
import { parseArgs } from './args.js';

export async function doctorCommand(argv: string[]): Promise<number> {
  const p = parseArgs('ferry doctor', argv, { json: {} });
  const report = await runDoctor();
  process.stdout.write(p.options.has('json') ? JSON.stringify(report, null, 2) + '\n' : formatDoctor(report));
  return report.ok ? 0 : 1;
}
