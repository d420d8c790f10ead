// The Debian CRIU builds Ferry can provision, in the order they are tried.
//
// Debian 12's CRIU 3.17 fails `criu check` on current kernels, and 4.x needs
// glibc 2.38+, so CRIU is unpacked with its own libc and loader into a
// private prefix (see FACTS.md). Debian 13's 4.1 is tried first (a stable
// release). On some hosts it passes `criu check` yet every dump hangs when
// CRIU removes its parasite (seen under a paravirtualised kernel where
// hardware breakpoints do not work: 4.1 relies on them, 4.2 checks them
// first), so a build counts as working only after a real dump (criu-dump-check.ts)
// and the next build is tried when it fails.
export interface CriuBuild {
  /** Folder under the cache (and name of its lock file). */
  cacheName: string;
  /** Debian suite it comes from. */
  suite: string;
  /** criu's dependency closure minus what a minimal system of any release already provides compatibly. */
  packages: readonly string[];
}

const COMMON_PACKAGES = [
  'criu', 'libcompel1', 'libc6', 'libgnutls30t64', 'libnftables1', 'libprotobuf-c1',
  'libnl-3-200', 'libbsd0', 'libuuid1', 'libp11-kit0', 'libidn2-0', 'libunistring5',
  'libtasn1-6', 'libnettle8t64', 'libhogweed6t64', 'libgmp10', 'libmnl0', 'libnftnl11',
  'libjansson4', 'libxtables12', 'libedit2', 'libmd0', 'libffi8', 'libbrotli1', 'libzstd1',
  'libtinfo6', 'libgcc-s1',
] as const;

export const CRIU_BUILDS: readonly CriuBuild[] = [
  { cacheName: 'criu-4.1', suite: 'trixie', packages: [...COMMON_PACKAGES, 'libnet1'] },
  { cacheName: 'criu-4.2', suite: 'sid', packages: [...COMMON_PACKAGES, 'libnet9'] },
];
