/**
 * A lean fake of Asterisk's ARI for the DID-call benchmark (the full one for tests is
 * test/fakes/ari-server.ts, which the bench build cannot import). It is what ari-client 2.2.0
 * needs and what the DID workflow's first steps use, nothing more:
 *
 * - REST with Basic auth; the api-docs subset of test/fakes/ari-docs/*.json (Asterisk's own docs,
 *   read at run time from the repository) served with `basePath` rewritten to this server, and
 *   requests routed through those docs (path + method → `resource.nickname`).
 * - The events WebSocket (`/ari/events?app=...`), one app.
 * - Channels just enough for the first steps of a DID call: `incomingCall` sends StasisStart;
 *   ring, answer (ChannelStateChange Up), no stored greetings (404), play (PlaybackStarted;
 *   playbacks never finish), originate
 *   (the agent leg: Dial, ChannelStateChange Ringing, Dial RINGING; it never answers), hangup,
 *   continue; GET /channels, /bridges, /endpoints; `hangupFromFarEnd` ends a caller.
 *
 * Every REST request is timestamped when its headers arrive (monoMs, the clock of the machine):
 * `firstAction` keeps, per channel given to `track`, the first request on `/channels/{id}/...`.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import path from 'node:path';
import { WebSocketServer, WebSocket } from 'ws';
import { monoMs } from './common.js';

type Json = Record<string, unknown>;

export interface FakeAriOptions {
  /** Directory of the api-docs subset (test/fakes/ari-docs). */
  docsDir: string;
  username: string;
  password: string;
  app: string;
  /** Endpoints GET /endpoints lists (presence seeds registrations from it). */
  endpoints: { technology: string; resource: string; state: 'online' | 'offline' }[];
}

interface Route { op: string; method: string; regex: RegExp; params: string[]; literal: number }
interface Channel { json: Json & { id: string; state: string }; inStasis: boolean; out: boolean }

export interface FirstAction { at: number; op: string }

const ASTERISK_ID = '02:42:ac:11:00:02';

/** Asterisk's timestamp format: 2024-05-01T10:20:30.123+0000 */
function asteriskTime(d = new Date()): string {
  return d.toISOString().replace('Z', '+0000');
}

export class FakeAri {
  private readonly resources: Json & { apis: { path: string }[] };
  private readonly docs = new Map<string, Json>();
  private readonly routes: Route[] = [];
  private server: Server | undefined;
  private wss: WebSocketServer | undefined;
  private ws: WebSocket | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly chans = new Map<string, Channel>();
  private seq = 0;
  private readonly tracked = new Set<string>();
  /** First REST request per tracked channel. */
  readonly firstAction = new Map<string, FirstAction>();
  /** Requests per operation (`channels.ring`, ...), and answers with status ≥ 400. */
  readonly counts = new Map<string, number>();
  readonly failures: string[] = [];
  /** TCP connections accepted (REST and WebSocket). */
  connections = 0;
  /** Called for every REST request on arrival. */
  onRequest: ((op: string, at: number, pathname: string) => void) | undefined;

  constructor(private readonly opts: FakeAriOptions) {
    this.resources = JSON.parse(readFileSync(path.join(opts.docsDir, 'resources.json'), 'utf8')) as Json & { apis: { path: string }[] };
    for (const api of this.resources.apis) {
      const name = api.path.replace(/^\/api-docs\//, '').replace('.{format}', '');
      const doc = JSON.parse(readFileSync(path.join(opts.docsDir, `${name}.json`), 'utf8')) as Json & { apis: { path: string; operations: { httpMethod: string; nickname: string }[] }[] };
      this.docs.set(name, doc);
      for (const a of doc.apis) {
        const params: string[] = [];
        const src = `/ari${a.path}`.replace(/[.+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_m, p: string) => {
          params.push(p);
          return '([^/]+)';
        });
        for (const op of a.operations) {
          this.routes.push({ op: `${name}.${op.nickname}`, method: op.httpMethod.toUpperCase(), regex: new RegExp(`^${src}$`), params, literal: a.path.split('/').length - params.length });
        }
      }
    }
    this.routes.sort((a, b) => b.literal - a.literal);
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
    return JSON.stringify({ ...evt, timestamp: asteriskTime(), application: this.opts.app, asterisk_id: ASTERISK_ID });
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

  private onHttp(req: IncomingMessage, res: ServerResponse): void {
    const at = monoMs();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = (req.method ?? 'GET').toUpperCase();
    const route = this.routes.find((r) => r.method === method && r.regex.test(url.pathname));
    const op = route?.op ?? (url.pathname.startsWith('/ari/api-docs/') ? 'api-docs' : 'unknown');
    this.counts.set(op, (this.counts.get(op) ?? 0) + 1);
    const m = /^\/ari\/channels\/([^/]+)/.exec(url.pathname);
    if (m && this.tracked.has(m[1]!) && !this.firstAction.has(m[1]!)) this.firstAction.set(m[1]!, { at, op });
    this.onRequest?.(op, at, url.pathname);
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
      if (!route) {
        this.reply(res, 404, { message: 'Resource not found' });
        return;
      }
      const match = route.regex.exec(url.pathname)!;
      const p: Record<string, string> = {};
      for (const [k, v] of url.searchParams) p[k] = v;
      route.params.forEach((name, i) => { p[name] = decodeURIComponent(match[i + 1] ?? ''); });
      this.handle(route.op, p, res);
    });
  }

  private handle(op: string, p: Record<string, string>, res: ServerResponse): void {
    const ch = p['channelId'] ? this.chans.get(p['channelId']) : undefined;
    const needChannel = (): Channel | undefined => {
      if (!ch) this.reply(res, 404, { message: 'Channel not found' });
      return ch;
    };
    switch (op) {
      case 'asterisk.getInfo':
        this.reply(res, 200, {
          build: { os: 'Linux', kernel: '6.1.0', options: '', machine: 'x86_64', date: '2025-01-01 00:00:00 UTC', user: 'bench' },
          system: { version: '20.20.1', entity_id: ASTERISK_ID },
          config: { name: '', default_language: 'en', setid: { user: 'asterisk', group: 'asterisk' } },
          status: { startup_time: asteriskTime(), last_reload_time: asteriskTime() },
        });
        return;
      case 'endpoints.list':
        this.reply(res, 200, this.opts.endpoints.map((e) => ({ ...e, channel_ids: [] })));
        return;
      case 'channels.list':
        this.reply(res, 200, [...this.chans.values()].map((c) => c.json));
        return;
      case 'bridges.list':
      case 'recordings.listStored':
        this.reply(res, 200, []);
        return;
      case 'recordings.getStored':
        // No agent has recorded a greeting: the workflow plays the standard prompts.
        this.reply(res, 404, { message: 'Recording not found' }, false);
        return;
      case 'channels.get':
        if (needChannel()) this.reply(res, 200, ch!.json);
        return;
      case 'channels.ring':
      case 'channels.ringStop':
        if (needChannel()) this.reply(res, 204);
        return;
      case 'channels.answer':
        if (!needChannel()) return;
        this.reply(res, 204);
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
        this.reply(res, 201, playback);
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
        this.reply(res, 200, json);
        const dialstring = endpoint.slice(endpoint.indexOf('/') + 1);
        this.emit({ type: 'Dial', peer: json, dialstring, dialstatus: '' });
        json.state = 'Ringing';
        this.emit({ type: 'ChannelStateChange', channel: json });
        this.emit({ type: 'Dial', peer: json, dialstring, dialstatus: 'RINGING' });
        return;
      }
      case 'channels.hangup':
        if (!needChannel()) return;
        this.reply(res, 204);
        this.destroy(ch!, 16);
        return;
      case 'channels.continueInDialplan':
        if (!needChannel()) return;
        this.reply(res, 204);
        ch!.inStasis = false;
        this.emit({ type: 'StasisEnd', channel: ch!.json });
        this.chans.delete(ch!.json.id);
        return;
      default:
        this.reply(res, 501, { message: `bench FakeAri does not implement ${op}` });
    }
  }
}
