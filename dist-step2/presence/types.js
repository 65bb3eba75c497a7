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
export const PRESENCE_STATES = ['available', 'paused', 'logged out', 'busy'];
/** The states an operator may set by hand; `logged out` and `busy` come from Asterisk. */
export const MANUAL_STATES = ['paused', 'available'];
/** The default `SetTimer`: an unref'd `setTimeout` (presence timers never keep the process alive). */
export const realSetTimer = (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
};
//# sourceMappingURL=types.js.map