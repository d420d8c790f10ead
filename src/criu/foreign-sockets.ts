// A rank's own connections, named for the operator when CRIU refuses to dump
// them. Ferry's MPI runtime closes every socket of its own before a dump, so a
// connected socket CRIU meets is the program's: a license server, a database,
// syslog. CRIU's error for it ("consider using --tcp-established" or
// "--ext-unix-sk") names options Ferry does not use (a connection cannot follow
// a rank to another host); its log has what the operator needs instead: the
// process, the descriptor and the address.

/** Lines of a CRIU dump log (-v4) -> one sentence on the socket it refused, or undefined. */
export function explainForeignSocket(lines: readonly string[]): string | undefined {
  const at = lines.findIndex((l) => /Connected TCP socket|External socket is used/.test(l));
  if (at < 0) return undefined;
  const tcp = /Connected TCP socket/.test(lines[at]!);
  let ino: string | undefined;
  let fd: string | undefined;
  let comm: string | undefined;
  let peer: string | undefined;
  // The line where CRIU dumped the rank's end of the socket: for TCP, the error's own place (CRIU stops in
  // the middle of the process's files); for Unix, where the ino of the runaway socket's peer was dumped.
  let from = at;
  if (!tcp) {
    const runaway = lines.slice(0, at).reverse().map((l) => /Runaway socket: ino \d+ peer_ino (\d+) .* name (\/\S+)/.exec(l)).find(Boolean);
    peer = runaway?.[2];
    const own = runaway ? lines.findIndex((l) => new RegExp(`unix: \\s*Dumping: ino ${runaway[1]}\\b`).test(l)) : -1;
    if (own > 0) {
      from = own;
      fd = /unix: Dumping unix socket at (\d+)/.exec(lines[own - 1]!)?.[1];
    }
  }
  // Back from there: the socket, its descriptor, the process whose files CRIU was dumping.
  for (let i = from - 1; i >= 0 && comm === undefined; i--) {
    const l = lines[i]!;
    ino ??= /Searching for socket (0x[0-9a-f]+)/.exec(l)?.[1];
    fd ??= /^\(\S+\) \d+ fdinfo (\d+):/.exec(l)?.[1];
    comm = /Dumping task \(pid: \d+ comm: (.*)\)/.exec(l)?.[1];
  }
  const who = comm ? `the rank's process ${comm}` : 'a process of the rank';
  const on = fd ? `, on fd ${fd},` : '';
  let what: string;
  if (tcp) {
    const collected = ino ? lines.find((l) => new RegExp(`Collected: ino\\s+${ino}\\b`).test(l)) : undefined;
    const local = collected ? /port\s+(\d+).*src_addr (\S+)/.exec(collected) : null;
    what = `a TCP connection of its own${local ? ` (from ${local[2]}:${local[1]})` : ''}`;
  } else {
    what = `a Unix socket connected to ${peer ?? 'something'} (outside the rank)`;
  }
  return (
    `${who} has${on} ${what}, which CRIU cannot dump: Ferry's MPI runtime closes its own connections before ` +
    "a dump, not the program's; close it before checkpoints, or do not checkpoint this job"
  );
}
