import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AriClient, AriRequestError, toAriError, type AriEvent, type AriSettings } from '../src/asterisk/ari/index.js';
import { PeerAuthError, PeerDisconnectedError, PeerRequestError, PeerTimeoutError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { isConnectionLoss } from '../src/workflows/did.js';
import { FakeAriServer } from './fakes/ari-server.js';
import { nextEvent, waitFor } from './helpers/wait.js';
import { serverFrame } from './helpers/ws-frame.js';

const PASSWORD = 'S3cr3t-Pa55word';
const WRONG = 'Wr0ng-Pa55word';
const REFERENCE = new URL('../../shared/reference/asterisk/ari/', import.meta.url);

function logSink(): { lines: string[]; logger: ReturnType<typeof createLogger>; text: () => string } {
  const lines: string[] = [];
  const destination = new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(chunk.toString('utf8')); cb(); } });
  return { lines, logger: createLogger({ level: 'debug', destination }), text: () => lines.join('') };
}

let fakes: FakeAriServer[] = [];
let clients: AriClient[] = [];
let logs: ReturnType<typeof logSink>[] = [];

afterEach(async () => {
  await Promise.all(clients.map((c) => c.stop()));
  await Promise.all(fakes.map((f) => f.stop()));
  for (const l of logs) {
    const text = l.text();
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(WRONG);
    expect(text).not.toContain(encodeURIComponent(PASSWORD));
    expect(text).not.toContain(Buffer.from(`asterisk:${PASSWORD}`).toString('base64'));
  }
  clients = [];
  fakes = [];
  logs = [];
  vi.restoreAllMocks();
});

/** `restProbe`: wait for the REST-over-WebSocket probe to succeed after start (default: unless rest_over_websocket is off). */
async function setup(opts: { settings?: Partial<AriSettings>; start?: boolean; fake?: FakeAriServer; restProbe?: boolean } = {}) {
  const fake = opts.fake ?? new FakeAriServer({
    password: PASSWORD,
    endpoints: [
      { technology: 'PJSIP', resource: '1001', state: 'online' },
      { technology: 'PJSIP', resource: '1002', state: 'offline' },
    ],
  });
  fakes.push(fake);
  const { url } = await fake.start();
  const sink = logSink();
  logs.push(sink);
  const client = new AriClient({
    url, username: 'asterisk', password: PASSWORD, app: 'switchboard',
    requestTimeoutMs: 500, reconnectInitialMs: 20, reconnectMaxMs: 100, ...opts.settings,
  }, { logger: sink.logger });
  clients.push(client);
  if (opts.start !== false) {
    await client.start();
    if (opts.restProbe ?? opts.settings?.restOverWebSocket !== 'off') await waitFor(() => client.restTransport === 'websocket', 3000);
  }
  return { fake, client, url, sink };
}

function collect(client: AriClient): AriEvent[] {
  const events: AriEvent[] = [];
  client.on('event', (e: AriEvent) => events.push(e));
  return events;
}

describe('AriClient: connecting', () => {
  it('connects (credential check first), registers the app, and prints nothing to stdout', async () => {
    const write = vi.spyOn(process.stdout, 'write');
    const log = vi.spyOn(console, 'log');
    const { fake, client, sink } = await setup({ start: false });
    const connected = nextEvent(client, 'connected');
    await client.start();
    await connected;
    expect(client.connected).toBe(true);
    expect(fake.connectedApps()).toEqual(['switchboard']);

    const paths = fake.requests().map((r) => r.path);
    expect(paths[0]).toBe('/ari/asterisk/info');
    expect(paths).toContain('/ari/api-docs/resources.json');
    expect(paths).toContain('/ari/events');
    const ws = fake.requests().find((r) => r.websocket);
    expect(ws?.query).toEqual({ app: 'switchboard', subscribeAll: 'true' });

    // swagger-client did try to print its notice (the fake serves Asterisk's Swagger 1.1 listing)...
    expect(sink.text()).toContain('deprecated version of Swagger');
    // ...but it reached neither console.log's output nor stdout.
    for (const call of log.mock.calls) expect(JSON.stringify(call)).not.toContain('deprecated version of Swagger');
    for (const call of write.mock.calls) expect(String(call[0])).not.toContain('deprecated version of Swagger');
    expect(console.log).toBe(log); // the wrapper is gone again
  });

  it('refuses a bad password with PeerAuthError before ari-client ever sees it: no crash, no retry', async () => {
    const fake = new FakeAriServer({ password: PASSWORD });
    const { url } = await fake.start();
    fakes.push(fake);
    const sink = logSink();
    logs.push(sink);
    const client = new AriClient({ url, username: 'asterisk', password: WRONG, app: 'switchboard', requestTimeoutMs: 500, reconnectInitialMs: 10 }, { logger: sink.logger });
    clients.push(client);
    const uncaught = vi.fn();
    process.on('uncaughtException', uncaught);
    try {
      const err = await client.start().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PeerAuthError);
      expect((err as PeerAuthError).code).toBe('PEER_AUTH');
      expect((err as Error).message).toMatch(/refused ARI user "asterisk".*401/);
      expect((err as Error).message).not.toContain(WRONG);
      await new Promise((r) => setTimeout(r, 100));
      expect(uncaught).not.toHaveBeenCalled();
      expect(fake.requests().map((r) => r.path)).toEqual(['/ari/asterisk/info']); // no api-docs, no socket, no retry
      expect(client.connected).toBe(false);
    } finally {
      process.off('uncaughtException', uncaught);
    }
  });

  it('contains swagger-client\'s uncaught exception when the api-docs fail after the credential check', async () => {
    const { fake, client, sink } = await setup({ start: false });
    fake.setResponse('GET', '/api-docs/resources.json', { status: 401, body: { message: 'Authentication required' } });
    // swagger-client throws a plain string from an HTTP callback. Take the test runner's own
    // handlers away for a moment: if the guard failed, this worker would die and the test with it.
    const saved = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    try {
      const err = await client.start({ failFast: true }).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 50));
      expect(err).toBeInstanceOf(PeerAuthError);
      expect(sink.text()).toContain('swallowed swagger-client exception');
      expect(process.listenerCount('uncaughtException')).toBe(0); // the guard removed itself
    } finally {
      for (const l of saved) process.on('uncaughtException', l);
    }
  });

  it('failFast: an unreachable Asterisk rejects start() at once', async () => {
    const fake = new FakeAriServer();
    const { url } = await fake.start();
    await fake.stop();
    const sink = logSink();
    logs.push(sink);
    const client = new AriClient({ url, username: 'asterisk', password: PASSWORD, app: 'switchboard', requestTimeoutMs: 300 }, { logger: sink.logger });
    clients.push(client);
    const err = await client.start({ failFast: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerRequestError);
    expect((err as Error).message).toMatch(/cannot reach Asterisk at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  });

  it('refuses REST calls while not connected', async () => {
    const { client } = await setup({ start: false });
    await expect(client.answer('x')).rejects.toBeInstanceOf(PeerDisconnectedError);
  });
});

describe('AriClient: events', () => {
  it('delivers the plain JSON events, per type and as "event"', async () => {
    const { fake, client } = await setup();
    const all = collect(client);
    const started = nextEvent<[AriEvent]>(client, 'StasisStart');
    const ch = fake.incomingCall({ callerNumber: '+4930123', dialedExten: '4930555001', channelId: 'in-1' });
    const [evt] = await started;
    expect(evt).toMatchObject({
      type: 'StasisStart', application: 'switchboard', args: ['4930555001'],
      channel: { id: 'in-1', state: 'Ring', caller: { number: '+4930123' }, dialplan: { exten: '4930555001' } },
    });
    expect(typeof evt.timestamp).toBe('string');
    expect(Object.getPrototypeOf(evt)).toBe(Object.prototype);
    expect(JSON.parse(JSON.stringify(evt))).toEqual(evt); // no ari-client resource objects
    expect(ch.id).toBe('in-1');

    await client.answer('in-1');
    await waitFor(() => all.find((e) => e.type === 'ChannelStateChange' && (e as { channel: { state: string } }).channel.state === 'Up'));

    fake.sendEvent({ type: 'SomethingNewInAsterisk23', foo: 1 });
    const unknown = await nextEvent<[AriEvent]>(client, 'SomethingNewInAsterisk23');
    expect(unknown[0]).toMatchObject({ foo: 1, application: 'switchboard' });

    fake.setEndpointState('PJSIP', '1002', 'online');
    const [ep] = await nextEvent<[AriEvent]>(client, 'DeviceStateChanged');
    expect(ep).toMatchObject({ device_state: { name: 'PJSIP/1002', state: 'NOT_INUSE' } });
    expect(all.find((e) => e.type === 'EndpointStateChange')).toMatchObject({ endpoint: { technology: 'PJSIP', resource: '1002', state: 'online' } });
  });

  it('a listener that throws does not break the client', async () => {
    const { fake, client } = await setup();
    client.on('StasisStart', () => { throw new Error('listener bug'); });
    const all = collect(client);
    fake.incomingCall({ callerNumber: '1', dialedExten: '2', channelId: 'c1' });
    fake.incomingCall({ callerNumber: '1', dialedExten: '2', channelId: 'c2' });
    await waitFor(() => all.filter((e) => e.type === 'StasisStart').length === 2);
    expect(client.connected).toBe(true);
  });
});

const TRANSPORTS = [
  { transport: 'websocket' as const, settings: {} },
  { transport: 'http' as const, settings: { restOverWebSocket: 'off' as const } },
];

describe.each(TRANSPORTS)('AriClient: REST over $transport', ({ transport, settings: transportSettings }) => {
  it('calls the right paths with the right parameters', async () => {
    const { fake, client } = await setup({ settings: transportSettings });
    fake.incomingCall({ callerNumber: '100', dialedExten: '555', channelId: 'in-1' });
    await fake.waitForEvent((e) => e.type === 'StasisStart');
    fake.setPlaybackDelay(null);

    await client.ring('in-1');
    await client.ringStop('in-1');
    await client.answer('in-1');
    expect(await client.play('in-1', ['sound:vm-intro', 'sound:beep'], 'pb-1')).toEqual({ id: 'pb-1' });
    expect(await client.record('in-1', { name: 'vm/in-1', format: 'wav', maxDurationSeconds: 120, maxSilenceSeconds: 5, beep: true, terminateOn: '#', ifExists: 'overwrite' }))
      .toEqual({ name: 'vm/in-1' });
    expect(await client.originate({ endpoint: 'PJSIP/1001', app: 'switchboard', appArgs: 'agent,in-1', callerId: '"Caller" <100>', timeoutSeconds: 25, channelId: 'out-1', variables: { CALLERID_IN: '100' } }))
      .toEqual({ id: 'out-1' });
    expect(await client.createBridge({ type: 'mixing', bridgeId: 'br-1' })).toEqual({ id: 'br-1' });
    fake.answerOutbound('out-1');
    await fake.waitForEvent((e) => e.type === 'StasisStart' && (e.channel as { id: string }).id === 'out-1');
    await client.addChannel('br-1', ['in-1', 'out-1']);
    await client.destroyBridge('br-1');
    await client.continueInDialplan('in-1', { context: 'voicemail', extension: '555', priority: 1 });
    await client.hangup('out-1', 'busy');
    await client.hangup('in-1');

    expect(client.restTransport).toBe(transport);
    const rest = fake.requests().filter((r) => !r.path.startsWith('/ari/api-docs') && !r.websocket && r.path !== '/ari/asterisk/info' && r.path !== '/ari/asterisk/ping');
    expect(new Set(rest.map((r) => r.via))).toEqual(new Set([transport === 'websocket' ? 'ws' : 'http']));
    expect(rest.map((r) => ({ method: r.method, path: r.path, query: r.query, op: r.operation, ...(r.body === undefined ? {} : { body: r.body }) }))).toEqual([
      { method: 'POST', path: '/ari/channels/in-1/ring', query: {}, op: 'channels.ring' },
      { method: 'DELETE', path: '/ari/channels/in-1/ring', query: {}, op: 'channels.ringStop' },
      { method: 'POST', path: '/ari/channels/in-1/answer', query: {}, op: 'channels.answer' },
      { method: 'POST', path: '/ari/channels/in-1/play', query: { media: 'sound:vm-intro,sound:beep', playbackId: 'pb-1' }, op: 'channels.play' },
      {
        method: 'POST', path: '/ari/channels/in-1/record', op: 'channels.record',
        query: { name: 'vm/in-1', format: 'wav', maxDurationSeconds: '120', maxSilenceSeconds: '5', ifExists: 'overwrite', beep: 'true', terminateOn: '#' },
      },
      {
        method: 'POST', path: '/ari/channels', op: 'channels.originate',
        query: { endpoint: 'PJSIP/1001', app: 'switchboard', appArgs: 'agent,in-1', callerId: '"Caller" <100>', timeout: '25', channelId: 'out-1' },
        body: { variables: { CALLERID_IN: '100' } },
      },
      { method: 'POST', path: '/ari/bridges', query: { type: 'mixing', bridgeId: 'br-1' }, op: 'bridges.create' },
      { method: 'POST', path: '/ari/bridges/br-1/addChannel', query: { channel: 'in-1,out-1' }, op: 'bridges.addChannel' },
      { method: 'DELETE', path: '/ari/bridges/br-1', query: {}, op: 'bridges.destroy' },
      { method: 'POST', path: '/ari/channels/in-1/continue', query: { context: 'voicemail', extension: '555', priority: '1' }, op: 'channels.continueInDialplan' },
      { method: 'DELETE', path: '/ari/channels/out-1', query: { reason: 'busy' }, op: 'channels.hangup' },
      { method: 'DELETE', path: '/ari/channels/in-1', query: {}, op: 'channels.hangup' },
    ]);
    expect(fake.continuedTo('in-1')).toEqual({ context: 'voicemail', extension: '555', priority: 1 });
  });

  it('returns plain JSON from list/get calls', async () => {
    const { fake, client } = await setup({ settings: transportSettings });
    fake.incomingCall({ callerNumber: '100', dialedExten: '555', channelId: 'in-1' });
    const channels = await client.listChannels();
    expect(channels).toHaveLength(1);
    expect(channels[0]).toMatchObject({ id: 'in-1', state: 'Ring', caller: { number: '100' } });
    expect(channels[0]).not.toHaveProperty('_client');
    expect(JSON.parse(JSON.stringify(channels))).toEqual(channels);
    expect(await client.getChannel('in-1')).toMatchObject({ id: 'in-1' });
    const endpoints = await client.listEndpoints();
    expect(endpoints).toEqual([
      { technology: 'PJSIP', resource: '1001', state: 'online', channel_ids: [] },
      { technology: 'PJSIP', resource: '1002', state: 'offline', channel_ids: [] },
    ]);
  });

  it('a hung route fails with PeerTimeoutError within the timeout', async () => {
    const { fake, client } = await setup({ settings: { ...transportSettings, requestTimeoutMs: 300 } });
    fake.setResponse('POST', '/channels/{channelId}/answer', 'hang');
    const t0 = Date.now();
    const err = await client.answer('whatever').catch((e: unknown) => e);
    const elapsed = Date.now() - t0;
    expect(err).toBeInstanceOf(PeerTimeoutError);
    expect((err as Error).message).toBe('ARI: answer channel whatever got no answer within 300 ms');
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(1000);
    // the client still works
    fake.setResponse('POST', '/channels/{channelId}/answer', undefined);
    await expect(client.listChannels()).resolves.toEqual([]);
  });

  it('requests sent in the same turn time out on their own: the hung ones fail, the answered ones do not', async () => {
    const { fake, client } = await setup({ settings: { ...transportSettings, requestTimeoutMs: 300 } });
    fake.incomingCall({ callerNumber: '100', dialedExten: '555', channelId: 'in-1' });
    fake.setResponse('POST', '/channels/{channelId}/answer', 'hang');
    const results = await Promise.allSettled([client.answer('a'), client.ring('in-1'), client.answer('b'), client.listChannels()]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'rejected', 'fulfilled']);
    for (const r of [results[0], results[2]]) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(PeerTimeoutError);
    expect(((results[2] as PromiseRejectedResult).reason as Error).message).toBe('ARI: answer channel b got no answer within 300 ms');
    // later requests get a timeout of their own
    fake.setResponse('POST', '/channels/{channelId}/answer', undefined);
    await expect(client.answer('in-1')).resolves.toBeUndefined();
  });

  it('404 → AriRequestError (a PeerRequestError) with notFound; get* return undefined', async () => {
    const { client } = await setup({ settings: transportSettings });
    const err = await client.hangup('nope').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerRequestError);
    expect(err).toBeInstanceOf(AriRequestError);
    expect((err as AriRequestError).notFound).toBe(true);
    expect((err as AriRequestError).peerMessage).toBe('Channel not found');
    expect((err as Error).message).toBe('ARI: hang up channel nope failed: Channel not found');
    expect((err as AriRequestError).details).toMatchObject({ notFound: true, peer: 'ARI' });
    expect(await client.getChannel('nope')).toBeUndefined();
    expect(await client.getStoredRecording('nope')).toBeUndefined();
    expect(await client.getPlayback('nope')).toBeUndefined();
  });

  it('getPlayback: a playback still playing is returned (GET /playbacks/{id}); once it has ended, undefined', async () => {
    const { fake, client } = await setup({ settings: transportSettings });
    fake.setPlaybackDelay(null);
    fake.incomingCall({ callerNumber: '1', dialedExten: '2', channelId: 'c1' });
    await client.play('c1', ['sound:vm-intro'], 'pb-1');
    expect(await client.getPlayback('pb-1')).toMatchObject({ id: 'pb-1', media_uri: 'sound:vm-intro', target_uri: 'channel:c1' });
    fake.finishPlayback('pb-1');
    expect(await client.getPlayback('pb-1')).toBeUndefined();
  });

  it('other errors keep Asterisk\'s message and notFound=false', async () => {
    const { fake, client } = await setup({ settings: transportSettings });
    fake.incomingCall({ callerNumber: '1', dialedExten: '2', channelId: 'c1' });
    const bad = await client.hangup('c1', 'not-a-reason').catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(AriRequestError);
    expect((bad as AriRequestError).notFound).toBe(false);
    expect((bad as Error).message).toContain('Invalid reason for hangup provided');
    fake.setResponse('POST', '/channels/{channelId}/answer', { status: 500, body: '' });
    const empty = await client.answer('c1').catch((e: unknown) => e);
    // Over HTTP ari-client drops the status line; over the socket Asterisk's reason phrase comes along.
    expect((empty as Error).message).toBe(`ARI: answer channel c1 failed: ${transport === 'websocket' ? 'Internal Server Error' : '(empty error response)'}`);
    const missing = await client.answer('').catch((e: unknown) => e);
    expect((missing as Error).message).toContain('channelId is a required path param');
  });

  it('downloads a stored recording as bytes (a WAV file) and deletes it', async () => {
    const { fake, client } = await setup({ settings: transportSettings });
    fake.incomingCall({ callerNumber: '1', dialedExten: '2', channelId: 'c1' });
    await client.answer('c1');
    await client.record('c1', { name: 'vm-c1', format: 'wav', maxDurationSeconds: 60, maxSilenceSeconds: 3, beep: true, terminateOn: '#' });
    await fake.waitForEvent((e) => e.type === 'RecordingStarted');
    const finished = nextEvent<[AriEvent]>(client, 'RecordingFinished');
    fake.finishRecording('vm-c1', { durationSeconds: 7, bytes: 3200 });
    expect((await finished)[0]).toMatchObject({ recording: { name: 'vm-c1', state: 'done', duration: 7 } });

    expect(await client.getStoredRecording('vm-c1')).toEqual({ name: 'vm-c1', format: 'wav' });
    const wav = await client.getStoredRecordingFile('vm-c1');
    expect(Buffer.isBuffer(wav)).toBe(true);
    expect(wav.length).toBe(44 + 3200);
    expect(wav.subarray(0, 4).toString('ascii')).toBe('RIFF');
    expect(wav.subarray(8, 12).toString('ascii')).toBe('WAVE');
    expect(wav.readUInt32LE(40)).toBe(3200);
    const req = await fake.waitForRequest((r) => r.path === '/ari/recordings/stored/vm-c1/file');
    expect(req.authorized).toBe(true);

    await client.deleteStoredRecording('vm-c1');
    expect(await client.getStoredRecording('vm-c1')).toBeUndefined();
    const err = await client.getStoredRecordingFile('vm-c1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AriRequestError);
    expect((err as AriRequestError).notFound).toBe(true);
    expect((err as AriRequestError).status).toBe(404);
  });

  it('a hung recording download fails with PeerTimeoutError', async () => {
    const { fake, client } = await setup({ settings: { ...transportSettings, requestTimeoutMs: 200 } });
    fake.setResponse('GET', '/recordings/stored/{name}/file', 'hang');
    await expect(client.getStoredRecordingFile('x')).rejects.toBeInstanceOf(PeerTimeoutError);
  });
});

describe('AriClient: choosing the REST transport', () => {
  it('uses the events socket when Asterisk answers the probe (GET asterisk/ping over the socket)', async () => {
    const { fake, client, sink } = await setup();
    expect(client.restTransport).toBe('websocket');
    const probe = fake.requests().find((r) => r.path === '/ari/asterisk/ping');
    expect(probe).toMatchObject({ method: 'GET', via: 'ws', operation: 'asterisk.ping' });
    expect(sink.text()).toContain('requests now go over the events WebSocket');
  });

  it('falls back to HTTP when Asterisk ignores frames on the socket (before 20.14/22.4), and says so', async () => {
    const fake = new FakeAriServer({ password: PASSWORD, restOverWebSocket: false });
    const { client, sink } = await setup({ fake, settings: { restProbeTimeoutMs: 150 }, restProbe: false });
    // connected at once: nothing waits for the probe
    expect(client.connected).toBe(true);
    expect(client.restTransport).toBe('http');
    await waitFor(() => sink.text().includes('no answer to a REST request on the events WebSocket'), 3000);
    expect(client.restTransport).toBe('http');
    fake.incomingCall({ callerNumber: '1', dialedExten: '2', channelId: 'c1' });
    await client.answer('c1');
    const answer = fake.requests().find((r) => r.operation === 'channels.answer');
    expect(answer?.via).toBe('http');
  });

  it('events are not held back while the probe waits for an answer that never comes', async () => {
    const fake = new FakeAriServer({ password: PASSWORD, restOverWebSocket: false });
    const { client } = await setup({ fake, settings: { restProbeTimeoutMs: 60_000 }, restProbe: false });
    const events = collect(client);
    fake.incomingCall({ callerNumber: '100', dialedExten: '555', channelId: 'early-1' });
    await waitFor(() => events.some((e) => e.type === 'StasisStart'), 2000);
    // and requests meanwhile go over HTTP
    await client.answer('early-1');
    expect(fake.requests().find((r) => r.operation === 'channels.answer')?.via).toBe('http');
  });

  it('rest_over_websocket = off: no probe, HTTP only', async () => {
    const { fake, client } = await setup({ settings: { restOverWebSocket: 'off' } });
    expect(client.restTransport).toBe('http');
    expect(fake.requests().some((r) => r.path === '/ari/asterisk/ping')).toBe(false);
  });

  it('a path segment that would need URL encoding goes over HTTP', async () => {
    const { fake, client } = await setup();
    expect(await client.getStoredRecording('dir/name with space')).toBeUndefined();
    const get = fake.requests().find((r) => r.operation === 'recordings.getStored');
    expect(get?.via).toBe('http');
  });

  it('a request in flight when the socket drops fails with PeerDisconnectedError, then the client reconnects', async () => {
    const { fake, client } = await setup();
    fake.setResponse('POST', '/channels/{channelId}/answer', 'hang');
    const pending = client.answer('c1').catch((e: unknown) => e);
    await fake.waitForRequest((r) => r.operation === 'channels.answer');
    fake.dropWebSockets();
    const err = await pending;
    expect(err).toBeInstanceOf(PeerDisconnectedError);
    expect((err as Error).message).toContain('answer channel c1');
    fake.setResponse('POST', '/channels/{channelId}/answer', undefined);
    await waitFor(() => client.connected && client.restTransport === 'websocket', 3000);
    await expect(client.listChannels()).resolves.toEqual([]);
  });

  it('never writes the password into a RESTRequest frame', async () => {
    const { fake, client } = await setup();
    fake.incomingCall({ callerNumber: '1', dialedExten: '2', channelId: 'c1' });
    await client.ring('c1');
    for (const r of fake.requests().filter((q) => q.via === 'ws')) expect(JSON.stringify(r)).not.toContain(PASSWORD);
  });
});

describe('AriClient: a lost connection is told from an answer', () => {
  it('over HTTP, a request in flight when the events socket drops fails with PeerDisconnectedError (its answer went with the connection), not PeerTimeoutError', async () => {
    const { fake, client } = await setup({ settings: { restOverWebSocket: 'off', requestTimeoutMs: 300 } });
    fake.setResponse('POST', '/channels/{channelId}/answer', 'hang');
    const pending = client.answer('c1').catch((e: unknown) => e);
    await fake.waitForRequest((r) => r.operation === 'channels.answer');
    fake.dropWebSockets();
    const err = await pending;
    expect(err).toBeInstanceOf(PeerDisconnectedError);
    expect((err as Error).message).toContain('answer channel c1');
    expect(isConnectionLoss(err)).toBe(true);
    // A request that merely gets no answer, the socket staying up, is still a timeout.
    fake.setResponse('POST', '/channels/{channelId}/answer', undefined);
    await waitFor(() => client.connected, 3000);
    fake.setResponse('POST', '/channels/{channelId}/ring', 'hang');
    const slow = await client.ring('c1').catch((e: unknown) => e);
    expect(slow).toBeInstanceOf(PeerTimeoutError);
    expect(isConnectionLoss(slow)).toBe(false);
  });

  it('a recording download in flight when the events socket drops fails with PeerDisconnectedError', async () => {
    const { fake, client } = await setup({ settings: { requestTimeoutMs: 300 } });
    fake.setResponse('GET', '/recordings/stored/{name}/file', 'hang');
    const pending = client.getStoredRecordingFile('vm-1').catch((e: unknown) => e);
    await fake.waitForRequest((r) => r.path === '/ari/recordings/stored/vm-1/file');
    fake.dropWebSockets();
    const err = await pending;
    expect(err).toBeInstanceOf(PeerDisconnectedError);
    expect(isConnectionLoss(err)).toBe(true);
  });

  it('transport errors of a request (ECONNRESET, ECONNREFUSED, socket hang up, EPIPE) are a lost connection, not an answer from Asterisk', () => {
    const errno = (message: string, code: string): Error => Object.assign(new Error(message), { code });
    for (const raw of [
      errno('read ECONNRESET', 'ECONNRESET'),
      errno('connect ECONNREFUSED 127.0.0.1:8088', 'ECONNREFUSED'),
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      new Error('socket hang up'),
      errno('write EPIPE', 'EPIPE'),
      new Error('connect ECONNREFUSED 127.0.0.1:8088'),
    ]) {
      const mapped = toAriError('answer channel c1', raw);
      expect(mapped).toBeInstanceOf(AriRequestError);
      expect((mapped as AriRequestError).notFound).toBe(false);
      expect(mapped.details.unreachable).toBe(true);
      expect(mapped.message).toContain('cannot reach Asterisk');
      expect(isConnectionLoss(mapped)).toBe(true);
    }
    // Asterisk's own answers are not.
    expect(isConnectionLoss(toAriError('get channel x', new Error('{"message":"Channel not found"}')))).toBe(false);
    expect(isConnectionLoss(toAriError('answer channel x', new Error('{"message":"Internal Server Error"}')))).toBe(false);
    expect(isConnectionLoss(toAriError('x', 'channelId is a required path param.'))).toBe(false);
  });
});

describe('AriClient: reading the events socket (ServerFrameParser instead of ws@6\'s Receiver)', () => {
  const event = (type: string, extra: Record<string, unknown> = {}): Buffer =>
    Buffer.from(JSON.stringify({ type, application: 'switchboard', timestamp: '2024-05-01T10:20:30.123+0000', ...extra }));

  it('reads the frames itself once connected, again after a reconnect', async () => {
    const { fake, client, sink } = await setup();
    expect(client.eventsReader).toBe('switchboard');
    expect(sink.text()).toContain('frames are read by switchboard');
    const reconnected = nextEvent(client, 'connected');
    fake.dropWebSockets();
    await reconnected;
    expect(client.eventsReader).toBe('switchboard');
  });

  it('a fragmented event with a ping between its fragments, split mid-character: one event, the ping answered', async () => {
    const { fake, client } = await setup();
    const all = collect(client);
    const text = event('SomethingNew', { name: 'Zoë 日本 😀' });
    const cutAt = text.indexOf(Buffer.from('日')) + 1; // inside the character
    fake.writeRawToWebSockets(Buffer.concat([
      serverFrame(1, text.subarray(0, cutAt), { fin: false }),
      serverFrame(9, Buffer.from('are you there')),
      serverFrame(0, text.subarray(cutAt)),
    ]));
    await waitFor(() => all.length === 1);
    expect(all[0]).toMatchObject({ type: 'SomethingNew', name: 'Zoë 日本 😀' });
    // ws@6 answered the ping with a pong carrying its payload: the fake's own ping is answered too.
    await expect(fake.pingWebSockets(Buffer.from('ping-2'))).resolves.toEqual([Buffer.from('ping-2')]);
    expect(client.eventsReader).toBe('switchboard');
  });

  it('a close frame from Asterisk: the close handshake, "disconnected" with its code, then a reconnect', async () => {
    const { fake, client } = await setup();
    const disconnected = nextEvent<[{ code: number }]>(client, 'disconnected');
    const reconnected = nextEvent(client, 'connected');
    fake.closeWebSockets(4001, 'shutting down');
    const [info] = await disconnected;
    expect(info.code).toBe(4001);
    await reconnected;
    expect(client.eventsReader).toBe('switchboard');
  });

  it('a frame ws@6 must judge (RSV1 without an extension) goes back to ws: it fails the socket with 1002, as before', async () => {
    const { fake, client } = await setup();
    const disconnected = nextEvent<[{ code: number }]>(client, 'disconnected');
    const reconnected = nextEvent(client, 'connected');
    fake.writeRawToWebSockets(serverFrame(1, event('Compressed?'), { rsv: 0x40 }));
    const [info] = await disconnected;
    expect(info.code).toBe(1002);
    await reconnected;
    expect(client.eventsReader).toBe('switchboard');
  });

  it('a masked frame goes back to ws, which delivers it and reads the socket from then on', async () => {
    const { fake, client, sink } = await setup();
    const all = collect(client);
    fake.writeRawToWebSockets(Buffer.concat([serverFrame(1, event('First')), serverFrame(1, event('Masked'), { mask: true }), serverFrame(1, event('Third'))]));
    await waitFor(() => all.length === 3);
    expect(all.map((e) => e.type)).toEqual(['First', 'Masked', 'Third']);
    expect(client.eventsReader).toBe('ws');
    expect(sink.text()).toContain('ws reads the events socket from now on');
    const started = nextEvent<[AriEvent]>(client, 'StasisStart');
    fake.incomingCall({ callerNumber: '1', dialedExten: '2' });
    await started;
  });
});

describe('AriClient: supervisor', () => {
  it('reconnects after the socket drops and emits "connected" again', async () => {
    const { fake, client } = await setup();
    const disconnected = nextEvent(client, 'disconnected');
    const reconnected = nextEvent(client, 'connected');
    fake.dropWebSockets();
    await disconnected;
    await expect(client.answer('x')).rejects.toBeInstanceOf(PeerDisconnectedError);
    await reconnected;
    expect(fake.webSocketConnections()).toBe(2);
    const started = nextEvent<[AriEvent]>(client, 'StasisStart');
    fake.incomingCall({ callerNumber: '1', dialedExten: '2' });
    await started;
    await expect(client.listChannels()).resolves.toHaveLength(1);
    expect(fake.webSocketConnections()).toBe(2); // ari-client's own reconnect did not run as well
  });

  it('keeps reconnecting past ari-client\'s 10 tries while Asterisk is down', async () => {
    const { fake, client, sink } = await setup({ settings: { reconnectInitialMs: 10, reconnectMaxMs: 40 } });
    const disconnected = nextEvent(client, 'disconnected');
    await fake.stop();
    await disconnected;
    const retries = (): number => sink.lines.filter((l) => l.includes('ARI not connected; retrying')).length;
    await waitFor(() => retries() >= 15, 5000);
    const reconnected = nextEvent(client, 'connected', 3000);
    await fake.start();
    await reconnected;
    expect(client.connected).toBe(true);
    expect(fake.connectedApps()).toEqual(['switchboard']);
  });

  it('detects a silent peer with the ping and reconnects', async () => {
    const { fake, client } = await setup({ settings: { pingIntervalMs: 40 } });
    const disconnected = nextEvent(client, 'disconnected', 3000);
    const reconnected = nextEvent(client, 'connected', 3000);
    fake.freezeWebSockets();
    await disconnected;
    await reconnected;
    expect(fake.webSocketConnections()).toBe(2);
  });

  it('stop() during the retries really stops', async () => {
    const { fake, client } = await setup({ settings: { reconnectInitialMs: 10, reconnectMaxMs: 20 } });
    const connected = vi.fn();
    client.on('connected', connected);
    await fake.stop();
    await waitFor(() => !client.connected);
    await new Promise((r) => setTimeout(r, 60)); // a few retries
    await client.stop();
    fake.reset();
    await fake.start();
    await new Promise((r) => setTimeout(r, 200));
    expect(fake.requests()).toEqual([]);
    expect(connected).not.toHaveBeenCalled();
    expect(fake.connectedApps()).toEqual([]);
  });

  it('stop() while connected closes the socket; stop() while connecting rejects start()', async () => {
    const { fake, client } = await setup();
    const disconnected = nextEvent(client, 'disconnected');
    await client.stop();
    await disconnected;
    await waitFor(() => fake.connectedApps().length === 0);
    await expect(client.listChannels()).rejects.toBeInstanceOf(PeerDisconnectedError);

    fake.setResponse('GET', '/events', 'hang');
    const pending = client.start().catch((e: unknown) => e);
    await waitFor(() => fake.requests().filter((x) => x.websocket).length === 2);
    const t0 = Date.now();
    await client.stop();
    expect(Date.now() - t0).toBeLessThan(500);
    expect(await pending).toBeInstanceOf(PeerDisconnectedError);
    fake.setResponse('GET', '/events', undefined);
    await new Promise((r) => setTimeout(r, 100));
    expect(fake.connectedApps()).toEqual([]);
  });

  it('can start again after stop()', async () => {
    const { fake, client } = await setup();
    await client.stop();
    await client.start();
    expect(client.connected).toBe(true);
    expect(fake.webSocketConnections()).toBe(2);
  });
});

describe('FakeAriServer simulates a DID call', () => {
  it('ring the agent: originate, far end answers, bridge, hang-ups', async () => {
    const { fake, client } = await setup();
    const all = collect(client);
    fake.incomingCall({ callerNumber: '+4930123', dialedExten: '555001', channelId: 'in' });
    await client.ring('in');
    await client.originate({ endpoint: 'PJSIP/1001', app: 'switchboard', appArgs: 'dialed,in', timeoutSeconds: 20, channelId: 'agent' });
    await waitFor(() => all.find((e) => e.type === 'ChannelStateChange' && (e as { channel: { id: string; state: string } }).channel.id === 'agent'));
    expect(fake.channel('agent')).toMatchObject({ state: 'Ringing', name: expect.stringMatching(/^PJSIP\/1001-/) });
    fake.answerOutbound('agent');
    const [agentStart] = await nextEvent<[AriEvent]>(client, 'StasisStart');
    expect(agentStart).toMatchObject({ args: ['dialed', 'in'], channel: { id: 'agent', state: 'Up' } });
    await client.answer('in');
    const { id } = await client.createBridge({ type: 'mixing' });
    await client.addChannel(id, ['in', 'agent']);
    await waitFor(() => all.filter((e) => e.type === 'ChannelEnteredBridge').length === 2);
    expect(fake.bridgesList()[0]).toMatchObject({ id, channels: ['in', 'agent'] });

    fake.hangupFromFarEnd('in', 16);
    await waitFor(() => all.find((e) => e.type === 'ChannelDestroyed'));
    const types = all.filter((e) => (e as { channel?: { id: string } }).channel?.id === 'in').map((e) => e.type);
    // Asterisk 22.10.1's order for a caller's BYE while bridged (a second, soft request once Stasis has returned).
    expect(types.slice(-5)).toEqual(['ChannelHangupRequest', 'ChannelLeftBridge', 'StasisEnd', 'ChannelHangupRequest', 'ChannelDestroyed']);
    expect(all.find((e) => e.type === 'ChannelDestroyed')).toMatchObject({ cause: 16, cause_txt: 'Normal Clearing' });
    await client.hangup('agent');
    await client.destroyBridge(id);
    await waitFor(() => fake.channels().length === 0);
  });

  it('busy agent: rejectOutbound sends Dial BUSY and ChannelDestroyed with the cause', async () => {
    const { fake, client } = await setup();
    const all = collect(client);
    fake.setOriginateBehavior({ kind: 'reject', cause: 17 }, 'PJSIP/1001');
    await client.originate({ endpoint: 'PJSIP/1001', app: 'switchboard', timeoutSeconds: 20, channelId: 'a1' });
    const destroyed = await waitFor(() => all.find((e) => e.type === 'ChannelDestroyed'));
    expect(destroyed).toMatchObject({ cause: 17, cause_txt: 'User busy', channel: { id: 'a1' } });
    expect(all.filter((e) => e.type === 'Dial').map((e) => (e as { dialstatus: string }).dialstatus)).toEqual(['', 'RINGING', 'BUSY']);
    expect(all.some((e) => e.type === 'StasisStart')).toBe(false);

    await client.originate({ endpoint: 'PJSIP/1002', app: 'switchboard', timeoutSeconds: 20, channelId: 'a2' });
    await fake.waitForEvent((e) => e.type === 'ChannelStateChange' && (e.channel as { id: string }).id === 'a2');
    fake.rejectOutbound('a2', 19);
    await waitFor(() => all.find((e) => e.type === 'ChannelDestroyed' && (e as { channel: { id: string } }).channel.id === 'a2'));

    fake.setOriginateBehavior({ kind: 'error', status: 400, message: 'Allocation failed' });
    const err = await client.originate({ endpoint: 'PJSIP/9999', app: 'switchboard', timeoutSeconds: 20 }).catch((e: unknown) => e);
    expect((err as Error).message).toContain('Allocation failed');
  });

  it('voicemail: prompt, beep, record; the caller hangs up → RecordingFinished before ChannelDestroyed', async () => {
    const { fake, client } = await setup();
    const all = collect(client);
    fake.incomingCall({ callerNumber: '100', dialedExten: '555', channelId: 'in' });
    await client.answer('in');
    await client.play('in', ['sound:vm-intro', 'sound:beep']);
    // Events may overtake the REST answer (as with Asterisk): look at everything received.
    const finished = await waitFor(() => all.find((e) => e.type === 'PlaybackFinished'));
    expect(finished).toMatchObject({ playback: { state: 'done', target_uri: 'channel:in' } });
    expect(all.filter((e) => e.type.startsWith('Playback')).map((e) => e.type)).toEqual(['PlaybackStarted', 'PlaybackContinuing', 'PlaybackStarted', 'PlaybackFinished']);
    await client.record('in', { name: 'vm-in', format: 'wav', maxDurationSeconds: 60, maxSilenceSeconds: 3, beep: false, terminateOn: '#' });
    await waitFor(() => all.find((e) => e.type === 'RecordingStarted'));
    fake.hangupFromFarEnd('in');
    await waitFor(() => all.find((e) => e.type === 'ChannelDestroyed'));
    const order = all.map((e) => e.type).filter((t) => ['ChannelHangupRequest', 'RecordingFinished', 'StasisEnd', 'ChannelDestroyed'].includes(t));
    expect(order).toEqual(['ChannelHangupRequest', 'RecordingFinished', 'StasisEnd', 'ChannelHangupRequest', 'ChannelDestroyed']);
    const wav = await client.getStoredRecordingFile('vm-in');
    expect(wav.subarray(0, 4).toString('ascii')).toBe('RIFF');
  });

  it('terminateOn DTMF ends the recording; calls outside Stasis get 409', async () => {
    const { fake, client } = await setup();
    fake.incomingCall({ callerNumber: '100', dialedExten: '555', channelId: 'in' });
    await client.answer('in');
    await client.record('in', { name: 'r1', format: 'wav', maxDurationSeconds: 60, maxSilenceSeconds: 3, beep: true, terminateOn: '#' });
    await fake.waitForEvent((e) => e.type === 'RecordingStarted');
    const done = nextEvent<[AriEvent]>(client, 'RecordingFinished');
    fake.sendDtmf('in', '#');
    expect((await done)[0]).toMatchObject({ recording: { name: 'r1', state: 'done' } });
    const dup = await client.record('in', { name: 'r1', format: 'wav', maxDurationSeconds: 60, maxSilenceSeconds: 3, beep: true, terminateOn: '#', ifExists: 'fail' }).catch((e: unknown) => e);
    expect((dup as Error).message).toContain('already exists');
    await client.continueInDialplan('in');
    await fake.waitForEvent((e) => e.type === 'StasisEnd');
    const err = await client.answer('in').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AriRequestError);
    expect((err as AriRequestError).notFound).toBe(false);
    expect((err as Error).message).toContain('Channel not in Stasis application');
  });
});

describe('FakeAriServer api-docs subset', () => {
  const fakeDocs = new URL('./fakes/ari-docs/', import.meta.url);

  it('is served with an absolute basePath and needs auth, as Asterisk does', async () => {
    const fake = new FakeAriServer({ password: PASSWORD });
    fakes.push(fake);
    const { url } = await fake.start();
    const noAuth = await fetch(`${url}/ari/api-docs/resources.json`);
    expect(noAuth.status).toBe(401);
    const auth = { Authorization: 'Basic ' + Buffer.from(`asterisk:${PASSWORD}`).toString('base64') };
    const res = (await (await fetch(`${url}/ari/api-docs/resources.json`, { headers: auth })).json()) as { basePath: string; apis: { path: string }[] };
    expect(res.basePath).toBe(`${url}/ari`);
    expect(res.apis.every((a) => a.path.endsWith('.{format}'))).toBe(true);
    const ch = (await (await fetch(`${url}/ari/api-docs/channels.json`, { headers: auth })).json()) as { basePath: string };
    expect(ch.basePath).toBe(`${url}/ari`);
  });

  it.skipIf(!existsSync(REFERENCE))('matches Asterisk\'s api-docs (same paths, nicknames, parameters, models)', () => {
    type Doc = { apis: { path: string; operations: { httpMethod: string; nickname: string; responseClass: string; parameters?: unknown[] }[] }[]; models?: Record<string, unknown> };
    const read = (base: URL, name: string): Doc => JSON.parse(readFileSync(new URL(name, base), 'utf8')) as Doc;
    const files = readdirSync(fakeDocs).filter((f) => f.endsWith('.json') && f !== 'resources.json');
    expect(files.length).toBeGreaterThanOrEqual(8);
    const refResources = JSON.parse(readFileSync(new URL('resources.json', REFERENCE), 'utf8')) as { apis: { path: string }[]; swaggerVersion: string };
    const fakeResources = JSON.parse(readFileSync(new URL('resources.json', fakeDocs), 'utf8')) as { apis: { path: string }[]; swaggerVersion: string };
    expect(fakeResources.swaggerVersion).toBe(refResources.swaggerVersion);
    for (const api of fakeResources.apis) expect(refResources.apis.map((a) => a.path)).toContain(api.path);
    for (const file of files) {
      const mine = read(fakeDocs, file);
      const ref = read(REFERENCE, file);
      expect(mine.models, `${file} models`).toEqual(ref.models);
      for (const api of mine.apis) {
        const refApi = ref.apis.find((a) => a.path === api.path);
        expect(refApi, `${file} ${api.path}`).toBeDefined();
        for (const op of api.operations) {
          const refOp = refApi?.operations.find((o) => o.httpMethod === op.httpMethod && o.nickname === op.nickname);
          expect(refOp, `${file} ${op.httpMethod} ${api.path} ${op.nickname}`).toEqual(op);
        }
      }
    }
  });
});
