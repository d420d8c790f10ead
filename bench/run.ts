// `npm run bench`: every benchmark, each printing ratios against a reference
// measured in the same run.
import { runControlPlaneBenchmark } from './control-plane-round.js';

const only = process.argv[2];
if (!only || only === 'control-plane') await runControlPlaneBenchmark();
process.exit(0);
