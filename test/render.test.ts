import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SwitchboardError } from '../src/errors.js';
import { IssueList } from '../src/model/issues.js';
import { validateAgent, type DraftAgent } from '../src/model/agent.js';
import { validateSettings } from '../src/model/settings.js';
import { validateAgents } from '../src/model/store.js';
import type { Agent, Backend, NatWord, Store } from '../src/model/types.js';
import { checkChunk, chunkIsClean, RenderCheckError, type ChunkRules } from '../src/render/check.js';
import { GENERATED_HEADER, planSipFile } from '../src/render/plan.js';
import { OUTPUT_FILES, Renderer, type RenderedFiles } from '../src/render/render.js';
import { loadTemplates, TEMPLATE_NAMES, type TemplateName, type Templates } from '../src/render/templates.js';
import { parseYamlSource } from '../src/store/source.js';
import { YamlStore } from '../src/store/yaml-store.js';
import { expectGolden } from './helpers/golden.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURE = path.join(ROOT, 'fixtures', 'store');
const GOLDEN = path.join(ROOT, 'fixtures', 'golden');
const BACKEND_FILES: Record<Backend, string[]> = {
  pjsip: [OUTPUT_FILES.pjsip, OUTPUT_FILES.voicemail, OUTPUT_FILES.extensions],
  sip: [OUTPUT_FILES.sip, OUTPUT_FILES.voicemail, OUTPUT_FILES.extensions],
  both: [OUTPUT_FILES.pjsip, OUTPUT_FILES.sip, OUTPUT_FILES.voicemail, OUTPUT_FILES.extensions],
};

let store: Store;
const temps: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'switchboard-render-'));
  temps.push(d);
  return d;
}

beforeAll(async () => {
  const r = await new YamlStore(FIXTURE).loadAll();
  expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
  store = r.store!;
});
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

function render(s: Store, backend?: Backend, templates: Templates = loadTemplates()): RenderedFiles {
  return new Renderer(templates).render(s, backend);
}

/** A pjsip/sip file as a list of sections: header name, `type` (pjsip) and ordered options. */
interface Section { name: string; type?: string; options: [string, string][] }
function sections(text: string): Section[] {
  const out: Section[] = [];
  for (const line of text.split('\n')) {
    const h = /^\[([^\]]+)\]/.exec(line);
    if (h) {
      out.push({ name: h[1]!, options: [] });
      continue;
    }
    const kv = /^([a-z0-9_]+) = (.*)$/.exec(line);
    if (kv && out.length) {
      const s = out[out.length - 1]!;
      s.options.push([kv[1]!, kv[2]!]);
      if (kv[1] === 'type') s.type = kv[2]!;
    }
  }
  return out;
}
function section(text: string, name: string, type?: string): Section {
  const found = sections(text).filter((s) => s.name === name && (type === undefined || s.type === type));
  expect(found, `one section [${name}]${type ? ` of type ${type}` : ''}`).toHaveLength(1);
  return found[0]!;
}
function opt(s: Section, key: string): string[] {
  return s.options.filter(([k]) => k === key).map(([, v]) => v);
}
/** The dialplan lines of one extension (its `exten => X,` line and the `same =>` lines after it). */
function extenLines(text: string, exten: string): string[] {
  const lines = text.split('\n');
  const out: string[] = [];
  let inside = false;
  for (const l of lines) {
    if (l.startsWith(`exten => ${exten},`)) {
      inside = true;
      out.push(l);
    } else if (l.startsWith('exten => ') || l.startsWith('[') || l === '') inside = false;
    else if (inside && l.startsWith(' same => ')) out.push(l);
  }
  return out;
}
/** The store with one agent replaced by a modified copy (a new object, as a reload would make). */
function withAgent(s: Store, username: string, patch: (a: Agent) => Agent): Store {
  return { ...s, agents: s.agents.map((a) => (a.username === username ? patch(structuredClone(a)) : a)) };
}

/** Validates agent YAML documents in memory through the same path as files. */
function storeFromYaml(agents: Record<string, string>, settingsYaml = readFileSync(path.join(FIXTURE, 'switchboard.yaml'), 'utf8')) {
  const issues = new IssueList();
  const settings = validateSettings(parseYamlSource('switchboard.yaml', settingsYaml, issues), issues);
  const drafts: DraftAgent[] = [];
  for (const [file, text] of Object.entries(agents)) {
    const d = validateAgent(parseYamlSource(file, text, issues), settings, issues);
    if (d) drafts.push(d);
  }
  const list = validateAgents(drafts, settings, issues);
  expect(issues.errors.map((i) => i.message)).toEqual([]);
  return { settings, agents: list } satisfies Store;
}
const AGENT_YAML = (over: string, id = '5001', username = 'probe') => `id: ${id}
username: ${username}
firstName: Probe
lastName: Agent
email: probe@example.com
typology: phonebar
extension: "${id.slice(0, 1)}${id.slice(-3)}"
password: "Probe#Pass1"
voicemail:
  pin: "5001"
${over}`;

describe('golden files for fixtures/store', () => {
  for (const backend of ['pjsip', 'sip', 'both'] as const) {
    it(`renders exactly fixtures/golden/${backend}/`, () => {
      const files = render(store, backend);
      expect([...files.keys()].sort()).toEqual([...BACKEND_FILES[backend]].sort());
      expectGolden(path.join(GOLDEN, backend), files);
    });
  }

  it('the golden pjsip file defines every agent as endpoint + aor + auth (+ identify for a fixed host)', () => {
    const text = readFileSync(path.join(GOLDEN, 'pjsip', OUTPUT_FILES.pjsip), 'utf8');
    for (const a of store.agents) {
      expect(opt(section(text, a.username, 'endpoint'), 'aors')).toEqual([a.username]);
      expect(opt(section(text, a.username, 'endpoint'), 'auth')).toEqual([`${a.username}-auth`]);
      section(text, a.username, 'aor');
      expect(opt(section(text, `${a.username}-auth`, 'auth'), 'username')).toEqual([a.username]);
    }
    expect(sections(text).filter((s) => s.type === 'identify').map((s) => s.name)).toEqual(['bob_jones-identify']);
  });
});

describe('determinism', () => {
  it('renders the same bytes twice, with one renderer or two', () => {
    const r = new Renderer(loadTemplates());
    const a = r.render(store, 'both');
    const b = r.render(store, 'both');
    const c = render(store, 'both');
    expect([...b]).toEqual([...a]);
    expect([...c]).toEqual([...a]);
  });

  it('does not depend on agent file names or their order on disk', async () => {
    const dir = tempDir();
    cpSync(FIXTURE, dir, { recursive: true });
    const names = readdirSync(path.join(dir, 'agents'));
    // Reverse the directory order: 1013-mateo becomes a-..., 1001-alice becomes m-...
    names.sort().reverse().forEach((n, i) => renameSync(path.join(dir, 'agents', n), path.join(dir, 'agents', `${String.fromCharCode(97 + i)}-${n.split('-')[1]}`)));
    const r = await new YamlStore(dir).loadAll();
    for (const backend of ['pjsip', 'sip', 'both'] as const) {
      const shuffled = render(r.store!, backend);
      // The comments name the agents, not files; so the bytes are the same.
      expect([...shuffled]).toEqual([...render(store, backend)]);
    }
  });

  it('every file starts with the generated-do-not-edit header', () => {
    const header = GENERATED_HEADER.map((l) => `; ${l}\n`).join('');
    expect(header).toMatch(/^; Generated by switchboard .*Do not edit by hand/);
    for (const backend of ['pjsip', 'sip', 'both'] as const) {
      for (const [name, text] of render(store, backend)) expect(text.startsWith(header), `${backend}/${name}`).toBe(true);
    }
  });

  it('every rendered line passes the checker and nothing in it is an Asterisk directive', () => {
    for (const [name, text] of render(store, 'both')) {
      const headers = new Set(sections(text).map((s) => s.name));
      expect(checkChunk(text, { sections: headers }, name)).toEqual([]);
      for (const line of text.split('\n')) {
        expect(line.trimStart().startsWith('#'), line).toBe(false);
        if (!line.startsWith(';')) expect(line.includes(';'), line).toBe(false);
      }
    }
  });
});

describe('--templates override', () => {
  const DEFAULT_PJSIP_AGENT = readFileSync(path.join(ROOT, 'templates', 'pjsip', 'agent.hbs'), 'utf8');
  function overrideDir(files: Partial<Record<TemplateName, string>>): string {
    const dir = tempDir();
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(path.join(dir, path.dirname(name)), { recursive: true });
      writeFileSync(path.join(dir, `${name}.hbs`), text!);
    }
    return dir;
  }

  it('a directory holding only pjsip/agent.hbs changes only what that template renders', () => {
    const dir = overrideDir({ 'pjsip/agent': DEFAULT_PJSIP_AGENT.replace('type = endpoint\n', 'type = endpoint\ndevice_state_busy_at = 2\n') });
    const t = loadTemplates(dir);
    expect(t.sources['pjsip/agent']).toBe(path.join(dir, 'pjsip', 'agent.hbs'));
    for (const name of TEMPLATE_NAMES.filter((n) => n !== 'pjsip/agent')) expect(t.sources[name]).toBe(path.join(ROOT, 'templates', `${name}.hbs`));

    const custom = render(store, 'both', t);
    const plain = render(store, 'both');
    for (const name of [OUTPUT_FILES.sip, OUTPUT_FILES.voicemail, OUTPUT_FILES.extensions]) expect(custom.get(name)).toBe(plain.get(name));
    const added = custom.get(OUTPUT_FILES.pjsip)!.split('\n').filter((l) => l === 'device_state_busy_at = 2');
    expect(added).toHaveLength(store.agents.length);
    expect(custom.get(OUTPUT_FILES.pjsip)!.replaceAll('device_state_busy_at = 2\n', '')).toBe(plain.get(OUTPUT_FILES.pjsip));
  });

  it('a template that opens its own section is caught by the checker (RENDER_CHECK_FAILED)', () => {
    const dir = overrideDir({ 'pjsip/agent': DEFAULT_PJSIP_AGENT + '[evil]\ntype = endpoint\n' });
    let err: unknown;
    try {
      render(store, 'pjsip', loadTemplates(dir));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RenderCheckError);
    expect((err as SwitchboardError).code).toBe('RENDER_CHECK_FAILED');
    expect((err as RenderCheckError).problems.join('\n')).toMatch(/^pjsip\/agent for agent 1001 alice\.smith, line \d+: section \[evil\] does not belong here$/m);
    expect((err as Error).message).toMatch(/--templates, check the named template/);
  });

  it.each([
    ['a line that is not config', 'this is not a config line\n', /not a config line "this is not a config line"/],
    ['an #include directive', '#include /etc/passwd\n', /directive line "#include \/etc\/passwd"/],
    ['a block comment opener', ';-- swallow the rest\n', /block comment opener/],
    ['a value with a comment in it', 'callerid = x;y\n', /";" inside a value/],
    ['another agent\'s section', '[{{name}}-evil]\n', /section \[alice\.smith-evil\] does not belong here/],
    ['an indented section header', ' [evil]\n', /not a config line/],
  ])('a template emitting %s fails with RENDER_CHECK_FAILED', (_what, extra, problem) => {
    const dir = overrideDir({ 'sip/agent': readFileSync(path.join(ROOT, 'templates', 'sip', 'agent.hbs'), 'utf8') + extra });
    expect(() => render(store, 'sip', loadTemplates(dir))).toThrow(RenderCheckError);
    try {
      render(store, 'sip', loadTemplates(dir));
    } catch (e) {
      expect((e as RenderCheckError).problems.join('\n')).toMatch(problem);
    }
  });

  it('a refused line that holds a secret is quoted with the secret hidden (SIP password, voicemail PIN)', () => {
    const pj = readFileSync(path.join(ROOT, 'templates', 'pjsip', 'agent.hbs'), 'utf8').replace('password = {{auth.password}}', 'password = {{auth.password}} ; rotated quarterly');
    const vm = readFileSync(path.join(ROOT, 'templates', 'voicemail', 'agent.hbs'), 'utf8').replace(',{{options}}', ',{{options}} ; note');
    const dir = overrideDir({ 'pjsip/agent': pj, 'voicemail/agent': vm });
    let err: unknown;
    try {
      render(store, 'pjsip', loadTemplates(dir));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RenderCheckError);
    const text = (err as RenderCheckError).problems.join('\n') + (err as Error).message;
    expect(text).toMatch(/";" inside a value "password = <hidden>"/);
    expect(text).toMatch(/";" inside a value "1001 => <hidden>,/);
    expect(text).not.toContain('Str0ng&Secret1');
    expect(text).not.toContain('4321');
  });

  it('a template that uses an unknown field fails with TEMPLATE_INVALID naming the file', () => {
    const dir = overrideDir({ 'voicemail/agent': '{{mailbox}} => {{pin}},{{fullName}}\n' });
    const t = loadTemplates(dir);
    let err: unknown;
    try {
      render(store, 'pjsip', t);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SwitchboardError);
    expect((err as SwitchboardError).code).toBe('TEMPLATE_INVALID');
    expect((err as Error).message).toContain(path.join(dir, 'voicemail', 'agent.hbs'));
    expect((err as Error).message).toContain('fullName');
  });

  it('a template with a Handlebars syntax error or a custom helper fails at load with TEMPLATE_INVALID', () => {
    for (const text of ['{{#if endpoint.webrtc}}\nwebrtc = yes\n', '{{shout name}}\n']) {
      const dir = overrideDir({ 'pjsip/agent': text });
      let err: unknown;
      try {
        loadTemplates(dir);
      } catch (e) {
        err = e;
      }
      expect((err as SwitchboardError).code, text).toBe('TEMPLATE_INVALID');
      expect((err as Error).message).toContain(path.join(dir, 'pjsip', 'agent.hbs'));
    }
  });

  it('a missing templates directory is TEMPLATES_MISSING', () => {
    let err: unknown;
    try {
      loadTemplates(path.join(tempDir(), 'nope'));
    } catch (e) {
      err = e;
    }
    expect((err as SwitchboardError).code).toBe('TEMPLATES_MISSING');
  });

  it('the checker also stops a value smuggled past the model (defence in depth)', () => {
    const hostile = withAgent(store, 'grace', (a) => ({ ...a, displayName: 'Grace\n[alice.smith]\ntype = endpoint', voice: { ...a.voice, callerId: { name: 'Grace\n[alice.smith]', number: '' } } }));
    expect(() => render(hostile, 'pjsip')).toThrow(RenderCheckError);
    const include = withAgent(store, 'grace', (a) => ({ ...a, voicemail: { ...a.voicemail, pin: '1212\n#include /etc/passwd' } }));
    expect(() => render(include, 'pjsip')).toThrow(/directive line/);
  });

  it.each([
    // An extension named "include" makes the voicemail line "include => ...".
    ['an include line', (s: Store) => withAgent(s, 'grace', (a) => ({ ...a, extension: 'include' })),
      /^voicemail\/agent for agent 1007 grace, line 2: "include =>" in an agent's text \(it would pull another context in\) "include => <hidden>,/m],
    ['${SHELL()} in the dialplan', (s: Store) => ({ ...s, settings: { ...s.settings, dialplan: { ...s.settings.dialplan, recordingsDir: 'rec/${SHELL(id)}' } } }),
      /^extensions\/agent for agent 1\d{3} [a-z._]+, line \d+: the SHELL\(\) function \(it runs a command\) in an agent's text " same => n,MixMonitor\(rec\/\$\{SHELL\(id\)\}/m],
    ['System() in the dialplan', (s: Store) => ({ ...s, settings: { ...s.settings, dialplan: { ...s.settings.dialplan, stasisApp: 'sb),System(id' } } }),
      /^extensions\/did for agent 1\d{3} [a-z._]+, line 2: the System\(\) or TrySystem\(\) application \(it runs a command\) in an agent's text "exten => \+\d+,1,Stasis\(sb\),System\(id,/m],
    ['${SHELL()} in a caller id', (s: Store) => withAgent(s, 'grace', (a) => ({ ...a, voice: { ...a.voice, callerId: { name: '${SHELL(id)}', number: '' } } })),
      /^pjsip\/agent for agent 1007 grace, line \d+: the SHELL\(\) function \(it runs a command\) in an agent's text "callerid = \\"\$\{SHELL\(id\)\}\\" <\d+>"/m],
  ])('the checker stops %s smuggled past the model into an agent\'s text', (_what, smuggle, problem) => {
    let err: unknown;
    try {
      render(smuggle(store), 'both');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RenderCheckError);
    expect((err as RenderCheckError).problems.join('\n')).toMatch(problem);
    // grace's voicemail PIN stays hidden, whatever the line's key.
    expect((err as RenderCheckError).problems.join('\n')).not.toContain('1212');
  });
});

describe('what each agent setting renders', () => {
  it('a disabled agent cannot register, call or be dialled, and its DIDs go to voicemail', () => {
    // farid is disabled; give him a fixed host and chanspy too, which must not re-open anything.
    const s = withAgent(store, 'farid', (a) => ({ ...a, voice: { ...a.voice, host: '192.0.2.66:5062', chanspy: true } }));
    const files = render(s, 'both');
    const pj = files.get(OUTPUT_FILES.pjsip)!;
    const ep = section(pj, 'farid', 'endpoint');
    expect(opt(ep, 'deny')).toEqual(['0.0.0.0/0.0.0.0', '::/0']);
    const aor = section(pj, 'farid', 'aor');
    expect(opt(aor, 'max_contacts')).toEqual(['0']);
    expect(opt(aor, 'qualify_frequency')).toEqual(['0']);
    expect(opt(aor, 'contact')).toEqual([]);
    expect(opt(aor, 'remove_existing')).toEqual([]);
    expect(sections(pj).some((x) => x.name === 'farid-identify')).toBe(false);

    const sip = section(files.get(OUTPUT_FILES.sip)!, 'farid');
    expect(opt(sip, 'deny')).toEqual(['0.0.0.0/0.0.0.0', '::/0']);
    expect(opt(sip, 'qualify')).toEqual(['no']);
    // No address to send to, as pjsip has no contact: chan_sip waits for a REGISTER its deny refuses.
    expect(opt(sip, 'host')).toEqual(['dynamic']);
    expect(opt(sip, 'port')).toEqual([]);

    const ext = files.get(OUTPUT_FILES.extensions)!;
    expect(extenLines(ext, '1006')).toEqual(['exten => 1006,1,VoiceMail(1006@switchboard,u)', ' same => n,Hangup()']);
    expect(ext).not.toMatch(/PJSIP\/farid/);
    expect(ext).not.toContain('*221006');
    expect(extenLines(ext, '+61290000006')).toContain(' same => n(vm),VoiceMail(1006@switchboard,u)');
    expect(files.get(OUTPUT_FILES.voicemail)).toContain('1006 => 6006,Farid Haddad,farid@example.com,,attach=yes|saycid=no|envelope=no|delete=no\n');

    // The same agent enabled gets all of it back: the test above can fail.
    const on = render(withAgent(s, 'farid', (a) => ({ ...a, enabled: true })), 'both');
    expect(opt(section(on.get(OUTPUT_FILES.pjsip)!, 'farid', 'endpoint'), 'deny')).toEqual([]);
    expect(opt(section(on.get(OUTPUT_FILES.pjsip)!, 'farid', 'aor'), 'contact')).toEqual(['sip:farid@192.0.2.66:5062']);
    expect([opt(section(on.get(OUTPUT_FILES.sip)!, 'farid'), 'host'), opt(section(on.get(OUTPUT_FILES.sip)!, 'farid'), 'port')]).toEqual([['192.0.2.66'], ['5062']]);
    expect(extenLines(on.get(OUTPUT_FILES.extensions)!, '1006')[0]).toBe('exten => 1006,hint,PJSIP/farid');
    expect(on.get(OUTPUT_FILES.extensions)).toContain('exten => *221006,1,ChanSpy(PJSIP/farid-,qE)');
  });

  // chan_sip nat → pjsip, as Asterisk's contrib/scripts/sip_to_pjsip maps it (ENGINEERING.md).
  const NAT_TABLE: [string, string, Record<string, string>][] = [
    ['yes', 'force_rport,comedia', { direct_media: 'no', rtp_symmetric: 'yes', force_rport: 'yes', rewrite_contact: 'yes' }],
    ['no', 'no', {}],
    ['never', 'no', {}],
    ['route', 'no', {}],
    ['force_rport', 'force_rport', { direct_media: 'no', force_rport: 'yes', rewrite_contact: 'yes' }],
    ['comedia', 'comedia', { direct_media: 'no', rtp_symmetric: 'yes' }],
    ['force_rport,comedia', 'force_rport,comedia', { direct_media: 'no', rtp_symmetric: 'yes', force_rport: 'yes', rewrite_contact: 'yes' }],
    ['auto_force_rport', 'auto_force_rport', { direct_media: 'no', force_rport: 'yes', rewrite_contact: 'yes' }],
    ['auto_comedia', 'auto_comedia', { direct_media: 'no', rtp_symmetric: 'yes' }],
    ['comedia,auto_comedia', 'comedia', { direct_media: 'no', rtp_symmetric: 'yes' }],
    ['auto_force_rport,auto_comedia', 'auto_force_rport,auto_comedia', { direct_media: 'no', rtp_symmetric: 'yes', force_rport: 'yes', rewrite_contact: 'yes' }],
  ];
  it.each(NAT_TABLE)('nat: %s → chan_sip nat = %s and pjsip %j', (nat, sipNat, pjsip) => {
    const s = storeFromYaml({ 'agents/probe.yaml': AGENT_YAML(`voice:\n  nat: "${nat}"\n`) });
    const files = render(s, 'both');
    const ep = section(files.get(OUTPUT_FILES.pjsip)!, 'probe', 'endpoint');
    const natOptions = Object.fromEntries(ep.options.filter(([k]) => ['direct_media', 'rtp_symmetric', 'force_rport', 'rewrite_contact'].includes(k)));
    expect(natOptions).toEqual(pjsip);
    expect(opt(section(files.get(OUTPUT_FILES.sip)!, 'probe'), 'nat')).toEqual([sipNat]);
  });

  it('webrtc: pjsip webrtc = yes on the wss transport (no sdes, no NAT options); chan_sip gets the DTLS options', () => {
    const files = render(store, 'both');
    const ep = section(files.get(OUTPUT_FILES.pjsip)!, 'chiara.rossi', 'endpoint');
    expect(opt(ep, 'webrtc')).toEqual(['yes']);
    expect(opt(ep, 'transport')).toEqual(['transport-wss']);
    expect(opt(ep, 'media_encryption')).toEqual([]);
    expect(opt(ep, 'direct_media')).toEqual(['no']);
    expect(opt(ep, 'rtp_symmetric')).toEqual([]);
    expect(section(files.get(OUTPUT_FILES.pjsip)!, 'transport-wss', 'transport').options).toContainEqual(['protocol', 'wss']);
    const peer = section(files.get(OUTPUT_FILES.sip)!, 'chiara.rossi');
    expect(peer.options.slice(-8)).toEqual([
      ['avpf', 'yes'], ['icesupport', 'yes'], ['force_avp', 'yes'], ['rtcp_mux', 'yes'],
      ['dtlsenable', 'yes'], ['dtlsautogeneratecert', 'yes'], ['dtlsverify', 'fingerprint'], ['dtlssetup', 'actpass'],
    ]);
    expect(opt(peer, 'transport')).toEqual(['wss']);
    expect(opt(peer, 'encryption')).toEqual(['yes']);
    // Not for anyone else.
    for (const a of store.agents.filter((x) => x.typology !== 'webrtc')) {
      expect(opt(section(files.get(OUTPUT_FILES.pjsip)!, a.username, 'endpoint'), 'webrtc')).toEqual([]);
      expect(opt(section(files.get(OUTPUT_FILES.sip)!, a.username), 'dtlsenable')).toEqual([]);
    }
  });

  it('SRTP on a non-WebRTC agent is media_encryption = sdes / encryption = yes', () => {
    const files = render(store, 'both');
    expect(opt(section(files.get(OUTPUT_FILES.pjsip)!, 'jun.park', 'endpoint'), 'media_encryption')).toEqual(['sdes']);
    expect(opt(section(files.get(OUTPUT_FILES.sip)!, 'jun.park'), 'encryption')).toEqual(['yes']);
    expect(opt(section(files.get(OUTPUT_FILES.pjsip)!, 'alice.smith', 'endpoint'), 'media_encryption')).toEqual([]);
  });

  it('an md5 password becomes md5_cred (pjsip) and md5secret (chan_sip), never a plain password', () => {
    const files = render(store, 'both');
    const auth = section(files.get(OUTPUT_FILES.pjsip)!, 'eve-auth', 'auth');
    expect(opt(auth, 'md5_cred')).toEqual(['f3604b6131ea66b960915d8a5f5976cd']);
    expect(opt(auth, 'password')).toEqual([]);
    const peer = section(files.get(OUTPUT_FILES.sip)!, 'eve');
    expect(opt(peer, 'md5secret')).toEqual(['f3604b6131ea66b960915d8a5f5976cd']);
    expect(opt(peer, 'secret')).toEqual([]);
    // A plain password is the reverse.
    expect(opt(section(files.get(OUTPUT_FILES.pjsip)!, 'alice.smith-auth', 'auth'), 'password')).toEqual(['Str0ng&Secret1']);
    expect(opt(section(files.get(OUTPUT_FILES.sip)!, 'alice.smith'), 'secret')).toEqual(['Str0ng&Secret1']);
  });

  it('a fixed host gets an identify and a static aor contact (pjsip), host and port (chan_sip)', () => {
    const files = render(store, 'both');
    const pj = files.get(OUTPUT_FILES.pjsip)!;
    expect(section(pj, 'bob_jones-identify', 'identify').options).toEqual([['type', 'identify'], ['endpoint', 'bob_jones'], ['match', '192.0.2.50']]);
    const aor = section(pj, 'bob_jones', 'aor');
    expect(opt(aor, 'contact')).toEqual(['sip:bob_jones@192.0.2.50:5060']);
    expect(opt(aor, 'max_contacts')).toEqual(['0']);
    const peer = section(files.get(OUTPUT_FILES.sip)!, 'bob_jones');
    expect([opt(peer, 'type'), opt(peer, 'host'), opt(peer, 'port')]).toEqual([['peer'], ['192.0.2.50'], ['5060']]);
    // A registering agent gets none of it.
    expect(opt(section(pj, 'alice.smith', 'aor'), 'contact')).toEqual([]);
    expect(opt(section(pj, 'alice.smith', 'aor'), 'max_contacts')).toEqual(['1']);
  });

  it.each([
    ['[2001:db8::1]:5070', '2001:db8::1', 'sip:probe@[2001:db8::1]:5070', '[2001:db8::1]', ['5070']],
    ['[2001:db8::1]', '2001:db8::1', 'sip:probe@[2001:db8::1]', '[2001:db8::1]', []],
    ['pbx.example.com', 'pbx.example.com', 'sip:probe@pbx.example.com', 'pbx.example.com', []],
  ])('fixed host %s → match %s, contact %s, chan_sip host %s', (host, match, contact, sipHost, port) => {
    // pjsip reaches an IPv6 host only over a transport bound to IPv6.
    const ipv6 = readFileSync(path.join(FIXTURE, 'switchboard.yaml'), 'utf8').replace('bind: "0.0.0.0:5060"', 'bind: "[::]:5060"');
    const s = storeFromYaml({ 'agents/probe.yaml': AGENT_YAML(`voice:\n  host: "${host}"\n  type: peer\n`) }, ipv6);
    const files = render(s, 'both');
    expect(opt(section(files.get(OUTPUT_FILES.pjsip)!, 'probe-identify', 'identify'), 'match')).toEqual([match]);
    expect(opt(section(files.get(OUTPUT_FILES.pjsip)!, 'probe', 'aor'), 'contact')).toEqual([contact]);
    const peer = section(files.get(OUTPUT_FILES.sip)!, 'probe');
    expect(opt(peer, 'host')).toEqual([sipHost]);
    expect(opt(peer, 'port')).toEqual(port);
  });

  it('call and pickup groups are normalised before they reach either driver', () => {
    const s = storeFromYaml({ 'agents/probe.yaml': AGENT_YAML('voice:\n  callGroup: "5, 1, 3 - 4, 2"\n  pickupGroup: [9, "7-8", 63, 0]\n') });
    const files = render(s, 'both');
    const ep = section(files.get(OUTPUT_FILES.pjsip)!, 'probe', 'endpoint');
    expect([opt(ep, 'call_group'), opt(ep, 'pickup_group')]).toEqual([['1-5'], ['0,7-9,63']]);
    const peer = section(files.get(OUTPUT_FILES.sip)!, 'probe');
    expect([opt(peer, 'callgroup'), opt(peer, 'pickupgroup')]).toEqual([['1-5'], ['0,7-9,63']]);
    // And from the sample store: "1,3-5" / [1, 3] / "0-2,63".
    const f = render(store, 'pjsip').get(OUTPUT_FILES.pjsip)!;
    expect(opt(section(f, 'alice.smith', 'endpoint'), 'call_group')).toEqual(['1,3-5']);
    expect(opt(section(f, 'alice.smith', 'endpoint'), 'pickup_group')).toEqual(['1,3']);
    expect(opt(section(f, 'eve', 'endpoint'), 'pickup_group')).toEqual(['0-2,63']);
    expect(opt(section(f, 'grace', 'endpoint'), 'call_group')).toEqual([]);
  });

  it('recordCalls picks the MixMonitor file suffix: wav → .wav, wav49 → .WAV, gsm → .gsm, off → none', () => {
    const ext = render(store, 'pjsip').get(OUTPUT_FILES.extensions)!;
    const mix = (exten: string) => extenLines(ext, exten).filter((l) => l.includes('MixMonitor('));
    expect(mix('1001')).toEqual([' same => n,MixMonitor(switchboard/${EXTEN}-${STRFTIME(${EPOCH},,%Y%m%d-%H%M%S)}-${UNIQUEID}.wav,b)']); // alice: wav
    expect(mix('1000')[0]).toMatch(/\$\{UNIQUEID\}\.WAV,b\)$/); // chiara: wav49
    expect(mix('1005')[0]).toMatch(/\$\{UNIQUEID\}\.gsm,b\)$/); // eve: gsm
    expect(mix('1002')).toEqual([]); // bob: off
    // MixMonitor starts before Dial, so the whole bridged call is recorded.
    const alice = extenLines(ext, '1001');
    expect(alice.findIndex((l) => l.includes('MixMonitor'))).toBeLessThan(alice.findIndex((l) => l.includes('Dial(')));
  });

  it('chanspy sets SPYGROUP on the channel and adds a spy code that matches only that agent', () => {
    const files = render(store, 'both');
    expect(opt(section(files.get(OUTPUT_FILES.pjsip)!, 'alice.smith', 'endpoint'), 'set_var')).toContain('SPYGROUP=agents');
    expect(opt(section(files.get(OUTPUT_FILES.sip)!, 'alice.smith'), 'setvar')).toContain('SPYGROUP=agents');
    expect(opt(section(files.get(OUTPUT_FILES.pjsip)!, 'bob_jones', 'endpoint'), 'set_var')).not.toContain('SPYGROUP=agents');
    const ext = files.get(OUTPUT_FILES.extensions)!;
    expect(extenLines(ext, '*221001')).toEqual(['exten => *221001,1,ChanSpy(PJSIP/alice.smith-,qE)', ' same => n,Hangup()']);
    expect(extenLines(ext, '*221002')).toEqual([]);
    const spyCodes = ext.split('\n').filter((l) => /^exten => \*22\d+,1,ChanSpy/.test(l));
    expect(spyCodes).toHaveLength(store.agents.filter((a) => a.voice.chanspy && a.enabled).length);
  });

  it('a spy code never listens in on another agent whose name starts the same (ChanSpy matches by prefix)', () => {
    const s = storeFromYaml({
      'agents/eve.yaml': AGENT_YAML('voice:\n  chanspy: true\n', '5001', 'eve'),
      'agents/evelyn.yaml': AGENT_YAML('', '5002', 'evelyn'),
    });
    for (const backend of ['pjsip', 'sip'] as const) {
      const ext = render(s, backend).get(OUTPUT_FILES.extensions)!;
      const target = /ChanSpy\(([^,]+),/.exec(ext)![1]!;
      const driver = backend === 'pjsip' ? 'PJSIP' : 'SIP';
      // Asterisk names channels "<driver>/<endpoint>-<sequence>"; ChanSpy spies on names beginning with its argument.
      const channels = ['eve', 'evelyn'].map((u) => `${driver}/${u}-0000002a`);
      expect(channels.filter((c) => c.toLowerCase().startsWith(target.toLowerCase()))).toEqual([`${driver}/eve-0000002a`]);
    }
  });

  it('a DID enters the Stasis app and falls back to the agent voicemail (or a message without one)', () => {
    const ext = render(store, 'pjsip').get(OUTPUT_FILES.extensions)!;
    expect(extenLines(ext, '+61290000001')).toEqual([
      'exten => +61290000001,1,Stasis(switchboard,+61290000001)',
      ' same => n,GotoIf($["${STASISSTATUS}" != "SUCCESS"]?vm)',
      ' same => n,Hangup()',
      ' same => n(vm),VoiceMail(1001@switchboard,u)',
      ' same => n,Hangup()',
    ]);
    const s = withAgent(store, 'alice.smith', (a) => ({ ...a, voicemail: { ...a.voicemail, enabled: false } }));
    expect(extenLines(render(s, 'pjsip').get(OUTPUT_FILES.extensions)!, '+61290000001')).toContain(' same => n(vm),Playback(ss-noservice)');
  });

  it('the dialplan dials PJSIP/ unless the backend is chan_sip only', () => {
    expect(render(store, 'pjsip').get(OUTPUT_FILES.extensions)).toContain('exten => 1001,hint,PJSIP/alice.smith');
    expect(render(store, 'both').get(OUTPUT_FILES.extensions)).toContain(' same => n,Dial(PJSIP/alice.smith,20)');
    const sip = render(store, 'sip').get(OUTPUT_FILES.extensions)!;
    expect(sip).toContain('exten => 1001,hint,SIP/alice.smith');
    expect(sip).toContain(' same => n,Dial(SIP/alice.smith,20)');
    expect(sip).not.toContain('PJSIP/');
  });

  it('chan_sip [general](+) enables only the transports in use and takes the most common NAT', () => {
    const v = planSipFile(store.settings, store.agents);
    expect(v.general).toEqual({
      tcpenable: true, tlsenable: true, nat: 'force_rport,comedia',
      tlscertfile: '/etc/asterisk/keys/asterisk.crt', tlsprivatekey: '/etc/asterisk/keys/asterisk.key',
      websocketDisabled: false,
    });
    // With both drivers, chan_sip leaves websockets to pjsip.
    expect(planSipFile({ ...store.settings, backend: 'both' }, store.agents).general?.websocketDisabled).toBe(true);
    const udpOnly = store.agents.map((a) => ({ ...a, voice: { ...a.voice, transports: ['udp' as const], nat: ['no' as const] } }));
    expect(planSipFile(store.settings, udpOnly).general).toEqual({ tcpenable: false, tlsenable: false, nat: 'no', websocketDisabled: false });
  });

  it('chan_sip [general](+) nat follows the force_rport majority, which is all chan_sip compares', () => {
    // 3 agents on "no" but 4 with force_rport: "no" as the global value would warn for 4 peers, force_rport for 3.
    const nats: NatWord[][] = [['no'], ['no'], ['no'], ['force_rport'], ['force_rport'], ['force_rport', 'comedia'], ['force_rport', 'comedia']];
    const agents = nats.map((nat, i) => ({ ...store.agents[i]!, voice: { ...store.agents[i]!.voice, nat } }));
    expect(planSipFile(store.settings, agents).general?.nat).toBe('force_rport');
    // auto_force_rport is not force_rport for that comparison: 3 without, 2 with.
    const auto: NatWord[][] = [['auto_force_rport'], ['no'], ['comedia'], ['force_rport', 'comedia'], ['force_rport', 'comedia']];
    expect(planSipFile(store.settings, auto.map((nat, i) => ({ ...store.agents[i]!, voice: { ...store.agents[i]!.voice, nat } }))).general?.nat).toBe('auto_force_rport');
  });
});

describe('rendering another backend than the store\'s (--backend)', () => {
  const SETTINGS_YAML = readFileSync(path.join(FIXTURE, 'switchboard.yaml'), 'utf8');

  it('refuses md5 digests the rendered driver checks against another realm, naming file, agent, field and fix', () => {
    // Valid for pjsip: the digest is md5(user:asterisk:secret), pjsip's realm.
    const s = storeFromYaml({ 'agents/probe.yaml': AGENT_YAML('').replace('"Probe#Pass1"', '"md5:5d41402abc4b2a76b9719d911017c592"') }, `${SETTINGS_YAML}sipRealm: pbx1\n`);
    expect(render(s, 'pjsip').get(OUTPUT_FILES.pjsip)).toContain('md5_cred = 5d41402abc4b2a76b9719d911017c592');
    for (const backend of ['sip', 'both'] as const) {
      let err: unknown;
      try {
        render(s, backend);
      } catch (e) {
        err = e;
      }
      expect(err, backend).toBeInstanceOf(SwitchboardError);
      expect((err as SwitchboardError).code).toBe('STORE_INVALID');
      expect((err as Error).message).toBe(`the store cannot be rendered for backend ${backend} (its own is pjsip): 1 error(s), nothing was written:
  - agents/probe.yaml: error: agent "5001 probe", field password = "md5:…": md5: digests are made for backend pjsip of switchboard.yaml, with pjsipRealm (asterisk), but backend ${backend} is rendered and chan_sip checks them against sipRealm (pbx1). Fix: render backend pjsip, use a plain password, or make pjsipRealm and sipRealm equal in switchboard.yaml`);
    }
    // With one realm for both drivers, any backend renders.
    const same = storeFromYaml({ 'agents/probe.yaml': AGENT_YAML('').replace('"Probe#Pass1"', '"md5:5d41402abc4b2a76b9719d911017c592"') });
    expect(render(same, 'both').get(OUTPUT_FILES.sip)).toContain('md5secret = 5d41402abc4b2a76b9719d911017c592');
  });

  it('refuses an IPv6 host whose pjsip transport is IPv4 when a chan_sip store is rendered for pjsip', () => {
    const s = storeFromYaml({ 'agents/probe.yaml': AGENT_YAML('voice:\n  host: "[2001:db8::1]"\n  type: peer\n') }, SETTINGS_YAML.replace('backend: pjsip', 'backend: sip'));
    expect(render(s, 'sip').get(OUTPUT_FILES.sip)).toContain('host = [2001:db8::1]');
    for (const backend of ['pjsip', 'both'] as const) {
      expect(() => render(s, backend), backend).toThrow(/agents\/probe\.yaml: error: agent "5001 probe", field voice\.host = "\[2001:db8::1\]": pjsip reaches an IPv6 address only over an IPv6 transport/);
    }
    // The whole render stops before any file is produced (render once, as `switchboard render` does).
    const opened: string[] = [];
    expect(() => new Renderer(loadTemplates()).renderOnce(s, 'pjsip', (file) => (opened.push(file), { push: () => undefined }))).toThrow(/cannot be rendered for backend pjsip/);
    expect(opened).toEqual([]);
  });
});

describe('incremental rendering', () => {
  /** Templates that record the `comment` of every per-agent view they render. */
  function counting(): { templates: Templates; calls: string[] } {
    const base = loadTemplates();
    const calls: string[] = [];
    const perAgent: TemplateName[] = ['pjsip/agent', 'sip/agent', 'voicemail/agent', 'extensions/agent', 'extensions/spy', 'extensions/did'];
    const templates = { ...base } as Templates;
    for (const name of perAgent) {
      templates[name] = (view: unknown) => {
        calls.push(`${name}: ${(view as { comment: string }).comment}`);
        return base[name](view);
      };
    }
    return { templates, calls };
  }

  /** The text without one agent's chunks (each starts with its "; agent ..." or "; DID of agent ..." comment). */
  function withoutAgent(text: string, idAndName: string): string {
    let skipping = false;
    return text
      .split('\n')
      .filter((l) => {
        if (l.startsWith('; ')) skipping = l.startsWith(`; agent ${idAndName} `) || l.startsWith(`; DID of agent ${idAndName} `);
        return !skipping;
      })
      .join('\n');
  }

  it('after one agent file changes, only that agent is rendered again and the result equals a fresh render', async () => {
    const dir = tempDir();
    cpSync(FIXTURE, dir, { recursive: true });
    const source = new YamlStore(dir);
    const first = await source.loadAll();
    const { templates, calls } = counting();
    const renderer = new Renderer(templates);
    const before = renderer.render(first.store!, 'both');
    expect(calls.length).toBeGreaterThan(store.agents.length * 4);

    calls.length = 0;
    expect([...renderer.render(first.store!, 'both')]).toEqual([...before]);
    expect(calls, 'the same store re-renders nothing').toEqual([]);
    // Re-reading a file (a watcher event) re-renders that agent at most, with the same result.
    expect([...renderer.render((await source.reloadFile(path.join(dir, 'agents', '1013-mateo.yaml'))).store!, 'both')]).toEqual([...before]);
    expect(calls.every((c) => c.includes('agent 1013 mateo ')), calls.join('\n')).toBe(true);

    const file = path.join(dir, 'agents', '1007-grace.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('lastName: Lee', 'lastName: Lee-Park').replace('nat: never', 'nat: comedia'));
    const second = await source.reloadFile(file);
    calls.length = 0;
    const after = renderer.render(second.store!, 'both');
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.every((c) => c.includes('agent 1007 grace ')), calls.join('\n')).toBe(true);

    // Only grace's text changed ...
    for (const [name, text] of after) {
      expect(withoutAgent(text, '1007 grace'), name).toBe(withoutAgent(before.get(name)!, '1007 grace'));
      if (name !== OUTPUT_FILES.extensions) expect(text, name).not.toBe(before.get(name));
    }
    expect(after.get(OUTPUT_FILES.voicemail)).toContain('1003 => 1212,Grace Lee-Park,');
    // ... and the result is exactly what a fresh load and render gives.
    const fresh = await new YamlStore(dir).loadAll();
    expect([...after]).toEqual([...render(fresh.store!, 'both')]);
    expect([...after]).not.toEqual([...before]);
  });

  it('a settings change or another backend invalidates the cache', async () => {
    const { templates, calls } = counting();
    const renderer = new Renderer(templates);
    renderer.render(store, 'pjsip');
    calls.length = 0;
    renderer.render(store, 'pjsip');
    expect(calls).toEqual([]);
    renderer.render(store, 'sip');
    expect(calls.length).toBeGreaterThan(0);
    calls.length = 0;
    const changed = { ...store, settings: { ...store.settings, voicemail: { context: 'other' } } };
    const text = renderer.render(changed, 'sip').get(OUTPUT_FILES.extensions)!;
    expect(calls.length).toBeGreaterThan(0);
    expect(text).toContain('VoiceMail(1001@other,u)');
  });
});

describe('checkChunk in an agent\'s own text', () => {
  const RULES: Record<string, ChunkRules> = {
    dialplan: { sections: new Set(), arrowKeys: new Set(['1001']), agent: 'dialplan' },
    config: { sections: new Set(['alice']), agent: 'config' },
    voicemail: { sections: new Set(), arrowKeys: new Set(['1001']), agent: 'config' },
  };
  const refused = (rules: ChunkRules, line: string): string[] => {
    const text = `; agent 1001 alice\n${line}\n`;
    const problems = checkChunk(text, rules, 'chunk');
    // The one-pass proof never calls clean what the line rules refuse.
    if (problems.length) expect(chunkIsClean(text, rules), line).toBe(false);
    return problems;
  };
  it.each([
    ['dialplan', ' same => n,System(id)', /^chunk, line 2: the System\(\) or TrySystem\(\) application \(it runs a command\) in an agent's text " same => n,System\(id\)"$/],
    ['dialplan', 'exten => 1001,1,trysystem (id)', /the System\(\) or TrySystem\(\) application/],
    ['dialplan', ' same => n,Set(x=${SHELL(id)})', /^chunk, line 2: the SHELL\(\) function \(it runs a command\) in an agent's text/],
    ['dialplan', ' same => n,NoOp(${ Shell (id)})', /the SHELL\(\) function/],
    ['dialplan', ' same => n,Set(p=${SHELL(id)}),password = x', /the SHELL\(\) function/],
    ['dialplan', 'include => other-context', /^chunk, line 2: "include =>" in an agent's text \(it would pull another context in\)/],
    ['dialplan', 'INCLUDE => other-context', /"include =>" in an agent's text/],
    ['config', 'callerid = "${SHELL(id)}" <1001>', /the SHELL\(\) function/],
    ['config', 'include => other', /"include =>" in an agent's text/],
    ['voicemail', '1001 => 1234,${shell(id)},a@b.c,,attach=no', /the SHELL\(\) function/],
    ['voicemail', 'include => 1234,Name,a@b.c,,attach=no', /"include =>" in an agent's text \(it would pull another context in\) "include => <hidden>,Name/],
  ])('an agent\'s %s text: refuses %j', (kind, line, problem) => {
    const problems = refused(RULES[kind]!, line);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(problem);
  });

  it.each([
    ['dialplan', ' same => n,System(id)', [
      ' same => n,MixMonitor(switchboard/${EXTEN}-${STRFTIME(${EPOCH},,%Y%m%d-%H%M%S)}-${UNIQUEID}.wav,b)',
      ' same => n,GotoIf($["${DIALSTATUS}" = "BUSY"]?busy)',
      ' same => n,GotoIf($["${STASISSTATUS}" != "SUCCESS"]?vm)',
      ' same => n,NoOp(${SHELLS} ${MYSHELL(x)} Systems(x) Filesystem)',
      '; System(id) and ${SHELL(id)} in a comment are no lines',
    ]],
    // Asterisk never evaluates a SIP secret, and the password policy allows "$", "{" and "(".
    ['config', 'callerid = "${SHELL(id)}" <1001>', ['password = ${SHELL(id)}', 'secret = x${shell(y)}', 'callerid = "System (x)" <1001>']],
    ['voicemail', 'include => 1234,Name,a@b.c,,attach=no', ['1001 => 1234,System (admin),a@b.c,,attach=no']],
  ])('an agent\'s %s text: refuses %j, yet accepts the stock expressions and what only looks alike', (kind, bad, good) => {
    expect(refused(RULES[kind]!, bad)).toHaveLength(1);
    for (const line of good) expect(refused(RULES[kind]!, line), line).toEqual([]);
    // A fixed chunk (a context of the operator's own template) may still include.
    expect(refused({ sections: new Set(), arrowKeys: new Set() }, 'include => other-context')).toEqual([]);
  });
});

describe('checkChunk', () => {
  const rules = { sections: new Set(['a']), arrowKeys: new Set(['1001']) };
  it('refuses a directive even when it is shaped like "key => value" (pjsip/sip chunks have no arrow-key list)', () => {
    expect(checkChunk('#include => /etc/passwd\n', { sections: new Set() }, 'pjsip')).toEqual(['pjsip, line 1: directive line "#include => /etc/passwd" (#include, #exec, ...)']);
    expect(checkChunk(' #exec => id\n', { sections: new Set() }, 'sip')).toHaveLength(1);
  });
  it('accepts every line shape the templates produce', () => {
    const ok = ['', '; a comment; even with ;-- inside', '[a]', '[a](+)', '[a](!)', '[a](tpl-1)', 'key = value', 'key_2 = a=b <c> "d" $5 [x]', 'escaped = a\\;b',
      'exten => 1001,1,NoOp()', ' same => n,Hangup()', 'include => other', '1001 => 1234,Name,a@b.c,,attach=yes'];
    expect(checkChunk(ok.join('\n'), rules, 'x')).toEqual([]);
  });
  it.each([
    ['[b]', /section \[b\] does not belong here/],
    ['[a', /malformed section header/],
    ['[a] ; trailing', /malformed section header/],
    ['#include /etc/passwd', /directive line/],
    ['  #exec id', /directive line/],
    [';-- block', /block comment opener/],
    ['key = a;b', /";" inside a value/],
    ['key = a\\;b;c', /";" inside a value/],
    ['key = v\r', /carriage return/],
    ['key=v', /not a config line/],
    ['key = ', /not a config line/],
    [' [a]', /not a config line/],
    ['exten => 666,1,System(id)', /"666" does not belong here/],
    ['2002 => 1234,x', /"2002" does not belong here/],
    ['just words', /not a config line/],
  ])('refuses %j', (line, problem) => {
    const problems = checkChunk(`key = ok\n${line}\n`, rules, 'chunk');
    expect(problems.length).toBeGreaterThan(0);
    for (const p of problems) expect(p).toMatch(/^chunk, line 2: /);
    expect(problems.join('\n')).toMatch(problem);
  });
});
