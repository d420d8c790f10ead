// The image transfer channel (proto/images.proto, ImageTransferMessage): its
// codec and limits, shared by ImageServer and the fetcher.
import type { ImageTransferMessage, ImageTransferMessageInit } from '../gen/proto.js';
import { Codec } from '../protocol/codec.js';

export const imageTransferCodec = new Codec<ImageTransferMessage, ImageTransferMessageInit>('ferry.v1.ImageTransferMessage');

/** Default size of one chunk of a file on the wire. */
export const IMAGE_CHUNK_BYTES = 1024 * 1024;
/** The largest chunk a server sends, whatever a fetcher asks for. */
export const IMAGE_MAX_CHUNK_BYTES = 16 * 1024 * 1024;
/** Chunk CRCs asked for in one ImageChunkCrcsRequest at most (256 MiB of 1 MiB chunks: each answer stays well within a request timeout). */
export const IMAGE_CRCS_MAX_CHUNKS = 256;
/** Requests are small; the server's socket drops a peer that sends more. */
export const IMAGE_REQUEST_MAX_BYTES = 64 * 1024;
/** Room for the envelope in front of a chunk. */
export const IMAGE_REPLY_OVERHEAD_BYTES = 64 * 1024;
