import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import { silentLogger } from '../log.js';
import { copyFileAtomic, isTempName, renameDurable, writeFileAtomic } from '../fsutil.js';
/** Outbox files hold mail and recordings: readable by the daemon's user only. */
const writeFileDurable = (target, data) => writeFileAtomic(target, data, 0o600);
const copyFileDurable = (source, target) => copyFileAtomic(source, target, 0o600);
import { MailJobInvalidError, MailOutboxLockedError, MailOutboxStorageError, MailOutboxTimeoutError, MailSendError } from './errors.js';
const PENDING = 'pending';
const SENT = 'sent';
const FAILED = 'failed';
const LOCK_FILE = 'outbox.lock';
/** Temp files and attachment copies without a job are removed on start once this old. */
const ORPHAN_AGE_MS = 60 * 60 * 1000;
const ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const JOB_ID_RE = /^\d{13}-[0-9a-f]{12}$/;
/**
 * A durable outbox for email, on disk.
 *
 * `enqueue` returns only once the job (and its attachment bytes) are on disk for good (temp file,
 * fsync, rename, fsync of the directory), so a crash after it returns never loses the mail. A
 * worker started by `start()` (which first picks up every job left on disk) sends one job at a
 * time through the injected transport, retrying each failure with exponential backoff for ever
 * unless `maxAttempts` is set. Each job has one Message-ID for life. After the SMTP server accepts
 * a job it is moved to `sent/` at once, so it is not sent again.
 *
 * One running outbox per directory: `start()` takes `outbox.lock` (a lock left by a dead process is
 * taken over). Enqueueing needs no lock; jobs another process enqueues are picked up by `rescan()`.
 */
export class MailOutbox {
    options;
    dir;
    pendingDir;
    sentDir;
    failedDir;
    lockFile;
    log;
    initialDelayMs;
    maxDelayMs;
    failAfterAttempts;
    maxAttempts;
    messageIdDomain;
    entries = new Map();
    /** Delivered jobs whose move to sent/ failed: never load them again in this process. */
    done = new Set();
    waiters = [];
    dirsReady;
    starting;
    running = false;
    loading = false;
    lockHeld = false;
    timer;
    inFlight;
    constructor(options) {
        this.options = options;
        this.dir = options.dir;
        this.pendingDir = join(options.dir, PENDING);
        this.sentDir = join(options.dir, SENT);
        this.failedDir = join(options.dir, FAILED);
        this.lockFile = join(options.dir, LOCK_FILE);
        this.log = (options.logger ?? silentLogger()).child({ component: 'mail-outbox' });
        this.initialDelayMs = positive(options.initialDelayMs, 5_000);
        this.maxDelayMs = Math.max(positive(options.maxDelayMs, 15 * 60_000), this.initialDelayMs);
        this.failAfterAttempts = positive(options.failAfterAttempts, 5);
        this.maxAttempts = positive(options.maxAttempts, Number.POSITIVE_INFINITY);
        this.messageIdDomain = options.messageIdDomain ?? domainOf(options.from);
    }
    /**
     * Stores a job durably and, if the worker runs, starts sending it. Throws MailJobInvalidError
     * (bad input, unreadable attachment path) or MailOutboxStorageError (disk) with nothing queued.
     */
    async enqueue(input) {
        const issues = validateInput(input);
        if (issues.length > 0)
            throw new MailJobInvalidError(issues, typeof input.interactionId === 'string' ? input.interactionId : undefined);
        if (input.attachment?.path !== undefined) {
            const info = await stat(input.attachment.path).catch((err) => err);
            if (info instanceof Error || !info.isFile()) {
                const why = info instanceof Error ? errorMessage(info) : 'not a file';
                throw new MailJobInvalidError([`attachment ${input.attachment.path} cannot be read: ${why}`], input.interactionId);
            }
        }
        await this.ensureDirs();
        const id = `${String(Date.now()).padStart(13, '0')}-${randomBytes(6).toString('hex')}`;
        const job = {
            version: 1,
            id,
            interactionId: input.interactionId,
            to: input.to.trim(),
            subject: input.subject.replace(/[\r\n]+/g, ' ').trim(),
            text: input.text,
            messageId: `<${id}.${input.interactionId}@${this.messageIdDomain}>`,
            createdAt: new Date().toISOString(),
            attempts: 0,
        };
        let attachmentPath;
        try {
            if (input.attachment) {
                const file = `${id}.att`;
                attachmentPath = join(this.pendingDir, file);
                if (input.attachment.content !== undefined)
                    await writeFileDurable(attachmentPath, input.attachment.content);
                else
                    await copyFileDurable(input.attachment.path, attachmentPath);
                const size = (await stat(attachmentPath)).size;
                job.attachment = { filename: input.attachment.filename, file, size };
            }
            // Writing the job file is the commit point: before it, a crash leaves at most an orphan
            // attachment (removed on a later start); after it, the job will be sent.
            await writeFileDurable(this.jobPath(PENDING, id), JSON.stringify(job, null, 2) + '\n');
        }
        catch (err) {
            if (attachmentPath)
                await unlink(attachmentPath).catch(() => { });
            throw new MailOutboxStorageError(this.dir, `queueing mail for interaction ${input.interactionId}`, errorMessage(err), { cause: err });
        }
        this.log.info({ jobId: id, interactionId: job.interactionId, to: job.to, attachment: job.attachment?.filename }, 'mail queued');
        if (!this.entries.has(id))
            this.entries.set(id, { job, dueAt: Date.now() });
        this.schedule();
        return copyJob(job);
    }
    /** Takes the lock, picks up every job on disk and starts sending. */
    start() {
        if (this.running)
            return Promise.resolve();
        this.starting ??= this.startOnce().finally(() => {
            this.starting = undefined;
        });
        return this.starting;
    }
    async startOnce() {
        await this.ensureDirs();
        await this.acquireLock();
        this.loading = true;
        try {
            await this.removeOrphans();
            await this.loadPending();
        }
        catch (err) {
            this.loading = false;
            await this.releaseLock();
            throw err;
        }
        this.loading = false;
        this.running = true;
        this.log.info({ dir: this.dir, pending: this.entries.size }, 'mail outbox started');
        this.schedule();
    }
    /** Stops sending: waits for a send in progress to finish, then releases the lock. Jobs stay on disk. */
    async stop() {
        this.running = false;
        this.clearTimer();
        while (this.inFlight)
            await this.inFlight;
        await this.releaseLock();
        this.notify();
    }
    /** Loads jobs that appeared on disk since `start()` (enqueued by another process). Returns how many. */
    async rescan() {
        while (this.inFlight)
            await this.inFlight;
        this.loading = true;
        try {
            return await this.loadPending();
        }
        finally {
            this.loading = false;
            this.schedule();
        }
    }
    /** Makes every pending job due now (e.g. after the SMTP settings were fixed). */
    retryNow() {
        const now = Date.now();
        for (const entry of this.entries.values())
            entry.dueAt = now;
        this.schedule();
    }
    /** Copies of the jobs not yet delivered, oldest first. */
    pending() {
        return [...this.entries.values()].map((e) => copyJob(e.job)).sort((a, b) => a.id.localeCompare(b.id));
    }
    /** Resolves once every known job is delivered (or given up) and nothing is being sent. */
    drain(timeoutMs = 30_000) {
        return this.waitUntil('drain', () => this.entries.size === 0 && !this.inFlight, timeoutMs);
    }
    /** Resolves once nothing is being sent and no job is due (every pending job waits for its retry). */
    waitIdle(timeoutMs = 30_000) {
        return this.waitUntil('idle', () => !this.inFlight && !this.loading && (!this.running || !this.hasDueJob()), timeoutMs);
    }
    // ---- worker ----
    schedule() {
        this.clearTimer();
        if (this.running && !this.inFlight && !this.loading) {
            const next = this.nextEntry();
            if (next) {
                const delay = next.dueAt - Date.now();
                if (delay <= 0)
                    this.send(next);
                else
                    this.timer = setTimeout(() => {
                        this.timer = undefined;
                        this.schedule();
                    }, delay);
            }
        }
        this.notify();
    }
    send(entry) {
        const run = this.attempt(entry).catch((err) => {
            // attempt() handles send failures itself; this is a bug or a disk error. Do not spin.
            entry.dueAt = Date.now() + this.maxDelayMs;
            this.log.error({ jobId: entry.job.id, err: errorMessage(err) }, 'mail outbox: internal error; job retried later');
        });
        this.inFlight = run.finally(() => {
            this.inFlight = undefined;
            this.schedule();
        });
    }
    async attempt(entry) {
        const { job } = entry;
        const attempt = job.attempts + 1;
        let response = '';
        try {
            const info = await this.options.transport.sendMail(this.message(job));
            response = typeof info?.response === 'string' ? info.response : '';
            if ((info?.rejected?.length ?? 0) > 0 && (info?.accepted?.length ?? 0) === 0) {
                throw Object.assign(new Error(`every recipient was rejected: ${response}`), { code: 'EENVELOPE' });
            }
        }
        catch (err) {
            await this.attemptFailed(entry, attempt, err);
            return;
        }
        await this.delivered(entry, attempt, response);
    }
    async delivered(entry, attempt, response) {
        const { job } = entry;
        job.attempts = attempt;
        job.lastAttemptAt = new Date().toISOString();
        delete job.lastError;
        const pendingPath = this.jobPath(PENDING, job.id);
        const sentPath = this.jobPath(SENT, job.id);
        // The SMTP server has answered 250 to DATA: the message is its responsibility now. Moving the
        // job to sent/ is what stops it being sent again. One window remains: a crash between the 250
        // and this rename leaves the job in pending/, and the next start sends it again, with the same
        // Message-ID (and Date), which mail systems use to drop the duplicate. Closing that window
        // would need the server's help; it is a few milliseconds wide.
        let moved = true;
        try {
            await renameDurable(pendingPath, sentPath);
        }
        catch (err) {
            moved = false;
            this.done.add(job.id);
            this.log.error({ jobId: job.id, interactionId: job.interactionId, err: errorMessage(err) }, 'mail delivered but the job could not be moved to sent/: it will be sent again after a restart');
        }
        this.entries.delete(job.id);
        if (moved) {
            // Best effort: note the delivery in the sent copy; the outbox's attachment copy is no longer needed.
            const record = { ...job, deliveredAt: job.lastAttemptAt, response };
            await writeFileDurable(sentPath, JSON.stringify(record, null, 2) + '\n').catch(() => { });
            if (job.attachment)
                await unlink(join(this.pendingDir, job.attachment.file)).catch(() => { });
        }
        this.log.info({ jobId: job.id, interactionId: job.interactionId, to: job.to, attempts: attempt, response }, 'mail delivered');
        this.callback('onDelivered', job, () => this.options.onDelivered?.(copyJob(job), { response }));
    }
    async attemptFailed(entry, attempt, cause) {
        const { job } = entry;
        const error = sendError(job, cause);
        job.attempts = attempt;
        job.lastAttemptAt = new Date().toISOString();
        job.lastError = errorMessage(cause);
        const giveUp = attempt >= this.maxAttempts;
        const delayMs = giveUp ? null : Math.min(this.maxDelayMs, this.initialDelayMs * 2 ** (attempt - 1));
        const logFields = {
            jobId: job.id,
            interactionId: job.interactionId,
            to: job.to,
            attempt,
            smtpCode: error.details.smtpCode,
            errorCode: error.details.errorCode,
            err: job.lastError,
        };
        if (giveUp) {
            this.entries.delete(job.id);
            await this.moveToFailed(job);
            this.log.error(logFields, `mail not sent after ${attempt} attempts: giving up, job kept in failed/`);
        }
        else {
            entry.dueAt = Date.now() + delayMs;
            // Keep the attempt count across restarts; losing this write only resets the backoff.
            await writeFileDurable(this.jobPath(PENDING, job.id), JSON.stringify(job, null, 2) + '\n').catch((err) => {
                this.log.warn({ jobId: job.id, err: errorMessage(err) }, 'mail outbox: could not record the attempt on disk');
            });
            this.log.warn({ ...logFields, delayMs }, `mail not sent; retrying in ${delayMs} ms`);
        }
        this.callback('onAttemptFailed', job, () => this.options.onAttemptFailed?.(copyJob(job), error, delayMs));
        if (attempt === this.failAfterAttempts || (giveUp && attempt < this.failAfterAttempts)) {
            this.log.error(logFields, `mail still not sent after ${attempt} attempts${giveUp ? '' : '; still retrying'}`);
            this.callback('onFailed', job, () => this.options.onFailed?.(copyJob(job), error));
        }
    }
    message(job) {
        return {
            from: this.options.from,
            to: job.to,
            subject: job.subject,
            text: job.text,
            messageId: job.messageId,
            date: new Date(job.createdAt),
            headers: { 'X-Switchboard-Interaction-Id': job.interactionId },
            attachments: job.attachment ? [{ filename: job.attachment.filename, path: join(this.pendingDir, job.attachment.file) }] : [],
            disableUrlAccess: true,
        };
    }
    callback(name, job, call) {
        const report = (err) => {
            this.log.error({ jobId: job.id, interactionId: job.interactionId, err: errorMessage(err) }, `mail outbox: ${name} callback failed`);
        };
        try {
            const result = call();
            if (result && typeof result.catch === 'function')
                result.catch(report);
        }
        catch (err) {
            report(err);
        }
    }
    nextEntry() {
        let best;
        for (const entry of this.entries.values()) {
            if (!best || entry.dueAt < best.dueAt || (entry.dueAt === best.dueAt && entry.job.id < best.job.id))
                best = entry;
        }
        return best;
    }
    hasDueJob() {
        const now = Date.now();
        for (const entry of this.entries.values())
            if (entry.dueAt <= now)
                return true;
        return false;
    }
    clearTimer() {
        if (this.timer)
            clearTimeout(this.timer);
        this.timer = undefined;
    }
    waitUntil(what, ready, timeoutMs) {
        if (ready())
            return Promise.resolve();
        return new Promise((resolve, reject) => {
            const waiter = {
                ready,
                resolve: () => {
                    clearTimeout(timer);
                    resolve();
                },
            };
            const timer = setTimeout(() => {
                const i = this.waiters.indexOf(waiter);
                if (i !== -1)
                    this.waiters.splice(i, 1);
                reject(new MailOutboxTimeoutError(what, timeoutMs, this.entries.size));
            }, timeoutMs);
            this.waiters.push(waiter);
        });
    }
    notify() {
        for (const waiter of [...this.waiters]) {
            if (waiter.ready()) {
                this.waiters.splice(this.waiters.indexOf(waiter), 1);
                waiter.resolve();
            }
        }
    }
    // ---- disk ----
    jobPath(folder, id) {
        return join(this.dir, folder, `${id}.json`);
    }
    ensureDirs() {
        this.dirsReady ??= (async () => {
            for (const dir of [this.dir, this.pendingDir, this.sentDir, this.failedDir])
                await mkdir(dir, { recursive: true, mode: 0o700 });
        })().catch((err) => {
            this.dirsReady = undefined;
            throw new MailOutboxStorageError(this.dir, 'creating the outbox directories', errorMessage(err), { cause: err });
        });
        return this.dirsReady;
    }
    /** Reads pending/ and adds the jobs not known yet. */
    async loadPending() {
        let names;
        try {
            names = (await readdir(this.pendingDir)).filter((n) => n.endsWith('.json') && !isTempName(n)).sort();
        }
        catch (err) {
            throw new MailOutboxStorageError(this.dir, 'reading pending/', errorMessage(err), { cause: err });
        }
        let added = 0;
        for (const name of names) {
            const id = name.slice(0, -'.json'.length);
            if (this.entries.has(id) || this.done.has(id))
                continue;
            const path = join(this.pendingDir, name);
            let job;
            try {
                job = parseJob(await readFile(path, 'utf8'), id);
            }
            catch (err) {
                if (err.code === 'ENOENT')
                    continue;
                this.log.error({ file: path, err: errorMessage(err) }, 'mail outbox: unreadable job moved to failed/');
                await renameDurable(path, join(this.failedDir, name)).catch(() => { });
                continue;
            }
            // Checked again after the read: the job may have been delivered and moved meanwhile.
            if (this.entries.has(id) || this.done.has(id) || !existsSync(path))
                continue;
            if (job.attachment && !existsSync(join(this.pendingDir, job.attachment.file))) {
                this.log.error({ jobId: id, interactionId: job.interactionId }, 'mail outbox: the attachment of this job is missing; job moved to failed/');
                await this.moveToFailed(job);
                continue;
            }
            this.entries.set(id, { job, dueAt: Date.now() });
            added += 1;
        }
        return added;
    }
    async moveToFailed(job) {
        try {
            await renameDurable(this.jobPath(PENDING, job.id), this.jobPath(FAILED, job.id));
            if (job.attachment && existsSync(join(this.pendingDir, job.attachment.file))) {
                await renameDurable(join(this.pendingDir, job.attachment.file), join(this.failedDir, job.attachment.file));
            }
        }
        catch (err) {
            this.log.error({ jobId: job.id, err: errorMessage(err) }, 'mail outbox: could not move the job to failed/');
        }
    }
    /** Removes temp files of interrupted writes and attachment copies whose job never got written. */
    async removeOrphans() {
        const names = await readdir(this.pendingDir).catch(() => []);
        const jobs = new Set(names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -'.json'.length)));
        const cutoff = Date.now() - ORPHAN_AGE_MS;
        for (const name of names) {
            const orphan = isTempName(name) || (name.endsWith('.att') && !jobs.has(name.slice(0, -'.att'.length)));
            if (!orphan)
                continue;
            const path = join(this.pendingDir, name);
            const info = await stat(path).catch(() => undefined);
            // Young files may belong to an enqueue in progress in another process.
            if (info && info.mtimeMs < cutoff) {
                await unlink(path).catch(() => { });
                this.log.info({ file: path }, 'mail outbox: removed a leftover of an interrupted enqueue');
            }
        }
    }
    async acquireLock() {
        for (let tries = 0; tries < 3; tries += 1) {
            try {
                await writeFile(this.lockFile, JSON.stringify({ pid: process.pid, since: new Date().toISOString() }) + '\n', { flag: 'wx', mode: 0o600 });
                this.lockHeld = true;
                return;
            }
            catch (err) {
                if (err.code !== 'EEXIST') {
                    throw new MailOutboxStorageError(this.dir, `creating ${LOCK_FILE}`, errorMessage(err), { cause: err });
                }
            }
            const pid = await readFile(this.lockFile, 'utf8').then((s) => Number(JSON.parse(s).pid), () => NaN);
            // A lock of this very process is one an earlier instance left (e.g. PID 1 in a container
            // restarted after a crash); two running outboxes on one directory in one process is a bug.
            if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid))
                throw new MailOutboxLockedError(this.lockFile, pid);
            this.log.warn({ lockFile: this.lockFile, pid: Number.isNaN(pid) ? undefined : pid }, 'mail outbox: taking over a stale lock');
            await unlink(this.lockFile).catch(() => { });
        }
        throw new MailOutboxStorageError(this.dir, `creating ${LOCK_FILE}`, 'the lock file keeps reappearing');
    }
    async releaseLock() {
        if (!this.lockHeld)
            return;
        this.lockHeld = false;
        await unlink(this.lockFile).catch(() => { });
    }
}
function validateInput(input) {
    const issues = [];
    if (typeof input.interactionId !== 'string' || !ID_RE.test(input.interactionId)) {
        issues.push(`interactionId "${String(input.interactionId)}" is invalid: letters, digits, "_", "." or "-", at most 64`);
    }
    if (typeof input.to !== 'string' || input.to.trim() === '')
        issues.push('"to" is required');
    else if (/[\u0000-\u001f\u007f]/.test(input.to))
        issues.push('"to" must not contain control characters (CR, LF, ...)');
    else if (!input.to.includes('@'))
        issues.push(`"to" must be an email address, got "${input.to}"`);
    if (typeof input.subject !== 'string')
        issues.push('"subject" must be text');
    if (typeof input.text !== 'string')
        issues.push('"text" must be text');
    const a = input.attachment;
    if (a !== undefined) {
        if (typeof a.filename !== 'string' || a.filename === '' || a.filename.length > 255 || /[/\\\u0000-\u001f\u007f]/.test(a.filename)) {
            issues.push(`attachment filename "${String(a.filename)}" is invalid: a plain file name without "/", "\\" or control characters`);
        }
        const sources = (a.path !== undefined ? 1 : 0) + (a.content !== undefined ? 1 : 0);
        if (sources !== 1)
            issues.push('attachment needs exactly one of "path" and "content"');
        if (a.content !== undefined && !Buffer.isBuffer(a.content))
            issues.push('attachment "content" must be a Buffer');
        if (a.path !== undefined && (typeof a.path !== 'string' || a.path === ''))
            issues.push('attachment "path" must be a file path');
    }
    return issues;
}
function parseJob(text, id) {
    const job = JSON.parse(text);
    const strings = ['interactionId', 'to', 'subject', 'text', 'messageId', 'createdAt'];
    if (job.version !== 1 || job.id !== id || !JOB_ID_RE.test(id) || strings.some((k) => typeof job[k] !== 'string') || typeof job.attempts !== 'number') {
        throw new Error('not a mail job of this version');
    }
    if (job.attachment !== undefined && (typeof job.attachment.file !== 'string' || job.attachment.file !== `${id}.att`)) {
        throw new Error('bad attachment reference');
    }
    return job;
}
function sendError(job, cause) {
    const e = (typeof cause === 'object' && cause !== null ? cause : {});
    return new MailSendError(job.id, errorMessage(cause), {
        interactionId: job.interactionId,
        ...(typeof e.responseCode === 'number' ? { smtpCode: e.responseCode } : {}),
        ...(typeof e.code === 'string' ? { errorCode: e.code } : {}),
    }, { cause });
}
function copyJob(job) {
    return structuredClone(job);
}
function positive(value, fallback) {
    return value !== undefined && value > 0 ? value : fallback;
}
function domainOf(from) {
    const match = /@([A-Za-z0-9.-]+)>?\s*$/.exec(from.trim());
    return match?.[1] ?? 'switchboard.invalid';
}
function processAlive(pid) {
    try {
        process.kill(pid, 0);
        return true;
    }
    catch (err) {
        return err.code === 'EPERM';
    }
}
//# sourceMappingURL=outbox.js.map