/**
 * FakeAriServer: a protocol-level fake of Asterisk's ARI (REST + events WebSocket) that ari-client
 * accepts, for tests of the ARI adapter and of the DID call-control workflow.
 *
 * - Serves the api-docs subset in ./ari-docs/ (extracted from Asterisk's rest-api docs by
 *   ./ari-docs/extract.mjs): same paths, nicknames, parameters and models; `basePath` rewritten to
 *   this server's absolute URL, as Asterisk does. Requests are routed *through those docs*, so a
 *   route or parameter the real Asterisk would not know fails here too (unknown query parameters are
 *   refused with 400, stricter than Asterisk, to catch typos in the adapter).
 * - Basic auth (or `api_key=user:pass`) on every REST request, including the api-docs (as Asterisk).
 * - WebSocket on `/ari/events?app=NAME[,NAME2]&api_key=USER:PASS`; 401 on bad credentials. A second
 *   socket for the same app replaces the first (ApplicationReplaced sent to the old one).
 * - REST over that WebSocket, as Asterisk 20.14+/22.4+ (option `restOverWebSocket`, default true):
 *   a text frame `{"type":"RESTRequest","transaction_id","request_id","method","uri"(relative to
 *   /ari/, no leading slash, optional ?query),"query_strings":[{name,value}],"content_type",
 *   "message_body"}` goes through the same dispatch as HTTP (overrides, auth with the socket's
 *   credentials, routing, strict parameters, simulation) and is answered, in order, by a
 *   `{"type":"RESTResponse",...}` frame on the same socket, with Asterisk's fields, key order and
 *   protocol errors (see onWsRequest). Recorded in requests() with `via: 'ws'`; the frames sent are
 *   in restResponses() (not in sentEvents()). `restOverWebSocket: false` ignores every frame, like
 *   Asterisk before 20.14.
 * - Simulates enough of Asterisk for a DID workflow: channels, originate, bridges, playbacks,
 *   recordings (stored recordings are tiny valid WAV files), endpoints and device states, with the
 *   event shapes of events.json. Events go only to the app a channel belongs to while it is
 *   subscribed (an incoming channel from StasisStart to StasisEnd; an originated channel from the
 *   originate on), like Asterisk; endpoint/device-state events go to every connected app.
 *
 * Control API for tests: start/stop, sendEvent, requests, restResponses, waitForRequest, setResponse,
 * dropWebSockets, reset, channels, incomingCall, answerOutbound, rejectOutbound,
 * setOriginateBehavior, finishRecording, failRecording, sendDtmf, hangupFromFarEnd,
 * setEndpointState, setDeviceState, finishPlayback, ...
 */
import { EventEmitter } from 'node:events';
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, WebSocket } from 'ws';
import {
  asteriskEvent, asteriskTime, bodyParams, findRoute, handlerTreePath, loadAriDocs, parseRestRequest, pathParams, restResponseFrame,
  type AriRoute, type Json, type ResourceDoc, type RestResponseFrame,
} from '../../src/testkit/ari-protocol.js';

export { asteriskTime, type Json, type RestResponseFrame };

// ---------------------------------------------------------------------------------------------
// Types

export interface RecordedRequest {
  method: string;
  /** Full URL path, decoded per segment is NOT applied: e.g. `/ari/channels/1.2/answer`. */
  path: string;
  /** Query parameters (last value wins); `api_key` is kept out. */
  query: Record<string, string>;
  /** Parsed JSON body (undefined when empty). */
  body: unknown;
  /** `resource.nickname` from the api-docs (e.g. `channels.answer`), when the route is known. */
  operation?: string;
  /** True for the events WebSocket upgrade. */
  websocket?: boolean;
  /**
   * How the request came: `'http'` (a REST request, or the events WebSocket upgrade) or `'ws'` (a
   * RESTRequest frame on an events WebSocket; its `path` is `/ari/` + the frame's uri without the
   * `?query`, its `query` the uri's query merged with `query_strings` and a form-urlencoded body).
   */
  via: 'http' | 'ws';
  /** A `'ws'` request's `transaction_id` / `request_id` ('' when the frame had none). */
  transactionId?: string;
  requestId?: string;
  /** Whether the request carried valid credentials (a `'ws'` request: those of its socket). */
  authorized: boolean;
}

/**
 * An override of a route (setResponse). `'hang'`: never answered. `'lost'`: carried out as usual,
 * but its answer is lost with the connection: every events WebSocket is dropped (and an HTTP
 * request's connection destroyed) instead of answering, so the events the request causes reach
 * nobody (a reply lost when ARI's connection goes).
 */
export type FakeResponse = { status: number; body?: unknown; headers?: Record<string, string> } | 'hang' | 'lost';

export type OriginateBehavior =
  /**
   * The far end rings until the test calls answerOutbound / rejectOutbound (default). With
   * `timesOut`, Asterisk ends the leg at the originate's `timeout` as Asterisk 20/22 do: a lone
   * ChannelDestroyed with cause 19 (no ChannelHangupRequest, no final Dial event).
   */
  | { kind: 'ring'; timesOut?: boolean }
  | { kind: 'answer'; afterMs?: number }
  | { kind: 'reject'; cause: number; afterMs?: number }
  /** The POST /channels itself fails. */
  | { kind: 'error'; status: number; message: string };

export interface FakeEndpoint { technology: string; resource: string; state: 'online' | 'offline' | 'unknown' }

export interface FakeAriOptions {
  username?: string; // 'asterisk'
  password?: string; // 'secret'
  /** Default app for incomingCall (default 'switchboard'). */
  app?: string;
  /** Per media item; null = playbacks finish only via finishPlayback() (default 5 ms). */
  playbackMs?: number | null;
  endpoints?: FakeEndpoint[];
  /** Refuse query parameters the api-docs don't declare (default true). */
  strictParams?: boolean;
  /** Reported by /asterisk/info (default '20.20.1'). */
  version?: string;
  /**
   * Answer RESTRequest frames on the events WebSocket as Asterisk 20.14+/22.4+ do (default true);
   * false = like older Asterisk: every frame a client sends there is ignored (never answered).
   */
  restOverWebSocket?: boolean;
}

interface FakeChannel {
  json: Json & { id: string; name: string; state: string };
  app: string;
  subscribed: boolean;
  inStasis: boolean;
  direction: 'in' | 'out';
  bridgeId?: string;
  vars: Record<string, string>;
  originate?: { endpoint: string; appArgs?: string; timeout: number; dialstring: string };
  timers: NodeJS.Timeout[];
  /** A continue in the dialplan waiting for the channel's recording to end (Asterisk queues it behind). */
  continueAfterRecording?: () => void;
}

interface FakePlayback { json: Json & { id: string; state: string }; channelId: string; media: string[]; index: number; timer?: NodeJS.Timeout }
interface FakeLiveRecording {
  json: Json & { name: string; format: string; state: string };
  channelId: string;
  startedAt: number;
  terminateOn: string;
}
interface FakeStored { name: string; format: string; data: Buffer }
interface FakeBridge { json: Json & { id: string; channels: string[] }; app: string }

/** A request on its way to dispatch (HTTP or a RESTRequest frame). */
interface Incoming {
  method: string;
  /** Recorded, and matched against setResponse overrides: `/ari/...`. */
  path: string;
  /** Routed: the path Asterisk's handler-tree walk reaches (null: the root, which has no operation). */
  routePath: string | null;
  query: Record<string, string>;
  body: unknown;
  bodyError: boolean;
  authorized: boolean;
  via: 'http' | 'ws';
  ws?: { transactionId: string; requestId: string };
}

type Outcome =
  | { kind: 'hang' }
  | { kind: 'lost'; after?: () => void }
  | { kind: 'docs' }
  | { kind: 'reply'; status: number; body?: unknown; headers?: Record<string, string>; contentType?: string; after?: () => void };

class HttpError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

// ---------------------------------------------------------------------------------------------
// Helpers

const DOCS_DIR = fileURLToPath(new URL('./ari-docs/', import.meta.url));

const CAUSE_TXT: Record<number, string> = {
  0: 'Unknown', 1: 'Unallocated (unassigned) number', 3: 'No route to destination', 16: 'Normal Clearing',
  17: 'User busy', 18: 'No user responding', 19: 'User alerting, no answer', 20: 'Subscriber absent',
  21: 'Call Rejected', 26: 'Answered elsewhere', 27: 'Destination out of order', 28: 'Invalid number format (incomplete number)',
  31: 'Normal, unspecified', 34: 'Circuit/channel congestion', 38: 'Network out of order', 58: 'Bearer capability not available',
  127: 'Interworking, unspecified',
};
const HANGUP_REASONS: Record<string, number> = {
  normal: 16, busy: 17, congestion: 34, no_answer: 19, timeout: 19, rejected: 21, unallocated: 1,
  normal_unspecified: 31, number_incomplete: 28, codec_mismatch: 58, interworking: 127, failure: 38, answered_elsewhere: 26,
};
export function causeText(cause: number): string { return CAUSE_TXT[cause] ?? 'Unknown'; }
function dialStatus(cause: number): string {
  if (cause === 17) return 'BUSY';
  if (cause === 18 || cause === 19) return 'NOANSWER';
  if (cause === 34) return 'CONGESTION';
  return 'CHANUNAVAIL';
}

const RECORDING_FORMATS = new Set(['wav', 'WAV', 'gsm', 'wav49', 'ulaw', 'alaw', 'sln', 'g722']);

/** A tiny valid RIFF/WAVE file: 8 kHz, 16-bit, mono PCM silence with `dataBytes` bytes of samples. */
export function makeWav(dataBytes: number): Buffer {
  const data = Math.max(0, Math.floor(dataBytes / 2) * 2);
  const buf = Buffer.alloc(44 + data);
  buf.write('RIFF', 0, 'ascii');
  buf.writeUInt32LE(36 + data, 4);
  buf.write('WAVE', 8, 'ascii');
  buf.write('fmt ', 12, 'ascii');
  buf.writeUInt32LE(16, 16); // fmt chunk size
  buf.writeUInt16LE(1, 20); // PCM
  buf.writeUInt16LE(1, 22); // mono
  buf.writeUInt32LE(8000, 24); // sample rate
  buf.writeUInt32LE(16000, 28); // byte rate
  buf.writeUInt16LE(2, 32); // block align
  buf.writeUInt16LE(16, 34); // bits per sample
  buf.write('data', 36, 'ascii');
  buf.writeUInt32LE(data, 40);
  return buf;
}

function clone<T>(v: T): T { return JSON.parse(JSON.stringify(v)) as T; }

function patternToRegex(pattern: string | RegExp): RegExp {
  if (pattern instanceof RegExp) return pattern;
  const full = pattern.startsWith('/ari/') || pattern === '/ari' ? pattern : `/ari${pattern.startsWith('/') ? '' : '/'}${pattern}`;
  const src = full
    .split(/(\{[^}]+\}|\*)/)
    .map((part) => (part === '*' ? '.*' : /^\{[^}]+\}$/.test(part) ? '[^/]+' : part.replace(/[.*+?^$()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${src}$`);
}

// ---------------------------------------------------------------------------------------------

export class FakeAriServer {
  readonly username: string;
  readonly password: string;
  readonly app: string;
  readonly asteriskId = '02:42:ac:11:00:02';

  private readonly opts: Required<Omit<FakeAriOptions, 'playbackMs' | 'endpoints'>> & { playbackMs: number | null; endpoints: FakeEndpoint[] };
  private readonly resourcesDoc: Json & { apis: { path: string }[] };
  private readonly docs: Map<string, ResourceDoc>;
  private readonly routes: readonly AriRoute[];
  private readonly bus = new EventEmitter();

  private server?: Server;
  private wss?: WebSocketServer;
  private lastPort = 0;
  private readonly sockets = new Set<Socket>();
  private readonly hung = new Set<ServerResponse | Socket>();
  private readonly appSockets = new Map<string, WebSocket>();
  /** Apps whose socket asked for subscribeAll=true: like Asterisk, only they get endpoint and device-state events. */
  private readonly subscribedAll = new Set<string>();
  private readonly allSockets = new Set<WebSocket>();
  private wsConnectCount = 0;

  private recorded: RecordedRequest[] = [];
  private restFrames: RestResponseFrame[] = [];
  private overrides: { method: string; regex: RegExp; response: FakeResponse }[] = [];
  private chans = new Map<string, FakeChannel>();
  private bridges = new Map<string, FakeBridge>();
  private playbacks = new Map<string, FakePlayback>();
  private live = new Map<string, FakeLiveRecording>();
  private stored = new Map<string, FakeStored>();
  private endpoints = new Map<string, FakeEndpoint>();
  private deviceStates = new Map<string, string>();
  private originateDefault: OriginateBehavior = { kind: 'ring' };
  private originateByEndpoint = new Map<string, OriginateBehavior>();
  private sent: Json[] = [];
  private continued = new Map<string, { context?: string; extension?: string; priority?: number }>();
  private seq = 0;
  private playbackMs: number | null;
  private missingMedia = new Set<string>();
  private readonly startupTime = asteriskTime();

  constructor(options: FakeAriOptions = {}) {
    this.opts = {
      username: options.username ?? 'asterisk',
      password: options.password ?? 'secret',
      app: options.app ?? 'switchboard',
      playbackMs: options.playbackMs === undefined ? 5 : options.playbackMs,
      endpoints: options.endpoints ?? [],
      strictParams: options.strictParams ?? true,
      version: options.version ?? '20.20.1',
      restOverWebSocket: options.restOverWebSocket ?? true,
    };
    this.username = this.opts.username;
    this.password = this.opts.password;
    this.app = this.opts.app;
    this.playbackMs = this.opts.playbackMs;
    const { resources, docs, routes } = loadAriDocs(DOCS_DIR);
    this.resourcesDoc = resources;
    this.docs = docs;
    this.routes = routes;
    this.resetEndpoints();
  }

  // -------------------------------------------------------------------------------------------
  // Life cycle

  get port(): number { return this.lastPort; }
  get url(): string { return `http://127.0.0.1:${this.lastPort}`; }

  /** Listens on 127.0.0.1 (port 0 the first time; the same port again after stop()). */
  async start(): Promise<{ url: string; port: number }> {
    if (this.server) return { url: this.url, port: this.lastPort };
    const server = createServer((req, res) => { this.onHttp(req, res); });
    server.keepAliveTimeout = 1000;
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    const wss = new WebSocketServer({ noServer: true });
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(wss, req, socket, head));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.lastPort, '127.0.0.1', () => { server.off('error', reject); resolve(); });
    });
    this.server = server;
    this.wss = wss;
    const addr = server.address();
    if (addr && typeof addr === 'object') this.lastPort = addr.port;
    return { url: this.url, port: this.lastPort };
  }

  /** Closes everything (sockets dropped abruptly, like Asterisk going away). State is kept. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const ws of this.allSockets) ws.terminate();
    this.allSockets.clear();
    this.appSockets.clear();
    this.subscribedAll.clear();
    for (const h of this.hung) h.destroy();
    this.hung.clear();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.wss?.close();
    this.wss = undefined;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Forgets requests, overrides, calls, bridges, playbacks, recordings; endpoints back to initial. Sockets stay. */
  reset(): void {
    for (const ch of this.chans.values()) ch.timers.forEach(clearTimeout);
    for (const pb of this.playbacks.values()) if (pb.timer) clearTimeout(pb.timer);
    for (const h of this.hung) h.destroy();
    this.hung.clear();
    this.recorded = [];
    this.restFrames = [];
    this.overrides = [];
    this.chans.clear();
    this.bridges.clear();
    this.playbacks.clear();
    this.live.clear();
    this.stored.clear();
    this.sent = [];
    this.continued.clear();
    this.originateDefault = { kind: 'ring' };
    this.originateByEndpoint.clear();
    this.playbackMs = this.opts.playbackMs;
    this.missingMedia.clear();
    this.resetEndpoints();
  }

  private resetEndpoints(): void {
    this.endpoints.clear();
    this.deviceStates.clear();
    for (const e of this.opts.endpoints) this.endpoints.set(`${e.technology}/${e.resource}`, { ...e });
  }

  // -------------------------------------------------------------------------------------------
  // Inspection and scripting

  requests(): RecordedRequest[] { return this.recorded.map((r) => clone(r)); }

  /** RESTResponse frames sent on events WebSockets so far (they are not events: not in sentEvents). */
  restResponses(): RestResponseFrame[] { return this.restFrames.map((r) => clone(r)); }

  /** Resolves with the first request (already recorded or future) matching `pred`. */
  waitForRequest(pred: (r: RecordedRequest) => boolean, timeoutMs = 2000): Promise<RecordedRequest> {
    const found = this.recorded.find(pred);
    if (found) return Promise.resolve(clone(found));
    return new Promise((resolve, reject) => {
      const onReq = (r: RecordedRequest): void => {
        if (!pred(r)) return;
        clearTimeout(timer);
        this.bus.off('request', onReq);
        resolve(clone(r));
      };
      const timer = setTimeout(() => {
        this.bus.off('request', onReq);
        reject(new Error(`FakeAriServer: no matching request within ${timeoutMs} ms; got:\n` +
          this.recorded.map((r) => `  ${r.method} ${r.path} ${JSON.stringify(r.query)}`).join('\n')));
      }, timeoutMs);
      this.bus.on('request', onReq);
    });
  }

  /** Resolves with the first event (already sent or future) matching `pred`. */
  waitForEvent(pred: (e: Json) => boolean, timeoutMs = 2000): Promise<Json> {
    const found = this.sent.find(pred);
    if (found) return Promise.resolve(clone(found));
    return new Promise((resolve, reject) => {
      const onEvt = (e: Json): void => {
        if (!pred(e)) return;
        clearTimeout(timer);
        this.bus.off('event', onEvt);
        resolve(clone(e));
      };
      const timer = setTimeout(() => {
        this.bus.off('event', onEvt);
        reject(new Error(`FakeAriServer: no matching event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.bus.on('event', onEvt);
    });
  }

  /**
   * Overrides a route: `pathPattern` is a path (with or without the `/ari` prefix) where `{x}`
   * matches one segment and `*` anything, or a RegExp on the full path. `'hang'` never answers;
   * `undefined` removes the override. Also applies to the events WebSocket (`GET /events`).
   */
  setResponse(method: string, pathPattern: string | RegExp, response: FakeResponse | undefined): void {
    const regex = patternToRegex(pathPattern);
    const m = method.toUpperCase();
    this.overrides = this.overrides.filter((o) => !(o.method === m && o.regex.source === regex.source));
    if (response !== undefined) this.overrides.push({ method: m, regex, response });
  }

  /** Events sent to apps so far (with type, timestamp, application). */
  sentEvents(): Json[] { return this.sent.map((e) => clone(e)); }

  /** Sends an event to an app's socket (default: this.app); fills in timestamp/application/asterisk_id. */
  sendEvent(evt: Json & { type: string }, app?: string): void {
    this.emitTo(app ?? (typeof evt.application === 'string' ? evt.application : this.app), evt);
  }

  /** Abruptly drops every events WebSocket (the server keeps listening). */
  dropWebSockets(): void {
    for (const ws of this.allSockets) ws.terminate();
  }

  /** Writes bytes as they are (hand-made frames) on every events socket. */
  writeRawToWebSockets(bytes: Buffer): void {
    for (const ws of this.allSockets) (ws as unknown as { _socket?: Socket })._socket?.write(bytes);
  }

  /** Pings every events socket; resolves with the payload of each pong. */
  pingWebSockets(payload: Buffer): Promise<Buffer[]> {
    return Promise.all([...this.allSockets].map((ws) => new Promise<Buffer>((resolve) => {
      ws.once('pong', (data: Buffer) => resolve(data));
      ws.ping(payload);
    })));
  }

  /** Starts the close handshake on every events socket (Asterisk shutting down). */
  closeWebSockets(code: number, reason: string): void {
    for (const ws of this.allSockets) ws.close(code, reason);
  }

  /** Stops reading from every events socket (a hung Asterisk): pings go unanswered. */
  freezeWebSockets(): void {
    for (const ws of this.allSockets) (ws as unknown as { _socket?: Socket })._socket?.pause();
  }

  /** Apps with a connected events socket. */
  connectedApps(): string[] { return [...this.appSockets.keys()]; }
  /** How many events sockets were accepted since construction. */
  webSocketConnections(): number { return this.wsConnectCount; }

  channels(): Json[] { return [...this.chans.values()].map((c) => clone(c.json)); }
  channel(id: string): Json | undefined { const c = this.chans.get(id); return c ? clone(c.json) : undefined; }
  /** Where continueInDialplan sent a channel (undefined if it didn't); remembered after the channel is gone. */
  continuedTo(id: string): { context?: string; extension?: string; priority?: number } | undefined {
    const c = this.continued.get(id);
    return c ? { ...c } : undefined;
  }
  bridgesList(): Json[] { return [...this.bridges.values()].map((b) => clone(b.json)); }
  playbacksList(): Json[] { return [...this.playbacks.values()].map((p) => clone(p.json)); }
  liveRecordings(): Json[] { return [...this.live.values()].map((r) => clone(r.json)); }
  storedRecordings(): { name: string; format: string; bytes: number }[] {
    return [...this.stored.values()].map((s) => ({ name: s.name, format: s.format, bytes: s.data.length }));
  }
  addStoredRecording(name: string, format = 'wav', data: Buffer = makeWav(1600)): void {
    this.stored.set(name, { name, format, data });
  }

  /** Playback duration per media item; null = only finishPlayback() ends playbacks. */
  setPlaybackDelay(ms: number | null): void { this.playbackMs = ms; }
  /** Media URIs that "don't exist": their playback ends with state 'failed'. */
  setMissingMedia(media: string[]): void { this.missingMedia = new Set(media); }

  setOriginateBehavior(behavior: OriginateBehavior, endpoint?: string): void {
    if (endpoint) this.originateByEndpoint.set(endpoint, behavior);
    else this.originateDefault = behavior;
  }

  /**
   * A caller dials a DID that the dialplan sends to Stasis(app,DID): creates the channel (state
   * 'Ring') and sends StasisStart with `args: [dialedExten]`. Throws if the app has no socket
   * (Asterisk would fail the Stasis() app).
   */
  incomingCall(opts: { channelId?: string; callerNumber: string; callerName?: string; dialedExten: string; app?: string; endpoint?: string; context?: string; args?: string[] }): Json {
    const app = opts.app ?? this.app;
    if (!this.appSockets.has(app)) throw new Error(`FakeAriServer: Stasis app '${app}' doesn't exist (no events socket)`);
    const id = opts.channelId ?? this.newChannelId();
    if (this.chans.has(id)) throw new Error(`FakeAriServer: channel ${id} already exists`);
    const endpoint = opts.endpoint ?? 'PJSIP/trunk';
    const args = opts.args ?? [opts.dialedExten];
    const ch: FakeChannel = {
      json: {
        id,
        name: `${endpoint}-${this.hex()}`,
        state: 'Ring',
        protocol_id: `${randomUUID()}@127.0.0.1`,
        caller: { name: opts.callerName ?? '', number: opts.callerNumber },
        connected: { name: '', number: '' },
        accountcode: '',
        dialplan: { context: opts.context ?? 'from-trunk', exten: opts.dialedExten, priority: 2, app_name: 'Stasis', app_data: [app, ...args].join(',') },
        creationtime: asteriskTime(),
        language: 'en',
      },
      app, subscribed: true, inStasis: true, direction: 'in', vars: {}, timers: [],
    };
    this.chans.set(id, ch);
    this.emitTo(app, { type: 'StasisStart', args, channel: clone(ch.json) });
    return clone(ch.json);
  }

  /** The far end of an originated channel answers: ChannelStateChange Up, Dial ANSWER, StasisStart (Asterisk 22.10.1's order). */
  answerOutbound(channelId: string): void {
    const ch = this.mustChannel(channelId);
    if (ch.direction !== 'out') throw new Error(`FakeAriServer: ${channelId} is not an originated channel`);
    if (ch.json.state === 'Up') return;
    ch.timers.forEach(clearTimeout);
    ch.json.state = 'Up';
    this.channelEvent(ch, { type: 'ChannelStateChange', channel: clone(ch.json) });
    this.channelEvent(ch, { type: 'Dial', peer: clone(ch.json), dialstring: ch.originate?.dialstring ?? '', dialstatus: 'ANSWER' });
    if (ch.subscribed) {
      ch.inStasis = true;
      const appArgs = ch.originate?.appArgs;
      // As Asterisk shows it from now on (GET /channels): running Stasis(<app>,<appArgs>).
      ch.json.dialplan = { ...(ch.json.dialplan as Json), app_name: 'Stasis', app_data: [ch.app, ...(appArgs ? [appArgs] : [])].join(',') };
      this.emitTo(ch.app, { type: 'StasisStart', args: appArgs ? appArgs.split(',') : [], channel: clone(ch.json) });
    }
  }

  /**
   * The far end of an originated channel refuses (17 busy, 19 no answer, 34 congestion, ...):
   * ChannelHangupRequest with the cause, Dial with the final status, ChannelDestroyed (as Asterisk
   * 22.10.1 for a 486 from a pjsip phone).
   */
  rejectOutbound(channelId: string, cause = 17): void {
    const ch = this.mustChannel(channelId);
    if (ch.direction !== 'out') throw new Error(`FakeAriServer: ${channelId} is not an originated channel`);
    if (ch.json.state === 'Up') throw new Error(`FakeAriServer: ${channelId} is already answered; use hangupFromFarEnd`);
    ch.timers.forEach(clearTimeout);
    this.channelEvent(ch, { type: 'ChannelHangupRequest', cause, channel: clone(ch.json) });
    this.channelEvent(ch, { type: 'Dial', peer: clone(ch.json), dialstring: ch.originate?.dialstring ?? '', dialstatus: dialStatus(cause) });
    this.destroy(ch, cause);
  }

  /**
   * The far end hangs up (the caller, or an answered agent leg), as Asterisk 22.10.1 reports it for
   * a pjsip BYE (CANCEL for a caller not yet answered): ChannelHangupRequest (no cause for a BYE;
   * 127 for a CANCEL), then what it ends (PlaybackFinished "failed", RecordingFinished,
   * ChannelLeftBridge), StasisEnd, for a caller that came from the dialplan a second
   * ChannelHangupRequest (cause 16, soft), and ChannelDestroyed (a caller's BYE: cause 0
   * "Unknown"; an agent leg's: 16). `cause` overrides the ChannelDestroyed cause.
   */
  hangupFromFarEnd(channelId: string, cause?: number): void {
    const ch = this.mustChannel(channelId);
    if (!this.chans.has(ch.json.id)) return;
    ch.timers.forEach(clearTimeout);
    ch.timers = [];
    const cancel = ch.direction === 'in' && ch.json.state !== 'Up';
    this.channelEvent(ch, cancel ? { type: 'ChannelHangupRequest', cause: 127, channel: clone(ch.json) } : { type: 'ChannelHangupRequest', channel: clone(ch.json) });
    if (ch.direction === 'out' && ch.json.state !== 'Up') {
      this.channelEvent(ch, { type: 'Dial', peer: clone(ch.json), dialstring: ch.originate?.dialstring ?? '', dialstatus: 'CANCEL' });
    }
    this.destroy(ch, cause ?? (cancel ? 127 : ch.direction === 'in' ? 0 : 16), 'failed');
  }

  /** DTMF from the far end; ends a recording whose terminateOn matches. */
  sendDtmf(channelId: string, digit: string, durationMs = 120): void {
    const ch = this.mustChannel(channelId);
    this.channelEvent(ch, { type: 'ChannelDtmfReceived', digit, duration_ms: durationMs, channel: clone(ch.json) });
    for (const rec of [...this.live.values()]) {
      if (rec.channelId !== channelId) continue;
      const t = rec.terminateOn;
      if (t === 'any' || (t !== 'none' && t.split('').includes(digit))) this.completeRecording(rec, {});
    }
  }

  /** Ends a live recording: RecordingFinished, and the stored recording (a WAV file) appears. */
  finishRecording(name: string, opts: { durationSeconds?: number; bytes?: number; talkingDurationSeconds?: number; silenceDurationSeconds?: number } = {}): void {
    const rec = this.live.get(name);
    if (!rec) throw new Error(`FakeAriServer: no live recording '${name}'`);
    this.completeRecording(rec, opts);
  }

  failRecording(name: string, cause = 'Recording failed'): void {
    const rec = this.live.get(name);
    if (!rec) throw new Error(`FakeAriServer: no live recording '${name}'`);
    this.live.delete(name);
    rec.json.state = 'failed';
    rec.json.cause = cause;
    this.toChannelApp(rec.channelId, { type: 'RecordingFailed', recording: clone(rec.json) });
  }

  /** Ends a playback now (state 'done'). */
  finishPlayback(id: string): void {
    const pb = this.playbacks.get(id);
    if (!pb) throw new Error(`FakeAriServer: no playback '${id}'`);
    this.endPlayback(pb, 'done');
  }

  /** Registration change of an endpoint: EndpointStateChange + DeviceStateChanged (only on change). */
  setEndpointState(technology: string, resource: string, state: 'online' | 'offline' | 'unknown'): void {
    const key = `${technology}/${resource}`;
    const ep = this.endpoints.get(key);
    if (ep && ep.state === state) return;
    const next = ep ?? { technology, resource, state };
    next.state = state;
    this.endpoints.set(key, next);
    const json = this.endpointJson(next);
    for (const app of this.appSockets.keys()) if (this.subscribedAll.has(app)) this.emitTo(app, { type: 'EndpointStateChange', endpoint: json });
    this.setDeviceState(key, state === 'online' ? 'NOT_INUSE' : state === 'offline' ? 'UNAVAILABLE' : 'UNKNOWN');
  }

  setDeviceState(name: string, state: string): void {
    if (this.deviceStates.get(name) === state) return;
    this.deviceStates.set(name, state);
    for (const app of this.appSockets.keys()) if (this.subscribedAll.has(app)) this.emitTo(app, { type: 'DeviceStateChanged', device_state: { name, state } });
  }

  // -------------------------------------------------------------------------------------------
  // HTTP

  private authorized(req: IncomingMessage, url: URL): boolean {
    const header = req.headers.authorization;
    if (header?.startsWith('Basic ')) {
      const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
      if (decoded === `${this.username}:${this.password}`) return true;
    }
    return url.searchParams.get('api_key') === `${this.username}:${this.password}`;
  }

  private onHttp(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const method = (req.method ?? 'GET').toUpperCase();
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      let bodyError = false;
      if (raw.trim()) {
        try { body = JSON.parse(raw); } catch { bodyError = true; body = raw; }
      }
      const query: Record<string, string> = {};
      for (const [k, v] of url.searchParams) if (k !== 'api_key') query[k] = v;
      const out = this.dispatch({
        method, path: url.pathname, routePath: url.pathname, query, body, bodyError,
        authorized: this.authorized(req, url), via: 'http',
      });
      if (out.kind === 'hang') { this.hung.add(res); res.on('close', () => this.hung.delete(res)); return; }
      if (out.kind === 'lost') { this.dropWebSockets(); res.socket?.destroy(); out.after?.(); return; }
      if (out.kind === 'docs') { this.serveDocs(req, res, url.pathname); return; }
      if (Buffer.isBuffer(out.body)) {
        res.writeHead(out.status, { 'Content-Type': out.contentType ?? 'application/octet-stream', 'Content-Length': out.body.length, ...out.headers });
        res.end(out.body);
      } else {
        this.reply(res, out.status, out.body, out.headers);
      }
      out.after?.();
    });
  }

  /**
   * Everything between "a request arrived" and "this is the answer", shared by HTTP and REST over
   * the events WebSocket: records the request, applies setResponse overrides, authorisation, the
   * api-docs routing, required/strict parameters and the simulation. `after` (the events a request
   * causes) must run once the answer is sent.
   */
  private dispatch(inc: Incoming): Outcome {
    const { method, path, query, body } = inc;
    const route = inc.routePath === null ? undefined : findRoute(this.routes, method, inc.routePath);
    const record: RecordedRequest = { method, path, query, body, authorized: inc.authorized, via: inc.via };
    if (route) record.operation = route.route.op;
    if (inc.ws) {
      record.transactionId = inc.ws.transactionId;
      record.requestId = inc.ws.requestId;
    }
    this.recorded.push(record);
    this.bus.emit('request', record);

    const override = this.overrides.find((o) => o.method === method && o.regex.test(path));
    if (override && override.response !== 'lost') {
      if (override.response === 'hang') return { kind: 'hang' };
      const { status, body: b, headers } = override.response;
      return { kind: 'reply', status, body: b, headers };
    }
    const out = this.carryOut(inc, route);
    return override && out.kind === 'reply' ? { kind: 'lost', after: out.after } : out;
  }

  /** dispatch() past the overrides: authorisation, routing, parameters, the simulation. */
  private carryOut(inc: Incoming, route: ReturnType<typeof findRoute>): Outcome {
    const { method, path, query, body } = inc;
    if (!inc.authorized) {
      return { kind: 'reply', status: 401, body: { message: 'Authentication required' }, headers: { 'WWW-Authenticate': 'Basic realm="Asterisk REST Interface"' } };
    }
    if (inc.bodyError) return { kind: 'reply', status: 400, body: { message: 'Invalid JSON body' } };
    // Asterisk serves the api-docs over HTTP only (over the WebSocket they are an unknown resource).
    if (inc.via === 'http' && method === 'GET' && path.startsWith('/ari/api-docs/')) return { kind: 'docs' };
    try {
      // The root of the ARI tree has no operation (a RESTRequest uri with a leading slash lands there).
      if (inc.routePath === null) return { kind: 'reply', status: 405, body: { message: 'Invalid method' } };
      if (!route) {
        const routePath = inc.routePath;
        const pathKnown = this.routes.some((r) => r.regex.test(routePath));
        return { kind: 'reply', status: pathKnown ? 405 : 404, body: { message: pathKnown ? 'Invalid method' : 'Resource not found' } };
      }
      const params = pathParams(route.route, route.match, { ...query });
      bodyParams(route.route, body, params);
      for (const p of route.route.params) {
        if (p.paramType !== 'body' && p.required && (params[p.name] === undefined || params[p.name] === '')) {
          throw new HttpError(400, `${p.name}: missing required parameter`);
        }
      }
      if (this.opts.strictParams) {
        const known = new Set(route.route.params.map((p) => p.name));
        const unknown = Object.keys(query).filter((k) => !known.has(k));
        if (unknown.length) throw new HttpError(400, `unknown parameter(s) ${unknown.join(', ')} (FakeAriServer strict mode)`);
      }
      const result = this.handle(route.route.op, params, body, path);
      return { kind: 'reply', status: result.status, body: result.body, contentType: result.contentType, after: result.after };
    } catch (err) {
      if (err instanceof HttpError) return { kind: 'reply', status: err.status, body: { message: err.message } };
      return { kind: 'reply', status: 500, body: { message: `FakeAriServer: ${(err as Error).message}` } };
    }
  }

  private reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (status === 204 || body === undefined) {
      res.writeHead(status, headers);
      res.end();
      return;
    }
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  private serveDocs(req: IncomingMessage, res: ServerResponse, path: string): void {
    const base = `http://${req.headers.host ?? `127.0.0.1:${this.lastPort}`}/ari`;
    const name = path.slice('/ari/api-docs/'.length).replace(/\.json$/, '');
    if (name === 'resources') { this.reply(res, 200, { ...this.resourcesDoc, basePath: base }); return; }
    const doc = this.docs.get(name);
    if (!doc) { this.reply(res, 404, { message: 'Resource not found' }); return; }
    this.reply(res, 200, { ...doc, basePath: base });
  }

  // -------------------------------------------------------------------------------------------
  // WebSocket

  private onUpgrade(wss: WebSocketServer, req: IncomingMessage, socket: Socket, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const authorized = this.authorized(req, url);
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) if (k !== 'api_key') query[k] = v;
    const record: RecordedRequest = { method: 'GET', path: url.pathname, query, body: undefined, operation: 'events.eventWebsocket', websocket: true, via: 'http', authorized };
    this.recorded.push(record);
    this.bus.emit('request', record);
    const refuse = (status: number, text: string): void => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    };
    const override = this.overrides.find((o) => o.method === 'GET' && o.regex.test(url.pathname));
    if (override) {
      if (override.response === 'hang') { this.hung.add(socket); socket.on('close', () => this.hung.delete(socket)); return; }
      // 'lost' on the upgrade itself: the connection goes before any answer.
      if (override.response === 'lost') { socket.destroy(); return; }
      refuse(override.response.status, 'Refused');
      return;
    }
    if (url.pathname !== '/ari/events') { refuse(404, 'Not Found'); return; }
    if (!authorized) { refuse(401, 'Unauthorized'); return; }
    const apps = (url.searchParams.get('app') ?? '').split(',').filter(Boolean);
    if (apps.length === 0) { refuse(400, 'Bad Request'); return; }
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (!this.server) { ws.terminate(); return; }
      this.wsConnectCount++;
      this.allSockets.add(ws);
      for (const app of apps) {
        const old = this.appSockets.get(app);
        if (old && old.readyState === WebSocket.OPEN) {
          old.send(JSON.stringify({ type: 'ApplicationReplaced', application: app, timestamp: asteriskTime(), asterisk_id: this.asteriskId }));
        }
        this.appSockets.set(app, ws);
        if (url.searchParams.get('subscribeAll') === 'true') this.subscribedAll.add(app);
        else this.subscribedAll.delete(app);
      }
      ws.on('error', () => undefined);
      // Asterisk 20.14+/22.4+: REST requests over this socket, with its credentials.
      ws.on('message', (data, isBinary) => {
        if (!this.opts.restOverWebSocket || isBinary) return; // Asterisk ignores non-text frames
        const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
        this.onWsRequest(ws, apps[0] ?? this.app, authorized, text);
      });
      ws.on('close', () => {
        this.allSockets.delete(ws);
        for (const [app, s] of this.appSockets) if (s === ws) this.appSockets.delete(app);
      });
    });
  }

  /**
   * A text frame on an events WebSocket, handled as Asterisk 20.14+/22.4+ do
   * (res/ari/ari_websockets.c, ari_websocket_requests.c): parsed as a RESTRequest, dispatched like
   * an HTTP request, answered by one RESTResponse frame on the same socket.
   */
  private onWsRequest(ws: WebSocket, app: string, authorized: boolean, text: string): void {
    const parsed = parseRestRequest(text);
    if (!parsed.ok) {
      const r = parsed.refusal;
      this.sendRestFrame(ws, app, { transactionId: r.transactionId, requestId: r.requestId, status: 400, reasonPhrase: r.reasonPhrase, uri: r.uri }, r.message === undefined ? undefined : { message: r.message });
      return;
    }
    const request = parsed.request;
    const { transactionId, requestId } = request;
    const out = this.dispatch({
      method: request.method,
      path: `/ari/${request.uri}`,
      routePath: handlerTreePath(request.uri),
      query: request.query,
      body: request.body,
      bodyError: false,
      authorized,
      via: 'ws',
      ws: { transactionId, requestId },
    });
    if (out.kind === 'lost') { this.dropWebSockets(); out.after?.(); return; }
    if (out.kind !== 'reply') return; // 'hang': never answered ('docs' is HTTP only)
    const head = { transactionId, requestId, uri: request.uri };
    if (Buffer.isBuffer(out.body)) {
      // A handler answering a file: Asterisk closes it and answers 406 without a body.
      this.sendRestFrame(ws, app, { ...head, status: 406, reasonPhrase: 'Not Acceptable.  Use HTTP GET' });
    } else {
      this.sendRestFrame(ws, app, { ...head, status: out.status, reasonPhrase: STATUS_CODES[out.status] ?? 'Unknown' }, out.status === 204 ? undefined : out.body);
    }
    out.after?.();
  }

  /** A RESTResponse frame, keys in Asterisk's order; no content_type/message_body without a body. */
  private sendRestFrame(
    ws: WebSocket, app: string,
    head: { transactionId: string; requestId: string; status: number; reasonPhrase: string; uri: string },
    body?: unknown,
  ): void {
    const ordered = restResponseFrame(head, body, app, this.asteriskId);
    this.restFrames.push(ordered);
    this.bus.emit('restResponse', ordered);
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(ordered));
  }

  private emitTo(app: string, evt: Json): void {
    const full = asteriskEvent(evt as Json & { type: string }, app, this.asteriskId) as Json;
    this.sent.push(full);
    this.bus.emit('event', full);
    const ws = this.appSockets.get(app);
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(full));
  }

  private channelEvent(ch: FakeChannel, evt: Json): void {
    if (ch.subscribed) this.emitTo(ch.app, evt);
  }

  private toChannelApp(channelId: string, evt: Json): void {
    const ch = this.chans.get(channelId);
    if (ch) this.channelEvent(ch, evt);
    else this.emitTo(this.app, evt);
  }

  // -------------------------------------------------------------------------------------------
  // Simulation

  private newChannelId(): string { return `${Math.floor(Date.now() / 1000)}.${++this.seq}`; }
  private hex(): string { return (++this.seq).toString(16).padStart(8, '0'); }

  private mustChannel(id: string): FakeChannel {
    const ch = this.chans.get(id);
    if (!ch) throw new Error(`FakeAriServer: no channel ${id}`);
    return ch;
  }

  private endpointJson(e: FakeEndpoint): Json {
    const prefix = `${e.technology}/${e.resource}-`;
    return {
      technology: e.technology, resource: e.resource, state: e.state,
      channel_ids: [...this.chans.values()].filter((c) => c.json.name.startsWith(prefix)).map((c) => c.json.id),
    };
  }

  private channelOr404(id: string | undefined): FakeChannel {
    const ch = id ? this.chans.get(id) : undefined;
    if (!ch) throw new HttpError(404, 'Channel not found');
    return ch;
  }

  private stasisOr409(ch: FakeChannel): void {
    if (!ch.inStasis) throw new HttpError(409, 'Channel not in Stasis application');
  }

  private later(ch: FakeChannel | undefined, fn: () => void, ms = 0): void {
    const t = setTimeout(() => {
      if (ch) ch.timers = ch.timers.filter((x) => x !== t);
      fn();
    }, ms);
    ch?.timers.push(t);
  }

  /**
   * DELETE /channels/{id} as Asterisk 22.10.1 reports it: ChannelHangupRequest (cause 32, soft: the
   * AST_SOFTHANGUP_EXPLICIT flag, not a Q.850 cause), for an agent leg still ringing Dial
   * NOANSWER, then the tear-down of `destroy` with the reason's cause.
   */
  private hangupChannel(ch: FakeChannel, cause: number): void {
    if (!this.chans.has(ch.json.id)) return;
    ch.timers.forEach(clearTimeout);
    ch.timers = [];
    this.channelEvent(ch, { type: 'ChannelHangupRequest', cause: 32, soft: true, channel: clone(ch.json) });
    if (ch.direction === 'out' && ch.json.state !== 'Up') {
      this.channelEvent(ch, { type: 'Dial', peer: clone(ch.json), dialstring: ch.originate?.dialstring ?? '', dialstatus: 'NOANSWER' });
    }
    this.destroy(ch, cause, 'done');
  }

  /**
   * Tear-down order as Asterisk: playbacks end (`playbackState`: "failed" when the far end hung up
   * during them), recordings finish (stored), bridge left, StasisEnd, for a caller in the dialplan
   * ChannelHangupRequest (cause 16, soft), ChannelDestroyed.
   */
  private destroy(ch: FakeChannel, cause: number, playbackState: 'done' | 'failed' = 'done'): void {
    const id = ch.json.id;
    for (const pb of [...this.playbacks.values()]) if (pb.channelId === id) this.endPlayback(pb, playbackState);
    for (const rec of [...this.live.values()]) if (rec.channelId === id) this.completeRecording(rec, {});
    if (ch.bridgeId) this.leaveBridge(ch);
    const wasInStasis = ch.inStasis;
    if (ch.inStasis) this.emitTo(ch.app, { type: 'StasisEnd', channel: clone(ch.json) });
    if (wasInStasis && ch.direction === 'in') this.channelEvent(ch, { type: 'ChannelHangupRequest', cause: 16, soft: true, channel: clone(ch.json) });
    this.channelEvent(ch, { type: 'ChannelDestroyed', cause, cause_txt: causeText(cause), channel: clone(ch.json) });
    ch.inStasis = false;
    ch.subscribed = false;
    this.chans.delete(id);
  }

  private leaveBridge(ch: FakeChannel): void {
    const bridge = ch.bridgeId ? this.bridges.get(ch.bridgeId) : undefined;
    ch.bridgeId = undefined;
    if (!bridge) return;
    bridge.json.channels = bridge.json.channels.filter((c) => c !== ch.json.id);
    this.channelEvent(ch, { type: 'ChannelLeftBridge', bridge: clone(bridge.json), channel: clone(ch.json) });
  }

  private endPlayback(pb: FakePlayback, state: 'done' | 'failed'): void {
    if (pb.timer) clearTimeout(pb.timer);
    this.playbacks.delete(pb.json.id);
    pb.json.state = state;
    // Asterisk keeps next_media_uri in a PlaybackFinished "failed" that cut a list short.
    if (state === 'done') delete pb.json.next_media_uri;
    this.toChannelApp(pb.channelId, { type: 'PlaybackFinished', playback: clone(pb.json) });
  }

  private advancePlayback(pb: FakePlayback): void {
    if (!this.playbacks.has(pb.json.id)) return;
    const current = pb.media[pb.index] ?? '';
    if (this.missingMedia.has(current)) { this.endPlayback(pb, 'failed'); return; }
    if (this.playbackMs === null) return;
    pb.timer = setTimeout(() => {
      pb.timer = undefined;
      if (!this.playbacks.has(pb.json.id)) return;
      if (pb.index + 1 < pb.media.length) {
        pb.index++;
        pb.json.media_uri = pb.media[pb.index];
        if (pb.index + 1 < pb.media.length) pb.json.next_media_uri = pb.media[pb.index + 1];
        else delete pb.json.next_media_uri;
        pb.json.state = 'continuing';
        this.toChannelApp(pb.channelId, { type: 'PlaybackContinuing', playback: clone(pb.json) });
        pb.json.state = 'playing';
        // Asterisk 22.10.1 announces each item of a list: PlaybackContinuing, then PlaybackStarted.
        this.toChannelApp(pb.channelId, { type: 'PlaybackStarted', playback: clone(pb.json) });
        this.advancePlayback(pb);
      } else {
        this.endPlayback(pb, 'done');
      }
    }, this.playbackMs);
  }

  private completeRecording(rec: FakeLiveRecording, opts: { durationSeconds?: number; bytes?: number; talkingDurationSeconds?: number; silenceDurationSeconds?: number }): void {
    if (!this.live.has(rec.json.name)) return;
    this.live.delete(rec.json.name);
    const duration = opts.durationSeconds ?? Math.floor((Date.now() - rec.startedAt) / 1000);
    rec.json.state = 'done';
    rec.json.duration = duration;
    if (opts.talkingDurationSeconds !== undefined) rec.json.talking_duration = opts.talkingDurationSeconds;
    if (opts.silenceDurationSeconds !== undefined) rec.json.silence_duration = opts.silenceDurationSeconds;
    const bytes = opts.bytes ?? Math.max(160, Math.round(duration * 16000));
    const data = /^wav$/i.test(rec.json.format) ? makeWav(bytes) : Buffer.alloc(bytes);
    this.stored.set(rec.json.name, { name: rec.json.name, format: rec.json.format, data });
    this.toChannelApp(rec.channelId, { type: 'RecordingFinished', recording: clone(rec.json) });
    const ch = this.chans.get(rec.channelId);
    const pending = ch?.continueAfterRecording;
    if (ch && pending) {
      ch.continueAfterRecording = undefined;
      this.later(undefined, pending);
    }
  }

  private startOriginateBehavior(ch: FakeChannel, behavior: OriginateBehavior): void {
    // Dial begins, the far end rings.
    this.later(ch, () => {
      this.channelEvent(ch, { type: 'Dial', peer: clone(ch.json), dialstring: ch.originate?.dialstring ?? '', dialstatus: '' });
      ch.json.state = 'Ringing';
      this.channelEvent(ch, { type: 'ChannelStateChange', channel: clone(ch.json) });
      this.channelEvent(ch, { type: 'Dial', peer: clone(ch.json), dialstring: ch.originate?.dialstring ?? '', dialstatus: 'RINGING' });
      if (behavior.kind === 'ring' && behavior.timesOut) {
        this.later(ch, () => this.destroy(ch, 19), (ch.originate?.timeout ?? 30) * 1000);
      }
      if (behavior.kind === 'answer') this.later(ch, () => this.answerOutbound(ch.json.id), behavior.afterMs ?? 0);
      if (behavior.kind === 'reject') this.later(ch, () => this.rejectOutbound(ch.json.id, behavior.cause), behavior.afterMs ?? 0);
    });
  }

  private handle(op: string, p: Record<string, string>, body: unknown, path: string): { status: number; body?: unknown; contentType?: string; after?: () => void } {
    switch (op) {
      // --- asterisk
      case 'asterisk.getInfo': {
        const info: Json = {
          build: { os: 'Linux', kernel: '6.1.0', options: '', machine: 'x86_64', date: '2025-01-01 00:00:00 UTC', user: 'fake' },
          system: { version: this.opts.version, entity_id: this.asteriskId },
          config: { name: '', default_language: 'en', setid: { user: 'asterisk', group: 'asterisk' } },
          status: { startup_time: this.startupTime, last_reload_time: this.startupTime },
        };
        if (p.only) for (const k of Object.keys(info)) if (!p.only.split(',').includes(k)) delete info[k];
        return { status: 200, body: info };
      }
      case 'asterisk.ping':
        return { status: 200, body: { ping: 'pong', timestamp: asteriskTime(), asterisk_id: this.asteriskId } };

      // --- endpoints
      case 'endpoints.list':
        return { status: 200, body: [...this.endpoints.values()].map((e) => this.endpointJson(e)) };
      case 'endpoints.listByTech': {
        const list = [...this.endpoints.values()].filter((e) => e.technology === p.tech);
        if (list.length === 0) throw new HttpError(404, 'No Endpoints found - invalid tech');
        return { status: 200, body: list.map((e) => this.endpointJson(e)) };
      }
      case 'endpoints.get': {
        const e = this.endpoints.get(`${p.tech}/${p.resource}`);
        if (!e) throw new HttpError(404, 'Endpoint not found');
        return { status: 200, body: this.endpointJson(e) };
      }

      // --- channels
      case 'channels.list':
        return { status: 200, body: this.channels() };
      case 'channels.get':
        return { status: 200, body: clone(this.channelOr404(p.channelId).json) };
      case 'channels.originate':
      case 'channels.originateWithId': {
        const endpoint = p.endpoint ?? '';
        const slash = endpoint.indexOf('/');
        if (slash <= 0 || slash === endpoint.length - 1) throw new HttpError(400, 'Endpoint must be in the format technology/resource');
        const behavior = this.originateByEndpoint.get(endpoint) ?? this.originateDefault;
        if (behavior.kind === 'error') throw new HttpError(behavior.status, behavior.message);
        const id = p.channelId || this.newChannelId();
        if (this.chans.has(id)) throw new HttpError(409, 'Channel with given unique ID already exists');
        if (!p.app && !p.extension) throw new HttpError(400, 'Application or extension must be specified');
        const vars = (body as { variables?: Record<string, string> } | undefined)?.variables ?? {};
        const cid = /^\s*"?([^"<]*?)"?\s*<([^>]*)>\s*$/.exec(p.callerId ?? '');
        const ch: FakeChannel = {
          json: {
            id,
            name: `${endpoint}-${this.hex()}`,
            state: 'Down',
            protocol_id: '',
            caller: cid ? { name: cid[1] ?? '', number: cid[2] ?? '' } : { name: '', number: p.callerId ?? '' },
            connected: { name: '', number: '' },
            accountcode: '',
            dialplan: { context: p.context ?? 'default', exten: p.extension ?? 's', priority: Number(p.priority ?? 1), app_name: '', app_data: '' },
            creationtime: asteriskTime(),
            language: 'en',
          },
          app: p.app ?? this.app,
          subscribed: Boolean(p.app),
          inStasis: false,
          direction: 'out',
          vars: { ...vars },
          originate: { endpoint, appArgs: p.appArgs, timeout: Number(p.timeout ?? 30), dialstring: endpoint.slice(slash + 1) },
          timers: [],
        };
        this.chans.set(id, ch);
        return { status: 200, body: clone(ch.json), after: () => this.startOriginateBehavior(ch, behavior) };
      }
      case 'channels.hangup': {
        const ch = this.channelOr404(p.channelId);
        let cause = 16;
        if (p.reason !== undefined) {
          const c = HANGUP_REASONS[p.reason];
          if (c === undefined) throw new HttpError(400, 'Invalid reason for hangup provided');
          cause = c;
        } else if (p.reason_code !== undefined) {
          cause = Number(p.reason_code);
          if (!Number.isInteger(cause)) throw new HttpError(400, 'Invalid reason for hangup provided');
        }
        return { status: 204, after: () => this.later(undefined, () => this.hangupChannel(ch, cause)) };
      }
      case 'channels.continueInDialplan': {
        const ch = this.channelOr404(p.channelId);
        this.stasisOr409(ch);
        const cont: { context?: string; extension?: string; priority?: number; label?: string } = {};
        if (p.context !== undefined) cont.context = p.context;
        if (p.label !== undefined) cont.label = p.label;
        if (p.extension !== undefined) cont.extension = p.extension;
        if (p.priority !== undefined) cont.priority = Number(p.priority);
        this.continued.set(ch.json.id, cont);
        const dp = ch.json.dialplan as Json;
        ch.json.dialplan = { ...dp, context: cont.context ?? dp.context, exten: cont.extension ?? dp.exten, priority: cont.priority ?? Number(dp.priority) + 1, app_name: '', app_data: '' };
        const leave = (): void => {
          if (!this.chans.has(ch.json.id) || !ch.inStasis) return;
          ch.inStasis = false;
          this.emitTo(ch.app, { type: 'StasisEnd', channel: clone(ch.json) });
          ch.subscribed = false;
        };
        // Asterisk 22.10.1 runs channel operations in order: a continue sent while the channel is
        // recording takes effect only once the recording has ended.
        const recording = [...this.live.values()].some((r) => r.channelId === ch.json.id);
        return {
          status: 204,
          after: () => {
            if (recording) ch.continueAfterRecording = leave;
            else this.later(undefined, leave);
          },
        };
      }
      case 'channels.answer': {
        const ch = this.channelOr404(p.channelId);
        this.stasisOr409(ch);
        if (ch.json.state === 'Up') return { status: 204 };
        ch.json.state = 'Up';
        return { status: 204, after: () => this.later(undefined, () => this.channelEvent(ch, { type: 'ChannelStateChange', channel: clone(ch.json) })) };
      }
      case 'channels.ring': {
        const ch = this.channelOr404(p.channelId);
        this.stasisOr409(ch);
        // Asterisk sends the caller 180 Ringing; its channel stays in state Ring (no event).
        return { status: 204 };
      }
      case 'channels.ringStop': {
        const ch = this.channelOr404(p.channelId);
        this.stasisOr409(ch);
        return { status: 204 };
      }
      case 'channels.play':
      case 'channels.playWithId': {
        const ch = this.channelOr404(p.channelId);
        this.stasisOr409(ch);
        const media = (p.media ?? '').split(',').filter(Boolean);
        if (media.length === 0) throw new HttpError(400, 'media: missing required parameter');
        const id = p.playbackId || randomUUID();
        if (this.playbacks.has(id)) throw new HttpError(409, 'A playback with the same ID already exists');
        const json: FakePlayback['json'] = { id, media_uri: media[0], target_uri: `channel:${ch.json.id}`, language: p.lang ?? 'en', state: 'queued' };
        if (media.length > 1) json.next_media_uri = media[1];
        const pb: FakePlayback = { json, channelId: ch.json.id, media, index: 0 };
        this.playbacks.set(id, pb);
        const reply = clone(json);
        return {
          status: 201, body: reply,
          after: () => this.later(undefined, () => {
            if (!this.playbacks.has(id)) return;
            pb.json.state = 'playing';
            this.toChannelApp(pb.channelId, { type: 'PlaybackStarted', playback: clone(pb.json) });
            this.advancePlayback(pb);
          }),
        };
      }
      case 'channels.record': {
        const ch = this.channelOr404(p.channelId);
        this.stasisOr409(ch);
        const name = p.name ?? '';
        const format = p.format ?? '';
        if (!RECORDING_FORMATS.has(format)) throw new HttpError(422, `Recording format '${format}' is unknown on this system`);
        const ifExists = p.ifExists ?? 'fail';
        if (!['fail', 'overwrite', 'append'].includes(ifExists)) throw new HttpError(400, 'ifExists invalid');
        const terminateOn = p.terminateOn ?? 'none';
        if (!/^(none|any|[0-9*#]+)$/.test(terminateOn)) throw new HttpError(400, 'terminateOn invalid');
        if (this.live.has(name)) throw new HttpError(409, 'Recording with same name is already in progress');
        if (this.stored.has(name) && ifExists === 'fail') throw new HttpError(409, 'Recording with same name already exists on the system');
        const rec: FakeLiveRecording = {
          json: { name, format, state: 'queued', target_uri: `channel:${ch.json.id}` },
          channelId: ch.json.id,
          startedAt: Date.now(),
          terminateOn,
        };
        this.live.set(name, rec);
        const reply = clone(rec.json);
        return {
          status: 201, body: reply,
          after: () => this.later(undefined, () => {
            if (!this.live.has(name)) return;
            rec.json.state = 'recording';
            this.toChannelApp(rec.channelId, { type: 'RecordingStarted', recording: clone(rec.json) });
          }),
        };
      }
      case 'channels.getChannelVar': {
        const ch = this.channelOr404(p.channelId);
        const value = ch.vars[p.variable ?? ''];
        if (value === undefined) throw new HttpError(404, 'Provided variable was not found');
        return { status: 200, body: { value } };
      }
      case 'channels.setChannelVar': {
        const ch = this.channelOr404(p.channelId);
        ch.vars[p.variable ?? ''] = p.value ?? '';
        return { status: 204 };
      }

      // --- bridges
      case 'bridges.list':
        return { status: 200, body: this.bridgesList() };
      case 'bridges.create':
      case 'bridges.createWithId': {
        const id = p.bridgeId || randomUUID();
        if (this.bridges.has(id)) throw new HttpError(409, 'Bridge with the same bridgeId already exists');
        const types = (p.type ?? 'mixing').split(',');
        const json: FakeBridge['json'] = {
          id, technology: types.includes('holding') ? 'holding_bridge' : 'simple_bridge',
          bridge_type: types.includes('holding') ? 'holding' : 'mixing', bridge_class: 'stasis', creator: 'Stasis',
          name: p.name ?? '', channels: [], creationtime: asteriskTime(), video_mode: 'none',
        };
        this.bridges.set(id, { json, app: this.app });
        return { status: 200, body: clone(json) };
      }
      case 'bridges.get': {
        const b = this.bridges.get(p.bridgeId ?? '');
        if (!b) throw new HttpError(404, 'Bridge not found');
        return { status: 200, body: clone(b.json) };
      }
      case 'bridges.destroy': {
        const b = this.bridges.get(p.bridgeId ?? '');
        if (!b) throw new HttpError(404, 'Bridge not found');
        this.bridges.delete(b.json.id);
        return {
          status: 204,
          after: () => this.later(undefined, () => {
            for (const cid of [...b.json.channels]) {
              const ch = this.chans.get(cid);
              b.json.channels = b.json.channels.filter((c) => c !== cid);
              if (!ch) continue;
              ch.bridgeId = undefined;
              this.channelEvent(ch, { type: 'ChannelLeftBridge', bridge: clone(b.json), channel: clone(ch.json) });
            }
            this.emitTo(b.app, { type: 'BridgeDestroyed', bridge: clone(b.json) });
          }),
        };
      }
      case 'bridges.addChannel': {
        const b = this.bridges.get(p.bridgeId ?? '');
        if (!b) throw new HttpError(404, 'Bridge not found');
        const ids = (p.channel ?? '').split(',').filter(Boolean);
        const chans = ids.map((id) => {
          const ch = this.chans.get(id);
          if (!ch) throw new HttpError(400, 'Channel not found');
          if (!ch.inStasis) throw new HttpError(422, 'Channel not in Stasis application');
          return ch;
        });
        return {
          status: 204,
          after: () => this.later(undefined, () => {
            for (const ch of chans) {
              if (!this.chans.has(ch.json.id) || ch.bridgeId === b.json.id) continue;
              if (ch.bridgeId) this.leaveBridge(ch);
              ch.bridgeId = b.json.id;
              b.json.channels.push(ch.json.id);
              this.channelEvent(ch, { type: 'ChannelEnteredBridge', bridge: clone(b.json), channel: clone(ch.json) });
            }
          }),
        };
      }
      case 'bridges.removeChannel': {
        const b = this.bridges.get(p.bridgeId ?? '');
        if (!b) throw new HttpError(404, 'Bridge not found');
        const ch = this.chans.get(p.channel ?? '');
        if (!ch) throw new HttpError(400, 'Channel not found');
        if (ch.bridgeId !== b.json.id) throw new HttpError(422, 'Channel not in this bridge');
        return { status: 204, after: () => this.later(undefined, () => this.leaveBridge(ch)) };
      }

      // --- recordings
      case 'recordings.listStored':
        return { status: 200, body: [...this.stored.values()].map((s) => ({ name: s.name, format: s.format })) };
      case 'recordings.getStored': {
        const s = this.stored.get(p.recordingName ?? '');
        if (!s) throw new HttpError(404, 'Recording not found');
        return { status: 200, body: { name: s.name, format: s.format } };
      }
      case 'recordings.deleteStored': {
        if (!this.stored.delete(p.recordingName ?? '')) throw new HttpError(404, 'Recording not found');
        return { status: 204 };
      }
      case 'recordings.getStoredFile': {
        const s = this.stored.get(p.recordingName ?? '');
        if (!s) throw new HttpError(404, 'Recording not found');
        return { status: 200, body: s.data, contentType: /^wav$/i.test(s.format) ? 'audio/wav' : 'application/octet-stream' };
      }
      case 'recordings.getLive': {
        const r = this.live.get(p.recordingName ?? '');
        if (!r) throw new HttpError(404, 'Recording not found');
        return { status: 200, body: clone(r.json) };
      }
      case 'recordings.stop': {
        const r = this.live.get(p.recordingName ?? '');
        if (!r) throw new HttpError(404, 'Recording not found');
        return { status: 204, after: () => this.later(undefined, () => this.completeRecording(r, {})) };
      }
      case 'recordings.cancel': {
        const r = this.live.get(p.recordingName ?? '');
        if (!r) throw new HttpError(404, 'Recording not found');
        this.live.delete(r.json.name);
        return {
          status: 204,
          after: () => this.later(undefined, () => {
            r.json.state = 'canceled';
            this.toChannelApp(r.channelId, { type: 'RecordingFailed', recording: clone(r.json) });
          }),
        };
      }

      // --- playbacks
      case 'playbacks.get': {
        const pb = this.playbacks.get(p.playbackId ?? '');
        if (!pb) throw new HttpError(404, 'Playback not found');
        return { status: 200, body: clone(pb.json) };
      }
      case 'playbacks.stop': {
        const pb = this.playbacks.get(p.playbackId ?? '');
        if (!pb) throw new HttpError(404, 'Playback not found');
        return { status: 204, after: () => this.later(undefined, () => { if (this.playbacks.has(pb.json.id)) this.endPlayback(pb, 'done'); }) };
      }

      // --- device states
      case 'deviceStates.list':
        return { status: 200, body: [...this.deviceStates].map(([name, state]) => ({ name, state })) };
      case 'deviceStates.get': {
        const state = this.deviceStates.get(p.deviceName ?? '') ?? 'UNKNOWN';
        return { status: 200, body: { name: p.deviceName, state } };
      }

      default:
        throw new HttpError(501, `FakeAriServer does not implement ${op} (${path})`);
    }
  }
}
