import path from 'node:path';
import { SwitchboardError } from '../../errors.js';
import { loadStore } from '../../store/yaml-store.js';
import { printIssues } from '../common.js';
import { composePresence, REASON_DISABLED } from '../../presence/compose.js';
import { formatDuration, parseDuration } from '../../presence/duration.js';
import { PresenceError, UnknownAgentError } from '../../presence/errors.js';
import { makeManualEntry } from '../../presence/manual.js';
import { daemonRunning, entryActive, readManualDoc, readStatusDoc, stateFileIn, statusFileIn, updateManualDoc, } from '../../presence/state-file.js';
import { MANUAL_STATES } from '../../presence/types.js';
const DEFAULT_DATA_DIR = './var';
function commonOptions(y) {
    return y
        .option('data', {
        type: 'string',
        default: process.env.SWITCHBOARD_DATA_DIR || DEFAULT_DATA_DIR,
        defaultDescription: '$SWITCHBOARD_DATA_DIR, else ./var',
        describe: 'data directory holding presence.json (manual states) and presence-status.json (the daemon\'s live view)',
    })
        .option('store', { type: 'string', describe: 'agent store directory, to resolve agent ids and usernames' })
        .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON on stdout' });
}
/** Input mistakes leave with exit code 2 (USAGE) and the library's own message. */
function asUsage(err) {
    if (err instanceof PresenceError && err.code !== 'PRESENCE_STATE_FILE') {
        throw new SwitchboardError('USAGE', err.message, { presenceCode: err.code }, { cause: err });
    }
    throw err;
}
async function loadAgents(storeDir) {
    const result = await loadStore(path.resolve(storeDir));
    if (!result.store) {
        printIssues(result.issues.filter((i) => i.severity === 'error'));
        throw new SwitchboardError('STORE_INVALID', `the store ${storeDir} is invalid: run "switchboard validate --store ${storeDir}"`);
    }
    return result.store.agents;
}
function findAgent(agents, idOrUsername) {
    const agent = agents.find((a) => a.id === idOrUsername) ?? agents.find((a) => a.username === idOrUsername);
    if (!agent)
        asUsage(new UnknownAgentError(idOrUsername));
    return agent;
}
function time(iso, now) {
    if (!iso)
        return '-';
    const ms = Date.parse(iso);
    const rel = ms <= now ? `${formatDuration(now - ms)} ago` : `in ${formatDuration(ms - now)}`;
    return `${iso.slice(0, 19).replace('T', ' ')}Z (${rel})`;
}
function table(rows) {
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd()).join('\n') + '\n';
}
async function waitForDaemon(statusFile, revision, waitMs) {
    const deadline = Date.now() + waitMs;
    for (;;) {
        const status = await readStatusDoc(statusFile);
        if (!status || !daemonRunning(status))
            return undefined;
        if (status.manualRevision >= revision)
            return status;
        if (Date.now() >= deadline)
            return undefined;
        await new Promise((r) => setTimeout(r, 50));
    }
}
const setCommand = {
    command: 'set <agent> <state>',
    describe: 'Pause an agent (optionally for a while) or make them available again',
    builder: (y) => commonOptions(y)
        .positional('agent', { type: 'string', demandOption: true, describe: 'agent id or username' })
        .positional('state', { choices: MANUAL_STATES, demandOption: true, describe: 'paused or available (logged out and busy come from Asterisk)' })
        .option('reason', { type: 'string', describe: 'why paused, e.g. Lunch (paused only; one line, at most 100 characters)' })
        .option('for', { type: 'string', describe: 'pause length, e.g. 30m, 1h30m, 45s, 2h (paused only; at most 7d); available again after it' })
        .option('wait', { type: 'number', default: 3000, describe: 'ms to wait for a running daemon to confirm the change (0: do not wait)' })
        .demandOption('store', 'give --store: the agent store is needed to check the agent exists')
        .example('$0 presence set alice.smith paused --reason Lunch --for 30m --store /srv/agents', 'a 30-minute lunch pause; DID calls go to voicemail until it ends')
        .example('$0 presence set 1001 paused --reason Training --store /srv/agents', 'paused until set available again')
        .example('$0 presence set alice.smith available --store /srv/agents', 'end a switchboard pause now'),
    handler: async (args) => {
        const now = Date.now();
        let forMs;
        try {
            if (args.for !== undefined)
                forMs = parseDuration(args.for);
            // Check the request before touching any file.
            makeManualEntry(args.state, { ...(args.reason !== undefined ? { reason: args.reason } : {}), ...(forMs !== undefined ? { forMs } : {}) }, now);
        }
        catch (err) {
            asUsage(err);
        }
        const agents = await loadAgents(args.store);
        const agent = findAgent(agents, args.agent);
        const entry = makeManualEntry(args.state, { ...(args.reason !== undefined ? { reason: args.reason } : {}), ...(forMs !== undefined ? { forMs } : {}) }, now, { username: agent.username, by: 'cli' });
        const doc = await updateManualDoc(stateFileIn(args.data), now, (d) => {
            d.agents[agent.id] = entry;
        });
        const status = await readStatusDoc(statusFileIn(args.data));
        const running = daemonRunning(status) ? status : undefined;
        const confirmed = running && args.wait >= 0 ? await waitForDaemon(statusFileIn(args.data), doc.revision, args.wait) : undefined;
        const live = confirmed?.agents.find((p) => p.agentId === agent.id);
        if (args.json) {
            process.stdout.write(JSON.stringify({ agentId: agent.id, username: agent.username, manual: entry, revision: doc.revision, daemon: { running: Boolean(running), applied: Boolean(confirmed) }, ...(live ? { presence: live } : {}) }, null, 2) + '\n');
            return;
        }
        const what = entry.state === 'paused'
            ? `paused${entry.reason ? ` (${entry.reason})` : ''}${entry.until ? ` until ${time(entry.until, now)}` : ' until set available'}`
            : 'available (switchboard pause cleared)';
        process.stdout.write(`${agent.username} (${agent.id}): ${what}\n`);
        if (!agent.enabled)
            process.stdout.write(`note: login is disabled in the store, so ${agent.username} stays logged out\n`);
        if (confirmed) {
            process.stdout.write(`the running daemon applied it${live ? `: ${agent.username} is now ${live.state}${live.reason ? ` (${live.reason})` : ''}` : ''}\n`);
            if (entry.state === 'available' && live?.detail.pausedBy === 'queue') {
                process.stdout.write('note: the agent is still paused in an Asterisk queue; unpause them there\n');
            }
        }
        else if (running) {
            process.stdout.write(`saved; the running daemon (pid ${running.pid}) has not confirmed it within ${args.wait} ms\n`);
        }
        else {
            process.stdout.write('saved; the switchboard daemon is not running: it applies this when it starts\n');
        }
    },
};
const listCommand = {
    command: 'list',
    describe: 'Show every agent\'s presence: live from the running daemon, else the manual states',
    builder: (y) => commonOptions(y)
        .example('$0 presence list', 'states, reasons and since-when (data in ./var or $SWITCHBOARD_DATA_DIR)')
        .example('$0 presence list --data /var/lib/switchboard --store /srv/agents --json', 'for machines'),
    handler: async (args) => {
        const now = Date.now();
        const doc = await readManualDoc(stateFileIn(args.data));
        const status = await readStatusDoc(statusFileIn(args.data));
        const running = daemonRunning(status) ? status : undefined;
        const agents = args.store ? await loadAgents(args.store) : undefined;
        let rows;
        if (running) {
            rows = running.agents;
        }
        else {
            // Without the daemon only the store and the manual states are known; registration, queue
            // pauses and calls are not, so registered is 'unknown' and busy false.
            const subjects = agents
                ? agents.map((a) => ({ id: a.id, username: a.username, enabled: a.enabled }))
                : Object.entries(doc.agents).map(([id, e]) => ({ id, username: e.username ?? '?', enabled: true })).sort((a, b) => (a.id < b.id ? -1 : 1));
            rows = subjects.map((s) => {
                const entry = doc.agents[s.id];
                const manual = entry && entryActive(entry, now) ? entry : undefined;
                const p = composePresence({ agentId: s.id, username: s.username, enabled: s.enabled, registered: 'unknown', busy: false, ...(manual ? { manual } : {}) });
                const since = p.state === 'paused' ? manual?.since : manual?.state === 'available' && p.reason !== REASON_DISABLED ? manual.since : undefined;
                return { ...p, ...(since ? { since } : {}) };
            });
        }
        const lagging = running !== undefined && doc.revision > running.manualRevision;
        if (args.json) {
            process.stdout.write(JSON.stringify({
                dataDir: args.data,
                live: Boolean(running),
                daemon: running
                    ? { running: true, pid: running.pid, startedAt: running.startedAt, updatedAt: running.writtenAt, appliedRevision: running.manualRevision, fileRevision: doc.revision }
                    : { running: false, ...(status?.stoppedAt ? { stoppedAt: status.stoppedAt } : {}) },
                agents: rows,
            }, null, 2) + '\n');
            return;
        }
        if (running) {
            process.stdout.write(`live states from the switchboard daemon (pid ${running.pid}), updated ${time(running.writtenAt, now)}\n`);
            if (lagging)
                process.stdout.write('note: the daemon has not yet applied the latest manual change\n');
        }
        else {
            process.stdout.write('the switchboard daemon is not running: showing manual states only; live sources (registration, queue pauses, calls) are unknown\n');
        }
        if (!rows.length) {
            process.stdout.write(agents || running ? 'no agents\n' : `no manual states in ${stateFileIn(args.data)} (give --store to list every agent)\n`);
            return;
        }
        const reg = (r) => (r.detail.registered === 'unknown' ? 'unknown' : r.detail.registered ? 'yes' : 'no');
        process.stdout.write(table([
            ['AGENT', 'USERNAME', 'STATE', 'REASON', 'REGISTERED', 'SINCE', 'UNTIL'],
            ...rows.map((r) => [r.agentId, r.username, r.state, r.reason ?? '-', reg(r), time(r.since, now), time(r.until, now)]),
        ]));
    },
};
export const presenceCommand = {
    command: 'presence <command>',
    describe: 'Pause agents, make them available, list live presence',
    builder: (y) => y
        .command(setCommand)
        .command(listCommand)
        .demandCommand(1, 'name a presence command: set or list')
        .example('$0 presence set alice.smith paused --reason Lunch --for 30m --store /srv/agents', '')
        .example('$0 presence set alice.smith available --store /srv/agents', '')
        .example('$0 presence list --json', ''),
    handler: () => { },
};
//# sourceMappingURL=presence.js.map