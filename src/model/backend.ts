/**
 * Agent rules that depend on which channel drivers are rendered. Validation applies them for the
 * store's own `backend`; the renderer applies the errors again when it renders another backend
 * (`--backend`, `[output] backend`), so a store that validated for one driver cannot render
 * broken config for another.
 */
import { makeIssue, type Issue } from './issues.js';
import type { Agent, Backend, Password, Settings, TransportProtocol, Typology } from './types.js';

export type Driver = 'pjsip' | 'sip';

const DRIVERS: Record<Backend, readonly Driver[]> = { pjsip: ['pjsip'], sip: ['sip'], both: ['pjsip', 'sip'] };

/** The drivers a backend renders. */
export function driversOf(backend: Backend): readonly Driver[] {
  return DRIVERS[backend];
}

/** The realm `md5:` digests are made with for the store's backend: chan_sip's for chan_sip only, else pjsip's. */
export function digestRealm(settings: Settings): string {
  return settings.backend === 'sip' ? settings.sipRealm : settings.pjsipRealm;
}

/** What the backend rules read of an agent (validation has no Agent yet). */
export interface BackendRuleInput {
  typology: Typology;
  password: Password | undefined;
  voice: { transports: readonly TransportProtocol[]; host: string; encryption: boolean };
}

export interface Finding {
  severity: 'error' | 'warning';
  code: string;
  /** Dotted path, e.g. `voice.host`. */
  field: string;
  value: string;
  rule: string;
  fix: string;
}

const realmOf = (settings: Settings, d: Driver) => (d === 'pjsip' ? settings.pjsipRealm : settings.sipRealm);

/**
 * Every finding for one agent when `backend` is rendered. `settings.backend` is what the store's
 * md5 digests were made for (digestRealm), so rendering another backend is checked against both.
 */
export function backendFindings(a: BackendRuleInput, settings: Settings, backend: Backend): Finding[] {
  const out: Finding[] = [];
  const drivers = driversOf(backend);
  const pjsip = drivers.includes('pjsip');
  const sip = drivers.includes('sip');
  const { transports, host, encryption } = a.voice;

  // md5: one digest, one realm. The store's digests are made with digestRealm (its backend's);
  // every driver rendered must check them against that realm.
  if (a.password?.kind === 'md5' && settings.pjsipRealm !== settings.sipRealm) {
    if (backend === settings.backend) {
      if (pjsip && sip) {
        out.push({
          severity: 'error', code: 'MD5_REALM', field: 'password', value: 'md5:…',
          rule: `one MD5 digest cannot serve both drivers when pjsipRealm (${settings.pjsipRealm}) and sipRealm (${settings.sipRealm}) differ`,
          fix: 'use a plain password, or make the realms equal in switchboard.yaml',
        });
      }
    } else {
      const realm = digestRealm(settings);
      const wrong = drivers.filter((d) => realmOf(settings, d) !== realm);
      if (wrong.length) {
        out.push({
          severity: 'error', code: 'MD5_REALM', field: 'password', value: 'md5:…',
          rule: `md5: digests are made for backend ${settings.backend} of ${settings.file}, with ${settings.backend === 'sip' ? 'sipRealm' : 'pjsipRealm'} (${realm}), but backend ${backend} is rendered and ${wrong.map((d) => (d === 'pjsip' ? `pjsip checks them against pjsipRealm (${settings.pjsipRealm})` : `chan_sip checks them against sipRealm (${settings.sipRealm})`)).join(' and ')}`,
          fix: `render backend ${settings.backend}, use a plain password, or make pjsipRealm and sipRealm equal in ${settings.file}`,
        });
      }
    }
  }

  // A fixed IPv6 address is reached only over a transport bound to IPv6: pjsip transports are
  // of one address family (pjsip.conf.sample keeps an IPv6 transport apart, bind=::), and the
  // endpoint uses just its first transport. chan_sip binds in the operator's sip.conf.
  if (host.startsWith('[')) {
    const first = transports[0];
    const t = pjsip ? settings.transports.find((x) => x.protocol === first) : undefined;
    if (t && !t.bind.startsWith('[')) {
      const port = t.bind.slice(t.bind.lastIndexOf(':') + 1);
      out.push({
        severity: 'error', code: 'HOST_ADDRESS_FAMILY', field: 'voice.host', value: host,
        rule: `pjsip reaches an IPv6 address only over an IPv6 transport, and this agent's transport (${first}, the first of voice.transports) is ${t.name}, bound to IPv4 ${t.bind}`,
        fix: `bind the ${first} transport to IPv6 in ${settings.file} (e.g. bind: "[::]:${port}"), or give the phone's IPv4 address or host name`,
      });
    }
    if (sip) {
      out.push({
        severity: 'warning', code: 'HOST_ADDRESS_FAMILY', field: 'voice.host', value: host,
        rule: 'chan_sip reaches an IPv6 address only when sip.conf binds to IPv6, and its default (bindaddr=0.0.0.0) is IPv4 only',
        fix: 'set bindaddr=:: (IPv4 and IPv6) in the [general] section of sip.conf, or give the phone\'s IPv4 address or host name',
      });
    }
  }

  // SRTP with SDES sends its keys in the SDP: only tls protects them. pjsip renders the first
  // transport only; chan_sip takes the phone on every transport listed.
  if (encryption && a.typology !== 'webrtc') {
    const clear: string[] = [];
    if (pjsip && transports[0] !== 'tls') clear.push(transports[0]!);
    if (sip) for (const t of transports) if (t !== 'tls' && !clear.includes(t)) clear.push(t);
    if (clear.length) {
      const why = transports.length < 2 ? '' : sip ? ' (chan_sip takes the phone on every transport listed)' : ' (pjsip uses only the first of voice.transports)';
      out.push({
        severity: 'warning', code: 'SRTP_WITHOUT_TLS', field: 'voice.encryption', value: 'true',
        rule: `SRTP keys (SDES) travel in clear over ${clear.join('/')}${why}`,
        fix: sip ? 'use tls only, e.g. transports: [tls], so the keys are protected' : 'make tls the first transport, e.g. transports: [tls], so the keys are protected',
      });
    }
  }
  return out;
}

/**
 * The errors of backendFindings for every agent of a store rendered with `backend`, as issues
 * (file, agent, field, value, rule, fix). Empty when `backend` is the store's own: validation
 * already applied them.
 */
export function backendIssues(settings: Settings, agents: readonly Agent[], backend: Backend): Issue[] {
  if (backend === settings.backend) return [];
  const issues: Issue[] = [];
  for (const a of agents) {
    for (const f of backendFindings(a, settings, backend)) {
      if (f.severity !== 'error') continue;
      issues.push(makeIssue({ severity: 'error', code: f.code, file: a.file, agent: `${a.id} ${a.username}`, field: f.field, value: f.value, rule: f.rule, fix: f.fix }));
    }
  }
  return issues;
}
