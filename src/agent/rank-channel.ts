// The agent's side of the rank channel (proto/rank.proto): a Unix stream
// server on an abstract socket name that every rank process of this host
// connects to from MPI_Init (src/runtime/agent.c). Frames are a 4-byte
// little-endian length + one RankMessage.
//
// The server only speaks the protocol; the agent decides. It tells the agent
// who said hello (and waits for the agent to answer with the job's endpoint
// table), relays finalize/exit/abort notices, and runs flushes: a flush
// request to each rank, whose reply arrives once the rank drained and closed
// every peer channel; the flush of that rank is complete when it has also
// closed this connection (then it holds no sockets and waits for SIGUSR2).
import { EventEmitter } from 'node:events';
import net from 'node:net';
import {
  ErrorCode,
  RankMessage_TYPE,
  type RankMessage,
  type RankMessageInit,
} from '../gen/proto.js';
import { Codec } from '../protocol/codec.js';
import { PROTOCOL_VERSION, checkPeerVersion } from '../protocol/version.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';

const trace = tracer('rank-channel');

export const RANK_FRAME_MAX_BYTES = 1024 * 1024;
const FRAME_HEADER_BYTES = 4;

export interface RankEndpoint {
  rank: number;
  address: string;
  port: number;
}

/** What a rank said in its hello. */
export interface RankInfo {
  jobId: string;
  rank: number;
  size: number;
  /** getpid() inside the rank (1 when it is the init of its own PID namespace). */
  pid: number;
  listenPort: number;
  runtimeVersion: string;
  /** 0 at start; the flush epoch when the rank resumes after a flush. */
  resumedEpoch: number;
  /** the same hello again, to a new agent (the one asked first died before answering) */
  repeated?: boolean;
  /** an attach from a rank past MPI_Finalize (only its finalized and exit notices follow) */
  finalized?: boolean;
}

export interface RankFlushReport {
  jobId: string;
  rank: number;
  epoch: number;
  drainedMessages: number;
  drainedBytes: number;
  channelsClosed: number;
  unexpectedMessages: number;
  /** the rank had passed MPI_Finalize: it was not asked, it holds no channels but keeps this connection */
  finalized?: boolean;
}

/** Why a rank's connection ended. */
export type RankDisconnect = 'flushed' | 'exited' | 'aborted' | 'lost';

export interface RankChannelEvents {
  hello: [info: RankInfo];
  /** a rank connected again without a new endpoint (its agent connection broke); answer with answerAttach */
  attach: [info: RankInfo];
  /** a flush request was sent to a rank */
  flushing: [jobId: string, rank: number, epoch: number];
  /** a rank refused its flush request: it is not flushing */
  flushRefused: [jobId: string, rank: number];
  finalized: [jobId: string, rank: number, counts: { sentMessages: number; receivedMessages: number }];
  exit: [jobId: string, rank: number, exitCode: number];
  abort: [jobId: string, rank: number, errorCode: number, message: string];
  flushed: [report: RankFlushReport];
  disconnect: [jobId: string, rank: number, how: RankDisconnect];
  /** a frame that broke the protocol; the connection was closed */
  protocolError: [error: FerryError];
}

/** One rank's connection. */
class RankConnection {
  info: RankInfo | null = null;
  helloRequestId = 0;        // non-zero while the hello waits for its endpoint table
  attachRequestId = 0;       // non-zero while an attach waits for the agent's answer
  finalized = false;
  exitCode: number | null = null;
  aborted = false;
  flushed = false;
  flushRequestId = 0;
  flushReport: RankFlushReport | null = null;
  /** The token its hello or attach showed (never logged). */
  token = '';
  private rx: Buffer = Buffer.alloc(0);

  constructor(readonly socket: net.Socket) {}

  get key(): string {
    return this.info ? rankKey(this.info.jobId, this.info.rank) : '';
  }

  /** Appends bytes; returns the complete frames. */
  take(chunk: Buffer, maxBytes: number): Buffer[] {
    this.rx = this.rx.length ? Buffer.concat([this.rx, chunk]) : chunk;
    const frames: Buffer[] = [];
    while (this.rx.length >= FRAME_HEADER_BYTES) {
      const len = this.rx.readUInt32LE(0);
      if (len > maxBytes) throw new FerryError(ErrorCode.FRAME_TOO_LARGE, `frame of ${len} bytes (limit ${maxBytes})`);
      if (this.rx.length < FRAME_HEADER_BYTES + len) break;
      frames.push(this.rx.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + len));
      this.rx = this.rx.subarray(FRAME_HEADER_BYTES + len);
    }
    return frames;
  }
}

/** A flush in progress for one job: which ranks must still report. */
interface FlushWaiter {
  jobId: string;
  waiting: Set<number>;
  reports: RankFlushReport[];
  resolve: (reports: RankFlushReport[]) => void;
  reject: (err: Error) => void;
}

function rankKey(jobId: string, rank: number): string {
  return `${jobId}/${rank}`;
}

export interface RankChannelOptions {
  /** abstract socket name, without the leading NUL (the ranks' FERRY_AGENT_SOCKET) */
  socketName: string;
  maxFrameBytes?: number;
  /**
   * Whether a connection that says it is RANK of JOB may be it: it showed TOKEN (the job's rank token,
   * see RankSupervisor.checkRankToken). Returns why not, or undefined to let it in (also when the
   * rank is not known here yet: the agent decides then, see revalidate). Absent: everyone is let in.
   */
  authenticate?: (jobId: string, rank: number, token: string) => string | undefined;
}

export class RankChannelServer extends EventEmitter<RankChannelEvents> {
  private readonly codec = new Codec<RankMessage, RankMessageInit>(RankMessage_TYPE);
  private readonly maxFrameBytes: number;
  private server: net.Server | null = null;
  private readonly conns = new Set<RankConnection>();
  private readonly byRank = new Map<string, RankConnection>();
  /** Ranks that said hello or attach here (until forgetRank): a flush tells those apart from ranks that never did. */
  private readonly everConnected = new Set<string>();
  /** Ranks whose connection closed after their finalized or exit notice (until forgetRank): they are ending, not lost. Says how. */
  private readonly ending = new Map<string, string>();
  private readonly flushes = new Set<FlushWaiter>();
  private nextRequestId = 1;

  constructor(private readonly options: RankChannelOptions) {
    super();
    this.maxFrameBytes = options.maxFrameBytes ?? RANK_FRAME_MAX_BYTES;
  }

  listen(): Promise<void> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: '\0' + this.options.socketName }, () => {
        server.off('error', reject);
        trace(`listening on @${this.options.socketName}`);
        resolve();
      });
    });
  }

  /** Stops listening and drops every rank connection. */
  async close(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The ranks of a job connected right now (hello received). */
  ranks(jobId: string): RankInfo[] {
    return [...this.conns].filter((c) => c.info?.jobId === jobId).map((c) => c.info!).sort((a, b) => a.rank - b.rank);
  }

  /**
   * Answers the waiting hellos of a job with its endpoint table (one entry per
   * rank of the job). Returns the ranks answered; ranks that connect later
   * need another call.
   */
  sendEndpoints(jobId: string, endpoints: RankEndpoint[]): number[] {
    const answered: number[] = [];
    for (const c of this.conns) {
      if (c.info?.jobId !== jobId || c.helloRequestId === 0) continue;
      this.send(c, {
        reply_to: c.helloRequestId,
        status: { ok: true, code: ErrorCode.OK, message: '' },
        endpoints: { job_id: jobId, endpoints },
      });
      c.helloRequestId = 0;
      answered.push(c.info.rank);
    }
    trace(`endpoints of ${jobId} sent to ranks [${answered.join(',')}]`);
    return answered.sort((a, b) => a - b);
  }

  /**
   * Asks `authenticate` again about the connection that is RANK of JOB (one let in before the agent
   * knew the rank: a restarted agent listens before it takes its ranks back, Agent.start). If it is refused now,
   * the connection is answered with why, closed and forgotten (no disconnect is reported for it), and
   * false is returned.
   */
  revalidate(jobId: string, rank: number): boolean {
    const c = this.byRank.get(rankKey(jobId, rank));
    if (!c) return true;
    const refused = this.options.authenticate?.(jobId, rank, c.token);
    if (refused === undefined) return true;
    this.drop(c, c.helloRequestId || c.attachRequestId, new FerryError(ErrorCode.PERMISSION_DENIED, refused));
    return false;
  }

  /**
   * Refuses a connection that said who it is: answers its waiting request with
   * `err`, forgets it (no disconnect is reported for it) and closes it, so it
   * does not keep the rank's place from the rank itself (a hello refused as
   * not this agent's may come from a process that is not the rank, before
   * the rank is restored or migrated here).
   */
  private drop(c: RankConnection, requestId: number, err: FerryError): void {
    if (requestId) this.replyError(c, requestId, err);
    trace(`closing rank connection ${c.key}: ${err.message}`);
    if (this.byRank.get(c.key) === c) this.byRank.delete(c.key);
    c.info = null;
    c.helloRequestId = 0;
    c.attachRequestId = 0;
    c.socket.removeAllListeners('data');
    c.socket.end(); // after the reply: the rank reads it, then exits with its message
  }

  /** Refuses the waiting hello of one rank (the rank exits with the message), and closes its connection. */
  refuseHello(jobId: string, rank: number, code: ErrorCode, message: string): boolean {
    const c = this.byRank.get(rankKey(jobId, rank));
    if (!c || c.helloRequestId === 0) return false;
    this.drop(c, c.helloRequestId, new FerryError(code, message));
    return true;
  }

  /**
   * Ranks whose hello or attach is still unanswered: a daemon that starts its
   * agent after it began listening (a restarted agent's ranks connect at once)
   * hands these to the agent, as no one heard their events.
   */
  unanswered(): { hellos: RankInfo[]; attaches: RankInfo[] } {
    const conns = [...this.conns].filter((c) => c.info);
    return {
      hellos: conns.filter((c) => c.helloRequestId !== 0).map((c) => c.info!),
      attaches: conns.filter((c) => c.attachRequestId !== 0).map((c) => c.info!),
    };
  }

  /** Answers a rank's attach: accepted, or refused with `error` (the rank then exits with its message; its connection is closed). */
  answerAttach(jobId: string, rank: number, error?: FerryError): boolean {
    const c = this.byRank.get(rankKey(jobId, rank));
    if (!c || c.attachRequestId === 0) return false;
    if (error) {
      this.drop(c, c.attachRequestId, error);
      return true;
    }
    this.send(c, { reply_to: c.attachRequestId, status: { ok: true, code: ErrorCode.OK, message: '' } });
    c.attachRequestId = 0;
    return true;
  }

  /** Whether the rank is connected now (said hello or attached, and its connection is open). */
  isConnected(jobId: string, rank: number): boolean {
    return this.byRank.has(rankKey(jobId, rank));
  }

  /** Forgets that a rank ever connected (it ended). */
  forgetRank(jobId: string, rank: number): void {
    this.everConnected.delete(rankKey(jobId, rank));
    this.ending.delete(rankKey(jobId, rank));
  }

  private notConnected(jobId: string, rank: number): FerryError {
    const ending = this.ending.get(rankKey(jobId, rank));
    if (ending) {
      // its process has not been seen to end yet (the supervisor reports that): a moment, as a rank exits
      return new FerryError(ErrorCode.UNKNOWN_RANK, `rank ${rank} of job ${jobId} ${ending}`);
    }
    if (this.everConnected.has(rankKey(jobId, rank))) {
      return new FerryError(ErrorCode.UNKNOWN_RANK, `rank ${rank} of job ${jobId} is not connected (it lost its connection to the agent)`);
    }
    return new FerryError(
      ErrorCode.UNKNOWN_RANK,
      `rank ${rank} of job ${jobId} has not connected to Ferry's MPI runtime here: it is not in MPI_Init yet (try again once it is), ` +
        `or its program is not linked with the runtime (build it with ferry mpicc)`,
    );
  }

  /**
   * Flushes the given ranks of a job (all connected ones by default): resolves
   * with one report per rank once each has replied and closed its connection;
   * rejects with a FerryError when a rank refuses or its connection ends first.
   * The caller bounds the time (a rank computing never blocks a flush, but a
   * stopped process would). `beforeSend` gets the ranks about to be asked, once
   * all were found ready and before the first request is written: what it
   * records precedes any rank's flush.
   */
  flush(jobId: string, epoch: number, ranks?: number[], beforeSend?: (asked: number[]) => void): Promise<RankFlushReport[]> {
    const targets = ranks ?? this.ranks(jobId).map((r) => r.rank);
    const conns: RankConnection[] = [];
    for (const rank of targets) {
      const c = this.byRank.get(rankKey(jobId, rank));
      if (!c) return Promise.reject(this.notConnected(jobId, rank));
      if (c.flushRequestId) return Promise.reject(new FerryError(ErrorCode.BUSY, `rank ${rank} of job ${jobId} is already flushing`));
      conns.push(c);
    }
    beforeSend?.(conns.filter((c) => !c.finalized).map((c) => c.info!.rank));
    return new Promise((resolve, reject) => {
      const waiter: FlushWaiter = { jobId, waiting: new Set(targets), reports: [], resolve, reject };
      this.flushes.add(waiter);
      for (const c of conns) {
        if (c.finalized) {
          // past MPI_Finalize: no channels, nothing in flight; it only waits to exit
          this.finalizedFlushed(waiter, c, epoch);
          continue;
        }
        c.flushRequestId = this.nextRequestId++;
        this.send(c, { request_id: c.flushRequestId, flush: { epoch } });
        this.emit('flushing', jobId, c.info!.rank, epoch);
      }
      trace(`flush epoch ${epoch} of ${jobId} sent to ranks [${targets.join(',')}]`);
      this.settleFlush(waiter);
    });
  }

  private finalizedFlushed(w: FlushWaiter, c: RankConnection, epoch: number): void {
    w.waiting.delete(c.info!.rank);
    w.reports.push({
      jobId: c.info!.jobId, rank: c.info!.rank, epoch, drainedMessages: 0, drainedBytes: 0,
      channelsClosed: 0, unexpectedMessages: 0, finalized: true,
    });
  }

  /** Wakes a flushed rank (pid as the agent sees it): it reconnects and says hello again. */
  static resume(pid: number): void {
    process.kill(pid, 'SIGUSR2');
  }

  // ---- connections ----

  private accept(socket: net.Socket): void {
    const c = new RankConnection(socket);
    this.conns.add(c);
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const frame of c.take(chunk, this.maxFrameBytes)) this.onFrame(c, frame);
      } catch (err) {
        const fe = err instanceof FerryError ? err : new FerryError(ErrorCode.INTERNAL, errorMessage(err));
        trace(`closing rank connection ${c.key || '(no hello)'}: ${fe}`);
        this.emit('protocolError', fe);
        socket.removeAllListeners('data');
        socket.end(); // lets an error reply already written reach the rank
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.onClose(c));
  }

  private onFrame(c: RankConnection, frame: Buffer): void {
    const m = this.codec.decode(frame);
    try {
      checkPeerVersion(m.version, `rank ${c.key || '(no hello)'}`);
    } catch (err) {
      if (m.request_id) this.replyError(c, m.request_id, err as FerryError);
      throw err;
    }
    switch (m.body) {
      case 'hello':
        return this.onHello(c, m);
      case 'attach':
        return this.onAttach(c, m);
      case 'finalized': {
        c.finalized = true;
        const w = this.waiterFor(c);
        if (w && c.flushRequestId) {
          // finalized while asked to flush: the rank will not answer the request
          c.flushRequestId = 0;
          this.finalizedFlushed(w, c, 0);
          this.settleFlush(w);
        }
        if (c.info)
          this.emit('finalized', c.info.jobId, c.info.rank, {
            sentMessages: m.finalized!.sent_messages,
            receivedMessages: m.finalized!.received_messages,
          });
        return;
      }
      case 'exit':
        c.exitCode = m.exit!.exit_code;
        if (c.info) this.emit('exit', c.info.jobId, c.info.rank, c.exitCode);
        return;
      case 'abort':
        c.aborted = true;
        if (c.info) this.emit('abort', c.info.jobId, c.info.rank, m.abort!.error_code, m.abort!.message);
        return;
      case 'flush_reply':
        return this.onFlushReply(c, m);
      default:
        if (m.request_id) {
          this.replyError(c, m.request_id, new FerryError(ErrorCode.UNSUPPORTED, `unexpected ${m.body ?? 'empty'} from a rank`));
        }
    }
  }

  /**
   * The checks a hello and an attach share: a connection says who it is once,
   * with a job, a rank below the size and a request id, and no other live
   * connection is that rank. Returns the rank's key.
   */
  private checkIdentity(
    c: RankConnection,
    requestId: number,
    what: string,
    id: { job_id: string; rank: number; size: number; token: string },
    valid: boolean,
  ): string {
    if (c.info) throw new FerryError(ErrorCode.BAD_REQUEST, `${what} on a connection that already said who it is`);
    if (!id.job_id || id.size === 0 || id.rank >= id.size || requestId === 0 || !valid) {
      this.replyError(c, requestId, new FerryError(ErrorCode.BAD_REQUEST, `${what} needs job_id, rank < size${what === 'hello' ? ', listen_port' : ''} and a request id`));
      throw new FerryError(ErrorCode.BAD_REQUEST, `invalid ${what} from rank ${id.rank} of job '${id.job_id}'`);
    }
    // Before it can take the rank's place: a process that is not the rank must not hold it.
    const refused = this.options.authenticate?.(id.job_id, id.rank, id.token);
    if (refused !== undefined) {
      this.replyError(c, requestId, new FerryError(ErrorCode.PERMISSION_DENIED, refused));
      throw new FerryError(ErrorCode.PERMISSION_DENIED, `${what} refused: ${refused}`);
    }
    c.token = id.token;
    const key = rankKey(id.job_id, id.rank);
    if (this.byRank.has(key)) {
      this.replyError(c, requestId, new FerryError(ErrorCode.BAD_REQUEST, `rank ${id.rank} of job ${id.job_id} is already connected`));
      throw new FerryError(ErrorCode.BAD_REQUEST, `duplicate ${what} for ${key}`);
    }
    return key;
  }

  private onHello(c: RankConnection, m: RankMessage): void {
    const h = m.hello!;
    const key = this.checkIdentity(c, m.request_id, 'hello', h, h.listen_port !== 0);
    c.info = {
      jobId: h.job_id,
      rank: h.rank,
      size: h.size,
      pid: h.pid,
      listenPort: h.listen_port,
      runtimeVersion: h.runtime_version,
      resumedEpoch: h.resumed_epoch,
      repeated: h.repeated,
    };
    c.helloRequestId = m.request_id;
    this.byRank.set(key, c);
    this.everConnected.add(key);
    this.ending.delete(key);
    trace(`hello from ${key} port ${h.listen_port} resumed_epoch ${h.resumed_epoch}`);
    this.emit('hello', c.info);
  }

  private onAttach(c: RankConnection, m: RankMessage): void {
    const a = m.attach!;
    const key = this.checkIdentity(c, m.request_id, 'attach', a, true);
    c.info = {
      jobId: a.job_id,
      rank: a.rank,
      size: a.size,
      pid: a.pid,
      listenPort: a.listen_port,
      runtimeVersion: a.runtime_version,
      resumedEpoch: 0,
      finalized: a.finalized,
    };
    c.finalized = a.finalized;
    c.attachRequestId = m.request_id;
    this.byRank.set(key, c);
    this.everConnected.add(key);
    this.ending.delete(key);
    trace(`attach from ${key}${a.finalized ? ' (finalized)' : ''}`);
    this.emit('attach', c.info);
  }

  private onFlushReply(c: RankConnection, m: RankMessage): void {
    if (!c.info || m.reply_to === 0 || m.reply_to !== c.flushRequestId) {
      throw new FerryError(ErrorCode.BAD_REQUEST, `flush reply ${m.reply_to} from ${c.key || '(no hello)'} answers no flush`);
    }
    const waiter = this.waiterFor(c);
    c.flushRequestId = 0;
    if (!m.status?.ok) {
      const err = new FerryError(m.status?.code ?? ErrorCode.INTERNAL,
        `rank ${c.info.rank} of job ${c.info.jobId} refused the flush: ${m.status?.message ?? 'no status'}`);
      // (it is not flushing: the 'flushing' emitted as the request went out no longer holds)
      this.emit('flushRefused', c.info.jobId, c.info.rank);
      if (waiter) this.failFlush(waiter, err);
      return;
    }
    const r = m.flush_reply!;
    c.flushed = true;
    c.flushReport = {
      jobId: c.info.jobId,
      rank: c.info.rank,
      epoch: r.epoch,
      drainedMessages: r.drained_messages,
      drainedBytes: r.drained_bytes,
      channelsClosed: r.channels_closed,
      unexpectedMessages: r.unexpected_messages,
    };
    // complete when the rank has closed this connection too (onClose)
  }

  private onClose(c: RankConnection): void {
    this.conns.delete(c);
    if (!c.info) return;
    if (this.byRank.get(c.key) === c) this.byRank.delete(c.key);
    const waiter = this.waiterFor(c);
    let how: RankDisconnect;
    if (c.flushed && c.flushReport) {
      how = 'flushed';
      this.emit('flushed', c.flushReport);
      if (waiter) {
        waiter.waiting.delete(c.info.rank);
        waiter.reports.push(c.flushReport);
        this.settleFlush(waiter);
      }
    } else {
      how = c.aborted ? 'aborted' : c.exitCode !== null ? 'exited' : 'lost';
      if (c.finalized) this.ending.set(c.key, 'has finished (past MPI_Finalize, its process is exiting)');
      else if (c.exitCode !== null) this.ending.set(c.key, `is exiting (it reported exit status ${c.exitCode})`);
      if (waiter) {
        this.failFlush(waiter, new FerryError(ErrorCode.UNAVAILABLE,
          `rank ${c.info.rank} of job ${c.info.jobId} disconnected (${how}) before completing the flush`));
      }
    }
    trace(`${c.key} disconnected: ${how}`);
    this.emit('disconnect', c.info.jobId, c.info.rank, how);
  }

  private waiterFor(c: RankConnection): FlushWaiter | undefined {
    for (const w of this.flushes) if (w.jobId === c.info?.jobId && w.waiting.has(c.info.rank)) return w;
    return undefined;
  }

  private settleFlush(w: FlushWaiter): void {
    if (w.waiting.size > 0) return;
    this.flushes.delete(w);
    w.resolve(w.reports.sort((a, b) => a.rank - b.rank));
  }

  private failFlush(w: FlushWaiter, err: FerryError): void {
    this.flushes.delete(w);
    w.reject(err);
  }

  private replyError(c: RankConnection, requestId: number, err: FerryError): void {
    this.send(c, { reply_to: requestId, status: { ok: false, code: err.code, message: err.message } });
  }

  private send(c: RankConnection, m: RankMessageInit): void {
    const body = this.codec.encode({ version: PROTOCOL_VERSION, ...m });
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    header.writeUInt32LE(body.length, 0);
    c.socket.write(Buffer.concat([header, body]));
  }
}
