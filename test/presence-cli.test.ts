/**
 * `switchboard presence …` end to end: runs the built CLI (`npm test` builds dist first; by hand:
 * `npx tsc -p tsconfig.build.json`) against a temp data directory and the sample store, and a
 * PresenceService in this process where a running daemon is needed.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { loadStore } from '../src/store/yaml-store.js';
import { PresenceService } from '../src/presence/index.js';
import type { Store } from '../src/model/types.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const STORE = join(ROOT, 'fixtures', 'store');
const MIN = 60_000;

interface Result { code: number; stdout: string; stderr: string }

function run(args: string[], env: Record<string, string> = {}, cwd = dir): Promise<Result> {
  return new Promise((resolve) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
    if (!('SWITCHBOARD_DATA_DIR' in env)) delete childEnv.SWITCHBOARD_DATA_DIR;
    execFile(process.execPath, [CLI, ...args], { env: childEnv, cwd, timeout: 15_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

let dir: string;
let data: string;
let store: Store;
const services: PresenceService[] = [];

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'commands', 'presence.js'))) {
    throw new Error('dist/ is missing the presence command: run `npx tsc -p tsconfig.build.json` (npm test does it)');
  }
  const r = await loadStore(STORE);
  store = r.store!;
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'presence-cli-'));
  data = join(dir, 'data');
});

afterEach(async () => {
  for (const s of services.splice(0)) await s.stop();
  rmSync(dir, { recursive: true, force: true });
});

function manualDoc(): { revision: number; agents: Record<string, { state: string; reason?: string; until?: string; since: string; by?: string }> } {
  return JSON.parse(readFileSync(join(data, 'presence.json'), 'utf8'));
}

async function startDaemon(): Promise<PresenceService> {
  const svc = new PresenceService({ stateFile: join(data, 'presence.json'), logger: silentLogger(), pollMs: 100 });
  services.push(svc);
  svc.setAgents(store);
  await svc.start();
  return svc;
}

describe('switchboard presence set/list without a running daemon', () => {
  it('set paused --reason Lunch --for 30m writes presence.json; list shows it and says live sources are unknown', async () => {
    const before = Date.now();
    const set = await run(['presence', 'set', 'alice.smith', 'paused', '--reason', 'Lunch', '--for', '30m', '--store', STORE, '--data', data]);
    const after = Date.now();
    expect(set.stderr).toBe('');
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/^alice\.smith \(1001\): paused \(Lunch\) until \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(in 30m\)$/m);
    expect(set.stdout).toContain('the switchboard daemon is not running');

    const entry = manualDoc().agents['1001']!;
    expect(entry).toMatchObject({ state: 'paused', reason: 'Lunch', by: 'cli' });
    const until = Date.parse(entry.until!);
    expect(until).toBeGreaterThanOrEqual(before + 30 * MIN);
    expect(until).toBeLessThanOrEqual(after + 30 * MIN);

    const list = await run(['presence', 'list', '--data', data, '--json']);
    expect(list.code, list.stderr).toBe(0);
    const json = JSON.parse(list.stdout);
    expect(json).toMatchObject({ live: false, daemon: { running: false } });
    expect(json.agents).toEqual([
      expect.objectContaining({ agentId: '1001', username: 'alice.smith', state: 'paused', reason: 'Lunch', until: entry.until, since: entry.since, detail: expect.objectContaining({ registered: 'unknown', pausedBy: 'switchboard' }) }),
    ]);

    const human = await run(['presence', 'list', '--data', data]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain('the switchboard daemon is not running');
    expect(human.stdout).toContain('live sources (registration, queue pauses, calls) are unknown');
    expect(human.stdout).toMatch(/^1001\s+alice\.smith\s+paused\s+Lunch\s+unknown\s+/m);
  });

  it('list --store shows every agent, disabled logins as logged out; set available clears the pause', async () => {
    const training = await run(['presence', 'set', '1001', 'paused', '--reason', 'Training', '--store', STORE, '--data', data]);
    expect(training.code, training.stderr).toBe(0);
    let json = JSON.parse((await run(['presence', 'list', '--data', data, '--store', STORE, '--json'])).stdout);
    expect(json.agents).toHaveLength(store.agents.length);
    const byId = (id: string) => json.agents.find((a: { agentId: string }) => a.agentId === id);
    expect(byId('1001')).toMatchObject({ state: 'paused', reason: 'Training' });
    expect(byId('1001').until).toBeUndefined();
    expect(byId('1006')).toMatchObject({ username: 'farid', state: 'logged out' });
    expect(byId('1002')).toMatchObject({ state: 'available' });

    const avail = await run(['presence', 'set', 'alice.smith', 'available', '--store', STORE, '--data', data]);
    expect(avail.code, avail.stderr).toBe(0);
    expect(avail.stdout).toContain('alice.smith (1001): available');
    expect(manualDoc().agents['1001']).toMatchObject({ state: 'available' });
    json = JSON.parse((await run(['presence', 'list', '--data', data, '--store', STORE, '--json'])).stdout);
    expect(byId('1001')).toMatchObject({ state: 'available' });
  });

  it('takes the data directory from SWITCHBOARD_DATA_DIR when --data is not given', async () => {
    const set = await run(['presence', 'set', 'bob_jones', 'paused', '--store', STORE], { SWITCHBOARD_DATA_DIR: data });
    expect(set.code, set.stderr).toBe(0);
    expect(manualDoc().agents['1002']).toMatchObject({ state: 'paused' });
    expect(existsSync(join(dir, 'var'))).toBe(false);
    const list = JSON.parse((await run(['presence', 'list', '--json'], { SWITCHBOARD_DATA_DIR: data })).stdout);
    expect(list.agents.map((a: { agentId: string }) => a.agentId)).toEqual(['1002']);
  });

  it('notes that an agent whose login is disabled stays logged out', async () => {
    const set = await run(['presence', 'set', 'farid', 'paused', '--store', STORE, '--data', data]);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('login is disabled in the store');
  });

  it('a snapshot left by a daemon that died is not taken for a running daemon', async () => {
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => dead.on('exit', r));
    const svc = await startDaemon();
    await svc.stop();
    // Make the snapshot look as if the daemon had crashed: no clean stop, and its pid is gone.
    const file = join(data, 'presence-status.json');
    const { stoppedAt: _stopped, ...snap } = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...snap, pid: dead.pid }));
    const list = await run(['presence', 'list', '--data', data]);
    expect(list.stdout).toContain('the switchboard daemon is not running');
  });
});

describe('switchboard presence: errors', () => {
  it('rejects an unknown agent with a clear message, exit 2, nothing written', async () => {
    const r = await run(['presence', 'set', 'zed', 'paused', '--store', STORE, '--data', data]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('agent "zed" is not in the store');
    expect(existsSync(join(data, 'presence.json'))).toBe(false);
  });

  it.each([
    ['30', 'has no unit'],
    ['1x', 'is not a duration'],
    ['0m', 'must be longer than zero'],
    ['8d', 'is longer than the 7-day maximum'],
  ])('rejects --for %s (%s), exit 2, nothing written', async (value, why) => {
    const r = await run(['presence', 'set', 'alice.smith', 'paused', '--for', value, '--store', STORE, '--data', data]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`duration "${value}" ${why}`);
    expect(r.stderr).toContain('30m, 1h30m');
    expect(existsSync(join(data, 'presence.json'))).toBe(false);
  });

  it('refuses states that come from Asterisk, --for with available, a missing --store and a multi-line reason', async () => {
    const busy = await run(['presence', 'set', 'alice.smith', 'busy', '--store', STORE, '--data', data]);
    expect(busy.code, busy.stderr).toBe(2);
    expect(busy.stderr).toMatch(/Choices: "paused", "available"/);
    const forAvail = await run(['presence', 'set', 'alice.smith', 'available', '--for', '30m', '--store', STORE, '--data', data]);
    expect(forAvail.code, forAvail.stderr).toBe(2);
    expect(forAvail.stderr).toContain('only go with "paused"');
    const noStore = await run(['presence', 'set', 'alice.smith', 'paused', '--data', data]);
    expect(noStore.code, noStore.stderr).toBe(2);
    expect(noStore.stderr).toContain('--store');
    const twoLines = await run(['presence', 'set', 'alice.smith', 'paused', '--reason', 'Lunch\nEvent: Fake', '--store', STORE, '--data', data]);
    expect(twoLines.code, twoLines.stderr).toBe(2);
    expect(twoLines.stderr).toContain('one line');
    expect(existsSync(join(data, 'presence.json'))).toBe(false);
  });

  it('reports a corrupt presence.json instead of overwriting it', async () => {
    const { mkdirSync } = await import('node:fs');
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, 'presence.json'), '{ not json');
    const list = await run(['presence', 'list', '--data', data]);
    expect(list.code, list.stderr).not.toBe(0);
    expect(list.stderr).toContain('presence.json is not valid JSON');
    const set = await run(['presence', 'set', 'alice.smith', 'paused', '--store', STORE, '--data', data]);
    expect(set.code, set.stderr).not.toBe(0);
    expect(readFileSync(join(data, 'presence.json'), 'utf8')).toBe('{ not json');
  });

  it('has examples in --help', async () => {
    const r = await run(['presence', 'set', '--help']);
    expect(r.code, r.stderr).toBe(0);
    // yargs wraps the example over two lines, next to its description.
    expect(r.stdout).toContain('presence set alice.smith paused --reason');
    expect(r.stdout).toContain('Lunch --for 30m');
    const list = await run(['presence', 'list', '--help']);
    expect(list.stdout).toContain('presence list --data /var/lib/switchboard');
    expect(r.stdout).toContain('SWITCHBOARD_DATA_DIR');
  });
});

describe('switchboard presence with a running daemon', () => {
  it('set → the daemon applies it (fs.watch) and confirms; list shows live states; after stop, not running', async () => {
    const svc = await startDaemon();
    svc.onAriEvent({ type: 'DeviceStateChanged', application: 'switchboard', device_state: { name: 'PJSIP/bob_jones', state: 'INUSE' } });
    svc.onAriEvent({ type: 'EndpointStateChange', application: 'switchboard', endpoint: { technology: 'PJSIP', resource: 'chiara.rossi', state: 'offline', channel_ids: [] } });

    // --wait: generous under a loaded CI machine; it returns as soon as the daemon confirms.
    const set = await run(['presence', 'set', 'alice.smith', 'paused', '--reason', 'Lunch', '--for', '30m', '--wait', '10000', '--store', STORE, '--data', data]);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('the running daemon applied it: alice.smith is now paused (Lunch)');
    expect(svc.get('alice.smith')).toMatchObject({ state: 'paused', reason: 'Lunch', detail: { pausedBy: 'switchboard' } });

    const json = JSON.parse((await run(['presence', 'list', '--data', data, '--json'])).stdout);
    expect(json).toMatchObject({ live: true, daemon: { running: true, pid: process.pid } });
    expect(json.daemon.appliedRevision).toBe(json.daemon.fileRevision);
    const byId = (id: string) => json.agents.find((a: { agentId: string }) => a.agentId === id);
    expect(byId('1001')).toMatchObject({ state: 'paused', reason: 'Lunch', until: svc.get('1001')!.until, since: svc.get('1001')!.since });
    expect(byId('1002')).toMatchObject({ state: 'busy', detail: { busy: true, registered: true } });
    expect(byId('1003')).toMatchObject({ state: 'logged out', detail: { registered: false } });

    const human = await run(['presence', 'list', '--data', data]);
    expect(human.stdout).toContain(`live states from the switchboard daemon (pid ${process.pid})`);
    expect(human.stdout).toMatch(/^1002\s+bob_jones\s+busy\s+-\s+yes\s+/m);

    const avail = await run(['presence', 'set', '1001', 'available', '--wait', '10000', '--store', STORE, '--data', data]);
    expect(avail.stdout).toContain('the running daemon applied it: alice.smith is now available');
    expect(svc.get('1001')?.state).toBe('available');

    await svc.stop();
    const after = await run(['presence', 'list', '--data', data]);
    expect(after.stdout).toContain('the switchboard daemon is not running');
  });
});
