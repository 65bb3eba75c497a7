/**
 * A lean fake of Asterisk's ARI for the DID-call benchmark (the full one for tests is
 * test/fakes/ari-server.ts, which the bench build cannot import; both take the api-docs, routing,
 * RESTRequest parsing and RESTResponse frames from src/testkit/ari-protocol.ts). It is what
 * ari-client 2.2.0 needs and what the DID workflow's first steps use, nothing more:
 *
 * - REST with Basic auth; the api-docs subset of test/fakes/ari-docs/*.json (Asterisk's own docs,
 *   read at run time from the repository) served with `basePath` rewritten to this server, and
 *   requests routed through those docs (path + method → `resource.nickname`).
 * - The events WebSocket (`/ari/events?app=...`), one app; REST over it as Asterisk 20.14+/22.4+
 *   (a `{"type":"RESTRequest",...}` text frame, uri relative to /ari/, routed like an HTTP request
 *   and answered by a `{"type":"RESTResponse",...}` frame on the same socket; see onWsFrame).
 * - GET /asterisk/info and /asterisk/ping.
 * - Channels just enough for the first steps of a DID call: `incomingCall` sends StasisStart;
 *   ring, answer (ChannelStateChange Up), no stored greetings (404), play (PlaybackStarted;
 *   playbacks never finish), originate
 *   (the agent leg: Dial, ChannelStateChange Ringing, Dial RINGING; it never answers), hangup,
 *   continue; GET /channels, /bridges, /endpoints; `hangupFromFarEnd` ends a caller.
 *
 * Every REST request is timestamped when its headers arrive (monoMs, the clock of the machine), a
 * RESTRequest frame when the frame arrives (before it is parsed): `firstAction` keeps, per channel
 * given to `track`, the first request on `/channels/{id}/...`, whichever transport it came by.
 */
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, WebSocket } from 'ws';
import {
  asteriskEvent, asteriskTime, bodyParams, findRoute, handlerTreePath, loadAriDocs, parseRestRequest, pathParams, restResponseFrame, type AriDocs, type AriRoute, type Json,
} from '../../testkit/ari-protocol.js';
import { monoMs } from './common.js';

export interface FakeAriOptions {
  /** Directory of the api-docs subset (test/fakes/ari-docs). */
  docsDir: string;
  username: string;
  password: string;
  app: string;
  /** Endpoints GET /endpoints lists (presence seeds registrations from it). */
  endpoints: { technology: string; resource: string; state: 'online' | 'offline' }[];
}

interface Channel { json: Json & { id: string; state: string }; inStasis: boolean; out: boolean }

export interface FirstAction { at: number; op: string }

/** Answers one request: status, JSON body (none: no body), whether a status ≥ 400 is a failure. */
type Reply = (status: number, body?: unknown, failure?: boolean) => void;

const ASTERISK_ID = '02:42:ac:11:00:02';

/** One unmasked server-to-client text frame (RFC 6455 §5.2: FIN, opcode 1, no mask). */
function serverTextFrame(text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x81, n]) : n < 65536 ? Buffer.from([0x81, 126, n >> 8, n & 0xff]) : Buffer.alloc(10);
  if (n >= 65536) {
    head[0] = 0x81;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  return Buffer.concat([head, payload]);
}

export class FakeAri {
  private readonly resources: AriDocs['resources'];
  private readonly docs: AriDocs['docs'];
  private readonly routes: readonly AriRoute[];
  private server: Server | undefined;
  private wss: WebSocketServer | undefined;
  private ws: WebSocket | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly chans = new Map<string, Channel>();
  private seq = 0;
  private readonly tracked = new Set<string>();
  /** First REST request per tracked channel. */
  readonly firstAction = new Map<string, FirstAction>();
  /**
   * Requests per operation (`channels.ring`, ...; HTTP and WebSocket alike; a frame that is no
   * valid RESTRequest counts as `invalid`), and answers with status ≥ 400.
   */
  readonly counts = new Map<string, number>();
  readonly failures: string[] = [];
  /** TCP connections accepted (REST and WebSocket). */
  connections = 0;
  /** Text frames received on the events socket (RESTRequests, valid or not): REST over the WebSocket. */
  viaWs = 0;
  /** Called for every REST request on arrival (HTTP or WebSocket). */
  onRequest: ((op: string, at: number, pathname: string) => void) | undefined;

  constructor(private readonly opts: FakeAriOptions) {
    ({ resources: this.resources, docs: this.docs, routes: this.routes } = loadAriDocs(opts.docsDir));
  }

  get url(): string {
    const addr = this.server?.address();
    return addr && typeof addr === 'object' ? `http://127.0.0.1:${addr.port}` : '';
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  async start(): Promise<string> {
    const server = createServer((req, res) => this.onHttp(req, res));
    server.on('connection', (s: Socket) => {
      this.connections++;
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    const wss = new WebSocketServer({ noServer: true });
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(wss, req, socket, head));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.wss = wss;
    return this.url;
  }

  async stop(): Promise<void> {
    this.ws?.terminate();
    this.wss?.close();
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Records the first REST request on this channel from now on. */
  track(channelId: string): void {
    this.tracked.add(channelId);
  }

  newChannelId(): string {
    return `${Math.floor(Date.now() / 1000)}.${++this.seq}`;
  }

  /**
   * A caller dials a DID that the dialplan sends to Stasis(app,DID): the channel (state Ring) and
   * StasisStart with `args: [did]`. Returns when the event was handed to the socket (monoMs).
   */
  incomingCall(channelId: string, did: string, callerNumber: string, callerName = ''): number {
    return this.send(this.prepareCall(channelId, did, callerNumber, callerName));
  }

  /** incomingCall in two steps: the channel and its serialised StasisStart now, `send` later (cheap). */
  prepareCall(channelId: string, did: string, callerNumber: string, callerName = ''): string {
    const json = {
      id: channelId, name: `PJSIP/trunk-${(++this.seq).toString(16).padStart(8, '0')}`, state: 'Ring', protocol_id: `${channelId}@127.0.0.1`,
      caller: { name: callerName, number: callerNumber }, connected: { name: '', number: '' }, accountcode: '',
      dialplan: { context: 'switchboard-dids', exten: did, priority: 2, app_name: 'Stasis', app_data: `${this.opts.app},${did}` },
      creationtime: asteriskTime(), language: 'en',
    };
    this.chans.set(channelId, { json, inStasis: true, out: false });
    return this.serialise({ type: 'StasisStart', args: [did], channel: json });
  }

  /** Frames received on the events socket, with their arrival time, not yet handled. */
  private readonly inbox: { ws: WebSocket; text: string; at: number }[] = [];
  private draining = false;

  private drainSoon(): void {
    if (this.draining) return;
    this.draining = true;
    setImmediate(() => this.drainFrames());
  }

  /**
   * Handles queued frames for at most ~1 ms, then lets the event loop read the sockets again.
   * While the events socket still holds events the kernel has not taken (a burst of StasisStart
   * bigger than the socket buffer), it waits for them to leave first: Asterisk writes events from
   * other threads than the ones that handle requests, so its requests never hold events back.
   */
  private drainFrames(): void {
    const socket = this.eventsSocket;
    if (socket && socket.writableNeedDrain && !socket.destroyed) {
      socket.once('drain', () => this.drainFrames());
      return;
    }
    const until = monoMs() + 1;
    let n = 0;
    // What the slice sends (answers, events) leaves in one write.
    this.cork();
    try {
      while (n < this.inbox.length) {
        const f = this.inbox[n++]!;
        this.onWsFrame(f.ws, f.text, f.at);
        if (monoMs() >= until) break;
      }
    } finally {
      this.uncork();
    }
    this.inbox.splice(0, n);
    if (this.inbox.length) setImmediate(() => this.drainFrames());
    else this.draining = false;
  }

  /** The events WebSocket's TCP socket (ws's `_socket`), when one is connected. */
  private get eventsSocket(): Socket | undefined {
    return (this.ws as unknown as { _socket?: Socket } | undefined)?._socket;
  }

  /** Between cork() and uncork() what a slice of requests sends (answers, events) leaves in one write. */
  private cork(): void {
    this.eventsSocket?.cork();
  }

  private uncork(): void {
    this.eventsSocket?.uncork();
  }

  /**
   * Hands prepared events to the events socket in one write (a burst: Asterisk's event writers
   * put them on the socket as fast as the kernel takes them). The WebSocket frames are built
   * before the clock is read, so the time returned (monoMs, the same for every event) is when the
   * write began. Falls back to `send` one by one when the socket is not ws's plain TCP socket.
   */
  sendAll(texts: string[]): number {
    const socket = this.eventsSocket;
    if (!socket || this.ws?.readyState !== WebSocket.OPEN) {
      const at = monoMs();
      for (const t of texts) this.send(t);
      return at;
    }
    const frames = Buffer.concat(texts.map(serverTextFrame));
    const at = monoMs();
    socket.write(frames);
    return at;
  }

  /** Hands a prepared event to the events socket; returns when (monoMs). */
  send(text: string): number {
    const at = monoMs();
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(text);
    return at;
  }

  /** The caller hangs up: ChannelHangupRequest, StasisEnd, ChannelDestroyed. */
  hangupFromFarEnd(channelId: string): void {
    const ch = this.chans.get(channelId);
    if (!ch) return;
    this.destroy(ch, ch.json.state === 'Up' ? 16 : 127);
  }

  /** Channels still up (callers and agent legs). */
  get channelCount(): number {
    return this.chans.size;
  }

  // ---------------------------------------------------------------------------------------------

  private serialise(evt: Json): string {
    return JSON.stringify(asteriskEvent(evt as Json & { type: string }, this.opts.app, ASTERISK_ID));
  }

  private emit(evt: Json): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(this.serialise(evt));
  }

  private destroy(ch: Channel, cause: number): void {
    this.chans.delete(ch.json.id);
    this.emit({ type: 'ChannelHangupRequest', cause, channel: ch.json });
    if (ch.inStasis) this.emit({ type: 'StasisEnd', channel: ch.json });
    this.emit({ type: 'ChannelDestroyed', cause, cause_txt: cause === 16 ? 'Normal Clearing' : 'Unknown', channel: ch.json });
  }

  private authorized(req: IncomingMessage, url: URL): boolean {
    const want = `${this.opts.username}:${this.opts.password}`;
    const h = req.headers.authorization;
    if (h?.startsWith('Basic ') && Buffer.from(h.slice(6), 'base64').toString('utf8') === want) return true;
    return url.searchParams.get('api_key') === want;
  }

  private onUpgrade(wss: WebSocketServer, req: IncomingMessage, socket: Socket, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/ari/events' || !this.authorized(req, url) || !(url.searchParams.get('app') ?? '').split(',').includes(this.opts.app)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      this.ws?.terminate();
      this.ws = ws;
      ws.on('error', () => undefined);
      ws.on('message', (data, isBinary) => {
        const at = monoMs();
        if (isBinary) return; // Asterisk ignores non-text frames
        // Stamped now, handled in slices between socket reads (drainFrames): a burst of requests
        // is timestamped as it arrives, not after this single-threaded fake has done the work of
        // every request before it (Asterisk reads and handles them on its own threads, in C).
        this.inbox.push({ ws, text: Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8'), at });
        this.drainSoon();
      });
    });
  }

  private reply(res: ServerResponse, status: number, body?: unknown, failure = true): void {
    if (status >= 400 && failure) this.failures.push(`${status} ${JSON.stringify(body)}`);
    if (body === undefined) {
      res.writeHead(status);
      res.end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  /** Counts and timestamps a request (either transport) as it arrives. */
  private arrived(op: string, at: number, pathname: string): void {
    this.counts.set(op, (this.counts.get(op) ?? 0) + 1);
    const m = /^\/ari\/channels\/([^/]+)/.exec(pathname);
    if (m && this.tracked.has(m[1]!) && !this.firstAction.has(m[1]!)) this.firstAction.set(m[1]!, { at, op });
    this.onRequest?.(op, at, pathname);
  }

  /**
   * A text frame on the events socket, as Asterisk 20.14+/22.4+ handle it (the subset the DID
   * workflow can meet): a RESTRequest is routed through the api-docs like an HTTP request (uri
   * relative to /ari/; its `?query`, `query_strings` and a form-urlencoded body merged; a JSON body
   * parsed) and answered by one RESTResponse frame on the same socket; anything else is answered
   * 400 as Asterisk does. `at`: when the frame arrived.
   */
  private onWsFrame(ws: WebSocket, text: string, at: number): void {
    this.viaWs++;
    const parsed = parseRestRequest(text);
    if (!parsed.ok) {
      const r = parsed.refusal;
      this.arrived('invalid', at, '');
      this.failures.push(`400 RESTRequest frame: ${r.message ?? r.reasonPhrase}`);
      this.sendRest(ws, { transactionId: r.transactionId, requestId: r.requestId, status: 400, reasonPhrase: r.reasonPhrase, uri: r.uri }, r.message === undefined ? undefined : { message: r.message });
      return;
    }
    const { transactionId, requestId, method, uri, query, body } = parsed.request;
    const pathname = `/ari/${uri}`;
    const routePath = handlerTreePath(uri);
    const found = routePath === null ? undefined : findRoute(this.routes, method, routePath);
    this.arrived(found?.route.op ?? 'unknown', at, pathname);
    const reply: Reply = (status, answer, failure = true) => {
      if (status >= 400 && failure) this.failures.push(`${status} ${JSON.stringify(answer)}`);
      this.sendRest(ws, { transactionId, requestId, status, reasonPhrase: STATUS_CODES[status] ?? 'Unknown', uri }, answer);
    };
    if (routePath === null) { reply(405, { message: 'Invalid method' }); return; }
    if (!found) { reply(404, { message: 'Resource not found' }); return; }
    const p = { ...query };
    // Like Asterisk's *_parse_body: the operation's query parameters may come in a JSON body.
    bodyParams(found.route, body, p);
    this.handle(found.route.op, pathParams(found.route, found.match, p), reply);
  }

  /** A RESTResponse frame, keys in Asterisk's order; no content_type/message_body without a body. */
  private sendRest(ws: WebSocket, head: { transactionId: string; requestId: string; status: number; reasonPhrase: string; uri: string }, body?: unknown): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify(restResponseFrame(head, body, this.opts.app, ASTERISK_ID)));
  }

  private onHttp(req: IncomingMessage, res: ServerResponse): void {
    const at = monoMs();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = (req.method ?? 'GET').toUpperCase();
    const found = findRoute(this.routes, method, url.pathname);
    const op = found?.route.op ?? (url.pathname.startsWith('/ari/api-docs/') ? 'api-docs' : 'unknown');
    this.arrived(op, at, url.pathname);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (!this.authorized(req, url)) {
        // ari-client asks for resources.json without credentials first and answers the challenge.
        if (op !== 'api-docs') this.failures.push(`401 ${method} ${url.pathname}`);
        const text = JSON.stringify({ message: 'Authentication required' });
        res.writeHead(401, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'WWW-Authenticate': 'Basic realm="Asterisk REST Interface"' });
        res.end(text);
        return;
      }
      if (op === 'api-docs') {
        const base = `http://${req.headers.host ?? '127.0.0.1'}/ari`;
        const name = url.pathname.slice('/ari/api-docs/'.length).replace(/\.json$/, '');
        const doc = name === 'resources' ? this.resources : this.docs.get(name);
        if (!doc) this.reply(res, 404, { message: 'Resource not found' });
        else this.reply(res, 200, { ...doc, basePath: base });
        return;
      }
      if (!found) {
        this.reply(res, 404, { message: 'Resource not found' });
        return;
      }
      const p: Record<string, string> = {};
      for (const [k, v] of url.searchParams) p[k] = v;
      pathParams(found.route, found.match, p);
      this.handle(found.route.op, p, (status, body, failure) => this.reply(res, status, body, failure));
    });
  }

  /** Answers through `reply` (HTTP response or RESTResponse frame), then emits what follows. */
  private handle(op: string, p: Record<string, string>, reply: Reply): void {
    const ch = p['channelId'] ? this.chans.get(p['channelId']) : undefined;
    const needChannel = (): Channel | undefined => {
      if (!ch) reply(404, { message: 'Channel not found' });
      return ch;
    };
    switch (op) {
      case 'asterisk.getInfo':
        reply(200, {
          build: { os: 'Linux', kernel: '6.1.0', options: '', machine: 'x86_64', date: '2025-01-01 00:00:00 UTC', user: 'bench' },
          system: { version: '20.20.1', entity_id: ASTERISK_ID },
          config: { name: '', default_language: 'en', setid: { user: 'asterisk', group: 'asterisk' } },
          status: { startup_time: asteriskTime(), last_reload_time: asteriskTime() },
        });
        return;
      case 'asterisk.ping':
        // The client's probe for REST over the WebSocket (Asterisk's key order).
        reply(200, { ping: 'pong', timestamp: asteriskTime(), asterisk_id: ASTERISK_ID });
        return;
      case 'endpoints.list':
        reply(200, this.opts.endpoints.map((e) => ({ ...e, channel_ids: [] })));
        return;
      case 'channels.list':
        reply(200, [...this.chans.values()].map((c) => c.json));
        return;
      case 'bridges.list':
      case 'recordings.listStored':
        reply(200, []);
        return;
      case 'recordings.getStored':
        // No agent has recorded a greeting: the workflow plays the standard prompts.
        reply(404, { message: 'Recording not found' }, false);
        return;
      case 'channels.get':
        if (needChannel()) reply(200, ch!.json);
        return;
      case 'channels.ring':
      case 'channels.ringStop':
        if (needChannel()) reply(204);
        return;
      case 'channels.answer':
        if (!needChannel()) return;
        reply(204);
        if (ch!.json.state !== 'Up') {
          ch!.json.state = 'Up';
          this.emit({ type: 'ChannelStateChange', channel: ch!.json });
        }
        return;
      case 'channels.play':
      case 'channels.playWithId': {
        if (!needChannel()) return;
        const media = (p['media'] ?? '').split(',');
        const playback = { id: p['playbackId'] ?? `pb-${++this.seq}`, media_uri: media[0], target_uri: `channel:${ch!.json.id}`, language: 'en', state: 'queued' };
        reply(201, playback);
        this.emit({ type: 'PlaybackStarted', playback: { ...playback, state: 'playing' } });
        return;
      }
      case 'channels.originate':
      case 'channels.originateWithId': {
        const id = p['channelId'] || this.newChannelId();
        const endpoint = p['endpoint'] ?? '';
        const json = {
          id, name: `${endpoint}-${(++this.seq).toString(16).padStart(8, '0')}`, state: 'Down', protocol_id: '',
          caller: { name: '', number: p['callerId'] ?? '' }, connected: { name: '', number: '' }, accountcode: '',
          dialplan: { context: 'default', exten: 's', priority: 1, app_name: '', app_data: '' }, creationtime: asteriskTime(), language: 'en',
        };
        const leg: Channel = { json, inStasis: false, out: true };
        this.chans.set(id, leg);
        reply(200, json);
        const dialstring = endpoint.slice(endpoint.indexOf('/') + 1);
        this.emit({ type: 'Dial', peer: json, dialstring, dialstatus: '' });
        json.state = 'Ringing';
        this.emit({ type: 'ChannelStateChange', channel: json });
        this.emit({ type: 'Dial', peer: json, dialstring, dialstatus: 'RINGING' });
        return;
      }
      case 'channels.hangup':
        if (!needChannel()) return;
        reply(204);
        this.destroy(ch!, 16);
        return;
      case 'channels.continueInDialplan':
        if (!needChannel()) return;
        reply(204);
        ch!.inStasis = false;
        this.emit({ type: 'StasisEnd', channel: ch!.json });
        this.chans.delete(ch!.json.id);
        return;
      default:
        reply(501, { message: `bench FakeAri does not implement ${op}` });
    }
  }
}
