/**
 * `switchboard serve` as a real process (dist/, as shipped): render-only mode against a temp copy of
 * the sample store; an edit reaches the output file; SIGTERM exits 0; logs are JSON lines without a
 * secret. `npm test` builds dist/ before vitest; run alone, this file rebuilds it when stale.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempStore } from './helpers/daemon-harness.js';
import { waitFor } from './helpers/wait.js';

const MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');
const SECRETS = { SWITCHBOARD_ARI_PASSWORD: 'ari-Pa55-zq81', SWITCHBOARD_SMTP_PASSWORD: 'smtp-Pa55-xk42' };
const STORE_SECRETS = ['Str0ng&Secret1', 'Disabled#123', 'Lena{Web}99'];

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : e.name.endsWith('.ts') ? statSync(p).mtimeMs : 0);
  }
  return newest;
}

beforeAll(() => {
  const serveJs = path.join(ROOT, 'dist', 'cli', 'commands', 'serve.js');
  const fresh = existsSync(MAIN) && existsSync(serveJs) && Math.min(statSync(MAIN).mtimeMs, statSync(serveJs).mtimeMs) >= newestMtime(path.join(ROOT, 'src'));
  if (!fresh) {
    // tsc emits even when some other file has a type error; what matters here is that dist/ exists.
    spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'ignore' });
  }
  expect(existsSync(serveJs), 'dist/cli/commands/serve.js: run npm run build').toBe(true);
}, 120_000);

interface Run {
  child: ChildProcess;
  stderr: () => string;
  stdout: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function serve(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Run {
  const child = spawn(process.execPath, [MAIN, 'serve', ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let err = '';
  let out = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, stderr: () => err, stdout: () => out, exit };
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text.split('\n').filter((l) => l.trim()).map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      throw new Error(`not a JSON log line: ${l}`);
    }
  });
}

describe('switchboard serve (real process)', () => {
  it('applies an edit to a real agent file, exits 0 on SIGTERM, logs JSON without secrets', async () => {
    const t = tempStore('sb-serve-');
    dirs.push(t.root);
    writeFileSync(path.join(t.root, 'switchboard.ini'), [
      '[apply]', 'debounce_ms = 30',
      '[ari]', 'url = http://127.0.0.1:8088', 'user = switchboard',
      '[smtp]', 'host = 127.0.0.1', 'port = 2525', 'user = vm', 'from = voicemail@example.com',
      '',
    ].join('\n'));
    // The settings file is found in the working directory; store and output come from flags.
    const run = serve(['--store', 'store', '--out', 'out'], t.root, SECRETS);
    const pjsip = path.join(t.out, 'pjsip_switchboard.conf');
    await waitFor(() => jsonLines(run.stderr()).some((l) => String(l.msg).startsWith('applied generation')), 10_000, 20);
    const before = readFileSync(pjsip, 'utf8');
    expect(before).toContain('Alice Smith');

    const alice = path.join(t.store, 'agents', '1001-alice.yaml');
    writeFileSync(alice, readFileSync(alice, 'utf8').replace(/^lastName: .*$/m, 'lastName: Process'));
    await waitFor(() => readFileSync(pjsip, 'utf8').includes('Alice Process'), 10_000, 20);

    run.child.kill('SIGTERM');
    const { code, signal } = await run.exit;
    expect(signal).toBeNull();
    expect(code).toBe(0);
    expect(run.stdout()).toBe('');
    const lines = jsonLines(run.stderr());
    expect(lines.length).toBeGreaterThan(5);
    const start = lines.find((l) => l.msg === 'switchboard daemon starting') as { settings: { ari: { password: string }; smtp: { password: string } } };
    expect(start.settings.ari.password).toBe('[redacted]');
    expect(start.settings.smtp.password).toBe('[redacted]');
    expect(lines.some((l) => /render-only mode/.test(String(l.msg)))).toBe(true);
    expect(lines.filter((l) => String(l.msg).startsWith('applied generation')).length).toBeGreaterThanOrEqual(2);
    expect(lines.at(-1)).toMatchObject({ msg: 'switchboard daemon stopped', signal: 'SIGTERM' });
    for (const secret of [...Object.values(SECRETS), ...STORE_SECRETS]) expect(run.stderr()).not.toContain(secret);
  });

  it('--once applies and exits 0; an invalid store exits 1 and writes nothing; a bad setting exits 2 naming it', async () => {
    const t = tempStore('sb-serve-');
    dirs.push(t.root);
    const ok = serve(['--store', t.store, '--out', t.out, '--once'], t.root);
    expect((await ok.exit).code).toBe(0);
    expect(readFileSync(path.join(t.out, 'pjsip_switchboard.conf'), 'utf8')).toContain('Alice Smith');

    const out2 = path.join(t.root, 'out2');
    const alice = path.join(t.store, 'agents', '1001-alice.yaml');
    writeFileSync(alice, readFileSync(alice, 'utf8').replace(/^extension: .*$/m, 'extension: "10;01"'));
    const bad = serve(['--store', t.store, '--out', out2, '--once'], t.root);
    expect((await bad.exit).code).toBe(1);
    expect(existsSync(out2)).toBe(false);
    expect(bad.stderr()).toContain('agents/1001-alice.yaml');

    const usage = serve(['--store', t.store, '--out', out2, '--once', '--ami-host', '127.0.0.1', '--ami-user', 'sb'], t.root);
    expect((await usage.exit).code).toBe(2);
    expect(usage.stderr()).toMatch(/\[asterisk\] ami_secret.*SWITCHBOARD_ASTERISK_AMI_SECRET/);
  });
});
