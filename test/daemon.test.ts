import { EventEmitter } from 'node:events';
import { existsSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AmiClient } from '../src/asterisk/ami/client.js';
import { ApplyRolledBackError } from '../src/apply/errors.js';
import { PeerDisconnectedError, PeerTimeoutError } from '../src/errors.js';
import { Daemon, type DaemonApplyReport, type DaemonDeps } from '../src/daemon/daemon.js';
import { buildDaemon, serveUntilSignal } from '../src/daemon/main.js';
import { chokidarWatcher, type WatchFactory } from '../src/daemon/watcher.js';
import { loadDaemonSettings } from '../src/config/settings.js';
import type { Issue } from '../src/model/issues.js';
import { YamlStore } from '../src/store/yaml-store.js';
import { FakeAmiServer } from './fakes/ami-server.js';
import { FIXTURE_STORE, StubApplier, captureLogger, edit, expectedFiles, outputFiles, storeWithFakeAsterisk, tempStore, type LogLine } from './helpers/daemon-harness.js';
import { nextEvent, waitFor } from './helpers/wait.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Setup {
  dirs: ReturnType<typeof tempStore>;
  store: YamlStore;
  applier: StubApplier;
  daemon: Daemon;
  lines: LogLine[];
  raw: () => string;
  applied: DaemonApplyReport[];
  agentFile: (name: string) => string;
}

function setup(overrides: Partial<DaemonDeps> & { applier?: StubApplier; dirs?: ReturnType<typeof tempStore> } = {}): Setup {
  const dirs = overrides.dirs ?? tempStore();
  const store = new YamlStore(dirs.store);
  const applier = overrides.applier ?? new StubApplier(dirs.out);
  const { logger, lines, raw } = captureLogger();
  const daemon = new Daemon({ store, applier, logger, outDir: dirs.out, debounceMs: 20, retryInitialMs: 10, retryMaxMs: 40, amiStartWaitMs: 0, ...overrides });
  const applied: DaemonApplyReport[] = [];
  daemon.on('applied', (r) => applied.push(r));
  cleanups.push(async () => {
    await daemon.stop();
    rmSync(dirs.root, { recursive: true, force: true });
  });
  return { dirs, store, applier, daemon, lines, raw, applied, agentFile: (name) => path.join(dirs.store, 'agents', name) };
}

async function converged(s: Setup, timeoutMs = 5000): Promise<void> {
  const want = await expectedFiles(s.dirs.store);
  await waitFor(() => {
    expect(outputFiles(s.dirs.out)).toEqual(want);
    return true;
  }, timeoutMs);
  await s.daemon.whenIdle();
  expect(outputFiles(s.dirs.out)).toEqual(await expectedFiles(s.dirs.store));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Daemon: start', () => {
  it('loads the whole store and applies it once, then saves auto-assigned extensions', async () => {
    const s = setup();
    expect(existsSync(path.join(s.dirs.store, '.extensions.json'))).toBe(false);
    await s.daemon.start();
    expect(s.applier.calls).toHaveLength(1);
    expect(s.applied).toHaveLength(1);
    expect(s.applied[0]!.agents.added).toHaveLength(13);
    expect(outputFiles(s.dirs.out)).toEqual(await expectedFiles(s.dirs.store));
    // chiara, grace and lena have no extension in their files: assignments are kept beside the store.
    const saved = JSON.parse(readFileSync(path.join(s.dirs.store, '.extensions.json'), 'utf8')) as { assignments: Record<string, string> };
    expect(Object.keys(saved.assignments).sort()).toEqual(['1003', '1007', '1012']);
    // Writing .extensions.json into the store is not a store edit.
    await sleep(100);
    await s.daemon.whenIdle();
    expect(s.applier.calls).toHaveLength(1);
  });

  it('logs one summary line per apply with the generation, and says plainly that no reload is sent without AMI', async () => {
    const s = setup();
    await s.daemon.start();
    const summary = s.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('applied generation'));
    expect(summary).toHaveLength(1);
    expect(summary[0]).toMatchObject({ level: 30, component: 'daemon', apply: 1, generation: 'g1', agentsAdded: 13, agentsChanged: 0, agentsRemoved: 0, reloadSent: false });
    expect(summary[0]!.files).toEqual(s.applied[0]!.changedFiles);
    expect(summary[0]!.modules).toEqual(s.applied[0]!.modules);
    expect(typeof summary[0]!.ms).toBe('number');
    expect(summary[0]!.msg).toContain('no AMI configured: no reload sent');
    expect(s.lines.some((l) => l.level === 30 && /render-only mode.*no reload is sent/.test(l.msg))).toBe(true);
  });

  it('an invalid store at start applies nothing, then applies once it is fixed', async () => {
    const s = setup();
    const alice = s.agentFile('1001-alice.yaml');
    edit(alice, /^extension: "1001"$/m, 'extension: "10;01"');
    const invalid: Issue[][] = [];
    s.daemon.on('storeInvalid', (i) => invalid.push(i));
    await s.daemon.start();
    expect(s.applier.calls).toHaveLength(0);
    expect(invalid).toHaveLength(1);
    expect(outputFiles(s.dirs.out).size).toBe(0);
    edit(alice, /^extension: "10;01"$/m, 'extension: "1001"');
    await nextEvent(s.daemon, 'applied', 5000);
    await converged(s);
  });
});

describe('Daemon: watching', () => {
  it('coalesces a burst of 20 edits into few applies and ends on the last state', async () => {
    // A short debounce on purpose: the burst also exercises the throttle guard (chokidar drops a
    // second change event for the same file within 50 ms).
    const s = setup({ debounceMs: 50 });
    await s.daemon.start();
    const alice = s.agentFile('1001-alice.yaml');
    const bob = s.agentFile('1002-bob.yaml');
    for (let i = 1; i <= 20; i++) {
      edit(i % 2 ? alice : bob, /^lastName: .*$/m, `lastName: Burst${i}`);
      await sleep(2);
    }
    await converged(s);
    const out = outputFiles(s.dirs.out);
    expect([...out.values()].join('')).toContain('Burst20');
    expect([...out.values()].join('')).toContain('Burst19');
    expect(s.applier.calls.length - 1).toBeGreaterThanOrEqual(1);
    expect(s.applier.calls.length - 1).toBeLessThanOrEqual(6);
    expect(s.applier.maxActive).toBe(1);
  });

  it('an edit during an apply is applied right after it (never two at once)', async () => {
    const s = setup();
    await s.daemon.start();
    const alice = s.agentFile('1001-alice.yaml');
    const gate = s.applier.hold();
    edit(alice, /^lastName: .*$/m, 'lastName: During1');
    await gate.entered;
    edit(alice, /^lastName: .*$/m, 'lastName: During2');
    await waitFor(() => s.lines.filter((l) => l.msg === 'store file event').length >= 2);
    gate.release();
    await converged(s);
    expect([...outputFiles(s.dirs.out).values()].join('')).toContain('During2');
    expect(s.applier.maxActive).toBe(1);
    expect(s.applier.calls).toHaveLength(3);
    expect(s.applier.calls[2]!.store.agents.find((a) => a.id === '1001')!.lastName).toBe('During2');
  });

  it('an invalid file is logged (file, agent, field) and never reaches the output; the fix is applied', async () => {
    const s = setup();
    await s.daemon.start();
    const before = outputFiles(s.dirs.out);
    const alice = s.agentFile('1001-alice.yaml');
    const invalid = nextEvent<[Issue[]]>(s.daemon, 'storeInvalid', 5000);
    edit(alice, /^extension: "1001"$/m, 'extension: "10;01"');
    const [issues] = await invalid;
    await s.daemon.whenIdle();
    expect(issues.length).toBeGreaterThan(0);
    const issue = issues.find((i) => i.field === 'extension')!;
    expect(issue.file).toBe('agents/1001-alice.yaml');
    const logged = s.lines.find((l) => l.level === 40 && l.msg === issue.message);
    expect(logged).toMatchObject({ file: 'agents/1001-alice.yaml', field: 'extension', agent: issue.agent });
    expect(s.lines.some((l) => l.level === 40 && /store is invalid.*keeping the last good config \(generation g1\)/.test(l.msg))).toBe(true);
    expect(s.applier.calls).toHaveLength(1);
    expect(outputFiles(s.dirs.out)).toEqual(before);

    // A half-saved file (broken YAML) is just another invalid state.
    writeFileSync(alice, 'id: 1001\nusername: [alice\n');
    await nextEvent(s.daemon, 'storeInvalid', 5000);
    await s.daemon.whenIdle();
    expect(outputFiles(s.dirs.out)).toEqual(before);

    cpFixture(s, '1001-alice.yaml');
    edit(alice, /^lastName: .*$/m, 'lastName: Fixed');
    await nextEvent(s.daemon, 'applied', 5000);
    await converged(s);
    expect([...outputFiles(s.dirs.out).values()].join('')).toContain('Fixed');
    expect(s.lines.some((l) => l.msg === 'store is valid again')).toBe(true);
  });

  it('a store that could not be read at all is read whole again on the next event, and applied', async () => {
    const dirs = tempStore();
    const real = new YamlStore(dirs.store);
    let failLoadAll = false;
    const store = {
      dir: real.dir,
      loadAll: () => (failLoadAll ? Promise.reject(new Error('EIO: i/o error, read')) : real.loadAll()),
      reloadFile: (p: string) => real.reloadFile(p),
      saveAssignments: (st: Parameters<YamlStore['saveAssignments']>[0]) => real.saveAssignments(st),
    };
    const s = setup({ dirs, store, watch: false });
    await s.daemon.start();
    failLoadAll = true;
    s.daemon.notify('change', path.join(dirs.store, 'switchboard.yaml'));
    await s.daemon.whenIdle();
    expect(s.lines.some((l) => l.level === 50 && /cannot read the store: EIO/.test(l.msg))).toBe(true);
    failLoadAll = false;
    const alice = s.agentFile('1001-alice.yaml');
    edit(alice, /^lastName: .*$/m, 'lastName: AfterEio');
    const applied = nextEvent(s.daemon, 'applied', 5000);
    s.daemon.notify('change', alice);
    await applied;
    await converged(s);
    expect(s.applier.calls).toHaveLength(2);
  });

  it('a weak password is reported without ever logging it', async () => {
    const s = setup();
    await s.daemon.start();
    const invalid = nextEvent(s.daemon, 'storeInvalid', 5000);
    edit(s.agentFile('1001-alice.yaml'), /^password: .*$/m, 'password: "weakpw77"');
    await invalid;
    expect(s.lines.some((l) => l.level === 40 && String(l.msg).includes('password'))).toBe(true);
    expect(s.raw()).not.toContain('weakpw77');
    expect(s.raw()).not.toContain('Str0ng&Secret1');
  });

  it('a change to switchboard.yaml reloads the whole store', async () => {
    const s = setup();
    const loadAll = countCalls(s.store, 'loadAll');
    await s.daemon.start();
    expect(loadAll.count).toBe(1);
    edit(path.join(s.dirs.store, 'switchboard.yaml'), /^  name: Acme Contact Centre$/m, '  name: Acme Renamed');
    edit(path.join(s.dirs.store, 'switchboard.yaml'), /^  language: en$/m, '  language: fr');
    await nextEvent(s.daemon, 'applied', 5000);
    await converged(s);
    expect(loadAll.count).toBeGreaterThanOrEqual(2);
    const last = s.applier.calls.at(-1)!.store;
    expect(last.settings.organisation.name).toBe('Acme Renamed');
    // Every agent without its own language follows the new default.
    expect(s.applied.at(-1)!.agents.changed.length).toBeGreaterThan(1);
  });

  it('a deleted agent file removes the agent; a new file adds one', async () => {
    const s = setup();
    await s.daemon.start();
    const applied = nextEvent<[DaemonApplyReport]>(s.daemon, 'applied', 5000);
    unlinkSync(s.agentFile('1013-mateo.yaml'));
    const [report] = await applied;
    expect(report.agents.removed).toEqual(['mateo']);
    await converged(s);
    expect([...outputFiles(s.dirs.out).values()].join('')).not.toMatch(/\bmateo\b/);

    const added = nextEvent<[DaemonApplyReport]>(s.daemon, 'applied', 5000);
    writeFileSync(s.agentFile('1014-nadia.yaml'), 'id: 1014\nusername: nadia\nfirstName: Nadia\nlastName: Novak\ntypology: webrtc\npassword: "Nadia{Web}42"\nvoicemail:\n  pin: "4242"\n');
    const [r2] = await added;
    expect(r2.agents.added).toEqual(['nadia']);
    await converged(s);
  });

  it('an atomic save (write a temp file, rename it over the agent) is applied; temp and backup files are ignored', async () => {
    const s = setup();
    await s.daemon.start();
    const bob = s.agentFile('1002-bob.yaml');
    const applied = nextEvent<[DaemonApplyReport]>(s.daemon, 'applied', 5000);
    const tmp = path.join(s.dirs.store, 'agents', '.1002-bob.yaml.swp');
    writeFileSync(tmp, readFileSync(bob, 'utf8').replace(/^lastName: .*$/m, 'lastName: Renamed'));
    writeFileSync(path.join(s.dirs.store, 'agents', '1002-bob.yaml~'), 'garbage: [');
    writeFileSync(path.join(s.dirs.store, 'agents', 'notes.txt'), 'garbage: [');
    renameSync(tmp, bob);
    const [report] = await applied;
    expect(report.agents.changed).toEqual(['bob_jones']);
    await converged(s);
    expect([...outputFiles(s.dirs.out).values()].join('')).toContain('Renamed');
    expect(s.applier.calls).toHaveLength(2);
  });

  it('re-reads a file written again without a watcher event (chokidar throttles repeated changes)', async () => {
    // No real watcher: events come from notify() so that the second write is certainly event-less.
    const s = setup({ watch: false, throttleGuardMs: 400 });
    await s.daemon.start();
    const alice = s.agentFile('1001-alice.yaml');
    const gate = s.applier.hold();
    edit(alice, /^lastName: .*$/m, 'lastName: First');
    s.daemon.notify('change', alice);
    await gate.entered;
    edit(alice, /^lastName: .*$/m, 'lastName: SecondWithoutEvent');
    gate.release();
    await converged(s);
    expect([...outputFiles(s.dirs.out).values()].join('')).toContain('SecondWithoutEvent');
    expect(s.applier.calls).toHaveLength(3);
  });

  it('a continuous stream of events still applies every maxWaitMs', async () => {
    const s = setup({ watch: false, debounceMs: 50, maxWaitMs: 150 });
    await s.daemon.start();
    const alice = s.agentFile('1001-alice.yaml');
    const started = Date.now();
    let i = 0;
    while (Date.now() - started < 500) {
      edit(alice, /^lastName: .*$/m, `lastName: Stream${++i}`);
      s.daemon.notify('change', alice);
      await sleep(10);
    }
    // Events never paused for 50 ms, yet the stream was applied while it lasted.
    expect(s.applier.calls.length).toBeGreaterThanOrEqual(3);
    await converged(s);
  });

  it('stop() closes the watcher: later edits are not applied', async () => {
    // notify() ignores events once stopping, so the edit below alone would not show a watcher left open.
    let closed = 0;
    const watch: WatchFactory = async (...args) => {
      const w = await chokidarWatcher(...args);
      return { close: () => (closed++, w.close()) };
    };
    const s = setup({ watch });
    await s.daemon.start();
    await s.daemon.stop();
    expect(closed).toBe(1);
    edit(s.agentFile('1001-alice.yaml'), /^lastName: .*$/m, 'lastName: AfterStop');
    await sleep(150);
    expect(s.applier.calls).toHaveLength(1);
  });
});

describe('Daemon: failures', () => {
  it('retries a peer failure with capped backoff, then applies', async () => {
    const s = setup();
    s.applier.failNext(new PeerTimeoutError('AMI', 'action Reload', 5));
    for (let i = 0; i < 3; i++) s.applier.failNext(new PeerDisconnectedError('AMI', 'action Reload'));
    const failures: { willRetry: boolean; retryInMs?: number }[] = [];
    s.daemon.on('applyFailed', (_err, info) => failures.push(info));
    const applied = nextEvent(s.daemon, 'applied', 5000);
    await s.daemon.start();
    await applied;
    expect(failures).toEqual([
      { willRetry: true, retryInMs: 10 },
      { willRetry: true, retryInMs: 20 },
      { willRetry: true, retryInMs: 40 },
      { willRetry: true, retryInMs: 40 },
    ]);
    expect(s.applier.calls).toHaveLength(5);
    await converged(s);
  });

  it('a rolled-back apply is not retried; the next edit is applied', async () => {
    const s = setup();
    await s.daemon.start();
    const report = { ...s.applied[0]!, rolledBack: true, refused: [{ agent: 'alice.smith', object: 'endpoint', option: 'allow', expected: 'ulaw', actual: '' }] };
    s.applier.failNext(new ApplyRolledBackError(report));
    const failed = nextEvent<[unknown, { willRetry: boolean }]>(s.daemon, 'applyFailed', 5000);
    edit(s.agentFile('1001-alice.yaml'), /^lastName: .*$/m, 'lastName: Refused');
    const [err, info] = await failed;
    expect((err as ApplyRolledBackError).code).toBe('APPLY_ROLLED_BACK');
    expect(info.willRetry).toBe(false);
    await s.daemon.whenIdle();
    await sleep(60);
    expect(s.applier.calls).toHaveLength(2);
    expect(s.lines.some((l) => l.level === 50 && /waiting for the next store edit/.test(l.msg))).toBe(true);
    edit(s.agentFile('1001-alice.yaml'), /^lastName: .*$/m, 'lastName: Accepted');
    await nextEvent(s.daemon, 'applied', 5000);
    await converged(s);
  });

  it('AMI down at start and mid-run: keeps running, applies the latest state as soon as AMI logs in', async () => {
    const fake = new FakeAmiServer();
    fake.on('Reload', () => ({ response: { Response: 'Success', Message: 'Module Reloaded.' } }));
    const port = await fake.start();
    await fake.stop();
    cleanups.push(() => fake.stop());
    const { logger } = captureLogger('silent');
    const ami = new AmiClient({ host: '127.0.0.1', port, username: 'switchboard', secret: 's3cret', reconnectInitialMs: 10, reconnectMaxMs: 30 }, logger);
    cleanups.push(() => ami.stop());
    const dirs = tempStore();
    // Long retry delays: only the AMI 'connected' event can explain a prompt apply.
    const s = setup({ dirs, applier: new StubApplier(dirs.out, ami), ami, retryInitialMs: 60_000, retryMaxMs: 60_000 });
    ami.start();
    const failed = nextEvent<[unknown, { willRetry: boolean }]>(s.daemon, 'applyFailed', 5000);
    await s.daemon.start();
    const [err, info] = await failed;
    expect((err as PeerDisconnectedError).code).toBe('PEER_DISCONNECTED');
    expect(info.willRetry).toBe(true);
    expect(outputFiles(dirs.out).size).toBe(0);

    // An edit while AMI is down is loaded (and would be validated) but waits for AMI.
    edit(s.agentFile('1001-alice.yaml'), /^lastName: .*$/m, 'lastName: WhileDown');
    await waitFor(() => s.lines.some((l) => l.msg === 'store file event'));
    await s.daemon.whenIdle();
    expect(s.applied).toHaveLength(0);

    const applied = nextEvent<[DaemonApplyReport]>(s.daemon, 'applied', 5000);
    await fake.start();
    const [report] = await applied;
    expect(report.reloadSent).toBe(true);
    await fake.waitForAction('Reload');
    await converged(s);
    expect([...outputFiles(dirs.out).values()].join('')).toContain('WhileDown');

    // Mid-run: AMI drops, an edit fails to apply, AMI comes back and the edit goes through.
    fake.refuseConnections(true);
    fake.dropConnections();
    await waitFor(() => !ami.connected);
    const failedAgain = nextEvent(s.daemon, 'applyFailed', 5000);
    edit(s.agentFile('1002-bob.yaml'), /^lastName: .*$/m, 'lastName: AfterDrop');
    await failedAgain;
    const appliedAgain = nextEvent(s.daemon, 'applied', 5000);
    fake.refuseConnections(false);
    await appliedAgain;
    await converged(s);
    expect([...outputFiles(dirs.out).values()].join('')).toContain('AfterDrop');
    expect(s.applier.maxActive).toBe(1);
  });
});

describe('buildDaemon: the real wiring (Applier, AmiClient, YamlStore, Renderer)', () => {
  it('render-only: applies at start and after an edit; --once on an invalid store throws STORE_INVALID', async () => {
    const dirs = tempStore();
    cleanups.push(() => rmSync(dirs.root, { recursive: true, force: true }));
    const settings = loadDaemonSettings({ env: {}, flags: { store: dirs.store, out: dirs.out, debounceMs: 20 } });
    const { logger, lines } = captureLogger();
    const app = buildDaemon(settings, logger, { amiStartWaitMs: 0 });
    cleanups.push(() => app.stop());
    expect(app.ami).toBeUndefined();
    await app.start();
    const want = await expectedFiles(dirs.store);
    expect(outputFiles(dirs.out)).toEqual(want);
    const applied = nextEvent<[DaemonApplyReport]>(app.daemon, 'applied', 5000);
    edit(path.join(dirs.store, 'agents', '1001-alice.yaml'), /^lastName: .*$/m, 'lastName: Wired');
    const [report] = await applied;
    expect(report.reloadSent).toBe(false);
    expect(report.changedFiles).toContain('pjsip_switchboard.conf');
    await app.daemon.whenIdle();
    expect(outputFiles(dirs.out)).toEqual(await expectedFiles(dirs.store));
    expect(lines.some((l) => l.msg === 'switchboard daemon starting')).toBe(true);
    await app.stop();

    edit(path.join(dirs.store, 'agents', '1001-alice.yaml'), /^extension: "1001"$/m, 'extension: "10;01"');
    const once = buildDaemon(settings, logger, { watch: false, amiStartWaitMs: 0 });
    await expect(once.runOnce()).rejects.toMatchObject({ code: 'STORE_INVALID' });
    await once.stop();
  });

  it('with a fake Asterisk: down at start, applied and verified once it is up, then each edit reloads', async () => {
    const secret = 'Ami-Daemon-5ecret-71';
    const { dirs, asterisk, port } = await storeWithFakeAsterisk(cleanups, secret);
    await asterisk.stop();
    const settings = loadDaemonSettings({
      env: { SWITCHBOARD_ASTERISK_AMI_SECRET: secret },
      flags: { store: dirs.store, out: dirs.out, amiHost: '127.0.0.1', amiPort: port, amiUser: 'switchboard', debounceMs: 20 },
    });
    const { logger, raw } = captureLogger();
    const app = buildDaemon(settings, logger, { amiStartWaitMs: 0, amiReconnect: { initialMs: 10, maxMs: 40 }, retry: { initialMs: 60_000, maxMs: 60_000 } });
    cleanups.push(() => app.stop());
    const failed = nextEvent<[unknown]>(app.daemon, 'applyFailed', 5000);
    await app.start();
    expect(((await failed)[0] as { code: string }).code).toBe('PEER_DISCONNECTED');
    expect(outputFiles(dirs.out).size).toBe(0);

    const applied = nextEvent<[DaemonApplyReport]>(app.daemon, 'applied', 5000);
    await asterisk.start();
    const [first] = await applied;
    expect(first).toMatchObject({ reloadSent: true, verified: true, rolledBack: false });
    expect(asterisk.reloads).toContain('res_pjsip.so');
    expect(asterisk.endpoint('alice.smith')).toBeDefined();

    const again = nextEvent<[DaemonApplyReport]>(app.daemon, 'applied', 5000);
    edit(path.join(dirs.store, 'agents', '1001-alice.yaml'), /^lastName: .*$/m, 'lastName: Verified');
    const [second] = await again;
    expect(second.agents.changed).toEqual(['alice.smith']);
    expect(second.verified).toBe(true);
    expect(asterisk.endpoint('alice.smith')!.fields.Callerid).toContain('Alice Verified');
    await app.stop();
    expect(raw()).not.toContain(secret);
  });
});

describe('buildDaemon: AMI keepalive from the settings', () => {
  it('[asterisk] ami_keepalive_seconds reaches the AMI client: an idle daemon pings at that interval', async () => {
    const secret = 'Ami-Keepalive-5ecret-3';
    const { dirs, asterisk, port } = await storeWithFakeAsterisk(cleanups, secret);
    const settings = loadDaemonSettings({
      env: { SWITCHBOARD_ASTERISK_AMI_SECRET: secret, SWITCHBOARD_ASTERISK_AMI_KEEPALIVE_SECONDS: '1' },
      flags: { store: dirs.store, out: dirs.out, amiHost: '127.0.0.1', amiPort: port, amiUser: 'switchboard', debounceMs: 20 },
    });
    const { logger, raw } = captureLogger();
    const app = buildDaemon(settings, logger, { amiStartWaitMs: 0 });
    cleanups.push(() => app.stop());
    const applied = nextEvent<[DaemonApplyReport]>(app.daemon, 'applied', 5000);
    await app.start();
    await applied;
    await app.daemon.whenIdle();
    // With the default (30 s) no Ping would come within this wait.
    await asterisk.ami.waitForAction('Ping', () => true, 4000);
    await app.stop();
    expect(raw()).not.toContain(secret);
  });
});

describe('serveUntilSignal', () => {
  it('SIGTERM during an apply: the apply finishes, then it resolves (exit 0); nothing new starts', async () => {
    const s = setup();
    const signals = new EventEmitter();
    let forced: number | undefined;
    const app = { start: () => s.daemon.start(), stop: () => s.daemon.stop(), logger: captureLogger().logger };
    const serving = serveUntilSignal(app, { signals: signals as never, forceExit: (c) => (forced = c) });
    let done = false;
    void serving.then(() => (done = true));
    await waitFor(() => s.applied.length === 1);
    const gate = s.applier.hold();
    edit(s.agentFile('1001-alice.yaml'), /^lastName: .*$/m, 'lastName: InFlight');
    await gate.entered;
    signals.emit('SIGTERM');
    await sleep(50);
    expect(done).toBe(false);
    // An edit after the signal is not applied.
    edit(s.agentFile('1002-bob.yaml'), /^lastName: .*$/m, 'lastName: TooLate');
    gate.release();
    expect(await serving).toBe('SIGTERM');
    expect(s.applied).toHaveLength(2);
    expect(s.applied[1]!.agents.changed).toEqual(['alice.smith']);
    expect(signals.listenerCount('SIGTERM')).toBe(0);
    expect(signals.listenerCount('SIGINT')).toBe(0);
    expect(forced).toBeUndefined();
    await sleep(100);
    expect(s.applier.calls).toHaveLength(2);
  });

  it('a second signal while stopping forces the exit', async () => {
    const s = setup();
    const signals = new EventEmitter();
    let forced: number | undefined;
    const app = { start: () => s.daemon.start(), stop: () => s.daemon.stop(), logger: captureLogger().logger };
    const serving = serveUntilSignal(app, { signals: signals as never, forceExit: (c) => (forced = c) });
    await waitFor(() => s.applied.length === 1);
    const gate = s.applier.hold();
    edit(s.agentFile('1001-alice.yaml'), /^lastName: .*$/m, 'lastName: InFlight');
    await gate.entered;
    signals.emit('SIGINT');
    signals.emit('SIGINT');
    expect(forced).toBe(130);
    gate.release();
    expect(await serving).toBe('SIGINT');
  });
});

function cpFixture(s: Setup, name: string): void {
  const original = readFileSync(path.join(FIXTURE_STORE, 'agents', name), 'utf8');
  writeFileSync(s.agentFile(name), original);
}

function countCalls<T extends object, K extends keyof T>(obj: T, key: K): { count: number } {
  const counter = { count: 0 };
  const original = obj[key] as unknown as (...args: unknown[]) => unknown;
  (obj as Record<K, unknown>)[key] = function (this: unknown, ...args: unknown[]) {
    counter.count += 1;
    return original.apply(this, args);
  };
  return counter;
}
