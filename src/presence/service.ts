/**
 * PresenceService: one agent presence from every source, kept current as events arrive.
 *
 * Inputs (all optional; each only refines what is known):
 * - the store (`setAgents`): agents, `enabled`, username ↔ id ↔ extension, the device each agent is
 *   dialled on (`dialTarget`: `PJSIP/<username>`, or `SIP/<username>` for a chan_sip-only store);
 * - ARI events (`onAriEvent`) and the endpoint list at (re)connect (`seedRegistrations`);
 * - AMI events (`onAmiEvent`) and the QueueStatus reply at (re)connect (`seedQueueMembers`);
 * - manual states in `presence.json` (`setManual`, or the CLI writing the file).
 *
 * Outputs: `get`/`list`, a 'change' event per agent whose presence changed, and the status
 * snapshot `presence-status.json` that `switchboard presence list` reads.
 *
 * How the daemon learns about a CLI write: `fs.watch` on the data *directory* (inotify on Linux),
 * filtered to presence.json. The directory, not the file, because writers replace the file with an
 * atomic rename, which a watch on the old inode would miss. Rejected: an mtime check before each
 * `get()` — `get()` is synchronous and on the path of every DID call (a sync stat there blocks the
 * event loop), and nothing would emit 'change', update the snapshot or confirm the write to the CLI
 * until some call came in. As a safety net for file systems that deliver no inotify events (NFS,
 * some container bind mounts) a stat every `pollMs` (default 5 s) re-reads the file if it changed.
 *
 * Timed pauses: `until` is kept in presence.json, so a pause ends on time across restarts (a pause
 * that ended while the daemon was down is simply over when it starts). A timer per paused agent
 * emits the change when it ends; `get()` and `list()` also check the clock, so they are right even
 * if a timer is late. Timers count monotonic time but `until` is wall-clock time: after the wall
 * clock steps forward (NTP, a manual change) or the host was suspended (a VM paused, a laptop
 * asleep: monotonic time stood still), a pause is over before its timer fires. So while any timed
 * pause is running, a re-check every `recheckMs` (30 s) ends those whose `until` has passed, emits
 * the change and rewrites the status snapshot: presence-status.json is at most that late.
 */
import { EventEmitter } from 'node:events';
import { promises as fs, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import type { Store } from '../model/types.js';
import type { AmiMessage } from '../asterisk/ami/protocol.js';
import { dialTarget } from '../render/plan.js';
import { errorMessage } from '../errors.js';
import { composePresence, samePresence, sameState } from './compose.js';
import { UnknownAgentError } from './errors.js';
import { makeManualEntry, type ManualOptions } from './manual.js';
import { ARI_FACT_EVENT_TYPES, factsFromAmi, factsFromAri, parseDevice, parseLocal, type DeviceKey, type Fact, type QueueMemberId } from './sources.js';
import {
  STATE_FILE_NAME,
  STATUS_FILE_NAME,
  entryActive,
  readManualDoc,
  updateManualDoc,
  writeStatusDoc,
} from './state-file.js';
import { realSetTimer, type AgentPresence, type CancelTimer, type ManualEntry, type ManualStateDoc, type PresenceStatusDoc, type SetTimer } from './types.js';

/** Node timers take at most 2^31-1 ms (~24.8 days); longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface PresenceServiceDeps {
  /** `<data dir>/presence.json`. */
  stateFile: string;
  /** Default: `presence-status.json` next to `stateFile`. */
  statusFile?: string;
  logger: Logger;
  /** Wall clock in ms (default Date.now). */
  now?: () => number;
  /** One-shot timer (default: unref'd setTimeout). */
  setTimer?: SetTimer;
  /** Stat presence.json this often as a fallback to fs.watch; 0 = never (default 5000). */
  pollMs?: number;
  /** Watch the data directory with fs.watch (default true). */
  watch?: boolean;
  /** Written into the status snapshot so the CLI can tell whether the daemon runs (default process.pid). */
  pid?: number;
  /**
   * While a timed pause runs, compare the wall clock with its `until` this often (default 30000; 0 =
   * never), to end pauses whose timer is late after a clock step or a suspend.
   */
  recheckMs?: number;
}

/** Default `recheckMs`. */
export const PAUSE_RECHECK_MS = 30_000;

interface AgentRef {
  id: string;
  username: string;
  extension: string;
  enabled: boolean;
  /** The device the DID workflow dials; its registration decides `registered`. */
  dialDevice: DeviceKey;
  /** The store's Agent object this was made from (the same object next time: the agent did not change). */
  source: Store['agents'][number];
}

interface DeviceLive {
  registered: boolean | 'unknown';
  /** pjsip contact URIs known to be live (from ContactStatus events). */
  contacts: Set<string>;
  /** True when `contacts` is known to hold every live contact (we saw the device with none). */
  contactsComplete: boolean;
  busy: boolean;
}

interface QueueMemberLive {
  queue: string;
  member: QueueMemberId;
  paused: boolean;
  reason?: string;
  agentId?: string;
}

export interface PresenceService {
  on(event: 'change', listener: (presence: AgentPresence) => void): this;
  once(event: 'change', listener: (presence: AgentPresence) => void): this;
  off(event: 'change', listener: (presence: AgentPresence) => void): this;
  emit(event: 'change', presence: AgentPresence): boolean;
}

export class PresenceService extends EventEmitter {
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly setTimer: SetTimer;
  private readonly stateFile: string;
  private readonly statusFile: string;
  private readonly pollMs: number;
  private readonly useWatch: boolean;
  private readonly pid: number;
  private readonly recheckMs: number;

  private agents = new Map<string, AgentRef>();
  private backend: Store['settings']['backend'] | undefined;
  private byUsername = new Map<string, string>();
  private byExtension = new Map<string, string>();
  private readonly devices = new Map<DeviceKey, DeviceLive>();
  private readonly queueMembers = new Map<string, QueueMemberLive>();
  private readonly queueByAgent = new Map<string, Set<string>>();
  private readonly manual = new Map<string, ManualEntry>();
  private manualRevision = 0;
  private readonly current = new Map<string, AgentPresence>();
  private readonly expiryTimers = new Map<string, CancelTimer>();

  private started = false;
  private stopped = false;
  private startedAt = '';
  private watcher: FSWatcher | undefined;
  private cancelPoll: CancelTimer | undefined;
  private cancelRecheck: CancelTimer | undefined;
  private lastFileSig = '';
  /** Every read and write of presence.json runs on this chain, one at a time, in order. */
  private io: Promise<void> = Promise.resolve();
  private refreshQueued: Promise<void> | undefined;
  private snapshotDirty = false;
  private snapshotWriting: Promise<void> | undefined;

  constructor(deps: PresenceServiceDeps) {
    super();
    this.stateFile = path.resolve(deps.stateFile);
    this.statusFile = path.resolve(deps.statusFile ?? path.join(path.dirname(this.stateFile), STATUS_FILE_NAME));
    this.log = deps.logger.child({ component: 'presence' });
    this.now = deps.now ?? Date.now;
    this.setTimer = deps.setTimer ?? realSetTimer;
    this.pollMs = deps.pollMs ?? 5000;
    this.useWatch = deps.watch ?? true;
    this.pid = deps.pid ?? process.pid;
    this.recheckMs = deps.recheckMs ?? PAUSE_RECHECK_MS;
  }

  // ---------------------------------------------------------------- life cycle

  /** Reads presence.json, starts watching it, writes the first status snapshot. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.startedAt = this.iso(this.now());
    await fs.mkdir(path.dirname(this.stateFile), { recursive: true });
    if (this.useWatch) {
      try {
        this.watcher = watch(path.dirname(this.stateFile), { persistent: false }, (_event, filename) => {
          if (!filename || filename.toString() === STATE_FILE_NAME) void this.refresh();
        });
        this.watcher.on('error', (err) => this.log.warn({ err: errorMessage(err) }, 'presence: watching the data directory failed; polling only'));
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, 'presence: cannot watch the data directory; polling only');
      }
    }
    await this.refresh();
    this.schedulePoll();
    this.scheduleRecheck();
    this.scheduleSnapshot();
    await this.flush();
  }

  /** Stops watching and timers, waits for pending writes, marks the snapshot as stopped. */
  async stop(): Promise<void> {
    if (!this.started || this.stopped) return;
    this.stopped = true;
    this.watcher?.close();
    this.watcher = undefined;
    this.cancelPoll?.();
    this.cancelRecheck?.();
    this.cancelRecheck = undefined;
    for (const cancel of this.expiryTimers.values()) cancel();
    this.expiryTimers.clear();
    await this.io.catch(() => {});
    await this.flush();
    try {
      await writeStatusDoc(this.statusFile, { ...this.statusDoc(), stoppedAt: this.iso(this.now()) });
    } catch (err) {
      this.log.error({ err: errorMessage(err), file: this.statusFile }, 'presence: cannot write the status file');
    }
  }

  /** Re-reads presence.json now (the watcher and the poll call this; so may a SIGHUP handler). */
  refresh(): Promise<void> {
    if (this.refreshQueued) return this.refreshQueued;
    const queued = this.enqueue(async () => {
      this.refreshQueued = undefined;
      await this.loadManualFile();
    });
    this.refreshQueued = queued;
    return queued;
  }

  /** Resolves when the status snapshot on disk reflects every change so far. */
  async flush(): Promise<void> {
    while (this.snapshotWriting) await this.snapshotWriting;
  }

  // ---------------------------------------------------------------- inputs

  /** Takes the agents from a freshly loaded store (call after each load). */
  setAgents(store: Store): void {
    // Incremental: the store keeps the Agent object of every agent whose file did not change, so
    // only new or changed agents are re-derived and recomputed (a full pass over 10k agents took
    // ~77 ms, in the daemon's event loop at every store edit, DID calls waiting behind it).
    const backend = store.settings.backend;
    const sameBackend = backend === this.backend;
    const agents = new Map<string, AgentRef>();
    const byUsername = new Map<string, string>();
    const byExtension = new Map<string, string>();
    const changed: string[] = [];
    for (const a of store.agents) {
      const prev = this.agents.get(a.id);
      let ref: AgentRef;
      if (prev && sameBackend && prev.source === a) ref = prev;
      else {
        ref = { id: a.id, username: a.username, extension: a.extension, enabled: a.enabled, dialDevice: parseDevice(dialTarget(a, backend))!, source: a };
        changed.push(a.id);
      }
      agents.set(a.id, ref);
      byUsername.set(a.username, a.id);
      byExtension.set(a.extension, a.id);
    }
    for (const id of this.agents.keys()) {
      if (!agents.has(id)) {
        this.current.delete(id);
        this.expiryTimers.get(id)?.();
        this.expiryTimers.delete(id);
      }
    }
    this.agents = agents;
    this.backend = backend;
    this.byUsername = byUsername;
    this.byExtension = byExtension;
    // Queue members map to agents by interface (username/extension): re-index them all (few), and
    // recompute every agent that is or was a member, as a changed username may move a pause.
    const members = new Set<string>(this.queueByAgent.keys());
    this.queueByAgent.clear();
    for (const [key, m] of this.queueMembers) this.indexMember(key, m);
    for (const id of this.queueByAgent.keys()) members.add(id);
    for (const id of changed) this.scheduleExpiry(id);
    this.recompute(new Set([...changed, ...members]));
    this.scheduleSnapshot();
    this.scheduleRecheck();
  }

  /** ARI events (plain JSON as ARI sends them): EndpointStateChange, PeerStatusChange, ContactStatusChange, DeviceStateChanged. */
  onAriEvent(evt: unknown): void {
    // Most events (every call's) carry no presence fact: skip them before factsFromAri.
    const type = (evt as { type?: unknown } | null)?.type;
    if (typeof type === 'string' && !ARI_FACT_EVENT_TYPES.has(type)) return;
    this.applyFacts(factsFromAri(evt));
  }

  /** AMI events: PeerStatus, ContactStatus, DeviceStateChange, QueueMemberPause/Status/Added/Removed. */
  onAmiEvent(evt: AmiMessage): void {
    this.applyFacts(factsFromAmi(evt));
  }

  /**
   * Registration state from ARI `GET /endpoints` at (re)connect: `online`/`offline` replace what
   * was known for those endpoints; `unknown` (every chan_sip peer) leaves it as it is. When
   * `channel_ids` is given, a device with channels counts as busy and one without as free, which
   * clears a busy state whose end was missed while disconnected.
   */
  seedRegistrations(endpoints: { technology: string; resource: string; state?: string; channel_ids?: string[] }[]): void {
    const facts: Fact[] = [];
    for (const e of endpoints) {
      const device = parseDevice(`${e.technology}/${e.resource}`);
      if (!device) continue;
      const state = e.state?.toLowerCase();
      if (state === 'online' || state === 'offline') facts.push({ kind: 'endpoint', device, registered: state === 'online', source: 'ari:endpoints' });
      if (Array.isArray(e.channel_ids)) facts.push({ kind: 'device', device, busy: e.channel_ids.length > 0, source: 'ari:endpoints' });
    }
    this.applyFacts(facts);
  }

  /**
   * Queue pauses from the AMI `QueueStatus` reply at (re)connect (its `QueueMember` events; other
   * events are skipped). Replaces every queue pause known before, so pauses missed while AMI was
   * down are neither kept nor lost.
   */
  seedQueueMembers(events: AmiMessage[]): void {
    const affected = new Set<string>(this.queueByAgent.keys());
    this.queueMembers.clear();
    this.queueByAgent.clear();
    const facts = events.flatMap((e) => factsFromAmi(e)).filter((f) => f.kind === 'queue' && !f.removed);
    for (const f of facts) for (const id of this.applyFact(f)) affected.add(id);
    this.recompute(affected);
    this.scheduleSnapshot();
  }

  /**
   * Sets an agent's manual state and keeps it in presence.json (so it survives a restart and the
   * CLI sees it). `paused` takes an optional reason and length (`forMs`); `available` clears a
   * switchboard pause (a queue pause stays until the queue unpauses).
   */
  async setManual(agentIdOrUsername: string, state: 'paused' | 'available', opts: ManualOptions = {}): Promise<AgentPresence> {
    const agent = this.resolve(agentIdOrUsername);
    if (!agent) throw new UnknownAgentError(agentIdOrUsername);
    const entry = makeManualEntry(state, opts, this.now(), { username: agent.username, by: 'daemon' });
    await this.enqueue(async () => {
      const doc = await updateManualDoc(this.stateFile, this.now(), (d) => {
        d.agents[agent.id] = entry;
      });
      this.applyManualDoc(doc);
      this.lastFileSig = await this.fileSig();
    });
    this.log.info({ agentId: agent.id, username: agent.username, state, reason: entry.reason, until: entry.until }, 'presence: manual state set');
    return this.get(agent.id)!;
  }

  // ---------------------------------------------------------------- queries

  /**
   * The agent's presence (by id or username): a frozen object, the same one until the presence
   * changes (no copy: the DID workflow asks on every call).
   */
  get(agentIdOrUsername: string): AgentPresence | undefined {
    const agent = this.resolve(agentIdOrUsername);
    if (!agent) return undefined;
    return this.currentOf(agent.id);
  }

  /** Every agent, in store order (by id). */
  list(): AgentPresence[] {
    const out: AgentPresence[] = [];
    for (const id of this.agents.keys()) {
      const p = this.currentOf(id);
      if (p) out.push(copy(p));
    }
    return out;
  }

  // ---------------------------------------------------------------- internals: facts

  private applyFacts(facts: Fact[]): void {
    if (!facts.length) return;
    const affected = new Set<string>();
    for (const f of facts) for (const id of this.applyFact(f)) affected.add(id);
    if (affected.size) {
      this.recompute(affected);
      this.scheduleSnapshot();
    }
  }

  /** Applies one fact; returns the ids of the agents it may have changed. */
  private applyFact(f: Fact): string[] {
    this.log.trace({ fact: f }, 'presence fact');
    switch (f.kind) {
      case 'endpoint':
        this.setRegistered(this.device(f.device), f.registered);
        return this.agentsOfDevice(f.device);
      case 'contact': {
        const d = this.device(f.device);
        if (f.live) {
          d.contacts.add(f.uri);
          d.registered = true;
        } else {
          d.contacts.delete(f.uri);
          // Only conclude "no contact left" when we know every contact; otherwise the endpoint-level
          // event (EndpointStateChange offline / PeerStatus Unreachable) that follows will say so.
          if (d.contacts.size === 0 && d.contactsComplete) d.registered = false;
        }
        return this.agentsOfDevice(f.device);
      }
      case 'device': {
        const d = this.device(f.device);
        d.busy = f.busy;
        if (f.registered !== undefined) this.setRegistered(d, f.registered);
        return this.agentsOfDevice(f.device);
      }
      case 'queue': {
        const key = `${f.queue}\u0000${f.member.iface}`;
        const old = this.queueMembers.get(key);
        const touched = old?.agentId ? [old.agentId] : [];
        if (old?.agentId) this.queueByAgent.get(old.agentId)?.delete(key);
        if (f.removed) {
          this.queueMembers.delete(key);
          return touched;
        }
        const m: QueueMemberLive = {
          queue: f.queue,
          member: f.member,
          paused: f.paused ?? old?.paused ?? false,
          ...(f.paused === undefined ? (old?.reason ? { reason: old.reason } : {}) : f.reason ? { reason: f.reason } : {}),
        };
        this.queueMembers.set(key, m);
        this.indexMember(key, m);
        if (!m.agentId) this.log.debug({ queue: f.queue, member: f.member }, 'presence: queue member is no known agent');
        return m.agentId ? [...touched, m.agentId] : touched;
      }
    }
  }

  private setRegistered(d: DeviceLive, registered: boolean): void {
    d.registered = registered;
    if (!registered) {
      d.contacts.clear();
      d.contactsComplete = true;
    } else if (d.contacts.size === 0) {
      d.contactsComplete = false;
    }
  }

  private device(key: DeviceKey): DeviceLive {
    let d = this.devices.get(key);
    if (!d) {
      d = { registered: 'unknown', contacts: new Set(), contactsComplete: false, busy: false };
      this.devices.set(key, d);
    }
    return d;
  }

  private agentsOfDevice(key: DeviceKey): string[] {
    const id = this.byUsername.get(key.slice(key.indexOf('/') + 1));
    return id ? [id] : [];
  }

  /** Maps a queue member to an agent: by device (`PJSIP/<username>`, `SIP/<username>`), then `Local/<extension>@…`, then member name. */
  private resolveMember(member: QueueMemberId): string | undefined {
    const names = [member.iface, member.stateIface].filter((n): n is string => Boolean(n));
    for (const n of names) {
      const d = parseDevice(n);
      const id = d ? this.byUsername.get(d.slice(d.indexOf('/') + 1)) : undefined;
      if (id) return id;
    }
    for (const n of names) {
      const local = parseLocal(n);
      const id = local ? (this.byExtension.get(local.exten) ?? this.byUsername.get(local.exten)) : undefined;
      if (id) return id;
    }
    return member.memberName ? this.byUsername.get(member.memberName) : undefined;
  }

  private indexMember(key: string, m: QueueMemberLive): void {
    const id = this.resolveMember(m.member);
    if (id) m.agentId = id;
    else delete m.agentId;
    if (!id) return;
    let set = this.queueByAgent.get(id);
    if (!set) this.queueByAgent.set(id, (set = new Set()));
    set.add(key);
  }

  private queuePauseOf(id: string): { queue: string; reason?: string } | undefined {
    const keys = this.queueByAgent.get(id);
    if (!keys) return undefined;
    const paused = [...keys].map((k) => this.queueMembers.get(k)).filter((m): m is QueueMemberLive => Boolean(m?.paused));
    paused.sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0));
    const first = paused[0];
    return first ? { queue: first.queue, ...(first.reason ? { reason: first.reason } : {}) } : undefined;
  }

  // ---------------------------------------------------------------- internals: state

  private resolve(idOrUsername: string): AgentRef | undefined {
    const byId = this.agents.get(idOrUsername);
    if (byId) return byId;
    const id = this.byUsername.get(idOrUsername);
    return id ? this.agents.get(id) : undefined;
  }

  private activeManual(id: string): ManualEntry | undefined {
    const e = this.manual.get(id);
    return e && entryActive(e, this.now()) ? e : undefined;
  }

  private recompute(ids: Iterable<string>): void {
    const now = this.now();
    for (const id of ids) {
      const a = this.agents.get(id);
      if (!a) continue;
      const manual = this.activeManual(id);
      const queuePause = this.queuePauseOf(id);
      const sip = this.devices.get(`SIP/${a.username}`);
      const pjsip = this.devices.get(`PJSIP/${a.username}`);
      const next = composePresence({
        agentId: a.id,
        username: a.username,
        enabled: a.enabled,
        registered: this.devices.get(a.dialDevice)?.registered ?? 'unknown',
        busy: Boolean(sip?.busy || pjsip?.busy),
        ...(manual ? { manual } : {}),
        ...(queuePause ? { queuePause } : {}),
      });
      const prev = this.current.get(id);
      if (prev && samePresence(prev, next)) continue;
      let since: string;
      if (prev && sameState(prev, next)) since = prev.since;
      else if (next.state === 'paused' && next.detail.pausedBy === 'switchboard' && manual) since = manual.since;
      else if (prev?.state === 'paused' && prev.detail.pausedBy === 'switchboard' && prev.until && Date.parse(prev.until) <= now) since = prev.until;
      else since = this.iso(now);
      // Frozen: get() hands it out as it is.
      const presence: AgentPresence = Object.freeze({ ...next, since, detail: Object.freeze(next.detail) });
      this.current.set(id, presence);
      if (!prev || prev.state !== presence.state || prev.reason !== presence.reason) {
        this.log.info({ agentId: id, username: a.username, from: prev?.state, to: presence.state, reason: presence.reason, until: presence.until }, 'presence changed');
      }
      this.emit('change', copy(presence));
    }
  }

  /** A pause set through switchboard whose time is up (the timer may not have fired yet). */
  private expired(p: AgentPresence): boolean {
    return p.detail.pausedBy === 'switchboard' && Boolean(p.until) && Date.parse(p.until!) <= this.now();
  }

  /** The agent's presence now: a timed switchboard pause that is over but whose timer has not fired yet is ended first. */
  private currentOf(id: string): AgentPresence | undefined {
    const p = this.current.get(id);
    if (!p || !this.expired(p)) return p;
    this.recompute([id]);
    this.scheduleSnapshot();
    return this.current.get(id);
  }

  private scheduleExpiry(id: string): void {
    this.expiryTimers.get(id)?.();
    this.expiryTimers.delete(id);
    if (this.stopped) return;
    const e = this.manual.get(id);
    if (e?.state !== 'paused' || !e.until || !this.agents.has(id)) return;
    const until = Date.parse(e.until);
    const remaining = until - this.now();
    if (remaining <= 0) return;
    const cancel = this.setTimer(() => {
      this.expiryTimers.delete(id);
      if (this.stopped) return;
      if (this.now() < until) {
        this.scheduleExpiry(id);
        return;
      }
      this.recompute([id]);
      this.scheduleSnapshot();
    }, Math.min(remaining, MAX_TIMER_MS));
    this.expiryTimers.set(id, cancel);
  }

  /** Whether some known agent has a timed pause that is not over by the wall clock. */
  private timedPauseRunning(): boolean {
    const now = this.now();
    for (const [id, e] of this.manual) {
      if (e.state === 'paused' && e.until !== undefined && Date.parse(e.until) > now && this.agents.has(id)) return true;
    }
    return false;
  }

  /** Arms the periodic wall-clock re-check of timed pauses (one timer, only while one runs). */
  private scheduleRecheck(): void {
    if (!this.started || this.stopped || this.recheckMs <= 0 || this.cancelRecheck) return;
    if (!this.timedPauseRunning()) return;
    this.cancelRecheck = this.setTimer(() => {
      this.cancelRecheck = undefined;
      if (this.stopped) return;
      this.recheckPauses();
      this.scheduleRecheck();
    }, this.recheckMs);
  }

  /** Ends every switchboard pause whose `until` has passed by the wall clock, late timer or not. */
  private recheckPauses(): void {
    const over: string[] = [];
    for (const [id, p] of this.current) if (this.expired(p)) over.push(id);
    if (!over.length) return;
    this.log.info({ agentIds: over }, 'presence: timed pause(s) over by the wall clock before their timer (clock step or suspend)');
    for (const id of over) this.scheduleExpiry(id);
    this.recompute(over);
    this.scheduleSnapshot();
  }

  // ---------------------------------------------------------------- internals: files

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.io.then(task);
    this.io = run.catch(() => {});
    return run;
  }

  private async fileSig(): Promise<string> {
    try {
      const st = await fs.stat(this.stateFile);
      return `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      return 'absent';
    }
  }

  private async loadManualFile(): Promise<void> {
    const sig = await this.fileSig();
    let doc: ManualStateDoc;
    try {
      doc = await readManualDoc(this.stateFile);
    } catch (err) {
      // Keep the states we had: a hand-edited file with a typo must not unpause everyone.
      this.log.error({ err: errorMessage(err), file: this.stateFile }, 'presence: cannot read the manual states; keeping the previous ones');
      this.lastFileSig = sig;
      return;
    }
    this.lastFileSig = sig;
    this.applyManualDoc(doc);
  }

  private applyManualDoc(doc: ManualStateDoc): void {
    const changed = new Set<string>();
    for (const id of new Set([...this.manual.keys(), ...Object.keys(doc.agents)])) {
      const before = this.manual.get(id);
      const after = doc.agents[id];
      if (JSON.stringify(before) === JSON.stringify(after)) continue;
      if (after) this.manual.set(id, after);
      else this.manual.delete(id);
      changed.add(id);
    }
    const revisionChanged = doc.revision !== this.manualRevision;
    this.manualRevision = doc.revision;
    for (const id of changed) this.scheduleExpiry(id);
    this.recompute(changed);
    if (changed.size || revisionChanged) this.scheduleSnapshot();
    this.scheduleRecheck();
  }

  private schedulePoll(): void {
    if (this.pollMs <= 0 || this.stopped) return;
    this.cancelPoll = this.setTimer(() => {
      if (this.stopped) return;
      void this.fileSig()
        .then((sig) => (sig !== this.lastFileSig ? this.refresh() : undefined))
        .catch((err) => this.log.warn({ err: errorMessage(err) }, 'presence: poll failed'))
        .finally(() => this.schedulePoll());
    }, this.pollMs);
  }

  private statusDoc(): PresenceStatusDoc {
    return {
      version: 1,
      pid: this.pid,
      startedAt: this.startedAt,
      writtenAt: this.iso(this.now()),
      manualRevision: this.manualRevision,
      agents: this.list(),
    };
  }

  /** Writes the snapshot soon; a burst of changes makes one or two writes, never concurrent ones. */
  private scheduleSnapshot(): void {
    if (!this.started || this.stopped) return;
    this.snapshotDirty = true;
    if (this.snapshotWriting) return;
    this.snapshotWriting = (async () => {
      while (this.snapshotDirty) {
        this.snapshotDirty = false;
        await Promise.resolve(); // let a synchronous burst of events finish first
        try {
          await writeStatusDoc(this.statusFile, this.statusDoc());
        } catch (err) {
          this.log.error({ err: errorMessage(err), file: this.statusFile }, 'presence: cannot write the status file');
        }
      }
    })().finally(() => {
      this.snapshotWriting = undefined;
    });
  }

  private iso(ms: number): string {
    return new Date(ms).toISOString();
  }
}

function copy(p: AgentPresence): AgentPresence {
  return { ...p, detail: { ...p.detail } };
}
