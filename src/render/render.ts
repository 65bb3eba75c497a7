import type { Agent, Backend, Store } from '../model/types.js';
import type { Templates, TemplateName } from './templates.js';
import { checkChunk, checkLines, chunkIsClean, RenderCheckError, type ChunkRules, type NameSet } from './check.js';
import {
  planContexts, planDids, planExtensionAgent, planPjsipAgent, planPjsipFile, planSipAgent, planSipFile, planSpy,
  planVoicemailAgent, planVoicemailFile,
} from './plan.js';

export const OUTPUT_FILES = {
  pjsip: 'pjsip_switchboard.conf',
  sip: 'sip_switchboard.conf',
  voicemail: 'voicemail_switchboard.conf',
  extensions: 'extensions_switchboard.conf',
} as const;

/** Asterisk module that reads each generated file (what apply reloads when it changes). */
export const MODULE_OF_FILE: Record<string, string> = {
  [OUTPUT_FILES.pjsip]: 'res_pjsip.so',
  [OUTPUT_FILES.sip]: 'chan_sip.so',
  [OUTPUT_FILES.voicemail]: 'app_voicemail.so',
  [OUTPUT_FILES.extensions]: 'pbx_config.so',
};

/** File name → content, in a stable order. */
export type RenderedFiles = Map<string, string>;

/** An agent's rendered chunks, by PER_AGENT index (an array: one shape for every agent). */
type AgentChunks = (string | undefined)[];
const PER_AGENT = ['pjsip/agent', 'sip/agent', 'voicemail/agent', 'extensions/agent', 'extensions/spy', 'extensions/did'] as const;
type PerAgentTemplate = (typeof PER_AGENT)[number];

/** The section names an agent's chunk may open, without building a Set for every chunk. */
// One instance per template and render, pointed at each agent in turn (the checker keeps none).
class OneName implements NameSet {
  /** `prefix` + `name` is the one name. */
  constructor(public name = '', private readonly prefix = '') {}
  has(n: string): boolean {
    const p = this.prefix;
    return p ? n.length === p.length + this.name.length && n.startsWith(p) && n.endsWith(this.name) : n === this.name;
  }
}
class NameList implements NameSet {
  names: readonly string[] = [];
  has(n: string): boolean {
    return this.names.includes(n);
  }
}
/** An agent's pjsip sections: `<username>`, `<username>-auth`, `<username>-identify`. */
class PjsipSections implements NameSet {
  user = '';
  has(n: string): boolean {
    const u = this.user;
    if (!n.startsWith(u)) return false;
    const rest = n.length - u.length;
    return rest === 0 || (rest === 5 && n.endsWith('-auth')) || (rest === 9 && n.endsWith('-identify'));
  }
}
const NO_NAMES: NameSet = { has: () => false };

/**
 * Renders a store into Asterisk config files. Output is deterministic (agents sorted by id, no
 * timestamps). Each agent's text is rendered and safety-checked once and cached by the agent
 * object, so after a one-file edit only that agent is rendered again.
 */
export class Renderer {
  private cache = new WeakMap<Agent, AgentChunks>();
  private cacheSettings: unknown;
  private cacheBackend: Backend | undefined;
  /** Each file's chunks and text from the last render: a file whose chunks are all the same
   * strings is not joined again (and is the same string object, so comparing it is instant). */
  private lastFiles = new Map<string, { parts: string[]; text: string }>();

  constructor(private readonly templates: Templates) {}

  private join(file: string, parts: string[]): string {
    const last = this.lastFiles.get(file);
    if (last && last.parts.length === parts.length && last.parts.every((p, i) => p === parts[i])) return last.text;
    const text = parts.join('');
    this.lastFiles.set(file, { parts, text });
    return text;
  }

  render(store: Store, backendOverride?: Backend): RenderedFiles {
    const { settings } = store;
    const backend = backendOverride ?? settings.backend;
    if (this.cacheSettings !== settings || this.cacheBackend !== backend) {
      this.cache = new WeakMap();
      this.lastFiles.clear();
      this.cacheSettings = settings;
      this.cacheBackend = backend;
    }
    const files: RenderedFiles = new Map();
    const parts = new Map<string, string[]>();
    try {
      this.produce(store, backend, this.cache, (file) => {
        const p: string[] = [];
        parts.set(file, p);
        return p;
      });
    } catch (err) {
      // Never cache a chunk that failed: drop everything so the next render re-checks.
      if (err instanceof RenderCheckError) {
        this.cache = new WeakMap();
        this.lastFiles.clear();
      }
      throw err;
    }
    for (const [file, p] of parts) files.set(file, this.join(file, p));
    return files;
  }

  /**
   * The same files as render(), handed over piece by piece as they are produced and kept nowhere
   * (no cache, no joined text): for a one-shot render of a large store, which then never holds its
   * whole output in memory. `open(file)` is called once per file, in render()'s order, and gets
   * that file's pieces through push(). Throws what render() throws, after every file was produced
   * (so the caller must then discard what it got).
   */
  renderOnce(store: Store, backendOverride: Backend | undefined, open: (file: string) => { push(piece: string): unknown }): void {
    this.produce(store, backendOverride ?? store.settings.backend, undefined, open);
  }

  private produce(store: Store, backend: Backend, cache: WeakMap<Agent, AgentChunks> | undefined, open: (file: string) => { push(piece: string): unknown }): void {
    const { settings, agents } = store;
    const effective = backend === settings.backend ? settings : { ...settings, backend };
    const problems: string[] = [];

    // Each agent's cache entry, looked up once per render rather than once per template.
    let entries: AgentChunks[] | undefined;
    if (cache) {
      entries = new Array<AgentChunks>(agents.length);
      for (let i = 0; i < agents.length; i++) {
        const a = agents[i]!;
        let c = cache.get(a);
        if (!c) cache.set(a, (c = new Array<string | undefined>(PER_AGENT.length).fill(undefined)));
        entries[i] = c;
      }
    }
    /** Appends every agent's chunk of one template to parts, rendering and checking the missing ones
     * (in agent order, so a failing template or check reports the same agent as always). */
    const chunks = (parts: { push(piece: string): unknown }, name: PerAgentTemplate, view: (a: Agent) => unknown, rules: (a: Agent) => ChunkRules): void => {
      const tpl = this.templates[name];
      const slot = PER_AGENT.indexOf(name);
      for (let i = 0; i < agents.length; i++) {
        const c = entries?.[i];
        let text = c?.[slot];
        if (text === undefined) {
          const a = agents[i]!;
          const v = view(a);
          text = v === undefined ? '' : Array.isArray(v) ? v.map((x) => tpl(x)).join('') : tpl(v);
          const r = rules(a);
          if (!chunkIsClean(text, r)) problems.push(...checkLines(text, r, `${name} for agent ${a.id} ${a.username}`));
          if (c) c[slot] = text;
        }
        parts.push(text);
      }
    };
    const fixed = (name: TemplateName, view: unknown, rules: ChunkRules): string => {
      const text = this.templates[name](view);
      problems.push(...checkChunk(text, rules, name));
      return text;
    };

    if (backend === 'pjsip' || backend === 'both') {
      const fileView = planPjsipFile(effective);
      const parts = open(OUTPUT_FILES.pjsip);
      parts.push(fixed('pjsip/file', fileView, { sections: new Set(fileView.transports.map((t) => t.name)) }));
      const rules = { sections: new PjsipSections() };
      chunks(parts, 'pjsip/agent', (a) => planPjsipAgent(a, effective), (a) => ((rules.sections.user = a.username), rules));
    }
    if (backend === 'sip' || backend === 'both') {
      const parts = open(OUTPUT_FILES.sip);
      parts.push(fixed('sip/file', planSipFile(effective, agents), { sections: new Set(['general']) }));
      const rules = { sections: new OneName() };
      chunks(parts, 'sip/agent', (a) => planSipAgent(a, effective), (a) => ((rules.sections.name = a.username), rules));
    }
    {
      const fileView = planVoicemailFile(effective);
      const parts = open(OUTPUT_FILES.voicemail);
      parts.push(fixed('voicemail/file', fileView, { sections: new Set([fileView.context]), arrowKeys: new Set() }));
      const rules = { sections: NO_NAMES, arrowKeys: new OneName() };
      chunks(parts, 'voicemail/agent', (a) => planVoicemailAgent(a), (a) => ((rules.arrowKeys.name = a.extension), rules));
    }
    {
      const ctx = planContexts(effective);
      const none = { sections: new Set<string>(), arrowKeys: new Set<string>() };
      const parts = open(OUTPUT_FILES.extensions);
      parts.push(fixed('extensions/file', { header: planVoicemailFile(effective).header }, none));
      parts.push(fixed('extensions/context', ctx.agents, { sections: new Set([ctx.agents.name]) }));
      const agentRules = { sections: NO_NAMES, arrowKeys: new OneName() };
      chunks(parts, 'extensions/agent', (a) => planExtensionAgent(a, effective), (a) => ((agentRules.arrowKeys.name = a.extension), agentRules));
      parts.push('\n');
      parts.push(fixed('extensions/context', ctx.spy, { sections: new Set([ctx.spy.name]) }));
      const spyRules = { sections: NO_NAMES, arrowKeys: new OneName('', effective.dialplan.spyPrefix) };
      chunks(parts, 'extensions/spy', (a) => planSpy(a, effective), (a) => ((spyRules.arrowKeys.name = a.extension), spyRules));
      parts.push('\n');
      parts.push(fixed('extensions/context', ctx.dids, { sections: new Set([ctx.dids.name]) }));
      const didRules = { sections: NO_NAMES, arrowKeys: new NameList() };
      chunks(parts, 'extensions/did', (a) => {
        const dids = planDids(a, effective);
        return dids.length ? dids : undefined;
      }, (a) => ((didRules.arrowKeys.names = a.dids), didRules));
    }
    if (problems.length) throw new RenderCheckError(problems);
  }
}
