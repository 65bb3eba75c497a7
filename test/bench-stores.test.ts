/** ensureStore and the dirty marker: a store whose agent files another live run has modified is
 * waited for, not deleted under it; one left by a process that is gone is rebuilt. */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DIRTY, ensureStore } from '../src/bench/stores.js';

const root = mkdtempSync(path.join(tmpdir(), 'switchboard-bench-stores-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('ensureStore', () => {
  it('waits for a live run to restore the store, and rebuilds one a dead run left dirty', async () => {
    const logs: string[] = [];
    const dir = await ensureStore(root, 20, (m) => logs.push(m));
    const sentinel = path.join(dir, 'sentinel');
    writeFileSync(sentinel, 'kept unless the store is rebuilt');

    // A live process holds the store: ensureStore returns once the marker is gone, store untouched.
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 5000)'], { stdio: 'ignore' });
    try {
      writeFileSync(path.join(dir, DIRTY), `${child.pid}\nagent files modified\n`);
      setTimeout(() => rmSync(path.join(dir, DIRTY)), 400);
      expect(await ensureStore(root, 20, (m) => logs.push(m))).toBe(dir);
      expect(existsSync(sentinel)).toBe(true);
      expect(logs.some((l) => l.includes(`waiting for process ${child.pid}`))).toBe(true);
    } finally {
      child.kill();
    }
    await new Promise((r) => child.once('exit', r));

    // The same marker from a process that is gone (or an old marker without a pid): rebuilt.
    writeFileSync(path.join(dir, DIRTY), `${child.pid}\nagent files modified\n`);
    await ensureStore(root, 20, () => {});
    expect(existsSync(sentinel)).toBe(false);
    expect(existsSync(path.join(dir, DIRTY))).toBe(false);
    writeFileSync(sentinel, 'again');
    writeFileSync(path.join(dir, DIRTY), 'agent files modified by the incremental benchmark\n');
    await ensureStore(root, 20, () => {});
    expect(existsSync(sentinel)).toBe(false);
  });
});
