import net from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AMI_PEER_UNRESPONSIVE, AmiClient, AmiPeerUnresponsiveError, get, type AmiMessage, type AmiSettings } from '../src/asterisk/ami/client.js';
import { AmiParser, encodeAction, type ParsedFrame } from '../src/asterisk/ami/protocol.js';
import { PeerAuthError, PeerDisconnectedError, PeerRequestError, PeerTimeoutError, SwitchboardError } from '../src/errors.js';
import { FakeAmiServer, type FakeAmiServerOptions, type FakeConnection, type FakeHandler } from './fakes/ami-server.js';
import { nextEvent, waitFor } from './helpers/wait.js';

const USER = 'switchboard';
const SECRET = 'Zq-very-secret-7f3a9c';

interface LogRecord {
  level: number;
  msg: string;
  [key: string]: unknown;
}

function memoryLogger() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  // No redaction on purpose: the client itself must never hand the secret to the logger.
  const logger = pino({ level: 'trace' }, stream);
  const text = (): string => chunks.join('');
  const records = (): LogRecord[] =>
    text()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as LogRecord);
  return { logger, text, records };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(opts: { fake?: FakeAmiServerOptions; client?: Partial<AmiSettings>; start?: boolean } = {}) {
  const fake = new FakeAmiServer({ username: USER, secret: SECRET, ...opts.fake });
  const port = await fake.start();
  cleanups.push(() => fake.stop());
  const log = memoryLogger();
  const client = new AmiClient(
    {
      host: '127.0.0.1',
      port,
      username: USER,
      secret: SECRET,
      connectTimeoutMs: 1000,
      actionTimeoutMs: 1000,
      reconnectInitialMs: 5,
      reconnectMaxMs: 40,
      ...opts.client,
    },
    log.logger,
  );
  cleanups.push(() => client.stop());
  const events: AmiMessage[] = [];
  client.on('event', (e: AmiMessage) => events.push(e));
  if (opts.start ?? true) {
    client.start();
    await client.waitConnected(2000);
  }
  return { fake, client, log, events, port };
}

function actionNames(fake: FakeAmiServer): (string | undefined)[] {
  return fake.actions().map((a) => a.Action);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Plays Asterisk's manager session: one thread per session runs its actions one after another, so
 * a reply (a Ping's too) waits for every action received before it. Wrap each handler with the
 * same returned function.
 */
function oneAtATime(): (handler: FakeHandler) => FakeHandler {
  let busy: Promise<unknown> = Promise.resolve();
  return (handler) => (msg, ctx) => {
    const run = busy.then(() => handler(msg, ctx));
    busy = run.catch(() => undefined);
    return run;
  };
}

/** Realistic EndpointList events, as res_pjsip's PJSIPShowEndpoints sends them (docs XML). */
const ENDPOINTS: AmiMessage[] = [
  { Event: 'EndpointList', ObjectType: 'endpoint', ObjectName: '1001', Transport: 'transport-udp', Aor: '1001', Auths: '1001-auth', OutboundAuths: '', DeviceState: 'Not in use', ActiveChannels: '', Contacts: '1001/sip:1001@192.0.2.10:5060,' },
  { Event: 'EndpointList', ObjectType: 'endpoint', ObjectName: '1002', Transport: 'transport-udp', Aor: '1002', Auths: '1002-auth', OutboundAuths: '', DeviceState: 'Unavailable', ActiveChannels: '', Contacts: '' },
];

describe('AMI protocol', () => {
  function parseAll(text: string, step = text.length): ParsedFrame[] {
    const frames: ParsedFrame[] = [];
    const parser = new AmiParser((f) => frames.push(f));
    for (let i = 0; i < text.length; i += step) parser.push(text.slice(i, i + step));
    return frames;
  }

  it('reads the banner, then CRLF messages, fed one character at a time', () => {
    const frames = parseAll('Asterisk Call Manager/9.0.0\r\nResponse: Success\r\nActionID: a-1\r\nMessage: Authentication accepted\r\n\r\nEvent: FullyBooted\r\nStatus: Fully Booted\r\n\r\n', 1);
    expect(frames).toEqual([
      { kind: 'banner', text: 'Asterisk Call Manager/9.0.0' },
      { kind: 'message', message: { Response: 'Success', ActionID: 'a-1', Message: 'Authentication accepted' } },
      { kind: 'message', message: { Event: 'FullyBooted', Status: 'Fully Booted' } },
    ]);
  });

  it('tolerates bare LF, keeps repeated headers and values containing colons', () => {
    const frames = parseAll('Asterisk Call Manager/9.0.0\nResponse: Success\nMessage: Command output follows\nOutput: Name/username: x\nOutput:   indented\n\n');
    expect(frames[1]).toEqual({ kind: 'message', message: { Response: 'Success', Message: 'Command output follows', Output: 'Name/username: x\n  indented' } });
  });

  it('folds a pre-14 "Response: Follows" body into Output', () => {
    const raw = 'Asterisk Call Manager/1.1\r\nResponse: Follows\r\nPrivilege: Command\r\nActionID: x-9\r\nName/username   Host\n\n1001/1001       (Unspecified)\n--END COMMAND--\r\n\r\nEvent: Next\r\n\r\n';
    for (const step of [raw.length, 1, 4]) {
      const frames = parseAll(raw, step);
      expect(frames.slice(1)).toEqual([
        { kind: 'message', message: { Response: 'Follows', Privilege: 'Command', ActionID: 'x-9', Output: 'Name/username   Host\n\n1001/1001       (Unspecified)' } },
        { kind: 'message', message: { Event: 'Next' } },
      ]);
    }
  });

  it('encodes actions with CRLF, Action and ActionID first, arrays as repeated headers', () => {
    expect(encodeAction('Originate', 'p-1', { Channel: 'PJSIP/1001', Variable: ['A=1', 'B=2'] })).toBe(
      'Action: Originate\r\nActionID: p-1\r\nChannel: PJSIP/1001\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n',
    );
    expect(() => encodeAction('Ping', 'p-2', { ActionID: 'mine' })).toThrow(SwitchboardError);
    expect(get({ ActionID: 'x' }, 'actionid')).toBe('x');
  });
});

describe('AmiClient', () => {
  it('waits for the banner before sending Login', async () => {
    const { fake, client } = await setup({ fake: { holdBanner: true }, start: false });
    client.start();
    await waitFor(() => fake.acceptedCount === 1);
    await sleep(50); // the client must stay silent, however long the banner takes
    expect(fake.rawReceived()).toBe('');
    expect(client.connected).toBe(false);
    fake.releaseBanner();
    await client.waitConnected(2000);
    const [login] = fake.actions();
    expect(login).toMatchObject({ Action: 'Login', Username: USER, Secret: SECRET });
    expect(login!.ActionID).toMatch(/^[0-9a-f]{12}-\d+$/);
  });

  it('refuses a peer whose banner is not AMI, and keeps retrying', async () => {
    const { fake, client, log } = await setup({ fake: { banner: 'SSH-2.0-OpenSSH_9.6' }, start: false });
    client.start();
    await waitFor(() => fake.acceptedCount >= 3);
    expect(client.connected).toBe(false);
    expect(fake.actions()).toEqual([]);
    expect(log.records().some((r) => r.level === 50 && /unexpected banner/.test(r.msg))).toBe(true);
  });

  it('logs in, emits connected, and passes on FullyBooted as an event', async () => {
    const { fake, client, log, events } = await setup({ start: false });
    const connected = nextEvent(client, 'connected');
    client.start();
    await connected;
    expect(client.connected).toBe(true);
    expect(fake.authenticatedCount).toBe(1);
    await waitFor(() => events.some((e) => e.Event === 'FullyBooted'));
    const info = log.records().find((r) => r.msg === 'AMI connected and logged in');
    expect(info).toMatchObject({ level: 30, username: USER, version: '9.0.0' });
  });

  it('bad credentials: PeerAuthError, authFailed each time at the max backoff, error logs, no crash; recovers when fixed', async () => {
    const { fake, client, log } = await setup({ start: false, client: { reconnectMaxMs: 30 } });
    fake.setCredentials(USER, 'another-secret');
    const failures: unknown[] = [];
    client.on('authFailed', (err) => failures.push(err));
    client.start();
    await waitFor(() => failures.length >= 3);
    expect(client.connected).toBe(false);
    const err = failures[0];
    expect(err).toBeInstanceOf(PeerAuthError);
    expect((err as PeerAuthError).code).toBe('PEER_AUTH');
    expect((err as PeerAuthError).message).toContain(`user "${USER}"`);
    expect((err as PeerAuthError).message).toContain('Authentication failed');
    const retries = log.records().filter((r) => r.msg.startsWith('AMI login refused; retrying'));
    expect(retries.length).toBeGreaterThanOrEqual(2);
    for (const r of retries) {
      expect(r.level).toBe(50);
      expect(r.delayMs as number).toBeGreaterThanOrEqual(24);
      expect(r.delayMs as number).toBeLessThanOrEqual(30);
    }
    await expect(client.action('Ping')).rejects.toBeInstanceOf(PeerDisconnectedError);
    fake.setCredentials(USER, SECRET);
    await client.waitConnected(2000);
    expect((await client.action('Ping')).Ping).toBe('Pong');
  });

  it('matches 50 concurrent actions answered in reverse order', async () => {
    const { fake, client } = await setup();
    const gates: (() => void)[] = [];
    const answered: string[] = [];
    fake.on('Getvar', async (msg) => {
      await new Promise<void>((resolve) => {
        gates.push(resolve);
        // Once all 50 are in, answer them last-first (after every handler is awaiting).
        if (gates.length === 50) setImmediate(() => [...gates].reverse().forEach((g) => g()));
      });
      answered.push(msg.Variable!);
      return { response: { Variable: msg.Variable!, Value: `value of ${msg.Variable}` } };
    });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => client.action('Getvar', { Variable: `v${i}` })));
    results.forEach((r, i) => expect(r).toMatchObject({ Response: 'Success', Variable: `v${i}`, Value: `value of v${i}` }));
    expect(answered[0]).toBe('v49');
    expect(answered[49]).toBe('v0');
    const ids = fake.actions().filter((a) => a.Action === 'Getvar').map((a) => a.ActionID);
    expect(new Set(ids).size).toBe(50);
  });

  it('collects a list action (PJSIPShowEndpoints) and does not emit its events', async () => {
    const { fake, client, events } = await setup();
    fake.on('PJSIPShowEndpoints', () => ({
      response: { Response: 'Success', EventList: 'start', Message: 'A listing of Endpoints follows, presented as EndpointList events' },
      events: ENDPOINTS,
      listComplete: 'EndpointListComplete',
    }));
    const result = await client.listAction('PJSIPShowEndpoints');
    expect(result.response).toMatchObject({ Response: 'Success', EventList: 'start' });
    expect(result.events).toHaveLength(2);
    expect(result.events[0]).toMatchObject({ ...ENDPOINTS[0], ActionID: result.response.ActionID });
    expect(result.events.map((e) => e.ObjectName)).toEqual(['1001', '1002']);
    expect(result.complete).toMatchObject({ Event: 'EndpointListComplete', EventList: 'Complete', ListItems: '2' });
    await client.action('Ping'); // everything sent before the Ping reply has been processed
    expect(events.filter((e) => e.Event !== 'FullyBooted')).toEqual([]);
  });

  it('keeps unrelated events out of a list being collected', async () => {
    const { fake, client, events } = await setup();
    fake.on('PJSIPShowEndpoints', (_msg, { connection, actionId }) => {
      const id = actionId!;
      connection.send({ Response: 'Success', ActionID: id, EventList: 'start', Message: 'A listing of Endpoints follows, presented as EndpointList events' });
      connection.send({ ...ENDPOINTS[0], ActionID: id });
      connection.send({ Event: 'DeviceStateChange', Device: 'PJSIP/1001', State: 'INUSE' });
      connection.send({ ...ENDPOINTS[1], ActionID: id });
      connection.send({ Event: 'EndpointListComplete', ActionID: id, EventList: 'Complete', ListItems: '2' });
      return { hang: true };
    });
    const result = await client.listAction('PJSIPShowEndpoints');
    expect(result.events.map((e) => e.ObjectName)).toEqual(['1001', '1002']);
    expect(events.map((e) => e.Event)).toContain('DeviceStateChange');
    expect(events.map((e) => e.Event)).not.toContain('EndpointList');
  });

  it('rejects a list action answered with Response: Error (PJSIPShowEndpoint, unknown endpoint)', async () => {
    const { fake, client } = await setup();
    fake.on('PJSIPShowEndpoint', (msg) => ({ response: { Response: 'Error', Message: `Unable to retrieve endpoint ${msg.Endpoint}` } }));
    const err = await client.listAction('PJSIPShowEndpoint', { Endpoint: 'nobody' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerRequestError);
    expect((err as PeerRequestError).code).toBe('PEER_ERROR');
    expect((err as PeerRequestError).message).toContain('Unable to retrieve endpoint nobody');
    expect((await client.action('Ping')).Ping).toBe('Pong');
  });

  it('rejects on Response: Error (unknown action, scripted "reload in progress") and succeeds after', async () => {
    const { fake, client } = await setup();
    await expect(client.action('NoSuchThing')).rejects.toThrow(/Invalid\/unknown command: NoSuchThing/);
    fake.on('Reload', () => ({ response: { Response: 'Success', Message: 'Module Reloaded' } }));
    fake.scriptOnce('Reload', { response: { Response: 'Error', Message: 'A reload is in progress' } });
    const err = await client.action('Reload', { Module: 'res_pjsip.so' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerRequestError);
    expect((err as PeerRequestError).message).toContain('A reload is in progress');
    expect((err as PeerRequestError).details).toMatchObject({ action: 'Reload' });
    expect(await client.action('Reload', { Module: 'res_pjsip.so' })).toMatchObject({ Response: 'Success', Message: 'Module Reloaded' });
  });

  it('returns Command output: modern repeated Output lines and the old Response: Follows form', async () => {
    const { fake, client } = await setup();
    fake.scriptOnce('Command', { response: { Response: 'Success', Message: 'Command output follows', Output: 'Name/username   Host\n1001/1001       192.0.2.10\n2 sip peers [Monitored: 1 online]' } });
    const modern = await client.action('Command', { Command: 'sip show peers' });
    expect(modern.Output).toBe('Name/username   Host\n1001/1001       192.0.2.10\n2 sip peers [Monitored: 1 online]');
    fake.scriptOnce('Command', (_msg, { actionId }) => ({
      noResponse: true,
      raw: `Response: Follows\r\nPrivilege: Command\r\nActionID: ${actionId}\r\nName/username   Host\n1001/1001       (Unspecified)\n--END COMMAND--\r\n\r\n`,
    }));
    const old = await client.action('Command', { Command: 'sip show peers' });
    expect(old).toMatchObject({ Response: 'Follows', Output: 'Name/username   Host\n1001/1001       (Unspecified)' });
    expect((await client.action('Ping')).Ping).toBe('Pong');
  });

  it('copes with bare LF and replies split into tiny TCP writes', async () => {
    const { fake, client } = await setup({ fake: { chunkSize: 3 } });
    fake.scriptOnce('Ping', (_msg, { actionId }) => ({ noResponse: true, raw: `Response: Success\nActionID: ${actionId}\nPing: Pong\nTimestamp: 1.0\n\n` }));
    expect(await client.action('Ping')).toMatchObject({ Response: 'Success', Ping: 'Pong', Timestamp: '1.0' });
    expect((await client.action('Ping')).Ping).toBe('Pong');
  });

  it('sends array values as repeated headers', async () => {
    const { fake, client } = await setup();
    fake.on('Originate', () => ({ response: { Response: 'Success', Message: 'Originate successfully queued' } }));
    await client.action('Originate', { Channel: 'PJSIP/1001', Variable: ['A=1', 'B=2'] });
    expect(fake.rawReceived()).toContain('Variable: A=1\r\nVariable: B=2\r\n');
    expect(fake.actions().at(-1)).toMatchObject({ Action: 'Originate', Channel: 'PJSIP/1001', Variable: 'A=1\nB=2' });
  });

  it('times out a hung action, forgets it, and keeps working (late replies ignored)', async () => {
    const { fake, client, events } = await setup({ client: { actionTimeoutMs: 60 } });
    fake.on('Hang', () => ({ hang: true }));
    const started = Date.now();
    const err = await client.action('Hang').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerTimeoutError);
    expect((err as PeerTimeoutError).code).toBe('PEER_TIMEOUT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
    await expect(client.action('Hang', {}, { timeoutMs: 20 })).rejects.toBeInstanceOf(PeerTimeoutError);

    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    fake.scriptOnce('Getvar', async () => {
      await gate;
      return { response: { Value: 'late' } };
    });
    fake.scriptOnce('PJSIPShowEndpoints', async () => {
      await gate;
      return { events: ENDPOINTS, listComplete: 'EndpointListComplete' };
    });
    await expect(client.action('Getvar', { Variable: 'x' }, { timeoutMs: 20 })).rejects.toBeInstanceOf(PeerTimeoutError);
    await expect(client.listAction('PJSIPShowEndpoints', {}, { timeoutMs: 20 })).rejects.toBeInstanceOf(PeerTimeoutError);
    release();
    await waitFor(() => fake.actions().filter((a) => a.Action === 'PJSIPShowEndpoints').length === 1);
    fake.on('Getvar', () => ({ response: { Value: 'fresh' } }));
    expect(await client.action('Getvar', { Variable: 'x' }, { timeoutMs: 1000 })).toMatchObject({ Value: 'fresh' });
    expect(client.connected).toBe(true);
    expect(events.map((e) => e.Event)).not.toContain('EndpointList');
    expect(events.map((e) => e.Event)).not.toContain('EndpointListComplete');
  });

  it('rejects pending actions when the connection drops, then reconnects', async () => {
    const { fake, client } = await setup();
    fake.on('Hang', () => ({ hang: true }));
    const pending = [client.action('Hang'), client.listAction('Hang'), client.action('Hang')].map((p) => p.catch((e: unknown) => e));
    await waitFor(() => fake.actions().filter((a) => a.Action === 'Hang').length === 3);
    const disconnected = nextEvent<[string]>(client, 'disconnected');
    fake.refuseConnections(true);
    fake.dropConnections();
    for (const err of await Promise.all(pending)) {
      expect(err).toBeInstanceOf(PeerDisconnectedError);
      expect((err as PeerDisconnectedError).code).toBe('PEER_DISCONNECTED');
    }
    const [reason] = await disconnected;
    expect(typeof reason).toBe('string');
    expect(client.connected).toBe(false);
    // While it cannot log in, actions fail at once rather than wait.
    await expect(client.action('Ping', {}, { timeoutMs: 5000 })).rejects.toBeInstanceOf(PeerDisconnectedError);
    const accepted = fake.acceptedCount;
    await waitFor(() => fake.acceptedCount >= accepted + 3); // refused, and retrying
    fake.refuseConnections(false);
    await client.waitConnected(2000);
    expect((await client.action('Ping')).Ping).toBe('Pong');
  });

  it('reconnects after a server restart on the same port, backoff growing and capped', async () => {
    const { fake, client, log, port } = await setup({ client: { reconnectInitialMs: 2, reconnectMaxMs: 20 } });
    let connects = 0;
    client.on('connected', () => connects++);
    await fake.stop();
    await waitFor(() => log.records().filter((r) => r.msg.startsWith('AMI reconnecting')).length >= 8);
    const delays = log.records().filter((r) => r.msg.startsWith('AMI reconnecting')).map((r) => r.delayMs as number);
    expect(delays[0]).toBeLessThanOrEqual(3);
    for (const d of delays) expect(d).toBeLessThanOrEqual(20);
    for (const d of delays.slice(5)) expect(d).toBeGreaterThanOrEqual(16);
    expect(log.records().some((r) => r.msg === 'AMI disconnected' && r.level === 40)).toBe(true);
    expect(await fake.start()).toBe(port);
    await client.waitConnected(2000);
    await waitFor(() => connects === 1);
    expect(actionNames(fake).filter((n) => n === 'Login')).toHaveLength(2);
    expect((await client.action('Ping')).Ping).toBe('Pong');
  });

  it('refuses CR/LF in action name, header name or value before sending anything', async () => {
    const { fake, client } = await setup();
    const attempts: Promise<unknown>[] = [
      client.action('Ping\r\nAction: Reload'),
      client.action('Getvar', { 'Variable\nAction': 'Reload' }),
      client.action('Getvar', { Variable: 'x\r\nAction: Reload' }),
      client.action('Originate', { Channel: 'PJSIP/1001', Variable: ['A=1', 'B=2\nAction: Reload'] }),
      client.listAction('PJSIPShowEndpoint', { Endpoint: '1001\rAction: Reload' }),
    ];
    for (const p of attempts) {
      const err = await p.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SwitchboardError);
      expect((err as SwitchboardError).code).toBe('AMI_BAD_VALUE');
    }
    const valueErr = (await attempts[2]!.catch((e: unknown) => e)) as Error;
    expect(valueErr.message).not.toContain('Action: Reload'); // values may be secrets: not echoed
    await client.action('Ping');
    expect(actionNames(fake)).toEqual(['Login', 'Ping']);
    expect(fake.rawReceived()).not.toContain('Reload');
  });

  it('emits unsolicited events, including ones carrying an ActionID nobody waits for', async () => {
    const { fake, client, events } = await setup();
    const peerStatus = { Event: 'PeerStatus', Privilege: 'system,all', ChannelType: 'PJSIP', Peer: 'PJSIP/1001', PeerStatus: 'Reachable' };
    const next = nextEvent<[AmiMessage]>(client, 'event');
    fake.sendEvent(peerStatus);
    const [evt] = await next;
    expect(evt).toEqual(peerStatus);
    fake.sendEvent({ Event: 'OriginateResponse', ActionID: 'someone-else-1', Response: 'Success', Channel: 'PJSIP/1001-00000001' } as AmiMessage);
    fake.sendEvent({ Event: 'UserEvent', UserEvent: 'Done' });
    await waitFor(() => events.some((e) => e.Event === 'UserEvent'));
    expect(events.map((e) => e.Event)).toContain('OriginateResponse');
  });

  describe('stuck peer (socket open, nothing answers)', () => {
    function pingsAfter(fake: FakeAmiServer, action: string): AmiMessage[] {
      const all = fake.actions();
      const at = all.findIndex((a) => a.Action === action);
      return at === -1 ? [] : all.slice(at + 1).filter((a) => a.Action === 'Ping');
    }

    function expectUnresponsive(err: unknown, action: string): void {
      expect(err).toBeInstanceOf(AmiPeerUnresponsiveError);
      expect(err).toBeInstanceOf(PeerDisconnectedError); // retried and mapped like any lost connection
      const e = err as AmiPeerUnresponsiveError;
      expect(e.code).toBe('PEER_DISCONNECTED');
      expect(e.details).toMatchObject({ reason: AMI_PEER_UNRESPONSIVE, pingTimeoutMs: 60 });
      expect(e.message).toContain(`action ${action}`);
      expect(e.message).toContain('stopped answering');
      expect(e.message).toContain('reconnects');
    }

    it('a timed-out action sends a Ping; no reply: socket destroyed, pending actions fail typed, reconnect once it answers', async () => {
      const { fake, client, log } = await setup({ client: { pingTimeoutMs: 60, keepaliveIntervalMs: 0, connectTimeoutMs: 150 } });
      let first: FakeConnection | undefined;
      fake.scriptOnce('Getvar', (_msg, { connection }) => {
        first = connection;
        return { response: { Variable: 'x', Value: 'before' } };
      });
      expect(await client.action('Getvar', { Variable: 'x' })).toMatchObject({ Value: 'before' });
      let connects = 0;
      client.on('connected', () => connects++);
      const disconnected = nextEvent<[string]>(client, 'disconnected');

      fake.setSilent(true);
      const short = await client.action('Getvar', { Variable: 'short' }, { timeoutMs: 30 }).catch((e: unknown) => e);
      expect(short).toBeInstanceOf(PeerTimeoutError);
      // The Ping went out as the action timed out. Long timeouts, sent behind the Ping (so they do
      // not hold it up): only the dead-peer detection can end these two.
      const waiting = client.action('Getvar', { Variable: 'long' }, { timeoutMs: 60_000 }).catch((e: unknown) => e);
      const listing = client.listAction('PJSIPShowEndpoints', {}, { timeoutMs: 60_000 }).catch((e: unknown) => e);
      await fake.waitForAction('Ping', (m) => pingsAfter(fake, 'Getvar').includes(m));

      expectUnresponsive(await waiting, 'Getvar');
      expectUnresponsive(await listing, 'PJSIPShowEndpoints');
      const [reason] = await disconnected;
      expect(reason).toMatch(/stopped answering/);
      expect(client.connected).toBe(false);
      await waitFor(() => first!.closed); // the client destroyed the dead socket
      const dead = log.records().find((r) => /AMI peer stopped answering/.test(r.msg));
      expect(dead).toMatchObject({ level: 50, pingTimeoutMs: 60, pendingActions: 2 });
      expect(dead!.trigger).toMatch(/action Getvar timed out/);

      // Still silent: reconnect attempts get no banner and are retried; actions fail at once.
      const accepted = fake.acceptedCount;
      await waitFor(() => fake.acceptedCount >= accepted + 2, 3000);
      await expect(client.action('Ping', {}, { timeoutMs: 60_000 })).rejects.toBeInstanceOf(PeerDisconnectedError);

      fake.setSilent(false);
      await client.waitConnected(3000);
      await waitFor(() => connects === 1); // 'connected' again: callers re-seed their state on it
      fake.on('Getvar', () => ({ response: { Value: 'after' } }));
      expect(await client.action('Getvar', { Variable: 'x' })).toMatchObject({ Value: 'after' });
      expect(actionNames(fake).filter((n) => n === 'Login').length).toBeGreaterThanOrEqual(2);
      expect(log.text()).not.toContain(SECRET);
    });

    it('idle keepalive: a silent peer is detected with no action in flight, then reconnected', async () => {
      const { fake, client, log } = await setup({ client: { pingTimeoutMs: 200, keepaliveIntervalMs: 20, connectTimeoutMs: 150 } });
      // While healthy, keepalive Pings are answered and the connection stays.
      await waitFor(() => fake.actions().filter((a) => a.Action === 'Ping').length >= 3);
      expect(client.connected).toBe(true);
      expect(fake.acceptedCount).toBe(1);

      const disconnected = nextEvent<[string]>(client, 'disconnected', 3000);
      fake.setSilent(true);
      const [reason] = await disconnected;
      expect(reason).toMatch(/stopped answering/);
      const dead = log.records().find((r) => /AMI peer stopped answering/.test(r.msg));
      expect(dead).toMatchObject({ level: 50, trigger: 'idle keepalive', pendingActions: 0 });

      fake.setSilent(false);
      await client.waitConnected(3000);
      expect((await client.action('Ping')).Ping).toBe('Pong');
      expect(actionNames(fake).filter((n) => n === 'Login').length).toBeGreaterThanOrEqual(2);
      expect(log.text()).not.toContain(SECRET);
    });

    it('a healthy peer busy with a long action is kept when a shorter action times out behind it (Ping queued behind the long action)', async () => {
      // Reviewer's reproduction: a 60 s res_pjsip Reload in flight, a default-timeout action times
      // out behind it; the Ping can only be answered once the Reload is done.
      const { fake, client, log } = await setup({ client: { actionTimeoutMs: 150, pingTimeoutMs: 150, keepaliveIntervalMs: 0 } });
      let disconnects = 0;
      client.on('disconnected', () => disconnects++);
      const serial = oneAtATime();
      fake.on('Reload', serial(async () => {
        await sleep(600);
        return { response: { Message: 'Module Reloaded' } };
      }));
      fake.on('CoreStatus', serial(() => ({ response: { CoreCurrentCalls: '0' } })));
      fake.on('Ping', serial(() => ({ response: { Ping: 'Pong', Timestamp: '1.0' } })));

      const reload = client.action('Reload', { Module: 'res_pjsip.so' }, { timeoutMs: 60_000 });
      const other = client.action('CoreStatus').catch((e: unknown) => e);
      expect(await other).toBeInstanceOf(PeerTimeoutError);
      expect(await reload).toMatchObject({ Response: 'Success', Message: 'Module Reloaded' });
      await waitFor(() => log.records().some((r) => r.msg === 'AMI peer answered the liveness Ping' && /CoreStatus timed out/.test(String(r.trigger))));

      expect(client.connected).toBe(true);
      expect(disconnects).toBe(0);
      expect(fake.acceptedCount).toBe(1);
      expect(log.records().some((r) => /stopped answering/.test(r.msg))).toBe(false);
      expect((await client.action('CoreStatus')).CoreCurrentCalls).toBe('0');
    });

    it('a silent peer is still detected when the Ping waits behind an action in flight: once that action is past its deadline + pingTimeoutMs', async () => {
      const { fake, client, log } = await setup({ client: { pingTimeoutMs: 60, keepaliveIntervalMs: 0, connectTimeoutMs: 150 } });
      const disconnected = nextEvent<[string]>(client, 'disconnected', 3000);
      fake.setSilent(true);
      const t0 = Date.now();
      const ahead = client.action('Getvar', { Variable: 'ahead' }, { timeoutMs: 300 }).catch((e: unknown) => e);
      const short = await client.action('Getvar', { Variable: 'short' }, { timeoutMs: 30 }).catch((e: unknown) => e);
      expect(short).toBeInstanceOf(PeerTimeoutError);
      // Sent behind the Ping: it does not hold the Ping up, only the detection can end it.
      const behind = client.listAction('PJSIPShowEndpoints', {}, { timeoutMs: 60_000 }).catch((e: unknown) => e);

      // The action ahead of the Ping ends on its own timeout, not torn down with the connection.
      expect(await ahead).toBeInstanceOf(PeerTimeoutError);
      expect(await ahead).not.toBeInstanceOf(AmiPeerUnresponsiveError);
      const [reason] = await disconnected;
      expect(reason).toMatch(/stopped answering/);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(300 + 60 - 10);
      expectUnresponsive(await behind, 'PJSIPShowEndpoints');
      const dead = log.records().find((r) => /AMI peer stopped answering/.test(r.msg));
      expect(dead).toMatchObject({ level: 50, pingTimeoutMs: 60, pendingActions: 1 });
      expect(dead!.trigger).toMatch(/action Getvar timed out after 30 ms/);

      fake.setSilent(false);
      await client.waitConnected(3000);
      expect((await client.action('Ping')).Ping).toBe('Pong');
    });

    it('events and late replies arriving while the Ping waits prove the peer alive', async () => {
      const { fake, client, log, events } = await setup({ client: { pingTimeoutMs: 150, keepaliveIntervalMs: 0 } });
      let disconnects = 0;
      client.on('disconnected', () => disconnects++);
      const serial = oneAtATime();
      // Still working on the timed-out action (the Ping queued behind it), but talking meanwhile.
      fake.on('Slow', serial(async (_msg, { connection }) => {
        for (let i = 1; i <= 4; i++) {
          await sleep(100);
          connection.send({ Event: 'Progress', Step: String(i) });
        }
        return { response: { Message: 'done at last' } };
      }));
      fake.on('Ping', serial(() => ({ response: { Ping: 'Pong', Timestamp: '1.0' } })));

      expect(await client.action('Slow', {}, { timeoutMs: 80 }).catch((e: unknown) => e)).toBeInstanceOf(PeerTimeoutError);
      await waitFor(() => log.records().some((r) => r.msg === 'AMI peer answered the liveness Ping'), 3000);
      expect(events.filter((e) => e.Event === 'Progress')).toHaveLength(4);
      expect(client.connected).toBe(true);
      expect(disconnects).toBe(0);
      expect(fake.acceptedCount).toBe(1);
      expect(log.records().some((r) => /stopped answering/.test(r.msg))).toBe(false);
    });

    it('a slow but alive peer (answers the Ping) is kept: timed-out actions, no teardown, later actions work', async () => {
      const { fake, client, log } = await setup({ client: { pingTimeoutMs: 2000, keepaliveIntervalMs: 15 } });
      let disconnects = 0;
      client.on('disconnected', () => disconnects++);
      const gates: (() => void)[] = [];
      fake.on('Slow', async () => {
        await new Promise<void>((resolve) => gates.push(resolve));
        return { response: { Message: 'done at last' } };
      });
      // The Ping itself is slow too, but within pingTimeoutMs.
      fake.on('Ping', async () => {
        await sleep(40);
        return { response: { Response: 'Success', Ping: 'Pong', Timestamp: '1.0' } };
      });

      // An action in flight with a generous timeout: the idle keepalive leaves it alone.
      const inFlight = client.action('Slow', {}, { timeoutMs: 60_000 });
      await fake.waitForAction('Slow');
      await sleep(60); // several keepalive periods
      expect(pingsAfter(fake, 'Slow')).toEqual([]);
      gates.shift()!();
      expect(await inFlight).toMatchObject({ Message: 'done at last' });

      // Actions that time out trigger a Ping, which is answered: the connection stays.
      const timedOut = await Promise.all(
        [1, 2, 3].map((i) => client.action('Slow', { N: String(i) }, { timeoutMs: 20 }).catch((e: unknown) => e)),
      );
      for (const err of timedOut) expect(err).toBeInstanceOf(PeerTimeoutError);
      await waitFor(() => log.records().some((r) => r.msg === 'AMI peer answered the liveness Ping' && /timed out/.test(String(r.trigger))));
      gates.splice(0).forEach((g) => g()); // late answers, dropped
      await waitFor(() => log.records().filter((r) => r.msg === 'AMI peer answered the liveness Ping' && r.trigger === 'idle keepalive').length >= 2);

      expect(client.connected).toBe(true);
      expect(disconnects).toBe(0);
      expect(fake.acceptedCount).toBe(1);
      expect(actionNames(fake).filter((n) => n === 'Login')).toHaveLength(1);
      expect(log.records().some((r) => /stopped answering/.test(r.msg))).toBe(false);
      fake.on('Getvar', () => ({ response: { Value: 'still here' } }));
      expect(await client.action('Getvar', { Variable: 'x' })).toMatchObject({ Value: 'still here' });
    });
  });

  it('stop() logs off, rejects pending actions and stops reconnecting; start() again works', async () => {
    const { fake, client } = await setup();
    fake.on('Hang', () => ({ hang: true }));
    const pending = client.action('Hang').catch((e: unknown) => e);
    await fake.waitForAction('Hang');
    await client.stop();
    expect(actionNames(fake)).toContain('Logoff');
    expect(await pending).toBeInstanceOf(PeerDisconnectedError);
    expect(client.connected).toBe(false);
    await expect(client.action('Ping')).rejects.toBeInstanceOf(PeerDisconnectedError);
    const accepted = fake.acceptedCount;
    await sleep(60); // > 10x the reconnect delay: a reconnect would have happened
    expect(fake.acceptedCount).toBe(accepted);
    await waitFor(() => fake.connectionCount === 0);
    client.start();
    await client.waitConnected(2000);
    expect((await client.action('Ping')).Ping).toBe('Pong');
  });

  it('action() before start() rejects at once; waitConnected times out', async () => {
    const { fake, client } = await setup({ start: false });
    await expect(client.action('Ping')).rejects.toBeInstanceOf(PeerDisconnectedError);
    fake.refuseConnections(true);
    client.start();
    await expect(client.waitConnected(50)).rejects.toBeInstanceOf(PeerTimeoutError);
    expect(fake.actions()).toEqual([]);
  });

  it('never logs the secret (not even on failed logins), but does log the username', async () => {
    const { fake, client, log } = await setup({ start: false, client: { reconnectMaxMs: 10 } });
    fake.setCredentials(USER, 'not-the-one');
    const failed = nextEvent(client, 'authFailed');
    client.start();
    await failed;
    fake.setCredentials(USER, SECRET);
    await client.waitConnected(2000);
    await client.action('Ping');
    await expect(client.action('Getvar\n')).rejects.toThrow();
    const disconnected = nextEvent(client, 'disconnected');
    const reconnected = new Promise((resolve) => disconnected.then(() => client.once('connected', resolve)));
    fake.dropConnections();
    await disconnected;
    await reconnected;
    await client.stop();
    const text = log.text();
    expect(text).toContain(USER);
    expect(log.records().some((r) => r.level === 10 || r.level === 20)).toBe(true); // trace/debug were on
    expect(text).not.toContain(SECRET);
  });
});

describe('FakeAmiServer', () => {
  it('answers like Asterisk before login and on unknown actions', async () => {
    const fake = new FakeAmiServer({ username: USER, secret: SECRET });
    const port = await fake.start();
    cleanups.push(() => fake.stop());
    const socket = net.createConnection({ host: '127.0.0.1', port });
    cleanups.push(async () => void socket.destroy());
    socket.setEncoding('utf8');
    let received = '';
    socket.on('data', (d: string) => (received += d));
    await waitFor(() => received.includes('\r\n'));
    expect(received).toBe('Asterisk Call Manager/9.0.0\r\n');
    socket.write('Action: Ping\r\nActionID: 1\r\n\r\n');
    await waitFor(() => received.includes('Permission denied'));
    expect(received).toContain('Response: Error\r\nActionID: 1\r\nMessage: Permission denied\r\n\r\n');
    socket.write(`Action: Login\r\nActionID: 2\r\nUsername: ${USER}\r\nSecret: ${SECRET}\r\n\r\n`);
    await waitFor(() => received.includes('FullyBooted'));
    expect(received).toContain('Response: Success\r\nActionID: 2\r\nMessage: Authentication accepted\r\n\r\nEvent: FullyBooted\r\n');
    socket.write('Action: Bogus\r\nActionID: 3\r\n\r\n');
    await waitFor(() => received.includes('ActionID: 3'));
    expect(received).toContain('Response: Error\r\nActionID: 3\r\nMessage: Invalid/unknown command: Bogus.');
    socket.write('Action: Logoff\r\nActionID: 4\r\n\r\n');
    await waitFor(() => socket.readableEnded || socket.destroyed);
    expect(received).toContain('Response: Goodbye\r\nActionID: 4\r\n');
    expect(await fake.waitForAction('Login')).toMatchObject({ Username: USER, Secret: SECRET });
  });

  it('goes silent (reads, never answers, no banner) and comes back', async () => {
    const fake = new FakeAmiServer({ username: USER, secret: SECRET });
    const port = await fake.start();
    cleanups.push(() => fake.stop());
    const open = (): { socket: net.Socket; received: () => string } => {
      const socket = net.createConnection({ host: '127.0.0.1', port });
      cleanups.push(async () => void socket.destroy());
      socket.setEncoding('utf8');
      let text = '';
      socket.on('data', (d: string) => (text += d));
      return { socket, received: () => text };
    };
    const a = open();
    await waitFor(() => a.received().includes('\r\n'));
    a.socket.write(`Action: Login\r\nActionID: 1\r\nUsername: ${USER}\r\nSecret: ${SECRET}\r\n\r\n`);
    await waitFor(() => a.received().includes('FullyBooted'));

    fake.setSilent(true);
    expect(fake.silent).toBe(true);
    a.socket.write('Action: Ping\r\nActionID: 2\r\n\r\n');
    await fake.waitForAction('Ping'); // read and recorded...
    fake.sendEvent({ Event: 'PeerStatus', Peer: 'PJSIP/1001', PeerStatus: 'Reachable' });
    const b = open();
    await waitFor(() => fake.acceptedCount === 2);
    await sleep(30);
    expect(a.received()).not.toContain('ActionID: 2'); // ...but never answered
    expect(a.received()).not.toContain('PeerStatus');
    expect(b.received()).toBe(''); // no banner either
    expect(fake.connectionCount).toBe(2); // nothing closed

    fake.setSilent(false);
    await waitFor(() => b.received() === 'Asterisk Call Manager/9.0.0\r\n');
    a.socket.write('Action: Ping\r\nActionID: 3\r\n\r\n');
    await waitFor(() => a.received().includes('ActionID: 3'));
    expect(a.received()).toContain('Response: Success\r\nActionID: 3\r\nPing: Pong\r\n');
    expect(a.received()).not.toContain('ActionID: 2');
  });
});
