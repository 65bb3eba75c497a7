/**
 * Issue 4: 500 concurrent simulated DID calls against a fake ARI: time from StasisStart to the
 * first ARI action (p50/p99; goal ≤ 10 ms p99) and peak RSS. The daemon with call control
 * (buildDaemon: AriClient, PresenceService, CallRecords, DidWorkflow) runs in its own process on
 * the 10k store; the fake ARI (e2e/fake-ari.ts) sends the events and timestamps the requests.
 * See e2e/did-harness.ts. A paced run (one call every 10 ms) follows the burst, except in --quick.
 *
 * Warm-up: 20 calls one at a time (10 in --quick), then 10 rounds of 100 calls at once to other
 * agents, so that the burst meets a daemon whose hot paths V8 has already optimised, as in a daemon
 * that has been taking calls: after only the one-at-a-time calls, the burst's own handlers, the ws
 * frame parser and the request encoder were still being compiled (and deoptimised) during the
 * burst (seen with --trace-opt/--trace-deopt). SWITCHBOARD_BENCH_DID_COLD=1 skips the rounds.
 */
import path from 'node:path';
import type { Row, Suite } from '../suite.js';
import { summarise } from '../stats.js';
import { ensureStore } from '../stores.js';
import { runHarness } from '../e2e/common.js';
import type { DidHarnessArgs, DidHarnessResult, PhaseResult } from '../e2e/did-harness.js';

export const suite: Suite = {
  name: 'did-calls',
  description: 'issue 4: 500 DID calls at once against a fake ARI (daemon in its own process): StasisStart → first ARI action p50/p99, peak RSS',
  order: 50,
  async run(ctx) {
    const store = await ensureStore(ctx.root, 10_000, ctx.log);
    const args: DidHarnessArgs = {
      store, docsDir: path.join(ctx.root, 'test', 'fakes', 'ari-docs'),
      calls: 500, warmup: ctx.quick ? 10 : 20, pacedMs: ctx.quick ? 0 : 10,
      ...(process.env['SWITCHBOARD_BENCH_DID_COLD'] === '1' ? {} : { warmupBursts: { rounds: 10, calls: 100 } }),
    };
    // --expose-gc: the harness collects the fake's own garbage before each phase (see did-harness).
    const r = await runHarness<DidHarnessResult>('did-harness.js', args, ctx.log, ['--expose-gc']);
    if (r.failures.length) throw new Error(`the fake ARI answered errors: ${r.failures.slice(0, 3).join('; ')}`);
    const rows: Row[] = [];
    const phaseRows = (name: string, p: PhaseResult, goal: boolean): void => {
      const all = summarise(p.latency);
      const detail = {
        calls: p.calls, firstOps: p.firstOps, allSetUpMs: p.allSetUpMs, sendMs: p.sendMs, fakeCpuMs: p.fakeCpuMs, connections: p.connections,
        rssBeforeMB: p.rssBeforeMB, peakRssMB: p.peakRssMB, maxRssAfterMB: p.maxRssAfterMB, heapUsedAfterMB: p.heapUsedAfterMB,
      };
      rows.push(
        { suite: 'did-calls', name: `${name}: StasisStart → first ARI action`, unit: 'ms', stats: all, samples: p.latency, rssMB: p.peakRssMB, ...(goal ? { goal: { text: '≤ 10 ms', max: 10, on: 'p99' as const } } : {}), detail },
        { suite: 'did-calls', name: `${name}: available agent (ring)`, unit: 'ms', stats: summarise(p.latencyAvailable), samples: p.latencyAvailable },
        { suite: 'did-calls', name: `${name}: paused agent (answer)`, unit: 'ms', stats: summarise(p.latencyPaused), samples: p.latencyPaused },
        { suite: 'did-calls', name: `${name}: first StasisStart → last call set up`, unit: 'ms', stats: summarise([p.allSetUpMs]) },
        { suite: 'did-calls', name: `${name}: daemon RSS during the calls (peak, sampled)`, unit: 'MB', stats: summarise([p.peakRssMB]), detail: { before: p.rssBeforeMB } },
      );
    };
    phaseRows('500 calls at once', r.burst, true);
    if (r.paced) phaseRows(`500 calls, one per ${r.paced.pacedMs} ms`, r.paced, false);
    rows.push(
      {
        suite: 'did-calls', name: 'one call at a time (warm-up)', unit: 'ms', stats: summarise(r.warmup.latency), samples: r.warmup.latency,
        ...(r.warmup.bursts ? { detail: { warmupBursts: r.warmup.bursts } } : {}),
      },
      {
        suite: 'did-calls', name: 'daemon peak RSS (whole process: start-up, 10k store, calls)', unit: 'MB', stats: summarise([r.daemon.maxRssMB]),
        detail: { ...r.daemon, requests: r.requests, requestsOverWebSocket: r.viaWs, harnessMaxRssMB: r.harnessMaxRssMB },
      },
    );
    return rows;
  },
};
