import { IssueList } from './issues.js';
import type { DraftAgent } from './agent.js';
import type { Agent, Settings } from './types.js';

/** Where previous runs placed auto-assigned extensions: agent id → extension. */
export type ExtensionAssignments = ReadonlyMap<string, string>;

/**
 * Cross-agent rules: uniqueness of id, username, extension and every DID; stable extension
 * assignment from the range for agents that leave `extension` out. Returns agents sorted by id.
 */
export function validateAgents(
  drafts: readonly DraftAgent[],
  settings: Settings,
  issues: IssueList,
  previous: ExtensionAssignments = new Map(),
  memo: WeakMap<DraftAgent, Agent> = new WeakMap(),
): Agent[] {
  // The same draft with the same extension yields the same Agent object, so renderers can cache
  // per-agent output by identity and a one-file edit re-renders one agent.
  const finish = (a: DraftAgent, extension: string, auto: boolean): Agent => {
    const m = memo.get(a);
    if (m && m.extension === extension && m.extensionAutoAssigned === auto) return m;
    const agent: Agent = { ...a, extension, extensionAutoAssigned: auto };
    memo.set(a, agent);
    return agent;
  };
  const byId = new Map<string, DraftAgent>();
  const byUser = new Map<string, DraftAgent>();
  const byExt = new Map<string, DraftAgent>();
  const byDid = new Map<string, DraftAgent>();
  const dup = (what: string, field: string, value: string, a: DraftAgent, b: DraftAgent, fix: string) =>
    issues.add({
      code: `DUPLICATE_${what.toUpperCase()}`,
      file: b.file,
      agent: `${b.id} ${b.username}`,
      field,
      value,
      rule: `${what} ${JSON.stringify(value)} is already used by agent "${a.id} ${a.username}" in ${a.file}`,
      fix,
    });
  const kept: DraftAgent[] = [];
  for (const a of [...drafts].sort((x, y) => cmpId(x.id, y.id) || x.file.localeCompare(y.file))) {
    let ok = true;
    const other = byId.get(a.id);
    if (other) { dup('id', 'id', a.id, other, a, 'give each agent its own ID'); ok = false; }
    const user = a.username.toLowerCase();
    const u = byUser.get(user);
    if (u) { dup('username', 'username', a.username, u, a, 'usernames are unique (case does not count)'); ok = false; }
    if (a.extension) {
      const e = byExt.get(a.extension);
      if (e) { dup('extension', 'extension', a.extension, e, a, 'choose a free internal number, or leave extension out to have one assigned'); ok = false; }
    }
    for (const d of a.dids) {
      const o = byDid.get(d);
      if (o) { dup('DID', 'dids', d, o, a, 'a DID rings exactly one agent: remove it from one of them'); ok = false; }
    }
    if (!ok) continue;
    byId.set(a.id, a);
    byUser.set(user, a);
    if (a.extension) byExt.set(a.extension, a);
    for (const d of a.dids) byDid.set(d, a);
    kept.push(a);
  }

  // Stable auto-assignment: keep the extension a previous run gave the agent when it is still free
  // and in the range; otherwise take the lowest free number of the range.
  const { from, to, width } = settings.extensions;
  const inRange = (e: string) => e.length === width && Number(e) >= from && Number(e) <= to;
  const pending: DraftAgent[] = [];
  const agents: Agent[] = [];
  for (const a of kept) {
    if (a.extension) continue;
    const prev = previous.get(a.id);
    if (prev && inRange(prev) && !byExt.has(prev)) {
      byExt.set(prev, a);
      agents.push(finish(a, prev, true));
    } else pending.push(a);
  }
  let next = from;
  for (const a of pending) {
    while (next <= to && byExt.has(String(next).padStart(width, '0'))) next++;
    if (next > to) {
      issues.add({
        code: 'EXTENSION_RANGE_FULL', file: a.file, agent: `${a.id} ${a.username}`, field: 'extension',
        rule: `no free extension is left in the range ${from}-${to}`, fix: 'widen extensions.from/to in switchboard.yaml, or give this agent an extension',
      });
      continue;
    }
    const ext = String(next).padStart(width, '0');
    byExt.set(ext, a);
    agents.push(finish(a, ext, true));
  }
  for (const a of kept) if (a.extension) agents.push(finish(a, a.extension, false));

  // DIDs and extensions share the dialplan namespace only through different contexts, but a DID
  // that equals an extension is almost always a typo.
  for (const a of agents) {
    if (settings.backend === 'both' && a.typology === 'webrtc') {
      issues.add({
        severity: 'warning', code: 'WEBRTC_WITH_CHAN_SIP', file: a.file, agent: `${a.id} ${a.username}`, field: 'typology', value: 'webrtc',
        rule: 'with both drivers loaded only one can take the "sip" websocket protocol: switchboard turns chan_sip\'s off (websocket_enabled = false in sip_switchboard.conf), so this agent connects through pjsip only',
        fix: 'nothing, if the operator\'s sip.conf does not set websocket_enabled = true after the #include; or use backend: pjsip',
      });
    }
  }
  return agents.sort((x, y) => cmpId(x.id, y.id));
}

export function cmpId(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}
