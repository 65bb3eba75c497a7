/** The validated, normalised model. Everything downstream (plan, render, apply, workflows) reads these. */

export const TYPOLOGIES = ['phonebar', 'external', 'webrtc', 'mobile'] as const;
export type Typology = (typeof TYPOLOGIES)[number];

export const TRANSPORT_PROTOCOLS = ['udp', 'tcp', 'tls', 'ws', 'wss'] as const;
export type TransportProtocol = (typeof TRANSPORT_PROTOCOLS)[number];

export const CODECS = ['ulaw', 'alaw', 'gsm', 'g722', 'g729', 'opus'] as const;
export type Codec = (typeof CODECS)[number];

export const RECORDING_FORMATS = ['off', 'wav', 'wav49', 'gsm'] as const;
export type RecordingFormat = (typeof RECORDING_FORMATS)[number];

export const SIP_TYPES = ['friend', 'user', 'peer'] as const;
export type SipType = (typeof SIP_TYPES)[number];

/** chan_sip NAT words; `nat` may combine several with commas, as chan_sip accepts. */
export const NAT_WORDS = ['yes', 'no', 'force_rport', 'comedia', 'never', 'route', 'auto_force_rport', 'auto_comedia'] as const;
export type NatWord = (typeof NAT_WORDS)[number];

export const BACKENDS = ['pjsip', 'sip', 'both'] as const;
export type Backend = (typeof BACKENDS)[number];

export type Password = { kind: 'plain'; value: string } | { kind: 'md5'; value: string };

export interface Voice {
  /** Ordered by preference; the first is the endpoint's transport. */
  transports: TransportProtocol[];
  /** `dynamic`, or a fixed address (IPv4, [IPv6] or host name, optional `:port`). */
  host: string;
  /** Normalised chan_sip NAT words, e.g. ['force_rport', 'comedia']. */
  nat: NatWord[];
  type: SipType;
  codecs: Codec[];
  callerId: { name: string; number: string };
  context: string;
  /** Normalised group lists: sorted, merged ranges, e.g. `1,3-5`; '' when none. */
  callGroup: string;
  pickupGroup: string;
  chanspy: boolean;
  video: boolean;
  recordCalls: RecordingFormat;
  encryption: boolean;
  sipExpires: number;
  ringTimeoutSeconds: number;
}

export interface Agent {
  id: string;
  username: string;
  firstName: string;
  lastName: string;
  displayName: string;
  alias?: string;
  email?: string;
  typology: Typology;
  enabled: boolean;
  extension: string;
  /** True when the extension came from the range rather than the agent file. */
  extensionAutoAssigned: boolean;
  password: Password;
  dids: string[];
  cli: string;
  timezone: string;
  language: string;
  voice: Voice;
  voicemail: { enabled: boolean; pin?: string; attach: boolean };
  mobile?: { pushGateway: string };
  /** Store file this agent came from (relative to the store). */
  file: string;
}

export interface TransportSettings {
  /** Section name in pjsip, e.g. `transport-udp`. */
  name: string;
  protocol: TransportProtocol;
  /** `address:port`, e.g. `0.0.0.0:5060`. */
  bind: string;
  externalAddress?: string;
  localNets: string[];
  certFile?: string;
  privKeyFile?: string;
  method?: string;
}

export interface Settings {
  organisation: { name: string; cli: string };
  backend: Backend;
  defaults: {
    context: string;
    codecs: Codec[];
    nat: NatWord[];
    timezone: string;
    language: string;
    ringTimeoutSeconds: number;
    sipExpires: number;
  };
  voicemail: { context: string };
  dialplan: {
    agentsContext: string;
    didContext: string;
    spyContext: string;
    spyPrefix: string;
    stasisApp: string;
    recordingsDir: string;
  };
  extensions: { from: number; to: number; width: number };
  /** Realm used by pjsip's md5 digest (global `default_realm`, Asterisk's default `asterisk`). */
  pjsipRealm: string;
  /** chan_sip's md5secret realm is the Asterisk system name (default `asterisk`). */
  sipRealm: string;
  passwordPolicy: boolean;
  transports: TransportSettings[];
  file: string;
}

export interface Store {
  settings: Settings;
  /** Sorted by id. */
  agents: Agent[];
}
