/**
 * Applies a store to a live Asterisk: render in memory, write only the files that changed
 * (atomically, keeping what they replaced as a generation), reload only the modules that read
 * them, ask Asterisk whether it took the change, and put everything back if it did not.
 *
 * Order of one apply (all under an in-process mutex and a lock file):
 *   plan → (nothing to do: return) → AMI connected? → snapshot generation → write changed files →
 *   Reload each module (retrying "A reload is in progress") → verify → manifest → prune generations.
 * A verification failure restores the files byte for byte, reloads the same modules again and
 * throws ApplyRolledBackError; any other failure after writing (AMI dropped, timeout) restores the
 * files, reloads what it can and rethrows, so the next attempt starts from a clean state.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { PeerDisconnectedError, errorMessage, SwitchboardError } from '../errors.js';
import { fsyncDir, prepareFileAtomic, removeStaleTemps, writeFileAtomic, type PreparedFile, type WrittenStat } from '../fsutil.js';
import type { Logger } from '../log.js';
import type { Backend, Store } from '../model/types.js';
import { MODULE_OF_FILE, OUTPUT_FILES, type RenderedFiles } from '../render/render.js';
import { GENERATED_HEADER } from '../render/plan.js';
import { transportChanges, transportsOf, type Transports } from './conf.js';
import { ApplyRolledBackError } from './errors.js';
import { Generations, generationId, generationTime, type GenerationSource } from './generations.js';
import { KnownFiles, KnownManifests, hashOf, sameContent, textOf, type Content, type KnownFile } from './known.js';
import { FileLock, Mutex, writerMayBeAlive } from './lock.js';
import {
  ABSENT, AgentStateCache, FILE_OF_KIND, KINDS, MANAGED_FILES, agentStates, diffAgents, readManifest, unknownKinds, withUnknownFiles, writeManifest,
  type AgentStates, type Kind, type Manifest,
} from './manifest.js';
import { MODULE_ORDER, reloadModule } from './reload.js';
import type { AmiPort, ApplyDeps, ApplyReport, GenerationInfo, RefusedOption } from './types.js';
import { Verifier, emptyPlan, planSize, planVerification } from './verify.js';

export interface ApplyOptions {
  /** Compute the plan only: no write, no lock, no AMI. */
  dryRun?: boolean;
  /** Overrides the store's `backend`. */
  backend?: Backend;
  /**
   * Called once, right after the first `Reload` is written to AMI (not at all when none is sent):
   * work that must not delay the reload can start then. Its exceptions are logged, never thrown.
   */
  onReloadSent?: () => void;
}

/** The managed files as found on disk (undefined: no such file). */
type Current = Map<string, KnownFile | undefined>;
/** What the managed files must hold: an unchanged file's is its KnownFile itself. */
type Target = Map<string, Content | undefined>;

/**
 * What to write and reload. What only verification and the report need (the target's agent states,
 * which agents changed, transports needing a restart) is worked out by details(), once the files
 * are written and the first `Reload` is on its way, so that it never delays the reload.
 */
interface Plan {
  /** What each managed file must hold (undefined: no such file). */
  target: Target;
  changedFiles: string[];
  modules: string[];
  prevAgents: AgentStates | undefined;
  /** Kinds whose file the previous manifest marks unknown: every agent of them is verified. */
  unknownKinds: ReadonlySet<Kind>;
  /** The target's agent states; undefined when unknown (restoring a generation without a manifest). */
  nextAgentsOf: () => AgentStates | undefined;
  /** The files as found before the apply. */
  current: Current;
  detail?: PlanDetails;
}

interface PlanDetails {
  nextAgents: AgentStates | undefined;
  agents: ApplyReport['agents'];
  restartNeeded: string[];
}

const DEFAULT_RETRY = { attempts: 5, delayMs: 500 };

export class Applier {
  private readonly mutex = new Mutex();
  private readonly stateDir: string;
  private readonly keep: number;
  private readonly lock: FileLock;
  private readonly generations: Generations;
  private readonly manifestFile: string;
  /** Render-only mode (no AMI): what was last written, so reports show what changed since then.
   * Never used to skip a reload: manifest.json alone says what Asterisk has verifiably loaded. */
  private readonly writtenFile: string;
  private readonly stateCache = new AgentStateCache();
  /** What was last read or written, trusted while each file's stat is unchanged (see known.ts). */
  private readonly known = new KnownFiles();
  private readonly manifests = new KnownManifests();
  private lastIdMs = 0;

  constructor(private readonly deps: ApplyDeps) {
    this.stateDir = deps.stateDir ?? path.join(deps.outDir, '.switchboard');
    this.keep = Math.max(1, Math.floor(deps.generations ?? 5));
    this.lock = new FileLock(path.join(this.stateDir, 'apply.lock'), { logger: deps.logger.child({ component: 'apply' }) });
    this.generations = new Generations(path.join(this.stateDir, 'generations'));
    this.manifestFile = path.join(this.stateDir, 'manifest.json');
    this.writtenFile = path.join(this.stateDir, 'written.json');
  }

  /** Applies `store`; see the file comment. Calls are serialised. */
  apply(store: Store, opts: ApplyOptions = {}): Promise<ApplyReport> {
    return this.mutex.run(() => this.runApply(store, opts));
  }

  /** Puts a kept generation's files back (itself undoable: it keeps a generation of what it replaces). */
  restore(generation: string): Promise<ApplyReport> {
    return this.mutex.run(() => this.runRestore(generation));
  }

  /** Kept generations, newest first. */
  listGenerations(): Promise<GenerationInfo[]> {
    return this.generations.list();
  }

  // ---------------------------------------------------------------------------------------------

  private async runApply(store: Store, opts: ApplyOptions): Promise<ApplyReport> {
    const t0 = performance.now();
    const id = await this.newId();
    const log = this.deps.logger.child({ component: 'apply', generation: id });
    const backend = opts.backend ?? store.settings.backend;
    // Render first: a store the safety checker refuses stops here, before any lock or write.
    const rendered = this.deps.renderer.render(store, backend);
    const nextAgents = () => agentStates(store, backend, this.stateCache);
    if (opts.dryRun) {
      const current = await this.readCurrent();
      const { manifest: prev } = await this.previousManifest();
      const plan = this.makePlan(this.targetFiles(rendered, current, backend), current, prev, nextAgents);
      const report = this.report(id, t0, plan, { dryRun: true, modules: plan.modules });
      log.info(this.summary(report), 'apply dry run: nothing written, nothing sent');
      return report;
    }
    await this.lock.acquire();
    try {
      await fs.mkdir(this.deps.outDir, { recursive: true });
      const { current, prev } = await this.readState(log);
      const plan = this.makePlan(this.targetFiles(rendered, current, backend), current, prev.manifest, nextAgents);
      return await this.transition(log, id, t0, plan, current, prev, opts.onReloadSent);
    } finally {
      await this.lock.release();
    }
  }

  private async runRestore(generation: string): Promise<ApplyReport> {
    const t0 = performance.now();
    await this.lock.acquire();
    try {
      const gen = await this.generations.read(generation);
      const id = await this.newId();
      const log = this.deps.logger.child({ component: 'apply', generation: id, restoring: generation });
      const { current, prev } = await this.readState(log);
      const target: Target = new Map(MANAGED_FILES.map((f) => {
        const snap = gen.snapshot.get(f);
        return [f, snap ? { data: snap.data } : undefined];
      }));
      // The generation's manifest describes its files only if their hashes match.
      const consistent = (m: Manifest) => MANAGED_FILES.every((f) => (m.files[f] ?? ABSENT) === this.targetHash(target.get(f)));
      const allAbsent = MANAGED_FILES.every((f) => target.get(f) === undefined);
      const nextAgents = gen.manifest && consistent(gen.manifest) ? gen.manifest.agents : allAbsent ? {} : undefined;
      if (!nextAgents) log.warn('the generation has no usable record of its agents: files are restored and reloaded, but agents cannot be verified');
      const plan = this.makePlan(target, current, prev.manifest, () => nextAgents);
      const report = await this.transition(log, id, t0, plan, current, prev);
      log.info({ restored: generation }, 'generation restored');
      return report;
    } finally {
      await this.lock.release();
    }
  }

  private async transition(
    log: Logger, id: string, t0: number, plan: Plan, current: Current, prev: { manifest: Manifest | undefined; file: string }, onReloadSent?: () => void,
  ): Promise<ApplyReport> {
    const ami = this.deps.ami;
    if (!plan.changedFiles.length && !(ami && plan.modules.length)) {
      const report = this.report(id, t0, plan, { modules: [], verified: ami !== undefined });
      log.info(this.summary(report), 'apply: nothing changed');
      return report;
    }
    if (ami && !ami.connected) {
      throw new PeerDisconnectedError('AMI', 'apply (nothing was written; the next attempt starts afresh)');
    }
    const snapshot = plan.changedFiles.length > 0;
    // The new contents go to temp files (written and fsynced) while the generation is made; each
    // replaces its file only once the generation holds what it replaces.
    const snapshotting = snapshot ? this.snapshot(id, plan, current, prev) : Promise.resolve();
    snapshotting.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
    const staged = new Map<string, PreparedFile>();
    const discardStaged = async (): Promise<void> => {
      for (const p of staged.values()) await p.discard();
      staged.clear();
    };
    try {
      for (const f of plan.changedFiles) {
        const content = plan.target.get(f);
        // Text is written as it is encoded, slice by slice: no 7 MB Buffer is made and kept per
        // edit (memory only: mark-compact GCs were as frequent either way, 5-6 per 62 edits).
        if (content !== undefined) staged.set(f, await prepareFileAtomic(path.join(this.deps.outDir, f), content.text ?? content.data!, 0o640));
      }
    } catch (err) {
      await discardStaged();
      if (snapshot) await snapshotting.then(() => this.generations.remove(id), () => undefined);
      throw err;
    }
    try {
      await snapshotting;
    } catch (err) {
      await discardStaged();
      throw err;
    }
    const written: string[] = [];
    const undoFiles = async (): Promise<void> => {
      for (const f of [...written].reverse()) await this.putBack(f, current.get(f), log);
      if (snapshot) await this.generations.remove(id);
    };
    try {
      for (const f of plan.changedFiles) {
        written.push(f);
        const prepared = staged.get(f);
        staged.delete(f);
        await this.placeManaged(f, prepared, plan.target.get(f));
      }
    } catch (err) {
      await discardStaged();
      await undoFiles();
      throw err;
    }
    // The renames reach the disk while the Reload goes out (Asterisk reads the directory as it is
    // now either way); the manifest, which says they took effect, is written only after this.
    const dirSynced = fsyncDir(this.deps.outDir);

    if (!ami) {
      await dirSynced;
      await this.writeManifest(this.writtenFile, this.manifestFor(id, plan));
      await this.generations.prune(this.keep);
      const report = this.report(id, t0, plan, { modules: [] });
      log.info({ ...this.summary(report), toReload: plan.modules }, 'apply: files written, no reload sent (no AMI connection configured)');
      return report;
    }

    const retry = this.deps.reloadRetry ?? DEFAULT_RETRY;
    const reloadOpts = { attempts: retry.attempts, delayMs: retry.delayMs, timeoutMs: this.deps.reloadTimeoutMs ?? 60_000 };
    const attempted: string[] = [];
    let refused: RefusedOption[];
    try {
      const notLoaded = new Set<string>();
      for (const m of plan.modules) {
        attempted.push(m);
        const reloading = reloadModule(ami, m, reloadOpts, log);
        if (attempted.length === 1 && onReloadSent) {
          try {
            onReloadSent();
          } catch (err) {
            log.error({ err: { message: errorMessage(err) } }, 'onReloadSent failed');
          }
        }
        if (!plan.detail) {
          // The Reload is on its way (the action is written synchronously): plan the verification
          // while Asterisk reads the file.
          try {
            this.details(plan);
          } catch (err) {
            await reloading.catch(() => undefined);
            throw err;
          }
        }
        if (await reloading) continue;
        // A generated file with objects in it needs its module; an emptied stub (a driver the
        // backend no longer uses, e.g. chan_sip on Asterisk 22) does not.
        const file = MANAGED_FILES.find((f) => MODULE_OF_FILE[f] === m);
        const target = file ? plan.target.get(file) : undefined;
        if (target !== undefined && /^\[/m.test(textOf(target))) {
          throw new SwitchboardError('MODULE_NOT_LOADED', `Asterisk has no ${m} loaded, so it cannot read ${file}: load the module (modules.conf), or choose a backend without it (--backend / backend in switchboard.yaml)`, { module: m });
        }
        notLoaded.add(m);
        log.info({ module: m }, `${m} is not loaded in Asterisk and its file holds no objects: nothing to reload`);
      }
      const kinds = new Set(KINDS.filter((k) => plan.modules.includes(MODULE_OF_FILE[FILE_OF_KIND[k]]!) && !notLoaded.has(MODULE_OF_FILE[FILE_OF_KIND[k]]!)));
      const { nextAgents } = this.details(plan);
      const vplan = nextAgents ? planVerification(plan.prevAgents, nextAgents, kinds, plan.unknownKinds) : emptyPlan();
      log.debug({ objects: planSize(vplan) }, 'verifying');
      refused = await new Verifier(ami, { timeoutMs: this.deps.verifyTimeoutMs ?? 5000 }, log).run(vplan);
    } catch (err) {
      log.error({ err: { code: (err as SwitchboardError).code, message: errorMessage(err) }, reloaded: attempted }, 'apply failed before Asterisk confirmed it: restoring the previous files');
      // A module sent a Reload may run the new files (its answer may be lost) until the restored
      // ones are reloaded: if that fails too, Asterisk's state for it is unknown.
      let unsettled = attempted;
      try {
        await undoFiles();
        unsettled = await this.reloadBestEffort(ami, attempted, reloadOpts, log);
      } finally {
        await this.recordUnknown(unsettled, prev.manifest, log);
      }
      throw err;
    }

    if (refused.length) {
      // Asterisk loaded (some of) the new files: until the restored ones are reloaded, unknown.
      let unsettled = attempted;
      try {
        await undoFiles();
        let reloaded = 0;
        try {
          for (; reloaded < attempted.length; reloaded++) await reloadModule(ami, attempted[reloaded]!, reloadOpts, log);
        } catch (err) {
          log.error({ err: { message: errorMessage(err) }, modules: attempted.slice(reloaded) }, 'rollback: reloading the restored files failed; the next apply reloads them (or reload them by hand)');
        }
        unsettled = attempted.slice(reloaded);
      } finally {
        await this.recordUnknown(unsettled, prev.manifest, log);
      }
      const reloadedAgain = unsettled.length === 0;
      const report = this.report(id, t0, plan, { modules: attempted, reloadSent: true, rolledBack: true, refused });
      log.error({ ...this.summary(report), refused }, 'Asterisk refused the change: previous files restored and reloaded');
      throw new ApplyRolledBackError(report, reloadedAgain);
    }

    await dirSynced;
    await this.writeManifest(this.manifestFile, this.manifestFor(id, plan));
    await this.generations.prune(this.keep);
    const report = this.report(id, t0, plan, { modules: attempted, reloadSent: attempted.length > 0, verified: this.details(plan).nextAgents !== undefined });
    log.info(this.summary(report), 'apply done');
    return report;
  }

  /** Under the lock: the managed files and the previous manifest, once debris of a crash is gone. */
  private async readState(log: Logger): Promise<{ current: Current; prev: { manifest: Manifest | undefined; file: string } }> {
    // Independent reads (and the removal of temp files no one writes any more): side by side.
    const [, current, prev] = await Promise.all([this.removeDebris(log), this.readCurrent(), this.previousManifest()]);
    return { current, prev };
  }

  /** With AMI: what Asterisk verifiably loaded. Render-only: what was last written. */
  private async previousManifest(): Promise<{ manifest: Manifest | undefined; file: string }> {
    if (!this.deps.ami) {
      const written = await this.manifests.get(this.writtenFile, readManifest);
      if (written) return { manifest: written, file: this.writtenFile };
    }
    return { manifest: await this.manifests.get(this.manifestFile, readManifest), file: this.manifestFile };
  }

  private async writeManifest(file: string, manifest: Manifest): Promise<void> {
    const written = await writeManifest(file, manifest);
    await this.manifests.wrote(file, written, manifest);
  }

  /**
   * The generation of this apply: what the managed files hold now, and the manifest of the time.
   * A file about to be replaced is hard-linked (its inode leaves the output directory with the
   * rename, so the generation holds it alone); an unchanged file is hard-linked from the copy an
   * earlier generation made of the same content when there is one, else copied (once per content).
   * The live, unchanged files are never linked: someone may edit them in place.
   */
  private async snapshot(id: string, plan: Plan, current: Current, prev: { manifest: Manifest | undefined; file: string }): Promise<void> {
    const sources = new Map<string, GenerationSource | undefined>();
    for (const f of MANAGED_FILES) {
      const k = current.get(f);
      if (!k) {
        sources.set(f, undefined);
        continue;
      }
      const link = plan.changedFiles.includes(f) ? { path: path.join(this.deps.outDir, f), ...k.key } : k.copy;
      sources.set(f, { data: k.data ?? k.text!, mode: k.mode, ...(link ? { link } : {}) });
    }
    const manifestKey = prev.manifest ? await this.manifests.current(prev.file) : undefined;
    const placed = await this.generations.create(id, sources, prev.manifest, manifestKey && { path: prev.file, ...manifestKey });
    for (const f of MANAGED_FILES) {
      const k = current.get(f);
      const at = placed.get(f);
      if (k && at && !plan.changedFiles.includes(f)) k.copy = at;
    }
  }

  /** sha256 of a target file's content (remembered with the content: hashed once). */
  private targetHash(content: Content | undefined): string {
    return content === undefined ? ABSENT : hashOf(content);
  }

  /** What a generation's files and agents are, as recorded once they are written (and verified). */
  private manifestFor(generation: string, plan: Plan): Manifest {
    return {
      version: 1,
      generation,
      appliedAt: new Date().toISOString(),
      files: Object.fromEntries(MANAGED_FILES.map((f) => [f, this.targetHash(plan.target.get(f))])),
      agents: this.details(plan).nextAgents ?? {},
    };
  }

  private makePlan(target: Target, current: Current, prev: Manifest | undefined, nextAgentsOf: () => AgentStates | undefined): Plan {
    const changedFiles = MANAGED_FILES.filter((f) => !sameContent(target.get(f), current.get(f)));
    // A changed file is reloaded anyway: only unchanged ones are hashed (remembered with the file).
    const reloadFiles = MANAGED_FILES.filter(
      (f) => changedFiles.includes(f) || (target.get(f) !== undefined && (!prev || prev.files[f] !== this.targetHash(target.get(f)))),
    );
    const modules = MODULE_ORDER.filter((m) => reloadFiles.some((f) => MODULE_OF_FILE[f] === m));
    return { target, current, changedFiles, modules, prevAgents: prev?.agents, unknownKinds: unknownKinds(prev), nextAgentsOf };
  }

  /** The rest of the plan (see Plan), worked out once. */
  private details(plan: Plan): PlanDetails {
    if (plan.detail) return plan.detail;
    const nextAgents = plan.nextAgentsOf();
    const agents = nextAgents ? diffAgents(plan.prevAgents ?? {}, nextAgents) : { added: [], changed: [], removed: [] };
    let restartNeeded: string[] = [];
    const pj = OUTPUT_FILES.pjsip;
    if (plan.changedFiles.includes(pj)) {
      const before = plan.current.get(pj);
      const after = plan.target.get(pj);
      // Kept with the contents: the target's becomes the written file's (known.wrote).
      const beforeTransports = before ? (before.transports ??= transportsOf(textOf(before))) : new Map();
      const afterTransports: Transports = after ? (after.transports ??= transportsOf(textOf(after))) : new Map();
      restartNeeded = transportChanges(beforeTransports, afterTransports);
    }
    return (plan.detail = { nextAgents, agents, restartNeeded });
  }

  /**
   * The rendered files; a managed file the backend no longer renders (pjsip → sip) but that exists
   * becomes a comment-only file, so its agents go away while pjsip.conf's #include still finds it.
   */
  private targetFiles(rendered: RenderedFiles, current: Current, backend: Backend): Target {
    const target: Target = new Map();
    for (const f of MANAGED_FILES) {
      const cur = current.get(f);
      const text = rendered.get(f) ?? (cur ? stub(f, backend) : undefined);
      // The text this file was written from last time (usually the very same string): unchanged.
      target.set(f, text === undefined ? undefined : cur?.text !== undefined && cur.text === text ? cur : { text });
    }
    return target;
  }

  private report(id: string, t0: number, plan: Plan, extra: Partial<ApplyReport> & { modules: string[] }): ApplyReport {
    const { agents, restartNeeded } = this.details(plan);
    return {
      generation: id,
      dryRun: false,
      changedFiles: plan.changedFiles,
      agents,
      restartNeeded,
      verified: false,
      rolledBack: false,
      refused: [],
      reloadSent: false,
      ...extra,
      durationMs: Math.round(performance.now() - t0),
    };
  }

  /** Fields of the one summary log line (counts and names, never file contents). */
  private summary(r: ApplyReport): Record<string, unknown> {
    return {
      added: r.agents.added.length,
      changed: r.agents.changed.length,
      removed: r.agents.removed.length,
      files: r.changedFiles,
      modules: r.modules,
      ...(r.restartNeeded.length ? { restartNeeded: r.restartNeeded } : {}),
      verified: r.verified,
      ms: r.durationMs,
    };
  }

  /** The managed files: remembered contents where their stat is unchanged, the others read (see known.ts). */
  private async readCurrent(): Promise<Current> {
    const found = await Promise.all(MANAGED_FILES.map((f) => this.known.read(path.join(this.deps.outDir, f))));
    return new Map(MANAGED_FILES.map((f, i) => [f, found[i]]));
  }

  /** Puts a prepared file (its temp file holds `content`) in place, or removes the file (no content). */
  private async placeManaged(f: string, prepared: PreparedFile | undefined, content: Content | undefined): Promise<void> {
    const file = path.join(this.deps.outDir, f);
    this.known.forget(file);
    if (content === undefined) {
      await prepared?.discard();
      await fs.rm(file, { force: true });
      await fsyncDir(this.deps.outDir);
    } else {
      let written: WrittenStat;
      if (prepared) {
        // The directory is fsynced once, after every file is in place (see transition).
        await prepared.commit({ syncDir: false });
        written = prepared.written;
      } else {
        written = await writeFileAtomic(file, content.text ?? content.data!, 0o640);
      }
      await this.known.wrote(file, written, content);
    }
  }

  private async putBack(f: string, snap: KnownFile | undefined, log: Logger): Promise<void> {
    const file = path.join(this.deps.outDir, f);
    this.known.forget(file);
    try {
      if (!snap) {
        await fs.rm(file, { force: true });
        await fsyncDir(this.deps.outDir);
      } else {
        const written = await writeFileAtomic(file, snap.text ?? snap.data!, snap.mode || 0o640);
        await this.known.wrote(file, written, snap);
      }
    } catch (err) {
      log.error({ file: f, err: { message: errorMessage(err) } }, 'could not restore a file; restore the previous generation by hand');
      throw err;
    }
  }

  /** Reloads `modules` (their restored files); resolves with those that could not be reloaded. */
  private async reloadBestEffort(ami: AmiPort, modules: string[], opts: { attempts: number; delayMs: number; timeoutMs: number }, log: Logger): Promise<string[]> {
    if (!modules.length) return [];
    if (!ami.connected) {
      log.warn({ modules }, 'AMI is down: the restored files are reloaded by the next apply');
      return modules;
    }
    const failed: string[] = [];
    for (const m of modules) {
      try {
        await reloadModule(ami, m, { ...opts, attempts: Math.min(opts.attempts, 2) }, log);
      } catch (err) {
        failed.push(m);
        log.warn({ module: m, err: { message: errorMessage(err) } }, 'reloading the restored file failed; the next apply reloads it');
      }
    }
    return failed;
  }

  /**
   * Records in the manifest that Asterisk may run either the old or the new files of `modules`
   * (their Reload went out, and reloading the restored files did not succeed), so that the next
   * apply reloads and verifies them even when the store is back to what the manifest held: without
   * this, it would find the files "unchanged" and leave Asterisk on unverified config.
   */
  private async recordUnknown(modules: readonly string[], prev: Manifest | undefined, log: Logger): Promise<void> {
    const files = MANAGED_FILES.filter((f) => modules.includes(MODULE_OF_FILE[f]!));
    if (!files.length) return;
    if (!prev) {
      log.warn({ modules }, 'Asterisk may run the old or the new files of these modules; with no manifest, the next apply reloads and verifies every file anyway');
      return;
    }
    try {
      await this.writeManifest(this.manifestFile, withUnknownFiles(prev, files));
      log.warn({ modules, files }, 'Asterisk may run the old or the new files of these modules: recorded as unknown, so the next apply reloads and verifies them');
    } catch (err) {
      log.error({ modules, err: { message: errorMessage(err) } }, `could not record that Asterisk may run the old or the new files of these modules: reload them by hand (or remove ${this.manifestFile})`);
    }
  }

  /** Temp files of a crashed write, temp generations, and lock debris of dead processes. */
  private async removeDebris(log: Logger): Promise<void> {
    // Only temp files of dead writers: another process may be writing into /etc/asterisk right now
    // (a `render --out`), and its temp file must survive until its rename.
    const removed = (
      await Promise.all([removeStaleTemps(this.deps.outDir, writerMayBeAlive), removeStaleTemps(this.stateDir, writerMayBeAlive), this.generations.removeTemps()])
    ).flat();
    let names: string[] = [];
    try {
      names = await fs.readdir(this.stateDir);
    } catch {
      // No state dir yet.
    }
    for (const n of names) {
      const m = /^apply\.lock\.(?:stale\.)?(\d+)\./.exec(n);
      if (!m) continue;
      const st = await fs.lstat(path.join(this.stateDir, n)).catch(() => undefined);
      if (st && !writerMayBeAlive(Number(m[1]), st.mtimeMs)) {
        await fs.rm(path.join(this.stateDir, n), { force: true });
        removed.push(n);
      }
    }
    if (removed.length) log.warn({ removed }, 'removed temp files left by an interrupted apply');
  }

  /** A generation id later than every existing one (ids sort by time). */
  private async newId(): Promise<string> {
    const newest = await this.generations.newest();
    const ms = Math.max(Date.now(), this.lastIdMs + 1, newest ? generationTime(newest) + 1 : 0);
    this.lastIdMs = ms;
    return generationId(ms);
  }
}

function stub(file: string, backend: Backend): string {
  const driver = file === OUTPUT_FILES.pjsip ? 'pjsip' : 'chan_sip';
  return [...GENERATED_HEADER, `The store's backend is "${backend}": no agent uses ${driver}, so this file defines nothing.`]
    .map((l) => `; ${l}\n`)
    .join('');
}

