// A catalog that cannot take a write: its state directory's disk is full, failing or read-only. SQLite
// says so in its own words (SqliteError, code SQLITE_FULL ...); the coordinator passes it on as
// STATE_UNWRITABLE, naming the file, to the operator whose request needed the write, and to the agent
// whose report it could not record (it reports again). It stays up meanwhile: what it holds in memory
// goes on (running jobs, their output, the endpoint tables of ranks woken from a flush), events that cannot
// be written are lost (with a warning), a rank's exit waits for room (the job's followers are told), a
// checkpoint aborts cleanly (checkpoint-service.ts), a migration past its STOP or a restart past its RESUME
// goes on, a host's state and a job's failure and end go on; what they could not record waits for room
// (late-writes.ts). Once there is room, all of it works again.
import { FerryError, errorMessage } from '../common/ferry-error.js';
import { ErrorCode } from '../gen/proto.js';

const UNWRITABLE = /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN)/;

/** Whether `err` is SQLite's refusal of a write to the catalog. */
export function isCatalogUnwritable(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && UNWRITABLE.test(code);
}

/** `err`, or, for a catalog that cannot be written, a STATE_UNWRITABLE error that names `file`. */
export function catalogWriteError(err: unknown, file: string): unknown {
  if (!isCatalogUnwritable(err)) return err;
  const code = (err as { code: string }).code;
  return new FerryError(ErrorCode.STATE_UNWRITABLE, `the coordinator cannot write its catalog ${file}: ${errorMessage(err)} (${code})`);
}
