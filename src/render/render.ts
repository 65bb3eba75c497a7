import { StoreInvalidError } from '../errors.js';
import { backendIssues } from '../model/backend.js';
import type { Agent, Backend, Store } from '../model/types.js';
import type { Template, Templates, TemplateName } from './templates.js';
import { checkChunk, checkLines, chunkIsClean, linesAreClean, Names, NameScanner, RenderCheckError, type ChunkRules } from './check.js';
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

const PER_AGENT = ['pjsip/agent', 'sip/agent', 'voicemail/agent', 'extensions/agent', 'extensions/spy', 'extensions/did'] as const;
type PerAgentTemplate = (typeof PER_AGENT)[number];

/** Where a file's text goes while it is produced (render once: a StagedFile). */
interface Sink {
  push(piece: string): unknown;
  /** Called once the file's last piece was pushed (render once). */
  end?(): void;
}

/**
 * Output is assembled, checked and handed over in blocks of at least this many UTF-16 units: small
 * enough that a joined block stays below V8's large-object size (128 KiB), where joining many
 * small pieces is about twice as slow (measured on Node 20: 1 MB of ~10-char pieces).
 */
const BLOCK = 56 * 1024;

/** One run of per-agent chunks in a rendered file: agent i's text is [ends[i-1] (or start), ends[i]). */
interface SegmentState {
  template: PerAgentTemplate;
  agents: readonly Agent[];
  start: number;
  ends: Int32Array;
}
/** A file as last rendered: its text and where each agent's chunks are in it (the cache). */
interface FileState {
  text: string;
  segments: SegmentState[];
}

/** What a queued check needs: the template's name and its rules for the agent (if any). */
interface CheckKind {
  name: string;
  rules: (a: Agent | undefined) => ChunkRules;
  perAgent: boolean;
}

/**
 * Assembles one file from pieces: newly rendered text, and (on a re-render) runs of the previous
 * text, which are sliced rather than copied until the file is joined. Without a previous text
 * (a cold render), checks are queued and run on each block once it is joined, so a chunk's pieces
 * are joined once, with the block, instead of once for the chunk and again for the file.
 */
class FileWriter {
  /** Length of the output so far. */
  pos = 0;
  /** True when there is no previous text: pieces are appended and their checks queued. */
  readonly cold: boolean;
  /** The current block's pieces (one array, emptied at each flush). */
  readonly parts: string[] = [];
  partsLength = 0;
  /** Output position where `parts` begins. */
  private base = 0;
  private blocks: string[] = [];
  /** A run of the previous text not yet in parts ([runStart, runEnd) of prev). */
  private runStart = -1;
  private runEnd = -1;
  /** True while the output so far is exactly prev's first `pos` units (then it is one run). */
  private same: boolean;
  /** Queued checks: output range, index in `kinds`, index in `agents` (-1: none). */
  private checks = new Int32Array(1024);
  private queued = 0;
  private readonly kinds: CheckKind[] = [];

  constructor(
    readonly prev: string | undefined,
    private readonly sink: Sink | undefined,
    private readonly problems: string[],
    private readonly agents: readonly Agent[],
  ) {
    this.cold = prev === undefined;
    this.same = prev !== undefined;
  }

  /** Appends prev's [start, end). */
  old(start: number, end: number): void {
    if (this.same && start !== this.pos) this.same = false;
    if (this.runStart >= 0 && this.runEnd === start) this.runEnd = end;
    else {
      this.materialise();
      this.runStart = start;
      this.runEnd = end;
    }
    this.pos += end - start;
  }

  /** Appends a string (as a run of prev when prev holds the same text at this place). */
  text(t: string): void {
    if (t === '') return;
    if (this.same && this.prev!.startsWith(t, this.pos)) {
      this.old(this.pos, this.pos + t.length);
      return;
    }
    this.same = false;
    this.materialise();
    this.parts.push(t);
    this.partsLength += t.length;
    this.pos += t.length;
  }

  /** A check kind's index for queue(). */
  kind(kind: CheckKind): number {
    this.kinds.push(kind);
    return this.kinds.length - 1;
  }

  /** Checks output [start, end) (cold renders only: once its block is joined). */
  queue(start: number, end: number, kind: number, agent: number): void {
    if (start === end) return;
    let c = this.checks;
    const at = this.queued * 4;
    if (at + 4 > c.length) {
      c = new Int32Array(c.length * 2);
      c.set(this.checks);
      this.checks = c;
    }
    c[at] = start;
    c[at + 1] = end;
    c[at + 2] = kind;
    c[at + 3] = agent;
    this.queued++;
  }

  private materialise(): void {
    if (this.runStart < 0) return;
    this.parts.push(this.prev!.slice(this.runStart, this.runEnd));
    this.partsLength += this.runEnd - this.runStart;
    this.runStart = -1;
  }

  /** Joins the pieces into a block, checks it, and hands it over (called between chunks). */
  flush(): void {
    this.materialise();
    const parts = this.parts;
    if (parts.length === 0) return;
    const text = parts.length === 1 ? parts[0]! : parts.join('');
    parts.length = 0;
    this.partsLength = 0;
    const base = this.base;
    const n = this.queued;
    const c = this.checks;
    // One pattern over the whole block proves every chunk's lines well-formed when every chunk
    // starts a line (the block's lines are then the chunks' lines); otherwise each chunk is
    // checked alone, as checkChunk does.
    let lines = n > 0;
    for (let k = 0; k < n && lines; k++) {
      const s = c[k * 4]! - base;
      if (s > 0 && text.charCodeAt(s - 1) !== 10) lines = false;
    }
    const names = lines && linesAreClean(text) ? new NameScanner(text) : undefined;
    for (let k = 0; k < n; k++) {
      const s = c[k * 4]! - base;
      const e = c[k * 4 + 1]! - base;
      const kind = this.kinds[c[k * 4 + 2]!]!;
      const ai = c[k * 4 + 3]!;
      const a = ai >= 0 ? this.agents[ai] : undefined;
      const rules = kind.rules(a);
      if (names && names.clean(s, e, rules)) continue;
      const chunk = text.slice(s, e);
      if (!chunkIsClean(chunk, rules)) this.problems.push(...checkLines(chunk, rules, kind.perAgent ? `${kind.name} for agent ${a!.id} ${a!.username}` : kind.name));
    }
    this.queued = 0;
    this.base += text.length;
    if (this.sink) this.sink.push(text);
    else this.blocks.push(text);
  }

  /** The file's text (prev itself when nothing changed); '' when the blocks went to a sink. */
  finish(): string {
    if (this.same && this.pos === this.prev!.length) return this.prev!;
    this.flush();
    this.sink?.end?.();
    const b = this.blocks;
    this.blocks = [];
    return b.length === 0 ? '' : b.length === 1 ? b[0]! : b.join('');
  }
}

/** A cold render's loop over the agents for one template (see coldLoop). */
type ColdLoop = (w: FileWriter, agents: readonly Agent[], view: (a: Agent) => unknown, tpl: Template, ends: Int32Array, kind: number, block: number) => void;

/**
 * The loop of a cold render over every agent for one template: view, render into the block, queue
 * the check, note where the agent's text ends. It is compiled once per template and renderer, so
 * that each template's loop has its own type feedback: one loop shared by the six templates was
 * optimised for one template's view and template functions, then thrown away (deoptimised) when
 * the next template's loop ran, six times per cold render.
 */
function coldLoop(template: PerAgentTemplate): ColdLoop {
  // The template's name in the source makes each loop a function of its own for V8: identical
  // source is compiled once and its closures then share one set of type feedback.
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  return new Function(`"use strict";
// the cold loop of ${JSON.stringify(template).slice(1, -1)}
return function coldLoop(w, agents, view, tpl, ends, kind, block) {
  const parts = w.parts;
  const n = agents.length;
  for (let i = 0; i < n; i++) {
    const v = view(agents[i]);
    const s0 = w.pos;
    if (v !== undefined) {
      const items = Array.isArray(v) ? v : undefined;
      const count = items === undefined ? 1 : items.length;
      for (let k = 0; k < count; k++) {
        const x = items === undefined ? v : items[k];
        const t = tpl(x);
        parts.push(t);
        w.partsLength += t.length;
        w.pos += t.length;
      }
    }
    w.queue(s0, w.pos, kind, i);
    ends[i] = w.pos;
    if (w.partsLength >= block) w.flush();
  }
};`)() as ColdLoop;
}

/** One shape for every chunk's rules (see Names). */
function rulesOf(sections: Names, arrowKeys?: Names, agent?: 'config' | 'dialplan'): ChunkRules {
  return { sections, arrowKeys, agent };
}

/**
 * Renders a store into Asterisk config files. Output is deterministic (agents sorted by id, no
 * timestamps). Each agent's text is rendered and safety-checked once: the renderer keeps the files
 * it last returned and where each agent's text is in them, so after a one-file edit only that
 * agent is rendered again and the rest is taken from the previous text (agents are recognised by
 * object identity, as the store keeps unchanged agents' objects across reloads).
 */
export class Renderer {
  private state: Map<string, FileState> | undefined;
  private stateSettings: unknown;
  private stateBackend: Backend | undefined;

  /** One cold loop per template (see coldLoop). */
  private readonly loops = new Map<PerAgentTemplate, ColdLoop>();

  constructor(private readonly templates: Templates) {}

  render(store: Store, backendOverride?: Backend): RenderedFiles {
    const { settings } = store;
    const backend = backendOverride ?? settings.backend;
    if (this.stateSettings !== settings || this.stateBackend !== backend) {
      this.state = undefined;
      this.stateSettings = settings;
      this.stateBackend = backend;
    }
    let next: Map<string, FileState>;
    try {
      next = this.produce(store, backend, this.state, undefined);
    } catch (err) {
      // Never keep text that failed: drop everything so the next render re-checks.
      if (err instanceof RenderCheckError) this.state = undefined;
      throw err;
    }
    this.state = next;
    const files: RenderedFiles = new Map();
    for (const [file, st] of next) files.set(file, st.text);
    return files;
  }

  /**
   * The same files as render(), handed over piece by piece as they are produced and kept nowhere
   * (no cache, no joined text): for a one-shot render of a large store, which then never holds its
   * whole output in memory. `open(file)` is called once per file, in render()'s order, and gets
   * that file's pieces through push(). Throws what render() throws, after every file was produced
   * (so the caller must then discard what it got).
   */
  renderOnce(store: Store, backendOverride: Backend | undefined, open: (file: string) => Sink): void {
    this.produce(store, backendOverride ?? store.settings.backend, undefined, open);
  }

  private produce(store: Store, backend: Backend, prev: Map<string, FileState> | undefined, open: ((file: string) => Sink) | undefined): Map<string, FileState> {
    const { settings } = store;
    if (backend !== settings.backend) {
      // Validation checked the driver-dependent rules for the store's own backend only.
      const issues = backendIssues(settings, store.agents, backend);
      if (issues.length) {
        throw new StoreInvalidError(issues, `the store cannot be rendered for backend ${backend} (its own is ${settings.backend}): ${issues.length} error(s), nothing was written:\n${issues.map((i) => `  - ${i.message}`).join('\n')}`);
      }
    }
    const agents = open ? store.agents : store.agents.slice();
    const effective = backend === settings.backend ? settings : { ...settings, backend };
    const problems: string[] = [];
    const next = new Map<string, FileState>();
    let w!: FileWriter;
    let segments!: SegmentState[];
    let before: FileState | undefined;

    const file = (name: string, build: () => void): void => {
      before = prev?.get(name);
      w = new FileWriter(before?.text, open?.(name), problems, agents);
      segments = [];
      build();
      next.set(name, { text: w.finish(), segments });
    };
    const fixed = (name: TemplateName, view: unknown, rules: ChunkRules): void => {
      const text = this.templates[name](view);
      if (w.cold) {
        const start = w.pos;
        w.text(text);
        w.queue(start, w.pos, w.kind({ name, rules: () => rules, perAgent: false }), -1);
      } else {
        problems.push(...checkChunk(text, rules, name));
        w.text(text);
      }
    };
    /** Every agent's chunk of one template, in agent order (so a failing template or check reports
     * the same agent as always): taken from the previous text when the agent is the same object,
     * rendered and checked otherwise. */
    const chunks = (name: PerAgentTemplate, view: (a: Agent) => unknown, rules: (a: Agent) => ChunkRules): void => {
      const tpl = this.templates[name];
      const n = agents.length;
      const ends = new Int32Array(n);
      const start = w.pos;
      const old = before?.segments.find((sg) => sg.template === name);
      if (w.cold) {
        const kind = w.kind({ name, rules: rules as (a: Agent | undefined) => ChunkRules, perAgent: true });
        let loop = this.loops.get(name);
        if (!loop) this.loops.set(name, (loop = coldLoop(name)));
        loop(w, agents, view, tpl, ends, kind, BLOCK);
      } else {
        const prevText = w.prev!;
        const oldAgents = old?.agents ?? [];
        const oldEnds = old?.ends;
        const oldStart = (k: number) => (k === 0 ? old!.start : oldEnds![k - 1]!);
        let j = 0;
        let index: Map<Agent, number> | undefined;
        for (let i = 0; i < n; i++) {
          const a = agents[i]!;
          let k = j < oldAgents.length && oldAgents[j] === a ? j : -1;
          const edited = k < 0 && j < oldAgents.length && oldAgents[j]!.id === a.id;
          if (k < 0 && !edited && oldAgents.length) k = (index ??= new Map(oldAgents.map((x, m) => [x, m]))).get(a) ?? -1;
          if (k >= 0) {
            w.old(oldStart(k), oldEnds![k]!);
            j = k + 1;
          } else {
            const v = view(a);
            const text = v === undefined ? '' : Array.isArray(v) ? v.map((x) => tpl(x)).join('') : tpl(v);
            const r = rules(a);
            if (!chunkIsClean(text, r)) problems.push(...checkLines(text, r, `${name} for agent ${a.id} ${a.username}`));
            let s = -1;
            let e = -1;
            if (edited) {
              s = oldStart(j);
              e = oldEnds![j]!;
              j++;
            }
            // An agent re-read but rendering as before keeps its place in the previous text.
            if (s >= 0 && e - s === text.length && prevText.startsWith(text, s)) w.old(s, e);
            else w.text(text);
          }
          ends[i] = w.pos;
        }
      }
      segments.push({ template: name, agents, start, ends });
    };

    // A fixed chunk's rules name one section; each per-agent rule below is one Names instance
    // pointed at each agent in turn (the checker keeps none).
    const one = (name: string): Names => new Names([name]);
    if (backend === 'pjsip' || backend === 'both') {
      file(OUTPUT_FILES.pjsip, () => {
        const fileView = planPjsipFile(effective);
        fixed('pjsip/file', fileView, rulesOf(new Names(fileView.transports.map((t) => t.name))));
        // An agent's pjsip sections: `<username>`, `<username>-auth`, `<username>-identify`.
        const sections = new Names([], '', ['', '-auth', '-identify']);
        const rules = rulesOf(sections, undefined, 'config');
        chunks('pjsip/agent', (a) => planPjsipAgent(a, effective), (a) => (sections.only(a.username), rules));
      });
    }
    if (backend === 'sip' || backend === 'both') {
      file(OUTPUT_FILES.sip, () => {
        fixed('sip/file', planSipFile(effective, agents), rulesOf(one('general')));
        const sections = new Names();
        const rules = rulesOf(sections, undefined, 'config');
        chunks('sip/agent', (a) => planSipAgent(a, effective), (a) => (sections.only(a.username), rules));
      });
    }
    file(OUTPUT_FILES.voicemail, () => {
      const fileView = planVoicemailFile(effective);
      fixed('voicemail/file', fileView, rulesOf(one(fileView.context), new Names()));
      const keys = new Names();
      const rules = rulesOf(new Names(), keys, 'config');
      chunks('voicemail/agent', (a) => planVoicemailAgent(a), (a) => (keys.only(a.extension), rules));
    });
    file(OUTPUT_FILES.extensions, () => {
      const ctx = planContexts(effective);
      fixed('extensions/file', { header: planVoicemailFile(effective).header }, rulesOf(new Names(), new Names()));
      fixed('extensions/context', ctx.agents, rulesOf(one(ctx.agents.name)));
      const agentKeys = new Names();
      const agentRules = rulesOf(new Names(), agentKeys, 'dialplan');
      chunks('extensions/agent', (a) => planExtensionAgent(a, effective), (a) => (agentKeys.only(a.extension), agentRules));
      w.text('\n');
      fixed('extensions/context', ctx.spy, rulesOf(one(ctx.spy.name)));
      const spyKeys = new Names([], effective.dialplan.spyPrefix);
      const spyRules = rulesOf(new Names(), spyKeys, 'dialplan');
      chunks('extensions/spy', (a) => planSpy(a, effective), (a) => (spyKeys.only(a.extension), spyRules));
      w.text('\n');
      fixed('extensions/context', ctx.dids, rulesOf(one(ctx.dids.name)));
      const didKeys = new Names();
      const didRules = rulesOf(new Names(), didKeys, 'dialplan');
      chunks('extensions/did', (a) => {
        const dids = planDids(a, effective);
        return dids.length ? dids : undefined;
      }, (a) => ((didKeys.list = a.dids), didRules));
    });
    if (problems.length) throw new RenderCheckError(problems);
    return next;
  }
}
