// Endpoint tables: each rank says hello (at MPI_Init, after a RESUME or a
// restore) with the port it listens on; its agent reports that endpoint here.
// Once every rank of a job has reported, the table of all of them goes to the
// job's agents, which hand it to their ranks: only then do the ranks connect
// to one another, and a rank still waiting for its table refuses a flush. The
// catalog records that a job's table went out (jobs.endpoints_published), so a
// coordinator that restarts while it hands the table out can hand it again.
import { ErrorCode, type EndpointInit, type RankEndpointReport, type RankProcess } from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';
import type { JobRow, RankUpdate } from './catalog-types.js';
import type { Coordinator } from './coordinator.js';

const trace = tracer('jobs');

/** How often a checkpoint or migration waiting for the job's endpoint table looks again (untilTableOut). */
const TABLE_WAIT_POLL_MS = 20;

/** What the tables need of the job service. */
export interface EndpointTableJobs {
  updateRank(update: RankUpdate): void;
  liveRanksByHost(jobId: string): Map<string, number[]>;
  /** Fails a job that runs (a host that cannot take its table: its ranks would wait for ever). */
  failRunningJob(jobId: string, detail: string): void;
  /** The coordinator stops: what it asks of the agents from now on is cut short, and no failure of theirs. */
  isShuttingDown(): boolean;
}

export class EndpointTables {
  /** Endpoints reported since a job's table was last published, by job then rank. */
  private readonly pendingEndpoints = new Map<string, Map<number, EndpointInit>>();
  /** Jobs whose ranks were woken flushed (expectTable) and have not all said hello yet. */
  private readonly tablesExpected = new Set<string>();
  /** Per job, its endpoint tables being handed to its agents (requests not all answered yet). */
  private readonly tablesInFlight = new Map<string, number>();
  /**
   * Per job, rank -> host: ranks that wait for their table, as their agent's registration said, whose
   * endpoint report has not come yet (awaitReports).
   */
  private readonly reportsAwaited = new Map<string, Map<number, string>>();

  constructor(
    private readonly c: Coordinator,
    private readonly jobs: EndpointTableJobs,
  ) {}

  /**
   * A rank said hello (at MPI_Init, or resuming): record its endpoint; once
   * every live rank of the job has reported, publish the table to their agents.
   */
  onRankEndpoint(host: string, e: RankEndpointReport): void {
    const job = this.c.catalog.getJob(e.job_id);
    if (!job) throw new FerryError(ErrorCode.UNKNOWN_JOB, `endpoint of rank ${e.rank} of unknown job "${e.job_id}"`);
    const row = this.c.catalog.getRank(e.job_id, e.rank);
    if (!row) throw new FerryError(ErrorCode.UNKNOWN_RANK, `job ${e.job_id} has no rank ${e.rank}`);
    if (e.size !== job.worldSize) {
      throw new FerryError(ErrorCode.BAD_REQUEST, `rank ${e.rank} of ${e.job_id} believes the job has ${e.size} ranks; it has ${job.worldSize}`);
    }
    if (!e.port || !e.address) throw new FerryError(ErrorCode.BAD_REQUEST, `rank ${e.rank} of ${e.job_id} reported no endpoint`);
    if (job.state !== 'running' && job.state !== 'pending') {
      // (a report that was on its way as the job ended: it would count for the table of its next run)
      trace(`endpoint of rank ${e.rank} of ${e.job_id} from ${host} ignored: the job is ${job.state}`);
      return;
    }
    const endpoint = `${e.address}:${e.port}`;
    this.reportsAwaited.get(job.id)?.delete(e.rank);
    if (e.repeated && this.republishTo(host, job, e.rank, endpoint)) return;
    // The first endpoint of a new gathering: the table the catalog holds is no longer the one to hand out.
    if (!this.pendingEndpoints.has(job.id) && job.endpointsPublished) this.recordPublished(job.id, false);
    // (written late, it is the endpoint of the rank where it runs then: a move since makes it moot)
    this.c.lateWrites.run(job.id, `endpoint ${e.rank}`, `the endpoint of rank ${e.rank} of job ${job.id}`, (late) => {
      const now = late ? this.c.catalog.getRank(row.jobId, row.rank) : row;
      if (!now || (late && now.host !== host)) return;
      this.jobs.updateRank({ jobId: row.jobId, rank: row.rank, host, pid: now.pid, endpoint, state: now.state === 'exited' ? 'exited' : 'running', updatedMs: this.c.now() });
    });
    const pending = this.pendingEndpoints.get(e.job_id) ?? new Map<number, EndpointInit>();
    pending.set(e.rank, { rank: e.rank, address: e.address, port: e.port });
    this.pendingEndpoints.set(e.job_id, pending);
    this.publishIfComplete(job);
  }

  /**
   * An agent registered, naming the ranks there that said hello and wait for their table. Their endpoint
   * reports follow the registration (told again to a coordinator that is new to the agent, or still on
   * their way); until they come, this coordinator knows nothing of those ranks waiting, and a flush asked
   * meanwhile would find them so and fail. So untilTableOut waits for those reports too. The registration
   * says how the host is now: what it said before is replaced.
   */
  awaitReports(host: string, ranks: readonly RankProcess[]): void {
    for (const jobId of [...this.reportsAwaited.keys()]) this.awaitNoMore(jobId, host);
    for (const p of ranks) {
      if (!p.awaits_table || this.pendingEndpoints.get(p.job_id)?.has(p.rank) || this.c.catalog.getJob(p.job_id)?.state !== 'running') continue;
      const awaited = this.reportsAwaited.get(p.job_id) ?? new Map<number, string>();
      awaited.set(p.rank, host);
      this.reportsAwaited.set(p.job_id, awaited);
    }
  }

  /**
   * The job ended: the table being gathered goes with it. A restart gathers its own; the endpoints of
   * ranks that said hello before the end are of processes gone, and would stand in its table.
   */
  forget(jobId: string): void {
    this.pendingEndpoints.delete(jobId);
    this.tablesExpected.delete(jobId);
    this.reportsAwaited.delete(jobId);
  }

  /**
   * The reports of the job's ranks on `host` are awaited no more: the job's table reached it (its ranks there
   * wait no more, whatever report of theirs is still on its way), or its agent registered again.
   */
  private awaitNoMore(jobId: string, host: string): void {
    const awaited = this.reportsAwaited.get(jobId);
    if (!awaited) return;
    for (const [rank, h] of awaited) if (h === host) awaited.delete(rank);
    if (awaited.size === 0) this.reportsAwaited.delete(jobId);
  }

  /** Rank `rank` of the job ended: a table being gathered may have every rank that will still say hello now. */
  onRankExited(jobId: string, rank: number): void {
    this.reportsAwaited.get(jobId)?.delete(rank);
    const job = this.c.catalog.getJob(jobId);
    if (job && this.pendingEndpoints.has(jobId)) this.publishIfComplete(job);
  }

  /**
   * Publishes the table being gathered once every rank of the job is in it, or has ended. A rank past
   * MPI_Finalize says hello no more; its peers may still be in theirs (its barrier done, theirs not yet
   * seen through) when a flush catches them, and after the RESUME they wait for a table: its last
   * endpoint stands in for it (no rank talks to one that has finalized). Without it they waited for
   * good, and the job never ended (soak seed 116: two ranks exited during a checkpoint's DUMP).
   */
  private publishIfComplete(job: JobRow): void {
    const pending = this.pendingEndpoints.get(job.id)!;
    const table = new Map(pending);
    if (table.size < job.worldSize) {
      for (const r of this.c.catalog.listRanks(job.id)) {
        if (r.state !== 'exited' || table.has(r.rank)) continue;
        const last = parseEndpoint(r.endpoint);
        if (!last) return; // ended before it ever said hello: not an MPI rank of this runtime, or not yet one
        table.set(r.rank, { rank: r.rank, ...last });
      }
      if (table.size < job.worldSize) return;
      const ended = [...table.keys()].filter((r) => !pending.has(r)).sort((a, b) => a - b);
      const many = ended.length > 1;
      this.c.event(
        'job.endpoints',
        `job ${job.id}: rank${many ? 's' : ''} ${ended.join(',')} ${many ? 'have' : 'has'} ended: ${many ? 'their last endpoints stand' : 'its last endpoint stands'} in the table`,
        { jobId: job.id },
      );
    }
    this.pendingEndpoints.delete(job.id);
    // Recorded before any host is sent the table: a coordinator killed part way through sending it leaves
    // hosts that did not get it, whose ranks still wait; the next coordinator hands them this table when
    // their agents tell those endpoints again (republishTo).
    this.recordPublished(job.id, true);
    this.tablesExpected.delete(job.id);
    this.reportsAwaited.delete(job.id);
    void this.publish(job.id, [...table.values()].sort((a, b) => (a.rank ?? 0) - (b.rank ?? 0)));
  }

  /**
   * A RESUME is about to wake the job's flushed ranks: each says hello and waits for a new endpoint
   * table. Until that table is out, a flush request would find them waiting, and they refuse it.
   * Only for a job whose ranks had a table (MPI ranks of this runtime): no other says hello.
   */
  expectTable(jobId: string): void {
    if (this.c.catalog.getJob(jobId)?.endpointsPublished) this.tablesExpected.add(jobId);
  }

  /**
   * Waits (up to `timeoutMs`) while the job's endpoint table is on its way: ranks were woken and not all
   * said hello yet, their endpoints are being gathered, or the table is being handed to their agents.
   * A checkpoint or a migration waits here before its PREPARE: a rank still waiting for its table
   * refuses a flush ("rank is not running yet"), and one begun right after a RESUME, or right after a
   * coordinator restart while the agents tell their ranks' endpoints again, failed so (soak seed 109).
   * Past the timeout it goes on, and the PREPARE names any rank still waiting.
   */
  async untilTableOut(jobId: string, timeoutMs: number): Promise<void> {
    const coming = () =>
      (this.tablesExpected.has(jobId) || this.pendingEndpoints.has(jobId) || this.tablesInFlight.has(jobId) || !!this.reportsAwaited.get(jobId)?.size) &&
      this.c.catalog.getJob(jobId)?.state === 'running' &&
      // (a host of the job that is down holds the table back until it is back; the operation is refused for it)
      [...this.jobs.liveRanksByHost(jobId).keys()].every((host) => this.c.hosts.get(host)?.state === 'up');
    if (!coming()) return;
    const t0 = this.c.now();
    while (coming() && this.c.now() - t0 < timeoutMs) await new Promise((r) => setTimeout(r, TABLE_WAIT_POLL_MS));
    if (coming()) {
      this.c.event('job.endpoints', `job ${jobId}: its endpoint table is not out after ${timeoutMs} ms; going on without it`, { jobId });
    } else {
      trace(`job ${jobId}: waited ${this.c.now() - t0} ms for its endpoint table to be out`);
    }
  }

  /**
   * An endpoint told again (the rank said hello again to a new agent, whose
   * predecessor died before it handed over the table; or an agent tells it again
   * to a new coordinator, or after a report whose answer it did not get): when
   * the job's table went out and this rank's endpoint is in it, that host gets
   * the table again. Otherwise the endpoint counts for the table being gathered.
   */
  private republishTo(host: string, job: JobRow, rank: number, endpoint: string): boolean {
    const jobId = job.id;
    if (!job.endpointsPublished || this.pendingEndpoints.has(jobId)) return false;
    const rows = this.c.catalog.listRanks(jobId);
    if (rows.length !== job.worldSize || rows.find((r) => r.rank === rank)?.endpoint !== endpoint) return false;
    const endpoints: EndpointInit[] = [];
    for (const r of rows) {
      const e = parseEndpoint(r.endpoint);
      if (!e) return false;
      endpoints.push({ rank: r.rank, ...e });
    }
    this.c.event('job.endpoints', `job ${jobId}: endpoint table sent again to ${host} (rank ${rank}'s endpoint told again)`, { jobId, host });
    void this.c.requestAgent(host, { endpoint_table: { job_id: jobId, endpoints } }).then(
      () => this.awaitNoMore(jobId, host),
      (err) => this.tableNotHanded(jobId, host, err),
    );
    return true;
  }

  /**
   * Records whether the job's table went out. Like the endpoints, a write the catalog refuses (its disk
   * full) waits for room (late-writes.ts) rather than fail the report: the ranks are woken and wait for
   * their table, which the coordinator holds in memory. Thrown, the report was dropped, and the ranks of a
   * job whose checkpoint failed for the full disk waited for good, also once there was room.
   */
  private recordPublished(jobId: string, published: boolean): void {
    this.c.lateWrites.run(jobId, 'endpoints published', `whether the endpoint table of job ${jobId} went out`, () => this.c.catalog.setEndpointsPublished(jobId, published));
  }

  private async publish(jobId: string, endpoints: EndpointInit[]): Promise<void> {
    const hosts = [...this.jobs.liveRanksByHost(jobId).keys()];
    this.c.event('job.endpoints', `job ${jobId}: endpoint table of ${endpoints.length} ranks published to ${hosts.join(',')}`, { jobId });
    this.tablesInFlight.set(jobId, (this.tablesInFlight.get(jobId) ?? 0) + 1);
    try {
      await Promise.all(
        hosts.map((host) =>
          this.c.requestAgent(host, { endpoint_table: { job_id: jobId, endpoints } }).then(
            () => this.awaitNoMore(jobId, host),
            (err) => this.tableNotHanded(jobId, host, err),
          ),
        ),
      );
    } finally {
      const left = this.tablesInFlight.get(jobId)! - 1;
      if (left > 0) this.tablesInFlight.set(jobId, left);
      else this.tablesInFlight.delete(jobId);
    }
  }

  /**
   * A host that cannot take the table fails the job: its ranks would wait forever. Not when it is this
   * coordinator that stops: the next one hands the table to the host's agent as it tells the ranks'
   * endpoints again (republishTo). Nor when the host's agent went down or was replaced: its ranks, still
   * waiting, say hello again to the agent that comes next, which tells their endpoints again; a host that
   * stays down fails the job at the end of its rejoin grace (onHostDown), as for any other step.
   */
  private tableNotHanded(jobId: string, host: string, err: unknown): void {
    if (this.jobs.isShuttingDown()) return;
    if (err instanceof FerryError && err.code === ErrorCode.HOST_DOWN) {
      this.c.event('job.endpoints', `job ${jobId}: host ${host} did not take the endpoint table (${errorMessage(err)}); its ranks get it when they say hello to its next agent`, { jobId, host });
      return;
    }
    this.jobs.failRunningJob(jobId, `could not hand the endpoint table to host ${host}: ${errorMessage(err)}`);
  }
}

/** "ADDR:PORT" as the catalog keeps a rank's endpoint; undefined when it has none. */
function parseEndpoint(endpoint: string): { address: string; port: number } | undefined {
  const m = /^(.*):(\d+)$/.exec(endpoint);
  return m ? { address: m[1]!, port: Number(m[2]) } : undefined;
}
