import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { ApplyLockedError, type LockHolder } from './errors.js';

/** Runs one task at a time, in call order (the in-process half of "never two applies at once"). */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/**
 * How long an apply lock stays valid without its holder refreshing it. The lock is held for one
 * apply, whose length has no useful bound (up to 60 s per module Reload, retries, a verification
 * of every agent, a rollback reloading again), so no fixed expiry could tell a crashed holder from
 * a slow one: the holder refreshes the lock file's mtime every LOCK_REFRESH_MS instead, and a lock
 * not refreshed for a whole lease is stale. Two minutes is a dozen missed refreshes, and leaves
 * room for the clocks of hosts sharing the directory to disagree by over a minute (the holder sets
 * the mtime from its clock, another host compares it with its own).
 */
export const LOCK_LEASE_MS = 120_000;
export const LOCK_REFRESH_MS = 10_000;
/**
 * The lease of a lock that names none, written by a switchboard from before leases (it never
 * refreshes its lock): far longer than an apply takes, which is as long as such a holder held it.
 */
const UNREFRESHED_LEASE_MS = 3_600_000;

export interface FileLockOptions {
  /** A lock not refreshed for this long is stale (default LOCK_LEASE_MS); recorded in the lock file. */
  leaseMs?: number;
  /** How often the holder refreshes its lock (default LOCK_REFRESH_MS, at most a sixth of the lease). */
  refreshMs?: number;
  /** Where a takeover, and a lock lost while held, are logged. */
  logger?: Logger;
}

interface LockInfo extends LockHolder {
  /** When the owning process started (ms since epoch): tells a live owner from a reused pid. */
  processStartedAt: number;
  /** The lease the holder keeps (undefined: an older switchboard that does not refresh its lock). */
  leaseMs: number | undefined;
  token: string | undefined;
  /** The lock file's mtime: when it was taken or last refreshed. */
  refreshedAt: number;
}

function processStartedAt(): number {
  return Math.round(Date.now() - process.uptime() * 1000);
}

/** True unless `kill(pid, 0)` says the process does not exist. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether the process that wrote a file named after `pid` (a temp file, lock debris) may still be
 * writing it: not when that pid is dead, nor when it is this very pid but the file predates this
 * process (an earlier incarnation: a restarted container reuses pid 1).
 */
export function writerMayBeAlive(pid: number, modifiedMs: number): boolean {
  if (pid === process.pid) return modifiedMs >= processStartedAt() - 2000;
  return pidAlive(pid);
}

/**
 * A lock file holding the owner's pid, host and lease, created atomically (written to a temp file,
 * then hard-linked to the lock name, which fails if it exists). While held, its mtime is refreshed
 * every `refreshMs` (an unref'd timer). It is stale, and taken over (logged), when its content is
 * unreadable; when it is this very pid from an earlier incarnation of the process (a restarted
 * container reuses pid 1); when its holder ran on this host and its pid is dead; and otherwise
 * once it has not been refreshed for its lease: a holder on another host (a container recreated
 * with a new hostname, on the same volume) cannot be asked whether it lives, and a pid on this
 * host may have been reused by another process. A live holder refreshes its lock, so it is never
 * taken from it, whichever host it runs on.
 */
export class FileLock {
  private ownToken: string | undefined;
  private refresher: NodeJS.Timeout | undefined;
  private readonly leaseMs: number;
  private readonly refreshMs: number;

  constructor(
    readonly file: string,
    private readonly opts: FileLockOptions = {},
  ) {
    this.leaseMs = opts.leaseMs ?? LOCK_LEASE_MS;
    this.refreshMs = Math.min(opts.refreshMs ?? LOCK_REFRESH_MS, this.leaseMs / 6);
  }

  async acquire(): Promise<void> {
    await fs.mkdir(path.dirname(this.file), { recursive: true, mode: 0o750 });
    const token = randomBytes(6).toString('hex');
    const body = JSON.stringify({
      pid: process.pid, processStartedAt: processStartedAt(), host: os.hostname(), acquiredAt: new Date().toISOString(), leaseMs: this.leaseMs, token,
    }) + '\n';
    let holder: LockInfo | undefined;
    for (let attempt = 0; attempt < 5; attempt++) {
      const tmp = `${this.file}.${process.pid}.${token}.tmp`;
      await fs.writeFile(tmp, body, { mode: 0o640 });
      try {
        await fs.link(tmp, this.file);
        this.ownToken = token;
        this.startRefreshing(token);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      } finally {
        await fs.rm(tmp, { force: true });
      }
      const found = await this.read(this.file);
      if (found === 'missing') continue;
      holder = found;
      const why = this.staleBecause(found);
      if (!why) throw new ApplyLockedError(this.file, found, found && this.takeoverInMs(found));
      await this.takeOver(found, why);
    }
    throw new ApplyLockedError(this.file, holder, holder && this.takeoverInMs(holder));
  }

  /** Removes the lock if it is still ours. */
  async release(): Promise<void> {
    const token = this.ownToken;
    this.ownToken = undefined;
    this.stopRefreshing();
    if (!token) return;
    try {
      const text = await fs.readFile(this.file, 'utf8');
      if ((JSON.parse(text) as { token?: string }).token === token) await fs.rm(this.file, { force: true });
    } catch {
      // Gone already, or unreadable: nothing of ours to remove.
    }
  }

  private startRefreshing(token: string): void {
    this.stopRefreshing();
    this.refresher = setInterval(() => void this.refresh(token), this.refreshMs);
    this.refresher.unref();
  }

  private stopRefreshing(): void {
    if (this.refresher) clearInterval(this.refresher);
    this.refresher = undefined;
  }

  /** Sets the lock file's mtime to now, if it is still ours (else stops: it was taken over). */
  private async refresh(token: string): Promise<void> {
    try {
      const held = await this.read(this.file);
      if (this.ownToken !== token) return; // released meanwhile
      if (held === 'missing' || held?.token !== token) {
        this.stopRefreshing();
        this.opts.logger?.error({ lockFile: this.file, holder: held && held !== 'missing' ? describe(held) : undefined }, 'the apply lock was taken over while this apply held it (did it stop refreshing it for a whole lease?)');
        return;
      }
      const now = new Date();
      await fs.utimes(this.file, now, now);
    } catch (err) {
      if (this.ownToken === token) this.opts.logger?.warn({ lockFile: this.file, err: { message: errorMessage(err) } }, 'could not refresh the apply lock; trying again');
    }
  }

  private async read(file: string): Promise<LockInfo | undefined | 'missing'> {
    let text: string;
    let refreshedAt: number;
    try {
      const h = await fs.open(file, 'r');
      try {
        text = await h.readFile('utf8');
        refreshedAt = (await h.stat()).mtimeMs;
      } finally {
        await h.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
      throw err;
    }
    const bare = { processStartedAt: 0, host: '', acquiredAt: '', leaseMs: undefined, token: undefined, refreshedAt };
    try {
      const v = JSON.parse(text) as Partial<Record<keyof LockInfo, unknown>>;
      if (typeof v.pid === 'number' && Number.isInteger(v.pid) && v.pid > 0) {
        const leaseMs = typeof v.leaseMs === 'number' && v.leaseMs > 0 ? v.leaseMs : undefined;
        return {
          ...bare, pid: v.pid, processStartedAt: Number(v.processStartedAt) || 0, host: String(v.host ?? ''), acquiredAt: String(v.acquiredAt ?? ''),
          leaseMs, token: typeof v.token === 'string' ? v.token : undefined,
        };
      }
    } catch {
      // An older or foreign format: a bare pid.
      const pid = Number(text.trim());
      if (Number.isInteger(pid) && pid > 0) return { ...bare, pid };
    }
    return undefined;
  }

  /** Why `holder`'s lock is stale, or undefined when it may be held still (see the class comment). */
  private staleBecause(holder: LockInfo | undefined): string | undefined {
    // Unreadable content cannot come from us (the lock is linked complete): treat it as debris.
    if (!holder) return 'its content is unreadable';
    const here = !holder.host || holder.host === os.hostname();
    if (here && holder.pid === process.pid && holder.processStartedAt !== 0) {
      // Our pid: ours only if written by this incarnation (another Applier in this process holds it).
      const earlier = Math.abs(holder.processStartedAt - processStartedAt()) > 2000;
      return earlier ? 'its pid is this process, from an earlier incarnation' : undefined;
    }
    if (here && !pidAlive(holder.pid)) return 'its process is gone';
    if (this.takeoverInMs(holder) <= 0) {
      return `not refreshed for ${Math.round((Date.now() - holder.refreshedAt) / 1000)} s, longer than its lease (${Math.round(leaseOf(holder) / 1000)} s)`;
    }
    return undefined;
  }

  /** How long until `holder`'s lease runs out, unless it refreshes its lock meanwhile. */
  private takeoverInMs(holder: LockInfo): number {
    return holder.refreshedAt + leaseOf(holder) - Date.now();
  }

  /** Moves a stale lock aside; if what was moved turns out to be a fresh lock, puts it back. */
  private async takeOver(stale: LockInfo | undefined, why: string): Promise<void> {
    const aside = `${this.file}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
    try {
      await fs.rename(this.file, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const moved = await this.read(aside);
    const same = moved !== 'missing' && (moved === undefined || stale === undefined ? moved === stale : sameHolder(moved, stale));
    if (same) {
      await fs.rm(aside, { force: true });
      this.opts.logger?.warn({ lockFile: this.file, holder: stale && describe(stale), reason: why }, `took over a stale apply lock: ${why}`);
      return;
    }
    // Someone took the lock between our read and the rename: give it back.
    try {
      await fs.link(aside, this.file);
    } catch {
      // A third party holds it now; theirs wins.
    }
    await fs.rm(aside, { force: true });
    const holder = moved !== 'missing' ? moved : undefined;
    throw new ApplyLockedError(this.file, holder, holder && this.takeoverInMs(holder));
  }
}

function leaseOf(holder: LockInfo): number {
  return holder.leaseMs ?? UNREFRESHED_LEASE_MS;
}

function sameHolder(a: LockInfo, b: LockInfo): boolean {
  if (a.token !== undefined || b.token !== undefined) return a.token === b.token;
  return a.pid === b.pid && a.host === b.host && a.acquiredAt === b.acquiredAt;
}

function describe(h: LockInfo): LockHolder {
  return { pid: h.pid, host: h.host, acquiredAt: h.acquiredAt };
}
