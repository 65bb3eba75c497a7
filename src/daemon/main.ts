/**
 * The daemon's one wiring place: settings in, every component built and passed in explicitly (no
 * module singletons). The ARI/call-control work extends `buildDaemon` with its own components and
 * adds them to start()/stop().
 */
import { AmiClient } from '../asterisk/ami/client.js';
import { Applier, type ApplyReport } from '../apply/index.js';
import type { DaemonSettings } from '../config/settings.js';
import { redactedSettings } from '../config/settings.js';
import type { Logger } from '../log.js';
import { Renderer } from '../render/render.js';
import { loadTemplates } from '../render/templates.js';
import { YamlStore } from '../store/yaml-store.js';
import { Daemon, type Timers } from './daemon.js';
import { PresenceService } from '../presence/index.js';
import { startCallControl, type CallControl, type CallControlDeps } from '../workflows/wire.js';
import { errorMessage } from '../errors.js';
import path from 'node:path';
import type { WatchFactory } from './watcher.js';

export interface DaemonApp {
  readonly settings: DaemonSettings;
  readonly logger: Logger;
  readonly store: YamlStore;
  readonly renderer: Renderer;
  /** Undefined in render-only mode. */
  readonly ami?: AmiClient;
  readonly applier: Applier;
  readonly daemon: Daemon;
  /** Agent presence (present when ARI is configured: it only serves DID routing). */
  readonly presence?: PresenceService;
  /** DID call control, once started (ARI configured). */
  readonly callControl: CallControl | undefined;
  /** Starts AMI (if configured) and the daemon: watch, first load and apply. */
  start(): Promise<void>;
  /** One load + apply, no watching (`serve --once`); throws what the daemon's runOnce throws. */
  runOnce(): Promise<ApplyReport>;
  /** Finishes the apply in progress, stops watching, then stops AMI. Safe to call twice. */
  stop(): Promise<void>;
}

export interface BuildOptions {
  /** Wait this long for AMI at start before the first apply (default: 3000; --once: 5000). */
  amiStartWaitMs?: number;
  /** Watcher factory (default chokidar); false: no watching. */
  watch?: WatchFactory | false;
  timers?: Timers;
  /** AMI reconnect pacing (tests). */
  amiReconnect?: { initialMs: number; maxMs: number };
  /** Retry pacing of failed applies (tests). */
  retry?: { initialMs: number; maxMs: number };
  /** Test seams for call control (ARI client, SMTP transport, timings). */
  callControl?: Partial<Pick<CallControlDeps, 'ari' | 'transport' | 'ariTimings' | 'outboxTimings' | 'authRetryMs' | 'workflow' | 'emailTemplatesDir'>>;
}

/** Builds the store, renderer, AMI client, applier and daemon from validated settings. */
export function buildDaemon(settings: DaemonSettings, logger: Logger, opts: BuildOptions = {}): DaemonApp {
  const store = new YamlStore(settings.store.dir);
  const renderer = new Renderer(loadTemplates(settings.output.templates));
  const ami = settings.asterisk
    ? new AmiClient(
        {
          host: settings.asterisk.host,
          port: settings.asterisk.port,
          username: settings.asterisk.user,
          secret: settings.asterisk.secret,
          keepaliveIntervalMs: settings.asterisk.keepaliveSeconds * 1000,
          ...(opts.amiReconnect ? { reconnectInitialMs: opts.amiReconnect.initialMs, reconnectMaxMs: opts.amiReconnect.maxMs } : {}),
        },
        logger,
      )
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
  let callControl: CallControl | undefined;
  if (presence) {
    daemon.on('storeLoaded', (s) => {
      presence.setAgents(s);
      // The DID index is built here, after the Reload, not on the new store's first DID call.
      callControl?.workflow?.indexStore(s);
    });
    ami?.on('event', (evt) => presence.onAmiEvent(evt));
    ami?.on('connected', () => {
      // Queue pauses may have changed while we were away: ask for every queue member.
      ami.listAction('QueueStatus').then(
        (r) => presence.seedQueueMembers(r.events),
        (err: unknown) => logger.warn({ err: errorMessage(err) }, 'AMI QueueStatus failed: queue pauses are learnt from events only'),
      );
    });
  }
  const startCalls = async (): Promise<void> => {
    if (!presence) return;
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
    if (loaded) callControl.workflow?.indexStore(loaded);
    const ari = callControl.ari;
    if (ari) {
      ari.on('event', (evt: unknown) => presence.onAriEvent(evt));
      ari.on('connected', () => {
        // Registrations may have changed while the socket was down.
        ari.listEndpoints().then(
          (eps) => presence.seedRegistrations(eps),
          (err: unknown) => logger.warn({ err: errorMessage(err) }, 'ARI endpoint list failed: registrations are learnt from events only'),
        );
      });
    }
  };

  let stopping: Promise<void> | undefined;
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
      for (const w of settings.warnings) logger.warn(w);
      ami?.start();
      await startCalls();
      await daemon.start();
    },
    async runOnce() {
      logger.info({ settings: redactedSettings(settings) }, 'switchboard serve --once: applying the store once');
      for (const w of settings.warnings) logger.warn(w);
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

/** The part of `process` signal handling needs (tests pass an EventEmitter). */
export interface SignalSource {
  on(signal: 'SIGTERM' | 'SIGINT', listener: () => void): unknown;
  off(signal: 'SIGTERM' | 'SIGINT', listener: () => void): unknown;
}

export interface ServeOptions {
  signals?: SignalSource;
  /** Called on a second signal while stopping (default: process.exit(130)). */
  forceExit?: (code: number) => void;
}

/**
 * Starts the app and runs until SIGTERM or SIGINT, then stops it: the apply in progress finishes,
 * nothing new starts. Resolves with the signal's name. A second signal while stopping exits at once
 * (code 130). Handlers are installed before start(), so a signal during the first apply is handled
 * the same way.
 */
export async function serveUntilSignal(app: Pick<DaemonApp, 'start' | 'stop' | 'logger'>, opts: ServeOptions = {}): Promise<'SIGTERM' | 'SIGINT'> {
  const signals = opts.signals ?? process;
  const forceExit = opts.forceExit ?? ((code: number) => process.exit(code));
  let received: 'SIGTERM' | 'SIGINT' | undefined;
  let onSignal!: (sig: 'SIGTERM' | 'SIGINT') => void;
  const signalled = new Promise<'SIGTERM' | 'SIGINT'>((resolve) => {
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
  const onTerm = (): void => onSignal('SIGTERM');
  const onInt = (): void => onSignal('SIGINT');
  signals.on('SIGTERM', onTerm);
  signals.on('SIGINT', onInt);
  try {
    const started = app.start();
    let first: 'SIGTERM' | 'SIGINT' | undefined;
    try {
      first = await Promise.race([started.then(() => undefined), signalled]);
    } catch (err) {
      await app.stop();
      throw err;
    }
    const sig = first ?? (await signalled);
    await app.stop();
    // start() may still be settling (a signal during the first apply): it ends once stop() has.
    await started.catch(() => undefined);
    app.logger.info({ signal: sig }, 'switchboard daemon stopped');
    return sig;
  } finally {
    signals.off('SIGTERM', onTerm);
    signals.off('SIGINT', onInt);
  }
}
