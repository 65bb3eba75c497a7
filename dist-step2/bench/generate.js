/**
 * Generates a realistic agent store for benchmarks: `switchboard.yaml` shaped like
 * fixtures/store/switchboard.yaml (udp/tcp/tls/ws/wss transports) and n agent files that mix
 * typologies, transports, NAT, codecs, groups, unique E.164 DIDs, voicemail PINs, md5 and plain
 * passwords that meet the policy, and agents without an extension (auto-assigned from the range).
 * The output depends only on (n, seed), so every run measures the same store.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { PASSWORD_SPECIALS } from '../model/fields.js';
import { AGENTS_DIR, SETTINGS_FILE } from '../store/yaml-store.js';
/** Bumped whenever the generated content changes, so cached stores are rebuilt. */
export const GENERATOR_VERSION = 1;
/** First extension of the range; agents with an explicit extension take EXT_FROM + index. */
export const EXT_FROM = 100000;
export const EXT_TO = 299999;
/** mulberry32: small, fast and good enough to pick realistic values deterministically. */
export function rng(seed) {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}
const FIRST = ['Alice', 'Bob', 'Chiara', 'Dmitri', 'Eve', 'Farid', 'Grace', 'Hugo', 'Inês', 'Jun', 'Kofi', 'Lena', 'Mateo', 'Nadia', 'Oskar', 'Priya', 'Quentin', 'Rosa', 'Sven', 'Tomás', 'Uma', 'Viktor', 'Wen', 'Xavier', 'Yara', 'Zoë'];
const LAST = ['Smith', 'Jones', 'Rossi', 'Ivanov', "O'Neil", 'Haddad', 'Lee', 'Martin', 'Costa-Silva', 'Park', 'Mensah', 'Schmidt', 'Garcia', 'Nguyen', 'Kowalski', 'Müller', 'Dubois', 'Tanaka', 'Okafor', 'Andersson'];
const TIMEZONES = ['Australia/Sydney', 'Europe/Rome', 'Europe/Berlin', 'Europe/Lisbon', 'Europe/London', 'America/New_York', 'UTC'];
const LANGUAGES = ['en', 'en_GB', 'it', 'de', 'pt_BR', 'es', 'fr'];
const NATS = ['"yes"', '"no"', 'force_rport', 'comedia', 'force_rport,comedia', 'never', 'route', 'auto_force_rport'];
const DID_PREFIXES = ['+6129', '+39061', '+49302', '+1212', '+44207'];
const PHONEBAR_CODECS = ['[ulaw, alaw]', '[alaw, ulaw]', '[g722, ulaw, alaw]', '[ulaw, alaw, gsm, g722, opus]', '[gsm, ulaw]', '[opus, g722, ulaw]'];
const EXTERNAL_CODECS = ['[g729, ulaw]', '[ulaw, gsm, g729]', '[alaw]', '[ulaw, alaw]'];
/** The two codec lists the incremental benchmark toggles between (valid for every typology). */
export const TOGGLE_CODECS = ['[ulaw, alaw, g722]', '[alaw, ulaw]'];
/** The codecs line swapped in and out of an agent file (the edit an operator makes). */
export function toggleCodecs(text) {
    const m = /^ {2}codecs: .*$/m.exec(text);
    if (m)
        return text.replace(m[0], `  codecs: ${m[0].trim() === `codecs: ${TOGGLE_CODECS[0]}` ? TOGGLE_CODECS[1] : TOGGLE_CODECS[0]}`);
    // No codecs line: add one that differs from every default (the store's and each typology's).
    if (/^voice:$/m.test(text))
        return text.replace(/^voice:$/m, `voice:\n  codecs: ${TOGGLE_CODECS[1]}`);
    return `${text}voice:\n  codecs: ${TOGGLE_CODECS[1]}\n`;
}
export const SETTINGS_YAML = `# Organisation-wide settings of a generated benchmark store (shaped like fixtures/store).
organisation:
  name: Bench Contact Centre
  cli: "+61290000000"
backend: pjsip
defaults:
  context: from-sip
  codecs: [ulaw, alaw, g722]
  nat: force_rport,comedia
  timezone: Australia/Sydney
  language: en
  ringTimeoutSeconds: 20
  sipExpires: 3600
voicemail:
  context: switchboard
dialplan:
  agentsContext: switchboard-agents
  didContext: switchboard-dids
  spyContext: switchboard-spy
  spyPrefix: "*22"
  stasisApp: switchboard
extensions:
  from: "${EXT_FROM}"
  to: "${EXT_TO}"
passwordPolicy: true
transports:
  - protocol: udp
    bind: "0.0.0.0:5060"
    externalAddress: 203.0.113.10
    localNets: [192.168.0.0/16, 10.0.0.0/8]
  - protocol: tcp
    bind: "0.0.0.0:5060"
    externalAddress: 203.0.113.10
    localNets: [192.168.0.0/16, 10.0.0.0/8]
  - protocol: tls
    bind: "0.0.0.0:5061"
    certFile: /etc/asterisk/keys/asterisk.crt
    privKeyFile: /etc/asterisk/keys/asterisk.key
    method: tlsv1_2
  - protocol: ws
    bind: "0.0.0.0:5066"
  - protocol: wss
    bind: "0.0.0.0:5067"
    certFile: /etc/asterisk/keys/asterisk.crt
    privKeyFile: /etc/asterisk/keys/asterisk.key
`;
const LOWER = 'abcdefghijkmnopqrstuvwxyz';
const UPPER = 'ABCDEFGHJKLMNPQRSTUVWXYZ';
const DIGITS = '23456789';
/** Renders one agent file; `didCounter` makes every DID in the store unique. */
export function agentYaml(i, r, didCounter) {
    const pick = (xs) => xs[Math.floor(r() * xs.length)];
    const chance = (p) => r() < p;
    const chars = (set, k) => Array.from({ length: k }, () => pick([...set])).join('');
    const id = String(1_000_000 + i * 7 + Math.floor(r() * 7));
    const first = pick(FIRST);
    const last = pick(LAST);
    const ascii = (s) => s.normalize('NFD').replace(/[^A-Za-z]/g, '').toLowerCase();
    const username = `${ascii(first)}.${ascii(last)}${i}`;
    const roll = r();
    const typology = roll < 0.55 ? 'phonebar' : roll < 0.7 ? 'external' : roll < 0.85 ? 'webrtc' : 'mobile';
    const lines = [];
    if (chance(0.3))
        lines.push(`# ${typology} agent ${first} ${last}, generated for benchmarks.`);
    lines.push(`id: ${id}`, `username: ${username}`, `firstName: ${first}`, `lastName: ${last}`);
    if (chance(0.1))
        lines.push(`displayName: ${first} ${last.slice(0, 1)}`);
    if (chance(0.05))
        lines.push(`alias: ${first.slice(0, 1)}${last.slice(0, 1)}${i}`);
    const vmEnabled = chance(0.88);
    const didCount = vmEnabled ? (chance(0.6) ? 1 : chance(0.25) ? 2 : 0) : 0;
    // Agents with DIDs and voicemail always get an email (otherwise validation warns).
    if (didCount > 0 || chance(0.85))
        lines.push(`email: ${username}@example.com`);
    lines.push(`typology: ${typology}`);
    if (chance(0.9))
        lines.push(`extension: "${EXT_FROM + i}"`);
    if (chance(0.03))
        lines.push('enabled: false');
    if (chance(0.3)) {
        const digest = createHash('md5').update(`${username}:asterisk:${chars(LOWER, 10)}`).digest('hex');
        lines.push(`password: "md5:${digest}"`);
    }
    else {
        lines.push(`password: "${chars(UPPER, 2)}${chars(LOWER, 6)}${pick([...PASSWORD_SPECIALS])}${chars(DIGITS, 3)}"`);
    }
    if (didCount > 0) {
        const dids = [];
        for (let k = 0; k < didCount; k++) {
            const n = didCounter.next++;
            dids.push(`"${DID_PREFIXES[n % DID_PREFIXES.length]}${String(n).padStart(7, '0')}"`);
        }
        lines.push(`dids: [${dids.join(', ')}]`);
    }
    if (chance(0.05))
        lines.push(`cli: "+6129${String(8_000_000 + i).padStart(7, '0')}"`);
    if (chance(0.6))
        lines.push(`timezone: ${pick(TIMEZONES)}`);
    if (chance(0.4))
        lines.push(`language: ${pick(LANGUAGES)}`);
    const voice = [];
    const group = () => pick(['1', '"1,3-5"', '[2, 4]', '"0-2,63"', '7', '"7-9"']);
    if (typology === 'phonebar') {
        const tr = pick(['[udp]', '[udp, tcp]', '[tcp]', '[tls, udp]']);
        voice.push(`transports: ${tr}`);
        if (tr.includes('tls'))
            voice.push('encryption: true');
        if (chance(0.7))
            voice.push(`nat: ${pick(NATS)}`);
        voice.push(`codecs: ${pick(PHONEBAR_CODECS)}`);
        if (chance(0.3))
            voice.push(`callGroup: ${group()}`);
        if (chance(0.3))
            voice.push(`pickupGroup: ${group()}`);
        if (chance(0.3))
            voice.push('chanspy: true');
        if (chance(0.2))
            voice.push(`recordCalls: ${pick(['wav', 'wav49', 'gsm'])}`);
        if (chance(0.05))
            voice.push('video: true');
        if (chance(0.1))
            voice.push(`ringTimeoutSeconds: ${pick([15, 25, 30, 45])}`);
    }
    else if (typology === 'external') {
        voice.push(`transports: ${pick(['[udp]', '[tcp]', '[ws, udp]', '[udp, tcp]'])}`);
        if (chance(0.3))
            voice.push(`host: ${pick(['192.0.2', '198.51.100', '203.0.113'])}.${1 + (i % 250)}:5060`, 'type: peer');
        else if (chance(0.01))
            voice.push('type: user');
        voice.push(`nat: ${pick(NATS)}`);
        voice.push(`codecs: ${pick(EXTERNAL_CODECS)}`);
        if (chance(0.2))
            voice.push(`callerId: "${first} ${last.replace(/'/g, '')} <${EXT_FROM + i}>"`);
        if (chance(0.3))
            voice.push(`callGroup: ${group()}`, `pickupGroup: ${group()}`);
    }
    else if (typology === 'webrtc') {
        if (chance(0.5))
            voice.push('transports: [wss]');
        if (chance(0.5))
            voice.push('codecs: [opus, ulaw]');
        if (chance(0.2))
            voice.push('video: true');
        if (chance(0.2))
            voice.push(`recordCalls: ${pick(['wav', 'wav49'])}`);
    }
    else {
        if (chance(0.5))
            voice.push('transports: [tls]', 'encryption: true');
        else
            voice.push('transports: [tcp]');
        voice.push(`nat: ${pick(['force_rport', 'auto_force_rport', 'comedia'])}`);
        voice.push(`codecs: ${pick(['[opus, g722, ulaw]', '[opus, alaw]', '[ulaw, alaw]'])}`);
        if (chance(0.3))
            voice.push(`sipExpires: ${pick([300, 600, 1800])}`);
        if (chance(0.1))
            voice.push('context: from-mobile');
    }
    if (voice.length)
        lines.push('voice:', ...voice.map((v) => `  ${v}`));
    if (typology === 'mobile')
        lines.push('mobile:', `  pushGateway: "${pick(['push.example.com:5060', '10.0.0.5:5060', 'gw.example.net'])}"`);
    if (vmEnabled) {
        lines.push('voicemail:', `  pin: "${String(Math.floor(r() * 1e6)).padStart(pick([4, 6]), '0').slice(0, 6)}"`);
        if (chance(0.3))
            lines.push('  attach: false');
    }
    else {
        lines.push('voicemail:', '  enabled: false');
    }
    return { name: `${id}-${username}.yaml`, text: lines.join('\n') + '\n' };
}
/** Writes a fresh store of n agents into `dir` (which must not hold another store's agents). */
export async function generateStore(dir, n, seed) {
    const agentsDir = path.join(dir, AGENTS_DIR);
    await fs.mkdir(agentsDir, { recursive: true });
    await fs.writeFile(path.join(dir, SETTINGS_FILE), SETTINGS_YAML);
    const r = rng(seed);
    const didCounter = { next: 1 };
    const batch = [];
    for (let i = 0; i < n; i++) {
        const { name, text } = agentYaml(i, r, didCounter);
        batch.push(fs.writeFile(path.join(agentsDir, name), text));
        if (batch.length >= 256)
            await Promise.all(batch.splice(0));
    }
    await Promise.all(batch);
}
//# sourceMappingURL=generate.js.map