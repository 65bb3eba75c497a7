import { SwitchboardError } from '../errors.js';

/**
 * Stable codes:
 * - `PRESENCE_UNKNOWN_AGENT`: no agent with that id or username in the store.
 * - `PRESENCE_BAD_DURATION`: `--for` is not a duration such as `30m` or `1h30m`.
 * - `PRESENCE_INVALID`: any other bad request (a reason with CR/LF, `--for` with `available`, …).
 * - `PRESENCE_STATE_FILE`: presence.json cannot be read (corrupt) or its lock cannot be taken.
 */
export type PresenceErrorCode = 'PRESENCE_UNKNOWN_AGENT' | 'PRESENCE_BAD_DURATION' | 'PRESENCE_INVALID' | 'PRESENCE_STATE_FILE';

export class PresenceError extends SwitchboardError {
  declare readonly code: PresenceErrorCode;

  constructor(code: PresenceErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, details, options);
  }
}

export class UnknownAgentError extends PresenceError {
  constructor(agent: string, where = 'the store') {
    super('PRESENCE_UNKNOWN_AGENT', `agent "${agent}" is not in ${where}: give an agent id or username (e.g. "1001" or "alice.smith")`, { agent });
  }
}
