/** Render-only mode (no AMI configured): files are written, no reload is sent, and each report
 * names what changed since the last write (not every agent as "added" each time). */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Applier } from '../src/apply/index.js';
import { silentLogger } from '../src/log.js';
import { Renderer } from '../src/render/render.js';
import { loadTemplates } from '../src/render/templates.js';
import { FIXTURE_STORE, copyDir, editAgent, load, tempDir } from './helpers/apply-env.js';

const roots: string[] = [];
afterEach(async () => {
  for (const r of roots.splice(0)) await fs.rm(r, { recursive: true, force: true });
});

/** A copy of the fixture store and an Applier without AMI writing into a fresh directory. */
async function renderOnly(): Promise<{ storeDir: string; applier: Applier }> {
  const root = await tempDir('sb-render-only-');
  roots.push(root);
  const storeDir = path.join(root, 'store');
  await copyDir(FIXTURE_STORE, storeDir);
  return { storeDir, applier: new Applier({ renderer: new Renderer(loadTemplates()), outDir: path.join(root, 'out'), logger: silentLogger() }) };
}

describe('apply without AMI', () => {
  it('reports only the agents changed since the last write, and sends no reload', async () => {
    const { storeDir, applier } = await renderOnly();
    const first = await applier.apply(await load(storeDir));
    expect(first.reloadSent).toBe(false);
    expect(first.agents.added).toHaveLength(13);

    const again = await applier.apply(await load(storeDir));
    expect(again.changedFiles).toEqual([]);
    expect(again.agents).toEqual({ added: [], changed: [], removed: [] });

    await editAgent(storeDir, '1001-alice.yaml', 'codecs: [ulaw, alaw]', 'codecs: [alaw]');
    const edited = await applier.apply(await load(storeDir));
    expect(edited.agents).toEqual({ added: [], changed: ['alice.smith'], removed: [] });
    expect(edited.changedFiles).toEqual(['pjsip_switchboard.conf']);
    expect(edited.modules).toEqual([]);
  });

  it('restore compares with what was last written too', async () => {
    const { storeDir, applier } = await renderOnly();
    await applier.apply(await load(storeDir));
    await editAgent(storeDir, '1001-alice.yaml', 'codecs: [ulaw, alaw]', 'codecs: [alaw]');
    const edited = await applier.apply(await load(storeDir));
    const back = await applier.restore(edited.generation);
    expect(back.changedFiles).toEqual(['pjsip_switchboard.conf']);
    expect(back.agents).toEqual({ added: [], changed: ['alice.smith'], removed: [] });
  });
});
