/**
 * Shared set-up for the apply tests: a copy of the sample store in a temp dir, a fake Asterisk
 * reading the output dir, a real AmiClient logged in to it, an Applier, and a logger that keeps
 * what it was given (to prove secrets never reach it).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import { AmiClient } from '../../src/asterisk/ami/client.js';
import { Applier } from '../../src/apply/index.js';
import type { ApplyDeps } from '../../src/apply/index.js';
import type { Store } from '../../src/model/types.js';
import { Renderer } from '../../src/render/render.js';
import { loadTemplates } from '../../src/render/templates.js';
import { loadStore } from '../../src/store/yaml-store.js';
import { FakeAsterisk, type FakeAsteriskOptions } from '../fakes/fake-asterisk.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURE_STORE = path.join(REPO, 'fixtures', 'store');
export const AMI_USER = 'switchboard';
export const AMI_SECRET = 'Ami-Secret-9f27c1d4';

export function memoryLogger(): { logger: Logger; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  // No redaction: apply itself must never hand a secret or file contents to the logger.
  return { logger: pino({ level: 'trace' }, stream), text: () => chunks.join('') };
}

export async function tempDir(prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `switchboard-${prefix}-`));
}

export async function copyDir(from: string, to: string): Promise<void> {
  await fs.cp(from, to, { recursive: true });
}

/** Replaces `search` by `replace` in one agent file of the store copy (throws if absent). */
export async function editAgent(storeDir: string, file: string, search: string | RegExp, replace: string): Promise<void> {
  const p = path.join(storeDir, 'agents', file);
  const text = await fs.readFile(p, 'utf8');
  const next = text.replace(search, replace);
  if (next === text) throw new Error(`editAgent: ${String(search)} not found in ${file}`);
  await fs.writeFile(p, next);
}

export async function load(storeDir: string): Promise<Store> {
  const r = await loadStore(storeDir);
  if (!r.store) throw new Error(`store invalid:\n${r.issues.map((i) => i.message).join('\n')}`);
  return r.store;
}

export interface Env {
  root: string;
  storeDir: string;
  outDir: string;
  stateDir: string;
  asterisk: FakeAsterisk;
  client: AmiClient;
  applier: Applier;
  log: ReturnType<typeof memoryLogger>;
  renderer: Renderer;
  makeApplier(extra?: Partial<ApplyDeps>): Applier;
  close(): Promise<void>;
}

export async function setupEnv(opts: { fake?: Partial<FakeAsteriskOptions>; deps?: Partial<ApplyDeps>; connect?: boolean } = {}): Promise<Env> {
  const root = await tempDir('apply');
  const storeDir = path.join(root, 'store');
  const outDir = path.join(root, 'asterisk');
  await copyDir(FIXTURE_STORE, storeDir);
  await fs.mkdir(outDir);
  const asterisk = new FakeAsterisk({ configDir: outDir, username: AMI_USER, secret: AMI_SECRET, sipReloadDelayMs: 10, ...opts.fake });
  const port = await asterisk.start();
  const log = memoryLogger();
  const client = new AmiClient(
    { host: '127.0.0.1', port, username: AMI_USER, secret: AMI_SECRET, connectTimeoutMs: 1000, actionTimeoutMs: 2000, reconnectInitialMs: 5, reconnectMaxMs: 50 },
    log.logger,
  );
  if (opts.connect ?? true) {
    client.start();
    await client.waitConnected(2000);
  }
  const renderer = new Renderer(loadTemplates());
  const makeApplier = (extra: Partial<ApplyDeps> = {}): Applier =>
    new Applier({
      renderer,
      outDir,
      ami: client,
      logger: log.logger,
      reloadRetry: { attempts: 4, delayMs: 5 },
      verifyTimeoutMs: 500,
      ...opts.deps,
      ...extra,
    });
  return {
    root,
    storeDir,
    outDir,
    stateDir: path.join(outDir, '.switchboard'),
    asterisk,
    client,
    applier: makeApplier(),
    log,
    renderer,
    makeApplier,
    close: async () => {
      await client.stop();
      await asterisk.stop();
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}

/** The managed files in `dir` (name → content), for byte-for-byte comparisons. */
export async function readFiles(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const n of (await fs.readdir(dir)).sort()) {
    if (n.endsWith('_switchboard.conf')) out.set(n, await fs.readFile(path.join(dir, n)));
  }
  return out;
}
