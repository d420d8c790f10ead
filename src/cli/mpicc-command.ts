// `ferry mpicc`: compile and link a C program against Ferry's MPI library, the
// way `mpicc` does: the compiler ($CC or cc) with the include path added, and
// the library and its dependencies appended when linking.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';
import { packageRoot } from '../protocol/proto-root.js';

/** Flags after which the compiler does not link. */
const NO_LINK_FLAGS = new Set(['-c', '-S', '-E', '-M', '-MM']);

export function mpiccArgs(args: string[], root = packageRoot()): { compiler: string; argv: string[] } {
  const include = join(root, 'build', 'include');
  const lib = join(root, 'build', 'lib', 'libferrympi.a');
  const links = !args.some((a) => NO_LINK_FLAGS.has(a));
  if (!existsSync(join(include, 'mpi.h')) || (links && !existsSync(lib))) {
    throw new FerryError(ErrorCode.UNAVAILABLE, `ferry mpicc: Ferry's MPI library is not built under ${join(root, 'build')}: run "npm run build"`);
  }
  if (args.includes('-show')) return { compiler: 'echo', argv: [process.env.CC || 'cc', `-I${include}`, ...args.filter((a) => a !== '-show'), ...(links ? [lib, '-lpthread', '-lm'] : [])] };
  return { compiler: process.env.CC || 'cc', argv: [`-I${include}`, ...args, ...(links ? [lib, '-lpthread', '-lm'] : [])] };
}

export function mpiccCommand(args: string[]): number {
  if (args.length === 0) throw new FerryError(ErrorCode.BAD_REQUEST, 'ferry mpicc: no input files (ferry mpicc [-o OUT] FILE.c ...)');
  const { compiler, argv } = mpiccArgs(args);
  const r = spawnSync(compiler, argv, { stdio: 'inherit' });
  if (r.error) throw new FerryError(ErrorCode.UNAVAILABLE, `ferry mpicc: cannot run ${compiler}: ${r.error.message}`);
  return r.status ?? 1;
}
