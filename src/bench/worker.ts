/**
 * One measurement, run in its own process by the suites (see child.ts):
 *
 *   node dist/bench/worker.js load        '{"store":DIR}'
 *   node dist/bench/worker.js render      '{"store":DIR}'
 *   node dist/bench/worker.js render-once '{"store":DIR}'
 *   node dist/bench/worker.js incremental '{"store":DIR,"iterations":50,"warmup":5}'
 *
 * It drives the same classes the CLI and the daemon use (YamlStore, loadTemplates, Renderer,
 * writeFileAtomic) and prints one JSON line: timings (ms), peak RSS (MB) and details.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadStore, YamlStore, type LoadResult } from '../store/yaml-store.js';
import { loadTemplates } from '../render/templates.js';
import { Renderer, type RenderedFiles } from '../render/render.js';
import { renderToDir } from '../render/to-dir.js';
import { writeFileAtomic } from '../fsutil.js';
import type { Store } from '../model/types.js';
import { toggleCodecs } from './generate.js';
import { DIRTY } from './stores.js';
import type { WorkerResult } from './child.js';

const now = () => performance.now();
/** Process CPU time (user + system, all threads: GC helpers included) in ms. */
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const rssMB = () => process.resourceUsage().maxRSS / 1024;

function valid(r: LoadResult, dir: string): Store {
  if (!r.store) {
    const first = r.issues.find((i) => i.severity === 'error');
    throw new Error(`store ${dir} is invalid: ${first?.message ?? 'unknown error'}`);
  }
  return r.store;
}

/**
 * Writes each rendered file whose content differs from what was last written (as the CLI and the
 * daemon do: unchanged files are not touched), atomically. Returns the names written.
 */
async function writeChanged(out: string, files: RenderedFiles, written: Map<string, string>): Promise<string[]> {
  const names: string[] = [];
  for (const [name, content] of files) {
    if (written.get(name) === content) continue;
    await writeFileAtomic(path.join(out, name), content, 0o640);
    written.set(name, content);
    names.push(name);
  }
  return names;
}

async function tempOut(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'switchboard-bench-out-'));
}

async function taskLoad(args: { store: string }): Promise<WorkerResult> {
  const c0 = cpu();
  const t0 = now();
  const r = await new YamlStore(args.store).loadAll();
  const t1 = now();
  const c1 = cpu();
  const store = valid(r, args.store);
  return {
    task: 'load',
    timings: { load: t1 - t0, loadCpu: c1 - c0 },
    rssMB: rssMB(),
    detail: { agents: store.agents.length, warnings: r.issues.length, heapUsedMB: process.memoryUsage().heapUsed / 1048576 },
  };
}

async function taskRender(args: { store: string }): Promise<WorkerResult> {
  const out = await tempOut();
  try {
    // The templates first, then the store, as the CLI (render, diff, apply) and the daemon do.
    const t0 = now();
    const renderer = new Renderer(loadTemplates());
    const t1 = now();
    const store = valid(await new YamlStore(args.store).loadAll(), args.store);
    const c2 = cpu();
    const t2 = now();
    const files = renderer.render(store);
    const t3 = now();
    const written = new Map<string, string>();
    const first = await writeChanged(out, files, written);
    const t4 = now();
    const c4 = cpu();
    const again = renderer.render(store);
    const t5 = now();
    const second = await writeChanged(out, again, written);
    const t6 = now();
    const bytes = [...files.values()].reduce((n, c) => n + Buffer.byteLength(c), 0);
    return {
      task: 'render',
      timings: { templates: t1 - t0, load: t2 - t1, render: t3 - t2, write: t4 - t3, renderWriteCpu: c4 - c2, rerender: t5 - t4, rewrite: t6 - t5 },
      rssMB: rssMB(),
      detail: { agents: store.agents.length, files: first.length, bytes, rewritten: second.length },
    };
  } finally {
    await fs.rm(out, { recursive: true, force: true });
  }
}

/**
 * `switchboard render`'s path: load, then render straight into a fresh directory with
 * renderToDir (no cache, output streamed to temp files, each committed atomically). Render and
 * write overlap there, so they are timed together.
 */
async function taskRenderOnce(args: { store: string }): Promise<WorkerResult> {
  const out = await tempOut();
  try {
    // The templates first, then the store, as `switchboard render` does.
    const t0 = now();
    const renderer = new Renderer(loadTemplates());
    const t1 = now();
    // loadStore, as the CLI: a store read once keeps no per-file drafts.
    const store = valid(await loadStore(args.store), args.store);
    const c2 = cpu();
    const t2 = now();
    const files = await renderToDir(renderer, store, undefined, out);
    const t3 = now();
    const c3 = cpu();
    return {
      task: 'render-once',
      timings: { templates: t1 - t0, load: t2 - t1, renderWrite: t3 - t2, renderWriteCpu: c3 - c2 },
      rssMB: rssMB(),
      detail: { agents: store.agents.length, files: files.length, bytes: files.reduce((n, f) => n + f.bytes, 0) },
    };
  } finally {
    await fs.rm(out, { recursive: true, force: true });
  }
}

async function taskIncremental(args: { store: string; iterations: number; warmup: number }): Promise<WorkerResult> {
  const t0 = now();
  const source = new YamlStore(args.store);
  let store = valid(await source.loadAll(), args.store);
  const renderer = new Renderer(loadTemplates());
  const out = await tempOut();
  const written = new Map<string, string>();
  await writeChanged(out, renderer.render(store), written);
  const setup = now() - t0;

  const originals = new Map<string, string>();
  const dirty = path.join(args.store, DIRTY);
  // The pid first: ensureStore (another benchmark run on the same store) waits for a live run
  // instead of regenerating the store under it.
  await fs.writeFile(dirty, `${process.pid}\nagent files modified by the incremental benchmark\n`);
  const reload: number[] = [];
  const render: number[] = [];
  const write: number[] = [];
  const total: number[] = [];
  let first: number | undefined;
  let filesWritten = 0;
  try {
    const agentFiles = store.agents.map((a) => a.file);
    const count = args.warmup + args.iterations;
    for (let j = 0; j < count; j++) {
      // Spread the edits over the store (a stride coprime with typical sizes).
      const rel = agentFiles[(j * 7919 + 17) % agentFiles.length]!;
      const abs = path.join(args.store, rel);
      const before = await fs.readFile(abs, 'utf8');
      if (!originals.has(abs)) originals.set(abs, before);
      await fs.writeFile(abs, toggleCodecs(before));

      const a = now();
      store = valid(await source.reloadFile(abs), args.store);
      const b = now();
      const files = renderer.render(store);
      const c = now();
      const names = await writeChanged(out, files, written);
      const d = now();
      if (!names.includes('pjsip_switchboard.conf')) throw new Error(`editing ${rel} did not change pjsip_switchboard.conf: the benchmark is not measuring a real change`);
      filesWritten += names.length;
      if (j === 0) first = d - a;
      if (j < args.warmup) continue;
      reload.push(b - a);
      render.push(c - b);
      write.push(d - c);
      total.push(d - a);
    }
  } finally {
    for (const [abs, text] of originals) await fs.writeFile(abs, text);
    await fs.rm(dirty, { force: true });
    await fs.rm(out, { recursive: true, force: true });
  }
  return {
    task: 'incremental',
    timings: { setup, first: first ?? NaN, reload, render, write, total },
    rssMB: rssMB(),
    detail: { agents: store.agents.length, iterations: args.iterations, warmup: args.warmup, filesWrittenPerChange: filesWritten / (args.warmup + args.iterations) },
  };
}

const TASKS: Record<string, (args: never) => Promise<WorkerResult>> = {
  load: taskLoad,
  render: taskRender,
  'render-once': taskRenderOnce,
  incremental: taskIncremental,
};

const [task, json] = process.argv.slice(2);
const fn = task ? TASKS[task] : undefined;
if (!fn) {
  process.stderr.write(`usage: worker.js ${Object.keys(TASKS).join('|')} '{"store":"DIR",...}'\n`);
  process.exit(2);
}
try {
  const result = await fn(JSON.parse(json ?? '{}') as never);
  process.stdout.write(JSON.stringify(result) + '\n');
} catch (err) {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
}
