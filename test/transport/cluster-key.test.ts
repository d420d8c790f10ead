// The cluster key over real ZeroMQ on 127.0.0.1: a coordinator transport and
// an image server with the key let in only clients holding it (CURVE + the ZAP
// handler); a client without it, or with another, never reaches them and learns
// why. The key file: made once, owner-only, checked when read.
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import * as zmq from 'zeromq';
import { ErrorCode } from '../../src/gen/proto.js';
import { fetchImageDir } from '../../src/images/image-fetcher.js';
import { ImageServer } from '../../src/images/image-server.js';
import { writeManifest } from '../../src/images/manifest.js';
import { type ClusterKey, readClusterKey, useClusterKey, writeNewClusterKey } from '../../src/transport/cluster-key.js';
import { z85Encode } from '../../src/transport/curve-security.js';
import { ZmqClientTransport, ZmqServerTransport } from '../../src/transport/zmq-transport.js';
import { FIXTURE_META, makeRankImage } from '../images/image-dir-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-key-'));
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const newKey = (): ClusterKey => writeNewClusterKey(join(dir, `k${n++}.key`));

async function server(key: ClusterKey | null): Promise<{ address: string; got: string[] }> {
  const s = await ZmqServerTransport.bind('tcp://127.0.0.1:0', { maxMessageBytes: 1 << 20, key });
  closers.push(() => s.close());
  const got: string[] = [];
  s.onMessage((peer, frames) => {
    got.push(Buffer.from(frames[0]!).toString());
    s.send(peer, Buffer.from('pong'));
  });
  return { address: s.address, got };
}

function client(address: string, key: ClusterKey | null): { t: ZmqClientTransport; replies: string[] } {
  const t = new ZmqClientTransport(address, { watchConnection: true, key });
  closers.push(() => t.close());
  const replies: string[] = [];
  t.onMessage((frames) => replies.push(Buffer.from(frames[0]!).toString()));
  return { t, replies };
}

const until = async (cond: () => boolean, ms = 3_000) => {
  for (const end = Date.now() + ms; !cond() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
};

describe('the cluster key', () => {
  it('lets in a client that holds it, and no other: without a key or with another, nothing arrives and the client learns why', async () => {
    const key = newKey();
    const s = await server(key);
    const member = client(s.address, key);
    member.t.send(Buffer.from('ping'));
    await until(() => member.replies.length > 0);
    expect(member.replies).toEqual(['pong']);

    const stranger = client(s.address, newKey());
    const plain = client(s.address, null);
    stranger.t.send(Buffer.from('let me in'));
    plain.t.send(Buffer.from('let me in'));
    await until(() => stranger.t.refused !== undefined && plain.t.refused !== undefined);
    await new Promise((r) => setTimeout(r, 300));
    expect(s.got).toEqual(['ping']);
    expect(stranger.t.refused).toBe('the security handshake failed: it and this client do not share one cluster key (FERRY_KEY, --key)');
    expect(plain.t.refused).toBe('the handshake failed: does it need a cluster key? this client has none (FERRY_KEY, --key)');
    expect(stranger.replies).toEqual([]);
  });

  it('refuses a client that knows the public key but not the secret (the ZAP handler)', async () => {
    const key = newKey();
    const s = await server(key);
    const own = zmq.curveKeyPair();
    const d = new zmq.Dealer({ linger: 0, curveServerKey: key.publicKey, curvePublicKey: own.publicKey, curveSecretKey: own.secretKey });
    closers.push(async () => d.close());
    let authFailed = false;
    d.events.on('handshake:error:auth', () => (authFailed = true));
    d.connect(s.address);
    await d.send('let me in');
    await until(() => authFailed);
    await new Promise((r) => setTimeout(r, 200));
    expect(authFailed).toBe(true);
    expect(s.got).toEqual([]);
  });

  it('a keyed server closed and another bound right after, many times over: the ZAP handler is always there to take it', async () => {
    // (Closing the last keyed server ends the process's ZAP handler; ZeroMQ frees its inproc endpoint later, in its own
    // thread, so binding it again at once once failed with "Address already in use".)
    const key = newKey();
    for (let i = 0; i < 50; i++) {
      const s = await ZmqServerTransport.bind('tcp://127.0.0.1:0', { maxMessageBytes: 1 << 20, key });
      await s.close();
    }
    const s = await server(key);
    const c = client(s.address, key);
    c.t.send(Buffer.from('ping'));
    await until(() => c.replies.length > 0);
    expect(c.replies).toEqual(['pong']);
  });

  it('a client with a key gets nothing from a server without one', async () => {
    const s = await server(null);
    const c = client(s.address, newKey());
    c.t.send(Buffer.from('ping'));
    await until(() => c.t.refused !== undefined);
    expect(s.got).toEqual([]);
    expect(c.t.refused).toMatch(/^the security handshake failed/);
  });

  it('an image server with the key serves only fetches made with it', async () => {
    const key = useClusterKey(newKey().file)!; // this process's key: the fetcher's client takes it
    const root = join(dir, 'images');
    const imageDir = await makeRankImage(root, 1024 * 1024);
    await writeManifest(imageDir, FIXTURE_META);
    const s = await ImageServer.bind('tcp://127.0.0.1:0', root, { key });
    closers.push(() => s.close());
    const into = join(dir, 'fetched', 'rank-1');
    const ok = await fetchImageDir({ from: s.address, ...FIXTURE_META, into });
    expect(ok.bytesReceived).toBe(ok.manifest.totalBytes);
    const other = await ImageServer.bind('tcp://127.0.0.1:0', root, { key: newKey() });
    closers.push(() => other.close());
    await expect(fetchImageDir({ from: other.address, ...FIXTURE_META, into: join(dir, 'refused', 'rank-1'), requestTimeoutMs: 1_500 })).rejects.toMatchObject({
      code: ErrorCode.TIMEOUT,
    });
  });

  it('key files: made owner-only and never overwritten; a file others can read, or that is no key, is refused by name', () => {
    const k = newKey();
    expect(statSync(k.file).mode & 0o777).toBe(0o600);
    expect(readClusterKey(k.file)).toEqual(k);
    expect(readFileSync(k.file, 'utf8')).toBe(`ferry-cluster-key 1\npublic ${k.publicKey}\nsecret ${k.secretKey}\n`);
    expect(() => writeNewClusterKey(k.file)).toThrow(`cannot create the key file ${k.file}: it exists (a cluster key is never overwritten)`);
    chmodSync(k.file, 0o640);
    expect(() => readClusterKey(k.file)).toThrow(`the cluster key ${k.file} can be read by others (mode 640): chmod 600 ${k.file}`);
    const bad = join(dir, 'bad.key');
    writeFileSync(bad, 'hello\n', { mode: 0o600 });
    expect(() => readClusterKey(bad)).toThrow(`${bad} is not a Ferry cluster key (ferry keygen FILE makes one)`);
    expect(() => readClusterKey(join(dir, 'none.key'))).toThrow(/cannot read the cluster key .*none\.key: .*ENOENT/);
    // Z85 as libzmq writes keys: the zeromq package's own encoder agrees with ours
    expect(z85Encode(Buffer.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b]))).toBe('HelloWorld');
  });
});
