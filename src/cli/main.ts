// `ferry`: the one command-line entry point for daemons and operators.
import { ErrorCode } from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { agentCommand, coordinatorCommand } from './daemon-commands.js';
import { checkpointCommand, epochsCommand } from './checkpoint-commands.js';
import { doctorCommand } from './doctor-command.js';
import { inspectCommand } from './inspect-command.js';
import { keygenCommand } from './keygen-command.js';
import { cancelCommand, deleteCommand } from './job-commands.js';
import { mpiccCommand } from './mpicc-command.js';
import { forgetCommand } from './forget-command.js';
import { drainCommand, migrateCommand, restartCommand, undrainCommand } from './move-commands.js';
import { operatorCommand } from './operator-commands.js';
import { rankExecCommand } from './rank-exec-command.js';
import { flushStdio } from './flush-stdio.js';
import { attachCommand, runCommand } from './run-command.js';
import { endQuietlyWhenStdoutCloses } from './stdout-closed.js';

const USAGE = `usage: ferry COMMAND [options]

daemons
  coordinator --listen tcp://ADDR:PORT --state DIR [--heartbeat-interval-ms N] [--heartbeat-timeout-ms N] [--max-frame-bytes N]
              [--keep-epochs N]    committed epochs whose images a job keeps unless it says otherwise (default 2)
              [--host-rejoin-grace-ms N]  how long a host that went down with ranks may take to come back (default 30000)
              [--launcher-lease-ms N]  how long a rank-exec may go silent before its launched job is cancelled (default 30000)
              [--image-replicas N]  copies of each committed image kept on other hosts, for restarts after a host is lost (default 0)
  agent --coordinator tcp://ADDR:PORT --name HOST --images DIR [--address ADDR] [--logs DIR] [--cpus N] [--rank-socket NAME] [--image-listen tcp://ADDR:PORT] [--rank-kill-grace-ms MS]
  both take [--key FILE]: the cluster key (default FERRY_KEY); with one, only its holders get in, and all traffic is encrypted
  keygen FILE            make a cluster key (mode 0600); give it to the daemons (--key) and to operators (FERRY_KEY=FILE)

operators (--coordinator tcp://ADDR:PORT, or FERRY_COORDINATOR; FERRY_KEY=FILE with a cluster key; --json for machine-readable output)
  status                 the coordinator, its hosts and running jobs
  hosts                  every host with its state and CRIU
  jobs [--all]           running jobs (--all: ended ones too)
  job JOB                one job with its ranks
  events [--job JOB] [--after SEQ] [--limit N]            the newest N (100) events, or with --after the first N after SEQ
  events ... --follow     then each new event as it comes, until Ctrl-C (--json: one object a line)
  attach JOB [--raw] [--stop-on SIGNAL]  follow a running job's output to its end (after a restart, say)
  cancel JOB [--signal SIGTERM] [--wait 30s]              end a running job on every host and wait for its end
  delete JOB... [--force] remove ended jobs' checkpoint images and output logs on every host, then the jobs (--force: stopped or failed ones)
  checkpoint JOB [--stop] checkpoint a running job (and end it, with --stop)
  checkpoint JOB --every 10m|off                          checkpoint it periodically (ferry run --checkpoint-every 10m too)
  checkpoint JOB --keep-epochs N|default                  keep the images of its N newest committed epochs, delete older ones
  checkpoint JOB --auto-restart N|off                     restart it from its last epoch, up to N times, when it loses a host
  checkpoint JOB --image-replicas N|default               keep N copies of each committed image on other hosts (this job only)
  checkpoint JOB --hosts a,b|any                          the job's own hosts: where its restarts and drains keep it
  epochs JOB             the job's checkpoint epochs with their state, size and phase durations
  restart JOB [--epoch E] [--hosts a,b | --map 0=a,1=b]   restart a stopped job from a committed epoch
  migrate JOB --rank R --to HOST                          move one rank of a running job
  drain HOST [--reason TEXT]                              move every rank off a host; no new ranks go there until undrain
  undrain HOST           new ranks may go to a drained host again
  forget HOST            a host that is down is gone for good: stop waiting for it, say which checkpoints went with it
  inspect DIR [--json]   decode one rank's image: process tree, memory, the files it needs
  run -n N [--hosts a,b | --hostfile F] [--job-id ID] [--raw] [--checkpoint-every 10m] [--keep-epochs N] [--auto-restart N] [--image-replicas N] [--stop-on SIGNAL] [--stdin FILE|-|none] PROGRAM ARGS...
                         run a job and follow it to its end; output lines tagged [RANK] (--raw: untagged)
                         rank 0 reads --stdin (-: ferry run's own, to its end), or ferry run's stdin when it is a file (< FILE); others /dev/null
                         --stop-on SIGUSR1: that signal checkpoints and stops the job (a batch system's time-limit warning);
                         a stopped job's run or attach exits 75; ferry run --job-id JOB (same command) or ferry restart JOB continues it
  rank-exec [--host HOST] [--job-key KEY] [--job-id ID] [--join-timeout 60s] [--stop-on SIGNAL] [--stdin FILE|-|none] PROGRAM ARGS...
                         one rank under an existing launcher (mpiexec -n 4 ferry rank-exec ./app; srun ferry rank-exec ./app);
                         --job-id of a stopped job continues it; --stop-on USR1 stops the job at that signal

building MPI programs
  mpicc [CC ARGS...]     compile and link a C MPI program against Ferry's MPI library (-show prints the command)

this node
  doctor [--json]        what works here for checkpoint/restart, and what does not
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    case 'coordinator':
      return coordinatorCommand(rest);
    case 'agent':
      return agentCommand(rest);
    case 'status':
    case 'hosts':
    case 'jobs':
    case 'job':
    case 'events':
      return operatorCommand(command, rest);
    case 'run':
      return runCommand(rest);
    case 'rank-exec':
      return rankExecCommand(rest);
    case 'attach':
      return attachCommand(rest);
    case 'cancel':
      return cancelCommand(rest);
    case 'delete':
      return deleteCommand(rest);
    case 'checkpoint':
      return checkpointCommand(rest);
    case 'epochs':
      return epochsCommand(rest);
    case 'restart':
      return restartCommand(rest);
    case 'migrate':
      return migrateCommand(rest);
    case 'drain':
      return drainCommand(rest);
    case 'undrain':
      return undrainCommand(rest);
    case 'forget':
      return forgetCommand(rest);
    case 'inspect':
      return inspectCommand(rest);
    case 'doctor':
      return doctorCommand(rest);
    case 'mpicc':
      return mpiccCommand(rest);
    case 'keygen':
      return keygenCommand(rest);
    default:
      throw new FerryError(ErrorCode.BAD_REQUEST, `unknown command "${command}" (ferry help lists them)`);
  }
}

endQuietlyWhenStdoutCloses();
main(process.argv.slice(2)).then(
  async (code) => {
    await flushStdio();
    process.exit(code);
  },
  async (err) => {
    const code = err instanceof FerryError ? ErrorCode[err.code] : undefined;
    process.stderr.write(`ferry: ${errorMessage(err)}${code && code !== 'BAD_REQUEST' ? ` [${code}]` : ''}\n`);
    await flushStdio();
    process.exit(err instanceof FerryError && err.code === ErrorCode.BAD_REQUEST ? 2 : 1);
  },
);
