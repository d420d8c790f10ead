// The error codes of the images module, in one place. They travel unchanged from
// the agent that found the problem to the operator (`[IMAGE_CORRUPT]`).
import { ErrorCode } from '../gen/proto.js';

/** A file does not match its manifest (size, sha256), or a manifest is damaged. */
export const IMAGE_CORRUPT = ErrorCode.IMAGE_CORRUPT;
/** An image directory, its manifest or one of its files does not exist. */
export const IMAGE_MISSING = ErrorCode.IMAGE_MISSING;
/** A request names something outside the images root, or is otherwise invalid. */
export const IMAGE_BAD_REQUEST = ErrorCode.BAD_REQUEST;
/** A disk operation failed (full disk, permissions). */
export const IMAGE_IO = ErrorCode.INTERNAL;
