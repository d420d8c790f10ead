// Names of everything one host network creates. All of them start with a run
// tag "fy<owner pid, base 36>-<3 random chars>", so two runs never collide and
// a sweeper can tell from a name alone whose process made it and whether that
// process is gone. Interface names are limited to 15 characters (IFNAMSIZ - 1):
// the tag is at most 11 (pid_max is at most 2^22, 5 base-36 digits), the bridge
// adds "b", a veth "v" and up to 2 base-36 digits of the host index.
import { randomBytes } from 'node:crypto';

export const IFNAME_MAX_CHARS = 15;
const RUN_TAG_RE = /^fy([0-9a-z]{1,6})-([0-9a-z]{3})(?:b|v[0-9a-z]{1,2}|-.+)$/;
const RAND_CHARS = 3;

export function newRunTag(ownerPid: number): string {
  const rand = Array.from(randomBytes(RAND_CHARS), (b) => (b % 36).toString(36)).join('');
  return `fy${ownerPid.toString(36)}-${rand}`;
}

export function bridgeName(tag: string): string {
  return `${tag}b`;
}

export function vethName(tag: string, hostIndex: number): string {
  return `${tag}v${hostIndex.toString(36)}`;
}

export function netnsName(tag: string, hostName: string): string {
  return `${tag}-${hostName}`;
}

export interface ParsedRunName {
  tag: string;
  ownerPid: number;
}

// The run tag and owner of a bridge, veth or namespace name; null for names
// that no host network made.
export function parseRunName(name: string): ParsedRunName | null {
  const m = RUN_TAG_RE.exec(name);
  if (!m) return null;
  const ownerPid = Number.parseInt(m[1]!, 36);
  if (!Number.isSafeInteger(ownerPid) || ownerPid <= 0) return null;
  return { tag: `fy${m[1]}-${m[2]}`, ownerPid };
}
