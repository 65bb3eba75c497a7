/**
 * `switchboard validate`, `render` and `diff` end to end: runs the built CLI (`npm test` builds
 * dist first; by hand: `npx tsc -p tsconfig.build.json`) on temp copies of the sample stores, as a
 * telephony engineer would, and checks exit codes, what goes to stdout and stderr, and the files.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const GOLDEN = join(ROOT, 'fixtures', 'golden');

interface Run { code: number; stdout: string; stderr: string }

function run(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 99) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(() => {
  for (const f of ['validate.js', 'render.js', 'diff.js']) {
    if (!existsSync(join(ROOT, 'dist', 'cli', 'commands', f))) {
      throw new Error(`dist/ is missing cli/commands/${f}: run \`npx tsc -p tsconfig.build.json\` (npm test does it)`);
    }
  }
});

let tmp: string;
let store: string;
let bad: string;
let out: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'sb-render-cli-'));
  store = join(tmp, 'store');
  bad = join(tmp, 'bad-store');
  out = join(tmp, 'out');
  cpSync(join(ROOT, 'fixtures', 'store'), store, { recursive: true });
  cpSync(join(ROOT, 'fixtures', 'bad-store'), bad, { recursive: true });
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

/** Replaces the first match of `from` in an agent file of the temp store. */
function editAgent(file: string, from: string | RegExp, to: string): void {
  const p = join(store, 'agents', file);
  const before = readFileSync(p, 'utf8');
  const after = before.replace(from, to);
  expect(after, `${file} holds ${String(from)}`).not.toBe(before);
  writeFileSync(p, after);
}

describe('switchboard validate', { timeout: 60_000 }, () => {
  it('exits 0 on the sample store and says how many agents it holds', async () => {
    const r = await run(['validate', '--store', store]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^store .* is valid: 13 agents, \d+ warning\(s\)$/m);
  });

  it('exits 1 on the bad store and prints every expected issue (file, line, agent, field, fix) on stderr', async () => {
    const r = await run(['validate', '--store', bad]);
    expect(r.code).toBe(1);
    const expected = readFileSync(join(bad, 'expected-issues.txt'), 'utf8').split('\n').filter((l) => l !== '');
    const printed = r.stderr.split('\n');
    for (const line of expected) expect(printed, line).toContain(line);
    expect(r.stderr).toMatch(/is invalid: \d+ error\(s\)/);
  });

  it('--json gives machines {valid, agents, errors, warnings}', async () => {
    const good = JSON.parse((await run(['validate', '--store', store, '--json'])).stdout) as { valid: boolean; agents: number; errors: unknown[] };
    expect(good).toMatchObject({ valid: true, agents: 13, errors: [] });
    const r = await run(['validate', '--store', bad, '--json']);
    expect(r.code).toBe(1);
    const parsed = JSON.parse(r.stdout) as { valid: boolean; errors: { message: string; severity: string }[] };
    expect(parsed.valid).toBe(false);
    expect(parsed.errors.length).toBeGreaterThan(5);
    expect(parsed.errors.every((e) => e.severity === 'error' && /Fix: /.test(e.message)), 'each error says the fix').toBe(true);
  });
});

describe('switchboard render', { timeout: 60_000 }, () => {
  it('writes the files byte for byte as the golden ones, prints a summary, and leaves unchanged files alone on a second run', async () => {
    const r = await run(['render', '--store', store, '--out', out, '--backend', 'both']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^rendered 13 agents into .* in \d+ ms$/m);
    const names = readdirSync(join(GOLDEN, 'both')).sort();
    expect(readdirSync(out).sort()).toEqual(names);
    for (const f of names) {
      expect(readFileSync(join(out, f), 'utf8'), f).toBe(readFileSync(join(GOLDEN, 'both', f), 'utf8'));
      expect(r.stdout).toMatch(new RegExp(`^  ${f.replace(/\./g, '\\.')} +\\d+ bytes  written$`, 'm'));
    }
    const again = await run(['render', '--store', store, '--out', out, '--backend', 'both', '--json']);
    expect(again.code, again.stderr).toBe(0);
    const summary = JSON.parse(again.stdout) as { agents: number; files: { file: string; bytes: number; changed: boolean }[] };
    expect(summary.agents).toBe(13);
    expect(summary.files.map((f) => [f.file, f.changed]).sort()).toEqual(names.map((f) => [f, false]));
  });

  it('an invalid store exits 1 naming the issues, and writes nothing', async () => {
    const r = await run(['render', '--store', bad, '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/agents\/01-extension-unquoted\.yaml:8: error/);
    expect(r.stderr).toMatch(/has \d+ error\(s\): nothing was written/);
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
  });

  it('--backend another than the store\'s: refused (exit 1, naming agent, field and fix) when an agent cannot work there, and nothing is written', async () => {
    // eve's md5: digest is made with pjsip's realm; chan_sip would check it against another one.
    writeFileSync(join(store, 'switchboard.yaml'), `${readFileSync(join(store, 'switchboard.yaml'), 'utf8')}sipRealm: pbx1\n`);
    expect((await run(['validate', '--store', store])).code).toBe(0);
    const r = await run(['render', '--store', store, '--out', out, '--backend', 'sip']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the store cannot be rendered for backend sip \(its own is pjsip\): 1 error\(s\), nothing was written/);
    expect(r.stderr).toMatch(/agents\/1005-eve\.yaml: error: agent "1005 eve", field password = "md5:…": md5: digests are made for backend pjsip of switchboard\.yaml, with pjsipRealm \(asterisk\), but backend sip is rendered and chan_sip checks them against sipRealm \(pbx1\)\. Fix: /);
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
    expect((await run(['render', '--store', store, '--out', out, '--backend', 'pjsip'])).code).toBe(0);
  });

  it('a broken --templates fails (exit 2, naming the file) before the store is read, and writes nothing', async () => {
    const templates = join(tmp, 'templates');
    cpSync(join(ROOT, 'templates'), templates, { recursive: true });
    writeFileSync(join(templates, 'pjsip', 'agent.hbs'), '{{#if endpoint.webrtc}}\nwebrtc = yes\n');
    // The store does not exist: the template error is what is reported.
    const r = await run(['render', '--store', join(tmp, 'no-such-store'), '--out', out, '--templates', templates]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(join(templates, 'pjsip', 'agent.hbs'));
    expect(r.stderr).toMatch(/does not compile/);
    expect(existsSync(out)).toBe(false);
    const missing = await run(['render', '--store', join(tmp, 'no-such-store'), '--out', out, '--templates', join(tmp, 'nowhere')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/templates directory .*nowhere does not exist/);
  });

  it('a template emitting a line Asterisk would misread is refused by the checker (exit 1) and the old files stay', async () => {
    expect((await run(['render', '--store', store, '--out', out])).code).toBe(0);
    const before = readFileSync(join(out, 'pjsip_switchboard.conf'), 'utf8');
    const templates = join(tmp, 'templates');
    cpSync(join(ROOT, 'templates'), templates, { recursive: true });
    const agent = join(templates, 'pjsip', 'agent.hbs');
    writeFileSync(agent, `${readFileSync(agent, 'utf8')}#include /etc/passwd\n`);
    const r = await run(['render', '--store', store, '--out', out, '--templates', templates]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/failed the safety check \(nothing was written\)/);
    expect(r.stderr).toMatch(/directive line "#include \/etc\/passwd"/);
    expect(readFileSync(join(out, 'pjsip_switchboard.conf'), 'utf8')).toBe(before);
  });
});

describe('switchboard diff', { timeout: 60_000 }, () => {
  it('exits 0 with no output when the directory holds what render would write, 1 with a unified diff after an edit', async () => {
    expect((await run(['render', '--store', store, '--out', out])).code).toBe(0);
    const same = await run(['diff', '--store', store, '--out', out]);
    expect(same).toMatchObject({ code: 0, stdout: '' });

    editAgent('1001-alice.yaml', 'codecs: [ulaw, alaw]', 'codecs: [alaw]');
    const r = await run(['diff', '--store', store, '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^--- a\/pjsip_switchboard\.conf\n\+\+\+ b\/pjsip_switchboard\.conf\n@@ -\d+,\d+ \+\d+,\d+ @@$/m);
    expect(r.stdout).toMatch(/^-allow = ulaw,alaw$/m);
    expect(r.stdout).toMatch(/^\+allow = alaw$/m);
    // diff never writes.
    expect(readFileSync(join(out, 'pjsip_switchboard.conf'), 'utf8')).toMatch(/^allow = ulaw,alaw$/m);
  });

  it('never shows a secret: a changed SIP password or voicemail PIN shows as a changed masked line', async () => {
    expect((await run(['render', '--store', store, '--out', out])).code).toBe(0);
    editAgent('1001-alice.yaml', 'password: "Str0ng&Secret1"', 'password: "N3w&Secret22"');
    editAgent('1001-alice.yaml', 'pin: "4321"', 'pin: "8765"');
    const r = await run(['diff', '--store', store, '--out', out]);
    expect(r.code).toBe(1);
    for (const secret of ['Str0ng&Secret1', 'N3w&Secret22', '4321', '8765']) expect(r.stdout, secret).not.toContain(secret);
    expect(r.stdout).toMatch(/^-password = <secret:[0-9a-f]{6}>$/m);
    expect(r.stdout).toMatch(/^\+password = <secret:[0-9a-f]{6}>$/m);
    expect(r.stdout).toMatch(/^\+1001 => <secret:[0-9a-f]{6}>,/m);
  });

  it('an empty output directory differs from everything (exit 1)', async () => {
    const r = await run(['diff', '--store', store, '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^\+\+\+ b\/extensions_switchboard\.conf$/m);
  });
});

describe('--help', { timeout: 60_000 }, () => {
  it.each([
    ['validate', ['--store', '--json']],
    ['render', ['--store', '--out', '--backend', '--templates', '--json']],
    ['diff', ['--store', '--out', '--backend', '--templates']],
  ])('%s --help lists its options and an example', async (command, options) => {
    const r = await run([command, '--help']);
    expect(r.code).toBe(0);
    for (const o of options) expect(r.stdout, o).toContain(o);
    expect(r.stdout).toMatch(/Examples:\n\s+switchboard /);
  });

  it('an unknown option is a usage error on stderr (exit 2)', async () => {
    const r = await run(['render', '--store', store, '--out', out, '--bakend', 'sip']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Unknown argument: bakend/);
    expect(r.stderr).toMatch(/Run with --help for usage/);
  });
});
