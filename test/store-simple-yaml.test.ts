/** The fast agent-file reader (store/simple-yaml.ts) against the `yaml` package, as bench/verify-yaml.ts checks it. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { verifyStores } from '../src/bench/verify-yaml.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('parseSimpleYaml', () => {
  it('gives what `yaml` gives (data, key order, scalar sources, validation issues) for the fixtures and their mutants', () => {
    const t = verifyStores([path.join(ROOT, 'fixtures', 'store'), path.join(ROOT, 'fixtures', 'bad-store')], 30);
    expect(t.mismatches.slice(0, 3)).toEqual([]);
    // Enough inputs take the fast reader for the comparison to mean something, and some do not.
    expect(t.fast).toBeGreaterThan(t.inputs / 4);
    expect(t.fast).toBeLessThan(t.inputs);
  }, 60_000);
});
