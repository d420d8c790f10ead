// `npm run bench`: every benchmark, each printing ratios against a reference
// measured in the same run.
import { runControlPlaneBenchmark } from './control-plane-round.js';
import { runRuntimePingpongBenchmark } from './runtime-pingpong.js';
import { runCheckpointCostBenchmark } from './checkpoint-cost.js';
import { runReplicaCostBenchmark } from './replica-cost.js';

const only = process.argv[2];
if (!only || only === 'control-plane') await runControlPlaneBenchmark();
if (!only || only === 'runtime-pingpong') await runRuntimePingpongBenchmark();
if (!only || only === 'checkpoint-cost') await runCheckpointCostBenchmark();
if (!only || only === 'replica-cost') await runReplicaCostBenchmark();
process.exit(0);
