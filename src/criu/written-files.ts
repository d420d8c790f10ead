// A restart from an epoch rolls back the files the ranks were writing.
//
// CRIU records the size of every regular file a process has open (all but
// write-only O_APPEND ones, such as the rank's logs) and refuses to restore
// when the file's size differs. A rank that wrote its own output file (a
// history, a results stream) on after the epoch left that file longer than
// the image expects, and the restart would fail on it. Cut back to the size
// at the dump, the file is what the rank had written by the epoch; the
// restored rank goes on writing from its offset there, so a rank that writes
// its files front to back ends with the same files as a run never rolled back.
//
// Files open write-only with O_APPEND (logs opened with fopen "a") CRIU
// neither records nor checks; Ferry's CRIU plugin records their size while the
// tree is frozen (APPEND_FILES_NAME in the images). The restart cuts them back
// to the largest size any rank of the job recorded: ranks appending to one
// file are dumped at slightly different moments, and none of them may lose
// what it had appended by its own dump.
//
// Only files the rank had open for writing, and only when they grew: a file
// that shrank, or one opened read-only that changed, is not the rank's to
// fix; the restore precheck names it (restore-precheck.ts).
//
// The bytes a cut takes are kept aside first (keepCutIn, fsynced before the
// file is cut), so a restart that fails after the cut can put them back
// (putBackCutFiles): a failed restart from an older epoch must not leave the
// files too short for a newer epoch, which would then no longer restore.
import { constants, createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ErrorCode } from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { fsyncDir, fsyncFile } from '../images/file-durability.js';
import { APPEND_FILES_NAME } from './criu-dump.js';
import { type ImageFile, type ImageSummary, openedForWrite, outputFiles } from './criu-images.js';

export interface CutBackFile {
  path: string;
  /** Its size before the cut. */
  fromBytes: number;
  /** Its size at the dump: CRIU's record (which it checks), or Ferry's CRIU plugin's for an append-only file. */
  toBytes: number;
}

export interface AppendedFile {
  path: string;
  /** Its size while the dumped tree was frozen. */
  sizeBytes: number;
}

/** The rank's own descriptor on a file it writes (not its remapped stdout/stderr, not its executable). */
function writtenThroughFd(f: ImageFile, remapped: ReadonlySet<string>): boolean {
  // A ghost (deleted before the dump) comes back from the image; a file at its path now is another one.
  return openedForWrite(f) && f.uses.includes('fd') && !f.uses.includes('exe') && !f.ghost && !remapped.has(f.path);
}

/** Write-only with O_APPEND: CRIU records no size for it. */
const appendOnly = (f: ImageFile) => (f.flags & constants.O_APPEND) !== 0 && f.sizeBytes === undefined;

/** What Ferry's CRIU plugin (ferry-append-files) recorded in an image directory ([] for an image without its record). */
export async function readAppendedFiles(imagesDir: string): Promise<AppendedFile[]> {
  let text: string;
  try {
    text = await readFile(join(imagesDir, APPEND_FILES_NAME), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return parseAppendedFiles(text);
}

/** readAppendedFiles, at once (a record of a few lines, read while a job is paused). */
export function readAppendedFilesSync(imagesDir: string): AppendedFile[] {
  let text: string;
  try {
    text = readFileSync(join(imagesDir, APPEND_FILES_NAME), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return parseAppendedFiles(text);
}

function parseAppendedFiles(text: string): AppendedFile[] {
  return text.split('\n').flatMap((line) => {
    const m = /^(\d+) (\/.*)$/.exec(line);
    return m ? [{ path: m[2], sizeBytes: Number(m[1]) }] : [];
  });
}

/**
 * Cuts back each file the image's processes had open for writing that is
 * longer now than when they were dumped: to CRIU's record, or for an
 * append-only file to `appendedSizes` (the job's largest record of it; such a
 * file not in it is left as it is). Returns what it cut; a file it cannot cut
 * fails the restart, naming the file.
 */
export async function cutBackWrittenFiles(
  summary: ImageSummary,
  appendedSizes: ReadonlyMap<string, number> = new Map(),
  keepCutIn?: string,
): Promise<CutBackFile[]> {
  const { out, err } = outputFiles(summary);
  const remapped = new Set([...out, ...err]);
  // One size per path (several descriptors on one file record the same one): the largest, so no descriptor's data is cut.
  const sizes = new Map<string, number>();
  for (const f of summary.files) {
    if (!writtenThroughFd(f, remapped)) continue;
    const size = f.sizeBytes ?? (appendOnly(f) ? appendedSizes.get(f.path) : undefined);
    if (size !== undefined) sizes.set(f.path, Math.max(size, sizes.get(f.path) ?? 0));
  }
  const cut: CutBackFile[] = [];
  for (const [path, toBytes] of sizes) {
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile() || st.size <= toBytes) continue; // missing or short: the precheck says so
    if (keepCutIn) await keepCutBytes(keepCutIn, { path, fromBytes: st.size, toBytes });
    try {
      await truncate(path, toBytes);
    } catch (e) {
      throw new FerryError(ErrorCode.RESTORE_PRECHECK_FAILED, `${path}: grew from ${toBytes} to ${st.size} bytes since the dump, and cannot be cut back: ${errorMessage(e)}`);
    }
    cut.push({ path, fromBytes: st.size, toBytes });
  }
  return cut;
}

/** What keepCutIn holds: one entry per file cut, its bytes in TAIL (a file of that directory). */
interface KeptCut extends CutBackFile {
  tail: string;
}
const KEPT_INDEX = 'cut.json';

async function readKept(dir: string): Promise<KeptCut[]> {
  try {
    return JSON.parse(await readFile(join(dir, KEPT_INDEX), 'utf8')) as KeptCut[];
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new FerryError(ErrorCode.INTERNAL, `${join(dir, KEPT_INDEX)}: ${errorMessage(e)}`);
  }
}

/** Copies bytes [toBytes, fromBytes) of the file into DIR and records them, both fsynced, before the cut. */
async function keepCutBytes(dir: string, cut: CutBackFile): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    const kept = await readKept(dir);
    const tail = `${kept.length}.tail`;
    await pipeline(createReadStream(cut.path, { start: cut.toBytes, end: cut.fromBytes - 1 }), createWriteStream(join(dir, tail)));
    await fsyncFile(join(dir, tail));
    kept.push({ ...cut, tail });
    await writeFile(join(dir, KEPT_INDEX), JSON.stringify(kept));
    await fsyncFile(join(dir, KEPT_INDEX));
    await fsyncDir(dir);
  } catch (e) {
    throw new FerryError(
      ErrorCode.RESTORE_PRECHECK_FAILED,
      `${cut.path}: grew from ${cut.toBytes} to ${cut.fromBytes} bytes since the dump; the bytes a cut would take cannot be kept aside in ${dir} (${errorMessage(e)}), so it was not cut`,
    );
  }
}

/**
 * Puts back what cutBackWrittenFiles cut and kept in DIR: appends each file's
 * bytes again if the file still has the size it was cut to (a file written to
 * since stays as it is, its bytes kept where they are, and says so). DIR goes
 * once nothing is left in it.
 */
export async function putBackCutFiles(dir: string): Promise<{ putBack: CutBackFile[]; problems: string[] }> {
  const kept = await readKept(dir);
  const putBack: CutBackFile[] = [];
  const problems: string[] = [];
  const left: KeptCut[] = [];
  for (const k of kept) {
    const tail = join(dir, k.tail);
    const cutBytes = k.fromBytes - k.toBytes;
    try {
      const st = await stat(k.path).catch(() => undefined);
      if (!st) throw new Error(`it is gone`);
      if (st.size !== k.toBytes) throw new Error(`it is ${st.size} bytes now, not the ${k.toBytes} it was cut to (written to since)`);
      await pipeline(createReadStream(tail), createWriteStream(k.path, { flags: 'a' }));
      await fsyncFile(k.path);
      const now = (await stat(k.path)).size;
      if (now !== k.fromBytes) throw new Error(`it is ${now} bytes after putting back ${cutBytes}, not ${k.fromBytes}`);
      putBack.push({ path: k.path, fromBytes: k.toBytes, toBytes: k.fromBytes });
      await rm(tail, { force: true });
    } catch (e) {
      problems.push(`${k.path}: not put back: ${errorMessage(e)}; its ${cutBytes} cut bytes are kept in ${tail}`);
      left.push(k);
    }
  }
  if (left.length === 0) await rm(dir, { recursive: true, force: true });
  else await writeFile(join(dir, KEPT_INDEX), JSON.stringify(left));
  return { putBack, problems };
}
