import { chmodSync, chownSync, mkdtempSync, promises as fsPromises, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { StagedFile, copyFileAtomic, prepareFileAtomic, writeFileAtomic } from '../src/fsutil.js';

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
    const target = path.join(dir, 'prepared');
    writeFileSync(target, 'old\n');
    chmodSync(target, 0o644);
    const kept = await prepareFileAtomic(target, 'dropped\n');
    expect(readFileSync(target, 'utf8')).toBe('old\n');
    await kept.discard();
    expect(readFileSync(target, 'utf8')).toBe('old\n');
    const next = await prepareFileAtomic(target, 'new\n', 0o600);
    expect(readFileSync(target, 'utf8')).toBe('old\n');
    await next.commit();
    expect(readFileSync(target, 'utf8')).toBe('new\n');
    // The mode given is a new file's: the file replaced was 0644 and stays so (see 'owner and mode').
    expect(statSync(target).mode & 0o777).toBe(0o644);
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

describe('replacing a file keeps its owner, group and mode', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** Every way fsutil replaces a file, each writing `text` over `target` with the mode 0640 for a new file. */
  const writers: [string, (target: string, text: string) => Promise<unknown>][] = [
    ['writeFileAtomic', (target, text) => writeFileAtomic(target, text, 0o640)],
    ['prepareFileAtomic', async (target, text) => (await prepareFileAtomic(target, text, 0o640)).commit()],
    ['StagedFile', (target, text) => {
      const f = new StagedFile(target, 0o640);
      f.push(text);
      return f.commit();
    }],
    ['copyFileAtomic', async (target, text) => {
      const source = `${target}.source`;
      writeFileSync(source, text);
      await copyFileAtomic(source, target, 0o640);
    }],
  ];

  it.each(writers)('%s: the mode of the file replaced is kept; a new file gets the mode given', async (name, write) => {
    const target = path.join(dir, `mode-${name}`);
    await write(target, 'first\n');
    expect(statSync(target).mode & 0o777).toBe(0o640);
    chmodSync(target, 0o604);
    await write(target, 'second\n');
    expect(readFileSync(target, 'utf8')).toBe('second\n');
    expect(statSync(target).mode & 0o777).toBe(0o604);
  });

  it.each(writers)("%s: the temp file is given the replaced file's uid and gid before the rename", async (name, write) => {
    const target = path.join(dir, `owner-${name}`);
    writeFileSync(target, 'old\n');
    const old = statSync(target);
    const lchown = vi.spyOn(fsPromises, 'lchown');
    await write(target, 'new\n');
    expect(lchown).toHaveBeenCalledTimes(1);
    const [tmp, uid, gid] = lchown.mock.calls[0]!;
    expect(path.dirname(String(tmp))).toBe(dir);
    expect(path.basename(String(tmp))).toMatch(new RegExp(`^\\.owner-${name}\\..*\\.tmp$`));
    expect([uid, gid]).toEqual([old.uid, old.gid]);
    // No file replaced: nothing to give away.
    lchown.mockClear();
    await write(path.join(dir, `owner-new-${name}`), 'new\n');
    expect(lchown).not.toHaveBeenCalled();
  });

  it.each(['EPERM', 'EINVAL'])('without the privilege to give a file away (%s) the file is still replaced, its mode kept', async (code) => {
    const target = path.join(dir, `unprivileged-${code}`);
    writeFileSync(target, 'old\n');
    chmodSync(target, 0o660);
    vi.spyOn(fsPromises, 'lchown').mockRejectedValue(Object.assign(new Error(`${code}: operation not permitted`), { code }));
    await writeFileAtomic(target, 'new\n', 0o640);
    expect(readFileSync(target, 'utf8')).toBe('new\n');
    expect(statSync(target).mode & 0o777).toBe(0o660);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  const root = process.getuid?.() === 0;
  it.skipIf(!root)('as root: a file owned by asterisk:asterisk (here uid 4242, gid 4243) 0640 stays so', async () => {
    for (const [name, write] of writers) {
      const target = path.join(dir, `root-${name}`);
      writeFileSync(target, 'old\n');
      chownSync(target, 4242, 4243);
      chmodSync(target, 0o640);
      await write(target, 'new\n');
      const st = statSync(target);
      expect([name, st.uid, st.gid, st.mode & 0o777]).toEqual([name, 4242, 4243, 0o640]);
      expect(readFileSync(target, 'utf8')).toBe('new\n');
    }
  });
});
