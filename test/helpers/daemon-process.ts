export * from '../../src/local-cluster/daemon-process.js';
