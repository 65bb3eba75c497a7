import { PresenceError } from './errors.js';
const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 };
/** Longest pause `--for` accepts (a typo such as `300d` should not pause someone for a year). */
export const MAX_PAUSE_MS = 7 * UNIT_MS.d;
const DURATION_RE = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;
/**
 * Parses a duration such as `30m`, `1h30m`, `45s`, `2h` or `1d` (units d, h, m, s, largest first,
 * each at most once, no spaces) into milliseconds. Throws PRESENCE_BAD_DURATION otherwise, including
 * for zero and for more than 7 days.
 */
export function parseDuration(s) {
    const text = String(s).trim().toLowerCase();
    const m = DURATION_RE.exec(text);
    const bad = (why) => new PresenceError('PRESENCE_BAD_DURATION', `duration "${s}" ${why}: write it like 30m, 1h30m, 45s or 2h (units d, h, m, s)`, { value: s });
    if (!text || !m || m.slice(1).every((g) => g === undefined)) {
        throw bad(/^\d+$/.test(text) ? 'has no unit' : 'is not a duration');
    }
    let ms = 0;
    ['d', 'h', 'm', 's'].forEach((unit, i) => {
        const g = m[i + 1];
        if (g !== undefined)
            ms += Number(g) * UNIT_MS[unit];
    });
    if (!Number.isSafeInteger(ms) || ms <= 0)
        throw bad('must be longer than zero');
    if (ms > MAX_PAUSE_MS)
        throw bad('is longer than the 7-day maximum');
    return ms;
}
/** Formats milliseconds as `1h30m`, `45s`, `2d3h` (rounded down to whole seconds; `0s` for less). */
export function formatDuration(ms) {
    let rest = Math.max(0, Math.floor(ms / 1000));
    const parts = [];
    for (const [unit, size] of [['d', 86_400], ['h', 3_600], ['m', 60], ['s', 1]]) {
        const n = Math.floor(rest / size);
        rest -= n * size;
        if (n)
            parts.push(`${n}${unit}`);
    }
    return parts.join('') || '0s';
}
//# sourceMappingURL=duration.js.map