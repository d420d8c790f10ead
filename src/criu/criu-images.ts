// Decodes the CRIU image files of one dumped rank (`ferry inspect`, the
// pre-restore check, the output remap) with the schemas in
// proto/criu/criu-images.proto.
//
// Image file layout (CRIU's "v1.1" images): a 4-byte little-endian magic
// IMG_COMMON (IMG_SERVICE for stats files; none for inventory.img), then the
// image's own 4-byte magic, then entries, each a 4-byte little-endian length
// followed by one protobuf message. pages-N.img is raw memory, no header.
import protobuf from 'protobufjs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode } from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { packageRoot } from '../protocol/proto-root.js';

export const CRIU_IMAGES_PROTO = join('proto', 'criu', 'criu-images.proto');
export const PAGE_SIZE_BYTES = 4096;

const IMG_COMMON_MAGIC = 0x54564319;
const IMG_SERVICE_MAGIC = 0x55105940;
/** CRIU's per-image magics (criu/include/magic.h) for the images Ferry reads. */
export const IMAGE_MAGIC = {
  inventory: 0x58313116,
  pstree: 0x50273030,
  fdinfo: 0x56213732,
  pagemap: 0x56084025,
  core: 0x55053847,
  ids: 0x54432030,
  regFiles: 0x50363636,
  mm: 0x57492820,
  fs: 0x51403912,
  files: 0x56303138,
  stats: 0x57093306,
  remapFpath: 0x59133954,
} as const;

// Pagemap entry flags (CRIU's pagemap.h): pages in a parent image, or in pages-N.img.
const PE_PARENT = 1 << 0;
const PE_PRESENT = 1 << 2;
// VMA status bits for file mappings (CRIU's image.h): their shmid is a file id.
const VMA_FILE_PRIVATE = 1 << 6;
const VMA_FILE_SHARED = 1 << 7;
const FD_TYPE_REG = 1;
// RemapType GHOST; older CRIU had no remap_type and set this bit of remap_id instead.
const REMAP_TYPE_GHOST = 1;
const REMAP_GHOST_BIT = 0x80000000;
/** TaskCoreEntry.task_state of a process dumped stopped (CRIU's TASK_STOPPED): it is restored stopped. */
const TASK_STOPPED = 3;
/** The access mode bits of open(2)'s flags (O_RDONLY, O_WRONLY, O_RDWR). */
export const O_ACCMODE = 3;

export interface ImageProcess {
  /** PID inside the dumped tree's PID namespace (the rank's ferry-init is 1). */
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  threads: number[];
  comm: string;
  /** Pages of memory the image holds for this process (pages-N.img). */
  memoryPages: number;
  /** Dumped stopped (SIGSTOP): a restore brings it back stopped. */
  stopped: boolean;
}

export type ImageFileUse = 'fd' | 'exe' | 'mapped' | 'cwd' | 'root';

export interface ImageFile {
  id: number;
  path: string;
  /** The size CRIU recorded and checks at restore; absent when it does not
   * check (files open write-only with O_APPEND, such as logs). */
  sizeBytes?: number;
  mode?: number;
  flags: number;
  /** The file offset at the dump (for a log: the bytes written by then). */
  pos: number;
  uses: ImageFileUse[];
  /** Open descriptors on this file: process (tree PID) and fd number. */
  fds: { pid: number; fd: number }[];
  /**
   * Set when the file was deleted while the rank held it (a rebuilt
   * executable, an unlinked scratch file): CRIU carried its content in
   * ghost-file-ID.img, and a restore recreates it as ghostPath() for as long
   * as it reopens it. Nothing at `path` is needed or touched on the target.
   */
  ghost?: { id: number; imageBytes: number };
}

/** Where a restore recreates a ghost file while it reopens it (CRIU: PATH.cr.ID-in-hex.ghost). */
export function ghostPath(f: Pick<ImageFile, 'path' | 'ghost'>): string | undefined {
  return f.ghost && `${f.path}.cr.${f.ghost.id.toString(16)}.ghost`;
}

export interface DumpStats {
  freezingTimeUs: number;
  frozenTimeUs: number;
  memdumpTimeUs: number;
  memwriteTimeUs: number;
  pagesScanned: number;
  pagesWritten: number;
}

export interface ImageSummary {
  dir: string;
  imgVersion: number;
  /** Processes, parents before children; processes[0] is the root. */
  processes: ImageProcess[];
  memoryPages: number;
  memoryBytes: number;
  /** Bytes of the pages-*.img files (what the memory costs on disk). */
  pagesFileBytes: number;
  files: ImageFile[];
  stats?: DumpStats;
}

let root: protobuf.Root | undefined;

function criuRoot(): protobuf.Root {
  if (!root) {
    root = new protobuf.Root().loadSync(join(packageRoot(), CRIU_IMAGES_PROTO), { keepCase: true });
    root.resolveAll();
  }
  return root;
}

function type(name: string): protobuf.Type {
  return criuRoot().lookupType(`ferry.criu.${name}`);
}

let warmed = false;

/**
 * Loads the schema and generates every message's decoder now. The first
 * readImages in a process otherwise does it (tens of ms), and in an agent
 * that is a restore, on the job's critical path.
 */
export function warmImageDecoders(): void {
  if (warmed) return;
  warmed = true;
  const setUp = (ns: protobuf.NamespaceBase): void => {
    for (const o of ns.nestedArray) {
      if (o instanceof protobuf.Type) o.setup();
      if (o instanceof protobuf.Namespace) setUp(o);
    }
  };
  setUp(criuRoot());
}

/** Set when the field was on the wire (proto2 optional), not a default. */
function has(message: object, field: string): boolean {
  return Object.prototype.hasOwnProperty.call(message, field);
}

/** Splits one image file into its entries' bytes; checks its magic first. */
export function splitImage(bytes: Uint8Array, name: string, magic: number): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (what: string) => new FerryError(ErrorCode.MALFORMED, `CRIU image ${name}: ${what}`);
  let off = 0;
  if (magic !== IMAGE_MAGIC.inventory) {
    if (bytes.length < 8) throw bad('too short for its magic');
    const first = view.getUint32(0, true);
    const expected = magic === IMAGE_MAGIC.stats ? IMG_SERVICE_MAGIC : IMG_COMMON_MAGIC;
    if (first !== expected) throw bad(`magic 0x${first.toString(16)} != 0x${expected.toString(16)}`);
    off = 4;
  }
  if (bytes.length < off + 4) throw bad('too short for its magic');
  const own = view.getUint32(off, true);
  if (own !== magic) throw bad(`image magic 0x${own.toString(16)} != 0x${magic.toString(16)}`);
  off += 4;
  const out: Uint8Array[] = [];
  while (off < bytes.length) {
    if (off + 4 > bytes.length) throw bad(`truncated entry size at byte ${off}`);
    const size = view.getUint32(off, true);
    off += 4;
    if (off + size > bytes.length) throw bad(`entry of ${size} bytes at byte ${off} runs past the end`);
    out.push(bytes.subarray(off, off + size));
    off += size;
  }
  return out;
}

/** Decodes entries with one of the messages of proto/criu/criu-images.proto. */
export function decodeEntries<T>(entries: Uint8Array[], name: string, typeName: string): T[] {
  const t = type(typeName);
  return entries.map((e, i) => {
    try {
      return t.decode(e) as unknown as T;
    } catch (err) {
      throw new FerryError(ErrorCode.MALFORMED, `CRIU image ${name}: entry ${i}: ${errorMessage(err)}`);
    }
  });
}

/** Decodes every entry of one image file as `typeName`. */
export function decodeImage<T>(bytes: Uint8Array, name: string, magic: number, typeName: string): T[] {
  return decodeEntries<T>(splitImage(bytes, name, magic), name, typeName);
}

/**
 * The image files readImages decodes: small ones (never pages-N.img or
 * ghost-file-N.img, which hold memory and file contents).
 */
const SUMMARY_IMAGE_RE = /^(?:(?:inventory|pstree|files|reg-files|remap-fpath)\.img|(?:core|ids|fdinfo|fs|mm|pagemap)-[0-9]+\.img|stats-dump)$/;

/** Image files by name, read before they are decoded; a name absent is a file that does not exist. */
type ImageFiles = { dir: string; bytes: Map<string, Buffer> };

/**
 * Reads every file of `dir` that readImages may decode, all at once: one
 * after the other, the 20-odd reads of a rank's images took 4-25 ms of a
 * restore on a busy agent.
 */
async function readSummaryFiles(dir: string): Promise<ImageFiles> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new FerryError(ErrorCode.MALFORMED, `CRIU images ${dir}: ${errorMessage(e)}`);
    names = []; // told as its missing inventory.img
  }
  const wanted = names.filter((n) => SUMMARY_IMAGE_RE.test(n));
  const bytes = await Promise.all(
    wanted.map((n) =>
      readFile(join(dir, n)).catch((e) => {
        throw new FerryError(ErrorCode.MALFORMED, `CRIU image ${join(dir, n)}: ${errorMessage(e)}`);
      }),
    ),
  );
  return { dir, bytes: new Map(wanted.map((n, i) => [n, bytes[i]])) };
}

function imageEntries(files: ImageFiles, name: string, magic: number): Uint8Array[] | undefined {
  // Else a file that was not read would pass for one that does not exist.
  if (!SUMMARY_IMAGE_RE.test(name)) throw new Error(`${name} is not one of the images readSummaryFiles reads`);
  const bytes = files.bytes.get(name);
  return bytes && splitImage(bytes, name, magic);
}

function readImage<T>(files: ImageFiles, name: string, magic: number, typeName: string): T[] {
  const entries = imageEntries(files, name, magic);
  if (!entries) throw new FerryError(ErrorCode.MALFORMED, `CRIU image ${join(files.dir, name)} is missing`);
  return decodeEntries<T>(entries, name, typeName);
}

function readOptionalImage<T>(files: ImageFiles, name: string, magic: number, typeName: string): T[] | undefined {
  const entries = imageEntries(files, name, magic);
  return entries && decodeEntries<T>(entries, name, typeName);
}

interface Pstree { pid: number; ppid: number; pgid: number; sid: number; threads: number[] }
interface KobjIds { files_id?: number; vm_id?: number }
interface Core { tc?: { comm?: string; task_state?: number }; ids?: KobjIds }
interface Fdinfo { id: number; flags: number; type: number; fd: number }
interface RegFile { id: number; flags: number; pos: number; name: string; size?: number; mode?: number }
interface FileEntryMsg { type: number; id: number; reg?: RegFile }
interface Mm { exe_file_id?: number; vmas: { shmid?: number; status?: number }[] }
interface Fs { cwd_id: number; root_id: number }
interface PagemapHead { pages_id: number }
interface PagemapEntry { nr_pages: number; in_parent?: boolean; flags?: number; nr_pages_64?: number | { toNumber(): number } }
interface RemapFilePath { orig_id: number; remap_id: number; remap_type?: number }
interface Stats { dump?: { freezing_time: number; frozen_time: number; memdump_time: number; memwrite_time: number; pages_scanned: number; pages_written: number } }

/** Dump statistics from stats-dump in `dir`, if CRIU wrote it. */
export async function readDumpStats(dir: string): Promise<DumpStats | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(join(dir, 'stats-dump'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FerryError(ErrorCode.MALFORMED, `CRIU image ${join(dir, 'stats-dump')}: ${errorMessage(e)}`);
  }
  return dumpStats({ dir, bytes: new Map([['stats-dump', bytes]]) });
}

function dumpStats(files: ImageFiles): DumpStats | undefined {
  const entries = readOptionalImage<Stats>(files, 'stats-dump', IMAGE_MAGIC.stats, 'StatsEntry');
  const d = entries?.[0]?.dump;
  if (!d) return undefined;
  return {
    freezingTimeUs: d.freezing_time,
    frozenTimeUs: d.frozen_time,
    memdumpTimeUs: d.memdump_time,
    memwriteTimeUs: d.memwrite_time,
    pagesScanned: Number(d.pages_scanned),
    pagesWritten: Number(d.pages_written),
  };
}

/** Decodes the images of one dumped process tree in `dir`. */
export async function readImages(dir: string): Promise<ImageSummary> {
  const img = await readSummaryFiles(dir);
  const [inventory] = readImage<{ img_version: number }>(img, 'inventory.img', IMAGE_MAGIC.inventory, 'InventoryEntry');
  const tree = readImage<Pstree>(img, 'pstree.img', IMAGE_MAGIC.pstree, 'PstreeEntry');
  if (tree.length === 0) throw new FerryError(ErrorCode.MALFORMED, `CRIU image ${dir}/pstree.img: no process`);

  // Every regular file the tree uses: files.img (CRIU 3.15+), else reg-files.img.
  const regs = new Map<number, RegFile>();
  const files = readOptionalImage<FileEntryMsg>(img, 'files.img', IMAGE_MAGIC.files, 'FileEntry');
  for (const f of files ?? []) if (f.type === FD_TYPE_REG && f.reg) regs.set(f.reg.id, f.reg);
  const legacy = readOptionalImage<RegFile>(img, 'reg-files.img', IMAGE_MAGIC.regFiles, 'RegFileEntry');
  for (const r of legacy ?? []) regs.set(r.id, r);

  // Files deleted while open: their content is in the image (ghost-file-N.img).
  const ghosts = new Map<number, { id: number; imageBytes: number }>();
  for (const r of readOptionalImage<RemapFilePath>(img, 'remap-fpath.img', IMAGE_MAGIC.remapFpath, 'RemapFilePathEntry') ?? []) {
    const legacyGhost = !has(r, 'remap_type') && (r.remap_id & REMAP_GHOST_BIT) !== 0;
    if (r.remap_type !== REMAP_TYPE_GHOST && !legacyGhost) continue;
    const id = (r.remap_id & ~REMAP_GHOST_BIT) >>> 0;
    const name = `ghost-file-${id}.img`;
    const imageBytes = await stat(join(dir, name)).then(
      (st) => st.size,
      () => {
        throw new FerryError(ErrorCode.MALFORMED, `CRIU image ${dir}: ${name} named by remap-fpath.img is missing`);
      },
    );
    ghosts.set(r.orig_id, { id, imageBytes });
  }

  const uses = new Map<number, Set<ImageFileUse>>();
  const fdsOf = new Map<number, { pid: number; fd: number }[]>();
  const use = (id: number, u: ImageFileUse) => {
    if (!uses.has(id)) uses.set(id, new Set());
    uses.get(id)!.add(u);
  };

  const processes: ImageProcess[] = [];
  const seenVm = new Set<number>();
  let pagesFileBytes = 0;
  for (const p of tree) {
    const [core] = readImage<Core>(img, `core-${p.pid}.img`, IMAGE_MAGIC.core, 'CoreEntry');
    let ids = core?.ids;
    if (!ids) [ids] = readOptionalImage<KobjIds>(img, `ids-${p.pid}.img`, IMAGE_MAGIC.ids, 'TaskKobjIdsEntry') ?? [];

    // Open descriptors: fdinfo-FILES_ID.img (shared file tables are dumped once).
    const filesId = ids?.files_id;
    const fdinfo =
      filesId !== undefined
        ? readOptionalImage<Fdinfo>(img, `fdinfo-${filesId}.img`, IMAGE_MAGIC.fdinfo, 'FdinfoEntry')
        : readOptionalImage<Fdinfo>(img, `fdinfo-${p.pid}.img`, IMAGE_MAGIC.fdinfo, 'FdinfoEntry');
    for (const fd of fdinfo ?? []) {
      if (fd.type !== FD_TYPE_REG) continue;
      use(fd.id, 'fd');
      if (!fdsOf.has(fd.id)) fdsOf.set(fd.id, []);
      fdsOf.get(fd.id)!.push({ pid: p.pid, fd: fd.fd });
    }

    // The working and root directories must exist at restore, too.
    const [fs] = readOptionalImage<Fs>(img, `fs-${p.pid}.img`, IMAGE_MAGIC.fs, 'FsEntry') ?? [];
    if (fs && has(fs, 'cwd_id')) use(fs.cwd_id, 'cwd');
    if (fs && has(fs, 'root_id')) use(fs.root_id, 'root');

    // Memory: the executable, file mappings, and the pages the image holds.
    const [mm] = readOptionalImage<Mm>(img, `mm-${p.pid}.img`, IMAGE_MAGIC.mm, 'MmEntry') ?? [];
    if (mm?.exe_file_id !== undefined && has(mm, 'exe_file_id')) use(mm.exe_file_id, 'exe');
    for (const v of mm?.vmas ?? []) {
      if (((v.status ?? 0) & (VMA_FILE_PRIVATE | VMA_FILE_SHARED)) !== 0 && v.shmid !== undefined) use(Number(v.shmid), 'mapped');
    }
    let memoryPages = 0;
    const pagemapName = `pagemap-${p.pid}.img`;
    const pagemap = imageEntries(img, pagemapName, IMAGE_MAGIC.pagemap);
    if (pagemap && pagemap.length > 0) {
      // A head (which pages-N.img), then one entry per run of pages.
      const [head] = decodeEntries<PagemapHead>(pagemap.slice(0, 1), pagemapName, 'PagemapHead');
      for (const e of decodeEntries<PagemapEntry>(pagemap.slice(1), pagemapName, 'PagemapEntry')) {
        const flags = e.flags ?? 0;
        const present = has(e, 'flags') ? (flags & PE_PRESENT) !== 0 && (flags & PE_PARENT) === 0 : !e.in_parent;
        const pages = has(e, 'nr_pages_64') ? Number(e.nr_pages_64) : e.nr_pages;
        if (present) memoryPages += pages;
      }
      const pagesId = head!.pages_id;
      const vmId = ids?.vm_id ?? p.pid;
      if (!seenVm.has(vmId)) {
        seenVm.add(vmId);
        try {
          pagesFileBytes += (await stat(join(dir, `pages-${pagesId}.img`))).size;
        } catch {
          throw new FerryError(ErrorCode.MALFORMED, `CRIU image ${dir}: pages-${pagesId}.img named by pagemap-${p.pid}.img is missing`);
        }
      }
    }
    processes.push({
      pid: p.pid,
      ppid: p.ppid,
      pgid: p.pgid,
      sid: p.sid,
      threads: [...(p.threads ?? [])],
      comm: core?.tc?.comm ?? '',
      memoryPages,
      stopped: core?.tc?.task_state === TASK_STOPPED,
    });
  }

  const fileList: ImageFile[] = [];
  for (const [id, r] of [...regs].sort((a, b) => a[0] - b[0])) {
    fileList.push({
      id,
      path: r.name,
      sizeBytes: has(r, 'size') ? Number(r.size) : undefined,
      mode: has(r, 'mode') ? r.mode : undefined,
      flags: r.flags,
      pos: Number(r.pos ?? 0),
      uses: [...(uses.get(id) ?? [])].sort(),
      fds: fdsOf.get(id) ?? [],
      ...(ghosts.has(id) ? { ghost: ghosts.get(id)! } : {}),
    });
  }
  const memoryPages = processes.reduce((n, p) => n + p.memoryPages, 0);
  return {
    dir,
    imgVersion: inventory?.img_version ?? 0,
    processes,
    memoryPages,
    memoryBytes: memoryPages * PAGE_SIZE_BYTES,
    pagesFileBytes,
    files: fileList,
    stats: dumpStats(img),
  };
}

/**
 * The regular files that hold the rank's stdout and stderr (fds 1 and 2 of
 * any process of the tree): the restore hands the rank new ones in their
 * place. A file open on both is reported as stdout.
 */
export function outputFiles(summary: ImageSummary): { out: string[]; err: string[] } {
  const out = new Set<string>();
  const err = new Set<string>();
  for (const f of summary.files) {
    for (const d of f.fds) {
      if (d.fd === 1) out.add(f.path);
      if (d.fd === 2) err.add(f.path);
    }
  }
  for (const p of out) err.delete(p);
  return { out: [...out], err: [...err] };
}

/** True when CRIU reopens the file for writing (its content may legitimately change). */
export function openedForWrite(file: ImageFile): boolean {
  return (file.flags & O_ACCMODE) !== 0;
}
