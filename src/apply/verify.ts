/**
 * Asks Asterisk whether it took the change. AMI `Reload` answers Success even when Asterisk
 * refused the file (an unparsable file or a duplicate object keeps all old objects; a bad option
 * keeps that object's old config, and a new object is simply missing), so every added or changed
 * agent is looked up and compared on the values that matter, and removed agents must be gone.
 *
 * Formats, read from Asterisk 20's source: pjsip prints codecs as `(ulaw|alaw)`
 * (ast_format_cap_get_names) and groups as `1, 3, 4, 5` (ast_print_group); chan_sip's SIPshowpeer
 * the same, plus `SIP-Encryption: Y|N`; a missing endpoint answers `Response: Error`
 * ("Unable to retrieve endpoint x"), a missing peer "Peer x not found.".
 */
import { PeerRequestError } from '../errors.js';
import type { Logger } from '../log.js';
import type { AgentStates, Kind, PjsipExpect, SipExpect, VoicemailExpect } from './manifest.js';
import type { AmiPort, RefusedOption } from './types.js';

export interface VerifyPlan {
  pjsip: { check: [string, PjsipExpect][]; gone: string[] };
  sip: { check: [string, SipExpect][]; gone: string[] };
  voicemail: { check: [string, VoicemailExpect][]; gone: [string, VoicemailExpect][] };
}

export function emptyPlan(): VerifyPlan {
  return { pjsip: { check: [], gone: [] }, sip: { check: [], gone: [] }, voicemail: { check: [], gone: [] } };
}

export function planSize(p: VerifyPlan): number {
  return p.pjsip.check.length + p.pjsip.gone.length + p.sip.check.length + p.sip.gone.length + p.voicemail.check.length + p.voicemail.gone.length;
}

/**
 * What to ask about, for the kinds whose module was reloaded: agents whose objects of that kind
 * were added or changed must match, those whose objects went away must be gone. When the file
 * changed but no agent did (templates, a hand edit, transports) or nothing is known about the
 * previous state (no manifest at all, or, for the kinds in `unknown`, a file it marks unknown),
 * every agent of that kind is checked.
 */
export function planVerification(before: AgentStates | undefined, after: AgentStates, reloaded: ReadonlySet<Kind>, unknown: ReadonlySet<Kind> = new Set()): VerifyPlan {
  const plan = emptyPlan();
  const names = [...new Set([...Object.keys(before ?? {}), ...Object.keys(after)])].sort();
  for (const kind of ['pjsip', 'sip', 'voicemail'] as const) {
    if (!reloaded.has(kind)) continue;
    const changed = names.filter((n) => before?.[n]?.digests[kind] !== after[n]?.digests[kind]);
    const candidates = !before || unknown.has(kind) || changed.length === 0 ? names : changed;
    for (const n of candidates) {
      const next = after[n];
      const prev = before?.[n];
      if (kind === 'pjsip') {
        if (next?.pjsip) plan.pjsip.check.push([n, next.pjsip]);
        else if (prev?.pjsip) plan.pjsip.gone.push(n);
      } else if (kind === 'sip') {
        if (next?.sip) plan.sip.check.push([n, next.sip]);
        else if (prev?.sip) plan.sip.gone.push(n);
      } else {
        if (next?.voicemail) plan.voicemail.check.push([n, next.voicemail]);
        else if (prev?.voicemail) {
          const box = prev.voicemail;
          const reused = Object.values(after).some((s) => s.voicemail?.context === box.context && s.voicemail.mailbox === box.mailbox);
          if (!reused) plan.voicemail.gone.push([n, box]);
        }
      }
    }
  }
  return plan;
}

/** `(ulaw|alaw)`, `ulaw,alaw`, `ulaw|alaw` → `ulaw,alaw`; `(nothing)` → ''. */
export function normaliseCodecs(text: string): string {
  const inner = text.trim().replace(/^\((.*)\)$/, '$1');
  return inner
    .split(/[|,]/)
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'nothing')
    .join(',');
}

/** `1,3-5`, `1, 3, 4, 5`, `1,3,4,5` → `1,3,4,5`; anything unreadable is kept as text. */
export function normaliseGroups(text: string): string {
  const out = new Set<number>();
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const range = /^(\d+)\s*-\s*(\d+)$/.exec(part);
    if (range) {
      for (let g = Number(range[1]); g <= Number(range[2]); g++) out.add(g);
    } else if (/^\d+$/.test(part)) {
      out.add(Number(part));
    } else {
      return `?${text.trim()}`;
    }
  }
  return [...out].sort((a, b) => a - b).join(',');
}

function field(msg: Record<string, string> | undefined, key: string): string {
  if (!msg) return '';
  if (Object.prototype.hasOwnProperty.call(msg, key)) return msg[key]!;
  const lower = key.toLowerCase();
  for (const k of Object.keys(msg)) if (k.toLowerCase() === lower) return msg[k]!;
  return '';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  });
  await Promise.all(workers);
  return out;
}

/** An object Asterisk should have and does not. */
function notThere(agent: string, object: string): RefusedOption {
  return { agent, object, option: '(object)', expected: 'present', actual: 'missing' };
}

/** An object Asterisk should no longer have and still does. */
function stillThere(agent: string, object: string): RefusedOption {
  return { agent, object, option: '(object)', expected: 'absent', actual: 'present' };
}

type Compare = (expected: string, actual: string) => boolean;
const same: Compare = (e, a) => e.trim() === a.trim();
const sameCodecs: Compare = (e, a) => normaliseCodecs(e) === normaliseCodecs(a);
const sameGroups: Compare = (e, a) => normaliseGroups(e) === normaliseGroups(a);

export interface VerifierOptions {
  /** Per query; also how long chan_sip (which reloads in the background) may take to show the change. */
  timeoutMs: number;
  concurrency?: number;
  pollMs?: number;
}

export class Verifier {
  private readonly concurrency: number;
  private readonly pollMs: number;

  constructor(
    private readonly ami: AmiPort,
    private readonly opts: VerifierOptions,
    private readonly log: Logger,
  ) {
    this.concurrency = opts.concurrency ?? 8;
    this.pollMs = opts.pollMs ?? 100;
  }

  async run(plan: VerifyPlan): Promise<RefusedOption[]> {
    const refused: RefusedOption[] = [];
    refused.push(...(await this.pjsip(plan.pjsip)));
    refused.push(...(await this.sip(plan.sip)));
    refused.push(...(await this.voicemail(plan.voicemail)));
    return refused;
  }

  // ---- pjsip (res_pjsip reloads synchronously: one look is enough)

  private async pjsip(p: VerifyPlan['pjsip']): Promise<RefusedOption[]> {
    const checked = await mapLimit(p.check, this.concurrency, ([name, exp]) => this.checkEndpoint(name, exp));
    const gone = await mapLimit(p.gone, this.concurrency, async (name) => {
      const r = await this.showEndpoint(name);
      return r === 'missing' ? [] : [stillThere(name, 'endpoint')];
    });
    return [...checked.flat(), ...gone.flat()];
  }

  private async showEndpoint(name: string): Promise<Record<string, string>[] | 'missing'> {
    try {
      const r = await this.ami.listAction('PJSIPShowEndpoint', { Endpoint: name }, { timeoutMs: this.opts.timeoutMs });
      return r.events;
    } catch (err) {
      // "Unable to retrieve endpoint x": not there. Timeouts and disconnects are not answers: rethrow.
      if (err instanceof PeerRequestError) return 'missing';
      throw err;
    }
  }

  private async checkEndpoint(name: string, exp: PjsipExpect): Promise<RefusedOption[]> {
    const events = await this.showEndpoint(name);
    const missing = (object: string): RefusedOption => notThere(name, object);
    const endpoint = events === 'missing' ? undefined : events.find((e) => field(e, 'Event') === 'EndpointDetail');
    if (events === 'missing' || !endpoint) return [missing('endpoint')];
    const out: RefusedOption[] = [];
    const cmp = (object: string, msg: Record<string, string>, option: string, key: string, expected: string, eq: Compare = same): void => {
      const actual = field(msg, key);
      if (!eq(expected, actual)) out.push({ agent: name, object, option, expected, actual });
    };
    cmp('endpoint', endpoint, 'context', 'Context', exp.context);
    cmp('endpoint', endpoint, 'allow', 'Allow', exp.allow, sameCodecs);
    cmp('endpoint', endpoint, 'transport', 'Transport', exp.transport);
    cmp('endpoint', endpoint, 'call_group', 'CallGroup', exp.callGroup, sameGroups);
    cmp('endpoint', endpoint, 'pickup_group', 'PickupGroup', exp.pickupGroup, sameGroups);
    cmp('endpoint', endpoint, 'media_encryption', 'MediaEncryption', exp.mediaEncryption);
    cmp('endpoint', endpoint, 'mailboxes', 'Mailboxes', exp.mailboxes);
    const named = (event: string, object: string) => events.find((e) => field(e, 'Event') === event && field(e, 'ObjectName') === object);
    const aor = named('AorDetail', name);
    if (!aor) out.push(missing('aor'));
    else cmp('aor', aor, 'max_contacts', 'MaxContacts', String(exp.maxContacts));
    const auth = named('AuthDetail', exp.auth);
    if (!auth) out.push(missing('auth'));
    else cmp('auth', auth, 'username', 'Username', exp.authUsername);
    if (exp.identify && !named('IdentifyDetail', exp.identify)) out.push(missing('identify'));
    return out;
  }

  // ---- chan_sip (`sip reload` returns at once and works in the background: poll until it shows)

  private async sip(p: VerifyPlan['sip']): Promise<RefusedOption[]> {
    type Job = { name: string; exp?: SipExpect };
    let jobs: Job[] = [
      // A chan_sip `type=user` is not a peer: SIPshowpeer never finds it, so it cannot be checked.
      ...p.check.filter(([, exp]) => exp.type !== 'user').map(([name, exp]) => ({ name, exp })),
      ...p.gone.map((name) => ({ name })),
    ];
    const skipped = p.check.filter(([, exp]) => exp.type === 'user').map(([n]) => n);
    if (skipped.length) this.log.debug({ agents: skipped }, 'chan_sip users (type=user) cannot be looked up with SIPshowpeer; not verified');
    const deadline = Date.now() + this.opts.timeoutMs;
    let failures: RefusedOption[] = [];
    while (jobs.length) {
      const results = await mapLimit(jobs, this.concurrency, async (job) => ({ job, refused: await this.checkPeer(job.name, job.exp) }));
      const failing = results.filter((r) => r.refused.length);
      failures = failing.flatMap((r) => r.refused);
      if (!failing.length || Date.now() >= deadline) break;
      jobs = failing.map((r) => r.job);
      await sleep(Math.min(this.pollMs, Math.max(1, deadline - Date.now())));
    }
    return failures;
  }

  private async checkPeer(name: string, exp: SipExpect | undefined): Promise<RefusedOption[]> {
    let peer: Record<string, string> | undefined;
    try {
      peer = await this.ami.action('SIPshowpeer', { Peer: name }, { timeoutMs: this.opts.timeoutMs });
    } catch (err) {
      if (!(err instanceof PeerRequestError)) throw err;
    }
    if (!exp) return peer ? [stillThere(name, 'peer')] : [];
    if (!peer) return [notThere(name, 'peer')];
    const out: RefusedOption[] = [];
    const cmp = (option: string, key: string, expected: string, eq: Compare = same): void => {
      const actual = field(peer, key);
      if (!eq(expected, actual)) out.push({ agent: name, object: 'peer', option, expected, actual });
    };
    cmp('context', 'Context', exp.context);
    cmp('allow', 'Codecs', exp.allow, sameCodecs);
    cmp('callgroup', 'Callgroup', exp.callGroup, sameGroups);
    cmp('pickupgroup', 'Pickupgroup', exp.pickupGroup, sameGroups);
    cmp('mailbox', 'VoiceMailbox', exp.mailbox);
    cmp('encryption', 'SIP-Encryption', exp.encryption ? 'yes' : 'no', (e, a) => (e === 'yes') === /^(y|yes|true|1)$/i.test(a.trim()));
    return out;
  }

  // ---- app_voicemail (reloads synchronously; one list holds every mailbox)

  private async voicemail(p: VerifyPlan['voicemail']): Promise<RefusedOption[]> {
    if (!p.check.length && !p.gone.length) return [];
    const r = await this.ami.listAction('VoicemailUsersList', {}, { timeoutMs: this.opts.timeoutMs });
    const boxes = new Map<string, Record<string, string>>();
    for (const e of r.events) {
      if (field(e, 'Event') !== 'VoicemailUserEntry') continue;
      boxes.set(`${field(e, 'VoiceMailbox')}@${field(e, 'VMContext')}`, e);
    }
    const out: RefusedOption[] = [];
    for (const [name, exp] of p.check) {
      const box = `${exp.mailbox}@${exp.context}`;
      const entry = boxes.get(box);
      if (!entry) {
        out.push(notThere(name, `mailbox ${box}`));
        continue;
      }
      for (const [option, key, expected] of [['fullname', 'Fullname', exp.fullname], ['email', 'Email', exp.email]] as const) {
        const actual = field(entry, key);
        if (actual.trim() !== expected.trim()) out.push({ agent: name, object: `mailbox ${box}`, option, expected, actual });
      }
    }
    for (const [name, exp] of p.gone) {
      const box = `${exp.mailbox}@${exp.context}`;
      if (boxes.has(box)) out.push(stillThere(name, `mailbox ${box}`));
    }
    return out;
  }
}
