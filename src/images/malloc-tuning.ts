// Loads build/lib/ferry-malloc-tuning.node into the image transfer process:
// glibc then keeps the memory of received image chunks for the next ones
// instead of giving it back to the kernel (why and what it measured:
// src/native/ferry-malloc-tuning.c). Only a speed-up: without it (not built,
// not glibc) transfers work the same.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../common/ferry-error.js';
import { packageRoot } from '../protocol/proto-root.js';
import { tracer } from '../common/trace.js';

const trace = tracer('images');

export function mallocTuningPath(): string {
  return join(packageRoot(), 'build', 'lib', 'ferry-malloc-tuning.node');
}

export interface MallocTuning {
  /** Allocations from this size on get their own mapping (glibc's default: 128 KiB, then adapting). */
  mmapThreshold: number;
  /** Free memory kept at the top of a heap before it is given back. */
  trimThreshold: number;
}

/** Loads the tuning; null (the reason traced) when it cannot load, and the agent goes on without it. */
export function tuneMallocForImageTransfers(path = mallocTuningPath()): MallocTuning | null {
  if (process.platform !== 'linux' || !existsSync(path)) {
    trace(`malloc tuning not loaded: ${process.platform !== 'linux' ? `not on Linux (${process.platform})` : `${path} is missing`}`);
    return null;
  }
  try {
    const module = { exports: {} as Partial<MallocTuning> };
    process.dlopen(module, path);
    const { mmapThreshold = 0, trimThreshold = 0 } = module.exports;
    trace(`malloc tuning: mmap threshold ${mmapThreshold} bytes, trim threshold ${trimThreshold} bytes (0: refused)`);
    return { mmapThreshold, trimThreshold };
  } catch (err) {
    trace(`malloc tuning not loaded: ${errorMessage(err)}`);
    return null;
  }
}
