import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

// One binary-package source of the system's apt configuration.
export interface AptSource {
  uri: string;
  suites: string[];
  components: string[];
  signedBy?: string;
}

export const APT_SOURCES_LIST = '/etc/apt/sources.list';
export const APT_SOURCES_DIR = '/etc/apt/sources.list.d';

// deb822 format (*.sources): blank-line separated stanzas of "Key: value"
// fields; continuation lines start with white space; '#' lines are comments.
export function parseDeb822Sources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  const stanzas: Map<string, string>[] = [];
  let fields = new Map<string, string>();
  let lastKey: string | undefined;
  for (const raw of text.split('\n')) {
    if (raw.trimStart().startsWith('#')) continue;
    if (raw.trim() === '') {
      if (fields.size > 0) stanzas.push(fields);
      fields = new Map();
      lastKey = undefined;
      continue;
    }
    if (/^\s/.test(raw) && lastKey) {
      fields.set(lastKey, `${fields.get(lastKey)}\n${raw.trim()}`);
      continue;
    }
    const colon = raw.indexOf(':');
    if (colon <= 0) continue;
    lastKey = raw.slice(0, colon).trim().toLowerCase();
    fields.set(lastKey, raw.slice(colon + 1).trim());
  }
  if (fields.size > 0) stanzas.push(fields);

  const words = (v: string | undefined) => (v ?? '').split(/\s+/).filter((w) => w.length > 0);
  for (const s of stanzas) {
    if (!words(s.get('types')).includes('deb')) continue;
    if (/^(no|false|0)$/i.test(s.get('enabled') ?? 'yes')) continue;
    const signedBy = s.get('signed-by');
    for (const uri of words(s.get('uris'))) {
      sources.push({
        uri,
        suites: words(s.get('suites')),
        components: words(s.get('components')),
        // An inline key block is not a path; only keep a keyring file name.
        ...(signedBy && signedBy.startsWith('/') && !signedBy.includes('\n') ? { signedBy } : {}),
      });
    }
  }
  return sources;
}

// One-line format (sources.list): "deb [opt=val ...] URI SUITE COMPONENT...".
export function parseOneLineSources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line.startsWith('deb ') && !line.startsWith('deb\t')) continue;
    let rest = line.slice(3).trim();
    let signedBy: string | undefined;
    if (rest.startsWith('[')) {
      const close = rest.indexOf(']');
      if (close < 0) continue;
      for (const opt of rest.slice(1, close).trim().split(/\s+/)) {
        const [key, value] = opt.split('=', 2);
        if (key === 'signed-by' && value) signedBy = value;
      }
      rest = rest.slice(close + 1).trim();
    }
    const [uri, suite, ...components] = rest.split(/\s+/);
    if (!uri || !suite) continue;
    sources.push({ uri, suites: [suite], components, ...(signedBy ? { signedBy } : {}) });
  }
  return sources;
}

// Security and update suites live on other archives or only carry a delta;
// the base suite of the main archive is what a new release suite shares a
// mirror with.
// Third-party repositories (suite "nodistro", "stable" of some vendor...) are
// recognised by their suite not being a Debian release name.
const DEBIAN_SUITES = new Set([
  'buster', 'bullseye', 'bookworm', 'trixie', 'forky', 'duke', 'sid',
  'oldoldstable', 'oldstable', 'stable', 'testing', 'unstable',
]);

export function isMainArchiveSource(source: AptSource): boolean {
  if (source.uri.includes('debian-security')) return false;
  if (!source.components.includes('main')) return false;
  return source.suites.some((s) => DEBIAN_SUITES.has(s));
}

// The Debian mirror the system already uses (its URI without trailing '/'),
// or undefined when the system has no usable Debian source.
export function pickDebianMirror(sources: readonly AptSource[]): AptSource | undefined {
  const candidates = sources.filter(isMainArchiveSource);
  // Debian mirrors serve the archive under ".../debian"; prefer those over a
  // vendor repository that happens to call its suite "stable".
  const found = candidates.find((s) => /\/debian\/*$/.test(s.uri)) ?? candidates[0];
  return found ? { ...found, uri: found.uri.replace(/\/+$/, '') } : undefined;
}

// Reads /etc/apt/sources.list and /etc/apt/sources.list.d/*.{list,sources}.
export async function readSystemAptSources(
  listFile = APT_SOURCES_LIST,
  partsDir = APT_SOURCES_DIR,
): Promise<AptSource[]> {
  const sources: AptSource[] = [];
  const text = await readFile(listFile, 'utf8').catch(() => '');
  sources.push(...parseOneLineSources(text));
  const names = await readdir(partsDir).catch(() => [] as string[]);
  for (const name of names.sort()) {
    const file = join(partsDir, name);
    if (name.endsWith('.sources')) {
      sources.push(...parseDeb822Sources(await readFile(file, 'utf8').catch(() => '')));
    } else if (name.endsWith('.list')) {
      sources.push(...parseOneLineSources(await readFile(file, 'utf8').catch(() => '')));
    }
  }
  return sources;
}
