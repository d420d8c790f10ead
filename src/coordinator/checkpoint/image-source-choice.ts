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
//   4. none: the image is unreachable (the restart is refused before anything
//      starts).
import type { ImageSourceInit } from '../../gen/proto.js';

export interface StoredImage {
  rank: number;
  epoch: number;
  /** The host that wrote it. */
  host: string;
  location: string;
  manifestSha256: string;
  /** The image store it was written to; '': not known (only its host reads it). */
  imageStore: string;
}

export interface ImageSourceHost {
  name: string;
  state: string;
  imageServer: string;
  imageStore?: string;
}

export type ImageSourceChoice =
  | { source: ImageSourceInit; inPlace: boolean }
  /** `note`: for an image of a known store, that no live host sees it either. */
  | { source: undefined; why: string; note: string };

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
  if (seesImage(target, image)) return { source: { ...base, host: image.host, server: '' }, inPlace: true };
  const writer = hosts.find((h) => h.name === image.host);
  const others = hosts.filter((h) => h.name !== image.host).sort((a, b) => a.name.localeCompare(b.name));
  const server = [...(writer ? [writer] : []), ...others].find(
    (h) => h.name !== target.name && h.state === 'up' && h.imageServer !== '' && seesImage(h, image),
  );
  if (server) return { source: { ...base, host: server.name, server: server.imageServer }, inPlace: false };
  const writerState = writer ? (writer.state === 'up' && !writer.imageServer ? 'up without an image server' : writer.state) : 'unknown';
  return {
    source: undefined,
    why: `the image of rank ${image.rank} is on host ${image.host}, which is ${writerState}, and there is no other copy`,
    note: image.imageStore ? `no live host shares its image store ${image.imageStore}` : '',
  };
}
