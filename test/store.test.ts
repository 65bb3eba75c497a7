import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ASSIGNMENTS_FILE, readAssignments } from '../src/store/assignments.js';
import { YamlStore, isStoreFile, loadStore } from '../src/store/yaml-store.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURE = path.join(ROOT, 'fixtures', 'store');

const temps: string[] = [];
afterEach(() => {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh store directory with the given settings and agent files. */
function makeStore(settings: string, agents: Record<string, string> = {}): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-store-'));
  temps.push(dir);
  mkdirSync(path.join(dir, 'agents'));
  writeFileSync(path.join(dir, 'switchboard.yaml'), settings);
  for (const [name, text] of Object.entries(agents)) writeFileSync(path.join(dir, 'agents', name), text);
  return dir;
}
function agentYaml(id: number, extra = ''): string {
  return `id: ${id}
username: agent${id}
firstName: Agent
lastName: Number ${id}
typology: phonebar
password: "Agent#Pass${id}"
voicemail:
  enabled: false
${extra}`;
}
const RANGE = (from: string, to: string) => `extensions:\n  from: "${from}"\n  to: "${to}"\n`;
const extOf = (r: Awaited<ReturnType<YamlStore['loadAll']>>) =>
  Object.fromEntries(r.store!.agents.map((a) => [a.id, `${a.extension}${a.extensionAutoAssigned ? '*' : ''}`]));

describe('extension auto-assignment', () => {
  it('assigns the lowest free numbers in id order, skipping explicit extensions', async () => {
    const dir = makeStore(RANGE('1000', '1999'), {
      'a.yaml': agentYaml(30), 'b.yaml': agentYaml(10), 'c.yaml': agentYaml(20, 'extension: "1001"\n'),
    });
    const r = await new YamlStore(dir).loadAll();
    expect(r.issues).toEqual([]);
    expect(extOf(r)).toEqual({ 10: '1000*', 20: '1001', 30: '1002*' });
  });

  it('keeps saved assignments when an agent with a lower id arrives', async () => {
    const dir = makeStore(RANGE('1000', '1999'), { '10.yaml': agentYaml(10), '20.yaml': agentYaml(20), '30.yaml': agentYaml(30) });
    const source = new YamlStore(dir);
    const first = await source.loadAll();
    expect(extOf(first)).toEqual({ 10: '1000*', 20: '1001*', 30: '1002*' });
    await source.saveAssignments(first.store!);
    expect(JSON.parse(readFileSync(path.join(dir, ASSIGNMENTS_FILE), 'utf8')).assignments).toEqual({ 10: '1000', 20: '1001', 30: '1002' });

    writeFileSync(path.join(dir, 'agents', '5.yaml'), agentYaml(5));
    const second = await source.reloadFile(path.join(dir, 'agents', '5.yaml'));
    expect(extOf(second)).toEqual({ 5: '1003*', 10: '1000*', 20: '1001*', 30: '1002*' });
    // A new process reads the same from .extensions.json.
    expect(extOf(await new YamlStore(dir).loadAll())).toEqual({ 5: '1003*', 10: '1000*', 20: '1001*', 30: '1002*' });

    // Without the saved file the numbers would have moved: that is what the file is for.
    unlinkSync(path.join(dir, ASSIGNMENTS_FILE));
    expect(extOf(await new YamlStore(dir).loadAll())).toEqual({ 5: '1000*', 10: '1001*', 20: '1002*', 30: '1003*' });
  });

  it('saving is a no-op when nothing changed', async () => {
    const dir = makeStore(RANGE('1000', '1999'), { '10.yaml': agentYaml(10) });
    const source = new YamlStore(dir);
    const r = await source.loadAll();
    await source.saveAssignments(r.store!);
    const file = path.join(dir, ASSIGNMENTS_FILE);
    writeFileSync(file, readFileSync(file, 'utf8').replace('Do not edit.', 'Do not edit!'));
    await source.saveAssignments(r.store!);
    expect(readFileSync(file, 'utf8')).toContain('Do not edit!');
  });

  it('a removed agent frees its number for the next one', async () => {
    const dir = makeStore(RANGE('1000', '1999'), { '10.yaml': agentYaml(10), '20.yaml': agentYaml(20), '30.yaml': agentYaml(30) });
    const source = new YamlStore(dir);
    await source.saveAssignments((await source.loadAll()).store!);
    unlinkSync(path.join(dir, 'agents', '20.yaml'));
    const removed = await source.reloadFile(path.join(dir, 'agents', '20.yaml'));
    expect(extOf(removed)).toEqual({ 10: '1000*', 30: '1002*' });
    await source.saveAssignments(removed.store!);
    expect([...(await readAssignments(dir))]).toEqual([['10', '1000'], ['30', '1002']]);
    writeFileSync(path.join(dir, 'agents', '40.yaml'), agentYaml(40));
    expect(extOf(await source.reloadFile(path.join(dir, 'agents', '40.yaml')))).toEqual({ 10: '1000*', 30: '1002*', 40: '1001*' });
  });

  it('moves a saved number that an explicit extension has since taken, and one that left the range', async () => {
    const dir = makeStore(RANGE('1000', '1999'), { '10.yaml': agentYaml(10), '20.yaml': agentYaml(20) });
    writeFileSync(path.join(dir, ASSIGNMENTS_FILE), JSON.stringify({ assignments: { 10: '1005', 20: '2500' } }));
    const source = new YamlStore(dir);
    const first = await source.loadAll();
    expect(extOf(first)).toEqual({ 10: '1005*', 20: '1000*' });
    await source.saveAssignments(first.store!);
    writeFileSync(path.join(dir, 'agents', '30.yaml'), agentYaml(30, 'extension: "1005"\n'));
    expect(extOf(await source.reloadFile(path.join(dir, 'agents', '30.yaml')))).toEqual({ 10: '1001*', 20: '1000*', 30: '1005' });
  });

  it('reports EXTENSION_RANGE_FULL for the agents that do not fit', async () => {
    const dir = makeStore(RANGE('100', '101'), {
      '1.yaml': agentYaml(1), '2.yaml': agentYaml(2, 'extension: "101"\n'), '3.yaml': agentYaml(3), '4.yaml': agentYaml(4),
    });
    const r = await new YamlStore(dir).loadAll();
    expect(r.store).toBeUndefined();
    expect(r.issues.map((i) => i.message)).toEqual([
      'agents/3.yaml: error: agent "3 agent3", field extension: no free extension is left in the range 100-101. Fix: widen extensions.from/to in switchboard.yaml, or give this agent an extension',
      'agents/4.yaml: error: agent "4 agent4", field extension: no free extension is left in the range 100-101. Fix: widen extensions.from/to in switchboard.yaml, or give this agent an extension',
    ]);
  });

  it('pads numbers of a range with leading zeros', async () => {
    const dir = makeStore(RANGE('0098', '0101'), { '1.yaml': agentYaml(1, 'extension: "0098"\n'), '2.yaml': agentYaml(2), '3.yaml': agentYaml(3) });
    expect(extOf(await new YamlStore(dir).loadAll())).toEqual({ 1: '0098', 2: '0099*', 3: '0100*' });
  });

  it('ignores a corrupt or hand-edited assignments file', async () => {
    const dir = makeStore(RANGE('1000', '1999'), { '10.yaml': agentYaml(10) });
    writeFileSync(path.join(dir, ASSIGNMENTS_FILE), '{ not json');
    expect(await readAssignments(dir)).toEqual(new Map());
    writeFileSync(path.join(dir, ASSIGNMENTS_FILE), JSON.stringify({ assignments: { 10: 1500, x: '1', 20: '1501', 30: '15a' } }));
    expect([...(await readAssignments(dir))]).toEqual([['20', '1501']]);
  });
});

describe('YamlStore.reloadFile', () => {
  async function copyFixture(): Promise<{ dir: string; source: YamlStore }> {
    const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-store-'));
    temps.push(dir);
    cpSync(FIXTURE, dir, { recursive: true });
    const source = new YamlStore(dir);
    const r = await source.loadAll();
    expect(r.store!.agents).toHaveLength(13);
    return { dir, source };
  }

  it('an edited file changes that agent only (the others stay the very same objects)', async () => {
    const { dir, source } = await copyFixture();
    const before = (await source.reloadFile(path.join(dir, 'agents', '1001-alice.yaml'))).store!;
    const file = path.join(dir, 'agents', '1002-bob.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('lastName: Jones', 'lastName: Jones-Smith'));
    const after = (await source.reloadFile(file)).store!;
    const bob = after.agents.find((a) => a.id === '1002')!;
    expect(bob.displayName).toBe('Bob Jones-Smith');
    for (const a of after.agents) {
      const old = before.agents.find((b) => b.id === a.id)!;
      if (a.id === '1002') expect(a).not.toBe(old);
      else expect(a, a.id).toBe(old);
    }
    expect(after.settings).toBe(before.settings);
  });

  it('a deleted file removes the agent; a new file adds one', async () => {
    const { dir, source } = await copyFixture();
    unlinkSync(path.join(dir, 'agents', '1008-hugo.yaml'));
    const removed = await source.reloadFile(path.join(dir, 'agents', '1008-hugo.yaml'));
    expect(removed.store!.agents.map((a) => a.username)).not.toContain('hugo');
    expect(removed.store!.agents).toHaveLength(12);
    const added = path.join(dir, 'agents', 'zz-new.yml');
    writeFileSync(added, agentYaml(2000));
    const r = await source.reloadFile(added);
    expect(r.store!.agents.at(-1)).toMatchObject({ id: '2000', username: 'agent2000', file: 'agents/zz-new.yml', extension: '1008', extensionAutoAssigned: true });
    // 1008 was hugo's: the lowest free number once hugo left (1000, 1003 and 1007 are assigned, the rest explicit).
  });

  it('a half-written file gives issues and no store; finishing it brings the store back', async () => {
    const { dir, source } = await copyFixture();
    const file = path.join(dir, 'agents', '1004-dmitri.yaml');
    const full = readFileSync(file, 'utf8');
    writeFileSync(file, full.slice(0, full.indexOf('  codecs: [opus') + 14));
    const broken = await source.reloadFile(file);
    expect(broken.store).toBeUndefined();
    expect(broken.issues.filter((i) => i.severity === 'error').map((i) => [i.code, i.file, i.line])).toEqual([['YAML_SYNTAX', 'agents/1004-dmitri.yaml', 14]]);
    // Valid YAML but a missing field is an issue too.
    writeFileSync(file, full.replace(/^password: .*\n/m, ''));
    const missing = await source.reloadFile(file);
    expect(missing.store).toBeUndefined();
    expect(missing.issues.filter((i) => i.severity === 'error').map((i) => [i.code, i.field])).toEqual([['FIELD_REQUIRED', 'password']]);
    writeFileSync(file, full);
    const fixed = await source.reloadFile(file);
    expect(fixed.store!.agents).toHaveLength(13);
  });

  it('a new duplicate is reported against the new file, naming the agent that had it first', async () => {
    const { dir, source } = await copyFixture();
    const file = path.join(dir, 'agents', '9999-copy.yaml');
    writeFileSync(file, readFileSync(path.join(dir, 'agents', '1001-alice.yaml'), 'utf8').replace('id: 1001', 'id: 9999').replace('username: alice.smith', 'username: alice2'));
    const r = await source.reloadFile(file);
    expect(r.store).toBeUndefined();
    const errors = r.issues.filter((i) => i.severity === 'error');
    expect(errors.map((i) => [i.code, i.file, i.value])).toEqual([
      ['DUPLICATE_EXTENSION', 'agents/9999-copy.yaml', '1001'],
      ['DUPLICATE_DID', 'agents/9999-copy.yaml', '+61290000001'],
      ['DUPLICATE_DID', 'agents/9999-copy.yaml', '+61290000011'],
    ]);
    for (const e of errors) expect(e.message).toContain('already used by agent "1001 alice.smith" in agents/1001-alice.yaml');
  });

  it('a change to switchboard.yaml re-validates every agent', async () => {
    const { dir, source } = await copyFixture();
    const settings = path.join(dir, 'switchboard.yaml');
    writeFileSync(settings, readFileSync(settings, 'utf8').replace('  context: from-sip\n', '  context: agents-in\n'));
    const r = await source.reloadFile(settings);
    expect(r.store!.agents.find((a) => a.username === 'alice.smith')!.voice.context).toBe('agents-in');
    expect(r.store!.agents.find((a) => a.username === 'ines')!.voice.context).toBe('from-mobile');
    // Removing the ws transport makes hugo (transports: [ws, udp]) invalid.
    writeFileSync(settings, readFileSync(settings, 'utf8').replace('  - protocol: ws\n    bind: "0.0.0.0:5066"\n', ''));
    const noWs = await source.reloadFile(settings);
    expect(noWs.store).toBeUndefined();
    expect(noWs.issues.filter((i) => i.severity === 'error').map((i) => [i.code, i.file])).toEqual([['TRANSPORT_UNDEFINED', 'agents/1008-hugo.yaml']]);
  });

  it('files that are not part of the store are ignored', async () => {
    const { dir, source } = await copyFixture();
    for (const name of ['notes.txt', '.1001-alice.yaml.swp', '.hidden.yaml']) {
      const f = path.join(dir, 'agents', name);
      writeFileSync(f, '{{{ not yaml');
      expect((await source.reloadFile(f)).store!.agents).toHaveLength(13);
    }
    expect(isStoreFile(dir, path.join(dir, 'agents', 'x.yaml'))).toBe(true);
    expect(isStoreFile(dir, path.join(dir, 'agents', 'x.yml'))).toBe(true);
    expect(isStoreFile(dir, path.join(dir, 'switchboard.yaml'))).toBe(true);
    expect(isStoreFile(dir, path.join(dir, 'agents', 'sub', 'x.yaml'))).toBe(false);
    expect(isStoreFile(dir, path.join(dir, 'agents', '.x.yaml'))).toBe(false);
    expect(isStoreFile(dir, path.join(dir, 'other.yaml'))).toBe(false);
  });

  it('reloadFile before loadAll loads everything', async () => {
    const source = new YamlStore(FIXTURE);
    const r = await source.reloadFile(path.join(FIXTURE, 'agents', '1001-alice.yaml'));
    expect(r.store!.agents).toHaveLength(13);
  });

  it('a missing store directory is one STORE_MISSING issue', async () => {
    const r = await loadStore(path.join(tmpdir(), 'switchboard-no-such-store'));
    expect(r.store).toBeUndefined();
    expect(r.issues.map((i) => i.code)).toEqual(['STORE_MISSING']);
    expect(existsSync(path.join(tmpdir(), 'switchboard-no-such-store'))).toBe(false);
  });
});
