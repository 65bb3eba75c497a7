/**
 * What Asterisk has loaded, as far as switchboard knows: the hash of each managed file at the last
 * verified apply, and per agent a digest of its view models (to tell which agents a new store
 * changes) plus the values verification asks Asterisk about. Kept in `<stateDir>/manifest.json`,
 * written after a verified reload, so an apply that crashed, rolled back or ran without AMI leaves
 * it describing what Asterisk still runs; and when a failed apply cannot know what Asterisk runs
 * for some files (see withUnknownFiles), with those files marked UNKNOWN.
 */
import { createHash } from 'node:crypto';
import { readIfExists, writeFileAtomic, type WrittenStat } from '../fsutil.js';
import type { Agent, Backend, Settings, Store } from '../model/types.js';
import { OUTPUT_FILES } from '../render/render.js';
import {
  mailboxOf, planDids, planExtensionAgent, planPjsipAgent, planSipAgent, planSpy, planVoicemailAgent,
} from '../render/plan.js';

export type Kind = 'pjsip' | 'sip' | 'voicemail' | 'extensions';
export const KINDS: readonly Kind[] = ['pjsip', 'sip', 'voicemail', 'extensions'];
export const FILE_OF_KIND: Record<Kind, string> = {
  pjsip: OUTPUT_FILES.pjsip,
  sip: OUTPUT_FILES.sip,
  voicemail: OUTPUT_FILES.voicemail,
  extensions: OUTPUT_FILES.extensions,
};
export const MANAGED_FILES: readonly string[] = KINDS.map((k) => FILE_OF_KIND[k]);

/** Values of the pjsip objects, as they are written in the config file. */
export interface PjsipExpect {
  context: string;
  /** Codec names in order, comma-separated (`ulaw,alaw`). */
  allow: string;
  transport: string;
  /** Canonical group list (`1,3-5`), '' for none. */
  callGroup: string;
  pickupGroup: string;
  /** What Asterisk reports: `no`, `sdes` or `dtls` (webrtc=yes forces dtls). */
  mediaEncryption: string;
  mailboxes: string;
  maxContacts: number;
  auth: string;
  authUsername: string;
  identify?: string;
}

export interface SipExpect {
  type: string;
  context: string;
  allow: string;
  callGroup: string;
  pickupGroup: string;
  mailbox: string;
  encryption: boolean;
}

export interface VoicemailExpect {
  context: string;
  mailbox: string;
  fullname: string;
  email: string;
}

export interface AgentState {
  id: string;
  /** Digest of each file's view models for this agent (a kind is absent when the agent has none). */
  digests: Partial<Record<Kind, string>>;
  pjsip?: PjsipExpect;
  sip?: SipExpect;
  voicemail?: VoicemailExpect;
}

export type AgentStates = Record<string, AgentState>;

export interface Manifest {
  version: 1;
  /** The apply (or restore) that wrote it. */
  generation: string;
  appliedAt: string;
  /** Managed file → sha256 of the content Asterisk loaded ('absent' when there was no file, UNKNOWN when it may run either of two). */
  files: Record<string, string>;
  /** By username. */
  agents: AgentStates;
}

export const ABSENT = 'absent';
/**
 * A file's hash when Asterisk may run either the old or the new content (a Reload's answer was
 * lost, or reloading the restored file failed). It equals no hash, so the next apply reloads the
 * file, and verifies every agent of its kind, not only those the store changed (unknownKinds).
 */
export const UNKNOWN = 'unknown';

export function hashContent(data: Buffer | string | undefined): string {
  if (data === undefined) return ABSENT;
  return createHash('sha256').update(data).digest('hex');
}

function digest(value: unknown): string {
  // Views hold passwords: only a truncated hash of them is ever stored.
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 32);
}

export function usesPjsip(backend: Backend): boolean {
  return backend === 'pjsip' || backend === 'both';
}
export function usesSip(backend: Backend): boolean {
  return backend === 'sip' || backend === 'both';
}

/** Per-agent expectations and digests for `store` rendered for `backend`. */
export function agentStates(store: Store, backend: Backend, cache?: AgentStateCache): AgentStates {
  const settings: Settings = backend === store.settings.backend ? store.settings : { ...store.settings, backend };
  const out: AgentStates = {};
  const known = cache?.for(store.settings, backend);
  for (const a of store.agents) {
    let state = known?.get(a);
    if (!state) {
      state = agentState(a, settings, backend);
      known?.set(a, state);
    }
    out[a.username] = state;
  }
  return out;
}

/**
 * Remembers each agent's state by agent object (the store keeps unchanged agents' objects across
 * reloads), as the Renderer does: after a one-file edit only that agent is planned again.
 */
export class AgentStateCache {
  private map = new WeakMap<Agent, AgentState>();
  private settings: Settings | undefined;
  private backend: Backend | undefined;

  /** The states remembered for these settings and backend (forgetting any others). */
  for(settings: Settings, backend: Backend): WeakMap<Agent, AgentState> {
    if (settings !== this.settings || backend !== this.backend) {
      this.map = new WeakMap();
      this.settings = settings;
      this.backend = backend;
    }
    return this.map;
  }
}

function agentState(a: Agent, settings: Settings, backend: Backend): AgentState {
  const state: AgentState = { id: a.id, digests: {} };
  if (usesPjsip(backend)) {
    const v = planPjsipAgent(a, settings);
    state.digests.pjsip = digest(v);
    state.pjsip = {
      context: v.endpoint.context,
      allow: v.endpoint.allow,
      transport: v.endpoint.transport,
      callGroup: v.endpoint.callGroup ?? '',
      pickupGroup: v.endpoint.pickupGroup ?? '',
      mediaEncryption: v.endpoint.webrtc ? 'dtls' : (v.endpoint.mediaEncryption ?? 'no'),
      mailboxes: v.endpoint.mailboxes ?? '',
      maxContacts: v.aor.maxContacts,
      auth: v.auth.name,
      authUsername: v.auth.username,
      ...(v.identify ? { identify: v.identify.name } : {}),
    };
  }
  if (usesSip(backend)) {
    const v = planSipAgent(a, settings);
    state.digests.sip = digest(v);
    state.sip = {
      type: v.type,
      context: v.context,
      allow: v.allow,
      callGroup: v.callgroup ?? '',
      pickupGroup: v.pickupgroup ?? '',
      mailbox: v.mailbox ?? '',
      encryption: v.encryption,
    };
  }
  const vm = planVoicemailAgent(a);
  state.digests.voicemail = digest(vm ?? null);
  if (vm) {
    const box = mailboxOf(a, settings)!;
    state.voicemail = { context: box.slice(box.indexOf('@') + 1), mailbox: vm.mailbox, fullname: vm.fullname, email: vm.email };
  }
  state.digests.extensions = digest([planExtensionAgent(a, settings), planSpy(a, settings) ?? null, planDids(a, settings)]);
  return state;
}

/** `manifest` with `files` marked UNKNOWN (see UNKNOWN); the rest stays what was last verified. */
export function withUnknownFiles(manifest: Manifest, files: readonly string[]): Manifest {
  return { ...manifest, files: { ...manifest.files, ...Object.fromEntries(files.map((f) => [f, UNKNOWN])) } };
}

/** The kinds whose file `manifest` marks UNKNOWN. */
export function unknownKinds(manifest: Manifest | undefined): Set<Kind> {
  return new Set(manifest ? KINDS.filter((k) => manifest.files[FILE_OF_KIND[k]] === UNKNOWN) : []);
}

export async function readManifest(file: string): Promise<Manifest | undefined> {
  const text = await readIfExists(file);
  if (text === undefined) return undefined;
  try {
    const m = JSON.parse(text) as Manifest;
    if (m && m.version === 1 && typeof m.files === 'object' && typeof m.agents === 'object') return m;
  } catch {
    // Unreadable: treated as unknown (everything is reloaded and verified).
  }
  return undefined;
}

export function writeManifest(file: string, manifest: Manifest): Promise<WrittenStat> {
  return writeFileAtomic(file, JSON.stringify(manifest) + '\n', 0o640);
}

/** Usernames added, changed (any digest differs) and removed between two states, sorted. */
export function diffAgents(before: AgentStates, after: AgentStates): { added: string[]; changed: string[]; removed: string[] } {
  const added: string[] = [];
  const changed: string[] = [];
  const removed: string[] = [];
  for (const name in after) {
    const next = after[name]!;
    const prev = Object.hasOwn(before, name) ? before[name] : undefined;
    // The same state object (AgentStateCache keeps an unchanged agent's): nothing to compare.
    if (prev === next) continue;
    if (!prev) added.push(name);
    else if (prev.id !== next.id || KINDS.some((k) => prev.digests[k] !== next.digests[k])) changed.push(name);
  }
  for (const name in before) if (!Object.hasOwn(after, name)) removed.push(name);
  return { added: added.sort(), changed: changed.sort(), removed: removed.sort() };
}
