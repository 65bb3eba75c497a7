export function goalMet(row) {
    if (!row.goal)
        return undefined;
    const on = row.goal.on ?? 'median';
    const v = on === 'rss' ? row.rssMB : row.stats[on];
    return v === undefined || Number.isNaN(v) ? undefined : v <= row.goal.max;
}
//# sourceMappingURL=suite.js.map