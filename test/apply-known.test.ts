/**
 * The Applier's memory of what it read and wrote (src/apply/known.ts), generations made by hard
 * link (src/apply/generations.ts), and the transport scan (src/apply/conf.ts): each shortcut must
 * give exactly what reading everything back gave.
 */
import { EXIT, exitCodeForError } from '../src/cli/exit-codes.js';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Applier } from '../src/apply/index.js';
import { parseConf, transportRestartReasons, transportsOf, valueOf } from '../src/apply/conf.js';
import { OUTPUT_FILES } from '../src/render/render.js';
import { editAgent, load, readFiles, setupEnv, type Env } from './helpers/apply-env.js';

const PJ = OUTPUT_FILES.pjsip;
const VM = OUTPUT_FILES.voicemail;
const EXT = OUTPUT_FILES.extensions;

let env: Env | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

/** How often the applier read a managed file from disk vs used what it remembered. */
function knownStats(a: Applier): { reads: number; hits: number } {
  return { ...(a as unknown as { known: { stats: { reads: number; hits: number } } }).known.stats };
}

async function codecs(e: Env, to: string): Promise<void> {
  const p = path.join(e.storeDir, 'agents', '1001-alice.yaml');
  const text = await fs.readFile(p, 'utf8');
  await fs.writeFile(p, text.replace(/codecs: \[[^\]]*\]/, `codecs: [${to}]`));
}

describe('Applier memory of its files', () => {
  it('a second apply reads no managed file back when nothing touched them', async () => {
    const e = (env = await setupEnv());
    await e.applier.apply(await load(e.storeDir));
    const before = knownStats(e.applier);
    await codecs(e, 'gsm');
    const r = await e.applier.apply(await load(e.storeDir));
    expect(r.changedFiles).toEqual([PJ]);
    const after = knownStats(e.applier);
    expect(after.reads).toBe(before.reads);
    expect(after.hits).toBeGreaterThan(before.hits);
  });

  it('a managed file rewritten in place behind its back (same size, old mtime put back) is read again and rewritten', async () => {
    const e = (env = await setupEnv());
    const store = await load(e.storeDir);
    await e.applier.apply(store);
    const file = path.join(e.outDir, EXT);
    const good = await fs.readFile(file);
    // A whole-second mtime (utimes can set it back exactly), taken in by one more apply.
    await fs.utimes(file, 1_700_000_000, 1_700_000_000);
    expect((await e.applier.apply(store)).changedFiles).toEqual([]);
    const st = await fs.stat(file);
    // Same length, different bytes, written into the same inode; then the mtime is set back.
    const bad = Buffer.from(good);
    bad[bad.length - 2] = bad[bad.length - 2] === 0x78 ? 0x79 : 0x78;
    const h = await fs.open(file, 'r+');
    await h.write(bad, 0, bad.length, 0);
    await h.close();
    await fs.utimes(file, 1_700_000_000, 1_700_000_000);
    const now = await fs.stat(file);
    expect([now.ino, now.size, now.mtimeMs]).toEqual([st.ino, st.size, st.mtimeMs]);

    const r = await e.applier.apply(store);
    expect(r.changedFiles).toEqual([EXT]);
    expect(r.modules).toEqual(['pbx_config.so']);
    expect(await fs.readFile(file)).toEqual(good);
    // The generation holds what was found, the foreign bytes.
    expect(await fs.readFile(path.join(e.stateDir, 'generations', r.generation, EXT))).toEqual(bad);
  });

  it('a file replaced or removed behind its back is noticed too', async () => {
    const e = (env = await setupEnv());
    const store = await load(e.storeDir);
    await e.applier.apply(store);
    const vm = path.join(e.outDir, VM);
    await fs.writeFile(`${vm}.new`, 'garbage\n');
    await fs.rename(`${vm}.new`, vm);
    await fs.rm(path.join(e.outDir, PJ));
    const r = await e.applier.apply(store);
    expect(r.changedFiles).toEqual([PJ, VM]);
    const fresh = await readFiles(e.outDir);
    const again = (env = await setupEnv());
    await again.applier.apply(await load(again.storeDir));
    expect(fresh).toEqual(await readFiles(again.outDir));
    await e.close();
  });

  it('a manifest removed or changed behind its back is read again (everything is reloaded and verified)', async () => {
    const e = (env = await setupEnv());
    const store = await load(e.storeDir);
    await e.applier.apply(store);
    expect((await e.applier.apply(store)).modules).toEqual([]);
    await fs.rm(path.join(e.stateDir, 'manifest.json'));
    const r = await e.applier.apply(store);
    expect(r.modules).toEqual(['res_pjsip.so', 'app_voicemail.so', 'pbx_config.so']);
    expect(r.verified).toBe(true);
    // A manifest naming other hashes: the files it disagrees with are reloaded.
    const m = JSON.parse(await fs.readFile(path.join(e.stateDir, 'manifest.json'), 'utf8')) as { files: Record<string, string> };
    m.files[VM] = 'f'.repeat(64);
    await fs.writeFile(path.join(e.stateDir, 'manifest.json'), JSON.stringify(m));
    expect((await e.applier.apply(store)).modules).toEqual(['app_voicemail.so']);
  });
});

describe('generations by hard link', () => {
  it('each generation holds the old content; files are links, never the live inode; restore gives the content back', async () => {
    const e = (env = await setupEnv());
    const gens = path.join(e.stateDir, 'generations');
    await e.applier.apply(await load(e.storeDir)); // v1
    const v1 = await readFiles(e.outDir);
    await codecs(e, 'gsm');
    const r2 = await e.applier.apply(await load(e.storeDir)); // v2: pjsip changes
    const v2 = await readFiles(e.outDir);
    await codecs(e, 'g722');
    const r3 = await e.applier.apply(await load(e.storeDir)); // v3
    await codecs(e, 'alaw');
    const r4 = await e.applier.apply(await load(e.storeDir)); // v4

    // Generation of v2 = the files of v1; of v3 = those of v2.
    for (const f of [PJ, VM, EXT]) {
      expect(await fs.readFile(path.join(gens, r2.generation, f))).toEqual(v1.get(f));
      expect(await fs.readFile(path.join(gens, r3.generation, f))).toEqual(v2.get(f));
    }
    const live = async (f: string) => (await fs.stat(path.join(e.outDir, f))).ino;
    const inGen = async (g: string, f: string) => (await fs.stat(path.join(gens, g, f))).ino;
    for (const g of [r2, r3, r4]) for (const f of [PJ, VM, EXT]) expect(await inGen(g.generation, f)).not.toBe(await live(f));
    // The unchanged files were copied once, then linked from that copy.
    expect(await inGen(r3.generation, VM)).toBe(await inGen(r2.generation, VM));
    expect(await inGen(r4.generation, EXT)).toBe(await inGen(r2.generation, EXT));
    // The replaced pjsip file is the old inode itself.
    expect((await fs.stat(path.join(gens, r3.generation, PJ))).nlink).toBe(1);
    // The manifest of the time is a file of the generation, not a copy in meta.json.
    const meta = JSON.parse(await fs.readFile(path.join(gens, r3.generation, 'meta.json'), 'utf8')) as Record<string, unknown>;
    expect(meta['manifest']).toBeUndefined();
    expect(meta['manifestFile']).toBe('manifest.json');

    // An in-place edit of a live file does not reach any generation.
    await fs.appendFile(path.join(e.outDir, EXT), '; edited in place\n');
    for (const g of [r2, r3, r4]) expect(await fs.readFile(path.join(gens, g.generation, EXT))).toEqual(v1.get(EXT));

    const back = await e.applier.restore(r3.generation);
    expect(await readFiles(e.outDir)).toEqual(v2);
    expect(back.verified).toBe(true);
    expect(back.agents.changed).toEqual(['alice.smith']);
    expect(e.asterisk.endpoint('alice.smith')?.fields.Allow).toBe('(gsm)');
  });

  it('a generation written before hard links (manifest inside meta.json) still restores and verifies', async () => {
    const e = (env = await setupEnv());
    const gens = path.join(e.stateDir, 'generations');
    await e.applier.apply(await load(e.storeDir));
    const v1 = await readFiles(e.outDir);
    await codecs(e, 'gsm');
    const r2 = await e.applier.apply(await load(e.storeDir));
    const dir = path.join(gens, r2.generation);
    const meta = JSON.parse(await fs.readFile(path.join(dir, 'meta.json'), 'utf8')) as Record<string, unknown>;
    meta['manifest'] = JSON.parse(await fs.readFile(path.join(dir, 'manifest.json'), 'utf8'));
    delete meta['manifestFile'];
    await fs.rm(path.join(dir, 'manifest.json'));
    await fs.writeFile(path.join(dir, 'meta.json'), JSON.stringify(meta));
    const back = await e.applier.restore(r2.generation);
    expect(await readFiles(e.outDir)).toEqual(v1);
    expect(back.verified).toBe(true);
    expect(back.agents.changed).toEqual(['alice.smith']);
  });

  it('a damaged generation is refused by name (its meta.json), touches nothing, and is left out of the list', async () => {
    const e = (env = await setupEnv());
    await e.applier.apply(await load(e.storeDir));
    await codecs(e, 'gsm');
    const r2 = await e.applier.apply(await load(e.storeDir));
    const before = await readFiles(e.outDir);
    const metaFile = path.join(e.stateDir, 'generations', r2.generation, 'meta.json');
    await fs.writeFile(metaFile, '{"id": "half-writ');
    await expect(e.applier.restore(r2.generation)).rejects.toMatchObject({ code: 'GENERATION_DAMAGED', message: expect.stringContaining(metaFile) as string });
    expect(exitCodeForError('GENERATION_DAMAGED')).toBe(EXIT.DATA);
    expect(await readFiles(e.outDir)).toEqual(before);
    expect((await e.applier.listGenerations()).map((g) => g.id)).not.toContain(r2.generation);
    await expect(e.applier.restore('20990101T000000-000Z-abcdef')).rejects.toMatchObject({ code: 'GENERATION_NOT_FOUND' });
  });

  it('a rolled-back apply leaves the files as they were, and the memory of them true', async () => {
    const e = (env = await setupEnv());
    await e.applier.apply(await load(e.storeDir));
    const v1 = await readFiles(e.outDir);
    e.asterisk.refuseOption('call_group');
    await editAgent(e.storeDir, '1001-alice.yaml', 'callGroup: "1,3-5"', 'callGroup: "2,7"');
    await expect(e.applier.apply(await load(e.storeDir))).rejects.toMatchObject({ code: 'APPLY_ROLLED_BACK' });
    expect(await readFiles(e.outDir)).toEqual(v1);
    e.asterisk.clearControls();
    // The put-back files are remembered as written: nothing read, nothing to write for v1's store.
    const before = knownStats(e.applier);
    await editAgent(e.storeDir, '1001-alice.yaml', 'callGroup: "2,7"', 'callGroup: "1,3-5"');
    const r = await e.applier.apply(await load(e.storeDir));
    expect(r.changedFiles).toEqual([]);
    expect(knownStats(e.applier).reads).toBe(before.reads);
    // And the edit itself goes through once Asterisk takes it.
    await editAgent(e.storeDir, '1001-alice.yaml', 'callGroup: "1,3-5"', 'callGroup: "2,7"');
    const r2 = await e.applier.apply(await load(e.storeDir));
    expect(r2.changedFiles).toEqual([PJ]);
    expect(e.asterisk.endpoint('alice.smith')?.fields.CallGroup).toBe('2, 7');
  });
});

describe('transportsOf: only the transport sections, as a full parse reads them', () => {
  /** The previous implementation: split at every section, keep those declaring a transport. */
  function slowTransports(text: string): Map<string, Map<string, string[]>> {
    const out = new Map<string, Map<string, string[]>>();
    const t = text.split(/^(?=\[)/m).filter((part) => /^[ \t]*type[ \t]*=[ \t]*transport\b/im.test(part)).join('');
    for (const s of parseConf(t).sections) {
      if (valueOf(s, 'type')?.toLowerCase() !== 'transport') continue;
      const entries = new Map<string, string[]>();
      for (const [k, v] of s.entries) if (k.toLowerCase() !== 'type') entries.set(k.toLowerCase(), [...(entries.get(k.toLowerCase()) ?? []), v]);
      out.set(s.name, entries);
    }
    return out;
  }

  const samples = [
    '',
    '; only a comment\n',
    '[transport-udp]\ntype = transport\nprotocol = udp\nbind = 0.0.0.0:5060\n',
    '; header\n[global]\ntype = global\n[t1]\n  Type=Transport\nbind = 0.0.0.0:5061\nbind = 0.0.0.0:5062\n[1001]\ntype = endpoint\ntransport = t1\n[t2](!)\ntype = transport ; c\nprotocol = tls\n',
    '[a]\ntype = endpoint\ntransport = transport-tls\n[b]\ntype = aor\n[tls]\nprotocol = tls\ntype = transport\n[c]\ntype = auth\n',
    '[x]\ntype = transports\n[y]\ntype = transport\nbind = 1\n[y]\ntype = transport\nbind = 2\n',
  ];

  it('gives what parsing every section gave, on hand-made files and the rendered fixtures', async () => {
    const e = (env = await setupEnv());
    await e.applier.apply(await load(e.storeDir));
    const rendered = await fs.readFile(path.join(e.outDir, PJ), 'utf8');
    expect(transportsOf(rendered).size).toBeGreaterThan(0);
    for (const text of [...samples, rendered]) expect(transportsOf(text)).toEqual(slowTransports(text));
  });

  it('reports changed and removed transports', () => {
    const before = '[t1]\ntype = transport\nbind = 0.0.0.0:5060\n[t2]\ntype = transport\nprotocol = tcp\n[1001]\ntype = endpoint\n';
    const after = '[1001]\ntype = endpoint\n[t1]\ntype = transport\nbind = 0.0.0.0:5070\n';
    expect(transportRestartReasons(before, after)).toEqual(['t1: bind changed', 't2: removed (Asterisk keeps its listener until restarted)']);
    expect(transportRestartReasons(before, before)).toEqual([]);
  });
});

describe('diffAgents', () => {
  it('names added, changed and removed agents, whatever their names (even Object.prototype keys)', async () => {
    const { diffAgents } = await import('../src/apply/manifest.js');
    const st = (id: string, d: string) => ({ id, digests: { pjsip: d } });
    const same = st('1', 'a');
    const before = { keep: same, changed: st('2', 'b'), constructor: st('3', 'c'), gone: st('4', 'd') };
    const after = { keep: same, changed: st('2', 'B'), toString: st('5', 'e'), hasOwnProperty: st('6', 'f') };
    expect(diffAgents(before, after)).toEqual({ added: ['hasOwnProperty', 'toString'], changed: ['changed'], removed: ['constructor', 'gone'] });
    expect(diffAgents(after, after)).toEqual({ added: [], changed: [], removed: [] });
  });
});

describe('writing while the generation is made', () => {
  it('a generation that cannot be made replaces no file and leaves no temp file; the next apply works', async () => {
    const e = (env = await setupEnv());
    await e.applier.apply(await load(e.storeDir));
    const v1 = await readFiles(e.outDir);
    const gens = path.join(e.stateDir, 'generations');
    await fs.rm(gens, { recursive: true });
    await fs.writeFile(gens, 'not a directory');
    await codecs(e, 'gsm');
    await expect(e.applier.apply(await load(e.storeDir))).rejects.toThrow();
    expect(await readFiles(e.outDir)).toEqual(v1);
    expect((await fs.readdir(e.outDir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    await fs.rm(gens);
    const r = await e.applier.apply(await load(e.storeDir));
    expect(r.changedFiles).toEqual([PJ]);
    expect(r.verified).toBe(true);
  });
});
