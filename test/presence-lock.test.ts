/**
 * The presence.json lock (`withFileLock`): taking over a stale lock left by a crashed writer must
 * never let two writers in at once, and a writer releases only its own lock.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { updateManualDoc, withFileLock } from '../src/presence/state-file.js';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'presence-lock-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Lets writer `i` start `i` event-loop turns after the first, so takeovers interleave with lock takes. */
async function staggered(i: number): Promise<void> {
  for (let k = 0; k < i; k++) await new Promise((r) => setImmediate(r));
}

/** A lock file as a crashed writer leaves it: old enough to be stale. */
function leaveStaleLock(file: string): void {
  writeFileSync(`${file}.lock`, '99999\n');
  const old = new Date(Date.now() - 60_000);
  utimesSync(`${file}.lock`, old, old);
}

describe('presence.json lock: stale lock takeover', () => {
  it('writers that all find the same stale lock take it over one at a time: no write is lost', async () => {
    const rounds = 25;
    const writers = 8;
    const lost: string[] = [];
    for (let round = 0; round < rounds; round++) {
      const file = join(dir, `r${round}`, 'presence.json');
      await updateManualDoc(file, Date.now(), () => {}); // creates the directory and file (revision 1)
      leaveStaleLock(file);
      await Promise.all(
        Array.from({ length: writers }, async (_, i) => {
          await staggered(i);
          await updateManualDoc(file, Date.now(), (d) => {
            d.agents[String(1000 + i)] = { state: 'paused', since: new Date().toISOString() };
          });
        }),
      );
      const doc = JSON.parse(readFileSync(file, 'utf8')) as { revision: number; agents: Record<string, unknown> };
      if (Object.keys(doc.agents).length !== writers || doc.revision !== writers + 1) {
        lost.push(`round ${round}: ${Object.keys(doc.agents).length}/${writers} entries, revision ${doc.revision}`);
      }
      // Nothing left behind: no lock, no break lock, no file moved aside.
      expect(readdirSync(join(dir, `r${round}`)).sort()).toEqual(['presence.json']);
    }
    expect(lost).toEqual([]);
  });

  it('never has two holders at once while a stale lock is taken over', async () => {
    const file = join(dir, 'presence.json');
    for (let round = 0; round < 25; round++) {
      leaveStaleLock(file);
      let inside = 0;
      let most = 0;
      await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          await staggered(i);
          await withFileLock(file, async () => {
            inside += 1;
            most = Math.max(most, inside);
            await new Promise((r) => setTimeout(r, 2));
            inside -= 1;
          });
        }),
      );
      expect(most, `round ${round}`).toBe(1);
    }
  });

  it('a writer releases only its own lock: one taken over from it (it held too long) stays', async () => {
    const file = join(dir, 'presence.json');
    const lock = `${file}.lock`;
    await withFileLock(file, async () => {
      // While we hold it, another writer judged our lock stale and took it over.
      rmSync(lock);
      writeFileSync(lock, '4242 someone-else\n');
    });
    expect(existsSync(lock)).toBe(true);
    expect(readFileSync(lock, 'utf8')).toBe('4242 someone-else\n');
  });

  it('a fresh lock is waited for, not broken; the error names the lock file', async () => {
    const file = join(dir, 'presence.json');
    writeFileSync(`${file}.lock`, '4242 someone-else\n');
    await expect(withFileLock(file, async () => 'ran', { timeoutMs: 100 })).rejects.toThrow(/presence\.json\.lock is held by another writer/);
    expect(readFileSync(`${file}.lock`, 'utf8')).toBe('4242 someone-else\n');
  });
});
