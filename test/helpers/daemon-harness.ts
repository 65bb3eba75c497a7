/**
 * Helpers for the daemon tests: a temp copy of the sample store, a logger whose JSON lines the test
 * can read, the files a fresh render of the store on disk would produce, and a stub Applier that
 * writes real files (with the real Renderer) and can be held, scripted to fail, and watched for
 * concurrency.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import type { Logger } from '../../src/log.js';
import { createLogger } from '../../src/log.js';
import { PeerDisconnectedError } from '../../src/errors.js';
import type { Backend, Store } from '../../src/model/types.js';
import { Renderer, MODULE_OF_FILE } from '../../src/render/render.js';
import { loadTemplates } from '../../src/render/templates.js';
import { loadStore } from '../../src/store/yaml-store.js';
import type { ApplierPort, DaemonApplyReport } from '../../src/daemon/daemon.js';
import { writeFileAtomic } from '../../src/fsutil.js';
import { FakeAsterisk } from '../fakes/fake-asterisk.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURE_STORE = path.join(ROOT, 'fixtures', 'store');

/** A fresh temp directory holding `store/` (a copy of fixtures/store) and an empty `out/` path. */
export function tempStore(prefix = 'sb-daemon-'): { root: string; store: string; out: string } {
  const root = mkdtempSync(path.join(tmpdir(), prefix));
  const store = path.join(root, 'store');
  // Not the fixtures' own .extensions.json (a `render` of the fixtures may have written one).
  cpSync(FIXTURE_STORE, store, { recursive: true, filter: (src) => path.basename(src) !== '.extensions.json' });
  return { root, store, out: path.join(root, 'out') };
}

/**
 * A temp copy of the sample store and a fake Asterisk (AMI user `switchboard` with `secret`)
 * whose config directory is that store's `out/`, started; both are undone by `cleanups`.
 */
export async function storeWithFakeAsterisk(cleanups: (() => Promise<void> | void)[], secret: string): Promise<{ dirs: ReturnType<typeof tempStore>; asterisk: FakeAsterisk; port: number }> {
  const dirs = tempStore();
  cleanups.push(() => rmSync(dirs.root, { recursive: true, force: true }));
  const asterisk = new FakeAsterisk({ configDir: dirs.out, username: 'switchboard', secret, sipReloadDelayMs: 5 });
  const port = await asterisk.start();
  cleanups.push(() => asterisk.stop());
  return { dirs, asterisk, port };
}

/** An admin's edit: replaces `from` in a store file; throws when it does not match. */
export function edit(file: string, from: RegExp, to: string): void {
  const text = readFileSync(file, 'utf8');
  const next = text.replace(from, to);
  if (next === text) throw new Error(`edit: ${from} not found in ${file}`);
  writeFileSync(file, next);
}

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A pino logger (same redaction as the real one) that keeps every line as parsed JSON. */
export function captureLogger(level = 'debug'): { logger: Logger; lines: LogLine[]; raw: () => string } {
  const lines: LogLine[] = [];
  let raw = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      const text = String(chunk);
      raw += text;
      for (const l of text.split('\n')) if (l.trim()) lines.push(JSON.parse(l) as LogLine);
      cb();
    },
  });
  const logger = createLogger({ level, destination: stream });
  return { logger, lines, raw: () => raw };
}

/** What a fresh render of the store on disk gives (the state the output must converge on). */
export async function expectedFiles(storeDir: string): Promise<Map<string, string>> {
  const { store } = await loadStore(storeDir);
  if (!store) throw new Error(`expectedFiles: store ${storeDir} is invalid`);
  return new Renderer(loadTemplates()).render(store);
}

/** The rendered files in `outDir` (not the state directory). */
export function outputFiles(outDir: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(outDir)) return out;
  for (const n of readdirSync(outDir).sort()) if (n.endsWith('.conf')) out.set(n, readFileSync(path.join(outDir, n), 'utf8'));
  return out;
}

export interface StubAmi {
  readonly connected: boolean;
  action(name: string, fields?: Record<string, string | string[]>): Promise<Record<string, string>>;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Writes the rendered files (only those that changed) like the real Applier; with `ami`, refuses
 * with PeerDisconnectedError while AMI is down and sends one `Reload` per changed module.
 */
export class StubApplier implements ApplierPort {
  readonly calls: { store: Store; startedAt: number }[] = [];
  readonly reports: DaemonApplyReport[] = [];
  active = 0;
  maxActive = 0;
  private readonly failures: unknown[] = [];
  private gate: { entered: Deferred; release: Deferred } | undefined;
  private readonly renderer = new Renderer(loadTemplates());
  private previous = new Map<string, string>();
  private seq = 0;

  constructor(private readonly outDir: string, private readonly ami?: StubAmi) {}

  /** The next apply throws `err` (FIFO). */
  failNext(err: unknown): void {
    this.failures.push(err);
  }

  /** The next apply waits (after rendering, before writing) until release(). */
  hold(): { entered: Promise<void>; release: () => void } {
    const g = { entered: deferred(), release: deferred() };
    this.gate = g;
    return { entered: g.entered.promise, release: g.release.resolve };
  }

  async apply(store: Store, opts: { backend?: Backend } = {}): Promise<DaemonApplyReport> {
    const started = performance.now();
    this.calls.push({ store, startedAt: started });
    this.active += 1;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      const gate = this.gate;
      this.gate = undefined;
      if (gate) {
        gate.entered.resolve();
        await gate.release.promise;
      }
      const failure = this.failures.shift();
      if (failure) throw failure;
      if (this.ami && !this.ami.connected) throw new PeerDisconnectedError('AMI', 'action Reload');
      const files = this.renderer.render(store, opts.backend);
      mkdirSync(this.outDir, { recursive: true });
      const changedFiles: string[] = [];
      for (const [name, content] of files) {
        const target = path.join(this.outDir, name);
        const old = existsSync(target) ? readFileSync(target, 'utf8') : undefined;
        if (old !== content) {
          await writeFileAtomic(target, content, 0o644);
          changedFiles.push(name);
        }
      }
      const now = new Map(store.agents.map((a) => [a.username, JSON.stringify(a)]));
      const added = [...now.keys()].filter((u) => !this.previous.has(u));
      const removed = [...this.previous.keys()].filter((u) => !now.has(u));
      const changed = [...now.keys()].filter((u) => this.previous.has(u) && this.previous.get(u) !== now.get(u));
      const modules = changedFiles.map((f) => MODULE_OF_FILE[f]!).filter(Boolean);
      if (this.ami) for (const m of modules) await this.ami.action('Reload', { Module: m });
      this.previous = now;
      const report: DaemonApplyReport = {
        generation: `g${++this.seq}`,
        dryRun: false,
        changedFiles,
        modules,
        agents: { added, changed, removed },
        restartNeeded: [],
        verified: Boolean(this.ami),
        rolledBack: false,
        refused: [],
        reloadSent: Boolean(this.ami) && modules.length > 0,
        durationMs: performance.now() - started,
      };
      this.reports.push(report);
      return report;
    } finally {
      this.active -= 1;
    }
  }
}
