/**
 * The apply lock's lease (src/apply/lock.ts): a lock whose holder ran on another host (a container
 * recreated with a new hostname, on the same volume) or whose pid was reused is taken over once it
 * has not been refreshed for its lease; a live holder refreshes it, so it is never taken from it.
 * And debris named after this very pid but older than this process (a restarted container reuses
 * pid 1) is removed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApplyLockedError } from '../src/apply/index.js';
import { FileLock } from '../src/apply/lock.js';
import { OUTPUT_FILES } from '../src/render/render.js';
import { load, memoryLogger, setupEnv, tempDir, type Env } from './helpers/apply-env.js';
import { waitFor } from './helpers/wait.js';

let env: Env | undefined;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
  await env?.close();
  env = undefined;
});

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

/** Writes a lock file as a holder on `host` would have, last refreshed `ageMs` ago. */
async function writeLock(file: string, holder: Record<string, unknown>, ageMs: number): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, JSON.stringify(holder) + '\n');
  const at = new Date(Date.now() - ageMs);
  await fs.utimes(file, at, at);
}

const MINUTE = 60_000;
const FOREIGN = { pid: 1, processStartedAt: Date.now() - 3_600_000, host: 'switchboard-old-7f3c', acquiredAt: '2025-01-01T00:00:00.000Z', token: 'a1b2c3d4e5f6' };

describe('apply lock held by another host', () => {
  it('a lock not refreshed for longer than its lease (the holder crashed in a container since recreated) is taken over, and that is logged', async () => {
    const e = (env = await setupEnv());
    const lockFile = path.join(e.stateDir, 'apply.lock');
    await writeLock(lockFile, { ...FOREIGN, leaseMs: 2 * MINUTE }, 10 * MINUTE);
    const r = await e.applier.apply(await load(e.storeDir));
    expect(r.verified).toBe(true);
    expect(await exists(lockFile)).toBe(false);
    const records = e.log.text().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const takeover = records.find((rec) => String(rec.msg).startsWith('took over a stale apply lock'));
    expect(takeover).toMatchObject({ lockFile, holder: { pid: 1, host: 'switchboard-old-7f3c' } });
    expect(String(takeover!.reason)).toMatch(/not refreshed for 600 s, longer than its lease \(120 s\)/);
  });

  it('a lock refreshed within its lease is not taken: the error names the file, the holder and how to recover', async () => {
    const e = (env = await setupEnv());
    const lockFile = path.join(e.stateDir, 'apply.lock');
    await writeLock(lockFile, { ...FOREIGN, leaseMs: 2 * MINUTE }, 5_000);
    const before = await fs.readFile(lockFile, 'utf8');
    const err = await rejection(e.applier.apply(await load(e.storeDir)));
    expect(err).toBeInstanceOf(ApplyLockedError);
    expect((err as ApplyLockedError).code).toBe('APPLY_LOCKED');
    expect(err.message).toContain(`lock ${lockFile} held by pid 1 on host switchboard-old-7f3c since 2025-01-01T00:00:00.000Z`);
    expect(err.message).toMatch(/in 11\d s unless its holder refreshes it/);
    expect(err.message).toContain(`make sure no switchboard runs as that pid on switchboard-old-7f3c, then delete ${lockFile}`);
    expect((err as ApplyLockedError).details).toMatchObject({ lockFile, pid: 1, host: 'switchboard-old-7f3c' });
    expect(await fs.readFile(lockFile, 'utf8')).toBe(before);
    expect((await fs.readdir(e.outDir)).filter((f) => f.endsWith('.conf'))).toEqual([]);
    expect(e.log.text()).not.toContain('took over');
  });

  it('a lock from a switchboard before leases (none recorded, never refreshed) is given an hour', async () => {
    const e = (env = await setupEnv());
    const lockFile = path.join(e.stateDir, 'apply.lock');
    const { token: _t, ...legacy } = FOREIGN;
    await writeLock(lockFile, legacy, 30 * MINUTE);
    expect(await rejection(e.applier.apply(await load(e.storeDir)))).toBeInstanceOf(ApplyLockedError);
    await writeLock(lockFile, legacy, 61 * MINUTE);
    expect((await e.applier.apply(await load(e.storeDir))).verified).toBe(true);
  });

  it('the holder refreshes its lock while it holds it, so it is not taken over however long it holds it; release stops that', async () => {
    const dir = await tempDir('lock');
    cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'apply.lock');
    const log = memoryLogger();
    const holder = new FileLock(file, { leaseMs: 600, logger: log.logger });
    await holder.acquire();
    const held = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
    expect(held).toMatchObject({ pid: process.pid, host: os.hostname(), leaseMs: 600 });
    // Seen from another host: rewrite the host it names (keeping its token), as if it ran there.
    await fs.writeFile(file, JSON.stringify({ ...held, host: 'another-host' }) + '\n');
    const t0 = Date.now();
    await waitFor(async () => (await fs.stat(file)).mtimeMs > t0 + 50, 1000);
    await new Promise((resolve) => setTimeout(resolve, 900)); // longer than the lease
    const other = new FileLock(file, { leaseMs: 600 });
    const err = await rejection(other.acquire());
    expect(err).toBeInstanceOf(ApplyLockedError);
    expect(err.message).toContain('on host another-host');
    expect(Date.now() - (await fs.stat(file)).mtimeMs).toBeLessThan(600);

    await holder.release();
    expect(await exists(file)).toBe(false);
    await fs.writeFile(file, JSON.stringify({ ...held, host: 'another-host', token: 'ffffffffffff' }) + '\n');
    const old = new Date(Date.now() - 10_000);
    await fs.utimes(file, old, old);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(Math.round((await fs.stat(file)).mtimeMs)).toBe(old.getTime()); // no longer refreshed by the released holder
    await other.acquire(); // stale now: taken over
    await other.release();
    expect(log.text()).not.toMatch(/taken over while this apply held it|could not refresh/);
  });
});

describe('reused pids', () => {
  function spawnSleeper(): ChildProcess {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    cleanups.push(() => {
      child.kill('SIGKILL');
    });
    return child;
  }

  it('a lock on this host whose pid is alive but that has not been refreshed for its lease (the pid was reused) is taken over', async () => {
    const e = (env = await setupEnv());
    const lockFile = path.join(e.stateDir, 'apply.lock');
    const other = spawnSleeper();
    await writeLock(lockFile, { ...FOREIGN, pid: other.pid, host: os.hostname(), leaseMs: 2 * MINUTE }, 10 * MINUTE);
    const r = await e.applier.apply(await load(e.storeDir));
    expect(r.verified).toBe(true);
    expect(e.log.text()).toContain('took over a stale apply lock');
    // Refreshed within its lease, the same live pid keeps its lock.
    await writeLock(lockFile, { ...FOREIGN, pid: other.pid, host: os.hostname(), leaseMs: 2 * MINUTE }, 1_000);
    expect(await rejection(e.applier.apply(await load(e.storeDir)))).toBeInstanceOf(ApplyLockedError);
  });

  it('temp files and lock debris named after this pid but older than this process are removed; this process\'s own are kept', async () => {
    const e = (env = await setupEnv());
    await fs.mkdir(e.stateDir, { recursive: true });
    const before = new Date(Date.now() - process.uptime() * 1000 - 60_000);
    const earlierTemp = `.${OUTPUT_FILES.pjsip}.${process.pid}.deadbeef.tmp`;
    const ownTemp = `.${OUTPUT_FILES.pjsip}.${process.pid}.cafebabe.tmp`;
    const earlierLockTemp = `apply.lock.${process.pid}.0123456789ab.tmp`;
    const earlierAside = `apply.lock.stale.${process.pid}.89abcdef`;
    for (const [dir, name, at] of [
      [e.outDir, earlierTemp, before], [e.outDir, ownTemp, undefined], [e.stateDir, earlierLockTemp, before], [e.stateDir, earlierAside, before],
    ] as const) {
      await fs.writeFile(path.join(dir, name), '');
      if (at) await fs.utimes(path.join(dir, name), at, at);
    }
    expect((await e.applier.apply(await load(e.storeDir))).verified).toBe(true);
    expect(await exists(path.join(e.outDir, earlierTemp))).toBe(false);
    expect(await exists(path.join(e.outDir, ownTemp))).toBe(true);
    expect(await exists(path.join(e.stateDir, earlierLockTemp))).toBe(false);
    expect(await exists(path.join(e.stateDir, earlierAside))).toBe(false);
    for (const n of [earlierTemp, earlierLockTemp, earlierAside]) expect(e.log.text()).toContain(n);
  });
});

describe('pid namespaces and incarnations (a lock under this host name)', () => {
  /** Above Linux's pid_max: no such process, here or anywhere. */
  const DEAD_PID = 2 ** 22 + 12345;
  const ownNs = () => fs.readlink('/proc/self/ns/pid');
  const startedAt = () => Math.round(Date.now() - process.uptime() * 1000);

  async function lockDir(): Promise<string> {
    const dir = await tempDir('lock');
    cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
    return path.join(dir, 'apply.lock');
  }

  /** Touches `file` every 20 ms, as its live holder would, until the returned function is called. */
  function keepRefreshed(file: string): () => void {
    const timer = setInterval(() => {
      const now = new Date();
      void fs.utimes(file, now, now).catch(() => {});
    }, 20);
    cleanups.push(() => clearInterval(timer));
    return () => clearInterval(timer);
  }

  const tokenOf = async (file: string) => (JSON.parse(await fs.readFile(file, 'utf8')) as { token?: string }).token;

  for (const [what, pid] of [['our own pid (another container, pid 1 as well)', process.pid], ['a pid not running here', DEAD_PID]] as const) {
    it(`in another pid namespace, with ${what}: held while its holder refreshes it, taken over once it stops`, async () => {
      const file = await lockDir();
      const log = memoryLogger();
      const holder = { pid, host: os.hostname(), pidNs: 'pid:[1]', incarnation: 'feedfacefeedface', processStartedAt: startedAt() - 600_000, acquiredAt: '2025-01-01T00:00:00.000Z', leaseMs: 60_000, refreshMs: 100, token: 'a1b2c3d4e5f6' };
      await writeLock(file, holder, 0);
      const stop = keepRefreshed(file);
      const err = await rejection(new FileLock(file, { logger: log.logger }).acquire());
      stop();
      expect(err).toBeInstanceOf(ApplyLockedError);
      expect(err.message).toContain(`held by pid ${pid} on host ${os.hostname()}`);
      expect(await tokenOf(file)).toBe('a1b2c3d4e5f6');
      // Its holder stopped refreshing (it crashed): taken over after a few missed refreshes.
      const t0 = Date.now();
      const lock = new FileLock(file, { logger: log.logger });
      await lock.acquire();
      expect(Date.now() - t0).toBeLessThan(2_000);
      expect(await tokenOf(file)).not.toBe('a1b2c3d4e5f6');
      expect(log.text()).toMatch(/took over a stale apply lock: its holder runs under this host name in another pid namespace/);
      await lock.release();
    });
  }

  it('written before namespaces were recorded (a lease, no pidNs), with our pid or a dead one: watched the same way', async () => {
    for (const pid of [process.pid, DEAD_PID]) {
      const file = await lockDir();
      await writeLock(file, { ...FOREIGN, pid, host: os.hostname(), leaseMs: 600 }, 0); // refreshed every 100 ms
      const stop = keepRefreshed(file);
      expect(await rejection(new FileLock(file).acquire())).toBeInstanceOf(ApplyLockedError);
      stop();
      expect(await tokenOf(file)).toBe(FOREIGN.token);
      const lock = new FileLock(file);
      await lock.acquire();
      expect(await tokenOf(file)).not.toBe(FOREIGN.token);
      await lock.release();
    }
  });

  it('in this pid namespace: our pid from an earlier incarnation (restarted under 2 s apart) is taken over at once; this process\'s own is held', async () => {
    const file = await lockDir();
    const log = memoryLogger();
    // Written a moment ago by the previous run of this container (pid 1 again), which crashed.
    await writeLock(file, { pid: process.pid, host: os.hostname(), pidNs: await ownNs(), incarnation: 'feedfacefeedface', processStartedAt: startedAt() - 1500, acquiredAt: '2025-01-01T00:00:00.000Z', leaseMs: 120_000, refreshMs: 10_000, token: 'a1b2c3d4e5f6' }, 0);
    const t0 = Date.now();
    const lock = new FileLock(file, { logger: log.logger });
    await lock.acquire();
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(log.text()).toContain('took over a stale apply lock: its pid is this process, from an earlier incarnation');
    const mine = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
    expect(mine).toMatchObject({ pid: process.pid, host: os.hostname(), pidNs: await ownNs(), incarnation: expect.stringMatching(/^[0-9a-f]{16}$/) });
    expect(mine.incarnation).not.toBe('feedfacefeedface');
    // Another FileLock of this very process: held, at once (no watching).
    const err = await rejection(new FileLock(file).acquire());
    expect(err).toBeInstanceOf(ApplyLockedError);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(await tokenOf(file)).toBe(mine.token);
    // A dead pid in this namespace: gone, taken over at once however fresh.
    await lock.release();
    await writeLock(file, { pid: DEAD_PID, host: os.hostname(), pidNs: await ownNs(), incarnation: 'feedfacefeedface', acquiredAt: '', leaseMs: 120_000, refreshMs: 10_000, token: 'a1b2c3d4e5f6' }, 0);
    const other = new FileLock(file, { logger: log.logger });
    await other.acquire();
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(log.text()).toContain('took over a stale apply lock: its process is gone');
    await other.release();
  });
});

describe('refreshing a lock file missing for a moment', () => {
  it('a lock file moved aside and put back (a rival checking whether it is stale) is not taken as lost; one deleted is created again', async () => {
    const dir = await tempDir('lock');
    cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'apply.lock');
    const log = memoryLogger();
    const holder = new FileLock(file, { leaseMs: 60_000, logger: log.logger }); // refreshed every 10 s: only by hand here
    cleanups.push(() => holder.release());
    await holder.acquire();
    const token = (JSON.parse(await fs.readFile(file, 'utf8')) as { token: string }).token;
    const refresh = () => (holder as unknown as { refresh(token: string): Promise<void> }).refresh(token);
    const old = new Date(Date.now() - 5_000);
    await fs.utimes(file, old, old);
    // A rival's takeOver: rename aside, read, put back.
    const aside = `${file}.stale.4242.01234567`;
    await fs.rename(file, aside);
    const putBack = new Promise<void>((resolve) => setTimeout(() => void fs.rename(aside, file).then(resolve), 10));
    await refresh();
    await putBack;
    expect(log.text()).not.toMatch(/taken over while this apply held it/);
    expect((await fs.stat(file)).mtimeMs).toBeGreaterThan(old.getTime() + 4_000); // refreshed
    // Still refreshing: later refreshes find it too.
    await fs.utimes(file, old, old);
    await refresh();
    expect((await fs.stat(file)).mtimeMs).toBeGreaterThan(old.getTime() + 4_000);
    // Deleted for good (by hand) while held: created again, with this holder's token.
    await fs.rm(file);
    await refresh();
    expect(JSON.parse(await fs.readFile(file, 'utf8'))).toMatchObject({ token, pid: process.pid });
    expect(log.text()).toContain('the apply lock file had disappeared while this apply held it; created it again');
    expect(log.text()).not.toMatch(/taken over while this apply held it/);
    await holder.release();
    expect(await exists(file)).toBe(false);
  });
});
