/**
 * FakeAriServer speaks ARI REST over the events WebSocket as Asterisk 20.14+/22.4+ do: the cases of
 * the transcript measured on Asterisk 22.10.1 / 20.20.1 (RESTRequest text frames answered by
 * RESTResponse frames on the same socket, same fields and key order), driven with a raw `ws` client.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { monoMs } from '../src/bench/e2e/common.js';
import { FakeAri as BenchFakeAri } from '../src/bench/e2e/fake-ari.js';
import { asteriskEvent } from '../src/testkit/ari-protocol.js';
import { FakeAriServer, type FakeAriOptions } from './fakes/ari-server.js';

type Frame = Record<string, unknown>;

interface Conn {
  ws: WebSocket;
  frames: Frame[];
  /** Resolves with the first RESTResponse (already received or future) whose request_id is `id`. */
  response: (id: string, timeoutMs?: number) => Promise<Frame>;
  /** Sends a RESTRequest (fields as given) or raw text. */
  send: (msg: Frame | string) => void;
}

const KEYS_WITH_BODY = ['type', 'transaction_id', 'request_id', 'status_code', 'reason_phrase', 'uri', 'content_type', 'message_body', 'application', 'timestamp', 'asterisk_id'];
const KEYS_NO_BODY = KEYS_WITH_BODY.filter((k) => k !== 'content_type' && k !== 'message_body');
const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/;

let fakes: FakeAriServer[] = [];
let sockets: WebSocket[] = [];

afterEach(async () => {
  for (const ws of sockets) ws.terminate();
  await Promise.all(fakes.map((f) => f.stop()));
  fakes = [];
  sockets = [];
});

async function setup(opts: FakeAriOptions = {}): Promise<{ fake: FakeAriServer; conn: Conn }> {
  const fake = new FakeAriServer(opts);
  fakes.push(fake);
  await fake.start();
  const conn = await connect(fake);
  return { fake, conn };
}

async function connect(fake: Pick<FakeAriServer, 'port' | 'username' | 'password'>, app = 'switchboard'): Promise<Conn> {
  const ws = new WebSocket(`ws://127.0.0.1:${fake.port}/ari/events?app=${app}&api_key=${fake.username}:${fake.password}`);
  sockets.push(ws);
  const frames: Frame[] = [];
  const waiters: (() => void)[] = [];
  ws.on('message', (data: Buffer) => {
    frames.push(JSON.parse(data.toString('utf8')) as Frame);
    for (const w of waiters.splice(0)) w();
  });
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  const response = (id: string, timeoutMs = 2000): Promise<Frame> => new Promise((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`no RESTResponse for ${id}; got ${JSON.stringify(frames)}`)), timeoutMs);
    const check = (): void => {
      const f = frames.find((x) => x.type === 'RESTResponse' && x.request_id === id);
      if (f) { clearTimeout(deadline); resolve(f); } else waiters.push(check);
    };
    check();
  });
  const send = (msg: Frame | string): void => {
    ws.send(typeof msg === 'string' ? msg : JSON.stringify({ type: 'RESTRequest', transaction_id: 't1', ...msg }));
  };
  return { ws, frames, response, send };
}

function body(frame: Frame): unknown {
  return JSON.parse(frame.message_body as string);
}

describe('FakeAriServer: REST over the events WebSocket (Asterisk 20.14+/22.4+)', () => {
  it('GET asterisk/ping: 200 with the ping body, every field in Asterisk\'s order', async () => {
    const { fake, conn } = await setup();
    conn.send({ request_id: 'r1', method: 'GET', uri: 'asterisk/ping' });
    const r = await conn.response('r1');
    expect(Object.keys(r)).toEqual(KEYS_WITH_BODY);
    expect(r).toMatchObject({
      type: 'RESTResponse', transaction_id: 't1', request_id: 'r1', status_code: 200, reason_phrase: 'OK',
      uri: 'asterisk/ping', content_type: 'application/json', application: 'switchboard', asterisk_id: fake.asteriskId,
    });
    expect(r.timestamp).toMatch(TIME);
    const ping = body(r) as Record<string, unknown>;
    expect(Object.keys(ping)).toEqual(['ping', 'timestamp', 'asterisk_id']);
    expect(ping).toMatchObject({ ping: 'pong', asterisk_id: fake.asteriskId });
    expect(ping.timestamp).toMatch(TIME);
    // Recorded like an HTTP request, marked as WebSocket.
    const req = fake.requests().find((x) => x.via === 'ws');
    expect(req).toMatchObject({ method: 'GET', path: '/ari/asterisk/ping', query: {}, operation: 'asterisk.ping', authorized: true, via: 'ws', transactionId: 't1', requestId: 'r1' });
    expect(req?.websocket).toBeUndefined();
    // The upgrade is an HTTP request; the RESTResponse is not an event.
    expect(fake.requests()[0]).toMatchObject({ websocket: true, via: 'http', path: '/ari/events' });
    expect(fake.sentEvents()).toEqual([]);
    expect(fake.restResponses()).toEqual([r]);
  });

  it('HTTP requests are recorded with via "http"', async () => {
    const { fake } = await setup();
    const res = await fetch(`${fake.url}/ari/asterisk/ping`, { headers: { Authorization: `Basic ${Buffer.from(`${fake.username}:${fake.password}`).toString('base64')}` } });
    expect(res.status).toBe(200);
    expect(Object.keys(await res.json() as object)).toEqual(['ping', 'timestamp', 'asterisk_id']);
    expect(fake.requests().filter((r) => !r.websocket)).toMatchObject([{ path: '/ari/asterisk/ping', operation: 'asterisk.ping', via: 'http' }]);
  });

  it('a uri with a leading slash maps to no route: 405 Invalid method', async () => {
    const { conn } = await setup();
    conn.send({ request_id: 'r2', method: 'GET', uri: '/asterisk/ping' });
    const r = await conn.response('r2');
    expect(r).toMatchObject({ status_code: 405, reason_phrase: 'Method Not Allowed', uri: '/asterisk/ping', content_type: 'application/json' });
    expect(body(r)).toEqual({ message: 'Invalid method' });
  });

  it('unknown channel: 404 Channel not found (ring, play with query_strings, variable with ?query)', async () => {
    const { fake, conn } = await setup();
    conn.send({ request_id: 'r3', method: 'POST', uri: 'channels/nope/ring' });
    conn.send({ request_id: 'r5', method: 'POST', uri: 'channels/nope/play', query_strings: [{ name: 'media', value: 'sound:beep' }] });
    conn.send({ request_id: 'r6', method: 'POST', uri: 'channels/nope/variable?variable=A&value=1' });
    for (const id of ['r3', 'r5', 'r6']) {
      const r = await conn.response(id);
      expect(r).toMatchObject({ status_code: 404, reason_phrase: 'Not Found', content_type: 'application/json' });
      expect(body(r)).toEqual({ message: 'Channel not found' });
    }
    // The response's uri is the request's without the ?query.
    expect((await conn.response('r6')).uri).toBe('channels/nope/variable');
    expect((await conn.response('r5')).uri).toBe('channels/nope/play');
    const ws = fake.requests().filter((r) => r.via === 'ws');
    expect(ws.map((r) => [r.path, r.query, r.operation])).toEqual([
      ['/ari/channels/nope/ring', {}, 'channels.ring'],
      ['/ari/channels/nope/play', { media: 'sound:beep' }, 'channels.play'],
      ['/ari/channels/nope/variable', { variable: 'A', value: '1' }, 'channels.setChannelVar'],
    ]);
  });

  it('query_strings and a ?query in the uri both reach the handler (merged)', async () => {
    const { fake, conn } = await setup();
    fake.incomingCall({ channelId: 'c1', callerNumber: '555', dialedExten: '100' });
    conn.send({ request_id: 's1', method: 'POST', uri: 'channels/c1/variable?variable=GREETING', query_strings: [{ name: 'value', value: 'a b&c' }] });
    expect(await conn.response('s1')).toMatchObject({ status_code: 204 });
    conn.send({ request_id: 'g1', method: 'GET', uri: 'channels/c1/variable', query_strings: [{ name: 'variable', value: 'GREETING' }] });
    const g = await conn.response('g1');
    expect(g).toMatchObject({ status_code: 200, reason_phrase: 'OK' });
    expect(body(g)).toEqual({ value: 'a b&c' });
    // A form-urlencoded body is merged into the query too.
    conn.send({ request_id: 's2', method: 'POST', uri: 'channels/c1/variable', content_type: 'application/x-www-form-urlencoded', message_body: 'variable=X&value=2' });
    expect(await conn.response('s2')).toMatchObject({ status_code: 204 });
    conn.send({ request_id: 'g2', method: 'GET', uri: 'channels/c1/variable?variable=X' });
    expect(body(await conn.response('g2'))).toEqual({ value: '2' });
  });

  it('GET channels with query_strings: 200 and the list (unknown parameters ignored when strictParams is off, refused when on)', async () => {
    const { conn } = await setup({ strictParams: false });
    conn.send({ request_id: 'r4', method: 'GET', uri: 'channels', query_strings: [{ name: 'x', value: 'y' }] });
    const r = await conn.response('r4');
    expect(r).toMatchObject({ status_code: 200, reason_phrase: 'OK', uri: 'channels', content_type: 'application/json', message_body: '[]' });

    const strict = await setup();
    strict.conn.send({ request_id: 'r4', method: 'GET', uri: 'channels', query_strings: [{ name: 'x', value: 'y' }] });
    const s = await strict.conn.response('r4');
    expect(s).toMatchObject({ status_code: 400, reason_phrase: 'Bad Request' });
    expect((body(s) as { message: string }).message).toMatch(/unknown parameter/);
  });

  it('a JSON message_body is the body: originate variables reach the channel', async () => {
    const { fake, conn } = await setup();
    conn.send({
      request_id: 'o1', method: 'POST', uri: 'channels/agent-1?endpoint=PJSIP/1001&app=switchboard&timeout=20',
      content_type: 'application/json', message_body: JSON.stringify({ variables: { A: '1', CALLERID_NAME: 'x' } }),
    });
    const r = await conn.response('o1');
    expect(r).toMatchObject({ status_code: 200, reason_phrase: 'OK', uri: 'channels/agent-1' });
    expect(body(r)).toMatchObject({ id: 'agent-1', state: 'Down' });
    expect(fake.requests().find((x) => x.requestId === 'o1')).toMatchObject({
      operation: 'channels.originateWithId', path: '/ari/channels/agent-1',
      query: { endpoint: 'PJSIP/1001', app: 'switchboard', timeout: '20' }, body: { variables: { A: '1', CALLERID_NAME: 'x' } },
    });
    conn.send({ request_id: 'v1', method: 'GET', uri: 'channels/agent-1/variable?variable=A' });
    expect(body(await conn.response('v1'))).toEqual({ value: '1' });
    // Like Asterisk's *_parse_body, the parameters may come in the JSON body instead of the query.
    conn.send({
      request_id: 'o2', method: 'POST', uri: 'channels',
      content_type: 'application/json', message_body: JSON.stringify({ endpoint: 'PJSIP/1002', app: 'switchboard', channelId: 'agent-2', variables: { B: '2' } }),
    });
    expect(await conn.response('o2')).toMatchObject({ status_code: 200 });
    expect(fake.channel('agent-2')).toBeDefined();
  });

  it('protocol errors: non-JSON, unknown type, missing type/uri/method, body without content type', async () => {
    const { fake, conn } = await setup();
    conn.send('not json');
    conn.send({ type: 'Other', transaction_id: undefined, request_id: 'r9' } as Frame);
    conn.send(JSON.stringify({ request_id: 'e1', method: 'GET', uri: 'asterisk/ping' }));
    conn.send({ request_id: 'e2', method: 'GET' });
    conn.send({ request_id: 'e3', method: 'FETCH', uri: 'asterisk/ping?x=1' });
    conn.send({ request_id: 'e4', uri: 'asterisk/ping' });
    conn.send({ request_id: 'e5', method: 'POST', uri: 'channels', message_body: '{"endpoint":"PJSIP/1001"}' });
    conn.send({ request_id: 'e6', method: 'POST', uri: 'channels', content_type: 'text/plain', message_body: 'x' });
    conn.send({ request_id: 'e7', method: 'POST', uri: 'channels', content_type: 'application/json', message_body: '{nope' });
    conn.send({ request_id: 'e8', method: 'GET', uri: 'channels', query_strings: { name: 'a', value: 'b' } });
    conn.send({ request_id: 'last', method: 'GET', uri: 'asterisk/ping' });
    await conn.response('last');

    const [parse, ...rest] = conn.frames;
    // Exactly as Asterisk: no content_type/message_body, empty ids and uri.
    expect(parse).toEqual({ type: 'RESTResponse', transaction_id: '', request_id: '', status_code: 400, reason_phrase: 'Failed to parse request message JSON', uri: '', application: 'switchboard', timestamp: parse!.timestamp, asterisk_id: fake.asteriskId });
    expect(Object.keys(parse!)).toEqual(KEYS_NO_BODY);
    const bad = (id: string): [unknown, unknown, unknown, unknown, unknown] => {
      const f = rest.find((x) => x.request_id === id)!;
      return [f.transaction_id, f.status_code, f.reason_phrase, f.uri, body(f)];
    };
    expect(bad('r9')).toEqual(['', 400, 'Bad request', '', { message: 'Unknown request type.' }]);
    expect(bad('e1')).toEqual(['', 400, 'Bad request', '', { message: "No 'type' property." }]);
    expect(bad('e2')).toEqual(['t1', 400, 'Bad request', '', { message: "Empty or missing 'uri' property." }]);
    expect(bad('e3')).toEqual(['t1', 400, 'Bad request', 'asterisk/ping', { message: "Unknown or missing 'method' property." }]);
    expect(bad('e4')).toEqual(['t1', 400, 'Bad request', 'asterisk/ping', { message: "Unknown or missing 'method' property." }]);
    expect(bad('e5')).toEqual(['t1', 400, 'Bad request', 'channels', { message: "No 'content_type' for 'message_body'." }]);
    expect(bad('e6')).toEqual(['t1', 400, 'Bad request', 'channels', { message: 'Unknown content type.' }]);
    expect(bad('e7')).toEqual(['t1', 400, 'Bad request', 'channels', { message: "Unable to parse 'message_body' as 'application/json'." }]);
    expect(bad('e8')).toEqual(['t1', 400, 'Bad request', 'channels', { message: "Unable to parse 'query_strings' array." }]);
    // Malformed frames never reach the routing: only the last ping is recorded.
    expect(fake.requests().filter((r) => r.via === 'ws').map((r) => r.requestId)).toEqual(['last']);
    expect(fake.channels()).toEqual([]);
  });

  it('a file answer (recordings/stored/{name}/file): 406 Not Acceptable.  Use HTTP GET, no body', async () => {
    const { fake, conn } = await setup();
    fake.addStoredRecording('greeting');
    conn.send({ request_id: 'f1', method: 'GET', uri: 'recordings/stored/greeting/file' });
    const r = await conn.response('f1');
    expect(r).toMatchObject({ status_code: 406, reason_phrase: 'Not Acceptable.  Use HTTP GET', uri: 'recordings/stored/greeting/file' });
    expect(Object.keys(r)).toEqual(KEYS_NO_BODY);
    // A recording that doesn't exist is a plain 404 (no file was opened).
    conn.send({ request_id: 'f2', method: 'GET', uri: 'recordings/stored/nope/file' });
    expect(await conn.response('f2')).toMatchObject({ status_code: 404 });
    // Over HTTP the same file is served.
    const res = await fetch(`${fake.url}/ari/recordings/stored/greeting/file?api_key=${fake.username}:${fake.password}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('audio/wav');
  });

  it('api-docs are HTTP only: over the socket an unknown resource (404)', async () => {
    const { conn } = await setup();
    conn.send({ request_id: 'd1', method: 'GET', uri: 'api-docs/resources.json' });
    const r = await conn.response('d1');
    expect(r).toMatchObject({ status_code: 404, reason_phrase: 'Not Found' });
    expect(body(r)).toEqual({ message: 'Resource not found' });
  });

  it('ring and answer on a real channel: 204 without content_type/message_body, events after the response', async () => {
    const { fake, conn } = await setup();
    fake.incomingCall({ channelId: 'c1', callerNumber: '555', dialedExten: '100' });
    conn.send({ request_id: 'ring', method: 'POST', uri: 'channels/c1/ring' });
    conn.send({ request_id: 'answer', method: 'POST', uri: 'channels/c1/answer' });
    const ring = await conn.response('ring');
    const answer = await conn.response('answer');
    for (const r of [ring, answer]) {
      expect(r).toMatchObject({ status_code: 204, reason_phrase: 'No Content' });
      expect(Object.keys(r)).toEqual(KEYS_NO_BODY);
    }
    await fake.waitForEvent((e) => e.type === 'ChannelStateChange');
    expect(fake.channel('c1')).toMatchObject({ state: 'Up' });
    // Same socket: StasisStart, the two responses, then the answer's ChannelStateChange.
    await expect.poll(() => conn.frames.length).toBe(4);
    expect(conn.frames.map((f) => (f.type === 'RESTResponse' ? `${f.request_id as string}:${f.status_code as number}` : f.type)))
      .toEqual(['StasisStart', 'ring:204', 'answer:204', 'ChannelStateChange']);
    expect(fake.requests().filter((r) => r.via === 'ws').map((r) => r.operation)).toEqual(['channels.ring', 'channels.answer']);
  });

  it('responses come in request order', async () => {
    const { fake, conn } = await setup();
    fake.incomingCall({ channelId: 'c1', callerNumber: '555', dialedExten: '100' });
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      const id = `q${i}`;
      ids.push(id);
      const kind = i % 3;
      if (kind === 0) conn.send({ request_id: id, method: 'GET', uri: 'asterisk/ping' });
      else if (kind === 1) conn.send({ request_id: id, method: 'POST', uri: 'channels/c1/ring' });
      else conn.send({ request_id: id, method: 'GET', uri: 'channels/nope' });
    }
    await conn.response(ids.at(-1)!);
    const got = conn.frames.filter((f) => f.type === 'RESTResponse');
    expect(got.map((f) => f.request_id)).toEqual(ids);
    expect(got.map((f) => f.status_code)).toEqual(ids.map((_, i) => [200, 204, 404][i % 3]));
  });

  it('setResponse overrides apply to WebSocket requests too; "hang" never answers', async () => {
    const { fake, conn } = await setup();
    fake.setResponse('GET', '/asterisk/ping', { status: 503, body: { message: 'busy' } });
    fake.setResponse('POST', '/channels/{id}/answer', 'hang');
    conn.send({ request_id: 'p1', method: 'GET', uri: 'asterisk/ping' });
    conn.send({ request_id: 'h1', method: 'POST', uri: 'channels/c9/answer' });
    conn.send({ request_id: 'after', method: 'GET', uri: 'channels' });
    const p1 = await conn.response('p1');
    expect(p1).toMatchObject({ status_code: 503, reason_phrase: 'Service Unavailable', content_type: 'application/json' });
    expect(body(p1)).toEqual({ message: 'busy' });
    // The request after the hung one is answered; the hung one never is (answers go in request
    // order, so it would have come before).
    await conn.response('after');
    expect(conn.frames.some((f) => f.request_id === 'h1')).toBe(false);
    expect(fake.requests().find((r) => r.requestId === 'h1')).toMatchObject({ operation: 'channels.answer', via: 'ws' });
    // Removing the override restores the simulation.
    fake.setResponse('GET', '/asterisk/ping', undefined);
    conn.send({ request_id: 'p2', method: 'GET', uri: 'asterisk/ping' });
    expect(await conn.response('p2')).toMatchObject({ status_code: 200 });
  });

  it('the socket of a second app answers with its own application name', async () => {
    const { fake } = await setup();
    const other = await connect(fake, 'other');
    other.send({ request_id: 'x', method: 'GET', uri: 'asterisk/ping' });
    expect(await other.response('x')).toMatchObject({ status_code: 200, application: 'other' });
  });

  it('restOverWebSocket: false behaves like Asterisk before 20.14: no answer, nothing recorded', async () => {
    const { fake, conn } = await setup({ restOverWebSocket: false });
    conn.send({ request_id: 'r1', method: 'GET', uri: 'asterisk/ping' });
    conn.send('not json');
    await expect(conn.response('r1', 300)).rejects.toThrow(/no RESTResponse/);
    expect(conn.frames).toEqual([]);
    expect(fake.requests().filter((r) => r.via === 'ws')).toEqual([]);
    expect(fake.restResponses()).toEqual([]);
    // The socket still delivers events.
    fake.incomingCall({ channelId: 'c1', callerNumber: '555', dialedExten: '100' });
    await expect.poll(() => conn.frames.map((f) => f.type)).toEqual(['StasisStart']);
  });
});

describe('bench FakeAri (src/bench/e2e/fake-ari.ts): REST over the events WebSocket', () => {
  let bench: BenchFakeAri | undefined;
  afterEach(async () => { await bench?.stop(); bench = undefined; });

  async function benchSetup(): Promise<{ fake: BenchFakeAri; conn: Conn }> {
    const fake = new BenchFakeAri({
      docsDir: fileURLToPath(new URL('./fakes/ari-docs/', import.meta.url)),
      username: 'asterisk', password: 'secret', app: 'switchboard', endpoints: [{ technology: 'PJSIP', resource: '1001', state: 'online' }],
    });
    bench = fake;
    const url = await fake.start();
    const conn = await connect({ port: Number(new URL(url).port), username: 'asterisk', password: 'secret' });
    await expect.poll(() => fake.connected).toBe(true);
    return { fake, conn };
  }

  it('answers ping, its routes and unknown ones with Asterisk-shaped RESTResponses, in order', async () => {
    const { fake, conn } = await benchSetup();
    conn.send({ request_id: 'p', method: 'GET', uri: 'asterisk/ping' });
    conn.send({ request_id: 'e', method: 'GET', uri: 'endpoints' });
    conn.send({ request_id: 'n', method: 'POST', uri: 'channels/nope/ring' });
    conn.send({ request_id: 'u', method: 'GET', uri: 'nothing/here?x=1' });
    conn.send({ request_id: 's', method: 'GET', uri: '/asterisk/ping' });
    conn.send('not json');
    await expect.poll(() => conn.frames.length).toBe(6);
    const [p, e, n, u, s, j] = conn.frames;
    expect(conn.frames.map((f) => f.request_id)).toEqual(['p', 'e', 'n', 'u', 's', '']);
    expect(Object.keys(p!)).toEqual(KEYS_WITH_BODY);
    expect(p).toMatchObject({ type: 'RESTResponse', transaction_id: 't1', status_code: 200, reason_phrase: 'OK', uri: 'asterisk/ping', content_type: 'application/json', application: 'switchboard', asterisk_id: '02:42:ac:11:00:02' });
    expect(p!.timestamp).toMatch(TIME);
    expect(Object.keys(body(p!) as object)).toEqual(['ping', 'timestamp', 'asterisk_id']);
    expect(e).toMatchObject({ status_code: 200, reason_phrase: 'OK', uri: 'endpoints' });
    expect(body(e!)).toEqual([{ technology: 'PJSIP', resource: '1001', state: 'online', channel_ids: [] }]);
    expect(n).toMatchObject({ status_code: 404, reason_phrase: 'Not Found' });
    expect(body(n!)).toEqual({ message: 'Channel not found' });
    expect(u).toMatchObject({ status_code: 404, uri: 'nothing/here' });
    expect(s).toMatchObject({ status_code: 405, reason_phrase: 'Method Not Allowed' });
    expect(j).toMatchObject({ status_code: 400, reason_phrase: 'Failed to parse request message JSON', uri: '' });
    expect(Object.keys(j!)).toEqual(KEYS_NO_BODY);
    expect(fake.viaWs).toBe(6);
    expect(fake.counts.get('asterisk.ping')).toBe(1);
    expect(fake.counts.get('channels.ring')).toBe(1);
    expect(fake.counts.get('invalid')).toBe(1);
  });

  it('ring/answer on a call: 204 without a body, events after the response; firstAction stamped when the frame arrived', async () => {
    const { fake, conn } = await benchSetup();
    const id = fake.newChannelId();
    fake.track(id);
    const seen: { op: string; at: number }[] = [];
    fake.onRequest = (op, at) => seen.push({ op, at });
    fake.incomingCall(id, '100', '555');
    await expect.poll(() => conn.frames.length).toBe(1);
    const before = monoMs();
    conn.send({ request_id: 'ring', method: 'POST', uri: `channels/${id}/ring` });
    conn.send({ request_id: 'answer', method: 'POST', uri: `channels/${id}/answer` });
    await conn.response('answer');
    const after = monoMs();
    await expect.poll(() => conn.frames.length).toBe(4);
    expect(conn.frames.map((f) => (f.type === 'RESTResponse' ? `${f.request_id as string}:${f.status_code as number}` : f.type)))
      .toEqual(['StasisStart', 'ring:204', 'answer:204', 'ChannelStateChange']);
    expect(Object.keys(conn.frames[1]!)).toEqual(KEYS_NO_BODY);
    const first = fake.firstAction.get(id);
    expect(first?.op).toBe('channels.ring');
    expect(first!.at).toBeGreaterThanOrEqual(before);
    expect(first!.at).toBeLessThanOrEqual(after);
    expect(seen.map((s) => s.op)).toEqual(['channels.ring', 'channels.answer']);
    expect(seen[0]!.at).toBe(first!.at);
    expect(fake.viaWs).toBe(2);
    expect(fake.failures).toEqual([]);
  });

  it('sendAll: prepared events leave in one write as text frames a ws client decodes (short, 16-bit and 64-bit lengths, unicode)', async () => {
    const { fake, conn } = await benchSetup();
    const ids = [fake.newChannelId(), fake.newChannelId(), fake.newChannelId()];
    const texts = [
      fake.prepareCall(ids[0]!, '100', '555', 'Zoë «Ωmega» 电话 \u2028 "q"'),
      fake.prepareCall(ids[1]!, '101', '556', 'x'.repeat(70_000)),
      fake.prepareCall(ids[2]!, '102', '557'),
    ];
    const before = monoMs();
    const at = fake.sendAll(texts);
    expect(at).toBeGreaterThanOrEqual(before);
    await expect.poll(() => conn.frames.length).toBe(3);
    expect(conn.frames).toEqual(texts.map((t) => JSON.parse(t) as Frame));
    expect(conn.frames.map((f) => (f.channel as { id: string }).id)).toEqual(ids);
    expect(fake.channelCount).toBe(3);
  });
});

describe('both fakes write events with their keys in Asterisk\'s order (as captured from 22.10.1 and 20.20.1)', () => {
  it('asteriskEvent: type, timestamp, fields, asterisk_id, application; the three exceptions', () => {
    const keys = (evt: { type: string; [k: string]: unknown }): string[] => Object.keys(asteriskEvent(evt, 'switchboard', 'id'));
    expect(keys({ type: 'StasisStart', args: [], channel: {} })).toEqual(['type', 'timestamp', 'args', 'channel', 'asterisk_id', 'application']);
    expect(keys({ type: 'ChannelDestroyed', cause: 16, cause_txt: 'Normal Clearing', channel: {} })).toEqual(['type', 'timestamp', 'cause', 'cause_txt', 'channel', 'asterisk_id', 'application']);
    expect(keys({ type: 'ChannelHangupRequest', cause: 32, soft: true, channel: {} })).toEqual(['cause', 'soft', 'type', 'timestamp', 'channel', 'asterisk_id', 'application']);
    expect(keys({ type: 'ChannelHangupRequest', channel: {} })).toEqual(['type', 'timestamp', 'channel', 'asterisk_id', 'application']);
    expect(keys({ type: 'ChannelVarset', variable: 'A', value: '1', channel: {} })).toEqual(['variable', 'value', 'type', 'timestamp', 'channel', 'asterisk_id', 'application']);
    expect(keys({ type: 'DeviceStateChanged', device_state: {} })).toEqual(['type', 'application', 'timestamp', 'device_state', 'asterisk_id']);
    // An event's own timestamp and asterisk_id are kept; its application is the app's.
    expect(asteriskEvent({ type: 'X', timestamp: 't', asterisk_id: 'a', application: 'other' }, 'switchboard', 'id')).toEqual({ type: 'X', timestamp: 't', asterisk_id: 'a', application: 'switchboard' });
  });

  it('on the wire: FakeAriServer\'s and the bench FakeAri\'s StasisStart', async () => {
    const { fake, conn } = await setup();
    fake.incomingCall({ channelId: 'c1', callerNumber: '555', dialedExten: '100' });
    await expect.poll(() => conn.frames.length).toBe(1);
    expect(Object.keys(conn.frames[0]!)).toEqual(['type', 'timestamp', 'args', 'channel', 'asterisk_id', 'application']);
    expect(Object.keys(conn.frames[0]!.channel as object)[0]).toBe('id');
    const bench = new BenchFakeAri({ docsDir: fileURLToPath(new URL('./fakes/ari-docs/', import.meta.url)), username: 'u', password: 'p', app: 'switchboard', endpoints: [] });
    const text = bench.prepareCall('c2', '+390610000001', '+61400000000');
    expect(Object.keys(JSON.parse(text) as object)).toEqual(['type', 'timestamp', 'args', 'channel', 'asterisk_id', 'application']);
  });
});
