/**
 * Injection properties: every string-valued agent field gets hostile text (line breaks, comment and
 * section characters, directives, dialplan expressions, caller-id syntax, separators, unicode) and
 * valid fragments. The text travels as YAML through the same code path as a store file
 * (parseYamlSource → validateAgent → validateAgents) and, written to a store directory, through
 * YamlStore.reloadFile (whatever reader it uses for files); both must agree. Either validation refuses it with an issue on
 * that very field, or the store renders and every rendered file re-reads as well-formed Asterisk
 * config with no structure the payload could have added.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateAgent, type DraftAgent } from '../src/model/agent.js';
import { IssueList } from '../src/model/issues.js';
import { validateSettings } from '../src/model/settings.js';
import { validateAgents } from '../src/model/store.js';
import type { Agent, Settings } from '../src/model/types.js';
import { checkChunk } from '../src/render/check.js';
import { OUTPUT_FILES, Renderer } from '../src/render/render.js';
import { loadTemplates } from '../src/render/templates.js';
import { parseYamlSource } from '../src/store/source.js';
import { YamlStore } from '../src/store/yaml-store.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// The sample settings (every transport defined), with the password policy off so that hostile
// passwords get as far as the renderer instead of stopping at the policy.
const settingsIssues = new IssueList();
const SETTINGS_YAML = readFileSync(path.join(ROOT, 'fixtures', 'store', 'switchboard.yaml'), 'utf8').replace('passwordPolicy: true', 'passwordPolicy: false');
const SETTINGS: Settings = validateSettings(parseYamlSource('switchboard.yaml', SETTINGS_YAML, settingsIssues), settingsIssues);

/** A valid neighbour in every store, so that a payload reaching into another agent's sections shows. */
const OTHER_YAML = {
  id: '7999', username: 'other.agent', firstName: 'Other', lastName: 'Agent', email: 'other@example.com', typology: 'phonebar',
  extension: '1799', password: 'Other#Pass9', dids: ['+61290007999'], voice: { chanspy: true, recordCalls: 'gsm' }, voicemail: { pin: '7999' },
};
const BASE = {
  id: '7001', username: 'fuzz', firstName: 'Fuzz', lastName: 'Target', displayName: 'Fuzz Target', alias: 'FT', email: 'fuzz@example.com',
  typology: 'phonebar', extension: '1700', password: 'Fuzz#Pass1', dids: ['+61290007001', '+61290007002'], cli: '+61290000001',
  timezone: 'Europe/Rome', language: 'en',
  voice: {
    transports: 'udp,tcp', host: 'dynamic', nat: 'force_rport,comedia', type: 'friend', codecs: 'ulaw,alaw', callerId: 'Fuzz Target <1700>',
    context: 'from-sip', callGroup: '1,3-5', pickupGroup: '2', recordCalls: 'wav', chanspy: true,
  },
  voicemail: { pin: '7001' },
};
const MOBILE_BASE = { ...BASE, typology: 'mobile', voice: { ...BASE.voice, transports: 'tcp' }, mobile: { pushGateway: 'push.example.com:5060' } };

interface FieldSpec { field: string; path: (string | number)[]; valid: string[]; base?: object }
const FIELDS: FieldSpec[] = [
  { field: 'id', path: ['id'], valid: ['7001', '1', '123456789012'] },
  { field: 'username', path: ['username'], valid: ['fuzz', 'fuzz.agent', 'F_1'] },
  { field: 'firstName', path: ['firstName'], valid: ['Fuzz', "O'Neil", 'Zoë'] },
  { field: 'lastName', path: ['lastName'], valid: ['Target', 'Costa-Silva', '007'] },
  { field: 'displayName', path: ['displayName'], valid: ['Fuzz T', 'Zoë 😀', "D'Arcy = Smith"] },
  { field: 'alias', path: ['alias'], valid: ['FT', 'the fuzzer'] },
  { field: 'email', path: ['email'], valid: ['a@example.com', 'a.b+c@ex-ample.co'] },
  { field: 'extension', path: ['extension'], valid: ['1700', '17', '0170'] },
  { field: 'password', path: ['password'], valid: ['Fuzz#Pass1', 'a$[b]x', '#hash', 'x=y', '[x]'] },
  { field: 'dids.1', path: ['dids', 1], valid: ['+61290007003', '+12025550123'] },
  { field: 'cli', path: ['cli'], valid: ['+61290000000', '123'] },
  { field: 'timezone', path: ['timezone'], valid: ['UTC', 'Europe/Rome', 'America/Argentina/Buenos_Aires'] },
  { field: 'language', path: ['language'], valid: ['en', 'pt_BR'] },
  { field: 'voice.transports', path: ['voice', 'transports'], valid: ['udp', 'tcp,tls', 'tls'] },
  { field: 'voice.host', path: ['voice', 'host'], valid: ['dynamic', '192.0.2.1', '[2001:db8::1]:5060', 'pbx.example.com'] },
  { field: 'voice.nat', path: ['voice', 'nat'], valid: ['yes', 'no', 'comedia,force_rport', 'auto_comedia'] },
  { field: 'voice.type', path: ['voice', 'type'], valid: ['friend', 'peer', 'user'] },
  { field: 'voice.codecs', path: ['voice', 'codecs'], valid: ['ulaw', 'opus,g722'] },
  { field: 'voice.callerId', path: ['voice', 'callerId'], valid: ['Fuzz <1700>', '+61290000000', '"Zoë" <12>', '<1700>'] },
  { field: 'voice.context', path: ['voice', 'context'], valid: ['from-sip', 'ctx_1'] },
  { field: 'voice.callGroup', path: ['voice', 'callGroup'], valid: ['1,3-5', '0', '63', '5, 3 - 4'] },
  { field: 'voice.pickupGroup', path: ['voice', 'pickupGroup'], valid: ['1,3-5', '0', '63'] },
  { field: 'voice.recordCalls', path: ['voice', 'recordCalls'], valid: ['off', 'wav49', 'gsm'] },
  { field: 'voicemail.pin', path: ['voicemail', 'pin'], valid: ['1234', '000000'] },
  { field: 'mobile.pushGateway', path: ['mobile', 'pushGateway'], valid: ['push.example.com:5060', '10.0.0.5'], base: MOBILE_BASE },
];

const HOSTILE = [
  '\n', '\r', '\r\n', ';', '\\;', ';--', '--;', '[', ']', '[evil]', '\n[evil]\ntype = endpoint\n', '#include', '\n#include /etc/passwd\n', '#exec',
  '#tryinclude', '${SHELL(rm -rf /)}', '${SHELL(id)}', '$[1+1]', '"', "'", '<', '>', ',', '|', '=', '=>', ' => ', '\\', ' ', '\t', '\u0000',
  '\u200f', '\u202e', '\u2028', '\u2029', '\u0085', '\u0080', '\u008d', '\u009f', '😀', 'é', 'exten => 666,1,System(id)', 'same => n,Hangup()', '(', ')', '@', ':', '/', '.', '-', '_', '+', '*',
];
/** Line breaks to JavaScript or Unicode that are no "\n": U+2028, U+2029 and C1 controls (NEL is U+0085). */
const SEPARATORS = ['\u2028', '\u2029', '\u0085', '\u0080', '\u008a', '\u009f'];
function hostile(valid: string[]): fc.Arbitrary<string> {
  const piece = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...HOSTILE) },
    { weight: 2, arbitrary: fc.constantFrom(...valid) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 4 }) },
  );
  return fc.oneof(
    { weight: 1, arbitrary: fc.constantFrom(...valid) },
    { weight: 5, arbitrary: fc.array(piece, { minLength: 1, maxLength: 6 }).map((p) => p.join('')) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
    // Valid text with one separator inside: nothing else in it is refused, so only the separator can be.
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...valid), fc.constantFrom(...SEPARATORS), fc.constantFrom(...valid)).map(([a, sep, b]) => a + sep + b) },
  );
}

function setIn(obj: Record<string | number, unknown>, p: (string | number)[], value: string): void {
  let cur = obj;
  for (const k of p.slice(0, -1)) cur = cur[k] as Record<string | number, unknown>;
  cur[p.at(-1)!] = value;
}
function getIn(obj: unknown, p: (string | number)[]): unknown {
  return p.reduce<unknown>((cur, k) => (cur && typeof cur === 'object' ? (cur as Record<string | number, unknown>)[k] : undefined), obj);
}

const memo = new WeakMap<DraftAgent, Agent>();
const otherIssues = new IssueList();
const OTHER = validateAgent(parseYamlSource('agents/other.yaml', stringify(OTHER_YAML), otherIssues), SETTINGS, otherIssues)!;
const renderer = new Renderer(loadTemplates());

// Template text that legitimately holds dialplan expressions; anything else with "${" or "$[" came from input.
const DIALPLAN_EXPRESSIONS = /\$\{(EXTEN|UNIQUEID|EPOCH|DIALSTATUS|STASISSTATUS)\}|\$\{STRFTIME\(\$\{EPOCH\},,%Y%m%d-%H%M%S\)\}|\$\["\$\{(DIALSTATUS|STASISSTATUS)\}" !?= "(BUSY|SUCCESS)"\]/g;
const LINE = /^(|;(?!--).*|\[[A-Za-z0-9_.+-]+\](\((\+|!|[A-Za-z0-9_,!-]+)\))?|[A-Za-z_][A-Za-z0-9_]* = \S.*| ?[A-Za-z0-9_+*-]+ => \S.*)$/;

/** Every structural property of the rendered store; returns a list of violations. */
function structuralProblems(files: Map<string, string>, agents: readonly Agent[]): string[] {
  const problems: string[] = [];
  const allowed = new Set<string>([
    ...SETTINGS.transports.map((t) => t.name), 'general', SETTINGS.voicemail.context,
    SETTINGS.dialplan.agentsContext, SETTINGS.dialplan.spyContext, SETTINGS.dialplan.didContext,
    ...agents.flatMap((a) => [a.username, `${a.username}-auth`, `${a.username}-identify`]),
  ]);
  const boxes = new Set<string>();
  for (const line of files.get(OUTPUT_FILES.voicemail)!.split('\n')) {
    const m = /^(\d+) => /.exec(line);
    if (m) boxes.add(`${m[1]}@${SETTINGS.voicemail.context}`);
  }
  for (const [name, text] of files) {
    problems.push(...checkChunk(text, { sections: allowed }, name));
    if (/[\r\u0000]/.test(text)) problems.push(`${name}: CR or NUL`);
    if (/[\u0080-\u009f\u2028\u2029]/.test(text)) problems.push(`${name}: C1 control or Unicode line separator`);
    const headers: string[] = [];
    for (const line of text.split('\n')) {
      const at = `${name}: ${JSON.stringify(line)}`;
      if (!LINE.test(line)) problems.push(`${at}: not a config line`);
      if (line.trimStart().startsWith('#')) problems.push(`${at}: directive`);
      if (line.startsWith(';')) continue;
      if (line.includes(';')) problems.push(`${at}: ";" in a value`);
      if (line.startsWith('[')) {
        headers.push(line);
        if (!allowed.has(line.slice(1, line.indexOf(']')))) problems.push(`${at}: unexpected section`);
      }
      if (name === OUTPUT_FILES.extensions || name === OUTPUT_FILES.voicemail) {
        const rest = line.replace(DIALPLAN_EXPRESSIONS, '');
        if (rest.includes('${') || rest.includes('$[')) problems.push(`${at}: dialplan expression from input`);
      }
      if (name === OUTPUT_FILES.extensions) {
        const e = /^exten => ([^,]*),/.exec(line);
        if (e && !/^(\+?\d+|\*\d+)$/.test(e[1]!)) problems.push(`${at}: extension is not digits`);
        for (const box of line.matchAll(/VoiceMail\(([^,)]*),/g)) if (!boxes.has(box[1]!)) problems.push(`${at}: no mailbox ${box[1]}`);
        if (/^(exten|include| same) => /.test(line) === false && line !== '' && !line.startsWith('[')) problems.push(`${at}: unexpected dialplan line`);
      }
      if (name === OUTPUT_FILES.voicemail && /=>/.test(line) && !/^\d+ => \d+,[^,|;]+,[^,|;]*,,attach=(yes|no)\|saycid=no\|envelope=no\|delete=no$/.test(line)) {
        problems.push(`${at}: mailbox line does not have its five fields`);
      }
      const kv = /^([a-z_0-9]+) = (.*)$/.exec(line);
      if (kv) {
        const [, key, value] = kv;
        if (key === 'callerid' && !/^("[^"\\]*" )?<\+?\d+>$/.test(value!)) problems.push(`${at}: malformed caller id`);
        if (['password', 'secret', 'md5secret', 'md5_cred'].includes(key!) && /\s/.test(value!)) problems.push(`${at}: space in a secret`);
        if ((key === 'mailboxes' || key === 'mailbox') && !boxes.has(value!)) problems.push(`${at}: no such mailbox`);
        if (value !== value!.trim()) problems.push(`${at}: value with surrounding spaces`);
      }
    }
    if (name === OUTPUT_FILES.pjsip) {
      for (const a of agents) {
        const own = headers.filter((h) => h === `[${a.username}]`).length;
        if (own !== 2) problems.push(`${name}: [${a.username}] appears ${own} times (endpoint + aor expected)`);
      }
    }
  }
  return problems;
}

const stats = new Map<string, { accepted: number; rejected: number }>();

/** A store directory holding the neighbour; each run writes agents/fuzz.yaml and reloads it. */
let storeDir: string;
let store: YamlStore;
beforeAll(async () => {
  expect(SETTINGS.passwordPolicy).toBe(false);
  storeDir = mkdtempSync(path.join(tmpdir(), 'switchboard-fuzz-'));
  mkdirSync(path.join(storeDir, 'agents'));
  writeFileSync(path.join(storeDir, 'switchboard.yaml'), SETTINGS_YAML);
  writeFileSync(path.join(storeDir, 'agents', 'other.yaml'), stringify(OTHER_YAML));
  store = new YamlStore(storeDir);
  const r = await store.loadAll();
  expect(r.issues).toEqual([]);
});

describe.each(FIELDS.map((f, i) => [f.field, f, i] as const))('hostile text in %s', (_name, spec, index) => {
  it('is refused on that field, or renders without changing the structure of any file', async () => {
    const counts = { accepted: 0, rejected: 0 };
    stats.set(spec.field, counts);
    await fc.assert(
      fc.asyncProperty(hostile(spec.valid), async (payload) => {
        const obj = structuredClone(spec.base ?? BASE) as Record<string, unknown>;
        setIn(obj, spec.path, payload);
        const text = stringify(obj);
        const issues = new IssueList();
        const doc = parseYamlSource('agents/fuzz.yaml', text, issues);
        // The payload must arrive intact, or the property proves nothing.
        expect(issues.items).toEqual([]);
        expect(getIn(doc.data, spec.path)).toBe(payload);

        const draft = validateAgent(doc, SETTINGS, issues);
        const agents = validateAgents(draft ? [OTHER, draft] : [OTHER], SETTINGS, issues, new Map(), memo);
        const errors = issues.errors;
        // The same file through the store gives the same verdict and the same agents (checked for
        // every accepted payload and every fourth refused one, to keep the run short).
        const viaStore = errors.length === 0 || (counts.accepted + counts.rejected) % 4 === 0;
        let loaded: Awaited<ReturnType<YamlStore['reloadFile']>> | undefined;
        if (viaStore) {
          writeFileSync(path.join(storeDir, 'agents', 'fuzz.yaml'), text);
          loaded = await store.reloadFile(path.join(storeDir, 'agents', 'fuzz.yaml'));
          expect(loaded.issues.map((i) => i.message)).toEqual(issues.items.map((i) => i.message));
        }
        if (errors.length > 0) {
          counts.rejected++;
          for (const e of errors) {
            const ok = e.field === spec.field || (spec.field.startsWith('dids') && e.field === 'dids');
            expect(ok, `${JSON.stringify(payload)}: an error on another field: ${e.message}`).toBe(true);
          }
          return;
        }
        counts.accepted++;
        expect(agents.map((a) => a.id).sort()).toEqual(['7999', getIn(obj, ['id']) as string].sort());
        expect(loaded!.store!.agents.map(({ file: _f, ...a }) => a)).toEqual(agents.map(({ file: _f, ...a }) => a));
        const files = renderer.render(loaded!.store!, 'both');
        expect(structuralProblems(files, loaded!.store!.agents), `payload ${JSON.stringify(payload)}`).toEqual([]);
      }),
      { seed: 0x5b0a + index, numRuns: 200 },
    );
    // Both outcomes happened, so neither half of the property is vacuous.
    expect(counts.accepted, 'accepted runs').toBeGreaterThan(0);
    expect(counts.rejected, 'rejected runs').toBeGreaterThan(0);
  });
});

describe('the structural check itself', () => {
  it('fails on each kind of injection it is meant to catch', () => {
    const issues = new IssueList();
    const d = validateAgent(parseYamlSource('agents/fuzz.yaml', stringify(BASE), issues), SETTINGS, issues)!;
    const agents = validateAgents([OTHER, d], SETTINGS, issues);
    expect(issues.errors).toEqual([]);
    const files = new Renderer(loadTemplates()).render({ settings: SETTINGS, agents }, 'both');
    expect(structuralProblems(files, agents)).toEqual([]);
    const tamper = (file: string, from: string, to: string) => {
      const copy = new Map(files);
      expect(copy.get(file)!.includes(from), from).toBe(true);
      copy.set(file, copy.get(file)!.replace(from, to));
      return structuralProblems(copy, agents);
    };
    expect(tamper(OUTPUT_FILES.pjsip, 'callerid = "Fuzz Target" <1700>', 'callerid = "Fuzz\n[evil]" <1700>').join()).toMatch(/unexpected section|does not belong/);
    expect(tamper(OUTPUT_FILES.pjsip, 'password = Fuzz#Pass1', 'password = Fuzz;Pass1').join()).toMatch(/";" in a value/);
    expect(tamper(OUTPUT_FILES.sip, 'secret = Fuzz#Pass1', 'secret = x\n#include /etc/passwd').join()).toMatch(/directive/);
    expect(tamper(OUTPUT_FILES.extensions, 'Dial(PJSIP/fuzz,20)', 'Dial(PJSIP/fuzz${SHELL(id)},20)').join()).toMatch(/dialplan expression from input/);
    expect(tamper(OUTPUT_FILES.voicemail, 'Fuzz Target,', 'Fuzz, Target,').join()).toMatch(/five fields/);
    expect(tamper(OUTPUT_FILES.voicemail, '1700 => 7001', '1701 => 7001').join()).toMatch(/no mailbox 1700@switchboard/);
    expect(tamper(OUTPUT_FILES.pjsip, 'callerid = "Fuzz Target" <1700>', 'callerid = "Fuzz" <1700>, "x" <1>').join()).toMatch(/malformed caller id/);
    expect(tamper(OUTPUT_FILES.extensions, 'exten => 1700,1,', 'exten => 1700\u202e,1,').join()).toMatch(/extension is not digits/);
    expect(tamper(OUTPUT_FILES.pjsip, 'callerid = "Fuzz Target" <1700>', 'callerid = "Fuzz\u0085Target" <1700>').join()).toMatch(/C1 control or Unicode line separator/);
    expect(tamper(OUTPUT_FILES.voicemail, 'Fuzz Target,', 'Fuzz\u2029Target,').join()).toMatch(/C1 control or Unicode line separator/);
  });
});

afterAll(() => {
  rmSync(storeDir, { recursive: true, force: true });
  // Visible with --reporter=verbose when tuning the generators.
  if (process.env['FUZZ_STATS']) console.log(Object.fromEntries(stats));
});
