// `ferry doctor`: what works on this node for checkpoint/restart.
import { formatDoctor, runDoctor } from '../criu/doctor.js';
import { parseArgs } from './args.js';

export async function doctorCommand(argv: string[]): Promise<number> {
  const p = parseArgs('ferry doctor', argv, { json: {} });
  const report = await runDoctor();
  const text = p.options.has('json') ? JSON.stringify(report, null, 2) : formatDoctor(report);
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
  return report.ok ? 0 : 1;
}
