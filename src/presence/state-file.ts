/**
 * The two files in the data directory through which the CLI and the running daemon talk:
 *
 * - `presence.json` (manual states): written by `switchboard presence set` and by
 *   `PresenceService.setManual`, read by both. Each writer takes `presence.json.lock` (O_EXCL),
 *   re-reads the file, changes its one entry, bumps `revision` and writes atomically, so a CLI
 *   write and a daemon write never lose each other's entries. A lock left by a crashed writer
 *   (older than 30 s) is taken over by one writer at a time, and a writer removes only its own
 *   lock (see withFileLock).
 * - `presence-status.json` (status snapshot): written only by the daemon after each change; read by
 *   `presence list` to show live states and since-when.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { readIfExists, writeFileAtomic } from '../fsutil.js';
import { errorMessage } from '../errors.js';
import { PresenceError } from './errors.js';
import { PRESENCE_STATES, MANUAL_STATES, type ManualEntry, type ManualStateDoc, type PresenceStatusDoc } from './types.js';

export const STATE_FILE_NAME = 'presence.json';
export const STATUS_FILE_NAME = 'presence-status.json';

export function stateFileIn(dataDir: string): string {
  return path.join(dataDir, STATE_FILE_NAME);
}
export function statusFileIn(dataDir: string): string {
  return path.join(dataDir, STATUS_FILE_NAME);
}

const isoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 date');

const manualEntrySchema = z.object({
  state: z.enum(MANUAL_STATES),
  reason: z.string().optional(),
  since: isoDate,
  until: isoDate.optional(),
  username: z.string().optional(),
  by: z.string().optional(),
});

const manualDocSchema = z.object({
  version: z.literal(1),
  revision: z.number().int().nonnegative(),
  agents: z.record(z.string(), manualEntrySchema),
});

const presenceSchema = z.object({
  agentId: z.string(),
  username: z.string(),
  state: z.enum(PRESENCE_STATES),
  reason: z.string().optional(),
  since: z.string(),
  until: z.string().optional(),
  detail: z.object({
    enabled: z.boolean(),
    registered: z.union([z.boolean(), z.literal('unknown')]),
    pausedBy: z.enum(['switchboard', 'queue']).optional(),
    busy: z.boolean(),
  }),
});

const statusDocSchema = z.object({
  version: z.literal(1),
  pid: z.number().int(),
  startedAt: z.string(),
  writtenAt: z.string(),
  stoppedAt: z.string().optional(),
  manualRevision: z.number().int().nonnegative(),
  agents: z.array(presenceSchema),
});

export function emptyManualDoc(): ManualStateDoc {
  return { version: 1, revision: 0, agents: {} };
}

/** Reads presence.json; an absent file is an empty document. Throws PRESENCE_STATE_FILE if corrupt. */
export async function readManualDoc(file: string): Promise<ManualStateDoc> {
  const text = await readIfExists(file);
  if (text === undefined) return emptyManualDoc();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new PresenceError('PRESENCE_STATE_FILE', `${file} is not valid JSON (${errorMessage(err)}): fix or delete it`, { file });
  }
  const parsed = manualDocSchema.safeParse(json);
  if (!parsed.success) {
    throw new PresenceError('PRESENCE_STATE_FILE', `${file} is not a presence state file:\n${z.prettifyError(parsed.error)}\nFix or delete it`, { file });
  }
  return parsed.data as ManualStateDoc;
}

/** Reads presence-status.json; undefined when absent or unreadable (the daemon rewrites it soon). */
export async function readStatusDoc(file: string): Promise<PresenceStatusDoc | undefined> {
  let text: string | undefined;
  try {
    text = await readIfExists(file);
  } catch {
    return undefined;
  }
  if (text === undefined) return undefined;
  try {
    const parsed = statusDocSchema.safeParse(JSON.parse(text));
    return parsed.success ? (parsed.data as PresenceStatusDoc) : undefined;
  } catch {
    return undefined;
  }
}

export async function writeStatusDoc(file: string, doc: PresenceStatusDoc): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, JSON.stringify(doc, null, 2) + '\n', 0o644);
}

/** True while a manual entry still counts: a pause with no end, a pause not yet over, or `available`. */
export function entryActive(entry: ManualEntry, now: number): boolean {
  return entry.state !== 'paused' || entry.until === undefined || Date.parse(entry.until) > now;
}

export interface LockOptions {
  /** Give up after this long (default 5000 ms). */
  timeoutMs?: number;
  /** A lock file older than this was left by a crashed writer and is taken over (default 30000 ms). */
  staleMs?: number;
}

/** What identifies one lock file: a new lock at the same path (even on a reused inode) differs. */
interface LockStamp {
  dev: number;
  ino: number;
  mtimeMs: number;
  size: number;
}

function stampOf(st: { dev: number; ino: number; mtimeMs: number; size: number }): LockStamp {
  return { dev: st.dev, ino: st.ino, mtimeMs: st.mtimeMs, size: st.size };
}

function sameStamp(a: LockStamp, b: LockStamp): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.size === b.size;
}

async function statOrUndefined(file: string): Promise<LockStamp | undefined> {
  try {
    return stampOf(await fs.stat(file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Creates `file` with O_EXCL holding `<pid> <token>`; its stamp, or undefined if it exists. */
async function createExclusive(file: string): Promise<{ stamp: LockStamp; token: string } | undefined> {
  const token = randomBytes(6).toString('hex');
  let h: fs.FileHandle;
  try {
    h = await fs.open(file, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw err;
  }
  let written = false;
  try {
    await h.writeFile(`${process.pid} ${token}\n`);
    const stamp = stampOf(await h.stat());
    written = true;
    return { stamp, token };
  } finally {
    await h.close().catch(() => {});
    if (!written) await fs.rm(file, { force: true }).catch(() => {});
  }
}

/**
 * Removes the file at `file` only if it is the one `isIt` expects. Paths offer no "delete if it is
 * still this file", so the file is first renamed to a name nobody else uses (atomic: of several
 * removers one gets it, the others find nothing), then checked; a file that turns out to be
 * another (a lock taken since it was looked at) is put back with link(), which never replaces a
 * lock taken meanwhile. Returns whether it removed the expected file.
 */
async function removeIfExpected(file: string, isIt: (moved: LockStamp, content: string) => boolean): Promise<boolean> {
  const aside = `${file}.aside.${process.pid}.${randomBytes(6).toString('hex')}`;
  try {
    await fs.rename(file, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  let expected = false;
  try {
    const st = await fs.stat(aside);
    const content = await fs.readFile(aside, 'utf8').catch(() => '');
    expected = isIt(stampOf(st), content);
    if (!expected) {
      try {
        await fs.link(aside, file);
      } catch (err) {
        // EEXIST: a third writer took the lock while it was aside; theirs stands.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') await fs.rename(aside, file).catch(() => {});
      }
    }
  } finally {
    await fs.rm(aside, { force: true });
  }
  return expected;
}

/**
 * Takes over the stale lock file `lock` (stamp `stale` when judged stale). Writers that find the
 * same stale lock must not each delete "the lock": the second deletion would remove the lock the
 * first one has just taken, and two writers would run at once (a lost write). So breaking a lock is
 * itself done by one writer at a time, holding `<lock>.break` (O_EXCL, held for a stat and a rename),
 * and removes the lock only if it is still the very file judged stale (see removeIfExpected).
 */
async function breakStaleLock(lock: string, stale: LockStamp, staleMs: number): Promise<void> {
  const breaker = `${lock}.break`;
  const held = await createExclusive(breaker);
  if (!held) {
    // Another writer is breaking it now; or one crashed doing so (a few syscalls' window): its
    // break lock goes stale like any lock.
    const st = await statOrUndefined(breaker);
    if (st && Date.now() - st.mtimeMs > staleMs) await removeIfExpected(breaker, (moved) => sameStamp(moved, st));
    return;
  }
  try {
    const now = await statOrUndefined(lock);
    if (now && sameStamp(now, stale)) await removeIfExpected(lock, (moved) => sameStamp(moved, stale));
  } finally {
    await releaseOwn(breaker, held.stamp, held.token);
  }
}

/** Removes `lock` if it is still the one this writer took (not one that replaced it after a takeover). */
async function releaseOwn(lock: string, stamp: LockStamp, token: string): Promise<void> {
  const now = await statOrUndefined(lock).catch(() => undefined);
  if (!now || now.dev !== stamp.dev || now.ino !== stamp.ino) return;
  await removeIfExpected(lock, (moved, content) => moved.dev === stamp.dev && moved.ino === stamp.ino && content.trim().endsWith(` ${token}`));
}

/**
 * Runs `fn` holding `<file>.lock`, created with O_EXCL. Writers hold it for one read and one
 * atomic write (milliseconds), so waiting is short; a lock older than `staleMs` was left by a
 * crashed writer and is taken over (one writer at a time, see breakStaleLock). On the way out the
 * lock is removed only if it is still this writer's own.
 */
export async function withFileLock<T>(file: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const lock = `${file}.lock`;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const staleMs = opts.staleMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let own: { stamp: LockStamp; token: string } | undefined;
  for (;;) {
    own = await createExclusive(lock);
    if (own) break;
    const st = await statOrUndefined(lock);
    if (!st) continue;
    if (Date.now() - st.mtimeMs > staleMs) {
      await breakStaleLock(lock, st, staleMs);
      if (!(await statOrUndefined(lock))) continue;
    }
    if (Date.now() >= deadline) {
      throw new PresenceError('PRESENCE_STATE_FILE', `${lock} is held by another writer (waited ${timeoutMs} ms); if no switchboard is writing, delete it`, { lock });
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  try {
    return await fn();
  } finally {
    await releaseOwn(lock, own.stamp, own.token);
  }
}

/**
 * Read-modify-write of presence.json under its lock: `change` edits the freshly read document;
 * paused entries that are over are dropped; the revision goes up by one. Returns the written document.
 */
export async function updateManualDoc(file: string, now: number, change: (doc: ManualStateDoc) => void): Promise<ManualStateDoc> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  return withFileLock(file, async () => {
    const doc = await readManualDoc(file);
    change(doc);
    for (const [id, entry] of Object.entries(doc.agents)) {
      if (!entryActive(entry, now)) delete doc.agents[id];
    }
    doc.revision += 1;
    await writeFileAtomic(file, JSON.stringify(doc, null, 2) + '\n', 0o644);
    return doc;
  });
}

/** Whether process `pid` exists on this host (EPERM: it exists but belongs to someone else). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The daemon is running when its snapshot exists, was not closed by a clean stop, and its pid lives. */
export function daemonRunning(status: PresenceStatusDoc | undefined): boolean {
  return status !== undefined && status.stoppedAt === undefined && pidAlive(status.pid);
}
