import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { IssueList } from '../model/issues.js';
import { validateSettings } from '../model/settings.js';
import { validateAgent } from '../model/agent.js';
import { CrossAgentCache, validateAgents } from '../model/store.js';
import { parseYamlSource } from './source.js';
import { own, parseSimpleSource } from './simple-yaml.js';
import { readAssignments, writeAssignments } from './assignments.js';
export const SETTINGS_FILE = 'switchboard.yaml';
export const AGENTS_DIR = 'agents';
/** True for the files that make up a store (used by the daemon's watcher too). */
export function isStoreFile(storeDir, file) {
    const rel = path.relative(storeDir, file).split(path.sep).join('/');
    if (rel === SETTINGS_FILE)
        return true;
    return /^agents\/[^/]+\.ya?ml$/.test(rel) && !path.basename(rel).startsWith('.');
}
/** The issues of a file that has none (one shared, never changed, list instead of one per file). */
const NO_ISSUES = Object.freeze([]);
/**
 * The embedded agent store: a directory with `switchboard.yaml` and `agents/*.yaml`. Keeps every
 * parsed file so that a change to one agent re-reads and re-validates only what it must.
 */
export class YamlStore {
    dir;
    options;
    settingsDraft;
    settingsIssues = [];
    drafts = new Map();
    memo = new WeakMap();
    /** Lets a one-file change re-check that agent against the others rather than all pairs. */
    cross = new CrossAgentCache();
    /** The valid agents and the files' issues in file order, as result() hands them on; undefined
     * when a file was added or removed or an agent file changed from or to having issues. */
    collected;
    assignments = new Map();
    loaded = false;
    /** `once`: the store is read once (CLI commands): nothing is kept for reloadFile, which then
     * reads the whole store again. */
    constructor(dir, options = {}) {
        this.dir = dir;
        this.options = options;
    }
    /** Reads the whole store from disk. */
    async loadAll() {
        this.assignments = await readAssignments(this.dir);
        await this.readSettings();
        this.drafts.clear();
        this.collected = undefined;
        this.cross = new CrossAgentCache();
        const agentsDir = path.join(this.dir, AGENTS_DIR);
        let names = [];
        try {
            names = (await fs.readdir(agentsDir)).filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.')).sort();
        }
        catch (err) {
            if (err.code !== 'ENOENT')
                throw err;
        }
        // One file at a time, synchronously: parsing is synchronous anyway, and reading every file at
        // once with fs.promises opened them all together (EMFILE past the fd limit, ~100k files) and
        // took 0.7-1.5 s for 10k files where readFileSync takes 0.06-0.2 s (see BENCHMARKS.md).
        // The relative path is every agent's `file` and its key here: one flat string (own()).
        for (const n of names)
            this.parseAgent(own(`${AGENTS_DIR}/${n}`), readFileSync(path.join(agentsDir, n), 'utf8'));
        this.loaded = true;
        // A store loaded once (the CLI) needs none of the bookkeeping that speeds up reloadFile.
        const result = this.result(false);
        if (this.options.once) {
            // Only the agents are needed from here on: free the per-file drafts (a third of the memory).
            this.drafts.clear();
            this.loaded = false;
        }
        return result;
    }
    /**
     * Re-reads one changed (or removed) file: an agent file, or switchboard.yaml (which re-validates
     * every agent, since defaults may have changed). Returns the new state of the whole store.
     */
    async reloadFile(absPath) {
        if (!this.loaded)
            return this.loadAll();
        const rel = path.relative(this.dir, absPath).split(path.sep).join('/');
        if (rel === SETTINGS_FILE)
            return this.loadAll();
        if (!isStoreFile(this.dir, absPath))
            return this.result(true);
        let text;
        try {
            // Synchronous, as in loadAll: one small file, read faster than a thread-pool round trip.
            text = readFileSync(absPath, 'utf8');
        }
        catch (err) {
            if (err.code !== 'ENOENT')
                throw err;
        }
        if (text === undefined) {
            if (this.drafts.delete(rel))
                this.collected = undefined;
        }
        else
            this.parseAgent(rel, text);
        return this.result(true);
    }
    /** Saves auto-assigned extensions so they stay the same on the next run. */
    async saveAssignments(store) {
        const next = new Map(store.agents.filter((a) => a.extensionAutoAssigned).map((a) => [a.id, a.extension]));
        const same = next.size === this.assignments.size && [...next].every(([k, v]) => this.assignments.get(k) === v);
        if (same)
            return;
        await writeAssignments(this.dir, next);
        this.assignments = next;
    }
    async readSettings() {
        const issues = new IssueList();
        let text = '';
        try {
            text = await fs.readFile(path.join(this.dir, SETTINGS_FILE), 'utf8');
        }
        catch (err) {
            if (err.code !== 'ENOENT')
                throw err;
            try {
                await fs.access(this.dir);
            }
            catch {
                issues.add({ code: 'STORE_MISSING', file: this.dir, rule: 'the store directory does not exist', fix: 'pass --store DIR pointing at a directory with switchboard.yaml and agents/' });
            }
        }
        const doc = parseYamlSource(SETTINGS_FILE, text, issues);
        this.settingsDraft = validateSettings(doc, issues);
        this.settingsIssues = issues.items;
    }
    parseAgent(rel, text) {
        const issues = new IssueList();
        // Agent files are plain YAML: most take the fast reader, the rest the full parser.
        const doc = parseSimpleSource(rel, text) ?? parseYamlSource(rel, text, issues);
        const agent = issues.hasErrors ? undefined : validateAgent(doc, this.settingsDraft, issues);
        const before = this.drafts.get(rel);
        const items = issues.items.length ? issues.items : NO_ISSUES;
        this.drafts.set(rel, agent ? { agent, issues: items } : { issues: items });
        // A valid agent replaced by a valid agent keeps its place in the collected list.
        const c = this.collected;
        if (c && agent && before?.agent && !before.issues.length && !issues.items.length)
            c.drafts[c.at.get(rel)] = agent;
        else
            this.collected = undefined;
    }
    /** The store's state; `keep`: remember what makes the next reloadFile quick (after a change). */
    result(keep) {
        let c = this.collected;
        if (!c) {
            c = { drafts: [], issues: [], at: new Map() };
            for (const rel of [...this.drafts.keys()].sort()) {
                const d = this.drafts.get(rel);
                if (d.issues.length)
                    c.issues.push(...d.issues);
                if (d.agent) {
                    if (keep)
                        c.at.set(rel, c.drafts.length);
                    c.drafts.push(d.agent);
                }
            }
            if (keep)
                this.collected = c;
        }
        const issues = new IssueList();
        issues.push(...this.settingsIssues);
        issues.push(...c.issues);
        // Read once, the drafts are dropped after this: they can become the agents themselves.
        const adopt = !keep && this.options.once === true;
        const agents = validateAgents(c.drafts, this.settingsDraft, issues, this.assignments, this.memo, keep ? { cache: this.cross } : { adopt });
        if (issues.hasErrors)
            return { issues: issues.items };
        return { store: { settings: this.settingsDraft, agents }, issues: issues.items };
    }
}
/** Loads a store once (CLI commands). */
export async function loadStore(dir) {
    const source = new YamlStore(dir, { once: true });
    const r = await source.loadAll();
    return { ...r, source };
}
//# sourceMappingURL=yaml-store.js.map