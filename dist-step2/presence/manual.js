import { MAX_PAUSE_MS, formatDuration } from './duration.js';
import { PresenceError } from './errors.js';
export const MAX_REASON_LENGTH = 100;
/**
 * Checks a manual request and builds its `presence.json` entry. A reason is free text of at most
 * 100 characters without control characters (it may reach logs and, one day, an AMI QueuePause);
 * `reason` and `forMs` only go with `paused`.
 */
export function makeManualEntry(state, opts, now, extra = {}) {
    if (state !== 'paused' && state !== 'available') {
        throw new PresenceError('PRESENCE_INVALID', `state "${String(state)}" cannot be set by hand: use paused or available (logged out and busy come from Asterisk)`);
    }
    const entry = { state, since: new Date(now).toISOString(), ...extra };
    if (state === 'available') {
        if (opts.reason !== undefined || opts.forMs !== undefined) {
            throw new PresenceError('PRESENCE_INVALID', 'a reason and a duration only go with "paused"');
        }
        return entry;
    }
    if (opts.reason !== undefined) {
        const reason = opts.reason.trim();
        if (!reason)
            throw new PresenceError('PRESENCE_INVALID', 'the pause reason is empty: give one, e.g. --reason Lunch, or leave it out');
        if (/[\u0000-\u001f\u007f]/.test(reason))
            throw new PresenceError('PRESENCE_INVALID', 'the pause reason must be one line of text (no control characters)');
        if (reason.length > MAX_REASON_LENGTH)
            throw new PresenceError('PRESENCE_INVALID', `the pause reason is ${reason.length} characters long: at most ${MAX_REASON_LENGTH}`);
        entry.reason = reason;
    }
    if (opts.forMs !== undefined) {
        if (!Number.isSafeInteger(opts.forMs) || opts.forMs <= 0) {
            throw new PresenceError('PRESENCE_BAD_DURATION', `pause length ${opts.forMs} ms must be a whole number of milliseconds above zero`);
        }
        if (opts.forMs > MAX_PAUSE_MS) {
            throw new PresenceError('PRESENCE_BAD_DURATION', `pause length ${formatDuration(opts.forMs)} is longer than the ${formatDuration(MAX_PAUSE_MS)} maximum`);
        }
        entry.until = new Date(now + opts.forMs).toISOString();
    }
    return entry;
}
//# sourceMappingURL=manual.js.map