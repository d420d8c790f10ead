// The cluster key: one CURVE key pair that the coordinator, every agent and
// every operator command of a cluster share (`ferry keygen FILE`, then
// `--key FILE` for the daemons and FERRY_KEY=FILE for everything). With it,
// the control plane and the image transfers are encrypted, and a peer is let
// in only when it proves it holds the same key (curve-security.ts). Without
// one, they are open to whoever reaches the ports (README, "The cluster key").
//
// The file is text, readable by its owner only:
//   ferry-cluster-key 1
//   public <40 Z85 characters>
//   secret <40 Z85 characters>
import { closeSync, fsyncSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import * as zmq from 'zeromq';
import { ErrorCode } from '../gen/proto.js';
import { FerryError, errorMessage } from '../common/ferry-error.js';

/** Names the key file for every Ferry command of this process that has no --key. */
export const CLUSTER_KEY_ENV = 'FERRY_KEY';
const HEADER = 'ferry-cluster-key 1';
const Z85_KEY_RE = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/;

export interface ClusterKey {
  /** Where it was read from (for messages). */
  file: string;
  publicKey: string;
  secretKey: string;
}

/** Writes a new key to `file` (created, never overwritten, mode 0600). */
export function writeNewClusterKey(file: string): ClusterKey {
  const { publicKey, secretKey } = zmq.curveKeyPair();
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (err) {
    const exists = (err as NodeJS.ErrnoException).code === 'EEXIST';
    throw new FerryError(ErrorCode.BAD_REQUEST, `cannot create the key file ${file}: ${exists ? 'it exists (a cluster key is never overwritten)' : errorMessage(err)}`);
  }
  try {
    writeSync(fd, `${HEADER}\npublic ${publicKey}\nsecret ${secretKey}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { file, publicKey, secretKey };
}

/** Reads a key file; a missing, unreadable, malformed or world-readable one is a clear error naming it. */
export function readClusterKey(file: string): ClusterKey {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new FerryError(ErrorCode.BAD_REQUEST, `cannot read the cluster key ${file}: ${errorMessage(err)}`);
  }
  const mode = statSync(file).mode & 0o777;
  if (mode & 0o077) {
    throw new FerryError(ErrorCode.BAD_REQUEST, `the cluster key ${file} can be read by others (mode ${mode.toString(8)}): chmod 600 ${file}`);
  }
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const field = (name: string) => lines.find((l) => l.startsWith(`${name} `))?.slice(name.length + 1).trim();
  const publicKey = field('public');
  const secretKey = field('secret');
  if (lines[0] !== HEADER || !publicKey || !secretKey || !Z85_KEY_RE.test(publicKey) || !Z85_KEY_RE.test(secretKey)) {
    throw new FerryError(ErrorCode.BAD_REQUEST, `${file} is not a Ferry cluster key (ferry keygen FILE makes one)`);
  }
  return { file, publicKey, secretKey };
}

let processKey: ClusterKey | null | undefined;

/**
 * The key this process uses for every socket it opens: the one a daemon's
 * --key named, else FERRY_KEY's, else none. Read once.
 */
export function processClusterKey(): ClusterKey | null {
  if (processKey === undefined) {
    const file = process.env[CLUSTER_KEY_ENV];
    processKey = file ? readClusterKey(file) : null;
  }
  return processKey;
}

/** A socket's key option: the key given (null: none), or the process's when none was given. */
export function keyOrProcessKey(key: ClusterKey | null | undefined): ClusterKey | null {
  return key === undefined ? processClusterKey() : key;
}

/** A daemon's --key (undefined: FERRY_KEY, or none): read now, so a bad file stops it at start. */
export function useClusterKey(file: string | undefined): ClusterKey | null {
  processKey = file ? readClusterKey(file) : undefined;
  return processClusterKey();
}
