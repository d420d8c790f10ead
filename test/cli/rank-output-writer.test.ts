import { describe, expect, it } from 'vitest';
import { RankOutputWriter } from '../../src/cli/rank-output-writer.js';
import { RankOutput_Stream } from '../../src/gen/proto.js';

function collect(tag: boolean) {
  const out: string[] = [];
  const w = new RankOutputWriter(tag, (stream, data) => out.push(`${stream}:${data.toString()}`));
  return { w, out };
}

describe('rank output writer', () => {
  it('tags whole lines and holds partial ones until their newline', () => {
    const { w, out } = collect(true);
    w.write(1, RankOutput_Stream.STDOUT, Buffer.from('he'));
    w.write(0, RankOutput_Stream.STDOUT, Buffer.from('a\nb'));
    w.write(1, RankOutput_Stream.STDOUT, Buffer.from('llo\nworld\n'));
    w.write(0, RankOutput_Stream.STDERR, Buffer.from('err\n'));
    w.flush();
    expect(out).toEqual(['0:[0] a\n', '0:[1] hello\n[1] world\n', '1:[0] err\n', '0:[0] b\n']);
  });

  it('passes bytes through untouched when not tagging', () => {
    const { w, out } = collect(false);
    w.write(3, RankOutput_Stream.STDOUT, Buffer.from('x'));
    w.flush();
    expect(out).toEqual(['0:x']);
  });

  it('says a chunk is written once its lines are out, and at once for a partial line it keeps', () => {
    const outs: (() => void)[] = [];
    const w = new RankOutputWriter(true, (_stream, _data, written) => outs.push(written));
    const done: string[] = [];
    w.write(0, RankOutput_Stream.STDOUT, Buffer.from('part'), () => done.push('part'));
    expect(done).toEqual(['part']);
    w.write(0, RankOutput_Stream.STDOUT, Buffer.from('ial\n'), () => done.push('line'));
    expect(done).toEqual(['part']); // not until the output took it
    outs.forEach((written) => written());
    expect(done).toEqual(['part', 'line']);
  });

});
