import { SwitchboardError } from '../errors.js';

/** A mail job handed to `MailOutbox.enqueue` is unusable (nothing was written). */
export class MailJobInvalidError extends SwitchboardError {
  constructor(readonly issues: readonly string[], interactionId?: string) {
    super('MAIL_JOB_INVALID', `mail job${interactionId ? ` for interaction "${interactionId}"` : ''} is invalid: ${issues.join('; ')}`, {
      interactionId,
      issues,
    });
  }
}

/** The outbox directory cannot be written or read. */
export class MailOutboxStorageError extends SwitchboardError {
  constructor(path: string, what: string, message: string, options?: { cause?: unknown }) {
    super('MAIL_OUTBOX_STORAGE', `mail outbox ${path}: ${what} failed: ${message}`, { path, what }, options);
  }
}

/** Who holds the outbox lock, as its lock file says. */
export interface OutboxLockHolder {
  pid: number;
  /** '' when the lock file does not say (written by an older switchboard). */
  host: string;
  acquiredAt: string;
}

/**
 * Another running outbox (another daemon: in another container or on another host sharing the
 * data directory, or another outbox in this process) holds the outbox directory's lock.
 */
export class MailOutboxLockedError extends SwitchboardError {
  /**
   * `takeoverInMs`: how long until the holder's lease runs out unless it refreshes the lock
   * meanwhile (a live holder does); `note`: why this holder in particular is held.
   */
  constructor(lockFile: string, holder: OutboxLockHolder | undefined, opts: { takeoverInMs?: number; note?: string; legacy?: boolean } = {}) {
    const where = holder?.host ? ` on host ${holder.host}` : '';
    const who = holder ? ` held by pid ${holder.pid}${where}${holder.acquiredAt ? ` since ${holder.acquiredAt}` : ''}` : '';
    const secs = opts.takeoverInMs !== undefined ? Math.max(0, Math.ceil(opts.takeoverInMs / 1000)) : undefined;
    const when = secs === undefined ? '' : opts.legacy ? ` (in ${secs} s)` : ` (in ${secs} s unless its holder refreshes it meanwhile, as a live one does)`;
    super(
      'MAIL_OUTBOX_LOCKED',
      `the mail outbox is in use by another switchboard (lock ${lockFile}${who})${opts.note ? `: ${opts.note}` : ''}. ` +
        'Run one daemon per data directory: two would send every email twice. ' +
        'A lock left by a crashed daemon is taken over automatically: at once when it ran in this same container (pid namespace), ' +
        'after it has missed a few refreshes (25 s by default) when it ran under this same host name, ' +
        `otherwise once it has not been refreshed for its lease${when}. ` +
        `To recover sooner, make sure no switchboard runs as ${holder ? `pid ${holder.pid}${where}` : 'its holder'} ` +
        `(check every container and host sharing this data directory), then delete ${lockFile}.`,
      {
        lockFile,
        ...(holder ? { pid: holder.pid, host: holder.host, acquiredAt: holder.acquiredAt } : {}),
        ...(opts.takeoverInMs !== undefined ? { takeoverInMs: Math.max(0, Math.round(opts.takeoverInMs)) } : {}),
      },
    );
  }
}

/**
 * A job file in the outbox cannot be used (not JSON, not a job of this version, its attachment
 * missing): it was moved to failed/ with its attachment and will not be sent.
 */
export class MailJobUnreadableError extends SwitchboardError {
  constructor(file: string, reason: string, details: { jobId: string; interactionId?: string }, options?: { cause?: unknown }) {
    super('MAIL_JOB_UNREADABLE', `mail job ${file} cannot be used (${reason}): moved to failed/ with its attachment; it will not be sent`,
      { file, reason, ...details }, options);
  }
}

/** `drain()` / `waitIdle()` gave up. */
export class MailOutboxTimeoutError extends SwitchboardError {
  constructor(what: string, ms: number, pending: number) {
    super('MAIL_OUTBOX_TIMEOUT', `mail outbox: ${what} did not happen within ${ms} ms (${pending} job(s) pending)`, { what, ms, pending });
  }
}

/** One attempt to hand a job to the SMTP server failed; the outbox will try again. */
export class MailSendError extends SwitchboardError {
  constructor(
    jobId: string,
    message: string,
    details: { interactionId: string; smtpCode?: number; errorCode?: string },
    options?: { cause?: unknown },
  ) {
    super('MAIL_SEND_FAILED', `SMTP: sending mail job ${jobId} failed: ${message}`, { jobId, ...details }, options);
  }

  get smtpCode(): number | undefined {
    return this.details.smtpCode as number | undefined;
  }
}

/** An email template is missing, does not compile, or uses a name the templates do not provide. */
export class EmailTemplateError extends SwitchboardError {
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super('EMAIL_TEMPLATE_INVALID', `email template ${file}: ${message}`, { file }, options);
  }
}

/** The voicemail email cannot be built for this agent (no or bad email address, bad time zone). */
export class VoicemailEmailError extends SwitchboardError {
  constructor(code: 'AGENT_EMAIL_MISSING' | 'AGENT_EMAIL_INVALID' | 'AGENT_TIMEZONE_INVALID', agentId: string, message: string) {
    super(code, `agent "${agentId}": ${message}`, { agentId });
  }
}
