import type { Agent, Backend, Store } from '../model/types.js';
import type { Templates, TemplateName } from './templates.js';
import { checkChunk, RenderCheckError, type ChunkRules } from './check.js';
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

type AgentChunks = Partial<Record<TemplateName, string>>;

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
    const { settings, agents } = store;
    const backend = backendOverride ?? settings.backend;
    if (this.cacheSettings !== settings || this.cacheBackend !== backend) {
      this.cache = new WeakMap();
      this.lastFiles.clear();
      this.cacheSettings = settings;
      this.cacheBackend = backend;
    }
    const effective = backend === settings.backend ? settings : { ...settings, backend };
    const problems: string[] = [];
    const files: RenderedFiles = new Map();

    const chunk = (a: Agent, name: TemplateName, view: () => unknown, rules: () => ChunkRules): string => {
      let c = this.cache.get(a);
      if (!c) this.cache.set(a, (c = {}));
      let text = c[name];
      if (text === undefined) {
        const v = view();
        const tpl = this.templates[name];
        text = v === undefined ? '' : Array.isArray(v) ? v.map((x) => tpl(x)).join('') : tpl(v);
        problems.push(...checkChunk(text, rules(), `${name} for agent ${a.id} ${a.username}`));
        c[name] = text;
      }
      return text;
    };
    const fixed = (name: TemplateName, view: unknown, rules: ChunkRules): string => {
      const text = this.templates[name](view);
      problems.push(...checkChunk(text, rules, name));
      return text;
    };

    if (backend === 'pjsip' || backend === 'both') {
      const fileView = planPjsipFile(effective);
      const parts = [fixed('pjsip/file', fileView, { sections: new Set(fileView.transports.map((t) => t.name)) })];
      for (const a of agents) {
        parts.push(chunk(a, 'pjsip/agent', () => planPjsipAgent(a, effective), () => ({
          sections: new Set([a.username, `${a.username}-auth`, `${a.username}-identify`]),
        })));
      }
      files.set('pjsip_switchboard.conf', this.join('pjsip_switchboard.conf', parts));
    }
    if (backend === 'sip' || backend === 'both') {
      const parts = [fixed('sip/file', planSipFile(effective, agents), { sections: new Set(['general']) })];
      for (const a of agents) {
        parts.push(chunk(a, 'sip/agent', () => planSipAgent(a, effective), () => ({ sections: new Set([a.username]) })));
      }
      files.set('sip_switchboard.conf', this.join('sip_switchboard.conf', parts));
    }
    {
      const fileView = planVoicemailFile(effective);
      const parts = [fixed('voicemail/file', fileView, { sections: new Set([fileView.context]), arrowKeys: new Set() })];
      for (const a of agents) {
        parts.push(chunk(a, 'voicemail/agent', () => planVoicemailAgent(a), () => ({ sections: new Set(), arrowKeys: new Set([a.extension]) })));
      }
      files.set('voicemail_switchboard.conf', this.join('voicemail_switchboard.conf', parts));
    }
    {
      const ctx = planContexts(effective);
      const none = { sections: new Set<string>(), arrowKeys: new Set<string>() };
      const parts = [fixed('extensions/file', { header: planVoicemailFile(effective).header }, none)];
      parts.push(fixed('extensions/context', ctx.agents, { sections: new Set([ctx.agents.name]) }));
      for (const a of agents) {
        parts.push(chunk(a, 'extensions/agent', () => planExtensionAgent(a, effective), () => ({ sections: new Set(), arrowKeys: new Set([a.extension]) })));
      }
      parts.push('\n', fixed('extensions/context', ctx.spy, { sections: new Set([ctx.spy.name]) }));
      for (const a of agents) {
        parts.push(chunk(a, 'extensions/spy', () => planSpy(a, effective), () => ({ sections: new Set(), arrowKeys: new Set([`${effective.dialplan.spyPrefix}${a.extension}`]) })));
      }
      parts.push('\n', fixed('extensions/context', ctx.dids, { sections: new Set([ctx.dids.name]) }));
      for (const a of agents) {
        parts.push(chunk(a, 'extensions/did', () => {
          const dids = planDids(a, effective);
          return dids.length ? dids : undefined;
        }, () => ({ sections: new Set(), arrowKeys: new Set(a.dids) })));
      }
      files.set('extensions_switchboard.conf', this.join('extensions_switchboard.conf', parts));
    }
    if (problems.length) {
      // Never cache a chunk that failed: drop everything so the next render re-checks.
      this.cache = new WeakMap();
      this.lastFiles.clear();
      throw new RenderCheckError(problems);
    }
    return files;
  }
}
