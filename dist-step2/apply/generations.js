import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fsyncDir, isWritten } from '../fsutil.js';
import { SwitchboardError, errorMessage } from '../errors.js';
import { readManifest } from './manifest.js';
const ID_RE = /^\d{8}T\d{6}-\d{3}Z-[0-9a-f]{6}$/;
const META = 'meta.json';
const MANIFEST = 'manifest.json';
/** `20250102T030405-678Z-a1b2c3`: sortable by time, safe as a directory name and on a command line. */
export function generationId(ms) {
    const iso = new Date(ms).toISOString(); // 2025-01-02T03:04:05.678Z
    const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}-${iso.slice(20, 23)}Z`;
    return `${stamp}-${randomBytes(3).toString('hex')}`;
}
export function generationTime(id) {
    const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})-(\d{3})Z/.exec(id);
    if (!m)
        return 0;
    return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], +m[7]);
}
/**
 * Snapshots of the managed files as they were before an apply overwrote them, one directory per
 * generation under `<stateDir>/generations/`, written to a temp directory and renamed into place
 * (a crash leaves either a complete generation or a temp directory that the next apply removes).
 */
export class Generations {
    dir;
    constructor(dir) {
        this.dir = dir;
    }
    /**
     * Creates generation `id` from `files` (name → its content, or undefined when there was no
     * such file) and `manifest` (what Asterisk had loaded then).
     *
     * A file with `link` is hard-linked from there instead of copied, when the file found there is
     * still that inode with that size and mtime (checked after linking; otherwise the link is
     * removed and the content copied as before). The Applier links only files no one writes in place:
     * a managed file it is about to replace by rename (so the old inode ends up in this generation
     * alone), or a copy inside an earlier generation. Likewise `manifestLink`, the manifest file the
     * Applier wrote atomically (it is only ever replaced, never rewritten in place); without it the
     * manifest is embedded in meta.json as before. Resolves with where each file now is.
     */
    async create(id, files, manifest, manifestLink) {
        await fs.mkdir(this.dir, { recursive: true, mode: 0o750 });
        const tmp = path.join(this.dir, `.${id}.tmp`);
        await fs.rm(tmp, { recursive: true, force: true });
        await fs.mkdir(tmp, { mode: 0o750 });
        const meta = { id, createdAt: new Date().toISOString(), files: [], absent: [], modes: {} };
        const placed = new Map();
        for (const [name, src] of files) {
            if (!src) {
                meta.absent.push(name);
                continue;
            }
            const dest = path.join(tmp, name);
            const st = (src.link && (await linkChecked(src.link, dest))) || (await writeSynced(dest, src.data, 0o640));
            placed.set(name, { path: path.join(this.dir, id, name), ino: st.ino, size: st.size, mtimeMs: st.mtimeMs });
            meta.files.push(name);
            meta.modes[name] = src.mode;
        }
        if (manifest) {
            if (manifestLink && (await linkChecked(manifestLink, path.join(tmp, MANIFEST))))
                meta.manifestFile = MANIFEST;
            else
                meta.manifest = manifest;
        }
        await writeSynced(path.join(tmp, META), JSON.stringify(meta) + '\n', 0o640);
        await fsyncDir(tmp);
        await fs.rename(tmp, path.join(this.dir, id));
        await fsyncDir(this.dir);
        return placed;
    }
    /** Newest first. */
    async list() {
        const out = [];
        for (const id of (await this.ids()).reverse()) {
            try {
                const meta = await this.meta(id);
                out.push({ id, createdAt: meta.createdAt, files: [...meta.files].sort() });
            }
            catch {
                // A damaged generation is skipped (and pruned in time).
            }
        }
        return out;
    }
    async read(id) {
        const ids = ID_RE.test(id) ? await this.ids() : [];
        if (!ids.includes(id)) {
            const known = (ID_RE.test(id) ? ids : await this.ids()).reverse().slice(0, 10);
            throw new SwitchboardError('GENERATION_NOT_FOUND', `generation ${JSON.stringify(id)} does not exist in ${this.dir}; ` + (known.length ? `kept generations: ${known.join(', ')}` : 'no generation is kept yet'), { id });
        }
        const meta = await this.meta(id);
        const snapshot = new Map();
        for (const name of meta.absent)
            snapshot.set(name, undefined);
        for (const name of meta.files) {
            snapshot.set(name, { data: await fs.readFile(path.join(this.dir, id, name)), mode: meta.modes[name] ?? 0o640 });
        }
        const manifest = meta.manifest ?? (meta.manifestFile ? await readManifest(path.join(this.dir, id, meta.manifestFile)) : undefined);
        return { snapshot, manifest, createdAt: meta.createdAt };
    }
    async remove(id) {
        if (!ID_RE.test(id))
            return;
        await fs.rm(path.join(this.dir, id), { recursive: true, force: true });
    }
    /** Keeps the `keep` newest generations. Returns the ids removed. */
    async prune(keep) {
        const ids = await this.ids();
        const drop = ids.slice(0, Math.max(0, ids.length - Math.max(1, keep)));
        for (const id of drop)
            await this.remove(id);
        return drop;
    }
    /** Removes temp directories a crash left behind. */
    async removeTemps() {
        let names = [];
        try {
            names = await fs.readdir(this.dir);
        }
        catch {
            return [];
        }
        const stale = names.filter((n) => /^\..+\.tmp$/.test(n));
        for (const n of stale)
            await fs.rm(path.join(this.dir, n), { recursive: true, force: true });
        return stale;
    }
    /** Newest id (for keeping ids increasing), if any. */
    async newest() {
        const ids = await this.ids();
        return ids[ids.length - 1];
    }
    /** Oldest first. */
    async ids() {
        try {
            return (await fs.readdir(this.dir)).filter((n) => ID_RE.test(n)).sort();
        }
        catch (err) {
            if (err.code === 'ENOENT')
                return [];
            throw err;
        }
    }
    async meta(id) {
        const file = path.join(this.dir, id, META);
        const text = await fs.readFile(file, 'utf8');
        try {
            return JSON.parse(text);
        }
        catch (err) {
            throw new SwitchboardError('GENERATION_DAMAGED', `generation ${id} is damaged: ${file} is not JSON (${errorMessage(err)}); restore another generation`, { id, file });
        }
    }
}
async function writeSynced(file, data, mode) {
    const h = await fs.open(file, 'w', mode);
    try {
        await h.writeFile(data);
        await h.sync();
        return await h.stat();
    }
    finally {
        await h.close();
    }
}
/**
 * Hard-links `src.path` to `dest` if it is still the inode `src` describes (same size and mtime):
 * the linked file's stat, or undefined (nothing left at dest) when it is not or cannot be linked
 * (gone, another file system, links not supported).
 */
async function linkChecked(src, dest) {
    try {
        await fs.link(src.path, dest);
    }
    catch {
        return undefined;
    }
    const st = await fs.lstat(dest);
    if (st.isFile() && isWritten(st, src))
        return st;
    await fs.rm(dest, { force: true });
    return undefined;
}
//# sourceMappingURL=generations.js.map