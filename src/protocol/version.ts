import { ErrorCode, ProtocolVersionConstant, type ProtocolVersion } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';

/** The protocol version this build speaks, from proto/common.proto. */
export const PROTOCOL_VERSION = {
  major: ProtocolVersionConstant.PROTOCOL_MAJOR,
  minor: ProtocolVersionConstant.PROTOCOL_MINOR,
} as const;

export function versionString(v: { major: number; minor: number } | null | undefined): string {
  return v ? `${v.major}.${v.minor}` : 'none';
}

/** Refuses a peer that speaks another major version (or none at all). */
export function checkPeerVersion(v: ProtocolVersion | null | undefined, peer: string): void {
  if (!v || v.major !== PROTOCOL_VERSION.major) {
    throw new FerryError(
      ErrorCode.VERSION_MISMATCH,
      `${peer} speaks Ferry protocol ${versionString(v)}, this side speaks ${versionString(PROTOCOL_VERSION)}: ` +
        'run the same major version of Ferry everywhere',
    );
  }
}
