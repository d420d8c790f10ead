// Names that become parts of file paths on agents (job ids, image sets, host
// names) are checked in one place: letters, digits, '.', '_' and '-', not
// starting with a dot, so no name can climb out of its folder.
import { ErrorCode } from '../gen/proto.js';
import { FerryError } from './ferry-error.js';

export const SAFE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkSafeName(what: string, name: string): string {
  if (!SAFE_NAME_PATTERN.test(name)) {
    throw new FerryError(ErrorCode.BAD_REQUEST, `${what} "${name}" is not valid (1 to 64 letters, digits, '.', '_' or '-', not starting with '.' or '-')`);
  }
  return name;
}
