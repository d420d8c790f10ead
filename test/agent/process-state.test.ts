// readProcessState: what the agent tells the coordinator of a launcher
// process whose lease lapsed, read from /proc of real processes: running,
// stopped (SIGSTOP), frozen (the cgroup freezer), and gone (exited, reaped or
// not, or its pid now another process's).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ProcessRunState } from '../../src/gen/proto.js';
import { processStartTicks } from '../../src/common/proc-stat.js';
import { readProcessState } from '../../src/agent/process-state.js';

const FREEZER_V1 = '/sys/fs/cgroup/freezer';
let child: ChildProcess | undefined;
let zombieParent: ChildProcess | undefined;
let cgroup: string | undefined;

afterEach(() => {
  if (cgroup) {
    writeFileSync(join(cgroup, 'freezer.state'), 'THAWED');
  }
  child?.kill('SIGKILL');
  zombieParent?.kill('SIGKILL');
  zombieParent = undefined;
  if (cgroup) {
    for (let i = 0; i < 100 && readFileSync(join(cgroup, 'tasks'), 'utf8').trim(); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    rmdirSync(cgroup);
  }
  child = undefined;
  cgroup = undefined;
});

async function sleeper(): Promise<{ pid: number; ticks: number }> {
  child = spawn('sleep', ['300'], { stdio: 'ignore' });
  await once(child, 'spawn');
  const pid = child.pid!;
  return { pid, ticks: processStartTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'))! };
}

describe('the state of a launcher process, from /proc', () => {
  it('running, stopped by SIGSTOP, running again at SIGCONT', async () => {
    const { pid, ticks } = await sleeper();
    // just spawned, sleep may still be on a CPU (R) rather than asleep (S): both are running
    const first = await readProcessState(pid, ticks);
    expect(first.state).toBe(ProcessRunState.PROCESS_RUNNING);
    expect(first.detail).toMatch(new RegExp(`^pid ${pid} runs \\(state [RS]\\)$`));
    child!.kill('SIGSTOP');
    for (let i = 0; i < 100 && (await readProcessState(pid, ticks)).state === ProcessRunState.PROCESS_RUNNING; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await readProcessState(pid, ticks)).toEqual({ state: ProcessRunState.PROCESS_STOPPED, detail: `pid ${pid} is stopped (state T)` });
    child!.kill('SIGCONT');
    for (let i = 0; i < 100 && (await readProcessState(pid, ticks)).state !== ProcessRunState.PROCESS_RUNNING; i++) await new Promise((r) => setTimeout(r, 10));
    expect((await readProcessState(pid, ticks)).state).toBe(ProcessRunState.PROCESS_RUNNING);
  });

  it('gone: another process under its pid, an exited one not reaped yet, one reaped', async () => {
    const { pid, ticks } = await sleeper();
    expect(await readProcessState(pid, ticks + 1)).toEqual({
      state: ProcessRunState.PROCESS_GONE,
      detail: `pid ${pid} is another process now (started at tick ${ticks}, not ${ticks + 1})`,
    });
    // Not reaped: its parent execs sleep, which never waits (Node would reap a child of its own at once).
    const parent = (zombieParent = spawn('sh', ['-c', '(exit 0) & exec sleep 300'], { stdio: 'ignore' }));
    await once(parent, 'spawn');
    let zpid = 0;
    for (let i = 0; i < 200 && !zpid; i++) {
      zpid = Number(readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, 'utf8').trim().split(' ')[0]) || 0;
      if (!zpid || !/\) Z /.test(readFileSync(`/proc/${zpid}/stat`, 'utf8'))) (zpid = 0), await new Promise((r) => setTimeout(r, 10));
    }
    const zticks = processStartTicks(readFileSync(`/proc/${zpid}/stat`, 'utf8'))!;
    expect(await readProcessState(zpid, zticks)).toEqual({ state: ProcessRunState.PROCESS_GONE, detail: `pid ${zpid} has exited (state Z)` });
    parent.kill('SIGKILL');
    child!.kill('SIGKILL');
    await once(child!, 'exit');
    expect(await readProcessState(pid, ticks)).toEqual({ state: ProcessRunState.PROCESS_GONE, detail: `no process ${pid}` });
  });

  it.runIf(existsSync(FREEZER_V1))('frozen: in a cgroup the freezer holds (cgroup v1 here)', async () => {
    const { pid, ticks } = await sleeper();
    cgroup = join(FREEZER_V1, `ferry-test-${process.pid}`);
    mkdirSync(cgroup);
    writeFileSync(join(cgroup, 'tasks'), String(pid));
    writeFileSync(join(cgroup, 'freezer.state'), 'FROZEN');
    for (let i = 0; i < 100 && readFileSync(join(cgroup, 'freezer.state'), 'utf8').trim() !== 'FROZEN'; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await readProcessState(pid, ticks)).toEqual({ state: ProcessRunState.PROCESS_FROZEN, detail: `pid ${pid} is in the frozen cgroup /ferry-test-${process.pid}` });
    writeFileSync(join(cgroup, 'freezer.state'), 'THAWED');
    for (let i = 0; i < 100 && readFileSync(join(cgroup, 'freezer.state'), 'utf8').trim() !== 'THAWED'; i++) await new Promise((r) => setTimeout(r, 10));
    expect((await readProcessState(pid, ticks)).state).toBe(ProcessRunState.PROCESS_RUNNING);
  });
});
