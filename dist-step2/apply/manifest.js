/**
 * What Asterisk has loaded, as far as switchboard knows: the hash of each managed file at the last
 * verified apply, and per agent a digest of its view models (to tell which agents a new store
 * changes) plus the values verification asks Asterisk about. Kept in `<stateDir>/manifest.json`,
 * written only after a verified reload, so an apply that crashed, rolled back or ran without AMI
 * leaves it describing what Asterisk still runs.
 */
import { createHash } from 'node:crypto';
import { readIfExists, writeFileAtomic } from '../fsutil.js';
import { OUTPUT_FILES } from '../render/render.js';
import { mailboxOf, planDids, planExtensionAgent, planPjsipAgent, planSipAgent, planSpy, planVoicemailAgent, } from '../render/plan.js';
export const KINDS = ['pjsip', 'sip', 'voicemail', 'extensions'];
export const FILE_OF_KIND = {
    pjsip: OUTPUT_FILES.pjsip,
    sip: OUTPUT_FILES.sip,
    voicemail: OUTPUT_FILES.voicemail,
    extensions: OUTPUT_FILES.extensions,
};
export const MANAGED_FILES = KINDS.map((k) => FILE_OF_KIND[k]);
export const ABSENT = 'absent';
export function hashContent(data) {
    if (data === undefined)
        return ABSENT;
    return createHash('sha256').update(data).digest('hex');
}
function digest(value) {
    // Views hold passwords: only a truncated hash of them is ever stored.
    return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 32);
}
export function usesPjsip(backend) {
    return backend === 'pjsip' || backend === 'both';
}
export function usesSip(backend) {
    return backend === 'sip' || backend === 'both';
}
/** Per-agent expectations and digests for `store` rendered for `backend`. */
export function agentStates(store, backend, cache) {
    const settings = backend === store.settings.backend ? store.settings : { ...store.settings, backend };
    const out = {};
    const known = cache?.for(store.settings, backend);
    for (const a of store.agents) {
        let state = known?.get(a);
        if (!state) {
            state = agentState(a, settings, backend);
            known?.set(a, state);
        }
        out[a.username] = state;
    }
    return out;
}
/**
 * Remembers each agent's state by agent object (the store keeps unchanged agents' objects across
 * reloads), as the Renderer does: after a one-file edit only that agent is planned again.
 */
export class AgentStateCache {
    map = new WeakMap();
    settings;
    backend;
    /** The states remembered for these settings and backend (forgetting any others). */
    for(settings, backend) {
        if (settings !== this.settings || backend !== this.backend) {
            this.map = new WeakMap();
            this.settings = settings;
            this.backend = backend;
        }
        return this.map;
    }
}
function agentState(a, settings, backend) {
    const state = { id: a.id, digests: {} };
    if (usesPjsip(backend)) {
        const v = planPjsipAgent(a, settings);
        state.digests.pjsip = digest(v);
        state.pjsip = {
            context: v.endpoint.context,
            allow: v.endpoint.allow,
            transport: v.endpoint.transport,
            callGroup: v.endpoint.callGroup ?? '',
            pickupGroup: v.endpoint.pickupGroup ?? '',
            mediaEncryption: v.endpoint.webrtc ? 'dtls' : (v.endpoint.mediaEncryption ?? 'no'),
            mailboxes: v.endpoint.mailboxes ?? '',
            maxContacts: v.aor.maxContacts,
            auth: v.auth.name,
            authUsername: v.auth.username,
            ...(v.identify ? { identify: v.identify.name } : {}),
        };
    }
    if (usesSip(backend)) {
        const v = planSipAgent(a, settings);
        state.digests.sip = digest(v);
        state.sip = {
            type: v.type,
            context: v.context,
            allow: v.allow,
            callGroup: v.callgroup ?? '',
            pickupGroup: v.pickupgroup ?? '',
            mailbox: v.mailbox ?? '',
            encryption: v.encryption,
        };
    }
    const vm = planVoicemailAgent(a);
    state.digests.voicemail = digest(vm ?? null);
    if (vm) {
        const box = mailboxOf(a, settings);
        state.voicemail = { context: box.slice(box.indexOf('@') + 1), mailbox: vm.mailbox, fullname: vm.fullname, email: vm.email };
    }
    state.digests.extensions = digest([planExtensionAgent(a, settings), planSpy(a, settings) ?? null, planDids(a, settings)]);
    return state;
}
export async function readManifest(file) {
    const text = await readIfExists(file);
    if (text === undefined)
        return undefined;
    try {
        const m = JSON.parse(text);
        if (m && m.version === 1 && typeof m.files === 'object' && typeof m.agents === 'object')
            return m;
    }
    catch {
        // Unreadable: treated as unknown (everything is reloaded and verified).
    }
    return undefined;
}
export function writeManifest(file, manifest) {
    return writeFileAtomic(file, JSON.stringify(manifest) + '\n', 0o640);
}
/** Usernames added, changed (any digest differs) and removed between two states, sorted. */
export function diffAgents(before, after) {
    const added = [];
    const changed = [];
    const removed = [];
    for (const name in after) {
        const next = after[name];
        const prev = Object.hasOwn(before, name) ? before[name] : undefined;
        // The same state object (AgentStateCache keeps an unchanged agent's): nothing to compare.
        if (prev === next)
            continue;
        if (!prev)
            added.push(name);
        else if (prev.id !== next.id || KINDS.some((k) => prev.digests[k] !== next.digests[k]))
            changed.push(name);
    }
    for (const name in before)
        if (!Object.hasOwn(after, name))
            removed.push(name);
    return { added: added.sort(), changed: changed.sort(), removed: removed.sort() };
}
//# sourceMappingURL=manifest.js.map