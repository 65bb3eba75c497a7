/**
 * AriClient: the AriPort over ari-client 2.2.0, the only module that imports ari-client.
 *
 * What it adds to ari-client (see docs/ENGINEERING.md, "Libraries"):
 * - A credential check (GET /ari/asterisk/info with Basic auth) before every connect(): with a bad
 *   password ari-client's connect() would throw an uncaught exception. A SwaggerGuard also contains
 *   that exception (and swagger-client's stdout notice) for the rare race it does not cover.
 * - A timeout on every REST call and connect step (ari-client's promises never settle when
 *   Asterisk is gone): PeerTimeoutError, or PeerDisconnectedError for a request that was in flight
 *   when the events socket was lost (its answer went with the connection).
 * - Errors mapped to AriRequestError (a PeerRequestError with `notFound`; `details.unreachable`
 *   for a transport failure such as ECONNRESET, ECONNREFUSED, "socket hang up", EPIPE) /
 *   PeerAuthError.
 * - A supervisor that reconnects for ever with capped exponential backoff. ari-client's own event
 *   socket reconnect gives up after 10 tries (only a `WebSocketMaxRetries` event) and cannot be
 *   cancelled once a retry is scheduled (its stop() during a retry still reconnects, and a second
 *   socket for the same app would replace ours at Asterisk). So right after `client.start(app)` the
 *   supervisor takes the WebSocket ari-client opened (`client._ws`, ari-client 2.2.0 internals)
 *   away from ari-client's handlers and drives it itself: events are parsed here (plain JSON, as
 *   Asterisk sent them), a ping detects a dead peer, and on close the whole ari-client instance is
 *   thrown away and rebuilt (credential check, api-docs, socket), emitting 'connected' each time.
 * - stop() really stops: pending retry cleared, in-flight attempt abandoned, socket closed.
 * - Once the socket is open, the server's frames are read by ServerFrameParser (ws-frames.ts)
 *   instead of ws@6's Receiver (readFramesOurselves); control frames and anything unusual still go
 *   to ws, which answers pings, runs the close handshake and reports protocol errors as before.
 * - REST over the events WebSocket (Asterisk 20.14+, 21.9+, 22.4+): once the socket is open (and
 *   events flow: nothing waits for the probe), a `GET asterisk/ping` RESTRequest frame probes for
 *   it; requests go over HTTP until Asterisk answers it, then every request whose
 *   answer is JSON goes over that socket as a RESTRequest frame and is matched with its
 *   RESTResponse frame by request_id (no TCP connection and no swagger-client per request: this is
 *   what keeps the first action of a burst of DID calls within milliseconds). Asterisk before
 *   20.14 ignores client frames: the probe times out and requests go over HTTP through ari-client,
 *   as they also do for a recording's file (Asterisk answers 406 over the socket) and for any path
 *   segment that would need URL encoding. Same timeouts and error mapping on both transports.
 *
 * Limitation (swagger-client): the Basic-auth credentials live in a module-global of
 * swagger-client, so all AriClient instances in one process must use the same ARI user.
 * The password never reaches a log: logs carry url, user and app only, and error texts are scrubbed.
 */
import { EventEmitter } from 'node:events';
import ariClient from 'ari-client';
import type { Client as AriLibClient } from 'ari-client';
import { PeerAuthError, PeerDisconnectedError, PeerRequestError, PeerTimeoutError, SettingsError, SwitchboardError, errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import { ARI_PEER, AriRequestError, toAriError } from './errors.js';
import { HttpTransportError, httpGet, peerMessage } from './http.js';
import { SwaggerGuard } from './swagger-guard.js';
import { ClientFrameEncoder, ServerFrameParser } from './ws-frames.js';
import type {
  AriEvent, AriPort, AriSettings, BridgeJson, ChannelJson, EndpointJson, LiveRecordingJson, OriginateOptions, PlaybackJson, RecordOptions, StoredRecordingJson,
} from './types.js';

/** The slice of ws@6's WebSocket that ari-client opens (ari-client 2.2.0 keeps it in `client._ws`). */
interface WsLike extends EventEmitter {
  readyState: number;
  send(data: string, cb?: (err?: Error) => void): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  ping(data?: unknown, mask?: boolean, cb?: (err?: Error) => void): void;
}
/** The TCP socket under ws@6's WebSocket (`_socket`). */
interface RawSocket {
  readonly destroyed: boolean;
  readonly writable: boolean;
  write(data: Buffer, cb?: (err?: Error | null) => void): boolean;
}
const WS_CONNECTING = 0;
const WS_OPEN = 1;
const WS_CLOSED = 3;

export type ConnectFn = (url: string, user: string, pass: string) => PromiseLike<AriLibClient>;

export interface AriClientDeps {
  logger: Logger;
  /** ari-client's connect (tests may wrap it). */
  connect?: ConnectFn;
}

export interface AriStartOptions {
  /** Reject start() on the first failure of any kind (CLI one-shots). Default: only on bad credentials. */
  failFast?: boolean;
}

type State = 'idle' | 'connecting' | 'connected' | 'backoff' | 'stopped';

const DEFAULTS = { requestTimeoutMs: 5000, reconnectInitialMs: 500, reconnectMaxMs: 30_000, pingIntervalMs: 15_000, restProbeTimeoutMs: 2000 };

/** One ARI request: method, path under /ari/ as unencoded segments, query parameters, JSON body. */
export interface RestSpec {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string[];
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
}

/** What a RESTResponse frame carried. */
interface RestAnswer { status: number; reason: string; body: unknown }

/**
 * How a RESTResponse settles its request's promise: with the whole answer, any status (the probe);
 * with the body of a 2xx answer (else the request's error, see restError); with nothing (a 2xx
 * answer to a call whose result is void: answer, ring).
 */
type RestMode = 'answer' | 'body' | 'void';

interface PendingRest {
  what: string;
  ws: WsLike;
  /** The timeout this request shares with the others sent in the same turn (RestTimeouts). */
  deadline: RestTimeout;
  mode: RestMode;
  resolve: (value: unknown) => void;
  reject: (e: Error) => void;
}

/**
 * One timer for the REST requests sent over the socket in one turn of the event loop with the same
 * timeout (a burst of calls sends ~100 first actions per socket read): a timer per request was a
 * Timeout object, a timer-list insertion and a clearTimeout each. When it fires, those of its
 * requests still in flight fail with PeerTimeoutError; it is cleared once all have been answered.
 * A request may thus time out up to one turn of the event loop early (a few ms out of seconds).
 */
interface RestTimeout {
  ms: number;
  ids: string[];
  open: number;
  timer: NodeJS.Timeout | undefined;
}

/** Path segments sent as they are over the socket (Asterisk does not URL-decode them there). */
const PLAIN_SEGMENT = /^[A-Za-z0-9._~:@+-]+$/;
const noop = (): void => undefined;
/** Names this emitter uses itself: an ARI event of that type is emitted as 'event' only. */
const RESERVED_EVENT_NAMES: ReadonlySet<string> = new Set(['event', 'connected', 'disconnected', 'error']);

export class AriClient extends EventEmitter implements AriPort {
  private readonly origin: string;
  private readonly settings: Required<AriSettings>;
  private readonly log: Logger;
  private readonly connectFn: ConnectFn;
  private readonly guard: SwaggerGuard;

  private state: State = 'idle';
  /** Bumped by every attempt and by stop(): results of an older attempt are thrown away. */
  private generation = 0;
  private failures = 0;
  private lib?: AriLibClient;
  private ws?: WsLike;
  private retryTimer?: NodeJS.Timeout;
  private pingTimer?: NodeJS.Timeout;
  private awaitingPong = false;
  /** The socket REST requests go over (set when the connect-time probe succeeded on it). */
  private restWs?: WsLike;
  private readonly pendingRest = new Map<string, PendingRest>();
  private restSeq = 0;
  /** The RestTimeout of the requests sent in this turn of the event loop. */
  private restTimeout: RestTimeout | undefined;
  private readonly frameEncoder = new ClientFrameEncoder();
  /** The socket whose frames ServerFrameParser reads (readFramesOurselves). */
  private parsedWs?: WsLike;
  /** Frames written at the end of this tick (writeFrame): their texts and request ids. */
  private outgoing: { ws: WsLike; socket: RawSocket; texts: string[]; ids: string[] } | undefined;
  private abort?: AbortController;
  /**
   * Counts the times the events socket was lost (and stop()): an HTTP request that was in flight
   * across one of them and then times out gets PeerDisconnectedError, not PeerTimeoutError. With
   * the connection gone, ari-client's HTTP requests never settle (swagger-client drops transport
   * errors), so their timeout is how a lost connection shows up.
   */
  private disconnects = 0;
  private firstStart?: { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void; failFast: boolean };

  constructor(settings: AriSettings, deps: AriClientDeps) {
    super();
    let parsed: URL;
    try {
      parsed = new URL(settings.url);
    } catch {
      throw new SettingsError(`ari url "${settings.url}" is not a URL; e.g. "http://127.0.0.1:8088"`, { key: 'ari.url' });
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new SettingsError(`ari url "${settings.url}" must start with http:// or https://`, { key: 'ari.url' });
    }
    if (!/^[A-Za-z0-9_.-]+$/.test(settings.app)) {
      throw new SettingsError(`ari app "${settings.app}" is invalid: letters, digits, "_", "." and "-" only, e.g. "switchboard"`, { key: 'ari.app' });
    }
    if (!settings.username) throw new SettingsError('ari username is empty', { key: 'ari.username' });
    this.origin = parsed.origin;
    this.settings = {
      url: parsed.origin,
      username: settings.username,
      password: settings.password,
      app: settings.app,
      requestTimeoutMs: settings.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
      reconnectInitialMs: settings.reconnectInitialMs ?? DEFAULTS.reconnectInitialMs,
      reconnectMaxMs: settings.reconnectMaxMs ?? DEFAULTS.reconnectMaxMs,
      pingIntervalMs: settings.pingIntervalMs ?? DEFAULTS.pingIntervalMs,
      restOverWebSocket: settings.restOverWebSocket ?? 'auto',
      restProbeTimeoutMs: settings.restProbeTimeoutMs ?? DEFAULTS.restProbeTimeoutMs,
    };
    this.log = deps.logger.child({ component: 'ari', url: this.origin, user: settings.username, app: settings.app });
    this.connectFn = deps.connect ?? ((u, user, pass) => ariClient.connect(u, user, pass));
    this.guard = new SwaggerGuard(this.log, (s) => this.scrub(s));
    // One listener per event type and per call-control service is expected; more would be a leak.
    this.setMaxListeners(50);
  }

  /** True while the events socket is open. */
  get connected(): boolean { return this.state === 'connected'; }

  /** How REST requests travel now: over the events socket, over HTTP, or not at all (not connected). */
  get restTransport(): 'websocket' | 'http' | 'none' {
    if (this.state !== 'connected') return 'none';
    return this.restWs && this.restWs === this.ws ? 'websocket' : 'http';
  }

  /** Who reads the events socket's frames: ServerFrameParser ('switchboard'), ws@6's Receiver ('ws'), or no socket ('none'). */
  get eventsReader(): 'switchboard' | 'ws' | 'none' {
    if (this.state !== 'connected' || !this.ws) return 'none';
    return this.parsedWs === this.ws ? 'switchboard' : 'ws';
  }

  // -------------------------------------------------------------------------------------------
  // Supervisor

  /**
   * Connects and keeps reconnecting for ever. Resolves on the first successful connection;
   * rejects with PeerAuthError when Asterisk refuses the credentials (and stops), with the first
   * error when `failFast`, or with PeerDisconnectedError when stop() comes first.
   */
  start(opts: AriStartOptions = {}): Promise<void> {
    if (this.state === 'connected') return Promise.resolve();
    if (this.firstStart) return this.firstStart.promise;
    if (this.state === 'connecting' || this.state === 'backoff') return Promise.resolve();
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
    this.firstStart = { promise, resolve, reject, failFast: opts.failFast ?? false };
    this.failures = 0;
    void this.attempt();
    return promise;
  }

  /** Stops for good (until start() again): no retry, socket closed, REST calls refused. */
  async stop(): Promise<void> {
    const wasConnected = this.state === 'connected';
    this.generation++;
    this.disconnects++;
    this.state = 'stopped';
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.abort?.abort();
    this.abort = undefined;
    const ws = this.ws;
    this.dropClient(); // also fails the REST requests in flight
    if (this.firstStart) {
      this.firstStart.reject(new PeerDisconnectedError(ARI_PEER, 'start (stopped before connecting)'));
      this.firstStart = undefined;
    }
    if (ws) await closeSocket(ws);
    if (wasConnected) {
      this.log.info('ARI stopped');
      this.safeEmit('disconnected', { reason: 'stopped' });
    }
  }

  private async attempt(): Promise<void> {
    const gen = ++this.generation;
    this.state = 'connecting';
    this.retryTimer = undefined;
    const abort = new AbortController();
    this.abort = abort;
    try {
      const version = await this.checkCredentials(abort.signal);
      if (gen !== this.generation) return;
      const lib = await this.loadApi(abort.signal);
      if (gen !== this.generation) { detach(lib); return; }
      const ws = await this.openSocket(lib, gen, abort.signal);
      if (gen !== this.generation) { void closeSocket(ws); detach(lib); return; }
      this.onConnected(lib, ws, version);
      // Events flow at once; requests go over HTTP until (and unless) Asterisk answers the probe.
      void this.probeRest(ws).then((ok) => {
        if (!ok || ws !== this.ws || this.state !== 'connected') return;
        this.restWs = ws;
        this.log.info('ARI: requests now go over the events WebSocket (REST over WebSocket)');
      });
    } catch (err) {
      if (gen !== this.generation) return;
      this.onAttemptFailed(err);
    } finally {
      if (this.abort === abort) this.abort = undefined;
    }
  }

  private onConnected(lib: AriLibClient, ws: WsLike, version: string | undefined): void {
    this.lib = lib;
    this.ws = ws;
    this.restWs = undefined;
    this.state = 'connected';
    this.failures = 0;
    ws.off('message', this.holdEarlyMessage);
    const early = this.earlyMessages;
    this.earlyMessages = [];
    ws.on('message', (data: unknown) => this.onMessage(data));
    this.readFramesOurselves(ws);
    ws.on('pong', () => { this.awaitingPong = false; });
    ws.on('close', (code: number) => this.onSocketClosed(ws, code));
    this.startPing(ws);
    this.log.info({ asteriskVersion: version }, 'ARI connected');
    const first = this.firstStart;
    this.firstStart = undefined;
    first?.resolve();
    this.safeEmit('connected');
    for (const data of early) this.onMessage(data);
  }

  /**
   * Reads the server's frames from the socket with ServerFrameParser instead of ws@6's Receiver:
   * messages are emitted as ws's 'message' (text as a string, binary as a Buffer), control frames
   * go to ws's Receiver whole (it pongs a ping, emits 'pong', runs the close handshake), and
   * whatever the parser does not handle goes back to ws with ws's own socket listener, for good.
   * Only when ws negotiated no extension (no permessage-deflate: Asterisk's res_http_websocket
   * offers none) and its Receiver holds nothing (no partial frame or message); otherwise ws reads.
   */
  private readFramesOurselves(ws: WsLike): void {
    const inner = ws as unknown as {
      _socket?: EventEmitter;
      _receiver?: { write(chunk: Buffer): boolean; _state?: number; _bufferedBytes?: number; _fragmented?: number };
      _extensions?: Record<string, unknown>;
      _binaryType?: string;
    };
    const socket = inner._socket;
    const receiver = inner._receiver;
    const wsData = socket?.listeners('data') ?? [];
    const wsListener = wsData[0] as ((this: unknown, chunk: Buffer) => void) | undefined;
    if (!socket || !receiver || typeof receiver.write !== 'function' || wsData.length !== 1 || wsListener?.name !== 'socketOnData'
      || !inner._extensions || Object.keys(inner._extensions).length > 0 || inner._binaryType !== 'nodebuffer'
      || receiver._state !== 0 || receiver._bufferedBytes !== 0 || receiver._fragmented !== 0) {
      this.log.debug('ARI: the events socket is read by ws (an extension, or a frame in progress)');
      return;
    }
    const release = (): void => {
      socket.off('data', onData);
      socket.off('close', release);
      if (this.parsedWs === ws) this.parsedWs = undefined;
    };
    const parser: ServerFrameParser = new ServerFrameParser({
      text: (message) => { ws.emit('message', message); },
      binary: (message) => { ws.emit('message', message); },
      control: (frame) => {
        receiver.write(frame);
        // A close frame (or a bad one): ws has begun closing and no longer reads; neither do we.
        if (ws.readyState !== WS_OPEN) {
          parser.stop();
          release();
        }
      },
      handBack: (raw) => {
        release();
        socket.on('data', wsListener);
        this.log.debug('ARI: a frame the parser leaves to ws; ws reads the events socket from now on');
        for (const chunk of raw) wsListener.call(socket, chunk);
      },
    });
    const onData = (chunk: Buffer): void => { parser.push(chunk); };
    socket.off('data', wsListener);
    socket.on('data', onData);
    socket.on('close', release);
    this.parsedWs = ws;
    this.log.debug('ARI: the events socket\'s frames are read by switchboard (no extension negotiated)');
  }

  private earlyMessages: unknown[] = [];
  private readonly holdEarlyMessage = (data: unknown): void => {
    this.earlyMessages.push(data);
  };

  private onAttemptFailed(err: unknown): void {
    const error = err instanceof SwitchboardError ? err : new PeerRequestError(ARI_PEER, 'connect', this.scrub(errorMessage(err)));
    this.dropClient();
    const first = this.firstStart;
    if (first && (first.failFast || error instanceof PeerAuthError)) {
      this.firstStart = undefined;
      this.state = 'idle';
      this.log.error({ code: error.code, err: error.message }, 'ARI connect failed');
      first.reject(error);
      return;
    }
    this.scheduleRetry(error);
  }

  private onSocketClosed(ws: WsLike, code: number): void {
    if (ws !== this.ws || this.state !== 'connected') return;
    this.log.warn({ code }, 'ARI events socket closed');
    this.disconnects++;
    this.dropClient();
    this.state = 'backoff';
    this.safeEmit('disconnected', { reason: 'socket closed', code });
    this.scheduleRetry(undefined);
  }

  private scheduleRetry(error: SwitchboardError | undefined): void {
    const { reconnectInitialMs: initial, reconnectMaxMs: max } = this.settings;
    const delay = Math.min(max, initial * 2 ** Math.min(this.failures, 30));
    this.failures++;
    this.state = 'backoff';
    const fields = { attempt: this.failures, retryInMs: delay, ...(error ? { code: error.code, err: error.message } : {}) };
    if (error instanceof PeerAuthError) this.log.error(fields, 'ARI refused the credentials; retrying');
    else this.log.warn(fields, 'ARI not connected; retrying');
    const gen = this.generation;
    this.retryTimer = setTimeout(() => {
      if (gen !== this.generation || this.state !== 'backoff') return;
      void this.attempt();
    }, delay);
  }

  /** Forgets the current ari-client instance and socket (closing the socket without waiting). */
  private dropClient(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    const ws = this.ws;
    this.ws = undefined;
    this.restWs = undefined;
    this.failPendingRest(ws, 'the events socket closed before Asterisk answered');
    if (ws) {
      ws.removeAllListeners('message');
      ws.removeAllListeners('pong');
      ws.removeAllListeners('close');
      if (ws.readyState !== WS_CLOSED) void closeSocket(ws);
    }
    if (this.lib) detach(this.lib);
    this.lib = undefined;
  }

  private startPing(ws: WsLike): void {
    const every = this.settings.pingIntervalMs;
    if (!every) return;
    this.awaitingPong = false;
    this.pingTimer = setInterval(() => {
      if (ws !== this.ws) return;
      if (this.awaitingPong) {
        this.log.warn({ pingIntervalMs: every }, 'ARI events socket: no pong; dropping it');
        ws.terminate();
        return;
      }
      this.awaitingPong = true;
      try { ws.ping(undefined, undefined, noop); } catch { /* closing: 'close' will follow */ }
    }, every);
  }

  // -------------------------------------------------------------------------------------------
  // Connect steps

  /** GET /ari/asterisk/info with Basic auth: refuses bad credentials before ari-client sees them. */
  private async checkCredentials(signal: AbortSignal): Promise<string | undefined> {
    const what = 'credential check (GET /ari/asterisk/info)';
    const url = `${this.origin}/ari/asterisk/info`;
    const res = await this.get(url, what, signal);
    if (res.status === 401 || res.status === 403) {
      throw new PeerAuthError(ARI_PEER, `Asterisk at ${this.origin} refused ARI user "${this.settings.username}" (HTTP ${res.status}); see ari.conf`);
    }
    if (res.status === 404) {
      throw new AriRequestError(what, `${url} answered 404: is ARI enabled (http.conf enabled=yes, ari.conf enabled=yes)?`, { status: 404, notFound: false });
    }
    if (res.status !== 200) {
      throw new AriRequestError(what, this.scrub(peerMessage(res.body)) || `HTTP ${res.status}`, { status: res.status });
    }
    try {
      const info = JSON.parse(res.body.toString('utf8')) as { system?: { version?: unknown } };
      return typeof info.system?.version === 'string' ? info.system.version : undefined;
    } catch {
      throw new AriRequestError(what, `${url} did not answer JSON: is this Asterisk's HTTP server?`, { status: res.status });
    }
  }

  /** ari-client's connect(): loads the api-docs, under the SwaggerGuard and a timeout. */
  private loadApi(signal: AbortSignal): Promise<AriLibClient> {
    const ms = this.settings.requestTimeoutMs * 2;
    const { username, password } = this.settings;
    const p = this.guard.around(() => Promise.resolve(this.connectFn(this.origin, username, password)));
    // A connect() that settles after we gave up: drop what it built.
    return withTimeout(p, ms, () => {
      p.then((late) => detach(late), noop);
      return new PeerTimeoutError(ARI_PEER, 'loading the api-docs (connect)', ms);
    }, signal, () => {
      p.then((late) => detach(late), noop);
      return new PeerDisconnectedError(ARI_PEER, 'loading the api-docs (stopped)');
    }).catch((err: unknown) => { throw toAriError('loading the api-docs (connect)', err, (s) => this.scrub(s)); });
  }

  /**
   * ari-client's start(app) opens the events socket; we take it over at once (before any I/O can
   * happen) so that ari-client's own reconnect logic never runs, and wait for it to open.
   */
  private openSocket(lib: AriLibClient, gen: number, signal: AbortSignal): Promise<WsLike> {
    const ms = this.settings.requestTimeoutMs;
    return new Promise<WsLike>((resolve, reject) => {
      // subscribeAll: presence needs EndpointStateChange and DeviceStateChanged for every agent,
      // which Asterisk only sends to apps subscribed to all event sources.
      const started = lib.start(this.settings.app, true) as unknown as PromiseLike<void> | undefined;
      // Never settles once its listeners are gone; nothing to wait for.
      void Promise.resolve(started).catch(noop);
      const ws = (lib as unknown as { _ws?: WsLike })._ws;
      if (!ws || typeof ws.on !== 'function') {
        reject(new PeerRequestError(ARI_PEER, 'events WebSocket', 'ari-client did not expose its WebSocket (client._ws); only ari-client 2.2.0 is supported'));
        return;
      }
      ws.removeAllListeners();
      ws.on('error', noop); // ws throws on 'error' without a listener; errors are handled via 'close'
      // ws can emit frames that arrived with the upgrade response synchronously right after 'open',
      // before our await resumes: hold them until onConnected so that no StasisStart is lost.
      this.earlyMessages = [];
      ws.on('message', this.holdEarlyMessage);
      if (gen === this.generation) this.ws = ws; // so that stop() closes it while it is connecting
      const timer = setTimeout(() => {
        done();
        ws.terminate();
        reject(new PeerTimeoutError(ARI_PEER, 'events WebSocket connect', ms));
      }, ms);
      let lastError: Error | undefined;
      const onError = (err: Error): void => { lastError = err; };
      const onOpen = (): void => { done(); resolve(ws); };
      const onClose = (): void => {
        done();
        if (this.ws === ws) this.ws = undefined;
        const msg = this.scrub(lastError?.message ?? 'closed before it opened');
        const status = /Unexpected server response: (\d+)/.exec(msg)?.[1];
        if (status === '401' || status === '403') {
          reject(new PeerAuthError(ARI_PEER, `Asterisk refused the events WebSocket for ARI user "${this.settings.username}" (HTTP ${status})`));
        } else {
          reject(new PeerRequestError(ARI_PEER, 'events WebSocket connect', msg, status ? { status: Number(status) } : {}));
        }
      };
      const onAbort = (): void => {
        done();
        ws.terminate();
        reject(new PeerDisconnectedError(ARI_PEER, 'events WebSocket connect (stopped)'));
      };
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        ws.off('open', onOpen);
        ws.off('error', onError);
        ws.off('close', onClose);
      };
      if (signal.aborted) { onAbort(); return; }
      signal.addEventListener('abort', onAbort, { once: true });
      ws.on('open', onOpen);
      ws.on('error', onError);
      ws.on('close', onClose);
    });
  }

  private onMessage(data: unknown): void {
    const text = Buffer.isBuffer(data) ? data.toString('utf8') : String(data);
    let evt: unknown;
    try {
      evt = JSON.parse(text);
    } catch {
      this.log.warn({ bytes: text.length }, 'ARI: event is not JSON; ignored');
      return;
    }
    if (!evt || typeof evt !== 'object' || typeof (evt as { type?: unknown }).type !== 'string') {
      this.log.warn('ARI: event without a type; ignored');
      return;
    }
    const event = evt as AriEvent;
    if (event.type === 'RESTResponse') { this.onRestResponse(event); return; }
    if (event.type === 'ApplicationReplaced') {
      this.log.error('ARI: another client connected with the same app name; Asterisk now sends its events there');
    }
    this.safeEmit('event', event);
    if (!RESERVED_EVENT_NAMES.has(event.type)) this.safeEmit(event.type, event);
  }

  private safeEmit(name: string, ...args: unknown[]): void {
    try {
      this.emit(name, ...args);
    } catch (err) {
      this.log.error({ event: name, err: this.scrub(errorMessage(err)) }, 'ARI: an event listener threw');
    }
  }

  // -------------------------------------------------------------------------------------------
  // REST over the events WebSocket

  /** True when Asterisk answers a RESTRequest on this socket (see the header comment). */
  private async probeRest(ws: WsLike): Promise<boolean> {
    if (this.settings.restOverWebSocket === 'off') return false;
    const ms = this.settings.restProbeTimeoutMs;
    try {
      const a = await this.sendRest(ws, { method: 'GET', path: ['asterisk', 'ping'] }, 'REST over WebSocket probe (GET asterisk/ping)', ms, 'answer') as RestAnswer;
      if (a.status === 200) return true;
      this.log.info({ status: a.status, reason: a.reason }, 'ARI: Asterisk refused a REST request on the events WebSocket; requests stay on HTTP');
    } catch (err) {
      if (ws !== this.ws) return false; // the socket went away meanwhile: a new one probes again
      if (err instanceof PeerTimeoutError) {
        this.log.info({ probeTimeoutMs: ms }, 'ARI: no answer to a REST request on the events WebSocket (Asterisk before 20.14/21.9/22.4); requests stay on HTTP');
      } else {
        this.log.warn({ err: this.scrub(errorMessage(err)) }, 'ARI: REST over WebSocket probe failed; requests stay on HTTP');
      }
    }
    return false;
  }

  /**
   * Sends one RESTRequest frame; the matching RESTResponse settles the promise as `mode` says
   * (one promise per request: no wrapper awaiting it to look at the status).
   */
  private sendRest(ws: WsLike, spec: RestSpec, what: string, timeoutMs: number, mode: RestMode): Promise<unknown> {
    const id = `sb-${++this.restSeq}`;
    const text = restRequestText(id, spec);
    let resolve!: (value: unknown) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<unknown>((res, rej) => { resolve = res; reject = rej; });
    const deadline = this.restDeadline(timeoutMs);
    deadline.ids.push(id);
    deadline.open++;
    this.pendingRest.set(id, { what, ws, deadline, mode, resolve, reject });
    try {
      this.writeFrame(ws, text, id);
    } catch (err) {
      this.writeFailed(id, err);
    }
    return promise;
  }

  /** A request whose frame could not be written fails with PeerDisconnectedError. */
  private writeFailed(id: string, err: unknown): void {
    const p = this.takePending(id);
    if (p) p.reject(new PeerDisconnectedError(ARI_PEER, `${p.what} (events socket: ${this.scrub(errorMessage(err))})`));
  }

  /** The shared timeout (RestTimeout) for a request sent now with this timeout. */
  private restDeadline(ms: number): RestTimeout {
    const current = this.restTimeout;
    if (current && current.ms === ms) return current;
    const d: RestTimeout = { ms, ids: [], open: 0, timer: undefined };
    d.timer = setTimeout(() => {
      d.timer = undefined;
      for (const id of d.ids) {
        const p = this.pendingRest.get(id);
        if (p?.deadline !== d) continue;
        this.pendingRest.delete(id);
        p.reject(new PeerTimeoutError(ARI_PEER, p.what, ms));
      }
    }, ms);
    this.restTimeout = d;
    // Requests of the next turn get a timer of their own.
    process.nextTick(() => { if (this.restTimeout === d) this.restTimeout = undefined; });
    return d;
  }

  /** Removes a request from those in flight (undefined if it is not); its timer goes with the last one. */
  private takePending(id: string): PendingRest | undefined {
    const p = this.pendingRest.get(id);
    if (!p) return undefined;
    this.pendingRest.delete(id);
    const d = p.deadline;
    if (--d.open === 0 && d.timer) {
      clearTimeout(d.timer);
      d.timer = undefined;
    }
    return p;
  }

  /**
   * Sends a text frame on the events socket. The frames of one tick (a burst of calls: one first
   * action per StasisStart of a socket read) are encoded here (ClientFrameEncoder) and leave in one
   * write at the end of the tick; whole frames only, so they never interleave with the frames ws
   * writes itself (pings, close). Without ws@6's `_socket`, ws.send.
   */
  private writeFrame(ws: WsLike, text: string, id: string): void {
    const socket = (ws as unknown as { _socket?: RawSocket })._socket;
    if (!socket || typeof socket.write !== 'function' || ws.readyState !== WS_OPEN) {
      ws.send(text, (err) => { if (err) this.writeFailed(id, err); });
      return;
    }
    const out = this.outgoing;
    if (out && out.socket === socket) {
      out.texts.push(text);
      out.ids.push(id);
      return;
    }
    this.outgoing = { ws, socket, texts: [text], ids: [id] };
    process.nextTick(this.flushFrames);
  }

  /** Encodes the tick's frames (one buffer) and writes them. */
  private readonly flushFrames = (): void => {
    const out = this.outgoing;
    this.outgoing = undefined;
    if (!out) return;
    const fail = (err: unknown): void => { for (const id of out.ids) this.writeFailed(id, err); };
    if (out.ws.readyState !== WS_OPEN || out.socket.destroyed || !out.socket.writable) {
      fail(new Error('the events socket is closed'));
      return;
    }
    let frames: Buffer;
    try {
      frames = this.frameEncoder.encodeTexts(out.texts);
    } catch (err) {
      fail(err);
      return;
    }
    out.socket.write(frames, (err?: Error | null) => { if (err) fail(err); });
  };

  private onRestResponse(evt: AriEvent): void {
    const r = evt as AriEvent & { request_id?: unknown; status_code?: unknown; reason_phrase?: unknown; message_body?: unknown };
    const id = typeof r.request_id === 'string' ? r.request_id : '';
    const p = this.takePending(id);
    if (!p) {
      this.log.warn({ requestId: id, status: r.status_code, reason: r.reason_phrase }, 'ARI: a RESTResponse for no request in flight; ignored');
      return;
    }
    let body: unknown;
    if (typeof r.message_body === 'string' && r.message_body !== '') {
      try { body = JSON.parse(r.message_body); } catch { body = r.message_body; }
    }
    const a: RestAnswer = { status: typeof r.status_code === 'number' ? r.status_code : 0, reason: String(r.reason_phrase ?? ''), body };
    if (p.mode === 'answer') p.resolve(a);
    else if (a.status >= 200 && a.status < 300) p.resolve(p.mode === 'void' ? undefined : a.body);
    else p.reject(this.restError(p.what, a));
  }

  /** The error for a RESTResponse that is not 2xx: PeerAuthError for 401/403, else AriRequestError with Asterisk's message. */
  private restError(what: string, a: RestAnswer): Error {
    const b = a.body as { message?: unknown; error?: unknown } | string | undefined;
    const message = this.scrub(typeof b === 'string' ? b : String(b?.message ?? b?.error ?? a.reason ?? ''));
    if (a.status === 401 || a.status === 403) return new PeerAuthError(ARI_PEER, `${what}: Asterisk answered ${a.status} (${message})`);
    return new AriRequestError(what, message || `${a.status} ${a.reason}`, { status: a.status });
  }

  /** Rejects the requests in flight on `ws` (all of them when `ws` is undefined). */
  private failPendingRest(ws: WsLike | undefined, why: string): void {
    for (const [id, p] of this.pendingRest) {
      if (ws && p.ws !== ws) continue;
      this.takePending(id);
      p.reject(new PeerDisconnectedError(ARI_PEER, `${p.what} (${why})`));
    }
  }

  /**
   * One ARI request: over the events socket when Asterisk takes REST there, else through
   * ari-client (`viaLib`). Same timeout, same errors either way. Resolves with the body
   * ('body') or with nothing ('void'); never throws (errors reject the promise).
   */
  private request<T>(what: string, spec: RestSpec, viaLib: (lib: AriLibClient) => PromiseLike<T>, mode: 'body' | 'void' = 'body'): Promise<unknown> {
    const ws = this.restWs;
    if (!ws || ws !== this.ws || this.state !== 'connected' || !plainSegments(spec.path)) {
      const viaHttp = this.call(what, viaLib);
      return mode === 'void' ? viaHttp.then(noop) : viaHttp;
    }
    try {
      return this.sendRest(ws, spec, what, this.settings.requestTimeoutMs, mode);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Helpers

  /** Removes the password (and Basic/api_key forms of it) from a text meant for logs or errors. */
  private scrub(text: string): string {
    let out = text.replace(/(api_key=)[^&\s"']*/gi, '$1[redacted]').replace(/(\/\/[^/\s:@]*:)[^@/\s]*@/g, '$1[redacted]@');
    const { username, password } = this.settings ?? {};
    if (password && password.length >= 3) {
      const forms = [password, encodeURIComponent(password), Buffer.from(`${username}:${password}`).toString('base64')];
      for (const f of forms) out = out.split(f).join('[redacted]');
    }
    return out;
  }

  private async get(url: string, what: string, signal?: AbortSignal) {
    const ms = this.settings.requestTimeoutMs;
    const disconnects = this.disconnects;
    try {
      return await httpGet(url, { username: this.settings.username, password: this.settings.password, timeoutMs: ms, ...(signal ? { signal } : {}) });
    } catch (err) {
      if (err instanceof HttpTransportError) {
        const f = err.failure;
        if (f.kind === 'timeout') throw this.timeoutError(what, ms, disconnects);
        if (f.kind === 'aborted') throw new PeerDisconnectedError(ARI_PEER, `${what} (stopped)`);
        throw new PeerRequestError(ARI_PEER, what, `cannot reach Asterisk at ${this.origin} (${f.code})`, { unreachable: true, errno: f.code });
      }
      throw err;
    }
  }

  /** One REST call through ari-client: refused when not connected, bounded by the timeout, errors mapped. */
  private async call<T>(what: string, fn: (lib: AriLibClient) => PromiseLike<T>): Promise<T> {
    const lib = this.lib;
    if (!lib || this.state !== 'connected') throw new PeerDisconnectedError(ARI_PEER, what);
    const ms = this.settings.requestTimeoutMs;
    const disconnects = this.disconnects;
    try {
      return await withTimeout(Promise.resolve().then(() => fn(lib)), ms, () => this.timeoutError(what, ms, disconnects));
    } catch (err) {
      throw toAriError(what, err, (s) => this.scrub(s));
    }
  }

  /**
   * A request that got no answer in time: PeerTimeoutError, or PeerDisconnectedError when the
   * events socket was lost (or stop() came) while it was in flight, i.e. since `disconnects` was
   * read: the answer went with the connection, the request's fate is unknown.
   */
  private timeoutError(what: string, ms: number, disconnects: number): SwitchboardError {
    if (this.disconnects !== disconnects) {
      return new PeerDisconnectedError(ARI_PEER, `${what} (the events socket was lost while it was in flight; no answer within ${ms} ms)`);
    }
    return new PeerTimeoutError(ARI_PEER, what, ms);
  }

  // -------------------------------------------------------------------------------------------
  // AriPort

  // answer and ring are a call's first action (a burst sends one per StasisStart): the request's
  // own promise, not an async wrapper around it.
  answer(channelId: string): Promise<void> {
    return this.request(`answer channel ${channelId}`, { method: 'POST', path: ['channels', channelId, 'answer'] },
      (c) => c.channels.answer({ channelId }), 'void') as Promise<void>;
  }

  ring(channelId: string): Promise<void> {
    return this.request(`ring channel ${channelId}`, { method: 'POST', path: ['channels', channelId, 'ring'] },
      (c) => c.channels.ring({ channelId }), 'void') as Promise<void>;
  }

  async ringStop(channelId: string): Promise<void> {
    await this.request(`stop ringing channel ${channelId}`, { method: 'DELETE', path: ['channels', channelId, 'ring'] },
      (c) => c.channels.ringStop({ channelId }));
  }

  async hangup(channelId: string, reason?: string): Promise<void> {
    await this.request(`hang up channel ${channelId}`, { method: 'DELETE', path: ['channels', channelId], query: { reason } },
      (c) => c.channels.hangup({ channelId, ...(reason ? { reason } : {}) }));
  }

  async continueInDialplan(channelId: string, opts: { context?: string; extension?: string; priority?: number; label?: string } = {}): Promise<void> {
    const q = definedOnly({ context: opts.context, extension: opts.extension, priority: opts.priority, label: opts.label });
    await this.request(`continue channel ${channelId} in the dialplan`, { method: 'POST', path: ['channels', channelId, 'continue'], query: q },
      (c) => c.channels.continueInDialplan({ channelId, ...q }));
  }

  async play(channelId: string, media: string[], playbackId?: string): Promise<{ id: string }> {
    const q = { media: media.join(','), ...(playbackId ? { playbackId } : {}) };
    const pb = await this.request(`play ${media.join(',')} on channel ${channelId}`, { method: 'POST', path: ['channels', channelId, 'play'], query: q },
      (c) => c.channels.play({ channelId, ...q }));
    return { id: String((pb as { id?: unknown } | undefined)?.id ?? playbackId ?? '') };
  }

  async record(channelId: string, opts: RecordOptions): Promise<{ name: string }> {
    const q = {
      name: opts.name, format: opts.format, maxDurationSeconds: opts.maxDurationSeconds,
      maxSilenceSeconds: opts.maxSilenceSeconds, beep: opts.beep, terminateOn: opts.terminateOn,
      ...(opts.ifExists ? { ifExists: opts.ifExists } : {}),
    };
    const rec = await this.request(`record channel ${channelId} as "${opts.name}"`, { method: 'POST', path: ['channels', channelId, 'record'], query: q },
      (c) => c.channels.record({ channelId, ...q }));
    return { name: String((rec as { name?: unknown } | undefined)?.name ?? opts.name) };
  }

  async originate(opts: OriginateOptions): Promise<{ id: string }> {
    const q = {
      endpoint: opts.endpoint, app: opts.app, timeout: opts.timeoutSeconds,
      ...definedOnly({ appArgs: opts.appArgs, callerId: opts.callerId, channelId: opts.channelId }),
    };
    const variables = opts.variables && Object.keys(opts.variables).length ? opts.variables : undefined;
    const ch = await this.request(`originate to ${opts.endpoint}`, { method: 'POST', path: ['channels'], query: q, ...(variables ? { body: { variables } } : {}) },
      (c) => c.channels.originate({ ...q, ...(variables ? { variables } : {}) }));
    return { id: String((ch as { id?: unknown } | undefined)?.id ?? opts.channelId ?? '') };
  }

  async createBridge(opts: { type?: string; bridgeId?: string } = {}): Promise<{ id: string }> {
    const q = definedOnly({ type: opts.type, bridgeId: opts.bridgeId });
    const b = await this.request('create bridge', { method: 'POST', path: ['bridges'], query: q }, (c) => c.bridges.create(q));
    return { id: String((b as { id?: unknown } | undefined)?.id ?? opts.bridgeId ?? '') };
  }

  async addChannel(bridgeId: string, channelIds: string[]): Promise<void> {
    const channel = channelIds.join(',');
    await this.request(`add ${channel} to bridge ${bridgeId}`, { method: 'POST', path: ['bridges', bridgeId, 'addChannel'], query: { channel } },
      (c) => c.bridges.addChannel({ bridgeId, channel }));
  }

  async destroyBridge(bridgeId: string): Promise<void> {
    await this.request(`destroy bridge ${bridgeId}`, { method: 'DELETE', path: ['bridges', bridgeId] }, (c) => c.bridges.destroy({ bridgeId }));
  }

  async getChannel(channelId: string): Promise<ChannelJson | undefined> {
    try {
      return plain<ChannelJson>(await this.request(`get channel ${channelId}`, { method: 'GET', path: ['channels', channelId] },
        (c) => c.channels.get({ channelId })));
    } catch (err) {
      if (err instanceof AriRequestError && err.notFound) return undefined;
      throw err;
    }
  }

  async listChannels(): Promise<ChannelJson[]> {
    return plain<ChannelJson[]>(await this.request('list channels', { method: 'GET', path: ['channels'] }, (c) => c.channels.list()));
  }

  async listBridges(): Promise<BridgeJson[]> {
    return plain<BridgeJson[]>(await this.request('list bridges', { method: 'GET', path: ['bridges'] }, (c) => c.bridges.list()));
  }

  async listEndpoints(): Promise<EndpointJson[]> {
    return plain<EndpointJson[]>(await this.request('list endpoints', { method: 'GET', path: ['endpoints'] }, (c) => c.endpoints.list()));
  }

  /** The recording's bytes, fetched directly (binary body, timeout) rather than through ari-client. */
  async getStoredRecordingFile(name: string): Promise<Buffer> {
    const what = `download stored recording "${name}"`;
    const res = await this.get(`${this.origin}/ari/recordings/stored/${encodeURIComponent(name)}/file`, what);
    if (res.status === 200) return res.body;
    const message = this.scrub(peerMessage(res.body)) || `HTTP ${res.status}`;
    if (res.status === 401) throw new PeerAuthError(ARI_PEER, `${what}: Asterisk answered 401`);
    throw new AriRequestError(what, message, { status: res.status });
  }

  async deleteStoredRecording(name: string): Promise<void> {
    await this.request(`delete stored recording "${name}"`, { method: 'DELETE', path: ['recordings', 'stored', name] },
      (c) => c.recordings.deleteStored({ recordingName: name }));
  }

  async getLiveRecording(name: string): Promise<LiveRecordingJson | undefined> {
    try {
      return plain<LiveRecordingJson>(await this.request(`get live recording "${name}"`, { method: 'GET', path: ['recordings', 'live', name] },
        (c) => c.recordings.getLive({ recordingName: name })));
    } catch (err) {
      if (err instanceof AriRequestError && err.notFound) return undefined;
      throw err;
    }
  }

  async getPlayback(playbackId: string): Promise<PlaybackJson | undefined> {
    try {
      return plain<PlaybackJson>(await this.request(`get playback "${playbackId}"`, { method: 'GET', path: ['playbacks', playbackId] },
        (c) => c.playbacks.get({ playbackId })));
    } catch (err) {
      if (err instanceof AriRequestError && err.notFound) return undefined;
      throw err;
    }
  }

  async getStoredRecording(name: string): Promise<StoredRecordingJson | undefined> {
    try {
      const r = plain<StoredRecordingJson>(await this.request(`get stored recording "${name}"`, { method: 'GET', path: ['recordings', 'stored', name] },
        (c) => c.recordings.getStored({ recordingName: name })));
      return { name: r.name, format: r.format };
    } catch (err) {
      if (err instanceof AriRequestError && err.notFound) return undefined;
      throw err;
    }
  }
}

// ---------------------------------------------------------------------------------------------

/** Rejects with `onTimeout()` after `ms`; the late settlement of `p` is absorbed. */
export function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error, signal?: AbortSignal, onAbort?: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const aborted = (): void => { clearTimeout(timer); reject(onAbort ? onAbort() : new Error('aborted')); };
    const timer = setTimeout(() => { signal?.removeEventListener('abort', aborted); reject(onTimeout()); }, ms);
    if (signal?.aborted) { aborted(); return; }
    signal?.addEventListener('abort', aborted, { once: true });
    p.then(
      (v) => { clearTimeout(timer); signal?.removeEventListener('abort', aborted); resolve(v); },
      (e: unknown) => { clearTimeout(timer); signal?.removeEventListener('abort', aborted); reject(e); },
    );
  });
}

/** True when every path segment can go over the socket as it is (PLAIN_SEGMENT). */
function plainSegments(path: string[]): boolean {
  for (const seg of path) if (!PLAIN_SEGMENT.test(seg)) return false;
  return true;
}

/**
 * The RESTRequest frame's text: `{"type":"RESTRequest","transaction_id":…,"request_id":…,"method":…,
 * "uri":…}`, then `query_strings` when there are parameters and `content_type` + `message_body`
 * when there is a body: the same text JSON.stringify gives for that object, without building it.
 */
export function restRequestText(id: string, spec: RestSpec): string {
  const idJson = JSON.stringify(id);
  let text = `{"type":"RESTRequest","transaction_id":${idJson},"request_id":${idJson},"method":${JSON.stringify(spec.method)},"uri":${JSON.stringify(spec.path.join('/'))}`;
  const qs = queryStrings(spec.query);
  if (qs.length) text += `,"query_strings":${JSON.stringify(qs)}`;
  if (spec.body !== undefined) {
    const body = JSON.stringify(spec.body) as string | undefined;
    text += `,"content_type":"application/json"${body === undefined ? '' : `,"message_body":${JSON.stringify(body)}`}`;
  }
  return `${text}}`;
}

/** Query parameters as Asterisk's RESTRequest wants them: [{ name, value }], values as text. */
function queryStrings(q: RestSpec['query']): { name: string; value: string }[] {
  const out: { name: string; value: string }[] = [];
  if (q) for (const [name, v] of Object.entries(q)) if (v !== undefined) out.push({ name, value: String(v) });
  return out;
}

/** ari-client resource instances (with `_client` and bound operations) → the plain JSON Asterisk sent. */
function plain<T>(value: unknown): T {
  return JSON.parse(JSON.stringify(value ?? null, (key, v: unknown) => (key === '_client' ? undefined : v))) as T;
}

function definedOnly<T extends Record<string, unknown>>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as { [K in keyof T]?: Exclude<T[K], undefined> };
}

/** Closes a socket politely (1 s grace), then for good; resolves once it is closed. */
function closeSocket(ws: WsLike): Promise<void> {
  return new Promise<void>((resolve) => {
    if (ws.readyState === WS_CLOSED) { resolve(); return; }
    ws.on('error', noop);
    const timer = setTimeout(() => { ws.terminate(); }, 1000);
    ws.once('close', () => { clearTimeout(timer); resolve(); });
    try {
      if (ws.readyState === WS_CONNECTING || ws.readyState !== WS_OPEN) ws.terminate();
      else ws.close(1000, 'switchboard stopping');
    } catch {
      ws.terminate();
    }
  });
}

/** Removes every listener from an ari-client instance (its typings narrow EventEmitter's API). */
function detach(lib: AriLibClient): void {
  (lib as unknown as EventEmitter).removeAllListeners();
}
