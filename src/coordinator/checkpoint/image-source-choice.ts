// Where a restart or migration target gets one rank's image. Pure: it sees the
// image (who wrote it, into which image store) and the hosts the coordinator
// knows, and answers the ImageSource for FETCH, or why there is none.
//
// In order of preference:
//   1. the target reads it in place: it is the host that wrote it, or its
//      images directory is the same store (a shared directory): no transfer,
//      and this works while the writer is down;
//   2. the target fetches it from the writer's image server, if that is up;
//   3. the target fetches it from another live host that sees the same store
//      (its image server serves that shared directory);
//   4. the same three for each stored replica of the image (image-replication.ts):
//      read in place where the target holds it, else fetched from a live host
//      that holds it;
//   5. none: the image is unreachable (the restart is refused before anything
//      starts).
import type { ImageSourceInit } from '../../gen/proto.js';
import type { HostDrain } from '../catalog-types.js';

export interface StoredImage {
  rank: number;
  epoch: number;
  /** The host that wrote it. */
  host: string;
  location: string;
  manifestSha256: string;
  /** The image store it was written to; '': not known (only its host reads it). */
  imageStore: string;
  /** Hosts holding a verified replica of it, in the same place under their images directory. */
  replicaHosts?: readonly string[];
  /**
   * The writer's copy is gone (its host was forgotten: a node that later takes
   * its name has an empty disk): only the replicas hold the image.
   */
  originalGone?: boolean;
}

export interface ImageSourceHost {
  name: string;
  state: string;
  imageServer: string;
  imageStore?: string;
  /** Set for a drained host (ferry drain): it serves its images but takes no new copies. */
  drained?: HostDrain;
}

export type ImageSourceChoice =
  | { source: ImageSourceInit; inPlace: boolean }
  /** `note`: for an image of a known store, that no live host sees it either. */
  | { source: undefined; why: string; note: string };

/** Where the image is: the writer's copy (unless gone), then each replica, with the image store each is in. */
export function copiesOf(image: StoredImage, hosts: readonly ImageSourceHost[]): { host: string; imageStore: string }[] {
  return [
    ...(image.originalGone ? [] : [{ host: image.host, imageStore: image.imageStore }]),
    ...(image.replicaHosts ?? []).map((name) => ({ host: name, imageStore: hosts.find((h) => h.name === name)?.imageStore ?? '' })),
  ];
}

/** True when `host` sees the directory `image` was written into. */
export function seesImage(host: ImageSourceHost, image: StoredImage): boolean {
  return image.imageStore ? host.imageStore === image.imageStore : host.name === image.host;
}

export function chooseImageSource(image: StoredImage, target: ImageSourceHost, hosts: readonly ImageSourceHost[]): ImageSourceChoice {
  const base = {
    rank: image.rank,
    location: image.location,
    manifest_sha256: image.manifestSha256,
    epoch: image.epoch,
    image_store: image.imageStore,
  };
  const copies = copiesOf(image, hosts);
  for (const copy of copies) {
    if (seesImage(target, { ...image, ...copy })) return { source: { ...base, host: copy.host, server: '', image_store: copy.imageStore }, inPlace: true };
  }
  for (const copy of copies) {
    const holder = hosts.find((h) => h.name === copy.host);
    const others = hosts.filter((h) => h.name !== copy.host).sort((a, b) => a.name.localeCompare(b.name));
    const server = [...(holder ? [holder] : []), ...others].find(
      (h) => h.name !== target.name && h.state === 'up' && h.imageServer !== '' && seesImage(h, { ...image, ...copy }),
    );
    if (server) return { source: { ...base, host: server.name, server: server.imageServer, image_store: copy.imageStore }, inPlace: false };
  }
  const stateOf = (name: string) => {
    const h = hosts.find((x) => x.name === name);
    return h ? (h.state === 'up' && !h.imageServer ? 'up without an image server' : h.state) : 'unknown';
  };
  const replicas = image.originalGone ? copies : copies.slice(1);
  const replicasToo = replicas.length === 0 ? 'and there is no other copy' : `and its replicas on ${replicas.map((r) => `host ${r.host} (${stateOf(r.host)})`).join(', ')} cannot be reached either`;
  return {
    source: undefined,
    why: image.originalGone
      ? `the image of rank ${image.rank} went with host ${image.host}, which was forgotten, ${replicasToo}`
      : `the image of rank ${image.rank} is on host ${image.host}, which is ${stateOf(image.host)}, ${replicasToo}`,
    note: image.imageStore ? `no live host shares its image store ${image.imageStore}` : '',
  };
}
