/** renderToDir (`switchboard render`'s streaming path) and StagedFile against render() and the old compare-then-write. */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StagedFile } from '../src/fsutil.js';
import type { Backend, Store } from '../src/model/types.js';
import { RenderCheckError } from '../src/render/check.js';
import { Renderer } from '../src/render/render.js';
import { loadTemplates } from '../src/render/templates.js';
import { renderToDir } from '../src/render/to-dir.js';
import { YamlStore } from '../src/store/yaml-store.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const temps: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'switchboard-todir-'));
  temps.push(d);
  return d;
};
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

let store: Store;
beforeAll(async () => {
  store = (await new YamlStore(path.join(ROOT, 'fixtures', 'store')).loadAll()).store!;
});

describe('renderToDir', () => {
  it.each(['pjsip', 'sip', 'both'] as Backend[])('writes exactly what render() returns (%s), then finds it unchanged', async (backend) => {
    const out = path.join(tempDir(), 'a', 'b');
    const renderer = new Renderer(loadTemplates());
    const expected = new Renderer(loadTemplates()).render(store, backend);
    const first = await renderToDir(renderer, store, backend, out);
    expect(first).toEqual([...expected].map(([file, text]) => ({ file, bytes: Buffer.byteLength(text), changed: true })));
    expect(readdirSync(out).sort()).toEqual([...expected.keys()].sort());
    for (const [file, text] of expected) {
      expect(readFileSync(path.join(out, file), 'utf8')).toBe(text);
      expect(statSync(path.join(out, file)).mode & 0o777).toBe(0o640);
    }
    const inodes = [...expected.keys()].map((f) => statSync(path.join(out, f)).ino);
    const second = await renderToDir(renderer, store, backend, out);
    expect(second.map((f) => f.changed)).toEqual(second.map(() => false));
    expect([...expected.keys()].map((f) => statSync(path.join(out, f)).ino)).toEqual(inodes);
    // One file edited by hand (same length, then another length): only it is written again.
    const [name, text] = [...expected][0]!;
    for (const edited of [text.replace('type = ', 'tipe = '), `${text}; extra\n`]) {
      writeFileSync(path.join(out, name), edited);
      const third = await renderToDir(renderer, store, backend, out);
      expect(third.map((f) => f.changed)).toEqual(third.map((f) => f.file === name));
      expect(readFileSync(path.join(out, name), 'utf8')).toBe(text);
    }
    expect(readdirSync(out).sort()).toEqual([...expected.keys()].sort());
  });

  it('a failing render leaves the directory as it was, and removes the directories it created', async () => {
    const dir = tempDir();
    const bad = path.join(dir, 'templates');
    mkdirSync(path.join(bad, 'pjsip'), { recursive: true });
    cpSync(path.join(ROOT, 'templates', 'pjsip', 'agent.hbs'), path.join(bad, 'pjsip', 'agent.hbs'));
    writeFileSync(path.join(bad, 'pjsip', 'agent.hbs'), readFileSync(path.join(bad, 'pjsip', 'agent.hbs'), 'utf8') + '[evil]\n');
    const renderer = new Renderer(loadTemplates(bad));
    const existing = path.join(dir, 'out');
    mkdirSync(existing);
    writeFileSync(path.join(existing, 'pjsip_switchboard.conf'), 'old\n');
    await expect(renderToDir(renderer, store, 'pjsip', existing)).rejects.toThrow(RenderCheckError);
    expect(readdirSync(existing)).toEqual(['pjsip_switchboard.conf']);
    expect(readFileSync(path.join(existing, 'pjsip_switchboard.conf'), 'utf8')).toBe('old\n');
    await expect(renderToDir(renderer, store, 'pjsip', path.join(dir, 'new', 'deeper'))).rejects.toThrow(RenderCheckError);
    expect(existsSync(path.join(dir, 'new'))).toBe(false);
  });
});

describe('StagedFile', () => {
  const stage = async (target: string, pieces: string[]) => {
    const f = new StagedFile(target);
    for (const p of pieces) f.push(p);
    return { changed: await f.commit(), bytes: f.bytes };
  };

  it('writes large content in batches exactly, and compares it with the target batch by batch', async () => {
    const dir = tempDir();
    const target = path.join(dir, 'big');
    const pieces = Array.from({ length: 5000 }, (_, i) => `line ${i} Zoë 😀 ${'x'.repeat(i % 700)}\n`);
    expect(await stage(target, pieces)).toEqual({ changed: true, bytes: Buffer.byteLength(pieces.join('')) });
    expect(readFileSync(target, 'utf8')).toBe(pieces.join(''));
    expect((await stage(target, pieces)).changed).toBe(false);
    const other = [...pieces];
    other[4000] = other[4000]!.replace('line', 'lime');
    expect((await stage(target, other)).changed).toBe(true);
    expect(readFileSync(target, 'utf8')).toBe(other.join(''));
    expect((await stage(target, other.slice(0, -1))).changed).toBe(true);
    expect(readdirSync(dir)).toEqual(['big']);
  });

  it('writes the UTF-8 of the pieces\' joined text, wherever they are cut (surrogate pairs too)', async () => {
    const dir = tempDir();
    const small = Array.from({ length: 400 }, (_, i) => `k${i} = Zoë 😀 ${'x'.repeat(i % 300)}\n`).join('') + 'end 😀';
    const large = Array.from({ length: 6000 }, (_, i) => `k${i} = Zoë 😀 ${'x'.repeat(i % 700)}\n`).join('');
    const cases: [string, number][] = [[small, 1], [small, 3], [small, 7], [small, 4096], [large, (1 << 19) + 1], [large, 1 << 21]];
    for (const [text, size] of cases) {
      const pieces: string[] = [];
      for (let i = 0; i < text.length; i += size) pieces.push(text.slice(i, i + size));
      const target = path.join(dir, `cut-${size}`);
      expect((await stage(target, pieces)).bytes, `pieces of ${size}`).toBe(Buffer.byteLength(text));
      expect(readFileSync(target).equals(Buffer.from(text, 'utf8')), `pieces of ${size}`).toBe(true);
      expect((await stage(target, pieces)).changed, `pieces of ${size}, again`).toBe(false);
    }
    // A high surrogate that ends the content alone is written as UTF-8 writes it (U+FFFD).
    const target = path.join(dir, 'lone-end');
    await stage(target, ['a = b', '\ud83d']);
    expect(readFileSync(target)).toEqual(Buffer.from('a = b\ud83d', 'utf8'));
  });

  it('end() finishes the temp file at once (fsync started, or removed when unchanged); commit() then places it', async () => {
    const dir = tempDir();
    const target = path.join(dir, 'f');
    const f = new StagedFile(target);
    f.push('a = 1\n');
    expect(readFileSync(f.tmp, 'utf8')).toBe(''); // still batched
    f.end();
    // Finished but not placed: the target does not exist yet, the temp file holds the content.
    expect(existsSync(target)).toBe(false);
    expect(readFileSync(f.tmp, 'utf8')).toBe('a = 1\n');
    expect(await f.commit()).toBe(true);
    expect(readFileSync(target, 'utf8')).toBe('a = 1\n');
    // The same content again: the temp file goes at end(), and the target is left as it was.
    const inode = statSync(target).ino;
    const g = new StagedFile(target);
    g.push('a = 1\n');
    expect(existsSync(g.tmp)).toBe(true);
    g.end();
    expect(existsSync(g.tmp)).toBe(false);
    expect(await g.commit()).toBe(false);
    expect(statSync(target).ino).toBe(inode);
    expect(readdirSync(dir)).toEqual(['f']);
  });

  it('the renderer ends each file as soon as its last piece is out, in order', () => {
    const events: string[] = [];
    new Renderer(loadTemplates()).renderOnce(store, 'both', (file) => ({
      push: () => events.push(`push ${file}`),
      end: () => events.push(`end ${file}`),
    }));
    const files = [...new Renderer(loadTemplates()).render(store, 'both').keys()];
    expect(events.filter((e) => e.startsWith('end '))).toEqual(files.map((f) => `end ${f}`));
    // Nothing is pushed to a file after its end.
    for (const f of files) expect(events.lastIndexOf(`push ${f}`)).toBeLessThan(events.indexOf(`end ${f}`));
  });

  it('writes U+FFFD and lone surrogates into a new file as UTF-8 would encode them', async () => {
    const dir = tempDir();
    const target = path.join(dir, 'n');
    const text = `x = \ufffd \ud800 y\n`;
    expect((await stage(target, [text])).changed).toBe(true);
    expect(readFileSync(target)).toEqual(Buffer.from(text, 'utf8'));
  });

  it('decides "unchanged" as comparing the target read as UTF-8 with the text would', async () => {
    const dir = tempDir();
    const target = path.join(dir, 'f');
    // Invalid UTF-8 reads as U+FFFD: the same text, so unchanged (and the bytes are left alone).
    writeFileSync(target, Buffer.from([0x61, 0xff, 0x62]));
    expect((await stage(target, ['a\ufffdb'])).changed).toBe(false);
    expect(readFileSync(target)).toEqual(Buffer.from([0x61, 0xff, 0x62]));
    // A lone surrogate never equals text read back from a file: always written.
    expect((await stage(target, ['a\ud800b'])).changed).toBe(true);
    expect((await stage(target, ['a\ud800b'])).changed).toBe(true);
  });
});
