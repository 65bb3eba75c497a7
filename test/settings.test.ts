import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { SettingsError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import {
  SETTINGS_TABLE, loadDaemonSettings, redactedSettings, resolveConfigFile, settingsTableMarkdown, type DaemonSettings,
} from '../src/config/settings.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

let dir: string;
let storeDir: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sb-settings-'));
  storeDir = path.join(dir, 'store');
  mkdirSync(storeDir);
});

function writeIni(text: string, name = 'switchboard.ini'): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

function load(opts: { ini?: string; env?: NodeJS.ProcessEnv; flags?: Parameters<typeof loadDaemonSettings>[0]['flags'] } = {}): DaemonSettings {
  return loadDaemonSettings({
    ...(opts.ini !== undefined ? { configFile: writeIni(opts.ini) } : {}),
    env: opts.env ?? {},
    flags: opts.flags ?? {},
    cwd: dir,
  });
}

function loadError(opts: Parameters<typeof load>[0]): SettingsError {
  try {
    load(opts);
  } catch (err) {
    expect(err).toBeInstanceOf(SettingsError);
    return err as SettingsError;
  }
  throw new Error('expected a SettingsError');
}

describe('defaults', () => {
  it('fills every default and starts in render-only mode', () => {
    const s = load({ flags: { store: 'store' } });
    expect(s.store.dir).toBe(storeDir);
    expect(s.output.dir).toBe(path.join(dir, 'out'));
    expect(s.output.backend).toBeUndefined();
    expect(s.asterisk).toBeUndefined();
    expect(s.ari).toBeUndefined();
    expect(s.smtp).toBeUndefined();
    expect(s.apply).toEqual({ generations: 5, debounceMs: 150, verifyTimeoutMs: 5000 });
    expect(s.voicemail).toEqual({ maxDurationSeconds: 180, maxSilenceSeconds: 5, minDurationSeconds: 2 });
    expect(s.data.dir).toBe(path.join(dir, 'var'));
    expect(s.log.level).toBe('info');
    expect(s.sources).toEqual({ 'store.dir': 'flag' });
  });

  it('is frozen, deeply', () => {
    const s = load({ flags: { store: 'store' } });
    expect(Object.isFrozen(s)).toBe(true);
    expect(Object.isFrozen(s.apply)).toBe(true);
    expect(() => {
      (s.apply as { debounceMs: number }).debounceMs = 1;
    }).toThrow(TypeError);
  });
});

describe('precedence: defaults < settings file < environment < flags', () => {
  const ini = `
[store]
dir = store
[output]
backend = sip
[asterisk]
ami_host = 10.0.0.1
ami_port = 5039
ami_user = fromfile
ami_secret = filesecret
ami_keepalive_seconds = 15
[apply]
debounce_ms = 300
generations = 7
[log]
level = warn
`;

  it('the file overrides defaults', () => {
    const s = load({ ini });
    expect(s.asterisk).toEqual({ host: '10.0.0.1', port: 5039, user: 'fromfile', secret: 'filesecret', keepaliveSeconds: 15 });
    expect(s.apply.debounceMs).toBe(300);
    expect(s.apply.generations).toBe(7);
    expect(s.output.backend).toBe('sip');
    expect(s.log.level).toBe('warn');
    expect(s.sources['apply.debounce_ms']).toBe('file');
    expect(s.sources['apply.verify_timeout_ms']).toBeUndefined();
  });

  it('the environment overrides the file', () => {
    const s = load({
      ini,
      env: { SWITCHBOARD_ASTERISK_AMI_SECRET: 'envsecret', SWITCHBOARD_APPLY_DEBOUNCE_MS: '50', SWITCHBOARD_OUTPUT_BACKEND: 'both', HOME: '/x' },
    });
    expect(s.asterisk?.secret).toBe('envsecret');
    expect(s.asterisk?.user).toBe('fromfile');
    expect(s.apply.debounceMs).toBe(50);
    expect(s.output.backend).toBe('both');
    expect(s.sources['asterisk.ami_secret']).toBe('env');
  });

  it('flags override the environment and the file', () => {
    const s = load({
      ini,
      env: { SWITCHBOARD_APPLY_DEBOUNCE_MS: '50', SWITCHBOARD_ASTERISK_AMI_USER: 'fromenv' },
      flags: { debounceMs: 20, amiUser: 'fromflag', amiHost: '127.0.0.1', amiPort: '6000', backend: 'pjsip', logLevel: 'debug' },
    });
    expect(s.apply.debounceMs).toBe(20);
    expect(s.asterisk).toEqual({ host: '127.0.0.1', port: 6000, user: 'fromflag', secret: 'filesecret', keepaliveSeconds: 15 });
    expect(s.output.backend).toBe('pjsip');
    expect(s.log.level).toBe('debug');
    expect(s.sources['asterisk.ami_user']).toBe('flag');
  });

  it('an empty environment variable or flag counts as unset', () => {
    const s = load({ ini, env: { SWITCHBOARD_APPLY_DEBOUNCE_MS: '' }, flags: { amiUser: '' } });
    expect(s.apply.debounceMs).toBe(300);
    expect(s.asterisk?.user).toBe('fromfile');
  });

  it('paths in the file are relative to the file; from the environment and flags, to the working directory', () => {
    mkdirSync(path.join(dir, 'etc', 'store2'), { recursive: true });
    const file = writeIni('[store]\ndir = store2\n[output]\ndir = ../rendered\n', 'etc/switchboard.ini');
    const s = loadDaemonSettings({ configFile: file, env: {}, flags: {}, cwd: dir });
    expect(s.store.dir).toBe(path.join(dir, 'etc', 'store2'));
    expect(s.output.dir).toBe(path.join(dir, 'rendered'));
    const t = loadDaemonSettings({ configFile: file, env: { SWITCHBOARD_OUTPUT_DIR: 'o' }, flags: { store: 'store' }, cwd: dir });
    expect(t.store.dir).toBe(storeDir);
    expect(t.output.dir).toBe(path.join(dir, 'o'));
  });

  it('reads quoted values and values with escaped ; and #', () => {
    const s = load({ ini: '[store]\ndir = store\n[asterisk]\nami_host = h\nami_user = u\nami_secret = "a;b#c"\n[smtp]\nhost = mail.example.com\nfrom = vm@example.com\nuser = u\npassword = p\\;q ; comment\nsecure = true\n' });
    expect(s.asterisk?.secret).toBe('a;b#c');
    expect(s.smtp).toEqual({ host: 'mail.example.com', port: 587, secure: true, user: 'u', password: 'p;q', from: 'vm@example.com', requireTls: true });
  });

  it('reads the docker development stack\'s settings file (asterisk-dev/switchboard.ini)', () => {
    const file = path.join(ROOT, 'asterisk-dev', 'switchboard.ini');
    const s = loadDaemonSettings({ configFile: file, env: { SWITCHBOARD_STORE_DIR: storeDir }, flags: {}, cwd: dir });
    expect(s.store.dir).toBe(storeDir);
    expect(s.output).toEqual({ dir: '/etc/asterisk', backend: 'pjsip' });
    expect(s.asterisk).toMatchObject({ host: 'asterisk', port: 5038, user: 'switchboard' });
    expect(s.ari).toMatchObject({ url: 'http://asterisk:8088', app: 'switchboard' });
    expect(s.smtp).toMatchObject({ host: 'mailpit', port: 1025, secure: false, from: 'switchboard@example.com' });
    expect(s.sources['output.templates']).toBeUndefined();
  });

  it('a secret that looks like a boolean stays text', () => {
    const s = load({ ini: '[store]\ndir = store\n[asterisk]\nami_host = h\nami_user = u\nami_secret = true\n' });
    expect(s.asterisk?.secret).toBe('true');
  });

  it('reads every section of the shipped example', () => {
    const example = readFileSync(path.join(ROOT, 'switchboard.ini.example'), 'utf8').replace(/^dir = \/srv\/switchboard\/store$/m, `dir = ${storeDir}`);
    const s = load({ ini: example, env: { SWITCHBOARD_ASTERISK_AMI_SECRET: 'x', SWITCHBOARD_ARI_PASSWORD: 'y', SWITCHBOARD_SMTP_PASSWORD: 'z' } });
    expect(s.store.dir).toBe(storeDir);
    expect(s.asterisk?.host).toBe('127.0.0.1');
    expect(s.ari?.app).toBe('switchboard');
    expect(s.smtp?.from).toMatch(/@/);
  });
});

describe('validation: every problem names where, the section, the key and the fix', () => {
  it('reports every problem at once', () => {
    const err = loadError({
      ini: '[store]\ndir = store\n[asterisk]\nami_host = bad host\nami_port = 99999\nami_user = u\nami_secret = s\n[apply]\ndebounce_ms = soon\n[output]\nbackend = iax\n',
    });
    const problems = err.details.problems as { section: string; key: string }[];
    expect(problems.map((p) => `${p.section}.${p.key}`).sort()).toEqual(['apply.debounce_ms', 'asterisk.ami_host', 'asterisk.ami_port', 'output.backend']);
    expect(err.code).toBe('SETTINGS_INVALID');
    expect(err.message).toContain('4 problem(s)');
  });

  const cases: { name: string; opts: Parameters<typeof load>[0]; section: string; key: string; value?: string; fix: RegExp }[] = [
    { name: 'missing store', opts: {}, section: 'store', key: 'dir', fix: /--store DIR/ },
    { name: 'store dir does not exist', opts: { flags: { store: 'nope' } }, section: 'store', key: 'dir', value: 'nope', fix: /switchboard\.yaml/ },
    { name: 'port not a number', opts: { flags: { store: 'store', amiHost: 'h', amiUser: 'u', amiPort: 'x' } }, section: 'asterisk', key: 'ami_port', value: 'x', fix: /5038/ },
    { name: 'port out of range', opts: { ini: '[store]\ndir = store\n[asterisk]\nami_port = 0\n' }, section: 'asterisk', key: 'ami_port', value: '0', fix: /5038/ },
    { name: 'bad backend', opts: { flags: { store: 'store', backend: 'iax' } }, section: 'output', key: 'backend', value: 'iax', fix: /pjsip, sip or both/ },
    { name: 'bad log level', opts: { flags: { store: 'store' }, env: { SWITCHBOARD_LOG_LEVEL: 'loud' } }, section: 'log', key: 'level', value: 'loud', fix: /info/ },
    { name: 'debounce too large', opts: { flags: { store: 'store', debounceMs: 600000 } }, section: 'apply', key: 'debounce_ms', value: '600000', fix: /0 to 60000/ },
    { name: 'negative generations', opts: { ini: '[store]\ndir = store\n[apply]\ngenerations = -1\n' }, section: 'apply', key: 'generations', value: '-1', fix: /1 to 100/ },
    { name: 'AMI user without secret', opts: { flags: { store: 'store', amiHost: '127.0.0.1', amiUser: 'u' } }, section: 'asterisk', key: 'ami_secret', fix: /SWITCHBOARD_ASTERISK_AMI_SECRET/ },
    { name: 'AMI host without user', opts: { flags: { store: 'store', amiHost: '127.0.0.1' }, env: { SWITCHBOARD_ASTERISK_AMI_SECRET: 's' } }, section: 'asterisk', key: 'ami_user', fix: /manager\.conf/ },
    { name: 'AMI secret alone', opts: { flags: { store: 'store' }, env: { SWITCHBOARD_ASTERISK_AMI_SECRET: 's' } }, section: 'asterisk', key: 'ami_secret', fix: /ami_host and ami_user/ },
    { name: 'ARI URL not http', opts: { ini: '[store]\ndir = store\n[ari]\nurl = ftp://x\nuser = u\npassword = p\n' }, section: 'ari', key: 'url', value: 'ftp://x', fix: /http:\/\/127\.0\.0\.1:8088/ },
    { name: 'ARI URL with credentials', opts: { ini: '[store]\ndir = store\n[ari]\nurl = http://u:p@x:8088\nuser = u\npassword = p\n' }, section: 'ari', key: 'url', fix: /without user or password/ },
    { name: 'ARI without password', opts: { ini: '[store]\ndir = store\n[ari]\nurl = http://x:8088\nuser = u\n' }, section: 'ari', key: 'password', fix: /SWITCHBOARD_ARI_PASSWORD/ },
    { name: 'SMTP without from', opts: { ini: '[store]\ndir = store\n[smtp]\nhost = mail.example.com\n' }, section: 'smtp', key: 'from', fix: /voicemail@example\.com/ },
    { name: 'SMTP bad from', opts: { ini: '[store]\ndir = store\n[smtp]\nhost = mail.example.com\nfrom = nobody\n' }, section: 'smtp', key: 'from', value: 'nobody', fix: /voicemail@example\.com/ },
    { name: 'SMTP user without password', opts: { ini: '[store]\ndir = store\n[smtp]\nhost = m\nfrom = a@b.c\nuser = u\n' }, section: 'smtp', key: 'password', fix: /SWITCHBOARD_SMTP_PASSWORD/ },
    { name: 'SMTP secure not a boolean', opts: { ini: '[store]\ndir = store\n[smtp]\nhost = m\nfrom = a@b.c\nsecure = maybe\n' }, section: 'smtp', key: 'secure', value: 'maybe', fix: /true or false/ },
    { name: 'voicemail min above max', opts: { ini: '[store]\ndir = store\n[voicemail]\nmin_duration_seconds = 30\nmax_duration_seconds = 20\n' }, section: 'voicemail', key: 'min_duration_seconds', value: '30', fix: /max_duration_seconds/ },
    { name: 'ring timeout too short', opts: { ini: '[store]\ndir = store\n[voicemail]\nring_timeout_seconds = 1\n' }, section: 'voicemail', key: 'ring_timeout_seconds', value: '1', fix: /5 to 300/ },
    { name: 'unknown key', opts: { ini: '[store]\ndir = store\n[asterisk]\namihost = x\n' }, section: 'asterisk', key: 'amihost', fix: /ami_host/ },
    { name: 'unknown section', opts: { ini: '[store]\ndir = store\n[astrisk]\nami_host = x\n' }, section: 'astrisk', key: 'ami_host', fix: /\[asterisk\]/ },
    { name: 'key outside a section', opts: { ini: 'dir = store\n' }, section: '', key: 'dir', fix: /\[store\]/ },
    { name: 'key set twice', opts: { ini: '[store]\ndir = store\ndir = store\n' }, section: 'store', key: 'dir', fix: /one line/ },
    { name: 'nested section', opts: { ini: '[store]\ndir = store\n[asterisk.ami]\nhost = x\n' }, section: 'asterisk.ami', key: '', fix: /no dots/ },
    { name: 'output dir is a file', opts: { flags: { store: 'store', out: 'f' } }, section: 'output', key: 'dir', fix: /directory/ },
    { name: 'output dir is the store', opts: { flags: { store: 'store', out: 'store' } }, section: 'output', key: 'dir', fix: /directory of their own/ },
    { name: 'templates dir missing', opts: { flags: { store: 'store', templates: 'tpl' } }, section: 'output', key: 'templates', value: 'tpl', fix: /templates\// },
    { name: 'CR/LF in a secret', opts: { flags: { store: 'store', amiHost: 'h', amiUser: 'u' }, env: { SWITCHBOARD_ASTERISK_AMI_SECRET: 'a\r\nAction: x' } }, section: 'asterisk', key: 'ami_secret', fix: /manager\.conf/ },
  ];

  for (const c of cases) {
    it(c.name, () => {
      writeFileSync(path.join(dir, 'f'), 'x');
      const err = loadError(c.opts);
      const problems = err.details.problems as { section: string; key: string; value?: string; fix: string; message: string }[];
      const p = problems.find((x) => x.section === c.section && x.key === c.key);
      expect(p, `${err.message}`).toBeDefined();
      expect(p!.fix).toMatch(c.fix);
      // The one-line message a user sees names the section and key, the value, and the fix.
      const line = err.message.split('\n').find((l) => l.includes(p!.message));
      expect(line).toBeDefined();
      if (c.section) expect(p!.message).toContain(`[${c.section}]`);
      if (c.key) expect(p!.message).toContain(c.key);
      if (c.value !== undefined) expect(p!.message).toContain(JSON.stringify(c.value));
      expect(p!.message).toMatch(/Fix: /);
    });
  }

  it('names the settings file, and the environment variable or flag a bad value came from', () => {
    const file = writeIni('[store]\ndir = store\n[apply]\ngenerations = many\n');
    const e1 = (() => {
      try {
        loadDaemonSettings({ configFile: file, env: { SWITCHBOARD_APPLY_DEBOUNCE_MS: 'x' }, flags: { amiPort: 'y', amiHost: 'h', amiUser: 'u' }, cwd: dir });
      } catch (err) {
        return err as SettingsError;
      }
      throw new Error('no error');
    })();
    expect(e1.message).toContain(`${file}: [apply] generations = "many"`);
    expect(e1.message).toContain('environment SWITCHBOARD_APPLY_DEBOUNCE_MS (setting [apply] debounce_ms) = "x"');
    expect(e1.message).toContain('flag --ami-port (setting [asterisk] ami_port) = "y"');
  });

  it('a --config file that does not exist is an error', () => {
    expect(() => loadDaemonSettings({ configFile: path.join(dir, 'missing.ini'), env: {}, flags: { store: storeDir } })).toThrow(/missing\.ini.*does not exist.*--config/s);
  });

  it('never shows a secret in an error message', () => {
    const err = loadError({ flags: { store: 'store' }, env: { SWITCHBOARD_ASTERISK_AMI_SECRET: 'hunter2\nx', SWITCHBOARD_ARI_PASSWORD: 'pw\rx' } });
    expect(err.message).not.toContain('hunter2');
    expect(err.message).not.toContain('pw');
    expect(JSON.stringify(err.details)).not.toContain('hunter2');
  });

  it('warns about an unknown SWITCHBOARD_ variable', () => {
    const s = load({ flags: { store: 'store' }, env: { SWITCHBOARD_ASTERISK_HOST: 'x', SWITCHBOARD_CONFIG: 'y' } });
    expect(s.warnings).toHaveLength(1);
    expect(s.warnings[0]).toContain('SWITCHBOARD_ASTERISK_HOST');
  });
});

describe('secrets', () => {
  const ini = '[store]\ndir = store\n[asterisk]\nami_host = 127.0.0.1\nami_user = sb\nami_secret = amis3cret\n[ari]\nurl = http://127.0.0.1:8088\nuser = sb\npassword = aripa55\n[smtp]\nhost = mail.example.com\nfrom = vm@example.com\nuser = mailer\npassword = smtppa55\n';

  it('redactedSettings() holds no secret', () => {
    const s = load({ ini });
    const text = JSON.stringify(redactedSettings(s));
    for (const secret of ['amis3cret', 'aripa55', 'smtppa55']) expect(text).not.toContain(secret);
    expect(redactedSettings(s)).toMatchObject({ asterisk: { host: '127.0.0.1', user: 'sb', secret: '[redacted]' }, ari: { password: '[redacted]' }, smtp: { user: 'mailer', password: '[redacted]' } });
  });

  it('logging the settings object itself through the project logger redacts the secrets too', () => {
    const s = load({ ini });
    let out = '';
    const destination = new Writable({ write(chunk, _enc, cb) { out += String(chunk); cb(); } });
    const log = createLogger({ destination });
    log.info({ settings: s }, 'nested');
    log.info({ ...s }, 'top level');
    expect(out).toContain('127.0.0.1');
    for (const secret of ['amis3cret', 'aripa55', 'smtppa55']) expect(out).not.toContain(secret);
  });

  it('the AMI secret has no flag (only the file or the environment)', () => {
    const row = SETTINGS_TABLE.find((r) => r.key === 'ami_secret')!;
    expect(row.flag).toBeUndefined();
    expect(row.secret).toBe(true);
    expect(SETTINGS_TABLE.filter((r) => r.secret).every((r) => r.flag === undefined)).toBe(true);
  });
});

describe('the settings table', () => {
  it('lists every section the brief names, with env names SWITCHBOARD_<SECTION>_<KEY>', () => {
    expect([...new Set(SETTINGS_TABLE.map((r) => r.section))]).toEqual(['store', 'output', 'asterisk', 'apply', 'ari', 'smtp', 'voicemail', 'data', 'log']);
    for (const r of SETTINGS_TABLE) expect(r.env).toBe(`SWITCHBOARD_${r.section}_${r.key}`.toUpperCase());
    expect(SETTINGS_TABLE.find((r) => r.section === 'apply' && r.key === 'debounce_ms')).toMatchObject({ default: '150', flag: '--debounce-ms', env: 'SWITCHBOARD_APPLY_DEBOUNCE_MS' });
  });

  it('every row is read from the file and from the environment', () => {
    // A setting the table documents but the loader ignores would fail here.
    const samples: Record<string, string> = {
      'store.dir': storeDir, 'output.dir': path.join(dir, 'o'), 'output.backend': 'sip', 'output.templates': storeDir,
      'asterisk.ami_host': 'pbx.example.com', 'asterisk.ami_port': '5040', 'asterisk.ami_user': 'sb', 'asterisk.ami_secret': 's', 'asterisk.ami_keepalive_seconds': '12',
      'apply.generations': '3', 'apply.debounce_ms': '3', 'apply.verify_timeout_ms': '300',
      'ari.url': 'http://pbx:8088', 'ari.user': 'sb', 'ari.password': 'p', 'ari.app': 'sbapp', 'ari.rest_over_websocket': 'off',
      'smtp.host': 'mail', 'smtp.port': '25', 'smtp.secure': 'true', 'smtp.user': 'u', 'smtp.password': 'p', 'smtp.from': 'a@b.cd', 'smtp.require_tls': 'false',
      'voicemail.max_duration_seconds': '100', 'voicemail.max_silence_seconds': '9', 'voicemail.min_duration_seconds': '3', 'voicemail.ring_timeout_seconds': '25',
      'data.dir': path.join(dir, 'd'), 'log.level': 'debug',
    };
    expect(Object.keys(samples).sort()).toEqual(SETTINGS_TABLE.map((r) => `${r.section}.${r.key}`).sort());
    const sections = [...new Set(SETTINGS_TABLE.map((r) => r.section))];
    const text = sections.map((sec) => `[${sec}]\n` + SETTINGS_TABLE.filter((r) => r.section === sec).map((r) => `${r.key} = ${samples[`${sec}.${r.key}`]}\n`).join('')).join('');
    const fromFile = loadDaemonSettings({ configFile: writeIni(text), env: {}, flags: {}, cwd: dir });
    const env = Object.fromEntries(SETTINGS_TABLE.map((r) => [r.env, samples[`${r.section}.${r.key}`]!]));
    const fromEnv = loadDaemonSettings({ env, flags: {}, cwd: dir });
    for (const s of [fromFile, fromEnv]) {
      expect(Object.keys(s.sources).sort()).toEqual(Object.keys(samples).sort());
      expect(s).toMatchObject({
        store: { dir: storeDir }, output: { dir: path.join(dir, 'o'), backend: 'sip', templates: storeDir },
        asterisk: { host: 'pbx.example.com', port: 5040, user: 'sb', secret: 's', keepaliveSeconds: 12 },
        apply: { generations: 3, debounceMs: 3, verifyTimeoutMs: 300 },
        ari: { url: 'http://pbx:8088', user: 'sb', password: 'p', app: 'sbapp', restOverWebSocket: 'off' },
        smtp: { host: 'mail', port: 25, secure: true, user: 'u', password: 'p', from: 'a@b.cd', requireTls: false },
        voicemail: { maxDurationSeconds: 100, maxSilenceSeconds: 9, minDurationSeconds: 3, ringTimeoutSeconds: 25 },
        data: { dir: path.join(dir, 'd') }, log: { level: 'debug' },
      });
    }
    expect(new Set(Object.values(fromFile.sources))).toEqual(new Set(['file']));
    expect(new Set(Object.values(fromEnv.sources))).toEqual(new Set(['env']));
  });

  it('docs/SETTINGS.md holds the current table (regenerate: UPDATE_SETTINGS_DOC=1 npx vitest run test/settings.test.ts)', () => {
    const docFile = path.join(ROOT, 'docs', 'SETTINGS.md');
    const begin = '<!-- settings-table:begin (generated from src/config/settings.ts; do not edit) -->';
    const end = '<!-- settings-table:end -->';
    const expected = `${begin}\n${settingsTableMarkdown()}${end}`;
    let doc = readFileSync(docFile, 'utf8');
    if (process.env.UPDATE_SETTINGS_DOC) {
      doc = doc.slice(0, doc.indexOf(begin)) + expected + doc.slice(doc.indexOf(end) + end.length);
      writeFileSync(docFile, doc);
    }
    const i = doc.indexOf(begin);
    const j = doc.indexOf(end);
    expect(i).toBeGreaterThan(-1);
    expect(j).toBeGreaterThan(i);
    expect(doc.slice(i, j + end.length)).toBe(expected);
  });
});

describe('resolveConfigFile', () => {
  it('prefers --config, then $SWITCHBOARD_CONFIG, then ./switchboard.ini if present', () => {
    expect(resolveConfigFile('a.ini', { SWITCHBOARD_CONFIG: 'b.ini' }, dir)).toBe(path.join(dir, 'a.ini'));
    expect(resolveConfigFile(undefined, { SWITCHBOARD_CONFIG: 'b.ini' }, dir)).toBe(path.join(dir, 'b.ini'));
    expect(resolveConfigFile(undefined, {}, dir)).toBeUndefined();
    writeIni('[store]\ndir = store\n');
    expect(resolveConfigFile(undefined, {}, dir)).toBe(path.join(dir, 'switchboard.ini'));
  });
});
