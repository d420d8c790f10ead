// What `ferry run` gives rank 0 as its standard input (rank0Stdin): a file
// given with --stdin, its own standard input with `--stdin -` or when that is
// a regular file (`< FILE`), and nothing from a pipe or terminal it was not
// told to read to its end. Too much input is refused, naming the limit.
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { rank0Stdin } from '../../src/cli/rank0-stdin.js';
import { MAX_STDIN_BYTES } from '../../src/coordinator/coordinator-config.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-run-stdin-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

describe('ferry run: rank 0 standard input', () => {
  const input = join(dir, 'deck.in');
  writeFileSync(input, 'nx 64\nny 64\n');

  it('reads --stdin FILE, and a regular file on its own standard input (< FILE) from its offset', () => {
    expect(text(rank0Stdin('ferry run', input))).toBe('nx 64\nny 64\n');
    const fd = openSync(input, 'r');
    try {
      expect(text(rank0Stdin('ferry run', undefined, fd))).toBe('nx 64\nny 64\n');
      expect(text(rank0Stdin('ferry run', undefined, fd))).toBe(''); // (read: at its end now)
    } finally {
      closeSync(fd);
    }
    const none = openSync(input, 'r');
    try {
      expect(rank0Stdin('ferry run', 'none', none)).toHaveLength(0);
    } finally {
      closeSync(none);
    }
  });

  it('leaves a terminal, /dev/null or a pipe alone unless told (--stdin -), which reads it to its end', () => {
    const devNull = openSync('/dev/null', 'r');
    try {
      expect(rank0Stdin('ferry run', undefined, devNull)).toHaveLength(0);
    } finally {
      closeSync(devNull);
    }
    // A pipe, in a child whose standard input it is: left alone by default, read with --stdin -.
    const script = (option: string) =>
      `import('${join(process.cwd(), 'dist/src/cli/rank0-stdin.js')}').then((m) => process.stdout.write(String(m.rank0Stdin('ferry run', ${option}).length)))`;
    const run = (option: string) => execFileSync(process.execPath, ['-e', script(option)], { input: 'abc\n', encoding: 'utf8' });
    expect(run('undefined')).toBe('0');
    expect(run("'-'")).toBe('4');
  });

  it('refuses more than MAX_STDIN_BYTES and a missing file, naming them', () => {
    const big = join(dir, 'big.in');
    writeFileSync(big, Buffer.alloc(MAX_STDIN_BYTES + 1, 0x31));
    expect(() => rank0Stdin('ferry run', big)).toThrow(`ferry run: --stdin ${big} is ${MAX_STDIN_BYTES + 1} bytes, more than rank 0 can be given (2.0 MiB): give the program the file to read instead`);
    const fd = openSync(big, 'r');
    try {
      expect(() => rank0Stdin('ferry run', undefined, fd)).toThrow(/its standard input is 2097153 bytes, more than rank 0 can be given/);
    } finally {
      closeSync(fd);
    }
    expect(() => rank0Stdin('ferry run', join(dir, 'nope'))).toThrow(`ferry run: --stdin ${join(dir, 'nope')}: no such file`);
  });
});
