import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';

/** `UPDATE_GOLDEN=1 npx vitest run test/render.test.ts` rewrites golden files; anything else compares. */
export const UPDATING_GOLDEN = process.env['UPDATE_GOLDEN'] === '1';

/**
 * Compares rendered files with the golden copies in `dir`, byte for byte: the same file names (no
 * missing, no extra) and the same bytes. With UPDATE_GOLDEN=1 it rewrites `dir` instead (removing
 * golden files the renderer no longer produces), so goldens change only on purpose.
 */
export function expectGolden(dir: string, files: ReadonlyMap<string, string>): void {
  if (UPDATING_GOLDEN) {
    mkdirSync(dir, { recursive: true });
    for (const name of readdirSync(dir)) if (!files.has(name)) rmSync(path.join(dir, name));
    for (const [name, text] of files) writeFileSync(path.join(dir, name), text, 'utf8');
    return;
  }
  expect(existsSync(dir), `golden directory ${dir} is missing: run UPDATE_GOLDEN=1 npx vitest run test/render.test.ts`).toBe(true);
  expect([...files.keys()].sort(), `files in ${dir}`).toEqual(readdirSync(dir).sort());
  for (const [name, text] of files) {
    const golden = readFileSync(path.join(dir, name));
    // The string comparison gives a readable diff; the byte comparison catches encoding/line-ending drift.
    expect(text, `${dir}/${name} differs from the golden file`).toBe(golden.toString('utf8'));
    expect(Buffer.compare(Buffer.from(text, 'utf8'), golden), `${dir}/${name} bytes`).toBe(0);
  }
}
