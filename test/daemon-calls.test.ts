/**
 * The daemon as an operator runs it, with ARI configured: store → presence → DID call control,
 * against FakeAriServer and a real SMTP server on loopback. An admin's edit to an agent file changes
 * how that agent's DID calls are routed, without a restart.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadDaemonSettings } from '../src/config/settings.js';
import { buildDaemon, type DaemonApp } from '../src/daemon/main.js';
import { silentLogger } from '../src/log.js';
import { FakeAriServer } from './fakes/ari-server.js';
import { parseMessage, startSmtpServer, type TestSmtpServer } from './helpers/smtp.js';
import { tempStore } from './helpers/daemon-harness.js';
import { waitFor } from './helpers/wait.js';

const ALICE_DID = '+61290000001';
const CALLER = '+61400555666';

interface Env { app: DaemonApp; fake: FakeAriServer; smtp: TestSmtpServer; storeDir: string; dataDir: string }
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.reverse()) await fn();
  cleanups.length = 0;
});

async function startDaemon(opts: { backend?: 'pjsip' | 'sip' | 'both' } = {}): Promise<Env> {
  const { root, store: storeDir } = tempStore('sb-daemon-calls-');
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const dataDir = join(root, 'var');
  const fake = new FakeAriServer({ password: 'ari-pass-1' });
  await fake.start();
  cleanups.push(() => fake.stop());
  const smtp = await startSmtpServer();
  cleanups.push(() => smtp.stop());
  const settings = loadDaemonSettings({
    env: {
      SWITCHBOARD_ARI_URL: fake.url,
      SWITCHBOARD_ARI_USER: 'asterisk',
      SWITCHBOARD_ARI_PASSWORD: 'ari-pass-1',
      SWITCHBOARD_SMTP_HOST: '127.0.0.1',
      SWITCHBOARD_SMTP_PORT: String(smtp.port),
      SWITCHBOARD_SMTP_FROM: 'voicemail@example.com',
    },
    flags: { store: storeDir, out: join(root, 'out'), dataDir, debounceMs: 20, ...(opts.backend ? { backend: opts.backend } : {}) },
  });
  const app = buildDaemon(settings, silentLogger(), {
    callControl: {
      ariTimings: { requestTimeoutMs: 1000, reconnectInitialMs: 20, reconnectMaxMs: 100, pingIntervalMs: 0 },
      outboxTimings: { initialDelayMs: 50, maxDelayMs: 100 },
      workflow: { ringGraceMs: 0, promptTimeoutMs: 5000, recordingGraceMs: 300, orphanGraceMs: 200 },
    },
  });
  await app.start();
  cleanups.push(() => app.stop());
  await waitFor(() => fake.connectedApps().includes('switchboard'), 5000);
  // The workflow lists channels once connected: calls before that could be taken for leftovers.
  await fake.waitForRequest((r) => r.method === 'GET' && r.path === '/ari/channels', 5000);
  return { app, fake, smtp, storeDir, dataDir };
}

function originates(fake: FakeAriServer) {
  return fake.requests().filter((r) => r.method === 'POST' && /^\/ari\/channels(\/[^/]+)?$/.test(r.path) && r.query.endpoint !== undefined);
}

async function leaveMessage(env: Env, inbound: string): Promise<void> {
  const rec = await waitFor(() => env.fake.liveRecordings().find((r) => r.target_uri === `channel:${inbound}`), 5000);
  env.fake.finishRecording(String(rec.name), { durationSeconds: 7 });
}

describe('daemon with call control', () => {
  it('rings a registered, available agent: originate to the endpoint the renderer wrote', async () => {
    const env = await startDaemon();
    env.fake.setEndpointState('PJSIP', 'alice.smith', 'online');
    await waitFor(() => env.app.presence?.get('1001')?.detail.registered === true, 3000);
    env.fake.incomingCall({ callerNumber: CALLER, dialedExten: ALICE_DID });
    await waitFor(() => originates(env.fake).length === 1, 5000);
    expect(originates(env.fake)[0]!.query.endpoint).toBe('PJSIP/alice.smith');
  });

  it('[output] backend overrides the store\'s: presence watches and the DID rings SIP/<user> when the agents are rendered for chan_sip', async () => {
    // Seen on Asterisk 20.20.1: store "backend: pjsip", switchboard.ini "backend = sip". The agent
    // registered with chan_sip (ARI endpoint SIP/alice.smith online, PJSIP/alice.smith offline) was
    // "logged out" and every DID call went to voicemail.
    const env = await startDaemon({ backend: 'sip' });
    env.fake.setEndpointState('PJSIP', 'alice.smith', 'offline');
    env.fake.setEndpointState('SIP', 'alice.smith', 'online');
    await waitFor(() => env.app.presence?.get('1001')?.detail.registered === true, 3000);
    expect(env.app.presence!.get('1001')?.state).toBe('available');
    env.fake.incomingCall({ callerNumber: CALLER, dialedExten: ALICE_DID });
    await waitFor(() => originates(env.fake).length === 1, 5000);
    expect(originates(env.fake)[0]!.query.endpoint).toBe('SIP/alice.smith');
  });

  it('a pause set through presence diverts the DID to voicemail and the recording is emailed', async () => {
    const env = await startDaemon();
    env.fake.setEndpointState('PJSIP', 'alice.smith', 'online');
    await env.app.presence!.setManual('alice.smith', 'paused', { reason: 'Lunch', forMs: 30 * 60_000 });
    const inbound = String(env.fake.incomingCall({ callerNumber: CALLER, dialedExten: ALICE_DID }).id);
    await leaveMessage(env, inbound);
    const mail = await waitFor(() => env.smtp.messages[0], 10_000);
    expect(mail.to).toEqual(['alice.smith@example.com']);
    const attachment = parseMessage(mail.raw).parts.find((p) => p.filename);
    expect(attachment?.filename).toMatch(/^\d{8}_\d{4}_\d+\.wav$/);
    expect(originates(env.fake)).toHaveLength(0);
    const records = env.app.callControl!.records.query({});
    expect(records[0]).toMatchObject({ agentId: '1001', callType: 'Diverted Call', outcome: 'voicemail', divertReason: 'paused', calledNumber: ALICE_DID });
  });

  it('an admin disabling the agent in the store diverts their DID at once, without a restart', async () => {
    const env = await startDaemon();
    env.fake.setEndpointState('PJSIP', 'alice.smith', 'online');
    const file = join(env.storeDir, 'agents', '1001-alice.yaml');
    const loaded = new Promise<void>((resolve) => env.app.daemon.on('storeLoaded', (s) => {
      if (s.agents.find((a) => a.id === '1001')?.enabled === false) resolve();
    }));
    writeFileSync(file, readFileSync(file, 'utf8').replace('typology: phonebar', 'typology: phonebar\nenabled: false'));
    await loaded;
    expect(env.app.presence!.get('1001')?.state).toBe('logged out');
    const inbound = String(env.fake.incomingCall({ callerNumber: CALLER, dialedExten: ALICE_DID }).id);
    await leaveMessage(env, inbound);
    await waitFor(() => env.app.callControl!.records.query({})[0]?.outcome === 'voicemail', 5000);
    expect(env.app.callControl!.records.query({})[0]).toMatchObject({ divertReason: 'logged out' });
    expect(originates(env.fake)).toHaveLength(0);
  });
});
