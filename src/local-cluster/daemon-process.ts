// One long-running process of a test (a coordinator or an agent): its own
// process group, stdout and stderr appended to a log file that survives
// restarts, and waits on lines it prints. Killing it signals the whole group.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';

const LOG_POLL_MS = 50;
const STOP_GRACE_MS = 5_000;

export class DaemonProcess {
  private child: ChildProcess | null = null;
  private exitPromise: Promise<void> = Promise.resolve();
  private logOffset = 0; // log size when the current incarnation started
  private exitStatus: string | null = null;

  constructor(
    readonly name: string,
    private readonly argv: readonly string[],
    readonly logFile: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== null && this.exitStatus === null;
  }

  start(): void {
    if (this.running) throw new Error(`${this.name} is already running (pid ${this.pid})`);
    this.logOffset = existsSync(this.logFile) ? statSync(this.logFile).size : 0;
    const fd = openSync(this.logFile, 'a');
    try {
      const [cmd, ...args] = this.argv;
      // detached: a new session and process group, so a group kill reaches
      // whatever the daemon forked, and Ctrl-C in a terminal does not.
      this.child = spawn(cmd!, args, { detached: true, stdio: ['ignore', fd, fd], env: this.env });
    } finally {
      closeSync(fd);
    }
    this.exitStatus = null;
    const child = this.child;
    this.exitPromise = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitStatus = signal ? `killed by ${signal}` : `exited with ${code}`;
        resolve();
      });
      child.once('error', (err) => {
        this.exitStatus = `failed to start: ${err.message}`;
        resolve();
      });
    });
  }

  // Log text written since the last start().
  output(): string {
    if (!existsSync(this.logFile)) return '';
    return readFileSync(this.logFile).subarray(this.logOffset).toString('utf8');
  }

  // The whole log, all incarnations.
  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  tail(lines = 25): string {
    const all = this.log().trimEnd().split('\n');
    return all.slice(-lines).join('\n');
  }

  // Resolves once the current incarnation printed a line matching PATTERN;
  // rejects if it exits first or TIMEOUT_MS passes.
  async waitForOutput(pattern: RegExp, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (pattern.test(this.output())) return;
      if (this.exitStatus !== null) {
        throw new Error(`${this.name} ${this.exitStatus} before printing ${pattern}; log tail:\n${this.tail()}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`${this.name} did not print ${pattern} within ${timeoutMs} ms; log tail:\n${this.tail()}`);
      }
      await new Promise((r) => setTimeout(r, LOG_POLL_MS));
    }
  }

  private signalGroup(signal: NodeJS.Signals): void {
    if (!this.running || this.pid === undefined) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      // group already gone
    }
  }

  // Stops the daemon (SIGSTOP) for MS, then lets it go on: a process that stands still, as under a
  // blocked event loop or a stalled machine.
  async pause(ms: number): Promise<void> {
    this.signalGroup('SIGSTOP');
    try {
      await new Promise((r) => setTimeout(r, ms));
    } finally {
      this.signalGroup('SIGCONT');
    }
  }

  // Sends SIGNAL to the process group and waits for the daemon to exit.
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    this.signalGroup(signal);
    await this.exitPromise;
  }

  // SIGTERM, then SIGKILL if it has not exited within STOP_GRACE_MS.
  async stop(): Promise<void> {
    if (!this.running) return;
    this.signalGroup('SIGTERM');
    const timer = setTimeout(() => this.signalGroup('SIGKILL'), STOP_GRACE_MS);
    await this.exitPromise;
    clearTimeout(timer);
  }

  killSync(): void {
    this.signalGroup('SIGKILL');
  }
}
