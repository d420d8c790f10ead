// `ferry inspect DIR`: what one rank's checkpoint image holds, decoded from
// CRIU's image files (schemas in proto/criu/) and Ferry's manifest.
import { constants, existsSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';
import { O_ACCMODE, type ImageFile, openedForWrite, readImages } from '../criu/criu-images.js';
import { readAppendedFiles } from '../criu/written-files.js';
import { MANIFEST_FILE_NAME } from '../images/image-paths.js';
import { readManifest, type Manifest } from '../images/manifest.js';
import { formatBytes } from './format-bytes.js';
import { onePositional, parseArgs } from './args.js';
import { formatTable, formatTime } from './table.js';

export async function inspectCommand(argv: string[]): Promise<number> {
  const cmd = 'ferry inspect';
  const p = parseArgs(cmd, argv, { json: {} });
  const dir = onePositional(cmd, p, 'image directory', 'ferry inspect IMAGES/JOB/EPOCH/rank-R');
  if (!existsSync(dir)) throw new FerryError(ErrorCode.BAD_REQUEST, `${cmd}: ${dir} does not exist`);
  const summary = await readImages(dir);
  const manifest: Manifest | undefined = existsSync(join(dir, MANIFEST_FILE_NAME)) ? await readManifest(dir) : undefined;
  // Sizes of the files open for append only, which CRIU does not record (Ferry's CRIU plugin ferry-append-files, written-files.ts).
  const appendedFiles = await readAppendedFiles(dir);
  if (p.options.has('json')) {
    process.stdout.write(JSON.stringify({ ...summary, manifest, appendedFiles }, null, 2) + '\n');
    return 0;
  }
  const appended = new Map(appendedFiles.map((f) => [f.path, f.sizeBytes]));
  const out: string[] = [];
  if (manifest) {
    out.push(
      `job ${manifest.jobId} epoch ${manifest.epoch} rank ${manifest.rank}, dumped on ${manifest.host} at ${formatTime(manifest.createdMs)} ` +
        `with CRIU ${manifest.criuVersion}: ${manifest.files.length} files, ${formatBytes(manifest.totalBytes)} (manifest sha256 ${manifest.manifestSha256.slice(0, 16)}...)`,
    );
  } else {
    out.push(`${dir}: no ${MANIFEST_FILE_NAME} (not written by a Ferry agent, or incomplete)`);
  }
  out.push(`memory: ${formatBytes(summary.memoryBytes)} in ${summary.memoryPages} pages (${formatBytes(summary.pagesFileBytes)} of page files)`);
  if (summary.stats) out.push(`CRIU: frozen ${(summary.stats.frozenTimeUs / 1000).toFixed(1)} ms, memory written in ${(summary.stats.memwriteTimeUs / 1000).toFixed(1)} ms`);
  out.push('', 'process tree (PIDs inside the rank\'s PID namespace):');
  out.push(formatTable(['PID', 'PPID', 'THREADS', 'MEMORY', 'COMMAND'], summary.processes.map((pr) => [String(pr.pid), String(pr.ppid), String(pr.threads.length), formatBytes(pr.memoryPages * 4096), pr.comm])).trimEnd());
  const needed = summary.files.filter((f) => !f.ghost);
  const ghosts = summary.files.filter((f) => f.ghost);
  out.push('', 'files the image needs on the target host:');
  out.push(
    formatTable(
      ['PATH', 'SIZE AT DUMP', 'OPEN', 'USE'],
      needed.map((f) => [
        f.path,
        f.sizeBytes !== undefined ? String(f.sizeBytes) : appended.has(f.path) ? `${appended.get(f.path)}*` : '-',
        f.uses.includes('fd') ? openMode(f.flags) : '-',
        useOf(f),
      ]),
    ).trimEnd(),
  );
  if (ghosts.length > 0) {
    out.push('', 'files deleted while the rank held them, carried in the image (the restore needs nothing at their path):');
    out.push(
      formatTable(
        ['PATH', 'SIZE AT DUMP', 'IMAGE FILE', 'USE'],
        ghosts.map((f) => [
          f.path,
          f.sizeBytes !== undefined ? String(f.sizeBytes) : '-',
          `ghost-file-${f.ghost!.id}.img (${formatBytes(f.ghost!.imageBytes)})`,
          useOf(f),
        ]),
      ).trimEnd(),
    );
  }
  if (needed.some((f) => f.uses.includes('fd') && f.sizeBytes !== undefined) || appended.size > 0) {
    out.push('(CRIU checks these sizes at restore; * recorded by Ferry for a file open for append, which CRIU does not check)');
  }
  if (needed.some((f) => f.uses.includes('fd') && openedForWrite(f) && (f.sizeBytes !== undefined || appended.has(f.path)))) {
    out.push('(a restart from this image cuts a file open for writing back to its size at the dump if it grew since)');
  }
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}

/**
 * What the rank uses a file for (exe, mapped, cwd, root), and the descriptors it is open on, each with the
 * processes (PIDs of the tree) that hold it: "mapped; fd 3 of PID 2", "fd 0 of PIDs 1,2".
 */
export function useOf(f: Pick<ImageFile, 'uses' | 'fds'>): string {
  const pidsByFd = new Map<number, number[]>();
  for (const { fd, pid } of f.fds) pidsByFd.set(fd, [...(pidsByFd.get(fd) ?? []), pid]);
  const fds = [...pidsByFd].map(([fd, pids]) => `fd ${fd} of PID${pids.length > 1 ? 's' : ''} ${pids.sort((a, b) => a - b).join(',')}`);
  const uses = [...new Set(f.uses)].filter((u) => u !== 'fd' || fds.length === 0).join(',');
  return [uses, ...fds].filter(Boolean).join('; ');
}

/** How a descriptor has the file open: read, write, read-write, and append. */
function openMode(flags: number): string {
  const mode = ['read', 'write', 'read-write'][flags & O_ACCMODE] ?? '?';
  return flags & constants.O_APPEND ? `${mode},append` : mode;
}
