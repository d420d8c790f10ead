// `ferry inspect`'s USE column: what a rank uses a file for, and which of its
// processes hold it on which descriptor (ferry-init and the program often hold
// the same one: it read "fd fd 0,0").
import { describe, expect, it } from 'vitest';
import { useOf } from '../../src/cli/inspect-command.js';

describe('the USE of a file in ferry inspect', () => {
  it('names each descriptor with the processes holding it, after the other uses', () => {
    expect(useOf({ uses: ['fd', 'fd'], fds: [{ pid: 1, fd: 0 }, { pid: 2, fd: 0 }] })).toBe('fd 0 of PIDs 1,2');
    expect(useOf({ uses: ['fd', 'mapped'], fds: [{ pid: 2, fd: 3 }] })).toBe('mapped; fd 3 of PID 2');
    expect(useOf({ uses: ['fd'], fds: [{ pid: 2, fd: 1 }, { pid: 2, fd: 2 }, { pid: 1, fd: 1 }] })).toBe('fd 1 of PIDs 1,2; fd 2 of PID 2');
    expect(useOf({ uses: ['exe', 'mapped'], fds: [] })).toBe('exe,mapped');
    expect(useOf({ uses: ['cwd'], fds: [] })).toBe('cwd');
  });
});
