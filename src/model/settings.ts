import { IssueList } from './issues.js';
import { FieldReader, listed, type SourceDoc } from './reader.js';
import { RE, freeTextProblem, isBindAddress, isCidr, isHostAddress, isIanaTimezone } from './fields.js';
import { BACKENDS, CODECS, TRANSPORT_PROTOCOLS, type Codec, type NatWord, type Settings, type TransportSettings } from './types.js';
import { parseNat } from './nat.js';

export const DEFAULT_TRANSPORTS: TransportSettings[] = [
  { name: 'transport-udp', protocol: 'udp', bind: '0.0.0.0:5060', localNets: [] },
];

/** Section names an Asterisk module reads as its own (lower case: they are matched in any case), each with why. */
export type ReservedNames = Readonly<Record<string, string>>;

/** pbx_config reads [general] and [globals] of extensions.conf as settings and variables, never as contexts. */
export const DIALPLAN_RESERVED: ReservedNames = {
  general: 'extensions.conf reads [general] as its own settings, never as a context',
  globals: 'extensions.conf reads [globals] as global variables, never as a context',
};

/** app_voicemail skips [general], [zonemessages] and the aliases context when it reads mailboxes. */
export const VOICEMAIL_RESERVED: ReservedNames = {
  general: 'voicemail.conf reads [general] as its own settings, never as mailboxes',
  zonemessages: 'voicemail.conf reads [zonemessages] as time zone formats, never as mailboxes',
  aliases: 'voicemail.conf names its aliases context (aliasescontext) [aliases] as a rule, and app_voicemail reads no mailboxes there',
};

/** Why `name` (in any case) is reserved, or undefined. */
export function reservedName(name: string, reserved: ReservedNames): string | undefined {
  const key = name.toLowerCase();
  return Object.hasOwn(reserved, key) ? reserved[key] : undefined;
}

/** Organisation-wide settings from `STORE/switchboard.yaml`; every field has a documented default. */
export function validateSettings(doc: SourceDoc, issues: IssueList): Settings {
  const r = new FieldReader(doc, issues, undefined);
  if (doc.data !== undefined && doc.data !== null && (typeof doc.data !== 'object' || Array.isArray(doc.data))) {
    r.fail([], doc.data, 'switchboard.yaml must be a mapping of settings', 'see the README section "Organisation settings"');
  }
  r.knownKeys([], ['organisation', 'backend', 'defaults', 'voicemail', 'dialplan', 'extensions', 'pjsipRealm', 'sipRealm', 'passwordPolicy', 'transports']);
  r.object(['organisation']) && r.knownKeys(['organisation'], ['name', 'cli']);
  r.object(['defaults']) && r.knownKeys(['defaults'], ['context', 'codecs', 'nat', 'timezone', 'language', 'ringTimeoutSeconds', 'sipExpires']);
  r.object(['voicemail']) && r.knownKeys(['voicemail'], ['context']);
  r.object(['dialplan']) && r.knownKeys(['dialplan'], ['agentsContext', 'didContext', 'spyContext', 'spyPrefix', 'stasisApp', 'recordingsDir']);
  r.object(['extensions']) && r.knownKeys(['extensions'], ['from', 'to']);

  const ctx = (path: string[], dflt: string, reserved: ReservedNames = DIALPLAN_RESERVED, then = 'so the generated context would not exist') => {
    const v = r.text(path, { re: RE.context, rule: 'must be a dialplan context name (letters, digits, "_" and "-")', fix: `use a name such as "${dflt}"` });
    const why = v === undefined ? undefined : reservedName(v, reserved);
    if (why === undefined) return v ?? dflt;
    r.fail(path, v, `${why}, ${then}`, `use another name, e.g. "${dflt}"`, 'CONTEXT_RESERVED');
    return dflt;
  };

  const codecs = readCodecs(r, ['defaults', 'codecs']) ?? (['ulaw', 'alaw'] as Codec[]);
  const natText = r.text(['defaults', 'nat'], { rule: 'must be a NAT setting', fix: 'use yes, no, force_rport, comedia, never or route (or a comma combination)' });
  let nat: NatWord[] = ['force_rport', 'comedia'];
  if (natText !== undefined) {
    const parsed = parseNat(natText);
    if ('problem' in parsed) r.fail(['defaults', 'nat'], natText, parsed.problem, 'use yes, no, force_rport, comedia, never or route (or a comma combination)');
    else nat = parsed.value;
  }

  const from = r.text(['extensions', 'from'], { re: RE.extension, numberAsText: true, rule: 'must be digits', fix: 'write the first extension of the range, quoted, e.g. from: "1000"' }) ?? '1000';
  const to = r.text(['extensions', 'to'], { re: RE.extension, numberAsText: true, rule: 'must be digits', fix: 'write the last extension of the range, quoted, e.g. to: "1999"' }) ?? '1999';
  if (from.length !== to.length || Number(from) > Number(to)) {
    r.fail(['extensions'], `${from}-${to}`, 'the extension range must run upwards with the same number of digits at both ends', 'e.g. from: "1000", to: "1999"');
  }

  const timezone = r.text(['defaults', 'timezone'], { rule: 'must be an IANA time zone', fix: 'use a name such as "Europe/London" or "UTC"' }) ?? 'UTC';
  if (!isIanaTimezone(timezone)) r.fail(['defaults', 'timezone'], timezone, 'is not an IANA time zone', 'use a name such as "Australia/Sydney" or "UTC"');

  const settings: Settings = {
    organisation: {
      name: r.text(['organisation', 'name'], { check: freeTextProblem, rule: 'organisation name', fix: 'use plain text' }) ?? 'switchboard',
      cli: r.text(['organisation', 'cli'], { re: RE.cliNumber, numberAsText: true, rule: 'must be a phone number (digits, optional leading +)', fix: 'e.g. cli: "+61290000000"' }) ?? '',
    },
    backend: r.oneOf(['backend'], BACKENDS, 'pjsip'),
    defaults: {
      context: ctx(['defaults', 'context'], 'from-sip', DIALPLAN_RESERVED, 'so calls from the agents would find no dialplan'),
      codecs,
      nat,
      timezone,
      language: r.text(['defaults', 'language'], { re: RE.language, rule: 'must be a language code such as en or en_GB', fix: 'e.g. language: en' }) ?? 'en',
      ringTimeoutSeconds: r.int(['defaults', 'ringTimeoutSeconds'], { min: 5, max: 300, dflt: 20 }),
      sipExpires: r.int(['defaults', 'sipExpires'], { min: 60, max: 86400, dflt: 3600 }),
    },
    voicemail: { context: ctx(['voicemail', 'context'], 'switchboard', VOICEMAIL_RESERVED, 'so the agents\' boxes in it would not exist') },
    dialplan: {
      agentsContext: ctx(['dialplan', 'agentsContext'], 'switchboard-agents'),
      didContext: ctx(['dialplan', 'didContext'], 'switchboard-dids'),
      spyContext: ctx(['dialplan', 'spyContext'], 'switchboard-spy'),
      spyPrefix: r.text(['dialplan', 'spyPrefix'], { re: /^\*?[0-9]{1,4}$/, numberAsText: true, rule: 'must be digits, optionally after "*"', fix: 'e.g. spyPrefix: "*22"' }) ?? '*22',
      stasisApp: r.text(['dialplan', 'stasisApp'], { re: RE.identifier, rule: 'must be an ARI application name', fix: 'e.g. stasisApp: switchboard' }) ?? 'switchboard',
      recordingsDir: r.text(['dialplan', 'recordingsDir'], { re: /^[A-Za-z0-9_/-]{1,100}$/, rule: 'must be a relative or absolute directory of letters, digits, "_", "-" and "/"', fix: 'e.g. recordingsDir: switchboard' }) ?? 'switchboard',
    },
    extensions: { from: Number(from), to: Number(to), width: from.length },
    pjsipRealm: r.text(['pjsipRealm'], { re: RE.identifier, rule: 'must be a realm name', fix: 'use the default_realm of pjsip.conf [global], default "asterisk"' }) ?? 'asterisk',
    sipRealm: r.text(['sipRealm'], { re: RE.identifier, rule: 'must be a realm name', fix: 'use Asterisk\'s systemname (asterisk.conf), default "asterisk"' }) ?? 'asterisk',
    passwordPolicy: r.bool(['passwordPolicy'], true),
    transports: readTransports(r),
    file: doc.file,
  };
  return settings;
}

export function readCodecs(r: FieldReader, path: (string | number)[]): Codec[] | undefined {
  const list = r.list(path);
  if (!list) return undefined;
  const bad = list.filter((c) => !(CODECS as readonly string[]).includes(c));
  if (bad.length) {
    r.fail(path, list.join(','), `${bad.map((b) => `"${b}"`).join(', ')} is not a codec switchboard renders`, `use only ${CODECS.join(', ')} (Asterisk names, e.g. ulaw not pcmu)`);
    return undefined;
  }
  if (list.length === 0) {
    r.fail(path, '', 'needs at least one codec', `e.g. [ulaw, alaw]`);
    return undefined;
  }
  // The codec names' own strings, without repeats, in an array of exactly that size (kept per agent).
  const out: Codec[] = [];
  for (const c of list) {
    const codec = listed(CODECS, c)!;
    if (!out.includes(codec)) out.push(codec);
  }
  return out.slice();
}

function readTransports(r: FieldReader): TransportSettings[] {
  const raw = r.get(['transports']);
  if (raw === undefined || raw === null) return DEFAULT_TRANSPORTS;
  if (!Array.isArray(raw)) {
    r.fail(['transports'], raw, 'must be a list of transports', 'write "transports:" followed by "- protocol: udp" items');
    return DEFAULT_TRANSPORTS;
  }
  const out: TransportSettings[] = [];
  const seenProtocols = new Set<string>();
  const seenBinds = new Map<string, string>();
  raw.forEach((_, i) => {
    const p = ['transports', i];
    if (!r.object(p)) return;
    r.knownKeys(p, ['name', 'protocol', 'bind', 'externalAddress', 'localNets', 'certFile', 'privKeyFile', 'method']);
    const protocol = r.oneOf([...p, 'protocol'], TRANSPORT_PROTOCOLS, 'udp');
    if (seenProtocols.has(protocol)) {
      r.fail([...p, 'protocol'], protocol, 'a second transport of the same protocol cannot be chosen by agents', 'keep one transport per protocol');
    }
    seenProtocols.add(protocol);
    const defaultPort = { udp: 5060, tcp: 5060, tls: 5061, ws: 8088, wss: 8089 }[protocol];
    const name = r.text([...p, 'name'], { re: RE.identifier, rule: 'must be a section name (letters, digits, "_", "." and "-")', fix: `e.g. name: transport-${protocol}` }) ?? `transport-${protocol}`;
    // Each transport is a section [name] of the pjsip file: two of one name would be one object twice.
    const twin = out.find((t) => t.name.toLowerCase() === name.toLowerCase());
    if (twin) r.fail([...p, 'name'], name, `the ${twin.protocol} transport already has the section name [${twin.name}] in the pjsip file`, `give each transport its own name, e.g. name: transport-${protocol}`);
    const bind = r.text([...p, 'bind'], { check: (s) => (isBindAddress(s) ? undefined : 'is not address:port'), rule: 'must be an IP address and port', fix: `e.g. bind: "0.0.0.0:${defaultPort}"` }) ?? `0.0.0.0:${defaultPort}`;
    // udp and tcp may share a port number; two transports of one kind on one port cannot both bind.
    const family = protocol === 'udp' ? 'udp' : 'tcp';
    const key = `${family}/${bind}`;
    if (seenBinds.has(key)) {
      r.fail([...p, 'bind'], bind, `${seenBinds.get(key)} is already bound to this address and port (Asterisk: "Address already in use")`, 'give each tcp/tls/ws/wss transport its own port');
    }
    seenBinds.set(key, name);
    const t: TransportSettings = { name, protocol, bind, localNets: [] };
    const ext = r.text([...p, 'externalAddress'], { check: (s) => (isHostAddress(s) ? undefined : 'is not an address'), rule: 'must be the public address seen by agents behind NAT', fix: 'e.g. externalAddress: 203.0.113.10' });
    if (ext) t.externalAddress = ext;
    const nets = r.list([...p, 'localNets']) ?? [];
    for (const n of nets) {
      if (!isCidr(n)) r.fail([...p, 'localNets'], n, 'is not a network in CIDR form', 'e.g. 192.168.0.0/16');
      else t.localNets.push(n);
    }
    if (protocol === 'tls' || protocol === 'wss') {
      const cert = r.text([...p, 'certFile'], { re: RE.path, rule: 'must be an absolute path', fix: 'e.g. certFile: /etc/asterisk/keys/asterisk.crt' });
      const key2 = r.text([...p, 'privKeyFile'], { re: RE.path, rule: 'must be an absolute path', fix: 'e.g. privKeyFile: /etc/asterisk/keys/asterisk.key' });
      if (protocol === 'tls' && (!cert || !key2)) {
        r.fail(p, undefined, 'a tls transport without certFile and privKeyFile loads silently and then fails every handshake', 'set certFile and privKeyFile', 'TLS_CERT_MISSING');
      }
      if (cert) t.certFile = cert;
      if (key2) t.privKeyFile = key2;
      const method = r.text([...p, 'method'], { re: /^(tlsv1|tlsv1_1|tlsv1_2|tlsv1_3|sslv23)$/, rule: 'must be a TLS method Asterisk knows', fix: 'use tlsv1_2 or tlsv1_3, or leave it out' });
      if (method) t.method = method;
    }
    out.push(t);
  });
  return out;
}
