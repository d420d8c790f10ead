// Serves the image directories under an agent's images root to other agents,
// on a ZeroMQ ROUTER: the manifest of a rank's image, then its files in chunks.
// When a fetched file's sha256 fails, the fetcher asks for the CRC-32 of each
// chunk of the file, to find a chunk damaged on the way, and for that chunk
// again with its CRC (computed only then). Only directories with a manifest
// (complete images) are served, only files the manifest lists, and only under
// the root: a name with '/', '..' or an absolute path is refused. Chunks are
// read into buffers used again once the fetcher has them (image-chunk-buffers.ts).
import { type FileHandle, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import * as zmq from 'zeromq';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { tracer } from '../common/trace.js';
import type { ImageDirRef, ImageTransferMessage, ImageTransferMessageInit } from '../gen/proto.js';
import { OK_STATUS, errorStatus } from '../protocol/messages.js';
import { PROTOCOL_VERSION, checkPeerVersion } from '../protocol/version.js';
import { type ClusterKey, keyOrProcessKey } from '../transport/cluster-key.js';
import { curveServerClosed, curveServerOptions } from '../transport/curve-security.js';
import { Outbox } from '../transport/outbox.js';
import { ImageChunkBuffers } from './image-chunk-buffers.js';
import { IMAGE_BAD_REQUEST, IMAGE_CORRUPT, IMAGE_IO, IMAGE_MISSING } from './image-errors.js';
import { IMAGE_CHUNK_BYTES, IMAGE_CRCS_MAX_CHUNKS, IMAGE_MAX_CHUNK_BYTES, IMAGE_REQUEST_MAX_BYTES, imageTransferCodec } from './image-messages.js';
import { MANIFEST_FILE_NAME, imageLabel, rankImageDir, requirePlainName } from './image-paths.js';
import { decodeManifestFile, type Manifest, type ManifestFile } from './manifest.js';

const trace = tracer('images');

/** Manifests kept in memory to check chunk requests without rereading them. */
const MANIFEST_CACHE_ENTRIES = 256;
/**
 * Replies queued for one peer at most; ZeroMQ drops those past it (its
 * default is 1,000). A fetcher has at most 32 chunk requests in flight, and a
 * queued chunk reply holds its buffer: a peer that reads nothing must not
 * hold the server's memory.
 */
export const IMAGE_SERVER_SEND_HWM = 256;

export interface ImageServerOptions {
  /** The cluster key (null: none); default the process's (cluster-key.ts). */
  key?: ClusterKey | null;
  /**
   * Test-only fault injection: called with each chunk after its CRC (if
   * asked for) was computed and before it is sent; may change the bytes in place.
   */
  tamperChunk?: (name: string, offset: number, data: Buffer) => void;
}

export class ImageServer {
  private readonly outbox: Outbox<Buffer[]>;
  private readonly manifests = new Map<string, Manifest>();
  /** Chunk buffers, lent to a fetcher until it says it has the chunk. */
  readonly chunkBuffers = new ImageChunkBuffers(IMAGE_CHUNK_BYTES);
  private closed = false;
  private bytesServedTotal = 0;
  /** The bound address, with the real port when bound to port 0 (kept: it outlives close()). */
  readonly address: string;

  private constructor(
    private readonly router: zmq.Router,
    readonly root: string,
    private readonly options: ImageServerOptions,
  ) {
    this.outbox = new Outbox((frames) => this.router.send(frames));
    this.address = router.lastEndpoint ?? '';
  }

  /** Binds a ROUTER (e.g. tcp://HOST_ADDR:0) serving the image dirs under `root`. */
  static async bind(address: string, root: string, options: ImageServerOptions = {}): Promise<ImageServer> {
    const key = keyOrProcessKey(options.key);
    const router = new zmq.Router({
      linger: 0,
      maxMessageSize: IMAGE_REQUEST_MAX_BYTES,
      sendHighWaterMark: IMAGE_SERVER_SEND_HWM,
      ...(await curveServerOptions(key)),
    });
    try {
      await router.bind(address);
    } catch (err) {
      router.close();
      curveServerClosed(key);
      throw new FerryError(IMAGE_IO, `image server cannot listen on ${address}: ${errorMessage(err)}`);
    }
    const server = new ImageServer(router, root, { ...options, key });
    void server.receiveLoop();
    trace(`image server on ${server.address} serving ${root}`);
    return server;
  }

  /** Chunk bytes sent since bind (for tests and statistics). */
  get bytesServed(): number {
    return this.bytesServedTotal;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.outbox.close();
    this.router.close();
    this.chunkBuffers.close();
    curveServerClosed(this.options.key ?? null);
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const [peer, frame] of this.router) {
        if (!peer || !frame) continue;
        void this.handle(peer, frame);
      }
    } catch (err) {
      if (!this.closed) trace(`image server receive loop ended: ${errorMessage(err)}`);
    }
  }

  private async handle(peer: Buffer, frame: Buffer): Promise<void> {
    let request: ImageTransferMessage;
    try {
      request = imageTransferCodec.decode(frame);
    } catch (err) {
      trace(`undecodable request: ${errorMessage(err)}`);
      return; // no request id to answer
    }
    const fetcher = peer.toString('hex');
    this.chunkBuffers.receive(fetcher, request.received.map(Number));
    const reply = (message: ImageTransferMessageInit, data?: Buffer) => {
      if (this.closed) return;
      const envelope = Buffer.from(
        imageTransferCodec.encode({ version: PROTOCOL_VERSION, reply_to: request.request_id, ...message }),
      );
      this.outbox.push(data ? [peer, envelope, data] : [peer, envelope]);
    };
    try {
      checkPeerVersion(request.version, 'image fetcher');
      if (request.manifest_request) {
        const bytes = await this.readManifestBytes(request.manifest_request.dir);
        reply({ status: OK_STATUS, manifest_reply: { manifest_file: bytes } });
      } else if (request.chunk_request) {
        const c = request.chunk_request;
        const { manifest, dir, file } = await this.fileOf(c.dir, c.name);
        const offset = Number(c.offset);
        if (offset > file.size) {
          throw new FerryError(IMAGE_BAD_REQUEST, `${imageLabel(manifest)}: ${c.name}: offset ${offset} past the end (${file.size} bytes)`);
        }
        const length = Math.min(c.length, IMAGE_MAX_CHUNK_BYTES, file.size - offset);
        const requestId = Number(request.request_id);
        const buffer = this.chunkBuffers.lend(fetcher, requestId, length);
        let data: Buffer;
        try {
          data = await readChunk(join(dir, c.name), offset, buffer);
          if (data.length !== length) {
            throw new FerryError(IMAGE_CORRUPT, `${imageLabel(manifest)}: ${c.name}: shorter on the server than its manifest says`);
          }
        } catch (err) {
          this.chunkBuffers.unsent(fetcher, requestId);
          throw err;
        }
        const crc = c.with_crc32 ? crc32(data) : 0;
        this.options.tamperChunk?.(c.name, offset, data);
        this.bytesServedTotal += length;
        reply({ status: OK_STATUS, chunk_reply: { name: c.name, offset, length, crc32: crc } }, data);
      } else if (request.chunk_crcs_request) {
        const c = request.chunk_crcs_request;
        const { manifest, dir, file } = await this.fileOf(c.dir, c.name);
        const what = `${imageLabel(manifest)}: ${c.name}`;
        const first = Number(c.first_chunk);
        if (c.chunk_bytes < 1 || c.chunk_bytes > IMAGE_MAX_CHUNK_BYTES) {
          throw new FerryError(IMAGE_BAD_REQUEST, `${what}: chunks of ${c.chunk_bytes} bytes (1 to ${IMAGE_MAX_CHUNK_BYTES})`);
        }
        if (c.chunks < 1 || c.chunks > IMAGE_CRCS_MAX_CHUNKS || (first + c.chunks - 1) * c.chunk_bytes >= file.size) {
          throw new FerryError(IMAGE_BAD_REQUEST, `${what}: CRCs of ${c.chunks} chunks from chunk ${first} (1 to ${IMAGE_CRCS_MAX_CHUNKS}, within its ${file.size} bytes)`);
        }
        const crcs = await chunkCrcs(join(dir, c.name), file.size, c.chunk_bytes, first, c.chunks, what);
        reply({ status: OK_STATUS, chunk_crcs_reply: { crc32: crcs } });
      } else if (request.receipts_request) {
        reply({ status: OK_STATUS });
      } else {
        throw new FerryError(IMAGE_BAD_REQUEST, 'request has no body this server knows');
      }
    } catch (err) {
      trace(`request ${request.request_id} refused: ${errorMessage(err)}`);
      reply({ status: errorStatus(err) });
    }
  }

  private async readManifestBytes(ref: ImageDirRef | null | undefined): Promise<Buffer> {
    const dir = this.dirOf(ref);
    const path = join(dir, MANIFEST_FILE_NAME);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new FerryError(IMAGE_MISSING, `${imageLabel({ epoch: Number(ref!.epoch), rank: ref!.rank })} of job ${ref!.job_id}: no complete image here (${path} does not exist)`);
      }
      throw new FerryError(IMAGE_IO, `${path}: ${errorMessage(err)}`);
    }
    this.remember(dir, decodeManifestFile(bytes, path));
    return bytes;
  }

  private async manifestOf(ref: ImageDirRef | null | undefined): Promise<{ manifest: Manifest; dir: string }> {
    const dir = this.dirOf(ref);
    const cached = this.manifests.get(dir);
    if (cached) return { manifest: cached, dir };
    await this.readManifestBytes(ref);
    return { manifest: this.manifests.get(dir)!, dir };
  }

  /** A file the manifest of `ref` lists, with that manifest and its directory. */
  private async fileOf(ref: ImageDirRef | null | undefined, name: string): Promise<{ manifest: Manifest; dir: string; file: ManifestFile }> {
    const { manifest, dir } = await this.manifestOf(ref);
    requirePlainName(name, 'file name');
    const file = manifest.files.find((f) => f.name === name);
    if (!file) throw new FerryError(IMAGE_BAD_REQUEST, `${imageLabel(manifest)}: ${name}: not in the manifest`);
    return { manifest, dir, file };
  }

  private dirOf(ref: ImageDirRef | null | undefined): string {
    if (!ref) throw new FerryError(IMAGE_BAD_REQUEST, 'request names no image directory');
    return rankImageDir(this.root, ref.job_id, Number(ref.epoch), ref.rank);
  }

  private remember(dir: string, manifest: Manifest): void {
    this.manifests.delete(dir);
    this.manifests.set(dir, manifest);
    if (this.manifests.size > MANIFEST_CACHE_ENTRIES) this.manifests.delete(this.manifests.keys().next().value!);
  }
}

/** Reads up to buf.length bytes at `offset` into `buf`; returns the part filled (short at a premature end of file). */
async function readChunk(path: string, offset: number, buf: Buffer): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    return await readAt(fh, offset, buf);
  } finally {
    await fh.close();
  }
}

async function readAt(fh: FileHandle, offset: number, buf: Buffer): Promise<Buffer> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, offset + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/**
 * The CRC-32 of `count` chunks of `chunkBytes` from chunk `first` of the `size`
 * bytes of `path` (ImageChunkCrcsRequest); `what` names the file in errors.
 */
async function chunkCrcs(path: string, size: number, chunkBytes: number, first: number, count: number, what: string): Promise<number[]> {
  const crcs: number[] = [];
  const buf = Buffer.allocUnsafe(chunkBytes);
  const fh = await open(path, 'r');
  try {
    for (let i = first; i < first + count; i++) {
      const offset = i * chunkBytes;
      const length = Math.min(chunkBytes, size - offset);
      const data = await readAt(fh, offset, buf.subarray(0, length));
      if (data.length !== length) throw new FerryError(IMAGE_CORRUPT, `${what}: shorter on the server than its manifest says`);
      crcs.push(crc32(data));
    }
  } finally {
    await fh.close();
  }
  return crcs;
}
