// Answers operator requests (ferry status / hosts / jobs / events / run).
import {
  ErrorCode,
  HostState,
  type HostInfoInit,
  type OperatorReplyInit,
  type OperatorRequest,
} from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';
import type { PeerId } from '../transport/transport.js';
import type { Coordinator } from './coordinator.js';
import type { HostSession } from './host-registry.js';
import { forgetHost } from './host-forgetting.js';
import { drainHost, undrainHost } from './host-draining.js';
import type { MoveProgressFn } from './checkpoint/move-service.js';
import { LaunchedJobs } from './launched-jobs.js';

export const EVENTS_DEFAULT_LIMIT = 100;
export const EVENTS_MAX_LIMIT = 10_000;
export const FERRY_VERSION = '0.1.0';

export class OperatorService {
  /** Jobs whose ranks an existing launcher started (ferry rank-exec). */
  private readonly launched: LaunchedJobs;

  constructor(private readonly c: Coordinator) {
    this.launched = new LaunchedJobs(c);
  }

  /** The reply body for a request, or undefined when the reply comes later (a followed job). */
  async handle(peer: PeerId, req: OperatorRequest): Promise<OperatorReplyInit | undefined> {
    switch (req.body) {
      case 'cluster_status': {
        const hosts = this.c.hosts.all();
        const jobs = this.c.catalog.listJobs({ all: false });
        return {
          cluster_status: {
            coordinator_instance: this.c.instance,
            started_ms: this.c.startedMs,
            hosts_up: hosts.filter((h) => h.state === 'up').length,
            hosts_down: hosts.filter((h) => h.state === 'down').length,
            hosts_unknown: hosts.filter((h) => h.state === 'unknown').length,
            jobs_running: jobs.filter((j) => j.state === 'running' || j.state === 'pending').length,
            ranks_running: hosts.reduce((n, h) => n + (h.state === 'up' ? h.runningRanks : 0), 0),
            listen: this.c.config.listen,
            version: FERRY_VERSION,
            keep_epochs: this.c.config.keepEpochs,
            image_replicas: this.c.config.imageReplicas,
            cluster_key: this.c.config.clusterKey,
          },
        };
      }
      case 'hosts':
        return { hosts: { hosts: this.c.hosts.all().map(hostInfo) } };
      case 'jobs':
        return { jobs: { jobs: this.c.catalog.listJobs({ all: req.jobs?.all ?? false }).map((j) => this.c.jobs.toInfo(j)) } };
      case 'job':
        return { job: { job: this.c.jobs.jobInfo(req.job?.job_id ?? '') } };
      case 'events': {
        const q = req.events!;
        // A deleted job's events stay: they are what is left of it.
        if (q.job_id && !this.c.catalog.getJob(q.job_id) && this.c.catalog.listEvents({ jobId: q.job_id, limit: 1 }).length === 0) {
          throw new FerryError(ErrorCode.UNKNOWN_JOB, `no job "${q.job_id}" in the catalog`);
        }
        const limit = Math.min(q.limit || EVENTS_DEFAULT_LIMIT, EVENTS_MAX_LIMIT);
        const rows = this.c.catalog.listEvents({ afterSeq: q.after_seq, limit, newest: q.newest, ...(q.job_id ? { jobId: q.job_id } : {}) });
        return {
          events: {
            events: rows.map((e) => ({ seq: e.seq, time_ms: e.timeMs, kind: e.kind, host: e.host ?? '', job_id: e.jobId ?? '', message: e.message })),
          },
        };
      }
      case 'submit_job': {
        const continued = !!req.submit_job!.job_id && this.c.catalog.getJob(req.submit_job!.job_id) !== undefined;
        const job = await this.c.jobs.submit(peer, req.request_id, req.submit_job!);
        if (req.submit_job!.follow) {
          // The final reply comes when the job ends; this one says it started.
          this.c.sendOperator(peer, { reply_to: req.request_id, status: { ok: true }, final: false, submit_job: { job, continued } });
          return undefined;
        }
        return { submit_job: { job, continued } };
      }
      case 'output_received':
        this.c.jobs.output.outputReceived(req.output_received?.job_id ?? '', peer, Number(req.output_received?.bytes ?? 0));
        return undefined;
      case 'follow_job': {
        const jobId = req.follow_job?.job_id ?? '';
        // First a notice with the job as it stands (tells the follower it is heard) ...
        this.c.sendOperator(peer, { reply_to: req.request_id, status: { ok: true }, final: false, job: { job: this.c.jobs.jobInfo(jobId) } });
        // ... then its output, and a final reply when it ends.
        this.c.jobs.follow(jobId, peer, req.request_id, req.follow_job?.ranks, req.follow_job?.launcher, req.follow_job?.launcher_process ?? undefined);
        return undefined;
      }
      case 'checkpoint': {
        const req_ = req.checkpoint!;
        if (req_.set_every) {
          this.c.periodic.set(req_.job_id, req_.every_ms);
          return { job: { job: this.c.jobs.jobInfo(req_.job_id) } };
        }
        if (req_.set_auto_restarts) {
          this.c.autoRestarts.set(req_.job_id, req_.auto_restarts);
          return { job: { job: this.c.jobs.jobInfo(req_.job_id) } };
        }
        if (req_.set_hosts) {
          this.c.jobs.setOwnHosts(req_.job_id, req_.hosts);
          return { job: { job: this.c.jobs.jobInfo(req_.job_id) } };
        }
        if (req_.set_image_replicas) {
          this.c.replication.set(req_.job_id, req_.own_image_replicas ? req_.image_replicas : null);
          return { job: { job: this.c.jobs.jobInfo(req_.job_id) } };
        }
        if (req_.set_keep) {
          await this.c.retention.set(req_.job_id, req_.keep_epochs);
          return { job: { job: this.c.jobs.jobInfo(req_.job_id) } };
        }
        const reply = await this.c.checkpoints.checkpoint(req_.job_id, {
          stop: req_.stop,
          progress: (epoch, phase, elapsedMs) =>
            this.c.sendOperator(peer, {
              reply_to: req.request_id,
              status: { ok: true },
              final: false,
              checkpoint_progress: { job_id: req_.job_id, epoch, phase, elapsed_ms: elapsedMs, operation: 'checkpoint' },
            }),
        });
        return { checkpoint: reply };
      }
      case 'epochs': {
        const jobId = req.epochs?.job_id ?? '';
        if (!this.c.catalog.getJob(jobId)) throw new FerryError(ErrorCode.UNKNOWN_JOB, `no job "${jobId}" in the catalog`);
        return { epochs: { epochs: this.c.catalog.listEpochs(jobId).map((e) => this.c.checkpoints.epochInfo(jobId, e.epoch)) } };
      }
      case 'restart': {
        const r = req.restart!;
        const rankHosts = new Map(Object.entries(r.rank_hosts).map(([k, v]) => [Number(k), v]));
        const progress = this.moveProgress(peer, req.request_id, 'restart');
        return { move: await this.c.moves.restart(r.job_id, { epoch: r.epoch || undefined, hosts: r.hosts, rankHosts, progress }) };
      }
      case 'migrate': {
        const r = req.migrate!;
        return { move: await this.c.moves.migrate(r.job_id, new Map([[r.rank, r.to_host]]), this.moveProgress(peer, req.request_id, 'migrate')) };
      }
      case 'drain':
        return { move: await drainHost(this.c, req.drain?.host ?? '', req.drain?.reason ?? '', this.moveProgress(peer, req.request_id, 'drain')) };
      case 'undrain_host':
        return { undrain_host: undrainHost(this.c, req.undrain_host?.host ?? '') };
      case 'forget_host':
        return { forget_host: await forgetHost(this.c, req.forget_host?.host ?? '') };
      case 'delete_job': {
        const d = req.delete_job!;
        return { delete_job: await this.c.retention.deleteJob(d.job_id, d.force) };
      }
      case 'signal_job': {
        const s = req.signal_job!;
        await this.c.jobs.signal(s.job_id, s.signal || 'SIGTERM');
        return { job: { job: this.c.jobs.jobInfo(s.job_id) } };
      }
      case 'join_launched_rank': {
        const job = await this.launched.join(peer, req.request_id, req.join_launched_rank!);
        // Like a followed submit: this notice says the job started; its output and end follow.
        this.c.sendOperator(peer, { reply_to: req.request_id, status: { ok: true }, final: false, join_launched_rank: { job } });
        return undefined;
      }
      case 'signal_launched_job': {
        const jobId = await this.launched.signal(req.signal_launched_job!);
        return jobId ? { job: { job: this.c.jobs.jobInfo(jobId) } } : {};
      }
      default:
        throw new FerryError(ErrorCode.BAD_REQUEST, req.body ? `unsupported operator request ${req.body}` : 'operator request has no body');
    }
  }

  /** Progress notifications of a restart, migration or drain, to the operator who asked. */
  private moveProgress(peer: PeerId, requestId: number, operation: string): MoveProgressFn {
    return (p) =>
      this.c.sendOperator(peer, {
        reply_to: requestId,
        status: { ok: true },
        final: false,
        checkpoint_progress: { job_id: p.jobId, phase: p.phase, elapsed_ms: p.elapsedMs, operation, bytes_total: p.bytesTotal, bytes_done: p.bytesDone },
      });
  }
}

function hostInfo(h: HostSession): HostInfoInit {
  return {
    name: h.name,
    address: h.address,
    state: h.state === 'up' ? HostState.HOST_UP : h.state === 'down' ? HostState.HOST_DOWN : HostState.HOST_STATE_UNKNOWN,
    cpus: h.cpus,
    criu_version: h.criuVersion,
    criu_check_ok: h.criuCheckOk,
    criu_check_detail: h.criuCheckDetail,
    registered_ms: h.registeredMs,
    last_heartbeat_ms: h.lastHeardMs,
    running_ranks: h.runningRanks,
    drained_ms: h.drained?.atMs ?? 0,
    drain_reason: h.drained?.reason ?? '',
  };
}
