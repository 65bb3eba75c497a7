/**
 * Apply latency (issue 3), one run: the fake Asterisk (fake-ami.ts) and the "operator" live in
 * this process; the daemon runs in a child process (apply-daemon.ts), as `switchboard serve` would.
 *
 *   node dist/bench/e2e/apply-harness.js '{"store":DIR,"debounceMs":150,"edits":100,"warmup":5}'
 *
 * Per edit (each to a different agent file; the codecs line toggled, so pjsip_switchboard.conf
 * must change): the file is saved (writeFileSync; t(save) taken just before it), then we wait for
 * the daemon's `applied` report and for it to be idle before the next edit. Times, all on the one
 * monotonic clock of the machine:
 *   - save → watcher event (in the daemon process),
 *   - save → `Reload` received by the fake (minus the configured debounce: the goal's figure),
 *   - `Reload` received → answered (the fake re-reading the 7 MB pjsip file: Asterisk's part),
 *   - save → apply finished (verification done, manifest written: the daemon's `applied`).
 * Prints one JSON line. Agent files are restored afterwards.
 */
import { promises as fs, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { YamlStore } from '../../store/yaml-store.js';
import { toggleCodecs } from '../generate.js';
import { DIRTY } from '../stores.js';
import { Child, maxRssMB, monoMs, progress } from './common.js';
import { FakeAmi } from './fake-ami.js';
async function main(args) {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'switchboard-bench-apply-'));
    const out = path.join(tmp, 'out');
    await fs.mkdir(out);
    const user = 'switchboard';
    const secret = 'Bench-Ami-5ecret';
    const ami = new FakeAmi({ configDir: out, username: user, secret });
    const port = await ami.start();
    const originals = new Map();
    const dirty = path.join(args.store, DIRTY);
    let child;
    try {
        // The agent files, in the order the store lists them (as the incremental benchmark picks them).
        const loaded = await new YamlStore(args.store).loadAll();
        if (!loaded.store)
            throw new Error(`store ${args.store} is invalid`);
        const agentFiles = loaded.store.agents.map((a) => a.file);
        const daemonArgs = {
            store: args.store, out, data: path.join(tmp, 'data'), logFile: path.join(tmp, 'daemon.log'),
            amiPort: port, amiUser: user, amiSecret: secret, debounceMs: args.debounceMs,
        };
        progress(`debounce ${args.debounceMs} ms: starting the daemon (first apply verifies every agent)`);
        child = new Child('apply-daemon.js', daemonArgs);
        const ready = await child.next('ready', 300_000);
        if (!ready['applied'])
            throw new Error('the first apply did not succeed');
        const verifiedEndpoints = ami.endpointCount;
        const first = {
            startMs: ready['startMs'], verifiedEndpoints,
            pjsipShowEndpoint: ami.received.filter((a) => a.action === 'PJSIPShowEndpoint').length,
            maxRssMB: ready['maxRssMB'],
        };
        child.discard('applied');
        ami.clearReceived();
        const pjsipBytes = (await fs.stat(path.join(out, 'pjsip_switchboard.conf'))).size;
        await fs.writeFile(dirty, 'agent files modified by the apply-latency benchmark\n');
        const r = {
            debounceMs: args.debounceMs, edits: args.edits, warmup: args.warmup, agents: agentFiles.length,
            saveToEvent: [], saveToReload: [], afterDebounce: [], reloadToAnswer: [], answerToApplied: [], saveToApplied: [], applyDuration: [],
            eventToReloadAfterDebounce: [], first, daemonMaxRssMB: 0, harnessMaxRssMB: 0, pjsipBytes,
        };
        const count = args.warmup + args.edits;
        for (let j = 0; j < count; j++) {
            // Spread the edits over the store, another stride than the incremental benchmark's.
            const rel = agentFiles[(j * 6007 + 101) % agentFiles.length];
            const abs = path.join(args.store, rel);
            const before = readFileSync(abs, 'utf8');
            if (!originals.has(abs))
                originals.set(abs, before);
            const text = toggleCodecs(before);
            ami.clearReceived();
            const saved = monoMs();
            writeFileSync(abs, text);
            const applied = await child.next(['applied', 'failed'], 30_000);
            if (applied.type === 'failed')
                throw new Error(`apply failed after editing ${rel}: ${String(applied['error'])}`);
            child.send({ type: 'idle?' });
            await child.next('idle', 30_000);
            const reloads = ami.actionsSince('Reload', saved);
            const rep = applied.report;
            if (!rep.changedFiles.includes('pjsip_switchboard.conf') || rep.modules.join() !== 'res_pjsip.so' || !rep.verified || rep.rolledBack) {
                throw new Error(`editing ${rel} gave an unexpected apply: ${JSON.stringify(rep)}`);
            }
            if (reloads.length !== 1 || reloads[0].fields['Module'] !== 'res_pjsip.so' || reloads[0].answeredAt === undefined) {
                throw new Error(`editing ${rel}: expected one Reload of res_pjsip.so, got ${reloads.map((a) => a.fields['Module']).join(', ') || 'none'}`);
            }
            const reload = reloads[0];
            const event = applied.events.find((e) => e.file === abs);
            if (!event)
                throw new Error(`editing ${rel}: the daemon reported no watcher event for it (${JSON.stringify(applied.events)})`);
            if (j % 10 === 0 || j === count - 1)
                progress(`debounce ${args.debounceMs} ms: edit ${j + 1}/${count}: save → Reload ${(reload.receivedAt - saved).toFixed(1)} ms, applied ${(applied.at - saved).toFixed(1)} ms`);
            if (j < args.warmup)
                continue;
            r.saveToEvent.push(event.at - saved);
            r.saveToReload.push(reload.receivedAt - saved);
            r.afterDebounce.push(reload.receivedAt - saved - args.debounceMs);
            r.eventToReloadAfterDebounce.push(reload.receivedAt - event.at - args.debounceMs);
            r.reloadToAnswer.push(reload.answeredAt - reload.receivedAt);
            r.answerToApplied.push(applied.at - reload.answeredAt);
            r.saveToApplied.push(applied.at - saved);
            r.applyDuration.push(rep.durationMs);
        }
        child.send({ type: 'stop' });
        const stopped = await child.next('stopped', 30_000);
        r.daemonMaxRssMB = stopped['maxRssMB'];
        r.harnessMaxRssMB = maxRssMB();
        return r;
    }
    finally {
        if (child) {
            // After `stopped` the child exits by itself (and may be writing a --cpu-prof profile).
            if (!child.stoppedCleanly)
                child.proc.kill();
            await child.exit();
        }
        for (const [abs, text] of originals)
            writeFileSync(abs, text);
        await fs.rm(dirty, { force: true });
        await ami.stop();
        await fs.rm(tmp, { recursive: true, force: true });
    }
}
const result = await main(JSON.parse(process.argv[2] ?? '{}'));
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(0);
//# sourceMappingURL=apply-harness.js.map