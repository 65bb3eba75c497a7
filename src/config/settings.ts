/**
 * The daemon's own settings (not the agent store's `switchboard.yaml`): where the store is, where
 * rendered config goes, how to reach Asterisk, SMTP, voicemail limits, logging.
 *
 * Precedence: built-in defaults ← settings file (INI, `switchboard.ini`) ← environment
 * (`SWITCHBOARD_<SECTION>_<KEY>`) ← command-line flags. Everything is validated once, every problem
 * is reported together (file, section, key, value and the fix), and the result is frozen.
 *
 * Paths written in the settings file are relative to the file's directory; paths from the
 * environment or flags are relative to the working directory.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ini from 'ini';
import { SettingsError } from '../errors.js';
import { BACKENDS, type Backend } from '../model/types.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Name of the settings file looked for in the working directory when no --config is given. */
export const DEFAULT_CONFIG_FILE = 'switchboard.ini';
/** Environment variable naming the settings file (when no --config flag is given). */
export const CONFIG_ENV = 'SWITCHBOARD_CONFIG';
export const ENV_PREFIX = 'SWITCHBOARD_';

export interface DaemonSettings {
  /** Absolute path of the settings file that was read, if any. */
  readonly configFile?: string;
  readonly store: { readonly dir: string };
  readonly output: {
    readonly dir: string;
    /** Overrides the store's `backend:`; undefined: use the store's. */
    readonly backend?: Backend;
    readonly templates?: string;
  };
  /** Undefined: no AMI configured, render-only mode (files are written, no reload is sent). */
  readonly asterisk?: { readonly host: string; readonly port: number; readonly user: string; readonly secret: string; readonly keepaliveSeconds: number };
  readonly apply: { readonly generations: number; readonly debounceMs: number; readonly verifyTimeoutMs: number };
  /** Undefined: ARI not configured (no DID routing). */
  readonly ari?: { readonly url: string; readonly user: string; readonly password: string; readonly app: string; readonly restOverWebSocket?: 'auto' | 'off' };
  /** Undefined: no SMTP configured (voicemail e-mails are not sent). */
  readonly smtp?: {
    readonly host: string;
    readonly port: number;
    readonly secure: boolean;
    readonly user?: string;
    readonly password?: string;
    readonly from: string;
    /** Refuse to send over a connection that is not encrypted (STARTTLS failed or not offered). */
    readonly requireTls: boolean;
  };
  readonly voicemail: {
    readonly maxDurationSeconds: number;
    readonly maxSilenceSeconds: number;
    readonly minDurationSeconds: number;
    /** Undefined: the store's `defaults.ringTimeoutSeconds`. */
    readonly ringTimeoutSeconds?: number;
  };
  readonly data: { readonly dir: string };
  readonly log: { readonly level: LogLevel };
  /** Where each setting that is not a default came from, e.g. `{ 'asterisk.ami_host': 'env' }`. */
  readonly sources: Readonly<Record<string, SettingSource>>;
  /** Things worth a warning at start-up (e.g. an unknown SWITCHBOARD_* variable). */
  readonly warnings: readonly string[];
}

/** Command-line flags the `serve` command passes in (undefined: not given). */
export interface DaemonFlags {
  store?: string;
  out?: string;
  backend?: string;
  templates?: string;
  amiHost?: string;
  amiPort?: number | string;
  amiUser?: string;
  debounceMs?: number | string;
  dataDir?: string;
  logLevel?: string;
}

export type SettingSource = 'default' | 'file' | 'env' | 'flag';

export interface SettingDoc {
  section: string;
  key: string;
  /** Environment variable that overrides it. */
  env: string;
  /** Command-line flag that overrides it, if any. */
  flag?: string;
  /** Default as shown in the docs ('' when there is none). */
  default: string;
  description: string;
  /** Never logged; only settable in the file or the environment. */
  secret?: boolean;
}

type Kind =
  | { type: 'string'; re?: RegExp; rule?: string }
  | { type: 'path'; mustExist?: 'dir' }
  | { type: 'int'; min: number; max: number }
  | { type: 'bool' }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'url' }
  | { type: 'host' };

interface Spec {
  section: string;
  key: string;
  kind: Kind;
  dflt?: string | number | boolean;
  flag?: keyof DaemonFlags;
  secret?: boolean;
  description: string;
  /** What to do about a bad value (the rule comes from the kind). */
  fix: string;
}

const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\d{1,3}(?:\.\d{1,3}){3}|\[?[0-9A-Fa-f:.]+\]?)$/;
const NAME_RE = /^[A-Za-z0-9_.-]+$/;
const EMAIL_RE = /^[^\s@<>"';,]+@[^\s@<>"';,]+\.[^\s@<>"';,]+$/;
/** No CR, LF or NUL: they would end an AMI header or a mail header. */
const SINGLE_LINE_RE = /^[^\r\n\0]*$/;

const SPECS: Spec[] = [
  { section: 'store', key: 'dir', kind: { type: 'path', mustExist: 'dir' }, flag: 'store', description: 'Agent store directory (switchboard.yaml + agents/*.yaml).', fix: 'point it at the directory that holds switchboard.yaml and agents/' },
  { section: 'output', key: 'dir', kind: { type: 'path' }, dflt: './out', flag: 'out', description: 'Where rendered Asterisk config files are written (Asterisk #includes them).', fix: 'use a directory Asterisk reads, e.g. /etc/asterisk/switchboard' },
  { section: 'output', key: 'backend', kind: { type: 'enum', values: BACKENDS }, flag: 'backend', description: 'SIP driver(s) to render for; overrides the store\'s backend (default: the store\'s).', fix: 'use pjsip, sip or both' },
  { section: 'output', key: 'templates', kind: { type: 'path', mustExist: 'dir' }, flag: 'templates', description: 'Directory of template overrides (any file left out uses the default).', fix: 'point it at a copy of switchboard\'s templates/ directory, or leave it unset' },
  { section: 'asterisk', key: 'ami_host', kind: { type: 'host' }, flag: 'amiHost', description: 'AMI host. Without ami_host and ami_user the daemon only renders files (no reload).', fix: 'use a host name or IP address, e.g. 127.0.0.1' },
  { section: 'asterisk', key: 'ami_port', kind: { type: 'int', min: 1, max: 65535 }, dflt: 5038, flag: 'amiPort', description: 'AMI TCP port (manager.conf `port`).', fix: 'use the port from manager.conf, usually 5038' },
  { section: 'asterisk', key: 'ami_user', kind: { type: 'string', re: NAME_RE, rule: 'must be a manager.conf user name (letters, digits, "_", "." and "-")' }, flag: 'amiUser', description: 'AMI user (a section of manager.conf).', fix: 'use the [user] section name from manager.conf' },
  { section: 'asterisk', key: 'ami_secret', kind: { type: 'string', re: SINGLE_LINE_RE, rule: 'must be one line' }, secret: true, description: 'AMI secret. Only in the settings file or the environment, never a flag; never logged.', fix: 'use the user\'s `secret` from manager.conf (quote it if it holds ; or #)' },
  { section: 'asterisk', key: 'ami_keepalive_seconds', kind: { type: 'int', min: 0, max: 3600 }, dflt: 30, description: 'While no AMI action is in flight, send a Ping this often; no answer within 5 s (Asterisk hung, or a NAT box or firewall dropped the idle connection) drops the connection and reconnects. 0: only after an action times out.', fix: 'use a whole number of seconds from 0 to 3600 (below the idle timeout of any NAT box or firewall between switchboard and Asterisk)' },
  { section: 'apply', key: 'generations', kind: { type: 'int', min: 1, max: 100 }, dflt: 5, description: 'How many applied generations to keep for rollback.', fix: 'use a whole number from 1 to 100' },
  { section: 'apply', key: 'debounce_ms', kind: { type: 'int', min: 0, max: 60000 }, dflt: 150, flag: 'debounceMs', description: 'Quiet time after the last store edit before applying (bursts are coalesced).', fix: 'use a whole number of milliseconds from 0 to 60000' },
  { section: 'apply', key: 'verify_timeout_ms', kind: { type: 'int', min: 100, max: 120000 }, dflt: 5000, description: 'How long to wait for Asterisk to confirm the objects after a reload.', fix: 'use a whole number of milliseconds from 100 to 120000' },
  { section: 'ari', key: 'url', kind: { type: 'url' }, description: 'ARI base URL, e.g. http://127.0.0.1:8088. Unset: no DID routing.', fix: 'use an http:// or https:// URL without user or password, e.g. http://127.0.0.1:8088' },
  { section: 'ari', key: 'user', kind: { type: 'string', re: NAME_RE, rule: 'must be an ari.conf user name' }, description: 'ARI user (a section of ari.conf).', fix: 'use the user section name from ari.conf' },
  { section: 'ari', key: 'password', kind: { type: 'string', re: SINGLE_LINE_RE, rule: 'must be one line' }, secret: true, description: 'ARI password. Never logged.', fix: 'use the user\'s password from ari.conf (quote it if it holds ; or #)' },
  { section: 'ari', key: 'app', kind: { type: 'string', re: NAME_RE, rule: 'must be a Stasis application name (letters, digits, "_", "." and "-")' }, dflt: 'switchboard', description: 'Stasis application name (must match dialplan.stasisApp in the store).', fix: 'use the store\'s dialplan.stasisApp, e.g. switchboard' },
  { section: 'ari', key: 'rest_over_websocket', kind: { type: 'enum', values: ['auto', 'off'] }, dflt: 'auto', description: 'auto: send ARI requests over the events WebSocket when Asterisk takes them there (20.14+, 21.9+, 22.4+; probed at each connect), else HTTP. off: always HTTP.', fix: 'use auto or off' },
  { section: 'smtp', key: 'host', kind: { type: 'host' }, description: 'SMTP server for voicemail e-mails. Unset: no e-mail is sent.', fix: 'use a host name or IP address, e.g. smtp.example.com' },
  { section: 'smtp', key: 'port', kind: { type: 'int', min: 1, max: 65535 }, dflt: 587, description: 'SMTP port (465 usually needs secure = true).', fix: 'use the SMTP port, usually 587, 465 or 25' },
  { section: 'smtp', key: 'secure', kind: { type: 'bool' }, dflt: false, description: 'Use TLS from the start (port 465). false: STARTTLS when offered.', fix: 'use true or false' },
  { section: 'smtp', key: 'require_tls', kind: { type: 'bool' }, description: 'Refuse to send unless the connection is encrypted (STARTTLS, or secure = true). Default: true when user is set, so the SMTP password never crosses the network in clear (a relay without STARTTLS, or someone stripping it, fails the send, retried later); false otherwise.', fix: 'use true or false (false only for a relay you reach over a trusted network)' },
  { section: 'smtp', key: 'user', kind: { type: 'string', re: SINGLE_LINE_RE, rule: 'must be one line' }, description: 'SMTP login user (unset: no login).', fix: 'use the SMTP account name' },
  { section: 'smtp', key: 'password', kind: { type: 'string', re: SINGLE_LINE_RE, rule: 'must be one line' }, secret: true, description: 'SMTP password. Never logged.', fix: 'use the SMTP account password (quote it if it holds ; or #)' },
  { section: 'smtp', key: 'from', kind: { type: 'string', re: EMAIL_RE, rule: 'must be an e-mail address' }, description: 'Sender address of voicemail e-mails.', fix: 'use an address such as voicemail@example.com' },
  { section: 'voicemail', key: 'max_duration_seconds', kind: { type: 'int', min: 1, max: 3600 }, dflt: 180, description: 'Longest voicemail message.', fix: 'use a whole number of seconds from 1 to 3600' },
  { section: 'voicemail', key: 'max_silence_seconds', kind: { type: 'int', min: 1, max: 60 }, dflt: 5, description: 'Silence that ends a voicemail recording.', fix: 'use a whole number of seconds from 1 to 60' },
  { section: 'voicemail', key: 'min_duration_seconds', kind: { type: 'int', min: 0, max: 60 }, dflt: 2, description: 'Shorter messages are discarded.', fix: 'use a whole number of seconds from 0 to 60, below max_duration_seconds' },
  { section: 'voicemail', key: 'ring_timeout_seconds', kind: { type: 'int', min: 5, max: 300 }, description: 'Ring time before a DID call goes to voicemail (default: the store\'s defaults.ringTimeoutSeconds).', fix: 'use a whole number of seconds from 5 to 300, or leave it unset' },
  { section: 'data', key: 'dir', kind: { type: 'path' }, dflt: './var', flag: 'dataDir', description: 'State directory: presence state, mail outbox, call records.', fix: 'use a writable directory, e.g. /var/lib/switchboard' },
  { section: 'log', key: 'level', kind: { type: 'enum', values: LOG_LEVELS }, dflt: 'info', flag: 'logLevel', description: 'Log level.', fix: `use one of ${LOG_LEVELS.join(', ')}` },
];

function envName(section: string, key: string): string {
  return `${ENV_PREFIX}${section}_${key}`.toUpperCase();
}

function flagName(flag: keyof DaemonFlags): string {
  return '--' + flag.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

function showDefault(s: Spec): string {
  if (s.dflt === undefined) return s.section === 'store' ? '(required)' : '';
  return String(s.dflt);
}

/** Every setting: the README/docs table is generated from (and checked against) this. */
export const SETTINGS_TABLE: readonly SettingDoc[] = Object.freeze(
  SPECS.map((s) =>
    Object.freeze({
      section: s.section,
      key: s.key,
      env: envName(s.section, s.key),
      ...(s.flag ? { flag: flagName(s.flag) } : {}),
      default: showDefault(s),
      description: s.description,
      ...(s.secret ? { secret: true } : {}),
    }),
  ),
);

/** The settings table as Markdown (docs/SETTINGS.md holds a copy between markers; a test checks it). */
export function settingsTableMarkdown(): string {
  const esc = (t: string): string => t.replace(/\|/g, '\\|');
  const lines = ['| section | key | environment | flag | default | description |', '| --- | --- | --- | --- | --- | --- |'];
  for (const d of SETTINGS_TABLE) {
    const flag = d.flag ? `\`${d.flag}\`` : '';
    const dflt = d.default ? `\`${esc(d.default)}\`` : '';
    lines.push(`| \`[${d.section}]\` | \`${d.key}\` | \`${d.env}\` | ${flag} | ${dflt} | ${esc(d.description)}${d.secret ? ' **Secret.**' : ''} |`);
  }
  return lines.join('\n') + '\n';
}

/**
 * The settings file to read: the --config flag, else $SWITCHBOARD_CONFIG, else ./switchboard.ini
 * when it exists, else none (defaults, environment and flags only).
 */
export function resolveConfigFile(explicit: string | undefined, env: NodeJS.ProcessEnv, cwd = process.cwd()): string | undefined {
  if (explicit) return path.resolve(cwd, explicit);
  const fromEnv = env[CONFIG_ENV];
  if (fromEnv) return path.resolve(cwd, fromEnv);
  const implicit = path.resolve(cwd, DEFAULT_CONFIG_FILE);
  return existsSync(implicit) ? implicit : undefined;
}

interface Raw {
  value: unknown;
  source: SettingSource;
}

interface Problem {
  where: string;
  section: string;
  key: string;
  value?: string;
  rule: string;
  fix: string;
  message: string;
}

class Problems {
  readonly items: Problem[] = [];
  constructor(private readonly file: string | undefined) {}

  /** Names where a value came from: `switchboard.ini [asterisk] ami_port`, `SWITCHBOARD_…`, `--ami-port`. */
  where(spec: Pick<Spec, 'section' | 'key' | 'flag'>, source: SettingSource): string {
    const name = `[${spec.section}] ${spec.key}`;
    if (source === 'env') return `environment ${envName(spec.section, spec.key)} (setting ${name})`;
    if (source === 'flag' && spec.flag) return `flag ${flagName(spec.flag)} (setting ${name})`;
    if (source === 'file' && this.file) return `${this.file}: ${name}`;
    return `setting ${name}`;
  }

  add(where: string, section: string, key: string, value: string | undefined, rule: string, fix: string): void {
    const shown = value === undefined ? '' : ` = ${JSON.stringify(value.length > 80 ? value.slice(0, 77) + '...' : value)}`;
    this.items.push({ where, section, key, ...(value !== undefined ? { value } : {}), rule, fix, message: `${where}${shown}: ${rule}. Fix: ${fix}` });
  }
}

export interface LoadSettingsOptions {
  /** Settings file (INI). Undefined: none. A path that does not exist is an error. */
  configFile?: string;
  env: NodeJS.ProcessEnv;
  flags: Partial<DaemonFlags>;
  /** For relative paths from the environment and flags (default: process.cwd()). */
  cwd?: string;
}

/** Reads, merges, validates and freezes the daemon's settings; throws one SettingsError listing every problem. */
export function loadDaemonSettings(opts: LoadSettingsOptions): DaemonSettings {
  const cwd = opts.cwd ?? process.cwd();
  const file = opts.configFile ? path.resolve(cwd, opts.configFile) : undefined;
  const problems = new Problems(file);
  const warnings: string[] = [];
  const raw = new Map<string, Raw>();
  const keyOf = (section: string, key: string): string => `${section}.${key}`;
  const specByName = new Map(SPECS.map((s) => [keyOf(s.section, s.key), s]));

  // 1. Settings file.
  if (file !== undefined) {
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      problems.add(`settings file ${file}`, '', '', undefined, code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(err)})`,
        `pass --config with the path of switchboard.ini (see switchboard.ini.example), or leave --config out`);
    }
    if (text !== undefined) readIni(text, file, problems, (section, key, value) => {
      const spec = specByName.get(keyOf(section, key));
      if (!spec) {
        const known = SPECS.filter((s) => s.section === section).map((s) => s.key);
        const fix = known.length ? `use one of ${known.join(', ')} in [${section}]` : `use the sections ${[...new Set(SPECS.map((s) => s.section))].map((s) => `[${s}]`).join(', ')}`;
        problems.add(`${file}: [${section}] ${key}`, section, key, undefined, known.length ? `unknown key in [${section}]` : `unknown section [${section}]`, fix);
        return;
      }
      // `templates =` (nothing after the =) means unset, as an empty environment variable does.
      if (value === '') return;
      raw.set(keyOf(section, key), { value, source: 'file' });
    });
  }

  // 2. Environment.
  const envNames = new Map(SPECS.map((s) => [envName(s.section, s.key), s]));
  for (const [name, value] of Object.entries(opts.env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined || value === '') continue;
    const spec = envNames.get(name);
    if (!spec) {
      if (name !== CONFIG_ENV) warnings.push(`environment variable ${name} is not a switchboard setting (ignored); see docs/SETTINGS.md`);
      continue;
    }
    raw.set(keyOf(spec.section, spec.key), { value, source: 'env' });
  }

  // 3. Flags.
  for (const spec of SPECS) {
    if (!spec.flag) continue;
    const value = opts.flags[spec.flag];
    if (value === undefined || value === null || value === '') continue;
    raw.set(keyOf(spec.section, spec.key), { value, source: 'flag' });
  }

  // Validate every value.
  const values = new Map<string, string | number | boolean>();
  const sources: Record<string, SettingSource> = {};
  for (const spec of SPECS) {
    const name = keyOf(spec.section, spec.key);
    const r = raw.get(name);
    if (!r) {
      if (spec.dflt !== undefined) values.set(name, spec.kind.type === 'path' ? path.resolve(cwd, String(spec.dflt)) : spec.dflt);
      continue;
    }
    sources[name] = r.source;
    const base = r.source === 'file' && file ? path.dirname(file) : cwd;
    const v = parseValue(spec, r, base, problems);
    if (v !== undefined) values.set(name, v);
  }

  const str = (section: string, key: string): string | undefined => values.get(keyOf(section, key)) as string | undefined;
  const num = (section: string, key: string): number | undefined => values.get(keyOf(section, key)) as number | undefined;
  const where = (section: string, key: string): string => {
    const spec = specByName.get(keyOf(section, key))!;
    return problems.where(spec, raw.get(keyOf(section, key))?.source ?? 'default');
  };

  // Cross-field rules.
  const storeDir = str('store', 'dir');
  if (storeDir === undefined && !raw.has('store.dir')) {
    problems.add('setting [store] dir', 'store', 'dir', undefined, 'is required (the agent store to serve)',
      `pass --store DIR, set dir in the [store] section of switchboard.ini, or set ${envName('store', 'dir')}`);
  }

  let asterisk: DaemonSettings['asterisk'];
  const amiHost = str('asterisk', 'ami_host');
  const amiUser = str('asterisk', 'ami_user');
  const amiSecret = str('asterisk', 'ami_secret');
  if (amiHost !== undefined || amiUser !== undefined) {
    if (amiHost === undefined && !raw.has('asterisk.ami_host')) {
      problems.add('setting [asterisk] ami_host', 'asterisk', 'ami_host', undefined, 'is required when ami_user is set', 'set ami_host (e.g. 127.0.0.1), or remove ami_user to run in render-only mode');
    }
    if (amiUser === undefined && !raw.has('asterisk.ami_user')) {
      problems.add('setting [asterisk] ami_user', 'asterisk', 'ami_user', undefined, 'is required when ami_host is set', 'set ami_user to a manager.conf user, or remove ami_host to run in render-only mode');
    }
    if (amiSecret === undefined && !raw.has('asterisk.ami_secret')) {
      problems.add('setting [asterisk] ami_secret', 'asterisk', 'ami_secret', undefined, 'is required when AMI is configured',
        `set ami_secret in the [asterisk] section of switchboard.ini or in ${envName('asterisk', 'ami_secret')} (never on the command line)`);
    }
    if (amiHost !== undefined && amiUser !== undefined && amiSecret !== undefined) {
      asterisk = { host: stripBrackets(amiHost), port: num('asterisk', 'ami_port')!, user: amiUser, secret: amiSecret, keepaliveSeconds: num('asterisk', 'ami_keepalive_seconds')! };
    }
  } else if (amiSecret !== undefined) {
    problems.add(where('asterisk', 'ami_secret'), 'asterisk', 'ami_secret', undefined, 'is set but ami_host and ami_user are not, so AMI stays off',
      'set ami_host and ami_user too, or remove ami_secret to run in render-only mode');
  }

  let ari: DaemonSettings['ari'];
  const ariUrl = str('ari', 'url');
  const ariUser = str('ari', 'user');
  const ariPassword = str('ari', 'password');
  if (ariUrl !== undefined || ariUser !== undefined || ariPassword !== undefined) {
    const missing = (['url', 'user', 'password'] as const).filter((k) => str('ari', k) === undefined && !raw.has(`ari.${k}`));
    for (const k of missing) {
      problems.add(`setting [ari] ${k}`, 'ari', k, undefined, 'is required when ARI is configured',
        k === 'password' ? `set password in [ari] or ${envName('ari', 'password')}` : `set ${k} in [ari], or remove the other [ari] settings to run without ARI`);
    }
    if (ariUrl !== undefined && ariUser !== undefined && ariPassword !== undefined) {
      ari = { url: ariUrl.replace(/\/+$/, ''), user: ariUser, password: ariPassword, app: str('ari', 'app')!, restOverWebSocket: str('ari', 'rest_over_websocket') as 'auto' | 'off' };
    }
  }

  let smtp: DaemonSettings['smtp'];
  const smtpHost = str('smtp', 'host');
  const smtpUser = str('smtp', 'user');
  const smtpPassword = str('smtp', 'password');
  const smtpFrom = str('smtp', 'from');
  if (smtpHost !== undefined || smtpUser !== undefined || smtpPassword !== undefined || smtpFrom !== undefined) {
    if (smtpHost === undefined && !raw.has('smtp.host')) problems.add('setting [smtp] host', 'smtp', 'host', undefined, 'is required when SMTP is configured', 'set host in [smtp], or remove the [smtp] settings to send no e-mail');
    if (smtpFrom === undefined && !raw.has('smtp.from')) problems.add('setting [smtp] from', 'smtp', 'from', undefined, 'is required when SMTP is configured', 'set from in [smtp], e.g. voicemail@example.com');
    if (raw.has('smtp.user') !== raw.has('smtp.password')) {
      const k = raw.has('smtp.user') ? 'password' : 'user';
      problems.add(`setting [smtp] ${k}`, 'smtp', k, undefined, 'user and password go together', k === 'password' ? `set password in [smtp] or ${envName('smtp', 'password')}, or remove user` : 'set user in [smtp], or remove password');
    }
    if (smtpHost !== undefined && smtpFrom !== undefined) {
      smtp = {
        host: stripBrackets(smtpHost),
        port: num('smtp', 'port')!,
        secure: values.get('smtp.secure') as boolean,
        ...(smtpUser !== undefined ? { user: smtpUser } : {}),
        ...(smtpPassword !== undefined ? { password: smtpPassword } : {}),
        from: smtpFrom,
        requireTls: (values.get('smtp.require_tls') as boolean | undefined) ?? smtpUser !== undefined,
      };
    }
  }

  const minDur = num('voicemail', 'min_duration_seconds');
  const maxDur = num('voicemail', 'max_duration_seconds');
  if (minDur !== undefined && maxDur !== undefined && minDur >= maxDur) {
    problems.add(where('voicemail', 'min_duration_seconds'), 'voicemail', 'min_duration_seconds', String(minDur),
      `must be below max_duration_seconds (${maxDur})`, 'lower min_duration_seconds or raise max_duration_seconds');
  }

  const outDir = str('output', 'dir');
  if (outDir !== undefined && storeDir !== undefined && path.resolve(outDir) === path.resolve(storeDir)) {
    problems.add(where('output', 'dir'), 'output', 'dir', outDir, 'must not be the store directory', 'write the rendered files to a directory of their own, e.g. /etc/asterisk/switchboard');
  }

  if (problems.items.length) {
    const head = `switchboard settings have ${problems.items.length} problem(s)${file ? ` (settings file ${file})` : ''}:`;
    throw new SettingsError([head, ...problems.items.map((p) => `  - ${p.message}`)].join('\n'), { problems: problems.items, ...(file ? { file } : {}) });
  }

  const backend = str('output', 'backend') as Backend | undefined;
  const templates = str('output', 'templates');
  const ring = num('voicemail', 'ring_timeout_seconds');
  const settings: DaemonSettings = {
    ...(file ? { configFile: file } : {}),
    store: { dir: storeDir! },
    output: { dir: outDir!, ...(backend ? { backend } : {}), ...(templates ? { templates } : {}) },
    ...(asterisk ? { asterisk } : {}),
    apply: { generations: num('apply', 'generations')!, debounceMs: num('apply', 'debounce_ms')!, verifyTimeoutMs: num('apply', 'verify_timeout_ms')! },
    ...(ari ? { ari } : {}),
    ...(smtp ? { smtp } : {}),
    voicemail: {
      maxDurationSeconds: maxDur!,
      maxSilenceSeconds: num('voicemail', 'max_silence_seconds')!,
      minDurationSeconds: minDur!,
      ...(ring !== undefined ? { ringTimeoutSeconds: ring } : {}),
    },
    data: { dir: str('data', 'dir')! },
    log: { level: str('log', 'level') as LogLevel },
    sources,
    warnings,
  };
  return deepFreeze(settings);
}

/** A copy safe to log: every secret replaced, credentials in URLs removed. */
export function redactedSettings(s: DaemonSettings): Record<string, unknown> {
  const R = '[redacted]';
  return {
    configFile: s.configFile ?? null,
    store: { ...s.store },
    output: { ...s.output },
    asterisk: s.asterisk ? { host: s.asterisk.host, port: s.asterisk.port, user: s.asterisk.user, secret: R, keepaliveSeconds: s.asterisk.keepaliveSeconds } : null,
    apply: { ...s.apply },
    ari: s.ari ? { url: redactUrl(s.ari.url), user: s.ari.user, password: R, app: s.ari.app } : null,
    smtp: s.smtp ? { host: s.smtp.host, port: s.smtp.port, secure: s.smtp.secure, user: s.smtp.user ?? null, password: s.smtp.password !== undefined ? R : null, from: s.smtp.from, requireTls: s.smtp.requireTls } : null,
    voicemail: { ...s.voicemail },
    data: { ...s.data },
    log: { ...s.log },
    sources: { ...s.sources },
  };
}

// -------------------------------------------------------------------------------------------------

function redactUrl(u: string): string {
  try {
    const url = new URL(u);
    if (url.username || url.password) {
      url.username = '';
      url.password = '';
    }
    return url.toString().replace(/\/$/, '');
  } catch {
    return '[redacted]';
  }
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/**
 * Parses the INI text with the `ini` package, after a line scan for what it would silently get
 * wrong: keys outside a section, repeated keys (ini keeps the last), nested `[a.b]` sections and
 * lines that are neither a section nor `key = value`.
 */
function readIni(text: string, file: string, problems: Problems, set: (section: string, key: string, value: unknown) => void): void {
  let section: string | undefined;
  const seen = new Set<string>();
  const lines = text.split(/\r?\n/);
  let ok = true;
  lines.forEach((line, i) => {
    const t = line.trim();
    if (t === '' || t.startsWith(';') || t.startsWith('#')) return;
    const where = `${file}:${i + 1}`;
    const sec = /^\[([^\]]*)\]$/.exec(t);
    if (sec) {
      section = sec[1]!.trim();
      if (section.includes('.')) {
        problems.add(where, section, '', undefined, `section [${section}] is not a switchboard section`, 'use plain section names such as [asterisk] (no dots)');
        ok = false;
      }
      return;
    }
    const kv = /^([^=]+?)\s*=/.exec(t);
    if (!kv) {
      problems.add(where, section ?? '', '', undefined, `line ${JSON.stringify(t.slice(0, 60))} is not "key = value"`, 'write each setting as key = value under a [section]');
      ok = false;
      return;
    }
    const key = kv[1]!;
    if (section === undefined) {
      problems.add(where, '', key, undefined, `key ${key} is outside any section`, 'put it under its section, e.g. [store] before dir = ...');
      ok = false;
      return;
    }
    const id = `${section}\0${key}`;
    if (seen.has(id)) {
      problems.add(where, section, key, undefined, `[${section}] ${key} is set twice (only the last would count)`, 'keep one line for each setting');
      ok = false;
    }
    seen.add(id);
  });
  if (!ok) return;
  // Trimmed lines: ini takes an indented "[section]" for a key.
  const doc = ini.decode(lines.map((l) => l.trim()).join('\n')) as Record<string, unknown>;
  for (const [section, body] of Object.entries(doc)) {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) continue;
    for (const [key, value] of Object.entries(body as Record<string, unknown>)) set(section, key, value);
  }
}

function parseValue(spec: Spec, r: Raw, base: string, problems: Problems): string | number | boolean | undefined {
  const where = problems.where(spec, r.source);
  const shown = spec.secret ? '[redacted]' : typeof r.value === 'string' ? r.value : JSON.stringify(r.value);
  const fail = (rule: string): undefined => {
    problems.add(where, spec.section, spec.key, shown, rule, spec.fix);
    return undefined;
  };
  const kind = spec.kind;
  // ini turns true/false/null into JSON values; anything but a bool setting wants the text back.
  const v = kind.type !== 'bool' && (typeof r.value === 'boolean' || r.value === null) ? String(r.value) : r.value;
  if (kind.type === 'bool') {
    if (typeof v === 'boolean') return v;
    const s = String(v).trim().toLowerCase();
    if (['true', 'yes', 'on', '1'].includes(s)) return true;
    if (['false', 'no', 'off', '0'].includes(s)) return false;
    return fail('must be true or false');
  }
  if (typeof v !== 'string' && typeof v !== 'number') return fail('must have a value');
  const s = String(v).trim();
  if (s === '') return fail('must not be empty');
  switch (kind.type) {
    case 'int': {
      if (!/^-?\d+$/.test(s)) return fail(`must be a whole number from ${kind.min} to ${kind.max}`);
      const n = Number(s);
      if (n < kind.min || n > kind.max) return fail(`must be from ${kind.min} to ${kind.max}`);
      return n;
    }
    case 'enum':
      if (!kind.values.includes(s)) return fail(`must be one of ${kind.values.join(', ')}`);
      return s;
    case 'host':
      if (!HOST_RE.test(s)) return fail('must be a host name or IP address');
      return s;
    case 'url': {
      let url: URL;
      try {
        url = new URL(s);
      } catch {
        return fail('must be a URL');
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') return fail('must be an http:// or https:// URL');
      if (url.username || url.password) return fail('must not hold a user or password (they would be logged)');
      return s;
    }
    case 'path': {
      if (/[\0\r\n]/.test(s)) return fail('must be a path on one line');
      const abs = path.resolve(base, s);
      let st: ReturnType<typeof statSync> | undefined;
      try {
        st = statSync(abs);
      } catch {
        st = undefined;
      }
      if (kind.mustExist === 'dir') {
        if (!st) return fail(`directory ${abs} does not exist`);
        if (!st.isDirectory()) return fail(`${abs} is not a directory`);
      } else if (st && !st.isDirectory()) {
        return fail(`${abs} exists and is not a directory`);
      }
      return abs;
    }
    case 'string':
      if (kind.re && !kind.re.test(s)) return fail(kind.rule ?? 'has an invalid value');
      return spec.secret ? String(v) : s;
  }
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as Record<string, unknown>)) deepFreeze(v);
  }
  return o;
}
