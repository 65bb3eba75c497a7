/**
 * A fake Asterisk for apply tests: a FakeAmiServer plus a config directory and the object state
 * Asterisk builds from it. `Reload` with `Module:` re-reads that module's switchboard file the way
 * Asterisk 20 does (res_sorcery_config, chan_sip, app_voicemail), and the show/list actions answer
 * with the event and field names of Asterisk's AMI docs (core-en_US.asterisk-20.xml) and the value
 * formats of its source: codecs `(ulaw|alaw)`, groups `1, 3, 4, 5`, `SIP-Encryption: Y`.
 *
 * Reload behaviour mirrored:
 * - pjsip: an unparsable file, or two objects of one type with the same name, keeps every old
 *   object. An object with an unknown option, an unknown codec, a bad media_encryption, a short
 *   md5_cred, or an identify without endpoint is not created; if it existed, its old config is
 *   retained ("Retaining existing configuration…"). Transports are not reloadable: a changed one
 *   keeps its old values. A missing file counts as empty.
 * - chan_sip (reloads in the background: applied `sipReloadDelayMs` after the answer): unknown
 *   keys are ignored, unknown codecs skipped with a warning, a section without `type` skipped.
 * - app_voicemail: `box => pin,name,email,pager,options` per context.
 *
 * Test controls: refuseOption(key) (pjsip objects holding it fail), refusePeerOption(key) (chan_sip
 * ignores it), dropEndpoint(name) (the endpoint is gone after the next pjsip reload, old config not
 * retained), reloadInProgress(n), hangOn(action, n), dropOn(action, n).
 *
 * Deliberately independent of src/ (its own config parser), so an apply bug is not mirrored here.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { FakeAmiServer, header, type AmiMessage, type FakeAmiServerOptions, type FakeHandler, type FakeReply } from './ami-server.js';

export const FILES = {
  pjsip: 'pjsip_switchboard.conf',
  sip: 'sip_switchboard.conf',
  voicemail: 'voicemail_switchboard.conf',
  extensions: 'extensions_switchboard.conf',
} as const;

const ALL_MODULES = ['res_pjsip.so', 'chan_sip.so', 'app_voicemail.so', 'pbx_config.so'];

// ------------------------------------------------------------------------------------------------
// Config parser

export interface ConfSection {
  name: string;
  /** `(!)`, `(+)`, `(tpl1,tpl2)` */
  opts?: string;
  entries: { key: string; value: string; line: number }[];
  line: number;
}

export type ParseResult = { ok: true; sections: ConfSection[] } | { ok: false; error: string };

export function parseConfig(text: string): ParseResult {
  const sections: ConfSection[] = [];
  let cur: ConfSection | undefined;
  let block = false;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.replace(/\r$/, '');
    let out = '';
    for (let j = 0; j < line.length; j++) {
      if (block) {
        if (line.startsWith('--;', j)) {
          block = false;
          j += 2;
        }
        continue;
      }
      const c = line[j]!;
      if (c === '\\' && line[j + 1] === ';') {
        out += ';';
        j++;
      } else if (c === ';') {
        if (line.startsWith(';--', j)) {
          block = true;
          j += 2;
          continue;
        }
        break;
      } else {
        out += c;
      }
    }
    line = out.trim();
    if (!line) continue;
    if (line.startsWith('#')) return { ok: false, error: `line ${i + 1}: directive not supported by the fake` };
    const sec = /^\[([^\]]+)\](?:\(([^)]*)\))?$/.exec(line);
    if (sec) {
      cur = { name: sec[1]!.trim(), ...(sec[2] !== undefined ? { opts: sec[2] } : {}), entries: [], line: i + 1 };
      sections.push(cur);
      continue;
    }
    const kv = /^([^=]+?)\s*=>?\s*(.*)$/.exec(line);
    if (!kv) return { ok: false, error: `line ${i + 1}: cannot parse ${JSON.stringify(line)}` };
    if (!cur) return { ok: false, error: `line ${i + 1}: option outside a category` };
    cur.entries.push({ key: kv[1]!.trim(), value: kv[2]!.trim(), line: i + 1 });
  }
  if (block) return { ok: false, error: 'unterminated block comment' };
  // Templates: `[x](!)` is a template, `[y](x)` inherits x's options first.
  const templates = new Map<string, ConfSection>();
  const result: ConfSection[] = [];
  for (const s of sections) {
    const opts = (s.opts ?? '').split(',').map((o) => o.trim()).filter(Boolean);
    const inherited = opts.filter((o) => o !== '!' && o !== '+').flatMap((o) => templates.get(o)?.entries ?? []);
    const full = { ...s, entries: [...inherited, ...s.entries] };
    if (opts.includes('!')) templates.set(s.name, full);
    else result.push(full);
  }
  return { ok: true, sections: result };
}

/** ast_to_camel_case: `call_group` → `CallGroup`. */
function camel(key: string): string {
  return key
    .split('_')
    .map((p) => (p ? p[0]!.toUpperCase() + p.slice(1) : p))
    .join('');
}

const KNOWN_CODECS = new Set(['ulaw', 'alaw', 'gsm', 'g722', 'g729', 'g726', 'g723', 'ilbc', 'speex', 'opus', 'slin', 'lpc10', 'adpcm', 'h261', 'h263', 'h263p', 'h264', 'h265', 'vp8', 'vp9', 't140', 'red', 'siren7', 'siren14']);

/** ast_print_group: `1, 3, 4, 5` (or '' for none). */
function printGroup(groups: Set<number>): string {
  return [...groups].sort((a, b) => a - b).join(', ');
}

/** ast_get_group: numbers and ranges, >63 ignored with a warning, `5-3` silently empty. */
function parseGroup(value: string, warn: (m: string) => void): Set<number> {
  const out = new Set<number>();
  for (const part of value.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+))?\s*$/.exec(part);
    if (!m) {
      if (part.trim()) warn(`Ignoring invalid group ${part.trim()}`);
      continue;
    }
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    for (let g = a; g <= b; g++) {
      if (g > 63) warn(`Ignoring invalid group ${g} (maximum group is 63)`);
      else out.add(g);
    }
  }
  return out;
}

/** disallow/allow in order; unknown codec → error (pjsip) or skipped (chan_sip). */
function applyCodecs(list: string[], key: string, value: string, onUnknown: (c: string) => void): string[] {
  let out = [...list];
  for (const raw of value.split(/[,|]/)) {
    const c = raw.trim().toLowerCase();
    if (!c) continue;
    if (c === 'all') {
      out = key === 'disallow' ? [] : [...KNOWN_CODECS].filter((x) => !['h261', 'h263', 'h263p', 'h264', 'h265', 'vp8', 'vp9', 't140', 'red'].includes(x));
      continue;
    }
    if (!KNOWN_CODECS.has(c)) {
      onUnknown(c);
      continue;
    }
    out = out.filter((x) => x !== c);
    if (key === 'allow') out.push(c);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// pjsip

const PJSIP_KEYS: Record<string, Set<string>> = {
  endpoint: new Set([
    'type', 'transport', 'context', 'disallow', 'allow', 'aors', 'auth', 'outbound_auth', 'callerid', 'mailboxes', 'call_group', 'pickup_group',
    'named_call_group', 'named_pickup_group', 'language', 'direct_media', 'rtp_symmetric', 'force_rport', 'rewrite_contact', 'media_encryption',
    'webrtc', 'dtls_auto_generate_cert', 'set_var', 'deny', 'permit', 'acl', 'dtmf_mode', 'ice_support', 'use_avpf', 'rtcp_mux', 'bundle',
    'max_audio_streams', 'max_video_streams', 'trust_id_inbound', 'send_pai', 'from_user', 'from_domain', 'accountcode', 'device_state_busy_at',
    'dtls_verify', 'dtls_setup', 'dtls_cert_file', 'dtls_private_key', 'media_use_received_transport', 'identify_by', 'voicemail_extension',
    'subscribe_context', 'allow_subscribe', '100rel', 'timers', 'moh_suggest', 'tone_zone', 'callerid_privacy', 'send_rpid',
  ]),
  aor: new Set([
    'type', 'max_contacts', 'remove_existing', 'remove_unavailable', 'qualify_frequency', 'qualify_timeout', 'default_expiration',
    'maximum_expiration', 'minimum_expiration', 'contact', 'mailboxes', 'authenticate_qualify', 'outbound_proxy', 'support_path', 'voicemail_extension',
  ]),
  auth: new Set(['type', 'auth_type', 'username', 'password', 'md5_cred', 'realm', 'nonce_lifetime']),
  identify: new Set(['type', 'endpoint', 'match', 'srv_lookups', 'match_header']),
  transport: new Set([
    'type', 'protocol', 'bind', 'external_media_address', 'external_signaling_address', 'external_signaling_port', 'local_net', 'cert_file',
    'priv_key_file', 'method', 'cipher', 'ca_list_file', 'verify_client', 'verify_server', 'require_client_cert', 'allow_reload', 'tos', 'cos',
    'password', 'domain', 'websocket_write_timeout',
  ]),
};

const BOOL_KEYS = new Set(['direct_media', 'rtp_symmetric', 'force_rport', 'rewrite_contact', 'ice_support', 'use_avpf', 'rtcp_mux', 'bundle', 'remove_existing', 'remove_unavailable', 'authenticate_qualify', 'support_path', 'trust_id_inbound', 'send_pai', 'send_rpid']);
const YESNO_KEYS = new Set(['webrtc', 'dtls_auto_generate_cert', 'allow_reload']);

export interface PjsipObject {
  type: string;
  name: string;
  /** AMI fields (CamelCase), formatted as Asterisk prints them. */
  fields: Record<string, string>;
  /** Raw options as written (repeated keys kept). */
  options: [string, string][];
}

function endpointDefaults(): Record<string, string> {
  return {
    Context: 'default', Allow: '(nothing)', DtmfMode: 'rfc4733', RtpSymmetric: 'false', ForceRport: 'true', RewriteContact: 'false', Transport: '',
    Aors: '', Auth: '', OutboundAuth: '', DirectMedia: 'true', Callerid: '', Mailboxes: '', MediaEncryption: 'no', CallGroup: '', PickupGroup: '',
    NamedCallGroup: '', NamedPickupGroup: '', Language: '', Webrtc: 'no', DtlsAutoGenerateCert: 'no', UseAvpf: 'false', IceSupport: 'false',
    RtcpMux: 'false', Bundle: 'false', DeviceStateBusyAt: '0', Accountcode: '', SetVar: '',
  };
}

function aorDefaults(): Record<string, string> {
  return {
    MinimumExpiration: '60', MaximumExpiration: '7200', DefaultExpiration: '3600', QualifyFrequency: '0', QualifyTimeout: '3.000000',
    AuthenticateQualify: 'false', MaxContacts: '0', RemoveExisting: 'false', RemoveUnavailable: 'false', Mailboxes: '', VoicemailExtension: '',
    OutboundProxy: '', SupportPath: 'false', Contacts: '',
  };
}

function authDefaults(): Record<string, string> {
  return { Username: '', Password: '', Md5Cred: '', Realm: '', NonceLifetime: '32', AuthType: 'userpass' };
}

// ------------------------------------------------------------------------------------------------

export interface SipPeer {
  name: string;
  type: string;
  context: string;
  codecs: string[];
  callGroup: Set<number>;
  pickupGroup: Set<number>;
  mailbox: string;
  encryption: boolean;
  secret: string;
  md5secret: string;
  dynamic: boolean;
  host: string;
  language: string;
  callerid: string;
  videosupport: boolean;
  setvars: string[];
  nat: string;
}

export interface VoicemailBox {
  context: string;
  mailbox: string;
  pin: string;
  fullname: string;
  email: string;
  pager: string;
  options: Record<string, string>;
}

export interface FakeAsteriskOptions extends FakeAmiServerOptions {
  configDir: string;
  /** Loaded modules (default: res_pjsip.so, chan_sip.so, app_voicemail.so, pbx_config.so). */
  modules?: string[];
  /** chan_sip applies a reload this long after answering (default 20 ms). */
  sipReloadDelayMs?: number;
}

export class FakeAsterisk {
  readonly ami: FakeAmiServer;
  /** Asterisk-style log lines (`ERROR: …`, `WARNING: …`, `NOTICE: …`). */
  readonly log: string[] = [];
  /** Every successful Reload's Module ('(all)' for a bare Reload), in order. */
  readonly reloads: string[] = [];
  readonly pjsip = new Map<string, Map<string, PjsipObject>>(Object.keys(PJSIP_KEYS).map((t) => [t, new Map()]));
  readonly peers = new Map<string, SipPeer>();
  /** Keyed `box@context`. */
  readonly mailboxes = new Map<string, VoicemailBox>();
  readonly dialplan = new Map<string, number>();
  private readonly modules: string[];
  private readonly refused = new Set<string>();
  private readonly refusedPeer = new Set<string>();
  private readonly dropped = new Set<string>();
  private inProgress = 0;
  private readonly hang = new Map<string, number>();
  private readonly drop = new Map<string, number>();
  private sipTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: FakeAsteriskOptions) {
    this.ami = new FakeAmiServer(opts);
    this.modules = opts.modules ?? ALL_MODULES;
    this.install();
  }

  /** Loads every module's file (as at Asterisk start-up), then listens. */
  async start(): Promise<number> {
    await this.loadPjsip();
    if (this.modules.includes('chan_sip.so')) await this.loadSip();
    await this.loadVoicemail();
    await this.loadDialplan();
    return this.ami.start();
  }

  async stop(): Promise<void> {
    if (this.sipTimer) clearTimeout(this.sipTimer);
    await this.ami.stop();
  }

  // ---- test controls

  /** pjsip objects holding `key` fail to load (like an option Asterisk does not know). */
  refuseOption(key: string): this {
    this.refused.add(key.toLowerCase());
    return this;
  }
  /** chan_sip silently ignores `key`. */
  refusePeerOption(key: string): this {
    this.refusedPeer.add(key.toLowerCase());
    return this;
  }
  /** From the next pjsip reload on, endpoint `name` is not created and its old config not kept. */
  dropEndpoint(name: string): this {
    this.dropped.add(name);
    return this;
  }
  /** The next `times` Reloads answer "A reload is in progress". */
  reloadInProgress(times: number): this {
    this.inProgress = times;
    return this;
  }
  /** The next `times` `action`s get no answer. */
  hangOn(action: string, times = 1): this {
    this.hang.set(action.toLowerCase(), times);
    return this;
  }
  /** The next `times` `action`s drop the connection (before anything is done). */
  dropOn(action: string, times = 1): this {
    this.drop.set(action.toLowerCase(), times);
    return this;
  }
  clearControls(): this {
    this.refused.clear();
    this.refusedPeer.clear();
    this.dropped.clear();
    this.inProgress = 0;
    this.hang.clear();
    this.drop.clear();
    return this;
  }

  // ---- state lookups for assertions

  endpoint(name: string): PjsipObject | undefined {
    return this.pjsip.get('endpoint')!.get(name);
  }
  object(type: string, name: string): PjsipObject | undefined {
    return this.pjsip.get(type)?.get(name);
  }
  endpointNames(): string[] {
    return [...this.pjsip.get('endpoint')!.keys()].sort();
  }
  /** Actions received with this name (case-insensitive). */
  actionsNamed(name: string): AmiMessage[] {
    return this.ami.actions().filter((m) => header(m, 'Action')?.toLowerCase() === name.toLowerCase());
  }
  /** Resolves once chan_sip finished a background reload (if one is pending). */
  async sipSettled(): Promise<void> {
    while (this.sipTimer) await new Promise((r) => setTimeout(r, 5));
  }

  // ---------------------------------------------------------------------------------------------

  private handle(action: string, fn: FakeHandler): void {
    const key = action.toLowerCase();
    this.ami.on(action, (msg, ctx) => {
      const d = this.drop.get(key) ?? 0;
      if (d > 0) {
        this.drop.set(key, d - 1);
        return { drop: true, noResponse: true };
      }
      const h = this.hang.get(key) ?? 0;
      if (h > 0) {
        this.hang.set(key, h - 1);
        return { hang: true };
      }
      return fn(msg, ctx);
    });
  }

  private install(): void {
    this.handle('Reload', async (msg) => {
      if (this.inProgress > 0) {
        this.inProgress -= 1;
        return { response: { Response: 'Error', Message: 'A reload is in progress' } };
      }
      const module = header(msg, 'Module');
      if (!module) {
        this.reloads.push('(all)');
        await this.loadPjsip();
        if (this.modules.includes('chan_sip.so')) await this.loadSip();
        await this.loadVoicemail();
        await this.loadDialplan();
        return { response: { Response: 'Success', Message: 'Module Reloaded' } };
      }
      if (!this.modules.includes(module)) return { response: { Response: 'Error', Message: 'No such module' } };
      if (module === 'res_pjsip.so') await this.loadPjsip();
      else if (module === 'chan_sip.so') this.scheduleSipReload();
      else if (module === 'app_voicemail.so') await this.loadVoicemail();
      else if (module === 'pbx_config.so') await this.loadDialplan();
      this.reloads.push(module);
      return { response: { Response: 'Success', Message: 'Module Reloaded' } };
    });
    this.handle('PJSIPShowEndpoint', (msg) => this.showEndpoint(msg));
    this.handle('PJSIPShowEndpoints', () => this.showEndpoints());
    this.handle('PJSIPShowAors', () => this.showList('aor', 'AorList', 'AorListComplete', 'No AORs found', 'A listing of AORs follows, presented as AorList events'));
    this.handle('PJSIPShowAuths', () => this.showList('auth', 'AuthList', 'AuthListComplete', 'No Auths found', 'A listing of Auths follows, presented as AuthList events'));
    this.handle('SIPshowpeer', (msg) => this.showPeer(msg));
    this.handle('SIPpeers', () => this.sipPeers());
    this.handle('VoicemailUsersList', () => this.voicemailUsers());
  }

  private async read(file: string): Promise<string> {
    try {
      return await fs.readFile(path.join(this.opts.configDir, file), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw err;
    }
  }

  /** The file's sections (a missing file is empty); undefined, with Asterisk's log line, when it cannot be parsed. */
  private async readSections(file: string, onError = ''): Promise<ConfSection[] | undefined> {
    const parsed = parseConfig(await this.read(file));
    if (parsed.ok) return parsed.sections;
    this.log.push(`ERROR: Contents of ${file} are invalid and cannot be parsed (${parsed.error})${onError}`);
    return undefined;
  }

  // ---- pjsip

  private async loadPjsip(): Promise<void> {
    const file = FILES.pjsip;
    const sections = await this.readSections(file, '; keeping the previous objects');
    if (!sections) return;
    const next = new Map<string, Map<string, PjsipObject>>(Object.keys(PJSIP_KEYS).map((t) => [t, new Map()]));
    for (const s of sections) {
      const typeEntry = s.entries.find((e) => e.key.toLowerCase() === 'type');
      if (!typeEntry) {
        this.log.push(`ERROR: No 'type' was specified for category '${s.name}' in ${file}`);
        continue;
      }
      const type = typeEntry.value.toLowerCase();
      const bucket = next.get(type);
      if (!bucket) {
        this.log.push(`ERROR: Could not create an object of type '${type}' with id '${s.name}' from configuration file '${file}'`);
        continue;
      }
      if (bucket.has(s.name)) {
        this.log.push(`ERROR: Config file '${file}' could not be loaded; configuration contains a duplicate object: '${s.name}' of type '${type}'`);
        return;
      }
      const built = this.buildPjsip(type, s, file);
      const old = this.pjsip.get(type)!.get(s.name);
      if (built) {
        bucket.set(s.name, type === 'transport' && old ? this.keepTransport(old, built) : built);
        continue;
      }
      this.log.push(`ERROR: Could not create an object of type '${type}' with id '${s.name}' from configuration file '${file}'`);
      if (old && !(type === 'endpoint' && this.dropped.has(s.name))) {
        this.log.push(`NOTICE: Retaining existing configuration for object of type '${type}' with id '${s.name}'`);
        bucket.set(s.name, old);
      }
    }
    for (const [type, bucket] of next) this.pjsip.set(type, bucket);
  }

  private keepTransport(old: PjsipObject, built: PjsipObject): PjsipObject {
    const same = JSON.stringify(old.options) === JSON.stringify(built.options);
    if (!same && old.fields.AllowReload !== 'yes') {
      this.log.push(`WARNING: Transport '${old.name}' is not reloadable, maintaining previous values`);
      return old;
    }
    return built;
  }

  private buildPjsip(type: string, s: ConfSection, file: string): PjsipObject | undefined {
    const known = PJSIP_KEYS[type]!;
    const fields: Record<string, string> =
      type === 'endpoint' ? endpointDefaults() : type === 'aor' ? aorDefaults() : type === 'auth' ? authDefaults() : {};
    const options: [string, string][] = [];
    let codecs: string[] = [];
    const setVars: string[] = [];
    let webrtc = false;
    let ok = true;
    const fail = (msg: string): void => {
      this.log.push(`ERROR: ${msg}`);
      ok = false;
    };
    if (type === 'endpoint' && this.dropped.has(s.name)) fail(`(test) endpoint '${s.name}' dropped`);
    for (const { key: rawKey, value, line } of s.entries) {
      const key = rawKey.toLowerCase();
      options.push([key, value]);
      if (key === 'type') continue;
      if (!known.has(key) || this.refused.has(key)) {
        fail(`Could not find option suitable for category '${s.name}' named '${rawKey}' at line ${line} of ${file}`);
        continue;
      }
      if (key === 'allow' || key === 'disallow') {
        codecs = applyCodecs(codecs, key, value, (c) => fail(`Cannot ${key} unknown format '${c}'`));
        continue;
      }
      if (key === 'call_group' || key === 'pickup_group') {
        fields[camel(key)] = printGroup(parseGroup(value, (m) => this.log.push(`WARNING: ${m}`)));
        continue;
      }
      if (key === 'media_encryption') {
        if (!['no', 'sdes', 'dtls'].includes(value)) fail(`Error parsing ${key}=${value} at line ${line} of ${file}`);
        fields.MediaEncryption = value;
        continue;
      }
      if (key === 'set_var') {
        setVars.push(value);
        continue;
      }
      if (key === 'md5_cred' && value.length !== 32) {
        fail(`md5_cred for auth '${s.name}' must be 32 characters long`);
        continue;
      }
      if (BOOL_KEYS.has(key)) {
        fields[camel(key)] = /^(yes|true|y|t|1|on)$/i.test(value) ? 'true' : 'false';
        continue;
      }
      if (YESNO_KEYS.has(key)) {
        const on = /^(yes|true|y|t|1|on)$/i.test(value);
        fields[camel(key)] = on ? 'yes' : 'no';
        if (key === 'webrtc') webrtc = on;
        continue;
      }
      if (key === 'local_net' || key === 'deny' || key === 'permit') {
        fields[camel(key)] = fields[camel(key)] ? `${fields[camel(key)]},${value}` : value;
        continue;
      }
      fields[camel(key)] = value;
    }
    if (type === 'endpoint') {
      fields.Allow = `(${codecs.length ? codecs.join('|') : 'nothing'})`;
      fields.SetVar = setVars.join(',');
      if (webrtc) {
        // pjsip_configuration.c: webrtc=yes forces DTLS (overriding sdes), AVPF, ICE, rtcp-mux, bundle.
        Object.assign(fields, { MediaEncryption: 'dtls', UseAvpf: 'true', IceSupport: 'true', RtcpMux: 'true', Bundle: 'true' });
      }
    }
    if (type === 'auth' && fields.Md5Cred) fields.AuthType = 'md5';
    if (type === 'identify' && !fields.Endpoint) fail(`Identify '${s.name}' missing required endpoint name`);
    if (type === 'transport' && !['udp', 'tcp', 'tls', 'ws', 'wss'].includes(fields.Protocol ?? 'udp')) fail(`Transport '${s.name}': invalid protocol`);
    return ok ? { type, name: s.name, fields, options } : undefined;
  }

  private showEndpoint(msg: AmiMessage): FakeReply {
    let name = header(msg, 'Endpoint') ?? '';
    if (!name) return { response: { Response: 'Error', Message: 'PJSIPShowEndpoint requires an endpoint name' } };
    if (/^pjsip\//i.test(name)) name = name.slice(6);
    const ep = this.endpoint(name);
    if (!ep) return { response: { Response: 'Error', Message: `Unable to retrieve endpoint ${name}` } };
    const events: AmiMessage[] = [];
    const detail = { ...ep.fields, SetVar: ep.options.filter(([k]) => k === 'set_var').map(([, v]) => v).join('\n') || '' };
    events.push({ Event: 'EndpointDetail', ObjectType: 'endpoint', ObjectName: name, ...detail, DeviceState: 'Unavailable', ActiveChannels: '0' });
    for (const aorName of splitList(ep.fields.Aors ?? '')) {
      const aor = this.object('aor', aorName);
      if (!aor) continue;
      events.push({ Event: 'AorDetail', ObjectType: 'aor', ObjectName: aorName, ...aor.fields, TotalContacts: aor.fields.Contact ? '1' : '0', ContactsRegistered: '0', EndpointName: name });
    }
    for (const authName of [...splitList(ep.fields.Auth ?? ''), ...splitList(ep.fields.OutboundAuth ?? '')]) {
      const auth = this.object('auth', authName);
      if (!auth) continue;
      events.push({ Event: 'AuthDetail', ObjectType: 'auth', ObjectName: authName, ...auth.fields, EndpointName: name });
    }
    const transport = ep.fields.Transport ? this.object('transport', ep.fields.Transport) : undefined;
    if (transport) events.push({ Event: 'TransportDetail', ObjectType: 'transport', ObjectName: transport.name, ...transport.fields, EndpointName: name });
    for (const id of this.pjsip.get('identify')!.values()) {
      if (id.fields.Endpoint === name) events.push({ Event: 'IdentifyDetail', ObjectType: 'identify', ObjectName: id.name, ...id.fields, EndpointName: name });
    }
    return {
      response: { Response: 'Success', Message: 'Following are Events for each object associated with the Endpoint' },
      events,
      listComplete: 'EndpointDetailComplete',
    };
  }

  private showEndpoints(): FakeReply {
    const eps = [...this.pjsip.get('endpoint')!.values()];
    if (!eps.length) return { response: { Response: 'Error', Message: 'No endpoints found' } };
    return {
      response: { Response: 'Success', Message: 'A listing of Endpoints follows, presented as EndpointList events' },
      events: eps.map((ep) => ({
        Event: 'EndpointList',
        ObjectType: 'endpoint',
        ObjectName: ep.name,
        Transport: ep.fields.Transport ?? '',
        Aor: ep.fields.Aors ?? '',
        Auths: ep.fields.Auth ?? '',
        OutboundAuths: ep.fields.OutboundAuth ?? '',
        Contacts: '',
        DeviceState: 'Unavailable',
        ActiveChannels: '0',
      })),
      listComplete: 'EndpointListComplete',
    };
  }

  private showList(type: string, event: string, complete: string, empty: string, message: string): FakeReply {
    const objs = [...this.pjsip.get(type)!.values()];
    if (!objs.length) return { response: { Response: 'Error', Message: empty } };
    return {
      response: { Response: 'Success', Message: message },
      events: objs.map((o) => ({ Event: event, ObjectType: type, ObjectName: o.name, ...o.fields })),
      listComplete: complete,
    };
  }

  // ---- chan_sip

  private scheduleSipReload(): void {
    if (this.sipTimer) return; // a pending reload will read the file anyway
    this.sipTimer = setTimeout(() => {
      void this.loadSip().finally(() => {
        this.sipTimer = undefined;
      });
    }, this.opts.sipReloadDelayMs ?? 20);
  }

  private async loadSip(): Promise<void> {
    const file = FILES.sip;
    const sections = await this.readSections(file);
    if (!sections) return;
    const next = new Map<string, SipPeer>();
    for (const s of sections) {
      if (s.name === 'general' || s.name === 'authentication') continue;
      const type = s.entries.find((e) => e.key.toLowerCase() === 'type')?.value.toLowerCase();
      if (!type || !['friend', 'peer', 'user'].includes(type)) {
        this.log.push(`WARNING: Section '${s.name}' lacks type`);
        continue;
      }
      const peer: SipPeer = {
        name: s.name, type, context: 'default', codecs: ['ulaw', 'alaw', 'gsm', 'h263'], callGroup: new Set(), pickupGroup: new Set(), mailbox: '',
        encryption: false, secret: '', md5secret: '', dynamic: false, host: '', language: '', callerid: '', videosupport: false, setvars: [], nat: 'force_rport',
      };
      for (const { key: rawKey, value } of s.entries) {
        const key = rawKey.toLowerCase();
        if (this.refusedPeer.has(key)) {
          this.log.push(`WARNING: (test) chan_sip ignores '${rawKey}' for peer '${s.name}'`);
          continue;
        }
        const warn = (m: string) => this.log.push(`WARNING: ${m}`);
        switch (key) {
          case 'allow':
          case 'disallow':
            peer.codecs = applyCodecs(peer.codecs, key, value, (c) => warn(`Cannot ${key} unknown format '${c}' for peer '${s.name}'`));
            break;
          case 'context': peer.context = value; break;
          case 'callgroup': peer.callGroup = parseGroup(value, warn); break;
          case 'pickupgroup': peer.pickupGroup = parseGroup(value, warn); break;
          case 'mailbox': peer.mailbox = value; break;
          case 'encryption': peer.encryption = /^(yes|true|1|on)$/i.test(value); break;
          case 'secret': peer.secret = value; break;
          case 'md5secret': peer.md5secret = value; break;
          case 'host': peer.host = value; peer.dynamic = value === 'dynamic'; break;
          case 'language': peer.language = value; break;
          case 'callerid': peer.callerid = value; break;
          case 'videosupport': peer.videosupport = /^(yes|true|1|on)$/i.test(value); break;
          case 'setvar': peer.setvars.push(value); break;
          case 'nat': peer.nat = value; break;
          default: break; // chan_sip ignores what it does not know
        }
      }
      if (!peer.videosupport) peer.codecs = peer.codecs.filter((c) => !['h261', 'h263', 'h263p', 'h264', 'h265', 'vp8', 'vp9'].includes(c));
      next.set(s.name, peer);
    }
    this.peers.clear();
    for (const [k, v] of next) this.peers.set(k, v);
  }

  private showPeer(msg: AmiMessage): FakeReply {
    const name = header(msg, 'Peer') ?? '';
    if (!name) return { response: { Response: 'Error', Message: 'Peer: <name> missing.' } };
    const p = this.peers.get(name);
    // sip_find_peer(…, FINDPEERS, …) never returns a type=user.
    if (!p || p.type === 'user') return { response: { Response: 'Error', Message: `Peer ${name} not found.` } };
    const yn = (b: boolean) => (b ? 'Y' : 'N');
    const natWords = p.nat.split(',').map((w) => w.trim());
    const response: AmiMessage = {
      Response: 'Success',
      Channeltype: 'SIP',
      ObjectName: p.name,
      ChanObjectType: 'peer',
      SecretExist: yn(!!p.secret),
      RemoteSecretExist: 'N',
      MD5SecretExist: yn(!!p.md5secret),
      Context: p.context,
      Language: p.language,
      ToneZone: '<Not set>',
      AMAflags: 'Unknown',
      'CID-CallingPres': 'Presentation Allowed, Not Screened',
      Callgroup: printGroup(p.callGroup),
      Pickupgroup: printGroup(p.pickupGroup),
      'Named Callgroup': '',
      'Named Pickupgroup': '',
      MOHSuggest: '',
      VoiceMailbox: p.mailbox,
      TransferMode: 'open',
      LastMsgsSent: '0',
      Maxforwards: '0',
      'Call-limit': '2147483647',
      'Busy-level': '0',
      MaxCallBR: '384 kbps',
      Dynamic: yn(p.dynamic),
      Callerid: p.callerid,
      RegExpire: '-1 seconds',
      'SIP-AuthInsecure': 'no',
      'SIP-Forcerport': yn(natWords.includes('force_rport') || natWords.includes('yes')),
      'SIP-Comedia': yn(natWords.includes('comedia') || natWords.includes('yes')),
      ACL: 'N',
      'SIP-CanReinvite': 'Y',
      'SIP-DirectMedia': 'Y',
      'SIP-PromiscRedir': 'N',
      'SIP-UserPhone': 'N',
      'SIP-VideoSupport': yn(p.videosupport),
      'SIP-TextSupport': 'N',
      'SIP-T.38Support': 'N',
      'SIP-T.38EC': 'Unknown',
      'SIP-T.38MaxDtgrm': '4294967295',
      'SIP-Sess-Timers': 'Accept',
      'SIP-Sess-Refresh': 'uas',
      'SIP-Sess-Expires': '1800',
      'SIP-Sess-Min': '90',
      'SIP-RTP-Engine': 'asterisk',
      'SIP-Encryption': yn(p.encryption),
      'SIP-RTCP-Mux': 'N',
      'SIP-DTMFmode': 'rfc2833',
      ToHost: '',
      'Address-IP': '(null)',
      'Address-Port': '0',
      'Default-addr-IP': '(null)',
      'Default-addr-port': '0',
      'Default-Username': '',
      Codecs: `(${p.codecs.length ? p.codecs.join('|') : 'nothing'})`,
      Status: 'Unmonitored',
      'SIP-Useragent': '',
      'Reg-Contact': '',
      QualifyFreq: '60000 ms',
      Parkinglot: '',
      ...(p.setvars.length ? { ChanVariable: p.setvars.join('\n') } : {}),
      'SIP-Use-Reason-Header': 'N',
      Description: '',
    };
    return { response };
  }

  private sipPeers(): FakeReply {
    const peers = [...this.peers.values()].filter((p) => p.type !== 'user');
    return {
      response: { Response: 'Success', Message: 'Peer status list will follow' },
      events: peers.map((p) => ({
        Event: 'PeerEntry', Channeltype: 'SIP', ObjectName: p.name, ChanObjectType: 'peer', IPaddress: '-none-', IPport: '0', Dynamic: p.dynamic ? 'yes' : 'no',
        AutoForcerport: 'no', Forcerport: 'yes', AutoComedia: 'no', Comedia: 'no', VideoSupport: p.videosupport ? 'yes' : 'no', TextSupport: 'no', ACL: 'no',
        Status: 'Unmonitored', RealtimeDevice: 'no', Description: '', Accountcode: '',
      })),
      listComplete: 'PeerlistComplete',
    };
  }

  // ---- app_voicemail

  private async loadVoicemail(): Promise<void> {
    const file = FILES.voicemail;
    const sections = await this.readSections(file);
    if (!sections) return;
    const next = new Map<string, VoicemailBox>();
    for (const s of sections) {
      if (['general', 'zonemessages'].includes(s.name)) continue;
      for (const { key, value } of s.entries) {
        const [pin = '', fullname = '', email = '', pager = '', opts = ''] = value.split(',');
        const options: Record<string, string> = {};
        for (const o of opts.split('|').filter(Boolean)) {
          const [k, v = ''] = o.split('=');
          options[k!.trim()] = v.trim();
        }
        next.set(`${key}@${s.name}`, { context: s.name, mailbox: key, pin, fullname, email, pager, options });
      }
    }
    this.mailboxes.clear();
    for (const [k, v] of next) this.mailboxes.set(k, v);
  }

  private voicemailUsers(): FakeReply {
    const boxes = [...this.mailboxes.values()];
    if (!boxes.length) return { response: { Response: 'Success', Message: 'There are no voicemail users currently defined.' } };
    const yes = (v: string | undefined) => (/^(yes|true|1|on)$/i.test(v ?? '') ? 'Yes' : 'No');
    return {
      response: { Response: 'Success', Message: 'Voicemail user list will follow' },
      events: boxes.map((b) => ({
        Event: 'VoicemailUserEntry', VMContext: b.context, VoiceMailbox: b.mailbox, Fullname: b.fullname, Email: b.email, Pager: b.pager,
        ServerEmail: 'asterisk', FromString: 'The Asterisk PBX', MailCommand: '/usr/sbin/sendmail -t', Language: '', TimeZone: b.options.tz ?? '',
        Callback: '', Dialout: '', UniqueID: '', ExitContext: '', SayDurationMinimum: '2', SayEnvelope: yes(b.options.envelope), SayCID: yes(b.options.saycid),
        AttachMessage: yes(b.options.attach), AttachmentFormat: 'wav', DeleteMessage: yes(b.options.delete), VolumeGain: '0.00', CanReview: 'No',
        CanMarkUrgent: 'No', CallOperator: 'No', MaxMessageCount: '100', MaxMessageLength: '300', NewMessageCount: '0', OldMessageCount: '0',
      })),
      listComplete: 'VoicemailUserEntryComplete',
    };
  }

  // ---- pbx_config

  private async loadDialplan(): Promise<void> {
    const sections = await this.readSections(FILES.extensions);
    if (!sections) return;
    this.dialplan.clear();
    for (const s of sections) this.dialplan.set(s.name, s.entries.length);
  }
}

function splitList(v: string): string[] {
  return v.split(',').map((x) => x.trim()).filter(Boolean);
}
