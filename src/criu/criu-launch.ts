// How Ferry starts CRIU. A provisioned build (criu-provision.ts) is run by a
// shell wrapper, for operators: it finds its prefix through readlink and two
// dirnames, four processes before CRIU's own loader starts. Ferry spawns the
// loader itself instead, with the same arguments the wrapper would give it.
// Those processes cost 2.5 ms per start on an idle machine (criu --version),
// on every dump and restore, while the job is paused.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CRIU_BUILDS, type CriuBuild } from './criu-builds.js';
import { type CommandResult, type RunCommandOptions, type StartedCommand, runCommand, startCommand } from './run-command.js';

/** Multiarch triplet and loader of the Debian architectures CRIU is provisioned for. */
export const ARCHITECTURES: Record<string, { triplet: string; loader: string }> = {
  amd64: { triplet: 'x86_64-linux-gnu', loader: 'ld-linux-x86-64.so.2' },
  arm64: { triplet: 'aarch64-linux-gnu', loader: 'ld-linux-aarch64.so.1' },
};

// The wrapper finds the prefix relative to itself, so the folder can be
// renamed into place after it was checked.
export function criuWrapperScript(triplet: string, loader: string, build: CriuBuild = CRIU_BUILDS[0]!): string {
  return `#!/bin/sh
# CRIU ${build.cacheName} from Debian ${build.suite}, unpacked by Ferry. It needs a newer glibc than
# the system's, so it runs through its own prefix's loader and libraries.
here=$(dirname "$(readlink -f "$0")")
prefix=$(dirname "$here")/prefix
lib="$prefix/usr/lib/${triplet}:$prefix/lib/${triplet}"
exec "$prefix/usr/lib/${triplet}/${loader}" --library-path "$lib" "$prefix/usr/sbin/criu" "$@"
`;
}

/** `runCommand` of the CRIU `command` with `args`, started as criuArgv says. */
export function runCriu(command: string, args: readonly string[], options: RunCommandOptions = {}): Promise<CommandResult> {
  const [program, ...leading] = criuArgv(command);
  return runCommand(program!, [...leading, ...args], options);
}

/** `startCommand` of the CRIU `command` with `args`, started as criuArgv says. */
export function startCriu(command: string, args: readonly string[], options: Parameters<typeof startCommand>[2]): StartedCommand {
  const [program, ...leading] = criuArgv(command);
  return startCommand(program!, [...leading, ...args], options);
}

const launches = new Map<string, readonly string[]>();

/**
 * The program and leading arguments that run the CRIU `command`: the
 * wrapper's own exec line when `command` is, byte for byte, a wrapper Ferry
 * wrote (wherever its folder now is), else `command` itself.
 */
export function criuArgv(command: string): readonly string[] {
  let argv = launches.get(command);
  if (!argv) {
    argv = wrapperExec(command) ?? [command];
    launches.set(command, argv);
  }
  return argv;
}

function wrapperExec(command: string): string[] | undefined {
  let script: string;
  let here: string;
  try {
    const real = realpathSync(command);
    if (basename(real) !== 'criu') return undefined;
    script = readFileSync(real, 'utf8');
    here = dirname(real);
  } catch {
    return undefined; // spawned as given: the error, if any, is the spawn's to report
  }
  const prefix = join(dirname(here), 'prefix');
  for (const { triplet, loader } of Object.values(ARCHITECTURES)) {
    if (!CRIU_BUILDS.some((b) => criuWrapperScript(triplet, loader, b) === script)) continue;
    const ld = join(prefix, 'usr', 'lib', triplet, loader);
    const criu = join(prefix, 'usr', 'sbin', 'criu');
    if (!existsSync(ld) || !existsSync(criu)) return undefined;
    return [ld, '--library-path', `${prefix}/usr/lib/${triplet}:${prefix}/lib/${triplet}`, criu];
  }
  return undefined;
}
