// A command whose standard output is closed under it (`ferry events --follow |
// head`, `ferry run ... | less` quit early) ends quietly, as other Unix tools
// do at SIGPIPE (status 141), instead of with Node's EPIPE stack trace. A
// command may leave a line for stderr first (ferry run: its job runs on).
let note = '';

/** What to say on stderr if stdout closes from now on ('' for nothing). */
export function noteForClosedStdout(text: string): void {
  note = text;
}

export function endQuietlyWhenStdoutCloses(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    if (note) process.stderr.write(`${note}\n`);
    process.exit(128 + 13);
  });
}
