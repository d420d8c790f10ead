export * from './host-network.js';
export * from './stale-sweeper.js';
export { assertNamespaceHostsUsable } from './ip-command.js';
