export function formatIssue(i) {
    const where = i.line ? `${i.file}:${i.line}` : i.file;
    const parts = [];
    if (i.agent)
        parts.push(`agent "${i.agent}"`);
    if (i.field)
        parts.push(`field ${i.field}` + (i.value !== undefined ? ` = ${JSON.stringify(i.value)}` : ''));
    const subject = parts.length ? ` ${parts.join(', ')}:` : '';
    return `${where}: ${i.severity}:${subject} ${i.rule}. Fix: ${i.fix}`;
}
export function makeIssue(input) {
    const base = { ...input, severity: input.severity ?? 'error' };
    return { ...base, message: formatIssue(base) };
}
/** Collects issues; validation never stops at the first one. */
export class IssueList {
    items = [];
    add(input) {
        this.items.push(makeIssue(input));
    }
    push(...issues) {
        this.items.push(...issues);
    }
    get errors() {
        return this.items.filter((i) => i.severity === 'error');
    }
    get warnings() {
        return this.items.filter((i) => i.severity === 'warning');
    }
    get hasErrors() {
        return this.items.some((i) => i.severity === 'error');
    }
}
/** Shows a value in a message without ever printing a secret or an endless blob. */
export function showValue(v) {
    if (v === undefined)
        return 'undefined';
    if (v === null)
        return 'null';
    const s = typeof v === 'string' ? v : JSON.stringify(v);
    return s.length > 80 ? s.slice(0, 77) + '...' : s;
}
//# sourceMappingURL=issues.js.map