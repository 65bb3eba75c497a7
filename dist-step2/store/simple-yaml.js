import { IssueList } from '../model/issues.js';
import { parseYamlSource } from './source.js';
// The core schema's tests, in the order the `yaml` package tries them (schema/core/schema.js).
const NULL = /^(?:~|[Nn]ull|NULL)?$/;
const BOOL = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
const INT_OCT = /^0o[0-7]+$/;
const INT = /^[-+]?[0-9]+$/;
const INT_HEX = /^0x[0-9a-fA-F]+$/;
const FLOAT_NAN = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const FLOAT_EXP = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/;
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/;
/** Printable characters only: no tab, CR, BOM, control or lone surrogate characters. */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[^\n\x20-\x7e\u00a0-\ud7ff\ue000-\ufefe\uff00-\ufffd]/;
const LINE = /^( *)([A-Za-z_][A-Za-z0-9_]*):(?: +(.*))?$/;
const DQ = /^"([^"\\]*)"$/;
/** Plain scalars in block context: no leading indicator, no comment, no nested mapping. */
const PLAIN = /^[^-?:,[\]{}#&*!|>'"%@`\s](?:[^#:]|:(?! |$))*$/;
const FLOW_ITEM = /^[A-Za-z0-9_./+][A-Za-z0-9_./+-]*$/;
const FALLBACK = Symbol('fallback');
/**
 * A copy of a value that does not keep the file's text alive. V8 makes a substring of 13 or more
 * characters a view into its parent, so one email address would otherwise hold on to the whole
 * agent file for as long as the store is loaded (~400 bytes per agent). Shorter ones are copies.
 * The copy is also one flat string where a concatenation of 13 or more characters is kept as its
 * parts behind a third string.
 */
export function own(s) {
    return s.length < 13 ? s : JSON.parse(JSON.stringify(s));
}
/** Resolves a plain scalar as the core schema does, or FALLBACK for types this reader leaves to `yaml`. */
function plain(s) {
    if (NULL.test(s))
        return null;
    if (BOOL.test(s))
        return s[0] === 't' || s[0] === 'T';
    if (INT_OCT.test(s))
        return FALLBACK;
    if (INT.test(s))
        return parseInt(s, 10);
    if (INT_HEX.test(s) || FLOAT_NAN.test(s) || FLOAT_EXP.test(s) || FLOAT.test(s))
        return FALLBACK;
    return own(s);
}
export function parseSimpleYaml(text) {
    if (UNSAFE.test(text))
        return undefined;
    const root = {};
    const sources = new Map();
    const stack = [{ indent: 0, obj: root, prefix: '' }];
    /** A `key:` with nothing after it: a nested mapping if deeper lines follow, else null. */
    let open;
    let content = false;
    for (const line of text.split('\n')) {
        let i = 0;
        while (line.charCodeAt(i) === 32)
            i++;
        if (i === line.length || line.charCodeAt(i) === 35 /* # */)
            continue;
        // YAML caps implicit keys at 1024 characters; long lines are left to the full parser.
        if (line.length > 1000)
            return undefined;
        const m = LINE.exec(line);
        if (!m)
            return undefined;
        const indent = m[1].length;
        const key = m[2];
        if (key === '__proto__' || NULL.test(key) || BOOL.test(key))
            return undefined;
        if (!content && indent !== 0)
            return undefined;
        content = true;
        if (open) {
            if (indent > open.level.indent) {
                const obj = {};
                open.level.obj[open.key] = obj;
                stack.push({ indent, obj, prefix: `${open.level.prefix}${open.key}\0` });
            }
            else
                open.level.obj[open.key] = null;
            open = undefined;
        }
        while (stack.length > 1 && stack[stack.length - 1].indent > indent)
            stack.pop();
        const level = stack[stack.length - 1];
        if (level.indent !== indent)
            return undefined;
        if (Object.prototype.hasOwnProperty.call(level.obj, key))
            return undefined;
        const raw = (m[3] ?? '').trimEnd();
        if (raw === '') {
            open = { level, key };
            // Keep the key's position in insertion order (as the `yaml` package does).
            level.obj[key] = null;
            continue;
        }
        const at = level.prefix + key;
        const c = raw.charCodeAt(0);
        if (c === 34 /* " */) {
            const q = DQ.exec(raw);
            if (!q)
                return undefined;
            level.obj[key] = own(q[1]);
            sources.set(at, raw);
        }
        else if (c === 91 /* [ */) {
            if (raw.charCodeAt(raw.length - 1) !== 93 /* ] */)
                return undefined;
            const inner = raw.slice(1, -1);
            const list = [];
            if (inner.trim() !== '') {
                const items = inner.split(',');
                for (let k = 0; k < items.length; k++) {
                    const item = items[k].trim();
                    let v;
                    if (item.charCodeAt(0) === 34) {
                        const q = DQ.exec(item);
                        if (!q)
                            return undefined;
                        v = own(q[1]);
                    }
                    else if (FLOW_ITEM.test(item)) {
                        v = plain(item);
                        if (v === FALLBACK)
                            return undefined;
                    }
                    else
                        return undefined;
                    list.push(v);
                    sources.set(`${at}\0${k}`, item);
                }
            }
            level.obj[key] = list;
        }
        else {
            if (!PLAIN.test(raw))
                return undefined;
            const v = plain(raw);
            if (v === FALLBACK)
                return undefined;
            level.obj[key] = v;
            sources.set(at, raw);
        }
    }
    if (!content)
        return undefined;
    return { data: root, sources };
}
/**
 * The SourceDoc of an agent file read by the fast path, or undefined when the file needs the full
 * parser. Line numbers (asked for only when an issue is reported) and the source text of anything
 * but a plain scalar come from the full parser, run on demand, so messages stay exactly as before.
 */
export function parseSimpleSource(file, text) {
    const fast = parseSimpleYaml(text);
    if (!fast)
        return undefined;
    let full;
    const slow = () => (full ??= parseYamlSource(file, text, new IssueList()));
    return {
        file,
        data: fast.data,
        lineOf: (path) => slow().lineOf(path),
        sourceOf: (path) => fast.sources.get(path.join('\0')) ?? slow().sourceOf?.(path),
    };
}
//# sourceMappingURL=simple-yaml.js.map