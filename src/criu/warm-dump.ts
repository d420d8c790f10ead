// A rank's dump started ahead of time, so that CRIU's start is not part of
// the job's pause.
//
// Before a dump touches the tree, CRIU probes the kernel: 20 ms for a dump
// of an idle process, a median of 28 ms (14-46) of the 83 ms each of four
// parallel 64 MiB dumps took (CRIU 4.1; it keeps the result in
// /run/criu.kdat only where /run is a tmpfs, see `ferry doctor`). A warm
// dump is a CRIU started while the rank runs, which has done that and waits
// in Ferry's plugin (src/native/ferry-append-files.c), before it seizes any
// task, for the go on a pipe. `go` moves its images folder to where the
// images belong and lets it go on; `cancel` (or the agent's death: the pipe
// ends) makes it stop there, the tree untouched.
//
// The tree is named by its pid when CRIU starts, but CRIU looks for it only
// after the go: the dump is of whatever process has that pid then, so the
// caller lets a warm dump go only for the pid of the rank it means to dump.
// Only for a root whose working directory is its own (a rank's init
// directory): a dump of a shared one takes turns through a lock
// (criu-dump.ts) that a waiting CRIU must not hold.
import { mkdirSync, readFileSync, renameSync, rmSync, rmdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { ErrorCode } from '../gen/proto.js';
import { tracer } from '../common/trace.js';
import { type CriuInstall } from './criu-install.js';
import { startCriu } from './criu-launch.js';
import {
  CRIU_DUMP_TIMEOUT_MS,
  CRIU_GHOST_LIMIT_BYTES,
  DUMP_LOG_NAME,
  type DumpResult,
  appendFilesEnv,
  appendFilesPlugin,
  criuPluginDir,
  dumpArgs,
  finishDump,
  ownScratchReady,
} from './criu-dump.js';
import { type CommandResult, type StartedCommand } from './run-command.js';

const trace = tracer('criu');

/** The descriptor the plugin waits on (FERRY_DUMP_HOLD_FD): the child's fd 3. */
const HOLD_FD = 3;
/** What the plugin logs once it has the go (a dump that never logged it did not touch the tree). */
const GO_LOGGED = 'ferry-append-files: go';

export interface WarmDumpOptions {
  criu: CriuInstall;
  /** The rank's ferry-init, as the agent's PID namespace sees it. */
  initPid: number;
  /** A folder of its own on the filesystem of the images (created here; `go` renames it). */
  stagingDir: string;
  /** Whether the root's working directory is its own (DumpRankOptions.cwdIsPrivate). */
  cwdIsPrivate: (cwd: string) => boolean;
  ghostLimitBytes?: number;
  /** From the go. */
  timeoutMs?: number;
}

export class WarmDump {
  private gone = false;
  private ended = false;

  private constructor(
    readonly initPid: number,
    private readonly stagingDir: string,
    private readonly run: StartedCommand,
    private readonly ghostLimitBytes: number,
    private readonly timeoutMs: number,
  ) {
    void run.result.then(() => {
      this.ended = true;
    });
  }

  /**
   * Starts CRIU for a later dump (leave-running) of the tree at `initPid`;
   * undefined where a warm dump cannot be had: no plugin to hold it, or a
   * root whose working directory is not its own.
   */
  static async start(o: WarmDumpOptions): Promise<WarmDump | undefined> {
    const pluginDir = criuPluginDir();
    const plugin = appendFilesPlugin(o.criu.command, pluginDir);
    if (!plugin.ok) {
      trace(`no warm dump of pid ${o.initPid}: ${plugin.why}`);
      return undefined;
    }
    if (!(await ownScratchReady(o.initPid, o.cwdIsPrivate))) return undefined;
    mkdirSync(o.stagingDir, { recursive: true });
    const ghostLimitBytes = o.ghostLimitBytes ?? CRIU_GHOST_LIMIT_BYTES;
    const args = dumpArgs({
      initPid: o.initPid,
      imagesDir: o.stagingDir,
      logFile: join(o.stagingDir, DUMP_LOG_NAME),
      ghostLimitBytes,
      leaveRunning: true,
      pluginDir,
    });
    // Detached, as every dump (criu-dump.ts); the time limit starts with the go.
    const run = startCriu(o.criu.command, args, {
      timeoutMs: null,
      detached: true,
      pipe3: true,
      env: { ...appendFilesEnv(o.initPid), FERRY_DUMP_HOLD_FD: String(HOLD_FD) },
    });
    trace(`warm dump of pid ${o.initPid}: CRIU ${run.child.pid} waits in ${o.stagingDir}`);
    return new WarmDump(o.initPid, o.stagingDir, run, ghostLimitBytes, o.timeoutMs ?? CRIU_DUMP_TIMEOUT_MS);
  }

  /** Whether its CRIU still waits for the go (false once it ended, was let go or was called off). */
  get waiting(): boolean {
    return !this.ended && !this.gone;
  }

  /**
   * Lets the dump go on into `imagesDir` (which must not exist: the staging
   * folder becomes it; `moved` runs once it has, before CRIU goes on).
   * Undefined if CRIU had ended before it could begin (nothing was dumped,
   * and `imagesDir` is gone again): the caller dumps the usual way. With
   * `leaveStopped` the tree is left stopped after a dump that succeeded.
   */
  async go(imagesDir: string, keepFailedLogAs?: string, moved?: () => void, leaveStopped = false): Promise<DumpResult | undefined> {
    if (!this.waiting) {
      this.cancel();
      return undefined;
    }
    this.gone = true;
    const started = performance.now();
    try {
      renameSync(this.stagingDir, imagesDir);
    } catch (e) {
      this.gone = false;
      this.cancel();
      throw new FerryError(ErrorCode.INTERNAL, `warm dump of pid ${this.initPid}: cannot move ${this.stagingDir} to ${imagesDir}: ${errorMessage(e)}`);
    }
    try {
      moved?.();
    } catch (e) {
      this.run.pipe3!.end(); // called off: CRIU must not wait for a go that will not come
      throw e;
    }
    // "s": the plugin stops the tree (SIGSTOP) once it is dumped, before CRIU lets it go (--leave-stopped's
    // effect, which this CRIU, started with --leave-running, was not given).
    this.run.pipe3!.end(leaveStopped ? 's' : 'g');
    this.run.armTimeout(this.timeoutMs);
    const r = await this.run.result;
    const logFile = join(imagesDir, DUMP_LOG_NAME);
    if (r.code !== 0 && !logSays(logFile, GO_LOGGED)) {
      // It ended (or was killed) before the go reached it: the tree is untouched.
      trace(`warm dump of pid ${this.initPid}: CRIU ended before the go (code ${r.code}, signal ${r.signal}); dumping cold`);
      rmSync(imagesDir, { recursive: true, force: true });
      return undefined;
    }
    return finishDump(r, { initPid: this.initPid, imagesDir, logFile, ghostLimitBytes: this.ghostLimitBytes, timeoutMs: this.timeoutMs, keepFailedLogAs, started });
  }

  /**
   * Calls the dump off (its CRIU stops before it seizes anything, and fails); its staging folder goes once
   * CRIU has ended. Resolves to how CRIU ended.
   */
  cancel(): Promise<CommandResult> {
    if (!this.gone) {
      this.gone = true;
      this.run.pipe3!.end();
      void this.run.result.then(() => {
        rmSync(this.stagingDir, { recursive: true, force: true });
        try {
          rmdirSync(dirname(this.stagingDir)); // the job's folder, once no other warm dump of it is there
        } catch {
          // not empty, or gone
        }
      });
    }
    return this.run.result;
  }
}

function logSays(logFile: string, text: string): boolean {
  try {
    return readFileSync(logFile, 'utf8').includes(text);
  } catch {
    return false;
  }
}
