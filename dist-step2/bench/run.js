/**
 * Benchmark runner: `npm run bench [-- --suite NAME] [--quick] [--list]`.
 *
 * Runs every suite in dist/bench/suites/ (each file exports `suite: Suite`; see suite.ts), prints
 * a table, and merges the rows into .bench/results.json (gitignored), replacing the rows of the
 * suites that ran. Progress goes to stderr, the table to stdout.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { goalMet } from './suite.js';
const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '..', '..');
const RESULTS = path.join(ROOT, '.bench', 'results.json');
function parseArgs(argv) {
    const o = { suites: [], quick: false, list: false };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === '--quick')
            o.quick = true;
        else if (a === '--list')
            o.list = true;
        else if (a === '--wait-quiet')
            o.waitQuiet = 1;
        else if (a.startsWith('--wait-quiet='))
            o.waitQuiet = Number(a.slice(13));
        else if (a === '--suite')
            o.suites.push(...(argv[++i] ?? '').split(',').filter(Boolean));
        else if (a.startsWith('--suite='))
            o.suites.push(...a.slice(8).split(',').filter(Boolean));
        else if (a === '-h' || a === '--help') {
            process.stdout.write('usage: npm run bench [-- [--suite NAME[,NAME]] [--quick] [--list] [--wait-quiet[=LOAD]]]\n' +
                '  --wait-quiet  before each suite, wait (up to 10 min) until the 1-minute load average is below LOAD (default 1)\n');
            process.exit(0);
        }
        else
            throw new Error(`unknown argument ${a} (use --suite NAME, --quick, --list)`);
    }
    return o;
}
/** Waits until the 1-minute load average drops below `limit` (or 10 minutes pass). */
async function waitQuiet(limit, log) {
    const until = Date.now() + 10 * 60_000;
    let said = false;
    while (os.loadavg()[0] >= limit && Date.now() < until) {
        if (!said)
            log(`  waiting for the load average (${os.loadavg()[0].toFixed(2)}) to drop below ${limit} ...`);
        said = true;
        await new Promise((r) => setTimeout(r, 5000));
    }
    if (os.loadavg()[0] >= limit)
        log(`  load average still ${os.loadavg()[0].toFixed(2)}: measuring anyway`);
}
/** Every suite module in suites/, ordered by `order` then name. */
async function discoverSuites(dir = path.join(here, 'suites')) {
    const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.js')).sort();
    const suites = [];
    for (const f of files) {
        const mod = (await import(pathToFileURL(path.join(dir, f)).href));
        if (mod.suite)
            suites.push(mod.suite);
    }
    return suites.sort((a, b) => (a.order ?? 100) - (b.order ?? 100) || a.name.localeCompare(b.name));
}
const fmt = (v, unit = '') => (v === undefined || Number.isNaN(v) ? '' : `${v >= 100 ? v.toFixed(0) : v.toFixed(1)}${unit}`);
function table(rows) {
    const head = ['benchmark', 'n', 'median', 'min', 'max', 'p99', 'cpu', 'peak RSS', 'goal', ''];
    const body = rows.map((r) => {
        const met = goalMet(r);
        return [
            r.name, String(r.stats.n), fmt(r.stats.median, ` ${r.unit}`), fmt(r.stats.min), fmt(r.stats.max),
            r.stats.n >= 20 ? fmt(r.stats.p99) : '', fmt(r.cpuMs), r.rssMB === undefined ? '' : `${r.rssMB.toFixed(0)} MB`,
            r.goal ? `${r.goal.on && r.goal.on !== 'median' ? `${r.goal.on === 'rss' ? 'RSS' : r.goal.on} ` : ''}${r.goal.text}` : '',
            met === undefined ? '' : met ? 'met' : 'MISSED',
        ];
    });
    const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
    const line = (cells) => cells.map((c, i) => (i === 0 || i >= 8 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
    return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}
async function main() {
    const opts = parseArgs(process.argv.slice(2));
    const all = await discoverSuites();
    if (opts.list) {
        for (const s of all)
            process.stdout.write(`${s.name.padEnd(14)} ${s.description}\n`);
        return;
    }
    const unknown = opts.suites.filter((n) => !all.some((s) => s.name === n));
    if (unknown.length)
        throw new Error(`no suite named ${unknown.join(', ')}; suites: ${all.map((s) => s.name).join(', ')}`);
    const chosen = opts.suites.length ? all.filter((s) => opts.suites.includes(s.name)) : all;
    const log = (m) => process.stderr.write(`${m}\n`);
    const ctx = { quick: opts.quick, root: ROOT, log };
    const started = Date.now();
    const results = {};
    const rows = [];
    for (const s of chosen) {
        log(`suite ${s.name}: ${s.description}`);
        if (opts.waitQuiet !== undefined)
            await waitQuiet(opts.waitQuiet, log);
        const before = os.loadavg()[0];
        const t0 = Date.now();
        const r = await s.run(ctx);
        const after = os.loadavg()[0];
        log(`  ${s.name}: ${((Date.now() - t0) / 1000).toFixed(0)} s, load average ${before.toFixed(2)} -> ${after.toFixed(2)}`);
        results[s.name] = { at: new Date().toISOString(), quick: opts.quick, seconds: (Date.now() - t0) / 1000, loadavg: { before, after }, rows: r };
        rows.push(...r);
    }
    process.stdout.write(`\n${table(rows)}\n\n`);
    let previous = {};
    try {
        previous = JSON.parse(await fs.readFile(RESULTS, 'utf8'));
    }
    catch {
        // First run, or an unreadable file: start afresh.
    }
    const machine = {
        cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
        node: process.version, platform: `${os.platform()} ${os.release()}`, loadavg: os.loadavg(),
    };
    await fs.mkdir(path.dirname(RESULTS), { recursive: true });
    await fs.writeFile(RESULTS, JSON.stringify({ machine, suites: { ...(previous.suites ?? {}), ...results } }, null, 2) + '\n');
    const missed = rows.filter((r) => goalMet(r) === false).length;
    log(`${rows.length} rows in ${((Date.now() - started) / 1000).toFixed(0)} s; ${missed} goal(s) missed; results in ${path.relative(process.cwd(), RESULTS)}`);
}
main().catch((err) => {
    process.stderr.write(`bench: ${err.message}\n`);
    process.exitCode = 1;
});
//# sourceMappingURL=run.js.map