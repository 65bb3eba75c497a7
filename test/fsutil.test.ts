import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../src/fsutil.js';

const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-fsutil-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('writeFileAtomic', () => {
  it('writes large strings exactly, whatever falls on a slice boundary (multi-byte and surrogate pairs)', async () => {
    const MI = 1 << 20;
    for (const [name, text] of [
      ['ascii', 'x'.repeat(3 * MI + 17)],
      ['pair-on-boundary', `${'a'.repeat(MI - 1)}😀${'b'.repeat(MI)}😀é\n`],
      ['multibyte', 'Zoë Łukasz 😀 ; '.repeat(300_000)],
      ['empty', ''],
    ] as const) {
      const file = path.join(dir, name);
      await writeFileAtomic(file, text, 0o640);
      expect(readFileSync(file, 'utf8') === text, name).toBe(true);
      expect(statSync(file).mode & 0o777).toBe(0o640);
    }
  });

  it('writes Buffers exactly and leaves no temp file behind', async () => {
    const buf = Buffer.alloc(5 * (1 << 20) + 3, 7);
    await writeFileAtomic(path.join(dir, 'buf'), buf, 0o600);
    expect(readFileSync(path.join(dir, 'buf')).equals(buf)).toBe(true);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});

describe('prepareFileAtomic', () => {
  it('writes a temp file first; commit puts it in place, discard leaves the target as it was', async () => {
    const { prepareFileAtomic } = await import('../src/fsutil.js');
    const { writeFileSync } = await import('node:fs');
    const target = path.join(dir, 'prepared');
    writeFileSync(target, 'old\n');
    const kept = await prepareFileAtomic(target, 'dropped\n');
    expect(readFileSync(target, 'utf8')).toBe('old\n');
    await kept.discard();
    expect(readFileSync(target, 'utf8')).toBe('old\n');
    const next = await prepareFileAtomic(target, 'new\n', 0o600);
    expect(readFileSync(target, 'utf8')).toBe('old\n');
    await next.commit();
    expect(readFileSync(target, 'utf8')).toBe('new\n');
    expect(statSync(target).mode & 0o777).toBe(0o600);
    expect(statSync(target).ino).toBe(next.written.ino);
    await expect(next.commit()).rejects.toThrow(/already committed/);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});

describe('removeStaleTemps', () => {
  it('removes temp files only; with writerAlive, keeps those whose writer is alive', async () => {
    const { removeStaleTemps } = await import('../src/fsutil.js');
    const { mkdirSync, writeFileSync } = await import('node:fs');
    const lane = path.join(dir, 'temps');
    mkdirSync(lane);
    const names = ['.a.conf.111.0123abcd.tmp', '.b.conf.222.89abcdef.tmp', 'a.conf', '.a.conf.x.0123abcd.tmp'];
    for (const n of names) writeFileSync(path.join(lane, n), '');
    expect(await removeStaleTemps(lane, (pid) => pid === 222)).toEqual(['.a.conf.111.0123abcd.tmp']);
    expect(await removeStaleTemps(lane)).toEqual(['.b.conf.222.89abcdef.tmp']);
    expect(readdirSync(lane).sort()).toEqual(['.a.conf.x.0123abcd.tmp', 'a.conf']);
  });
});
