// The README's first command: a Ferry cluster on namespace hosts, start to end.
// Today it starts a coordinator and one agent per host, shows `ferry status`,
// runs a job across the hosts and follows it, then removes everything.
import { errorMessage } from '../common/ferry-error.js';
import { startTestCluster, type TestCluster } from '../local-cluster/local-cluster.js';
import { assertNamespaceHostsUsable } from '../netns/index.js';
import { step } from './demo-steps.js';

const DEMO_HOSTS = 3;

async function main(): Promise<number> {
  try {
    assertNamespaceHostsUsable();
  } catch (err) {
    process.stderr.write(`ferry demo: cannot make namespace hosts here: ${errorMessage(err)}\n`);
    return 1;
  }
  let cluster: TestCluster | undefined;
  try {
    cluster = await step(`start a coordinator and ${DEMO_HOSTS} agents on network-namespace hosts`, () => startTestCluster({ hosts: DEMO_HOSTS }));
    const c = cluster;
    const status = await step('ferry status', () => c.ferry(['status']));
    process.stdout.write(indent(status.stdout));
    const run = await step(`ferry run -n ${DEMO_HOSTS * 2} across the hosts`, () =>
      c.ferry(['run', '-n', String(DEMO_HOSTS * 2), '/bin/sh', '-c', 'echo "rank $FERRY_RANK of $FERRY_SIZE on $(ip -4 -o addr show scope global | awk \'{print $4}\')"']),
    );
    if (run.code !== 0) throw new Error(`ferry run failed (${run.code}): ${run.stderr}`);
    process.stdout.write(indent(run.stdout.split('\n').filter(Boolean).sort().join('\n') + '\n'));
    const jobs = await step('ferry jobs --all', () => c.ferry(['jobs', '--all']));
    process.stdout.write(indent(jobs.stdout));
    return 0;
  } catch (err) {
    process.stderr.write(`ferry demo: ${errorMessage(err)}\n`);
    if (cluster) process.stderr.write(cluster.logTails(15) + '\n');
    return 1;
  } finally {
    if (cluster) await step('stop the daemons and remove the hosts', () => cluster!.stop());
  }
}

function indent(text: string): string {
  return text.replace(/^(?=.)/gm, '    ');
}

main().then((code) => process.exit(code));
