export const REASON_DISABLED = 'login disabled in the store';
export const REASON_UNREGISTERED = 'no registered device';
/**
 * The one place that decides an agent's state. Precedence: logged out > paused > busy > available.
 * A switchboard pause wins over a queue pause (it carries the operator's reason and end time).
 * `registered: 'unknown'` never logs an agent out: a DID call still tries to ring, and the
 * workflow handles a failed originate.
 */
export function composePresence(inp) {
    const manualPause = inp.manual?.state === 'paused' ? inp.manual : undefined;
    const pausedBy = manualPause ? 'switchboard' : inp.queuePause ? 'queue' : undefined;
    const detail = {
        enabled: inp.enabled,
        registered: inp.registered,
        ...(pausedBy ? { pausedBy } : {}),
        busy: inp.busy,
    };
    const base = { agentId: inp.agentId, username: inp.username, detail };
    if (!inp.enabled)
        return { ...base, state: 'logged out', reason: REASON_DISABLED };
    if (inp.registered === false)
        return { ...base, state: 'logged out', reason: REASON_UNREGISTERED };
    if (manualPause) {
        return {
            ...base,
            state: 'paused',
            ...(manualPause.reason ? { reason: manualPause.reason } : {}),
            ...(manualPause.until ? { until: manualPause.until } : {}),
        };
    }
    if (inp.queuePause)
        return { ...base, state: 'paused', reason: inp.queuePause.reason ?? `paused in queue ${inp.queuePause.queue}` };
    if (inp.busy)
        return { ...base, state: 'busy' };
    return { ...base, state: 'available' };
}
/** Two presences are the same state for `since` purposes when state, reason and pause source match. */
export function sameState(a, b) {
    return a.state === b.state && a.reason === b.reason && (a.state !== 'paused' || a.detail.pausedBy === b.detail.pausedBy);
}
/** Deep equality of everything but `since` (decides whether to emit 'change'). */
export function samePresence(a, b) {
    return (sameState(a, b) &&
        a.detail.pausedBy === b.detail.pausedBy &&
        a.until === b.until &&
        a.username === b.username &&
        a.detail.enabled === b.detail.enabled &&
        a.detail.registered === b.detail.registered &&
        a.detail.busy === b.detail.busy);
}
//# sourceMappingURL=compose.js.map