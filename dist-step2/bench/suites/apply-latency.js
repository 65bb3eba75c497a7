import { summarise } from '../stats.js';
import { ensureStore } from '../stores.js';
import { runHarness } from '../e2e/common.js';
export const DEBOUNCES = [150, 20];
export const suite = {
    name: 'apply-latency',
    description: 'issue 3: 10k store, file save → AMI Reload at a fake Asterisk (daemon in its own process), p50/p99 after the debounce',
    order: 40,
    async run(ctx) {
        const store = await ensureStore(ctx.root, 10_000, ctx.log);
        const edits = ctx.quick ? 10 : 100;
        const warmup = ctx.quick ? 2 : 5;
        const rows = [];
        for (const debounceMs of ctx.quick ? DEBOUNCES.slice(0, 1) : DEBOUNCES) {
            ctx.log(`  debounce ${debounceMs} ms: ${warmup} warm-up + ${edits} edits`);
            const args = { store, debounceMs, edits, warmup };
            const r = await runHarness('apply-harness.js', args, ctx.log);
            const d = `debounce ${debounceMs}`;
            const detail = {
                debounceMs, edits, warmup, agents: r.agents, pjsipBytes: r.pjsipBytes, firstApply: r.first,
                harnessMaxRssMB: r.harnessMaxRssMB, saveToReloadRaw: r.saveToReload,
            };
            rows.push({ suite: 'apply-latency', name: `10k save → Reload, after debounce (${d})`, unit: 'ms', stats: summarise(r.afterDebounce), samples: r.afterDebounce, rssMB: r.daemonMaxRssMB, goal: { text: '≤ 100 ms', max: 100, on: 'p99' }, detail }, { suite: 'apply-latency', name: `10k save → Reload, raw (${d})`, unit: 'ms', stats: summarise(r.saveToReload), samples: r.saveToReload }, { suite: 'apply-latency', name: `10k save → watcher event (${d})`, unit: 'ms', stats: summarise(r.saveToEvent), samples: r.saveToEvent }, { suite: 'apply-latency', name: `10k event + debounce → Reload (${d})`, unit: 'ms', stats: summarise(r.eventToReloadAfterDebounce), samples: r.eventToReloadAfterDebounce }, { suite: 'apply-latency', name: `10k fake reload (Reload → answer) (${d})`, unit: 'ms', stats: summarise(r.reloadToAnswer), samples: r.reloadToAnswer }, { suite: 'apply-latency', name: `10k answer → verified + applied (${d})`, unit: 'ms', stats: summarise(r.answerToApplied), samples: r.answerToApplied }, { suite: 'apply-latency', name: `10k save → apply done (${d})`, unit: 'ms', stats: summarise(r.saveToApplied), samples: r.saveToApplied, rssMB: r.daemonMaxRssMB }, { suite: 'apply-latency', name: `10k applier durationMs (${d})`, unit: 'ms', stats: summarise(r.applyDuration), samples: r.applyDuration });
            if (debounceMs === DEBOUNCES[0]) {
                rows.push({ suite: 'apply-latency', name: '10k daemon start + first apply (10k verified)', unit: 'ms', stats: summarise([r.first.startMs]), rssMB: r.first.maxRssMB, detail: r.first });
            }
        }
        return rows;
    },
};
//# sourceMappingURL=apply-latency.js.map