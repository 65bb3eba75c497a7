/**
 * Client-to-server WebSocket text frames (RFC 6455 §5.2: FIN, opcode 1, masked payload), built
 * here so that the RESTRequest frames of one turn of the event loop leave in one socket write.
 * Sending them through ws@6 (ari-client's WebSocket) cost 9-17 µs per frame on this machine, even
 * corked (two writes, a callback and a fresh random mask per frame); this is ~1 µs.
 *
 * Mask keys come from crypto.randomFillSync, drawn 1024 keys at a time.
 */
import { isUtf8 } from 'node:buffer';
import { randomFillSync } from 'node:crypto';

const POOL_KEYS = 1024;

/** Bytes of a masked client frame with this payload: header (2, 4 or 10), mask key (4), payload. */
function frameLength(payloadLength: number): number {
  return (payloadLength < 126 ? 2 : payloadLength < 65536 ? 4 : 10) + 4 + payloadLength;
}

export class ClientFrameEncoder {
  private pool = Buffer.alloc(POOL_KEYS * 4);
  private next = POOL_KEYS;

  /** One complete masked text frame carrying `text` (UTF-8). */
  encodeText(text: string): Buffer {
    const payloadLength = Buffer.byteLength(text, 'utf8');
    const frame = Buffer.allocUnsafe(frameLength(payloadLength));
    this.writeFrame(frame, 0, text, payloadLength);
    return frame;
  }

  /**
   * The frames of several texts, in order, in one buffer (one allocation for the frames of a turn
   * instead of one each and a copy into a joined buffer).
   */
  encodeTexts(texts: readonly string[]): Buffer {
    if (texts.length === 1) return this.encodeText(texts[0]!);
    const lengths = this.lengths;
    let total = 0;
    for (let i = 0; i < texts.length; i++) {
      const n = Buffer.byteLength(texts[i]!, 'utf8');
      lengths[i] = n;
      total += frameLength(n);
    }
    const out = Buffer.allocUnsafe(total);
    let at = 0;
    for (let i = 0; i < texts.length; i++) at = this.writeFrame(out, at, texts[i]!, lengths[i]!);
    lengths.length = 0;
    return out;
  }

  private readonly lengths: number[] = [];

  /** Writes one frame at `start`; returns where it ends. */
  private writeFrame(frame: Buffer, start: number, text: string, payloadLength: number): number {
    const lengthBytes = payloadLength < 126 ? 0 : payloadLength < 65536 ? 2 : 8;
    frame[start] = 0x81; // FIN + text
    if (lengthBytes === 0) frame[start + 1] = 0x80 | payloadLength;
    else if (lengthBytes === 2) {
      frame[start + 1] = 0x80 | 126;
      frame.writeUInt16BE(payloadLength, start + 2);
    } else {
      frame[start + 1] = 0x80 | 127;
      frame.writeUInt32BE(Math.floor(payloadLength / 2 ** 32), start + 2);
      frame.writeUInt32BE(payloadLength >>> 0, start + 6);
    }
    const maskAt = start + 2 + lengthBytes;
    const header = maskAt + 4;
    this.maskKey(frame, maskAt);
    frame.write(text, header, 'utf8');
    const m0 = frame[maskAt]!, m1 = frame[maskAt + 1]!, m2 = frame[maskAt + 2]!, m3 = frame[maskAt + 3]!;
    for (let i = 0; i < payloadLength; i++) {
      const k = i & 3;
      frame[header + i] ^= k === 0 ? m0 : k === 1 ? m1 : k === 2 ? m2 : m3;
    }
    return header + payloadLength;
  }

  private maskKey(into: Buffer, at: number): void {
    if (this.next === POOL_KEYS) {
      randomFillSync(this.pool);
      this.next = 0;
    }
    this.pool.copy(into, at, this.next * 4, this.next * 4 + 4);
    this.next++;
  }
}

/**
 * What ServerFrameParser hands on. Control frames go on whole (header and payload, as they came),
 * so that ws@6's own Receiver, which holds no state between frames, answers them as it always did
 * (ping → pong, pong, the close handshake).
 */
export interface ServerFrameSink {
  /** A whole text message (fragments joined), decoded as UTF-8. */
  text(message: string): void;
  /** A whole binary message (fragments joined). */
  binary(message: Buffer): void;
  /** One ping, pong or close frame, raw. */
  control(frame: Buffer): void;
  /**
   * The parser met something it leaves to ws@6's Receiver: a reserved bit (an extension), a masked
   * or malformed frame, a payload over the limit, or text that is not valid UTF-8. `raw` holds
   * every byte not handed on yet, from the first frame of the message in progress, in arrival
   * order; the parser is done and takes no more input.
   */
  handBack(raw: Buffer[]): void;
}

export interface ServerFrameLimits {
  /** Largest message payload (ws@6's client default: 100 MiB). */
  maxPayload: number;
  /** Most data frames in one message (ws@6's client default: 16384). */
  maxFragments: number;
}

const DEFAULT_LIMITS: ServerFrameLimits = { maxPayload: 100 * 1024 * 1024, maxFragments: 16 * 1024 };
/** 2^53 - 1 >> 32: the largest high word of a 64-bit length that a JS number holds exactly. */
const MAX_HIGH_WORD = 2 ** 21 - 1;

/**
 * Server-to-client WebSocket frames (RFC 6455 §5) from the raw socket: unmasked frames with 7-,
 * 16- or 64-bit lengths, text and binary messages, fragmented with continuation frames, control
 * frames between the fragments. Frames may be split across socket reads or packed several to a
 * read. A frame held whole in one read costs a header check and one UTF-8 decode of its payload
 * (no copy, no stream, no event emitter), which ws@6's Receiver (a Writable stream that slices,
 * concatenates and emits every frame) did not.
 *
 * Anything it does not handle (see ServerFrameSink.handBack) goes back to ws@6 with every byte
 * of the message in progress, so that ws reacts exactly as it would have (an error and close code
 * 1002/1007/1008/1009, or, for frames it accepts such as masked ones, delivering them).
 */
export class ServerFrameParser {
  /** Bytes of an incomplete frame (the end of one read), waiting for more. */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Bytes needed before the held frame can be looked at again. */
  private need = 0;
  /** The message in progress: its opcode (0: none), payload pieces, raw frames (for handBack). */
  private fragOpcode = 0;
  private fragments: Buffer[] = [];
  private fragmentBytes = 0;
  private fragmentRaw: Buffer[] = [];
  private done = false;
  private readonly limits: ServerFrameLimits;

  constructor(private readonly sink: ServerFrameSink, limits: Partial<ServerFrameLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** False once the input was handed back or stop() was called. */
  get active(): boolean { return !this.done; }

  /** Takes no more input (the socket is closing). */
  stop(): void {
    this.done = true;
    this.held = [];
    this.heldBytes = 0;
    this.fragments = [];
    this.fragmentRaw = [];
  }

  push(chunk: Buffer): void {
    if (this.done || chunk.length === 0) return;
    if (this.heldBytes === 0) {
      this.parse(chunk);
      return;
    }
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    if (this.heldBytes < this.need) return;
    const all = this.held.length === 1 ? this.held[0]! : Buffer.concat(this.held, this.heldBytes);
    this.held = [];
    this.heldBytes = 0;
    this.parse(all);
  }

  private parse(buf: Buffer): void {
    const end = buf.length;
    let at = 0;
    while (at < end) {
      if (end - at < 2) { this.hold(buf, at, 2); return; }
      const b0 = buf[at]!;
      const b1 = buf[at + 1]!;
      const opcode = b0 & 0x0f;
      const fin = (b0 & 0x80) !== 0;
      // Reserved bits (an extension such as permessage-deflate) or a masked frame: ws's business.
      if ((b0 & 0x70) !== 0 || (b1 & 0x80) !== 0) { this.giveBack(buf, at); return; }
      let length = b1 & 0x7f;
      let header = 2;
      if (length === 126) {
        if (end - at < 4) { this.hold(buf, at, 4); return; }
        length = buf.readUInt16BE(at + 2);
        header = 4;
      } else if (length === 127) {
        if (end - at < 10) { this.hold(buf, at, 10); return; }
        const high = buf.readUInt32BE(at + 2);
        if (high > MAX_HIGH_WORD) { this.giveBack(buf, at); return; }
        length = high * 2 ** 32 + buf.readUInt32BE(at + 6);
        header = 10;
      }
      if (opcode >= 0x08) {
        if (opcode > 0x0a || !fin || length > 125) { this.giveBack(buf, at); return; }
      } else if (opcode === 0x00 ? this.fragOpcode === 0 : opcode > 0x02 || this.fragOpcode !== 0) {
        this.giveBack(buf, at);
        return;
      } else if (this.fragmentBytes + length > this.limits.maxPayload || this.fragmentRaw.length + 1 > this.limits.maxFragments) {
        this.giveBack(buf, at);
        return;
      }
      const frameEnd = at + header + length;
      if (frameEnd > end) { this.hold(buf, at, header + length); return; }
      const start = at + header;
      if (opcode >= 0x08) {
        this.sink.control(buf.subarray(at, frameEnd));
        if (this.done) return;
      } else if (fin && opcode !== 0x00) {
        if (!this.deliver(opcode, buf, start, frameEnd)) { this.giveBack(buf, at); return; }
        if (this.done) return;
      } else {
        if (opcode !== 0x00) this.fragOpcode = opcode;
        this.fragments.push(buf.subarray(start, frameEnd));
        this.fragmentBytes += length;
        this.fragmentRaw.push(buf.subarray(at, frameEnd));
        if (fin) {
          const op = this.fragOpcode;
          const payload = this.fragments.length === 1 ? this.fragments[0]! : Buffer.concat(this.fragments, this.fragmentBytes);
          if (!this.deliver(op, payload, 0, payload.length)) { this.giveBack(buf, frameEnd); return; }
          this.fragOpcode = 0;
          this.fragments = [];
          this.fragmentBytes = 0;
          this.fragmentRaw = [];
          if (this.done) return;
        }
      }
      at = frameEnd;
    }
  }

  /** Hands a whole message on; false (nothing handed on) for text that is not valid UTF-8, which ws decides about. */
  private deliver(opcode: number, buf: Buffer, start: number, end: number): boolean {
    if (opcode === 0x02) {
      this.sink.binary(buf.subarray(start, end));
      return true;
    }
    const text = buf.toString('utf8', start, end);
    // A replacement character in the text: either Asterisk sent one or the bytes were not UTF-8.
    if (text.includes('\ufffd') && !isUtf8(buf.subarray(start, end))) return false;
    this.sink.text(text);
    return true;
  }

  private hold(buf: Buffer, at: number, need: number): void {
    this.held = [at === 0 ? buf : buf.subarray(at)];
    this.heldBytes = buf.length - at;
    this.need = need;
  }

  /** Hands everything from the message in progress (or from `at`) back, and stops. */
  private giveBack(buf: Buffer, at: number): void {
    const raw = [...this.fragmentRaw];
    if (at < buf.length) raw.push(at === 0 ? buf : buf.subarray(at));
    this.stop();
    this.sink.handBack(raw);
  }
}
