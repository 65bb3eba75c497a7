import { get } from '../asterisk/ami/protocol.js';
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
export function deviceKey(technology, resource) {
    const tech = (technology ?? '').trim().toUpperCase();
    const res = (resource ?? '').trim();
    if (!DRIVERS.has(tech) || !res)
        return undefined;
    return `${tech}/${res}`;
}
/** Parses `PJSIP/alice.smith` (or `SIP/alice/extra`) into a device key; undefined for other shapes. */
export function parseDevice(name) {
    if (!name)
        return undefined;
    const slash = name.indexOf('/');
    if (slash <= 0)
        return undefined;
    return deviceKey(name.slice(0, slash), name.slice(slash + 1).split('/')[0]);
}
/** Parses `Local/1001@switchboard-agents/n` into its extension and context. */
export function parseLocal(name) {
    const m = /^local\/([^@/]+)(?:@([^/]+))?/i.exec(name?.trim() ?? '');
    if (!m)
        return undefined;
    return { exten: m[1], ...(m[2] ? { context: m[2] } : {}) };
}
function obj(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
}
function str(v) {
    return typeof v === 'string' ? v : undefined;
}
function deviceFact(device, state, source) {
    if (!device || !state)
        return [];
    const s = state.trim().toUpperCase();
    const busy = BUSY_DEVICE_STATES.has(s);
    if (PRESENT_DEVICE_STATES.has(s))
        return [{ kind: 'device', device, busy, registered: true, source }];
    if (s === 'UNAVAILABLE')
        return [{ kind: 'device', device, busy: false, registered: false, source }];
    return [{ kind: 'device', device, busy: false, source }];
}
function peerFact(device, status, source) {
    if (!device || !status)
        return [];
    const s = status.trim().toLowerCase();
    if (PEER_UP.has(s))
        return [{ kind: 'endpoint', device, registered: true, source }];
    if (PEER_DOWN.has(s))
        return [{ kind: 'endpoint', device, registered: false, source }];
    return [];
}
function contactFact(device, uri, status, source) {
    if (!device || !uri || !status)
        return [];
    const s = status.trim().toLowerCase();
    if (LIVE_CONTACT.has(s))
        return [{ kind: 'contact', device, uri, live: true, source }];
    if (DEAD_CONTACT.has(s))
        return [{ kind: 'contact', device, uri, live: false, source }];
    return [];
}
/** Facts in one ARI event (plain JSON as ARI sends it); [] for events presence does not use. */
export function factsFromAri(evt) {
    const e = obj(evt);
    if (!e)
        return [];
    const type = str(e.type);
    const endpoint = obj(e.endpoint);
    const device = endpoint ? deviceKey(str(endpoint.technology), str(endpoint.resource)) : undefined;
    switch (type) {
        case 'EndpointStateChange': {
            const state = str(endpoint?.state)?.toLowerCase();
            if (!device || (state !== 'online' && state !== 'offline'))
                return [];
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
function pausedFlag(v) {
    if (v === undefined)
        return undefined;
    const t = v.trim().toLowerCase();
    if (t === '1' || t === 'true' || t === 'yes')
        return true;
    if (t === '0' || t === 'false' || t === 'no')
        return false;
    return undefined;
}
/**
 * The pause reason: `PausedReason` (Asterisk 13.x and later, as documented for 20); `Reason` is
 * what QueueMemberPause carried in Asterisk 12, read only when `PausedReason` is absent.
 */
function pauseReason(msg) {
    const r = get(msg, 'PausedReason') ?? get(msg, 'Reason');
    return r && r.trim() ? r.trim() : undefined;
}
/** Facts in one AMI event; [] for events presence does not use. */
export function factsFromAmi(msg) {
    const event = get(msg, 'Event');
    if (!event)
        return [];
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
            if (!queue || !iface)
                return [];
            const stateIface = get(msg, 'StateInterface');
            const memberName = get(msg, 'MemberName') ?? get(msg, 'Name');
            const member = { iface, ...(stateIface ? { stateIface } : {}), ...(memberName ? { memberName } : {}) };
            if (event.toLowerCase() === 'queuememberremoved')
                return [{ kind: 'queue', queue, member, removed: true, source: src }];
            const paused = pausedFlag(get(msg, 'Paused'));
            const reason = paused ? pauseReason(msg) : undefined;
            return [{ kind: 'queue', queue, member, ...(paused !== undefined ? { paused } : {}), ...(reason ? { reason } : {}), source: src }];
        }
        default:
            return [];
    }
}
//# sourceMappingURL=sources.js.map