/**
 * Wiring of DID call control: builds the ARI client, the call records, the mail outbox and the
 * DID workflow from the daemon's settings, and starts them. The daemon calls `startCallControl`
 * once and `stop()` on the way out; nothing here is a module singleton.
 */
import { join, resolve } from 'node:path';
import { AriClient } from '../asterisk/ari/client.js';
import type { AriPort } from '../asterisk/ari/types.js';
import { CallRecords } from '../calls/records.js';
import { PeerAuthError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { MailOutbox } from '../mail/outbox.js';
import { createSmtpTransport, describeSmtp, type MailTransport, type SmtpSettings } from '../mail/transport.js';
import { loadEmailTemplates } from '../mail/voicemail-email.js';
import type { Store } from '../model/types.js';
import type { DaemonSettings } from '../config/settings.js';
import { DidWorkflow, type DidWorkflowSettings, type PresenceLookup } from './did.js';

/** The slice of the daemon's settings call control reads. */
export type CallControlSettings = Pick<DaemonSettings, 'ari' | 'smtp' | 'voicemail'>;

/** The ARI client as the wiring drives it (AriClient; tests may pass their own). */
export interface AriSupervised extends AriPort {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface CallControlDeps {
  settings: CallControlSettings;
  /** The current store (the daemon's latest valid one). */
  store: () => Store | undefined;
  presence: PresenceLookup;
  logger: Logger;
  /** <data dir>: calls.sqlite, outbox/, recordings/. */
  dataDir: string;
  /** Operator's email templates directory (default: the package's templates/email). */
  emailTemplatesDir?: string;
  /** Tests: replace the SMTP transport / ARI client / timings. */
  transport?: MailTransport;
  ari?: AriSupervised;
  ariTimings?: { requestTimeoutMs?: number; reconnectInitialMs?: number; reconnectMaxMs?: number; pingIntervalMs?: number };
  /** Delay before trying again after ARI refused the credentials (default 30000). */
  authRetryMs?: number;
  outboxTimings?: { initialDelayMs?: number; maxDelayMs?: number };
  workflow?: Partial<Pick<DidWorkflowSettings, 'ringGraceMs' | 'promptTimeoutMs' | 'recordingGraceMs' | 'orphanGraceMs' | 'saveRetry' | 'resyncRetryMs'>>;
}

export interface CallControl {
  /** Undefined when ARI is not configured. */
  readonly workflow: DidWorkflow | undefined;
  readonly records: CallRecords;
  readonly outbox: MailOutbox;
  readonly ari: AriSupervised | undefined;
  stop(): Promise<void>;
}

/**
 * Starts call control. Without [ari] settings only the records and outbox run (DID routing is off,
 * the dialplan's fallback sends DID calls to VoiceMail). Without [smtp] the outbox keeps mail on
 * disk unsent (it goes out once SMTP is configured and the daemon restarts). A bad ARI password is
 * logged as an error and retried every `authRetryMs`; it never throws.
 */
/** The transport settings for switchboard.ini's [smtp]: `require_tls` applies unless TLS starts at once (`secure`). */
export function smtpTransportSettings(smtp: NonNullable<DaemonSettings['smtp']>): SmtpSettings {
  return {
    host: smtp.host, port: smtp.port, secure: smtp.secure, from: smtp.from,
    requireTLS: smtp.requireTls && !smtp.secure,
    ...(smtp.user !== undefined ? { user: smtp.user, pass: smtp.password ?? '' } : {}),
  };
}

export async function startCallControl(deps: CallControlDeps): Promise<CallControl> {
  const log = deps.logger.child({ component: 'call-control' });
  const { settings } = deps;
  // Absolute, so that the recording paths kept in the call records do not depend on the cwd.
  const dataDir = resolve(deps.dataDir);
  const records = CallRecords.open(join(dataDir, 'calls.sqlite'), {
    onWriteError: (err, ids) => log.error({ err: errorMessage(err), interactionIds: ids }, 'call records could not be written (kept in memory; retried at the next write)'),
  });
  const templates = await loadEmailTemplates(deps.emailTemplatesDir);

  const smtp = settings.smtp;
  const transport = deps.transport ?? (smtp ? createSmtpTransport(smtpTransportSettings(smtp)) : undefined);
  const setStatus = (interactionId: string, emailStatus: 'sent' | 'failed'): void => {
    try {
      if (records.get(interactionId)) records.update(interactionId, { emailStatus });
    } catch (err) {
      log.error({ interactionId, err: errorMessage(err) }, `could not mark the email ${emailStatus} in the call record`);
    }
  };
  const outbox = new MailOutbox({
    dir: join(dataDir, 'outbox'),
    transport: transport ?? { sendMail: () => Promise.reject(new Error('no SMTP server configured')) },
    from: smtp?.from ?? 'switchboard@localhost',
    logger: deps.logger,
    ...deps.outboxTimings,
    onDelivered: (job) => setStatus(job.interactionId, 'sent'),
    onFailed: (job) => setStatus(job.interactionId, 'failed'),
  });
  if (transport) {
    await outbox.start();
    log.info({ smtp: smtp ? describeSmtp({ host: smtp.host, port: smtp.port, secure: smtp.secure, from: smtp.from, ...(smtp.user ? { user: smtp.user } : {}) }) : 'custom transport' }, 'mail outbox running');
  } else {
    log.warn('no [smtp] settings: voicemail emails are kept in the outbox unsent until SMTP is configured');
  }

  const ariSettings = settings.ari;
  if (!ariSettings && !deps.ari) {
    log.warn('no [ari] settings: DID call control is off (the dialplan sends DID calls to voicemail)');
    return {
      workflow: undefined, records, outbox, ari: undefined,
      async stop() {
        await outbox.stop();
        records.close();
      },
    };
  }
  const ari: AriSupervised = deps.ari ?? new AriClient({
    url: ariSettings!.url, username: ariSettings!.user, password: ariSettings!.password, app: ariSettings!.app,
    ...(ariSettings!.restOverWebSocket ? { restOverWebSocket: ariSettings!.restOverWebSocket } : {}),
    ...deps.ariTimings,
  }, { logger: deps.logger });

  const workflow = new DidWorkflow({
    ari,
    presence: deps.presence,
    store: deps.store,
    records,
    outbox,
    templates,
    logger: deps.logger,
    settings: {
      voicemail: settings.voicemail,
      recordingsDir: join(dataDir, 'recordings'),
      ...(settings.voicemail.ringTimeoutSeconds !== undefined ? { ringTimeoutSeconds: settings.voicemail.ringTimeoutSeconds } : {}),
      ...(ariSettings ? { app: ariSettings.app } : {}),
      ...deps.workflow,
    },
  });
  workflow.start();

  // The adapter's supervisor reconnects for ever, except when the very first connect is refused
  // for bad credentials: then we try again ourselves, logging each refusal.
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const authRetryMs = deps.authRetryMs ?? 30_000;
  const connect = (): void => {
    ari.start().then(
      () => undefined,
      (err: unknown) => {
        if (stopped) return;
        if (err instanceof PeerAuthError) {
          log.error({ code: err.code, err: err.message, retryInMs: authRetryMs },
            'ARI refused the user and password in [ari]: DID calls fall back to the dialplan voicemail until this is fixed');
        } else {
          log.error({ err: errorMessage(err), retryInMs: authRetryMs }, 'ARI start failed');
        }
        retry = setTimeout(connect, authRetryMs);
      },
    );
  };
  connect();

  return {
    workflow, records, outbox, ari,
    async stop() {
      stopped = true;
      if (retry) clearTimeout(retry);
      await workflow.stop();
      await ari.stop();
      await outbox.stop();
      records.close();
    },
  };
}
