// The error codes of the images module, in one place. proto/common.proto has no
// dedicated codes yet for a corrupt or a missing image; these map onto the
// closest existing ones so that a change there is a one-line change here.
import { ErrorCode } from '../gen/proto.js';

/** A file does not match its manifest (size, sha256), or a manifest is damaged. */
export const IMAGE_CORRUPT = ErrorCode.MALFORMED;
/** An image directory, its manifest or one of its files does not exist. */
export const IMAGE_MISSING = ErrorCode.UNAVAILABLE;
/** A request names something outside the images root, or is otherwise invalid. */
export const IMAGE_BAD_REQUEST = ErrorCode.BAD_REQUEST;
/** A disk operation failed (full disk, permissions). */
export const IMAGE_IO = ErrorCode.INTERNAL;
