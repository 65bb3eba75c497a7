import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { restRequestText, type RestSpec } from '../src/asterisk/ari/client.js';

/** What sendRest wrote before restRequestText: the RESTRequest object through JSON.stringify. */
function viaObject(id: string, spec: RestSpec): string {
  const msg: Record<string, unknown> = { type: 'RESTRequest', transaction_id: id, request_id: id, method: spec.method, uri: spec.path.join('/') };
  const qs: { name: string; value: string }[] = [];
  if (spec.query) for (const [name, v] of Object.entries(spec.query)) if (v !== undefined) qs.push({ name, value: String(v) });
  if (qs.length) msg['query_strings'] = qs;
  if (spec.body !== undefined) {
    msg['content_type'] = 'application/json';
    msg['message_body'] = JSON.stringify(spec.body);
  }
  return JSON.stringify(msg);
}

describe('RESTRequest frame text', () => {
  it('is what JSON.stringify gives for the request object (escapes, unicode, query, body)', () => {
    const text = fc.string({ unit: 'binary' });
    const spec = fc.record({
      method: fc.constantFrom('GET' as const, 'POST' as const, 'PUT' as const, 'DELETE' as const),
      path: fc.array(text, { minLength: 1, maxLength: 4 }),
      query: fc.option(fc.dictionary(text, fc.oneof(text, fc.integer(), fc.boolean(), fc.constant(undefined))), { nil: undefined }),
      body: fc.option(fc.jsonValue(), { nil: undefined }),
    }, { requiredKeys: ['method', 'path'] });
    fc.assert(fc.property(text, spec, (id, s) => {
      const out = restRequestText(id, s as RestSpec);
      expect(out).toBe(viaObject(id, s as RestSpec));
      expect(JSON.parse(out)).toEqual(JSON.parse(viaObject(id, s as RestSpec)));
    }), { numRuns: 2000 });
  });

  it('a typical first action', () => {
    expect(restRequestText('sb-7', { method: 'POST', path: ['channels', '1763790000.12', 'ring'] }))
      .toBe('{"type":"RESTRequest","transaction_id":"sb-7","request_id":"sb-7","method":"POST","uri":"channels/1763790000.12/ring"}');
    expect(restRequestText('sb-8', { method: 'POST', path: ['channels'], query: { endpoint: 'PJSIP/1001', timeout: 20, x: undefined }, body: { variables: { A: 'é"\n' } } }))
      .toBe('{"type":"RESTRequest","transaction_id":"sb-8","request_id":"sb-8","method":"POST","uri":"channels","query_strings":[{"name":"endpoint","value":"PJSIP/1001"},{"name":"timeout","value":"20"}],"content_type":"application/json","message_body":"{\\"variables\\":{\\"A\\":\\"é\\\\\\"\\\\n\\"}}"}');
  });
});
