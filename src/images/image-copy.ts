// Copies a rank's image directory from a shared image directory (e.g. an NFS
// export every host mounts) into a local one, with the same guarantees as a
// fetch from an agent: each file hashed while it is copied (one read, no second
// pass), renamed from NAME.part only when its sha256 matches the manifest,
// fsynced, and the manifest written last.
import { mkdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import PQueue from 'p-queue';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { copyAndHash, fsyncDir, writeFileDurably } from './file-durability.js';
import { IMAGE_BAD_REQUEST, IMAGE_CORRUPT, IMAGE_IO, IMAGE_MISSING } from './image-errors.js';
import { MANIFEST_FILE_NAME, PART_SUFFIX, imageLabel } from './image-paths.js';
import { decodeManifestFile, readManifest, type Manifest } from './manifest.js';

/** Files copied at the same time. */
export const IMAGE_COPY_CONCURRENCY = 2;

export interface CopyImageOptions {
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

export async function copyImageDir(fromSharedDir: string, into: string, options: CopyImageOptions = {}): Promise<Manifest> {
  const manifest = await readManifest(fromSharedDir);
  const manifestBytes = await readFile(join(fromSharedDir, MANIFEST_FILE_NAME));
  const label = imageLabel(manifest);
  await mkdir(into, { recursive: true });
  const existing = await readFile(join(into, MANIFEST_FILE_NAME)).catch(() => undefined);
  if (existing) {
    if (existing.equals(manifestBytes)) return decodeManifestFile(existing, join(into, MANIFEST_FILE_NAME));
    throw new FerryError(IMAGE_BAD_REQUEST, `${into} already holds another image than ${fromSharedDir}; remove it first`);
  }
  let done = 0;
  let failed = false;
  const queue = new PQueue({ concurrency: IMAGE_COPY_CONCURRENCY });
  const copies = manifest.files.map((f) =>
    queue.add(async () => {
      if (failed) return; // one failure ends the copy: the rest is not worth the disk
      const src = join(fromSharedDir, f.name);
      const part = join(into, f.name + PART_SUFFIX);
      let got;
      try {
        got = await copyAndHash(src, part);
      } catch (err) {
        failed = true;
        await unlink(part).catch(() => undefined);
        const code = (err as NodeJS.ErrnoException).code === 'ENOENT' ? IMAGE_MISSING : IMAGE_IO;
        throw new FerryError(code, `${label}: ${f.name}: cannot copy from ${fromSharedDir}: ${errorMessage(err)}`);
      }
      const sha256 = got.sha256.toString('hex');
      if (got.size !== f.size || sha256 !== f.sha256) {
        failed = true;
        await unlink(part).catch(() => undefined);
        const what = got.size !== f.size ? `size mismatch (manifest ${f.size} bytes, found ${got.size})` : 'sha256 mismatch';
        throw new FerryError(IMAGE_CORRUPT, `${label}: ${f.name}: ${what} in ${fromSharedDir}`);
      }
      await rename(part, join(into, f.name));
      done += f.size;
      options.onProgress?.(done, manifest.totalBytes);
    }),
  );
  const results = await Promise.allSettled(copies);
  const rejected = results.find((r) => r.status === 'rejected');
  if (rejected) throw (rejected as PromiseRejectedResult).reason;
  await fsyncDir(into);
  await writeFileDurably(into, MANIFEST_FILE_NAME, manifestBytes);
  return manifest;
}
