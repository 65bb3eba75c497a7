import { runWorker } from '../child.js';
import { summarise } from '../stats.js';
import { ensureStore } from '../stores.js';
export const suite = {
    name: 'incremental',
    description: 'one agent file changed in a 10k store: reloadFile + render + write (p50/p99)',
    order: 20,
    async run(ctx) {
        const store = await ensureStore(ctx.root, 10_000, ctx.log);
        const iterations = ctx.quick ? 30 : 100;
        const warmup = 5;
        ctx.log(`  10k incremental: ${warmup} warm-up + ${iterations} changes`);
        const r = await runWorker('incremental', { store, iterations, warmup });
        const t = r.timings;
        const total = summarise(t['total']);
        const goal = { text: '≤ 50 ms', max: 50 };
        return [
            { suite: 'incremental', name: '10k one change: total (p50)', unit: 'ms', stats: total, samples: t['total'], rssMB: r.rssMB, goal, detail: { ...r.detail, firstChangeMs: r.timings['first'], setupMs: r.timings['setup'] } },
            { suite: 'incremental', name: '10k one change: total (p99)', unit: 'ms', stats: total, rssMB: r.rssMB, goal: { ...goal, on: 'p99' } },
            { suite: 'incremental', name: '10k one change: reloadFile', unit: 'ms', stats: summarise(t['reload']), rssMB: r.rssMB },
            { suite: 'incremental', name: '10k one change: render', unit: 'ms', stats: summarise(t['render']), rssMB: r.rssMB },
            { suite: 'incremental', name: '10k one change: write', unit: 'ms', stats: summarise(t['write']), rssMB: r.rssMB },
            { suite: 'incremental', name: '10k first change after start', unit: 'ms', stats: summarise([r.timings['first']]), rssMB: r.rssMB },
        ];
    },
};
//# sourceMappingURL=incremental.js.map