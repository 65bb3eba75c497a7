/**
 * One WebSocket frame as a server writes it (RFC 6455 §5.2), made by hand for tests: unmasked
 * unless `mask`; `lengthBytes` forces the 16- or 64-bit length form.
 */
export function serverFrame(opcode: number, payload: Buffer, opts: { fin?: boolean; rsv?: number; lengthBytes?: 0 | 2 | 8; mask?: boolean } = {}): Buffer {
  const n = payload.length;
  const lengthBytes = opts.lengthBytes ?? (n < 126 ? 0 : n < 65536 ? 2 : 8);
  const head = Buffer.alloc(2 + lengthBytes + (opts.mask ? 4 : 0));
  head[0] = (opts.fin === false ? 0 : 0x80) | (opts.rsv ?? 0) | opcode;
  if (lengthBytes === 0) head[1] = n;
  else if (lengthBytes === 2) { head[1] = 126; head.writeUInt16BE(n, 2); } else { head[1] = 127; head.writeUInt32BE(Math.floor(n / 2 ** 32), 2); head.writeUInt32BE(n >>> 0, 6); }
  if (!opts.mask) return Buffer.concat([head, payload]);
  head[1] |= 0x80;
  const key = Buffer.from([1, 2, 3, 4]);
  key.copy(head, 2 + lengthBytes);
  const masked = Buffer.from(payload.map((b, i) => b ^ key[i & 3]!));
  return Buffer.concat([head, masked]);
}
