// Tests use the same local cluster as the demo and the benchmarks.
export * from '../../src/local-cluster/local-cluster.js';
