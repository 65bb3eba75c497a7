export function parseConf(text) {
    const sections = [];
    const errors = [];
    let current;
    let inBlock = false;
    text.split('\n').forEach((raw, i) => {
        const lineNo = i + 1;
        let line = raw.replace(/\r$/, '');
        if (inBlock) {
            const end = line.indexOf('--;');
            if (end === -1)
                return;
            inBlock = false;
            line = line.slice(end + 3);
        }
        line = stripComment(line, () => (inBlock = true));
        line = line.trim();
        if (line === '')
            return;
        if (line.startsWith('#')) {
            errors.push(`line ${lineNo}: directive ${JSON.stringify(line.split(/\s/)[0])} is not supported here`);
            return;
        }
        const header = /^\[([^\]]+)\](?:\(([^)]*)\))?$/.exec(line);
        if (header) {
            current = { name: header[1].trim(), ...(header[2] !== undefined ? { options: header[2] } : {}), entries: [], line: lineNo };
            sections.push(current);
            return;
        }
        const m = /^([^=]+?)\s*=>?\s*(.*)$/.exec(line);
        if (!m) {
            errors.push(`line ${lineNo}: not a section header or key = value`);
            return;
        }
        if (!current) {
            errors.push(`line ${lineNo}: "${m[1]}" outside any section`);
            return;
        }
        current.entries.push([m[1].trim(), m[2].trim()]);
    });
    if (inBlock)
        errors.push('block comment ";--" is never closed');
    return { sections, errors };
}
/** Removes a `;` comment (keeping `\;` as `;`); calls `openBlock` when a `;--` opens a block comment. */
function stripComment(line, openBlock) {
    let out = '';
    for (let i = 0; i < line.length; i++) {
        const c = line[i];
        if (c === '\\' && line[i + 1] === ';') {
            out += ';';
            i++;
            continue;
        }
        if (c === ';') {
            if (line.startsWith(';--', i)) {
                const end = line.indexOf('--;', i + 3);
                if (end !== -1) {
                    // One-line block comment: keep what follows it.
                    return out + stripComment(line.slice(end + 3), openBlock);
                }
                openBlock();
            }
            return out;
        }
        out += c;
    }
    return out;
}
/** Value of the first `key` in a section (case-insensitive), if any. */
export function valueOf(section, key) {
    const lower = key.toLowerCase();
    return section.entries.find(([k]) => k.toLowerCase() === lower)?.[1];
}
/**
 * Why a pjsip reload cannot put these transport changes into effect: each changed or removed
 * `type = transport` section gives one human reason ("transport-tls: bind changed"). New transports
 * are created by a reload and need nothing. Values are never quoted (a transport may hold a password).
 */
export function transportRestartReasons(before, after) {
    return transportChanges(transportsOf(before), transportsOf(after));
}
/** transportRestartReasons for transports already read with transportsOf. */
export function transportChanges(old, now) {
    const reasons = [];
    for (const [name, entries] of old) {
        const next = now.get(name);
        if (!next) {
            reasons.push(`${name}: removed (Asterisk keeps its listener until restarted)`);
            continue;
        }
        const keys = new Set([...entries.keys(), ...next.keys()]);
        const changed = [...keys].filter((k) => (entries.get(k) ?? []).join('\n') !== (next.get(k) ?? []).join('\n')).sort();
        if (changed.length)
            reasons.push(`${name}: ${changed.join(', ')} changed`);
    }
    return reasons;
}
const TRANSPORT_LINE = /^[ \t]*type[ \t]*=[ \t]*transport\b/gim;
/**
 * The transports of a pjsip file's text. Only the sections holding a `type = transport` line are
 * parsed: one regular-expression scan finds those lines and each one's section (from the line
 * starting with `[` before it to the next such line), so the agents' sections, nearly all of a
 * large pjsip file, are never split or parsed (7 MB: ~4 ms).
 */
export function transportsOf(text) {
    const out = new Map();
    if (text === undefined)
        return out;
    const parts = [];
    let end = -1;
    TRANSPORT_LINE.lastIndex = 0;
    for (let m = TRANSPORT_LINE.exec(text); m; m = TRANSPORT_LINE.exec(text)) {
        if (m.index < end)
            continue;
        const start = sectionStart(text, m.index);
        const next = text.indexOf('\n[', m.index);
        end = next === -1 ? text.length : next + 1;
        parts.push(text.slice(start, end));
        TRANSPORT_LINE.lastIndex = end;
    }
    TRANSPORT_LINE.lastIndex = 0;
    for (const s of parseConf(parts.join('')).sections) {
        if (valueOf(s, 'type')?.toLowerCase() !== 'transport')
            continue;
        const entries = new Map();
        for (const [k, v] of s.entries) {
            const key = k.toLowerCase();
            if (key === 'type')
                continue;
            entries.set(key, [...(entries.get(key) ?? []), v]);
        }
        out.set(s.name, entries);
    }
    return out;
}
/** Where the section holding offset `i` starts: its `[` line, or the start of the text. */
function sectionStart(text, i) {
    const nl = text.lastIndexOf('\n[', i);
    return nl === -1 ? 0 : nl + 1;
}
//# sourceMappingURL=conf.js.map