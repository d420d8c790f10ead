// Loads proto/*.proto at run time: the schemas are the single source of truth,
// and src/gen/proto.ts holds the TypeScript types derived from the same files.
import protobuf from 'protobufjs';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROTO_FILES } from '../gen/proto.js';

// 64-bit integers decode as plain numbers: ids, sizes and millisecond times
// all stay far below 2^53.
protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();

/** The repository folder, found from this file whether it runs from src/ or dist/src/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'proto', 'common.proto'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the proto/ folder above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

let root: protobuf.Root | undefined;

export function protoRoot(): protobuf.Root {
  if (root) return root;
  const protoDir = join(packageRoot(), 'proto');
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => join(protoDir, target.replace(/^.*\//, ''));
  r.loadSync(PROTO_FILES.map((f) => join(protoDir, f)), { keepCase: true });
  r.resolveAll();
  root = r;
  return r;
}
