// ZeroMQ CURVE with the cluster key (cluster-key.ts) on Ferry's sockets: the
// coordinator's and the image servers' ROUTERs are CURVE servers, the agents'
// and operator commands' DEALERs CURVE clients, all with the one key pair. CURVE
// encrypts; that a client holds the key too is checked by this process's ZAP
// handler (ZMQ RFC 27, the inproc endpoint libzmq asks), which lets in only
// clients whose public key is the cluster key's. A client with another key, or
// none, is refused during the handshake and never reaches Ferry's code.
import * as zmq from 'zeromq';
import { tracer } from '../common/trace.js';
import type { ClusterKey } from './cluster-key.js';

const trace = tracer('transport');

const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';
const ZAP_DOMAIN = 'ferry';

/** Socket options of a CURVE server with `key`; none without a key. Starts the ZAP handler first. */
export async function curveServerOptions(key: ClusterKey | null): Promise<Partial<zmq.SocketOptions<zmq.Router>>> {
  if (!key) return {};
  await zap.admit(key);
  return { curveServer: true, curvePublicKey: key.publicKey, curveSecretKey: key.secretKey, zapDomain: ZAP_DOMAIN, zapEnforceDomain: true };
}

/** Socket options of a CURVE client of a server with `key`, proving it holds that key; none without a key. */
export function curveClientOptions(key: ClusterKey | null): Partial<zmq.SocketOptions<zmq.Dealer>> {
  if (!key) return {};
  return { curveServerKey: key.publicKey, curvePublicKey: key.publicKey, curveSecretKey: key.secretKey };
}

/** A CURVE server socket closed: the ZAP handler goes with the last one (a process can then exit). */
export function curveServerClosed(key: ClusterKey | null): void {
  if (key) zap.release();
}

/** The process's ZAP handler: one per ZeroMQ context, shared by every CURVE server of the process. */
class ZapHandler {
  private router?: zmq.Router;
  private ready?: Promise<void>;
  private users = 0;
  private readonly allowed = new Set<string>();

  async admit(key: ClusterKey): Promise<void> {
    this.users++;
    this.allowed.add(key.publicKey);
    if (!this.ready) {
      const router = new zmq.Router({ linger: 0 });
      this.router = router;
      this.ready = bindZapEndpoint(router).then(
        () => void this.serve(router),
        (err: unknown) => {
          // Every server waiting on it fails to start; the next one tries again.
          router.close();
          this.router = undefined;
          this.ready = undefined;
          this.users = 0;
          throw err;
        },
      );
    }
    await this.ready;
  }

  release(): void {
    if (--this.users > 0) return;
    const router = this.router;
    this.router = undefined;
    this.ready = undefined;
    this.allowed.clear();
    // Closed, never unbound: libzmq 4.3.5 aborts the whole process (pipe.cpp:355) when an inproc endpoint is
    // unbound while the sessions of a CURVE server closed just before still end their pipes to it. It did 3 runs
    // in 4 of a stress of keyed servers opened and closed; with close alone, none in 6000 cycles.
    router?.close();
  }

  private async serve(router: zmq.Router): Promise<void> {
    try {
      for await (const [id, empty, version, requestId, domain, address, , mechanism, clientKey] of router) {
        const publicKey = mechanism?.toString() === 'CURVE' && clientKey?.length === 32 ? z85Encode(clientKey) : '';
        const ok = version?.toString() === '1.0' && domain?.toString() === ZAP_DOMAIN && this.allowed.has(publicKey);
        if (!ok) trace(`refused a ${mechanism?.toString() || 'NULL'} client from ${address?.toString() || '?'}: not the cluster key`);
        await router.send([id!, empty ?? Buffer.alloc(0), '1.0', requestId ?? '', ok ? '200' : '400', ok ? 'OK' : 'not the cluster key', '', '']);
      }
    } catch (err) {
      if (this.router === router) trace(`ZAP handler ended: ${(err as Error).message}`);
    }
  }
}

const zap = new ZapHandler();

/** How long a new ZAP handler waits for the last one's endpoint to be free. */
const ZAP_REBIND_WAIT_MS = 5_000;

/**
 * Binds the ZAP endpoint. A handler closed just before still holds it until
 * ZeroMQ's own thread has finished the close (about 10 ms here): "Address
 * already in use" until then.
 */
async function bindZapEndpoint(router: zmq.Router): Promise<void> {
  for (const end = Date.now() + ZAP_REBIND_WAIT_MS; ; ) {
    try {
      await router.bind(ZAP_ENDPOINT);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EADDRINUSE' || Date.now() >= end) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

const Z85_CHARS = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';

/** ZeroMQ's Z85 text form of a key (32 bytes -> 40 characters). */
export function z85Encode(data: Uint8Array): string {
  let out = '';
  for (let i = 0; i < data.length; i += 4) {
    let value = ((data[i]! << 24) >>> 0) + (data[i + 1]! << 16) + (data[i + 2]! << 8) + data[i + 3]!;
    let chunk = '';
    for (let k = 0; k < 5; k++) {
      chunk = Z85_CHARS[value % 85]! + chunk;
      value = Math.floor(value / 85);
    }
    out += chunk;
  }
  return out;
}
