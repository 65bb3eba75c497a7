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
