/**
 * DID call control end to end: the real AriClient against FakeAriServer, a real SMTP server on
 * loopback, a real SQLite call-records database and a real mail outbox in a temp data dir.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { AriClient } from '../src/asterisk/ari/index.js';
import type { CallRecord } from '../src/calls/records.js';
import { PeerDisconnectedError } from '../src/errors.js';
import { createLogger, type Logger } from '../src/log.js';
import { localDateTime, recordingFileName } from '../src/mail/voicemail-email.js';
import type { Agent, Store } from '../src/model/types.js';
import { loadStore } from '../src/store/yaml-store.js';
import { DID_VM_LABEL, callerIdOf, divertReasonForCause, wavDurationSeconds, type PresenceLookup } from '../src/workflows/did.js';
import { startCallControl, type CallControl } from '../src/workflows/wire.js';
import { FakeAriServer, makeWav, type RecordedRequest } from './fakes/ari-server.js';
import { parseMessage, startSmtpServer, type TestSmtpServer } from './helpers/smtp.js';
import { waitFor } from './helpers/wait.js';

const PASSWORD = 'ari-Secret-77';
const ALICE_DID = '+61290000001';
const CALLER = '+61400111222';
const PRESENCE_MODULE = fileURLToPath(new URL('../src/presence/index.ts', import.meta.url));
/** The slice of src/presence's PresenceService this test drives. */
type PresenceServiceCtor = new (deps: {
  stateFile: string; logger: Logger; now: () => number; watch: boolean; pollMs: number;
  setTimer: (fn: () => void, ms: number) => () => void;
}) => {
  start(): Promise<void>; stop(): Promise<void>; setAgents(store: Store): void;
  setManual(id: string, state: 'paused' | 'available', opts: { reason?: string; forMs?: number }): Promise<unknown>;
  get(id: string): { state: string } | undefined;
};
const FIXTURE_STORE = new URL('../fixtures/store/', import.meta.url).pathname;

let baseStore: Store | undefined;
async function fixtureStore(): Promise<Store> {
  if (!baseStore) {
    const result = await loadStore(FIXTURE_STORE);
    if (!result.store) throw new Error('fixture store invalid');
    baseStore = result.store;
  }
  return baseStore;
}

/** The fixture store with alice's ring time shortened (and any other change to alice). */
async function storeWith(change: (a: Agent) => Agent = (a) => a): Promise<Store> {
  const s = await fixtureStore();
  return {
    settings: s.settings,
    agents: s.agents.map((a) => (a.id === '1001' ? change({ ...a, voice: { ...a.voice, ringTimeoutSeconds: 1 } }) : a)),
  };
}

class StubPresence implements PresenceLookup {
  readonly states = new Map<string, { state: string; reason?: string; until?: number }>();
  now = () => Date.now();
  asked: string[] = [];
  set(id: string, state: string, opts: { reason?: string; until?: number } = {}): void {
    this.states.set(id, { state, ...opts });
  }
  get(id: string) {
    this.asked.push(id);
    const s = this.states.get(id) ?? { state: 'available' };
    if (s.until !== undefined && this.now() >= s.until) return { state: 'available' };
    return { state: s.state, ...(s.reason ? { reason: s.reason } : {}) };
  }
}

interface Harness {
  fake: FakeAriServer;
  smtp: TestSmtpServer;
  dataDir: string;
  cc: CallControl;
  presence: StubPresence;
  logs: () => Record<string, unknown>[];
  logger: Logger;
  store: Store;
  restart: (opts?: Partial<SetupOptions>) => Promise<CallControl>;
}

interface SetupOptions {
  store: Store;
  /** The daemon has not loaded a store yet. */
  noStore: boolean;
  presence: PresenceLookup;
  password: string;
  minDurationSeconds: number;
  smtpDown: boolean;
  waitConnected: boolean;
  /** Our ring timer's grace after the agent's ring time (default 0 here; 2000 in production). */
  ringGraceMs: number;
  /** How long a channel found in our app on connect is given before it counts as left behind (default 200 here). */
  orphanGraceMs: number;
  /** Sees (and may wrap methods of) the ARI client before it connects. */
  ariHook: (ari: AriClient) => void;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.reverse()) await fn();
  cleanups.length = 0;
});

async function setup(opts: Partial<SetupOptions> = {}): Promise<Harness> {
  const fake = new FakeAriServer({ password: PASSWORD });
  await fake.start();
  cleanups.push(() => fake.stop());
  const smtp = await startSmtpServer();
  cleanups.push(() => smtp.stop());
  if (opts.smtpDown) await smtp.setDown(true);
  const dataDir = mkdtempSync(join(tmpdir(), 'sb-workflow-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const lines: string[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: new Writable({ write(chunk: Buffer, _e, cb) { lines.push(chunk.toString('utf8')); cb(); } }),
  });
  const store = opts.store ?? (await storeWith());
  const presence = new StubPresence();
  const start = async (o: Partial<SetupOptions> = {}): Promise<CallControl> => {
    const lists = (): number => fake.requests().filter((r) => r.method === 'GET' && r.path === '/ari/channels').length;
    const listsBefore = lists();
    const ariTimings = { requestTimeoutMs: 1000, reconnectInitialMs: 20, reconnectMaxMs: 100, pingIntervalMs: 0 };
    const hook = o.ariHook ?? opts.ariHook;
    let ari: AriClient | undefined;
    if (hook) {
      ari = new AriClient({ url: fake.url, username: 'asterisk', password: o.password ?? opts.password ?? PASSWORD, app: 'switchboard', ...ariTimings }, { logger });
      hook(ari);
    }
    const cc = await startCallControl({
      settings: {
        ari: { url: fake.url, user: 'asterisk', password: o.password ?? opts.password ?? PASSWORD, app: 'switchboard' },
        smtp: { host: '127.0.0.1', port: smtp.port, secure: false, requireTls: false, from: 'voicemail@example.com' },
        voicemail: { maxDurationSeconds: 180, maxSilenceSeconds: 5, minDurationSeconds: o.minDurationSeconds ?? opts.minDurationSeconds ?? 2 },
      },
      store: () => (opts.noStore ? undefined : store),
      presence: opts.presence ?? presence,
      logger,
      dataDir,
      ariTimings,
      ...(ari ? { ari } : {}),
      authRetryMs: 50,
      outboxTimings: { initialDelayMs: 50, maxDelayMs: 100 },
      workflow: {
        ringGraceMs: o.ringGraceMs ?? opts.ringGraceMs ?? 0, promptTimeoutMs: 5000, recordingGraceMs: 300, orphanGraceMs: o.orphanGraceMs ?? opts.orphanGraceMs ?? 200,
        saveRetry: { initialMs: 50, maxMs: 200, attempts: 6 }, resyncRetryMs: 50,
      },
    });
    let stopped = false;
    const stop = cc.stop.bind(cc);
    cc.stop = async () => {
      if (stopped) return;
      stopped = true;
      await stop();
    };
    cleanups.push(() => cc.stop());
    // Connected, and the workflow has seen 'connected' (it lists the channels then): events reach it from now on.
    if (o.waitConnected ?? opts.waitConnected ?? true) await waitFor(() => fake.connectedApps().includes('switchboard') && lists() > listsBefore);
    return cc;
  };
  const cc = await start();
  const logs = () => lines.flatMap((l) => l.split('\n')).filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { fake, smtp, dataDir, cc, presence, logs, logger, store, restart: start };
}

function rest(fake: FakeAriServer): RecordedRequest[] {
  return fake.requests().filter((r) => !r.websocket && !r.path.startsWith('/ari/api-docs') && r.path !== '/ari/asterisk/info');
}

function findRequest(fake: FakeAriServer, method: string, path: string | RegExp): RecordedRequest | undefined {
  return rest(fake).find((r) => r.method === method && (typeof path === 'string' ? r.path === path : path.test(r.path)));
}

async function onlyRecord(cc: CallControl, pred: (r: CallRecord) => boolean = () => true): Promise<CallRecord> {
  return waitFor(() => {
    const all = cc.records.query({ from: new Date(0), to: new Date(Date.now() + 60_000) });
    expect(all).toHaveLength(1);
    return pred(all[0]!) ? all[0] : undefined;
  }, 5000);
}

async function callIn(h: Harness, did = ALICE_DID): Promise<string> {
  const ch = h.fake.incomingCall({ callerNumber: CALLER, dialedExten: did });
  return ch.id as string;
}

/** Waits for the voicemail recording to start; returns its name. */
async function recordingStarted(h: Harness): Promise<string> {
  const req = await h.fake.waitForRequest((r) => r.method === 'POST' && /\/record$/.test(r.path), 5000);
  await waitFor(() => h.fake.liveRecordings().some((r) => r.name === req.query.name));
  return req.query.name!;
}

/** A DID call to alice, answered by her and bridged. */
async function bridged(): Promise<{ h: Harness; inbound: string; rec: CallRecord; outbound: string }> {
  const h = await setup();
  const inbound = await callIn(h);
  const rec = await onlyRecord(h.cc);
  const outbound = `${rec.interactionId}-agent`;
  await h.fake.waitForRequest((r) => r.method === 'POST' && r.path === '/ari/channels');
  h.fake.answerOutbound(outbound);
  await waitFor(() => bridgeSize(h.fake) === 2);
  return { h, inbound, rec, outbound };
}

/**
 * A bridged DID call, then the daemon stopped (Asterisk keeps both channels in Stasis, bridged):
 * the start of every "daemon away during a bridged call" test.
 */
async function bridgedThenStopped(): Promise<{ h: Harness; inbound: string; rec: CallRecord; outbound: string }> {
  const { h, inbound, rec, outbound } = await bridged();
  await h.cc.stop();
  await waitFor(() => !h.fake.connectedApps().includes('switchboard'));
  return { h, inbound, rec, outbound };
}

function bridgeSize(fake: FakeAriServer): number {
  return ((fake.bridgesList()[0]?.channels as string[] | undefined) ?? []).length;
}

async function noActiveCalls(h: Harness): Promise<void> {
  await waitFor(() => h.cc.workflow!.activeCalls().length === 0, 5000);
}

describe('DID workflow: the agent answers', () => {
  it('rings the caller, originates to the agent, bridges on answer and tears down on hang-up', async () => {
    const h = await setup();
    const listenersBefore = h.cc.ari!.listenerCount('StasisStart');
    const inbound = await callIn(h);
    const originate = await h.fake.waitForRequest((r) => r.method === 'POST' && r.path === '/ari/channels');
    const rec = await onlyRecord(h.cc);
    const outbound = `${rec.interactionId}-agent`;
    expect(originate.query).toEqual({
      endpoint: 'PJSIP/alice.smith', app: 'switchboard', appArgs: `dialed,${rec.interactionId}`,
      callerId: CALLER, timeout: '1', channelId: outbound,
    });
    const ring = findRequest(h.fake, 'POST', `/ari/channels/${inbound}/ring`);
    expect(ring).toBeDefined();
    expect(rest(h.fake).indexOf(ring!)).toBeLessThan(rest(h.fake).findIndex((r) => r.method === 'POST' && r.path === '/ari/channels'));
    expect(h.presence.asked).toEqual(['1001']);

    h.fake.answerOutbound(outbound);
    await h.fake.waitForRequest((r) => r.path === `/ari/bridges/${rec.interactionId}-bridge/addChannel`);
    await waitFor(() => bridgeSize(h.fake) === 2);
    expect(findRequest(h.fake, 'POST', `/ari/channels/${inbound}/answer`)).toBeDefined();
    expect(findRequest(h.fake, 'POST', '/ari/bridges')?.query).toEqual({ type: 'mixing', bridgeId: `${rec.interactionId}-bridge` });
    expect(findRequest(h.fake, 'POST', /\/addChannel$/)?.query).toEqual({ channel: `${inbound},${outbound}` });
    await onlyRecord(h.cc, (r) => r.outcome === 'answered');

    await new Promise((r) => setTimeout(r, 1100));
    h.fake.hangupFromFarEnd(inbound);
    await h.fake.waitForRequest((r) => r.method === 'DELETE' && r.path === `/ari/channels/${outbound}`);
    await h.fake.waitForRequest((r) => r.method === 'DELETE' && r.path === `/ari/bridges/${rec.interactionId}-bridge`);
    await noActiveCalls(h);
    const done = await onlyRecord(h.cc);
    expect(done).toMatchObject({
      callType: 'Direct Agent Call', agentId: '1001', agentUsername: 'alice.smith', callerNumber: CALLER, calledNumber: ALICE_DID,
      outcome: 'answered', recordingStatus: 'none', emailStatus: 'not applicable',
    });
    expect(done.durationSeconds).toBeGreaterThanOrEqual(1);
    expect(done.divertReason).toBeUndefined();
    expect(h.fake.channels()).toEqual([]);
    expect(h.fake.bridgesList()).toEqual([]);
    // No per-call listeners: only the workflow's own, installed once.
    expect(h.cc.ari!.listenerCount('StasisStart')).toBe(listenersBefore);
    // A child logger per call carries callId, did and agentId.
    expect(h.logs().some((l) => l.callId === rec.interactionId && l.did === ALICE_DID && l.agentId === '1001')).toBe(true);
    await h.cc.workflow!.stop();
    expect(h.cc.ari!.listenerCount('StasisStart')).toBe(listenersBefore - 1);
  });

  it('the agent hangs up first: the caller is hung up and the bridge destroyed', async () => {
    const h = await setup();
    const inbound = await callIn(h);
    const rec = await onlyRecord(h.cc);
    await h.fake.waitForRequest((r) => r.method === 'POST' && r.path === '/ari/channels');
    h.fake.answerOutbound(`${rec.interactionId}-agent`);
    await onlyRecord(h.cc, (r) => r.outcome === 'answered');
    await waitFor(() => bridgeSize(h.fake) === 2);
    h.fake.hangupFromFarEnd(`${rec.interactionId}-agent`);
    await h.fake.waitForRequest((r) => r.method === 'DELETE' && r.path === `/ari/channels/${inbound}`);
    await noActiveCalls(h);
    expect(h.fake.bridgesList()).toEqual([]);
    expect((await onlyRecord(h.cc)).outcome).toBe('answered');
  });
});

describe('DID workflow: voicemail', () => {
  it('no answer within the ring time: agent leg cancelled, greeting, recording, file kept and emailed', async () => {
    const h = await setup();
    const inbound = await callIn(h);
    const rec = await onlyRecord(h.cc);
    const id = rec.interactionId;
    const name = await recordingStarted(h);
    expect(name).toBe(`switchboard-${id}`);
    // Our own ring timer (1 s) cancelled the agent leg: the fake never ends it by itself.
    expect(findRequest(h.fake, 'DELETE', `/ari/channels/${id}-agent`)?.query).toEqual({ reason: 'no_answer' });
    expect(findRequest(h.fake, 'GET', '/ari/recordings/stored/greeting-1001')).toBeDefined();
    expect(findRequest(h.fake, 'POST', `/ari/channels/${inbound}/play`)?.query).toEqual({
      media: 'sound:vm-theperson,digits:1001,sound:vm-isunavail,sound:vm-intro', playbackId: `${id}-greeting`,
    });
    expect(findRequest(h.fake, 'POST', `/ari/channels/${inbound}/record`)?.query).toEqual({
      name, format: 'wav', maxDurationSeconds: '180', maxSilenceSeconds: '5', beep: 'true', terminateOn: '#', ifExists: 'fail',
    });
    const recordAt = new Date();
    expect((await onlyRecord(h.cc)).callType).toBe('Diverted Call');

    h.fake.finishRecording(name, { durationSeconds: 7 });
    await waitFor(() => h.smtp.messages.length === 1, 5000);
    const final = await onlyRecord(h.cc, (r) => r.emailStatus === 'sent');
    expect(final).toMatchObject({
      callType: 'Diverted Call', divertReason: 'no answer', outcome: 'voicemail', recordingStatus: 'available',
      recordingName: name, durationSeconds: 7,
    });
    const expectedBytes = makeWav(7 * 16000);
    const file = final.recordingFile!;
    expect(file.startsWith(join(h.dataDir, 'recordings'))).toBe(true);
    expect(readFileSync(file).equals(expectedBytes)).toBe(true);
    // yyyymmdd_hhmm_<interaction id>.wav in the agent's time zone (Australia/Sydney).
    const names = [recordAt, new Date(recordAt.getTime() - 60_000)].map((d) => recordingFileName(localDateTime(d, 'Australia/Sydney'), id, 'wav'));
    expect(names).toContain(basename(file));

    const msg = h.smtp.messages[0]!;
    expect(msg.to).toEqual(['alice.smith@example.com']);
    const parsed = parseMessage(msg.raw);
    const attachment = parsed.parts.find((p) => p.filename);
    expect(attachment?.filename).toBe(basename(file));
    expect(attachment?.body.equals(expectedBytes)).toBe(true);
    expect(parsed.headers['x-switchboard-interaction-id']).toBe(id);

    // The caller is still there: "message saved", goodbye, hang up. Asterisk's copy is removed.
    await h.fake.waitForRequest((r) => r.method === 'POST' && r.path === `/ari/channels/${inbound}/play` && r.query.playbackId === `${id}-goodbye`);
    await h.fake.waitForRequest((r) => r.method === 'DELETE' && r.path === `/ari/channels/${inbound}`);
    expect(findRequest(h.fake, 'DELETE', `/ari/recordings/stored/${name}`)).toBeDefined();
    expect(h.fake.storedRecordings()).toEqual([]);
    await noActiveCalls(h);
  });

  it('no answer, Asterisk ends the agent leg at the originate timeout (cause 19, as 22.10.1): voicemail, "no answer"', async () => {
    const h = await setup({ ringGraceMs: 2000 });
    h.fake.setOriginateBehavior({ kind: 'ring', timesOut: true });
    const inbound = await callIn(h);
    const rec = await onlyRecord(h.cc);
    await recordingStarted(h);
    // Asterisk ended the leg itself: nothing for us to cancel.
    expect(findRequest(h.fake, 'DELETE', `/ari/channels/${rec.interactionId}-agent`)).toBeUndefined();
    expect(h.fake.sentEvents().filter((e) => (e.channel as { id?: string } | undefined)?.id === `${rec.interactionId}-agent` || (e.peer as { id?: string } | undefined)?.id === `${rec.interactionId}-agent`)
      .map((e) => `${String(e.type)}${e.dialstatus !== undefined ? `:${String(e.dialstatus)}` : ''}`))
      .toEqual(['Dial:', 'ChannelStateChange', 'Dial:RINGING', 'ChannelDestroyed']);
    expect(await onlyRecord(h.cc)).toMatchObject({ callType: 'Diverted Call', divertReason: 'no answer' });
    expect(findRequest(h.fake, 'POST', `/ari/channels/${inbound}/play`)).toBeDefined();
  });

  it('busy (cause 17): voicemail with divert reason "busy"', async () => {
    const h = await setup();
    h.fake.setOriginateBehavior({ kind: 'reject', cause: 17 });
    await callIn(h);
    const name = await recordingStarted(h);
    expect((await onlyRecord(h.cc)).divertReason).toBe('busy');
    h.fake.finishRecording(name, { durationSeconds: 4 });
    await onlyRecord(h.cc, (r) => r.emailStatus === 'sent');
    expect(h.smtp.messages).toHaveLength(1);
  });

  it('caller id shown to the agent: name and number, or the number alone when the name is empty or unsafe', () => {
    expect(callerIdOf('Jane Doe', '+61400111222')).toBe('"Jane Doe" <+61400111222>');
    expect(callerIdOf('', '+61400111222')).toBe('+61400111222');
    expect(callerIdOf('x" <evil>', '+61400111222')).toBe('+61400111222');
  });

  it('callee refuses with another cause before answer: voicemail, reason from the cause', async () => {
    expect(divertReasonForCause(17)).toBe('busy');
    expect(divertReasonForCause(19)).toBe('no answer');
    expect(divertReasonForCause(27)).toBe('failed');
    const h = await setup();
    h.fake.setOriginateBehavior({ kind: 'reject', cause: 27 });
    await callIn(h);
    await recordingStarted(h);
    expect((await onlyRecord(h.cc)).divertReason).toBe('failed');
  });

  it('originate refused by Asterisk (REST error): voicemail, reason "failed"', async () => {
    const h = await setup();
    h.fake.setOriginateBehavior({ kind: 'error', status: 400, message: 'Endpoint not found' });
    await callIn(h);
    await recordingStarted(h);
    expect((await onlyRecord(h.cc)).divertReason).toBe('failed');
  });

  for (const state of ['paused', 'logged out', 'busy'] as const) {
    it(`agent ${state}: voicemail at once, nobody rung`, async () => {
      const h = await setup();
      h.presence.set('1001', state, { reason: 'Lunch' });
      await callIn(h);
      const name = await recordingStarted(h);
      expect(findRequest(h.fake, 'POST', '/ari/channels')).toBeUndefined();
      expect((await onlyRecord(h.cc)).divertReason).toBe(state);
      h.fake.finishRecording(name, { durationSeconds: 3 });
      const rec = await onlyRecord(h.cc, (r) => r.emailStatus === 'sent');
      expect(rec).toMatchObject({ callType: 'Diverted Call', outcome: 'voicemail', recordingStatus: 'available' });
    });
  }

  it('a pause that has expired (stub presence): the next call rings the agent', async () => {
    const h = await setup();
    let now = Date.parse('2024-05-01T00:00:00Z');
    h.presence.now = () => now;
    h.presence.set('1001', 'paused', { until: now + 30 * 60_000 });
    const first = await callIn(h);
    await recordingStarted(h);
    expect(findRequest(h.fake, 'POST', '/ari/channels')).toBeUndefined();
    h.fake.hangupFromFarEnd(first);
    await noActiveCalls(h);
    now += 31 * 60_000;
    await callIn(h);
    await h.fake.waitForRequest((r) => r.method === 'POST' && r.path === '/ari/channels');
  });

  // Runs once src/presence (PresenceService) is in the tree; imported by path so this file compiles without it.
  it.skipIf(!existsSync(PRESENCE_MODULE))('a timed pause (real PresenceService, fake clock) ends: the next call rings the agent', async () => {
    const { PresenceService } = (await import(PRESENCE_MODULE)) as { PresenceService: PresenceServiceCtor };
    let now = Date.parse('2024-05-01T00:00:00Z');
    const timers: { at: number; fn: () => void }[] = [];
    const dir = mkdtempSync(join(tmpdir(), 'sb-presence-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const store = await storeWith();
    const service = new PresenceService({
      stateFile: join(dir, 'presence.json'), logger: createLogger({ level: 'silent' }), now: () => now, watch: false, pollMs: 0,
      setTimer: (fn, ms) => { const t = { at: now + ms, fn }; timers.push(t); return () => { timers.splice(timers.indexOf(t), 1); }; },
    });
    await service.start();
    cleanups.push(() => service.stop());
    service.setAgents(store);
    await service.setManual('1001', 'paused', { reason: 'Lunch', forMs: 30 * 60_000 });
    expect(service.get('1001')?.state).toBe('paused');
    const h = await setup({ store, presence: service });
    const first = await callIn(h);
    await recordingStarted(h);
    expect(findRequest(h.fake, 'POST', '/ari/channels')).toBeUndefined();
    h.fake.hangupFromFarEnd(first);
    await noActiveCalls(h);
    now += 31 * 60_000;
    for (const t of timers.filter((x) => x.at <= now)) t.fn();
    expect(service.get('1001')?.state).toBe('available');
    await callIn(h);
    await h.fake.waitForRequest((r) => r.method === 'POST' && r.path === '/ari/channels');
  });

  it('agent with a stored greeting: it is played instead of the stock prompts', async () => {
    const h = await setup();
    h.presence.set('1001', 'paused');
    h.fake.addStoredRecording('greeting-1001');
    const inbound = await callIn(h);
    await recordingStarted(h);
    expect(findRequest(h.fake, 'POST', `/ari/channels/${inbound}/play`)?.query.media).toBe('recording:greeting-1001,sound:vm-intro');
  });

  it('caller hangs up during the greeting (PlaybackFinished "failed" before StasisEnd, as Asterisk 22.10.1): "no message", no recording, no error', async () => {
    const h = await setup();
    h.presence.set('1001', 'paused');
    h.fake.setPlaybackDelay(null); // the greeting is still playing when the caller hangs up
    const inbound = await callIn(h);
    await h.fake.waitForRequest((r) => r.method === 'POST' && r.path === `/ari/channels/${inbound}/play`);
    await h.fake.waitForEvent((e) => e.type === 'PlaybackStarted');
    h.fake.hangupFromFarEnd(inbound);
    await noActiveCalls(h);
    const rec = await onlyRecord(h.cc);
    expect(rec).toMatchObject({ outcome: 'no message', divertReason: 'paused', recordingStatus: 'none' });
    expect(rec.note).toBeUndefined();
    expect(h.fake.sentEvents().find((e) => e.type === 'PlaybackFinished')).toMatchObject({ playback: { state: 'failed' } });
    expect(findRequest(h.fake, 'POST', /\/record$/)).toBeUndefined();
    expect(findRequest(h.fake, 'POST', /\/continue$/)).toBeUndefined();
    expect(h.logs().filter((l) => (l.level as number) >= 40 && l.callId === rec.interactionId)).toEqual([]);
  });

  it('a prompt that fails while the caller is still there (missing sound file): warning, the recording goes on', async () => {
    const h = await setup();
    h.presence.set('1001', 'paused');
    h.fake.setMissingMedia(['sound:vm-isunavail']);
    await callIn(h);
    await recordingStarted(h);
    const rec = await onlyRecord(h.cc);
    expect(h.logs().some((l) => l.level === 40 && l.callId === rec.interactionId && l.media === 'sound:vm-isunavail' && String(l.msg).includes('sound file'))).toBe(true);
  });

  it('caller hangs up while recording: the message is kept and emailed', async () => {
    const h = await setup({ minDurationSeconds: 1 });
    h.presence.set('1001', 'paused');
    const inbound = await callIn(h);
    const name = await recordingStarted(h);
    await new Promise((r) => setTimeout(r, 1100));
    h.fake.hangupFromFarEnd(inbound); // Asterisk finishes the recording, then StasisEnd
    const rec = await onlyRecord(h.cc, (r) => r.emailStatus === 'sent');
    expect(rec).toMatchObject({ outcome: 'voicemail', recordingStatus: 'available', recordingName: name });
    expect(rec.durationSeconds).toBeGreaterThanOrEqual(1);
    expect(h.smtp.messages).toHaveLength(1);
    await noActiveCalls(h);
    // Nothing is played to a caller who has gone.
    expect(rest(h.fake).filter((r) => r.path === `/ari/channels/${inbound}/play`)).toHaveLength(1);
  });

  it('caller hangs up while recording and RecordingFinished never comes: the stored recording is used', async () => {
    const h = await setup({ minDurationSeconds: 1 });
    h.presence.set('1001', 'paused');
    const inbound = await callIn(h);
    const name = await recordingStarted(h);
    // Simulate a lost RecordingFinished: the recording is stored, only StasisEnd reaches us.
    h.fake.addStoredRecording(name, 'wav', makeWav(3 * 16000));
    h.fake.sendEvent({ type: 'StasisEnd', channel: h.fake.channel(inbound)! });
    const rec = await onlyRecord(h.cc, (r) => r.emailStatus === 'sent');
    expect(rec).toMatchObject({ outcome: 'voicemail', recordingStatus: 'available', durationSeconds: 3 });
    expect(wavDurationSeconds(makeWav(3 * 16000))).toBe(3);
  });

  it('short recording: dropped, "no message", nothing emailed', async () => {
    const h = await setup();
    h.presence.set('1001', 'paused');
    const inbound = await callIn(h);
    const name = await recordingStarted(h);
    h.fake.finishRecording(name, { durationSeconds: 1 });
    await h.fake.waitForRequest((r) => r.method === 'DELETE' && r.path === `/ari/recordings/stored/${name}`);
    await h.fake.waitForRequest((r) => r.method === 'DELETE' && r.path === `/ari/channels/${inbound}`);
    await noActiveCalls(h);
    const rec = await onlyRecord(h.cc);
    expect(rec).toMatchObject({ outcome: 'no message', recordingStatus: 'none', emailStatus: 'not applicable', divertReason: 'paused' });
    expect(rec.recordingFile).toBeUndefined();
    expect(existsSync(join(h.dataDir, 'recordings')) ? readdirSync(join(h.dataDir, 'recordings')) : []).toEqual([]);
    expect(h.cc.outbox.pending()).toEqual([]);
    expect(h.smtp.messages).toHaveLength(0);
  });

  it('agent without an email: recording kept, warning logged, email status "no email"', async () => {
    const h = await setup({ store: await storeWith((a) => { const { email: _e, ...rest } = a; return rest as Agent; }) });
    h.presence.set('1001', 'logged out');
    await callIn(h);
    const name = await recordingStarted(h);
    h.fake.finishRecording(name, { durationSeconds: 5 });
    const rec = await onlyRecord(h.cc, (r) => r.outcome === 'voicemail');
    expect(rec).toMatchObject({ emailStatus: 'no email', recordingStatus: 'available' });
    expect(readFileSync(rec.recordingFile!).equals(makeWav(5 * 16000))).toBe(true);
    await waitFor(() => h.logs().some((l) => l.level === 40 && String(l.msg).includes('no email address') && l.agentId === '1001'));
    expect(h.cc.outbox.pending()).toEqual([]);
    expect(h.smtp.messages).toHaveLength(0);
  });
});

describe('DID workflow: caller gives up, unknown DID', () => {
  it('caller hangs up while the agent rings: the agent leg is cancelled, outcome "abandoned"', async () => {
    const h = await setup();
    const inbound = await callIn(h);
    const rec = await onlyRecord(h.cc);
    await h.fake.waitForRequest((r) => r.method === 'POST' && r.path === '/ari/channels');
    h.fake.hangupFromFarEnd(inbound);
    await h.fake.waitForRequest((r) => r.method === 'DELETE' && r.path === `/ari/channels/${rec.interactionId}-agent`);
    await noActiveCalls(h);
    expect(await onlyRecord(h.cc)).toMatchObject({ outcome: 'abandoned', callType: 'Direct Agent Call', recordingStatus: 'none' });
    // The ring timer is gone too: no voicemail starts a second later.
    await new Promise((r) => setTimeout(r, 1200));
    expect(findRequest(h.fake, 'POST', /\/record$/)).toBeUndefined();
    expect(h.fake.channels()).toEqual([]);
  });

  it('unknown DID: answer, "not in service", hang up; logged, no call record', async () => {
    const h = await setup();
    const inbound = await callIn(h, '+61299999999');
    await h.fake.waitForRequest((r) => r.method === 'DELETE' && r.path === `/ari/channels/${inbound}`);
    expect(findRequest(h.fake, 'POST', `/ari/channels/${inbound}/play`)?.query.media).toBe('sound:ss-noservice');
    expect(findRequest(h.fake, 'POST', '/ari/channels')).toBeUndefined();
    await noActiveCalls(h);
    expect(h.cc.records.query({ from: new Date(0) })).toEqual([]);
    expect(h.logs().some((l) => l.level === 40 && l.did === '+61299999999' && String(l.msg).includes('no agent has this DID'))).toBe(true);
  });
});

describe('DID workflow: fail safe', () => {
  it('a REST error mid-workflow sends the caller to the dialplan at the DID\'s vm priority', async () => {
    const h = await setup();
    h.presence.set('1001', 'paused');
    h.fake.setResponse('POST', '/channels/{id}/record', { status: 500, body: { message: 'Internal Server Error' } });
    const inbound = await callIn(h);
    await h.fake.waitForRequest((r) => r.path === `/ari/channels/${inbound}/continue`, 5000);
    expect(h.fake.continuedTo(inbound)).toEqual({ context: 'switchboard-dids', extension: ALICE_DID, label: DID_VM_LABEL });
    await noActiveCalls(h);
    const rec = await onlyRecord(h.cc);
    expect(rec).toMatchObject({ outcome: 'voicemail', divertReason: 'failed', callType: 'Diverted Call' });
    expect(rec.note).toContain('Internal Server Error');
    expect(h.logs().some((l) => l.level === 50 && l.callId === rec.interactionId && String(l.msg).includes('call control error'))).toBe(true);
  });

  it('no store loaded yet: the caller continues in the dialplan (its own context) at the vm priority', async () => {
    const h = await setup({ noStore: true });
    const inbound = await callIn(h);
    await h.fake.waitForRequest((r) => r.path === `/ari/channels/${inbound}/continue`, 5000);
    expect(h.fake.continuedTo(inbound)).toEqual({ context: 'from-trunk', extension: ALICE_DID, label: DID_VM_LABEL });
    await noActiveCalls(h);
    expect(h.cc.records.query({ from: new Date(0) })).toEqual([]);
  });

  it('when continuing in the dialplan fails too, the caller is hung up cleanly', async () => {
    const h = await setup();
    h.presence.set('1001', 'paused');
    h.fake.setResponse('POST', '/channels/{id}/play', { status: 500, body: { message: 'boom' } });
    h.fake.setResponse('POST', '/channels/{id}/continue', { status: 500, body: { message: 'no dialplan' } });
    const inbound = await callIn(h);
    await h.fake.waitForRequest((r) => r.method === 'DELETE' && r.path === `/ari/channels/${inbound}`, 5000);
    await noActiveCalls(h);
    expect(await onlyRecord(h.cc)).toMatchObject({ outcome: 'no message', divertReason: 'paused' });
  });

  it('the vm label exists in templates/extensions/did.hbs', () => {
    const template = readFileSync(new URL('../templates/extensions/did.hbs', import.meta.url), 'utf8');
    const lines = template.split('\n').filter((l) => /^\s*(exten|same)\s*=>/.test(l));
    expect(lines.filter((l) => l.includes(`n(${DID_VM_LABEL}),VoiceMail(`)).length).toBeGreaterThan(0);
  });
});

describe('DID workflow: keeping the message when a step fails', () => {
  it('Asterisk\'s file cannot be fetched at first: the caller hears "message saved", the message is kept and emailed on a retry', async () => {
    const h = await setup();
    h.presence.set('1001', 'paused');
    const inbound = await callIn(h);
    const name = await recordingStarted(h);
    const rec = await onlyRecord(h.cc);
    h.fake.setResponse('GET', '/recordings/stored/{name}/file', { status: 500, body: { message: 'Internal Server Error' } });
    h.fake.finishRecording(name, { durationSeconds: 4 });
    const goodbye = await h.fake.waitForRequest((r) => r.method === 'POST' && r.path === `/ari/channels/${inbound}/play` && r.query.playbackId === `${rec.interactionId}-goodbye`, 5000);
    expect(goodbye.query.media).toBe('sound:vm-msgsaved,sound:vm-goodbye');
    await waitFor(() => h.logs().some((l) => String(l.msg).includes('the message could not be kept yet: retrying')), 5000);
    expect(h.fake.storedRecordings().map((r) => r.name)).toEqual([name]); // Asterisk's copy is kept meanwhile
    h.fake.setResponse('GET', '/recordings/stored/{name}/file', undefined);
    await waitFor(() => h.cc.records.get(rec.interactionId)?.emailStatus === 'sent', 5000);
    expect(h.cc.records.get(rec.interactionId)).toMatchObject({ outcome: 'voicemail', recordingStatus: 'available', durationSeconds: 4 });
    expect(h.smtp.messages).toHaveLength(1);
    expect(h.fake.storedRecordings()).toEqual([]);
    expect(findRequest(h.fake, 'POST', `/ari/channels/${inbound}/continue`)).toBeUndefined();
  });

  it('the recordings directory cannot be written at first: retried until it can, the record stays "in progress" meanwhile', async () => {
    const h = await setup({ minDurationSeconds: 0 }); // the caller hangs up at once
    h.presence.set('1001', 'paused');
    const inbound = await callIn(h);
    await recordingStarted(h);
    const rec = await onlyRecord(h.cc);
    const dir = join(h.dataDir, 'recordings');
    rmSync(dir, { recursive: true, force: true });
    writeFileSync(dir, 'not a directory'); // mkdir and the write fail
    h.fake.hangupFromFarEnd(inbound); // the caller hangs up: RecordingFinished follows
    await waitFor(() => h.logs().filter((l) => String(l.msg).includes('the message could not be kept yet: retrying')).length >= 2, 5000);
    await noActiveCalls(h);
    expect(h.cc.records.get(rec.interactionId)?.outcome).toBe('in progress');
    rmSync(dir);
    await waitFor(() => h.cc.records.get(rec.interactionId)?.emailStatus === 'sent', 5000);
    expect(h.cc.records.get(rec.interactionId)).toMatchObject({ outcome: 'voicemail', recordingStatus: 'available' });
    expect(readdirSync(dir)).toHaveLength(1);
    expect(h.smtp.messages).toHaveLength(1);
  });

  it('still failing after the last retry: Asterisk keeps the recording, the record says why, and the next start keeps and emails it', async () => {
    const h = await setup({ minDurationSeconds: 0 }); // the caller hangs up at once
    h.presence.set('1001', 'paused');
    const inbound = await callIn(h);
    const name = await recordingStarted(h);
    const rec = await onlyRecord(h.cc);
    h.fake.setResponse('GET', '/recordings/stored/{name}/file', { status: 500, body: { message: 'Internal Server Error' } });
    h.fake.hangupFromFarEnd(inbound);
    await waitFor(() => h.logs().some((l) => String(l.msg).includes('the message could not be kept: Asterisk keeps the recording')), 10_000);
    expect(h.cc.records.get(rec.interactionId)).toMatchObject({ outcome: 'in progress', note: expect.stringContaining(`recorded in Asterisk as ${name}`) });
    expect(h.fake.storedRecordings().map((r) => r.name)).toEqual([name]);
    await h.cc.stop();
    h.fake.setResponse('GET', '/recordings/stored/{name}/file', undefined);
    await waitFor(() => !h.fake.connectedApps().includes('switchboard'));
    const cc2 = await h.restart();
    await waitFor(() => cc2.records.get(rec.interactionId)?.emailStatus === 'sent', 5000);
    expect(cc2.records.get(rec.interactionId)).toMatchObject({ outcome: 'voicemail', recordingStatus: 'available' });
    expect(h.smtp.messages).toHaveLength(1);
  });
  it('caller gone while recording, RecordingFinished lost, Asterisk\'s file not fetched at first: retried and kept, never closed as "no message"', async () => {
    const h = await setup({ minDurationSeconds: 1 });
    h.presence.set('1001', 'paused');
    const inbound = await callIn(h);
    const name = await recordingStarted(h);
    const id = (await onlyRecord(h.cc)).interactionId;
    // Asterisk stored the message, but only StasisEnd reaches us; its file cannot be fetched yet.
    h.fake.addStoredRecording(name, 'wav', makeWav(3 * 16000));
    h.fake.setResponse('GET', '/recordings/stored/{name}/file', { status: 500, body: { message: 'Internal Server Error' } });
    h.fake.sendEvent({ type: 'StasisEnd', channel: h.fake.channel(inbound)! });
    await waitFor(() => h.logs().some((l) => l.callId === id && String(l.msg).includes('the message could not be kept yet: retrying')), 5000);
    expect(h.cc.records.get(id)?.outcome).toBe('in progress');
    h.fake.setResponse('GET', '/recordings/stored/{name}/file', undefined);
    await waitFor(() => h.cc.records.get(id)?.emailStatus === 'sent', 5000);
    expect(h.cc.records.get(id)).toMatchObject({ outcome: 'voicemail', recordingStatus: 'available', durationSeconds: 3 });
    expect(h.smtp.messages).toHaveLength(1);
  });

  it('caller gone while recording, RecordingFinished lost, Asterisk fails to say whether it stored the message: the fail safe hands it to the save, kept and emailed', async () => {
    const h = await setup({ minDurationSeconds: 1 });
    h.presence.set('1001', 'paused');
    const inbound = await callIn(h);
    const name = await recordingStarted(h);
    const id = (await onlyRecord(h.cc)).interactionId;
    h.fake.addStoredRecording(name, 'wav', makeWav(3 * 16000));
    h.fake.setResponse('GET', '/recordings/stored/{name}', { status: 500, body: { message: 'Internal Server Error' } });
    h.fake.sendEvent({ type: 'StasisEnd', channel: h.fake.channel(inbound)! });
    await waitFor(() => h.cc.records.get(id)?.emailStatus === 'sent', 5000);
    expect(h.cc.records.get(id)).toMatchObject({ outcome: 'voicemail', recordingStatus: 'available', durationSeconds: 3 });
    expect(h.logs().some((l) => l.callId === id && String(l.msg).includes('call control error'))).toBe(true);
    expect(h.smtp.messages).toHaveLength(1);
  });

  it('stopped while the outbox cannot take the email: the record never says "queued" for it, the stop says so, and the next start queues it', async () => {
    const h = await setup();
    h.presence.set('1001', 'paused');
    const inbound = await callIn(h);
    const name = await recordingStarted(h);
    const id = (await onlyRecord(h.cc)).interactionId;
    h.fake.setPlaybackDelay(null); // the caller is still hearing "message saved" when the daemon stops
    const pending = join(h.dataDir, 'outbox', 'pending');
    rmSync(pending, { recursive: true, force: true });
    writeFileSync(pending, 'not a directory'); // the outbox cannot store a job
    h.fake.finishRecording(name, { durationSeconds: 4 });
    await waitFor(() => h.logs().some((l) => l.callId === id && String(l.msg).includes('the message could not be kept yet: retrying')), 5000);
    const kept = h.cc.records.get(id)!;
    expect(kept).toMatchObject({ recordingStatus: 'available', outcome: 'in progress' });
    expect(existsSync(kept.recordingFile!)).toBe(true);
    expect(kept.emailStatus).not.toBe('queued');
    await h.cc.stop();
    expect(h.logs().some((l) => l.callId === id && l.interactionId === id && String(l.msg).includes('stopping before the voicemail email was queued'))).toBe(true);
    expect(h.logs().some((l) => String(l.msg).includes('stopping with a message not kept yet'))).toBe(false);
    rmSync(pending);
    await waitFor(() => !h.fake.connectedApps().includes('switchboard'));
    const cc2 = await h.restart();
    await waitFor(() => cc2.records.get(id)?.emailStatus === 'sent', 5000);
    // The caller left in our app was hung up, not sent to a second voicemail.
    await h.fake.waitForRequest((r) => r.method === 'DELETE' && r.path === `/ari/channels/${inbound}`, 5000);
    expect(findRequest(h.fake, 'POST', `/ari/channels/${inbound}/continue`)).toBeUndefined();
    expect(cc2.records.get(id)).toMatchObject({ outcome: 'voicemail', recordingStatus: 'available', durationSeconds: 4 });
    expect(cc2.records.get(id)?.note).toBeUndefined();
    expect(h.smtp.messages).toHaveLength(1);
  });

  it('the sweep at start: Asterisk failing to say whether it stored a message leaves the record in progress, asked again, and the message is kept', async () => {
    const h = await setup();
    h.presence.set('1001', 'paused');
    const inbound = await callIn(h);
    const name = await recordingStarted(h);
    const id = (await onlyRecord(h.cc)).interactionId;
    await h.cc.stop();
    await waitFor(() => !h.fake.connectedApps().includes('switchboard'));
    h.fake.finishRecording(name, { durationSeconds: 4 }); // stored in Asterisk; nobody listens
    h.fake.hangupFromFarEnd(inbound);
    h.fake.setResponse('GET', '/recordings/stored/{name}', { status: 500, body: { message: 'Internal Server Error' } });
    const cc2 = await h.restart();
    await waitFor(() => h.logs().some((l) => l.callId === id && String(l.msg).includes('could not ask Asterisk for the message')), 5000);
    expect(cc2.records.get(id)?.outcome).toBe('in progress');
    h.fake.setResponse('GET', '/recordings/stored/{name}', undefined);
    await waitFor(() => cc2.records.get(id)?.emailStatus === 'sent', 5000);
    expect(cc2.records.get(id)).toMatchObject({ outcome: 'voicemail', recordingStatus: 'available', durationSeconds: 4 });
    expect(h.smtp.messages).toHaveLength(1);
  });

  it('a save given up on (the file keeps failing) is taken up again at the next reconnect to ARI, not only at the next start', async () => {
    const h = await setup({ minDurationSeconds: 0 });
    h.presence.set('1001', 'paused');
    const inbound = await callIn(h);
    const name = await recordingStarted(h);
    const id = (await onlyRecord(h.cc)).interactionId;
    h.fake.setResponse('GET', '/recordings/stored/{name}/file', { status: 500, body: { message: 'Internal Server Error' } });
    h.fake.hangupFromFarEnd(inbound);
    await waitFor(() => h.logs().some((l) => String(l.msg).includes('the message could not be kept: Asterisk keeps the recording')), 10_000);
    const gaveUp = h.logs().find((l) => String(l.msg).includes('the message could not be kept: Asterisk keeps the recording'))!;
    expect(gaveUp).toMatchObject({ level: 50, interactionId: id, recording: name });
    expect(h.cc.records.get(id)?.outcome).toBe('in progress');
    h.fake.setResponse('GET', '/recordings/stored/{name}/file', undefined);
    const sockets = h.fake.webSocketConnections();
    h.fake.dropWebSockets();
    await waitFor(() => h.fake.webSocketConnections() > sockets, 5000);
    await waitFor(() => h.cc.records.get(id)?.emailStatus === 'sent', 5000);
    expect(h.cc.records.get(id)).toMatchObject({ outcome: 'voicemail', recordingStatus: 'available' });
    expect(h.smtp.messages).toHaveLength(1);
    expect(h.fake.storedRecordings()).toEqual([]);
  });
});

describe('DID workflow: mail delivery', () => {
  it('SMTP down, then up: the email is delivered once and the record says "sent"', async () => {
    const h = await setup({ smtpDown: true });
    h.presence.set('1001', 'paused');
    await callIn(h);
    const name = await recordingStarted(h);
    h.fake.finishRecording(name, { durationSeconds: 5 });
    await onlyRecord(h.cc, (r) => r.emailStatus === 'queued');
    await waitFor(() => (h.cc.outbox.pending()[0]?.attempts ?? 0) >= 1, 5000);
    await h.smtp.setDown(false);
    await onlyRecord(h.cc, (r) => r.emailStatus === 'sent');
    await new Promise((r) => setTimeout(r, 300));
    expect(h.smtp.messages).toHaveLength(1);
  });

  it('daemon restarted with mail in the outbox: the new outbox delivers it', async () => {
    const h = await setup({ smtpDown: true });
    h.presence.set('1001', 'paused');
    await callIn(h);
    const name = await recordingStarted(h);
    h.fake.finishRecording(name, { durationSeconds: 5 });
    const queued = await onlyRecord(h.cc, (r) => r.emailStatus === 'queued');
    await h.cc.stop();
    expect(readdirSync(join(h.dataDir, 'outbox', 'pending')).filter((f) => f.endsWith('.json'))).toHaveLength(1);
    await h.smtp.setDown(false);
    const cc2 = await h.restart();
    await waitFor(() => cc2.records.get(queued.interactionId)?.emailStatus === 'sent', 5000);
    expect(h.smtp.messages).toHaveLength(1);
    const attachment = parseMessage(h.smtp.messages[0]!.raw).parts.find((p) => p.filename);
    expect(attachment?.filename).toBe(basename(queued.recordingFile!));
    expect(attachment?.body.equals(makeWav(5 * 16000))).toBe(true);
  });
});

describe('DID workflow: ARI connection', () => {
  it('events socket dropped mid-call: the call is resynchronised and finished properly', async () => {
    const { h, inbound, outbound } = await bridged();
    await onlyRecord(h.cc, (r) => r.outcome === 'answered');
    const sockets = h.fake.webSocketConnections();
    h.fake.dropWebSockets();
    h.fake.hangupFromFarEnd(outbound); // the events of this hang-up are lost
    await waitFor(() => h.fake.webSocketConnections() > sockets, 5000);
    await h.fake.waitForRequest((r) => r.method === 'GET' && r.path === '/ari/channels', 5000);
    await h.fake.waitForRequest((r) => r.method === 'DELETE' && r.path === `/ari/channels/${inbound}`, 5000);
    await noActiveCalls(h);
    expect(h.fake.bridgesList()).toEqual([]);
    expect((await onlyRecord(h.cc)).outcome).toBe('answered');
  });

  it('socket dropped while the agent rings and the agent answers meanwhile: bridged after reconnect', async () => {
    const h = await setup({ store: await storeWith((a) => ({ ...a, voice: { ...a.voice, ringTimeoutSeconds: 5 } })) });
    const inbound = await callIn(h);
    const rec = await onlyRecord(h.cc);
    await h.fake.waitForRequest((r) => r.method === 'POST' && r.path === '/ari/channels');
    const sockets = h.fake.webSocketConnections();
    h.fake.dropWebSockets();
    h.fake.answerOutbound(`${rec.interactionId}-agent`); // StasisStart lost
    await waitFor(() => h.fake.webSocketConnections() > sockets, 5000);
    await waitFor(() => bridgeSize(h.fake) === 2, 5000);
    expect((await onlyRecord(h.cc)).outcome).toBe('answered');
    h.fake.hangupFromFarEnd(inbound);
    await noActiveCalls(h);
  });

  it('a caller left in our app by an earlier run during the greeting is sent to the dialplan voicemail on connect', async () => {
    const h = await setup();
    h.presence.set('1001', 'paused');
    h.fake.setPlaybackDelay(null);
    const inbound = await callIn(h);
    await h.fake.waitForRequest((r) => r.method === 'POST' && r.path === `/ari/channels/${inbound}/play`);
    const rec = await onlyRecord(h.cc);
    await h.cc.stop(); // the daemon goes away; Asterisk keeps the caller in Stasis
    await waitFor(() => !h.fake.connectedApps().includes('switchboard'));
    const cc2 = await h.restart();
    await h.fake.waitForRequest((r) => r.path === `/ari/channels/${inbound}/continue`, 5000);
    expect(h.fake.continuedTo(inbound)).toEqual({ context: 'switchboard-dids', extension: ALICE_DID, label: DID_VM_LABEL });
    await waitFor(() => cc2.records.get(rec.interactionId)?.outcome === 'voicemail', 5000);
    expect(cc2.records.get(rec.interactionId)).toMatchObject({ divertReason: 'paused', note: expect.stringContaining('dialplan voicemail') });
  });

  it('daemon restarted while a caller is recording: adopted (Asterisk keeps recording), the message is kept and emailed', async () => {
    const h = await setup();
    h.presence.set('1001', 'paused');
    const inbound = await callIn(h);
    const name = await recordingStarted(h);
    const rec = await onlyRecord(h.cc);
    await h.cc.stop();
    await waitFor(() => !h.fake.connectedApps().includes('switchboard'));
    const cc2 = await h.restart();
    await waitFor(() => cc2.workflow!.activeCalls().some((c) => c.state === 'recording' && c.recordingName === name), 5000);
    h.fake.finishRecording(name, { durationSeconds: 4 });
    await waitFor(() => cc2.records.get(rec.interactionId)?.emailStatus === 'sent', 5000);
    expect(cc2.records.get(rec.interactionId)).toMatchObject({ outcome: 'voicemail', recordingStatus: 'available', durationSeconds: 4, divertReason: 'paused' });
    expect(h.smtp.messages).toHaveLength(1);
    // The caller hears "message saved, goodbye" and is hung up; never sent to a second voicemail.
    await h.fake.waitForRequest((r) => r.method === 'DELETE' && r.path === `/ari/channels/${inbound}`, 5000);
    expect(findRequest(h.fake, 'POST', `/ari/channels/${inbound}/continue`)).toBeUndefined();
    expect(h.fake.storedRecordings()).toEqual([]);
  });

  it('the caller hung up while the daemon was away and Asterisk stored the message: it is kept and emailed on restart', async () => {
    const h = await setup({ minDurationSeconds: 1 });
    h.presence.set('1001', 'paused');
    const inbound = await callIn(h);
    await recordingStarted(h);
    const rec = await onlyRecord(h.cc);
    await h.cc.stop();
    await waitFor(() => !h.fake.connectedApps().includes('switchboard'));
    await new Promise((r) => setTimeout(r, 1100));
    h.fake.hangupFromFarEnd(inbound); // Asterisk finishes and stores the recording; nobody listens
    const cc2 = await h.restart();
    await waitFor(() => cc2.records.get(rec.interactionId)?.emailStatus === 'sent', 5000);
    expect(cc2.records.get(rec.interactionId)).toMatchObject({ outcome: 'voicemail', recordingStatus: 'available' });
    expect(h.smtp.messages).toHaveLength(1);
    expect(h.fake.storedRecordings()).toEqual([]);
  });

  it('a call record an earlier run left in progress whose caller has gone is closed on restart', async () => {
    const h = await setup();
    h.presence.set('1001', 'paused');
    h.fake.setPlaybackDelay(null);
    const inbound = await callIn(h);
    await h.fake.waitForRequest((r) => r.method === 'POST' && r.path === `/ari/channels/${inbound}/play`);
    const rec = await onlyRecord(h.cc);
    await h.cc.stop();
    await waitFor(() => !h.fake.connectedApps().includes('switchboard'));
    h.fake.hangupFromFarEnd(inbound);
    const cc2 = await h.restart();
    await waitFor(() => cc2.records.get(rec.interactionId)?.outcome === 'no message', 5000);
    expect(cc2.records.get(rec.interactionId)?.note).toContain('switchboard was stopped during the call');
  });

  it('daemon restarted during a bridged call: the call is adopted and goes on, then ends normally', async () => {
    const { h, inbound, rec, outbound } = await bridgedThenStopped();
    const before = rest(h.fake).length;
    const cc2 = await h.restart();
    await waitFor(() => cc2.workflow!.activeCalls().length === 1, 5000);
    expect(cc2.workflow!.activeCalls()[0]).toMatchObject({ interactionId: rec.interactionId, state: 'bridged', inboundId: inbound, outboundId: outbound });
    await new Promise((r) => setTimeout(r, 1100));
    // Nobody was hung up or sent to voicemail: the two are still talking.
    expect(rest(h.fake).slice(before).filter((r) => r.method === 'DELETE' || r.path.endsWith('/continue'))).toEqual([]);
    expect(bridgeSize(h.fake)).toBe(2);
    h.fake.hangupFromFarEnd(outbound);
    await h.fake.waitForRequest((r) => r.method === 'DELETE' && r.path === `/ari/channels/${inbound}`, 5000);
    await h.fake.waitForRequest((r) => r.method === 'DELETE' && r.path === `/ari/bridges/${rec.interactionId}-bridge`, 5000);
    await waitFor(() => cc2.workflow!.activeCalls().length === 0, 5000);
    const done = cc2.records.get(rec.interactionId)!;
    expect(done).toMatchObject({ outcome: 'answered', callType: 'Direct Agent Call' });
    expect(done.durationSeconds).toBeGreaterThanOrEqual(1);
    expect(h.fake.channels()).toEqual([]);
    expect(h.fake.bridgesList()).toEqual([]);
  });

  it('the agent hung up while the daemon was away: the caller left in the bridge is hung up, not sent to voicemail', async () => {
    const { h, inbound, rec, outbound } = await bridgedThenStopped();
    h.fake.hangupFromFarEnd(outbound);
    const cc2 = await h.restart();
    await h.fake.waitForRequest((r) => r.method === 'DELETE' && r.path === `/ari/channels/${inbound}`, 5000);
    await h.fake.waitForRequest((r) => r.method === 'DELETE' && r.path === `/ari/bridges/${rec.interactionId}-bridge`, 5000);
    expect(findRequest(h.fake, 'POST', `/ari/channels/${inbound}/continue`)).toBeUndefined();
    await waitFor(() => h.fake.channels().length === 0 && h.fake.bridgesList().length === 0);
    await waitFor(() => cc2.records.get(rec.interactionId)?.note?.includes('not connected to ARI'), 5000);
    expect(cc2.records.get(rec.interactionId)).toMatchObject({ outcome: 'answered' });
  });

  it('both sides hung up while the daemon was away: the empty bridge it left is destroyed', async () => {
    const { h, inbound, rec, outbound } = await bridgedThenStopped();
    h.fake.hangupFromFarEnd(inbound);
    h.fake.hangupFromFarEnd(outbound);
    expect(h.fake.bridgesList()).toHaveLength(1);
    const cc2 = await h.restart();
    await h.fake.waitForRequest((r) => r.method === 'DELETE' && r.path === `/ari/bridges/${rec.interactionId}-bridge`, 5000);
    await waitFor(() => h.fake.bridgesList().length === 0);
    await waitFor(() => cc2.records.get(rec.interactionId)?.note?.includes('duration unknown'), 5000);
    expect(cc2.records.get(rec.interactionId)).toMatchObject({ outcome: 'answered' });
  });

  /** ARI goes away (Asterisk keeps its channels, the events are lost), runs `meanwhile`, comes back. */
  async function ariOutage(h: Harness, meanwhile: () => Promise<void> | void): Promise<void> {
    const sockets = h.fake.webSocketConnections();
    const lists = h.fake.requests().filter((r) => r.method === 'GET' && r.path === '/ari/channels').length;
    await h.fake.stop();
    await meanwhile();
    await h.fake.start();
    await waitFor(() => h.fake.webSocketConnections() > sockets, 5000);
    await waitFor(() => h.fake.requests().filter((r) => r.method === 'GET' && r.path === '/ari/channels').length > lists, 5000);
  }

  it('ARI down when the ring time runs out: on reconnect the caller is taken to voicemail, not dropped', async () => {
    const h = await setup();
    const inbound = await callIn(h);
    const rec = await onlyRecord(h.cc);
    const id = rec.interactionId;
    await h.fake.waitForRequest((r) => r.method === 'POST' && r.path === '/ari/channels');
    // Our 1 s ring timer fires while ARI is away; the agent's phone still rings in Asterisk.
    await ariOutage(h, () => new Promise((r) => setTimeout(r, 1300)));
    const name = await recordingStarted(h);
    expect(name).toBe(`switchboard-${id}`);
    expect(findRequest(h.fake, 'DELETE', `/ari/channels/${id}-agent`)?.query).toEqual({ reason: 'no_answer' });
    expect(findRequest(h.fake, 'POST', `/ari/channels/${inbound}/play`)?.query.playbackId).toBe(`${id}-greeting`);
    expect(findRequest(h.fake, 'POST', `/ari/channels/${inbound}/continue`)).toBeUndefined();
    expect(h.cc.records.get(id)).toMatchObject({ callType: 'Diverted Call', divertReason: 'no answer', outcome: 'in progress' });
    h.fake.finishRecording(name, { durationSeconds: 4 });
    await waitFor(() => h.cc.records.get(id)?.emailStatus === 'sent', 5000);
    expect(h.smtp.messages).toHaveLength(1);
  });

  it('ARI lost while the caller is recording and the recording ends meanwhile: the message is taken at once on reconnect', async () => {
    const h = await setup();
    h.presence.set('1001', 'paused');
    const inbound = await callIn(h);
    const name = await recordingStarted(h);
    const rec = await onlyRecord(h.cc);
    // The caller pressed '#' while ARI was away: Asterisk stored the message, RecordingFinished went to nobody.
    await ariOutage(h, () => h.fake.finishRecording(name, { durationSeconds: 5 }));
    // Well before the overdue timer (180 s + grace): the stored recording is kept and emailed.
    await waitFor(() => h.cc.records.get(rec.interactionId)?.emailStatus === 'sent', 5000);
    expect(h.cc.records.get(rec.interactionId)).toMatchObject({ outcome: 'voicemail', recordingStatus: 'available', durationSeconds: 5 });
    await h.fake.waitForRequest((r) => r.method === 'POST' && r.path === `/ari/channels/${inbound}/play` && r.query.playbackId === `${rec.interactionId}-goodbye`, 5000);
    await h.fake.waitForRequest((r) => r.method === 'DELETE' && r.path === `/ari/channels/${inbound}`, 5000);
    await noActiveCalls(h);
    expect(h.smtp.messages).toHaveLength(1);
  });

  it('ARI lost while the record request is on its way: on reconnect the caller is recorded (again), never left in silence', async () => {
    const h = await setup();
    h.presence.set('1001', 'paused');
    h.fake.setResponse('POST', '/channels/{id}/record', 'hang');
    const inbound = await callIn(h);
    await h.fake.waitForRequest((r) => r.method === 'POST' && r.path === `/ari/channels/${inbound}/record`, 5000);
    h.fake.setResponse('POST', '/channels/{id}/record', undefined);
    await ariOutage(h, () => undefined);
    const name = await recordingStarted(h);
    h.fake.finishRecording(name, { durationSeconds: 3 });
    const rec = await onlyRecord(h.cc, (r) => r.emailStatus === 'sent');
    expect(rec).toMatchObject({ outcome: 'voicemail', divertReason: 'paused' });
    expect(findRequest(h.fake, 'POST', `/ari/channels/${inbound}/continue`)).toBeUndefined();
  });

  it('a StasisStart of the agent leg after resync bridged it does not hang the agent up', async () => {
    const h = await setup({ store: await storeWith((a) => ({ ...a, voice: { ...a.voice, ringTimeoutSeconds: 5 } })) });
    const inbound = await callIn(h);
    const rec = await onlyRecord(h.cc);
    const outbound = `${rec.interactionId}-agent`;
    await h.fake.waitForRequest((r) => r.method === 'POST' && r.path === '/ari/channels');
    await ariOutage(h, () => h.fake.answerOutbound(outbound));
    await waitFor(() => bridgeSize(h.fake) === 2, 5000);
    // The leg's StasisStart, read after the list that showed it in our app.
    h.fake.sendEvent({ type: 'StasisStart', args: ['dialed', rec.interactionId], channel: h.fake.channel(outbound)! });
    await h.cc.workflow!.settled();
    await new Promise((r) => setTimeout(r, 100));
    expect(findRequest(h.fake, 'DELETE', `/ari/channels/${outbound}`)).toBeUndefined();
    expect(bridgeSize(h.fake)).toBe(2);
    expect(h.cc.workflow!.activeCalls()[0]).toMatchObject({ state: 'bridged', outboundId: outbound });
    h.fake.hangupFromFarEnd(inbound);
    await noActiveCalls(h);
    expect(h.cc.records.get(rec.interactionId)?.outcome).toBe('answered');
  });

  it('the channel list fails right after a reconnect: it is retried, and the call is resynchronised', async () => {
    const { h, inbound, outbound } = await bridged();
    h.fake.setResponse('GET', '/channels', { status: 500, body: { message: 'Internal Server Error' } });
    await ariOutage(h, () => h.fake.hangupFromFarEnd(outbound));
    await waitFor(() => h.logs().some((l) => String(l.msg).includes('could not list the channels in Asterisk: retrying')), 5000);
    h.fake.setResponse('GET', '/channels', undefined);
    await h.fake.waitForRequest((r) => r.method === 'DELETE' && r.path === `/ari/channels/${inbound}`, 5000);
    await noActiveCalls(h);
    expect((await onlyRecord(h.cc)).outcome).toBe('answered');
  });

  it('ARI lost while a message cannot be fetched: the tries while ARI is down do not count, the save is re-armed on reconnect and kept', async () => {
    const h = await setup();
    h.presence.set('1001', 'paused');
    await callIn(h);
    const name = await recordingStarted(h);
    const id = (await onlyRecord(h.cc)).interactionId;
    h.fake.setResponse('GET', '/recordings/stored/{name}/file', 'hang');
    h.fake.finishRecording(name, { durationSeconds: 4 });
    await h.fake.waitForRequest((r) => r.path === `/ari/recordings/stored/${name}/file`, 5000);
    await ariOutage(h, async () => {
      h.fake.setResponse('GET', '/recordings/stored/{name}/file', undefined);
      // Longer than this harness's whole retry budget (6 attempts from 50 ms, at most 200 ms apart).
      await new Promise((r) => setTimeout(r, 1500));
    });
    await waitFor(() => h.cc.records.get(id)?.emailStatus === 'sent', 5000);
    expect(h.cc.records.get(id)).toMatchObject({ outcome: 'voicemail', recordingStatus: 'available', durationSeconds: 4 });
    expect(h.logs().some((l) => String(l.msg).includes('the message could not be kept:'))).toBe(false);
    expect(h.smtp.messages).toHaveLength(1);
    expect(h.fake.storedRecordings()).toEqual([]);
  });

  it('ARI lost just as the fail safe sends the caller to the dialplan voicemail (done, its answer lost): the caller is left there, not hung up', async () => {
    const h = await setup();
    h.presence.set('1001', 'paused');
    h.fake.setResponse('POST', '/channels/{id}/record', { status: 500, body: { message: 'Internal Server Error' } });
    h.fake.setResponse('POST', '/channels/{id}/continue', 'lost');
    const sockets = h.fake.webSocketConnections();
    const inbound = await callIn(h);
    await h.fake.waitForRequest((r) => r.path === `/ari/channels/${inbound}/continue`, 5000);
    h.fake.setResponse('POST', '/channels/{id}/record', undefined);
    h.fake.setResponse('POST', '/channels/{id}/continue', undefined);
    await waitFor(() => h.fake.webSocketConnections() > sockets, 5000);
    await noActiveCalls(h);
    // Asterisk runs the caller in the dialplan's VoiceMail now: nothing was asked of that channel since.
    expect(h.fake.continuedTo(inbound)).toEqual({ context: 'switchboard-dids', extension: ALICE_DID, label: DID_VM_LABEL });
    expect(h.fake.channel(inbound)).toMatchObject({ dialplan: { app_name: '' } });
    expect(findRequest(h.fake, 'DELETE', `/ari/channels/${inbound}`)).toBeUndefined();
    expect(rest(h.fake).filter((r) => r.path.startsWith(`/ari/channels/${inbound}/`) && r.method === 'POST').map((r) => r.path.split('/').pop()))
      .toEqual(['answer', 'play', 'record', 'continue']);
    const rec = await onlyRecord(h.cc);
    expect(rec).toMatchObject({ outcome: 'voicemail', divertReason: 'failed', callType: 'Diverted Call', note: expect.stringContaining('dialplan voicemail') });
  });

  it('ARI lost while the originate to the agent is on its way and Asterisk never made the leg: the agent is rung again (same channel id), not sent to voicemail', async () => {
    const h = await setup({ store: await storeWith((a) => ({ ...a, voice: { ...a.voice, ringTimeoutSeconds: 5 } })) });
    h.fake.setResponse('POST', '/channels', 'hang');
    const inbound = await callIn(h);
    const originates = (): RecordedRequest[] => rest(h.fake).filter((r) => r.method === 'POST' && r.path === '/ari/channels');
    await waitFor(() => originates().length === 1, 5000);
    const id = (await onlyRecord(h.cc)).interactionId;
    const outbound = `${id}-agent`;
    await ariOutage(h, () => h.fake.setResponse('POST', '/channels', undefined));
    await waitFor(() => originates().length === 2, 5000);
    expect(originates()[1]!.query).toEqual(originates()[0]!.query);
    expect(originates()[1]!.query).toMatchObject({ channelId: outbound, endpoint: 'PJSIP/alice.smith', appArgs: `dialed,${id}` });
    h.fake.answerOutbound(outbound);
    await waitFor(() => bridgeSize(h.fake) === 2, 5000);
    expect(h.cc.records.get(id)).toMatchObject({ outcome: 'answered', callType: 'Direct Agent Call' });
    expect(findRequest(h.fake, 'POST', `/ari/channels/${inbound}/play`)).toBeUndefined();
    h.fake.hangupFromFarEnd(inbound);
    await noActiveCalls(h);
  });

  it('a request lost while destroying an empty bridge an earlier run left does not stop the rest of the check: its other caller is still sent to voicemail', async () => {
    const h = await setup();
    const inbound = await callIn(h);
    const first = (await onlyRecord(h.cc)).interactionId;
    const outbound = `${first}-agent`;
    await h.fake.waitForRequest((r) => r.method === 'POST' && r.path === '/ari/channels');
    h.fake.answerOutbound(outbound);
    await waitFor(() => bridgeSize(h.fake) === 2);
    // A second caller, diverted and hearing the greeting, when the daemon stops.
    h.presence.set('1001', 'paused');
    h.fake.setPlaybackDelay(null);
    const second = h.fake.incomingCall({ callerNumber: '+61400999888', dialedExten: ALICE_DID }).id as string;
    await h.fake.waitForRequest((r) => r.path === `/ari/channels/${second}/play`, 5000);
    const secondRec = await waitFor(() => h.cc.records.query({ from: new Date(0), to: new Date(Date.now() + 60_000) }).find((r) => r.callerNumber === '+61400999888'));
    await h.cc.stop();
    await waitFor(() => !h.fake.connectedApps().includes('switchboard'));
    h.fake.hangupFromFarEnd(inbound);
    h.fake.hangupFromFarEnd(outbound); // the bridge is left empty
    let destroys = 0;
    const cc2 = await h.restart({
      ariHook: (ari) => {
        const destroy = ari.destroyBridge.bind(ari);
        ari.destroyBridge = async (bridgeId: string) => {
          if (destroys++ === 0) throw new PeerDisconnectedError('ARI', `destroy bridge ${bridgeId} (the events socket closed before Asterisk answered)`);
          return destroy(bridgeId);
        };
      },
    });
    await h.fake.waitForRequest((r) => r.path === `/ari/channels/${second}/continue`, 5000);
    await waitFor(() => cc2.records.get(secondRec.interactionId)?.outcome === 'voicemail', 5000);
    expect(destroys).toBe(1);
    expect(h.fake.bridgesList()).toHaveLength(1);
    // The bridge is dealt with at the next connect.
    const sockets = h.fake.webSocketConnections();
    h.fake.dropWebSockets();
    await waitFor(() => h.fake.webSocketConnections() > sockets, 5000);
    await waitFor(() => h.fake.bridgesList().length === 0, 5000);
    await waitFor(() => cc2.records.get(first)?.note?.includes('duration unknown'), 5000);
  });

  it('stop() does not wait out the grace given on connect to channels found in our app', async () => {
    const h = await setup();
    h.presence.set('1001', 'paused');
    h.fake.setPlaybackDelay(null);
    const inbound = await callIn(h);
    await h.fake.waitForRequest((r) => r.method === 'POST' && r.path === `/ari/channels/${inbound}/play`);
    await h.cc.stop();
    await waitFor(() => !h.fake.connectedApps().includes('switchboard'));
    const cc2 = await h.restart({ orphanGraceMs: 60_000 });
    // onConnected now waits 60 s before dealing with the caller: stop() (allowed 60 s to finish the
    // work under way) returns without that wait; the test's own timeout is 20 s.
    await cc2.workflow!.stop(60_000);
    expect(findRequest(h.fake, 'POST', `/ari/channels/${inbound}/continue`)).toBeUndefined();
    expect(h.fake.channel(inbound)).toBeDefined(); // left to the next start
  });

  it('bad ARI password: a clear error is logged, nothing throws, it keeps trying', async () => {
    const h = await setup({ password: 'wrong-password', waitConnected: false });
    await waitFor(() => h.fake.requests().filter((r) => r.path === '/ari/asterisk/info').length >= 3, 5000);
    expect(h.fake.connectedApps()).toEqual([]);
    const errors = h.logs().filter((l) => l.level === 50 && String(l.msg).includes('ARI refused the user and password'));
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(h.logs())).not.toContain('wrong-password');
    await h.cc.stop();
  });
});
