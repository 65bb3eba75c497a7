/**
 * The mail outbox's lock: one running outbox (one daemon) per outbox directory, even when several
 * daemons share the directory (containers on one volume, hosts on one network share), because two
 * running outboxes would send every mail twice.
 *
 * The design is the apply lock's (src/apply/lock.ts): the lock file names its holder (pid, host,
 * pid namespace, process incarnation) and a random token, is created atomically (temp file
 * hard-linked to the lock name), and its holder refreshes its mtime every `refreshMs` for as long
 * as it holds it; a lock not refreshed for its lease is stale, and a stale lock is taken over by
 * renaming it aside and checking that what was moved is the very lock judged stale (else it is
 * put back). As there, a pid is only checked where it means something (in this very pid
 * namespace on this host: two containers sharing a volume are both pid 1, and each sees the
 * other's pid as "itself" or "dead"), and our own pid there is ours only with our incarnation id.
 * It is mirrored here rather than reused because the outbox needs more than FileLock gives:
 *
 * - the holder is told when its lock was taken from it (`onLost`), and `check()` lets it make sure
 *   it still holds the lock before each send: the outbox stops sending at once;
 * - the error is the outbox's own (MailOutboxLockedError), and the log lines speak of the outbox.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { basename, dirname, join } from 'node:path';
import { PROCESS_INCARNATION, pidAlive, pidNamespace } from '../apply/lock.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { MailOutboxLockedError, MailOutboxStorageError, type OutboxLockHolder } from './errors.js';

/**
 * How long an outbox lock stays valid without its holder refreshing it (the holder refreshes it
 * every sixth of this, at most every 10 s). Long, as the apply lock's: it must outlast a blocked
 * event loop or a slow disk, and the clocks of hosts sharing the directory may disagree.
 */
export const OUTBOX_LOCK_LEASE_MS = 120_000;
const MAX_REFRESH_MS = 10_000;
/**
 * A holder that may run on this machine but whose pid cannot be checked (same host name, another
 * pid namespace: another container given the same host name, or this container restarted) is
 * dead once it has missed this many refreshes in a row; start() waits that long at most.
 */
const MISSED_REFRESHES = 2.5;
/** The lease of a lock written by a switchboard from before tokens (it never refreshes its lock). */
const LEGACY_LEASE_MS = 3_600_000;
const DEBRIS_AGE_MS = 3_600_000;

export interface OutboxLockOptions {
  /** A lock not refreshed for this long is stale (default OUTBOX_LOCK_LEASE_MS); recorded in the lock file. */
  leaseMs?: number;
  logger?: Logger;
  /** The lock was taken over (or replaced) by another process while we held it. Called once. */
  onLost?: (holder: OutboxLockHolder | undefined) => void;
}

interface LockInfo extends OutboxLockHolder {
  /** The file's text and mtime: together they identify one lock, refreshed or not. */
  raw: string;
  refreshedAt: number;
  /** Absent from a lock written by a switchboard from before tokens (`{pid, since}`): never refreshed. */
  token: string | undefined;
  pidNs: string | undefined;
  /** The holder process's PROCESS_INCARNATION (undefined: an older switchboard). */
  incarnation: string | undefined;
  processStartedAt: number;
  leaseMs: number | undefined;
  refreshMs: number | undefined;
}

type Verdict = { stale: string } | { held: true; takeoverInMs?: number; note?: string } | 'gone';

function processStartedAt(): number {
  return Math.round(Date.now() - process.uptime() * 1000);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class OutboxLock {
  private ownToken: string | undefined;
  private ownBody = '';
  private refresher: NodeJS.Timeout | undefined;
  private checking: Promise<boolean> | undefined;
  readonly leaseMs: number;
  readonly refreshMs: number;

  constructor(
    readonly file: string,
    private readonly opts: OutboxLockOptions = {},
  ) {
    this.leaseMs = opts.leaseMs !== undefined && opts.leaseMs > 0 ? opts.leaseMs : OUTBOX_LOCK_LEASE_MS;
    this.refreshMs = Math.min(MAX_REFRESH_MS, this.leaseMs / 6);
  }

  get held(): boolean {
    return this.ownToken !== undefined;
  }

  /**
   * Takes the lock, or throws MailOutboxLockedError naming its holder. May wait up to 2.5 refresh
   * intervals (25 s by default) when the holder runs under this host name in another pid
   * namespace, to see whether it refreshes its lock.
   */
  async acquire(): Promise<void> {
    if (this.ownToken) return;
    await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
    const token = randomBytes(8).toString('hex');
    const body = JSON.stringify({
      pid: process.pid, host: os.hostname(), pidNs: pidNamespace(), incarnation: PROCESS_INCARNATION, processStartedAt: processStartedAt(),
      acquiredAt: new Date().toISOString(), leaseMs: this.leaseMs, refreshMs: this.refreshMs, token,
    }) + '\n';
    let holder: LockInfo | undefined;
    for (let attempt = 0; attempt < 5; attempt++) {
      if (await this.linkNew(body, token)) {
        this.ownToken = token;
        this.ownBody = body;
        this.startRefreshing();
        await this.removeDebris();
        return;
      }
      const found = await this.read();
      if (found === 'missing') continue;
      holder = found;
      const verdict = await this.judge(found);
      if (verdict === 'gone') continue;
      if ('held' in verdict) throw this.lockedError(found, verdict.takeoverInMs, verdict.note);
      await this.takeOver(found, verdict.stale);
    }
    throw this.lockedError(holder, holder && this.leaseLeftMs(holder));
  }

  /**
   * Whether we still hold the lock (refreshing it on the way). A lock found taken by another
   * process is given up (logged, `onLost`); a transient read error counts as still held.
   */
  check(): Promise<boolean> {
    const token = this.ownToken;
    if (!token) return Promise.resolve(false);
    this.checking ??= this.refresh(token).finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  /** Removes the lock if it is still ours; a lock someone else took over is left alone. */
  async release(): Promise<void> {
    const token = this.ownToken;
    this.ownToken = undefined;
    this.stopRefreshing();
    if (this.checking) await this.checking.catch(() => false);
    if (!token) return;
    try {
      const found = await this.read();
      if (found !== 'missing' && found?.token === token) await rm(this.file, { force: true });
      else this.opts.logger?.warn({ lockFile: this.file, holder: found === 'missing' ? undefined : found && describe(found) },
        'mail outbox: the lock is no longer ours; left as it is');
    } catch {
      // Unreadable: nothing of ours to remove.
    }
  }

  // ---- internals ----

  /** Temp and moved-aside lock files a crash left next to the lock (an hour old: no taker uses them). */
  private async removeDebris(): Promise<void> {
    const dir = dirname(this.file);
    const prefix = `${basename(this.file)}.`;
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      if (!name.startsWith(prefix) || !/^(?:stale\.)?\d+\.[0-9a-f]+(?:\.tmp)?$/.test(name.slice(prefix.length))) continue;
      const info = await stat(join(dir, name)).catch(() => undefined);
      if (info && info.mtimeMs < Date.now() - DEBRIS_AGE_MS) await rm(join(dir, name), { force: true }).catch(() => {});
    }
  }

  /** Creates the lock file with `body` unless one exists (hard link: atomic, and never partial). */
  private async linkNew(body: string, token: string): Promise<boolean> {
    const tmp = `${this.file}.${process.pid}.${token}.tmp`;
    try {
      await writeFile(tmp, body, { mode: 0o600 });
      await link(tmp, this.file);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw new MailOutboxStorageError(dirname(this.file), `creating ${this.file}`, errorMessage(err), { cause: err });
    } finally {
      await rm(tmp, { force: true }).catch(() => {});
    }
  }

  private startRefreshing(): void {
    this.stopRefreshing();
    this.refresher = setInterval(() => void this.check(), this.refreshMs);
    this.refresher.unref();
  }

  private stopRefreshing(): void {
    if (this.refresher) clearInterval(this.refresher);
    this.refresher = undefined;
  }

  private async refresh(token: string): Promise<boolean> {
    try {
      let found = await this.read();
      // Missing: someone may be checking it in a takeover (rename aside, compare, put back); give
      // them a moment, then create it again (a taker that won has linked its own lock at once).
      for (let i = 0; found === 'missing' && i < 3; i++) {
        await sleep(Math.min(50, this.refreshMs / 4));
        found = await this.read();
      }
      if (this.ownToken !== token) return false; // released meanwhile
      if (found === 'missing') {
        if (await this.linkNew(this.ownBody, token)) {
          this.opts.logger?.warn({ lockFile: this.file }, 'mail outbox: the lock file had disappeared; created it again');
          return true;
        }
        found = await this.read();
      }
      if (found === 'missing' || found?.token !== token) {
        this.lost(found === 'missing' ? undefined : found);
        return false;
      }
      const now = new Date();
      await utimes(this.file, now, now);
      return true;
    } catch (err) {
      if (this.ownToken === token) {
        this.opts.logger?.warn({ lockFile: this.file, err: errorMessage(err) }, 'mail outbox: could not check or refresh the lock; trying again');
      }
      return this.ownToken === token;
    }
  }

  private lost(holder: LockInfo | undefined): void {
    this.ownToken = undefined;
    this.stopRefreshing();
    const who = holder ? describe(holder) : undefined;
    this.opts.logger?.error({ lockFile: this.file, holder: who },
      'mail outbox: another process took the outbox lock over while this one held it (was this process stopped or stalled for longer than the lease?); this outbox stops sending');
    try {
      this.opts.onLost?.(who);
    } catch (err) {
      this.opts.logger?.error({ err: errorMessage(err) }, 'mail outbox: onLost failed');
    }
  }

  private async read(file = this.file): Promise<LockInfo | undefined | 'missing'> {
    let raw: string;
    let refreshedAt: number;
    try {
      const h = await open(file, 'r');
      try {
        raw = await h.readFile('utf8');
        refreshedAt = (await h.stat()).mtimeMs;
      } finally {
        await h.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
      throw new MailOutboxStorageError(dirname(this.file), `reading ${file}`, errorMessage(err), { cause: err });
    }
    try {
      const v = JSON.parse(raw) as Record<string, unknown>;
      if (typeof v.pid !== 'number' || !Number.isInteger(v.pid) || v.pid <= 0) return undefined;
      const num = (x: unknown) => (typeof x === 'number' && x > 0 ? x : undefined);
      return {
        raw, refreshedAt, pid: v.pid,
        host: typeof v.host === 'string' ? v.host : '',
        acquiredAt: typeof v.acquiredAt === 'string' ? v.acquiredAt : typeof v.since === 'string' ? v.since : '',
        token: typeof v.token === 'string' && v.token !== '' ? v.token : undefined,
        pidNs: typeof v.pidNs === 'string' ? v.pidNs : undefined,
        incarnation: typeof v.incarnation === 'string' ? v.incarnation : undefined,
        processStartedAt: num(v.processStartedAt) ?? 0,
        leaseMs: num(v.leaseMs),
        refreshMs: num(v.refreshMs),
      };
    } catch {
      return undefined;
    }
  }

  /** Whether `holder`'s lock is stale (and why), or held. */
  private async judge(holder: LockInfo | undefined): Promise<Verdict> {
    // The lock is linked complete: unreadable content is debris, not a lock being written.
    if (!holder) return { stale: 'its content is unreadable' };
    if (holder.token === undefined) return this.judgeLegacy(holder);
    const sameHost = holder.host === os.hostname();
    const samePidNs = sameHost && holder.pidNs === pidNamespace();
    if (samePidNs) {
      // Here kill(pid, 0) and our own pid mean what they say.
      if (holder.pid === process.pid) {
        // Ours only if written by this very run (a container restarted at once is pid 1 again).
        if (holder.incarnation === PROCESS_INCARNATION) {
          return { held: true, note: 'another outbox in this very process works on this directory' };
        }
        return { stale: 'its pid is this process, from an earlier run of it' };
      }
      if (!pidAlive(holder.pid)) return { stale: 'its process is gone' };
    }
    const leftMs = this.leaseLeftMs(holder);
    if (leftMs <= 0) return { stale: `not refreshed for ${Math.round((Date.now() - holder.refreshedAt) / 1000)} s, longer than its lease (${Math.round(leaseOf(holder) / 1000)} s)` };
    if (!sameHost) return { held: true, takeoverInMs: leftMs };
    // This host name, but the pid cannot tell (another pid namespace: another container given
    // the same host name, or this container restarted; or a live pid that may have been reused):
    // a live holder refreshes its lock every refreshMs, so watch it for a few refreshes.
    return this.watch(holder, leftMs);
  }

  /** Stale once `holder` has missed MISSED_REFRESHES refreshes; held as soon as it refreshes. */
  private async watch(holder: LockInfo, leaseLeftMs: number): Promise<Verdict> {
    const refreshMs = holder.refreshMs ?? Math.min(MAX_REFRESH_MS, leaseOf(holder) / 6);
    const limitMs = MISSED_REFRESHES * refreshMs;
    for (;;) {
      const now = await this.read();
      if (now === 'missing') return 'gone';
      if (!now || now.raw !== holder.raw || now.refreshedAt !== holder.refreshedAt) return { held: true, takeoverInMs: now ? this.leaseLeftMs(now) : leaseLeftMs };
      const age = Date.now() - holder.refreshedAt;
      if (age >= limitMs) {
        return { stale: `its holder runs under this host name but in another pid namespace (or its pid may have been reused), and it has not refreshed the lock for ${Math.round(age)} ms (it refreshes every ${Math.round(refreshMs)} ms)` };
      }
      await sleep(Math.max(10, Math.min(refreshMs / 4, limitMs - age)));
    }
  }

  /**
   * A lock written by a switchboard from before tokens: `{pid, since}`, no host, never refreshed,
   * held for the life of its daemon. Its pid is only meaningful if it is alive here (then it is
   * held, as that switchboard held it); dead here or equal to ours, it may be a daemon in another
   * container (pid 1 like us) or a crashed one: nothing tells, so it is held until the lock is an
   * hour old (as the apply lock treats a lock naming no lease), or deleted by hand.
   */
  private judgeLegacy(holder: LockInfo): Verdict {
    if (holder.pid !== process.pid && pidAlive(holder.pid)) {
      return { held: true, note: `it was written by an older switchboard, which does not refresh its lock, and process ${holder.pid} is alive` };
    }
    const leftMs = this.leaseLeftMs(holder);
    if (leftMs <= 0) return { stale: `written by an older switchboard ${Math.round((Date.now() - holder.refreshedAt) / 60_000)} min ago, and its pid is not a live process here` };
    return { held: true, takeoverInMs: leftMs, note: 'it was written by an older switchboard, which does not say where it runs nor refreshes its lock' };
  }

  private leaseLeftMs(holder: LockInfo): number {
    return holder.refreshedAt + leaseOf(holder) - Date.now();
  }

  /** Moves a stale lock aside; if what was moved is not the lock judged stale, puts it back. */
  private async takeOver(stale: LockInfo | undefined, why: string): Promise<void> {
    const aside = `${this.file}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
    try {
      await rename(this.file, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new MailOutboxStorageError(dirname(this.file), `moving the stale lock ${this.file} aside`, errorMessage(err), { cause: err });
    }
    const moved = await this.read(aside).catch(() => 'missing' as const);
    // The same text and mtime: the very lock judged stale, not refreshed since (a lock can only
    // be taken whole, by rename, so two takers cannot both move the stale one).
    const same = moved !== 'missing' && (stale === undefined
      ? moved === undefined
      : moved !== undefined && moved.raw === stale.raw && moved.refreshedAt === stale.refreshedAt);
    if (same) {
      await rm(aside, { force: true });
      this.opts.logger?.warn({ lockFile: this.file, holder: stale && describe(stale), reason: why }, `mail outbox: took over a stale lock: ${why}`);
      return;
    }
    // Someone took or refreshed the lock between our read and the rename: give it back.
    await link(aside, this.file).catch(() => {
      // A third party holds it now; theirs wins.
    });
    await rm(aside, { force: true });
    const holder = moved !== 'missing' ? moved : undefined;
    throw this.lockedError(holder, holder && this.leaseLeftMs(holder));
  }

  private lockedError(holder: LockInfo | undefined, takeoverInMs?: number, note?: string): MailOutboxLockedError {
    return new MailOutboxLockedError(this.file, holder && describe(holder), {
      ...(takeoverInMs !== undefined ? { takeoverInMs } : {}), ...(note ? { note } : {}), ...(holder && holder.token === undefined ? { legacy: true } : {}),
    });
  }
}

function leaseOf(holder: LockInfo): number {
  return holder.leaseMs ?? (holder.token === undefined ? LEGACY_LEASE_MS : OUTBOX_LOCK_LEASE_MS);
}

function describe(h: LockInfo): OutboxLockHolder {
  return { pid: h.pid, host: h.host, acquiredAt: h.acquiredAt };
}
