// The operator CLI as a user meets it: one clear line and a non-zero exit for
// every mistake, never a hang; `ferry run` reports a failed rank by name.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, closeSync, createWriteStream, existsSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FERRY_CLI } from '../helpers/cluster.js';
import { DaemonProcess } from '../helpers/daemon-process.js';
import { freePort } from '../helpers/free-port.js';

const KILL_AFTER_MS = 20_000;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function ferry(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [FERRY_CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS); // a hang shows as code null
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

// Made in beforeAll: a run that filters out every test of this file runs no hook, and would leave it.
let dir = '';
let address = '';
let coordinator: DaemonProcess;
let agent: DaemonProcess;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-cli-'));
  address = `tcp://127.0.0.1:${await freePort()}`;
  coordinator = new DaemonProcess('coordinator', [process.execPath, FERRY_CLI, 'coordinator', '--listen', address, '--state', join(dir, 'state')], join(dir, 'coordinator.log'), process.env);
  coordinator.start();
  await coordinator.waitForOutput(/listening on/, 20_000);
  agent = new DaemonProcess(
    'agent',
    [process.execPath, FERRY_CLI, 'agent', '--coordinator', address, '--name', 'solo', '--images', join(dir, 'images'), '--rank-socket', `ferry-cli-test-${process.pid}`, '--address', '127.0.0.1'],
    join(dir, 'agent.log'),
    process.env,
  );
  agent.start();
  await agent.waitForOutput(/registered/, 30_000);
});

afterAll(async () => {
  await agent?.stop();
  await coordinator?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** For a failure message: the daemons' last lines (an agent that lost the coordinator registers again). */
function daemonTails(): string {
  return `agent:\n${agent.tail(15)}\ncoordinator:\n${coordinator.tail(15)}`;
}

/**
 * Of a file of "[R] rank R line K ..." lines: "[R] lines" per rank, and "bad N", the lines that are not
 * rank R's line after its line before (cut, lost, out of order, or under another rank's tag).
 */
function linesPerRank(file: string): string[] {
  const awk = '{ r = $1; n[r]++; if ($5 != last[r] + 1 || $3 != substr(r, 2, 1)) bad++; last[r] = $5 } END { for (r in n) print r, n[r]; print "bad", bad + 0 }';
  return execFileSync('awk', [awk, file], { encoding: 'utf8' }).trim().split('\n').sort();
}

describe('operator CLI errors', () => {
  it('ferry keygen makes a key once; a daemon given a key file others can read does not start', async () => {
    const file = join(dir, 'cluster.key');
    const made = await ferry(['keygen', file]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toContain(`cluster key written to ${file} (mode 0600)`);
    const again = await ferry(['keygen', file]);
    expect([again.code, again.stderr.trim()]).toEqual([2, `ferry: cannot create the key file ${file}: it exists (a cluster key is never overwritten)`]);
    chmodSync(file, 0o644);
    const open = await ferry(['coordinator', '--listen', 'tcp://127.0.0.1:0', '--state', join(dir, 'keyed-state'), '--key', file]);
    expect([open.code, open.stderr.trim()]).toEqual([2, `ferry: the cluster key ${file} can be read by others (mode 644): chmod 600 ${file}`]);
  });

  it('fails within seconds with one line against an unreachable coordinator', async () => {
    const r = await ferry(['status', '--coordinator', `tcp://127.0.0.1:${await freePort()}`]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/no answer from the coordinator at tcp:\/\/127\.0\.0\.1:\d+ within 3 s/);
  });

  it.each([
    [['hosts', '--coordinator', 'localhost:7470'], /malformed address "localhost:7470"/],
    [['hosts', '--coordinator', 'tcp://127.0.0.1:99999'], /malformed address/],
    [['coordinator', '--state', '/tmp/x'], /missing option --listen/],
    [['agent', '--coordinator', 'tcp://127.0.0.1:1', '--name', 'a'], /missing option --images/],
    [['hosts', '--bogus'], /unknown option --bogus/],
    [['events', '--limit'], /option --limit needs a value/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['run', '--coordinator', 'tcp://127.0.0.1:1', './x'], /missing option -n/],
    [['checkpoint', 'j1', 'j2'], /ferry checkpoint: takes one job id, got 2: j1 j2 \(ferry checkpoint JOB/],
    [['cancel'], /ferry cancel: missing job id \(ferry cancel JOB/],
    [['drain', 'h1', 'h2'], /ferry drain: takes one host, got 2: h1 h2/],
    [['run', '-n', '1', '--stop-on', 'KILL', './x'], /ferry run: --stop-on needs a signal that can be caught \(SIGUSR1, SIGTERM, \.\.\.\), got "KILL"/],
    [['attach', 'j', '--stop-on', 'SIGBOGUS'], /ferry attach: --stop-on needs a signal that can be caught .*got "SIGBOGUS"/],
  ])('ferry %j: one clear line, exit 2', async (args, message) => {
    const r = await ferry(args as string[]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message as RegExp);
  });

  it('names an unknown job', async () => {
    const r = await ferry(['job', 'no-such-job', '--coordinator', address]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('ferry: no job "no-such-job" in the catalog [UNKNOWN_JOB]');
    const e = await ferry(['events', '--job', 'no-such-job', '--coordinator', address]);
    expect(e.stderr).toMatch(/no job "no-such-job"/);
  });

  it('names a program that does not exist on the host', async () => {
    const r = await ferry(['run', '-n', '2', '--coordinator', address, '/no/such/program']);
    expect(r.code).toBe(127); // the job's status: its ranks could not start, as a shell's "command not found"
    expect(r.stderr.trim()).toMatch(/^ferry run: job \S+ failed: could not start every rank: host solo: program "\/no\/such\/program" not found or not executable on host solo$/);
    // The job ended, failed: it does not wait for ranks that never started.
    const jobs = JSON.parse((await ferry(['jobs', '--all', '--json', '--coordinator', address])).stdout) as { argv: string[]; state: string; detail: string; ranks: { state: string }[] }[];
    const job = jobs.find((j) => j.argv[0] === '/no/such/program')!;
    expect([job.state, job.ranks.map((x) => x.state)]).toEqual(['failed', ['exited', 'exited']]);
    expect(job.detail).toMatch(/^could not start every rank: host solo: program "\/no\/such\/program" not found/);
  });

  it('refuses a bad number of epochs to keep, and several settings at once', async () => {
    const run = await ferry(['run', '-n', '1', '--keep-epochs', '0', '--coordinator', address, '/bin/true']);
    expect(run.code).toBe(2); // a usage error
    expect(run.stderr.trim()).toBe('ferry: ferry run: --keep-epochs must be an integer >= 1, got "0"');
    const none = await ferry(['run', '-n', '0', '--coordinator', address, '/bin/true']);
    expect(none.stderr.trim()).toBe('ferry: ferry run: -n must be an integer >= 1, got "0"'); // spelled as typed
    const both = await ferry(['checkpoint', 'j', '--every', '10m', '--keep-epochs', '2', '--coordinator', address]);
    expect(both.code).toBe(2);
    expect(both.stderr.trim()).toBe('ferry: ferry checkpoint: give one of --every, --keep-epochs, not several');
    const unknown = await ferry(['checkpoint', 'no-such-job', '--keep-epochs', '3', '--coordinator', address]);
    expect(unknown.stderr.trim()).toBe('ferry: no job "no-such-job" in the catalog [UNKNOWN_JOB]');
  });

  it('refuses a coordinator with a bad number of image replicas, before it binds', async () => {
    for (const [n, why] of [
      ['-1', 'must be an integer >= 0, got "-1"'],
      ['9', 'must be at most 8, got 9'],
    ]) {
      const r = await ferry(['coordinator', '--listen', 'tcp://127.0.0.1:0', '--state', join(dir, 'unused-state'), '--image-replicas', n!]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim()).toBe(`ferry: ferry coordinator: --image-replicas ${why}`);
    }
  });

  it('sets automatic restarts with ferry run and ferry checkpoint, and shows them in ferry job', async () => {
    const bad = await ferry(['run', '-n', '1', '--auto-restart', 'x', '--coordinator', address, '/bin/true']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe('ferry: ferry run: --auto-restart must be an integer >= 0, got "x"');
    const run = await ferry(['run', '-n', '1', '--job-id', 'ar', '--auto-restart', '2', '--coordinator', address, '/bin/true']);
    expect(run.code, run.stderr).toBe(0);
    const autoRestarts = async () => JSON.parse((await ferry(['job', 'ar', '--json', '--coordinator', address])).stdout).autoRestarts;
    expect(await autoRestarts()).toBe(2);
    const off = await ferry(['checkpoint', 'ar', '--auto-restart', 'off', '--coordinator', address]);
    expect(off.stdout).toBe('job ar: no automatic restarts\n');
    expect(await autoRestarts()).toBe(0);
    const three = await ferry(['checkpoint', 'ar', '--auto-restart', '3', '--coordinator', address]);
    expect(three.stdout).toBe('job ar: restarted automatically from its last checkpoint, up to 3 times, if it loses a host\n');
    expect(await autoRestarts()).toBe(3);
    const unknown = await ferry(['checkpoint', 'no-such-job', '--auto-restart', '1', '--coordinator', address]);
    expect(unknown.stderr.trim()).toBe('ferry: no job "no-such-job" in the catalog [UNKNOWN_JOB]');
  });

  it("shows a job's own hosts in ferry job: its --hosts, none for a job started without", async () => {
    expect((await ferry(['run', '-n', '1', '--hosts', 'solo', '--job-id', 'hh', '--coordinator', address, '/bin/true'])).code).toBe(0);
    expect((await ferry(['job', 'hh', '--coordinator', address])).stdout).toMatch(/\nits hosts \(restarts and drains keep it there\): solo\n/);
    expect(JSON.parse((await ferry(['job', 'hh', '--json', '--coordinator', address])).stdout).hosts).toEqual(['solo']);
    expect((await ferry(['run', '-n', '1', '--job-id', 'hn', '--coordinator', address, '/bin/true'])).code).toBe(0);
    expect((await ferry(['job', 'hn', '--coordinator', address])).stdout).not.toMatch(/its hosts/);
    expect(JSON.parse((await ferry(['job', 'hn', '--json', '--coordinator', address])).stdout).hosts).toEqual([]);
    // ferry checkpoint --hosts sets them; any clears them
    expect((await ferry(['checkpoint', 'hn', '--hosts', 'solo', '--coordinator', address])).stdout).toBe('job hn: its hosts are solo (restarts and drains keep it there)\n');
    expect((await ferry(['checkpoint', 'hh', '--hosts', 'any', '--coordinator', address])).stdout).toBe('job hh: may run on any host\n');
    const typo = await ferry(['checkpoint', 'hh', '--hosts', 'sol', '--coordinator', address]);
    expect([typo.code, typo.stderr.trim()]).toEqual([1, 'ferry: host "sol" is not known to the coordinator [UNKNOWN_HOST]']);
  });

  it("sets a job's own image replicas with ferry run and ferry checkpoint, and shows them in ferry job", async () => {
    const run = await ferry(['run', '-n', '1', '--job-id', 'ir', '--image-replicas', '0', '--coordinator', address, '/bin/true']);
    expect(run.code, run.stderr).toBe(0);
    const replicas = async () => {
      const j = JSON.parse((await ferry(['job', 'ir', '--json', '--coordinator', address])).stdout);
      return [j.imageReplicas, j.ownImageReplicas];
    };
    expect(await replicas()).toEqual([0, true]);
    const two = await ferry(['checkpoint', 'ir', '--image-replicas', '2', '--coordinator', address]);
    expect(two.stdout).toBe('job ir: 2 copies of each committed image on other hosts; those its newest epoch lacks are being made\n');
    expect(await replicas()).toEqual([2, true]);
    expect((await ferry(['job', 'ir', '--coordinator', address])).stdout).toMatch(/\ncopies of each committed image on other hosts: 2\n/);
    const back = await ferry(['checkpoint', 'ir', '--image-replicas', 'default', '--coordinator', address]);
    expect(back.stdout).toBe("job ir: no copies of its images on other hosts (the coordinator's default)\n");
    expect(await replicas()).toEqual([0, false]);
    const tooMany = await ferry(['run', '-n', '1', '--image-replicas', '9', '--coordinator', address, '/bin/true']);
    expect(tooMany.stderr.trim()).toBe('ferry: a job keeps 0 to 8 copies of each image on other hosts; got 9');
    const bad = await ferry(['checkpoint', 'ir', '--image-replicas', 'x', '--coordinator', address]);
    expect(bad.stderr.trim()).toBe('ferry: ferry checkpoint: --image-replicas must be an integer >= 0, got "x"');
  });

  it('drains the host with a reason, shows it, places nothing there, and takes it back with ferry undrain', async () => {
    try {
      const d = await ferry(['drain', 'solo', '--reason', 'bios update', '--coordinator', address]);
      expect(d.code, d.stderr).toBe(0);
      expect(d.stdout.trim()).toBe('host solo drained: 0 ranks moved; no new ranks go there until `ferry undrain solo`');
      const hosts = await ferry(['hosts', '--coordinator', address]);
      expect(hosts.stdout).toMatch(/^solo +up, drained \(bios update\) +127\.0\.0\.1 /m);
      const json = JSON.parse((await ferry(['hosts', '--json', '--coordinator', address])).stdout) as { drainedMs: number | null; drainReason: string }[];
      expect([json[0]!.drainedMs! > 0, json[0]!.drainReason]).toEqual([true, 'bios update']);
      const run = await ferry(['run', '-n', '1', '--coordinator', address, '/bin/true']);
      expect(run.code).toBe(1);
      expect(run.stderr.trim()).toBe(
        'ferry: no live host to place the ranks on: every live host is drained (solo; `ferry undrain HOST` takes one back) [NO_CAPACITY]',
      );
      const named = await ferry(['run', '-n', '1', '--hosts', 'solo', '--coordinator', address, '/bin/true']);
      expect(named.stderr.trim()).toBe('ferry: host "solo" is drained (bios update): no new ranks go there until `ferry undrain solo` [HOST_DRAINED]');
    } finally {
      const u = await ferry(['undrain', 'solo', '--coordinator', address]);
      expect(u.stdout.trim()).toBe('host solo undrained: new ranks may go there again');
    }
    const again = await ferry(['undrain', 'solo', '--coordinator', address]);
    expect(again.stdout.trim()).toBe('host solo was not drained: nothing changed');
    const run = await ferry(['run', '-n', '1', '--coordinator', address, '/bin/true']);
    expect(run.code, run.stderr).toBe(0);
  });

  it('refuses an unknown host', async () => {
    const r = await ferry(['run', '-n', '1', '--hosts', 'nowhere', '--coordinator', address, '/bin/true']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/host "nowhere" is not known/);
  });
});

describe('ferry run', () => {
  it('--stop-on: the signal asks for a checkpoint and stop instead of reaching the ranks; one that fails leaves the job running', async () => {
    // /bin/sh is no MPI program: its checkpoint fails, and the job runs on to its end.
    const child = spawn(process.execPath, [FERRY_CLI, 'run', '-n', '1', '--stop-on', 'usr1', '--coordinator', address, '/bin/sh', '-c', 'sleep 2; echo done'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
    try {
      for (let t = 0; t < 100 && !/started/.test(stderr); t++) await new Promise((r) => setTimeout(r, 100));
      child.kill('SIGUSR1');
      const code = await new Promise<number | null>((r) => child.on('close', r));
      expect(code, stderr).toBe(0); // sh never saw SIGUSR1 (it would have died of it)
      expect(stdout).toBe('[0] done\n');
      expect(stderr).toMatch(/\nferry run: SIGUSR1: checkpointing job \S+ to stop it\n/);
      expect(stderr).toMatch(/\nferry run: could not checkpoint and stop job \S+: checkpoint of job \S+ \(epoch 1\) aborted: PREPARE failed: .*The job keeps running/);
    } finally {
      clearTimeout(timer);
    }
  });

  it('relays output and ends with status 0', async () => {
    const r = await ferry(['run', '-n', '3', '--coordinator', address, '/bin/sh', '-c', 'echo "rank $FERRY_RANK of $FERRY_SIZE"']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual(['[0] rank 0 of 3', '[1] rank 1 of 3', '[2] rank 2 of 3']);
    const raw = await ferry(['run', '-n', '2', '--raw', '--coordinator', address, '/bin/sh', '-c', 'printf "x$FERRY_RANK"']);
    expect(raw.stdout.split('').sort().join('')).toBe('01xx');
  });

  it('relays every line of a job that prints 300 MB at once, whole and in order, to ferry run', async () => {
    // ZeroMQ drops what a peer does not take in time: ferry run lost half of such a job's lines, and cut
    // others in two (follower-link.ts). 4 ranks of 1.5 million 50-byte lines, written to a file.
    const file = join(dir, 'chatty.out');
    const fd = openSync(file, 'w');
    const line = 'rank $FERRY_RANK line %.0f of a chatty program with lots to say';
    const child = spawn(process.execPath, [FERRY_CLI, 'run', '-n', '4', '--job-id', 'chatty', '--coordinator', address, '/bin/sh', '-c', `seq -f "${line}" 1 1500000`], {
      stdio: ['ignore', fd, 'pipe'],
    });
    closeSync(fd);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, stderr).toBe(0);
    expect(stderr).not.toMatch(/left out/);
    // per rank: how many lines, and how many not the one after the rank's line before
    const counts = linesPerRank(file);
    expect(counts, daemonTails()).toEqual(['[0] 1500000', '[1] 1500000', '[2] 1500000', '[3] 1500000', 'bad 0']);
    rmSync(file);
  }, 120_000);

  /**
   * `ferry run -n 4` of ranks that each print `lines` numbered lines (and then run `then`), its stdout a
   * pipe first read after `stallMs` (`during` runs then), into a file: its exit status, its stderr and the file.
   */
  async function runReadLate(jobId: string, lines: number, stallMs: number, during?: () => Promise<void>, then = ''): Promise<{ code: number | null; stderr: string; file: string }> {
    const file = join(dir, `${jobId}.out`);
    const line = 'rank $FERRY_RANK line %.0f of a chatty program with lots to say';
    const script = `seq -f "${line}" 1 ${lines}${then ? `; ${then}` : ''}`;
    const child = spawn(process.execPath, [FERRY_CLI, 'run', '-n', '4', '--job-id', jobId, '--coordinator', address, '/bin/sh', '-c', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.pause();
    await new Promise((r) => setTimeout(r, stallMs));
    await during?.();
    const out = createWriteStream(file);
    const written = new Promise<void>((resolve, reject) => {
      out.on('error', reject);
      out.on('finish', resolve);
    });
    child.stdout!.pipe(out);
    const code = await new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.on('exit', resolve)));
    await written;
    return { code, stderr, file };
  }

  it('writes all of a job\'s output to a pipe read only later, before it exits', async () => {
    // A pipe not read for a while (`ferry run ... | slow-consumer`): what it could not take yet waited in
    // ferry run's memory, and its exit at the job's end dropped it with status 0 (64 KiB of 26 MB arrived).
    const { code, stderr, file } = await runReadLate('late-reader', 100_000, 4_000);
    expect(code, stderr).toBe(0);
    expect(linesPerRank(file), daemonTails()).toEqual(['[0] 100000', '[1] 100000', '[2] 100000', '[3] 100000', 'bad 0']);
    rmSync(file);
  }, 60_000);

  it('holds a chatty job\'s output back at the agent while ferry run does not read it, also past the job\'s end, and then delivers all of it', async () => {
    // 4 ranks print 150 MB each and end while ferry run's stdout is not read for 12 s: more than the
    // coordinator keeps for a follower (256 MiB) would pile up there, and the oldest be left out, without the
    // agents' pause, and without the ranks' tails read after their exits at the follower's pace.
    const { code, stderr, file } = await runReadLate('stalled', 2_500_000, 12_000, async () => {
      // The job ended meanwhile; its follower is still behind.
      const job = await ferry(['job', 'stalled', '--json', '--coordinator', address]);
      expect(JSON.parse(job.stdout).state, job.stderr).toBe('succeeded');
    });
    expect(code, stderr).toBe(0);
    expect(stderr).not.toMatch(/left out/);
    expect(linesPerRank(file), `${stderr}\n${daemonTails()}`).toEqual(['[0] 2500000', '[1] 2500000', '[2] 2500000', '[3] 2500000', 'bad 0']);
    rmSync(file);
  }, 120_000);

  /**
   * SIGKILLs the coordinator (and the agent too, `withAgent`) and starts another on the same state; returns
   * once the agent registered with it.
   */
  async function replaceCoordinator(withAgent = false): Promise<void> {
    const registered = () => agent.output().match(/registered/g)?.length ?? 0;
    const before = registered();
    if (withAgent) await agent.kill('SIGKILL');
    await coordinator.kill('SIGKILL');
    coordinator.start();
    await coordinator.waitForOutput(/listening on/, 20_000);
    if (withAgent) {
      agent.start(); // (its output starts again)
      await agent.waitForOutput(/registered/, 20_000);
      return;
    }
    for (let i = 0; i < 100 && registered() === before; i++) await new Promise((r) => setTimeout(r, 100));
    expect(registered(), daemonTails()).toBeGreaterThan(before);
  }

  it("writes every line once when the coordinator is killed while it is behind, and the job's ranks end after", async () => {
    // The output a coordinator holds for a `ferry run` that does not take it dies with it (SIGKILL). The
    // agent sends again what ferry run had not taken; the next coordinator holds it until ferry run follows
    // again, and ferry run writes once what it had already. Before, lines went missing without a word.
    const lines = 400_000;
    const done = join(dir, 'killed-behind.done');
    const file = join(dir, 'killed-behind.out');
    let watch: NodeJS.Timeout | undefined;
    const { code, stderr } = await runReadLate(
      'killed-behind',
      lines,
      2_000,
      async () => {
        await replaceCoordinator();
        // The ranks end once ferry run wrote all their lines (an ended rank's output is another case), or
        // once it wrote nothing more for 8 s (lines lost: the counts below show it).
        let [size, still] = [-1, 0];
        watch = setInterval(() => {
          const now = existsSync(file) ? statSync(file).size : 0;
          [size, still] = [now, now === size ? still + 1 : 0];
          const all = now > 0 && Number(execFileSync('wc', ['-l', file], { encoding: 'utf8' }).split(' ')[0]) >= 4 * lines;
          if (still >= 16 || all) closeSync(openSync(done, 'w'));
        }, 500);
      },
      // (and once this file's directory is gone: a test that failed leaves no rank behind)
      `while [ -d ${dir} ] && [ ! -e ${done} ]; do sleep 0.2; done`,
    ).finally(() => {
      clearInterval(watch);
      closeSync(openSync(done, 'w'));
    });
    expect(code, stderr).toBe(0);
    expect(linesPerRank(file), `${stderr}\n${daemonTails()}`).toEqual([`[0] ${lines}`, `[1] ${lines}`, `[2] ${lines}`, `[3] ${lines}`, 'bad 0']);
    rmSync(file);
    rmSync(done);
  }, 60_000);

  it('writes every line once when the coordinator and the agent are killed together while it is behind', async () => {
    // A restarted agent follows its ranks' files on from what the one before had persisted: where their
    // followers had taken them (what the coordinator held for them died with it), in the same following
    // (source) of each file, so that what ferry run had already is written once.
    const lines = 400_000;
    const done = join(dir, 'both-killed.done');
    const file = join(dir, 'both-killed.out');
    const { code, stderr } = await runReadLate(
      'both-killed',
      lines,
      2_000,
      async () => {
        await replaceCoordinator(true);
        // (the ranks end after ferry run has followed again; their output is all in their files by then)
        closeSync(openSync(done, 'w'));
      },
      `while [ -d ${dir} ] && [ ! -e ${done} ]; do sleep 0.2; done`,
    ).finally(() => closeSync(openSync(done, 'w')));
    expect(code, stderr).toBe(0);
    expect(linesPerRank(file), `${stderr}\n${daemonTails()}`).toEqual([`[0] ${lines}`, `[1] ${lines}`, `[2] ${lines}`, `[3] ${lines}`, 'bad 0']);
    rmSync(file);
    rmSync(done);
  }, 60_000);

  it("writes a rank's last lines when it ends while its restarted agent waits to register", async () => {
    // The agent is SIGKILLed; the one started after it takes the ranks back at once, but registers only once
    // the coordinator has given up the one before (the heartbeat timeout). The ranks print their last line
    // and end meanwhile. Their output was followed only from the registration on, after their exits had
    // gone: the job ended first, and ferry run never wrote those lines (3 runs in 25 in a loop).
    const go = join(dir, 'last-lines.go');
    const script = `echo started; while [ -d ${dir} ] && [ ! -e ${go} ]; do sleep 0.05; done; echo "last line of rank $FERRY_RANK"`;
    const run = ferry(['run', '-n', '2', '--job-id', 'last-lines', '--coordinator', address, '/bin/sh', '-c', script]);
    for (let i = 0; i < 100; i++) {
      const job = await ferry(['job', 'last-lines', '--json', '--coordinator', address]);
      if (job.code === 0 && JSON.parse(job.stdout).ranks.every((x: { state: string }) => x.state === 'running')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await agent.kill('SIGKILL');
    agent.start();
    // (it registers once the one before missed its heartbeats: 5 s by default; the ranks end well before)
    await agent.waitForOutput(/connecting to/, 10_000);
    closeSync(openSync(go, 'w'));
    await agent.waitForOutput(/registered/, 20_000);
    const r = await run;
    expect(r.code, `${r.stderr}\n${daemonTails()}`).toBe(0);
    expect(r.stdout.split('\n').filter((l) => l.includes('last line')).sort()).toEqual(['[0] last line of rank 0', '[1] last line of rank 1']);
    rmSync(go);
  });

  for (const withAgent of [false, true]) {
    it(`writes every line once when the coordinator${withAgent ? ' and the agent are' : ' is'} killed while it is behind, after the job ended`, async () => {
      // The ranks' exits were acknowledged; what ferry run had not taken is sent again after them, as tails.
      // An agent killed too: its rank table kept the ranks until their output was taken, and the restarted
      // agent follows their files again, from where ferry run had taken them.
      const jobId = withAgent ? 'ended-both-killed' : 'ended-behind';
      const { code, stderr, file } = await runReadLate(jobId, 400_000, 1_000, async () => {
        let state = '';
        for (let i = 0; i < 100 && state !== 'succeeded'; i++) {
          const job = await ferry(['job', jobId, '--json', '--coordinator', address]);
          state = job.code === 0 ? JSON.parse(job.stdout).state : job.stderr;
          if (state !== 'succeeded') await new Promise((r) => setTimeout(r, 200));
        }
        expect(state).toBe('succeeded');
        await replaceCoordinator(withAgent);
      });
      expect(code, stderr).toBe(0);
      expect(linesPerRank(file), `${stderr}\n${daemonTails()}`).toEqual(['[0] 400000', '[1] 400000', '[2] 400000', '[3] 400000', 'bad 0']);
      rmSync(file);
    }, 60_000);
  }

  it('ends quietly when its standard output is closed (| head), saying that the job runs on', async () => {
    const child = spawn(process.execPath, [FERRY_CLI, 'run', '-n', '1', '--job-id', 'headed', '--coordinator', address, '/bin/sh', '-c', 'seq 1 100000; exec sleep 60'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.once('data', () => child.stdout!.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, stderr).toBe(141);
    expect(stderr).toContain('ferry run: standard output closed; job headed runs on ("ferry attach headed" follows it again)');
    expect(stderr).not.toMatch(/EPIPE/);
    const job = JSON.parse((await ferry(['job', 'headed', '--json', '--coordinator', address])).stdout);
    expect(job.state).toBe('running');
    expect((await ferry(['cancel', 'headed', '--coordinator', address])).code).toBe(0);
  });

  it('fails the job when one rank dies, names the rank and its status, and stops the others', async () => {
    const script = 'if [ "$FERRY_RANK" = 1 ]; then exit 3; fi; sleep 60';
    const r = await ferry(['run', '-n', '3', '--job-id', 'dies-1', '--coordinator', address, '/bin/sh', '-c', script]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/job dies-1 failed: rank 1 on solo exited with status 3/);
    const job = JSON.parse((await ferry(['job', 'dies-1', '--json', '--coordinator', address])).stdout);
    expect(job.state).toBe('failed');
    expect(job.ranks.map((x: { state: string }) => x.state)).toEqual(['exited', 'exited', 'exited']);
    // The sleepers were ended by SIGTERM through ferry-init: 128 + 15.
    expect(job.ranks.map((x: { exitCode: number }) => x.exitCode)).toEqual([143, 3, 143]);
  });
});

describe('ferry cancel', () => {
  async function running(jobId: string): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const r = await ferry(['job', jobId, '--json', '--coordinator', address]);
      if (r.code === 0 && JSON.parse(r.stdout).ranks.every((x: { state: string }) => x.state === 'running')) return;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`job ${jobId} did not come up`);
  }

  it('ends a running job from another terminal and waits for its end', async () => {
    const run = ferry(['run', '-n', '2', '--job-id', 'cancel-1', '--coordinator', address, '/bin/sh', '-c', 'echo up; exec sleep 60']);
    await running('cancel-1');
    const r = await ferry(['cancel', 'cancel-1', '--coordinator', address]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('job cancel-1: SIGTERM sent to its ranks\njob cancel-1 cancelled: cancelled by the operator (SIGTERM)\n');
    const ran = await run;
    expect(ran.code).toBe(143); // the run that started it ends too, with the status of the signal
    const job = JSON.parse((await ferry(['job', 'cancel-1', '--json', '--coordinator', address])).stdout);
    expect(job.state).toBe('cancelled');
    expect(job.ranks.map((x: { exitCode: number }) => x.exitCode)).toEqual([143, 143]);
    const again = await ferry(['cancel', 'cancel-1', '--coordinator', address]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe('job cancel-1 already ended: cancelled\n');
  });

  it('names the ranks that outlive its wait, and --signal SIGKILL ends them', async () => {
    const script = 'trap "" TERM; echo up; while :; do sleep 0.2; done';
    const run = ferry(['run', '-n', '2', '--job-id', 'cancel-2', '--coordinator', address, '/bin/sh', '-c', script]);
    await running('cancel-2');
    const slow = await ferry(['cancel', 'cancel-2', '--wait', '1s', '--coordinator', address]);
    expect(slow.code).toBe(1);
    expect(slow.stderr.trim()).toBe(
      'ferry: job cancel-2 has not ended 1 s after SIGTERM; still running: ranks 0 on solo, 1 on solo (ferry cancel cancel-2 --signal SIGKILL ends them) [TIMEOUT]',
    );
    const kill = await ferry(['cancel', 'cancel-2', '--signal', 'KILL', '--json', '--coordinator', address]);
    expect(kill.code, kill.stderr).toBe(0);
    const job = JSON.parse(kill.stdout);
    expect(job.state).toBe('cancelled');
    expect(job.ranks.map((x: { exitCode: number }) => x.exitCode)).toEqual([137, 137]);
    expect((await run).code).not.toBe(0);
  });

  it('names an unknown job and an unknown signal', async () => {
    const unknown = await ferry(['cancel', 'no-such-job', '--coordinator', address]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim()).toBe('ferry: no job "no-such-job" in the catalog [UNKNOWN_JOB]');
    const run = ferry(['run', '-n', '1', '--job-id', 'cancel-3', '--coordinator', address, '/bin/sh', '-c', 'echo up; exec sleep 60']);
    await running('cancel-3');
    const bad = await ferry(['cancel', 'cancel-3', '--signal', 'FOO', '--coordinator', address]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe('ferry: unknown signal "SIGFOO" (a name like SIGTERM, SIGINT, SIGKILL, SIGUSR1)');
    expect(JSON.parse((await ferry(['job', 'cancel-3', '--json', '--coordinator', address])).stdout).state).toBe('running');
    const busy = await ferry(['delete', 'cancel-3', '--coordinator', address]);
    expect(busy.code).toBe(1);
    expect(busy.stderr.trim()).toBe('ferry: job cancel-3 is running: ferry cancel cancel-3 ends it, then ferry delete cancel-3 deletes it [BUSY]');
    expect((await ferry(['cancel', 'cancel-3', '--coordinator', address])).code).toBe(0);
    expect((await run).code).toBe(143);
    // Ended: ferry delete forgets it (it never checkpointed: nothing to remove). Several jobs at once:
    // one that cannot go is named, and the others still go.
    // The agent's output logs of the jobs go with them.
    const logsOf = (jobId: string) => join(dir, 'logs', jobId);
    expect(existsSync(logsOf('cancel-3'))).toBe(true);
    const deleted = await ferry(['delete', 'cancel-3', 'no-such-job', 'cancel-1', '--coordinator', address]);
    expect(deleted.stdout).toBe(
      'job cancel-3 deleted with no committed epochs: 0 images removed (0 B), output logs on 1 host (3 B)\n' +
        'job cancel-1 deleted with no committed epochs: 0 images removed (0 B), output logs on 1 host (6 B)\n',
    );
    expect(existsSync(logsOf('cancel-3')) || existsSync(logsOf('cancel-1'))).toBe(false);
    expect(deleted.stderr.trim()).toBe('ferry: job no-such-job: no job "no-such-job" in the catalog [UNKNOWN_JOB]');
    expect(deleted.code).toBe(1);
    expect((await ferry(['job', 'cancel-3', '--coordinator', address])).stderr).toMatch(/no job "cancel-3"/);
    expect((await ferry(['events', '--job', 'cancel-3', '--coordinator', address])).stdout).toMatch(/job\.delete .* job cancel-3 \(cancelled\) deleted by the operator/);
    // Without --after, the newest events (oldest first); with it, the first ones after that point.
    type Ev = { seq: number; kind: string; jobId?: string };
    const events = async (...args: string[]) => JSON.parse((await ferry(['events', '--json', ...args, '--coordinator', address])).stdout) as Ev[];
    const all = await events('--limit', '10000');
    expect(all.length).toBeGreaterThan(4);
    const newest = await events('--limit', '2');
    expect(newest).toEqual(all.slice(-2));
    expect(newest.at(-1)).toMatchObject({ jobId: 'cancel-1' }); // (the last job deleted)
    expect(await events('--after', '0', '--limit', '2')).toEqual(all.slice(0, 2));
    expect(await events('--after', String(all[1]!.seq), '--limit', '1')).toEqual([all[2]]);
  });
});
