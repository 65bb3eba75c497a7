import { Writable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SECRET_KEYS, createLogger, scrubSecrets } from '../src/log.js';

function capture(): { log: ReturnType<typeof createLogger>; text: () => string } {
  let out = '';
  const destination = new Writable({ write(chunk, _enc, cb) { out += String(chunk); cb(); } });
  return { log: createLogger({ destination, level: 'debug' }), text: () => out };
}

describe('scrubSecrets', () => {
  it('blanks secret keys at any depth, in arrays, whatever their case', () => {
    const input = {
      password: 'p1', user: 'u',
      ari: { Password: 'p2', url: 'http://x' },
      a: { b: { c: { secret: 's3', keep: 1 } } },
      list: [{ pin: '1234' }, { md5: 'abc' }, 'plain'],
      headers: { Authorization: 'Basic xyz' },
      auth: { pass: 'smtp' }, apiKey: 'k', api_key: 'k2',
    };
    expect(scrubSecrets(input)).toEqual({
      password: '[redacted]', user: 'u',
      ari: { Password: '[redacted]', url: 'http://x' },
      a: { b: { c: { secret: '[redacted]', keep: 1 } } },
      list: [{ pin: '[redacted]' }, { md5: '[redacted]' }, 'plain'],
      headers: { Authorization: '[redacted]' },
      auth: { pass: '[redacted]' }, apiKey: '[redacted]', api_key: '[redacted]',
    });
    // the caller's object is left alone
    expect(input.ari.Password).toBe('p2');
  });

  it('returns a record without secrets as it is (no copy)', () => {
    const rec = { callId: '1', did: '+61290000001', nested: { a: [1, 2, { b: 'c' }] } };
    expect(scrubSecrets(rec)).toBe(rec);
  });

  it('survives cycles and leaves non-plain objects to pino', () => {
    const a: Record<string, unknown> = { name: 'a' };
    a.self = a;
    expect(() => scrubSecrets(a)).not.toThrow();
    const err = Object.assign(new Error('boom'), { password: 'x' });
    expect(scrubSecrets({ err }).err).toBe(err);
  });

  it('property: no secret value within the depth limit survives, whatever the shape', () => {
    const secret = fc.constantFrom(...SECRET_KEYS, 'PASSWORD', 'Secret', 'ApiKey');
    const key = fc.oneof(secret, fc.string({ minLength: 1, maxLength: 6 }));
    const tree = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, fc.constant('SECRET-VALUE'), fc.integer(), fc.array(tie('node'), { maxLength: 3 }), fc.dictionary(key, tie('node'), { maxKeys: 4 })),
    })).node;
    fc.assert(fc.property(fc.dictionary(key, tree, { maxKeys: 4 }), (rec) => {
      const out = scrubSecrets(rec);
      const walk = (v: unknown, underSecret: boolean): void => {
        if (v === 'SECRET-VALUE') expect(underSecret).toBe(false);
        if (v && typeof v === 'object') {
          for (const [k, x] of Object.entries(v)) walk(x, underSecret || SECRET_KEYS.has(k.toLowerCase()));
        }
      };
      walk(out, false);
    }));
  });
});

describe('the project logger', () => {
  it('redacts secrets in log records and in child bindings', () => {
    const { log, text } = capture();
    log.info({ settings: { asterisk: { host: '127.0.0.1', secret: 'amis3cret' }, ari: { password: 'aripa55' } } }, 'nested');
    log.child({ channel: 'x', auth: { pass: 'smtppa55' } }).info({ a: { b: { c: { pin: '9876' } } } }, 'child');
    log.child({ component: 'ari' }).child({ user: 'u', password: 'grandchildpw' }).info('grandchild');
    const out = text();
    expect(out).toContain('127.0.0.1');
    expect(out).toContain('[redacted]');
    for (const s of ['amis3cret', 'aripa55', 'smtppa55', '9876', 'grandchildpw']) expect(out).not.toContain(s);
    expect(out).toContain('"component":"ari"');
  });
});
