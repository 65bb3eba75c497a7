import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { afterEach, describe, expect, it } from 'vitest';
import { ApplyLockedError, ApplyRolledBackError, type ApplyReport } from '../src/apply/index.js';
import { PeerDisconnectedError, PeerRequestError, PeerTimeoutError, SwitchboardError } from '../src/errors.js';
import { removeStaleTemps } from '../src/fsutil.js';
import { OUTPUT_FILES, Renderer } from '../src/render/render.js';
import { loadTemplates } from '../src/render/templates.js';
import { header } from './fakes/ami-server.js';
import { AMI_SECRET, REPO, editAgent, load, readFiles, setupEnv, tempDir, type Env } from './helpers/apply-env.js';
import { waitFor } from './helpers/wait.js';

const PJ = OUTPUT_FILES.pjsip;
const SIP = OUTPUT_FILES.sip;
const VM = OUTPUT_FILES.voicemail;
const EXT = OUTPUT_FILES.extensions;
const ALICE_PASSWORD = 'Str0ng&Secret1';

let env: Env | undefined;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
  await env?.close();
  env = undefined;
});

async function start(opts: Parameters<typeof setupEnv>[0] = {}): Promise<Env> {
  env = await setupEnv(opts);
  return env;
}

/** Actions the fake received from index `from` on, as `Action[:detail]` strings. */
function actionsSince(e: Env, from: number): string[] {
  return e.asterisk.ami
    .actions()
    .slice(from)
    .map((m) => {
      const a = header(m, 'Action')!;
      const detail = header(m, 'Module') ?? header(m, 'Endpoint') ?? header(m, 'Peer');
      return detail ? `${a}:${detail}` : a;
    });
}

async function mtimes(dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const walk = async (d: string): Promise<void> => {
    for (const ent of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, ent.name);
      out[path.relative(dir, p)] = (await fs.stat(p)).mtimeMs;
      if (ent.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return out;
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

const USERNAMES = ['alice.smith', 'bob_jones', 'chiara.rossi', 'dmitri', 'eve', 'farid', 'grace', 'hugo', 'ines', 'jun.park', 'kofi', 'lena', 'mateo'];

describe('apply: writes, reloads and verifies', () => {
  it('first apply writes every file (0640), reloads each module once with Module:, and verifies every agent', async () => {
    const e = await start();
    const store = await load(e.storeDir);
    const r = await e.applier.apply(store);
    expect(r.changedFiles).toEqual([PJ, VM, EXT]);
    expect(r.modules).toEqual(['res_pjsip.so', 'app_voicemail.so', 'pbx_config.so']);
    expect(e.asterisk.reloads).toEqual(['res_pjsip.so', 'app_voicemail.so', 'pbx_config.so']);
    const reloads = e.asterisk.actionsNamed('Reload');
    expect(reloads).toHaveLength(3);
    for (const m of reloads) expect(header(m, 'Module')).toMatch(/\.so$/);
    expect(r).toMatchObject({ dryRun: false, verified: true, reloadSent: true, rolledBack: false, refused: [], restartNeeded: [] });
    expect(r.agents).toEqual({ added: USERNAMES, changed: [], removed: [] });
    const rendered = e.renderer.render(store);
    for (const f of [PJ, VM, EXT]) {
      expect(await fs.readFile(path.join(e.outDir, f), 'utf8')).toBe(rendered.get(f));
      expect((await fs.stat(path.join(e.outDir, f))).mode & 0o777).toBe(0o640);
    }
    expect(await exists(path.join(e.outDir, SIP))).toBe(false);
    expect(e.asterisk.endpointNames()).toEqual(USERNAMES);
    expect(e.asterisk.log.filter((l) => l.startsWith('ERROR'))).toEqual([]);
    const asked = e.asterisk.actionsNamed('PJSIPShowEndpoint').map((m) => header(m, 'Endpoint')).sort();
    expect(asked).toEqual(USERNAMES);
    expect(e.asterisk.actionsNamed('VoicemailUsersList')).toHaveLength(1);
  });

  it('backend both: reloads res_pjsip, chan_sip, app_voicemail, pbx_config in that order and waits for chan_sip\'s background reload', async () => {
    const e = await start({ fake: { sipReloadDelayMs: 150 } });
    const store = await load(e.storeDir);
    const r = await e.applier.apply(store, { backend: 'both' });
    expect(r.changedFiles).toEqual([PJ, SIP, VM, EXT]);
    expect(r.modules).toEqual(['res_pjsip.so', 'chan_sip.so', 'app_voicemail.so', 'pbx_config.so']);
    expect(e.asterisk.reloads).toEqual(['res_pjsip.so', 'chan_sip.so', 'app_voicemail.so', 'pbx_config.so']);
    expect(r.verified).toBe(true);
    // The first SIPshowpeer answers "not found" (chan_sip has not reloaded yet): apply polled.
    const peerQueries = e.asterisk.actionsNamed('SIPshowpeer').length;
    expect(peerQueries).toBeGreaterThan(USERNAMES.length - 1);
    expect(e.asterisk.peers.get('alice.smith')?.codecs).toEqual(['ulaw', 'alaw']);
  });

  it('an unchanged store writes nothing and sends nothing', async () => {
    const e = await start();
    const store = await load(e.storeDir);
    await e.applier.apply(store);
    const before = await mtimes(e.outDir);
    const n = e.asterisk.ami.actions().length;
    const gens = (await e.applier.listGenerations()).length;
    const r = await e.applier.apply(await load(e.storeDir));
    expect(r).toMatchObject({ changedFiles: [], modules: [], reloadSent: false, agents: { added: [], changed: [], removed: [] } });
    expect(actionsSince(e, n)).toEqual([]);
    // Only the state directory itself changes (the lock file came and went).
    const { '.switchboard': _b, ...filesBefore } = before;
    const { '.switchboard': _a, ...filesAfter } = await mtimes(e.outDir);
    expect(filesAfter).toEqual(filesBefore);
    expect(Object.keys(filesAfter)).toContain(PJ);
    expect(await e.applier.listGenerations()).toHaveLength(gens);
  });

  it("one agent's codec change rewrites only pjsip, reloads only res_pjsip.so and reads that agent's EndpointDetail", async () => {
    const e = await start();
    await e.applier.apply(await load(e.storeDir));
    const before = await mtimes(e.outDir);
    const n = e.asterisk.ami.actions().length;
    await editAgent(e.storeDir, '1001-alice.yaml', 'codecs: [ulaw, alaw]', 'codecs: [alaw, g722]');
    const r = await e.applier.apply(await load(e.storeDir));
    expect(r.changedFiles).toEqual([PJ]);
    expect(r.modules).toEqual(['res_pjsip.so']);
    expect(r.agents).toEqual({ added: [], changed: ['alice.smith'], removed: [] });
    expect(r.verified).toBe(true);
    expect(actionsSince(e, n)).toEqual(['Reload:res_pjsip.so', 'PJSIPShowEndpoint:alice.smith']);
    expect(e.asterisk.endpoint('alice.smith')?.fields.Allow).toBe('(alaw|g722)');
    const after = await mtimes(e.outDir);
    for (const f of [VM, EXT]) expect(after[f]).toBe(before[f]);
    expect(after[PJ]).not.toBe(before[PJ]);
  });

  it('retries "A reload is in progress" with backoff, then succeeds', async () => {
    const e = await start();
    await e.applier.apply(await load(e.storeDir));
    const n = e.asterisk.ami.actions().length;
    await editAgent(e.storeDir, '1001-alice.yaml', 'codecs: [ulaw, alaw]', 'codecs: [alaw]');
    e.asterisk.reloadInProgress(2);
    const r = await e.applier.apply(await load(e.storeDir));
    expect(r.verified).toBe(true);
    expect(actionsSince(e, n).filter((a) => a.startsWith('Reload'))).toEqual(['Reload:res_pjsip.so', 'Reload:res_pjsip.so', 'Reload:res_pjsip.so']);
    expect(e.asterisk.endpoint('alice.smith')?.fields.Allow).toBe('(alaw)');
  });

  it('gives up after the configured attempts, restores the files and rethrows', async () => {
    const e = await start();
    await e.applier.apply(await load(e.storeDir));
    const files = await readFiles(e.outDir);
    await editAgent(e.storeDir, '1001-alice.yaml', 'codecs: [ulaw, alaw]', 'codecs: [alaw]');
    e.asterisk.reloadInProgress(10);
    const err = await rejection(e.applier.apply(await load(e.storeDir)));
    expect(err).toBeInstanceOf(PeerRequestError);
    expect(err.message).toMatch(/A reload is in progress/);
    expect(await readFiles(e.outDir)).toEqual(files);
    expect(e.asterisk.actionsNamed('Reload').filter((m) => header(m, 'Module') === 'res_pjsip.so')).toHaveLength(1 + 4 + 2);
  });
});

describe('apply: rollback when Asterisk refuses', () => {
  it('a refused option keeps the old endpoint: files restored byte for byte, modules reloaded again, error names agent and option', async () => {
    const e = await start();
    await e.applier.apply(await load(e.storeDir));
    const files = await readFiles(e.outDir);
    const gens = await e.applier.listGenerations();
    e.asterisk.refuseOption('call_group');
    await editAgent(e.storeDir, '1001-alice.yaml', 'callGroup: "1,3-5"', 'callGroup: "2,7"');
    const n = e.asterisk.ami.actions().length;
    const err = await rejection(e.applier.apply(await load(e.storeDir)));
    expect(err).toBeInstanceOf(ApplyRolledBackError);
    const report = (err as ApplyRolledBackError).report;
    expect((err as ApplyRolledBackError).code).toBe('APPLY_ROLLED_BACK');
    expect(report.rolledBack).toBe(true);
    expect(report.verified).toBe(false);
    expect(report.refused).toEqual([{ agent: 'alice.smith', object: 'endpoint', option: 'call_group', expected: '2,7', actual: '1, 3, 4, 5' }]);
    expect(err.message).toContain('alice.smith');
    expect(err.message).toContain('call_group');
    expect(await readFiles(e.outDir)).toEqual(files);
    expect(actionsSince(e, n).filter((a) => a.startsWith('Reload'))).toEqual(['Reload:res_pjsip.so', 'Reload:res_pjsip.so']);
    expect(await e.applier.listGenerations()).toEqual(gens);
    // The next attempt starts clean: alice is still "changed" relative to what Asterisk runs.
    e.asterisk.clearControls();
    const r = await e.applier.apply(await load(e.storeDir));
    expect(r.agents.changed).toEqual(['alice.smith']);
    expect(e.asterisk.endpoint('alice.smith')?.fields.CallGroup).toBe('2, 7');
  });

  it('a new endpoint Asterisk drops is reported missing and the apply is rolled back', async () => {
    const e = await start();
    await e.applier.apply(await load(e.storeDir));
    const files = await readFiles(e.outDir);
    const alice = await fs.readFile(path.join(e.storeDir, 'agents', '1001-alice.yaml'), 'utf8');
    await fs.writeFile(
      path.join(e.storeDir, 'agents', '1020-zoe.yaml'),
      alice.replace('id: 1001', 'id: 1020').replace('username: alice.smith', 'username: zoe').replace('extension: "1001"', 'extension: "1020"')
        .replace(/dids: .*\n/, 'dids: []\n').replace('email: alice.smith@example.com', 'email: zoe@example.com'),
    );
    e.asterisk.dropEndpoint('zoe');
    const err = await rejection(e.applier.apply(await load(e.storeDir)));
    expect(err).toBeInstanceOf(ApplyRolledBackError);
    const report = (err as ApplyRolledBackError).report;
    expect(report.agents.added).toEqual(['zoe']);
    expect(report.refused).toEqual([{ agent: 'zoe', object: 'endpoint', option: '(object)', expected: 'present', actual: 'missing' }]);
    expect(report.modules).toEqual(['res_pjsip.so', 'app_voicemail.so', 'pbx_config.so']);
    expect(await readFiles(e.outDir)).toEqual(files);
    expect(e.asterisk.reloads.slice(-6)).toEqual(['res_pjsip.so', 'app_voicemail.so', 'pbx_config.so', 'res_pjsip.so', 'app_voicemail.so', 'pbx_config.so']);
    expect(e.asterisk.mailboxes.has('1020@switchboard')).toBe(false);
  });

  it('chan_sip: a peer that does not take the change (polled until the timeout) rolls back', async () => {
    const e = await start();
    await e.applier.apply(await load(e.storeDir), { backend: 'both' });
    const files = await readFiles(e.outDir);
    e.asterisk.refusePeerOption('context');
    await editAgent(e.storeDir, '1001-alice.yaml', 'voice:\n', 'voice:\n  context: sales\n');
    const t0 = Date.now();
    const err = await rejection(e.applier.apply(await load(e.storeDir), { backend: 'both' }));
    expect(err).toBeInstanceOf(ApplyRolledBackError);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400); // verifyTimeoutMs 500: chan_sip gets time to catch up
    expect((err as ApplyRolledBackError).report.refused).toEqual([{ agent: 'alice.smith', object: 'peer', option: 'context', expected: 'sales', actual: 'default' }]);
    expect(await readFiles(e.outDir)).toEqual(files);
  });

  it('a removed agent is verified gone; a file Asterisk rejects whole (duplicate object) keeps it and rolls back', async () => {
    const e = await start();
    await e.applier.apply(await load(e.storeDir));
    await fs.rm(path.join(e.storeDir, 'agents', '1013-mateo.yaml'));
    const store = await load(e.storeDir);

    // A template that emits a duplicate object: Asterisk keeps every old object, mateo included.
    const tpl = await tempDir('tpl');
    cleanups.push(() => fs.rm(tpl, { recursive: true, force: true }));
    await fs.mkdir(path.join(tpl, 'pjsip'));
    const fileTpl = await fs.readFile(path.join(REPO, 'templates', 'pjsip', 'file.hbs'), 'utf8');
    await fs.writeFile(path.join(tpl, 'pjsip', 'file.hbs'), fileTpl + '\n[transport-udp]\ntype = transport\nprotocol = udp\nbind = 0.0.0.0:5060\n\n');
    const files = await readFiles(e.outDir);
    const broken = e.makeApplier({ renderer: new Renderer(loadTemplates(tpl)) });
    const err = await rejection(broken.apply(store));
    expect(err).toBeInstanceOf(ApplyRolledBackError);
    expect((err as ApplyRolledBackError).report.refused).toContainEqual({ agent: 'mateo', object: 'endpoint', option: '(object)', expected: 'absent', actual: 'present' });
    expect(e.asterisk.log.some((l) => l.includes('duplicate object'))).toBe(true);
    expect(await readFiles(e.outDir)).toEqual(files);

    const n = e.asterisk.ami.actions().length;
    const r = await e.applier.apply(store);
    expect(r.agents.removed).toEqual(['mateo']);
    expect(r.verified).toBe(true);
    expect(actionsSince(e, n)).toContain('PJSIPShowEndpoint:mateo');
    expect(e.asterisk.endpoint('mateo')).toBeUndefined();
    expect(e.asterisk.mailboxes.has('1013@switchboard')).toBe(false);
  });
});

describe('apply: transports, dry run, no AMI, backend switch', () => {
  it('a changed transport is applied with the rest and reported as needing a restart', async () => {
    const e = await start();
    await e.applier.apply(await load(e.storeDir));
    const settings = path.join(e.storeDir, 'switchboard.yaml');
    await fs.writeFile(settings, (await fs.readFile(settings, 'utf8')).replace('bind: "0.0.0.0:5061"', 'bind: "0.0.0.0:5063"'));
    const r = await e.applier.apply(await load(e.storeDir));
    expect(r.restartNeeded).toEqual(['transport-tls: bind changed']);
    expect(r.changedFiles).toEqual([PJ]);
    expect(r.verified).toBe(true);
    // No agent changed: every pjsip agent is re-checked.
    expect(e.asterisk.actionsNamed('PJSIPShowEndpoint')).toHaveLength(2 * USERNAMES.length);
    expect(e.asterisk.log.some((l) => l.includes("Transport 'transport-tls' is not reloadable"))).toBe(true);
  });

  it('dry run computes the plan and touches nothing: no write, no lock, no state dir, no AMI action', async () => {
    const e = await start();
    const fresh = await e.applier.apply(await load(e.storeDir), { dryRun: true });
    expect(fresh).toMatchObject({ dryRun: true, changedFiles: [PJ, VM, EXT], modules: ['res_pjsip.so', 'app_voicemail.so', 'pbx_config.so'], reloadSent: false, verified: false });
    expect(fresh.agents.added).toEqual(USERNAMES);
    expect(await fs.readdir(e.outDir)).toEqual([]);
    expect(e.asterisk.ami.actions().filter((m) => header(m, 'Action') !== 'Login')).toEqual([]);

    await e.applier.apply(await load(e.storeDir));
    await editAgent(e.storeDir, '1001-alice.yaml', 'codecs: [ulaw, alaw]', 'codecs: [g722]');
    const settings = path.join(e.storeDir, 'switchboard.yaml');
    await fs.writeFile(settings, (await fs.readFile(settings, 'utf8')).replace('bind: "0.0.0.0:5061"', 'bind: "0.0.0.0:5062"'));
    const before = await mtimes(e.outDir);
    const content = await readFiles(e.outDir);
    const n = e.asterisk.ami.actions().length;
    const r = await e.applier.apply(await load(e.storeDir), { dryRun: true });
    expect(r).toMatchObject({ dryRun: true, changedFiles: [PJ], modules: ['res_pjsip.so'], reloadSent: false, restartNeeded: ['transport-tls: bind changed'] });
    expect(r.agents).toEqual({ added: [], changed: ['alice.smith'], removed: [] });
    expect(await mtimes(e.outDir)).toEqual(before);
    expect(await readFiles(e.outDir)).toEqual(content);
    expect(actionsSince(e, n)).toEqual([]);
  });

  it('without AMI: writes the files, sends no reload; a later apply with AMI reloads and verifies them', async () => {
    const e = await start();
    const store = await load(e.storeDir);
    const noAmi = e.makeApplier({ ami: undefined });
    const r = await noAmi.apply(store);
    expect(r).toMatchObject({ changedFiles: [PJ, VM, EXT], modules: [], reloadSent: false, verified: false });
    expect(e.asterisk.actionsNamed('Reload')).toEqual([]);
    expect(await exists(path.join(e.stateDir, 'manifest.json'))).toBe(false);
    const r2 = await e.applier.apply(store);
    expect(r2.changedFiles).toEqual([]);
    expect(r2.modules).toEqual(['res_pjsip.so', 'app_voicemail.so', 'pbx_config.so']);
    expect(r2.verified).toBe(true);
    expect(e.asterisk.endpointNames()).toEqual(USERNAMES);
  });

  it('switching the backend from pjsip to sip empties the pjsip file and verifies the endpoints are gone', async () => {
    const e = await start();
    const store = await load(e.storeDir);
    await e.applier.apply(store);
    const r = await e.applier.apply(store, { backend: 'sip' });
    expect(r.changedFiles).toEqual([PJ, SIP, EXT]);
    expect(r.modules).toEqual(['res_pjsip.so', 'chan_sip.so', 'pbx_config.so']);
    expect(r.verified).toBe(true);
    expect(r.agents.changed).toEqual(USERNAMES);
    const pj = await fs.readFile(path.join(e.outDir, PJ), 'utf8');
    expect(pj.split('\n').filter((l) => l && !l.startsWith(';'))).toEqual([]);
    expect(e.asterisk.endpointNames()).toEqual([]);
    expect([...e.asterisk.peers.keys()].sort()).toEqual(USERNAMES);
    expect(e.asterisk.actionsNamed('PJSIPShowEndpoint').slice(-USERNAMES.length).map((m) => header(m, 'Endpoint')).sort()).toEqual(USERNAMES);
  });
});

describe('apply: AMI failures', () => {
  it('AMI not connected: PeerDisconnectedError before anything is written', async () => {
    const e = await start({ connect: false });
    const err = await rejection(e.applier.apply(await load(e.storeDir)));
    expect(err).toBeInstanceOf(PeerDisconnectedError);
    expect((await fs.readdir(e.outDir)).filter((f) => f.endsWith('.conf'))).toEqual([]);
    expect(await e.applier.listGenerations()).toEqual([]);
  });

  it('AMI dropping on Reload: files restored, error thrown, the next apply succeeds', async () => {
    const e = await start();
    await e.applier.apply(await load(e.storeDir));
    const files = await readFiles(e.outDir);
    const gens = await e.applier.listGenerations();
    await editAgent(e.storeDir, '1001-alice.yaml', 'codecs: [ulaw, alaw]', 'codecs: [gsm]');
    e.asterisk.dropOn('Reload');
    const err = await rejection(e.applier.apply(await load(e.storeDir)));
    expect(err).toBeInstanceOf(PeerDisconnectedError);
    expect(await readFiles(e.outDir)).toEqual(files);
    expect(await e.applier.listGenerations()).toEqual(gens);
    await waitFor(() => e.client.connected, 3000);
    const r = await e.applier.apply(await load(e.storeDir));
    expect(r.changedFiles).toEqual([PJ]);
    expect(r.agents.changed).toEqual(['alice.smith']);
    expect(r.verified).toBe(true);
    expect(e.asterisk.endpoint('alice.smith')?.fields.Allow).toBe('(gsm)');
  });

  it('a verification query that hangs times out: files restored, the module reloaded with them, error thrown', async () => {
    const e = await start({ deps: { verifyTimeoutMs: 200 } });
    await e.applier.apply(await load(e.storeDir));
    const files = await readFiles(e.outDir);
    await editAgent(e.storeDir, '1001-alice.yaml', 'codecs: [ulaw, alaw]', 'codecs: [gsm]');
    e.asterisk.hangOn('PJSIPShowEndpoint');
    const n = e.asterisk.ami.actions().length;
    const err = await rejection(e.applier.apply(await load(e.storeDir)));
    expect(err).toBeInstanceOf(PeerTimeoutError);
    expect(await readFiles(e.outDir)).toEqual(files);
    expect(actionsSince(e, n).filter((a) => a.startsWith('Reload'))).toEqual(['Reload:res_pjsip.so', 'Reload:res_pjsip.so']);
    expect(e.asterisk.endpoint('alice.smith')?.fields.Allow).toBe('(ulaw|alaw)');
  });
});

describe('apply: locking', () => {
  function spawnSleeper(): ChildProcess {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    cleanups.push(() => {
      child.kill('SIGKILL');
    });
    return child;
  }

  it('a lock held by a live pid refuses the apply (ApplyLockedError); a dead pid\'s lock is taken over', async () => {
    const e = await start();
    await fs.mkdir(e.stateDir, { recursive: true });
    const lockFile = path.join(e.stateDir, 'apply.lock');
    const live = spawnSleeper();
    await fs.writeFile(lockFile, JSON.stringify({ pid: live.pid }));
    const err = await rejection(e.applier.apply(await load(e.storeDir)));
    expect(err).toBeInstanceOf(ApplyLockedError);
    expect((err as ApplyLockedError).code).toBe('APPLY_LOCKED');
    expect(err.message).toContain(String(live.pid));
    expect((await fs.readdir(e.outDir)).filter((f) => f.endsWith('.conf'))).toEqual([]);

    const dead = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    await new Promise((resolve) => dead.on('exit', resolve));
    await fs.writeFile(lockFile, JSON.stringify({ pid: dead.pid }));
    const r = await e.applier.apply(await load(e.storeDir));
    expect(r.verified).toBe(true);
    expect(await exists(lockFile)).toBe(false);
  });

  it('a lock with our own pid from an earlier incarnation (restarted container) is stale', async () => {
    const e = await start();
    await fs.mkdir(e.stateDir, { recursive: true });
    await fs.writeFile(path.join(e.stateDir, 'apply.lock'), JSON.stringify({ pid: process.pid, processStartedAt: Date.now() - 3_600_000 }));
    const r = await e.applier.apply(await load(e.storeDir));
    expect(r.verified).toBe(true);
  });

  it('never two applies at once: calls on one Applier queue; a second Applier in the same process is refused', async () => {
    const e = await start({ deps: { reloadTimeoutMs: 400 } });
    const store = await load(e.storeDir);
    const [a, b] = await Promise.all([e.applier.apply(store), e.applier.apply(store)]);
    expect(a.changedFiles).toEqual([PJ, VM, EXT]);
    expect(b.changedFiles).toEqual([]);

    await editAgent(e.storeDir, '1001-alice.yaml', 'codecs: [ulaw, alaw]', 'codecs: [gsm]');
    const changed = await load(e.storeDir);
    e.asterisk.hangOn('Reload');
    const first = e.applier.apply(changed);
    await waitFor(() => e.asterisk.actionsNamed('Reload').length === 4); // the first apply is waiting on its Reload
    const other = e.makeApplier();
    const err = await rejection(other.apply(changed));
    expect(err).toBeInstanceOf(ApplyLockedError);
    expect(await rejection(first)).toBeInstanceOf(PeerTimeoutError);
  });
});

describe('apply: debris of a crash', () => {
  it('removes temp files of dead writers and temp generations before applying; keeps a live writer\'s temp', async () => {
    const e = await start();
    const dead = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    await new Promise((resolve) => dead.on('exit', resolve));
    const deadTemp = `.${PJ}.${dead.pid}.deadbeef.tmp`;
    const liveTemp = `.${PJ}.${process.pid}.cafebabe.tmp`;
    await fs.writeFile(path.join(e.outDir, deadTemp), '[half');
    await fs.writeFile(path.join(e.outDir, liveTemp), '[being written');
    await fs.mkdir(path.join(e.stateDir, 'generations', '.20250101T000000-000Z-abcdef.tmp'), { recursive: true });
    const r = await e.applier.apply(await load(e.storeDir));
    expect(r.verified).toBe(true);
    const names = await fs.readdir(e.outDir);
    expect(names).not.toContain(deadTemp);
    expect(names).toContain(liveTemp);
    expect((await fs.readdir(path.join(e.stateDir, 'generations'))).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect(e.log.text()).toContain(deadTemp);
  });
});

describe('apply: generations', () => {
  it('keeps N generations (oldest pruned) and restore brings an old one back, reloaded and verified', async () => {
    const e = await start({ deps: { generations: 2 } });
    const applier = e.applier;
    const contents: Map<string, Buffer>[] = [];
    const reports: ApplyReport[] = [];
    reports.push(await applier.apply(await load(e.storeDir))); // v1
    contents.push(await readFiles(e.outDir));
    await editAgent(e.storeDir, '1001-alice.yaml', 'codecs: [ulaw, alaw]', 'codecs: [gsm]');
    reports.push(await applier.apply(await load(e.storeDir))); // v2
    contents.push(await readFiles(e.outDir));
    await fs.rm(path.join(e.storeDir, 'agents', '1002-bob.yaml'));
    reports.push(await applier.apply(await load(e.storeDir))); // v3
    contents.push(await readFiles(e.outDir));
    await editAgent(e.storeDir, '1003-chiara.yaml', /\nvoice:\n/, '\nvoice:\n  context: sales\n');
    reports.push(await applier.apply(await load(e.storeDir))); // v4

    const gens = await applier.listGenerations();
    // Each apply kept what it replaced; only the 2 newest remain: before v4 (= v3) and before v3 (= v2).
    expect(gens.map((g) => g.id)).toEqual([reports[3]!.generation, reports[2]!.generation]);
    expect(await exists(path.join(e.stateDir, 'generations', reports[1]!.generation))).toBe(false);

    const r = await applier.restore(reports[2]!.generation); // the files as they were after v2
    expect(await readFiles(e.outDir)).toEqual(contents[1]);
    expect(r.agents.added).toEqual(['bob_jones']);
    expect(r.agents.changed).toEqual(['chiara.rossi']);
    expect(r.verified).toBe(true);
    expect(e.asterisk.endpoint('bob_jones')).toBeDefined();
    expect(e.asterisk.endpoint('chiara.rossi')?.fields.Context).toBe('from-sip');
    // The restore itself is undoable and pruning still holds.
    const after = await applier.listGenerations();
    expect(after).toHaveLength(2);
    expect(after[0]!.id).toBe(r.generation);

    const err = await rejection(applier.restore('20000101T000000-000Z-000000'));
    expect(err).toBeInstanceOf(SwitchboardError);
    expect((err as SwitchboardError).code).toBe('GENERATION_NOT_FOUND');
    await expect(applier.restore('../../etc')).rejects.toMatchObject({ code: 'GENERATION_NOT_FOUND' });
  });
});

describe('apply: logs', () => {
  it('one summary line per apply with the generation; never a password, the AMI secret or file contents', async () => {
    const e = await start();
    const r1 = await e.applier.apply(await load(e.storeDir));
    await editAgent(e.storeDir, '1001-alice.yaml', 'codecs: [ulaw, alaw]', 'codecs: [gsm]');
    const r2 = await e.applier.apply(await load(e.storeDir));
    e.asterisk.refuseOption('allow');
    await editAgent(e.storeDir, '1001-alice.yaml', 'codecs: [gsm]', 'codecs: [g722]');
    await rejection(e.applier.apply(await load(e.storeDir)));
    const text = e.log.text();
    const records = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const done = records.filter((x) => x.msg === 'apply done');
    expect(done.map((x) => x.generation)).toEqual([r1.generation, r2.generation]);
    expect(done[1]).toMatchObject({ changed: 1, files: [PJ], modules: ['res_pjsip.so'], verified: true });
    expect(records.some((x) => String(x.msg).startsWith('Asterisk refused the change'))).toBe(true);
    expect(text).not.toContain(ALICE_PASSWORD);
    expect(text).not.toContain(AMI_SECRET);
    expect(text).not.toContain('type = endpoint');
    expect(text).not.toContain('md5_cred');
  });
});

describe('writeFileAtomic under kill -9', () => {
  it('the target is always the complete old or new content, and removeStaleTemps cleans up', async () => {
    const dir = await tempDir('kill9');
    cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
    const src = await fs.readFile(path.join(REPO, 'src', 'fsutil.ts'), 'utf8');
    const js = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } }).outputText;
    const work = path.join(dir, 'work');
    await fs.mkdir(work);
    await fs.writeFile(path.join(dir, 'fsutil.mjs'), js);
    await fs.writeFile(
      path.join(dir, 'writer.mjs'),
      `import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './fsutil.mjs';
const [target, a, b] = process.argv.slice(2);
const bufs = [readFileSync(a), readFileSync(b)];
process.stdout.write('ready\\n');
for (let i = 0; ; i++) await writeFileAtomic(target, bufs[i % 2]);
`,
    );
    const line = (c: string, i: number) => `${c.repeat(60)} ${String(i).padStart(8, '0')}\n`;
    const A = Buffer.from(Array.from({ length: 60_000 }, (_, i) => line('a', i)).join('') + 'END-A\n');
    const B = Buffer.from(Array.from({ length: 70_000 }, (_, i) => line('b', i)).join('') + 'END-B\n');
    await fs.writeFile(path.join(dir, 'a.bin'), A);
    await fs.writeFile(path.join(dir, 'b.bin'), B);
    // Four lanes of five kills each, in parallel (one node start-up per kill dominates the time).
    let leftovers = 0;
    const t0 = Date.now();
    const lane = async (n: number): Promise<void> => {
      const laneDir = path.join(work, `lane${n}`);
      await fs.mkdir(laneDir);
      const target = path.join(laneDir, 'pjsip_switchboard.conf');
      await fs.writeFile(target, A);
      for (let i = 0; i < 5; i++) {
        const child = spawn(process.execPath, [path.join(dir, 'writer.mjs'), target, path.join(dir, 'a.bin'), path.join(dir, 'b.bin')], { stdio: ['ignore', 'pipe', 'inherit'] });
        await new Promise<void>((resolve, reject) => {
          child.stdout!.once('data', () => resolve());
          child.once('exit', (code) => reject(new Error(`writer exited early (${code})`)));
        });
        await new Promise((resolve) => setTimeout(resolve, 2 + Math.random() * 40));
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
        const data = await fs.readFile(target);
        expect(data.equals(A) || data.equals(B), `lane ${n} kill ${i}: target is ${data.length} bytes, neither old nor new`).toBe(true);
        const temps = (await fs.readdir(laneDir)).filter((f) => f.endsWith('.tmp'));
        leftovers += temps.length;
        const removed = await removeStaleTemps(laneDir);
        expect(removed.sort()).toEqual(temps.sort());
        expect(await fs.readdir(laneDir)).toEqual(['pjsip_switchboard.conf']);
      }
    };
    await Promise.all([0, 1, 2, 3].map(lane));
    // The kills did land mid-write (a temp file was left behind) at least once.
    expect(leftovers).toBeGreaterThan(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});
