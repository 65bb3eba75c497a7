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
 *
 * Events: 'connected' (), 'disconnected' (reason: string), 'authFailed' (PeerAuthError),
 * 'event' (AmiMessage).
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { PeerAuthError, PeerDisconnectedError, PeerRequestError, PeerTimeoutError, errorMessage } from '../../errors.js';
import { AmiParser, BANNER_PREFIX, encodeAction, get, headerIs } from './protocol.js';
export { get, headerIs } from './protocol.js';
const PEER = 'AMI';
const EXPIRED_MEMORY = 1024;
const LOGOFF_TIMEOUT_MS = 2000;
export class AmiClient extends EventEmitter {
    settings;
    log;
    connectTimeoutMs;
    actionTimeoutMs;
    reconnectInitialMs;
    reconnectMaxMs;
    idPrefix = randomBytes(6).toString('hex');
    idCounter = 0;
    pending = new Map();
    /** ActionIDs that timed out: late replies and list events for them are dropped, not emitted. */
    expired = new Set();
    running = false;
    conn;
    connectTimer;
    reconnectTimer;
    attempt = 0;
    stopping;
    constructor(settings, logger) {
        super();
        this.settings = settings;
        this.log = logger.child({ component: 'ami' });
        this.connectTimeoutMs = settings.connectTimeoutMs ?? 5000;
        this.actionTimeoutMs = settings.actionTimeoutMs ?? 10000;
        this.reconnectInitialMs = Math.max(1, settings.reconnectInitialMs ?? 250);
        this.reconnectMaxMs = Math.max(this.reconnectInitialMs, settings.reconnectMaxMs ?? 10000);
    }
    /** True while logged in. */
    get connected() {
        return this.conn?.loggedIn === true;
    }
    /** Connects, logs in, and keeps reconnecting until stop(). Calling it twice is harmless. */
    start() {
        if (this.running)
            return;
        this.running = true;
        this.stopping = undefined;
        this.attempt = 0;
        // A connection still closing from an earlier stop() reconnects from its close handler.
        if (!this.conn)
            this.connect();
    }
    /** Logs off if logged in, closes the connection, stops reconnecting; rejects pending actions. */
    stop() {
        this.running = false;
        if (this.reconnectTimer)
            clearTimeout(this.reconnectTimer);
        this.reconnectTimer = undefined;
        this.stopping ??= this.shutdown();
        return this.stopping;
    }
    /** Resolves once logged in; rejects with PeerTimeoutError after `timeoutMs`. */
    waitConnected(timeoutMs) {
        if (this.connected)
            return Promise.resolve();
        return new Promise((resolve, reject) => {
            const onConnected = () => {
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
    action(name, fields = {}, opts = {}) {
        return this.request(name, fields, false, opts.timeoutMs);
    }
    /** Sends a list action and resolves once its `…Complete` event arrived. */
    listAction(name, fields = {}, opts = {}) {
        return this.request(name, fields, true, opts.timeoutMs);
    }
    // ---------------------------------------------------------------------------------------------
    nextId() {
        this.idCounter += 1;
        return `${this.idPrefix}-${this.idCounter}`;
    }
    request(name, fields, list, timeoutMs) {
        const id = this.nextId();
        let payload;
        try {
            payload = encodeAction(name, id, fields);
        }
        catch (err) {
            return Promise.reject(err);
        }
        const conn = this.conn;
        if (!conn || !conn.loggedIn)
            return Promise.reject(new PeerDisconnectedError(PEER, `action ${name}`));
        return this.send(conn, name, id, payload, list, timeoutMs ?? this.actionTimeoutMs);
    }
    send(conn, name, id, payload, list, timeoutMs) {
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
                if (!this.pending.delete(id))
                    return;
                this.rememberExpired(id);
                this.log.warn({ action: name, actionId: id, timeoutMs }, 'AMI action timed out');
                reject(new PeerTimeoutError(PEER, `action ${name}`, timeoutMs));
            }, timeoutMs);
            this.pending.set(id, { name, list, resolve, reject, timer, events: [] });
            this.log.debug({ action: name, actionId: id }, 'AMI action sent');
            conn.socket.write(payload);
        });
    }
    rememberExpired(id) {
        this.expired.add(id);
        if (this.expired.size > EXPIRED_MEMORY) {
            const oldest = this.expired.values().next().value;
            if (oldest !== undefined)
                this.expired.delete(oldest);
        }
    }
    settle(id, outcome) {
        const p = this.pending.get(id);
        if (!p)
            return;
        this.pending.delete(id);
        clearTimeout(p.timer);
        if ('error' in outcome)
            p.reject(outcome.error);
        else
            p.resolve(outcome.value);
    }
    connect() {
        this.reconnectTimer = undefined;
        if (!this.running)
            return;
        const { host, port, username } = this.settings;
        this.log.info({ host, port, username }, 'AMI connecting');
        const socket = net.createConnection({ host, port });
        const conn = { socket, loggedIn: false, authFailed: false, closed: false, onClosed: [] };
        this.conn = conn;
        socket.setEncoding('utf8');
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 30_000);
        const parser = new AmiParser((frame) => this.onFrame(conn, frame));
        this.connectTimer = setTimeout(() => this.abort(conn, `not logged in within ${this.connectTimeoutMs} ms`), this.connectTimeoutMs);
        socket.on('data', (chunk) => {
            if (!conn.closed)
                parser.push(chunk);
        });
        socket.on('error', (err) => {
            conn.reason ??= err.message;
        });
        socket.on('close', () => this.onClose(conn));
    }
    abort(conn, reason) {
        conn.reason ??= reason;
        conn.socket.destroy();
    }
    onFrame(conn, frame) {
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
    login(conn, version) {
        const { host, port, username, secret } = this.settings;
        const id = this.nextId();
        let payload;
        try {
            payload = encodeAction('Login', id, { Username: username, Secret: secret });
        }
        catch (err) {
            // A CR/LF in the settings: retrying will not help, but keep the loop alive like a refused login.
            conn.authFailed = true;
            const authErr = new PeerAuthError(PEER, `user "${username}" cannot be sent: ${errorMessage(err)}`);
            this.log.error({ host, port, username, err: authErr }, 'AMI login impossible');
            this.emit('authFailed', authErr);
            this.abort(conn, 'invalid credentials in settings');
            return;
        }
        this.send(conn, 'Login', id, payload, false, this.actionTimeoutMs).then(() => {
            if (conn.closed)
                return;
            if (this.connectTimer)
                clearTimeout(this.connectTimer);
            this.connectTimer = undefined;
            conn.loggedIn = true;
            this.attempt = 0;
            this.log.info({ host, port, username, version }, 'AMI connected and logged in');
            this.emit('connected');
        }, (err) => {
            if (conn.closed)
                return;
            if (err instanceof PeerRequestError) {
                conn.authFailed = true;
                const response = err.details.response;
                const message = (response && get(response, 'Message')) ?? 'login refused';
                const authErr = new PeerAuthError(PEER, `user "${username}" refused by ${host}:${port} (${message})`);
                this.log.error({ host, port, username, err: authErr }, 'AMI login refused');
                this.emit('authFailed', authErr);
                this.abort(conn, 'authentication failed');
            }
            else {
                this.abort(conn, `login failed: ${errorMessage(err)}`);
            }
        });
    }
    onMessage(msg) {
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
    onEvent(msg, id) {
        if (id !== undefined) {
            const p = this.pending.get(id);
            if (p?.list && p.response) {
                if (headerIs(msg, 'EventList', 'Complete')) {
                    this.settle(id, { value: { response: p.response, events: p.events, complete: msg } });
                }
                else {
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
    startsList(msg) {
        return headerIs(msg, 'EventList', 'start') || /will follow/i.test(get(msg, 'Message') ?? '');
    }
    onClose(conn) {
        conn.closed = true;
        if (this.conn !== conn)
            return;
        this.conn = undefined;
        if (this.connectTimer)
            clearTimeout(this.connectTimer);
        this.connectTimer = undefined;
        const reason = conn.reason ?? 'connection closed by peer';
        for (const [id, p] of [...this.pending]) {
            this.settle(id, { error: new PeerDisconnectedError(PEER, `action ${p.name} (${reason})`) });
        }
        const { host, port } = this.settings;
        if (conn.loggedIn) {
            if (this.running)
                this.log.warn({ host, port, reason }, 'AMI disconnected');
            else
                this.log.info({ host, port, reason }, 'AMI disconnected');
            this.emit('disconnected', reason);
        }
        for (const done of conn.onClosed)
            done();
        if (this.running)
            this.scheduleReconnect(conn, reason);
    }
    scheduleReconnect(conn, reason) {
        const base = conn.authFailed ? this.reconnectMaxMs : Math.min(this.reconnectMaxMs, this.reconnectInitialMs * 2 ** Math.min(this.attempt, 30));
        this.attempt += 1;
        const delayMs = Math.max(1, Math.min(this.reconnectMaxMs, Math.round(base * (0.8 + 0.4 * Math.random()))));
        const fields = { host: this.settings.host, port: this.settings.port, username: this.settings.username, attempt: this.attempt, delayMs, reason };
        if (conn.authFailed)
            this.log.error(fields, `AMI login refused; retrying in ${delayMs} ms`);
        else
            this.log.warn(fields, `AMI reconnecting in ${delayMs} ms`);
        this.reconnectTimer = setTimeout(() => this.connect(), delayMs);
    }
    async shutdown() {
        const conn = this.conn;
        if (!conn)
            return;
        conn.reason ??= 'stopped';
        if (conn.loggedIn) {
            const id = this.nextId();
            try {
                await this.send(conn, 'Logoff', id, encodeAction('Logoff', id), false, Math.min(this.actionTimeoutMs, LOGOFF_TIMEOUT_MS));
            }
            catch {
                // Closing anyway.
            }
        }
        if (conn.closed)
            return;
        await new Promise((resolve) => {
            conn.onClosed.push(resolve);
            this.abort(conn, 'stopped');
        });
    }
}
//# sourceMappingURL=client.js.map