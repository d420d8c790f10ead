// Simulated agents for the control-plane benchmark: N DEALER sockets in one
// process (apart from the coordinator's, so its CPU can be measured alone),
// each registering as a host with 16 slots, heartbeating, "starting" ranks
// at once and acknowledging every round for all of its ranks.
//   node simulated-agents.js COORDINATOR_ADDRESS AGENTS CPUS_PER_AGENT
import * as zmq from 'zeromq';
import { randomBytes } from 'node:crypto';
import type { AgentMessage, AgentMessageInit } from '../src/gen/proto.js';
import { agentMessageCodec, coordinatorInboundCodec, OK_STATUS } from '../src/protocol/messages.js';
import { PROTOCOL_VERSION } from '../src/protocol/version.js';

const [address, agentsArg, cpusArg] = process.argv.slice(2);
const AGENTS = Number(agentsArg);
const CPUS = Number(cpusArg);

class SimulatedAgent {
  private readonly sock = new zmq.Dealer({ linger: 0, sendHighWaterMark: 0, receiveHighWaterMark: 0 });
  private nextId = 1;
  private sending: Promise<unknown> = Promise.resolve();
  private readonly ranks = new Set<string>();

  constructor(private readonly name: string) {
    this.sock.connect(address);
  }

  send(m: AgentMessageInit): void {
    const frame = coordinatorInboundCodec.encode({ agent: { version: PROTOCOL_VERSION, ...m } });
    this.sending = this.sending.then(() => this.sock.send(frame));
  }

  async run(): Promise<void> {
    this.send({ request_id: this.nextId++, register: { host: this.name, address: '127.0.0.1', cpus: CPUS, agent_instance: randomBytes(8).toString('hex') } });
    for await (const [frame] of this.sock) this.onMessage(agentMessageCodec.decode(frame));
  }

  heartbeat(): void {
    this.send({ request_id: this.nextId++, heartbeat: { sent_ms: Date.now(), running_ranks: this.ranks.size } });
  }

  private onMessage(m: AgentMessage): void {
    if (m.reply_to) return; // register / heartbeat answers
    const reply = (body: AgentMessageInit) => this.send({ reply_to: m.request_id, status: OK_STATUS, ...body });
    if (m.body === 'start_ranks') {
      const req = m.start_ranks!;
      const started = req.ranks.map((r) => {
        this.ranks.add(`${req.job_id}/${r.rank}`);
        return { job_id: req.job_id, rank: r.rank, pid: 100_000 + r.rank, endpoint: '', started_ms: Date.now() };
      });
      reply({ start_ranks_reply: { started } });
    } else if (m.body === 'round') {
      const req = m.round!;
      reply({ round_reply: { job_id: req.job_id, epoch: req.epoch, step_done: req.step, failed: [], acknowledged: req.ranks.length } });
    } else if (m.body === 'signal_job') {
      reply({ ack: {} });
    }
  }
}

const agents = Array.from({ length: AGENTS }, (_, i) => new SimulatedAgent(`sim${String(i).padStart(3, '0')}`));
for (const a of agents) void a.run();
const interval = Number(process.env.SIM_HEARTBEAT_MS ?? 100);
setInterval(() => agents.forEach((a) => a.heartbeat()), interval);
process.on('SIGTERM', () => process.exit(0));
