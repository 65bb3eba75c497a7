/**
 * The daemon: keeps Asterisk in step with the agent store.
 *
 * - start(): watches the store directory, loads the whole store and applies it.
 * - Every file event marks that file dirty; a debounce (quiet time `debounceMs`, but never longer
 *   than `maxWaitMs` after the first event of a burst) turns a burst into one reload + one apply.
 * - Reloads are incremental (`store.reloadFile(path)` per changed file; a change to switchboard.yaml
 *   or to the agents directory itself reloads everything).
 * - One apply at a time, and always the latest valid state: edits that arrive during an apply are
 *   applied right after it.
 * - An invalid store (half-saved file, bad value) never reaches the switch: every issue is logged,
 *   the last good state stays, and the next valid state is applied.
 * - A failed apply because a peer is away (AMI down, timeout, reload in progress, apply lock) is
 *   retried with capped backoff, and at once when AMI logs in again. A refused apply (rolled back)
 *   or a render check failure waits for the next edit (or an AMI reconnect).
 * - stop(): finishes the apply in progress, starts nothing new.
 */
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { SwitchboardError, StoreInvalidError, errorMessage } from '../errors.js';
import { isWritten } from '../fsutil.js';
import { SETTINGS_FILE } from '../store/yaml-store.js';
import { chokidarWatcher } from './watcher.js';
export const realTimers = {
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (h) => clearTimeout(h),
    now: () => performance.now(),
};
/**
 * chokidar (which watches switchboard.yaml; see watcher.ts) drops a second 'change' event for the
 * same file within 50 ms of the previous one (and never re-emits it); any watcher may coalesce
 * events. A file read sooner than this after its last event is checked again later.
 */
export const WATCH_THROTTLE_GUARD_MS = 75;
const RETRYABLE_CODES = new Set(['PEER_DISCONNECTED', 'PEER_TIMEOUT', 'PEER_ERROR', 'PEER_AUTH', 'APPLY_LOCKED']);
/** Peer trouble and unexpected (non-switchboard) errors such as EACCES are retried; deliberate refusals are not. */
export function isRetryable(err) {
    if (err instanceof SwitchboardError)
        return RETRYABLE_CODES.has(err.code);
    return true;
}
export class Daemon extends EventEmitter {
    deps;
    log;
    timers;
    debounceMs;
    maxWaitMs;
    retryInitialMs;
    retryMaxMs;
    amiStartWaitMs;
    throttleGuardMs;
    settingsPath;
    agentsPath;
    /** Files with events not yet handed to the loop, and when each last had one. */
    pending = new Set();
    pendingFull = false;
    burstStartedAt;
    debounceTimer;
    lastEventAt = new Map();
    rechecks = new Map();
    /** Files the loop must reload next. */
    ready = new Set();
    readyFull = false;
    /** Latest valid store seen; the one last applied successfully; whether the on-disk store is valid now. */
    latest;
    applied;
    /**
     * The latest valid store state (what DID routing and presence follow, even before it reaches
     * Asterisk), with `[output] backend` in place of the store's own `backend:` when set: the driver
     * the agents are rendered for is the one to dial and to watch (PJSIP/... or SIP/...).
     */
    get latestStore() {
        return this.latest && this.effective(this.latest);
    }
    setLatest(store) {
        this.latest = store;
        this.unannounced = store;
    }
    /** A state loaded but not yet announced with 'storeLoaded'. */
    unannounced;
    /** Emits 'storeLoaded' for the latest state, if not done yet. */
    announce = () => {
        const store = this.unannounced;
        if (!store)
            return;
        this.unannounced = undefined;
        try {
            this.emit('storeLoaded', this.effective(store));
        }
        catch (err) {
            // A listener's failure is its own: never the apply's (this may run inside it).
            this.log.error({ err: errorMessage(err) }, `a 'storeLoaded' listener failed: ${errorMessage(err)}`);
        }
    };
    effectiveStores = new WeakMap();
    /** `store` with the backend override applied (the same object for the same store, so callers can cache by it). */
    effective(store) {
        const backend = this.deps.backend;
        if (!backend || backend === store.settings.backend)
            return store;
        let out = this.effectiveStores.get(store);
        if (!out) {
            out = { ...store, settings: { ...store.settings, backend } };
            this.effectiveStores.set(store, out);
        }
        return out;
    }
    lastGeneration;
    invalid = false;
    /** Files that could not be read: the store state is incomplete until they read again. */
    unreadable = new Set();
    /** A deliberate refusal (rollback, render check): wait for the next edit or AMI reconnect. */
    blocked = false;
    retryTimer;
    retryDelay;
    loggedWarnings = new Set();
    running;
    watcher;
    started = false;
    stopping;
    applySeq = 0;
    cancelAmiWait;
    idleWaiters = [];
    onAmiConnected = () => {
        if (this.stopping || !this.latest || this.latest === this.applied)
            return;
        this.log.info('AMI connected: applying the latest store state');
        this.blocked = false;
        this.cancelRetry();
        this.retryDelay = this.retryInitialMs;
        this.kick();
    };
    onAmiDisconnected = () => {
        if (!this.stopping)
            this.log.warn('AMI disconnected: edits are still loaded and validated; they reach Asterisk once AMI is back');
    };
    constructor(deps) {
        super();
        this.deps = deps;
        this.log = deps.logger.child({ component: 'daemon' });
        this.timers = deps.timers ?? realTimers;
        this.debounceMs = Math.max(0, deps.debounceMs ?? 150);
        this.maxWaitMs = Math.max(this.debounceMs, deps.maxWaitMs ?? Math.max(1000, 10 * this.debounceMs));
        this.retryInitialMs = Math.max(1, deps.retryInitialMs ?? 1000);
        this.retryMaxMs = Math.max(this.retryInitialMs, deps.retryMaxMs ?? 30_000);
        this.amiStartWaitMs = Math.max(0, deps.amiStartWaitMs ?? 3000);
        this.throttleGuardMs = Math.max(0, deps.throttleGuardMs ?? WATCH_THROTTLE_GUARD_MS);
        this.retryDelay = this.retryInitialMs;
        this.settingsPath = path.resolve(deps.store.dir, SETTINGS_FILE);
        this.agentsPath = path.resolve(deps.store.dir, 'agents');
    }
    /** The store state last applied successfully (undefined before the first success). */
    get appliedStore() {
        return this.applied;
    }
    /**
     * Watches the store, then loads and applies it. Resolves after the first apply attempt (which
     * may have failed: the daemon keeps running and retries).
     */
    async start() {
        if (this.started)
            throw new SwitchboardError('DAEMON_STARTED', 'the daemon was already started');
        this.started = true;
        const { ami, outDir } = this.deps;
        if (ami) {
            ami.on('connected', this.onAmiConnected);
            ami.on('disconnected', this.onAmiDisconnected);
        }
        else {
            this.log.info({ outDir }, `no AMI configured ([asterisk] ami_host/ami_user unset): render-only mode, files are written to ${outDir ?? 'the output directory'} and no reload is sent to Asterisk`);
        }
        const watch = this.deps.watch === undefined ? chokidarWatcher : this.deps.watch;
        if (watch) {
            const watcher = await watch(this.deps.store.dir, (kind, p) => this.notify(kind, p), (err) => this.log.error({ err }, 'store watcher error'));
            if (this.stopping) {
                await watcher.close();
                return;
            }
            this.watcher = watcher;
            this.log.info({ store: this.deps.store.dir, debounceMs: this.debounceMs }, 'watching the store');
        }
        if (ami && !ami.connected && this.amiStartWaitMs > 0)
            await this.waitForAmi(this.amiStartWaitMs);
        this.readyFull = true;
        this.kick();
        await this.running;
    }
    /**
     * Loads the whole store and applies it once (`serve --once`). Throws StoreInvalidError when the
     * store has errors, or what the applier threw.
     */
    async runOnce() {
        const { ami } = this.deps;
        if (ami && !ami.connected && this.amiStartWaitMs > 0)
            await this.waitForAmi(this.amiStartWaitMs);
        const result = await this.deps.store.loadAll();
        this.logWarnings(result.issues);
        if (!result.store) {
            const errors = result.issues.filter((i) => i.severity === 'error');
            this.logInvalid(errors);
            throw new StoreInvalidError(errors, `the store ${this.deps.store.dir} has ${errors.length} error(s): nothing was applied`);
        }
        this.setLatest(result.store);
        const store = result.store;
        const log = this.log.child({ apply: ++this.applySeq });
        let report;
        try {
            report = await this.deps.applier.apply(store, this.applyOptions());
        }
        finally {
            this.announce();
        }
        await this.afterSuccess(store, report, log);
        return report;
    }
    /**
     * Reports a file-system event (the watcher calls this; tests may too). Paths outside the store
     * are ignored by the watcher's filter, not here.
     */
    notify(kind, absPath) {
        if (this.stopping)
            return;
        const p = path.resolve(absPath);
        const now = this.timers.now();
        if (kind === 'addDir' || kind === 'unlinkDir') {
            // The agents directory (or the store itself) came or went: re-read everything.
            this.pendingFull = true;
        }
        else {
            this.pending.add(p);
            this.lastEventAt.set(p, now);
        }
        this.log.debug({ event: kind, file: path.relative(this.deps.store.dir, p) || '.' }, 'store file event');
        this.burstStartedAt ??= now;
        if (this.debounceTimer !== undefined)
            this.timers.clearTimeout(this.debounceTimer);
        const delay = Math.max(0, Math.min(this.debounceMs, this.burstStartedAt + this.maxWaitMs - now));
        this.debounceTimer = this.timers.setTimeout(() => this.flush(), delay);
    }
    /** Resolves when nothing is pending: no debounce or re-check timer, no reload or apply running. A scheduled retry does not count. */
    whenIdle() {
        if (this.isIdle())
            return Promise.resolve();
        return new Promise((resolve) => this.idleWaiters.push(resolve));
    }
    /** Stops watching, cancels timers, waits for the apply in progress; starts nothing new. */
    stop() {
        this.stopping ??= this.shutdown();
        return this.stopping;
    }
    // ---------------------------------------------------------------------------------------------
    async shutdown() {
        const busy = this.running !== undefined;
        this.log.info(busy ? 'stopping: finishing the apply in progress' : 'stopping');
        if (this.debounceTimer !== undefined)
            this.timers.clearTimeout(this.debounceTimer);
        this.debounceTimer = undefined;
        for (const t of this.rechecks.values())
            this.timers.clearTimeout(t);
        this.rechecks.clear();
        this.cancelRetry();
        this.cancelAmiWait?.();
        const { ami } = this.deps;
        ami?.off('connected', this.onAmiConnected);
        ami?.off('disconnected', this.onAmiDisconnected);
        const watcher = this.watcher;
        this.watcher = undefined;
        await Promise.all([watcher?.close(), this.running]);
        this.log.info({ generation: this.lastGeneration }, 'stopped');
        this.resolveIdle();
    }
    waitForAmi(ms) {
        const ami = this.deps.ami;
        return new Promise((resolve) => {
            const done = () => {
                this.timers.clearTimeout(timer);
                ami.off('connected', done);
                this.cancelAmiWait = undefined;
                resolve();
            };
            this.cancelAmiWait = done;
            const timer = this.timers.setTimeout(() => {
                ami.off('connected', done);
                this.cancelAmiWait = undefined;
                this.log.warn({ waitedMs: ms }, 'AMI not connected yet: applying anyway; the apply is retried once AMI logs in');
                resolve();
            }, ms);
            ami.on('connected', done);
        });
    }
    flush() {
        this.debounceTimer = undefined;
        this.burstStartedAt = undefined;
        for (const p of this.pending)
            this.ready.add(p);
        this.pending.clear();
        if (this.pendingFull)
            this.readyFull = true;
        this.pendingFull = false;
        this.kick();
        this.checkIdle();
    }
    kick() {
        if (this.running || this.stopping)
            return;
        this.running = this.loop()
            .catch((err) => this.log.error({ err }, 'daemon loop failed (a bug: please report it)'))
            .finally(() => {
            this.running = undefined;
            this.checkIdle();
        });
    }
    wantsApply() {
        return this.latest !== undefined && this.latest !== this.applied && !this.blocked && this.retryTimer === undefined && this.unreadable.size === 0;
    }
    async loop() {
        try {
            while (!this.stopping) {
                if (this.readyFull || this.ready.size) {
                    await this.reload();
                    continue;
                }
                if (this.wantsApply()) {
                    await this.applyLatest();
                    continue;
                }
                return;
            }
        }
        finally {
            // No apply follows (yet): listeners learn of the latest state now.
            this.announce();
        }
    }
    async reload() {
        // After a failed loadAll only another loadAll can clear it (the store's state is partial).
        const full = this.readyFull || this.ready.has(this.settingsPath) || this.ready.has(this.agentsPath) || this.unreadable.has(this.deps.store.dir);
        const paths = [...this.ready].sort();
        this.ready.clear();
        this.readyFull = false;
        const started = this.timers.now();
        await this.guardThrottle(paths);
        let result;
        try {
            if (full) {
                result = await this.deps.store.loadAll();
                this.unreadable.clear();
            }
            else {
                for (const p of paths) {
                    try {
                        result = await this.deps.store.reloadFile(p);
                        this.unreadable.delete(p);
                    }
                    catch (err) {
                        this.unreadable.add(p);
                        this.log.error({ file: path.relative(this.deps.store.dir, p), err: errorMessage(err) }, `cannot read ${path.relative(this.deps.store.dir, p)}: ${errorMessage(err)}; keeping the last good config until it can be read`);
                    }
                }
            }
        }
        catch (err) {
            // loadAll itself failed (e.g. the agents directory is unreadable).
            this.unreadable.add(this.deps.store.dir);
            this.log.error({ err: errorMessage(err) }, `cannot read the store: ${errorMessage(err)}; keeping the last good config`);
            return;
        }
        if (!result)
            return;
        this.log.debug({ files: paths.length, full, ms: Math.round(this.timers.now() - started) }, 'store reloaded');
        this.logWarnings(result.issues);
        if (!result.store) {
            this.invalid = true;
            const errors = result.issues.filter((i) => i.severity === 'error');
            this.logInvalid(errors);
            this.emit('storeInvalid', errors);
            return;
        }
        if (this.invalid)
            this.log.info('store is valid again');
        this.invalid = false;
        this.setLatest(result.store);
        // A new state deserves a fresh attempt, even after a refusal or during a retry backoff.
        this.blocked = false;
        if (this.retryTimer !== undefined && this.deps.ami?.connected !== false)
            this.cancelRetry();
    }
    logInvalid(errors) {
        for (const i of errors) {
            this.log.warn({ ...issueFields(i), ...(i.line ? { line: i.line } : {}) }, i.message);
        }
        const kept = this.lastGeneration ? `generation ${this.lastGeneration}` : this.applied ? 'the last applied state' : 'nothing applied yet';
        this.log.warn({ errors: errors.length, kept: this.lastGeneration ?? null }, `store is invalid (${errors.length} error(s)): not applied, keeping the last good config (${kept}); it is applied as soon as the store is valid again`);
    }
    /** Logs each warning once (the store reports all of them on every reload). */
    logWarnings(issues) {
        const now = new Set();
        for (const i of issues) {
            if (i.severity !== 'warning')
                continue;
            now.add(i.message);
            if (!this.loggedWarnings.has(i.message)) {
                this.log.warn(issueFields(i), i.message);
            }
        }
        this.loggedWarnings = now;
    }
    /**
     * A file read within the throttle guard (WATCH_THROTTLE_GUARD_MS) of its last event may have been written again
     * meanwhile without an event (chokidar's throttle): stamp it now and look again once the
     * throttle window is over; if it changed, treat that as an event.
     */
    async guardThrottle(paths) {
        const now = this.timers.now();
        for (const p of paths) {
            // This read supersedes any earlier re-check of the file.
            const earlier = this.rechecks.get(p);
            if (earlier !== undefined)
                this.timers.clearTimeout(earlier);
            this.rechecks.delete(p);
            const at = this.lastEventAt.get(p);
            if (at === undefined)
                continue;
            const wait = at + this.throttleGuardMs - now;
            if (wait <= 0) {
                this.lastEventAt.delete(p);
                continue;
            }
            const before = await stamp(p);
            const timer = this.timers.setTimeout(() => {
                void stamp(p).then((after) => {
                    if (this.rechecks.get(p) !== timer)
                        return;
                    this.rechecks.delete(p);
                    if (this.stopping)
                        return;
                    if (!sameStamp(before, after)) {
                        this.log.debug({ file: path.relative(this.deps.store.dir, p) }, 'file changed without an event: reloading it');
                        this.notify(after ? 'change' : 'unlink', p);
                    }
                    else if (this.lastEventAt.get(p) === at) {
                        this.lastEventAt.delete(p);
                    }
                    this.checkIdle();
                });
            }, wait);
            this.rechecks.set(p, timer);
        }
    }
    applyOptions() {
        return { ...(this.deps.backend ? { backend: this.deps.backend } : {}), onReloadSent: this.announce };
    }
    async applyLatest() {
        const store = this.latest;
        const log = this.log.child({ apply: ++this.applySeq });
        log.debug({ agents: store.agents.length }, 'applying');
        let report;
        try {
            report = await this.deps.applier.apply(store, this.applyOptions());
        }
        catch (err) {
            this.announce();
            this.onApplyFailed(err, log);
            return;
        }
        this.announce();
        this.retryDelay = this.retryInitialMs;
        try {
            await this.afterSuccess(store, report, log);
        }
        finally {
            this.emit('applied', report);
        }
    }
    async afterSuccess(store, report, parent) {
        this.applied = store;
        this.lastGeneration = report.generation;
        const log = parent.child({ generation: report.generation });
        const summary = {
            agentsAdded: report.agents.added.length,
            agentsChanged: report.agents.changed.length,
            agentsRemoved: report.agents.removed.length,
            files: report.changedFiles,
            modules: report.modules,
            ms: Math.round(report.durationMs),
            reloadSent: report.reloadSent,
            verified: report.verified,
        };
        const what = report.changedFiles.length === 0 ? 'no file changed' : `${report.changedFiles.length} file(s) written`;
        const reload = !this.deps.ami
            ? 'no AMI configured: no reload sent'
            : report.reloadSent
                ? `reloaded ${report.modules.join(', ') || 'nothing'}${report.verified ? ', verified' : ''}`
                : 'no reload needed';
        log.info(summary, `applied generation ${report.generation}: agents +${summary.agentsAdded} ~${summary.agentsChanged} -${summary.agentsRemoved}, ${what}, ${reload} (${summary.ms} ms)`);
        if (report.restartNeeded.length) {
            log.warn({ restartNeeded: report.restartNeeded }, `a reload cannot apply ${report.restartNeeded.join(', ')}: restart Asterisk for it to take effect`);
        }
        try {
            await this.deps.store.saveAssignments(store);
        }
        catch (err) {
            log.warn({ err: errorMessage(err) }, `could not save extension assignments: ${errorMessage(err)} (auto-assigned extensions may change on the next start)`);
        }
    }
    onApplyFailed(err, log) {
        const code = err instanceof SwitchboardError ? err.code : err?.code;
        if (isRetryable(err)) {
            const delay = this.retryDelay;
            this.retryDelay = Math.min(this.retryMaxMs, this.retryDelay * 2);
            const amiNote = this.deps.ami ? ' or as soon as AMI logs in' : '';
            log.warn({ code, err: errorMessage(err), retryInMs: delay }, `apply failed: ${errorMessage(err)}; retrying in ${delay} ms${amiNote}`);
            this.retryTimer = this.timers.setTimeout(() => {
                this.retryTimer = undefined;
                this.kick();
            }, delay);
            this.emit('applyFailed', err, { willRetry: true, retryInMs: delay });
        }
        else {
            this.blocked = true;
            log.error({ code, err: errorMessage(err) }, `apply failed: ${errorMessage(err)}; waiting for the next store edit`);
            this.emit('applyFailed', err, { willRetry: false });
        }
    }
    cancelRetry() {
        if (this.retryTimer !== undefined)
            this.timers.clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
    }
    isIdle() {
        if (this.stopping)
            return this.running === undefined;
        return this.running === undefined && this.debounceTimer === undefined && this.rechecks.size === 0 && this.pending.size === 0 && !this.pendingFull && this.ready.size === 0 && !this.readyFull;
    }
    checkIdle() {
        if (this.isIdle())
            this.resolveIdle();
    }
    resolveIdle() {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters)
            w();
    }
}
/** Where an issue is (file, agent, field) and its code, for a log line. */
function issueFields(i) {
    return { file: i.file, ...(i.agent ? { agent: i.agent } : {}), ...(i.field ? { field: i.field } : {}), code: i.code };
}
async function stamp(p) {
    try {
        const st = await fs.stat(p);
        return { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
    }
    catch {
        return undefined;
    }
}
function sameStamp(a, b) {
    return a && b ? isWritten(a, b) : a === b;
}
//# sourceMappingURL=daemon.js.map