/**
 * Differential check of the fast agent-file reader (store/simple-yaml.ts) against the `yaml`
 * package: for every input the fast reader accepts, the data (types and key order), the absence of
 * YAML errors, and the source text of every scalar must be what `yaml` gives.
 *
 *   node dist/bench/verify-yaml.js [MUTANTS_PER_FILE] [STORE_DIR ...]
 *
 * Inputs: fixtures/store, fixtures/bad-store (if present), the given stores (e.g. a generated
 * one), and mutants of each file (tricky scalars, indentation, comments, duplicate keys, ...).
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { parseSimpleSource, parseSimpleYaml } from '../store/simple-yaml.js';
import { parseYamlSource } from '../store/source.js';
import { IssueList } from '../model/issues.js';
import { validateAgent } from '../model/agent.js';
import { validateSettings } from '../model/settings.js';
import { rng } from './generate.js';
const TOKENS = [
    '~', 'null', 'Null', 'NULL', 'nUll', 'true', 'True', 'TRUE', 'tRue', 'false', 'yes', 'no', 'on', 'off', 'y', 'n',
    '0', '-0', '+0', '0100', '007', '+4930123', '-12', '12345678901234567890', '0o17', '0o8', '0x1F', '0xg', '1e3', '1E-3', '.5', '1.', '1.5', '.inf', '-.Inf', '.nan', '.NaN',
    "'single'", "'it''s'", '"dq"', '"with \\" escape"', '"a#b"', '"a: b"', '"\\t"', '""', '" "', '"x" # c', '"x"x',
    'a #comment', 'a#b', 'a: b', 'a:b', 'a:', 'http://x:80/p', 'a ,b', 'a, b', 'x  ', 'Inês', 'Zoë', '日本', '😀', 'a\tb', '\ta',
    '[a, b]', '[a,b,]', '[]', '[ ]', '["x", 1]', '[+61290000001]', '[a, [b]]', '[a b]', '[a: b]', '[-1]', '[.5]', '[0o7]', '[~]', '[null]',
    '[true]', '[ "a,b" ]', '[a] # c', '[a', 'a]', '{a: 1}', '{}', '&x a', '*x', '!!str 5', '!x y', '|', '|-', '>', '- a', '-a', '-', '@x', '`x',
    '%x', '"unterminated', '?', '? x', ':x', ',x', '#x', '1_000', '0b11', '12:30', '2001-12-14', '=', '<<', '...', '---', 'a...b', '-.5', '+.5',
];
const KEYS = ['Null', 'null', 'true', 'TRUE', '__proto__', 'a b', '"quoted"', "'q'", 'key ', '<<', '~', '1', 'x'.repeat(1100), 'ok_key', 'id', 'voice'];
function mutate(text, r) {
    const pick = (xs) => xs[Math.floor(r() * xs.length)];
    const lines = text.split('\n');
    const i = Math.floor(r() * lines.length);
    const line = lines[i] ?? '';
    const kv = /^( *)([^:]+):(.*)$/.exec(line);
    switch (Math.floor(r() * 12)) {
        case 0:
        case 1:
        case 2:
            if (kv)
                lines[i] = `${kv[1]}${kv[2]}: ${pick(TOKENS)}`;
            break;
        case 3:
            if (kv)
                lines[i] = `${kv[1]}${pick(KEYS)}:${kv[3]}`;
            break;
        case 4:
            lines[i] = pick([' ', '  ', '   ', '    ']) + line;
            break;
        case 5:
            lines[i] = line.replace(/^ {1,2}/, '');
            break;
        case 6:
            lines.splice(i, 0, `${pick(['', ' ', '  ', '    '])}# ${pick(TOKENS)}`);
            break;
        case 7:
            lines.splice(i, 0, line);
            break;
        case 8:
            lines.splice(i, 1);
            break;
        case 9:
            lines.splice(i, 0, pick(['', '   ', '---', '...', '%YAML 1.2', '- x', '  - x', 'x', '  nested:', 'empty:']));
            break;
        case 10:
            return pick([(t) => t.replace(/\n/g, '\r\n'), (t) => '\ufeff' + t, (t) => t.trimEnd(), (t) => t + '\n\n# end\n', (t) => t.replace(/ {2}/g, '\t')])(lines.join('\n'));
        default:
            if (kv)
                lines[i] = `${kv[1]}${kv[2]}:${pick(['', ' ', '  ', '   '])}${kv[3].trim()}${pick(['', ' ', '  '])}`;
    }
    return lines.join('\n');
}
/** Every scalar path of plain data (objects and arrays). */
function scalarPaths(v, at = [], out = []) {
    if (Array.isArray(v))
        v.forEach((x, i) => scalarPaths(x, [...at, i], out));
    else if (v !== null && typeof v === 'object')
        for (const [k, x] of Object.entries(v))
            scalarPaths(x, [...at, k], out);
    else if (at.length)
        out.push(at);
    return out;
}
function check(name, text, t, settings) {
    t.inputs++;
    const fast = parseSimpleYaml(text);
    if (!fast)
        return;
    t.fast++;
    const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, strict: true });
    const fail = (why) => void t.mismatches.push(`${name}: ${why}\n---\n${text}\n---`);
    if (doc.errors.length)
        return fail(`yaml reports an error the fast reader missed: ${doc.errors[0].message.split('\n')[0]}`);
    const data = doc.toJS({ maxAliasCount: 50 });
    if (!isDeepStrictEqual(data, fast.data) || JSON.stringify(data) !== JSON.stringify(fast.data)) {
        return fail(`data differs: yaml ${JSON.stringify(data)} fast ${JSON.stringify(fast.data)}`);
    }
    const full = parseYamlSource(name, text, new IssueList());
    for (const p of scalarPaths(data)) {
        const mine = fast.sources.get(p.join('\0'));
        const theirs = full.sourceOf?.(p);
        if (mine !== undefined && mine !== theirs)
            return fail(`source of ${p.join('.')}: yaml ${JSON.stringify(theirs)} fast ${JSON.stringify(mine)}`);
    }
    // End to end: validation gives the same agent and the same issues (lines, values, fixes).
    const validate = (doc) => {
        const issues = new IssueList();
        const agent = validateAgent(doc, settings, issues);
        return JSON.stringify({ agent, issues: issues.items });
    };
    const a = validate(full);
    const b = validate(parseSimpleSource(name, text));
    if (a !== b)
        return fail(`validation differs:\n  yaml ${a}\n  fast ${b}`);
}
function filesOf(dir) {
    const agents = path.join(dir, 'agents');
    if (!existsSync(agents))
        return [];
    return readdirSync(agents).filter((n) => /\.ya?ml$/.test(n)).sort().map((n) => path.join(agents, n));
}
/** The differential check over every agent file of `stores` and `mutants` mutants of each (a sample of a large store's files). */
export function verifyStores(stores, mutants) {
    const t = { inputs: 0, fast: 0, mismatches: [] };
    const settingsOf = (dir) => {
        const file = path.join(dir, 'switchboard.yaml');
        const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
        return validateSettings(parseYamlSource('switchboard.yaml', text, new IssueList()), new IssueList());
    };
    const r = rng(7);
    for (const dir of stores) {
        const files = filesOf(dir);
        const settings = settingsOf(dir);
        // Generated stores: originals all, mutants of a sample (fixtures: mutants of every file).
        const step = Math.max(1, Math.floor(files.length / 200));
        files.forEach((f, i) => {
            const text = readFileSync(f, 'utf8');
            check(f, text, t, settings);
            if (i % step !== 0)
                return;
            for (let k = 0; k < mutants; k++) {
                let m = text;
                const edits = 1 + Math.floor(r() * 3);
                for (let e = 0; e < edits; e++)
                    m = mutate(m, r);
                check(`${f} (mutant ${k})`, m, t, settings);
            }
        });
    }
    return t;
}
function main() {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
    const mutants = Number(process.argv[2] ?? 200);
    const t = verifyStores([path.join(root, 'fixtures', 'store'), path.join(root, 'fixtures', 'bad-store'), ...process.argv.slice(3)], mutants);
    process.stdout.write(`${t.inputs} inputs, ${t.fast} taken by the fast reader, ${t.mismatches.length} mismatches\n`);
    for (const m of t.mismatches.slice(0, 10))
        process.stdout.write(`${m}\n`);
    if (t.mismatches.length)
        process.exitCode = 1;
}
// Run as a script (node dist/bench/verify-yaml.js), not when a test imports verifyStores.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url))
    main();
//# sourceMappingURL=verify-yaml.js.map