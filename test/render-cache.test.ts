/**
 * The Renderer's cache (the files it last returned and where each agent's text is in them) and its
 * cold path (pieces joined per block, checks run on the joined block): whatever sequence of stores
 * it is given, a warm renderer returns exactly what a fresh one and renderOnce give, and a block
 * checked at once finds exactly the problems, in the same order, that checking each chunk alone does.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Agent, Backend, Store } from '../src/model/types.js';
import { RenderCheckError } from '../src/render/check.js';
import { Renderer, type RenderedFiles } from '../src/render/render.js';
import { loadTemplates, type Templates } from '../src/render/templates.js';
import { YamlStore } from '../src/store/yaml-store.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let store: Store;
let templates: Templates;
beforeAll(async () => {
  store = (await new YamlStore(path.join(ROOT, 'fixtures', 'store')).loadAll()).store!;
  templates = loadTemplates();
});

function once(renderer: Renderer, s: Store, backend: Backend): RenderedFiles {
  const out: RenderedFiles = new Map();
  const pieces = new Map<string, string[]>();
  renderer.renderOnce(s, backend, (file) => {
    const p: string[] = [];
    pieces.set(file, p);
    return p;
  });
  for (const [f, p] of pieces) out.set(f, p.join(''));
  return out;
}

/** An edit of one agent: a new object (as a reload gives), with or without a change in its text. */
const EDITS: ((a: Agent) => Agent)[] = [
  (a) => ({ ...a }),
  (a) => ({ ...a, displayName: `${a.displayName} Jr` }),
  (a) => ({ ...a, enabled: !a.enabled }),
  (a) => ({ ...a, voice: { ...a.voice, codecs: a.voice.codecs.length > 1 ? a.voice.codecs.slice(1) : ['ulaw', 'alaw'] } }),
  (a) => ({ ...a, dids: a.dids.length ? [] : ['+4930555000' + a.id.slice(-1)] }),
  (a) => ({ ...a, voice: { ...a.voice, chanspy: !a.voice.chanspy } }),
];

describe('Renderer cache', () => {
  it('returns what a fresh renderer and renderOnce return, over any sequence of edits, removals and returns', () => {
    const step = fc.record({
      edits: fc.array(fc.tuple(fc.nat(), fc.nat({ max: EDITS.length - 1 })), { maxLength: 4 }),
      drop: fc.array(fc.nat(), { maxLength: 2 }),
      restore: fc.boolean(),
    });
    fc.assert(fc.property(fc.constantFrom<Backend>('pjsip', 'sip', 'both'), fc.array(step, { minLength: 1, maxLength: 6 }), (backend, steps) => {
      const warm = new Renderer(templates);
      let agents = store.agents.slice();
      let last = warm.render(store, backend);
      for (const st of steps) {
        if (st.restore) agents = store.agents.slice();
        for (const [i, e] of st.edits) if (agents.length) agents[i % agents.length] = EDITS[e]!(agents[i % agents.length]!);
        for (const d of st.drop) if (agents.length > 1) agents.splice(d % agents.length, 1);
        const s: Store = { ...store, agents: agents.slice() };
        const got = warm.render(s, backend);
        const fresh = new Renderer(templates).render(s, backend);
        expect([...got]).toEqual([...fresh]);
        expect([...once(new Renderer(templates), s, backend)]).toEqual([...fresh]);
        last = got;
      }
      // The same store again: nothing rendered, every file the same string.
      const again = warm.render({ ...store, agents: agents.slice() }, backend);
      for (const [f, t] of again) expect(t).toBe(last.get(f));
    }), { numRuns: 60 });
  });

  it('re-renders only the agents that are new objects', () => {
    const calls: string[] = [];
    const counting = { ...templates } as Templates;
    const base = templates['pjsip/agent'];
    counting['pjsip/agent'] = Object.assign((v: unknown) => {
      calls.push((v as { name: string }).name);
      return base(v);
    });
    const r = new Renderer(counting);
    r.render(store, 'pjsip');
    expect(calls.length).toBe(store.agents.length);
    calls.length = 0;
    const agents = store.agents.slice();
    agents[2] = { ...agents[2]! };
    agents.splice(5, 1);
    r.render({ ...store, agents }, 'pjsip');
    expect(calls).toEqual([agents[2]!.username]);
  });
});

/** Lines a hostile or careless template might print for an agent. */
function lineFor(a: Agent, kind: number, junk: string): string {
  switch (kind) {
    case 0: return 'type = endpoint';
    case 1: return `exten => ${a.extension},1,NoOp()`;
    case 2: return 'exten => 999,1,NoOp()';
    case 3: return ' same => n,Hangup()';
    case 4: return `[${a.username}]`;
    case 5: return '[intruder]';
    case 6: return '; a comment';
    case 7: return ';-- block';
    case 8: return '#include evil.conf';
    case 9: return 'key = a;b';
    case 10: return 'key = a\\;b';
    case 11: return '';
    case 12: return ` key = ${junk}`;
    case 13: return `${a.extension} => 1234,Name,,,attach=no`;
    case 14: return `[${a.username}-auth](!)`;
    default: return junk;
  }
}

describe('cold render: checks run on joined blocks', () => {
  it('finds exactly the problems, in the same order, that checking each agent\'s text alone finds', () => {
    const chunk = fc.record({
      lines: fc.array(fc.tuple(fc.nat({ max: 16 }), fc.string({ maxLength: 6 })), { maxLength: 5 }),
      newline: fc.boolean(),
    });
    fc.assert(fc.property(fc.array(chunk, { minLength: 1, maxLength: 40 }), (chunks) => {
      let hostile = false;
      const textOf = (name: string, v: unknown): string => {
        const id = /agent (\S+)/.exec((v as { comment: string }).comment)![1]!;
        const a = store.agents.find((x) => x.id === id)!;
        const c = chunks[(store.agents.indexOf(a) * 3 + name.length) % chunks.length]!;
        const text = c.lines.map(([k, junk]) => lineFor(a, k, junk)).join('\n');
        return c.newline ? `${text}\n` : text;
      };
      const t = { ...templates } as Templates;
      for (const name of ['pjsip/agent', 'voicemail/agent', 'extensions/agent', 'extensions/spy', 'extensions/did'] as const) {
        const base = templates[name];
        t[name] = (v: unknown) => (hostile ? textOf(name, v) : base(v));
      }
      const outcome = (f: () => RenderedFiles): string[] | RenderedFiles => {
        try {
          return f();
        } catch (err) {
          if (err instanceof RenderCheckError) return err.problems;
          throw err;
        }
      };
      // Warm renderer, every agent a new object: each agent's text is checked alone, as it is rendered.
      const warm = new Renderer(t);
      warm.render(store, 'pjsip');
      hostile = true;
      const s: Store = { ...store, agents: store.agents.map((a) => ({ ...a })) };
      const alone = outcome(() => warm.render(s, 'pjsip'));
      const cold = outcome(() => new Renderer(t).render(s, 'pjsip'));
      expect(cold).toEqual(alone);
    }), { numRuns: 300 });
  });
});
