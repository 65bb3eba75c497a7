import { runWorker } from '../child.js';
import { summarise } from '../stats.js';
import { ensureStore } from '../stores.js';
const SIZES = [1_000, 10_000, 100_000];
const QUICK_SIZES = [1_000, 10_000];
function label(n) {
    return n >= 1000 ? `${n / 1000}k` : String(n);
}
function reps(ctx, n) {
    if (ctx.quick)
        return 3;
    return n >= 100_000 ? 3 : 5;
}
async function repeat(ctx, times, what, run) {
    const out = [];
    for (let i = 0; i < times; i++) {
        out.push(await run());
        ctx.log(`  ${what} ${i + 1}/${times}`);
    }
    return out;
}
const pick = (rs, key) => rs.map((r) => r.timings[key]);
const maxRss = (rs) => Math.max(...rs.map((r) => r.rssMB));
export const suite = {
    name: 'store',
    description: 'load + validate, and render + write, of generated stores (1k, 10k, 100k agents)',
    order: 10,
    async run(ctx) {
        const rows = [];
        for (const n of ctx.quick ? QUICK_SIZES : SIZES) {
            const store = await ensureStore(ctx.root, n, ctx.log);
            const k = reps(ctx, n);
            const L = label(n);
            const loads = await repeat(ctx, k, `${L} load`, () => runWorker('load', { store }));
            rows.push({
                suite: 'store', name: `${L} load + validate`, unit: 'ms', stats: summarise(pick(loads, 'load')), samples: pick(loads, 'load'), rssMB: maxRss(loads), cpuMs: summarise(pick(loads, 'loadCpu')).median,
                ...(n === 10_000 ? { goal: { text: '≤ 1000 ms', max: 1000 } } : {}),
                detail: loads[0].detail ?? {},
            });
            const renders = await repeat(ctx, k, `${L} render`, () => runWorker('render', { store }));
            const renderWrite = renders.map((r) => r.timings['render'] + r.timings['write']);
            const rss = maxRss(renders);
            rows.push({
                suite: 'store', name: `${L} render (cold) + write`, unit: 'ms', stats: summarise(renderWrite), samples: renderWrite, rssMB: rss, cpuMs: summarise(pick(renders, 'renderWriteCpu')).median,
                ...(n === 10_000 ? { goal: { text: '≤ 150 ms', max: 150 } } : {}),
                detail: { ...renders[0].detail, note: 'peak RSS of the process that loaded the store, then rendered and wrote it' },
            });
            rows.push({
                suite: 'store', name: `${L} render (cold)`, unit: 'ms', stats: summarise(pick(renders, 'render')), samples: pick(renders, 'render'), rssMB: rss,
                ...(n === 100_000 ? { goal: { text: '≤ 1500 ms', max: 1500 } } : {}),
            });
            rows.push({ suite: 'store', name: `${L} write (${renders[0].detail?.['files']} files)`, unit: 'ms', stats: summarise(pick(renders, 'write')), rssMB: rss });
            rows.push({ suite: 'store', name: `${L} re-render (warm cache)`, unit: 'ms', stats: summarise(pick(renders, 'rerender')), rssMB: rss });
            // `switchboard render`'s path: no cache, output streamed into the directory (renderToDir).
            const onces = await repeat(ctx, k, `${L} render once`, () => runWorker('render-once', { store }));
            // Issue 2's render goals hold for both paths: 10k rendered and written, 100k rendered (here
            // rendered and written: renderToDir does both at once).
            rows.push({
                suite: 'store', name: `${L} render once + write (CLI path)`, unit: 'ms', stats: summarise(pick(onces, 'renderWrite')), samples: pick(onces, 'renderWrite'),
                rssMB: maxRss(onces), cpuMs: summarise(pick(onces, 'renderWriteCpu')).median,
                ...(n === 10_000 ? { goal: { text: '≤ 150 ms', max: 150 } } : n === 100_000 ? { goal: { text: '≤ 1500 ms', max: 1500 } } : {}),
                detail: { ...onces[0].detail, note: 'renderToDir into an empty directory; peak RSS of the process that loaded the store, then rendered and wrote it' },
            });
            if (n === 100_000) {
                rows.push({
                    suite: 'store', name: `${L} peak RSS, load + render + write`, unit: 'MB', stats: summarise(renders.map((r) => r.rssMB)), samples: renders.map((r) => r.rssMB), rssMB: rss,
                    goal: { text: '≤ 300 MB', max: 300, on: 'max' },
                });
                rows.push({
                    suite: 'store', name: `${L} peak RSS, load + render once + write (CLI path)`, unit: 'MB', stats: summarise(onces.map((r) => r.rssMB)), samples: onces.map((r) => r.rssMB), rssMB: maxRss(onces),
                    goal: { text: '≤ 300 MB', max: 300, on: 'max' },
                });
            }
        }
        return rows;
    },
};
//# sourceMappingURL=store.js.map