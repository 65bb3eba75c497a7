/** compileFast (templates as plain JavaScript) against Handlebars, which it stands in for. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import Handlebars from 'handlebars';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Backend, Store } from '../src/model/types.js';
import { compileFast } from '../src/render/fast-template.js';
import {
  planContexts, planDids, planExtensionAgent, planPjsipAgent, planPjsipFile, planSipAgent, planSipFile, planSpy, planVoicemailAgent, planVoicemailFile,
} from '../src/render/plan.js';
import { TEMPLATE_NAMES, type TemplateName } from '../src/render/templates.js';
import { YamlStore } from '../src/store/yaml-store.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OPTIONS = { noEscape: true, strict: true, knownHelpersOnly: true };
const hb = Handlebars.create();

type Outcome = { out: string } | { error: string };
function handlebars(source: string, view: unknown): Outcome {
  try {
    return { out: hb.compile(source, OPTIONS)(view) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}
/** The fast function's answer must be Handlebars' output; when it gives up (throws), Handlebars decides. */
function expectSame(source: string, view: unknown): boolean {
  const fast = compileFast(hb, source);
  expect(fast, source).toBeDefined();
  let out: string | undefined;
  try {
    out = fast!(view);
  } catch {
    return false;
  }
  expect(typeof out, 'the output is a string').toBe('string');
  expect({ out }, `${source} with ${JSON.stringify(view)}`).toEqual(handlebars(source, view));
  return true;
}

let store: Store;
beforeAll(async () => {
  store = (await new YamlStore(path.join(ROOT, 'fixtures', 'store')).loadAll()).store!;
});

const source = (name: TemplateName) => readFileSync(path.join(ROOT, 'templates', `${name}.hbs`), 'utf8');

describe('compileFast', () => {
  it('compiles every default template', () => {
    for (const name of TEMPLATE_NAMES) expect(compileFast(hb, source(name)), name).toBeDefined();
  });

  it.each(['pjsip', 'sip', 'both'] as Backend[])('renders every view of the sample store exactly as Handlebars does (%s)', (backend) => {
    const settings = { ...store.settings, backend };
    const views: [TemplateName, unknown][] = [
      ['pjsip/file', planPjsipFile(settings)], ['sip/file', planSipFile(settings, store.agents)], ['voicemail/file', planVoicemailFile(settings)],
      ['extensions/file', { header: planVoicemailFile(settings).header }],
      ...Object.values(planContexts(settings)).map((v): [TemplateName, unknown] => ['extensions/context', v]),
    ];
    for (const a of store.agents) {
      views.push(['pjsip/agent', planPjsipAgent(a, settings)], ['sip/agent', planSipAgent(a, settings)], ['extensions/agent', planExtensionAgent(a, settings)]);
      const vm = planVoicemailAgent(a);
      if (vm) views.push(['voicemail/agent', vm]);
      const spy = planSpy(a, settings);
      if (spy) views.push(['extensions/spy', spy]);
      for (const d of planDids(a, settings)) views.push(['extensions/did', d]);
    }
    for (const [name, view] of views) {
      const fast = compileFast(hb, source(name))!;
      const want = hb.compile(source(name), OPTIONS)(view);
      expect(fast(view), name).toBe(want);
    }
  });

  it('gives a view it cannot render to the fallback, whose text (or error) is the answer', () => {
    const fast = compileFast(hb, 'a {{x}} b {{y.z}} c', (v) => `fallback:${JSON.stringify(v)}`)!;
    expect(fast({ x: 'X', y: { z: 'Z' } })).toBe('a X b Z c');
    // This view gives up half-way (an inherited field): nothing of the fast output is returned.
    expect(fast({ x: 'X', y: Object.create({ z: 'inherited' }) as unknown })).toBe('fallback:{"x":"X","y":{}}');
    const failing = compileFast(hb, 'a {{x}} b {{y}}', () => {
      throw new Error('no');
    })!;
    expect(() => failing({ x: 'X' })).toThrow('no');
  });

  it('leaves to Handlebars every template using more than text, fields, #if and #each', () => {
    for (const t of [
      '{{name x}}', '{{name x=1}}', '{{@index}}', '{{@root.name}}', '{{#each list}}{{../name}}{{/each}}', '{{> partial}}', '{{#unless a}}x{{/unless}}',
      '{{#with a}}{{b}}{{/with}}', '{{"text"}}', '{{1}}', '{{#each list as |x|}}{{x}}{{/each}}', '{{#if a includeZero=true}}x{{/if}}', '{{#if}}x{{/if}}',
      '{{#if a b}}x{{/if}}', '{{lookup a "b"}}', '{{log "x"}}', '{{(sub a)}}', '{{#a}}x{{/a}}', '{{^a}}x{{/a}}', '{{{{raw}}}}x{{{{/raw}}}}', '{{*decorator}}',
      '{{#if a}}', 'unclosed {{',
    ]) expect(compileFast(hb, t), t).toBeUndefined();
  });

  it('gives the same output as Handlebars, or gives up, for any data', () => {
    const templates = [
      'a {{x}} b', '{{x.y}}|{{x.y.z}}', '{{this}}', '{{.}}{{this.x}}', '{{#if x}}yes {{x}}{{else}}no{{/if}}', '{{#if x.y}}[{{x.y}}]{{/if}}',
      '{{#each x}}<{{this}}>{{else}}empty{{/each}}', '{{#each x}}{{y}},{{/each}}', '{{#each x}}{{#each this}}{{this}}{{/each}};{{/each}}',
      '{{#each x}}{{#if y}}{{y.z}}{{else}}-{{/if}}{{/each}}', '{{#if x}}\n  line {{x}}\n{{else if y}}\n{{y}}\n{{/if}}\n', '{{!-- c --}}{{x}} {{~y~}} z',
      '{{[x y]}}', '{{x.length}}', '{{x.constructor}}', '{{x.__proto__}}', '{{toString}}', '{{x.[0]}}',
      // Handlebars adds leading non-string pieces with `+` (1 and 2 give "3"):
      '{{x}}{{y}}{{z}}', '{{x}}', 'a{{x}}{{y}}', '{{x}}{{#if y}}{{y}}{{/if}}', '{{#if x}}{{y}}{{/if}}{{z}}', '{{#if x}}{{x}}{{y}}{{/if}}{{z}}',
      '{{#if x}}{{y}}{{/if}}', '{{#if x}}{{y}}{{else}}{{z}}{{/if}}{{y}}', '{{#each x}}{{this}}{{/each}}', '{{#each x}}{{this}}{{this}}{{/each}}',
      '{{#each x}}a{{else}}{{y}}{{/each}}{{z}}', '{{!c}}{{x}}{{!c}}{{y}}',
    ];
    const leaf = fc.oneof(
      fc.string({ maxLength: 4 }), fc.integer(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.constant(0), fc.constant(''), fc.double(),
      fc.constant(() => 'fn'), fc.constant(Object.create({ y: 'inherited', z: 'z' }) as unknown), fc.constant(new Map([['a', 1]])), fc.constant([]),
    );
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('v'), { maxLength: 3 }), fc.dictionary(fc.constantFrom('x', 'y', 'z', 'length', 'x y'), tie('v'), { maxKeys: 3 })),
    })).v;
    let answered = 0;
    const view = fc.oneof({ weight: 4, arbitrary: fc.dictionary(fc.constantFrom('x', 'y', 'z', 'length', 'x y'), value, { maxKeys: 4 }) }, { weight: 1, arbitrary: value });
    fc.assert(fc.property(fc.constantFrom(...templates), view, (t, v) => {
      if (expectSame(t, v)) answered++;
    }), { numRuns: 3000 });
    // Most random data is answered by the fast function itself, so the comparison means something.
    expect(answered).toBeGreaterThan(500);
  });
});
