import { createConnection } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { ClientFrameEncoder } from '../src/asterisk/ari/ws-frames.js';

/** A real ws server decodes what the encoder writes on a raw TCP socket after a hand-made upgrade. */
let wss: WebSocketServer;
let port: number;
const received: string[] = [];
let waiters: (() => void)[] = [];
beforeAll(async () => {
  wss = new WebSocketServer({ port: 0, maxPayload: 1 << 20 });
  wss.on('connection', (s: WebSocket) => s.on('message', (d, isBinary) => {
    received.push(isBinary ? '<binary>' : d.toString());
    for (const w of waiters.splice(0)) w();
  }));
  await new Promise<void>((r) => wss.on('listening', () => r()));
  port = (wss.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((r) => wss.close(() => r())));

async function rawClient(): Promise<import('node:net').Socket> {
  const sock = createConnection(port, '127.0.0.1');
  await new Promise<void>((r) => sock.once('connect', () => r()));
  sock.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  await new Promise<void>((r) => sock.once('data', () => r()));
  return sock;
}

describe('ClientFrameEncoder', () => {
  it('frames that a WebSocket server decodes to the same text: short, 16-bit and 64-bit lengths, UTF-8, many in one write', async () => {
    const sock = await rawClient();
    const enc = new ClientFrameEncoder();
    const texts = ['', 'x', 'a'.repeat(125), 'b'.repeat(126), 'c'.repeat(65535), 'd'.repeat(65536), 'é€😀 ok', JSON.stringify({ type: 'RESTRequest', uri: 'channels/1.2/ring' })];
    received.length = 0;
    const done = new Promise<void>((r) => { waiters.push(function check() { if (received.length >= texts.length) r(); else waiters.push(check); }); });
    sock.write(Buffer.concat(texts.map((t) => enc.encodeText(t))));
    await done;
    expect(received).toEqual(texts);
    sock.destroy();
  });

  it('encodeTexts: the frames of several texts in one buffer, decoded by a WebSocket server in order', async () => {
    const sock = await rawClient();
    const enc = new ClientFrameEncoder();
    const texts = ['x', '', 'b'.repeat(126), 'é€😀', 'd'.repeat(65536), 'last'];
    received.length = 0;
    const done = new Promise<void>((r) => { waiters.push(function check() { if (received.length >= texts.length + 1) r(); else waiters.push(check); }); });
    sock.write(Buffer.concat([enc.encodeTexts(texts), enc.encodeTexts(['alone'])]));
    await done;
    expect(received).toEqual([...texts, 'alone']);
    sock.destroy();
  });

  it('masks every frame (a server refuses unmasked client frames) with keys that differ', () => {
    const enc = new ClientFrameEncoder();
    const keys = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const f = enc.encodeText('hello');
      expect(f[1]! & 0x80).toBe(0x80);
      keys.add(f.subarray(2, 6).toString('hex'));
    }
    expect(keys.size).toBeGreaterThan(2990);
  });

  it('property: any string survives encoding (decoded by hand)', () => {
    const enc = new ClientFrameEncoder();
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
      const f = enc.encodeText(text);
      expect(f[0]).toBe(0x81);
      let len = f[1]! & 0x7f;
      let at = 2;
      if (len === 126) { len = f.readUInt16BE(2); at = 4; } else if (len === 127) { len = f.readUInt32BE(6); at = 10; }
      const mask = f.subarray(at, at + 4);
      const payload = Buffer.from(f.subarray(at + 4));
      for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
      expect(payload.length).toBe(len);
      expect(payload.toString('utf8')).toBe(Buffer.from(text, 'utf8').toString('utf8'));
    }));
  });
});
