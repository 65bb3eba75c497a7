/**
 * In-house AMI client: one TCP connection to Asterisk's manager interface, logged in, kept alive
 * for ever (capped exponential backoff with jitter) until stop().
 *
 * - Every action gets a unique ActionID (random per-client prefix + counter) and many can be in
 *   flight; replies are matched by ActionID, never by order.
 * - List actions (`EventList: start` … events with our ActionID … `EventList: Complete`) are
 *   collected into one result; everything else with an `Event` header is emitted as 'event'.
 * - Every action times out (PeerTimeoutError); a disconnect rejects everything pending
 *   (PeerDisconnectedError); `Response: Error` rejects with PeerRequestError.
 * - CR/LF in an action name, header name or value is refused before anything is written.
 * - A stuck peer (socket open, Asterisk silent: hung, or a NAT box dropped the connection) is
 *   detected with a liveness `Ping` (own short timeout, `pingTimeoutMs`) sent after any action
 *   times out, and every `keepaliveIntervalMs` while no action is in flight. No reply: the socket
 *   is destroyed, pending actions fail with AmiPeerUnresponsiveError, and the usual reconnect
 *   (backoff, login, 'connected') follows. A peer that answers the Ping, however late its other
 *   replies, is kept.
 * - Asterisk runs one manager session's actions one after another, so a Ping sent while other
 *   actions are in flight queues behind them (a 60 s `Reload` of res_pjsip, say). Its deadline is
 *   therefore pingTimeoutMs after the latest deadline of the actions still pending ahead of it,
 *   and every frame received meanwhile (a reply, even a late one, or an event) proves the peer
 *   alive: the deadline moves to pingTimeoutMs after the last frame. A silent peer is still
 *   declared dead, just no sooner than the actions ahead of the Ping could have finished.
 *
 * Events: 'connected' (), 'disconnected' (reason: string), 'authFailed' (PeerAuthError),
 * 'event' (AmiMessage).
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { PeerAuthError, PeerDisconnectedError, PeerRequestError, PeerTimeoutError, errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import { AmiPeerUnresponsiveError } from './errors.js';
import { AmiParser, BANNER_PREFIX, encodeAction, get, headerIs, type AmiMessage, type ParsedFrame } from './protocol.js';

export { get, headerIs, type AmiMessage } from './protocol.js';
export { AMI_PEER_UNRESPONSIVE, AmiPeerUnresponsiveError } from './errors.js';

export interface AmiSettings {
  host: string;
  port: number;
  username: string;
  secret: string;
  /** TCP connect + banner + login must finish within this (default 5000). */
  connectTimeoutMs?: number;
  /** Default per-action timeout (default 10000). */
  actionTimeoutMs?: number;
  /** First reconnect delay (default 250); doubles per failed attempt. */
  reconnectInitialMs?: number;
  /** Reconnect delay cap (default 10000); also the delay after a refused login. */
  reconnectMaxMs?: number;
  /**
   * While logged in and no action is in flight, send a liveness `Ping` this often (default 30000;
   * 0 turns the idle keepalive off; a timed-out action still triggers a Ping).
   */
  keepaliveIntervalMs?: number;
  /**
   * A liveness `Ping` unanswered for this long declares the peer dead and reconnects (default
   * 5000). Counted from the latest deadline of the actions in flight ahead of the Ping (Asterisk
   * answers them first) and from the last frame received meanwhile.
   */
  pingTimeoutMs?: number;
}

export interface AmiActionOptions {
  timeoutMs?: number;
}

export interface AmiListResult {
  response: AmiMessage;
  events: AmiMessage[];
  /** The `…Complete` event that closed the list (absent if the action answered without a list). */
  complete?: AmiMessage;
}

const PEER = 'AMI';
const EXPIRED_MEMORY = 1024;
const LOGOFF_TIMEOUT_MS = 2000;

interface Connection {
  socket: net.Socket;
  loggedIn: boolean;
  authFailed: boolean;
  closed: boolean;
  reason?: string;
  onClosed: (() => void)[];
  /** Set once destroy() was called: actions are refused at once instead of written to a dead socket. */
  aborted: boolean;
  /** A liveness Ping is in flight. */
  probing: boolean;
  /** Set when a liveness Ping went unanswered: pending actions fail with AmiPeerUnresponsiveError. */
  unresponsive: boolean;
  keepaliveTimer?: NodeJS.Timeout;
  /** Date.now() of the last frame (banner, reply or event) received on this connection. */
  lastFrameAt: number;
}

interface Pending {
  name: string;
  list: boolean;
  resolve: (value: AmiMessage | AmiListResult) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  response?: AmiMessage;
  events: AmiMessage[];
  /** Write order: Asterisk answers a session's actions in this order. */
  seq: number;
  sentAt: number;
  /** When this action times out (Date.now() based). */
  deadline: number;
  /** A liveness Ping (its deadline moves; see probeWaitMs). */
  probe: boolean;
}

export class AmiClient extends EventEmitter {
  private readonly log: Logger;
  private readonly connectTimeoutMs: number;
  private readonly actionTimeoutMs: number;
  private readonly reconnectInitialMs: number;
  private readonly reconnectMaxMs: number;
  private readonly keepaliveIntervalMs: number;
  private readonly pingTimeoutMs: number;
  private readonly idPrefix = randomBytes(6).toString('hex');
  private idCounter = 0;
  private sendSeq = 0;
  private readonly pending = new Map<string, Pending>();
  /** ActionIDs that timed out: late replies and list events for them are dropped, not emitted. */
  private readonly expired = new Set<string>();
  private running = false;
  private conn: Connection | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly settings: AmiSettings,
    logger: Logger,
  ) {
    super();
    this.log = logger.child({ component: 'ami' });
    this.connectTimeoutMs = settings.connectTimeoutMs ?? 5000;
    this.actionTimeoutMs = settings.actionTimeoutMs ?? 10000;
    this.reconnectInitialMs = Math.max(1, settings.reconnectInitialMs ?? 250);
    this.reconnectMaxMs = Math.max(this.reconnectInitialMs, settings.reconnectMaxMs ?? 10000);
    this.keepaliveIntervalMs = Math.max(0, settings.keepaliveIntervalMs ?? 30000);
    this.pingTimeoutMs = Math.max(1, settings.pingTimeoutMs ?? 5000);
  }

  /** True while logged in (false as soon as a dead connection is being torn down). */
  get connected(): boolean {
    return this.conn?.loggedIn === true && !this.conn.aborted;
  }

  /** Connects, logs in, and keeps reconnecting until stop(). Calling it twice is harmless. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopping = undefined;
    this.attempt = 0;
    // A connection still closing from an earlier stop() reconnects from its close handler.
    if (!this.conn) this.connect();
  }

  /** Logs off if logged in, closes the connection, stops reconnecting; rejects pending actions. */
  stop(): Promise<void> {
    this.running = false;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  /** Resolves once logged in; rejects with PeerTimeoutError after `timeoutMs`. */
  waitConnected(timeoutMs: number): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onConnected = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.off('connected', onConnected);
        reject(new PeerTimeoutError(PEER, 'waiting for login', timeoutMs));
      }, timeoutMs);
      this.once('connected', onConnected);
    });
  }

  /** Sends one action and resolves with its response. An array value is sent as a repeated header. */
  action(name: string, fields: Record<string, string | string[]> = {}, opts: AmiActionOptions = {}): Promise<AmiMessage> {
    return this.request(name, fields, false, opts.timeoutMs) as Promise<AmiMessage>;
  }

  /** Sends a list action and resolves once its `…Complete` event arrived. */
  listAction(name: string, fields: Record<string, string> = {}, opts: AmiActionOptions = {}): Promise<AmiListResult> {
    return this.request(name, fields, true, opts.timeoutMs) as Promise<AmiListResult>;
  }

  // ---------------------------------------------------------------------------------------------

  private nextId(): string {
    this.idCounter += 1;
    return `${this.idPrefix}-${this.idCounter}`;
  }

  private request(name: string, fields: Record<string, string | string[]>, list: boolean, timeoutMs?: number): Promise<AmiMessage | AmiListResult> {
    const id = this.nextId();
    let payload: string;
    try {
      payload = encodeAction(name, id, fields);
    } catch (err) {
      return Promise.reject(err);
    }
    const conn = this.conn;
    if (conn?.unresponsive) return Promise.reject(this.unresponsiveError(`action ${name}`));
    if (!conn || !conn.loggedIn || conn.aborted) return Promise.reject(new PeerDisconnectedError(PEER, `action ${name}`));
    return this.send(conn, name, id, payload, list, timeoutMs ?? this.actionTimeoutMs);
  }

  /**
   * Writes one action and tracks it until answered, timed out or disconnected. A timeout of a
   * regular action on a logged-in connection starts a liveness probe; `probe` marks the probe's
   * own Ping: when its timer fires it waits on as long as probeWaitMs() says (actions still ahead
   * of it in Asterisk's queue, frames received since), then fails (handled by probe()).
   */
  private send(conn: Connection, name: string, id: string, payload: string, list: boolean, timeoutMs: number, probe = false): Promise<AmiMessage | AmiListResult> {
    return new Promise((resolve, reject) => {
      const sentAt = Date.now();
      const onTimeout = (): void => {
        const p = this.pending.get(id);
        if (!p) return;
        if (probe) {
          const waitMs = this.probeWaitMs(conn, p);
          if (waitMs > 0) {
            p.timer = setTimeout(onTimeout, waitMs);
            return;
          }
        }
        this.pending.delete(id);
        this.rememberExpired(id);
        const waitedMs = Date.now() - sentAt;
        if (!probe) this.log.warn({ action: name, actionId: id, timeoutMs }, 'AMI action timed out');
        reject(new PeerTimeoutError(PEER, `action ${name}`, probe ? waitedMs : timeoutMs));
        if (!probe && conn.loggedIn) this.probe(conn, `action ${name} timed out after ${timeoutMs} ms`);
      };
      const timer = setTimeout(onTimeout, timeoutMs);
      this.sendSeq += 1;
      this.pending.set(id, { name, list, resolve, reject, timer, events: [], seq: this.sendSeq, sentAt, deadline: sentAt + timeoutMs, probe });
      this.log.debug({ action: name, actionId: id }, 'AMI action sent');
      conn.socket.write(payload);
    });
  }

  /**
   * How much longer a liveness Ping may stay unanswered (0 or less: the peer is dead). Asterisk
   * answers a session's actions in order, so the Ping gets pingTimeoutMs after the latest deadline
   * of the actions still pending ahead of it (each of those times out on its own meanwhile), and
   * pingTimeoutMs after the last frame received since it was sent (anything the peer says proves
   * it alive and working through the queue).
   */
  private probeWaitMs(conn: Connection, ping: Pending): number {
    let until = ping.sentAt + this.pingTimeoutMs;
    if (conn.lastFrameAt > ping.sentAt) until = Math.max(until, conn.lastFrameAt + this.pingTimeoutMs);
    for (const p of this.pending.values()) {
      if (p !== ping && !p.probe && p.seq < ping.seq) until = Math.max(until, p.deadline + this.pingTimeoutMs);
    }
    return until - Date.now();
  }

  /**
   * Sends a liveness Ping unless one is already out. Any answer (even `Response: Error`) proves the
   * peer alive; none within pingTimeoutMs declares it dead.
   */
  private probe(conn: Connection, trigger: string): void {
    if (!this.running || this.conn !== conn || conn.closed || conn.aborted || !conn.loggedIn || conn.probing) return;
    conn.probing = true;
    const id = this.nextId();
    // Actions still in flight are ahead of the Ping in Asterisk's queue: wait for their deadlines.
    let ahead = 0;
    let latest = Date.now();
    for (const p of this.pending.values()) {
      if (p.probe) continue;
      ahead += 1;
      latest = Math.max(latest, p.deadline);
    }
    const timeoutMs = latest - Date.now() + this.pingTimeoutMs;
    this.log.debug({ actionId: id, trigger, timeoutMs, actionsAhead: ahead }, 'AMI liveness Ping sent');
    this.send(conn, 'Ping', id, encodeAction('Ping', id), false, timeoutMs, true).then(
      () => {
        conn.probing = false;
        this.log.debug({ actionId: id, trigger }, 'AMI peer answered the liveness Ping');
      },
      (err: unknown) => {
        conn.probing = false;
        if (err instanceof PeerRequestError) return; // it answered: alive
        if (err instanceof PeerTimeoutError) this.declareDead(conn, trigger);
        // PeerDisconnectedError: the connection is already going away.
      },
    );
  }

  private declareDead(conn: Connection, trigger: string): void {
    if (conn.closed || conn.aborted || this.conn !== conn) return;
    conn.unresponsive = true;
    const { host, port } = this.settings;
    this.log.error(
      { host, port, trigger, pingTimeoutMs: this.pingTimeoutMs, pendingActions: this.pending.size },
      `AMI peer stopped answering (no reply to Ping within ${this.pingTimeoutMs} ms): dropping the connection; switchboard reconnects`,
    );
    this.abort(conn, `AMI peer stopped answering (no reply to Ping within ${this.pingTimeoutMs} ms)`);
  }

  private unresponsiveError(what: string): AmiPeerUnresponsiveError {
    const { host, port } = this.settings;
    return new AmiPeerUnresponsiveError(what, { host, port, pingTimeoutMs: this.pingTimeoutMs });
  }

  /** Idle keepalive: a liveness Ping every keepaliveIntervalMs while nothing is in flight. */
  private startKeepalive(conn: Connection): void {
    if (this.keepaliveIntervalMs <= 0) return;
    conn.keepaliveTimer = setInterval(() => {
      // In-flight actions have their own timeouts, and each one that expires sends a Ping. Real
      // Asterisk runs a session's actions one after another, so a Ping queued behind a slow action
      // would only measure that action.
      if (this.pending.size === 0) this.probe(conn, 'idle keepalive');
    }, this.keepaliveIntervalMs);
    conn.keepaliveTimer.unref();
  }

  private rememberExpired(id: string): void {
    this.expired.add(id);
    if (this.expired.size > EXPIRED_MEMORY) {
      const oldest = this.expired.values().next().value;
      if (oldest !== undefined) this.expired.delete(oldest);
    }
  }

  private settle(id: string, outcome: { value: AmiMessage | AmiListResult } | { error: Error }): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if ('error' in outcome) p.reject(outcome.error);
    else p.resolve(outcome.value);
  }

  private connect(): void {
    this.reconnectTimer = undefined;
    if (!this.running) return;
    const { host, port, username } = this.settings;
    this.log.info({ host, port, username }, 'AMI connecting');
    const socket = net.createConnection({ host, port });
    const conn: Connection = { socket, loggedIn: false, authFailed: false, closed: false, onClosed: [], aborted: false, probing: false, unresponsive: false, lastFrameAt: 0 };
    this.conn = conn;
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    const parser = new AmiParser((frame) => this.onFrame(conn, frame));
    this.connectTimer = setTimeout(() => this.abort(conn, `not logged in within ${this.connectTimeoutMs} ms`), this.connectTimeoutMs);
    socket.on('data', (chunk: string) => {
      if (!conn.closed) parser.push(chunk);
    });
    socket.on('error', (err) => {
      conn.reason ??= err.message;
    });
    socket.on('close', () => this.onClose(conn));
  }

  private abort(conn: Connection, reason: string): void {
    conn.reason ??= reason;
    conn.aborted = true;
    conn.socket.destroy();
  }

  private onFrame(conn: Connection, frame: ParsedFrame): void {
    conn.lastFrameAt = Date.now();
    if (frame.kind === 'banner') {
      if (!frame.text.startsWith(BANNER_PREFIX)) {
        this.log.error({ banner: frame.text.slice(0, 80) }, 'AMI peer sent an unexpected banner: is this the manager port?');
        this.abort(conn, `unexpected banner ${JSON.stringify(frame.text.slice(0, 80))}`);
        return;
      }
      this.login(conn, frame.text.slice(BANNER_PREFIX.length));
      return;
    }
    this.onMessage(frame.message);
  }

  private login(conn: Connection, version: string): void {
    const { host, port, username, secret } = this.settings;
    const id = this.nextId();
    let payload: string;
    try {
      payload = encodeAction('Login', id, { Username: username, Secret: secret });
    } catch (err) {
      // A CR/LF in the settings: retrying will not help, but keep the loop alive like a refused login.
      conn.authFailed = true;
      const authErr = new PeerAuthError(PEER, `user "${username}" cannot be sent: ${errorMessage(err)}`);
      this.log.error({ host, port, username, err: authErr }, 'AMI login impossible');
      this.emit('authFailed', authErr);
      this.abort(conn, 'invalid credentials in settings');
      return;
    }
    this.send(conn, 'Login', id, payload, false, this.actionTimeoutMs).then(
      () => {
        if (conn.closed) return;
        if (this.connectTimer) clearTimeout(this.connectTimer);
        this.connectTimer = undefined;
        conn.loggedIn = true;
        this.attempt = 0;
        this.startKeepalive(conn);
        this.log.info({ host, port, username, version }, 'AMI connected and logged in');
        this.emit('connected');
      },
      (err: unknown) => {
        if (conn.closed) return;
        if (err instanceof PeerRequestError) {
          conn.authFailed = true;
          const response = err.details.response as AmiMessage | undefined;
          const message = (response && get(response, 'Message')) ?? 'login refused';
          const authErr = new PeerAuthError(PEER, `user "${username}" refused by ${host}:${port} (${message})`);
          this.log.error({ host, port, username, err: authErr }, 'AMI login refused');
          this.emit('authFailed', authErr);
          this.abort(conn, 'authentication failed');
        } else {
          this.abort(conn, `login failed: ${errorMessage(err)}`);
        }
      },
    );
  }

  private onMessage(msg: AmiMessage): void {
    const id = get(msg, 'ActionID');
    // Event first: some events carry a Response header too (OriginateResponse).
    if (get(msg, 'Event') !== undefined) {
      this.onEvent(msg, id);
      return;
    }
    const response = get(msg, 'Response');
    if (response === undefined) {
      this.log.debug({ keys: Object.keys(msg) }, 'AMI message with neither Response nor Event dropped');
      return;
    }
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p || id === undefined) {
      this.log.debug({ actionId: id, response, late: id !== undefined && this.expired.has(id) }, 'AMI response for no pending action dropped');
      return;
    }
    if (response.toLowerCase() === 'error') {
      const message = get(msg, 'Message') ?? 'error';
      const output = get(msg, 'Output');
      const text = output ? `${message}: ${output}` : message;
      this.settle(id, { error: new PeerRequestError(PEER, `action ${p.name}`, text, { action: p.name, response: msg }) });
      return;
    }
    if (p.list && !p.response && this.startsList(msg)) {
      p.response = msg;
      return;
    }
    this.settle(id, { value: p.list ? { response: msg, events: [] } : msg });
  }

  private onEvent(msg: AmiMessage, id: string | undefined): void {
    if (id !== undefined) {
      const p = this.pending.get(id);
      if (p?.list && p.response) {
        if (headerIs(msg, 'EventList', 'Complete')) {
          this.settle(id, { value: { response: p.response, events: p.events, complete: msg } });
        } else {
          p.events.push(msg);
        }
        return;
      }
      if (this.expired.has(id)) {
        this.log.debug({ actionId: id, event: get(msg, 'Event') }, 'AMI event for a timed-out action dropped');
        return;
      }
    }
    this.emit('event', msg);
  }

  private startsList(msg: AmiMessage): boolean {
    return headerIs(msg, 'EventList', 'start') || /will follow/i.test(get(msg, 'Message') ?? '');
  }

  private onClose(conn: Connection): void {
    conn.closed = true;
    if (conn.keepaliveTimer) clearInterval(conn.keepaliveTimer);
    conn.keepaliveTimer = undefined;
    if (this.conn !== conn) return;
    this.conn = undefined;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    const reason = conn.reason ?? 'connection closed by peer';
    for (const [id, p] of [...this.pending]) {
      const error = conn.unresponsive ? this.unresponsiveError(`action ${p.name}`) : new PeerDisconnectedError(PEER, `action ${p.name} (${reason})`);
      this.settle(id, { error });
    }
    const { host, port } = this.settings;
    if (conn.loggedIn) {
      if (this.running) this.log.warn({ host, port, reason }, 'AMI disconnected');
      else this.log.info({ host, port, reason }, 'AMI disconnected');
      this.emit('disconnected', reason);
    }
    for (const done of conn.onClosed) done();
    if (this.running) this.scheduleReconnect(conn, reason);
  }

  private scheduleReconnect(conn: Connection, reason: string): void {
    const base = conn.authFailed ? this.reconnectMaxMs : Math.min(this.reconnectMaxMs, this.reconnectInitialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    const delayMs = Math.max(1, Math.min(this.reconnectMaxMs, Math.round(base * (0.8 + 0.4 * Math.random()))));
    const fields = { host: this.settings.host, port: this.settings.port, username: this.settings.username, attempt: this.attempt, delayMs, reason };
    if (conn.authFailed) this.log.error(fields, `AMI login refused; retrying in ${delayMs} ms`);
    else this.log.warn(fields, `AMI reconnecting in ${delayMs} ms`);
    this.reconnectTimer = setTimeout(() => this.connect(), delayMs);
  }

  private async shutdown(): Promise<void> {
    const conn = this.conn;
    if (!conn) return;
    conn.reason ??= 'stopped';
    if (conn.loggedIn && !conn.aborted) {
      const id = this.nextId();
      try {
        await this.send(conn, 'Logoff', id, encodeAction('Logoff', id), false, Math.min(this.actionTimeoutMs, LOGOFF_TIMEOUT_MS));
      } catch {
        // Closing anyway.
      }
    }
    if (conn.closed) return;
    await new Promise<void>((resolve) => {
      conn.onClosed.push(resolve);
      this.abort(conn, 'stopped');
    });
  }
}
