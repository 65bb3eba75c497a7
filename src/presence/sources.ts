/**
 * Turns raw Asterisk events into presence facts. Pure functions: no state, no I/O.
 *
 * Field names are Asterisk's, as documented in core-en_US.xml (AMI) and events.json (ARI):
 *
 * | source | event | fields read | fact |
 * | --- | --- | --- | --- |
 * | ARI | EndpointStateChange | endpoint.{technology,resource,state} online/offline | registration |
 * | ARI | PeerStatusChange | endpoint.{technology,resource}, peer.peer_status | registration |
 * | ARI | ContactStatusChange | endpoint.*, contact_info.{uri,contact_status} | one contact |
 * | ARI | DeviceStateChanged | device_state.{name,state} | busy (+ registration, below) |
 * | AMI | PeerStatus | ChannelType, Peer, PeerStatus | registration |
 * | AMI | ContactStatus | URI, ContactStatus, AOR, EndpointName | one contact |
 * | AMI | DeviceStateChange | Device, State | busy (+ registration) |
 * | AMI | QueueMemberPause / QueueMemberStatus / QueueMemberAdded | Queue, Interface, StateInterface, MemberName, Paused, PausedReason | queue pause |
 * | AMI | QueueMemberRemoved | Queue, Interface | queue membership gone |
 * | AMI | QueueMember (QueueStatus reply) | Queue, Location, StateInterface, Name, Paused, PausedReason | queue pause |
 *
 * PeerStatus is sent by chan_sip (Registered, Unregistered, Reachable, Unreachable, Lagged,
 * Rejected) and by res_pjsip too (Reachable/Unreachable when the endpoint goes online/offline).
 * `Rejected` is a refused REGISTER attempt, which does not remove an existing registration, and
 * `Unknown` says nothing: both are ignored.
 *
 * Device state also says whether a device is reachable: chan_pjsip reports UNAVAILABLE for an
 * endpoint with no available contact, chan_sip for a peer with no address or failing qualify;
 * any in-call or idle state means it is there. This is the only live registration signal for a
 * chan_sip agent when AMI is down (ARI endpoint state for chan_sip is always `unknown`).
 */
import type { AmiMessage } from '../asterisk/ami/protocol.js';
import { get } from '../asterisk/ami/protocol.js';

/** A SIP device as Asterisk names it: `PJSIP/<endpoint>` or `SIP/<peer>` (technology upper-cased). */
export type DeviceKey = string;

export type Fact =
  /** Endpoint-level registration: has (or has not) an available contact. */
  | { kind: 'endpoint'; device: DeviceKey; registered: boolean; source: string }
  /** One pjsip contact appeared (`live`) or went away / became unreachable. */
  | { kind: 'contact'; device: DeviceKey; uri: string; live: boolean; source: string }
  /** Device state: `busy`; `registered` when the state implies it (absent for UNKNOWN/INVALID). */
  | { kind: 'device'; device: DeviceKey; busy: boolean; registered?: boolean; source: string }
  /** A queue member's pause flag (`paused` absent: event without the field, nothing to learn). */
  | { kind: 'queue'; queue: string; member: QueueMemberId; paused?: boolean; reason?: string; removed?: boolean; source: string };

/** How a queue member names itself; mapped back to an agent by the service. */
export interface QueueMemberId {
  /** `Interface` (events) or `Location` (QueueStatus reply), e.g. `PJSIP/alice.smith`, `Local/1001@agents/n`. */
  iface: string;
  stateIface?: string;
  memberName?: string;
}

const DRIVERS = new Set(['PJSIP', 'SIP']);

/** Device states during which the device is in a call. RINGING alone is not busy (nothing answered yet). */
export const BUSY_DEVICE_STATES = new Set(['INUSE', 'BUSY', 'RINGINUSE', 'ONHOLD']);
/** Device states that show the device is registered and reachable. */
const PRESENT_DEVICE_STATES = new Set(['NOT_INUSE', 'INUSE', 'BUSY', 'RINGING', 'RINGINUSE', 'ONHOLD']);

/** Contact statuses of a contact that exists and may be called (pjsip: Unknown/NonQualified = qualify off). */
const LIVE_CONTACT = new Set(['reachable', 'created', 'updated', 'unknown', 'nonqualified', 'unqualified']);
const DEAD_CONTACT = new Set(['unreachable', 'removed']);

const PEER_UP = new Set(['registered', 'reachable', 'lagged']);
const PEER_DOWN = new Set(['unregistered', 'unreachable']);

/** `PJSIP`/`alice` → `PJSIP/alice`; undefined for other technologies or an empty resource. */
export function deviceKey(technology: string | undefined, resource: string | undefined): DeviceKey | undefined {
  const tech = (technology ?? '').trim().toUpperCase();
  const res = (resource ?? '').trim();
  if (!DRIVERS.has(tech) || !res) return undefined;
  return `${tech}/${res}`;
}

/** Parses `PJSIP/alice.smith` (or `SIP/alice/extra`) into a device key; undefined for other shapes. */
export function parseDevice(name: string | undefined): DeviceKey | undefined {
  if (!name) return undefined;
  const slash = name.indexOf('/');
  if (slash <= 0) return undefined;
  return deviceKey(name.slice(0, slash), name.slice(slash + 1).split('/')[0]);
}

/** Parses `Local/1001@switchboard-agents/n` into its extension and context. */
export function parseLocal(name: string | undefined): { exten: string; context?: string } | undefined {
  const m = /^local\/([^@/]+)(?:@([^/]+))?/i.exec(name?.trim() ?? '');
  if (!m) return undefined;
  return { exten: m[1]!, ...(m[2] ? { context: m[2] } : {}) };
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function deviceFact(device: DeviceKey | undefined, state: string | undefined, source: string): Fact[] {
  if (!device || !state) return [];
  const s = state.trim().toUpperCase();
  const busy = BUSY_DEVICE_STATES.has(s);
  if (PRESENT_DEVICE_STATES.has(s)) return [{ kind: 'device', device, busy, registered: true, source }];
  if (s === 'UNAVAILABLE') return [{ kind: 'device', device, busy: false, registered: false, source }];
  return [{ kind: 'device', device, busy: false, source }];
}

function peerFact(device: DeviceKey | undefined, status: string | undefined, source: string): Fact[] {
  if (!device || !status) return [];
  const s = status.trim().toLowerCase();
  if (PEER_UP.has(s)) return [{ kind: 'endpoint', device, registered: true, source }];
  if (PEER_DOWN.has(s)) return [{ kind: 'endpoint', device, registered: false, source }];
  return [];
}

function contactFact(device: DeviceKey | undefined, uri: string | undefined, status: string | undefined, source: string): Fact[] {
  if (!device || !uri || !status) return [];
  const s = status.trim().toLowerCase();
  if (LIVE_CONTACT.has(s)) return [{ kind: 'contact', device, uri, live: true, source }];
  if (DEAD_CONTACT.has(s)) return [{ kind: 'contact', device, uri, live: false, source }];
  return [];
}

/** The ARI event types factsFromAri reads; every other type gives no fact. */
export const ARI_FACT_EVENT_TYPES: ReadonlySet<string> = new Set(['EndpointStateChange', 'PeerStatusChange', 'ContactStatusChange', 'DeviceStateChanged']);

/** Facts in one ARI event (plain JSON as ARI sends it); [] for events presence does not use. */
export function factsFromAri(evt: unknown): Fact[] {
  const e = obj(evt);
  if (!e) return [];
  const type = str(e.type);
  const endpoint = obj(e.endpoint);
  const device = endpoint ? deviceKey(str(endpoint.technology), str(endpoint.resource)) : undefined;
  switch (type) {
    case 'EndpointStateChange': {
      const state = str(endpoint?.state)?.toLowerCase();
      if (!device || (state !== 'online' && state !== 'offline')) return [];
      return [{ kind: 'endpoint', device, registered: state === 'online', source: 'ari:EndpointStateChange' }];
    }
    case 'PeerStatusChange':
      return peerFact(device, str(obj(e.peer)?.peer_status), 'ari:PeerStatusChange');
    case 'ContactStatusChange': {
      const info = obj(e.contact_info);
      return contactFact(device, str(info?.uri), str(info?.contact_status), 'ari:ContactStatusChange');
    }
    case 'DeviceStateChanged': {
      const ds = obj(e.device_state);
      return deviceFact(parseDevice(str(ds?.name)), str(ds?.state), 'ari:DeviceStateChanged');
    }
    default:
      return [];
  }
}

function pausedFlag(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  const t = v.trim().toLowerCase();
  if (t === '1' || t === 'true' || t === 'yes') return true;
  if (t === '0' || t === 'false' || t === 'no') return false;
  return undefined;
}

/**
 * The pause reason: `PausedReason` (Asterisk 13.x and later, as documented for 20); `Reason` is
 * what QueueMemberPause carried in Asterisk 12, read only when `PausedReason` is absent.
 */
function pauseReason(msg: AmiMessage): string | undefined {
  const r = get(msg, 'PausedReason') ?? get(msg, 'Reason');
  return r && r.trim() ? r.trim() : undefined;
}

/** Facts in one AMI event; [] for events presence does not use. */
export function factsFromAmi(msg: AmiMessage): Fact[] {
  const event = get(msg, 'Event');
  if (!event) return [];
  const src = `ami:${event}`;
  switch (event.toLowerCase()) {
    case 'peerstatus': {
      const peer = get(msg, 'Peer');
      const device = peer?.includes('/') ? parseDevice(peer) : deviceKey(get(msg, 'ChannelType'), peer);
      return peerFact(device, get(msg, 'PeerStatus'), src);
    }
    case 'contactstatus': {
      const device = deviceKey('PJSIP', get(msg, 'EndpointName') || get(msg, 'AOR'));
      return contactFact(device, get(msg, 'URI'), get(msg, 'ContactStatus'), src);
    }
    case 'devicestatechange':
      return deviceFact(parseDevice(get(msg, 'Device')), get(msg, 'State'), src);
    case 'queuememberpause':
    case 'queuememberstatus':
    case 'queuememberadded':
    case 'queuemember':
    case 'queuememberremoved': {
      const queue = get(msg, 'Queue');
      const iface = get(msg, 'Interface') ?? get(msg, 'Location');
      if (!queue || !iface) return [];
      const stateIface = get(msg, 'StateInterface');
      const memberName = get(msg, 'MemberName') ?? get(msg, 'Name');
      const member: QueueMemberId = { iface, ...(stateIface ? { stateIface } : {}), ...(memberName ? { memberName } : {}) };
      if (event.toLowerCase() === 'queuememberremoved') return [{ kind: 'queue', queue, member, removed: true, source: src }];
      const paused = pausedFlag(get(msg, 'Paused'));
      const reason = paused ? pauseReason(msg) : undefined;
      return [{ kind: 'queue', queue, member, ...(paused !== undefined ? { paused } : {}), ...(reason ? { reason } : {}), source: src }];
    }
    default:
      return [];
  }
}
