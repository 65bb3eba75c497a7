import { promises as fs, readlinkSync } from 'node:fs';
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
/**
 * A holder under this host name whose pid cannot be checked from here (another pid namespace:
 * another container given the same host name, or this one before a restart) is dead once it has
 * missed this many refreshes in a row; acquire() waits that long at most (25 s by default).
 */
const MISSED_REFRESHES = 2.5;

/**
 * Random, drawn once per process and written into its locks: a lock naming our pid in our pid
 * namespace is ours only if it names this incarnation too (a container restarted at once is pid 1
 * again, and process start times computed from the uptime cannot tell two runs a second apart).
 */
export const PROCESS_INCARNATION = randomBytes(8).toString('hex');

let ownPidNamespace: string | undefined;
/** This process's pid namespace (`pid:[4026531836]`), '' where there is none to read (not Linux). */
export function pidNamespace(): string {
  if (ownPidNamespace === undefined) {
    try {
      ownPidNamespace = readlinkSync('/proc/self/ns/pid');
    } catch {
      ownPidNamespace = '';
    }
  }
  return ownPidNamespace;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface FileLockOptions {
  /** A lock not refreshed for this long is stale (default LOCK_LEASE_MS); recorded in the lock file. */
  leaseMs?: number;
  /** How often the holder refreshes its lock (default LOCK_REFRESH_MS, at most a sixth of the lease). */
  refreshMs?: number;
  /** Where a takeover, and a lock lost while held, are logged. */
  logger?: Logger;
}

interface LockInfo extends LockHolder {
  /** When the owning process started (ms since epoch; informative, and for locks of old switchboards). */
  processStartedAt: number;
  /** The holder's pid namespace (undefined: written by a switchboard from before it was recorded). */
  pidNs: string | undefined;
  /** The holder process's PROCESS_INCARNATION (undefined: an older switchboard). */
  incarnation: string | undefined;
  /** The lease the holder keeps (undefined: an older switchboard that does not refresh its lock). */
  leaseMs: number | undefined;
  /** How often the holder refreshes its lock (undefined: an older switchboard; see watch). */
  refreshMs: number | undefined;
  token: string | undefined;
  /** The lock file's mtime: when it was taken or last refreshed. */
  refreshedAt: number;
}

type Verdict = { stale: string } | { held: LockInfo } | 'gone';

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
 * A lock file holding the owner's pid, pid namespace, host, incarnation and lease, created
 * atomically (written to a temp file, then hard-linked to the lock name, which fails if it
 * exists). While held, its mtime is refreshed every `refreshMs` (an unref'd timer). It is stale,
 * and taken over (logged), when its content is unreadable; and otherwise according to where its
 * holder runs:
 *
 * - in this pid namespace on this host (the only place a pid means something): when it names this
 *   very pid from an earlier incarnation of the process (a restarted container reuses pid 1; told
 *   by the incarnation id, not by start times), or a dead pid; a live pid, which may have been
 *   reused, keeps it until it has not been refreshed for its lease;
 * - under this host name but in another pid namespace (two containers given one host name, both
 *   pid 1 maybe), or in one the lock does not name (written before namespaces were recorded) with
 *   our pid or one not running here: its pid tells nothing, so it is watched: stale once it has
 *   missed MISSED_REFRESHES refreshes, held as soon as it is refreshed (or the lease ran out);
 * - on another host (a container recreated with a new hostname, on the same volume): once it has
 *   not been refreshed for its lease.
 *
 * A lock from a switchboard before leases (never refreshed: nothing to watch) keeps the treatment
 * it always had: stale when its pid is dead here or ours, else after an hour. A live holder
 * refreshes its lock, so it is never taken from it, whichever host or namespace it runs in.
 */
export class FileLock {
  private ownToken: string | undefined;
  private ownBody = '';
  private refresher: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private readonly leaseMs: number;
  private readonly refreshMs: number;

  constructor(
    readonly file: string,
    private readonly opts: FileLockOptions = {},
  ) {
    this.leaseMs = opts.leaseMs ?? LOCK_LEASE_MS;
    this.refreshMs = Math.min(opts.refreshMs ?? LOCK_REFRESH_MS, this.leaseMs / 6);
  }

  /**
   * Takes the lock, or throws ApplyLockedError naming its holder. May wait up to 2.5 refresh
   * intervals of the holder (25 s by default) when it runs under this host name in another pid
   * namespace, to see whether it refreshes its lock.
   */
  async acquire(): Promise<void> {
    await fs.mkdir(path.dirname(this.file), { recursive: true, mode: 0o750 });
    const token = randomBytes(6).toString('hex');
    const body = JSON.stringify({
      pid: process.pid, pidNs: pidNamespace(), incarnation: PROCESS_INCARNATION, processStartedAt: processStartedAt(), host: os.hostname(),
      acquiredAt: new Date().toISOString(), leaseMs: this.leaseMs, refreshMs: this.refreshMs, token,
    }) + '\n';
    let holder: LockInfo | undefined;
    for (let attempt = 0; attempt < 5; attempt++) {
      if (await this.linkNew(body, token)) {
        this.ownToken = token;
        this.ownBody = body;
        this.startRefreshing(token);
        return;
      }
      const found = await this.read(this.file);
      if (found === 'missing') continue;
      holder = found;
      const verdict = await this.judge(found);
      if (verdict === 'gone') continue;
      if ('held' in verdict) throw new ApplyLockedError(this.file, verdict.held, this.takeoverInMs(verdict.held));
      await this.takeOver(found, verdict.stale);
    }
    throw new ApplyLockedError(this.file, holder, holder && this.takeoverInMs(holder));
  }

  /** Creates the lock file with `body` unless one exists (hard link: atomic, and never partial). */
  private async linkNew(body: string, token: string): Promise<boolean> {
    const tmp = `${this.file}.${process.pid}.${token}.tmp`;
    await fs.writeFile(tmp, body, { mode: 0o640 });
    try {
      await fs.link(tmp, this.file);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      return false;
    } finally {
      await fs.rm(tmp, { force: true });
    }
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
    this.refresher = setInterval(() => {
      // One refresh at a time (one may wait for a lock file moved aside for a moment).
      this.refreshing ??= this.refresh(token).finally(() => {
        this.refreshing = undefined;
      });
    }, this.refreshMs);
    this.refresher.unref();
  }

  private stopRefreshing(): void {
    if (this.refresher) clearInterval(this.refresher);
    this.refresher = undefined;
  }

  /**
   * Sets the lock file's mtime to now, if it is still ours (else stops: it was taken over). A
   * missing lock file is read again a few times first: a rival checking whether it is stale moves
   * it aside and puts it back (and one that took it over links its own at once); still missing,
   * it was deleted, and is created again.
   */
  private async refresh(token: string): Promise<void> {
    try {
      let held = await this.read(this.file);
      for (let i = 0; held === 'missing' && i < 3; i++) {
        await sleep(Math.min(50, this.refreshMs / 4));
        held = await this.read(this.file);
      }
      if (this.ownToken !== token) return; // released meanwhile
      if (held === 'missing') {
        if (await this.linkNew(this.ownBody, token)) {
          this.opts.logger?.warn({ lockFile: this.file }, 'the apply lock file had disappeared while this apply held it; created it again');
          return;
        }
        held = await this.read(this.file);
      }
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
    const bare = {
      processStartedAt: 0, host: '', acquiredAt: '', pidNs: undefined, incarnation: undefined, leaseMs: undefined, refreshMs: undefined, token: undefined, refreshedAt,
    };
    try {
      const v = JSON.parse(text) as Partial<Record<keyof LockInfo, unknown>>;
      if (typeof v.pid === 'number' && Number.isInteger(v.pid) && v.pid > 0) {
        const num = (x: unknown) => (typeof x === 'number' && x > 0 ? x : undefined);
        const str = (x: unknown) => (typeof x === 'string' ? x : undefined);
        return {
          ...bare, pid: v.pid, processStartedAt: Number(v.processStartedAt) || 0, host: String(v.host ?? ''), acquiredAt: String(v.acquiredAt ?? ''),
          pidNs: str(v.pidNs), incarnation: str(v.incarnation), leaseMs: num(v.leaseMs), refreshMs: num(v.refreshMs), token: str(v.token),
        };
      }
    } catch {
      // An older or foreign format: a bare pid.
      const pid = Number(text.trim());
      if (Number.isInteger(pid) && pid > 0) return { ...bare, pid };
    }
    return undefined;
  }

  /** Whether `holder`'s lock is stale (and why), held (by whom), or gone meanwhile (see the class comment). */
  private async judge(holder: LockInfo | undefined): Promise<Verdict> {
    // Unreadable content cannot come from us (the lock is linked complete): treat it as debris.
    if (!holder) return { stale: 'its content is unreadable' };
    const here = !holder.host || holder.host === os.hostname();
    const sameNs = here && holder.pidNs !== undefined && holder.pidNs === pidNamespace();
    const unrefreshed = holder.leaseMs === undefined; // a switchboard from before leases
    if (sameNs) {
      // Here kill(pid, 0) and our own pid mean what they say.
      if (holder.pid === process.pid) {
        // Ours only if written by this incarnation (another Applier in this process holds it).
        return holder.incarnation === PROCESS_INCARNATION ? { held: holder } : { stale: 'its pid is this process, from an earlier incarnation' };
      }
      if (!pidAlive(holder.pid)) return { stale: 'its process is gone' };
    } else if (here && unrefreshed) {
      // Nothing to watch: what such a lock always got (it cannot be this process's: we name our namespace).
      if (holder.pid === process.pid && holder.processStartedAt !== 0) return { stale: 'its pid is this process, from an earlier incarnation' };
      if (!pidAlive(holder.pid)) return { stale: 'its process is gone' };
    }
    if (this.takeoverInMs(holder) <= 0) {
      return { stale: `not refreshed for ${Math.round((Date.now() - holder.refreshedAt) / 1000)} s, longer than its lease (${Math.round(leaseOf(holder) / 1000)} s)` };
    }
    if (!here || sameNs || unrefreshed) return { held: holder };
    // A namespace the lock does not name, and a pid alive here: maybe a holder in this namespace,
    // maybe a reused pid; as before namespaces were recorded, it keeps the lock for its lease.
    if (holder.pidNs === undefined && holder.pid !== process.pid && pidAlive(holder.pid)) return { held: holder };
    // This host name, but the pid tells nothing: a live holder refreshes its lock, so watch it.
    return this.watch(holder);
  }

  /** Stale once `holder` has missed MISSED_REFRESHES refreshes; held as soon as it refreshes. */
  private async watch(holder: LockInfo): Promise<Verdict> {
    const refreshMs = holder.refreshMs ?? Math.min(LOCK_REFRESH_MS, leaseOf(holder) / 6);
    const limitMs = MISSED_REFRESHES * refreshMs;
    // Counted on our clock from now on: the holder's clock (its mtimes) may run ahead of ours.
    const deadline = Date.now() + Math.max(0, limitMs - Math.max(0, Date.now() - holder.refreshedAt));
    for (;;) {
      const now = await this.read(this.file);
      if (now === 'missing') return 'gone';
      if (!now || now.token !== holder.token) return 'gone'; // replaced meanwhile: judge the new one
      if (now.refreshedAt !== holder.refreshedAt) return { held: now };
      const left = deadline - Date.now();
      if (left <= 0) {
        const where = holder.pidNs === undefined ? 'in a pid namespace it does not name' : 'in another pid namespace';
        return {
          stale: `its holder runs under this host name ${where}, so its pid ${holder.pid} tells nothing here, and it has not refreshed the lock for ` +
            `${Math.round(Date.now() - holder.refreshedAt)} ms (it refreshes every ${Math.round(refreshMs)} ms)`,
        };
      }
      await sleep(Math.max(10, Math.min(refreshMs / 4, left)));
    }
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

/** The very same lock, not refreshed in between (a lock's mtime survives its rename). */
function sameHolder(a: LockInfo, b: LockInfo): boolean {
  if (a.refreshedAt !== b.refreshedAt) return false;
  if (a.token !== undefined || b.token !== undefined) return a.token === b.token;
  return a.pid === b.pid && a.host === b.host && a.acquiredAt === b.acquiredAt;
}

function describe(h: LockInfo): LockHolder {
  return { pid: h.pid, host: h.host, acquiredAt: h.acquiredAt };
}
