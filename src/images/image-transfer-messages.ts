// What the agent and its image transfer process (image-transfer-process.ts,
// image-transfer-worker.ts) say to each other over their IPC channel. Plain
// objects (Node's structured clone): the channel never leaves the host, and
// both ends are the same build.
import type { ClusterKey } from '../transport/cluster-key.js';
import type { FetchImageOptions, FetchImageResult } from './image-fetcher.js';
import type { ReceiveWarmup } from './receive-warmup.js';

/** How a transfer process's warm-up went: `skipped` without the malloc tuning (the memory would not stay). */
export interface TransferWarmup extends ReceiveWarmup {
  error?: string;
  skipped?: boolean;
}

/** A fetch as the agent asks for it: everything but the callbacks and the key (the process has its own). */
export type TransferFetchOptions = Omit<FetchImageOptions, 'onProgress' | 'key'>;

export interface TransferError {
  code: number;
  message: string;
}

export type ToTransferProcess =
  | { kind: 'start'; listen: string; imagesRoot: string; key: ClusterKey | null }
  | { kind: 'fetch'; id: number; options: TransferFetchOptions }
  | { kind: 'stop' };

export type FromTransferProcess =
  | { kind: 'started'; address: string }
  /** After 'started': how the warm-up went (receive-warmup.ts). */
  | ({ kind: 'warmed' } & TransferWarmup)
  | { kind: 'start-failed'; error: TransferError }
  | { kind: 'fetched'; id: number; result: FetchImageResult }
  | { kind: 'fetch-failed'; id: number; error: TransferError }
  | { kind: 'stopped' };
