// A small strict argument parser: every option is declared, unknown ones and
// missing values are errors with one clear line.
import { ErrorCode } from '../gen/proto.js';
import { FerryError } from '../common/ferry-error.js';

export interface OptionSpec {
  /** Takes a value (`--name VALUE` or `--name=VALUE`); otherwise a flag. */
  value?: boolean;
  /** May be given several times (values collected in order). */
  repeat?: boolean;
}

export interface ParsedArgs {
  options: Map<string, string[]>;
  positional: string[];
}

/** Parses argv; options stop at the first positional when `stopAtPositional` (for `ferry run ./app --its-flags`). */
export function parseArgs(command: string, argv: string[], spec: Record<string, OptionSpec>, stopAtPositional = false): ParsedArgs {
  const options = new Map<string, string[]>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('-') && a !== '-' && !(stopAtPositional && positional.length > 0)) {
      const eq = a.indexOf('=');
      const name = (eq > 0 ? a.slice(0, eq) : a).replace(/^--?/, '');
      const s = spec[name];
      if (!s) throw new FerryError(ErrorCode.BAD_REQUEST, `${command}: unknown option ${a.slice(0, eq > 0 ? eq : undefined)}`);
      let value = 'true';
      if (s.value) {
        if (eq > 0) value = a.slice(eq + 1);
        else if (i + 1 < argv.length) value = argv[++i];
        else throw new FerryError(ErrorCode.BAD_REQUEST, `${command}: option --${name} needs a value`);
      } else if (eq > 0) {
        throw new FerryError(ErrorCode.BAD_REQUEST, `${command}: option --${name} takes no value`);
      }
      const list = options.get(name) ?? [];
      if (list.length > 0 && !s.repeat) throw new FerryError(ErrorCode.BAD_REQUEST, `${command}: option --${name} given twice`);
      list.push(value);
      options.set(name, list);
    } else {
      positional.push(a);
    }
  }
  return { options, positional };
}

export function opt(p: ParsedArgs, name: string): string | undefined {
  return p.options.get(name)?.[0];
}

/** An option as the user types it: -n, --hosts. */
const spelled = (name: string): string => (name.length === 1 ? `-${name}` : `--${name}`);

export function requireOpt(command: string, p: ParsedArgs, name: string): string {
  const v = opt(p, name);
  if (v === undefined || v === '') throw new FerryError(ErrorCode.BAD_REQUEST, `${command}: missing option ${spelled(name)}`);
  return v;
}

export function intOpt(command: string, p: ParsedArgs, name: string, fallback: number, min = 1): number {
  const v = opt(p, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new FerryError(ErrorCode.BAD_REQUEST, `${command}: ${spelled(name)} must be an integer >= ${min}, got "${v}"`);
  return n;
}

/** Checks a ZeroMQ TCP address "tcp://HOST:PORT"; when binding, HOST may be * and PORT 0 (any free port). */
export function checkTcpAddress(what: string, address: string, binding = false): string {
  const m = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+|\*):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[2]) : -1;
  if (!m || port < (binding ? 0 : 1) || port > 65535 || (m[1] === '*' && !binding)) {
    throw new FerryError(
      ErrorCode.BAD_REQUEST,
      `${what}: malformed address "${address}": expected tcp://HOST:PORT with a port from ${binding ? 0 : 1} to 65535`,
    );
  }
  return address;
}

/** "500ms", "30s", "10m", "2h" (or "off"/"0") -> milliseconds. */
export function parseDuration(what: string, text: string): number {
  if (text === 'off' || text === '0') return 0;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  if (!m) throw new FerryError(ErrorCode.BAD_REQUEST, `${what}: "${text}" is not a duration (e.g. 30s, 10m, 2h, or off)`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * unit);
}

/** The one positional argument a command takes; a missing or an extra one is a usage error showing `usage`. */
export function onePositional(cmd: string, p: ParsedArgs, what: string, usage: string): string {
  if (p.positional.length === 0) throw new FerryError(ErrorCode.BAD_REQUEST, `${cmd}: missing ${what} (${usage})`);
  if (p.positional.length > 1) {
    throw new FerryError(ErrorCode.BAD_REQUEST, `${cmd}: takes one ${what}, got ${p.positional.length}: ${p.positional.join(' ')} (${usage})`);
  }
  return p.positional[0]!;
}
