/**
 * What the Applier remembers between applies about the files it reads and writes, so that a
 * one-agent edit does not read back, hash and parse ~14 MB of output and a multi-megabyte manifest
 * every time.
 *
 * Trust rule: a remembered content is used only while the file's `stat` is exactly what it was
 * when the content was read or written: same inode, size, mtime **and ctime**. Any write to the
 * file (in place or by rename), `touch`, `chmod`, a new hard link or even `utimes` setting the old
 * mtime back changes the ctime, which only the kernel sets; so a file changed by anyone else is
 * read again, as before. Nothing is remembered across processes.
 */
import { promises as fs } from 'node:fs';
import { isWritten } from '../fsutil.js';
import { hashContent } from './manifest.js';
/** The bytes of a content (encoded once from its text if need be). */
export function bytesOf(c) {
    return (c.data ??= Buffer.from(c.text, 'utf8'));
}
/** The text of a content (decoded, not kept, when it was read from disk). */
export function textOf(c) {
    return c.text ?? c.data.toString('utf8');
}
/** Whether two contents are the same bytes (texts compare as text: equal text, equal bytes). */
export function sameContent(a, b) {
    if (!a || !b)
        return a === b;
    if (a === b)
        return true;
    if (a.text !== undefined && b.text !== undefined)
        return a.text === b.text;
    if (a.data && b.data && a.data.length !== b.data.length)
        return false;
    return bytesOf(a).equals(bytesOf(b));
}
export function keyOf(st) {
    return { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
}
export function sameKey(a, b) {
    return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}
export function hashOf(c) {
    return (c.hash ??= hashContent(c.data ?? c.text));
}
/** The remembered content of files by absolute path. */
export class KnownFiles {
    files = new Map();
    /** Counters, for tests: contents read from disk vs taken from memory. */
    stats = { reads: 0, hits: 0 };
    /** The file's content: remembered if its stat is unchanged, else read (and remembered). Undefined: no such file. */
    async read(file) {
        let st;
        try {
            st = await fs.stat(file);
        }
        catch (err) {
            if (err.code !== 'ENOENT')
                throw err;
            this.files.delete(file);
            return undefined;
        }
        const known = this.files.get(file);
        if (known && sameKey(known.key, keyOf(st)) && known.mode === (st.mode & 0o777)) {
            this.stats.hits++;
            return known;
        }
        this.files.delete(file);
        this.stats.reads++;
        // Read through one descriptor and stat it before and after: the content belongs to the key
        // only if nothing changed the file meanwhile (else it is simply not remembered).
        const h = await fs.open(file, 'r');
        try {
            const before = await h.stat();
            const data = await h.readFile();
            const after = await h.stat();
            const entry = { key: keyOf(after), mode: after.mode & 0o777, data };
            if (sameKey(keyOf(before), entry.key))
                this.files.set(file, entry);
            return entry;
        }
        finally {
            await h.close();
        }
    }
    /**
     * Remembers `content` as what was just written to `file` by writeFileAtomic (which returned
     * `written`), if the file at that path is still it: same inode, size and mtime (its ctime changed
     * with the rename). The content object itself becomes the remembered entry (what was derived
     * from it stays with it).
     */
    async wrote(file, written, content) {
        this.files.delete(file);
        let st;
        try {
            st = await fs.stat(file);
        }
        catch {
            return;
        }
        if (!isWritten(st, written))
            return;
        if (content.data && content.data.length !== st.size)
            return;
        const entry = content;
        entry.key = keyOf(st);
        entry.mode = st.mode & 0o777;
        this.files.set(file, entry);
    }
    forget(file) {
        this.files.delete(file);
    }
}
/** The last manifest read or written, by file, trusted under the same rule. */
export class KnownManifests {
    manifests = new Map();
    stats = { reads: 0, hits: 0 };
    /** `read` parses the file (readManifest); its result is remembered with the file's stat. */
    async get(file, read) {
        const before = await statOrUndefined(file);
        if (!before) {
            this.manifests.delete(file);
            return read(file);
        }
        const known = this.manifests.get(file);
        if (known && sameKey(known.key, keyOf(before))) {
            this.stats.hits++;
            return known.manifest;
        }
        this.stats.reads++;
        const manifest = await read(file);
        const after = await statOrUndefined(file);
        if (after && sameKey(keyOf(before), keyOf(after)))
            this.manifests.set(file, { key: keyOf(after), manifest });
        else
            this.manifests.delete(file);
        return manifest;
    }
    /** The file's stat if it is still the one remembered (for hard-linking it), else undefined. */
    async current(file) {
        const known = this.manifests.get(file);
        const st = await statOrUndefined(file);
        return known && st && sameKey(known.key, keyOf(st)) ? known.key : undefined;
    }
    async wrote(file, written, manifest) {
        this.manifests.delete(file);
        const st = await statOrUndefined(file);
        if (st && isWritten(st, written))
            this.manifests.set(file, { key: keyOf(st), manifest });
    }
}
async function statOrUndefined(file) {
    try {
        return await fs.stat(file);
    }
    catch (err) {
        if (err.code !== 'ENOENT')
            throw err;
        return undefined;
    }
}
//# sourceMappingURL=known.js.map