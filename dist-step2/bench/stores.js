/**
 * Generated stores are cached under `.bench/stores/` (gitignored) and reused while the generator
 * version, size and seed are the same: writing 100k files is slower than the benchmark itself.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { GENERATOR_VERSION, generateStore } from './generate.js';
import { YamlStore } from '../store/yaml-store.js';
const MARKER = '.bench-store.json';
/**
 * Present while a benchmark has agent files modified (its first line is that process's pid); a
 * store left with it by a process that is gone is rebuilt, one whose process still runs is waited for.
 */
export const DIRTY = '.bench-dirty';
/** How long ensureStore waits for another run to put the store's agent files back. */
const DIRTY_WAIT_MS = 10 * 60_000;
/** The pid in the store's dirty marker when that process is still running, else undefined. */
async function liveDirtyPid(dir) {
    const text = await fs.readFile(path.join(dir, DIRTY), 'utf8').catch(() => undefined);
    const pid = text === undefined ? NaN : Number(text.split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid)
        return undefined;
    try {
        process.kill(pid, 0);
        return pid;
    }
    catch (err) {
        return err.code === 'EPERM' ? pid : undefined;
    }
}
export const DEFAULT_SEED = 20240611;
export function storeDir(root, n, seed = DEFAULT_SEED) {
    return path.join(root, '.bench', 'stores', `agents-${n}-seed-${seed}`);
}
async function exists(p) {
    try {
        await fs.access(p);
        return true;
    }
    catch {
        return false;
    }
}
/**
 * Returns the directory of a valid generated store of n agents, generating it when missing or
 * stale. The store is then loaded once and its auto-assigned extensions saved, as the first
 * `switchboard render` would: every measurement then sees the same steady-state store.
 */
export async function ensureStore(root, n, log, seed = DEFAULT_SEED) {
    const dir = storeDir(root, n, seed);
    const want = JSON.stringify({ version: GENERATOR_VERSION, agents: n, seed });
    const marker = path.join(dir, MARKER);
    const have = await fs.readFile(marker, 'utf8').catch(() => '');
    if (have === want) {
        // Another run (a concurrent benchmark on the same checkout) has agent files modified: wait
        // for it to put them back rather than delete the store under it.
        const pid = await liveDirtyPid(dir);
        if (pid !== undefined) {
            log(`waiting for process ${pid} to restore the agent files of ${path.relative(root, dir)} ...`);
            const until = Date.now() + DIRTY_WAIT_MS;
            while ((await liveDirtyPid(dir)) !== undefined && Date.now() < until)
                await new Promise((r) => setTimeout(r, 200));
        }
        if (!(await exists(path.join(dir, DIRTY))))
            return dir;
    }
    log(`generating a store of ${n} agents (seed ${seed}) in ${path.relative(root, dir)} ...`);
    const t0 = performance.now();
    await fs.rm(dir, { recursive: true, force: true });
    await generateStore(dir, n, seed);
    const source = new YamlStore(dir);
    const r = await source.loadAll();
    if (!r.store) {
        const errors = r.issues.filter((i) => i.severity === 'error');
        throw new Error(`generated store is invalid (${errors.length} errors), first: ${errors[0]?.message}`);
    }
    await source.saveAssignments(r.store);
    await fs.writeFile(marker, want);
    log(`  generated in ${((performance.now() - t0) / 1000).toFixed(1)} s (${r.issues.length} warnings)`);
    return dir;
}
//# sourceMappingURL=stores.js.map