/**
 * The daemon side of the apply-latency benchmark, in its own process (as `switchboard serve`
 * runs): buildDaemon with real settings (AMI at the fake, chokidar watching the store, the
 * configured debounce), the production logger (info, JSON) writing to a file.
 *
 * IPC (see apply-harness.ts): sends `ready` after the first apply, then `applied` (or `failed`)
 * for every apply with the watcher events that led to it (monoMs); answers `idle?` with `idle`
 * once the daemon has nothing pending, and `stop` with `stopped` (peak RSS) before exiting.
 */
import { loadDaemonSettings } from '../../config/settings.js';
import { buildDaemon } from '../../daemon/main.js';
import { chokidarWatcher } from '../../daemon/watcher.js';
import { errorMessage } from '../../errors.js';
import { fileLogger, maxRssMB, monoMs, rssMB, stopAndExit, toParent } from './common.js';
const args = JSON.parse(process.argv[2] ?? '{}');
const settings = loadDaemonSettings({
    env: { SWITCHBOARD_ASTERISK_AMI_SECRET: args.amiSecret },
    flags: { store: args.store, out: args.out, dataDir: args.data, amiHost: '127.0.0.1', amiPort: args.amiPort, amiUser: args.amiUser, debounceMs: args.debounceMs, logLevel: 'info' },
});
const logger = fileLogger(args.logFile, settings.log.level);
/** Watcher events (monoMs) since the last apply report. */
let events = [];
const timedWatch = (dir, onEvent, onError) => chokidarWatcher(dir, (kind, p) => {
    events.push({ at: monoMs(), kind, file: p });
    onEvent(kind, p);
}, onError);
const app = buildDaemon(settings, logger, { watch: timedWatch, amiStartWaitMs: 10_000 });
function summary(r) {
    return {
        generation: r.generation, changedFiles: r.changedFiles, modules: r.modules, verified: r.verified, reloadSent: r.reloadSent,
        rolledBack: r.rolledBack, durationMs: r.durationMs, agentsChanged: r.agents.changed.length, agentsAdded: r.agents.added.length,
    };
}
app.daemon.on('applied', (report) => {
    const e = events;
    events = [];
    toParent({ type: 'applied', at: monoMs(), report: summary(report), events: e, rssMB: rssMB() });
});
app.daemon.on('applyFailed', (err, info) => {
    toParent({ type: 'failed', at: monoMs(), error: errorMessage(err), code: err.code ?? null, willRetry: info.willRetry });
});
app.daemon.on('storeInvalid', (issues) => {
    toParent({ type: 'failed', at: monoMs(), error: `store invalid: ${issues[0]?.message ?? ''}`, code: 'STORE_INVALID', willRetry: false });
});
process.on('message', (raw) => {
    const m = raw;
    if (m.type === 'idle?') {
        void app.daemon.whenIdle().then(() => toParent({ type: 'idle', at: monoMs() }));
    }
    else if (m.type === 'stop') {
        stopAndExit(app);
    }
});
const t0 = monoMs();
await app.start();
await app.daemon.whenIdle();
toParent({ type: 'ready', startMs: monoMs() - t0, maxRssMB: maxRssMB(), rssMB: rssMB(), applied: app.daemon.appliedStore !== undefined });
//# sourceMappingURL=apply-daemon.js.map