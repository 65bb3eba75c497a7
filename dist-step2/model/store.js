/**
 * What validateAgents remembers from its last call on a store whose agents were all valid
 * together (no duplicate, every extension assigned), so that the next call, in which only a few
 * agents changed without changing their id, file or `extension` field, checks just those agents'
 * usernames and DIDs against the others instead of all of them against each other. Anything else
 * (an agent added, removed or renamed, an extension field changed, a clash, other settings or
 * assignments) runs the full check. Pass the same instance with the same memo each time, and
 * never change `previous` in place while using it.
 */
export class CrossAgentCache {
    /** @internal The last call: its inputs and what the full check built from them. */
    last;
}
/**
 * Cross-agent rules: uniqueness of id, username, extension and every DID; stable extension
 * assignment from the range for agents that leave `extension` out. Returns agents sorted by id.
 */
export function validateAgents(drafts, settings, issues, previous = new Map(), memo = new WeakMap(), { cache, adopt = false } = {}) {
    const quick = cache ? updateFew(cache, drafts, settings, previous, memo) : undefined;
    if (quick) {
        warn(quick.reported, settings, issues);
        return quick.sorted.slice();
    }
    if (cache)
        cache.last = undefined;
    // The same draft with the same extension yields the same Agent object, so renderers can cache
    // per-agent output by identity and a one-file edit re-renders one agent.
    const finish = (a, extension, auto) => {
        if (adopt) {
            const agent = a;
            agent.extension = extension;
            agent.extensionAutoAssigned = auto;
            return agent;
        }
        const m = memo.get(a);
        if (m && m.extension === extension && m.extensionAutoAssigned === auto)
            return m;
        const agent = { ...a, extension, extensionAutoAssigned: auto };
        memo.set(a, agent);
        return agent;
    };
    const byUser = new Map();
    const byExt = new Map();
    const byDid = new Map();
    const dup = (what, field, value, a, b, fix) => issues.add({
        code: `DUPLICATE_${what.toUpperCase()}`,
        file: b.file,
        agent: `${b.id} ${b.username}`,
        field,
        value,
        rule: `${what} ${JSON.stringify(value)} is already used by agent "${a.id} ${a.username}" in ${a.file}`,
        fix,
    });
    const kept = [];
    let clean = true;
    // Sorted by id, agents sharing an id are neighbours: the first one kept is the one they clash with.
    let id;
    let keptWithId;
    for (const a of [...drafts].sort((x, y) => cmpId(x.id, y.id) || x.file.localeCompare(y.file))) {
        let ok = true;
        if (a.id !== id) {
            id = a.id;
            keptWithId = undefined;
        }
        if (keptWithId) {
            dup('id', 'id', a.id, keptWithId, a, 'give each agent its own ID');
            ok = false;
        }
        const user = a.username.toLowerCase();
        const u = byUser.get(user);
        if (u) {
            dup('username', 'username', a.username, u, a, 'usernames are unique (case does not count)');
            ok = false;
        }
        if (a.extension) {
            const e = byExt.get(a.extension);
            if (e) {
                dup('extension', 'extension', a.extension, e, a, 'choose a free internal number, or leave extension out to have one assigned');
                ok = false;
            }
        }
        for (const d of a.dids) {
            const o = byDid.get(d);
            if (o) {
                dup('DID', 'dids', d, o, a, 'a DID rings exactly one agent: remove it from one of them');
                ok = false;
            }
        }
        if (!ok) {
            clean = false;
            continue;
        }
        keptWithId = a;
        byUser.set(user, a);
        if (a.extension)
            byExt.set(a.extension, a);
        for (const d of a.dids)
            byDid.set(d, a);
        kept.push(a);
    }
    // Stable auto-assignment: keep the extension a previous run gave the agent when it is still free
    // and in the range; otherwise take the lowest free number of the range.
    const { from, to, width } = settings.extensions;
    const inRange = (e) => e.length === width && Number(e) >= from && Number(e) <= to;
    const pending = [];
    // Chosen before any extension is assigned (with `adopt`, assigning one sets the draft's field).
    const explicit = [];
    const agents = [];
    for (const a of kept) {
        if (a.extension) {
            explicit.push(a);
            continue;
        }
        const prev = previous.get(a.id);
        if (prev && inRange(prev) && !byExt.has(prev)) {
            byExt.set(prev, a);
            agents.push(finish(a, prev, true));
        }
        else
            pending.push(a);
    }
    let next = from;
    for (const a of pending) {
        while (next <= to && byExt.has(String(next).padStart(width, '0')))
            next++;
        if (next > to) {
            clean = false;
            issues.add({
                code: 'EXTENSION_RANGE_FULL', file: a.file, agent: `${a.id} ${a.username}`, field: 'extension',
                rule: `no free extension is left in the range ${from}-${to}`, fix: 'widen extensions.from/to in switchboard.yaml, or give this agent an extension',
            });
            continue;
        }
        const ext = String(next).padStart(width, '0');
        byExt.set(ext, a);
        agents.push(finish(a, ext, true));
    }
    for (const a of explicit)
        agents.push(finish(a, a.extension, false));
    warn(agents, settings, issues);
    const reported = agents.slice();
    const sorted = agents.sort((x, y) => cmpId(x.id, y.id));
    if (cache && clean)
        cache.last = { drafts: drafts.slice(), settings, previous, memo, byUser, byDid, reported, sorted: sorted.slice() };
    return sorted;
}
function warn(agents, settings, issues) {
    if (settings.backend !== 'both')
        return;
    for (const a of agents) {
        if (a.typology === 'webrtc') {
            issues.add({
                severity: 'warning', code: 'WEBRTC_WITH_CHAN_SIP', file: a.file, agent: `${a.id} ${a.username}`, field: 'typology', value: 'webrtc',
                rule: 'with both drivers loaded only one can take the "sip" websocket protocol: switchboard turns chan_sip\'s off (websocket_enabled = false in sip_switchboard.conf), so this agent connects through pjsip only',
                fix: 'nothing, if the operator\'s sip.conf does not set websocket_enabled = true after the #include; or use backend: pjsip',
            });
        }
    }
}
/** At most this many changed agents take the quick path (each costs two scans of the list). */
const QUICK_MAX = 8;
/**
 * The full check's result for `drafts` when they differ from the last call's only in a few agents
 * that kept their id, file and `extension` field and clash with no other agent; otherwise
 * undefined. Such agents keep their place (sorted by id, then file) and their extension (the
 * assignment depends only on ids, explicit extensions and the saved assignments, all unchanged),
 * and every agent stays valid together, exactly as the full check would find.
 */
function updateFew(cache, drafts, settings, previous, memo) {
    const last = cache.last;
    if (!last || last.settings !== settings || last.previous !== previous || last.memo !== memo || last.drafts.length !== drafts.length)
        return undefined;
    const changed = [];
    for (let i = 0; i < drafts.length; i++) {
        if (drafts[i] === last.drafts[i])
            continue;
        const a = last.drafts[i];
        const b = drafts[i];
        if (changed.length === QUICK_MAX || a.id !== b.id || a.file !== b.file || a.extension !== b.extension || !memo.has(a))
            return undefined;
        changed.push(i);
    }
    // The changed agents' usernames and DIDs must clash neither with the unchanged agents' nor
    // with each other's.
    const olds = new Set(changed.map((i) => last.drafts[i]));
    const users = new Set();
    const dids = new Set();
    for (const i of changed) {
        const b = drafts[i];
        const user = b.username.toLowerCase();
        const u = last.byUser.get(user);
        if ((u && !olds.has(u)) || users.has(user))
            return undefined;
        users.add(user);
        for (const d of b.dids) {
            const o = last.byDid.get(d);
            if ((o && !olds.has(o)) || dids.has(d))
                return undefined;
            dids.add(d);
        }
    }
    const reported = last.reported.slice();
    const sorted = last.sorted.slice();
    const places = [];
    for (const i of changed) {
        const old = memo.get(last.drafts[i]);
        const r = reported.indexOf(old);
        const s = sorted.indexOf(old);
        if (r === -1 || s === -1)
            return undefined;
        places.push([r, s]);
    }
    const { byUser, byDid } = last;
    for (const i of changed) {
        const a = last.drafts[i];
        const user = a.username.toLowerCase();
        if (byUser.get(user) === a)
            byUser.delete(user);
        for (const d of a.dids)
            if (byDid.get(d) === a)
                byDid.delete(d);
    }
    changed.forEach((i, k) => {
        const b = drafts[i];
        byUser.set(b.username.toLowerCase(), b);
        for (const d of b.dids)
            byDid.set(d, b);
        const old = memo.get(last.drafts[i]);
        let agent = memo.get(b);
        if (!agent || agent.extension !== old.extension || agent.extensionAutoAssigned !== old.extensionAutoAssigned) {
            agent = { ...b, extension: old.extension, extensionAutoAssigned: old.extensionAutoAssigned };
            memo.set(b, agent);
        }
        const [r, s] = places[k];
        reported[r] = agent;
        sorted[s] = agent;
    });
    cache.last = { ...last, drafts: drafts.slice(), reported, sorted };
    return { reported, sorted };
}
export function cmpId(a, b) {
    return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}
//# sourceMappingURL=store.js.map