import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger, silentLogger } from '../src/log.js';
import { loadStore } from '../src/store/yaml-store.js';
import type { Store } from '../src/model/types.js';
import {
  PresenceService,
  parseDuration,
  formatDuration,
  updateManualDoc,
  readStatusDoc,
  REASON_DISABLED,
  REASON_UNREGISTERED,
  type AgentPresence,
  type PresenceServiceDeps,
  type SetTimer,
} from '../src/presence/index.js';
import { SwitchboardError } from '../src/errors.js';
import { ARI_FACT_EVENT_TYPES, factsFromAri } from '../src/presence/sources.js';
import { waitFor } from './helpers/wait.js';

/** A clock and timer queue driven by hand: `advance(ms)` runs due timers in time order. */
class FakeClock {
  t = Date.parse('2025-03-03T09:00:00.000Z');
  private seq = 0;
  private timers: { at: number; seq: number; fn: () => void; cancelled: boolean }[] = [];
  now = (): number => this.t;
  setTimer: SetTimer = (fn, ms) => {
    const timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  };
  pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((t) => !t.cancelled && t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.t = due.at;
      due.fn();
    }
    this.t = end;
  }
}

const MIN = 60_000;
let fixtureStore: Store;
let dir: string;
let clock: FakeClock;
const services: PresenceService[] = [];

beforeAll(async () => {
  const r = await loadStore(join(import.meta.dirname, '..', 'fixtures', 'store'));
  if (!r.store) throw new Error('fixtures/store must be valid');
  fixtureStore = r.store;
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'presence-'));
  clock = new FakeClock();
});

afterEach(async () => {
  for (const s of services.splice(0)) await s.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The sample store (backend pjsip): 1001 alice.smith (ext 1001), 1002 bob_jones, 1006 farid (login disabled). */
function store(backend?: Store['settings']['backend']): Store {
  return backend ? { ...fixtureStore, settings: { ...fixtureStore.settings, backend } } : fixtureStore;
}

function service(over: Partial<PresenceServiceDeps> = {}, s: Store = store()): PresenceService {
  const svc = new PresenceService({
    stateFile: join(dir, 'presence.json'),
    logger: silentLogger(),
    now: clock.now,
    setTimer: clock.setTimer,
    pollMs: 0,
    watch: false,
    ...over,
  });
  svc.setAgents(s);
  services.push(svc);
  return svc;
}

function changes(svc: PresenceService): AgentPresence[] {
  const seen: AgentPresence[] = [];
  svc.on('change', (p) => seen.push(p));
  return seen;
}

const ari = {
  endpoint: (resource: string, state: string, technology = 'PJSIP') => ({
    type: 'EndpointStateChange',
    application: 'switchboard',
    timestamp: '2025-03-03T09:00:00.000+0000',
    endpoint: { technology, resource, state, channel_ids: [] },
  }),
  device: (name: string, state: string) => ({
    type: 'DeviceStateChanged',
    application: 'switchboard',
    timestamp: '2025-03-03T09:00:00.000+0000',
    device_state: { name, state },
  }),
};

function queuePause(fields: Record<string, string>): Record<string, string> {
  // Field names from core-en_US.asterisk-20.xml: QueueMemberPause includes QueueMemberStatus's parameters.
  return {
    Event: 'QueueMemberPause',
    Privilege: 'agent,all',
    Queue: 'support',
    MemberName: 'Alice Smith',
    Interface: 'PJSIP/alice.smith',
    StateInterface: 'PJSIP/alice.smith',
    Membership: 'dynamic',
    Penalty: '0',
    CallsTaken: '0',
    LastCall: '0',
    LastPause: '0',
    LoginTime: '1741000000',
    InCall: '0',
    Status: '1',
    Paused: '1',
    PausedReason: 'Break',
    Ringinuse: '0',
    Wrapuptime: '0',
    ...fields,
  };
}

describe('parseDuration', () => {
  it.each([
    ['30m', 30 * MIN],
    ['1h30m', 90 * MIN],
    ['45s', 45_000],
    ['2h', 120 * MIN],
    ['1d', 24 * 60 * MIN],
    [' 1H5M ', 65 * MIN],
  ])('%s → %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['30', '', 'm', '30x', '1h 30m', '30m1h', '-5m', '1.5h', '0m', '0s', '8d', 'PT30M'])('rejects %j with PRESENCE_BAD_DURATION and an example', (text) => {
    let err: unknown;
    try {
      parseDuration(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SwitchboardError);
    expect((err as SwitchboardError).code).toBe('PRESENCE_BAD_DURATION');
    expect((err as Error).message).toContain(`"${text}"`);
    expect((err as Error).message).toMatch(/30m, 1h30m/);
  });

  it('formats durations back', () => {
    expect(formatDuration(90 * MIN)).toBe('1h30m');
    expect(formatDuration(45_500)).toBe('45s');
    expect(formatDuration(0)).toBe('0s');
  });
});

describe('PresenceService: sources', () => {
  it('starts available with registration unknown: no live info never logs an agent out', () => {
    const svc = service();
    const p = svc.get('alice.smith')!;
    expect(p).toMatchObject({ agentId: '1001', username: 'alice.smith', state: 'available', detail: { enabled: true, registered: 'unknown', busy: false } });
    expect(p.since).toBe(new Date(clock.t).toISOString());
    expect(svc.get('1001')).toEqual(p);
    expect(svc.get('nobody')).toBeUndefined();
    expect(svc.list().map((x) => x.agentId)).toEqual(fixtureStore.agents.map((a) => a.id));
  });

  it('get() hands out a frozen presence, the same object until it changes; list() and change events get copies', () => {
    const svc = service();
    const changes: AgentPresence[] = [];
    svc.on('change', (p: AgentPresence) => changes.push(p));
    const p = svc.get('alice.smith')!;
    expect(Object.isFrozen(p) && Object.isFrozen(p.detail)).toBe(true);
    expect(() => { (p as { state: string }).state = 'paused'; }).toThrow(TypeError);
    expect(() => { (p.detail as { busy: boolean }).busy = true; }).toThrow(TypeError);
    expect(svc.get('1001')).toBe(p);
    const listed = svc.list().find((x) => x.agentId === '1001')!;
    expect(listed).toEqual(p);
    expect(listed).not.toBe(p);
    listed.state = 'busy'; // a copy: free to change
    expect(svc.get('1001')?.state).toBe('available');
    svc.onAriEvent(ari.endpoint('alice.smith', 'online'));
    const q = svc.get('1001')!;
    expect(q).not.toBe(p);
    expect(q.detail.registered).toBe(true);
    expect(p.detail.registered).toBe('unknown');
    expect(changes.at(-1)).toEqual(q);
    expect(Object.isFrozen(changes.at(-1))).toBe(false);
  });

  it('an agent whose login is disabled in the store is logged out, whatever Asterisk says', () => {
    const svc = service();
    svc.onAriEvent(ari.endpoint('farid', 'online'));
    expect(svc.get('farid')).toMatchObject({ state: 'logged out', reason: REASON_DISABLED, detail: { enabled: false, registered: true } });
    // …and comes back when the store enables it.
    const enabled: Store = { ...fixtureStore, agents: fixtureStore.agents.map((a) => (a.username === 'farid' ? { ...a, enabled: true } : a)) };
    svc.setAgents(enabled);
    expect(svc.get('farid')?.state).toBe('available');
  });

  it('a store edit re-derives only the agents it changed: a renamed agent follows its new device, the others stay as they were', () => {
    const svc = service();
    svc.onAriEvent(ari.endpoint('alice.smith', 'online'));
    svc.onAriEvent(ari.endpoint('bob_jones', 'offline'));
    const seen = changes(svc);
    const renamed: Store = { ...fixtureStore, agents: fixtureStore.agents.map((a) => (a.username === 'bob_jones' ? { ...a, username: 'bob.new' } : a)) };
    svc.setAgents(renamed);
    expect(svc.get('alice.smith')?.state).toBe('available');
    // bob.new has no registration yet: not the old device's "offline"
    expect(svc.get('bob.new')?.detail.registered).toBe('unknown');
    expect(seen.map((p) => p.username)).not.toContain('alice.smith');
    svc.onAriEvent(ari.endpoint('bob.new', 'online'));
    expect(svc.get('bob.new')?.state).toBe('available');
    svc.onAriEvent(ari.endpoint('bob_jones', 'offline'));
    expect(svc.get('bob.new')?.state).toBe('available');
  });

  it('a backend change re-derives every agent\'s device even though no agent object changed', () => {
    const svc = service();
    svc.onAriEvent(ari.endpoint('alice.smith', 'online'));
    expect(svc.get('alice.smith')?.detail.registered).toBe(true);
    // same Agent objects, chan_sip now: PJSIP/alice.smith's registration no longer counts
    svc.setAgents({ ...fixtureStore, settings: { ...fixtureStore.settings, backend: 'sip' } });
    expect(svc.get('alice.smith')?.detail.registered).not.toBe(true);
  });

  it('ARI EndpointStateChange offline/online (pjsip) → logged out / available', () => {
    const svc = service();
    const seen = changes(svc);
    svc.onAriEvent(ari.endpoint('alice.smith', 'offline'));
    expect(svc.get('alice.smith')).toMatchObject({ state: 'logged out', reason: REASON_UNREGISTERED, detail: { registered: false } });
    svc.onAriEvent(ari.endpoint('alice.smith', 'online'));
    expect(svc.get('alice.smith')).toMatchObject({ state: 'available', detail: { registered: true } });
    expect(seen.map((p) => p.state)).toEqual(['logged out', 'available']);
    // Another agent's endpoint, an unknown endpoint and a non-SIP technology change nothing for alice.
    svc.onAriEvent(ari.endpoint('bob_jones', 'offline'));
    svc.onAriEvent(ari.endpoint('trunk-1', 'offline'));
    svc.onAriEvent(ari.endpoint('alice.smith', 'offline', 'IAX2'));
    expect(svc.get('alice.smith')?.state).toBe('available');
    expect(svc.get('bob_jones')?.state).toBe('logged out');
  });

  it('seedRegistrations: online/offline replace what was known, unknown leaves it, channel_ids say busy', () => {
    const svc = service();
    svc.seedRegistrations([
      { technology: 'PJSIP', resource: 'alice.smith', state: 'offline' },
      { technology: 'PJSIP', resource: 'bob_jones', state: 'online', channel_ids: ['1741.7'] },
      { technology: 'PJSIP', resource: 'chiara.rossi', state: 'unknown' },
    ]);
    expect(svc.get('alice.smith')?.state).toBe('logged out');
    expect(svc.get('bob_jones')).toMatchObject({ state: 'busy', detail: { registered: true, busy: true } });
    expect(svc.get('chiara.rossi')?.detail.registered).toBe('unknown');
    // A reconnect seed: alice registered meanwhile, bob's call ended while we were not listening.
    svc.seedRegistrations([
      { technology: 'PJSIP', resource: 'alice.smith', state: 'online' },
      { technology: 'PJSIP', resource: 'bob_jones', state: 'unknown', channel_ids: [] },
    ]);
    expect(svc.get('alice.smith')?.state).toBe('available');
    expect(svc.get('bob_jones')).toMatchObject({ state: 'available', detail: { registered: true, busy: false } });
  });

  it('AMI ContactStatus (pjsip): the last known contact removed → logged out; one of two removed → still registered', () => {
    const svc = service();
    svc.onAriEvent(ari.endpoint('alice.smith', 'offline'));
    const contact = (uri: string, status: string) => ({ Event: 'ContactStatus', Privilege: 'system,all', URI: uri, ContactStatus: status, AOR: 'alice.smith', EndpointName: 'alice.smith', RoundtripUsec: '0' });
    svc.onAmiEvent(contact('sip:alice@192.0.2.10:5060', 'Created'));
    expect(svc.get('alice.smith')).toMatchObject({ state: 'available', detail: { registered: true } });
    svc.onAmiEvent(contact('sip:alice@198.51.100.7:5060', 'Reachable'));
    svc.onAmiEvent(contact('sip:alice@192.0.2.10:5060', 'Removed'));
    expect(svc.get('alice.smith')?.detail.registered).toBe(true);
    svc.onAmiEvent(contact('sip:alice@198.51.100.7:5060', 'Unreachable'));
    expect(svc.get('alice.smith')).toMatchObject({ state: 'logged out', detail: { registered: false } });
  });

  it('ContactStatus removal does not log out when other contacts may exist (registered before we listened)', () => {
    const svc = service();
    svc.seedRegistrations([{ technology: 'PJSIP', resource: 'alice.smith', state: 'online' }]);
    svc.onAmiEvent({ Event: 'ContactStatus', URI: 'sip:alice@192.0.2.10:5060', ContactStatus: 'Removed', AOR: 'alice.smith', EndpointName: 'alice.smith' });
    expect(svc.get('alice.smith')?.detail.registered).toBe(true);
    // The endpoint-level event that Asterisk sends when the last contact goes settles it.
    svc.onAmiEvent({ Event: 'PeerStatus', ChannelType: 'PJSIP', Peer: 'PJSIP/alice.smith', PeerStatus: 'Unreachable' });
    expect(svc.get('alice.smith')?.state).toBe('logged out');
  });

  it('chan_sip: AMI PeerStatus Registered/Unregistered/Reachable/Unreachable drive registration; Rejected and Unknown do not', () => {
    const svc = service({}, store('sip'));
    const peer = (status: string) => ({ Event: 'PeerStatus', Privilege: 'system,all', ChannelType: 'SIP', Peer: 'SIP/alice.smith', PeerStatus: status, Address: '192.0.2.10:5060' });
    // ARI reports every chan_sip endpoint as `unknown`: no information, still not logged out.
    svc.onAriEvent(ari.endpoint('alice.smith', 'unknown', 'SIP'));
    svc.seedRegistrations([{ technology: 'SIP', resource: 'alice.smith', state: 'unknown' }]);
    expect(svc.get('alice.smith')).toMatchObject({ state: 'available', detail: { registered: 'unknown' } });
    svc.onAmiEvent(peer('Unregistered'));
    expect(svc.get('alice.smith')).toMatchObject({ state: 'logged out', detail: { registered: false } });
    svc.onAmiEvent(peer('Rejected'));
    svc.onAmiEvent(peer('Unknown'));
    expect(svc.get('alice.smith')?.state).toBe('logged out');
    svc.onAmiEvent(peer('Registered'));
    expect(svc.get('alice.smith')).toMatchObject({ state: 'available', detail: { registered: true } });
    svc.onAmiEvent(peer('Unreachable'));
    expect(svc.get('alice.smith')?.state).toBe('logged out');
    svc.onAmiEvent(peer('Reachable'));
    expect(svc.get('alice.smith')?.state).toBe('available');
    svc.onAmiEvent(peer('Lagged'));
    expect(svc.get('alice.smith')?.state).toBe('available');
  });

  it('registration counts only for the device the agent is dialled on (pjsip store ignores SIP/ peers)', () => {
    const svc = service();
    svc.onAmiEvent({ Event: 'PeerStatus', ChannelType: 'SIP', Peer: 'SIP/alice.smith', PeerStatus: 'Unregistered' });
    expect(svc.get('alice.smith')?.detail.registered).toBe('unknown');
    const sipOnly = service({}, store('sip'));
    sipOnly.onAriEvent(ari.endpoint('alice.smith', 'offline', 'PJSIP'));
    expect(sipOnly.get('alice.smith')?.detail.registered).toBe('unknown');
  });

  it.each([
    ['INUSE', 'busy'],
    ['BUSY', 'busy'],
    ['RINGINUSE', 'busy'],
    ['ONHOLD', 'busy'],
    ['RINGING', 'available'],
    ['NOT_INUSE', 'available'],
  ])('ARI DeviceStateChanged %s → %s', (devState, expected) => {
    const svc = service();
    svc.onAriEvent(ari.device('PJSIP/alice.smith', 'INUSE'));
    expect(svc.get('alice.smith')?.state).toBe('busy');
    svc.onAriEvent(ari.device('PJSIP/alice.smith', devState));
    expect(svc.get('alice.smith')?.state).toBe(expected);
    expect(svc.get('alice.smith')?.detail.busy).toBe(expected === 'busy');
  });

  it('device state UNAVAILABLE means no reachable device (logged out); an idle state means registered', () => {
    const svc = service({}, store('sip'));
    svc.onAriEvent(ari.device('SIP/alice.smith', 'UNAVAILABLE'));
    expect(svc.get('alice.smith')).toMatchObject({ state: 'logged out', detail: { registered: false, busy: false } });
    svc.onAriEvent(ari.device('SIP/alice.smith', 'NOT_INUSE'));
    expect(svc.get('alice.smith')).toMatchObject({ state: 'available', detail: { registered: true } });
    svc.onAriEvent(ari.device('SIP/alice.smith', 'UNKNOWN'));
    expect(svc.get('alice.smith')?.detail.registered).toBe(true);
  });

  it('AMI DeviceStateChange works like the ARI event; a call on any of the agent\'s devices makes them busy', () => {
    const svc = service();
    svc.onAmiEvent({ Event: 'DeviceStateChange', Privilege: 'call,all', Device: 'SIP/alice.smith', State: 'INUSE' });
    expect(svc.get('alice.smith')?.state).toBe('busy');
    svc.onAmiEvent({ Event: 'DeviceStateChange', Device: 'SIP/alice.smith', State: 'NOT_INUSE' });
    expect(svc.get('alice.smith')?.state).toBe('available');
    svc.onAmiEvent({ Event: 'DeviceStateChange', Device: 'Custom:alice.smith', State: 'INUSE' });
    svc.onAmiEvent({ Event: 'DeviceStateChange', Device: 'Queue:support_avail', State: 'INUSE' });
    expect(svc.get('alice.smith')?.state).toBe('available');
  });

  it('ignores events it does not use and malformed input', () => {
    const svc = service();
    const seen = changes(svc);
    for (const e of [null, 42, 'x', [], {}, { type: 'StasisStart' }, { type: 'EndpointStateChange' }, { type: 'DeviceStateChanged', device_state: 'x' }]) svc.onAriEvent(e);
    for (const e of <Record<string, string>[]>[{}, { Event: 'Newchannel' }, { Event: 'QueueMemberPause' }, { Event: 'PeerStatus', Peer: 'SIP/alice.smith' }]) svc.onAmiEvent(e);
    expect(seen).toEqual([]);
  });
});

describe('ARI events that carry presence facts', () => {
  // onAriEvent skips every event whose type is not in ARI_FACT_EVENT_TYPES before reading it.
  it('are exactly the types in ARI_FACT_EVENT_TYPES', () => {
    const rich = {
      application: 'switchboard', timestamp: '2025-03-03T09:00:00.000+0000',
      endpoint: { technology: 'PJSIP', resource: 'alice.smith', state: 'online', channel_ids: [] },
      peer: { peer_status: 'Reachable' },
      contact_info: { uri: 'sip:alice@192.0.2.1:5060', contact_status: 'Reachable', aor: 'alice.smith' },
      device_state: { name: 'PJSIP/alice.smith', state: 'INUSE' },
      channel: { id: '1.1', name: 'PJSIP/alice.smith-00000001', state: 'Up' },
    };
    const types = [...ARI_FACT_EVENT_TYPES, 'StasisStart', 'StasisEnd', 'ChannelStateChange', 'ChannelDestroyed', 'Dial', 'RESTResponse', 'SomethingNew'];
    for (const type of types) expect(factsFromAri({ ...rich, type }).length > 0, type).toBe(ARI_FACT_EVENT_TYPES.has(type));
  });
});

describe('PresenceService: QueueMemberPause', () => {
  it('maps Interface PJSIP/<username>, reads Paused and PausedReason (field names from the docs XML)', () => {
    const svc = service();
    svc.onAmiEvent(queuePause({}));
    expect(svc.get('alice.smith')).toMatchObject({ state: 'paused', reason: 'Break', detail: { pausedBy: 'queue' } });
    svc.onAmiEvent(queuePause({ Paused: '0', PausedReason: '' }));
    expect(svc.get('alice.smith')).toMatchObject({ state: 'available' });
    expect(svc.get('alice.smith')?.detail.pausedBy).toBeUndefined();
  });

  it.each([
    ['Interface SIP/<username>', { Interface: 'SIP/alice.smith', StateInterface: 'SIP/alice.smith', MemberName: 'x' }],
    ['Interface Local/<extension>@context/n', { Interface: 'Local/1001@switchboard-agents/n', StateInterface: 'Custom:x', MemberName: 'x' }],
    ['StateInterface when Interface is opaque', { Interface: 'Local/q-support-7@from-queue/n', StateInterface: 'PJSIP/alice.smith', MemberName: 'x' }],
    ['MemberName as username', { Interface: 'Local/q-7@from-queue/n', StateInterface: 'Custom:x', MemberName: 'alice.smith' }],
  ])('maps %s back to the agent', (_what, fields) => {
    const svc = service();
    svc.onAmiEvent(queuePause(fields));
    expect(svc.get('1001')).toMatchObject({ state: 'paused', reason: 'Break' });
    expect(svc.list().filter((p) => p.state === 'paused').map((p) => p.agentId)).toEqual(['1001']);
  });

  it('ignores members that are no known agent', () => {
    const svc = service();
    const seen = changes(svc);
    svc.onAmiEvent(queuePause({ Interface: 'PJSIP/stranger', StateInterface: 'PJSIP/stranger', MemberName: 'Stranger' }));
    svc.onAmiEvent(queuePause({ Interface: 'Local/9999@agents/n', StateInterface: 'Local/9999@agents/n', MemberName: 'Nobody' }));
    expect(seen).toEqual([]);
  });

  it('a member paused in two queues stays paused until unpaused in both; QueueMemberRemoved drops that queue', () => {
    const svc = service();
    svc.onAmiEvent(queuePause({ Queue: 'sales', PausedReason: 'Coaching' }));
    svc.onAmiEvent(queuePause({ Queue: 'support', PausedReason: 'Coaching' }));
    svc.onAmiEvent(queuePause({ Queue: 'sales', Paused: '0', PausedReason: '' }));
    expect(svc.get('alice.smith')).toMatchObject({ state: 'paused', reason: 'Coaching' });
    svc.onAmiEvent({ ...queuePause({ Queue: 'support' }), Event: 'QueueMemberRemoved' });
    expect(svc.get('alice.smith')?.state).toBe('available');
  });

  it('reads Reason (Asterisk 12 field) only when PausedReason is absent; a pause without a reason names the queue', () => {
    const svc = service();
    const old = queuePause({ Reason: 'Old style' });
    delete old.PausedReason;
    svc.onAmiEvent(old);
    expect(svc.get('alice.smith')?.reason).toBe('Old style');
    svc.onAmiEvent(queuePause({ PausedReason: '' }));
    expect(svc.get('alice.smith')?.reason).toBe('paused in queue support');
  });

  it('QueueMemberStatus carries Paused too and keeps the pause in step', () => {
    const svc = service();
    svc.onAmiEvent({ ...queuePause({ PausedReason: 'Wrap-up' }), Event: 'QueueMemberStatus' });
    expect(svc.get('alice.smith')).toMatchObject({ state: 'paused', reason: 'Wrap-up' });
  });

  it('seedQueueMembers replaces every queue pause with the QueueStatus reply (QueueMember uses Location/Name)', () => {
    const svc = service();
    svc.onAmiEvent(queuePause({ Interface: 'PJSIP/bob_jones', StateInterface: 'PJSIP/bob_jones', MemberName: 'bob' }));
    expect(svc.get('bob_jones')?.state).toBe('paused');
    svc.seedQueueMembers([
      { Event: 'QueueParams', Queue: 'support', Max: '0', Calls: '0' },
      { Event: 'QueueMember', Queue: 'support', Name: 'Alice', Location: 'PJSIP/alice.smith', StateInterface: 'PJSIP/alice.smith', Membership: 'dynamic', Paused: '1', PausedReason: 'Lunch' },
      { Event: 'QueueMember', Queue: 'support', Name: 'Bob', Location: 'PJSIP/bob_jones', StateInterface: 'PJSIP/bob_jones', Membership: 'dynamic', Paused: '0', PausedReason: '' },
      { Event: 'QueueStatusComplete', EventList: 'Complete' },
    ]);
    expect(svc.get('alice.smith')).toMatchObject({ state: 'paused', reason: 'Lunch', detail: { pausedBy: 'queue' } });
    expect(svc.get('bob_jones')?.state).toBe('available');
  });

  it('maps queue members that arrived before the agents were known once setAgents is called', () => {
    const svc = new PresenceService({ stateFile: join(dir, 'presence.json'), logger: silentLogger(), now: clock.now, setTimer: clock.setTimer, pollMs: 0, watch: false });
    services.push(svc);
    svc.onAmiEvent(queuePause({}));
    svc.onAriEvent(ari.device('PJSIP/bob_jones', 'INUSE'));
    expect(svc.get('alice.smith')).toBeUndefined();
    svc.setAgents(store());
    expect(svc.get('alice.smith')?.state).toBe('paused');
    expect(svc.get('bob_jones')?.state).toBe('busy');
  });
});

describe('PresenceService: precedence logged out > paused > busy > available', () => {
  it('peels the sources off one by one', async () => {
    const svc = service();
    await svc.start();
    svc.onAriEvent(ari.device('PJSIP/alice.smith', 'INUSE'));
    svc.onAmiEvent(queuePause({ PausedReason: 'Break' }));
    await svc.setManual('alice.smith', 'paused', { reason: 'Lunch' });
    svc.onAriEvent(ari.endpoint('alice.smith', 'offline'));
    expect(svc.get('alice.smith')).toMatchObject({ state: 'logged out', reason: REASON_UNREGISTERED, detail: { pausedBy: 'switchboard', busy: true } });
    svc.onAriEvent(ari.endpoint('alice.smith', 'online'));
    expect(svc.get('alice.smith')).toMatchObject({ state: 'paused', reason: 'Lunch', detail: { pausedBy: 'switchboard' } });
    await svc.setManual('alice.smith', 'available');
    expect(svc.get('alice.smith')).toMatchObject({ state: 'paused', reason: 'Break', detail: { pausedBy: 'queue' } });
    svc.onAmiEvent(queuePause({ Paused: '0', PausedReason: '' }));
    expect(svc.get('alice.smith')).toMatchObject({ state: 'busy' });
    svc.onAriEvent(ari.device('PJSIP/alice.smith', 'NOT_INUSE'));
    expect(svc.get('alice.smith')).toMatchObject({ state: 'available' });
  });

  it('disabled login beats a registered, paused, busy agent', async () => {
    const svc = service();
    svc.onAriEvent(ari.endpoint('farid', 'online'));
    svc.onAriEvent(ari.device('PJSIP/farid', 'INUSE'));
    await svc.setManual('farid', 'paused', { reason: 'Lunch' });
    expect(svc.get('farid')).toMatchObject({ state: 'logged out', reason: REASON_DISABLED, detail: { enabled: false, pausedBy: 'switchboard', busy: true } });
  });

  it('emits change only when something changed, and keeps since while the state stays the same', () => {
    const svc = service();
    const seen = changes(svc);
    const initialSince = svc.get('alice.smith')!.since;
    clock.advance(MIN);
    svc.onAriEvent(ari.endpoint('alice.smith', 'online')); // detail changes (unknown → true), state does not
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ state: 'available', since: initialSince, detail: { registered: true } });
    clock.advance(MIN);
    svc.onAriEvent(ari.device('PJSIP/alice.smith', 'INUSE'));
    const busySince = new Date(clock.t).toISOString();
    expect(seen[1]).toMatchObject({ state: 'busy', since: busySince });
    clock.advance(MIN);
    svc.onAriEvent(ari.device('PJSIP/alice.smith', 'ONHOLD'));
    svc.onAriEvent(ari.device('PJSIP/alice.smith', 'INUSE'));
    svc.onAriEvent(ari.endpoint('alice.smith', 'online'));
    expect(seen).toHaveLength(2);
    expect(svc.get('alice.smith')?.since).toBe(busySince);
    clock.advance(MIN);
    svc.onAriEvent(ari.device('PJSIP/alice.smith', 'NOT_INUSE'));
    expect(seen[2]).toMatchObject({ state: 'available', since: new Date(clock.t).toISOString() });
    expect(seen).toHaveLength(3);
  });
});

describe('PresenceService: manual states, timed pauses, restarts', () => {
  const stateFile = () => join(dir, 'presence.json');

  it('setManual paused for 30m: paused with until, persisted; available again when the 30 minutes are over', async () => {
    const svc = service();
    await svc.start();
    const seen = changes(svc);
    const set = await svc.setManual('alice.smith', 'paused', { reason: 'Lunch', forMs: 30 * MIN });
    const until = new Date(clock.t + 30 * MIN).toISOString();
    expect(set).toMatchObject({ state: 'paused', reason: 'Lunch', until, since: new Date(clock.t).toISOString(), detail: { pausedBy: 'switchboard' } });
    const onDisk = JSON.parse(readFileSync(stateFile(), 'utf8'));
    expect(onDisk.agents['1001']).toMatchObject({ state: 'paused', reason: 'Lunch', until, username: 'alice.smith', by: 'daemon' });
    clock.advance(30 * MIN - 1);
    expect(svc.get('alice.smith')?.state).toBe('paused');
    clock.advance(1);
    expect(seen.map((p) => p.state)).toEqual(['paused', 'available']);
    expect(seen[1]).toMatchObject({ since: until });
    expect(seen[1]!.until).toBeUndefined();
    expect(svc.get('alice.smith')?.state).toBe('available');
    expect(clock.pending()).toBe(0);
  });

  it('get() is right even when the expiry timer has not run yet', async () => {
    const svc = service({ setTimer: () => () => {} }); // timers never fire
    const { until } = await svc.setManual('alice.smith', 'paused', { forMs: 10 * MIN });
    clock.t += 15 * MIN;
    // Available since the pause ended, not since someone asked.
    expect(svc.get('alice.smith')).toMatchObject({ state: 'available', since: until });
  });

  it('a new instance (restart) keeps the pause, its since and its end; it still expires on time', async () => {
    const svc = service();
    await svc.start();
    await svc.setManual('1001', 'paused', { reason: 'Lunch', forMs: 30 * MIN });
    const before = svc.get('1001')!;
    await svc.stop();
    clock.advance(10 * MIN);

    const restarted = service();
    await restarted.start();
    expect(restarted.get('1001')).toMatchObject({ state: 'paused', reason: 'Lunch', since: before.since, until: before.until });
    const seen = changes(restarted);
    clock.advance(20 * MIN);
    expect(seen.map((p) => p.state)).toEqual(['available']);
  });

  it('a pause that ended while the daemon was down is over at start', async () => {
    const svc = service();
    await svc.start();
    await svc.setManual('alice.smith', 'paused', { reason: 'Lunch', forMs: 30 * MIN });
    await svc.stop();
    clock.advance(2 * 60 * MIN);
    const restarted = service();
    await restarted.start();
    expect(restarted.get('alice.smith')).toMatchObject({ state: 'available' });
    expect(clock.pending()).toBe(0);
  });

  it('a pause without --for lasts until set available, across restarts', async () => {
    const svc = service();
    await svc.start();
    await svc.setManual('alice.smith', 'paused', { reason: 'Training' });
    clock.advance(3 * 24 * 60 * MIN);
    await svc.stop();
    const restarted = service();
    await restarted.start();
    expect(restarted.get('alice.smith')).toMatchObject({ state: 'paused', reason: 'Training' });
    expect(restarted.get('alice.smith')?.until).toBeUndefined();
    await restarted.setManual('alice.smith', 'available');
    expect(restarted.get('alice.smith')?.state).toBe('available');
  });

  it('setManual refuses unknown agents and bad requests with stable codes', async () => {
    const svc = service();
    const code = async (p: Promise<unknown>) => p.then(() => 'ok', (e: SwitchboardError) => e.code);
    expect(await code(svc.setManual('nobody', 'paused'))).toBe('PRESENCE_UNKNOWN_AGENT');
    expect(await code(svc.setManual('alice.smith', 'paused', { reason: 'Lunch\r\nEvent: Fake' }))).toBe('PRESENCE_INVALID');
    expect(await code(svc.setManual('alice.smith', 'paused', { reason: 'x'.repeat(101) }))).toBe('PRESENCE_INVALID');
    expect(await code(svc.setManual('alice.smith', 'available', { forMs: MIN }))).toBe('PRESENCE_INVALID');
    expect(await code(svc.setManual('alice.smith', 'paused', { forMs: 0 }))).toBe('PRESENCE_BAD_DURATION');
    expect(await code(svc.setManual('alice.smith', 'paused', { forMs: 8 * 24 * 60 * MIN }))).toBe('PRESENCE_BAD_DURATION');
    expect(await code(svc.setManual('alice.smith', 'busy' as 'paused'))).toBe('PRESENCE_INVALID');
    expect(existsSync(stateFile())).toBe(false);
  });

  it('keeps the states it has when presence.json is corrupt, and logs why', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, cb) => { lines.push(String(chunk)); cb(); } });
    const svc = service({ logger: createLogger({ destination: sink, level: 'error' }) });
    await svc.start();
    await svc.setManual('alice.smith', 'paused', { reason: 'Lunch' });
    writeFileSync(stateFile(), '{ "version": 1, "revision": ');
    await svc.refresh();
    expect(svc.get('alice.smith')).toMatchObject({ state: 'paused', reason: 'Lunch' });
    expect(lines.join('')).toMatch(/cannot read the manual states/);
    expect(lines.join('')).toMatch(/not valid JSON/);
  });
});

/**
 * Timers that count monotonic time, as Node's do, and a wall clock that can step on its own: after
 * a VM suspend or an NTP step the wall clock is ahead while no monotonic time passed.
 */
class SteppingClock {
  wall = Date.parse('2025-03-03T09:00:00.000Z');
  private mono = 0;
  private seq = 0;
  private timers: { at: number; seq: number; fn: () => void; cancelled: boolean }[] = [];
  now = (): number => this.wall;
  setTimer: SetTimer = (fn, ms) => {
    const timer = { at: this.mono + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  };
  pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }
  /** Time passes: both clocks move, due timers run. */
  advance(ms: number): void {
    const end = this.mono + ms;
    for (;;) {
      const due = this.timers.filter((t) => !t.cancelled && t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.wall += due.at - this.mono;
      this.mono = due.at;
      due.fn();
    }
    this.wall += end - this.mono;
    this.mono = end;
  }
  /** Only the wall clock moves (suspend, clock step): no timer runs. */
  step(ms: number): void {
    this.wall += ms;
  }
}

describe('PresenceService: a pause over by the wall clock before its timer (clock step, suspend)', () => {
  const statusOf = async (agentId: string) =>
    (await readStatusDoc(join(dir, 'presence-status.json')))?.agents.find((p) => p.agentId === agentId);

  it('the periodic re-check ends it within 30 s, emits the change and rewrites presence-status.json; stop() ends the re-check', async () => {
    const c = new SteppingClock();
    const svc = service({ now: c.now, setTimer: c.setTimer });
    await svc.start();
    const seen = changes(svc);
    const { until } = await svc.setManual('alice.smith', 'paused', { reason: 'Lunch', forMs: 30 * MIN });
    c.advance(10 * MIN);
    await svc.flush();
    expect(seen.map((p) => p.state)).toEqual(['paused']); // the re-checks while it runs change nothing
    expect(await statusOf('1001')).toMatchObject({ state: 'paused', until });

    c.step(45 * MIN); // the VM was suspended for 45 minutes: the expiry timer is still 20 minutes away
    c.advance(30_000);
    await svc.flush();
    expect(seen.map((p) => p.state)).toEqual(['paused', 'available']);
    expect(seen[1]).toMatchObject({ since: until });
    expect(await statusOf('1001')).toMatchObject({ state: 'available', since: until });
    expect(c.pending()).toBe(0); // no pause left: no re-check, and the late expiry timer is cancelled

    await svc.setManual('bob_jones', 'paused', { forMs: 60 * MIN });
    expect(c.pending()).toBe(2); // its expiry timer and the re-check
    await svc.stop();
    expect(c.pending()).toBe(0);
  });

  it('by default every 30 s, on real (fake) timers and Date', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const svc = service({ now: undefined, setTimer: undefined });
      await svc.start();
      const { until } = await svc.setManual('alice.smith', 'paused', { forMs: 5 * MIN });
      vi.setSystemTime(Date.now() + 6 * MIN); // the wall clock steps; no timer has run
      await vi.advanceTimersByTimeAsync(29_000);
      await svc.flush();
      expect(await statusOf('1001')).toMatchObject({ state: 'paused', until });
      await vi.advanceTimersByTimeAsync(1_000);
      await svc.flush();
      expect(await statusOf('1001')).toMatchObject({ state: 'available', since: until });
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('PresenceService: files shared with the CLI', () => {
  it('picks up a write by another process through fs.watch and confirms it in the status file', async () => {
    const svc = new PresenceService({ stateFile: join(dir, 'presence.json'), logger: silentLogger(), pollMs: 0 });
    services.push(svc);
    svc.setAgents(store());
    await svc.start();
    const seen = changes(svc);
    // What `switchboard presence set alice.smith paused --reason Lunch --for 30m` does:
    const doc = await updateManualDoc(join(dir, 'presence.json'), Date.now(), (d) => {
      d.agents['1001'] = { state: 'paused', reason: 'Lunch', since: new Date().toISOString(), until: new Date(Date.now() + 30 * MIN).toISOString(), by: 'cli' };
    });
    await waitFor(() => seen.length === 1, 3000);
    expect(seen[0]).toMatchObject({ agentId: '1001', state: 'paused', reason: 'Lunch' });
    const status = await waitFor(async () => {
      const s = await readStatusDoc(join(dir, 'presence-status.json'));
      return s && s.manualRevision === doc.revision ? s : undefined;
    }, 3000);
    expect(status.pid).toBe(process.pid);
    expect(status.stoppedAt).toBeUndefined();
    expect(status.agents.find((p) => p.agentId === '1001')).toMatchObject({ state: 'paused', reason: 'Lunch' });
  });

  it('the stat poll catches a change when no watch event comes', async () => {
    const svc = new PresenceService({ stateFile: join(dir, 'presence.json'), logger: silentLogger(), watch: false, pollMs: 20 });
    services.push(svc);
    svc.setAgents(store());
    await svc.start();
    await updateManualDoc(join(dir, 'presence.json'), Date.now(), (d) => {
      d.agents['1002'] = { state: 'paused', reason: 'Meeting', since: new Date().toISOString() };
    });
    await waitFor(() => svc.get('bob_jones')?.state === 'paused', 3000);
  });

  it('writes a status snapshot on each change and marks it stopped on stop()', async () => {
    const svc = service();
    await svc.start();
    const statusFile = join(dir, 'presence-status.json');
    expect((await readStatusDoc(statusFile))?.agents).toHaveLength(fixtureStore.agents.length);
    svc.onAriEvent(ari.device('PJSIP/bob_jones', 'INUSE'));
    await svc.flush();
    expect((await readStatusDoc(statusFile))?.agents.find((p) => p.agentId === '1002')?.state).toBe('busy');
    await svc.stop();
    const final = await readStatusDoc(statusFile);
    expect(final?.stoppedAt).toBe(new Date(clock.t).toISOString());
  });
});
