/**
 * A StasisStart's channel id and arguments, read from the start of the event's text without
 * parsing the rest: what the DID workflow needs to send a call's first action (ring the agent, or
 * answer before voicemail) while the events of a burst are still being read. AriClient parses the
 * whole event later, in order with the others (see AriClient.previewStasisStarts).
 */
export interface StasisStartPreview {
  channelId: string;
  args: string[];
}

/**
 * Reads `{"type":"StasisStart","timestamp":"…","args":[…],"channel":{"id":"…"` — the order in
 * which Asterisk 20 and 22 write a StasisStart (JSON whitespace between tokens is allowed, so
 * ari.conf's `format = pretty` reads too). Undefined for any other event and for anything it
 * does not read exactly: another key order, a string with an escape or a control character, a
 * non-string argument. The caller then parses the text as usual, so a text read here is never
 * read differently: JSON.parse gives the same id and arguments for it (test/stasis-preview).
 */
export function previewStasisStart(text: string): StasisStartPreview | undefined {
  const r = new Reader(text);
  if (!r.punct(123 /* { */) || !r.key('type') || r.string() !== 'StasisStart' || !r.punct(44 /* , */)) return undefined;
  if (!r.key('timestamp') || r.string() === undefined || !r.punct(44) || !r.key('args') || !r.punct(91 /* [ */)) return undefined;
  const args: string[] = [];
  if (!r.punct(93 /* ] */)) {
    for (;;) {
      const a = r.string();
      if (a === undefined) return undefined;
      args.push(a);
      if (r.punct(93)) break;
      if (!r.punct(44)) return undefined;
    }
  }
  if (!r.punct(44) || !r.key('channel') || !r.punct(123) || !r.key('id')) return undefined;
  const channelId = r.string();
  if (channelId === undefined || channelId === '') return undefined;
  return { channelId, args };
}

class Reader {
  private i = 0;
  constructor(private readonly text: string) {}

  private skipSpace(): void {
    const t = this.text;
    let c = t.charCodeAt(this.i);
    while (c === 32 || c === 10 || c === 13 || c === 9) c = t.charCodeAt(++this.i);
  }

  /** One punctuation character (after optional whitespace). */
  punct(code: number): boolean {
    this.skipSpace();
    if (this.text.charCodeAt(this.i) !== code) return false;
    this.i++;
    return true;
  }

  /** `"name":` */
  key(name: string): boolean {
    return this.string() === name && this.punct(58 /* : */);
  }

  /** A string without escapes or control characters (undefined otherwise, or if none is here). */
  string(): string | undefined {
    this.skipSpace();
    const t = this.text;
    if (t.charCodeAt(this.i) !== 34 /* " */) return undefined;
    const start = this.i + 1;
    let j = start;
    for (;;) {
      const c = t.charCodeAt(j);
      if (c === 34) break;
      // An escape, a control character (not valid JSON), or the end of the text (NaN).
      if (c === 92 || !(c >= 32)) return undefined;
      j++;
    }
    this.i = j + 1;
    return t.slice(start, j);
  }
}
