import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { validateAgent, type DraftAgent } from '../src/model/agent.js';
import { RE, freeTextProblem, isHostAddress, normaliseGroups, passwordPolicyProblem, PASSWORD_SPECIALS } from '../src/model/fields.js';
import { IssueList, type Issue } from '../src/model/issues.js';
import { parseNat, pjsipNat } from '../src/model/nat.js';
import { DEFAULT_TRANSPORTS, validateSettings } from '../src/model/settings.js';
import { validateAgents } from '../src/model/store.js';
import type { Settings } from '../src/model/types.js';
import { parseYamlSource } from '../src/store/source.js';
import { YamlStore } from '../src/store/yaml-store.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BAD = path.join(ROOT, 'fixtures', 'bad-store');
const FIXTURE_SETTINGS = readFileSync(path.join(ROOT, 'fixtures', 'store', 'switchboard.yaml'), 'utf8');

function settingsFrom(yaml: string): { settings: Settings; issues: Issue[] } {
  const issues = new IssueList();
  const settings = validateSettings(parseYamlSource('switchboard.yaml', yaml, issues), issues);
  return { settings, issues: issues.items };
}
function agentsFrom(files: Record<string, string>, settingsYaml = FIXTURE_SETTINGS) {
  const issues = new IssueList();
  const settings = validateSettings(parseYamlSource('switchboard.yaml', settingsYaml, issues), issues);
  const drafts: DraftAgent[] = [];
  for (const [file, text] of Object.entries(files)) {
    const d = validateAgent(parseYamlSource(file, text, issues), settings, issues);
    if (d) drafts.push(d);
  }
  return { agents: validateAgents(drafts, settings, issues), issues: issues.items };
}
const AGENT = `id: 5001
username: probe
firstName: Probe
lastName: Agent
email: probe@example.com
typology: phonebar
extension: "1500"
password: "Probe#Pass1"
voicemail:
  pin: "5001"
`;

describe('fixtures/bad-store', () => {
  let issues: Issue[];
  let store: unknown;
  const expected = readFileSync(path.join(BAD, 'expected-issues.txt'), 'utf8').split('\n').filter((l) => l !== '');
  const fileText = (file: string) => readFileSync(path.join(BAD, file), 'utf8');

  beforeAll(async () => {
    const r = await new YamlStore(BAD).loadAll();
    issues = r.issues;
    store = r.store;
  });

  it('produces exactly the messages of expected-issues.txt, in order', () => {
    expect(issues.map((i) => i.message)).toEqual(expected);
    expect(store).toBeUndefined();
  });

  it('has at least one issue for every bad file, and none for the files that are fine', () => {
    const files = readdirSync(path.join(BAD, 'agents')).map((n) => `agents/${n}`);
    const withIssues = new Set(issues.map((i) => i.file));
    const fine = ['agents/04-name-digits-ok.yaml', 'agents/50-dup-original.yaml'];
    for (const f of files) expect(withIssues.has(f), f).toBe(!fine.includes(f));
    // Files that only warn.
    for (const f of ['agents/16-mobile-udp.yaml', 'agents/36-warnings.yaml', 'agents/48-srtp-first-transport.yaml']) {
      expect(issues.filter((i) => i.file === f).map((i) => i.severity)).toSatisfy((s: string[]) => s.length > 0 && s.every((x) => x === 'warning'));
    }
  });

  it('every message names the file, the agent, the field and a fix, and says the severity', () => {
    for (const i of issues) {
      expect(i.message.startsWith(i.line ? `${i.file}:${i.line}: ${i.severity}:` : `${i.file}: ${i.severity}:`), i.message).toBe(true);
      expect(i.fix.length, i.message).toBeGreaterThan(5);
      expect(i.message.endsWith(`. Fix: ${i.fix}`), i.message).toBe(true);
      expect(i.code, i.message).toMatch(/^[A-Z_]+$/);
      if (i.field) expect(i.message).toContain(`field ${i.field}`);
      if (i.agent) expect(i.message).toContain(`agent "${i.agent}"`);
      // Once the file parses into a mapping, every issue says which agent and field it is about.
      if (i.code !== 'YAML_SYNTAX' && i.code !== 'AGENT_NOT_A_MAPPING') {
        expect(i.agent, i.message).toBeTruthy();
        expect(i.field, i.message).toBeTruthy();
      }
    }
  });

  it('gives the line of the offending key whenever the parser knows it', () => {
    let checked = 0;
    for (const i of issues) {
      if (!i.field || i.code.startsWith('DUPLICATE_') || i.code === 'FIELD_REQUIRED' || i.code === 'NO_EMAIL') continue;
      expect(i.line, i.message).toBeDefined();
      const lines = fileText(i.file).split('\n');
      const key = i.field.split('.').filter((p) => !/^\d+$/.test(p)).at(-1)!;
      const at = lines[i.line! - 1]!;
      // The line holds the key, or (for a list item or a nested mapping) sits right under it.
      const ok = at.trimStart().startsWith(`${key}:`) || at.trimStart().startsWith('- ') || lines[i.line! - 2]?.trimStart().startsWith(`${key}:`);
      expect(ok, `${i.message}\n  line ${i.line}: ${at}`).toBe(true);
      checked++;
    }
    expect(checked).toBeGreaterThan(50);
    const line = (file: string, code: string) => issues.find((i) => i.file === `agents/${file}` && i.code === code)?.line;
    expect(line('01-extension-unquoted.yaml', 'NUMBER_NOT_QUOTED')).toBe(8);
    expect(line('02-did-unquoted.yaml', 'NUMBER_NOT_QUOTED')).toBe(11);
    expect(line('18-unknown-fields.yaml', 'FIELD_UNKNOWN')).toBe(6);
    expect(line('60-bad-yaml.yaml', 'YAML_SYNTAX')).toBe(5);
    expect(line('62-duplicate-key.yaml', 'YAML_SYNTAX')).toBe(8);
  });

  it('says to quote numbers that YAML would change', () => {
    const q = issues.filter((i) => i.code === 'NUMBER_NOT_QUOTED');
    expect(q.map((i) => [i.file, i.field])).toEqual([
      ['agents/01-extension-unquoted.yaml', 'extension'],
      ['agents/02-did-unquoted.yaml', 'dids.1'],
      ['agents/30-pin-unquoted.yaml', 'voicemail.pin'],
      ['agents/45-password-number.yaml', 'password'],
    ]);
    // The fix echoes what was written, leading zero and "+" included (but never a password).
    expect(q[0]!.fix).toBe('quote it as text, e.g. extension: "0100"');
    expect(q[1]!.fix).toBe('quote it: - "+61290002012"');
    // A PIN is a secret: the fix never repeats it.
    expect(q[2]!.fix).toBe('quote it as text, e.g. pin: "<the same characters>"');
    expect(q[2]!.message).not.toContain('123');
  });

  it('never shows a password, however it is wrong', () => {
    const passwords = readdirSync(path.join(BAD, 'agents')).flatMap((n) => {
      const m = /^password: "?([^"\n]+)"?$/m.exec(fileText(`agents/${n}`));
      return m ? [m[1]!.replace(/^md5:/, '')] : [];
    });
    expect(passwords).toEqual(expect.arrayContaining(['weakpass', 'Hidden Pass;27', '98765432', '5d41402abc4b2a76b9719d911017c59']));
    for (const i of issues) {
      for (const p of passwords) {
        expect(i.message, `message leaks a password`).not.toContain(p);
        expect(i.value ?? '').not.toContain(p);
      }
    }
    const pw = issues.filter((i) => i.field === 'password');
    expect(pw.map((i) => i.code)).toEqual(['PASSWORD_POLICY', 'FIELD_INVALID', 'FIELD_INVALID', 'FIELD_REQUIRED', 'NUMBER_NOT_QUOTED']);
    expect(pw.map((i) => i.value)).toEqual(['********', '********', 'md5:…', undefined, '********']);
  });

  it('names both files of a duplicate', () => {
    const dups = issues.filter((i) => i.code.startsWith('DUPLICATE_') && i.code !== 'DUPLICATE_DID' || i.code === 'DUPLICATE_DID' && i.file !== 'agents/37-did-rules.yaml');
    expect(dups.map((i) => i.code)).toEqual(['DUPLICATE_ID', 'DUPLICATE_USERNAME', 'DUPLICATE_EXTENSION', 'DUPLICATE_DID']);
    for (const d of dups) expect(d.message).toContain('already used by agent "3001 original" in agents/50-dup-original.yaml');
  });
});

describe('normaliseGroups', () => {
  it.each([
    [undefined, ''], [null, ''], ['', ''],
    [7, '7'], [0, '0'], ['63', '63'],
    ['1,3-5', '1,3-5'], [[1, '3-5'], '1,3-5'],
    ['5, 1, 3 - 4, 2', '1-5'], ['1,1,2', '1-2'], ['3-3', '3'], ['1-2,4-5,3', '1-5'], ['0-2,63', '0-2,63'],
    [[9, '7-8', 63, 0], '0,7-9,63'], [' 4 ', '4'],
  ])('%j → %j', (input, value) => {
    expect(normaliseGroups(input)).toEqual({ value });
  });
  it.each([
    [64, /group 64 is out of range: groups are 0-63/],
    ['1,70-72', /group 72 is out of range/],
    ['5-3', /range "5-3" runs backwards: write 3-5/],
    ['1,,2', /empty item/],
    ['a', /"a" is not a group number/],
    ['-1', /"-1" is not a group number/],
    ['1.5', /"1.5" is not a group number/],
    ['1;2', /"1;2" is not a group number/],
    ['1\n[x]', /is not a group number/],
    [[true], /list items must be numbers/],
    [[[1]], /list items must be numbers/],
    [{ a: 1 }, /must be a number, a list, or text/],
    [true, /must be a number, a list, or text/],
  ])('%j is refused', (input, problem) => {
    const r = normaliseGroups(input);
    expect('problem' in r && r.problem).toMatch(problem);
  });
});

describe('parseNat', () => {
  it.each([
    ['yes', ['force_rport', 'comedia']],
    ['no', ['no']], ['never', ['no']], ['route', ['no']],
    ['force_rport', ['force_rport']], ['comedia', ['comedia']],
    ['comedia,force_rport', ['force_rport', 'comedia']],
    [' force_rport , comedia ', ['force_rport', 'comedia']],
    ['auto_force_rport', ['auto_force_rport']], ['auto_comedia', ['auto_comedia']],
    ['force_rport,auto_force_rport', ['force_rport']],
    ['comedia,auto_comedia,auto_force_rport', ['comedia', 'auto_force_rport']],
  ])('%s → %j', (text, value) => {
    expect(parseNat(text)).toEqual({ value });
  });
  it.each([
    ['sometimes', /"sometimes" is not a NAT setting/],
    ['', /"" is not a NAT setting/],
    ['YES', /"YES" is not a NAT setting/],
    ['yes,comedia', /"yes" already means force_rport,comedia/],
    ['no,force_rport', /cannot be combined/],
    ['never,route', /cannot be combined/],
    ['force_rport;comedia', /not a NAT setting/],
  ])('%j is refused', (text, problem) => {
    const r = parseNat(text);
    expect('problem' in r && r.problem).toMatch(problem);
  });
  it('maps to pjsip options as sip_to_pjsip does', () => {
    expect(pjsipNat(['force_rport', 'comedia'])).toEqual({ forceRport: true, rtpSymmetric: true, rewriteContact: true });
    expect(pjsipNat(['comedia'])).toEqual({ forceRport: false, rtpSymmetric: true, rewriteContact: false });
    expect(pjsipNat(['auto_force_rport'])).toEqual({ forceRport: true, rtpSymmetric: false, rewriteContact: true });
    expect(pjsipNat(['no'])).toEqual({ forceRport: false, rtpSymmetric: false, rewriteContact: false });
  });
});

describe('isHostAddress', () => {
  it.each(['192.0.2.1', '192.0.2.1:5060', '0.0.0.0', '255.255.255.255:65535', 'pbx.example.com', 'pbx.example.com:5061', 'localhost', 'a-b.example', '[2001:db8::1]', '[2001:db8::1]:5060', '[::1]'])(
    '%s is an address',
    (h) => expect(isHostAddress(h)).toBe(true),
  );
  it.each([
    '999.1.1.1', '1.2.3', '1.2.3.4.5', '192.0.2.1:0', '192.0.2.1:65536', '192.0.2.1:', '2001:db8::1', '[192.0.2.1]', '[2001:db8::1', '[2001:db8::1]:',
    '', 'host name', '-bad.example.com', 'bad-.example.com', 'a..b', 'x;y', 'x\n[evil]', 'sip:pbx.example.com', 'pbx.example.com/x', 'dynamic ', 'ä.example.com',
  ])('%j is not', (h) => expect(isHostAddress(h)).toBe(false));
});

describe('passwordPolicyProblem', () => {
  it('accepts a password with every class, and each special character', () => {
    expect(passwordPolicyProblem('Str0ng&Secret1')).toBeUndefined();
    for (const c of PASSWORD_SPECIALS) expect(passwordPolicyProblem(`Abcdef1${c}`), c).toBeUndefined();
  });
  it.each([
    ['Abc1!', ['at least 8 characters']],
    ['abcdefg1!', ['an uppercase letter']],
    ['ABCDEFG1!', ['a lowercase letter']],
    ['Abcdefgh!', ['a digit']],
    ['Abcdefgh1', [`one of ${PASSWORD_SPECIALS}`]],
    ['Abcdefg1*', [`one of ${PASSWORD_SPECIALS}`]],
    ['', ['at least 8 characters', 'a lowercase letter', 'an uppercase letter', 'a digit', `one of ${PASSWORD_SPECIALS}`]],
  ])('%j needs %j', (p, missing) => {
    expect(passwordPolicyProblem(p)).toBe(`the password policy needs ${missing.join(', ')}`);
  });
  it('never repeats the password', () => {
    for (const p of ['short', 'alllowercase', 'ALLUPPER1', 'NoDigits!!']) expect(passwordPolicyProblem(p)).not.toContain(p);
  });
});

describe('freeTextProblem', () => {
  it.each([
    ['Alice\nSmith', /line break or control/], ['Alice\rSmith', /line break or control/], ['A\u0000', /control/], ['A\tB', /control/], ['A\u007f', /control/],
    // Unicode line and paragraph separators end a line for JavaScript (and the rendered-file checker);
    // C1 controls include NEL (U+0085), a line break to Unicode.
    ['Alice\u2028Smith', /line break or control/], ['Alice\u2029Smith', /line break or control/],
    ['Alice\u0085Smith', /line break or control/], ['A\u0080', /control/], ['A\u009f', /control/], ['A\u008dB', /control/],
    ['Alice; Smith', /";"/], ['[evil]', /section brackets/], ['a]b', /section brackets/],
    ['${SHELL(rm -rf /)}', /dialplan expression/], ['$(1+1)${X}', /dialplan expression/], ['$[1+1]', /dialplan expression|section brackets/],
    ['"Alice"', /quote or angle/], ['<1001>', /quote or angle/], ['a>b', /quote or angle/], ['a\\b', /backslash/],
    ['#include /etc/passwd', /starts with "#"/], ['#exec id', /starts with "#"/],
    [' Alice', /leading or trailing spaces/], ['Alice ', /leading or trailing spaces/], ['', /is empty/], ['x'.repeat(81), /longer than 80/],
  ])('%j is refused', (s, problem) => {
    expect(freeTextProblem(s)).toMatch(problem);
  });
  it.each(['Alice Smith', "O'Neil", 'Inês Costa-Silva', 'Zoë 😀', '\u200fRTL', '$5 off', 'a#b', 'Smith, Alice', 'a|b', 'x'.repeat(80)])('%j is accepted', (s) => {
    expect(freeTextProblem(s)).toBeUndefined();
  });
  it('draws the line exactly at C1 controls and the Unicode line and paragraph separators', () => {
    expect([0x7f, 0x80, 0x85, 0x9f, 0x2028, 0x2029].map((c) => freeTextProblem(`a${String.fromCharCode(c)}b`))).toEqual(Array(6).fill('holds a line break or control character'));
    // Their neighbours are text: no-break space, "Ÿ", the hyphenation point, the narrow no-break space.
    for (const c of [0x7e, 0xa0, 0xa1, 0x178, 0x2027, 0x202f]) expect(freeTextProblem(`a${String.fromCharCode(c)}b`), c.toString(16)).toBeUndefined();
  });
});

describe('field patterns', () => {
  it('DIDs are E.164, extensions and PINs are digits, usernames are identifiers', () => {
    expect(['+61290000001', '+4930123456', '+12025550123'].every((d) => RE.did.test(d))).toBe(true);
    expect(['61290000001', '+0290000001', '+612', '+61 290000001', '+61290000001\n'].some((d) => RE.did.test(d))).toBe(false);
    expect(['0100', '1001', '12'].every((e) => RE.extension.test(e))).toBe(true);
    expect(['1', '10a', '1001\n', '+1001'].some((e) => RE.extension.test(e))).toBe(false);
    expect(['alice.smith', 'bob_jones', 'Original'].every((u) => RE.username.test(u))).toBe(true);
    expect(['alice smith', 'a-b', 'a;b', 'a[b]', ''].some((u) => RE.username.test(u))).toBe(false);
  });
});

describe('settings', () => {
  it('an empty (or missing) switchboard.yaml gives every documented default', () => {
    for (const yaml of ['', '# nothing\n']) {
      const { settings, issues } = settingsFrom(yaml);
      expect(issues).toEqual([]);
      expect(settings).toEqual({
        organisation: { name: 'switchboard', cli: '' },
        backend: 'pjsip',
        defaults: { context: 'from-sip', codecs: ['ulaw', 'alaw'], nat: ['force_rport', 'comedia'], timezone: 'UTC', language: 'en', ringTimeoutSeconds: 20, sipExpires: 3600 },
        voicemail: { context: 'switchboard' },
        dialplan: { agentsContext: 'switchboard-agents', didContext: 'switchboard-dids', spyContext: 'switchboard-spy', spyPrefix: '*22', stasisApp: 'switchboard', recordingsDir: 'switchboard' },
        extensions: { from: 1000, to: 1999, width: 4 },
        pjsipRealm: 'asterisk',
        sipRealm: 'asterisk',
        passwordPolicy: true,
        transports: [{ name: 'transport-udp', protocol: 'udp', bind: '0.0.0.0:5060', localNets: [] }],
        file: 'switchboard.yaml',
      });
      expect(settings.transports).toBe(DEFAULT_TRANSPORTS);
    }
  });

  it('reads the sample settings', () => {
    const { settings, issues } = settingsFrom(FIXTURE_SETTINGS);
    expect(issues).toEqual([]);
    expect(settings.organisation).toEqual({ name: 'Acme Contact Centre', cli: '+61290000000' });
    expect(settings.defaults.codecs).toEqual(['ulaw', 'alaw', 'g722']);
    expect(settings.defaults.timezone).toBe('Australia/Sydney');
    expect(settings.transports.map((t) => [t.name, t.protocol, t.bind])).toEqual([
      ['transport-udp', 'udp', '0.0.0.0:5060'], ['transport-tcp', 'tcp', '0.0.0.0:5060'], ['transport-tls', 'tls', '0.0.0.0:5061'],
      ['transport-ws', 'ws', '0.0.0.0:5066'], ['transport-wss', 'wss', '0.0.0.0:5067'],
    ]);
    expect(settings.transports[0]).toMatchObject({ externalAddress: '203.0.113.10', localNets: ['192.168.0.0/16', '10.0.0.0/8'] });
    expect(settings.transports[2]).toMatchObject({ certFile: '/etc/asterisk/keys/asterisk.crt', privKeyFile: '/etc/asterisk/keys/asterisk.key', method: 'tlsv1_2' });
  });

  it('fills a transport\'s name and port from its protocol', () => {
    const { settings, issues } = settingsFrom('transports:\n  - protocol: tcp\n  - protocol: ws\n  - protocol: wss\n');
    expect(issues).toEqual([]);
    expect(settings.transports.map((t) => `${t.name} ${t.bind}`)).toEqual(['transport-tcp 0.0.0.0:5060', 'transport-ws 0.0.0.0:8088', 'transport-wss 0.0.0.0:8089']);
  });

  it.each([
    ['backnd: pjsip\n', 'backnd', /is not a known field.*did you mean "backend"/],
    ['backend: asterisk\n', 'backend', /must be one of pjsip, sip, both/],
    ['defaults:\n  codecs: [pcmu]\n', 'defaults.codecs', /"pcmu" is not a codec/],
    ['defaults:\n  nat: sometimes\n', 'defaults.nat', /not a NAT setting/],
    ['defaults:\n  timezone: Mars/Base\n', 'defaults.timezone', /not an IANA time zone/],
    ['defaults:\n  ringTimeoutSeconds: 1\n', 'defaults.ringTimeoutSeconds', /whole number from 5 to 300/],
    ['defaults:\n  context: "from sip"\n', 'defaults.context', /dialplan context name/],
    ['extensions:\n  from: 1000\n', 'extensions.from', /quote it as text, e.g. from: "1000"/],
    ['extensions:\n  from: "2000"\n  to: "1999"\n', 'extensions', /must run upwards/],
    ['extensions:\n  from: "100"\n  to: "1999"\n', 'extensions', /same number of digits/],
    ['dialplan:\n  spyPrefix: "**"\n', 'dialplan.spyPrefix', /digits, optionally after/],
    ['organisation:\n  name: "Acme\\n[evil]"\n', 'organisation.name', /line break/],
    ['organisation:\n  cli: 61290000000\n', 'organisation.cli', /quote it/],
    ['pjsipRealm: "my realm"\n', 'pjsipRealm', /realm name/],
    ['passwordPolicy: "no"\n', 'passwordPolicy', /true or false/],
    ['transports: udp\n', 'transports', /must be a list of transports/],
    ['transports:\n  - protocol: tls\n', 'transports.0', /tls transport without certFile and privKeyFile/],
    ['transports:\n  - protocol: udp\n  - protocol: udp\n    bind: "0.0.0.0:5070"\n', 'transports.1.protocol', /same protocol/],
    ['transports:\n  - protocol: tcp\n  - protocol: tls\n    bind: "0.0.0.0:5060"\n    certFile: /k/c.crt\n    privKeyFile: /k/c.key\n', 'transports.1.bind', /transport-tcp is already bound.*Address already in use/],
    ['transports:\n  - protocol: udp\n    bind: "example.com:5060"\n', 'transports.0.bind', /not address:port/],
    ['transports:\n  - protocol: udp\n    localNets: [192.168.0.0/33]\n', 'transports.0.localNets', /CIDR/],
    ['transports:\n  - protocol: tls\n    certFile: relative.crt\n    privKeyFile: /k/c.key\n', 'transports.0.certFile', /absolute path/],
    ['transports:\n  - protocol: tls\n    certFile: /k/c.crt\n    privKeyFile: /k/c.key\n    method: tlsv9\n', 'transports.0.method', /TLS method/],
    ['- a\n- b\n', '', /must be a mapping of settings/],
    ['transports:\n  - protocol: udp\n    name: main\n  - protocol: tcp\n    name: Main\n', 'transports.1.name', /field transports\.1\.name = "Main": the udp transport already has the section name \[main\] in the pjsip file\. Fix: give each transport its own name, e\.g\. name: transport-tcp$/],
    // Sections Asterisk reads as its own, in any case.
    ['voicemail:\n  context: general\n', 'voicemail.context', /^switchboard\.yaml:2: error: field voicemail\.context = "general": voicemail\.conf reads \[general\] as its own settings, never as mailboxes, so the agents' boxes in it would not exist\. Fix: use another name, e\.g\. "switchboard"$/],
    ['voicemail:\n  context: ZoneMessages\n', 'voicemail.context', /"ZoneMessages": voicemail\.conf reads \[zonemessages\] as time zone formats, never as mailboxes/],
    ['voicemail:\n  context: aliases\n', 'voicemail.context', /"aliases": voicemail\.conf names its aliases context \(aliasescontext\) \[aliases\] as a rule/],
    ['dialplan:\n  agentsContext: globals\n', 'dialplan.agentsContext', /^switchboard\.yaml:2: error: field dialplan\.agentsContext = "globals": extensions\.conf reads \[globals\] as global variables, never as a context, so the generated context would not exist\. Fix: use another name, e\.g\. "switchboard-agents"$/],
    ['dialplan:\n  spyContext: GLOBALS\n', 'dialplan.spyContext', /\[globals\] as global variables/],
    ['dialplan:\n  didContext: General\n', 'dialplan.didContext', /"General": extensions\.conf reads \[general\] as its own settings, never as a context, so the generated context would not exist/],
    ['defaults:\n  context: general\n', 'defaults.context', /extensions\.conf reads \[general\] as its own settings, never as a context, so calls from the agents would find no dialplan/],
  ])('refuses %j (%s)', (yaml, field, rule) => {
    const { issues } = settingsFrom(yaml);
    const errors = issues.filter((i) => i.severity === 'error');
    expect(errors.length, JSON.stringify(issues.map((i) => i.message))).toBeGreaterThan(0);
    expect(errors[0]!.field).toBe(field);
    expect(errors[0]!.message).toMatch(rule);
    expect(errors[0]!.file).toBe('switchboard.yaml');
  });

  it('udp and tcp may share a port; two tcp-family transports may not', () => {
    expect(settingsFrom('transports:\n  - protocol: udp\n  - protocol: tcp\n').issues).toEqual([]);
  });

  it('a reserved context name is refused whatever its case, and only the exact name', () => {
    const { settings, issues } = settingsFrom('voicemail:\n  context: Zonemessages\ndialplan:\n  agentsContext: Globals\n');
    expect(issues.map((i) => [i.code, i.field])).toEqual([['CONTEXT_RESERVED', 'voicemail.context'], ['CONTEXT_RESERVED', 'dialplan.agentsContext']]);
    // The documented defaults stand in, so the rest of validation still runs on sane values.
    expect([settings.voicemail.context, settings.dialplan.agentsContext]).toEqual(['switchboard', 'switchboard-agents']);
    const fine = settingsFrom('voicemail:\n  context: general-boxes\ndialplan:\n  agentsContext: globals2\n  didContext: my-aliases\n');
    expect(fine.issues).toEqual([]);
  });
});

describe('agent rules that need particular settings', () => {
  it('an md5 password cannot serve both drivers when their realms differ', () => {
    const base = 'backend: both\n';
    const md5 = AGENT.replace('"Probe#Pass1"', '"md5:5d41402abc4b2a76b9719d911017c592"');
    expect(agentsFrom({ 'agents/p.yaml': md5 }, base).issues.filter((i) => i.severity === 'error')).toEqual([]);
    const { issues } = agentsFrom({ 'agents/p.yaml': md5 }, base + 'sipRealm: pbx1\n');
    expect(issues.map((i) => i.message)).toContain(
      'agents/p.yaml:8: error: agent "5001 probe", field password = "md5:…": one MD5 digest cannot serve both drivers when pjsipRealm (asterisk) and sipRealm (pbx1) differ. Fix: use a plain password, or make the realms equal in switchboard.yaml',
    );
  });

  it('the fix for a malformed md5 password names the realm of the store\'s backend (chan_sip: sipRealm)', () => {
    const bad = AGENT.replace('"Probe#Pass1"', '"md5:abc"');
    const fix = (settings: string) => agentsFrom({ 'agents/p.yaml': bad }, settings).issues.map((i) => i.fix);
    expect(fix('backend: sip\nsipRealm: pbx1\n')).toEqual(['compute it with: echo -n "USER:pbx1:SECRET" | md5sum']);
    expect(fix('backend: pjsip\nsipRealm: pbx1\n')).toEqual(['compute it with: echo -n "USER:asterisk:SECRET" | md5sum']);
  });

  it('transports an agent takes from its typology must be defined in switchboard.yaml, as explicit ones must', () => {
    const webrtc = AGENT.replace('typology: phonebar', 'typology: webrtc');
    const mobile = AGENT.replace('typology: phonebar', 'typology: mobile') + 'mobile:\n  pushGateway: "push.example.com:5060"\n';
    // A switchboard.yaml without transports has one: udp.
    const w = agentsFrom({ 'agents/p.yaml': webrtc }, '');
    expect(w.agents).toEqual([]);
    // The line is the typology's: that is where the default comes from.
    expect(w.issues.map((i) => i.message)).toEqual([
      'agents/p.yaml:6: error: agent "5001 probe", field voice.transports = "wss": voice.transports is left out, so this webrtc agent takes its typology\'s default [wss], but no wss transport is defined in switchboard.yaml. Fix: add a transport with protocol: wss to switchboard.yaml',
    ]);
    expect(w.issues[0]!.code).toBe('TRANSPORT_UNDEFINED');
    const m = agentsFrom({ 'agents/p.yaml': mobile }, '');
    expect(m.issues.map((i) => i.message)).toEqual([
      'agents/p.yaml:6: error: agent "5001 probe", field voice.transports = "tcp": voice.transports is left out, so this mobile agent takes its typology\'s default [tcp], but no tcp transport is defined in switchboard.yaml. Fix: add a transport with protocol: tcp to switchboard.yaml, or set voice.transports to one it defines, e.g. transports: [udp]',
    ]);
    // Either fix makes the agent valid.
    expect(agentsFrom({ 'agents/p.yaml': mobile }, 'transports:\n  - protocol: tcp\n').issues).toEqual([]);
    const explicit = agentsFrom({ 'agents/p.yaml': `${mobile}voice:\n  transports: [udp]\n` }, '');
    expect(explicit.agents).toHaveLength(1);
    expect(explicit.issues.map((i) => i.code)).toEqual(['MOBILE_UDP']);
    // A webrtc agent with its wss defined is fine.
    expect(agentsFrom({ 'agents/p.yaml': webrtc }, 'transports:\n  - protocol: wss\n').issues).toEqual([]);
  });

  it('refuses a username chan_sip or the pjsip file already uses as a section name', () => {
    const named = (u: string, settings = '') => agentsFrom({ 'agents/p.yaml': AGENT.replace('username: probe', `username: ${u}`) }, settings).issues;
    for (const u of ['general', 'GENERAL', 'authentication', 'Authentication']) {
      const issues = named(u);
      expect(issues.map((i) => [i.code, i.field, i.value]), u).toEqual([['USERNAME_RESERVED', 'username', u]]);
      expect(issues[0]!.rule).toBe(`chan_sip reads the sections [general] and [authentication], in any case, as its own settings, so a peer named ${u} would be silently skipped`);
    }
    // The pjsip file holds the transports of switchboard.yaml next to [probe], [probe-auth], [probe-identify].
    expect(named('probe', 'transports:\n  - protocol: udp\n    name: probe\n').map((i) => i.message)).toEqual([
      'agents/p.yaml:2: error: agent "5001 probe", field username = "probe": this agent\'s pjsip endpoint and aor section [probe] would have the name of the udp transport [probe] of switchboard.yaml. Fix: choose another username, or rename the transport (its name: in switchboard.yaml)',
    ]);
    expect(named('probe', 'transports:\n  - protocol: udp\n    name: Probe-Auth\n').map((i) => i.rule)).toEqual([
      'this agent\'s pjsip auth section [probe-auth] would have the name of the udp transport [Probe-Auth] of switchboard.yaml',
    ]);
    expect(named('probe', 'transports:\n  - protocol: udp\n    name: probe-identify\n').map((i) => i.code)).toEqual(['USERNAME_RESERVED']);
    // Names that only look alike are fine.
    for (const u of ['general.desk', 'generals', 'authentication2']) expect(named(u), u).toEqual([]);
    expect(named('probe', 'transports:\n  - protocol: udp\n    name: probe-aor\n')).toEqual([]);
  });

  it('refuses an agent context that extensions.conf reads as something else, whatever its case', () => {
    const ctx = (c: string) => agentsFrom({ 'agents/p.yaml': `${AGENT}voice:\n  context: ${c}\n` }).issues;
    for (const c of ['general', 'Globals']) expect(ctx(c).map((i) => [i.code, i.field, i.value]), c).toEqual([['CONTEXT_RESERVED', 'voice.context', c]]);
    expect(ctx('from-globals')).toEqual([]);
  });

  it('warns about SRTP keys in clear by what each backend renders: pjsip the first transport, chan_sip every one', () => {
    const srtp = (transports: string) => `${AGENT.replace('typology: phonebar', 'typology: external')}voice:\n  transports: [${transports}]\n  encryption: true\n`;
    const warned = (transports: string, backend: string) =>
      agentsFrom({ 'agents/p.yaml': srtp(transports) }, FIXTURE_SETTINGS.replace('backend: pjsip', `backend: ${backend}`)).issues.map((i) => [i.severity, i.code, i.rule, i.fix]);
    // pjsip renders transport = <first>: tls listed second protects nothing.
    expect(warned('udp, tls', 'pjsip')).toEqual([
      ['warning', 'SRTP_WITHOUT_TLS', 'SRTP keys (SDES) travel in clear over udp (pjsip uses only the first of voice.transports)', 'make tls the first transport, e.g. transports: [tls], so the keys are protected'],
    ]);
    expect(warned('tls, udp', 'pjsip')).toEqual([]);
    // chan_sip renders transport = tls,udp: the phone may use udp.
    const sipWarning = ['warning', 'SRTP_WITHOUT_TLS', 'SRTP keys (SDES) travel in clear over udp (chan_sip takes the phone on every transport listed)', 'use tls only, e.g. transports: [tls], so the keys are protected'];
    expect(warned('tls, udp', 'sip')).toEqual([sipWarning]);
    expect(warned('tls, udp', 'both')).toEqual([sipWarning]);
    expect(warned('udp, tcp', 'both').map((w) => w[2])).toEqual(['SRTP keys (SDES) travel in clear over udp/tcp (chan_sip takes the phone on every transport listed)']);
    for (const backend of ['pjsip', 'sip', 'both']) expect(warned('tls', backend), backend).toEqual([]);
  });

  it('a fixed IPv6 host needs the pjsip transport it is reached over bound to IPv6 (chan_sip: a warning about sip.conf)', () => {
    const v6 = (host: string, transports = 'udp') => `${AGENT}voice:\n  host: "${host}"\n  type: peer\n  transports: [${transports}]\n`;
    const ipv6Udp = FIXTURE_SETTINGS.replace('bind: "0.0.0.0:5060"', 'bind: "[::]:5060"');
    const issues = (agent: string, settings = FIXTURE_SETTINGS) => agentsFrom({ 'agents/p.yaml': agent }, settings).issues;
    expect(issues(v6('[2001:db8::1]:5070')).map((i) => i.message)).toEqual([
      'agents/p.yaml:12: error: agent "5001 probe", field voice.host = "[2001:db8::1]:5070": pjsip reaches an IPv6 address only over an IPv6 transport, and this agent\'s transport (udp, the first of voice.transports) is transport-udp, bound to IPv4 0.0.0.0:5060. Fix: bind the udp transport to IPv6 in switchboard.yaml (e.g. bind: "[::]:5060"), or give the phone\'s IPv4 address or host name',
    ]);
    expect(issues(v6('[2001:db8::1]'), ipv6Udp)).toEqual([]);
    // Only the first transport is rendered for pjsip.
    expect(issues(v6('[2001:db8::1]', 'tcp, udp'), ipv6Udp).map((i) => i.rule)).toEqual([
      'pjsip reaches an IPv6 address only over an IPv6 transport, and this agent\'s transport (tcp, the first of voice.transports) is transport-tcp, bound to IPv4 0.0.0.0:5060',
    ]);
    // chan_sip binds in the operator's sip.conf: switchboard can only warn.
    const chanSip = 'chan_sip reaches an IPv6 address only when sip.conf binds to IPv6, and its default (bindaddr=0.0.0.0) is IPv4 only';
    expect(issues(v6('[2001:db8::1]'), FIXTURE_SETTINGS.replace('backend: pjsip', 'backend: sip')).map((i) => [i.severity, i.code, i.rule])).toEqual([['warning', 'HOST_ADDRESS_FAMILY', chanSip]]);
    expect(issues(v6('[2001:db8::1]'), FIXTURE_SETTINGS.replace('backend: pjsip', 'backend: both')).map((i) => [i.severity, i.code])).toEqual([['error', 'HOST_ADDRESS_FAMILY'], ['warning', 'HOST_ADDRESS_FAMILY']]);
    // IPv4 addresses and host names are not affected.
    for (const host of ['192.0.2.1', '192.0.2.1:5070', 'pbx.example.com']) expect(issues(v6(host)), host).toEqual([]);
  });

  it('the password policy can be switched off, but a secret can still never break a config line', () => {
    const weak = AGENT.replace('"Probe#Pass1"', '"weakpass"');
    expect(agentsFrom({ 'agents/p.yaml': weak }).issues.map((i) => i.code)).toEqual(['PASSWORD_POLICY']);
    expect(agentsFrom({ 'agents/p.yaml': weak }, 'passwordPolicy: false\n').issues).toEqual([]);
    const broken = AGENT.replace('"Probe#Pass1"', '"weak;pass"');
    const { issues } = agentsFrom({ 'agents/p.yaml': broken }, 'passwordPolicy: false\n');
    expect(issues.map((i) => i.rule)).toEqual(['the SIP password: it holds ";" (Asterisk would cut the secret there)']);
    expect(issues[0]!.message).not.toContain('weak');
    // C1 controls and the Unicode line separators, as in free text.
    for (const c of ['\\u0085', '\\u0090', '\\u2028', '\\u2029']) {
      const r = agentsFrom({ 'agents/p.yaml': AGENT.replace('"Probe#Pass1"', `"Probe${c}Pass1"`) }, 'passwordPolicy: false\n');
      expect(r.issues.map((i) => i.rule), c).toEqual(['the SIP password: it holds a line break or control character']);
    }
  });

  it('WebRTC agents with the chan_sip backend loaded get a warning', () => {
    const webrtc = AGENT.replace('typology: phonebar', 'typology: webrtc');
    const settings = FIXTURE_SETTINGS.replace('backend: pjsip', 'backend: both');
    const { agents, issues } = agentsFrom({ 'agents/p.yaml': webrtc }, settings);
    expect(agents).toHaveLength(1);
    expect(issues.map((i) => [i.severity, i.code])).toEqual([['warning', 'WEBRTC_WITH_CHAN_SIP']]);
    expect(agentsFrom({ 'agents/p.yaml': webrtc }).issues).toEqual([]);
  });

  it('typology defaults fill what the file leaves out', () => {
    const { agents } = agentsFrom({
      'agents/w.yaml': AGENT.replace('typology: phonebar', 'typology: webrtc'),
      'agents/m.yaml': AGENT.replace('id: 5001', 'id: 5002').replace('username: probe', 'username: mob').replace('"1500"', '"1501"').replace('typology: phonebar', 'typology: mobile') + 'mobile:\n  pushGateway: "push.example.com:5060"\n',
    });
    const [w, m] = agents;
    expect(w!.voice).toMatchObject({ transports: ['wss'], encryption: true, codecs: ['opus', 'ulaw'], nat: ['force_rport', 'comedia'] });
    expect(m!.voice).toMatchObject({ transports: ['tcp'], encryption: false, codecs: ['ulaw', 'alaw', 'g722'], nat: ['force_rport', 'comedia'] });
    expect(w!.voice.callerId).toEqual({ name: 'Probe Agent', number: '' });
    expect(w!).toMatchObject({ displayName: 'Probe Agent', enabled: true, cli: '+61290000000', timezone: 'Australia/Sydney', language: 'en', dids: [] });
    expect(w!.voicemail).toEqual({ enabled: true, attach: true, pin: '5001' });
  });

  it('an empty voicemail PIN counts as missing (callers would be sent to a box that does not exist)', () => {
    for (const pin of ['""', '', '~']) {
      const { agents, issues } = agentsFrom({ 'agents/p.yaml': AGENT.replace('pin: "5001"', `pin: ${pin}`) });
      expect(agents, pin).toEqual([]);
      expect(issues.map((i) => [i.code, i.field, i.rule]), pin).toEqual([['FIELD_REQUIRED', 'voicemail.pin', 'a voicemail box needs a PIN']]);
    }
    // With voicemail off, no PIN is needed.
    expect(agentsFrom({ 'agents/p.yaml': AGENT.replace('  pin: "5001"', '  enabled: false') }).issues).toEqual([]);
  });

  it('parses a caller id given as "Name <number>" or a number', () => {
    const withCid = (cid: string) => agentsFrom({ 'agents/p.yaml': `${AGENT}voice:\n  callerId: '${cid}'\n` });
    expect(withCid('"Alice Smith" <1001>').agents[0]!.voice.callerId).toEqual({ name: 'Alice Smith', number: '1001' });
    expect(withCid('Alice <+61290000001>').agents[0]!.voice.callerId).toEqual({ name: 'Alice', number: '+61290000001' });
    expect(withCid('<1001>').agents[0]!.voice.callerId).toEqual({ name: '', number: '1001' });
    expect(withCid('+61290000001').agents[0]!.voice.callerId).toEqual({ name: 'Probe Agent', number: '+61290000001' });
    expect(withCid('Alice <10;01>').issues.map((i) => i.field)).toEqual(['voice.callerId']);
  });
});

describe('parseYamlSource', () => {
  const parse = (text: string) => {
    const issues = new IssueList();
    const doc = parseYamlSource('agents/x.yaml', text, issues);
    return { doc, issues: issues.items };
  };

  it('turns syntax errors into issues with a line, never exceptions', () => {
    const cases: [string, number | undefined, RegExp][] = [
      ['id: 1\nname: [a, b\nother: 2\n', 3, /Flow sequence/],
      ['id: 1\nid: 2\n', 2, /Map keys must be unique/],
      ['id: 1\n  x: 2\n', 1, /./],
      ['a: "unterminated\n', 2, /Missing closing/], // reported where the file ends
      ['a: *nowhere\n', undefined, /Unresolved alias/],
      ['a: &x [1]\nb: [*x, *x, *x, *x, *x, *x, *x, *x, *x, *x]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n', undefined, /alias/i],
    ];
    for (const [text, line, rule] of cases) {
      const { doc, issues } = parse(text);
      expect(doc.data, text).toBeUndefined();
      expect(issues.length, text).toBeGreaterThan(0);
      expect(issues[0]!.code).toBe('YAML_SYNTAX');
      expect(issues[0]!.line, text).toBe(line);
      expect(issues[0]!.rule, text).toMatch(rule);
      expect(issues[0]!.message.startsWith(line ? `agents/x.yaml:${line}: error:` : 'agents/x.yaml: error:')).toBe(true);
    }
  });

  it('knows the line and the source text of every scalar', () => {
    const { doc, issues } = parse('# comment\nid: 0100\nvoice:\n  codecs: [ulaw, +4930123]\n');
    expect(issues).toEqual([]);
    expect(doc.data).toEqual({ id: 100, voice: { codecs: ['ulaw', 4930123] } });
    expect(doc.lineOf(['id'])).toBe(2);
    expect(doc.lineOf(['voice', 'codecs', 1])).toBe(4);
    expect(doc.lineOf(['nope'])).toBeUndefined();
    expect(doc.sourceOf!(['id'])).toBe('0100');
    expect(doc.sourceOf!(['voice', 'codecs', 1])).toBe('+4930123');
  });
});
