/**
 * A protocol-level fake of Asterisk's manager interface (AMI), on a real TCP socket.
 *
 * - Sends `Asterisk Call Manager/9.0.0\r\n` on connect, before any login (hold it with
 *   `holdBanner` + `releaseBanner()`).
 * - CRLF framing, `ActionID` echoed, `Login` checked against username/secret; any other action
 *   before login answers `Permission denied` (as Asterisk's manager.c does; Logoff and Challenge
 *   are allowed); a message without `Action` answers `Missing action in request`.
 * - Handlers per action (case-insensitive), replaceable with `on()`; one-shot scripted replies with
 *   `scriptOnce()` take precedence (FIFO per action). Defaults: Login, Logoff, Ping; anything
 *   else answers `Invalid/unknown command: X. Use Action: ListCommands to show available commands.`
 * - `setSilent(true)` plays a stuck peer (Asterisk hung, or a NAT box that silently dropped the
 *   connection): connections stay open and bytes are read (actions still show in `actions()` and
 *   `waitForAction()`), but nothing is written, not even a banner or an event; what arrived while
 *   silent is never answered. `setSilent(false)` answers again (new actions, held banners).
 *
 * Deliberately independent of src/asterisk/ami (its own little parser), so a client bug is not
 * mirrored by the fake.
 */
import net from 'node:net';

export type AmiMessage = Record<string, string>;

export interface FakeReply {
  /** Response fields besides ActionID; `Response` defaults to `Success`. */
  response?: AmiMessage;
  /** Events sent after the response, each given the request's ActionID. */
  events?: AmiMessage[];
  /** Makes it a list: adds `EventList: start` to the response and ends with this `…Complete` event. */
  listComplete?: string;
  /** Extra fields for the `…Complete` event. */
  completeFields?: AmiMessage;
  /** Written verbatim after the response/events (use it for odd framing, e.g. `Response: Follows`). */
  raw?: string;
  /** Answer nothing at all (the client's timeout must fire). */
  hang?: boolean;
  /** Destroy the connection (after writing whatever else this reply holds, usually nothing). */
  drop?: boolean;
  /** Close the connection gracefully after writing the reply (Logoff does this). */
  close?: boolean;
  /** Write nothing for `response` (send only `events`/`raw`). */
  noResponse?: boolean;
}

export interface FakeConnection {
  readonly id: number;
  readonly authenticated: boolean;
  readonly username: string | undefined;
  /** True once the socket closed (either side). */
  readonly closed: boolean;
  /** Sends one message (an event or anything else) on this connection. */
  send(msg: AmiMessage): void;
  sendRaw(text: string): void;
  drop(): void;
}

export interface FakeContext {
  connection: FakeConnection;
  server: FakeAmiServer;
  /** The request's ActionID, if it had one. */
  actionId: string | undefined;
}

export type FakeHandler = (msg: AmiMessage, ctx: FakeContext) => FakeReply | Promise<FakeReply>;

export interface FakeAmiServerOptions {
  username?: string;
  secret?: string;
  /** Default `Asterisk Call Manager/9.0.0`. */
  banner?: string;
  /** Don't send the banner until `releaseBanner()`. */
  holdBanner?: boolean;
  /** Send `FullyBooted` after a successful login (default true). */
  fullyBooted?: boolean;
  /** Split every write into chunks of this many characters (exercises the client's reassembly). */
  chunkSize?: number;
  /** Port to listen on (default: any free port; a restart reuses the first one). */
  port?: number;
}

/** Case-insensitive header lookup. */
export function header(msg: AmiMessage, key: string): string | undefined {
  const lower = key.toLowerCase();
  for (const k of Object.keys(msg)) if (k.toLowerCase() === lower) return msg[k];
  return undefined;
}

/** Serialises a message: `first` keys in that order, then the rest; a value with `\n` repeats the header. */
export function serialize(msg: AmiMessage, first: string[] = []): string {
  const keys = Object.keys(msg);
  const ordered = [...first.filter((k) => keys.includes(k)), ...keys.filter((k) => !first.includes(k))];
  let out = '';
  for (const k of ordered) for (const v of msg[k]!.split('\n')) out += `${k}: ${v}\r\n`;
  return out + '\r\n';
}

class Conn implements FakeConnection {
  authenticated = false;
  username: string | undefined;
  closed = false;
  bannerSent = false;
  private buffer = '';
  private current: AmiMessage | undefined;

  constructor(
    readonly id: number,
    readonly socket: net.Socket,
    private readonly chunkSize: number | undefined,
    private readonly onMessage: (msg: AmiMessage) => void,
    private readonly silent: () => boolean = () => false,
  ) {}

  feed(text: string): void {
    this.buffer += text;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) !== -1) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      if (line === '') {
        const msg = this.current;
        this.current = undefined;
        if (msg) this.onMessage(msg);
        continue;
      }
      const msg = (this.current ??= {});
      const colon = line.indexOf(':');
      const key = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      msg[key] = key in msg ? `${msg[key]}\n${value}` : value;
    }
  }

  sendRaw(text: string): void {
    if (this.closed || this.socket.destroyed || this.silent()) return;
    if (!this.chunkSize) {
      this.socket.write(text);
      return;
    }
    for (let i = 0; i < text.length; i += this.chunkSize) this.socket.write(text.slice(i, i + this.chunkSize));
  }

  send(msg: AmiMessage): void {
    this.sendRaw(serialize(msg, ['Event', 'Response', 'ActionID']));
  }

  drop(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

interface ActionWaiter {
  name: string;
  predicate: (msg: AmiMessage) => boolean;
  resolve: (msg: AmiMessage) => void;
}

export class FakeAmiServer {
  private server: net.Server | undefined;
  private port: number | undefined;
  private readonly conns = new Set<Conn>();
  private nextConnId = 0;
  private accepted = 0;
  private refusing = false;
  private username: string;
  private secret: string;
  private received: AmiMessage[] = [];
  private rawText = '';
  private handlers = new Map<string, FakeHandler>();
  private scripts = new Map<string, (FakeReply | FakeHandler)[]>();
  private waiters: ActionWaiter[] = [];
  private bannerHeld: boolean;
  private silentMode = false;

  constructor(private readonly options: FakeAmiServerOptions = {}) {
    this.username = options.username ?? 'switchboard';
    this.secret = options.secret ?? 's3cret';
    this.bannerHeld = options.holdBanner ?? false;
    this.port = options.port;
    this.installDefaults();
  }

  /** Listens on 127.0.0.1 (the same port again after a stop()); resolves with the port. */
  async start(): Promise<number> {
    if (this.server) return this.port!;
    const server = net.createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Destroys every connection and closes the listener. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.dropConnections();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  get listeningPort(): number | undefined {
    return this.port;
  }

  /** Connections currently open. */
  get connectionCount(): number {
    return this.conns.size;
  }

  /** Connections accepted since construction/reset (including refused ones). */
  get acceptedCount(): number {
    return this.accepted;
  }

  /** Connections that are logged in. */
  get authenticatedCount(): number {
    return [...this.conns].filter((c) => c.authenticated).length;
  }

  setCredentials(username: string, secret: string): void {
    this.username = username;
    this.secret = secret;
  }

  /** Sends the held banner to every connection waiting for it, and stops holding it. */
  releaseBanner(): void {
    this.bannerHeld = false;
    for (const c of this.conns) this.sendBanner(c);
  }

  /**
   * Stuck peer on/off. While on, every connection (open or new) stays open and is read, but gets
   * no byte: no banner, no response, no event. Actions received meanwhile are recorded and never
   * answered. Turning it off sends the banner to connections still waiting for one (unless held).
   */
  setSilent(on: boolean): void {
    this.silentMode = on;
    if (!on && !this.bannerHeld) for (const c of this.conns) this.sendBanner(c);
  }

  get silent(): boolean {
    return this.silentMode;
  }

  /** Replaces the handler for `action` (case-insensitive). */
  on(action: string, handler: FakeHandler): this {
    this.handlers.set(action.toLowerCase(), handler);
    return this;
  }

  /** Removes a handler (a default one too: the action then answers "unknown command"). */
  off(action: string): this {
    this.handlers.delete(action.toLowerCase());
    return this;
  }

  /** Queues a one-shot reply (or handler) for `action`; it is used before the regular handler. */
  scriptOnce(action: string, reply: FakeReply | FakeHandler): this {
    const key = action.toLowerCase();
    const queue = this.scripts.get(key) ?? [];
    queue.push(reply);
    this.scripts.set(key, queue);
    return this;
  }

  /** Sends an event to every logged-in connection. */
  sendEvent(evt: AmiMessage): void {
    for (const c of this.conns) if (c.authenticated) c.send(evt);
  }

  /** Destroys every open connection (the listener stays up). */
  dropConnections(): void {
    for (const c of this.conns) c.drop();
    this.conns.clear();
  }

  /** While on, every new connection is accepted and closed at once (no banner). */
  refuseConnections(on: boolean): void {
    this.refusing = on;
  }

  /** Every action received, in order (Login secrets included). */
  actions(): AmiMessage[] {
    return [...this.received];
  }

  /** Everything received, as raw text. */
  rawReceived(): string {
    return this.rawText;
  }

  /**
   * Resolves with the first action named `name` (and matching `predicate`) received so far or
   * later; rejects after `timeoutMs`.
   */
  waitForAction(name: string, predicate: (msg: AmiMessage) => boolean = () => true, timeoutMs = 2000): Promise<AmiMessage> {
    const lower = name.toLowerCase();
    const found = this.received.find((m) => header(m, 'Action')?.toLowerCase() === lower && predicate(m));
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter: ActionWaiter = {
        name: lower,
        predicate,
        resolve: (msg) => {
          clearTimeout(timer);
          resolve(msg);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        const seen = this.received.map((m) => header(m, 'Action')).join(', ');
        reject(new Error(`fake AMI: no ${name} action within ${timeoutMs} ms (received: ${seen || 'nothing'})`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Forgets received actions, scripts and custom handlers; stops refusing and being silent. Connections stay. */
  reset(): void {
    this.received = [];
    this.rawText = '';
    this.scripts.clear();
    this.handlers.clear();
    this.installDefaults();
    this.refusing = false;
    this.silentMode = false;
    this.accepted = 0;
    this.username = this.options.username ?? 'switchboard';
    this.secret = this.options.secret ?? 's3cret';
  }

  // ---------------------------------------------------------------------------------------------

  private installDefaults(): void {
    this.on('Login', (msg) => {
      const ok = header(msg, 'Username') === this.username && header(msg, 'Secret') === this.secret;
      return ok
        ? { response: { Response: 'Success', Message: 'Authentication accepted' } }
        : { response: { Response: 'Error', Message: 'Authentication failed' } };
    });
    this.on('Logoff', () => ({ response: { Response: 'Goodbye', Message: 'Thanks for all the fish.' }, close: true }));
    this.on('Ping', () => ({ response: { Response: 'Success', Ping: 'Pong', Timestamp: (Date.now() / 1000).toFixed(6) } }));
  }

  private accept(socket: net.Socket): void {
    this.accepted += 1;
    socket.on('error', () => {});
    if (this.refusing) {
      socket.destroy();
      return;
    }
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    const conn = new Conn(
      ++this.nextConnId,
      socket,
      this.options.chunkSize,
      (msg) => {
        void this.handle(conn, msg);
      },
      () => this.silentMode,
    );
    this.conns.add(conn);
    socket.on('data', (chunk: string) => {
      this.rawText += chunk;
      conn.feed(chunk);
    });
    socket.on('close', () => {
      conn.closed = true;
      this.conns.delete(conn);
    });
    if (!this.bannerHeld) this.sendBanner(conn);
  }

  private sendBanner(conn: Conn): void {
    if (conn.bannerSent || this.silentMode) return;
    conn.bannerSent = true;
    conn.sendRaw(`${this.options.banner ?? 'Asterisk Call Manager/9.0.0'}\r\n`);
  }

  private async handle(conn: Conn, msg: AmiMessage): Promise<void> {
    this.received.push(msg);
    const action = header(msg, 'Action');
    const lower = action?.toLowerCase();
    if (lower !== undefined) {
      for (const w of [...this.waiters]) {
        if (w.name === lower && w.predicate(msg)) {
          this.waiters = this.waiters.filter((x) => x !== w);
          w.resolve(msg);
        }
      }
    }
    // A stuck peer reads the request and never answers it, not even once it is back.
    if (this.silentMode) return;
    const actionId = header(msg, 'ActionID');
    let reply: FakeReply;
    if (lower === undefined || lower === '') {
      reply = { response: { Response: 'Error', Message: 'Missing action in request' } };
    } else if (!conn.authenticated && !['login', 'logoff', 'challenge'].includes(lower)) {
      reply = { response: { Response: 'Error', Message: 'Permission denied' } };
    } else {
      const scripted = this.scripts.get(lower)?.shift();
      const handler: FakeHandler =
        typeof scripted === 'function'
          ? scripted
          : scripted
            ? () => scripted
            : (this.handlers.get(lower) ??
              (() => ({ response: { Response: 'Error', Message: `Invalid/unknown command: ${action}. Use Action: ListCommands to show available commands.` } })));
      try {
        reply = await handler(msg, { connection: conn, server: this, actionId });
      } catch (err) {
        reply = { response: { Response: 'Error', Message: `fake handler failed: ${err instanceof Error ? err.message : String(err)}` } };
      }
    }
    if (conn.closed) return;
    this.deliver(conn, actionId, reply);
    if (lower === 'login' && !reply.hang && !reply.noResponse && (header(reply.response ?? {}, 'Response') ?? 'Success').toLowerCase() === 'success') {
      conn.authenticated = true;
      conn.username = header(msg, 'Username');
      if (this.options.fullyBooted ?? true) {
        conn.send({ Event: 'FullyBooted', Privilege: 'system,all', Uptime: '12', LastReload: '12', Status: 'Fully Booted' });
      }
    }
  }

  private deliver(conn: Conn, actionId: string | undefined, reply: FakeReply): void {
    if (reply.hang) return;
    const withId = (m: AmiMessage): AmiMessage => (actionId === undefined ? { ...m } : { ...m, ActionID: actionId });
    let out = '';
    if (!reply.noResponse) {
      const response: AmiMessage = { Response: 'Success', ...reply.response };
      if (reply.listComplete) {
        if (header(response, 'EventList') === undefined) response.EventList = 'start';
        if (header(response, 'Message') === undefined) response.Message = 'Listing will follow';
      }
      out += serialize(withId(response), ['Response', 'ActionID']);
    }
    for (const evt of reply.events ?? []) out += serialize(withId(evt), ['Event', 'ActionID']);
    if (reply.listComplete) {
      out += serialize(
        withId({ Event: reply.listComplete, EventList: 'Complete', ListItems: String(reply.events?.length ?? 0), ...reply.completeFields }),
        ['Event', 'ActionID'],
      );
    }
    if (reply.raw) out += reply.raw;
    if (out) conn.sendRaw(out);
    if (reply.drop) {
      conn.drop();
      this.conns.delete(conn);
    } else if (reply.close) {
      conn.closed = true;
      conn.socket.end();
    }
  }
}
