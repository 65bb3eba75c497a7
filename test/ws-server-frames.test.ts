/**
 * ServerFrameParser (src/asterisk/ari/ws-frames.ts) against two references: the messages the
 * frames were built from by hand, and ws@6's own Receiver (the one ari-client uses) fed the same
 * bytes. Frames are split at arbitrary byte boundaries, packed several to a chunk, fragmented, with
 * control frames between the fragments, 7-, 16- and 64-bit lengths, multi-byte UTF-8 split across
 * chunks.
 */
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ServerFrameParser, type ServerFrameLimits } from '../src/asterisk/ari/ws-frames.js';
import { serverFrame as frame } from './helpers/ws-frame.js';

const requireFromAri = createRequire(new URL('../node_modules/ari-client/lib/client.js', import.meta.url));
type WsReceiver = { on(name: string, fn: (...a: unknown[]) => void): void; write(b: Buffer): boolean };
const Receiver = requireFromAri('ws/lib/receiver.js') as new (binaryType: string, ext: object, maxPayload: number, maxChunks: number, maxFragments: number) => WsReceiver;

type Out = { kind: 'text'; value: string } | { kind: 'binary'; value: string } | { kind: 'control'; opcode: number; payload: string } | { kind: 'handBack'; bytes: string };

function parse(chunks: Buffer[], limits: Partial<ServerFrameLimits> = {}): Out[] {
  const out: Out[] = [];
  const p = new ServerFrameParser({
    text: (value) => out.push({ kind: 'text', value }),
    binary: (value) => out.push({ kind: 'binary', value: value.toString('hex') }),
    control: (f) => out.push({ kind: 'control', opcode: f[0]! & 0x0f, payload: f.subarray(2).toString('hex') }),
    handBack: (raw) => out.push({ kind: 'handBack', bytes: Buffer.concat(raw).toString('hex') }),
  }, limits);
  for (const c of chunks) p.push(c);
  return out;
}

/** ws@6's Receiver on the same bytes: messages and control frames, in order. */
function wsReference(chunks: Buffer[]): Out[] {
  const out: Out[] = [];
  const r = new Receiver('nodebuffer', {}, 100 * 1024 * 1024, 256 * 1024, 16 * 1024);
  r.on('message', (m) => out.push(typeof m === 'string' ? { kind: 'text', value: m } : { kind: 'binary', value: (m as Buffer).toString('hex') }));
  r.on('ping', (d) => out.push({ kind: 'control', opcode: 9, payload: (d as Buffer).toString('hex') }));
  r.on('pong', (d) => out.push({ kind: 'control', opcode: 10, payload: (d as Buffer).toString('hex') }));
  r.on('conclude', () => undefined);
  r.on('error', () => undefined);
  for (const c of chunks) r.write(c);
  return out;
}

/** `bytes` cut at the given positions. */
function cut(bytes: Buffer, positions: number[]): Buffer[] {
  const at = [...new Set(positions.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of at) { chunks.push(bytes.subarray(from, p)); from = p; }
  chunks.push(bytes.subarray(from));
  return chunks;
}

// Text with multi-byte UTF-8 (2, 3 and 4 bytes) so that chunk and fragment cuts land inside characters.
const textArb = fc.oneof(
  fc.string({ unit: fc.constantFrom('a', '{', '"', 'é', 'ß', '€', '日', '😀', '\u0000'), maxLength: 200 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.integer({ min: 126, max: 70_000 }).map((n) => '€x'.repeat(Math.ceil(n / 4)).slice(0, Math.ceil(n / 2))),
);
const messageArb = fc.oneof(
  { weight: 4, arbitrary: textArb.map((value) => ({ kind: 'text' as const, value })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => ({ kind: 'binary' as const, value: Buffer.from(b).toString('hex') })) },
);
const controlArb = fc.record({ opcode: fc.constantFrom(9, 10), payload: fc.uint8Array({ maxLength: 125 }) });

/** A message as frames: payload cut into fragments (cut points may split characters), control frames between. */
const scriptArb = fc.array(fc.record({
  message: messageArb,
  fragmentCuts: fc.array(fc.nat(), { maxLength: 4 }),
  controls: fc.array(fc.tuple(fc.nat(), controlArb), { maxLength: 3 }),
  longLengths: fc.boolean(),
}), { minLength: 1, maxLength: 8 });

type Script = { message: { kind: 'text' | 'binary'; value: string }; fragmentCuts: number[]; controls: [number, { opcode: number; payload: Uint8Array }][]; longLengths: boolean }[];

function build(script: Script): { bytes: Buffer; expected: Out[] } {
  const frames: Buffer[] = [];
  const expected: Out[] = [];
  for (const s of script) {
    const payload = s.message.kind === 'text' ? Buffer.from(s.message.value, 'utf8') : Buffer.from(s.message.value, 'hex');
    const pieces = cut(payload, s.fragmentCuts);
    const controlsAt = new Map<number, { opcode: number; payload: Uint8Array }[]>();
    for (const [at, c] of s.controls) {
      const i = pieces.length > 1 ? 1 + (at % (pieces.length - 1)) : -1; // only between fragments
      if (i < 0) continue;
      controlsAt.set(i, [...(controlsAt.get(i) ?? []), c]);
    }
    pieces.forEach((piece, i) => {
      for (const c of controlsAt.get(i) ?? []) {
        frames.push(frame(c.opcode, Buffer.from(c.payload)));
        expected.push({ kind: 'control', opcode: c.opcode, payload: Buffer.from(c.payload).toString('hex') });
      }
      const opcode = i === 0 ? (s.message.kind === 'text' ? 1 : 2) : 0;
      const lengthBytes = s.longLengths ? (piece.length % 2 ? 8 : 2) : undefined;
      frames.push(frame(opcode, piece, { fin: i === pieces.length - 1, ...(lengthBytes !== undefined && piece.length < 65536 ? { lengthBytes } : {}) }));
    });
    expected.push(s.message);
  }
  return { bytes: Buffer.concat(frames), expected };
}

describe('ServerFrameParser', () => {
  it('property: any framing, fragmentation and chunking gives the messages and control frames in order, as ws@6 does', () => {
    fc.assert(fc.property(scriptArb, fc.array(fc.nat(), { maxLength: 30 }), (script, cuts) => {
      const { bytes, expected } = build(script);
      const chunks = cut(bytes, cuts);
      const got = parse(chunks);
      expect(got).toEqual(expected);
      expect(got).toEqual(wsReference(chunks));
    }), { numRuns: 300 });
  });

  it('several frames in one chunk, then a frame split one byte at a time', () => {
    const a = frame(1, Buffer.from('{"type":"StasisStart"}'));
    const b = frame(1, Buffer.from('x'.repeat(300))); // 16-bit length
    const c = frame(1, Buffer.from('日本'));
    const chunks = [Buffer.concat([a, b]), ...[...c].map((byte) => Buffer.from([byte]))];
    expect(parse(chunks)).toEqual([
      { kind: 'text', value: '{"type":"StasisStart"}' }, { kind: 'text', value: 'x'.repeat(300) }, { kind: 'text', value: '日本' },
    ]);
  });

  it('64-bit lengths, including a non-minimal one for a short payload (as ws@6 accepts)', () => {
    const big = 'é'.repeat(40_000); // 80,000 bytes
    const chunks = cut(Buffer.concat([frame(1, Buffer.from(big)), frame(1, Buffer.from('short'), { lengthBytes: 8 })]), [3, 9, 65_536, 70_001]);
    expect(parse(chunks)).toEqual([{ kind: 'text', value: big }, { kind: 'text', value: 'short' }]);
    expect(wsReference(chunks)).toEqual(parse(chunks));
  });

  it('hands back, with every byte of the message in progress, what ws@6 must decide about', () => {
    const ok = frame(1, Buffer.from('before'));
    const first = frame(1, Buffer.from('frag'), { fin: false });
    const cases: [string, Buffer][] = [
      ['RSV1 (permessage-deflate)', frame(1, Buffer.from('x'), { rsv: 0x40 })],
      ['a masked frame', frame(1, Buffer.from('masked'), { mask: true })],
      ['an unknown opcode', frame(3, Buffer.from('x'))],
      ['a continuation without a start', frame(0, Buffer.from('x'))],
      ['a fragmented ping', frame(9, Buffer.from('p'), { fin: false })],
      ['a 126-byte ping', frame(9, Buffer.alloc(126))],
      ['a 64-bit length over 2^53', Buffer.from([0x81, 127, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])],
      ['text that is not UTF-8', frame(1, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))],
    ];
    for (const [what, bad] of cases) {
      const after = frame(1, Buffer.from('after'));
      const got = parse(cut(Buffer.concat([ok, bad, after]), [ok.length + 1]));
      expect(got, what).toEqual([{ kind: 'text', value: 'before' }, { kind: 'handBack', bytes: Buffer.concat([bad, after]).toString('hex') }]);
    }
    // A new message while one is in progress: the fragments so far go back too.
    const second = frame(1, Buffer.from('oops'));
    expect(parse([ok, first, second])).toEqual([{ kind: 'text', value: 'before' }, { kind: 'handBack', bytes: Buffer.concat([first, second]).toString('hex') }]);
    // Over the limits.
    expect(parse([frame(1, Buffer.from('0123456789'))], { maxPayload: 9 })).toEqual([{ kind: 'handBack', bytes: frame(1, Buffer.from('0123456789')).toString('hex') }]);
    const three = [frame(1, Buffer.from('a'), { fin: false }), frame(0, Buffer.from('b'), { fin: false }), frame(0, Buffer.from('c'))];
    expect(parse(three, { maxFragments: 2 })).toEqual([{ kind: 'handBack', bytes: Buffer.concat(three).toString('hex') }]);
    expect(parse(three, { maxFragments: 3 })).toEqual([{ kind: 'text', value: 'abc' }]);
  });

  it('takes no input after a hand-back or stop()', () => {
    const out: string[] = [];
    const p = new ServerFrameParser({ text: (t) => out.push(t), binary: () => undefined, control: () => undefined, handBack: () => out.push('handBack') });
    p.push(frame(1, Buffer.from('x'), { rsv: 0x40 }));
    p.push(frame(1, Buffer.from('ignored')));
    expect(out).toEqual(['handBack']);
    expect(p.active).toBe(false);
    const q = new ServerFrameParser({ text: (t) => { out.push(t); q.stop(); }, binary: () => undefined, control: () => undefined, handBack: () => out.push('handBack') });
    q.push(Buffer.concat([frame(1, Buffer.from('one')), frame(1, Buffer.from('two'))]));
    expect(out).toEqual(['handBack', 'one']);
  });

  it('a text payload holding U+FFFD itself is delivered (only invalid UTF-8 goes back)', () => {
    expect(parse([frame(1, Buffer.from('a\ufffdb'))])).toEqual([{ kind: 'text', value: 'a\ufffdb' }]);
  });
});
