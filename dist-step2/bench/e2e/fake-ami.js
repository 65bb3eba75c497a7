/**
 * A lean fake Asterisk for the apply-latency benchmark: an AMI server on a real TCP socket that
 * speaks the manager wire format (`Asterisk Call Manager/9.0.0` banner, `Key: Value` lines ending
 * in CRLF, an empty line ending each message, ActionID echoed) and reads the switchboard config
 * files the way Asterisk does on `Reload`:
 *
 * - `Login` (user/secret checked; `FullyBooted` follows), `Logoff`, `Ping`;
 * - `Reload` with `Module:` res_pjsip.so / app_voicemail.so / pbx_config.so re-reads that module's
 *   file before answering `Module Reloaded` (chan_sip is not loaded: `No such module`, as on
 *   Asterisk 22);
 * - `PJSIPShowEndpoint` answers with the list Asterisk 20 sends (core-en_US.asterisk-20.xml):
 *   `Response: Success`, `EventList: start`, then EndpointDetail, AorDetail, AuthDetail,
 *   TransportDetail and IdentifyDetail events carrying the ActionID, and `EndpointDetailComplete`
 *   with `EventList: Complete` and `ListItems`; an unknown endpoint answers
 *   `Unable to retrieve endpoint NAME`. Values are printed as Asterisk prints them (codecs
 *   `(ulaw|alaw)`, groups `1, 3, 4, 5`, webrtc forcing `dtls`).
 * - `VoicemailUsersList`: one VoicemailUserEntry per mailbox, then VoicemailUserEntryComplete.
 *
 * It is deliberately small (the full fake for tests is test/fakes/fake-asterisk.ts, which the
 * bench build cannot import): no templates, no option checks, no chan_sip. Every action is
 * timestamped on arrival (monoMs) so that the benchmark can tell when the `Reload` reached "Asterisk".
 */
import net from 'node:net';
import path from 'node:path';
import { readIfExists } from '../../fsutil.js';
import { monoMs } from './common.js';
const PJSIP_FILE = 'pjsip_switchboard.conf';
const VOICEMAIL_FILE = 'voicemail_switchboard.conf';
const EXTENSIONS_FILE = 'extensions_switchboard.conf';
const LOADED = new Set(['res_pjsip.so', 'app_voicemail.so', 'pbx_config.so']);
function serialize(msg) {
    let out = '';
    for (const [k, v] of Object.entries(msg))
        out += `${k}: ${v}\r\n`;
    return `${out}\r\n`;
}
/** Config file → sections (comments stripped, `\;` kept as `;`), keys lower-cased, repeats kept. */
export function parseConf(text) {
    const out = [];
    let cur;
    for (const raw of text.split('\n')) {
        let line = raw;
        const semi = line.indexOf(';');
        if (semi !== -1) {
            line = line.includes('\\;') ? line.replace(/\\;/g, '\u0000') : line;
            const cut = line.indexOf(';');
            if (cut !== -1)
                line = line.slice(0, cut);
            line = line.replace(/\u0000/g, ';');
        }
        line = line.trim();
        if (!line)
            continue;
        if (line.charCodeAt(0) === 91 /* [ */) {
            const end = line.indexOf(']');
            cur = { name: line.slice(1, end).trim(), type: '', values: new Map() };
            out.push(cur);
            continue;
        }
        if (!cur)
            continue;
        const eq = line.indexOf('=');
        if (eq === -1)
            continue;
        const key = line.slice(0, eq).trim().toLowerCase();
        const value = line.slice(eq + 1).replace(/^>/, '').trim();
        if (key === 'type')
            cur.type = value.toLowerCase();
        const list = cur.values.get(key);
        if (list)
            list.push(value);
        else
            cur.values.set(key, [value]);
    }
    return out;
}
/** ast_get_group + ast_print_group: `1,3-5` → `1, 3, 4, 5`. */
function printGroup(value) {
    if (!value)
        return '';
    const out = new Set();
    for (const part of value.split(',')) {
        const m = /^\s*(\d+)\s*(?:-\s*(\d+))?\s*$/.exec(part);
        if (!m)
            continue;
        const a = Number(m[1]);
        const b = m[2] === undefined ? a : Number(m[2]);
        for (let g = a; g <= b && g <= 63; g++)
            out.add(g);
    }
    return [...out].sort((x, y) => x - y).join(', ');
}
function codecs(section) {
    let list = [];
    for (const [key, values] of section.values) {
        if (key !== 'allow' && key !== 'disallow')
            continue;
        for (const v of values) {
            for (const c of v.split(/[,|]/).map((x) => x.trim().toLowerCase()).filter(Boolean)) {
                if (c === 'all')
                    list = key === 'disallow' ? [] : list;
                else {
                    list = list.filter((x) => x !== c);
                    if (key === 'allow')
                        list.push(c);
                }
            }
        }
    }
    return `(${list.length ? list.join('|') : 'nothing'})`;
}
const first = (s, key) => s.values.get(key)?.[0] ?? '';
const splitList = (v) => v.split(',').map((x) => x.trim()).filter(Boolean);
const yes = (v) => /^(yes|true|y|t|1|on)$/i.test(v);
export class FakeAmi {
    opts;
    server;
    sockets = new Set();
    endpoints = new Map();
    aors = new Map();
    auths = new Map();
    transports = new Map();
    identifies = new Map();
    mailboxes = [];
    /** Every action received, in order. */
    received = [];
    /** Called for every action on arrival (before it is handled). */
    onAction;
    constructor(opts) {
        this.opts = opts;
    }
    async start() {
        const server = net.createServer((s) => this.accept(s));
        await new Promise((resolve, reject) => {
            server.once('error', reject);
            server.listen(0, '127.0.0.1', () => resolve());
        });
        this.server = server;
        return server.address().port;
    }
    async stop() {
        for (const s of this.sockets)
            s.destroy();
        const server = this.server;
        this.server = undefined;
        if (server)
            await new Promise((resolve) => server.close(() => resolve()));
    }
    get endpointCount() {
        return this.endpoints.size;
    }
    /** Actions named `action` received at or after `since` (monoMs). */
    actionsSince(action, since) {
        const lower = action.toLowerCase();
        const out = [];
        for (let i = this.received.length - 1; i >= 0; i--) {
            const a = this.received[i];
            if (a.receivedAt < since)
                break;
            if (a.action.toLowerCase() === lower)
                out.unshift(a);
        }
        return out;
    }
    /** Forgets received actions (keeps memory flat over many edits). */
    clearReceived() {
        this.received.length = 0;
    }
    // ---------------------------------------------------------------------------------------------
    accept(socket) {
        this.sockets.add(socket);
        socket.setNoDelay(true);
        socket.setEncoding('utf8');
        socket.on('error', () => undefined);
        socket.on('close', () => this.sockets.delete(socket));
        let buffer = '';
        let authed = false;
        socket.write('Asterisk Call Manager/9.0.0\r\n');
        socket.on('data', (chunk) => {
            const at = monoMs();
            buffer += chunk;
            let end;
            while ((end = buffer.indexOf('\r\n\r\n')) !== -1) {
                const block = buffer.slice(0, end);
                buffer = buffer.slice(end + 4);
                const msg = {};
                for (const line of block.split('\r\n')) {
                    const colon = line.indexOf(':');
                    if (colon > 0)
                        msg[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
                }
                const action = msg['Action'] ?? '';
                const rec = { action, fields: msg, receivedAt: at };
                this.received.push(rec);
                this.onAction?.(rec);
                const lower = action.toLowerCase();
                if (lower === 'login') {
                    authed = msg['Username'] === this.opts.username && msg['Secret'] === this.opts.secret;
                    this.answer(socket, rec, authed ? { Response: 'Success', Message: 'Authentication accepted' } : { Response: 'Error', Message: 'Authentication failed' });
                    if (authed)
                        socket.write(serialize({ Event: 'FullyBooted', Privilege: 'system,all', Uptime: '12', LastReload: '12', Status: 'Fully Booted' }));
                    continue;
                }
                if (!authed && lower !== 'logoff') {
                    this.answer(socket, rec, { Response: 'Error', Message: 'Permission denied' });
                    continue;
                }
                void this.handle(socket, rec, lower);
            }
        });
    }
    answer(socket, rec, response, events = [], complete) {
        const id = rec.fields['ActionID'];
        const withId = (m) => (id === undefined ? m : { ...m, ActionID: id });
        let out = serialize(withId(complete ? { Response: response['Response'], EventList: 'start', ...response } : response));
        for (const e of events)
            out += serialize(withId(e));
        if (complete)
            out += serialize(withId({ Event: complete, EventList: 'Complete', ListItems: String(events.length) }));
        rec.answeredAt = monoMs();
        if (!socket.destroyed)
            socket.write(out);
    }
    async handle(socket, rec, lower) {
        const f = rec.fields;
        switch (lower) {
            case 'logoff':
                this.answer(socket, rec, { Response: 'Goodbye', Message: 'Thanks for all the fish.' });
                socket.end();
                return;
            case 'ping':
                this.answer(socket, rec, { Response: 'Success', Ping: 'Pong', Timestamp: (Date.now() / 1000).toFixed(6) });
                return;
            case 'reload': {
                const module = f['Module'];
                if (!module || !LOADED.has(module)) {
                    this.answer(socket, rec, { Response: 'Error', Message: 'No such module' });
                    return;
                }
                if (module === 'res_pjsip.so')
                    await this.loadPjsip();
                else if (module === 'app_voicemail.so')
                    await this.loadVoicemail();
                else
                    await this.read(EXTENSIONS_FILE);
                this.answer(socket, rec, { Response: 'Success', Message: 'Module Reloaded' });
                return;
            }
            case 'pjsipshowendpoint':
                this.showEndpoint(socket, rec, f['Endpoint'] ?? '');
                return;
            case 'voicemailuserslist':
                if (!this.mailboxes.length)
                    this.answer(socket, rec, { Response: 'Success', Message: 'There are no voicemail users currently defined.' });
                else
                    this.answer(socket, rec, { Response: 'Success', Message: 'Voicemail user list will follow' }, this.mailboxes, 'VoicemailUserEntryComplete');
                return;
            default:
                this.answer(socket, rec, { Response: 'Error', Message: `Invalid/unknown command: ${rec.action}. Use Action: ListCommands to show available commands.` });
        }
    }
    async read(file) {
        return (await readIfExists(path.join(this.opts.configDir, file))) ?? '';
    }
    async loadPjsip() {
        const endpoints = new Map();
        const aors = new Map();
        const auths = new Map();
        const transports = new Map();
        const identifies = new Map();
        for (const s of parseConf(await this.read(PJSIP_FILE))) {
            if (s.type === 'endpoint') {
                const webrtc = yes(first(s, 'webrtc'));
                const fields = {
                    Event: 'EndpointDetail', ObjectType: 'endpoint', ObjectName: s.name,
                    Context: first(s, 'context') || 'default', Allow: codecs(s), DtmfMode: first(s, 'dtmf_mode') || 'rfc4733',
                    Transport: first(s, 'transport'), Aors: first(s, 'aors'), Auth: first(s, 'auth'), OutboundAuth: first(s, 'outbound_auth'),
                    Callerid: first(s, 'callerid'), Mailboxes: first(s, 'mailboxes'),
                    MediaEncryption: webrtc ? 'dtls' : first(s, 'media_encryption') || 'no',
                    CallGroup: printGroup(first(s, 'call_group')), PickupGroup: printGroup(first(s, 'pickup_group')),
                    Language: first(s, 'language'), Webrtc: webrtc ? 'yes' : 'no', DeviceState: 'Unavailable', ActiveChannels: '0',
                };
                endpoints.set(s.name, { fields, aors: splitList(fields['Aors']), auths: splitList(fields['Auth']), transport: fields['Transport'] });
            }
            else if (s.type === 'aor') {
                aors.set(s.name, {
                    Event: 'AorDetail', ObjectType: 'aor', ObjectName: s.name, MinimumExpiration: '60', MaximumExpiration: first(s, 'maximum_expiration') || '7200',
                    DefaultExpiration: first(s, 'default_expiration') || '3600', QualifyFrequency: first(s, 'qualify_frequency') || '0',
                    MaxContacts: first(s, 'max_contacts') || '0', RemoveExisting: yes(first(s, 'remove_existing')) ? 'true' : 'false', Mailboxes: first(s, 'mailboxes'),
                    TotalContacts: '0', ContactsRegistered: '0',
                });
            }
            else if (s.type === 'auth') {
                auths.set(s.name, { Event: 'AuthDetail', ObjectType: 'auth', ObjectName: s.name, Username: first(s, 'username'), AuthType: first(s, 'md5_cred') ? 'md5' : 'userpass', Realm: first(s, 'realm') });
            }
            else if (s.type === 'transport') {
                transports.set(s.name, { Event: 'TransportDetail', ObjectType: 'transport', ObjectName: s.name, Protocol: first(s, 'protocol') || 'udp', Bind: first(s, 'bind') });
            }
            else if (s.type === 'identify') {
                const ep = first(s, 'endpoint');
                const list = identifies.get(ep) ?? [];
                list.push({ Event: 'IdentifyDetail', ObjectType: 'identify', ObjectName: s.name, Endpoint: ep, Match: (s.values.get('match') ?? []).join(',') });
                identifies.set(ep, list);
            }
        }
        this.endpoints = endpoints;
        this.aors = aors;
        this.auths = auths;
        this.transports = transports;
        this.identifies = identifies;
    }
    async loadVoicemail() {
        const boxes = [];
        for (const s of parseConf(await this.read(VOICEMAIL_FILE))) {
            if (s.name === 'general' || s.name === 'zonemessages')
                continue;
            for (const [box, values] of s.values) {
                for (const v of values) {
                    const [, fullname = '', email = '', pager = ''] = v.split(',');
                    boxes.push({ Event: 'VoicemailUserEntry', VMContext: s.name, VoiceMailbox: box, Fullname: fullname, Email: email, Pager: pager, NewMessageCount: '0', OldMessageCount: '0' });
                }
            }
        }
        this.mailboxes = boxes;
    }
    showEndpoint(socket, rec, raw) {
        const name = raw.replace(/^pjsip\//i, '');
        if (!name) {
            this.answer(socket, rec, { Response: 'Error', Message: 'PJSIPShowEndpoint requires an endpoint name' });
            return;
        }
        const ep = this.endpoints.get(name);
        if (!ep) {
            this.answer(socket, rec, { Response: 'Error', Message: `Unable to retrieve endpoint ${name}` });
            return;
        }
        const events = [ep.fields];
        for (const a of ep.aors) {
            const aor = this.aors.get(a);
            if (aor)
                events.push({ ...aor, EndpointName: name });
        }
        for (const a of ep.auths) {
            const auth = this.auths.get(a);
            if (auth)
                events.push({ ...auth, EndpointName: name });
        }
        const transport = this.transports.get(ep.transport);
        if (transport)
            events.push({ ...transport, EndpointName: name });
        for (const id of this.identifies.get(name) ?? [])
            events.push({ ...id, EndpointName: name });
        this.answer(socket, rec, { Response: 'Success', Message: 'Following are Events for each object associated with the Endpoint' }, events, 'EndpointDetailComplete');
    }
}
//# sourceMappingURL=fake-ami.js.map