/**
 * `switchboard apply` end to end: the CLI is compiled into a private directory (so concurrent
 * builds of dist/ by other test files cannot interfere) and run as a child process against the
 * fake Asterisk.
 */
import { execFile, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeAsterisk } from './fakes/fake-asterisk.js';
import { AMI_SECRET, AMI_USER, FIXTURE_STORE, REPO, copyDir, editAgent, tempDir } from './helpers/apply-env.js';

let build: string;
let main: string;

beforeAll(async () => {
  build = await tempDir('cli-build');
  await fs.symlink(path.join(REPO, 'node_modules'), path.join(build, 'node_modules'));
  await fs.symlink(path.join(REPO, 'templates'), path.join(build, 'templates'));
  await fs.copyFile(path.join(REPO, 'package.json'), path.join(build, 'package.json'));
  const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  // Type errors elsewhere in the tree still emit JavaScript; only a missing main.js is fatal.
  await new Promise<void>((resolve) => {
    execFile(process.execPath, [tsc, '-p', path.join(REPO, 'tsconfig.build.json'), '--outDir', path.join(build, 'dist')], { cwd: REPO }, () => resolve());
  });
  main = path.join(build, 'dist', 'cli', 'main.js');
  await fs.access(main);
}, 180_000);

afterAll(async () => {
  if (build) await fs.rm(build, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, SWITCHBOARD_AMI_SECRET: undefined, SWITCHBOARD_LOG_LEVEL: undefined, ...env };
  for (const k of Object.keys(childEnv)) if (childEnv[k] === undefined) delete childEnv[k];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [main, ...args], { env: childEnv });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

interface Ctx {
  root: string;
  store: string;
  out: string;
  fake: FakeAsterisk;
  port: number;
  ami: string[];
}

const contexts: Ctx[] = [];
afterEach(async () => {
  while (contexts.length) {
    const c = contexts.pop()!;
    await c.fake.stop();
    await fs.rm(c.root, { recursive: true, force: true });
  }
});

async function setup(): Promise<Ctx> {
  const root = await tempDir('cli');
  const store = path.join(root, 'store');
  const out = path.join(root, 'asterisk');
  await copyDir(FIXTURE_STORE, store);
  await fs.mkdir(out);
  const fake = new FakeAsterisk({ configDir: out, username: AMI_USER, secret: AMI_SECRET, sipReloadDelayMs: 5 });
  const port = await fake.start();
  const ctx = { root, store, out, fake, port, ami: ['--ami-host', '127.0.0.1', '--ami-port', String(port), '--ami-user', AMI_USER] };
  contexts.push(ctx);
  return ctx;
}

function noSecret(r: Run): void {
  expect(r.stdout).not.toContain(AMI_SECRET);
  expect(r.stderr).not.toContain(AMI_SECRET);
}

// Each run starts a node process (~1 s, more on a loaded machine).
describe('switchboard apply (CLI)', { timeout: 90_000 }, () => {
  it('--help documents the options and shows examples', async () => {
    const r = await run(['apply', '--help']);
    expect(r.code).toBe(0);
    for (const opt of ['--store', '--out', '--dry-run', '--json', '--ami-host', '--ami-secret', '--generations', '--restore', '--list-generations']) expect(r.stdout).toContain(opt);
    expect(r.stdout).toContain('Examples:');
    expect(r.stdout).toContain('SWITCHBOARD_AMI_SECRET');
  });

  it('--dry-run --json prints a parseable plan, connects to nothing, writes nothing, never shows the secret', async () => {
    const c = await setup();
    const r = await run(['apply', '--store', c.store, '--out', c.out, '--dry-run', '--json', ...c.ami, '--ami-secret', AMI_SECRET]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { dryRun: boolean; changedFiles: string[]; agents: { added: string[] }; reloadSent: boolean };
    expect(report.dryRun).toBe(true);
    expect(report.changedFiles).toEqual(['pjsip_switchboard.conf', 'voicemail_switchboard.conf', 'extensions_switchboard.conf']);
    expect(report.agents.added).toHaveLength(13);
    expect(report.reloadSent).toBe(false);
    noSecret(r);
    expect(c.fake.ami.acceptedCount).toBe(0);
    expect(await fs.readdir(c.out)).toEqual([]);
  });

  it('applies with the secret from SWITCHBOARD_AMI_SECRET, prints a human report, saves extension assignments; then rolls back (exit 3)', async () => {
    const c = await setup();
    const r = await run(['apply', '--store', c.store, '--out', c.out, ...c.ami], { SWITCHBOARD_AMI_SECRET: AMI_SECRET });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('reloaded:   res_pjsip.so, app_voicemail.so, pbx_config.so');
    expect(r.stdout).toMatch(/verified: +yes/);
    expect(r.stdout).toContain('13 added');
    noSecret(r);
    expect(c.fake.reloads).toEqual(['res_pjsip.so', 'app_voicemail.so', 'pbx_config.so']);
    await fs.access(path.join(c.store, '.extensions.json'));

    await editAgent(c.store, '1001-alice.yaml', 'codecs: [ulaw, alaw]', 'codecs: [g722]');
    c.fake.refuseOption('allow');
    const before = await fs.readFile(path.join(c.out, 'pjsip_switchboard.conf'));
    const rb = await run(['apply', '--store', c.store, '--out', c.out, '--json', ...c.ami], { SWITCHBOARD_AMI_SECRET: AMI_SECRET });
    expect(rb.code, rb.stderr).toBe(3);
    expect(JSON.parse(rb.stdout)).toMatchObject({ rolledBack: true, refused: [{ agent: 'alice.smith', object: 'endpoint', option: 'allow' }] });
    expect(rb.stderr).toContain('alice.smith');
    expect(rb.stderr).toContain('allow');
    expect(await fs.readFile(path.join(c.out, 'pjsip_switchboard.conf'))).toEqual(before);
    noSecret(rb);
  });

  it('exit codes: 1 invalid store, 4 AMI unreachable or wrong secret, 5 locked, 6 restart needed', async () => {
    const c = await setup();
    const bad = path.join(c.root, 'bad');
    await copyDir(c.store, bad);
    await editAgent(bad, '1001-alice.yaml', 'extension: "1001"', 'extension: "10;01"');
    const inv = await run(['apply', '--store', bad, '--out', c.out, ...c.ami], { SWITCHBOARD_AMI_SECRET: AMI_SECRET });
    expect(inv.code).toBe(1);
    expect(inv.stderr).toContain('agents/1001-alice.yaml');
    expect(inv.stderr).toContain('extension');

    const closed = await run(['apply', '--store', c.store, '--out', c.out, '--ami-host', '127.0.0.1', '--ami-port', '1', '--ami-timeout', '300'], { SWITCHBOARD_AMI_SECRET: AMI_SECRET });
    expect(closed.code).toBe(4);
    expect(closed.stderr).toContain('unreachable');
    expect(await fs.readdir(c.out)).toEqual([]);

    const wrong = await run(['apply', '--store', c.store, '--out', c.out, ...c.ami, '--ami-secret', 'not-the-secret-77', '--ami-timeout', '3000']);
    expect(wrong.code).toBe(4);
    expect(wrong.stderr).toMatch(/authentication failed/);
    expect(wrong.stderr).not.toContain('not-the-secret-77');

    await fs.mkdir(path.join(c.out, '.switchboard'));
    await fs.writeFile(path.join(c.out, '.switchboard', 'apply.lock'), JSON.stringify({ pid: process.pid }));
    const locked = await run(['apply', '--store', c.store, '--out', c.out, ...c.ami], { SWITCHBOARD_AMI_SECRET: AMI_SECRET });
    expect(locked.code).toBe(5);
    expect(locked.stderr).toContain('another apply is running');
    await fs.rm(path.join(c.out, '.switchboard', 'apply.lock'));

    const ok = await run(['apply', '--store', c.store, '--out', c.out, ...c.ami], { SWITCHBOARD_AMI_SECRET: AMI_SECRET });
    expect(ok.code, ok.stderr).toBe(0);
    const settings = path.join(c.store, 'switchboard.yaml');
    await fs.writeFile(settings, (await fs.readFile(settings, 'utf8')).replace('bind: "0.0.0.0:5061"', 'bind: "0.0.0.0:5071"'));
    const restart = await run(['apply', '--store', c.store, '--out', c.out, ...c.ami], { SWITCHBOARD_AMI_SECRET: AMI_SECRET });
    expect(restart.code, restart.stderr).toBe(6);
    expect(restart.stdout).toContain('RESTART NEEDED');
    expect(restart.stderr).toContain('transport-tls: bind changed');
  });

  it('--list-generations and --restore (no --store needed); an unknown generation is a usage error', async () => {
    const c = await setup();
    const env = { SWITCHBOARD_AMI_SECRET: AMI_SECRET };
    expect((await run(['apply', '--store', c.store, '--out', c.out, ...c.ami], env)).code).toBe(0);
    const first = await fs.readFile(path.join(c.out, 'pjsip_switchboard.conf'));
    await editAgent(c.store, '1001-alice.yaml', 'codecs: [ulaw, alaw]', 'codecs: [gsm]');
    expect((await run(['apply', '--store', c.store, '--out', c.out, ...c.ami], env)).code).toBe(0);
    const list = await run(['apply', '--out', c.out, '--list-generations', '--json']);
    expect(list.code, list.stderr).toBe(0);
    const gens = JSON.parse(list.stdout) as { id: string; files: string[] }[];
    expect(gens).toHaveLength(2);
    expect(gens[0]!.files).toContain('pjsip_switchboard.conf');
    const restored = await run(['apply', '--out', c.out, '--restore', gens[0]!.id, ...c.ami], env);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toContain(`restore of ${gens[0]!.id}`);
    expect(await fs.readFile(path.join(c.out, 'pjsip_switchboard.conf'))).toEqual(first);
    expect(c.fake.endpoint('alice.smith')?.fields.Allow).toBe('(ulaw|alaw)');
    const unknown = await run(['apply', '--out', c.out, '--restore', '20000101T000000-000Z-000000', ...c.ami], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('does not exist');
    const missing = await run(['apply', '--out', c.out]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--store');
  });
});
