/**
 * The store's shortcuts against the plain path: reloadFile's (the collected agent list kept
 * between changes, validateAgents' quick path for a few changed agents) against a fresh load of
 * the same directory over random edits, and loadStore's (a store read once: drafts become the
 * agents) against YamlStore.loadAll.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { generateStore } from '../src/bench/generate.js';
import { loadStore, YamlStore, type LoadResult } from '../src/store/yaml-store.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURE = path.join(ROOT, 'fixtures', 'store');
const temps: string[] = [];
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

const FILES = ['1001-alice.yaml', '1002-bob.yaml', '1003-chiara.yaml', '1005-eve.yaml', '1007-grace.yaml', '1010-jun.yaml', '1013-mateo.yaml'];

/** One edit of an agent file's text (or of the file's existence). */
const edit = fc.oneof(
  fc.record({ kind: fc.constant('username' as const), value: fc.constantFrom('alice.smith', 'Alice.Smith', 'bob.jones', 'new.user', 'other.user') }),
  fc.record({ kind: fc.constant('dids' as const), value: fc.constantFrom('[]', '["+61290000001"]', '["+61290000099"]', '["+61290000098", "+61290000011"]') }),
  fc.record({ kind: fc.constant('extension' as const), value: fc.constantFrom('"1001"', '"1002"', '"1099"', null) }),
  fc.record({ kind: fc.constant('codecs' as const), value: fc.constantFrom('[ulaw]', '[alaw, ulaw]') }),
  fc.record({ kind: fc.constant('typology' as const), value: fc.constantFrom('phonebar', 'external') }),
  fc.record({ kind: fc.constant('broken' as const), value: fc.constant('') }),
  fc.record({ kind: fc.constant('delete' as const), value: fc.constant('') }),
  fc.record({ kind: fc.constant('restore' as const), value: fc.constant('') }),
);

function apply(original: string, current: string | undefined, e: { kind: string; value: string | null }): string | undefined {
  if (e.kind === 'delete') return undefined;
  if (e.kind === 'restore') return original;
  let text = current ?? original;
  const set = (key: string, value: string | null, indent = '') => {
    const re = new RegExp(`^${indent}${key}: .*$\\n?`, 'm');
    const line = value === null ? '' : `${indent}${key}: ${value}\n`;
    text = re.test(text) ? text.replace(re, line) : indent ? text.replace(/^voice:\n/m, `voice:\n${line}`) : text + line;
  };
  if (e.kind === 'username') set('username', e.value);
  if (e.kind === 'dids') set('dids', e.value);
  if (e.kind === 'extension') set('extension', e.value);
  if (e.kind === 'typology') set('typology', e.value);
  if (e.kind === 'codecs') set('codecs', e.value, '  ');
  if (e.kind === 'broken') set('id', '"not a number"');
  return text;
}

const summary = (r: LoadResult) => ({ issues: r.issues, agents: r.store?.agents });

describe('YamlStore.reloadFile', () => {
  it('gives what a fresh load of the same files gives, after any sequence of edits', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom(...FILES), edit), { minLength: 1, maxLength: 12 }), fc.constantFrom('pjsip', 'both'), async (steps, backend) => {
      const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-incremental-'));
      temps.push(dir);
      cpSync(FIXTURE, dir, { recursive: true });
      const settingsFile = path.join(dir, 'switchboard.yaml');
      writeFileSync(settingsFile, readFileSync(settingsFile, 'utf8').replace(/^backend: .*$/m, `backend: ${backend}`));
      const source = new YamlStore(dir);
      await source.loadAll();
      for (const [name, e] of steps) {
        const file = path.join(dir, 'agents', name);
        const next = apply(readFileSync(path.join(FIXTURE, 'agents', name), 'utf8'), existsSync(file) ? readFileSync(file, 'utf8') : undefined, e);
        if (next === undefined) {
          if (existsSync(file)) unlinkSync(file);
        } else writeFileSync(file, next);
        const incremental = await source.reloadFile(file);
        const fresh = await new YamlStore(dir).loadAll();
        expect(summary(incremental), `${name} ${e.kind} ${e.value}`).toEqual(summary(fresh));
      }
      rmSync(dir, { recursive: true, force: true });
    }), { numRuns: 60 });
  }, 60_000);

  it('keeps every unchanged agent object and replaces only the edited one', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-incremental-'));
    temps.push(dir);
    cpSync(FIXTURE, dir, { recursive: true });
    const source = new YamlStore(dir);
    const before = (await source.loadAll()).store!.agents;
    const file = path.join(dir, 'agents', '1007-grace.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('lastName: Lee', 'lastName: Lee-Park'));
    const after = (await source.reloadFile(file)).store!.agents;
    expect(after).toHaveLength(before.length);
    after.forEach((a, i) => (a.id === '1007' ? expect(a).not.toBe(before[i]) : expect(a).toBe(before[i])));
    expect(after.find((a) => a.id === '1007')!.lastName).toBe('Lee-Park');
  });
});

describe('loadStore (a store read once)', () => {
  /** Issues and agents with their keys in order, as the CLI would print them. */
  const exact = (r: LoadResult) => JSON.stringify({ issues: r.issues, agents: r.store?.agents ?? null });

  it('gives exactly what YamlStore.loadAll gives: fixtures, a store with errors, generated stores with assigned extensions', async () => {
    const generated = mkdtempSync(path.join(tmpdir(), 'switchboard-once-'));
    temps.push(generated);
    await generateStore(generated, 400, 7);
    for (const dir of [FIXTURE, path.join(ROOT, 'fixtures', 'bad-store'), generated]) {
      const plain = await new YamlStore(dir).loadAll();
      expect(exact((await loadStore(dir)) as LoadResult), dir).toBe(exact(plain));
      if (dir === generated) {
        // With saved assignments (some no longer free or in range) as well.
        const source = new YamlStore(dir);
        await source.saveAssignments((await source.loadAll()).store!);
        const settings = path.join(dir, 'switchboard.yaml');
        writeFileSync(settings, readFileSync(settings, 'utf8').replace(/to: "\d+"/, 'to: "100420"'));
        expect(exact((await loadStore(dir)) as LoadResult)).toBe(exact(await new YamlStore(dir).loadAll()));
      }
    }
  });
});
