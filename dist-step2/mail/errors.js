import { SwitchboardError } from '../errors.js';
/** A mail job handed to `MailOutbox.enqueue` is unusable (nothing was written). */
export class MailJobInvalidError extends SwitchboardError {
    issues;
    constructor(issues, interactionId) {
        super('MAIL_JOB_INVALID', `mail job${interactionId ? ` for interaction "${interactionId}"` : ''} is invalid: ${issues.join('; ')}`, {
            interactionId,
            issues,
        });
        this.issues = issues;
    }
}
/** The outbox directory cannot be written or read. */
export class MailOutboxStorageError extends SwitchboardError {
    constructor(path, what, message, options) {
        super('MAIL_OUTBOX_STORAGE', `mail outbox ${path}: ${what} failed: ${message}`, { path, what }, options);
    }
}
/** Another running outbox (another process, usually another daemon) already works on this directory. */
export class MailOutboxLockedError extends SwitchboardError {
    constructor(lockFile, pid) {
        super('MAIL_OUTBOX_LOCKED', `mail outbox is in use by process ${pid} (lock file ${lockFile}): run one daemon per outbox directory; if process ${pid} is not switchboard, delete the lock file`, { lockFile, pid });
    }
}
/** `drain()` / `waitIdle()` gave up. */
export class MailOutboxTimeoutError extends SwitchboardError {
    constructor(what, ms, pending) {
        super('MAIL_OUTBOX_TIMEOUT', `mail outbox: ${what} did not happen within ${ms} ms (${pending} job(s) pending)`, { what, ms, pending });
    }
}
/** One attempt to hand a job to the SMTP server failed; the outbox will try again. */
export class MailSendError extends SwitchboardError {
    constructor(jobId, message, details, options) {
        super('MAIL_SEND_FAILED', `SMTP: sending mail job ${jobId} failed: ${message}`, { jobId, ...details }, options);
    }
    get smtpCode() {
        return this.details.smtpCode;
    }
}
/** An email template is missing, does not compile, or uses a name the templates do not provide. */
export class EmailTemplateError extends SwitchboardError {
    constructor(file, message, options) {
        super('EMAIL_TEMPLATE_INVALID', `email template ${file}: ${message}`, { file }, options);
    }
}
/** The voicemail email cannot be built for this agent (no or bad email address, bad time zone). */
export class VoicemailEmailError extends SwitchboardError {
    constructor(code, agentId, message) {
        super(code, `agent "${agentId}": ${message}`, { agentId });
    }
}
//# sourceMappingURL=errors.js.map