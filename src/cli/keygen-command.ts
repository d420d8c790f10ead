// `ferry keygen FILE`: a new cluster key (src/transport/cluster-key.ts).
import { onePositional, parseArgs } from './args.js';
import { writeNewClusterKey } from '../transport/cluster-key.js';

export async function keygenCommand(argv: string[]): Promise<number> {
  const cmd = 'ferry keygen';
  const p = parseArgs(cmd, argv, {});
  const file = onePositional(cmd, p, 'key file', 'ferry keygen FILE');
  writeNewClusterKey(file);
  process.stdout.write(
    `cluster key written to ${file} (mode 0600)\n` +
      `  copy it to every host; start the coordinator and the agents with --key ${file},\n` +
      `  and run operator commands (and ferry rank-exec) with FERRY_KEY=${file}\n`,
  );
  return 0;
}
