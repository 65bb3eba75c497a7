/**
 * The daemon's one wiring place: settings in, every component built and passed in explicitly (no
 * module singletons). The ARI/call-control work extends `buildDaemon` with its own components and
 * adds them to start()/stop().
 */
import { AmiClient } from '../asterisk/ami/client.js';
import { Applier } from '../apply/index.js';
import { redactedSettings } from '../config/settings.js';
import { Renderer } from '../render/render.js';
import { loadTemplates } from '../render/templates.js';
import { YamlStore } from '../store/yaml-store.js';
import { Daemon } from './daemon.js';
import { PresenceService } from '../presence/index.js';
import { startCallControl } from '../workflows/wire.js';
import { errorMessage } from '../errors.js';
import path from 'node:path';
/** Builds the store, renderer, AMI client, applier and daemon from validated settings. */
export function buildDaemon(settings, logger, opts = {}) {
    const store = new YamlStore(settings.store.dir);
    const renderer = new Renderer(loadTemplates(settings.output.templates));
    const ami = settings.asterisk
        ? new AmiClient({
            host: settings.asterisk.host,
            port: settings.asterisk.port,
            username: settings.asterisk.user,
            secret: settings.asterisk.secret,
            ...(opts.amiReconnect ? { reconnectInitialMs: opts.amiReconnect.initialMs, reconnectMaxMs: opts.amiReconnect.maxMs } : {}),
        }, logger)
        : undefined;
    const applier = new Applier({
        renderer,
        outDir: settings.output.dir,
        ...(ami ? { ami } : {}),
        logger,
        generations: settings.apply.generations,
        verifyTimeoutMs: settings.apply.verifyTimeoutMs,
    });
    const daemon = new Daemon({
        store,
        applier,
        logger,
        ...(ami ? { ami } : {}),
        outDir: settings.output.dir,
        debounceMs: settings.apply.debounceMs,
        ...(settings.output.backend ? { backend: settings.output.backend } : {}),
        ...(opts.amiStartWaitMs !== undefined ? { amiStartWaitMs: opts.amiStartWaitMs } : {}),
        ...(opts.watch !== undefined ? { watch: opts.watch } : {}),
        ...(opts.timers ? { timers: opts.timers } : {}),
        ...(opts.retry ? { retryInitialMs: opts.retry.initialMs, retryMaxMs: opts.retry.maxMs } : {}),
    });
    // Call control runs when ARI is configured: presence follows the store, AMI and ARI events, and
    // the DID workflow asks it whether to ring the agent or divert to voicemail.
    const presence = settings.ari
        ? new PresenceService({ stateFile: path.join(settings.data.dir, 'presence.json'), logger })
        : undefined;
    let callControl;
    if (presence) {
        daemon.on('storeLoaded', (s) => {
            presence.setAgents(s);
            // The DID index is built here, after the Reload, not on the new store's first DID call.
            callControl?.workflow?.indexStore(s);
        });
        ami?.on('event', (evt) => presence.onAmiEvent(evt));
        ami?.on('connected', () => {
            // Queue pauses may have changed while we were away: ask for every queue member.
            ami.listAction('QueueStatus').then((r) => presence.seedQueueMembers(r.events), (err) => logger.warn({ err: errorMessage(err) }, 'AMI QueueStatus failed: queue pauses are learnt from events only'));
        });
    }
    const startCalls = async () => {
        if (!presence)
            return;
        await presence.start();
        callControl = await startCallControl({
            settings,
            store: () => daemon.latestStore,
            presence,
            logger,
            dataDir: settings.data.dir,
            ...opts.callControl,
        });
        const loaded = daemon.latestStore;
        if (loaded)
            callControl.workflow?.indexStore(loaded);
        const ari = callControl.ari;
        if (ari) {
            ari.on('event', (evt) => presence.onAriEvent(evt));
            ari.on('connected', () => {
                // Registrations may have changed while the socket was down.
                ari.listEndpoints().then((eps) => presence.seedRegistrations(eps), (err) => logger.warn({ err: errorMessage(err) }, 'ARI endpoint list failed: registrations are learnt from events only'));
            });
        }
    };
    let stopping;
    return {
        settings,
        logger,
        store,
        renderer,
        ...(ami ? { ami } : {}),
        applier,
        daemon,
        ...(presence ? { presence } : {}),
        get callControl() {
            return callControl;
        },
        async start() {
            logger.info({ settings: redactedSettings(settings) }, 'switchboard daemon starting');
            for (const w of settings.warnings)
                logger.warn(w);
            ami?.start();
            await startCalls();
            await daemon.start();
        },
        async runOnce() {
            logger.info({ settings: redactedSettings(settings) }, 'switchboard serve --once: applying the store once');
            for (const w of settings.warnings)
                logger.warn(w);
            ami?.start();
            return daemon.runOnce();
        },
        stop() {
            stopping ??= (async () => {
                await daemon.stop();
                await callControl?.stop();
                await presence?.stop();
                await ami?.stop();
            })();
            return stopping;
        },
    };
}
/**
 * Starts the app and runs until SIGTERM or SIGINT, then stops it: the apply in progress finishes,
 * nothing new starts. Resolves with the signal's name. A second signal while stopping exits at once
 * (code 130). Handlers are installed before start(), so a signal during the first apply is handled
 * the same way.
 */
export async function serveUntilSignal(app, opts = {}) {
    const signals = opts.signals ?? process;
    const forceExit = opts.forceExit ?? ((code) => process.exit(code));
    let received;
    let onSignal;
    const signalled = new Promise((resolve) => {
        onSignal = (sig) => {
            if (received) {
                app.logger.warn({ signal: sig }, `${sig} again while stopping: exiting now`);
                forceExit(130);
                return;
            }
            received = sig;
            app.logger.info({ signal: sig }, `${sig} received: finishing the apply in progress, then exiting`);
            resolve(sig);
        };
    });
    const onTerm = () => onSignal('SIGTERM');
    const onInt = () => onSignal('SIGINT');
    signals.on('SIGTERM', onTerm);
    signals.on('SIGINT', onInt);
    try {
        const started = app.start();
        let first;
        try {
            first = await Promise.race([started.then(() => undefined), signalled]);
        }
        catch (err) {
            await app.stop();
            throw err;
        }
        const sig = first ?? (await signalled);
        await app.stop();
        // start() may still be settling (a signal during the first apply): it ends once stop() has.
        await started.catch(() => undefined);
        app.logger.info({ signal: sig }, 'switchboard daemon stopped');
        return sig;
    }
    finally {
        signals.off('SIGTERM', onTerm);
        signals.off('SIGINT', onInt);
    }
}
//# sourceMappingURL=main.js.map