import { IssueList } from './issues.js';
import { FieldReader, listed, type SourceDoc } from './reader.js';
import { RE, freeTextProblem, isHostAddress, isIanaTimezone, normaliseGroups, passwordPolicyProblem, secretSyntaxProblem } from './fields.js';
import { DIALPLAN_RESERVED, readCodecs, reservedName } from './settings.js';
import { backendFindings, digestRealm } from './backend.js';
import { parseNat } from './nat.js';
import {
  RECORDING_FORMATS, SIP_TYPES, TRANSPORT_PROTOCOLS, TYPOLOGIES,
  type Agent, type Codec, type NatWord, type Password, type Settings, type TransportProtocol, type TransportSettings, type Typology,
} from './types.js';

const AGENT_KEYS = ['id', 'username', 'firstName', 'lastName', 'displayName', 'alias', 'email', 'typology', 'enabled', 'extension', 'password', 'dids', 'cli', 'timezone', 'language', 'voice', 'voicemail', 'mobile'];
const VOICE_KEYS = ['transports', 'host', 'nat', 'type', 'codecs', 'callerId', 'context', 'callGroup', 'pickupGroup', 'chanspy', 'video', 'recordCalls', 'encryption', 'sipExpires', 'ringTimeoutSeconds'];

/** What each typology gets when the agent file leaves a voice field out (documented in the README). */
export const TYPOLOGY_DEFAULTS: Record<Typology, { transports: TransportProtocol[]; encryption: boolean; codecs?: Codec[]; nat?: NatWord[] }> = {
  phonebar: { transports: ['udp'], encryption: false },
  external: { transports: ['udp'], encryption: false },
  webrtc: { transports: ['wss'], encryption: true, codecs: ['opus', 'ulaw'], nat: ['force_rport', 'comedia'] },
  mobile: { transports: ['tcp'], encryption: false },
};

/**
 * Values that many agents share (time zone, language, context, host, groups, CLI), kept as one
 * string each instead of one copy per agent file. Bounded: emptied if it ever fills up.
 */
const sharedValues = new Map<string, string>();
function shared(s: string): string {
  let v = sharedValues.get(s);
  if (v === undefined) {
    if (sharedValues.size >= 4096) sharedValues.clear();
    sharedValues.set(s, (v = s));
  }
  return v;
}

/** An agent whose extension may still have to be assigned from the range. */
export type DraftAgent = Omit<Agent, 'extension' | 'extensionAutoAssigned'> & { extension?: string };

/**
 * Validates one agent file. Returns the normalised agent, or undefined when it has errors (all of
 * which are added to `issues`). Cross-agent rules (uniqueness, extension assignment) live in store.ts.
 */
export function validateAgent(doc: SourceDoc, settings: Settings, issues: IssueList): DraftAgent | undefined {
  const before = issues.errors.length;
  const label = labelOf(doc);
  const r = new FieldReader(doc, issues, label);
  if (doc.data === null || typeof doc.data !== 'object' || Array.isArray(doc.data)) {
    r.fail([], undefined, 'an agent file must be a mapping of fields (id, username, ...)', 'see fixtures/store/agents/ for examples', 'AGENT_NOT_A_MAPPING');
    return undefined;
  }
  r.knownKeys([], AGENT_KEYS);

  const id = readId(r);
  const username = r.text(['username'], { re: RE.username, rule: 'a username holds only letters, digits, "." and "_"', fix: 'e.g. username: alice.smith', required: true });
  if (username) {
    r.agent = label ?? username;
    const taken = usernameProblem(username, settings);
    if (taken) r.fail(['username'], username, taken.rule, taken.fix, 'USERNAME_RESERVED');
  }
  const name = (key: 'firstName' | 'lastName') =>
    r.text([key], { re: RE.personName, check: freeTextProblem, rule: 'names hold only letters, digits, spaces, apostrophe and hyphen', fix: `e.g. ${key}: ${key === 'firstName' ? 'Alice' : "O'Neil"}`, required: true });
  const firstName = name('firstName');
  const lastName = name('lastName');
  const displayName =
    r.text(['displayName'], {
      check: (s) => freeTextProblem(s) ?? (/[,|]/.test(s) ? 'holds "," or "|" (they split voicemail.conf fields)' : undefined),
      rule: 'the display name is shown as caller id and in voicemail',
      fix: 'use plain text without ; [ ] " < > , | or line breaks',
    }) ?? (firstName && lastName ? `${firstName} ${lastName}` : undefined);
  const alias = r.text(['alias'], { check: freeTextProblem, rule: 'the alias is shown instead of the login name', fix: 'use plain text' });
  const email = r.text(['email'], { re: RE.email, rule: 'must be an email address', fix: 'e.g. email: alice@example.com' });
  const typology = r.oneOf(['typology'], TYPOLOGIES, 'phonebar');
  if (!r.has(['typology'])) r.fail(['typology'], undefined, 'is required', `choose one of ${TYPOLOGIES.join(', ')}`, 'FIELD_REQUIRED');
  const enabled = r.bool(['enabled'], true);
  const extension = r.text(['extension'], {
    re: RE.extension, numberAsText: true, rule: 'the extension (internal number) must be 2-15 digits', fix: 'e.g. extension: "1001", or leave it out to have one assigned from the range',
  });
  if (extension && extension.length !== settings.extensions.width) {
    r.warn(['extension'], extension, `has ${extension.length} digits while the extension range has ${settings.extensions.width}`, 'keep internal numbers the same length so they cannot be prefixes of each other', 'EXTENSION_LENGTH');
  }
  const password = readPassword(r, settings);
  const dids = readDids(r);
  const cli = r.text(['cli'], { re: RE.cliNumber, numberAsText: true, rule: 'the agent CLI must be a phone number', fix: 'e.g. cli: "+61290000001", or leave it out to use the organisation CLI' }) ?? settings.organisation.cli;
  const timezone = r.text(['timezone'], { rule: 'must be an IANA time zone', fix: 'e.g. timezone: Australia/Sydney' }) ?? settings.defaults.timezone;
  if (r.has(['timezone']) && typeof r.get(['timezone']) === 'string' && !isIanaTimezone(timezone)) {
    r.fail(['timezone'], timezone, 'is not an IANA time zone', 'use a name from the IANA database, e.g. Europe/Rome or UTC');
  }
  const language = r.text(['language'], { re: RE.language, rule: 'must be a language code', fix: 'e.g. language: en or en_GB' }) ?? settings.defaults.language;

  // ---- voice
  const defaults = TYPOLOGY_DEFAULTS[typology];
  if (r.object(['voice'])) r.knownKeys(['voice'], VOICE_KEYS);
  const transports = readTransports(r, settings) ?? defaults.transports;
  if (!r.has(['voice', 'transports'])) defaultTransportsDefined(r, settings, typology, transports);
  const hostRaw = r.text(['voice', 'host'], { rule: 'must be "dynamic" or an address', fix: 'use dynamic (the phone registers) or the phone\'s fixed address, e.g. 192.0.2.10' });
  let host = 'dynamic';
  if (hostRaw !== undefined) {
    if (hostRaw === 'dynamic' || isHostAddress(hostRaw)) host = hostRaw;
    else r.fail(['voice', 'host'], hostRaw, 'is neither "dynamic" nor an IP address or host name', 'use dynamic, or an address like 192.0.2.10 or pbx.example.com:5060');
  }
  let nat = defaults.nat ?? settings.defaults.nat;
  const natRaw = r.get(['voice', 'nat']);
  if (natRaw !== undefined && natRaw !== null) {
    const text = typeof natRaw === 'boolean' ? (natRaw ? 'yes' : 'no') : String(natRaw);
    const parsed = parseNat(text);
    if ('problem' in parsed) r.fail(['voice', 'nat'], text, parsed.problem, 'use yes, no, force_rport, comedia, never or route, or a combination like force_rport,comedia');
    else nat = parsed.value;
  }
  const type = r.oneOf(['voice', 'type'], SIP_TYPES, 'friend');
  if (type === 'user') {
    r.warn(['voice', 'type'], type, 'a chan_sip "user" can neither register nor be dialled, so DID calls will always go to voicemail', 'use friend unless this agent only places calls');
  }
  const codecs = readCodecs(r, ['voice', 'codecs']) ?? defaults.codecs ?? settings.defaults.codecs;
  if ((typology === 'phonebar' || typology === 'webrtc') && codecs.includes('g729')) {
    r.fail(['voice', 'codecs'], codecs.join(','), `g729 is not compatible with ${typology} agents`, 'remove g729 from the list (or change the typology to external or mobile)', 'CODEC_TYPOLOGY');
  }
  const callerIdRaw = r.text(['voice', 'callerId'], { rule: 'caller id', fix: 'e.g. callerId: "Alice Smith <1001>" or "1001"' });
  const contextRaw = r.text(['voice', 'context'], { re: RE.context, rule: 'must be a dialplan context name', fix: `e.g. context: ${settings.defaults.context}` });
  const reserved = contextRaw === undefined ? undefined : reservedName(contextRaw, DIALPLAN_RESERVED);
  if (reserved) {
    r.fail(['voice', 'context'], contextRaw, `${reserved}, so calls from this agent would find no dialplan`, `use the context of your extensions.conf that includes ${settings.dialplan.agentsContext}, e.g. context: ${settings.defaults.context}`, 'CONTEXT_RESERVED');
  }
  const context = contextRaw ?? settings.defaults.context;
  const group = (key: 'callGroup' | 'pickupGroup') => {
    const g = normaliseGroups(r.get(['voice', key]));
    if ('problem' in g) {
      r.fail(['voice', key], r.get(['voice', key]), g.problem, 'use numbers 0-63, lists and ranges like 1,3-5');
      return '';
    }
    return g.value;
  };
  const callGroup = group('callGroup');
  const pickupGroup = group('pickupGroup');
  const chanspy = r.bool(['voice', 'chanspy'], false);
  const video = r.bool(['voice', 'video'], false);
  const recordCalls = readRecordCalls(r);
  const encryption = r.bool(['voice', 'encryption'], defaults.encryption);
  const sipExpires = r.int(['voice', 'sipExpires'], { min: 60, max: 86400, dflt: settings.defaults.sipExpires });
  const ringTimeoutSeconds = r.int(['voice', 'ringTimeoutSeconds'], { min: 5, max: 300, dflt: settings.defaults.ringTimeoutSeconds });

  // ---- typology rules
  if (typology === 'webrtc') {
    if (transports[0] !== 'wss') r.fail(['voice', 'transports'], transports.join(','), 'WebRTC agents connect over secure websockets', 'use transports: [wss]', 'TYPOLOGY_TRANSPORT');
    if (!encryption) r.fail(['voice', 'encryption'], false, 'WebRTC media is always encrypted (DTLS-SRTP)', 'remove encryption: false', 'TYPOLOGY_ENCRYPTION');
    if (host !== 'dynamic') r.fail(['voice', 'host'], host, 'a browser cannot have a fixed host', 'use host: dynamic', 'TYPOLOGY_HOST');
  }
  if (typology === 'mobile') {
    if (transports.includes('tls') && !encryption) {
      r.fail(['voice', 'encryption'], encryption, 'a mobile agent on tls must also encrypt media (SRTP)', 'set encryption: true', 'TYPOLOGY_ENCRYPTION');
    }
    if (transports.includes('udp')) {
      r.warn(['voice', 'transports'], transports.join(','), 'UDP is not recommended for mobile agents (lost caller id in push notifications, unreliable)', 'use transports: [tcp] or [tls]', 'MOBILE_UDP');
    }
  } else if (r.has(['mobile'])) {
    r.fail(['mobile'], undefined, 'only mobile agents have a push gateway', 'remove the mobile section or set typology: mobile');
  }
  if (typology !== 'webrtc' && (transports.includes('ws') || transports.includes('wss')) && typology !== 'external') {
    r.fail(['voice', 'transports'], transports.join(','), `websocket transports are for webrtc (or external) agents, not ${typology}`, 'use udp, tcp or tls', 'TYPOLOGY_TRANSPORT');
  }
  // Rules that depend on what the store's backend renders (md5 realms, IPv6 hosts, SRTP keys).
  for (const f of backendFindings({ typology, password, voice: { transports, host, encryption } }, settings, settings.backend)) {
    r.fail(f.field.split('.'), f.value, f.rule, f.fix, f.code, f.severity);
  }

  let mobile: { pushGateway: string } | undefined;
  if (typology === 'mobile') {
    if (r.object(['mobile'])) r.knownKeys(['mobile'], ['pushGateway']);
    const gw = r.text(['mobile', 'pushGateway'], { re: RE.pushGateway, rule: 'the Mobile App Push Gateway is an address and port', fix: 'e.g. mobile: { pushGateway: "push.example.com:5060" }', required: true });
    if (gw) mobile = { pushGateway: gw };
  }

  // ---- voicemail
  if (r.object(['voicemail'])) r.knownKeys(['voicemail'], ['enabled', 'pin', 'attach']);
  const vmEnabled = r.bool(['voicemail', 'enabled'], true);
  const pin = r.text(['voicemail', 'pin'], { re: RE.pin, numberAsText: true, secret: true, rule: 'the voicemail PIN must be 4-12 digits', fix: 'e.g. pin: "4321" (quoted)' });
  // An empty PIN counts as missing (text() returns nothing for it without an issue); a PIN that is
  // present but malformed has already been reported by text().
  const pinRaw = r.get(['voicemail', 'pin']);
  if (vmEnabled && !pin && (pinRaw === undefined || pinRaw === null || pinRaw === '')) {
    r.fail(['voicemail', 'pin'], undefined, 'a voicemail box needs a PIN', 'set voicemail.pin: "<4-12 digits>", or voicemail.enabled: false', 'FIELD_REQUIRED');
  }
  const attach = r.bool(['voicemail', 'attach'], true);
  if (dids.length > 0 && !vmEnabled) {
    r.warn(['voicemail', 'enabled'], false, 'this agent has DIDs but no voicemail: callers who cannot reach the agent hear a message and are disconnected', 'enable voicemail so no message is lost');
  }
  if (dids.length > 0 && vmEnabled && !email) {
    r.warn(['email'], undefined, 'voicemail recordings from this agent\'s DIDs cannot be emailed without an address (they are kept and noted in the call record)', 'add email: <address>', 'NO_EMAIL');
  }

  // ---- caller id
  let callerId = { name: displayName ?? '', number: '' };
  if (callerIdRaw !== undefined) {
    const m = /^\s*"?([^"<>]*?)"?\s*<(\+?[0-9]{2,20})>\s*$/.exec(callerIdRaw);
    const digits = /^\+?[0-9]{2,20}$/.exec(callerIdRaw);
    const nameProblem = m && m[1] ? freeTextProblem(m[1]) : undefined;
    if (m && !nameProblem) callerId = { name: m[1] ?? '', number: m[2]! };
    else if (digits) callerId = { name: displayName ?? '', number: callerIdRaw };
    else r.fail(['voice', 'callerId'], callerIdRaw, nameProblem ? `the caller id name ${nameProblem}` : 'is not a caller id', 'write Name <number>, e.g. "Alice Smith <1001>", or just the number');
  }

  if (issues.errors.length > before || !id || !username || !firstName || !lastName || !displayName || !password) return undefined;
  const agent: DraftAgent = {
    id, username, firstName, lastName, displayName, typology, enabled, password, dids, cli: shared(cli), timezone: shared(timezone), language: shared(language),
    voice: {
      transports, host: shared(host), nat, type, codecs, callerId, context: shared(context), callGroup: shared(callGroup), pickupGroup: shared(pickupGroup),
      chanspy, video, recordCalls, encryption, sipExpires, ringTimeoutSeconds,
    },
    voicemail: { enabled: vmEnabled, attach, ...(pin ? { pin } : {}) },
    file: doc.file,
    ...(alias ? { alias } : {}),
    ...(email ? { email } : {}),
    ...(extension ? { extension } : {}),
    ...(mobile ? { mobile } : {}),
  };
  return agent;
}

/** The agent sections of the pjsip file, by the suffix after the username. */
const AGENT_SECTIONS = [['', 'endpoint and aor'], ['-auth', 'auth'], ['-identify', 'identify']] as const;
type SectionClash = { transport: TransportSettings; suffix: string; what: string };
/**
 * For each settings: lower-case username → the transport whose name one of that agent's sections
 * would take, and the lengths of those usernames (most usernames are ruled out by length alone).
 */
const clashes = new WeakMap<Settings, { byUser: Map<string, SectionClash>; lengths: Set<number> }>();
function clashesOf(settings: Settings): { byUser: Map<string, SectionClash>; lengths: Set<number> } {
  let c = clashes.get(settings);
  if (!c) {
    c = { byUser: new Map(), lengths: new Set() };
    for (const t of settings.transports) {
      const name = t.name.toLowerCase();
      for (const [suffix, what] of AGENT_SECTIONS) {
        const user = name.slice(0, name.length - suffix.length);
        if (name.endsWith(suffix) && user !== '' && !c.byUser.has(user)) {
          c.byUser.set(user, { transport: t, suffix, what });
          c.lengths.add(user.length);
        }
      }
    }
    clashes.set(settings, c);
  }
  return c;
}

/**
 * Section names a username must not take. chan_sip reads [general] and [authentication] (in any
 * case) as its own settings and skips them as peers; the pjsip file holds the transports of
 * switchboard.yaml next to each agent's [<username>], [<username>-auth] and [<username>-identify].
 */
function usernameProblem(username: string, settings: Settings): { rule: string; fix: string } | undefined {
  const n = username.length;
  const c = clashesOf(settings);
  if (n !== 7 && n !== 14 && !c.lengths.has(n)) return undefined;
  const lower = username.toLowerCase();
  if (lower === 'general' || lower === 'authentication') {
    return {
      rule: `chan_sip reads the sections [general] and [authentication], in any case, as its own settings, so a peer named ${username} would be silently skipped`,
      fix: `choose another username, e.g. username: ${lower}.desk`,
    };
  }
  const clash = c.byUser.get(lower);
  if (clash) {
    const t = clash.transport;
    return {
      rule: `this agent's pjsip ${clash.what} section [${username}${clash.suffix}] would have the name of the ${t.protocol} transport [${t.name}] of ${settings.file}`,
      fix: `choose another username, or rename the transport (its name: in ${settings.file})`,
    };
  }
  return undefined;
}

/**
 * The transports an agent takes from its typology (voice.transports left out) must be defined in
 * switchboard.yaml, as explicit ones must: otherwise pjsip would name a transport that does not exist.
 */
function defaultTransportsDefined(r: FieldReader, settings: Settings, typology: Typology, transports: readonly TransportProtocol[]): void {
  const missing = transports.filter((p) => !settings.transports.some((s) => s.protocol === p));
  if (missing.length === 0) return;
  const usable = settings.transports.map((t) => t.protocol).filter((p) => typology === 'external' || (typology !== 'webrtc' ? p !== 'ws' && p !== 'wss' : p === 'wss'));
  const add = `add a transport with protocol: ${missing[0]} to ${settings.file}`;
  r.fail(
    ['voice', 'transports'], transports.join(','),
    `voice.transports is left out, so this ${typology} agent takes its typology's default [${transports.join(', ')}], but no ${missing.join('/')} transport is defined in ${settings.file}`,
    usable.length ? `${add}, or set voice.transports to one it defines, e.g. transports: [${usable[0]}]` : add,
    'TRANSPORT_UNDEFINED', 'error', ['typology'],
  );
}

function labelOf(doc: SourceDoc): string | undefined {
  const d = doc.data as Record<string, unknown> | null;
  if (d && typeof d === 'object') {
    const id = d['id'];
    const user = d['username'];
    if ((typeof id === 'string' || typeof id === 'number') && /^[0-9]{1,12}$/.test(String(id))) {
      return typeof user === 'string' && RE.username.test(user) ? `${id} ${user}` : String(id);
    }
    if (typeof user === 'string' && RE.username.test(user)) return user;
  }
  return undefined;
}

/**
 * The agent ID is digits. A bare YAML number is accepted when the file wrote exactly those digits
 * (`id: 1427`); `id: 01427` would lose its zero, so it must be quoted like any number-as-text.
 */
function readId(r: FieldReader): string | undefined {
  const v = r.get(['id']);
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && r.source(['id']) === String(v)) return String(v);
  return r.text(['id'], { re: RE.agentId, numberAsText: true, rule: 'the agent ID must be 1-12 digits', fix: 'e.g. id: "1427"', required: true });
}

function readPassword(r: FieldReader, settings: Settings): Password | undefined {
  const raw = r.text(['password'], {
    check: secretSyntaxProblem, numberAsText: true, secret: true, rule: 'the SIP password', fix: 'set password: "<secret>" or password: "md5:<32 hex digits>"', required: true,
  });
  if (raw === undefined) return undefined;
  if (raw.startsWith('md5:')) {
    const digest = raw.slice(4).toLowerCase();
    if (!RE.md5.test(digest)) {
      r.fail(['password'], 'md5:…', 'an MD5 password must be "md5:" followed by 32 hex digits of md5(username:realm:secret)', `compute it with: echo -n "USER:${digestRealm(settings)}:SECRET" | md5sum`);
      return undefined;
    }
    return { kind: 'md5', value: digest };
  }
  if (settings.passwordPolicy) {
    const problem = passwordPolicyProblem(raw);
    if (problem) {
      // Never echo the secret itself.
      r.fail(['password'], '********', problem, 'choose a stronger password, store it as md5:<digest>, or set passwordPolicy: false in switchboard.yaml', 'PASSWORD_POLICY');
      return undefined;
    }
  }
  return { kind: 'plain', value: raw };
}

function readDids(r: FieldReader): string[] {
  const v = r.get(['dids']);
  if (v === undefined || v === null) return [];
  const items = Array.isArray(v) ? v : [v];
  const out: string[] = [];
  items.forEach((d, i) => {
    const path = Array.isArray(v) ? ['dids', i] : ['dids'];
    if (typeof d === 'number') {
      r.fail(path, d, 'is a number in YAML, so the leading "+" and zeros are lost', `quote it: - "${r.source(path) ?? '+' + d}"`, 'NUMBER_NOT_QUOTED');
    } else if (typeof d !== 'string' || !RE.did.test(d)) {
      r.fail(path, d, 'a DID must be an E.164 number: "+", country code, then digits (8-16 in all)', 'e.g. "+61290000001"');
    } else if (out.includes(d)) {
      r.fail(path, d, 'is listed twice for this agent', 'remove the duplicate', 'DUPLICATE_DID');
    } else out.push(d);
  });
  // An array grown by push keeps room for 17 items: a copy holds just the DIDs (kept per agent).
  return out.slice();
}

function readTransports(r: FieldReader, settings: Settings): TransportProtocol[] | undefined {
  const list = r.list(['voice', 'transports']);
  if (!list) return undefined;
  const out: TransportProtocol[] = [];
  for (const t of list) {
    const protocol = listed(TRANSPORT_PROTOCOLS, t);
    if (protocol === undefined) {
      r.fail(['voice', 'transports'], list.join(','), `"${t}" is not a transport`, `use ${TRANSPORT_PROTOCOLS.join(', ')}, in order of preference`);
      return undefined;
    }
    if (!settings.transports.some((s) => s.protocol === protocol)) {
      r.fail(['voice', 'transports'], list.join(','), `no ${t} transport is defined in ${settings.file}`, `add a transport with protocol: ${t} to switchboard.yaml, or remove ${t} here`, 'TRANSPORT_UNDEFINED');
      return undefined;
    }
    if (!out.includes(protocol)) out.push(protocol);
  }
  if (out.length === 0) {
    r.fail(['voice', 'transports'], '', 'needs at least one transport', 'e.g. transports: [udp]');
    return undefined;
  }
  return out.slice();
}

function readRecordCalls(r: FieldReader) {
  const v = r.get(['voice', 'recordCalls']);
  if (v === false) return 'off' as const;
  return r.oneOf(['voice', 'recordCalls'], RECORDING_FORMATS, 'off');
}
