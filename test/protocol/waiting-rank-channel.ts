// A stand-in for an agent's rank channel whose ranks say hello and wait for
// their endpoint table, for protocol tests of how the coordinator gathers and
// hands out that table.
import type { RankChannelServer } from '../../src/agent/rank-channel.js';

/**
 * A rank channel whose ranks say hello through `hello` and wait until a table is handed to them; the
 * first table handed here is lost when `loseFirst` (its host never got it from the dead coordinator).
 */
export function waitingChannel(loseFirst: boolean) {
  const handlers = new Map<string, (info: unknown) => void>();
  const waiting = new Map<number, { jobId: string; rank: number; size: number; pid: number; listenPort: number; runtimeVersion: string; resumedEpoch: number; repeated: boolean }>();
  const tables: string[] = [];
  let lose = loseFirst;
  const channel = {
    on: (event: string, handler: (info: unknown) => void) => handlers.set(event, handler),
    unanswered: () => ({ hellos: [...waiting.values()], attaches: [] }),
    forgetRank: (_jobId: string, rank: number) => waiting.delete(rank),
    sendEndpoints: (jobId: string, eps: { rank: number; port: number }[]) => {
      if (lose) {
        lose = false;
        return [];
      }
      tables.push(`${jobId} ${eps.map((e) => e.port).join(',')}`);
      const answered = [...waiting.keys()];
      waiting.clear();
      return answered;
    },
  } as unknown as RankChannelServer;
  const hello = (rank: number, port: number, repeated = false) => {
    const info = { jobId: 'k', rank, size: 2, pid: 100 + rank, listenPort: port, runtimeVersion: 'test', resumedEpoch: 0, repeated };
    waiting.set(rank, info);
    handlers.get('hello')!(info);
  };
  return { channel, hello, tables, waiting };
}
