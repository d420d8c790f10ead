// A RoundRequest as the agent decodes it (every field present), for tests that
// drive LocalRankSteps directly: the step's own fields over neutral defaults.
import type { RoundRequest, RoundStep } from '../../src/gen/proto.js';

export function roundRequest(step: RoundStep, over: Partial<RoundRequest> & Pick<RoundRequest, 'job_id' | 'epoch'>): RoundRequest {
  return {
    step,
    ranks: [],
    dump_ranks: [],
    sources: [],
    world_size: 1,
    image_set: String(over.epoch),
    transient: false,
    roll_back_files: false,
    appended_sizes: [],
    store_separately: false,
    leave_stopped: false,
    ...over,
  };
}
