// A RoundRequest as the agent decodes it (every field present), for tests that
// drive LocalRankSteps directly: the step's own fields over neutral defaults.
import type { ImageSource, RoundRequest, RoundStep } from '../../src/gen/proto.js';

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

/** An ImageSource as the agent decodes it: where one rank's image is, over neutral defaults. */
export function imageSource(over: Partial<ImageSource> & Pick<ImageSource, 'rank' | 'epoch' | 'host'>): ImageSource {
  return { server: '', location: '', manifest_sha256: '', image_store: '', output_source: '', ...over };
}
