/**
 * previewStasisStart reads a StasisStart's channel id and args from the start of its text, as
 * Asterisk writes it; whatever it reads, JSON.parse reads the same, and it reads every StasisStart
 * Asterisk can write whose id and args need no escape.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { previewStasisStart } from '../src/asterisk/ari/stasis-preview.js';
import { asteriskEvent } from '../src/testkit/ari-protocol.js';

/** A StasisStart as Asterisk 22.10.1 wrote it (captured; keys in its order). */
const REAL = {
  type: 'StasisStart',
  timestamp: '2026-11-22T01:21:24.300+0000',
  args: ['+61290000001'],
  channel: {
    id: 'asterisk-1795310484.4', name: 'PJSIP/sipp-trunk-00000004', state: 'Ring', protocol_id: '1-22096@127.0.0.2',
    caller: { name: 'Test Caller', number: '+61400000000' }, connected: { name: '', number: '' }, accountcode: '',
    dialplan: { context: 'from-trunk', exten: '+61290000001', priority: 1, app_name: 'Stasis', app_data: 'switchboard,+61290000001' },
    creationtime: '2026-11-22T01:21:24.299+0000', language: 'en',
  },
  asterisk_id: '02:fc:00:00:00:01',
  application: 'switchboard',
};

describe('previewStasisStart', () => {
  it('reads a real StasisStart, compact (ari.conf format = compact) and pretty', () => {
    const want = { channelId: 'asterisk-1795310484.4', args: ['+61290000001'] };
    expect(previewStasisStart(JSON.stringify(REAL))).toEqual(want);
    expect(previewStasisStart(JSON.stringify(REAL, null, 2))).toEqual(want);
    expect(previewStasisStart(JSON.stringify(REAL, null, '\t').replace(/\n/g, '\r\n'))).toEqual(want);
  });

  it('reads an agent leg\'s two args and an empty args list', () => {
    expect(previewStasisStart(JSON.stringify({ ...REAL, args: ['dialed', '1732000000-00001'] }))?.args).toEqual(['dialed', '1732000000-00001']);
    expect(previewStasisStart(JSON.stringify({ ...REAL, args: [] }))).toEqual({ channelId: 'asterisk-1795310484.4', args: [] });
  });

  it('reads nothing from other events, other key orders, escapes, non-strings or broken text', () => {
    const { type: _t, timestamp, args, channel, ...rest } = REAL;
    const refused = [
      JSON.stringify({ ...REAL, type: 'StasisEnd' }),
      JSON.stringify({ type: 'StasisStart', args, channel, timestamp, ...rest }), // timestamp after
      JSON.stringify({ type: 'StasisStart', timestamp, channel, args, ...rest }), // channel before args
      JSON.stringify({ ...REAL, channel: { name: channel.name, id: channel.id } }), // id not first
      JSON.stringify({ ...REAL, args: ['+3906\\1'] }), // an escape in an arg
      JSON.stringify({ ...REAL, args: ['say "hi"'] }),
      JSON.stringify({ ...REAL, channel: { ...channel, id: 'a\u0001b' } }), // escaped control character
      JSON.stringify({ ...REAL, channel: { ...channel, id: '' } }),
      JSON.stringify({ ...REAL, args: [123] }),
      JSON.stringify({ ...REAL, args: null }),
      '{"type":"StasisStart","timestamp":"x","args":["1"],"channel":{"id":"a\tb"}}', // raw control character (not JSON)
      '',
      'not json',
      '[]',
    ];
    for (const text of refused) expect(previewStasisStart(text), text).toBeUndefined();
  });

  it('reads nothing from a text cut before the channel id ends', () => {
    const text = JSON.stringify(REAL);
    const end = text.indexOf('"', text.indexOf('"id":"') + 6);
    for (let cut = 0; cut <= end; cut++) expect(previewStasisStart(text.slice(0, cut)), `cut at ${cut}`).toBeUndefined();
    expect(previewStasisStart(text.slice(0, end + 1))).toEqual({ channelId: REAL.channel.id, args: REAL.args });
  });

  it('what it reads is what JSON.parse reads, and it reads every StasisStart whose id and args need no escape', () => {
    const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('"', '\\', '\n', '\u0000', '\u2028', '\ud800', '+390610000001', 'dialed'));
    fc.assert(fc.property(
      fc.array(text, { maxLength: 4 }), text, fc.constantFrom(undefined, 2, '\t'),
      (args, id, space) => {
        const json = JSON.stringify(asteriskEvent({ type: 'StasisStart', args, channel: { ...REAL.channel, id } }, 'switchboard', REAL.asterisk_id), null, space);
        const p = previewStasisStart(json);
        const parsed = JSON.parse(json) as typeof REAL;
        // Written without an escape (JSON.stringify escapes quotes, backslashes, control characters, lone surrogates).
        const plain = (s: string): boolean => JSON.stringify(s) === `"${s}"`;
        if (p) expect(p).toEqual({ channelId: parsed.channel.id, args: parsed.args });
        expect(p !== undefined).toBe(id !== '' && plain(id) && args.every(plain));
      },
    ), { numRuns: 2000 });
  });
});
