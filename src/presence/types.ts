/**
 * Agent presence: what the DID workflow asks before ringing an agent, and what `switchboard
 * presence list` shows. Four states, in precedence order (the first that applies wins):
 *
 *   logged out  login disabled in the store, or the agent's device has no registered contact
 *   paused      paused with `switchboard presence set … paused` (optionally timed), or in a queue
 *   busy        the agent's device is in a call (in use, busy, ringing while in use, on hold)
 *   available   none of the above
 *
 * These mirror the product docs' Offline / Away / Busy / Free.
 */

export const PRESENCE_STATES = ['available', 'paused', 'logged out', 'busy'] as const;
export type PresenceState = (typeof PRESENCE_STATES)[number];

/** The states an operator may set by hand; `logged out` and `busy` come from Asterisk. */
export const MANUAL_STATES = ['paused', 'available'] as const;
export type ManualState = (typeof MANUAL_STATES)[number];

export interface PresenceDetail {
  /** Login enabled in the store (`enabled: false` → logged out). */
  enabled: boolean;
  /**
   * Whether the device the agent is dialled on has a registered, reachable contact; `'unknown'`
   * until Asterisk has told us (chan_sip via ARI never tells). Only `false` makes an agent logged out.
   */
  registered: boolean | 'unknown';
  /** Set whenever a pause is in force, even when `logged out` wins; `switchboard` wins over `queue`. */
  pausedBy?: 'switchboard' | 'queue';
  /** One of the agent's devices is in a call. */
  busy: boolean;
}

export interface AgentPresence {
  agentId: string;
  username: string;
  state: PresenceState;
  /** Why paused (the operator's or the queue's reason) or why logged out; absent when none. */
  reason?: string;
  /** When this state (with this reason) began, ISO 8601. */
  since: string;
  /** End of a timed switchboard pause, ISO 8601 (only while `state` is `paused`). */
  until?: string;
  detail: PresenceDetail;
}

/** One agent's manual state as kept in `presence.json`. */
export interface ManualEntry {
  state: ManualState;
  reason?: string;
  /** When it was set (ISO 8601). */
  since: string;
  /** End of a timed pause (ISO 8601); after it the agent is available again. */
  until?: string;
  /** Username when it was set, for `presence list` without a store. */
  username?: string;
  /** Who wrote it: `cli` or `daemon`. */
  by?: string;
}

/** `<data dir>/presence.json`: the manual states, shared by the CLI and the daemon. */
export interface ManualStateDoc {
  version: 1;
  /** Bumped by every write; the daemon reports the revision it has applied in the status file. */
  revision: number;
  /** By agent id. */
  agents: Record<string, ManualEntry>;
}

/** `<data dir>/presence-status.json`: the running daemon's view, rewritten after each change. */
export interface PresenceStatusDoc {
  version: 1;
  pid: number;
  startedAt: string;
  writtenAt: string;
  /** Set by a clean stop: the daemon is no longer running. */
  stoppedAt?: string;
  /** The `presence.json` revision these states include. */
  manualRevision: number;
  agents: AgentPresence[];
}

/** Cancels a timer made by `SetTimer`. */
export type CancelTimer = () => void;
/** Runs `fn` once after `ms`; injectable so that tests drive time by hand. */
export type SetTimer = (fn: () => void, ms: number) => CancelTimer;

/** The default `SetTimer`: an unref'd `setTimeout` (presence timers never keep the process alive). */
export const realSetTimer: SetTimer = (fn, ms) => {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
};
