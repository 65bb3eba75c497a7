/** Order statistics for benchmark samples (nearest-rank percentiles, no interpolation). */
export function percentile(sorted, p) {
    if (sorted.length === 0)
        return NaN;
    const rank = Math.ceil((p / 100) * sorted.length);
    return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}
export function summarise(samples) {
    const s = [...samples].sort((a, b) => a - b);
    if (s.length === 0)
        return { n: 0, min: NaN, median: NaN, max: NaN, p99: NaN };
    const mid = s.length >> 1;
    const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
    return { n: s.length, min: s[0], median, max: s[s.length - 1], p99: percentile(s, 99) };
}
//# sourceMappingURL=stats.js.map