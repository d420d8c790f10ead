export * from './manifest.js';
export * from './image-server.js';
export * from './image-fetcher.js';
export * from './image-copy.js';
export * from './image-paths.js';
export * from './image-errors.js';
export * from './growing-file-hasher.js';
export * from './image-store-id.js';
