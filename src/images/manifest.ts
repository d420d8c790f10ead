// The manifest of a rank's image directory (manifest.ferry): who dumped what,
// and the size and sha256 of every file. Format in proto/images.proto:
//   "FERRYMAN" | u32 LE format version | u32 LE body length | body | sha256(body)
// Written last (temp name, fsync, rename, fsync of the directory): its presence
// means the directory is complete. readManifest refuses a wrong magic, a newer
// format version, a damaged body; verifyImageDir checks every file against it.
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import type { ImageManifest, ImageManifestInit } from '../gen/proto.js';
import { Codec } from '../protocol/codec.js';
import { tracer } from '../common/trace.js';
import { type FileDigest, fsyncDir, fsyncFile, hashFile, writeFileDurably } from './file-durability.js';
import { IMAGE_CORRUPT, IMAGE_IO, IMAGE_MISSING } from './image-errors.js';
import { MANIFEST_FILE_NAME, PART_SUFFIX, imageLabel, isPlainName } from './image-paths.js';

const trace = tracer('images');

export const MANIFEST_MAGIC = Buffer.from('FERRYMAN', 'ascii');
/** Bump when the on-disk layout or the meaning of a field changes; readers refuse newer ones. */
export const MANIFEST_FORMAT_VERSION = 1;
const HEADER_BYTES = MANIFEST_MAGIC.length + 4 + 4;
const TRAILER_BYTES = 32;
/** A manifest lists tens of files: anything this large is damage, not a manifest. */
const MANIFEST_MAX_BODY_BYTES = 16 * 1024 * 1024;

const manifestCodec = new Codec<ImageManifest, ImageManifestInit>('ferry.v1.ImageManifest');

export interface ManifestFile {
  name: string;
  size: number;
  sha256: string; // hex
}

export interface ManifestMeta {
  jobId: string;
  epoch: number;
  rank: number;
  host: string;
  criuVersion: string;
  /** Defaults to now. */
  createdMs?: number;
}

export interface Manifest {
  formatVersion: number;
  jobId: string;
  epoch: number;
  rank: number;
  host: string;
  createdMs: number;
  criuVersion: string;
  files: ManifestFile[];
  totalBytes: number;
  /** sha256 (hex) of the manifest.ferry bytes: one value that pins the whole image. */
  manifestSha256: string;
}

/** Encodes a manifest into the bytes of manifest.ferry. */
export function encodeManifestFile(m: Omit<Manifest, 'formatVersion' | 'manifestSha256' | 'totalBytes'>): Buffer {
  const files = [...m.files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const body = Buffer.from(
    manifestCodec.encode({
      job_id: m.jobId,
      epoch: m.epoch,
      rank: m.rank,
      host: m.host,
      created_ms: m.createdMs,
      criu_version: m.criuVersion,
      files: files.map((f) => ({ name: f.name, size: f.size, sha256: Buffer.from(f.sha256, 'hex') })),
      total_bytes: files.reduce((sum, f) => sum + f.size, 0),
    }),
  );
  const header = Buffer.alloc(HEADER_BYTES);
  MANIFEST_MAGIC.copy(header, 0);
  header.writeUInt32LE(MANIFEST_FORMAT_VERSION, MANIFEST_MAGIC.length);
  header.writeUInt32LE(body.length, MANIFEST_MAGIC.length + 4);
  return Buffer.concat([header, body, createHash('sha256').update(body).digest()]);
}

/** Decodes the bytes of a manifest.ferry; `where` (its path or its peer) goes into every error. */
export function decodeManifestFile(bytes: Uint8Array, where: string): Manifest {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (why: string) => new FerryError(IMAGE_CORRUPT, `${where}: ${why}`);
  if (buf.length < HEADER_BYTES || !buf.subarray(0, MANIFEST_MAGIC.length).equals(MANIFEST_MAGIC)) {
    throw bad('not a Ferry image manifest (wrong magic number)');
  }
  const version = buf.readUInt32LE(MANIFEST_MAGIC.length);
  if (version > MANIFEST_FORMAT_VERSION) {
    throw bad(
      `manifest format version ${version} is newer than this Ferry reads (${MANIFEST_FORMAT_VERSION}): ` +
        'restore with the Ferry version that wrote it, or a newer one',
    );
  }
  if (version === 0) throw bad('manifest format version 0 is invalid');
  const bodyLength = buf.readUInt32LE(MANIFEST_MAGIC.length + 4);
  if (bodyLength > MANIFEST_MAX_BODY_BYTES || buf.length !== HEADER_BYTES + bodyLength + TRAILER_BYTES) {
    throw bad(`manifest is truncated or has trailing bytes (${buf.length} bytes, body of ${bodyLength})`);
  }
  const body = buf.subarray(HEADER_BYTES, HEADER_BYTES + bodyLength);
  if (!createHash('sha256').update(body).digest().equals(buf.subarray(HEADER_BYTES + bodyLength))) {
    throw bad('manifest is damaged (its own sha256 does not match)');
  }
  let decoded: ImageManifest;
  try {
    decoded = manifestCodec.decode(body);
  } catch (err) {
    throw bad(errorMessage(err));
  }
  const files: ManifestFile[] = decoded.files.map((f) => {
    if (!isPlainName(f.name) || f.name === MANIFEST_FILE_NAME) throw bad(`manifest lists a bad file name '${f.name}'`);
    if (f.sha256.length !== 32) throw bad(`manifest entry ${f.name} has no sha256`);
    return { name: f.name, size: Number(f.size), sha256: Buffer.from(f.sha256).toString('hex') };
  });
  return {
    formatVersion: version,
    jobId: decoded.job_id,
    epoch: Number(decoded.epoch),
    rank: decoded.rank,
    host: decoded.host,
    createdMs: Number(decoded.created_ms),
    criuVersion: decoded.criu_version,
    files,
    totalBytes: files.reduce((sum, f) => sum + f.size, 0),
    manifestSha256: createHash('sha256').update(buf).digest('hex'),
  };
}

/** The image files of a directory: regular files, minus the manifest, temp and .part files. */
async function listImageFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const name = entry.name;
    if (name === MANIFEST_FILE_NAME || name.startsWith('.') || name.endsWith(PART_SUFFIX)) continue;
    if (!entry.isFile()) {
      throw new FerryError(IMAGE_CORRUPT, `${join(dir, name)}: not a regular file; an image directory holds only files`);
    }
    if (!isPlainName(name)) throw new FerryError(IMAGE_CORRUPT, `${join(dir, name)}: unexpected file name in an image directory`);
    names.push(name);
  }
  return names.sort();
}

/** Files of one image directory hashed and fsynced at once (small ones mostly wait on fsync). */
export const MANIFEST_FILE_CONCURRENCY = 8;

export interface WriteManifestOptions {
  /** Digests already taken while the files were written (GrowingFileHasher); used when the size still matches. */
  known?: ReadonlyMap<string, FileDigest>;
  /**
   * false: hash only, no fsync of the files, the directory or the manifest
   * (images that only travel to another host, which fsyncs its own copy).
   * Default true.
   */
  durable?: boolean;
}

/**
 * Hashes every file of a freshly dumped image directory (or takes its digest
 * from `known`), fsyncs each (several at once), fsyncs the directory once for
 * the files' names, then writes manifest.ferry durably. Returns the manifest.
 */
export async function writeManifest(dir: string, meta: ManifestMeta, options: WriteManifestOptions = {}): Promise<Manifest> {
  const started = performance.now();
  const durable = options.durable ?? true;
  try {
    const names = await listImageFiles(dir);
    const files: ManifestFile[] = new Array(names.length);
    let next = 0;
    let reused = 0;
    const worker = async () => {
      for (let i = next++; i < names.length; i = next++) {
        const name = names[i]!;
        const path = join(dir, name);
        const known = options.known?.get(name);
        let digest: FileDigest;
        if (known && (await lstat(path)).size === known.size) {
          if (durable) await fsyncFile(path);
          digest = known;
          reused++;
        } else {
          digest = await hashFile(path, { fsync: durable });
        }
        files[i] = { name, size: digest.size, sha256: digest.sha256.toString('hex') };
      }
    };
    await Promise.all(Array.from({ length: Math.min(MANIFEST_FILE_CONCURRENCY, names.length) }, worker));
    const bytes = encodeManifestFile({ ...meta, createdMs: meta.createdMs ?? Date.now(), files });
    if (durable) {
      await fsyncDir(dir); // the image files' own names
      await writeFileDurably(dir, MANIFEST_FILE_NAME, bytes);
    } else {
      await writeFile(join(dir, MANIFEST_FILE_NAME), bytes);
    }
    const manifest = decodeManifestFile(bytes, join(dir, MANIFEST_FILE_NAME));
    trace(
      `manifest of ${imageLabel(meta)}: ${files.length} files (${reused} hashed while written), ${manifest.totalBytes} bytes, ` +
        `${(performance.now() - started).toFixed(0)} ms`,
    );
    return manifest;
  } catch (err) {
    if (err instanceof FerryError) throw err;
    throw new FerryError(IMAGE_IO, `cannot write the manifest of ${imageLabel(meta)} in ${dir}: ${errorMessage(err)}`);
  }
}

/** Reads DIR/manifest.ferry; a missing, foreign, newer or damaged manifest is a clear error naming the file. */
export async function readManifest(dir: string): Promise<Manifest> {
  const path = join(dir, MANIFEST_FILE_NAME);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new FerryError(IMAGE_MISSING, `${path}: no manifest: the image is incomplete (its dump or transfer did not finish) or was removed`);
    }
    throw new FerryError(IMAGE_IO, `${path}: ${errorMessage(err)}`);
  }
  return decodeManifestFile(bytes, path);
}

/**
 * Checks every file of `manifest` in `dir`: present, same size, same sha256.
 * Sizes are checked for all files first (cheap), then the hashes. Throws one
 * FerryError listing every problem, each as "epoch E rank R: FILE: what".
 */
export async function verifyImageDir(dir: string, manifest: Manifest): Promise<void> {
  const label = imageLabel(manifest);
  const problems: string[] = [];
  const sizeOk: ManifestFile[] = [];
  for (const f of manifest.files) {
    try {
      const st = await lstat(join(dir, f.name));
      if (!st.isFile()) problems.push(`${label}: ${f.name}: not a regular file`);
      else if (st.size !== f.size) problems.push(`${label}: ${f.name}: size mismatch (manifest ${f.size} bytes, found ${st.size})`);
      else sizeOk.push(f);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') problems.push(`${label}: ${f.name}: missing`);
      else problems.push(`${label}: ${f.name}: ${errorMessage(err)}`);
    }
  }
  for (const f of sizeOk) {
    const digest = await hashFile(join(dir, f.name));
    const got = digest.sha256.toString('hex');
    if (got !== f.sha256) {
      problems.push(`${label}: ${f.name}: sha256 mismatch (manifest ${f.sha256.slice(0, 16)}..., found ${got.slice(0, 16)}...)`);
    }
  }
  if (problems.length > 0) {
    const missingOnly = problems.every((p) => p.endsWith(': missing'));
    throw new FerryError(missingOnly ? IMAGE_MISSING : IMAGE_CORRUPT, `${problems.join('; ')} (in ${dir})`);
  }
}

/**
 * Reads DIR's manifest, checks that it is the one the coordinator recorded
 * (`manifestSha256`, the sha256 of manifest.ferry; empty: not checked), then
 * every file against it. For an image read where it lies: the dumping host's
 * own copy, or a shared image directory that another host wrote.
 */
export async function verifyRecordedImage(dir: string, manifestSha256: string): Promise<Manifest> {
  const manifest = await readManifest(dir);
  if (manifestSha256 && manifest.manifestSha256 !== manifestSha256) {
    throw new FerryError(
      IMAGE_CORRUPT,
      `${imageLabel(manifest)}: ${join(dir, MANIFEST_FILE_NAME)} is manifest ${manifest.manifestSha256.slice(0, 16)}..., ` +
        `not the committed one (${manifestSha256.slice(0, 16)}...): the directory holds another image under the same name`,
    );
  }
  await verifyImageDir(dir, manifest);
  return manifest;
}
