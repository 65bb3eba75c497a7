/**
 * The daemon side of the DID-call benchmark, in its own process as `switchboard serve` runs it:
 * buildDaemon with [ari] settings pointing at the fake (no AMI: render-only apply, no watching),
 * so the real wiring runs — AriClient (ari-client), PresenceService, CallRecords (SQLite), the
 * mail outbox and DidWorkflow — with the production logger (info, JSON) writing to a file.
 *
 * IPC (see did-harness.ts): `ready` once ARI is connected and presence knows the agents (the ones
 * in `paused` are paused by hand, as `switchboard presence pause` would); `sample-start` /
 * `sample-stop` → `sampled` (RSS sampled every 5 ms in between, peak RSS); `settled?` →
 * `settled` (every event handled, active calls); `stop` → `stopped` (peak RSS), then exits.
 */
import { loadDaemonSettings } from '../../config/settings.js';
import { buildDaemon } from '../../daemon/main.js';
import { fileLogger, maxRssMB, monoMs, rssMB, sleep, stopAndExit, toParent } from './common.js';
const args = JSON.parse(process.argv[2] ?? '{}');
const settings = loadDaemonSettings({
    env: { SWITCHBOARD_ARI_URL: args.ariUrl, SWITCHBOARD_ARI_USER: args.ariUser, SWITCHBOARD_ARI_PASSWORD: args.ariPassword },
    flags: { store: args.store, out: args.out, dataDir: args.data, logLevel: 'info' },
});
const logger = fileLogger(args.logFile, settings.log.level);
const app = buildDaemon(settings, logger, { watch: false, amiStartWaitMs: 0 });
let sampler;
let peak = 0;
process.on('message', (raw) => {
    const m = raw;
    if (m.type === 'sample-start') {
        peak = rssMB();
        sampler = setInterval(() => { peak = Math.max(peak, rssMB()); }, 5);
        toParent({ type: 'sampling', rssMB: peak, maxRssMB: maxRssMB() });
    }
    else if (m.type === 'sample-stop') {
        if (sampler)
            clearInterval(sampler);
        sampler = undefined;
        peak = Math.max(peak, rssMB());
        toParent({ type: 'sampled', peakRssMB: peak, rssMB: rssMB(), maxRssMB: maxRssMB(), heapUsedMB: process.memoryUsage().heapUsed / 1048576 });
    }
    else if (m.type === 'settled?') {
        const wf = app.callControl?.workflow;
        void (wf ? wf.settled() : Promise.resolve()).then(() => toParent({ type: 'settled', at: monoMs(), active: wf?.activeCalls().length ?? 0 }));
    }
    else if (m.type === 'stop') {
        stopAndExit(app);
    }
});
const t0 = monoMs();
await app.start();
const presence = app.presence;
if (!presence || !app.callControl?.workflow)
    throw new Error('call control did not start (is [ari] configured?)');
// Registrations come from GET /endpoints once the events socket is up.
const until = monoMs() + 30_000;
while (presence.get(args.available)?.state !== 'available') {
    if (monoMs() > until)
        throw new Error(`agent ${args.available} is not available: ${JSON.stringify(presence.get(args.available))}`);
    await sleep(20);
}
for (const id of args.paused)
    await presence.setManual(id, 'paused', { reason: 'benchmark' });
const wrong = args.paused.filter((id) => presence.get(id)?.state !== 'paused');
if (wrong.length)
    throw new Error(`agents not paused: ${wrong.slice(0, 5).join(', ')}`);
toParent({ type: 'ready', startMs: monoMs() - t0, rssMB: rssMB(), maxRssMB: maxRssMB() });
//# sourceMappingURL=did-daemon.js.map