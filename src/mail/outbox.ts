import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { SendMailOptions } from 'nodemailer';
import { errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { copyFileAtomic, fsyncDir, isTempName, renameDurable, writeFileAtomic } from '../fsutil.js';

/** Outbox files hold mail and recordings: readable by the daemon's user only. */
const writeFileDurable = (target: string, data: string | Buffer) => writeFileAtomic(target, data, 0o600);
const copyFileDurable = (source: string, target: string) => copyFileAtomic(source, target, 0o600);
import { MailJobInvalidError, MailJobUnreadableError, MailOutboxLockedError, MailOutboxStorageError, MailOutboxTimeoutError, MailSendError } from './errors.js';
import { OutboxLock } from './lock.js';
import type { MailTransport } from './transport.js';

/** What the workflow hands to `enqueue`. */
export interface MailJobInput {
  to: string;
  /** CR/LF become spaces. */
  subject: string;
  text: string;
  /** Either `path` (copied into the outbox) or `content`. */
  attachment?: { filename: string; path?: string; content?: Buffer };
  interactionId: string;
}

/** A job as stored in the outbox (`pending/<id>.json`) and passed to the callbacks (a copy). */
export interface MailJob {
  version: 1;
  /**
   * `<ms since epoch>-<12 hex>.<interactionId>`: sorts in enqueue order; also the file name, so
   * that a job file that cannot be read still says whose call it belongs to. (Jobs queued by
   * earlier versions are `<ms since epoch>-<12 hex>`, and still loaded.)
   */
  id: string;
  interactionId: string;
  to: string;
  subject: string;
  text: string;
  /** `file` is the outbox's own copy of the bytes, next to the job. */
  attachment?: { filename: string; file: string; size: number };
  /**
   * `<id@domain>`, fixed when the job is queued and stored with it: every attempt, before and
   * after a restart, sends this same Message-ID (and the same Date), so a receiver can drop a
   * duplicate (see MailOutbox on when one is sent).
   */
  messageId: string;
  createdAt: string;
  /** Attempts made so far (kept across restarts). */
  attempts: number;
  lastAttemptAt?: string;
  lastError?: string;
}

/**
 * A job file found in pending/ that cannot be used (not JSON, written by another version, or its
 * attachment missing), as `onFailed` gets it: the job was moved to failed/ with its attachment.
 */
export interface UnreadableMailJob {
  unreadable: true;
  id: string;
  /** Taken from the file name (or, for a job named by an earlier version, from what can be read of it). */
  interactionId: string;
  /** Where the job file is now: in failed/ (still in pending/ if it could not be moved). */
  file: string;
}

export interface MailOutboxOptions {
  /** The outbox directory (created if missing): `pending/`, `sent/`, `failed/`, `outbox.lock`. */
  dir: string;
  transport: MailTransport;
  /** From: header and envelope sender. */
  from: string;
  logger?: Logger;
  /** Delay after the first failed attempt; doubles after each further one. Default 5 s. */
  initialDelayMs?: number;
  /** Cap on the delay. Default 15 min. */
  maxDelayMs?: number;
  /** After this many failed attempts `onFailed` is called once (the job is still retried). Default 5. */
  failAfterAttempts?: number;
  /** Give up after this many attempts and move the job to `failed/`. Default: never give up. */
  maxAttempts?: number;
  /** Domain for Message-IDs. Default: the domain of `from`. */
  messageIdDomain?: string;
  /**
   * Delivered jobs are kept in `sent/` this long (by the time they were delivered), then removed
   * (on start, and then at most once an hour after a delivery). Default 30 days; Infinity keeps them.
   */
  sentRetentionMs?: number;
  /**
   * The outbox lock's lease: a lock its holder has not refreshed for this long is taken over
   * (the holder refreshes it every sixth of this, at most every 10 s). Default 120 s.
   */
  lockLeaseMs?: number;
  /** The SMTP server accepted the message (the call record's email status becomes "sent"). */
  onDelivered?: (job: MailJob, info: { response: string }) => void | Promise<void>;
  /** One attempt failed; `nextDelayMs` is null when the outbox gave up on the job. */
  onAttemptFailed?: (job: MailJob, err: MailSendError, nextDelayMs: number | null) => void | Promise<void>;
  /**
   * Called once, after `failAfterAttempts` failures (the record's email status becomes "failed");
   * retries go on. Also called, with an UnreadableMailJob or a MailJob and a MailJobUnreadableError,
   * for a job found in pending/ that cannot be sent (unreadable, another version, attachment
   * missing): it was moved to failed/ and will not be sent. Either way `job.interactionId` says
   * which call's email failed. (A job whose interaction id cannot be told is only logged.)
   */
  onFailed?: (job: MailJob | UnreadableMailJob, err: MailSendError | MailJobUnreadableError) => void | Promise<void>;
}

interface Entry {
  job: MailJob;
  /** ms since epoch when the next attempt is due. */
  dueAt: number;
}

const PENDING = 'pending';
const SENT = 'sent';
const FAILED = 'failed';
const LOCK_FILE = 'outbox.lock';
/** Temp files and attachment copies without a job are removed on start once this old. */
const ORPHAN_AGE_MS = 60 * 60 * 1000;
const SENT_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;
/** sent/ is pruned at most this often while running. */
const PRUNE_EVERY_MS = 60 * 60 * 1000;
const ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;
/** Group 1: the interaction id (absent from the ids of jobs queued by earlier versions). */
const JOB_ID_RE = /^\d{13}-[0-9a-f]{12}(?:\.([A-Za-z0-9_.-]{1,64}))?$/;

/**
 * A durable outbox for email, on disk.
 *
 * `enqueue` returns only once the job (and its attachment bytes) are on disk for good (temp file,
 * fsync, rename, fsync of the directory), so a crash after it returns never loses the mail. A
 * worker started by `start()` (which first picks up every job left on disk) sends one job at a
 * time through the injected transport, retrying each failure with exponential backoff for ever
 * unless `maxAttempts` is set. After the SMTP server accepts a job it is moved to `sent/` at once
 * (or, if that fails, e.g. disk full, removed from `pending/`), so it is not sent again; `sent/`
 * keeps the delivered jobs for `sentRetentionMs` (30 days).
 *
 * Delivery is at least once, not exactly once: a crash (or power cut) after the SMTP server has
 * accepted a message but before its job left `pending/` sends it again at the next start. That
 * window is a few milliseconds per mail; the copy sent again has the same Message-ID and Date
 * (both are fixed when the job is queued), so receivers that drop duplicate Message-IDs drop it.
 * Closing the window would need the server's help.
 *
 * One running outbox per directory, even when daemons in several containers or on several hosts
 * share it: `start()` takes `outbox.lock` (see OutboxLock: holder's pid, host and token, a lease
 * the holder keeps refreshing, takeover by atomic rename) or throws MailOutboxLockedError. Before
 * each send the outbox checks that the lock is still its own; if another process took it over, it
 * stops sending (logged). Enqueueing needs no lock; jobs another process enqueues are picked up by
 * `rescan()`.
 */
export class MailOutbox {
  private readonly dir: string;
  private readonly pendingDir: string;
  private readonly sentDir: string;
  private readonly failedDir: string;
  private readonly lockFile: string;
  private readonly log: Logger;
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly failAfterAttempts: number;
  private readonly maxAttempts: number;
  private readonly messageIdDomain: string;
  private readonly sentRetentionMs: number;
  private readonly lock: OutboxLock;
  private lastPruneAt = 0;

  private readonly entries = new Map<string, Entry>();
  /** Jobs never to load again in this process: delivered but stuck in pending/, or unusable. */
  private readonly done = new Set<string>();
  private readonly waiters: { ready: () => boolean; resolve: () => void }[] = [];
  private dirsReady: Promise<void> | undefined;
  private starting: Promise<void> | undefined;
  private running = false;
  private loading = false;
  private lostLogged = false;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;

  constructor(private readonly options: MailOutboxOptions) {
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
    this.sentRetentionMs = positive(options.sentRetentionMs, SENT_RETENTION_MS);
    this.lock = new OutboxLock(this.lockFile, { leaseMs: options.lockLeaseMs, logger: this.log, onLost: () => this.lockLost() });
  }

  /**
   * Stores a job durably and, if the worker runs, starts sending it. Throws MailJobInvalidError
   * (bad input, unreadable attachment path) or MailOutboxStorageError (disk) with nothing queued.
   */
  async enqueue(input: MailJobInput): Promise<MailJob> {
    const issues = validateInput(input);
    if (issues.length > 0) throw new MailJobInvalidError(issues, typeof input.interactionId === 'string' ? input.interactionId : undefined);
    if (input.attachment?.path !== undefined) {
      const info = await stat(input.attachment.path).catch((err: unknown) => err as Error);
      if (info instanceof Error || !info.isFile()) {
        const why = info instanceof Error ? errorMessage(info) : 'not a file';
        throw new MailJobInvalidError([`attachment ${input.attachment.path} cannot be read: ${why}`], input.interactionId);
      }
    }
    await this.ensureDirs();
    // The interaction id is in the file name too: a job that cannot be read still names its call.
    const id = `${String(Date.now()).padStart(13, '0')}-${randomBytes(6).toString('hex')}.${input.interactionId}`;
    const job: MailJob = {
      version: 1,
      id,
      interactionId: input.interactionId,
      to: input.to.trim(),
      subject: input.subject.replace(/[\r\n]+/g, ' ').trim(),
      text: input.text,
      // Fixed now, for the life of the job: every resend carries it (see the class comment).
      messageId: `<${id}@${this.messageIdDomain}>`,
      createdAt: new Date().toISOString(),
      attempts: 0,
    };
    let attachmentPath: string | undefined;
    try {
      if (input.attachment) {
        const file = `${id}.att`;
        attachmentPath = join(this.pendingDir, file);
        if (input.attachment.content !== undefined) await writeFileDurable(attachmentPath, input.attachment.content);
        else await copyFileDurable(input.attachment.path as string, attachmentPath);
        const size = (await stat(attachmentPath)).size;
        job.attachment = { filename: input.attachment.filename, file, size };
      }
      // Writing the job file is the commit point: before it, a crash leaves at most an orphan
      // attachment (removed on a later start); after it, the job will be sent.
      await writeFileDurable(this.jobPath(PENDING, id), JSON.stringify(job, null, 2) + '\n');
    } catch (err) {
      if (attachmentPath) await unlink(attachmentPath).catch(() => {});
      throw new MailOutboxStorageError(this.dir, `queueing mail for interaction ${input.interactionId}`, errorMessage(err), { cause: err });
    }
    this.log.info({ jobId: id, interactionId: job.interactionId, to: job.to, attachment: job.attachment?.filename }, 'mail queued');
    if (!this.entries.has(id)) this.entries.set(id, { job, dueAt: Date.now() });
    this.schedule();
    return copyJob(job);
  }

  /** Takes the lock, picks up every job on disk and starts sending. */
  start(): Promise<void> {
    if (this.running) return Promise.resolve();
    this.starting ??= this.startOnce().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async startOnce(): Promise<void> {
    await this.ensureDirs();
    await this.lock.acquire();
    this.loading = true;
    try {
      await this.removeOrphans();
      await this.loadPending();
      await this.pruneSent();
    } catch (err) {
      this.loading = false;
      await this.lock.release();
      throw err;
    }
    this.loading = false;
    if (!this.lock.held) {
      // Taken over while we were loading (we stalled for longer than the lease).
      this.notify();
      throw new MailOutboxLockedError(this.lockFile, undefined, { note: 'another process took the lock over while this outbox was starting' });
    }
    this.lostLogged = false;
    this.running = true;
    this.log.info({ dir: this.dir, pending: this.entries.size }, 'mail outbox started');
    this.schedule();
  }

  /**
   * Stops sending: waits for a send in progress to finish, then releases the lock (only if it is
   * still ours: a lock another process took over is left to it). Jobs stay on disk.
   */
  async stop(): Promise<void> {
    this.running = false;
    this.clearTimer();
    while (this.inFlight) await this.inFlight;
    await this.lock.release();
    this.notify();
  }

  /** Another process took the lock over: it sends the jobs on disk now; this outbox stops. */
  private lockLost(): void {
    this.running = false;
    this.clearTimer();
    if (!this.lostLogged) {
      this.lostLogged = true;
      this.log.error({ dir: this.dir, pending: this.entries.size },
        'mail outbox stopped: another process holds its lock now (it sends the jobs on disk); restart this daemon only once that one is stopped');
    }
    this.notify();
  }

  /** Loads jobs that appeared on disk since `start()` (enqueued by another process). Returns how many. */
  async rescan(): Promise<number> {
    while (this.inFlight) await this.inFlight;
    this.loading = true;
    try {
      return await this.loadPending();
    } finally {
      this.loading = false;
      this.schedule();
    }
  }

  /** Makes every pending job due now (e.g. after the SMTP settings were fixed). */
  retryNow(): void {
    const now = Date.now();
    for (const entry of this.entries.values()) entry.dueAt = now;
    this.schedule();
  }

  /** Copies of the jobs not yet delivered, oldest first. */
  pending(): MailJob[] {
    return [...this.entries.values()].map((e) => copyJob(e.job)).sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Resolves once every known job is delivered (or given up) and nothing is being sent. */
  drain(timeoutMs = 30_000): Promise<void> {
    return this.waitUntil('drain', () => this.entries.size === 0 && !this.inFlight, timeoutMs);
  }

  /** Resolves once nothing is being sent and no job is due (every pending job waits for its retry). */
  waitIdle(timeoutMs = 30_000): Promise<void> {
    return this.waitUntil('idle', () => !this.inFlight && !this.loading && (!this.running || !this.hasDueJob()), timeoutMs);
  }

  // ---- worker ----

  private schedule(): void {
    this.clearTimer();
    if (this.running && !this.inFlight && !this.loading) {
      const next = this.nextEntry();
      if (next) {
        const delay = next.dueAt - Date.now();
        if (delay <= 0) this.send(next);
        else this.timer = setTimeout(() => {
          this.timer = undefined;
          this.schedule();
        }, delay);
      }
    }
    this.notify();
  }

  private send(entry: Entry): void {
    const run = this.attempt(entry).catch((err: unknown) => {
      // attempt() handles send failures itself; this is a bug or a disk error. Do not spin.
      entry.dueAt = Date.now() + this.maxDelayMs;
      this.log.error({ jobId: entry.job.id, err: errorMessage(err) }, 'mail outbox: internal error; job retried later');
    });
    this.inFlight = run.finally(() => {
      this.inFlight = undefined;
      this.schedule();
    });
  }

  private async attempt(entry: Entry): Promise<void> {
    const { job } = entry;
    // Still ours? A daemon that lost its lock (stalled longer than the lease) must not send
    // what the new holder sends too. check() calls lockLost() (and we stop) if it is not.
    if (!(await this.lock.check())) {
      this.lockLost();
      return;
    }
    const attempt = job.attempts + 1;
    let response = '';
    try {
      const info = await this.options.transport.sendMail(this.message(job));
      response = typeof info?.response === 'string' ? info.response : '';
      if ((info?.rejected?.length ?? 0) > 0 && (info?.accepted?.length ?? 0) === 0) {
        throw Object.assign(new Error(`every recipient was rejected: ${response}`), { code: 'EENVELOPE' });
      }
    } catch (err) {
      await this.attemptFailed(entry, attempt, err);
      return;
    }
    await this.delivered(entry, attempt, response);
  }

  private async delivered(entry: Entry, attempt: number, response: string): Promise<void> {
    const { job } = entry;
    job.attempts = attempt;
    job.lastAttemptAt = new Date().toISOString();
    delete job.lastError;
    const pendingPath = this.jobPath(PENDING, job.id);
    const sentPath = this.jobPath(SENT, job.id);
    // The SMTP server has answered 250 to DATA: the message is its responsibility now. Taking the
    // job out of pending/ is what stops it being sent again. One window remains (delivery is at
    // least once): a crash between the 250 and this rename leaves the job in pending/, and the next
    // start sends it again, with the same Message-ID (and Date), which mail systems use to drop
    // the duplicate. Closing that window would need the server's help; it is a few milliseconds wide.
    const moved = await this.moveToSent(job, pendingPath, sentPath);
    this.entries.delete(job.id);
    if (moved) {
      // Best effort: note the delivery in the sent copy; the outbox's attachment copy is no longer needed.
      const record = { ...job, deliveredAt: job.lastAttemptAt, response };
      await writeFileDurable(sentPath, JSON.stringify(record, null, 2) + '\n').catch(() => {});
      if (job.attachment) await unlink(join(this.pendingDir, job.attachment.file)).catch(() => {});
    }
    this.log.info({ jobId: job.id, interactionId: job.interactionId, to: job.to, attempts: attempt, response }, 'mail delivered');
    this.callback('onDelivered', job, () => this.options.onDelivered?.(copyJob(job), { response }));
    if (Date.now() - this.lastPruneAt >= PRUNE_EVERY_MS) await this.pruneSent();
  }

  /**
   * Moves a delivered job to sent/. If that fails (disk full: the directory may need a new block),
   * the job is removed from pending/ instead (unlinking needs no space), so that it is not sent
   * again after a restart; sent/ then has no record of it, the log line is its record.
   */
  private async moveToSent(job: MailJob, pendingPath: string, sentPath: string): Promise<boolean> {
    const fields = { jobId: job.id, interactionId: job.interactionId, to: job.to, messageId: job.messageId };
    let renameError: unknown;
    try {
      await renameDurable(pendingPath, sentPath);
      return true;
    } catch (err) {
      renameError = err;
    }
    // renameDurable may have renamed, then failed to fsync the directory.
    if (!existsSync(pendingPath) && existsSync(sentPath)) {
      this.log.warn({ ...fields, err: errorMessage(renameError) }, 'mail outbox: moved a delivered job to sent/ but could not sync the directory');
      return true;
    }
    try {
      await unlink(pendingPath);
      if (job.attachment) await unlink(join(this.pendingDir, job.attachment.file)).catch(() => {});
      await fsyncDir(this.pendingDir).catch(() => {});
      this.log.error({ ...fields, err: errorMessage(renameError) },
        'mail delivered but its job could not be moved to sent/: removed from pending/ instead, so it is not sent again (no record of it in sent/)');
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'ENOENT') {
        this.done.add(job.id);
        this.log.error({ ...fields, err: errorMessage(renameError), unlinkErr: errorMessage(err) },
          'mail delivered but its job could neither be moved to sent/ nor removed from pending/: it will be sent again after a restart (same Message-ID)');
      }
    }
    return false;
  }

  /** Removes sent/ records older than `sentRetentionMs` (and old temp files). Never throws. */
  private async pruneSent(): Promise<void> {
    this.lastPruneAt = Date.now();
    if (!Number.isFinite(this.sentRetentionMs)) return;
    const names = await readdir(this.sentDir).catch(() => [] as string[]);
    const now = Date.now();
    let removed = 0;
    for (const name of names) {
      const temp = isTempName(name);
      if (!temp && !name.endsWith('.json')) continue;
      const path = join(this.sentDir, name);
      const info = await stat(path).catch(() => undefined);
      if (!info?.isFile() || info.mtimeMs >= now - (temp ? ORPHAN_AGE_MS : this.sentRetentionMs)) continue;
      await unlink(path).then(() => (removed += 1), () => {});
    }
    if (removed > 0) {
      this.log.info({ dir: this.sentDir, removed, keepDays: Math.round((this.sentRetentionMs / 86_400_000) * 10) / 10 }, 'mail outbox: removed old records of delivered mail from sent/');
    }
  }

  private async attemptFailed(entry: Entry, attempt: number, cause: unknown): Promise<void> {
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
    } else {
      entry.dueAt = Date.now() + (delayMs as number);
      // Keep the attempt count across restarts; losing this write only resets the backoff.
      await writeFileDurable(this.jobPath(PENDING, job.id), JSON.stringify(job, null, 2) + '\n').catch((err: unknown) => {
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

  private message(job: MailJob): SendMailOptions {
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

  private callback(name: string, job: Pick<MailJob, 'id' | 'interactionId'>, call: () => void | Promise<void> | undefined): void {
    const report = (err: unknown): void => {
      this.log.error({ jobId: job.id, interactionId: job.interactionId, err: errorMessage(err) }, `mail outbox: ${name} callback failed`);
    };
    try {
      const result = call();
      if (result && typeof (result as Promise<void>).catch === 'function') (result as Promise<void>).catch(report);
    } catch (err) {
      report(err);
    }
  }

  private nextEntry(): Entry | undefined {
    let best: Entry | undefined;
    for (const entry of this.entries.values()) {
      if (!best || entry.dueAt < best.dueAt || (entry.dueAt === best.dueAt && entry.job.id < best.job.id)) best = entry;
    }
    return best;
  }

  private hasDueJob(): boolean {
    const now = Date.now();
    for (const entry of this.entries.values()) if (entry.dueAt <= now) return true;
    return false;
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private waitUntil(what: string, ready: () => boolean, timeoutMs: number): Promise<void> {
    if (ready()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        ready,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i !== -1) this.waiters.splice(i, 1);
        reject(new MailOutboxTimeoutError(what, timeoutMs, this.entries.size));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) {
      if (waiter.ready()) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  }

  // ---- disk ----

  private jobPath(folder: string, id: string): string {
    return join(this.dir, folder, `${id}.json`);
  }

  private ensureDirs(): Promise<void> {
    this.dirsReady ??= (async () => {
      for (const dir of [this.dir, this.pendingDir, this.sentDir, this.failedDir]) await mkdir(dir, { recursive: true, mode: 0o700 });
    })().catch((err: unknown) => {
      this.dirsReady = undefined;
      throw new MailOutboxStorageError(this.dir, 'creating the outbox directories', errorMessage(err), { cause: err });
    });
    return this.dirsReady;
  }

  /** Reads pending/ and adds the jobs not known yet. */
  private async loadPending(): Promise<number> {
    let names: string[];
    try {
      names = (await readdir(this.pendingDir)).filter((n) => n.endsWith('.json') && !isTempName(n)).sort();
    } catch (err) {
      throw new MailOutboxStorageError(this.dir, 'reading pending/', errorMessage(err), { cause: err });
    }
    let added = 0;
    for (const name of names) {
      const id = name.slice(0, -'.json'.length);
      if (this.entries.has(id) || this.done.has(id)) continue;
      const path = join(this.pendingDir, name);
      let text: string | undefined;
      let job: MailJob;
      try {
        text = await readFile(path, 'utf8');
        job = parseJob(text, id);
      } catch (err) {
        if ((err as { code?: unknown }).code === 'ENOENT') continue;
        await this.rejectUnreadable(id, path, text, err);
        continue;
      }
      // Checked again after the read: the job may have been delivered and moved meanwhile.
      if (this.entries.has(id) || this.done.has(id) || !existsSync(path)) continue;
      if (job.attachment && !existsSync(join(this.pendingDir, job.attachment.file))) {
        const error = new MailJobUnreadableError(path, `its attachment ${job.attachment.file} is missing`, { jobId: id, interactionId: job.interactionId });
        this.log.error({ jobId: id, interactionId: job.interactionId, err: error.message }, 'mail outbox: the attachment of this job is missing; job moved to failed/, not sent');
        this.done.add(id);
        await this.moveToFailed(job);
        this.callback('onFailed', job, () => this.options.onFailed?.(copyJob(job), error));
        continue;
      }
      this.entries.set(id, { job, dueAt: Date.now() });
      added += 1;
    }
    return added;
  }

  /**
   * Moves a job and its attachment to failed/: the attachment first, so that a crash in between
   * leaves the job in pending/ (found again, without its attachment, and moved) rather than an
   * attachment without its job (removed as an orphan).
   */
  private async moveToFailed(job: Pick<MailJob, 'id'>): Promise<boolean> {
    try {
      const attachment = `${job.id}.att`;
      if (existsSync(join(this.pendingDir, attachment))) {
        await renameDurable(join(this.pendingDir, attachment), join(this.failedDir, attachment));
      }
      await renameDurable(this.jobPath(PENDING, job.id), this.jobPath(FAILED, job.id));
      return true;
    } catch (err) {
      this.log.error({ jobId: job.id, err: errorMessage(err) }, 'mail outbox: could not move the job to failed/');
      return false;
    }
  }

  /**
   * A job file in pending/ that is not a job of this version (corrupt, hand-edited, written by a
   * newer switchboard): moved to failed/ with its attachment, and reported through `onFailed`
   * with the interaction id its file name carries, so that the call record does not stay "queued".
   */
  private async rejectUnreadable(id: string, path: string, text: string | undefined, cause: unknown): Promise<void> {
    this.done.add(id);
    const interactionId = interactionIdOf(id, text);
    const moved = await this.moveToFailed({ id });
    const file = moved ? this.jobPath(FAILED, id) : path;
    const error = new MailJobUnreadableError(path, errorMessage(cause), { jobId: id, ...(interactionId ? { interactionId } : {}) }, { cause });
    this.log.error({ file: path, jobId: id, interactionId, err: errorMessage(cause) },
      `mail outbox: unusable job ${moved ? 'moved to failed/ with its attachment' : 'left in pending/ (could not be moved)'}; it will not be sent` +
        (interactionId ? '' : ' (its interaction id cannot be told: no call record was marked)'));
    if (interactionId) {
      const ref: UnreadableMailJob = { unreadable: true, id, interactionId, file };
      this.callback('onFailed', ref, () => this.options.onFailed?.({ ...ref }, error));
    }
  }

  /** Removes temp files of interrupted writes and attachment copies whose job never got written. */
  private async removeOrphans(): Promise<void> {
    const names = await readdir(this.pendingDir).catch(() => [] as string[]);
    const jobs = new Set(names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -'.json'.length)));
    const cutoff = Date.now() - ORPHAN_AGE_MS;
    for (const name of names) {
      const orphan = isTempName(name) || (name.endsWith('.att') && !jobs.has(name.slice(0, -'.att'.length)));
      if (!orphan) continue;
      const path = join(this.pendingDir, name);
      const info = await stat(path).catch(() => undefined);
      // Young files may belong to an enqueue in progress in another process.
      if (info && info.mtimeMs < cutoff) {
        await unlink(path).catch(() => {});
        this.log.info({ file: path }, 'mail outbox: removed a leftover of an interrupted enqueue');
      }
    }
  }
}

function validateInput(input: MailJobInput): string[] {
  const issues: string[] = [];
  if (typeof input.interactionId !== 'string' || !ID_RE.test(input.interactionId)) {
    issues.push(`interactionId "${String(input.interactionId)}" is invalid: letters, digits, "_", "." or "-", at most 64`);
  }
  if (typeof input.to !== 'string' || input.to.trim() === '') issues.push('"to" is required');
  else if (/[\u0000-\u001f\u007f]/.test(input.to)) issues.push('"to" must not contain control characters (CR, LF, ...)');
  else if (!input.to.includes('@')) issues.push(`"to" must be an email address, got "${input.to}"`);
  if (typeof input.subject !== 'string') issues.push('"subject" must be text');
  if (typeof input.text !== 'string') issues.push('"text" must be text');
  const a = input.attachment;
  if (a !== undefined) {
    if (typeof a.filename !== 'string' || a.filename === '' || a.filename.length > 255 || /[/\\\u0000-\u001f\u007f]/.test(a.filename)) {
      issues.push(`attachment filename "${String(a.filename)}" is invalid: a plain file name without "/", "\\" or control characters`);
    }
    const sources = (a.path !== undefined ? 1 : 0) + (a.content !== undefined ? 1 : 0);
    if (sources !== 1) issues.push('attachment needs exactly one of "path" and "content"');
    if (a.content !== undefined && !Buffer.isBuffer(a.content)) issues.push('attachment "content" must be a Buffer');
    if (a.path !== undefined && (typeof a.path !== 'string' || a.path === '')) issues.push('attachment "path" must be a file path');
  }
  return issues;
}

function parseJob(text: string, id: string): MailJob {
  const job = JSON.parse(text) as Partial<MailJob>;
  const strings = ['interactionId', 'to', 'subject', 'text', 'messageId', 'createdAt'] as const;
  if (job.version !== 1 || job.id !== id || !JOB_ID_RE.test(id) || strings.some((k) => typeof job[k] !== 'string') || typeof job.attempts !== 'number') {
    throw new Error('not a mail job of this version');
  }
  const named = JOB_ID_RE.exec(id)?.[1];
  if (named !== undefined && named !== job.interactionId) throw new Error(`its interaction id is not the one its file name says (${named})`);
  if (job.attachment !== undefined && (typeof job.attachment.file !== 'string' || job.attachment.file !== `${id}.att`)) {
    throw new Error('bad attachment reference');
  }
  return job as MailJob;
}

function sendError(job: MailJob, cause: unknown): MailSendError {
  const e = (typeof cause === 'object' && cause !== null ? cause : {}) as { responseCode?: unknown; code?: unknown };
  return new MailSendError(
    job.id,
    errorMessage(cause),
    {
      interactionId: job.interactionId,
      ...(typeof e.responseCode === 'number' ? { smtpCode: e.responseCode } : {}),
      ...(typeof e.code === 'string' ? { errorCode: e.code } : {}),
    },
    { cause },
  );
}

/**
 * Whose call an unusable job file belongs to: its file name says (jobs queued by this version);
 * else whatever of its content can be read.
 */
function interactionIdOf(id: string, text: string | undefined): string | undefined {
  const named = JOB_ID_RE.exec(id)?.[1];
  if (named !== undefined) return named;
  if (text === undefined) return undefined;
  try {
    const v = (JSON.parse(text) as { interactionId?: unknown }).interactionId;
    if (typeof v === 'string' && ID_RE.test(v)) return v;
  } catch {
    // Not JSON: look for the field in what is left.
  }
  const m = /"interactionId"\s*:\s*"([A-Za-z0-9_.-]{1,64})"/.exec(text);
  return m?.[1];
}

function copyJob(job: MailJob): MailJob {
  return structuredClone(job);
}

function positive(value: number | undefined, fallback: number): number {
  return value !== undefined && value > 0 ? value : fallback;
}

function domainOf(from: string): string {
  const match = /@([A-Za-z0-9.-]+)>?\s*$/.exec(from.trim());
  return match?.[1] ?? 'switchboard.invalid';
}
